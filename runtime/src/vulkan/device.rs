//! Instance and device choice: discrete > integrated > virtual > CPU (lavapipe) > other,
//! overridable with `HOOD_VULKAN_DEVICE` (an index into the enumeration order, or a
//! case-insensitive substring of the device name). Enables 16-bit storage (and fp16
//! arithmetic, when present) so kernels can store weights and activations as fp16.

use super::{vk_err, VkOptions};
use crate::error::Result;
use std::sync::Arc;
use vulkano::command_buffer::allocator::StandardCommandBufferAllocator;
use vulkano::descriptor_set::allocator::StandardDescriptorSetAllocator;
use vulkano::device::physical::SubgroupFeatures;
use vulkano::device::physical::{PhysicalDevice, PhysicalDeviceType};
use vulkano::device::{
    Device, DeviceCreateInfo, DeviceExtensions, DeviceFeatures, Queue, QueueCreateInfo, QueueFlags,
};
use vulkano::instance::{Instance, InstanceCreateFlags, InstanceCreateInfo};
use vulkano::memory::allocator::StandardMemoryAllocator;
use vulkano::memory::MemoryPropertyFlags;
use vulkano::shader::ShaderStages;
use vulkano::VulkanLibrary;

/// Everything the executor needs from the device: queue, allocators, what the device can do.
pub struct VkContext {
    pub device: Arc<Device>,
    pub queue: Arc<Queue>,
    pub memory: Arc<StandardMemoryAllocator>,
    pub descriptors: Arc<StandardDescriptorSetAllocator>,
    pub commands: Arc<StandardCommandBufferAllocator>,
    /// Kernels store weights and activations as fp16 (16-bit storage enabled and not switched off).
    pub fp16_storage: bool,
    /// Alignment of every buffer range bound as a storage buffer.
    pub binding_align: u64,
    /// Largest workgroup count in x and y of one dispatch.
    pub max_groups: [u32; 2],
    /// Workgroups one dispatch needs to keep the whole device busy ([`target_groups`]); the
    /// tiled Conv2d splits its K reduction when its tile grid is smaller.
    pub target_groups: u32,
    /// A CPU implementation (lavapipe) whose subgroups are 8 lanes with basic and ballot
    /// operations in compute shaders: what the register-broadcast kernels need (bcast.rs).
    pub cpu_subgroup8: bool,
    /// A CPU implementation (lavapipe): `--backend auto` does not use it (the fast CPU backend
    /// is faster).
    pub cpu_device: bool,
    /// The element-wise kernels compute in fp16 (fp16 storage, shaderFloat16, not switched
    /// off with `HOOD_VK_NO_FP16_MATH`; see `MATH_T` in shaders/common.glsl).
    pub fp16_math: bool,
    /// The HEAT score sums with subgroup arithmetic (subgroups of at least 8 lanes with
    /// arithmetic operations in compute shaders, not switched off with `HOOD_VK_NO_SUBGROUP`).
    pub subgroup_score: bool,
    /// Device-local memory the host can map (an integrated GPU such as Jetson's, or a CPU
    /// implementation): the executor then keeps its activation arena there and writes inputs
    /// to / reads outputs from their arena slots directly, with no staging copies.
    pub unified_memory: bool,
    /// The device feature shaderFloat16, enabled: fp16 values in shared memory, which both
    /// fragment GEMM cores' tiles are (shaders/fragments.glsl).
    pub shader_float16: bool,
    /// The cooperative-matrix shape `(M, N, K)` an fp16 × fp16 → fp32 tensor-core GEMM would use
    /// (`VK_KHR_cooperative_matrix`, [`super::coopmat::gemm_shape`]); `None` where the device
    /// has none (lavapipe).
    pub coopmat: Option<(u32, u32, u32)>,
    /// The device can run the cooperative-matrix GEMM kernels (`HOOD_VK_GEMM=coopmat`): shape
    /// 16×16×16, the extension and its features enabled, compute-stage support, 32-wide
    /// subgroups.
    pub coopmat_kernels: bool,
    /// "name (type, driver ...)" for logs and errors.
    pub description: String,
    /// The cooperative-matrix kernels' self-check on this device (self_check.rs), run by the
    /// first executor that would pick them by default.
    pub(super) coopmat_checked: std::sync::OnceLock<bool>,
    /// The options this context was created with that change what it enables.
    made_with: (bool, bool, bool),
}

fn type_rank(t: PhysicalDeviceType) -> u32 {
    match t {
        PhysicalDeviceType::DiscreteGpu => 0,
        PhysicalDeviceType::IntegratedGpu => 1,
        PhysicalDeviceType::VirtualGpu => 2,
        PhysicalDeviceType::Cpu => 3,
        _ => 4,
    }
}

/// Workgroups (of 64 invocations) that keep a device of type `t` busy: ≈ 4 per SM of a big
/// discrete GPU (132 SMs on an H100/H200: 512), fewer for integrated GPUs, one per core on a
/// CPU implementation (lavapipe runs one workgroup per thread), none to aim for otherwise.
/// Vulkan core does not report SM / compute-unit counts, hence the per-type constants.
pub fn target_groups(t: PhysicalDeviceType, cpu_cores: u32) -> u32 {
    match t {
        PhysicalDeviceType::DiscreteGpu | PhysicalDeviceType::VirtualGpu => 512,
        PhysicalDeviceType::IntegratedGpu => 64,
        PhysicalDeviceType::Cpu => cpu_cores.max(1),
        _ => 1,
    }
}

fn compute_family(pd: &PhysicalDevice) -> Option<u32> {
    pd.queue_family_properties()
        .iter()
        .position(|q| q.queue_flags.intersects(QueueFlags::COMPUTE))
        .map(|i| i as u32)
}

/// Picks a device among `(index, name, type)` candidates that have a compute queue.
/// `selector` is `HOOD_VULKAN_DEVICE`: an enumeration index or a name substring.
pub fn choose(
    candidates: &[(usize, String, PhysicalDeviceType)],
    selector: Option<&str>,
) -> Result<usize> {
    if candidates.is_empty() {
        return Err(vk_err("no Vulkan device with a compute queue"));
    }
    if let Some(sel) = selector.map(str::trim).filter(|s| !s.is_empty()) {
        let hit = match sel.parse::<usize>() {
            Ok(idx) => candidates.iter().find(|c| c.0 == idx),
            Err(_) => {
                let low = sel.to_lowercase();
                candidates
                    .iter()
                    .find(|c| c.1.to_lowercase().contains(&low))
            }
        };
        let names: Vec<String> = candidates
            .iter()
            .map(|c| format!("{}: {}", c.0, c.1))
            .collect();
        return hit.map(|c| c.0).ok_or_else(|| {
            vk_err(format!(
                "HOOD_VULKAN_DEVICE={sel} matches no device (have {})",
                names.join(", ")
            ))
        });
    }
    // Stable: among equal types the first enumerated wins.
    let best = candidates
        .iter()
        .min_by_key(|c| (type_rank(c.2), c.0))
        .map(|c| c.0);
    best.ok_or_else(|| vk_err("no Vulkan device"))
}

/// Loads Vulkan, creates an instance and picks the device `HOOD_VULKAN_DEVICE` names, else the
/// best one with a compute queue ([`choose`]); returns its enumeration index too.
fn pick_device() -> Result<(usize, Arc<PhysicalDevice>)> {
    let library =
        VulkanLibrary::new().map_err(|e| vk_err(format!("cannot load the Vulkan loader: {e}")))?;
    let instance = Instance::new(
        library,
        InstanceCreateInfo {
            flags: InstanceCreateFlags::ENUMERATE_PORTABILITY,
            application_name: Some("hood".into()),
            ..Default::default()
        },
    )
    .map_err(|e| vk_err(format!("no Vulkan driver (cannot create an instance: {e})")))?;
    let physicals: Vec<Arc<PhysicalDevice>> = instance
        .enumerate_physical_devices()
        .map_err(|e| vk_err(format!("cannot enumerate devices: {e}")))?
        .collect();
    let candidates: Vec<(usize, String, PhysicalDeviceType)> = physicals
        .iter()
        .enumerate()
        .filter(|(_, pd)| compute_family(pd).is_some())
        .map(|(i, pd)| {
            (
                i,
                pd.properties().device_name.clone(),
                pd.properties().device_type,
            )
        })
        .collect();
    let selector = std::env::var("HOOD_VULKAN_DEVICE").ok();
    let idx = choose(&candidates, selector.as_deref())?;
    Ok((idx, physicals[idx].clone()))
}

impl VkContext {
    /// Loads Vulkan, picks a device and creates the queue and allocators.
    pub fn new(opts: &VkOptions) -> Result<VkContext> {
        let (idx, pd) = pick_device()?;
        if pd.api_version() < vulkano::Version::V1_1 {
            return Err(vk_err(format!(
                "{} supports Vulkan {} only; hood's kernels need Vulkan 1.1 (SPIR-V 1.3)",
                pd.properties().device_name,
                pd.api_version()
            )));
        }
        let family =
            compute_family(&pd).ok_or_else(|| vk_err("chosen device lost its compute queue"))?;

        let supported = pd.supported_features();
        let has16 = supported.storage_buffer16_bit_access;
        let ext = pd.supported_extensions();
        // What the cooperative-matrix kernels declare (shaders/fragments.glsl): the
        // CooperativeMatrixKHR, VulkanMemoryModel and Float16 capabilities.
        let coopmat_features = ext.khr_cooperative_matrix
            && supported.cooperative_matrix
            && supported.vulkan_memory_model
            && supported.shader_float16;
        let want = DeviceFeatures {
            storage_buffer16_bit_access: has16,
            shader_float16: supported.shader_float16,
            cooperative_matrix: coopmat_features,
            vulkan_memory_model: coopmat_features,
            ..DeviceFeatures::empty()
        };
        // Before Vulkan 1.1/1.2 these features live in extensions; enabling a supported
        // extension is always valid.
        let enabled_extensions = DeviceExtensions {
            khr_16bit_storage: ext.khr_16bit_storage,
            khr_storage_buffer_storage_class: ext.khr_storage_buffer_storage_class,
            khr_shader_float16_int8: ext.khr_shader_float16_int8,
            khr_cooperative_matrix: coopmat_features,
            khr_vulkan_memory_model: coopmat_features && ext.khr_vulkan_memory_model,
            ..DeviceExtensions::empty()
        };
        let (device, mut queues) = Device::new(
            pd.clone(),
            DeviceCreateInfo {
                queue_create_infos: vec![QueueCreateInfo {
                    queue_family_index: family,
                    ..Default::default()
                }],
                enabled_extensions,
                enabled_features: want,
                ..Default::default()
            },
        )
        .map_err(|e| vk_err(format!("cannot create the device: {e}")))?;
        let queue = queues
            .next()
            .ok_or_else(|| vk_err("the device returned no queue"))?;

        let props = pd.properties();
        let description = format!(
            "{} ({:?}, driver {} {}, Vulkan {})",
            props.device_name,
            props.device_type,
            props.driver_name.as_deref().unwrap_or("?"),
            props.driver_info.as_deref().unwrap_or(""),
            pd.api_version()
        );
        let fp16_storage = has16 && !opts.no_fp16;
        log::info!(
            "vulkan: device {idx} {description}; storageBuffer16BitAccess={has16} shaderFloat16={}; \
             storage {}",
            supported.shader_float16,
            if fp16_storage { "fp16" } else { "fp32" }
        );
        // At least 16 bytes: the tiled kernels read channel-packed activations as 16-byte
        // vectors from the start of their arena slot.
        let binding_align = props
            .min_storage_buffer_offset_alignment
            .as_devicesize()
            .max(16);
        let g = props.max_compute_work_group_count;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        let target_groups = target_groups(props.device_type, cores);
        // Subgroup operations `ops` (with the basic ones) in compute shaders.
        let compute_subgroups = |ops: SubgroupFeatures| {
            props
                .subgroup_supported_stages
                .is_some_and(|s| s.intersects(ShaderStages::COMPUTE))
                && props
                    .subgroup_supported_operations
                    .is_some_and(|o| o.contains(SubgroupFeatures::BASIC | ops))
        };
        let cpu_device = props.device_type == PhysicalDeviceType::Cpu;
        let cpu_subgroup8 = cpu_device
            && props.subgroup_size == Some(8)
            && compute_subgroups(SubgroupFeatures::BALLOT);
        let fp16_math = fp16_storage && supported.shader_float16 && !opts.no_fp16_math;
        let subgroup_score = !opts.no_subgroup
            && props.subgroup_size.is_some_and(|n| n >= 8)
            && compute_subgroups(SubgroupFeatures::ARITHMETIC);
        log::info!(
            "vulkan: fp16 arithmetic in element-wise kernels {fp16_math}; subgroup score sum {subgroup_score}"
        );
        let coopmat = match super::coopmat::device_shapes(&pd) {
            Ok(shapes) => {
                let pick = super::coopmat::gemm_shape(&shapes);
                log::info!(
                    "vulkan: {} cooperative-matrix shapes (VK_KHR_cooperative_matrix); \
                     fp16 → fp32 GEMM shape {pick:?}",
                    shapes.len()
                );
                for s in &shapes {
                    log::debug!("vulkan: cooperative matrix {s:?}");
                }
                pick
            }
            Err(e) => {
                log::warn!("vulkan: cooperative-matrix query failed, taken as none: {e}");
                None
            }
        };
        // The cooperative-matrix kernels are written for 16×16×16 fragments owned by 32-wide
        // subgroups (shaders/fragment_gemm.glsl).
        let coopmat_kernels = coopmat == Some((16, 16, 16))
            && coopmat_features
            && props
                .cooperative_matrix_supported_stages
                .is_some_and(|s| s.intersects(ShaderStages::COMPUTE))
            && props.subgroup_size == Some(32)
            && compute_subgroups(SubgroupFeatures::BASIC);
        if coopmat.is_some() {
            log::info!("vulkan: cooperative-matrix GEMM kernels runnable: {coopmat_kernels}");
        }
        let mapped_device_local = MemoryPropertyFlags::DEVICE_LOCAL
            | MemoryPropertyFlags::HOST_VISIBLE
            | MemoryPropertyFlags::HOST_COHERENT;
        let unified_memory = matches!(
            props.device_type,
            PhysicalDeviceType::IntegratedGpu | PhysicalDeviceType::Cpu
        ) && pd
            .memory_properties()
            .memory_types
            .iter()
            .any(|t| t.property_flags.contains(mapped_device_local));
        Ok(VkContext {
            memory: Arc::new(StandardMemoryAllocator::new_default(device.clone())),
            descriptors: Arc::new(StandardDescriptorSetAllocator::new(
                device.clone(),
                Default::default(),
            )),
            commands: Arc::new(StandardCommandBufferAllocator::new(
                device.clone(),
                Default::default(),
            )),
            device,
            queue,
            fp16_storage,
            binding_align,
            max_groups: [g[0].min(65535), g[1].min(65535)],
            target_groups,
            cpu_subgroup8,
            cpu_device,
            fp16_math,
            subgroup_score,
            unified_memory,
            shader_float16: supported.shader_float16,
            coopmat,
            coopmat_kernels,
            description,
            coopmat_checked: std::sync::OnceLock::new(),
            made_with: Self::key(opts),
        })
    }

    /// The options that shape a context: storage precision, fp16 arithmetic, subgroup score.
    fn key(opts: &VkOptions) -> (bool, bool, bool) {
        (opts.no_fp16, opts.no_fp16_math, opts.no_subgroup)
    }

    /// Whether an executor with `opts` may run on this context.
    pub fn made_for(&self, opts: &VkOptions) -> bool {
        self.made_with == Self::key(opts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cands() -> Vec<(usize, String, PhysicalDeviceType)> {
        vec![
            (0, "llvmpipe (LLVM 19)".into(), PhysicalDeviceType::Cpu),
            (1, "Intel UHD 620".into(), PhysicalDeviceType::IntegratedGpu),
            (2, "NVIDIA H100".into(), PhysicalDeviceType::DiscreteGpu),
        ]
    }

    #[test]
    fn prefers_discrete_then_integrated() {
        assert_eq!(choose(&cands(), None).unwrap(), 2);
        assert_eq!(choose(&cands()[..2], None).unwrap(), 1);
        assert_eq!(choose(&cands()[..1], None).unwrap(), 0);
    }

    #[test]
    fn env_selector_by_index_or_name() {
        assert_eq!(choose(&cands(), Some("0")).unwrap(), 0);
        assert_eq!(choose(&cands(), Some("llvm")).unwrap(), 0);
        assert_eq!(choose(&cands(), Some("intel")).unwrap(), 1);
        assert_eq!(choose(&cands(), Some(" ")).unwrap(), 2);
        assert!(choose(&cands(), Some("amd")).is_err());
        assert!(choose(&cands(), Some("7")).is_err());
        assert!(choose(&[], None).is_err());
    }
}
