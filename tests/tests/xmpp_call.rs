//! Calls over Confab's own XMPP server, end to end: Confab starts
//! in-process exactly as the binary starts it, real XMPP clients (tokio-xmpp
//! over TCP with STARTTLS and SCRAM-SHA-1, and an RFC 7395 WebSocket client
//! as a guest) join a room and call it over Jingle, and webrtc-rs peers carry
//! the media.

use std::time::Duration;

use confab_tests::participant::{error_condition, nc, Participant};
use confab_tests::xmpp::{WsClient, XmppClient};
use confab_tests::{init_tracing, MediaKind, PeerOptions, TestPeer, VideoCodec};
use minidom::Element;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ROOM: &str = "standup@conference.localhost";
const LONG: Duration = Duration::from_secs(30);

async fn start_confab() -> confab::Running {
    let mut config = confab::config::Config::ephemeral();
    config
        .xmpp
        .accounts
        .insert("alice".into(), "alice-secret".into());
    config
        .xmpp
        .accounts
        .insert("bob".into(), "bob-secret".into());
    confab::start(&config).await.expect("confab starts")
}

fn ws_url(confab: &confab::Running) -> String {
    format!("ws://{}/xmpp-websocket", confab.http_addr)
}

async fn tcp_participant(confab: &confab::Running, user: &str, codec: VideoCodec) -> Participant {
    let cert = confab
        .signaling
        .certificate_pem()
        .expect("STARTTLS is on by default");
    let xmpp = XmppClient::connect_tcp(
        confab.xmpp_addr,
        cert,
        &format!("{user}@localhost/laptop"),
        &format!("{user}-secret"),
    )
    .await
    .unwrap_or_else(|e| panic!("{user} logs in over TCP: {e}"));
    let peer = TestPeer::new(user, PeerOptions::publisher(codec)).await;
    Participant::new(xmpp, peer, user)
}

async fn ws_participant(confab: &confab::Running, nick: &str, opts: PeerOptions) -> Participant {
    Participant::guest_over_websocket(confab.http_addr, nick, opts).await
}

/// The msid stream id under which `p` receives `owner`'s tracks
/// (from the owner extension of the bridge's content-add).
fn stream_of(p: &Participant, owner: &str) -> Option<String> {
    let owner = format!("{ROOM}/{owner}");
    p.call()?
        .remote_tracks()
        .into_iter()
        .find(|t| t.owner.as_deref() == Some(owner.as_str()))
        .and_then(|t| t.msid.map(|m| m.stream))
}

/// Whether `p` has received at least `frames` audio and video frames from
/// `owner`.
fn hears(p: &Participant, owner: &str, frames: usize) -> bool {
    let Some(stream) = stream_of(p, owner) else {
        return false;
    };
    let got = p.peer.received_from(&stream);
    [MediaKind::Audio, MediaKind::Video].iter().all(|k| {
        got.iter()
            .any(|t| t.kind == *k && t.distinct().len() >= frames)
    })
}

macro_rules! pump_all {
    ($timeout:expr, $cond:expr, $($p:expr),+) => {{
        let deadline = tokio::time::Instant::now() + $timeout;
        loop {
            tokio::join!($($p.pump(Duration::from_millis(100))),+);
            if $cond {
                break true;
            }
            if tokio::time::Instant::now() >= deadline {
                break false;
            }
        }
    }};
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_clients_two_tcp_one_websocket_call_one_room() {
    init_tracing();
    let confab = start_confab().await;
    let mut alice = tcp_participant(&confab, "alice", VideoCodec::Vp8).await;
    let mut bob = tcp_participant(&confab, "bob", VideoCodec::Vp8).await;
    let mut carol = ws_participant(&confab, "carol", PeerOptions::publisher(VideoCodec::Vp8)).await;
    assert!(
        carol
            .xmpp
            .jid()
            .node()
            .is_some_and(|n| n.as_str().starts_with("guest-")),
        "carol is a guest"
    );

    for p in [&mut alice, &mut bob, &mut carol] {
        p.join(ROOM, None).await.expect("joins the room");
    }
    // Everyone sees the three occupants.
    assert!(pump_all!(
        LONG,
        [&alice, &bob, &carol]
            .iter()
            .all(|p| p.seen.occupants.len() == 3),
        alice,
        bob,
        carol
    ));

    // The server answers ping and disco; the room says it does Jingle.
    let pong = alice
        .request_of(
            "get",
            "localhost",
            Element::builder("ping", "urn:xmpp:ping").build(),
        )
        .await
        .expect("ping answered");
    assert_eq!(pong.attr("type"), Some("result"));
    let info = carol
        .request_of(
            "get",
            ROOM,
            Element::builder("query", "http://jabber.org/protocol/disco#info").build(),
        )
        .await
        .expect("disco answered");
    let features: Vec<String> = info
        .get_child("query", "http://jabber.org/protocol/disco#info")
        .map(|q| {
            q.children()
                .filter_map(|f| f.attr("var").map(String::from))
                .collect()
        })
        .unwrap_or_default();
    for f in [
        "http://jabber.org/protocol/muc",
        "urn:xmpp:jingle:1",
        "urn:xmpp:jingle-message:0",
    ] {
        assert!(
            features.iter().any(|x| x == f),
            "room disco lacks {f}: {features:?}"
        );
    }
    // XEP-0353: carol proposes first, as mobile clients do.
    carol.propose("carol-call").await.expect("propose");
    assert!(
        carol
            .pump_until(LONG, |p| p
                .seen
                .proceeds
                .iter()
                .any(|id| id == "carol-call"))
            .await,
        "proceed"
    );

    for p in [&mut alice, &mut bob, &mut carol] {
        p.start_call().await.expect("the room accepts the call");
        p.peer.start_sending();
    }
    let everyone_hears_everyone = pump_all!(
        Duration::from_secs(60),
        hears(&alice, "bob", 20)
            && hears(&alice, "carol", 20)
            && hears(&bob, "alice", 20)
            && hears(&bob, "carol", 20)
            && hears(&carol, "alice", 20)
            && hears(&carol, "bob", 20),
        alice,
        bob,
        carol
    );
    for p in [&alice, &bob, &carol] {
        assert!(
            p.seen.problems.is_empty(),
            "{}: {:?}",
            p.nick,
            p.seen.problems
        );
        let tracks = p.call().map(|c| c.remote_tracks()).unwrap_or_default();
        assert_eq!(
            tracks.len(),
            4,
            "{} has audio and video of both others: {tracks:?}",
            p.nick
        );
        assert!(
            !p.seen.content_adds.is_empty(),
            "{} got content-add",
            p.nick
        );
    }
    assert!(
        everyone_hears_everyone,
        "every participant receives the audio and video of both others"
    );

    // Chat reaches everyone.
    alice.say("hello from alice").await.expect("send chat");
    assert!(pump_all!(
        LONG,
        [&alice, &bob, &carol].iter().all(|p| p
            .seen
            .chat
            .iter()
            .any(|(n, b)| n == "alice" && b == "hello from alice")),
        alice,
        bob,
        carol
    ));

    // Carol leaves: the other two get content-remove for her two tracks, and
    // the bridge frees her endpoint.
    let carol_stream = stream_of(&alice, "carol").expect("alice knows carol's stream");
    let carol_endpoint: u64 = carol_stream
        .trim_start_matches("ep")
        .parse()
        .expect("stream id is the endpoint id");
    carol.leave().await.expect("leave");
    let removed = pump_all!(
        LONG,
        [&alice, &bob].iter().all(|p| p
            .seen
            .content_removes
            .iter()
            .map(|r| r.len())
            .sum::<usize>()
            == 2),
        alice,
        bob,
        carol
    );
    assert!(
        removed,
        "alice and bob get content-remove for carol's tracks"
    );
    for p in [&alice, &bob] {
        assert!(
            stream_of(p, "carol").is_none(),
            "{} no longer lists carol's tracks",
            p.nick
        );
        assert_eq!(p.call().map(|c| c.remote_tracks().len()), Some(2));
    }
    let freed = confab.sfu.stats(sfu::EndpointId(carol_endpoint)).await;
    assert!(freed.is_err(), "carol's endpoint is gone: {freed:?}");
    // The others still hear each other.
    let before = alice
        .peer
        .received_from(&stream_of(&alice, "bob").expect("bob"))
        .iter()
        .map(|t| t.packets)
        .sum::<u64>();
    alice.pump(Duration::from_secs(1)).await;
    let after = alice
        .peer
        .received_from(&stream_of(&alice, "bob").expect("bob"))
        .iter()
        .map(|t| t.packets)
        .sum::<u64>();
    assert!(after > before, "media from bob keeps flowing to alice");

    // Bob hangs up but stays in the room: alice gets content-remove for his
    // tracks, and he stays an occupant.
    bob.hang_up().await.expect("hang up");
    let removed = pump_all!(
        LONG,
        alice
            .seen
            .content_removes
            .iter()
            .map(|r| r.len())
            .sum::<usize>()
            == 4,
        alice,
        bob
    );
    assert!(removed, "alice gets content-remove for bob's tracks");
    assert_eq!(alice.call().map(|c| c.remote_tracks().len()), Some(0));
    assert!(
        alice.seen.occupants.contains_key("bob"),
        "bob is still in the room"
    );
    confab.stop();
}

fn jingle(action: &str, sid: &str) -> minidom::ElementBuilder {
    Element::builder("jingle", "urn:xmpp:jingle:1")
        .attr(nc("action"), action)
        .attr(nc("sid"), sid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_the_named_error_and_disturbs_no_one() {
    init_tracing();
    let confab = start_confab().await;
    // Two participants in a call, whose media must keep flowing throughout.
    let mut alice = tcp_participant(&confab, "alice", VideoCodec::H264).await;
    let mut bob = tcp_participant(&confab, "bob", VideoCodec::H264).await;
    for p in [&mut alice, &mut bob] {
        p.join(ROOM, None).await.expect("join");
        p.start_call().await.expect("call");
        p.peer.start_sending();
    }
    assert!(pump_all!(
        Duration::from_secs(60),
        hears(&alice, "bob", 10) && hears(&bob, "alice", 10),
        alice,
        bob
    ));

    // Stream-level attacks over WebSocket, each on its own connection.
    let url = ws_url(&confab);
    let open = "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>";
    let huge = format!(
        "<message xmlns='jabber:client'><body>{}</body></message>",
        "x".repeat(300 * 1024)
    );
    let deep = format!(
        "<a xmlns='jabber:client'>{}{}",
        "<a>".repeat(10_000),
        "</a>".repeat(10_001)
    );
    let entity = "<!DOCTYPE lol [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;'>]><open xmlns='urn:ietf:params:xml:ns:xmpp-framing'>&b;</open>";
    for (what, payload, condition) in [
        ("oversized stanza", huge.into_bytes(), "policy-violation"),
        ("10,000-deep nesting", deep.into_bytes(), "policy-violation"),
        (
            "DOCTYPE and entities",
            entity.as_bytes().to_vec(),
            "restricted-xml",
        ),
        (
            "invalid UTF-8",
            b"<message xmlns='jabber:client'>\xff\xfe\xfd</message>".to_vec(),
            "not-well-formed",
        ),
    ] {
        let mut socket = WsClient::open_socket(&url).await.expect("socket");
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        socket.send(Message::Text(open.into())).await.expect("open");
        socket
            .send(Message::Binary(payload.into()))
            .await
            .expect("send");
        let mut texts = String::new();
        while let Ok(Some(Ok(msg))) =
            tokio::time::timeout(Duration::from_secs(10), socket.next()).await
        {
            match msg {
                Message::Text(t) => texts.push_str(&t),
                Message::Close(_) => break,
                _ => {}
            }
        }
        assert!(
            texts.contains("stream:error") && texts.contains(condition),
            "{what}: expected <{condition}/>, got {texts}"
        );
    }

    // The same over raw TCP before TLS: a 10,000-deep document.
    let mut tcp = tokio::net::TcpStream::connect(confab.xmpp_addr)
        .await
        .expect("tcp");
    tcp.write_all(b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>")
        .await
        .expect("write");
    let _ = tcp.write_all("<a>".repeat(10_000).as_bytes()).await;
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut got)).await;
    let got = String::from_utf8_lossy(&got);
    assert!(got.contains("policy-violation"), "TCP nesting: {got}");

    // Wrong passwords fail SASL, over WebSocket (PLAIN) and TCP (SCRAM-SHA-1).
    let err = WsClient::connect(&url, "localhost", Some(("alice", "wrong")))
        .await
        .err();
    assert!(
        err.as_deref().is_some_and(|e| e.contains("not-authorized")),
        "{err:?}"
    );
    let cert = confab.signaling.certificate_pem().expect("cert");
    let err = XmppClient::connect_tcp_within(
        confab.xmpp_addr,
        cert,
        "bob@localhost/x",
        "wrong",
        Duration::from_secs(3),
    )
    .await
    .err();
    assert!(
        err.as_deref().is_some_and(|e| e.contains("NotAuthorized")),
        "{err:?}"
    );

    // A password-protected room refuses a wrong password with not-authorized.
    let mut carol = ws_participant(&confab, "carol", PeerOptions::receiver(VideoCodec::H264)).await;
    carol
        .join("locked@conference.localhost", Some("sesame"))
        .await
        .expect("carol creates a locked room");
    let mut mallory =
        ws_participant(&confab, "mallory", PeerOptions::receiver(VideoCodec::H264)).await;
    let refused = mallory
        .join("locked@conference.localhost", Some("guess"))
        .await;
    assert_eq!(refused.err().as_deref(), Some("not-authorized"));
    let refused = mallory.join(ROOM, None).await;
    assert!(
        refused.is_ok(),
        "mallory may join the open room: {refused:?}"
    );
    let nick_taken = ws_participant(&confab, "alice", PeerOptions::receiver(VideoCodec::H264))
        .await
        .join(ROOM, None)
        .await;
    assert_eq!(nick_taken.err().as_deref(), Some("conflict"));

    // Jingle attacks from an occupant, each answered with its IQ error.
    let many_contents = {
        let mut j =
            jingle("session-initiate", "s1").attr(nc("initiator"), mallory.xmpp.jid().to_string());
        for i in 0..5000 {
            j = j.append(
                Element::builder("content", "urn:xmpp:jingle:1")
                    .attr(nc("creator"), "initiator")
                    .attr(nc("name"), format!("c{i}"))
                    .build(),
            );
        }
        j.build()
    };
    let many_candidates = {
        let mut t = Element::builder("transport", "urn:xmpp:jingle:transports:ice-udp:1")
            .attr(nc("ufrag"), "abcd")
            .attr(nc("pwd"), "abcdefghijklmnopqrstuvwxyz");
        for i in 0..1500 {
            t = t.append(
                Element::builder("candidate", "urn:xmpp:jingle:transports:ice-udp:1")
                    .attr(nc("component"), "1")
                    .attr(nc("foundation"), "1")
                    .attr(nc("generation"), "0")
                    .attr(nc("id"), format!("k{i}"))
                    .attr(nc("ip"), "127.0.0.1")
                    .attr(nc("port"), (1000 + i).to_string())
                    .attr(nc("priority"), "1")
                    .attr(nc("protocol"), "udp")
                    .attr(nc("type"), "host")
                    .build(),
            );
        }
        let content = Element::builder("content", "urn:xmpp:jingle:1")
            .attr(nc("creator"), "initiator")
            .attr(nc("name"), "0")
            .append(
                Element::builder("description", "urn:xmpp:jingle:apps:rtp:1")
                    .attr(nc("media"), "audio")
                    .append(
                        Element::builder("payload-type", "urn:xmpp:jingle:apps:rtp:1")
                            .attr(nc("id"), "111")
                            .attr(nc("name"), "opus")
                            .attr(nc("clockrate"), "48000")
                            .attr(nc("channels"), "2")
                            .build(),
                    )
                    .build(),
            )
            .append(t.build());
        jingle("session-initiate", "s2")
            .attr(nc("initiator"), mallory.xmpp.jid().to_string())
            .append(content.build())
            .build()
    };
    // Both fit in one stanza, so it is the Jingle bounds that refuse them.
    assert!(String::from(&many_contents).len() < 256 * 1024);
    assert!(
        String::from(&many_candidates).len() < 256 * 1024,
        "{}",
        String::from(&many_candidates).len()
    );
    for (what, payload, condition, app) in [
        ("thousands of contents", many_contents, "bad-request", None),
        (
            "thousands of candidates",
            many_candidates,
            "bad-request",
            None,
        ),
        (
            "an unknown action",
            jingle("session-dance", "s3").build(),
            "feature-not-implemented",
            Some("unsupported-info"),
        ),
        (
            "session-accept for no session",
            jingle("session-accept", "nope").build(),
            "item-not-found",
            Some("unknown-session"),
        ),
        (
            "content-accept for no session",
            jingle("content-accept", "nope").build(),
            "item-not-found",
            Some("unknown-session"),
        ),
    ] {
        let reply = mallory
            .request(ROOM, payload)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(reply.attr("type"), Some("error"), "{what}");
        assert_eq!(
            error_condition(&reply).as_deref(),
            Some(condition),
            "{what}: {}",
            String::from(&reply)
        );
        if let Some(app) = app {
            let e = reply.get_child("error", "jabber:client").expect("error");
            assert!(
                e.has_child(app, "urn:xmpp:jingle:errors:1"),
                "{what}: {}",
                String::from(&reply)
            );
        }
    }

    // CR/LF smuggled into attribute values (as character references, which
    // XML turns into real CR/LF) to inject SDP lines: refused.
    let offer = mallory.peer.create_offer().await;
    let (_, good) = confab_client::call::ParticipantCall::initiate(
        "s4",
        &mallory.xmpp.jid().to_string(),
        ROOM,
        &offer,
    )
    .expect("a valid session-initiate");
    let xml = String::from(&good);
    let ufrag = good
        .children()
        .find_map(|c| {
            c.children()
                .find(|t| t.name() == "transport")
                .and_then(|t| t.attr("ufrag"))
                .map(String::from)
        })
        .expect("ufrag");
    let smuggled = xml.replacen(
        &format!("ufrag='{ufrag}'"),
        &format!("ufrag='{ufrag}&#13;&#10;a=candidate:1 1 udp 1 10.6.6.6 6666 typ host'"),
        1,
    );
    assert_ne!(smuggled, xml, "the ufrag was found and changed");
    let smuggled: Element = smuggled.parse().expect("still well-formed XML");
    let reply = mallory.request(ROOM, smuggled).await.expect("answered");
    assert_eq!(
        error_condition(&reply).as_deref(),
        Some("bad-request"),
        "{}",
        String::from(&reply)
    );

    // Non-occupants may not call a room.
    let mut outsider =
        ws_participant(&confab, "outsider", PeerOptions::receiver(VideoCodec::H264)).await;
    let reply = outsider
        .request(ROOM, good.clone())
        .await
        .expect("answered");
    assert_eq!(error_condition(&reply).as_deref(), Some("not-acceptable"));

    // Room moderation with real clients: only the moderator (alice, who
    // created the room) sets the subject and kicks.
    let reply = mallory.kick("bob").await.expect("answered");
    assert_eq!(error_condition(&reply).as_deref(), Some("forbidden"));
    alice.set_subject("weekly sync").await.expect("subject");
    assert!(
        bob.pump_until(LONG, |p| p.seen.subject.as_deref() == Some("weekly sync"))
            .await,
        "bob sees the subject"
    );
    let reply = alice.kick("mallory").await.expect("answered");
    assert_eq!(
        reply.attr("type"),
        Some("result"),
        "{}",
        String::from(&reply)
    );
    assert!(
        mallory
            .pump_until(LONG, |p| p.seen.removed_with.is_some())
            .await,
        "mallory is told she was removed"
    );
    let codes = mallory.seen.removed_with.clone().unwrap_or_default();
    assert!(codes.iter().any(|c| c == "307"), "kicked (307): {codes:?}");
    assert!(
        bob.pump_until(LONG, |p| !p.seen.occupants.contains_key("mallory"))
            .await
    );

    // After all that, alice and
    // bob never noticed: their media kept flowing and nothing was removed.
    let before: u64 = alice
        .peer
        .received_from(&stream_of(&alice, "bob").expect("bob"))
        .iter()
        .map(|t| t.packets)
        .sum();
    let _ = pump_all!(Duration::from_secs(3), false, alice, bob);
    let after: u64 = alice
        .peer
        .received_from(&stream_of(&alice, "bob").expect("bob"))
        .iter()
        .map(|t| t.packets)
        .sum();
    assert!(after > before, "alice still receives bob");
    for p in [&alice, &bob] {
        assert!(p.seen.content_removes.is_empty(), "{} lost nothing", p.nick);
        assert!(p.seen.terminated.is_none(), "{}'s call is up", p.nick);
        assert!(
            p.seen.problems.is_empty(),
            "{}: {:?}",
            p.nick,
            p.seen.problems
        );
    }
    confab.stop();
}
