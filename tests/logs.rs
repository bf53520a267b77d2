//! `leakhound logs`: live findings on an open pipe, `--redact` as a
//! byte-exact filter, long lines, repeats, signals, closed stdout, follow.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

const GH: &str = "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";
const SLACK: &str = "xoxb-7255571726437-3957903447132-1rZLZ8a7syCYdzvColiggH3w";

fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_leakhound"))
        .arg("logs")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start leakhound logs")
}

/// Reads stdout lines on a thread so the test can wait with a timeout.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    rx
}

fn run(args: &[&str], input: &[u8]) -> std::process::Output {
    let mut child = spawn(args);
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

fn findings(jsonl: &[u8]) -> Vec<Value> {
    jsonl
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

#[test]
fn a_secret_is_reported_while_the_pipe_stays_open() {
    let mut child = spawn(&[]);
    let rx = lines_of(&mut child);
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "level=info msg=\"starting\"").unwrap();
    writeln!(stdin, "level=debug token={GH}").unwrap();
    stdin.flush().unwrap();
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("finding arrives before the pipe is closed");
    let f: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(f["rule_id"], "github-classic-pat");
    assert_eq!(
        (f["path"].as_str(), f["line"].as_u64()),
        (Some("-"), Some(2))
    );
    drop(stdin);
    assert_eq!(child.wait().unwrap().code(), Some(1));
}

#[test]
fn redact_changes_only_secrets_and_keeps_every_other_byte() {
    let mut input: Vec<u8> = Vec::new();
    let mut expect_secret = Vec::new();
    for i in 0..2000 {
        match i % 7 {
            0 => {
                input.extend(format!("{{\"ts\":{i},\"auth\":\"Bearer {GH}\"}}\r\n").as_bytes());
                expect_secret.push(true);
            }
            3 => {
                input.extend(format!("\x1b[33mWARN\x1b[0m slack={SLACK} id={i}\n").as_bytes());
                expect_secret.push(true);
            }
            5 => {
                input.extend(b"bin \xff\xfe\x00 not utf8 ");
                input.extend(format!("{i}\n").as_bytes());
                expect_secret.push(false);
            }
            _ => {
                input.extend(format!("plain line {i} with nothing\n").as_bytes());
                expect_secret.push(false);
            }
        }
    }
    let out = run(&["--redact"], &input);
    assert_eq!(out.status.code(), Some(1));
    let red = &out.stdout;
    let in_lines: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
    let out_lines: Vec<&[u8]> = red.split(|&b| b == b'\n').collect();
    assert_eq!(in_lines.len(), out_lines.len());
    for ((a, b), secret) in in_lines.iter().zip(&out_lines).zip(&expect_secret) {
        if *secret {
            assert_ne!(a, b);
            let s = String::from_utf8_lossy(b);
            assert!(s.contains("[REDACTED:"), "{s}");
            assert!(!s.contains(GH) && !s.contains(SLACK), "{s}");
        } else {
            assert_eq!(a, b, "a line without a secret changed");
        }
    }
    assert!(out_lines[0].ends_with(b"\r"), "CRLF kept");
    // Findings went to stderr, repeats reported once per secret.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("\"rule_id\"").count(), 2, "{stderr}");
}

#[test]
fn mask_string_replaces_the_default_mask() {
    let out = run(
        &["--redact", "--mask", "###"],
        format!("k={GH}\n").as_bytes(),
    );
    assert_eq!(out.stdout, b"k=###\n");
}

#[test]
fn long_lines_are_scanned_in_windows_with_the_right_column() {
    let mut line = "a".repeat(150_000);
    line.push(' ');
    let col = line.chars().count() + 1;
    line.push_str(GH);
    line.push(' ');
    line.push_str(&"b".repeat(200_000));
    let input = format!("first\n{line}\nlast {SLACK}\n");
    let out = run(&["--max-line", "64K", "--report-repeats"], input.as_bytes());
    let f = findings(&out.stdout);
    assert_eq!(f.len(), 2, "{f:?}");
    assert_eq!(
        (f[0]["line"].as_u64(), f[0]["column"].as_u64()),
        (Some(2), Some(col as u64))
    );
    assert_eq!(f[1]["line"], 3);
    // Every window boundary position of the secret is found.
    for shift in [0usize, 1, 17, 4095, 16_383] {
        let line = format!(
            "{} {GH} {}",
            "c".repeat(65_536 - 16_384 - shift),
            "d".repeat(70_000)
        );
        let out = run(&["--max-line", "64K"], format!("{line}\n").as_bytes());
        assert_eq!(findings(&out.stdout).len(), 1, "shift {shift}");
        let out = run(
            &["--max-line", "64K", "--redact"],
            format!("{line}\n").as_bytes(),
        );
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains(GH),
            "shift {shift}"
        );
        assert_eq!(
            out.stdout.len(),
            line.len() - GH.len() + "[REDACTED:github-classic-pat]".len() + 1
        );
    }
}

#[test]
fn repeats_are_reported_once_unless_asked() {
    let input = format!("a {GH}\nb {GH}\nc {GH}\n");
    let out = run(&[], input.as_bytes());
    assert_eq!(findings(&out.stdout).len(), 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("seen 3 times"));
    let out = run(&["--report-repeats"], input.as_bytes());
    let lines: Vec<u64> = findings(&out.stdout)
        .iter()
        .map(|f| f["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![1, 2, 3]);
}

#[test]
fn escaped_json_strings_are_decoded() {
    let line = format!(
        "{{\"msg\":\"cfg {{\\\"token\\\":\\\"{}\\u005f{}\\\"}}\"}}\n",
        &GH[..3],
        &GH[4..]
    );
    let out = run(&[], line.as_bytes());
    let f = findings(&out.stdout);
    assert_eq!(f.len(), 1, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(f[0]["decoded"][0], "json-escape");
}

#[test]
fn sigterm_flushes_and_prints_the_summary() {
    let mut child = spawn(&["--format", "json"]);
    let rx = lines_of(&mut child);
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "x {GH}").unwrap();
    stdin.flush().unwrap();
    rx.recv_timeout(Duration::from_secs(20))
        .expect("finding arrives");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let rest: Vec<String> = rx.iter().collect();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("1 finding(s)"), "{err}");
    assert_eq!(
        rest.last().map(String::as_str),
        Some("]"),
        "JSON array closed"
    );
}

#[test]
fn a_closed_stdout_ends_the_filter_quietly() {
    let mut child = spawn(&["--redact"]);
    drop(child.stdout.take());
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        for i in 0..200_000 {
            if writeln!(stdin, "line {i} {GH}").is_err() {
                break;
            }
        }
    });
    let status = child.wait().unwrap();
    writer.join().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_ne!(status.code(), Some(2), "{err}");
    assert!(!err.contains("panicked") && !err.contains("error"), "{err}");
}

#[test]
fn follow_reads_lines_appended_later() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    std::fs::write(&path, "boot\n").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_leakhound"))
        .args(["logs", "--follow"])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = lines_of(&mut child);
    std::thread::sleep(Duration::from_millis(300));
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    writeln!(f, "later {SLACK}").unwrap();
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("appended secret found");
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["line"], 2);
    assert_eq!(v["path"], path.display().to_string());
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Rotation by rename (`mv app.log app.log.1`, a new `app.log`): what the
/// writer added to the old file before the rename is read, then the new
/// file from its start; nothing twice.
#[test]
fn follow_survives_rotation_by_rename() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    std::fs::write(&path, format!("boot {SLACK}\n")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_leakhound"))
        .args(["logs", "--follow"])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = lines_of(&mut child);
    let next = |got: &[(String, u64)]| {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("only {got:?}"));
        let v: Value = serde_json::from_str(&line).unwrap();
        (
            v["rule_id"].as_str().unwrap().to_string(),
            v["line"].as_u64().unwrap(),
        )
    };
    // The first finding says the file is open: rotate only then.
    let mut got = vec![next(&[])];
    // The writer keeps its handle across the rename, as a process does
    // until it reopens its log, and writes once more to the old file.
    let mut old = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::fs::rename(&path, dir.path().join("app.log.1")).unwrap();
    writeln!(old, "late {GH}").unwrap();
    drop(old);
    let aws = format!("AKIA{}", "O7IHIDT3FXYJQ4UG");
    std::fs::write(&path, format!("new 1\nAWS_ACCESS_KEY_ID={aws}\n")).unwrap();
    while got.len() < 3 {
        got.push(next(&got));
    }
    // Lines count on across the rotation: boot, late, new 1, the key.
    assert_eq!(got[0], ("slack-bot-token".to_string(), 1), "{got:?}");
    assert!(got[1].0.starts_with("github") && got[1].1 == 2, "{got:?}");
    assert!(got[2].0.starts_with("aws") && got[2].1 == 4, "{got:?}");
    assert!(
        rx.recv_timeout(Duration::from_millis(1500)).is_err(),
        "a line reported twice"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn redact_hides_low_confidence_values_that_are_not_reported() {
    // Only a low-confidence generic rule knows this value: the default
    // report (medium and up) leaves it out, but the redacted stream must
    // never carry it.
    let input = b"APP_ENV=production\nAPI_KEY=k8Rt2mQx9vLp4wZs\nLOG_LEVEL=info\n";
    let out = run(&["--redact", "--format", "jsonl"], input);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("k8Rt2mQx9vLp4wZs"), "{stdout}");
    assert!(stdout.contains("API_KEY=[REDACTED:"), "{stdout}");
    assert!(stdout.starts_with("APP_ENV=production\n"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("\"rule_id\""),
        "not reported at medium: {stderr}"
    );
    let reported = run(
        &["--redact", "--min-confidence", "low", "-o", "/dev/stdout"],
        input,
    );
    assert!(
        String::from_utf8_lossy(&reported.stdout).contains("generic-secret-assignment-unquoted")
    );
}

/// One piece of a generated log stream for the redaction oracle.
#[derive(Clone, Debug)]
enum Piece {
    /// A planted secret (index into `PLANTED`), with a separator before.
    Secret(usize, &'static [u8]),
    /// Bytes that hold no secret: words, ANSI colours, invalid UTF-8, tabs.
    Noise(&'static [u8]),
    /// A line end, LF or CRLF.
    Eol(&'static [u8]),
    /// Filler that puts the next piece `back` bytes before a 64 KiB window
    /// edge of the line (`--max-line 64K`).
    Edge(usize),
}

const PLANTED: [(&str, &str); 2] = [(GH, "github-classic-pat"), (SLACK, "slack-bot-token")];

fn piece() -> impl proptest::strategy::Strategy<Value = Piece> {
    use proptest::prelude::*;
    let seps: Vec<&'static [u8]> = vec![b" ", b"\t", b"\"", b"=", b",", b"\xff "];
    let noise: Vec<&'static [u8]> = vec![
        b"GET /health 200 ",
        b"\x1b[31mERROR\x1b[0m ",
        b"\xff\xfe\x80 ",
        b"caf\xc3\xa9 ",
        b" ok",
        b"\t",
    ];
    prop_oneof![
        (0..PLANTED.len(), proptest::sample::select(seps)).prop_map(|(i, s)| Piece::Secret(i, s)),
        proptest::sample::select(noise).prop_map(Piece::Noise),
        proptest::sample::select(vec![&b"\n"[..], b"\r\n"]).prop_map(Piece::Eol),
        (0usize..80).prop_map(Piece::Edge),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 24,
        failure_persistence: None,
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// The oracle: `--redact` output is the input with each planted
    /// secret's bytes replaced by `[REDACTED:rule]`, every other byte
    /// (ANSI, CRLF, invalid UTF-8, neighbours of a secret, two secrets a
    /// line, secrets across 64 KiB window edges) unchanged.
    #[test]
    fn redact_replaces_exactly_each_planted_secret(pieces in proptest::collection::vec(piece(), 1..16)) {
        let (mut input, mut want) = (Vec::new(), Vec::new());
        let mut line_len = 0usize;
        for p in &pieces {
            let (raw, red): (Vec<u8>, Vec<u8>) = match p {
                Piece::Secret(i, sep) => {
                    let (s, rule) = PLANTED[*i];
                    let mut r = sep.to_vec();
                    r.extend_from_slice(s.as_bytes());
                    r.push(b' ');
                    let mut m = sep.to_vec();
                    m.extend_from_slice(format!("[REDACTED:{rule}]").as_bytes());
                    m.push(b' ');
                    (r, m)
                }
                Piece::Noise(n) => (n.to_vec(), n.to_vec()),
                Piece::Eol(e) => (e.to_vec(), e.to_vec()),
                Piece::Edge(back) => {
                    let to = (line_len / 65536 + 1) * 65536 - back;
                    let pad = vec![b'.'; to.saturating_sub(line_len).max(1)];
                    (pad.clone(), pad)
                }
            };
            line_len = match p {
                Piece::Eol(_) => 0,
                _ => line_len + raw.len(),
            };
            input.extend(raw);
            want.extend(red);
        }
        let out = run(&["--max-line", "64K", "--redact", "--report-repeats"], &input);
        proptest::prop_assert_eq!(out.status.code(), Some(if pieces.iter().any(|p| matches!(p, Piece::Secret(..))) { 1 } else { 0 }), "{}", String::from_utf8_lossy(&out.stderr));
        if out.stdout != want {
            let at = out.stdout.iter().zip(&want).position(|(a, b)| a != b).unwrap_or(out.stdout.len().min(want.len()));
            let lo = at.saturating_sub(60);
            proptest::prop_assert!(false, "first difference at byte {} of {} (want {}):\n got {:?}\nwant {:?}",
                at, out.stdout.len(), want.len(),
                String::from_utf8_lossy(&out.stdout[lo..(at + 60).min(out.stdout.len())]),
                String::from_utf8_lossy(&want[lo..(at + 60).min(want.len())]));
        }
    }
}
