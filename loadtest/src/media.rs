//! The synthetic media publishers send, and the tag receivers read back.
//!
//! Video is real, decodable VP8 (libvpx through vpx-encode) or H.264
//! (OpenH264) of a moving picture, encoded once at start-up into a clip of
//! [`CLIP_SECONDS`] that every publisher loops: the clip starts with a
//! keyframe, so a loop restart (at the end, or on a keyframe request) is a
//! valid place to resume decoding. With simulcast the clip has three layers
//! (`q` quarter, `h` half, `f` full resolution), frame-aligned.
//!
//! Every frame sent carries a 16-byte *tag*: a frame counter (`u32`, per
//! track), the send time (`u64` microseconds since the Unix epoch) and the
//! magic [`TAG_MAGIC`], all big-endian. Where it lives, per codec:
//!
//! * **VP8**: a trailer after the frame's last partition; the receiver
//!   reads and strips the last 16 bytes (a decoder ignores bytes past the
//!   partitions the frame header declares).
//! * **H.264**: an SEI NAL unit (`user_data_unregistered`, payload type 5,
//!   UUID [`SEI_UUID`]) placed before the frame's first slice, with
//!   emulation-prevention bytes, as encoders place their own SEI.
//! * **Opus**: a fixed valid Opus packet — the usual 20 ms CELT silence
//!   frame (`ff fe`) in a code-3 packet (RFC 6716 §3.2.5) whose padding
//!   carries the tag. Audio is not encoded from a signal: a load test needs
//!   the packet rate and size of a call, not the sound.
//!
//! Tags are read after the bridge forwarded the frame, so latency is
//! end to end (publisher write to receiver depacketization) on one clock:
//! run publishers and receivers on the same host, as this tool does.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use confab_media::h264::{self, escape_emulation, unescape_emulation};
use confab_media::VideoCodec;

/// Marks a tag (the last four bytes of it).
pub const TAG_MAGIC: [u8; 4] = *b"CFLT";
/// Bytes of a tag.
pub const TAG_LEN: usize = 16;
/// Identifies Confab's SEI message (a version 4 UUID made for this tool).
pub const SEI_UUID: [u8; 16] = [
    0x6c, 0x6f, 0x61, 0x64, 0x74, 0x65, 0x73, 0x74, 0x4a, 0x8e, 0x41, 0x7b, 0x9c, 0x35, 0x2f, 0x01,
];
/// Length of the looped video clip.
pub const CLIP_SECONDS: u32 = 3;

/// The tag a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag {
    /// The publisher's frame counter for this track.
    pub counter: u32,
    /// When the publisher wrote the frame, µs since the Unix epoch.
    pub sent_micros: u64,
}

impl Tag {
    fn bytes(&self) -> [u8; TAG_LEN] {
        let mut out = [0u8; TAG_LEN];
        out[..4].copy_from_slice(&self.counter.to_be_bytes());
        out[4..12].copy_from_slice(&self.sent_micros.to_be_bytes());
        out[12..].copy_from_slice(&TAG_MAGIC);
        out
    }

    fn from_bytes(b: &[u8]) -> Option<Tag> {
        if b.len() != TAG_LEN || b[12..] != TAG_MAGIC {
            return None;
        }
        Some(Tag {
            counter: u32::from_be_bytes(b[..4].try_into().ok()?),
            sent_micros: u64::from_be_bytes(b[4..12].try_into().ok()?),
        })
    }
}

/// Microseconds since the Unix epoch: the clock of the tags.
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// One encoded frame of a clip.
#[derive(Debug, Clone)]
pub struct EncodedFrame {
    /// The codec's bitstream for one frame (H.264: Annex B).
    pub data: Arc<[u8]>,
    /// Whether the encoder made a keyframe.
    pub keyframe: bool,
}

/// One resolution of a clip.
#[derive(Debug, Clone)]
pub struct ClipLayer {
    /// The simulcast rid (`q`, `h`, `f`), or `None` without simulcast.
    pub rid: Option<&'static str>,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The frames, the first a keyframe.
    pub frames: Vec<EncodedFrame>,
}

/// What to encode.
#[derive(Debug, Clone, Copy)]
pub struct ClipSpec {
    /// The codec.
    pub codec: VideoCodec,
    /// Width of the top layer.
    pub width: u32,
    /// Height of the top layer.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Target bitrate of the top layer, kbit/s (lower layers get a quarter
    /// and a sixteenth).
    pub kbps: u32,
    /// Three layers instead of one.
    pub simulcast: bool,
    /// Varies the picture.
    pub seed: u64,
}

/// The pre-encoded video every publisher loops.
#[derive(Debug, Clone)]
pub struct VideoClip {
    /// Its codec.
    pub codec: VideoCodec,
    /// Frames per second.
    pub fps: u32,
    /// Its layers, lowest first (one without simulcast).
    pub layers: Vec<ClipLayer>,
}

/// Why a clip could not be made.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// Width and height must be multiples of 8 and at least 64.
    #[error("resolution {0}x{1} is not usable (multiples of 8, at least 64x64)")]
    Resolution(u32, u32),
    /// The encoder failed.
    #[error("{codec:?} encoder: {message}")]
    Encoder {
        /// Which codec.
        codec: VideoCodec,
        /// Its message.
        message: String,
    },
    /// The encoder's first frame is not a keyframe.
    #[error("the encoder's first frame is not a keyframe")]
    NoKeyframe,
}

impl VideoClip {
    /// Encodes the clip. Takes a second or two; done once per run.
    pub fn encode(spec: &ClipSpec) -> Result<VideoClip, MediaError> {
        if spec.width < 64
            || spec.height < 64
            || !spec.width.is_multiple_of(8)
            || !spec.height.is_multiple_of(8)
        {
            return Err(MediaError::Resolution(spec.width, spec.height));
        }
        let fps = spec.fps.clamp(1, 60);
        let frames = (CLIP_SECONDS * fps) as usize;
        let layers: Vec<(Option<&'static str>, u32, u32)> = if spec.simulcast {
            vec![(Some("q"), 4, 16), (Some("h"), 2, 4), (Some("f"), 1, 1)]
        } else {
            vec![(None, 1, 1)]
        };
        let mut out = Vec::new();
        for (rid, scale, rate_div) in layers {
            // Sizes stay even (I420) and a multiple of 2 after scaling.
            let (w, h) = ((spec.width / scale) & !1, (spec.height / scale) & !1);
            let kbps = (spec.kbps / rate_div).max(30);
            let pictures = (0..frames).map(|i| picture(w, h, i as u32, spec.seed));
            let encoded = match spec.codec {
                VideoCodec::Vp8 => encode_vp8(w, h, fps, kbps, pictures)?,
                VideoCodec::H264 => encode_h264(w, h, fps, kbps, pictures)?,
            };
            if !encoded.first().is_some_and(|f| f.keyframe) {
                return Err(MediaError::NoKeyframe);
            }
            out.push(ClipLayer {
                rid,
                width: w,
                height: h,
                frames: encoded,
            });
        }
        Ok(VideoClip {
            codec: spec.codec,
            fps,
            layers: out,
        })
    }

    /// Frames per loop (the same in every layer).
    pub fn len(&self) -> usize {
        self.layers
            .iter()
            .map(|l| l.frames.len())
            .min()
            .unwrap_or(0)
    }

    /// Whether the clip has no frames.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A moving picture in I420: a diagonal gradient that scrolls, and a bright
/// square that crosses the frame. `seed` shifts colours and start position.
fn picture(w: u32, h: u32, i: u32, seed: u64) -> Vec<u8> {
    let (w, h) = (w as usize, h as usize);
    let mut yuv = vec![0u8; w * h * 3 / 2];
    let shift = (i as usize * 4) + (seed as usize % 97);
    let side = (h / 4).max(8);
    let sx = (i as usize * 7 + seed as usize * 13) % (w.saturating_sub(side).max(1));
    let sy = (i as usize * 3 + seed as usize * 5) % (h.saturating_sub(side).max(1));
    let (y_plane, uv) = yuv.split_at_mut(w * h);
    for y in 0..h {
        for x in 0..w {
            let inside = x >= sx && x < sx + side && y >= sy && y < sy + side;
            y_plane[y * w + x] = if inside {
                235
            } else {
                (((x + y + shift) * 255) / (w + h)) as u8 / 2 + 40
            };
        }
    }
    let (u_plane, v_plane) = uv.split_at_mut(w * h / 4);
    for (j, (u, v)) in u_plane.iter_mut().zip(v_plane.iter_mut()).enumerate() {
        *u = (96 + (j / (w / 2) + (seed as usize % 64)) % 64) as u8;
        *v = (128 + (j % (w / 2) + i as usize) % 64) as u8;
    }
    yuv
}

fn encode_vp8(
    w: u32,
    h: u32,
    fps: u32,
    kbps: u32,
    pictures: impl Iterator<Item = Vec<u8>>,
) -> Result<Vec<EncodedFrame>, MediaError> {
    let err = |e: vpx_encode::Error| MediaError::Encoder {
        codec: VideoCodec::Vp8,
        message: e.to_string(),
    };
    let mut enc = vpx_encode::Encoder::new(vpx_encode::Config {
        width: w,
        height: h,
        timebase: [1, fps as i32],
        bitrate: kbps,
        codec: vpx_encode::VideoCodecId::VP8,
    })
    .map_err(err)?;
    let frame = |f: vpx_encode::Frame| EncodedFrame {
        data: f.data.into(),
        keyframe: f.key,
    };
    let mut frames = Vec::new();
    for (pts, yuv) in pictures.enumerate() {
        frames.extend(enc.encode(pts as i64, &yuv).map_err(err)?.map(frame));
    }
    let mut rest = enc.finish().map_err(err)?;
    while let Some(f) = rest.next().map_err(err)? {
        frames.push(frame(f));
    }
    Ok(frames)
}

fn encode_h264(
    w: u32,
    h: u32,
    fps: u32,
    kbps: u32,
    pictures: impl Iterator<Item = Vec<u8>>,
) -> Result<Vec<EncodedFrame>, MediaError> {
    use openh264::encoder::{BitRate, Encoder, EncoderConfig, FrameRate, FrameType, Profile};
    let err = |e: openh264::Error| MediaError::Encoder {
        codec: VideoCodec::H264,
        message: e.to_string(),
    };
    let config = EncoderConfig::new()
        .bitrate(BitRate::from_bps(kbps * 1000))
        .max_frame_rate(FrameRate::from_hz(fps as f32))
        .skip_frames(false)
        .profile(Profile::Baseline);
    let mut enc =
        Encoder::with_api_config(openh264::OpenH264API::from_source(), config).map_err(err)?;
    let mut frames = Vec::new();
    for yuv in pictures {
        let buf = openh264::formats::YUVBuffer::from_vec(yuv, w as usize, h as usize);
        let bits = enc.encode(&buf).map_err(err)?;
        let data = bits.to_vec();
        if data.is_empty() {
            continue;
        }
        frames.push(EncodedFrame {
            keyframe: matches!(bits.frame_type(), FrameType::IDR | FrameType::I),
            data: data.into(),
        });
    }
    Ok(frames)
}

/// The frame as sent: `frame` with `tag` embedded as the module docs say.
pub fn tag_video(codec: VideoCodec, frame: &[u8], tag: Tag) -> Vec<u8> {
    match codec {
        VideoCodec::Vp8 => {
            let mut out = Vec::with_capacity(frame.len() + TAG_LEN);
            out.extend_from_slice(frame);
            out.extend_from_slice(&tag.bytes());
            out
        }
        VideoCodec::H264 => {
            let mut sei = vec![0, 0, 0, 1, 0x06];
            let mut body = vec![5u8, (SEI_UUID.len() + 12) as u8];
            body.extend_from_slice(&SEI_UUID);
            body.extend_from_slice(&tag.bytes()[..12]);
            body.push(0x80); // rbsp_trailing_bits
            sei.extend(escape_emulation(&body));
            // Before the first slice, where encoders put their own SEI.
            let at = h264::annex_b_nal_units(frame)
                .find(|(_, nal)| {
                    matches!(h264::nal_type(nal), Some(h264::NAL_SLICE | h264::NAL_IDR))
                })
                .map_or(frame.len(), |(at, _)| at);
            let mut out = Vec::with_capacity(frame.len() + sei.len());
            out.extend_from_slice(&frame[..at]);
            out.extend_from_slice(&sei);
            out.extend_from_slice(&frame[at..]);
            out
        }
    }
}

/// The tag of a received video frame (as depacketized), if it has one.
pub fn read_video_tag(codec: VideoCodec, frame: &[u8]) -> Option<Tag> {
    match codec {
        VideoCodec::Vp8 => Tag::from_bytes(frame.get(frame.len().checked_sub(TAG_LEN)?..)?),
        VideoCodec::H264 => h264::annex_b_nal_units(frame).find_map(|(_, nal)| {
            if h264::nal_type(nal)? != h264::NAL_SEI {
                return None;
            }
            let body = unescape_emulation(nal.get(1..)?);
            // payloadType 5, payloadSize 28, UUID, counter, time.
            if body.first() != Some(&5) || body.get(1) != Some(&28) || body.get(2..18)? != SEI_UUID
            {
                return None;
            }
            let mut tag = body.get(18..30)?.to_vec();
            tag.extend_from_slice(&TAG_MAGIC);
            Tag::from_bytes(&tag)
        }),
    }
}

/// A 20 ms Opus packet carrying `tag` (see the module docs).
pub fn opus_packet(tag: Tag) -> Vec<u8> {
    // TOC: config 31 (CELT-only, fullband, 20 ms), mono, code 3; then the
    // frame count byte (CBR, padding present, one frame), the padding
    // length, the silence frame, and the padding.
    let mut out = vec![0xf8 | 3, 0x41, TAG_LEN as u8, 0xff, 0xfe];
    out.extend_from_slice(&tag.bytes());
    out
}

/// The tag of a received Opus packet from [`opus_packet`].
pub fn read_audio_tag(packet: &[u8]) -> Option<Tag> {
    Tag::from_bytes(packet.get(packet.len().checked_sub(TAG_LEN)?..)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(codec: VideoCodec, simulcast: bool) -> ClipSpec {
        ClipSpec {
            codec,
            width: 320,
            height: 240,
            fps: 10,
            kbps: 300,
            simulcast,
            seed: 7,
        }
    }

    #[test]
    fn tags_survive_every_codec_including_zero_bytes_that_need_escaping() {
        let tags = [
            Tag {
                counter: 0,
                sent_micros: 0,
            },
            Tag {
                counter: 1,
                sent_micros: 0x0000_0100_0000_0003,
            },
            Tag {
                counter: u32::MAX,
                sent_micros: u64::MAX,
            },
        ];
        for codec in [VideoCodec::Vp8, VideoCodec::H264] {
            let clip = VideoClip::encode(&spec(codec, false)).expect("encodes");
            assert_eq!(clip.len(), 30, "{codec:?}: three seconds at 10 fps");
            assert!(clip.layers[0].frames[0].keyframe);
            for tag in tags {
                for frame in &clip.layers[0].frames[..3] {
                    let sent = tag_video(codec, &frame.data, tag);
                    assert_eq!(read_video_tag(codec, &sent), Some(tag), "{codec:?}");
                }
            }
            assert_eq!(
                read_video_tag(codec, &clip.layers[0].frames[1].data),
                None,
                "untagged"
            );
        }
        for tag in tags {
            assert_eq!(read_audio_tag(&opus_packet(tag)), Some(tag));
        }
    }

    #[test]
    fn the_h264_tag_is_an_sei_before_the_first_slice() {
        let clip = VideoClip::encode(&spec(VideoCodec::H264, false)).expect("encodes");
        let sent = tag_video(
            VideoCodec::H264,
            &clip.layers[0].frames[0].data,
            Tag {
                counter: 9,
                sent_micros: 5,
            },
        );
        let types: Vec<u8> = h264::annex_b_nal_units(&sent)
            .filter_map(|(_, n)| h264::nal_type(n))
            .collect();
        let sei = types.iter().position(|&t| t == 6).expect("an SEI");
        let slice = types.iter().position(|&t| t == 5).expect("an IDR slice");
        assert!(types.starts_with(&[7, 8]), "SPS and PPS first: {types:?}");
        assert!(sei < slice, "{types:?}");
    }

    #[test]
    fn simulcast_clips_have_three_aligned_layers() {
        let clip = VideoClip::encode(&spec(VideoCodec::Vp8, true)).expect("encodes");
        let sizes: Vec<_> = clip
            .layers
            .iter()
            .map(|l| (l.rid, l.width, l.height))
            .collect();
        assert_eq!(
            sizes,
            [
                (Some("q"), 80, 60),
                (Some("h"), 160, 120),
                (Some("f"), 320, 240)
            ]
        );
        assert!(clip
            .layers
            .iter()
            .all(|l| l.frames.len() == 30 && l.frames[0].keyframe));
    }
}
