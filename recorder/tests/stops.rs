//! Recordings stop cleanly by themselves: when the disk holding them is
//! nearly full, and when everyone has left the room. Either way the room's
//! owner hears why, and the files are closed and play.

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;
use confab_tests::VideoCodec;
use recorder::{
    CompositeConfig, OutputCodec, RecordOptions, RecordingEnded, Recordings, StopReason,
    EMPTY_GRACE,
};
use sfu::RoomId;

const SMALL: CompositeConfig = CompositeConfig {
    width: 320,
    height: 180,
    fps: 10,
    codec: OutputCodec::H264,
    kbps: 300,
};

/// Every file of the recording (none still being written) plays: each
/// has a video stream with frames and lasts at least `min_secs`.
fn all_play(recordings: &Recordings, expected: usize, min_secs: f64) {
    let files = recordings.files().expect("the directory lists");
    assert_eq!(files.len(), expected, "{files:?}");
    for f in &files {
        assert!(!f.in_progress, "{} is closed", f.name);
        let probe = ffprobe(&recordings.dir().join(&f.name));
        let video = probe
            .stream("video")
            .unwrap_or_else(|| panic!("{} has video: {probe:?}", f.name));
        assert!(
            video.frames > 0 && video.decoded == video.frames,
            "{}: {probe:?}",
            f.name
        );
        assert!(probe.duration >= min_secs, "{}: {probe:?}", f.name);
    }
}

async fn ended(
    rx: &mut tokio::sync::broadcast::Receiver<RecordingEnded>,
    within: Duration,
) -> RecordingEnded {
    tokio::time::timeout(within, rx.recv())
        .await
        .expect("the recording ends by itself in time")
        .expect("an event")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nearly_full_disk_stops_the_recording_cleanly() {
    confab_tests::init_tracing();
    let sfu = start_sfu();
    let (alice, _) = join(&sfu, "full", "alice", VideoCodec::Vp8).await;
    alice.wait_connected(CONNECT).await;
    let dir = scratch_dir("disk-full");

    // "Nearly full" is set 128 MiB below what is free now, so that other
    // programs writing meanwhile do not trip it; then the test itself
    // fills the disk past it, as a growing log or another recording would.
    const HEADROOM: u64 = 128 << 20;
    const FILLER: u64 = 160 << 20;
    let free = recorder::free_space(&dir).expect("free space of the scratch directory");
    assert!(
        free > 4 * FILLER,
        "the test needs {} MiB free, has {} MiB",
        (4 * FILLER) >> 20,
        free >> 20
    );
    let options = RecordOptions {
        composite: Some(SMALL),
        min_free_bytes: free - HEADROOM,
        ..RecordOptions::default()
    };
    let recordings = Recordings::with_options(sfu.clone(), &dir, options);
    let mut events = recordings.subscribe();
    let room = RoomId::from("full");
    recordings.start(&room, "test").expect("recording starts");
    alice.start_sending();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        recordings.is_recording(&room),
        "with room to spare it records on"
    );

    let filler_dir = scratch_dir("disk-full-filler");
    let filler = filler_dir.join("filler");
    let written = tokio::task::spawn_blocking({
        let filler = filler.clone();
        move || {
            let mut f = std::fs::File::create(&filler)?;
            let chunk = vec![0x5au8; 1 << 20];
            for _ in 0..FILLER >> 20 {
                f.write_all(&chunk)?;
            }
            f.sync_all()
        }
    })
    .await
    .expect("join");
    let e = ended(&mut events, Duration::from_secs(10)).await;
    let _ = std::fs::remove_dir_all(&filler_dir);
    written.expect("the filler is written");
    assert_eq!(
        e,
        RecordingEnded {
            room: room.clone(),
            reason: StopReason::DiskFull
        }
    );
    assert!(!recordings.is_recording(&room));
    alice.stop_sending();
    all_play(&recordings, 2, 2.0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recording_stops_when_everyone_has_left() {
    confab_tests::init_tracing();
    let sfu = start_sfu();
    let (alice, a) = join(&sfu, "leaving", "alice", VideoCodec::Vp8).await;
    let (bob, b) = join(&sfu, "leaving", "bob", VideoCodec::H264).await;
    alice.wait_connected(CONNECT).await;
    bob.wait_connected(CONNECT).await;
    let dir = scratch_dir("empty");
    let options = RecordOptions {
        composite: Some(SMALL),
        min_free_bytes: 0,
        ..RecordOptions::default()
    };
    let recordings = Recordings::with_options(sfu.clone(), &dir, options);
    let mut events = recordings.subscribe();
    let room = RoomId::from("leaving");
    recordings.start(&room, "test").expect("recording starts");
    alice.start_sending();
    bob.start_sending();
    tokio::time::sleep(Duration::from_secs(3)).await;

    // One leaves: the recording goes on.
    sfu.close_endpoint(a).await.expect("alice leaves");
    tokio::time::sleep(EMPTY_GRACE + Duration::from_secs(1)).await;
    assert!(recordings.is_recording(&room), "someone is still there");
    // The last one leaves: it ends by itself after the grace period.
    sfu.close_endpoint(b).await.expect("bob leaves");
    let e = ended(&mut events, EMPTY_GRACE + Duration::from_secs(5)).await;
    assert_eq!(
        e,
        RecordingEnded {
            room: room.clone(),
            reason: StopReason::RoomEmpty
        }
    );
    assert!(!recordings.is_recording(&room));
    alice.stop_sending();
    bob.stop_sending();
    // Alice's file, Bob's file, and the composite.
    all_play(&recordings, 3, 2.5);
    let _ = std::fs::remove_dir_all(&dir);
}
