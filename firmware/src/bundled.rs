//! The embedded default: the bundled demo model and a bundled feed built from `samples/`
//! (CIFAR-10 frames = in distribution, DTD textures = out of distribution, then CIFAR-10 again),
//! compiled into the binary so `hood-watch` with no arguments works anywhere.
//!
//! The demo model (`models/demo-untrained.hood`) has pseudo-random weights and no calibrated
//! threshold, so the default run uses a **demo threshold**: the highest score of the model on the
//! feed's in-distribution frames plus [`DEMO_MARGIN`] of it. That is honest about what an
//! untrained model can do — with it the OOD segment is not separated. When the trained, calibrated
//! model replaces [`DEMO_MODEL`] (same file name or a new `include_bytes!`), its stored threshold
//! is used and no demo threshold is derived.

use crate::daemon::Engine;
use std::sync::Arc;

/// Name the bundled model goes by in logs and events.
pub const DEMO_MODEL_NAME: &str = "bundled:models/demo-untrained.hood";
/// The bundled model's bytes.
pub static DEMO_MODEL: &[u8] = include_bytes!("../../models/demo-untrained.hood");

const ID_FRAMES: [(&str, &[u8]); 4] = [
    (
        "cifar10-airplane-0000.jpg",
        include_bytes!("../../samples/cifar10-airplane-0000.jpg"),
    ),
    (
        "cifar10-cat-0000.jpg",
        include_bytes!("../../samples/cifar10-cat-0000.jpg"),
    ),
    (
        "cifar10-ship-0000.jpg",
        include_bytes!("../../samples/cifar10-ship-0000.jpg"),
    ),
    (
        "cifar10-truck-0000.jpg",
        include_bytes!("../../samples/cifar10-truck-0000.jpg"),
    ),
];
const OOD_FRAMES: [(&str, &[u8]); 2] = [
    (
        "dtd-banded.jpg",
        include_bytes!("../../samples/dtd-banded.jpg"),
    ),
    (
        "dtd-cracked.jpg",
        include_bytes!("../../samples/dtd-cracked.jpg"),
    ),
];

/// Passes over the ID frames per ID segment (4 frames each) and over the OOD frames (2 each):
/// 8 ID, 6 OOD, 8 ID frames — long enough for the default debouncing (3 of 5 raise, 5 clear).
pub const ID_PASSES: usize = 2;
pub const OOD_PASSES: usize = 3;

/// Relative margin above the highest in-distribution score for the demo threshold.
pub const DEMO_MARGIN: f32 = 0.05;

/// Which segment of the bundled feed a frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    Id,
    Ood,
}

fn segment(
    name: &str,
    frames: &[(&str, &'static [u8])],
    passes: usize,
) -> Vec<(String, Arc<[u8]>)> {
    (0..passes)
        .flat_map(|_| frames.iter())
        .map(|(n, b)| (format!("bundled:{name}/{n}"), Arc::from(*b)))
        .collect()
}

/// The bundled feed: (label, encoded frame, segment), in order.
pub fn feed() -> Vec<(String, Arc<[u8]>, Segment)> {
    let tag = |v: Vec<(String, Arc<[u8]>)>, s: Segment| v.into_iter().map(move |(l, b)| (l, b, s));
    tag(segment("id-1", &ID_FRAMES, ID_PASSES), Segment::Id)
        .chain(tag(segment("ood", &OOD_FRAMES, OOD_PASSES), Segment::Ood))
        .chain(tag(segment("id-2", &ID_FRAMES, ID_PASSES), Segment::Id))
        .collect()
}

/// Scores of the distinct bundled ID and OOD frames with `engine`.
pub fn segment_scores(engine: &mut dyn Engine) -> Result<(Vec<f32>, Vec<f32>), String> {
    let mut score = |frames: &[(&str, &[u8])]| -> Result<Vec<f32>, String> {
        frames
            .iter()
            .map(|(n, b)| {
                let img = hood_runtime::decode::decode_image(b)
                    .map_err(|e| format!("bundled {n}: {e}"))?;
                let p = engine.prepare(&img, n).map_err(|e| e.to_string())?;
                Ok(engine.detect(&p.tensor).map_err(|e| e.to_string())?.score)
            })
            .collect()
    };
    Ok((score(&ID_FRAMES)?, score(&OOD_FRAMES)?))
}

/// The demo threshold from ID scores: `max + DEMO_MARGIN · |max|`.
pub fn demo_threshold(id_scores: &[f32]) -> f32 {
    let max = id_scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    max + DEMO_MARGIN * max.abs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_is_id_then_ood_then_id() {
        let f = feed();
        assert_eq!(f.len(), 2 * 4 * ID_PASSES + 2 * OOD_PASSES);
        let segs: Vec<_> = f.iter().map(|x| x.2).collect();
        let id = 4 * ID_PASSES;
        assert!(segs[..id].iter().all(|&s| s == Segment::Id));
        assert!(segs[id..id + 2 * OOD_PASSES]
            .iter()
            .all(|&s| s == Segment::Ood));
        assert!(segs[id + 2 * OOD_PASSES..]
            .iter()
            .all(|&s| s == Segment::Id));
        for (l, b, _) in &f {
            assert!(hood_runtime::decode::decode_image(b).is_ok(), "{l}");
        }
    }

    #[test]
    fn demo_threshold_is_above_every_id_score() {
        let t = demo_threshold(&[0.03, 0.045, 0.04]);
        assert!(t > 0.045 && (t - 0.045 * 1.05).abs() < 1e-7);
    }
}
