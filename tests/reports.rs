//! What a run tells machines: the `--summary` object (validated against
//! docs/summary.schema.json), SARIF of every subcommand and of failed and
//! capped runs (validated against the official 2.1.0 schema), and baselines
//! taken from reports.

#[path = "support/image.rs"]
mod fixture;

use std::path::Path;
use std::process::{Command, Output};

use fixture::{TestImage, layer_tar};
use serde_json::{Value, json};

/// A fake AWS access key id: `AKIA` and 16 base32 characters from `n`.
fn key(n: u64) -> String {
    const B32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5DEE_CE66_D1CE_4E5B;
    let tail: String = (0..16)
        .map(|_| {
            x = x.rotate_left(5).wrapping_mul(0x2545_F491_4F6C_DD1D) ^ n;
            B32[(x >> 59) as usize % 32] as char
        })
        .collect();
    format!("AKIA{tail}")
}

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_leakhound"))
        .current_dir(dir)
        .args(args)
        .env("HOME", "/nonexistent")
        .output()
        .unwrap()
}

fn schema(rel: &str) -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::validator_for(&v).expect("the schema compiles")
}

fn assert_valid(validator: &jsonschema::Validator, doc: &Value, what: &str) {
    let errors: Vec<String> = validator.iter_errors(doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{what}: {errors:#?}");
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn summary_says_what_was_scanned_found_skipped_and_whether_complete() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("a.env"), format!("AWS_ACCESS_KEY_ID={}\n", key(1))).unwrap();
    std::fs::write(d.join("big.txt"), "x".repeat(2000)).unwrap();
    let out = run(
        d,
        &[
            "--no-config",
            "--summary",
            "s.json",
            "scan",
            "--max-file-size",
            "1KiB",
            "a.env",
            "big.txt",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let s = read_json(&d.join("s.json"));
    assert_valid(&schema("docs/summary.schema.json"), &s, "summary");
    assert_eq!(s["command"], "scan");
    assert_eq!(s["scanned"]["files"], 1);
    assert_eq!(s["findings"]["total"], 1);
    assert_eq!(s["findings"]["by_rule"]["aws-access-key-id"], 1);
    assert_eq!(s["findings"]["by_severity"]["high"], 1);
    assert_eq!(s["skipped"][0]["path"], "big.txt", "{s}");
    assert_eq!(s["complete"], true);
    assert_eq!(s["exit_code"], 1);

    // A run that stops on an error: complete false, exit 2, the reason.
    let out = run(d, &["--no-config", "--summary", "-", "scan", "missing-dir"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let json_start = stderr.find('{').expect("summary on stderr");
    let s: Value = serde_json::from_str(&stderr[json_start..]).unwrap();
    assert_valid(&schema("docs/summary.schema.json"), &s, "failed summary");
    assert_eq!(s["complete"], false);
    assert_eq!(s["exit_code"], 2);
    assert!(
        s["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("missing-dir")
    );

    // The schema holds the promise: exit 2 with complete true is refused.
    let mut bad = s.clone();
    bad["complete"] = json!(true);
    assert!(!schema("docs/summary.schema.json").is_valid(&bad));
}

#[test]
fn sarif_of_git_with_a_commit_message_finding_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let git = |args: &[&str]| {
        let o = Command::new("git")
            .current_dir(d)
            .args(args)
            .env("GIT_AUTHOR_NAME", "Dev")
            .env("GIT_AUTHOR_EMAIL", "dev@example.com")
            .env("GIT_COMMITTER_NAME", "Dev")
            .env("GIT_COMMITTER_EMAIL", "dev@example.com")
            .output()
            .unwrap();
        assert!(o.status.success(), "{o:?}");
        String::from_utf8(o.stdout).unwrap()
    };
    git(&["init", "-q", "-b", "main"]);
    std::fs::write(d.join("README.md"), "hello\n").unwrap();
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "init"]);
    let base = git(&["rev-parse", "HEAD"]).trim().to_string();
    std::fs::write(d.join("app.env"), format!("AWS_ACCESS_KEY_ID={}\n", key(2))).unwrap();
    git(&["add", "."]);
    git(&[
        "commit",
        "-q",
        "-m",
        &format!("add config\n\nold key was {}", key(3)),
    ]);
    let out = run(
        d,
        &[
            "--no-config",
            "--format",
            "sarif",
            "git",
            ".",
            "--since-commit",
            &base,
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sarif: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_valid(
        &schema("fixtures/sarif-schema-2.1.0.json"),
        &sarif,
        "git SARIF",
    );
    let run0 = &sarif["runs"][0];
    assert_eq!(run0["automationDetails"]["id"], "git/");
    assert_eq!(run0["invocations"][0]["executionSuccessful"], true);
    let results = run0["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{results:#?}");
    let message = results
        .iter()
        .find(|r| r["locations"][0].get("logicalLocations").is_some())
        .expect("the commit-message finding has a logical location");
    assert!(message["locations"][0].get("physicalLocation").is_none());
    assert!(
        message["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]
            .as_str()
            .unwrap()
            .starts_with("commit ")
    );
}

#[test]
fn sarif_of_image_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let img = TestImage::new(
        vec![layer_tar(&[(
            "etc/app.env",
            format!("K={}\n", key(4)).as_bytes(),
        )])],
        json!([{"created_by": "COPY app.env /etc/app.env"}]),
        vec!["PATH=/usr/bin".into()],
    );
    let layout = dir.path().join("layout");
    img.write_oci_dir(&layout, "latest");
    let out = run(
        dir.path(),
        &[
            "--no-config",
            "--format",
            "sarif",
            "--sarif-category",
            "images/nightly",
            "image",
            "--oci-layout",
            layout.to_str().unwrap(),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sarif: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_valid(
        &schema("fixtures/sarif-schema-2.1.0.json"),
        &sarif,
        "image SARIF",
    );
    assert_eq!(
        sarif["runs"][0]["automationDetails"]["id"],
        "images/nightly/"
    );
    assert_eq!(sarif["runs"][0]["results"].as_array().unwrap().len(), 1);
}

#[test]
fn sarif_is_written_when_the_run_fails() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &[
            "--no-config",
            "--format",
            "sarif",
            "--output",
            "out.sarif",
            "scan",
            "no-such-dir",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let sarif = read_json(&dir.path().join("out.sarif"));
    assert_valid(
        &schema("fixtures/sarif-schema-2.1.0.json"),
        &sarif,
        "exit-2 SARIF",
    );
    let inv = &sarif["runs"][0]["invocations"][0];
    assert_eq!(inv["executionSuccessful"], false);
    let note = inv["toolExecutionNotifications"][0]["message"]["text"]
        .as_str()
        .unwrap();
    assert!(note.contains("no-such-dir"), "{note}");

    // An unreadable file mid-scan with --strict: findings and the error.
    std::fs::write(dir.path().join("a.env"), format!("K={}\n", key(5))).unwrap();
    std::fs::write(dir.path().join("locked.env"), "x\n").unwrap();
    let out = run(
        dir.path(),
        &[
            "--no-config",
            "--format",
            "sarif",
            "scan",
            "--strict",
            "a.env",
            "locked.env",
            "--max-file-size",
            "2",
        ],
    );
    let sarif: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_valid(
        &schema("fixtures/sarif-schema-2.1.0.json"),
        &sarif,
        "partial SARIF",
    );
    let notes = &sarif["runs"][0]["invocations"][0]["toolExecutionNotifications"];
    assert!(notes.as_array().is_some_and(|n| !n.is_empty()), "{sarif}");
}

#[test]
fn sarif_is_capped_keeping_the_most_severe_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 300 AWS key ids (high) then 10 Stripe keys (critical) at the end of
    // the file, with a cap of 200: the Stripe keys must survive. The cap is
    // lowered so the test stays quick; the default (GitHub's 25,000) is the
    // same code path.
    let mut text = String::new();
    for i in 0..300u64 {
        text.push_str(&format!("id{i}={}\n", key(100 + i)));
    }
    for i in 0..10u64 {
        text.push_str(&format!(
            "stripe{i}=sk_live_{}{}\n",
            &key(500 + i)[4..],
            &key(600 + i)[4..12]
        ));
    }
    std::fs::write(d.join("many.env"), text).unwrap();
    let out = run(
        d,
        &[
            "--no-config",
            "--format",
            "sarif",
            "--output",
            "o.sarif",
            "--sarif-max-results",
            "200",
            "--summary",
            "summary.json",
            "scan",
            "many.env",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("left out"), "{stderr}");
    let total = read_json(&d.join("summary.json"))["findings"]["total"]
        .as_u64()
        .unwrap();
    assert!(total > 200, "{total} findings");
    let sarif = read_json(&d.join("o.sarif"));
    assert_valid(
        &schema("fixtures/sarif-schema-2.1.0.json"),
        &sarif,
        "capped SARIF",
    );
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 200);
    let critical = results
        .iter()
        .filter(|r| r["ruleId"] == "stripe-live-secret-key")
        .count();
    assert_eq!(critical, 10, "the most severe are kept");
    let notes = sarif["runs"][0]["invocations"][0]["toolExecutionNotifications"]
        .as_array()
        .unwrap();
    let said = format!("{} of {total} results were left out", total - 200);
    assert!(
        notes.iter().any(|n| n["message"]["text"]
            .as_str()
            .is_some_and(|t| t.starts_with(&said))),
        "{notes:?}"
    );
}

#[test]
fn sarif_uris_are_relative_to_an_absolute_root() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("cfg")).unwrap();
    std::fs::write(dir.path().join("cfg/a.env"), format!("K={}\n", key(6))).unwrap();
    let root = dir.path().to_str().unwrap();
    let out = run(
        dir.path(),
        &["--no-config", "--format", "sarif", "scan", root],
    );
    let sarif: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_valid(&schema("fixtures/sarif-schema-2.1.0.json"), &sarif, "SARIF");
    let loc =
        &sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"];
    assert_eq!(loc["uri"], "cfg/a.env");
    assert_eq!(loc["uriBaseId"], "%SRCROOT%");
    let base = sarif["runs"][0]["originalUriBaseIds"]["%SRCROOT%"]["uri"]
        .as_str()
        .unwrap();
    assert!(
        base.starts_with("file:///") && base.ends_with('/'),
        "{base}"
    );
    let rule = &sarif["runs"][0]["tool"]["driver"]["rules"][0];
    assert!(
        rule["help"]["markdown"]
            .as_str()
            .unwrap()
            .contains("References")
    );
    assert_eq!(rule["properties"]["precision"], "high");
    assert!(sarif["runs"][0]["tool"]["driver"]["informationUri"].is_string());
}

#[test]
fn baselines_come_from_reports_too() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("a.env"), format!("K={}\n", key(7))).unwrap();
    for format in ["json", "jsonl", "sarif"] {
        let report = format!("last.{format}");
        let out = run(
            d,
            &[
                "--no-config",
                "--format",
                format,
                "--output",
                &report,
                "scan",
                "a.env",
            ],
        );
        assert_eq!(out.status.code(), Some(1));
        let out = run(d, &["--no-config", "--baseline", &report, "scan", "a.env"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{format}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::write(
        d.join("gitleaks.json"),
        r#"[{"RuleID":"aws-access-token","Fingerprint":"abc:a.env:aws-access-token:1"}]"#,
    )
    .unwrap();
    let out = run(
        d,
        &[
            "--no-config",
            "--baseline",
            "gitleaks.json",
            "scan",
            "a.env",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("gitleaks report, which is not supported"),
        "{stderr}"
    );
}
