//! Jingle side of the mapping: `<jingle/>` elements <-> [`Session`].
//!
//! This works on `minidom` elements directly instead of xmpp-parsers'
//! typed structs (`jingle::Jingle`, `jingle_rtp::Description`,
//! `jingle_ice_udp::Transport`, ...), because for Confab's Jingle those
//! types either fail or lose data:
//! - they reject unknown children and attributes, so the simulcast
//!   extension (`<rid/>`, `<simulcast/>`), the owner extension, XEP-0294
//!   `<extmap-allow-mixed/>`, description-level `<rtcp-fb/>` and the
//!   `tcptype` candidate attribute make the whole stanza fail to parse;
//! - `ssrc-group semantics='SIM'` is rejected;
//! - `jingle_ice_udp::Transport`'s fields are private, and its `Candidate`
//!   requires `id` and limits `generation`/`network` to `u8`.
//!
//! xmpp-parsers still provides the namespaces, [`Action`] and [`Jid`].
//! Parsing bounds every count *before* reading further children, so a
//! stanza with thousands of contents or candidates costs no more than the
//! bound; all values are then checked by [`Session::validate`].

use std::net::IpAddr;
use std::str::FromStr;

use minidom::rxml::NcName;
use minidom::{Element, ElementBuilder};
use xmpp_parsers::jid::Jid;
use xmpp_parsers::jingle::Action;
use xmpp_parsers::ns;

use super::validate::{check_mid, check_str, check_text, check_transport, is_token_char};
use super::*;

/// Attribute name (an XML NCName checked at compile time).
macro_rules! nc {
    ($name:literal) => {
        NcName::from(minidom::rxml::xml_ncname!($name))
    };
}

/// The attributes of a `<jingle/>` element other than its contents.
#[derive(Debug, Clone, PartialEq)]
pub struct JingleHeader {
    /// `action`.
    pub action: Action,
    /// `sid`.
    pub sid: String,
    /// `initiator` (required in session-initiate).
    pub initiator: Option<Jid>,
    /// `responder` (required in session-accept).
    pub responder: Option<Jid>,
}

impl JingleHeader {
    /// Reads the header of a `<jingle xmlns='urn:xmpp:jingle:1'/>` element.
    pub fn from_element(jingle: &Element) -> Result<JingleHeader, MappingError> {
        check_is_jingle(jingle)?;
        let action = required(jingle, "action", "jingle action")?;
        let action =
            Action::from_str(action).map_err(|_| MappingError::InvalidValue("jingle action"))?;
        let sid = required(jingle, "sid", "jingle sid")?;
        check_text("jingle sid", sid, MAX_SID_LEN)?;
        Ok(JingleHeader {
            action,
            sid: sid.to_owned(),
            initiator: optional_jid(jingle, "initiator", "jingle initiator")?,
            responder: optional_jid(jingle, "responder", "jingle responder")?,
        })
    }
}

fn optional_jid(
    el: &Element,
    name: &'static str,
    field: &'static str,
) -> Result<Option<Jid>, MappingError> {
    match el.attr(name) {
        None => Ok(None),
        Some(value) => {
            check_text(field, value, 3071)?;
            Jid::new(value)
                .map(Some)
                .map_err(|_| MappingError::InvalidValue(field))
        }
    }
}

// ------------------------------------------------------------------ reading

fn check_is_jingle(el: &Element) -> Result<(), MappingError> {
    if el.is("jingle", ns::JINGLE) {
        Ok(())
    } else {
        Err(MappingError::NotJingle)
    }
}

fn required<'a>(
    el: &'a Element,
    name: &'static str,
    field: &'static str,
) -> Result<&'a str, MappingError> {
    el.attr(name).ok_or(MappingError::MissingField(field))
}

/// Parses a decimal number in `min..=max`.
fn number(field: &'static str, value: &str, min: u64, max: u64) -> Result<u64, MappingError> {
    let out_of_range = MappingError::OutOfRange { field, min, max };
    // At most 20 digits fit in a u64; anything longer is out of range
    // without looking further.
    if value.is_empty() || value.len() > 20 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(out_of_range);
    }
    match value.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(out_of_range),
    }
}

fn attr_number(
    el: &Element,
    name: &'static str,
    field: &'static str,
    min: u64,
    max: u64,
) -> Result<u64, MappingError> {
    number(field, required(el, name, field)?, min, max)
}

fn optional_number(
    el: &Element,
    name: &'static str,
    field: &'static str,
    min: u64,
    max: u64,
) -> Result<Option<u64>, MappingError> {
    el.attr(name)
        .map(|v| number(field, v, min, max))
        .transpose()
}

/// Fails if `items` already holds `max` entries (checked before parsing
/// the next one).
fn room_for<T>(items: &[T], max: usize, what: &'static str) -> Result<(), MappingError> {
    if items.len() >= max {
        Err(MappingError::TooMany { what, max })
    } else {
        Ok(())
    }
}

/// Counts skipped (unrecognised) children of one element.
struct Unknown(usize);

impl Unknown {
    fn skip(&mut self) -> Result<(), MappingError> {
        self.0 += 1;
        if self.0 > MAX_UNKNOWN_CHILDREN {
            return Err(MappingError::TooMany {
                what: "unrecognised child elements",
                max: MAX_UNKNOWN_CHILDREN,
            });
        }
        Ok(())
    }
}

pub(crate) fn parse_senders(
    value: Option<&str>,
    field: &'static str,
) -> Result<Senders, MappingError> {
    Ok(match value {
        None | Some("both") => Senders::Both,
        Some("initiator") => Senders::Initiator,
        Some("responder") => Senders::Responder,
        Some("none") => Senders::None,
        Some(_) => return Err(MappingError::InvalidValue(field)),
    })
}

pub(crate) fn parse_msid(value: &str) -> Msid {
    match value.split_once(' ') {
        Some((stream, track)) => Msid {
            stream: stream.to_owned(),
            track: Some(track.to_owned()),
        },
        None => Msid {
            stream: value.to_owned(),
            track: None,
        },
    }
}

/// Reads every content and the BUNDLE group of a `<jingle/>` element
/// (session-initiate, session-accept, content-add, content-accept) into a
/// validated [`Session`]. Each content must have an RTP `<description/>`
/// and an ICE-UDP `<transport/>`; for transport-info use
/// [`jingle_transports`], for content-remove [`jingle_content_names`].
pub fn jingle_to_session(jingle: &Element) -> Result<Session, MappingError> {
    check_is_jingle(jingle)?;
    let mut session = Session::default();
    let mut have_bundle = false;
    let mut unknown = Unknown(0);
    for child in jingle.children() {
        if child.is("content", ns::JINGLE) {
            room_for(&session.contents, MAX_CONTENTS, "contents")?;
            session.contents.push(parse_content(child)?);
        } else if child.is("group", ns::JINGLE_GROUPING)
            && child.attr("semantics") == Some("BUNDLE")
        {
            if have_bundle {
                return Err(MappingError::Duplicate("BUNDLE group"));
            }
            have_bundle = true;
            for c in child.children() {
                if c.is("content", ns::JINGLE_GROUPING) {
                    room_for(&session.bundle, MAX_CONTENTS, "BUNDLE contents")?;
                    session
                        .bundle
                        .push(required(c, "name", "BUNDLE content name")?.to_owned());
                }
            }
        } else {
            unknown.skip()?;
        }
    }
    session.validate()?;
    Ok(session)
}

/// Reads the transports of a transport-info: `(content name, transport)`
/// for every content, validated.
pub fn jingle_transports(jingle: &Element) -> Result<Vec<(String, Transport)>, MappingError> {
    check_is_jingle(jingle)?;
    let mut out: Vec<(String, Transport)> = Vec::new();
    let mut unknown = Unknown(0);
    for content in jingle.children() {
        if !content.is("content", ns::JINGLE) {
            unknown.skip()?;
            continue;
        }
        room_for(&out, MAX_CONTENTS, "contents")?;
        let name = required(content, "name", "content name")?;
        check_mid("content name", name)?;
        let transport = content
            .children()
            .find(|c| c.name() == "transport")
            .ok_or(MappingError::MissingElement("transport"))?;
        let transport = parse_transport(transport)?;
        check_transport(&transport)?;
        out.push((name.to_owned(), transport));
    }
    Ok(out)
}

/// Reads the content names of a content-remove (or any action), validated.
pub fn jingle_content_names(jingle: &Element) -> Result<Vec<String>, MappingError> {
    check_is_jingle(jingle)?;
    let mut names: Vec<String> = Vec::new();
    let mut unknown = Unknown(0);
    for content in jingle.children() {
        if !content.is("content", ns::JINGLE) {
            unknown.skip()?;
            continue;
        }
        room_for(&names, MAX_CONTENTS, "contents")?;
        let name = required(content, "name", "content name")?;
        check_mid("content name", name)?;
        names.push(name.to_owned());
    }
    Ok(names)
}

fn parse_content(el: &Element) -> Result<Content, MappingError> {
    let creator = match el.attr("creator") {
        // REQUIRED by XEP-0166; tolerate its absence as the participant's own.
        None | Some("initiator") => Role::Initiator,
        Some("responder") => Role::Responder,
        Some(_) => return Err(MappingError::InvalidValue("content creator")),
    };
    let mut content = Content {
        name: required(el, "name", "content name")?.to_owned(),
        creator,
        senders: parse_senders(el.attr("senders"), "content senders")?,
        media: Media::Audio,
        codecs: Vec::new(),
        rtcp_fb: Vec::new(),
        hdrexts: Vec::new(),
        extmap_allow_mixed: false,
        rtcp_mux: false,
        sources: Vec::new(),
        ssrc_groups: Vec::new(),
        rids: Vec::new(),
        simulcast: None,
        transport: Transport::default(),
    };
    let (mut have_description, mut have_transport) = (false, false);
    let mut unknown = Unknown(0);
    for child in el.children() {
        match child.name() {
            "description" => {
                if !child.is("description", ns::JINGLE_RTP) {
                    return Err(MappingError::InvalidValue("description (not RTP)"));
                }
                if have_description {
                    return Err(MappingError::Duplicate("description"));
                }
                have_description = true;
                parse_description(child, &mut content)?;
            }
            "transport" => {
                if have_transport {
                    return Err(MappingError::Duplicate("transport"));
                }
                have_transport = true;
                content.transport = parse_transport(child)?;
            }
            _ => unknown.skip()?,
        }
    }
    if !have_description {
        return Err(MappingError::MissingElement("description"));
    }
    if !have_transport {
        return Err(MappingError::MissingElement("transport"));
    }
    Ok(content)
}

fn parse_rtcp_fb(el: &Element) -> Result<RtcpFb, MappingError> {
    Ok(RtcpFb {
        kind: required(el, "type", "rtcp-fb type")?.to_owned(),
        subtype: el.attr("subtype").map(str::to_owned),
    })
}

fn parse_description(el: &Element, c: &mut Content) -> Result<(), MappingError> {
    c.media = match required(el, "media", "description media")? {
        "audio" => Media::Audio,
        "video" => Media::Video,
        _ => return Err(MappingError::InvalidValue("description media")),
    };
    let mut unknown = Unknown(0);
    for child in el.children() {
        if child.is("payload-type", ns::JINGLE_RTP) {
            room_for(&c.codecs, MAX_PAYLOAD_TYPES, "payload-types")?;
            c.codecs.push(parse_payload_type(child)?);
        } else if child.is("rtcp-fb", ns::JINGLE_RTCP_FB) {
            room_for(&c.rtcp_fb, MAX_RTCP_FB, "rtcp-fb")?;
            c.rtcp_fb.push(parse_rtcp_fb(child)?);
        } else if child.is("rtp-hdrext", ns::JINGLE_RTP_HDREXT) {
            room_for(&c.hdrexts, MAX_HDREXTS, "rtp-hdrexts")?;
            c.hdrexts.push(HdrExt {
                // Parsed as u16 range 1..=255 right away: no wider value is valid.
                id: attr_number(child, "id", "rtp-hdrext id", 1, 255)? as u16,
                uri: required(child, "uri", "rtp-hdrext uri")?.to_owned(),
                senders: parse_senders(child.attr("senders"), "rtp-hdrext senders")?,
            });
        } else if child.is("extmap-allow-mixed", ns::JINGLE_RTP_HDREXT) {
            c.extmap_allow_mixed = true;
        } else if child.is("rtcp-mux", ns::JINGLE_RTP) {
            c.rtcp_mux = true;
        } else if child.is("source", ns::JINGLE_SSMA) {
            room_for(&c.sources, MAX_SOURCES, "sources")?;
            c.sources.push(parse_source(child)?);
        } else if child.is("ssrc-group", ns::JINGLE_SSMA) {
            room_for(&c.ssrc_groups, MAX_SSRC_GROUPS, "ssrc-groups")?;
            let mut group = SsrcGroup {
                semantics: required(child, "semantics", "ssrc-group semantics")?.to_owned(),
                ssrcs: Vec::new(),
            };
            for s in child.children().filter(|s| s.is("source", ns::JINGLE_SSMA)) {
                room_for(&group.ssrcs, MAX_GROUP_SSRCS, "ssrcs in a group")?;
                group
                    .ssrcs
                    .push(attr_number(s, "ssrc", "ssrc", 0, u32::MAX.into())? as u32);
            }
            c.ssrc_groups.push(group);
        } else if child.is("rid", NS_CONFAB_SIMULCAST) {
            room_for(&c.rids, MAX_RIDS, "rids")?;
            c.rids.push(Rid {
                id: required(child, "id", "rid id")?.to_owned(),
                direction: parse_rid_direction(required(child, "direction", "rid direction")?)?,
            });
        } else if child.is("simulcast", NS_CONFAB_SIMULCAST) {
            if c.simulcast.is_some() {
                return Err(MappingError::Duplicate("simulcast"));
            }
            c.simulcast = Some(Simulcast {
                send: child.attr("send").map(str::to_owned),
                recv: child.attr("recv").map(str::to_owned),
            });
        } else {
            unknown.skip()?;
        }
    }
    Ok(())
}

pub(crate) fn parse_rid_direction(value: &str) -> Result<RidDirection, MappingError> {
    match value {
        "send" => Ok(RidDirection::Send),
        "recv" => Ok(RidDirection::Recv),
        _ => Err(MappingError::InvalidValue("rid direction")),
    }
}

fn parse_payload_type(el: &Element) -> Result<PayloadType, MappingError> {
    let mut pt = PayloadType {
        id: attr_number(el, "id", "payload-type id", 0, 127)? as u8,
        name: required(el, "name", "payload-type name")?.to_owned(),
        clockrate: attr_number(
            el,
            "clockrate",
            "payload-type clockrate",
            1,
            u32::MAX.into(),
        )? as u32,
        channels: optional_number(el, "channels", "payload-type channels", 1, u8::MAX.into())?
            .map_or(1, |n| n as u8),
        params: Vec::new(),
        rtcp_fb: Vec::new(),
    };
    let mut unknown = Unknown(0);
    for child in el.children() {
        if child.is("parameter", ns::JINGLE_RTP) {
            room_for(&pt.params, MAX_PARAMETERS, "parameters")?;
            pt.params.push(Parameter {
                name: required(child, "name", "parameter name")?.to_owned(),
                value: required(child, "value", "parameter value")?.to_owned(),
            });
        } else if child.is("rtcp-fb", ns::JINGLE_RTCP_FB) {
            room_for(&pt.rtcp_fb, MAX_RTCP_FB, "rtcp-fb")?;
            pt.rtcp_fb.push(parse_rtcp_fb(child)?);
        } else {
            unknown.skip()?;
        }
    }
    Ok(pt)
}

fn parse_source(el: &Element) -> Result<Source, MappingError> {
    let mut source = Source {
        ssrc: attr_number(el, "ssrc", "ssrc", 0, u32::MAX.into())? as u32,
        cname: None,
        msid: None,
        owner: None,
    };
    let mut parameters = 0;
    let mut unknown = Unknown(0);
    for child in el.children() {
        if child.is("parameter", ns::JINGLE_SSMA) {
            parameters += 1;
            if parameters > MAX_PARAMETERS {
                return Err(MappingError::TooMany {
                    what: "source parameters",
                    max: MAX_PARAMETERS,
                });
            }
            let value = child.attr("value");
            match required(child, "name", "source parameter name")? {
                "cname" => {
                    if source.cname.is_some() {
                        return Err(MappingError::Duplicate("source cname"));
                    }
                    let value = value.ok_or(MappingError::MissingField("source cname value"))?;
                    source.cname = Some(value.to_owned());
                }
                "msid" => {
                    if source.msid.is_some() {
                        return Err(MappingError::Duplicate("source msid"));
                    }
                    let value = value.ok_or(MappingError::MissingField("source msid value"))?;
                    source.msid = Some(parse_msid(value));
                }
                // Other XEP-0339 parameters (mslabel, label, ...) carry
                // nothing a peer needs: skipped, but still only if sane.
                name => {
                    check_str(
                        "source parameter name",
                        name,
                        1,
                        MAX_TOKEN_LEN,
                        is_token_char,
                    )?;
                    if let Some(value) = value {
                        check_text("source parameter value", value, MAX_TOKEN_LEN)?;
                    }
                }
            }
        } else if child.is("owner", NS_CONFAB_OWNER) {
            if source.owner.is_some() {
                return Err(MappingError::Duplicate("source owner"));
            }
            source.owner = Some(required(child, "jid", "owner jid")?.to_owned());
        } else {
            unknown.skip()?;
        }
    }
    Ok(source)
}

fn parse_transport(el: &Element) -> Result<Transport, MappingError> {
    if !el.is("transport", ns::JINGLE_ICE_UDP) {
        return Err(MappingError::InvalidValue("transport (not ICE-UDP)"));
    }
    let mut t = Transport {
        ufrag: el.attr("ufrag").map(str::to_owned),
        pwd: el.attr("pwd").map(str::to_owned),
        fingerprint: None,
        candidates: Vec::new(),
    };
    let mut unknown = Unknown(0);
    for child in el.children() {
        if child.is("candidate", ns::JINGLE_ICE_UDP) {
            room_for(&t.candidates, MAX_CANDIDATES, "candidates")?;
            t.candidates.push(parse_candidate(child)?);
        } else if child.is("fingerprint", ns::JINGLE_DTLS) && t.fingerprint.is_none() {
            t.fingerprint = Some(Fingerprint {
                hash: required(child, "hash", "fingerprint hash")?.to_ascii_lowercase(),
                value: child.text().trim().to_owned(),
                setup: parse_setup(required(child, "setup", "fingerprint setup")?)?,
            });
        } else {
            // Further fingerprints, Jitsi's <rtcp-mux/> or <web-socket/>, ...
            unknown.skip()?;
        }
    }
    Ok(t)
}

pub(crate) fn parse_setup(value: &str) -> Result<Setup, MappingError> {
    match value {
        "active" => Ok(Setup::Active),
        "passive" => Ok(Setup::Passive),
        "actpass" => Ok(Setup::Actpass),
        _ => Err(MappingError::InvalidValue("setup")),
    }
}

pub(crate) fn parse_candidate_type(value: &str) -> Result<CandidateType, MappingError> {
    match value {
        "host" => Ok(CandidateType::Host),
        "srflx" => Ok(CandidateType::Srflx),
        "prflx" => Ok(CandidateType::Prflx),
        "relay" => Ok(CandidateType::Relay),
        _ => Err(MappingError::InvalidValue("candidate type")),
    }
}

pub(crate) fn parse_protocol(value: &str) -> Result<Protocol, MappingError> {
    if value.eq_ignore_ascii_case("udp") {
        Ok(Protocol::Udp)
    } else if value.eq_ignore_ascii_case("tcp") {
        Ok(Protocol::Tcp)
    } else {
        Err(MappingError::InvalidValue("candidate protocol"))
    }
}

pub(crate) fn parse_tcptype(value: &str) -> Result<TcpType, MappingError> {
    match value {
        "active" => Ok(TcpType::Active),
        "passive" => Ok(TcpType::Passive),
        "so" => Ok(TcpType::So),
        _ => Err(MappingError::InvalidValue("candidate tcptype")),
    }
}

pub(crate) fn parse_ip(field: &'static str, value: &str) -> Result<IpAddr, MappingError> {
    // The longest IPv6 text form is 45 bytes; don't hand more to the parser.
    if value.len() > 64 {
        return Err(MappingError::BadLength {
            field,
            min: 1,
            max: 64,
        });
    }
    value.parse().map_err(|_| MappingError::InvalidValue(field))
}

fn parse_candidate(el: &Element) -> Result<Candidate, MappingError> {
    Ok(Candidate {
        foundation: required(el, "foundation", "candidate foundation")?.to_owned(),
        component: attr_number(el, "component", "candidate component", 1, 256)? as u16,
        protocol: parse_protocol(required(el, "protocol", "candidate protocol")?)?,
        priority: attr_number(el, "priority", "candidate priority", 0, u32::MAX.into())? as u32,
        ip: parse_ip("candidate ip", required(el, "ip", "candidate ip")?)?,
        port: attr_number(el, "port", "candidate port", 1, u16::MAX.into())? as u16,
        kind: parse_candidate_type(required(el, "type", "candidate type")?)?,
        rel_addr: el
            .attr("rel-addr")
            .map(|v| parse_ip("candidate rel-addr", v))
            .transpose()?,
        rel_port: optional_number(el, "rel-port", "candidate rel-port", 0, u16::MAX.into())?
            .map(|n| n as u16),
        tcptype: el.attr("tcptype").map(parse_tcptype).transpose()?,
        // REQUIRED by XEP-0176, but 0 is the only sensible default.
        generation: optional_number(el, "generation", "candidate generation", 0, u32::MAX.into())?
            .map_or(0, |n| n as u32),
        network: optional_number(el, "network", "candidate network", 0, u32::MAX.into())?
            .map(|n| n as u32),
    })
}

// ------------------------------------------------------------------ writing

/// Builds `<jingle xmlns='urn:xmpp:jingle:1' action sid [initiator]
/// [responder]>` with one `<content/>` per content of `session` and, if
/// `session.bundle` is not empty, the XEP-0338 BUNDLE `<group/>`. Fails if
/// `session` (or the sid) does not validate.
pub fn session_to_jingle(
    header: &JingleHeader,
    session: &Session,
) -> Result<Element, MappingError> {
    check_text("jingle sid", &header.sid, MAX_SID_LEN)?;
    session.validate()?;
    let mut jingle = Element::builder("jingle", ns::JINGLE)
        .attr(nc!("action"), header.action.to_string())
        .attr(nc!("sid"), header.sid.as_str());
    if let Some(initiator) = &header.initiator {
        jingle = jingle.attr(nc!("initiator"), initiator.to_string());
    }
    if let Some(responder) = &header.responder {
        jingle = jingle.attr(nc!("responder"), responder.to_string());
    }
    for content in &session.contents {
        jingle = jingle.append(write_content(content));
    }
    if !session.bundle.is_empty() {
        let group = Element::builder("group", ns::JINGLE_GROUPING)
            .attr(nc!("semantics"), "BUNDLE")
            .append_all(session.bundle.iter().map(|name| {
                Element::builder("content", ns::JINGLE_GROUPING)
                    .attr(nc!("name"), name.as_str())
                    .build()
            }));
        jingle = jingle.append(group.build());
    }
    Ok(jingle.build())
}

fn rtcp_fb_element(fb: &RtcpFb) -> Element {
    let mut b = Element::builder("rtcp-fb", ns::JINGLE_RTCP_FB).attr(nc!("type"), fb.kind.as_str());
    if let Some(subtype) = &fb.subtype {
        b = b.attr(nc!("subtype"), subtype.as_str());
    }
    b.build()
}

fn ssma_parameter(name: &str, value: String) -> Element {
    Element::builder("parameter", ns::JINGLE_SSMA)
        .attr(nc!("name"), name)
        .attr(nc!("value"), value)
        .build()
}

pub(crate) fn msid_string(msid: &Msid) -> String {
    match &msid.track {
        Some(track) => format!("{} {}", msid.stream, track),
        None => msid.stream.clone(),
    }
}

fn write_content(c: &Content) -> Element {
    let mut d =
        Element::builder("description", ns::JINGLE_RTP).attr(nc!("media"), c.media.as_str());
    for pt in &c.codecs {
        let mut p = Element::builder("payload-type", ns::JINGLE_RTP)
            .attr(nc!("id"), pt.id.to_string())
            .attr(nc!("name"), pt.name.as_str())
            .attr(nc!("clockrate"), pt.clockrate.to_string());
        if pt.channels != 1 {
            p = p.attr(nc!("channels"), pt.channels.to_string());
        }
        for param in &pt.params {
            p = p.append(
                Element::builder("parameter", ns::JINGLE_RTP)
                    .attr(nc!("name"), param.name.as_str())
                    .attr(nc!("value"), param.value.as_str())
                    .build(),
            );
        }
        p = p.append_all(pt.rtcp_fb.iter().map(rtcp_fb_element));
        d = d.append(p.build());
    }
    d = d.append_all(c.rtcp_fb.iter().map(rtcp_fb_element));
    for ext in &c.hdrexts {
        let mut e = Element::builder("rtp-hdrext", ns::JINGLE_RTP_HDREXT)
            .attr(nc!("id"), ext.id.to_string())
            .attr(nc!("uri"), ext.uri.as_str());
        if ext.senders != Senders::Both {
            e = e.attr(nc!("senders"), ext.senders.as_str());
        }
        d = d.append(e.build());
    }
    if c.extmap_allow_mixed {
        d = d.append(Element::bare("extmap-allow-mixed", ns::JINGLE_RTP_HDREXT));
    }
    for s in &c.sources {
        let mut e =
            Element::builder("source", ns::JINGLE_SSMA).attr(nc!("ssrc"), s.ssrc.to_string());
        if let Some(cname) = &s.cname {
            e = e.append(ssma_parameter("cname", cname.clone()));
        }
        if let Some(msid) = &s.msid {
            e = e.append(ssma_parameter("msid", msid_string(msid)));
        }
        if let Some(owner) = &s.owner {
            e = e.append(
                Element::builder("owner", NS_CONFAB_OWNER)
                    .attr(nc!("jid"), owner.as_str())
                    .build(),
            );
        }
        d = d.append(e.build());
    }
    for g in &c.ssrc_groups {
        let e = Element::builder("ssrc-group", ns::JINGLE_SSMA)
            .attr(nc!("semantics"), g.semantics.as_str())
            .append_all(g.ssrcs.iter().map(|ssrc| {
                Element::builder("source", ns::JINGLE_SSMA)
                    .attr(nc!("ssrc"), ssrc.to_string())
                    .build()
            }));
        d = d.append(e.build());
    }
    for rid in &c.rids {
        d = d.append(
            Element::builder("rid", NS_CONFAB_SIMULCAST)
                .attr(nc!("id"), rid.id.as_str())
                .attr(nc!("direction"), rid.direction.as_str())
                .build(),
        );
    }
    if let Some(sim) = &c.simulcast {
        let mut e = Element::builder("simulcast", NS_CONFAB_SIMULCAST);
        if let Some(send) = &sim.send {
            e = e.attr(nc!("send"), send.as_str());
        }
        if let Some(recv) = &sim.recv {
            e = e.attr(nc!("recv"), recv.as_str());
        }
        d = d.append(e.build());
    }
    if c.rtcp_mux {
        d = d.append(Element::bare("rtcp-mux", ns::JINGLE_RTP));
    }

    Element::builder("content", ns::JINGLE)
        .attr(nc!("creator"), c.creator.as_str())
        .attr(nc!("name"), c.name.as_str())
        .attr(nc!("senders"), c.senders.as_str())
        .append(d.build())
        .append(write_transport(&c.name, &c.transport))
        .build()
}

fn write_transport(content_name: &str, t: &Transport) -> Element {
    let mut b: ElementBuilder = Element::builder("transport", ns::JINGLE_ICE_UDP);
    if let Some(ufrag) = &t.ufrag {
        b = b.attr(nc!("ufrag"), ufrag.as_str());
    }
    if let Some(pwd) = &t.pwd {
        b = b.attr(nc!("pwd"), pwd.as_str());
    }
    if let Some(fp) = &t.fingerprint {
        b = b.append(
            Element::builder("fingerprint", ns::JINGLE_DTLS)
                .attr(nc!("hash"), fp.hash.as_str())
                .attr(nc!("setup"), fp.setup.as_str())
                .append(fp.value.as_str())
                .build(),
        );
    }
    for (i, c) in t.candidates.iter().enumerate() {
        let mut e = Element::builder("candidate", ns::JINGLE_ICE_UDP)
            .attr(nc!("component"), c.component.to_string())
            .attr(nc!("foundation"), c.foundation.as_str())
            .attr(nc!("generation"), c.generation.to_string())
            // XEP-0176 requires a unique id; SDP has none. `-` cannot occur
            // in a content name, so these are unique within the session.
            .attr(nc!("id"), format!("{content_name}-{i}"))
            .attr(nc!("ip"), c.ip.to_string())
            .attr(nc!("port"), c.port.to_string())
            .attr(nc!("priority"), c.priority.to_string())
            .attr(nc!("protocol"), c.protocol.as_str())
            .attr(nc!("type"), c.kind.as_str());
        if let Some(addr) = c.rel_addr {
            e = e.attr(nc!("rel-addr"), addr.to_string());
        }
        if let Some(port) = c.rel_port {
            e = e.attr(nc!("rel-port"), port.to_string());
        }
        if let Some(tcptype) = c.tcptype {
            e = e.attr(nc!("tcptype"), tcptype.as_str());
        }
        if let Some(network) = c.network {
            e = e.attr(nc!("network"), network.to_string());
        }
        b = b.append(e.build());
    }
    b.build()
}
