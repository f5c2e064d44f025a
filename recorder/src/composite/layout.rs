//! Where each participant goes on the composite: a grid that adapts to
//! how many are present, and a picture fitted into its cell.

/// A rectangle of pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub w: u32,
    /// Height.
    pub h: u32,
}

impl Rect {
    /// One past the right edge.
    pub fn right(&self) -> u32 {
        self.x + self.w
    }

    /// One past the bottom edge.
    pub fn bottom(&self) -> u32 {
        self.y + self.h
    }

    /// This rectangle cut to a `width` x `height` picture.
    pub fn clip(&self, width: u32, height: u32) -> Rect {
        let x = self.x.min(width);
        let y = self.y.min(height);
        Rect {
            x,
            y,
            w: self.right().min(width) - x,
            h: self.bottom().min(height) - y,
        }
    }
}

/// Pixels between cells and around the grid.
pub const GAP: u32 = 4;

/// Cells for `n` participants on a `width` x `height` canvas: as many
/// columns as the square root of `n` rounded up, the rows that needs, and
/// a last row that is not full centred. Every edge is even (I420).
pub fn grid(n: usize, width: u32, height: u32) -> Vec<Rect> {
    if n == 0 {
        return Vec::new();
    }
    let n = n as u32;
    let cols = (1..=n).find(|c| c * c >= n).unwrap_or(n);
    let rows = n.div_ceil(cols);
    let cell_w = (width.saturating_sub(GAP) / cols).saturating_sub(GAP) & !1;
    let cell_h = (height.saturating_sub(GAP) / rows).saturating_sub(GAP) & !1;
    let used_h = rows * (cell_h + GAP) + GAP;
    let top = (height.saturating_sub(used_h) / 2) & !1;
    let mut cells = Vec::with_capacity(n as usize);
    for i in 0..n {
        let (row, col) = (i / cols, i % cols);
        let in_row = if row == rows - 1 {
            n - row * cols
        } else {
            cols
        };
        let used_w = in_row * (cell_w + GAP) + GAP;
        let left = (width.saturating_sub(used_w) / 2) & !1;
        cells.push(Rect {
            x: left + GAP + col * (cell_w + GAP),
            y: top + GAP + row * (cell_h + GAP),
            w: cell_w,
            h: cell_h,
        });
    }
    cells
}

/// The largest rectangle with a `pw` x `ph` picture's aspect ratio that
/// fits `cell`, centred in it, with even edges.
pub fn fit(cell: Rect, pw: u32, ph: u32) -> Rect {
    if pw == 0 || ph == 0 || cell.w == 0 || cell.h == 0 {
        return Rect { w: 0, h: 0, ..cell };
    }
    let (cw, ch) = (u64::from(cell.w), u64::from(cell.h));
    let (pw, ph) = (u64::from(pw), u64::from(ph));
    let (w, h) = if cw * ph <= ch * pw {
        (cw, cw * ph / pw)
    } else {
        (ch * pw / ph, ch)
    };
    let (w, h) = ((w as u32).max(2) & !1, (h as u32).max(2) & !1);
    Rect {
        x: (cell.x + (cell.w - w.min(cell.w)) / 2) & !1,
        y: (cell.y + (cell.h - h.min(cell.h)) / 2) & !1,
        w,
        h,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overlaps(a: &Rect, b: &Rect) -> bool {
        a.x < b.right() && b.x < a.right() && a.y < b.bottom() && b.y < a.bottom()
    }

    #[test]
    fn grids_grow_with_the_room_and_stay_on_the_canvas() {
        for (n, cols, rows) in [
            (1, 1, 1),
            (2, 2, 1),
            (3, 2, 2),
            (4, 2, 2),
            (5, 3, 2),
            (9, 3, 3),
            (10, 4, 3),
        ] {
            let cells = grid(n, 1280, 720);
            assert_eq!(cells.len(), n);
            let xs: std::collections::BTreeSet<u32> = cells.iter().map(|c| c.w).collect();
            assert_eq!(xs.len(), 1, "equal cells for {n}");
            assert_eq!(
                cells[0].w,
                ((1280 - GAP) / cols - GAP) & !1,
                "{n} participants: {cols} columns"
            );
            assert_eq!(
                cells[0].h,
                ((720 - GAP) / rows - GAP) & !1,
                "{n} participants: {rows} rows"
            );
            for (i, a) in cells.iter().enumerate() {
                assert!(a.right() <= 1280 && a.bottom() <= 720, "{n}: {a:?}");
                assert!(a.x % 2 == 0 && a.y % 2 == 0 && a.w % 2 == 0 && a.h % 2 == 0);
                for b in &cells[i + 1..] {
                    assert!(!overlaps(a, b), "{n}: {a:?} {b:?}");
                }
            }
        }
        assert!(grid(0, 640, 360).is_empty());
    }

    #[test]
    fn a_short_last_row_is_centred() {
        let cells = grid(3, 1280, 720);
        let left_gap = cells[2].x;
        let right_gap = 1280 - cells[2].right();
        assert!(left_gap.abs_diff(right_gap) <= 2, "{cells:?}");
    }

    #[test]
    fn pictures_keep_their_aspect_ratio() {
        let cell = Rect {
            x: 10,
            y: 20,
            w: 400,
            h: 300,
        };
        let wide = fit(cell, 1280, 720);
        assert_eq!((wide.w, wide.h), (400, 224));
        assert_eq!(wide.x, 10);
        assert!(wide.y > 20 && wide.bottom() <= 320);
        let tall = fit(cell, 480, 640);
        assert_eq!((tall.w, tall.h), (224, 300));
        assert_eq!(fit(cell, 0, 10).w, 0);
    }
}
