//! Self-test of the interop harness, the test kit's webrtc-rs peers: two [`TestPeer`]s
//! talking directly to each other (no SFU), the synthetic frame codecs, and the
//! [`LossyProxy`].
//!
//! Run with `cargo test -p confab-tests --test harness_selftest -j 2`.

use confab_tests as common;

use std::time::Duration;

use common::frames::{self, Codec};
use common::peer::{negotiated_payload_types, parse_sdp_media, IceTimeouts, RTCDtlsTransportState};
use common::proxy::rewrite_candidates;
use common::{
    connect_pair, eventually, init_tracing, ClientFilter, LossyProxy, MediaKind, PeerOptions,
    RTCPeerConnectionState, TestPeer, VideoCodec,
};
use tokio::net::UdpSocket;

const CONNECT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// frames
// ---------------------------------------------------------------------------------------

#[test]
fn vp8_frames_round_trip() {
    for (counter, key) in [
        (0, true),
        (1, false),
        (0x0000_0100, false),
        (u32::MAX, true),
    ] {
        let p = frames::vp8_payload(counter, key, 42);
        assert_eq!(p[0], 0x10, "descriptor: S bit, PID 0");
        assert_eq!(p[1] & 0x01 == 0, key, "P bit marks keyframes");
        if key {
            assert_eq!(&p[4..7], &[0x9d, 0x01, 0x2a], "keyframe start code");
        }
        let f = frames::parse_vp8(&p).expect("tag");
        assert_eq!((f.counter, f.keyframe, f.sent_micros), (counter, key, 42));
    }
    // An SFU may extend the descriptor (X=1, I=1, 15-bit picture id).
    let mut p = frames::vp8_payload(7, true, 1);
    p[0] = 0x90;
    p.splice(1..1, [0x80, 0x81, 0x23]);
    assert_eq!(frames::parse_vp8_counter(&p), Some((7, true)));
}

#[test]
fn h264_frames_round_trip() {
    // Zero-heavy counters/times exercise emulation prevention.
    for (counter, key) in [(0, true), (1, false), (0x0001_0000, true), (3, false)] {
        let p = frames::h264_payload(counter, key, 3);
        if key {
            assert_eq!(p[0] & 0x1f, 24, "keyframes are STAP-A");
        } else {
            assert_eq!(p[0] & 0x1f, 1, "delta frames are non-IDR slices");
            // Emulation prevention: no 00 00 0x (x <= 2) inside the NAL unit.
            assert!(!p.windows(3).any(|w| w[0] == 0 && w[1] == 0 && w[2] <= 2));
        }
        let f = frames::parse_h264(&p).expect("tag");
        assert_eq!((f.counter, f.keyframe, f.sent_micros), (counter, key, 3));
    }
}

#[test]
fn opus_frames_round_trip() {
    let p = frames::opus_payload(99, 5);
    assert_eq!(p[0], frames::OPUS_TOC);
    assert_eq!(frames::parse_counter(Codec::Opus, &p), Some((99, false)));
}

// ---------------------------------------------------------------------------------------
// peers
// ---------------------------------------------------------------------------------------

/// A publishes audio + VP8, B answers; B must receive both streams in order, and a PLI
/// from B must reach A and produce a keyframe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_peers_exchange_media_and_pli() {
    init_tracing();
    let a = TestPeer::new("alice", PeerOptions::publisher(VideoCodec::Vp8)).await;
    let b = TestPeer::new("bob", PeerOptions::receiver(VideoCodec::Vp8)).await;

    let offer = a.create_offer().await;
    let sections = parse_sdp_media(&offer);
    assert_eq!(sections.len(), 2, "offer: audio + video\n{offer}");
    assert!(
        offer.contains("a=candidate:") && offer.contains("127.0.0.1"),
        "{offer}"
    );
    assert!(
        !offer.contains("typ srflx") && !offer.contains(".local"),
        "{offer}"
    );
    let video = &sections[1];
    assert_eq!(video.rtpmap.get(&96).map(String::as_str), Some("vp8"));
    assert_eq!(video.rtpmap.get(&97).map(String::as_str), Some("rtx"));
    assert_eq!(
        video.fid,
        vec![(a.video_ssrc().unwrap(), a.video_rtx_ssrc().unwrap())]
    );
    assert!(offer.contains("a=rtcp-fb:96 nack pli") && offer.contains("a=rtcp-fb:96 ccm fir"));

    let answer = b.apply_remote_offer(offer).await;
    a.apply_answer(answer.clone()).await;
    a.wait_connected(CONNECT).await;
    b.wait_connected(CONNECT).await;
    assert_eq!(a.local_addr().unwrap().ip().to_string(), "127.0.0.1");

    a.start_sending();
    let (ok, tracks) = b
        .wait_received(Duration::from_secs(5), |t| {
            t.len() == 2 && t.iter().all(|t| t.counters.len() >= 20)
        })
        .await;
    assert!(ok, "bob did not receive both streams: {tracks:#?}");

    let audio = tracks.iter().find(|t| t.kind == MediaKind::Audio).unwrap();
    let video = tracks.iter().find(|t| t.kind == MediaKind::Video).unwrap();
    for t in [audio, video] {
        assert_eq!(t.stream_id, "alice");
        assert_eq!(t.counters[0], 0, "counters start at 0: {t:?}");
        assert!(t.strictly_increasing(), "in order without loss: {t:?}");
        assert!(t.missing().is_empty(), "{t:?}");
        assert_eq!(t.unparsed, 0);
    }
    assert_eq!(audio.ssrc, a.audio_ssrc().unwrap());
    assert_eq!(video.ssrc, a.video_ssrc().unwrap());
    assert_eq!(video.rtx_ssrc, a.video_rtx_ssrc());
    assert!(video.keyframes >= 1, "first frame is a keyframe");

    // Received packets use the payload types B negotiated.
    let negotiated = b.negotiated_payload_types().await;
    assert_eq!(
        negotiated,
        negotiated_payload_types(&answer, &b.remote_sdp().await.unwrap())
    );
    assert!(
        audio.payload_types.is_subset(&negotiated["opus"]),
        "{negotiated:?}"
    );
    assert!(
        video.payload_types.is_subset(&negotiated["vp8"]),
        "{negotiated:?}"
    );

    // A PLI from B reaches A, which answers with a keyframe.
    let requests = a.keyframe_requests();
    let keyframes = video.keyframes;
    b.send_pli(video.ssrc).await.expect("send PLI");
    assert!(
        eventually(Duration::from_secs(3), || a.keyframe_requests() > requests).await,
        "PLI did not reach alice"
    );
    let (ok, tracks) = b
        .wait_received(Duration::from_secs(2), |t| {
            t.iter()
                .any(|t| t.kind == MediaKind::Video && t.keyframes > keyframes)
        })
        .await;
    assert!(ok, "no keyframe after PLI: {tracks:#?}");
    assert!(b.wire_stats().plis_sent >= 1);
    assert!(a.wire_stats().plis_received >= 1);

    let (audio_sent, video_sent) = a.frames_sent();
    assert!(audio_sent > 0 && video_sent > 0);
    a.close().await;
    b.close().await;
}

/// H.264 end to end, and loss on A's video uplink repaired by NACK + RTX: B must end up
/// with every video counter, and the repaired ones must have come in as RTX.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_video_loss_is_repaired_with_rtx() {
    init_tracing();
    let a = TestPeer::new("carol", PeerOptions::publisher(VideoCodec::H264)).await;
    let b = TestPeer::new("dave", PeerOptions::receiver(VideoCodec::H264)).await;
    connect_pair(&a, &b, CONNECT).await;

    a.start_sending();
    // Lose nothing until the stream is established: a receiver cannot NACK packets that
    // precede the first one it saw.
    let (ok, _) = b
        .wait_received(Duration::from_secs(5), |t| {
            t.iter()
                .any(|t| t.kind == MediaKind::Video && t.counters.len() >= 5)
        })
        .await;
    assert!(ok, "video did not start");
    a.set_send_loss(MediaKind::Video, 0.2);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    a.set_send_loss(MediaKind::Video, 0.0);

    let (ok, tracks) = b
        .wait_received(Duration::from_secs(5), |t| {
            t.iter().any(|t| {
                t.kind == MediaKind::Video && t.counters.len() >= 50 && t.missing().is_empty()
            })
        })
        .await;
    let a_wire = a.wire_stats();
    let b_wire = b.wire_stats();
    assert!(
        ok,
        "video not repaired: {tracks:#?}\nalice {a_wire:#?}\ndave {b_wire:#?}"
    );
    let video = tracks.iter().find(|t| t.kind == MediaKind::Video).unwrap();
    assert_eq!(video.counters[0], 0);
    assert_eq!(
        video.distinct().len() as u32,
        video.max_counter().unwrap() + 1
    );
    assert!(video.keyframes >= 1);
    assert!(a_wire.send_loss_dropped > 0, "{a_wire:#?}");
    assert!(b_wire.nacks_sent > 0 && a_wire.nacks_received > 0);
    assert!(a_wire.rtx_sent > 0, "{a_wire:#?}");
    // The repaired packets arrived on the RTX SSRC (wire level) ...
    let rtx = &b_wire.inbound[&a.video_rtx_ssrc().unwrap()];
    assert!(
        rtx.rtx_packets > 0 && !rtx.rtx_counters.is_empty(),
        "{rtx:?}"
    );
    assert_eq!(video.rtx_packets, rtx.rtx_packets);
    // ... and webrtc-rs unwrapped them into the primary track (declared FID group), with
    // the primary payload type.
    assert!(!video.strictly_increasing(), "repairs arrive out of order");
    for c in &rtx.rtx_counters {
        assert!(
            video.counters.contains(c),
            "RTX counter {c} not delivered on the track"
        );
    }
    assert_eq!(video.payload_types, [frames_pt_h264()].into());
    a.close().await;
    b.close().await;
}

/// When the remote SDP does not pair the RTX SSRC with its primary (no `ssrc-group:FID`),
/// webrtc-rs cannot unwrap RTX and drops it before the application; the harness still sees
/// the retransmissions at the wire and decodes their counters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undeclared_rtx_is_counted_at_the_wire() {
    init_tracing();
    let a = TestPeer::new("ivan", PeerOptions::publisher(VideoCodec::Vp8)).await;
    let b = TestPeer::new("judy", PeerOptions::receiver(VideoCodec::Vp8)).await;
    let rtx_ssrc = a.video_rtx_ssrc().unwrap();
    let offer = a.create_offer().await;
    // Hide the RTX SSRC from the receiver.
    let stripped: String = offer
        .lines()
        .filter(|l| {
            !l.starts_with("a=ssrc-group:FID") && !l.starts_with(&format!("a=ssrc:{rtx_ssrc} "))
        })
        .map(|l| format!("{l}\r\n"))
        .collect();
    let answer = b.apply_remote_offer(stripped).await;
    a.apply_answer(answer).await;
    a.wait_connected(CONNECT).await;
    b.wait_connected(CONNECT).await;

    a.start_sending();
    let (ok, _) = b
        .wait_received(Duration::from_secs(5), |t| {
            t.iter()
                .any(|t| t.kind == MediaKind::Video && t.counters.len() >= 5)
        })
        .await;
    assert!(ok, "video did not start");
    a.set_send_loss(MediaKind::Video, 0.2);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    a.set_send_loss(MediaKind::Video, 0.0);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let wire = b.wire_stats();
    let video = b.received_of(MediaKind::Video).remove(0);
    let rtx = wire.inbound.get(&rtx_ssrc).cloned().unwrap_or_default();
    assert!(a.wire_stats().rtx_sent > 0, "alice retransmitted");
    assert!(
        rtx.rtx_packets > 0 && !rtx.rtx_counters.is_empty(),
        "{wire:#?}"
    );
    assert_eq!(video.rtx_ssrc, None);
    assert!(
        !video.missing().is_empty(),
        "nothing repaired on the track: {video:?}"
    );
    for c in &rtx.rtx_counters {
        assert!(
            !video.counters.contains(c),
            "counter {c} was unwrapped after all"
        );
    }
    // Track + RTX together are complete.
    let mut all = video.distinct();
    all.extend(rtx.rtx_counters.iter().copied());
    assert_eq!(all.len() as u32, video.max_counter().unwrap() + 1);
    a.close().await;
    b.close().await;
}

/// Renegotiation initiated by the remote: B adds its own sendonly m-lines with a second
/// offer, A (which already negotiated) answers via `apply_remote_offer`, and media then
/// flows both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_initiated_renegotiation_adds_tracks() {
    init_tracing();
    let a = TestPeer::new("kim", PeerOptions::publisher(VideoCodec::Vp8)).await;
    let b = TestPeer::new("lee", PeerOptions::publisher(VideoCodec::Vp8)).await;
    connect_pair(&a, &b, CONNECT).await;

    let offer = b.create_offer().await;
    let sections = parse_sdp_media(&offer);
    assert!(sections.len() >= 4, "{offer}");
    let answer = a.apply_remote_offer(offer).await;
    b.apply_answer(answer).await;

    a.start_sending();
    b.start_sending();
    for (peer, from) in [(&a, "lee"), (&b, "kim")] {
        let (ok, tracks) = peer
            .wait_received(Duration::from_secs(5), |t| {
                t.iter()
                    .filter(|t| t.stream_id == from && t.counters.len() >= 10)
                    .count()
                    == 2
            })
            .await;
        assert!(ok, "{} did not receive {from}: {tracks:#?}", peer.name());
    }
    a.close().await;
    b.close().await;
}

fn frames_pt_h264() -> u8 {
    common::peer::PT_H264
}

/// `go_silent` cuts a peer off without a goodbye: its remote keeps a healthy DTLS transport
/// and only notices through ICE timeouts. `close` instead sends a DTLS close_notify, which
/// the remote sees at once (a webrtc-rs remote marks its DTLS transport closed — its
/// connection state, oddly, stays `Connected` until ICE gives up).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_peer_versus_closed_peer() {
    init_tracing();
    let fast_ice = IceTimeouts {
        disconnected: Duration::from_millis(1500),
        failed: Duration::from_millis(1500),
        keepalive: Duration::from_millis(250),
    };
    let watcher_opts = || PeerOptions {
        ice_timeouts: Some(fast_ice),
        ..PeerOptions::receiver(VideoCodec::Vp8)
    };

    // Silent: media stops, the remote stays connected until ICE consent runs out.
    let a = TestPeer::new("erin", PeerOptions::publisher(VideoCodec::Vp8)).await;
    let b = TestPeer::new("frank", watcher_opts()).await;
    connect_pair(&a, &b, CONNECT).await;
    a.start_sending();
    assert!(
        b.wait_received(Duration::from_secs(3), |t| t.len() == 2)
            .await
            .0
    );
    a.go_silent();
    assert!(a.is_silent());
    let silent_at = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = b.received().iter().map(|t| t.packets).sum::<u64>();
    assert_eq!(b.connection_state(), RTCPeerConnectionState::Connected);
    assert_eq!(b.dtls_state().await, Some(RTCDtlsTransportState::Connected));
    let state = b
        .wait_for_state(
            |s| s != RTCPeerConnectionState::Connected,
            Duration::from_secs(6),
        )
        .await
        .expect("remote notices the silence through ICE");
    let after = b.received().iter().map(|t| t.packets).sum::<u64>();
    tracing::info!(?state, elapsed = ?silent_at.elapsed(), "silent peer detected");
    assert_eq!(before, after, "nothing arrives from a silent peer");
    assert!(
        matches!(
            state,
            RTCPeerConnectionState::Disconnected | RTCPeerConnectionState::Failed
        ),
        "{state:?}"
    );
    assert_eq!(
        b.dtls_state().await,
        Some(RTCDtlsTransportState::Connected),
        "a silent peer sends no close_notify"
    );
    b.close().await;
    a.close().await;

    // Closed: the close_notify reaches the remote immediately.
    let a = TestPeer::new("grace", PeerOptions::publisher(VideoCodec::Vp8)).await;
    let b = TestPeer::new("heidi", watcher_opts()).await;
    connect_pair(&a, &b, CONNECT).await;
    a.start_sending();
    assert!(
        b.wait_received(Duration::from_secs(3), |t| t.len() == 2)
            .await
            .0
    );
    assert_eq!(b.dtls_state().await, Some(RTCDtlsTransportState::Connected));
    let closed_at = tokio::time::Instant::now();
    a.close().await;
    let mut dtls = None;
    while closed_at.elapsed() < Duration::from_secs(1) {
        dtls = b.dtls_state().await;
        if dtls == Some(RTCDtlsTransportState::Closed) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tracing::info!(?dtls, elapsed = ?closed_at.elapsed(), state = ?b.connection_state(), "closed peer detected");
    assert_eq!(
        dtls,
        Some(RTCDtlsTransportState::Closed),
        "close sends close_notify"
    );
    b.close().await;
}

// ---------------------------------------------------------------------------------------
// proxy
// ---------------------------------------------------------------------------------------

/// The proxy relays both ways with one upstream address per client and drops only SRTP
/// datagrams, only toward the selected client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_relays_and_drops_only_srtp() {
    init_tracing();
    let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let proxy = LossyProxy::start(server.local_addr().unwrap()).await;
    let c1 = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let c2 = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut buf = [0u8; 64];

    // Each client appears to the server under its own proxy address.
    let mut upstream = Vec::new();
    for c in [&c1, &c2] {
        c.send_to(&[0x00, 0x01, 0xaa], proxy.addr()).await.unwrap();
        let (n, from) = tokio::time::timeout(Duration::from_secs(2), server.recv_from(&mut buf))
            .await
            .expect("relayed to server")
            .unwrap();
        assert_eq!(&buf[..n], &[0x00, 0x01, 0xaa]);
        upstream.push(from);
    }
    assert_ne!(upstream[0], upstream[1]);
    assert_eq!(proxy.clients().len(), 2);

    // Drop all SRTP toward c1; STUN (0x00..) and DTLS (0x16) still pass, c2 is unaffected.
    proxy.set_loss_toward(ClientFilter::Addr(c1.local_addr().unwrap()), 1.0);
    for first in [0x80u8, 0x00, 0x16, 0x90] {
        server.send_to(&[first, 1], upstream[0]).await.unwrap();
        server.send_to(&[first, 2], upstream[1]).await.unwrap();
    }
    let mut got1 = Vec::new();
    let mut got2 = Vec::new();
    while let Ok(Ok((n, from))) =
        tokio::time::timeout(Duration::from_millis(300), c1.recv_from(&mut buf)).await
    {
        assert_eq!(from, proxy.addr());
        got1.push(buf[..n].to_vec());
    }
    while let Ok(Ok((n, _))) =
        tokio::time::timeout(Duration::from_millis(300), c2.recv_from(&mut buf)).await
    {
        got2.push(buf[..n].to_vec());
    }
    assert_eq!(got1, vec![vec![0x00, 1], vec![0x16, 1]]);
    assert_eq!(got2.len(), 4);
    assert_eq!(proxy.dropped(), 2);
    assert_eq!(proxy.dropped_toward(c1.local_addr().unwrap()), 2);
    assert_eq!(proxy.dropped_toward(c2.local_addr().unwrap()), 0);

    // Candidate rewriting points SDP at the proxy.
    let server_addr = server.local_addr().unwrap();
    let sdp = format!(
        "v=0\r\na=candidate:1 1 udp 2130706431 {} {} typ host\r\n",
        server_addr.ip(),
        server_addr.port()
    );
    let rewritten = rewrite_candidates(&sdp, server_addr, proxy.addr());
    assert!(rewritten.contains(&format!(
        "{} {} typ host",
        proxy.addr().ip(),
        proxy.addr().port()
    )));
}
