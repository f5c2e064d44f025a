//! Bounded XML framing of an XMPP stream: bytes in, stanzas out.
//!
//! [`StreamFramer`] reads a TCP stream (RFC 6120): one `<stream:stream>`
//! document whose children are the stanzas. [`parse_frame`] reads one
//! RFC 7395 WebSocket message, which holds exactly one element (`<open/>`,
//! a stanza, or `<close/>`). Both are sans-IO and share one set of
//! [`Limits`], so no peer can make the server allocate without bound:
//! - rxml is a *restricted* XML parser: no DTD, no entity declarations, no
//!   processing instructions; a DOCTYPE or an unknown entity is an error
//!   ([`XmlError::RestrictedXml`]), never an expansion;
//! - each stanza's size, nesting depth, attribute and child counts are counted as
//!   it is parsed, before anything is built past the limit
//!   ([`XmlError::PolicyViolation`]);
//! - anything else malformed, including invalid UTF-8, is
//!   [`XmlError::NotWellFormed`].
//!
//! Elements are built with minidom's `TreeBuilder`, from rxml's raw
//! events; this module adds the bounds and the stream/stanza framing.
//! It knows nothing about what the stanzas mean.

use minidom::tree_builder::TreeBuilder;
use minidom::Element;
use rxml::error::EndOrError;
use rxml::parser::{Parse, RawEvent, RawParser, WithOptions};

/// Bounds on what one peer may send.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes in one stanza (or WebSocket frame), markup included.
    pub max_stanza_bytes: usize,
    /// Element nesting inside one stanza (the stanza itself is depth 1).
    pub max_depth: usize,
    /// Attributes on one element.
    pub max_attributes: usize,
    /// Child elements of one element inside a stanza.
    pub max_children: usize,
    /// Bytes in one name, attribute value or text run (rxml's own bound).
    pub max_token_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_stanza_bytes: 256 * 1024,
            max_depth: 32,
            max_attributes: 64,
            max_children: 8192,
            max_token_bytes: 64 * 1024,
        }
    }
}

/// Why a peer's XML was refused; each maps to an RFC 6120 stream error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// Not XML, or not well-formed, or not UTF-8 (`<not-well-formed/>`).
    #[error("not well-formed: {0}")]
    NotWellFormed(String),
    /// XML features XMPP forbids: DTD, entities, processing instructions,
    /// comments (`<restricted-xml/>`).
    #[error("restricted XML: {0}")]
    RestrictedXml(String),
    /// Over a size, depth or count limit (`<policy-violation/>`).
    #[error("policy violation: {0}")]
    PolicyViolation(String),
}

impl XmlError {
    /// The RFC 6120 stream error condition element name.
    pub fn condition(&self) -> &'static str {
        match self {
            XmlError::NotWellFormed(_) => "not-well-formed",
            XmlError::RestrictedXml(_) => "restricted-xml",
            XmlError::PolicyViolation(_) => "policy-violation",
        }
    }
}

/// The per-element bounds (depth, attributes, children), counted event by
/// event. One counter serves the TCP framer, whose stream root encloses the
/// stanzas, and the WebSocket frame parser, where the stanza is the root.
struct Bounds {
    limits: Limits,
    /// Enclosing levels that are not part of a stanza (1 for a TCP stream's
    /// root, 0 for a WebSocket frame).
    outer: usize,
    /// Open elements, outer levels included.
    depth: usize,
    /// Attributes of the element being opened.
    attributes: usize,
    /// Child counts of the open elements.
    children: Vec<usize>,
}

impl Bounds {
    fn new(limits: Limits, outer: usize) -> Bounds {
        Bounds {
            limits,
            outer,
            depth: 0,
            attributes: 0,
            children: Vec::new(),
        }
    }

    fn event(&mut self, ev: &RawEvent) -> Result<(), XmlError> {
        match ev {
            RawEvent::ElementHeadOpen(..) => {
                self.depth += 1;
                self.attributes = 0;
                if self.depth > self.limits.max_depth + self.outer {
                    return Err(XmlError::PolicyViolation(format!(
                        "nesting deeper than {}",
                        self.limits.max_depth
                    )));
                }
                // The stanza's own children and below are counted; the
                // outer levels' (a stream's stanzas) are not.
                if self.depth >= self.outer + 2 {
                    if let Some(siblings) = self.children.last_mut() {
                        *siblings += 1;
                        if *siblings > self.limits.max_children {
                            return Err(XmlError::PolicyViolation(format!(
                                "more than {} child elements",
                                self.limits.max_children
                            )));
                        }
                    }
                }
                self.children.push(0);
            }
            RawEvent::Attribute(..) => {
                self.attributes += 1;
                if self.attributes > self.limits.max_attributes {
                    return Err(XmlError::PolicyViolation(format!(
                        "more than {} attributes",
                        self.limits.max_attributes
                    )));
                }
            }
            RawEvent::ElementFoot(..) => {
                self.depth = self.depth.saturating_sub(1);
                self.children.pop();
            }
            _ => {}
        }
        Ok(())
    }
}

/// What the framer produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// The stream header (TCP: `<stream:stream>`'s start tag, without
    /// children; WebSocket: the `<open/>` element).
    Open(Element),
    /// A complete stanza (or nonza: SASL, STARTTLS, ...).
    Stanza(Element),
    /// The peer closed its stream (`</stream:stream>` or `<close/>`).
    Close,
}

/// Incremental framer of one TCP XMPP stream.
pub struct StreamFramer {
    limits: Limits,
    parser: RawParser,
    tree: TreeBuilder,
    /// Bytes buffered but not yet consumed by the parser (a partial token).
    pending: Vec<u8>,
    /// Bytes of the stanza being parsed so far.
    stanza_bytes: usize,
    /// Depth, attribute and child bounds; its depth is the number of open
    /// elements (0: before the stream header).
    bounds: Bounds,
    opened: bool,
    closed: bool,
    out: std::collections::VecDeque<Frame>,
}

impl StreamFramer {
    /// A framer for a new stream (also after STARTTLS or SASL success,
    /// which restart the stream).
    pub fn new(limits: Limits) -> StreamFramer {
        StreamFramer {
            limits,
            parser: new_parser(&limits),
            tree: TreeBuilder::new(),
            pending: Vec::new(),
            stanza_bytes: 0,
            bounds: Bounds::new(limits, 1),
            opened: false,
            closed: false,
            out: Default::default(),
        }
    }

    /// Feed bytes from the peer. After an error the stream is unusable:
    /// send the stream error and close.
    pub fn feed(&mut self, data: &[u8]) -> Result<(), XmlError> {
        if self.closed {
            return Ok(());
        }
        self.pending.extend_from_slice(data);
        let buf = std::mem::take(&mut self.pending);
        let mut rest: &[u8] = &buf;
        loop {
            let before = rest.len();
            let ev = self.parser.parse(&mut rest, false);
            let consumed = before - rest.len();
            if self.bounds.depth >= 1 {
                self.stanza_bytes += consumed;
                if self.stanza_bytes > self.limits.max_stanza_bytes {
                    return Err(XmlError::PolicyViolation(format!(
                        "stanza over {} bytes",
                        self.limits.max_stanza_bytes
                    )));
                }
            }
            match ev {
                Ok(Some(ev)) => self.event(ev)?,
                Ok(None) => {
                    self.closed = true;
                    break;
                }
                Err(EndOrError::NeedMoreData) => break,
                Err(EndOrError::Error(e)) => return Err(classify(e)),
            }
            if self.closed {
                break;
            }
        }
        // What the parser did not take stays for the next feed; it is
        // bounded by the token limit the parser enforces.
        self.pending.extend_from_slice(rest);
        if self.pending.len() > self.limits.max_stanza_bytes {
            return Err(XmlError::PolicyViolation("unparsed input too large".into()));
        }
        Ok(())
    }

    /// The next complete frame, if any.
    pub fn poll(&mut self) -> Option<Frame> {
        self.out.pop_front()
    }

    fn event(&mut self, ev: RawEvent) -> Result<(), XmlError> {
        self.bounds.event(&ev)?;
        if matches!(ev, RawEvent::Text(..)) && self.bounds.depth == 1 {
            // Text between stanzas (whitespace keepalives): nothing to
            // keep, and keeping it would grow the stream root forever.
            return Ok(());
        }
        let head_closed = matches!(ev, RawEvent::ElementHeadClose(..));
        let foot = matches!(ev, RawEvent::ElementFoot(..));
        if foot && self.bounds.depth == 0 {
            // </stream:stream>
            self.closed = true;
            self.out.push_back(Frame::Close);
            return Ok(());
        }
        self.tree
            .process_event(ev)
            .map_err(|e| XmlError::NotWellFormed(e.to_string()))?;
        if head_closed && self.bounds.depth == 1 && !self.opened {
            self.opened = true;
            if let Some(top) = self.tree.top() {
                self.out.push_back(Frame::Open(top.clone()));
            }
        }
        if foot && self.bounds.depth == 1 {
            // A stanza (child of the stream root) is complete.
            self.stanza_bytes = 0;
            if let Some(stanza) = self.tree.unshift_child() {
                self.out.push_back(Frame::Stanza(stanza));
            }
        }
        Ok(())
    }
}

/// Parse one RFC 7395 WebSocket message: exactly one element.
pub fn parse_frame(limits: &Limits, message: &[u8]) -> Result<Frame, XmlError> {
    if message.len() > limits.max_stanza_bytes {
        return Err(XmlError::PolicyViolation(format!(
            "frame over {} bytes",
            limits.max_stanza_bytes
        )));
    }
    let mut parser = new_parser(limits);
    let mut tree = TreeBuilder::new();
    let mut rest = message;
    let mut bounds = Bounds::new(*limits, 0);
    loop {
        match parser.parse(&mut rest, true) {
            Ok(Some(ev)) => {
                bounds.event(&ev)?;
                tree.process_event(ev)
                    .map_err(|e| XmlError::NotWellFormed(e.to_string()))?;
            }
            Ok(None) => break,
            Err(EndOrError::NeedMoreData) => {
                return Err(XmlError::NotWellFormed(
                    "frame ends inside an element".into(),
                ))
            }
            Err(EndOrError::Error(e)) => return Err(classify(e)),
        }
    }
    let root = tree
        .root
        .take()
        .ok_or_else(|| XmlError::NotWellFormed("no element in frame".into()))?;
    const FRAMING: &str = "urn:ietf:params:xml:ns:xmpp-framing";
    Ok(if root.is("open", FRAMING) {
        Frame::Open(root)
    } else if root.is("close", FRAMING) {
        Frame::Close
    } else {
        Frame::Stanza(root)
    })
}

fn new_parser(limits: &Limits) -> RawParser {
    RawParser::with_options(rxml::parser::Options {
        max_token_length: limits.max_token_bytes,
        ..Default::default()
    })
}

/// Sort rxml's errors into the stream error conditions.
fn classify(e: rxml::Error) -> XmlError {
    let text = e.to_string();
    let restricted = matches!(e, rxml::Error::UndeclaredEntity)
        || text.contains("DOCTYPE")
        || text.contains("<!")
        || text.contains("processing instruction")
        || text.contains("comment")
        || text.contains("'!'")
        || text.contains("'?'");
    if restricted {
        XmlError::RestrictedXml(text)
    } else if text.contains("too long") || text.contains("limit") {
        XmlError::PolicyViolation(text)
    } else {
        XmlError::NotWellFormed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";

    fn frames(input: &[&[u8]]) -> (Vec<Frame>, Option<XmlError>) {
        let mut f = StreamFramer::new(Limits::default());
        let mut out = Vec::new();
        for chunk in input {
            if let Err(e) = f.feed(chunk) {
                while let Some(x) = f.poll() {
                    out.push(x);
                }
                return (out, Some(e));
            }
            while let Some(x) = f.poll() {
                out.push(x);
            }
        }
        (out, None)
    }

    #[test]
    fn header_stanzas_and_close_in_any_chunking() {
        let doc = format!("{HEADER}<message to='a@b' type='chat'><body>hi &amp; bye</body></message><presence/></stream:stream>");
        // Whole, and one byte at a time.
        let whole = frames(&[doc.as_bytes()]);
        let bytes: Vec<&[u8]> = doc.as_bytes().chunks(1).collect();
        let split = frames(&bytes);
        for (out, err) in [whole, split] {
            assert_eq!(err, None);
            assert_eq!(out.len(), 4, "{out:?}");
            assert!(
                matches!(&out[0], Frame::Open(e) if e.name() == "stream" && e.attr("to") == Some("localhost"))
            );
            match &out[1] {
                Frame::Stanza(m) => {
                    assert!(m.is("message", "jabber:client"));
                    let body = m.get_child("body", "jabber:client").expect("body");
                    assert_eq!(body.text(), "hi & bye");
                }
                other => panic!("{other:?}"),
            }
            assert!(matches!(&out[2], Frame::Stanza(p) if p.name() == "presence"));
            assert_eq!(out[3], Frame::Close);
        }
    }

    #[test]
    fn too_many_children_are_refused() {
        let many = format!(
            "<message xmlns='jabber:client'>{}</message>",
            "<a/>".repeat(10_000)
        );
        let err = parse_frame(&Limits::default(), many.as_bytes()).err();
        assert!(matches!(err, Some(XmlError::PolicyViolation(_))), "{err:?}");
        let doc = format!("{HEADER}{many}");
        let (_, err) = frames(&[doc.as_bytes()]);
        assert!(matches!(err, Some(XmlError::PolicyViolation(_))), "{err:?}");
        // Many stanzas (children of the stream root) are fine.
        let doc = format!("{HEADER}{}", "<presence/>".repeat(10_000));
        let (out, err) = frames(&[doc.as_bytes()]);
        assert_eq!(err, None);
        assert_eq!(out.len(), 10_001);
    }

    #[test]
    fn whitespace_keepalives_are_not_kept() {
        let mut f = StreamFramer::new(Limits::default());
        f.feed(HEADER.as_bytes()).unwrap();
        for _ in 0..100_000 {
            f.feed(b" \n").unwrap();
        }
        f.feed(b"<presence/>").unwrap();
        assert!(matches!(f.poll(), Some(Frame::Open(_))));
        assert!(matches!(f.poll(), Some(Frame::Stanza(_))));
        let root_text = f.tree.top().map(|r| r.text().len()).unwrap_or(0);
        assert_eq!(root_text, 0, "the stream root must not collect keepalives");
    }

    #[test]
    fn doctype_and_entities_are_restricted() {
        let (_, err) =
            frames(&[b"<?xml version='1.0'?><!DOCTYPE lol [<!ENTITY lol 'lol'>]><stream:stream/>"]);
        assert!(matches!(err, Some(XmlError::RestrictedXml(_))), "{err:?}");
        let doc = format!("{HEADER}<message><body>&lol9;</body></message>");
        let (_, err) = frames(&[doc.as_bytes()]);
        assert!(matches!(err, Some(XmlError::RestrictedXml(_))), "{err:?}");
    }

    #[test]
    fn deep_nesting_is_refused_early() {
        let mut doc = String::from(HEADER);
        doc.push_str(&"<a>".repeat(10_000));
        let (out, err) = frames(&[doc.as_bytes()]);
        assert!(matches!(err, Some(XmlError::PolicyViolation(_))), "{err:?}");
        assert_eq!(out.len(), 1, "only the header came out");
    }

    #[test]
    fn oversized_stanza_is_refused() {
        let mut doc = String::from(HEADER);
        doc.push_str("<message><body>");
        doc.push_str(&"x".repeat(300 * 1024));
        let (_, err) = frames(&[doc.as_bytes()]);
        assert!(matches!(err, Some(XmlError::PolicyViolation(_))), "{err:?}");
    }

    #[test]
    fn too_many_attributes_are_refused() {
        let mut doc = String::from(HEADER);
        doc.push_str("<message");
        for i in 0..100 {
            doc.push_str(&format!(" a{i}='x'"));
        }
        doc.push_str("/>");
        let (_, err) = frames(&[doc.as_bytes()]);
        assert!(matches!(err, Some(XmlError::PolicyViolation(_))), "{err:?}");
    }

    #[test]
    fn invalid_utf8_is_not_well_formed() {
        let mut doc = HEADER.as_bytes().to_vec();
        doc.extend_from_slice(b"<message><body>\xff\xfe</body></message>");
        let (_, err) = frames(&[&doc]);
        assert!(matches!(err, Some(XmlError::NotWellFormed(_))), "{err:?}");
        let (_, err) = frames(&[HEADER.as_bytes(), b"<message></presence>"]);
        assert!(matches!(err, Some(XmlError::NotWellFormed(_))), "{err:?}");
    }

    #[test]
    fn websocket_frames() {
        let l = Limits::default();
        let open = parse_frame(
            &l,
            b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>",
        )
        .expect("open");
        assert!(matches!(open, Frame::Open(e) if e.attr("to") == Some("localhost")));
        let close = parse_frame(&l, b"<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>")
            .expect("close");
        assert_eq!(close, Frame::Close);
        let st = parse_frame(
            &l,
            b"<iq xmlns='jabber:client' type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>",
        )
        .expect("iq");
        assert!(matches!(st, Frame::Stanza(e) if e.is("iq", "jabber:client")));
        let mut deep = b"<a xmlns='urn:x'>".to_vec();
        deep.extend_from_slice(&b"<a>".repeat(100));
        let deep = parse_frame(&l, &deep);
        assert!(
            matches!(deep, Err(XmlError::PolicyViolation(_))),
            "{deep:?}"
        );
        assert!(matches!(
            parse_frame(&l, b"<!DOCTYPE x><a/>"),
            Err(XmlError::RestrictedXml(_))
        ));
        assert!(matches!(
            parse_frame(&l, b"<a><b></a>"),
            Err(XmlError::NotWellFormed(_))
        ));
        assert!(matches!(
            parse_frame(&l, b""),
            Err(XmlError::NotWellFormed(_))
        ));
    }
}
