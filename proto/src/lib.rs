//! # confab-proto — Confab's call protocol as data
//!
//! What the server and every client of Confab's call protocol
//! (docs/PROTOCOL.md) must agree on, kept in one place:
//! - [`limits`]: every bound the protocol puts on a peer (contents,
//!   sources, candidates, occupants, ...), one number each;
//! - [`ns`]: the XML namespaces, the XEPs' and Confab's own extensions;
//! - [`jingle_sdp`] (feature `jingle`, on by default): the one Jingle <->
//!   SDP mapping, which validates everything a peer sends. The bridge's
//!   focus and Confab's clients both translate through it.
//!
//! The media plane depends on this crate without the `jingle` feature: it
//! needs the limits, not XML.
//!
//! Not here: any I/O, any state. The server's side of the protocol lives
//! in `signaling`, the participant's side in `confab-client`.

#[cfg(feature = "jingle")]
pub mod jingle_sdp;
pub mod limits;
pub mod ns;
