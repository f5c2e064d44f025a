//! Recordings of a real call: two webrtc-rs publishers (VP8 + Opus,
//! H.264 + Opus, real encoded 320x240 video) on the media plane, recorded
//! for 5 s per participant and composited, and the files checked with
//! ffprobe (every frame is there and decodes) and ffmpeg (the composite
//! shows both pictures).

mod common;

use std::time::Duration;

use common::*;
use confab_tests::VideoCodec;
use recorder::composite::layout::{fit, grid};
use recorder::{CompositeConfig, OutputCodec, RecordOptions, Recorder};

const RECORD: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_publishers_are_recorded_per_participant_and_composited() {
    confab_tests::init_tracing();
    let sfu = start_sfu();
    let (alice, _) = join(&sfu, "room", "alice", VideoCodec::Vp8).await;
    let (bob, _) = join(&sfu, "room", "bob", VideoCodec::H264).await;
    alice.wait_connected(CONNECT).await;
    bob.wait_connected(CONNECT).await;

    let dir = scratch_dir("per-track");
    let composite = CompositeConfig {
        width: 640,
        height: 360,
        fps: 15,
        codec: OutputCodec::H264,
        kbps: 600,
    };
    let options = RecordOptions {
        composite: Some(composite),
        ..RecordOptions::default()
    };
    let recording =
        Recorder::start_with(&sfu, &"room".into(), &dir, options, None).expect("recording starts");
    alice.start_sending();
    bob.start_sending();
    tokio::time::sleep(RECORD).await;
    alice.stop_sending();
    bob.stop_sending();
    // What was sent last is on its way through the bridge.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let files = tokio::task::spawn_blocking(move || recording.stop())
        .await
        .expect("join")
        .expect("recording stops cleanly");
    assert_eq!(
        files.len(),
        3,
        "one file per participant and the composite: {files:?}"
    );
    let mut longest: f64 = 0.0;

    for (peer, ext, format, video_codec) in [
        (&alice, "webm", "matroska,webm", "vp8"),
        (&bob, "mp4", "mov,mp4", "h264"),
    ] {
        let (audio_sent, video_sent) = peer.frames_sent();
        let file = files
            .iter()
            .find(|f| f.name.starts_with(peer.name()) && f.name.ends_with(ext))
            .unwrap_or_else(|| panic!("a .{ext} file named after {}: {files:?}", peer.name()));
        let path = dir.join(&file.name);
        let probe = ffprobe(&path);
        assert!(probe.format.contains(format), "{}: {probe:?}", peer.name());
        let video = probe
            .stream("video")
            .unwrap_or_else(|| panic!("{} has video: {probe:?}", peer.name()));
        let audio = probe
            .stream("audio")
            .unwrap_or_else(|| panic!("{} has audio: {probe:?}", peer.name()));
        assert_eq!(video.codec, video_codec);
        assert_eq!(audio.codec, "opus");
        assert_eq!(
            audio.decoded,
            audio.frames,
            "{}: every Opus frame decodes: {probe:?}",
            peer.name()
        );
        assert_eq!(
            video.decoded,
            video.frames,
            "{}: every video frame decodes: {probe:?}",
            peer.name()
        );
        // The file lasts as long as the media sent: the sender's RTP clock
        // advances one frame (1/30 s) per frame, and on a loaded machine it
        // sends fewer than 30 frames in each second of RECORD.
        let secs = f64::from(video_sent) / 30.0;
        longest = longest.max(secs);
        assert!(
            secs > RECORD.as_secs_f64() / 2.0,
            "{}: only {video_sent} video frames sent in {RECORD:?}",
            peer.name()
        );
        assert!(
            (probe.duration - secs).abs() <= secs * 0.1,
            "{}: {:.2} s recorded for {secs:.2} s sent: {probe:?}",
            peer.name(),
            probe.duration
        );
        // Loopback loses nothing in practice; allow a stray packet.
        for (what, got, sent) in [
            ("video", video.frames, video_sent),
            ("audio", audio.frames, audio_sent),
        ] {
            let sent = u64::from(sent);
            assert!(
                got <= sent && got * 100 >= sent * 97,
                "{}: {got} {what} frames in the file, {sent} sent: {probe:?}",
                peer.name()
            );
        }
    }

    // The composite: H.264 + Opus in MP4, as long as the call, 15 frames a
    // second, every frame decodable, both participants on screen.
    let path = dir.join("composite.mp4");
    let probe = ffprobe(&path);
    let video = probe
        .stream("video")
        .unwrap_or_else(|| panic!("the composite has video: {probe:?}"));
    let audio = probe
        .stream("audio")
        .unwrap_or_else(|| panic!("the composite has audio: {probe:?}"));
    assert_eq!(
        (video.codec.as_str(), audio.codec.as_str()),
        ("h264", "opus")
    );
    assert!(
        (probe.duration - longest).abs() <= longest * 0.1,
        "composite: {:.2} s for {longest:.2} s sent: {probe:?}",
        probe.duration
    );
    let expected = probe.duration * f64::from(composite.fps);
    assert!(
        (video.frames as f64 - expected).abs() <= 2.0,
        "composite: {} frames in {:.2} s: {probe:?}",
        video.frames,
        probe.duration
    );
    assert_eq!(
        video.decoded, video.frames,
        "every composite frame decodes: {probe:?}"
    );
    assert!(
        (audio.frames as f64 - probe.duration * 50.0).abs() <= 5.0,
        "20 ms of mixed sound per frame: {probe:?}"
    );

    let luma = frame_luma(&path, 3.0, composite.width, composite.height);
    let cells = grid(2, composite.width, composite.height);
    for (who, cell) in ["alice", "bob"].into_iter().zip(cells) {
        let r = fit(cell, VIDEO_WIDTH, VIDEO_HEIGHT);
        let mut sum = 0u64;
        for y in r.y..r.bottom() {
            for x in r.x..r.right() {
                sum += u64::from(luma[(y * composite.width + x) as usize]);
            }
        }
        let mean = sum as f64 / f64::from(r.w * r.h);
        assert!(
            mean > 60.0,
            "{who}'s picture is on the composite at 3 s (mean luma {mean:.0})"
        );
    }
    if std::env::var_os("CONFAB_KEEP_RECORDINGS").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The luma plane of the composite's frame at `at` seconds, from ffmpeg.
fn frame_luma(path: &std::path::Path, at: f64, width: u32, height: u32) -> Vec<u8> {
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-ss", &at.to_string(), "-i"])
        .arg(path)
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "ffmpeg decodes a frame: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        out.stdout.len(),
        (width * height) as usize,
        "one {width}x{height} frame"
    );
    out.stdout
}
