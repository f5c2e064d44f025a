//! What the rooms need from a recorder, as an interface: starting and
//! stopping a room's recording when a moderator says `/record start` or
//! `/record stop` (docs/PROTOCOL.md §9).
//!
//! `signaling` does not know the recorder: the binary wires an
//! implementation in ([`crate::net::SignalingConfig::recordings`]) and
//! tells the rooms about recordings started elsewhere (the admin API) or
//! ended by themselves ([`crate::net::Signaling::recording_changed`],
//! [`crate::net::Signaling::recording_ended`]), so that a signaling build
//! links no codec.

use std::future::Future;
use std::pin::Pin;

use xmpp_parsers::jid::BareJid;

/// The outcome of a recording command: `Err` says why it failed, in words
/// the moderator reads ("the room is being recorded already").
pub type RecordingResult = Result<(), String>;

/// A recording command that completes later (stopping waits for the
/// files to close).
pub type RecordingFuture<'a> = Pin<Box<dyn Future<Output = RecordingResult> + Send + 'a>>;

/// Starts and stops the recording of a room.
pub trait RecordingControl: Send + Sync + 'static {
    /// Start recording `room`, on behalf of `by` (a nick or "admin").
    fn start(&self, room: &BareJid, by: &str) -> RecordingResult;
    /// Stop recording `room`; done once its files are closed.
    fn stop<'a>(&'a self, room: &'a BareJid) -> RecordingFuture<'a>;
}
