//! Helpers shared by the Vulkan tests: a seeded RNG, fp16-exact random tensors, single-op
//! test graphs, and the executor factory that skips cleanly where no Vulkan device exists
//! (set `HOOD_VK_REQUIRE_DEVICE=1` to make a missing device a failure instead). The factory
//! creates one Vulkan instance and device per process and option set and shares it between
//! the executors of every test (a test binary builds hundreds of executors; creating an
//! instance for each is slow and was where the NVIDIA driver failed under gVisor).
#![allow(dead_code)]

use hood_runtime::graph::{Graph, GraphBuilder, GraphOutputs, ValueId};
use hood_runtime::ops::{Activation, Conv2d, ConvTranspose2d, Op};
use hood_runtime::reference::{self, Buffer};
pub use hood_runtime::rng::Lcg;
use hood_runtime::tensor::{DType, HostTensor};
use hood_runtime::vulkan::device::VkContext;
use hood_runtime::vulkan::{VkOptions, VulkanExecutor};
use hood_runtime::weights::Weights;
use hood_runtime::HoodError;
use std::sync::{Arc, Mutex};

/// The fragment GEMM core the fragment variants of the tests run: emulated (the only one
/// lavapipe can run, what CI tests), or the cooperative-matrix kernels with
/// `HOOD_TEST_GEMM=coopmat` (tools/device/gpu_bench.sh sets it for its second pass on a GPU;
/// on a device without them every executor then fails to build, loudly).
pub fn fragment_core() -> hood_runtime::vulkan::GemmCore {
    use hood_runtime::vulkan::GemmCore;
    match std::env::var("HOOD_TEST_GEMM").as_deref() {
        Ok("coopmat") => GemmCore::CoopMat,
        _ => GemmCore::Emulated,
    }
}

/// The generator of a case: [`Lcg::scrambled`], so every case is reproducible from its seed.
pub fn rng(seed: u64) -> Lcg {
    Lcg::scrambled(seed)
}

/// Weight tensors of a test graph, fp16-representable.
#[derive(Default)]
pub struct Tensors(pub Vec<(String, HostTensor)>);

impl Tensors {
    /// Adds a random fp16 tensor and returns its name.
    pub fn rand(&mut self, rng: &mut Lcg, name: &str, shape: Vec<usize>, a: f32) -> String {
        let n = shape.iter().product();
        let v = rng.f16_vec(n, a);
        self.0
            .push((name.to_string(), HostTensor::f16_from_f32(shape, &v)));
        name.to_string()
    }
    pub fn lookup(&self) -> impl Fn(&str) -> Option<(DType, Vec<usize>)> + '_ {
        move |n: &str| {
            self.0
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, t)| (t.dtype(), t.shape.clone()))
        }
    }
    pub fn weights(&self) -> Weights {
        Weights::from_host(self.0.iter().map(|(n, t)| (n, t)))
    }
}

/// Adds the scaffolding every graph needs (class = argmax(input), score/heatmap =
/// heat_score(input)) and makes `logits` the value under test.
pub fn finish(mut g: GraphBuilder<'_>, logits: ValueId) -> Graph {
    let input = g.input();
    let class = g.add1("class", Op::Argmax, &[input]).expect("argmax");
    let hs = g.add("heat", Op::HeatScore, &[input]).expect("heat_score");
    g.finish(GraphOutputs {
        logits,
        class,
        score: hs[0],
        heatmap: hs[1],
    })
}

/// Adds a 1×1 identity conv of `c` channels (exact in every storage type) named `name`.
fn identity(t: &mut Tensors, name: &str, c: usize) -> Conv2d {
    let w: Vec<f32> = (0..c * c)
        .map(|i| if i / c == i % c { 1.0 } else { 0.0 })
        .collect();
    t.0.push((
        name.to_string(),
        HostTensor::f16_from_f32(vec![c, c, 1, 1], &w),
    ));
    Conv2d {
        cin: c,
        cout: c,
        k: 1,
        stride: 1,
        pad: 0,
        weight: name.to_string(),
        bias: None,
        prologue: None,
        residual: false,
        relu: false,
    }
}

/// With `wrap`, the identity convs [`build_wrapped`] puts around the op under test: on
/// `cin` channels before it and `cout` after it.
pub fn wrappers(t: &mut Tensors, wrap: bool, cin: usize, cout: usize) -> Option<(Conv2d, Conv2d)> {
    wrap.then(|| (identity(t, "#id_in", cin), identity(t, "#id_out", cout)))
}

/// Builds `body` on the graph input, or with `wrappers`, between two identity 1×1 convs: the
/// op under test then reads and writes values that no host reads, which the tiled kernels
/// store channel-packed (NHWC; the Vulkan plan's `packed_values`), not only the graph's NCHW
/// input and output. Returns the graph and the value under test (the last conv's output).
pub fn build_wrapped(
    t: &Tensors,
    input: [usize; 3],
    wrappers: Option<(Conv2d, Conv2d)>,
    body: impl FnOnce(&mut GraphBuilder, ValueId) -> ValueId,
) -> (Graph, ValueId) {
    let lookup = t.lookup();
    let mut g = GraphBuilder::new(input, &lookup);
    let x = g.input();
    let out = match wrappers {
        Some((pre, post)) => {
            let x = g.add1("id_in", Op::Conv2d(pre), &[x]).expect("identity in");
            let y = body(&mut g, x);
            g.add1("id_out", Op::Conv2d(post), &[y])
                .expect("identity out")
        }
        None => body(&mut g, x),
    };
    (finish(g, out), out)
}

/// A graph of one conv2d `op` on input `[cin, h, w]` (value under test: its output). With
/// `residual` (a weight tensor name), a second conv of the same geometry (no bias, prologue or
/// ReLU) computes the residual that `op` adds. `wrap`: see [`build_wrapped`].
pub fn conv2d_graph(
    t: &mut Tensors,
    input: [usize; 3],
    op: Conv2d,
    residual: Option<String>,
    wrap: bool,
) -> (Graph, ValueId) {
    let w = wrappers(t, wrap, op.cin, op.cout);
    build_wrapped(t, input, w, |g, x| {
        if let Some(weight) = residual {
            let res_op = Conv2d {
                weight,
                bias: None,
                prologue: None,
                residual: false,
                relu: false,
                ..op.clone()
            };
            let res = g
                .add1("res", Op::Conv2d(res_op), &[x])
                .expect("residual conv");
            g.add1("conv", Op::Conv2d(op), &[x, res]).expect("conv")
        } else {
            g.add1("conv", Op::Conv2d(op), &[x]).expect("conv")
        }
    })
}

/// A graph of one conv_transpose2d `op` on input `[cin, h, w]`. With `feature` (a weight tensor
/// name), a second transposed conv of the same geometry (no bias, no activation) computes the
/// forwarded feature that `op` adds. `wrap`: see [`build_wrapped`].
pub fn conv_transpose2d_graph(
    t: &mut Tensors,
    input: [usize; 3],
    op: ConvTranspose2d,
    feature: Option<String>,
    wrap: bool,
) -> (Graph, ValueId) {
    let w = wrappers(t, wrap, op.cin, op.cout);
    build_wrapped(t, input, w, |g, x| {
        if let Some(weight) = feature {
            let f_op = ConvTranspose2d {
                weight,
                bias: None,
                act: Activation::None,
                add: None,
                ..op.clone()
            };
            let f = g
                .add1("feature", Op::ConvTranspose2d(f_op), &[x])
                .expect("feature deconv");
            g.add1("deconv", Op::ConvTranspose2d(op), &[x, f])
                .expect("deconv")
        } else {
            g.add1("deconv", Op::ConvTranspose2d(op), &[x])
                .expect("deconv")
        }
    })
}

/// Builds an executor; `None` (test skipped) when the machine has no Vulkan device.
pub fn executor(
    graph: &Graph,
    t: &Tensors,
    fp16: bool,
    max_batch: usize,
) -> Option<VulkanExecutor> {
    executor_with(graph, t, fp16, max_batch, Kernels::Default)
}

/// Which Conv2d / ConvTranspose2d kernels an executor runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernels {
    /// The device's choice: register-broadcast on CPU implementations (lavapipe), else tiled.
    Default,
    /// The tiled implicit GEMMs (`HOOD_VK_NO_BCAST`).
    Tiled,
    /// The generic fallbacks (`HOOD_VK_NO_TILED_CONV`, `HOOD_VK_NO_TILED_DECONV`).
    Generic,
}

impl Kernels {
    pub const ALL: [Kernels; 3] = [Kernels::Default, Kernels::Tiled, Kernels::Generic];

    /// `base` with this choice of kernels.
    pub fn apply(self, base: VkOptions) -> VkOptions {
        VkOptions {
            no_bcast: self != Kernels::Default,
            no_tiled_conv: self == Kernels::Generic,
            no_tiled_deconv: self == Kernels::Generic,
            ..base
        }
    }
}

/// [`executor`], choosing the Conv2d and ConvTranspose2d kernels.
pub fn executor_with(
    graph: &Graph,
    t: &Tensors,
    fp16: bool,
    max_batch: usize,
    kernels: Kernels,
) -> Option<VulkanExecutor> {
    let opts = kernels.apply(VkOptions {
        max_batch,
        no_fp16: !fp16,
        ..VkOptions::default()
    });
    executor_opts(graph, t, &opts)
}

/// The process's shared context for `opts` (created on first use).
fn shared_context(opts: &VkOptions) -> Result<Arc<VkContext>, HoodError> {
    static CONTEXTS: Mutex<Vec<Arc<VkContext>>> = Mutex::new(Vec::new());
    let mut all = CONTEXTS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(c) = all.iter().find(|c| c.made_for(opts)) {
        return Ok(c.clone());
    }
    let c = Arc::new(VkContext::new(opts)?);
    all.push(c.clone());
    Ok(c)
}

/// An executor with explicit options on the process's shared context; `None` (test skipped)
/// without a Vulkan device. Options that leave the GEMM core to the plan (`gemm: None`) get
/// the fp32 core, whose numerics the op tests' bounds are for (on a tensor-core GPU the
/// plan's own choice would be the fragment core); the fragment variants set theirs.
pub fn executor_opts(graph: &Graph, t: &Tensors, opts: &VkOptions) -> Option<VulkanExecutor> {
    let opts = &VkOptions {
        gemm: opts.gemm.or(Some(hood_runtime::vulkan::GemmCore::Fma)),
        ..opts.clone()
    };
    let made = shared_context(opts)
        .and_then(|ctx| VulkanExecutor::with_context(Some(ctx), graph, &t.0, opts));
    match made {
        Ok(e) => Some(e),
        Err(HoodError::Backend { msg, .. })
            if (msg.contains("Vulkan loader") || msg.contains("no Vulkan"))
                && std::env::var("HOOD_VK_REQUIRE_DEVICE").is_err() =>
        {
            eprintln!("skipping: {msg}");
            None
        }
        Err(e) => panic!("creating the Vulkan executor: {e}"),
    }
}

/// The reference result of every value.
pub fn reference(graph: &Graph, t: &Tensors, input: &[f32], n: usize) -> Vec<Option<Buffer>> {
    reference::execute(graph, &t.weights(), input, n).expect("reference")
}

pub fn ref_f32(vals: &[Option<Buffer>], id: ValueId) -> Vec<f32> {
    vals[id]
        .as_ref()
        .and_then(|b| b.as_f32())
        .expect("f32 value")
        .to_vec()
}

pub fn ref_i32(vals: &[Option<Buffer>], id: ValueId) -> Vec<i32> {
    vals[id]
        .as_ref()
        .and_then(|b| b.as_i32())
        .expect("i32 value")
        .to_vec()
}

/// Asserts `got ≈ want` elementwise within `tol`, naming the first bad element.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], tol: hood_runtime::tolerance::Tol) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst = 0f32;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            tol.ok(g, w),
            "{what}: element {i}: gpu {g} vs reference {w} (tol {tol:?})"
        );
        worst = worst.max((g - w).abs());
    }
    let _ = worst;
}
