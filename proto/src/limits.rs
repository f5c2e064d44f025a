//! The call protocol's limits (docs/PROTOCOL.md §8), one number each.
//!
//! Every crate that enforces one of these reads it from here: the media
//! plane (m-lines per session), the Jingle <-> SDP mapping, the rooms and
//! Confab's own clients. The browser page reads the same numbers from
//! `web/client/src/limits.json`, which a test writes from this module and
//! compares, so the page cannot drift from the bridge.
//!
//! What a limit bounds is what a peer could otherwise make the bridge (or
//! a client) allocate without bound. Exceeding one is refused with the
//! protocol's error, never truncated silently.

/// Most participants in one room (the default; a deployment may lower it).
pub const MAX_OCCUPANTS: usize = 200;

/// Most contents (m-lines) in one Jingle session or one Jingle element:
/// the participant's own plus one per remote track the bridge adds.
pub const MAX_CONTENTS: usize = 512;

// A full room in which every participant sends audio and video fits in
// every participant's session: its own two contents and two per other.
const _: () = assert!(2 + 2 * (MAX_OCCUPANTS - 1) <= MAX_CONTENTS);

/// At most this many payload types per content.
pub const MAX_PAYLOAD_TYPES: usize = 32;
/// At most this many parameters per payload type (fmtp) or per source.
pub const MAX_PARAMETERS: usize = 32;
/// At most this many rtcp-fb entries per payload type (and wildcard ones per content).
pub const MAX_RTCP_FB: usize = 32;
/// At most this many header extensions per content.
pub const MAX_HDREXTS: usize = 32;
/// At most this many sources (SSRCs) per content.
pub const MAX_SOURCES: usize = 64;
/// At most this many SSRC groups per content.
pub const MAX_SSRC_GROUPS: usize = 32;
/// At most this many SSRCs in one SSRC group.
pub const MAX_GROUP_SSRCS: usize = 16;
/// At most this many rids per content.
pub const MAX_RIDS: usize = 16;
/// At most this many candidates per transport.
pub const MAX_CANDIDATES: usize = 32;
/// At most this many unrecognised child elements per element (they are skipped).
pub const MAX_UNKNOWN_CHILDREN: usize = 32;
/// Longest general token (codec name, rtcp-fb type, fmtp value, cname, URI, ...), in bytes.
pub const MAX_TOKEN_LEN: usize = 256;
/// Longest content name / mid, in bytes. RFC 8843 §15 (the one-byte
/// `sdes:mid` header extension carries at most 16 bytes) and str0m's `Mid`,
/// which silently truncates longer ones.
pub const MAX_MID_LEN: usize = 16;
/// Longest rid, in bytes: str0m's `Rid` silently truncates longer ones.
pub const MAX_RID_LEN: usize = 8;
/// Largest SDP text the mapping accepts, in bytes.
pub const MAX_SDP_LEN: usize = 1 << 20;
/// Longest msid part (RFC 8830: 1*64 token-char).
pub const MAX_MSID_LEN: usize = 64;
/// Longest Jingle sid, in bytes.
pub const MAX_SID_LEN: usize = 256;

/// Every limit above by name, for the browser page: a test writes them to
/// `web/client/src/limits.json` and fails when the file differs.
pub const ALL: &[(&str, usize)] = &[
    ("MAX_OCCUPANTS", MAX_OCCUPANTS),
    ("MAX_CONTENTS", MAX_CONTENTS),
    ("MAX_PAYLOAD_TYPES", MAX_PAYLOAD_TYPES),
    ("MAX_PARAMETERS", MAX_PARAMETERS),
    ("MAX_RTCP_FB", MAX_RTCP_FB),
    ("MAX_HDREXTS", MAX_HDREXTS),
    ("MAX_SOURCES", MAX_SOURCES),
    ("MAX_SSRC_GROUPS", MAX_SSRC_GROUPS),
    ("MAX_GROUP_SSRCS", MAX_GROUP_SSRCS),
    ("MAX_RIDS", MAX_RIDS),
    ("MAX_CANDIDATES", MAX_CANDIDATES),
    ("MAX_UNKNOWN_CHILDREN", MAX_UNKNOWN_CHILDREN),
    ("MAX_TOKEN_LEN", MAX_TOKEN_LEN),
    ("MAX_MID_LEN", MAX_MID_LEN),
    ("MAX_RID_LEN", MAX_RID_LEN),
    ("MAX_SDP_LEN", MAX_SDP_LEN),
    ("MAX_MSID_LEN", MAX_MSID_LEN),
    ("MAX_SID_LEN", MAX_SID_LEN),
];
