//! One frame → its tiles, preprocessed into one batch; a batch's detections → the frame's
//! verdict (the worst tile). Shared by the watch loop and site calibration, so a calibrated
//! threshold is measured exactly the way frames are later judged.

use crate::daemon::Engine;
use crate::source::{decode, FrameData};
use crate::tiling::Region;
use hood_runtime::preprocess::Prepared;
use hood_runtime::Detection;

/// A frame's tiles (one, without `--tiles`), preprocessed.
pub struct Batch {
    pub prepared: Vec<Prepared>,
    joined: Option<Vec<f32>>,
}

impl Batch {
    /// Tiles in the batch.
    pub fn len(&self) -> usize {
        self.prepared.len()
    }

    pub fn is_empty(&self) -> bool {
        self.prepared.is_empty()
    }

    /// The batch `[n, C, H, W]`.
    pub fn tensor(&self) -> &[f32] {
        match &self.joined {
            Some(j) => j,
            None => self.prepared.first().map_or(&[], |p| &p.tensor),
        }
    }
}

/// Decodes a frame, crops and tiles it per `region` and preprocesses every tile for `engine`.
/// The error is one line (undecodable data, a ROI outside the frame, a bad image).
pub fn prepare_frame(
    engine: &dyn Engine,
    region: &Region,
    data: &FrameData,
    label: &str,
) -> Result<Batch, String> {
    let img = decode(data).map_err(|e| format!("cannot decode: {e}"))?;
    let tiles = region.split(&img)?;
    let n = tiles.len();
    let prepared = tiles
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let what = if n == 1 {
                label.to_string()
            } else {
                format!("{label} tile {i}")
            };
            engine.prepare(t, &what).map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<Prepared>, String>>()?;
    let joined = (n > 1).then(|| {
        prepared
            .iter()
            .flat_map(|p| p.tensor.iter().copied())
            .collect()
    });
    Ok(Batch { prepared, joined })
}

/// The index of the worst (highest-scoring) detection; 0 for an empty slice.
pub fn worst(dets: &[Detection]) -> usize {
    (0..dets.len())
        .max_by(|&a, &b| dets[a].score.total_cmp(&dets[b].score))
        .unwrap_or(0)
}
