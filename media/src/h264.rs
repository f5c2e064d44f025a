//! H.264: NAL units (ITU-T H.264 §7.3.1, §7.4.1) and the three ways Confab
//! meets them: in an Annex B byte stream (H.264 Annex B, what encoders
//! write), in an AVC access unit (each unit after a 4-byte big-endian
//! length, what MP4 stores and str0m's depacketizer gives in AVC mode),
//! and in RTP payloads (RFC 6184: single NAL unit packets §5.6, STAP-A
//! §5.7.1, FU-A §5.8).
//!
//! A NAL unit here is its header byte and its body, without start code or
//! length. Its body is an RBSP with emulation-prevention bytes
//! (§7.4.1): [`escape_emulation`] and [`unescape_emulation`] turn one into
//! the other.

/// nal_unit_type of a coded slice of a non-IDR picture (Table 7-1).
pub const NAL_SLICE: u8 = 1;
/// nal_unit_type of a coded slice of an IDR picture: a keyframe.
pub const NAL_IDR: u8 = 5;
/// nal_unit_type of supplemental enhancement information (SEI).
pub const NAL_SEI: u8 = 6;
/// nal_unit_type of a sequence parameter set.
pub const NAL_SPS: u8 = 7;
/// nal_unit_type of a picture parameter set.
pub const NAL_PPS: u8 = 8;
/// RTP payload type of a single-time aggregation packet (RFC 6184 §5.7.1).
pub const STAP_A: u8 = 24;
/// RTP payload type of a fragmentation unit (RFC 6184 §5.8).
pub const FU_A: u8 = 28;

/// The nal_unit_type (§7.4.1) of a NAL unit, or of an RTP payload (whose
/// first byte is a NAL unit header too): the low 5 bits of its first
/// byte. `None` when empty.
pub fn nal_type(nal: &[u8]) -> Option<u8> {
    nal.first().map(|h| h & 0x1f)
}

/// Inserts emulation-prevention bytes (§7.4.1): 0x03 after two zero bytes
/// when the next byte is <= 3, turning an RBSP into a NAL unit body.
pub fn escape_emulation(rbsp: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rbsp.len() + 4);
    let mut zeros = 0;
    for &b in rbsp {
        if zeros >= 2 && b <= 3 {
            out.push(3);
            zeros = 0;
        }
        out.push(b);
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    out
}

/// Removes emulation-prevention bytes (§7.4.1), turning a NAL unit body
/// back into an RBSP.
pub fn unescape_emulation(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut zeros = 0;
    for &b in body {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        out.push(b);
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    out
}

/// The NAL units of an Annex B byte stream (B.1.1), each with the offset
/// of its start code: of the `00 00 01`, or of the zero byte before it in
/// a four-byte start code. Zero bytes that trail a unit belong to no unit;
/// bytes before the first start code are skipped.
pub fn annex_b_nal_units(stream: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut next = start_code(stream, 0);
    std::iter::from_fn(move || {
        let (at, begin) = next?;
        next = start_code(stream, begin);
        let mut end = next.map_or(stream.len(), |(at, _)| at);
        while end > begin && stream[end - 1] == 0 {
            end -= 1;
        }
        Some((at, &stream[begin..end]))
    })
}

/// The first start code at or after `from`: where it begins (a four-byte
/// one's leading zero included) and where its unit begins.
fn start_code(stream: &[u8], from: usize) -> Option<(usize, usize)> {
    let i = from
        + stream
            .get(from..)?
            .windows(3)
            .position(|w| w == [0, 0, 1])?;
    let at = if i > 0 && stream[i - 1] == 0 {
        i - 1
    } else {
        i
    };
    Some((at, i + 3))
}

/// The NAL units of an AVC-format access unit (each after a 4-byte
/// big-endian length); stops at the first length that overruns it.
pub fn avc_nal_units(au: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = au;
    std::iter::from_fn(move || {
        let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let nal = rest.get(4..4 + len)?;
        rest = &rest[4 + len..];
        Some(nal)
    })
}

/// The whole NAL units of an RTP payload: the payload itself for a single
/// NAL unit packet (types 1-23, RFC 6184 §5.6), the aggregated units of a
/// STAP-A (§5.7.1, up to the first size that overruns the payload), none
/// for fragments and other types.
pub fn payload_nal_units(payload: &[u8]) -> impl Iterator<Item = &[u8]> {
    let (single, mut aggregated) = match nal_type(payload) {
        Some(1..=23) => (Some(payload), &[][..]),
        Some(STAP_A) => (None, payload.get(1..).unwrap_or_default()),
        _ => (None, &[][..]),
    };
    let stap_a = std::iter::from_fn(move || {
        let size = u16::from_be_bytes([*aggregated.first()?, *aggregated.get(1)?]) as usize;
        let nal = aggregated.get(2..2 + size)?;
        aggregated = &aggregated[2 + size..];
        Some(nal)
    });
    single.into_iter().chain(stap_a)
}

/// The types of the NAL units that begin in an RTP payload: those of
/// [`payload_nal_units`], or the type of the unit a FU-A's first fragment
/// begins (its FU header's S bit, RFC 6184 §5.8).
pub fn starting_nal_types(payload: &[u8]) -> impl Iterator<Item = u8> + '_ {
    let fragment_start = match (nal_type(payload), payload.get(1)) {
        (Some(FU_A), Some(&fu)) if fu & 0x80 != 0 => Some(fu & 0x1f),
        _ => None,
    };
    payload_nal_units(payload)
        .filter_map(nal_type)
        .chain(fragment_start)
}

/// Whether an RTP payload starts a keyframe, where a decoder can begin:
/// it begins a sequence parameter set or an IDR slice. Senders put a
/// keyframe's SPS (and PPS) before its IDR slice, in a STAP-A with it or
/// in packets of their own, so the packet with the SPS is the start.
pub fn starts_keyframe(payload: &[u8]) -> bool {
    starting_nal_types(payload).any(|t| t == NAL_IDR || t == NAL_SPS)
}

/// Width and height from a sequence parameter set NAL unit (§7.3.2.1.1),
/// for headers that want the size without decoding (decoders take it from
/// the SPS itself). `None` for an SPS this short reader does not follow
/// (scaling matrices, pic_order_cnt_type 1) or one cut short; frame
/// cropping is not applied.
pub fn sps_size(sps: &[u8]) -> Option<(u32, u32)> {
    let rbsp = unescape_emulation(sps.get(1..)?);
    let mut r = Bits {
        data: &rbsp,
        pos: 0,
    };
    let profile = r.bits(8)?;
    r.bits(16)?; // constraint flags, level
    r.ue()?; // seq_parameter_set_id
    if matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        let chroma = r.ue()?;
        if chroma == 3 {
            r.bits(1)?;
        }
        r.ue()?;
        r.ue()?;
        r.bits(1)?;
        if r.bits(1)? == 1 {
            return None; // scaling matrices: not followed
        }
    }
    r.ue()?; // log2_max_frame_num
    let poc = r.ue()?;
    if poc == 0 {
        r.ue()?;
    } else if poc == 1 {
        return None;
    }
    r.ue()?; // max_num_ref_frames
    r.bits(1)?;
    let w = (r.ue()? + 1) * 16;
    let frame_mbs_only = {
        let h_units = r.ue()? + 1;
        let f = r.bits(1)?;
        (h_units, f)
    };
    let h = frame_mbs_only.0 * 16 * (2 - frame_mbs_only.1);
    Some((w, h))
}

/// Reads an RBSP bit by bit, and Exp-Golomb codes (§9.1).
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn bit(&mut self) -> Option<u32> {
        let byte = self.data.get(self.pos / 8)?;
        let b = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(u32::from(b))
    }
    fn bits(&mut self, n: u32) -> Option<u32> {
        (0..n).try_fold(0u32, |acc, _| Some((acc << 1) | self.bit()?))
    }
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        Some((1u32 << zeros) - 1 + self.bits(zeros)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emulation_prevention_round_trips() {
        let rbsp = [0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x03, 0x05];
        let body = escape_emulation(&rbsp);
        assert_eq!(
            body,
            [0x00, 0x00, 0x03, 0x01, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x03, 0x05]
        );
        assert_eq!(unescape_emulation(&body), rbsp);
    }

    #[test]
    fn annex_b_units_with_three_and_four_byte_start_codes() {
        let stream = [
            0xff, 0, 0, 0, 1, 0x67, 0x42, 0, 0, 1, 0x68, 0xce, 0, 0, 0, 0, 1, 0x65, 0x88,
        ];
        let units: Vec<_> = annex_b_nal_units(&stream).collect();
        assert_eq!(
            units,
            [
                (1, &[0x67, 0x42][..]),
                (7, &[0x68, 0xce][..]),
                (13, &[0x65, 0x88][..])
            ]
        );
        assert_eq!(
            annex_b_nal_units(&[0, 0, 1]).collect::<Vec<_>>(),
            [(0, &[][..])]
        );
        assert_eq!(annex_b_nal_units(&[0x65, 0, 0]).count(), 0);
    }

    #[test]
    fn avc_units_stop_at_a_length_that_overruns() {
        let au = [0, 0, 0, 2, 0x67, 0x42, 0, 0, 0, 1, 0x65, 0, 0, 0, 9, 0x41];
        let units: Vec<_> = avc_nal_units(&au).collect();
        assert_eq!(units, [&[0x67, 0x42][..], &[0x65][..]]);
    }

    #[test]
    fn payload_units_of_single_stap_a_and_fu_a_packets() {
        assert_eq!(payload_nal_units(&[0x41, 0x9a]).count(), 1);
        let stap = [0x78, 0, 2, 0x67, 0x42, 0, 1, 0x68, 0, 7, 0x65];
        let units: Vec<_> = payload_nal_units(&stap).collect();
        assert_eq!(
            units,
            [&[0x67, 0x42][..], &[0x68][..]],
            "the cut unit is left out"
        );
        assert_eq!(
            starting_nal_types(&stap).collect::<Vec<_>>(),
            [NAL_SPS, NAL_PPS]
        );
        // FU-A: no whole unit, but the start of an IDR slice.
        assert_eq!(payload_nal_units(&[0x7c, 0x85, 0x00]).count(), 0);
        assert_eq!(
            starting_nal_types(&[0x7c, 0x85, 0x00]).collect::<Vec<_>>(),
            [NAL_IDR]
        );
        assert_eq!(starting_nal_types(&[0x7c, 0x45, 0x00]).count(), 0);
        assert_eq!(starting_nal_types(&[]).count(), 0);
    }

    #[test]
    fn sps_size_of_a_constrained_baseline_sps() {
        // The test kit's SPS (profile 42e01f), which ffprobe reads as
        // 320x976 too.
        let sps = [0x67, 0x42, 0xe0, 0x1f, 0xda, 0x05, 0x01, 0xec, 0x80];
        assert_eq!(sps_size(&sps), Some((320, 976)));
    }
}
