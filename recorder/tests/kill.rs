//! A recording process killed with SIGKILL leaves files that play up to
//! their last write: per participant and composited.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use confab_tests::{PeerOptions, TestPeer, VideoCodec};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_survive_sigkill_of_the_recording_process() {
    confab_tests::init_tracing();
    let dir = scratch_dir("kill");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_record-room"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("record-room starts");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).await.expect("ready line");
    assert_eq!(line.trim(), "ready");

    // One publisher per room: VP8 in one, H.264 in the other.
    let mut peers = Vec::new();
    for (room, name, codec) in [
        ("one", "alice", VideoCodec::Vp8),
        ("two", "bob", VideoCodec::H264),
    ] {
        let peer = TestPeer::new(name, PeerOptions::publisher(codec)).await;
        let offer = peer.create_offer().await;
        stdin
            .write_all(format!("offer {room} {name} {}\n{offer}", offer.len()).as_bytes())
            .await
            .expect("send offer");
        line.clear();
        stdout.read_line(&mut line).await.expect("answer line");
        let len: usize = line
            .trim()
            .strip_prefix("answer ")
            .expect("an answer")
            .parse()
            .expect("length");
        let mut answer = vec![0u8; len];
        stdout.read_exact(&mut answer).await.expect("answer");
        peer.apply_answer(String::from_utf8(answer).expect("utf-8"))
            .await;
        peer.wait_connected(CONNECT).await;
        stdin
            .write_all(format!("record {room} {}\n", dir.display()).as_bytes())
            .await
            .expect("record");
        line.clear();
        stdout.read_line(&mut line).await.expect("recording line");
        assert_eq!(line.trim(), "recording");
        peers.push(peer);
    }
    for p in &peers {
        p.start_sending();
    }
    // Fragments are written every second (plus a short reordering window),
    // so a kill loses at most about the last 1.5 s: after 10 s of media
    // that is well within the 20% the check allows.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let sent: Vec<(u32, u32)> = peers.iter().map(|p| p.frames_sent()).collect();
    child.start_kill().expect("SIGKILL");
    let _ = child.wait().await;
    for p in &peers {
        p.stop_sending();
    }

    for (peer, (audio_sent, video_sent), room, ext) in [
        (&peers[0], sent[0], "one", "webm"),
        (&peers[1], sent[1], "two", "mp4"),
    ] {
        let probe = ffprobe(&file_named(&dir, &format!("{room}-{}", peer.name()), ext));
        let video = probe
            .stream("video")
            .unwrap_or_else(|| panic!("{} has video: {probe:?}", peer.name()));
        let audio = probe
            .stream("audio")
            .unwrap_or_else(|| panic!("{} has audio: {probe:?}", peer.name()));
        for (what, got, sent) in [
            ("video", video.frames, video_sent),
            ("audio", audio.frames, audio_sent),
        ] {
            let sent = u64::from(sent);
            assert!(
                got * 100 >= sent * 80,
                "{}: {got} {what} frames readable after the kill, {sent} sent before it: {probe:?}",
                peer.name()
            );
        }
        // The room's composite (10 fps) plays up to its last fragment too.
        let probe = ffprobe(&dir.join(format!("{room}-composite.mp4")));
        let video = probe
            .stream("video")
            .unwrap_or_else(|| panic!("{room}'s composite has video: {probe:?}"));
        let expected = u64::from(video_sent) * 10 / 30;
        assert!(
            video.frames * 100 >= expected * 80 && video.decoded == video.frames,
            "{room}: {} composite frames readable after the kill, {expected} made before it: {probe:?}",
            video.frames
        );
        assert!(
            probe.stream("audio").is_some(),
            "{room}'s composite has sound: {probe:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The one file in `dir` whose name starts with `start` and ends in `.ext`.
fn file_named(dir: &std::path::Path, start: &str, ext: &str) -> std::path::PathBuf {
    let files: Vec<_> = std::fs::read_dir(dir)
        .expect("recording directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            name.starts_with(start) && name.ends_with(&format!(".{ext}"))
        })
        .collect();
    assert_eq!(
        files.len(),
        1,
        "one {start}*.{ext} in {}: {files:?}",
        dir.display()
    );
    files[0].clone()
}
