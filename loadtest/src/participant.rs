//! One simulated Confab participant, driven: an [`XmppClient`] that joins a
//! room and calls it over Jingle exactly as docs/PROTOCOL.md says (the browser
//! page does the same), [`ParticipantCall`] for the participant's side of
//! the session, and a [`MediaPeer`] on its own UDP socket for the media.
//!
//! This is the thin async driver: one tokio task per participant waits on
//! its XMPP stream, its socket and the peer's next timeout, and feeds
//! whichever is ready into the sans-IO parts. Many such tasks share each
//! runtime thread.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use confab_client::call::ParticipantCall;
use confab_client::room::{iq, iq_answer};
use confab_client::xmpp::{error_condition, XmppClient};
use confab_proto::jingle_sdp::Media;
use confab_proto::ns::NS_JINGLE;
use minidom::Element;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::media::VideoClip;
use crate::peer::{MediaPeer, PeerConfig};
use crate::stats::{Kind, Received};
use crate::{Step, Update};

/// How long a participant waits for the room to answer its join.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);

/// How participants reach the bridge's XMPP service.
#[derive(Debug, Clone)]
pub enum Server {
    /// RFC 7395 WebSocket at this URL (`ws://host:port/xmpp-websocket`).
    WebSocket(String),
    /// RFC 6120 over TCP with STARTTLS, trusting this certificate (PEM).
    Tcp {
        /// host:port.
        addr: SocketAddr,
        /// The server's certificate.
        cert_pem: String,
    },
}

/// How participants log in.
#[derive(Debug, Clone)]
pub struct Login {
    /// Where.
    pub server: Server,
    /// The XMPP domain (rooms are at `conference.<domain>`).
    pub domain: String,
    /// An account (`user`, `password`) every participant logs in as, each
    /// with its own resource; guests (SASL ANONYMOUS) when `None`.
    pub account: Option<(String, String)>,
}

/// What is common to every participant of a run.
#[derive(Debug)]
pub struct Shared {
    /// Login details.
    pub login: Login,
    /// The video every publisher sends.
    pub clip: Arc<VideoClip>,
    /// Publishers send Opus too.
    pub audio: bool,
    /// The address media sockets bind to (and announce as host candidate).
    pub media_ip: IpAddr,
    /// When the run started (per-second samples count from here).
    pub run_start: Instant,
    /// When everyone leaves.
    pub end_at: Instant,
    /// Where steps and per-second samples go.
    pub updates: mpsc::UnboundedSender<Update>,
}

/// One participant's part in the run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Its index in the run.
    pub id: usize,
    /// The room's bare JID.
    pub room: String,
    /// Its nick.
    pub nick: String,
    /// Whether it publishes audio and video.
    pub publish: bool,
    /// Stalls of its media: `(start, end)`.
    pub stalls: Vec<(Instant, Instant)>,
}

/// Milliseconds from the participant's start to each step of joining.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct JoinSteps {
    /// Logged in (stream open, authenticated, bound).
    pub logged_in: Option<f64>,
    /// The room sent our own presence (status 110).
    pub room_joined: Option<f64>,
    /// The bridge's session-accept arrived and was applied.
    pub session_accepted: Option<f64>,
    /// ICE and DTLS connected.
    pub ice_connected: Option<f64>,
    /// The first remote video frame arrived.
    pub first_frame: Option<f64>,
}

/// What one participant did and saw.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    /// Room bare JID.
    pub room: String,
    /// Nick.
    pub nick: String,
    /// Whether it published.
    pub publisher: bool,
    /// Join timings.
    pub join_ms: JoinSteps,
    /// Why it stopped early, if it did.
    pub error: Option<String>,
    /// Things that went wrong without stopping it.
    pub problems: Vec<String>,
    /// What it received, per publisher and kind.
    #[serde(skip)]
    pub received: Received,
}

/// Milliseconds from `t0` to `t`.
pub(crate) fn ms_since(t0: Instant, t: Instant) -> f64 {
    t.saturating_duration_since(t0).as_secs_f64() * 1000.0
}

impl JoinSteps {
    /// Notes the media steps the first time each is reached: ICE connected
    /// at `connected_at` and the first remote frame at `first_frame_at`
    /// (both timed from `t0`), telling `step` of each once.
    pub(crate) fn media_reached(
        &mut self,
        t0: Instant,
        connected_at: Option<Instant>,
        first_frame_at: Option<Instant>,
        step: impl Fn(Step),
    ) {
        if let (None, Some(at)) = (self.ice_connected, connected_at) {
            self.ice_connected = Some(ms_since(t0, at));
            step(Step::IceConnected);
        }
        if let (None, Some(at)) = (self.first_frame, first_frame_at) {
            self.first_frame = Some(ms_since(t0, at));
            step(Step::FirstFrame);
        }
    }
}

/// Runs one participant until `shared.end_at`, then leaves.
pub async fn run(plan: Plan, shared: Arc<Shared>) -> Outcome {
    let mut out = Outcome {
        room: plan.room.clone(),
        nick: plan.nick.clone(),
        publisher: plan.publish,
        join_ms: JoinSteps::default(),
        error: None,
        problems: Vec::new(),
        received: Received::new(),
    };
    if let Err(e) = drive(&plan, &shared, &mut out).await {
        let _ = shared.updates.send(Update::Step(plan.id, Step::Failed));
        out.error = Some(e);
    }
    out
}

/// Logs in, as a guest or with the shared account (resource = nick).
pub async fn login(login: &Login, resource: &str) -> Result<XmppClient, String> {
    match (&login.server, &login.account) {
        (Server::WebSocket(url), None) => XmppClient::connect_ws(url, &login.domain).await,
        (Server::WebSocket(url), Some((u, p))) => Ok(XmppClient::Ws(Box::new(
            confab_client::xmpp::WsClient::connect(url, &login.domain, Some((u, p))).await?,
        ))),
        (Server::Tcp { addr, cert_pem }, Some((u, p))) => {
            XmppClient::connect_tcp(
                *addr,
                cert_pem,
                &format!("{u}@{}/{resource}", login.domain),
                p,
            )
            .await
        }
        (Server::Tcp { .. }, None) => {
            Err("XMPP over TCP needs an account (--user, --password)".into())
        }
    }
}

async fn drive(plan: &Plan, shared: &Shared, out: &mut Outcome) -> Result<(), String> {
    let t0 = Instant::now();
    let step = |s: Step| {
        let _ = shared.updates.send(Update::Step(plan.id, s));
    };
    let mut xmpp = login(&shared.login, &plan.nick).await?;
    out.join_ms.logged_in = Some(ms_since(t0, Instant::now()));
    step(Step::LoggedIn);

    confab_client::room::join(&mut xmpp, &plan.room, &plan.nick, None, JOIN_TIMEOUT)
        .await
        .map_err(|e| match e {
            confab_client::room::JoinError::Refused(condition) => {
                format!("join refused: {condition}")
            }
            confab_client::room::JoinError::NoAnswer => "the room did not answer the join".into(),
            confab_client::room::JoinError::Stream(e) => e,
        })?;
    out.join_ms.room_joined = Some(ms_since(t0, Instant::now()));
    step(Step::RoomJoined);

    let socket = UdpSocket::bind(SocketAddr::new(shared.media_ip, 0))
        .await
        .map_err(|e| format!("UDP socket: {e}"))?;
    let local = socket.local_addr().map_err(|e| e.to_string())?;
    let config = PeerConfig {
        clip: shared.clip.clone(),
        publish: plan.publish,
        audio: shared.audio,
        stalls: plan.stalls.clone(),
    };
    let mut peer = MediaPeer::new(config, local, shared.run_start, Instant::now())
        .map_err(|e| e.to_string())?;
    let offer = peer.offer(&plan.nick).map_err(|e| e.to_string())?;
    let sid = format!("load-{}-{}", plan.id, rand::random::<u32>());
    let own = xmpp.jid().to_string();
    let (mut call, initiate) =
        ParticipantCall::initiate(&sid, &own, &plan.room, &offer).map_err(|e| e.to_string())?;
    xmpp.send(iq("set", &plan.room, "initiate", initiate))
        .await?;

    let mut buf = vec![0u8; 2000];
    let mut next_second = shared.run_start + Duration::from_secs(1);
    while next_second <= Instant::now() {
        next_second += Duration::from_secs(1);
    }
    let mut next_id = 0u64;
    let result = loop {
        let now = Instant::now();
        if now >= shared.end_at {
            break Ok(());
        }
        let wake = peer.timeout().min(next_second).min(shared.end_at);
        tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok((n, from)) => peer.handle_receive(Instant::now(), from, &buf[..n]),
                Err(e) => break Err(format!("UDP receive: {e}")),
            },
            r = xmpp.recv(Duration::from_secs(3600)) => match r {
                Ok(Some(el)) => {
                    if let Err(e) = handle_stanza(el, &mut xmpp, &mut call, &mut peer, out, &mut next_id).await {
                        break Err(e);
                    }
                    if out.join_ms.session_accepted.is_none() && call.is_accepted() {
                        out.join_ms.session_accepted = Some(ms_since(t0, Instant::now()));
                        step(Step::SessionAccepted);
                    }
                    if call.is_ended() {
                        break Err("the bridge ended the session".into());
                    }
                }
                Ok(None) => {}
                Err(e) => break Err(format!("XMPP: {e}")),
            },
            _ = tokio::time::sleep_until(wake.into()) => peer.handle_timeout(Instant::now()),
        }
        while let Some((to, data)) = peer.poll_transmit() {
            if let Err(e) = socket.send_to(&data, to).await {
                tracing::debug!(error = %e, "UDP send");
            }
        }
        out.join_ms
            .media_reached(t0, peer.connected_at(), peer.first_frame_at(), step);
        let now = Instant::now();
        if now >= next_second {
            let _ = shared
                .updates
                .send(Update::Second(plan.id, peer.take_second(now)));
            next_second += Duration::from_secs(1);
        }
    };
    let end = Instant::now();
    let _ = shared
        .updates
        .send(Update::Second(plan.id, peer.take_second(end)));
    out.received = peer.finish(end.min(shared.end_at.max(end)));
    if peer.is_disconnected() {
        out.problems.push("ICE disconnected".into());
    }
    // Leave as a client would: hang up, leave the room, close the stream.
    if !call.is_ended() {
        let bye = call.terminate(xmpp_parsers::jingle::Reason::Success);
        let _ = xmpp.send(iq("set", &plan.room, "bye", bye)).await;
    }
    let _ = xmpp
        .send(confab_client::room::leave_presence(&plan.room, &plan.nick))
        .await;
    xmpp.close().await;
    result
}

/// One stanza from the server. Returns `Err` only when the call cannot go
/// on (the session-initiate was refused, the stream broke).
async fn handle_stanza(
    el: Element,
    xmpp: &mut XmppClient,
    call: &mut ParticipantCall,
    peer: &mut MediaPeer,
    out: &mut Outcome,
    next_id: &mut u64,
) -> Result<(), String> {
    if el.name() != "iq" {
        return Ok(());
    }
    match el.attr("type") {
        Some("error") if el.attr("id") == Some("initiate") => {
            return Err(format!(
                "session-initiate refused: {}",
                error_condition(&el).unwrap_or_default()
            ));
        }
        Some("error") => {
            out.problems.push(format!(
                "IQ error: {}",
                error_condition(&el).unwrap_or_default()
            ));
            return Ok(());
        }
        Some("set") => {}
        _ => return Ok(()),
    }
    let Some(jingle) = el.get_child("jingle", NS_JINGLE) else {
        xmpp.send(iq_answer(&el, Some("bad-request"))).await?;
        return Ok(());
    };
    let now = Instant::now();
    let action = jingle.attr("action").unwrap_or("");
    let applied: Result<Option<Element>, String> = match action {
        "session-accept" => call
            .on_session_accept(jingle)
            .map_err(|e| e.to_string())
            .and_then(|sdp| peer.accept_answer(now, &sdp).map_err(|e| e.to_string()))
            .map(|()| None),
        "content-add" => (|| {
            let offer = call.on_content_add(jingle).map_err(|e| e.to_string())?;
            for t in call.remote_tracks() {
                let owner = t
                    .owner
                    .as_deref()
                    .and_then(|o| o.split_once('/'))
                    .map(|(_, n)| n)
                    .unwrap_or("?");
                let kind = match t.media {
                    Media::Audio => Kind::Audio,
                    _ => Kind::Video,
                };
                peer.set_owner(&t.name, owner, kind);
            }
            let answer = peer
                .accept_offer(now, &offer.sdp)
                .map_err(|e| e.to_string())?;
            call.content_accept(&answer)
                .map(Some)
                .map_err(|e| e.to_string())
        })(),
        "content-remove" => call
            .on_content_remove(jingle)
            .map_err(|e| e.to_string())
            .and_then(|offer| {
                peer.accept_offer(now, &offer.sdp)
                    .map_err(|e| e.to_string())
            })
            .map(|_| None),
        "session-terminate" => {
            let _ = call.on_session_terminate(jingle);
            Ok(None)
        }
        other => Err(format!("unexpected Jingle action {other}")),
    };
    xmpp.send(iq_answer(
        &el,
        applied.as_ref().err().map(|_| "bad-request"),
    ))
    .await?;
    match applied {
        Ok(Some(accept)) => {
            *next_id += 1;
            let room = call.room_jid().to_string();
            xmpp.send(iq("set", &room, &format!("accept-{next_id}"), accept))
                .await?;
        }
        Ok(None) => {}
        Err(e) => out.problems.push(format!("{action}: {e}")),
    }
    Ok(())
}
