//! # signaling — Confab's XMPP side (not built yet)
//!
//! Will hold the embedded XMPP server (RFC 6120 over TCP, RFC 7395 over
//! WebSocket), XEP-0045 conference rooms and the Jingle focus that turns a
//! participant's call into an `sfu` endpoint, with the one Jingle <-> SDP
//! mapping. It will know nothing about RTP. See DESIGN.md and PROTOCOL.md.

pub mod jingle_sdp;
pub mod xml;
