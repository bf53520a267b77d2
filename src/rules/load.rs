//! Loading rule specs: the pack embedded at build time and user files or dirs.

use std::path::Path;

use super::{RuleError, RuleFile, RuleSpec};

include!(concat!(env!("OUT_DIR"), "/embedded_rules.rs"));

/// Parses one rule file's text. `file` names it in errors.
pub fn parse_rule_file(file: &str, text: &str) -> Result<Vec<RuleSpec>, RuleError> {
    let parsed: RuleFile = toml::from_str(text).map_err(|e| RuleError::Parse {
        file: file.to_string(),
        message: e.to_string().trim_end().to_string(),
    })?;
    Ok(parsed.rules)
}

/// The default rule pack, with the file each rule came from.
pub fn embedded_specs() -> Result<Vec<(String, RuleSpec)>, RuleError> {
    let mut out = Vec::new();
    for (file, text) in EMBEDDED_RULES {
        for spec in parse_rule_file(file, text)? {
            out.push((file.to_string(), spec));
        }
    }
    Ok(out)
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
