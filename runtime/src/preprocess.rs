//! Preprocessing. Being written.
