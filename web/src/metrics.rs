//! `/metrics`: the process's metrics (every crate records through the
//! `metrics` facade) as Prometheus text, and a count of HTTP requests.
//!
//! A process has one global recorder; [`Metrics::install`] installs the
//! Prometheus one the first time and hands out the same handle after, so
//! several Confabs in one process (as in tests) share it.

use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Counter: HTTP requests answered, by route and status code.
pub const HTTP_REQUESTS: &str = "confab_http_requests_total";

/// How often histograms are drained even when nobody scrapes, so that
/// per-packet samples never pile up.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Buckets (seconds) of the media plane's forwarding latency: it should
/// stay well under a millisecond.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005,
    0.01, 0.025, 0.1,
];

/// The Prometheus recorder of this process, if it could be installed.
#[derive(Clone)]
pub struct Metrics {
    handle: Option<PrometheusHandle>,
}

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

impl Metrics {
    /// Install the Prometheus recorder as the process's global recorder
    /// (once per process; later calls return the same one). Call it before
    /// the media plane starts: a metric handle taken before any recorder
    /// is installed records nothing. If another recorder was installed
    /// first, `/metrics` says so instead of serving numbers.
    pub fn install() -> Metrics {
        let handle = RECORDER.get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(sfu::metrics::names::FORWARD_LATENCY.into()), LATENCY_BUCKETS)
                .map_err(|e| tracing::warn!(error = %e, "latency buckets refused"))
                .unwrap_or_else(|()| PrometheusBuilder::new());
            match builder.install_recorder() {
                Ok(handle) => {
                    let upkeep = handle.clone();
                    let spawned = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || loop {
                        std::thread::sleep(UPKEEP_EVERY);
                        upkeep.run_upkeep();
                    });
                    if let Err(e) = spawned {
                        tracing::warn!(error = %e, "no metrics upkeep thread; histograms drain on scrape only");
                    }
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "another metrics recorder is installed; /metrics is off");
                    None
                }
            }
        });
        Metrics {
            handle: handle.clone(),
        }
    }

    /// The metrics as Prometheus text; `None` without the recorder.
    pub fn render(&self) -> Option<String> {
        let handle = self.handle.as_ref()?;
        handle.run_upkeep();
        Some(handle.render())
    }
}

/// The `/metrics` route.
pub fn routes(metrics: Metrics) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .with_state(metrics)
}

async fn render(State(metrics): State<Metrics>) -> Response {
    match metrics.render() {
        Some(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "another metrics recorder is installed in this process\n",
        )
            .into_response(),
    }
}

/// Middleware: count each request by its route (the pattern, so the
/// label set stays small) and status.
pub async fn count_requests(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(request).await;
    metrics::counter!(HTTP_REQUESTS, "route" => route, "status" => response.status().as_str().to_owned())
        .increment(1);
    response
}
