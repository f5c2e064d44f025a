//! Recognising the first packet of a keyframe in an RTP payload.
//!
//! The forwarder needs this to start (or switch) a subscriber's stream on a
//! frame the subscriber can decode. str0m depacketizes whole frames, but in
//! RTP mode we look at single packets, and only at their first bytes, so the
//! few lines per codec are written here rather than pulling in a
//! depacketizer per packet.

/// Codecs whose keyframes this module recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    /// RFC 7741.
    Vp8,
    /// RFC 6184.
    H264,
}

/// Whether `payload` starts a keyframe of `codec`. Never panics: a payload
/// too short or malformed to tell is "not a keyframe".
pub fn is_keyframe_start(codec: VideoCodec, payload: &[u8]) -> bool {
    match codec {
        VideoCodec::Vp8 => vp8_keyframe_start(payload),
        VideoCodec::H264 => h264_keyframe_start(payload),
    }
}

/// RFC 7741 §4.2-4.3: payload descriptor, then (at the start of partition 0)
/// the VP8 payload header whose lowest bit (P) is 0 for a keyframe.
fn vp8_keyframe_start(p: &[u8]) -> bool {
    let Some(&first) = p.first() else {
        return false;
    };
    let extended = first & 0x80 != 0;
    let start_of_partition = first & 0x10 != 0;
    let partition_id = first & 0x0f;
    if !start_of_partition || partition_id != 0 {
        return false;
    }
    let mut i = 1;
    if extended {
        let Some(&x) = p.get(i) else { return false };
        i += 1;
        if x & 0x80 != 0 {
            // PictureID, 7 or 15 bits.
            let Some(&pid) = p.get(i) else { return false };
            i += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            i += 1; // TL0PICIDX
        }
        if x & 0x30 != 0 {
            i += 1; // TID/Y/KEYIDX
        }
    }
    match p.get(i) {
        Some(&h) => h & 0x01 == 0,
        None => false,
    }
}

/// RFC 6184: a single NAL unit, a STAP-A aggregate, or the first fragment of
/// an FU-A, carrying an IDR slice (5) or a sequence parameter set (7).
fn h264_keyframe_start(p: &[u8]) -> bool {
    let Some(&first) = p.first() else {
        return false;
    };
    match first & 0x1f {
        5 | 7 => true,
        24 => {
            // STAP-A: 16-bit size, NAL unit, repeated.
            let mut i = 1;
            while i + 2 < p.len() {
                let size = u16::from_be_bytes([p[i], p[i + 1]]) as usize;
                let Some(&nal) = p.get(i + 2) else {
                    return false;
                };
                if matches!(nal & 0x1f, 5 | 7) {
                    return true;
                }
                i += 2 + size;
            }
            false
        }
        28 => {
            // FU-A: the FU header's S bit and the original NAL type.
            match p.get(1) {
                Some(&fu) => fu & 0x80 != 0 && matches!(fu & 0x1f, 5 | 7),
                None => false,
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_keyframe_and_delta_frame() {
        // S=1, PID=0, then a payload header with P=0 (keyframe).
        assert!(is_keyframe_start(VideoCodec::Vp8, &[0x10, 0x00, 0, 0]));
        // P=1: an interframe.
        assert!(!is_keyframe_start(VideoCodec::Vp8, &[0x10, 0x01, 0, 0]));
        // Not the start of a partition.
        assert!(!is_keyframe_start(VideoCodec::Vp8, &[0x00, 0x00]));
        // Extended descriptor with a 15-bit picture id.
        assert!(is_keyframe_start(
            VideoCodec::Vp8,
            &[0x90, 0x80, 0x81, 0x23, 0x00]
        ));
        assert!(!is_keyframe_start(VideoCodec::Vp8, &[0x90, 0x80, 0x81]));
        assert!(!is_keyframe_start(VideoCodec::Vp8, &[]));
    }

    #[test]
    fn h264_keyframe_forms() {
        assert!(is_keyframe_start(VideoCodec::H264, &[0x65, 0x88]));
        assert!(!is_keyframe_start(VideoCodec::H264, &[0x41, 0x9a]));
        // STAP-A holding SPS.
        assert!(is_keyframe_start(
            VideoCodec::H264,
            &[0x18, 0x00, 0x02, 0x67, 0x42]
        ));
        // STAP-A with a lying length never reads out of bounds.
        assert!(!is_keyframe_start(VideoCodec::H264, &[0x18, 0xff, 0xff]));
        // FU-A start of an IDR, and a middle fragment.
        assert!(is_keyframe_start(VideoCodec::H264, &[0x7c, 0x85, 0x00]));
        assert!(!is_keyframe_start(VideoCodec::H264, &[0x7c, 0x05, 0x00]));
    }
}
