//! `hood_convert`: reads HEAT checkpoints (PyTorch `torch.save` zips, libtorch/tch archives,
//! safetensors) into a format-independent value tree, for lowering to `.hood` models.
//!
//! Layers, one file each (formats are specified in `docs/CHECKPOINTS.md`):
//! - [`zip`]: bounded zip reader (EOCD + Zip64, central directory, stored entries);
//! - [`pickle`]: inert pickle interpreter with an allow-list of globals; executes nothing;
//! - `torch_zip` (internal): `data.pkl` + `data/<key>` storages → tensors (strides, views,
//!   shared storages, byte order), tch `__torch__ Module` objects;
//! - `safetensors` (internal): header validation and decoding;
//! - [`tensor`]: source dtypes and decoded tensors (f32 / i64 values);
//! - [`checkpoint`]: format detection from the bytes, [`Checkpoint`], [`Checkpoint::flatten`];
//! - [`error`]: [`ConvertError`], every message naming the file.
//!
//!
//! Conversion, on top of the readers:
//! - [`rename`]: `--rename FROM=TO` / `--map FILE` prefix rewrites of tensor names;
//! - [`parts`]: split inputs into encoder / head / decoder + normalisation scalars, any layout;
//! - [`arch`]: recognise ResNet (basic / bottleneck) and WideResNet encoders and HEAT decoders;
//! - [`lower`]: the op graph with BatchNorm and normalisation folded (f32);
//! - [`precision`]: fp16 cast with range check; [`golden`]: the self-test batch;
//! - [`pipeline`]: the whole `convert` run; [`explain`]: `--explain-names`.

pub mod arch;
pub mod checkpoint;
pub mod error;
pub mod explain;
pub mod golden;
pub mod lower;
pub mod parts;
pub mod pickle;
pub mod pipeline;
pub mod precision;
pub mod rename;
mod safetensors;
pub mod tensor;
mod torch_zip;
pub mod zip;

pub use checkpoint::{load, load_bytes, Checkpoint, Format, Key, Value};
pub use error::ConvertError;
pub use tensor::{DType, Tensor, TensorData};
