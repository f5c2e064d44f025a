//! A participant in a room (XEP-0045; docs/PROTOCOL.md §1, §9): joining,
//! and the stanzas a participant sends to the room and the bridge.
//!
//! The builders are pure (an [`Element`] out, nothing sent); [`join`] is
//! the one exchange every client waits on: the join presence, then the
//! room's presences up to the participant's own (status 110).

use std::time::Duration;

use minidom::Element;

use confab_proto::ns::{NS_CLIENT, NS_MUC, NS_MUC_USER, NS_STANZA_ERRORS};

use crate::xmpp::{error_condition, nc, XmppClient};

/// The presence that joins `room` (a bare JID) as `nick`, with the room's
/// password if it has one.
pub fn join_presence(room: &str, nick: &str, password: Option<&str>) -> Element {
    let mut x = Element::builder("x", NS_MUC);
    if let Some(p) = password {
        x = x.append(Element::builder("password", NS_MUC).append(p).build());
    }
    Element::builder("presence", NS_CLIENT)
        .attr(nc("to"), format!("{room}/{nick}"))
        .append(x.build())
        .build()
}

/// The presence that leaves `room` (which also ends the occupant's call).
pub fn leave_presence(room: &str, nick: &str) -> Element {
    Element::builder("presence", NS_CLIENT)
        .attr(nc("to"), format!("{room}/{nick}"))
        .attr(nc("type"), "unavailable")
        .build()
}

/// The XEP-0045 status codes (§15.6) a room's presence or message
/// carries, in order: 110 (this is you), 170 (recording), 307 (kicked), ...
pub fn status_codes(stanza: &Element) -> Vec<String> {
    stanza
        .get_child("x", NS_MUC_USER)
        .into_iter()
        .flat_map(|x| x.children())
        .filter(|c| c.is("status", NS_MUC_USER))
        .filter_map(|c| c.attr("code").map(String::from))
        .collect()
}

/// Whether `presence` is the room's presence of the receiving occupant
/// itself (status 110).
pub fn is_own_presence(presence: &Element) -> bool {
    status_codes(presence).iter().any(|c| c == "110")
}

/// Why a join did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    /// The room answered with an error presence of this condition
    /// (`not-authorized`, `conflict`, `service-unavailable`, ...).
    #[error("{0}")]
    Refused(String),
    /// No own presence arrived in time.
    #[error("no answer to the join")]
    NoAnswer,
    /// The stream failed.
    #[error("{0}")]
    Stream(String),
}

/// Joins `room` as `nick` and waits (at most `timeout`) for the room's
/// presence of this occupant. Returns every stanza that arrived meanwhile,
/// in order, ending with that own presence, so that the caller can take in
/// the other occupants' presences (or ignore them).
pub async fn join(
    xmpp: &mut XmppClient,
    room: &str,
    nick: &str,
    password: Option<&str>,
    timeout: Duration,
) -> Result<Vec<Element>, JoinError> {
    let presence = join_presence(room, nick, password);
    let occupant = format!("{room}/{nick}");
    xmpp.send(presence).await.map_err(JoinError::Stream)?;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let el = xmpp
            .recv(left)
            .await
            .map_err(JoinError::Stream)?
            .ok_or(JoinError::NoAnswer)?;
        let ours = el.name() == "presence" && el.attr("from") == Some(occupant.as_str());
        if ours && el.attr("type") == Some("error") {
            return Err(JoinError::Refused(
                error_condition(&el).unwrap_or_else(|| "error".into()),
            ));
        }
        let done = ours && is_own_presence(&el);
        seen.push(el);
        if done {
            return Ok(seen);
        }
    }
}

/// An IQ of `kind` (`get`, `set`) to `to` with `payload`.
pub fn iq(kind: &str, to: &str, id: &str, payload: Element) -> Element {
    Element::builder("iq", NS_CLIENT)
        .attr(nc("type"), kind)
        .attr(nc("to"), to)
        .attr(nc("id"), id)
        .append(payload)
        .build()
}

/// The answer to an IQ `request` (the bridge's Jingle requests): a result,
/// or, when `error` names a stanza error condition, an error of type
/// `modify` with that condition (e.g. `bad-request`).
pub fn iq_answer(request: &Element, error: Option<&str>) -> Element {
    let kind = if error.is_some() { "error" } else { "result" };
    let mut b = Element::builder("iq", NS_CLIENT).attr(nc("type"), kind);
    if let Some(from) = request.attr("from") {
        b = b.attr(nc("to"), from);
    }
    if let Some(id) = request.attr("id") {
        b = b.attr(nc("id"), id);
    }
    if let Some(condition) = error {
        b = b.append(
            Element::builder("error", NS_CLIENT)
                .attr(nc("type"), "modify")
                .append(Element::builder(condition, NS_STANZA_ERRORS).build())
                .build(),
        );
    }
    b.build()
}

/// A groupchat message with `body` to `room`.
pub fn groupchat(room: &str, body: &str) -> Element {
    Element::builder("message", NS_CLIENT)
        .attr(nc("to"), room)
        .attr(nc("type"), "groupchat")
        .append(Element::builder("body", NS_CLIENT).append(body).build())
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_join_presence_carries_the_password_inside_the_muc_element() {
        let p = join_presence("r@conference.localhost", "ann", Some("s3cret"));
        assert_eq!(p.attr("to"), Some("r@conference.localhost/ann"));
        let x = p.get_child("x", NS_MUC).expect("muc x");
        assert_eq!(
            x.get_child("password", NS_MUC).map(|e| e.text()),
            Some("s3cret".into())
        );
        let plain = join_presence("r@conference.localhost", "ann", None);
        assert!(!plain
            .get_child("x", NS_MUC)
            .expect("muc x")
            .has_child("password", NS_MUC));
    }

    #[test]
    fn an_error_answer_names_its_condition_and_goes_back_to_the_sender() {
        let request = Element::builder("iq", NS_CLIENT)
            .attr(nc("type"), "set")
            .attr(nc("from"), "r@conference.localhost")
            .attr(nc("id"), "j1")
            .build();
        let ok = iq_answer(&request, None);
        assert_eq!(ok.attr("type"), Some("result"));
        assert_eq!(ok.attr("to"), Some("r@conference.localhost"));
        assert_eq!(ok.attr("id"), Some("j1"));
        let bad = iq_answer(&request, Some("bad-request"));
        assert_eq!(bad.attr("type"), Some("error"));
        assert_eq!(error_condition(&bad).as_deref(), Some("bad-request"));
    }
}
