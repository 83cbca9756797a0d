//! Encoded image bytes → pixels, with the pixels PyTorch pipelines see.
//!
//! Users' pipelines open frames with PIL (`Image.open(p).convert("RGB")`), which decodes JPEG with
//! libjpeg-turbo's defaults: the accurate integer IDCT (`JDCT_ISLOW`) and fancy (triangle)
//! chroma upsampling. The `image` crate's JPEG decoder (zune-jpeg) uses another IDCT, another
//! upsampler and 14-bit colour conversion and has no option to match: on CIFAR-10 test JPEGs
//! (4:2:0, quality ≈ 75) its pixels differ from PIL's in ~22 % of the values by up to 4 levels,
//! which moves HEAT scores by up to 3.6e-3. So JPEG goes through libjpeg-turbo itself (the
//! `turbojpeg` crate, built from the source it bundles), with the same defaults, and every other
//! format through the `image` crate. `tests/fixtures/jpeg/` checks the pixels against PIL's.
//!
//! JPEG colour handling follows PIL: 1-component files are greyscale (`L`), 3-component files
//! RGB, 4-component files (CMYK / YCCK) are read as Adobe-inverted CMYK and converted with
//! PIL's `convert("RGB")` formula.

use crate::error::DecodeError;
use image::{DynamicImage, GrayImage, RgbImage};
use turbojpeg::{Colorspace, Decompressor, Image, PixelFormat};

/// The most pixels × 4 bytes one decoded frame may take (the `image` crate's default
/// allocation limit); a corrupt or hostile header cannot make us allocate more.
const MAX_DECODED_BYTES: usize = 512 << 20;

/// True when `bytes` start like a JPEG file (SOI marker followed by another marker).
pub fn is_jpeg(bytes: &[u8]) -> bool {
    bytes.len() >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF
}

/// Decodes an image of any supported format (JPEG, PNG, BMP; told apart by the bytes). Errors are
/// one line, without the file name (the caller adds it).
pub fn decode_image(bytes: &[u8]) -> Result<DynamicImage, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    if is_jpeg(bytes) {
        return decode_jpeg(bytes);
    }
    image::load_from_memory(bytes).map_err(|e| DecodeError::Image(one_line(&e.to_string())))
}

/// Decodes a JPEG exactly as PIL 10+ (libjpeg-turbo, default settings) does.
///
/// Greyscale files give `ImageLuma8`; colour and CMYK/YCCK files give `ImageRgb8`.
pub fn decode_jpeg(bytes: &[u8]) -> Result<DynamicImage, DecodeError> {
    let err = |e: turbojpeg::Error| DecodeError::Jpeg(one_line(&e.to_string()));
    let mut d = Decompressor::new().map_err(err)?;
    let header = d.read_header(bytes).map_err(err)?;
    let (w, h) = (header.width, header.height);
    if w == 0 || h == 0 {
        return Err(DecodeError::NoPixels);
    }
    if w.saturating_mul(h).saturating_mul(4) > MAX_DECODED_BYTES {
        return Err(DecodeError::TooLarge {
            width: w,
            height: h,
            limit_mib: MAX_DECODED_BYTES >> 20,
        });
    }
    // libjpeg-turbo's defaults, spelled out: fancy upsampling on (the DCT is JDCT_ISLOW unless
    // TJPARAM_FASTDCT is set, which this crate never does).
    d.set_fast_upsample(false).map_err(err)?;
    let format = match header.colorspace {
        Colorspace::Gray => PixelFormat::GRAY,
        Colorspace::CMYK | Colorspace::YCCK => PixelFormat::CMYK,
        _ => PixelFormat::RGB,
    };
    let n = format.size();
    let mut pixels = vec![0u8; w * h * n];
    let out = Image {
        pixels: pixels.as_mut_slice(),
        width: w,
        pitch: w * n,
        height: h,
        format,
    };
    d.decompress(bytes, out).map_err(err)?;
    let (w32, h32) = (w as u32, h as u32);
    let too_big = || DecodeError::Jpeg("image too large".into());
    Ok(match format {
        PixelFormat::GRAY => {
            DynamicImage::ImageLuma8(GrayImage::from_raw(w32, h32, pixels).ok_or_else(too_big)?)
        }
        PixelFormat::CMYK => {
            let rgb = pixels
                .chunks_exact(4)
                .flat_map(pil_inverted_cmyk_to_rgb)
                .collect();
            DynamicImage::ImageRgb8(RgbImage::from_raw(w32, h32, rgb).ok_or_else(too_big)?)
        }
        _ => DynamicImage::ImageRgb8(RgbImage::from_raw(w32, h32, pixels).ok_or_else(too_big)?),
    })
}

/// PIL reads every 4-component JPEG as Adobe-inverted CMYK (raw mode `CMYK;I`: c = 255 − raw)
/// and `convert("RGB")` computes, per channel, `nk − nk·c/255` with `nk = 255 − k`
/// (libImaging/Convert.c `cmyk2rgb`, `MULDIV255(a, b) = ((a·b + 128) >> 8) + a·b + 128) >> 8`).
fn pil_inverted_cmyk_to_rgb(raw: &[u8]) -> [u8; 3] {
    let muldiv255 = |a: i32, b: i32| {
        let t = a * b + 128;
        ((t >> 8) + t) >> 8
    };
    let nk = raw[3] as i32; // 255 − (255 − raw k)
    let ch = |v: u8| (nk - muldiv255(255 - v as i32, nk)).clamp(0, 255) as u8;
    [ch(raw[0]), ch(raw[1]), ch(raw[2])]
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_and_truncated_jpegs_are_errors_not_panics() {
        assert_eq!(decode_image(&[]).unwrap_err(), DecodeError::Empty);
        assert!(decode_image(&[0xFF, 0xD8, 0xFF]).is_err());
        assert!(decode_image(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F']).is_err());
        let mut junk = vec![0xFF, 0xD8, 0xFF, 0xDB];
        junk.extend((0..5000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8));
        let e = decode_image(&junk).unwrap_err().to_string();
        assert!(e.starts_with("JPEG: "), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn pil_cmyk_formula() {
        // Checked against PIL: Image.frombytes("CMYK", (1, 1), bytes([255 - c, …]))…
        // white (no ink): raw (inverted) 255,255,255,255 → 255,255,255.
        assert_eq!(
            pil_inverted_cmyk_to_rgb(&[255, 255, 255, 255]),
            [255, 255, 255]
        );
        // full black ink: raw k = 0 → 0,0,0.
        assert_eq!(pil_inverted_cmyk_to_rgb(&[255, 255, 255, 0]), [0, 0, 0]);
    }
}
