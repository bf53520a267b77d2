//! No raw secret in any output without `--show-secrets`: lines holding
//! several secrets of several rules (reported, below the confidence floor,
//! with a broken checksum, a generic password) go through every subcommand
//! (`scan`, `git` with the line in the commit message too, `image` with the
//! line in a layer, the config's Env and its history, `logs` and
//! `logs --redact`) in every format, and no 8 bytes in a row of any secret
//! past its shown prefix may appear on stdout or stderr.

#[path = "support/image.rs"]
mod fixture;

use std::path::Path;
use std::process::Command;

use fixture::{TestImage, layer_tar};
use leakhound::rules::validate::base62_crc32;
use proptest::prelude::*;
use serde_json::json;

const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const DIGITS: &[u8] = b"0123456789";

/// A secret as planted: its text and how many leading bytes a mask may show.
#[derive(Clone, Debug)]
struct Planted {
    field: String,
    secret: String,
    prefix: usize,
}

fn pick(alphabet: &'static [u8], n: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(alphabet), n)
        .prop_map(|v| String::from_utf8(v).unwrap())
}

/// A few secrets of different rules, each with the field name it sits under.
fn secrets() -> impl Strategy<Value = Vec<Planted>> {
    (
        pick(BASE32, 16),
        pick(ALNUM, 30),
        pick(ALNUM, 30),
        pick(ALNUM, 32),
        (pick(DIGITS, 12), pick(DIGITS, 13), pick(ALNUM, 24)),
        pick(ALNUM, 40),
        (pick(ALNUM, 10), pick(b"!#%^&*~", 2), pick(DIGITS, 3)),
    )
        .prop_map(
            |(aws, gh, bad_gh, stripe, (s1, s2, s3), linear, (p1, p2, p3))| {
                let mut v = vec![
                    Planted {
                        field: "aws_id".into(),
                        secret: format!("AKIA{aws}"),
                        prefix: 4,
                    },
                    Planted {
                        field: "gh".into(),
                        secret: format!("ghp_{gh}{}", base62_crc32(gh.as_bytes())),
                        prefix: 4,
                    },
                    // A broken checksum: no rule reports it, it is hidden all
                    // the same.
                    Planted {
                        field: "old".into(),
                        secret: format!("ghp_{bad_gh}000000"),
                        prefix: 4,
                    },
                    Planted {
                        field: "stripe".into(),
                        secret: format!("sk_live_{stripe}"),
                        prefix: 8,
                    },
                    Planted {
                        field: "slack".into(),
                        secret: format!("xoxb-{}-{}-{s3}", nonzero(&s1), nonzero(&s2)),
                        prefix: 5,
                    },
                    Planted {
                        field: "linear".into(),
                        secret: format!("lin_api_{linear}"),
                        prefix: 8,
                    },
                ];
                v.push(Planted {
                    field: "password".into(),
                    secret: format!("{p1}{p2}{p3}"),
                    prefix: 0,
                });
                v
            },
        )
}

/// Decimal ids without a leading zero (Slack's format).
fn nonzero(digits: &str) -> String {
    format!("1{}", &digits[1..])
}

/// The lines planted: pairs and triples of secrets a line, and the password
/// quoted on a line with a token.
fn lines(s: &[Planted]) -> Vec<String> {
    let kv = |p: &Planted| format!("{}={}", p.field, p.secret);
    vec![
        format!("{} {} {}", kv(&s[0]), kv(&s[1]), kv(&s[3])),
        format!("{} {}", kv(&s[2]), kv(&s[4])),
        format!("{} password=\"{}\"", kv(&s[5]), s[6].secret),
        format!("all: {} {} {}", s[4].secret, s[5].secret, s[0].secret),
    ]
}

/// Panics if any 8 bytes in a row of a secret past its shown prefix appear
/// in `out`.
fn assert_no_leak(what: &str, out: &str, planted: &[Planted]) {
    for p in planted {
        let b = p.secret.as_bytes();
        for i in 0..=b.len().saturating_sub(8) {
            if i + 8 <= p.prefix {
                continue;
            }
            let gram = &p.secret[i..i + 8];
            assert!(
                !out.contains(gram),
                "{what}: {gram:?} of {} ({}) leaked:\n{out}",
                p.field,
                p.secret
            );
        }
    }
}

fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_leakhound"))
        .args(args)
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

fn git(dir: &Path, args: &[&str]) {
    let st = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Dev")
        .env("GIT_AUTHOR_EMAIL", "dev@example.com")
        .env("GIT_COMMITTER_NAME", "Dev")
        .env("GIT_COMMITTER_EMAIL", "dev@example.com")
        .output()
        .unwrap();
    assert!(st.status.success(), "git {args:?}: {st:?}");
}

const FORMATS: [&str; 4] = ["text", "json", "jsonl", "sarif"];

fn check_everywhere(planted: &[Planted]) {
    let dir = tempfile::tempdir().unwrap();
    let text = lines(planted).join("\n") + "\n";

    // scan
    let file = dir.path().join("app.env");
    std::fs::write(&file, &text).unwrap();
    let f = file.to_str().unwrap();
    for format in FORMATS {
        let (code, out) = run(&["--no-config", "--format", format, "scan", f]);
        assert_eq!(code, Some(1), "scan {format}: {out}");
        assert_no_leak(&format!("scan --format {format}"), &out, planted);
    }

    // logs, findings and pass-through
    let (code, out) = run(&["--no-config", "logs", f]);
    assert_eq!(code, Some(1), "logs: {out}");
    assert_no_leak("logs", &out, planted);
    let (_, out) = run(&["--no-config", "logs", "--redact", f]);
    assert_no_leak("logs --redact", &out, planted);

    // git: the lines in a file and in the commit message
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("settings.env"), &text).unwrap();
    git(&repo, &["add", "."]);
    git(
        &repo,
        &["commit", "-q", "-m", &format!("add settings\n\n{text}")],
    );
    let r = repo.to_str().unwrap();
    for format in FORMATS {
        let (code, out) = run(&["--no-config", "--format", format, "git", r]);
        assert_eq!(code, Some(1), "git {format}: {out}");
        assert_no_leak(&format!("git --format {format}"), &out, planted);
    }

    // image: a layer file, an Env entry and a history step
    let img = TestImage::new(
        vec![layer_tar(&[("etc/app.env", text.as_bytes())])],
        json!([{"created_by": format!("/bin/sh -c echo '{}'", lines(planted)[0])}]),
        vec![format!("APP_CONFIG={}", lines(planted)[1])],
    );
    let layout = dir.path().join("layout");
    img.write_oci_dir(&layout, "latest");
    let l = layout.to_str().unwrap();
    for format in FORMATS {
        let (code, out) = run(&[
            "--no-config",
            "--format",
            format,
            "image",
            "--oci-layout",
            l,
        ]);
        assert_eq!(code, Some(1), "image {format}: {out}");
        assert_no_leak(&format!("image --format {format}"), &out, planted);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_secret_reaches_any_output(planted in secrets()) {
        check_everywhere(&planted);
    }
}

#[test]
fn show_secrets_alone_prints_raw_values() {
    let dir = tempfile::tempdir().unwrap();
    let token = format!("sk_live_{}", "Q9wErTy7UiOp3AsDfGh5JkLz");
    let file = dir.path().join("a.env");
    std::fs::write(&file, format!("stripe={token} other=x\n")).unwrap();
    let f = file.to_str().unwrap();
    let (_, masked) = run(&["--no-config", "scan", f]);
    assert!(!masked.contains(&token), "{masked}");
    assert!(masked.contains("sk_live_*****"), "prefix kept: {masked}");
    let (_, shown) = run(&["--no-config", "--show-secrets", "scan", f]);
    assert!(shown.contains(&token), "{shown}");
}

#[test]
fn passwords_and_generic_values_show_no_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("db.conf");
    std::fs::write(&file, "db_password = \"Kq7!vR2#mZp9xW\"\n").unwrap();
    let (code, out) = run(&["--no-config", "scan", file.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("db_password = \"*****\""), "{out}");
    assert!(!out.contains("Kq7!"), "{out}");
}

#[test]
fn warnings_quote_no_input_text() {
    // A tar whose header checksum is corrupt: the tar crate's message quotes
    // the entry name, which here holds a secret.
    let dir = tempfile::tempdir().unwrap();
    let token = format!("sk_live_{}", "Zx8Cv7Bn6Mq5Wr4Et3Yu2Io1");
    let mut tar = layer_tar(&[("placeholder", b"hello\n")]);
    let name = format!("stripe_key = \"{token}\"");
    tar[..100].fill(0);
    tar[..name.len()].copy_from_slice(name.as_bytes());
    tar[148..156].copy_from_slice(b"XXXXXXXX");
    let file = dir.path().join("bad.tar");
    std::fs::write(&file, &tar).unwrap();
    let (_, out) = run(&["--no-config", "scan", file.to_str().unwrap()]);
    assert!(out.contains("bad.tar"), "the problem is named: {out}");
    assert!(!out.contains("Zx8Cv7Bn"), "{out}");
}
