//! docs/FORMAT.md is the contract: files built byte by byte from it (tests/format_doc, no crate
//! writer, no crate serialisers) must load, the crate writer's output must parse with the doc
//! parser, and layouts the crate never writes must be accepted or rejected as the document says.

mod format_doc;

use format_doc as doc;
use hood_runtime::reference;
use hood_runtime::tensor::DType;
use hood_runtime::{HoodError, Model};
use serde_json::{json, Value};

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// IEEE binary16 bits of values that are exact in f16 (k/8 for small integers k).
fn f16_bytes(v: &[f32]) -> Vec<u8> {
    v.iter()
        .flat_map(|&x| half::f16::from_f32(x).to_le_bytes())
        .collect()
}

fn vals(n: usize, mul: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * mul) % 17) as f32 / 8.0 - 1.0)
        .collect()
}

/// META of FORMAT.md §4 for a `[3, 4, 4]`, 2-class model (optional fields left out).
fn meta_json() -> Value {
    json!({
        "name": "doc-model",
        "family": "custom",
        "input": { "height": 4, "width": 4, "channels": 3,
                   "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5] },
        "classes": { "count": 2 },
        "fw_layers": 1,
        "score": { "definition": "mean_hw_max_c_abs" },
        "source": { "files": [ { "name": "ckpt.pt", "sha256": "00" } ] },
        "converter": { "name": "format_spec.rs", "version": "1" }
    })
}

/// GRAPH of FORMAT.md §5: gap → linear (logits) → argmax; class_linear → convT → heat_score.
fn graph_json() -> Value {
    json!({
        "values": [
            { "name": "input", "dtype": "f32", "shape": [3, 4, 4] },
            { "name": "z", "dtype": "f32", "shape": [3] },
            { "name": "logits", "dtype": "f32", "shape": [2] },
            { "name": "class", "dtype": "i32", "shape": [] },
            { "name": "lat", "dtype": "f32", "shape": [3, 1, 1] },
            { "name": "h", "dtype": "f32", "shape": [3, 4, 4] },
            { "name": "score", "dtype": "f32", "shape": [] },
            { "name": "heatmap", "dtype": "f32", "shape": [4, 4] }
        ],
        "input": 0,
        "outputs": { "logits": 2, "class": 3, "score": 6, "heatmap": 7 },
        "nodes": [
            { "op": 6, "name": "global_avg_pool", "inputs": [0], "outputs": [1], "attrs": {} },
            { "op": 3, "name": "linear", "inputs": [1], "outputs": [2],
              "attrs": { "cin": 3, "cout": 2, "weight": "head.w", "bias": "head.b" } },
            { "op": 4, "name": "argmax", "inputs": [2], "outputs": [3], "attrs": null },
            { "op": 5, "name": "class_linear", "inputs": [1, 3], "outputs": [4],
              "attrs": { "cin": 3, "classes": 2, "cout": 3, "weight": "fc1.w",
                         "class_weight": "fc1.c" } },
            { "op": 2, "name": "conv_transpose2d", "inputs": [4], "outputs": [5],
              "attrs": { "cin": 3, "cout": 3, "k": 4, "stride": 1, "pad": 0,
                         "weight": "dec.w", "act": "tanh" } },
            { "op": 10, "name": "heat_score", "inputs": [5], "outputs": [6, 7], "attrs": {} }
        ]
    })
}

/// The doc model's tensors: (name, dtype code, dims, bytes). `extra` is unreferenced (allowed).
fn tensors() -> Vec<(&'static str, u8, Vec<u32>, Vec<u8>)> {
    vec![
        (
            "head.w",
            2,
            vec![2, 3],
            f32_bytes(&[0.5, -1.0, 0.25, 2.0, 0.0, -0.75]),
        ),
        ("head.b", 1, vec![2], f16_bytes(&[0.125, -0.5])),
        ("fc1.w", 1, vec![3, 3], f16_bytes(&vals(9, 3))),
        ("fc1.c", 2, vec![3, 2], f32_bytes(&vals(6, 5))),
        ("dec.w", 1, vec![3, 3, 4, 4], f16_bytes(&vals(144, 7))),
        ("extra", 3, vec![], 7i32.to_le_bytes().to_vec()),
    ]
}

fn sections_from(
    meta: &Value,
    graph: &Value,
    t: &[(&str, u8, Vec<u32>, Vec<u8>)],
) -> Vec<(u32, Vec<u8>)> {
    let (entries, data) = doc::pack_tensors(t);
    vec![
        (doc::META, serde_json::to_vec_pretty(meta).unwrap()),
        (doc::GRAPH, serde_json::to_vec(graph).unwrap()),
        (doc::TENSOR_TABLE, doc::tensor_table(&entries)),
        (doc::TENSOR_DATA, data),
    ]
}

fn doc_file() -> Vec<u8> {
    doc::assemble(&sections_from(&meta_json(), &graph_json(), &tensors()))
}

fn load(bytes: Vec<u8>) -> Result<Model, HoodError> {
    Model::from_bytes(bytes, "doc.hood")
}

fn err(bytes: Vec<u8>) -> String {
    match load(bytes) {
        Ok(_) => panic!("file was accepted"),
        Err(e) => e.to_string(),
    }
}

#[track_caller]
fn rejects(bytes: Vec<u8>, needle: &str) {
    let e = err(bytes);
    assert!(e.contains(needle), "error {e:?} should contain {needle:?}");
    assert!(
        e.starts_with("doc.hood: "),
        "error {e:?} should name the file"
    );
}

#[test]
fn crc_is_the_zlib_crc32() {
    assert_eq!(doc::crc32(b"123456789"), 0xCBF4_3926);
    let f = doc_file();
    assert_eq!(doc::crc32(&f), crc32fast::hash(&f));
}

#[test]
fn file_written_from_the_document_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("doc.hood");
    std::fs::write(&path, doc_file()).unwrap();
    let m = Model::open(&path).unwrap();
    assert!(m.is_mapped());
    assert_eq!(m.version(), (1, 0));
    assert_eq!(m.meta.name, "doc-model");
    assert_eq!(m.meta.classes.count, 2);
    assert_eq!(m.meta.threshold, None);
    assert_eq!(m.graph.nodes.len(), 6);
    assert_eq!(m.tensors().count(), 6);
    let head = m.tensor("head.w").unwrap();
    assert_eq!((head.dtype, head.shape), (DType::F32, &[2usize, 3][..]));
    assert_eq!(head.to_f32(), vec![0.5, -1.0, 0.25, 2.0, 0.0, -0.75]);
    assert_eq!(m.tensor("head.b").unwrap().to_f32(), vec![0.125, -0.5]);
    assert_eq!(m.tensor("dec.w").unwrap().to_f32(), vals(144, 7));
    assert_eq!(m.tensor("extra").unwrap().to_i32(), Some(vec![7]));
    assert_eq!(m.parameter_count(), 6 + 2 + 9 + 6 + 144);

    // Logits by hand: z = per-channel mean, logits = W·z + b.
    let x: Vec<f32> = (0..48).map(|i| (i % 5) as f32 * 0.25 - 0.5).collect();
    let z: Vec<f32> = (0..3)
        .map(|c| x[c * 16..(c + 1) * 16].iter().sum::<f32>() / 16.0)
        .collect();
    let w = [0.5, -1.0, 0.25, 2.0, 0.0, -0.75];
    let want = [
        w[0] * z[0] + w[1] * z[1] + w[2] * z[2] + 0.125,
        w[3] * z[0] + w[4] * z[1] + w[5] * z[2] - 0.5,
    ];
    let out = reference::execute(&m.graph, &m.weights(), &x, 1).unwrap();
    let logits = out[2].as_ref().unwrap().as_f32().unwrap();
    for (a, b) in logits.iter().zip(want) {
        assert!((a - b).abs() < 1e-6, "{logits:?} vs {want:?}");
    }
}

#[test]
fn sections_in_any_order_with_padding_are_accepted() {
    let mut s = sections_from(&meta_json(), &graph_json(), &tensors());
    s.reverse();
    let mut pos: usize = 64 + 32 * 4 + 64; // a zero gap after the table
    let mut placed = Vec::new();
    for (kind, bytes) in s {
        pos = pos.div_ceil(64) * 64 + 8;
        if kind == doc::TENSOR_DATA {
            pos = pos.div_ceil(64) * 64;
        }
        placed.push(doc::Placed {
            kind,
            offset: pos as u64,
            bytes: bytes.clone(),
        });
        pos += bytes.len() + 24;
    }
    placed.swap(1, 3); // table order differs from file order
    let f = doc::assemble_at(&placed, 0);
    let m = load(f).unwrap();
    assert_eq!(m.meta.name, "doc-model");
    assert_eq!(m.tensor("fc1.c").unwrap().to_f32(), vals(6, 5));
}

#[test]
fn crate_writer_output_parses_with_the_document() {
    let (meta, graph, tensors) = hood_runtime::testing::tiny_model(3);
    let f = hood_runtime::format::encode(&meta, &graph, &tensors).unwrap();
    let p = doc::parse(&f).unwrap();
    assert_eq!((p.major, p.minor, p.file_size), (1, 0, f.len() as u64));
    let kinds: Vec<u32> = p.sections.iter().map(|s| s.0).collect();
    assert_eq!(kinds, [1, 2, 3, 4]);
    assert_eq!(
        p.section(doc::META).0,
        192,
        "FORMAT.md §3: META right after the table"
    );
    assert_eq!(p.meta["name"], json!(meta.name));
    assert_eq!(p.meta["classes"]["count"], json!(5));
    let ops: Vec<u64> = p.graph["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["op"].as_u64().unwrap())
        .collect();
    assert_eq!(ops, [1, 6, 3, 4, 5, 2, 10]);
    let (data_off, data_len) = p.section(doc::TENSOR_DATA);
    assert_eq!(data_off % 64, 0);
    assert_eq!(p.tensors.len(), tensors.len());
    for (e, (name, t)) in p.tensors.iter().zip(&tensors) {
        assert_eq!(e.name, name.as_bytes());
        assert_eq!(e.dtype, t.dtype().code());
        assert_eq!(
            e.dims,
            t.shape.iter().map(|&d| d as u32).collect::<Vec<_>>()
        );
        let start = (data_off + e.offset) as usize;
        assert_eq!(
            &f[start..start + e.nbytes as usize],
            &t.to_le_bytes()[..],
            "{name}"
        );
        assert!(e.offset + e.nbytes <= data_len);
    }
    // Padding is zero: every byte not in header, table, a section or a tensor.
    let mut covered = vec![false; f.len() - 4];
    covered[..64 + 32 * 4].iter_mut().for_each(|c| *c = true);
    for &(kind, off, len) in &p.sections {
        if kind != doc::TENSOR_DATA {
            covered[off as usize..(off + len) as usize]
                .iter_mut()
                .for_each(|c| *c = true);
        }
    }
    for e in &p.tensors {
        let s = (data_off + e.offset) as usize;
        covered[s..s + e.nbytes as usize]
            .iter_mut()
            .for_each(|c| *c = true);
    }
    assert!(covered.iter().zip(&f).all(|(&c, &b)| c || b == 0));
}

#[test]
fn unknown_section_kinds_depend_on_the_minor_version() {
    let mut s = sections_from(&meta_json(), &graph_json(), &tensors());
    s.push((9, b"future".to_vec()));
    let placed = |minor| {
        let f = doc::assemble(&s);
        let mut f = f;
        f[10..12].copy_from_slice(&(minor as u16).to_le_bytes());
        doc::fix_crc(&mut f);
        f
    };
    rejects(placed(0), "unknown section kind");
    let m = load(placed(1)).unwrap();
    assert_eq!(m.version(), (1, 1));
    // Even optional kinds appear only once.
    s.push((9, b"again".to_vec()));
    let mut f = doc::assemble(&s);
    f[10..12].copy_from_slice(&1u16.to_le_bytes());
    doc::fix_crc(&mut f);
    rejects(f, "duplicate section");
}

#[test]
fn section_table_rules() {
    let base = sections_from(&meta_json(), &graph_json(), &tensors());
    // Duplicate and missing kinds.
    let mut dup = base.clone();
    dup.push((doc::META, serde_json::to_vec(&meta_json()).unwrap()));
    rejects(doc::assemble(&dup), "duplicate section");
    rejects(doc::assemble(&base[1..]), "missing section META");
    // Placement: misaligned, TENSOR_DATA not on 64, overlapping, inside the table.
    let place = |offsets: [u64; 4]| {
        let placed: Vec<doc::Placed> = base
            .iter()
            .zip(offsets)
            .map(|((k, b), o)| doc::Placed {
                kind: *k,
                offset: o,
                bytes: b.clone(),
            })
            .collect();
        doc::assemble_at(&placed, 0)
    };
    let canonical = doc::parse(&doc::assemble(&base)).unwrap();
    let offs: Vec<u64> = canonical.sections.iter().map(|s| s.1).collect();
    let o = [offs[0], offs[1], offs[2], offs[3]];
    load(place(o)).unwrap();
    rejects(
        place([o[0] + 4, o[1] + 8, o[2] + 8, o[3] + 64]),
        "multiple of 8",
    );
    rejects(place([o[0], o[1], o[2], o[3] + 8]), "multiple of 64");
    rejects(place([o[0], o[0] + 8, o[2], o[3]]), "overlaps");
    let mut f = place(o); // META placed inside the section table
    f[64 + 8..64 + 16].copy_from_slice(&128u64.to_le_bytes());
    doc::fix_crc(&mut f);
    rejects(f, "outside");
    // Non-zero padding between sections.
    let mut f = place([o[0], o[1] + 64, o[2] + 64, o[3] + 128]);
    f[o[1] as usize + 3] = 0x20;
    doc::fix_crc(&mut f);
    rejects(f, "padding");
}

#[test]
fn tensor_table_rules() {
    let meta = meta_json();
    let graph = graph_json();
    let mut t = tensors();
    t[5].0 = "head.b";
    rejects(
        doc::assemble(&sections_from(&meta, &graph, &t)),
        "duplicate tensor name",
    );

    let build = |patch: &dyn Fn(&mut Vec<doc::Entry>)| {
        let (mut entries, data) = doc::pack_tensors(&tensors());
        patch(&mut entries);
        doc::assemble(&[
            (doc::META, serde_json::to_vec(&meta).unwrap()),
            (doc::GRAPH, serde_json::to_vec(&graph).unwrap()),
            (doc::TENSOR_TABLE, doc::tensor_table(&entries)),
            (doc::TENSOR_DATA, data),
        ])
    };
    rejects(build(&|e| e[1].offset = e[0].offset), "overlaps");
    rejects(build(&|e| e[4].offset += 64 * 100), "outside TENSOR_DATA");
    rejects(build(&|e| e[4].offset += 32), "multiple of 64");
    rejects(build(&|e| e[0].nbytes += 4), "does not match");
    rejects(build(&|e| e[0].name = vec![0xC3, 0x28]), "not UTF-8");
    rejects(build(&|e| e[0].dtype = 7), "unknown dtype");
    rejects(build(&|e| e[5].dims = vec![1, 1, 1, 1, 1]), "rank 5");
    rejects(build(&|e| e[0].name = vec![b'x'; 257]), "name length 257");
    // Trailing bytes after the last entry.
    let (entries, data) = doc::pack_tensors(&tensors());
    let mut table = doc::tensor_table(&entries);
    table.extend_from_slice(&[0; 8]);
    let f = doc::assemble(&[
        (doc::META, serde_json::to_vec(&meta).unwrap()),
        (doc::GRAPH, serde_json::to_vec(&graph).unwrap()),
        (doc::TENSOR_TABLE, table),
        (doc::TENSOR_DATA, data),
    ]);
    rejects(f, "trailing bytes");
}

#[test]
fn graph_and_model_rules() {
    let with_graph = |g: Value| doc::assemble(&sections_from(&meta_json(), &g, &tensors()));
    let with_meta = |m: Value| doc::assemble(&sections_from(&m, &graph_json(), &tensors()));

    let mut g = graph_json();
    g["nodes"][1]["attrs"]["weight"] = json!("missing.w");
    rejects(with_graph(g), "'missing.w' is not in the tensor table");
    let mut g = graph_json();
    g["nodes"][2]["op"] = json!(99);
    rejects(with_graph(g), "unknown op id 99");
    let mut g = graph_json();
    g["nodes"][2]["name"] = json!("linear");
    rejects(with_graph(g), "names it 'linear'");
    let mut g = graph_json();
    g["nodes"][1]["attrs"]["weight"] = json!("extra");
    rejects(with_graph(g), "i32");
    let mut g = graph_json();
    g["surprise"] = json!(1);
    rejects(with_graph(g), "GRAPH section");

    let mut m = meta_json();
    m["classes"]["count"] = json!(3);
    rejects(with_meta(m), "metadata says 3 classes");
    let mut m = meta_json();
    m["input"]["height"] = json!(5);
    rejects(with_meta(m), "metadata says f32 [3, 5, 4]");
    let mut m = meta_json();
    m["score"]["definition"] = json!("max");
    rejects(with_meta(m), "unknown score definition");
    let mut m = meta_json();
    m["golden"] = json!({ "input": "extra", "logits": "head.w", "classes": "extra",
                          "scores": "head.b" });
    rejects(with_meta(m), "golden input tensor 'extra'");
    let mut m = meta_json();
    m["colour"] = json!("blue");
    rejects(with_meta(m), "META section");
}
