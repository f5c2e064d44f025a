//! Forwarding cost of the media plane's core, SRTP on.
//!
//! One publisher sends VP8 packets (1000-byte payloads) to a room with 1, 10
//! and 50 subscribers on the simulated network (`sfu::sim`). Only time
//! spent inside the bridge's core is counted (decrypting the publisher's
//! SRTP, forwarding, encrypting per subscriber, RTCP), not the simulated
//! peers' own work. Prints ns per forwarded packet and forwarded packets
//! per second of core time.
//!
//! Run: `cargo bench -p sfu --bench forwarding`

use std::time::Duration;

use confab_media::VideoCodec;
use sfu::sim::SimNet;
use sfu::EndpointConfig;

fn run(subscribers: usize, frames: u32) -> (u64, Duration) {
    let mut net = SimNet::new(EndpointConfig::default());
    let publisher = net.join("bench", false, Some(VideoCodec::Vp8));
    for _ in 0..subscribers {
        net.join("bench", false, None);
    }
    assert!(net.connect_all(Duration::from_secs(10)), "peers connect");
    net.run_for(Duration::from_millis(300));
    // Warm up: the first keyframe opens every subscriber's stream.
    for f in 0..30 {
        net.send_video(publisher, f == 0, VideoCodec::Vp8);
        net.step(Duration::from_millis(1));
    }
    let before: usize = net.peers.iter().map(|p| p.received.len()).sum();
    let mut in_core = Duration::ZERO;
    for f in 0..frames {
        net.send_video(publisher, f % 300 == 0, VideoCodec::Vp8);
        in_core += net.step(Duration::from_millis(1));
    }
    in_core += net.step(Duration::from_millis(50));
    let after: usize = net.peers.iter().map(|p| p.received.len()).sum();
    ((after - before) as u64, in_core)
}

fn main() {
    // `cargo test --benches` runs this with `--bench`-less args; keep it quick then.
    let quick = !std::env::args().any(|a| a == "--bench");
    let frames = if quick { 200 } else { 3000 };
    println!("subscribers  forwarded  core_ns/packet  packets/s(core)");
    for subs in [1usize, 10, 50] {
        let (forwarded, in_core) = run(subs, frames);
        assert!(forwarded > 0, "packets were forwarded");
        let ns = in_core.as_nanos() as f64 / forwarded as f64;
        println!("{subs:>11}  {forwarded:>9}  {ns:>14.0}  {:>15.0}", 1e9 / ns);
    }
}
