//! Files written by tch-rs itself (docs/CHECKPOINTS.md §2 and §3): the resnet18_w8_c10_fw4 HEAT
//! fixture as one tch `VarStore`, saved by `VarStore::save` to `tch_single.pt` (libtorch C++
//! archive, `|` in names, hash-map entry order) and to `tch_single.safetensors`. Each converts as
//! the only input file and matches that fixture's expected.json (PyTorch float64): fp32 model
//! |Δscore| ≤ SCORE_FP32, fp16 model |Δscore| ≤ SCORE_FP16, same classes.
//!
//! Made by `tests/fixtures/gen_tch_inputs.py` (renames the fixture's classifier.pt + decoder.pt
//! epoch 149 to `encoder.` / `classifier.linear.` / `decoder.`, adds 0-d `norm_min`, `norm_max`
//! and int64 `fw_layers` = 4) and `tests/fixtures/tch_writer` (tch 0.24, libtorch 2.11); the
//! recipe is in tests/fixtures/heat/README.md.
//!
//! Names we did not choose (`convert --rename` / `--map`): the same tensors written by tch under
//! names a tch program might pick — `tch_prefixes.pt` (other part prefixes, the authors' names
//! inside) and `tch_custom.pt` (inner module names differ too: `stem`, `stage<L>`, `skip`,
//! `proj`, `up<K>`) — convert with rules (four `--rename`s; `tch_custom.map`) to the same
//! model.

use std::path::{Path, PathBuf};

use hood_convert::explain::explain;
use hood_convert::parts::Role;
use hood_convert::pipeline::{convert, Options};
use hood_convert::rename::{read_map, Rule};
use hood_convert::{load, Format, Tensor};
use hood_runtime::tolerance;
use hood_runtime::{Backend, Detector, Model};
use serde_json::Value as Json;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/heat/resnet18_w8_c10_fw4")
}

fn expected() -> Json {
    let text = std::fs::read_to_string(dir().join("expected.json")).expect("expected.json");
    serde_json::from_str(&text).expect("expected.json parses")
}

fn floats(v: &Json) -> Vec<f32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number") as f32)
        .collect()
}

fn sorted_tensors(file: &str) -> Vec<(String, Tensor)> {
    let mut t = load(&dir().join(file))
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten();
    t.sort_by(|a, b| a.0.cmp(&b.0));
    t
}

#[test]
fn tch_archive_and_safetensors_hold_the_same_tensors() {
    let ck = load(&dir().join("tch_single.pt")).unwrap();
    assert_eq!(ck.format, Format::TchZip);
    let ck = load(&dir().join("tch_single.safetensors")).unwrap();
    assert_eq!(ck.format, Format::Safetensors);
    let pt = sorted_tensors("tch_single.pt");
    let st = sorted_tensors("tch_single.safetensors");
    assert_eq!(
        pt.len(),
        128,
        "encoder, head, decoder epoch 149, norm_min/max, fw_layers"
    );
    assert!(
        pt.iter().all(|(n, _)| !n.contains('|')),
        "names mapped back to dots"
    );
    assert!(pt.iter().all(|(n, _)| !n.ends_with("num_batches_tracked")));
    assert_eq!(pt, st);
    let fw = pt.iter().find(|(n, _)| n == "fw_layers").unwrap();
    assert_eq!(fw.1.i64s(), Some(&[4][..]));
}

fn convert_one(
    file: &str,
    fp32: bool,
    out: &Path,
    renames: &[Rule],
) -> hood_convert::pipeline::Summary {
    let opts = Options {
        inputs: vec![dir().join(file)],
        output: out.to_path_buf(),
        fp32,
        renames: renames.to_vec(),
        ..Default::default()
    };
    convert(&opts, &|_| {}).unwrap_or_else(|e| panic!("convert {file}: {e}"))
}

fn check(file: &str) {
    check_renamed(file, &[]);
}

/// `file` converted with `renames` matches the fixture's expected outputs.
fn check_renamed(file: &str, renames: &[Rule]) {
    let ex = expected();
    let n = ex["input"]["shape"][0].as_u64().unwrap() as usize;
    let input = floats(&ex["input"]["data"]);
    let want_scores = floats(&ex["expected"]["scores"]);
    let want_classes: Vec<usize> = ex["expected"]["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap() as usize)
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    for fp32 in [true, false] {
        let out = tmp.path().join(format!("tch-{fp32}.hood"));
        let s = convert_one(file, fp32, &out, renames);
        assert!(s.unused_rules.is_empty(), "{file}: {:?}", s.unused_rules);
        assert_eq!(s.fw_layers, 4, "{file}");
        assert!(
            s.fw_layers_from.starts_with("checkpoint"),
            "{file}: fw_layers from the fw_layers tensor, not {}",
            s.fw_layers_from
        );
        assert_eq!(s.norm_min, ex["model"]["min"].as_f64().unwrap(), "{file}");
        assert_eq!(s.norm_max, ex["model"]["max"].as_f64().unwrap(), "{file}");
        assert_eq!(s.decoder_epoch, None, "{file}: not the epoch-keyed layout");
        assert_eq!(s.classes, 10);

        let model = Model::open(&out).unwrap();
        let mut det = Detector::new(&model, Backend::Cpu).unwrap();
        assert!(det.selftest().unwrap().passed, "{file}: self-test");
        let dets = det.detect_flat(&input, n).unwrap();
        let bound = if fp32 {
            tolerance::SCORE_FP32
        } else {
            tolerance::SCORE_FP16
        };
        let mut worst = 0f32;
        for (i, d) in dets.iter().enumerate() {
            let dev = (d.score - want_scores[i]).abs();
            worst = worst.max(dev);
            assert!(
                dev <= bound,
                "{file} fp32={fp32} image {i}: score {} vs {}",
                d.score,
                want_scores[i]
            );
            assert_eq!(
                d.class, want_classes[i],
                "{file} fp32={fp32} image {i}: class"
            );
        }
        eprintln!("{file} fp32={fp32}: max |Δscore| {worst:.2e} (bound {bound:.0e})");
    }
}

#[test]
fn tch_varstore_archive_converts_alone() {
    check("tch_single.pt");
}

#[test]
fn tch_safetensors_converts_alone() {
    check("tch_single.safetensors");
}

/// The four `--rename` rules `tch_prefixes.pt` needs.
fn prefix_rules() -> Vec<Rule> {
    [
        "backbone.=encoder.",
        "fc.=classifier.linear.",
        "heat_decoder.=decoder.",
        "stats.=",
    ]
    .iter()
    .enumerate()
    .map(|(i, r)| Rule::parse(r, &format!("--rename #{}", i + 1)).unwrap())
    .collect()
}

fn custom_map() -> Vec<Rule> {
    read_map(&dir().join("tch_custom.map")).unwrap()
}

fn explain_file(file: &str, renames: Vec<Rule>) -> hood_convert::explain::Explanation {
    explain(&Options {
        inputs: vec![dir().join(file)],
        renames,
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn tch_files_with_other_names_convert_with_rules() {
    check_renamed("tch_prefixes.pt", &prefix_rules());
    check_renamed("tch_custom.pt", &custom_map());
}

#[test]
fn other_names_without_rules_fail_and_point_at_the_tools() {
    let tmp = tempfile::tempdir().unwrap();
    for file in ["tch_prefixes.pt", "tch_custom.pt"] {
        let e = convert(
            &Options {
                inputs: vec![dir().join(file)],
                output: tmp.path().join("x.hood"),
                ..Default::default()
            },
            &|_| {},
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains(file) && e.contains("--explain-names"), "{e}");
        assert!(e.contains("--map"), "{e}");
    }
    // Prefix rules alone leave tch_custom's inner names unknown: the encoder is not found.
    let e = convert(
        &Options {
            inputs: vec![dir().join("tch_custom.pt")],
            output: tmp.path().join("x.hood"),
            renames: prefix_rules(),
            ..Default::default()
        },
        &|_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("tch_custom.pt"), "{e}");
    assert!(
        std::fs::read_dir(tmp.path()).unwrap().next().is_none(),
        "no output"
    );
}

#[test]
fn explain_names_reports_every_tensor() {
    // Without rules: nothing recognised, every name left over, the model not recognised.
    let e = explain_file("tch_custom.pt", vec![]);
    assert_eq!(e.names.len(), 128);
    assert!(e
        .names
        .iter()
        .all(|(m, u)| m.role == Role::Ignored && u.is_none()));
    assert!(!e.ok());
    assert!(e.to_text().contains("names the converter reads"));
    // With prefix rules only: the parts are found, but the encoder's inner names are not the
    // ones the converter reads.
    let e = explain_file("tch_custom.pt", prefix_rules());
    assert!(!e.ok());
    let stem = e
        .names
        .iter()
        .find(|(m, _)| m.original == "backbone.stem.conv.weight")
        .unwrap();
    assert_eq!(
        stem.0.renamed.as_ref().map(|r| r.0.as_str()),
        Some("encoder.stem.conv.weight")
    );
    assert!(matches!(&stem.0.role, Role::Part(_, n) if n == "stem.conv.weight"));
    assert_eq!(stem.1, Some(false), "in the encoder, not used");
    // With the map: every name used, every rule matched, the model recognised.
    let e = explain_file("tch_custom.pt", custom_map());
    assert_eq!(e.model.as_deref().ok(), Some("resnet18"));
    assert!(
        e.names.iter().all(|(_, u)| *u == Some(true)),
        "{}",
        e.to_text()
    );
    assert!(e.unused_rules.is_empty());
    let j = e.to_json();
    assert_eq!(j["names"].as_array().unwrap().len(), 128);
    assert_eq!(j["model"], "resnet18");
    let fc = e
        .names
        .iter()
        .find(|(m, _)| m.original == "fc.weight")
        .unwrap();
    assert!(fc
        .0
        .renamed
        .as_ref()
        .unwrap()
        .1
        .ends_with("tch_custom.map:10"));
}

#[test]
fn unused_rules_are_reported_and_collisions_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rules = prefix_rules();
    rules.push(Rule::parse("optimizer.=junk.", "--rename #5").unwrap());
    let s = convert_one("tch_prefixes.pt", false, &tmp.path().join("p.hood"), &rules);
    assert_eq!(s.unused_rules, ["optimizer.=junk. (--rename #5)"]);
    // The first matching rule wins: a later, more specific rule never applies.
    let mut shadowed = prefix_rules();
    shadowed.push(Rule::parse("backbone.conv1.=nowhere.", "--rename #5").unwrap());
    let s = convert_one(
        "tch_prefixes.pt",
        false,
        &tmp.path().join("q.hood"),
        &shadowed,
    );
    assert_eq!(s.unused_rules.len(), 1);
    // Two names onto one.
    let mut clash = vec![Rule::parse("backbone.bn1.=encoder.conv1.", "--rename #1").unwrap()];
    clash.extend(prefix_rules());
    let e = convert(
        &Options {
            inputs: vec![dir().join("tch_prefixes.pt")],
            output: tmp.path().join("c.hood"),
            renames: clash,
            ..Default::default()
        },
        &|_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("tch_prefixes.pt") && e.contains("both become 'encoder.conv1.weight'"),
        "{e}"
    );
    assert!(!tmp.path().join("c.hood").exists());
}
