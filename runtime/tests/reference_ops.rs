//! The CPU reference ops against PyTorch.
//!
//! Fixture: `tests/fixtures/ops/op_cases.json`, written by `tests/fixtures/gen_op_cases.py`
//! (fixed seed, recorded in the file with the torch version; each case carries the line of torch
//! that produced its expected values, computed in float64 on fp16-exact inputs and weights).
//!
//! Every case becomes a small [`Graph`] run by [`reference::execute`], so the executor's dispatch
//! (shape plumbing, multi-input ops, chaining) is covered, not only the per-op loops. `execute`
//! takes one graph input; ops with several inputs (residual, forwarded feature, `Add`,
//! `ClassLinear`) get them from one packed input vector: a `Linear` "selector" node with a 0/1
//! weight (exact in f32) cuts each input out of it, and a class index is packed as a one-hot row
//! turned back into an i32 by an `Argmax` node. Outputs are compared with
//! [`REF_OP_VS_TORCH`] (|got − expected| ≤ abs + rel·|expected|); class indices must match exactly.

use half::f16;
use hood_runtime::graph::{infer, Graph, GraphOutputs, Node, ValueId, ValueInfo, ValueType};
use hood_runtime::ops::{Linear, Op, OpKind};
use hood_runtime::reference::{self, Buffer};
use hood_runtime::tensor::DType;
use hood_runtime::tolerance::{Tol, REF_OP_VS_TORCH};
use hood_runtime::weights::Weights;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/ops/op_cases.json"
);
const GENERATOR: &str = "tests/fixtures/gen_op_cases.py";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fixture {
    generator: String,
    torch_version: String,
    seed: u64,
    #[allow(dead_code)]
    note: String,
    cases: Vec<Case>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    /// The op name of a single-op case, or "block".
    op: String,
    batch: usize,
    nodes: Vec<CaseNode>,
    inputs: Vec<NamedValues>,
    weights: Vec<NamedTensor>,
    expected: Vec<NamedValues>,
    torch: String,
    #[serde(default)]
    graph_outputs: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseNode {
    op: String,
    id: u16,
    attrs: serde_json::Value,
    inputs: Vec<String>,
    outputs: Vec<String>,
    /// Declared shapes of flexible outputs (e.g. fc1's `[lat]` as `[lat, 1, 1]`).
    #[serde(default)]
    reshape: Option<Vec<Vec<usize>>>,
}

/// A value for the whole batch; `shape` is per image.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct NamedValues {
    name: String,
    dtype: String,
    shape: Vec<usize>,
    values: Vec<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct NamedTensor {
    name: String,
    shape: Vec<usize>,
    values: Vec<f64>,
}

fn load() -> Fixture {
    let bytes =
        std::fs::read(FIXTURE).unwrap_or_else(|e| panic!("{FIXTURE}: {e} (run {GENERATOR})"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{FIXTURE}: {e}"))
}

fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

fn value_type(dtype: &str) -> Result<ValueType, String> {
    match dtype {
        "f32" => Ok(ValueType::F32),
        "i32" => Ok(ValueType::I32),
        other => Err(format!("unknown dtype '{other}'")),
    }
}

/// Checks what the generator promises: consistent sizes, fp16-exact weights and f32 inputs.
fn check_case_data(case: &Case) -> Result<(), String> {
    // Checked on the f32 the reference receives: serde_json's default float parsing may land one
    // f64 ulp off the decimal, which the rounding to f32 removes again.
    let fp16_exact = |v: f64| f16::from_f32(v as f32).to_f32() == v as f32;
    for t in &case.weights {
        if t.values.len() != numel(&t.shape) {
            return Err(format!(
                "weight '{}' has {} values for shape {:?}",
                t.name,
                t.values.len(),
                t.shape
            ));
        }
        if let Some(v) = t.values.iter().find(|&&v| !fp16_exact(v)) {
            return Err(format!(
                "weight '{}' holds {v}, not exactly representable in fp16",
                t.name
            ));
        }
    }
    for v in case.inputs.iter().chain(&case.expected) {
        if v.values.len() != case.batch * numel(&v.shape) {
            return Err(format!(
                "'{}' has {} values for batch {} × {:?}",
                v.name,
                v.values.len(),
                case.batch,
                v.shape
            ));
        }
        value_type(&v.dtype)?;
    }
    for v in &case.inputs {
        if v.dtype == "f32" && v.values.iter().any(|&x| !fp16_exact(x)) {
            return Err(format!("input '{}' is not fp16-exact", v.name));
        }
        if v.dtype == "i32"
            && (numel(&v.shape) != 1 || v.values.iter().any(|&x| x < 0.0 || x.fract() != 0.0))
        {
            return Err(format!(
                "class input '{}' must be one non-negative integer per image",
                v.name
            ));
        }
    }
    Ok(())
}

/// A case turned into a graph, its weights and its packed input batch.
struct Built {
    graph: Graph,
    weights: Weights,
    input: Vec<f32>,
    ids: HashMap<String, ValueId>,
}

fn build(case: &Case) -> Result<Built, String> {
    let mut shapes: HashMap<String, Vec<usize>> = HashMap::new();
    let mut weights = Weights::new();
    for t in &case.weights {
        shapes.insert(t.name.clone(), t.shape.clone());
        weights.insert(t.name.clone(), t.values.iter().map(|&v| v as f32).collect());
    }
    let mut values: Vec<ValueInfo> = Vec::new();
    let mut nodes: Vec<Node> = Vec::new();
    let mut ids: HashMap<String, ValueId> = HashMap::new();
    let n = case.batch;
    let input: Vec<f32>;

    let single_f32 = case.inputs.len() == 1 && case.inputs[0].dtype == "f32";
    if single_f32 {
        let x = &case.inputs[0];
        values.push(ValueInfo {
            name: x.name.clone(),
            dtype: ValueType::F32,
            shape: x.shape.clone(),
        });
        ids.insert(x.name.clone(), 0);
        input = x.values.iter().map(|&v| v as f32).collect();
    } else {
        // Segments of the packed per-image vector: f32 inputs as they are, class indices one-hot.
        let seg_len: Vec<usize> = case
            .inputs
            .iter()
            .map(|v| match v.dtype.as_str() {
                "i32" => v.values.iter().fold(0.0f64, |a, &b| a.max(b)) as usize + 1,
                _ => numel(&v.shape),
            })
            .collect();
        let total: usize = seg_len.iter().sum();
        let mut packed = vec![0f32; n * total];
        let mut off = 0;
        for (v, &len) in case.inputs.iter().zip(&seg_len) {
            for b in 0..n {
                let row = &mut packed[b * total + off..b * total + off + len];
                if v.dtype == "i32" {
                    row[v.values[b] as usize] = 1.0;
                } else {
                    for (d, &s) in row.iter_mut().zip(&v.values[b * len..(b + 1) * len]) {
                        *d = s as f32;
                    }
                }
            }
            off += len;
        }
        input = packed;
        values.push(ValueInfo {
            name: "packed".into(),
            dtype: ValueType::F32,
            shape: vec![total],
        });
        let mut off = 0;
        for (v, &len) in case.inputs.iter().zip(&seg_len) {
            let wname = format!("__select.{}", v.name);
            let mut sel = vec![0f32; len * total];
            for r in 0..len {
                sel[r * total + off + r] = 1.0;
            }
            weights.insert(wname.clone(), sel);
            shapes.insert(wname.clone(), vec![len, total]);
            let op = Op::Linear(Linear {
                cin: total,
                cout: len,
                weight: wname,
                bias: None,
                relu: false,
            });
            let (f32_name, f32_shape) = if v.dtype == "i32" {
                (format!("__onehot.{}", v.name), vec![len])
            } else {
                (v.name.clone(), v.shape.clone())
            };
            values.push(ValueInfo {
                name: f32_name.clone(),
                dtype: ValueType::F32,
                shape: f32_shape,
            });
            let sel_out = values.len() - 1;
            nodes.push(Node {
                op,
                inputs: vec![0],
                outputs: vec![sel_out],
            });
            ids.insert(f32_name, sel_out);
            if v.dtype == "i32" {
                values.push(ValueInfo {
                    name: v.name.clone(),
                    dtype: ValueType::I32,
                    shape: vec![],
                });
                nodes.push(Node {
                    op: Op::Argmax,
                    inputs: vec![sel_out],
                    outputs: vec![values.len() - 1],
                });
                ids.insert(v.name.clone(), values.len() - 1);
            }
            off += len;
        }
    }

    let lookup = |name: &str| shapes.get(name).map(|s| (DType::F16, s.clone()));
    for (i, cn) in case.nodes.iter().enumerate() {
        let ctx = |m: String| format!("node {i} ({}): {m}", cn.op);
        let op = Op::from_id_attrs(cn.id, cn.attrs.clone()).map_err(|e| ctx(e.to_string()))?;
        if op.kind().name() != cn.op {
            return Err(ctx(format!("id {} is '{}'", cn.id, op.kind().name())));
        }
        // The fixture's attrs must be exactly the canonical serialised form.
        if op.attrs_json() != cn.attrs {
            return Err(ctx(format!(
                "attrs {} re-serialise as {}",
                cn.attrs,
                op.attrs_json()
            )));
        }
        let in_ids: Vec<ValueId> = cn
            .inputs
            .iter()
            .map(|name| {
                ids.get(name)
                    .copied()
                    .ok_or_else(|| ctx(format!("unknown value '{name}'")))
            })
            .collect::<Result<_, _>>()?;
        if in_ids.len() != op.num_inputs() || cn.outputs.len() != op.num_outputs() {
            return Err(ctx("wrong number of inputs or outputs".into()));
        }
        let ins: Vec<&ValueInfo> = in_ids.iter().map(|&v| &values[v]).collect();
        let outs = infer(&op, &ins, &lookup).map_err(|e| ctx(e.to_string()))?;
        let mut out_ids = Vec::new();
        for (j, ((dtype, shape), name)) in outs.into_iter().zip(&cn.outputs).enumerate() {
            let shape = match cn.reshape.as_ref().and_then(|r| r.get(j)) {
                Some(r) if numel(r) == numel(&shape) => r.clone(),
                Some(r) => return Err(ctx(format!("cannot reshape {shape:?} to {r:?}"))),
                None => shape,
            };
            if ids.contains_key(name) {
                return Err(ctx(format!("value '{name}' defined twice")));
            }
            values.push(ValueInfo {
                name: name.clone(),
                dtype,
                shape,
            });
            ids.insert(name.clone(), values.len() - 1);
            out_ids.push(values.len() - 1);
        }
        nodes.push(Node {
            op,
            inputs: in_ids,
            outputs: out_ids,
        });
    }

    let mut outputs = GraphOutputs {
        logits: 0,
        class: 0,
        score: 0,
        heatmap: 0,
    };
    if let Some(go) = &case.graph_outputs {
        let get = |k: &str| {
            go.get(k)
                .and_then(|name| ids.get(name).copied())
                .ok_or_else(|| format!("graph output '{k}' not found"))
        };
        outputs = GraphOutputs {
            logits: get("logits")?,
            class: get("class")?,
            score: get("score")?,
            heatmap: get("heatmap")?,
        };
    }
    let graph = Graph {
        values,
        input: 0,
        outputs,
        nodes,
    };
    if case.graph_outputs.is_some() {
        graph
            .validate(lookup)
            .map_err(|e| format!("Graph::validate: {e}"))?;
    }
    Ok(Built {
        graph,
        weights,
        input,
        ids,
    })
}

/// The largest error of one compared value, and the first element beyond tolerance.
#[derive(Debug, Default, Clone)]
struct Report {
    max_abs: f64,
    /// max over elements of |got − expected| / (abs + rel·|expected|): ≤ 1 passes.
    max_ratio: f64,
    failures: Vec<String>,
    compared: usize,
}

fn run_case(case: &Case, tol: Tol) -> Result<Report, String> {
    let built = build(case)?;
    let values = reference::execute(&built.graph, &built.weights, &built.input, case.batch)
        .map_err(|e| e.to_string())?;
    let mut rep = Report::default();
    // Inputs recovered by the selector nodes must be exact (the packing is part of the harness).
    let mut checks: Vec<(&NamedValues, bool)> = Vec::new();
    if case.inputs.len() > 1 || case.inputs[0].dtype != "f32" {
        checks.extend(case.inputs.iter().map(|v| (v, true)));
    }
    checks.extend(case.expected.iter().map(|v| (v, false)));
    for (exp, exact) in checks {
        let id = *built
            .ids
            .get(&exp.name)
            .ok_or_else(|| format!("expected value '{}' is not in the graph", exp.name))?;
        let info = &built.graph.values[id];
        let flexible = info.numel() == numel(&exp.shape) && exp.shape.len() <= 1;
        if info.dtype != value_type(&exp.dtype)? || (info.shape != exp.shape && !flexible) {
            return Err(format!(
                "'{}': graph value is {:?} {:?}, torch gave {} {:?}",
                exp.name, info.dtype, info.shape, exp.dtype, exp.shape
            ));
        }
        let got: Vec<f64> = match values[id].as_ref() {
            Some(Buffer::F32(v)) => v.iter().map(|&x| x as f64).collect(),
            Some(Buffer::I32(v)) => v.iter().map(|&x| x as f64).collect(),
            None => return Err(format!("'{}' was never computed", exp.name)),
        };
        if got.len() != exp.values.len() {
            return Err(format!(
                "'{}': {} values, expected {}",
                exp.name,
                got.len(),
                exp.values.len()
            ));
        }
        for (i, (&g, &e)) in got.iter().zip(&exp.values).enumerate() {
            let err = (g - e).abs();
            let ok = if exact || exp.dtype == "i32" {
                // As f32: the parsed f64 of the fixture's decimal may be one f64 ulp off.
                g as f32 == e as f32
            } else {
                tol.ok(g as f32, e as f32)
            };
            if !exact {
                let bound = tol.abs as f64 + tol.rel as f64 * e.abs();
                rep.max_abs = rep.max_abs.max(err);
                rep.max_ratio = rep.max_ratio.max(err / bound);
                rep.compared += 1;
            }
            if !ok {
                let per_image = exp.values.len() / case.batch;
                rep.failures.push(format!(
                    "case {} value '{}' index {i} (image {}, element {}): got {g:.9}, expected {e:.9}, |diff| {err:.3e}",
                    case.name,
                    exp.name,
                    i / per_image.max(1),
                    i % per_image.max(1)
                ));
            }
        }
    }
    Ok(rep)
}

#[test]
fn reference_ops_match_torch() {
    let fx = load();
    assert_eq!(fx.generator, GENERATOR);
    eprintln!(
        "{FIXTURE}: {} cases, torch {}, seed {}",
        fx.cases.len(),
        fx.torch_version,
        fx.seed
    );

    let mut per_op: BTreeMap<String, (usize, Report)> = BTreeMap::new();
    let mut failures: Vec<String> = Vec::new();
    let mut names = std::collections::HashSet::new();
    for case in &fx.cases {
        assert!(
            names.insert(case.name.clone()),
            "duplicate case name {}",
            case.name
        );
        let result = check_case_data(case).and_then(|()| {
            if case.op != "block" {
                let ok = case.nodes.len() == 1 && case.nodes[0].op == case.op;
                if !ok {
                    return Err(format!(
                        "single-op case '{}' must have one {} node",
                        case.name, case.op
                    ));
                }
            }
            run_case(case, REF_OP_VS_TORCH)
        });
        match result {
            Ok(rep) => {
                let entry = per_op.entry(case.op.clone()).or_default();
                entry.0 += 1;
                entry.1.max_abs = entry.1.max_abs.max(rep.max_abs);
                entry.1.max_ratio = entry.1.max_ratio.max(rep.max_ratio);
                entry.1.compared += rep.compared;
                if !rep.failures.is_empty() {
                    failures.push(format!(
                        "{} ({} elements off; torch: {})",
                        case.name,
                        rep.failures.len(),
                        case.torch
                    ));
                    failures.extend(rep.failures.into_iter().take(8).map(|f| format!("    {f}")));
                }
            }
            Err(e) => failures.push(format!("{}: {e}", case.name)),
        }
    }

    eprintln!(
        "{:<18} {:>5} {:>9} {:>12} {:>10}",
        "op", "cases", "elements", "max |err|", "err/tol"
    );
    for (op, (count, rep)) in &per_op {
        eprintln!(
            "{op:<18} {count:>5} {:>9} {:>12.3e} {:>10.4}",
            rep.compared, rep.max_abs, rep.max_ratio
        );
    }
    assert!(
        failures.is_empty(),
        "CPU reference differs from torch:\n{}",
        failures.join("\n")
    );

    for kind in OpKind::ALL {
        let count = per_op.get(kind.name()).map_or(0, |e| e.0);
        assert!(
            count >= 3,
            "op {} has {count} cases in {FIXTURE}, want at least 3",
            kind.name()
        );
    }
    let blocks = per_op.get("block").map_or(0, |e| e.0);
    assert!(blocks >= 2, "only {blocks} block cases ran");
    let validated = fx
        .cases
        .iter()
        .filter(|c| c.graph_outputs.is_some())
        .count();
    assert!(validated >= 1, "no block case exercises Graph::validate");
}

/// Negative control: the harness must be able to fail. Moving one weight of a conv case by 1e-2
/// has to push some output outside `REF_OP_VS_TORCH`.
#[test]
fn perturbed_conv_weight_is_detected() {
    let fx = load();
    let mut case = fx
        .cases
        .into_iter()
        .find(|c| c.op == "conv2d")
        .expect("the fixture has conv2d cases");
    let clean = run_case(&case, REF_OP_VS_TORCH).expect("clean case runs");
    assert!(
        clean.failures.is_empty(),
        "clean case {} must pass: {:?}",
        case.name,
        clean.failures
    );
    let w = case
        .weights
        .iter_mut()
        .find(|t| t.name == "w")
        .expect("conv weight 'w'");
    w.values[0] += 1e-2;
    let rep = run_case(&case, REF_OP_VS_TORCH).expect("perturbed case runs");
    assert!(
        !rep.failures.is_empty(),
        "perturbing {}'s weight by 1e-2 went unnoticed (max |err| {:.3e})",
        case.name,
        rep.max_abs
    );
}
