//! The report: every figure of a run (serialised as the `--json` file),
//! the table printed at the end, and the `--plot` SVG.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::options::{Options, Target};
use crate::participant::{JoinSteps, Outcome, Plan};
use crate::stats::{Kind, TrackStats};

/// Everything a run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// `confab-loadtest`.
    pub tool: &'static str,
    /// Its version.
    pub version: &'static str,
    /// The load.
    pub options: Options,
    /// One entry per bridge measured, in run order.
    pub targets: Vec<TargetReport>,
}

/// A distribution's summary.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Dist {
    /// Samples.
    pub count: u64,
    /// Mean.
    pub mean: Option<f64>,
    /// Median.
    pub p50: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// Largest.
    pub max: Option<f64>,
}

impl Dist {
    /// Of a latency histogram in µs, in ms.
    pub fn of_histogram(h: &Histogram<u64>) -> Dist {
        if h.is_empty() {
            return Dist::default();
        }
        let ms = |v: u64| Some(v as f64 / 1000.0);
        Dist {
            count: h.len(),
            mean: Some(h.mean() / 1000.0),
            p50: ms(h.value_at_quantile(0.5)),
            p95: ms(h.value_at_quantile(0.95)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
        }
    }

    /// Of samples (nearest-rank percentiles).
    pub fn of(mut v: Vec<f64>) -> Dist {
        if v.is_empty() {
            return Dist::default();
        }
        v.sort_by(f64::total_cmp);
        let rank = |q: f64| Some(v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1]);
        Dist {
            count: v.len() as u64,
            mean: Some(v.iter().sum::<f64>() / v.len() as f64),
            p50: rank(0.5),
            p95: rank(0.95),
            p99: rank(0.99),
            max: v.last().copied(),
        }
    }
}

/// How far the participants got.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Participants {
    /// Started.
    pub planned: usize,
    /// Logged in.
    pub logged_in: usize,
    /// In their room.
    pub joined: usize,
    /// Session accepted.
    pub accepted: usize,
    /// ICE + DTLS connected.
    pub connected: usize,
    /// Received at least one video frame.
    pub receiving: usize,
    /// Stopped on an error.
    pub failed: usize,
    /// Distinct errors, with how many participants had each.
    pub errors: BTreeMap<String, usize>,
}

/// Join time by step, ms from the participant's start.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct JoinTimes {
    /// Logged in.
    pub logged_in: Dist,
    /// Own presence from the room.
    pub room_joined: Dist,
    /// session-accept applied.
    pub session_accepted: Dist,
    /// ICE and DTLS connected.
    pub ice_connected: Dist,
    /// First remote video frame.
    pub first_frame: Dist,
}

/// Which publisher tracks reached which subscribers.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Streams {
    /// (subscriber, publisher, kind) triples the load implies.
    pub expected: usize,
    /// Of those, how many delivered at least one frame.
    pub received: usize,
    /// The ones that did not, as `room/subscriber <- publisher kind`.
    pub missing: Vec<String>,
}

/// End-to-end latency, ms.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Latency {
    /// Video frames.
    pub video: Dist,
    /// Audio frames.
    pub audio: Dist,
}

/// What did not arrive.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Loss {
    /// Frames received.
    pub frames_received: u64,
    /// Frames whose counter was skipped.
    pub frames_lost: u64,
    /// frames_lost / (received + lost), %.
    pub frame_loss_pct: f64,
    /// RTP packets the received frames spanned.
    pub packets_expected: u64,
    /// Of those, missing.
    pub packets_lost: u64,
    /// %.
    pub packet_loss_pct: f64,
}

/// RFC 3550 jitter over the received tracks, ms.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Jitter {
    /// Mean over tracks.
    pub mean: f64,
    /// Largest track's.
    pub max: f64,
}

/// One frozen video track.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FrozenStream {
    /// `room/nick` of the subscriber.
    pub receiver: String,
    /// Nick of the publisher.
    pub publisher: String,
    /// Freezes.
    pub count: u32,
    /// Total frozen time, ms.
    pub ms: f64,
}

/// Video freezes (gaps over 200 ms).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Freezes {
    /// Freezes over all video tracks.
    pub count: u32,
    /// Total frozen time, ms.
    pub total_ms: f64,
    /// Every track that froze.
    pub streams: Vec<FrozenStream>,
    /// Publishers whose video froze at every subscriber that received it.
    pub frozen_publishers: Vec<String>,
}

/// Received bitrate.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Bitrate {
    /// All subscribers together, kbit/s, over the full-load window.
    pub total_kbps: f64,
    /// Mean of the video tracks' bitrates, kbit/s.
    pub video_track_kbps: f64,
    /// Mean of the audio tracks' bitrates, kbit/s.
    pub audio_track_kbps: f64,
}

/// The bridge process over the full-load window.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct BridgeUse {
    /// Its pid, if known.
    pub pid: Option<u32>,
    /// The window, s.
    pub window_s: f64,
    /// CPU time (user + system) in the window, s.
    pub cpu_s: Option<f64>,
    /// CPU use, % of one core.
    pub cpu_pct: Option<f64>,
    /// Largest resident memory seen, MiB.
    pub rss_mb_max: Option<f64>,
    /// RTP packets forwarded in the window.
    pub forwarded_packets: Option<f64>,
    /// Where that count came from.
    pub forwarded_source: Option<String>,
    /// cpu_s / forwarded_packets, µs.
    pub cpu_us_per_forwarded_packet: Option<f64>,
    /// Why /metrics could not be read, if it could not.
    pub metrics_error: Option<String>,
    /// The load tester's own CPU use in the window, % of one core (when it
    /// shares the machine, it competes with the bridge for it).
    pub load_tester_cpu_pct: Option<f64>,
}

/// One second of the run, all participants together.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TimePoint {
    /// Seconds since the run started.
    pub t_s: u32,
    /// Video latency median, ms.
    pub latency_p50_ms: Option<f64>,
    /// 95th percentile, ms.
    pub latency_p95_ms: Option<f64>,
    /// 99th percentile, ms.
    pub latency_p99_ms: Option<f64>,
    /// Frames received.
    pub frames: u64,
    /// Frames found lost.
    pub frames_lost: u64,
    /// %.
    pub loss_pct: f64,
    /// Received, kbit/s.
    pub received_kbps: f64,
    /// RTP packets received.
    pub received_packets: u64,
    /// Freezes that ended.
    pub freezes: u32,
    /// Participants connected.
    pub connected: usize,
    /// Bridge CPU, % of a core.
    pub bridge_cpu_pct: Option<f64>,
    /// Bridge memory, MiB.
    pub bridge_rss_mb: Option<f64>,
}

/// One participant: what it did (room, nick, join steps, errors) and,
/// per received track, what it saw.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ParticipantReport {
    /// Room, nick, whether it published, join timings, errors.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Per received track.
    pub received: Vec<TrackStats>,
}

/// One bridge's figures.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TargetReport {
    /// Which bridge.
    pub target: Target,
    /// Its address.
    pub endpoint: String,
    /// Start, ms since the Unix epoch.
    pub started_unix_ms: u64,
    /// Seconds from first to last participant start.
    pub ramp_up_s: f64,
    /// Seconds of full load after that.
    pub duration_s: f64,
    /// How far participants got.
    pub participants: Participants,
    /// Join time by step.
    pub join_ms: JoinTimes,
    /// Coverage.
    pub streams: Streams,
    /// Latency.
    pub latency_ms: Latency,
    /// Loss.
    pub loss: Loss,
    /// Jitter.
    pub jitter_ms: Jitter,
    /// Freezes.
    pub freezes: Freezes,
    /// Bitrate.
    pub bitrate: Bitrate,
    /// Bridge CPU and memory.
    pub bridge: BridgeUse,
    /// Per second.
    pub timeline: Vec<TimePoint>,
    /// Per participant.
    pub participant_details: Vec<ParticipantReport>,
}

/// An outcome for a participant task that panicked.
pub fn crashed(why: String) -> Outcome {
    Outcome {
        room: String::new(),
        nick: String::new(),
        publisher: false,
        join_ms: JoinSteps::default(),
        error: Some(format!("participant task failed: {why}")),
        problems: Vec::new(),
        received: Default::default(),
    }
}

/// The (room/subscriber, publisher, kind) triples a plan implies.
pub fn expected_streams(plans: &[(Duration, Plan)], audio: bool) -> Vec<(String, String, Kind)> {
    let mut out = Vec::new();
    for (_, rx) in plans {
        for (_, tx) in plans {
            if tx.room != rx.room || tx.nick == rx.nick || !tx.publish {
                continue;
            }
            out.push((
                format!("{}/{}", rx.room, rx.nick),
                tx.nick.clone(),
                Kind::Video,
            ));
            if audio {
                out.push((
                    format!("{}/{}", rx.room, rx.nick),
                    tx.nick.clone(),
                    Kind::Audio,
                ));
            }
        }
    }
    out
}

/// What [`target_report`] summarises.
pub struct Inputs<'a> {
    pub target: Target,
    pub endpoint: String,
    pub started_unix_ms: u64,
    pub ramp_up_s: f64,
    pub duration_s: f64,
    pub planned: usize,
    pub plans: &'a [(Duration, Plan)],
    pub expected_streams: Vec<(String, String, Kind)>,
    pub outcomes: Vec<Outcome>,
    pub video: &'a Histogram<u64>,
    pub audio: &'a Histogram<u64>,
    pub timeline: Vec<TimePoint>,
    pub bridge: BridgeUse,
    pub full_load_kbps: f64,
}

/// Summarises a run.
pub fn target_report(i: Inputs<'_>) -> TargetReport {
    let mut outcomes = i.outcomes;
    outcomes.sort_by(|a, b| (&a.room, &a.nick).cmp(&(&b.room, &b.nick)));
    let count = |f: fn(&JoinSteps) -> Option<f64>| {
        outcomes.iter().filter(|o| f(&o.join_ms).is_some()).count()
    };
    let dist = |f: fn(&JoinSteps) -> Option<f64>| {
        Dist::of(outcomes.iter().filter_map(|o| f(&o.join_ms)).collect())
    };
    let mut errors = BTreeMap::new();
    for e in outcomes.iter().filter_map(|o| o.error.clone()) {
        *errors.entry(e).or_insert(0) += 1;
    }
    let participants = Participants {
        planned: i.planned,
        logged_in: count(|j| j.logged_in),
        joined: count(|j| j.room_joined),
        accepted: count(|j| j.session_accepted),
        connected: count(|j| j.ice_connected),
        receiving: count(|j| j.first_frame),
        failed: outcomes.iter().filter(|o| o.error.is_some()).count(),
        errors,
    };
    let join_ms = JoinTimes {
        logged_in: dist(|j| j.logged_in),
        room_joined: dist(|j| j.room_joined),
        session_accepted: dist(|j| j.session_accepted),
        ice_connected: dist(|j| j.ice_connected),
        first_frame: dist(|j| j.first_frame),
    };

    let got = |rx: &str, publisher: &str, kind: Kind| {
        outcomes
            .iter()
            .find(|o| format!("{}/{}", o.room, o.nick) == rx)
            .and_then(|o| o.received.get(&(publisher.to_string(), kind)))
            .is_some_and(|t| t.frames > 0)
    };
    let missing: Vec<String> = i
        .expected_streams
        .iter()
        .filter(|(rx, tx, k)| !got(rx, tx, *k))
        .map(|(rx, tx, k)| format!("{rx} <- {tx} {k:?}").to_lowercase())
        .collect();
    let streams = Streams {
        expected: i.expected_streams.len(),
        received: i.expected_streams.len() - missing.len(),
        missing,
    };

    let tracks: Vec<(&Outcome, &TrackStats)> = outcomes
        .iter()
        .flat_map(|o| o.received.values().map(move |t| (o, t)))
        .collect();
    let mut loss = Loss::default();
    for (_, t) in &tracks {
        loss.frames_received += t.frames;
        loss.frames_lost += t.frames_lost;
        loss.packets_expected += t.packets_expected;
        loss.packets_lost += t.packets_expected.saturating_sub(t.packets_received);
    }
    let pct = |a: u64, b: u64| {
        if b > 0 {
            a as f64 * 100.0 / b as f64
        } else {
            0.0
        }
    };
    loss.frame_loss_pct = pct(loss.frames_lost, loss.frames_received + loss.frames_lost);
    loss.packet_loss_pct = pct(loss.packets_lost, loss.packets_expected);
    let jitters: Vec<f64> = tracks.iter().map(|(_, t)| t.jitter_ms).collect();
    let jitter_ms = Jitter {
        mean: if jitters.is_empty() {
            0.0
        } else {
            jitters.iter().sum::<f64>() / jitters.len() as f64
        },
        max: jitters.iter().copied().fold(0.0, f64::max),
    };

    let mut freezes = Freezes::default();
    for (o, t) in tracks.iter().filter(|(_, t)| t.kind == Kind::Video) {
        freezes.count += t.freezes;
        freezes.total_ms += t.freeze_ms;
        if t.freezes > 0 {
            freezes.streams.push(FrozenStream {
                receiver: format!("{}/{}", o.room, o.nick),
                publisher: t.publisher.clone(),
                count: t.freezes,
                ms: t.freeze_ms,
            });
        }
    }
    let mut by_publisher: BTreeMap<(String, String), (usize, usize)> = BTreeMap::new();
    for (o, t) in tracks
        .iter()
        .filter(|(_, t)| t.kind == Kind::Video && t.frames > 0)
    {
        let e = by_publisher
            .entry((o.room.clone(), t.publisher.clone()))
            .or_default();
        e.0 += 1;
        e.1 += usize::from(t.freezes > 0);
    }
    freezes.frozen_publishers = by_publisher
        .into_iter()
        .filter(|(_, (n, frozen))| *n > 0 && n == frozen)
        .map(|((room, publisher), _)| format!("{room}/{publisher}"))
        .collect();

    let mean_kbps = |k: Kind| {
        let v: Vec<f64> = tracks
            .iter()
            .filter(|(_, t)| t.kind == k)
            .map(|(_, t)| t.kbps)
            .collect();
        if v.is_empty() {
            0.0
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    let bitrate = Bitrate {
        total_kbps: i.full_load_kbps,
        video_track_kbps: mean_kbps(Kind::Video),
        audio_track_kbps: mean_kbps(Kind::Audio),
    };
    let _ = i.plans;
    let participant_details = outcomes
        .iter()
        .map(|o| ParticipantReport {
            outcome: o.clone(),
            received: o.received.values().cloned().collect(),
        })
        .collect();
    TargetReport {
        target: i.target,
        endpoint: i.endpoint,
        started_unix_ms: i.started_unix_ms,
        ramp_up_s: i.ramp_up_s,
        duration_s: i.duration_s,
        participants,
        join_ms,
        streams,
        latency_ms: Latency {
            video: Dist::of_histogram(i.video),
            audio: Dist::of_histogram(i.audio),
        },
        loss,
        jitter_ms,
        freezes,
        bitrate,
        bridge: i.bridge,
        timeline: i.timeline,
        participant_details,
    }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map(|v| format!("{v:.digits$}"))
        .unwrap_or_else(|| "-".into())
}

/// The table printed at the end: one row per figure, one column per
/// bridge.
pub fn table(report: &Report) -> String {
    let t = &report.targets;
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut row = |name: &str, f: &dyn Fn(&TargetReport) -> String| {
        rows.push((name.to_string(), t.iter().map(f).collect()));
    };
    let o = &report.options;
    row("load", &|_| {
        format!(
            "{} room(s) x {} ({} publishing), {:?} {}x{}@{} {} kbit/s{}{}",
            o.rooms,
            o.participants,
            o.publishers_per_room(),
            o.codec,
            o.resolution.width,
            o.resolution.height,
            o.fps,
            o.bitrate,
            if o.simulcast { ", simulcast" } else { "" },
            if o.no_audio { ", no audio" } else { ", + Opus" },
        )
    });
    row("full load for", &|r| {
        format!("{:.0} s (after {:.1} s ramp-up)", r.duration_s, r.ramp_up_s)
    });
    row("participants connected", &|r| {
        format!(
            "{}/{} (failed {})",
            r.participants.connected, r.participants.planned, r.participants.failed
        )
    });
    let step = |d: &Dist| format!("p50 {} / p95 {} ms", opt(d.p50, 0), opt(d.p95, 0));
    row("join: logged in", &|r| step(&r.join_ms.logged_in));
    row("join: room joined", &|r| step(&r.join_ms.room_joined));
    row("join: session accepted", &|r| {
        step(&r.join_ms.session_accepted)
    });
    row("join: ICE connected", &|r| step(&r.join_ms.ice_connected));
    row("join: first frame", &|r| step(&r.join_ms.first_frame));
    row("streams received", &|r| {
        format!("{}/{}", r.streams.received, r.streams.expected)
    });
    let lat = |d: &Dist| {
        format!(
            "{} / {} / {} ms",
            opt(d.p50, 1),
            opt(d.p95, 1),
            opt(d.p99, 1)
        )
    };
    row("video latency p50/p95/p99", &|r| lat(&r.latency_ms.video));
    row("audio latency p50/p95/p99", &|r| lat(&r.latency_ms.audio));
    row("frame loss", &|r| {
        format!(
            "{:.3}% ({} of {})",
            r.loss.frame_loss_pct,
            r.loss.frames_lost,
            r.loss.frames_lost + r.loss.frames_received
        )
    });
    row("packet loss", &|r| {
        format!("{:.3}%", r.loss.packet_loss_pct)
    });
    row("jitter mean/max", &|r| {
        format!("{:.2} / {:.2} ms", r.jitter_ms.mean, r.jitter_ms.max)
    });
    row("freezes", &|r| {
        format!(
            "{} ({:.0} ms; {} publisher(s) frozen everywhere)",
            r.freezes.count,
            r.freezes.total_ms,
            r.freezes.frozen_publishers.len()
        )
    });
    row("received, all subscribers", &|r| {
        format!("{:.0} kbit/s", r.bitrate.total_kbps)
    });
    row("per video track", &|r| {
        format!("{:.0} kbit/s", r.bitrate.video_track_kbps)
    });
    row("bridge CPU", &|r| {
        format!("{}% of a core", opt(r.bridge.cpu_pct, 1))
    });
    row("load tester CPU", &|r| {
        format!("{}% of a core", opt(r.bridge.load_tester_cpu_pct, 1))
    });
    row("bridge memory (max RSS)", &|r| {
        format!("{} MiB", opt(r.bridge.rss_mb_max, 0))
    });
    row("forwarded packets", &|r| opt(r.bridge.forwarded_packets, 0));
    row("CPU per forwarded packet", &|r| {
        format!("{} µs", opt(r.bridge.cpu_us_per_forwarded_packet, 2))
    });

    let name_w = rows
        .iter()
        .map(|(n, _)| n.chars().count())
        .max()
        .unwrap_or(0);
    let col_w: Vec<usize> = (0..t.len())
        .map(|c| {
            rows.iter()
                .map(|(_, v)| v[c].chars().count())
                .max()
                .unwrap_or(0)
                .max(format!("{:?}", t[c].target).len())
        })
        .collect();
    let mut out = String::new();
    out.push_str(&format!("{:name_w$}", ""));
    for (c, r) in t.iter().enumerate() {
        out.push_str(&format!("  {:w$}", format!("{:?}", r.target), w = col_w[c]));
    }
    out.push('\n');
    for (name, values) in &rows {
        out.push_str(&format!("{name:name_w$}"));
        for (c, v) in values.iter().enumerate() {
            out.push_str(&format!("  {v:w$}", w = col_w[c]));
        }
        out.push('\n');
    }
    for r in t {
        if !r.participants.errors.is_empty() {
            out.push_str(&format!("\n{:?} errors:\n", r.target));
            for (e, n) in &r.participants.errors {
                out.push_str(&format!("  {n} x {e}\n"));
            }
        }
        if !r.streams.missing.is_empty() {
            out.push_str(&format!(
                "\n{:?}: {} stream(s) never arrived, e.g. {}\n",
                r.target,
                r.streams.missing.len(),
                r.streams.missing[0]
            ));
        }
        if let Some(e) = &r.bridge.metrics_error {
            out.push_str(&format!("\n{:?}: /metrics: {e}\n", r.target));
        }
    }
    out
}

/// Writes the report as JSON.
pub fn write_json(report: &Report, path: &Path) -> anyhow::Result<()> {
    let file = std::fs::File::create(path)?;
    serde_json::to_writer_pretty(std::io::BufWriter::new(file), report)?;
    Ok(())
}

/// Draws video latency (p50, p95), frame loss and received bitrate over
/// time, one line per bridge, as SVG.
pub fn write_plot(report: &Report, path: &Path) -> anyhow::Result<()> {
    use plotters::prelude::*;
    let root = SVGBackend::new(path, (900, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((3, 1));
    let t_max = report
        .targets
        .iter()
        .flat_map(|r| r.timeline.iter().map(|p| p.t_s))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    type Series = (String, Vec<(f64, f64)>);
    let colours = [BLUE, RED, GREEN, MAGENTA];
    let draw = |area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
                title: &str,
                unit: &str,
                series: Vec<Series>|
     -> anyhow::Result<()> {
        let y_max = series
            .iter()
            .flat_map(|(_, s)| s.iter().map(|p| p.1))
            .fold(0.0f64, f64::max)
            .max(1e-3)
            * 1.1;
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..t_max, 0.0..y_max)?;
        chart.configure_mesh().x_desc("s").y_desc(unit).draw()?;
        for (i, (name, points)) in series.into_iter().enumerate() {
            let colour = colours[i % colours.len()];
            chart
                .draw_series(LineSeries::new(points, colour.stroke_width(2)))?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    };
    let mut latency = Vec::new();
    let mut loss = Vec::new();
    let mut rate = Vec::new();
    for r in &report.targets {
        let name = format!("{:?}", r.target).to_lowercase();
        let pts = |f: &dyn Fn(&TimePoint) -> Option<f64>| -> Vec<(f64, f64)> {
            r.timeline
                .iter()
                .filter_map(|p| f(p).map(|v| (p.t_s as f64, v)))
                .collect()
        };
        latency.push((format!("{name} p50"), pts(&|p| p.latency_p50_ms)));
        latency.push((format!("{name} p95"), pts(&|p| p.latency_p95_ms)));
        loss.push((name.clone(), pts(&|p| Some(p.loss_pct))));
        rate.push((name, pts(&|p| Some(p.received_kbps / 1000.0))));
    }
    draw(&panels[0], "video latency", "ms", latency)?;
    draw(&panels[1], "frame loss", "%", loss)?;
    draw(&panels[2], "received by all subscribers", "Mbit/s", rate)?;
    root.present()?;
    Ok(())
}
