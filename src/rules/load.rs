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
}
