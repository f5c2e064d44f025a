//! A real call in headless Chromium. Confab starts in-process as the binary
//! starts it (serving the embedded call page), and `web/client/e2e/call.mjs`
//! drives three Chromium processes, each with its own fake camera and
//! microphone, through the page: video from both others decodes, their audio
//! arrives, chat reaches everyone, recording shows and the admin page
//! unlocks with the admin token to list the files, mute shows, and a page
//! that leaves disappears from the others. Once with VP8 and once with
//! H.264.
//!
//! The script's JSON report is checked here again, a screenshot of one page
//! is kept under `target/e2e-artifacts/`, and the time from page load to the
//! first decoded remote frame is printed.
//!
//! Needs Chromium, ffmpeg and `npm ci` in web/client: the test command
//! (scripts/test.sh) installs them.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;

fn repo() -> PathBuf {
    // This crate lives in tests/ of the repository.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(path);
    }
    // Debian's /usr/bin/chromium is a wrapper script; the browser is here.
    PathBuf::from("/usr/lib/chromium/chromium")
}

/// The admin token the browser call's Confab is given: the call checks that
/// the admin page asks for it and, once given it, lists the recordings.
const ADMIN_TOKEN: &str = "e2e-admin-token-0123456789";

async fn start_confab() -> confab::Running {
    let mut config = confab::config::Config::ephemeral();
    config.http.admin_token = Some(ADMIN_TOKEN.into());
    confab::start(&config).await.expect("confab starts")
}

async fn browser_call(codec: &str) {
    confab_tests::init_tracing();
    let client = repo().join("web/client");
    assert!(
        client.join("node_modules/playwright-core").is_dir(),
        "run `npm ci` in web/client first (scripts/test.sh does)"
    );
    let chromium = chromium();
    assert!(
        chromium.exists(),
        "Chromium not found at {} (scripts/test.sh installs it)",
        chromium.display()
    );
    let confab = start_confab().await;
    let out = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"))
        .join("e2e-artifacts");

    let mut child = tokio::process::Command::new("node")
        .arg("e2e/call.mjs")
        .args(["--base", &format!("http://{}", confab.http_addr)])
        .args(["--codec", codec])
        .args(["--admin-token", ADMIN_TOKEN])
        .arg("--out")
        .arg(&out)
        .arg("--chromium")
        .arg(&chromium)
        .current_dir(&client)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut stdout = child.stdout.take().expect("piped");
    let mut report = String::new();
    let status = tokio::time::timeout(Duration::from_secs(180), async {
        stdout
            .read_to_string(&mut report)
            .await
            .expect("read the report");
        child.wait().await.expect("wait for node")
    })
    .await
    .expect("the browser call finishes within 3 minutes");
    confab.stop();
    assert!(
        status.success(),
        "the browser call failed ({status}); its log is above"
    );

    let line = report.lines().last().unwrap_or_default();
    let report: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("the report is JSON ({e}): {line}"));
    let mime = if codec == "h264" {
        "video/H264"
    } else {
        "video/VP8"
    };
    for nick in ["alice", "bob", "carol"] {
        let page = &report["pages"][nick];
        let received = page["received"]
            .as_object()
            .unwrap_or_else(|| panic!("no page report for {nick}: {report}"));
        // Each page decoded both others' video in the chosen codec and heard them.
        assert_eq!(received.len(), 2, "{nick} received from {received:?}");
        for (from, r) in received {
            assert_eq!(r["codec"], mime, "{nick} <- {from}: {r}");
            assert!(
                r["framesDecoded"].as_u64() > Some(0),
                "{nick} <- {from}: {r}"
            );
            assert!(
                r["audioEnergy"].as_f64() > Some(0.0),
                "{nick} <- {from}: {r}"
            );
        }
        assert!(
            page["layers"].as_array().is_some_and(|l| l.len() >= 2),
            "{nick} simulcast layers: {}",
            page["layers"]
        );
    }
    let screenshot = out.join(format!("call-{codec}.png"));
    let png = std::fs::read(&screenshot).expect("the screenshot is kept");
    assert!(
        png.starts_with(b"\x89PNG"),
        "{} is not a PNG",
        screenshot.display()
    );
    let first = report["firstFrameMs"]
        .as_f64()
        .expect("time to first frame");
    println!("browser call ({codec}): first remote frame {first} ms after page load for the last to join");
    println!("screenshot: {}", screenshot.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_call_vp8() {
    browser_call("vp8").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_call_h264() {
    browser_call("h264").await;
}
