//! The load tester against a Confab it starts in-process: two rooms of four
//! participants for ten seconds, with one camera stalling for two seconds.
//! Checks what an admin reads in the report: everyone joined, every
//! subscriber received every publisher, nothing was lost on loopback, the
//! stalled camera is reported frozen, and the JSON and the plot hold every
//! figure.

use clap::Parser;
use confab_loadtest::{report, Options};

async fn start_confab() -> confab::Running {
    confab::start(&confab::config::Config::ephemeral())
        .await
        .expect("confab starts")
}

/// Looks up a path like `targets.0.loss.frame_loss_pct`.
fn at<'a>(v: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    path.split('.')
        .try_fold(v, |v, key| match key.parse::<usize>() {
            Ok(i) => v.get(i),
            Err(_) => v.get(key),
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_rooms_of_four_everyone_receives_everyone_and_a_stalled_camera_freezes() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
    let confab = start_confab().await;
    let dir = std::env::temp_dir().join(format!("confab-loadtest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let json = dir.join("report.json");
    let plot = dir.join("report.svg");
    let pid = std::process::id().to_string();
    let xmpp = format!("ws://{}/xmpp-websocket", confab.http_addr);
    let options = Options::try_parse_from([
        "confab-loadtest",
        "--xmpp",
        &xmpp,
        "--rooms",
        "2",
        "--participants",
        "4",
        "--duration",
        "10",
        "--ramp-up",
        "20",
        "--resolution",
        "320x240",
        "--bitrate",
        "300",
        // Room 0's second participant stops sending 4 s in, for 2 s.
        "--stall",
        "0:1:4:2",
        "--confab-pid",
        &pid,
        "--quiet",
    ])
    .expect("options parse");

    let report = confab_loadtest::run(&options)
        .await
        .expect("the run completes");
    println!("{}", report::table(&report));
    let r = &report.targets[0];

    assert_eq!(r.participants.planned, 8);
    assert!(
        r.participants.errors.is_empty(),
        "{:?}",
        r.participants.errors
    );
    assert_eq!(
        r.participants.connected, 8,
        "all eight joined and connected"
    );
    assert_eq!(r.participants.receiving, 8, "all eight receive video");
    // 2 rooms x 4 subscribers x 3 other publishers x (audio + video).
    assert_eq!(r.streams.expected, 48);
    assert_eq!(
        r.streams.received, 48,
        "every subscriber receives every publisher: missing {:?}",
        r.streams.missing
    );
    assert!(r.loss.frames_received > 1000, "{:?}", r.loss);
    assert_eq!(
        r.loss.frames_lost, 0,
        "no frame lost on loopback: {:?}",
        r.loss
    );
    assert_eq!(
        r.loss.packets_lost, 0,
        "no packet lost on loopback: {:?}",
        r.loss
    );
    for p in &r.participant_details {
        let o = &p.outcome;
        assert!(
            o.problems.is_empty(),
            "{}/{}: {:?}",
            o.room,
            o.nick,
            o.problems
        );
        assert!(
            p.received.iter().all(|t| t.untagged == 0),
            "every frame carries its tag"
        );
    }

    // The stalled camera: frozen at each of its three subscribers for about
    // the length of the stall; reported as a frozen publisher.
    let stalled = "load-0@conference.localhost/p1";
    assert!(
        r.freezes.frozen_publishers.iter().any(|p| p == stalled),
        "{:?}",
        r.freezes
    );
    let at_subscribers: Vec<_> = r
        .freezes
        .streams
        .iter()
        .filter(|s| s.publisher == "p1" && s.receiver.starts_with("load-0@"))
        .collect();
    assert_eq!(at_subscribers.len(), 3, "{:?}", r.freezes.streams);
    assert!(
        at_subscribers.iter().all(|s| s.ms >= 1500.0),
        "frozen for the stall: {at_subscribers:?}"
    );

    // The JSON holds every figure; the plot is an SVG.
    report::write_json(&report, &json).expect("JSON written");
    report::write_plot(&report, &plot).expect("plot written");
    let v: serde_json::Value =
        serde_json::from_reader(std::fs::File::open(&json).expect("JSON")).expect("valid JSON");
    for step in [
        "logged_in",
        "room_joined",
        "session_accepted",
        "ice_connected",
        "first_frame",
    ] {
        for q in ["p50", "p95", "max"] {
            let path = format!("targets.0.join_ms.{step}.{q}");
            assert!(
                at(&v, &path).is_some_and(|x| x.as_f64().is_some()),
                "{path}"
            );
        }
    }
    for path in [
        "targets.0.latency_ms.video.p50",
        "targets.0.latency_ms.video.p95",
        "targets.0.latency_ms.video.p99",
        "targets.0.latency_ms.audio.p50",
        "targets.0.loss.frame_loss_pct",
        "targets.0.loss.packet_loss_pct",
        "targets.0.jitter_ms.mean",
        "targets.0.freezes.total_ms",
        "targets.0.bitrate.total_kbps",
        "targets.0.bitrate.video_track_kbps",
        "targets.0.bridge.cpu_pct",
        "targets.0.bridge.rss_mb_max",
        "targets.0.bridge.forwarded_packets",
        "targets.0.bridge.cpu_us_per_forwarded_packet",
        "targets.0.timeline.3.latency_p50_ms",
        "targets.0.timeline.3.received_kbps",
        "targets.0.timeline.3.loss_pct",
        "targets.0.participant_details.0.received.0.latency_mean_ms",
    ] {
        assert!(
            at(&v, path).is_some_and(|x| x.as_f64().is_some()),
            "{path} in the JSON"
        );
    }
    assert!(at(&v, "targets.0.bitrate.total_kbps")
        .and_then(|x| x.as_f64())
        .is_some_and(|k| k > 0.0));
    let svg = std::fs::read_to_string(&plot).expect("plot");
    assert!(svg.starts_with("<svg") && svg.contains("video latency") && svg.contains("frame loss"));
    let _ = std::fs::remove_dir_all(&dir);
    confab.stop();
}
