//! # Confab end-to-end tests (not built yet)
//!
//! Will start real `confab` processes and drive them with real peers
//! (tokio-xmpp clients, webrtc-rs peers, headless Chromium). The media
//! plane's own peer tests live in `sfu/tests`.
