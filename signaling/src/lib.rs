//! # signaling — Confab's XMPP side
//!
//! The embedded XMPP server (RFC 6120 over TCP with STARTTLS, RFC 7395 over
//! WebSocket), XEP-0045 conference rooms and the focus that turns a
//! participant's Jingle call into an `sfu` endpoint (docs/ARCHITECTURE.md,
//! docs/PROTOCOL.md). It knows nothing about RTP: media is the `sfu`'s.
//!
//! Sans-IO cores, one per concern, and one thin tokio driver:
//! - [`xml`]: bounded framing of streams and WebSocket frames into stanzas;
//! - [`stream`]: one client stream's negotiation (STARTTLS, SASL via
//!   [`auth`], binding), with [`tls`] for the certificate;
//! - [`server`]: the router (sessions, ping, disco), with [`muc`] (rooms)
//!   and [`focus`] (Jingle sessions <-> media-plane endpoints);
//! - the one Jingle <-> SDP mapping, which validates everything a peer
//!   sends, is `confab_proto::jingle_sdp`, shared with Confab's clients
//!   (whose side of the call is `confab-client`);
//! - [`stanza`]: error builders (the namespaces are `confab_proto::ns`);
//! - [`recording`]: the interface through which moderators' `/record`
//!   commands reach a recorder, which the binary wires in;
//! - [`net`]: the driver (TCP listener, WebSocket hand-over, the router
//!   task, media-plane requests).
//!
//! Not here: the HTTP server (`web` mounts `/xmpp-websocket` and hands each
//! socket to [`net::Signaling::websocket`], and reads room snapshots for its
//! admin API),
//! accounts storage beyond the configuration, server-to-server federation,
//! and the XEP-0114 component mode.

pub mod auth;
pub mod focus;
pub mod muc;
pub mod net;
pub mod recording;
pub mod server;
pub mod stanza;
pub mod stream;
pub mod tls;
pub mod xml;

/// The JID types this crate's API takes and returns.
pub use xmpp_parsers::jid;
