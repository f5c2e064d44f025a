//! The focus: turns a room occupant's Jingle call (docs/PROTOCOL.md §2-§7) into
//! an `sfu` endpoint, sans-IO.
//!
//! - `session-initiate` -> IQ result, then [`MediaCommand::Create`]; the
//!   media plane's SDP answer becomes `session-accept`.
//! - The media plane's renegotiation offers ([`EndpointEvent::Offer`])
//!   become `content-remove` and/or `content-add`, one outstanding per
//!   session; the participant's IQ result / `content-accept` are folded
//!   into an SDP answer for the media plane ([`MediaCommand::Answer`]).
//!   The media plane itself keeps one offer outstanding per endpoint and
//!   batches what happens meanwhile, which gives docs/PROTOCOL.md §4's "one
//!   change at a time".
//! - `transport-info` is acknowledged (the bridge is ICE-lite);
//!   `session-terminate`, leaving the room or losing the stream close the
//!   endpoint; the media plane closing an endpoint sends
//!   `session-terminate`.
//! - XEP-0353 `propose` is answered with `proceed`.
//! - Every Jingle error of §7 is answered here.
//!
//! The focus works on [`Session`]s from [`confab_proto::jingle_sdp`]; it keeps
//! for each call the participant's side of every m-line so that it can
//! write the full SDP answer the media plane needs from Jingle's partial
//! `content-accept`. Not here: stanza routing, room membership (the caller
//! checks the sender is an occupant), sockets.

use std::collections::{HashMap, VecDeque};

use minidom::Element;
use sfu::{CloseReason, EndpointEvent, EndpointId, OutgoingTrack, SdpAnswer, SdpOffer};
use xmpp_parsers::jid::{BareJid, FullJid, Jid};
use xmpp_parsers::jingle::Action;

use crate::stanza::*;
use confab_proto::jingle_sdp::{
    jingle_to_session, jingle_transports, sdp_to_session, session_to_jingle, session_to_sdp,
    Content, JingleHeader, MappingError, Role, Senders, Session, Setup, Transport,
};

/// A call: one participant's Jingle session with one room.
pub type CallId = u64;

/// What the focus asks of the media plane.
#[derive(Debug)]
pub enum MediaCommand {
    /// Create an endpoint from the participant's offer; answer with
    /// [`Focus::media_created`].
    Create {
        /// The call.
        call: CallId,
        /// The room (its bare JID).
        room: String,
        /// A label for logs and stats (the nick).
        label: String,
        /// The participant's offer.
        offer: SdpOffer,
    },
    /// Apply the participant's answer to the endpoint's outstanding offer;
    /// report a failure with [`Focus::media_failed`].
    Answer {
        /// The endpoint.
        endpoint: EndpointId,
        /// The answer.
        answer: SdpAnswer,
    },
    /// Close the endpoint.
    Close {
        /// The endpoint.
        endpoint: EndpointId,
    },
}

/// What the focus wants done.
#[derive(Debug)]
pub enum FocusOutput {
    /// Deliver this stanza (to a local full JID).
    Send(Element),
    /// Ask the media plane.
    Media(MediaCommand),
}

/// Where a call is. Each phase carries what exists in it: the endpoint
/// only once the media plane has made it, and with it the bridge's change
/// in flight and the media plane's offers waiting their turn, so that a
/// change without an endpoint cannot be written down.
#[derive(Debug)]
enum CallState {
    /// Waiting for the media plane to create the endpoint.
    Creating,
    /// The endpoint exists; session-accept sent.
    Active {
        /// The call's endpoint on the media plane.
        endpoint: EndpointId,
        /// The bridge's change in flight: one per session (docs/PROTOCOL.md §4).
        pending: Option<Pending>,
        /// Offers from the media plane not yet turned into Jingle.
        queued: VecDeque<QueuedOffer>,
    },
}

/// A media-plane offer waiting its turn: the offer, the tracks it adds
/// and the mids it stops.
type QueuedOffer = (SdpOffer, Vec<OutgoingTrack>, Vec<String>);

/// A bridge change in flight.
#[derive(Debug)]
enum Pending {
    /// content-remove sent (IQ id); then maybe a content-add.
    Remove {
        iq: String,
        offer: Session,
        removed: Vec<String>,
        added: Vec<OutgoingTrack>,
    },
    /// content-add sent (IQ id); waiting for content-accept.
    Add {
        iq: String,
        offer: Session,
        added: Vec<String>,
    },
}

#[derive(Debug)]
struct Call {
    room: BareJid,
    nick: String,
    participant: FullJid,
    sid: String,
    state: CallState,
    /// The participant's offer (session-initiate).
    offer: Session,
    /// The participant's side of every m-line it has answered, by name.
    answer_view: HashMap<String, Content>,
    /// The participant's transport (ICE credentials and fingerprint).
    transport: Transport,
    /// Content names ever announced (names are never reused).
    announced: Vec<String>,
    sdp_version: u64,
}

impl Call {
    /// The call's endpoint, once the media plane has made it.
    fn endpoint(&self) -> Option<EndpointId> {
        match self.state {
            CallState::Creating => None,
            CallState::Active { endpoint, .. } => Some(endpoint),
        }
    }
}

/// Bounds.
#[derive(Debug, Clone, Copy)]
pub struct FocusLimits {
    /// Media plane offers queued per call before the call is ended.
    pub max_queued_offers: usize,
}

impl Default for FocusLimits {
    fn default() -> Self {
        FocusLimits {
            max_queued_offers: 64,
        }
    }
}

/// The focus of every room.
pub struct Focus {
    limits: FocusLimits,
    calls: HashMap<CallId, Call>,
    by_participant: HashMap<(BareJid, FullJid), CallId>,
    by_endpoint: HashMap<EndpointId, CallId>,
    next_call: CallId,
    next_iq: u64,
    out: VecDeque<FocusOutput>,
}

fn jingle_error(
    condition: &'static str,
    kind: ErrorType,
    app: Option<&'static str>,
) -> StanzaError {
    let e = StanzaError::new(kind, condition);
    match app {
        Some(a) => e.with_app(NS_JINGLE_ERRORS, a),
        None => e,
    }
}

fn unknown_session() -> StanzaError {
    jingle_error("item-not-found", ErrorType::Cancel, Some("unknown-session"))
}

fn out_of_order() -> StanzaError {
    jingle_error("unexpected-request", ErrorType::Wait, Some("out-of-order"))
}

fn mapping_error(e: &MappingError) -> StanzaError {
    match e {
        MappingError::InvalidValue("jingle action") => jingle_error(
            "feature-not-implemented",
            ErrorType::Cancel,
            Some("unsupported-info"),
        ),
        other => StanzaError::bad_request(other.to_string()),
    }
}

impl Default for Focus {
    fn default() -> Self {
        Focus::new(FocusLimits::default())
    }
}

impl Focus {
    /// An idle focus.
    pub fn new(limits: FocusLimits) -> Focus {
        Focus {
            limits,
            calls: HashMap::new(),
            by_participant: HashMap::new(),
            by_endpoint: HashMap::new(),
            next_call: 1,
            next_iq: 1,
            out: VecDeque::new(),
        }
    }

    /// What to do next.
    pub fn poll_output(&mut self) -> Option<FocusOutput> {
        self.out.pop_front()
    }

    /// Number of live calls.
    pub fn calls(&self) -> usize {
        self.calls.len()
    }

    /// The endpoint of `participant`'s call in `room`, once created.
    pub fn endpoint_of(&self, room: &BareJid, participant: &FullJid) -> Option<EndpointId> {
        let id = self
            .by_participant
            .get(&(room.clone(), participant.clone()))?;
        self.calls.get(id)?.endpoint()
    }

    /// The occupant JID (`room/nick`) whose call owns `endpoint`, for the
    /// owner extension on forwarded sources.
    fn owner_of(&self, endpoint: EndpointId) -> Option<String> {
        let call = self.calls.get(self.by_endpoint.get(&endpoint)?)?;
        Some(format!("{}/{}", call.room, call.nick))
    }

    fn send(&mut self, el: Element) {
        self.out.push_back(FocusOutput::Send(el));
    }

    fn iq_id(&mut self) -> String {
        self.next_iq += 1;
        format!("focus-{}", self.next_iq)
    }

    /// A Jingle IQ (`<iq type='set'><jingle/></iq>`) from `from`, an
    /// occupant of `room` under `nick`.
    pub fn jingle(&mut self, room: &BareJid, nick: &str, from: &FullJid, iq: &Element) {
        let room_str = room.to_string();
        let Some(jingle) = iq_payload(iq).filter(|p| p.is("jingle", NS_JINGLE)) else {
            self.send(error_reply(
                iq,
                &room_str,
                &StanzaError::bad_request("expected one <jingle/>"),
            ));
            return;
        };
        let header = match JingleHeader::from_element(jingle) {
            Ok(h) => h,
            Err(e) => return self.send(error_reply(iq, &room_str, &mapping_error(&e))),
        };
        let key = (room.clone(), from.clone());
        let call_id = self.by_participant.get(&key).copied();
        let call_matches = call_id
            .and_then(|id| self.calls.get(&id))
            .is_some_and(|c| c.sid == header.sid);
        match header.action {
            Action::SessionInitiate => {
                if call_id.is_some() {
                    return self.send(error_reply(iq, &room_str, &out_of_order()));
                }
                self.session_initiate(room, nick, from, iq, jingle, header);
            }
            _ if !call_matches => self.send(error_reply(iq, &room_str, &unknown_session())),
            Action::TransportInfo => match jingle_transports(jingle) {
                Ok(_) => self.send(iq_result(iq, &room_str)),
                Err(e) => self.send(error_reply(iq, &room_str, &mapping_error(&e))),
            },
            Action::ContentAccept => {
                let Some(id) = call_id else { return };
                self.content_accept(id, iq, jingle);
            }
            Action::SessionTerminate => {
                self.send(iq_result(iq, &room_str));
                if let Some(id) = call_id {
                    self.end_call(id, None);
                }
            }
            Action::SessionInfo => {
                // XEP-0166 §7.2.11: an empty session-info is a ping.
                if jingle.children().next().is_none() {
                    self.send(iq_result(iq, &room_str));
                } else {
                    let e = jingle_error(
                        "feature-not-implemented",
                        ErrorType::Modify,
                        Some("unsupported-info"),
                    );
                    self.send(error_reply(iq, &room_str, &e));
                }
            }
            // session-accept, content-add, ... from the participant: the
            // participant is always the initiator and never answers itself.
            Action::SessionAccept
            | Action::ContentAdd
            | Action::ContentRemove
            | Action::ContentModify => self.send(error_reply(iq, &room_str, &out_of_order())),
            _ => {
                let e = jingle_error(
                    "feature-not-implemented",
                    ErrorType::Cancel,
                    Some("unsupported-info"),
                );
                self.send(error_reply(iq, &room_str, &e));
            }
        }
    }

    fn session_initiate(
        &mut self,
        room: &BareJid,
        nick: &str,
        from: &FullJid,
        iq: &Element,
        jingle: &Element,
        header: JingleHeader,
    ) {
        let room_str = room.to_string();
        let mut session = match jingle_to_session(jingle) {
            Ok(s) => s,
            Err(e) => return self.send(error_reply(iq, &room_str, &mapping_error(&e))),
        };
        if session.contents.is_empty() {
            return self.send(error_reply(
                iq,
                &room_str,
                &StanzaError::bad_request("no contents"),
            ));
        }
        if session.bundle.is_empty() {
            session.bundle = session.contents.iter().map(|c| c.name.clone()).collect();
        }
        let Some(transport) = session.contents.first().map(|c| c.transport.clone()) else {
            return;
        };
        if transport.ufrag.is_none() || transport.pwd.is_none() || transport.fingerprint.is_none() {
            return self.send(error_reply(
                iq,
                &room_str,
                &StanzaError::bad_request("the transport needs ufrag, pwd and a DTLS fingerprint"),
            ));
        }
        let sdp = match session_to_sdp(&session, Role::Initiator, 1) {
            Ok(s) => s,
            Err(e) => return self.send(error_reply(iq, &room_str, &mapping_error(&e))),
        };
        let offer = match SdpOffer::from_sdp_string(&sdp) {
            Ok(o) => o,
            Err(e) => {
                return self.send(error_reply(
                    iq,
                    &room_str,
                    &StanzaError::bad_request(format!("offer: {e}")),
                ))
            }
        };
        self.send(iq_result(iq, &room_str));
        let id = self.next_call;
        self.next_call += 1;
        tracing::info!(call = id, %room, nick, sid = %header.sid, "session-initiate");
        let announced = session.contents.iter().map(|c| c.name.clone()).collect();
        self.calls.insert(
            id,
            Call {
                room: room.clone(),
                nick: nick.to_string(),
                participant: from.clone(),
                sid: header.sid.clone(),
                state: CallState::Creating,
                offer: session,
                answer_view: HashMap::new(),
                transport,
                announced,
                sdp_version: 1,
            },
        );
        self.by_participant.insert((room.clone(), from.clone()), id);
        self.out.push_back(FocusOutput::Media(MediaCommand::Create {
            call: id,
            room: room_str,
            label: nick.to_string(),
            offer,
        }));
    }

    /// The media plane created the call's endpoint (or refused the offer).
    pub fn media_created(&mut self, call: CallId, result: Result<(EndpointId, SdpAnswer), String>) {
        let Some(c) = self.calls.get_mut(&call) else {
            // The participant left while the endpoint was being made.
            if let Ok((endpoint, _)) = result {
                self.out
                    .push_back(FocusOutput::Media(MediaCommand::Close { endpoint }));
            }
            return;
        };
        let (endpoint, answer) = match result {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(call, error = %e, "the media plane refused the offer");
                self.end_call(call, Some(("failed-application", e)));
                return;
            }
        };
        if !matches!(c.state, CallState::Creating) {
            // The media plane makes one endpoint per Create: a second one
            // is not the call's.
            tracing::warn!(call, %endpoint, "a second endpoint for one call; closing it");
            self.out
                .push_back(FocusOutput::Media(MediaCommand::Close { endpoint }));
            return;
        }
        c.state = CallState::Active {
            endpoint,
            pending: None,
            queued: VecDeque::new(),
        };
        self.by_endpoint.insert(endpoint, call);
        let accept = match sdp_to_session(&answer.to_sdp_string(), Role::Responder) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(call, error = %e, "cannot map the media plane's answer");
                self.end_call(call, Some(("failed-application", e.to_string())));
                return;
            }
        };
        // Remember the participant's side of its own m-lines, as answered.
        for offered in &c.offer.contents {
            if let Some(acc) = accept.contents.iter().find(|a| a.name == offered.name) {
                let mut mine = offered.clone();
                mine.senders = acc.senders;
                mine.codecs
                    .retain(|pt| acc.codecs.iter().any(|a| a.id == pt.id));
                mine.hdrexts
                    .retain(|h| acc.hdrexts.iter().any(|a| a.id == h.id));
                c.answer_view.insert(mine.name.clone(), mine);
            }
        }
        let mut accept = accept;
        for content in &mut accept.contents {
            content.creator = Role::Initiator;
            // The media plane lists codecs in its own order, but a WebRTC
            // offerer sends with the first codec of the answer: keep the
            // participant's preference (the order it offered them in).
            if let Some(offered) = c.offer.contents.iter().find(|o| o.name == content.name) {
                let rank = |id: u8| {
                    offered
                        .codecs
                        .iter()
                        .position(|pt| pt.id == id)
                        .unwrap_or(usize::MAX)
                };
                content.codecs.sort_by_key(|pt| rank(pt.id));
            }
        }
        if accept.bundle.is_empty() {
            accept.bundle = accept.contents.iter().map(|c| c.name.clone()).collect();
        }
        let header = JingleHeader {
            action: Action::SessionAccept,
            sid: c.sid.clone(),
            initiator: Some(Jid::from(c.participant.clone())),
            responder: Some(Jid::from(c.room.clone())),
        };
        let participant = c.participant.clone();
        let room = c.room.to_string();
        match session_to_jingle(&header, &accept) {
            Ok(jingle) => {
                let id = self.iq_id();
                self.send(iq_set(&room, &participant, &id, jingle));
                self.next_queued(call);
            }
            Err(e) => self.end_call(call, Some(("failed-application", e.to_string()))),
        }
    }

    /// A media-plane request for `endpoint` failed (e.g. it refused an
    /// answer): the call ends.
    pub fn media_failed(&mut self, endpoint: EndpointId, error: String) {
        if let Some(&call) = self.by_endpoint.get(&endpoint) {
            self.end_call(call, Some(("failed-application", error)));
        }
    }

    /// An event of the media plane about one endpoint.
    pub fn media_event(&mut self, endpoint: EndpointId, event: EndpointEvent) {
        let Some(&call) = self.by_endpoint.get(&endpoint) else {
            return;
        };
        match event {
            EndpointEvent::Connected => tracing::info!(call, %endpoint, "media connected"),
            EndpointEvent::Offer {
                offer,
                added,
                removed,
            } => {
                let Some(CallState::Active { queued, .. }) =
                    self.calls.get_mut(&call).map(|c| &mut c.state)
                else {
                    return;
                };
                if queued.len() >= self.limits.max_queued_offers {
                    self.end_call(
                        call,
                        Some((
                            "failed-application",
                            "the participant stopped answering".into(),
                        )),
                    );
                    return;
                }
                queued.push_back((offer, added, removed));
                self.next_queued(call);
            }
            EndpointEvent::Closed(reason) => {
                let (condition, text) = match reason {
                    CloseReason::Requested => ("success", "closed".to_string()),
                    CloseReason::ConsentExpired => {
                        ("connectivity-error", "ICE consent expired".to_string())
                    }
                    CloseReason::ConnectTimeout => (
                        "connectivity-error",
                        "ICE/DTLS did not complete".to_string(),
                    ),
                    CloseReason::IceDisconnected => {
                        ("connectivity-error", "ICE disconnected".to_string())
                    }
                    CloseReason::Failed(e) => ("failed-transport", e),
                };
                // The endpoint is already gone: forgotten first, so that
                // ending the call does not ask to close it.
                self.by_endpoint.remove(&endpoint);
                self.end_call(call, Some((condition, text)));
            }
        }
    }

    /// Start the next queued media-plane offer if nothing is in flight.
    fn next_queued(&mut self, call: CallId) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let CallState::Active {
            pending: None,
            queued,
            ..
        } = &mut c.state
        else {
            return;
        };
        let Some((offer, added, removed)) = queued.pop_front() else {
            return;
        };
        let session = match sdp_to_session(&offer.to_sdp_string(), Role::Responder) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(call, error = %e, "cannot map the media plane's offer");
                self.end_call(call, Some(("failed-application", e.to_string())));
                return;
            }
        };
        let removed: Vec<String> = removed
            .into_iter()
            .filter(|m| c.announced.contains(m))
            .collect();
        if !removed.is_empty() {
            self.send_remove(call, session, removed, added);
        } else if !added.is_empty() {
            self.send_add(call, session, added);
        } else {
            self.answer_media(call, &session);
        }
    }

    fn send_remove(
        &mut self,
        call: CallId,
        offer: Session,
        removed: Vec<String>,
        added: Vec<OutgoingTrack>,
    ) {
        let iq = self.iq_id();
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let CallState::Active { pending, .. } = &mut c.state else {
            return;
        };
        let mut jingle = Element::builder("jingle", NS_JINGLE)
            .attr(nc!("action"), "content-remove")
            .attr(nc!("sid"), c.sid.clone());
        for name in &removed {
            jingle = jingle.append(
                Element::builder("content", NS_JINGLE)
                    .attr(nc!("creator"), "responder")
                    .attr(nc!("name"), name.clone())
                    .build(),
            );
        }
        let stanza = iq_set(&c.room.to_string(), &c.participant, &iq, jingle.build());
        *pending = Some(Pending::Remove {
            iq,
            offer,
            removed,
            added,
        });
        self.send(stanza);
    }

    fn send_add(&mut self, call: CallId, offer: Session, added: Vec<OutgoingTrack>) {
        let iq = self.iq_id();
        let names: Vec<String> = added.iter().map(|t| t.mid.clone()).collect();
        let mut contents = Vec::new();
        for t in &added {
            let Some(content) = offer.contents.iter().find(|x| x.name == t.mid) else {
                continue;
            };
            let mut content = content.clone();
            content.creator = Role::Responder;
            let owner = self.owner_of(t.source.publisher);
            for s in &mut content.sources {
                s.owner = owner.clone();
            }
            contents.push(content);
        }
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let CallState::Active { pending, .. } = &mut c.state else {
            return;
        };
        if contents.is_empty() {
            // Nothing announceable (the tracks went away meanwhile).
            return self.answer_media(call, &offer);
        }
        c.announced.extend(names.iter().cloned());
        let session = Session {
            contents,
            bundle: offer.contents.iter().map(|x| x.name.clone()).collect(),
            ice_lite: false,
        };
        let header = JingleHeader {
            action: Action::ContentAdd,
            sid: c.sid.clone(),
            initiator: None,
            responder: None,
        };
        match session_to_jingle(&header, &session) {
            Ok(jingle) => {
                let stanza = iq_set(&c.room.to_string(), &c.participant, &iq, jingle);
                *pending = Some(Pending::Add {
                    iq,
                    offer,
                    added: names,
                });
                self.send(stanza);
            }
            Err(e) => {
                tracing::warn!(call, error = %e, "cannot write content-add");
                self.end_call(call, Some(("failed-application", e.to_string())));
            }
        }
    }

    /// The participant answered one of the focus's IQs.
    pub fn iq_response(&mut self, room: &BareJid, from: &FullJid, iq: &Element) {
        let Some(&call) = self.by_participant.get(&(room.clone(), from.clone())) else {
            return;
        };
        let Some(id) = iq.attr("id") else { return };
        let ok = iq.attr("type") == Some("result");
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let CallState::Active { pending, .. } = &mut c.state else {
            return;
        };
        match pending {
            Some(Pending::Remove { iq: sent, .. }) if sent == id => {
                if !ok {
                    tracing::info!(call, "participant refused content-remove; removing anyway");
                }
                let Some(Pending::Remove {
                    offer,
                    removed,
                    added,
                    ..
                }) = pending.take()
                else {
                    return;
                };
                for name in &removed {
                    if let Some(v) = c.answer_view.get_mut(name) {
                        v.senders = Senders::None;
                    }
                }
                if added.is_empty() {
                    self.answer_media(call, &offer);
                } else {
                    self.send_add(call, offer, added);
                }
            }
            Some(Pending::Add { iq: sent, .. }) if sent == id && !ok => {
                tracing::info!(call, "participant refused content-add");
                self.end_call(
                    call,
                    Some(("failed-application", "content-add refused".into())),
                );
            }
            _ => {}
        }
    }

    fn content_accept(&mut self, call: CallId, iq: &Element, jingle: &Element) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let room = c.room.to_string();
        let CallState::Active { pending, .. } = &mut c.state else {
            return self.send(error_reply(iq, &room, &out_of_order()));
        };
        let Some(Pending::Add { added, .. }) = pending else {
            return self.send(error_reply(iq, &room, &out_of_order()));
        };
        let session = match jingle_to_session(jingle) {
            Ok(s) => s,
            Err(e) => return self.send(error_reply(iq, &room, &mapping_error(&e))),
        };
        if session.contents.iter().any(|x| !added.contains(&x.name)) {
            return self.send(error_reply(
                iq,
                &room,
                &StanzaError::bad_request("content-accept names a content that was not added"),
            ));
        }
        let Some(Pending::Add { offer, .. }) = pending.take() else {
            return;
        };
        for content in session.contents {
            c.answer_view.insert(content.name.clone(), content);
        }
        self.send(iq_result(iq, &room));
        self.answer_media(call, &offer);
    }

    /// Write the participant's whole answer to the media plane's `offer`
    /// and hand it over; then start the next queued change.
    fn answer_media(&mut self, call: CallId, offer: &Session) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let Some(endpoint) = c.endpoint() else {
            return;
        };
        let mut transport = c.transport.clone();
        transport.candidates.clear();
        if let Some(fp) = transport.fingerprint.as_mut() {
            fp.setup = Setup::Active;
        }
        let contents: Vec<Content> = offer
            .contents
            .iter()
            .map(|o| {
                let mut a = c.answer_view.get(&o.name).cloned().unwrap_or_else(|| {
                    let mut x = o.clone();
                    x.senders = Senders::None;
                    x.sources.clear();
                    x.ssrc_groups.clear();
                    x
                });
                if o.senders == Senders::None {
                    a.senders = Senders::None;
                }
                a.transport = transport.clone();
                a
            })
            .collect();
        let session = Session {
            bundle: contents.iter().map(|x| x.name.clone()).collect(),
            contents,
            ice_lite: false,
        };
        c.sdp_version += 1;
        let answer = session_to_sdp(&session, Role::Initiator, c.sdp_version)
            .map_err(|e| e.to_string())
            .and_then(|sdp| SdpAnswer::from_sdp_string(&sdp).map_err(|e| e.to_string()));
        match answer {
            Ok(answer) => {
                self.out.push_back(FocusOutput::Media(MediaCommand::Answer {
                    endpoint,
                    answer,
                }));
                self.next_queued(call);
            }
            Err(e) => {
                tracing::warn!(call, error = %e, "cannot write the answer for the media plane");
                self.end_call(call, Some(("failed-application", e)));
            }
        }
    }

    /// A message to the room with an XEP-0353 `<propose/>`: answer
    /// `<proceed/>` from the room.
    pub fn propose(&mut self, room: &BareJid, from: &FullJid, message: &Element) -> bool {
        let Some(propose) = message.get_child("propose", NS_JMI) else {
            return false;
        };
        let Some(id) = propose
            .attr("id")
            .filter(|id| !id.is_empty() && id.len() <= 256)
        else {
            self.send(error_reply(
                message,
                &room.to_string(),
                &StanzaError::bad_request("propose needs an id"),
            ));
            return true;
        };
        let proceed = Element::builder("message", NS_CLIENT)
            .attr(nc!("from"), room.to_string())
            .attr(nc!("to"), from.to_string())
            .append(
                Element::builder("proceed", NS_JMI)
                    .attr(nc!("id"), id)
                    .build(),
            )
            .build();
        self.send(proceed);
        true
    }

    /// `participant` left `room` (or its stream ended): its call ends.
    pub fn left(&mut self, room: &BareJid, participant: &FullJid) {
        if let Some(&call) = self
            .by_participant
            .get(&(room.clone(), participant.clone()))
        {
            self.end_call(call, Some(("gone", "left the room".into())));
        }
    }

    /// End a call: close its endpoint and, when `reason` is given, tell
    /// the participant with session-terminate.
    fn end_call(&mut self, call: CallId, reason: Option<(&'static str, String)>) {
        let Some(c) = self.calls.remove(&call) else {
            return;
        };
        self.by_participant
            .remove(&(c.room.clone(), c.participant.clone()));
        // An endpoint the media plane has closed itself is no longer in
        // `by_endpoint`, and is not asked to close.
        if let Some(endpoint) = c.endpoint() {
            if self.by_endpoint.remove(&endpoint).is_some() {
                self.out
                    .push_back(FocusOutput::Media(MediaCommand::Close { endpoint }));
            }
        }
        tracing::info!(call, room = %c.room, nick = %c.nick, reason = ?reason, "call ended");
        if let Some((condition, text)) = reason {
            let jingle = Element::builder("jingle", NS_JINGLE)
                .attr(nc!("action"), "session-terminate")
                .attr(nc!("sid"), c.sid.clone())
                .append(
                    Element::builder("reason", NS_JINGLE)
                        .append(Element::builder(condition, NS_JINGLE).build())
                        .append(Element::builder("text", NS_JINGLE).append(text).build())
                        .build(),
                )
                .build();
            let id = self.iq_id();
            self.send(iq_set(&c.room.to_string(), &c.participant, &id, jingle));
        }
    }
}

/// `<iq type='set' from to id>payload</iq>`.
fn iq_set(from: &str, to: &FullJid, id: &str, payload: Element) -> Element {
    Element::builder("iq", NS_CLIENT)
        .attr(nc!("type"), "set")
        .attr(nc!("from"), from)
        .attr(nc!("to"), to.to_string())
        .attr(nc!("id"), id)
        .append(payload)
        .build()
}
