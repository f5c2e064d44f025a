//! One simulated participant's WebRTC peer: a str0m [`Rtc`] that publishes
//! the synthetic media and measures what it receives. Sans-IO, as str0m
//! is: datagrams and time in, datagrams and the next timeout out, so the
//! async driver around it ([`crate::participant`]) stays thin and hundreds
//! of peers share a thread.
//!
//! The peer is a full (not ICE-lite) agent with one host candidate, the
//! address of its UDP socket, because the bridge is ICE-lite. It speaks
//! SDP with str0m's `sdp_api`; [`confab_client::call::ParticipantCall`] turns
//! that into Jingle.
//!
//! Input order (str0m's rule): call one `handle_*` or SDP method, then send
//! every [`MediaPeer::poll_transmit`] and sleep until
//! [`MediaPeer::timeout`].

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use confab_media::VideoCodec;
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{
    Direction, Frequency, KeyframeRequest, MediaData, MediaKind, MediaTime, Mid, Rid, Simulcast,
    SimulcastLayer,
};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};

use crate::media::{self, Tag, VideoClip};
use crate::stats::{Kind, Received, Second, TrackStats};

/// Audio frames are 20 ms.
const AUDIO_FRAME: Duration = Duration::from_millis(20);
/// A keyframe request restarts the clip at most this often.
const KEYFRAME_HOLDOFF: Duration = Duration::from_millis(300);

/// What a peer sends.
#[derive(Debug, Clone)]
pub struct PeerConfig {
    /// The video clip (its codec is the only video codec offered).
    pub clip: Arc<VideoClip>,
    /// Publish video (and audio, if `audio`).
    pub publish: bool,
    /// Publish Opus too.
    pub audio: bool,
    /// Times during which publishing pauses (to simulate a stalled
    /// camera): no frame is written and no counter advances.
    pub stalls: Vec<(Instant, Instant)>,
}

/// Why an SDP step failed.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// str0m refused the SDP or the change.
    #[error("WebRTC: {0}")]
    Rtc(#[from] str0m::RtcError),
    /// The remote SDP does not parse.
    #[error("remote SDP: {0}")]
    Sdp(String),
    /// An answer arrived without an offer outstanding.
    #[error("no offer outstanding")]
    NoOffer,
    /// The socket address does not make a host candidate.
    #[error("host candidate: {0}")]
    Candidate(String),
    /// The offer had nothing to negotiate.
    #[error("nothing to offer")]
    NothingToOffer,
}

struct Sending {
    audio: Option<Mid>,
    video: Option<Mid>,
    /// Payload types, known once connected.
    audio_pt: Option<str0m::format::PayloadParams>,
    video_pt: Option<str0m::format::PayloadParams>,
    next_audio: Instant,
    next_video: Instant,
    audio_counter: u32,
    video_counter: u32,
    clip_pos: usize,
    last_restart: Option<Instant>,
    started: Option<Instant>,
}

/// The peer. See the module docs.
pub struct MediaPeer {
    rtc: Rtc,
    local: SocketAddr,
    config: PeerConfig,
    pending: Option<SdpPendingOffer>,
    send: Sending,
    owners: HashMap<Mid, (String, Kind)>,
    received: Received,
    second: Second,
    run_start: Instant,
    outbox: VecDeque<(SocketAddr, Vec<u8>)>,
    timeout: Instant,
    connected_at: Option<Instant>,
    first_frame_at: Option<Instant>,
    disconnected: bool,
}

impl MediaPeer {
    /// A peer whose UDP socket is bound to `local` (a concrete address, not
    /// a wildcard: it becomes the host candidate). Seconds of the
    /// per-second samples count from `run_start`.
    pub fn new(
        config: PeerConfig,
        local: SocketAddr,
        run_start: Instant,
        now: Instant,
    ) -> Result<MediaPeer, PeerError> {
        let codec = config.clip.codec;
        let mut rtc = Rtc::builder()
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(codec == VideoCodec::Vp8)
            .enable_h264(codec == VideoCodec::H264)
            .set_stats_interval(None)
            .build(now);
        let candidate =
            Candidate::host(local, "udp").map_err(|e| PeerError::Candidate(e.to_string()))?;
        rtc.add_local_candidate(candidate);
        Ok(MediaPeer {
            rtc,
            local,
            config,
            pending: None,
            send: Sending {
                audio: None,
                video: None,
                audio_pt: None,
                video_pt: None,
                next_audio: now,
                next_video: now,
                audio_counter: 0,
                video_counter: 0,
                clip_pos: 0,
                last_restart: None,
                started: None,
            },
            owners: HashMap::new(),
            received: Received::new(),
            second: Second::default(),
            run_start,
            outbox: VecDeque::new(),
            timeout: now,
            connected_at: None,
            first_frame_at: None,
            disconnected: false,
        })
    }

    // ---- getters ----

    /// When ICE and DTLS connected.
    pub fn connected_at(&self) -> Option<Instant> {
        self.connected_at
    }

    /// When the first remote video (or, without video, audio) frame arrived.
    pub fn first_frame_at(&self) -> Option<Instant> {
        self.first_frame_at
    }

    /// Whether ICE reported the bridge gone.
    pub fn is_disconnected(&self) -> bool {
        self.disconnected
    }

    /// What arrived so far, per (publisher, kind).
    pub fn received(&self) -> &Received {
        &self.received
    }

    /// When to call [`MediaPeer::handle_timeout`] next.
    pub fn timeout(&self) -> Instant {
        let mut t = self.timeout;
        if self.sending() {
            if self.send.audio.is_some() {
                t = t.min(self.send.next_audio);
            }
            if self.send.video.is_some() {
                t = t.min(self.send.next_video);
            }
        }
        t
    }

    // ---- SDP (commands) ----

    /// The local offer for the session-initiate: audio and video sent (as
    /// configured), or one inactive audio m-line for a receiver.
    pub fn offer(&mut self, stream: &str) -> Result<String, PeerError> {
        let mut api = self.rtc.sdp_api();
        if self.config.publish {
            if self.config.audio {
                self.send.audio = Some(api.add_media(
                    MediaKind::Audio,
                    Direction::SendOnly,
                    Some(stream.into()),
                    Some("a".into()),
                    None,
                ));
            }
            let simulcast = (self.config.clip.layers.len() > 1).then(|| Simulcast {
                send: self
                    .config
                    .clip
                    .layers
                    .iter()
                    .filter_map(|l| l.rid)
                    .map(SimulcastLayer::new)
                    .collect(),
                recv: vec![],
            });
            self.send.video = Some(api.add_media(
                MediaKind::Video,
                Direction::SendOnly,
                Some(stream.into()),
                Some("v".into()),
                simulcast,
            ));
        } else {
            api.add_media(MediaKind::Audio, Direction::Inactive, None, None, None);
        }
        let (offer, pending) = api.apply().ok_or(PeerError::NothingToOffer)?;
        self.pending = Some(pending);
        Ok(offer.to_sdp_string())
    }

    /// The bridge's answer to [`MediaPeer::offer`].
    pub fn accept_answer(&mut self, now: Instant, sdp: &str) -> Result<(), PeerError> {
        let pending = self.pending.take().ok_or(PeerError::NoOffer)?;
        let answer = SdpAnswer::from_sdp_string(sdp).map_err(|e| PeerError::Sdp(e.to_string()))?;
        self.rtc.sdp_api().accept_answer(pending, answer)?;
        self.drain(now);
        Ok(())
    }

    /// A remote offer (a content-add or content-remove turned into SDP) ->
    /// the local answer.
    pub fn accept_offer(&mut self, now: Instant, sdp: &str) -> Result<String, PeerError> {
        let offer = SdpOffer::from_sdp_string(sdp).map_err(|e| PeerError::Sdp(e.to_string()))?;
        let answer = self.rtc.sdp_api().accept_offer(offer)?;
        self.drain(now);
        Ok(answer.to_sdp_string())
    }

    /// Who publishes the track of each remote mid, from the bridge's owner
    /// extension (`R/nick`).
    pub fn set_owner(&mut self, mid: &str, owner_nick: &str, kind: Kind) {
        self.owners
            .insert(Mid::from(mid), (owner_nick.to_string(), kind));
    }

    // ---- inputs ----

    /// A datagram from `from` arrived on the peer's socket.
    pub fn handle_receive(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        let Ok(contents) = Receive::new(Protocol::Udp, from, self.local, data) else {
            return; // not STUN/DTLS/RTP: ignore, as a browser would
        };
        let input = Input::Receive(now, contents);
        if self.rtc.accepts(&input) {
            if let Err(e) = self.rtc.handle_input(input) {
                tracing::debug!(error = %e, "input refused");
            }
        }
        self.drain(now);
    }

    /// Time passed: writes due frames and lets str0m run its timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.write_due(now);
        if let Err(e) = self.rtc.handle_input(Input::Timeout(now)) {
            tracing::debug!(error = %e, "timeout input refused");
        }
        self.drain(now);
    }

    /// Ends the peer's media (on leaving): closes str0m and settles the
    /// stats at `now`.
    pub fn finish(&mut self, now: Instant) -> Received {
        self.rtc.disconnect();
        for t in self.received.values_mut() {
            t.finish(now);
        }
        std::mem::take(&mut self.received)
    }

    // ---- outputs ----

    /// The next datagram to send: `(destination, bytes)`.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.outbox.pop_front()
    }

    /// The per-second sample collected since the last call; the driver
    /// calls it as each second of the run (counted from `run_start`) ends.
    pub fn take_second(&mut self, now: Instant) -> Second {
        let mut s = std::mem::take(&mut self.second);
        s.index = now
            .saturating_duration_since(self.run_start)
            .as_secs()
            .saturating_sub(1) as u32;
        s
    }

    // ---- internals ----

    fn sending(&self) -> bool {
        self.config.publish && self.connected_at.is_some()
    }

    fn stalled(&self, now: Instant) -> bool {
        self.config
            .stalls
            .iter()
            .any(|(from, to)| now >= *from && now < *to)
    }

    fn write_due(&mut self, now: Instant) {
        if !self.sending() {
            return;
        }
        let stalled = self.stalled(now);
        let started = *self.send.started.get_or_insert(now);
        if let Some(mid) = self.send.audio {
            while self.send.next_audio <= now {
                if !stalled {
                    let tag = Tag {
                        counter: self.send.audio_counter,
                        sent_micros: media::now_micros(),
                    };
                    let rtp =
                        elapsed_time(started, self.send.next_audio, Frequency::FORTY_EIGHT_KHZ);
                    if let (Some(pt), Some(w)) = (
                        self.send.audio_pt.as_ref().map(|p| p.pt()),
                        self.rtc.writer(mid),
                    ) {
                        if w.write(pt, now, rtp, media::opus_packet(tag)).is_ok() {
                            self.send.audio_counter = self.send.audio_counter.wrapping_add(1);
                        }
                    }
                }
                self.send.next_audio += AUDIO_FRAME;
                if now.saturating_duration_since(self.send.next_audio) > Duration::from_secs(1) {
                    self.send.next_audio = now + AUDIO_FRAME;
                }
            }
        }
        if let Some(mid) = self.send.video {
            let interval = Duration::from_secs(1) / self.config.clip.fps.max(1);
            while self.send.next_video <= now {
                if !stalled {
                    self.write_video_frame(mid, now, started);
                }
                self.send.next_video += interval;
                if now.saturating_duration_since(self.send.next_video) > Duration::from_secs(1) {
                    self.send.next_video = now + interval;
                }
            }
        }
    }

    fn write_video_frame(&mut self, mid: Mid, now: Instant, started: Instant) {
        let Some(pt) = self.send.video_pt.as_ref().map(|p| p.pt()) else {
            return;
        };
        let clip = self.config.clip.clone();
        if self.send.clip_pos >= clip.len() {
            self.send.clip_pos = 0;
        }
        let tag = Tag {
            counter: self.send.video_counter,
            sent_micros: media::now_micros(),
        };
        let rtp = elapsed_time(started, self.send.next_video, Frequency::NINETY_KHZ);
        let mut written = false;
        for layer in &clip.layers {
            let Some(frame) = layer.frames.get(self.send.clip_pos) else {
                continue;
            };
            let data = media::tag_video(clip.codec, &frame.data, tag);
            let Some(mut w) = self.rtc.writer(mid) else {
                return;
            };
            if let Some(rid) = layer.rid {
                w = w.rid(Rid::from(rid));
            }
            written |= w.write(pt, now, rtp, data).is_ok();
        }
        if written {
            self.send.video_counter = self.send.video_counter.wrapping_add(1);
            self.send.clip_pos += 1;
        }
    }

    fn drain(&mut self, now: Instant) {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.timeout = t;
                    break;
                }
                Ok(Output::Transmit(t)) => {
                    self.outbox.push_back((t.destination, t.contents.to_vec()))
                }
                Ok(Output::Event(e)) => self.handle_event(now, e),
                Err(e) => {
                    tracing::debug!(error = %e, "str0m stopped");
                    self.disconnected = true;
                    self.timeout = now + Duration::from_secs(1);
                    break;
                }
            }
        }
    }

    fn handle_event(&mut self, now: Instant, event: Event) {
        match event {
            Event::Connected => {
                self.connected_at.get_or_insert(now);
                self.learn_payload_types();
                self.send.next_audio = now;
                self.send.next_video = now;
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                self.disconnected = true
            }
            Event::MediaData(data) => self.on_media(now, data),
            Event::KeyframeRequest(KeyframeRequest { mid, .. })
                if Some(mid) == self.send.video
                    && self
                        .send
                        .last_restart
                        .is_none_or(|t| now.saturating_duration_since(t) >= KEYFRAME_HOLDOFF) =>
            {
                self.send.last_restart = Some(now);
                self.send.clip_pos = 0; // the clip starts with a keyframe
            }
            _ => {}
        }
    }

    fn learn_payload_types(&mut self) {
        let find = |rtc: &mut Rtc, mid: Option<Mid>, want: fn(Codec) -> bool| {
            let w = rtc.writer(mid?)?;
            let p = w.payload_params().find(|p| want(p.spec().codec)).cloned();
            p
        };
        let video = self.config.clip.codec;
        self.send.audio_pt = find(&mut self.rtc, self.send.audio, |c| c == Codec::Opus);
        self.send.video_pt = match video {
            VideoCodec::Vp8 => find(&mut self.rtc, self.send.video, |c| c == Codec::Vp8),
            VideoCodec::H264 => find(&mut self.rtc, self.send.video, |c| c == Codec::H264),
        };
    }

    fn on_media(&mut self, now: Instant, data: MediaData) {
        let kind = if data.params.spec().codec.is_audio() {
            Kind::Audio
        } else {
            Kind::Video
        };
        let publisher = self
            .owners
            .get(&data.mid)
            .map(|(n, _)| n.clone())
            .unwrap_or_else(|| "?".into());
        let tag = match kind {
            Kind::Audio => media::read_audio_tag(&data.data),
            Kind::Video => media::read_video_tag(self.config.clip.codec, &data.data),
        };
        if kind == Kind::Video {
            self.first_frame_at.get_or_insert(now);
        }
        let (first, last): (u64, u64) = (**data.seq_range.start(), **data.seq_range.end());
        let track = self
            .received
            .entry((publisher.clone(), kind))
            .or_insert_with(|| TrackStats::new(&publisher, kind));
        let outcome = track.on_frame(now, media::now_micros(), tag, data.data.len(), first..=last);
        let packets = last.saturating_sub(first) + 1;
        self.second.add(
            &publisher,
            kind,
            data.data.len(),
            packets,
            &outcome,
            tag.is_some(),
        );
    }
}

/// RTP media time of `at` since `start` in `clock` units.
fn elapsed_time(start: Instant, at: Instant, clock: Frequency) -> MediaTime {
    MediaTime::from_micros(at.saturating_duration_since(start).as_micros() as u64).rebase(clock)
}
