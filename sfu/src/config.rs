//! Configuration of the media plane: how many workers, where they listen,
//! what they advertise, and the timeouts that bound an endpoint's life.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Configuration of the whole media plane (all workers).
#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// Number of media worker threads. `0` means one per available core.
    pub workers: usize,
    /// Address the worker sockets bind to.
    pub bind_ip: IpAddr,
    /// UDP port of the first worker; worker `n` listens on `first_port + n`.
    /// `0` lets the operating system pick a free port for every worker.
    pub first_port: u16,
    /// Address advertised in ICE candidates. `None` advertises `bind_ip`
    /// (which then must not be unspecified).
    pub advertised_ip: Option<IpAddr>,
    /// Per-endpoint timing.
    pub endpoint: EndpointConfig,
}

impl Default for SfuConfig {
    fn default() -> Self {
        SfuConfig {
            workers: 0,
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            first_port: 10000,
            advertised_ip: None,
            endpoint: EndpointConfig::default(),
        }
    }
}

impl SfuConfig {
    /// The number of workers to start, resolving `0` to the core count.
    pub fn worker_count(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        }
    }

    /// The socket address worker `index` binds to.
    pub fn bind_addr(&self, index: usize) -> SocketAddr {
        let port = if self.first_port == 0 {
            0
        } else {
            self.first_port.saturating_add(index as u16)
        };
        SocketAddr::new(self.bind_ip, port)
    }
}

/// Timing rules for one endpoint, shared by every endpoint of a worker.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// RFC 7675 consent freshness: an endpoint from which no STUN binding
    /// request arrived for this long is removed (browsers send one every
    /// few seconds; the RFC's limit is 30 s).
    pub consent_timeout: Duration,
    /// An endpoint that has not completed ICE and DTLS this long after it
    /// was created is removed.
    pub connect_timeout: Duration,
    /// At most one keyframe request per published track is relayed to the
    /// publisher within this interval (subscribers' PLI/FIR are merged).
    pub keyframe_request_interval: Duration,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            consent_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(30),
            keyframe_request_interval: Duration::from_millis(500),
        }
    }
}
