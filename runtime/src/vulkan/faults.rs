//! Injected Vulkan failures for tests (cargo feature `fault-injection`; never in a release
//! build). With the feature, while the file named by `HOOD_FAULTS_FILE` exists, the Vulkan
//! operations it lists fail as a real device would report it. Words, whitespace-separated:
//! `vk-submit`, `vk-fence` (the wait for a submitted batch) or `vk-alloc` (creating a buffer),
//! each optionally `=device-lost` (the default) or `=oom`, and optionally `*N`: only the first N
//! such operations after the process started fail (`vk-fence=oom*1`). Other words are the
//! firmware's write faults and are ignored here. Without the feature [`check`] is an empty inline
//! function.

use crate::error::Result;

/// The Vulkan operations a fault can be injected into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Submit,
    Fence,
    Alloc,
}

#[cfg(feature = "fault-injection")]
mod imp {
    use super::Op;
    use crate::error::Result;
    use std::sync::atomic::{AtomicU64, Ordering};

    static INJECTED: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];

    impl Op {
        fn word(self) -> &'static str {
            match self {
                Op::Submit => "vk-submit",
                Op::Fence => "vk-fence",
                Op::Alloc => "vk-alloc",
            }
        }
    }

    pub(crate) fn check(op: Op) -> Result<()> {
        let Some(path) = std::env::var_os("HOOD_FAULTS_FILE") else {
            return Ok(());
        };
        let Ok(text) = std::fs::read_to_string(path) else {
            return Ok(());
        };
        for word in text.split_whitespace() {
            let (word, limit) = match word.split_once('*') {
                Some((w, n)) => (w, n.parse::<u64>().ok()),
                None => (word, None),
            };
            let (name, kind) = word.split_once('=').unwrap_or((word, "device-lost"));
            if name != op.word() {
                continue;
            }
            let count = &INJECTED[op as usize];
            if limit.is_some_and(|n| count.load(Ordering::SeqCst) >= n) {
                continue;
            }
            count.fetch_add(1, Ordering::SeqCst);
            let what = if kind == "oom" {
                "out of device memory (VK_ERROR_OUT_OF_DEVICE_MEMORY, injected)"
            } else {
                "the device was lost (VK_ERROR_DEVICE_LOST, injected)"
            };
            return Err(super::super::vk_err(format!("{}: {what}", op.word())));
        }
        Ok(())
    }
}

/// `Err` when a failure of this operation is injected now.
#[cfg(feature = "fault-injection")]
pub(crate) fn check(op: Op) -> Result<()> {
    imp::check(op)
}

#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub(crate) fn check(_op: Op) -> Result<()> {
    Ok(())
}
