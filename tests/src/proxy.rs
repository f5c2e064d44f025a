//! A lossy UDP relay for putting packet loss between WebRTC peers and a server.
//!
//! [`LossyProxy`] listens on `127.0.0.1:<ephemeral>` and relays datagrams to a fixed server
//! address. Every distinct client source address gets its own upstream socket, so the
//! server sees one (proxy-owned) address per client and its replies can be routed back to
//! the right client. Both directions are forwarded.
//!
//! Loss is applied per direction and per client with [`LossyProxy::set_loss_toward`]
//! (server → client) and [`LossyProxy::set_loss_from`] (client → server). Only SRTP/SRTCP
//! datagrams — first byte in `128..=191` (RFC 7983 demultiplexing) — are ever dropped; STUN
//! (`0..=3`) and DTLS (`20..=63`) always pass, so ICE consent and the DTLS handshake are
//! unaffected and only media/RTCP sees the loss.
//!
//! To route a peer through the proxy, give it the proxy's address instead of the server's
//! ICE candidate, e.g. with [`rewrite_candidates`] on the server's SDP.
//!
//! The proxy holds no queues: each datagram is read into a fixed buffer and sent on (or
//! dropped) before the next is read. The number of client sessions is capped at
//! [`MAX_SESSIONS`]. All tasks are aborted when the proxy is dropped.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// Largest datagram relayed; anything bigger is truncated by the OS read and dropped.
const MAX_DATAGRAM: usize = 2048;
/// Upper bound on distinct client addresses; datagrams from further clients are dropped.
pub const MAX_SESSIONS: usize = 256;

/// Which clients a loss rule applies to.
#[derive(Clone)]
pub enum ClientFilter {
    /// Every client.
    All,
    /// The client with exactly this source address (a peer's
    /// [`local_addr`](crate::peer::TestPeer::local_addr)).
    Addr(SocketAddr),
    /// Any client for which the predicate returns true.
    Predicate(Arc<dyn Fn(SocketAddr) -> bool + Send + Sync>),
}

impl ClientFilter {
    /// A filter from a closure.
    pub fn predicate(f: impl Fn(SocketAddr) -> bool + Send + Sync + 'static) -> Self {
        ClientFilter::Predicate(Arc::new(f))
    }

    fn matches(&self, client: SocketAddr) -> bool {
        match self {
            ClientFilter::All => true,
            ClientFilter::Addr(addr) => *addr == client,
            ClientFilter::Predicate(f) => f(client),
        }
    }
}

impl From<SocketAddr> for ClientFilter {
    fn from(addr: SocketAddr) -> Self {
        ClientFilter::Addr(addr)
    }
}

impl std::fmt::Debug for ClientFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientFilter::All => f.write_str("All"),
            ClientFilter::Addr(a) => write!(f, "Addr({a})"),
            ClientFilter::Predicate(_) => f.write_str("Predicate(..)"),
        }
    }
}

/// Direction a datagram travels through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Server → client.
    ToClient,
    /// Client → server.
    ToServer,
}

#[derive(Debug, Clone)]
struct LossRule {
    direction: Direction,
    filter: ClientFilter,
    ratio: f64,
}

/// Per-client counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// The proxy socket the server sees this client as.
    pub upstream_addr: Option<SocketAddr>,
    /// Datagrams relayed to the client / to the server.
    pub to_client: u64,
    pub to_server: u64,
    /// SRTP datagrams dropped on the way to the client / to the server.
    pub dropped_to_client: u64,
    pub dropped_to_server: u64,
}

struct Session {
    upstream: Arc<UdpSocket>,
    task: JoinHandle<()>,
    stats: Arc<Mutex<ClientStats>>,
}

struct State {
    server: SocketAddr,
    public: Arc<UdpSocket>,
    sessions: Mutex<HashMap<SocketAddr, Session>>,
    rules: Mutex<Vec<LossRule>>,
    rng: Mutex<StdRng>,
    dropped: AtomicU64,
}

impl State {
    /// Whether a datagram going `direction` for `client` should be dropped.
    fn should_drop(&self, direction: Direction, client: SocketAddr, datagram: &[u8]) -> bool {
        // RFC 7983: only RTP/RTCP (128..=191) is subject to loss.
        if !matches!(datagram.first(), Some(128..=191)) {
            return false;
        }
        let ratio = {
            let rules = self.rules.lock().expect("rules lock");
            // The most recently set matching rule wins.
            rules
                .iter()
                .rev()
                .find(|r| r.direction == direction && r.filter.matches(client))
                .map(|r| r.ratio)
                .unwrap_or(0.0)
        };
        if ratio <= 0.0 {
            return false;
        }
        let drop = ratio >= 1.0 || self.rng.lock().expect("rng lock").gen::<f64>() < ratio;
        if drop {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        drop
    }
}

/// A UDP relay on 127.0.0.1 between clients and one server address. See the module docs.
pub struct LossyProxy {
    addr: SocketAddr,
    state: Arc<State>,
    main_task: JoinHandle<()>,
}

impl LossyProxy {
    /// Starts a proxy in front of `server`. Loss decisions use a fixed RNG seed so runs are
    /// reproducible; see [`LossyProxy::start_with_seed`].
    pub async fn start(server: SocketAddr) -> LossyProxy {
        Self::start_with_seed(server, 0x00C0_FFEE).await
    }

    /// Starts a proxy in front of `server` whose loss decisions come from `seed`.
    pub async fn start_with_seed(server: SocketAddr, seed: u64) -> LossyProxy {
        let public = Arc::new(
            UdpSocket::bind("127.0.0.1:0")
                .await
                .expect("bind proxy socket on 127.0.0.1"),
        );
        let addr = public.local_addr().expect("proxy local addr");
        let state = Arc::new(State {
            server,
            public: Arc::clone(&public),
            sessions: Mutex::new(HashMap::new()),
            rules: Mutex::new(Vec::new()),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            dropped: AtomicU64::new(0),
        });
        let main_task = tokio::spawn(client_loop(Arc::clone(&state)));
        tracing::debug!(%addr, %server, "lossy proxy started");
        LossyProxy {
            addr,
            state,
            main_task,
        }
    }

    /// The address clients should send to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server address datagrams are relayed to.
    pub fn server(&self) -> SocketAddr {
        self.state.server
    }

    /// Drops `ratio` (0.0..=1.0) of the SRTP/SRTCP datagrams going from the server to the
    /// clients matched by `clients`. Rules accumulate and, per datagram, the most recently
    /// set rule matching its client wins — so `set_loss_toward(ClientFilter::All, 0.0)`
    /// turns loss toward everyone off again.
    pub fn set_loss_toward(&self, clients: impl Into<ClientFilter>, ratio: f64) {
        self.set_loss(Direction::ToClient, clients.into(), ratio);
    }

    /// Like [`set_loss_toward`](Self::set_loss_toward), for datagrams from the clients to
    /// the server.
    pub fn set_loss_from(&self, clients: impl Into<ClientFilter>, ratio: f64) {
        self.set_loss(Direction::ToServer, clients.into(), ratio);
    }

    /// Adds a loss rule for `direction`.
    pub fn set_loss(&self, direction: Direction, filter: ClientFilter, ratio: f64) {
        assert!(
            (0.0..=1.0).contains(&ratio),
            "loss ratio {ratio} out of range"
        );
        tracing::debug!(?direction, ?filter, ratio, "proxy loss rule");
        let mut rules = self.state.rules.lock().expect("rules lock");
        // Keep the rule list bounded: a rule for `All` shadows everything before it.
        if matches!(filter, ClientFilter::All) {
            rules.retain(|r| r.direction != direction);
        }
        rules.push(LossRule {
            direction,
            filter,
            ratio,
        });
    }

    /// Removes every loss rule.
    pub fn clear_loss(&self) {
        self.state.rules.lock().expect("rules lock").clear();
    }

    /// Total SRTP datagrams dropped, both directions.
    pub fn dropped(&self) -> u64 {
        self.state.dropped.load(Ordering::Relaxed)
    }

    /// SRTP datagrams dropped on the way to `client`.
    pub fn dropped_toward(&self, client: SocketAddr) -> u64 {
        self.client_stats(client)
            .map(|s| s.dropped_to_client)
            .unwrap_or(0)
    }

    /// Client source addresses seen so far.
    pub fn clients(&self) -> Vec<SocketAddr> {
        let sessions = self.state.sessions.lock().expect("sessions lock");
        let mut v: Vec<_> = sessions.keys().copied().collect();
        v.sort();
        v
    }

    /// Counters for one client, if it has sent anything.
    pub fn client_stats(&self, client: SocketAddr) -> Option<ClientStats> {
        let sessions = self.state.sessions.lock().expect("sessions lock");
        sessions
            .get(&client)
            .map(|s| s.stats.lock().expect("stats lock").clone())
    }
}

impl Drop for LossyProxy {
    fn drop(&mut self) {
        self.main_task.abort();
        if let Ok(mut sessions) = self.state.sessions.lock() {
            for (_, session) in sessions.drain() {
                session.task.abort();
            }
        }
    }
}

/// Reads datagrams from clients and relays them upstream, creating sessions on demand.
async fn client_loop(state: Arc<State>) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (len, client) = match state.public.recv_from(&mut buf).await {
            Ok(v) => v,
            Err(err) => {
                // ICMP errors surface here on some platforms; they are per datagram.
                tracing::trace!(%err, "proxy recv from client failed");
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                continue;
            }
        };
        let datagram = &buf[..len];
        let Some((upstream, stats)) = session_for(&state, client).await else {
            continue;
        };
        if state.should_drop(Direction::ToServer, client, datagram) {
            stats.lock().expect("stats lock").dropped_to_server += 1;
            continue;
        }
        if let Err(err) = upstream.send(datagram).await {
            tracing::trace!(%err, %client, "proxy send to server failed");
            continue;
        }
        stats.lock().expect("stats lock").to_server += 1;
    }
}

/// The upstream socket for `client`, creating it (and its return-path task) if needed.
async fn session_for(
    state: &Arc<State>,
    client: SocketAddr,
) -> Option<(Arc<UdpSocket>, Arc<Mutex<ClientStats>>)> {
    {
        let sessions = state.sessions.lock().expect("sessions lock");
        if let Some(s) = sessions.get(&client) {
            return Some((Arc::clone(&s.upstream), Arc::clone(&s.stats)));
        }
        if sessions.len() >= MAX_SESSIONS {
            tracing::warn!(%client, "proxy session limit reached; dropping datagram");
            return None;
        }
    }
    let upstream = match UdpSocket::bind("127.0.0.1:0").await {
        Ok(s) => s,
        Err(err) => {
            tracing::warn!(%err, "proxy could not bind an upstream socket");
            return None;
        }
    };
    if let Err(err) = upstream.connect(state.server).await {
        tracing::warn!(%err, "proxy could not connect upstream socket");
        return None;
    }
    let upstream = Arc::new(upstream);
    let stats = Arc::new(Mutex::new(ClientStats {
        upstream_addr: upstream.local_addr().ok(),
        ..Default::default()
    }));
    let task = tokio::spawn(server_loop(
        Arc::clone(state),
        Arc::clone(&upstream),
        client,
        Arc::clone(&stats),
    ));
    tracing::debug!(%client, upstream = ?stats.lock().expect("stats lock").upstream_addr, "proxy session");
    state.sessions.lock().expect("sessions lock").insert(
        client,
        Session {
            upstream: Arc::clone(&upstream),
            task,
            stats: Arc::clone(&stats),
        },
    );
    Some((upstream, stats))
}

/// Relays datagrams from the server back to one client.
async fn server_loop(
    state: Arc<State>,
    upstream: Arc<UdpSocket>,
    client: SocketAddr,
    stats: Arc<Mutex<ClientStats>>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let len = match upstream.recv(&mut buf).await {
            Ok(len) => len,
            Err(err) => {
                // e.g. ECONNREFUSED after an ICMP port unreachable: not fatal.
                tracing::trace!(%err, %client, "proxy recv from server failed");
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                continue;
            }
        };
        let datagram = &buf[..len];
        if state.should_drop(Direction::ToClient, client, datagram) {
            stats.lock().expect("stats lock").dropped_to_client += 1;
            continue;
        }
        if let Err(err) = state.public.send_to(datagram, client).await {
            tracing::trace!(%err, %client, "proxy send to client failed");
            continue;
        }
        stats.lock().expect("stats lock").to_client += 1;
    }
}

/// Rewrites every `a=candidate` line of `sdp` whose address is `from` so that it points at
/// `to` instead — e.g. to make peers reach a server through a [`LossyProxy`]. Lines for
/// other addresses are left untouched. Line endings are normalised to CRLF.
pub fn rewrite_candidates(sdp: &str, from: SocketAddr, to: SocketAddr) -> String {
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.lines() {
        let rewritten = rewrite_candidate_line(line, from, to);
        out.push_str(rewritten.as_deref().unwrap_or(line));
        out.push_str("\r\n");
    }
    out
}

fn rewrite_candidate_line(line: &str, from: SocketAddr, to: SocketAddr) -> Option<String> {
    let rest = line.strip_prefix("a=candidate:")?;
    // foundation component transport priority address port typ ...
    let mut parts: Vec<String> = rest.split(' ').map(str::to_owned).collect();
    if parts.len() < 6 {
        return None;
    }
    let ip: std::net::IpAddr = parts[4].parse().ok()?;
    let port: u16 = parts[5].parse().ok()?;
    if SocketAddr::new(ip, port) != from {
        return None;
    }
    parts[4] = to.ip().to_string();
    parts[5] = to.port().to_string();
    Some(format!("a=candidate:{}", parts.join(" ")))
}
