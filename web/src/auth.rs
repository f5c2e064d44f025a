//! Who may use the admin side of the API: starting and stopping
//! recordings, listing them and downloading them. Recordings are people's
//! meetings; whoever reaches the HTTP port must not get them for free.
//!
//! - With an admin token configured (`[http] admin_token`): whoever
//!   presents it, as `Authorization: Bearer <token>` (scripts) or in the
//!   `confab_admin` cookie (the admin page sets it, so that its download
//!   links work). Anything else gets 401.
//! - Without one: only clients on this machine, that is a loopback peer
//!   whose request no proxy forwarded (`Forwarded` / `X-Forwarded-For`);
//!   anyone else gets 403 saying to set a token.
//!
//! The room list and room details (`/api/rooms...`) stay public: the
//! landing page shows the rooms in use.
//!
//! Not for: user accounts, roles, or sessions; one shared secret is what a
//! small deployment needs, and anything more belongs in the proxy in
//! front.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::ApiError;

/// The cookie the admin page keeps the token in.
pub const COOKIE: &str = "confab_admin";

/// The admin token, if one is configured.
#[derive(Clone, Default)]
pub struct AdminToken(pub Option<Arc<str>>);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "AdminToken(set)"
        } else {
            "AdminToken(none)"
        })
    }
}

/// Middleware in front of the admin routes.
pub async fn require_admin(
    State(token): State<AdminToken>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    match decide(&token, peer, request.headers()) {
        Ok(()) => next.run(request).await,
        Err(refusal) => refusal,
    }
}

// The refusal is the response axum sends as it is, once per refused
// request: boxing it would only move it.
#[allow(clippy::result_large_err)]
fn decide(token: &AdminToken, peer: SocketAddr, headers: &HeaderMap) -> Result<(), Response> {
    match &token.0 {
        Some(token) => {
            if presented(headers).any(|t| same(t.as_bytes(), token.as_bytes())) {
                Ok(())
            } else {
                let mut res = ApiError(
                    StatusCode::UNAUTHORIZED,
                    "the admin token is missing or wrong".into(),
                )
                .into_response();
                res.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"confab admin\""),
                );
                Err(res)
            }
        }
        None => {
            let forwarded =
                headers.contains_key("forwarded") || headers.contains_key("x-forwarded-for");
            if peer.ip().is_loopback() && !forwarded {
                Ok(())
            } else {
                Err(ApiError(
                    StatusCode::FORBIDDEN,
                    "recordings are only for this machine until an admin token is set ([http] admin_token)".into(),
                )
                .into_response())
            }
        }
    }
}

/// Every token the request presents: the bearer token, and the cookie.
fn presented(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    let bearer = headers
        .get_all(header::AUTHORIZATION)
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let cookies = headers
        .get_all(header::COOKIE)
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='));
    bearer.chain(cookies)
}

/// Equality that takes as long whatever the first difference (the length
/// may show; the content may not).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).expect("a header value"));
        }
        h
    }

    const LOCAL: &str = "127.0.0.1:5000";
    const REMOTE: &str = "192.0.2.7:5000";

    fn status(token: Option<&str>, peer: &str, h: &[(&'static str, &str)]) -> Option<StatusCode> {
        let token = AdminToken(token.map(Arc::from));
        decide(&token, peer.parse().expect("an address"), &headers(h))
            .err()
            .map(|r| r.status())
    }

    #[test]
    fn without_a_token_only_this_machine_is_admitted() {
        assert_eq!(status(None, LOCAL, &[]), None);
        assert_eq!(status(None, REMOTE, &[]), Some(StatusCode::FORBIDDEN));
        assert_eq!(
            status(None, LOCAL, &[("x-forwarded-for", "192.0.2.7")]),
            Some(StatusCode::FORBIDDEN)
        );
        assert_eq!(
            status(None, LOCAL, &[("forwarded", "for=192.0.2.7")]),
            Some(StatusCode::FORBIDDEN)
        );
        assert_eq!(status(None, "[::1]:5000", &[]), None);
    }

    #[test]
    fn with_a_token_whoever_presents_it_is_admitted_and_no_one_else() {
        let t = Some("s3cret-token");
        assert_eq!(
            status(t, REMOTE, &[("authorization", "Bearer s3cret-token")]),
            None
        );
        assert_eq!(
            status(
                t,
                REMOTE,
                &[("cookie", "theme=dark; confab_admin=s3cret-token")]
            ),
            None
        );
        for h in [
            vec![],
            vec![("authorization", "Bearer s3cret-tokeN")],
            vec![("authorization", "Bearer s3cret")],
            vec![("authorization", "Basic czNjcmV0LXRva2Vu")],
            vec![("cookie", "confab_admin_x=s3cret-token")],
            vec![("cookie", "confab_admin=")],
        ] {
            assert_eq!(
                status(t, REMOTE, &h),
                Some(StatusCode::UNAUTHORIZED),
                "{h:?}"
            );
            // Being local is no substitute for the token once one is set.
            assert_eq!(
                status(t, LOCAL, &h),
                Some(StatusCode::UNAUTHORIZED),
                "{h:?}"
            );
        }
    }
}
