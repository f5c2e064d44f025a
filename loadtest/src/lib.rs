//! # confab-loadtest (being built)
//!
//! Will start simulated participants (real XMPP clients with str0m WebRTC
//! peers) against a bridge and report join times, latency, loss and the
//! bridge's CPU cost per forwarded packet.
//!
//! So far it holds the [`xmpp`] clients its participants and Confab's
//! end-to-end tests share.

pub mod xmpp;
