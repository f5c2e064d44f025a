//! The HTTP front as its users meet it: Confab starts in-process as the
//! binary starts it, and a real HTTP client asks for the pages, the
//! assets, `/config.json`, `/health`, `/metrics` and the admin API, during
//! a real call of two participants (XMPP over WebSocket, webrtc-rs media).

use std::time::Duration;

use confab_tests::participant::Participant;
use confab_tests::{init_tracing, PeerOptions, VideoCodec};
use serde_json::Value;

const ROOM: &str = "standup@conference.localhost";
const LONG: Duration = Duration::from_secs(60);

async fn start_confab() -> confab::Running {
    confab::start(&confab::config::Config::ephemeral())
        .await
        .expect("confab starts")
}

fn url(confab: &confab::Running, path: &str) -> String {
    format!("http://{}{path}", confab.http_addr)
}

async fn get(confab: &confab::Running, path: &str) -> reqwest::Response {
    reqwest::get(url(confab, path))
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// Status, `Content-Type` and body of `GET path`.
async fn fetch(confab: &confab::Running, path: &str) -> (u16, String, String) {
    let res = get(confab, path).await;
    let status = res.status().as_u16();
    let ctype = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, ctype, res.text().await.unwrap_or_default())
}

async fn json(confab: &confab::Running, path: &str) -> (u16, Value) {
    let (status, ctype, body) = fetch(confab, path).await;
    assert!(
        ctype.starts_with("application/json"),
        "{path} answers JSON, not {ctype:?}: {body}"
    );
    let value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
    (status, value)
}

/// The status line of a request sent byte for byte, so that no client
/// tidies the path first.
/// The sum of every series of the Prometheus metric `name` in `text`.
fn metric_sum(text: &str, name: &str) -> f64 {
    metric_sum_where(text, name, "")
}

/// The sum of the series of `name` whose labels contain `label`.
fn metric_sum_where(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(r) => r.split_once("} ")?,
                None => ("", rest.strip_prefix(' ')?),
            };
            labels
                .contains(label)
                .then(|| value.trim().parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

async fn raw_status(confab: &confab::Running, path: &str) -> String {
    confab_tests::raw_status_line(confab.http_addr, path).await
}

async fn ws_participant(confab: &confab::Running, nick: &str) -> Participant {
    Participant::guest_over_websocket(
        confab.http_addr,
        nick,
        PeerOptions::publisher(VideoCodec::Vp8),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_assets_config_and_health() {
    init_tracing();
    let confab = start_confab().await;

    let (status, _, body) = fetch(&confab, "/health").await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));

    let (status, ctype, landing) = fetch(&confab, "/").await;
    assert_eq!(status, 200);
    assert_eq!(ctype, "text/html; charset=utf-8");
    assert!(
        landing.contains("/assets/landing.js"),
        "the landing page: {landing}"
    );

    for room in ["/standup", "/Daily-Standup", "/caf%C3%A9"] {
        let (status, ctype, page) = fetch(&confab, room).await;
        assert_eq!(
            (status, ctype.as_str()),
            (200, "text/html; charset=utf-8"),
            "{room}"
        );
        assert!(page.contains("/assets/room.js"), "{room} is the call page");
    }
    let (status, _, admin) = fetch(&confab, "/admin").await;
    assert_eq!(status, 200);
    assert!(
        admin.contains("/assets/admin.js") && admin.contains("/metrics"),
        "the admin page: {admin}"
    );

    let (status, config) = json(&confab, "/config.json").await;
    assert_eq!(status, 200);
    assert_eq!(
        config,
        serde_json::json!({ "domain": "localhost", "muc": "conference.localhost", "websocket": "/xmpp-websocket" })
    );

    for (asset, ctype) in [
        ("/assets/room.js", "text/javascript; charset=utf-8"),
        ("/assets/style.css", "text/css; charset=utf-8"),
        ("/assets/admin.js", "text/javascript; charset=utf-8"),
        ("/assets/favicon.svg", "image/svg+xml; charset=utf-8"),
    ] {
        let res = get(&confab, asset).await;
        assert_eq!(res.status().as_u16(), 200, "{asset}");
        let headers = res.headers().clone();
        assert_eq!(
            headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some(ctype),
            "{asset}"
        );
        assert!(
            headers.get("cache-control").is_some(),
            "{asset} says how to cache it"
        );
        assert!(
            !res.bytes().await.expect("body").is_empty(),
            "{asset} has content"
        );
        // A browser that has it already is told so.
        let etag = headers.get("etag").expect("an ETag").clone();
        let again = reqwest::Client::new()
            .get(url(&confab, asset))
            .header("if-none-match", etag)
            .send()
            .await
            .expect("revalidate");
        assert_eq!(again.status().as_u16(), 304, "{asset} revalidates");
    }

    // Not found, and nothing outside the client's files.
    for path in ["/assets/nope.js", "/assets/..%2FCargo.toml", "/nope/deeper"] {
        assert_eq!(fetch(&confab, path).await.0, 404, "{path}");
    }
    for path in [
        "/assets/../Cargo.toml",
        "/assets/%2E%2E/Cargo.toml",
        "/assets/../../Cargo.toml",
        "/assets/./room.js",
    ] {
        let status = raw_status(&confab, path).await;
        assert!(
            status.contains(" 404 ") || status.contains(" 400 "),
            "{path}: {status}"
        );
    }
    // Names that cannot be rooms, and Confab's own routes, are no room pages.
    for path in ["/a%40b", "/a%20b", "/x%3Ay", "/Admin", "/API", "/metrics/"] {
        assert_eq!(fetch(&confab, path).await.0, 404, "{path}");
    }

    // The WebSocket route still wants the xmpp subprotocol.
    let ws = format!("ws://{}/xmpp-websocket", confab.http_addr);
    match tokio_tungstenite::connect_async(ws.as_str()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status().as_u16(), 400)
        }
        other => panic!(
            "a WebSocket without the xmpp subprotocol is refused: {:?}",
            other.map(|(_, r)| r)
        ),
    }
    confab_tests::xmpp::WsClient::open_socket(&ws)
        .await
        .expect("with the xmpp subprotocol it opens");
    confab.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_errors_are_json() {
    init_tracing();
    let confab = start_confab().await;
    let (status, rooms) = json(&confab, "/api/rooms").await;
    assert_eq!(status, 200);
    assert_eq!(rooms, serde_json::json!({ "rooms": [] }));

    let (status, body) = json(&confab, "/api/rooms/nobody-here").await;
    assert_eq!(status, 404);
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("nobody-here")),
        "{body}"
    );
    for bad in [
        "/api/rooms/a%40b",
        "/api/rooms/a%2Fb",
        "/api/rooms/%3Cscript%3E",
    ] {
        let (status, body) = json(&confab, bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error"].is_string(), "{bad}: {body}");
    }
    let (status, _) = json(&confab, "/api/nothing").await;
    assert_eq!(status, 404);
    confab.stop();
}

/// The participant called `nick` in a room detail.
fn participant<'a>(detail: &'a Value, nick: &str) -> Option<&'a Value> {
    detail["participants"]
        .as_array()?
        .iter()
        .find(|p| p["nick"] == nick)
}

/// Whether `p` publishes audio (opus) and video (VP8), both arriving and
/// forwarded, and receives both of `from`'s tracks.
fn in_full_call(p: &Value, from: &str) -> bool {
    let tracks = p["tracks"].as_array().cloned().unwrap_or_default();
    let publishes = |kind: &str, codec: &str| {
        tracks.iter().any(|t| {
            t["kind"] == kind
                && t["codec"] == codec
                && t["bitrate_in_bps"].as_u64() > Some(0)
                && t["bitrate_out_bps"].as_u64() > Some(0)
                && t["subscribers"] == 1
        })
    };
    let receives = p["receives"].as_array().cloned().unwrap_or_default();
    let gets = |kind: &str, codec: &str| {
        receives.iter().any(|r| {
            r["from"] == from
                && r["kind"] == kind
                && r["codec"] == codec
                && r["bitrate_bps"].as_u64() > Some(0)
        })
    };
    p["in_call"] == true
        && p["connected"] == true
        && publishes("audio", "opus")
        && publishes("video", "VP8")
        && gets("audio", "opus")
        && gets("video", "VP8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_and_metrics_during_a_call() {
    init_tracing();
    let confab = start_confab().await;
    let mut alice = ws_participant(&confab, "alice").await;
    let mut bob = ws_participant(&confab, "bob").await;
    alice.join(ROOM, None).await.expect("alice joins");
    bob.join(ROOM, None).await.expect("bob joins");

    // In the room, not yet in the call.
    let (_, rooms) = json(&confab, "/api/rooms").await;
    assert_eq!(
        rooms,
        serde_json::json!({ "rooms": [
            { "name": "standup", "jid": ROOM, "participants": 2, "in_call": 0 }
        ] })
    );
    let (status, detail) = json(&confab, "/api/rooms/standup").await;
    assert_eq!(status, 200);
    assert_eq!(detail["name"], "standup");
    assert_eq!(
        participant(&detail, "alice").map(|p| p["role"].clone()),
        Some("moderator".into())
    );
    assert_eq!(
        participant(&detail, "bob").map(|p| p["in_call"].clone()),
        Some(false.into())
    );

    for p in [&mut alice, &mut bob] {
        p.start_call().await.expect("the room accepts the call");
        p.peer.start_sending();
    }
    // The bridge refreshes its statistics once a second: ask until both
    // calls show media both ways.
    let deadline = tokio::time::Instant::now() + LONG;
    let detail = loop {
        tokio::join!(
            alice.pump(Duration::from_millis(200)),
            bob.pump(Duration::from_millis(200))
        );
        let (_, detail) = json(&confab, "/api/rooms/StandUp").await;
        let full = participant(&detail, "alice").is_some_and(|p| in_full_call(p, "bob"))
            && participant(&detail, "bob").is_some_and(|p| in_full_call(p, "alice"));
        if full || tokio::time::Instant::now() >= deadline {
            break detail;
        }
    };
    for (nick, other) in [("alice", "bob"), ("bob", "alice")] {
        let p =
            participant(&detail, nick).unwrap_or_else(|| panic!("{nick} is listed: {detail:#}"));
        assert!(
            in_full_call(p, other),
            "{nick} publishes and receives audio and video: {p:#}"
        );
    }
    assert_eq!(
        detail["participants"].as_array().map(Vec::len),
        Some(2),
        "{detail:#}"
    );

    let (_, rooms) = json(&confab, "/api/rooms").await;
    assert_eq!(rooms["rooms"][0]["in_call"], 2, "{rooms}");

    let (status, ctype, metrics) = fetch(&confab, "/metrics").await;
    assert_eq!(status, 200);
    assert!(ctype.starts_with("text/plain"), "{ctype}");
    for name in [
        "confab_sfu_packets_in_total",
        "confab_sfu_rtp_forwarded_total",
        "confab_sfu_forward_latency_seconds_bucket",
        "confab_xmpp_sessions",
        "confab_muc_rooms",
        "confab_focus_calls",
        "confab_http_requests_total",
    ] {
        assert!(metrics.contains(name), "/metrics has {name}:\n{metrics}");
    }
    // Every forwarded RTP packet left with the datagram that caused it, and
    // the latency histogram timed each departure.
    let forwarded = metric_sum(&metrics, "confab_sfu_rtp_forwarded_total");
    let timed = metric_sum(&metrics, "confab_sfu_forward_latency_seconds_count");
    let all = metric_sum_where(
        &metrics,
        "confab_sfu_forward_latency_seconds_bucket",
        "le=\"+Inf\"",
    );
    assert!(forwarded > 0.0, "media was forwarded:\n{metrics}");
    assert!(
        timed >= forwarded,
        "{timed} departures timed for {forwarded} packets forwarded"
    );
    assert_eq!(all, timed, "the +Inf buckets hold every timed departure");

    // Bob leaves: the room lists alice alone, receiving nothing.
    bob.leave().await.expect("bob leaves");
    let deadline = tokio::time::Instant::now() + LONG;
    let detail = loop {
        alice.pump(Duration::from_millis(200)).await;
        let (_, detail) = json(&confab, "/api/rooms/standup").await;
        let alone = detail["participants"]
            .as_array()
            .is_some_and(|ps| ps.len() == 1)
            && participant(&detail, "alice")
                .is_some_and(|p| p["receives"].as_array().is_some_and(Vec::is_empty));
        if alone || tokio::time::Instant::now() >= deadline {
            break detail;
        }
    };
    let alice_now =
        participant(&detail, "alice").unwrap_or_else(|| panic!("alice stays: {detail:#}"));
    assert_eq!(
        detail["participants"].as_array().map(Vec::len),
        Some(1),
        "{detail:#}"
    );
    assert_eq!(alice_now["receives"], serde_json::json!([]), "{detail:#}");
    confab.stop();
}

/// Recordings are people's meetings: with an admin token set, the
/// recording routes answer only to whoever presents it (as a bearer token
/// or the admin page's cookie); without one, only to this machine, and
/// not through a proxy. The room list stays public.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recordings_are_for_admins_only() {
    init_tracing();
    const TOKEN: &str = "correct-horse-battery-staple";
    let mut config = confab::config::Config::ephemeral();
    config.http.admin_token = Some(TOKEN.into());
    assert!(
        !format!("{config:?}").contains(TOKEN),
        "the token is never logged: {config:?}"
    );
    let confab = confab::start(&config).await.expect("confab starts");
    let client = reqwest::Client::new();
    let send = |method: reqwest::Method, path: &str, auth: Option<(&'static str, String)>| {
        let mut req = client.request(method, url(&confab, path));
        if let Some((name, value)) = auth {
            req = req.header(name, value);
        }
        req.send()
    };
    use reqwest::Method;
    let routes = [
        (Method::GET, "/api/recordings"),
        (Method::POST, "/api/rooms/standup/recording"),
        (Method::DELETE, "/api/rooms/standup/recording"),
        (
            Method::GET,
            "/recordings/standup-20260101T000000Z-alice-1.webm",
        ),
    ];
    for (method, path) in &routes {
        for auth in [
            None,
            Some((
                "authorization",
                "Bearer wrong-token-of-some-length".to_owned(),
            )),
            Some(("cookie", "confab_admin=nope".to_owned())),
        ] {
            let res = send(method.clone(), path, auth.clone())
                .await
                .expect("a response");
            assert_eq!(res.status().as_u16(), 401, "{method} {path} with {auth:?}");
            assert!(
                res.headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.starts_with("Bearer")),
                "{method} {path} says how to authenticate"
            );
            let body: Value = res.json().await.expect("a JSON error");
            assert!(
                body["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("admin token")),
                "{body}"
            );
        }
    }
    let (_, list) = json(&confab, "/api/recordings").await;
    assert!(
        list["error"].is_string(),
        "nothing is listed without the token: {list}"
    );

    // With the token, as a header or as the admin page's cookie.
    for auth in [
        ("authorization", format!("Bearer {TOKEN}")),
        ("cookie", format!("theme=dark; confab_admin={TOKEN}")),
    ] {
        let res = send(Method::GET, "/api/recordings", Some(auth.clone()))
            .await
            .expect("a response");
        assert_eq!(res.status().as_u16(), 200, "{auth:?}");
        let list: Value = res.json().await.expect("the list");
        assert_eq!(list, serde_json::json!({ "recording": [], "files": [] }));
        let res = send(
            Method::POST,
            "/api/rooms/nobody-here/recording",
            Some(auth.clone()),
        )
        .await
        .expect("a response");
        assert_eq!(
            res.status().as_u16(),
            404,
            "past the lock, the room does not exist ({auth:?})"
        );
    }

    // The room list, the admin page and the call pages stay public.
    for path in ["/api/rooms", "/admin", "/", "/standup"] {
        assert_eq!(get(&confab, path).await.status().as_u16(), 200, "{path}");
    }
    confab.stop();

    // Without a token, this machine may, but not through a proxy.
    let confab = start_confab().await;
    assert_eq!(get(&confab, "/api/recordings").await.status().as_u16(), 200);
    for (name, value) in [
        ("x-forwarded-for", "198.51.100.4"),
        ("forwarded", "for=198.51.100.4"),
    ] {
        let res = reqwest::Client::new()
            .get(url(&confab, "/api/recordings"))
            .header(name, value)
            .send()
            .await
            .expect("a response");
        assert_eq!(res.status().as_u16(), 403, "{name}");
        let body: Value = res.json().await.expect("a JSON error");
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.contains("admin_token")),
            "{body}"
        );
    }
}
