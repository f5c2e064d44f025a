//! The `confab` server: reads configuration and starts the services
//! (see the library, [`confab::start`]).

use clap::Parser;
use tracing_subscriber::EnvFilter;

use confab::config::{Args, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();

    let args = Args::parse();
    let config = Config::load(&args)?;
    tracing::info!(?config, "configuration");

    let running = confab::start(&config).await?;
    for (i, addr) in running.sfu.worker_addrs().iter().enumerate() {
        println!("confab: media worker {i} listening on udp {addr}");
    }
    println!(
        "confab: XMPP for {} on tcp {} (STARTTLS {}), rooms at conference.{}",
        config.xmpp.domain,
        running.xmpp_addr,
        if config.xmpp.tls { "on" } else { "off" },
        config.xmpp.domain
    );
    println!(
        "confab: XMPP over WebSocket at ws://{}/xmpp-websocket",
        running.http_addr
    );
    println!(
        "confab: open http://{0}/ to start a call; admin at http://{0}/admin, metrics at http://{0}/metrics. Press Ctrl-C to stop.",
        running.http_addr
    );
    if config.http.admin_token.is_none() {
        println!("confab: recordings can be managed from this machine only (set CONFAB_ADMIN_TOKEN to allow admins elsewhere)");
    }

    tokio::signal::ctrl_c().await?;
    tracing::info!("shutting down");
    running.stop();
    Ok(())
}
