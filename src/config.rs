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
#[command(
    name = "confab",
    version,
    about = "Confab: a video-conferencing bridge"
)]
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
    /// The XMPP domain (rooms live at conference.<domain>).
    #[arg(long, env = "CONFAB_DOMAIN")]
    pub domain: Option<String>,
    /// Address the XMPP (TCP) and HTTP listeners bind to.
    #[arg(long, env = "CONFAB_BIND")]
    pub bind: Option<IpAddr>,
    /// XMPP client-to-server TCP port (0: any free port).
    #[arg(long, env = "CONFAB_XMPP_PORT")]
    pub xmpp_port: Option<u16>,
    /// HTTP port (web client, /xmpp-websocket; 0: any free port).
    #[arg(long, env = "CONFAB_HTTP_PORT")]
    pub http_port: Option<u16>,
    /// Secret for the recordings API and downloads (without it: this
    /// machine only). Prefer the environment variable to the flag, which
    /// other users of the machine can see.
    #[arg(long, env = "CONFAB_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
}

/// The whole configuration, as a TOML file spells it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The media plane.
    pub media: MediaConfig,
    /// The XMPP server.
    pub xmpp: XmppConfig,
    /// The HTTP server.
    pub http: HttpConfig,
    /// Recordings.
    pub recorder: RecorderConfig,
}

/// `[recorder]` in the TOML file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecorderConfig {
    /// Where recordings are written (relative paths: from the working
    /// directory), and served from to admins.
    pub dir: PathBuf,
    /// One file per participant, without transcoding.
    pub per_track: bool,
    /// Also one file of everyone in a grid, transcoded.
    pub composite: bool,
    /// The composite's size, `WIDTHxHEIGHT`.
    pub composite_size: String,
    /// The composite's frame rate.
    pub composite_fps: u32,
    /// The composite's codec: `h264` (MP4) or `vp8` (WebM).
    pub composite_codec: String,
    /// The composite's video bitrate, kbit/s.
    pub composite_kbps: u32,
    /// A recording stops when the disk has less than this many MiB free.
    pub min_free_mb: u64,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        let c = recorder::CompositeConfig::default();
        RecorderConfig {
            dir: PathBuf::from("recordings"),
            per_track: true,
            composite: true,
            composite_size: format!("{}x{}", c.width, c.height),
            composite_fps: c.fps,
            composite_codec: c.codec.to_string(),
            composite_kbps: c.kbps,
            min_free_mb: 512,
        }
    }
}

impl RecorderConfig {
    /// What each recording writes, checked.
    pub fn options(&self) -> Result<recorder::RecordOptions, String> {
        let composite = if self.composite {
            let (w, h) = self
                .composite_size
                .split_once('x')
                .and_then(|(w, h)| Some((w.trim().parse().ok()?, h.trim().parse().ok()?)))
                .ok_or_else(|| {
                    format!(
                        "[recorder] composite_size {:?}: WIDTHxHEIGHT",
                        self.composite_size
                    )
                })?;
            let c = recorder::CompositeConfig {
                width: w,
                height: h,
                fps: self.composite_fps,
                codec: self.composite_codec.parse()?,
                kbps: self.composite_kbps,
            };
            c.validate().map_err(|e| format!("[recorder] {e}"))?;
            Some(c)
        } else {
            None
        };
        if !self.per_track && composite.is_none() {
            return Err(
                "[recorder] per_track and composite are both off: nothing would be recorded".into(),
            );
        }
        Ok(recorder::RecordOptions {
            per_track: self.per_track,
            composite,
            min_free_bytes: self.min_free_mb.saturating_mul(1 << 20),
            prefix: String::new(),
        })
    }
}

/// `[xmpp]` in the TOML file.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct XmppConfig {
    /// The domain; rooms are at `conference.<domain>`.
    pub domain: String,
    /// Listener address.
    pub bind: IpAddr,
    /// Client-to-server TCP port.
    pub port: u16,
    /// Offer STARTTLS (with `cert`/`key`, or a self-signed certificate).
    pub tls: bool,
    /// Require STARTTLS before SASL on TCP.
    pub require_tls: bool,
    /// PEM certificate chain for STARTTLS.
    pub cert: Option<PathBuf>,
    /// PEM private key for STARTTLS.
    pub key: Option<PathBuf>,
    /// Where the self-signed certificate and the key of SCRAM salts are
    /// kept between starts (none: new ones every start).
    pub data_dir: Option<PathBuf>,
    /// Allow guests (SASL ANONYMOUS).
    pub anonymous: bool,
    /// Accounts: user name -> password.
    pub accounts: std::collections::BTreeMap<String, String>,
}

impl std::fmt::Debug for XmppConfig {
    // By hand so that passwords never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XmppConfig")
            .field("domain", &self.domain)
            .field("bind", &self.bind)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("require_tls", &self.require_tls)
            .field("cert", &self.cert)
            .field("key", &self.key)
            .field("data_dir", &self.data_dir)
            .field("anonymous", &self.anonymous)
            .field("accounts", &self.accounts.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Default for XmppConfig {
    fn default() -> Self {
        XmppConfig {
            domain: "localhost".into(),
            bind: IpAddr::from([127, 0, 0, 1]),
            port: 5222,
            tls: true,
            require_tls: true,
            cert: None,
            key: None,
            data_dir: None,
            anonymous: true,
            accounts: Default::default(),
        }
    }
}

/// `[http]` in the TOML file.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Listener address.
    pub bind: IpAddr,
    /// Port.
    pub port: u16,
    /// The secret that lets admins start, stop, list and download
    /// recordings from anywhere (without it: from this machine only).
    pub admin_token: Option<String>,
}

impl std::fmt::Debug for HttpConfig {
    // By hand so that the admin token never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("bind", &self.bind)
            .field("port", &self.port)
            .field("admin_token", &self.admin_token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            bind: IpAddr::from([127, 0, 0, 1]),
            port: 8080,
            admin_token: None,
        }
    }
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
    /// The defaults with every port picked by the system and two media
    /// workers: several Confabs side by side on one machine, as the
    /// end-to-end tests run them. Everything stays on loopback.
    pub fn ephemeral() -> Config {
        let mut config = Config::default();
        config.media.port = 0;
        config.media.workers = 2;
        config.xmpp.port = 0;
        config.http.port = 0;
        // A directory of its own, so that Confabs side by side never see
        // each other's recordings.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        config.recorder.dir =
            std::env::temp_dir().join(format!("confab-recordings-{}-{n}", std::process::id()));
        // A light composite: tests share a small machine.
        config.recorder.composite_size = "640x360".into();
        config.recorder.composite_fps = 15;
        config.recorder.composite_kbps = 600;
        config.recorder.min_free_mb = 64;
        config
    }

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
        if let Some(v) = &args.domain {
            config.xmpp.domain = v.clone();
        }
        if let Some(v) = args.bind {
            config.xmpp.bind = v;
            config.http.bind = v;
        }
        if let Some(v) = args.xmpp_port {
            config.xmpp.port = v;
        }
        if let Some(v) = args.http_port {
            config.http.port = v;
        }
        if let Some(v) = &args.admin_token {
            config.http.admin_token = Some(v.clone());
        }
        if let Some(t) = &config.http.admin_token {
            // It travels in a header and a cookie: keep it to what both
            // carry unchanged.
            let fits = |c: char| c.is_ascii_alphanumeric() || "-_.~+/=".contains(c);
            if t.len() < 16 || !t.chars().all(fits) {
                anyhow::bail!("the admin token needs 16 or more letters, digits or - _ . ~ + / =");
            }
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
    fn admin_tokens_are_long_plain_and_never_logged() {
        for bad in [
            "",
            "short",
            "has spaces in it, and more",
            "semi;colon;and-long-enough",
        ] {
            let args = Args::parse_from(["confab", "--admin-token", bad]);
            assert!(Config::load(&args).is_err(), "{bad:?} is refused");
        }
        let good = "correct-horse-battery-staple";
        let config = Config::load(&Args::parse_from(["confab", "--admin-token", good]))
            .expect("a good token");
        assert_eq!(config.http.admin_token.as_deref(), Some(good));
        assert!(!format!("{config:?}").contains(good), "{config:?}");
    }

    #[test]
    fn the_readme_example_is_valid() {
        let readme = include_str!("../README.md");
        let start = readme
            .find("```toml\n")
            .expect("the README has a TOML example")
            + 8;
        let len = readme[start..].find("```").expect("closed");
        let cfg: Config =
            toml::from_str(&readme[start..start + len]).expect("the README's example parses");
        assert_eq!(cfg.xmpp.domain, "localhost");
        assert!(cfg.xmpp.accounts.contains_key("alice"));
        assert_eq!(cfg.recorder.dir, PathBuf::from("recordings"));
    }

    #[test]
    fn file_then_flags() {
        let cfg: Config =
            toml::from_str("[media]\nworkers = 3\nport = 20000\n").expect("valid toml");
        assert_eq!(cfg.media.workers, 3);
        assert_eq!(cfg.sfu_config().first_port, 20000);
        assert!(
            toml::from_str::<Config>("[media]\nwrokers = 3\n").is_err(),
            "typos are rejected"
        );
        let cfg: Config =
            toml::from_str("[xmpp]\ndomain = 'example.org'\n[xmpp.accounts]\nalice = 'pw'\n")
                .expect("valid toml");
        assert_eq!(cfg.xmpp.domain, "example.org");
        assert_eq!(
            cfg.xmpp.accounts.get("alice").map(String::as_str),
            Some("pw")
        );
        assert_eq!(cfg.xmpp.port, 5222);
        assert_eq!(cfg.http.port, 8080);
        assert_eq!(cfg.recorder.dir, PathBuf::from("recordings"));
        let cfg: Config =
            toml::from_str("[recorder]\ndir = '/var/lib/confab/recordings'\n").expect("valid toml");
        assert_eq!(
            cfg.recorder.dir,
            PathBuf::from("/var/lib/confab/recordings")
        );
    }

    #[test]
    fn recorder_options_are_checked() {
        let o = RecorderConfig::default()
            .options()
            .expect("the defaults are valid");
        assert!(o.per_track);
        assert_eq!(o.composite, Some(recorder::CompositeConfig::default()));
        let parse = |t: &str| {
            toml::from_str::<Config>(t)
                .expect("valid toml")
                .recorder
                .options()
        };
        let o = parse(
            "[recorder]\ncomposite_size = '640x360'\ncomposite_codec = 'vp8'\ncomposite_fps = 15\n",
        )
        .unwrap();
        let c = o.composite.unwrap();
        assert_eq!(
            (c.width, c.height, c.fps, c.codec),
            (640, 360, 15, recorder::OutputCodec::Vp8)
        );
        for bad in [
            "composite_size = '640'",
            "composite_size = '641x360'",
            "composite_codec = 'av1'",
            "composite_fps = 0",
            "per_track = false\ncomposite = false",
        ] {
            let err = parse(&format!("[recorder]\n{bad}\n")).expect_err(bad);
            assert!(
                err.contains("[recorder]") || err.contains("codec"),
                "{bad}: {err}"
            );
        }
    }
}
