//! The media plane's metrics, through the `metrics` facade.
//!
//! Handles are resolved once per worker (labelled by its socket address)
//! so the per-packet cost is an atomic add, not a registry lookup.

use std::net::SocketAddr;

use metrics::{counter, gauge, Counter, Gauge};

/// Names of every metric the media plane records.
pub mod names {
    /// Gauge: endpoints on a worker.
    pub const ENDPOINTS: &str = "confab_sfu_endpoints";
    /// Gauge: rooms on a worker.
    pub const ROOMS: &str = "confab_sfu_rooms";
    /// Counter: datagrams received.
    pub const PACKETS_IN: &str = "confab_sfu_packets_in_total";
    /// Counter: bytes received.
    pub const BYTES_IN: &str = "confab_sfu_bytes_in_total";
    /// Counter: datagrams sent.
    pub const PACKETS_OUT: &str = "confab_sfu_packets_out_total";
    /// Counter: bytes sent.
    pub const BYTES_OUT: &str = "confab_sfu_bytes_out_total";
    /// Counter: datagrams dropped (unknown sender, not STUN/DTLS/RTP, rejected).
    pub const DROPPED: &str = "confab_sfu_datagrams_dropped_total";
    /// Counter: datagrams not sent because the worker socket's send buffer
    /// was full (the worker drops rather than wait; see the driver).
    pub const SEND_DROPPED: &str = "confab_sfu_send_dropped_total";
    /// Counter: media datagrams dropped unprocessed because they waited
    /// too long in the worker socket's receive queue (the worker is short
    /// of CPU and sheds its oldest input; see the driver).
    pub const INPUT_SHED: &str = "confab_sfu_input_shed_total";
    /// Counter: RTP packets forwarded to a subscriber.
    pub const FORWARDED: &str = "confab_sfu_rtp_forwarded_total";
    /// Counter: NACKs received from subscribers.
    pub const NACKS: &str = "confab_sfu_nacks_received_total";
    /// Counter: PLIs and FIRs received from subscribers.
    pub const PLIS: &str = "confab_sfu_keyframe_requests_received_total";
    /// Counter: keyframe requests relayed to publishers.
    pub const KEYFRAME_REQUESTS: &str = "confab_sfu_keyframe_requests_relayed_total";
    /// Histogram: seconds from a datagram's arrival to the departure of a
    /// datagram it caused.
    pub const FORWARD_LATENCY: &str = "confab_sfu_forward_latency_seconds";
}

pub(crate) struct WorkerMetrics {
    pub endpoints: Gauge,
    pub rooms: Gauge,
    pub packets_in: Counter,
    pub bytes_in: Counter,
    pub packets_out: Counter,
    pub bytes_out: Counter,
    pub dropped: Counter,
    pub forwarded: Counter,
    pub nacks: Counter,
    pub plis: Counter,
    pub keyframe_requests: Counter,
}

impl WorkerMetrics {
    pub fn new(addr: SocketAddr) -> Self {
        let w = addr.to_string();
        WorkerMetrics {
            endpoints: gauge!(names::ENDPOINTS, "worker" => w.clone()),
            rooms: gauge!(names::ROOMS, "worker" => w.clone()),
            packets_in: counter!(names::PACKETS_IN, "worker" => w.clone()),
            bytes_in: counter!(names::BYTES_IN, "worker" => w.clone()),
            packets_out: counter!(names::PACKETS_OUT, "worker" => w.clone()),
            bytes_out: counter!(names::BYTES_OUT, "worker" => w.clone()),
            dropped: counter!(names::DROPPED, "worker" => w.clone()),
            forwarded: counter!(names::FORWARDED, "worker" => w.clone()),
            nacks: counter!(names::NACKS, "worker" => w.clone()),
            plis: counter!(names::PLIS, "worker" => w.clone()),
            keyframe_requests: counter!(names::KEYFRAME_REQUESTS, "worker" => w),
        }
    }

    pub fn set_rooms(&self, n: usize) {
        self.rooms.set(n as f64);
    }
}
