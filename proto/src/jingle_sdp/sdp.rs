//! SDP side of the mapping: SDP text <-> [`Session`].
//!
//! A small line-based reader and writer for exactly the lines the mapping
//! needs, not a general SDP parser. No SDP crate is in the workspace; str0m
//! has a parser, but its SDP model is private (only `SdpOffer`/`SdpAnswer`
//! text goes in and out) and it drops what we must carry verbatim (fmtp
//! parameters it does not know, simulcast alternatives). The reader ignores
//! lines it does not need (`a=rtcp-rsize`, `a=rtcp-xr`, `a=ice-options`,
//! `a=msid-semantic`, ...), bounds its work by [`MAX_SDP_LEN`] and the
//! `MAX_*` counts, and hands the result to [`Session::validate`]. The writer
//! emits what WebRTC peers (Chromium, Firefox, str0m) need, in Chromium's
//! attribute order.

use std::collections::HashSet;
use std::fmt::Write as _;

use super::jingle::{
    msid_string, parse_candidate_type, parse_ip, parse_msid, parse_protocol, parse_rid_direction,
    parse_setup, parse_tcptype,
};
use super::validate::check_candidate;
use super::*;

// ------------------------------------------------------------------ writing

/// Writes `session` as SDP authored by `author`: directions are written
/// from that party's point of view ([`Senders::to_direction`]), so the
/// bridge's offer for a content the bridge sends says `a=sendonly`.
///
/// `version` is the o= line's sess-version: pass a number that grows with
/// every new description of the same session (RFC 3264 §8), e.g. a
/// renegotiation counter. The sess-id is fixed, since one session is one
/// SDP origin. Fails if `session` does not validate.
pub fn session_to_sdp(
    session: &Session,
    author: Role,
    version: u64,
) -> Result<String, MappingError> {
    session.validate()?;
    let mut out = String::with_capacity(2048 + 4096 * session.contents.len());
    // Writing to a String cannot fail; the results are ignored below.
    out.push_str("v=0\r\n");
    let _ = write!(out, "o=- 1 {version} IN IP4 0.0.0.0\r\n");
    out.push_str("s=-\r\nt=0 0\r\n");
    if !session.bundle.is_empty() {
        let _ = write!(out, "a=group:BUNDLE {}\r\n", session.bundle.join(" "));
    }
    if session.ice_lite {
        out.push_str("a=ice-lite\r\n");
    }
    out.push_str("a=msid-semantic: WMS\r\n");
    for content in &session.contents {
        write_media(&mut out, content, author);
    }
    Ok(out)
}

/// The `candidate:...` form of a candidate (no `a=`), as in
/// `RTCIceCandidate.candidate` and str0m's `Candidate::from_sdp_string`.
/// Fails if the candidate does not validate.
pub fn candidate_to_sdp(candidate: &Candidate) -> Result<String, MappingError> {
    check_candidate(candidate)?;
    Ok(format_candidate(candidate))
}

fn format_candidate(c: &Candidate) -> String {
    // Field order as str0m's parser expects (and Chromium writes).
    let mut s = format!(
        "candidate:{} {} {} {} {} {} typ {}",
        c.foundation,
        c.component,
        c.protocol.as_str(),
        c.priority,
        c.ip,
        c.port,
        c.kind.as_str()
    );
    if let (Some(addr), Some(port)) = (c.rel_addr, c.rel_port) {
        let _ = write!(s, " raddr {addr} rport {port}");
    }
    if let Some(tcptype) = c.tcptype {
        let _ = write!(s, " tcptype {}", tcptype.as_str());
    }
    let _ = write!(s, " generation {}", c.generation);
    if let Some(network) = c.network {
        let _ = write!(s, " network-id {network}");
    }
    s
}

fn write_rtcp_fb(out: &mut String, pt: &str, fb: &RtcpFb) {
    let _ = match &fb.subtype {
        Some(subtype) => write!(out, "a=rtcp-fb:{pt} {} {subtype}\r\n", fb.kind),
        None => write!(out, "a=rtcp-fb:{pt} {}\r\n", fb.kind),
    };
}

fn write_media(out: &mut String, c: &Content, author: Role) {
    let pts: Vec<String> = c.codecs.iter().map(|pt| pt.id.to_string()).collect();
    let _ = write!(
        out,
        "m={} 9 UDP/TLS/RTP/SAVPF {}\r\nc=IN IP4 0.0.0.0\r\n",
        c.media.as_str(),
        pts.join(" ")
    );
    let t = &c.transport;
    for cand in &t.candidates {
        let _ = write!(out, "a={}\r\n", format_candidate(cand));
    }
    if let Some(ufrag) = &t.ufrag {
        let _ = write!(out, "a=ice-ufrag:{ufrag}\r\n");
    }
    if let Some(pwd) = &t.pwd {
        let _ = write!(out, "a=ice-pwd:{pwd}\r\n");
    }
    if let Some(fp) = &t.fingerprint {
        let _ = write!(out, "a=fingerprint:{} {}\r\n", fp.hash, fp.value);
        let _ = write!(out, "a=setup:{}\r\n", fp.setup.as_str());
    }
    let _ = write!(out, "a=mid:{}\r\n", c.name);
    for ext in &c.hdrexts {
        let _ = if ext.senders == Senders::Both {
            write!(out, "a=extmap:{} {}\r\n", ext.id, ext.uri)
        } else {
            let dir = ext.senders.to_direction(author).as_str();
            write!(out, "a=extmap:{}/{dir} {}\r\n", ext.id, ext.uri)
        };
    }
    if c.extmap_allow_mixed {
        out.push_str("a=extmap-allow-mixed\r\n");
    }
    let _ = write!(out, "a={}\r\n", c.senders.to_direction(author).as_str());
    // Unified Plan peers take the track's stream/track ids from the
    // media-level msid; all sources of one content are one track.
    if let Some(msid) = c.sources.iter().find_map(|s| s.msid.as_ref()) {
        let _ = write!(out, "a=msid:{}\r\n", msid_string(msid));
    }
    if c.rtcp_mux {
        out.push_str("a=rtcp-mux\r\n");
    }
    for fb in &c.rtcp_fb {
        write_rtcp_fb(out, "*", fb);
    }
    for pt in &c.codecs {
        let _ = write!(out, "a=rtpmap:{} {}/{}", pt.id, pt.name, pt.clockrate);
        if pt.channels != 1 {
            let _ = write!(out, "/{}", pt.channels);
        }
        out.push_str("\r\n");
        let id = pt.id.to_string();
        for fb in &pt.rtcp_fb {
            write_rtcp_fb(out, &id, fb);
        }
        if !pt.params.is_empty() {
            let params: Vec<String> = pt
                .params
                .iter()
                .map(|p| {
                    if p.name.is_empty() {
                        p.value.clone()
                    } else {
                        format!("{}={}", p.name, p.value)
                    }
                })
                .collect();
            let _ = write!(out, "a=fmtp:{} {}\r\n", pt.id, params.join(";"));
        }
    }
    for rid in &c.rids {
        let _ = write!(out, "a=rid:{} {}\r\n", rid.id, rid.direction.as_str());
    }
    if let Some(sim) = &c.simulcast {
        let mut parts = Vec::new();
        if let Some(send) = &sim.send {
            parts.push(format!("send {send}"));
        }
        if let Some(recv) = &sim.recv {
            parts.push(format!("recv {recv}"));
        }
        let _ = write!(out, "a=simulcast:{}\r\n", parts.join(" "));
    }
    for g in &c.ssrc_groups {
        let ssrcs: Vec<String> = g.ssrcs.iter().map(u32::to_string).collect();
        let _ = write!(out, "a=ssrc-group:{} {}\r\n", g.semantics, ssrcs.join(" "));
    }
    for s in &c.sources {
        if let Some(cname) = &s.cname {
            let _ = write!(out, "a=ssrc:{} cname:{cname}\r\n", s.ssrc);
        }
        if let Some(msid) = &s.msid {
            let _ = write!(out, "a=ssrc:{} msid:{}\r\n", s.ssrc, msid_string(msid));
        }
        if s.cname.is_none() && s.msid.is_none() {
            // An a=ssrc line needs an attribute; cname is the one RFC 5576 requires.
            let _ = write!(out, "a=ssrc:{} cname:-\r\n", s.ssrc);
        }
    }
}

// ------------------------------------------------------------------ reading

/// Bound on intermediate lines per m-section that are only matched up at
/// the end of the section (rtpmap/fmtp/rtcp-fb for any payload type).
const MAX_CODEC_LINES: usize = 128 + MAX_PAYLOAD_TYPES * (MAX_RTCP_FB + 2);

fn malformed(line: usize, reason: &'static str) -> MappingError {
    MappingError::MalformedSdp { line, reason }
}

fn sdp_number(
    line: usize,
    value: &str,
    min: u64,
    max: u64,
    field: &'static str,
) -> Result<u64, MappingError> {
    if value.is_empty() || value.len() > 20 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(if value.is_empty() {
            malformed(line, field)
        } else {
            MappingError::OutOfRange { field, min, max }
        });
    }
    match value.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(MappingError::OutOfRange { field, min, max }),
    }
}

fn push_bounded<T>(
    items: &mut Vec<T>,
    item: T,
    max: usize,
    what: &'static str,
) -> Result<(), MappingError> {
    if items.len() >= max {
        return Err(MappingError::TooMany { what, max });
    }
    items.push(item);
    Ok(())
}

/// Transport attributes, at session level (defaults) or media level.
#[derive(Default, Clone)]
struct TransportAttrs {
    ufrag: Option<String>,
    pwd: Option<String>,
    fingerprint: Option<(String, String)>,
    setup: Option<Setup>,
}

impl TransportAttrs {
    /// Handles an ICE/DTLS attribute; `Ok(false)` if `name` is not one.
    fn take(&mut self, line: usize, name: &str, value: &str) -> Result<bool, MappingError> {
        match name {
            "ice-ufrag" => self.ufrag = Some(value.to_owned()),
            "ice-pwd" => self.pwd = Some(value.to_owned()),
            "fingerprint" => {
                let (hash, fp) = value
                    .split_once(' ')
                    .ok_or(malformed(line, "a=fingerprint needs a hash and a value"))?;
                self.fingerprint = Some((hash.to_ascii_lowercase(), fp.trim().to_owned()));
            }
            "setup" => self.setup = Some(parse_setup(value)?),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// One m-section as read, before its lines are matched up.
struct Section {
    first_line: usize,
    media: Media,
    fmts: Vec<u8>,
    mid: Option<String>,
    direction: Option<Direction>,
    rtpmaps: Vec<(u8, String, u32, u8)>,
    fmtps: Vec<(u8, String)>,
    /// `None` payload type: `a=rtcp-fb:*`.
    rtcp_fbs: Vec<(Option<u8>, RtcpFb)>,
    hdrexts: Vec<HdrExt>,
    extmap_allow_mixed: bool,
    rtcp_mux: bool,
    msid: Option<Msid>,
    sources: Vec<Source>,
    ssrc_groups: Vec<SsrcGroup>,
    rids: Vec<Rid>,
    simulcast: Option<Simulcast>,
    transport: TransportAttrs,
    candidates: Vec<Candidate>,
}

/// Reads SDP written by `author` into a validated [`Session`]; directions
/// become Jingle senders from `author`'s point of view
/// ([`Senders::from_direction`]). Every content gets `creator: Initiator`
/// (SDP cannot say who created an m-line); set `Responder` on those that
/// came from a content-add.
///
/// Rejects anything but audio/video m-lines, and payload types without an
/// `a=rtpmap`. Accepts LF or CRLF line ends.
pub fn sdp_to_session(sdp: &str, author: Role) -> Result<Session, MappingError> {
    if sdp.len() > MAX_SDP_LEN {
        return Err(MappingError::TooLarge {
            what: "SDP",
            max: MAX_SDP_LEN,
        });
    }
    let mut session = Session::default();
    let mut session_transport = TransportAttrs::default();
    let mut session_allow_mixed = false;
    let mut have_bundle = false;
    let mut sections: Vec<Section> = Vec::new();

    for (index, raw) in sdp.split('\n').enumerate() {
        let line = index + 1;
        let text = raw.strip_suffix('\r').unwrap_or(raw);
        if text.is_empty() {
            continue;
        }
        if text.chars().any(char::is_control) {
            return Err(malformed(line, "control character"));
        }
        let (kind, value) = text
            .split_once('=')
            .filter(|(k, _)| k.len() == 1)
            .ok_or(malformed(line, "not a <type>=<value> line"))?;
        match kind {
            "m" => {
                if sections.len() >= MAX_CONTENTS {
                    return Err(MappingError::TooMany {
                        what: "contents",
                        max: MAX_CONTENTS,
                    });
                }
                sections.push(parse_m_line(line, value)?);
            }
            "a" => {
                let (name, value) = value.split_once(':').unwrap_or((value, ""));
                match sections.last_mut() {
                    Some(section) => parse_media_attribute(section, line, name, value, author)?,
                    None => match name {
                        "group" => {
                            let mut parts = value.split(' ').filter(|p| !p.is_empty());
                            if parts.next() == Some("BUNDLE") {
                                if have_bundle {
                                    return Err(MappingError::Duplicate("BUNDLE group"));
                                }
                                have_bundle = true;
                                for mid in parts {
                                    push_bounded(
                                        &mut session.bundle,
                                        mid.to_owned(),
                                        MAX_CONTENTS,
                                        "BUNDLE contents",
                                    )?;
                                }
                            }
                        }
                        "ice-lite" => session.ice_lite = true,
                        "extmap-allow-mixed" => session_allow_mixed = true,
                        _ => {
                            session_transport.take(line, name, value)?;
                        }
                    },
                }
            }
            // v, o, s, t, c, b, ...: nothing the mapping carries.
            _ => {}
        }
    }

    for section in sections {
        session.contents.push(finish_section(
            section,
            &session_transport,
            session_allow_mixed,
            author,
        )?);
    }
    session.validate()?;
    Ok(session)
}

fn parse_m_line(line: usize, value: &str) -> Result<Section, MappingError> {
    let mut parts = value.split(' ').filter(|p| !p.is_empty());
    let media = match parts.next() {
        Some("audio") => Media::Audio,
        Some("video") => Media::Video,
        _ => {
            return Err(MappingError::InvalidValue(
                "m-line media (only audio and video)",
            ))
        }
    };
    // Port and proto: WebRTC always says `9 UDP/TLS/RTP/SAVPF`; not carried.
    if parts.next().is_none() || parts.next().is_none() {
        return Err(malformed(line, "m-line needs port and proto"));
    }
    let mut fmts = Vec::new();
    for pt in parts {
        let pt = sdp_number(line, pt, 0, 127, "payload-type id")? as u8;
        if fmts.contains(&pt) {
            return Err(MappingError::Duplicate("payload-type id"));
        }
        push_bounded(&mut fmts, pt, MAX_PAYLOAD_TYPES, "payload-types")?;
    }
    Ok(Section {
        first_line: line,
        media,
        fmts,
        mid: None,
        direction: None,
        rtpmaps: Vec::new(),
        fmtps: Vec::new(),
        rtcp_fbs: Vec::new(),
        hdrexts: Vec::new(),
        extmap_allow_mixed: false,
        rtcp_mux: false,
        msid: None,
        sources: Vec::new(),
        ssrc_groups: Vec::new(),
        rids: Vec::new(),
        simulcast: None,
        transport: TransportAttrs::default(),
        candidates: Vec::new(),
    })
}

fn parse_direction(name: &str) -> Option<Direction> {
    Some(match name {
        "sendrecv" => Direction::SendRecv,
        "sendonly" => Direction::SendOnly,
        "recvonly" => Direction::RecvOnly,
        "inactive" => Direction::Inactive,
        _ => return None,
    })
}

fn parse_media_attribute(
    s: &mut Section,
    line: usize,
    name: &str,
    value: &str,
    author: Role,
) -> Result<(), MappingError> {
    if let Some(direction) = parse_direction(name) {
        if s.direction.is_some() {
            return Err(MappingError::Duplicate("direction attribute"));
        }
        s.direction = Some(direction);
        return Ok(());
    }
    if s.transport.take(line, name, value)? {
        return Ok(());
    }
    match name {
        "mid" => {
            if s.mid.is_some() {
                return Err(MappingError::Duplicate("a=mid"));
            }
            s.mid = Some(value.to_owned());
        }
        "rtpmap" => {
            let (pt, codec) = value.split_once(' ').ok_or(malformed(line, "a=rtpmap"))?;
            let pt = sdp_number(line, pt, 0, 127, "payload-type id")? as u8;
            let mut parts = codec.split('/');
            let name = parts.next().unwrap_or_default().to_owned();
            let clockrate = sdp_number(
                line,
                parts.next().unwrap_or_default(),
                1,
                u32::MAX.into(),
                "payload-type clockrate",
            )? as u32;
            let channels = match parts.next() {
                None => 1,
                Some(ch) => sdp_number(line, ch, 1, u8::MAX.into(), "payload-type channels")? as u8,
            };
            push_bounded(
                &mut s.rtpmaps,
                (pt, name, clockrate, channels),
                MAX_CODEC_LINES,
                "a=rtpmap lines",
            )?;
        }
        "fmtp" => {
            let (pt, params) = value.split_once(' ').ok_or(malformed(line, "a=fmtp"))?;
            let pt = sdp_number(line, pt, 0, 127, "payload-type id")? as u8;
            push_bounded(
                &mut s.fmtps,
                (pt, params.to_owned()),
                MAX_CODEC_LINES,
                "a=fmtp lines",
            )?;
        }
        "rtcp-fb" => {
            let mut parts = value.split(' ').filter(|p| !p.is_empty());
            let pt = match parts.next() {
                Some("*") => None,
                Some(pt) => Some(sdp_number(line, pt, 0, 127, "payload-type id")? as u8),
                None => return Err(malformed(line, "a=rtcp-fb")),
            };
            let kind = parts
                .next()
                .ok_or(malformed(line, "a=rtcp-fb needs a type"))?;
            // A third parameter (e.g. `trr-int 100`) is the subtype; Jingle
            // has nothing for more.
            let fb = RtcpFb {
                kind: kind.to_owned(),
                subtype: parts.next().map(str::to_owned),
            };
            push_bounded(
                &mut s.rtcp_fbs,
                (pt, fb),
                MAX_CODEC_LINES,
                "a=rtcp-fb lines",
            )?;
        }
        "extmap" => {
            let mut parts = value.split(' ').filter(|p| !p.is_empty());
            let id = parts.next().ok_or(malformed(line, "a=extmap"))?;
            let uri = parts
                .next()
                .ok_or(malformed(line, "a=extmap needs a URI"))?;
            // Extension attributes after the URI are not carried (XEP-0294
            // has <parameter/> for them, no client uses it).
            let (id, direction) = match id.split_once('/') {
                Some((id, dir)) => (
                    id,
                    Some(
                        parse_direction(dir)
                            .ok_or(MappingError::InvalidValue("a=extmap direction"))?,
                    ),
                ),
                None => (id, None),
            };
            let id = sdp_number(line, id, 1, 255, "rtp-hdrext id")? as u16;
            let senders = direction.map_or(Senders::Both, |d| Senders::from_direction(d, author));
            if s.hdrexts.iter().any(|e| e.id == id) {
                return Err(MappingError::Duplicate("rtp-hdrext id"));
            }
            // XEP-0294 senders cannot say "none": an inactive extension
            // negotiates nothing, so it is left out.
            if senders != Senders::None {
                push_bounded(
                    &mut s.hdrexts,
                    HdrExt {
                        id,
                        uri: uri.to_owned(),
                        senders,
                    },
                    MAX_HDREXTS,
                    "rtp-hdrexts",
                )?;
            }
        }
        "extmap-allow-mixed" => s.extmap_allow_mixed = true,
        "rtcp-mux" => s.rtcp_mux = true,
        "msid" => s.msid = Some(parse_msid(value.trim())),
        "ssrc" => {
            let (ssrc, attr) = value.split_once(' ').ok_or(malformed(line, "a=ssrc"))?;
            let ssrc = sdp_number(line, ssrc, 0, u32::MAX.into(), "ssrc")? as u32;
            let index = match s.sources.iter().position(|src| src.ssrc == ssrc) {
                Some(index) => index,
                None => {
                    let source = Source {
                        ssrc,
                        cname: None,
                        msid: None,
                        owner: None,
                    };
                    push_bounded(&mut s.sources, source, MAX_SOURCES, "sources")?;
                    s.sources.len() - 1
                }
            };
            let source = &mut s.sources[index];
            let (attr, attr_value) = attr.split_once(':').unwrap_or((attr, ""));
            match attr {
                "cname" => source.cname = Some(attr_value.to_owned()),
                "msid" => source.msid = Some(parse_msid(attr_value)),
                // mslabel, label, ...: legacy, not carried.
                _ => {}
            }
        }
        "ssrc-group" => {
            let mut parts = value.split(' ').filter(|p| !p.is_empty());
            let semantics = parts.next().ok_or(malformed(line, "a=ssrc-group"))?;
            let mut ssrcs = Vec::new();
            for ssrc in parts {
                let ssrc = sdp_number(line, ssrc, 0, u32::MAX.into(), "ssrc")? as u32;
                push_bounded(&mut ssrcs, ssrc, MAX_GROUP_SSRCS, "ssrcs in a group")?;
            }
            let group = SsrcGroup {
                semantics: semantics.to_owned(),
                ssrcs,
            };
            push_bounded(&mut s.ssrc_groups, group, MAX_SSRC_GROUPS, "ssrc-groups")?;
        }
        "rid" => {
            let mut parts = value.split(' ').filter(|p| !p.is_empty());
            let id = parts.next().ok_or(malformed(line, "a=rid"))?;
            let direction = parse_rid_direction(
                parts
                    .next()
                    .ok_or(malformed(line, "a=rid needs a direction"))?,
            )?;
            // Restrictions (pt=, max-width=, ...) are not carried: the
            // protocol's <rid/> has none.
            push_bounded(
                &mut s.rids,
                Rid {
                    id: id.to_owned(),
                    direction,
                },
                MAX_RIDS,
                "rids",
            )?;
        }
        "simulcast" => {
            if s.simulcast.is_some() {
                return Err(MappingError::Duplicate("a=simulcast"));
            }
            let mut sim = Simulcast {
                send: None,
                recv: None,
            };
            let mut parts = value.split(' ').filter(|p| !p.is_empty());
            while let Some(dir) = parts.next() {
                let list = parts
                    .next()
                    .ok_or(malformed(line, "a=simulcast needs a stream list"))?;
                let slot = match parse_rid_direction(dir)? {
                    RidDirection::Send => &mut sim.send,
                    RidDirection::Recv => &mut sim.recv,
                };
                if slot.is_some() {
                    return Err(MappingError::Duplicate("a=simulcast direction"));
                }
                *slot = Some(list.to_owned());
            }
            s.simulcast = Some(sim);
        }
        "candidate" => {
            let candidate = parse_candidate_fields(value)?;
            push_bounded(&mut s.candidates, candidate, MAX_CANDIDATES, "candidates")?;
        }
        // rtcp, ice-options, rtcp-rsize, rtcp-xr, end-of-candidates, ...
        _ => {}
    }
    Ok(())
}

/// Splits fmtp parameters: `name=value` pairs separated by `;` (split at
/// the first `=`, so base64 values survive), or a bare value (RED's
/// `111/111`) as a parameter with an empty name.
fn parse_fmtp(params: &str) -> Result<Vec<Parameter>, MappingError> {
    let mut out = Vec::new();
    for part in params.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let param = match part.split_once('=') {
            Some((name, value)) => Parameter {
                name: name.trim().to_owned(),
                value: value.trim().to_owned(),
            },
            None => Parameter {
                name: String::new(),
                value: part.to_owned(),
            },
        };
        push_bounded(&mut out, param, MAX_PARAMETERS, "parameters")?;
    }
    Ok(out)
}

fn finish_section(
    s: Section,
    defaults: &TransportAttrs,
    session_allow_mixed: bool,
    author: Role,
) -> Result<Content, MappingError> {
    let mut codecs = Vec::with_capacity(s.fmts.len());
    for &id in &s.fmts {
        let (_, name, clockrate, channels) = s
            .rtpmaps
            .iter()
            .find(|(pt, ..)| *pt == id)
            .ok_or(malformed(s.first_line, "payload type without a=rtpmap"))?;
        let params = match s.fmtps.iter().find(|(pt, _)| *pt == id) {
            Some((_, params)) => parse_fmtp(params)?,
            None => Vec::new(),
        };
        let rtcp_fb: Vec<RtcpFb> = s
            .rtcp_fbs
            .iter()
            .filter(|(pt, _)| *pt == Some(id))
            .map(|(_, fb)| fb.clone())
            .take(MAX_RTCP_FB + 1)
            .collect();
        codecs.push(PayloadType {
            id,
            name: name.clone(),
            clockrate: *clockrate,
            channels: *channels,
            params,
            rtcp_fb,
        });
    }
    let rtcp_fb = s
        .rtcp_fbs
        .iter()
        .filter(|(pt, _)| pt.is_none())
        .map(|(_, fb)| fb.clone())
        .take(MAX_RTCP_FB + 1)
        .collect();

    // Media-level a=msid (Firefox writes no msid on its a=ssrc lines) names
    // the track of every source that has none. Without sources (Chromium's
    // rid-based simulcast) there is nowhere to put it in Jingle.
    let mut sources = s.sources;
    if let Some(msid) = &s.msid {
        for source in sources.iter_mut().filter(|src| src.msid.is_none()) {
            source.msid = Some(msid.clone());
        }
    }

    let ufrag = s.transport.ufrag.or_else(|| defaults.ufrag.clone());
    let pwd = s.transport.pwd.or_else(|| defaults.pwd.clone());
    let fingerprint = s
        .transport
        .fingerprint
        .or_else(|| defaults.fingerprint.clone());
    let setup = s.transport.setup.or(defaults.setup);
    let fingerprint = match (fingerprint, setup) {
        (Some((hash, value)), Some(setup)) => Some(Fingerprint { hash, value, setup }),
        (Some(_), None) => return Err(MappingError::MissingField("a=setup")),
        (None, _) => None,
    };

    Ok(Content {
        name: s
            .mid
            .ok_or(malformed(s.first_line, "m-section without a=mid"))?,
        creator: Role::Initiator,
        senders: Senders::from_direction(s.direction.unwrap_or(Direction::SendRecv), author),
        media: s.media,
        codecs,
        rtcp_fb,
        hdrexts: s.hdrexts,
        extmap_allow_mixed: s.extmap_allow_mixed || session_allow_mixed,
        rtcp_mux: s.rtcp_mux,
        sources,
        ssrc_groups: s.ssrc_groups,
        rids: s.rids,
        simulcast: s.simulcast,
        transport: Transport {
            ufrag,
            pwd,
            fingerprint,
            candidates: s.candidates,
        },
    })
}

/// Parses a candidate in `candidate:...` form (with or without a leading
/// `a=`), as trickled in a transport-info or `RTCIceCandidate`. Validated.
pub fn candidate_from_sdp(text: &str) -> Result<Candidate, MappingError> {
    if text.len() > 1024 {
        return Err(MappingError::TooLarge {
            what: "candidate",
            max: 1024,
        });
    }
    if text.chars().any(char::is_control) {
        return Err(MappingError::ForbiddenCharacter("candidate"));
    }
    let text = text.strip_prefix("a=").unwrap_or(text);
    let fields = text
        .strip_prefix("candidate:")
        .ok_or(MappingError::InvalidValue("candidate"))?;
    let candidate = parse_candidate_fields(fields)?;
    check_candidate(&candidate)?;
    Ok(candidate)
}

/// Parses the value of `a=candidate:` (RFC 8839 §5.1).
fn parse_candidate_fields(value: &str) -> Result<Candidate, MappingError> {
    let number = |field: &'static str, value: Option<&str>, min: u64, max: u64| {
        let value = value.ok_or(MappingError::MissingField(field))?;
        sdp_number(0, value, min, max, field)
    };
    let mut parts = value.split(' ').filter(|p| !p.is_empty());
    let foundation = parts
        .next()
        .ok_or(MappingError::MissingField("candidate foundation"))?;
    let component = number("candidate component", parts.next(), 1, 256)? as u16;
    let protocol = parse_protocol(
        parts
            .next()
            .ok_or(MappingError::MissingField("candidate protocol"))?,
    )?;
    let priority = number("candidate priority", parts.next(), 0, u32::MAX.into())? as u32;
    let ip = parse_ip(
        "candidate ip",
        parts
            .next()
            .ok_or(MappingError::MissingField("candidate ip"))?,
    )?;
    let port = number("candidate port", parts.next(), 1, u16::MAX.into())? as u16;
    if parts.next() != Some("typ") {
        return Err(MappingError::MissingField("candidate typ"));
    }
    let kind = parse_candidate_type(
        parts
            .next()
            .ok_or(MappingError::MissingField("candidate typ"))?,
    )?;
    let mut candidate = Candidate {
        foundation: foundation.to_owned(),
        component,
        protocol,
        priority,
        ip,
        port,
        kind,
        rel_addr: None,
        rel_port: None,
        tcptype: None,
        generation: 0,
        network: None,
    };
    let mut seen = HashSet::new();
    let mut pairs = 0;
    while let Some(key) = parts.next() {
        pairs += 1;
        if pairs > 16 {
            return Err(MappingError::TooMany {
                what: "candidate extensions",
                max: 16,
            });
        }
        let value = parts.next();
        if !seen.insert(key) {
            return Err(MappingError::Duplicate("candidate extension"));
        }
        match key {
            "raddr" => {
                let value = value.ok_or(MappingError::MissingField("candidate raddr"))?;
                candidate.rel_addr = Some(parse_ip("candidate raddr", value)?);
            }
            "rport" => {
                candidate.rel_port =
                    Some(number("candidate rport", value, 0, u16::MAX.into())? as u16)
            }
            "tcptype" => {
                let value = value.ok_or(MappingError::MissingField("candidate tcptype"))?;
                candidate.tcptype = Some(parse_tcptype(value)?);
            }
            "generation" => {
                candidate.generation =
                    number("candidate generation", value, 0, u32::MAX.into())? as u32
            }
            "network-id" => {
                candidate.network =
                    Some(number("candidate network-id", value, 0, u32::MAX.into())? as u32)
            }
            // network-cost, ufrag, ...: not carried.
            _ => {}
        }
    }
    Ok(candidate)
}
