//! One frame → its tiles, preprocessed into one batch; a batch's detections → the frame's
//! verdict (the worst tile). Shared by the watch loop and site calibration, so a calibrated
//! threshold is measured exactly the way frames are later judged.

use crate::daemon::Engine;
use crate::source::{decode, FrameData, FrameError};
use crate::tiling::{Region, TilingError};
use hood_runtime::preprocess::Prepared;
use hood_runtime::{Detection, HoodError};

/// Why a frame cannot be scored (it is skipped): undecodable data, a ROI outside the frame, an
/// image the detector's preprocessing refuses.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("cannot decode: {0}")]
    Decode(#[source] FrameError),
    #[error(transparent)]
    Region(#[from] TilingError),
    #[error(transparent)]
    Preprocess(#[from] HoodError),
}

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
) -> Result<Batch, PrepareError> {
    let img = decode(data).map_err(PrepareError::Decode)?;
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
            engine.prepare(t, &what)
        })
        .collect::<Result<Vec<Prepared>, HoodError>>()?;
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
