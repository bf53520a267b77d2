//! Archives found while walking, built here with the tar, flate2, bzip2,
//! zstd and zip crates: entries are scanned in memory and reported as
//! `archive!inner/path` at their own lines; bombs, nesting past the limit
//! and broken archives are skipped with a note while the rest is scanned.

use std::io::Write;
use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

fn github() -> String {
    format!("ghp_{}", "NrcjnnG7CqYtZiX0wKPs1NHYNRr61b32COc2")
}
fn aws() -> String {
    format!("AKIA{}", "O7IHIDT3FXYJQ4UG")
}

fn leakhound() -> Command {
    Command::new(env!("CARGO_BIN_EXE_leakhound"))
}

fn tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

fn zip(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in files {
        w.start_file(*name, opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// `leakhound scan .` in `root` (JSON, secrets shown, at most 120 s):
/// exit code, findings, stderr.
fn scan(root: &Path) -> (Option<i32>, Vec<Value>, String) {
    let out = leakhound()
        .current_dir(root)
        .args(["--format", "json", "--show-secrets", "scan", "."])
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    (
        out.status.code(),
        serde_json::from_slice(&out.stdout).unwrap(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn has(findings: &[Value], path: &str, line: u64, rule: &str, secret: &str) -> bool {
    findings.iter().any(|f| {
        f["path"] == path && f["line"] == line && f["rule_id"] == rule && f["secret"] == secret
    })
}

#[test]
fn entries_of_every_format_are_scanned_with_their_inner_paths() {
    let dir = tempfile::tempdir().unwrap();
    let w = |name: &str, data: Vec<u8>| std::fs::write(dir.path().join(name), data).unwrap();
    let py = format!("import os\n\nTOKEN = \"{}\"\n", github());
    let env = format!("REGION=eu-west-1\nAWS_ACCESS_KEY_ID={}\n", aws());
    w(
        "app.jar",
        zip(&[
            ("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\n"),
            ("config/settings.py", py.as_bytes()),
        ]),
    );
    w(
        "release.tgz",
        gzip(&tar(&[("deploy/.env", env.as_bytes())])),
    );
    w("notes.txt.gz", gzip(py.as_bytes()));
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    bz.write_all(&tar(&[("etc/app.env", env.as_bytes())]))
        .unwrap();
    w("backup.tar.bz2", bz.finish().unwrap());
    w(
        "logs.tar.zst",
        zstd::encode_all(&tar(&[("a/b.py", py.as_bytes())])[..], 3).unwrap(),
    );
    // Nested: a zip holding a tar.gz holding the file.
    let inner = gzip(&tar(&[("secret/creds.env", env.as_bytes())]));
    w("bundle.zip", zip(&[("inner.tar.gz", &inner)]));
    w("plain.tar", tar(&[("x/y.py", py.as_bytes())]));

    let (_, findings, stderr) = scan(dir.path());
    for (path, line, rule, secret) in [
        (
            "./app.jar!config/settings.py",
            3,
            "github-classic-pat",
            github(),
        ),
        ("./release.tgz!deploy/.env", 2, "aws-access-key-id", aws()),
        (
            "./notes.txt.gz!notes.txt",
            3,
            "github-classic-pat",
            github(),
        ),
        (
            "./backup.tar.bz2!etc/app.env",
            2,
            "aws-access-key-id",
            aws(),
        ),
        ("./logs.tar.zst!a/b.py", 3, "github-classic-pat", github()),
        (
            "./bundle.zip!inner.tar.gz!secret/creds.env",
            2,
            "aws-access-key-id",
            aws(),
        ),
        ("./plain.tar!x/y.py", 3, "github-classic-pat", github()),
    ] {
        assert!(
            has(&findings, path, line, rule, &secret),
            "no {rule} at {path}:{line} in {findings:#?}\n{stderr}"
        );
    }
    assert_eq!(findings.len(), 7, "{findings:#?}");
    assert!(stderr.contains("0 skipped"), "{stderr}");
}

#[test]
fn bombs_deep_nesting_and_broken_archives_are_skipped_and_the_rest_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let w = |name: &str, data: Vec<u8>| std::fs::write(dir.path().join(name), data).unwrap();
    let py = format!("TOKEN = \"{}\"\n", github());
    // 64 MiB of zeros deflate to about 64 KiB: a 1000:1 ratio.
    let zeros = vec![0u8; 64 << 20];
    w(
        "bomb.zip",
        zip(&[("zeros.bin", &zeros), ("ok.py", py.as_bytes())]),
    );
    w("bomb.gz", gzip(&zeros));
    // zip > zip > zip > zip: the fourth level is past the limit of 3.
    let mut nested = zip(&[("deep.py", py.as_bytes())]);
    for i in 0..3 {
        nested = zip(&[(&format!("level{i}.zip"), &nested)]);
    }
    w("nested.zip", nested);
    let tgz = gzip(&tar(&[("a.py", py.as_bytes()), ("b.py", py.as_bytes())]));
    w("truncated.tgz", tgz[..tgz.len() / 2].to_vec());
    w("fine.py", py.clone().into_bytes());

    let (code, findings, stderr) = scan(dir.path());
    // The truncated archive was not scanned whole: exit 2 over 1.
    assert_eq!(code, Some(2), "{stderr}");
    for note in [
        "./bomb.zip!zeros.bin: expands more than 100:1 (67108864 bytes",
        "./bomb.gz: expands more than 100:1",
        "./nested.zip!level2.zip!level1.zip!level0.zip: archive nested more than 3 levels deep",
        "./truncated.tgz: gzip: ",
        "corrupt or truncated after",
    ] {
        assert!(stderr.contains(note), "no note {note:?} in:\n{stderr}");
    }
    assert!(has(
        &findings,
        "./bomb.zip!ok.py",
        1,
        "github-classic-pat",
        &github()
    ));
    assert!(has(
        &findings,
        "./fine.py",
        1,
        "github-classic-pat",
        &github()
    ));
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Text that starts with an archive's magic bytes, and archives cut short:
/// the raw bytes (and whatever part decompresses) are scanned, the file is
/// named as not read whole, exit 2.
#[test]
fn what_fails_to_open_as_an_archive_is_scanned_raw_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let w = |name: &str, data: Vec<u8>| std::fs::write(dir.path().join(name), data).unwrap();
    let line = |p: &[u8]| [p, format!("\nTOKEN = \"{}\"\n", github()).as_bytes()].concat();
    w("bzip2.txt", line(b"BZh91AY&SY not bzip2 at all"));
    w("gzip.txt", line(b"\x1f\x8b\x08\x00 not gzip"));
    w("zstd.txt", line(b"\x28\xb5\x2f\xfd not zstd"));
    w("zip.txt", line(b"PK\x03\x04 not a zip"));
    let mut ustar = vec![b' '; 257];
    ustar.extend_from_slice(b"ustar  not a tar");
    w("tar.txt", line(&ustar));
    // A real archive cut in half: its first entry is still found.
    let big = "filler line\n".repeat(20_000);
    let first = format!("TOKEN = \"{}\"\n{big}", github());
    let z = zip(&[("first.py", first.as_bytes()), ("rest.txt", big.as_bytes())]);
    w("cut.zip", z[..z.len() - 40].to_vec());
    let gz = gzip(first.as_bytes());
    w("cut.py.gz", gz[..gz.len() / 2].to_vec());

    let (code, findings, stderr) = scan(dir.path());
    assert_eq!(code, Some(2), "{stderr}");
    for name in ["bzip2.txt", "gzip.txt", "zstd.txt", "zip.txt", "tar.txt"] {
        let path = format!("./{name}");
        assert!(
            has(&findings, &path, 2, "github-classic-pat", &github()),
            "{name} not scanned raw: {findings:#?}\n{stderr}"
        );
        assert!(
            stderr.contains(&format!("{path}: ")) && stderr.contains("raw bytes were scanned"),
            "{name} not named: {stderr}"
        );
    }
    // The zip's central directory is gone: scanned raw, where the first
    // entry's deflated bytes hide the token; the gzip's first half holds it.
    assert!(stderr.contains("./cut.zip: zip: "), "{stderr}");
    assert!(
        has(
            &findings,
            "./cut.py.gz!cut.py",
            1,
            "github-classic-pat",
            &github()
        ),
        "{findings:#?}\n{stderr}"
    );
    assert!(
        stderr.contains("7 input(s) could not be scanned"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// A thousand entries the bomb guard refuses, in front of a small file:
/// refusals spend none of the archive's budget, and an entry declared
/// larger than the limits is refused without being decompressed.
#[test]
fn refused_bomb_entries_do_not_hide_the_entries_after_them() {
    let dir = tempfile::tempdir().unwrap();
    // One bomb entry, deflated once, copied raw 1,100 times: each declares
    // its 1 MiB + 1 of zeros honestly, so each costs nothing to refuse; the
    // old guard decompressed each to its limit and counted that against the
    // 1 GiB budget, which ran out before creds.env.
    let zeros = vec![0u8; (1 << 20) + 1];
    let one = zip(&[("bomb", &zeros)]);
    let mut src = zip::ZipArchive::new(std::io::Cursor::new(one)).unwrap();
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for i in 0..1100 {
        let f = src.by_index(0).unwrap();
        w.raw_copy_file_rename(f, format!("bomb{i:04}.bin"))
            .unwrap();
    }
    let opts = zip::write::SimpleFileOptions::default();
    w.start_file("creds.env", opts).unwrap();
    w.write_all(format!("AWS_ACCESS_KEY_ID={}\n", aws()).as_bytes())
        .unwrap();
    let bytes = w.finish().unwrap().into_inner();
    std::fs::write(dir.path().join("bombs.zip"), &bytes).unwrap();

    let (code, findings, stderr) = scan(dir.path());
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        findings
            .iter()
            .any(|f| f["path"] == "./bombs.zip!creds.env" && f["secret"] == aws()),
        "{findings:#?}"
    );
    assert!(stderr.contains("1100 skipped"), "{stderr}");
}

#[test]
fn an_entry_over_the_file_size_limit_is_left_out_like_a_large_file_and_the_rest_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let big = "x".repeat(4096);
    let small = format!("aws_access_key_id = {}\n", aws());
    std::fs::write(
        dir.path().join("bundle.zip"),
        zip(&[("big.txt", big.as_bytes()), ("conf/.env", small.as_bytes())]),
    )
    .unwrap();
    let summary = dir.path().join("summary.json");
    let run = |strict: bool| {
        let mut cmd = leakhound();
        cmd.current_dir(dir.path())
            .args(["--format", "json", "--summary"]);
        cmd.arg(&summary).args(["scan", "--max-file-size", "1K"]);
        if strict {
            cmd.arg("--strict");
        }
        cmd.arg("bundle.zip")
            .timeout(std::time::Duration::from_secs(120))
            .output()
            .unwrap()
    };
    let out = run(false);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // A limit, not a failure: the finding decides the exit code.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let findings: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        findings.iter().any(|f| f["path"] == "bundle.zip!conf/.env"),
        "{findings:?}"
    );
    assert!(
        stderr.contains(
            "bundle.zip!big.txt: entry is 4096 bytes, larger than the maximum file size 1024; \
             not scanned (--max-file-size)"
        ),
        "{stderr}"
    );
    let s: Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert_eq!(s["left_out"]["too_large"], 1, "{s}");
    assert_eq!(run(true).status.code(), Some(2));
}
