//! The `.hood` file format (docs/FORMAT.md). Being written.
