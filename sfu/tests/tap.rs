//! Taps on the sans-IO core: an in-process subscriber (the recorder) gets
//! every packet a room's publishers send, and only that room's.

use std::collections::BTreeMap;
use std::time::Duration;

use confab_media::VideoCodec;
use sfu::sim::{find_counter, SimNet};
use sfu::str0m::format::Codec;
use sfu::{EndpointConfig, MediaKind, RoomId, TapEvent};

/// Per tapped track ("publisher/mid"): its codec, kind and the counters received.
type Tapped = BTreeMap<String, (Codec, MediaKind, Vec<u32>)>;

/// Drain the core's tap queue: the tracks' packets, and the withdrawn tracks.
fn drain(net: &mut SimNet) -> (Tapped, Vec<String>) {
    let mut tracks = Tapped::new();
    let mut withdrawn = Vec::new();
    while let Some(ev) = net.core.poll_tap() {
        match ev {
            TapEvent::Packet(p) => {
                assert_eq!(p.room.as_str(), "room");
                let e = tracks
                    .entry(p.track.to_string())
                    .or_insert((p.codec, p.kind, Vec::new()));
                assert_eq!(e.0, p.codec);
                if let Some(c) = find_counter(&p.payload) {
                    e.2.push(c);
                }
            }
            TapEvent::Withdrawn { track, .. } => withdrawn.push(track.to_string()),
        }
    }
    (tracks, withdrawn)
}

#[test]
fn a_tap_receives_every_published_packet_of_its_room_only() {
    let mut net = SimNet::new(EndpointConfig::default());
    let a = net.join("room", true, Some(VideoCodec::Vp8));
    let b = net.join("room", true, Some(VideoCodec::H264));
    let other = net.join("elsewhere", true, Some(VideoCodec::Vp8));
    assert!(net.connect_all(Duration::from_secs(5)), "all peers connect");
    net.run_for(Duration::from_millis(200));
    net.core.add_tap(RoomId::from("room"));

    for f in 0..30 {
        net.send_video(a, f == 0, VideoCodec::Vp8);
        net.send_video(b, f == 0, VideoCodec::H264);
        net.send_video(other, f == 0, VideoCodec::Vp8);
        net.send_audio(a);
        net.send_audio(other);
        net.exchange();
        net.run_for(Duration::from_millis(33));
    }
    let (tracks, _) = drain(&mut net);
    assert_eq!(
        tracks.len(),
        3,
        "a's audio and video, b's video: {tracks:?}"
    );
    let codecs: Vec<Codec> = tracks.values().map(|t| t.0).collect();
    assert!(
        codecs.contains(&Codec::Vp8)
            && codecs.contains(&Codec::H264)
            && codecs.contains(&Codec::Opus)
    );
    for (track, (codec, kind, counters)) in &tracks {
        assert_eq!(*kind == MediaKind::Audio, *codec == Codec::Opus, "{track}");
        assert_eq!(
            counters,
            &(0..30).collect::<Vec<u32>>(),
            "{track} gets every packet in order"
        );
    }

    // A publisher leaving is told; removing the tap stops the flow.
    net.leave(b);
    let (_, withdrawn) = drain(&mut net);
    assert!(!withdrawn.is_empty(), "b's tracks are withdrawn");
    net.core.remove_tap(&RoomId::from("room"));
    net.send_audio(a);
    net.exchange();
    assert!(
        net.core.poll_tap().is_none(),
        "an untapped room queues nothing"
    );
}
