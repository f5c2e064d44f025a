//! Sequence number and timestamp rewriting for one forwarded stream.
//!
//! A subscriber sees each remote track under one SSRC for the track's whole
//! life (docs/PROTOCOL.md §4), while the bridge may feed it from different
//! sources over time: another simulcast layer, or the same publisher after
//! an SSRC change. [`SeqRewriter`] keeps the outgoing sequence numbers and
//! RTP timestamps continuous across such switches, and starts every
//! outgoing stream with a rollover counter of zero, as str0m requires for a
//! stream whose receiver has not been told otherwise.

/// Rewrites extended sequence numbers and RTP timestamps of one source into
/// the numbering of one outgoing stream.
#[derive(Debug, Default, Clone)]
pub struct SeqRewriter {
    /// (extended input seq of the current source's first packet, output seq
    /// it was given) and the same for timestamps.
    base: Option<Base>,
    /// Highest output sequence number and timestamp handed out.
    last_out_seq: u64,
    last_out_ts: u32,
}

#[derive(Debug, Clone, Copy)]
struct Base {
    in_seq: u64,
    out_seq: u64,
    in_ts: u32,
    out_ts: u32,
}

/// Output sequence numbers start here (a low value: no rollover soon, and
/// room below for reordered packets from before the first one).
const FIRST_OUT_SEQ: u64 = 1000;

impl SeqRewriter {
    /// Map a packet of the current source. Returns `None` for a packet so
    /// old that it precedes the source's first forwarded packet.
    pub fn map(&mut self, in_seq: u64, in_ts: u32) -> Option<(u64, u32)> {
        let base = match self.base {
            Some(b) => b,
            None => {
                let b = Base {
                    in_seq,
                    out_seq: FIRST_OUT_SEQ,
                    in_ts,
                    out_ts: in_ts,
                };
                self.base = Some(b);
                b
            }
        };
        if in_seq < base.in_seq {
            return None;
        }
        let out_seq = base.out_seq + (in_seq - base.in_seq);
        let out_ts = base.out_ts.wrapping_add(in_ts.wrapping_sub(base.in_ts));
        if out_seq > self.last_out_seq {
            self.last_out_seq = out_seq;
            self.last_out_ts = out_ts;
        }
        Some((out_seq, out_ts))
    }

    /// Switch to a new source whose next packet has `in_seq` / `in_ts`: the
    /// output continues one sequence number and `ts_gap` ticks after the
    /// last packet sent.
    pub fn switch_source(&mut self, in_seq: u64, in_ts: u32, ts_gap: u32) {
        if self.base.is_none() {
            return;
        }
        self.base = Some(Base {
            in_seq,
            out_seq: self.last_out_seq + 1,
            in_ts,
            out_ts: self.last_out_ts.wrapping_add(ts_gap),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuous_source_keeps_gaps_and_order() {
        let mut r = SeqRewriter::default();
        assert_eq!(r.map(70_000, 500), Some((1000, 500)));
        assert_eq!(r.map(70_002, 1100), Some((1002, 1100)));
        // A late (retransmitted or reordered) packet keeps its place.
        assert_eq!(r.map(70_001, 800), Some((1001, 800)));
        // Older than the first packet: dropped.
        assert_eq!(r.map(69_999, 200), None);
    }

    #[test]
    fn switching_source_continues_numbering() {
        let mut r = SeqRewriter::default();
        r.map(10, 1_000);
        r.map(11, 4_000);
        r.switch_source(5_000, 900_000, 3_000);
        assert_eq!(r.map(5_000, 900_000), Some((1002, 7_000)));
        assert_eq!(r.map(5_001, 903_000), Some((1003, 10_000)));
    }

    #[test]
    fn timestamps_wrap() {
        let mut r = SeqRewriter::default();
        r.map(1, u32::MAX - 10);
        assert_eq!(r.map(2, 20), Some((1001, 20)));
    }
}
