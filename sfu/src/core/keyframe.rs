//! Recognising the first packet of a keyframe in an RTP payload.
//!
//! The forwarder needs this to start (or switch) a subscriber's stream on a
//! frame the subscriber can decode. str0m depacketizes whole frames, but in
//! RTP mode we look at single packets, and only at their first bytes. The
//! codecs' rules are `confab-media`'s ([`VideoCodec::starts_keyframe`]),
//! the same the recorder and the test kit read.

pub use confab_media::VideoCodec;

/// Whether `payload` starts a keyframe of `codec`. Never panics: a payload
/// too short or malformed to tell is "not a keyframe".
pub fn is_keyframe_start(codec: VideoCodec, payload: &[u8]) -> bool {
    codec.starts_keyframe(payload)
}
