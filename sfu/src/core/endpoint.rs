//! One participant's session: its str0m `Rtc`, what it publishes and what
//! the bridge forwards to it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use str0m::change::SdpPendingOffer;
use str0m::format::{Codec, PayloadParams};
use str0m::media::{MediaKind, Mid, Rid};
use str0m::rtp::Ssrc;
use str0m::Rtc;

use super::forward::{LayerSelector, PtMap};
use super::rewrite::SeqRewriter;
use crate::event::TrackStats;
use crate::ids::{EndpointId, RoomId};

/// At most this many source addresses are remembered per endpoint (ICE may
/// try several; a peer cannot make us remember more).
pub(crate) const MAX_ADDRS: usize = 8;

/// Key of a published track inside a worker: publisher and its mid.
pub(crate) type SourceKey = (EndpointId, Mid);

pub(crate) struct Endpoint {
    pub id: EndpointId,
    pub room: RoomId,
    pub label: String,
    pub rtc: Rtc,
    pub ufrag: String,
    /// Our ICE password: the key of the peer's checks' MESSAGE-INTEGRITY.
    pub ice_pwd: String,
    pub addrs: Vec<SocketAddr>,
    pub created: Instant,
    pub connected: bool,
    /// Last STUN binding request (RFC 7675 consent) from the peer whose
    /// integrity checked out.
    pub last_consent: Instant,
    /// str0m's next timeout.
    pub rtc_timeout: Instant,
    /// What this endpoint publishes, by its own mid.
    pub published: HashMap<Mid, Published>,
    /// Incoming SSRC -> (mid, rid), learnt from str0m's streams.
    pub rx_ssrcs: HashMap<Ssrc, (Mid, Option<Rid>)>,
    /// Payload type -> codec of what this endpoint sends us.
    pub rx_params: Vec<PayloadParams>,
    /// What the bridge forwards to this endpoint, by source.
    pub out_tracks: HashMap<SourceKey, OutTrack>,
    /// Subscriber-side mid -> source.
    pub out_by_mid: HashMap<Mid, SourceKey>,
    /// The offer the peer has not answered yet.
    pub pending: Option<SdpPendingOffer>,
    /// Something changed in `out_tracks` that needs an offer.
    pub negotiation_needed: bool,
    /// Latest statistics from str0m.
    pub stats: EndpointCounters,
}

/// A track this endpoint publishes.
pub(crate) struct Published {
    pub kind: MediaKind,
    /// Simulcast layers, lowest first (empty: no simulcast).
    pub rids: Vec<Rid>,
    /// When each layer (index as in `rids`; index 0 without simulcast) last
    /// delivered a packet.
    pub layer_seen: Vec<Option<Instant>>,
    /// Endpoints that have an [`OutTrack`] for this track.
    pub subscribers: Vec<EndpointId>,
    /// Last keyframe request relayed to the publisher, per layer.
    pub last_keyframe_request: Vec<Option<Instant>>,
    /// Track id used in subscribers' msid.
    pub track_label: String,
    /// Codec of the last packet received (for statistics).
    pub codec: Option<Codec>,
}

impl Published {
    pub fn layer_index(&self, rid: Option<Rid>) -> usize {
        match rid {
            None => 0,
            Some(r) => self.rids.iter().position(|x| *x == r).unwrap_or(0),
        }
    }

    pub fn rid_at(&self, index: usize) -> Option<Rid> {
        self.rids.get(index).copied()
    }

    /// The layer a subscriber should get: the highest one that delivered a
    /// packet within the last second (or the lowest if none did yet).
    pub fn best_layer(&self, now: Instant) -> usize {
        self.layer_seen
            .iter()
            .enumerate()
            .rev()
            .find(|(_, seen)| {
                seen.is_some_and(|t| now.saturating_duration_since(t).as_millis() < 1000)
            })
            .map(|(i, _)| i)
            .unwrap_or(0)
    }
}

/// The negotiation state of a forwarded track in a subscriber's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutState {
    /// Waiting to be put in the next offer.
    ToOpen,
    /// Offered under this mid; no answer yet.
    Negotiating(Mid),
    /// Answered: media flows.
    Open(Mid),
    /// Source gone: to be stopped in the next offer.
    ToStop(Mid),
    /// Stop offered; removed when answered.
    Stopping(Mid),
}

/// One remote track as forwarded to one subscriber.
pub(crate) struct OutTrack {
    pub kind: MediaKind,
    pub state: OutState,
    /// The source went away while this track was being negotiated.
    pub withdrawn: bool,
    pub stream_id: String,
    pub track_id: String,
    /// Outgoing SSRC, once open.
    pub ssrc: Option<Ssrc>,
    /// Which simulcast layer it gets (video; unused for audio).
    pub layers: LayerSelector,
    pub rewriter: SeqRewriter,
    /// Publisher payload type -> this subscriber's payload type.
    pub pt_map: PtMap,
    /// When the last packet was forwarded, to continue the timeline
    /// across a layer switch.
    pub last_forwarded: Option<Instant>,
}

/// Cumulative counters, kept from str0m's statistics events.
#[derive(Debug, Default, Clone)]
pub(crate) struct EndpointCounters {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub rtt: Option<std::time::Duration>,
    pub ingress: HashMap<(Mid, Option<Rid>), TrackStats>,
    pub egress: HashMap<(Mid, Option<Rid>), TrackStats>,
}

impl Endpoint {
    /// When this endpoint next needs [`super::Core::handle_timeout`].
    pub fn deadline(
        &self,
        consent_timeout: std::time::Duration,
        connect_timeout: std::time::Duration,
    ) -> Instant {
        let liveness = if self.connected {
            self.last_consent + consent_timeout
        } else {
            self.created + connect_timeout
        };
        self.rtc_timeout.min(liveness)
    }

    /// Remember a source address the peer uses; bounded.
    pub fn remember_addr(&mut self, addr: SocketAddr) -> Option<SocketAddr> {
        if self.addrs.contains(&addr) {
            return None;
        }
        self.addrs.push(addr);
        if self.addrs.len() > MAX_ADDRS {
            Some(self.addrs.remove(0))
        } else {
            None
        }
    }
}
