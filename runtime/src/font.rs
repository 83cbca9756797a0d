//! A 5×7 bitmap font for the few words and numbers hood writes into PNGs (overlay captions):
//! digits, `.`, `:`, space and the capitals C D E H I L N O R S T. Our own glyphs, drawn for this
//! file. Characters outside the set are drawn as a hollow box, so a missing glyph is visible
//! rather than silently dropped.

use image::{Rgb, RgbImage};

/// Glyph width and height in font pixels; one column of space between glyphs.
pub const GLYPH_W: u32 = 5;
pub const GLYPH_H: u32 = 7;

/// Rows top to bottom, bit 4 = leftmost column.
fn glyph(c: char) -> [u8; 7] {
    match c {
        '0' => [0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e],
        '1' => [0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e],
        '2' => [0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f],
        '3' => [0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e],
        '4' => [0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02],
        '5' => [0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e],
        '6' => [0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e],
        '7' => [0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e],
        '9' => [0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x0c],
        ':' => [0x00, 0x0c, 0x0c, 0x00, 0x0c, 0x0c, 0x00],
        ' ' => [0x00; 7],
        'C' => [0x0e, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0e],
        'D' => [0x1c, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1c],
        'E' => [0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x1f],
        'H' => [0x11, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11],
        'I' => [0x0e, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1f],
        'N' => [0x11, 0x19, 0x15, 0x13, 0x11, 0x11, 0x11],
        'O' => [0x0e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e],
        'R' => [0x1e, 0x11, 0x11, 0x1e, 0x14, 0x12, 0x11],
        'S' => [0x0f, 0x10, 0x10, 0x0e, 0x01, 0x01, 0x1e],
        'T' => [0x1f, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        _ => [0x1f, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1f],
    }
}

/// Whether `c` has its own glyph.
pub fn has_glyph(c: char) -> bool {
    glyph(c) != glyph('\u{0}')
}

/// Width in image pixels of `text` drawn at `scale` image pixels per font pixel.
pub fn text_width(text: &str, scale: u32) -> u32 {
    let n = text.chars().count() as u32;
    (n * (GLYPH_W + 1)).saturating_sub(1) * scale
}

/// Draws `text` with its top-left corner at (`x`, `y`), `scale` image pixels per font pixel;
/// pixels outside the image are skipped.
pub fn draw_text(img: &mut RgbImage, x: u32, y: u32, text: &str, scale: u32, colour: Rgb<u8>) {
    let scale = scale.max(1);
    for (i, c) in text.chars().enumerate() {
        let gx = x + i as u32 * (GLYPH_W + 1) * scale;
        for (row, bits) in glyph(c).iter().enumerate() {
            for col in 0..GLYPH_W {
                if bits & (0x10 >> col) == 0 {
                    continue;
                }
                for dy in 0..scale {
                    for dx in 0..scale {
                        let (px, py) = (gx + col * scale + dx, y + row as u32 * scale + dy);
                        if px < img.width() && py < img.height() {
                            img.put_pixel(px, py, colour);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SET: &str = "0123456789.: CDEHILNORST";

    #[test]
    fn every_glyph_is_distinct_and_fits_five_columns() {
        let glyphs: Vec<[u8; 7]> = SET.chars().map(glyph).collect();
        for (i, a) in glyphs.iter().enumerate() {
            assert!(
                a.iter().all(|r| *r < 0x20),
                "{:?} is wider than 5",
                SET.chars().nth(i)
            );
            for b in &glyphs[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert!(SET.chars().all(has_glyph));
        assert!(!has_glyph('x') && !has_glyph('?'));
    }

    #[test]
    fn drawing_puts_the_glyph_bits_at_the_scale_given() {
        let mut img = RgbImage::new(40, 20);
        let ink = Rgb([255, 255, 255]);
        draw_text(&mut img, 1, 2, "1.", 2, ink);
        // '1' row 0 = 0x04: only column 2, i.e. pixels x = 1 + 4..6, y = 2..4.
        for x in 0..12 {
            let on = img.get_pixel(x, 2).0 == ink.0;
            assert_eq!(on, (5..7).contains(&x), "x = {x}");
        }
        // '.' starts one glyph (6 font pixels = 12 image pixels) later; its dot is rows 5–6.
        assert_eq!(img.get_pixel(1 + 12 + 2, 2 + 10).0, ink.0);
        assert_eq!(text_width("1.", 2), 22);
        // Text running off the image is clipped, not a panic.
        draw_text(&mut img, 35, 15, "88", 3, ink);
    }
}
