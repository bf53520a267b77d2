//! What ships: the binary itself must not look like a leak (it is copied
//! into images and onto systems that leakhound then scans).

use std::fs;

use aho_corasick::AhoCorasick;
use leakhound::rules::embedded_specs;

/// Every rule example's captured secret; none may appear in the binary as
/// text, or scanning a system that has leakhound installed reports it.
#[test]
fn the_binary_holds_no_rule_example_as_text() {
    let mut secrets: Vec<String> = Vec::new();
    for (_, spec) in embedded_specs().unwrap() {
        for ex in &spec.examples {
            if ex.secret.len() >= 16 {
                secrets.push(ex.secret.clone());
            }
        }
    }
    assert!(
        secrets.len() > 200,
        "only {} example secrets",
        secrets.len()
    );
    let binary = fs::read(env!("CARGO_BIN_EXE_leakhound")).unwrap();
    let ac = AhoCorasick::new(&secrets).unwrap();
    let found: Vec<&str> = ac
        .find_iter(&binary)
        .map(|m| secrets[m.pattern().as_usize()].as_str())
        .take(5)
        .collect();
    assert!(found.is_empty(), "example secrets in the binary: {found:?}");
}

// The workflow files and the GitHub Action. actionlint cannot be installed
// here (its PyPI wrapper downloads the binary from GitHub at build time), so
// they are parsed as YAML and checked for what they must do; the action's
// scan and failure steps are run for real with bash against this binary.

use std::path::Path;
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

fn yaml(path: &str) -> Yaml {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    let text = fs::read_to_string(&p).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(docs.len(), 1, "{path}: one document");
    docs.remove(0)
}

fn keys(y: &Yaml) -> Vec<String> {
    y.as_hash()
        .expect("a mapping")
        .keys()
        .map(|k| k.as_str().unwrap().to_string())
        .collect()
}

fn runs(steps: &Yaml) -> String {
    steps
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(|s| s["run"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

fn uses(steps: &Yaml) -> Vec<String> {
    steps
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(|s| s["uses"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn ci_workflow_runs_the_ci_entry_point() {
    let ci = yaml(".github/workflows/ci.yml");
    assert_eq!(keys(&ci["jobs"]), ["test"]);
    assert!(runs(&ci["jobs"]["test"]["steps"]).contains("bash .ci/run"));
    assert!(!ci["on"]["pull_request"].is_badvalue());
}

#[test]
fn release_workflow_builds_every_platform_and_publishes_sums_and_image() {
    let rel = yaml(".github/workflows/release.yml");
    assert_eq!(keys(&rel["jobs"]), ["build", "publish", "image"]);
    assert_eq!(rel["on"]["push"]["tags"][0].as_str(), Some("v*"));
    let targets: Vec<&str> = rel["jobs"]["build"]["strategy"]["matrix"]["include"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|m| m["target"].as_str().unwrap())
        .collect();
    assert_eq!(
        targets,
        [
            "x86_64-unknown-linux-musl",
            "aarch64-unknown-linux-musl",
            "x86_64-apple-darwin",
            "aarch64-apple-darwin",
            "x86_64-pc-windows-msvc"
        ]
    );
    assert!(runs(&rel["jobs"]["publish"]["steps"]).contains("sha256sum leakhound-* > SHA256SUMS"));
    let image = &rel["jobs"]["image"];
    assert_eq!(image["needs"].as_str(), Some("build"));
    let push = image["steps"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("docker/build-push-action@"))
        })
        .expect("a build-push step");
    assert_eq!(
        push["with"]["platforms"].as_str(),
        Some("linux/amd64,linux/arm64")
    );
    assert_eq!(
        push["with"]["file"].as_str(),
        Some("packaging/Containerfile.binary")
    );
    // Every asset name the action asks for is one the release attaches.
    let action =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("action.yml")).unwrap();
    for t in targets {
        assert!(
            action.contains(&format!("asset=leakhound-{t}")),
            "action lacks {t}"
        );
    }
}

#[test]
fn action_downloads_and_verifies_a_binary_and_uploads_with_the_current_major() {
    let a = yaml("action.yml");
    assert_eq!(a["runs"]["using"].as_str(), Some("composite"));
    let steps = &a["runs"]["steps"];
    let all = runs(steps);
    assert!(
        !all.contains("cargo"),
        "the action must not build leakhound"
    );
    assert!(all.contains("SHA256SUMS") && all.contains("sha256sum -c"));
    assert_eq!(uses(steps), ["github/codeql-action/upload-sarif@v4"]);
    for out in ["findings", "sarif-file", "exit-code"] {
        assert!(!a["outputs"][out]["value"].is_badvalue(), "output {out}");
    }
    let upload = steps
        .as_vec()
        .unwrap()
        .iter()
        .find(|s| s["uses"].as_str().is_some())
        .unwrap();
    assert_eq!(
        upload["if"].as_str(),
        Some("${{ steps.scan.outputs.upload == 'true' }}")
    );
}

/// The `run` script of the action step named `name`.
fn action_step(name: &str) -> String {
    let a = yaml("action.yml");
    a["runs"]["steps"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|s| s["name"].as_str() == Some(name))
        .and_then(|s| s["run"].as_str())
        .unwrap_or_else(|| panic!("no step {name}"))
        .to_string()
}

fn outputs(file: &Path) -> std::collections::BTreeMap<String, String> {
    fs::read_to_string(file)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn git(dir: &Path, args: &[&str]) {
    let st = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(st.success(), "git {args:?}");
}

/// Runs the action's Scan step, then its failure step, as the runner would.
fn run_action(repo: &Path, args: &str, head_repo: &str) -> (Outputs, std::process::Output) {
    let temp = repo.join("../runner-temp");
    fs::create_dir_all(&temp).unwrap();
    let out_file = temp.join("github-output");
    let _ = fs::remove_file(&out_file);
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_leakhound")).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    let scan = Command::new("bash")
        .arg("-c")
        .arg(action_step("Scan"))
        .current_dir(repo)
        .env("PATH", &path)
        .env("BASE", "")
        .env("ARGS", args)
        .env("SARIF", "leakhound.sarif")
        .env("UPLOAD", "true")
        .env("HEAD_REPO", head_repo)
        .env("REPO", "leakhound/leakhound")
        .env("GITHUB_OUTPUT", &out_file)
        .env("RUNNER_TEMP", &temp)
        .output()
        .unwrap();
    assert!(
        scan.status.success(),
        "the scan step itself always succeeds"
    );
    let o = outputs(&out_file);
    let fail = Command::new("bash")
        .arg("-c")
        .arg(action_step("Fail on findings or errors"))
        .env("CODE", &o["exit-code"])
        .env("FINDINGS", &o["findings"])
        .env("STDERR", &o["stderr"])
        .output()
        .unwrap();
    (Outputs { map: o, scan }, fail)
}

struct Outputs {
    map: std::collections::BTreeMap<String, String>,
    scan: std::process::Output,
}

#[test]
fn action_scan_step_runs_once_and_reports_findings_and_failures() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    // Put together here so that this file holds no secret.
    let key = format!("sk_{}_4eC39HqLyjWDarjtT1zdp7dc9x", "live");
    fs::write(repo.join("app.env"), format!("STRIPE_KEY={key}\n")).unwrap();
    fs::write(repo.join("*"), "a file named like a glob\n").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-qm", "add config"]);

    // Findings; quoted ARGS stay one argument each and are not globbed; a
    // fork's pull request does not upload.
    let (o, fail) = run_action(
        &repo,
        "--no-config '--min-confidence' \"medium\"",
        "someone/fork",
    );
    let scan_log = String::from_utf8_lossy(&o.scan.stdout);
    assert_eq!(
        o.map["exit-code"],
        "1",
        "{}",
        String::from_utf8_lossy(&o.scan.stderr)
    );
    assert_eq!(o.map["findings"], "1");
    assert_eq!(o.map["upload"], "false");
    assert_eq!(o.map["sarif-file"], "leakhound.sarif");
    assert!(
        scan_log.contains("app.env:1  stripe-live-secret-key"),
        "{scan_log}"
    );
    assert!(
        !scan_log.contains(&key),
        "the text listing masks the secret"
    );
    let sarif: serde_json::Value =
        serde_json::from_slice(&fs::read(repo.join("leakhound.sarif")).unwrap()).unwrap();
    assert_eq!(sarif["runs"][0]["results"].as_array().unwrap().len(), 1);
    assert_eq!(fail.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&fail.stdout).contains("::error::leakhound found 1 secret"));

    // Same repository: upload.
    let (o, _) = run_action(&repo, "", "");
    assert_eq!(o.map["upload"], "true");

    // Exit 2: SARIF says the run did not succeed; the job fails with the
    // scan's own message.
    let (o, fail) = run_action(&repo, "--rules /nonexistent/rules.toml", "");
    assert_eq!(o.map["exit-code"], "2");
    let sarif: serde_json::Value =
        serde_json::from_slice(&fs::read(repo.join("leakhound.sarif")).unwrap()).unwrap();
    assert_eq!(
        sarif["runs"][0]["invocations"][0]["executionSuccessful"],
        serde_json::Value::Bool(false)
    );
    assert_eq!(fail.status.code(), Some(2));
    let msg = String::from_utf8_lossy(&fail.stdout);
    assert!(
        msg.contains("::error::leakhound could not complete the scan (exit 2)")
            && msg.contains("nonexistent"),
        "{msg}"
    );
}

#[test]
fn pre_commit_hooks_keep_the_system_hook_and_pin_the_image_to_this_version() {
    let hooks = yaml(".pre-commit-hooks.yaml");
    let hooks = hooks.as_vec().unwrap();
    let ids: Vec<&str> = hooks.iter().map(|h| h["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["leakhound", "leakhound-system", "leakhound-docker"]);
    for h in hooks {
        assert!(h["entry"].as_str().unwrap().ends_with("git --staged"));
    }
    assert_eq!(hooks[1]["language"].as_str(), Some("system"));
    let image = hooks[2]["entry"].as_str().unwrap();
    assert_eq!(
        image,
        format!(
            "ghcr.io/leakhound/leakhound:{} git --staged",
            env!("CARGO_PKG_VERSION")
        )
    );
}

/// The action's install step with `curl` replaced by a copy from a local
/// "release" directory: the asset for the runner is taken, checked against
/// SHA256SUMS, and put on GITHUB_PATH; a tampered asset fails the step.
#[test]
fn action_install_step_verifies_the_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let release = dir.path().join("release");
    let fakebin = dir.path().join("fakebin");
    fs::create_dir_all(&release).unwrap();
    fs::create_dir_all(&fakebin).unwrap();
    // curl -fsSL --retry 3 -o FILE URL: copy release/<last URL segment>.
    fs::write(
        fakebin.join("curl"),
        format!(
            "#!/bin/sh\nwhile [ $# -gt 1 ]; do [ \"$1\" = -o ] && out=$2; shift; done\n\
             echo \"$1\" >> {log}\ncp \"{rel}/${{1##*/}}\" \"$out\"\n",
            log = dir.path().join("urls").display(),
            rel = release.display()
        ),
    )
    .unwrap();
    Command::new("chmod")
        .arg("+x")
        .arg(fakebin.join("curl"))
        .status()
        .unwrap();
    let asset = "leakhound-x86_64-unknown-linux-musl";
    fs::write(release.join(asset), "#!/bin/sh\necho leakhound 9.9.9\n").unwrap();
    let sums = Command::new("sha256sum")
        .arg(asset)
        .current_dir(&release)
        .output()
        .unwrap()
        .stdout;
    let other = "0000000000000000000000000000000000000000000000000000000000000000  leakhound-x86_64-apple-darwin\n";
    fs::write(
        release.join("SHA256SUMS"),
        [other.as_bytes(), &sums].concat(),
    )
    .unwrap();
    let install = |n: &str| {
        let temp = dir.path().join(n);
        fs::create_dir_all(&temp).unwrap();
        let out = Command::new("bash")
            .arg("-c")
            .arg(action_step("Install leakhound"))
            .env(
                "PATH",
                format!("{}:{}", fakebin.display(), std::env::var("PATH").unwrap()),
            )
            .env("RUNNER_OS", "Linux")
            .env("RUNNER_ARCH", "X64")
            .env("RUNNER_TEMP", &temp)
            .env("GITHUB_PATH", temp.join("path"))
            .env("VERSION", "")
            .env("ACTION_REF", "v9.9.9")
            .output()
            .unwrap();
        (temp, out)
    };
    let (temp, out) = install("good");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bin_dir = fs::read_to_string(temp.join("path")).unwrap();
    let run = Command::new(Path::new(bin_dir.trim()).join("leakhound"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&run.stdout), "leakhound 9.9.9\n");
    let urls = fs::read_to_string(dir.path().join("urls")).unwrap();
    assert!(
        urls.contains(&format!("/releases/download/v9.9.9/{asset}")),
        "{urls}"
    );

    fs::write(release.join(asset), "#!/bin/sh\necho tampered\n").unwrap();
    let (temp, out) = install("tampered");
    assert!(!out.status.success(), "a tampered binary must not install");
    assert!(!temp.join("path").exists());
}
