//! Heatmap pictures a person can read: the model's view of the frame with `max_c |h|` blended in.
//! The colour scale is absolute (0 → transparent, ≥ `full` → fully coloured) so overlays of
//! different frames compare directly; HEAT's heatmap is `|tanh|`, so values lie in [0, 1].

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

#[cfg(test)]
mod tests {
    use super::*;

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
