//! # signaling — Confab's XMPP side
//!
//! The embedded XMPP server (RFC 6120 over TCP with STARTTLS, RFC 7395 over
//! WebSocket), XEP-0045 conference rooms and the focus that turns a
//! participant's Jingle call into an `sfu` endpoint (DESIGN.md,
//! PROTOCOL.md). It knows nothing about RTP: media is the `sfu`'s.
//!
//! Sans-IO cores, one per concern, and one thin tokio driver:
//! - [`xml`]: bounded framing of streams and WebSocket frames into stanzas;
//! - [`stream`]: one client stream's negotiation (STARTTLS, SASL via
//!   [`auth`], binding), with [`tls`] for the certificate;
//! - [`server`]: the router (sessions, ping, disco), with [`muc`] (rooms)
//!   and [`focus`] (Jingle sessions <-> media-plane endpoints);
//! - [`jingle_sdp`]: the one Jingle <-> SDP mapping, validating everything
//!   a peer sends; [`call`]: the participant's side of the call protocol,
//!   for Confab's own clients (tests, load tester);
//! - [`stanza`]: namespaces and error builders;
//! - [`net`]: the driver (TCP listener, WebSocket hand-over, the router
//!   task, media-plane requests).
//!
//! Not here: the HTTP server (`web` mounts `/xmpp-websocket` and hands each
//! socket to [`net::Signaling::websocket`], and reads room snapshots for its
//! admin API),
//! accounts storage beyond the configuration, server-to-server federation,
//! and the XEP-0114 component mode.

pub mod auth;
pub mod call;
pub mod focus;
pub mod jingle_sdp;
pub mod muc;
pub mod net;
pub mod server;
pub mod stanza;
pub mod stream;
pub mod tls;
pub mod xml;

/// The JID types this crate's API takes and returns.
pub use xmpp_parsers::jid;
