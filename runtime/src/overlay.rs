//! Heatmap pictures a person can read: the model's view of the frame with `max_c |h|` blended in.
//! The colour scale is absolute (0 → transparent, ≥ `full` → fully coloured) so overlays of
//! different frames compare directly; HEAT's heatmap is `|tanh|`, so values lie in [0, 1].

use crate::font;
use image::{Rgb, RgbImage};

/// Piecewise-linear "inferno"-like colour map on [0, 1].
pub fn colormap(t: f32) -> Rgb<u8> {
    const STOPS: [(f32, [f32; 3]); 5] = [
        (0.0, [0.0, 0.0, 4.0]),
        (0.25, [87.0, 16.0, 110.0]),
        (0.5, [188.0, 55.0, 84.0]),
        (0.75, [249.0, 142.0, 9.0]),
        (1.0, [252.0, 255.0, 164.0]),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        1.0
    };
    for w in STOPS.windows(2) {
        let ((t0, c0), (t1, c1)) = (w[0], w[1]);
        if t <= t1 {
            let f = (t - t0) / (t1 - t0);
            return Rgb([0, 1, 2].map(|i| (c0[i] + f * (c1[i] - c0[i])).round() as u8));
        }
    }
    Rgb([252, 255, 164])
}

/// Blends `heat` (`[h, w]`, the view's size) over `view`, upscaled by `scale` (nearest) so a
/// 32×32 frame is visible. Pixel alpha = min(heat / full, 1) · 0.75.
pub fn overlay(view: &RgbImage, heat: &[f32], full: f32, scale: u32) -> RgbImage {
    let (w, h) = view.dimensions();
    let scale = scale.max(1);
    RgbImage::from_fn(w * scale, h * scale, |x, y| {
        let (sx, sy) = (x / scale, y / scale);
        let base = view.get_pixel(sx, sy).0;
        let v = heat.get((sy * w + sx) as usize).copied().unwrap_or(0.0);
        let t = if full > 0.0 { v / full } else { v };
        let c = colormap(t).0;
        let a = t.clamp(0.0, 1.0) * 0.75;
        Rgb([0, 1, 2].map(|i| (base[i] as f32 * (1.0 - a) + c[i] as f32 * a).round() as u8))
    })
}

/// The heatmap alone in the colour map, upscaled by `scale`.
pub fn heatmap_image(heat: &[f32], w: u32, h: u32, full: f32, scale: u32) -> RgbImage {
    let scale = scale.max(1);
    RgbImage::from_fn(w * scale, h * scale, |x, y| {
        let v = heat
            .get(((y / scale) * w + x / scale) as usize)
            .copied()
            .unwrap_or(0.0);
        colormap(if full > 0.0 { v / full } else { v })
    })
}

/// What the band under an annotated overlay reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Caption {
    /// The frame's HEAT score (the mean of the heatmap, so on the colour bar's scale).
    pub score: f32,
    /// The OOD threshold (`score > threshold` ⇒ OOD), if the model or the user has one.
    pub threshold: Option<f32>,
}

/// Text colours of the verdict.
const OOD_INK: Rgb<u8> = Rgb([255, 96, 96]);
const ID_INK: Rgb<u8> = Rgb([128, 224, 128]);
const INK: Rgb<u8> = Rgb([255, 255, 255]);
const BAND: Rgb<u8> = Rgb([24, 24, 24]);
/// Height of the band under the picture, and the smallest width that fits its text.
const BAND_H: u32 = 92;
const MIN_W: u32 = 192;

/// A value for the caption: 4 decimals, or `NO SCORE` when not finite.
fn number(v: f32) -> String {
    if v.is_finite() {
        format!("{v:.4}")
    } else {
        "NO SCORE".into()
    }
}

/// [`overlay`] with a band below it that says why the frame was (or was not) flagged: the
/// colour bar of the heat scale (0 to `full`, labelled), the frame's score on it as a solid
/// white mark and the threshold as a dotted one, then `SCORE x` and the verdict —
/// `OOD  THR t` (red) or `ID  THR t` (green), or `NO THRESHOLD`.
pub fn annotated(
    view: &RgbImage,
    heat: &[f32],
    full: f32,
    scale: u32,
    caption: &Caption,
) -> RgbImage {
    let top = overlay(view, heat, full, scale);
    let (w, h) = top.dimensions();
    let width = w.max(MIN_W);
    let mut img = RgbImage::from_pixel(width, h + BAND_H, BAND);
    for (x, y, p) in top.enumerate_pixels() {
        img.put_pixel(x, y, *p);
    }
    // The colour bar.
    let (x0, x1) = (8, width - 8);
    let bar_w = (x1 - x0) as f32;
    for x in x0..x1 {
        let c = colormap((x - x0) as f32 / bar_w);
        for y in h + 8..h + 20 {
            img.put_pixel(x, y, c);
        }
    }
    let at = |v: f32| {
        let t = if full > 0.0 { v / full } else { v };
        x0 + (t.clamp(0.0, 1.0) * (bar_w - 1.0)).round() as u32
    };
    // A 2-pixel-wide vertical mark across the bar at `v`: every `step`-th row (1: solid).
    let mut mark = |v: f32, step: usize| {
        if v.is_finite() {
            let x = at(v);
            for y in (h + 3..h + 25).step_by(step) {
                for dx in 0..2 {
                    img.put_pixel((x + dx).min(width - 1), y, INK);
                }
            }
        }
    };
    if let Some(t) = caption.threshold {
        mark(t, 2);
    }
    mark(caption.score, 1);
    let full_label = format!("{full}");
    font::draw_text(&mut img, x0, h + 28, "0", 2, INK);
    let fw = font::text_width(&full_label, 2);
    font::draw_text(&mut img, x1.saturating_sub(fw), h + 28, &full_label, 2, INK);
    font::draw_text(
        &mut img,
        x0,
        h + 50,
        &format!("SCORE {}", number(caption.score)),
        2,
        INK,
    );
    let (verdict, ink) = match caption.threshold {
        Some(t) if caption.score > t => (format!("OOD  THR {}", number(t)), OOD_INK),
        Some(t) => (format!("ID  THR {}", number(t)), ID_INK),
        None => ("NO THRESHOLD".to_string(), INK),
    };
    font::draw_text(&mut img, x0, h + 70, &verdict, 2, ink);
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_band_marks_score_and_threshold_and_colours_the_verdict() {
        let view = RgbImage::from_pixel(32, 32, Rgb([90, 90, 90]));
        let heat = vec![0.5f32; 32 * 32];
        let caption = Caption {
            score: 0.5,
            threshold: Some(0.25),
        };
        let img = annotated(&view, &heat, 1.0, 8, &caption);
        assert_eq!(img.dimensions(), (256, 256 + BAND_H));
        // The picture on top is the plain overlay.
        assert_eq!(
            img.get_pixel(10, 10),
            overlay(&view, &heat, 1.0, 8).get_pixel(10, 10)
        );
        // Solid score mark at the middle of the bar, dotted threshold mark at a quarter.
        let (x0, bar_w) = (8u32, 240.0f32);
        let score_x = x0 + (0.5 * (bar_w - 1.0)).round() as u32;
        let thr_x = x0 + (0.25 * (bar_w - 1.0)).round() as u32;
        assert_eq!(img.get_pixel(score_x, 256 + 4).0, INK.0);
        assert_eq!(img.get_pixel(score_x, 256 + 5).0, INK.0);
        assert_eq!(img.get_pixel(thr_x, 256 + 3).0, INK.0);
        assert_ne!(img.get_pixel(thr_x, 256 + 4).0, INK.0);
        // The verdict line is drawn in the OOD colour; an ID frame's in the ID colour.
        let has = |img: &RgbImage, ink: Rgb<u8>| {
            let h = img.height() - BAND_H;
            (h + 70..h + 84).any(|y| (0..img.width()).any(|x| img.get_pixel(x, y).0 == ink.0))
        };
        assert!(has(&img, OOD_INK) && !has(&img, ID_INK));
        let id = annotated(
            &view,
            &heat,
            1.0,
            8,
            &Caption {
                score: 0.1,
                threshold: Some(0.25),
            },
        );
        assert!(has(&id, ID_INK) && !has(&id, OOD_INK));
        // A small picture still gets a band wide enough for the text; no threshold, no verdict colour.
        let small = annotated(
            &view,
            &heat,
            1.0,
            1,
            &Caption {
                score: f32::NAN,
                threshold: None,
            },
        );
        assert_eq!(small.dimensions(), (MIN_W, 32 + BAND_H));
        assert!(!has(&small, OOD_INK) && !has(&small, ID_INK));
    }

    #[test]
    fn zero_heat_keeps_the_frame_and_full_heat_colours_it() {
        let view = RgbImage::from_pixel(2, 2, Rgb([10, 20, 30]));
        let o = overlay(&view, &[0.0, 0.0, 0.0, 1.0], 1.0, 2);
        assert_eq!(o.dimensions(), (4, 4));
        assert_eq!(o.get_pixel(0, 0).0, [10, 20, 30]);
        assert_ne!(o.get_pixel(3, 3).0, [10, 20, 30]);
        assert_eq!(colormap(0.0).0, [0, 0, 4]);
        assert_eq!(colormap(2.0).0, [252, 255, 164]);
    }
}
