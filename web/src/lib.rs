//! # web — Confab's HTTP front
//!
//! One axum server that adapts HTTP to the other crates:
//!
//! ```text
//!  browser ──HTTP──▶ router ─┬─ /, /<room>, /admin, /assets/*, /config.json ─▶ client (embedded dist/)
//!                            ├─ /xmpp-websocket ─▶ websocket ─▶ signaling (RFC 7395 stream)
//!                            ├─ /api/rooms[/<room>], /api/recordings, /recordings/<file> ─▶ api ─▶ signaling (rooms) + recorder + sfu (stats)
//!                            ├─ /metrics ─▶ metrics (Prometheus text)
//!                            └─ /health
//! ```
//!
//! What it is for:
//! - [`client`]: the browser client built into `web/dist` (embedded at
//!   compile time by [`assets`], so a fresh checkout runs without npm), the
//!   page for each room at `/<room>`, and `/config.json`, what the page
//!   needs to connect;
//! - [`websocket`]: `/xmpp-websocket`, handed to
//!   [`signaling::net::Signaling::websocket`];
//! - [`api`]: the admin API (rooms, participants, their tracks and
//!   bitrates; starting and stopping recordings, listing and downloading
//!   their files) as JSON;
//! - [`auth`]: who may use the recording side of the API (an admin token,
//!   or, without one, only this machine);
//! - [`metrics`]: the process's Prometheus recorder and `/metrics`.
//!
//! What it is not for: XMPP, Jingle and media, which belong to `signaling`
//! and `sfu` (this crate only asks them: data flows web -> signaling ->
//! sfu); TLS termination (put a reverse proxy in front); building the
//! client (its sources and build live in `web/client`).
//!
//! How data enters and leaves: [`start`] binds a TCP listener and serves
//! [`router`]; everything it answers comes from the [`WebConfig`] handles.

pub mod api;
pub mod assets;
pub mod auth;
pub mod client;
pub mod metrics;
pub mod websocket;

use std::io;
use std::net::SocketAddr;

use axum::Router;
use sfu::SfuHandle;
use signaling::net::Signaling;

pub use crate::metrics::Metrics;

/// What the HTTP front serves from.
#[derive(Clone)]
pub struct WebConfig {
    /// The XMPP server: WebSocket streams, rooms, the domain.
    pub signaling: Signaling,
    /// The media plane: track statistics.
    pub sfu: SfuHandle,
    /// The recordings: started and stopped by admins, listed, downloaded.
    pub recordings: recorder::Recordings,
    /// The Prometheus recorder ([`Metrics::install`], before the media
    /// plane starts, so that its metrics are recorded).
    pub metrics: Metrics,
    /// Who may start, stop, list and download recordings ([`auth`]).
    pub admin_token: auth::AdminToken,
}

/// The HTTP front, running.
pub struct WebServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The server task; abort it to stop serving.
    pub task: tokio::task::JoinHandle<()>,
}

/// Every route of the HTTP front.
pub fn router(config: WebConfig) -> Router {
    Router::new()
        .route("/health", axum::routing::get(|| async { "ok\n" }))
        .merge(websocket::routes(config.signaling.clone()))
        .merge(api::routes(config.clone()))
        .merge(metrics::routes(config.metrics.clone()))
        .merge(client::routes(config.signaling.clone()))
        .fallback(|| async { (axum::http::StatusCode::NOT_FOUND, "not found\n") })
        .layer(axum::middleware::from_fn(metrics::count_requests))
}

/// Bind `bind` and serve [`router`] on it.
pub async fn start(bind: SocketAddr, config: WebConfig) -> io::Result<WebServer> {
    let listener = tokio::net::TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    let app = router(config);
    let task = tokio::spawn(async move {
        let service = app.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(e) = axum::serve(listener, service).await {
            tracing::error!(error = %e, "HTTP server stopped");
        }
    });
    tracing::info!(%addr, "HTTP listening");
    Ok(WebServer { addr, task })
}
