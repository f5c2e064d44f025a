//! Encoding the composite: H.264 with openh264 (for MP4) or VP8 with
//! libvpx through `vpx-encode` (for WebM).

use openh264::encoder::{
    BitRate, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, Profile,
};

use super::decode::annex_b_to_avc;
use super::picture::Picture;
use super::OutputCodec;
use crate::frame::Frame;
use crate::RecordError;

/// Seconds between keyframes of the composite, so players can seek.
const KEYFRAME_SECONDS: u32 = 2;

/// The composite's video encoder.
pub enum VideoEncoder {
    /// openh264; frames come out as AVC (length-prefixed) access units.
    H264(Box<Encoder>),
    /// libvpx.
    Vp8(vpx_encode::Encoder),
}

fn err(e: impl std::fmt::Display) -> RecordError {
    RecordError::Mux(format!("encoder: {e}"))
}

impl VideoEncoder {
    /// An encoder of `width` x `height` pictures at `fps`, aiming at `kbps`.
    pub fn new(
        codec: OutputCodec,
        width: u32,
        height: u32,
        fps: u32,
        kbps: u32,
    ) -> Result<VideoEncoder, RecordError> {
        match codec {
            OutputCodec::H264 => {
                let config = EncoderConfig::new()
                    .bitrate(BitRate::from_bps(kbps.saturating_mul(1000)))
                    .max_frame_rate(FrameRate::from_hz(fps as f32))
                    .skip_frames(false)
                    .intra_frame_period(IntraFramePeriod::from_num_frames(fps * KEYFRAME_SECONDS))
                    .profile(Profile::Baseline);
                let enc = Encoder::with_api_config(openh264::OpenH264API::from_source(), config)
                    .map_err(err)?;
                Ok(VideoEncoder::H264(Box::new(enc)))
            }
            OutputCodec::Vp8 => {
                let enc = vpx_encode::Encoder::new(vpx_encode::Config {
                    width,
                    height,
                    timebase: [1, fps as i32],
                    bitrate: kbps,
                    codec: vpx_encode::VideoCodecId::VP8,
                })
                .map_err(err)?;
                Ok(VideoEncoder::Vp8(enc))
            }
        }
    }

    /// Encode picture number `index`; `rtp_time` of the frames given out
    /// is the index.
    pub fn encode(&mut self, picture: &Picture, index: u64) -> Result<Vec<Frame>, RecordError> {
        match self {
            VideoEncoder::H264(enc) => {
                let bits = enc.encode(picture).map_err(err)?;
                let keyframe = matches!(bits.frame_type(), FrameType::IDR | FrameType::I);
                let data = annex_b_to_avc(&bits.to_vec());
                Ok(if data.is_empty() {
                    Vec::new()
                } else {
                    vec![Frame {
                        data,
                        rtp_time: index,
                        keyframe,
                    }]
                })
            }
            VideoEncoder::Vp8(enc) => {
                let pts = i64::try_from(index).unwrap_or(i64::MAX);
                let packets = enc.encode(pts, picture.data()).map_err(err)?;
                Ok(packets
                    .map(|f| Frame {
                        data: f.data.to_vec(),
                        rtp_time: u64::try_from(f.pts).unwrap_or(index),
                        keyframe: f.key,
                    })
                    .collect())
            }
        }
    }
}
