//! `tch-train synth`: a tiny deterministic synthetic data set of 32×32 PNGs for CI (which has no
//! data sets): ID classes with class-dependent coloured shapes on a gradient plus noise in
//! DIR/train/<class>/ and DIR/test/<class>/, OOD noise textures in DIR/ood/.

use anyhow::{bail, Context, Result};
use hood_runtime::rng::Lcg;
use image::{Rgb, RgbImage};
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct SynthArgs {
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 3)]
    pub classes: usize,
    /// Training images per class (the test split gets a quarter of this, at least 4).
    #[arg(long, default_value_t = 40)]
    pub per_class: usize,
    /// OOD images.
    #[arg(long, default_value_t = 40)]
    pub ood: usize,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

const SIZE: u32 = 32;

/// An RGB colour from a hue in [0, 1) (full saturation and value).
fn hue(h: f32) -> [f32; 3] {
    let x = h.rem_euclid(1.0) * 6.0;
    let f = x - x.floor();
    match x as u32 {
        0 => [1.0, f, 0.0],
        1 => [1.0 - f, 1.0, 0.0],
        2 => [0.0, 1.0, f],
        3 => [0.0, 1.0 - f, 1.0],
        4 => [f, 0.0, 1.0],
        _ => [1.0, 0.0, 1.0 - f],
    }
}

fn to_u8(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}

/// Class `c` of `n`: a shape (disc, square or stripes, by c mod 3) in the class hue on a dark
/// gradient, random position and size, plus pixel noise.
fn id_image(rng: &mut Lcg, c: usize, n: usize) -> RgbImage {
    let fg = hue(c as f32 / n as f32 + (rng.unit() - 0.5) * 0.05);
    let bg = hue(c as f32 / n as f32 + 0.5);
    let (cx, cy) = (8.0 + rng.unit() * 16.0, 8.0 + rng.unit() * 16.0);
    let r = 5.0 + rng.unit() * 5.0;
    let period = 4.0 + rng.unit() * 3.0;
    RgbImage::from_fn(SIZE, SIZE, |x, y| {
        let (xf, yf) = (x as f32, y as f32);
        let inside = match c % 3 {
            0 => (xf - cx).powi(2) + (yf - cy).powi(2) < r * r,
            1 => (xf - cx).abs() < r && (yf - cy).abs() < r,
            _ => ((yf + cx) / period).floor() as i32 % 2 == 0,
        };
        let g = 0.15 + 0.2 * yf / SIZE as f32;
        let noise = (rng.unit() - 0.5) * 0.12;
        let px: [u8; 3] = std::array::from_fn(|k| {
            let v = if inside { fg[k] * 0.85 } else { bg[k] * g };
            to_u8(v + noise)
        });
        Rgb(px)
    })
}

/// An OOD texture: per-pixel colour noise over a coarse random grid of colours.
fn ood_image(rng: &mut Lcg) -> RgbImage {
    let cell = [2u32, 4, 8][rng.below(3) as usize];
    let grid: Vec<[f32; 3]> = (0..(SIZE / cell) * (SIZE / cell))
        .map(|_| [rng.unit(), rng.unit(), rng.unit()])
        .collect();
    RgbImage::from_fn(SIZE, SIZE, |x, y| {
        let g = grid[((y / cell) * (SIZE / cell) + x / cell) as usize];
        Rgb(std::array::from_fn(|k| to_u8(g[k] * 0.7 + rng.unit() * 0.3)))
    })
}

fn save(img: &RgbImage, path: &Path) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("{}: cannot create", parent.display()))?;
    }
    crate::atomic::write_with(path, |tmp| {
        img.save_with_format(tmp, image::ImageFormat::Png)
            .with_context(|| format!("{}: cannot write", path.display()))
    })
}

pub fn run(a: &SynthArgs) -> Result<()> {
    if a.classes < 2 || a.per_class == 0 || a.ood == 0 {
        bail!("need --classes ≥ 2, --per-class ≥ 1 and --ood ≥ 1");
    }
    let mut rng = Lcg::new(a.seed);
    let n_test = (a.per_class / 4).max(4);
    for c in 0..a.classes {
        let name = format!("class{c}");
        for (split, n) in [("train", a.per_class), ("test", n_test)] {
            for i in 0..n {
                save(
                    &id_image(&mut rng, c, a.classes),
                    &a.out.join(split).join(&name).join(format!("{i:04}.png")),
                )?;
            }
        }
    }
    for i in 0..a.ood {
        save(
            &ood_image(&mut rng),
            &a.out.join("ood").join(format!("{i:04}.png")),
        )?;
    }
    println!(
        "wrote {} classes × ({} train + {n_test} test) and {} OOD images under {}",
        a.classes,
        a.per_class,
        a.ood,
        a.out.display()
    );
    Ok(())
}
