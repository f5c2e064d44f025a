//! XMPP clients: one interface over two real clients, used by the load
//! tester's simulated participants and by Confab's end-to-end tests.
//!
//! * TCP: tokio-xmpp's XML stream and SASL login, with a connector that
//!   does STARTTLS trusting exactly the certificate Confab presents
//!   (tokio-xmpp's own connectors check against the system's roots, which a
//!   self-signed certificate is not in).
//! * WebSocket: a small RFC 7395 client over tokio-tungstenite that logs
//!   in as a guest (SASL ANONYMOUS) or with PLAIN, because tokio-xmpp has no
//!   WebSocket transport.
//!
//! Both hand stanzas over as `minidom` elements.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use minidom::Element;
use tokio::io::BufStream;
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_xmpp::connect::ServerConnector;
use tokio_xmpp::parsers::jid::{FullJid, Jid};
use tokio_xmpp::parsers::starttls;
use tokio_xmpp::xmlstream::{
    initiate_stream, PendingFeaturesRecv, ReadError, StreamHeader, Timeouts, XmppStream,
    XmppStreamElement,
};
use tokio_xmpp::Stanza;

use confab_proto::ns::{NS_BIND, NS_CLIENT, NS_FRAMING, NS_SASL, NS_STANZA_ERRORS, NS_STREAM};

/// STARTTLS to a fixed address, trusting one certificate (PEM).
#[derive(Clone)]
pub struct PinnedStartTls {
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for PinnedStartTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PinnedStartTls({})", self.addr)
    }
}

impl PinnedStartTls {
    /// Connect to `addr`, trusting `cert_pem` only. Fails when the PEM
    /// holds no usable certificate.
    pub fn new(addr: SocketAddr, cert_pem: &str) -> Result<PinnedStartTls, String> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(cert_pem.as_bytes()) {
            let cert = cert.map_err(|e| format!("server certificate PEM: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("server certificate: {e}"))?;
        }
        if roots.is_empty() {
            return Err("no certificate in the server certificate PEM".into());
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS versions: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(PinnedStartTls {
            addr,
            config: Arc::new(config),
        })
    }
}

impl ServerConnector for PinnedStartTls {
    type Stream = BufStream<tokio_rustls::client::TlsStream<TcpStream>>;

    async fn connect(
        &self,
        jid: &Jid,
        ns: &'static str,
        timeouts: Timeouts,
    ) -> Result<
        (
            PendingFeaturesRecv<Self::Stream>,
            sasl::common::ChannelBinding,
        ),
        tokio_xmpp::Error,
    > {
        let domain = jid.domain().as_str().to_string();
        let header = || StreamHeader {
            to: Some(Cow::Owned(domain.clone())),
            from: None,
            id: None,
        };
        let tcp = TcpStream::connect(self.addr).await?;
        let pending = initiate_stream(BufStream::new(tcp), ns, header(), timeouts).await?;
        let (features, mut stream): (_, XmppStream<_>) = pending.recv_features().await?;
        if !features.can_starttls() {
            return Err(tokio_xmpp::Error::Disconnected);
        }
        stream
            .send(&XmppStreamElement::Starttls(starttls::Nonza::Request(
                starttls::Request,
            )))
            .await?;
        loop {
            match stream
                .next()
                .await
                .map(|r| r.and_then(|e| e.into_read_error()))
            {
                Some(Ok(XmppStreamElement::Starttls(starttls::Nonza::Proceed(_)))) => break,
                Some(Ok(_)) | Some(Err(ReadError::SoftTimeout)) => {}
                _ => return Err(tokio_xmpp::Error::Disconnected),
            }
        }
        let tcp = stream.into_inner().into_inner();
        let name =
            ServerName::try_from(domain.clone()).map_err(|_| tokio_xmpp::Error::Disconnected)?;
        let tls = tokio_rustls::TlsConnector::from(self.config.clone())
            .connect(name, tcp)
            .await?;
        let pending = initiate_stream(BufStream::new(tls), ns, header(), timeouts).await?;
        Ok((pending, sasl::common::ChannelBinding::None))
    }
}

/// The JID in a resource-binding result.
fn bound_jid(result: &Element) -> Result<FullJid, String> {
    let jid = result
        .get_child("bind", NS_BIND)
        .and_then(|b| b.get_child("jid", NS_BIND))
        .map(|j| j.text())
        .ok_or_else(|| format!("bind failed: {}", String::from(result)))?;
    FullJid::new(&jid).map_err(|e| e.to_string())
}

/// A logged-in XMPP client.
pub enum XmppClient {
    /// tokio-xmpp over TCP.
    Tcp(Box<TcpClient>),
    /// RFC 7395 WebSocket.
    Ws(Box<WsClient>),
}

/// A tokio-xmpp XML stream over TCP with STARTTLS, logged in and bound.
///
/// It drives tokio-xmpp's stream, STARTTLS connector and SASL directly
/// rather than through its `Client`, whose background workers now and then
/// held back a received stanza until the next one arrived when the
/// machine was busy; a test client must see every stanza when it arrives.
pub struct TcpClient {
    stream: XmppStream<<PinnedStartTls as ServerConnector>::Stream>,
    jid: FullJid,
}

impl XmppClient {
    /// Log in over TCP with STARTTLS as `jid` (a configured account; the
    /// server offers SCRAM-SHA-1, which tokio-xmpp prefers).
    pub async fn connect_tcp(
        addr: SocketAddr,
        cert_pem: &str,
        jid: &str,
        password: &str,
    ) -> Result<XmppClient, String> {
        Self::connect_tcp_within(addr, cert_pem, jid, password, Duration::from_secs(20)).await
    }

    /// [`XmppClient::connect_tcp`], giving up after `timeout`.
    pub async fn connect_tcp_within(
        addr: SocketAddr,
        cert_pem: &str,
        jid: &str,
        password: &str,
        timeout: Duration,
    ) -> Result<XmppClient, String> {
        let jid = Jid::new(jid).map_err(|e| e.to_string())?;
        let login = async {
            let connector = PinnedStartTls::new(addr, cert_pem)?;
            let (pending, binding) = connector
                .connect(&jid, "jabber:client", Timeouts::tight())
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let (features, stream): (_, XmppStream<_>) = pending
                .recv_features()
                .await
                .map_err(|e| format!("features: {e}"))?;
            let user = jid.node().map(|n| n.to_string()).unwrap_or_default();
            let creds = sasl::common::Credentials::default()
                .with_username(user)
                .with_password(password)
                .with_channel_binding(binding);
            let initiating = tokio_xmpp::client_login(stream, features.sasl_mechanisms, creds)
                .await
                .map_err(|e| format!("login failed: {e}"))?;
            let pending = initiating
                .send_header(StreamHeader {
                    to: Some(Cow::Owned(jid.domain().to_string())),
                    from: None,
                    id: None,
                })
                .await
                .map_err(|e| format!("restart: {e}"))?;
            let (_, stream): (_, XmppStream<_>) = pending
                .recv_features()
                .await
                .map_err(|e| format!("features: {e}"))?;
            let mut client = TcpClient {
                stream,
                jid: FullJid::new("nobody@invalid/none").map_err(|e| e.to_string())?,
            };
            let resource = jid
                .resource()
                .map(|r| r.to_string())
                .unwrap_or_else(|| "tcp".into());
            let bind: Element = format!(
                "<iq xmlns='jabber:client' type='set' id='bind1'><bind xmlns='{NS_BIND}'><resource>{resource}</resource></bind></iq>"
            )
            .parse()
            .map_err(|e| format!("{e}"))?;
            client.send(bind).await?;
            let result = client
                .recv(Duration::from_secs(10))
                .await?
                .ok_or("no bind result")?;
            client.jid = bound_jid(&result)?;
            Ok::<_, String>(client)
        };
        match tokio::time::timeout(timeout, login).await {
            Ok(Ok(client)) => Ok(XmppClient::Tcp(Box::new(client))),
            Ok(Err(e)) => Err(e),
            Err(_) => Err("login timed out".into()),
        }
    }

    /// Log in over WebSocket at `url` as a guest.
    pub async fn connect_ws(url: &str, domain: &str) -> Result<XmppClient, String> {
        Ok(XmppClient::Ws(Box::new(
            WsClient::connect(url, domain, None).await?,
        )))
    }

    /// The bound JID.
    pub fn jid(&self) -> &FullJid {
        match self {
            XmppClient::Tcp(c) => &c.jid,
            XmppClient::Ws(ws) => &ws.jid,
        }
    }

    /// Send a stanza.
    pub async fn send(&mut self, stanza: Element) -> Result<(), String> {
        match self {
            XmppClient::Tcp(c) => c.send(stanza).await,
            XmppClient::Ws(ws) => ws.send_raw(String::from(&stanza)).await,
        }
    }

    /// The next stanza, waiting at most `timeout`; `Ok(None)` on timeout.
    pub async fn recv(&mut self, timeout: Duration) -> Result<Option<Element>, String> {
        match self {
            XmppClient::Tcp(c) => c.recv(timeout).await,
            XmppClient::Ws(ws) => ws.recv(timeout).await,
        }
    }

    /// End the stream politely.
    pub async fn close(self) {
        match self {
            XmppClient::Tcp(mut c) => {
                let _ = SinkExt::<&XmppStreamElement>::close(&mut c.stream).await;
            }
            XmppClient::Ws(mut ws) => {
                let _ = ws.send_raw(format!("<close xmlns='{NS_FRAMING}'/>")).await;
            }
        }
    }
}

impl TcpClient {
    async fn send(&mut self, stanza: Element) -> Result<(), String> {
        let stanza = Stanza::try_from(stanza).map_err(|e| format!("not a stanza: {e:?}"))?;
        self.stream
            .send(&XmppStreamElement::Stanza(stanza))
            .await
            .map_err(|e| e.to_string())
    }

    async fn recv(&mut self, timeout: Duration) -> Result<Option<Element>, String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let next = match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => return Ok(None),
                Ok(next) => next,
            };
            match next.map(|r| r.and_then(|e| e.into_read_error())) {
                Some(Ok(XmppStreamElement::Stanza(s))) => return Ok(Some(Element::from(s))),
                Some(Ok(XmppStreamElement::StreamError(e))) => {
                    return Err(format!("stream error: {e:?}"))
                }
                Some(Err(ReadError::SoftTimeout)) => {
                    // The server has been silent for a minute: ping it (XEP-0199),
                    // or the stream's hard timeout would end a quiet call.
                    let ping = format!(
                        "<iq xmlns='{NS_CLIENT}' type='get' id='keepalive' to='{}'><ping xmlns='urn:xmpp:ping'/></iq>",
                        self.jid.domain()
                    );
                    self.send(ping.parse().map_err(|e| format!("{e}"))?).await?;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(format!("read: {e}")),
                None => return Err("stream ended".into()),
            }
        }
    }
}

/// A minimal RFC 7395 client.
pub struct WsClient {
    socket: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
    /// The bound JID.
    pub jid: FullJid,
}

impl WsClient {
    /// Open the socket (subprotocol `xmpp`) without logging in.
    pub async fn open_socket(
        url: &str,
    ) -> Result<
        tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
        String,
    > {
        let mut request = url.into_client_request().map_err(|e| e.to_string())?;
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "xmpp".parse().map_err(|_| "header")?,
        );
        let (socket, response) = tokio_tungstenite::connect_async(request)
            .await
            .map_err(|e| e.to_string())?;
        let proto = response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok());
        if proto != Some("xmpp") {
            return Err(format!("server chose subprotocol {proto:?}"));
        }
        Ok(socket)
    }

    /// Connect and log in: ANONYMOUS, or PLAIN with `(user, password)`.
    pub async fn connect(
        url: &str,
        domain: &str,
        plain: Option<(&str, &str)>,
    ) -> Result<WsClient, String> {
        let socket = Self::open_socket(url).await?;
        let mut c = WsClient {
            socket,
            jid: FullJid::new("nobody@invalid/none").map_err(|e| e.to_string())?,
        };
        let t = Duration::from_secs(10);
        c.open(domain).await?;
        let features = c.expect(t, "features").await?;
        let mechs: Vec<String> = features
            .get_child("mechanisms", NS_SASL)
            .map(|m| m.children().map(|c| c.text()).collect())
            .unwrap_or_default();
        let (mech, data) = match plain {
            None => ("ANONYMOUS", "=".to_string()),
            Some((u, p)) => (
                "PLAIN",
                base64::engine::general_purpose::STANDARD.encode(format!("\0{u}\0{p}")),
            ),
        };
        if !mechs.iter().any(|m| m == mech) {
            return Err(format!("{mech} not offered: {mechs:?}"));
        }
        c.send_raw(format!(
            "<auth xmlns='{NS_SASL}' mechanism='{mech}'>{data}</auth>"
        ))
        .await?;
        let answer = c.recv(t).await?.ok_or("no SASL answer")?;
        if answer.name() != "success" {
            return Err(format!("SASL failed: {}", String::from(&answer)));
        }
        c.open(domain).await?;
        c.expect(t, "features").await?;
        c.send_raw(format!(
            "<iq xmlns='jabber:client' type='set' id='bind1'><bind xmlns='{NS_BIND}'><resource>ws</resource></bind></iq>"
        ))
        .await?;
        let result = c.expect(t, "iq").await?;
        c.jid = bound_jid(&result)?;
        Ok(c)
    }

    async fn open(&mut self, domain: &str) -> Result<(), String> {
        self.send_raw(format!(
            "<open xmlns='{NS_FRAMING}' to='{domain}' version='1.0'/>"
        ))
        .await?;
        let open = self.expect(Duration::from_secs(10), "open").await?;
        if open.ns() != NS_FRAMING {
            return Err("bad <open/>".into());
        }
        Ok(())
    }

    async fn expect(&mut self, timeout: Duration, name: &str) -> Result<Element, String> {
        let el = self
            .recv(timeout)
            .await?
            .ok_or_else(|| format!("no <{name}/>"))?;
        if el.name() != name {
            return Err(format!("expected <{name}/>, got {}", String::from(&el)));
        }
        Ok(el)
    }

    /// Send one message as is.
    pub async fn send_raw(&mut self, text: String) -> Result<(), String> {
        self.socket
            .send(WsMessage::Text(text.into()))
            .await
            .map_err(|e| e.to_string())
    }

    /// Send one binary message as is (for invalid UTF-8 tests).
    pub async fn send_bytes(&mut self, data: Vec<u8>) -> Result<(), String> {
        self.socket
            .send(WsMessage::Binary(data.into()))
            .await
            .map_err(|e| e.to_string())
    }

    /// The next element; `Ok(None)` on timeout; `Err` when the socket
    /// closed or a stream error arrived (its text is the error).
    pub async fn recv(&mut self, timeout: Duration) -> Result<Option<Element>, String> {
        loop {
            let msg = match tokio::time::timeout(timeout, self.socket.next()).await {
                Err(_) => return Ok(None),
                Ok(None) => return Err("socket closed".into()),
                Ok(Some(Err(e))) => return Err(e.to_string()),
                Ok(Some(Ok(m))) => m,
            };
            let text = match msg {
                WsMessage::Text(t) => t.to_string(),
                WsMessage::Close(_) => return Err("socket closed".into()),
                _ => continue,
            };
            let el: Element = text
                .parse()
                .map_err(|e| format!("bad XML from server: {e}: {text}"))?;
            if el.is("error", NS_STREAM) {
                return Err(format!("stream error: {text}"));
            }
            return Ok(Some(el));
        }
    }
}

/// The defined condition of a stanza error (`<iq type='error'>` and the
/// like), if it has one.
pub fn error_condition(stanza: &Element) -> Option<String> {
    let err = stanza.get_child("error", NS_CLIENT)?;
    err.children()
        .find(|c| c.ns() == NS_STANZA_ERRORS && c.name() != "text")
        .map(|c| c.name().to_string())
}

/// An attribute name for minidom's builder. Only for the fixed names in
/// Confab's own code, never for names a peer sent.
pub fn nc(name: &str) -> minidom::rxml::NcName {
    // Every caller passes a literal plain word, which is an NCName.
    minidom::rxml::NcName::try_from(name).expect("attribute names in Confab's clients are NCNames")
}
