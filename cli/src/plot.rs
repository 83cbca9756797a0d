//! `hood eval --plot`: the ROC curves as a picture a person can read on its own — an SVG with
//! title, axis labels, tick values and a legend naming each OOD set with its AUROC, and (unless
//! the file asked for is `.svg`) a PNG of the same curves beside it for tools that want pixels.

use anyhow::Context;
use image::{Rgb, RgbImage};
use std::fmt::Write as _;
use std::path::Path;

/// One OOD set's ROC curve, ID images positive: (FPR, TPR) points from (0, 0) to (1, 1).
pub struct Curve<'a> {
    pub name: &'a str,
    pub images: usize,
    pub auroc: f64,
    pub points: &'a [(f64, f64)],
}

/// Curve colours, one per OOD set (cycled).
const COLOURS: [[u8; 3]; 6] = [
    [214, 39, 40],
    [31, 119, 180],
    [44, 160, 44],
    [255, 127, 14],
    [148, 103, 189],
    [23, 190, 207],
];

pub fn colour_name(i: usize) -> &'static str {
    ["red", "blue", "green", "orange", "purple", "cyan"][i % 6]
}

/// Draws a line of width `w` from (x0, y0) to (x1, y1), every `dash`-th segment left out when
/// `dash > 0`.
fn line(img: &mut RgbImage, a: (f64, f64), b: (f64, f64), c: [u8; 3], w: i64, dash: usize) {
    let steps = ((b.0 - a.0).abs().max((b.1 - a.1).abs()).ceil() as usize).max(1);
    for k in 0..=steps {
        if dash > 0 && (k / dash) % 2 == 1 {
            continue;
        }
        let t = k as f64 / steps as f64;
        let (x, y) = (
            (a.0 + t * (b.0 - a.0)).round() as i64,
            (a.1 + t * (b.1 - a.1)).round() as i64,
        );
        for dx in 0..w {
            for dy in 0..w {
                let (px, py) = (x + dx - w / 2, y + dy - w / 2);
                if px >= 0 && py >= 0 && (px as u32) < img.width() && (py as u32) < img.height() {
                    img.put_pixel(px as u32, py as u32, Rgb(c));
                }
            }
        }
    }
}

/// A 480×480 ROC plot: white background, axes with ticks at 0, .25, .5, .75, 1, the chance
/// diagonal dashed grey, one curve per OOD set (no text: the SVG carries the labels).
fn png_roc(curves: &[Curve]) -> RgbImage {
    const SIZE: u32 = 480;
    const M: f64 = 40.0;
    let span = SIZE as f64 - 2.0 * M;
    let map = |(fpr, tpr): (f64, f64)| (M + fpr * span, SIZE as f64 - M - tpr * span);
    let mut img = RgbImage::from_pixel(SIZE, SIZE, Rgb([255, 255, 255]));
    let grey = [170, 170, 170];
    let black = [0, 0, 0];
    line(&mut img, map((0.0, 0.0)), map((1.0, 1.0)), grey, 1, 6);
    line(&mut img, map((0.0, 0.0)), map((1.0, 0.0)), black, 2, 0);
    line(&mut img, map((0.0, 0.0)), map((0.0, 1.0)), black, 2, 0);
    line(&mut img, map((0.0, 1.0)), map((1.0, 1.0)), grey, 1, 0);
    line(&mut img, map((1.0, 0.0)), map((1.0, 1.0)), grey, 1, 0);
    for k in 0..=4 {
        let v = k as f64 / 4.0;
        let (x, y0) = map((v, 0.0));
        line(&mut img, (x, y0), (x, y0 + 6.0), black, 2, 0);
        let (x0, y) = map((0.0, v));
        line(&mut img, (x0 - 6.0, y), (x0, y), black, 2, 0);
    }
    for (i, c) in curves.iter().enumerate() {
        for w in c.points.windows(2) {
            line(&mut img, map(w[0]), map(w[1]), COLOURS[i % 6], 2, 0);
        }
    }
    img
}

/// Text for XML: `&`, `<`, `>`, `"` and `'` escaped.
fn xml(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c => o.push(c),
        }
    }
    o
}

/// The ROC plot as a self-contained SVG: title, axes with tick values and labels, the chance
/// diagonal, one curve per set (points closer than half a unit to the last kept one dropped),
/// and a legend with each set's name, image count and AUROC.
pub fn roc_svg(title: &str, curves: &[Curve]) -> String {
    const W: f64 = 780.0;
    let (left, top, span) = (70.0, 56.0, 400.0);
    let map = |(fpr, tpr): (f64, f64)| (left + fpr * span, top + span - tpr * span);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="526" viewBox="0 0 {W} 526" font-family="sans-serif" font-size="13">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15" font-weight="bold">ROC curves (in-distribution images positive)</text><text x="{}" y="40" text-anchor="middle" font-size="12">{}</text>"#,
        left + span / 2.0,
        left + span / 2.0,
        xml(title)
    );
    // Grid, ticks and tick values.
    for k in 0..=4 {
        let v = k as f64 / 4.0;
        let (x, y0) = map((v, 0.0));
        let (x0, y) = map((0.0, v));
        let _ = writeln!(
            s,
            r##"<line x1="{x}" y1="{top}" x2="{x}" y2="{y0}" stroke="#e0e0e0"/><line x1="{x0}" y1="{y}" x2="{}" y2="{y}" stroke="#e0e0e0"/>"##,
            left + span
        );
        let _ = writeln!(
            s,
            r#"<text x="{x}" y="{}" text-anchor="middle">{v:.2}</text><text x="{}" y="{}" text-anchor="end">{v:.2}</text>"#,
            y0 + 18.0,
            x0 - 8.0,
            y + 4.0
        );
    }
    let (ox, oy) = map((0.0, 0.0));
    let _ = writeln!(
        s,
        r#"<rect x="{left}" y="{top}" width="{span}" height="{span}" fill="none" stroke="black"/>"#
    );
    let (ex, ey) = map((1.0, 1.0));
    let _ = writeln!(
        s,
        r##"<line x1="{ox}" y1="{oy}" x2="{ex}" y2="{ey}" stroke="#999" stroke-dasharray="6 6"/>"##
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">false positive rate (OOD images scored as in-distribution)</text>"#,
        left + span / 2.0,
        oy + 40.0
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate({} {}) rotate(-90)" text-anchor="middle">true positive rate (ID images kept)</text>"#,
        left - 48.0,
        top + span / 2.0
    );
    for (i, c) in curves.iter().enumerate() {
        let [r, g, b] = COLOURS[i % 6];
        let mut pts = String::new();
        let mut last: Option<(f64, f64)> = None;
        for (j, &p) in c.points.iter().enumerate() {
            let (x, y) = map(p);
            let keep = match last {
                None => true,
                Some((lx, ly)) => {
                    (x - lx).abs() >= 0.5 || (y - ly).abs() >= 0.5 || j + 1 == c.points.len()
                }
            };
            if keep {
                let _ = write!(pts, "{x:.1},{y:.1} ");
                last = Some((x, y));
            }
        }
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="rgb({r},{g},{b})" stroke-width="2"/>"#,
            pts.trim_end()
        );
        // Legend entry, right of the plot.
        let ly = top + 20.0 + 40.0 * i as f64;
        let lx = left + span + 16.0;
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="rgb({r},{g},{b})" stroke-width="3"/><text x="{}" y="{}">{}</text><text x="{}" y="{}" font-size="12">AUROC {:.2} % · {} images</text>"#,
            lx + 22.0,
            lx + 28.0,
            ly + 4.0,
            xml(c.name),
            lx + 28.0,
            ly + 20.0,
            100.0 * c.auroc,
            c.images
        );
    }
    s.push_str("</svg>\n");
    s
}

/// Writes the plot: an SVG at `path` if it ends in `.svg`, else a PNG at `path` and the SVG
/// beside it (same name, `.svg`). Both atomically.
pub fn write_roc(path: &Path, title: &str, curves: &[Curve]) -> anyhow::Result<()> {
    let is_svg = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("svg"));
    let svg_path = if is_svg {
        path.to_path_buf()
    } else {
        hood_runtime::atomic::write_png(path, &png_roc(curves))
            .with_context(|| format!("{}: cannot write the ROC plot", path.display()))?;
        path.with_extension("svg")
    };
    hood_runtime::atomic::write_file(&svg_path, roc_svg(title, curves).as_bytes())
        .with_context(|| format!("{}: cannot write the ROC plot", svg_path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_svg_names_every_set_and_escapes_text() {
        let pts = [(0.0, 0.0), (0.1, 0.6), (0.1000001, 0.6), (1.0, 1.0)];
        let curves = [
            Curve {
                name: "DTD<10>",
                images: 50,
                auroc: 0.8912,
                points: &pts,
            },
            Curve {
                name: "noise & co",
                images: 7,
                auroc: 0.5,
                points: &pts,
            },
        ];
        let svg = roc_svg("m on cpu: ID \"x\" (9 images)", &curves);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        for want in [
            "DTD&lt;10&gt;",
            "noise &amp; co",
            "AUROC 89.12 % · 50 images",
            "AUROC 50.00 % · 7 images",
            "&quot;x&quot;",
            "false positive rate",
            "true positive rate",
            ">0.25<",
        ] {
            assert!(svg.contains(want), "missing {want}");
        }
        assert_eq!(svg.matches("<polyline").count(), 2);
        // The near-duplicate point is dropped, the last one kept: 3 points per curve.
        let first = svg.split("<polyline points=\"").nth(1).unwrap();
        assert_eq!(first.split('"').next().unwrap().split(' ').count(), 3);
        assert!(!svg.contains("DTD<10>"));
    }
}
