//! `.leakhound.toml` does what docs/configuration.md says, key by key,
//! through the binary: each setting changes what is reported, and the
//! command line wins over the file.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const GH: &str = "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";
const NPM: &str = "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";

/// Rule ids reported by `leakhound ARGS` run in `dir` (its config read).
fn rules(dir: &Path, args: &[&str]) -> (Option<i32>, Vec<String>) {
    let out = Command::new(env!("CARGO_BIN_EXE_leakhound"))
        .current_dir(dir)
        .args(["--format", "json"])
        .args(args)
        .output()
        .unwrap();
    let f: Vec<Value> = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let mut ids: Vec<String> = f
        .iter()
        .map(|f| f["rule_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    (out.status.code(), ids)
}

fn tree(config: &str, files: &[(&str, String)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".leakhound.toml"), config).unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

#[test]
fn max_file_size_skips_larger_files_and_the_command_line_wins() {
    let d = tree(
        "max_file_size = \"40\"\n",
        &[("a.env", format!("TOKEN={GH}\n# padding padding\n"))],
    );
    assert_eq!(rules(d.path(), &["scan", "."]), (Some(0), vec![]));
    assert_eq!(
        rules(d.path(), &["scan", "--max-file-size", "1MiB", "."]),
        (Some(1), vec!["github-classic-pat".into()])
    );
    // Without the file's setting, the default (100MiB) reads it.
    assert_eq!(
        rules(d.path(), &["--no-config", "scan", "."]).1,
        ["github-classic-pat"]
    );
}

#[test]
fn decoders_false_stops_looking_inside_encodings_and_no_decode_turns_them_off_too() {
    use base64::Engine as _;
    let enc = base64::engine::general_purpose::STANDARD.encode(format!("token={GH}\n"));
    let files = [("blob.txt", format!("payload: {enc}\n"))];
    let on = tree("decoders = true\n", &files);
    assert_eq!(
        rules(on.path(), &["scan", "."]),
        (Some(1), vec!["github-classic-pat".into()])
    );
    assert_eq!(
        rules(on.path(), &["--no-decode", "scan", "."]),
        (Some(0), vec![])
    );
    let off = tree("decoders = false\n", &files);
    assert_eq!(rules(off.path(), &["scan", "."]), (Some(0), vec![]));
}

#[test]
fn min_confidence_hides_doubtful_findings_and_the_command_line_wins() {
    // A ghs_ token longer than 40 characters whose tail is no checksum:
    // doubtful (low confidence).
    let long = format!("ghs_{}", "R4nd0mV4lu3sAr3N0tPl4c3h0ld3rs".repeat(2));
    let files = [("a.env", format!("GITHUB_TOKEN={long}\n"))];
    let low = tree("min_confidence = \"low\"\n", &files);
    let (code, ids) = rules(low.path(), &["scan", "."]);
    assert_eq!(code, Some(1));
    assert!(!ids.is_empty());
    assert_eq!(
        rules(low.path(), &["--min-confidence", "high", "scan", "."]),
        (Some(0), vec![])
    );
    let high = tree("min_confidence = \"high\"\n", &files);
    assert_eq!(rules(high.path(), &["scan", "."]), (Some(0), vec![]));
    assert_eq!(
        rules(high.path(), &["--min-confidence", "low", "scan", "."]).1,
        ids
    );
}

#[test]
fn gitleaks_config_imports_its_rules() {
    let d = tree(
        "gitleaks_config = \"gl.toml\"\n",
        &[
            (
                "gl.toml",
                "[[rules]]\nid = \"Widget_Token\"\nregex = '''widget_[a-z0-9]{24}'''\n".into(),
            ),
            ("app.cfg", "key = widget_k3j5h7g9f1d3s5a7p9o1i3u5\n".into()),
        ],
    );
    assert_eq!(
        rules(d.path(), &["scan", "."]),
        (Some(1), vec!["widget-token".into()])
    );
    assert_eq!(
        rules(d.path(), &["--no-config", "scan", "."]),
        (Some(0), vec![])
    );
}

fn git(dir: &Path, args: &[&str]) -> String {
    let o = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Dev")
        .env("GIT_AUTHOR_EMAIL", "dev@example.com")
        .env("GIT_COMMITTER_NAME", "Dev")
        .env("GIT_COMMITTER_EMAIL", "dev@example.com")
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

#[test]
fn allowlist_commits_silences_what_those_commits_introduced_only() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    git(p, &["init", "-q", "-b", "main"]);
    std::fs::write(p.join("a.env"), format!("TOKEN={GH}\n")).unwrap();
    git(p, &["add", "."]);
    git(p, &["commit", "-q", "-m", "reviewed"]);
    let reviewed = git(p, &["rev-parse", "HEAD"]);
    std::fs::write(p.join("b.env"), format!("NPM_TOKEN={NPM}\n")).unwrap();
    git(p, &["add", "."]);
    git(p, &["commit", "-q", "-m", "new"]);
    assert_eq!(
        rules(p, &["git", "."]).1,
        ["github-classic-pat", "npm-access-token"]
    );
    std::fs::write(
        p.join(".leakhound.toml"),
        format!(
            "[[allowlist]]\ndescription = \"reviewed\"\ncommits = [\"{}\"]\n",
            &reviewed[..10]
        ),
    )
    .unwrap();
    assert_eq!(
        rules(p, &["git", "."]),
        (Some(1), vec!["npm-access-token".into()])
    );
}
