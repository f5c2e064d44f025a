//! Recording as moderators and admins meet it: during a real call of two
//! participants (XMPP over WebSocket, webrtc-rs media), the room's
//! moderator starts and stops recording with `/record start` and
//! `/record stop`, the room is told, and the files are listed and
//! downloaded from the admin API; a participant who is no moderator is
//! refused; admins start and stop recording over REST; a recording
//! nobody stops ends by itself when everyone has left.

use std::time::Duration;

use confab_tests::participant::Participant;
use confab_tests::{init_tracing, PeerOptions, VideoCodec};
use serde_json::Value;

const ROOM: &str = "standup@conference.localhost";
const LONG: Duration = Duration::from_secs(60);

fn url(confab: &confab::Running, path: &str) -> String {
    format!("http://{}{path}", confab.http_addr)
}

async fn json(confab: &confab::Running, method: reqwest::Method, path: &str) -> (u16, Value) {
    let res = reqwest::Client::new()
        .request(method.clone(), url(confab, path))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = res.status().as_u16();
    let body = res.text().await.unwrap_or_default();
    let value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{method} {path}: {e}: {body}"));
    (status, value)
}

async fn get_json(confab: &confab::Running, path: &str) -> (u16, Value) {
    json(confab, reqwest::Method::GET, path).await
}

/// The status line of a request sent byte for byte.
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

/// Whether the room has said `body` (a message from the room itself).
fn room_said(p: &Participant, body: &str) -> bool {
    p.seen
        .chat
        .iter()
        .any(|(nick, b)| nick.is_empty() && b == body)
}

/// Pump both until `done` holds for each, or a minute passes.
async fn pump_both_until(
    a: &mut Participant,
    b: &mut Participant,
    done: impl Fn(&Participant) -> bool + Copy,
) {
    tokio::join!(a.pump_until(LONG, done), b.pump_until(LONG, done));
}

/// Both participants' calls carry media the bridge receives.
async fn in_call(confab: &confab::Running, alice: &mut Participant, bob: &mut Participant) -> bool {
    let deadline = tokio::time::Instant::now() + LONG;
    loop {
        tokio::join!(
            alice.pump(Duration::from_millis(200)),
            bob.pump(Duration::from_millis(200))
        );
        let (_, detail) = get_json(confab, "/api/rooms/standup").await;
        let publishing = |p: &Value| {
            p["connected"] == true
                && p["tracks"].as_array().is_some_and(|ts| {
                    ["audio", "video"].iter().all(|k| {
                        ts.iter()
                            .any(|t| t["kind"] == *k && t["bitrate_in_bps"].as_u64() > Some(0))
                    })
                })
        };
        let ok = detail["participants"]
            .as_array()
            .is_some_and(|ps| ps.len() == 2 && ps.iter().all(publishing));
        if ok || tokio::time::Instant::now() >= deadline {
            return ok;
        }
    }
}

/// Alice (first in, so the room's moderator) and Bob join the room over
/// WebSocket and call it; both publish audio and video.
async fn two_in_a_call(confab: &confab::Running) -> (Participant, Participant) {
    let mut alice = ws_participant(confab, "alice").await;
    let mut bob = ws_participant(confab, "bob").await;
    alice.join(ROOM, None).await.expect("alice joins");
    bob.join(ROOM, None).await.expect("bob joins");
    for p in [&mut alice, &mut bob] {
        p.start_call().await.expect("the room accepts the call");
        p.peer.start_sending();
    }
    assert!(
        in_call(confab, &mut alice, &mut bob).await,
        "both publish audio and video"
    );
    (alice, bob)
}

/// Pump both until every file of the recording in progress has grown
/// past `bytes` and there is one per participant and the composite.
async fn record_until(
    confab: &confab::Running,
    alice: &mut Participant,
    bob: &mut Participant,
    bytes: u64,
) -> Value {
    let deadline = tokio::time::Instant::now() + LONG;
    loop {
        tokio::join!(
            alice.pump(Duration::from_millis(200)),
            bob.pump(Duration::from_millis(200))
        );
        let (_, list) = get_json(confab, "/api/recordings").await;
        let files: Vec<&Value> = list["files"]
            .as_array()
            .map(|f| f.iter().filter(|f| f["in_progress"] == true).collect())
            .unwrap_or_default();
        if (files.len() == 3 && files.iter().all(|f| f["size"].as_u64() > Some(bytes)))
            || tokio::time::Instant::now() >= deadline
        {
            return list;
        }
    }
}

/// ffprobe's codec names of `path`'s streams, if ffprobe is installed.
fn ffprobe_codecs(path: &std::path::Path) -> Option<Vec<String>> {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,codec_name",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .ok()?;
    let mut codecs: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    codecs.sort();
    Some(codecs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moderator_records_a_call_and_admins_download_it() {
    init_tracing();
    let confab = confab::start(&confab::config::Config::ephemeral())
        .await
        .expect("confab starts");
    let (mut alice, mut bob) = two_in_a_call(&confab).await;
    let (_, list) = get_json(&confab, "/api/recordings").await;
    assert_eq!(list, serde_json::json!({ "recording": [], "files": [] }));

    // Bob is no moderator: refused, and nothing is recorded.
    bob.say("/record start").await.expect("bob asks");
    bob.pump_until(LONG, |p| !p.seen.message_errors.is_empty())
        .await;
    let refusal = bob.seen.message_errors.first().expect("bob is refused");
    assert_eq!(
        confab_tests::participant::error_condition(refusal).as_deref(),
        Some("forbidden"),
        "{refusal:?}"
    );
    assert!(
        !alice.seen.chat.iter().any(|(_, b)| b.contains("/record")),
        "the command is no chat"
    );
    let (_, list) = get_json(&confab, "/api/recordings").await;
    assert_eq!(list["recording"], serde_json::json!([]));

    // Alice is: everyone hears recording started.
    alice.say("/record start").await.expect("alice asks");
    pump_both_until(&mut alice, &mut bob, |p| {
        room_said(p, "Recording started by alice.")
    })
    .await;
    for p in [&alice, &bob] {
        assert!(
            room_said(p, "Recording started by alice."),
            "{} is told: {:?}",
            p.nick,
            p.seen.chat
        );
    }
    let list = record_until(&confab, &mut alice, &mut bob, 50_000).await;
    assert_eq!(list["recording"][0]["room"], "standup", "{list:#}");
    assert_eq!(list["recording"][0]["by"], "alice", "{list:#}");
    assert!(
        alice.seen.message_errors.is_empty(),
        "{:?}",
        alice.seen.message_errors
    );

    alice.say("/record stop").await.expect("alice stops");
    pump_both_until(&mut alice, &mut bob, |p| {
        room_said(p, "Recording stopped by alice.")
    })
    .await;
    for p in [&alice, &bob] {
        assert!(
            room_said(p, "Recording stopped by alice."),
            "{} is told: {:?}",
            p.nick,
            p.seen.chat
        );
    }

    // One finished WebM per participant and the composite MP4, listed
    // and downloadable.
    let (status, list) = get_json(&confab, "/api/recordings").await;
    assert_eq!(status, 200);
    assert_eq!(list["recording"], serde_json::json!([]), "{list:#}");
    let files = list["files"].as_array().cloned().unwrap_or_default();
    assert_eq!(files.len(), 3, "{list:#}");
    let dir = std::env::temp_dir().join(format!("confab-recording-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    for (who, part, ext, mime, codecs) in [
        (
            "alice",
            "-alice-",
            ".webm",
            "video/webm",
            ["opus,audio", "vp8,video"],
        ),
        (
            "bob",
            "-bob-",
            ".webm",
            "video/webm",
            ["opus,audio", "vp8,video"],
        ),
        (
            "composite",
            "-composite",
            ".mp4",
            "video/mp4",
            ["h264,video", "opus,audio"],
        ),
    ] {
        let f = files
            .iter()
            .find(|f| {
                f["name"].as_str().is_some_and(|n| {
                    n.starts_with("standup-") && n.contains(part) && n.ends_with(ext)
                })
            })
            .unwrap_or_else(|| panic!("{who}'s recording is listed: {list:#}"));
        assert_eq!(f["in_progress"], false);
        assert!(f["size"].as_u64() > Some(10_000), "{f}");
        let link = f["url"].as_str().expect("a download link");
        let res = reqwest::get(url(&confab, link)).await.expect("download");
        assert_eq!(res.status().as_u16(), 200, "{link}");
        assert_eq!(
            res.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some(mime),
            "{link}"
        );
        let disposition = res
            .headers()
            .get("content-disposition")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(
            disposition.starts_with("attachment; filename=\"standup-"),
            "{link} downloads as an attachment: {disposition:?}"
        );
        let body = res.bytes().await.expect("the file");
        assert_eq!(
            Some(body.len() as u64),
            f["size"].as_u64(),
            "{link} is the whole file"
        );
        let path = dir.join(format!("{who}{ext}"));
        std::fs::write(&path, &body).expect("saved");
        let got = ffprobe_codecs(&path).expect("ffprobe runs");
        assert_eq!(got, codecs.map(String::from).to_vec(), "{who}'s file");

        // A player seeking asks for a range: it gets those bytes alone.
        let res = reqwest::Client::new()
            .get(url(&confab, link))
            .header("range", "bytes=1000-1999")
            .send()
            .await
            .expect("a range request");
        assert_eq!(res.status().as_u16(), 206, "{link}: partial content");
        let size = body.len();
        assert_eq!(
            res.headers()
                .get("content-range")
                .and_then(|v| v.to_str().ok()),
            Some(format!("bytes 1000-1999/{size}").as_str()),
            "{link}"
        );
        let part = res.bytes().await.expect("the range");
        assert_eq!(&part[..], &body[1000..2000], "{link}: the bytes asked for");
    }
    let _ = std::fs::remove_dir_all(&dir);

    // Stopping twice, or starting twice, is a conflict over XMPP too.
    alice.say("/record stop").await.expect("alice stops again");
    alice
        .pump_until(LONG, |p| {
            room_said(p, "Recording: the room is not being recorded.")
        })
        .await;
    assert!(
        room_said(&alice, "Recording: the room is not being recorded."),
        "{:?}",
        alice.seen.chat
    );

    // Admins: REST start and stop; the room is told.
    let (status, started) = json(
        &confab,
        reqwest::Method::POST,
        "/api/rooms/standup/recording",
    )
    .await;
    assert_eq!(status, 201, "{started}");
    assert_eq!(started["room"], "standup");
    let (status, again) = json(
        &confab,
        reqwest::Method::POST,
        "/api/rooms/StandUp/recording",
    )
    .await;
    assert_eq!(status, 409, "{again}");
    pump_both_until(&mut alice, &mut bob, |p| {
        room_said(p, "Recording started by admin.")
    })
    .await;
    assert!(
        room_said(&bob, "Recording started by admin."),
        "{:?}",
        bob.seen.chat
    );
    record_until(&confab, &mut alice, &mut bob, 10_000).await;
    let (status, stopped) = json(
        &confab,
        reqwest::Method::DELETE,
        "/api/rooms/standup/recording",
    )
    .await;
    assert_eq!(status, 200, "{stopped}");
    assert_eq!(
        stopped["files"].as_array().map(Vec::len),
        Some(3),
        "{stopped}"
    );
    let (status, _) = json(
        &confab,
        reqwest::Method::DELETE,
        "/api/rooms/standup/recording",
    )
    .await;
    assert_eq!(status, 409);
    pump_both_until(&mut alice, &mut bob, |p| {
        room_said(p, "Recording stopped by admin.")
    })
    .await;
    assert!(
        room_said(&alice, "Recording stopped by admin."),
        "{:?}",
        alice.seen.chat
    );
    let (_, list) = get_json(&confab, "/api/recordings").await;
    assert_eq!(list["files"].as_array().map(Vec::len), Some(6), "{list:#}");

    // A recording nobody stops ends by itself once everyone has left.
    let (status, _) = json(
        &confab,
        reqwest::Method::POST,
        "/api/rooms/standup/recording",
    )
    .await;
    assert_eq!(status, 201);
    record_until(&confab, &mut alice, &mut bob, 10_000).await;
    alice.leave().await.expect("alice leaves");
    bob.leave().await.expect("bob leaves");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let list = loop {
        let (_, list) = get_json(&confab, "/api/recordings").await;
        if list["recording"] == serde_json::json!([]) || tokio::time::Instant::now() >= deadline {
            break list;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(
        list["recording"],
        serde_json::json!([]),
        "the recording ended with the room: {list:#}"
    );
    let files = list["files"].as_array().cloned().unwrap_or_default();
    assert_eq!(files.len(), 9, "{list:#}");
    assert!(
        files.iter().all(|f| f["in_progress"] == false),
        "every file is closed: {list:#}"
    );

    // Rooms that are not, names that cannot be.
    let (status, body) = json(
        &confab,
        reqwest::Method::POST,
        "/api/rooms/nobody-here/recording",
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = json(&confab, reqwest::Method::POST, "/api/rooms/a%40b/recording").await;
    assert_eq!(status, 400, "{body}");
    for (path, want) in [
        ("/recordings/nope.webm", 404),
        ("/recordings/notes.txt", 400),
        ("/recordings/.hidden.webm", 400),
        ("/recordings/..%2FCargo.toml", 400),
        ("/recordings/a%2F..%2Fb.webm", 400),
    ] {
        let (status, body) = get_json(&confab, path).await;
        assert_eq!(status, want, "{path}: {body}");
    }
    for path in ["/recordings/../Cargo.toml", "/recordings/%2E%2E/Cargo.toml"] {
        let status = raw_status(&confab, path).await;
        assert!(
            status.contains(" 404 ") || status.contains(" 400 "),
            "{path}: {status}"
        );
    }
    confab.stop();
}

/// A recording the bridge stops by itself is announced like one a
/// moderator stops, with XEP-0045's status codes, so that clients take
/// their "recording" badge down. Here the disk is "nearly full" because
/// Confab is told to keep more space free than any disk has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_room_is_told_when_a_nearly_full_disk_stops_the_recording() {
    init_tracing();
    let mut config = confab::config::Config::ephemeral();
    config.recorder.min_free_mb = u64::MAX >> 20;
    let confab = confab::start(&config).await.expect("confab starts");
    let (mut alice, mut bob) = two_in_a_call(&confab).await;

    alice.say("/record start").await.expect("alice asks");
    let stopped = "Recording stopped: the disk is nearly full.";
    pump_both_until(&mut alice, &mut bob, |p| room_said(p, stopped)).await;
    for p in [&alice, &bob] {
        let said: Vec<&str> = p
            .seen
            .chat
            .iter()
            .filter(|(n, _)| n.is_empty())
            .map(|(_, b)| b.as_str())
            .collect();
        assert_eq!(
            said,
            ["Recording started by alice.", stopped],
            "{} is told",
            p.nick
        );
        assert_eq!(
            p.seen.room_statuses,
            ["170", "171"],
            "{}'s room status codes",
            p.nick
        );
    }
    let (_, list) = get_json(&confab, "/api/recordings").await;
    assert_eq!(list["recording"], serde_json::json!([]), "{list:#}");
    let files = list["files"].as_array().cloned().unwrap_or_default();
    // It stopped at its first look at the disk, within a second: whatever
    // it wrote by then is closed.
    assert!(
        files.iter().all(|f| f["in_progress"] == false),
        "no file is left open: {list:#}"
    );

    // The room can record again once there is room on the disk: asking
    // again is not refused as "already recording".
    alice.say("/record start").await.expect("alice asks again");
    let again = |p: &Participant| {
        p.seen
            .chat
            .iter()
            .filter(|(n, b)| n.is_empty() && b == stopped)
            .count()
            == 2
    };
    alice.pump_until(LONG, again).await;
    assert!(again(&alice), "{:?}", alice.seen.chat);
    assert!(
        alice.seen.message_errors.is_empty(),
        "{:?}",
        alice.seen.message_errors
    );
}
