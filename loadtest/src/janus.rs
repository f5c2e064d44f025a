//! The same simulated participants against a Janus VideoRoom.
//!
//! Not built yet: [`run`] reports every participant as failed with the
//! reason, so a run with `--target janus` says so instead of measuring
//! nothing silently.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use crate::media::VideoClip;
use crate::participant::{JoinSteps, Outcome, Plan};
use crate::{Step, Update};

/// What is common to every Janus participant of a run.
#[derive(Debug)]
pub struct Shared {
    /// Janus HTTP API, e.g. `http://10.77.0.1:8088/janus`.
    pub api: String,
    /// The video every publisher sends.
    pub clip: Arc<VideoClip>,
    /// Publishers send Opus too.
    pub audio: bool,
    /// The address media sockets bind to.
    pub media_ip: IpAddr,
    /// When the run started.
    pub run_start: Instant,
    /// When everyone leaves.
    pub end_at: Instant,
    /// Where steps and per-second samples go.
    pub updates: mpsc::UnboundedSender<Update>,
    /// Numeric room ids start here.
    pub room_base: u64,
}

/// Runs one participant against Janus.
pub async fn run(plan: Plan, shared: Arc<Shared>) -> Outcome {
    let _ = shared.updates.send(Update::Step(plan.id, Step::Failed));
    Outcome {
        room: plan.room,
        nick: plan.nick,
        publisher: plan.publish,
        join_ms: JoinSteps::default(),
        error: Some("the Janus target is not built yet".into()),
        problems: Vec::new(),
        received: Default::default(),
    }
}
