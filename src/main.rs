//! The `confab` server: reads configuration and starts the services.
//! Configuration and wiring only; every service lives in its own crate.

mod config;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::config::{Args, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();

    let args = Args::parse();
    let config = Config::load(&args)?;
    tracing::info!(?config, "configuration");

    let (sfu, mut room_events) = sfu::SfuHandle::start(config.sfu_config())?;
    for (i, addr) in sfu.worker_addrs().iter().enumerate() {
        println!("confab: media worker {i} listening on udp {addr}");
    }
    println!(
        "confab: media plane ready ({} workers). Signaling and the web client are not built yet; press Ctrl-C to stop.",
        sfu.worker_addrs().len()
    );

    let events = tokio::spawn(async move {
        while let Some(ev) = room_events.recv().await {
            tracing::info!(?ev, "room event");
        }
    });

    tokio::signal::ctrl_c().await?;
    tracing::info!("shutting down");
    drop(sfu);
    events.abort();
    Ok(())
}
