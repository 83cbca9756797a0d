//! Checkpoint conversion: PyTorch zip / tch archives / safetensors → `.hood`.
//! Work in progress (issue: convert); the checkpoint readers land first.
