//! The built browser client, `web/dist`, embedded in the binary at compile
//! time, and how its files are answered: content type, `ETag` and
//! `Cache-Control`.
//!
//! Lookups go to the embedded table only, never to the file system, and
//! paths with `..`, `.`, empty segments or backslashes are refused before
//! that: a request cannot name anything outside `dist`.

use std::borrow::Cow;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

/// Every file under `web/dist`.
#[derive(RustEmbed)]
#[folder = "dist/"]
struct Dist;

/// How long a browser may keep a file without asking again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caching {
    /// Pages: always revalidate (the `ETag` makes that cheap).
    Revalidate,
    /// Assets under `/assets/`: their names carry no content hash, so
    /// they are revalidated too, but shared caches may keep them.
    Public,
}

impl Caching {
    fn header(self) -> &'static str {
        match self {
            Caching::Revalidate => "no-cache",
            Caching::Public => "public, no-cache",
        }
    }
}

/// Whether `path` (relative to `dist`) is one a request may name: plain
/// segments only.
pub fn is_safe_path(path: &str) -> bool {
    !path.is_empty()
        && !path.contains('\\')
        && !path.contains('\0')
        && path
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
}

/// The `Content-Type` of a file, from its extension; text types say
/// they are UTF-8 (esbuild and our pages write UTF-8).
pub fn content_type(path: &str) -> String {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let textual = mime.type_() == mime_guess::mime::TEXT
        || mime.subtype() == mime_guess::mime::JAVASCRIPT
        || mime.subtype() == mime_guess::mime::JSON
        || mime.suffix() == Some(mime_guess::mime::XML);
    if textual && mime.get_param(mime_guess::mime::CHARSET).is_none() {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    }
}

/// Whether `dist` has a file at `path`.
pub fn exists(path: &str) -> bool {
    is_safe_path(path) && Dist::get(path).is_some()
}

/// Answer a request for `path` (relative to `dist`): the file, `304 Not
/// Modified` if the request's `If-None-Match` has its `ETag`, or 404.
pub fn serve(path: &str, request: &HeaderMap, caching: Caching) -> Response {
    let Some(file) = is_safe_path(path).then(|| Dist::get(path)).flatten() else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()[..16]));
    let mut headers = HeaderMap::new();
    // Both values are built from ASCII here; a failure would only drop the header.
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(caching.header()),
    );
    let fresh = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == etag || tag.trim() == "*");
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    if let Ok(v) = HeaderValue::from_str(&content_type(path)) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    let body = match file.data {
        Cow::Borrowed(bytes) => Body::from(bytes),
        Cow::Owned(bytes) => Body::from(bytes),
    };
    (headers, body).into_response()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type("room.html"), "text/html; charset=utf-8");
        assert_eq!(
            content_type("assets/room.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("assets/style.css"), "text/css; charset=utf-8");
        assert_eq!(
            content_type("assets/favicon.svg"),
            "image/svg+xml; charset=utf-8"
        );
        assert_eq!(content_type("assets/logo.png"), "image/png");
        assert_eq!(content_type("assets/favicon.ico"), "image/x-icon");
        assert_eq!(content_type("assets/inter.woff2"), "font/woff2");
        assert_eq!(
            content_type("assets/data.json"),
            "application/json; charset=utf-8"
        );
        assert_eq!(content_type("assets/blob"), "application/octet-stream");
    }

    #[test]
    fn only_plain_relative_paths_are_safe() {
        for ok in ["index.html", "assets/room.js", "assets/fonts/a.woff2"] {
            assert!(is_safe_path(ok), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../Cargo.toml",
            "assets/../../Cargo.toml",
            "assets/./x",
            "assets//x",
            "a\\b",
            "assets/",
        ] {
            assert!(!is_safe_path(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_client_pages_are_embedded() {
        for page in ["index.html", "room.html", "admin.html"] {
            assert!(exists(page), "dist/{page} is embedded");
        }
        assert!(!exists("../Cargo.toml"));
    }
}
