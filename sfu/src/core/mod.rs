//! The sans-IO forwarding core of one media worker.
//!
//! [`Core`] owns the rooms and endpoints placed on one worker. It has no
//! socket and no clock: the driver hands it datagrams and the current time,
//! and drains what it produces.
//!
//! Methods, in the quinn-proto manner:
//! - commands from the application: [`Core::create_endpoint`],
//!   [`Core::accept_answer`], [`Core::close_endpoint`], [`Core::stats`];
//! - input from the network or a timer: [`Core::handle_datagram`],
//!   [`Core::handle_timeout`];
//! - outputs, drained after every input or command, in this order:
//!   [`Core::poll_transmit`] until `None`, [`Core::poll_event`] until
//!   `None`, then [`Core::poll_timeout`] for when to call
//!   [`Core::handle_timeout`] next.
//!
//! Inside, every endpoint is one str0m [`Rtc`] in ICE-lite, RTP mode. An
//! input is given to the endpoint it belongs to; that endpoint is then
//! polled until str0m reports its next timeout, and what it emitted (RTP
//! packets, keyframe requests, new media) is applied to the other endpoints
//! of its room, which are polled in turn ("mutate, then drain").
//!
//! Where the rest is: one session's state in `endpoint`, the path of an
//! RTP packet from publisher to subscribers (simulcast layer choice,
//! payload types, renumbering) in `forward`, statistics in `stats`, and
//! in-process subscribers in [`tap`].

mod endpoint;
mod forward;
pub mod keyframe;
pub mod rewrite;
mod stats;
pub mod tap;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use confab_proto::limits::MAX_CONTENTS;
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::config::DtlsCert;
use str0m::crypto::Sha1HmacProvider;
use str0m::media::{
    Direction, KeyframeRequestKind, MediaAdded, MediaChanged, MediaKind, Mid, Rid, Rids,
};
use str0m::net::{DatagramRecv, Protocol, Receive, Transmit};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};

use crate::config::EndpointConfig;
use crate::error::SfuError;
use crate::event::{CloseReason, EndpointEvent, OutgoingTrack, PublishedTrack, RoomEvent};
use crate::ids::{EndpointId, RoomId, TrackId};
use crate::metrics::WorkerMetrics;
use endpoint::{Endpoint, EndpointCounters, OutState, OutTrack, Published, SourceKey};

/// How many times in a row one poll of an endpoint runs a timeout str0m
/// reports as already due. One round sends what was written; the bound
/// keeps a session that keeps asking from spinning the worker (the rest
/// then waits for [`Core::handle_timeout`]).
const MAX_DUE_ROUNDS: u32 = 4;

/// Refuse an offer with more m-lines than the protocol's
/// [`MAX_CONTENTS`] (a participant's own and the ones the bridge adds
/// for others' tracks), so that no peer can make the bridge allocate
/// without bound.
fn check_offer_size(offer: &SdpOffer) -> Result<(), SfuError> {
    let lines = offer
        .to_sdp_string()
        .lines()
        .filter(|l| l.starts_with("m="))
        .count();
    if lines > MAX_CONTENTS {
        return Err(SfuError::BadRemoteDescription(format!(
            "{lines} m-lines, over the limit of {MAX_CONTENTS} contents per session (MAX_CONTENTS)"
        )));
    }
    Ok(())
}

/// An output event of the core: about one endpoint, or about a room.
#[derive(Debug)]
pub enum CoreEvent {
    /// For the owner of one endpoint.
    Endpoint(EndpointId, EndpointEvent),
    /// For whoever follows rooms.
    Room(RoomEvent),
}

/// The sans-IO state of one media worker.
pub struct Core {
    config: EndpointConfig,
    /// The address peers send to (our ICE candidate). Every datagram is
    /// handed to str0m as addressed to it.
    candidate_addr: SocketAddr,
    dtls_cert: DtlsCert,
    endpoints: HashMap<EndpointId, Endpoint>,
    rooms: HashMap<RoomId, Vec<EndpointId>>,
    by_ufrag: HashMap<String, EndpointId>,
    by_addr: HashMap<SocketAddr, EndpointId>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<CoreEvent>,
    /// Endpoints that were given input and must be polled.
    dirty: Vec<EndpointId>,
    /// Earliest deadline over all endpoints (None: no endpoints).
    next_timeout: Option<Instant>,
    metrics: WorkerMetrics,
    /// In-process subscribers of rooms (the recorder): see [`tap`].
    taps: tap::Taps,
    /// HMAC-SHA1 of str0m's crypto provider, to verify ICE checks.
    hmac: &'static dyn Sha1HmacProvider,
}

/// Whether a datagram is RTP or RTCP (first byte 128-191, RFC 7983's
/// demultiplexing), as opposed to STUN or DTLS.
pub(crate) fn is_media(datagram: &[u8]) -> bool {
    datagram.first().is_some_and(|b| (128..192).contains(b))
}

impl Core {
    // ---------------------------------------------------------------
    // Construction and getters

    /// A core whose endpoints advertise `candidate_addr` (the address peers
    /// reach this worker's socket at). `dtls_cert` is shared by all
    /// endpoints of the worker: generating one per endpoint is costly and
    /// buys nothing, as the fingerprint is exchanged per session anyway.
    pub fn new(config: EndpointConfig, candidate_addr: SocketAddr, dtls_cert: DtlsCert) -> Core {
        Core {
            config,
            candidate_addr,
            dtls_cert,
            endpoints: HashMap::new(),
            rooms: HashMap::new(),
            by_ufrag: HashMap::new(),
            by_addr: HashMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            dirty: Vec::new(),
            next_timeout: None,
            metrics: WorkerMetrics::new(candidate_addr),
            taps: tap::Taps::default(),
            hmac: str0m::crypto::from_feature_flags().sha1_hmac_provider,
        }
    }

    /// The address endpoints of this core advertise.
    pub fn candidate_addr(&self) -> SocketAddr {
        self.candidate_addr
    }

    /// Number of endpoints on this core.
    pub fn endpoint_count(&self) -> usize {
        self.endpoints.len()
    }

    /// Number of rooms on this core.
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// Endpoints in `room`, in join order.
    pub fn room_endpoints(&self, room: &RoomId) -> Vec<EndpointId> {
        self.rooms.get(room).cloned().unwrap_or_default()
    }

    // ---------------------------------------------------------------
    // Commands

    /// Create an endpoint in `room` (created if new) from the peer's SDP
    /// offer; returns the answer (ICE-lite, with this worker's candidate).
    ///
    /// `label` names the participant in statistics (signaling passes the
    /// nick). Tracks already published in the room are offered to the new
    /// endpoint right after, as an [`EndpointEvent::Offer`].
    pub fn create_endpoint(
        &mut self,
        now: Instant,
        id: EndpointId,
        room: RoomId,
        label: String,
        offer: SdpOffer,
    ) -> Result<SdpAnswer, SfuError> {
        check_offer_size(&offer)?;
        let mut rtc = Rtc::builder()
            .set_ice_lite(true)
            .set_rtp_mode(true)
            .set_dtls_cert(self.dtls_cert.clone())
            .clear_codecs()
            // RED is left out: a subscriber that did not negotiate it could
            // not decode a RED publisher's audio, and the bridge does not
            // transcode.
            .enable_opus(true, false)
            .enable_vp8(true)
            .enable_h264(true)
            .set_stats_interval(Some(std::time::Duration::from_secs(1)))
            .build(now);

        let candidate = Candidate::host(self.candidate_addr, "udp")
            .map_err(|e| SfuError::BadRemoteDescription(format!("local candidate: {e}")))?;
        rtc.add_local_candidate(candidate);

        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| SfuError::BadRemoteDescription(e.to_string()))?;

        let creds = rtc.direct_api().local_ice_credentials();
        let ufrag = creds.ufrag;
        let mut ep = Endpoint {
            id,
            room: room.clone(),
            label,
            rtc,
            ufrag: ufrag.clone(),
            ice_pwd: creds.pass,
            addrs: Vec::new(),
            created: now,
            connected: false,
            last_consent: now,
            rtc_timeout: now,
            published: HashMap::new(),
            rx_ssrcs: HashMap::new(),
            rx_params: Vec::new(),
            out_tracks: HashMap::new(),
            out_by_mid: HashMap::new(),
            pending: None,
            negotiation_needed: false,
            stats: EndpointCounters::default(),
        };

        // Subscribe the newcomer to everything already published.
        let members = self.rooms.entry(room).or_default();
        for other in members.iter() {
            let Some(pubr) = self.endpoints.get_mut(other) else {
                continue;
            };
            for (mid, track) in pubr.published.iter_mut() {
                track.subscribers.push(id);
                ep.out_tracks
                    .insert((*other, *mid), new_out_track(*other, track));
                ep.negotiation_needed = true;
            }
        }
        members.push(id);

        self.by_ufrag.insert(ufrag, id);
        self.endpoints.insert(id, ep);
        self.metrics.endpoints.increment(1.0);
        self.metrics.set_rooms(self.rooms.len());
        self.dirty.push(id);
        self.drive(now);
        Ok(answer)
    }

    /// Apply the peer's answer to the last [`EndpointEvent::Offer`].
    pub fn accept_answer(
        &mut self,
        now: Instant,
        id: EndpointId,
        answer: SdpAnswer,
    ) -> Result<(), SfuError> {
        let ep = self
            .endpoints
            .get_mut(&id)
            .ok_or(SfuError::UnknownEndpoint(id))?;
        let pending = ep.pending.take().ok_or(SfuError::NoPendingOffer(id))?;
        if let Err(e) = ep.rtc.sdp_api().accept_answer(pending, answer) {
            // The peer cannot take the offer; the tracks stay where they
            // were and are offered again with the next change.
            roll_back_offer(ep);
            return Err(SfuError::BadRemoteDescription(e.to_string()));
        }

        let mut opened = Vec::new();
        let mut stopped = Vec::new();
        for (key, out) in ep.out_tracks.iter_mut() {
            match out.state {
                OutState::Negotiating(mid) => {
                    out.ssrc = ep
                        .rtc
                        .direct_api()
                        .stream_tx_by_mid(mid, None)
                        .map(|s| s.ssrc());
                    if out.withdrawn {
                        out.state = OutState::ToStop(mid);
                        ep.negotiation_needed = true;
                    } else {
                        out.state = OutState::Open(mid);
                        if out.kind == MediaKind::Video {
                            opened.push(*key);
                        }
                    }
                }
                OutState::Stopping(mid) => stopped.push((*key, mid)),
                _ => {}
            }
        }
        for (key, mid) in stopped {
            ep.out_tracks.remove(&key);
            ep.out_by_mid.remove(&mid);
        }
        self.dirty.push(id);
        // A new subscriber sees video at once: ask its publishers for a
        // keyframe (docs/PROTOCOL.md §5).
        for (publisher, mid) in opened {
            self.request_keyframe(now, publisher, mid, None, KeyframeRequestKind::Pli);
        }
        self.drive(now);
        Ok(())
    }

    /// Apply a later offer from the participant (it started or stopped
    /// publishing a track, e.g. a screen share) and return the answer.
    ///
    /// A participant's offer wins over an outstanding offer of the bridge
    /// (str0m discards that one): what it carried is offered again after.
    pub fn accept_offer(
        &mut self,
        now: Instant,
        id: EndpointId,
        offer: SdpOffer,
    ) -> Result<SdpAnswer, SfuError> {
        check_offer_size(&offer)?;
        let ep = self
            .endpoints
            .get_mut(&id)
            .ok_or(SfuError::UnknownEndpoint(id))?;
        if ep.pending.take().is_some() {
            roll_back_offer(ep);
            ep.negotiation_needed = true;
        }
        let answer = ep
            .rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| SfuError::BadRemoteDescription(e.to_string()))?;
        self.dirty.push(id);
        self.drive(now);
        Ok(answer)
    }

    /// Close an endpoint at its owner's request (the participant left).
    pub fn close_endpoint(&mut self, now: Instant, id: EndpointId) -> Result<(), SfuError> {
        if !self.endpoints.contains_key(&id) {
            return Err(SfuError::UnknownEndpoint(id));
        }
        self.close(id, CloseReason::Requested);
        self.drive(now);
        Ok(())
    }

    /// Tracks currently published in `room`.
    pub fn room_tracks(&self, room: &RoomId) -> Vec<PublishedTrack> {
        let mut out = Vec::new();
        for id in self.room_endpoints(room) {
            if let Some(ep) = self.endpoints.get(&id) {
                for (mid, p) in &ep.published {
                    out.push(published_track(id, *mid, p));
                }
            }
        }
        out
    }

    // ---------------------------------------------------------------
    // Input

    /// A datagram from `source` is read from the worker's socket at `now`;
    /// it reached the host at `received` (the kernel's receive timestamp,
    /// or `now` when there is none). Media is handed to str0m with
    /// `received`, so the transport-wide feedback the sender's bandwidth
    /// estimate runs on says when packets really arrived: a worker that
    /// reads a burst late, after its thread was not scheduled for a moment,
    /// must not look like a congested network to every sender.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        received: Instant,
        source: SocketAddr,
        buf: &[u8],
    ) {
        self.metrics.packets_in.increment(1);
        self.metrics.bytes_in.increment(buf.len() as u64);

        let Ok(contents) = DatagramRecv::try_from(buf) else {
            self.metrics.dropped.increment(1);
            return;
        };

        // Demultiplex: a STUN binding request names its endpoint by our
        // ufrag (the first half of USERNAME); anything else by the source
        // address a valid check came from.
        let mut check = None;
        let id = if buf.first().is_some_and(|b| *b < 2) {
            match str0m::ice::StunMessage::parse(buf) {
                Ok(msg) if msg.is_binding_request() => {
                    let id = msg
                        .split_username()
                        .and_then(|(local, _)| self.by_ufrag.get(local).copied());
                    check = Some(msg);
                    id
                }
                _ => self.by_addr.get(&source).copied(),
            }
        } else {
            self.by_addr.get(&source).copied()
        };
        let Some(id) = id else {
            self.metrics.dropped.increment(1);
            return;
        };
        let Some(ep) = self.endpoints.get_mut(&id) else {
            self.metrics.dropped.increment(1);
            return;
        };
        // A check counts as consent, and its source as the peer's address,
        // only if it was made with our ICE password. The ufrag travels in
        // clear; without this, anyone who saw one check could keep a
        // departed peer's session alive, or have its media sent to them.
        // (str0m verifies too, but silently ignores a check that fails.)
        let hmac = self.hmac;
        let consent = check.as_ref().is_some_and(|msg| {
            msg.verify(ep.ice_pwd.as_bytes(), |key, parts| {
                hmac.sha1_hmac(key, parts)
            })
        });
        if check.is_some() && !consent {
            self.metrics.dropped.increment(1);
            return;
        }

        // STUN and DTLS run on the same clock as the timers.
        let input = Input::Receive(
            if is_media(buf) {
                received.min(now)
            } else {
                now
            },
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.candidate_addr,
                contents,
            },
        );
        if !ep.rtc.accepts(&input) {
            self.metrics.dropped.increment(1);
            return;
        }
        if let Err(e) = ep.rtc.handle_input(input) {
            tracing::debug!(endpoint = %id, error = %e, "input rejected, closing");
            self.close(id, CloseReason::Failed(e.to_string()));
            self.drive(now);
            return;
        }
        if consent {
            // A verified check: the peer is there, at this address.
            ep.last_consent = now;
            if let Some(evicted) = ep.remember_addr(source) {
                self.by_addr.remove(&evicted);
            }
            self.by_addr.insert(source, id);
        }
        self.dirty.push(id);
        self.drive(now);
    }

    /// Time has advanced to `now`: run the timers that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        let consent = self.config.consent_timeout;
        let connect = self.config.connect_timeout;
        let mut expired = Vec::new();
        for (id, ep) in self.endpoints.iter_mut() {
            if ep.connected && now >= ep.last_consent + consent {
                expired.push((*id, CloseReason::ConsentExpired));
                continue;
            }
            if !ep.connected && now >= ep.created + connect {
                expired.push((*id, CloseReason::ConnectTimeout));
                continue;
            }
            if now >= ep.rtc_timeout {
                if let Err(e) = ep.rtc.handle_input(Input::Timeout(now)) {
                    expired.push((*id, CloseReason::Failed(e.to_string())));
                    continue;
                }
                self.dirty.push(*id);
            }
        }
        for (id, reason) in expired {
            tracing::info!(endpoint = %id, ?reason, "endpoint timed out");
            self.close(id, reason);
        }
        self.drive(now);
        self.recompute_timeout();
    }

    // ---------------------------------------------------------------
    // Output

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let t = self.transmits.pop_front()?;
        self.metrics.packets_out.increment(1);
        self.metrics.bytes_out.increment(t.contents.len() as u64);
        Some(t)
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<CoreEvent> {
        self.events.pop_front()
    }

    /// When [`Core::handle_timeout`] must be called next (None: nothing to
    /// wait for).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_timeout
    }

    // ---------------------------------------------------------------
    // Internals

    fn recompute_timeout(&mut self) {
        let (consent, connect) = (self.config.consent_timeout, self.config.connect_timeout);
        self.next_timeout = self
            .endpoints
            .values()
            .map(|ep| ep.deadline(consent, connect))
            .min();
    }

    /// Poll every dirty endpoint until str0m wants nothing but a timeout;
    /// what one emits may dirty others, so repeat until quiet.
    fn drive(&mut self, now: Instant) {
        while let Some(id) = self.dirty.pop() {
            self.poll_endpoint(now, id);
        }
    }

    /// Drain one endpoint ("mutate, then drain"). A timeout str0m reports
    /// as already due is run here and now: that is how media written into
    /// a session (forwarded packets) becomes datagrams, so it must not wait
    /// for the driver's timer, which a busy socket can hold off.
    fn poll_endpoint(&mut self, now: Instant, id: EndpointId) {
        let mut due_rounds = 0;
        loop {
            let Some(ep) = self.endpoints.get_mut(&id) else {
                return;
            };
            if ep.negotiation_needed && ep.pending.is_none() {
                negotiate(ep, &mut self.events);
            }
            if !ep.rtc.is_alive() {
                self.close(id, CloseReason::Failed("session ended".into()));
                return;
            }
            let output = match ep.rtc.poll_output() {
                Ok(o) => o,
                Err(e) => {
                    self.close(id, CloseReason::Failed(e.to_string()));
                    return;
                }
            };
            match output {
                Output::Timeout(t) if t <= now && due_rounds < MAX_DUE_ROUNDS => {
                    due_rounds += 1;
                    if let Err(e) = ep.rtc.handle_input(Input::Timeout(now)) {
                        self.close(id, CloseReason::Failed(e.to_string()));
                        return;
                    }
                }
                Output::Timeout(t) => {
                    ep.rtc_timeout = t;
                    let d = ep.deadline(self.config.consent_timeout, self.config.connect_timeout);
                    self.next_timeout = Some(self.next_timeout.map_or(d, |n| n.min(d)));
                    return;
                }
                Output::Transmit(t) => self.transmits.push_back(t),
                Output::Event(e) => self.handle_event(now, id, e),
            }
        }
    }

    fn handle_event(&mut self, now: Instant, id: EndpointId, event: Event) {
        match event {
            Event::RtpPacket(pkt) => self.forward(now, id, pkt),
            Event::KeyframeRequest(req) => {
                let Some(ep) = self.endpoints.get(&id) else {
                    return;
                };
                let Some((publisher, mid)) = ep.out_by_mid.get(&req.mid).copied() else {
                    return;
                };
                let layer = ep
                    .out_tracks
                    .get(&(publisher, mid))
                    .and_then(|o| o.layers.current());
                self.request_keyframe(now, publisher, mid, layer, req.kind);
            }
            Event::MediaAdded(added) => self.media_added(id, added),
            Event::MediaChanged(changed) => self.media_changed(id, changed),
            Event::Connected => {
                if let Some(ep) = self.endpoints.get_mut(&id) {
                    ep.connected = true;
                    ep.last_consent = now;
                }
                self.events
                    .push_back(CoreEvent::Endpoint(id, EndpointEvent::Connected));
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                self.close(id, CloseReason::IceDisconnected);
            }
            Event::PeerStats(s) => self.peer_stats(id, s),
            Event::MediaIngressStats(s) => self.ingress_stats(id, s),
            Event::MediaEgressStats(s) => self.egress_stats(id, s),
            _ => {}
        }
    }

    /// The peer's offer (or a later one) added an m-line. One it sends on
    /// becomes a published track, offered to everyone else in the room.
    fn media_added(&mut self, id: EndpointId, added: MediaAdded) {
        if !matches!(added.direction, Direction::RecvOnly | Direction::SendRecv) {
            return;
        }
        let Some(ep) = self.endpoints.get_mut(&id) else {
            return;
        };
        let rids: Vec<Rid> = added
            .simulcast
            .as_ref()
            .map(|s| s.recv.iter().map(|l| l.rid).collect())
            .unwrap_or_default();
        let layers = rids.len().max(1);
        let track_label = ep
            .rtc
            .media(added.mid)
            .map(|m| m.track_id().to_string())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| format!("{}-{}", id, added.mid));
        let mut published = Published {
            kind: added.kind,
            rids,
            layer_seen: vec![None; layers],
            subscribers: Vec::new(),
            last_keyframe_request: vec![None; layers],
            track_label,
            codec: None,
        };
        let room = ep.room.clone();
        let members = self.rooms.get(&room).cloned().unwrap_or_default();
        for other in members {
            if other == id {
                continue;
            }
            let Some(sub) = self.endpoints.get_mut(&other) else {
                continue;
            };
            sub.out_tracks
                .insert((id, added.mid), new_out_track(id, &published));
            sub.negotiation_needed = true;
            published.subscribers.push(other);
            self.dirty.push(other);
        }
        let info = published_track(id, added.mid, &published);
        if let Some(ep) = self.endpoints.get_mut(&id) {
            ep.published.insert(added.mid, published);
        }
        self.events
            .push_back(CoreEvent::Room(RoomEvent::TrackPublished {
                room,
                track: info,
            }));
    }

    /// A renegotiation changed an m-line's direction: the participant
    /// started or stopped sending on it.
    fn media_changed(&mut self, id: EndpointId, changed: MediaChanged) {
        let Some(ep) = self.endpoints.get_mut(&id) else {
            return;
        };
        let receiving = changed.direction.is_receiving();
        let published = ep.published.contains_key(&changed.mid);
        if receiving && !published {
            let Some(media) = ep.rtc.media(changed.mid) else {
                return;
            };
            let simulcast = match media.rids_rx() {
                Rids::Specific(rids) if !rids.is_empty() => {
                    let mut s = str0m::media::Simulcast::new();
                    for r in rids {
                        s.add_recv_layer(str0m::media::SimulcastLayer {
                            rid: *r,
                            attributes: None,
                        });
                    }
                    Some(s)
                }
                _ => None,
            };
            let added = MediaAdded {
                mid: changed.mid,
                kind: media.kind(),
                direction: changed.direction,
                simulcast,
            };
            self.media_added(id, added);
        } else if !receiving && published {
            self.unpublish(id, changed.mid);
        }
    }

    /// `publisher` no longer sends on `mid`: withdraw it from everyone.
    fn unpublish(&mut self, publisher: EndpointId, mid: Mid) {
        let Some(ep) = self.endpoints.get_mut(&publisher) else {
            return;
        };
        let Some(track) = ep.published.remove(&mid) else {
            return;
        };
        let room = ep.room.clone();
        self.taps.withdrawn(
            &room,
            TrackId {
                publisher,
                mid: mid.to_string(),
            },
        );
        for sub_id in &track.subscribers {
            if let Some(sub) = self.endpoints.get_mut(sub_id) {
                withdraw(sub, (publisher, mid));
                self.dirty.push(*sub_id);
            }
        }
        self.events
            .push_back(CoreEvent::Room(RoomEvent::TrackWithdrawn {
                room,
                track: TrackId {
                    publisher,
                    mid: mid.to_string(),
                },
            }));
    }

    /// Ask `publisher` for a keyframe on `mid` (layer `layer`, or the
    /// single stream), at most once per keyframe request interval.
    fn request_keyframe(
        &mut self,
        now: Instant,
        publisher: EndpointId,
        mid: Mid,
        layer: Option<usize>,
        kind: KeyframeRequestKind,
    ) {
        let interval = self.config.keyframe_request_interval;
        let Some(ep) = self.endpoints.get_mut(&publisher) else {
            return;
        };
        let Some(track) = ep.published.get_mut(&mid) else {
            return;
        };
        let index = layer.unwrap_or_else(|| track.best_layer(now));
        let rid = track.rid_at(index);
        let Some(last) = track.last_keyframe_request.get_mut(index) else {
            return;
        };
        if last.is_some_and(|t| now.saturating_duration_since(t) < interval) {
            return;
        }
        *last = Some(now);
        let mut api = ep.rtc.direct_api();
        let Some(rx) = api.stream_rx_by_mid(mid, rid) else {
            return;
        };
        rx.request_keyframe(kind);
        self.metrics.keyframe_requests.increment(1);
        self.dirty.push(publisher);
    }

    /// Remove an endpoint: withdraw what it published, stop what it
    /// received, forget how to reach it.
    fn close(&mut self, id: EndpointId, reason: CloseReason) {
        // What it published: withdraw from every subscriber.
        let published: Vec<Mid> = match self.endpoints.get(&id) {
            Some(ep) => {
                let mut mids: Vec<Mid> = ep.published.keys().copied().collect();
                mids.sort();
                mids
            }
            None => return,
        };
        for mid in published {
            self.unpublish(id, mid);
        }
        let Some(mut ep) = self.endpoints.remove(&id) else {
            return;
        };
        ep.rtc.disconnect();
        self.by_ufrag.remove(&ep.ufrag);
        for addr in &ep.addrs {
            if self.by_addr.get(addr) == Some(&id) {
                self.by_addr.remove(addr);
            }
        }
        // What it received: leave the publishers' subscriber lists.
        for (publisher, mid) in ep.out_tracks.keys() {
            if let Some(p) = self.endpoints.get_mut(publisher) {
                if let Some(t) = p.published.get_mut(mid) {
                    t.subscribers.retain(|s| *s != id);
                }
            }
        }
        if let Some(members) = self.rooms.get_mut(&ep.room) {
            members.retain(|m| *m != id);
            if members.is_empty() {
                self.rooms.remove(&ep.room);
            }
        }
        self.metrics.endpoints.decrement(1.0);
        self.metrics.set_rooms(self.rooms.len());
        self.events.push_back(CoreEvent::Endpoint(
            id,
            EndpointEvent::Closed(reason.clone()),
        ));
        self.events
            .push_back(CoreEvent::Room(RoomEvent::EndpointClosed {
                room: ep.room,
                endpoint: id,
                reason,
            }));
    }
}

fn new_out_track(publisher: EndpointId, track: &Published) -> OutTrack {
    OutTrack {
        kind: track.kind,
        state: OutState::ToOpen,
        withdrawn: false,
        // One msid stream per publisher, so a client groups its tracks.
        stream_id: format!("{publisher}"),
        track_id: track.track_label.clone(),
        ssrc: None,
        layers: Default::default(),
        rewriter: Default::default(),
        pt_map: Default::default(),
        last_forwarded: None,
    }
}

fn published_track(publisher: EndpointId, mid: Mid, p: &Published) -> PublishedTrack {
    PublishedTrack {
        id: TrackId {
            publisher,
            mid: mid.to_string(),
        },
        kind: p.kind,
        rids: p.rids.iter().map(|r| r.to_string()).collect(),
    }
}

/// The source of `key` went away: stop forwarding it to `sub`.
fn withdraw(sub: &mut Endpoint, key: SourceKey) {
    let Some(out) = sub.out_tracks.get_mut(&key) else {
        return;
    };
    match out.state {
        OutState::ToOpen => {
            sub.out_tracks.remove(&key);
        }
        OutState::Negotiating(_) => out.withdrawn = true,
        OutState::Open(mid) => {
            out.state = OutState::ToStop(mid);
            sub.negotiation_needed = true;
        }
        OutState::ToStop(_) | OutState::Stopping(_) => {}
    }
}

/// The bridge's outstanding offer to `ep` is gone (rejected, or superseded
/// by the peer's own offer): its changes go back to waiting, and the mids
/// it named, which never came to exist, are forgotten.
fn roll_back_offer(ep: &mut Endpoint) {
    for out in ep.out_tracks.values_mut() {
        match out.state {
            OutState::Negotiating(mid) => {
                ep.out_by_mid.remove(&mid);
                out.state = OutState::ToOpen;
            }
            OutState::Stopping(mid) => out.state = OutState::ToStop(mid),
            _ => {}
        }
    }
}

/// Turn pending changes of `ep`'s forwarded tracks into one offer.
fn negotiate(ep: &mut Endpoint, events: &mut VecDeque<CoreEvent>) {
    ep.negotiation_needed = false;
    let mut change = ep.rtc.sdp_api();
    let mut added = Vec::new();
    let mut removed = Vec::new();
    let mut keys: Vec<SourceKey> = ep.out_tracks.keys().copied().collect();
    // Deterministic order: by publisher, then mid.
    keys.sort();
    for key in keys {
        let Some(out) = ep.out_tracks.get_mut(&key) else {
            continue;
        };
        match out.state {
            OutState::ToOpen => {
                let mid = change.add_media(
                    out.kind,
                    Direction::SendOnly,
                    Some(out.stream_id.clone()),
                    Some(out.track_id.clone()),
                    None,
                );
                out.state = OutState::Negotiating(mid);
                ep.out_by_mid.insert(mid, key);
                added.push(OutgoingTrack {
                    mid: mid.to_string(),
                    source: TrackId {
                        publisher: key.0,
                        mid: key.1.to_string(),
                    },
                    kind: out.kind,
                    stream_id: out.stream_id.clone(),
                    track_id: out.track_id.clone(),
                });
            }
            OutState::ToStop(mid) => {
                change.stop_media(mid);
                out.state = OutState::Stopping(mid);
                removed.push(mid.to_string());
            }
            _ => {}
        }
    }
    if let Some((offer, pending)) = change.apply() {
        ep.pending = Some(pending);
        events.push_back(CoreEvent::Endpoint(
            ep.id,
            EndpointEvent::Offer {
                offer,
                added,
                removed,
            },
        ));
    }
}
