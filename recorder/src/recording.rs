//! The sans-IO state of one room's per-participant recording.
//!
//! Inputs: the tap's events ([`Recording::handle_tap`]) and time
//! ([`Recording::handle_tick`]); outputs: keyframe requests to relay to
//! the publishers ([`Recording::poll_keyframe_request`]) and files written
//! through the [`Sink`] it was given. No clock, no socket: the driver in
//! `lib.rs` feeds it.
//!
//! One file per participant: VP8 (+ Opus) in WebM, H.264 (+ Opus) in
//! fragmented MP4, Opus alone in WebM. A file opens on the participant's
//! first video keyframe once its audio has begun (or after [`AUDIO_WAIT`]),
//! or after [`AUDIO_ONLY_AFTER`] of audio with no video track. Of a simulcast track, the first layer seen is recorded.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{Seek, Write};
use std::time::{Duration, Instant};

use confab_media::{h264, vp8};
use sfu::str0m::format::Codec;
use sfu::{EndpointId, MediaKind, TapEvent, TappedPacket, TrackId};

use crate::container::{MediaFile, Mp4File, WebmFile};
use crate::frame::Frame;
use crate::track::TrackInput;
use crate::RecordError;

/// A participant that only sends audio gets its file after this long.
pub const AUDIO_ONLY_AFTER: Duration = Duration::from_secs(2);

/// How long a participant's file waits for its audio after the first
/// video keyframe (a participant may have no microphone).
pub const AUDIO_WAIT: Duration = Duration::from_secs(1);

/// Most frames held per participant before its file opens (10 s of
/// audio); older ones are dropped.
const MAX_PENDING: usize = 500;

/// What a file is written to: a file, or memory in tests.
pub trait Destination: Write + Seek + Send {}
impl<T: Write + Seek + Send> Destination for T {}

/// Where files go: called with a file name (no directory), returns the
/// destination to write it to.
pub type Sink = Box<dyn FnMut(&str) -> std::io::Result<Box<dyn Destination>> + Send>;

/// A file the recording wrote, for listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedFile {
    /// File name.
    pub name: String,
    /// The participant (`None` for the composite of everyone).
    pub publisher: Option<EndpointId>,
    /// Video codec, if it has video.
    pub video: Option<String>,
    /// Whether it has audio.
    pub audio: bool,
}

struct Participant {
    label: String,
    tracks: HashMap<String, TrackInput>,
    /// Frames waiting for the file to open: kind, place, frame.
    pending: VecDeque<(MediaKind, Duration, Frame)>,
    first_seen: Duration,
    /// The first video keyframe: its place and codec.
    key_at: Option<(Duration, Codec)>,
    file: Option<Box<dyn MediaFile + Send>>,
    failed: bool,
}

/// One room's per-participant recording.
pub struct Recording {
    start: Instant,
    sink: Sink,
    participants: BTreeMap<EndpointId, Participant>,
    keyframe_requests: VecDeque<TrackId>,
    files: Vec<RecordedFile>,
    /// Participants' names for their files.
    labels: HashMap<EndpointId, String>,
}

impl Recording {
    /// A recording whose time axis starts at `start`, writing to `sink`.
    pub fn new(start: Instant, sink: Sink) -> Recording {
        Recording {
            start,
            sink,
            participants: BTreeMap::new(),
            keyframe_requests: VecDeque::new(),
            files: Vec::new(),
            labels: HashMap::new(),
        }
    }

    /// Whether `publisher` has a name (the driver looks it up once).
    pub fn knows(&self, publisher: EndpointId) -> bool {
        self.labels.contains_key(&publisher)
    }

    /// Name a participant's file after `label` (the nick); give it before
    /// the participant's first packet.
    pub fn set_label(&mut self, publisher: EndpointId, label: &str) {
        self.labels.insert(publisher, sanitize(label));
    }

    /// The files opened so far.
    pub fn files(&self) -> &[RecordedFile] {
        &self.files
    }

    /// One event from the room's tap.
    pub fn handle_tap(&mut self, ev: TapEvent) -> Result<(), RecordError> {
        match ev {
            TapEvent::Packet(p) => self.packet(p),
            TapEvent::Withdrawn { track, .. } => {
                if let Some(p) = self.participants.get_mut(&track.publisher) {
                    p.tracks.remove(&track.mid);
                }
                Ok(())
            }
        }
    }

    /// Time passed: open audio-only files that waited long enough, and let
    /// files write what they hold.
    pub fn handle_tick(&mut self, now: Instant) -> Result<(), RecordError> {
        let at = now.saturating_duration_since(self.start);
        let ids: Vec<EndpointId> = self.participants.keys().copied().collect();
        for id in ids {
            self.maybe_open_audio_only(id, at)?;
            self.maybe_open(id, at)?;
            if let Some(file) = self.participants.get_mut(&id).and_then(|p| p.file.as_mut()) {
                file.tick(at)?;
            }
        }
        Ok(())
    }

    /// The next keyframe request to relay to a publisher.
    pub fn poll_keyframe_request(&mut self) -> Option<TrackId> {
        self.keyframe_requests.pop_front()
    }

    /// Close every file.
    pub fn finish(mut self) -> Result<Vec<RecordedFile>, RecordError> {
        let mut result = Ok(());
        for (_, p) in std::mem::take(&mut self.participants) {
            if let Some(file) = p.file {
                if let Err(e) = file.finish() {
                    result = Err(e);
                }
            }
        }
        result.map(|()| self.files)
    }

    fn packet(&mut self, pkt: TappedPacket) -> Result<(), RecordError> {
        if !matches!(pkt.codec, Codec::Opus | Codec::Vp8 | Codec::H264) {
            return Ok(());
        }
        let at_arrival = pkt.arrived.saturating_duration_since(self.start);
        let publisher = pkt.track.publisher;
        let label = self.labels.get(&publisher).cloned();
        let p = self
            .participants
            .entry(publisher)
            .or_insert_with(|| Participant {
                label: label.unwrap_or_else(|| "participant".into()),
                tracks: HashMap::new(),
                pending: VecDeque::new(),
                first_seen: at_arrival,
                key_at: None,
                file: None,
                failed: false,
            });
        if p.failed {
            return Ok(());
        }
        let track = p
            .tracks
            .entry(pkt.track.mid.clone())
            .or_insert_with(|| TrackInput::new(&pkt));
        let kind = track.kind;
        let placed = track.push(self.start, &pkt, p.file.is_none());
        if placed.want_keyframe {
            self.keyframe_requests.push_back(pkt.track.clone());
        }
        let Some((at, frame)) = placed.frame else {
            return Ok(());
        };
        if let Some(file) = p.file.as_mut() {
            return file.write(kind, at, &frame);
        }
        if kind == MediaKind::Video && p.key_at.is_none() {
            if !frame.keyframe {
                return Ok(());
            }
            p.key_at = Some((at, pkt.codec));
        }
        if p.pending.len() >= MAX_PENDING {
            p.pending.pop_front();
        }
        p.pending.push_back((kind, at, frame));
        self.maybe_open(publisher, at)
    }

    /// Open a participant's file once its video has a keyframe and its
    /// audio has begun (or [`AUDIO_WAIT`] passed without audio).
    fn maybe_open(&mut self, id: EndpointId, now: Duration) -> Result<(), RecordError> {
        let Some(p) = self.participants.get(&id) else {
            return Ok(());
        };
        let Some((key_at, codec)) = p.key_at else {
            return Ok(());
        };
        let audio = p.tracks.values().any(|t| t.kind == MediaKind::Audio);
        if p.file.is_some() || p.failed || (!audio && now.saturating_sub(key_at) < AUDIO_WAIT) {
            return Ok(());
        }
        let Some(key) = p
            .pending
            .iter()
            .find(|(k, _, f)| *k == MediaKind::Video && f.keyframe)
            .map(|(_, _, f)| f.clone())
        else {
            return Ok(());
        };
        self.open(id, codec, key_at, key, audio)
    }

    fn open(
        &mut self,
        id: EndpointId,
        codec: Codec,
        at: Duration,
        key: Frame,
        audio: bool,
    ) -> Result<(), RecordError> {
        let Some(p) = self.participants.get_mut(&id) else {
            return Ok(());
        };
        let result = match codec {
            Codec::Vp8 => {
                let size = vp8::keyframe_size(&key.data).unwrap_or((640, 480));
                let name = format!("{}-{}.webm", p.label, id);
                (self.sink)(&name)
                    .map_err(RecordError::from)
                    .and_then(|dest| {
                        let f = WebmFile::new(dest, Some(size), audio)?;
                        Ok((name, Box::new(f) as Box<dyn MediaFile + Send>))
                    })
            }
            _ => {
                // The MP4 track header's size; players read the SPS itself.
                let size = h264::avc_nal_units(&key.data)
                    .find(|n| h264::nal_type(n) == Some(h264::NAL_SPS))
                    .and_then(h264::sps_size)
                    .unwrap_or((640, 480));
                let name = format!("{}-{}.mp4", p.label, id);
                (self.sink)(&name)
                    .map_err(RecordError::from)
                    .and_then(|dest| {
                        let f = Mp4File::new(dest, &key, at, size, audio)?;
                        Ok((name, Box::new(f) as Box<dyn MediaFile + Send>))
                    })
            }
        };
        let (name, file) = match result {
            Ok(v) => v,
            Err(e) => {
                p.failed = true;
                return Err(e);
            }
        };
        self.files.push(RecordedFile {
            name,
            publisher: Some(id),
            video: Some(codec.to_string()),
            audio,
        });
        self.start_file(id, file)
    }

    fn maybe_open_audio_only(&mut self, id: EndpointId, at: Duration) -> Result<(), RecordError> {
        let Some(p) = self.participants.get_mut(&id) else {
            return Ok(());
        };
        let has_video = p.tracks.values().any(|t| t.kind == MediaKind::Video);
        if p.file.is_some() || p.failed || has_video || p.pending.is_empty() {
            return Ok(());
        }
        if at.saturating_sub(p.first_seen) < AUDIO_ONLY_AFTER {
            return Ok(());
        }
        let name = format!("{}-{}.webm", p.label, id);
        let file = match (self.sink)(&name)
            .map_err(RecordError::from)
            .and_then(|d| WebmFile::new(d, None, true))
        {
            Ok(f) => f,
            Err(e) => {
                p.failed = true;
                return Err(e);
            }
        };
        self.files.push(RecordedFile {
            name,
            publisher: Some(id),
            video: None,
            audio: true,
        });
        self.start_file(id, Box::new(file))
    }

    /// Install `file` and write what waited for it.
    fn start_file(
        &mut self,
        id: EndpointId,
        mut file: Box<dyn MediaFile + Send>,
    ) -> Result<(), RecordError> {
        let Some(p) = self.participants.get_mut(&id) else {
            return Ok(());
        };
        // The MP4 file was given its first keyframe already.
        let mp4 = p.key_at.is_some_and(|(_, c)| c == Codec::H264);
        let mut skip_key = mp4;
        for (kind, at, frame) in std::mem::take(&mut p.pending) {
            if skip_key && kind == MediaKind::Video {
                skip_key = false;
                continue;
            }
            file.write(kind, at, &frame)?;
        }
        p.file = Some(file);
        Ok(())
    }
}

/// A nick as a file name part: letters, digits, '-' and '_' only.
fn sanitize(label: &str) -> String {
    let s: String = label
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_')
        .take(48)
        .collect();
    if s.is_empty() {
        "participant".into()
    } else {
        s
    }
}
