//! # confab-loadtest — how much a bridge carries
//!
//! Starts simulated participants in rooms of a bridge and measures what
//! they experience, so admins know what a machine holds before people
//! notice. The Confab counterpart of LiveKit's `lk load-test` and Jitsi's
//! Malleus; `--target janus` puts the same load on a Janus VideoRoom for a
//! side-by-side figure.
//!
//! ```text
//!  options ─> run ─┬─ participant (one tokio task each) ──────────────┐
//!                  │    xmpp: log in, join the MUC, Jingle call        │  Update
//!                  │    peer: str0m Rtc, sans-IO, own UDP socket  ─────┤ (steps,
//!                  │    media: pre-encoded VP8/H.264 + Opus, tagged    │ seconds)
//!                  ├─ probe: bridge CPU/RSS (/proc), /metrics          │
//!                  └─ aggregator: progress bar, timeline  <────────────┘
//!                           └─> report: table, --json, --plot
//! ```
//!
//! Data enters as XMPP stanzas and UDP datagrams (the bridge's), and
//! `/proc` and `/metrics` readings; it leaves as the [`report::Report`].
//! Each participant is a real XMPP client doing the same room join and
//! Jingle call as the browser page (docs/PROTOCOL.md), through Confab's
//! client library (`confab-client`), and a real WebRTC peer.
//! What is measured, and how frames carry their counter and send time, is
//! in [`stats`] and [`media`].
//!
//! Not for: functional testing of the protocol (Confab's end-to-end tests
//! do that with independent peers), decoding or judging picture quality,
//! or measuring across machines (latency needs one clock: run the tool on
//! the bridge's host or one with a synchronised clock).

pub mod janus;
pub mod media;
pub mod options;
pub mod participant;
pub mod peer;
pub mod probe;
pub mod report;
pub mod run;
pub mod stats;

pub use options::Options;
pub use report::Report;
pub use run::run;

/// How far a participant got, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// Logged in.
    LoggedIn,
    /// In the room.
    RoomJoined,
    /// The bridge accepted its session.
    SessionAccepted,
    /// ICE and DTLS connected.
    IceConnected,
    /// Received a remote video frame.
    FirstFrame,
    /// Stopped on an error.
    Failed,
}

/// What participants tell the aggregator while they run.
#[derive(Debug)]
pub enum Update {
    /// Participant `id` reached a step.
    Step(usize, Step),
    /// Participant `id`'s figures for one second.
    Second(usize, stats::Second),
}
