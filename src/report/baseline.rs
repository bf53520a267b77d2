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

/// A baseline larger than this is refused (a report of a million findings
/// is about 1 GiB of JSON; a baseline of them is a tenth of that).
const MAX_BASELINE: u64 = 512 << 20;

/// The fingerprints a baseline holds. Besides a baseline file, a leakhound
/// report serves (JSON array, JSONL or SARIF), so a team can baseline from
/// the last CI artifact; other tools' reports are refused with the reason.
pub fn read(path: &Path) -> Result<HashSet<String>, BaselineError> {
    use std::io::Read;
    let name = path.display().to_string();
    let parse = |message: String| BaselineError::Parse {
        path: name.clone(),
        message,
    };
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_BASELINE + 1).read_to_string(&mut text))
        .map_err(|source| BaselineError::Read {
            path: name.clone(),
            source,
        })?;
    if text.len() as u64 > MAX_BASELINE {
        return Err(parse(format!("larger than {} MiB", MAX_BASELINE >> 20)));
    }
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Err(parse("the file is empty".into()));
    }
    let value: serde_json::Value = match serde_json::from_str(trimmed) {
        Ok(v) => v,
        // One JSON object per line: a JSONL report.
        Err(_) if trimmed.starts_with('{') => {
            let mut out = HashSet::new();
            for (i, line) in trimmed.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let v: serde_json::Value = serde_json::from_str(line)
                    .map_err(|e| parse(format!("line {}: {e}", i + 1)))?;
                out.insert(
                    report_fingerprint(&v).map_err(|m| parse(format!("line {}: {m}", i + 1)))?,
                );
            }
            return Ok(out);
        }
        Err(e) => return Err(parse(e.to_string())),
    };
    match &value {
        serde_json::Value::Object(o) if o.contains_key("runs") => {
            sarif_fingerprints(&value).map_err(parse)
        }
        serde_json::Value::Object(o) if o.contains_key("fingerprint") => {
            Ok(HashSet::from([report_fingerprint(&value).map_err(parse)?]))
        }
        serde_json::Value::Object(_) => {
            let b: Baseline = serde_json::from_value(value).map_err(|e| parse(e.to_string()))?;
            if b.version != VERSION {
                return Err(parse(format!(
                    "version {} is not supported (expected {VERSION})",
                    b.version
                )));
            }
            Ok(b.findings.into_iter().map(|e| e.fingerprint).collect())
        }
        serde_json::Value::Array(items) => items
            .iter()
            .map(report_fingerprint)
            .collect::<Result<_, _>>()
            .map_err(parse),
        _ => Err(parse(
            "expected a baseline, or a leakhound JSON, JSONL or SARIF report".into(),
        )),
    }
}

/// The fingerprint of one finding of a leakhound JSON/JSONL report.
fn report_fingerprint(v: &serde_json::Value) -> Result<String, String> {
    if let Some(fp) = v.get("fingerprint").and_then(|f| f.as_str())
        && fp.len() == 64
        && fp.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Ok(fp.to_string());
    }
    if v.get("Fingerprint").is_some() || v.get("RuleID").is_some() {
        return Err(
            "this is a gitleaks report, which is not supported as a baseline: its \
                    fingerprints (commit:file:rule:line) name no secret and do not carry \
                    over; run leakhound once with --write-baseline FILE instead"
                .into(),
        );
    }
    Err(
        "not a leakhound finding (no 64-hex `fingerprint`); a baseline is a file written by \
         --write-baseline or a leakhound JSON, JSONL or SARIF report"
            .into(),
    )
}

/// The fingerprints of a leakhound SARIF report's results.
fn sarif_fingerprints(v: &serde_json::Value) -> Result<HashSet<String>, String> {
    let mut out = HashSet::new();
    for run in v["runs"].as_array().into_iter().flatten() {
        for r in run["results"].as_array().into_iter().flatten() {
            match r["partialFingerprints"][super::sarif::FINGERPRINT_KEY].as_str() {
                Some(fp) => {
                    out.insert(fp.to_string());
                }
                None => {
                    return Err(format!(
                        "a SARIF result has no `{}` fingerprint: not a leakhound report",
                        super::sarif::FINGERPRINT_KEY
                    ));
                }
            }
        }
    }
    Ok(out)
}
