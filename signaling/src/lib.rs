//! # signaling — Confab's XMPP side
//!
//! Will hold the embedded XMPP server (RFC 6120 over TCP, RFC 7395 over
//! WebSocket), XEP-0045 conference rooms and the Jingle focus that turns a
//! participant's call into an `sfu` endpoint. It knows nothing about RTP.
//! See DESIGN.md and PROTOCOL.md.
//!
//! Built so far:
//! - [`xml`]: bounded framing of XMPP streams and WebSocket frames into
//!   stanzas (bytes in, `minidom` elements out);
//! - [`jingle_sdp`]: the one Jingle <-> SDP mapping, with validation of
//!   everything a peer sends.
//!
//! Not built yet: the stream state machine (SASL, binding), MUC rooms, the
//! focus and the TCP/WebSocket listeners.

pub mod jingle_sdp;
pub mod xml;
