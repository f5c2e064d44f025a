//! The rules every [`Session`] obeys before it becomes SDP or Jingle
//! (docs/PROTOCOL.md §7, docs/PROTOCOL.md §8).
//!
//! One place for all of them: both parsers build a `Session` structurally
//! (bounding counts while they read, so hostile input cannot make them do
//! unbounded work) and then call [`Session::validate`]; both writers call it
//! again before writing. Character sets are whitelists chosen so that no
//! value can add, split or end an SDP line or field.

use std::collections::HashSet;

use super::*;

/// Largest accepted clock rate, in Hz.
const MAX_CLOCKRATE: u32 = 1_000_000;
/// Longest JID (RFC 7622: three parts of at most 1023 bytes plus separators).
const MAX_JID_LEN: usize = 3071;
/// Longest fingerprint: 64 bytes (sha-512) as `XX:` pairs.
const MAX_FINGERPRINT_LEN: usize = 64 * 3 - 1;
/// The hash functions RFC 8122 lists (md2/md5 excluded), lower case.
const HASHES: [&str; 5] = ["sha-1", "sha-224", "sha-256", "sha-384", "sha-512"];

/// RFC 4566 `token-char`.
pub(crate) fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`{|}~".contains(&b)
}

/// RFC 8445 `ice-char`.
fn is_ice_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/'
}

/// Characters of a mid or rid: letters, digits and `_`. RFC 8843/8851 allow
/// more, but str0m replaces every other character by `_`, so `a-b` and
/// `a_b` would silently become the same mid.
fn is_id_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Visible ASCII: no space, no control characters, nothing above 0x7e.
fn is_visible(b: u8) -> bool {
    (0x21..=0x7e).contains(&b)
}

/// An fmtp value: visible ASCII except the parameter separator `;`.
fn is_fmtp_value_char(b: u8) -> bool {
    is_visible(b) && b != b';'
}

/// Checks `value`'s length (in bytes) and that every byte passes `allowed`.
pub(crate) fn check_str(
    field: &'static str,
    value: &str,
    min: usize,
    max: usize,
    allowed: fn(u8) -> bool,
) -> Result<(), MappingError> {
    if value.len() < min || value.len() > max {
        return Err(MappingError::BadLength { field, min, max });
    }
    if !value.bytes().all(allowed) {
        return Err(MappingError::ForbiddenCharacter(field));
    }
    Ok(())
}

/// Free text that never becomes part of an SDP line (sid, JIDs): any
/// Unicode except control characters, bounded length.
pub(crate) fn check_text(field: &'static str, value: &str, max: usize) -> Result<(), MappingError> {
    if value.is_empty() || value.len() > max {
        return Err(MappingError::BadLength { field, min: 1, max });
    }
    if value.chars().any(char::is_control) {
        return Err(MappingError::ForbiddenCharacter(field));
    }
    Ok(())
}

/// A content name / mid.
pub(crate) fn check_mid(field: &'static str, value: &str) -> Result<(), MappingError> {
    check_str(field, value, 1, MAX_MID_LEN, is_id_char)
}

fn check_range(field: &'static str, value: u64, min: u64, max: u64) -> Result<(), MappingError> {
    if value < min || value > max {
        return Err(MappingError::OutOfRange { field, min, max });
    }
    Ok(())
}

fn check_count(what: &'static str, count: usize, max: usize) -> Result<(), MappingError> {
    if count > max {
        return Err(MappingError::TooMany { what, max });
    }
    Ok(())
}

/// A JID (the owner extension): no control characters, bounded, and a
/// valid JID.
fn check_jid(field: &'static str, value: &str) -> Result<(), MappingError> {
    check_text(field, value, MAX_JID_LEN)?;
    xmpp_parsers::jid::Jid::new(value).map_err(|_| MappingError::InvalidValue(field))?;
    Ok(())
}

/// An RFC 8853 stream list: `;`-separated alternatives of `,`-separated
/// rids, each optionally paused with `~`.
fn check_simulcast_list(field: &'static str, list: &str) -> Result<(), MappingError> {
    check_str(field, list, 1, MAX_TOKEN_LEN, |b| {
        is_id_char(b) || b == b';' || b == b',' || b == b'~'
    })?;
    for alternatives in list.split(';') {
        for rid in alternatives.split(',') {
            let rid = rid.strip_prefix('~').unwrap_or(rid);
            check_str(field, rid, 1, MAX_RID_LEN, is_id_char)?;
        }
    }
    Ok(())
}

fn check_fingerprint(fp: &Fingerprint) -> Result<(), MappingError> {
    if !HASHES.contains(&fp.hash.as_str()) {
        return Err(MappingError::InvalidValue("fingerprint hash"));
    }
    let field = "fingerprint";
    check_str(field, &fp.value, 2, MAX_FINGERPRINT_LEN, |b| {
        b.is_ascii_hexdigit() || b == b':'
    })?;
    if !fp
        .value
        .split(':')
        .all(|byte| byte.len() == 2 && byte.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(MappingError::InvalidValue(field));
    }
    Ok(())
}

/// Checks one candidate (also used for trickled candidates).
pub(crate) fn check_candidate(c: &Candidate) -> Result<(), MappingError> {
    check_str("candidate foundation", &c.foundation, 1, 32, is_ice_char)?;
    check_range("candidate component", c.component.into(), 1, 256)?;
    check_range("candidate port", c.port.into(), 1, 65535)?;
    if c.rel_addr.is_some() != c.rel_port.is_some() {
        return Err(MappingError::MissingField("candidate rel-addr/rel-port"));
    }
    Ok(())
}

/// Checks a transport.
pub(crate) fn check_transport(t: &Transport) -> Result<(), MappingError> {
    if let Some(ufrag) = &t.ufrag {
        check_str("ufrag", ufrag, 4, 256, is_ice_char)?;
    }
    if let Some(pwd) = &t.pwd {
        check_str("pwd", pwd, 22, 256, is_ice_char)?;
    }
    if let Some(fp) = &t.fingerprint {
        check_fingerprint(fp)?;
    }
    check_count("candidates", t.candidates.len(), MAX_CANDIDATES)?;
    t.candidates.iter().try_for_each(check_candidate)
}

fn check_rtcp_fb(fbs: &[RtcpFb]) -> Result<(), MappingError> {
    check_count("rtcp-fb", fbs.len(), MAX_RTCP_FB)?;
    for fb in fbs {
        check_str("rtcp-fb type", &fb.kind, 1, MAX_TOKEN_LEN, is_token_char)?;
        if let Some(subtype) = &fb.subtype {
            check_str("rtcp-fb subtype", subtype, 1, MAX_TOKEN_LEN, is_token_char)?;
        }
    }
    Ok(())
}

fn check_payload_type(pt: &PayloadType) -> Result<(), MappingError> {
    check_range("payload-type id", pt.id.into(), 0, 127)?;
    check_str(
        "payload-type name",
        &pt.name,
        1,
        MAX_TOKEN_LEN,
        is_token_char,
    )?;
    check_range(
        "payload-type clockrate",
        pt.clockrate.into(),
        1,
        MAX_CLOCKRATE.into(),
    )?;
    check_range(
        "payload-type channels",
        pt.channels.into(),
        1,
        u8::MAX.into(),
    )?;
    check_count("parameters", pt.params.len(), MAX_PARAMETERS)?;
    for p in &pt.params {
        if p.name.is_empty() {
            // Written bare into the fmtp line: an `=` would turn it into a
            // named parameter when read back.
            check_str("parameter value", &p.value, 1, MAX_TOKEN_LEN, |b| {
                is_fmtp_value_char(b) && b != b'='
            })?;
        } else {
            check_str("parameter name", &p.name, 1, MAX_TOKEN_LEN, is_token_char)?;
            check_str(
                "parameter value",
                &p.value,
                0,
                MAX_TOKEN_LEN,
                is_fmtp_value_char,
            )?;
        }
    }
    check_rtcp_fb(&pt.rtcp_fb)
}

fn check_msid(msid: &Msid) -> Result<(), MappingError> {
    check_str("msid stream", &msid.stream, 1, MAX_MSID_LEN, is_token_char)?;
    if let Some(track) = &msid.track {
        check_str("msid track", track, 1, MAX_MSID_LEN, is_token_char)?;
    }
    Ok(())
}

fn check_content(c: &Content, ssrcs: &mut HashSet<u32>) -> Result<(), MappingError> {
    check_mid("content name", &c.name)?;

    if c.codecs.is_empty() {
        return Err(MappingError::MissingElement("payload-type"));
    }
    check_count("payload-types", c.codecs.len(), MAX_PAYLOAD_TYPES)?;
    let mut ids = HashSet::new();
    for pt in &c.codecs {
        check_payload_type(pt)?;
        if !ids.insert(pt.id) {
            return Err(MappingError::Duplicate("payload-type id"));
        }
    }
    check_rtcp_fb(&c.rtcp_fb)?;

    check_count("rtp-hdrexts", c.hdrexts.len(), MAX_HDREXTS)?;
    let mut ids = HashSet::new();
    for ext in &c.hdrexts {
        check_range("rtp-hdrext id", ext.id.into(), 1, 255)?;
        check_str("rtp-hdrext uri", &ext.uri, 1, MAX_TOKEN_LEN, is_visible)?;
        if !ids.insert(ext.id) {
            return Err(MappingError::Duplicate("rtp-hdrext id"));
        }
    }

    check_count("sources", c.sources.len(), MAX_SOURCES)?;
    for s in &c.sources {
        // SSRCs demultiplex the whole BUNDLE: unique across contents.
        if !ssrcs.insert(s.ssrc) {
            return Err(MappingError::Duplicate("source ssrc"));
        }
        if let Some(cname) = &s.cname {
            check_str("cname", cname, 1, MAX_TOKEN_LEN, is_visible)?;
        }
        if let Some(msid) = &s.msid {
            check_msid(msid)?;
        }
        if let Some(owner) = &s.owner {
            check_jid("owner jid", owner)?;
        }
    }

    check_count("ssrc-groups", c.ssrc_groups.len(), MAX_SSRC_GROUPS)?;
    for g in &c.ssrc_groups {
        check_str(
            "ssrc-group semantics",
            &g.semantics,
            1,
            MAX_TOKEN_LEN,
            is_token_char,
        )?;
        if g.ssrcs.is_empty() {
            return Err(MappingError::MissingElement("source"));
        }
        check_count("ssrcs in a group", g.ssrcs.len(), MAX_GROUP_SSRCS)?;
    }

    check_count("rids", c.rids.len(), MAX_RIDS)?;
    let mut rids = HashSet::new();
    for rid in &c.rids {
        check_str("rid id", &rid.id, 1, MAX_RID_LEN, is_id_char)?;
        if !rids.insert(rid.id.as_str()) {
            return Err(MappingError::Duplicate("rid id"));
        }
    }
    if let Some(sim) = &c.simulcast {
        if sim.send.is_none() && sim.recv.is_none() {
            return Err(MappingError::MissingField("simulcast send/recv"));
        }
        if let Some(list) = &sim.send {
            check_simulcast_list("simulcast send", list)?;
        }
        if let Some(list) = &sim.recv {
            check_simulcast_list("simulcast recv", list)?;
        }
    }

    check_transport(&c.transport)
}

impl Session {
    /// Checks every rule of the mapping: counts, lengths, character sets,
    /// number ranges and uniqueness. Every conversion in this module calls
    /// it; call it yourself after editing a `Session` if you want the error
    /// early.
    pub fn validate(&self) -> Result<(), MappingError> {
        check_count("contents", self.contents.len(), MAX_CONTENTS)?;
        let mut names = HashSet::new();
        let mut ssrcs = HashSet::new();
        for c in &self.contents {
            check_content(c, &mut ssrcs)?;
            if !names.insert(c.name.as_str()) {
                return Err(MappingError::Duplicate("content name"));
            }
        }
        check_count("BUNDLE contents", self.bundle.len(), MAX_CONTENTS)?;
        let mut names = HashSet::new();
        for name in &self.bundle {
            check_mid("BUNDLE content name", name)?;
            if !names.insert(name.as_str()) {
                return Err(MappingError::Duplicate("BUNDLE content name"));
            }
        }
        Ok(())
    }
}
