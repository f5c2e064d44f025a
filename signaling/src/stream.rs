//! One client-to-server XMPP stream, sans-IO: bytes (TCP, RFC 6120) or
//! messages (WebSocket, RFC 7395) in; bytes or messages out, plus what the
//! driver must do (start TLS, register the bound session, route a stanza,
//! close).
//!
//! The negotiation runs: stream header -> STARTTLS (TCP, when TLS is
//! available and the transport is not yet secure) -> SASL -> restart ->
//! resource binding. After binding every stanza is stamped with the
//! session's full JID as `from` (RFC 6120 §8.1.2.1) and handed to the
//! router. Everything the stream refuses ends with the RFC 6120 stream
//! error named for it.
//!
//! The stream's state is one `Phase` enum whose variants carry what
//! that phase needs (the SASL exchange in progress, the authenticated
//! user, the bound JID), so that, say, a bound JID without a login cannot
//! be written down. Whether the transport is confidential is not a phase:
//! it is known from the start (WebSocket over TLS, loopback) or becomes
//! true with STARTTLS, and it decides which mechanisms are offered in every
//! phase after.
//!
//! Randomness comes from the driver: each stream owns a seeded
//! [`StdRng`] (the driver seeds it from the operating system, tests from a
//! number) for its stream ids, generated resource names and what SASL
//! draws ([`crate::auth`]). A test with the same seed sees the same stream.
//!
//! Not here: routing, rooms, Jingle ([`crate::server`]) and sockets
//! ([`crate::net`]).

use std::collections::VecDeque;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use minidom::Element;
use rand::rngs::StdRng;
use rand::Rng;
use xmpp_parsers::jid::FullJid;

use crate::auth::{Accounts, MechanismName, SaslSession, SaslStep};
use crate::stanza::*;
use crate::xml::{parse_frame, Frame, Limits, StreamFramer, XmlError};

/// How many failed SASL attempts a stream gets before it is closed.
const MAX_SASL_FAILURES: u32 = 3;

/// Settings shared by every stream of a server.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// The server's domain.
    pub domain: String,
    /// Parser bounds.
    pub limits: Limits,
    /// Whether STARTTLS can be offered (a certificate is configured).
    pub tls_available: bool,
    /// Refuse SASL on a TCP stream until TLS is up.
    pub require_tls: bool,
    /// Allow ANONYMOUS logins.
    pub allow_anonymous: bool,
    /// The configured accounts.
    pub accounts: Arc<Accounts>,
}

/// How the stream is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// RFC 6120 over TCP: one XML document.
    Tcp,
    /// RFC 7395: one element per WebSocket message.
    WebSocket,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Write this (TCP: bytes of the stream; WebSocket: one text message).
    Data(String),
    /// Flush what was written, then run the TLS handshake as the server
    /// and call [`C2sStream::tls_established`]. Any bytes the peer sent
    /// after `<starttls/>` and before the handshake are discarded.
    StartTls,
    /// The session is bound to this JID: register it with the router.
    Bound(FullJid),
    /// A stanza from the bound session, `from` stamped.
    Stanza(Element),
    /// Close the transport after flushing (the stream has ended).
    Close,
}

/// Where a stream is. A (re)started stream waits in [`Phase::Header`]
/// until the client's header comes; our header goes out in answer, so
/// every phase after `Header` has sent it.
///
/// ```text
/// Header(Login) --header--> Login --<starttls/>--> Tls --handshake--> Header(Login)
///                           Login --SASL success--> Header(Bind) --header--> Bind
///                           Bind --bound--> Established
/// any --close, error, transport gone--> Closed
/// ```
enum Phase {
    /// Waiting for the client's stream header (`<stream:stream>` /
    /// `<open/>`); then the stream goes on to what it holds.
    Header(Next),
    /// Before authentication: STARTTLS and SASL. `sasl` is the exchange in
    /// progress; `failures` counts failed attempts over the whole stream.
    Login {
        sasl: Option<SaslSession>,
        failures: u32,
    },
    /// `<proceed/>` sent; waiting for the driver's TLS handshake.
    Tls { failures: u32 },
    /// Authenticated as `user`: waiting for resource binding.
    Bind { user: String },
    /// Bound to `jid`; stanzas flow.
    Established { jid: FullJid },
    /// Ended.
    Closed,
}

/// What a restarted stream goes on to once the client's header is in.
enum Next {
    /// Not authenticated yet (a new stream, or after STARTTLS).
    Login { failures: u32 },
    /// Authenticated (after SASL): binding comes next.
    Bind { user: String },
}

/// One client-to-server stream.
pub struct C2sStream {
    cfg: Arc<StreamConfig>,
    framing: Framing,
    /// The transport is confidential (TLS, or loopback).
    secure: bool,
    framer: StreamFramer,
    phase: Phase,
    rng: StdRng,
    out: VecDeque<Output>,
}

impl C2sStream {
    /// A new stream. `secure`: the transport is already confidential
    /// (a WebSocket over TLS, or on loopback). `rng`: where the stream's
    /// random ids and SASL's nonces come from (the driver seeds it from
    /// the operating system).
    pub fn new(cfg: Arc<StreamConfig>, framing: Framing, secure: bool, rng: StdRng) -> C2sStream {
        C2sStream {
            framer: StreamFramer::new(cfg.limits),
            cfg,
            framing,
            secure,
            phase: Phase::Header(Next::Login { failures: 0 }),
            rng,
            out: VecDeque::new(),
        }
    }

    /// The bound JID, while the session is bound.
    pub fn jid(&self) -> Option<&FullJid> {
        match &self.phase {
            Phase::Established { jid } => Some(jid),
            _ => None,
        }
    }

    /// Whether the stream has ended.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// Bytes from a TCP peer.
    pub fn feed(&mut self, data: &[u8]) {
        if matches!(self.phase, Phase::Closed | Phase::Tls { .. }) {
            return;
        }
        if let Err(e) = self.framer.feed(data) {
            self.xml_error(e);
            return;
        }
        while let Some(frame) = self.framer.poll() {
            self.frame(frame);
            if matches!(self.phase, Phase::Closed | Phase::Tls { .. }) {
                break;
            }
        }
    }

    /// One message from a WebSocket peer.
    pub fn feed_message(&mut self, message: &[u8]) {
        if self.is_closed() {
            return;
        }
        match parse_frame(&self.cfg.limits, message) {
            Ok(frame) => self.frame(frame),
            Err(e) => self.xml_error(e),
        }
    }

    /// The transport went away without a close.
    pub fn transport_closed(&mut self) {
        self.phase = Phase::Closed;
    }

    /// The TLS handshake completed: the stream restarts.
    pub fn tls_established(&mut self) {
        if let Phase::Tls { failures } = self.phase {
            self.secure = true;
            self.restart(Next::Login { failures });
        }
    }

    /// Send a stanza routed to this session.
    pub fn send(&mut self, stanza: &Element) {
        if matches!(self.phase, Phase::Established { .. }) {
            self.out.push_back(Output::Data(to_xml(stanza)));
        }
    }

    /// End the stream, with a stream error if `condition` is given
    /// (e.g. `conflict` when another session took the resource,
    /// `system-shutdown`).
    pub fn shutdown(&mut self, condition: Option<&str>, text: Option<&str>) {
        if self.is_closed() {
            return;
        }
        if let Some(c) = condition {
            // A stream error is written inside a stream: ours opens first
            // if it has not yet.
            if matches!(self.phase, Phase::Header(_)) {
                self.send_header();
            }
            self.out.push_back(Output::Data(stream_error(c, text)));
            self.end(true);
        } else {
            self.close_stream();
        }
    }

    /// What to do next.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The stream restarts (after STARTTLS or SASL): a new parser, and a
    /// new header from each side.
    fn restart(&mut self, next: Next) {
        self.framer = StreamFramer::new(self.cfg.limits);
        self.phase = Phase::Header(next);
    }

    fn xml_error(&mut self, e: XmlError) {
        tracing::debug!(error = %e, "stream refused");
        self.shutdown(Some(e.condition()), Some(&e.to_string()));
    }

    /// Close the stream: our closing tag if our header went out (every
    /// phase after `Header`), then the transport.
    fn close_stream(&mut self) {
        let header_sent = !matches!(self.phase, Phase::Header(_));
        self.end(header_sent);
    }

    fn end(&mut self, header_sent: bool) {
        if header_sent {
            let close = match self.framing {
                Framing::Tcp => "</stream:stream>".to_string(),
                Framing::WebSocket => format!("<close xmlns='{NS_FRAMING}'/>"),
            };
            self.out.push_back(Output::Data(close));
        }
        self.out.push_back(Output::Close);
        self.phase = Phase::Closed;
    }

    fn frame(&mut self, frame: Frame) {
        let in_header = matches!(self.phase, Phase::Header(_));
        let ws = self.framing == Framing::WebSocket;
        match frame {
            Frame::Close => self.close_stream(),
            Frame::Open(header) if in_header => self.open(&header),
            Frame::Stanza(el) if in_header && ws && el.is("open", NS_FRAMING) => self.open(&el),
            Frame::Stanza(el) if ws && el.is("close", NS_FRAMING) => self.close_stream(),
            _ if in_header => {
                self.shutdown(Some("not-well-formed"), Some("expected the stream header"))
            }
            Frame::Open(_) => {
                self.shutdown(Some("not-well-formed"), Some("unexpected stream header"))
            }
            Frame::Stanza(el) => match self.phase {
                Phase::Login { .. } | Phase::Bind { .. } => self.negotiate(el),
                Phase::Established { .. } => self.established(el),
                Phase::Header(_) | Phase::Tls { .. } | Phase::Closed => {}
            },
        }
    }

    fn open(&mut self, header: &Element) {
        let ok_ns = match self.framing {
            Framing::Tcp => header.is("stream", NS_STREAM),
            Framing::WebSocket => header.is("open", NS_FRAMING),
        };
        if !ok_ns {
            self.shutdown(Some("invalid-namespace"), None);
            return;
        }
        // Our header answers the client's, whatever follows; the stream
        // goes on to what the restart held.
        self.send_header();
        self.phase = match std::mem::replace(&mut self.phase, Phase::Closed) {
            Phase::Header(Next::Login { failures }) => Phase::Login {
                sasl: None,
                failures,
            },
            Phase::Header(Next::Bind { user }) => Phase::Bind { user },
            // `open` is called in the Header phase only.
            other => other,
        };
        if header.attr("to").is_some_and(|to| to != self.cfg.domain) {
            self.shutdown(
                Some("host-unknown"),
                Some("this server serves another domain"),
            );
            return;
        }
        if header.attr("version") != Some("1.0") {
            self.shutdown(Some("unsupported-version"), None);
            return;
        }
        let features = self.features();
        self.out.push_back(Output::Data(to_xml(&features)));
    }

    /// Send our stream header (once per (re)started stream: it is what
    /// takes the stream out of the `Header` phase).
    fn send_header(&mut self) {
        let id = format!("{:016x}", self.rng.gen::<u64>());
        let domain = &self.cfg.domain;
        let header = match self.framing {
            Framing::Tcp => format!(
                "<?xml version='1.0'?><stream:stream xmlns='{NS_CLIENT}' xmlns:stream='{NS_STREAM}' \
                 id='{id}' from='{domain}' version='1.0' xml:lang='en'>"
            ),
            Framing::WebSocket => {
                format!("<open xmlns='{NS_FRAMING}' id='{id}' from='{domain}' version='1.0' xml:lang='en'/>")
            }
        };
        self.out.push_back(Output::Data(header));
    }

    fn wants_tls(&self) -> bool {
        self.framing == Framing::Tcp && self.cfg.tls_available && !self.secure
    }

    fn mechanisms(&self) -> Vec<MechanismName> {
        let mut m = Vec::new();
        if !self.cfg.accounts.is_empty() {
            m.push(MechanismName::ScramSha1);
            if self.secure {
                m.push(MechanismName::Plain);
            }
        }
        if self.cfg.allow_anonymous {
            m.push(MechanismName::Anonymous);
        }
        m
    }

    fn features(&self) -> Element {
        let mut f = Element::builder("features", NS_STREAM);
        if !matches!(self.phase, Phase::Bind { .. }) {
            let tls_first = self.wants_tls();
            if tls_first {
                let mut tls = Element::builder("starttls", NS_TLS);
                if self.cfg.require_tls {
                    tls = tls.append(Element::builder("required", NS_TLS).build());
                }
                f = f.append(tls.build());
            }
            if !(tls_first && self.cfg.require_tls) {
                let mut mechs = Element::builder("mechanisms", NS_SASL);
                for m in self.mechanisms() {
                    mechs = mechs.append(
                        Element::builder("mechanism", NS_SASL)
                            .append(m.as_str())
                            .build(),
                    );
                }
                f = f.append(mechs.build());
            }
        } else {
            f = f.append(Element::builder("bind", NS_BIND).build()).append(
                Element::builder("session", NS_SESSION)
                    .append(Element::builder("optional", NS_SESSION).build())
                    .build(),
            );
        }
        f.build()
    }

    fn negotiate(&mut self, el: Element) {
        let authenticated = matches!(self.phase, Phase::Bind { .. });
        if el.is("starttls", NS_TLS) {
            if let (true, Phase::Login { failures, .. }) = (self.wants_tls(), &self.phase) {
                let failures = *failures;
                self.out.push_back(Output::Data(to_xml(
                    &Element::builder("proceed", NS_TLS).build(),
                )));
                self.out.push_back(Output::StartTls);
                self.phase = Phase::Tls { failures };
            } else {
                self.out.push_back(Output::Data(to_xml(
                    &Element::builder("failure", NS_TLS).build(),
                )));
                self.close_stream();
            }
            return;
        }
        if el.ns() == NS_SASL {
            self.sasl(el);
            return;
        }
        if authenticated && el.is("iq", NS_CLIENT) {
            self.bind(el);
            return;
        }
        if !authenticated && self.wants_tls() && self.cfg.require_tls {
            self.shutdown(Some("policy-violation"), Some("STARTTLS is required"));
        } else {
            self.shutdown(Some("not-authorized"), Some("authenticate first"));
        }
    }

    fn sasl_reply(&mut self, name: &str, data: Option<&[u8]>, condition: Option<&str>) {
        let mut b = Element::builder(name, NS_SASL);
        if let Some(c) = condition {
            b = b.append(Element::builder(c, NS_SASL).build());
        }
        if let Some(d) = data {
            b = b.append(if d.is_empty() {
                "=".to_string()
            } else {
                B64.encode(d)
            });
        }
        self.out.push_back(Output::Data(to_xml(&b.build())));
    }

    fn sasl(&mut self, el: Element) {
        if !matches!(self.phase, Phase::Login { .. }) {
            self.shutdown(Some("policy-violation"), Some("already authenticated"));
            return;
        }
        if self.wants_tls() && self.cfg.require_tls {
            self.sasl_reply("failure", None, Some("encryption-required"));
            self.close_stream();
            return;
        }
        let step = match el.name() {
            "auth" => {
                let Some(mech) = el.attr("mechanism").and_then(MechanismName::parse) else {
                    return self.sasl_failed("invalid-mechanism");
                };
                if !self.mechanisms().contains(&mech) {
                    let cond = if mech == MechanismName::Plain {
                        "encryption-required"
                    } else {
                        "invalid-mechanism"
                    };
                    return self.sasl_failed(cond);
                }
                let mut session = SaslSession::start(mech, &self.cfg.accounts, &mut self.rng);
                let Some(data) = decode_sasl(&el.text()) else {
                    return self.sasl_failed("incorrect-encoding");
                };
                let step = session.step(&data);
                if let Phase::Login { sasl, .. } = &mut self.phase {
                    *sasl = Some(session);
                }
                step
            }
            "response" => {
                let Phase::Login {
                    sasl: Some(session),
                    ..
                } = &mut self.phase
                else {
                    return self.sasl_failed("malformed-request");
                };
                let Some(data) = decode_sasl(&el.text()) else {
                    return self.sasl_failed("incorrect-encoding");
                };
                session.step(&data)
            }
            "abort" => return self.sasl_failed("aborted"),
            _ => return self.sasl_failed("malformed-request"),
        };
        match step {
            SaslStep::Challenge(data) => self.sasl_reply("challenge", Some(&data), None),
            SaslStep::Success(who, extra) => {
                self.sasl_reply("success", Some(&extra), None);
                tracing::debug!(user = who.localpart(), "authenticated");
                self.restart(Next::Bind {
                    user: who.localpart().to_string(),
                });
            }
            SaslStep::Failure(cond) => self.sasl_failed(cond),
        }
    }

    /// A SASL attempt failed: the exchange is dropped and counted.
    fn sasl_failed(&mut self, condition: &'static str) {
        let failures = match &mut self.phase {
            Phase::Login { sasl, failures } => {
                *sasl = None;
                *failures += 1;
                *failures
            }
            // Not reached: SASL runs in the Login phase only.
            _ => MAX_SASL_FAILURES,
        };
        self.sasl_reply("failure", None, Some(condition));
        if failures >= MAX_SASL_FAILURES {
            self.shutdown(
                Some("policy-violation"),
                Some("too many failed authentication attempts"),
            );
        }
    }

    fn bind(&mut self, iq: Element) {
        let server = self.cfg.domain.clone();
        let Some(payload) = iq_payload(&iq) else {
            self.out.push_back(Output::Data(to_xml(&error_reply(
                &iq,
                &server,
                &StanzaError::bad_request("an IQ holds exactly one payload"),
            ))));
            return;
        };
        if payload.is("session", NS_SESSION) {
            self.out
                .push_back(Output::Data(to_xml(&iq_result(&iq, &server))));
            return;
        }
        if !payload.is("bind", NS_BIND) || iq.attr("type") != Some("set") {
            let err = StanzaError::new(ErrorType::Cancel, "not-authorized")
                .with_text("bind a resource first");
            self.out
                .push_back(Output::Data(to_xml(&error_reply(&iq, &server, &err))));
            return;
        }
        let Phase::Bind { user } = &self.phase else {
            return;
        };
        let user = user.clone();
        let requested = payload
            .get_child("resource", NS_BIND)
            .map(|r| r.text())
            .filter(|r| !r.is_empty() && r.len() <= 256);
        let rng = &mut self.rng;
        let mut random = || format!("confab-{:08x}", rng.gen::<u32>());
        let jid = requested
            .and_then(|r| FullJid::new(&format!("{user}@{}/{r}", self.cfg.domain)).ok())
            .or_else(|| FullJid::new(&format!("{user}@{}/{}", self.cfg.domain, random())).ok());
        let Some(jid) = jid else {
            let err = StanzaError::new(ErrorType::Modify, "jid-malformed");
            self.out
                .push_back(Output::Data(to_xml(&error_reply(&iq, &server, &err))));
            return;
        };
        let answer = Element::builder("bind", NS_BIND)
            .append(
                Element::builder("jid", NS_BIND)
                    .append(jid.to_string())
                    .build(),
            )
            .build();
        // The IQ has no `from` yet (the client has no address), so the
        // result has no `to`: it goes to the stream.
        let reply = iq_result_with(&iq, &server, Some(answer));
        self.out.push_back(Output::Data(to_xml(&reply)));
        self.phase = Phase::Established { jid: jid.clone() };
        self.out.push_back(Output::Bound(jid));
    }

    fn established(&mut self, mut el: Element) {
        let is_stanza = el.ns() == NS_CLIENT && matches!(el.name(), "iq" | "message" | "presence");
        if !is_stanza {
            self.shutdown(
                Some("unsupported-stanza-type"),
                Some(&format!("<{}/>", el.name())),
            );
            return;
        }
        let Phase::Established { jid } = &self.phase else {
            return;
        };
        // RFC 6120 §8.1.2.1: the server stamps the sender's full JID.
        set_attr(&mut el, nc!("from"), jid.to_string());
        self.out.push_back(Output::Stanza(el));
    }
}

fn decode_sasl(text: &str) -> Option<Vec<u8>> {
    let t = text.trim();
    if t.is_empty() || t == "=" {
        return Some(Vec::new());
    }
    B64.decode(t).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    use rand::SeedableRng;

    use crate::auth::SaltKey;

    fn cfg(tls: bool) -> Arc<StreamConfig> {
        let key = SaltKey::random(&mut StdRng::seed_from_u64(1));
        Arc::new(StreamConfig {
            domain: "localhost".into(),
            limits: Limits::default(),
            tls_available: tls,
            require_tls: tls,
            allow_anonymous: true,
            accounts: Arc::new(Accounts::new([("alice", "secret")], key).unwrap()),
        })
    }

    fn rng() -> StdRng {
        StdRng::seed_from_u64(2)
    }

    fn drain(s: &mut C2sStream) -> Vec<Output> {
        std::iter::from_fn(|| s.poll_output()).collect()
    }

    fn data(outs: &[Output]) -> String {
        outs.iter()
            .filter_map(|o| match o {
                Output::Data(d) => Some(d.as_str()),
                _ => None,
            })
            .collect()
    }

    const OPEN: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";

    #[test]
    fn tcp_requires_starttls_then_sasl_then_bind() {
        let mut s = C2sStream::new(cfg(true), Framing::Tcp, false, rng());
        s.feed(OPEN.as_bytes());
        let out = data(&drain(&mut s));
        assert!(out.contains("<starttls"), "{out}");
        assert!(!out.contains("mechanism"), "SASL offered before TLS: {out}");
        // SASL before TLS is refused.
        s.feed(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>");
        let out = drain(&mut s);
        assert!(data(&out).contains("encryption-required"));
        assert!(out.contains(&Output::Close));

        let mut s = C2sStream::new(cfg(true), Framing::Tcp, false, rng());
        s.feed(OPEN.as_bytes());
        drain(&mut s);
        s.feed(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><junk-after-starttls/>");
        let out = drain(&mut s);
        assert!(data(&out).contains("proceed"));
        assert_eq!(out.last(), Some(&Output::StartTls));
        s.tls_established();
        s.feed(OPEN.as_bytes());
        let out = data(&drain(&mut s));
        assert!(
            out.contains("PLAIN") && out.contains("SCRAM-SHA-1") && out.contains("ANONYMOUS"),
            "{out}"
        );
        let creds = B64.encode(b"\0alice\0secret");
        s.feed(
            format!(
                "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{creds}</auth>"
            )
            .as_bytes(),
        );
        assert!(data(&drain(&mut s)).contains("<success"));
        s.feed(OPEN.as_bytes());
        assert!(data(&drain(&mut s)).contains("xmpp-bind"));
        s.feed(b"<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>desk</resource></bind></iq>");
        let out = drain(&mut s);
        let jid = FullJid::new("alice@localhost/desk").unwrap();
        assert!(out.contains(&Output::Bound(jid)), "{out:?}");
        s.feed(b"<message to='bob@localhost' from='forged@evil'><body>hi</body></message>");
        let out = drain(&mut s);
        let Some(Output::Stanza(m)) = out.first() else {
            panic!("{out:?}")
        };
        assert_eq!(
            m.attr("from"),
            Some("alice@localhost/desk"),
            "from must be stamped"
        );
    }

    #[test]
    fn wrong_password_fails_and_three_failures_close() {
        let mut s = C2sStream::new(cfg(false), Framing::WebSocket, true, rng());
        s.feed_message(
            b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>",
        );
        drain(&mut s);
        let creds = B64.encode(b"\0alice\0nope");
        let auth = format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{creds}</auth>"
        );
        for i in 0..3 {
            s.feed_message(auth.as_bytes());
            let out = drain(&mut s);
            assert!(data(&out).contains("not-authorized"), "{out:?}");
            assert_eq!(out.contains(&Output::Close), i == 2);
        }
    }

    #[test]
    fn plain_is_not_offered_on_an_insecure_websocket() {
        let mut s = C2sStream::new(cfg(false), Framing::WebSocket, false, rng());
        s.feed_message(
            b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>",
        );
        let out = data(&drain(&mut s));
        assert!(!out.contains(">PLAIN<"), "{out}");
        let creds = B64.encode(b"\0alice\0secret");
        s.feed_message(
            format!(
                "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{creds}</auth>"
            )
            .as_bytes(),
        );
        assert!(data(&drain(&mut s)).contains("encryption-required"));
    }

    #[test]
    fn stream_errors_for_bad_xml() {
        for (input, cond) in [
            (&b"<!DOCTYPE x [<!ENTITY a 'b'>]><x/>"[..], "restricted-xml"),
            (
                &b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'"
                    [..],
                "not-well-formed",
            ),
            (&b"\xff\xfe<open/>"[..], "not-well-formed"),
        ] {
            let mut s = C2sStream::new(cfg(false), Framing::WebSocket, true, rng());
            s.feed_message(input);
            let out = drain(&mut s);
            assert!(data(&out).contains(cond), "{cond}: {out:?}");
            assert_eq!(out.last(), Some(&Output::Close));
        }
        let mut s = C2sStream::new(cfg(false), Framing::Tcp, true, rng());
        s.feed(OPEN.as_bytes());
        drain(&mut s);
        s.feed(&b"<a>".repeat(10_000));
        let out = drain(&mut s);
        assert!(data(&out).contains("policy-violation"), "{out:?}");
        let mut s = C2sStream::new(cfg(false), Framing::Tcp, true, rng());
        s.feed(OPEN.replace("localhost", "example.org").as_bytes());
        assert!(data(&drain(&mut s)).contains("host-unknown"));
    }

    /// A guest's whole login on a stream: what the server writes.
    fn guest_login(rng: StdRng) -> (Vec<Output>, Option<FullJid>) {
        let mut s = C2sStream::new(cfg(false), Framing::WebSocket, true, rng);
        s.feed_message(
            b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>",
        );
        s.feed_message(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>");
        s.feed_message(
            b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>",
        );
        s.feed_message(
            b"<iq xmlns='jabber:client' type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>",
        );
        (drain(&mut s), s.jid().cloned())
    }

    #[test]
    fn stream_ids_guest_names_and_resources_come_from_the_drivers_generator() {
        let (out, jid) = guest_login(StdRng::seed_from_u64(5));
        let jid = jid.expect("bound");
        assert!(
            jid.node().is_some_and(|n| n.as_str().starts_with("guest-")),
            "{jid}"
        );
        assert!(jid.resource().as_str().starts_with("confab-"), "{jid}");
        assert!(data(&out).contains(" id='"), "stream ids are written");
        // The same seed: the same stream, byte for byte; another seed:
        // other ids and names.
        assert_eq!(
            guest_login(StdRng::seed_from_u64(5)),
            (out.clone(), Some(jid.clone()))
        );
        let (other, other_jid) = guest_login(StdRng::seed_from_u64(6));
        assert_ne!(data(&other), data(&out));
        assert_ne!(other_jid, Some(jid));
    }

    #[test]
    fn starttls_drops_a_sasl_exchange_in_progress_and_keeps_the_failures() {
        let mut cfg = (*cfg(true)).clone();
        cfg.require_tls = false;
        let mut s = C2sStream::new(Arc::new(cfg), Framing::Tcp, false, rng());
        s.feed(OPEN.as_bytes());
        drain(&mut s);
        let first = B64.encode(b"n,,n=alice,r=abc");
        // Two failed attempts before TLS...
        for _ in 0..2 {
            s.feed(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'/>");
        }
        assert!(data(&drain(&mut s)).contains("encryption-required"));
        // ...a SCRAM exchange begun, then STARTTLS.
        s.feed(
            format!("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>{first}</auth>")
                .as_bytes(),
        );
        assert!(data(&drain(&mut s)).contains("<challenge"));
        s.feed(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        assert_eq!(drain(&mut s).last(), Some(&Output::StartTls));
        s.tls_established();
        s.feed(OPEN.as_bytes());
        drain(&mut s);
        // The old exchange is gone: a response to it (which it would have
        // refused as not-authorized) answers no exchange, and that third
        // failure closes the stream.
        let last = B64.encode(b"c=biws,r=abc,p=AAAA");
        s.feed(
            format!("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{last}</response>")
                .as_bytes(),
        );
        let out = drain(&mut s);
        assert!(data(&out).contains("malformed-request"), "{out:?}");
        assert!(out.contains(&Output::Close), "{out:?}");
    }
}
