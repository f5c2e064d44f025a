//! How fast the composite is made, as a multiple of real time: N
//! participants (half VP8, half H.264, 640x360 at 30 fps, with Opus) are
//! decoded, laid out, mixed and encoded to H.264 + Opus in MP4 at each
//! output size, as fast as one thread can.
//!
//! ```text
//! cargo run --release -p recorder --example composite_bench -- [SECONDS] [CODEC]
//! ```
//!
//! The inputs are encoded once beforehand with the load tester's clips
//! (not timed). Everything else a recording does after a frame is
//! assembled is timed: decoding, scaling, drawing, mixing, encoding,
//! muxing into memory.

use std::io::Cursor;
use std::time::{Duration, Instant};

use confab_loadtest::media::{ClipSpec, VideoClip};
use confab_media::VideoCodec as ClipCodec;
use recorder::composite::decode::annex_b_to_avc;
use recorder::frame::Frame;
use recorder::{Composite, CompositeConfig, OutputCodec};
use sfu::str0m::format::Codec;
use sfu::{EndpointId, MediaKind};

fn clip(codec: ClipCodec, seed: u64) -> Vec<Frame> {
    let clip = VideoClip::encode(&ClipSpec {
        codec,
        width: 640,
        height: 360,
        fps: 30,
        kbps: 800,
        simulcast: false,
        seed,
    })
    .expect("the clip encodes");
    clip.layers[0]
        .frames
        .iter()
        .map(|f| Frame {
            data: if codec == ClipCodec::H264 {
                annex_b_to_avc(&f.data)
            } else {
                f.data.to_vec()
            },
            rtp_time: 0,
            keyframe: f.keyframe,
        })
        .collect()
}

fn opus_packet() -> Vec<u8> {
    let mut enc =
        opus::Encoder::new(48_000, opus::Channels::Stereo, opus::Application::Voip).expect("opus");
    let pcm: Vec<i16> = (0..960)
        .flat_map(|i| {
            let s = (2000.0 * (i as f32 * 0.05).sin()) as i16;
            [s, s]
        })
        .collect();
    let mut out = vec![0; 4000];
    let n = enc.encode(&pcm, &mut out).expect("encodes");
    out.truncate(n);
    out
}

/// CPU time of this process so far.
fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    let codec: OutputCodec = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(OutputCodec::H264);
    let vp8 = clip(ClipCodec::Vp8, 1);
    let h264 = clip(ClipCodec::H264, 2);
    let audio = opus_packet();
    println!("| participants | composite | media | wall time | CPU time | speed (x real time) |");
    println!("|---|---|---|---|---|---|");
    for (width, height, kbps) in [(640, 360, 800), (1280, 720, 2500)] {
        for n in [2u64, 4, 9] {
            let sink: recorder::Sink = Box::new(|_: &str| {
                Ok(Box::new(Cursor::new(Vec::new())) as Box<dyn recorder::recording::Destination>)
            });
            let config = CompositeConfig {
                width,
                height,
                fps: 30,
                codec,
                kbps,
            };
            let mut c = Composite::new(Instant::now(), config, sink, "bench").expect("composite");
            let (wall0, cpu0) = (Instant::now(), cpu_time());
            for ms in 0..seconds * 1000 {
                let at = Duration::from_millis(ms);
                for p in 0..n {
                    if ms % 33 == 0 {
                        let (frames, codec) = if p % 2 == 0 {
                            (&vp8, Codec::Vp8)
                        } else {
                            (&h264, Codec::H264)
                        };
                        let f = &frames[(ms / 33) as usize % frames.len()];
                        c.push_frame(EndpointId(p), MediaKind::Video, codec, at, f);
                    }
                    if ms % 20 == 0 {
                        let f = Frame {
                            data: audio.clone(),
                            rtp_time: 0,
                            keyframe: true,
                        };
                        c.push_frame(EndpointId(p), MediaKind::Audio, Codec::Opus, at, &f);
                    }
                }
                if ms % 100 == 0 {
                    c.compose_until(at).expect("composes");
                }
            }
            let stats = c.stats();
            c.finish().expect("finishes");
            let (wall, cpu) = (wall0.elapsed(), cpu_time() - cpu0);
            assert!(
                stats.decode_errors == 0 && stats.video_frames > 0,
                "{stats:?}"
            );
            println!(
                "| {n} | {width}x{height} {codec} | {seconds} s | {:.2} s | {:.2} s | {:.1} |",
                wall.as_secs_f64(),
                cpu.as_secs_f64(),
                seconds as f64 / wall.as_secs_f64()
            );
        }
    }
}
