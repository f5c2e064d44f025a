//! What a receiver measures per received track, and the per-second samples
//! the run aggregates. Sans-IO: every method takes the time.
//!
//! * Loss: frames whose counter never arrived (a gap in the publisher's
//!   counter), and RTP packets missing from the sequence-number range of the
//!   frames that did arrive (retransmitted packets count as arrived).
//! * Latency: receive time minus the tag's send time, per frame.
//! * Jitter: RFC 3550's interarrival jitter (§6.4.1) computed on those
//!   transit times, in microseconds.
//! * Freezes (video): a gap of more than [`FREEZE_GAP`] between two frames,
//!   or between the last frame and the end of the run.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use crate::media::Tag;

/// A gap between video frames longer than this is a freeze.
pub const FREEZE_GAP: Duration = Duration::from_millis(200);

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Opus.
    Audio,
    /// VP8 / H.264.
    Video,
}

/// One received track's figures.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TrackStats {
    /// The publisher's nick.
    pub publisher: String,
    /// Audio or video.
    pub kind: Kind,
    /// Frames received with a readable tag.
    pub frames: u64,
    /// Frames whose counter was skipped.
    pub frames_lost: u64,
    /// RTP packets of the received frames' sequence-number span.
    pub packets_expected: u64,
    /// RTP packets that arrived in a frame.
    pub packets_received: u64,
    /// Payload bytes received.
    pub bytes: u64,
    /// Mean latency, ms.
    pub latency_mean_ms: f64,
    /// Largest latency, ms.
    pub latency_max_ms: f64,
    /// RFC 3550 jitter at the end, ms.
    pub jitter_ms: f64,
    /// Freezes (video only).
    pub freezes: u32,
    /// Time spent frozen, ms.
    pub freeze_ms: f64,
    /// Mean received bitrate between first and last frame, kbit/s.
    pub kbps: f64,
    /// Frames without a readable tag (should be zero).
    pub untagged: u64,
    #[serde(skip)]
    state: TrackState,
}

#[derive(Debug, Clone, Default)]
struct TrackState {
    last_counter: Option<u32>,
    first_arrival: Option<Instant>,
    last_arrival: Option<Instant>,
    first_seq: Option<u64>,
    max_seq: u64,
    last_transit: Option<i64>,
    jitter_us: f64,
    latency_sum_us: f64,
    latency_max_us: u64,
}

/// What one frame added, for the per-second samples.
#[derive(Debug, Clone, Copy, Default)]
pub struct FrameOutcome {
    /// Latency of this frame, µs.
    pub latency_us: u64,
    /// Frames found missing before it.
    pub lost: u64,
    /// A freeze that ended with this frame (its length).
    pub freeze: Option<Duration>,
}

impl TrackStats {
    /// A track nothing has arrived on yet.
    pub fn new(publisher: &str, kind: Kind) -> TrackStats {
        TrackStats {
            publisher: publisher.to_string(),
            kind,
            frames: 0,
            frames_lost: 0,
            packets_expected: 0,
            packets_received: 0,
            bytes: 0,
            latency_mean_ms: 0.0,
            latency_max_ms: 0.0,
            jitter_ms: 0.0,
            freezes: 0,
            freeze_ms: 0.0,
            kbps: 0.0,
            untagged: 0,
            state: TrackState::default(),
        }
    }

    /// A frame arrived at `now` (`now_micros` on the tag's clock) made of
    /// the RTP packets `seqs`.
    pub fn on_frame(
        &mut self,
        now: Instant,
        now_micros: u64,
        tag: Option<Tag>,
        bytes: usize,
        seqs: RangeInclusive<u64>,
    ) -> FrameOutcome {
        let s = &mut self.state;
        let mut out = FrameOutcome::default();
        self.bytes += bytes as u64;
        self.packets_received += seqs.end().saturating_sub(*seqs.start()) + 1;
        let first = *s.first_seq.get_or_insert(*seqs.start());
        s.max_seq = s.max_seq.max(*seqs.end());
        self.packets_expected = s.max_seq.saturating_sub(first) + 1;
        if self.kind == Kind::Video {
            if let Some(last) = s.last_arrival {
                let gap = now.saturating_duration_since(last);
                if gap > FREEZE_GAP {
                    self.freezes += 1;
                    self.freeze_ms += gap.as_secs_f64() * 1000.0;
                    out.freeze = Some(gap);
                }
            }
        }
        s.first_arrival.get_or_insert(now);
        s.last_arrival = Some(now);
        let Some(tag) = tag else {
            self.untagged += 1;
            return out;
        };
        self.frames += 1;
        if let Some(last) = s.last_counter {
            if tag.counter > last {
                out.lost = u64::from(tag.counter - last - 1);
                self.frames_lost += out.lost;
                s.last_counter = Some(tag.counter);
            }
        } else {
            s.last_counter = Some(tag.counter);
        }
        let transit = now_micros as i64 - tag.sent_micros as i64;
        out.latency_us = transit.max(0) as u64;
        if let Some(prev) = s.last_transit {
            let d = (transit - prev).unsigned_abs() as f64;
            s.jitter_us += (d - s.jitter_us) / 16.0;
        }
        s.last_transit = Some(transit);
        s.latency_sum_us += out.latency_us as f64;
        s.latency_max_us = s.latency_max_us.max(out.latency_us);
        self.latency_mean_ms = s.latency_sum_us / self.frames as f64 / 1000.0;
        self.latency_max_ms = s.latency_max_us as f64 / 1000.0;
        self.jitter_ms = s.jitter_us / 1000.0;
        out
    }

    /// The run ended at `now`: a video track silent for longer than
    /// [`FREEZE_GAP`] is frozen until the end; computes the bitrate.
    pub fn finish(&mut self, now: Instant) {
        let s = &self.state;
        if let (Some(first), Some(last)) = (s.first_arrival, s.last_arrival) {
            let gap = now.saturating_duration_since(last);
            if self.kind == Kind::Video && gap > FREEZE_GAP {
                self.freezes += 1;
                self.freeze_ms += gap.as_secs_f64() * 1000.0;
            }
            let span = last.saturating_duration_since(first).as_secs_f64();
            if span > 0.0 {
                self.kbps = self.bytes as f64 * 8.0 / span / 1000.0;
            }
        }
    }
}

/// One participant's figures for one second of the run, sent to the
/// aggregator as the second ends.
#[derive(Debug, Clone, Default)]
pub struct Second {
    /// Seconds since the run started.
    pub index: u32,
    /// Latency of each video frame, µs.
    pub video_latency_us: Vec<u32>,
    /// Latency of each audio frame, µs.
    pub audio_latency_us: Vec<u32>,
    /// Frames received.
    pub frames: u64,
    /// Frames found lost.
    pub lost: u64,
    /// Payload bytes received.
    pub bytes: u64,
    /// RTP packets in the frames received.
    pub packets: u64,
    /// Freezes that ended this second.
    pub freezes: u32,
    /// The tracks (publisher, kind) that delivered a frame this second.
    pub tracks: std::collections::BTreeSet<(String, Kind)>,
}

impl Second {
    /// Adds a frame of `packets` RTP packets from `publisher`.
    pub fn add(
        &mut self,
        publisher: &str,
        kind: Kind,
        bytes: usize,
        packets: u64,
        o: &FrameOutcome,
        tagged: bool,
    ) {
        if !self.tracks.contains(&(publisher.to_string(), kind)) {
            self.tracks.insert((publisher.to_string(), kind));
        }
        self.bytes += bytes as u64;
        self.packets += packets;
        self.lost += o.lost;
        self.freezes += u32::from(o.freeze.is_some());
        if tagged {
            self.frames += 1;
            let l = o.latency_us.min(u64::from(u32::MAX)) as u32;
            match kind {
                Kind::Video => self.video_latency_us.push(l),
                Kind::Audio => self.audio_latency_us.push(l),
            }
        }
    }
}

/// Per-track stats of one receiver, keyed by (publisher, kind).
pub type Received = BTreeMap<(String, Kind), TrackStats>;

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(counter: u32, sent_micros: u64) -> Option<Tag> {
        Some(Tag {
            counter,
            sent_micros,
        })
    }

    #[test]
    fn counts_loss_latency_and_freezes() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut v = TrackStats::new("alice", Kind::Video);
        v.on_frame(ms(0), 1_000_000, tag(10, 999_000), 100, 1..=2);
        v.on_frame(ms(33), 1_033_000, tag(11, 1_032_000), 100, 3..=4);
        // Frame 12 (packets 5..=6) is lost; 13 arrives after a 300 ms gap.
        let o = v.on_frame(ms(333), 1_333_000, tag(13, 1_330_000), 100, 7..=8);
        assert_eq!(o.lost, 1);
        assert!(o.freeze.is_some());
        assert_eq!(o.latency_us, 3000);
        assert_eq!((v.frames, v.frames_lost), (3, 1));
        assert_eq!((v.packets_expected, v.packets_received), (8, 6));
        assert_eq!(v.freezes, 1);
        assert!((v.latency_max_ms - 3.0).abs() < 1e-9);
        // Silent for a second at the end: frozen again.
        v.finish(ms(1333));
        assert_eq!(v.freezes, 2);
        assert!(v.freeze_ms >= 1300.0);
        assert!(v.kbps > 0.0);
    }

    #[test]
    fn audio_never_freezes_and_late_frames_are_not_loss() {
        let t0 = Instant::now();
        let mut a = TrackStats::new("bob", Kind::Audio);
        a.on_frame(t0, 0, tag(5, 0), 10, 1..=1);
        a.on_frame(t0 + Duration::from_secs(1), 0, tag(4, 0), 10, 2..=2);
        a.on_frame(t0 + Duration::from_secs(2), 0, tag(6, 0), 10, 3..=3);
        a.finish(t0 + Duration::from_secs(9));
        assert_eq!((a.frames_lost, a.freezes), (0, 0));
    }
}
