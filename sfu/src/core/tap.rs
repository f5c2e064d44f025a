//! Taps: an in-process subscriber of a room's published media.
//!
//! A tap receives every RTP packet the bridge receives from the room's
//! publishers, as the core parsed it, without a network hop, a session or
//! a rewrite: what the recorder needs to write what was said and shown.
//! It does not take part in layer selection (every simulcast layer is
//! tapped; the packet says which) and never slows forwarding down: the core
//! only queues packets for tapped rooms, and the driver hands them on
//! without waiting.
//!
//! Methods (in the order of the core's): the commands [`Core::add_tap`],
//! [`Core::remove_tap`] and [`Core::tap_keyframe_request`]; the output
//! [`Core::poll_tap`], drained after [`Core::poll_event`].

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use str0m::format::Codec;
use str0m::media::{KeyframeRequestKind, MediaKind, Mid, Rid};
use str0m::rtp::RtpPacket;

use super::Core;
use crate::ids::{EndpointId, RoomId, TrackId};

/// Most packets queued in the core for taps between two drains. The driver
/// drains after every input, so this only bounds a tap nobody drains.
const MAX_QUEUED: usize = 8192;

/// One RTP packet a publisher sent to the bridge, as a tap receives it.
#[derive(Debug, Clone)]
pub struct TappedPacket {
    /// The room.
    pub room: RoomId,
    /// Publisher and m-line.
    pub track: TrackId,
    /// Audio or video.
    pub kind: MediaKind,
    /// The codec of the payload.
    pub codec: Codec,
    /// RTP clock rate of the codec (48000 for Opus, 90000 for video).
    pub clock_rate: u32,
    /// The simulcast layer, if the track has several.
    pub rid: Option<String>,
    /// The layer's place among the track's layers, lowest 0 (0 without
    /// simulcast): a higher layer is a larger picture.
    pub layer: usize,
    /// Extended (rollover-free) sequence number, per publisher stream.
    pub seq_no: u64,
    /// The RTP timestamp as the publisher sent it.
    pub rtp_timestamp: u32,
    /// The RTP marker bit (last packet of a video frame).
    pub marker: bool,
    /// When the bridge received the packet: a clock shared by all the
    /// room's publishers, to line their tracks up.
    pub arrived: Instant,
    /// The RTP payload (no RTP header), shared with the forwarded copies.
    pub payload: std::sync::Arc<[u8]>,
}

/// What a tap receives.
#[derive(Debug, Clone)]
pub enum TapEvent {
    /// A packet of a published track.
    Packet(TappedPacket),
    /// A track went away (unpublished, or its publisher left).
    Withdrawn {
        /// The room.
        room: RoomId,
        /// The track.
        track: TrackId,
    },
}

/// The taps of one core: which rooms are tapped, and what waits for them.
#[derive(Debug, Default)]
pub(crate) struct Taps {
    /// Tapped rooms, with how many taps each has.
    rooms: HashMap<RoomId, usize>,
    queue: VecDeque<TapEvent>,
}

impl Taps {
    /// Queue `pkt` if `room` is tapped. Called for every packet forwarded:
    /// an untapped room costs one hash lookup.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn packet(
        &mut self,
        room: &RoomId,
        publisher: EndpointId,
        mid: Mid,
        (rid, layer): (Option<Rid>, usize),
        kind: MediaKind,
        codec: Codec,
        clock_rate: u32,
        pkt: &RtpPacket,
    ) {
        if self.rooms.is_empty() || !self.rooms.contains_key(room) || self.queue.len() >= MAX_QUEUED
        {
            return;
        }
        self.queue.push_back(TapEvent::Packet(TappedPacket {
            room: room.clone(),
            track: TrackId {
                publisher,
                mid: mid.to_string(),
            },
            kind,
            codec,
            clock_rate,
            rid: rid.map(|r| r.to_string()),
            layer,
            seq_no: *pkt.seq_no,
            rtp_timestamp: pkt.header.timestamp,
            marker: pkt.header.marker,
            arrived: pkt.timestamp,
            payload: pkt.payload.clone(),
        }));
    }

    /// Tell the room's taps that a track went away.
    pub(crate) fn withdrawn(&mut self, room: &RoomId, track: TrackId) {
        if self.rooms.contains_key(room) {
            self.queue.push_back(TapEvent::Withdrawn {
                room: room.clone(),
                track,
            });
        }
    }
}

impl Core {
    /// Start tapping `room`: its packets come out of [`Core::poll_tap`]
    /// until a matching [`Core::remove_tap`]. Taps are counted, so several
    /// tappers of one room each add and remove their own.
    pub fn add_tap(&mut self, room: RoomId) {
        *self.taps.rooms.entry(room).or_default() += 1;
    }

    /// Stop one tap of `room`.
    pub fn remove_tap(&mut self, room: &RoomId) {
        if let Some(n) = self.taps.rooms.get_mut(room) {
            *n -= 1;
            if *n == 0 {
                self.taps.rooms.remove(room);
                self.taps.queue.retain(|e| match e {
                    TapEvent::Packet(p) => &p.room != room,
                    TapEvent::Withdrawn { room: r, .. } => r != room,
                });
            }
        }
    }

    /// A tapper needs a keyframe of `track` (it starts a file, or lost a
    /// packet): ask the publisher, within the same rate limit as
    /// subscribers' requests.
    pub fn tap_keyframe_request(&mut self, now: Instant, track: &TrackId) {
        let mid = Mid::from(track.mid.as_str());
        self.request_keyframe(now, track.publisher, mid, None, KeyframeRequestKind::Pli);
        self.drive(now);
    }

    /// The next packet or event for the taps.
    pub fn poll_tap(&mut self) -> Option<TapEvent> {
        self.taps.queue.pop_front()
    }
}
