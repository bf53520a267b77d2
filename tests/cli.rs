//! End-to-end tests of the `leakhound` binary: exit codes, the walk's
//! rules (ignore files, hidden files, `.git/`, size limits, binaries,
//! stdin), redaction and report formats. Trees are built by each test.

use std::fs;
use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;
use tempfile::TempDir;

/// A rule of our own, so these tests do not depend on the default pack.
const TEST_RULE: &str = r#"
[[rules]]
id = "lhtest-token"
name = "leakhound test token"
description = "A token format that exists only in leakhound's tests."
keywords = ["lhtest_"]
regex = '''\b(lhtest_[a-z0-9]{24})\b'''
severity = "high"
confidence = "high"
examples = [{ text = "t = lhtest_q8v2m4k7z1x9c3b6n5p0r7t2", secret = "lhtest_q8v2m4k7z1x9c3b6n5p0r7t2" }]
negative_examples = ["lhtest_short"]
"#;

const SECRET: &str = "lhtest_q8v2m4k7z1x9c3b6n5p0r7t2";
const SECRET2: &str = "lhtest_w3e5r7t9y1u3i5o7p9a2s4d6";

fn leakhound() -> Command {
    Command::new(env!("CARGO_BIN_EXE_leakhound"))
}

/// A temp dir holding the test rule file, plus a `tree/` to scan.
struct Tree {
    dir: TempDir,
}

impl Tree {
    fn new() -> Tree {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("rule.toml"), TEST_RULE).expect("write rule");
        fs::create_dir(dir.path().join("tree")).expect("mkdir tree");
        Tree { dir }
    }
    fn root(&self) -> std::path::PathBuf {
        self.dir.path().join("tree")
    }
    fn write(&self, rel: &str, content: impl AsRef<[u8]>) {
        let p = self.root().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }
    /// `leakhound --rules rule.toml <args>` run inside the tree.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = leakhound();
        c.current_dir(self.root())
            .arg("--rules")
            .arg(self.dir.path().join("rule.toml"))
            .args(args);
        c
    }
    fn json(&self, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["--format", "json"];
        all.extend_from_slice(args);
        let out = self.cmd(&all).output().expect("run leakhound");
        serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }
}

fn paths(findings: &[Value]) -> Vec<String> {
    findings
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn missing_path_exits_2_and_names_it() {
    leakhound()
        .args(["scan", "/nonexistent/leakhound-path"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("/nonexistent/leakhound-path"));
}

#[test]
fn invalid_rule_file_exits_2_naming_file_rule_and_reason() {
    let t = Tree::new();
    let bad = t.dir.path().join("bad.toml");
    fs::write(
        &bad,
        TEST_RULE
            .replace("lhtest-token", "broken-rule")
            .replace(r"\b(lhtest_[a-z0-9]{24})\b", r"(lhtest_[a-z"),
    )
    .unwrap();
    leakhound()
        .arg("--rules")
        .arg(&bad)
        .args(["scan", "."])
        .current_dir(t.root())
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("bad.toml")
                .and(predicate::str::contains("broken-rule"))
                .and(predicate::str::contains("invalid regex")),
        );
}

#[test]
fn unknown_rule_field_is_an_error() {
    let t = Tree::new();
    let bad = t.dir.path().join("typo.toml");
    fs::write(
        &bad,
        TEST_RULE
            .replace("min_entropy", "x")
            .replace("severity", "severty"),
    )
    .unwrap();
    leakhound()
        .arg("--rules")
        .arg(&bad)
        .args(["rules", "list"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("typo.toml").and(predicate::str::contains("severty")));
}

#[test]
fn clean_tree_exits_0_and_findings_exit_1() {
    let t = Tree::new();
    t.write("src/main.rs", "fn main() { println!(\"hello\"); }\n");
    t.cmd(&["scan", "."]).assert().code(0);
    t.write("src/config.rs", format!("const T: &str = \"{SECRET}\";\n"));
    t.cmd(&["scan", "."])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("src/config.rs:1:18"))
        .stdout(predicate::str::contains("lhtest-token"));
}

#[test]
fn gitignore_is_respected_hidden_files_scanned_and_git_dir_never_entered() {
    let t = Tree::new();
    t.write(".gitignore", "build/\n");
    t.write("build/out.txt", SECRET);
    t.write(".env", format!("TOKEN={SECRET}\n"));
    t.write(".aws/credentials", format!("x = {SECRET2}\n"));
    t.write(".git/config", format!("token = {SECRET}\n"));
    let found = paths(&t.json(&["scan", "."]));
    assert_eq!(found, vec!["./.aws/credentials", "./.env"]);
    let found = paths(&t.json(&["scan", "--no-ignore", "."]));
    assert_eq!(
        found,
        vec!["./.aws/credentials", "./.env", "./build/out.txt"]
    );
}

#[test]
fn gitignore_applies_only_inside_a_git_work_tree_and_dot_ignore_everywhere() {
    // Debian's linux-source ships a tree with a `.gitignore` of `/*` and no
    // `.git`: outside a work tree that file means nothing, as in ripgrep.
    let t = Tree::new();
    t.write(".gitignore", "/*\n");
    t.write("src/a.env", format!("TOKEN={SECRET}\n"));
    t.write(".ignore", "vendored/\n");
    t.write("vendored/b.env", format!("TOKEN={SECRET2}\n"));
    assert_eq!(paths(&t.json(&["scan", "."])), vec!["./src/a.env"]);
    let found = paths(&t.json(&["scan", "--no-ignore", "."]));
    assert_eq!(found, vec!["./src/a.env", "./vendored/b.env"]);
}

#[test]
fn paths_left_out_on_purpose_are_counted_named_with_verbose_and_an_empty_scan_says_why() {
    let t = Tree::new();
    fs::create_dir(t.root().join(".git")).unwrap();
    t.write(".gitignore", "/*\n!/.gitignore\n!/keep/\n");
    t.write("src/a.env", format!("TOKEN={SECRET}\n"));
    t.write("build/deep/b.env", format!("TOKEN={SECRET2}\n"));
    t.write("notes.txt", "nothing\n");
    t.write("keep/.gitignore", "*.log\n");
    t.write("keep/x.log", format!("TOKEN={SECRET}\n"));
    t.write("keep/sub/y.log", format!("TOKEN={SECRET}\n"));
    t.write("keep/sub/z.txt", "z\n");
    let summary = t.dir.path().join("summary.json");
    let out = t
        .cmd(&["--summary", summary.to_str().unwrap(), "scan", "."])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // src, build, notes.txt, keep/x.log, keep/sub/y.log: a directory
    // counts once.
    assert!(
        stderr.contains("left out: 5 paths by ignore files (--no-ignore scans them)"),
        "{stderr}"
    );
    assert!(!stderr.contains("build"), "named only with -v: {stderr}");
    let s: Value = serde_json::from_slice(&fs::read(&summary).unwrap()).unwrap();
    assert_eq!(s["left_out"]["ignore_files"], 5, "{s}");
    assert_eq!(s["scanned"]["files"], 3, "{s}");
    assert_eq!(s["skipped"], serde_json::json!([]), "{s}");
    let out = t.cmd(&["-v", "scan", "."]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    for p in [
        "./src",
        "./build",
        "./notes.txt",
        "./keep/x.log",
        "./keep/sub/y.log",
    ] {
        assert!(
            stderr.contains(&format!("skipped: {p}: left out by an ignore file")),
            "{p} named: {stderr}"
        );
    }
    assert!(!stderr.contains("z.txt"), "{stderr}");

    // A root that yields nothing says why rather than reporting a clean
    // scan of zero files in silence.
    t.write("keep/.gitignore", "*\n");
    let out = t.cmd(&["scan", "keep"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .contains("warning: no file was scanned under keep: 3 paths left out by ignore files"),
        "{stderr}"
    );
    fs::create_dir(t.root().join("empty")).unwrap();
    t.cmd(&["scan", "empty"])
        .assert()
        .code(0)
        .stderr(predicate::str::contains(
            "warning: no file was scanned under empty: no files there",
        ));
}

#[test]
fn allowlisted_and_oversized_paths_are_counted_in_the_summary() {
    let t = Tree::new();
    t.write(
        ".leakhound.toml",
        "[[allowlist]]\ndescription = \"fixtures\"\npaths = [\"fixtures/\"]\n",
    );
    t.write("fixtures/a.env", format!("TOKEN={SECRET}\n"));
    t.write("fixtures/b.env", format!("TOKEN={SECRET2}\n"));
    t.write("big.txt", format!("{SECRET}\n{}", "a".repeat(4096)));
    let summary = t.dir.path().join("summary.json");
    let out = t
        .cmd(&[
            "--summary",
            summary.to_str().unwrap(),
            "scan",
            "--max-file-size",
            "1K",
            ".",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("left out: 2 files by allowlist paths (-v names them)"),
        "{stderr}"
    );
    let s: Value = serde_json::from_slice(&fs::read(&summary).unwrap()).unwrap();
    assert_eq!(
        s["left_out"],
        serde_json::json!({"ignore_files": 0, "allowlist_paths": 2, "too_large": 1}),
        "{s}"
    );
}

#[test]
fn files_over_max_file_size_are_skipped_and_reported() {
    let t = Tree::new();
    t.write("big.txt", format!("{SECRET}\n{}", "a".repeat(4096)));
    t.write("small.txt", SECRET2);
    t.cmd(&["scan", "--max-file-size", "1K", "."])
        .assert()
        .code(1)
        .stdout(
            predicate::str::contains("small.txt").and(predicate::str::contains("big.txt").not()),
        )
        .stderr(predicate::str::contains("big.txt").and(predicate::str::contains("max-file-size")));
}

#[test]
fn stdin_is_scanned_with_dash() {
    let t = Tree::new();
    let out = t
        .cmd(&["--format", "jsonl", "scan", "-"])
        .write_stdin(format!("line one\nauth {SECRET}\n"))
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let f: Value = serde_json::from_slice(out.split(|&b| b == b'\n').next().unwrap()).unwrap();
    assert_eq!(f["path"], "-");
    assert_eq!(f["line"], 2);
    assert_eq!(f["column"], 6);
}

#[test]
fn binary_files_are_scanned_when_they_hold_a_keyword() {
    let t = Tree::new();
    let mut bin = vec![0u8, 1, 2, 255, 0, 7];
    bin.extend(SECRET.as_bytes());
    bin.extend([0, 0, 0xfe]);
    t.write("app.bin", &bin);
    t.write("noise.bin", [0u8, 159, 146, 150, 0, 1]);
    assert_eq!(paths(&t.json(&["scan", "."])), vec!["./app.bin"]);
}

#[test]
fn unreadable_file_exits_2_and_strict_adds_files_left_out_by_limits() {
    // /proc/self/mem is a regular file whose read at offset 0 fails (EIO),
    // even for root, which ignores permission bits.
    let t = Tree::new();
    t.cmd(&["scan", "/proc/self/mem"]).assert().code(2).stderr(
        predicate::str::contains("/proc/self/mem")
            .and(predicate::str::contains("cannot read"))
            .and(predicate::str::contains("1 input(s) could not be scanned")),
    );
    // Too large is a limit, not a failure: exit 0, and 2 with --strict.
    t.write("big.txt", "x".repeat(2048));
    t.cmd(&["scan", "--max-file-size", "1K", "big.txt"])
        .assert()
        .code(0)
        .stderr(predicate::str::contains(
            "file is 2048 bytes, larger than the maximum file size 1024 (--max-file-size)",
        ));
    t.cmd(&["scan", "--strict", "--max-file-size", "1K", "big.txt"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("left out by limits (--strict)"));
}

/// Roots that are not regular files: a pipe given as `/dev/stdin`, a FIFO,
/// `<(command)` (bash) are read to their end like `-`; a socket is an
/// error (exit 2), never "nothing scanned, exit 0".
#[test]
fn pipes_named_on_the_command_line_are_read_and_a_socket_is_an_error() {
    let t = Tree::new();
    t.cmd(&["scan", "/dev/stdin"])
        .write_stdin(format!("token = {SECRET}\n"))
        .assert()
        .code(1)
        .stdout(predicate::str::contains("/dev/stdin:1:"));

    let fifo = t.root().join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || fs::write(fifo, format!("token = {SECRET}\n")).unwrap())
    };
    t.cmd(&["scan", "fifo"])
        .timeout(std::time::Duration::from_secs(60))
        .assert()
        .code(1)
        .stdout(predicate::str::contains("fifo:1:"));
    writer.join().unwrap();

    let rules = t.dir.path().join("rule.toml");
    let out = std::process::Command::new("bash")
        .current_dir(t.root())
        .arg("-c")
        .arg(format!(
            "{} --rules {} scan <(echo token = {SECRET})",
            env!("CARGO_BIN_EXE_leakhound"),
            rules.display()
        ))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("/dev/fd/"));

    let _listener = std::os::unix::net::UnixListener::bind(t.root().join("sock")).unwrap();
    t.cmd(&["scan", "sock"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("sock: is a socket"));
    // Inside a directory walk, special files are passed over (a FIFO
    // nobody writes would block the scan), and the regular files scanned.
    t.write("a.txt", format!("token = {SECRET}\n"));
    t.cmd(&["scan", "."])
        .timeout(std::time::Duration::from_secs(60))
        .assert()
        .code(1)
        .stdout(predicate::str::contains("a.txt:1:"));
}

#[test]
fn secrets_never_appear_in_any_format_unless_show_secrets() {
    let t = Tree::new();
    t.write("a.txt", format!("key: {SECRET}\n"));
    for format in ["text", "json", "jsonl", "sarif"] {
        let out = t.cmd(&["--format", format, "scan", "."]).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        let all = [out.stdout, out.stderr].concat();
        assert!(
            !String::from_utf8_lossy(&all).contains(&SECRET[7..]),
            "{format} output leaks the secret"
        );
        let out = t
            .cmd(&["--format", format, "--show-secrets", "scan", "."])
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(SECRET),
            "{format} --show-secrets omits the secret"
        );
    }
}

#[test]
fn output_flag_writes_the_report_to_a_file() {
    let t = Tree::new();
    t.write("a.txt", SECRET);
    let out = t.dir.path().join("report.json");
    t.cmd(&[
        "--format",
        "json",
        "--output",
        out.to_str().unwrap(),
        "scan",
        ".",
    ])
    .assert()
    .code(1)
    .stdout(predicate::str::is_empty());
    let v: Vec<Value> = serde_json::from_slice(&fs::read(out).unwrap()).unwrap();
    assert_eq!(v.len(), 1);
}

#[test]
fn findings_are_sorted_by_path_line_column() {
    let t = Tree::new();
    for name in ["z.txt", "a.txt", "m/b.txt"] {
        t.write(name, format!("{SECRET2}\n\n{SECRET} {SECRET2}\n"));
    }
    let f = t.json(&["--threads", "2", "scan", "."]);
    let keys: Vec<(String, u64, u64)> = f
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["line"].as_u64().unwrap(),
                f["column"].as_u64().unwrap(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert_eq!(keys.len(), 9);
}

fn sarif_schema() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(
        &fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sarif-schema-2.1.0.json"),
        )
        .unwrap(),
    )
    .unwrap();
    jsonschema::validator_for(&schema).expect("the SARIF schema compiles")
}

#[test]
fn sarif_is_valid_against_the_official_schema() {
    let t = Tree::new();
    t.write("dir with space/a.env", format!("A={SECRET}\nB={SECRET2}\n"));
    let out = t.cmd(&["--format", "sarif", "scan", "."]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let sarif: Value = serde_json::from_slice(&out.stdout).unwrap();
    let errors: Vec<String> = sarif_schema()
        .iter_errors(&sarif)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "SARIF schema errors: {errors:#?}");
    // The validator does reject a broken log (so this test can fail).
    let mut broken = sarif.clone();
    broken["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] =
        Value::from(0);
    assert!(!sarif_schema().is_valid(&broken));
    let run = &sarif["runs"][0];
    assert_eq!(run["tool"]["driver"]["rules"].as_array().unwrap().len(), 1);
    let r = &run["results"][0];
    assert_eq!(r["ruleId"], "lhtest-token");
    assert_eq!(r["level"], "error");
    assert_eq!(
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "dir%20with%20space/a.env"
    );
    assert_eq!(
        r["locations"][0]["physicalLocation"]["region"]["startColumn"],
        3
    );
    assert!(r["partialFingerprints"]["leakhoundSecretSha256/v1"].is_string());
    // No findings: still a valid log with an empty result list.
    let clean = Tree::new();
    clean.write("a.txt", "nothing here");
    let out = clean
        .cmd(&["--format", "sarif", "scan", "."])
        .output()
        .unwrap();
    let sarif: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(sarif_schema().is_valid(&sarif));
}

#[test]
fn rules_check_runs_examples_and_reports_failures() {
    let t = Tree::new();
    leakhound()
        .args(["rules", "check"])
        .arg(t.dir.path().join("rule.toml"))
        .assert()
        .code(0)
        .stdout(predicate::str::contains("ok: 1 rules"));
    let bad = t.dir.path().join("bad-example.toml");
    fs::write(&bad, TEST_RULE.replace("lhtest_short", SECRET)).unwrap();
    leakhound()
        .args(["rules", "check"])
        .arg(&bad)
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("lhtest-token")
                .and(predicate::str::contains("negative example")),
        );
}

/// An error is one line, each cause once (a missing config file once said
/// "No such file or directory (os error 2)" twice; a bad regex spread its
/// caret diagram over escaped newlines).
#[test]
fn error_messages_name_each_cause_once_on_one_line() {
    let t = Tree::new();
    let out = t
        .cmd(&["--config", "missing.toml", "scan", "."])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("os error 2").count(), 1, "{err}");
    t.write("bad.toml", "[[rules]]\nid = \"x\"\nregex = \"(a\"\n");
    let out = t
        .cmd(&["--gitleaks-config", "bad.toml", "scan", "."])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("unclosed group") && !err.contains("\\x0a"),
        "{err}"
    );
}
