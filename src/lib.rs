//! The `confab` server assembled from its crates: configuration in, the
//! media plane (`sfu`), the XMPP server and focus (`signaling`) and the
//! HTTP front (`web`: the browser client, `/xmpp-websocket`, the admin
//! API, `/metrics`, `/health`) running, with one owner of recordings
//! (`recorder::Recordings`) that signaling (through its
//! `RecordingControl` interface, for moderators' `/record`) and web share.
//!
//! Wiring only: every service lives in its own crate. The binary and the
//! end-to-end tests both start Confab through [`start`].

pub mod config;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use signaling::jid::BareJid;

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
    // SCRAM salts are derived from this key: kept in the data directory
    // (the same salts across restarts), else new at every start.
    let salt_key = match &x.data_dir {
        Some(dir) => signaling::auth::SaltKey::kept_in(dir)
            .with_context(|| format!("the SCRAM salt key in {}", dir.display()))?,
        None => signaling::auth::SaltKey::from_os(),
    };
    let accounts = signaling::auth::Accounts::new(
        x.accounts.iter().map(|(u, p)| (u.as_str(), p.as_str())),
        salt_key,
    )
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
            recordings: Arc::new(RoomRecorder(recordings.clone())),
        },
        sfu.clone(),
    )
    .await
    .with_context(|| format!("binding XMPP to {}:{}", x.bind, x.port))?;

    let recording_ends = tokio::spawn(relay_recording_ends(
        recordings.subscribe(),
        signaling.clone(),
    ));

    let http_bind = SocketAddr::new(config.http.bind, config.http.port);
    let http = web::start(
        http_bind,
        web::WebConfig {
            signaling: signaling.clone(),
            sfu: sfu.clone(),
            recordings: recordings.clone(),
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
        tasks: vec![room_log, recording_ends, http.task],
    })
}

/// The recorder as the rooms' moderators command it (`/record`).
struct RoomRecorder(recorder::Recordings);

impl signaling::recording::RecordingControl for RoomRecorder {
    fn start(&self, room: &BareJid, by: &str) -> signaling::recording::RecordingResult {
        let id = sfu::RoomId::from(room.to_string());
        self.0
            .start(&id, by)
            .map(|_| ())
            .map_err(|e| e.for_people())
    }

    fn stop<'a>(&'a self, room: &'a BareJid) -> signaling::recording::RecordingFuture<'a> {
        Box::pin(async move {
            let id = sfu::RoomId::from(room.to_string());
            self.0
                .stop(&id)
                .await
                .map(|_| ())
                .map_err(|e| e.for_people())
        })
    }
}

/// Tells the rooms whose recording stopped by itself.
async fn relay_recording_ends(
    mut ended: tokio::sync::broadcast::Receiver<recorder::RecordingEnded>,
    signaling: signaling::net::Signaling,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match ended.recv().await {
            Ok(e) => {
                if let Ok(room) = BareJid::new(e.room.as_str()) {
                    signaling
                        .recording_ended(&room, &e.reason.to_string())
                        .await;
                }
            }
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => break,
        }
    }
}
