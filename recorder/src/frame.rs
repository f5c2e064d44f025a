//! From RTP packets to whole media frames, per track.
//!
//! Video packets of one frame share an RTP timestamp and the last carries
//! the marker bit; str0m's depacketizers (RFC 7741 VP8, RFC 6184 H.264)
//! turn them into one frame. A missing packet (a gap in sequence numbers)
//! spoils the frame it belongs to and every frame after it up to the next
//! keyframe, since they reference what was lost: those are dropped and the
//! caller is told to ask the publisher for a keyframe. Opus packets are
//! frames as they are.

use confab_media::{h264, vp8};
use str0m::format::{Codec, CodecExtra};
use str0m::unversioned::{Depacketizer, H264Depacketizer, Vp8Depacketizer};

/// Largest frame assembled (a 4K keyframe fits); beyond it the frame is
/// dropped, so a publisher cannot make the recorder buffer without bound.
const MAX_FRAME_BYTES: usize = 4 << 20;

/// One whole frame of a track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The codec's bitstream: a VP8 frame, an H.264 access unit as
    /// length-prefixed NAL units (AVC format), or an Opus packet.
    pub data: Vec<u8>,
    /// Extended (rollover-free) RTP timestamp.
    pub rtp_time: u64,
    /// A keyframe (always true for audio).
    pub keyframe: bool,
}

/// What one packet did to the assembler.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Assembled {
    /// A frame completed.
    pub frame: Option<Frame>,
    /// A packet was lost: ask the publisher for a keyframe.
    pub need_keyframe: bool,
}

/// Assembles the frames of one track.
#[derive(Debug)]
pub struct FrameAssembler {
    codec: Codec,
    /// Unwraps 32-bit RTP timestamps.
    last_rtp: Option<(u32, u64)>,
    /// Next expected sequence number.
    next_seq: Option<u64>,
    /// Packets of the frame being assembled (its RTP time).
    pending: Vec<Vec<u8>>,
    pending_time: Option<u64>,
    pending_bytes: usize,
    /// After a loss: drop everything until a keyframe.
    broken: bool,
}

impl FrameAssembler {
    /// An assembler for `codec` (Opus, VP8 or H.264; others yield nothing).
    pub fn new(codec: Codec) -> FrameAssembler {
        FrameAssembler {
            codec,
            last_rtp: None,
            next_seq: None,
            pending: Vec::new(),
            pending_time: None,
            pending_bytes: 0,
            // Recording starts on a keyframe.
            broken: codec.is_video(),
        }
    }

    /// Whether frames are being dropped until the next keyframe.
    pub fn waiting_for_keyframe(&self) -> bool {
        self.broken
    }

    /// Take one RTP packet (its extended sequence number, RTP timestamp,
    /// marker bit and payload).
    pub fn push(
        &mut self,
        seq_no: u64,
        rtp_timestamp: u32,
        marker: bool,
        payload: &[u8],
    ) -> Assembled {
        let rtp_time = self.unwrap_time(rtp_timestamp);
        let mut out = Assembled::default();
        match self.next_seq {
            // Late or duplicate (a retransmission after the frame went).
            Some(next) if seq_no < next => return out,
            Some(next) if seq_no > next && self.codec.is_video() => {
                self.clear();
                out.need_keyframe |= !self.broken;
                self.broken = true;
            }
            _ => {}
        }
        self.next_seq = Some(seq_no + 1);

        if self.codec == Codec::Opus {
            if !payload.is_empty() {
                out.frame = Some(Frame {
                    data: payload.to_vec(),
                    rtp_time,
                    keyframe: true,
                });
            }
            return out;
        }
        if !self.codec.is_video() {
            return out;
        }
        // A new timestamp without the previous frame's marker: that frame
        // lost its tail.
        if self.pending_time.is_some_and(|t| t != rtp_time) {
            self.clear();
            out.need_keyframe |= !self.broken;
            self.broken = true;
        }
        self.pending_time = Some(rtp_time);
        self.pending_bytes += payload.len();
        if self.pending_bytes > MAX_FRAME_BYTES {
            self.clear();
            self.broken = true;
            return out;
        }
        self.pending.push(payload.to_vec());
        if marker {
            let packets = std::mem::take(&mut self.pending);
            self.clear();
            if let Some(frame) = self.depacketize(&packets, rtp_time) {
                if frame.keyframe {
                    self.broken = false;
                }
                if !self.broken {
                    out.frame = Some(frame);
                }
            } else if !self.broken {
                self.broken = true;
                out.need_keyframe = true;
            }
        }
        out
    }

    fn clear(&mut self) {
        self.pending.clear();
        self.pending_time = None;
        self.pending_bytes = 0;
    }

    fn unwrap_time(&mut self, ts: u32) -> u64 {
        let ext = match self.last_rtp {
            None => u64::from(ts) + (1 << 32),
            Some((last, last_ext)) => {
                let delta = ts.wrapping_sub(last) as i32;
                last_ext.saturating_add_signed(i64::from(delta))
            }
        };
        self.last_rtp = Some((ts, ext));
        ext
    }

    fn depacketize(&self, packets: &[Vec<u8>], rtp_time: u64) -> Option<Frame> {
        let mut data = Vec::new();
        match self.codec {
            Codec::Vp8 => {
                let mut d = Vp8Depacketizer::default();
                for p in packets {
                    d.depacketize(p, &mut data, &mut CodecExtra::None).ok()?;
                }
                let keyframe = vp8::is_keyframe(&data);
                (!data.is_empty()).then_some(Frame {
                    data,
                    rtp_time,
                    keyframe,
                })
            }
            Codec::H264 => {
                let mut d = H264Depacketizer::default();
                d.is_avc = true;
                for p in packets {
                    d.depacketize(p, &mut data, &mut CodecExtra::None).ok()?;
                }
                let keyframe =
                    h264::avc_nal_units(&data).any(|n| h264::nal_type(n) == Some(h264::NAL_IDR));
                (!data.is_empty()).then_some(Frame {
                    data,
                    rtp_time,
                    keyframe,
                })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opus_packets_are_frames_and_timestamps_unwrap() {
        let mut a = FrameAssembler::new(Codec::Opus);
        let f1 = a.push(1, u32::MAX - 479, false, &[0xf8, 1]).frame.unwrap();
        let f2 = a.push(2, 480, false, &[0xf8, 2]).frame.unwrap();
        assert_eq!(f2.rtp_time - f1.rtp_time, 960);
    }

    #[test]
    fn vp8_waits_for_a_keyframe_and_asks_again_after_a_loss() {
        let mut a = FrameAssembler::new(Codec::Vp8);
        // Descriptor S=1 PID=0, then a delta frame.
        assert_eq!(a.push(1, 0, true, &[0x10, 0x01, 0, 0]).frame, None);
        let key = [0x10, 0x00, 0, 0, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01];
        let f = a.push(2, 3000, true, &key).frame.unwrap();
        assert!(f.keyframe);
        assert_eq!(vp8::keyframe_size(&f.data), Some((640, 480)));
        assert!(a.push(3, 6000, true, &[0x10, 0x01, 0, 0]).frame.is_some());
        let lost = a.push(5, 12000, true, &[0x10, 0x01, 0, 0]);
        assert!(lost.need_keyframe && lost.frame.is_none());
        assert!(a.push(6, 15000, true, &key).frame.is_some());
    }
}
