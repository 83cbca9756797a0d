//! Creating and dropping Vulkan detectors many times does not leak: hood-watch recreates its
//! detector after GPU errors, for months. 120 cycles of create → detect → drop on the same
//! model; after a warm-up of 20 cycles (allocator and driver caches settle), resident memory
//! may not grow by more than 8 MiB and the number of open file descriptors may not grow at all.
//! Linux only (reads /proc/self). Without a Vulkan device the test is skipped with a message,
//! unless `HOOD_VK_REQUIRE_DEVICE=1` (scripts/test.sh), which makes that a failure.
#![cfg(all(feature = "vulkan", target_os = "linux"))]

use hood_runtime::testing::tiny_model;
use hood_runtime::{Backend, Detector, Model};

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("VmRSS line")
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

#[test]
fn detectors_are_released_when_dropped() {
    std::env::set_var("HOOD_VK_NO_PIPELINE_CACHE", "1");
    let (meta, graph, tensors) = tiny_model(7);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tiny.hood");
    hood_runtime::format::write_model(&path, &meta, &graph, &tensors).expect("write model");
    let model = Model::open(&path).expect("open model");
    let cycle = || -> bool {
        match Detector::new(&model, Backend::Vulkan) {
            Ok(mut d) => {
                let x = vec![0.25f32; d.input_len() * 2];
                d.detect_flat(&x, 2).expect("detect");
                true
            }
            Err(e) if std::env::var("HOOD_VK_REQUIRE_DEVICE").as_deref() != Ok("1") => {
                eprintln!("NOT RUN: no Vulkan device ({e})");
                false
            }
            Err(e) => panic!("creating a Vulkan detector: {e}"),
        }
    };
    for _ in 0..20 {
        if !cycle() {
            return;
        }
    }
    let (rss0, fds0) = (rss_kib(), open_fds());
    for _ in 0..100 {
        assert!(cycle());
    }
    let (rss1, fds1) = (rss_kib(), open_fds());
    eprintln!("100 cycles: RSS {rss0} -> {rss1} KiB, open fds {fds0} -> {fds1}");
    assert!(
        rss1 <= rss0 + 8 * 1024,
        "resident memory grew by {} KiB over 100 create/drop cycles",
        rss1 - rss0
    );
    assert!(
        fds1 <= fds0,
        "open file descriptors grew from {fds0} to {fds1}"
    );
}
