//! Baselines: the findings a team has reviewed, by fingerprint, so a CI gate
//! reports only new ones.
//!
//! The file is stable JSON: entries sorted by fingerprint, no timestamps, no
//! line numbers (they change when code moves and would cause merge
//! conflicts); `rule_id` and `path` are there for the reviewer, only the
//! fingerprint is compared. A fingerprint hashes rule id, secret and path, so
//! a moved secret keeps it and a different secret on the same line never
//! matches an old entry.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::finding::Finding;

/// Version of the file format.
pub const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    pub version: u32,
    pub findings: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub fingerprint: String,
    pub rule_id: String,
    #[serde(default)]
    pub path: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("{path}: cannot read baseline: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: cannot write baseline: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a leakhound baseline: {message}")]
    Parse { path: String, message: String },
}

impl Baseline {
    /// One entry per fingerprint, sorted.
    pub fn of(findings: &[Finding]) -> Baseline {
        let mut by_fp: BTreeMap<&str, Entry> = BTreeMap::new();
        for f in findings {
            by_fp.entry(&f.fingerprint).or_insert_with(|| Entry {
                fingerprint: f.fingerprint.clone(),
                rule_id: f.rule_id.clone(),
                path: f.path.clone(),
            });
        }
        Baseline {
            version: VERSION,
            findings: by_fp.into_values().collect(),
        }
    }
}

/// Writes the baseline of `findings` to `path` (pretty JSON, one entry per
/// line group, trailing newline).
pub fn write(path: &Path, findings: &[Finding]) -> Result<(), BaselineError> {
    let mut text = serde_json::to_string_pretty(&Baseline::of(findings))
        .expect("a baseline always serializes");
    text.push('\n');
    std::fs::write(path, text).map_err(|source| BaselineError::Write {
        path: path.display().to_string(),
        source,
    })
}

/// The fingerprints a baseline file holds.
pub fn read(path: &Path) -> Result<HashSet<String>, BaselineError> {
    let text = std::fs::read_to_string(path).map_err(|source| BaselineError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let b: Baseline = serde_json::from_str(&text).map_err(|e| BaselineError::Parse {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    if b.version != VERSION {
        return Err(BaselineError::Parse {
            path: path.display().to_string(),
            message: format!(
                "version {} is not supported (expected {VERSION})",
                b.version
            ),
        });
    }
    Ok(b.findings.into_iter().map(|e| e.fingerprint).collect())
}
