//! The CI gate: baselines, allowlists, inline markers and `.leakhound.toml`
//! in real Git repositories built with the git CLI at test time, gitleaks
//! config import, and the pre-commit hook run by pre-commit.
//!
//! Secrets come from a test-local rule (`acme-live-key`), so these tests do
//! not depend on the default pack's checksums and formats.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const RULE: &str = r#"
[[rules]]
id = "acme-live-key"
name = "Acme live key"
description = "An Acme API key (test rule)."
keywords = ["acme_live_"]
regex = '''\b(acme_live_[a-z0-9]{24})\b'''
severity = "high"
confidence = "high"
examples = [{ text = "k = acme_live_0123456789abcdefghijklmn", secret = "acme_live_0123456789abcdefghijklmn" }]
"#;

/// The repository's config: the test rule, whose own examples are allowed.
const CONFIG: &str = "rules = [\"ci/acme.toml\"]\n\n[[allowlist]]\npaths = [\"ci/\"]\n";

/// A fake key of the test rule's format, distinct per `n`.
fn key(n: u32) -> String {
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut x = n.wrapping_mul(2_654_435_761).wrapping_add(12345);
    let tail: String = (0..24)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            alphabet[(x % 36) as usize] as char
        })
        .collect();
    format!("acme_live_{tail}")
}

struct Repo {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Repo {
    /// A Git repository with the test rule wired in by its `.leakhound.toml`.
    fn new() -> Repo {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("repo");
        std::fs::create_dir(&path).unwrap();
        let r = Repo { _dir: dir, path };
        r.git(&["init", "-q", "-b", "main"]);
        r.write("ci/acme.toml", RULE);
        r.write(".leakhound.toml", CONFIG);
        r
    }
    fn write(&self, rel: &str, content: &str) {
        let p = self.path.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .current_dir(&self.path)
            .args(args)
            .env("GIT_AUTHOR_NAME", "Test")
            .env("GIT_AUTHOR_EMAIL", "test@example.com")
            .env("GIT_COMMITTER_NAME", "Test")
            .env("GIT_COMMITTER_EMAIL", "test@example.com")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .expect("git runs");
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
    fn commit(&self, msg: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", msg]);
    }
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_leakhound"))
            .current_dir(&self.path)
            .args(args)
            .output()
            .expect("leakhound runs")
    }
    /// Runs with `--format json`; returns the exit code and findings.
    fn json(&self, args: &[&str]) -> (i32, Vec<Value>, String) {
        let mut all = vec!["--format", "json", "--show-secrets"];
        all.extend_from_slice(args);
        let out = self.run(&all);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let findings: Vec<Value> = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("json output ({e}): {out:?}"));
        (out.status.code().unwrap(), findings, stderr)
    }
}

fn secrets(findings: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = findings
        .iter()
        .map(|f| f["secret"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn baselined_finding_disappears_new_secret_on_same_line_is_reported_and_moving_keeps_it_silent() {
    let repo = Repo::new();
    let (old, new) = (key(1), key(2));
    repo.write(
        "app/settings.py",
        &format!("DEBUG = False\nACME = \"{old}\"\n"),
    );
    repo.commit("settings");

    let (code, found, _) = repo.json(&["scan", "."]);
    assert_eq!((code, secrets(&found)), (1, vec![old.clone()]));

    // Review: accept what is there now.
    let out = repo.run(&["scan", ".", "--write-baseline", "leakhound-baseline.json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let written = std::fs::read_to_string(repo.path.join("leakhound-baseline.json")).unwrap();
    assert!(
        !written.contains(&old),
        "a baseline holds fingerprints, never secrets"
    );
    repo.commit("baseline");

    let (code, found, stderr) = repo.json(&["scan", ".", "--baseline", "leakhound-baseline.json"]);
    assert_eq!((code, found.len()), (0, 0), "{stderr}");
    assert!(stderr.contains("1 in baseline"), "{stderr}");

    // A different secret on the very same line is new.
    repo.write(
        "app/settings.py",
        &format!("DEBUG = False\nACME = \"{old}\"; ACME2 = \"{new}\"\n"),
    );
    let (code, found, _) = repo.json(&["scan", ".", "--baseline", "leakhound-baseline.json"]);
    assert_eq!((code, secrets(&found)), (1, vec![new.clone()]));

    // The reviewed one, moved down by 50 lines, stays silent.
    let filler: String = (0..50).map(|i| format!("X{i} = {i}\n")).collect();
    repo.write(
        "app/settings.py",
        &format!("DEBUG = False\n{filler}ACME = \"{old}\"\n"),
    );
    let (code, found, _) = repo.json(&["scan", ".", "--baseline", "leakhound-baseline.json"]);
    assert_eq!((code, found.len()), (0, 0), "{found:?}");

    // The same baseline serves the history scan of the repository.
    repo.commit("move");
    let (code, found, stderr) = repo.json(&["git", ".", "--baseline", "leakhound-baseline.json"]);
    assert_eq!((code, found.len()), (0, 0), "{found:?} {stderr}");
}

#[test]
fn baseline_file_is_stable_sorted_json_without_lines_or_timestamps() {
    let repo = Repo::new();
    let body: String = (10..16)
        .rev()
        .map(|n| format!("k{n} = {}\n", key(n)))
        .collect();
    repo.write("a.env", &body);
    repo.write("b.env", &format!("k = {}\n", key(3)));
    repo.run(&["scan", ".", "--write-baseline", "one.json"]);
    repo.write("a.env", &format!("\n\n\n{body}"));
    repo.run(&["scan", ".", "--write-baseline", "two.json"]);
    let one = std::fs::read(repo.path.join("one.json")).unwrap();
    let two = std::fs::read(repo.path.join("two.json")).unwrap();
    assert_eq!(one, two, "moving lines must not change the baseline file");
    let v: Value = serde_json::from_slice(&one).unwrap();
    assert_eq!(v["version"], 1);
    let fps: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["fingerprint"].as_str().unwrap())
        .collect();
    assert_eq!(fps.len(), 7);
    assert!(fps.windows(2).all(|w| w[0] < w[1]), "sorted, unique");
    let text = String::from_utf8(one).unwrap();
    assert!(!text.contains("line") && !text.contains("time"), "{text}");
}

#[test]
fn inline_markers_silence_their_line_only() {
    let repo = Repo::new();
    repo.write(
        "config.ini",
        &format!(
            "a = {} # leakhound:allow\nb = {} // gitleaks:allow\nc = {}  # pragma: allowlist secret\nd = {}\n",
            key(1),
            key(2),
            key(3),
            key(4)
        ),
    );
    let (code, found, stderr) = repo.json(&["scan", "."]);
    assert_eq!((code, secrets(&found)), (1, vec![key(4)]));
    assert!(stderr.contains("3 allowed inline"), "{stderr}");
}

#[test]
fn config_allowlists_disabled_rules_and_confidence_apply() {
    let repo = Repo::new();
    repo.write(
        ".leakhound.toml",
        r#"rules = ["ci/acme.toml"]
disabled_rules = ["aws-access-key-id"]

[[allowlist]]
description = "fake keys for tests"
paths = ["tests/fixtures/**", "*.snap", "ci/"]

[[allowlist]]
rules = ["acme-live-key"]
stopwords = ["zzzz"]
"#,
    );
    repo.write("tests/fixtures/keys.txt", &format!("k = {}\n", key(1)));
    repo.write("src/x.snap", &format!("k = {}\n", key(2)));
    repo.write("src/real.py", &format!("k = \"{}\"\n", key(3)));
    repo.write(
        "src/fake.py",
        "k = \"acme_live_0123456789zzzz0123456789\"\n",
    );
    repo.write("src/aws.py", "AWS = \"AKIAZ3MSJV4WN5FQ7ACS\"\n");
    let (code, found, stderr) = repo.json(&["scan", "."]);
    assert_eq!((code, secrets(&found)), (1, vec![key(3)]), "{stderr}");
    assert!(stderr.contains("1 allowlisted"), "{stderr}");

    // --verbose tells which files an allowlist kept out.
    let out = repo.run(&["scan", ".", "--verbose"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("keys.txt: allowlisted path"), "{err}");

    // --no-config: everything the default pack knows (the AWS key), not the test rule.
    let (_, found, _) = repo.json(&["scan", ".", "--no-config"]);
    let rules: Vec<&str> = found
        .iter()
        .map(|f| f["rule_id"].as_str().unwrap())
        .collect();
    assert!(rules.contains(&"aws-access-key-id"), "{rules:?}");
    assert!(!rules.contains(&"acme-live-key"), "{rules:?}");
}

#[test]
fn config_errors_name_the_file_and_line_and_exit_2() {
    let repo = Repo::new();
    repo.write(
        ".leakhound.toml",
        "min_confidence = \"low\"\n\n[[allowlist]]\npath = [\"x/**\"]\n",
    );
    let out = repo.run(&["scan", "."]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err.contains(".leakhound.toml") && err.contains("line 4"),
        "{err}"
    );
    assert!(err.contains("unknown field `path`"), "{err}");

    repo.write(".leakhound.toml", "disabled_rules = [\"no-such-rule\"]\n");
    let out = repo.run(&["scan", "."]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-rule"));
}

#[test]
fn init_writes_a_commented_config_that_loads_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_leakhound"))
            .current_dir(dir.path())
            .args(args)
            .output()
            .unwrap()
    };
    assert_eq!(run(&["init"]).status.code(), Some(0));
    let text = std::fs::read_to_string(dir.path().join(".leakhound.toml")).unwrap();
    assert!(text.contains("[[allowlist]]"));
    assert_eq!(run(&["scan", "."]).status.code(), Some(0));
    assert_eq!(run(&["init"]).status.code(), Some(2));
    assert_eq!(run(&["init", "--force"]).status.code(), Some(0));
}

#[test]
fn completions_and_man_page_are_generated_from_the_cli() {
    let out = Command::new(env!("CARGO_BIN_EXE_leakhound"))
        .args(["completions", "bash"])
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("_leakhound") && s.contains("--baseline"), "{s}");
    let out = Command::new(env!("CARGO_BIN_EXE_leakhound"))
        .arg("man")
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.starts_with(".ie") || s.contains(".TH leakhound"), "{s}");
}

#[test]
fn imported_gitleaks_config_finds_what_gitleaks_finds() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let config = r#"
title = "team rules"

[[rules]]
id = "acme-api-key"
description = "Acme API key"
regex = '''(?i)acme[_-]?key\s*[:=]\s*["']?([a-z0-9]{32})'''
secretGroup = 1
keywords = ["acme"]
entropy = 3.0

[[rules.allowlists]]
stopwords = ["deadbeef"]

[[rules]]
id = "Widget_Token"
description = "Widget token, only in .env files"
regex = '''wdg_[A-Za-z0-9]{20}'''
path = '''\.env$'''
keywords = ["wdg_"]

[[rules]]
id = "internal-secret"
description = "keyword elsewhere in the file"
regex = '''ISEC-[0-9A-F]{16}'''
keywords = ["internal"]

[[allowlists]]
description = "vendored code"
paths = ['''(^|/)vendor/''']

[[allowlists]]
targetRules = ["internal-secret"]
regexTarget = "line"
regexes = ['''^#''']
"#;
    std::fs::write(root.join("gitleaks.toml"), config).unwrap();
    let files: &[(&str, &str)] = &[
        (
            "tree/app/config.py",
            "ACME_KEY = 'q8w7e6r5t4y3u2i1o9p8a7s6d5f4g3h2'\nacme-key: \"deadbeefq8w7e6r5t4y3u2i1o9p8a7s6\"\nACME_KEY = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'\n",
        ),
        (
            "tree/vendor/lib/acme.py",
            "acme_key = 'z9x8c7v6b5n4m3l2k1j9h8g7f6d5s4a3'\n",
        ),
        ("tree/.env", "WIDGET=wdg_Ab3dEf6hIj9kLm2nOp5q\n"),
        ("tree/notes.txt", "WIDGET=wdg_Zy3xWv6uTs9rQp2oNm5l\n"),
        (
            "tree/ops/run.sh",
            "# internal tooling\nexport S=ISEC-0123456789ABCDEF\n# ISEC-FEDCBA9876543210\n",
        ),
    ];
    for (p, c) in files {
        let p = root.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, c).unwrap();
    }
    // What gitleaks 8 reports on this tree, by its documented semantics
    // (gitleaks itself cannot be installed on the test machines: see
    // docs/configuration.md): the stopword, the low-entropy value, the
    // vendored file, the non-.env path and the commented line are allowed
    // or dropped; a keyword anywhere in the file enables its rule.
    let expected: Vec<(String, u64, String, String)> = vec![
        (".env", 1, "widget-token", "wdg_Ab3dEf6hIj9kLm2nOp5q"),
        (
            "app/config.py",
            1,
            "acme-api-key",
            "q8w7e6r5t4y3u2i1o9p8a7s6d5f4g3h2",
        ),
        ("ops/run.sh", 2, "internal-secret", "ISEC-0123456789ABCDEF"),
    ]
    .into_iter()
    .map(|(p, l, r, s)| (format!("tree/{p}"), l, r.to_string(), s.to_string()))
    .collect();

    let out = Command::new(env!("CARGO_BIN_EXE_leakhound"))
        .current_dir(root)
        .args([
            "scan",
            "tree",
            "--gitleaks-config",
            "gitleaks.toml",
            "--format",
            "json",
            "--show-secrets",
            "--min-confidence",
            "low",
        ])
        .output()
        .unwrap();
    let ours: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let imported = ["acme-api-key", "widget-token", "internal-secret"];
    let mut got: Vec<(String, u64, String, String)> = ours
        .iter()
        .filter(|f| imported.contains(&f["rule_id"].as_str().unwrap()))
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["line"].as_u64().unwrap(),
                f["rule_id"].as_str().unwrap().to_string(),
                f["secret"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        expected,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn pre_commit_hook_blocks_a_staged_secret_and_allows_a_clean_commit() {
    // The hook repository: our .pre-commit-hooks.yaml in a repo of its own,
    // so the test does not depend on the project's Git state.
    let hooks = tempfile::tempdir().unwrap();
    let hooks_yaml = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(".pre-commit-hooks.yaml"),
    )
    .unwrap();
    let hook_repo = Repo {
        path: hooks.path().to_path_buf(),
        _dir: tempfile::tempdir().unwrap(),
    };
    hook_repo.git(&["init", "-q", "-b", "main"]);
    hook_repo.write(".pre-commit-hooks.yaml", &hooks_yaml);
    hook_repo.commit("hooks");

    let repo = Repo::new();
    repo.write("README.md", "hello\n");
    repo.commit("init");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_leakhound")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let try_repo = |repo: &Repo| {
        Command::new("pre-commit")
            .current_dir(&repo.path)
            .args([
                "try-repo",
                hooks.path().to_str().unwrap(),
                "leakhound-system",
            ])
            .env("PATH", &path)
            .env("PRE_COMMIT_HOME", repo.path.join(".pre-commit-cache"))
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .expect("pre-commit is installed (scripts/test.sh installs it)")
    };

    repo.write("src/app.py", &format!("KEY = \"{}\"\n", key(7)));
    repo.git(&["add", "src/app.py"]);
    let out = try_repo(&repo);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "a staged secret must block: {text}");
    assert!(text.contains("acme-live-key"), "{text}");

    repo.write("src/app.py", "KEY = os.environ[\"KEY\"]\n");
    repo.git(&["add", "src/app.py"]);
    let out = try_repo(&repo);
    assert!(out.status.success(), "a clean commit passes: {out:?}");
}
