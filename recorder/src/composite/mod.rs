//! The composited recording: every participant's video decoded and laid
//! out in one grid with their names, their audio decoded and mixed, and
//! the result encoded again into one file (H.264 + Opus in fragmented MP4,
//! or VP8 + Opus in WebM) at a configured size and frame rate.
//!
//! [`Composite`] is sans-IO like [`crate::Recording`]: it takes the tap's
//! packets ([`Composite::handle_tap`]) or whole frames
//! ([`Composite::push_frame`], for benchmarks), and time
//! ([`Composite::handle_tick`]); it gives keyframe requests
//! ([`Composite::poll_keyframe_request`]) and writes through a [`Sink`].
//!
//! Output frame `n` shows, for each participant, the newest picture placed
//! at or before `n / fps` on the room's time axis; it is made [`DELAY`]
//! after that time, so media that arrives a little late still makes it.
//! A participant whose video breaks (a lost packet, a frame that does not
//! decode) keeps its last picture until a requested keyframe repairs it.
//! The grid follows who is present: a participant appears with its first
//! media and goes when its last track is withdrawn; pictures of any size
//! are scaled into their cell, keeping their aspect ratio. The loudest
//! participant of the last half second is framed as the active speaker.

pub mod decode;
pub mod encode;
pub mod layout;
pub mod mix;
pub mod picture;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use fast_image_resize::Resizer;
use sfu::str0m::format::Codec;
use sfu::{EndpointId, MediaKind, TapEvent, TappedPacket, TrackId};

use crate::container::{MediaFile, Mp4File, WebmFile};
use crate::frame::Frame;
use crate::recording::{RecordedFile, Sink};
use crate::track::TrackInput;
use crate::RecordError;

use self::decode::VideoDecoder;
use self::encode::VideoEncoder;
use self::layout::{fit, grid, Rect};
use self::mix::{Lane, Mixer, FRAME_TIME};
use self::picture::Picture;

/// How long after its time an output frame is made: time for a packet
/// to be repaired and a frame to complete.
pub const DELAY: Duration = Duration::from_millis(250);

/// Decoded pictures held per participant waiting for their output frame:
/// [`DELAY`] of 30 fps video and some. Beyond it the oldest is shown
/// early; with pictures never larger than the canvas, memory stays
/// bounded whatever a publisher sends.
const MAX_PICTURES: usize = 10;

/// Background of the canvas and of a cell without a picture.
const BACKGROUND: (u8, u8, u8) = (24, 128, 128);
const CELL: (u8, u8, u8) = (40, 136, 124);
/// The frame around the active speaker's cell (a light blue).
pub const SPEAKER: (u8, u8, u8) = (170, 170, 90);

/// Mean square loudness (of 16-bit samples) above which a participant
/// counts as speaking: about -40 dBFS.
const SPEAKING: f64 = 110_000.0;

/// The codec (and with it the container) of the composite: H.264
/// (openh264) + Opus in fragmented MP4, or VP8 (libvpx) + Opus in WebM.
/// The composite encodes every video codec Confab carries, so the choice
/// is the [`VideoCodec`](confab_media::VideoCodec) itself, named in
/// configuration as `h264` or `vp8`.
pub use confab_media::VideoCodec as OutputCodec;

/// What the composite looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompositeConfig {
    /// Width in pixels (even, 64 to 3840).
    pub width: u32,
    /// Height in pixels (even, 64 to 2160).
    pub height: u32,
    /// Frames per second (1 to 60).
    pub fps: u32,
    /// Codec and container.
    pub codec: OutputCodec,
    /// Video bitrate, kbit/s.
    pub kbps: u32,
}

impl Default for CompositeConfig {
    fn default() -> CompositeConfig {
        CompositeConfig {
            width: 1280,
            height: 720,
            fps: 30,
            codec: OutputCodec::H264,
            kbps: 2500,
        }
    }
}

impl CompositeConfig {
    /// Refuse sizes and rates the encoders cannot take.
    pub fn validate(&self) -> Result<(), String> {
        if !(64..=3840).contains(&self.width)
            || !(64..=2160).contains(&self.height)
            || self.width % 2 == 1
            || self.height % 2 == 1
        {
            return Err(format!(
                "composite size {}x{}: even, 64x64 to 3840x2160",
                self.width, self.height
            ));
        }
        if !(1..=60).contains(&self.fps) {
            return Err(format!("composite frame rate {}: 1 to 60", self.fps));
        }
        if !(50..=50_000).contains(&self.kbps) {
            return Err(format!(
                "composite bitrate {} kbit/s: 50 to 50000",
                self.kbps
            ));
        }
        Ok(())
    }

    /// The composite's file extension.
    pub fn extension(&self) -> &'static str {
        match self.codec {
            OutputCodec::H264 => "mp4",
            OutputCodec::Vp8 => "webm",
        }
    }
}

/// Counters of what the composite did, for logs and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompositeStats {
    /// Video frames decoded into pictures.
    pub decoded: u64,
    /// Video frames that did not decode.
    pub decode_errors: u64,
    /// Video frames written.
    pub video_frames: u64,
    /// Audio frames written.
    pub audio_frames: u64,
}

struct Member {
    label: String,
    tracks: HashMap<String, TrackInput>,
    decoder: Option<(Codec, VideoDecoder)>,
    /// Decoded pictures and their places, oldest first.
    pictures: VecDeque<(Duration, Picture)>,
    /// The picture on show.
    shown: Option<Picture>,
    /// `shown` scaled into its place on the canvas.
    tile: Option<(Rect, Picture)>,
    lane: Option<Lane>,
    /// Video frames are skipped until a keyframe (at the start, and after
    /// one did not decode).
    need_key: bool,
}

/// One room's composited recording.
pub struct Composite {
    config: CompositeConfig,
    start: Instant,
    sink: Sink,
    name: String,
    members: BTreeMap<EndpointId, Member>,
    labels: HashMap<EndpointId, String>,
    keyframe_requests: VecDeque<TrackId>,
    /// The place of output frame 0: the first media.
    origin: Option<Duration>,
    /// The newest media placed.
    newest: Duration,
    next_video: u64,
    next_audio: u64,
    encoder: VideoEncoder,
    mixer: Mixer,
    resizer: Resizer,
    canvas: Picture,
    /// The grid changed since the canvas was last drawn.
    relayout: bool,
    /// Who is framed as the active speaker.
    speaker: Option<EndpointId>,
    file: Option<Box<dyn MediaFile>>,
    failed: bool,
    stats: CompositeStats,
}

impl Composite {
    /// A composite whose time axis starts at `start`, written through
    /// `sink` to `<name>.mp4` or `<name>.webm`.
    pub fn new(
        start: Instant,
        config: CompositeConfig,
        sink: Sink,
        name: &str,
    ) -> Result<Composite, RecordError> {
        config.validate().map_err(RecordError::Config)?;
        Ok(Composite {
            encoder: VideoEncoder::new(
                config.codec,
                config.width,
                config.height,
                config.fps,
                config.kbps,
            )?,
            mixer: Mixer::new()?,
            canvas: Picture::filled(config.width, config.height, BACKGROUND),
            config,
            start,
            sink,
            name: format!("{name}.{}", config.extension()),
            members: BTreeMap::new(),
            labels: HashMap::new(),
            keyframe_requests: VecDeque::new(),
            origin: None,
            newest: Duration::ZERO,
            next_video: 0,
            next_audio: 0,
            resizer: Resizer::new(),
            relayout: true,
            speaker: None,
            file: None,
            failed: false,
            stats: CompositeStats::default(),
        })
    }

    /// What it did so far.
    pub fn stats(&self) -> CompositeStats {
        self.stats
    }

    /// Whether `publisher` has a name already.
    pub fn knows(&self, publisher: EndpointId) -> bool {
        self.labels.contains_key(&publisher)
    }

    /// The name shown under `publisher`'s picture.
    pub fn set_label(&mut self, publisher: EndpointId, label: &str) {
        let label: String = label.chars().filter(|c| !c.is_control()).take(64).collect();
        if let Some(m) = self.members.get_mut(&publisher) {
            m.label.clone_from(&label);
            self.relayout = true;
        }
        self.labels.insert(publisher, label);
    }

    /// The picture last made (what the latest output frame shows).
    pub fn canvas(&self) -> &Picture {
        &self.canvas
    }

    /// The participant framed as the active speaker: the loudest of the
    /// last half second, if anyone spoke.
    pub fn speaker(&self) -> Option<EndpointId> {
        self.speaker
    }

    /// The participants in the grid, in grid order.
    pub fn present(&self) -> Vec<EndpointId> {
        self.members.keys().copied().collect()
    }

    /// The next keyframe request to relay to a publisher.
    pub fn poll_keyframe_request(&mut self) -> Option<TrackId> {
        self.keyframe_requests.pop_front()
    }

    /// One event from the room's tap.
    pub fn handle_tap(&mut self, ev: TapEvent) -> Result<(), RecordError> {
        match ev {
            TapEvent::Packet(p) => self.packet(p),
            TapEvent::Withdrawn { track, .. } => {
                self.withdraw(track.publisher, &track.mid);
                Ok(())
            }
        }
    }

    /// A track of `publisher` went away; with its last track, it leaves the grid.
    pub fn withdraw(&mut self, publisher: EndpointId, mid: &str) {
        if let Some(m) = self.members.get_mut(&publisher) {
            if let Some(t) = m.tracks.remove(mid) {
                match t.kind {
                    MediaKind::Video => {
                        m.decoder = None;
                        m.need_key = true;
                        m.pictures.clear();
                        m.shown = None;
                        m.tile = None;
                    }
                    MediaKind::Audio => m.lane = None,
                }
            }
            if m.tracks.is_empty() {
                self.members.remove(&publisher);
            }
            self.relayout = true;
        }
    }

    /// Time passed: make every output frame due by `now`.
    pub fn handle_tick(&mut self, now: Instant) -> Result<(), RecordError> {
        let at = now.saturating_duration_since(self.start);
        self.compose_until(at.saturating_sub(DELAY))
    }

    /// Make the rest (up to the newest media) and close the file. The name
    /// of the file written, if media ever arrived.
    pub fn finish(mut self) -> Result<Option<RecordedFile>, RecordError> {
        let newest = self.newest;
        let made = self.compose_until(newest);
        let file = self.file.take();
        let finished = match file {
            Some(f) => f.finish(),
            None => Ok(()),
        };
        made?;
        finished?;
        Ok((self.stats.video_frames > 0).then(|| RecordedFile {
            name: self.name.clone(),
            publisher: None,
            video: Some(self.config.codec.to_string()),
            audio: true,
        }))
    }

    fn packet(&mut self, pkt: TappedPacket) -> Result<(), RecordError> {
        if !matches!(pkt.codec, Codec::Opus | Codec::Vp8 | Codec::H264) {
            return Ok(());
        }
        let start = self.start;
        let m = member(
            &mut self.members,
            &self.labels,
            &mut self.relayout,
            pkt.track.publisher,
        );
        let track = m
            .tracks
            .entry(pkt.track.mid.clone())
            .or_insert_with(|| TrackInput::new(&pkt));
        let kind = track.kind;
        let placed = track.push(start, &pkt, true);
        if placed.want_keyframe {
            self.keyframe_requests.push_back(pkt.track.clone());
        }
        let Some((at, frame)) = placed.frame else {
            return Ok(());
        };
        if !self.push_frame(pkt.track.publisher, kind, pkt.codec, at, &frame) {
            self.keyframe_requests.push_back(pkt.track.clone());
        }
        Ok(())
    }

    /// A whole frame of `publisher`'s, placed at `at` on the time axis
    /// (VP8, H.264 as AVC access units, or Opus). `false` when a video
    /// frame did not decode: the caller should ask for a keyframe.
    pub fn push_frame(
        &mut self,
        publisher: EndpointId,
        kind: MediaKind,
        codec: Codec,
        at: Duration,
        frame: &Frame,
    ) -> bool {
        self.origin.get_or_insert(at);
        self.newest = self.newest.max(at);
        let m = member(
            &mut self.members,
            &self.labels,
            &mut self.relayout,
            publisher,
        );
        match kind {
            MediaKind::Audio => {
                if m.lane.is_none() {
                    m.lane = Lane::new().ok();
                }
                if let Some(lane) = m.lane.as_mut() {
                    lane.push(at, &frame.data);
                }
                true
            }
            MediaKind::Video => {
                if m.need_key && !frame.keyframe {
                    return false;
                }
                m.need_key = false;
                if m.decoder.as_ref().is_none_or(|(c, _)| *c != codec) {
                    m.decoder = VideoDecoder::new(codec).ok().map(|d| (codec, d));
                }
                let Some((_, decoder)) = m.decoder.as_mut() else {
                    return true;
                };
                match decoder.decode(frame) {
                    Ok(Some(mut picture)) => {
                        // Never hold more than the canvas shows: a 4K
                        // screen share is scaled down to it at once.
                        let (cw, ch) = (self.config.width, self.config.height);
                        if picture.width() > cw || picture.height() > ch {
                            let r = fit(
                                Rect {
                                    x: 0,
                                    y: 0,
                                    w: cw,
                                    h: ch,
                                },
                                picture.width(),
                                picture.height(),
                            );
                            picture = picture.scaled(r.w, r.h, &mut self.resizer);
                        }
                        if m.pictures.len() >= MAX_PICTURES {
                            // Show the oldest a little early rather than
                            // hold more pictures.
                            if let Some((_, p)) = m.pictures.pop_front() {
                                m.shown = Some(p);
                                m.tile = None;
                            }
                        }
                        m.pictures.push_back((at, picture));
                        self.stats.decoded += 1;
                        true
                    }
                    Ok(None) => true,
                    Err(e) => {
                        tracing::debug!(%publisher, error = %e, "a frame did not decode");
                        // Start afresh from the next keyframe.
                        m.decoder = None;
                        m.need_key = true;
                        self.stats.decode_errors += 1;
                        false
                    }
                }
            }
        }
    }

    fn video_time(&self, n: u64) -> Duration {
        Duration::from_nanos(n.saturating_mul(1_000_000_000) / u64::from(self.config.fps))
    }

    /// Make every output frame (video and audio, in time order) whose
    /// time is at or before `until`.
    pub fn compose_until(&mut self, until: Duration) -> Result<(), RecordError> {
        let Some(origin) = self.origin else {
            return Ok(());
        };
        if self.failed {
            return Ok(());
        }
        loop {
            let video_at = self.video_time(self.next_video);
            let audio_at = FRAME_TIME * u32::try_from(self.next_audio).unwrap_or(u32::MAX);
            let next = video_at.min(audio_at);
            if origin + next > until {
                return Ok(());
            }
            let r = if video_at <= audio_at {
                self.video_frame(origin, video_at)
            } else {
                self.audio_frame(origin, audio_at)
            };
            if let Err(e) = r {
                self.failed = true;
                return Err(e);
            }
        }
    }

    fn video_frame(&mut self, origin: Duration, rel: Duration) -> Result<(), RecordError> {
        let index = self.next_video;
        self.next_video += 1;
        let at = origin + rel;
        let mut changed = self.relayout;
        for m in self.members.values_mut() {
            while m.pictures.front().is_some_and(|(t, _)| *t <= at) {
                if let Some((_, p)) = m.pictures.pop_front() {
                    m.shown = Some(p);
                    m.tile = None;
                    changed = true;
                }
            }
        }
        if changed {
            self.draw();
        }
        let frames = self.encoder.encode(&self.canvas, index)?;
        for f in frames {
            self.write(MediaKind::Video, rel, f)?;
        }
        Ok(())
    }

    fn audio_frame(&mut self, origin: Duration, rel: Duration) -> Result<(), RecordError> {
        self.next_audio += 1;
        let packet = self.mixer.frame(
            origin + rel,
            self.members.values_mut().filter_map(|m| m.lane.as_mut()),
        )?;
        let loudest = self
            .members
            .iter()
            .filter_map(|(id, m)| Some((*id, m.lane.as_ref()?.loudness())))
            .filter(|(_, l)| *l > SPEAKING)
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(id, _)| id);
        // Keep the frame on whoever spoke last through a pause.
        if (loudest.is_some() && loudest != self.speaker)
            || self.speaker.is_some_and(|s| !self.members.contains_key(&s))
        {
            self.speaker = loudest;
            self.relayout = true;
        }
        if self.file.is_some() {
            self.write(
                MediaKind::Audio,
                rel,
                Frame {
                    data: packet,
                    rtp_time: self.next_audio - 1,
                    keyframe: true,
                },
            )?;
        }
        Ok(())
    }

    fn write(&mut self, kind: MediaKind, rel: Duration, frame: Frame) -> Result<(), RecordError> {
        if self.file.is_none() {
            if kind != MediaKind::Video || !frame.keyframe {
                return Ok(());
            }
            let dest = (self.sink)(&self.name)?;
            let file: Box<dyn MediaFile> = match self.config.codec {
                OutputCodec::H264 => Box::new(Mp4File::new(
                    dest,
                    &frame,
                    rel,
                    (self.config.width, self.config.height),
                    true,
                )?),
                OutputCodec::Vp8 => {
                    let mut f =
                        WebmFile::new(dest, Some((self.config.width, self.config.height)), true)?;
                    f.write(kind, rel, &frame)?;
                    Box::new(f)
                }
            };
            self.file = Some(file);
            self.stats.video_frames += 1;
            return Ok(());
        }
        if let Some(f) = self.file.as_mut() {
            f.write(kind, rel, &frame)?;
            f.tick(rel)?;
            match kind {
                MediaKind::Video => self.stats.video_frames += 1,
                MediaKind::Audio => self.stats.audio_frames += 1,
            }
        }
        Ok(())
    }

    /// Redraw the canvas: the grid, each participant's picture and name.
    fn draw(&mut self) {
        self.relayout = false;
        let (w, h) = (self.config.width, self.config.height);
        self.canvas.fill(Rect { x: 0, y: 0, w, h }, BACKGROUND);
        let cells = grid(self.members.len(), w, h);
        let scale = if h >= 600 { 2 } else { 1 };
        let border = 2 * scale;
        for ((id, m), cell) in self.members.iter_mut().zip(cells) {
            if self.speaker == Some(*id) {
                let frame = Rect {
                    x: cell.x.saturating_sub(border),
                    y: cell.y.saturating_sub(border),
                    w: cell.w + 2 * border,
                    h: cell.h + 2 * border,
                };
                self.canvas.fill(frame, SPEAKER);
            }
            self.canvas.fill(cell, CELL);
            if let Some(shown) = &m.shown {
                let place = fit(cell, shown.width(), shown.height());
                if m.tile.as_ref().is_none_or(|(r, _)| *r != place) {
                    m.tile = Some((place, shown.scaled(place.w, place.h, &mut self.resizer)));
                }
                if let Some((r, tile)) = &m.tile {
                    self.canvas.blit(tile, r.x, r.y);
                }
            }
            let label_h = 8 * scale + 4 * scale;
            let y = cell.bottom().saturating_sub(label_h + 2 * scale);
            self.canvas.label(
                &m.label,
                cell.x + 2 * scale,
                y,
                scale,
                cell.w.saturating_sub(4 * scale),
            );
        }
    }
}

/// `publisher`'s place in `members`, made on its first media.
fn member<'a>(
    members: &'a mut BTreeMap<EndpointId, Member>,
    labels: &HashMap<EndpointId, String>,
    relayout: &mut bool,
    publisher: EndpointId,
) -> &'a mut Member {
    members.entry(publisher).or_insert_with(|| {
        *relayout = true;
        Member {
            label: labels
                .get(&publisher)
                .cloned()
                .unwrap_or_else(|| "participant".into()),
            tracks: HashMap::new(),
            decoder: None,
            pictures: VecDeque::new(),
            shown: None,
            tile: None,
            lane: None,
            need_key: true,
        }
    })
}
