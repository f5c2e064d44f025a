//! The compositor on its own, fed real encoded video (VP8 from libvpx,
//! H.264 from openh264) and Opus, on a time axis the test controls: the
//! grid follows who is present, pictures keep their aspect ratio and
//! names, a broken or stopped video keeps its last picture, a resolution
//! change is followed, and the file plays in ffprobe.

mod common;

use std::time::{Duration, Instant};

use confab_loadtest::media::{ClipSpec, VideoClip};
use confab_media::VideoCodec as ClipCodec;
use recorder::composite::decode::annex_b_to_avc;
use recorder::composite::layout::{fit, grid, Rect};
use recorder::composite::picture::Picture;
use recorder::frame::Frame;
use recorder::{Composite, CompositeConfig, OutputCodec};
use sfu::str0m::format::Codec;
use sfu::{EndpointId, MediaKind};

const FPS: u32 = 15;
const CELL_Y: u8 = 40;

fn clip(codec: ClipCodec, width: u32, height: u32, seed: u64) -> Vec<Frame> {
    let clip = VideoClip::encode(&ClipSpec {
        codec,
        width,
        height,
        fps: 30,
        kbps: 500,
        simulcast: false,
        seed,
    })
    .expect("the clip encodes");
    clip.layers[0]
        .frames
        .iter()
        .enumerate()
        .map(|(i, f)| Frame {
            data: match codec {
                ClipCodec::Vp8 => f.data.to_vec(),
                ClipCodec::H264 => annex_b_to_avc(&f.data),
            },
            rtp_time: i as u64 * 3000,
            keyframe: f.keyframe,
        })
        .collect()
}

fn tone() -> Vec<u8> {
    let mut enc = opus::Encoder::new(48_000, opus::Channels::Stereo, opus::Application::Audio)
        .expect("encoder");
    let pcm: Vec<i16> = (0..960)
        .flat_map(|i| {
            let s = (3000.0 * (i as f32 * 0.0576).sin()) as i16;
            [s, s]
        })
        .collect();
    let mut out = vec![0; 4000];
    let n = enc.encode(&pcm, &mut out).expect("encodes");
    out.truncate(n);
    out
}

/// Mean luma of `r` on `p`, and its bytes.
fn region(p: &Picture, r: Rect) -> (f64, Vec<u8>) {
    let (luma, w, _) = p.plane(0);
    let mut bytes = Vec::new();
    for y in r.y..r.bottom() {
        bytes.extend_from_slice(
            &luma[(y as usize * w + r.x as usize)..(y as usize * w + r.right() as usize)],
        );
    }
    let mean = bytes.iter().map(|&v| f64::from(v)).sum::<f64>() / bytes.len().max(1) as f64;
    (mean, bytes)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn the_grid_follows_the_room_and_holds_the_last_picture() {
    let dir = common::scratch_dir("compositor");
    let out = dir.clone();
    let sink: recorder::Sink = Box::new(move |name: &str| {
        Ok(Box::new(std::fs::File::create(out.join(name))?)
            as Box<dyn recorder::recording::Destination>)
    });
    let config = CompositeConfig {
        width: 640,
        height: 360,
        fps: FPS,
        codec: OutputCodec::H264,
        kbps: 600,
    };
    let mut c =
        Composite::new(Instant::now(), config, sink, "composite").expect("the composite starts");

    let (alice, bob) = (EndpointId(1), EndpointId(2));
    c.set_label(alice, "Alice");
    c.set_label(bob, "Bob");
    let a_small = clip(ClipCodec::Vp8, 320, 240, 1);
    let a_large = clip(ClipCodec::Vp8, 640, 360, 2);
    let b_tall = clip(ClipCodec::H264, 240, 320, 3);
    let audio = tone();

    // 0-1 s: Alice alone (VP8 4:3), with sound.
    let mut t = 0u64;
    // Each camera starts its clip (with a keyframe) when it starts
    // sending: (clip, from when).
    let mut send = |c: &mut Composite,
                    until: u64,
                    alice_video: Option<(&[Frame], u64)>,
                    bob_video: Option<u64>| {
        while t < until {
            if t.is_multiple_of(33) {
                if let Some((frames, from)) = alice_video {
                    let i = ((t - from) / 33) as usize;
                    c.push_frame(
                        alice,
                        MediaKind::Video,
                        Codec::Vp8,
                        ms(t),
                        &frames[i % frames.len()],
                    );
                }
                if let Some(from) = bob_video {
                    let i = ((t - from) / 33) as usize;
                    c.push_frame(
                        bob,
                        MediaKind::Video,
                        Codec::H264,
                        ms(t),
                        &b_tall[i % b_tall.len()],
                    );
                }
            }
            if t.is_multiple_of(20) {
                c.push_frame(
                    alice,
                    MediaKind::Audio,
                    Codec::Opus,
                    ms(t),
                    &Frame {
                        data: audio.clone(),
                        rtp_time: t * 48,
                        keyframe: true,
                    },
                );
            }
            t += 1;
        }
    };
    send(&mut c, 990, Some((&a_small, 0)), None);
    c.compose_until(ms(900)).expect("composes");
    assert_eq!(c.present(), vec![alice]);
    let cell = grid(1, 640, 360)[0];
    let pic = fit(cell, 320, 240);
    let (mean, first) = region(c.canvas(), pic);
    assert!(
        mean > CELL_Y as f64 + 20.0,
        "Alice's picture fills her place: mean luma {mean}"
    );
    // Beside a 4:3 picture in a 16:9 cell: the cell's own colour.
    let side = Rect {
        x: cell.x + 2,
        y: cell.y + 10,
        w: (pic.x - cell.x).saturating_sub(4) & !1,
        h: 40,
    };
    assert!(side.w > 0);
    assert!(
        region(c.canvas(), side).1.iter().all(|&v| v == CELL_Y),
        "letterbox beside the picture"
    );
    // Her name, bright on a dark box, at the bottom of her cell.
    let label = Rect {
        x: cell.x,
        y: cell.bottom() - 24,
        w: 80,
        h: 20,
    };
    let (_, label_px) = region(c.canvas(), label);
    assert!(
        label_px.contains(&235) && label_px.contains(&32),
        "Alice's name is drawn"
    );

    // The picture moves while she sends.
    c.compose_until(ms(980)).expect("composes");
    assert!(region(c.canvas(), pic).1 != first, "the picture moves");

    // 1-2 s: Bob joins (H.264, portrait): two cells side by side.
    send(&mut c, 1990, Some((&a_small, 0)), Some(990));
    c.compose_until(ms(1900)).expect("composes");
    assert_eq!(c.present(), vec![alice, bob]);
    let cells = grid(2, 640, 360);
    let bob_pic = fit(cells[1], 240, 320);
    assert!(bob_pic.h > bob_pic.w, "Bob stays portrait: {bob_pic:?}");
    assert!(
        region(c.canvas(), bob_pic).0 > CELL_Y as f64 + 20.0,
        "Bob's picture is shown: {:?}",
        c.stats()
    );
    // Alice is the one talking: her cell is framed, Bob's is not.
    assert_eq!(c.speaker(), Some(alice));
    let luma_at = |c: &Composite, x: u32, y: u32| c.canvas().plane(0).0[(y * 640 + x) as usize];
    assert_eq!(
        luma_at(&c, cells[0].x - 1, cells[0].y + 20),
        recorder::composite::SPEAKER.0,
        "Alice is framed"
    );
    assert_eq!(
        luma_at(&c, cells[1].right() + 1, cells[1].y + 20),
        24,
        "Bob is not"
    );

    // A frame that does not decode asks for a keyframe; the frames after
    // it wait for one, and Alice's last picture stays meanwhile while
    // Bob's moves on.
    let alice_pic = fit(cells[0], 320, 240);
    let broken = Frame {
        data: vec![0x51, 0x02, 0x03, 0x04],
        rtp_time: 0,
        keyframe: false,
    };
    assert!(
        !c.push_frame(alice, MediaKind::Video, Codec::Vp8, ms(1990), &broken),
        "a keyframe is wanted"
    );
    assert_eq!(c.stats().decode_errors, 1);
    for k in 1..6u64 {
        let delta = &a_small[(60 + k) as usize];
        assert!(!delta.keyframe);
        assert!(
            !c.push_frame(
                alice,
                MediaKind::Video,
                Codec::Vp8,
                ms(1990 + k * 33),
                delta
            ),
            "still waiting for a keyframe"
        );
    }
    send(&mut c, 2200, None, Some(990));
    // The frame of 2.0 s shows Alice's last good picture (of 1.98 s).
    c.compose_until(ms(2010)).expect("composes");
    let before = region(c.canvas(), alice_pic).1;
    let bob_before = region(c.canvas(), bob_pic).1;
    c.compose_until(ms(2150)).expect("composes");
    assert!(
        region(c.canvas(), alice_pic).1 == before,
        "Alice's last picture is held"
    );
    assert!(
        region(c.canvas(), bob_pic).1 != bob_before,
        "Bob's picture moves on"
    );
    assert_eq!(
        c.stats().decode_errors,
        1,
        "frames waiting for a keyframe are not decoded"
    );

    // 2.2-3 s: Alice's camera comes back at another resolution (a keyframe
    // at 640x360).
    send(&mut c, 2990, Some((&a_large, 2200)), Some(990));
    c.compose_until(ms(2900)).expect("composes");
    let wide = fit(cells[0], 640, 360);
    assert!(
        region(c.canvas(), wide).0 > CELL_Y as f64 + 20.0,
        "the new size fills a 16:9 place"
    );
    assert_eq!(c.stats().decode_errors, 1, "the new keyframe decodes");

    // 3-4 s: Alice's video stops (audio goes on): her last picture stays.
    // Bob leaves: Alice has the canvas again.
    send(&mut c, 3100, None, Some(990));
    c.withdraw(bob, "1");
    send(&mut c, 4000, None, None);
    c.compose_until(ms(3500)).expect("composes");
    assert_eq!(c.present(), vec![alice]);
    let alone = fit(grid(1, 640, 360)[0], 640, 360);
    let held = region(c.canvas(), alone);
    assert!(held.0 > CELL_Y as f64 + 20.0);
    c.compose_until(ms(3990)).expect("composes");
    assert!(
        region(c.canvas(), alone).1 == held.1,
        "no new video: the last picture is held"
    );

    let file = c
        .finish()
        .expect("the file closes")
        .expect("a file was written");
    assert_eq!(file.name, "composite.mp4");
    let probe = common::ffprobe(&dir.join(&file.name));
    let video = probe.stream("video").expect("video");
    let sound = probe.stream("audio").expect("audio");
    assert_eq!(
        (video.codec.as_str(), sound.codec.as_str()),
        ("h264", "opus")
    );
    assert!(
        (probe.duration - 4.0).abs() < 0.4,
        "4 s of room time: {probe:?}"
    );
    assert_eq!(
        video.decoded, video.frames,
        "every composite frame decodes: {probe:?}"
    );
    assert!(
        video.frames.abs_diff(u64::from(FPS) * 4) <= 2,
        "{FPS} frames a second: {probe:?}"
    );
    assert!(
        sound.decoded.abs_diff(200) <= 5,
        "50 audio frames a second: {probe:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn vp8_composites_go_to_webm() {
    let dir = common::scratch_dir("compositor-vp8");
    let out = dir.clone();
    let sink: recorder::Sink = Box::new(move |name: &str| {
        Ok(Box::new(std::fs::File::create(out.join(name))?)
            as Box<dyn recorder::recording::Destination>)
    });
    let config = CompositeConfig {
        width: 320,
        height: 180,
        fps: 10,
        codec: OutputCodec::Vp8,
        kbps: 300,
    };
    let mut c =
        Composite::new(Instant::now(), config, sink, "composite").expect("the composite starts");
    // A picture larger than the canvas is scaled down to it.
    let frames = clip(ClipCodec::H264, 640, 360, 4);
    for (i, f) in frames.iter().enumerate().take(60) {
        c.push_frame(
            EndpointId(7),
            MediaKind::Video,
            Codec::H264,
            ms(i as u64 * 33),
            f,
        );
    }
    c.compose_until(ms(1500)).expect("composes");
    let place = fit(grid(1, 320, 180)[0], 640, 360);
    assert!(
        region(c.canvas(), place).0 > CELL_Y as f64 + 20.0,
        "the large picture fills its place"
    );
    let file = c.finish().expect("closes").expect("written");
    let probe = common::ffprobe(&dir.join(&file.name));
    assert!(probe.format.contains("webm"), "{probe:?}");
    assert_eq!(probe.stream("video").map(|s| s.codec.as_str()), Some("vp8"));
    assert_eq!(
        probe.stream("audio").map(|s| s.codec.as_str()),
        Some("opus")
    );
    assert!((probe.duration - 1.95).abs() < 0.3, "{probe:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
