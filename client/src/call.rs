//! The participant's side of a call to a room (docs/PROTOCOL.md §3, §4, §6),
//! sans-IO: Jingle elements and SDP text in, Jingle elements and SDP text out.
//!
//! For Confab's own test clients and the load tester, whose WebRTC stacks
//! (str0m, webrtc-rs) speak SDP. A [`ParticipantCall`] keeps the one thing
//! such a client cannot keep itself: the bridge's whole session, so that
//! every change the bridge makes in Jingle becomes a complete SDP for the
//! local stack.
//!
//! ```text
//!   local offer SDP --initiate--------------> session-initiate  (to the room)
//!   session-accept  --on_session_accept-----> SDP answer        (apply locally)
//!   content-add     --on_content_add--------> SDP offer         (apply locally)
//!   local answer    --content_accept--------> content-accept    (to the room)
//!   content-remove  --on_content_remove-----> SDP offer         (apply locally)
//!   session-terminate <-terminate / on_session_terminate-->
//! ```
//!
//! Every Jingle conversion goes through [`confab_proto::jingle_sdp`], so everything
//! a peer sends is validated there; this module adds the session rules: the
//! sid, the order of actions (one change at a time), content names (the
//! session-accept answers exactly the offered contents, content-add names are
//! new, content-remove names are the bridge's), and the rules for building a
//! remote SDP: `a=ice-lite`, `a=setup:actpass` in offers, a BUNDLE group
//! listing every m-line in order, an `o=` version that grows with every
//! remote description, and transports that omit credentials or candidates
//! inheriting the bundle's (those of the first content).
//!
//! What it is not for: it builds no IQs and sends nothing (the caller wraps
//! the elements in `<iq type='set' to='R'>`, answers the bridge's IQs with a
//! result or, for a [`CallError`], the XEP-0166 error named on its variant),
//! does not trickle candidates (offer them gathered), does no ICE restart,
//! does not publish further tracks after the session-initiate, and is not
//! used by the bridge.

use std::collections::BTreeMap;

use minidom::Element;
use xmpp_parsers::jid::{BareJid, FullJid, Jid};
use xmpp_parsers::jingle::{Action, Jingle, Reason, ReasonElement, SessionId};
use xmpp_parsers::ns;

use confab_proto::jingle_sdp::{
    jingle_content_names, jingle_to_session, sdp_to_session, session_to_jingle, session_to_sdp,
    Content, JingleHeader, MappingError, Media, Msid, Role, Senders, Session, Setup, Transport,
};

/// Why a Jingle element or a local SDP was refused. Nothing here echoes a
/// value a peer sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The Jingle or the SDP does not map (answer `<bad-request/>`).
    #[error(transparent)]
    Mapping(#[from] MappingError),
    /// A JID passed to [`ParticipantCall::initiate`] is not valid (the own
    /// JID must be a full JID, the room's a bare one).
    #[error("{0} is not a valid JID")]
    InvalidJid(&'static str),
    /// The element's sid is not this session's (answer `<item-not-found/>`
    /// with `<unknown-session/>`).
    #[error("unknown Jingle session")]
    UnknownSession,
    /// The element's action is not the one this method handles.
    #[error("expected a {expected} action")]
    UnexpectedAction {
        /// The action the method handles.
        expected: &'static str,
    },
    /// The action is not allowed in the session's current state, e.g. a
    /// content-add before the session-accept or while a content-add awaits
    /// its content-accept (answer `<unexpected-request/>` with
    /// `<out-of-order/>`).
    #[error("{0} is out of order")]
    OutOfOrder(&'static str),
    /// The Jingle maps but breaks docs/PROTOCOL.md, or the local answer does not
    /// answer the remote offer (answer `<bad-request/>`).
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
    /// The session has been terminated.
    #[error("the session has ended")]
    Ended,
}

/// Where the call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// session-initiate sent, waiting for the session-accept.
    Initiated,
    /// Accepted; no change outstanding.
    Active,
    /// A content-add was turned into a remote offer; waiting for the local
    /// answer ([`ParticipantCall::content_accept`]).
    AwaitingAnswer,
    /// session-terminate sent or received.
    Ended,
}

/// A new remote description: an SDP offer from the bridge's point of view,
/// to apply to the local stack as the remote description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteOffer {
    /// The SDP offer.
    pub sdp: String,
    /// The contents (mids) this change added or removed.
    pub contents: Vec<String>,
}

/// A track the bridge sends to this participant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteTrack {
    /// Content name = SDP mid.
    pub name: String,
    /// Audio or video.
    pub media: Media,
    /// Occupant JID (`R/nick`) of the participant who publishes it (Confab's
    /// owner extension), if the bridge said.
    pub owner: Option<String>,
    /// The track's msid (STREAM is the same for all tracks of one owner).
    pub msid: Option<Msid>,
}

/// One participant's Jingle session with a room. See the module docs.
#[derive(Debug, Clone)]
pub struct ParticipantCall {
    sid: String,
    own_jid: FullJid,
    room_jid: BareJid,
    state: State,
    /// Names of the contents the participant offered, in order.
    offered: Vec<String>,
    /// The bridge's session: the session-accept contents, then every
    /// content-add's, in order; removed ones have `senders: None`.
    remote: Vec<Content>,
    /// sess-version of the last remote SDP.
    version: u64,
    /// Contents of the content-add awaiting its content-accept.
    pending: Vec<String>,
}

impl ParticipantCall {
    /// Starts a call: turns the local stack's SDP offer into the
    /// session-initiate `<jingle/>` (`initiator` = `own_jid`, one content
    /// per m-line, the offer's BUNDLE group). Send it to `room_jid`.
    pub fn initiate(
        sid: &str,
        own_jid: &str,
        room_jid: &str,
        offer_sdp: &str,
    ) -> Result<(ParticipantCall, Element), CallError> {
        let own_jid = FullJid::new(own_jid).map_err(|_| CallError::InvalidJid("own JID"))?;
        let room_jid = BareJid::new(room_jid).map_err(|_| CallError::InvalidJid("room JID"))?;
        let session = sdp_to_session(offer_sdp, Role::Initiator)?;
        if session.contents.is_empty() {
            return Err(CallError::Protocol("the offer has no m-line"));
        }
        let header = JingleHeader {
            action: Action::SessionInitiate,
            sid: sid.to_owned(),
            initiator: Some(Jid::from(own_jid.clone())),
            responder: None,
        };
        let element = session_to_jingle(&header, &session)?;
        let call = ParticipantCall {
            sid: sid.to_owned(),
            own_jid,
            room_jid,
            state: State::Initiated,
            offered: session.contents.into_iter().map(|c| c.name).collect(),
            remote: Vec::new(),
            version: 0,
            pending: Vec::new(),
        };
        Ok((call, element))
    }

    /// The session id.
    pub fn sid(&self) -> &str {
        &self.sid
    }

    /// The participant's own full JID (the session's initiator).
    pub fn own_jid(&self) -> &FullJid {
        &self.own_jid
    }

    /// The room, to which every request of this session is sent.
    pub fn room_jid(&self) -> &BareJid {
        &self.room_jid
    }

    /// Whether the bridge has accepted the session (and it has not ended).
    pub fn is_accepted(&self) -> bool {
        !matches!(self.state, State::Initiated | State::Ended)
    }

    /// Whether the session has been terminated (by either side).
    pub fn is_ended(&self) -> bool {
        self.state == State::Ended
    }

    /// The bridge's session-accept -> the SDP answer to apply locally
    /// (authored by the bridge, `a=ice-lite`). It must answer every offered
    /// content, in order, with ICE credentials and a fingerprint whose setup
    /// is `active` or `passive`.
    pub fn on_session_accept(&mut self, jingle: &Element) -> Result<String, CallError> {
        let header = self.check_header(jingle, Action::SessionAccept, "session-accept")?;
        match self.state {
            State::Initiated => {}
            State::Ended => return Err(CallError::Ended),
            _ => return Err(CallError::OutOfOrder("session-accept")),
        }
        if header.responder.is_some_and(|r| r != self.room_jid) {
            return Err(CallError::Protocol(
                "session-accept responder is not the room",
            ));
        }
        let mut session = jingle_to_session(jingle)?;
        let names = session.contents.iter().map(|c| &c.name);
        if !names.eq(self.offered.iter())
            || session
                .contents
                .iter()
                .any(|c| c.creator != Role::Initiator)
        {
            return Err(CallError::Protocol(
                "session-accept does not answer the offered contents",
            ));
        }
        let bundle = session.contents[0].transport.clone();
        if bundle.ufrag.is_none() || bundle.pwd.is_none() {
            return Err(CallError::Protocol(
                "session-accept without ICE credentials",
            ));
        }
        match &bundle.fingerprint {
            Some(fp) if fp.setup != Setup::Actpass => {}
            _ => {
                return Err(CallError::Protocol(
                    "session-accept without an answering fingerprint",
                ))
            }
        }
        for content in &mut session.contents {
            inherit(&mut content.transport, &bundle);
        }
        let sdp = self.remote_sdp(&session.contents, None)?;
        self.remote = session.contents;
        self.state = State::Active;
        Ok(sdp)
    }

    /// A content-add from the bridge -> the bridge's whole session as a new
    /// SDP offer (earlier m-lines in order, the new ones appended). Apply it
    /// as the remote description, answer it and pass the answer to
    /// [`ParticipantCall::content_accept`].
    pub fn on_content_add(&mut self, jingle: &Element) -> Result<RemoteOffer, CallError> {
        self.check_header(jingle, Action::ContentAdd, "content-add")?;
        self.check_ready("content-add")?;
        let added = jingle_to_session(jingle)?.contents;
        if added.is_empty() {
            return Err(CallError::Protocol("content-add without contents"));
        }
        let mut contents = self.remote.clone();
        for mut content in added {
            if content.creator != Role::Responder {
                return Err(CallError::Protocol(
                    "content-add content not created by the responder",
                ));
            }
            if contents.iter().any(|c| c.name == content.name) {
                return Err(CallError::Protocol("content-add reuses a content name"));
            }
            inherit(&mut content.transport, &self.remote[0].transport);
            contents.push(content);
        }
        let names: Vec<String> = contents[self.remote.len()..]
            .iter()
            .map(|c| c.name.clone())
            .collect();
        let sdp = self.remote_sdp(&contents, Some(Setup::Actpass))?;
        self.remote = contents;
        self.pending.clone_from(&names);
        self.state = State::AwaitingAnswer;
        Ok(RemoteOffer {
            sdp,
            contents: names,
        })
    }

    /// The local stack's SDP answer to the last content-add's offer -> the
    /// content-accept `<jingle/>` with only the contents just added, as the
    /// local stack accepted them (codecs, ufrag/pwd, fingerprint with
    /// `setup='active'`). Send it to the room.
    pub fn content_accept(&mut self, answer_sdp: &str) -> Result<Element, CallError> {
        match self.state {
            State::AwaitingAnswer => {}
            State::Ended => return Err(CallError::Ended),
            _ => return Err(CallError::OutOfOrder("content-accept")),
        }
        let answer = sdp_to_session(answer_sdp, Role::Initiator)?;
        let names = answer.contents.iter().map(|c| &c.name);
        if !names.eq(self.remote.iter().map(|c| &c.name)) {
            return Err(CallError::Protocol(
                "the answer's m-lines are not the offer's",
            ));
        }
        let bundle = answer.contents[0].transport.clone();
        let mut accepted = Vec::with_capacity(self.pending.len());
        for mut content in answer.contents {
            if !self.pending.contains(&content.name) {
                continue;
            }
            content.creator = Role::Responder;
            inherit(&mut content.transport, &bundle);
            match &mut content.transport.fingerprint {
                Some(fp) => fp.setup = Setup::Active,
                None => return Err(CallError::Protocol("the answer has no fingerprint")),
            }
            accepted.push(content);
        }
        let header = JingleHeader {
            action: Action::ContentAccept,
            sid: self.sid.clone(),
            initiator: None,
            responder: None,
        };
        let session = Session {
            contents: accepted,
            ..Session::default()
        };
        let element = session_to_jingle(&header, &session)?;
        self.pending.clear();
        self.state = State::Active;
        Ok(element)
    }

    /// A content-remove from the bridge -> a new remote SDP offer in which
    /// those m-lines are inactive (and carry no sources). Apply it and
    /// answer it locally; no Jingle reply beyond the IQ result is needed.
    /// Removing an already removed content is harmless.
    pub fn on_content_remove(&mut self, jingle: &Element) -> Result<RemoteOffer, CallError> {
        self.check_header(jingle, Action::ContentRemove, "content-remove")?;
        self.check_ready("content-remove")?;
        let names = jingle_content_names(jingle)?;
        if names.is_empty() {
            return Err(CallError::Protocol("content-remove without contents"));
        }
        let mut contents = self.remote.clone();
        for name in &names {
            let content = contents
                .iter_mut()
                .find(|c| &c.name == name && c.creator == Role::Responder)
                .ok_or(CallError::Protocol(
                    "content-remove names no content of the bridge",
                ))?;
            content.senders = Senders::None;
            content.sources.clear();
            content.ssrc_groups.clear();
            content.rids.clear();
            content.simulcast = None;
        }
        let sdp = self.remote_sdp(&contents, Some(Setup::Actpass))?;
        self.remote = contents;
        Ok(RemoteOffer {
            sdp,
            contents: names,
        })
    }

    /// Ends the session: the session-terminate `<jingle/>` with `reason`
    /// (`Reason::Success` when hanging up, `Reason::Gone` when leaving, ...).
    /// Send it to the room. Later Jingle from the bridge gets
    /// [`CallError::Ended`].
    pub fn terminate(&mut self, reason: Reason) -> Element {
        self.state = State::Ended;
        let reason = ReasonElement {
            reason,
            texts: BTreeMap::new(),
        };
        Element::from(
            Jingle::new(Action::SessionTerminate, SessionId(self.sid.clone())).set_reason(reason),
        )
    }

    /// The bridge's session-terminate: ends the session and returns its
    /// reason, if it has one this crate knows.
    pub fn on_session_terminate(&mut self, jingle: &Element) -> Result<Option<Reason>, CallError> {
        self.check_header(jingle, Action::SessionTerminate, "session-terminate")?;
        if self.state == State::Ended {
            return Err(CallError::Ended);
        }
        self.state = State::Ended;
        let reason = jingle
            .get_child("reason", ns::JINGLE)
            .and_then(|r| r.children().find(|c| c.name() != "text"))
            .and_then(|r| Reason::try_from(r.clone()).ok());
        Ok(reason)
    }

    /// The tracks the bridge currently sends (content-add contents not
    /// removed), in session order, with who owns each.
    pub fn remote_tracks(&self) -> Vec<RemoteTrack> {
        self.remote
            .iter()
            .filter(|c| c.creator == Role::Responder)
            .filter(|c| matches!(c.senders, Senders::Responder | Senders::Both))
            .map(|c| RemoteTrack {
                name: c.name.clone(),
                media: c.media,
                owner: c.sources.iter().find_map(|s| s.owner.clone()),
                msid: c.sources.iter().find_map(|s| s.msid.clone()),
            })
            .collect()
    }

    /// Checks the element's sid and action (in that order).
    fn check_header(
        &self,
        jingle: &Element,
        action: Action,
        expected: &'static str,
    ) -> Result<JingleHeader, CallError> {
        let header = JingleHeader::from_element(jingle)?;
        if header.sid != self.sid {
            return Err(CallError::UnknownSession);
        }
        if header.action != action {
            return Err(CallError::UnexpectedAction { expected });
        }
        Ok(header)
    }

    /// A bridge-initiated change needs an accepted session and no change
    /// outstanding.
    fn check_ready(&self, action: &'static str) -> Result<(), CallError> {
        match self.state {
            State::Active => Ok(()),
            State::Ended => Err(CallError::Ended),
            State::Initiated | State::AwaitingAnswer => Err(CallError::OutOfOrder(action)),
        }
    }

    /// SDP of the bridge's session made of `contents` (ICE-lite, BUNDLE
    /// over all of them, the next sess-version); `setup` overrides every
    /// fingerprint's setup (offers say `actpass`). Bumps the version only
    /// on success.
    fn remote_sdp(
        &mut self,
        contents: &[Content],
        setup: Option<Setup>,
    ) -> Result<String, CallError> {
        let mut contents = contents.to_vec();
        if let Some(setup) = setup {
            for fp in contents
                .iter_mut()
                .filter_map(|c| c.transport.fingerprint.as_mut())
            {
                fp.setup = setup;
            }
        }
        let session = Session {
            bundle: contents.iter().map(|c| c.name.clone()).collect(),
            contents,
            ice_lite: true,
        };
        let sdp = session_to_sdp(&session, Role::Responder, self.version + 1)?;
        self.version += 1;
        Ok(sdp)
    }
}

/// Fills what a bundled content's transport omits from the bundle's
/// transport: credentials, fingerprint and candidates.
fn inherit(transport: &mut Transport, bundle: &Transport) {
    if transport.ufrag.is_none() || transport.pwd.is_none() {
        transport.ufrag.clone_from(&bundle.ufrag);
        transport.pwd.clone_from(&bundle.pwd);
    }
    if transport.fingerprint.is_none() {
        transport.fingerprint.clone_from(&bundle.fingerprint);
    }
    if transport.candidates.is_empty() {
        transport.candidates.clone_from(&bundle.candidates);
    }
}
