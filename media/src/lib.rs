//! # confab-media — the video codecs, read one way everywhere
//!
//! The few rules of the VP8 and H.264 bitstreams that Confab's bridge,
//! recorder, load tester and test kit all need, kept in one place so that
//! they cannot disagree:
//! - [`VideoCodec`]: the video codecs Confab carries, and their names;
//! - [`vp8`]: the RTP payload descriptor (RFC 7741 §4.2), keyframes of an
//!   RTP payload (RFC 7741 §4.3) and of a frame, a keyframe's size
//!   (RFC 6386 §9.1);
//! - [`h264`]: NAL unit types and emulation prevention (ITU-T H.264
//!   §7.3.1, §7.4.1), the NAL units of an Annex B byte stream (Annex B),
//!   of an AVC access unit (4-byte lengths) and of an RTP payload
//!   (RFC 6184 §5.6-5.8), keyframes, an SPS's picture size (§7.3.2.1.1).
//!
//! Data enters as byte slices (an RTP payload, a depacketized frame, an
//! access unit, a NAL unit) and leaves as parts of them, flags and
//! numbers. Nothing trusts its input: what is too short or malformed to
//! tell answers `false` or `None`, never a panic.
//!
//! Not for: packetizing or depacketizing RTP (str0m and webrtc-rs do
//! that), encoding or decoding pictures (libvpx, OpenH264), containers,
//! audio, I/O or state of any kind. No dependencies.

use std::fmt;
use std::str::FromStr;

pub mod h264;
pub mod vp8;

/// A video codec Confab carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    /// VP8: RTP payloads per RFC 7741, the bitstream per RFC 6386.
    Vp8,
    /// H.264: RTP payloads per RFC 6184 (packetization-mode 1), the
    /// bitstream per ITU-T H.264 (constrained baseline in Confab).
    H264,
}

impl VideoCodec {
    /// Every codec, in the order options list them.
    pub const ALL: [VideoCodec; 2] = [VideoCodec::Vp8, VideoCodec::H264];

    /// The lower-case name (`vp8`, `h264`): the SDP encoding name, and
    /// how options and files name the codec. [`FromStr`] reads it back.
    pub fn name(self) -> &'static str {
        match self {
            VideoCodec::Vp8 => "vp8",
            VideoCodec::H264 => "h264",
        }
    }

    /// Whether an RTP payload of this codec starts a keyframe, where a
    /// decoder (a new subscriber, a recording) can begin:
    /// [`vp8::starts_keyframe`], [`h264::starts_keyframe`].
    pub fn starts_keyframe(self, payload: &[u8]) -> bool {
        match self {
            VideoCodec::Vp8 => vp8::starts_keyframe(payload),
            VideoCodec::H264 => h264::starts_keyframe(payload),
        }
    }
}

impl fmt::Display for VideoCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A codec name that is not one of [`VideoCodec::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCodec(pub String);

impl fmt::Display for UnknownCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown video codec {:?} (vp8 or h264)", self.0)
    }
}

impl std::error::Error for UnknownCodec {}

/// For callers whose errors are messages (configuration checks).
impl From<UnknownCodec> for String {
    fn from(e: UnknownCodec) -> String {
        e.to_string()
    }
}

impl FromStr for VideoCodec {
    type Err = UnknownCodec;

    /// A [`VideoCodec::name`], in any case; `h.264` too.
    fn from_str(s: &str) -> Result<VideoCodec, UnknownCodec> {
        match s.to_ascii_lowercase().as_str() {
            "vp8" => Ok(VideoCodec::Vp8),
            "h264" | "h.264" => Ok(VideoCodec::H264),
            _ => Err(UnknownCodec(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back() {
        for codec in VideoCodec::ALL {
            assert_eq!(codec.name().parse(), Ok(codec));
            assert_eq!(codec.to_string(), codec.name());
        }
        assert_eq!("H.264".parse(), Ok(VideoCodec::H264));
        assert_eq!("VP8".parse(), Ok(VideoCodec::Vp8));
        let err = "av1".parse::<VideoCodec>().unwrap_err();
        assert!(String::from(err).contains("codec"));
    }

    #[test]
    fn vp8_keyframe_and_delta_frame() {
        // S=1, PID=0, then a payload header with P=0 (keyframe).
        assert!(VideoCodec::Vp8.starts_keyframe(&[0x10, 0x00, 0, 0]));
        // P=1: an interframe.
        assert!(!VideoCodec::Vp8.starts_keyframe(&[0x10, 0x01, 0, 0]));
        // Not the start of a partition.
        assert!(!VideoCodec::Vp8.starts_keyframe(&[0x00, 0x00]));
        // Extended descriptor with a 15-bit picture id.
        assert!(VideoCodec::Vp8.starts_keyframe(&[0x90, 0x80, 0x81, 0x23, 0x00]));
        assert!(!VideoCodec::Vp8.starts_keyframe(&[0x90, 0x80, 0x81]));
        assert!(!VideoCodec::Vp8.starts_keyframe(&[]));
    }

    #[test]
    fn h264_keyframe_forms() {
        assert!(VideoCodec::H264.starts_keyframe(&[0x65, 0x88]));
        assert!(!VideoCodec::H264.starts_keyframe(&[0x41, 0x9a]));
        // STAP-A holding SPS.
        assert!(VideoCodec::H264.starts_keyframe(&[0x18, 0x00, 0x02, 0x67, 0x42]));
        // STAP-A with a lying length never reads out of bounds.
        assert!(!VideoCodec::H264.starts_keyframe(&[0x18, 0xff, 0xff]));
        // FU-A start of an IDR, and a middle fragment.
        assert!(VideoCodec::H264.starts_keyframe(&[0x7c, 0x85, 0x00]));
        assert!(!VideoCodec::H264.starts_keyframe(&[0x7c, 0x05, 0x00]));
    }
}
