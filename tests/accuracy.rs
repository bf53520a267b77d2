//! The accuracy benchmark: the binary, with its default settings, over a
//! corpus we wrote ourselves (`fixtures/accuracy/`).
//!
//! - `positives/` holds realistic files with fake, format-valid secrets;
//!   `positives.tsv` lists every one as `path<TAB>line<TAB>rule id or any`.
//! - `negatives/` holds realistic code, configuration, lockfiles and docs that
//!   must stay silent: placeholders, env lookups, digests, data URIs,
//!   minified bundles, public keys, documented example keys, test code.
//!
//! Recall is the share of listed secrets reported (at their line, by their
//! rule); precision the share of findings that are listed secrets; the
//! false-positive file rate the share of negative files with any finding.
//! The test prints all three and fails below 95% recall, above 2% false
//! positive files, or when positive files hold more unlisted findings (false
//! positives next to real secrets, or duplicates) than 6% of the listed
//! secrets (7 of 148 when this bound was set).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/accuracy")
}

/// Findings of a default scan of `dir` (run from inside it), as
/// `(path, line, rule id)`.
fn scan(dir: &Path) -> Vec<(String, u64, String)> {
    let out = Command::new(env!("CARGO_BIN_EXE_leakhound"))
        .current_dir(dir)
        .args(["--format", "json", "scan", "--no-ignore", "."])
        .output()
        .expect("leakhound runs");
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "scan of {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let findings: Vec<Value> = serde_json::from_slice(&out.stdout).expect("JSON report");
    findings
        .iter()
        .map(|f| {
            let path = f["path"].as_str().expect("path");
            (
                path.strip_prefix("./").unwrap_or(path).to_string(),
                f["line"].as_u64().expect("line"),
                f["rule_id"].as_str().expect("rule_id").to_string(),
            )
        })
        .collect()
}

/// Every file under `dir`, relative to it.
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("readable corpus dir") {
            let p = entry.expect("dir entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).expect("under dir");
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out.sort();
    out
}

struct Expected {
    path: String,
    line: u64,
    rule: String,
}

fn manifest() -> Vec<Expected> {
    let text = std::fs::read_to_string(corpus().join("positives.tsv")).expect("manifest");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let parts: Vec<&str> = l.split('\t').collect();
            assert_eq!(parts.len(), 3, "manifest line {l:?}: want path, line, rule");
            Expected {
                path: parts[0].to_string(),
                line: parts[1].parse().expect("line number"),
                rule: parts[2].to_string(),
            }
        })
        .collect()
}

#[test]
fn corpus_recall_precision_and_false_positive_files() {
    let expected = manifest();
    let positives = scan(&corpus().join("positives"));
    let negative_files = files(&corpus().join("negatives"));
    let negatives = scan(&corpus().join("negatives"));
    assert!(
        expected.len() >= 80,
        "the corpus must hold at least 80 secrets"
    );
    assert!(
        negative_files.len() >= 40,
        "the corpus must hold at least 40 negative files"
    );
    // Every manifest path exists, so a renamed file cannot pass silently.
    let positive_files: BTreeSet<String> = files(&corpus().join("positives")).into_iter().collect();
    for e in &expected {
        assert!(
            positive_files.contains(&e.path),
            "manifest names a missing file {}",
            e.path
        );
    }

    let matches = |e: &Expected, f: &(String, u64, String)| {
        f.0 == e.path && f.1 == e.line && (e.rule == "any" || f.2 == e.rule)
    };
    let mut missed = Vec::new();
    for e in &expected {
        if !positives.iter().any(|f| matches(e, f)) {
            let here: Vec<_> = positives.iter().filter(|f| f.0 == e.path).collect();
            missed.push(format!(
                "{}:{} {} (found there: {here:?})",
                e.path, e.line, e.rule
            ));
        }
    }
    let unexpected: Vec<_> = positives
        .iter()
        .filter(|f| !expected.iter().any(|e| matches(e, f)))
        .collect();
    let noisy_files: BTreeSet<&str> = negatives.iter().map(|f| f.0.as_str()).collect();

    let found = expected.len() - missed.len();
    let recall = found as f64 / expected.len() as f64;
    let true_findings = positives.len() - unexpected.len();
    let all_findings = positives.len() + negatives.len();
    let precision = true_findings as f64 / all_findings.max(1) as f64;
    let fp_file_rate = noisy_files.len() as f64 / negative_files.len() as f64;
    println!(
        "accuracy corpus: {} secrets in {} files, {} negative files",
        expected.len(),
        positive_files.len(),
        negative_files.len()
    );
    println!(
        "recall    {:.1}% ({found}/{})",
        recall * 100.0,
        expected.len()
    );
    println!(
        "precision {:.1}% ({true_findings}/{all_findings} findings)",
        precision * 100.0
    );
    println!(
        "false-positive files {:.1}% ({}/{})",
        fp_file_rate * 100.0,
        noisy_files.len(),
        negative_files.len()
    );
    for m in &missed {
        println!("missed: {m}");
    }
    for u in &unexpected {
        println!("unexpected in positives: {u:?}");
    }
    for n in &negatives {
        println!("false positive: {n:?}");
    }
    assert!(recall >= 0.95, "recall {recall:.3} is below 95%");
    assert!(
        unexpected.len() * 100 <= expected.len() * 6,
        "{} unlisted findings in positive files (limit 6% of {} secrets)",
        unexpected.len(),
        expected.len()
    );
    assert!(
        fp_file_rate <= 0.02,
        "{:.3} of negative files have findings (limit 2%)",
        fp_file_rate
    );
}
