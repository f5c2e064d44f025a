//! [`TestPeer`]: an independent WebRTC endpoint built on webrtc-rs 0.21.
//!
//! A `TestPeer` plays the part of a browser in interop tests. It
//!
//! * gathers exactly one host candidate, on `127.0.0.1` (no STUN, no mDNS), and hands out
//!   complete (non-trickle) SDP;
//! * registers only the codecs a test asks for — Opus 48000/2 (pt 111) plus either VP8
//!   (pt 96, RTX 97) or H.264 packetization-mode=1 profile-level-id=42e01f (pt 102, RTX
//!   103) — with `nack`, `nack pli`, `ccm fir` and the mid / rid / audio-level header
//!   extensions, and the default interceptors (NACK generator + responder, RTCP reports,
//!   TWCC receiver);
//! * optionally publishes an audio and a video track (stream id = the peer's name) and,
//!   once [`TestPeer::start_sending`] is called, sends synthetic frames from
//!   [`frames`](crate::frames) — Opus every 20 ms, video every 33 ms, a keyframe every 3 s
//!   and whenever a PLI/FIR for its video SSRC arrives; or, with
//!   [`PeerOptions::encoded_video`], real VP8 / H.264 that a decoder can decode (the load
//!   tester's looped clip, several RTP packets per frame, see [`EncodedVideo`]);
//! * records everything it receives per remote track ([`ReceivedTrack`]) and, through a
//!   wire-side interceptor, per SSRC as it came off the wire ([`WireStats`]) — including
//!   RTX packets and RTCP feedback;
//! * can go silent abruptly ([`TestPeer::go_silent`]): its UDP socket then swallows every
//!   datagram in both directions, so the remote hears nothing more — no RTP, no RTCP, no
//!   STUN consent responses, no DTLS close_notify.
//!
//! # Findings about webrtc-rs 0.21 that shape this harness
//!
//! * **RTX is unwrapped, if declared.** rtc 0.21's endpoint handler de-encapsulates RFC 4588
//!   packets (OSN → sequence number, `apt` → payload type, primary SSRC) before they reach
//!   [`TrackRemote::poll`], *but only* when the remote SDP pairs the RTX SSRC with its
//!   primary via `a=ssrc-group:FID`. RTX on an undeclared SSRC is dropped before the
//!   application (it still passes the interceptor chain). The harness therefore taps the
//!   chain at the wire side and decodes RTX itself ([`InboundSsrc::rtx_counters`]), so
//!   retransmissions are visible either way.
//! * **Inbound RTCP does not reach the application by default** (the chain's terminus drops
//!   it unless an interceptor marks it). Keyframe requests are therefore counted in the
//!   same wire-side interceptor, which matches PLI/FIR against this peer's video SSRC. That
//!   also avoids the core's routing of compound RTCP by its *first* packet only.
//! * **`PeerConnection::close` says goodbye**: it sends an SCTP ABORT (if any) and a DTLS
//!   `close_notify` before stopping. Dropping a connection without closing it does not stop
//!   its driver either. Going silent is therefore implemented below the stack, with a
//!   [`Runtime`] wrapper whose UDP socket can be muted.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use confab_loadtest::media::{now_micros, tag_video, ClipSpec, EncodedFrame, Tag, VideoClip};
use rtc::interceptor::{Interceptor, Packet as ChainPacket, Slot, StreamInfo, TaggedPacket};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{
    MediaEngine, MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_RTX, MIME_TYPE_VP8,
};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::rtp::codec::h264::H264Payloader;
use rtc::rtp::codec::vp8::Vp8Payloader;
use rtc::rtp::packetizer::Payloader;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RTCRtpHeaderExtensionCapability, RTCRtpRtxParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    crypto, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCBundlePolicy,
    RTCConfigurationBuilder, RTCIceGatheringState, RTCSessionDescription, Registry,
    SettingEngineBuilder,
};
use webrtc::rtp_transceiver::RtpTransceiver;
use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle as RtJoinHandle,
    RecvMeta, Runtime, TokioRuntime, Transmit,
};

pub use confab_media::VideoCodec;
pub use rtc::peer_connection::transport::RTCDtlsTransportState;
pub use webrtc::peer_connection::RTCPeerConnectionState;

use crate::frames::{self, Codec};

/// Payload type of Opus.
pub const PT_OPUS: u8 = 111;
/// Payload type of VP8.
pub const PT_VP8: u8 = 96;
/// Payload type of VP8's RTX.
pub const PT_VP8_RTX: u8 = 97;
/// Payload type of H.264.
pub const PT_H264: u8 = 102;
/// Payload type of H.264's RTX.
pub const PT_H264_RTX: u8 = 103;
/// fmtp line of the H.264 codec the peers register.
pub const H264_FMTP: &str =
    "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f";

/// Audio packet interval.
pub const AUDIO_INTERVAL: Duration = Duration::from_millis(20);
/// Video frame interval.
pub const VIDEO_INTERVAL: Duration = Duration::from_millis(33);
/// Periodic keyframe interval.
pub const KEYFRAME_INTERVAL: Duration = Duration::from_secs(3);

/// How long SDP creation waits for ICE gathering (host candidates only: near-instant).
const GATHER_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest RTP payload of [encoded video](EncodedVideo), in bytes.
pub const ENCODED_MTU: usize = 1200;

/// Where the wire tap sits in the interceptor chain: closest to the wire, below the NACK
/// responder (4_000), so it sees retransmissions leaving and every packet arriving.
const TAP_SLOT: usize = 500;

/// What a peer registers for its one video codec: VP8 at pt 96 (RTX pt 97), or H.264
/// packetization-mode=1 profile-level-id=42e01f at pt 102 (RTX pt 103).
pub trait PeerCodec {
    /// MIME type as registered in the media engine.
    fn mime_type(self) -> &'static str;

    /// `(primary, rtx)` payload types this harness registers.
    fn payload_types(self) -> (u8, u8);
}

impl PeerCodec for VideoCodec {
    fn mime_type(self) -> &'static str {
        match self {
            VideoCodec::Vp8 => MIME_TYPE_VP8,
            VideoCodec::H264 => MIME_TYPE_H264,
        }
    }

    fn payload_types(self) -> (u8, u8) {
        match self {
            VideoCodec::Vp8 => (PT_VP8, PT_VP8_RTX),
            VideoCodec::H264 => (PT_H264, PT_H264_RTX),
        }
    }
}

/// The fmtp line a peer registers for `codec`.
fn fmtp(codec: VideoCodec) -> &'static str {
    match codec {
        VideoCodec::Vp8 => "",
        VideoCodec::H264 => H264_FMTP,
    }
}

/// Real video a publisher sends instead of synthetic tags: the load tester's clip
/// ([`VideoClip`], [`CLIP_SECONDS`](confab_loadtest::media::CLIP_SECONDS) of a moving
/// picture at 30 fps, first frame a keyframe), encoded once per process and size, looped,
/// and restarted from its keyframe on a PLI/FIR.
///
/// Each frame carries the load tester's tag ([`tag_video`]) with the frame counter and
/// the send time, and is split into RTP packets of at most [`ENCODED_MTU`] bytes by
/// webrtc-rs's payloaders: one RTP timestamp per frame, the marker bit on its last packet.
///
/// What receivers see: a [`ReceivedTrack`] parses tags per packet, and only one packet of
/// a frame carries the tag (VP8: the last; H.264: the SEI packet before the first slice),
/// so its `counters` hold one entry per frame while the frame's other packets count as
/// `unparsed`; `keyframes` counts the packets that start a keyframe. A recorder or any
/// decoder gets pictures that decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EncodedVideo {
    /// Width in pixels (a multiple of 8, at least 64).
    pub width: u32,
    /// Height in pixels (a multiple of 8, at least 64).
    pub height: u32,
    /// Target bitrate, kbit/s.
    pub kbps: u32,
}

impl EncodedVideo {
    /// `width` x `height` at a bitrate for that size (about 0.13 bit per pixel and frame:
    /// 300 kbit/s at 320x240, 1200 kbit/s at 640x480), where a keyframe spans several
    /// packets.
    pub fn new(width: u32, height: u32) -> Self {
        EncodedVideo {
            width,
            height,
            kbps: (width * height / 256).max(100),
        }
    }
}

/// ICE timers for a peer (see `SettingEngineBuilder::with_ice_timeouts`). Shorter timers
/// make a peer notice a silent remote faster.
#[derive(Debug, Clone, Copy)]
pub struct IceTimeouts {
    /// No traffic for this long → ICE `disconnected` (webrtc-rs default 5 s).
    pub disconnected: Duration,
    /// Further silence for this long → ICE `failed` (default 25 s).
    pub failed: Duration,
    /// Keepalive (binding request) interval when idle (default 2 s).
    pub keepalive: Duration,
}

/// How to build a [`TestPeer`].
#[derive(Debug, Clone)]
pub struct PeerOptions {
    /// The single video codec this peer registers.
    pub video: VideoCodec,
    /// Publish an Opus track.
    pub send_audio: bool,
    /// Publish a video track (with an RTX SSRC).
    pub send_video: bool,
    /// Publish with `sendrecv` transceivers instead of `sendonly`.
    pub sendrecv: bool,
    /// Custom ICE timers, or the webrtc-rs defaults.
    pub ice_timeouts: Option<IceTimeouts>,
    /// Send real encoded video (see [`EncodedVideo`]: receivers count its untagged packets
    /// as `unparsed`) instead of synthetic tag frames (`None`, one packet per frame).
    pub encoded_video: Option<EncodedVideo>,
}

impl Default for PeerOptions {
    fn default() -> Self {
        PeerOptions {
            video: VideoCodec::Vp8,
            send_audio: true,
            send_video: true,
            sendrecv: false,
            ice_timeouts: None,
            encoded_video: None,
        }
    }
}

impl PeerOptions {
    /// Publishes audio and video with the given codec.
    pub fn publisher(video: VideoCodec) -> Self {
        PeerOptions {
            video,
            ..Default::default()
        }
    }

    /// Publishes audio and real `video`, encoded at `width` x `height` (see
    /// [`EncodedVideo::new`]).
    pub fn encoded_publisher(video: VideoCodec, width: u32, height: u32) -> Self {
        PeerOptions {
            video,
            encoded_video: Some(EncodedVideo::new(width, height)),
            ..Default::default()
        }
    }

    /// Publishes nothing; only receives (audio + `video`).
    pub fn receiver(video: VideoCodec) -> Self {
        PeerOptions {
            video,
            send_audio: false,
            send_video: false,
            ..Default::default()
        }
    }
}

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MediaKind {
    Audio,
    Video,
}

impl MediaKind {
    fn from_rtc(kind: RtpCodecKind) -> Option<Self> {
        match kind {
            RtpCodecKind::Audio => Some(MediaKind::Audio),
            RtpCodecKind::Video => Some(MediaKind::Video),
            _ => None,
        }
    }
}

/// What a peer received on one remote track (as delivered by webrtc-rs to the application,
/// i.e. after SRTP, interceptors and RTX de-encapsulation).
#[derive(Debug, Clone)]
pub struct ReceivedTrack {
    pub kind: MediaKind,
    /// The SSRC the track opened with.
    pub ssrc: u32,
    /// Every SSRC seen on the track (normally just `ssrc`).
    pub ssrcs: BTreeSet<u32>,
    /// msid stream id, as announced by the remote SDP.
    pub stream_id: String,
    /// msid track id, as announced by the remote SDP.
    pub track_id: String,
    /// Payload types of the packets delivered on this track.
    pub payload_types: BTreeSet<u8>,
    /// Frame counters in arrival order (retransmissions included where webrtc-rs unwrapped
    /// them, so a counter can appear out of order). From [encoded video](EncodedVideo),
    /// one per frame: only one packet of a frame carries its tag.
    pub counters: Vec<u32>,
    /// How many delivered packets were keyframes (for encoded video: packets that start
    /// a keyframe).
    pub keyframes: u32,
    /// Packets delivered.
    pub packets: u64,
    /// Packets whose payload carried no tag (from encoded video: all but one per frame).
    pub unparsed: u64,
    /// When the last packet was delivered.
    pub last_arrival: Option<Instant>,
    /// The track ended (remote removed it, or the connection closed).
    pub ended: bool,
    /// The RTX SSRC the remote SDP pairs with `ssrc` (`a=ssrc-group:FID`), if any.
    pub rtx_ssrc: Option<u32>,
    /// RTX packets that arrived on `rtx_ssrc` (wire level, see [`WireStats`]).
    pub rtx_packets: u64,
}

impl ReceivedTrack {
    /// Distinct counters received.
    pub fn distinct(&self) -> BTreeSet<u32> {
        self.counters.iter().copied().collect()
    }

    /// Counters missing between the smallest and the largest one received.
    pub fn missing(&self) -> Vec<u32> {
        let set = self.distinct();
        match (set.first(), set.last()) {
            (Some(&lo), Some(&hi)) => (lo..=hi).filter(|c| !set.contains(c)).collect(),
            _ => Vec::new(),
        }
    }

    /// Whether the counters arrived strictly increasing (no reordering, no duplicates).
    pub fn strictly_increasing(&self) -> bool {
        self.counters.windows(2).all(|w| w[0] < w[1])
    }

    /// Counters that arrived after a larger one (a repair of a loss, or a
    /// reordering).
    pub fn late_arrivals(&self) -> usize {
        let mut max = None;
        let mut late = 0;
        for &c in &self.counters {
            if max.is_some_and(|m| c < m) {
                late += 1;
            }
            max = max.max(Some(c));
        }
        late
    }

    /// Whether some counter arrived more than once.
    pub fn has_duplicates(&self) -> bool {
        self.distinct().len() != self.counters.len()
    }

    /// The largest counter received.
    pub fn max_counter(&self) -> Option<u32> {
        self.counters.iter().copied().max()
    }
}

/// Per-SSRC view of inbound RTP as it came off the wire (after SRTP, before any
/// interceptor, before RTX de-encapsulation).
#[derive(Debug, Clone, Default)]
pub struct InboundSsrc {
    pub payload_types: BTreeSet<u8>,
    pub packets: u64,
    /// Packets whose payload type is a negotiated RTX payload type.
    pub rtx_packets: u64,
    /// RFC 4588 original sequence numbers of those RTX packets.
    pub rtx_osns: Vec<u16>,
    /// Frame counters decoded from those RTX packets (OSN stripped).
    pub rtx_counters: Vec<u32>,
}

/// What the wire-side interceptor saw. RTCP counts are per RTCP packet (not per compound).
#[derive(Debug, Clone, Default)]
pub struct WireStats {
    /// Inbound RTP by SSRC.
    pub inbound: BTreeMap<u32, InboundSsrc>,
    /// Outbound RTP on the primary audio/video SSRCs.
    pub rtp_sent: u64,
    /// Outbound RTX packets (the NACK responder's retransmissions).
    pub rtx_sent: u64,
    /// Outbound media packets dropped by [`TestPeer::set_send_loss`].
    pub send_loss_dropped: u64,
    pub nacks_sent: u64,
    pub nacks_received: u64,
    pub plis_sent: u64,
    pub plis_received: u64,
    pub firs_sent: u64,
    pub firs_received: u64,
}

/// One `m=` section of an SDP, as far as the tests care.
#[derive(Debug, Clone, Default)]
pub struct SdpMedia {
    /// "audio", "video", "application".
    pub kind: String,
    /// Port from the m-line (0 = rejected/removed).
    pub port: u16,
    pub mid: Option<String>,
    /// "sendrecv" / "sendonly" / "recvonly" / "inactive".
    pub direction: Option<String>,
    /// Payload type → lower-case encoding name ("opus", "vp8", "h264", "rtx", …).
    pub rtpmap: BTreeMap<u8, String>,
    /// `a=ssrc-group:FID primary rtx` pairs.
    pub fid: Vec<(u32, u32)>,
    /// SSRCs from `a=ssrc` lines.
    pub ssrcs: BTreeSet<u32>,
    /// `a=msid` value.
    pub msid: Option<String>,
}

/// Parses the `m=` sections of an SDP.
pub fn parse_sdp_media(sdp: &str) -> Vec<SdpMedia> {
    let mut out: Vec<SdpMedia> = Vec::new();
    for line in sdp.lines() {
        let line = line.trim_end();
        if let Some(rest) = line.strip_prefix("m=") {
            let mut it = rest.split(' ');
            out.push(SdpMedia {
                kind: it.next().unwrap_or_default().to_owned(),
                port: it.next().and_then(|p| p.parse().ok()).unwrap_or(0),
                ..Default::default()
            });
            continue;
        }
        let Some(m) = out.last_mut() else { continue };
        let Some(attr) = line.strip_prefix("a=") else {
            continue;
        };
        if let Some(v) = attr.strip_prefix("mid:") {
            m.mid = Some(v.to_owned());
        } else if matches!(attr, "sendrecv" | "sendonly" | "recvonly" | "inactive") {
            m.direction = Some(attr.to_owned());
        } else if let Some(v) = attr.strip_prefix("rtpmap:") {
            let mut it = v.splitn(2, ' ');
            if let (Some(Ok(pt)), Some(enc)) = (it.next().map(str::parse::<u8>), it.next()) {
                let name = enc
                    .split('/')
                    .next()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                m.rtpmap.insert(pt, name);
            }
        } else if let Some(v) = attr.strip_prefix("ssrc-group:FID ") {
            let ids: Vec<u32> = v.split(' ').filter_map(|s| s.parse().ok()).collect();
            if ids.len() >= 2 {
                m.fid.push((ids[0], ids[1]));
            }
        } else if let Some(v) = attr.strip_prefix("ssrc:") {
            if let Some(Ok(ssrc)) = v.split(' ').next().map(str::parse::<u32>) {
                m.ssrcs.insert(ssrc);
            }
        } else if let Some(v) = attr.strip_prefix("msid:") {
            m.msid = Some(v.to_owned());
        }
    }
    out
}

/// Payload types present, with the same encoding name, on both sides of a negotiation
/// (sections matched by mid, else by index; rejected sections ignored), keyed by lower-case
/// encoding name.
pub fn negotiated_payload_types(local: &str, remote: &str) -> BTreeMap<String, BTreeSet<u8>> {
    let local = parse_sdp_media(local);
    let remote = parse_sdp_media(remote);
    let mut out: BTreeMap<String, BTreeSet<u8>> = BTreeMap::new();
    for (i, l) in local.iter().enumerate() {
        let r = match &l.mid {
            Some(mid) => remote.iter().find(|r| r.mid.as_ref() == Some(mid)),
            None => remote.get(i),
        };
        let Some(r) = r else { continue };
        if l.port == 0 || r.port == 0 {
            continue;
        }
        for (pt, name) in &l.rtpmap {
            if r.rtpmap.get(pt) == Some(name) {
                out.entry(name.clone()).or_default().insert(*pt);
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Shared state between the peer, its event handler, its interceptor and its tasks
// ---------------------------------------------------------------------------------------

struct RecvEntry {
    info: ReceivedTrack,
    track: Arc<dyn TrackRemote>,
}

struct Shared {
    name: String,
    video_codec: VideoCodec,
    /// This peer's own SSRCs (0 when not publishing that kind).
    audio_ssrc: u32,
    video_ssrc: u32,
    video_rtx_ssrc: u32,
    conn_state: watch::Sender<RTCPeerConnectionState>,
    gathering: watch::Sender<RTCIceGatheringState>,
    received: Mutex<Vec<RecvEntry>>,
    keyframe_requests: AtomicU64,
    force_keyframe: AtomicBool,
    audio_sent: AtomicU32,
    video_sent: AtomicU32,
    keyframes_sent: AtomicU32,
    send_errors: AtomicU64,
    /// RFC 6464 level (0 = loudest, 127 = silence) put on outgoing audio.
    audio_level: AtomicU8,
    /// Outbound media loss, parts per million.
    audio_loss_ppm: AtomicU32,
    video_loss_ppm: AtomicU32,
    /// RTX payload types from the current local and remote descriptions.
    rtx_pts: Mutex<BTreeSet<u8>>,
    /// primary SSRC → RTX SSRC, from the remote description.
    remote_fid: Mutex<BTreeMap<u32, u32>>,
    wire: Mutex<WireStats>,
    /// Track reader tasks.
    readers: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn request_keyframe(&self) {
        let n = self.keyframe_requests.fetch_add(1, Ordering::SeqCst) + 1;
        self.force_keyframe.store(true, Ordering::SeqCst);
        tracing::debug!(peer = %self.name, n, "keyframe requested");
    }

    fn codec_for(&self, kind: MediaKind) -> Codec {
        match kind {
            MediaKind::Audio => Codec::Opus,
            MediaKind::Video => Codec::Video(self.video_codec),
        }
    }

    /// Inbound packet, wire side of the chain.
    fn on_inbound(&self, packet: &ChainPacket) {
        match packet {
            ChainPacket::Rtp(p) => {
                let pt = p.header.payload_type;
                let is_rtx = self.rtx_pts.lock().expect("rtx_pts").contains(&pt);
                let mut wire = self.wire.lock().expect("wire");
                let s = wire.inbound.entry(p.header.ssrc).or_default();
                s.packets += 1;
                s.payload_types.insert(pt);
                if is_rtx && p.payload.len() >= 2 {
                    s.rtx_packets += 1;
                    s.rtx_osns
                        .push(u16::from_be_bytes([p.payload[0], p.payload[1]]));
                    if let Some(f) =
                        frames::parse_frame(self.codec_for(MediaKind::Video), &p.payload[2..])
                    {
                        s.rtx_counters.push(f.counter);
                    }
                }
            }
            ChainPacket::Rtcp(packets) => {
                for rtcp in packets {
                    let any = rtcp.as_any();
                    if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
                        self.wire.lock().expect("wire").plis_received += 1;
                        if self.video_ssrc != 0 && pli.media_ssrc == self.video_ssrc {
                            self.request_keyframe();
                        }
                    } else if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
                        self.wire.lock().expect("wire").firs_received += 1;
                        if self.video_ssrc != 0 && fir.fir.iter().any(|e| e.ssrc == self.video_ssrc)
                        {
                            self.request_keyframe();
                        }
                    } else if any.downcast_ref::<TransportLayerNack>().is_some() {
                        self.wire.lock().expect("wire").nacks_received += 1;
                    }
                }
            }
            _ => {}
        }
    }

    /// Outbound packet, wire side of the chain. Returns false to drop it.
    fn on_outbound(&self, packet: &ChainPacket) -> bool {
        match packet {
            ChainPacket::Rtp(p) => {
                let ssrc = p.header.ssrc;
                let mut wire = self.wire.lock().expect("wire");
                if self.video_rtx_ssrc != 0 && ssrc == self.video_rtx_ssrc {
                    wire.rtx_sent += 1;
                    return true;
                }
                let loss_ppm = if ssrc == self.video_ssrc && ssrc != 0 {
                    self.video_loss_ppm.load(Ordering::Relaxed)
                } else if ssrc == self.audio_ssrc && ssrc != 0 {
                    self.audio_loss_ppm.load(Ordering::Relaxed)
                } else {
                    0
                };
                if loss_ppm > 0 && rand::random::<u32>() % 1_000_000 < loss_ppm {
                    wire.send_loss_dropped += 1;
                    return false;
                }
                wire.rtp_sent += 1;
                true
            }
            ChainPacket::Rtcp(packets) => {
                let mut wire = self.wire.lock().expect("wire");
                for rtcp in packets {
                    let any = rtcp.as_any();
                    if any.is::<PictureLossIndication>() {
                        wire.plis_sent += 1;
                    } else if any.is::<FullIntraRequest>() {
                        wire.firs_sent += 1;
                    } else if any.is::<TransportLayerNack>() {
                        wire.nacks_sent += 1;
                    }
                }
                true
            }
            _ => true,
        }
    }

    fn record_rtp(&self, index: usize, codec: Codec, packet: &rtc::rtp::packet::Packet) {
        let mut received = self.received.lock().expect("received");
        let Some(entry) = received.get_mut(index) else {
            return;
        };
        let t = &mut entry.info;
        t.packets += 1;
        t.last_arrival = Some(Instant::now());
        t.ssrcs.insert(packet.header.ssrc);
        t.payload_types.insert(packet.header.payload_type);
        match frames::parse_frame(codec, &packet.payload) {
            Some(f) => {
                t.counters.push(f.counter);
                if f.keyframe {
                    t.keyframes += 1;
                }
            }
            None => {
                t.unparsed += 1;
                // The first packet of an encoded keyframe carries no tag.
                if frames::starts_keyframe(codec, &packet.payload) {
                    t.keyframes += 1;
                }
            }
        }
    }

    /// Refreshes what the tap needs from the current descriptions.
    fn update_from_sdp(&self, local: Option<&str>, remote: Option<&str>) {
        let mut rtx = BTreeSet::new();
        let mut fid = BTreeMap::new();
        for (sdp, is_remote) in [(local, false), (remote, true)] {
            let Some(sdp) = sdp else { continue };
            for m in parse_sdp_media(sdp) {
                rtx.extend(
                    m.rtpmap
                        .iter()
                        .filter(|(_, name)| name.as_str() == "rtx")
                        .map(|(pt, _)| *pt),
                );
                if is_remote {
                    fid.extend(m.fid.iter().copied());
                }
            }
        }
        *self.rtx_pts.lock().expect("rtx_pts") = rtx;
        *self.remote_fid.lock().expect("remote_fid") = fid;
    }
}

// ---------------------------------------------------------------------------------------
// Wire tap interceptor
// ---------------------------------------------------------------------------------------

/// Observes every RTP/RTCP packet at the wire side of the interceptor chain, counts
/// keyframe requests for this peer's video, decodes RTX, and applies outbound send loss.
struct TapInterceptor {
    shared: Arc<Shared>,
    read_queue: VecDeque<TaggedPacket>,
    write_queue: VecDeque<TaggedPacket>,
}

impl rtc::sansio::Protocol<TaggedPacket, TaggedPacket, ()> for TapInterceptor {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.shared.on_inbound(&msg.message.packet);
        self.read_queue.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read_queue.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if self.shared.on_outbound(&msg.message.packet) {
            self.write_queue.push_back(msg);
        }
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write_queue.pop_front()
    }
}

impl Interceptor for TapInterceptor {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

// ---------------------------------------------------------------------------------------
// A Tokio runtime whose UDP sockets can be muted
// ---------------------------------------------------------------------------------------

/// Delegates everything to [`TokioRuntime`], but wraps each UDP socket so that
/// [`TestPeer::go_silent`] can make it swallow all traffic.
#[derive(Debug)]
struct SilenceableRuntime {
    inner: TokioRuntime,
    muted: Arc<AtomicBool>,
    bound: Arc<Mutex<Vec<SocketAddr>>>,
}

impl Runtime for SilenceableRuntime {
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) -> Box<dyn RtJoinHandle> {
        self.inner.spawn(future)
    }

    fn spawn_reactor(
        &self,
        reactor_pool_size: usize,
        future: Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> Box<dyn RtJoinHandle> {
        self.inner.spawn_reactor(reactor_pool_size, future)
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        let inner = self.inner.wrap_udp_socket(socket)?;
        if let Ok(addr) = inner.local_addr() {
            self.bound.lock().expect("bound").push(addr);
        }
        Ok(Arc::new(SilenceableSocket {
            inner,
            muted: Arc::clone(&self.muted),
        }))
    }

    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> io::Result<Arc<dyn AsyncTcpListener>> {
        self.inner.wrap_tcp_listener(listener)
    }

    fn connect_tcp<'a>(
        &'a self,
        remote_addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = io::Result<Arc<dyn AsyncTcpStream>>> + Send + 'a>> {
        self.inner.connect_tcp(remote_addr)
    }

    fn resolve_host<'a>(
        &'a self,
        host: &'a str,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'a>> {
        self.inner.resolve_host(host)
    }

    fn now(&self) -> Instant {
        self.inner.now()
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.inner.sleep(duration)
    }

    fn interval(&self, period: Duration) -> Box<dyn AsyncInterval> {
        self.inner.interval(period)
    }

    fn block_on(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>) {
        self.inner.block_on(future)
    }

    fn yield_now(&self) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.inner.yield_now()
    }

    fn name(&self) -> &'static str {
        "tokio-silenceable"
    }
}

/// A UDP socket that, once muted, pretends to send and silently discards what it receives.
#[derive(Debug)]
struct SilenceableSocket {
    inner: Arc<dyn AsyncUdpSocket>,
    muted: Arc<AtomicBool>,
}

impl AsyncUdpSocket for SilenceableSocket {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn poll_send(&self, cx: &mut Context<'_>, transmit: &Transmit<'_>) -> Poll<io::Result<usize>> {
        if self.muted.load(Ordering::Relaxed) {
            return Poll::Ready(Ok(transmit.contents.len()));
        }
        self.inner.poll_send(cx, transmit)
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        loop {
            match self.inner.poll_recv(cx, bufs, meta) {
                // Drain and discard until the socket has nothing more (then Pending, with
                // the waker registered by the inner socket).
                Poll::Ready(Ok(_)) if self.muted.load(Ordering::Relaxed) => continue,
                other => return other,
            }
        }
    }

    fn max_gso_segments(&self) -> usize {
        self.inner.max_gso_segments()
    }

    fn max_gro_segments(&self) -> usize {
        self.inner.max_gro_segments()
    }
}

// ---------------------------------------------------------------------------------------
// Event handler
// ---------------------------------------------------------------------------------------

struct Handler {
    shared: Arc<Shared>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        self.shared.gathering.send_replace(state);
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        tracing::debug!(peer = %self.shared.name, ?state, "connection state");
        self.shared.conn_state.send_replace(state);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let Some(kind) = MediaKind::from_rtc(track.kind().await) else {
            return;
        };
        let ssrcs = track.ssrcs().await;
        let ssrc = ssrcs.first().copied().unwrap_or(0);
        let stream_id = track.stream_id().await;
        let track_id = track.track_id().await;
        tracing::debug!(peer = %self.shared.name, ?kind, ssrc, %stream_id, %track_id, "remote track");
        let index = {
            let mut received = self.shared.received.lock().expect("received");
            received.push(RecvEntry {
                info: ReceivedTrack {
                    kind,
                    ssrc,
                    ssrcs: ssrcs.iter().copied().collect(),
                    stream_id,
                    track_id,
                    payload_types: BTreeSet::new(),
                    counters: Vec::new(),
                    keyframes: 0,
                    packets: 0,
                    unparsed: 0,
                    last_arrival: None,
                    ended: false,
                    rtx_ssrc: None,
                    rtx_packets: 0,
                },
                track: Arc::clone(&track),
            });
            received.len() - 1
        };
        let shared = Arc::clone(&self.shared);
        let codec = shared.codec_for(kind);
        let reader = tokio::spawn(async move {
            // Ends when the track ends or the connection closes (poll returns None).
            while let Some(event) = track.poll().await {
                match event {
                    TrackRemoteEvent::OnRtpPacket(packet) => {
                        shared.record_rtp(index, codec, &packet)
                    }
                    TrackRemoteEvent::OnEnded => break,
                    _ => {}
                }
            }
            if let Some(entry) = shared.received.lock().expect("received").get_mut(index) {
                entry.info.ended = true;
            }
        });
        self.shared.readers.lock().expect("readers").push(reader);
    }
}

// ---------------------------------------------------------------------------------------
// TestPeer
// ---------------------------------------------------------------------------------------

#[derive(Clone)]
struct LocalMedia {
    kind: MediaKind,
    ssrc: u32,
    track: Arc<TrackLocalStaticRTP>,
    transceiver: Arc<dyn RtpTransceiver>,
    /// The encoded clip this (video) track loops, if it sends [`EncodedVideo`].
    clip: Option<Arc<[EncodedFrame]>>,
}

/// What a send loop needs from the negotiated sender parameters.
#[derive(Debug, Clone)]
struct SendParams {
    payload_type: u8,
    mid: Option<(u8, String)>,
    audio_level_ext: Option<u8>,
}

/// An independent WebRTC endpoint (see the module docs).
pub struct TestPeer {
    name: String,
    opts: PeerOptions,
    pc: Arc<dyn PeerConnection>,
    shared: Arc<Shared>,
    muted: Arc<AtomicBool>,
    bound: Arc<Mutex<Vec<SocketAddr>>>,
    audio: Option<LocalMedia>,
    video: Option<LocalMedia>,
    send_tasks: Mutex<Vec<JoinHandle<()>>>,
}

fn nonzero_random_u32() -> u32 {
    loop {
        let v = rand::random::<u32>();
        if v != 0 {
            return v;
        }
    }
}

impl TestPeer {
    /// Builds a peer bound to `127.0.0.1:<ephemeral>`. Publishing tracks (per `opts`) are
    /// added immediately; nothing is sent until [`start_sending`](Self::start_sending).
    pub async fn new(name: &str, opts: PeerOptions) -> TestPeer {
        let video_codec = opts.video;
        let (audio_ssrc, video_ssrc, video_rtx_ssrc) = (
            if opts.send_audio {
                nonzero_random_u32()
            } else {
                0
            },
            if opts.send_video {
                nonzero_random_u32()
            } else {
                0
            },
            if opts.send_video {
                nonzero_random_u32()
            } else {
                0
            },
        );

        let shared = Arc::new(Shared {
            name: name.to_owned(),
            video_codec,
            audio_ssrc,
            video_ssrc,
            video_rtx_ssrc,
            conn_state: watch::channel(RTCPeerConnectionState::New).0,
            gathering: watch::channel(RTCIceGatheringState::New).0,
            received: Mutex::new(Vec::new()),
            keyframe_requests: AtomicU64::new(0),
            force_keyframe: AtomicBool::new(false),
            audio_sent: AtomicU32::new(0),
            video_sent: AtomicU32::new(0),
            keyframes_sent: AtomicU32::new(0),
            send_errors: AtomicU64::new(0),
            audio_level: AtomicU8::new(30),
            audio_loss_ppm: AtomicU32::new(0),
            video_loss_ppm: AtomicU32::new(0),
            rtx_pts: Mutex::new(BTreeSet::new()),
            remote_fid: Mutex::new(BTreeMap::new()),
            wire: Mutex::new(WireStats::default()),
            readers: Mutex::new(Vec::new()),
        });

        let (audio_codec, video_codec_params, rtx_codec) = codecs(video_codec);
        let mut media_engine = MediaEngine::default();
        media_engine
            .register_codec(audio_codec.clone(), RtpCodecKind::Audio)
            .expect("register Opus");
        media_engine
            .register_codec(video_codec_params.clone(), RtpCodecKind::Video)
            .expect("register video codec");
        media_engine
            .register_codec(rtx_codec, RtpCodecKind::Video)
            .expect("register RTX");
        for (uri, kind) in [
            (rtc::sdp::extmap::SDES_MID_URI, RtpCodecKind::Audio),
            (rtc::sdp::extmap::AUDIO_LEVEL_URI, RtpCodecKind::Audio),
            (rtc::sdp::extmap::SDES_MID_URI, RtpCodecKind::Video),
        ] {
            media_engine
                .register_header_extension(
                    RTCRtpHeaderExtensionCapability {
                        uri: uri.to_owned(),
                    },
                    kind,
                    None,
                )
                .expect("register header extension");
        }
        // NACK generator/responder, SR/RR, TWCC receiver, mid/rid/rrid extensions.
        let registry = register_default_interceptors(Registry::new(), &mut media_engine)
            .expect("register default interceptors");
        let registry = registry.with(
            Slot::from(TAP_SLOT),
            TapInterceptor {
                shared: Arc::clone(&shared),
                read_queue: VecDeque::new(),
                write_queue: VecDeque::new(),
            },
        );

        let mut setting_engine = SettingEngineBuilder::new()
            .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
            .with_crypto_provider(Arc::new(crypto::providers::AwsLcRsProvider::new()));
        if let Some(t) = opts.ice_timeouts {
            setting_engine = setting_engine.with_ice_timeouts(
                Some(t.disconnected),
                Some(t.failed),
                Some(t.keepalive),
            );
        }
        let setting_engine = setting_engine.build();

        let configuration = RTCConfigurationBuilder::new()
            .with_bundle_policy(RTCBundlePolicy::MaxBundle)
            .build();

        let muted = Arc::new(AtomicBool::new(false));
        let bound = Arc::new(Mutex::new(Vec::new()));
        let runtime: Arc<dyn Runtime> = Arc::new(SilenceableRuntime {
            inner: TokioRuntime,
            muted: Arc::clone(&muted),
            bound: Arc::clone(&bound),
        });

        let pc = PeerConnectionBuilder::new()
            .with_configuration(configuration)
            .with_media_engine(media_engine)
            .with_setting_engine(setting_engine)
            .with_interceptor_registry(registry)
            .with_handler(Arc::new(Handler {
                shared: Arc::clone(&shared),
            }))
            .with_runtime(runtime)
            .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
            .build()
            .await
            .expect("build webrtc-rs peer connection");
        let pc: Arc<dyn PeerConnection> = Arc::new(pc);

        let direction = if opts.sendrecv {
            RTCRtpTransceiverDirection::Sendrecv
        } else {
            RTCRtpTransceiverDirection::Sendonly
        };
        let mut audio = None;
        let mut video = None;
        if opts.send_audio {
            audio = Some(
                add_local_track(
                    &pc,
                    name,
                    MediaKind::Audio,
                    audio_ssrc,
                    None,
                    audio_codec.rtp_codec.clone(),
                    direction,
                )
                .await,
            );
        }
        if opts.send_video {
            let clip = match opts.encoded_video {
                Some(encoded) => Some(encoded_clip(video_codec, encoded).await),
                None => None,
            };
            video = Some(
                add_local_track(
                    &pc,
                    name,
                    MediaKind::Video,
                    video_ssrc,
                    Some(video_rtx_ssrc),
                    video_codec_params.rtp_codec.clone(),
                    direction,
                )
                .await,
            )
            .map(|media| LocalMedia { clip, ..media });
        }

        TestPeer {
            name: name.to_owned(),
            opts,
            pc,
            shared,
            muted,
            bound,
            audio,
            video,
            send_tasks: Mutex::new(Vec::new()),
        }
    }

    /// The peer's name (also the stream id of its tracks).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The options the peer was built with.
    pub fn options(&self) -> &PeerOptions {
        &self.opts
    }

    /// The underlying webrtc-rs connection, for anything the harness does not wrap.
    pub fn pc(&self) -> &Arc<dyn PeerConnection> {
        &self.pc
    }

    /// The peer's UDP socket address (its host candidate) — what a server or a
    /// [`LossyProxy`](crate::proxy::LossyProxy) sees as the client address.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.bound.lock().expect("bound").first().copied()
    }

    /// SSRC of the published audio track, if any.
    pub fn audio_ssrc(&self) -> Option<u32> {
        self.audio.as_ref().map(|m| m.ssrc)
    }

    /// SSRC of the published video track, if any.
    pub fn video_ssrc(&self) -> Option<u32> {
        self.video.as_ref().map(|m| m.ssrc)
    }

    /// RTX SSRC paired with the published video track, if any.
    pub fn video_rtx_ssrc(&self) -> Option<u32> {
        self.video.as_ref().map(|_| self.shared.video_rtx_ssrc)
    }

    // -- signalling ----------------------------------------------------------------------

    /// Creates an offer, sets it as local description, waits for ICE gathering and returns
    /// the complete SDP. A peer that publishes nothing first adds recvonly audio and video
    /// transceivers, so the offer is not empty.
    pub async fn create_offer(&self) -> String {
        if self.pc.get_transceivers().await.is_empty() {
            for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
                self.pc
                    .add_transceiver_from_kind(
                        kind,
                        Some(RTCRtpTransceiverInit {
                            direction: RTCRtpTransceiverDirection::Recvonly,
                            streams: vec![],
                            send_encodings: vec![],
                        }),
                    )
                    .await
                    .expect("add recvonly transceiver");
            }
        }
        let offer = self.pc.create_offer(None).await.expect("create offer");
        self.pc
            .set_local_description(offer)
            .await
            .expect("set local offer");
        self.finish_local_description().await
    }

    /// Applies the remote answer to our offer.
    pub async fn apply_answer(&self, sdp: String) {
        let answer = RTCSessionDescription::answer(sdp).expect("parse remote answer");
        self.pc
            .set_remote_description(answer)
            .await
            .expect("set remote answer");
        self.refresh_sdp_state().await;
    }

    /// Applies a remote offer (initial or renegotiation), creates and sets the answer, and
    /// returns the complete answer SDP.
    pub async fn apply_remote_offer(&self, sdp: String) -> String {
        let offer = RTCSessionDescription::offer(sdp).expect("parse remote offer");
        self.pc
            .set_remote_description(offer)
            .await
            .expect("set remote offer");
        let answer = self.pc.create_answer(None).await.expect("create answer");
        self.pc
            .set_local_description(answer)
            .await
            .expect("set local answer");
        self.finish_local_description().await
    }

    async fn finish_local_description(&self) -> String {
        let mut gathering = self.shared.gathering.subscribe();
        let gathered = tokio::time::timeout(GATHER_TIMEOUT, async {
            gathering
                .wait_for(|s| *s == RTCIceGatheringState::Complete)
                .await
                .is_ok()
        })
        .await;
        assert!(
            gathered == Ok(true),
            "{}: ICE gathering did not complete within {GATHER_TIMEOUT:?}",
            self.name
        );
        self.refresh_sdp_state().await;
        self.pc
            .local_description()
            .await
            .expect("local description after set_local_description")
            .sdp
    }

    async fn refresh_sdp_state(&self) {
        let local = self.pc.local_description().await.map(|d| d.sdp);
        let remote = self.pc.remote_description().await.map(|d| d.sdp);
        self.shared
            .update_from_sdp(local.as_deref(), remote.as_deref());
    }

    /// The current local description's SDP.
    pub async fn local_sdp(&self) -> Option<String> {
        self.pc.local_description().await.map(|d| d.sdp)
    }

    /// The current remote description's SDP.
    pub async fn remote_sdp(&self) -> Option<String> {
        self.pc.remote_description().await.map(|d| d.sdp)
    }

    /// Payload types this peer negotiated, keyed by lower-case encoding name ("opus",
    /// "vp8", "h264", "rtx"): those present in both the local and remote description.
    pub async fn negotiated_payload_types(&self) -> BTreeMap<String, BTreeSet<u8>> {
        match (self.local_sdp().await, self.remote_sdp().await) {
            (Some(l), Some(r)) => negotiated_payload_types(&l, &r),
            _ => BTreeMap::new(),
        }
    }

    // -- connection state ----------------------------------------------------------------

    /// The current peer connection state.
    pub fn connection_state(&self) -> RTCPeerConnectionState {
        *self.shared.conn_state.borrow()
    }

    /// Waits until the connection state satisfies `pred`. `Err` carries the state at the
    /// deadline.
    pub async fn wait_for_state(
        &self,
        pred: impl Fn(RTCPeerConnectionState) -> bool,
        timeout: Duration,
    ) -> Result<RTCPeerConnectionState, RTCPeerConnectionState> {
        let mut rx = self.shared.conn_state.subscribe();
        let waited = tokio::time::timeout(timeout, async {
            rx.wait_for(|s| pred(*s)).await.map(|state| *state)
        })
        .await;
        match waited {
            Ok(Ok(state)) => Ok(state),
            _ => Err(self.connection_state()),
        }
    }

    /// State of the DTLS transport (all media is bundled on one), if a local track or a
    /// received track exists (webrtc-rs only materialises receivers once media arrived). Note that a webrtc-rs peer whose remote sent a DTLS `close_notify` reports
    /// `Closed` here while its connection state stays `Connected`.
    pub async fn dtls_state(&self) -> Option<RTCDtlsTransportState> {
        for transceiver in self.pc.get_transceivers().await {
            if let Ok(Some(receiver)) = transceiver.receiver().await {
                if let Ok(Some(dtls)) = receiver.transport().await {
                    return dtls.state().await.ok();
                }
            }
            if let Ok(Some(sender)) = transceiver.sender().await {
                if let Ok(Some(dtls)) = sender.transport().await {
                    return dtls.state().await.ok();
                }
            }
        }
        None
    }

    /// Waits for `Connected`; panics with the current state after `timeout`.
    pub async fn wait_connected(&self, timeout: Duration) {
        if let Err(state) = self
            .wait_for_state(|s| s == RTCPeerConnectionState::Connected, timeout)
            .await
        {
            panic!(
                "{}: not connected within {timeout:?} (state {state:?})",
                self.name
            );
        }
    }

    // -- sending -------------------------------------------------------------------------

    /// Starts the send loops for the published tracks (idempotent). Counters start at 0
    /// and only advance when a packet was handed to webrtc-rs, so call this once connected.
    pub fn start_sending(&self) {
        let mut tasks = self.send_tasks.lock().expect("send_tasks");
        if !tasks.is_empty() {
            return;
        }
        if let Some(audio) = self.audio.clone() {
            tasks.push(tokio::spawn(send_loop(Arc::clone(&self.shared), audio)));
        }
        if let Some(video) = self.video.clone() {
            let task = match video.clip.clone() {
                Some(clip) => {
                    tokio::spawn(send_encoded_loop(Arc::clone(&self.shared), video, clip))
                }
                None => tokio::spawn(send_loop(Arc::clone(&self.shared), video)),
            };
            tasks.push(task);
        }
    }

    /// Stops the send loops (no goodbye, the tracks stay negotiated).
    pub fn stop_sending(&self) {
        for task in self.send_tasks.lock().expect("send_tasks").drain(..) {
            task.abort();
        }
    }

    /// `(audio, video)` frames sent so far (= the next counter value of each stream).
    pub fn frames_sent(&self) -> (u32, u32) {
        (
            self.shared.audio_sent.load(Ordering::SeqCst),
            self.shared.video_sent.load(Ordering::SeqCst),
        )
    }

    /// Video keyframes sent so far.
    pub fn keyframes_sent(&self) -> u32 {
        self.shared.keyframes_sent.load(Ordering::SeqCst)
    }

    /// PLI/FIR packets received that target this peer's video SSRC.
    pub fn keyframe_requests(&self) -> u64 {
        self.shared.keyframe_requests.load(Ordering::SeqCst)
    }

    /// Send attempts webrtc-rs rejected (e.g. before negotiation finished).
    pub fn send_errors(&self) -> u64 {
        self.shared.send_errors.load(Ordering::SeqCst)
    }

    /// Sets the RFC 6464 audio level (0 = loudest, 127 = silence; voice flag set when < 127)
    /// carried on outgoing audio, if the extension was negotiated. Default 30.
    pub fn set_audio_level(&self, level: u8) {
        self.shared
            .audio_level
            .store(level.min(127), Ordering::SeqCst);
    }

    /// Drops `ratio` of this peer's outgoing *original* media packets of `kind` at the
    /// wire (after the NACK responder has buffered them, so they can still be repaired by
    /// retransmission). RTX and RTCP are never dropped.
    pub fn set_send_loss(&self, kind: MediaKind, ratio: f64) {
        assert!(
            (0.0..=1.0).contains(&ratio),
            "loss ratio {ratio} out of range"
        );
        let ppm = (ratio * 1_000_000.0) as u32;
        match kind {
            MediaKind::Audio => self.shared.audio_loss_ppm.store(ppm, Ordering::SeqCst),
            MediaKind::Video => self.shared.video_loss_ppm.store(ppm, Ordering::SeqCst),
        }
    }

    // -- receiving -----------------------------------------------------------------------

    /// Snapshot of every remote track received so far, in the order they opened.
    pub fn received(&self) -> Vec<ReceivedTrack> {
        let fid = self.shared.remote_fid.lock().expect("remote_fid").clone();
        let wire = self.shared.wire.lock().expect("wire").inbound.clone();
        let received = self.shared.received.lock().expect("received");
        received
            .iter()
            .map(|e| {
                let mut t = e.info.clone();
                t.rtx_ssrc = fid.get(&t.ssrc).copied();
                t.rtx_packets = t
                    .rtx_ssrc
                    .and_then(|r| wire.get(&r))
                    .map(|s| s.rtx_packets)
                    .unwrap_or(0);
                t
            })
            .collect()
    }

    /// The received tracks of one kind.
    pub fn received_of(&self, kind: MediaKind) -> Vec<ReceivedTrack> {
        self.received()
            .into_iter()
            .filter(|t| t.kind == kind)
            .collect()
    }

    /// The received tracks whose msid stream id is `stream_id` (a publisher's name).
    pub fn received_from(&self, stream_id: &str) -> Vec<ReceivedTrack> {
        self.received()
            .into_iter()
            .filter(|t| t.stream_id == stream_id)
            .collect()
    }

    /// What the wire-side interceptor saw.
    pub fn wire_stats(&self) -> WireStats {
        self.shared.wire.lock().expect("wire").clone()
    }

    /// Waits until `pred` holds for the received tracks, polling every 20 ms. Returns the
    /// last snapshot either way, and whether `pred` held.
    pub async fn wait_received(
        &self,
        timeout: Duration,
        pred: impl Fn(&[ReceivedTrack]) -> bool,
    ) -> (bool, Vec<ReceivedTrack>) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let snapshot = self.received();
            if pred(&snapshot) {
                return (true, snapshot);
            }
            if tokio::time::Instant::now() >= deadline {
                return (false, snapshot);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends a PLI for the received track with SSRC `media_ssrc`.
    pub async fn send_pli(&self, media_ssrc: u32) -> Result<(), String> {
        let track = {
            let received = self.shared.received.lock().expect("received");
            received
                .iter()
                .find(|e| e.info.ssrc == media_ssrc || e.info.ssrcs.contains(&media_ssrc))
                .map(|e| Arc::clone(&e.track))
        };
        let track = track
            .ok_or_else(|| format!("{}: no received track with ssrc {media_ssrc}", self.name))?;
        let sender_ssrc = self.video_ssrc().or(self.audio_ssrc()).unwrap_or(1);
        track
            .write_rtcp(vec![Box::new(PictureLossIndication {
                sender_ssrc,
                media_ssrc,
            })])
            .await
            .map_err(|e| format!("{}: write PLI: {e}", self.name))
    }

    // -- ending --------------------------------------------------------------------------

    /// Makes the peer vanish without a goodbye: stops sending and mutes its UDP socket in
    /// both directions, so the remote hears nothing more — no media, no RTCP, no STUN
    /// (consent) responses, no DTLS close_notify. The connection object stays alive.
    pub fn go_silent(&self) {
        tracing::debug!(peer = %self.name, "going silent");
        self.stop_sending();
        self.muted.store(true, Ordering::SeqCst);
    }

    /// Whether [`go_silent`](Self::go_silent) was called.
    pub fn is_silent(&self) -> bool {
        self.muted.load(Ordering::SeqCst)
    }

    /// Closes the connection politely (webrtc-rs sends a DTLS close_notify) and stops all
    /// tasks.
    pub async fn close(self) {
        self.stop_sending();
        if let Err(err) = self.pc.close().await {
            tracing::warn!(peer = %self.name, %err, "close failed");
        }
        for task in self.shared.readers.lock().expect("readers").drain(..) {
            task.abort();
        }
    }
}

impl Drop for TestPeer {
    fn drop(&mut self) {
        self.stop_sending();
        if let Ok(mut readers) = self.shared.readers.lock() {
            for task in readers.drain(..) {
                task.abort();
            }
        }
        // Dropping a webrtc-rs connection does not stop its driver; close it in the
        // background if a runtime is still around (idempotent after `close`).
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let pc = Arc::clone(&self.pc);
            handle.spawn(async move {
                let _ = pc.close().await;
            });
        }
    }
}

/// The codec parameters a peer registers: `(opus, video, video rtx)`.
fn codecs(
    video: VideoCodec,
) -> (
    RTCRtpCodecParameters,
    RTCRtpCodecParameters,
    RTCRtpCodecParameters,
) {
    let feedback = |typ: &str, parameter: &str| RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    };
    let (pt, rtx_pt) = video.payload_types();
    let opus = RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: MIME_TYPE_OPUS.to_owned(),
            clock_rate: 48000,
            channels: 2,
            sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
            rtcp_feedback: vec![],
        },
        payload_type: PT_OPUS,
    };
    let video_params = RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: video.mime_type().to_owned(),
            clock_rate: 90000,
            channels: 0,
            sdp_fmtp_line: fmtp(video).to_owned(),
            rtcp_feedback: vec![
                feedback("nack", ""),
                feedback("nack", "pli"),
                feedback("ccm", "fir"),
            ],
        },
        payload_type: pt,
    };
    let rtx = RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: MIME_TYPE_RTX.to_owned(),
            clock_rate: 90000,
            channels: 0,
            sdp_fmtp_line: format!("apt={pt}"),
            rtcp_feedback: vec![],
        },
        payload_type: rtx_pt,
    };
    (opus, video_params, rtx)
}

async fn add_local_track(
    pc: &Arc<dyn PeerConnection>,
    name: &str,
    kind: MediaKind,
    ssrc: u32,
    rtx_ssrc: Option<u32>,
    codec: RTCRtpCodec,
    direction: RTCRtpTransceiverDirection,
) -> LocalMedia {
    let (rtc_kind, suffix) = match kind {
        MediaKind::Audio => (RtpCodecKind::Audio, "audio"),
        MediaKind::Video => (RtpCodecKind::Video, "video"),
    };
    let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        name.to_owned(),
        format!("{name}-{suffix}"),
        format!("{name}-{suffix}"),
        rtc_kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                rtx: rtx_ssrc.map(|ssrc| RTCRtpRtxParameters { ssrc }),
                ..Default::default()
            },
            active: true,
            codec,
            ..Default::default()
        }],
    )));
    let transceiver = pc
        .add_transceiver_from_track(
            Arc::clone(&track) as Arc<dyn TrackLocal>,
            Some(RTCRtpTransceiverInit {
                direction,
                streams: vec![name.to_owned()],
                send_encodings: vec![],
            }),
        )
        .await
        .expect("add local track");
    LocalMedia {
        kind,
        ssrc,
        track,
        transceiver,
        clip: None,
    }
}

/// Reads the negotiated payload type and header extension ids for a sender.
async fn resolve_send_params(media: &LocalMedia, mime_type: &str) -> Option<SendParams> {
    let sender = media.transceiver.sender().await.ok()??;
    let params = sender.get_parameters().await.ok()?;
    let payload_type = params
        .rtp_parameters
        .codecs
        .iter()
        .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(mime_type))?
        .payload_type;
    let ext_id = |uri: &str| {
        params
            .rtp_parameters
            .header_extensions
            .iter()
            .find(|e| e.uri == uri)
            .map(|e| e.id as u8)
            .filter(|id| (1..=14).contains(id))
    };
    let mid = match (
        ext_id(rtc::sdp::extmap::SDES_MID_URI),
        media.transceiver.mid().await.ok().flatten(),
    ) {
        (Some(id), Some(mid)) => Some((id, mid)),
        _ => None,
    };
    Some(SendParams {
        payload_type,
        mid,
        audio_level_ext: ext_id(rtc::sdp::extmap::AUDIO_LEVEL_URI),
    })
}

/// Sends one stream's synthetic frames until aborted.
async fn send_loop(shared: Arc<Shared>, media: LocalMedia) {
    let (interval, codec, clock_step, mime) = match media.kind {
        MediaKind::Audio => (AUDIO_INTERVAL, Codec::Opus, 960u32, MIME_TYPE_OPUS),
        MediaKind::Video => (
            VIDEO_INTERVAL,
            shared.codec_for(MediaKind::Video),
            3000u32,
            shared.video_codec.mime_type(),
        ),
    };
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sequence_number: u16 = rand::random();
    let timestamp_base: u32 = rand::random();
    let mut counter: u32 = 0;
    let mut last_keyframe: Option<Instant> = None;
    let mut params: Option<SendParams> = None;
    let mut params_at = Instant::now();

    loop {
        ticker.tick().await;
        // Re-read the negotiated parameters now and then: renegotiation may change them.
        if params.is_none() || params_at.elapsed() > Duration::from_secs(1) {
            let resolved = resolve_send_params(&media, mime).await;
            if resolved.is_some() && params.is_none() {
                tracing::debug!(peer = %shared.name, kind = ?media.kind, params = ?resolved, "send parameters");
            }
            params = resolved;
            params_at = Instant::now();
        }
        let Some(p) = params.clone() else {
            shared.send_errors.fetch_add(1, Ordering::Relaxed);
            continue;
        };

        let (keyframe, forced) = match media.kind {
            MediaKind::Audio => (false, false),
            MediaKind::Video => {
                let forced = shared.force_keyframe.swap(false, Ordering::SeqCst);
                let periodic = last_keyframe.is_none_or(|t| t.elapsed() >= KEYFRAME_INTERVAL);
                (forced || periodic, forced)
            }
        };
        let payload = frames::payload(codec, counter, keyframe, frames::now_micros());
        let mut header = rtc::rtp::header::Header {
            version: 2,
            marker: media.kind == MediaKind::Video || counter == 0,
            payload_type: p.payload_type,
            sequence_number,
            timestamp: timestamp_base.wrapping_add(counter.wrapping_mul(clock_step)),
            ssrc: media.ssrc,
            ..Default::default()
        };
        if let Some((id, mid)) = &p.mid {
            let _ = header.set_extension(*id, Bytes::from(mid.clone().into_bytes()));
        }
        if let (MediaKind::Audio, Some(id)) = (media.kind, p.audio_level_ext) {
            let level = shared.audio_level.load(Ordering::Relaxed);
            let voice = if level < 127 { 0x80 } else { 0 };
            let _ = header.set_extension(id, Bytes::from(vec![voice | level]));
        }
        let packet = rtc::rtp::packet::Packet {
            header,
            payload: Bytes::from(payload),
        };
        match media.track.write_rtp(packet).await {
            Ok(()) => {
                sequence_number = sequence_number.wrapping_add(1);
                counter = counter.wrapping_add(1);
                match media.kind {
                    MediaKind::Audio => shared.audio_sent.store(counter, Ordering::SeqCst),
                    MediaKind::Video => {
                        shared.video_sent.store(counter, Ordering::SeqCst);
                        if keyframe {
                            last_keyframe = Some(Instant::now());
                            shared.keyframes_sent.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
            }
            Err(err) => {
                tracing::debug!(peer = %shared.name, kind = ?media.kind, %err, "write_rtp failed");
                shared.send_errors.fetch_add(1, Ordering::Relaxed);
                if forced {
                    shared.force_keyframe.store(true, Ordering::SeqCst);
                }
                params = None;
            }
        }
    }
}

/// Encoded clips by codec and size, shared by every peer of the process.
type ClipCache = Mutex<HashMap<(VideoCodec, EncodedVideo), Arc<OnceLock<Arc<[EncodedFrame]>>>>>;

/// The frames of the clip for `codec` and `encoded`, encoded on first use (on a blocking
/// thread, once per process even when several peers ask at the same time).
async fn encoded_clip(codec: VideoCodec, encoded: EncodedVideo) -> Arc<[EncodedFrame]> {
    static CLIPS: OnceLock<ClipCache> = OnceLock::new();
    let cell = {
        let mut clips = CLIPS
            .get_or_init(Default::default)
            .lock()
            .expect("clip cache");
        Arc::clone(clips.entry((codec, encoded)).or_default())
    };
    if let Some(frames) = cell.get() {
        return Arc::clone(frames);
    }
    tokio::task::spawn_blocking(move || {
        let frames = cell.get_or_init(|| {
            let spec = ClipSpec {
                codec,
                width: encoded.width,
                height: encoded.height,
                fps: 30,
                kbps: encoded.kbps,
                simulcast: false,
                seed: 1,
            };
            let clip = VideoClip::encode(&spec)
                .unwrap_or_else(|e| panic!("encode the {codec:?} clip {encoded:?}: {e}"));
            let layer = clip
                .layers
                .into_iter()
                .next()
                .expect("a clip has one layer");
            layer.frames.into()
        });
        Arc::clone(frames)
    })
    .await
    .expect("the clip encoder panicked")
}

/// Splits one tagged frame into RTP payloads of at most [`ENCODED_MTU`] bytes. For VP8 the
/// fragment size is shrunk a little where needed so that the 16-byte tag at the end of the
/// frame is never split between two packets (a receiver parses tags per packet).
fn packetize(payloader: &mut dyn Payloader, codec: VideoCodec, frame: Bytes) -> Vec<Bytes> {
    let tag_len = confab_loadtest::media::TAG_LEN;
    let mtu = match codec {
        // One descriptor byte per packet; the last fragment must hold the whole tag.
        VideoCodec::Vp8 => (ENCODED_MTU - 2 * tag_len..=ENCODED_MTU)
            .rev()
            .find(|mtu| {
                let last = frame.len() % (mtu - 1);
                last == 0 || last >= tag_len
            })
            .unwrap_or(ENCODED_MTU),
        VideoCodec::H264 => ENCODED_MTU,
    };
    payloader
        .payload(mtu, &frame)
        .expect("webrtc-rs packetizes an encoder's frame")
}

/// Sends the encoded clip in a loop until aborted (see [`EncodedVideo`]). One tick per
/// frame; a keyframe request restarts the clip at its first frame, a keyframe.
async fn send_encoded_loop(shared: Arc<Shared>, media: LocalMedia, clip: Arc<[EncodedFrame]>) {
    let codec = shared.video_codec;
    let mut payloader: Box<dyn Payloader> = match codec {
        VideoCodec::Vp8 => Box::new(Vp8Payloader::default()),
        VideoCodec::H264 => Box::new(H264Payloader::default()),
    };
    let mut ticker = tokio::time::interval(VIDEO_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sequence_number: u16 = rand::random();
    let timestamp_base: u32 = rand::random();
    let mut counter: u32 = 0;
    // Index of the next clip frame; 0 is a keyframe.
    let mut position: usize = 0;
    let mut params: Option<SendParams> = None;
    let mut params_at = Instant::now();

    loop {
        ticker.tick().await;
        if params.is_none() || params_at.elapsed() > Duration::from_secs(1) {
            let resolved = resolve_send_params(&media, codec.mime_type()).await;
            if resolved.is_some() && params.is_none() {
                tracing::debug!(peer = %shared.name, params = ?resolved, "encoded video send parameters");
            }
            params = resolved;
            params_at = Instant::now();
        }
        let Some(p) = params.clone() else {
            shared.send_errors.fetch_add(1, Ordering::Relaxed);
            continue;
        };

        if shared.force_keyframe.swap(false, Ordering::SeqCst) {
            position = 0;
        }
        let Some(frame) = clip.get(position % clip.len().max(1)) else {
            return;
        };
        let tagged = tag_video(
            codec,
            &frame.data,
            Tag {
                counter,
                sent_micros: now_micros(),
            },
        );
        let payloads = packetize(payloader.as_mut(), codec, Bytes::from(tagged));
        let last = payloads.len().saturating_sub(1);
        let timestamp = timestamp_base.wrapping_add(counter.wrapping_mul(3000));
        let mut failed = false;
        for (i, payload) in payloads.into_iter().enumerate() {
            let mut header = rtc::rtp::header::Header {
                version: 2,
                marker: i == last,
                payload_type: p.payload_type,
                sequence_number,
                timestamp,
                ssrc: media.ssrc,
                ..Default::default()
            };
            if let Some((id, mid)) = &p.mid {
                let _ = header.set_extension(*id, Bytes::from(mid.clone().into_bytes()));
            }
            let packet = rtc::rtp::packet::Packet { header, payload };
            if let Err(err) = media.track.write_rtp(packet).await {
                tracing::debug!(peer = %shared.name, %err, "write_rtp failed (encoded video)");
                shared.send_errors.fetch_add(1, Ordering::Relaxed);
                failed = true;
                break;
            }
            sequence_number = sequence_number.wrapping_add(1);
        }
        if failed {
            // A frame sent in part cannot be decoded, nor can what refers to it: resume
            // from the keyframe once the parameters are read again.
            position = 0;
            params = None;
            continue;
        }
        counter = counter.wrapping_add(1);
        shared.video_sent.store(counter, Ordering::SeqCst);
        if frame.keyframe {
            shared.keyframes_sent.fetch_add(1, Ordering::SeqCst);
        }
        position = (position + 1) % clip.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kit's parser finds the load tester's tag in exactly one packet of each frame
    /// the sender packetizes, sees where keyframes start, and the frames that need it
    /// span several packets.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn encoded_frames_carry_one_parsable_tag_each() {
        for codec in [VideoCodec::Vp8, VideoCodec::H264] {
            let clip = encoded_clip(codec, EncodedVideo::new(640, 480)).await;
            let again = encoded_clip(codec, EncodedVideo::new(640, 480)).await;
            assert!(
                Arc::ptr_eq(&clip, &again),
                "{codec:?}: the clip is encoded once"
            );
            let mut payloader: Box<dyn Payloader> = match codec {
                VideoCodec::Vp8 => Box::new(Vp8Payloader::default()),
                VideoCodec::H264 => Box::new(H264Payloader::default()),
            };
            let mut packets = 0;
            for (i, frame) in clip.iter().enumerate() {
                // Zero-heavy times exercise H.264 emulation prevention.
                let tag = Tag {
                    counter: i as u32,
                    sent_micros: 0x0000_0100_0000_0002 + i as u64,
                };
                let tagged = tag_video(codec, &frame.data, tag);
                let payloads = packetize(payloader.as_mut(), codec, Bytes::from(tagged));
                assert!(payloads.iter().all(|p| p.len() <= ENCODED_MTU));
                packets += payloads.len();
                let parsed: Vec<_> = payloads
                    .iter()
                    .filter_map(|p| frames::parse_frame(codec.into(), p))
                    .collect();
                assert_eq!(
                    parsed.len(),
                    1,
                    "{codec:?} frame {i}: one tagged packet of {}",
                    payloads.len()
                );
                assert_eq!(
                    (parsed[0].counter, parsed[0].sent_micros),
                    (tag.counter, tag.sent_micros)
                );
                let starts = payloads
                    .iter()
                    .filter(|p| frames::starts_keyframe(codec.into(), p))
                    .count();
                assert_eq!(starts, usize::from(frame.keyframe), "{codec:?} frame {i}");
            }
            assert!(
                clip[0].keyframe,
                "{codec:?}: the clip starts with a keyframe"
            );
            assert!(
                packets > clip.len(),
                "{codec:?}: {packets} packets for {} frames",
                clip.len()
            );
        }
    }

    /// A VP8 frame whose last fragment would be shorter than the tag is cut so that the
    /// tag stays whole.
    #[test]
    fn vp8_tags_are_never_split_between_packets() {
        let tag_len = confab_loadtest::media::TAG_LEN;
        for len in [1199 + 1, 1199 + 15, 2 * 1199 + 3, 1199 + 16, 1199] {
            let frame = Bytes::from(vec![0x55u8; len]);
            let payloads = packetize(&mut Vp8Payloader::default(), VideoCodec::Vp8, frame);
            let last = payloads.last().expect("a packet");
            assert!(
                last.len() > tag_len,
                "{len}: last packet {} bytes",
                last.len()
            );
            let total: usize = payloads.iter().map(|p| p.len() - 1).sum();
            assert_eq!(total, len);
        }
    }
}
