//! The command line: what load to put on which bridge, and where the
//! report goes. The same [`Options`] drive the binary and the tests.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Parser;
use confab_media::VideoCodec;

/// A bridge to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// Confab, over XMPP (`--xmpp`).
    Confab,
    /// A Janus VideoRoom, over its HTTP API (`--janus`).
    Janus,
}

/// A stalled camera, to check that freezes are reported.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Stall {
    /// Room index (0-based).
    pub room: usize,
    /// Participant index in the room (0-based; must be a publisher).
    pub participant: usize,
    /// Seconds after the run started.
    pub at: f64,
    /// Seconds it lasts.
    pub secs: f64,
}

impl std::str::FromStr for Stall {
    type Err = String;
    fn from_str(s: &str) -> Result<Stall, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let bad = || format!("{s}: expected ROOM:PARTICIPANT:AT:SECONDS, e.g. 0:1:5:2");
        if parts.len() != 4 {
            return Err(bad());
        }
        let stall = Stall {
            room: parts[0].parse().map_err(|_| bad())?,
            participant: parts[1].parse().map_err(|_| bad())?,
            at: parts[2].parse().map_err(|_| bad())?,
            secs: parts[3].parse().map_err(|_| bad())?,
        };
        if !(stall.at >= 0.0 && stall.secs > 0.0 && stall.at.is_finite() && stall.secs.is_finite())
        {
            return Err(bad());
        }
        Ok(stall)
    }
}

/// A video size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Resolution {
    /// Pixels.
    pub width: u32,
    /// Pixels.
    pub height: u32,
}

impl std::str::FromStr for Resolution {
    type Err = String;
    fn from_str(s: &str) -> Result<Resolution, String> {
        let (w, h) = s
            .split_once('x')
            .ok_or_else(|| format!("{s}: expected WIDTHxHEIGHT"))?;
        let r = Resolution {
            width: w.parse().map_err(|_| format!("{s}: bad width"))?,
            height: h.parse().map_err(|_| format!("{s}: bad height"))?,
        };
        if r.width < 64
            || r.height < 64
            || r.width > 3840
            || r.height > 2160
            || !r.width.is_multiple_of(8)
            || !r.height.is_multiple_of(8)
        {
            return Err(format!(
                "{s}: sizes from 64x64 to 3840x2160, multiples of 8"
            ));
        }
        Ok(r)
    }
}

/// Puts simulated participants on a bridge and reports what they measured.
#[derive(Debug, Clone, Parser, serde::Serialize)]
#[command(name = "confab-loadtest", version, about)]
pub struct Options {
    /// Bridges to measure, one after the other with the same load
    /// (repeat: `--target confab --target janus`).
    #[arg(long = "target", value_enum, default_values_t = [Target::Confab])]
    pub targets: Vec<Target>,
    /// Confab's XMPP service: a WebSocket URL (`ws://host:port/xmpp-websocket`)
    /// or a TCP `host:port` (STARTTLS; needs --tls-cert and an account).
    #[arg(long, default_value = "ws://127.0.0.1:8080/xmpp-websocket")]
    pub xmpp: String,
    /// XMPP domain; rooms are `<prefix>-<n>@conference.<domain>`.
    #[arg(long, default_value = "localhost")]
    pub domain: String,
    /// Log in with this account (every participant, each with its own
    /// resource) instead of as guests.
    #[arg(long, requires = "password")]
    pub user: Option<String>,
    /// The account's password.
    #[arg(long, env = "CONFAB_LOADTEST_PASSWORD", hide_env_values = true)]
    #[serde(skip)]
    pub password: Option<String>,
    /// PEM certificate the XMPP server presents on STARTTLS (TCP only).
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    /// Prometheus endpoint of Confab, for forwarded-packet counts (default:
    /// `/metrics` on the WebSocket URL's host).
    #[arg(long)]
    pub metrics_url: Option<String>,
    /// Janus HTTP API (for `--target janus`).
    #[arg(long, default_value = "http://10.77.0.1:8088/janus")]
    pub janus: String,
    /// Process id of Confab, for its CPU and memory from /proc (default:
    /// the process named `confab`, if exactly one runs here).
    #[arg(long)]
    pub confab_pid: Option<u32>,
    /// Process id of Janus (default: the process named `janus`, if exactly
    /// one runs here).
    #[arg(long)]
    pub janus_pid: Option<u32>,
    /// Number of rooms.
    #[arg(long, default_value_t = 1)]
    pub rooms: usize,
    /// Participants per room.
    #[arg(long, default_value_t = 4)]
    pub participants: usize,
    /// How many participants of each room publish (default: all).
    #[arg(long)]
    pub publishers: Option<usize>,
    /// Room name prefix.
    #[arg(long, default_value = "load")]
    pub room_prefix: String,
    /// Seconds the full load runs once everyone has been started.
    #[arg(long, default_value_t = 30.0)]
    pub duration: f64,
    /// Participants started per second.
    #[arg(long, default_value_t = 10.0)]
    pub ramp_up: f64,
    /// Video codec.
    #[arg(long, default_value_t = VideoCodec::Vp8, value_parser = codec_parser())]
    #[serde(serialize_with = "codec_name")]
    pub codec: VideoCodec,
    /// Video size of the top layer.
    #[arg(long, default_value = "640x360")]
    pub resolution: Resolution,
    /// Frames per second.
    #[arg(long, default_value_t = 30)]
    pub fps: u32,
    /// Video bitrate of the top layer, kbit/s.
    #[arg(long, default_value_t = 600)]
    pub bitrate: u32,
    /// Publish three simulcast layers (q, h, f).
    #[arg(long)]
    pub simulcast: bool,
    /// Publish no audio.
    #[arg(long)]
    pub no_audio: bool,
    /// Random seed (picture, session ids).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Address the participants' media sockets use (the bridge must reach
    /// it; for Janus, the network namespace's address).
    #[arg(long, default_value = "127.0.0.1")]
    pub media_ip: IpAddr,
    /// Pause a publisher's media: ROOM:PARTICIPANT:AT:SECONDS (repeatable).
    #[arg(long = "stall")]
    pub stalls: Vec<Stall>,
    /// Write every figure as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Draw latency, loss and bitrate over time (SVG) to this file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

impl Options {
    /// Publishers per room.
    pub fn publishers_per_room(&self) -> usize {
        self.publishers
            .unwrap_or(self.participants)
            .min(self.participants)
    }

    /// Checks what clap cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.rooms == 0 || self.participants == 0 {
            return Err("--rooms and --participants must be at least 1".into());
        }
        if !(self.duration > 0.0 && self.duration.is_finite()) {
            return Err("--duration must be positive".into());
        }
        if !(self.ramp_up > 0.0 && self.ramp_up.is_finite()) {
            return Err("--ramp-up must be positive".into());
        }
        if self.fps == 0 || self.fps > 60 {
            return Err("--fps must be 1 to 60".into());
        }
        for s in &self.stalls {
            if s.room >= self.rooms || s.participant >= self.publishers_per_room() {
                return Err(format!(
                    "--stall {}:{}: no such publisher",
                    s.room, s.participant
                ));
            }
        }
        Ok(())
    }
}

/// `--codec`: a codec's name, each listed with what encodes it here.
fn codec_parser() -> impl clap::builder::TypedValueParser<Value = VideoCodec> {
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
    let names = VideoCodec::ALL.map(|codec| {
        PossibleValue::new(codec.name()).help(match codec {
            VideoCodec::Vp8 => "VP8 (RFC 7741), encoded with libvpx",
            VideoCodec::H264 => "H.264 constrained baseline (RFC 6184), encoded with OpenH264",
        })
    });
    PossibleValuesParser::new(names).try_map(|name| name.parse::<VideoCodec>())
}

/// The report names the codec as `--codec` does.
fn codec_name<S: serde::Serializer>(codec: &VideoCodec, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(codec.name())
}
