//! Real encoded video through the bridge: a webrtc-rs publisher sends the load
//! tester's VP8 / H.264 clip ([`PeerOptions::encoded_publisher`]), several RTP
//! packets per frame, and a webrtc-rs subscriber reads the frame tags back.
//!
//! Run with `cargo nextest run -p confab-tests --test encoded_video`.

use confab_tests as common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::bridge::{join_sfu as join, start_sfu, Joined, SdpFilter};
use common::proxy::rewrite_candidates;
use common::{
    eventually, init_tracing, LossyProxy, MediaKind, PeerCodec, PeerOptions, ReceivedTrack,
    TestPeer, VideoCodec,
};
use sfu::{EndpointConfig, EndpointId};

const CONNECT: Duration = Duration::from_secs(10);

fn video_from(peer: &TestPeer, publisher: EndpointId) -> Option<ReceivedTrack> {
    peer.received_from(&publisher.to_string())
        .into_iter()
        .find(|t| t.kind == MediaKind::Video)
}

/// An encoded-video publisher reaches a subscriber through the bridge: many
/// packets per frame, one tag per frame, in order; a PLI restarts the clip
/// at its keyframe.
async fn encoded_video_through_the_bridge(codec: VideoCodec) {
    init_tracing();
    let (sfu, _rooms) = start_sfu(EndpointConfig::default());
    let room = format!("encoded-{codec:?}");
    let Joined {
        peer: publisher,
        id: pub_id,
        ..
    } = join(
        &sfu,
        &room,
        "pub",
        PeerOptions::encoded_publisher(codec, 640, 480),
        None,
    )
    .await;
    let Joined {
        peer: subscriber, ..
    } = join(&sfu, &room, "sub", PeerOptions::receiver(codec), None).await;
    publisher.wait_connected(CONNECT).await;
    subscriber.wait_connected(CONNECT).await;
    publisher.start_sending();

    let flowing = eventually(Duration::from_secs(20), || {
        video_from(&subscriber, pub_id).is_some_and(|t| t.distinct().len() >= 60)
    })
    .await;
    let video = video_from(&subscriber, pub_id).expect("the subscriber receives video");
    assert!(
        flowing,
        "{codec:?}: 60 tagged frames arrive: {} counters, {} packets",
        video.counters.len(),
        video.packets
    );

    // Past the bridge's keyframe request interval since the join.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (requests, keyframes_sent) = (publisher.keyframe_requests(), publisher.keyframes_sent());
    let keyframes_seen = video_from(&subscriber, pub_id).map_or(0, |t| t.keyframes);
    subscriber.send_pli(video.ssrc).await.expect("PLI sent");
    let restarted = eventually(Duration::from_secs(3), || {
        publisher.keyframe_requests() > requests
            && publisher.keyframes_sent() > keyframes_sent
            && video_from(&subscriber, pub_id).is_some_and(|t| t.keyframes > keyframes_seen)
    })
    .await;
    assert!(
        restarted,
        "{codec:?}: a PLI yields a keyframe at the subscriber"
    );

    publisher.stop_sending();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let video = video_from(&subscriber, pub_id).expect("video");
    let (_, frames_sent) = publisher.frames_sent();
    let frames_got = video.distinct().len() as u64;
    assert!(
        video.payload_types.contains(&codec.payload_types().0),
        "{codec:?}: {:?}",
        video.payload_types
    );
    assert!(
        video.distinct().len() == video.counters.len(),
        "{codec:?}: one tag per frame: {:?}",
        video.counters
    );
    assert!(
        frames_got <= u64::from(frames_sent),
        "{frames_got} frames received, {frames_sent} sent"
    );
    assert_eq!(
        video.packets - video.unparsed,
        video.counters.len() as u64,
        "{codec:?}: tagged packets are the counted ones"
    );
    // 640x480 at 1200 kbit/s: about 5 kB a frame, 1200-byte packets.
    assert!(
        video.packets >= 2 * frames_got,
        "{codec:?}: {} packets for {frames_got} frames",
        video.packets
    );
    assert!(
        video.keyframes >= 2,
        "{codec:?}: the first keyframe and the PLI's: {}",
        video.keyframes
    );
    let wire = publisher.wire_stats();
    assert!(
        wire.rtp_sent > u64::from(frames_sent),
        "{codec:?}: {wire:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encoded_vp8_through_the_bridge() {
    encoded_video_through_the_bridge(VideoCodec::Vp8).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encoded_h264_through_the_bridge() {
    encoded_video_through_the_bridge(VideoCodec::H264).await;
}

/// Packets of multi-packet frames lost toward the subscriber are repaired
/// with RTX: every frame's tag arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_packets_of_encoded_frames_are_retransmitted() {
    init_tracing();
    let (sfu, _rooms) = start_sfu(EndpointConfig::default());
    let bridge = sfu.worker_addrs()[0];
    let proxy = LossyProxy::start_with_seed(bridge, 11).await;
    let to = proxy.addr();
    let via_proxy: SdpFilter = Arc::new(move |sdp| rewrite_candidates(&sdp, bridge, to));
    let Joined {
        peer: publisher,
        id: pub_id,
        ..
    } = join(
        &sfu,
        "lossy",
        "pub",
        PeerOptions::encoded_publisher(VideoCodec::Vp8, 320, 240),
        None,
    )
    .await;
    let Joined {
        peer: subscriber, ..
    } = join(
        &sfu,
        "lossy",
        "sub",
        PeerOptions::receiver(VideoCodec::Vp8),
        Some(via_proxy),
    )
    .await;
    publisher.wait_connected(CONNECT).await;
    subscriber.wait_connected(CONNECT).await;
    let sub_addr: SocketAddr = subscriber.local_addr().expect("subscriber socket");
    proxy.set_loss_toward(sub_addr, 0.03);
    publisher.start_sending();

    let enough = eventually(Duration::from_secs(20), || {
        video_from(&subscriber, pub_id).is_some_and(|t| t.distinct().len() >= 120)
    })
    .await;
    publisher.stop_sending();
    tokio::time::sleep(Duration::from_secs(2)).await;

    let video = video_from(&subscriber, pub_id).expect("the subscriber receives video");
    let wire = subscriber.wire_stats();
    let dropped = proxy.dropped_toward(sub_addr);
    assert!(
        enough,
        "video flows through the lossy path: {} frames",
        video.distinct().len()
    );
    assert!(
        dropped >= 5,
        "the proxy dropped packets toward the subscriber: {dropped}"
    );
    assert!(wire.nacks_sent > 0, "the subscriber sent NACKs");
    let rtx: u64 = wire.inbound.values().map(|s| s.rtx_packets).sum();
    assert!(rtx > 0, "the bridge answered with RTX");
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
}
