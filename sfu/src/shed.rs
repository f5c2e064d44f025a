//! When a media worker drops input instead of queueing it: the rule, kept
//! apart from the socket so it can be tested on a made-up clock.
//!
//! A worker short of CPU falls behind its socket, and what it then reads
//! is old: forwarding it only adds delay that receivers' jitter buffers
//! have already given up on. But a queue that builds up while the thread
//! was not scheduled for a moment (a busy neighbour, a page fault) drains
//! in milliseconds once it runs again; dropping it would turn a short
//! delay into loss for everyone in the room, and the NACKs and RTX repairs
//! that follow would load the worker further.
//!
//! So, as CoDel does for router queues, only a standing queue is shed: one
//! whose packets have all waited longer than [`TARGET`] for a whole
//! [`INTERVAL`]. Then every packet older than [`TARGET`] is dropped until
//! one arrives fresh again, which empties the backlog at once. CoDel's
//! gradual drop rate is left out: media is paced by its senders, and a
//! worker this far behind has no use for any stale packet. (No maintained
//! crate offers this for a caller-supplied wait; it is a few lines.)

use std::time::{Duration, Instant};

/// A packet that waited longer than this in the kernel's receive queue is
/// late.
pub const TARGET: Duration = Duration::from_millis(100);

/// How long every packet must have been late before late packets are
/// dropped: longer than a scheduling hiccup, shorter than receivers put up
/// with before they freeze a picture.
pub const INTERVAL: Duration = Duration::from_millis(500);

/// The shedding decision of one worker.
#[derive(Debug, Default)]
pub struct Shedder {
    /// Since when every packet read has been late, if the last one was.
    late_since: Option<Instant>,
}

impl Shedder {
    /// A worker that has not fallen behind.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether to drop a packet read at `now` that waited `waited` in the
    /// receive queue.
    pub fn shed(&mut self, now: Instant, waited: Duration) -> bool {
        if waited <= TARGET {
            self.late_since = None;
            return false;
        }
        let since = *self.late_since.get_or_insert(now);
        now.saturating_duration_since(since) >= INTERVAL
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_queue_left_by_a_stall_is_forwarded_late_not_dropped() {
        let mut s = Shedder::new();
        let t0 = Instant::now();
        assert!(!s.shed(t0, 2 * MS));
        // The thread was not scheduled for 400 ms: what queued meanwhile
        // is read in a burst, oldest first, and the queue is empty again
        // 5 ms later.
        for i in 0..40 {
            let now = t0 + 400 * MS + MS * i / 8;
            assert!(
                !s.shed(now, (400 - 10 * i) * MS),
                "packet {i} of the backlog"
            );
        }
        assert!(!s.shed(t0 + 406 * MS, MS));
        // A second stall later starts afresh.
        assert!(!s.shed(t0 + 2000 * MS, 300 * MS));
        assert!(!s.shed(t0 + 2400 * MS, 300 * MS));
    }

    #[test]
    fn a_standing_queue_is_shed_until_a_packet_is_fresh_again() {
        let mut s = Shedder::new();
        let t0 = Instant::now();
        // The worker cannot keep up: every packet read has waited ~200 ms.
        let mut now = t0;
        while now < t0 + INTERVAL {
            assert!(
                !s.shed(now, 200 * MS),
                "late for less than the interval: kept"
            );
            now += 10 * MS;
        }
        assert!(s.shed(now, 200 * MS), "late for a whole interval: shed");
        assert!(s.shed(now + MS, 150 * MS));
        // Dropping emptied the queue: fresh packets are kept, and so are
        // late ones for another interval.
        assert!(!s.shed(now + 2 * MS, 20 * MS));
        assert!(!s.shed(now + 3 * MS, 200 * MS));
        assert!(!s.shed(now + 400 * MS, 200 * MS));
        assert!(s.shed(now + 503 * MS, 200 * MS));
    }

    #[test]
    fn a_packet_exactly_at_the_target_is_not_late() {
        let mut s = Shedder::new();
        let t0 = Instant::now();
        assert!(!s.shed(t0, TARGET));
        assert!(!s.shed(t0 + 10 * INTERVAL, TARGET));
    }
}
