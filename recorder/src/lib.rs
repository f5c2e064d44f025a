//! # recorder — Confab's call recorder
//!
//! Records a room from inside the bridge: the recorder is one more
//! subscriber of the room's published tracks, through the sfu's taps
//! ([`sfu::SfuHandle::tap_room`]), with no network hop and no session.
//!
//! ```text
//!  sfu worker ──TapEvent (RTP of every publisher)──▶ recorder thread
//!                                                     Recording (sans-IO):
//!                                                      frames ─▶ time axis ─▶ files
//!  sfu worker ◀──keyframe requests────────────────────┘
//! ```
//!
//! What it is for:
//! - [`Recording`]: the sans-IO state of one room's per-participant
//!   recording, without transcoding: RTP is depacketized into frames
//!   ([`frame`]), placed on one time axis for the whole room
//!   ([`timeline`]), and written per participant ([`container`]): VP8 +
//!   Opus to WebM, H.264 + Opus to fragmented MP4. Files are written as
//!   media arrives (MP4 fragments at least every second), so a recording
//!   cut short by a crash plays up to its last write.
//! - [`Recorder`]: the thin driver, one thread per recorded room.
//! - [`Recordings`]: Confab's one owner of recordings: at most one per
//!   room, all in one directory, and the list of files there. Signaling
//!   (a moderator's command) and web (the admin API) both go through it.
//!
//! What it is not for (yet): the composited, transcoded recording. The
//! recorder never calls up into signaling or web: they ask, it answers.
//!
//! How data enters and leaves: RTP packets from the sfu's tap channel;
//! files into the directory given to [`Recorder::start`]; keyframe
//! requests back to the sfu.

#![warn(missing_docs)]

pub mod container;
pub mod frame;
pub mod recording;
pub mod registry;
pub mod timeline;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sfu::{RoomId, SfuError, SfuHandle};
use tokio::sync::mpsc;

pub use crate::recording::{RecordedFile, Recording, Sink};
pub use crate::registry::{ActiveRecording, RecordingFile, Recordings};

/// How often the driver lets the recording write what it holds.
const TICK: Duration = Duration::from_millis(250);

/// Why recording failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Writing a file failed (disk full, directory gone, ...).
    #[error("recording I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A muxer refused what it was given.
    #[error("muxing: {0}")]
    Mux(String),
    /// The room could not be tapped.
    #[error(transparent)]
    Sfu(#[from] SfuError),
    /// The recording thread is gone.
    #[error("the recorder stopped")]
    Stopped,
    /// The room is being recorded already ([`Recordings::start`]).
    #[error("the room is being recorded already")]
    AlreadyRecording,
    /// The room is not being recorded ([`Recordings::stop`]).
    #[error("the room is not being recorded")]
    NotRecording,
}

/// Starts recordings.
pub struct Recorder;

/// A running recording of one room.
pub struct RecorderHandle {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<Vec<RecordedFile>, RecordError>>>,
    dir: PathBuf,
    prefix: String,
}

impl Recorder {
    /// Record `room` into `dir` (created if missing), one file per
    /// participant, until [`RecorderHandle::stop`]. The room must have
    /// endpoints.
    pub fn start(sfu: &SfuHandle, room: &RoomId, dir: &Path) -> Result<RecorderHandle, RecordError> {
        Recorder::start_with_prefix(sfu, room, dir, "")
    }

    /// [`Recorder::start`], with every file name starting with `prefix`
    /// (so that recordings of several rooms, or several of one room,
    /// share a directory).
    pub fn start_with_prefix(sfu: &SfuHandle, room: &RoomId, dir: &Path, prefix: &str) -> Result<RecorderHandle, RecordError> {
        std::fs::create_dir_all(dir)?;
        let tap = sfu.tap_room(room)?;
        let out_dir = dir.to_path_buf();
        let file_prefix = prefix.to_owned();
        let sink: Sink = Box::new(move |name: &str| {
            // Unbuffered on purpose: every write reaches the file at once,
            // so a killed process leaves everything written so far.
            let f = File::create(out_dir.join(format!("{file_prefix}{name}")))?;
            Ok(Box::new(f) as Box<dyn recording::Destination>)
        });
        let (stop_tx, stop_rx) = std::sync::mpsc::channel();
        let sfu = sfu.clone();
        let thread = std::thread::Builder::new()
            .name(format!("confab-recorder-{room}"))
            .spawn(move || run(sfu, tap, sink, stop_rx))?;
        tracing::info!(%room, dir = %dir.display(), "recording started");
        Ok(RecorderHandle {
            stop: Some(stop_tx),
            thread: Some(thread),
            dir: dir.to_path_buf(),
            prefix: prefix.to_owned(),
        })
    }
}

impl RecorderHandle {
    /// The directory the files go to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stop recording, close the files, and list them.
    pub fn stop(mut self) -> Result<Vec<RecordedFile>, RecordError> {
        self.stop.take();
        let thread = self.thread.take().ok_or(RecordError::Stopped)?;
        let mut files = thread.join().map_err(|_| RecordError::Stopped)??;
        for f in &mut files {
            f.name = format!("{}{}", self.prefix, f.name);
        }
        Ok(files)
    }
}

impl Drop for RecorderHandle {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(
    sfu: SfuHandle,
    mut tap: mpsc::Receiver<sfu::TapEvent>,
    sink: Sink,
    stop: std::sync::mpsc::Receiver<()>,
) -> Result<Vec<RecordedFile>, RecordError> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut rec = Recording::new(Instant::now(), sink);
    runtime.block_on(async {
        let mut tick = tokio::time::interval(TICK);
        loop {
            if !matches!(stop.try_recv(), Err(std::sync::mpsc::TryRecvError::Empty)) {
                break;
            }
            tokio::select! {
                ev = tap.recv() => {
                    let Some(ev) = ev else { break };
                    let new_publisher = match &ev {
                        sfu::TapEvent::Packet(p) if !rec.knows(p.track.publisher) => Some(p.track.publisher),
                        _ => None,
                    };
                    if let Some(id) = new_publisher {
                        let label = sfu.stats(id).await.map(|s| s.label).unwrap_or_default();
                        rec.set_label(id, &label);
                    }
                    if let Err(e) = rec.handle_tap(ev) {
                        tracing::warn!(error = %e, "recording a track failed");
                    }
                }
                _ = tick.tick() => {
                    if let Err(e) = rec.handle_tick(Instant::now()) {
                        tracing::warn!(error = %e, "recording failed to write");
                    }
                }
            }
            while let Some(track) = rec.poll_keyframe_request() {
                let _ = sfu.tap_keyframe_request(&track);
            }
        }
    });
    rec.finish()
}
