//! # recorder — Confab's call recorder (not built yet)
//!
//! Will subscribe to a room's tracks through the `sfu` API and write
//! per-track recordings (WebM/MP4) and a composited, transcoded recording.
