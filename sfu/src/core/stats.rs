//! Statistics of the core's endpoints.
//!
//! str0m reports each session's counters once per statistics interval
//! (one second) as events; the core keeps the latest per endpoint and
//! m-line ([`EndpointCounters`](super::endpoint::EndpointCounters)), adds
//! what the counters do not carry (bitrates, codecs, the published track
//! a forwarded m-line comes from), and answers the command
//! [`Core::stats`] from them. NACKs and keyframe requests received from
//! subscribers also go to the worker's metrics.

use str0m::media::{Mid, Rid};
use str0m::stats::{MediaEgressStats, MediaIngressStats, PeerStats};

use super::Core;
use crate::event::{EndpointStats, TrackStats};
use crate::ids::{EndpointId, TrackId};

impl Core {
    /// A snapshot of an endpoint's statistics.
    pub fn stats(&self, id: EndpointId) -> Option<EndpointStats> {
        let ep = self.endpoints.get(&id)?;
        let codec_of = |publisher: EndpointId, mid: Mid| {
            let track = self.endpoints.get(&publisher)?.published.get(&mid)?;
            track.codec.map(|c| c.to_string())
        };
        let mut ingress: Vec<TrackStats> = ep
            .stats
            .ingress
            .iter()
            .map(|((mid, _), t)| TrackStats {
                codec: codec_of(id, *mid),
                ..t.clone()
            })
            .collect();
        // Forwarded media keeps its publisher's codec.
        let mut egress: Vec<TrackStats> = ep
            .stats
            .egress
            .iter()
            .map(|((mid, _), t)| {
                let source = ep.out_by_mid.get(mid).copied();
                TrackStats {
                    codec: source.and_then(|(p, m)| codec_of(p, m)),
                    source: source.map(|(publisher, mid)| TrackId {
                        publisher,
                        mid: mid.to_string(),
                    }),
                    ..t.clone()
                }
            })
            .collect();
        ingress.sort_by(|a, b| (&a.mid, &a.rid).cmp(&(&b.mid, &b.rid)));
        egress.sort_by(|a, b| (&a.mid, &a.rid).cmp(&(&b.mid, &b.rid)));
        Some(EndpointStats {
            id,
            room: ep.room.clone(),
            label: ep.label.clone(),
            connected: ep.connected,
            bytes_in: ep.stats.bytes_in,
            bytes_out: ep.stats.bytes_out,
            rtt: ep.stats.rtt,
            ingress,
            egress,
        })
    }

    /// str0m's [`str0m::Event::PeerStats`] for `id`.
    pub(super) fn peer_stats(&mut self, id: EndpointId, s: PeerStats) {
        if let Some(ep) = self.endpoints.get_mut(&id) {
            ep.stats.bytes_in = s.peer_bytes_rx;
            ep.stats.bytes_out = s.peer_bytes_tx;
            ep.stats.rtt = s.rtt;
        }
    }

    /// str0m's [`str0m::Event::MediaIngressStats`] for `id`: what it
    /// publishes.
    pub(super) fn ingress_stats(&mut self, id: EndpointId, s: MediaIngressStats) {
        if let Some(ep) = self.endpoints.get_mut(&id) {
            let entry = ep.stats.ingress.entry((s.mid, s.rid)).or_default();
            update_track_stats(entry, Sample::from(&s));
        }
    }

    /// str0m's [`str0m::Event::MediaEgressStats`] for `id`: what the bridge
    /// forwards to it. The NACKs and keyframe requests it sent since the
    /// last report are counted in the worker's metrics.
    pub(super) fn egress_stats(&mut self, id: EndpointId, s: MediaEgressStats) {
        if let Some(ep) = self.endpoints.get_mut(&id) {
            let entry = ep.stats.egress.entry((s.mid, s.rid)).or_default();
            let new_nacks = s.nacks.saturating_sub(entry.nacks);
            let new_plis = (s.plis + s.firs).saturating_sub(entry.plis + entry.firs);
            update_track_stats(entry, Sample::from(&s));
            self.metrics.nacks.increment(new_nacks);
            self.metrics.plis.increment(new_plis);
        }
    }
}

/// What str0m's ingress and egress statistics of one m-line (and layer)
/// have in common: cumulative counters and the last loss report.
struct Sample {
    mid: Mid,
    rid: Option<Rid>,
    packets: u64,
    bytes: u64,
    nacks: u64,
    plis: u64,
    firs: u64,
    loss: Option<f32>,
}

impl From<&MediaIngressStats> for Sample {
    fn from(s: &MediaIngressStats) -> Sample {
        Sample {
            mid: s.mid,
            rid: s.rid,
            packets: s.packets,
            bytes: s.bytes,
            nacks: s.nacks,
            plis: s.plis,
            firs: s.firs,
            loss: s.loss,
        }
    }
}

impl From<&MediaEgressStats> for Sample {
    fn from(s: &MediaEgressStats) -> Sample {
        Sample {
            mid: s.mid,
            rid: s.rid,
            packets: s.packets,
            bytes: s.bytes,
            nacks: s.nacks,
            plis: s.plis,
            firs: s.firs,
            loss: s.loss,
        }
    }
}

/// Take a new report into `t`.
fn update_track_stats(t: &mut TrackStats, s: Sample) {
    // Stats arrive once per second: the byte delta is the bitrate.
    t.bitrate_bps = s.bytes.saturating_sub(t.bytes) * 8;
    t.mid = s.mid.to_string();
    t.rid = s.rid.map(|r| r.to_string());
    t.packets = s.packets;
    t.bytes = s.bytes;
    t.nacks = s.nacks;
    t.plis = s.plis;
    t.firs = s.firs;
    t.loss = s.loss;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(bytes: u64) -> Sample {
        Sample {
            mid: Mid::from("1"),
            rid: Some(Rid::from("h")),
            packets: bytes / 100,
            bytes,
            nacks: 3,
            plis: 2,
            firs: 1,
            loss: Some(0.25),
        }
    }

    #[test]
    fn a_report_sets_the_counters_and_the_bitrate_since_the_last() {
        let mut t = TrackStats::default();
        update_track_stats(&mut t, sample(10_000));
        assert_eq!(t.bitrate_bps, 80_000);
        update_track_stats(&mut t, sample(35_000));
        assert_eq!(t.bitrate_bps, 200_000, "25,000 bytes in one interval");
        assert_eq!(
            (t.mid.as_str(), t.rid.as_deref(), t.packets, t.bytes),
            ("1", Some("h"), 350, 35_000)
        );
        assert_eq!((t.nacks, t.plis, t.firs, t.loss), (3, 2, 1, Some(0.25)));
        // Counters that went back (a new stream) give no bitrate, not a
        // huge one.
        update_track_stats(&mut t, sample(1_000));
        assert_eq!(t.bitrate_bps, 0);
    }
}
