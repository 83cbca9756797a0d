//! The pipeline cache persisted across runs, so drivers that compile SPIR-V slowly (llvmpipe,
//! mobile drivers) start fast the second time.
//!
//! One file per device and driver: `$XDG_CACHE_HOME/hood/` (else `~/.cache/hood/`)
//! `pipelines-<vendor>-<device>-<driver version>-<pipelineCacheUUID>.bin`. A driver update
//! changes the name, so stale data is never offered to another driver (and drivers check the
//! header of the data themselves). Every failure (no cache directory, unreadable or
//! rejected data, a failed write) is logged and otherwise ignored: the cache only saves
//! time. `HOOD_VK_NO_PIPELINE_CACHE=1` switches it off.

use super::device::VkContext;
use std::path::PathBuf;
use std::sync::Arc;
use vulkano::pipeline::cache::{PipelineCache, PipelineCacheCreateInfo};

/// The cache directory: `$XDG_CACHE_HOME/hood` or `$HOME/.cache/hood`.
pub fn cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })?;
    Some(base.join("hood"))
}

/// File name of the cache of one device + driver.
pub fn file_name(vendor: u32, device: u32, driver_version: u32, uuid: &[u8; 16]) -> String {
    let hex: String = uuid.iter().map(|b| format!("{b:02x}")).collect();
    format!("pipelines-{vendor:04x}-{device:04x}-{driver_version:08x}-{hex}.bin")
}

/// A pipeline cache bound to its file.
pub struct DiskCache {
    pub cache: Arc<PipelineCache>,
    path: Option<PathBuf>,
    loaded_bytes: usize,
}

impl DiskCache {
    /// Opens the cache of `ctx`'s device, seeded from its file when there is one; `None`
    /// when switched off or when not even an empty cache can be created.
    pub fn open(ctx: &VkContext, enabled: bool) -> Option<DiskCache> {
        if !enabled {
            return None;
        }
        let props = ctx.device.physical_device().properties();
        let path = cache_dir().map(|d| {
            d.join(file_name(
                props.vendor_id,
                props.device_id,
                props.driver_version,
                &props.pipeline_cache_uuid,
            ))
        });
        if path.is_none() {
            log::info!("vulkan: no cache directory (XDG_CACHE_HOME / HOME unset); pipeline cache not persisted");
        }
        let data = match &path {
            Some(p) => match std::fs::read(p) {
                Ok(d) => d,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => {
                    log::warn!(
                        "vulkan: cannot read the pipeline cache {}: {e}",
                        p.display()
                    );
                    Vec::new()
                }
            },
            None => Vec::new(),
        };
        let make = |initial_data: Vec<u8>| {
            // SAFETY: the data was written by `get_data` of a cache of the same device and
            // driver (the file name encodes vendor, device, driver version and the
            // pipelineCacheUUID), and drivers validate the header and ignore data that does
            // not match.
            unsafe {
                PipelineCache::new(
                    ctx.device.clone(),
                    PipelineCacheCreateInfo {
                        initial_data,
                        ..Default::default()
                    },
                )
            }
        };
        let loaded_bytes = data.len();
        let cache = match make(data) {
            Ok(c) => c,
            Err(e) => {
                log::warn!("vulkan: pipeline cache data rejected ({e}); starting empty");
                match make(Vec::new()) {
                    Ok(c) => c,
                    Err(e) => {
                        log::warn!("vulkan: cannot create a pipeline cache: {e}");
                        return None;
                    }
                }
            }
        };
        if let Some(p) = &path {
            log::info!(
                "vulkan: pipeline cache {} ({loaded_bytes} bytes loaded)",
                p.display()
            );
        }
        Some(DiskCache {
            cache,
            path,
            loaded_bytes,
        })
    }

    /// Writes the cache back (atomically: a temporary file renamed over the old one) when it
    /// grew; failures are logged.
    pub fn save(&self) {
        let Some(path) = &self.path else { return };
        let data = match self.cache.get_data() {
            Ok(d) => d,
            Err(e) => {
                log::warn!("vulkan: cannot read back the pipeline cache: {e}");
                return;
            }
        };
        if data.is_empty() || data.len() == self.loaded_bytes {
            return;
        }
        let write = || -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            crate::atomic::write_file(path, &data)
        };
        match write() {
            Ok(()) => log::info!(
                "vulkan: pipeline cache saved to {} ({} bytes)",
                path.display(),
                data.len()
            ),
            Err(e) => log::warn!(
                "vulkan: cannot write the pipeline cache {}: {e}",
                path.display()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_name_encodes_device_and_driver() {
        let a = file_name(0x10de, 0x2330, 0x9180_0000, &[0xab; 16]);
        assert_eq!(
            a,
            "pipelines-10de-2330-91800000-abababababababababababababababab.bin"
        );
        assert_ne!(a, file_name(0x10de, 0x2330, 0x9180_0001, &[0xab; 16]));
    }
}
