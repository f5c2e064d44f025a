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
//! - [`Recorder`]: the thin driver: per recorded room, one thread (and
//!   tap) for the per-participant files and one for the composite, so the
//!   heavy one never holds up the other; it also stops the recording when
//!   the disk is nearly full or the room is empty.
//! - [`Recordings`]: Confab's one owner of recordings: at most one per
//!   room, all in one directory, and the list of files there. Signaling
//!   (a moderator's command) and web (the admin API) both go through it.
//!
//! - [`Composite`]: the sans-IO state of one room's composited recording:
//!   every participant's video decoded and laid out in a grid with their
//!   names, their audio mixed, encoded again into one file
//!   ([`composite`]).
//!
//! What it is not for: live streaming, or layouts chosen per room (the
//! grid is the one layout). The recorder never calls up into signaling or
//! web: they ask, it answers; it tells of recordings that stop by
//! themselves through [`Recordings::subscribe`].
//!
//! How data enters and leaves: RTP packets from the sfu's tap channel;
//! files into the directory given to [`Recorder::start`]; keyframe
//! requests back to the sfu.

#![warn(missing_docs)]

pub mod composite;
pub mod container;
pub mod frame;
pub mod recording;
pub mod registry;
pub mod timeline;
pub mod track;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sfu::{RoomId, SfuError, SfuHandle};

pub use crate::composite::{Composite, CompositeConfig, OutputCodec};
use tokio::sync::mpsc;

pub use crate::recording::{RecordedFile, Recording, Sink};
pub use crate::registry::{ActiveRecording, RecordingEnded, RecordingFile, Recordings};

/// How often the driver lets the recording write what it holds (and the
/// composite make its frames).
const TICK: Duration = Duration::from_millis(50);

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
    /// The recording's settings are unusable.
    #[error("recording settings: {0}")]
    Config(String),
}

impl RecordError {
    /// Why a recording command failed, as the person who gave it reads it
    /// (a moderator in the room, an admin in the console).
    pub fn for_people(&self) -> String {
        match self {
            RecordError::AlreadyRecording => "the room is being recorded already".into(),
            RecordError::NotRecording => "the room is not being recorded".into(),
            RecordError::Sfu(SfuError::UnknownRoom(_)) => "no one is in the call yet".into(),
            other => format!("it failed ({other})"),
        }
    }
}

/// What a recording writes, and when it stops by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordOptions {
    /// One file per participant, without transcoding.
    pub per_track: bool,
    /// The composite of everyone, if wanted.
    pub composite: Option<CompositeConfig>,
    /// Stop when the disk holding the files has less than this free.
    pub min_free_bytes: u64,
    /// Every file name starts with this (so that recordings of several
    /// rooms, or several of one room, share a directory).
    pub prefix: String,
}

impl Default for RecordOptions {
    fn default() -> RecordOptions {
        RecordOptions {
            per_track: true,
            composite: None,
            min_free_bytes: 256 << 20,
            prefix: String::new(),
        }
    }
}

/// Why a recording ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// It was asked to stop.
    Requested,
    /// The disk holding the files is nearly full ([`RecordOptions::min_free_bytes`]).
    DiskFull,
    /// No one has been in the room for [`EMPTY_GRACE`].
    RoomEmpty,
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StopReason::Requested => "stopped on request",
            StopReason::DiskFull => "the disk is nearly full",
            StopReason::RoomEmpty => "everyone left",
        })
    }
}

/// How long a room may be empty before its recording stops by itself (a
/// participant reloading the page comes back within it).
pub const EMPTY_GRACE: Duration = Duration::from_secs(3);

/// How often the free disk space is looked at.
const SPACE_CHECK: Duration = Duration::from_secs(1);

/// Called once when a recording ends by itself (not on request).
pub type OnEnd = Box<dyn FnOnce(StopReason) + Send>;

/// Starts recordings.
pub struct Recorder;

type Worker = std::thread::JoinHandle<Result<Vec<RecordedFile>, RecordError>>;

/// A running recording of one room: a thread for the per-participant
/// files and one for the composite, each with its own tap, so that
/// compositing (heavy) never holds up the files written as sent.
pub struct RecorderHandle {
    stops: Vec<std::sync::mpsc::Sender<()>>,
    threads: Vec<Worker>,
    dir: PathBuf,
    prefix: String,
}

impl Recorder {
    /// Record `room` into `dir` (created if missing), one file per
    /// participant, until [`RecorderHandle::stop`]. The room must have
    /// endpoints.
    pub fn start(
        sfu: &SfuHandle,
        room: &RoomId,
        dir: &Path,
    ) -> Result<RecorderHandle, RecordError> {
        Recorder::start_with(sfu, room, dir, RecordOptions::default(), None)
    }

    /// Record `room` into `dir` as `options` say. `on_end` is called once
    /// if the recording stops by itself (disk nearly full, room empty);
    /// the rest of it then stops too.
    pub fn start_with(
        sfu: &SfuHandle,
        room: &RoomId,
        dir: &Path,
        options: RecordOptions,
        on_end: Option<OnEnd>,
    ) -> Result<RecorderHandle, RecordError> {
        if let Some(c) = &options.composite {
            c.validate().map_err(RecordError::Config)?;
        }
        std::fs::create_dir_all(dir)?;
        let on_end = Arc::new(Mutex::new(on_end));
        let mut handle = RecorderHandle {
            stops: Vec::new(),
            threads: Vec::new(),
            dir: dir.to_path_buf(),
            prefix: options.prefix.clone(),
        };
        let parts = [
            (
                options.per_track,
                RecordOptions {
                    composite: None,
                    ..options.clone()
                },
                "files",
            ),
            (
                options.composite.is_some(),
                RecordOptions {
                    per_track: false,
                    ..options.clone()
                },
                "composite",
            ),
        ];
        for (wanted, options, what) in parts {
            if !wanted {
                continue;
            }
            let tap = sfu.tap_room(room)?;
            let (stop_tx, stop_rx) = std::sync::mpsc::channel();
            let job = Job {
                sfu: sfu.clone(),
                room: room.clone(),
                dir: dir.to_path_buf(),
                options,
                stop: stop_rx,
                on_end: on_end.clone(),
            };
            let thread = std::thread::Builder::new()
                .name(format!("confab-recorder-{what}-{room}"))
                .spawn(move || job.run(tap))?;
            handle.stops.push(stop_tx);
            handle.threads.push(thread);
        }
        tracing::info!(%room, dir = %dir.display(), "recording started");
        Ok(handle)
    }
}

impl RecorderHandle {
    /// The directory the files go to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the recording ended by itself.
    pub fn is_finished(&self) -> bool {
        self.threads.iter().all(|t| t.is_finished())
    }

    /// Stop recording, close the files, and list them.
    pub fn stop(mut self) -> Result<Vec<RecordedFile>, RecordError> {
        self.stops.clear();
        let mut files = Vec::new();
        let mut result = Ok(());
        for thread in std::mem::take(&mut self.threads) {
            match thread
                .join()
                .map_err(|_| RecordError::Stopped)
                .and_then(|r| r)
            {
                Ok(f) => files.extend(f),
                Err(e) => result = Err(e),
            }
        }
        result?;
        for f in &mut files {
            f.name = format!("{}{}", self.prefix, f.name);
        }
        Ok(files)
    }

    /// Let the recording finish on its own threads without waiting for it
    /// (it ended by itself already, or will at its next tick).
    pub fn detach(mut self) {
        self.stops.clear();
        self.threads.clear();
    }
}

impl Drop for RecorderHandle {
    fn drop(&mut self) {
        self.stops.clear();
        for t in std::mem::take(&mut self.threads) {
            let _ = t.join();
        }
    }
}

/// Free bytes for unprivileged users on the file system holding `dir`.
// statvfs's counts are 64-bit on this target but 32-bit on others: the
// conversions are needed there.
#[allow(clippy::useless_conversion)]
pub fn free_space(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "path with a NUL byte")
    })?;
    // SAFETY: statvfs writes into the zeroed struct it is given and reads
    // the NUL-terminated path, which outlives the call.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(u64::from(st.f_bavail).saturating_mul(u64::from(st.f_frsize)))
}

/// One recording's thread: the thin driver of [`Recording`] and
/// [`Composite`].
struct Job {
    sfu: SfuHandle,
    room: RoomId,
    dir: PathBuf,
    options: RecordOptions,
    stop: std::sync::mpsc::Receiver<()>,
    /// Shared by the recording's threads: the first to end by itself
    /// calls it.
    on_end: Arc<Mutex<Option<OnEnd>>>,
}

impl Job {
    fn sink(&self) -> Sink {
        let out_dir = self.dir.clone();
        let prefix = self.options.prefix.clone();
        Box::new(move |name: &str| {
            // Unbuffered on purpose: every write reaches the file at once,
            // so a killed process leaves everything written so far.
            let f = File::create(out_dir.join(format!("{prefix}{name}")))?;
            Ok(Box::new(f) as Box<dyn recording::Destination>)
        })
    }

    fn run(self, mut tap: mpsc::Receiver<sfu::TapEvent>) -> Result<Vec<RecordedFile>, RecordError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let start = Instant::now();
        let mut per_track = self
            .options
            .per_track
            .then(|| Recording::new(start, self.sink()));
        let mut composite = match self.options.composite {
            Some(config) => Some(Composite::new(start, config, self.sink(), "composite")?),
            None => None,
        };
        let reason = runtime.block_on(async {
            let mut tick = tokio::time::interval(TICK);
            let mut empty_since: Option<Instant> = None;
            let mut space_checked = Instant::now() - SPACE_CHECK;
            loop {
                if !matches!(self.stop.try_recv(), Err(std::sync::mpsc::TryRecvError::Empty)) {
                    return StopReason::Requested;
                }
                tokio::select! {
                    ev = tap.recv() => {
                        let Some(ev) = ev else { return StopReason::RoomEmpty };
                        self.label(&ev, per_track.as_mut(), composite.as_mut()).await;
                        if let Some(r) = per_track.as_mut() {
                            if let Err(e) = r.handle_tap(ev.clone()) {
                                tracing::warn!(error = %e, "recording a track failed");
                            }
                        }
                        if let Some(c) = composite.as_mut() {
                            if let Err(e) = c.handle_tap(ev) {
                                tracing::warn!(error = %e, "compositing failed");
                            }
                        }
                    }
                    _ = tick.tick() => {
                        let now = Instant::now();
                        if let Some(r) = per_track.as_mut() {
                            if let Err(e) = r.handle_tick(now) {
                                tracing::warn!(error = %e, "recording failed to write");
                            }
                        }
                        if let Some(c) = composite.as_mut() {
                            if let Err(e) = c.handle_tick(now) {
                                tracing::warn!(error = %e, "the composite failed to write");
                            }
                        }
                        if self.sfu.room_worker(&self.room).is_some() {
                            empty_since = None;
                        } else if now.duration_since(*empty_since.get_or_insert(now)) >= EMPTY_GRACE {
                            return StopReason::RoomEmpty;
                        }
                        if now.duration_since(space_checked) >= SPACE_CHECK {
                            space_checked = now;
                            match free_space(&self.dir) {
                                Ok(free) if free < self.options.min_free_bytes => {
                                    tracing::warn!(free, dir = %self.dir.display(), "disk nearly full");
                                    return StopReason::DiskFull;
                                }
                                Ok(_) => {}
                                Err(e) => tracing::debug!(error = %e, "free space unknown"),
                            }
                        }
                    }
                }
                while let Some(track) = per_track.as_mut().and_then(|r| r.poll_keyframe_request()) {
                    let _ = self.sfu.tap_keyframe_request(&track);
                }
                while let Some(track) = composite.as_mut().and_then(|c| c.poll_keyframe_request()) {
                    let _ = self.sfu.tap_keyframe_request(&track);
                }
            }
        });
        tracing::info!(room = %self.room, %reason, "recording ended");
        let mut files = Vec::new();
        let mut result = Ok(());
        if let Some(r) = per_track {
            match r.finish() {
                Ok(f) => files.extend(f),
                Err(e) => result = Err(e),
            }
        }
        if let Some(c) = composite {
            match c.finish() {
                Ok(f) => files.extend(f),
                Err(e) => result = Err(e),
            }
        }
        if reason != StopReason::Requested {
            let on_end = self.on_end.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(on_end) = on_end {
                on_end(reason);
            }
        }
        result.map(|()| files)
    }

    /// Look up the name of a publisher the first time it is seen.
    async fn label(
        &self,
        ev: &sfu::TapEvent,
        per_track: Option<&mut Recording>,
        composite: Option<&mut Composite>,
    ) {
        let sfu::TapEvent::Packet(p) = ev else { return };
        let id = p.track.publisher;
        let known = per_track.as_ref().is_none_or(|r| r.knows(id))
            && composite.as_ref().is_none_or(|c| c.knows(id));
        if known {
            return;
        }
        let label = self
            .sfu
            .stats(id)
            .await
            .map(|s| s.label)
            .unwrap_or_default();
        if let Some(r) = per_track {
            r.set_label(id, &label);
        }
        if let Some(c) = composite {
            c.set_label(id, &label);
        }
    }
}
