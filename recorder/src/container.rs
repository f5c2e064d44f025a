//! The per-participant files: VP8 + Opus in WebM, H.264 + Opus in
//! fragmented MP4, without transcoding.
//!
//! Both write as they go, so a file cut short (the process killed) plays
//! up to its last write:
//! - WebM through libwebm (the `webm` crate) in live mode, on an
//!   unbuffered file: each frame reaches the file when libwebm writes it
//!   (libwebm holds audio only until the next video frame, to keep a
//!   keyframe's audio in its cluster).
//! - MP4 through muxide's fragmented muxer: a fragment (moof + mdat) is
//!   written at least every [`FRAGMENT`] of media, and on [`MediaFile::tick`].

use std::collections::BTreeMap;
use std::io::{Seek, Write};
use std::time::Duration;

use confab_media::h264;
use sfu::MediaKind;

use crate::frame::Frame;
use crate::RecordError;

/// Longest stretch of media an MP4 fragment holds before it is written.
pub const FRAGMENT: Duration = Duration::from_secs(1);

/// How far audio and video of one WebM file may arrive out of order;
/// frames are written once the file's newest frame is this much later.
const REORDER: Duration = Duration::from_millis(300);

/// An open recording of one participant.
pub trait MediaFile {
    /// Write a frame placed at `at` on the recording's time axis.
    fn write(&mut self, kind: MediaKind, at: Duration, frame: &Frame) -> Result<(), RecordError>;
    /// Time passed: write what waits for longer than the crash-safety bound.
    fn tick(&mut self, now: Duration) -> Result<(), RecordError>;
    /// Write everything left and close the file.
    fn finish(self: Box<Self>) -> Result<(), RecordError>;
}

/// OpusHead (RFC 7845 §5.1), the CodecPrivate of a Matroska Opus track:
/// 2 channels as WebRTC signals Opus, no pre-skip, 48 kHz, no gain, mapping 0.
fn opus_head() -> Vec<u8> {
    let mut h = b"OpusHead".to_vec();
    h.push(1);
    h.push(2);
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(&48_000u32.to_le_bytes());
    h.extend_from_slice(&0i16.to_le_bytes());
    h.push(0);
    h
}

fn webm_err(e: webm::mux::Error) -> RecordError {
    RecordError::Mux(format!("webm: {e:?}"))
}

/// VP8 and/or Opus in WebM.
pub struct WebmFile<W: Write + Seek> {
    segment: Option<webm::mux::Segment<W>>,
    video: Option<webm::mux::VideoTrack>,
    audio: Option<webm::mux::AudioTrack>,
    /// Frames waiting to be written in time order: (place, arrival order).
    queue: BTreeMap<(Duration, u64), (MediaKind, Frame)>,
    order: u64,
    last_written: Duration,
}

impl<W: Write + Seek> WebmFile<W> {
    /// A file with a VP8 track of `video` size (if any) and an Opus track
    /// (if `audio`).
    pub fn new(
        dest: W,
        video: Option<(u32, u32)>,
        audio: bool,
    ) -> Result<WebmFile<W>, RecordError> {
        use webm::mux::{AudioCodecId, SegmentBuilder, SegmentMode, VideoCodecId, Writer};
        let mut b = SegmentBuilder::new(Writer::new(dest))
            .map_err(webm_err)?
            .set_mode(SegmentMode::File)
            .map_err(webm_err)?
            .set_writing_app("Confab recorder")
            .map_err(webm_err)?;
        let mut video_track = None;
        let mut audio_track = None;
        if let Some((w, h)) = video {
            let (nb, t) = b
                .add_video_track(w, h, VideoCodecId::VP8, None)
                .map_err(webm_err)?;
            b = nb;
            video_track = Some(t);
        }
        if audio {
            let (nb, t) = b
                .add_audio_track(48_000, 2, AudioCodecId::Opus, None)
                .map_err(webm_err)?;
            b = nb.set_codec_private(t, &opus_head()).map_err(webm_err)?;
            audio_track = Some(t);
        }
        Ok(WebmFile {
            segment: Some(b.build()),
            video: video_track,
            audio: audio_track,
            queue: BTreeMap::new(),
            order: 0,
            last_written: Duration::ZERO,
        })
    }

    /// Write queued frames placed at or before `until`.
    fn drain(&mut self, until: Duration) -> Result<(), RecordError> {
        while let Some(entry) = self.queue.first_entry() {
            if entry.key().0 > until {
                break;
            }
            let ((at, _), (kind, frame)) = entry.remove_entry();
            let track: Option<u64> = match kind {
                MediaKind::Video => self.video.map(Into::into),
                MediaKind::Audio => self.audio.map(Into::into),
            };
            let (Some(track), Some(segment)) = (track, self.segment.as_mut()) else {
                continue;
            };
            // Timestamps must not go back across tracks.
            let at = at.max(self.last_written);
            self.last_written = at;
            let ns = u64::try_from(at.as_nanos()).unwrap_or(u64::MAX);
            segment
                .add_frame(track, &frame.data, ns, frame.keyframe)
                .map_err(webm_err)?;
        }
        Ok(())
    }
}

impl<W: Write + Seek> MediaFile for WebmFile<W> {
    fn write(&mut self, kind: MediaKind, at: Duration, frame: &Frame) -> Result<(), RecordError> {
        self.order += 1;
        self.queue.insert((at, self.order), (kind, frame.clone()));
        let newest = self.queue.last_key_value().map(|(k, _)| k.0).unwrap_or(at);
        self.drain(newest.saturating_sub(REORDER))
    }

    fn tick(&mut self, now: Duration) -> Result<(), RecordError> {
        self.drain(now.saturating_sub(REORDER))
    }

    fn finish(mut self: Box<Self>) -> Result<(), RecordError> {
        self.drain(Duration::MAX)?;
        if let Some(segment) = self.segment.take() {
            let mut dest = segment
                .finalize(None)
                .map_err(|_| RecordError::Mux("webm: finalizing failed".into()))?
                .into_inner();
            dest.flush()?;
        }
        Ok(())
    }
}

/// H.264 and (optionally) Opus in fragmented MP4.
pub struct Mp4File<W: Write> {
    dest: W,
    muxer: muxide::fragmented::FragmentedMuxer,
    /// The axis place of the file's time zero (its first keyframe):
    /// muxide starts every track's first fragment at zero.
    origin: Duration,
    last_flush: Duration,
}

impl<W: Write> Mp4File<W> {
    /// A file whose video starts with `keyframe` (an AVC-format access
    /// unit carrying SPS and PPS) placed at `at`.
    pub fn new(
        mut dest: W,
        keyframe: &Frame,
        at: Duration,
        size: (u32, u32),
        audio: bool,
    ) -> Result<Mp4File<W>, RecordError> {
        use muxide::api::AudioCodec;
        use muxide::fragmented::{FragmentAudioConfig, FragmentConfig, FragmentedMuxer};
        let nal =
            |t: u8| h264::avc_nal_units(&keyframe.data).find(|n| h264::nal_type(n) == Some(t));
        let (Some(sps), Some(pps)) = (nal(h264::NAL_SPS), nal(h264::NAL_PPS)) else {
            return Err(RecordError::Mux(
                "mp4: the first keyframe carries no SPS/PPS".into(),
            ));
        };
        let mut config = FragmentConfig::new(size.0, size.1, 90_000)
            .with_fragment_duration_ms(u32::try_from(FRAGMENT.as_millis()).unwrap_or(1000));
        config.sps = sps.to_vec();
        config.pps = pps.to_vec();
        let mut muxer = if audio {
            let a = FragmentAudioConfig {
                codec: AudioCodec::Opus,
                sample_rate: 48_000,
                channels: 2,
            };
            FragmentedMuxer::new_with_audio(config, a)
        } else {
            FragmentedMuxer::new(config)
        }
        .map_err(|e| RecordError::Mux(format!("mp4: {e}")))?;
        dest.write_all(&muxer.init_segment())?;
        let mut file = Mp4File {
            dest,
            muxer,
            origin: at,
            last_flush: at,
        };
        file.write(MediaKind::Video, at, keyframe)?;
        Ok(file)
    }

    fn flush(&mut self, now: Duration) -> Result<(), RecordError> {
        if let Some(fragment) = self.muxer.flush_segment() {
            self.dest.write_all(&fragment)?;
            self.dest.flush()?;
        }
        self.last_flush = now;
        Ok(())
    }
}

fn ticks(d: Duration, rate: u64) -> u64 {
    u64::try_from(d.as_nanos() * u128::from(rate) / 1_000_000_000).unwrap_or(u64::MAX)
}

impl<W: Write> MediaFile for Mp4File<W> {
    fn write(&mut self, kind: MediaKind, at: Duration, frame: &Frame) -> Result<(), RecordError> {
        // Media from before the file's first keyframe has no place in it.
        let Some(rel) = at.checked_sub(self.origin) else {
            return Ok(());
        };
        let r = match kind {
            MediaKind::Video => {
                let t = ticks(rel, 90_000);
                self.muxer.write_video(t, t, &frame.data, frame.keyframe)
            }
            MediaKind::Audio => {
                let t = ticks(rel, 48_000);
                self.muxer.write_audio(t, t, &frame.data)
            }
        };
        r.map_err(|e| RecordError::Mux(format!("mp4: {e}")))?;
        if at.saturating_sub(self.last_flush) >= FRAGMENT {
            self.flush(at)?;
        }
        Ok(())
    }

    fn tick(&mut self, now: Duration) -> Result<(), RecordError> {
        if now.saturating_sub(self.last_flush) >= FRAGMENT {
            self.flush(now)?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), RecordError> {
        self.flush(Duration::MAX)?;
        Ok(())
    }
}
