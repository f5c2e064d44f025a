//! The browser client's routes: the landing page at `/`, the admin page at
//! `/admin`, a room's call page at `/<room>`, the built assets under
//! `/assets/`, and `/config.json` (where the page connects).
//!
//! A room's page is served for any valid room name (a room exists once
//! someone joins it); the first path segments of Confab's own routes
//! ([`RESERVED`]) are never rooms.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use signaling::jid::BareJid;
use signaling::net::Signaling;

use crate::assets::{self, Caching};

/// First path segments that belong to Confab, not to rooms.
pub const RESERVED: &[&str] = &[
    "health",
    "metrics",
    "api",
    "admin",
    "assets",
    "xmpp-websocket",
    "config.json",
    "favicon.ico",
];

/// Where the WebSocket route is, as `/config.json` tells the page.
pub const WEBSOCKET_PATH: &str = "/xmpp-websocket";

/// `/config.json`: what the page needs to connect.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ClientConfig {
    /// The XMPP domain (guests log in to it).
    pub domain: String,
    /// The conference service, where rooms live.
    pub muc: String,
    /// The path of the XMPP WebSocket.
    pub websocket: String,
}

/// The room whose page `/<segment>` is, or `None` if `segment` is a
/// reserved name or no valid room name on `service`. Names are compared
/// after XMPP normalisation, so `/Admin` is not a room either.
pub fn room_of_path(segment: &str, service: &str) -> Option<BareJid> {
    if RESERVED.contains(&segment) {
        return None;
    }
    let room = signaling::muc::room_jid(service, segment)?;
    let node = room.node().map(|n| n.as_str()).unwrap_or_default();
    (!RESERVED.contains(&node)).then_some(room)
}

/// The client's routes.
pub fn routes(signaling: Signaling) -> Router {
    Router::new()
        .route(
            "/",
            get(|headers: HeaderMap| async move { page("index.html", &headers) }),
        )
        .route(
            "/admin",
            get(|headers: HeaderMap| async move { page("admin.html", &headers) }),
        )
        .route("/assets/{*file}", get(asset))
        .route(
            "/favicon.ico",
            get(|headers: HeaderMap| async move {
                assets::serve("assets/favicon.ico", &headers, Caching::Public)
            }),
        )
        .route("/config.json", get(config))
        .route("/{room}", get(room_page))
        .with_state(signaling)
}

fn page(file: &str, headers: &HeaderMap) -> Response {
    assets::serve(file, headers, Caching::Revalidate)
}

async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    assets::serve(&format!("assets/{file}"), &headers, Caching::Public)
}

async fn room_page(
    State(signaling): State<Signaling>,
    Path(room): Path<String>,
    headers: HeaderMap,
) -> Response {
    match room_of_path(&room, &signaling.muc_domain()) {
        Some(_) => page("room.html", &headers),
        None => (
            StatusCode::NOT_FOUND,
            "no such page, and no valid room name\n",
        )
            .into_response(),
    }
}

async fn config(State(signaling): State<Signaling>) -> Response {
    let config = ClientConfig {
        domain: signaling.domain().to_owned(),
        muc: signaling.muc_domain(),
        websocket: WEBSOCKET_PATH.to_owned(),
    };
    ([(header::CACHE_CONTROL, "no-cache")], Json(config)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICE: &str = "conference.localhost";

    #[test]
    fn room_pages_are_valid_room_names_that_are_not_reserved() {
        let room = room_of_path("standup", SERVICE).map(|j| j.to_string());
        assert_eq!(room.as_deref(), Some("standup@conference.localhost"));
        assert_eq!(
            room_of_path("Daily-Standup", SERVICE)
                .map(|j| j.to_string())
                .as_deref(),
            Some("daily-standup@conference.localhost"),
            "names are normalised as XMPP does"
        );
        for reserved in RESERVED {
            assert!(
                room_of_path(reserved, SERVICE).is_none(),
                "{reserved} is reserved"
            );
        }
        assert!(
            room_of_path("Admin", SERVICE).is_none(),
            "reserved after normalisation too"
        );
        for bad in ["", "a@b", "a b", "x:y", "<script>", &"r".repeat(2000)] {
            assert!(room_of_path(bad, SERVICE).is_none(), "{bad:?} is no room");
        }
    }
}
