//! Errors of the media plane's API.

use crate::ids::{EndpointId, RoomId};

/// Why an API call on the media plane failed.
#[derive(Debug, thiserror::Error)]
pub enum SfuError {
    /// The peer's session description could not be used (malformed, no
    /// common codec, missing fingerprint, ...). The peer misbehaved or is
    /// incompatible; nothing else is affected.
    #[error("remote session description rejected: {0}")]
    BadRemoteDescription(String),
    /// No endpoint with this id exists (it left, timed out or never was).
    #[error("no such endpoint: {0}")]
    UnknownEndpoint(EndpointId),
    /// No room with this name exists.
    #[error("no such room: {0}")]
    UnknownRoom(RoomId),
    /// An answer arrived but no offer from the bridge was outstanding,
    /// or the answer belongs to an offer that has been superseded.
    #[error("no offer outstanding for endpoint {0}")]
    NoPendingOffer(EndpointId),
    /// The media worker is gone (the process is shutting down).
    #[error("media worker stopped")]
    WorkerGone,
}
