//! The media plane against an independent WebRTC stack: webrtc-rs peers
//! (not str0m) join rooms through the `SfuHandle` API and exchange real
//! DTLS-SRTP over loopback UDP with the bridge's worker threads.

use confab_tests as common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::bridge::{join_sfu as join, start_sfu, Joined, SdpFilter};
use common::proxy::rewrite_candidates;
use common::{eventually, init_tracing, LossyProxy, MediaKind, PeerOptions, VideoCodec};
use sfu::{CloseReason, EndpointConfig, RoomEvent, SfuHandle};
use tokio::net::UdpSocket;

const CONNECT: Duration = Duration::from_secs(10);

/// The call most tests here start from: `names.0` joins `room` publishing
/// VP8 and Opus, then `names.1` joins built with `second` (its SDP from
/// the bridge passed through `filter`, if any), and both connect. Nobody
/// sends yet.
async fn two_peers(
    sfu: &SfuHandle,
    room: &str,
    names: (&str, &str),
    second: PeerOptions,
    filter: Option<SdpFilter>,
) -> (Joined, Joined) {
    let a = join(
        sfu,
        room,
        names.0,
        PeerOptions::publisher(VideoCodec::Vp8),
        None,
    )
    .await;
    let b = join(sfu, room, names.1, second, filter).await;
    a.peer.wait_connected(CONNECT).await;
    b.peer.wait_connected(CONNECT).await;
    (a, b)
}

/// Every participant receives the audio and video of every other, in
/// order, with the payload types it negotiated.
async fn three_party_call(codec: VideoCodec) {
    init_tracing();
    let (sfu, _rooms) = start_sfu(EndpointConfig::default());
    let mut ps = Vec::new();
    for name in ["alice", "bob", "carol"] {
        ps.push(join(&sfu, "room", name, PeerOptions::publisher(codec), None).await);
    }
    for p in &ps {
        p.peer.wait_connected(CONNECT).await;
        p.peer.start_sending();
    }

    let all_flowing = eventually(Duration::from_secs(20), || {
        ps.iter().all(|p| {
            ps.iter().filter(|o| o.id != p.id).all(|o| {
                let got = p.peer.received_from(&o.stream_id());
                got.len() == 2 && got.iter().all(|t| t.counters.len() >= 40)
            })
        })
    })
    .await;

    for p in &ps {
        let negotiated = p.peer.negotiated_payload_types().await;
        for o in ps.iter().filter(|o| o.id != p.id) {
            let got = p.peer.received_from(&o.stream_id());
            let kinds: BTreeSet<_> = got.iter().map(|t| t.kind).collect();
            assert_eq!(
                kinds,
                BTreeSet::from([MediaKind::Audio, MediaKind::Video]),
                "{} gets audio and video from {}: {got:#?}",
                p.peer.name(),
                o.peer.name()
            );
            for t in &got {
                assert!(
                    t.counters.len() >= 40,
                    "{} got {} packets of {:?} from {}",
                    p.peer.name(),
                    t.counters.len(),
                    t.kind,
                    o.peer.name()
                );
                // The bridge keeps order and never duplicates; on a busy
                // machine a packet may still be lost in a socket buffer
                // and repaired by RTX, which then arrives late.
                assert!(!t.has_duplicates(), "no duplicates: {:?}", t.counters);
                assert!(
                    t.late_arrivals() as u64 <= t.rtx_packets,
                    "in order but for RTX repairs ({} RTX packets): {:?}",
                    t.rtx_packets,
                    t.counters
                );
                let codec_name = match (t.kind, codec) {
                    (MediaKind::Audio, _) => "opus",
                    (MediaKind::Video, VideoCodec::Vp8) => "vp8",
                    (MediaKind::Video, VideoCodec::H264) => "h264",
                };
                let allowed = negotiated.get(codec_name).cloned().unwrap_or_default();
                assert!(
                    !t.payload_types.is_empty() && t.payload_types.is_subset(&allowed),
                    "{} received {codec_name} as {:?}, negotiated {:?}",
                    p.peer.name(),
                    t.payload_types,
                    allowed
                );
            }
        }
    }
    assert!(all_flowing, "every participant receives both others");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_webrtc_rs_peers_vp8_opus() {
    three_party_call(VideoCodec::Vp8).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_webrtc_rs_peers_h264_opus() {
    three_party_call(VideoCodec::H264).await;
}

/// A subscriber losing 5% of what the bridge sends gets the video back
/// through NACK and RTX.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lossy_subscriber_recovers_with_nack_rtx() {
    init_tracing();
    let (sfu, _rooms) = start_sfu(EndpointConfig::default());
    let bridge = sfu.worker_addrs()[0];
    let proxy = LossyProxy::start_with_seed(bridge, 7).await;
    let via_proxy: SdpFilter = {
        let to = proxy.addr();
        Arc::new(move |sdp| rewrite_candidates(&sdp, bridge, to))
    };

    let (publisher, subscriber) = two_peers(
        &sfu,
        "lossy",
        ("pub", "sub"),
        PeerOptions::receiver(VideoCodec::Vp8),
        Some(via_proxy),
    )
    .await;
    let sub_addr: SocketAddr = subscriber.peer.local_addr().expect("subscriber socket");
    proxy.set_loss_toward(sub_addr, 0.05);
    publisher.peer.start_sending();

    // About 6 s of 30 fps video through 5% loss.
    let enough = eventually(Duration::from_secs(20), || {
        subscriber
            .peer
            .received_from(&publisher.stream_id())
            .iter()
            .any(|t| t.kind == MediaKind::Video && t.distinct().len() >= 180)
    })
    .await;
    // Stop, and let the last retransmissions (which cross the same lossy
    // path, so some need a second NACK) land.
    publisher.peer.stop_sending();
    tokio::time::sleep(Duration::from_secs(2)).await;

    let video = subscriber
        .peer
        .received_from(&publisher.stream_id())
        .into_iter()
        .find(|t| t.kind == MediaKind::Video)
        .expect("the subscriber receives the video");
    let wire = subscriber.peer.wire_stats();
    let dropped = proxy.dropped_toward(sub_addr);
    assert!(enough, "video flows through the lossy path");
    assert!(
        dropped >= 5,
        "the proxy dropped packets toward the subscriber: {dropped}"
    );
    assert!(wire.nacks_sent > 0, "the subscriber sent NACKs");
    let rtx: u64 = wire.inbound.values().map(|s| s.rtx_packets).sum();
    assert!(rtx > 0, "the bridge answered with RTX");
    // Every frame arrived despite the loss, but for the last few: a loss
    // there has no later packet to reveal it.
    let max = video.max_counter().unwrap_or(0);
    let missing: Vec<u32> = video
        .missing()
        .into_iter()
        .filter(|c| *c + 3 < max)
        .collect();
    assert!(
        missing.is_empty(),
        "frames never recovered: {missing:?} (dropped {dropped}, rtx {rtx}, nacks {})",
        wire.nacks_sent
    );
    let stats = sfu.stats(subscriber.id).await.expect("stats");
    assert!(
        stats.egress.iter().map(|t| t.nacks).sum::<u64>() > 0,
        "the bridge counted the NACKs: {stats:?}"
    );
    // Statistics name the codec and, for what the subscriber receives, the
    // published track it comes from.
    let published = sfu.stats(publisher.id).await.expect("publisher stats");
    let codecs: Vec<_> = published
        .ingress
        .iter()
        .filter_map(|t| t.codec.as_deref())
        .collect();
    assert!(
        codecs.contains(&"VP8") && codecs.contains(&"opus"),
        "ingress codecs: {published:?}"
    );
    let video_in = stats
        .egress
        .iter()
        .find(|t| t.codec.as_deref() == Some("VP8"))
        .unwrap_or_else(|| panic!("the subscriber's egress names VP8: {stats:?}"));
    assert_eq!(
        video_in.source.as_ref().map(|s| s.publisher),
        Some(publisher.id)
    );
}

/// A subscriber's PLI reaches the publisher as a keyframe request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriber_pli_reaches_publisher() {
    init_tracing();
    let (sfu, _rooms) = start_sfu(EndpointConfig::default());
    let (publisher, subscriber) = two_peers(
        &sfu,
        "pli",
        ("pub", "sub"),
        PeerOptions::receiver(VideoCodec::Vp8),
        None,
    )
    .await;
    publisher.peer.start_sending();

    let ssrc = {
        let ok = eventually(Duration::from_secs(10), || {
            subscriber
                .peer
                .received_of(MediaKind::Video)
                .iter()
                .any(|t| t.counters.len() > 10)
        })
        .await;
        assert!(ok, "video reaches the subscriber");
        subscriber.peer.received_of(MediaKind::Video)[0].ssrc
    };
    // Past the bridge's keyframe request interval since the join request.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let before = publisher.peer.keyframe_requests();
    let keyframes_before = subscriber.peer.received_of(MediaKind::Video)[0].keyframes;
    subscriber.peer.send_pli(ssrc).await.expect("PLI sent");
    let relayed = eventually(Duration::from_secs(3), || {
        publisher.peer.keyframe_requests() > before
    })
    .await;
    assert!(relayed, "the publisher got a keyframe request");
    let keyframe = eventually(Duration::from_secs(3), || {
        subscriber.peer.received_of(MediaKind::Video)[0].keyframes > keyframes_before
    })
    .await;
    assert!(keyframe, "the resulting keyframe reaches the subscriber");
}

/// A participant that goes silent without a goodbye is removed after the
/// consent timeout, and the others see its tracks withdrawn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_participant_is_removed_after_consent_timeout() {
    init_tracing();
    let (sfu, mut rooms) = start_sfu(EndpointConfig {
        consent_timeout: Duration::from_secs(3),
        ..Default::default()
    });
    let (a, b) = two_peers(
        &sfu,
        "consent",
        ("a", "b"),
        PeerOptions::publisher(VideoCodec::Vp8),
        None,
    )
    .await;
    a.peer.start_sending();
    b.peer.start_sending();
    let flowing = eventually(Duration::from_secs(10), || {
        a.peer.received_from(&b.stream_id()).len() == 2
    })
    .await;
    assert!(flowing, "a receives b");

    b.peer.go_silent();
    let removed = eventually(Duration::from_secs(15), || {
        a.removed.lock().expect("lock").len() == 2
    })
    .await;
    assert!(removed, "a's session loses b's two tracks");
    assert_eq!(
        *b.closed.lock().expect("lock"),
        Some(CloseReason::ConsentExpired)
    );
    // The room saw b's tracks withdrawn and b leave.
    let mut withdrawn = 0;
    let mut left = false;
    while let Ok(ev) = rooms.try_recv() {
        match ev {
            RoomEvent::TrackWithdrawn { track, .. } if track.publisher == b.id => withdrawn += 1,
            RoomEvent::EndpointClosed { endpoint, .. } if endpoint == b.id => left = true,
            _ => {}
        }
    }
    assert_eq!(withdrawn, 2);
    assert!(left);
    // a is still in the call and the bridge no longer knows b.
    assert!(sfu.stats(b.id).await.is_err());
    assert!(sfu.stats(a.id).await.expect("a is alive").connected);
}

/// Garbage sprayed at a worker's port during a call changes nothing for
/// the call and panics nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_worker_port_does_not_disturb_a_call() {
    init_tracing();
    let (sfu, _rooms) = start_sfu(EndpointConfig::default());
    let port = sfu.worker_addrs()[0];
    let (a, b) = two_peers(
        &sfu,
        "garbage",
        ("a", "b"),
        PeerOptions::receiver(VideoCodec::Vp8),
        None,
    )
    .await;
    a.peer.start_sending();
    assert!(
        eventually(Duration::from_secs(10), || b
            .peer
            .received_of(MediaKind::Video)
            .len()
            == 1)
        .await
    );

    let attacker = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let video_before = b.peer.received_of(MediaKind::Video)[0].counters.len();
    for i in 0..20_000u32 {
        let len = (rand() % 1200) as usize + 1;
        let mut pkt: Vec<u8> = (0..len).map(|_| rand() as u8).collect();
        match i % 5 {
            // Random bytes as they come.
            0 => {}
            // Truncated STUN binding request (claims a longer body).
            1 => {
                pkt = vec![0x00, 0x01, 0x00, 0x50, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3];
            }
            // STUN binding request with a made-up username.
            2 => {
                pkt.truncate(20);
                pkt.resize(20, 0);
                pkt[..8].copy_from_slice(&[0x00, 0x01, 0x00, 0x0c, 0x21, 0x12, 0xa4, 0x42]);
                pkt.extend_from_slice(&[0x00, 0x06, 0x00, 0x08]);
                pkt.extend_from_slice(b"nope:you");
            }
            // RTP for an unknown SSRC.
            3 => {
                pkt.resize(pkt.len().max(40), 0);
                pkt[0] = 0x80;
                pkt[1] = 96;
            }
            // DTLS-looking noise.
            _ => {
                pkt.resize(pkt.len().max(16), 0);
                pkt[0] = 0x16;
                pkt[1] = 0xfe;
                pkt[2] = 0xfd;
            }
        }
        let _ = attacker.send_to(&pkt, port).await;
        if i % 500 == 0 {
            tokio::task::yield_now().await;
        }
    }
    // The call goes on: new video keeps arriving, and nothing is lost for
    // good (a flood can overrun the kernel's socket buffer; what it drops
    // comes back through NACK/RTX, so order may differ, not completeness).
    let continues = eventually(Duration::from_secs(10), || {
        b.peer.received_of(MediaKind::Video)[0].counters.len() > video_before + 60
    })
    .await;
    assert!(continues, "video keeps flowing after the flood");
    let video = &b.peer.received_of(MediaKind::Video)[0];
    let max = video.max_counter().unwrap_or(0);
    let lost: Vec<u32> = video
        .missing()
        .into_iter()
        .filter(|c| *c + 15 < max)
        .collect();
    assert!(lost.is_empty(), "frames lost for good: {lost:?}");
    assert!(sfu.stats(a.id).await.expect("a alive").connected);
    assert!(sfu.stats(b.id).await.expect("b alive").connected);
    // And the bridge still takes new participants.
    let c = join(
        &sfu,
        "garbage",
        "c",
        PeerOptions::receiver(VideoCodec::Vp8),
        None,
    )
    .await;
    c.peer.wait_connected(CONNECT).await;
}
