//! The thin async driver of the XMPP server: a TCP listener (with
//! STARTTLS), WebSocket connections handed over by the HTTP server, one
//! task per connection running a [`C2sStream`], and one task owning the
//! [`Server`] (router, rooms, focus) that also talks to the media plane.
//!
//! The HTTP side (axum) stays out of this crate: the route that accepts
//! `/xmpp-websocket` calls [`Signaling::websocket`] and pumps messages
//! between the socket and the returned [`WsConnection`]; the admin API
//! asks the router task for snapshots ([`Signaling::rooms`],
//! [`Signaling::room`]). Recording is the binary's to wire: moderators'
//! `/record` commands go to the [`RecordingControl`] it passes in, and it
//! tells the rooms of recordings started elsewhere or ended by themselves
//! ([`Signaling::recording_changed`], [`Signaling::recording_ended`]), so
//! that the room hears of it whoever asked.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use minidom::Element;
use sfu::{EndpointEvent, EndpointId, RoomId, SdpAnswer, SfuHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use xmpp_parsers::jid::{BareJid, FullJid};

use crate::auth::Accounts;
use crate::focus::{CallId, FocusLimits, MediaCommand};
use crate::muc::MucLimits;
use crate::recording::RecordingControl;
use crate::server::{ConnId, RoomSnapshot, RoomSummary, RouterConfig, Server, ServerOutput};
use crate::stream::{C2sStream, Framing, Output, StreamConfig};
use crate::tls::TlsIdentity;
use crate::xml::Limits;

/// Stanzas queued for one connection before it counts as not reading and
/// is disconnected.
const CONN_QUEUE: usize = 4096;
/// Messages queued for the router; connections wait when it is full.
const HUB_QUEUE: usize = 1024;
/// Time to authenticate and bind after connecting.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(60);
/// Time one write may take before the peer counts as gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Read buffer per TCP connection.
const READ_CHUNK: usize = 16 * 1024;

/// Settings of the XMPP server.
#[derive(Clone)]
pub struct SignalingConfig {
    /// The domain (`localhost` by default).
    pub domain: String,
    /// Where the client-to-server TCP listener binds (port 5222 by
    /// default; port 0 picks one).
    pub tcp_bind: SocketAddr,
    /// The STARTTLS certificate; `None` disables STARTTLS.
    pub tls: Option<TlsIdentity>,
    /// Refuse SASL on TCP before STARTTLS (when TLS is available).
    pub require_tls: bool,
    /// Allow guests (SASL ANONYMOUS).
    pub allow_anonymous: bool,
    /// Configured accounts.
    pub accounts: Arc<Accounts>,
    /// Parser bounds.
    pub limits: Limits,
    /// The recorder, which moderators start and stop with `/record`.
    pub recordings: Arc<dyn RecordingControl>,
}

/// What connection tasks tell the router task.
enum HubMsg {
    Bound {
        conn: ConnId,
        jid: FullJid,
        tx: mpsc::Sender<ConnMsg>,
    },
    Stanza {
        conn: ConnId,
        stanza: Element,
    },
    Closed {
        conn: ConnId,
    },
    MediaCreated {
        call: CallId,
        result: Result<(EndpointId, SdpAnswer), String>,
    },
    MediaEvent {
        endpoint: EndpointId,
        event: EndpointEvent,
    },
    MediaFailed {
        endpoint: EndpointId,
        error: String,
    },
    Query(Query),
    /// Recording of `room` started or stopped: tell the room.
    Recorded {
        room: BareJid,
        by: String,
        start: bool,
    },
    /// A moderator's recording command failed: tell it.
    RecordFailed {
        room: BareJid,
        jid: FullJid,
        error: String,
    },
    /// Recording of `room` stopped by itself: tell the room why.
    RecordingEnded {
        room: BareJid,
        reason: String,
    },
}

/// A question about the router's state, answered from the router task.
enum Query {
    Rooms(oneshot::Sender<Vec<RoomSummary>>),
    Room(BareJid, oneshot::Sender<Option<RoomSnapshot>>),
}

/// What the router task tells a connection.
enum ConnMsg {
    Deliver(Element),
    Disconnect(&'static str),
}

/// A running XMPP server.
#[derive(Clone)]
pub struct Signaling {
    hub: mpsc::Sender<HubMsg>,
    stream_cfg: Arc<StreamConfig>,
    tls: Option<TlsIdentity>,
    tcp_addr: SocketAddr,
    next_conn: Arc<AtomicU64>,
}

/// One WebSocket connection as the HTTP server sees it: send each text
/// message received on `incoming` (drop it when the socket closes), and
/// write each [`WsOut`] from `outgoing` to the socket.
pub struct WsConnection {
    /// Messages from the peer.
    pub incoming: mpsc::Sender<Vec<u8>>,
    /// Messages to the peer.
    pub outgoing: mpsc::Receiver<WsOut>,
}

/// A message for the WebSocket peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsOut {
    /// One text message (one XMPP element).
    Text(String),
    /// Close the socket.
    Close,
}

impl Signaling {
    /// Bind the TCP listener and start the server, using `sfu` for media.
    pub async fn start(config: SignalingConfig, sfu: SfuHandle) -> io::Result<Signaling> {
        let listener = TcpListener::bind(config.tcp_bind).await?;
        let tcp_addr = listener.local_addr()?;
        let stream_cfg = Arc::new(StreamConfig {
            domain: config.domain.clone(),
            limits: config.limits,
            tls_available: config.tls.is_some(),
            require_tls: config.require_tls,
            allow_anonymous: config.allow_anonymous,
            accounts: config.accounts.clone(),
        });
        let (hub, hub_rx) = mpsc::channel(HUB_QUEUE);
        let server = Server::new(RouterConfig {
            domain: config.domain.clone(),
            muc: MucLimits::default(),
            focus: FocusLimits::default(),
        });
        tokio::spawn(run_hub(
            server,
            hub_rx,
            hub.clone(),
            sfu,
            config.recordings.clone(),
        ));
        let me = Signaling {
            hub,
            stream_cfg,
            tls: config.tls,
            tcp_addr,
            next_conn: Arc::new(AtomicU64::new(1)),
        };
        let acceptor = me.clone();
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        let me = acceptor.clone();
                        tokio::spawn(async move { me.serve_tcp(stream, peer).await });
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accepting an XMPP connection failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
                if acceptor.hub.is_closed() {
                    break;
                }
            }
        });
        tracing::info!(%tcp_addr, domain = %config.domain, tls = me.tls.is_some(), "XMPP listening");
        Ok(me)
    }

    /// Where the TCP listener is bound.
    pub fn tcp_addr(&self) -> SocketAddr {
        self.tcp_addr
    }

    /// The XMPP domain.
    pub fn domain(&self) -> &str {
        &self.stream_cfg.domain
    }

    /// The conference service (`conference.<domain>`), where rooms live.
    pub fn muc_domain(&self) -> String {
        crate::muc::service_domain(&self.stream_cfg.domain)
    }

    /// The room called `name` on this server's conference service, if
    /// `name` is a valid room name (see [`crate::muc::room_jid`]).
    pub fn room_jid(&self, name: &str) -> Option<BareJid> {
        crate::muc::room_jid(&self.muc_domain(), name)
    }

    /// Every room, sorted, with its number of occupants and calls. Empty
    /// if the server has stopped.
    pub async fn rooms(&self) -> Vec<RoomSummary> {
        let (tx, rx) = oneshot::channel();
        if self
            .hub
            .send(HubMsg::Query(Query::Rooms(tx)))
            .await
            .is_err()
        {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// The room `jid` as it is now: its occupants and their calls' media
    /// endpoints. `None` if there is no such room.
    pub async fn room(&self, jid: BareJid) -> Option<RoomSnapshot> {
        let (tx, rx) = oneshot::channel();
        self.hub
            .send(HubMsg::Query(Query::Room(jid, tx)))
            .await
            .ok()?;
        rx.await.ok().flatten()
    }

    /// Recording of the room `jid` was started (`started`) or stopped on
    /// behalf of `by` other than by a moderator's `/record` (the admin
    /// API): its occupants are told.
    pub async fn recording_changed(&self, jid: &BareJid, by: &str, started: bool) {
        let msg = HubMsg::Recorded {
            room: jid.clone(),
            by: by.to_owned(),
            start: started,
        };
        let _ = self.hub.send(msg).await;
    }

    /// Recording of the room `jid` stopped by itself (`reason`, as people
    /// read it: the disk is nearly full, the call ended, ...): its
    /// occupants are told.
    pub async fn recording_ended(&self, jid: &BareJid, reason: &str) {
        let msg = HubMsg::RecordingEnded {
            room: jid.clone(),
            reason: reason.to_owned(),
        };
        let _ = self.hub.send(msg).await;
    }

    /// The STARTTLS certificate in PEM, if TLS is on.
    pub fn certificate_pem(&self) -> Option<&str> {
        self.tls.as_ref().map(|t| t.cert_pem.as_str())
    }

    /// Start an RFC 7395 stream for a WebSocket the HTTP server accepted
    /// (subprotocol `xmpp`). `secure`: TLS or loopback, which allows PLAIN.
    pub fn websocket(&self, secure: bool) -> WsConnection {
        let (in_tx, in_rx) = mpsc::channel(64);
        let (out_tx, out_rx) = mpsc::channel(CONN_QUEUE);
        let me = self.clone();
        tokio::spawn(async move {
            let transport = WsTransport {
                rx: in_rx,
                tx: out_tx,
            };
            me.run_connection(transport, Framing::WebSocket, secure)
                .await;
        });
        WsConnection {
            incoming: in_tx,
            outgoing: out_rx,
        }
    }

    async fn serve_tcp(self, stream: TcpStream, peer: SocketAddr) {
        tracing::debug!(%peer, "XMPP TCP connection");
        let transport = TcpTransport {
            io: Some(Io::Plain(stream)),
            tls: self.tls.clone(),
            buf: vec![0; READ_CHUNK],
        };
        self.run_connection(transport, Framing::Tcp, false).await;
    }

    /// One connection: the stream state machine between its transport
    /// and the router.
    async fn run_connection<T: Transport>(self, mut transport: T, framing: Framing, secure: bool) {
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        // The stream's ids and SASL nonces come from a generator seeded
        // from the operating system, one per connection.
        let rng = rand::SeedableRng::from_entropy();
        let mut c2s = C2sStream::new(self.stream_cfg.clone(), framing, secure, rng);
        let (tx, mut rx) = mpsc::channel::<ConnMsg>(CONN_QUEUE);
        let mut tx = Some(tx);
        let login_deadline = tokio::time::Instant::now() + LOGIN_TIMEOUT;
        let mut bound = false;
        'conn: loop {
            while let Some(out) = c2s.poll_output() {
                match out {
                    Output::Data(data) => {
                        let len = data.len();
                        match tokio::time::timeout(WRITE_TIMEOUT, transport.send(data)).await {
                            Ok(Ok(())) => tracing::trace!(conn, len, "written"),
                            other => {
                                tracing::debug!(conn, ?other, "write failed");
                                break 'conn;
                            }
                        }
                    }
                    Output::StartTls => {
                        if transport.start_tls().await.is_err() {
                            break 'conn;
                        }
                        c2s.tls_established();
                    }
                    Output::Bound(jid) => {
                        bound = true;
                        if let Some(tx) = tx.take() {
                            let _ = self.hub.send(HubMsg::Bound { conn, jid, tx }).await;
                        }
                    }
                    Output::Stanza(stanza) => {
                        let _ = self.hub.send(HubMsg::Stanza { conn, stanza }).await;
                    }
                    Output::Close => {
                        transport.close().await;
                        break 'conn;
                    }
                }
            }
            tokio::select! {
                data = transport.recv() => match data {
                    Some(data) => match framing {
                        Framing::Tcp => c2s.feed(&data),
                        Framing::WebSocket => c2s.feed_message(&data),
                    },
                    None => {
                        c2s.transport_closed();
                        break 'conn;
                    }
                },
                msg = rx.recv(), if bound => match msg {
                    Some(ConnMsg::Deliver(stanza)) => {
                        tracing::trace!(conn, stanza = %String::from(&stanza), "deliver");
                        c2s.send(&stanza)
                    }
                    Some(ConnMsg::Disconnect(condition)) => c2s.shutdown(Some(condition), None),
                    None => c2s.shutdown(Some("system-shutdown"), None),
                },
                _ = tokio::time::sleep_until(login_deadline), if !bound => {
                    c2s.shutdown(Some("connection-timeout"), Some("log in within a minute"));
                }
            }
        }
        let _ = self.hub.send(HubMsg::Closed { conn }).await;
    }
}

/// The router task: owns the [`Server`], delivers its output.
async fn run_hub(
    mut server: Server,
    mut rx: mpsc::Receiver<HubMsg>,
    hub: mpsc::Sender<HubMsg>,
    sfu: SfuHandle,
    recordings: Arc<dyn RecordingControl>,
) {
    let mut conns: std::collections::HashMap<ConnId, mpsc::Sender<ConnMsg>> = Default::default();
    while let Some(msg) = rx.recv().await {
        match msg {
            HubMsg::Bound { conn, jid, tx } => {
                tracing::info!(conn, %jid, "session bound");
                conns.insert(conn, tx);
                server.bound(conn, jid);
            }
            HubMsg::Stanza { conn, stanza } => server.stanza(conn, stanza),
            HubMsg::Closed { conn } => {
                conns.remove(&conn);
                server.disconnected(conn);
            }
            HubMsg::MediaCreated { call, result } => server.media_created(call, result),
            HubMsg::MediaEvent { endpoint, event } => server.media_event(endpoint, event),
            HubMsg::MediaFailed { endpoint, error } => server.media_failed(endpoint, error),
            HubMsg::Query(Query::Rooms(reply)) => {
                let _ = reply.send(server.room_summaries());
            }
            HubMsg::Query(Query::Room(jid, reply)) => {
                let _ = reply.send(server.room_snapshot(&jid));
            }
            HubMsg::Recorded {
                room,
                by,
                start: true,
            } => server.recording_started(&room, &by),
            HubMsg::Recorded {
                room,
                by,
                start: false,
            } => server.recording_stopped(&room, &by),
            HubMsg::RecordFailed { room, jid, error } => {
                server.recording_failed(&room, &jid, &error)
            }
            HubMsg::RecordingEnded { room, reason } => server.recording_ended(&room, &reason),
        }
        while let Some(out) = server.poll_output() {
            match out {
                ServerOutput::Deliver { conn, stanza } => {
                    let full = match conns.get(&conn) {
                        Some(tx) => tx.try_send(ConnMsg::Deliver(stanza)).is_err(),
                        None => false,
                    };
                    if full {
                        // It does not read what it is sent: drop it rather
                        // than queue without bound.
                        tracing::info!(conn, "connection not reading; disconnecting");
                        conns.remove(&conn);
                        server.disconnected(conn);
                    }
                }
                ServerOutput::Disconnect { conn, condition } => {
                    if let Some(tx) = conns.remove(&conn) {
                        let _ = tx.try_send(ConnMsg::Disconnect(condition));
                    }
                }
                ServerOutput::Media(cmd) => media(&sfu, &hub, cmd),
                ServerOutput::Record {
                    room,
                    nick,
                    jid,
                    start,
                } => record(&recordings, &hub, room, nick, jid, start),
            }
        }
    }
}

/// Carry out one media-plane request in its own task; results come back
/// to the router as messages.
fn media(sfu: &SfuHandle, hub: &mpsc::Sender<HubMsg>, cmd: MediaCommand) {
    let sfu = sfu.clone();
    let hub = hub.clone();
    match cmd {
        MediaCommand::Create {
            call,
            room,
            label,
            offer,
        } => {
            tokio::spawn(async move {
                match sfu.create_endpoint(RoomId::from(room), label, offer).await {
                    Ok((endpoint, answer, mut events)) => {
                        let _ = hub
                            .send(HubMsg::MediaCreated {
                                call,
                                result: Ok((endpoint, answer)),
                            })
                            .await;
                        while let Some(event) = events.recv().await {
                            if hub
                                .send(HubMsg::MediaEvent { endpoint, event })
                                .await
                                .is_err()
                            {
                                break;
                            }
                        }
                    }
                    Err(e) => {
                        let _ = hub
                            .send(HubMsg::MediaCreated {
                                call,
                                result: Err(e.to_string()),
                            })
                            .await;
                    }
                }
            });
        }
        MediaCommand::Answer { endpoint, answer } => {
            tokio::spawn(async move {
                if let Err(e) = sfu.accept_answer(endpoint, answer).await {
                    let _ = hub
                        .send(HubMsg::MediaFailed {
                            endpoint,
                            error: e.to_string(),
                        })
                        .await;
                }
            });
        }
        MediaCommand::Close { endpoint } => {
            tokio::spawn(async move {
                if let Err(e) = sfu.close_endpoint(endpoint).await {
                    tracing::debug!(%endpoint, error = %e, "closing an endpoint");
                }
            });
        }
    }
}

/// Carry out a moderator's recording command in its own task (stopping
/// waits for the files to close); the outcome comes back to the router.
fn record(
    recordings: &Arc<dyn RecordingControl>,
    hub: &mpsc::Sender<HubMsg>,
    room: BareJid,
    nick: String,
    jid: FullJid,
    start: bool,
) {
    let recordings = recordings.clone();
    let hub = hub.clone();
    tokio::spawn(async move {
        let result = if start {
            recordings.start(&room, &nick)
        } else {
            recordings.stop(&room).await
        };
        let msg = match result {
            Ok(()) => HubMsg::Recorded {
                room,
                by: nick,
                start,
            },
            Err(error) => {
                tracing::info!(%room, %error, "recording command failed");
                HubMsg::RecordFailed { room, jid, error }
            }
        };
        let _ = hub.send(msg).await;
    });
}

/// How a connection's bytes or messages travel.
trait Transport: Send + 'static {
    /// The next chunk (TCP) or message (WebSocket); `None` at the end.
    fn recv(&mut self) -> impl std::future::Future<Output = Option<Vec<u8>>> + Send;
    /// Write one piece of output.
    fn send(&mut self, data: String) -> impl std::future::Future<Output = io::Result<()>> + Send;
    /// Upgrade to TLS as the server.
    fn start_tls(&mut self) -> impl std::future::Future<Output = io::Result<()>> + Send;
    /// Close after flushing.
    fn close(&mut self) -> impl std::future::Future<Output = ()> + Send;
}

enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

struct TcpTransport {
    io: Option<Io>,
    tls: Option<TlsIdentity>,
    buf: Vec<u8>,
}

impl Transport for TcpTransport {
    async fn recv(&mut self) -> Option<Vec<u8>> {
        let n = match self.io.as_mut()? {
            Io::Plain(s) => s.read(&mut self.buf).await,
            Io::Tls(s) => s.read(&mut self.buf).await,
        };
        match n {
            Ok(0) | Err(_) => None,
            Ok(n) => Some(self.buf[..n].to_vec()),
        }
    }

    async fn send(&mut self, data: String) -> io::Result<()> {
        match self.io.as_mut() {
            Some(Io::Plain(s)) => s.write_all(data.as_bytes()).await,
            Some(Io::Tls(s)) => {
                s.write_all(data.as_bytes()).await?;
                s.flush().await
            }
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    async fn start_tls(&mut self) -> io::Result<()> {
        let (Some(tls), Some(Io::Plain(stream))) = (self.tls.as_ref(), self.io.take()) else {
            return Err(io::Error::other("TLS unavailable"));
        };
        let tls_stream = tokio::time::timeout(WRITE_TIMEOUT, tls.acceptor().accept(stream))
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
        self.io = Some(Io::Tls(Box::new(tls_stream)));
        Ok(())
    }

    async fn close(&mut self) {
        match self.io.as_mut() {
            Some(Io::Plain(s)) => {
                let _ = s.shutdown().await;
            }
            Some(Io::Tls(s)) => {
                let _ = s.shutdown().await;
            }
            None => {}
        }
    }
}

struct WsTransport {
    rx: mpsc::Receiver<Vec<u8>>,
    tx: mpsc::Sender<WsOut>,
}

impl Transport for WsTransport {
    async fn recv(&mut self) -> Option<Vec<u8>> {
        self.rx.recv().await
    }

    async fn send(&mut self, data: String) -> io::Result<()> {
        self.tx
            .send(WsOut::Text(data))
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
    }

    async fn start_tls(&mut self) -> io::Result<()> {
        Err(io::Error::other("no STARTTLS on WebSocket"))
    }

    async fn close(&mut self) {
        let _ = self.tx.send(WsOut::Close).await;
    }
}
