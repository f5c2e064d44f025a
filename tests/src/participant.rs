//! A room participant as docs/PROTOCOL.md describes one: an [`XmppClient`]
//! that joins a room and calls it over Jingle, with a webrtc-rs
//! [`TestPeer`] for the media and Confab's client library
//! (`confab_client`) for the participant's side of the protocol. It answers the bridge's content-add / content-remove /
//! session-terminate as a real client would and records what happened.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use confab_client::call::ParticipantCall;
use confab_client::room::{self, iq, iq_answer};
use confab_client::xmpp::XmppClient;
pub use confab_client::xmpp::{error_condition, nc};
use confab_proto::ns::{NS_CLIENT, NS_JINGLE, NS_JMI};
use minidom::Element;
use xmpp_parsers::jid::BareJid;

use crate::peer::{PeerOptions, TestPeer};

/// How long a participant waits for the room to answer its join.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// What a participant saw.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// Occupants present (nick -> presence), as the room reported them.
    pub occupants: BTreeMap<String, Element>,
    /// Content names of each content-add, in order.
    pub content_adds: Vec<Vec<String>>,
    /// Content names of each content-remove, in order.
    pub content_removes: Vec<Vec<String>>,
    /// `(from nick, body)` of groupchat messages.
    pub chat: Vec<(String, String)>,
    /// MUC status codes (XEP-0045 §15.6) of messages from the room
    /// itself, in order: 170 recording started, 171 stopped, ...
    pub room_statuses: Vec<String>,
    /// The reason of a session-terminate from the bridge.
    pub terminated: Option<String>,
    /// IQ responses to our requests, by id: `(type, the stanza)`.
    pub responses: BTreeMap<String, Element>,
    /// Errors this client met handling the bridge's requests.
    pub problems: Vec<String>,
    /// XEP-0353 `<proceed/>` ids received.
    pub proceeds: Vec<String>,
    /// The room subject, as last announced.
    pub subject: Option<String>,
    /// Messages of type `error` (refused messages and commands).
    pub message_errors: Vec<Element>,
    /// Status codes of our own unavailable presence from the room (307:
    /// kicked).
    pub removed_with: Option<Vec<String>>,
}

/// One participant.
pub struct Participant {
    /// Its XMPP client.
    pub xmpp: XmppClient,
    /// Its WebRTC peer.
    pub peer: TestPeer,
    /// Its nick.
    pub nick: String,
    room: Option<BareJid>,
    call: Option<ParticipantCall>,
    /// What it saw.
    pub seen: Seen,
    next_id: u64,
}

impl Participant {
    /// A participant that has logged in but not joined.
    pub fn new(xmpp: XmppClient, peer: TestPeer, nick: &str) -> Participant {
        Participant {
            xmpp,
            peer,
            nick: nick.to_string(),
            room: None,
            call: None,
            seen: Seen::default(),
            next_id: 0,
        }
    }

    /// A guest (SASL ANONYMOUS) logged in over the XMPP WebSocket of the
    /// Confab whose HTTP front is at `http`, with a peer built from `opts`.
    pub async fn guest_over_websocket(
        http: SocketAddr,
        nick: &str,
        opts: PeerOptions,
    ) -> Participant {
        let ws = format!("ws://{http}/xmpp-websocket");
        let xmpp = XmppClient::connect_ws(&ws, "localhost")
            .await
            .unwrap_or_else(|e| panic!("{nick} logs in over WebSocket: {e}"));
        let peer = TestPeer::new(nick, opts).await;
        Participant::new(xmpp, peer, nick)
    }

    fn id(&mut self) -> String {
        self.next_id += 1;
        format!("{}-{}", self.nick, self.next_id)
    }

    /// The call, once initiated.
    pub fn call(&self) -> Option<&ParticipantCall> {
        self.call.as_ref()
    }

    /// Join `room` (bare JID), with an optional password. Returns the
    /// error condition if the room refused.
    pub async fn join(&mut self, room: &str, password: Option<&str>) -> Result<(), String> {
        let room_jid = BareJid::new(room).map_err(|e| e.to_string())?;
        let seen = room::join(&mut self.xmpp, room, &self.nick, password, JOIN_TIMEOUT)
            .await
            .map_err(|e| e.to_string())?;
        for el in seen {
            self.handle(el).await;
        }
        self.room = Some(room_jid);
        Ok(())
    }

    /// Call the room: session-initiate with the peer's offer, then wait for
    /// the IQ result and the session-accept, and apply the answer.
    pub async fn start_call(&mut self) -> Result<(), String> {
        let room = self.room.clone().ok_or("join first")?;
        let offer = self.peer.create_offer().await;
        let sid = format!("sid-{}-{}", self.nick, rand::random::<u32>());
        let own = self.xmpp.jid().to_string();
        let (call, jingle) = ParticipantCall::initiate(&sid, &own, &room.to_string(), &offer)
            .map_err(|e| e.to_string())?;
        self.call = Some(call);
        let id = self.id();
        self.send_iq(&room.to_string(), &id, jingle).await?;
        let ok = self
            .pump_until(Duration::from_secs(15), |s| {
                s.seen.responses.contains_key(&id)
                    && s.call.as_ref().is_some_and(|c| c.is_accepted())
            })
            .await;
        let result = self
            .seen
            .responses
            .get(&id)
            .map(|r| r.attr("type").unwrap_or("").to_string());
        if result.as_deref() != Some("result") {
            let err = self.seen.responses.get(&id).and_then(error_condition);
            return Err(format!(
                "session-initiate answered {result:?} {err:?}; problems: {:?}",
                self.seen.problems
            ));
        }
        if !ok {
            return Err(format!(
                "no session-accept; problems: {:?}",
                self.seen.problems
            ));
        }
        Ok(())
    }

    /// Send an IQ set with `payload` to `to`.
    pub async fn send_iq(&mut self, to: &str, id: &str, payload: Element) -> Result<(), String> {
        self.send_iq_of("set", to, id, payload).await
    }

    /// Send an IQ of `kind` (`get`/`set`) with `payload` to `to`.
    pub async fn send_iq_of(
        &mut self,
        kind: &str,
        to: &str,
        id: &str,
        payload: Element,
    ) -> Result<(), String> {
        self.xmpp.send(iq(kind, to, id, payload)).await
    }

    /// Send an IQ set and wait for its response.
    pub async fn request(&mut self, to: &str, payload: Element) -> Result<Element, String> {
        self.request_of("set", to, payload).await
    }

    /// Send an IQ of `kind` and wait for its response.
    pub async fn request_of(
        &mut self,
        kind: &str,
        to: &str,
        payload: Element,
    ) -> Result<Element, String> {
        let id = self.id();
        self.send_iq_of(kind, to, &id, payload).await?;
        if !self
            .pump_until(Duration::from_secs(10), |s| {
                s.seen.responses.contains_key(&id)
            })
            .await
        {
            return Err("no response".into());
        }
        self.seen
            .responses
            .remove(&id)
            .ok_or_else(|| "no response".into())
    }

    /// Send a groupchat message to the room.
    pub async fn say(&mut self, body: &str) -> Result<(), String> {
        let room = self.room.clone().ok_or("join first")?;
        self.xmpp
            .send(room::groupchat(&room.to_string(), body))
            .await
    }

    /// Set the room subject (moderators only).
    pub async fn set_subject(&mut self, subject: &str) -> Result<(), String> {
        let room = self.room.clone().ok_or("join first")?;
        let msg = Element::builder("message", NS_CLIENT)
            .attr(nc("to"), room.to_string())
            .attr(nc("type"), "groupchat")
            .append(
                Element::builder("subject", NS_CLIENT)
                    .append(subject)
                    .build(),
            )
            .build();
        self.xmpp.send(msg).await
    }

    /// Kick `nick` from the room (XEP-0045 §8.2); returns the IQ response.
    pub async fn kick(&mut self, nick: &str) -> Result<Element, String> {
        let room = self.room.clone().ok_or("join first")?;
        let admin = "http://jabber.org/protocol/muc#admin";
        let query = Element::builder("query", admin)
            .append(
                Element::builder("item", admin)
                    .attr(nc("nick"), nick)
                    .attr(nc("role"), "none")
                    .build(),
            )
            .build();
        self.request(&room.to_string(), query).await
    }

    /// XEP-0353: propose a call with `sid` to the room.
    pub async fn propose(&mut self, sid: &str) -> Result<(), String> {
        let room = self.room.clone().ok_or("join first")?;
        let msg = Element::builder("message", NS_CLIENT)
            .attr(nc("to"), room.to_string())
            .append(
                Element::builder("propose", NS_JMI)
                    .attr(nc("id"), sid)
                    .append(
                        Element::builder("description", "urn:xmpp:jingle:apps:rtp:1")
                            .attr(nc("media"), "video")
                            .build(),
                    )
                    .build(),
            )
            .build();
        self.xmpp.send(msg).await
    }

    /// End the call with `session-terminate` (`<success/>`).
    pub async fn hang_up(&mut self) -> Result<(), String> {
        let call = self.call.as_mut().ok_or("no call")?;
        let jingle = call.terminate(xmpp_parsers::jingle::Reason::Success);
        let room = call.room_jid().to_string();
        let reply = self.request(&room, jingle).await?;
        match reply.attr("type") {
            Some("result") => Ok(()),
            _ => Err(format!(
                "session-terminate refused: {}",
                String::from(&reply)
            )),
        }
    }

    /// Leave the room.
    pub async fn leave(&mut self) -> Result<(), String> {
        let room = self.room.take().ok_or("not in a room")?;
        self.xmpp
            .send(room::leave_presence(&room.to_string(), &self.nick))
            .await
    }

    /// Handle incoming stanzas for `duration`.
    pub async fn pump(&mut self, duration: Duration) {
        self.pump_until(duration, |_| false).await;
    }

    /// Handle incoming stanzas until `done` holds or `timeout` passes;
    /// returns whether `done` held.
    pub async fn pump_until(
        &mut self,
        timeout: Duration,
        done: impl Fn(&Participant) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if done(self) {
                return true;
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            match self.xmpp.recv(left.min(Duration::from_millis(100))).await {
                Ok(Some(el)) => self.handle(el).await,
                Ok(None) => {}
                Err(e) => {
                    self.seen.problems.push(e);
                    return done(self);
                }
            }
        }
    }

    async fn handle(&mut self, el: Element) {
        match el.name() {
            "presence" => {
                let Some(from) = el.attr("from") else { return };
                let Some((_, nick)) = from.split_once('/') else {
                    return;
                };
                if el.attr("type") == Some("unavailable") {
                    self.seen.occupants.remove(nick);
                    if nick == self.nick {
                        self.seen.removed_with = Some(room::status_codes(&el));
                    }
                } else if el.attr("type").is_none() {
                    self.seen.occupants.insert(nick.to_string(), el.clone());
                }
            }
            "message" => {
                if let Some(p) = el.get_child("proceed", NS_JMI) {
                    self.seen
                        .proceeds
                        .push(p.attr("id").unwrap_or("").to_string());
                }
                if el.attr("type") == Some("error") {
                    self.seen.message_errors.push(el.clone());
                }
                if el.attr("type") == Some("groupchat") {
                    if let Some(subject) = el.get_child("subject", NS_CLIENT) {
                        self.seen.subject = Some(subject.text());
                    }
                    if let (Some(from), Some(body)) =
                        (el.attr("from"), el.get_child("body", NS_CLIENT))
                    {
                        let nick = from.split_once('/').map(|(_, n)| n).unwrap_or("");
                        self.seen.chat.push((nick.to_string(), body.text()));
                    }
                    if el.attr("from").is_some_and(|f| !f.contains('/')) {
                        self.seen.room_statuses.extend(room::status_codes(&el));
                    }
                }
            }
            "iq" => match el.attr("type") {
                Some("result" | "error") => {
                    if let Some(id) = el.attr("id") {
                        self.seen.responses.insert(id.to_string(), el.clone());
                    }
                }
                Some("set") => self.bridge_request(el).await,
                _ => {}
            },
            _ => {}
        }
    }

    async fn reply(&mut self, request: &Element) {
        let _ = self.xmpp.send(iq_answer(request, None)).await;
    }

    async fn bridge_request(&mut self, iq: Element) {
        let Some(jingle) = iq.get_child("jingle", NS_JINGLE).cloned() else {
            return;
        };
        let action = jingle.attr("action").unwrap_or("").to_string();
        self.reply(&iq).await;
        let Some(call) = self.call.as_mut() else {
            self.seen.problems.push(format!("{action} without a call"));
            return;
        };
        match action.as_str() {
            "session-accept" => match call.on_session_accept(&jingle) {
                Ok(answer) => self.peer.apply_answer(answer).await,
                Err(e) => self.seen.problems.push(format!("session-accept: {e}")),
            },
            "content-add" => {
                let offer = match call.on_content_add(&jingle) {
                    Ok(o) => o,
                    Err(e) => return self.seen.problems.push(format!("content-add: {e}")),
                };
                let answer = self.peer.apply_remote_offer(offer.sdp).await;
                let Some(call) = self.call.as_mut() else {
                    return;
                };
                match call.content_accept(&answer) {
                    Ok(accept) => {
                        self.seen.content_adds.push(offer.contents);
                        let room = call.room_jid().to_string();
                        let id = self.id();
                        if let Err(e) = self.send_iq(&room, &id, accept).await {
                            self.seen
                                .problems
                                .push(format!("sending content-accept: {e}"));
                        }
                    }
                    Err(e) => self.seen.problems.push(format!("content-accept: {e}")),
                }
            }
            "content-remove" => match call.on_content_remove(&jingle) {
                Ok(offer) => {
                    self.seen.content_removes.push(offer.contents.clone());
                    let _ = self.peer.apply_remote_offer(offer.sdp).await;
                }
                Err(e) => self.seen.problems.push(format!("content-remove: {e}")),
            },
            "session-terminate" => {
                let reason = jingle.get_child("reason", NS_JINGLE).and_then(|r| {
                    r.children()
                        .find(|c| c.name() != "text")
                        .map(|c| c.name().to_string())
                });
                let _ = call.on_session_terminate(&jingle);
                self.seen.terminated = Some(reason.unwrap_or_default());
            }
            other => self.seen.problems.push(format!("unexpected {other}")),
        }
    }
}
