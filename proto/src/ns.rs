//! The XML namespaces of Confab's call protocol (docs/PROTOCOL.md): the
//! RFC 6120/7395 stream, the XEPs it uses, and Confab's own extensions.
//! One list for the server and its clients.

/// `jabber:client`, the namespace of every stanza on a client stream.
pub const NS_CLIENT: &str = "jabber:client";
/// RFC 6120 stream namespace (`stream:` prefix).
pub const NS_STREAM: &str = "http://etherx.jabber.org/streams";
/// RFC 6120 stream error conditions.
pub const NS_STREAM_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
/// RFC 6120 stanza error conditions.
pub const NS_STANZA_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
/// RFC 7395 framing (`<open/>`, `<close/>`).
pub const NS_FRAMING: &str = "urn:ietf:params:xml:ns:xmpp-framing";
/// STARTTLS.
pub const NS_TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
/// SASL.
pub const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
/// Resource binding.
pub const NS_BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
/// RFC 3921 session establishment (a no-op kept for old clients).
pub const NS_SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
/// XEP-0199.
pub const NS_PING: &str = "urn:xmpp:ping";
/// XEP-0030.
pub const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
/// XEP-0030.
pub const NS_DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
/// XEP-0045.
pub const NS_MUC: &str = "http://jabber.org/protocol/muc";
/// XEP-0045 occupant payloads.
pub const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";
/// XEP-0045 moderator commands.
pub const NS_MUC_ADMIN: &str = "http://jabber.org/protocol/muc#admin";
/// XEP-0166.
pub const NS_JINGLE: &str = "urn:xmpp:jingle:1";
/// XEP-0166 error conditions.
pub const NS_JINGLE_ERRORS: &str = "urn:xmpp:jingle:errors:1";
/// XEP-0353.
pub const NS_JMI: &str = "urn:xmpp:jingle-message:0";
/// RFC 6121 roster.
pub const NS_ROSTER: &str = "jabber:iq:roster";
/// Confab's simulcast extension (`<rid/>`, `<simulcast/>` in a video
/// `<description/>`; docs/PROTOCOL.md §3).
pub const NS_CONFAB_SIMULCAST: &str = "urn:confab:jingle:simulcast:0";
/// Confab's track-owner extension (`<owner jid/>` in a `<source/>`;
/// docs/PROTOCOL.md §4).
pub const NS_CONFAB_OWNER: &str = "urn:confab:jingle:owner:0";
