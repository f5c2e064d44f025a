//! One run: plan the participants, start them at the ramp-up rate, gather
//! their steps and per-second samples (progress bar, timeline), sample the
//! bridge process, and turn their outcomes into a [`TargetReport`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::media::{ClipSpec, VideoClip};
use crate::options::{Options, Target};
use crate::participant::{self, Login, Outcome, Plan, Server, Shared};
use crate::probe::{self, ProcSample};
use crate::report::{self, BridgeUse, Report, TargetReport, TimePoint};
use crate::stats::Second;
use crate::{janus, Step, Update};

/// Runs the load against every target of `options`, one after the other.
pub async fn run(options: &Options) -> anyhow::Result<Report> {
    options.validate().map_err(anyhow::Error::msg)?;
    let spec = ClipSpec {
        codec: options.codec,
        width: options.resolution.width,
        height: options.resolution.height,
        fps: options.fps,
        kbps: options.bitrate,
        simulcast: options.simulcast,
        seed: options.seed,
    };
    let clip = tokio::task::spawn_blocking(move || VideoClip::encode(&spec)).await??;
    let clip = Arc::new(clip);
    let mut targets = Vec::new();
    for &target in &options.targets {
        targets.push(run_target(options, target, clip.clone()).await?);
    }
    Ok(Report {
        tool: "confab-loadtest",
        version: env!("CARGO_PKG_VERSION"),
        options: options.clone(),
        targets,
    })
}

/// The latency histogram every figure uses: 1 µs to 60 s, 2 significant
/// digits.
pub(crate) fn histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts.
    Histogram::new_with_bounds(1, 60_000_000, 2).expect("valid histogram bounds")
}

/// What the aggregator keeps per second of the run.
pub(crate) struct SecondAgg {
    pub video: Histogram<u64>,
    pub audio: Histogram<u64>,
    pub frames: u64,
    pub lost: u64,
    pub bytes: u64,
    pub packets: u64,
    pub freezes: u32,
    pub bridge: Option<ProcSample>,
    pub connected: usize,
}

impl SecondAgg {
    fn new() -> SecondAgg {
        SecondAgg {
            video: histogram(),
            audio: histogram(),
            frames: 0,
            lost: 0,
            bytes: 0,
            packets: 0,
            freezes: 0,
            bridge: None,
            connected: 0,
        }
    }

    fn add(&mut self, s: &Second) {
        for &l in &s.video_latency_us {
            self.video.saturating_record(u64::from(l).max(1));
        }
        for &l in &s.audio_latency_us {
            self.audio.saturating_record(u64::from(l).max(1));
        }
        self.frames += s.frames;
        self.lost += s.lost;
        self.bytes += s.bytes;
        self.packets += s.packets;
        self.freezes += s.freezes;
    }
}

fn bridge_pid(options: &Options, target: Target) -> Option<u32> {
    match target {
        Target::Confab => options.confab_pid.or_else(|| probe::find_pid("confab")),
        Target::Janus => options.janus_pid.or_else(|| probe::find_pid("janus")),
    }
}

/// The participants of a run, in start order (room by room).
pub fn plan(options: &Options, target: Target, run_start: Instant) -> Vec<(Duration, Plan)> {
    let mut plans = Vec::new();
    let publishers = options.publishers_per_room();
    for r in 0..options.rooms {
        let room = match target {
            Target::Confab => format!("{}-{r}@conference.{}", options.room_prefix, options.domain),
            Target::Janus => format!("{}-{r}", options.room_prefix),
        };
        for i in 0..options.participants {
            let id = r * options.participants + i;
            let stalls = options
                .stalls
                .iter()
                .filter(|s| s.room == r && s.participant == i)
                .map(|s| {
                    let from = run_start + Duration::from_secs_f64(s.at);
                    (from, from + Duration::from_secs_f64(s.secs))
                })
                .collect();
            let start = Duration::from_secs_f64(id as f64 / options.ramp_up);
            plans.push((
                start,
                Plan {
                    id,
                    room: room.clone(),
                    nick: format!("p{i}"),
                    publish: i < publishers,
                    stalls,
                },
            ));
        }
    }
    plans
}

async fn login(options: &Options) -> anyhow::Result<Login> {
    let account = options
        .user
        .clone()
        .map(|u| (u, options.password.clone().unwrap_or_default()));
    let server = if options.xmpp.starts_with("ws://") || options.xmpp.starts_with("wss://") {
        Server::WebSocket(options.xmpp.clone())
    } else {
        let addr = tokio::net::lookup_host(&options.xmpp)
            .await?
            .next()
            .ok_or_else(|| anyhow::anyhow!("{}: no address", options.xmpp))?;
        let cert = options.tls_cert.as_ref().ok_or_else(|| {
            anyhow::anyhow!("XMPP over TCP needs --tls-cert (the server's certificate, PEM)")
        })?;
        Server::Tcp {
            addr,
            cert_pem: std::fs::read_to_string(cert)?,
        }
    };
    Ok(Login {
        server,
        domain: options.domain.clone(),
        account,
    })
}

async fn run_target(
    options: &Options,
    target: Target,
    clip: Arc<VideoClip>,
) -> anyhow::Result<TargetReport> {
    let total = options.rooms * options.participants;
    let ramp = Duration::from_secs_f64((total.saturating_sub(1)) as f64 / options.ramp_up);
    let run_start = Instant::now();
    let started_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let full_load_at = run_start + ramp;
    let end_at = full_load_at + Duration::from_secs_f64(options.duration);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let plans = plan(options, target, run_start);

    let mut tasks: JoinSet<Outcome> = JoinSet::new();
    let endpoint = match target {
        Target::Confab => {
            let shared = Arc::new(Shared {
                login: login(options).await?,
                clip: clip.clone(),
                audio: !options.no_audio,
                media_ip: options.media_ip,
                run_start,
                end_at,
                updates: tx.clone(),
            });
            for (delay, plan) in plans.clone() {
                let shared = shared.clone();
                tasks.spawn(async move {
                    tokio::time::sleep_until((run_start + delay).into()).await;
                    participant::run(plan, shared).await
                });
            }
            options.xmpp.clone()
        }
        Target::Janus => {
            let shared = Arc::new(janus::Shared {
                api: options.janus.clone(),
                clip: clip.clone(),
                audio: !options.no_audio,
                media_ip: options.media_ip,
                run_start,
                end_at,
                updates: tx.clone(),
                room_base: 7_000 + (options.seed % 1000) * 100,
            });
            for (delay, plan) in plans.clone() {
                let shared = shared.clone();
                tasks.spawn(async move {
                    tokio::time::sleep_until((run_start + delay).into()).await;
                    janus::run(plan, shared).await
                });
            }
            options.janus.clone()
        }
    };
    drop(tx);

    let pid = bridge_pid(options, target);
    let metrics_url = match target {
        Target::Confab => options
            .metrics_url
            .clone()
            .or_else(|| probe::metrics_url_for(&options.xmpp)),
        Target::Janus => None,
    };
    let bar = progress_bar(options, (end_at - run_start).as_secs(), target);
    let expected_streams = report::expected_streams(&plans, !options.no_audio);

    let mut seconds: BTreeMap<u32, SecondAgg> = BTreeMap::new();
    let mut steps: BTreeMap<usize, Step> = BTreeMap::new();
    let mut live: BTreeMap<usize, usize> = BTreeMap::new();
    let mut total_video = histogram();
    let mut total_audio = histogram();
    let mut window = Window::default();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut last_second_sampled = None;
    let mut outcomes = Vec::new();
    let mut receiving = true;
    loop {
        tokio::select! {
            u = rx.recv(), if receiving => match u {
                Some(Update::Step(id, s)) => {
                    let e = steps.entry(id).or_insert(s);
                    if s > *e || s == Step::Failed {
                        *e = s;
                    }
                }
                Some(Update::Second(id, s)) => {
                    for &l in &s.video_latency_us {
                        total_video.saturating_record(u64::from(l).max(1));
                    }
                    for &l in &s.audio_latency_us {
                        total_audio.saturating_record(u64::from(l).max(1));
                    }
                    live.insert(id, s.tracks.len());
                    seconds.entry(s.index).or_insert_with(SecondAgg::new).add(&s);
                    window.add(&s, run_start, full_load_at, end_at);
                }
                None => receiving = false,
            },
            done = tasks.join_next() => match done {
                Some(Ok(outcome)) => outcomes.push(outcome),
                Some(Err(e)) => outcomes.push(report::crashed(e.to_string())),
                None => break,
            },
            _ = tick.tick() => {
                let now = Instant::now();
                let second = now.saturating_duration_since(run_start).as_secs() as u32;
                if last_second_sampled != Some(second) {
                    last_second_sampled = Some(second);
                    let agg = seconds.entry(second).or_insert_with(SecondAgg::new);
                    agg.bridge = pid.and_then(probe::sample);
                    agg.connected = steps.values().filter(|s| **s >= Step::IceConnected && **s != Step::Failed).count();
                }
                window.sample(now, full_load_at, end_at, pid, metrics_url.as_deref()).await;
                update_bar(&bar, now, run_start, &steps, total, &live, expected_streams.len(), &seconds);
            }
        }
    }
    window
        .sample(
            Instant::now(),
            full_load_at,
            end_at,
            pid,
            metrics_url.as_deref(),
        )
        .await;
    bar.finish_and_clear();

    let timeline = timeline(&seconds);
    let bridge = window.bridge_use(
        pid,
        metrics_url.is_some(),
        (end_at - full_load_at).as_secs_f64(),
    );
    Ok(report::target_report(report::Inputs {
        target,
        endpoint,
        started_unix_ms,
        ramp_up_s: ramp.as_secs_f64(),
        duration_s: options.duration,
        planned: total,
        plans: &plans,
        expected_streams,
        outcomes,
        video: &total_video,
        audio: &total_audio,
        timeline,
        bridge,
        full_load_kbps: window.kbps(),
    }))
}

fn progress_bar(options: &Options, secs: u64, target: Target) -> ProgressBar {
    let bar = ProgressBar::new(secs.max(1));
    if options.quiet {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let template =
        format!("{target:?} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} s  {{msg}}");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar
}

#[allow(clippy::too_many_arguments)]
fn update_bar(
    bar: &ProgressBar,
    now: Instant,
    run_start: Instant,
    steps: &BTreeMap<usize, Step>,
    total: usize,
    live: &BTreeMap<usize, usize>,
    expected: usize,
    seconds: &BTreeMap<u32, SecondAgg>,
) {
    bar.set_position(now.saturating_duration_since(run_start).as_secs());
    let joined = steps
        .values()
        .filter(|s| **s >= Step::RoomJoined && **s != Step::Failed)
        .count();
    let connected = steps
        .values()
        .filter(|s| **s >= Step::IceConnected && **s != Step::Failed)
        .count();
    let failed = steps.values().filter(|s| **s == Step::Failed).count();
    let (frames, lost) = seconds
        .values()
        .fold((0, 0), |(f, l), s| (f + s.frames, l + s.lost));
    let loss = if frames + lost > 0 {
        lost as f64 * 100.0 / (frames + lost) as f64
    } else {
        0.0
    };
    let streams: usize = live.values().sum();
    let p50 = seconds
        .values()
        .rev()
        .find(|s| !s.video.is_empty())
        .map(|s| s.video.value_at_quantile(0.5) as f64 / 1000.0)
        .unwrap_or(0.0);
    bar.set_message(format!(
        "joined {joined}/{total} · connected {connected} · streams {streams}/{expected} · loss {loss:.2}% · p50 {p50:.1} ms{}",
        if failed > 0 { format!(" · failed {failed}") } else { String::new() }
    ));
}

fn timeline(seconds: &BTreeMap<u32, SecondAgg>) -> Vec<TimePoint> {
    let mut prev: Option<ProcSample> = None;
    let mut out = Vec::new();
    for (&t, s) in seconds {
        let cpu_pct = match (prev, s.bridge) {
            (Some(a), Some(b)) => Some(b.cpu.saturating_sub(a.cpu).as_secs_f64() * 100.0),
            _ => None,
        };
        if s.bridge.is_some() {
            prev = s.bridge;
        }
        let q = |h: &Histogram<u64>, q: f64| {
            (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / 1000.0)
        };
        out.push(TimePoint {
            t_s: t,
            latency_p50_ms: q(&s.video, 0.5),
            latency_p95_ms: q(&s.video, 0.95),
            latency_p99_ms: q(&s.video, 0.99),
            frames: s.frames,
            frames_lost: s.lost,
            loss_pct: if s.frames + s.lost > 0 {
                s.lost as f64 * 100.0 / (s.frames + s.lost) as f64
            } else {
                0.0
            },
            received_kbps: s.bytes as f64 * 8.0 / 1000.0,
            received_packets: s.packets,
            freezes: s.freezes,
            connected: s.connected,
            bridge_cpu_pct: cpu_pct,
            bridge_rss_mb: s.bridge.map(|b| b.rss as f64 / 1_048_576.0),
        });
    }
    out
}

/// The full-load window (from the last participant's start to the end):
/// bridge CPU and forwarded packets at its edges, and what receivers got
/// in it.
#[derive(Default)]
struct Window {
    start: Option<(Instant, Option<ProcSample>, Option<f64>)>,
    end: Option<(Instant, Option<ProcSample>, Option<f64>)>,
    /// The load tester's own process at the edges.
    own: (Option<ProcSample>, Option<ProcSample>),
    rss_max: u64,
    bytes: u64,
    packets: u64,
    secs: std::collections::BTreeSet<u32>,
    metrics_error: Option<String>,
}

impl Window {
    fn add(&mut self, s: &Second, run_start: Instant, from: Instant, to: Instant) {
        let t = run_start + Duration::from_secs(u64::from(s.index));
        if t >= from && t + Duration::from_secs(1) <= to {
            self.bytes += s.bytes;
            self.packets += s.packets;
            self.secs.insert(s.index);
        }
    }

    fn kbps(&self) -> f64 {
        if self.secs.is_empty() {
            0.0
        } else {
            self.bytes as f64 * 8.0 / 1000.0 / self.secs.len() as f64
        }
    }

    async fn sample(
        &mut self,
        now: Instant,
        from: Instant,
        to: Instant,
        pid: Option<u32>,
        metrics: Option<&str>,
    ) {
        if let Some(s) = pid.and_then(probe::sample) {
            self.rss_max = self.rss_max.max(s.rss);
        }
        let edge = if self.start.is_none() && now >= from {
            true
        } else {
            self.end.is_none() && now >= to
        };
        if !edge {
            return;
        }
        let proc = pid.and_then(probe::sample);
        let forwarded = match metrics {
            Some(url) => match probe::scrape(url, probe::FORWARDED_METRIC).await {
                Ok(v) => Some(v),
                Err(e) => {
                    self.metrics_error = Some(e);
                    None
                }
            },
            None => None,
        };
        let at = Instant::now();
        let own = probe::sample(std::process::id());
        if self.start.is_none() {
            self.start = Some((at, proc, forwarded));
            self.own.0 = own;
        } else {
            self.end = Some((at, proc, forwarded));
            self.own.1 = own;
        }
    }

    fn bridge_use(&self, pid: Option<u32>, has_metrics: bool, duration: f64) -> BridgeUse {
        let mut b = BridgeUse {
            pid,
            window_s: duration,
            rss_mb_max: (self.rss_max > 0).then(|| self.rss_max as f64 / 1_048_576.0),
            metrics_error: self.metrics_error.clone(),
            ..BridgeUse::default()
        };
        let (Some((t0, p0, f0)), Some((t1, p1, f1))) = (self.start, self.end) else {
            return b;
        };
        let secs = t1.saturating_duration_since(t0).as_secs_f64();
        if let ((Some(a), Some(z)), true) = (self.own, secs > 0.0) {
            b.load_tester_cpu_pct = Some(z.cpu.saturating_sub(a.cpu).as_secs_f64() * 100.0 / secs);
        }
        if let (Some(a), Some(z)) = (p0, p1) {
            let cpu = z.cpu.saturating_sub(a.cpu).as_secs_f64();
            b.cpu_s = Some(cpu);
            if secs > 0.0 {
                b.cpu_pct = Some(cpu * 100.0 / secs);
            }
        }
        let forwarded = match (f0, f1) {
            (Some(a), Some(z)) if has_metrics => {
                b.forwarded_source = Some("bridge metrics".into());
                Some(z - a)
            }
            _ => {
                b.forwarded_source = Some("packets received by the load tester".into());
                Some(self.packets as f64)
            }
        };
        b.forwarded_packets = forwarded;
        if let (Some(cpu), Some(n)) = (b.cpu_s, forwarded) {
            if n > 0.0 {
                b.cpu_us_per_forwarded_packet = Some(cpu * 1e6 / n);
            }
        }
        b
    }
}
