//! Where a frame goes on the recording's time axis.
//!
//! Every track of every participant is placed on one axis that starts when
//! the recording starts. A track's first frame is placed by its arrival
//! time at the bridge (the clock all publishers share); later frames by
//! their RTP time relative to the first, which keeps the publisher's own
//! spacing (no network jitter) and lines tracks of different participants
//! up to within the first packet's network delay.

use std::time::{Duration, Instant};

/// The time axis of one track.
#[derive(Debug, Clone)]
pub struct TrackClock {
    clock_rate: u64,
    /// First frame: its RTP time and its place on the axis.
    anchor: Option<(u64, Duration)>,
    /// Last place handed out: places never go backwards.
    last: Option<Duration>,
}

impl TrackClock {
    /// A clock for a track with this RTP clock rate.
    pub fn new(clock_rate: u32) -> TrackClock {
        TrackClock {
            clock_rate: u64::from(clock_rate.max(1)),
            anchor: None,
            last: None,
        }
    }

    /// The track's RTP clock starts afresh (another simulcast layer, with
    /// its own timestamps): the next frame is placed by its arrival again,
    /// never before what was placed already.
    pub fn rebase(&mut self) {
        self.anchor = None;
    }

    /// The place of a frame with extended RTP time `rtp_time` that arrived
    /// at `arrived`, on the axis starting at `start`.
    pub fn place(&mut self, start: Instant, arrived: Instant, rtp_time: u64) -> Duration {
        let (anchor_rtp, anchor_at) = *self
            .anchor
            .get_or_insert_with(|| (rtp_time, arrived.saturating_duration_since(start)));
        let ticks = rtp_time.saturating_sub(anchor_rtp);
        let since = Duration::from_nanos(
            u64::try_from(u128::from(ticks) * 1_000_000_000 / u128::from(self.clock_rate))
                .unwrap_or(u64::MAX),
        );
        let mut at = anchor_at.saturating_add(since);
        if let Some(last) = self.last {
            at = at.max(last);
        }
        self.last = Some(at);
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_spacing_from_the_first_arrival() {
        let start = Instant::now();
        let mut c = TrackClock::new(90_000);
        let t0 = c.place(start, start + Duration::from_millis(250), 1_000_000);
        assert_eq!(t0, Duration::from_millis(250));
        // Arrival jitter does not move later frames; RTP time does.
        let t1 = c.place(start, start + Duration::from_millis(900), 1_000_000 + 9000);
        assert_eq!(t1, Duration::from_millis(350));
        // A timestamp going back never moves the track backwards.
        assert_eq!(c.place(start, start, 1_000_000), Duration::from_millis(350));
    }
}
