//! Cross-source parity (issue 14 item 6): the same secrets, in the same
//! forms (plain, in Kubernetes Secrets, base64, base64 of gzip, hex,
//! percent-encoded, JSON-escaped, inside a zip and a tar.gz), put into a
//! directory, a Git commit, an image layer and log streams, are reported by
//! every source with the same rule ids, `decoded` chains and positions in
//! the unit. Log streams carry the text forms (archives are not opened in
//! a stream, as in standard input).
//!
//! Tokens are fake, built at run time with valid checksums, so no token
//! sits in this file as one string.

#[path = "support/image.rs"]
mod fixture;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::Command;

use base64::Engine;
use fixture::*;
use leakhound::rules::validate::base62_crc32;
use serde_json::{Value, json};

/// A GitHub classic token with a valid checksum, from `seed`.
fn github(seed: &str) -> String {
    let random: String = format!("{seed}{}", "Zq8vT2mLw9pKx4rB7nC1dF6hJ3sG5yW0")
        .chars()
        .take(30)
        .collect();
    format!("ghp_{random}{}", base62_crc32(random.as_bytes()))
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

fn percent(data: &str) -> String {
    data.bytes().map(|b| format!("%{b:02X}")).collect()
}

fn zip(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data) in files {
        w.start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// The case files: name → bytes. Text cases are also streamed as logs.
fn cases() -> Vec<(String, Vec<u8>, bool)> {
    let t = |s: &str| s.as_bytes().to_vec();
    let secret_yaml = |key: &str, value: &str| {
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: app\n  namespace: prod\n\
             type: Opaque\ndata:\n  {key}: {}\n",
            b64(value.as_bytes())
        )
    };
    let text = vec![
        ("plain.env", format!("GITHUB_TOKEN={}\n", github("a1"))),
        (
            "slack.yaml",
            format!("slack:\n  bot_token: {}\n", slack_token()),
        ),
        (
            "npm.rc",
            format!("//registry.npmjs.org/:_authToken={}\n", npm_token()),
        ),
        ("secret.yaml", secret_yaml("token", &github("b2"))),
        (
            "stringdata.yaml",
            format!(
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: web\nstringData:\n  \
                 slack: {}\n",
                slack_token()
            ),
        ),
        (
            "base64.txt",
            format!(
                "payload: {}\n",
                b64(format!("GITHUB_TOKEN={}", github("c3")).as_bytes())
            ),
        ),
        (
            "base64-gzip.txt",
            format!(
                "blob: {}\n",
                b64(&gzip(format!("token={}\n", github("d4")).as_bytes()))
            ),
        ),
        (
            "hex.txt",
            format!(
                "dump={}\n",
                hex(format!("GITHUB_TOKEN={}", github("e5")).as_bytes())
            ),
        ),
        (
            "percent.txt",
            format!(
                "GET /hook?auth={} HTTP/1.1\n",
                percent(&format!("token={}", github("f6")))
            ),
        ),
        (
            "escaped.json",
            format!(
                "{{\"level\":\"info\",\"msg\":\"env GITHUB_TOKEN\\u003d{}\"}}\n",
                github("g7").replacen('_', "\\u005f", 1)
            ),
        ),
        (
            "two-per-line.log",
            format!("level=warn npm={} slack={}\n", npm_token(), slack_token()),
        ),
        (
            "helmish.yaml",
            secret_yaml("npm", &format!("NPM_TOKEN={}", npm_token())),
        ),
    ];
    let mut out: Vec<(String, Vec<u8>, bool)> = text
        .into_iter()
        .map(|(n, s)| (n.to_string(), t(&s), true))
        .collect();
    let env = format!("GITHUB_TOKEN={}\n", github("h8"));
    out.push((
        "bundle.zip".into(),
        zip(&[("conf/.env", env.as_bytes())]),
        false,
    ));
    let yaml = format!("slack:\n  bot_token: {}\n", slack_token());
    out.push((
        "bundle.tar.gz".into(),
        gzip(&layer_tar(&[("etc/app.yaml", yaml.as_bytes())])),
        false,
    ));
    let jar_env = format!("NPM_TOKEN={}\n", npm_token());
    out.push((
        "lib.jar".into(),
        zip(&[("META-INF/config.properties", jar_env.as_bytes())]),
        false,
    ));
    out
}

/// What parity compares: case-relative path, rule, decoding chain and
/// position in the unit.
type Key = (String, String, Vec<String>, u64, u64, u64, u64);

fn keys(findings: &[Value], strip: &str) -> BTreeSet<Key> {
    findings
        .iter()
        .map(|f| {
            let path = f["path"].as_str().expect("path");
            let path = path.strip_prefix(strip).unwrap_or(path).to_string();
            let decoded = f["decoded"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect();
            let n = |k: &str| f[k].as_u64().unwrap();
            (
                path,
                f["rule_id"].as_str().unwrap().to_string(),
                decoded,
                n("line"),
                n("column"),
                n("end_line"),
                n("end_column"),
            )
        })
        .collect()
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Dev")
        .env("GIT_AUTHOR_EMAIL", "dev@example.org")
        .env("GIT_COMMITTER_NAME", "Dev")
        .env("GIT_COMMITTER_EMAIL", "dev@example.org")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

#[test]
fn every_source_reports_the_same_secrets_the_same_way() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = cases();

    // A directory (also a Git work tree, committed once).
    let repo = tmp.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    for (name, data, _) in &cases {
        std::fs::write(repo.join(name), data).unwrap();
    }
    let root = format!("{}/", repo.display());
    let (code, found, stderr) = leakhound(&["--no-config", "scan", &root], None, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    let dir = keys(&found, &root);

    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "add config"]);
    let (code, found, stderr) =
        leakhound(&["--no-config", "git", repo.to_str().unwrap()], None, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    let history = keys(&found, "");

    // One image layer holding the same files under app/.
    let files: Vec<(String, &[u8])> = cases
        .iter()
        .map(|(n, d, _)| (format!("app/{n}"), &d[..]))
        .collect();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (n.as_str(), *d)).collect();
    let img = TestImage::new(
        vec![layer_tar(&refs)],
        json!([{"created_by": "COPY . /app"}]),
        vec!["PATH=/usr/bin".into()],
    );
    let layout = tmp.path().join("layout");
    std::fs::create_dir(&layout).unwrap();
    img.write_oci_dir(&layout, "v1");
    let (code, found, stderr) = leakhound(
        &[
            "--no-config",
            "image",
            "--oci-layout",
            layout.to_str().unwrap(),
        ],
        None,
        &[],
    );
    assert_eq!(code, Some(1), "{stderr}");
    let image = keys(&found, "app/");

    // Log streams: each text case is its own stream.
    let logs: Vec<String> = cases
        .iter()
        .filter(|(_, _, text)| *text)
        .map(|(n, _, _)| format!("{root}{n}"))
        .collect();
    let mut args = vec!["--no-config", "logs"];
    args.extend(logs.iter().map(String::as_str));
    let (code, found, stderr) = leakhound(&args, None, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    let stream = keys(&found, &root);

    // Every case file is found, in the forms it was written in.
    for (name, _, _) in &cases {
        assert!(
            dir.iter()
                .any(|k| k.0 == *name || k.0.starts_with(&format!("{name}!"))),
            "{name}: nothing found by scan: {dir:#?}"
        );
    }
    let chains: BTreeSet<Vec<String>> = dir.iter().map(|k| k.2.clone()).collect();
    for want in [
        vec![],
        vec!["base64"],
        vec!["base64", "gzip"],
        vec!["hex"],
        vec!["percent"],
    ] {
        let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        assert!(chains.contains(&want), "no {want:?} chain in {chains:#?}");
    }
    assert!(dir.len() >= 15, "{} findings: {dir:#?}", dir.len());

    assert_eq!(history, dir, "git differs from scan");
    assert_eq!(image, dir, "image differs from scan");
    let text: BTreeSet<Key> = dir.iter().filter(|k| !k.0.contains('!')).cloned().collect();
    assert_eq!(stream, text, "logs differ from scan");
}
