//! The fuzz target bodies (see `bodies.rs`).
pub mod bodies;
