//! One tapped track of a participant: its RTP packets assembled into
//! frames ([`crate::frame`]) and placed on the recording's time axis
//! ([`crate::timeline`]). Both the per-participant files and the composite
//! take their frames from here.
//!
//! Of a simulcast track, the highest layer seen is recorded (the largest
//! picture, and the layer the bridge's keyframe requests go to): when a
//! higher one appears, the track moves to it from its next keyframe.

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
    /// The simulcast layer recorded: the highest seen.
    rid: Option<String>,
    layer: usize,
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
            layer: pkt.layer,
        }
    }

    /// Take a packet of the track, on the axis starting at `start`.
    /// Packets of lower simulcast layers are ignored. With
    /// `ask_while_waiting`, a keyframe is asked for at the end of every
    /// frame dropped while waiting for one (not only after a loss).
    pub fn push(&mut self, start: Instant, pkt: &TappedPacket, ask_while_waiting: bool) -> Placed {
        if pkt.layer > self.layer {
            self.layer = pkt.layer;
            self.rid = pkt.rid.clone();
            self.assembler = FrameAssembler::new(pkt.codec);
            self.clock.rebase();
            let mut placed = self.push(start, pkt, ask_while_waiting);
            placed.want_keyframe |= placed.frame.is_none();
            return placed;
        }
        if pkt.layer < self.layer || self.rid != pkt.rid {
            return Placed::default();
        }
        let was_waiting = self.assembler.waiting_for_keyframe();
        let out = self
            .assembler
            .push(pkt.seq_no, pkt.rtp_timestamp, pkt.marker, &pkt.payload);
        let want_keyframe = out.need_keyframe
            || (ask_while_waiting && was_waiting && out.frame.is_none() && pkt.marker);
        let frame = out
            .frame
            .map(|f| (self.clock.place(start, pkt.arrived, f.rtp_time), f));
        Placed {
            frame,
            want_keyframe,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sfu::str0m::format::Codec;
    use sfu::{EndpointId, RoomId, TrackId};

    fn packet(rid: &str, layer: usize, seq_no: u64, ts: u32, keyframe: bool) -> TappedPacket {
        // One-packet VP8 frames: descriptor S=1, then the frame tag (bit 0
        // clear on keyframes) and, on keyframes, the start code and size.
        let payload: Vec<u8> = if keyframe {
            vec![0x10, 0x00, 0, 0, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01]
        } else {
            vec![0x10, 0x01, 0, 0]
        };
        TappedPacket {
            room: RoomId::from("r"),
            track: TrackId {
                publisher: EndpointId(1),
                mid: "1".into(),
            },
            kind: MediaKind::Video,
            codec: Codec::Vp8,
            clock_rate: 90_000,
            rid: Some(rid.into()),
            layer,
            seq_no,
            rtp_timestamp: ts,
            marker: true,
            arrived: Instant::now(),
            payload: payload.into(),
        }
    }

    #[test]
    fn the_highest_simulcast_layer_is_recorded_from_its_keyframe() {
        let start = Instant::now();
        let mut t = TrackInput::new(&packet("q", 0, 1, 0, true));
        assert!(t
            .push(start, &packet("q", 0, 1, 0, true), true)
            .frame
            .is_some());
        let (q_at, _) = t
            .push(start, &packet("q", 0, 2, 3000, false), true)
            .frame
            .expect("a frame");
        // A higher layer shows up with a delta frame: the track moves to it
        // and asks for a keyframe; the lower layer is no longer recorded.
        let moved = t.push(start, &packet("f", 2, 100, 777, false), true);
        assert!(moved.frame.is_none() && moved.want_keyframe);
        assert!(t
            .push(start, &packet("q", 0, 3, 6000, false), true)
            .frame
            .is_none());
        let key = t.push(start, &packet("f", 2, 101, 3777, true), true);
        let (at, frame) = key.frame.expect("the keyframe of the new layer");
        assert!(frame.keyframe);
        assert!(
            at >= q_at,
            "the time axis never goes back: {at:?} after {q_at:?}"
        );
        assert!(t
            .push(start, &packet("f", 2, 102, 6777, false), true)
            .frame
            .is_some());
        // A middle layer is not a step up.
        assert!(t
            .push(start, &packet("h", 1, 50, 1, true), true)
            .frame
            .is_none());
    }
}
