//! What the media plane tells its user (signaling): events about endpoints
//! and rooms, and statistics.

use std::time::Duration;

pub use str0m::change::{SdpAnswer, SdpOffer};
pub use str0m::media::MediaKind;

use crate::ids::{EndpointId, RoomId, TrackId};

/// A track a participant publishes (one of its m-lines the bridge receives).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedTrack {
    /// Publisher and m-line.
    pub id: TrackId,
    /// Audio or video.
    pub kind: MediaKind,
    /// Simulcast layers (rids), lowest first; empty without simulcast.
    pub rids: Vec<String>,
}

/// A remote track as it appears in one subscriber's session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingTrack {
    /// The m-line (Jingle content name) in the subscriber's session.
    pub mid: String,
    /// The published track it carries.
    pub source: TrackId,
    /// Audio or video.
    pub kind: MediaKind,
    /// `a=msid` stream id: the same for all tracks of one publisher.
    pub stream_id: String,
    /// `a=msid` track id.
    pub track_id: String,
}

/// Events about one endpoint, delivered to whoever created it.
#[derive(Debug)]
pub enum EndpointEvent {
    /// ICE and DTLS completed: media can flow.
    Connected,
    /// The bridge changed what it sends to this endpoint: the peer must
    /// apply `offer` and answer it with [`crate::SfuHandle::accept_answer`].
    /// At most one offer is outstanding per endpoint; later changes wait
    /// and are batched into the next one.
    Offer {
        /// The whole session as the bridge now offers it.
        offer: SdpOffer,
        /// Tracks added by this offer.
        added: Vec<OutgoingTrack>,
        /// Mids of m-lines this offer stops (their source went away).
        removed: Vec<String>,
    },
    /// The endpoint is gone; nothing more will be said about it.
    Closed(CloseReason),
}

/// Events about rooms, delivered to the media plane's single event stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomEvent {
    /// A participant started publishing a track.
    TrackPublished {
        /// The room.
        room: RoomId,
        /// The track.
        track: PublishedTrack,
    },
    /// A track went away (unpublished, or its publisher left).
    TrackWithdrawn {
        /// The room.
        room: RoomId,
        /// The track.
        track: TrackId,
    },
    /// An endpoint left the room.
    EndpointClosed {
        /// The room it was in.
        room: RoomId,
        /// The endpoint.
        endpoint: EndpointId,
        /// Why.
        reason: CloseReason,
    },
}

/// Why an endpoint was closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// Its owner asked for it (the participant left or hung up).
    Requested,
    /// RFC 7675 consent expired: no connectivity check from the peer for
    /// the consent timeout.
    ConsentExpired,
    /// ICE and DTLS did not complete within the connect timeout.
    ConnectTimeout,
    /// ICE lost every candidate pair.
    IceDisconnected,
    /// The WebRTC stack failed (DTLS alert, SRTP failure, ...).
    Failed(String),
}

/// Counters of one direction of one m-line (and simulcast layer).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrackStats {
    /// The m-line in this endpoint's session.
    pub mid: String,
    /// The simulcast layer, if any.
    pub rid: Option<String>,
    /// RTP packets.
    pub packets: u64,
    /// RTP payload bytes.
    pub bytes: u64,
    /// NACKs (sent for ingress, received for egress).
    pub nacks: u64,
    /// PLIs (sent for ingress, received for egress).
    pub plis: u64,
    /// FIRs (sent for ingress, received for egress).
    pub firs: u64,
    /// Fraction lost as last reported, 0.0 to 1.0.
    pub loss: Option<f32>,
    /// Bitrate over the last statistics interval, in bits per second.
    pub bitrate_bps: u64,
    /// The codec of the media last forwarded on this m-line as str0m
    /// names it (`opus`, `VP8`, `H264`); `None` before the first packet.
    pub codec: Option<String>,
    /// For egress: the published track this m-line carries (`None` for
    /// ingress, and once the source went away).
    pub source: Option<TrackId>,
}

/// A snapshot of one endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointStats {
    /// The endpoint.
    pub id: EndpointId,
    /// Its room.
    pub room: RoomId,
    /// The label given at creation (signaling passes the nick).
    pub label: String,
    /// ICE and DTLS completed.
    pub connected: bool,
    /// All bytes received from the peer (including STUN, DTLS, RTCP).
    pub bytes_in: u64,
    /// All bytes sent to the peer.
    pub bytes_out: u64,
    /// Round-trip time, as last measured.
    pub rtt: Option<Duration>,
    /// What it publishes.
    pub ingress: Vec<TrackStats>,
    /// What it receives from the bridge.
    pub egress: Vec<TrackStats>,
}
