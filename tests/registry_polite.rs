//! Registry politeness: `Retry-After` (seconds and HTTP-date), a pause
//! asked beyond 60 s, `--max-requests-per-second`, credentials sent only to
//! the host they are for (flags, `--credentials-for`, the config file's
//! `[registries]` tables), `--insecure-registry`, redirects to another
//! origin without credentials, timeouts as typed notices, one challenge
//! probe and one token per scope for a whole sweep, and `registry
//! --metrics-addr`. Behaviours Debian's `docker-registry` cannot produce
//! (429s, redirects, silence) come from stub HTTP/1.1 servers on 127.0.0.1.

#[path = "support/fake.rs"]
mod fake;
#[path = "support/metrics.rs"]
mod metrics;
use metrics::{http_get, metrics_addr, parse_metrics, sum_of};
#[path = "support/image.rs"]
mod fixture;
#[path = "support/registry.rs"]
mod server;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fixture::*;
use serde_json::Value;

/// A request as the stub read it.
#[derive(Clone, Debug)]
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    at: Instant,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An answer: status line, extra headers, body.
struct Reply {
    status: &'static str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn reply(status: &'static str, body: impl Into<Vec<u8>>) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        body: body.into(),
    }
}

impl Reply {
    fn header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
}

/// An HTTP/1.1 server on 127.0.0.1, a thread per connection, one request
/// per connection; `None` from the handler leaves the request unanswered
/// (until the stub stops). Every request is logged.
struct Stub {
    port: u16,
    log: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

type Handler = dyn Fn(&Request) -> Option<Reply> + Send + Sync;

impl Stub {
    fn start(handler: impl Fn(&Request) -> Option<Reply> + Send + Sync + 'static) -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let (stop2, log2) = (stop.clone(), log.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (handler, log, stop) = (handler.clone(), log2.clone(), stop2.clone());
                std::thread::spawn(move || serve_one(conn, &*handler, &log, &stop));
            }
        });
        Stub {
            port,
            log,
            stop,
            thread: Some(thread),
        }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }
}

fn serve_one(mut conn: TcpStream, handler: &Handler, log: &Mutex<Vec<Request>>, stop: &AtomicBool) {
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut first = String::new();
    if reader.read_line(&mut first).unwrap_or(0) == 0 {
        return;
    }
    let mut words = first.split_whitespace();
    let (method, path) = (
        words.next().unwrap_or("").to_string(),
        words.next().unwrap_or("").to_string(),
    );
    let mut headers = Vec::new();
    let mut line = String::new();
    while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
        if line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
        line.clear();
    }
    let req = Request {
        method,
        path,
        headers,
        at: Instant::now(),
    };
    log.lock().unwrap().push(req.clone());
    let Some(r) = handler(&req) else {
        // Silence: hold the connection until the stub stops.
        while !stop.load(Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
        return;
    };
    let mut head = format!(
        "HTTP/1.1 {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        r.status,
        r.body.len()
    );
    for (k, v) in &r.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = conn.write_all(head.as_bytes());
    if req.method != "HEAD" {
        let _ = conn.write_all(&r.body);
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers `team/app:v1` (manifest, config, layers) of `img`, `/v2/`
/// with 200; `None` for anything else.
fn image_route(img: &TestImage, req: &Request) -> Option<Reply> {
    let manifest = img.manifest();
    if req.path == "/v2/" {
        return Some(reply("200 OK", "{}"));
    }
    if req.path == "/v2/team/app/manifests/v1" || req.path.contains("/manifests/sha256:") {
        return Some(
            reply("200 OK", manifest.clone())
                .header("Content-Type", OCI_MANIFEST)
                .header("Docker-Content-Digest", &sha256(&manifest)),
        );
    }
    let digest = req.path.strip_prefix("/v2/team/app/blobs/")?;
    if digest == sha256(&img.config) {
        return Some(reply("200 OK", img.config.clone()));
    }
    img.stored
        .iter()
        .find(|l| sha256(l) == digest)
        .map(|l| reply("200 OK", l.clone()))
}

fn manifest_gets(stub: &Stub) -> usize {
    stub.requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains("/manifests/"))
        .count()
}

/// 429 with `Retry-After: 2`, then 503 with an HTTP-date two seconds
/// ahead: both waits are kept, then the image is scanned whole.
#[test]
fn retry_after_in_seconds_and_as_a_date_is_honoured_then_the_image_is_scanned() {
    let img = TestImage::leaky();
    let tries = AtomicUsize::new(0);
    let stub = Stub::start(move |req| {
        if req.path.contains("/manifests/") {
            match tries.fetch_add(1, Relaxed) {
                0 => return Some(reply("429 Too Many Requests", "{}").header("Retry-After", "2")),
                1 => {
                    let when = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(2);
                    let date = jiff::fmt::rfc2822::DateTimePrinter::new()
                        .timestamp_to_rfc9110_string(&when)
                        .unwrap();
                    return Some(
                        reply("503 Service Unavailable", "busy").header("Retry-After", &date),
                    );
                }
                _ => {}
            }
        }
        image_route(&img, req)
    });
    let reference = format!("{}/team/app:v1", stub.host());
    let start = Instant::now();
    let (code, findings, stderr) = leakhound(&["image", &reference, "--insecure"], None, &[]);
    let took = start.elapsed();
    assert_eq!(code, Some(1), "{stderr}");
    assert_leaky_findings(&findings, &reference, &TestImage::leaky().layer_digests());
    assert_eq!(manifest_gets(&stub), 3);
    let gets: Vec<Instant> = stub
        .requests()
        .iter()
        .filter(|r| r.path.contains("/manifests/"))
        .map(|r| r.at)
        .collect();
    assert!(
        gets[1] - gets[0] >= Duration::from_millis(1900),
        "Retry-After: 2 waited {:?}",
        gets[1] - gets[0]
    );
    // An HTTP-date has whole seconds: two seconds ahead is at least one.
    assert!(
        gets[2] - gets[1] >= Duration::from_millis(900),
        "Retry-After date waited {:?}",
        gets[2] - gets[1]
    );
    assert!(took >= Duration::from_secs(3), "{took:?}");
}

/// A registry asking for a pause over 60 s is not waited for: the image
/// fails at once, the message naming host, image and the wait.
#[test]
fn a_retry_after_beyond_60_seconds_fails_at_once_naming_host_and_image() {
    let stub = Stub::start(|req| {
        if req.path.contains("/manifests/") {
            return Some(
                reply(
                    "429 Too Many Requests",
                    r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#,
                )
                .header("Retry-After", "120"),
            );
        }
        Some(reply("200 OK", "{}"))
    });
    let reference = format!("{}/team/app:v1", stub.host());
    let start = Instant::now();
    let (code, findings, stderr) = leakhound(&["image", &reference, "--insecure"], None, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(findings.is_empty());
    assert!(start.elapsed() < Duration::from_secs(20), "waited");
    assert!(stderr.contains(&reference), "{stderr}");
    assert!(
        stderr.contains(&format!("{} asks to wait 120 s", stub.host())),
        "{stderr}"
    );
    assert_eq!(manifest_gets(&stub), 1);
}

/// `--max-requests-per-second 5`: every request (probe, manifest, config,
/// layers read on 4 threads) at least 0.2 s after the one before.
#[test]
fn max_requests_per_second_spaces_every_request_of_every_thread() {
    let img = TestImage::leaky();
    let stub = Stub::start(move |req| image_route(&img, req));
    let reference = format!("{}/team/app:v1", stub.host());
    let (code, findings, stderr) = leakhound(
        &[
            "image",
            &reference,
            "--insecure",
            "--parallel",
            "4",
            "--max-requests-per-second",
            "5",
        ],
        None,
        &[],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(!findings.is_empty());
    let mut at: Vec<Instant> = stub.requests().iter().map(|r| r.at).collect();
    at.sort();
    assert_eq!(at.len(), 6, "probe, manifest, config, 3 layers");
    // Sent 200 ms apart at the soonest; the first arrival may be a little
    // late, which shortens the spans measured from it.
    for (k, t) in at.iter().enumerate() {
        let span = *t - at[0];
        assert!(
            span >= Duration::from_millis(200 * k as u64).saturating_sub(Duration::from_millis(60)),
            "request {k} {span:?} after the first"
        );
    }
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn authorizations(stub: &Stub) -> Vec<Option<String>> {
    stub.requests()
        .iter()
        .filter(|r| r.path != "/v2/")
        .map(|r| r.header("authorization").map(str::to_string))
        .collect()
}

/// `--username` goes to the one host the command line names; with two
/// hosts it needs `--credentials-for`, and the other host sees nothing.
/// The config file's `[registries."host"]` table gives another host its
/// own user (password from `password_env`) and plain HTTP, and
/// `--insecure-registry` plain HTTP to one host only.
#[test]
fn credentials_go_only_to_the_host_they_are_for() {
    let img = TestImage::leaky();
    let a = {
        let img = TestImage::leaky();
        Stub::start(move |req| image_route(&img, req))
    };
    let b = Stub::start(move |req| image_route(&img, req));
    let ra = format!("{}/team/app:v1", a.host());
    let rb = format!("{}/team/app:v1", b.host());
    let args = |extra: &[&'static str]| {
        let mut v: Vec<String> = vec![
            "image".into(),
            ra.clone(),
            rb.clone(),
            "--no-config".into(),
            "--insecure".into(),
            "--username".into(),
            "ci".into(),
            "--password-stdin".into(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    // A start-up error: no report at all.
    let mut child = Command::new(env!("CARGO_BIN_EXE_leakhound"))
        .args(args(&[]))
        .env("HOME", "/nonexistent")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"pw-a\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(
        stderr.contains("--credentials-for")
            && stderr.contains(&a.host())
            && stderr.contains(&b.host()),
        "{stderr}"
    );
    assert!(a.requests().is_empty() && b.requests().is_empty());

    let mut v = args(&[]);
    v.push("--credentials-for".into());
    v.push(a.host());
    let argv: Vec<&str> = v.iter().map(String::as_str).collect();
    let (code, findings, stderr) = leakhound(&argv, Some("pw-a\n"), &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(image_references(&findings).len(), 2, "{stderr}");
    let want = basic("ci", "pw-a");
    let seen_a = authorizations(&a);
    assert!(!seen_a.is_empty());
    assert!(
        seen_a.iter().all(|h| h.as_deref() == Some(want.as_str())),
        "{seen_a:?}"
    );
    let seen_b = authorizations(&b);
    assert!(seen_b.iter().all(Option::is_none), "{seen_b:?}");

    // The config file: b's own user, plain HTTP for b from the table and
    // for a from --insecure-registry (no --insecure).
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("leakhound.toml");
    std::fs::write(
        &config,
        format!(
            "[registries.\"{}\"]\nusername = \"cfg-user\"\npassword_env = \"POLITE_TEST_PW\"\ninsecure = true\n",
            b.host()
        ),
    )
    .unwrap();
    let (na, nb) = (authorizations(&a).len(), authorizations(&b).len());
    let (code, findings, stderr) = leakhound(
        &[
            "image",
            &ra,
            &rb,
            "--config",
            config.to_str().unwrap(),
            "--insecure-registry",
            &a.host(),
        ],
        None,
        &[("POLITE_TEST_PW", "pw-b")],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(image_references(&findings).len(), 2, "{stderr}");
    let want_b = basic("cfg-user", "pw-b");
    let seen_b: Vec<_> = authorizations(&b).split_off(nb);
    assert!(!seen_b.is_empty());
    assert!(
        seen_b.iter().all(|h| h.as_deref() == Some(want_b.as_str())),
        "{seen_b:?}"
    );
    assert!(authorizations(&a).split_off(na).iter().all(Option::is_none));

    // Without --insecure-registry, a is spoken to with TLS: it fails, b
    // still scans.
    let (code, findings, stderr) = leakhound(
        &[
            "image",
            &ra,
            &rb,
            "--config",
            config.to_str().unwrap(),
            "--timeout",
            "3",
        ],
        None,
        &[("POLITE_TEST_PW", "pw-b")],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(image_references(&findings), vec![rb.clone()], "{stderr}");
    assert!(stderr.contains(&ra), "{stderr}");
}

/// A bearer registry redirecting layer downloads to a CDN (another
/// origin): the CDN never sees the token, the registry always does; one
/// challenge probe and one token for the repository.
#[test]
fn a_blob_redirected_to_another_origin_is_fetched_without_credentials() {
    let img = TestImage::leaky();
    let cdn = {
        let stored = img.stored.clone();
        Stub::start(move |req| {
            let digest = req.path.strip_prefix("/cdn/")?;
            stored
                .iter()
                .find(|l| sha256(l) == digest)
                .map(|l| reply("200 OK", l.clone()))
        })
    };
    let cdn_host = cdn.host();
    let port = Arc::new(AtomicUsize::new(0));
    let port2 = port.clone();
    let token = "stub-token-5f2a";
    let creds = basic("ci", "pw");
    let reg = Stub::start(move |req| {
        let me = format!("127.0.0.1:{}", port2.load(Relaxed));
        let challenge = format!("Bearer realm=\"http://{me}/token\",service=\"stub\"");
        if req.path.starts_with("/token") {
            return Some(if req.header("authorization") == Some(creds.as_str()) {
                reply("200 OK", format!("{{\"token\":\"{token}\"}}"))
            } else {
                reply("401 Unauthorized", "{}")
            });
        }
        if req.header("authorization") != Some(&format!("Bearer {token}")) {
            return Some(reply("401 Unauthorized", "{}").header("WWW-Authenticate", &challenge));
        }
        if let Some(digest) = req.path.strip_prefix("/v2/team/app/blobs/")
            && digest != sha256(&img.config)
        {
            return Some(
                reply("307 Temporary Redirect", "")
                    .header("Location", &format!("http://{cdn_host}/cdn/{digest}")),
            );
        }
        image_route(&img, req)
    });
    port.store(reg.port as usize, Relaxed);
    let reference = format!("{}/team/app:v1", reg.host());
    let (code, findings, stderr) = leakhound(
        &[
            "image",
            &reference,
            "--insecure",
            "--username",
            "ci",
            "--password-stdin",
        ],
        Some("pw\n"),
        &[],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert_leaky_findings(&findings, &reference, &TestImage::leaky().layer_digests());
    let cdn_seen = cdn.requests();
    assert_eq!(cdn_seen.len(), 3, "three layers from the CDN");
    assert!(
        cdn_seen.iter().all(|r| r.header("authorization").is_none()),
        "{cdn_seen:?}"
    );
    let reg_seen = reg.requests();
    let count = |p: &str| reg_seen.iter().filter(|r| r.path.starts_with(p)).count();
    assert_eq!(
        count("/v2/"),
        1 + 1 + 1 + 3,
        "probe, manifest, config, layers"
    );
    assert_eq!(reg_seen.iter().filter(|r| r.path == "/v2/").count(), 1);
    assert_eq!(count("/token"), 1, "one token for the repository");
}

/// A registry that never answers the manifest: a timeout naming host and
/// image, a typed notice (the binary adds the flag), exit 2.
#[test]
fn a_registry_that_never_answers_is_a_timeout_naming_host_and_image() {
    let stub = Stub::start(|req| (req.path == "/v2/").then(|| reply("200 OK", "{}")));
    let reference = format!("{}/team/app:v1", stub.host());
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.json");
    let start = Instant::now();
    let (code, findings, stderr) = leakhound(
        &[
            "--summary",
            summary.to_str().unwrap(),
            "image",
            &reference,
            "--insecure",
            "--timeout",
            "1",
        ],
        None,
        &[],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(findings.is_empty());
    assert!(start.elapsed() < Duration::from_secs(20));
    assert!(
        stderr.contains(&reference)
            && stderr.contains(&format!("{}: no complete answer within 1 s", stub.host()))
            && stderr.contains("(--timeout)"),
        "{stderr}"
    );
    let s: Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert_eq!(s["complete"], false);
    let errors = s["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{s}");
    assert_eq!(errors[0]["path"], reference.as_str());
}

/// A sweep against a token registry (Debian's docker-registry with a stub
/// token server): one `/v2/` probe per sweep and one token per scope (the
/// catalog, each repository), whatever the number of tags and threads;
/// a cached sweep costs the same handful.
#[test]
fn a_sweep_probes_the_challenge_once_and_buys_one_token_per_scope() {
    use server::{Mode, PASSWORD, Registry, USER};
    let reg = Registry::start(Mode::Token);
    let mut rng = fake::Rng(0x0070_117e);
    for repo in ["team/app", "team/tool"] {
        for t in 0..8 {
            let own = format!("token: {}\n", fake::fake_github(&mut rng));
            let img = TestImage::new(
                vec![layer_tar(&[("srv/own.yaml", own.as_bytes())])],
                serde_json::json!([{"created_by": "COPY srv /srv"}]),
                vec![],
            );
            reg.push(&img, repo, &format!("v{t}"));
        }
    }
    let tokens = reg.tokens.as_ref().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    for round in 0..2 {
        let (before_tokens, before_log) = (tokens.requests.load(Relaxed), reg.requests().len());
        let (code, findings, stderr) = leakhound(
            &[
                "registry",
                &reg.host,
                "--insecure",
                "--username",
                USER,
                "--password-stdin",
                "--parallel",
                "8",
                "--cache",
                cache.to_str().unwrap(),
            ],
            Some(PASSWORD),
            &[],
        );
        assert_eq!(code, Some(1), "{stderr}");
        assert_eq!(findings.len(), 16, "round {round}");
        let log = reg.requests().split_off(before_log);
        let probes = log.iter().filter(|r| r.as_str() == "GET /v2/").count();
        assert_eq!(probes, 1, "round {round}: {log:#?}");
        assert_eq!(
            tokens.requests.load(Relaxed) - before_tokens,
            3,
            "round {round}: catalog, team/app, team/tool"
        );
        if round == 1 {
            let heads = log.iter().filter(|r| r.starts_with("HEAD ")).count();
            assert_eq!(heads, 16, "{log:#?}");
            assert!(!log.iter().any(|r| r.contains("/blobs/")), "{log:#?}");
        }
    }
}

/// `registry --metrics-addr 127.0.0.1:0 --metrics-linger`: the address on
/// stderr, `/healthz`, and after the sweep `/metrics` (parsed by the
/// Prometheus client's OpenMetrics parser) counts what the report holds:
/// findings by rule and severity, images, layers and their bytes, requests.
#[test]
fn a_registry_sweep_serves_metrics_that_match_its_report() {
    use server::{Mode, Registry};
    let reg = Registry::start(Mode::Plain);
    let mut rng = fake::Rng(0x03e7_1c5a);
    let shared = layer_tar(&[(
        "app/.env",
        format!("GITHUB_TOKEN={}\n", gh_token()).as_bytes(),
    )]);
    let mut layers = std::collections::BTreeMap::new();
    for i in 0..4 {
        let own = format!(
            "slack: {}\ntoken: {}\n",
            slack_token(),
            fake::fake_github(&mut rng)
        );
        let img = TestImage::new(
            vec![
                shared.clone(),
                layer_tar(&[("srv/own.yaml", own.as_bytes())]),
            ],
            serde_json::json!([{"created_by": "COPY .env"}, {"created_by": "COPY srv"}]),
            vec![],
        );
        for l in &img.stored {
            layers.insert(sha256(l), l.len());
        }
        reg.push(&img, &format!("team/svc{i}"), "v1");
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_leakhound"))
        .args(["--format", "json", "--no-config", "registry", &reg.host])
        .args(["--insecure", "--metrics-addr", "127.0.0.1:0"])
        .args(["--metrics-linger", "60"])
        .env("HOME", "/nonexistent")
        .env_remove("DOCKER_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = metrics_addr(&first);
    assert_eq!(http_get(&addr, "/healthz"), (200, "ok\n".into()));
    let mut seen = vec![first];
    for l in lines.by_ref() {
        let l = l.unwrap();
        let done = l.starts_with("leakhound: sweep done;");
        seen.push(l);
        if done {
            break;
        }
    }
    assert!(
        seen.last().unwrap().starts_with("leakhound: sweep done;"),
        "{seen:#?}"
    );
    let (status, body) = http_get(&addr, "/metrics");
    assert_eq!(status, 200);
    let _ = child.kill();
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    let _ = child.wait();
    let findings: Vec<Value> = serde_json::from_slice(&out).unwrap();
    assert!(!findings.is_empty());

    let samples = parse_metrics(&body);
    let mut want: BTreeMap<(String, String), f64> = BTreeMap::new();
    for f in &findings {
        *want
            .entry((
                f["rule_id"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
            ))
            .or_default() += 1.0;
    }
    let mut got: BTreeMap<(String, String), f64> = BTreeMap::new();
    for s in samples.iter().filter(|s| s.0 == "leakhound_findings_total") {
        *got.entry((s.1["rule"].clone(), s.1["severity"].clone()))
            .or_default() += s.2;
    }
    assert_eq!(got, want, "findings_total against the report\n{body}");
    assert_eq!(sum_of(&samples, "leakhound_images_scanned_total"), 4.0);
    assert_eq!(
        sum_of(&samples, "leakhound_layers_fetched_total"),
        layers.len() as f64,
        "each distinct layer once\n{body}"
    );
    assert_eq!(
        sum_of(&samples, "leakhound_bytes_fetched_total"),
        layers.values().sum::<usize>() as f64
    );
    assert_eq!(sum_of(&samples, "leakhound_errors_total"), 0.0);
    assert_eq!(sum_of(&samples, "leakhound_registry_retries_total"), 0.0);
    let ok: f64 = samples
        .iter()
        .filter(|s| s.0 == "leakhound_registry_requests_total" && s.1["status"] == "200")
        .map(|s| s.2)
        .sum();
    // The probe, the catalog, 4 tag lists, 4 manifests, 4 configs, 5 layers.
    assert_eq!(ok, 19.0, "{body}");
}
