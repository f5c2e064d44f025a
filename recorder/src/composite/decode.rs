//! Decoding participants' video: VP8 with libvpx, H.264 with openh264.

use std::ptr;

use confab_media::h264;
use openh264::formats::YUVSource;
use sfu::str0m::format::Codec;
use vpx_sys as vpx;

use super::picture::Picture;
use crate::frame::Frame;

/// Largest picture side accepted from a publisher; beyond it the frame is
/// dropped rather than composited.
const MAX_SIDE: u32 = 4096;

/// Why a frame did not decode.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The codec refused the frame (corrupt, or missing its references).
    #[error("{0}")]
    Codec(String),
    /// The decoder could not be made.
    #[error("decoder: {0}")]
    Init(String),
}

/// A video decoder of one participant's track.
pub enum VideoDecoder {
    /// libvpx.
    Vp8(Vp8Decoder),
    /// openh264.
    H264(Box<openh264::decoder::Decoder>),
}

impl VideoDecoder {
    /// A decoder for `codec` (VP8 or H.264).
    pub fn new(codec: Codec) -> Result<VideoDecoder, DecodeError> {
        match codec {
            Codec::Vp8 => Ok(VideoDecoder::Vp8(Vp8Decoder::new()?)),
            Codec::H264 => {
                let d = openh264::decoder::Decoder::with_api_config(
                    openh264::OpenH264API::from_source(),
                    openh264::decoder::DecoderConfig::new(),
                )
                .map_err(|e| DecodeError::Init(e.to_string()))?;
                Ok(VideoDecoder::H264(Box::new(d)))
            }
            other => Err(DecodeError::Init(format!("no decoder for {other}"))),
        }
    }

    /// Decode one frame (VP8, or an AVC-format H.264 access unit). `None`
    /// when the decoder gives no picture for it yet.
    pub fn decode(&mut self, frame: &Frame) -> Result<Option<Picture>, DecodeError> {
        match self {
            VideoDecoder::Vp8(d) => d.decode(&frame.data),
            VideoDecoder::H264(d) => {
                let annex_b = avc_to_annex_b(&frame.data);
                let yuv = d
                    .decode(&annex_b)
                    .map_err(|e| DecodeError::Codec(e.to_string()))?;
                Ok(yuv.and_then(|yuv| {
                    let (w, h) = yuv.dimensions();
                    let (ys, us, vs) = yuv.strides();
                    picture(
                        w as u32,
                        h as u32,
                        [(yuv.y(), ys), (yuv.u(), us), (yuv.v(), vs)],
                    )
                }))
            }
        }
    }
}

fn picture(w: u32, h: u32, planes: [(&[u8], usize); 3]) -> Option<Picture> {
    if w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE {
        return None;
    }
    Picture::from_planes(w, h, planes)
}

/// AVC (length-prefixed) NAL units to an Annex B byte stream.
pub fn avc_to_annex_b(au: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(au.len() + 16);
    for nal in h264::avc_nal_units(au) {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
    }
    out
}

/// An Annex B byte stream to AVC (length-prefixed) NAL units.
pub fn annex_b_to_avc(stream: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(stream.len() + 16);
    for nal in openh264::nal_units(stream) {
        let start = nal.iter().position(|&b| b == 1).map_or(0, |i| i + 1);
        let body = &nal[start..];
        if body.is_empty() {
            continue;
        }
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(body);
    }
    out
}

/// libvpx's VP8 decoder. The `vpx-encode` crate wraps only the encoder,
/// and no maintained crate wraps the decoder, so this calls libvpx's
/// decoding API (vpx/vpx_decoder.h) directly through `env-libvpx-sys`.
pub struct Vp8Decoder {
    ctx: vpx::vpx_codec_ctx_t,
}

impl Vp8Decoder {
    /// A VP8 decoder on one thread.
    pub fn new() -> Result<Vp8Decoder, DecodeError> {
        // SAFETY: a zeroed context is what vpx_codec_dec_init_ver expects
        // to initialise; the interface pointer is libvpx's static VP8
        // decoder; the config outlives the call.
        unsafe {
            let mut ctx: vpx::vpx_codec_ctx_t = std::mem::zeroed();
            let cfg = vpx::vpx_codec_dec_cfg_t {
                threads: 1,
                w: 0,
                h: 0,
            };
            let rc = vpx::vpx_codec_dec_init_ver(
                &mut ctx,
                vpx::vpx_codec_vp8_dx(),
                &cfg,
                0,
                vpx::VPX_DECODER_ABI_VERSION as i32,
            );
            if rc != vpx::vpx_codec_err_t::VPX_CODEC_OK {
                return Err(DecodeError::Init(format!(
                    "libvpx VP8 decoder: error {rc:?}"
                )));
            }
            Ok(Vp8Decoder { ctx })
        }
    }

    fn decode(&mut self, data: &[u8]) -> Result<Option<Picture>, DecodeError> {
        let len =
            u32::try_from(data.len()).map_err(|_| DecodeError::Codec("frame too large".into()))?;
        if len == 0 {
            return Ok(None);
        }
        // SAFETY: the context was initialised in `new` and is used by one
        // thread at a time (`&mut self`); `data` outlives the call.
        let rc =
            unsafe { vpx::vpx_codec_decode(&mut self.ctx, data.as_ptr(), len, ptr::null_mut(), 0) };
        if rc != vpx::vpx_codec_err_t::VPX_CODEC_OK {
            return Err(DecodeError::Codec(format!("libvpx: error {rc:?}")));
        }
        let mut iter: vpx::vpx_codec_iter_t = ptr::null();
        let mut last = None;
        loop {
            // SAFETY: as above; the image returned stays valid until the
            // next decode call, and is copied out before that.
            let img = unsafe { vpx::vpx_codec_get_frame(&mut self.ctx, &mut iter) };
            if img.is_null() {
                break;
            }
            // SAFETY: libvpx returned a non-null image of its own.
            let img = unsafe { &*img };
            if img.fmt != vpx::vpx_img_fmt::VPX_IMG_FMT_I420 {
                continue;
            }
            let (w, h) = (img.d_w, img.d_h);
            let ch = h.div_ceil(2) as usize;
            let plane = |i: usize, rows: usize| {
                let stride = usize::try_from(img.stride[i]).unwrap_or(0);
                // SAFETY: libvpx's plane i holds `rows` rows of `stride` bytes.
                unsafe { std::slice::from_raw_parts(img.planes[i], stride * rows) }
            };
            let strides = [0, 1, 2].map(|i| usize::try_from(img.stride[i]).unwrap_or(0));
            if strides.contains(&0) || img.planes.iter().take(3).any(|p| p.is_null()) {
                continue;
            }
            last = picture(
                w,
                h,
                [
                    (plane(0, h as usize), strides[0]),
                    (plane(1, ch), strides[1]),
                    (plane(2, ch), strides[2]),
                ],
            );
        }
        Ok(last)
    }
}

impl Drop for Vp8Decoder {
    fn drop(&mut self) {
        // SAFETY: the context was initialised in `new` and is not used after.
        unsafe {
            vpx::vpx_codec_destroy(&mut self.ctx);
        }
    }
}
