//! What the recorder's tests share: a room of webrtc-rs publishers on a
//! real media plane, and ffprobe's view of a file.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use confab_tests::bridge::join_sfu;
use confab_tests::{PeerOptions, TestPeer, VideoCodec};
use sfu::{EndpointConfig, EndpointId, SfuHandle};

pub const CONNECT: Duration = Duration::from_secs(10);

/// A media plane of one worker on loopback (the test kit's).
pub fn start_sfu() -> SfuHandle {
    confab_tests::bridge::start_sfu(EndpointConfig::default()).0
}

/// A fresh directory for one test's files.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("confab-recorder-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// Width of the video [`join`] publishes.
pub const VIDEO_WIDTH: u32 = 320;
/// Height of the video [`join`] publishes.
pub const VIDEO_HEIGHT: u32 = 240;

/// A webrtc-rs publisher of real, decodable `video` (320x240, the load
/// tester's clip) and Opus, joined to `room`, answering the bridge's offers.
pub async fn join(
    sfu: &SfuHandle,
    room: &str,
    name: &str,
    video: VideoCodec,
) -> (Arc<TestPeer>, EndpointId) {
    let opts = PeerOptions::encoded_publisher(video, VIDEO_WIDTH, VIDEO_HEIGHT);
    let joined = join_sfu(sfu, room, name, opts, None).await;
    (joined.peer, joined.id)
}

/// One stream as ffprobe reports it.
#[derive(Debug, Clone)]
pub struct Stream {
    pub codec: String,
    pub kind: String,
    /// Frames in the container (`-count_packets`): one per video frame or
    /// Opus packet written.
    pub frames: u64,
    /// Frames ffprobe decoded (`-count_frames`). Video from [`join`] is
    /// real VP8 / H.264 and decodes; the test kit's synthetic video (tag
    /// frames, `PeerOptions::publisher`) carries no picture and does not.
    pub decoded: u64,
}

/// ffprobe's report of a file.
#[derive(Debug, Clone)]
pub struct Probe {
    pub format: String,
    pub duration: f64,
    pub streams: Vec<Stream>,
    pub stderr: String,
}

impl Probe {
    pub fn stream(&self, kind: &str) -> Option<&Stream> {
        self.streams.iter().find(|s| s.kind == kind)
    }
}

/// `ffprobe -v error -show_format -show_streams -count_frames
/// -count_packets -of json`.
pub fn ffprobe(path: &Path) -> Probe {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_format",
            "-show_streams",
            "-count_frames",
            "-count_packets",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs (Debian's ffmpeg package)");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "ffprobe reads {}: {stderr}",
        path.display()
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe prints JSON");
    let num = |v: &serde_json::Value| v.as_str().and_then(|s| s.parse::<f64>().ok());
    let streams = v["streams"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| Stream {
                    codec: s["codec_name"].as_str().unwrap_or("").to_owned(),
                    kind: s["codec_type"].as_str().unwrap_or("").to_owned(),
                    frames: num(&s["nb_read_packets"]).unwrap_or(0.0) as u64,
                    decoded: num(&s["nb_read_frames"]).unwrap_or(0.0) as u64,
                })
                .collect()
        })
        .unwrap_or_default();
    Probe {
        format: v["format"]["format_name"].as_str().unwrap_or("").to_owned(),
        duration: num(&v["format"]["duration"]).unwrap_or(0.0),
        streams,
        stderr,
    }
}

/// The one file in `dir` with this extension.
pub fn file_with_extension(dir: &Path, ext: &str) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("recording directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    assert_eq!(
        files.len(),
        1,
        "one .{ext} file in {}: {files:?}",
        dir.display()
    );
    files[0].clone()
}
