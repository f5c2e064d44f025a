//! # sfu — Confab's media plane
//!
//! A selective forwarding unit built on [str0m]: every participant sends
//! its audio and video to the bridge once, and the bridge forwards each RTP
//! packet to every other participant of the room over DTLS-SRTP.
//!
//! ```text
//!  signaling ──commands──▶ SfuHandle ──channel──▶ worker thread (one per core)
//!      ▲                                          ┌───────────────────────────┐
//!      └──EndpointEvent / RoomEvent──────────────│ UDP socket ◀──▶ Core       │
//!                                                 │  (sans-IO: rooms,         │
//!                                                 │   endpoints = str0m Rtc)  │
//!                                                 └───────────────────────────┘
//! ```
//!
//! What it is for:
//! - [`Core`]: the sans-IO state of one worker. Datagrams and time go in;
//!   transmits, events and the next timeout come out. No socket, no clock:
//!   its tests and benchmarks run on a simulated clock.
//! - Taps ([`SfuHandle::tap_room`], [`TapEvent`]): in-process subscribers
//!   of a room's published RTP (the recorder), without a network hop.
//! - [`SfuHandle`]: the thin driver. Media worker threads, each with one UDP
//!   socket and the rooms placed on it; the API signaling uses (create an
//!   endpoint from an SDP offer, answer the bridge's renegotiation offers,
//!   close, statistics).
//!
//! What it is not for: it knows nothing of XMPP or Jingle (signaling turns
//! Jingle into the SDP this crate takes), it never decodes media (the
//! recorder does), and it does not read the clock in its core.
//!
//! How data enters and leaves: SDP offers and answers through
//! [`SfuHandle`]; media as UDP datagrams on the worker ports (default 10000,
//! 10001, ...), demultiplexed by the STUN USERNAME's ufrag on first contact
//! and by source address after; events back through channels.
//!
//! Each endpoint is one str0m `Rtc` in ICE-lite and RTP mode, BUNDLE and
//! rtcp-mux. Opus, VP8 and H.264 are forwarded packet by packet, with
//! payload types and header extensions mapped per receiver, sequence
//! numbers rewritten per receiver so each remote track keeps one SSRC,
//! simulcast layers switched on keyframes, NACKs answered from str0m's
//! retransmission buffer (as RTX where negotiated), PLI/FIR relayed to the
//! publisher at a bounded rate, and endpoints removed when RFC 7675 consent
//! expires.

#![warn(missing_docs)]

pub mod config;
pub mod core;
mod driver;
pub mod error;
pub mod event;
pub mod ids;
pub mod metrics;
pub mod shed;
pub mod sim;
mod socket;

pub use crate::config::{EndpointConfig, SfuConfig};
pub use crate::core::tap::{TapEvent, TappedPacket};
pub use crate::core::{Core, CoreEvent};
pub use crate::driver::SfuHandle;
pub use crate::error::SfuError;
pub use crate::event::{
    CloseReason, EndpointEvent, EndpointStats, MediaKind, OutgoingTrack, PublishedTrack, RoomEvent,
    SdpAnswer, SdpOffer, TrackStats,
};
pub use crate::ids::{EndpointId, RoomId, TrackId};

/// Re-exported so users can build offers and answers from SDP text.
pub use str0m;
