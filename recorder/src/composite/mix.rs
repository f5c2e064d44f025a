//! The composite's sound: every participant's Opus decoded, placed on the
//! recording's time axis, mixed, and encoded again.

use std::collections::VecDeque;
use std::time::Duration;

use crate::RecordError;

/// Samples per second.
pub const RATE: u64 = 48_000;
/// Channels decoded, mixed and encoded.
pub const CHANNELS: usize = 2;
/// Samples per channel in one mixed frame (20 ms).
pub const FRAME: usize = 960;
/// The duration of one mixed frame.
pub const FRAME_TIME: Duration = Duration::from_millis(20);

/// Most audio held per participant (2 s); older samples go first.
const MAX_HELD: usize = 2 * RATE as usize;
/// A jump larger than this between where a packet belongs and where the
/// participant's audio ends is a gap (filled with silence) or a step back
/// (the late packet is dropped); smaller ones are jitter, joined as is.
const SLACK: u64 = 2 * FRAME as u64;

fn sample_at(at: Duration) -> u64 {
    u64::try_from(at.as_nanos() * u128::from(RATE) / 1_000_000_000).unwrap_or(u64::MAX)
}

/// One participant's decoded audio on the time axis.
pub struct Lane {
    decoder: opus::Decoder,
    /// Sample index (per channel) of the first held sample.
    start: u64,
    /// Interleaved stereo samples.
    held: VecDeque<i16>,
    scratch: Vec<i16>,
    /// How loud this participant has been lately: mean square of the
    /// samples mixed, smoothed over about half a second.
    loudness: f64,
}

impl Lane {
    /// A lane with its own Opus decoder.
    pub fn new() -> Result<Lane, RecordError> {
        let decoder = opus::Decoder::new(RATE as u32, opus::Channels::Stereo)
            .map_err(|e| RecordError::Mux(format!("opus decoder: {e}")))?;
        Ok(Lane {
            decoder,
            start: 0,
            held: VecDeque::new(),
            scratch: vec![0; 5760 * CHANNELS],
            loudness: 0.0,
        })
    }

    /// How loud this participant has been over the last half second or
    /// so (mean square of the samples).
    pub fn loudness(&self) -> f64 {
        self.loudness
    }

    fn end(&self) -> u64 {
        self.start + (self.held.len() / CHANNELS) as u64
    }

    /// Decode an Opus packet placed at `at`. A packet that does not decode
    /// is dropped (its place becomes silence).
    pub fn push(&mut self, at: Duration, packet: &[u8]) {
        let Ok(n) = self.decoder.decode(packet, &mut self.scratch, false) else {
            return;
        };
        let pos = sample_at(at);
        if self.held.is_empty() {
            self.start = pos;
        } else if pos > self.end() + SLACK {
            let gap = ((pos - self.end()) as usize * CHANNELS).min(MAX_HELD * CHANNELS);
            self.held.extend(std::iter::repeat_n(0, gap));
        } else if pos + SLACK < self.end() {
            return;
        }
        self.held.extend(&self.scratch[..n * CHANNELS]);
        let excess = self.held.len().saturating_sub(MAX_HELD * CHANNELS);
        if excess > 0 {
            self.held.drain(..excess);
            self.start += (excess / CHANNELS) as u64;
        }
    }

    /// Add this lane's samples for [`FRAME`] samples from sample `from`
    /// into `mix`, and forget everything before their end.
    fn mix_into(&mut self, from: u64, mix: &mut [i32]) {
        // One frame of 20 ms in 25 makes half a second.
        const SMOOTHING: f64 = 1.0 / 25.0;
        if self.end() <= from {
            self.held.clear();
            self.start = from;
            self.loudness *= 1.0 - SMOOTHING;
            return;
        }
        if self.start < from {
            let drop = ((from - self.start) as usize * CHANNELS).min(self.held.len());
            self.held.drain(..drop);
            self.start = from;
        }
        let skip = ((self.start - from) as usize).min(FRAME);
        let take = ((FRAME - skip) * CHANNELS).min(self.held.len());
        let mut square = 0.0;
        for (i, s) in self.held.drain(..take).enumerate() {
            mix[skip * CHANNELS + i] += i32::from(s);
            square += f64::from(s) * f64::from(s);
        }
        self.start += (take / CHANNELS) as u64;
        let frame_loudness = square / (FRAME * CHANNELS) as f64;
        self.loudness += (frame_loudness - self.loudness) * SMOOTHING;
    }
}

/// Mixes lanes and encodes the result.
pub struct Mixer {
    encoder: opus::Encoder,
    mix: Vec<i32>,
    pcm: Vec<i16>,
    out: Vec<u8>,
}

impl Mixer {
    /// A mixer encoding stereo Opus at 64 kbit/s.
    pub fn new() -> Result<Mixer, RecordError> {
        let e = |e: opus::Error| RecordError::Mux(format!("opus encoder: {e}"));
        let mut encoder = opus::Encoder::new(
            RATE as u32,
            opus::Channels::Stereo,
            opus::Application::Audio,
        )
        .map_err(e)?;
        encoder
            .set_bitrate(opus::Bitrate::Bits(64_000))
            .map_err(e)?;
        Ok(Mixer {
            encoder,
            mix: vec![0; FRAME * CHANNELS],
            pcm: vec![0; FRAME * CHANNELS],
            out: vec![0; 4000],
        })
    }

    /// The Opus packet of the 20 ms starting at `at`, mixed from `lanes`.
    pub fn frame<'a>(
        &mut self,
        at: Duration,
        lanes: impl Iterator<Item = &'a mut Lane>,
    ) -> Result<Vec<u8>, RecordError> {
        let from = sample_at(at);
        self.mix.fill(0);
        for lane in lanes {
            lane.mix_into(from, &mut self.mix);
        }
        for (p, m) in self.pcm.iter_mut().zip(&self.mix) {
            *p = (*m).clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
        }
        let n = self
            .encoder
            .encode(&self.pcm, &mut self.out)
            .map_err(|e| RecordError::Mux(format!("opus encoder: {e}")))?;
        Ok(self.out[..n].to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 20 ms stereo Opus packet of a tone at `amplitude`.
    fn tone(enc: &mut opus::Encoder, amplitude: f32) -> Vec<u8> {
        let pcm: Vec<i16> = (0..FRAME)
            .flat_map(|i| {
                let s = (amplitude
                    * (i as f32 * 2.0 * std::f32::consts::PI * 440.0 / 48_000.0).sin())
                    as i16;
                [s, s]
            })
            .collect();
        let mut out = vec![0; 4000];
        let n = enc.encode(&pcm, &mut out).unwrap();
        out.truncate(n);
        out
    }

    fn energy(mixer_out: &[u8]) -> f64 {
        let mut d = opus::Decoder::new(48_000, opus::Channels::Stereo).unwrap();
        let mut pcm = vec![0i16; 5760 * 2];
        let n = d.decode(mixer_out, &mut pcm, false).unwrap();
        pcm[..n * 2]
            .iter()
            .map(|&s| f64::from(s).powi(2))
            .sum::<f64>()
            / (n * 2) as f64
    }

    #[test]
    fn lanes_are_mixed_in_time_and_gaps_are_silent() {
        let mut enc =
            opus::Encoder::new(48_000, opus::Channels::Stereo, opus::Application::Audio).unwrap();
        let mut mixer = Mixer::new().unwrap();
        let (mut a, mut b) = (Lane::new().unwrap(), Lane::new().unwrap());
        let mut outs = Vec::new();
        for k in 0..50u64 {
            let at = FRAME_TIME * k as u32;
            a.push(at, &tone(&mut enc, 4000.0));
            // b speaks only in the second half second.
            if k >= 25 {
                b.push(at, &tone(&mut enc, 4000.0));
            }
            outs.push(mixer.frame(at, [&mut a, &mut b].into_iter()).unwrap());
        }
        let first: f64 = outs[10..20].iter().map(|o| energy(o)).sum();
        let second: f64 = outs[35..45].iter().map(|o| energy(o)).sum();
        assert!(first > 1e5, "one speaker is heard: {first}");
        assert!(
            second > first * 1.5,
            "two speakers are louder: {second} vs {first}"
        );
        // After the last packet the mix is silent.
        let _ = mixer
            .frame(FRAME_TIME * 60, [&mut a, &mut b].into_iter())
            .unwrap();
        let quiet = mixer
            .frame(FRAME_TIME * 61, [&mut a, &mut b].into_iter())
            .unwrap();
        // 20 dB under one speaker (the decoder's start adds a little noise).
        assert!(
            energy(&quiet) * 100.0 < first / 10.0,
            "silence: {} vs {first}",
            energy(&quiet)
        );
    }

    #[test]
    fn late_and_garbage_packets_are_dropped_and_memory_is_bounded() {
        let mut enc =
            opus::Encoder::new(48_000, opus::Channels::Stereo, opus::Application::Audio).unwrap();
        let mut lane = Lane::new().unwrap();
        let p = tone(&mut enc, 1000.0);
        lane.push(Duration::from_secs(1), &p);
        let end = lane.end();
        lane.push(Duration::from_millis(500), &p);
        assert_eq!(lane.end(), end, "a packet half a second late is dropped");
        lane.push(Duration::from_millis(1020), &[0xff, 0xff, 0xff]);
        for k in 0..500u32 {
            lane.push(Duration::from_secs(2) + FRAME_TIME * k, &p);
        }
        assert!(lane.held.len() <= MAX_HELD * CHANNELS);
    }
}
