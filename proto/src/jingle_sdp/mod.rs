//! The one Jingle <-> SDP mapping (docs/PROTOCOL.md §3-§4, §7).
//!
//! Participants speak Jingle (XEP-0166/0167/0176/0320/0338/0339/0293/0294 plus
//! Confab's two extensions `urn:confab:jingle:simulcast:0` and
//! `urn:confab:jingle:owner:0`); the media plane (`sfu`, built on str0m) and
//! WebRTC peers speak SDP. Both are translated through one neutral model,
//! [`Session`]:
//!
//! ```text
//!   <jingle/> --jingle_to_session--> Session --session_to_sdp--> SDP text
//!   <jingle/> <--session_to_jingle-- Session <--sdp_to_session-- SDP text
//! ```
//!
//! What this module is for:
//! - carrying everything a peer needs to set up media: m-lines/contents in
//!   order, directions, codecs (payload type numbers, rtpmap, fmtp, rtcp-fb),
//!   header extensions, sources (SSRC, msid, cname), SSRC groups, rids and
//!   simulcast, ICE credentials and candidates, DTLS fingerprint and setup
//!   role, BUNDLE and rtcp-mux;
//! - translating directions: SDP directions are relative to the *author* of
//!   the SDP, Jingle `senders` to the session roles (initiator = participant,
//!   responder = bridge). Every SDP function therefore takes the author's
//!   [`Role`] (see [`Senders::from_direction`]);
//! - validating every value before it can become SDP or Jingle
//!   ([`Session::validate`], run by every conversion): no CR/LF or other
//!   control characters, restricted character sets for anything that is a
//!   field of an SDP line, bounded lengths, numbers in range and bounded
//!   counts (the `MAX_*` constants). Violations are a [`MappingError`], which
//!   the focus turns into a Jingle `<bad-request/>`. Nothing here panics on
//!   input.
//!
//! What it is not for: it does not negotiate (no codec intersection, no
//! answer generation: str0m does that), keep session state, route stanzas or
//! build IQs, and it is not a general SDP library: the SDP side understands
//! exactly the lines the mapping needs and ignores the rest (`a=rtcp-rsize`,
//! `a=rtcp-xr`, `a=ice-options`, `network-cost`, rid restrictions, extmap
//! attributes, ...). The whole mapping works on `minidom` elements rather
//! than `xmpp_parsers` types; see `jingle.rs` for why.
//!
//! Where the two sides do not match one to one:
//! - SDP cannot say who created an m-line: [`sdp_to_session`] marks every
//!   content `creator: Initiator`.
//! - Jingle has no `a=ice-lite` ([`Session::ice_lite`]), no `o=` line (the
//!   caller passes the version to [`session_to_sdp`]) and no candidate `id`
//!   in SDP (generated).
//! - XEP-0339 carries msid only on a `<source/>`: a media-level `a=msid` in
//!   an m-section without `a=ssrc` lines (Chromium's rid simulcast) is not
//!   carried. With sources, `a=msid` is written from them, and read into
//!   sources that lack one (Firefox).

mod jingle;
mod sdp;
mod validate;

use std::net::IpAddr;

pub use jingle::{
    jingle_content_names, jingle_to_session, jingle_transports, session_to_jingle, JingleHeader,
};
pub use sdp::{candidate_from_sdp, candidate_to_sdp, sdp_to_session, session_to_sdp};

pub use crate::ns::{NS_CONFAB_OWNER, NS_CONFAB_SIMULCAST};

// The bounds every conversion checks (the `MAX_*` constants) are the
// protocol's, kept in `crate::limits`.
pub(crate) use crate::limits::*;

/// A session description in neither Jingle nor SDP form.
///
/// Produced by [`jingle_to_session`] and [`sdp_to_session`] (always
/// validated), consumed by [`session_to_jingle`] and [`session_to_sdp`]
/// (which validate it first, so a hand-built or modified `Session` cannot
/// smuggle anything into SDP either).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Session {
    /// The contents (SDP m-lines), in order.
    pub contents: Vec<Content>,
    /// The BUNDLE group: content names in group order (empty: no group).
    /// In a content-add it lists every current content of the session, not
    /// only those in the element.
    pub bundle: Vec<String>,
    /// SDP `a=ice-lite` (session level). Jingle has no element for it, so
    /// [`jingle_to_session`] leaves it `false`; a client building SDP from
    /// the bridge's Jingle may set it (docs/PROTOCOL.md §3).
    pub ice_lite: bool,
}

/// One Jingle content = one SDP m-line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    /// Content name = SDP `a=mid`.
    pub name: String,
    /// Who created the content (Jingle `creator`). SDP does not say;
    /// [`sdp_to_session`] sets `Initiator`, and callers mark the contents that
    /// came from a content-add as `Responder`.
    pub creator: Role,
    /// Who sends media on this content, relative to the session roles.
    pub senders: Senders,
    /// `audio` or `video`.
    pub media: Media,
    /// Payload types in preference order (SDP m-line format order).
    pub codecs: Vec<PayloadType>,
    /// rtcp-fb that applies to every payload type (XEP-0293 `<rtcp-fb/>`
    /// directly in `<description/>`, SDP `a=rtcp-fb:*`).
    pub rtcp_fb: Vec<RtcpFb>,
    /// RTP header extensions (XEP-0294, SDP `a=extmap`).
    pub hdrexts: Vec<HdrExt>,
    /// XEP-0294 `<extmap-allow-mixed/>`, SDP `a=extmap-allow-mixed`.
    pub extmap_allow_mixed: bool,
    /// `<rtcp-mux/>`, `a=rtcp-mux`.
    pub rtcp_mux: bool,
    /// Sources (XEP-0339 `<source/>`, SDP `a=ssrc`).
    pub sources: Vec<Source>,
    /// SSRC groups (`<ssrc-group/>`, `a=ssrc-group`), e.g. FID for RTX.
    pub ssrc_groups: Vec<SsrcGroup>,
    /// Simulcast layers (`<rid/>`, `a=rid`), lowest first.
    pub rids: Vec<Rid>,
    /// `<simulcast/>`, `a=simulcast`.
    pub simulcast: Option<Simulcast>,
    /// ICE-UDP transport with DTLS fingerprint.
    pub transport: Transport,
}

/// A Jingle session role. Used for content `creator` and, in the SDP
/// functions, for the *author* of an SDP: the party whose point of view
/// `a=sendonly`/`a=recvonly` express. The participant is always the
/// initiator and the bridge the responder (docs/PROTOCOL.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The session initiator: the participant.
    Initiator,
    /// The session responder: the bridge (room).
    Responder,
}

impl Role {
    /// The Jingle attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Initiator => "initiator",
            Role::Responder => "responder",
        }
    }

    /// The other role.
    pub fn other(self) -> Role {
        match self {
            Role::Initiator => Role::Responder,
            Role::Responder => Role::Initiator,
        }
    }
}

/// Jingle `senders`: who sends media on a content, relative to the session
/// roles (XEP-0166), never to who created the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Senders {
    /// Only the initiator (participant) sends.
    Initiator,
    /// Only the responder (bridge) sends.
    Responder,
    /// Both send (the Jingle default).
    #[default]
    Both,
    /// Nobody sends.
    None,
}

/// An SDP media direction, relative to the SDP's author.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `a=sendrecv`.
    SendRecv,
    /// `a=sendonly`.
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=inactive`.
    Inactive,
}

impl Direction {
    /// The SDP attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
}

impl Senders {
    /// The Jingle attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Senders::Initiator => "initiator",
            Senders::Responder => "responder",
            Senders::Both => "both",
            Senders::None => "none",
        }
    }

    /// Jingle senders from an SDP direction written by `author`.
    ///
    /// The bridge's (responder's) answer with `a=recvonly` on a content the
    /// participant sends gives `Initiator`; a bridge offer with `a=sendonly`
    /// gives `Responder`.
    pub fn from_direction(direction: Direction, author: Role) -> Senders {
        match (direction, author) {
            (Direction::SendRecv, _) => Senders::Both,
            (Direction::Inactive, _) => Senders::None,
            (Direction::SendOnly, Role::Initiator) | (Direction::RecvOnly, Role::Responder) => {
                Senders::Initiator
            }
            (Direction::SendOnly, Role::Responder) | (Direction::RecvOnly, Role::Initiator) => {
                Senders::Responder
            }
        }
    }

    /// The SDP direction `author` writes for these senders (the inverse of
    /// [`Senders::from_direction`]).
    pub fn to_direction(self, author: Role) -> Direction {
        match (self, author) {
            (Senders::Both, _) => Direction::SendRecv,
            (Senders::None, _) => Direction::Inactive,
            (Senders::Initiator, Role::Initiator) | (Senders::Responder, Role::Responder) => {
                Direction::SendOnly
            }
            (Senders::Initiator, Role::Responder) | (Senders::Responder, Role::Initiator) => {
                Direction::RecvOnly
            }
        }
    }
}

/// The media type of a content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Media {
    /// `audio`.
    Audio,
    /// `video`.
    Video,
}

impl Media {
    /// The Jingle `media` attribute / SDP m-line media value.
    pub fn as_str(self) -> &'static str {
        match self {
            Media::Audio => "audio",
            Media::Video => "video",
        }
    }
}

/// One codec (XEP-0167 `<payload-type/>`, SDP `a=rtpmap` + `a=fmtp` + `a=rtcp-fb`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadType {
    /// Payload type number, 0..=127.
    pub id: u8,
    /// Encoding name (`opus`, `VP8`, `H264`, `rtx`, `red`, ...).
    pub name: String,
    /// Clock rate in Hz.
    pub clockrate: u32,
    /// Channels (1 unless stated; audio only in practice).
    pub channels: u8,
    /// fmtp parameters, in order. A parameter with an empty name is an fmtp
    /// value that is not `name=value` (RED's `111/111`).
    pub params: Vec<Parameter>,
    /// rtcp-fb for this payload type.
    pub rtcp_fb: Vec<RtcpFb>,
}

/// An fmtp parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parameter {
    /// Name (may be empty, see [`PayloadType::params`]).
    pub name: String,
    /// Value.
    pub value: String,
}

/// An rtcp-fb entry (`a=rtcp-fb:<pt> <kind> [<subtype>]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcpFb {
    /// Feedback type (`nack`, `ccm`, `goog-remb`, `transport-cc`, ...).
    pub kind: String,
    /// Subtype (`pli`, `fir`, ...).
    pub subtype: Option<String>,
}

/// An RTP header extension (XEP-0294 `<rtp-hdrext/>`, SDP `a=extmap`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HdrExt {
    /// Extension id, 1..=255.
    pub id: u16,
    /// Extension URI.
    pub uri: String,
    /// Who may send it (session roles; `Both` when not stated).
    pub senders: Senders,
}

/// A source (XEP-0339 `<source/>`, SDP `a=ssrc`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The SSRC.
    pub ssrc: u32,
    /// `cname` parameter.
    pub cname: Option<String>,
    /// `msid` parameter.
    pub msid: Option<Msid>,
    /// Confab extension: full JID of the occupant that owns this track
    /// (`<owner xmlns='urn:confab:jingle:owner:0' jid/>`). Jingle only: SDP
    /// has no place for it.
    pub owner: Option<String>,
}

/// A media stream id (RFC 8830): `STREAM [TRACK]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msid {
    /// The MediaStream id (`-` for none).
    pub stream: String,
    /// The track id ("appdata"), usually present.
    pub track: Option<String>,
}

/// An SSRC group (`<ssrc-group semantics/>`, `a=ssrc-group`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsrcGroup {
    /// Semantics (`FID`, `SIM`, `FEC-FR`, ...).
    pub semantics: String,
    /// The SSRCs, in order.
    pub ssrcs: Vec<u32>,
}

/// A simulcast layer (Confab extension `<rid id direction/>`, SDP `a=rid`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rid {
    /// The rid.
    pub id: String,
    /// Send or receive, from the point of view of the description's author
    /// (as in SDP; docs/PROTOCOL.md: the participant says `send`, the bridge `recv`).
    pub direction: RidDirection,
}

/// Direction of a rid or a simulcast stream list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RidDirection {
    /// `send`.
    Send,
    /// `recv`.
    Recv,
}

impl RidDirection {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            RidDirection::Send => "send",
            RidDirection::Recv => "recv",
        }
    }
}

/// Simulcast stream lists (Confab extension `<simulcast send recv/>`, SDP
/// `a=simulcast:send ... recv ...`), in RFC 8853 syntax (`q;h;f`, `1,2;3`,
/// `~` for paused), author's point of view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Simulcast {
    /// Send stream list.
    pub send: Option<String>,
    /// Receive stream list.
    pub recv: Option<String>,
}

/// An XEP-0176 ICE-UDP transport with its XEP-0320 fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Transport {
    /// ICE username fragment (4..=256 ice-chars).
    pub ufrag: Option<String>,
    /// ICE password (22..=256 ice-chars).
    pub pwd: Option<String>,
    /// DTLS fingerprint and setup role.
    pub fingerprint: Option<Fingerprint>,
    /// ICE candidates.
    pub candidates: Vec<Candidate>,
}

/// A DTLS certificate fingerprint (`a=fingerprint` + `a=setup`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// Hash function (`sha-256`, ...), lower case.
    pub hash: String,
    /// Colon-separated hex bytes.
    pub value: String,
    /// DTLS role.
    pub setup: Setup,
}

/// DTLS setup role (RFC 4145 / XEP-0320).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Setup {
    /// `active`: connects.
    Active,
    /// `passive`: accepts.
    Passive,
    /// `actpass`: either (offers).
    Actpass,
}

impl Setup {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Setup::Active => "active",
            Setup::Passive => "passive",
            Setup::Actpass => "actpass",
        }
    }
}

/// An ICE candidate (XEP-0176 `<candidate/>`, SDP `a=candidate`).
///
/// The Jingle `id` attribute has no SDP counterpart; [`session_to_jingle`]
/// generates one and [`jingle_to_session`] ignores it. `network` is Jingle's
/// `network` and Chromium's `network-id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Foundation (1..=32 ice-chars).
    pub foundation: String,
    /// Component id, 1..=256 (1 = RTP).
    pub component: u16,
    /// Transport protocol.
    pub protocol: Protocol,
    /// Priority.
    pub priority: u32,
    /// Address (an IP address; mDNS host names are not accepted).
    pub ip: IpAddr,
    /// Port, 1..=65535.
    pub port: u16,
    /// Candidate type.
    pub kind: CandidateType,
    /// Related address (srflx/relay/prflx).
    pub rel_addr: Option<IpAddr>,
    /// Related port.
    pub rel_port: Option<u16>,
    /// TCP candidate type.
    pub tcptype: Option<TcpType>,
    /// ICE generation.
    pub generation: u32,
    /// Network index (`network-id`).
    pub network: Option<u32>,
}

/// Candidate transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `udp`.
    Udp,
    /// `tcp`.
    Tcp,
}

impl Protocol {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Udp => "udp",
            Protocol::Tcp => "tcp",
        }
    }
}

/// Candidate type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CandidateType {
    /// `host`.
    Host,
    /// `srflx`.
    Srflx,
    /// `prflx`.
    Prflx,
    /// `relay`.
    Relay,
}

impl CandidateType {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            CandidateType::Host => "host",
            CandidateType::Srflx => "srflx",
            CandidateType::Prflx => "prflx",
            CandidateType::Relay => "relay",
        }
    }
}

/// TCP candidate type (RFC 6544).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpType {
    /// `active`.
    Active,
    /// `passive`.
    Passive,
    /// `so` (simultaneous open).
    So,
}

impl TcpType {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            TcpType::Active => "active",
            TcpType::Passive => "passive",
            TcpType::So => "so",
        }
    }
}

/// Why a Jingle element or SDP could not be mapped. The signaling layer
/// answers these with a Jingle `<bad-request/>`. Messages name the field but
/// never echo the offending value (it may be huge or hostile).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// The element is not `<jingle xmlns='urn:xmpp:jingle:1'/>`.
    #[error("not a <jingle xmlns='urn:xmpp:jingle:1'/> element")]
    NotJingle,
    /// A required element is missing (e.g. a content without description).
    #[error("missing <{0}/>")]
    MissingElement(&'static str),
    /// A required attribute or SDP field is missing.
    #[error("missing {0}")]
    MissingField(&'static str),
    /// A value contains a character not allowed there: CR, LF or another
    /// control character, or a space/separator that would change the SDP's
    /// structure.
    #[error("{0} contains a character that is not allowed")]
    ForbiddenCharacter(&'static str),
    /// A value is shorter or longer than allowed.
    #[error("{field} must be {min}..={max} bytes long")]
    BadLength {
        /// The field.
        field: &'static str,
        /// Shortest allowed length.
        min: usize,
        /// Longest allowed length.
        max: usize,
    },
    /// A number does not parse or is outside its range.
    #[error("{field} must be a number in {min}..={max}")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// Smallest allowed value.
        min: u64,
        /// Largest allowed value.
        max: u64,
    },
    /// A value is not one of the known keywords (senders, setup, media, ...)
    /// or has the wrong syntax (address, fingerprint, JID, ...).
    #[error("{0} has an invalid or unsupported value")]
    InvalidValue(&'static str),
    /// More items than the bound allows.
    #[error("too many {what} (at most {max})")]
    TooMany {
        /// What was counted.
        what: &'static str,
        /// The bound.
        max: usize,
    },
    /// A name or number that must be unique appears twice.
    #[error("duplicate {0}")]
    Duplicate(&'static str),
    /// The input is larger than accepted.
    #[error("{what} is too large (at most {max} bytes)")]
    TooLarge {
        /// What was measured.
        what: &'static str,
        /// The bound.
        max: usize,
    },
    /// An SDP line is malformed.
    #[error("malformed SDP line {line}: {reason}")]
    MalformedSdp {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
}
