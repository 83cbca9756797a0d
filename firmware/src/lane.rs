//! One watched camera inside the loop: its source, threshold, debouncing, ROI/tiles, alert pin,
//! overlays and counters. `hood-watch` with the single-camera flags has one lane; a config with
//! `[[camera]]` tables has one per table, all scored by one detector in one batch per tick.

use crate::alert::AlertOutput;
use crate::decision::{Debounce, Debouncer};
use crate::events::OverlayWriter;
use crate::source::FrameSource;
use crate::stats::Stats;
use crate::tiling::Region;
use serde_json::{json, Value};

/// A camera's configuration and run state.
pub struct Lane {
    /// The camera's name (events, MQTT topics, metrics, the page).
    pub name: String,
    /// `None` once the source moved to its reader thread (several cameras).
    pub source: Option<Box<dyn FrameSource>>,
    /// The source's description (kept when the source moved).
    pub source_name: String,
    pub threshold: f32,
    /// The threshold is the model's calibrated one (follows a reloaded model's).
    pub threshold_from_model: bool,
    pub debounce: Debounce,
    pub region: Region,
    pub pin: Box<dyn AlertOutput>,
    pub overlays: Option<OverlayWriter>,
    pub deb: Debouncer,
    pub stats: Stats,
    /// Frames taken from this camera so far (scored or not): the `frame` index of its events.
    pub taken: u64,
    /// The source watchdog found the source not answering; cleared by its next answer.
    pub stalled: bool,
}

impl Lane {
    pub fn new(
        name: &str,
        source: Box<dyn FrameSource>,
        threshold: f32,
        debounce: Debounce,
        region: Region,
        pin: Box<dyn AlertOutput>,
        overlays: Option<OverlayWriter>,
    ) -> Lane {
        Lane {
            name: name.to_string(),
            source_name: source.describe(),
            source: Some(source),
            threshold,
            threshold_from_model: false,
            debounce,
            region,
            pin,
            overlays,
            deb: Debouncer::new(debounce),
            stats: Stats::default(),
            taken: 0,
            stalled: false,
        }
    }

    /// This camera's part of the `start` event.
    pub fn describe(&self) -> Value {
        json!({
            "camera": self.name,
            "threshold": self.threshold,
            "debounce": self.debounce,
            "source": self.source_name,
            "pin": self.pin.describe(),
            "roi": self.region.roi.map(|r| [r.x, r.y, r.w, r.h]),
            "tiles": [self.region.grid.cols, self.region.grid.rows],
        })
    }
}

/// A camera name that [`check_name`] refuses (the name as given).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("camera name {0:?}: use 1 to 64 letters, digits, '_' or '-'")]
pub struct CameraNameError(pub String);

/// A camera name usable as an MQTT topic level, a metrics label and a folder name: 1–64 of
/// `A–Z a–z 0–9 _ -`.
pub fn check_name(name: &str) -> Result<(), CameraNameError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(CameraNameError(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn camera_names() {
        assert!(super::check_name("front-door_2").is_ok());
        for bad in ["", "a/b", "a b", "+", "é"] {
            assert!(super::check_name(bad).is_err(), "{bad:?}");
        }
    }
}
