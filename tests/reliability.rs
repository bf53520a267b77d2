//! Hostile peers and inputs (issue 16): servers on 127.0.0.1 that stall or
//! trickle, a real registry (Debian's `docker-registry`) behind a stalling
//! proxy, Git trees nested deeper than any stack, a panic inside a unit of
//! work, and signals while a clone sits in $TMPDIR. Each case must end in
//! bounded time, name what it could not scan, exit 2, and still report
//! what the rest of the input holds.

#[path = "support/image.rs"]
mod fixture;
#[path = "support/registry.rs"]
mod server;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fixture::*;
use serde_json::Value;
use server::*;

/// `--timeout` the tests run with, and what a stalled run may take at most
/// (the deadline plus start-up, retries and the rest of the scan on a busy
/// two-core machine).
const TIMEOUT: &str = "2";
const BOUND: Duration = Duration::from_secs(20);

/// Runs leakhound (JSON report) and measures it.
fn timed(args: &[&str], envs: &[(&str, &str)]) -> (Option<i32>, Vec<Value>, String, Duration) {
    let start = Instant::now();
    let (code, findings, stderr) = leakhound(args, None, envs);
    (code, findings, stderr, start.elapsed())
}

/// What the proxy does with a request whose path contains a pattern.
#[derive(Clone, Copy, Debug)]
enum Act {
    /// Accept and say nothing.
    Stall,
    /// A 200 with a large Content-Length, then one byte every 100 ms.
    Trickle,
    /// A 200 without a length, then bytes as fast as they go, without end.
    Flood,
    /// A 401 asking for a bearer token from this proxy's `/token`.
    Challenge,
}

/// An HTTP proxy on 127.0.0.1 in front of a real registry: requests whose
/// path matches a rule get the rule's act, others are forwarded (one
/// request per connection). Every connection thread ends on drop.
struct Proxy {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    fn start(upstream: &str, rules: Vec<(String, Act)>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let (stop2, upstream) = (stop.clone(), upstream.to_string());
        let thread = std::thread::spawn(move || {
            let rules = Arc::new(rules);
            let mut threads = Vec::new();
            for conn in listener.incoming() {
                if stop2.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (stop, rules, upstream) = (stop2.clone(), rules.clone(), upstream.clone());
                threads.push(std::thread::spawn(move || {
                    let _ = serve_one(conn, &upstream, &rules, &stop);
                }));
            }
            for t in threads {
                let _ = t.join();
            }
        });
        Proxy {
            port,
            stop,
            thread: Some(thread),
        }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_one(
    mut conn: TcpStream,
    upstream: &str,
    rules: &[(String, Act)],
    stop: &AtomicBool,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut head = Vec::new();
    let mut line = String::new();
    let mut path = String::new();
    let mut host = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if path.is_empty() {
            path = line.split(' ').nth(1).unwrap_or("").to_string();
        }
        if let Some(h) = line.to_ascii_lowercase().strip_prefix("host:") {
            host = h.trim().to_string();
        }
        if line == "\r\n" {
            head.extend_from_slice(b"Connection: close\r\n\r\n");
            break;
        }
        if !line.to_ascii_lowercase().starts_with("connection:") {
            head.extend_from_slice(line.as_bytes());
        }
    }
    let hold = |stop: &AtomicBool| {
        let until = Instant::now() + Duration::from_secs(120);
        while !stop.load(Ordering::Relaxed) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    match rules.iter().find(|(p, _)| path.contains(p.as_str())) {
        Some((_, Act::Stall)) => hold(stop),
        Some((_, Act::Trickle)) => {
            conn.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\
                  Content-Length: 100000000\r\n\r\n",
            )?;
            let until = Instant::now() + Duration::from_secs(120);
            while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                conn.write_all(b"\x1f")?;
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Some((_, Act::Flood)) => {
            conn.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\n\r\n",
            )?;
            let chunk = vec![b' '; 64 * 1024];
            let until = Instant::now() + Duration::from_secs(120);
            while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                conn.write_all(&chunk)?;
            }
        }
        Some((_, Act::Challenge)) => {
            conn.write_all(
                format!(
                    "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\
                     WWW-Authenticate: Bearer realm=\"http://{host}/token\",service=\"test\"\r\n\r\n"
                )
                .as_bytes(),
            )?;
        }
        None => {
            let mut up = TcpStream::connect(upstream)?;
            up.write_all(&head)?;
            std::io::copy(&mut up, &mut conn)?;
        }
    }
    Ok(())
}

/// An image of its own (layers not shared with `TestImage::leaky`), with a
/// token in its only layer.
fn other_image() -> TestImage {
    let file = format!("TOKEN={}\n", gh_token());
    TestImage::new(
        vec![layer_tar(&[("srv/other.env", file.as_bytes())])],
        serde_json::json!([{"created_by": "COPY other.env /srv/other.env"}]),
        vec![],
    )
}

fn assert_bounded(elapsed: Duration, stderr: &str) {
    assert!(
        elapsed < BOUND,
        "took {elapsed:?} with --timeout {TIMEOUT}\n{stderr}"
    );
}

#[test]
fn registry_stalling_on_the_catalog_ends_with_exit_2_naming_it() {
    let reg = Registry::start(Mode::Plain);
    reg.push(&TestImage::leaky(), "team/app", "v1");
    let proxy = Proxy::start(&reg.host, vec![("/v2/_catalog".into(), Act::Stall)]);
    let tmp = tempfile::tempdir().unwrap();
    let (code, stdout, stderr, elapsed) = run_raw(
        &[
            "registry",
            &proxy.host(),
            "--insecure",
            "--timeout",
            TIMEOUT,
        ],
        tmp.path(),
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains(&proxy.host())
            && stderr.contains("catalog")
            && stderr.contains("--timeout"),
        "{stderr}"
    );
    assert_bounded(elapsed, &stderr);
}

/// `leakhound image BAD GOOD` through a proxy that answers requests whose
/// path holds `pattern(bad image)` with `act`: exit 2 within the bound,
/// every finding of the good image, and stderr naming the bad image and
/// each of `said`.
fn one_bad_image(pattern: fn(&TestImage) -> String, act: Act, timeout: &str, said: &[&str]) {
    let reg = Registry::start(Mode::Plain);
    let leaky = TestImage::leaky();
    let other = other_image();
    reg.push(&leaky, "team/app", "v1");
    reg.push(&other, "team/bad", "v1");
    let proxy = Proxy::start(&reg.host, vec![(pattern(&other), act)]);
    let bad = format!("{}/team/bad:v1", proxy.host());
    let good = format!("{}/team/app:v1", proxy.host());
    let (code, findings, stderr, elapsed) = timed(
        &["image", &bad, &good, "--insecure", "--timeout", timeout],
        &[],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert_leaky_findings(&findings, &good, &leaky.layer_digests());
    assert!(
        stderr.contains(&bad) && said.iter().all(|s| stderr.contains(s)),
        "{stderr}"
    );
    assert_bounded(elapsed, &stderr);
}

#[test]
fn registry_stalling_on_a_manifest_fails_that_image_and_scans_the_others() {
    one_bad_image(
        |_| "/v2/team/bad/manifests/".into(),
        Act::Stall,
        TIMEOUT,
        &["manifest", "--timeout"],
    );
}

/// A manifest answer without end (no length, bytes as fast as they go):
/// abandoned once past the manifest cap, long before the deadline (60 s,
/// far past the bound: only the cap can end it in time), so its memory
/// stays bounded; the other image is scanned.
#[test]
fn registry_flooding_a_manifest_is_cut_at_the_cap_and_the_others_scanned() {
    one_bad_image(
        |_| "/v2/team/bad/manifests/".into(),
        Act::Flood,
        "60",
        &["larger than 4194304 bytes"],
    );
}

/// An image config answered without end: cut at the size its manifest
/// declares, named, exit 2; the other image is scanned.
#[test]
fn registry_flooding_an_image_config_is_cut_at_its_declared_size() {
    one_bad_image(
        |img| format!("/blobs/{}", sha256(&img.config)),
        Act::Flood,
        "60",
        &["bytes its manifest declares"],
    );
}

/// A catalog page without end: abandoned at the list cap (4 MiB), long
/// before the deadline, named, exit 2.
#[test]
fn registry_flooding_the_catalog_is_cut_at_the_cap() {
    let reg = Registry::start(Mode::Plain);
    reg.push(&TestImage::leaky(), "team/app", "v1");
    let proxy = Proxy::start(&reg.host, vec![("/v2/_catalog".into(), Act::Flood)]);
    let tmp = tempfile::tempdir().unwrap();
    let (code, stdout, stderr, elapsed) = run_raw(
        &["registry", &proxy.host(), "--insecure", "--timeout", "60"],
        tmp.path(),
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains(&proxy.host())
            && stderr.contains("catalog")
            && stderr.contains("larger than 4194304 bytes"),
        "{stderr}"
    );
    assert_bounded(elapsed, &stderr);
}

/// One repository's tag list without end: cut at the cap and named; the
/// other repository of the sweep is scanned and its findings reported.
#[test]
fn registry_flooding_a_tag_list_is_cut_at_the_cap_and_the_sweep_goes_on() {
    let reg = Registry::start(Mode::Plain);
    let leaky = TestImage::leaky();
    reg.push(&leaky, "team/app", "v1");
    reg.push(&other_image(), "team/bad", "v1");
    let proxy = Proxy::start(
        &reg.host,
        vec![("/v2/team/bad/tags/list".into(), Act::Flood)],
    );
    let (code, findings, stderr, elapsed) = timed(
        &["registry", &proxy.host(), "--insecure", "--timeout", "60"],
        &[],
    );
    assert_eq!(code, Some(2), "{stderr}");
    let good = format!("{}/team/app:v1", proxy.host());
    assert_leaky_findings(&findings, &good, &leaky.layer_digests());
    assert!(
        stderr.contains("team/bad")
            && stderr.contains("tags")
            && stderr.contains("larger than 4194304 bytes"),
        "{stderr}"
    );
    assert_bounded(elapsed, &stderr);
}

/// A registry whose token endpoint answers without end: the token answer
/// is cut at its cap (1 MiB), the image named, exit 2; an image of another
/// registry on the same command line is scanned.
#[test]
fn registry_flooding_a_token_answer_is_cut_at_the_cap_and_others_scanned() {
    let reg = Registry::start(Mode::Plain);
    let leaky = TestImage::leaky();
    reg.push(&leaky, "team/app", "v1");
    let proxy = Proxy::start(
        &reg.host,
        vec![
            ("/v2/".into(), Act::Challenge),
            ("/token".into(), Act::Flood),
        ],
    );
    let bad = format!("{}/team/bad:v1", proxy.host());
    let good = format!("{}/team/app:v1", reg.host);
    let (code, findings, stderr, elapsed) = timed(
        &["image", &bad, &good, "--insecure", "--timeout", "60"],
        &[],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert_leaky_findings(&findings, &good, &leaky.layer_digests());
    assert!(
        stderr.contains(&bad) && stderr.contains("larger than 1048576 bytes"),
        "{stderr}"
    );
    assert_bounded(elapsed, &stderr);
}

/// A sweep in which one image's layer stalls (`Stall`) or trickles forever
/// (`Trickle`): that layer is abandoned and named, every other image is
/// scanned and reported, exit 2.
fn sweep_with_a_bad_layer(act: Act) {
    let reg = Registry::start(Mode::Plain);
    let leaky = TestImage::leaky();
    let other = other_image();
    reg.push(&leaky, "team/app", "v1");
    reg.push(&other, "team/slow", "v1");
    let digest = other.layer_digests()[0].clone();
    let proxy = Proxy::start(
        &reg.host,
        vec![(format!("/v2/team/slow/blobs/{digest}"), act)],
    );
    let (code, findings, stderr, elapsed) = timed(
        &[
            "registry",
            &proxy.host(),
            "--insecure",
            "--timeout",
            TIMEOUT,
        ],
        &[],
    );
    assert_eq!(code, Some(2), "{act:?}: {stderr}");
    let good = format!("{}/team/app:v1", proxy.host());
    let of_good: Vec<Value> = findings
        .iter()
        .filter(|f| f["image"]["reference"] == good.as_str())
        .cloned()
        .collect();
    assert_leaky_findings(&of_good, &good, &leaky.layer_digests());
    assert!(
        !findings.iter().any(|f| f["path"] == "srv/other.env"),
        "{act:?}: the abandoned layer reported nothing"
    );
    assert!(
        stderr.contains("team/slow")
            && stderr.contains(&digest)
            && stderr.contains("--timeout")
            && stderr.contains("abandoned"),
        "{act:?}: {stderr}"
    );
    assert_bounded(elapsed, &stderr);
}

#[test]
fn registry_stalling_on_a_layer_blob_abandons_it_and_the_sweep_goes_on() {
    sweep_with_a_bad_layer(Act::Stall);
}

#[test]
fn registry_sending_a_layer_slowly_forever_abandons_it_and_the_sweep_goes_on() {
    sweep_with_a_bad_layer(Act::Trickle);
}

/// A server that accepts connections and never says a word.
struct Silent {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Silent {
    fn start() -> Silent {
        Silent::serve(false)
    }

    /// Sends the start of a pkt-line, then one byte every 100 ms.
    fn trickling() -> Silent {
        Silent::serve(true)
    }

    /// Reads a request, answers 200 with a Git advertisement's type and
    /// no length, then sends the start of a pkt-line and one byte every
    /// 100 ms.
    fn http_trickling() -> Silent {
        Silent::serve_with(|conn: TcpStream, stop: Arc<AtomicBool>| {
            let mut conn = conn;
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let _ = conn.write_all(
                b"HTTP/1.1 200 OK\r\n\
                  Content-Type: application/x-git-upload-pack-advertisement\r\n\
                  Connection: close\r\n\r\n0fff",
            );
            let until = Instant::now() + Duration::from_secs(120);
            while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                if conn.write_all(b"a").is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    }

    fn serve_with(handle: fn(TcpStream, Arc<AtomicBool>)) -> Silent {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in listener.incoming() {
                if stop2.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let stop = stop2.clone();
                held.push(std::thread::spawn(move || handle(conn, stop)));
            }
        });
        Silent {
            port,
            stop,
            thread: Some(thread),
        }
    }

    fn serve(trickle: bool) -> Silent {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in listener.incoming() {
                if stop2.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                if trickle {
                    let (mut conn, stop) = (conn, stop2.clone());
                    held.push(std::thread::spawn(move || {
                        let until = Instant::now() + Duration::from_secs(120);
                        let _ = conn.write_all(b"0fff");
                        while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                            if conn.write_all(b"a").is_err() {
                                break;
                            }
                            std::thread::sleep(Duration::from_millis(100));
                        }
                    }));
                } else {
                    held.push(std::thread::spawn(move || {
                        let _conn = conn;
                        std::thread::sleep(Duration::from_secs(60));
                    }));
                }
            }
        });
        Silent {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs `leakhound ARGS` with $TMPDIR set; exit code, stdout, stderr, time.
fn run_raw(args: &[&str], tmpdir: &Path) -> (Option<i32>, String, String, Duration) {
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_leakhound"))
        .args(args)
        .env("TMPDIR", tmpdir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        start.elapsed(),
    )
}

#[test]
fn git_daemon_that_accepts_and_says_nothing_times_out_and_leaves_no_clone() {
    let silent = Silent::start();
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("git://127.0.0.1:{}/repo", silent.port);
    let (code, _, stderr, elapsed) = run_raw(&["git", &url, "--timeout", TIMEOUT], tmp.path());
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("127.0.0.1:{}", silent.port))
            && stderr.contains("nothing received for 2 s")
            && stderr.contains("--timeout"),
        "{stderr}"
    );
    assert_bounded(elapsed, &stderr);
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn git_daemon_that_trickles_bytes_forever_is_abandoned() {
    let server = Silent::trickling();
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("git://127.0.0.1:{}/repo", server.port);
    let (code, _, stderr, elapsed) = run_raw(&["git", &url, "--timeout", TIMEOUT], tmp.path());
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("127.0.0.1:{}", server.port))
            && stderr.contains("transfer stalled")
            && stderr.contains("--timeout"),
        "{stderr}"
    );
    assert_bounded(elapsed, &stderr);
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn ssh_server_that_accepts_and_says_nothing_times_out() {
    // The `ssh` program gets ConnectTimeout, which covers the banner.
    let silent = Silent::start();
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("ssh://git@127.0.0.1:{}/repo.git", silent.port);
    let (code, _, stderr, elapsed) = run_raw(&["git", &url, "--timeout", TIMEOUT], tmp.path());
    assert_eq!(code, Some(2), "{stderr}");
    // ssh's ConnectTimeout or the relay's deadline, whichever fires first.
    assert!(
        stderr.contains(&url) && (stderr.contains("timed out") || stderr.contains("--timeout")),
        "{stderr}"
    );
    assert_bounded(elapsed, &stderr);
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

/// An ssh connection that is up (the command runs) but whose server then
/// says nothing, or sends a byte every 100 ms forever: `ssh`'s keep-alives
/// cannot tell, the relay does. The ssh command is the user's own
/// (GIT_SSH_COMMAND), which runs behind the relay too.
#[test]
fn ssh_server_silent_or_trickling_after_the_handshake_is_abandoned() {
    for (name, body) in [
        ("silent", "exec sleep 600\n"),
        ("trickle", "while :; do printf a || exit; sleep 0.1; done\n"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let bin = tempfile::tempdir().unwrap();
        let ssh = bin.path().join("ssh");
        std::fs::write(&ssh, format!("#!/bin/sh\n{body}")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o755)).unwrap();
        let url = "ssh://git@example.invalid/repo.git";
        let start = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_leakhound"))
            .args(["git", url, "--timeout", TIMEOUT])
            .env("TMPDIR", tmp.path())
            .env("GIT_SSH_COMMAND", &ssh)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains(url) && stderr.contains("less than 1024 bytes/s (--timeout)"),
            "{name}: {stderr}"
        );
        assert_bounded(start.elapsed(), &stderr);
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0, "{name}");
    }
}

#[test]
fn smart_http_server_that_accepts_and_says_nothing_times_out() {
    let silent = Silent::start();
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}/repo.git", silent.port);
    let (code, _, stderr, elapsed) = run_raw(&["git", &url, "--timeout", TIMEOUT], tmp.path());
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&url) && stderr.contains("timed out"),
        "{stderr}"
    );
    assert_bounded(elapsed, &stderr);
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

/// A smart-HTTP server that answers and then trickles a byte every 100 ms
/// forever: each read gets something, so only the rate floor ends it; the
/// URL is named, exit 2, no clone left behind.
#[test]
fn smart_http_server_that_trickles_bytes_forever_is_abandoned() {
    let server = Silent::http_trickling();
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}/repo.git", server.port);
    let (code, _, stderr, elapsed) = run_raw(&["git", &url, "--timeout", TIMEOUT], tmp.path());
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&url)
            && stderr.contains("transfer stalled")
            && stderr.contains("--timeout"),
        "{stderr}"
    );
    assert_bounded(elapsed, &stderr);
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

const GH_DEEP: &str = "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";
const GH_SIBLING: &str = "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";

/// A bare repository whose one commit holds `deep.env` under `depth`
/// nested directories and `sibling.sh` at the top, both with a token;
/// built by `git fast-import` (given a large stack: its tree writer
/// recurses, unlike leakhound's walk).
fn deep_repo(depth: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    build_deep_repo(dir.path(), depth);
    dir
}

/// `deep_repo`'s repository, made at `dir`.
fn build_deep_repo(dir: &Path, depth: usize) {
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git(&["init", "-q", "--bare", "."]);
    let deep = format!("TOKEN={GH_DEEP}\n");
    let sibling = format!("export TOKEN={GH_SIBLING}\n");
    let path = format!("{}deep.env", "d/".repeat(depth));
    let stream = format!(
        "commit refs/heads/main\ncommitter T <t@example.com> 1700000000 +0000\ndata 4\ndeep\n\
         M 100644 inline {path}\ndata {}\n{deep}\
         M 100644 inline sibling.sh\ndata {}\n{sibling}\n",
        deep.len(),
        sibling.len()
    );
    let mut child = Command::new("sh")
        .args([
            "-c",
            "ulimit -s unlimited 2>/dev/null; exec git fast-import --quiet",
        ])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stream.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "git fast-import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    git(&["symbolic-ref", "HEAD", "refs/heads/main"]);
}

/// What `leakhound git` must say of `deep_repo(depth)`: exit 1, the token
/// at the bottom and the sibling's, in bounded time.
fn assert_deep_findings(depth: usize, url: &str) {
    let start = Instant::now();
    let (code, findings, stderr) = leakhound(&["git", url], None, &[]);
    assert_eq!(code, Some(1), "depth {depth}: {stderr}");
    let mut found: Vec<(String, usize)> = findings
        .iter()
        .map(|f| {
            let path = f["path"].as_str().unwrap().to_string();
            let depth = path.matches('/').count();
            (path.rsplit('/').next().unwrap().to_string(), depth)
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        vec![
            ("deep.env".to_string(), depth),
            ("sibling.sh".to_string(), 0)
        ],
        "depth {depth}: {stderr}"
    );
    assert!(
        start.elapsed() < BOUND,
        "depth {depth}: {:?}",
        start.elapsed()
    );
}

#[test]
fn git_trees_nested_20000_and_100000_deep_are_walked_without_recursion() {
    for depth in [20_000, 100_000] {
        let repo = deep_repo(depth);
        assert_deep_findings(depth, repo.path().to_str().unwrap());
    }
}

/// `git daemon` serving the repositories under `base` on 127.0.0.1, with
/// an unlimited stack and tree depth (Git's own tree walks recurse); killed
/// on drop, so on every exit path of the test.
struct GitDaemon {
    child: std::process::Child,
    port: u16,
}

impl GitDaemon {
    fn start(base: &Path) -> GitDaemon {
        // A free port: bound, read, let go (git daemon binds it next).
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("sh")
            .args([
                "-c",
                "ulimit -s unlimited 2>/dev/null; exec git -c core.maxTreeDepth=1000000 daemon \
                 --export-all --reuseaddr --listen=127.0.0.1 --port=\"$1\" \
                 --base-path=\"$2\" \"$2\"",
                "sh",
                &port.to_string(),
                base.to_str().unwrap(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut daemon = GitDaemon { child, port };
        let until = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!("git daemon exited: {status}");
            }
            assert!(Instant::now() < until, "git daemon did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        daemon.port = port;
        daemon
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The deep tree cloned from `git daemon` (`git://`): no crash, the same
/// exit code and findings as the local repository.
#[test]
fn git_tree_nested_20000_deep_served_by_git_daemon_is_walked_without_recursion() {
    let base = tempfile::tempdir().unwrap();
    let repo = base.path().join("repo.git");
    std::fs::create_dir(&repo).unwrap();
    build_deep_repo(&repo, 20_000);
    // upload-pack's own walk checks the depth against the repository's
    // configuration too.
    let out = Command::new("git")
        .args(["config", "core.maxTreeDepth", "1000000"])
        .current_dir(&repo)
        .output()
        .unwrap();
    assert!(out.status.success());
    let daemon = GitDaemon::start(base.path());
    let url = format!("git://127.0.0.1:{}/repo.git", daemon.port);
    assert_deep_findings(20_000, &url);
}

#[test]
fn a_panic_in_one_unit_is_an_error_naming_it_and_the_rest_is_reported() {
    // Debug builds panic on a unit whose name holds LEAKHOUND_TEST_PANIC.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.env"), format!("TOKEN={GH_DEEP}\n")).unwrap();
    std::fs::write(dir.path().join("boom.env"), format!("TOKEN={GH_SIBLING}\n")).unwrap();
    let root = dir.path().to_str().unwrap();
    let (code, findings, stderr) =
        leakhound(&["scan", root], None, &[("LEAKHOUND_TEST_PANIC", "boom")]);
    assert_eq!(code, Some(2), "{stderr}");
    let paths: Vec<&str> = findings
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths.len(), 1, "{paths:?}");
    assert!(paths[0].ends_with("a.env"), "{paths:?}");
    assert!(
        stderr.contains("boom.env") && stderr.contains("internal error"),
        "{stderr}"
    );
    assert!(!stderr.contains(GH_SIBLING), "{stderr}");

    // The same in a Git history: the blob that panics is named, the other
    // one reported.
    let repo = deep_repo(3);
    let (code, findings, stderr) = leakhound(
        &["git", repo.path().to_str().unwrap()],
        None,
        &[("LEAKHOUND_TEST_PANIC", "sibling.sh")],
    );
    assert_eq!(code, Some(2), "{stderr}");
    let paths: Vec<&str> = findings
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, vec!["d/d/d/deep.env"], "{stderr}");
    assert!(
        stderr.contains("sibling.sh") && stderr.contains("internal error"),
        "{stderr}"
    );
}

#[test]
fn git_url_killed_by_sigint_or_sigterm_leaves_no_temporary_clone() {
    for (sig, name) in [(libc::SIGINT, "SIGINT"), (libc::SIGTERM, "SIGTERM")] {
        let silent = Silent::start();
        let tmp = tempfile::tempdir().unwrap();
        let url = format!("git://127.0.0.1:{}/repo", silent.port);
        let mut child = Command::new(env!("CARGO_BIN_EXE_leakhound"))
            .args(["git", &url, "--timeout", "60"])
            .env("TMPDIR", tmp.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait until the clone directory exists (the clone then waits on
        // the silent server).
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::fs::read_dir(tmp.path()).unwrap().count() == 0 {
            assert!(Instant::now() < deadline, "{name}: no clone directory");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(200));
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(child.id() as i32, sig) };
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(128 + sig), "{name}: {status:?}");
        let left: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(left.is_empty(), "{name} left {left:?}");
    }
}

#[test]
fn yaml_and_json_nested_100000_deep_are_named_and_siblings_still_reported() {
    let dir = tempfile::tempdir().unwrap();
    let n = 100_000;
    let yaml = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\ndata:\n  k: {}{}\n",
        "[".repeat(n),
        "]".repeat(n)
    );
    let json = format!(
        "{{\"kind\":\"Secret\",\"data\":{{\"k\":{}1{}}}}}\n",
        "{\"a\":".repeat(n),
        "}".repeat(n)
    );
    std::fs::write(dir.path().join("deep.yaml"), yaml).unwrap();
    std::fs::write(dir.path().join("deep.json"), json).unwrap();
    std::fs::write(dir.path().join("ok.env"), format!("TOKEN={GH_DEEP}\n")).unwrap();
    let root = dir.path().to_str().unwrap();
    let (code, findings, stderr) = leakhound(&["scan", root], None, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(findings.len(), 1, "{stderr}");
    assert!(findings[0]["path"].as_str().unwrap().ends_with("ok.env"));
    for f in ["deep.yaml", "deep.json"] {
        assert!(
            stderr
                .lines()
                .any(|l| l.contains(f) && l.contains("recursion limit")),
            "{f}: {stderr}"
        );
    }
    // Decoding recurses once per step: the depth asked is capped.
    let tmp = tempfile::tempdir().unwrap();
    let (code, _, stderr, _) = run_raw(&["scan", root, "--decode-depth", "1000"], tmp.path());
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("at most 32"), "{stderr}");
}

#[test]
fn a_panic_in_a_log_window_is_named_withheld_from_redact_and_other_logs_reported() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.log");
    let boom = dir.path().join("boom.log");
    std::fs::write(&a, format!("start\nTOKEN={GH_DEEP}\n")).unwrap();
    std::fs::write(&boom, format!("one\nTOKEN={GH_SIBLING}\nthree\n")).unwrap();
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_leakhound"))
            .args(["logs"])
            .args(extra)
            .arg(&a)
            .arg(&boom)
            .env("LEAKHOUND_TEST_PANIC", "boom")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = run(&[]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains("a.log"), "{stdout}");
    assert!(
        stderr.contains("boom.log") && stderr.contains("line(s) 1-3 not scanned"),
        "{stderr}"
    );
    assert!(!stderr.contains(GH_SIBLING), "{stderr}");
    // --redact never passes an unscanned window through.
    let out = run(&["--redact"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        !stdout.contains(GH_SIBLING) && !stdout.contains(GH_DEEP),
        "{stdout}"
    );
    assert!(stdout.contains("withheld"), "{stdout}");
}

/// Runs leakhound under `python3` (which the test script installs) to
/// learn the child's peak resident memory from `getrusage`: exit code,
/// JSON findings, stderr, peak RSS in MiB.
fn with_peak_rss(args: &[&str]) -> (Option<i32>, Vec<Value>, String, u64) {
    const PY: &str = "import resource, subprocess, sys\n\
        p = subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL, capture_output=True)\n\
        sys.stdout.buffer.write(p.stdout)\n\
        sys.stderr.buffer.write(p.stderr)\n\
        sys.stderr.write('\\nPEAK_RSS_KIB=%d\\n' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n\
        sys.exit(p.returncode)\n";
    let out = Command::new("python3")
        .args([
            "-c",
            PY,
            env!("CARGO_BIN_EXE_leakhound"),
            "--format",
            "json",
        ])
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let kib: u64 = stderr
        .rsplit("PEAK_RSS_KIB=")
        .next()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS: {stderr}"));
    let findings = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{stderr}", String::from_utf8_lossy(&out.stdout)));
    (out.status.code(), findings, stderr, kib / 1024)
}

/// Memory a scan of a huge input may take (the bound): the input
/// is streamed in windows, never held whole.
const PEAK_MIB: u64 = 300;

/// A file of `size` bytes, sparse: 1,000 short lines, then zeros, then a
/// line with `token` 100 bytes before its end (on line 1,002).
fn huge_file(path: &Path, size: u64, token: &str) {
    use std::io::{Seek, SeekFrom};
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all("line\n".repeat(1000).as_bytes()).unwrap();
    f.set_len(size).unwrap();
    f.seek(SeekFrom::Start(size - 100)).unwrap();
    f.write_all(format!("\nTOKEN={token}\n").as_bytes())
        .unwrap();
}

/// A 2 GiB file with `--max-file-size` raised is scanned in bounded memory
/// and the token near its end is found at its line; beside it, a file of
/// base64 nested 32 deep (`--decode-depth 32`, the most accepted) stays
/// within the decoding budget, and a sibling's token is reported.
#[test]
fn a_2_gib_file_is_scanned_in_bounded_memory_and_its_end_is_found() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    huge_file(&dir.path().join("huge.log"), 2 << 30, GH_DEEP);
    std::fs::write(
        dir.path().join("sibling.env"),
        format!("TOKEN={GH_SIBLING}\n"),
    )
    .unwrap();
    // 24 MiB of base64 lines, each nested 32 times deep.
    let mut nested = format!("TOKEN={GH_SIBLING} {}", "x".repeat(64)).into_bytes();
    for _ in 0..32 {
        nested = base64::engine::general_purpose::STANDARD
            .encode(&nested)
            .into_bytes();
        nested.truncate(1 << 20);
    }
    let mut text = Vec::new();
    while text.len() < 24 << 20 {
        text.extend_from_slice(&nested);
        text.push(b'\n');
    }
    std::fs::write(dir.path().join("nested.b64"), text).unwrap();
    let root = dir.path().to_str().unwrap();
    let (code, findings, stderr, peak) = with_peak_rss(&[
        "scan",
        root,
        "--max-file-size",
        "3GiB",
        "--decode-depth",
        "32",
    ]);
    assert!(matches!(code, Some(1) | Some(2)), "{stderr}");
    let huge: Vec<&Value> = findings
        .iter()
        .filter(|f| f["path"].as_str().unwrap().ends_with("huge.log"))
        .collect();
    assert_eq!(huge.len(), 1, "{stderr}");
    assert_eq!(huge[0]["line"], 1002, "{}", huge[0]);
    assert_eq!(huge[0]["column"], 7, "{}", huge[0]);
    assert!(
        findings
            .iter()
            .any(|f| f["path"].as_str().unwrap().ends_with("sibling.env")),
        "{stderr}"
    );
    assert!(peak < PEAK_MIB, "peak RSS {peak} MiB\n{stderr}");
}

/// A 1 GiB blob in Git history (added by `git add`, which streams a file
/// that large into a pack whole) is streamed through `git cat-file` and
/// scanned in bounded memory; the token near its end is found.
#[test]
fn a_1_gib_git_blob_is_scanned_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(repo)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git(&["init", "-q"]);
    huge_file(&repo.join("huge.log"), 1 << 30, GH_DEEP);
    std::fs::write(repo.join("sibling.env"), format!("TOKEN={GH_SIBLING}\n")).unwrap();
    git(&["add", "huge.log", "sibling.env"]);
    git(&["commit", "-q", "-m", "huge"]);
    std::fs::remove_file(repo.join("huge.log")).unwrap();
    let (code, findings, stderr, peak) =
        with_peak_rss(&["git", repo.to_str().unwrap(), "--max-file-size", "2GiB"]);
    assert_eq!(code, Some(1), "{stderr}");
    let found = paths_and_lines(&findings);
    assert_eq!(
        found,
        vec![
            ("huge.log".to_string(), 1002),
            ("sibling.env".to_string(), 1)
        ],
        "{stderr}"
    );
    assert!(peak < PEAK_MIB, "peak RSS {peak} MiB\n{stderr}");
}

/// About `size` bytes of short lines (compressible) with `token` on its
/// last line but one, and that line's number.
fn big_text(size: usize, token: &str) -> (Vec<u8>, u64) {
    // Lines of 44 bytes that deflate a few times, well under the bomb guard's
    // 100:1.
    const LINE: usize = 44;
    let mut big = Vec::with_capacity(size);
    let mut i: u64 = 0;
    while big.len() + 2 * LINE < size {
        i += 1;
        let h = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        big.extend_from_slice(format!("{i:010} {h:016x} a line of a log\n").as_bytes());
    }
    let line = (big.len() / LINE) as u64 + 1;
    big.extend_from_slice(format!("TOKEN={token}\nend\n").as_bytes());
    (big, line)
}

/// A zip of `files`, deflated or stored.
fn zip_of(files: &[(&str, &[u8])], deflate: bool) -> Vec<u8> {
    use std::io::Write as _;
    let method = if deflate {
        zip::CompressionMethod::Deflated
    } else {
        zip::CompressionMethod::Stored
    };
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(method)
        .large_file(true);
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data) in files {
        w.start_file(*name, opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// Archive entries of 256 MiB (`--max-file-size` raised) are streamed and
/// scanned in windows, never read whole, in archives small enough to be
/// read whole (a deflated zip, a tar.gz) and in archives too large for
/// that (a tar, a stored zip, each over the 32 MiB threshold; the zip
/// goes through an unnamed temporary file), on disk and as a Git blob: the
/// token past the first windows is found at its line, and the peak stays
/// under the size of one entry.
#[test]
fn entries_of_256_mib_in_archives_are_scanned_in_windows_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (big, line) = big_text(256 << 20, GH_DEEP);
    let sibling = format!("TOKEN={GH_SIBLING}\n");
    let files: [(&str, &[u8]); 2] = [
        ("logs/big.log", &big),
        ("conf/sibling.env", sibling.as_bytes()),
    ];
    let tree = dir.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    let tar = layer_tar(&files);
    std::fs::write(tree.join("small.tar.gz"), gzip(&tar)).unwrap();
    std::fs::write(tree.join("big.tar"), &tar).unwrap();
    drop(tar);
    std::fs::write(tree.join("small.zip"), zip_of(&files, true)).unwrap();
    std::fs::write(tree.join("stored.zip"), zip_of(&files, false)).unwrap();
    let expect = |names: &[&str], prefix: &str| {
        let mut v: Vec<(String, u64)> = names
            .iter()
            .flat_map(|n| {
                [
                    (format!("{prefix}{n}!conf/sibling.env"), 1),
                    (format!("{prefix}{n}!logs/big.log"), line),
                ]
            })
            .collect();
        v.sort();
        v
    };
    let names = ["big.tar", "small.tar.gz", "small.zip", "stored.zip"];
    let (code, findings, stderr, peak) =
        with_peak_rss(&["scan", tree.to_str().unwrap(), "--max-file-size", "1GiB"]);
    assert_eq!(code, Some(1), "{stderr}");
    let root = format!("{}/", tree.display());
    assert_eq!(
        paths_and_lines(&findings),
        expect(&names, &root),
        "{stderr}"
    );
    // Read whole, one entry alone would take 256 MiB.
    assert!(peak < 200, "peak RSS {peak} MiB\n{stderr}");

    // The large tar and zip as blobs of a commit.
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(&repo)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git(&["init", "-q"]);
    for n in ["big.tar", "stored.zip"] {
        std::fs::rename(tree.join(n), repo.join(n)).unwrap();
    }
    git(&["add", "big.tar", "stored.zip"]);
    git(&["commit", "-q", "-m", "archives"]);
    let (code, findings, stderr, peak) =
        with_peak_rss(&["git", repo.to_str().unwrap(), "--max-file-size", "1GiB"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        paths_and_lines(&findings),
        expect(&["big.tar", "stored.zip"], ""),
        "{stderr}"
    );
    assert!(peak < 200, "peak RSS {peak} MiB\n{stderr}");
}

/// A layer with a file of `size` bytes of short lines with a token on its
/// last line but one, a tar of half that size whose one entry is alike,
/// and a sibling file with a token; the lines of both tokens.
fn image_with_a_huge_file(size: usize) -> (TestImage, u64, u64) {
    let (big, line) = big_text(size, GH_DEEP);
    let (inner, inner_line) = big_text(size / 2, GH_DEEP);
    let bundle = layer_tar(&[("logs/big.log", &inner)]);
    drop(inner);
    let sibling = format!("TOKEN={GH_SIBLING}\n");
    let img = TestImage::new(
        vec![layer_tar(&[
            ("var/log/huge.log", &big),
            ("app/bundle.tar", &bundle),
            ("app/sibling.env", sibling.as_bytes()),
        ])],
        serde_json::json!([{"created_by": "COPY . /"}]),
        vec![],
    );
    (img, line, inner_line)
}

/// A 192 MiB file in an image layer (`--max-file-size` raised) is
/// streamed from the layer and scanned in windows, never held whole, and
/// so is a 96 MiB tar beside it, opened as it streams: the tokens near
/// their ends are found at their lines, in an OCI layout (gzip layer) and
/// in a `docker save` archive (uncompressed layer), and the peak stays
/// under the size of the large file.
#[test]
fn a_192_mib_file_in_an_image_layer_is_scanned_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (img, line, inner_line) = image_with_a_huge_file(192 << 20);
    let layout = dir.path().join("layout");
    img.write_oci_dir(&layout, "v1");
    let archive = dir.path().join("image.tar");
    img.write_docker_save_legacy(&archive, "example.org/huge:1");
    drop(img);
    for args in [
        ["image", "--oci-layout", layout.to_str().unwrap()],
        ["image", "--archive", archive.to_str().unwrap()],
    ] {
        let mut args = args.to_vec();
        args.extend(["--max-file-size", "1GiB"]);
        let (code, findings, stderr, peak) = with_peak_rss(&args);
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        let mut found: Vec<(String, u64, u64)> = findings
            .iter()
            .map(|f| {
                (
                    f["path"].as_str().unwrap().to_string(),
                    f["line"].as_u64().unwrap(),
                    f["column"].as_u64().unwrap(),
                )
            })
            .collect();
        found.sort();
        assert_eq!(
            found,
            vec![
                ("app/bundle.tar!logs/big.log".to_string(), inner_line, 7),
                ("app/sibling.env".to_string(), 1, 7),
                ("var/log/huge.log".to_string(), line, 7)
            ],
            "{args:?}: {stderr}"
        );
        // Held whole, the large file alone would take 192 MiB.
        assert!(peak < 160, "{args:?}: peak RSS {peak} MiB\n{stderr}");
    }
}

/// File names, snippets and notices that hold ESC and BEL reach the
/// terminal escaped (`\x1b`), never raw: a crafted name cannot move the
/// cursor over earlier findings. Both planted tokens are still reported.
#[test]
fn control_characters_in_names_and_snippets_never_reach_the_terminal_raw() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("evil\x1b[2J\x07.env"),
        format!("\x1b[1ATOKEN={GH_DEEP}\x07\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("plain.env"),
        format!("TOKEN={GH_SIBLING}\n"),
    )
    .unwrap();
    // A broken archive whose name holds ESC and BEL: named on stderr.
    std::fs::write(
        dir.path().join("broken\x1b]0;title\x07.tgz"),
        b"\x1f\x8b\x08\x00 not gzip at all\n",
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let (code, stdout, stderr, _) = run_raw(
        &["scan", dir.path().to_str().unwrap(), "--verbose"],
        tmp.path(),
    );
    // 2: the broken archive was not scanned as the archive it claims to be.
    assert_eq!(code, Some(2), "{stderr}");
    for (what, out) in [("stdout", &stdout), ("stderr", &stderr)] {
        assert!(
            !out.contains('\x1b') && !out.contains('\x07'),
            "{what} holds a raw control character: {out:?}"
        );
    }
    assert!(stdout.contains("evil\\x1b[2J\\x07.env"), "{stdout}");
    assert!(stdout.contains("plain.env"), "{stdout}");
    assert!(stderr.contains("broken\\x1b]0;title\\x07.tgz"), "{stderr}");
    assert!(!stdout.contains(GH_DEEP) && !stderr.contains(GH_DEEP));
    assert_bounded(start.elapsed(), &stderr);
}

/// A multi-document YAML file of ~1.5 million nodes (60,000 ConfigMaps)
/// with a Secret at its end: the decoder's limits apply per document, so
/// the late Secret is decoded and reported with its Kubernetes provenance;
/// a sibling file's token is reported too.
#[test]
fn a_secret_after_a_million_yaml_nodes_is_still_decoded() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let mut yaml = String::new();
    for i in 0..60_000 {
        yaml.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\ndata:\n  \
             a: \"1\"\n  b: \"2\"\n  c: \"3\"\n  d: \"4\"\n  e: \"5\"\n  f: \"6\"\n"
        ));
    }
    let value = base64::engine::general_purpose::STANDARD.encode(GH_DEEP);
    yaml.push_str(&format!(
        "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: late\n  namespace: prod\n\
         type: Opaque\ndata:\n  token: {value}\n"
    ));
    std::fs::write(dir.path().join("all.yaml"), yaml).unwrap();
    std::fs::write(
        dir.path().join("sibling.env"),
        format!("TOKEN={GH_SIBLING}\n"),
    )
    .unwrap();
    let start = Instant::now();
    let (code, findings, stderr) = leakhound(&["scan", dir.path().to_str().unwrap()], None, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        findings
            .iter()
            .any(|f| f["path"].as_str().unwrap().ends_with("all.yaml")
                && f["kubernetes"]["name"] == "late"
                && f["kubernetes"]["namespace"] == "prod"),
        "{findings:#?}\n{stderr}"
    );
    assert!(
        findings
            .iter()
            .any(|f| f["path"].as_str().unwrap().ends_with("sibling.env")),
        "{stderr}"
    );
    // Generous: the file is 12 MB; this bounds a hang, not speed.
    assert!(start.elapsed() < Duration::from_secs(300), "{stderr}");
}

/// Each finding's path and line, sorted.
fn paths_and_lines(findings: &[Value]) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = findings
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["line"].as_u64().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}
