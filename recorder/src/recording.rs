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

use sfu::str0m::format::Codec;
use sfu::{EndpointId, MediaKind, TapEvent, TappedPacket, TrackId};

use crate::container::{MediaFile, Mp4File, WebmFile};
use crate::frame::{avc_nal_units, vp8_size, Frame};
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
                let size = vp8_size(&key.data).unwrap_or((640, 480));
                let name = format!("{}-{}.webm", p.label, id);
                (self.sink)(&name)
                    .map_err(RecordError::from)
                    .and_then(|dest| {
                        let f = WebmFile::new(dest, Some(size), audio)?;
                        Ok((name, Box::new(f) as Box<dyn MediaFile + Send>))
                    })
            }
            _ => {
                let size = avc_nal_units(&key.data)
                    .find(|n| n.first().is_some_and(|h| h & 0x1f == 7))
                    .and_then(sps_size)
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

/// Width and height from an H.264 SPS NAL unit (ITU-T H.264 §7.3.2.1.1),
/// for the MP4 track header; players take the real size from the SPS
/// itself, so `None` (an SPS this short parser does not follow) only
/// leaves a default in the header. Written here because neither str0m nor
/// muxide reads the size out of an SPS, and openh264 would have to decode.
fn sps_size(sps: &[u8]) -> Option<(u32, u32)> {
    let rbsp: Vec<u8> = {
        let mut out = Vec::with_capacity(sps.len());
        let mut zeros = 0;
        for &b in sps.get(1..)? {
            if zeros >= 2 && b == 3 {
                zeros = 0;
                continue;
            }
            zeros = if b == 0 { zeros + 1 } else { 0 };
            out.push(b);
        }
        out
    };
    let mut r = Bits {
        data: &rbsp,
        pos: 0,
    };
    let profile = r.bits(8)?;
    r.bits(16)?; // constraint flags, level
    r.ue()?; // seq_parameter_set_id
    if matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        let chroma = r.ue()?;
        if chroma == 3 {
            r.bits(1)?;
        }
        r.ue()?;
        r.ue()?;
        r.bits(1)?;
        if r.bits(1)? == 1 {
            return None; // scaling matrices: not followed
        }
    }
    r.ue()?; // log2_max_frame_num
    let poc = r.ue()?;
    if poc == 0 {
        r.ue()?;
    } else if poc == 1 {
        return None;
    }
    r.ue()?; // max_num_ref_frames
    r.bits(1)?;
    let w = (r.ue()? + 1) * 16;
    let frame_mbs_only = {
        let h_units = r.ue()? + 1;
        let f = r.bits(1)?;
        (h_units, f)
    };
    let h = frame_mbs_only.0 * 16 * (2 - frame_mbs_only.1);
    Some((w, h))
}

struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn bit(&mut self) -> Option<u32> {
        let byte = self.data.get(self.pos / 8)?;
        let b = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(u32::from(b))
    }
    fn bits(&mut self, n: u32) -> Option<u32> {
        (0..n).try_fold(0u32, |acc, _| Some((acc << 1) | self.bit()?))
    }
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        Some((1u32 << zeros) - 1 + self.bits(zeros)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sps_size_of_a_constrained_baseline_sps() {
        // The test kit's SPS (profile 42e01f), which ffprobe reads as
        // 320x976 too.
        let sps = [0x67, 0x42, 0xe0, 0x1f, 0xda, 0x05, 0x01, 0xec, 0x80];
        assert_eq!(sps_size(&sps), Some((320, 976)));
    }
}
