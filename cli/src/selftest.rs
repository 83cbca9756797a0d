//! `hood selftest MODEL [--backend] [--threads N]`: the stored golden outputs were computed by
//! the plain-loop reference when the model was converted; any backend is checked against them.

use crate::exec::ExecArgs;
use hood_runtime::{tolerance, Model};
use std::path::Path;
use std::process::ExitCode;

pub fn run(path: &Path, exec: &ExecArgs, json: bool) -> anyhow::Result<ExitCode> {
    let m = Model::open(path)?;
    let mut det = exec.detector(&m)?;
    let r = det
        .selftest()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "model": path.display().to_string(),
                "backend": det.backend_name(),
                "images": r.images,
                "max_score_dev": r.max_score_dev,
                "score_tolerance": tolerance::SELFTEST_SCORE,
                "max_logit_dev": r.max_logit_dev,
                "logit_tolerance": {"abs": tolerance::SELFTEST_LOGIT.abs, "rel": tolerance::SELFTEST_LOGIT.rel},
                "class_mismatches": r.class_mismatches,
                "passed": r.passed,
            })
        );
    } else {
        println!(
        "selftest {} on {}: {} images, max |Δscore| {:.3e} (tol {:.0e}), max |Δlogit| {:.3e} (tol {:.0e} + {:.0e}·max|logit|), class mismatches {}: {}",
        path.display(),
        det.backend_name(),
        r.images,
        r.max_score_dev,
        tolerance::SELFTEST_SCORE,
        r.max_logit_dev,
        tolerance::SELFTEST_LOGIT.abs,
        tolerance::SELFTEST_LOGIT.rel,
        r.class_mismatches,
        if r.passed { "PASS" } else { "FAIL" }
        );
    }
    Ok(if r.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
