//! VP8: the RTP payload descriptor (RFC 7741 §4.2-4.3) and the start of a
//! frame in the bitstream (RFC 6386 §9.1).
//!
//! An RTP payload is a payload descriptor followed by VP8 data; the
//! packet that starts partition 0 of a frame begins with the frame's
//! 3-byte frame tag, whose lowest bit (P, the "inverse key frame flag") is
//! 0 on keyframes. A keyframe's tag is followed by a start code and the
//! picture size.

/// RFC 6386 §9.1: the start code after a keyframe's 3-byte frame tag.
pub const START_CODE: [u8; 3] = [0x9d, 0x01, 0x2a];

/// The VP8 data of an RTP payload: what follows its payload descriptor
/// (RFC 7741 §4.2), extensions included. `None` if the payload ends
/// inside the descriptor.
pub fn strip_descriptor(payload: &[u8]) -> Option<&[u8]> {
    // |X|R|N|S|R| PID |, then with X: |I|L|T|K| RSV |.
    let first = *payload.first()?;
    let mut i = 1;
    if first & 0x80 != 0 {
        let x = *payload.get(i)?;
        i += 1;
        if x & 0x80 != 0 {
            // I: PictureID, 7 or 15 bits (M, the top bit, says which).
            let pid = *payload.get(i)?;
            i += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            i += 1; // L: TL0PICIDX
        }
        if x & 0x30 != 0 {
            i += 1; // T and/or K: TID/Y/KEYIDX
        }
    }
    payload.get(i..)
}

/// RFC 7741 §4.3: whether an RTP payload starts a VP8 keyframe: the start
/// of partition 0 (S=1, PID=0; the reserved bit is ignored, as §4.2 asks)
/// whose frame tag has P=0. What a forwarder needs to start a stream on;
/// it says nothing of the rest of the frame.
pub fn starts_keyframe(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else {
        return false;
    };
    let start_of_partition_0 = first & 0x10 != 0 && first & 0x07 == 0;
    start_of_partition_0 && strip_descriptor(payload).is_some_and(is_keyframe)
}

/// RFC 6386 §9.1: whether a VP8 frame (or the data of the RTP packet that
/// starts it) is a keyframe: bit 0 of its first byte (P) is 0.
pub fn is_keyframe(frame: &[u8]) -> bool {
    frame.first().is_some_and(|b| b & 1 == 0)
}

/// RFC 6386 §9.1: whether a frame begins as every keyframe does: P=0, and
/// the [`START_CODE`] after the 3-byte frame tag.
pub fn has_keyframe_header(frame: &[u8]) -> bool {
    is_keyframe(frame) && frame.get(3..6) == Some(&START_CODE[..])
}

/// Width and height of a VP8 keyframe (RFC 6386 §9.1: after the frame
/// tag and the start code, two 14-bit little-endian sizes, each under two
/// scaling bits). `None` for an interframe, a frame too short, or a zero
/// size.
pub fn keyframe_size(frame: &[u8]) -> Option<(u32, u32)> {
    if !has_keyframe_header(frame) {
        return None;
    }
    let w = u16::from_le_bytes([*frame.get(6)?, *frame.get(7)?]) & 0x3fff;
    let h = u16::from_le_bytes([*frame.get(8)?, *frame.get(9)?]) & 0x3fff;
    (w > 0 && h > 0).then_some((u32::from(w), u32::from(h)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_extensions_are_skipped() {
        assert_eq!(strip_descriptor(&[0x10, 0xaa]), Some(&[0xaa][..]));
        // X, then I with a 7-bit picture id, L and T: four more bytes.
        assert_eq!(
            strip_descriptor(&[0x90, 0xe0, 0x05, 0x01, 0x02, 0xaa]),
            Some(&[0xaa][..])
        );
        // The picture id cut off.
        assert_eq!(strip_descriptor(&[0x90, 0x80]), None);
        assert_eq!(strip_descriptor(&[]), None);
    }

    #[test]
    fn keyframe_size_of_a_keyframe_only() {
        let key = [0x00, 0, 0, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01];
        assert!(has_keyframe_header(&key));
        assert_eq!(keyframe_size(&key), Some((640, 480)));
        let mut delta = key;
        delta[0] = 0x01;
        assert!(!is_keyframe(&delta));
        assert_eq!(keyframe_size(&delta), None);
        assert_eq!(keyframe_size(&key[..8]), None);
        // Partition 1 is never a keyframe's start, whatever follows.
        assert!(!starts_keyframe(&[0x11, 0x00]));
    }
}
