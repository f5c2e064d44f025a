//! A simulated network for driving a [`Core`] deterministically.
//!
//! [`SimNet`] holds one core and any number of client peers (str0m `Rtc`s
//! in RTP mode, full ICE, as a browser would be), passes datagrams between
//! them in memory, and advances a virtual clock to the next timeout. No
//! socket is opened and the wall clock is never read, so a whole call runs
//! in milliseconds and the same way every time. The forwarding benchmark
//! and the core's conversation tests use it; `confab-loadtest` drives real
//! sockets instead.
//!
//! Addresses are loopback addresses used as labels only: nothing is sent.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use confab_media::VideoCodec;
use str0m::change::SdpApi;
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid, Pt, Rid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpWrite, Ssrc};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};

use crate::config::EndpointConfig;
use crate::core::{Core, CoreEvent};
use crate::event::{EndpointEvent, OutgoingTrack};
use crate::ids::EndpointId;

/// An RTP packet as a simulated peer received it.
#[derive(Debug, Clone)]
pub struct SimReceived {
    /// The SSRC it arrived on.
    pub ssrc: Ssrc,
    /// Its payload type.
    pub pt: u8,
    /// Its (unwrapped) sequence number.
    pub seq: u64,
    /// The counter the publisher wrote in the payload, if found.
    pub counter: Option<u32>,
}

/// One simulated participant.
pub struct SimPeer {
    /// Its WebRTC session.
    pub rtc: Rtc,
    /// Its (label) address.
    pub addr: SocketAddr,
    /// Its endpoint at the bridge, once created.
    pub endpoint: Option<EndpointId>,
    /// Packets it received.
    pub received: Vec<SimReceived>,
    /// Keyframe requests that reached it, as publisher.
    pub keyframe_requests: u64,
    /// Whether it stopped talking (for consent tests).
    pub silent: bool,
    /// The bridge's ICE ufrag and password for this peer's session (from
    /// its answer), to make connectivity checks by hand.
    pub bridge_ice: (String, String),
    /// Mid of the video it publishes, if any.
    pub video_mid: Option<Mid>,
    /// Mid of the audio it publishes, if any.
    pub audio_mid: Option<Mid>,
    connected: bool,
    video_counter: u32,
    audio_counter: u32,
    seq: u64,
    audio_seq: u64,
}

/// One core and its peers on a virtual clock.
pub struct SimNet {
    /// The bridge under test.
    pub core: Core,
    /// The virtual time.
    pub now: Instant,
    /// The participants.
    pub peers: Vec<SimPeer>,
    /// Events the core emitted that the net did not consume itself.
    pub events: VecDeque<CoreEvent>,
    /// Offers the peers answered: endpoint, tracks added, mids removed.
    pub renegotiations: Vec<(EndpointId, Vec<OutgoingTrack>, Vec<String>)>,
    /// Datagrams delivered, bridge -> peers.
    pub delivered_to_peers: u64,
    next_ip: u8,
    next_endpoint: u64,
}

/// Marker the simulated publishers put in front of a payload's counter.
pub const MAGIC: &[u8; 4] = b"CNFB";

const BRIDGE: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 10000);

impl SimNet {
    /// A net with a fresh core using `config`.
    pub fn new(config: EndpointConfig) -> SimNet {
        let now = Instant::now();
        let cert = str0m::crypto::from_feature_flags()
            .dtls_provider
            .generate_certificate()
            // A simulation without a certificate cannot run at all; this is
            // not input from a peer.
            .expect("the crypto provider generates DTLS certificates");
        SimNet {
            core: Core::new(config, BRIDGE, cert),
            now,
            peers: Vec::new(),
            events: VecDeque::new(),
            renegotiations: Vec::new(),
            delivered_to_peers: 0,
            next_ip: 2,
            next_endpoint: 1,
        }
    }

    /// Add a peer that publishes audio and/or video and joins `room`.
    /// Returns its index in [`SimNet::peers`].
    pub fn join(&mut self, room: &str, audio: bool, video: Option<VideoCodec>) -> usize {
        let mut builder = Rtc::builder()
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_opus(true, false);
        builder = match video {
            Some(VideoCodec::H264) => builder.enable_h264(true),
            _ => builder.enable_vp8(true),
        };
        self.add_peer(room, builder, |change| {
            let audio_mid = audio
                .then(|| change.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None));
            let video_mid = video
                .map(|_| change.add_media(MediaKind::Video, Direction::SendOnly, None, None, None));
            if !audio && video.is_none() {
                change.add_media(MediaKind::Audio, Direction::Inactive, None, None, None);
            }
            (audio_mid, video_mid)
        })
    }

    /// Add a peer that publishes VP8 simulcast with the given rids (lowest
    /// first) and no audio. Returns its index.
    pub fn join_simulcast(&mut self, room: &str, rids: &[&str]) -> usize {
        let builder = Rtc::builder()
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_vp8(true);
        let mut simulcast = str0m::media::Simulcast::new();
        for r in rids {
            simulcast.add_send_layer(str0m::media::SimulcastLayer::new(r));
        }
        self.add_peer(room, builder, |change| {
            let mid = change.add_media(
                MediaKind::Video,
                Direction::SendOnly,
                None,
                None,
                Some(simulcast),
            );
            (None, Some(mid))
        })
    }

    /// Build a peer from `builder`, let `media` declare what it sends (and
    /// return the audio and video mids), and create its endpoint.
    fn add_peer(
        &mut self,
        room: &str,
        builder: RtcConfig,
        media: impl FnOnce(&mut SdpApi) -> (Option<Mid>, Option<Mid>),
    ) -> usize {
        let ip = Ipv4Addr::new(127, 0, 1, self.next_ip);
        self.next_ip = self.next_ip.wrapping_add(1);
        let addr = SocketAddr::new(IpAddr::V4(ip), 5000);
        let mut rtc = builder.build(self.now);
        if let Ok(c) = Candidate::host(addr, "udp") {
            rtc.add_local_candidate(c);
        }
        let mut change = rtc.sdp_api();
        let (audio_mid, video_mid) = media(&mut change);
        let Some((offer, pending)) = change.apply() else {
            panic!("a new session always has changes to offer");
        };
        let id = EndpointId(self.next_endpoint);
        self.next_endpoint += 1;
        let answer = self
            .core
            .create_endpoint(
                self.now,
                id,
                room.into(),
                format!("peer{}", self.peers.len()),
                offer,
            )
            .expect("the bridge accepts the peer's offer");
        let answer_sdp = answer.to_sdp_string();
        let attr = |name: &str| {
            answer_sdp
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .unwrap_or_default()
                .trim()
                .to_owned()
        };
        let bridge_ice = (attr("a=ice-ufrag:"), attr("a=ice-pwd:"));
        rtc.sdp_api()
            .accept_answer(pending, answer)
            .expect("the peer accepts the bridge's answer");
        self.peers.push(SimPeer {
            rtc,
            addr,
            endpoint: Some(id),
            received: Vec::new(),
            keyframe_requests: 0,
            silent: false,
            bridge_ice,
            video_mid,
            audio_mid,
            connected: false,
            video_counter: 0,
            audio_counter: 0,
            seq: 1,
            audio_seq: 1,
        });
        self.peers.len() - 1
    }

    /// Peer `i` changes what it publishes and re-offers: `video` starts
    /// (or restarts) its video track, `None` stops it.
    pub fn republish_video(&mut self, i: usize, video: bool) {
        let peer = &mut self.peers[i];
        let mut change = peer.rtc.sdp_api();
        match (video, peer.video_mid) {
            (true, Some(mid)) => change.set_direction(mid, Direction::SendOnly),
            (true, None) => {
                let mid = change.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
                peer.video_mid = Some(mid);
            }
            (false, Some(mid)) => change.set_direction(mid, Direction::Inactive),
            (false, None) => return,
        }
        let Some((offer, pending)) = change.apply() else {
            return;
        };
        let Some(id) = peer.endpoint else { return };
        let answer = self
            .core
            .accept_offer(self.now, id, offer)
            .expect("the bridge accepts the peer's re-offer");
        self.peers[i]
            .rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .expect("the peer accepts the bridge's answer");
        self.exchange();
    }

    /// Peer `i` leaves: its endpoint is closed at the bridge.
    pub fn leave(&mut self, i: usize) {
        if let Some(id) = self.peers[i].endpoint.take() {
            let _ = self.core.close_endpoint(self.now, id);
        }
        self.peers[i].silent = true;
        self.exchange();
    }

    /// Write one VP8 frame of simulcast layer `rid` from peer `i`. The
    /// counter in the payload is `layer_tag << 24 | frame`, so a receiver
    /// can tell which layer it got; each layer has its own sequence space.
    pub fn send_simulcast_frame(
        &mut self,
        i: usize,
        rid: &str,
        layer_tag: u8,
        frame: u32,
        keyframe: bool,
    ) {
        let now = self.now;
        let peer = &mut self.peers[i];
        let Some(mid) = peer.video_mid else { return };
        let counter = (u32::from(layer_tag) << 24) | frame;
        let payload = tagged_payload(
            &[0x10, if keyframe { 0x00 } else { 0x01 }, 0x00, 0x00],
            counter,
            300,
        );
        // Per-layer sequence numbers: 1 + frame, so every layer counts alike.
        peer.write(mid, Some(rid.into()), Codec::Vp8, |pt| {
            RtpWrite::new(
                pt,
                (1 + u64::from(frame)).into(),
                frame.wrapping_mul(3000),
                now,
                payload,
            )
            .marker(true)
            .nackable(true)
        });
    }

    /// Whether peer `i` completed ICE and DTLS.
    pub fn connected(&self, i: usize) -> bool {
        self.peers[i].connected
    }

    /// Write one video frame (one packet) from peer `i`, a keyframe if
    /// asked; its payload carries the peer's frame counter.
    pub fn send_video(&mut self, i: usize, keyframe: bool, codec: VideoCodec) {
        let now = self.now;
        let peer = &mut self.peers[i];
        let Some(mid) = peer.video_mid else { return };
        let counter = peer.video_counter;
        peer.video_counter += 1;
        let (prefix, want) = match codec {
            VideoCodec::Vp8 => (
                vec![0x10, if keyframe { 0x00 } else { 0x01 }, 0x00, 0x00],
                Codec::Vp8,
            ),
            VideoCodec::H264 => (vec![if keyframe { 0x65 } else { 0x41 }, 0x88], Codec::H264),
        };
        let payload = tagged_payload(&prefix, counter, 1000);
        let seq = peer.seq;
        peer.seq += 1;
        peer.write(mid, None, want, |pt| {
            RtpWrite::new(pt, seq.into(), counter.wrapping_mul(3000), now, payload)
                .marker(true)
                .nackable(true)
        });
    }

    /// Write one 20 ms Opus packet from peer `i`.
    pub fn send_audio(&mut self, i: usize) {
        let now = self.now;
        let peer = &mut self.peers[i];
        let Some(mid) = peer.audio_mid else { return };
        let counter = peer.audio_counter;
        peer.audio_counter += 1;
        let payload = tagged_payload(&[0xfc], counter, 80);
        let seq = peer.audio_seq;
        peer.audio_seq += 1;
        peer.write(mid, None, Codec::Opus, |pt| {
            RtpWrite::new(pt, seq.into(), counter.wrapping_mul(960), now, payload)
        });
    }

    /// Exchange everything that is ready, without advancing time.
    /// Returns the time spent inside the core (for the benchmark).
    pub fn exchange(&mut self) -> Duration {
        let mut in_core = Duration::ZERO;
        let mut to_bridge: Vec<(SocketAddr, Vec<u8>)> = Vec::new();
        for i in 0..self.peers.len() {
            self.drain_peer(i, &mut to_bridge);
        }
        for _ in 0..10_000 {
            let mut progress = false;
            // Peers -> bridge.
            for (source, bytes) in to_bridge.drain(..) {
                progress = true;
                let t = Instant::now();
                self.core
                    .handle_datagram(self.now, self.now, source, &bytes);
                in_core += t.elapsed();
            }
            // Bridge -> peers. str0m wants each input drained before the
            // next ("mutate, then drain"), so every delivery is followed by
            // polling that peer.
            let t = Instant::now();
            let mut transmits = Vec::new();
            while let Some(tr) = self.core.poll_transmit() {
                transmits.push(tr);
            }
            in_core += t.elapsed();
            for tr in transmits {
                progress = true;
                self.delivered_to_peers += 1;
                let Some(i) = self.peers.iter().position(|p| p.addr == tr.destination) else {
                    continue;
                };
                if self.peers[i].silent {
                    continue;
                }
                let Ok(contents) = (&tr.contents[..]).try_into() else {
                    continue;
                };
                let input = Input::Receive(
                    self.now,
                    Receive {
                        proto: Protocol::Udp,
                        source: BRIDGE,
                        destination: tr.destination,
                        contents,
                    },
                );
                let _ = self.peers[i].rtc.handle_input(input);
                self.drain_peer(i, &mut to_bridge);
            }
            // Events.
            while let Some(ev) = self.core.poll_event() {
                progress = true;
                self.on_event(ev);
            }
            for i in 0..self.peers.len() {
                self.drain_peer(i, &mut to_bridge);
            }
            if !progress && to_bridge.is_empty() {
                break;
            }
        }
        in_core
    }

    /// Poll peer `i` until it only has a timeout left; its datagrams go to
    /// `out` unless it has gone silent.
    fn drain_peer(&mut self, i: usize, out: &mut Vec<(SocketAddr, Vec<u8>)>) {
        while let Some(d) = self.poll_peer(i) {
            if !self.peers[i].silent {
                out.push(d);
            }
        }
    }

    /// Advance the clock to the next timeout of anyone (at most `max`), run
    /// the timers, and exchange. Returns the time spent in the core.
    pub fn step(&mut self, max: Duration) -> Duration {
        let mut next = self.now + max;
        if let Some(t) = self.core.poll_timeout() {
            next = next.min(t);
        }
        for p in &mut self.peers {
            // Peers report their timeout through poll_output, which
            // exchange() drained; a timeout input makes them due again.
            let _ = p.rtc.handle_input(Input::Timeout(self.now));
        }
        self.now = next.max(self.now + Duration::from_micros(100));
        let t = Instant::now();
        self.core.handle_timeout(self.now);
        let mut in_core = t.elapsed();
        for p in &mut self.peers {
            let _ = p.rtc.handle_input(Input::Timeout(self.now));
        }
        in_core += self.exchange();
        in_core
    }

    /// Run for `duration` of virtual time in steps of at most 5 ms.
    pub fn run_for(&mut self, duration: Duration) {
        let end = self.now + duration;
        while self.now < end {
            self.step(Duration::from_millis(5));
        }
    }

    /// Run until every peer is connected (or `limit` virtual time passed).
    pub fn connect_all(&mut self, limit: Duration) -> bool {
        let end = self.now + limit;
        self.exchange();
        while self.now < end {
            if self.peers.iter().all(|p| p.connected) {
                return true;
            }
            self.step(Duration::from_millis(10));
        }
        self.peers.iter().all(|p| p.connected)
    }

    fn poll_peer(&mut self, i: usize) -> Option<(SocketAddr, Vec<u8>)> {
        // A browser's loop: a timeout that is already due (str0m asks for
        // one after media is written) is run at once. Bounded, in case a
        // session keeps reporting a due timeout without doing anything.
        let mut due_rounds = 0;
        loop {
            let now = self.now;
            let peer = &mut self.peers[i];
            match peer.rtc.poll_output() {
                Ok(Output::Transmit(t)) => return Some((t.source, t.contents.into())),
                Ok(Output::Timeout(t)) if t <= now && due_rounds < 8 => {
                    due_rounds += 1;
                    if peer.rtc.handle_input(Input::Timeout(now)).is_err() {
                        return None;
                    }
                }
                Ok(Output::Timeout(_)) | Err(_) => return None,
                Ok(Output::Event(e)) => match e {
                    Event::Connected => peer.connected = true,
                    Event::RtpPacket(p) => {
                        let counter = find_counter(&p.payload);
                        peer.received.push(SimReceived {
                            ssrc: p.header.ssrc,
                            pt: *p.header.payload_type,
                            seq: *p.seq_no,
                            counter,
                        });
                    }
                    Event::KeyframeRequest(_) => peer.keyframe_requests += 1,
                    _ => {}
                },
            }
        }
    }

    fn on_event(&mut self, ev: CoreEvent) {
        match ev {
            CoreEvent::Endpoint(
                id,
                EndpointEvent::Offer {
                    offer,
                    added,
                    removed,
                },
            ) => {
                let Some(i) = self.peers.iter().position(|p| p.endpoint == Some(id)) else {
                    return;
                };
                if let Ok(answer) = self.peers[i].rtc.sdp_api().accept_offer(offer) {
                    let _ = self.core.accept_answer(self.now, id, answer);
                }
                self.renegotiations.push((id, added, removed));
            }
            other => self.events.push_back(other),
        }
    }
}

impl SimPeer {
    /// Write one packet on `mid` (layer `rid`) with this peer's payload
    /// type for `codec`; `make` builds it from that payload type.
    fn write(
        &mut self,
        mid: Mid,
        rid: Option<Rid>,
        codec: Codec,
        make: impl FnOnce(Pt) -> RtpWrite,
    ) {
        let Some(pt) = self
            .rtc
            .codec_config()
            .find(|p| p.spec().codec == codec)
            .map(|p| p.pt())
        else {
            return;
        };
        let mut api = self.rtc.direct_api();
        if let Some(tx) = api.stream_tx_by_mid(mid, rid) {
            tx.write_rtp(make(pt));
        }
    }
}

/// `prefix` (the codec's payload header), then [`MAGIC`] and `counter`,
/// padded with zeros to `size` bytes.
fn tagged_payload(prefix: &[u8], counter: u32, size: usize) -> Vec<u8> {
    let mut payload = prefix.to_vec();
    payload.extend_from_slice(MAGIC);
    payload.extend_from_slice(&counter.to_be_bytes());
    payload.resize(size, 0);
    payload
}

/// Find the publisher's counter in a payload.
pub fn find_counter(payload: &[u8]) -> Option<u32> {
    let at = payload.windows(4).position(|w| w == MAGIC)?;
    let b = payload.get(at + 4..at + 8)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}
