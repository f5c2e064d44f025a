//! Whole calls on the sans-IO core: str0m client peers and the bridge on a
//! simulated network with a virtual clock (no sockets, deterministic).

use std::collections::BTreeMap;
use std::time::Duration;

use sfu::sim::{SimNet, SimVideo};
use sfu::{CoreEvent, EndpointConfig, RoomEvent};

fn run_call(net: &mut SimNet, publishers: &[usize], codec: SimVideo, frames: u32) {
    for f in 0..frames {
        for &p in publishers {
            net.send_video(p, f % 30 == 0, codec);
            net.send_audio(p);
        }
        net.exchange();
        net.run_for(Duration::from_millis(33));
    }
    net.run_for(Duration::from_millis(500));
}

/// Per SSRC, the counters a peer received, in arrival order.
fn by_ssrc(net: &SimNet, peer: usize) -> BTreeMap<u32, (u8, Vec<u32>)> {
    let mut m: BTreeMap<u32, (u8, Vec<u32>)> = BTreeMap::new();
    for r in &net.peers[peer].received {
        let e = m.entry(*r.ssrc).or_insert((r.pt, Vec::new()));
        if let Some(c) = r.counter {
            e.1.push(c);
        }
    }
    m
}

fn three_party(codec: SimVideo) {
    let mut net = SimNet::new(EndpointConfig::default());
    let a = net.join("room", true, Some(codec));
    let b = net.join("room", true, Some(codec));
    let c = net.join("room", true, Some(codec));
    assert!(net.connect_all(Duration::from_secs(5)), "all peers connect");
    net.run_for(Duration::from_millis(200));
    run_call(&mut net, &[a, b, c], codec, 90);

    for p in [a, b, c] {
        let got = by_ssrc(&net, p);
        assert_eq!(got.len(), 4, "peer {p} receives 2 tracks from each of 2 others: {got:?}");
        for (ssrc, (_pt, counters)) in &got {
            assert!(counters.len() > 40, "peer {p} ssrc {ssrc} got {} packets", counters.len());
            assert!(counters.windows(2).all(|w| w[0] < w[1]), "in order: {counters:?}");
        }
    }
    let published = net
        .events
        .iter()
        .filter(|e| matches!(e, CoreEvent::Room(RoomEvent::TrackPublished { .. })))
        .count();
    assert_eq!(published, 6);
}

#[test]
fn three_party_vp8_and_opus() {
    three_party(SimVideo::Vp8);
}

#[test]
fn three_party_h264_and_opus() {
    three_party(SimVideo::H264);
}

