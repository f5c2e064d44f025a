//! # confab-client — Confab's XMPP + Jingle client library
//!
//! The participant's side of Confab's call protocol (docs/PROTOCOL.md), for
//! Confab's own tools: the load tester's simulated participants and the
//! test kit's clients use it, and any future tool should.
//! - [`xmpp`]: two real XMPP clients behind one interface: TCP with
//!   STARTTLS (tokio-xmpp's XML stream and SASL) and RFC 7395 WebSocket;
//! - [`room`]: joining a room (XEP-0045) and the stanzas a participant
//!   sends: IQs and their answers, groupchat;
//! - [`call`]: the participant's side of a Jingle call to a room, sans-IO:
//!   Jingle in, SDP out for the local WebRTC stack, and back.
//!
//! What flows: the caller's WebRTC stack (str0m, webrtc-rs) produces SDP;
//! [`call::ParticipantCall`] turns it into Jingle through the one mapping
//! in `confab_proto::jingle_sdp`; [`xmpp::XmppClient`] carries the stanzas.
//!
//! Not here: any media (the caller brings its WebRTC peer), the browser
//! page's client (JavaScript, in `web/client`), and anything of the
//! server: this crate does not depend on `signaling` or `sfu`, so a client
//! does not compile the bridge.

pub mod call;
pub mod room;
pub mod xmpp;

pub use call::{CallError, ParticipantCall, RemoteOffer, RemoteTrack};
pub use xmpp::XmppClient;
