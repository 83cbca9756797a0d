//! The measurement behind the fast CPU backend's GEMM crate (runtime/src/cpu/gemm.rs): the
//! `gemm` crate vs `matrixmultiply` on the GEMM shapes of the HEAT models, one thread, row-major
//! f32. `cargo run --release -p hood-runtime --no-default-features --example gemm_probe`.
use hood_runtime::cpu::gemm::{sgemm, Mat};
use hood_runtime::rng::Lcg;
use std::time::Instant;

fn time(reps: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..3 {
        f();
    }
    let t = Instant::now();
    for _ in 0..reps {
        f();
    }
    t.elapsed().as_secs_f64() / reps as f64
}

fn main() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool");
    println!("    m x     n x     k    gemm us (GFLOP/s)   matrixmultiply us (GFLOP/s)");
    // Winograd per-ξ GEMMs, im2col convs, a transposed conv, layer-4 convs at batch 1.
    for &(m, n, k) in &[
        (32, 64, 32),
        (64, 64, 64),
        (128, 4, 128),
        (128, 16, 128),
        (64, 16, 64),
        (32, 256, 32),
        (128, 32, 128),
        (32, 1024, 288),
        (64, 1024, 576),
        (128, 64, 1152),
        (512, 16, 4608),
        (1024, 16, 128),
    ] {
        let mut g = Lcg::new(1);
        let a = g.vec(m * k, 1.0);
        let b = g.vec(k * n, 1.0);
        let mut c = vec![0f32; m * n];
        let reps = (2e8 as usize / (m * n * k)).clamp(3, 20000);
        let flops = 2.0 * (m * n * k) as f64;
        let t1 = pool.install(|| {
            time(reps, || {
                sgemm(
                    m,
                    n,
                    k,
                    Mat { data: &a, ld: k },
                    Mat { data: &b, ld: n },
                    &mut c,
                    n,
                    false,
                )
            })
        });
        let t2 = time(reps, || {
            // SAFETY: a, b and c hold m·k, k·n and m·n elements with the strides given.
            unsafe {
                matrixmultiply::sgemm(
                    m,
                    k,
                    n,
                    1.0,
                    a.as_ptr(),
                    k as isize,
                    1,
                    b.as_ptr(),
                    n as isize,
                    1,
                    0.0,
                    c.as_mut_ptr(),
                    n as isize,
                    1,
                )
            }
        });
        println!(
            "{m:>5} x {n:>5} x {k:>5}  {:>9.2} ({:>6.1})      {:>9.2} ({:>6.1})",
            t1 * 1e6,
            flops / t1 / 1e9,
            t2 * 1e6,
            flops / t2 / 1e9
        );
    }
}
