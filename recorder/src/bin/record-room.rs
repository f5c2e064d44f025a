//! `record-room`: a media plane and a recorder in one process, driven over
//! stdin, for testing what a recording looks like after the process dies
//! (`kill -9`). Not a server: signaling starts recordings in Confab itself.
//!
//! Protocol, one command per line on stdin, answers on stdout:
//! - `offer <room> <name> <bytes>` then the SDP offer: answers
//!   `answer <bytes>` then the SDP answer (the bridge's offers are not
//!   relayed, so one publisher per room);
//! - `record <room> <dir>`: starts recording per participant and
//!   composited (320x180, 10 fps, H.264), every file named
//!   `<room>-...`; answers `recording`.

use std::io::{BufRead, Read, Write};

use sfu::{SdpOffer, SfuConfig, SfuHandle};

fn main() {
    if let Err(e) = run() {
        eprintln!("record-room: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let (sfu, _rooms) = SfuHandle::start(SfuConfig {
        workers: 1,
        first_port: 0,
        ..Default::default()
    })?;
    let mut recordings = Vec::new();
    let mut endpoints = Vec::new();
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut out = std::io::stdout();
    writeln!(out, "ready")?;
    out.flush()?;
    let mut line = String::new();
    while input.read_line(&mut line)? > 0 {
        let words: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        line.clear();
        match words
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            ["offer", room, name, len] => {
                let mut sdp = vec![0u8; len.parse()?];
                input.read_exact(&mut sdp)?;
                let offer = SdpOffer::from_sdp_string(&String::from_utf8(sdp)?)?;
                let (id, answer, events) =
                    runtime.block_on(sfu.create_endpoint((*room).into(), (*name).into(), offer))?;
                // Keep the event stream open for the endpoint's life.
                endpoints.push((id, events));
                let answer = answer.to_sdp_string();
                write!(out, "answer {}\n{answer}", answer.len())?;
            }
            ["record", room, dir] => {
                let _guard = runtime.enter();
                let options = recorder::RecordOptions {
                    composite: Some(recorder::CompositeConfig {
                        width: 320,
                        height: 180,
                        fps: 10,
                        codec: recorder::OutputCodec::H264,
                        kbps: 300,
                    }),
                    min_free_bytes: 0,
                    prefix: format!("{room}-"),
                    ..recorder::RecordOptions::default()
                };
                recordings.push(recorder::Recorder::start_with(
                    &sfu,
                    &(*room).into(),
                    dir.as_ref(),
                    options,
                    None,
                )?);
                writeln!(out, "recording")?;
            }
            _ => writeln!(out, "error unknown command")?,
        }
        out.flush()?;
    }
    for r in recordings {
        r.stop()?;
    }
    Ok(())
}
