//! `convert --explain-names`: what the converter took every tensor name for — which part and
//! which name there, whether the model uses it, which names were left over — so a user whose
//! checkpoint follows its own naming can write a `--map` in one try. Nothing is written.

use crate::parts::{NameMapping, Role};
use crate::pipeline::{load_parts, recognise_and_lower, Options, PipelineError};
use serde_json::json;

/// The report: every input tensor, the model recognised (or why not), the rules that matched
/// nothing.
#[derive(Debug)]
pub struct Explanation {
    /// Every input tensor and whether the lowered model reads it (`None`: ignored, in no part;
    /// BatchNorm's `num_batches_tracked`, which inference never needs, counts as used).
    pub names: Vec<(NameMapping, Option<bool>)>,
    /// The recognised model family (`wrn-40-2`, `resnet18`, ...), or why recognition or lowering
    /// failed.
    pub model: Result<String, PipelineError>,
    pub unused_rules: Vec<String>,
}

/// What the converter looks for, per part (after the part prefix), for the report's footer.
pub const EXPECTED_NAMES: &str = "\
names the converter reads, after the part prefix (encoder. / classifier. / decoder., or the
authors' two files; docs/CHECKPOINTS.md):
  encoder   ResNet: conv1, bn1, layer{1..4}.{i}.{conv1,bn1,conv2,bn2[,conv3,bn3]}[.shortcut.{0,1}]
            WideResNet: conv1, layer{1..3}.{i}.{bn1,conv1,bn2,conv2}[.shortcut.0], bn1
            (.weight / .bias / .running_mean / .running_var below each)
  head      linear.weight, linear.bias (classifier.linear.*)
  decoder   fc1, conv_block{1..N}.{0,1} (transposed conv, BatchNorm), conv_block{N+1}.0
  scalars   norm_min, norm_max (or min, max), optional fw_layers";

/// Reads and splits the inputs with the rules, then recognises and lowers the model as
/// `convert` would. Errors only when the inputs cannot be read or renamed at all; a model that
/// does not lower is reported in [`Explanation::model`].
pub fn explain(opts: &Options) -> Result<Explanation, PipelineError> {
    let loaded = load_parts(opts, true, &|_| {})?;
    let model = recognise_and_lower(opts, &loaded.parts, &|_| {}).map(|r| r.enc.family());
    let parts = &loaded.parts;
    let names = parts
        .mapping
        .iter()
        .map(|m| {
            let used = match &m.role {
                // BatchNorm's step counter is never needed for inference.
                Role::Part(part, name) => Some(
                    name.ends_with("num_batches_tracked")
                        || parts
                            .part(*part)
                            .is_some_and(|sd| sd.used.borrow().contains(name)),
                ),
                Role::Scalar(_) => Some(true),
                Role::Ignored => None,
            };
            (m.clone(), used)
        })
        .collect();
    Ok(Explanation {
        names,
        model,
        unused_rules: loaded.unused_rules,
    })
}

/// `classifier encoder: conv1.weight`, `scalar norm_min`, `left over (…)`.
pub fn role_text(role: &Role) -> String {
    match role {
        Role::Part(p, n) => format!("{}: {n}", p.name()),
        Role::Scalar(k) => format!("scalar {k}"),
        Role::Ignored => "left over (not a HEAT part; ignored)".into(),
    }
}

impl Explanation {
    /// Whether `convert` would accept these inputs with these rules.
    pub fn ok(&self) -> bool {
        self.model.is_ok()
    }

    /// The report as text, one line per tensor, grouped by file.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let mut file = None;
        let (mut used, mut unused, mut ignored) = (0, 0, 0);
        for (m, u) in &self.names {
            if file != Some(&m.file) {
                out += &format!("{}\n", m.file.display());
                file = Some(&m.file);
            }
            let renamed = match &m.renamed {
                Some((to, origin)) => format!(" => {to} [{origin}]"),
                None => String::new(),
            };
            let status = match u {
                Some(true) => {
                    used += 1;
                    ""
                }
                Some(false) => {
                    unused += 1;
                    "  (NOT USED by the model)"
                }
                None => {
                    ignored += 1;
                    ""
                }
            };
            out += &format!(
                "  {}{renamed} -> {}{status}\n",
                m.original,
                role_text(&m.role)
            );
        }
        out += &format!(
            "{} tensors: {used} used, {unused} in a part but not used, {ignored} left over\n",
            self.names.len()
        );
        for r in &self.unused_rules {
            out += &format!("rule {r} matched no name\n");
        }
        match &self.model {
            Ok(f) => out += &format!("model: {f} (recognised and lowered; convert accepts it)\n"),
            Err(e) => out += &format!("model: NOT recognised: {e}\n\n{EXPECTED_NAMES}\n"),
        }
        out
    }

    pub fn to_json(&self) -> serde_json::Value {
        let names: Vec<serde_json::Value> = self
            .names
            .iter()
            .map(|(m, u)| {
                let (role, part, name) = match &m.role {
                    Role::Part(p, n) => ("part", Some(p.name()), Some(n.as_str())),
                    Role::Scalar(k) => ("scalar", None, Some(k.as_str())),
                    Role::Ignored => ("ignored", None, None),
                };
                json!({
                    "file": m.file.display().to_string(),
                    "original": m.original,
                    "renamed": m.renamed.as_ref().map(|r| &r.0),
                    "rule": m.renamed.as_ref().map(|r| &r.1),
                    "role": role,
                    "part": part,
                    "name": name,
                    "used": u,
                })
            })
            .collect();
        json!({
            "names": names,
            "model": self.model.as_ref().ok(),
            "error": self.model.as_ref().err().map(|e| e.to_string()),
            "unused_rules": self.unused_rules,
        })
    }
}
