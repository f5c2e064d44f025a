//! # confab-tests — Confab's test kit and end-to-end tests
//!
//! The library is the kit the tests of every crate share: independent
//! peers that play the part of real clients, never mocks of Confab.
//! * [`bridge`] — a media plane on loopback and webrtc-rs peers joined to
//!   it through the `SfuHandle` API, for tests below signaling.
//! * [`frames`] — synthetic VP8 / H.264 / Opus payloads that carry a frame
//!   counter, and their parsers.
//! * [`peer`] — [`TestPeer`](peer::TestPeer), an independent WebRTC
//!   endpoint built on webrtc-rs 0.21 that publishes synthetic media (or
//!   real encoded video that decoders can decode) and records what it
//!   receives.
//! * [`proxy`] — [`LossyProxy`](proxy::LossyProxy), a UDP relay that drops
//!   a chosen share of SRTP packets between peers and a server.
//! * [`xmpp`] — XMPP clients (Confab's client library, `confab-client`,
//!   which the load tester uses too): tokio-xmpp over TCP with STARTTLS
//!   (trusting the server's own certificate), and a small RFC 7395
//!   WebSocket client (tokio-xmpp has no WebSocket transport).
//! * [`participant`] — a room participant: an XMPP client plus a
//!   `TestPeer`, calling the room as docs/PROTOCOL.md says.
//!
//! The tests under `tests/` start Confab in-process ([`confab::start`]) and
//! drive it with these. Everything runs on `127.0.0.1`; nothing here
//! touches any other network. Not for production use.

pub mod bridge;
pub mod frames;
pub mod participant;
pub mod peer;
pub mod proxy;
/// The XMPP clients are Confab's client library's.
pub use confab_client::xmpp;

pub use frames::Codec;
pub use peer::{
    EncodedVideo, MediaKind, PeerCodec, PeerOptions, RTCPeerConnectionState, ReceivedTrack,
    TestPeer, VideoCodec, WireStats,
};
pub use proxy::{ClientFilter, LossyProxy};

use std::time::Duration;

/// Installs a `tracing` subscriber writing to the test output, filtered by `RUST_LOG`
/// (default: warnings). Safe to call from every test; only the first call wins. webrtc-rs
/// logs through `log`, which is bridged into `tracing`.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// Offers from `offerer`, answers with `answerer` (via `apply_remote_offer`) and waits
/// until both are connected. For peer-to-peer tests; with the SFU, the test signals.
pub async fn connect_pair(offerer: &TestPeer, answerer: &TestPeer, timeout: Duration) {
    let offer = offerer.create_offer().await;
    let answer = answerer.apply_remote_offer(offer).await;
    offerer.apply_answer(answer).await;
    offerer.wait_connected(timeout).await;
    answerer.wait_connected(timeout).await;
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes; returns whether it held.
pub async fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The status line of `GET path` sent byte for byte to `addr` (so that no
/// HTTP client tidies the path first).
pub async fn raw_status_line(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}
