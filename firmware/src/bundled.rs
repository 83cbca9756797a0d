//! The embedded default: the bundled model and a bundled feed built from `samples/`, compiled
//! into the binary so `hood-watch` with no arguments works anywhere.
//!
//! The model is `models/heat-wrn40-2-cifar10.hood`: HEAT on a WideResNet-40-2 trained on
//! CIFAR-10, fp16, with its threshold (95 % TPR on 5000 held-out CIFAR-10 training images) stored
//! in its metadata; the default run uses that threshold. The feed is 8 CIFAR-10 test frames (in
//! distribution), 6 out-of-distribution frames (DTD textures, Tiny ImageNet photos, a
//! Fashion-MNIST item), then the 8 CIFAR-10 frames again: with the default debouncing the alert
//! is raised on the 3rd OOD frame and cleared on the 5th ID frame after the segment. Every frame,
//! where it comes from and its score with this model are listed in `samples/README.md`.

use crate::daemon::Engine;
use std::sync::Arc;

/// Name the bundled model goes by in logs and events.
pub const DEMO_MODEL_NAME: &str = "bundled:models/heat-wrn40-2-cifar10.hood";
/// The bundled model's bytes.
pub static DEMO_MODEL: &[u8] = include_bytes!("../../models/heat-wrn40-2-cifar10.hood");

/// CIFAR-10 test frames, one per class for 8 classes (in distribution).
pub const ID_FRAMES: [(&str, &[u8]); 8] = [
    (
        "cifar10-airplane-0000.jpg",
        include_bytes!("../../samples/cifar10-airplane-0000.jpg"),
    ),
    (
        "cifar10-automobile-0001.jpg",
        include_bytes!("../../samples/cifar10-automobile-0001.jpg"),
    ),
    (
        "cifar10-bird-0003.jpg",
        include_bytes!("../../samples/cifar10-bird-0003.jpg"),
    ),
    (
        "cifar10-cat-0000.jpg",
        include_bytes!("../../samples/cifar10-cat-0000.jpg"),
    ),
    (
        "cifar10-dog-0000.jpg",
        include_bytes!("../../samples/cifar10-dog-0000.jpg"),
    ),
    (
        "cifar10-horse-0000.jpg",
        include_bytes!("../../samples/cifar10-horse-0000.jpg"),
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
/// Out-of-distribution frames: DTD textures (128 px and larger, so they also exercise resize +
/// centre crop), Tiny ImageNet 32×32 photos, a Fashion-MNIST item (32×32 PNG).
pub const OOD_FRAMES: [(&str, &[u8]); 6] = [
    (
        "dtd-banded.jpg",
        include_bytes!("../../samples/dtd-banded.jpg"),
    ),
    (
        "tinyimagenet-seashore.jpg",
        include_bytes!("../../samples/tinyimagenet-seashore.jpg"),
    ),
    (
        "dtd-cracked.jpg",
        include_bytes!("../../samples/dtd-cracked.jpg"),
    ),
    (
        "fmnist-trouser.png",
        include_bytes!("../../samples/fmnist-trouser.png"),
    ),
    (
        "dtd-chequered.jpg",
        include_bytes!("../../samples/dtd-chequered.jpg"),
    ),
    (
        "tinyimagenet-plaque.jpg",
        include_bytes!("../../samples/tinyimagenet-plaque.jpg"),
    ),
];

/// How the bundled feed is described in logs.
pub const FEED_DESCRIPTION: &str = "bundled feed: 8 CIFAR-10 frames (ID), 6 OOD frames (DTD, Tiny ImageNet, Fashion-MNIST), 8 CIFAR-10 frames (ID)";

/// Which segment of the bundled feed a frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    Id,
    Ood,
}

fn segment(name: &str, frames: &[(&str, &'static [u8])]) -> Vec<(String, Arc<[u8]>)> {
    frames
        .iter()
        .map(|(n, b)| (format!("bundled:{name}/{n}"), Arc::from(*b)))
        .collect()
}

/// The bundled feed: (label, encoded frame, segment), in order: ID, OOD, ID.
pub fn feed() -> Vec<(String, Arc<[u8]>, Segment)> {
    let tag = |v: Vec<(String, Arc<[u8]>)>, s: Segment| v.into_iter().map(move |(l, b)| (l, b, s));
    tag(segment("id-1", &ID_FRAMES), Segment::Id)
        .chain(tag(segment("ood", &OOD_FRAMES), Segment::Ood))
        .chain(tag(segment("id-2", &ID_FRAMES), Segment::Id))
        .collect()
}

/// Why the bundled frames could not be scored.
#[derive(Debug, thiserror::Error)]
pub enum BundledError {
    /// Bundled frame `name` does not decode (a broken build).
    #[error("bundled {name}: {source}")]
    Decode {
        name: String,
        #[source]
        source: hood_runtime::DecodeError,
    },
    #[error(transparent)]
    Detector(#[from] hood_runtime::HoodError),
}

/// Scores of the distinct bundled ID and OOD frames with `engine`.
pub fn segment_scores(engine: &mut dyn Engine) -> Result<(Vec<f32>, Vec<f32>), BundledError> {
    let mut score = |frames: &[(&str, &[u8])]| -> Result<Vec<f32>, BundledError> {
        frames
            .iter()
            .map(|(n, b)| {
                let img = hood_runtime::decode::decode_image(b).map_err(|source| {
                    BundledError::Decode {
                        name: n.to_string(),
                        source,
                    }
                })?;
                let p = engine.prepare(&img, n)?;
                Ok(engine.detect(&p.tensor)?.score)
            })
            .collect()
    };
    Ok((score(&ID_FRAMES)?, score(&OOD_FRAMES)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_is_id_then_ood_then_id() {
        let f = feed();
        let (id, ood) = (ID_FRAMES.len(), OOD_FRAMES.len());
        assert_eq!(f.len(), 2 * id + ood);
        let segs: Vec<_> = f.iter().map(|x| x.2).collect();
        assert!(segs[..id].iter().all(|&s| s == Segment::Id));
        assert!(segs[id..id + ood].iter().all(|&s| s == Segment::Ood));
        assert!(segs[id + ood..].iter().all(|&s| s == Segment::Id));
        // Long enough for the default debouncing: 3 of 5 raise inside the OOD segment, 5
        // consecutive ID frames clear inside the last segment.
        assert!(ood >= 5 && id >= 5);
        for (l, b, _) in &f {
            assert!(hood_runtime::decode::decode_image(b).is_ok(), "{l}");
        }
    }

    #[test]
    fn bundled_model_is_calibrated() {
        let m = hood_runtime::Model::from_bytes(DEMO_MODEL.to_vec(), DEMO_MODEL_NAME).unwrap();
        let t = m
            .meta
            .threshold
            .as_ref()
            .expect("bundled model has a threshold");
        // TPR 0.95 on 5000 held-out CIFAR-10 training images (`hood info` shows how).
        assert!((t.value - 0.318_150_43).abs() < 1e-6, "{}", t.value);
        assert_eq!(m.meta.classes.count, 10);
    }
}
