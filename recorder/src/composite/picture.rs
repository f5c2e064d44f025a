//! Pictures in I420 (the decoders' and encoders' format), and what the
//! compositor draws on them: filled boxes, scaled copies and name labels.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use super::layout::Rect;

/// Black in limited-range YUV.
pub const BLACK: (u8, u8, u8) = (16, 128, 128);

/// An I420 picture with tightly packed planes: Y (`width` x `height`),
/// then U and V (each `(width + 1) / 2` x `(height + 1) / 2`).
#[derive(Clone, PartialEq, Eq)]
pub struct Picture {
    width: u32,
    height: u32,
    data: Vec<u8>,
}

impl std::fmt::Debug for Picture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Picture({}x{})", self.width, self.height)
    }
}

fn chroma(n: u32) -> usize {
    n.div_ceil(2) as usize
}

impl Picture {
    /// A picture of one colour.
    pub fn filled(width: u32, height: u32, (y, u, v): (u8, u8, u8)) -> Picture {
        let luma = width as usize * height as usize;
        let c = chroma(width) * chroma(height);
        let mut data = vec![y; luma + 2 * c];
        data[luma..luma + c].fill(u);
        data[luma + c..].fill(v);
        Picture {
            width,
            height,
            data,
        }
    }

    /// A copy of three strided planes (as decoders hand them out). `None`
    /// if the planes are shorter than their size and strides say.
    pub fn from_planes(width: u32, height: u32, planes: [(&[u8], usize); 3]) -> Option<Picture> {
        let mut pic = Picture::filled(width, height, BLACK);
        let sizes = [
            (width as usize, height as usize),
            (chroma(width), chroma(height)),
            (chroma(width), chroma(height)),
        ];
        let mut offset = 0;
        for ((src, stride), (w, h)) in planes.into_iter().zip(sizes) {
            if stride < w || h > 0 && src.len() < stride * (h - 1) + w {
                return None;
            }
            for row in 0..h {
                pic.data[offset + row * w..offset + (row + 1) * w]
                    .copy_from_slice(&src[row * stride..row * stride + w]);
            }
            offset += w * h;
        }
        Some(pic)
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The three planes, packed one after the other.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Plane `i` (0 = Y, 1 = U, 2 = V) and its width and height.
    pub fn plane(&self, i: usize) -> (&[u8], usize, usize) {
        let (lw, lh) = (self.width as usize, self.height as usize);
        let (cw, ch) = (chroma(self.width), chroma(self.height));
        match i {
            0 => (&self.data[..lw * lh], lw, lh),
            1 => (&self.data[lw * lh..lw * lh + cw * ch], cw, ch),
            _ => (&self.data[lw * lh + cw * ch..], cw, ch),
        }
    }

    fn planes_mut(&mut self) -> [(&mut [u8], usize, usize); 3] {
        let (lw, lh) = (self.width as usize, self.height as usize);
        let (cw, ch) = (chroma(self.width), chroma(self.height));
        let (y, rest) = self.data.split_at_mut(lw * lh);
        let (u, v) = rest.split_at_mut(cw * ch);
        [(y, lw, lh), (u, cw, ch), (v, cw, ch)]
    }

    /// Fill `r` (clipped to the picture) with a colour. Chroma covers the
    /// even-aligned area, so rectangles should start on even pixels.
    pub fn fill(&mut self, r: Rect, colour: (u8, u8, u8)) {
        let r = r.clip(self.width, self.height);
        let values = [colour.0, colour.1, colour.2];
        for (i, (plane, pw, _)) in self.planes_mut().into_iter().enumerate() {
            let s = if i == 0 { 1 } else { 2 };
            let (x0, y0) = ((r.x / s) as usize, (r.y / s) as usize);
            let (x1, y1) = (
                r.right().div_ceil(s) as usize,
                r.bottom().div_ceil(s) as usize,
            );
            for row in y0..y1 {
                plane[row * pw + x0..row * pw + x1].fill(values[i]);
            }
        }
    }

    /// Copy `src` with its top left corner at (`x`, `y`), both even;
    /// what falls outside is cut off.
    pub fn blit(&mut self, src: &Picture, x: u32, y: u32) {
        let (x, y) = (x & !1, y & !1);
        for (i, (plane, pw, ph)) in self.planes_mut().into_iter().enumerate() {
            let s = if i == 0 { 1 } else { 2 };
            let (sp, sw, sh) = src.plane(i);
            let (dx, dy) = ((x / s) as usize, (y / s) as usize);
            if dx >= pw || dy >= ph {
                continue;
            }
            let w = sw.min(pw - dx);
            for row in 0..sh.min(ph - dy) {
                let d = (dy + row) * pw + dx;
                plane[d..d + w].copy_from_slice(&sp[row * sw..row * sw + w]);
            }
        }
    }

    /// This picture scaled to `width` x `height` (bilinear).
    pub fn scaled(&self, width: u32, height: u32, resizer: &mut Resizer) -> Picture {
        let (width, height) = (width.max(2), height.max(2));
        if (width, height) == (self.width, self.height) {
            return self.clone();
        }
        let opts = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
        let mut scaled = Vec::with_capacity(3);
        for i in 0..3 {
            let (src, sw, sh) = self.plane(i);
            let (dw, dh) = if i == 0 {
                (width, height)
            } else {
                (width.div_ceil(2), height.div_ceil(2))
            };
            let mut dst = Image::new(dw, dh, PixelType::U8);
            if let Ok(src) = ImageRef::new(sw as u32, sh as u32, src, PixelType::U8) {
                let _ = resizer.resize(&src, &mut dst, &opts);
            }
            scaled.push(dst.into_vec());
        }
        let mut out = Picture::filled(width, height, BLACK);
        for ((plane, _, _), s) in out.planes_mut().into_iter().zip(scaled) {
            if plane.len() == s.len() {
                plane.copy_from_slice(&s);
            }
        }
        out
    }

    /// Write `text` with the 8x8 font, each font pixel `scale` pixels
    /// wide, starting at (`x`, `y`), in luma `y_value` on a darkened box;
    /// characters the font lacks are drawn as '?'. Stops at `max_width`.
    pub fn label(&mut self, text: &str, x: u32, y: u32, scale: u32, max_width: u32) {
        let scale = scale.max(1);
        let glyph = 8 * scale;
        let fits = (max_width.saturating_sub(2 * scale) / glyph) as usize;
        let chars: Vec<char> = text.chars().take(fits).collect();
        if chars.is_empty() {
            return;
        }
        let pad = 2 * scale;
        let bg = Rect {
            x: x & !1,
            y: y & !1,
            w: (chars.len() as u32 * glyph + 2 * pad + 1) & !1,
            h: (glyph + 2 * pad + 1) & !1,
        };
        self.fill(bg, (32, 128, 128));
        let (w, h) = (self.width, self.height);
        let (luma, _, _) = self.planes_mut().into_iter().next().expect("three planes");
        for (n, c) in chars.iter().enumerate() {
            let bitmap = font8x8::legacy::BASIC_LEGACY
                .get(*c as usize)
                .copied()
                .unwrap_or(font8x8::legacy::BASIC_LEGACY[b'?' as usize]);
            for (row, bits) in bitmap.iter().enumerate() {
                for col in 0..8u32 {
                    if bits >> col & 1 == 0 {
                        continue;
                    }
                    let px = x + pad + n as u32 * glyph + col * scale;
                    let py = y + pad + row as u32 * scale;
                    for dy in 0..scale {
                        for dx in 0..scale {
                            let (cx, cy) = (px + dx, py + dy);
                            if cx < w && cy < h {
                                luma[(cy * w + cx) as usize] = 235;
                            }
                        }
                    }
                }
            }
        }
    }
}

impl openh264::formats::YUVSource for Picture {
    fn dimensions(&self) -> (usize, usize) {
        (self.width as usize, self.height as usize)
    }

    fn strides(&self) -> (usize, usize, usize) {
        (self.width as usize, chroma(self.width), chroma(self.width))
    }

    fn y(&self) -> &[u8] {
        self.plane(0).0
    }

    fn u(&self) -> &[u8] {
        self.plane(1).0
    }

    fn v(&self) -> &[u8] {
        self.plane(2).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blit_and_fill_stay_inside() {
        let mut canvas = Picture::filled(64, 32, BLACK);
        let white = Picture::filled(16, 16, (235, 128, 128));
        canvas.blit(&white, 56, 24);
        assert_eq!(canvas.plane(0).0[24 * 64 + 56], 235);
        assert_eq!(canvas.plane(0).0[23 * 64 + 56], 16);
        canvas.fill(
            Rect {
                x: 60,
                y: 0,
                w: 100,
                h: 100,
            },
            (100, 1, 2),
        );
        assert_eq!(canvas.plane(0).0[63], 100);
        assert_eq!(canvas.plane(1).0[31], 1);
        assert_eq!(canvas.plane(2).0[31], 2);
    }

    #[test]
    fn scaling_keeps_a_flat_colour() {
        let mut r = Resizer::new();
        let p = Picture::filled(320, 240, (120, 90, 200)).scaled(160, 90, &mut r);
        assert_eq!((p.width(), p.height()), (160, 90));
        assert!(p.plane(0).0.iter().all(|&v| v == 120));
        assert!(p.plane(2).0.iter().all(|&v| v == 200));
    }

    #[test]
    fn strided_planes_are_packed_and_short_ones_refused() {
        let y = vec![7u8; 8 * 4];
        let c = vec![9u8; 8 * 2];
        let p = Picture::from_planes(6, 4, [(&y, 8), (&c, 8), (&c, 8)]).unwrap();
        assert_eq!(p.data().len(), 6 * 4 + 2 * 3 * 2);
        assert!(p.data().iter().all(|&v| v == 7 || v == 9));
        assert!(Picture::from_planes(6, 5, [(&y, 8), (&c, 8), (&c, 8)]).is_none());
    }

    #[test]
    fn labels_draw_bright_text_on_a_dark_box() {
        let mut p = Picture::filled(200, 40, (100, 128, 128));
        p.label("Ali é", 4, 4, 2, 196);
        let luma = p.plane(0).0;
        assert!(luma.contains(&235), "text drawn");
        assert!(luma.contains(&32), "box drawn");
        // Nothing beyond the box.
        assert_eq!(luma[39 * 200 + 199], 100);
    }
}
