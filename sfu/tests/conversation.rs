//! Whole calls on the sans-IO core: str0m client peers and the bridge on a
//! simulated network with a virtual clock (no sockets, deterministic).

use std::collections::BTreeMap;
use std::time::Duration;

use confab_media::VideoCodec;
use sfu::sim::SimNet;
use sfu::{CoreEvent, EndpointConfig, RoomEvent};

fn run_call(net: &mut SimNet, publishers: &[usize], codec: VideoCodec, frames: u32) {
    for f in 0..frames {
        for &p in publishers {
            net.send_video(p, f % 30 == 0, codec);
            net.send_audio(p);
        }
        net.exchange();
        net.run_for(Duration::from_millis(33));
    }
    net.run_for(Duration::from_millis(500));
}

/// Per SSRC, the counters a peer received, in arrival order.
fn by_ssrc(net: &SimNet, peer: usize) -> BTreeMap<u32, (u8, Vec<u32>)> {
    let mut m: BTreeMap<u32, (u8, Vec<u32>)> = BTreeMap::new();
    for r in &net.peers[peer].received {
        let e = m.entry(*r.ssrc).or_insert((r.pt, Vec::new()));
        if let Some(c) = r.counter {
            e.1.push(c);
        }
    }
    m
}

fn three_party(codec: VideoCodec) {
    let mut net = SimNet::new(EndpointConfig::default());
    let a = net.join("room", true, Some(codec));
    let b = net.join("room", true, Some(codec));
    let c = net.join("room", true, Some(codec));
    assert!(net.connect_all(Duration::from_secs(5)), "all peers connect");
    net.run_for(Duration::from_millis(200));
    run_call(&mut net, &[a, b, c], codec, 90);

    for p in [a, b, c] {
        let got = by_ssrc(&net, p);
        assert_eq!(
            got.len(),
            4,
            "peer {p} receives 2 tracks from each of 2 others: {got:?}"
        );
        for (ssrc, (_pt, counters)) in &got {
            assert!(
                counters.len() > 40,
                "peer {p} ssrc {ssrc} got {} packets",
                counters.len()
            );
            assert!(
                counters.windows(2).all(|w| w[0] < w[1]),
                "in order: {counters:?}"
            );
        }
    }
    let published = net
        .events
        .iter()
        .filter(|e| matches!(e, CoreEvent::Room(RoomEvent::TrackPublished { .. })))
        .count();
    assert_eq!(published, 6);
}

#[test]
fn three_party_vp8_and_opus() {
    three_party(VideoCodec::Vp8);
}

#[test]
fn three_party_h264_and_opus() {
    three_party(VideoCodec::H264);
}

fn received_counters(net: &SimNet, peer: usize) -> usize {
    net.peers[peer].received.len()
}

#[test]
fn leaving_participant_is_removed_from_the_others_sessions() {
    let mut net = SimNet::new(EndpointConfig::default());
    let a = net.join("room", true, Some(VideoCodec::Vp8));
    let b = net.join("room", true, Some(VideoCodec::Vp8));
    let c = net.join("room", false, None);
    assert!(net.connect_all(Duration::from_secs(5)));
    run_call(&mut net, &[a, b], VideoCodec::Vp8, 20);
    let b_id = net.peers[b].endpoint.expect("joined");
    net.leave(b);
    net.run_for(Duration::from_millis(200));

    // a and c each got one offer removing b's two tracks.
    for p in [a, c] {
        let id = net.peers[p].endpoint.expect("joined");
        let removed: usize = net
            .renegotiations
            .iter()
            .filter(|(e, _, _)| *e == id)
            .map(|(_, _, r)| r.len())
            .sum();
        assert_eq!(removed, 2, "peer {p} had b's tracks removed");
    }
    let withdrawn = net
        .events
        .iter()
        .filter(|e| {
            matches!(e, CoreEvent::Room(RoomEvent::TrackWithdrawn { track, .. }) if track.publisher == b_id)
        })
        .count();
    assert_eq!(withdrawn, 2);
    assert_eq!(net.core.endpoint_count(), 2);
    // a keeps reaching c.
    let before = received_counters(&net, c);
    run_call(&mut net, &[a], VideoCodec::Vp8, 10);
    assert!(received_counters(&net, c) >= before + 15);
}

#[test]
fn participant_stops_and_restarts_its_video_mid_call() {
    let mut net = SimNet::new(EndpointConfig::default());
    let a = net.join("room", true, Some(VideoCodec::Vp8));
    let b = net.join("room", false, None);
    assert!(net.connect_all(Duration::from_secs(5)));
    run_call(&mut net, &[a], VideoCodec::Vp8, 15);
    let b_id = net.peers[b].endpoint.expect("joined");
    let offers_before = net
        .renegotiations
        .iter()
        .filter(|(e, _, _)| *e == b_id)
        .count();

    net.republish_video(a, false);
    net.run_for(Duration::from_millis(100));
    let removals: Vec<_> = net
        .renegotiations
        .iter()
        .filter(|(e, _, r)| *e == b_id && !r.is_empty())
        .cloned()
        .collect();
    assert_eq!(removals.len(), 1, "b is told the video went away");
    assert_eq!(removals[0].2.len(), 1);

    net.republish_video(a, true);
    net.run_for(Duration::from_millis(100));
    let after: Vec<_> = net
        .renegotiations
        .iter()
        .filter(|(e, _, _)| *e == b_id)
        .collect();
    assert_eq!(
        after.len(),
        offers_before + 2,
        "and told when it comes back"
    );
    let readded = &after.last().expect("offer").1;
    assert_eq!(readded.len(), 1);
    assert_eq!(readded[0].kind, sfu::MediaKind::Video);
    // The new m-line has a new name: content names are never reused.
    assert_ne!(readded[0].mid, removals[0].2[0]);

    // Video flows again on the new track.
    let before = net.peers[b].received.iter().filter(|r| r.pt != 111).count();
    run_call(&mut net, &[a], VideoCodec::Vp8, 30);
    let after = net.peers[b].received.iter().filter(|r| r.pt != 111).count();
    assert!(after >= before + 20, "video resumes: {before} -> {after}");
}

#[test]
fn late_joiner_triggers_a_keyframe_request() {
    let mut net = SimNet::new(EndpointConfig::default());
    let a = net.join("room", true, Some(VideoCodec::Vp8));
    assert!(net.connect_all(Duration::from_secs(5)));
    run_call(&mut net, &[a], VideoCodec::Vp8, 10);
    let before = net.peers[a].keyframe_requests;
    let late = net.join("room", false, None);
    assert!(net.connect_all(Duration::from_secs(5)));
    net.run_for(Duration::from_millis(300));
    assert!(
        net.peers[a].keyframe_requests > before,
        "the publisher is asked for a keyframe"
    );
    // The late joiner's video starts on that keyframe.
    for f in 0..20 {
        net.send_video(a, f == 0, VideoCodec::Vp8);
        net.run_for(Duration::from_millis(33));
    }
    let first_video = net.peers[late].received.iter().find(|r| r.pt != 111);
    assert!(first_video.is_some(), "video reaches the late joiner");
}

#[test]
fn bad_offers_are_rejected_without_disturbing_the_room() {
    use sfu::{EndpointId, SfuError};
    let mut net = SimNet::new(EndpointConfig::default());
    let a = net.join("room", true, Some(VideoCodec::Vp8));
    let b = net.join("room", false, None);
    assert!(net.connect_all(Duration::from_secs(5)));

    let mut rejected = 0;
    for bad in [
        "v=0\r\n",
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n",
        // An m-line without fingerprint or ICE credentials.
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\na=rtpmap:111 opus/48000/2\r\n",
    ] {
        // What does not even parse as SDP never reaches the bridge.
        if let Ok(offer) = sfu::SdpOffer::from_sdp_string(bad) {
            let r = net.core.create_endpoint(net.now, EndpointId(99), "room".into(), "x".into(), offer);
            assert!(matches!(r, Err(SfuError::BadRemoteDescription(_))), "{bad:?} -> {r:?}");
            rejected += 1;
        }
    }
    assert!(
        rejected >= 1,
        "at least one parsed offer was put to the bridge"
    );

    // An offer with more m-lines than the bridge accepts.
    let mut huge = String::from(
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=fingerprint:sha-256 AA:BB\r\n",
    );
    for i in 0..(confab_proto::limits::MAX_CONTENTS + 1) {
        huge.push_str(&format!(
            "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:{i}\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=setup:actpass\r\na=sendonly\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n"
        ));
    }
    let offer = sfu::SdpOffer::from_sdp_string(&huge).expect("a well-formed if large offer");
    let r = net
        .core
        .create_endpoint(net.now, EndpointId(100), "room".into(), "big".into(), offer);
    match r {
        Err(SfuError::BadRemoteDescription(why)) => {
            assert!(why.contains("m-lines"), "{why}");
            assert!(why.contains("MAX_CONTENTS"), "names the limit: {why}");
        }
        other => panic!(
            "a {}-line offer must be refused: {other:?}",
            confab_proto::limits::MAX_CONTENTS + 1
        ),
    }
    assert_eq!(net.core.endpoint_count(), 2);
    let answer_without_offer = net.core.accept_answer(
        net.now,
        net.peers[a].endpoint.expect("joined"),
        sfu::SdpAnswer::from_sdp_string("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n")
            .expect("parses"),
    );
    assert!(matches!(
        answer_without_offer,
        Err(SfuError::NoPendingOffer(_))
    ));
    let before = received_counters(&net, b);
    run_call(&mut net, &[a], VideoCodec::Vp8, 10);
    assert!(received_counters(&net, b) > before, "the call goes on");
}

#[test]
fn metrics_count_what_the_bridge_does() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    // Handles are bound when the core is built; build it under the recorder.
    let mut net =
        metrics::with_local_recorder(&recorder, || SimNet::new(EndpointConfig::default()));
    let a = net.join("room", true, Some(VideoCodec::Vp8));
    let _b = net.join("room", false, None);
    assert!(net.connect_all(Duration::from_secs(5)));
    run_call(&mut net, &[a], VideoCodec::Vp8, 30);
    net.run_for(Duration::from_secs(2));

    let snapshot = snapshotter.snapshot().into_hashmap();
    let value = |name: &str| -> f64 {
        snapshot
            .iter()
            .filter(|(k, _)| k.key().name() == name)
            .map(|(_, (_, _, v))| match v {
                DebugValue::Counter(c) => *c as f64,
                DebugValue::Gauge(g) => g.into_inner(),
                DebugValue::Histogram(h) => h.len() as f64,
            })
            .sum()
    };
    use sfu::metrics::names;
    assert_eq!(value(names::ENDPOINTS), 2.0);
    assert_eq!(value(names::ROOMS), 1.0);
    assert!(
        value(names::FORWARDED) >= 40.0,
        "forwarded {}",
        value(names::FORWARDED)
    );
    assert!(value(names::PACKETS_IN) > value(names::FORWARDED));
    assert!(value(names::BYTES_OUT) > 30_000.0);
    assert!(value(names::KEYFRAME_REQUESTS) >= 1.0);
}

#[test]
fn simulcast_subscriber_gets_one_layer_under_one_ssrc_and_switches_down() {
    let mut net = SimNet::new(EndpointConfig::default());
    let publisher = net.join_simulcast("room", &["q", "h", "f"]);
    let sub = net.join("room", false, None);
    assert!(net.connect_all(Duration::from_secs(5)));
    net.run_for(Duration::from_millis(200));

    // All three layers, keyframes every 30 frames.
    let mut frame = 0;
    for _ in 0..90 {
        let key = frame % 30 == 0;
        for (tag, rid) in [(1u8, "q"), (2, "h"), (3, "f")] {
            net.send_simulcast_frame(publisher, rid, tag, frame, key);
        }
        frame += 1;
        net.exchange();
        net.run_for(Duration::from_millis(33));
    }
    let got: Vec<_> = net.peers[sub].received.clone();
    let ssrcs: std::collections::BTreeSet<_> = got.iter().map(|r| r.ssrc).collect();
    assert_eq!(ssrcs.len(), 1, "one SSRC for the track");
    // It starts on whatever layer has a keyframe first and is on the top
    // layer from the next keyframe on (frame 30), for as long as it is sent.
    let counters: Vec<u32> = got.iter().filter_map(|r| r.counter).collect();
    assert_eq!(
        counters.len(),
        got.len(),
        "every packet carries its counter"
    );
    assert!(
        counters.iter().all(|c| c & 0xff_ffff < 30 || c >> 24 == 3),
        "{counters:x?}"
    );
    assert!(counters.iter().filter(|c| *c >> 24 == 3).count() >= 55);
    let top_count = got.len();

    // The top layer stops (the sender's bandwidth dropped): after it has
    // been quiet for a second, the subscriber moves to "h" at a keyframe.
    for _ in 0..90 {
        let key = frame % 30 == 0;
        for (tag, rid) in [(1u8, "q"), (2, "h")] {
            net.send_simulcast_frame(publisher, rid, tag, frame, key);
        }
        frame += 1;
        net.exchange();
        net.run_for(Duration::from_millis(33));
    }
    let got = &net.peers[sub].received;
    let after: Vec<_> = got[top_count..].to_vec();
    assert!(
        after.len() > 20,
        "video continues after the switch: {}",
        after.len()
    );
    assert!(
        after.iter().all(|r| r.counter.map(|c| c >> 24) == Some(2)),
        "now layer h"
    );
    assert!(
        after.iter().all(|r| r.ssrc == got[0].ssrc),
        "same SSRC across the switch"
    );
    // Sequence numbers continue without a gap across the switch.
    let seqs: Vec<u64> = got.iter().map(|r| r.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "continuous: {seqs:?}"
    );
}

#[test]
fn every_forwarded_packet_leaves_with_the_input_that_caused_it() {
    // Forwarded media is written into each subscriber's session; it must go
    // out while the bridge handles the publisher's packet, not wait for the
    // worker's timer, which a busy socket can hold off for as long as
    // packets keep arriving.
    let mut net = SimNet::new(EndpointConfig::default());
    let publishers: Vec<usize> = (0..3)
        .map(|_| net.join("room", true, Some(VideoCodec::Vp8)))
        .collect();
    let listeners: Vec<usize> = (0..3).map(|_| net.join("room", false, None)).collect();
    assert!(net.connect_all(Duration::from_secs(5)), "all peers connect");
    net.run_for(Duration::from_millis(200));
    // Keyframes open every subscriber's video.
    for &p in &publishers {
        net.send_video(p, true, VideoCodec::Vp8);
        net.send_audio(p);
    }
    net.run_for(Duration::from_millis(200));
    let before: Vec<usize> = (0..net.peers.len())
        .map(|p| received_counters(&net, p))
        .collect();

    // One round of media from every publisher, and no time passes: only
    // the inputs themselves drive the bridge.
    for &p in &publishers {
        net.send_video(p, false, VideoCodec::Vp8);
        net.send_audio(p);
    }
    net.exchange();

    for &s in publishers.iter().chain(&listeners) {
        let new = received_counters(&net, s) - before[s];
        let others = publishers.iter().filter(|&&p| p != s).count();
        assert_eq!(
            new,
            2 * others,
            "peer {s} got one video and one audio packet from each of the {others} other publishers"
        );
    }
}

/// A connectivity check made with `password` for peer `i`'s session (its
/// USERNAME is right: the ufrags travel in clear).
fn check_for(net: &mut SimNet, i: usize, password: &[u8]) -> Vec<u8> {
    use str0m::ice::{StunMessage, TransId};
    let peer_ufrag = net.peers[i].rtc.direct_api().local_ice_credentials().ufrag;
    let username = format!("{}:{peer_ufrag}", net.peers[i].bridge_ice.0);
    let hmac = str0m::crypto::from_feature_flags().sha1_hmac_provider;
    let msg = StunMessage::binding_request(&username, TransId::new(), true, 7, 100, false);
    let mut buf = vec![0u8; 1500];
    let n = msg
        .to_bytes(Some(password), &mut buf, |k, p| hmac.sha1_hmac(k, p))
        .expect("a binding request serializes");
    buf.truncate(n);
    buf
}

/// RFC 7675 consent counts only checks made with the session's ICE
/// password. Someone who saw a participant's checks (the ufrags travel in
/// clear) and sends their own with the right USERNAME does not keep a
/// departed participant's session alive (before checks were verified,
/// they did), and a flood of them from many addresses does not disturb a
/// participant who is still there.
#[test]
fn forged_consent_checks_keep_no_session_and_disturb_no_one() {
    let config = EndpointConfig {
        consent_timeout: Duration::from_secs(3),
        ..Default::default()
    };
    let mut net = SimNet::new(config);
    let a = net.join("room", true, Some(VideoCodec::Vp8));
    let b = net.join("room", true, Some(VideoCodec::Vp8));
    let c = net.join("room", true, Some(VideoCodec::Vp8));
    assert!(net.connect_all(Duration::from_secs(5)), "all connect");
    let b_id = net.peers[b].endpoint.expect("b has an endpoint");
    let b_addr = net.peers[b].addr;
    net.send_video(c, true, VideoCodec::Vp8);
    net.exchange();
    net.run_for(Duration::from_millis(200));

    // b's checks stop. For twice the consent timeout, a forger sends
    // checks with the wrong password every half second: for b from b's
    // address, for c from ten addresses of its own. c keeps publishing.
    net.peers[b].silent = true;
    for round in 0..12u8 {
        let now = net.now;
        let forged = check_for(&mut net, b, b"not the password");
        net.core.handle_datagram(now, now, b_addr, &forged);
        let forged = check_for(&mut net, c, b"not the password");
        for port in 0..10u16 {
            let from = std::net::SocketAddr::from(([127, 0, 9, round], 6000 + port));
            net.core.handle_datagram(now, now, from, &forged);
        }
        let before = net.peers[a].received.len();
        net.send_video(c, false, VideoCodec::Vp8);
        net.exchange();
        assert!(
            net.peers[a].received.len() > before,
            "round {round}: a still gets c's video"
        );
        net.run_for(Duration::from_millis(500));
    }
    let closed: Vec<_> = net
        .events
        .iter()
        .filter_map(|e| match e {
            CoreEvent::Endpoint(id, sfu::EndpointEvent::Closed(reason)) => {
                Some((*id, reason.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        closed,
        [(b_id, sfu::CloseReason::ConsentExpired)],
        "b's session expires despite the forged checks; a's and c's genuine checks keep theirs"
    );
    assert!(
        net.connected(a) && net.connected(c),
        "a and c are still in the call"
    );
}
