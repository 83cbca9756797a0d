//! `metrics.rs` against scikit-learn: every expected number comes from
//! `tests/fixtures/gen_metrics_cases.py` (seed and sklearn expressions in its docstring), which
//! wrote `tests/fixtures/metrics/cases.json`.

use hood_runtime::metrics;
use hood_runtime::tolerance::METRIC_VS_SKLEARN;
use serde_json::Value;

fn cases() -> Vec<Value> {
    let p = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/metrics/cases.json"
    );
    let text = std::fs::read_to_string(p).expect("read metrics fixture");
    let doc: Value = serde_json::from_str(&text).expect("parse metrics fixture");
    doc["cases"].as_array().expect("cases").clone()
}

fn scores(v: &Value) -> Vec<f32> {
    v.as_array()
        .expect("score list")
        .iter()
        .map(|x| x.as_f64().expect("score") as f32)
        .collect()
}

fn close(what: &str, i: usize, got: f64, want: &Value) {
    let want = want.as_f64().expect("number");
    assert!(
        (got - want).abs() <= METRIC_VS_SKLEARN,
        "case {i} {what}: ours {got}, sklearn {want}"
    );
}

#[test]
fn metrics_match_sklearn() {
    let cases = cases();
    assert!(cases.len() >= 8);
    for (i, c) in cases.iter().enumerate() {
        let (id, ood) = (scores(&c["id"]), scores(&c["ood"]));
        let m = metrics::evaluate(&id, &ood).unwrap();
        close("auroc", i, m.auroc, &c["auroc"]);
        close("aupr_in", i, m.aupr_in, &c["aupr_in"]);
        close("aupr_out", i, m.aupr_out, &c["aupr_out"]);
        close("fpr95", i, m.fpr95, &c["fpr95"]);
        for (tpr, want) in c["tpr_threshold"].as_object().expect("thresholds") {
            let tpr: f64 = tpr.parse().expect("tpr key");
            let got = metrics::tpr_threshold(&id, tpr).unwrap();
            // The threshold is one of the f32 scores: exact.
            assert_eq!(got as f64, want.as_f64().unwrap(), "case {i} tpr {tpr}");
        }
    }
}

#[test]
fn fixture_has_ties_within_and_across_sets() {
    let c = cases();
    let tied = c.iter().any(|c| {
        let (id, ood) = (scores(&c["id"]), scores(&c["ood"]));
        id.iter().any(|v| ood.contains(v))
    });
    assert!(tied, "the fixture should exercise ties across ID and OOD");
}
