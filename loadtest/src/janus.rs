//! The same simulated participants against a Janus VideoRoom (Janus 1.x,
//! its HTTP API with long polls), so Confab and Janus are measured side by
//! side with the same media and the same measurements.
//!
//! Each participant creates a Janus session with two VideoRoom handles:
//! one joins the room as a publisher (and, if it publishes, sends its
//! str0m offer in a `configure`), the other is its multistream subscriber
//! (`join` as subscriber, then `subscribe` for each publisher that
//! appears; Janus offers, the peer answers with `start`). So it runs two
//! [`MediaPeer`]s: one that sends, one that receives. The room is created
//! by whoever comes first (`create`; "already exists" is fine).
//!
//! Join steps map as: logged in = session and handles made; room joined =
//! `joined`; session accepted = the publisher's answer applied (for a
//! receiver: its first subscription answered); ICE connected = the first of
//! its peers to connect.
//!
//! Janus relies on libnice, which never uses loopback addresses: run Janus
//! and the load tester in a network namespace with a non-loopback address
//! (loadtest/README.md shows how) and pass it as `--media-ip`.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::media::VideoClip;
use crate::participant::{ms_since, JoinSteps, Outcome, Plan};
use crate::peer::{MediaPeer, PeerConfig};
use crate::stats::Kind;
use crate::{Step, Update};

/// What is common to every Janus participant of a run.
#[derive(Debug)]
pub struct Shared {
    /// Janus HTTP API, e.g. `http://10.77.0.1:8088/janus`.
    pub api: String,
    /// The video every publisher sends.
    pub clip: Arc<VideoClip>,
    /// Publishers send Opus too.
    pub audio: bool,
    /// The address media sockets bind to.
    pub media_ip: IpAddr,
    /// When the run started.
    pub run_start: Instant,
    /// When everyone leaves.
    pub end_at: Instant,
    /// Where steps and per-second samples go.
    pub updates: mpsc::UnboundedSender<Update>,
    /// Numeric room ids start here (room `<prefix>-<n>` is `room_base + n`).
    pub room_base: u64,
}

/// Janus's HTTP API: JSON requests, one long poll per session.
#[derive(Clone)]
struct Api {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

impl Api {
    fn new(base: &str) -> Api {
        Api {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: base.trim_end_matches('/').to_string(),
        }
    }

    async fn request(
        &self,
        method: hyper::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let uri = format!("{}{path}", self.base);
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let req = hyper::Request::builder()
            .method(method)
            .uri(&uri)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("{uri}: {e}"))?;
        let res = tokio::time::timeout(Duration::from_secs(40), self.client.request(req))
            .await
            .map_err(|_| format!("{uri}: timed out"))?
            .map_err(|e| format!("{uri}: {e}"))?;
        let bytes = res
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("{uri}: {e}"))?
            .to_bytes();
        serde_json::from_slice(&bytes).map_err(|e| format!("{uri}: not JSON: {e}"))
    }

    /// A request whose answer is `success` (or an `ack`; events come later).
    async fn post(&self, path: &str, mut body: Value) -> Result<Value, String> {
        body["transaction"] = json!(format!("t{}", rand::random::<u64>()));
        let v = self.request(hyper::Method::POST, path, Some(body)).await?;
        match v["janus"].as_str() {
            Some("success" | "ack") => Ok(v),
            _ => Err(format!(
                "Janus refused: {}",
                v["error"]["reason"].as_str().unwrap_or("?")
            )),
        }
    }

    async fn poll(&self, session: u64) -> Result<Vec<Value>, String> {
        let v = self
            .request(hyper::Method::GET, &format!("/{session}?maxev=20"), None)
            .await?;
        Ok(match v {
            Value::Array(events) => events,
            one => vec![one],
        })
    }
}

/// Runs one participant against Janus until `shared.end_at`.
pub async fn run(plan: Plan, shared: Arc<Shared>) -> Outcome {
    let mut out = Outcome {
        room: plan.room.clone(),
        nick: plan.nick.clone(),
        publisher: plan.publish,
        join_ms: JoinSteps::default(),
        error: None,
        problems: Vec::new(),
        received: Default::default(),
    };
    let api = Api::new(&shared.api);
    let mut session = None;
    if let Err(e) = drive(&plan, &shared, &api, &mut out, &mut session).await {
        let _ = shared.updates.send(Update::Step(plan.id, Step::Failed));
        out.error = Some(e);
    }
    if let Some(s) = session {
        let _ = api
            .post(&format!("/{s}"), json!({"janus": "destroy"}))
            .await;
    }
    out
}

fn room_number(shared: &Shared, room: &str) -> u64 {
    let n: u64 = room
        .rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    shared.room_base + n
}

async fn media_socket(ip: IpAddr) -> Result<(UdpSocket, SocketAddr), String> {
    let s = UdpSocket::bind(SocketAddr::new(ip, 0))
        .await
        .map_err(|e| format!("UDP socket: {e}"))?;
    let a = s.local_addr().map_err(|e| e.to_string())?;
    Ok((s, a))
}

async fn drive(
    plan: &Plan,
    shared: &Shared,
    api: &Api,
    out: &mut Outcome,
    session_id: &mut Option<u64>,
) -> Result<(), String> {
    let t0 = Instant::now();
    let step = |s: Step| {
        let _ = shared.updates.send(Update::Step(plan.id, s));
    };
    let room = room_number(shared, &plan.room);
    let session = api.post("", json!({"janus": "create"})).await?["data"]["id"]
        .as_u64()
        .ok_or("no session id")?;
    *session_id = Some(session);
    let attach = json!({"janus": "attach", "plugin": "janus.plugin.videoroom"});
    let pub_handle = api.post(&format!("/{session}"), attach.clone()).await?["data"]["id"]
        .as_u64()
        .ok_or("no handle id")?;
    let sub_handle = api.post(&format!("/{session}"), attach).await?["data"]["id"]
        .as_u64()
        .ok_or("no handle id")?;
    out.join_ms.logged_in = Some(ms_since(t0, Instant::now()));
    step(Step::LoggedIn);

    let codec = shared.clip.codec.name();
    let create = json!({"janus": "message", "body": {
        "request": "create", "room": room, "publishers": 100, "videocodec": codec, "audiocodec": "opus",
        "bitrate": 0, "fir_freq": 10, "notify_joining": false,
    }});
    let created = api
        .post(&format!("/{session}/{pub_handle}"), create)
        .await?;
    let data = &created["plugindata"]["data"];
    if data["videoroom"] != "created" && data["error_code"] != 427 {
        return Err(format!(
            "room create: {}",
            data["error"].as_str().unwrap_or("?")
        ));
    }

    // Long polls feed the participant's loop.
    let (events_tx, mut events) = mpsc::unbounded_channel::<Value>();
    let poller = {
        let api = api.clone();
        tokio::spawn(async move {
            loop {
                match api.poll(session).await {
                    Ok(evs) => {
                        for e in evs {
                            if events_tx.send(e).is_err() {
                                return;
                            }
                        }
                    }
                    Err(e) => {
                        let _ = events_tx.send(json!({"janus": "poll-error", "reason": e}));
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        })
    };

    let join = json!({"janus": "message", "body": {
        "request": "join", "ptype": "publisher", "room": room, "display": plan.nick,
    }});
    api.post(&format!("/{session}/{pub_handle}"), join).await?;

    let (pub_socket, pub_addr) = media_socket(shared.media_ip).await?;
    let (sub_socket, sub_addr) = media_socket(shared.media_ip).await?;
    let now = Instant::now();
    let mut pub_peer = MediaPeer::new(
        PeerConfig {
            clip: shared.clip.clone(),
            publish: plan.publish,
            audio: shared.audio,
            stalls: plan.stalls.clone(),
        },
        pub_addr,
        shared.run_start,
        now,
    )
    .map_err(|e| e.to_string())?;
    let mut sub_peer = MediaPeer::new(
        PeerConfig {
            clip: shared.clip.clone(),
            publish: false,
            audio: false,
            stalls: Vec::new(),
        },
        sub_addr,
        shared.run_start,
        now,
    )
    .map_err(|e| e.to_string())?;

    let mut joined = false;
    let mut known: BTreeSet<u64> = BTreeSet::new();
    let mut pending_feeds: Vec<u64> = Vec::new();
    let mut sub_state = SubState::None;
    let mut pub_buf = vec![0u8; 2000];
    let mut sub_buf = vec![0u8; 2000];
    let mut next_second = shared.run_start + Duration::from_secs(1);
    while next_second <= Instant::now() {
        next_second += Duration::from_secs(1);
    }
    let result = loop {
        if Instant::now() >= shared.end_at {
            break Ok(());
        }
        let wake = pub_peer
            .timeout()
            .min(sub_peer.timeout())
            .min(next_second)
            .min(shared.end_at);
        tokio::select! {
            r = pub_socket.recv_from(&mut pub_buf) => match r {
                Ok((n, from)) => pub_peer.handle_receive(Instant::now(), from, &pub_buf[..n]),
                Err(e) => break Err(format!("UDP receive: {e}")),
            },
            r = sub_socket.recv_from(&mut sub_buf) => match r {
                Ok((n, from)) => sub_peer.handle_receive(Instant::now(), from, &sub_buf[..n]),
                Err(e) => break Err(format!("UDP receive: {e}")),
            },
            ev = events.recv() => {
                let Some(ev) = ev else { break Err("long poll ended".into()) };
                let now = Instant::now();
                let sender = ev["sender"].as_u64();
                let data = &ev["plugindata"]["data"];
                if ev["janus"] == "poll-error" {
                    out.problems.push(ev["reason"].as_str().unwrap_or("poll").to_string());
                    continue;
                }
                if let Some(err) = data["error"].as_str() {
                    break Err(format!("VideoRoom: {err}"));
                }
                if sender == Some(pub_handle) {
                    if data["videoroom"] == "joined" && !joined {
                        joined = true;
                        out.join_ms.room_joined = Some(ms_since(t0, now));
                        step(Step::RoomJoined);
                        if plan.publish {
                            let offer = pub_peer.offer(&plan.nick).map_err(|e| e.to_string())?;
                            let configure = json!({"janus": "message",
                                "body": {"request": "configure", "audio": shared.audio, "video": true},
                                "jsep": {"type": "offer", "sdp": offer}});
                            api.post(&format!("/{session}/{pub_handle}"), configure).await?;
                        }
                    }
                    if let Some(sdp) = ev["jsep"]["sdp"].as_str().filter(|_| ev["jsep"]["type"] == "answer") {
                        if let Err(e) = pub_peer.accept_answer(now, sdp) {
                            break Err(format!("publisher answer: {e}"));
                        }
                        out.join_ms.session_accepted.get_or_insert(ms_since(t0, now));
                        step(Step::SessionAccepted);
                    }
                    for p in data["publishers"].as_array().into_iter().flatten() {
                        if let Some(id) = p["id"].as_u64() {
                            if known.insert(id) {
                                pending_feeds.push(id);
                            }
                        }
                    }
                } else if sender == Some(sub_handle) {
                    for s in data["streams"].as_array().into_iter().flatten() {
                        if let (Some(mid), Some(nick)) = (s["mid"].as_str(), s["feed_display"].as_str()) {
                            let kind = if s["type"] == "audio" { Kind::Audio } else { Kind::Video };
                            sub_peer.set_owner(mid, nick, kind);
                        }
                    }
                    if let Some(sdp) = ev["jsep"]["sdp"].as_str().filter(|_| ev["jsep"]["type"] == "offer") {
                        let answer = match sub_peer.accept_offer(now, sdp) {
                            Ok(a) => a,
                            Err(e) => break Err(format!("subscriber offer: {e}")),
                        };
                        let start = json!({"janus": "message", "body": {"request": "start"},
                            "jsep": {"type": "answer", "sdp": answer}});
                        api.post(&format!("/{session}/{sub_handle}"), start).await?;
                        if !plan.publish {
                            out.join_ms.session_accepted.get_or_insert(ms_since(t0, now));
                            step(Step::SessionAccepted);
                        }
                        sub_state = SubState::Ready;
                    }
                }
            },
            _ = tokio::time::sleep_until(wake.into()) => {
                let now = Instant::now();
                pub_peer.handle_timeout(now);
                sub_peer.handle_timeout(now);
            }
        }
        // One subscription change at a time: subscribe to the feeds that
        // appeared once the previous offer was answered.
        if !pending_feeds.is_empty() && sub_state != SubState::Waiting {
            let streams: Vec<Value> = pending_feeds
                .drain(..)
                .map(|f| json!({"feed": f}))
                .collect();
            let body = if sub_state == SubState::None {
                json!({"request": "join", "ptype": "subscriber", "room": room, "streams": streams})
            } else {
                json!({"request": "subscribe", "streams": streams})
            };
            api.post(
                &format!("/{session}/{sub_handle}"),
                json!({"janus": "message", "body": body}),
            )
            .await?;
            sub_state = SubState::Waiting;
        }
        for (socket, peer) in [(&pub_socket, &mut pub_peer), (&sub_socket, &mut sub_peer)] {
            while let Some((to, data)) = peer.poll_transmit() {
                if let Err(e) = socket.send_to(&data, to).await {
                    tracing::debug!(error = %e, "UDP send");
                }
            }
        }
        let connected_at = pub_peer.connected_at().or(sub_peer.connected_at());
        out.join_ms
            .media_reached(t0, connected_at, sub_peer.first_frame_at(), step);
        let now = Instant::now();
        if now >= next_second {
            let _ = pub_peer.take_second(now); // a publisher peer receives nothing
            let _ = shared
                .updates
                .send(Update::Second(plan.id, sub_peer.take_second(now)));
            next_second += Duration::from_secs(1);
        }
    };
    poller.abort();
    let end = Instant::now();
    let _ = shared
        .updates
        .send(Update::Second(plan.id, sub_peer.take_second(end)));
    let _ = pub_peer.finish(end);
    out.received = sub_peer.finish(end);
    result
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SubState {
    /// No subscriber session yet.
    None,
    /// A join or subscribe awaits Janus's offer.
    Waiting,
    /// The last offer was answered.
    Ready,
}
