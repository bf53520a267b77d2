//! Loading rule specs: the pack embedded at build time and user files or dirs.

use std::path::Path;

use std::collections::HashMap;

use super::{Example, RuleError, RuleFile, RuleSpec};

include!(concat!(env!("OUT_DIR"), "/embedded_rules.rs"));

/// Parses one rule file's text. `file` names it in errors.
pub fn parse_rule_file(file: &str, text: &str) -> Result<Vec<RuleSpec>, RuleError> {
    let parsed: RuleFile = toml::from_str(text).map_err(|e| RuleError::Parse {
        file: file.to_string(),
        message: e.to_string().trim_end().to_string(),
    })?;
    Ok(parsed.rules)
}

/// The default rule pack's files as `(name, text)`, inflated from the
/// binary (see build.rs for why they are stored compressed).
pub fn embedded_files() -> Vec<(&'static str, String)> {
    use std::io::Read;
    let mut all = String::new();
    flate2::read::DeflateDecoder::new(EMBEDDED_RULES_DEFLATE)
        .read_to_string(&mut all)
        .expect("the rule pack embedded by build.rs inflates to UTF-8");
    let mut at = 0;
    EMBEDDED_RULE_FILES
        .iter()
        .map(|&(file, len)| {
            let text = all[at..at + len].to_string();
            at += len;
            (file, text)
        })
        .collect()
}

/// The default rule pack, with the file each rule came from.
pub fn embedded_specs() -> Result<Vec<(String, RuleSpec)>, RuleError> {
    let mut out = Vec::new();
    for (file, text) in embedded_files() {
        for spec in parse_rule_file(file, &text)? {
            out.push((file.to_string(), spec));
        }
    }
    Ok(out)
}

/// The embedded pack's distinct keywords, lowercased and sorted (what its
/// `RuleSet` searches for; benchmarks and tests of the keyword search).
pub fn embedded_keywords() -> Result<Vec<String>, RuleError> {
    let mut k: Vec<String> = embedded_specs()?
        .into_iter()
        .flat_map(|(_, s)| s.keywords)
        .map(|k| k.to_ascii_lowercase())
        .collect();
    k.sort();
    k.dedup();
    Ok(k)
}

/// The default rule pack as a scan needs it: no examples, each regex's
/// longest match already known (see build.rs). Same rules, same order as
/// `embedded_specs()`, which tests check.
pub fn pack_specs() -> Result<Vec<(String, RuleSpec)>, RuleError> {
    #[derive(serde::Deserialize)]
    struct Packed {
        file: String,
        regex: Option<RegexFacts>,
        spec: RuleSpec,
    }
    #[derive(serde::Deserialize)]
    struct RegexFacts {
        max_len: Option<usize>,
    }
    let inflated = flate2::read::DeflateDecoder::new(PACKED_RULES_DEFLATE);
    let packed: Vec<Packed> =
        serde_json::from_reader(std::io::BufReader::new(inflated)).map_err(|e| {
            RuleError::Parse {
                file: "<embedded pack>".into(),
                message: e.to_string(),
            }
        })?;
    Ok(packed
        .into_iter()
        .map(|p| {
            let mut spec = p.spec;
            spec.prebuilt_max_len = p.regex.map(|r| r.max_len);
            (p.file, spec)
        })
        .collect())
}

/// A rule's examples and negative examples.
pub type RuleExamples = (Vec<Example>, Vec<String>);

/// The embedded pack's examples and negative examples by rule id, for the
/// self-test of rules loaded by `pack_specs()` (which has none). Parsed
/// from the TOML on first use.
pub fn pack_examples(id: &str) -> Option<&'static RuleExamples> {
    static ALL: std::sync::OnceLock<HashMap<String, RuleExamples>> = std::sync::OnceLock::new();
    ALL.get_or_init(|| {
        embedded_specs()
            .unwrap_or_default()
            .into_iter()
            .map(|(_, s)| (s.id, (s.examples, s.negative_examples)))
            .collect()
    })
    .get(id)
}

/// Loads a rule file, or every `*.toml` in a directory (sorted, not recursive).
pub fn load_path(path: &Path) -> Result<Vec<(String, RuleSpec)>, RuleError> {
    let io_err = |source| RuleError::Io {
        file: path.display().to_string(),
        source,
    };
    let mut files = Vec::new();
    if path.is_dir() {
        for entry in std::fs::read_dir(path).map_err(io_err)? {
            let p = entry.map_err(io_err)?.path();
            if p.extension().is_some_and(|x| x == "toml") {
                files.push(p);
            }
        }
        files.sort();
    } else {
        files.push(path.to_path_buf());
    }
    let mut out = Vec::new();
    for f in files {
        let name = f.display().to_string();
        let text = std::fs::read_to_string(&f).map_err(|source| RuleError::Io {
            file: name.clone(),
            source,
        })?;
        for spec in parse_rule_file(&name, &text)? {
            out.push((name.clone(), spec));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod embedded_tests {
    use super::*;

    #[test]
    fn the_embedded_pack_is_every_rule_file_as_written() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        let mut on_disk: Vec<(String, String)> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .map(|p| {
                let name = format!("rules/{}", p.file_name().unwrap().to_string_lossy());
                (name, std::fs::read_to_string(&p).unwrap())
            })
            .collect();
        on_disk.sort();
        let embedded: Vec<(String, String)> = embedded_files()
            .into_iter()
            .map(|(f, t)| (f.to_string(), t))
            .collect();
        assert_eq!(embedded.len(), on_disk.len());
        assert!(embedded == on_disk, "embedded pack differs from rules/");
    }

    #[test]
    fn the_packed_pack_is_the_embedded_one_without_examples() {
        let full = embedded_specs().unwrap();
        let packed = pack_specs().unwrap();
        assert_eq!(full.len(), packed.len());
        for ((f1, a), (f2, b)) in full.iter().zip(&packed) {
            assert_eq!(f1, f2);
            assert!(b.examples.is_empty() && b.negative_examples.is_empty());
            let mut a = a.clone();
            a.examples.clear();
            a.negative_examples.clear();
            // Debug output covers every field but the prebuilt one.
            let mut b = b.clone();
            assert!(b.prebuilt_max_len.is_some(), "{}: no window", b.id);
            b.prebuilt_max_len = None;
            assert_eq!(format!("{a:?}"), format!("{b:?}"));
        }
    }
}
