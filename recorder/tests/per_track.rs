//! Per-participant recordings of a real call: two webrtc-rs publishers
//! (VP8 + Opus, H.264 + Opus, real encoded 320x240 video) on the media
//! plane, recorded for 5 s, and the files checked with ffprobe: every
//! frame is there and decodes.

mod common;

use std::time::Duration;

use common::*;
use confab_tests::VideoCodec;
use recorder::Recorder;

const RECORD: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_publishers_are_recorded_per_participant() {
    confab_tests::init_tracing();
    let sfu = start_sfu();
    let (alice, _) = join(&sfu, "room", "alice", VideoCodec::Vp8).await;
    let (bob, _) = join(&sfu, "room", "bob", VideoCodec::H264).await;
    alice.wait_connected(CONNECT).await;
    bob.wait_connected(CONNECT).await;

    let dir = scratch_dir("per-track");
    let recording = Recorder::start(&sfu, &"room".into(), &dir).expect("recording starts");
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
    assert_eq!(files.len(), 2, "one file per participant: {files:?}");

    for (peer, ext, format, video_codec) in
        [(&alice, "webm", "matroska,webm", "vp8"), (&bob, "mp4", "mov,mp4", "h264")]
    {
        let (audio_sent, video_sent) = peer.frames_sent();
        let path = file_with_extension(&dir, ext);
        assert!(path.file_name().unwrap().to_string_lossy().starts_with(peer.name()), "{path:?} is named after the participant");
        let probe = ffprobe(&path);
        assert!(probe.format.contains(format), "{}: {probe:?}", peer.name());
        let video = probe.stream("video").unwrap_or_else(|| panic!("{} has video: {probe:?}", peer.name()));
        let audio = probe.stream("audio").unwrap_or_else(|| panic!("{} has audio: {probe:?}", peer.name()));
        assert_eq!(video.codec, video_codec);
        assert_eq!(audio.codec, "opus");
        assert_eq!(audio.decoded, audio.frames, "{}: every Opus frame decodes: {probe:?}", peer.name());
        assert_eq!(video.decoded, video.frames, "{}: every video frame decodes: {probe:?}", peer.name());
        // The file lasts as long as the media sent: the sender's RTP clock
        // advances one frame (1/30 s) per frame, and on a loaded machine it
        // sends fewer than 30 frames in each second of RECORD.
        let secs = f64::from(video_sent) / 30.0;
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
        for (what, got, sent) in [("video", video.frames, video_sent), ("audio", audio.frames, audio_sent)] {
            let sent = u64::from(sent);
            assert!(
                got <= sent && got * 100 >= sent * 97,
                "{}: {got} {what} frames in the file, {sent} sent: {probe:?}",
                peer.name()
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
