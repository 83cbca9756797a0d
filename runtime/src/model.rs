//! Model: a loaded .hood file. Being written.
