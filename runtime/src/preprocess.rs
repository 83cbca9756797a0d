//! Images → normalised model input, with torchvision's semantics:
//! `Resize(min(H, W))` (shorter side to the model size, longer side `int(size·long/short)`),
//! `CenterCrop((H, W))` (offsets `round((h − H)/2)` with Python's round-half-to-even),
//! `ToTensor()` (÷255) and `Normalize(mean, std)`.
//!
//! An image that already has the model's size is used as is: no resampling, so 32×32 CIFAR
//! frames give exactly the tensor PyTorch computes. For other sizes the resize uses a triangle
//! (bilinear, antialiased when shrinking) filter like PIL's `BILINEAR`; it is close to, not
//! bit-identical with, PIL.

use crate::error::{HoodError, Result};
use crate::meta::InputSpec;
use image::{imageops::FilterType, DynamicImage, RgbImage};

/// A frame prepared for the model: the normalised `[C, H, W]` tensor and the RGB view the model
/// actually saw (model size; used for heatmap overlays).
#[derive(Debug, Clone)]
pub struct Prepared {
    pub tensor: Vec<f32>,
    pub view: RgbImage,
}

/// Python's `round()` on a non-negative half-integer grid: half to even.
fn round_half_even(x: f64) -> u32 {
    let f = x.floor();
    let r = if (x - f - 0.5).abs() < 1e-12 {
        if (f as u64).is_multiple_of(2) {
            f
        } else {
            f + 1.0
        }
    } else {
        x.round()
    };
    r as u32
}

/// Size after torchvision `Resize(size)` with an int size: shorter side → `size`.
pub fn resized_dims(w: u32, h: u32, size: u32) -> (u32, u32) {
    if w <= h {
        (size, ((size as u64 * h as u64) / w as u64) as u32)
    } else {
        (((size as u64 * w as u64) / h as u64) as u32, size)
    }
}

/// Resize + centre crop to the model's size (no-op when already that size).
pub fn fit(img: &RgbImage, spec: &InputSpec) -> RgbImage {
    let (tw, th) = (spec.width, spec.height);
    if img.width() == tw && img.height() == th {
        return img.clone();
    }
    let (rw, rh) = resized_dims(img.width(), img.height(), tw.min(th));
    let resized = image::imageops::resize(img, rw.max(tw), rh.max(th), FilterType::Triangle);
    let left = round_half_even((resized.width() - tw) as f64 / 2.0);
    let top = round_half_even((resized.height() - th) as f64 / 2.0);
    image::imageops::crop_imm(&resized, left, top, tw, th).to_image()
}

/// Prepares one decoded image. `what` names it in errors (usually the file path).
pub fn prepare(img: &DynamicImage, spec: &InputSpec, what: &str) -> Result<Prepared> {
    if img.width() == 0 || img.height() == 0 {
        return Err(HoodError::input(what, "image has no pixels"));
    }
    let channels = spec.channels as usize;
    if channels != 3 && channels != 1 {
        return Err(HoodError::input(
            what,
            format!("model expects {channels} channels; only 1 or 3 are supported for images"),
        ));
    }
    let view = fit(&img.to_rgb8(), spec);
    let (w, h) = (view.width() as usize, view.height() as usize);
    let mut tensor = vec![0f32; channels * h * w];
    for (x, y, p) in view.enumerate_pixels() {
        let (x, y) = (x as usize, y as usize);
        if channels == 3 {
            for c in 0..3 {
                tensor[(c * h + y) * w + x] = (p.0[c] as f32 / 255.0 - spec.mean[c]) / spec.std[c];
            }
        } else {
            // PIL's convert("L"): ITU-R 601-2 luma, L = (299 R + 587 G + 114 B) / 1000.
            let [r, g, b] = p.0.map(|v| v as u32);
            let l = (r * 299 + g * 587 + b * 114 + 500) / 1000;
            tensor[y * w + x] = (l as f32 / 255.0 - spec.mean[0]) / spec.std[0];
        }
    }
    Ok(Prepared { tensor, view })
}

/// Decodes an image file (format from its bytes; JPEG exactly like PIL) and prepares it.
pub fn prepare_file(path: &std::path::Path, spec: &InputSpec) -> Result<Prepared> {
    let what = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| HoodError::io(path, e))?;
    if meta.is_dir() {
        return Err(HoodError::input(what, "is a directory, not an image"));
    }
    if meta.len() == 0 {
        return Err(HoodError::input(what, "empty file, not an image"));
    }
    let bytes = std::fs::read(path).map_err(|e| HoodError::io(path, e))?;
    // JPEG through libjpeg-turbo so the pixels equal PIL's (see `decode`); errors are one line.
    let img = crate::decode::decode_image(&bytes)
        .map_err(|msg| HoodError::input(&what, format!("cannot decode image: {msg}")))?;
    prepare(&img, spec, &what)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(h: u32, w: u32) -> InputSpec {
        InputSpec {
            height: h,
            width: w,
            channels: 3,
            mean: vec![0.5; 3],
            std: vec![0.5; 3],
        }
    }

    #[test]
    fn same_size_is_not_resampled_and_normalised_like_torch() {
        let img = RgbImage::from_fn(32, 32, |x, y| image::Rgb([x as u8 * 7, y as u8 * 5, 255]));
        let p = prepare(&DynamicImage::ImageRgb8(img.clone()), &spec(32, 32), "t").unwrap();
        assert_eq!(p.view, img);
        // torch: (ToTensor()(img) - 0.5) / 0.5 at [0, 3, 4] = (4*7/255 - 0.5)/0.5
        let want = (28.0f32 / 255.0 - 0.5) / 0.5;
        assert_eq!(p.tensor[3 * 32 + 4], want);
        assert_eq!(p.tensor[2 * 1024 + 5], 1.0);
    }

    #[test]
    fn torchvision_resize_dims_and_crop_offsets() {
        assert_eq!(resized_dims(128, 170, 32), (32, 42));
        assert_eq!(resized_dims(170, 128, 32), (42, 32));
        assert_eq!(resized_dims(100, 100, 32), (32, 32));
        // CenterCrop: round((42-32)/2)=5; round(0.5)=0, round(1.5)=2, round(2.5)=2 (Python).
        assert_eq!(round_half_even(5.0), 5);
        assert_eq!(round_half_even(0.5), 0);
        assert_eq!(round_half_even(1.5), 2);
        assert_eq!(round_half_even(2.5), 2);
        let big = RgbImage::from_fn(128, 170, |x, _| image::Rgb([(x * 2) as u8, 0, 0]));
        let v = fit(&big, &spec(32, 32));
        assert_eq!((v.width(), v.height()), (32, 32));
    }

    #[test]
    fn grey_images_are_replicated_to_rgb() {
        let g = image::GrayImage::from_pixel(32, 32, image::Luma([51]));
        let p = prepare(&DynamicImage::ImageLuma8(g), &spec(32, 32), "g").unwrap();
        let v = (51.0f32 / 255.0 - 0.5) / 0.5;
        assert!(p.tensor.iter().all(|&x| x == v));
    }
}
