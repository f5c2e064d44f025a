//! The router of the embedded XMPP server, sans-IO: bound sessions in,
//! stanzas routed between them, the rooms ([`crate::muc`]) and the focus
//! ([`crate::focus`]); requests for the media plane out.
//!
//! Addresses it serves: the domain itself (XEP-0199 ping, XEP-0030 disco,
//! an empty roster), local users' bare and full JIDs (messages, presence
//! and IQs between sessions), and `conference.<domain>` (rooms, and Jingle
//! to a room or its `/focus` occupant). Anything else is
//! `<remote-server-not-found/>`: there is no server-to-server.
//!
//! Not here: the stream negotiation ([`crate::stream`]) and sockets
//! ([`crate::net`]).

use std::collections::{HashMap, VecDeque};

use minidom::Element;
use sfu::{EndpointEvent, EndpointId, SdpAnswer};
use xmpp_parsers::jid::{BareJid, FullJid, Jid};

use crate::focus::{CallId, Focus, FocusLimits, FocusOutput, MediaCommand};
use crate::muc::{Muc, MucEvent, MucLimits, MucRole};
use crate::stanza::*;

/// One client connection, as the driver numbers them.
pub type ConnId = u64;

/// What the router wants done.
#[derive(Debug)]
pub enum ServerOutput {
    /// Send `stanza` on connection `conn`.
    Deliver {
        /// The connection.
        conn: ConnId,
        /// The stanza.
        stanza: Element,
    },
    /// End connection `conn` with this stream error condition.
    Disconnect {
        /// The connection.
        conn: ConnId,
        /// RFC 6120 stream error condition.
        condition: &'static str,
    },
    /// Ask the media plane.
    Media(MediaCommand),
    /// A moderator asked to start or stop recording a room; answer with
    /// [`Server::recording_started`], [`Server::recording_stopped`] or
    /// [`Server::recording_failed`].
    Record {
        /// The room.
        room: BareJid,
        /// The moderator's nick.
        nick: String,
        /// Its real JID (to tell it of a failure).
        jid: FullJid,
        /// Start (`true`) or stop.
        start: bool,
    },
}

/// One room in the list of rooms (the admin API's overview).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomSummary {
    /// The room's bare JID.
    pub jid: BareJid,
    /// Occupants.
    pub occupants: usize,
    /// Occupants with a call (an endpoint on the media plane).
    pub in_call: usize,
}

/// One room as it is now: who is in it and who is in the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomSnapshot {
    /// The room's bare JID.
    pub jid: BareJid,
    /// Its subject (empty if none was set).
    pub subject: String,
    /// Its occupants, in join order.
    pub occupants: Vec<OccupantSnapshot>,
}

/// One occupant of a [`RoomSnapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OccupantSnapshot {
    /// Its nick.
    pub nick: String,
    /// Its role.
    pub role: MucRole,
    /// Its call's endpoint on the media plane, once the call is set up.
    pub endpoint: Option<EndpointId>,
}

/// The router's settings.
#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// The server's domain.
    pub domain: String,
    /// Room bounds.
    pub muc: MucLimits,
    /// Focus bounds.
    pub focus: FocusLimits,
}

/// The router.
pub struct Server {
    domain: String,
    muc_domain: String,
    sessions: HashMap<FullJid, ConnId>,
    conns: HashMap<ConnId, FullJid>,
    muc: Muc,
    focus: Focus,
    out: VecDeque<ServerOutput>,
}

impl Server {
    /// A router for `config.domain`, with rooms at `conference.<domain>`.
    pub fn new(config: RouterConfig) -> Server {
        let muc_domain = crate::muc::service_domain(&config.domain);
        Server {
            muc: Muc::new(&muc_domain, config.muc),
            focus: Focus::new(config.focus),
            domain: config.domain,
            muc_domain,
            sessions: HashMap::new(),
            conns: HashMap::new(),
            out: VecDeque::new(),
        }
    }

    /// The rooms.
    pub fn muc(&self) -> &Muc {
        &self.muc
    }

    /// The focus.
    pub fn focus(&self) -> &Focus {
        &self.focus
    }

    /// Number of bound sessions.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// Every room, sorted by JID, with its number of occupants and calls.
    pub fn room_summaries(&self) -> Vec<RoomSummary> {
        let mut rooms: Vec<RoomSummary> = self
            .muc
            .rooms()
            .map(|jid| {
                let occupants = self.muc.occupants(jid);
                RoomSummary {
                    jid: jid.clone(),
                    occupants: occupants.len(),
                    in_call: occupants
                        .iter()
                        .filter(|o| self.focus.endpoint_of(jid, &o.jid).is_some())
                        .count(),
                }
            })
            .collect();
        rooms.sort_by(|a, b| a.jid.cmp(&b.jid));
        rooms
    }

    /// The room `jid` as it is now; `None` if it does not exist.
    pub fn room_snapshot(&self, jid: &BareJid) -> Option<RoomSnapshot> {
        let subject = self.muc.subject(jid)?.to_string();
        let occupants = self
            .muc
            .occupants(jid)
            .iter()
            .map(|o| OccupantSnapshot {
                nick: o.nick.clone(),
                role: o.role,
                endpoint: self.focus.endpoint_of(jid, &o.jid),
            })
            .collect();
        Some(RoomSnapshot {
            jid: jid.clone(),
            subject,
            occupants,
        })
    }

    /// What to do next.
    pub fn poll_output(&mut self) -> Option<ServerOutput> {
        self.out.pop_front()
    }

    /// Connection `conn` bound `jid`. A session already bound to the same
    /// full JID is replaced (RFC 6120 §7.7.2.2, "override"): it gets a
    /// `<conflict/>` stream error.
    pub fn bound(&mut self, conn: ConnId, jid: FullJid) {
        if let Some(old) = self.sessions.get(&jid).copied() {
            if old != conn {
                self.drop_session(old);
                self.out.push_back(ServerOutput::Disconnect {
                    conn: old,
                    condition: "conflict",
                });
            }
        }
        self.sessions.insert(jid.clone(), conn);
        self.conns.insert(conn, jid);
        self.gauges();
    }

    /// Connection `conn` ended.
    pub fn disconnected(&mut self, conn: ConnId) {
        self.drop_session(conn);
        self.gauges();
    }

    fn drop_session(&mut self, conn: ConnId) {
        let Some(jid) = self.conns.remove(&conn) else {
            return;
        };
        if self.sessions.get(&jid) == Some(&conn) {
            self.sessions.remove(&jid);
        }
        let mut events = Vec::new();
        self.muc.disconnected(&jid, &mut events);
        self.muc_events(events);
    }

    fn gauges(&self) {
        metrics::gauge!("confab_xmpp_sessions").set(self.sessions.len() as f64);
        metrics::gauge!("confab_muc_rooms").set(self.muc.room_count() as f64);
        metrics::gauge!("confab_focus_calls").set(self.focus.calls() as f64);
    }

    /// The media plane created (or refused) a call's endpoint.
    pub fn media_created(&mut self, call: CallId, result: Result<(EndpointId, SdpAnswer), String>) {
        self.focus.media_created(call, result);
        self.drain_focus();
    }

    /// An event of the media plane about one endpoint.
    pub fn media_event(&mut self, endpoint: EndpointId, event: EndpointEvent) {
        self.focus.media_event(endpoint, event);
        self.drain_focus();
        self.gauges();
    }

    /// A media-plane request about `endpoint` failed.
    pub fn media_failed(&mut self, endpoint: EndpointId, error: String) {
        self.focus.media_failed(endpoint, error);
        self.drain_focus();
    }

    /// Recording of `room` started (by a moderator's command or an
    /// admin): every occupant is told, with status code 170
    /// (XEP-0045 §10.8).
    pub fn recording_started(&mut self, room: &BareJid, by: &str) {
        let mut events = Vec::new();
        self.muc.set_recording(room, true);
        self.muc.announce(
            room,
            &format!("Recording started by {by}."),
            &[170],
            &mut events,
        );
        self.muc_events(events);
    }

    /// Recording of `room` stopped: every occupant is told, with status
    /// code 171.
    pub fn recording_stopped(&mut self, room: &BareJid, by: &str) {
        let mut events = Vec::new();
        self.muc.set_recording(room, false);
        self.muc.announce(
            room,
            &format!("Recording stopped by {by}."),
            &[171],
            &mut events,
        );
        self.muc_events(events);
    }

    /// Recording of `room` stopped by itself (`reason`): the room is told.
    pub fn recording_ended(&mut self, room: &BareJid, reason: &str) {
        let mut events = Vec::new();
        self.muc.set_recording(room, false);
        self.muc.announce(
            room,
            &format!("Recording stopped: {reason}."),
            &[171],
            &mut events,
        );
        self.muc_events(events);
    }

    /// A moderator's recording command failed: it alone is told why.
    pub fn recording_failed(&mut self, room: &BareJid, jid: &FullJid, why: &str) {
        let mut events = Vec::new();
        self.muc
            .tell(room, jid, &format!("Recording: {why}."), &mut events);
        self.muc_events(events);
    }

    /// A stanza from connection `conn` (its `from` already stamped).
    pub fn stanza(&mut self, conn: ConnId, stanza: Element) {
        let Some(from) = self.conns.get(&conn).cloned() else {
            return;
        };
        let to = match to_jid(&stanza) {
            Ok(to) => to,
            Err(_) => {
                if !is_error(&stanza) {
                    let err = StanzaError::new(ErrorType::Modify, "jid-malformed");
                    self.deliver_to(conn, error_reply(&stanza, &self.domain.clone(), &err));
                }
                return;
            }
        };
        let Some(to) = to else {
            self.for_server(conn, &from, &stanza);
            return;
        };
        let domain = to.domain().as_str();
        if domain == self.domain {
            if to.node().is_none() {
                self.for_server(conn, &from, &stanza);
            } else {
                self.for_user(conn, &to, &stanza);
            }
        } else if domain == self.muc_domain {
            self.for_muc(conn, &from, &to, &stanza);
        } else if !is_error(&stanza) {
            let err = StanzaError::new(ErrorType::Cancel, "remote-server-not-found")
                .with_text("this server does not federate");
            self.deliver_to(conn, error_reply(&stanza, domain, &err));
        }
        self.gauges();
    }

    fn deliver_to(&mut self, conn: ConnId, stanza: Element) {
        self.out.push_back(ServerOutput::Deliver { conn, stanza });
    }

    /// Deliver to the session whose full JID is the stanza's `to`.
    fn deliver(&mut self, stanza: Element) {
        let conn = stanza
            .attr("to")
            .and_then(|t| FullJid::new(t).ok())
            .and_then(|j| self.sessions.get(&j).copied());
        if let Some(conn) = conn {
            self.deliver_to(conn, stanza);
        }
    }

    fn for_server(&mut self, conn: ConnId, _from: &FullJid, stanza: &Element) {
        if stanza.name() != "iq" {
            // Presence to the server (initial presence) and messages to it:
            // there is no roster to broadcast to and nothing to store.
            return;
        }
        let kind = stanza.attr("type").unwrap_or("");
        if !matches!(kind, "get" | "set") {
            return;
        }
        let domain = self.domain.clone();
        let Some(payload) = iq_payload(stanza) else {
            self.deliver_to(
                conn,
                error_reply(
                    stanza,
                    &domain,
                    &StanzaError::bad_request("one payload per IQ"),
                ),
            );
            return;
        };
        let reply = if payload.is("ping", NS_PING) {
            iq_result(stanza, &domain)
        } else if kind == "get" && payload.is("query", NS_DISCO_INFO) {
            let info = disco_info(
                "server",
                "im",
                "Confab",
                &[NS_DISCO_INFO, NS_DISCO_ITEMS, NS_PING],
            );
            iq_result_with(stanza, &domain, Some(info))
        } else if kind == "get" && payload.is("query", NS_DISCO_ITEMS) {
            let q = Element::builder("query", NS_DISCO_ITEMS)
                .append(
                    Element::builder("item", NS_DISCO_ITEMS)
                        .attr(nc!("jid"), self.muc_domain.clone())
                        .attr(nc!("name"), "Conferences")
                        .build(),
                )
                .build();
            iq_result_with(stanza, &domain, Some(q))
        } else if kind == "get" && payload.is("query", NS_ROSTER) {
            // No rosters: every user's roster is empty.
            iq_result_with(
                stanza,
                &domain,
                Some(Element::builder("query", NS_ROSTER).build()),
            )
        } else if payload.is("session", NS_SESSION) {
            iq_result(stanza, &domain)
        } else {
            error_reply(
                stanza,
                &domain,
                &StanzaError::new(ErrorType::Cancel, "service-unavailable"),
            )
        };
        self.deliver_to(conn, reply);
    }

    fn for_user(&mut self, conn: ConnId, to: &Jid, stanza: &Element) {
        let targets: Vec<ConnId> = match to.try_as_full() {
            Ok(full) => self.sessions.get(full).copied().into_iter().collect(),
            Err(bare) => {
                if stanza.name() == "iq" {
                    // IQs to a bare JID are the server's to answer on the
                    // user's behalf; it offers nothing there.
                    Vec::new()
                } else {
                    self.sessions
                        .iter()
                        .filter(|(j, _)| &j.to_bare() == bare)
                        .map(|(_, c)| *c)
                        .collect()
                }
            }
        };
        if targets.is_empty() {
            let answer_for = matches!(stanza.name(), "iq" | "message") && !is_error(stanza);
            let asks = stanza.name() != "iq" || matches!(stanza.attr("type"), Some("get" | "set"));
            if answer_for && asks {
                let err = StanzaError::new(ErrorType::Cancel, "service-unavailable");
                self.deliver_to(conn, error_reply(stanza, to.as_str(), &err));
            }
            return;
        }
        for t in targets {
            self.deliver_to(t, stanza.clone());
        }
    }

    fn for_muc(&mut self, conn: ConnId, from: &FullJid, to: &Jid, stanza: &Element) {
        let room = to.to_bare();
        let mut events = Vec::new();
        match stanza.name() {
            "presence" => self.muc.presence(from, to, stanza, &mut events),
            "message" => {
                if stanza.get_child("propose", NS_JMI).is_some() && to.resource().is_none() {
                    if self.muc.occupant(&room, from).is_some() {
                        self.focus.propose(&room, from, stanza);
                        self.drain_focus();
                    } else {
                        self.not_occupant(conn, &room, stanza);
                    }
                    return;
                }
                self.muc.message(from, to, stanza, &mut events);
            }
            "iq" => {
                let to_focus =
                    to.resource().is_none_or(|r| r.as_str() == "focus") && to.node().is_some();
                let kind = stanza.attr("type").unwrap_or("");
                let is_jingle = iq_payload(stanza).is_some_and(|p| p.is("jingle", NS_JINGLE));
                if to_focus && matches!(kind, "result" | "error") {
                    self.focus.iq_response(&room, from, stanza);
                    self.drain_focus();
                    return;
                }
                if to_focus && is_jingle && kind == "set" {
                    match self.muc.occupant(&room, from).map(|o| o.nick.clone()) {
                        Some(nick) => {
                            self.focus.jingle(&room, &nick, from, stanza);
                            self.drain_focus();
                        }
                        None => self.not_occupant(conn, &room, stanza),
                    }
                    return;
                }
                self.muc.iq(from, to, stanza, &mut events);
            }
            _ => {}
        }
        self.muc_events(events);
    }

    fn not_occupant(&mut self, conn: ConnId, room: &BareJid, stanza: &Element) {
        let err =
            StanzaError::new(ErrorType::Cancel, "not-acceptable").with_text("join the room first");
        self.deliver_to(conn, error_reply(stanza, &room.to_string(), &err));
    }

    fn muc_events(&mut self, events: Vec<MucEvent>) {
        for ev in events {
            match ev {
                MucEvent::Send(el) => self.deliver(el),
                MucEvent::Left { room, jid, nick } => {
                    tracing::debug!(%room, nick, "left");
                    self.focus.left(&room, &jid);
                    self.drain_focus();
                }
                MucEvent::Joined { room, nick, .. } => tracing::debug!(%room, nick, "joined"),
                MucEvent::Destroyed(room) => tracing::debug!(%room, "room destroyed"),
                MucEvent::Record {
                    room,
                    nick,
                    jid,
                    start,
                } => {
                    self.out.push_back(ServerOutput::Record {
                        room,
                        nick,
                        jid,
                        start,
                    });
                }
            }
        }
    }

    fn drain_focus(&mut self) {
        while let Some(o) = self.focus.poll_output() {
            match o {
                FocusOutput::Send(el) => self.deliver(el),
                FocusOutput::Media(cmd) => self.out.push_back(ServerOutput::Media(cmd)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> Server {
        Server::new(RouterConfig {
            domain: "localhost".into(),
            muc: MucLimits::default(),
            focus: FocusLimits::default(),
        })
    }

    fn stanza(xml: &str) -> Element {
        xml.parse().expect("test stanza")
    }

    fn outputs(s: &mut Server) -> Vec<ServerOutput> {
        std::iter::from_fn(|| s.poll_output()).collect()
    }

    fn delivered(out: &[ServerOutput]) -> Vec<(ConnId, &Element)> {
        out.iter()
            .filter_map(|o| match o {
                ServerOutput::Deliver { conn, stanza } => Some((*conn, stanza)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn routes_between_users_and_answers_for_the_server() {
        let mut s = server();
        s.bound(1, FullJid::new("a@localhost/x").unwrap());
        s.bound(2, FullJid::new("b@localhost/y").unwrap());
        // A message to a bare JID reaches the user's session.
        s.stanza(1, stanza("<message xmlns='jabber:client' from='a@localhost/x' to='b@localhost'><body>hi</body></message>"));
        let out = outputs(&mut s);
        assert_eq!(delivered(&out).len(), 1);
        assert_eq!(delivered(&out)[0].0, 2);
        // Ping.
        s.stanza(1, stanza("<iq xmlns='jabber:client' from='a@localhost/x' to='localhost' type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>"));
        let out = outputs(&mut s);
        assert_eq!(delivered(&out)[0].1.attr("type"), Some("result"));
        // No federation.
        s.stanza(1, stanza("<message xmlns='jabber:client' from='a@localhost/x' to='z@example.org'><body>hi</body></message>"));
        let out = outputs(&mut s);
        let err = delivered(&out)[0].1;
        assert_eq!(err.attr("type"), Some("error"));
        assert!(err
            .get_child("error", NS_CLIENT)
            .unwrap()
            .has_child("remote-server-not-found", NS_STANZA_ERRORS));
        // An IQ to an offline full JID is answered with an error.
        s.stanza(1, stanza("<iq xmlns='jabber:client' from='a@localhost/x' to='c@localhost/q' type='get' id='v'><query xmlns='jabber:iq:version'/></iq>"));
        let out = outputs(&mut s);
        assert_eq!(delivered(&out)[0].1.attr("type"), Some("error"));
    }

    #[test]
    fn snapshots_list_rooms_and_their_occupants() {
        let mut s = server();
        assert!(s.room_summaries().is_empty());
        s.bound(1, FullJid::new("a@localhost/x").unwrap());
        s.bound(2, FullJid::new("b@localhost/y").unwrap());
        for (conn, from, nick) in [(1, "a@localhost/x", "alice"), (2, "b@localhost/y", "bob")] {
            s.stanza(conn, stanza(&format!(
                "<presence xmlns='jabber:client' from='{from}' to='r@conference.localhost/{nick}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
            )));
        }
        outputs(&mut s);
        let room = BareJid::new("r@conference.localhost").unwrap();
        assert_eq!(
            s.room_summaries(),
            vec![RoomSummary {
                jid: room.clone(),
                occupants: 2,
                in_call: 0
            }]
        );
        let snap = s.room_snapshot(&room).expect("the room exists");
        let nicks: Vec<_> = snap
            .occupants
            .iter()
            .map(|o| (o.nick.as_str(), o.role, o.endpoint))
            .collect();
        assert_eq!(
            nicks,
            vec![
                ("alice", MucRole::Moderator, None),
                ("bob", MucRole::Participant, None)
            ]
        );
        assert!(s
            .room_snapshot(&BareJid::new("nope@conference.localhost").unwrap())
            .is_none());
    }

    #[test]
    fn a_second_session_with_the_same_jid_replaces_the_first() {
        let mut s = server();
        let jid = FullJid::new("a@localhost/x").unwrap();
        s.bound(1, jid.clone());
        s.bound(2, jid);
        let out = outputs(&mut s);
        assert!(out.iter().any(|o| matches!(
            o,
            ServerOutput::Disconnect {
                conn: 1,
                condition: "conflict"
            }
        )));
        assert_eq!(s.sessions(), 1);
    }

    #[test]
    fn jingle_from_a_non_occupant_is_refused_and_from_an_occupant_reaches_the_focus() {
        let mut s = server();
        s.bound(1, FullJid::new("a@localhost/x").unwrap());
        let jingle = "<iq xmlns='jabber:client' from='a@localhost/x' to='r@conference.localhost' type='set' id='j'>\
                      <jingle xmlns='urn:xmpp:jingle:1' action='session-accept' sid='nope'/></iq>";
        s.stanza(1, stanza(jingle));
        let out = outputs(&mut s);
        let e = delivered(&out)[0].1.get_child("error", NS_CLIENT).unwrap();
        assert!(e.has_child("not-acceptable", NS_STANZA_ERRORS));
        s.stanza(1, stanza("<presence xmlns='jabber:client' from='a@localhost/x' to='r@conference.localhost/a'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
        outputs(&mut s);
        s.stanza(1, stanza(jingle));
        let out = outputs(&mut s);
        let e = delivered(&out)[0].1.get_child("error", NS_CLIENT).unwrap();
        assert!(e.has_child("item-not-found", NS_STANZA_ERRORS));
        assert!(e.has_child("unknown-session", NS_JINGLE_ERRORS));
    }
}
