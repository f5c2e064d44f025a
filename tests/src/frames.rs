//! Synthetic media whose RTP payloads carry a frame counter.
//!
//! The interop tests never decode real audio or video. Instead every RTP packet a
//! [`TestPeer`](crate::peer::TestPeer) sends carries a 16-byte *tag* — the magic
//! [`MAGIC`] (`b"CNFB"`), a big-endian `u32` frame counter and a big-endian `u64` send
//! time in microseconds since the Unix epoch — wrapped in just enough codec framing that
//! an SFU (or a recorder) sees a plausible VP8 / H.264 / Opus payload:
//!
//! * **VP8** (RFC 7741): a 1-byte payload descriptor (S bit set, PID 0), the 3-byte VP8
//!   frame header whose P bit marks a keyframe, for keyframes the start code
//!   `9d 01 2a` plus width/height, then the tag and some filler. One frame = one packet.
//! * **H.264** (RFC 6184, packetization-mode=1): a non-IDR slice (NAL type 1) for delta
//!   frames, a STAP-A carrying SPS + PPS + IDR slice (NAL type 5) for keyframes. The tag
//!   lives in the slice body, protected by emulation-prevention bytes so the NAL unit stays
//!   valid when converted to Annex B. One frame = one packet.
//! * **Opus**: a TOC byte (CELT-only, fullband, 20 ms, one frame) followed by the tag.
//!
//! The parsers ([`parse_frame`], [`parse_counter`] and the per-codec variants) are
//! tolerant: they search for the magic rather than assuming a fixed offset, so they also
//! work on an RTX payload once its 2-byte OSN has been stripped, and on VP8 payloads whose
//! descriptor an SFU extended (picture id, TL0PICIDX, …).
//!
//! The tag and its search ([`tag`], [`find_tag`]) are the kit's own, deliberately
//! independent of the bridge: reading the counter back from wherever it arrived is the
//! check that the bridge delivered the payload intact. The codec framing around the tag —
//! the VP8 payload descriptor, STAP-A / FU-A, emulation prevention, keyframe flags — is
//! read with `confab-media`, as the bridge and the recorder read it; the generators below
//! write that framing by hand, so a parse of a generated payload checks it.
//!
//! # Encoded video
//!
//! A publisher built with [`PeerOptions::encoded_publisher`](crate::peer::PeerOptions::encoded_publisher)
//! sends real, decodable VP8 / H.264 instead (the load tester's clip, see
//! [`confab_loadtest::media`]), one frame split over several packets, with the load
//! tester's tag ([`confab_loadtest::media::tag_video`]): for VP8 the last 16 bytes of the
//! frame, so in its last packet; for H.264 an SEI NAL unit sent as a packet of its own
//! before the frame's first slice. When a payload carries no tag of this module, the
//! video parsers look for that tag ([`parse_encoded`]); the frame's other packets carry
//! none and parse as `None`. [`starts_keyframe`] tells the first packet of a keyframe
//! apart without any tag.

use std::time::{SystemTime, UNIX_EPOCH};

use confab_loadtest::media::read_video_tag;
use confab_media::h264::{self, escape_emulation, unescape_emulation};
use confab_media::{vp8, VideoCodec};

/// Marks the start of the 16-byte tag inside every synthetic payload.
pub const MAGIC: &[u8; 4] = b"CNFB";
/// Length of the tag: magic + counter + send time.
pub const TAG_LEN: usize = 16;

/// Width advertised in synthetic VP8 keyframes.
pub const VP8_WIDTH: u16 = 640;
/// Height advertised in synthetic VP8 keyframes.
pub const VP8_HEIGHT: u16 = 480;

/// Extra bytes appended to delta frames, so packets are not unrealistically tiny.
const DELTA_FILLER: usize = 48;
/// Extra bytes appended to keyframes (keyframes are bigger, as in real life).
const KEY_FILLER: usize = 200;

/// Opus TOC byte: config 31 (CELT-only, fullband, 20 ms), mono flag, code 0 (one frame).
pub const OPUS_TOC: u8 = 31 << 3;

/// H.264 SPS for Constrained Baseline level 3.1 (`profile-level-id=42e01f`), 640x480.
pub const H264_SPS: &[u8] = &[0x67, 0x42, 0xe0, 0x1f, 0xda, 0x05, 0x01, 0xec, 0x80];
/// H.264 PPS matching [`H264_SPS`] (CAVLC, deblocking control present).
pub const H264_PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];

/// NAL unit header of an IDR slice: F=0, NRI=3, type 5.
const NAL_IDR: u8 = 0x65;
/// NAL unit header of a non-IDR slice: F=0, NRI=2, type 1.
const NAL_NON_IDR: u8 = 0x41;
/// NAL unit header of a STAP-A aggregation packet: F=0, NRI=3, type 24.
const NAL_STAP_A: u8 = 0x78;

/// The codecs the harness can synthesise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// Opus audio, 48 kHz, one packet per 20 ms.
    Opus,
    /// VP8 or H.264 (packetization-mode=1) video, one packet per frame.
    Video(VideoCodec),
}

impl From<VideoCodec> for Codec {
    fn from(video: VideoCodec) -> Codec {
        Codec::Video(video)
    }
}

/// What a parser found in a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    /// The sender's frame counter (starts at 0 per stream).
    pub counter: u32,
    /// Whether the codec framing marks this as a keyframe (always `false` for Opus).
    pub keyframe: bool,
    /// When the sender produced the frame, in microseconds since the Unix epoch.
    pub sent_micros: u64,
}

/// Microseconds since the Unix epoch, the clock the tag's send time uses.
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// The 16-byte tag: magic, counter (BE), send time (BE).
pub fn tag(counter: u32, sent_micros: u64) -> [u8; TAG_LEN] {
    let mut out = [0u8; TAG_LEN];
    out[..4].copy_from_slice(MAGIC);
    out[4..8].copy_from_slice(&counter.to_be_bytes());
    out[8..16].copy_from_slice(&sent_micros.to_be_bytes());
    out
}

/// Finds the first tag in `buf` and returns `(counter, sent_micros)`.
pub fn find_tag(buf: &[u8]) -> Option<(u32, u64)> {
    let pos = buf.windows(MAGIC.len()).position(|w| w == MAGIC)?;
    let rest = buf.get(pos + MAGIC.len()..pos + TAG_LEN)?;
    let counter = u32::from_be_bytes(rest[..4].try_into().ok()?);
    let sent = u64::from_be_bytes(rest[4..12].try_into().ok()?);
    Some((counter, sent))
}

/// Filler that never contains the magic or long zero runs.
fn filler(len: usize, seed: u32) -> impl Iterator<Item = u8> {
    (0..len).map(move |i| 0x40u8.wrapping_add(((i as u32).wrapping_add(seed) % 23) as u8))
}

// ---------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------

/// A complete RTP payload for `codec`. `keyframe` is ignored for Opus.
pub fn payload(codec: Codec, counter: u32, keyframe: bool, sent_micros: u64) -> Vec<u8> {
    match codec {
        Codec::Opus => opus_payload(counter, sent_micros),
        Codec::Video(VideoCodec::Vp8) => vp8_payload(counter, keyframe, sent_micros),
        Codec::Video(VideoCodec::H264) => h264_payload(counter, keyframe, sent_micros),
    }
}

/// A VP8 RTP payload (RFC 7741) carrying one whole frame.
pub fn vp8_payload(counter: u32, keyframe: bool, sent_micros: u64) -> Vec<u8> {
    let filler_len = if keyframe { KEY_FILLER } else { DELTA_FILLER };
    // Everything after the uncompressed data chunk counts as the "first partition".
    let partition_size = (TAG_LEN + filler_len) as u32;

    let mut out = Vec::with_capacity(1 + 10 + TAG_LEN + filler_len);
    // Payload descriptor: X=0, R=0, N=0, S=1 (start of partition), PID=0.
    out.push(0x10);
    // Frame tag (RFC 6386 §9.1): size0(3) | show_frame(1) | version(3) | P(1).
    // P = 0 means keyframe ("inverse key frame flag").
    let p_bit = if keyframe { 0 } else { 1 };
    out.push((((partition_size & 0x7) as u8) << 5) | (1 << 4) | p_bit);
    out.push(((partition_size >> 3) & 0xff) as u8);
    out.push(((partition_size >> 11) & 0xff) as u8);
    if keyframe {
        out.extend_from_slice(&[0x9d, 0x01, 0x2a]);
        // 14-bit dimensions, little-endian, scaling bits zero.
        out.extend_from_slice(&(VP8_WIDTH & 0x3fff).to_le_bytes());
        out.extend_from_slice(&(VP8_HEIGHT & 0x3fff).to_le_bytes());
    }
    out.extend_from_slice(&tag(counter, sent_micros));
    out.extend(filler(filler_len, counter));
    out
}

/// An H.264 RTP payload (packetization-mode=1) carrying one whole frame: a single
/// non-IDR slice NAL, or for a keyframe a STAP-A with SPS, PPS and an IDR slice.
pub fn h264_payload(counter: u32, keyframe: bool, sent_micros: u64) -> Vec<u8> {
    if !keyframe {
        // first_mb_in_slice=0, slice_type=5 (P), pps_id=0 ... then the tag.
        let mut rbsp = vec![0x9a];
        rbsp.extend_from_slice(&tag(counter, sent_micros));
        rbsp.extend(filler(DELTA_FILLER, counter));
        rbsp.push(0x80); // rbsp_stop_one_bit + alignment
        let mut out = vec![NAL_NON_IDR];
        out.extend(escape_emulation(&rbsp));
        return out;
    }

    // first_mb_in_slice=0, slice_type=7 (I), pps_id=0, frame_num=0, idr_pic_id=0 ...
    let mut rbsp = vec![0x88, 0x84];
    rbsp.extend_from_slice(&tag(counter, sent_micros));
    rbsp.extend(filler(KEY_FILLER, counter));
    rbsp.push(0x80);
    let mut idr = vec![NAL_IDR];
    idr.extend(escape_emulation(&rbsp));

    let mut out = vec![NAL_STAP_A];
    for nal in [H264_SPS, H264_PPS, idr.as_slice()] {
        out.extend_from_slice(&(nal.len() as u16).to_be_bytes());
        out.extend_from_slice(nal);
    }
    out
}

/// An Opus RTP payload: TOC byte followed by the tag as the "frame".
pub fn opus_payload(counter: u32, sent_micros: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + TAG_LEN);
    out.push(OPUS_TOC);
    out.extend_from_slice(&tag(counter, sent_micros));
    out
}

// ---------------------------------------------------------------------------------------
// Parsers
// ---------------------------------------------------------------------------------------

/// Parses a payload of the given codec: a synthetic frame of this module or, for video,
/// a packet of [encoded video](self#encoded-video) that carries the load tester's tag.
/// `None` if it carries no tag.
pub fn parse_frame(codec: Codec, payload: &[u8]) -> Option<FrameInfo> {
    match codec {
        Codec::Opus => parse_opus(payload),
        Codec::Video(VideoCodec::Vp8) => {
            parse_vp8(payload).or_else(|| parse_encoded(codec, payload))
        }
        Codec::Video(VideoCodec::H264) => {
            parse_h264(payload).or_else(|| parse_encoded(codec, payload))
        }
    }
}

/// Parses one RTP packet of [encoded video](self#encoded-video): the load tester's tag if
/// this packet carries it (VP8: at the end of the frame's last packet; H.264: in an SEI
/// NAL unit, alone or in a STAP-A). `keyframe` says whether this very packet starts a
/// keyframe ([`starts_keyframe`]). `None` for Opus and for the untagged packets of a frame.
pub fn parse_encoded(codec: Codec, payload: &[u8]) -> Option<FrameInfo> {
    let tag = match codec {
        Codec::Opus => return None,
        Codec::Video(VideoCodec::Vp8) => {
            read_video_tag(VideoCodec::Vp8, vp8::strip_descriptor(payload)?)
        }
        Codec::Video(VideoCodec::H264) => h264::payload_nal_units(payload).find_map(|nal| {
            if h264::nal_type(nal)? != h264::NAL_SEI {
                return None;
            }
            let mut annex_b = vec![0, 0, 0, 1];
            annex_b.extend_from_slice(nal);
            read_video_tag(VideoCodec::H264, &annex_b)
        }),
    }?;
    Some(FrameInfo {
        counter: tag.counter,
        keyframe: starts_keyframe(codec, payload),
        sent_micros: tag.sent_micros,
    })
}

/// Whether this RTP payload starts a keyframe, tag or not: for VP8 the first packet of a
/// key frame (S=1, partition 0, P=0, start code), for H.264 a packet with an IDR slice or
/// the first FU-A fragment of one. Always `false` for Opus.
///
/// Stricter than the bridge's [`VideoCodec::starts_keyframe`], on purpose: an H.264
/// packet that carries only a keyframe's SPS/PPS does not count, so that a track's
/// `keyframes` count one packet per keyframe however the sender packetized it.
pub fn starts_keyframe(codec: Codec, payload: &[u8]) -> bool {
    match codec {
        Codec::Opus => false,
        Codec::Video(VideoCodec::Vp8) => vp8_starts_keyframe(payload),
        Codec::Video(VideoCodec::H264) => h264_starts_keyframe(payload),
    }
}

/// Whether a VP8 payload is the first packet of a keyframe, start code included.
fn vp8_starts_keyframe(payload: &[u8]) -> bool {
    vp8::starts_keyframe(payload)
        && vp8::strip_descriptor(payload).is_some_and(vp8::has_keyframe_header)
}

/// Whether an H.264 payload begins an IDR slice.
fn h264_starts_keyframe(payload: &[u8]) -> bool {
    h264::starting_nal_types(payload).any(|t| t == h264::NAL_IDR)
}

/// `(counter, keyframe)` of a payload of the given codec.
pub fn parse_counter(codec: Codec, payload: &[u8]) -> Option<(u32, bool)> {
    parse_frame(codec, payload).map(|f| (f.counter, f.keyframe))
}

/// `(counter, keyframe)` of a VP8 payload.
pub fn parse_vp8_counter(payload: &[u8]) -> Option<(u32, bool)> {
    parse_vp8(payload).map(|f| (f.counter, f.keyframe))
}

/// `(counter, keyframe)` of an H.264 payload.
pub fn parse_h264_counter(payload: &[u8]) -> Option<(u32, bool)> {
    parse_h264(payload).map(|f| (f.counter, f.keyframe))
}

/// Parses a VP8 RTP payload: skips the (possibly extended) payload descriptor, reads the
/// keyframe flag from the frame header and finds the tag.
pub fn parse_vp8(payload: &[u8]) -> Option<FrameInfo> {
    let frame = vp8::strip_descriptor(payload)?;
    let keyframe = vp8_starts_keyframe(payload);
    let (counter, sent_micros) = find_tag(frame)?;
    Some(FrameInfo {
        counter,
        keyframe,
        sent_micros,
    })
}

/// Parses an H.264 RTP payload (single NAL unit, STAP-A or the first FU-A fragment).
/// `keyframe` is true if an IDR slice (NAL type 5) is present.
pub fn parse_h264(payload: &[u8]) -> Option<FrameInfo> {
    let is_slice = |t: u8| t == h264::NAL_SLICE || t == h264::NAL_IDR;
    let (counter, sent_micros) = if h264::nal_type(payload)? == h264::FU_A {
        // [indicator][FU header][fragment]: the tag is in the fragment of a slice.
        let fu = *payload.get(1)?;
        if !is_slice(fu & 0x1f) {
            return None;
        }
        find_tag(&unescape_emulation(payload.get(2..)?))?
    } else {
        h264::payload_nal_units(payload)
            .filter(|nal| h264::nal_type(nal).is_some_and(is_slice))
            .find_map(|nal| find_tag(&unescape_emulation(&nal[1..])))?
    };
    Some(FrameInfo {
        counter,
        keyframe: h264_starts_keyframe(payload),
        sent_micros,
    })
}

/// Parses an Opus payload produced by [`opus_payload`]. Never a keyframe.
pub fn parse_opus(payload: &[u8]) -> Option<FrameInfo> {
    let (counter, sent_micros) = find_tag(payload.get(1..)?)?;
    Some(FrameInfo {
        counter,
        keyframe: false,
        sent_micros,
    })
}
