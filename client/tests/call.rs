//! `ParticipantCall` (docs/PROTOCOL.md §3, §4, §6) driven by real str0m peers: a
//! participant `Rtc` and an ICE-lite `Rtc` playing the bridge, which talk
//! only through the Jingle `ParticipantCall` produces and consumes (sent
//! over a string, as over XMPP) and then connect over an in-memory network.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use confab_client::call::{CallError, ParticipantCall, RemoteTrack};
use confab_proto::jingle_sdp::*;
use minidom::Element;
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction as Dir, MediaKind, MediaTime, Mid};
use str0m::net::Receive;
use str0m::{Candidate, Event, Input, Output, Rtc};
use xmpp_parsers::jid::Jid;
use xmpp_parsers::jingle::{Action, Reason};

const SID: &str = "call1";
const ME: &str = "alice@localhost/web";
const ROOM: &str = "room@conference.localhost";
const BOB: &str = "room@conference.localhost/bob";

/// What crosses XMPP: the element serialised and parsed again.
fn wire(el: &Element) -> Element {
    String::from(el).parse().expect("well-formed XML")
}

/// `el` with one piece of its XML text replaced (which must be there).
fn edit(el: &Element, from: &str, to: &str) -> Element {
    let xml = String::from(el);
    assert!(xml.contains(from), "{from} not in {xml}");
    xml.replacen(from, to, 1).parse().unwrap()
}

fn header(action: Action) -> JingleHeader {
    JingleHeader {
        action,
        sid: SID.into(),
        initiator: None,
        responder: None,
    }
}

/// The m-sections of an SDP, as lines.
fn m_sections(sdp: &str) -> Vec<Vec<&str>> {
    let mut out: Vec<Vec<&str>> = Vec::new();
    for line in sdp.lines() {
        if line.starts_with("m=") {
            out.push(Vec::new());
        }
        if let Some(section) = out.last_mut() {
            section.push(line);
        }
    }
    out
}

/// The direction attribute of every m-section.
fn directions(sdp: &str) -> Vec<&str> {
    let dirs = ["a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive"];
    m_sections(sdp)
        .iter()
        .map(|s| *s.iter().find(|l| dirs.contains(l)).expect("a direction"))
        .collect()
}

struct Peer {
    rtc: Rtc,
    events: Vec<Event>,
}

impl Peer {
    fn new(ice_lite: bool, addr: &str, now: Instant) -> Peer {
        let mut rtc = Rtc::builder().set_ice_lite(ice_lite).build(now);
        let addr: SocketAddr = addr.parse().unwrap();
        rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        Peer {
            rtc,
            events: Vec::new(),
        }
    }

    fn direction(&self, mid: &str) -> Option<Dir> {
        self.rtc.media(Mid::from(mid)).map(|m| m.direction())
    }

    /// Polls until the next timeout; transmits go to `out`.
    fn drain(&mut self, out: &mut Vec<Packet>) {
        loop {
            match self.rtc.poll_output().expect("poll_output") {
                Output::Timeout(_) => break,
                Output::Transmit(t) => {
                    out.push((t.proto, t.source, t.destination, t.contents.to_vec()))
                }
                Output::Event(e) => self.events.push(e),
            }
        }
    }
}

/// Runs two peers over a lossless network in 5 ms steps until `done`
/// (returns true) or `steps` steps have passed (returns false).
fn run(
    a: &mut Peer,
    b: &mut Peer,
    now: &mut Instant,
    steps: usize,
    done: impl Fn(&Peer, &Peer) -> bool,
) -> bool {
    for _ in 0..steps {
        let (mut to_a, mut to_b) = (Vec::new(), Vec::new());
        a.rtc.handle_input(Input::Timeout(*now)).unwrap();
        a.drain(&mut to_b);
        b.rtc.handle_input(Input::Timeout(*now)).unwrap();
        b.drain(&mut to_a);
        for _ in 0..100 {
            if to_a.is_empty() && to_b.is_empty() {
                break;
            }
            deliver(a, *now, std::mem::take(&mut to_a), &mut to_b);
            deliver(b, *now, std::mem::take(&mut to_b), &mut to_a);
        }
        if done(a, b) {
            return true;
        }
        *now += Duration::from_millis(5);
    }
    false
}

type Packet = (str0m::net::Protocol, SocketAddr, SocketAddr, Vec<u8>);

fn deliver(to: &mut Peer, now: Instant, packets: Vec<Packet>, outbox: &mut Vec<Packet>) {
    for (proto, src, dst, bytes) in packets {
        let packet = Receive::new(proto, src, dst, &bytes).unwrap();
        to.rtc.handle_input(Input::Receive(now, packet)).unwrap();
        to.drain(outbox);
    }
}

/// The bridge side as the focus will do it: Jingle from the participant
/// becomes SDP for an ICE-lite str0m, str0m's SDP becomes Jingle.
struct Bridge {
    peer: Peer,
    /// The participant's contents as it offered/accepted them.
    participant: Vec<Content>,
}

impl Bridge {
    /// session-initiate -> str0m accepts the offer -> session-accept.
    fn accept(&mut self, initiate: &Element) -> Element {
        let offer = jingle_to_session(&wire(initiate)).unwrap();
        let sdp = session_to_sdp(&offer, Role::Initiator, 1).unwrap();
        let answer = self
            .peer
            .rtc
            .sdp_api()
            .accept_offer(SdpOffer::from_sdp_string(&sdp).unwrap());
        let answer = sdp_to_session(
            &answer.expect("bridge accepts").to_sdp_string(),
            Role::Responder,
        )
        .unwrap();
        assert!(answer.contents.iter().all(|c| c.creator == Role::Initiator));
        self.participant = offer.contents;
        let header = JingleHeader {
            responder: Some(Jid::new(ROOM).unwrap()),
            ..header(Action::SessionAccept)
        };
        session_to_jingle(&header, &answer).unwrap()
    }

    /// Publishes one of Bob's tracks: str0m adds a sendonly m-line; the
    /// content-add holds only that content, owned by Bob, without candidates.
    fn content_add(&mut self, kind: MediaKind, track: &str) -> (Element, String, SdpPendingOffer) {
        let mut api = self.peer.rtc.sdp_api();
        let mid = api.add_media(
            kind,
            Dir::SendOnly,
            Some("bob".into()),
            Some(track.into()),
            None,
        );
        let (offer, pending) = api.apply().expect("an offer");
        let session = sdp_to_session(&offer.to_sdp_string(), Role::Responder).unwrap();
        let mut content = session
            .contents
            .into_iter()
            .find(|c| c.name == *mid)
            .unwrap();
        assert_eq!(content.senders, Senders::Responder);
        assert!(!content.sources.is_empty(), "str0m announces its SSRCs");
        content.creator = Role::Responder;
        content.transport.candidates.clear();
        content
            .sources
            .iter_mut()
            .for_each(|s| s.owner = Some(BOB.into()));
        let add = Session {
            contents: vec![content],
            bundle: session.bundle,
            ice_lite: false,
        };
        (
            session_to_jingle(&header(Action::ContentAdd), &add).unwrap(),
            mid.to_string(),
            pending,
        )
    }

    /// content-accept -> the participant's whole answer -> str0m accepts it.
    fn content_accept(&mut self, accept: &Element, pending: SdpPendingOffer) {
        self.participant
            .extend(jingle_to_session(&wire(accept)).unwrap().contents);
        let mut contents = self.participant.clone();
        for fp in contents
            .iter_mut()
            .filter_map(|c| c.transport.fingerprint.as_mut())
        {
            fp.setup = Setup::Active;
        }
        let bundle = contents.iter().map(|c| c.name.clone()).collect();
        let sdp = session_to_sdp(
            &Session {
                contents,
                bundle,
                ice_lite: false,
            },
            Role::Initiator,
            2,
        )
        .unwrap();
        let answer = SdpAnswer::from_sdp_string(&sdp).unwrap();
        self.peer
            .rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .expect("bridge accepts the answer");
    }
}

/// A participant that sends audio and video and a bridge, connected via
/// session-initiate/session-accept.
fn connected_call() -> (Instant, Peer, Bridge, ParticipantCall, [String; 2]) {
    let mut now = Instant::now();
    let mut alice = Peer::new(false, "10.0.0.1:5000", now);
    let mut bridge = Bridge {
        peer: Peer::new(true, "10.0.0.2:10000", now),
        participant: Vec::new(),
    };

    let mut api = alice.rtc.sdp_api();
    let audio = api.add_media(
        MediaKind::Audio,
        Dir::SendOnly,
        Some("alice".into()),
        Some("a".into()),
        None,
    );
    let video = api.add_media(
        MediaKind::Video,
        Dir::SendOnly,
        Some("alice".into()),
        Some("v".into()),
        None,
    );
    let (offer, pending) = api.apply().unwrap();
    let (mut call, initiate) =
        ParticipantCall::initiate(SID, ME, ROOM, &offer.to_sdp_string()).unwrap();
    assert_eq!(initiate.attr("action"), Some("session-initiate"));
    assert_eq!(initiate.attr("initiator"), Some(ME));
    assert_eq!(initiate.attr("sid"), Some(SID));
    let contents: Vec<_> = initiate
        .children()
        .filter(|c| c.name() == "content")
        .collect();
    let names: Vec<_> = contents.iter().map(|c| c.attr("name").unwrap()).collect();
    assert_eq!(names, [&*audio, &*video]);
    assert!(contents
        .iter()
        .all(|c| c.attr("senders") == Some("initiator")));

    let accept = bridge.accept(&initiate);
    let answer = call.on_session_accept(&wire(&accept)).unwrap();
    assert!(answer.contains("a=ice-lite\r\n") && answer.contains("o=- 1 1 IN IP4"));
    assert_eq!(directions(&answer), ["a=recvonly", "a=recvonly"]);
    assert!(m_sections(&answer)
        .iter()
        .all(|s| s.contains(&"a=setup:passive")));
    let answer = SdpAnswer::from_sdp_string(&answer).unwrap();
    alice
        .rtc
        .sdp_api()
        .accept_answer(pending, answer)
        .expect("participant accepts");
    let connected = run(&mut alice, &mut bridge.peer, &mut now, 2000, |a, b| {
        a.rtc.is_connected() && b.rtc.is_connected()
    });
    assert!(connected, "ICE and DTLS connect");
    assert_eq!(bridge.peer.direction(&audio), Some(Dir::RecvOnly));
    assert!(call.remote_tracks().is_empty());
    (
        now,
        alice,
        bridge,
        call,
        [audio.to_string(), video.to_string()],
    )
}

/// content-add -> the participant's offer/answer -> content-accept ->
/// the bridge's answer; checks of the remote offer.
fn add_track(
    alice: &mut Peer,
    bridge: &mut Bridge,
    call: &mut ParticipantCall,
    track: &str,
) -> (String, String) {
    let (add, mid, pending) = bridge.content_add(MediaKind::Video, track);
    let offer = call.on_content_add(&wire(&add)).unwrap();
    assert_eq!(offer.contents, [mid.as_str()]);
    for section in m_sections(&offer.sdp) {
        assert!(section.contains(&"a=setup:actpass"), "{section:?}");
        assert!(section.iter().any(|l| l.starts_with("a=ice-ufrag:")));
        assert!(
            section.iter().any(|l| l.starts_with("a=candidate:")),
            "candidates inherited"
        );
    }
    assert!(offer.sdp.contains("a=ice-lite\r\n"));
    let answer = alice
        .rtc
        .sdp_api()
        .accept_offer(SdpOffer::from_sdp_string(&offer.sdp).unwrap());
    let answer = answer
        .expect("participant accepts the content-add offer")
        .to_sdp_string();
    assert_eq!(directions(&answer).last(), Some(&"a=recvonly"));
    let accept = call.content_accept(&answer).unwrap();
    assert_eq!(accept.attr("action"), Some("content-accept"));
    let contents: Vec<_> = accept
        .children()
        .filter(|c| c.name() == "content")
        .collect();
    assert_eq!(contents.len(), 1);
    let c = contents[0];
    assert_eq!(
        [c.attr("name"), c.attr("creator"), c.attr("senders")],
        [Some(&*mid), Some("responder"), Some("responder")]
    );
    assert!(String::from(c).contains("setup='active'"));
    bridge.content_accept(&accept, pending);
    assert_eq!(alice.direction(&mid), Some(Dir::RecvOnly));
    assert_eq!(bridge.peer.direction(&mid), Some(Dir::SendOnly));
    (mid, offer.sdp)
}

#[test]
fn content_add_gives_a_track_whose_media_arrives() {
    let (mut now, mut alice, mut bridge, mut call, [audio, video]) = connected_call();
    let (bob, offer) = add_track(&mut alice, &mut bridge, &mut call, "bobvideo");
    assert!(offer.contains(&format!("a=group:BUNDLE {audio} {video} {bob}\r\n")));
    assert!(offer.contains("o=- 1 2 IN IP4"));
    assert_eq!(
        directions(&offer),
        ["a=recvonly", "a=recvonly", "a=sendonly"]
    );
    let msid = Msid {
        stream: "bob".into(),
        track: Some("bobvideo".into()),
    };
    let expected = RemoteTrack {
        name: bob.clone(),
        media: Media::Video,
        owner: Some(BOB.into()),
        msid: Some(msid),
    };
    assert_eq!(call.remote_tracks(), [expected]);

    // Media on the new m-line reaches the participant under its mid.
    let got_media = |a: &Peer| {
        a.events
            .iter()
            .any(|e| matches!(e, Event::MediaData(d) if *d.mid == *bob))
    };
    for frame in 0..50u64 {
        let writer = bridge.peer.rtc.writer(Mid::from(&*bob)).expect("a writer");
        let pt = writer
            .payload_params()
            .find(|p| p.spec().codec == Codec::Vp8)
            .unwrap()
            .pt();
        // A VP8 key frame header followed by filler.
        let mut data = vec![0x50, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00];
        data.resize(400, 0x11);
        writer
            .write(pt, now, MediaTime::from_90khz(frame * 3000), data)
            .unwrap();
        if run(&mut alice, &mut bridge.peer, &mut now, 7, |a, _| {
            got_media(a)
        }) {
            return;
        }
    }
    panic!("no media arrived on the content-add m-line");
}

#[test]
fn content_remove_makes_the_m_line_inactive_and_later_adds_append() {
    let (_, mut alice, mut bridge, mut call, _) = connected_call();
    let (bob, _) = add_track(&mut alice, &mut bridge, &mut call, "bobvideo");
    let remove = edit(
        &session_to_jingle(&header(Action::ContentRemove), &Session::default()).unwrap(),
        "/>",
        &format!("><content xmlns='urn:xmpp:jingle:1' creator='responder' name='{bob}'/></jingle>"),
    );
    let offer = call.on_content_remove(&wire(&remove)).unwrap();
    assert_eq!(offer.contents, [bob.as_str()]);
    assert!(offer.sdp.contains("o=- 1 3 IN IP4"));
    assert_eq!(
        directions(&offer.sdp),
        ["a=recvonly", "a=recvonly", "a=inactive"]
    );
    let removed = &m_sections(&offer.sdp)[2];
    assert!(!removed
        .iter()
        .any(|l| l.starts_with("a=ssrc") || l.starts_with("a=msid")));
    let answer = alice
        .rtc
        .sdp_api()
        .accept_offer(SdpOffer::from_sdp_string(&offer.sdp).unwrap());
    assert_eq!(
        directions(&answer.expect("accepted").to_sdp_string())[2],
        "a=inactive"
    );
    assert_eq!(alice.direction(&bob), Some(Dir::Inactive));
    assert!(call.remote_tracks().is_empty());

    // The next track appends a fourth m-line after the inactive one.
    let (carol, offer) = add_track(&mut alice, &mut bridge, &mut call, "bobscreen");
    assert!(offer.contains("o=- 1 4 IN IP4"));
    assert_eq!(
        directions(&offer),
        ["a=recvonly", "a=recvonly", "a=inactive", "a=sendonly"]
    );
    assert_eq!(m_sections(&offer).len(), 4);
    let tracks: Vec<_> = call.remote_tracks().into_iter().map(|t| t.name).collect();
    assert_eq!(tracks, [carol]);
}

#[test]
fn out_of_order_foreign_and_malformed_jingle_is_refused_without_effect() {
    let now = Instant::now();
    let mut alice = Peer::new(false, "10.0.0.1:5000", now);
    let mut bridge = Bridge {
        peer: Peer::new(true, "10.0.0.2:10000", now),
        participant: Vec::new(),
    };
    let mut api = alice.rtc.sdp_api();
    api.add_media(MediaKind::Audio, Dir::SendRecv, None, None, None);
    let sdp = api.apply().unwrap().0.to_sdp_string();

    assert_eq!(
        ParticipantCall::initiate(SID, "alice@localhost", ROOM, &sdp).err(),
        Some(CallError::InvalidJid("own JID"))
    );
    assert!(matches!(
        ParticipantCall::initiate(SID, ME, ROOM, "v=0\r\nm=x"),
        Err(CallError::Mapping(_))
    ));
    let (mut call, initiate) = ParticipantCall::initiate(SID, ME, ROOM, &sdp).unwrap();
    let accept = bridge.accept(&initiate);

    let garbage: Element = "<foo xmlns='bar'/>".parse().unwrap();
    assert_eq!(
        call.on_session_accept(&garbage),
        Err(CallError::Mapping(MappingError::NotJingle))
    );
    let early_add = edit(
        &edit(&initiate, "session-initiate", "content-add"),
        "'initiator'",
        "'responder'",
    );
    assert_eq!(
        call.on_content_add(&early_add).err(),
        Some(CallError::OutOfOrder("content-add"))
    );
    assert_eq!(
        call.content_accept(&sdp).err(),
        Some(CallError::OutOfOrder("content-accept"))
    );
    let other_sid = edit(&accept, "sid='call1'", "sid='call2'");
    assert_eq!(
        call.on_session_accept(&other_sid),
        Err(CallError::UnknownSession)
    );
    let expected = Some(CallError::UnexpectedAction {
        expected: "content-add",
    });
    assert_eq!(call.on_content_add(&accept).err(), expected);
    let injected = edit(&accept, "ufrag='", "ufrag='a&#13;&#10;a=x");
    assert!(matches!(
        call.on_session_accept(&injected),
        Err(CallError::Mapping(_))
    ));
    let renamed = edit(&accept, "name='", "name='x");
    assert!(matches!(
        call.on_session_accept(&renamed),
        Err(CallError::Protocol(_))
    ));

    // None of that changed the call: the real session-accept is answer version 1.
    assert!(call
        .on_session_accept(&accept)
        .unwrap()
        .contains("o=- 1 1 IN IP4"));
    assert_eq!(
        call.on_session_accept(&accept),
        Err(CallError::OutOfOrder("session-accept"))
    );
    let mid = initiate.children().find_map(|c| c.attr("name")).unwrap();
    let own_remove = edit(
        &edit(&initiate, "session-initiate", "content-remove"),
        "'initiator'",
        "'responder'",
    );
    assert!(matches!(
        call.on_content_remove(&own_remove),
        Err(CallError::Protocol(_))
    ));
    let (add, new_mid, _) = bridge.content_add(MediaKind::Audio, "bobaudio");
    let reused = edit(&add, &format!("name='{new_mid}'"), &format!("name='{mid}'"));
    assert!(matches!(
        call.on_content_add(&reused),
        Err(CallError::Protocol(_))
    ));
    let offer = call.on_content_add(&add).unwrap();
    assert!(
        offer.sdp.contains("o=- 1 2 IN IP4"),
        "refused changes used no version"
    );
    assert_eq!(
        call.on_content_add(&add).err(),
        Some(CallError::OutOfOrder("content-add"))
    );
    assert!(matches!(
        call.content_accept("garbage"),
        Err(CallError::Mapping(_))
    ));

    let terminate = call.terminate(Reason::Success);
    assert_eq!(
        (terminate.attr("action"), terminate.attr("sid")),
        (Some("session-terminate"), Some(SID))
    );
    let reason = terminate.get_child("reason", "urn:xmpp:jingle:1");
    assert!(reason
        .and_then(|r| r.get_child("success", "urn:xmpp:jingle:1"))
        .is_some());
    assert!(call.is_ended());
    assert_eq!(
        call.content_accept(&offer.sdp).err(),
        Some(CallError::Ended)
    );

    let (mut other, _) = ParticipantCall::initiate(SID, ME, ROOM, &sdp).unwrap();
    let gone = ParticipantCall::initiate(SID, ME, ROOM, &sdp)
        .unwrap()
        .0
        .terminate(Reason::Gone);
    assert_eq!(
        other.on_session_terminate(&wire(&gone)),
        Ok(Some(Reason::Gone))
    );
    assert_eq!(other.on_session_terminate(&gone), Err(CallError::Ended));
}
