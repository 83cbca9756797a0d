//! Detector API. Being written.
