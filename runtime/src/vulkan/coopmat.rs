//! Tensor cores from Vulkan (issue #12), the device side: the cooperative-matrix shapes a
//! device offers through `VK_KHR_cooperative_matrix`, and the one the fp16 GEMM would use.
//! Read once per context ([`super::device::VkContext::coopmat`]) and logged at `-v`. No kernel
//! uses them yet: the cooperative-matrix GEMM kernels are the rest of issue #12
//! (docs/TENSOR_CORES.md).
//!
//! vulkano 0.35 has the extension, its feature and its SPIR-V capability in its tables, but no
//! wrapper for `vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR`; [`device_shapes`] calls
//! it through the function table vulkano loaded for the instance.

use super::vk_err;
use crate::error::Result;
use ash::vk;
use vulkano::device::physical::PhysicalDevice;
use vulkano::VulkanObject;

/// A component type of a cooperative matrix, as far as hood cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    F16,
    F32,
    /// Any other (integer, bf16, fp8, …): the raw `VkComponentTypeKHR`.
    Other(i32),
}

impl Component {
    fn of(t: vk::ComponentTypeKHR) -> Component {
        match t {
            vk::ComponentTypeKHR::FLOAT16 => Component::F16,
            vk::ComponentTypeKHR::FLOAT32 => Component::F32,
            other => Component::Other(other.as_raw()),
        }
    }
}

/// One shape the device offers: `result (M×N) = A (M×K) · B (K×N) + C (M×N)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoopMatShape {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub a: Component,
    pub b: Component,
    pub c: Component,
    pub result: Component,
    /// The matrices are shared by one subgroup (the only scope the kernels would use).
    pub subgroup_scope: bool,
    /// Integer accumulation saturates (irrelevant for floats, reported as given).
    pub saturating: bool,
}

/// The shape the fp16 GEMM takes, `(M, N, K)`: fp16 A and B, fp32 C and result, subgroup
/// scope; 16×16×16 where offered (NVIDIA's tensor-core shape, the one the kernels are
/// written for), else the offered one with the largest `M·N·K`, ties to the smaller K.
/// `None`: no usable shape (the plan then keeps the fp32 GEMM).
pub fn gemm_shape(shapes: &[CoopMatShape]) -> Option<(u32, u32, u32)> {
    let usable = shapes.iter().filter(|s| {
        s.a == Component::F16
            && s.b == Component::F16
            && s.c == Component::F32
            && s.result == Component::F32
            && s.subgroup_scope
            && s.m > 0
            && s.n > 0
            && s.k > 0
    });
    let mut best: Option<(u32, u32, u32)> = None;
    for s in usable {
        let shape = (s.m, s.n, s.k);
        if shape == (16, 16, 16) {
            return Some(shape);
        }
        let work = |(m, n, k): (u32, u32, u32)| m as u64 * n as u64 * k as u64;
        best = match best {
            Some(b) if work(b) > work(shape) || (work(b) == work(shape) && b.2 <= shape.2) => {
                Some(b)
            }
            _ => Some(shape),
        };
    }
    best
}

/// The cooperative-matrix shapes of `pd`; empty when it does not have
/// `VK_KHR_cooperative_matrix` (lavapipe, older drivers).
pub fn device_shapes(pd: &PhysicalDevice) -> Result<Vec<CoopMatShape>> {
    if !pd.supported_extensions().khr_cooperative_matrix {
        return Ok(Vec::new());
    }
    let query = pd
        .instance()
        .fns()
        .khr_cooperative_matrix
        .get_physical_device_cooperative_matrix_properties_khr;
    let err = |e: vk::Result| {
        vk_err(format!(
            "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR: {e:?}"
        ))
    };
    let mut count = 0u32;
    // SAFETY: the extension is supported, so vulkano loaded the function; a null array asks
    // for the count only.
    unsafe { query(pd.handle(), &mut count, std::ptr::null_mut()) }
        .result()
        .map_err(err)?;
    let mut props = vec![vk::CooperativeMatrixPropertiesKHR::default(); count as usize];
    // SAFETY: `props` holds `count` initialised structures (sType set by `default`).
    unsafe { query(pd.handle(), &mut count, props.as_mut_ptr()) }
        .result()
        .map_err(err)?;
    props.truncate(count as usize);
    Ok(props
        .iter()
        .map(|p| CoopMatShape {
            m: p.m_size,
            n: p.n_size,
            k: p.k_size,
            a: Component::of(p.a_type),
            b: Component::of(p.b_type),
            c: Component::of(p.c_type),
            result: Component::of(p.result_type),
            subgroup_scope: p.scope == vk::ScopeKHR::SUBGROUP,
            saturating: p.saturating_accumulation == vk::TRUE,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(m: u32, n: u32, k: u32, a: Component, c: Component) -> CoopMatShape {
        CoopMatShape {
            m,
            n,
            k,
            a,
            b: a,
            c,
            result: c,
            subgroup_scope: true,
            saturating: false,
        }
    }

    /// What an NVIDIA driver lists (fp16 → fp16 and fp16 → fp32 at 16×16×16, 16×8×16,
    /// 16×8×8, integer shapes): the fp32-accumulating 16×16×16.
    #[test]
    fn picks_fp16_to_fp32_16x16x16() {
        use Component::*;
        let nvidia = [
            shape(16, 16, 16, F16, F16),
            shape(16, 8, 16, F16, F32),
            shape(16, 8, 8, F16, F32),
            shape(16, 16, 32, Other(3), Other(5)),
            shape(16, 16, 16, F16, F32),
        ];
        assert_eq!(gemm_shape(&nvidia), Some((16, 16, 16)));
    }

    /// Without 16×16×16: the largest fp16 → fp32 product, the smaller K on a tie; never an
    /// fp16-accumulating, workgroup-scope or empty shape.
    #[test]
    fn falls_back_to_the_largest_usable_shape() {
        use Component::*;
        let mut wg = shape(32, 32, 32, F16, F32);
        wg.subgroup_scope = false;
        let others = [
            shape(16, 8, 16, F16, F32),
            shape(8, 8, 32, F16, F32),
            shape(32, 32, 16, F16, F16),
            wg,
            shape(0, 16, 16, F16, F32),
            shape(16, 8, 32, F16, F32),
        ];
        assert_eq!(gemm_shape(&others), Some((16, 8, 32)));
        assert_eq!(gemm_shape(&others[..2]), Some((16, 8, 16)));
        assert_eq!(gemm_shape(&others[2..5]), None);
        assert_eq!(gemm_shape(&[]), None);
    }
}
