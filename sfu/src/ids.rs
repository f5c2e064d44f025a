//! Names of things the media plane manages.

use std::fmt;
use std::sync::Arc;

/// A room: the set of endpoints that see and hear each other. Rooms are
/// named by the caller (signaling uses the MUC room's bare JID).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId(pub Arc<str>);

impl RoomId {
    /// The room's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for RoomId {
    fn from(s: &str) -> Self {
        RoomId(s.into())
    }
}

impl From<String> for RoomId {
    fn from(s: String) -> Self {
        RoomId(s.into())
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One participant's WebRTC session with the bridge. Unique within a
/// process for its whole life; never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointId(pub u64);

impl fmt::Display for EndpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ep{}", self.0)
    }
}

/// A published track: the publisher and the m-line (mid) it sends on.
/// Simulcast layers of one m-line are one track.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TrackId {
    /// The publishing endpoint.
    pub publisher: EndpointId,
    /// The publisher's media id (its m-line / Jingle content name).
    pub mid: String,
}

impl fmt::Display for TrackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.publisher, self.mid)
    }
}
