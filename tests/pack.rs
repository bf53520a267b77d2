//! The default pack through the whole binary: every rule's examples, each
//! written as a file into one tree, must be found by the right rule at the
//! right line and column, with every other rule competing; placeholder and
//! documentation values must stay silent.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use assert_cmd::Command;
use leakhound::rules::embedded_specs;
use serde_json::Value;

fn leakhound() -> Command {
    Command::new(env!("CARGO_BIN_EXE_leakhound"))
}

/// 1-based (line, column in characters) of byte offset `at` in `text`.
fn position(text: &str, at: usize) -> (u64, u64) {
    let before = &text[..at];
    let line = before.matches('\n').count() as u64 + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, text[line_start..at].chars().count() as u64 + 1)
}

#[test]
fn every_example_is_found_by_its_rule_at_its_position() {
    let dir = tempfile::tempdir().unwrap();
    // file name -> (rule id, secret, line, column)
    let mut expected = BTreeMap::new();
    for (_, spec) in embedded_specs().unwrap() {
        if spec.context.is_some() {
            // Runs only on text a decoder builds (tests/kubernetes.rs
            // covers it through real manifests); raw files never fire it.
            continue;
        }
        for (i, ex) in spec.examples.iter().enumerate() {
            let name = format!("{}-{i}.txt", spec.id);
            fs::write(dir.path().join(&name), &ex.text).unwrap();
            let at = ex
                .text
                .find(&ex.secret)
                .expect("example text holds its secret");
            let (line, column) = position(&ex.text, at);
            expected.insert(name, (spec.id.clone(), ex.secret.clone(), line, column));
        }
    }
    let out = leakhound()
        // Raw matching only: with decoding on, a Secret's base64 value is
        // reported decoded (tests/kubernetes.rs) instead of by the rules
        // for its encoded form, which these examples exercise.
        .args([
            "--format",
            "json",
            "--show-secrets",
            "--min-confidence",
            "low",
            "--decode-depth",
            "0",
            "scan",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let findings: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let mut problems = Vec::new();
    for (name, (rule, secret, line, column)) in &expected {
        let path = dir.path().join(name);
        let here: Vec<&Value> = findings
            .iter()
            .filter(|f| Path::new(f["path"].as_str().unwrap()) == path)
            .collect();
        let ok = here.iter().any(|f| {
            f["rule_id"] == rule.as_str()
                && f["secret"] == secret.as_str()
                && f["line"] == *line
                && f["column"] == *column
        });
        if !ok {
            let got: Vec<String> = here
                .iter()
                .map(|f| {
                    format!(
                        "{} {}:{} {}",
                        f["rule_id"], f["line"], f["column"], f["secret"]
                    )
                })
                .collect();
            problems.push(format!(
                "{name}: want {rule} {line}:{column} {secret:?}, got {got:?}"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn placeholders_and_documentation_keys_are_not_reported() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/scan/negatives");
    let out = leakhound()
        .args(["--format", "json", "--min-confidence", "low", "scan"])
        .arg(&root)
        .output()
        .unwrap();
    let findings: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(findings.is_empty(), "false positives: {findings:#?}");
    assert_eq!(out.status.code(), Some(0));
}

/// Runs the binary on the realistic fixture tree from inside it, so paths
/// and fingerprints do not depend on where the checkout lives.
fn scan_positives(format: &str) -> std::process::Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/scan/positives");
    leakhound()
        .current_dir(&root)
        .args(["--format", format, "scan", "."])
        .output()
        .unwrap()
}

#[test]
fn fixture_tree_report_is_stable() {
    let out = scan_positives("json");
    assert_eq!(out.status.code(), Some(1));
    let findings: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let lines: Vec<String> = findings
        .iter()
        .map(|f| {
            format!(
                "{}:{}:{}-{}:{} {} {} {} {} | {}",
                f["path"].as_str().unwrap(),
                f["line"],
                f["column"],
                f["end_line"],
                f["end_column"],
                f["rule_id"].as_str().unwrap(),
                f["severity"].as_str().unwrap(),
                f["confidence"].as_str().unwrap(),
                &f["fingerprint"].as_str().unwrap()[..16],
                f["snippet"].as_str().unwrap(),
            )
        })
        .collect();
    insta::assert_snapshot!(lines.join("\n"));
}

#[test]
fn rules_list_is_stable() {
    let out = leakhound().args(["rules", "list"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    insta::assert_snapshot!(String::from_utf8(out.stdout).unwrap());
}

/// The audit detector (`generic-high-entropy-credential`) reports at `low`
/// confidence only: `--min-confidence low` shows it, the default output
/// stays as it was; code constants next to credential words stay silent
/// even in an audit.
#[test]
fn audit_detector_reports_only_with_min_confidence_low() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("client.js"),
        "client.setAuthToken(\"Wq3Zr8Tn5Lp2Vx7Kc4Bm9Hd6\")\n",
    )
    .unwrap();
    fs::write(
        dir.path().join("driver.c"),
        "\t.maxauthsize = SHA256_DIGEST_SIZE,\n\tkey->cipher = AES_KEYSIZE_256;\n\
         \tstrcpy(key_name, \"Zq8vT2mLw9pKr4Xy7Bn3\");\n",
    )
    .unwrap();
    let scan = |extra: &[&str]| -> Vec<Value> {
        let out = leakhound()
            .args(["--format", "json", "--show-secrets"])
            .args(extra)
            .arg("scan")
            .arg(dir.path())
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap()
    };
    assert!(scan(&[]).is_empty(), "default output must not change");
    let low = scan(&["--min-confidence", "low"]);
    let got: Vec<(&str, &str, &str)> = low
        .iter()
        .map(|f| {
            (
                f["rule_id"].as_str().unwrap(),
                f["secret"].as_str().unwrap(),
                f["confidence"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [(
            "generic-high-entropy-credential",
            "Wq3Zr8Tn5Lp2Vx7Kc4Bm9Hd6",
            "low"
        )]
    );
}
