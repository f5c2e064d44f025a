//! One tapped track of a participant: its RTP packets assembled into
//! frames ([`crate::frame`]) and placed on the recording's time axis
//! ([`crate::timeline`]). Both the per-participant files and the composite
//! take their frames from here.

use std::time::{Duration, Instant};

use sfu::{MediaKind, TappedPacket};

use crate::frame::{Frame, FrameAssembler};
use crate::timeline::TrackClock;

/// A track being recorded.
#[derive(Debug)]
pub struct TrackInput {
    /// Audio or video.
    pub kind: MediaKind,
    assembler: FrameAssembler,
    clock: TrackClock,
    /// The simulcast layer recorded: the first seen.
    rid: Option<String>,
}

/// What one packet gave.
#[derive(Debug, Default)]
pub struct Placed {
    /// A whole frame and its place on the time axis.
    pub frame: Option<(Duration, Frame)>,
    /// The publisher should be asked for a keyframe.
    pub want_keyframe: bool,
}

impl TrackInput {
    /// The track `pkt` is the first packet of.
    pub fn new(pkt: &TappedPacket) -> TrackInput {
        TrackInput {
            kind: pkt.kind,
            assembler: FrameAssembler::new(pkt.codec),
            clock: TrackClock::new(pkt.clock_rate),
            rid: pkt.rid.clone(),
        }
    }

    /// Take a packet of the track, on the axis starting at `start`.
    /// Packets of other simulcast layers are ignored. With
    /// `ask_while_waiting`, a keyframe is asked for at the end of every
    /// frame dropped while waiting for one (not only after a loss).
    pub fn push(&mut self, start: Instant, pkt: &TappedPacket, ask_while_waiting: bool) -> Placed {
        if self.rid != pkt.rid {
            return Placed::default();
        }
        let was_waiting = self.assembler.waiting_for_keyframe();
        let out = self.assembler.push(pkt.seq_no, pkt.rtp_timestamp, pkt.marker, &pkt.payload);
        let want_keyframe = out.need_keyframe || (ask_while_waiting && was_waiting && out.frame.is_none() && pkt.marker);
        let frame = out.frame.map(|f| (self.clock.place(start, pkt.arrived, f.rtp_time), f));
        Placed { frame, want_keyframe }
    }
}
