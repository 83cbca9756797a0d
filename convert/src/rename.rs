//! `--rename FROM=TO` and `--map FILE`: literal prefix rewrites of tensor names, for checkpoints
//! whose module names follow neither the authors' layout nor the single-file convention.
//!
//! A rule rewrites a name that starts with `FROM` to `TO` followed by the rest of the name. Names
//! are matched as the reader produced them (tch's `|` separators already read as `.`; inside the
//! authors' epoch-keyed decoder files, the names within the `generator` state dict). Rules are
//! tried in the order given (every `--rename`, then each `--map` file's lines) and the first
//! matching rule wins; a name no rule matches is kept. A rule that matched no name is a warning;
//! two names of one file rewritten to the same name is an error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why a rule, a `--map` file or the renaming of one file's names failed. Messages name where
/// the rule was given (`--rename #2`, `names.map:7`) or the file whose names collided.
#[derive(Debug, thiserror::Error)]
pub enum RenameError {
    #[error("{origin}: '{text}' is not a FROM=TO rule")]
    NotARule { origin: String, text: String },
    #[error("{origin}: '{text}' has an empty FROM")]
    EmptyFrom { origin: String, text: String },
    /// `side` (FROM or TO) of rule `text` has whitespace or a second `=`.
    #[error("{origin}: '{side}' in '{text}' contains whitespace or '='; names never do")]
    BadName {
        origin: String,
        side: String,
        text: String,
    },
    #[error("--map {}: cannot read: {source}", path.display())]
    ReadMap {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Two names of `file` become the same name `name`.
    #[error(
        "{}: {first} and {second} both become '{name}'; make the rules more specific",
        file.display()
    )]
    Collision {
        file: PathBuf,
        first: Box<Renaming>,
        second: Box<Renaming>,
        name: String,
    },
}

/// A name as read and the rule that rewrote it, if one did (for [`RenameError::Collision`]):
/// `'a.w' (by a.=c. from --rename #1)` or `'c.w' (not renamed)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renaming {
    pub original: String,
    pub rule: Option<Rule>,
}

impl std::fmt::Display for Renaming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.rule {
            Some(rule) => write!(
                f,
                "'{}' (by {}={} from {})",
                self.original, rule.from, rule.to, rule.origin
            ),
            None => write!(f, "'{}' (not renamed)", self.original),
        }
    }
}

/// One rewrite rule and where it was given (`--rename #2`, `names.map:7`), for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub from: String,
    pub to: String,
    pub origin: String,
}

impl Rule {
    /// Parses `FROM=TO` (`FROM` non-empty, no whitespace inside either side; `TO` may be empty,
    /// which strips the prefix).
    pub fn parse(text: &str, origin: &str) -> Result<Rule, RenameError> {
        let (from, to) = text.split_once('=').ok_or_else(|| RenameError::NotARule {
            origin: origin.to_string(),
            text: text.to_string(),
        })?;
        let (from, to) = (from.trim(), to.trim());
        if from.is_empty() {
            return Err(RenameError::EmptyFrom {
                origin: origin.to_string(),
                text: text.to_string(),
            });
        }
        if let Some(bad) = [from, to]
            .iter()
            .find(|s| s.contains(char::is_whitespace) || s.contains('='))
        {
            return Err(RenameError::BadName {
                origin: origin.to_string(),
                side: bad.to_string(),
                text: text.to_string(),
            });
        }
        Ok(Rule {
            from: from.to_string(),
            to: to.to_string(),
            origin: origin.to_string(),
        })
    }
}

/// The rules of a `--map` file: one `FROM=TO` per line; `#` starts a comment (names never
/// contain `#`); blank lines are skipped. Errors name the file and the line.
pub fn read_map(path: &Path) -> Result<Vec<Rule>, RenameError> {
    let text = std::fs::read_to_string(path).map_err(|source| RenameError::ReadMap {
        path: path.to_path_buf(),
        source,
    })?;
    parse_map(&text, &path.display().to_string())
}

/// [`read_map`] on text already read; `name` is used in messages.
pub fn parse_map(text: &str, name: &str) -> Result<Vec<Rule>, RenameError> {
    let mut rules = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let body = line.split('#').next().unwrap_or("").trim();
        if body.is_empty() {
            continue;
        }
        rules.push(Rule::parse(body, &format!("{name}:{}", i + 1))?);
    }
    Ok(rules)
}

/// The rules in force for one conversion and how often each matched.
#[derive(Debug, Clone, Default)]
pub struct Renamer {
    rules: Vec<Rule>,
    hits: Vec<usize>,
}

/// A name after the rules: the new name and the rule that made it, if one matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renamed {
    pub name: String,
    pub rule: Option<usize>,
}

impl Renamer {
    pub fn new(rules: Vec<Rule>) -> Renamer {
        let hits = vec![0; rules.len()];
        Renamer { rules, hits }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn rule(&self, i: usize) -> Option<&Rule> {
        self.rules.get(i)
    }

    /// The first matching rule's rewrite of `name` (counted), else `name` itself.
    pub fn apply(&mut self, name: &str) -> Renamed {
        for (i, r) in self.rules.iter().enumerate() {
            if let Some(rest) = name.strip_prefix(r.from.as_str()) {
                self.hits[i] += 1;
                return Renamed {
                    name: format!("{}{rest}", r.to),
                    rule: Some(i),
                };
            }
        }
        Renamed {
            name: name.to_string(),
            rule: None,
        }
    }

    /// Renames every name of one file; an error if two names end up equal.
    pub fn apply_all(
        &mut self,
        file: &Path,
        names: &[String],
    ) -> Result<Vec<Renamed>, RenameError> {
        let out: Vec<Renamed> = names.iter().map(|n| self.apply(n)).collect();
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, r) in out.iter().enumerate() {
            if let Some(&j) = seen.get(r.name.as_str()) {
                let how = |k: usize| {
                    Box::new(Renaming {
                        original: names[k].clone(),
                        rule: out[k].rule.and_then(|x| self.rules.get(x)).cloned(),
                    })
                };
                return Err(RenameError::Collision {
                    file: file.to_path_buf(),
                    first: how(j),
                    second: how(i),
                    name: r.name.clone(),
                });
            }
            seen.insert(&r.name, i);
        }
        Ok(out)
    }

    /// The rules that matched no name so far.
    pub fn unused(&self) -> Vec<&Rule> {
        self.rules
            .iter()
            .zip(&self.hits)
            .filter(|(_, &h)| h == 0)
            .map(|(r, _)| r)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(specs: &[&str]) -> Renamer {
        Renamer::new(
            specs
                .iter()
                .enumerate()
                .map(|(i, s)| Rule::parse(s, &format!("--rename #{}", i + 1)).unwrap())
                .collect(),
        )
    }

    #[test]
    fn first_matching_rule_wins_and_unmatched_names_stay() {
        let mut r = rules(&[
            "backbone.stage2.0.skip.=encoder.layer2.0.shortcut.",
            "backbone.stage2.=encoder.layer2.",
            "backbone.=encoder.",
        ]);
        assert_eq!(
            r.apply("backbone.stage2.0.skip.0.weight").name,
            "encoder.layer2.0.shortcut.0.weight"
        );
        assert_eq!(
            r.apply("backbone.stage2.1.conv1.weight").name,
            "encoder.layer2.1.conv1.weight"
        );
        let kept = r.apply("backbone.conv1.weight");
        assert_eq!(
            (kept.name.as_str(), kept.rule),
            ("encoder.conv1.weight", Some(2))
        );
        let none = r.apply("norm_min");
        assert_eq!((none.name.as_str(), none.rule), ("norm_min", None));
        assert!(r.unused().is_empty());
    }

    #[test]
    fn literal_prefixes_not_patterns() {
        // `.` is a plain character, and a prefix need not end at a dot.
        let mut r = rules(&["a.b=x", "zz*=y"]);
        assert_eq!(r.apply("a.bc.w").name, "xc.w");
        assert_eq!(r.apply("aXb.w").name, "aXb.w");
        assert_eq!(r.apply("zzz.w").name, "zzz.w");
        assert_eq!(r.unused().len(), 1);
        assert_eq!(r.unused()[0].from, "zz*");
    }

    #[test]
    fn empty_to_strips_the_prefix() {
        let mut r = rules(&["wrapper.inner.="]);
        assert_eq!(
            r.apply("wrapper.inner.decoder.fc1.weight").name,
            "decoder.fc1.weight"
        );
    }

    #[test]
    fn collisions_are_errors_naming_both() {
        let mut r = rules(&["a.=c.", "b.=c."]);
        let names = vec!["a.w".to_string(), "b.w".to_string()];
        let e = r
            .apply_all(Path::new("m.pt"), &names)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("m.pt: 'a.w'"), "{e}");
        assert!(e.contains("'b.w'") && e.contains("'c.w'"), "{e}");
        // Onto a name that was not renamed.
        let mut r = rules(&["old.=new."]);
        let names = vec!["new.w".to_string(), "old.w".to_string()];
        let e = r
            .apply_all(Path::new("m.pt"), &names)
            .unwrap_err()
            .to_string();
        assert!(e.contains("'new.w' (not renamed)"), "{e}");
    }

    #[test]
    fn bad_rules_and_map_lines_name_their_origin() {
        let e = |text: &str, origin: &str| Rule::parse(text, origin).unwrap_err().to_string();
        assert!(e("noequals", "--rename #1").contains("--rename #1"));
        assert!(e("=x", "o").contains("empty FROM"));
        assert!(e("a b=c", "o").contains("whitespace"));
        assert!(e("a=b=c", "o").contains("'='"));
        let text = "# names of my trainer\n\nbackbone.=encoder.   # the body\n  fc.=classifier.linear.\nbad line\n";
        let e = parse_map(text, "names.map").unwrap_err().to_string();
        assert!(e.starts_with("names.map:5:"), "{e}");
        let ok = parse_map(&text.replace("bad line", ""), "names.map").unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].origin, "names.map:3");
        assert_eq!(
            (ok[1].from.as_str(), ok[1].to.as_str()),
            ("fc.", "classifier.linear.")
        );
    }
}
