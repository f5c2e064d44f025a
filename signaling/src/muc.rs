//! XEP-0045 conference rooms at `conference.<domain>`, sans-IO.
//!
//! Rooms are created by their first occupant and destroyed when the last
//! one leaves. The room's creator is its owner and a moderator (and may
//! kick); everyone else is a participant. Rooms are semi-anonymous: real
//! JIDs are shown to moderators only. A password given by the creator in its
//! join presence protects the room. Supported: join and leave, occupant
//! presence to all (with whatever payloads the occupant's own presence
//! carries, e.g. a client's mute state), nick conflicts, groupchat
//! messages, the subject (moderators set it), private messages, kick.
//!
//! Not here: room configuration forms, persistent rooms, message history,
//! nick changes, bans (all refused with the XEP's error). Jingle sessions
//! with the room are the focus's business ([`crate::focus`]); this module
//! reports joins and leaves so the focus can follow them.

use std::collections::HashMap;

use minidom::Element;
use xmpp_parsers::jid::{BareJid, DomainPart, FullJid, Jid, NodePart};

use crate::stanza::*;

/// Bounds that keep one client from growing the server without limit.
#[derive(Debug, Clone, Copy)]
pub struct MucLimits {
    /// Rooms on the service.
    pub max_rooms: usize,
    /// Occupants in one room (at most the protocol's
    /// `confab_proto::limits::MAX_OCCUPANTS`, which every session's
    /// content limit is sized for).
    pub max_occupants: usize,
    /// Payload elements kept from an occupant's presence.
    pub max_presence_payloads: usize,
    /// Bytes of a subject.
    pub max_subject_bytes: usize,
}

impl Default for MucLimits {
    fn default() -> Self {
        MucLimits {
            max_rooms: 10_000,
            max_occupants: confab_proto::limits::MAX_OCCUPANTS,
            max_presence_payloads: 16,
            max_subject_bytes: 1024,
        }
    }
}

/// An occupant's role (XEP-0045 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MucRole {
    /// May kick and set the subject.
    Moderator,
    /// May speak.
    Participant,
}

impl MucRole {
    /// The role as XEP-0045 spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            MucRole::Moderator => "moderator",
            MucRole::Participant => "participant",
        }
    }
}

/// One occupant.
#[derive(Debug, Clone)]
pub struct Occupant {
    /// Room nickname.
    pub nick: String,
    /// Real JID.
    pub jid: FullJid,
    /// Role.
    pub role: MucRole,
    /// Whether this occupant created the room (affiliation owner).
    pub owner: bool,
    /// Payloads of its last presence (besides the MUC ones).
    payloads: Vec<Element>,
}

struct Room {
    occupants: Vec<Occupant>,
    subject: String,
    password: Option<String>,
    /// Being recorded: newcomers are told with status 170.
    recording: bool,
}

/// What the rooms want done.
#[derive(Debug, Clone, PartialEq)]
pub enum MucEvent {
    /// Deliver this stanza (its `to` is a local full JID).
    Send(Element),
    /// Someone joined a room.
    Joined {
        /// The room.
        room: BareJid,
        /// Its nickname.
        nick: String,
        /// Its real JID.
        jid: FullJid,
    },
    /// Someone left a room (left, kicked or disconnected).
    Left {
        /// The room.
        room: BareJid,
        /// Its nickname.
        nick: String,
        /// Its real JID.
        jid: FullJid,
    },
    /// The room's last occupant left; the room is gone.
    Destroyed(BareJid),
    /// A moderator asked to start or stop recording the room (a groupchat
    /// message `/record start` or `/record stop`; see [`record_command`]).
    Record {
        /// The room.
        room: BareJid,
        /// The moderator's nickname.
        nick: String,
        /// Its real JID.
        jid: FullJid,
        /// Start (`true`) or stop.
        start: bool,
    },
}

/// A groupchat body that is a recording command: `Some(Ok(start))` for
/// `/record start` and `/record stop`, `Some(Err(()))` for another
/// `/record ...`, `None` for a message that is no command.
pub fn record_command(body: &str) -> Option<Result<bool, ()>> {
    let mut words = body.split_whitespace();
    if words.next() != Some("/record") {
        return None;
    }
    Some(match (words.next(), words.next()) {
        (Some("start"), None) => Ok(true),
        (Some("stop"), None) => Ok(false),
        _ => Err(()),
    })
}

/// The MUC service.
pub struct Muc {
    service: String,
    limits: MucLimits,
    rooms: HashMap<BareJid, Room>,
}

/// The MUC service of `domain`: `conference.<domain>`.
pub fn service_domain(domain: &str) -> String {
    format!("conference.{domain}")
}

/// The room called `name` (the node of `name@service`), normalised as
/// XMPP normalises localparts (nodeprep: case folded, and `@ / : < > & ' "`
/// and spaces refused). `None` when `name` is no valid room name.
pub fn room_jid(service: &str, name: &str) -> Option<BareJid> {
    let node = NodePart::new(name).ok()?;
    let domain = DomainPart::new(service).ok()?;
    Some(BareJid::from_parts(Some(&node), &domain))
}

impl Muc {
    /// A service at `service` (e.g. `conference.localhost`).
    pub fn new(service: &str, limits: MucLimits) -> Muc {
        Muc {
            service: service.to_string(),
            limits,
            rooms: HashMap::new(),
        }
    }

    /// The service's domain.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// How many rooms exist.
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// Names of the rooms that exist.
    pub fn rooms(&self) -> impl Iterator<Item = &BareJid> {
        self.rooms.keys()
    }

    /// The occupants of `room`, in join order.
    pub fn occupants(&self, room: &BareJid) -> &[Occupant] {
        self.rooms
            .get(room)
            .map(|r| r.occupants.as_slice())
            .unwrap_or(&[])
    }

    /// The subject of `room` (empty if none was set); `None` if there is
    /// no such room.
    pub fn subject(&self, room: &BareJid) -> Option<&str> {
        self.rooms.get(room).map(|r| r.subject.as_str())
    }

    /// The occupant of `room` whose real JID is `jid`.
    pub fn occupant(&self, room: &BareJid, jid: &FullJid) -> Option<&Occupant> {
        self.rooms
            .get(room)?
            .occupants
            .iter()
            .find(|o| &o.jid == jid)
    }

    /// A presence addressed to the service's domain.
    pub fn presence(&mut self, from: &FullJid, to: &Jid, el: &Element, out: &mut Vec<MucEvent>) {
        if is_error(el) {
            // An occupant's client bounced something we sent; nothing to do.
            return;
        }
        let room = to.to_bare();
        let Some(nick) = to.resource().map(|r| r.to_string()) else {
            out.push(MucEvent::Send(error_reply(
                el,
                to.as_str(),
                &StanzaError::new(ErrorType::Modify, "jid-malformed")
                    .with_text("join with room@service/nick"),
            )));
            return;
        };
        match el.attr("type") {
            None => self.available(from, &room, &nick, el, out),
            Some("unavailable") => self.leave(from, &room, el, out),
            Some(_) => {}
        }
    }

    fn available(
        &mut self,
        from: &FullJid,
        room_jid: &BareJid,
        nick: &str,
        el: &Element,
        out: &mut Vec<MucEvent>,
    ) {
        let occupant_jid = format!("{room_jid}/{nick}");
        let payloads: Vec<Element> = el
            .children()
            .filter(|c| !c.is("x", NS_MUC) && !c.is("x", NS_MUC_USER))
            .take(self.limits.max_presence_payloads)
            .cloned()
            .collect();
        let refuse = |out: &mut Vec<MucEvent>, err: StanzaError| {
            out.push(MucEvent::Send(error_reply(el, &occupant_jid, &err)));
        };
        if let Some(room) = self.rooms.get_mut(room_jid) {
            if let Some(me) = room.occupants.iter_mut().find(|o| &o.jid == from) {
                if me.nick != nick {
                    return refuse(
                        out,
                        StanzaError::new(ErrorType::Modify, "not-acceptable")
                            .with_text("nick changes are not supported"),
                    );
                }
                // A presence update: broadcast it.
                me.payloads = payloads;
                let me = me.clone();
                broadcast_presence(room_jid, room, &me, false, &[], out);
                return;
            }
            if room.occupants.iter().any(|o| o.nick == nick) {
                return refuse(
                    out,
                    StanzaError::new(ErrorType::Cancel, "conflict")
                        .with_text("that nickname is taken"),
                );
            }
            if let Some(pw) = &room.password {
                let given = el
                    .get_child("x", NS_MUC)
                    .and_then(|x| x.get_child("password", NS_MUC))
                    .map(|p| p.text());
                if given.as_deref() != Some(pw.as_str()) {
                    return refuse(
                        out,
                        StanzaError::new(ErrorType::Auth, "not-authorized")
                            .with_text("this room needs a password"),
                    );
                }
            }
            if room.occupants.len() >= self.limits.max_occupants {
                return refuse(
                    out,
                    StanzaError::new(ErrorType::Wait, "service-unavailable")
                        .with_text("the room is full"),
                );
            }
        } else {
            if el.get_child("x", NS_MUC).is_none() {
                // XEP-0045 §7.2.1: a presence without <x/> to a room that
                // does not exist is not a join.
                return refuse(out, StanzaError::new(ErrorType::Cancel, "item-not-found"));
            }
            if self.rooms.len() >= self.limits.max_rooms {
                return refuse(
                    out,
                    StanzaError::new(ErrorType::Wait, "resource-constraint")
                        .with_text("too many rooms"),
                );
            }
            let password = el
                .get_child("x", NS_MUC)
                .and_then(|x| x.get_child("password", NS_MUC))
                .map(|p| p.text())
                .filter(|p| !p.is_empty());
            self.rooms.insert(
                room_jid.clone(),
                Room {
                    occupants: Vec::new(),
                    subject: String::new(),
                    password,
                    recording: false,
                },
            );
        }
        let Some(room) = self.rooms.get_mut(room_jid) else {
            return;
        };
        let created = room.occupants.is_empty();
        let me = Occupant {
            nick: nick.to_string(),
            jid: from.clone(),
            role: if created {
                MucRole::Moderator
            } else {
                MucRole::Participant
            },
            owner: created,
            payloads,
        };
        // Everyone already there, to the newcomer.
        for o in &room.occupants {
            out.push(MucEvent::Send(occupant_presence(
                room_jid,
                o,
                from,
                me.role == MucRole::Moderator,
                &[],
                false,
            )));
        }
        room.occupants.push(me.clone());
        let mut own_codes = vec![110];
        if created {
            own_codes.push(201);
        }
        if room.recording {
            // XEP-0045 §10.1.4: room logging is enabled.
            own_codes.push(170);
        }
        if room.password.is_none() {
            // Nothing to add: status codes for config are only sent on change.
        }
        broadcast_presence(room_jid, room, &me, false, &own_codes, out);
        // The subject (possibly empty) ends the join (XEP-0045 §7.2.15).
        let subject = Element::builder("message", NS_CLIENT)
            .attr(nc!("type"), "groupchat")
            .attr(nc!("from"), room_jid.to_string())
            .attr(nc!("to"), from.to_string())
            .append(
                Element::builder("subject", NS_CLIENT)
                    .append(room.subject.clone())
                    .build(),
            )
            .build();
        out.push(MucEvent::Send(subject));
        out.push(MucEvent::Joined {
            room: room_jid.clone(),
            nick: nick.to_string(),
            jid: from.clone(),
        });
    }

    fn leave(&mut self, from: &FullJid, room_jid: &BareJid, el: &Element, out: &mut Vec<MucEvent>) {
        let status = el.get_child("status", NS_CLIENT).map(|s| s.text());
        self.remove(room_jid, from, &[], status, out);
    }

    /// Remove `jid` from `room_jid`, telling everyone (and it) with the
    /// given extra status codes.
    fn remove(
        &mut self,
        room_jid: &BareJid,
        jid: &FullJid,
        codes: &[u16],
        status: Option<String>,
        out: &mut Vec<MucEvent>,
    ) {
        let Some(room) = self.rooms.get_mut(room_jid) else {
            return;
        };
        let Some(pos) = room.occupants.iter().position(|o| &o.jid == jid) else {
            return;
        };
        let mut gone = room.occupants.remove(pos);
        gone.payloads.clear();
        if let Some(s) = status {
            gone.payloads
                .push(Element::builder("status", NS_CLIENT).append(s).build());
        }
        let mut own = vec![110];
        own.extend_from_slice(codes);
        out.push(MucEvent::Send(occupant_presence(
            room_jid, &gone, &gone.jid, false, &own, true,
        )));
        for o in &room.occupants {
            out.push(MucEvent::Send(occupant_presence(
                room_jid,
                &gone,
                &o.jid,
                o.role == MucRole::Moderator,
                codes,
                true,
            )));
        }
        out.push(MucEvent::Left {
            room: room_jid.clone(),
            nick: gone.nick.clone(),
            jid: gone.jid.clone(),
        });
        if room.occupants.is_empty() {
            self.rooms.remove(room_jid);
            out.push(MucEvent::Destroyed(room_jid.clone()));
        }
    }

    /// The session `jid` ended: it leaves every room.
    pub fn disconnected(&mut self, jid: &FullJid, out: &mut Vec<MucEvent>) {
        let rooms: Vec<BareJid> = self
            .rooms
            .iter()
            .filter(|(_, r)| r.occupants.iter().any(|o| &o.jid == jid))
            .map(|(k, _)| k.clone())
            .collect();
        for room in rooms {
            self.remove(&room, jid, &[], Some("disconnected".into()), out);
        }
    }

    /// A message addressed to the service's domain.
    pub fn message(&mut self, from: &FullJid, to: &Jid, el: &Element, out: &mut Vec<MucEvent>) {
        if is_error(el) {
            return;
        }
        let room_jid = to.to_bare();
        let reply_from = to.to_string();
        let refuse = |out: &mut Vec<MucEvent>, err: StanzaError| {
            out.push(MucEvent::Send(error_reply(el, &reply_from, &err)))
        };
        let Some(room) = self.rooms.get_mut(&room_jid) else {
            return refuse(out, StanzaError::new(ErrorType::Cancel, "item-not-found"));
        };
        let Some(sender) = room.occupants.iter().find(|o| &o.jid == from).cloned() else {
            return refuse(
                out,
                StanzaError::new(ErrorType::Modify, "not-acceptable")
                    .with_text("join the room first"),
            );
        };
        let sender_addr = format!("{room_jid}/{}", sender.nick);
        if let Some(nick) = to.resource() {
            // A private message to one occupant.
            let Some(target) = room.occupants.iter().find(|o| o.nick == nick.as_str()) else {
                return refuse(out, StanzaError::new(ErrorType::Cancel, "item-not-found"));
            };
            out.push(MucEvent::Send(readdress(el, &sender_addr, &target.jid)));
            return;
        }
        if el.attr("type") != Some("groupchat") {
            return refuse(
                out,
                StanzaError::new(ErrorType::Modify, "bad-request")
                    .with_text("use type='groupchat'"),
            );
        }
        if let Some(subject) = el.get_child("subject", NS_CLIENT) {
            if sender.role != MucRole::Moderator {
                return refuse(
                    out,
                    StanzaError::new(ErrorType::Auth, "forbidden")
                        .with_text("only moderators set the subject"),
                );
            }
            let text = subject.text();
            if text.len() > self.limits.max_subject_bytes {
                return refuse(
                    out,
                    StanzaError::new(ErrorType::Modify, "not-acceptable")
                        .with_text("subject too long"),
                );
            }
            room.subject = text;
        }
        let body = el
            .get_child("body", NS_CLIENT)
            .map(|b| b.text())
            .unwrap_or_default();
        match record_command(&body) {
            None => {}
            Some(Err(())) => {
                return refuse(
                    out,
                    StanzaError::bad_request("use /record start or /record stop"),
                );
            }
            Some(Ok(_)) if sender.role != MucRole::Moderator => {
                return refuse(
                    out,
                    StanzaError::new(ErrorType::Auth, "forbidden")
                        .with_text("only moderators may start or stop recording"),
                );
            }
            Some(Ok(start)) => {
                out.push(MucEvent::Record {
                    room: room_jid,
                    nick: sender.nick,
                    jid: sender.jid,
                    start,
                });
                return;
            }
        }
        for o in &room.occupants {
            out.push(MucEvent::Send(readdress(el, &sender_addr, &o.jid)));
        }
    }

    /// An IQ to the service or a room that is not Jingle: disco and kick.
    /// Returns the reply.
    pub fn iq(&mut self, from: &FullJid, to: &Jid, el: &Element, out: &mut Vec<MucEvent>) {
        let answering = to.to_string();
        let kind = el.attr("type").unwrap_or("");
        if !matches!(kind, "get" | "set") {
            return; // results and errors to a room: nothing asked for them
        }
        let Some(payload) = iq_payload(el) else {
            out.push(MucEvent::Send(error_reply(
                el,
                &answering,
                &StanzaError::bad_request("one payload per IQ"),
            )));
            return;
        };
        let room_jid = to.to_bare();
        let is_service = to.node().is_none();
        if kind == "get" && payload.is("query", NS_DISCO_INFO) && to.resource().is_none() {
            let info = if is_service {
                disco_info(
                    "conference",
                    "text",
                    "Confab conferences",
                    &[NS_MUC, NS_DISCO_INFO, NS_DISCO_ITEMS],
                )
            } else if let Some(room) = self.rooms.get(&room_jid) {
                let secured = if room.password.is_some() {
                    "muc_passwordprotected"
                } else {
                    "muc_unsecured"
                };
                disco_info(
                    "conference",
                    "text",
                    room_jid.node().map(|n| n.as_str()).unwrap_or(""),
                    &[
                        NS_MUC,
                        NS_DISCO_INFO,
                        secured,
                        "muc_semianonymous",
                        "muc_temporary",
                        "muc_open",
                        NS_JINGLE,
                        NS_JMI,
                    ],
                )
            } else {
                out.push(MucEvent::Send(error_reply(
                    el,
                    &answering,
                    &StanzaError::new(ErrorType::Cancel, "item-not-found"),
                )));
                return;
            };
            out.push(MucEvent::Send(iq_result_with(el, &answering, Some(info))));
            return;
        }
        if kind == "get" && payload.is("query", NS_DISCO_ITEMS) && to.resource().is_none() {
            let mut q = Element::builder("query", NS_DISCO_ITEMS);
            if is_service {
                for jid in self.rooms.keys().take(1000) {
                    q = q.append(
                        Element::builder("item", NS_DISCO_ITEMS)
                            .attr(nc!("jid"), jid.to_string())
                            .build(),
                    );
                }
            }
            out.push(MucEvent::Send(iq_result_with(
                el,
                &answering,
                Some(q.build()),
            )));
            return;
        }
        if kind == "set"
            && payload.is("query", NS_MUC_ADMIN)
            && !is_service
            && to.resource().is_none()
        {
            self.admin(from, &room_jid, el, payload, out);
            return;
        }
        let err = StanzaError::new(ErrorType::Cancel, "service-unavailable");
        out.push(MucEvent::Send(error_reply(el, &answering, &err)));
    }

    fn admin(
        &mut self,
        from: &FullJid,
        room_jid: &BareJid,
        el: &Element,
        query: &Element,
        out: &mut Vec<MucEvent>,
    ) {
        let answering = room_jid.to_string();
        let refuse = |out: &mut Vec<MucEvent>, err: StanzaError| {
            out.push(MucEvent::Send(error_reply(el, &answering, &err)))
        };
        let Some(room) = self.rooms.get(room_jid) else {
            return refuse(out, StanzaError::new(ErrorType::Cancel, "item-not-found"));
        };
        let Some(actor) = room.occupants.iter().find(|o| &o.jid == from) else {
            return refuse(out, StanzaError::new(ErrorType::Auth, "forbidden"));
        };
        let mut items = query.children().filter(|c| c.is("item", NS_MUC_ADMIN));
        let (Some(item), None) = (items.next(), items.next()) else {
            return refuse(out, StanzaError::bad_request("one <item/> per request"));
        };
        if item.attr("role") != Some("none") {
            return refuse(
                out,
                StanzaError::new(ErrorType::Cancel, "feature-not-implemented")
                    .with_text("only kicking (role='none') is supported"),
            );
        }
        if actor.role != MucRole::Moderator {
            return refuse(
                out,
                StanzaError::new(ErrorType::Auth, "forbidden")
                    .with_text("only moderators may kick"),
            );
        }
        let Some(nick) = item.attr("nick") else {
            return refuse(out, StanzaError::bad_request("kick needs a nick"));
        };
        let Some(target) = room.occupants.iter().find(|o| o.nick == nick) else {
            return refuse(out, StanzaError::new(ErrorType::Cancel, "item-not-found"));
        };
        if target.owner || target.jid == *from {
            return refuse(
                out,
                StanzaError::new(ErrorType::Cancel, "not-allowed")
                    .with_text("the owner cannot be kicked"),
            );
        }
        let target = target.jid.clone();
        let reason = item.get_child("reason", NS_MUC_ADMIN).map(|r| r.text());
        out.push(MucEvent::Send(iq_result(el, &answering)));
        self.remove(room_jid, &target, &[307], reason, out);
    }
}

impl Muc {
    /// A message from the room itself (no nick) to every occupant, with
    /// XEP-0045 status `codes` (e.g. 170: the room is being recorded).
    pub fn announce(&self, room_jid: &BareJid, body: &str, codes: &[u16], out: &mut Vec<MucEvent>) {
        let Some(room) = self.rooms.get(room_jid) else {
            return;
        };
        for o in &room.occupants {
            out.push(MucEvent::Send(room_message(room_jid, &o.jid, body, codes)));
        }
    }

    /// Whether `room_jid` is being recorded, for those who join later.
    pub fn set_recording(&mut self, room_jid: &BareJid, on: bool) {
        if let Some(room) = self.rooms.get_mut(room_jid) {
            room.recording = on;
        }
    }

    /// A message from the room itself to one occupant (`to`).
    pub fn tell(&self, room_jid: &BareJid, to: &FullJid, body: &str, out: &mut Vec<MucEvent>) {
        if self.occupant(room_jid, to).is_some() {
            out.push(MucEvent::Send(room_message(room_jid, to, body, &[])));
        }
    }
}

fn room_message(room_jid: &BareJid, to: &FullJid, body: &str, codes: &[u16]) -> Element {
    let mut m = Element::builder("message", NS_CLIENT)
        .attr(nc!("from"), room_jid.to_string())
        .attr(nc!("to"), to.to_string())
        .attr(nc!("type"), "groupchat")
        .append(Element::builder("body", NS_CLIENT).append(body).build());
    if !codes.is_empty() {
        let mut x = Element::builder("x", NS_MUC_USER);
        for c in codes {
            x = x.append(
                Element::builder("status", NS_MUC_USER)
                    .attr(nc!("code"), c.to_string())
                    .build(),
            );
        }
        m = m.append(x.build());
    }
    m.build()
}

/// Send `who`'s presence to every occupant (with `own_codes` on the copy
/// that goes to `who` itself).
fn broadcast_presence(
    room_jid: &BareJid,
    room: &Room,
    who: &Occupant,
    unavailable: bool,
    own_codes: &[u16],
    out: &mut Vec<MucEvent>,
) {
    for o in &room.occupants {
        let codes: &[u16] = if o.jid == who.jid { own_codes } else { &[] };
        out.push(MucEvent::Send(occupant_presence(
            room_jid,
            who,
            &o.jid,
            o.role == MucRole::Moderator,
            codes,
            unavailable,
        )));
    }
}

/// `who`'s presence as `to` sees it.
fn occupant_presence(
    room_jid: &BareJid,
    who: &Occupant,
    to: &FullJid,
    show_jid: bool,
    codes: &[u16],
    unavailable: bool,
) -> Element {
    let mut item = Element::builder("item", NS_MUC_USER)
        .attr(nc!("affiliation"), if who.owner { "owner" } else { "none" })
        .attr(
            nc!("role"),
            if unavailable {
                "none"
            } else {
                who.role.as_str()
            },
        );
    if show_jid || &who.jid == to {
        item = item.attr(nc!("jid"), who.jid.to_string());
    }
    let mut x = Element::builder("x", NS_MUC_USER).append(item.build());
    for c in codes {
        x = x.append(
            Element::builder("status", NS_MUC_USER)
                .attr(nc!("code"), c.to_string())
                .build(),
        );
    }
    let mut p = Element::builder("presence", NS_CLIENT)
        .attr(nc!("from"), format!("{room_jid}/{}", who.nick))
        .attr(nc!("to"), to.to_string());
    if unavailable {
        p = p.attr(nc!("type"), "unavailable");
    }
    for payload in &who.payloads {
        p = p.append(payload.clone());
    }
    p.append(x.build()).build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jid(s: &str) -> FullJid {
        FullJid::new(s).unwrap()
    }

    fn join(muc: &mut Muc, who: &str, room_nick: &str, password: Option<&str>) -> Vec<MucEvent> {
        let mut x = Element::builder("x", NS_MUC);
        if let Some(p) = password {
            x = x.append(Element::builder("password", NS_MUC).append(p).build());
        }
        let p = Element::builder("presence", NS_CLIENT)
            .attr(nc!("from"), who)
            .attr(nc!("to"), room_nick)
            .append(x.build())
            .build();
        let mut out = vec![];
        muc.presence(&jid(who), &Jid::new(room_nick).unwrap(), &p, &mut out);
        out
    }

    fn sent(out: &[MucEvent]) -> Vec<&Element> {
        out.iter()
            .filter_map(|e| match e {
                MucEvent::Send(el) => Some(el),
                _ => None,
            })
            .collect()
    }

    fn error_condition(out: &[MucEvent]) -> Option<String> {
        sent(out)
            .iter()
            .find(|e| e.attr("type") == Some("error"))
            .and_then(|e| {
                e.get_child("error", NS_CLIENT)?
                    .children()
                    .find(|c| c.ns() == NS_STANZA_ERRORS && c.name() != "text")
                    .map(|c| c.name().to_string())
            })
    }

    #[test]
    fn room_names_follow_the_localpart_rules() {
        let svc = service_domain("localhost");
        assert_eq!(svc, "conference.localhost");
        assert_eq!(
            room_jid(&svc, "standup").map(|j| j.to_string()).as_deref(),
            Some("standup@conference.localhost")
        );
        assert_eq!(
            room_jid(&svc, "StandUp").map(|j| j.to_string()).as_deref(),
            Some("standup@conference.localhost")
        );
        assert!(room_jid(&svc, "café.2024_q1-plan").is_some());
        for bad in [
            "",
            "a@b",
            "a/b",
            "a:b",
            "a b",
            "<x>",
            "a'b",
            "a\"b",
            "a&b",
            &"x".repeat(1024),
        ] {
            assert!(room_jid(&svc, bad).is_none(), "{bad:?} is no room name");
        }
    }

    #[test]
    fn join_sees_others_then_self_with_110_then_subject() {
        let mut muc = Muc::new("conference.localhost", MucLimits::default());
        let out = join(
            &mut muc,
            "a@localhost/1",
            "r@conference.localhost/alice",
            None,
        );
        let s = sent(&out);
        assert_eq!(s.len(), 2, "own presence and subject");
        let x = s[0].get_child("x", NS_MUC_USER).unwrap();
        let codes: Vec<_> = x.children().filter_map(|c| c.attr("code")).collect();
        assert_eq!(codes, ["110", "201"]);
        assert_eq!(
            x.get_child("item", NS_MUC_USER).unwrap().attr("role"),
            Some("moderator")
        );
        assert!(s[1].has_child("subject", NS_CLIENT));

        let out = join(
            &mut muc,
            "b@localhost/1",
            "r@conference.localhost/bob",
            None,
        );
        let s = sent(&out);
        // alice -> bob, bob -> alice, bob -> bob (110), subject -> bob
        assert_eq!(s.len(), 4);
        assert_eq!(s[0].attr("from"), Some("r@conference.localhost/alice"));
        assert_eq!(s[0].attr("to"), Some("b@localhost/1"));
        let to_alice = s
            .iter()
            .find(|e| e.attr("to") == Some("a@localhost/1"))
            .unwrap();
        // alice is a moderator and sees bob's real JID.
        assert_eq!(
            to_alice
                .get_child("x", NS_MUC_USER)
                .unwrap()
                .get_child("item", NS_MUC_USER)
                .unwrap()
                .attr("jid"),
            Some("b@localhost/1")
        );
        assert!(out
            .iter()
            .any(|e| matches!(e, MucEvent::Joined { nick, .. } if nick == "bob")));
    }

    #[test]
    fn nick_conflict_password_and_destroy_when_empty() {
        let mut muc = Muc::new("conference.localhost", MucLimits::default());
        join(
            &mut muc,
            "a@localhost/1",
            "r@conference.localhost/alice",
            Some("pw"),
        );
        let out = join(
            &mut muc,
            "b@localhost/1",
            "r@conference.localhost/alice",
            Some("pw"),
        );
        assert_eq!(error_condition(&out).as_deref(), Some("conflict"));
        let out = join(
            &mut muc,
            "b@localhost/1",
            "r@conference.localhost/bob",
            Some("wrong"),
        );
        assert_eq!(error_condition(&out).as_deref(), Some("not-authorized"));
        let out = join(
            &mut muc,
            "b@localhost/1",
            "r@conference.localhost/bob",
            None,
        );
        assert_eq!(error_condition(&out).as_deref(), Some("not-authorized"));
        let out = join(
            &mut muc,
            "b@localhost/1",
            "r@conference.localhost/bob",
            Some("pw"),
        );
        assert_eq!(error_condition(&out), None);
        assert_eq!(
            muc.occupants(&BareJid::new("r@conference.localhost").unwrap())
                .len(),
            2
        );
        let mut out = vec![];
        muc.disconnected(&jid("a@localhost/1"), &mut out);
        muc.disconnected(&jid("b@localhost/1"), &mut out);
        assert!(out.iter().any(|e| matches!(e, MucEvent::Destroyed(_))));
        assert_eq!(muc.rooms().count(), 0);
        // A new room of that name starts without the password.
        let out = join(
            &mut muc,
            "c@localhost/1",
            "r@conference.localhost/carol",
            None,
        );
        assert_eq!(error_condition(&out), None);
    }

    #[test]
    fn groupchat_reaches_everyone_and_outsiders_are_refused() {
        let mut muc = Muc::new("conference.localhost", MucLimits::default());
        join(
            &mut muc,
            "a@localhost/1",
            "r@conference.localhost/alice",
            None,
        );
        join(
            &mut muc,
            "b@localhost/1",
            "r@conference.localhost/bob",
            None,
        );
        let msg = |from: &str| {
            Element::builder("message", NS_CLIENT)
                .attr(nc!("from"), from)
                .attr(nc!("to"), "r@conference.localhost")
                .attr(nc!("type"), "groupchat")
                .append(Element::builder("body", NS_CLIENT).append("hello").build())
                .build()
        };
        let room = Jid::new("r@conference.localhost").unwrap();
        let mut out = vec![];
        muc.message(
            &jid("b@localhost/1"),
            &room,
            &msg("b@localhost/1"),
            &mut out,
        );
        let s = sent(&out);
        assert_eq!(s.len(), 2);
        assert!(s
            .iter()
            .all(|m| m.attr("from") == Some("r@conference.localhost/bob")));
        let mut out = vec![];
        muc.message(
            &jid("x@localhost/1"),
            &room,
            &msg("x@localhost/1"),
            &mut out,
        );
        assert_eq!(error_condition(&out).as_deref(), Some("not-acceptable"));
    }

    #[test]
    fn only_moderators_record_and_the_room_hears_of_it() {
        let mut muc = Muc::new("conference.localhost", MucLimits::default());
        join(
            &mut muc,
            "a@localhost/1",
            "r@conference.localhost/alice",
            None,
        );
        join(
            &mut muc,
            "b@localhost/1",
            "r@conference.localhost/bob",
            None,
        );
        let msg = |from: &str, body: &str| {
            Element::builder("message", NS_CLIENT)
                .attr(nc!("from"), from)
                .attr(nc!("to"), "r@conference.localhost")
                .attr(nc!("type"), "groupchat")
                .append(Element::builder("body", NS_CLIENT).append(body).build())
                .build()
        };
        let room = Jid::new("r@conference.localhost").unwrap();
        let mut out = vec![];
        muc.message(
            &jid("b@localhost/1"),
            &room,
            &msg("b@localhost/1", "/record start"),
            &mut out,
        );
        assert_eq!(error_condition(&out).as_deref(), Some("forbidden"));
        let mut out = vec![];
        muc.message(
            &jid("a@localhost/1"),
            &room,
            &msg("a@localhost/1", "/record sideways"),
            &mut out,
        );
        assert_eq!(error_condition(&out).as_deref(), Some("bad-request"));
        let mut out = vec![];
        muc.message(
            &jid("a@localhost/1"),
            &room,
            &msg("a@localhost/1", " /record  start "),
            &mut out,
        );
        assert!(sent(&out).is_empty(), "the command is not relayed as chat");
        assert!(
            matches!(&out[..], [MucEvent::Record { nick, start: true, .. }] if nick == "alice")
        );
        let mut out = vec![];
        muc.announce(&room.to_bare(), "recording started", &[170], &mut out);
        let s = sent(&out);
        assert_eq!(s.len(), 2);
        assert!(s
            .iter()
            .all(|m| m.attr("from") == Some("r@conference.localhost")
                && m.get_child("x", NS_MUC_USER)
                    .is_some_and(|x| x.children().any(|c| c.attr("code") == Some("170")))));
        // Someone joining while the room is recorded is told so (170 with 110).
        muc.set_recording(&room.to_bare(), true);
        let out = join(
            &mut muc,
            "c@localhost/1",
            "r@conference.localhost/carol",
            None,
        );
        let own = sent(&out)
            .into_iter()
            .find(|p| {
                p.name() == "presence"
                    && p.attr("to") == Some("c@localhost/1")
                    && p.attr("from") == Some("r@conference.localhost/carol")
            })
            .expect("carol's own presence");
        let codes: Vec<String> = own
            .get_child("x", NS_MUC_USER)
            .map(|x| {
                x.children()
                    .filter_map(|c| c.attr("code").map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            codes.contains(&"110".to_string()) && codes.contains(&"170".to_string()),
            "{codes:?}"
        );
        muc.set_recording(&room.to_bare(), false);
        let out = join(
            &mut muc,
            "d@localhost/1",
            "r@conference.localhost/dave",
            None,
        );
        let own = sent(&out)
            .into_iter()
            .find(|p| {
                p.attr("to") == Some("d@localhost/1")
                    && p.attr("from") == Some("r@conference.localhost/dave")
            })
            .expect("dave's own presence");
        assert!(!own
            .get_child("x", NS_MUC_USER)
            .is_some_and(|x| x.children().any(|c| c.attr("code") == Some("170"))));
    }

    #[test]
    fn moderator_kicks_participant_but_not_the_reverse() {
        let mut muc = Muc::new("conference.localhost", MucLimits::default());
        join(
            &mut muc,
            "a@localhost/1",
            "r@conference.localhost/alice",
            None,
        );
        join(
            &mut muc,
            "b@localhost/1",
            "r@conference.localhost/bob",
            None,
        );
        let kick = |from: &str, nick: &str| {
            Element::builder("iq", NS_CLIENT)
                .attr(nc!("from"), from)
                .attr(nc!("to"), "r@conference.localhost")
                .attr(nc!("type"), "set")
                .attr(nc!("id"), "k")
                .append(
                    Element::builder("query", NS_MUC_ADMIN)
                        .append(
                            Element::builder("item", NS_MUC_ADMIN)
                                .attr(nc!("nick"), nick)
                                .attr(nc!("role"), "none")
                                .build(),
                        )
                        .build(),
                )
                .build()
        };
        let room = Jid::new("r@conference.localhost").unwrap();
        let mut out = vec![];
        muc.iq(
            &jid("b@localhost/1"),
            &room,
            &kick("b@localhost/1", "alice"),
            &mut out,
        );
        assert_eq!(error_condition(&out).as_deref(), Some("forbidden"));
        let mut out = vec![];
        muc.iq(
            &jid("a@localhost/1"),
            &room,
            &kick("a@localhost/1", "bob"),
            &mut out,
        );
        let s = sent(&out);
        assert_eq!(s[0].attr("type"), Some("result"));
        let to_bob = s
            .iter()
            .find(|e| e.attr("to") == Some("b@localhost/1") && e.name() == "presence")
            .unwrap();
        assert_eq!(to_bob.attr("type"), Some("unavailable"));
        let codes: Vec<_> = to_bob
            .get_child("x", NS_MUC_USER)
            .unwrap()
            .children()
            .filter_map(|c| c.attr("code"))
            .collect();
        assert!(
            codes.contains(&"307") && codes.contains(&"110"),
            "{codes:?}"
        );
        assert!(out
            .iter()
            .any(|e| matches!(e, MucEvent::Left { nick, .. } if nick == "bob")));
    }
}
