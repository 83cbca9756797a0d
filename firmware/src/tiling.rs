//! Region of interest and tiling (`--roi X,Y,W,H`, `--tiles COLSxROWS`): a camera frame is far
//! larger than the model's input (32×32 for the bundled model), so a small out-of-distribution
//! object in a large scene would be averaged away by scaling the whole frame down. The frame is
//! cropped to the ROI, cut into a grid of tiles, and every tile is scored as one image of a
//! single batched detector call; the frame's score is its worst tile's. The overlay is the tiles'
//! views and heatmaps stitched back into the grid.
//!
//! Each tile goes through the model's own preprocessing (shorter side resized, centre crop): a
//! tile that is not square loses its edges, so pick a grid (and ROI) that makes square tiles —
//! e.g. `--tiles 16x9` on a 16:9 frame.

use image::{DynamicImage, RgbImage};

/// A `--roi` or `--tiles` value that does not parse, or a region that does not fit a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TilingError {
    /// The `--roi` value as given.
    #[error("--roi {0}: expected X,Y,W,H in pixels (W and H positive)")]
    Roi(String),
    /// The `--tiles` value as given.
    #[error("--tiles {0}: expected COLSxROWS, e.g. 3x2 (at most {MAX_TILES} tiles)")]
    Grid(String),
    #[error(
        "ROI {},{},{},{} lies outside the {width}×{height} frame",
        roi.x,
        roi.y,
        roi.w,
        roi.h
    )]
    OutsideFrame { roi: Roi, width: u32, height: u32 },
    /// The ROI, clipped to the frame (`width × height`), has fewer pixels than tiles across or
    /// down.
    #[error("ROI {width}×{height} is too small for {cols}×{rows} tiles")]
    TooSmall {
        width: u32,
        height: u32,
        cols: u32,
        rows: u32,
    },
}

/// A crop rectangle in source-frame pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roi {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

impl std::str::FromStr for Roi {
    type Err = TilingError;
    fn from_str(s: &str) -> Result<Roi, TilingError> {
        let bad = || TilingError::Roi(s.to_string());
        let v: Vec<u32> = s
            .split(',')
            .map(|p| p.trim().parse::<u32>())
            .collect::<Result<_, _>>()
            .map_err(|_| bad())?;
        match v[..] {
            [x, y, w, h] if w > 0 && h > 0 => Ok(Roi { x, y, w, h }),
            _ => Err(bad()),
        }
    }
}

/// A tile grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    pub cols: u32,
    pub rows: u32,
}

/// The most tiles per frame (one detector batch).
pub const MAX_TILES: u32 = 256;

impl Default for Grid {
    fn default() -> Self {
        Grid { cols: 1, rows: 1 }
    }
}

impl std::str::FromStr for Grid {
    type Err = TilingError;
    fn from_str(s: &str) -> Result<Grid, TilingError> {
        let bad = || TilingError::Grid(s.to_string());
        let (c, r) = s.split_once(['x', 'X']).ok_or_else(bad)?;
        let (cols, rows) = (
            c.trim().parse::<u32>().map_err(|_| bad())?,
            r.trim().parse::<u32>().map_err(|_| bad())?,
        );
        if cols == 0 || rows == 0 || cols.saturating_mul(rows) > MAX_TILES {
            return Err(bad());
        }
        Ok(Grid { cols, rows })
    }
}

impl Grid {
    pub fn count(&self) -> usize {
        (self.cols * self.rows) as usize
    }
}

/// What part of each frame is scored, and how.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Region {
    pub roi: Option<Roi>,
    pub grid: Grid,
}

impl Region {
    /// The whole frame as one image (the default): no crop, no tiles.
    pub fn is_whole(&self) -> bool {
        self.roi.is_none() && self.grid.count() == 1
    }

    /// The ROI within a `w × h` frame: clipped to it; an error when nothing of it is inside or a
    /// tile would be empty.
    pub fn rect(&self, w: u32, h: u32) -> Result<Roi, TilingError> {
        let r = self.roi.unwrap_or(Roi { x: 0, y: 0, w, h });
        let (x1, y1) = (
            r.x.saturating_add(r.w).min(w),
            r.y.saturating_add(r.h).min(h),
        );
        if r.x >= x1 || r.y >= y1 {
            return Err(TilingError::OutsideFrame {
                roi: r,
                width: w,
                height: h,
            });
        }
        let clipped = Roi {
            x: r.x,
            y: r.y,
            w: x1 - r.x,
            h: y1 - r.y,
        };
        if clipped.w < self.grid.cols || clipped.h < self.grid.rows {
            return Err(TilingError::TooSmall {
                width: clipped.w,
                height: clipped.h,
                cols: self.grid.cols,
                rows: self.grid.rows,
            });
        }
        Ok(clipped)
    }

    /// The tiles of a frame, row by row. Tile edges are spread evenly (`x + i·w / cols`), so
    /// the tiles cover the ROI exactly.
    pub fn split(&self, img: &DynamicImage) -> Result<Vec<DynamicImage>, TilingError> {
        let r = self.rect(img.width(), img.height())?;
        if self.is_whole() {
            return Ok(vec![img.clone()]);
        }
        let Grid { cols, rows } = self.grid;
        let edge = |start: u32, len: u32, parts: u32, i: u32| {
            start + (u64::from(len) * u64::from(i) / u64::from(parts)) as u32
        };
        let mut tiles = Vec::with_capacity(self.grid.count());
        for j in 0..rows {
            let (y0, y1) = (edge(r.y, r.h, rows, j), edge(r.y, r.h, rows, j + 1));
            for i in 0..cols {
                let (x0, x1) = (edge(r.x, r.w, cols, i), edge(r.x, r.w, cols, i + 1));
                tiles.push(img.crop_imm(x0, y0, x1 - x0, y1 - y0));
            }
        }
        Ok(tiles)
    }
}

/// The tiles' views (all the model's input size) and heatmaps (each laid out like its view, as
/// [`hood_runtime::overlay::overlay`] expects) stitched into the grid: one view, one heatmap.
pub fn stitch(grid: Grid, parts: &[(&RgbImage, &[f32])]) -> (RgbImage, Vec<f32>) {
    let (vw, vh) = parts.first().map_or((0, 0), |(v, _)| v.dimensions());
    let (w, h) = (vw * grid.cols, vh * grid.rows);
    let mut view = RgbImage::new(w, h);
    let mut heat = vec![0f32; (w * h) as usize];
    for (k, (v, hm)) in parts.iter().enumerate() {
        let (ox, oy) = ((k as u32 % grid.cols) * vw, (k as u32 / grid.cols) * vh);
        for (x, y, p) in v.enumerate_pixels() {
            if x < vw && y < vh {
                view.put_pixel(ox + x, oy + y, *p);
                heat[((oy + y) * w + ox + x) as usize] =
                    hm.get((y * vw + x) as usize).copied().unwrap_or(0.0);
            }
        }
    }
    (view, heat)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_and_bad_ones_are_clear() {
        assert_eq!(
            "10, 20,300,200".parse::<Roi>(),
            Ok(Roi {
                x: 10,
                y: 20,
                w: 300,
                h: 200
            })
        );
        for bad in ["1,2,3", "1,2,0,4", "a,b,c,d", "-1,0,4,4", "1,2,3,4,5"] {
            assert!(
                bad.parse::<Roi>()
                    .unwrap_err()
                    .to_string()
                    .contains("--roi"),
                "{bad}"
            );
        }
        assert_eq!("3x2".parse::<Grid>(), Ok(Grid { cols: 3, rows: 2 }));
        assert_eq!("16X9".parse::<Grid>(), Ok(Grid { cols: 16, rows: 9 }));
        for bad in ["3", "0x2", "x", "20x20", "3x-1"] {
            assert!(
                bad.parse::<Grid>()
                    .unwrap_err()
                    .to_string()
                    .contains("--tiles"),
                "{bad}"
            );
        }
    }

    #[test]
    fn tiles_cover_the_roi_exactly_and_in_row_order() {
        let img = DynamicImage::ImageRgb8(RgbImage::from_fn(100, 50, |x, y| {
            image::Rgb([x as u8, y as u8, 0])
        }));
        let r = Region {
            roi: Some(Roi {
                x: 10,
                y: 5,
                w: 80,
                h: 41,
            }),
            grid: Grid { cols: 3, rows: 2 },
        };
        let t = r.split(&img).unwrap();
        assert_eq!(t.len(), 6);
        let widths: Vec<u32> = t[..3].iter().map(|t| t.width()).collect();
        assert_eq!(widths.iter().sum::<u32>(), 80);
        assert_eq!(t[0].height() + t[3].height(), 41);
        // Tile (row 1, col 2) starts at x = 10 + 2·80/3 = 63, y = 5 + 41/2 = 25.
        assert_eq!(t[5].to_rgb8().get_pixel(0, 0).0, [63, 25, 0]);
        // A ROI reaching past the frame is clipped; one outside it is an error.
        let past = Region {
            roi: Some(Roi {
                x: 90,
                y: 0,
                w: 50,
                h: 50,
            }),
            grid: Grid::default(),
        };
        assert_eq!(past.split(&img).unwrap()[0].width(), 10);
        let out = Region {
            roi: Some(Roi {
                x: 100,
                y: 0,
                w: 5,
                h: 5,
            }),
            grid: Grid::default(),
        };
        assert!(out
            .split(&img)
            .unwrap_err()
            .to_string()
            .contains("outside the 100×50 frame"));
        let tiny = Region {
            roi: Some(Roi {
                x: 0,
                y: 0,
                w: 2,
                h: 2,
            }),
            grid: Grid { cols: 3, rows: 1 },
        };
        assert!(tiny
            .split(&img)
            .unwrap_err()
            .to_string()
            .contains("too small"));
    }

    #[test]
    fn stitching_puts_each_tile_and_its_heat_in_place() {
        let a = RgbImage::from_pixel(2, 2, image::Rgb([1, 1, 1]));
        let b = RgbImage::from_pixel(2, 2, image::Rgb([2, 2, 2]));
        let (ha, hb) = (vec![0.1f32; 4], vec![0.9f32; 4]);
        let (v, h) = stitch(Grid { cols: 2, rows: 1 }, &[(&a, &ha), (&b, &hb)]);
        assert_eq!(v.dimensions(), (4, 2));
        assert_eq!(v.get_pixel(3, 1).0, [2, 2, 2]);
        assert_eq!(h, vec![0.1, 0.1, 0.9, 0.9, 0.1, 0.1, 0.9, 0.9]);
    }
}
