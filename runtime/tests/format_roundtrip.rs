//! encode / write_model → from_bytes / open give back the same model, bit for bit; the writer is
//! deterministic, atomic, and refuses models the reader would refuse, leaving no file behind.

use hood_runtime::format::{encode, stage_model, write_model};
use hood_runtime::ops::{FeatureAdd, Op};
use hood_runtime::reference::{self, Buffer};
use hood_runtime::tensor::{DType, HostTensor};
use hood_runtime::testing::{tiny_model, TINY_GOLDEN_N};
use hood_runtime::{HoodError, Model};
use std::path::Path;

fn bits(t: &[(String, HostTensor)]) -> Vec<(String, DType, Vec<usize>, Vec<u8>)> {
    t.iter()
        .map(|(n, t)| (n.clone(), t.dtype(), t.shape.clone(), t.to_le_bytes()))
        .collect()
}

fn assert_same(m: &Model, seed: u64) {
    let (meta, graph, tensors) = tiny_model(seed);
    assert_eq!(m.meta, meta);
    assert_eq!(m.graph, graph);
    assert_eq!(bits(&m.host_tensors()), bits(&tensors));
    for (name, t) in &tensors {
        let v = m.tensor(name).unwrap();
        assert_eq!(
            (v.name, v.dtype, v.shape),
            (name.as_str(), t.dtype(), &t.shape[..])
        );
        assert_eq!(v.bytes, &t.to_le_bytes()[..]);
        assert_eq!(
            v.bytes.as_ptr() as usize % 64,
            0,
            "{name} not 64-byte aligned"
        );
    }
    assert!(m.tensor("nope").is_none());
}

fn dir_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn encode_then_from_bytes() {
    let (meta, graph, tensors) = tiny_model(1);
    let bytes = encode(&meta, &graph, &tensors).unwrap();
    assert_eq!(
        bytes,
        encode(&meta, &graph, &tensors).unwrap(),
        "encode is deterministic"
    );
    assert_ne!(bytes, encode(&tiny_model(2).0, &graph, &tensors).unwrap());
    let m = Model::from_bytes(bytes.clone(), "mem.hood").unwrap();
    assert!(!m.is_mapped());
    assert_eq!(m.path(), Path::new("mem.hood"));
    assert_eq!(m.file_size(), bytes.len() as u64);
    assert_eq!(m.version(), (1, 0));
    assert_eq!(m.as_bytes(), &bytes[..]);
    // Owned bytes are not guaranteed 64-aligned in memory, so check contents only here.
    assert_eq!(bits(&m.host_tensors()), bits(&tensors));
    assert_eq!(m.meta, meta);
    assert_eq!(m.graph, graph);
    // Re-encoding what was read reproduces the file.
    assert_eq!(encode(&m.meta, &m.graph, &m.host_tensors()).unwrap(), bytes);
}

#[test]
fn write_model_then_open_mmap() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.hood");
    let (meta, graph, tensors) = tiny_model(5);
    write_model(&path, &meta, &graph, &tensors).unwrap();
    assert_eq!(
        dir_names(dir.path()),
        ["tiny.hood"],
        "no temporary file left"
    );
    let m = Model::open(&path).unwrap();
    assert!(m.is_mapped());
    assert_eq!(m.path(), path);
    assert_eq!(m.file_size(), std::fs::metadata(&path).unwrap().len());
    assert_same(&m, 5);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        encode(&meta, &graph, &tensors).unwrap()
    );

    // Overwriting replaces the file atomically; the open mapping keeps the old contents.
    let (meta2, graph2, tensors2) = tiny_model(6);
    write_model(&path, &meta2, &graph2, &tensors2).unwrap();
    assert_same(&m, 5);
    assert_same(&Model::open(&path).unwrap(), 6);
    assert_eq!(dir_names(dir.path()), ["tiny.hood"]);
}

/// A staged model is a synced temporary file beside the destination: committed, it replaces
/// the destination; dropped, it disappears and the destination keeps its old contents.
#[test]
fn a_staged_model_lands_only_when_committed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.hood");
    let (meta, graph, tensors) = tiny_model(5);
    write_model(&path, &meta, &graph, &tensors).unwrap();
    let (meta2, graph2, tensors2) = tiny_model(6);
    let staged = stage_model(&path, &meta2, &graph2, &tensors2).unwrap();
    let names = dir_names(dir.path());
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names
        .iter()
        .any(|n| n.starts_with(".tiny.hood.") && n.ends_with(".tmp")));
    drop(staged);
    assert_eq!(dir_names(dir.path()), ["tiny.hood"]);
    assert_same(&Model::open(&path).unwrap(), 5);
    stage_model(&path, &meta2, &graph2, &tensors2)
        .unwrap()
        .commit()
        .unwrap();
    assert_eq!(dir_names(dir.path()), ["tiny.hood"]);
    assert_same(&Model::open(&path).unwrap(), 6);
}

#[test]
fn parameters_weights_and_golden() {
    let (meta, graph, tensors) = tiny_model(9);
    let m = Model::from_bytes(encode(&meta, &graph, &tensors).unwrap(), "t.hood").unwrap();
    // conv 4·3·3·3 + 4, head 5·4 + 5, fc1 6·4 + 6·5 + 6, deconv 6·3·8·8; golden excluded.
    assert_eq!(m.parameter_count(), 108 + 4 + 20 + 5 + 24 + 30 + 6 + 1152);
    assert_eq!(m.tensors().count(), 12);
    let w = m.weights();
    assert!(w.get("dec.deconv.weight").is_ok());
    assert!(
        w.get("golden.input").is_err(),
        "weights() holds only what the graph uses"
    );
    // The stored golden outputs are what the reference computes from the loaded weights.
    let g = m.meta.golden.clone().unwrap();
    let input = m.tensor(&g.input).unwrap().to_f32();
    let out = reference::execute(&m.graph, &w, &input, TINY_GOLDEN_N).unwrap();
    let o = &m.graph.outputs;
    assert_eq!(
        out[o.logits],
        Some(Buffer::F32(m.tensor(&g.logits).unwrap().to_f32()))
    );
    assert_eq!(
        out[o.class],
        Some(Buffer::I32(m.tensor(&g.classes).unwrap().to_i32().unwrap()))
    );
    assert_eq!(
        out[o.score],
        Some(Buffer::F32(m.tensor(&g.scores).unwrap().to_f32()))
    );
}

#[test]
fn invalid_models_are_refused_and_leave_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.hood");
    let (meta, graph, tensors) = tiny_model(2);
    let refuse = |meta: &_, graph: &_, tensors: &[(String, HostTensor)], needle: &str| {
        let e = write_model(&path, meta, graph, tensors).unwrap_err();
        let s = e.to_string();
        assert!(matches!(e, HoodError::Format { .. }), "{s}");
        assert!(
            s.contains(needle) && s.contains("out.hood"),
            "{s:?} should contain {needle:?}"
        );
        assert!(encode(meta, graph, tensors).is_err());
        assert!(
            dir_names(dir.path()).is_empty(),
            "left {:?}",
            dir_names(dir.path())
        );
    };

    let mut m = meta.clone();
    m.classes.count = 6;
    m.classes.names = None;
    refuse(&m, &graph, &tensors, "metadata says 6 classes");
    let mut m = meta.clone();
    m.input.channels = 0;
    refuse(&m, &graph, &tensors, "metadata: input channels 0");
    let mut g = graph.clone();
    g.outputs.class = g.outputs.logits;
    refuse(&meta, &g, &tensors, "graph: output class must be I32");
    let mut t = tensors.clone();
    t.retain(|(n, _)| n != "head.bias");
    refuse(&meta, &graph, &t, "'head.bias' is not in the tensor table");
    let mut t = tensors.clone();
    t.push(("head.bias".into(), HostTensor::f32(vec![1], vec![0.0])));
    refuse(&meta, &graph, &t, "appears twice");
    let mut t = tensors.clone();
    t.push(("ragged".into(), HostTensor::f32(vec![2, 2], vec![0.0; 3])));
    refuse(&meta, &graph, &t, "needs 4 values, it has 3");
    let mut t = tensors.clone();
    t.push(("".into(), HostTensor::f32(vec![1], vec![0.0])));
    refuse(&meta, &graph, &t, "name is 0 bytes");
    let mut t = tensors.clone();
    t.push(("x".repeat(257), HostTensor::f32(vec![1], vec![0.0])));
    refuse(&meta, &graph, &t, "name is 257 bytes");
    let mut t = tensors.clone();
    t.push(("rank5".into(), HostTensor::f32(vec![1; 5], vec![0.0])));
    refuse(&meta, &graph, &t, "rank 5");
    let mut t = tensors.clone();
    t.push(("zero".into(), HostTensor::f32(vec![0], vec![])));
    refuse(&meta, &graph, &t, "dims [0]");
    let mut t = tensors.clone();
    let at = t.iter().position(|(n, _)| n == "golden.scores").unwrap();
    t[at].1 = HostTensor::f32(vec![TINY_GOLDEN_N + 1], vec![0.0; TINY_GOLDEN_N + 1]);
    refuse(&meta, &graph, &t, "golden scores tensor");
}

#[test]
fn unreadable_attributes_are_caught_by_the_read_back() {
    // The decoder's transposed conv gets a forwarded feature (the input has the same shape).
    let (meta, mut graph, tensors) = tiny_model(8);
    let input = graph.input;
    let node = graph
        .nodes
        .iter_mut()
        .find(|n| matches!(n.op, Op::ConvTranspose2d(_)))
        .unwrap();
    node.inputs.push(input);
    let set = |graph: &mut hood_runtime::graph::Graph, scale: f32| {
        for n in &mut graph.nodes {
            if let Op::ConvTranspose2d(c) = &mut n.op {
                c.add = Some(FeatureAdd { scale, shift: 0.5 });
            }
        }
    };
    set(&mut graph, 0.25);
    // Golden outputs are now stale, which the format does not check; the file is valid.
    let m = Model::from_bytes(encode(&meta, &graph, &tensors).unwrap(), "add.hood").unwrap();
    assert_eq!(m.graph, graph);
    // NaN passes graph validation but JSON has no NaN: the writer must not emit the file.
    set(&mut graph, f32::NAN);
    let e = encode(&meta, &graph, &tensors).unwrap_err().to_string();
    assert!(e.contains("does not read back"), "{e}");
}

#[test]
fn io_failures_name_the_path_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (meta, graph, tensors) = tiny_model(4);

    let missing = dir.path().join("no-such-dir").join("m.hood");
    match write_model(&missing, &meta, &graph, &tensors).unwrap_err() {
        HoodError::Io { path, .. } => assert_eq!(path, missing),
        e => panic!("{e}"),
    }
    assert!(dir_names(dir.path()).is_empty());

    // The target is an existing directory: the rename fails, the temp file is removed.
    let target = dir.path().join("taken.hood");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("inside"), b"x").unwrap();
    let e = write_model(&target, &meta, &graph, &tensors).unwrap_err();
    assert!(e.to_string().contains("taken.hood"), "{e}");
    assert_eq!(dir_names(dir.path()), ["taken.hood"]);
    assert_eq!(dir_names(&target), ["inside"]);

    // A failed write leaves an existing file untouched.
    let keep = dir.path().join("keep.hood");
    write_model(&keep, &meta, &graph, &tensors).unwrap();
    let before = std::fs::read(&keep).unwrap();
    let mut bad = meta.clone();
    bad.fw_layers = 9;
    assert!(write_model(&keep, &bad, &graph, &tensors).is_err());
    assert_eq!(std::fs::read(&keep).unwrap(), before);
    assert_eq!(dir_names(dir.path()), ["keep.hood", "taken.hood"]);
}
