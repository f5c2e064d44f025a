//! Confab's one configuration type: a TOML file, overridden by environment
//! variables (`CONFAB_*`), overridden by command-line flags.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use serde::Deserialize;

/// Command-line flags. Each also reads an environment variable.
#[derive(Debug, Parser)]
#[command(name = "confab", version, about = "Confab: a video-conferencing bridge")]
pub struct Args {
    /// TOML configuration file.
    #[arg(long, short, env = "CONFAB_CONFIG")]
    pub config: Option<PathBuf>,
    /// Number of media workers (0: one per core).
    #[arg(long, env = "CONFAB_MEDIA_WORKERS")]
    pub media_workers: Option<usize>,
    /// Address the media sockets bind to.
    #[arg(long, env = "CONFAB_MEDIA_BIND")]
    pub media_bind: Option<IpAddr>,
    /// UDP port of the first media worker (0: any free port).
    #[arg(long, env = "CONFAB_MEDIA_PORT")]
    pub media_port: Option<u16>,
    /// Address advertised in ICE candidates (default: the bind address).
    #[arg(long, env = "CONFAB_MEDIA_ADVERTISE")]
    pub media_advertise: Option<IpAddr>,
    /// Seconds without an ICE consent check before a participant is dropped.
    #[arg(long, env = "CONFAB_CONSENT_TIMEOUT")]
    pub consent_timeout: Option<u64>,
}

/// The whole configuration, as a TOML file spells it.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The media plane.
    pub media: MediaConfig,
}

/// `[media]` in the TOML file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    pub workers: usize,
    pub bind: IpAddr,
    pub port: u16,
    pub advertise: Option<IpAddr>,
    pub consent_timeout_secs: u64,
    pub connect_timeout_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            media: MediaConfig::default(),
        }
    }
}

impl Default for MediaConfig {
    fn default() -> Self {
        let d = sfu::SfuConfig::default();
        MediaConfig {
            workers: d.workers,
            bind: d.bind_ip,
            port: d.first_port,
            advertise: d.advertised_ip,
            consent_timeout_secs: d.endpoint.consent_timeout.as_secs(),
            connect_timeout_secs: d.endpoint.connect_timeout.as_secs(),
        }
    }
}

impl Config {
    /// File (if any), then flags and environment on top.
    pub fn load(args: &Args) -> anyhow::Result<Config> {
        let mut config = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
            }
            None => Config::default(),
        };
        let m = &mut config.media;
        if let Some(v) = args.media_workers {
            m.workers = v;
        }
        if let Some(v) = args.media_bind {
            m.bind = v;
        }
        if let Some(v) = args.media_port {
            m.port = v;
        }
        if let Some(v) = args.media_advertise {
            m.advertise = Some(v);
        }
        if let Some(v) = args.consent_timeout {
            m.consent_timeout_secs = v;
        }
        Ok(config)
    }

    /// The media plane's view of the configuration.
    pub fn sfu_config(&self) -> sfu::SfuConfig {
        let m = &self.media;
        sfu::SfuConfig {
            workers: m.workers,
            bind_ip: m.bind,
            first_port: m.port,
            advertised_ip: m.advertise,
            endpoint: sfu::EndpointConfig {
                consent_timeout: Duration::from_secs(m.consent_timeout_secs),
                connect_timeout: Duration::from_secs(m.connect_timeout_secs),
                ..Default::default()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_flags() {
        let cfg: Config = toml::from_str("[media]\nworkers = 3\nport = 20000\n").expect("valid toml");
        assert_eq!(cfg.media.workers, 3);
        assert_eq!(cfg.sfu_config().first_port, 20000);
        assert!(toml::from_str::<Config>("[media]\nwrokers = 3\n").is_err(), "typos are rejected");
    }
}
