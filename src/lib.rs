//! The `confab` server assembled from its crates: configuration in, the
//! media plane (`sfu`), the XMPP server and focus (`signaling`) and the
//! HTTP front (`web`: the browser client, `/xmpp-websocket`, the admin
//! API, `/metrics`, `/health`) running, with one owner of recordings
//! (`recorder::Recordings`) that signaling and web share.
//!
//! Wiring only: every service lives in its own crate. The binary and the
//! end-to-end tests both start Confab through [`start`].

pub mod config;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;

use crate::config::Config;

/// A running Confab.
pub struct Running {
    /// The media plane.
    pub sfu: sfu::SfuHandle,
    /// The XMPP server.
    pub signaling: signaling::net::Signaling,
    /// The recordings (started over XMPP and the admin API).
    pub recordings: recorder::Recordings,
    /// Where the HTTP server listens.
    pub http_addr: SocketAddr,
    /// Where the XMPP TCP listener listens.
    pub xmpp_addr: SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stop the listeners (media workers stop when the last handle goes).
    pub fn stop(self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Start every service of `config`.
pub async fn start(config: &Config) -> anyhow::Result<Running> {
    // First, so that every crate's metrics are recorded from the start.
    let metrics = web::Metrics::install();
    let (sfu, mut room_events) =
        sfu::SfuHandle::start(config.sfu_config()).context("starting the media plane")?;
    let room_log = tokio::spawn(async move {
        while let Some(ev) = room_events.recv().await {
            tracing::debug!(?ev, "room event");
        }
    });

    let options = config.recorder.options().map_err(|e| anyhow::anyhow!(e))?;
    let recordings =
        recorder::Recordings::with_options(sfu.clone(), config.recorder.dir.clone(), options);

    let x = &config.xmpp;
    let tls = if !x.tls {
        None
    } else {
        Some(match (&x.cert, &x.key, &x.data_dir) {
            (Some(cert), Some(key), _) => signaling::tls::TlsIdentity::from_files(cert, key)?,
            (None, None, Some(dir)) => signaling::tls::TlsIdentity::self_signed_in(dir, &x.domain)?,
            (None, None, None) => signaling::tls::TlsIdentity::self_signed(&x.domain)?,
            _ => anyhow::bail!("[xmpp] cert and key go together"),
        })
    };
    let accounts =
        signaling::auth::Accounts::new(x.accounts.iter().map(|(u, p)| (u.as_str(), p.as_str())))
            .map_err(|e| anyhow::anyhow!(e))?;
    let signaling = signaling::net::Signaling::start(
        signaling::net::SignalingConfig {
            domain: x.domain.clone(),
            tcp_bind: SocketAddr::new(x.bind, x.port),
            tls,
            require_tls: x.require_tls,
            allow_anonymous: x.anonymous,
            accounts: Arc::new(accounts),
            limits: signaling::xml::Limits::default(),
            recordings: recordings.clone(),
        },
        sfu.clone(),
    )
    .await
    .with_context(|| format!("binding XMPP to {}:{}", x.bind, x.port))?;

    let http_bind = SocketAddr::new(config.http.bind, config.http.port);
    let http = web::start(
        http_bind,
        web::WebConfig {
            signaling: signaling.clone(),
            sfu: sfu.clone(),
            metrics,
            admin_token: web::auth::AdminToken(config.http.admin_token.as_deref().map(Into::into)),
        },
    )
    .await
    .with_context(|| format!("binding HTTP to {http_bind}"))?;
    Ok(Running {
        xmpp_addr: signaling.tcp_addr(),
        sfu,
        signaling,
        recordings,
        http_addr: http.addr,
        tasks: vec![room_log, http.task],
    })
}
