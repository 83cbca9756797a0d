//! Splits one or more loaded checkpoints into the three parts of a HEAT model — classifier
//! encoder, linear head, decoder — plus the normalisation scalars and `fw_layers`, whatever the
//! layout: the authors' two files (`{'net_state_dict','cls_state_dict'}` and
//! `{'min','max', <epoch>: {'generator': sd}}`), plain or nested state dicts, wrapper prefixes
//! (`module.`, `_orig_mod.`, `model.`, `state_dict.`), and the single-file tch convention
//! (`encoder.`/`net.`/`enc.`, `classifier.`/`cls.`/`head.`, `decoder.`/`generator.`/`gen.`,
//! `norm_min`/`norm_max` or `min`/`max`, `fw_layers`).

use crate::checkpoint::{Checkpoint, Key, Value};
use crate::rename::{RenameError, Renamer};
use crate::tensor::Tensor;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Why the inputs cannot be split into parts. Messages name the file.
#[derive(Debug, thiserror::Error)]
pub enum PartsError {
    #[error("{}: fw_layers = {value} is not an integer in 1..=4", file.display())]
    FwLayers { file: PathBuf, value: f64 },
    #[error("{}: normalisation scalar '{key}' is {value}", file.display())]
    NonFiniteScalar {
        file: PathBuf,
        key: String,
        value: f64,
    },
    /// Two inputs give different values for one normalisation scalar.
    #[error(
        "{}: normalisation '{key}' = {value} disagrees with {previous} from {}",
        file.display(),
        previous_file.display()
    )]
    ScalarDisagrees {
        file: PathBuf,
        key: String,
        value: f64,
        previous: f64,
        previous_file: PathBuf,
    },
    #[error(
        "two {}s: one in {} and one in {}; give exactly one",
        part.name(),
        first.display(),
        second.display()
    )]
    TwoParts {
        part: Part,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("{}: tensor '{name}' appears twice in the {}", file.display(), part.name())]
    DuplicateTensor {
        file: PathBuf,
        name: String,
        part: Part,
    },
    #[error(
        "{}: no decoder snapshot for epoch {epoch}; the file has epochs {epochs:?}",
        file.display()
    )]
    NoEpoch {
        file: PathBuf,
        epoch: i64,
        epochs: Vec<i64>,
    },
    /// A file none of whose tensor names was recognised (`examples`: the first few names).
    #[error(
        "{}: no HEAT classifier or decoder tensors recognised (found e.g. {}); \
         `convert --explain-names` shows what each name was taken for, and \
         `--rename FROM=TO` / `--map FILE` rewrite name prefixes",
        file.display(),
        examples.join(", ")
    )]
    Unrecognised {
        file: PathBuf,
        examples: Vec<String>,
    },
    #[error(transparent)]
    Rename(#[from] RenameError),
}

/// A state dict of one part: names relative to the part (`layer1.0.conv1.weight`).
#[derive(Debug, Clone, Default)]
pub struct StateDict {
    /// Which file it came from (for messages).
    pub file: PathBuf,
    pub tensors: BTreeMap<String, Tensor>,
    /// The names the lowering read (`convert --explain-names` lists the others as unused).
    pub used: RefCell<BTreeSet<String>>,
}

impl StateDict {
    /// The tensor `name`, marked as used.
    pub fn take(&self, name: &str) -> Option<&Tensor> {
        let t = self.tensors.get(name)?;
        self.used.borrow_mut().insert(name.to_string());
        Some(t)
    }
}

/// What one tensor of an input file became (`convert --verbose`, `--explain-names`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameMapping {
    pub file: PathBuf,
    /// The name as read (tch's `|` as `.`; `<epoch>.generator.<name>` in the authors' decoder).
    pub original: String,
    /// The name after `--rename` / `--map`, and the rule's origin, when a rule matched.
    pub renamed: Option<(String, String)>,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// A tensor of a part, and its name there.
    Part(Part, String),
    /// A normalisation scalar or `fw_layers`.
    Scalar(String),
    /// Not recognised as part of a HEAT model, ignored.
    Ignored,
}

/// The parts found across all inputs.
#[derive(Debug, Default)]
pub struct Parts {
    pub encoder: Option<StateDict>,
    pub head: Option<StateDict>,
    pub decoder: Option<StateDict>,
    /// The decoder snapshot epoch used (authors' layout only).
    pub epoch: Option<i64>,
    pub norm_min: Option<(f64, PathBuf)>,
    pub norm_max: Option<(f64, PathBuf)>,
    pub fw_layers: Option<(i64, String)>,
    /// Decoder files (for finding `config.txt` beside them).
    pub decoder_files: Vec<PathBuf>,
    /// What every tensor of every input became, in file order.
    pub mapping: Vec<NameMapping>,
    /// `--explain-names`: a file with no recognised tensor is listed, not an error.
    pub list_unrecognised: bool,
}

/// The three parts of a HEAT model.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Part {
    Encoder,
    Head,
    Decoder,
}

impl Part {
    pub fn name(self) -> &'static str {
        match self {
            Part::Encoder => "classifier encoder",
            Part::Head => "classifier head",
            Part::Decoder => "decoder",
        }
    }
}

const WRAPPERS: [&str; 5] = [
    "module.",
    "_orig_mod.",
    "model.",
    "state_dict.",
    "model_state_dict.",
];
const PART_PREFIXES: [(&str, Part); 11] = [
    ("net_state_dict.", Part::Encoder),
    ("cls_state_dict.", Part::Head),
    ("encoder.", Part::Encoder),
    ("net.", Part::Encoder),
    ("enc.", Part::Encoder),
    ("classifier.", Part::Head),
    ("cls.", Part::Head),
    ("head.", Part::Head),
    ("decoder.", Part::Decoder),
    ("generator.", Part::Decoder),
    ("gen.", Part::Decoder),
];

fn strip_wrappers(mut name: &str) -> &str {
    loop {
        match WRAPPERS.iter().find(|w| name.starts_with(*w)) {
            Some(w) => name = &name[w.len()..],
            None => return name,
        }
    }
}

/// Which part an unprefixed name belongs to, from its first component.
fn part_of_bare(name: &str) -> Option<Part> {
    let first = name.split('.').next().unwrap_or("");
    if first == "linear" {
        Some(Part::Head)
    } else if first == "fc1" || first.starts_with("conv_block") {
        Some(Part::Decoder)
    } else if first == "conv1"
        || first == "bn1"
        || first.starts_with("layer")
        || first == "shortcut"
    {
        Some(Part::Encoder)
    } else {
        None
    }
}

const SCALAR_NAMES: [&str; 5] = ["norm_min", "norm_max", "min", "max", "fw_layers"];

fn scalar_of(t: &Tensor) -> Option<f64> {
    if t.numel() != 1 {
        return None;
    }
    t.f32s()
        .map(|v| v[0] as f64)
        .or_else(|| t.i64s().map(|v| v[0] as f64))
}

impl Parts {
    /// The state dict of part `p`, if an input had one.
    pub fn part(&self, p: Part) -> Option<&StateDict> {
        match p {
            Part::Encoder => self.encoder.as_ref(),
            Part::Head => self.head.as_ref(),
            Part::Decoder => self.decoder.as_ref(),
        }
    }

    fn part_mut(&mut self, p: Part) -> &mut Option<StateDict> {
        match p {
            Part::Encoder => &mut self.encoder,
            Part::Head => &mut self.head,
            Part::Decoder => &mut self.decoder,
        }
    }

    fn set_scalar(&mut self, key: &str, v: f64, file: &Path) -> Result<(), PartsError> {
        let slot = match key {
            "norm_min" | "min" => &mut self.norm_min,
            "norm_max" | "max" => &mut self.norm_max,
            "fw_layers" => {
                if v.fract() != 0.0 || !(1.0..=4.0).contains(&v) {
                    return Err(PartsError::FwLayers {
                        file: file.to_path_buf(),
                        value: v,
                    });
                }
                self.fw_layers = Some((v as i64, format!("{}", file.display())));
                return Ok(());
            }
            _ => return Ok(()),
        };
        if !v.is_finite() {
            return Err(PartsError::NonFiniteScalar {
                file: file.to_path_buf(),
                key: key.to_string(),
                value: v,
            });
        }
        if let Some((old, f)) = slot {
            if *old != v {
                return Err(PartsError::ScalarDisagrees {
                    file: file.to_path_buf(),
                    key: key.to_string(),
                    value: v,
                    previous: *old,
                    previous_file: f.clone(),
                });
            }
        }
        *slot = Some((v, file.to_path_buf()));
        Ok(())
    }

    fn add_tensors(
        &mut self,
        file: &Path,
        part: Part,
        tensors: Vec<(String, Tensor)>,
        orig: Vec<Origin>,
    ) -> Result<(), PartsError> {
        let slot = self.part_mut(part);
        if let Some(existing) = slot {
            if existing.file != file {
                return Err(PartsError::TwoParts {
                    part,
                    first: existing.file.clone(),
                    second: file.to_path_buf(),
                });
            }
        }
        let sd = slot.get_or_insert_with(|| StateDict {
            file: file.to_path_buf(),
            ..Default::default()
        });
        let mut mapped = Vec::new();
        for ((name, t), o) in tensors.into_iter().zip(orig) {
            if sd.tensors.insert(name.clone(), t).is_some() {
                return Err(PartsError::DuplicateTensor {
                    file: file.to_path_buf(),
                    name,
                    part,
                });
            }
            mapped.push(NameMapping {
                file: file.to_path_buf(),
                original: o.0,
                renamed: o.1,
                role: Role::Part(part, name),
            });
        }
        self.mapping.extend(mapped);
        if part == Part::Decoder && !self.decoder_files.iter().any(|f| f == file) {
            self.decoder_files.push(file.to_path_buf());
        }
        Ok(())
    }

    /// Adds one checkpoint. `epoch` picks the decoder snapshot in the authors' layout; `renamer`
    /// rewrites the tensor names first (`--rename` / `--map`).
    pub fn add(
        &mut self,
        ck: &Checkpoint,
        epoch: Option<i64>,
        renamer: &mut Renamer,
    ) -> Result<(), PartsError> {
        let file = ck.path.clone();
        // The authors' decoder file: top-level int keys holding {'generator': sd}.
        let epochs: Vec<i64> = ck
            .int_keys()
            .into_iter()
            .filter(|k| ck.get(*k).and_then(|v| v.get("generator")).is_some())
            .collect();
        let mut snapshot_root: Option<&Value> = None;
        if !epochs.is_empty() {
            let pick = match epoch {
                Some(e) if epochs.contains(&e) => e,
                Some(e) => {
                    return Err(PartsError::NoEpoch {
                        file,
                        epoch: e,
                        epochs,
                    })
                }
                None => *epochs.iter().max().unwrap_or(&0),
            };
            self.epoch = Some(pick);
            snapshot_root = ck.get(pick).and_then(|v| v.get("generator"));
        }
        // Top-level float/int scalars (authors' `min`/`max`).
        if let Value::Dict(d) = &ck.root {
            for (k, v) in d {
                if let Key::Str(s) = k {
                    if SCALAR_NAMES.contains(&s.as_str()) {
                        if let Some(x) = v.as_f64() {
                            self.set_scalar(s, x, &file)?;
                        }
                    }
                }
            }
        }
        if let Some(gen) = snapshot_root {
            let sub = Checkpoint {
                path: file.clone(),
                format: ck.format,
                root: gen.clone(),
            };
            let flat = sub.flatten();
            let names: Vec<String> = flat.iter().map(|(n, _)| n.clone()).collect();
            let renamed = renamer.apply_all(&file, &names)?;
            let epoch = self.epoch.unwrap_or(0);
            let mut orig = Vec::new();
            let mut named = Vec::new();
            for ((n, t), r) in flat.into_iter().zip(renamed) {
                orig.push(origin(format!("{epoch}.generator.{n}"), &r, renamer));
                named.push((strip_wrappers(&r.name).to_string(), t));
            }
            return self.add_tensors(&file, Part::Decoder, named, orig);
        }
        // Per part: (name in part, tensor) pairs and the original names, for the mapping.
        type Group = (Part, Vec<(String, Tensor)>, Vec<Origin>);
        let mut by_part: Vec<Group> = Vec::new();
        let mut unknown = Vec::new();
        let flat = ck.flatten();
        let names: Vec<String> = flat.iter().map(|(n, _)| n.clone()).collect();
        let renamed = renamer.apply_all(&file, &names)?;
        for ((orig, t), r) in flat.into_iter().zip(renamed) {
            let o = origin(orig, &r, renamer);
            let name = strip_wrappers(&r.name);
            // Scalars: top-level or under a decoder prefix.
            let bare = PART_PREFIXES
                .iter()
                .find(|(p, _)| name.starts_with(p))
                .map(|(p, part)| (&name[p.len()..], Some(*part)))
                .unwrap_or((name, None));
            let (rest, prefixed_part) = bare;
            let rest = strip_wrappers(rest);
            if SCALAR_NAMES.contains(&rest) && matches!(prefixed_part, None | Some(Part::Decoder)) {
                if let Some(v) = scalar_of(&t) {
                    self.set_scalar(rest, v, &file)?;
                    self.mapping.push(NameMapping {
                        file: file.clone(),
                        original: o.0,
                        renamed: o.1,
                        role: Role::Scalar(rest.to_string()),
                    });
                    continue;
                }
            }
            let part = match prefixed_part.or_else(|| part_of_bare(rest)) {
                Some(p) => p,
                None => {
                    unknown.push(o);
                    continue;
                }
            };
            match by_part.iter_mut().find(|(p, _, _)| *p == part) {
                Some((_, v, os)) => {
                    v.push((rest.to_string(), t));
                    os.push(o);
                }
                None => by_part.push((part, vec![(rest.to_string(), t)], vec![o])),
            }
        }
        for (original, renamed) in &unknown {
            self.mapping.push(NameMapping {
                file: file.clone(),
                original: original.clone(),
                renamed: renamed.clone(),
                role: Role::Ignored,
            });
        }
        if by_part.is_empty() && !unknown.is_empty() && !self.list_unrecognised {
            return Err(PartsError::Unrecognised {
                file,
                examples: unknown.iter().take(6).map(|s| s.0.clone()).collect(),
            });
        }
        if !unknown.is_empty() && !self.list_unrecognised {
            let shown: Vec<&str> = unknown.iter().take(4).map(|s| s.0.as_str()).collect();
            log::warn!(
                "{}: ignoring {} tensor(s) that are not part of a HEAT model: {}{} \
                 (`convert --explain-names` lists them all)",
                file.display(),
                unknown.len(),
                shown.join(", "),
                if unknown.len() > shown.len() {
                    ", …"
                } else {
                    ""
                }
            );
        }
        for (part, tensors, orig) in by_part {
            self.add_tensors(&file, part, tensors, orig)?;
        }
        Ok(())
    }
}

/// A tensor's original name and, when a rule renamed it, (new name, the rule's origin).
type Origin = (String, Option<(String, String)>);

fn origin(original: String, r: &crate::rename::Renamed, renamer: &Renamer) -> Origin {
    let renamed = r
        .rule
        .and_then(|i| renamer.rule(i))
        .map(|rule| (r.name.clone(), rule.origin.clone()));
    (original, renamed)
}

/// What the authors' `config.txt` (a printed Python dict, written beside the decoder file) says
/// about the model: `'fw_layers': N` and `'id_dataset'` (Tiny ImageNet → 64×64, CIFAR → 32×32).
#[derive(Debug, Clone, PartialEq)]
pub struct AuthorsConfig {
    pub path: PathBuf,
    pub fw_layers: Option<i64>,
    pub input_size: Option<u32>,
}

impl AuthorsConfig {
    /// Reads `config.txt` beside `file`, if there is one.
    pub fn beside(file: &Path) -> Option<AuthorsConfig> {
        let path = file.parent()?.join("config.txt");
        let text = std::fs::read_to_string(&path).ok()?;
        let value = |key: &str| {
            let at = text.find(key)?;
            text[at + key.len()..]
                .trim_start()
                .strip_prefix(':')
                .map(str::trim_start)
        };
        let fw_layers = value("'fw_layers'").and_then(|rest| {
            let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            digits.parse().ok()
        });
        let input_size = value("'id_dataset'").and_then(|rest| {
            let v = rest[..rest.len().min(40)].to_ascii_lowercase();
            if v.contains("tinyimagenet") || v.contains("tiny_imagenet") {
                Some(64)
            } else if v.contains("cifar") {
                Some(32)
            } else {
                None
            }
        });
        Some(AuthorsConfig {
            path,
            fw_layers,
            input_size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrappers_and_bare_names() {
        assert_eq!(
            strip_wrappers("module._orig_mod.conv1.weight"),
            "conv1.weight"
        );
        assert_eq!(part_of_bare("layer3.1.bn2.weight"), Some(Part::Encoder));
        assert_eq!(part_of_bare("linear.bias"), Some(Part::Head));
        assert_eq!(part_of_bare("conv_block5.0.weight"), Some(Part::Decoder));
        assert_eq!(part_of_bare("optimizer.state"), None);
    }

    #[test]
    fn config_txt_fw_layers() {
        let dir = std::env::temp_dir().join(format!("hood-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("config.txt"),
            "{'arch': 'wrn', 'fw_layers': 3, 'x': 1}",
        )
        .unwrap();
        assert_eq!(
            AuthorsConfig::beside(&dir.join("dec.pt")).and_then(|c| c.fw_layers),
            Some(3)
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
