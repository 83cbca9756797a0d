//! Weights: converted once to the kernels' storage type (fp16 or fp32), packed into one
//! device-local buffer (each tensor at a binding-aligned offset) and uploaded through a
//! staging buffer with one copy.

use super::device::VkContext;
use super::{submit_and_wait, vk_err};
use crate::error::Result;
use crate::graph::Graph;
use crate::ops::Op;
use crate::tensor::{HostTensor, TensorValues};
use half::f16;
use std::collections::HashMap;
use vulkano::buffer::{Buffer, BufferCreateInfo, BufferUsage, Subbuffer};
use vulkano::command_buffer::{AutoCommandBufferBuilder, CommandBufferUsage, CopyBufferInfo};
use vulkano::memory::allocator::{AllocationCreateInfo, MemoryTypeFilter};

/// Little-endian bytes of `values` in the storage type.
pub fn storage_bytes(values: &[f32], fp16: bool) -> Vec<u8> {
    if fp16 {
        values
            .iter()
            .flat_map(|&v| f16::from_f32(v).to_le_bytes())
            .collect()
    } else {
        values.iter().flat_map(|&v| v.to_le_bytes()).collect()
    }
}

/// Writes `values` in the storage type into `dst` (the mapped input buffer, at least
/// `values.len()` × 2 or 4 bytes): fp16 through `half`'s slice conversion (F16C / NEON where the
/// CPU has it), no intermediate vector.
pub fn write_storage(dst: &mut [u8], values: &[f32], fp16: bool) -> crate::error::Result<()> {
    use half::slice::HalfFloatSliceExt;
    let width = if fp16 { 2 } else { 4 };
    let dst = dst
        .get_mut(..values.len() * width)
        .ok_or_else(|| super::vk_err("input buffer smaller than the batch"))?;
    let cast_err = |e| super::vk_err(format!("input buffer: {e:?}"));
    if fp16 {
        let halves: &mut [f16] = bytemuck::try_cast_slice_mut(dst).map_err(cast_err)?;
        halves.convert_from_f32_slice(values);
    } else {
        let floats: &mut [f32] = bytemuck::try_cast_slice_mut(dst).map_err(cast_err)?;
        floats.copy_from_slice(values);
    }
    Ok(())
}

/// Storage-type bytes of a weight tensor (fp16 tensors are copied bit-exact when storing fp16).
fn tensor_bytes(t: &HostTensor, fp16: bool) -> Vec<u8> {
    match (&t.values, fp16) {
        (TensorValues::F16(v), true) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        _ => storage_bytes(&t.to_f32(), fp16),
    }
}

/// Element A(co, kk) of output parity class `cls` (class = py · stride + px) of a
/// ConvTranspose2d weight `[cin, cout, k, k]` as a GEMM matrix: step kk = (ci, ty, tx) is the
/// tap (ky0 + stride·ty, kx0 + stride·tx) with (ky0, kx0) the class's first tap; 0 past the
/// kernel.
#[allow(clippy::too_many_arguments)]
pub fn deconv_class_weight(
    w: &[f32],
    cout: usize,
    k: usize,
    stride: usize,
    pad: usize,
    cls: usize,
    co: usize,
    kk: usize,
) -> f32 {
    let t = k.div_ceil(stride);
    let (py, px) = (cls / stride, cls % stride);
    let (ky0, kx0) = ((py + pad) % stride, (px + pad) % stride);
    let (ci, r) = (kk / (t * t), kk % (t * t));
    let (ky, kx) = (ky0 + stride * (r / t), kx0 + stride * (r % t));
    if ky < k && kx < k {
        w[((ci * cout + co) * k + ky) * k + kx]
    } else {
        0.0
    }
}

/// A kernel's layout of one `[cout, k_len]` GEMM weight matrix given by its elements `a(co, kk)`.
pub type Layout = fn(usize, usize, &dyn Fn(usize, usize) -> f32) -> Vec<f32>;

/// How a GEMM kernel stores its copies of the conv weights: the name of a copy (from the
/// source weight's), the layout of one matrix, and the order of the reduction steps.
#[derive(Clone, Copy)]
pub struct CopyRule<'a> {
    pub name_of: fn(&str) -> String,
    pub layout: Layout,
    /// Whether a node with `cin` input channels has its steps in tap-major order, (tap,
    /// channel) instead of (channel, tap) ([`tap_major_step`]); a joined shortcut's steps
    /// follow unchanged.
    pub tap_major: &'a dyn Fn(usize) -> bool,
}

/// The (channel, tap) step of tap-major step `kk` of a reduction over `cin` channels × `taps`
/// taps (steps past `cin · taps`, a joined shortcut's, are their own).
pub fn tap_major_step(kk: usize, cin: usize, taps: usize) -> usize {
    if kk >= cin * taps {
        return kk;
    }
    (kk % cin) * taps + kk / cin
}

/// Copies of the weights of every Conv2d (`conv`) and / or ConvTranspose2d (`deconv`) of
/// `graph` as `rule` stores them (a ConvTranspose2d: one matrix per output parity class,
/// concatenated), for upload next to the model's tensors (looked up in `tables` in order). `conv_matrix(j)` names the `[cout, row]` weight
/// matrix Conv2d node `j` reads and its row length (its own weights, or joined ones: fused.rs),
/// `None` when it has no dispatch of its own.
pub fn conv_weight_copies(
    graph: &Graph,
    tables: &[&[(String, HostTensor)]],
    conv: bool,
    deconv: bool,
    conv_matrix: &dyn Fn(usize) -> Option<(String, usize)>,
    rule: CopyRule,
) -> Result<Vec<(String, HostTensor)>> {
    let reorder = rule.tap_major;
    let find = |name: &str| -> Result<Vec<f32>> {
        tables
            .iter()
            .flat_map(|t| t.iter())
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.to_f32())
            .ok_or_else(|| vk_err(format!("weight '{name}' is not in the tensor table")))
    };
    let mut out = Vec::new();
    for (j, node) in graph.nodes.iter().enumerate() {
        let (name, copy) = match &node.op {
            Op::Conv2d(a) if conv => {
                let Some((name, row)) = conv_matrix(j) else {
                    continue;
                };
                let w = find(&name)?;
                if w.len() != a.cout * row {
                    return Err(vk_err(format!(
                        "weight '{name}' is not [{}, {row}]",
                        a.cout
                    )));
                }
                let taps = a.k * a.k;
                let copy = if reorder(a.cin) {
                    (rule.layout)(a.cout, row, &|co, kk| {
                        w[co * row + tap_major_step(kk, a.cin, taps)]
                    })
                } else {
                    (rule.layout)(a.cout, row, &|co, kk| w[co * row + kk])
                };
                (name, copy)
            }
            Op::ConvTranspose2d(a) if deconv => {
                let w = find(&a.weight)?;
                let taps = a.k.div_ceil(a.stride).pow(2);
                let k_len = a.cin * taps;
                let step = |kk| {
                    if reorder(a.cin) {
                        tap_major_step(kk, a.cin, taps)
                    } else {
                        kk
                    }
                };
                let copy = (0..a.stride * a.stride)
                    .flat_map(|cls| {
                        (rule.layout)(a.cout, k_len, &|co, kk| {
                            let kk = step(kk);
                            deconv_class_weight(&w, a.cout, a.k, a.stride, a.pad, cls, co, kk)
                        })
                    })
                    .collect();
                (a.weight.clone(), copy)
            }
            _ => continue,
        };
        let len: usize = Vec::len(&copy);
        out.push(((rule.name_of)(&name), HostTensor::f32(vec![len], copy)));
    }
    Ok(out)
}

/// The uploaded weights, by tensor name.
pub struct WeightStore {
    ranges: HashMap<String, Subbuffer<[u8]>>,
    pub bytes: u64,
}

impl WeightStore {
    /// Uploads the tensors named in `names` (those the graph reads), looked up in the
    /// `tables` in order.
    pub fn upload(
        ctx: &VkContext,
        names: &[&str],
        tables: &[&[(String, HostTensor)]],
    ) -> Result<WeightStore> {
        // At least 16 bytes: the tiled kernels read weights as 16-byte vectors.
        let align = ctx.binding_align.max(16);
        let mut packed: Vec<u8> = Vec::new();
        let mut placed: Vec<(String, u64, u64)> = Vec::new();
        for &name in names {
            let (_, t) = tables
                .iter()
                .flat_map(|t| t.iter())
                .find(|(n, _)| n == name)
                .ok_or_else(|| vk_err(format!("weight '{name}' is not in the tensor table")))?;
            let bytes = tensor_bytes(t, ctx.fp16_storage);
            let offset = (packed.len() as u64).div_ceil(align) * align;
            packed.resize(offset as usize, 0);
            packed.extend_from_slice(&bytes);
            // Bound ranges are whole 4-byte words.
            let size = (bytes.len() as u64).div_ceil(4).max(1) * 4;
            placed.push((name.to_string(), offset, size));
        }
        let total = (packed.len() as u64).div_ceil(align).max(1) * align;
        packed.resize(total as usize, 0);

        let staging = Buffer::from_iter(
            ctx.memory.clone(),
            BufferCreateInfo {
                usage: BufferUsage::TRANSFER_SRC,
                ..Default::default()
            },
            AllocationCreateInfo {
                memory_type_filter: MemoryTypeFilter::PREFER_HOST
                    | MemoryTypeFilter::HOST_SEQUENTIAL_WRITE,
                ..Default::default()
            },
            packed,
        )
        .map_err(|e| vk_err(format!("weight staging buffer of {total} bytes: {e}")))?;
        let device_buf: Subbuffer<[u8]> = Buffer::new_slice(
            ctx.memory.clone(),
            BufferCreateInfo {
                usage: BufferUsage::STORAGE_BUFFER | BufferUsage::TRANSFER_DST,
                ..Default::default()
            },
            AllocationCreateInfo {
                memory_type_filter: MemoryTypeFilter::PREFER_DEVICE,
                ..Default::default()
            },
            total,
        )
        .map_err(|e| vk_err(format!("weight buffer of {total} bytes: {e}")))?;
        let mut b = AutoCommandBufferBuilder::primary(
            ctx.commands.clone(),
            ctx.queue.queue_family_index(),
            CommandBufferUsage::OneTimeSubmit,
        )
        .map_err(|e| vk_err(format!("command buffer: {e}")))?;
        b.copy_buffer(CopyBufferInfo::buffers(staging, device_buf.clone()))
            .map_err(|e| vk_err(format!("weight upload: {e}")))?;
        let cb = b
            .build()
            .map_err(|e| vk_err(format!("weight upload: {e}")))?;
        submit_and_wait(ctx, cb)?;

        let ranges = placed
            .into_iter()
            .map(|(n, off, size)| (n, device_buf.clone().slice(off..off + size)))
            .collect();
        Ok(WeightStore {
            ranges,
            bytes: total,
        })
    }

    pub fn get(&self, name: &str) -> Result<Subbuffer<[u8]>> {
        self.ranges
            .get(name)
            .cloned()
            .ok_or_else(|| vk_err(format!("weight '{name}' was not uploaded")))
    }
}

#[cfg(test)]
mod write_tests {
    use super::*;

    #[test]
    fn write_storage_matches_the_scalar_conversion() {
        let values: Vec<f32> = (0..37).map(|i| (i as f32 - 18.3) * 0.731).collect();
        for fp16 in [true, false] {
            // A u32 vector keeps the bytes 4-aligned, as a mapped buffer is.
            let mut buf = vec![0u32; values.len() + 1];
            let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut buf);
            write_storage(bytes, &values, fp16).unwrap();
            let want = storage_bytes(&values, fp16);
            assert_eq!(&bytes[..want.len()], &want[..], "fp16 {fp16}");
            assert!(write_storage(&mut bytes[..4], &values, fp16).is_err());
        }
    }
}
