//! Times JPEG decoding (`hood_runtime::decode::decode_jpeg`, libjpeg-turbo) on every `.jpg`
//! under a folder, files read into memory first so only decoding is timed:
//! `cargo run --release --example decode_speed -- DIR [ROUNDS]`. Prints images/s and
//! megapixels/s of the best round. Used for the NASM (SIMD) before/after figures in
//! docs/BENCHMARKS.md.

use std::path::{Path, PathBuf};
use std::time::Instant;

fn jpegs(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            jpegs(&p, out)?;
        } else if p
            .extension()
            .is_some_and(|x| x.eq_ignore_ascii_case("jpg") || x.eq_ignore_ascii_case("jpeg"))
        {
            out.push(p);
        }
    }
    Ok(())
}

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().ok_or("usage: decode_speed DIR [ROUNDS]")?);
    let rounds: usize = match args.next() {
        Some(r) => r.parse().map_err(|e| format!("ROUNDS: {e}"))?,
        None => 5,
    };
    let mut files = Vec::new();
    jpegs(&dir, &mut files).map_err(|e| format!("{}: {e}", dir.display()))?;
    files.sort();
    let data: Vec<Vec<u8>> = files
        .iter()
        .map(|p| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display())))
        .collect::<Result<_, _>>()?;
    if data.is_empty() {
        return Err(format!("{}: no JPEG files", dir.display()));
    }
    let mut best = f64::MAX;
    let mut pixels = 0u64;
    for _ in 0..rounds.max(1) {
        let t = Instant::now();
        pixels = 0;
        for d in &data {
            let img = hood_runtime::decode::decode_jpeg(d).map_err(|e| e.to_string())?;
            pixels += u64::from(img.width()) * u64::from(img.height());
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "{} JPEGs ({:.1} MB), best of {rounds}: {:.3} s, {:.0} images/s, {:.1} Mpixel/s",
        data.len(),
        data.iter().map(|d| d.len()).sum::<usize>() as f64 / 1e6,
        best,
        data.len() as f64 / best,
        pixels as f64 / best / 1e6
    );
    Ok(())
}
