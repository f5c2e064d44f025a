//! [`Recordings`]: the one owner of a Confab's recordings.
//!
//! At most one recording per room; every file in one directory (from the
//! configuration), named `<room>-<YYYYMMDD-HHMMSS>-<nick>-ep<N>.webm|.mp4`
//! (UTC, the time the recording started), so that recordings of several
//! rooms, and several recordings of one room, never collide. It lists the
//! finished and running files there, and says whether a name from outside
//! (a download request) is one of them.
//!
//! Cloning is cheap; all clones share the same recordings.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use sfu::{RoomId, SfuHandle};

use tokio::sync::broadcast;

use crate::{RecordError, RecordOptions, RecordedFile, Recorder, RecorderHandle, StopReason};

/// Longest file name [`Recordings::file_path`] accepts.
const MAX_NAME: usize = 255;

/// The recordings of one Confab.
#[derive(Clone)]
pub struct Recordings {
    inner: Arc<Inner>,
}

struct Inner {
    sfu: SfuHandle,
    dir: PathBuf,
    options: RecordOptions,
    active: Mutex<HashMap<RoomId, Active>>,
    ended: broadcast::Sender<RecordingEnded>,
}

/// A recording that stopped by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingEnded {
    /// The room.
    pub room: RoomId,
    /// Why.
    pub reason: StopReason,
}

struct Active {
    handle: RecorderHandle,
    info: ActiveRecording,
}

/// A recording in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveRecording {
    /// The room.
    pub room: RoomId,
    /// When it started, seconds since the Unix epoch.
    pub started_unix: u64,
    /// Who started it (a nick, or `admin`).
    pub by: String,
    /// Every file of this recording starts with this.
    pub prefix: String,
}

/// A file in the recordings directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingFile {
    /// Its name (download it by this name).
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written, seconds since the Unix epoch.
    pub modified_unix: u64,
    /// It belongs to a recording still in progress.
    pub in_progress: bool,
}

impl std::fmt::Debug for Recordings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recordings")
            .field("dir", &self.inner.dir)
            .finish()
    }
}

impl Recordings {
    /// Recordings of `sfu`'s rooms, into `dir` (created when the first
    /// recording starts), per participant only.
    pub fn new(sfu: SfuHandle, dir: impl Into<PathBuf>) -> Recordings {
        Recordings::with_options(sfu, dir, RecordOptions::default())
    }

    /// Recordings of `sfu`'s rooms into `dir`, each as `options` say (their
    /// prefix is set per recording).
    pub fn with_options(
        sfu: SfuHandle,
        dir: impl Into<PathBuf>,
        options: RecordOptions,
    ) -> Recordings {
        Recordings {
            inner: Arc::new(Inner {
                sfu,
                dir: dir.into(),
                options,
                active: Mutex::new(HashMap::new()),
                ended: broadcast::channel(64).0,
            }),
        }
    }

    /// Hear of recordings that stop by themselves (the disk nearly full,
    /// everyone gone), to tell the room.
    pub fn subscribe(&self) -> broadcast::Receiver<RecordingEnded> {
        self.inner.ended.subscribe()
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    fn active(&self) -> MutexGuard<'_, HashMap<RoomId, Active>> {
        // A panic while holding the lock leaves the map as it was: keep going.
        self.inner.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Start recording `room`, on behalf of `by`. Fails if it is being
    /// recorded already or has no one in the call.
    pub fn start(&self, room: &RoomId, by: &str) -> Result<ActiveRecording, RecordError> {
        let mut active = self.active();
        if active.contains_key(room) {
            return Err(RecordError::AlreadyRecording);
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let prefix = format!("{}-{}-", room_part(room), utc_stamp(now));
        let options = RecordOptions {
            prefix: prefix.clone(),
            ..self.inner.options.clone()
        };
        let on_end = {
            let inner: Weak<Inner> = Arc::downgrade(&self.inner);
            let room = room.clone();
            Box::new(move |reason: StopReason| {
                let Some(inner) = inner.upgrade() else { return };
                // Called on the recording's own thread: let go of its
                // handle without joining it.
                let active = inner
                    .active
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&room);
                if let Some(active) = active {
                    active.handle.detach();
                    tracing::info!(%room, %reason, "recording ended by itself");
                    let _ = inner.ended.send(RecordingEnded { room, reason });
                }
            }) as crate::OnEnd
        };
        let handle = Recorder::start_with(
            &self.inner.sfu,
            room,
            &self.inner.dir,
            options,
            Some(on_end),
        )?;
        let info = ActiveRecording {
            room: room.clone(),
            started_unix: now,
            by: by.to_owned(),
            prefix,
        };
        active.insert(
            room.clone(),
            Active {
                handle,
                info: info.clone(),
            },
        );
        Ok(info)
    }

    /// Stop recording `room` and list its files. Waits for the files to
    /// be closed (off the async threads).
    pub async fn stop(&self, room: &RoomId) -> Result<Vec<RecordedFile>, RecordError> {
        let Some(active) = self.active().remove(room) else {
            return Err(RecordError::NotRecording);
        };
        tracing::info!(%room, "recording stopped");
        tokio::task::spawn_blocking(move || active.handle.stop())
            .await
            .map_err(|_| RecordError::Stopped)?
    }

    /// Whether `room` is being recorded.
    pub fn is_recording(&self, room: &RoomId) -> bool {
        self.active().contains_key(room)
    }

    /// The recordings in progress, oldest first.
    pub fn in_progress(&self) -> Vec<ActiveRecording> {
        let mut v: Vec<ActiveRecording> = self.active().values().map(|a| a.info.clone()).collect();
        v.sort_by(|a, b| (a.started_unix, a.room.as_str()).cmp(&(b.started_unix, b.room.as_str())));
        v
    }

    /// Every recording file in the directory, newest first. An empty list
    /// if the directory does not exist yet.
    pub fn files(&self) -> std::io::Result<Vec<RecordingFile>> {
        let prefixes: Vec<String> = self
            .active()
            .values()
            .map(|a| a.info.prefix.clone())
            .collect();
        let entries = match std::fs::read_dir(&self.inner.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if !valid_name(&name) {
                continue;
            }
            let meta = entry.metadata()?;
            if !meta.is_file() {
                continue;
            }
            let modified_unix = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_secs())
                .unwrap_or(0);
            files.push(RecordingFile {
                in_progress: prefixes.iter().any(|p| name.starts_with(p.as_str())),
                name,
                size: meta.len(),
                modified_unix,
            });
        }
        files.sort_by(|a, b| {
            b.modified_unix
                .cmp(&a.modified_unix)
                .then_with(|| a.name.cmp(&b.name))
        });
        Ok(files)
    }

    /// The path of the recording file called `name`, if `name` is a
    /// recording's name (no directories, no hidden files, `.webm` or
    /// `.mp4`) and such a file exists.
    pub fn file_path(&self, name: &str) -> Option<PathBuf> {
        if !valid_name(name) {
            return None;
        }
        let path = self.inner.dir.join(name);
        path.is_file().then_some(path)
    }
}

/// The content type of a recording file by its name.
pub fn content_type(name: &str) -> Option<&'static str> {
    if name.ends_with(".webm") {
        Some("video/webm")
    } else if name.ends_with(".mp4") {
        Some("video/mp4")
    } else {
        None
    }
}

/// Whether `name` can be a recording's file name: what this module
/// writes, letters, digits, `-`, `_` and one `.` before the extension.
pub fn valid_name(name: &str) -> bool {
    let Some(stem) = name
        .strip_suffix(".webm")
        .or_else(|| name.strip_suffix(".mp4"))
    else {
        return false;
    };
    !stem.is_empty()
        && name.len() <= MAX_NAME
        && stem
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
}

/// The room's part of a file name: the node of its JID, letters, digits,
/// `-` and `_` only.
fn room_part(room: &RoomId) -> String {
    let node = room.as_str().split('@').next().unwrap_or("");
    let s: String = node
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_')
        .take(48)
        .collect();
    if s.is_empty() {
        "room".into()
    } else {
        s
    }
}

/// `YYYYMMDD-HHMMSS` in UTC for `secs` since the Unix epoch.
fn utc_stamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_outside_are_recordings_or_nothing() {
        assert!(valid_name("standup-20261121-134400-alice-ep1.webm"));
        assert!(valid_name("r-20261121-134400-bob-ep2.mp4"));
        assert!(valid_name("zoë-ep1.webm"));
        for bad in [
            "",
            ".webm",
            "../x.webm",
            "a/b.webm",
            "a\\b.webm",
            ".hidden.mp4",
            "a.b.webm",
            "x.txt",
            "x.webm.txt",
            "x .mp4",
            "x%2e.webm",
        ] {
            assert!(!valid_name(bad), "{bad:?} is refused");
        }
        assert_eq!(content_type("a.webm"), Some("video/webm"));
        assert_eq!(content_type("a.mp4"), Some("video/mp4"));
        assert_eq!(content_type("a.mkv"), None);
    }

    #[test]
    fn stamps_are_utc_dates() {
        assert_eq!(utc_stamp(0), "19700101-000000");
        assert_eq!(utc_stamp(951_782_400), "20000229-000000");
        assert_eq!(utc_stamp(1_795_268_640), "20261121-134400");
        assert_eq!(
            room_part(&RoomId::from("Stand up!@conference.localhost")),
            "Standup"
        );
    }
}
