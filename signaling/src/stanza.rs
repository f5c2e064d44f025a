//! Namespaces and small builders shared by the stream, the router, the
//! rooms and the focus: stanza errors (RFC 6120 §8.3), stream errors
//! (§4.9), and reading the addressing attributes of a stanza.
//!
//! Stanza payloads with a fitting xmpp-parsers type are parsed with it where
//! they are read (disco, ping, MUC); this module only holds the few
//! builders every part needs.

use minidom::rxml::Namespace;
use minidom::Element;
use xmpp_parsers::jid::{FullJid, Jid};

/// An attribute name, checked to be an XML NCName at compile time.
macro_rules! nc {
    ($name:literal) => {
        minidom::rxml::NcName::from(minidom::rxml::xml_ncname!($name))
    };
}
pub(crate) use nc;

/// Set (or replace) an unqualified attribute.
pub fn set_attr(el: &mut Element, name: minidom::rxml::NcName, value: impl Into<String>) {
    el.set_attr(Namespace::NONE, name, value.into());
}

/// The namespaces, kept with the rest of the protocol's names in
/// `confab_proto::ns` and re-exported here for the server's modules.
pub use confab_proto::ns::*;

/// Serialise one element (a stanza or nonza) to a string.
pub fn to_xml(el: &Element) -> String {
    String::from(el)
}

/// The `to` attribute as a JID; `Ok(None)` when absent, the JID's error
/// when it is malformed.
pub fn to_jid(el: &Element) -> Result<Option<Jid>, xmpp_parsers::jid::Error> {
    el.attr("to").map(Jid::new).transpose()
}

/// RFC 6120 §8.3.2 error types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    /// Do not retry.
    Cancel,
    /// Retry after changing the data sent.
    Modify,
    /// Retry after providing credentials.
    Auth,
    /// Retry after waiting.
    Wait,
}

impl ErrorType {
    fn as_str(self) -> &'static str {
        match self {
            ErrorType::Cancel => "cancel",
            ErrorType::Modify => "modify",
            ErrorType::Auth => "auth",
            ErrorType::Wait => "wait",
        }
    }
}

/// A stanza error: type, RFC 6120 condition, optional application
/// condition (e.g. XEP-0166's `<unknown-session/>`) and text.
#[derive(Debug, Clone)]
pub struct StanzaError {
    /// The error type.
    pub kind: ErrorType,
    /// The defined condition's element name (`bad-request`, ...).
    pub condition: &'static str,
    /// An application-specific condition: (namespace, element name).
    pub app: Option<(&'static str, &'static str)>,
    /// Human-readable text.
    pub text: Option<String>,
}

impl StanzaError {
    /// An error with no application condition or text.
    pub fn new(kind: ErrorType, condition: &'static str) -> StanzaError {
        StanzaError {
            kind,
            condition,
            app: None,
            text: None,
        }
    }

    /// Add an application-specific condition.
    pub fn with_app(mut self, ns: &'static str, name: &'static str) -> StanzaError {
        self.app = Some((ns, name));
        self
    }

    /// Add a text.
    pub fn with_text(mut self, text: impl Into<String>) -> StanzaError {
        self.text = Some(text.into());
        self
    }

    /// `<bad-request/>` (modify) with a text.
    pub fn bad_request(text: impl Into<String>) -> StanzaError {
        StanzaError::new(ErrorType::Modify, "bad-request").with_text(text)
    }

    /// The `<error/>` element.
    pub fn element(&self) -> Element {
        let mut b = Element::builder("error", NS_CLIENT)
            .attr(nc!("type"), self.kind.as_str())
            .append(Element::builder(self.condition, NS_STANZA_ERRORS).build());
        if let Some(text) = &self.text {
            b = b.append(
                Element::builder("text", NS_STANZA_ERRORS)
                    .append(truncate(text, 512))
                    .build(),
            );
        }
        if let Some((ns, name)) = self.app {
            b = b.append(Element::builder(name, ns).build());
        }
        b.build()
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// The error reply to `stanza` (RFC 6120 §8.3.1): same name and id,
/// `to` and `from` swapped, `type='error'`, the error appended. `from` is
/// the entity answering (the stanza's `to`, or the server).
pub fn error_reply(stanza: &Element, answering: &str, error: &StanzaError) -> Element {
    let mut b = Element::builder(stanza.name(), NS_CLIENT)
        .attr(nc!("type"), "error")
        .attr(nc!("from"), answering);
    if let Some(from) = stanza.attr("from") {
        b = b.attr(nc!("to"), from);
    }
    if let Some(id) = stanza.attr("id") {
        b = b.attr(nc!("id"), id);
    }
    b.append(error.element()).build()
}

/// Whether a stanza is itself an error (errors are never answered with
/// errors, RFC 6120 §8.3.1).
pub fn is_error(stanza: &Element) -> bool {
    stanza.attr("type") == Some("error")
}

/// An empty `<iq type='result'/>` answering `iq`.
pub fn iq_result(iq: &Element, answering: &str) -> Element {
    iq_result_with(iq, answering, None)
}

/// `<iq type='result'/>` answering `iq`, with an optional payload.
pub fn iq_result_with(iq: &Element, answering: &str, payload: Option<Element>) -> Element {
    let mut b = Element::builder("iq", NS_CLIENT)
        .attr(nc!("type"), "result")
        .attr(nc!("from"), answering);
    if let Some(from) = iq.attr("from") {
        b = b.attr(nc!("to"), from);
    }
    if let Some(id) = iq.attr("id") {
        b = b.attr(nc!("id"), id);
    }
    if let Some(p) = payload {
        b = b.append(p);
    }
    b.build()
}

/// The single payload child of an IQ, as RFC 6120 §8.2.3 requires for
/// `get` and `set`.
pub fn iq_payload(iq: &Element) -> Option<&Element> {
    let mut children = iq.children();
    let first = children.next()?;
    if children.next().is_some() {
        return None;
    }
    Some(first)
}

/// An XEP-0030 `disco#info` answer: one identity and its features.
pub fn disco_info(category: &str, kind: &str, name: &str, features: &[&str]) -> Element {
    let mut q = Element::builder("query", NS_DISCO_INFO).append(
        Element::builder("identity", NS_DISCO_INFO)
            .attr(nc!("category"), category)
            .attr(nc!("type"), kind)
            .attr(nc!("name"), name)
            .build(),
    );
    for f in features {
        q = q.append(
            Element::builder("feature", NS_DISCO_INFO)
                .attr(nc!("var"), *f)
                .build(),
        );
    }
    q.build()
}

/// Copy of `stanza` re-addressed `from` -> `to`.
pub fn readdress(stanza: &Element, from: &str, to: &FullJid) -> Element {
    let mut el = stanza.clone();
    set_attr(&mut el, nc!("from"), from);
    set_attr(&mut el, nc!("to"), to.to_string());
    el
}

/// A stream error (RFC 6120 §4.9) as markup. Written by hand rather than
/// through minidom so that it carries the conventional `stream:` prefix,
/// declared on the element itself (valid both inside a TCP stream, which
/// declares it too, and as a standalone RFC 7395 frame).
pub fn stream_error(condition: &str, text: Option<&str>) -> String {
    let cond = Element::builder(condition, NS_STREAM_ERRORS).build();
    let mut xml = format!("<stream:error xmlns:stream='{NS_STREAM}'>{}", to_xml(&cond));
    if let Some(t) = text {
        let text = Element::builder("text", NS_STREAM_ERRORS)
            .append(truncate(t, 512))
            .build();
        xml.push_str(&to_xml(&text));
    }
    xml.push_str("</stream:error>");
    xml
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_reply_swaps_addresses_and_keeps_id() {
        let iq: Element = "<iq xmlns='jabber:client' type='set' id='a1' from='u@d/r' to='r@conference.d'><x xmlns='y'/></iq>"
            .parse()
            .unwrap();
        let err = StanzaError::new(ErrorType::Cancel, "item-not-found")
            .with_app(NS_JINGLE_ERRORS, "unknown-session");
        let reply = error_reply(&iq, "r@conference.d", &err);
        assert_eq!(reply.attr("to"), Some("u@d/r"));
        assert_eq!(reply.attr("from"), Some("r@conference.d"));
        assert_eq!(reply.attr("id"), Some("a1"));
        assert_eq!(reply.attr("type"), Some("error"));
        let e = reply.get_child("error", NS_CLIENT).unwrap();
        assert!(e.has_child("item-not-found", NS_STANZA_ERRORS));
        assert!(e.has_child("unknown-session", NS_JINGLE_ERRORS));
    }

    #[test]
    fn stream_error_serialises_with_prefix() {
        let xml = stream_error("policy-violation", Some("too <big>"));
        let el: Element = xml.parse().unwrap();
        assert_eq!(el.name(), "error");
        assert_eq!(el.ns(), NS_STREAM);
        assert!(el.has_child("policy-violation", NS_STREAM_ERRORS));
        assert_eq!(
            el.get_child("text", NS_STREAM_ERRORS).unwrap().text(),
            "too <big>"
        );
    }
}
