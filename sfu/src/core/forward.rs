//! Forwarding one published RTP packet to the subscribers of its track.
//!
//! Every packet str0m hands the core goes through four steps, each kept
//! in its own piece:
//! 1. *What it is* ([`classify`]): the published track and simulcast layer
//!    its SSRC belongs to and the codec its payload type names, from
//!    caches per publisher that are filled from str0m on first sight; and
//!    whether it starts a keyframe.
//! 2. *Whether a subscriber gets it* ([`LayerSelector`]): per subscriber
//!    and published video track, the layer it gets now and the layer it
//!    should get, switching only on a keyframe of the latter.
//! 3. *Under which payload type* ([`PtMap`]): the subscriber's payload type
//!    for the publisher's codec, as the subscriber negotiated it.
//! 4. *Under which numbers* ([`SeqRewriter`](super::rewrite::SeqRewriter)):
//!    sequence numbers and timestamps kept continuous across layer
//!    switches, the gap at a switch counted in the codec's own clock rate.
//!
//! Nothing here reads the clock: `now` is the time of the input that made
//! str0m emit the packet. Retransmissions are not forwarded here: str0m
//! answers a subscriber's NACKs from its own send buffer (every forwarded
//! video packet is written as nackable).

use std::time::{Duration, Instant};

use str0m::format::{Codec, PayloadParams};
use str0m::media::{Frequency, KeyframeRequestKind, MediaKind, Mid, Pt, Rid};
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite, Ssrc};
use str0m::Rtc;

use super::endpoint::{Endpoint, OutState, SourceKey};
use super::keyframe::{is_keyframe_start, VideoCodec};
use super::Core;
use crate::ids::EndpointId;

impl Core {
    /// Forward one RTP packet from `from` to the subscribers of its track,
    /// and hand it to the room's taps.
    pub(super) fn forward(&mut self, now: Instant, from: EndpointId, pkt: RtpPacket) {
        let Some(ep) = self.endpoints.get_mut(&from) else {
            return;
        };
        let Some(inc) = classify(ep, now, &pkt) else {
            return;
        };
        let spec = inc.params.spec();
        self.taps.packet(
            &ep.room,
            from,
            inc.mid,
            (inc.rid, inc.layer),
            inc.kind,
            spec.codec,
            spec.clock_rate.get(),
            &pkt,
        );
        // Taken for the loop, which needs the other endpoints mutably;
        // given back below.
        let Some(track) = ep.published.get_mut(&inc.mid) else {
            return;
        };
        let subscribers = std::mem::take(&mut track.subscribers);

        let ext = forwarded_extensions(&pkt.header.ext_vals);
        // Layers some subscriber waits for a keyframe of (rarely any).
        let mut want_keyframe: Vec<usize> = Vec::new();
        for sub_id in &subscribers {
            let Some(sub) = self.endpoints.get_mut(sub_id) else {
                continue;
            };
            match forward_to(sub, (from, inc.mid), &inc, &pkt, &ext, now) {
                Delivery::Sent => {
                    self.metrics.forwarded.increment(1);
                    self.dirty.push(*sub_id);
                }
                Delivery::NotSent => {}
                Delivery::AwaitsKeyframe(layer) => {
                    if !want_keyframe.contains(&layer) {
                        want_keyframe.push(layer);
                    }
                }
            }
        }

        if let Some(ep) = self.endpoints.get_mut(&from) {
            if let Some(track) = ep.published.get_mut(&inc.mid) {
                track.subscribers = subscribers;
            }
        }
        for layer in want_keyframe {
            self.request_keyframe(now, from, inc.mid, Some(layer), KeyframeRequestKind::Pli);
        }
    }
}

/// What the forwarder knows of one incoming packet, the same for every
/// subscriber.
struct Incoming {
    /// The publisher's m-line.
    mid: Mid,
    /// Its simulcast layer's rid, if the track has several.
    rid: Option<Rid>,
    /// Its layer's index, lowest 0 (0 without simulcast).
    layer: usize,
    /// The layer subscribers should get now: the highest one the
    /// publisher is sending.
    best: usize,
    /// Audio or video, from the codec.
    kind: MediaKind,
    /// The codec its payload type names at the publisher.
    params: PayloadParams,
    /// Whether it is the first packet of a keyframe.
    keyframe: bool,
}

/// Learn what `pkt` from `ep` is, and note on the published track that
/// its layer is alive. `None`: not media of a track `ep` publishes (an
/// SSRC or payload type str0m does not know, or an m-line the bridge does
/// not take as published).
fn classify(ep: &mut Endpoint, now: Instant, pkt: &RtpPacket) -> Option<Incoming> {
    let (mid, rid) = rx_source(ep, pkt.header.ssrc)?;
    let params = rx_params(ep, pkt.header.payload_type)?;
    let track = ep.published.get_mut(&mid)?;
    let layer = track.layer_index(rid);
    track.codec = Some(params.spec().codec);
    if let Some(seen) = track.layer_seen.get_mut(layer) {
        *seen = Some(now);
    }
    let best = track.best_layer(now);
    let codec = params.spec().codec;
    let kind = if codec.is_audio() {
        MediaKind::Audio
    } else {
        MediaKind::Video
    };
    let video = match codec {
        Codec::Vp8 => Some(VideoCodec::Vp8),
        Codec::H264 => Some(VideoCodec::H264),
        _ => None,
    };
    let keyframe = video.is_some_and(|c| is_keyframe_start(c, &pkt.payload));
    Some(Incoming {
        mid,
        rid,
        layer,
        best,
        kind,
        params,
        keyframe,
    })
}

/// The m-line and rid of an SSRC `ep` sends on: cached, else from str0m.
fn rx_source(ep: &mut Endpoint, ssrc: Ssrc) -> Option<(Mid, Option<Rid>)> {
    if let Some(v) = ep.rx_ssrcs.get(&ssrc) {
        return Some(*v);
    }
    let s = ep
        .rtc
        .direct_api()
        .stream_rx(&ssrc)
        .map(|s| (s.mid(), s.rid()))?;
    ep.rx_ssrcs.insert(ssrc, s);
    Some(s)
}

/// The codec of a payload type `ep` sends: cached, else from str0m.
fn rx_params(ep: &mut Endpoint, pt: Pt) -> Option<PayloadParams> {
    if let Some(p) = ep.rx_params.iter().find(|p| p.pt() == pt) {
        return Some(*p);
    }
    let p = *ep.rtc.codec_config().find(|p| p.pt() == pt)?;
    ep.rx_params.push(p);
    Some(p)
}

/// The header extensions a forwarded packet keeps: those that describe
/// the media itself. The rest (transport-wide sequence numbers, send
/// times, ...) belong to a hop, and str0m writes its own for the next one.
fn forwarded_extensions(ext: &ExtensionValues) -> ExtensionValues {
    ExtensionValues {
        audio_level: ext.audio_level,
        voice_activity: ext.voice_activity,
        video_orientation: ext.video_orientation,
        ..Default::default()
    }
}

/// What became of a packet for one subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// Written into the subscriber's session.
    Sent,
    /// Not for this subscriber: it is not connected, the track is not
    /// open in its session, the packet is of another layer or of a codec
    /// it did not negotiate, or older than the start of its stream.
    NotSent,
    /// Not sent: the subscriber waits for a keyframe of this layer.
    AwaitsKeyframe(usize),
}

/// Forward `pkt` (of the track `source`) to one subscriber.
fn forward_to(
    sub: &mut Endpoint,
    source: SourceKey,
    inc: &Incoming,
    pkt: &RtpPacket,
    ext: &ExtensionValues,
    now: Instant,
) -> Delivery {
    if !sub.connected {
        return Delivery::NotSent;
    }
    let Some(out) = sub.out_tracks.get_mut(&source) else {
        return Delivery::NotSent;
    };
    let OutState::Open(out_mid) = out.state else {
        return Delivery::NotSent;
    };
    let Some(out_ssrc) = out.ssrc else {
        return Delivery::NotSent;
    };

    if inc.kind == MediaKind::Video {
        out.layers.set_target(inc.best);
        match out.layers.on_packet(inc.layer, inc.keyframe) {
            LayerChoice::Forward => {}
            LayerChoice::Switch { from, to } => {
                let gap = out.last_forwarded.map_or(1, |at| {
                    switch_gap(
                        now.saturating_duration_since(at),
                        inc.params.spec().clock_rate,
                    )
                });
                out.rewriter
                    .switch_source(*pkt.seq_no, pkt.header.timestamp, gap);
                tracing::trace!(?source, ?from, to, gap, "subscriber switches layer");
            }
            LayerChoice::Drop => return Delivery::NotSent,
            LayerChoice::AwaitKeyframe { layer } => return Delivery::AwaitsKeyframe(layer),
        }
    }

    let rtc = &sub.rtc;
    let out_pt = out.pt_map.get_or_learn(pkt.header.payload_type, || {
        subscriber_pt(rtc, out_mid, inc.params)
    });
    let Some(out_pt) = out_pt else {
        return Delivery::NotSent;
    };
    let Some((seq, ts)) = out.rewriter.map(*pkt.seq_no, pkt.header.timestamp) else {
        return Delivery::NotSent;
    };
    out.last_forwarded = Some(now);
    let mut api = sub.rtc.direct_api();
    let Some(tx) = api.stream_tx(&out_ssrc) else {
        return Delivery::NotSent;
    };
    tx.write_rtp(
        RtpWrite::new(out_pt, seq.into(), ts, pkt.timestamp, pkt.payload.clone())
            .marker(pkt.header.marker)
            .ext_vals(ext.clone())
            .nackable(inc.kind == MediaKind::Video),
    );
    Delivery::Sent
}

/// The payload type under which the subscriber session `rtc` takes the
/// codec of `params` on its m-line `mid`, if it negotiated that codec
/// there.
fn subscriber_pt(rtc: &Rtc, mid: Mid, params: PayloadParams) -> Option<Pt> {
    let pt = rtc.codec_config().match_params(params)?.pt();
    rtc.media(mid)
        .is_some_and(|m| m.remote_pts().contains(&pt))
        .then_some(pt)
}

/// The gap, in RTP timestamp ticks of `clock_rate`, that an outgoing
/// timeline leaves where a subscriber switches layers, `elapsed` after the
/// last packet forwarded to it: the time that really passed, so the
/// receiver's jitter buffer sees no jump, and never 0, so the new layer's
/// first frame does not share the last one's timestamp. Like RTP
/// timestamps, the gap wraps at 2^32 ticks.
fn switch_gap(elapsed: Duration, clock_rate: Frequency) -> u32 {
    let ticks = elapsed.as_micros() * u128::from(clock_rate.get()) / 1_000_000;
    (ticks as u32).max(1)
}

/// Publisher payload type -> the subscriber's payload type for the same
/// codec, learnt on first use (`None`: the subscriber cannot receive that
/// codec). A publisher sends few payload types, so this is a short list.
#[derive(Debug, Default, Clone)]
pub(crate) struct PtMap(Vec<(Pt, Option<Pt>)>);

impl PtMap {
    /// The subscriber's payload type for `pt`, asking `learn` the first
    /// time `pt` is seen and remembering its answer, `None` included.
    fn get_or_learn(&mut self, pt: Pt, learn: impl FnOnce() -> Option<Pt>) -> Option<Pt> {
        if let Some((_, out)) = self.0.iter().find(|(i, _)| *i == pt) {
            return *out;
        }
        let out = learn();
        self.0.push((pt, out));
        out
    }
}

/// Which simulcast layer of one published video track one subscriber
/// receives.
///
/// Layers are indexed lowest first; a track without simulcast has the one
/// layer 0. The selector holds the layer the subscriber gets now
/// (*current*, none before its first keyframe) and the layer it should get
/// (*target*, set by whoever decides: today the highest layer the
/// publisher is sending, later a per-subscriber bandwidth allocation).
///
/// Invariants:
/// - *current* changes only in [`LayerSelector::on_packet`], only to
///   *target*, and only on a keyframe of *target*: a decoder can start on
///   nothing else, so every switch starts on a decodable frame;
/// - until then the subscriber keeps getting *current*, and every
///   non-keyframe packet of *target* says that a keyframe is awaited;
/// - a packet is forwarded if and only if it is of *current* (after the
///   call), so the subscriber never gets two layers mixed in one stream.
///
/// It is pure: no clock, no session, no I/O; the forwarder acts on what
/// [`LayerSelector::on_packet`] returns.
#[derive(Debug, Default, Clone)]
pub(crate) struct LayerSelector {
    current: Option<usize>,
    target: usize,
}

/// What the forwarder does with one packet for one subscriber, as
/// [`LayerSelector::on_packet`] decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LayerChoice {
    /// Forward it: it is of the current layer.
    Forward,
    /// Forward it, as the first packet (a keyframe) of the layer `to`: the
    /// outgoing numbering must continue across the switch from `from`
    /// (`None`: the subscriber's first packet).
    Switch {
        /// The layer left, if any.
        from: Option<usize>,
        /// The layer now forwarded.
        to: usize,
    },
    /// Do not forward it: it is of another layer.
    Drop,
    /// Do not forward it: it is of the target layer but not a keyframe;
    /// ask the publisher for a keyframe of `layer`.
    AwaitKeyframe {
        /// The target layer.
        layer: usize,
    },
}

impl LayerSelector {
    /// The layer the subscriber gets now (`None` before its first
    /// keyframe).
    pub(crate) fn current(&self) -> Option<usize> {
        self.current
    }

    /// The layer the subscriber should get.
    // Read by the tests today, and by the bandwidth allocation to come.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn target(&self) -> usize {
        self.target
    }

    /// The subscriber should get `layer` from now on: the switch happens
    /// at its next keyframe.
    pub(crate) fn set_target(&mut self, layer: usize) {
        self.target = layer;
    }

    /// A packet of `layer` arrived; `keyframe` if it starts a keyframe.
    pub(crate) fn on_packet(&mut self, layer: usize, keyframe: bool) -> LayerChoice {
        let from = self.current;
        if from != Some(self.target) && layer == self.target {
            if keyframe {
                self.current = Some(layer);
                return LayerChoice::Switch { from, to: layer };
            }
            return LayerChoice::AwaitKeyframe { layer };
        }
        if from == Some(layer) {
            LayerChoice::Forward
        } else {
            LayerChoice::Drop
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscriber_starts_on_a_keyframe_of_its_target() {
        let mut s = LayerSelector::default();
        assert_eq!(s.current(), None);
        assert_eq!(
            s.on_packet(0, false),
            LayerChoice::AwaitKeyframe { layer: 0 }
        );
        assert_eq!(s.current(), None);
        assert_eq!(
            s.on_packet(0, true),
            LayerChoice::Switch { from: None, to: 0 }
        );
        assert_eq!(s.current(), Some(0));
        assert_eq!(s.on_packet(0, false), LayerChoice::Forward);
        assert_eq!(s.on_packet(0, true), LayerChoice::Forward);
    }

    #[test]
    fn other_layers_are_dropped_without_asking_for_keyframes() {
        let mut s = LayerSelector::default();
        s.set_target(2);
        // A keyframe of a layer it does not want starts nothing.
        assert_eq!(s.on_packet(0, true), LayerChoice::Drop);
        assert_eq!(s.on_packet(1, true), LayerChoice::Drop);
        assert_eq!(s.current(), None);
        assert_eq!(
            s.on_packet(2, true),
            LayerChoice::Switch { from: None, to: 2 }
        );
        assert_eq!(s.on_packet(0, false), LayerChoice::Drop);
        assert_eq!(s.on_packet(1, true), LayerChoice::Drop);
        assert_eq!(s.on_packet(2, false), LayerChoice::Forward);
    }

    #[test]
    fn switching_waits_for_the_target_keyframe_and_keeps_the_old_layer_meanwhile() {
        let mut s = LayerSelector::default();
        s.set_target(2);
        s.on_packet(2, true);
        // The high layer stopped: the target goes down.
        s.set_target(0);
        assert_eq!(s.target(), 0);
        assert_eq!(s.current(), Some(2));
        // Still the old layer until the new one's keyframe...
        assert_eq!(s.on_packet(2, false), LayerChoice::Forward);
        assert_eq!(
            s.on_packet(0, false),
            LayerChoice::AwaitKeyframe { layer: 0 }
        );
        assert_eq!(s.on_packet(1, false), LayerChoice::Drop);
        assert_eq!(s.on_packet(2, false), LayerChoice::Forward);
        // ...then only the new one.
        assert_eq!(
            s.on_packet(0, true),
            LayerChoice::Switch {
                from: Some(2),
                to: 0
            }
        );
        assert_eq!(s.on_packet(2, true), LayerChoice::Drop);
        assert_eq!(s.on_packet(0, false), LayerChoice::Forward);
    }

    #[test]
    fn a_target_changed_back_before_its_keyframe_switches_nothing() {
        let mut s = LayerSelector::default();
        s.on_packet(0, true);
        s.set_target(1);
        assert_eq!(
            s.on_packet(1, false),
            LayerChoice::AwaitKeyframe { layer: 1 }
        );
        s.set_target(0);
        assert_eq!(s.on_packet(1, true), LayerChoice::Drop);
        assert_eq!(s.on_packet(0, false), LayerChoice::Forward);
        assert_eq!(s.current(), Some(0));
    }

    #[test]
    fn the_switch_gap_counts_in_the_codecs_clock() {
        let ms = Duration::from_millis;
        assert_eq!(switch_gap(ms(33), Frequency::NINETY_KHZ), 2970);
        assert_eq!(switch_gap(ms(20), Frequency::FORTY_EIGHT_KHZ), 960);
        assert_eq!(switch_gap(ms(1000), Frequency::EIGHT_KHZ), 8000);
        // Never 0, even for packets of the same instant.
        assert_eq!(switch_gap(Duration::ZERO, Frequency::NINETY_KHZ), 1);
        // Wraps as RTP timestamps do: 2^32 ticks at 90 kHz is ~13.3 hours.
        let wrap = Duration::from_micros((1u64 << 32) * 1_000_000 / 90_000 + 1_000_000);
        assert!(switch_gap(wrap, Frequency::NINETY_KHZ) < 100_000);
    }

    #[test]
    fn payload_types_are_learnt_once_including_unknown_ones() {
        let mut m = PtMap::default();
        let mut asked = 0;
        let mut ask = |answer: Option<u8>| {
            asked += 1;
            answer.map(Pt::from)
        };
        assert_eq!(
            m.get_or_learn(Pt::from(96), || ask(Some(100))),
            Some(Pt::from(100))
        );
        assert_eq!(
            m.get_or_learn(Pt::from(96), || ask(Some(7))),
            Some(Pt::from(100))
        );
        assert_eq!(m.get_or_learn(Pt::from(35), || ask(None)), None);
        assert_eq!(m.get_or_learn(Pt::from(35), || ask(Some(9))), None);
        assert_eq!(asked, 2);
    }
}
