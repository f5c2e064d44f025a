//! # web — Confab's HTTP front (not built yet)
//!
//! Will serve the browser client, `/xmpp-websocket` (handed to signaling),
//! `/health`, `/metrics` and the admin API and pages. It only adapts HTTP to
//! the other crates.
