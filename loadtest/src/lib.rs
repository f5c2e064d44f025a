//! # confab-loadtest (not built yet)
//!
//! Will start simulated participants (real XMPP clients with str0m WebRTC
//! peers) against a bridge and report join times, latency, loss and the
//! bridge's CPU cost per forwarded packet.
