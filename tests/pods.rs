//! `leakhound logs --pods-dir`: the node agent over kubelet-style trees
//! built at test time: CRI partial lines, json-file, rotation with gzip,
//! deleted and new pods, a restart from the state file, Prometheus metrics
//! parsed by the Python client's OpenMetrics parser, and the deploy/
//! manifests rendered by kustomize and validated against the Kubernetes
//! schemas.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "support/fake.rs"]
mod fake;
#[path = "support/metrics.rs"]
mod metrics;
use fake::{Rng, fake_github};
use metrics::{http_get, metrics_addr, parse_metrics, sum_of};

fn now_rfc3339() -> String {
    jiff::Timestamp::now().to_string()
}

/// One container's log as a runtime writes it, with kubelet rotation.
struct Container {
    dir: PathBuf,
    json: bool,
    file: File,
    rotations: u32,
}

impl Container {
    fn new(root: &Path, pod_dir: &str, name: &str, json: bool) -> Self {
        let dir = root.join(pod_dir).join(name);
        fs::create_dir_all(&dir).unwrap();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("0.log"))
            .unwrap();
        Container {
            dir,
            json,
            file,
            rotations: 0,
        }
    }

    /// Records for one logical line; `split` cuts it into a partial record
    /// and the rest (CRI `P` then `F`; json-file without and with `\n`).
    fn records(&self, line: &str, split: Option<usize>) -> String {
        let t = now_rfc3339();
        let parts: Vec<(&str, bool)> = match split {
            Some(at) => vec![(&line[..at], true), (&line[at..], false)],
            None => vec![(line, false)],
        };
        let mut out = String::new();
        for (text, partial) in parts {
            if self.json {
                let log = if partial {
                    text.to_string()
                } else {
                    format!("{text}\n")
                };
                let rec = serde_json::json!({"log": log, "stream": "stdout", "time": t});
                out.push_str(&rec.to_string());
                out.push('\n');
            } else {
                let tag = if partial { "P" } else { "F" };
                out.push_str(&format!("{t} stdout {tag} {text}\n"));
            }
        }
        out
    }

    fn write(&mut self, records: &str) {
        self.file.write_all(records.as_bytes()).unwrap();
    }

    /// The kubelet's rotation: rename the live file, have the runtime open
    /// a new one, and gzip the rotated files but the newest.
    fn rotate(&mut self) {
        self.rotations += 1;
        let suffix = format!("20240101-{:06}", self.rotations);
        fs::rename(
            self.dir.join("0.log"),
            self.dir.join(format!("0.log.{suffix}")),
        )
        .unwrap();
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("0.log"))
            .unwrap();
        for r in 1..self.rotations {
            let plain = self.dir.join(format!("0.log.20240101-{r:06}"));
            if !plain.exists() {
                continue;
            }
            let gz = self.dir.join(format!("0.log.20240101-{r:06}.gz"));
            let tmp = self.dir.join(format!("0.log.20240101-{r:06}.gz.tmp"));
            let data = fs::read(&plain).unwrap();
            let mut enc =
                flate2::write::GzEncoder::new(File::create(&tmp).unwrap(), Default::default());
            enc.write_all(&data).unwrap();
            enc.finish().unwrap();
            fs::rename(&tmp, &gz).unwrap();
            fs::remove_file(&plain).unwrap();
        }
    }
}

/// A container logged by Docker Engine: the kubelet's `0.log` is a link
/// to Docker's json-file log, which Docker rotates itself (`.1` newest,
/// older ones renumbered, `.2` and older gzipped).
#[cfg(unix)]
struct DockerContainer {
    logs: PathBuf,
    target: PathBuf,
    inner: Container,
}

#[cfg(unix)]
impl DockerContainer {
    fn new(root: &Path, docker: &Path, pod_dir: &str, name: &str, id: &str) -> Self {
        let dir = root.join(pod_dir).join(name);
        fs::create_dir_all(&dir).unwrap();
        let logs = docker.join(id);
        fs::create_dir_all(&logs).unwrap();
        let target = logs.join(format!("{id}-json.log"));
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&target)
            .unwrap();
        std::os::unix::fs::symlink(&target, dir.join("0.log")).unwrap();
        DockerContainer {
            logs,
            target,
            inner: Container {
                dir,
                json: true,
                file,
                rotations: 0,
            },
        }
    }

    fn numbered(&self, n: u32, gz: bool) -> PathBuf {
        let name = self.target.file_name().unwrap().to_string_lossy();
        let gz = if gz { ".gz" } else { "" };
        self.logs.join(format!("{name}.{n}{gz}"))
    }

    fn rotate(&mut self) {
        self.inner.rotations += 1;
        for n in (1..self.inner.rotations).rev() {
            for gz in [false, true] {
                let from = self.numbered(n, gz);
                if from.exists() {
                    fs::rename(&from, self.numbered(n + 1, gz)).unwrap();
                }
            }
        }
        fs::rename(&self.target, self.numbered(1, false)).unwrap();
        self.inner.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.target)
            .unwrap();
        let plain = self.numbered(2, false);
        if plain.exists() {
            let mut enc = flate2::write::GzEncoder::new(
                File::create(self.numbered(2, true)).unwrap(),
                Default::default(),
            );
            enc.write_all(&fs::read(&plain).unwrap()).unwrap();
            enc.finish().unwrap();
            fs::remove_file(&plain).unwrap();
        }
    }
}

fn pod_dir(ns: &str, pod: &str, n: u64) -> String {
    format!("{ns}_{pod}_{:08x}-1111-4222-8333-{:012x}", n, n * 7919)
}

/// A running agent: findings arrive on a channel, stderr is kept.
struct Agent {
    child: Child,
    findings: mpsc::Receiver<Value>,
    stderr: Arc<Mutex<String>>,
    metrics: Option<String>,
}

impl Agent {
    fn start(root: &Path, extra: &[&str]) -> Agent {
        let mut child = Command::new(env!("CARGO_BIN_EXE_leakhound"))
            .args(["logs", "--no-config", "--pods-dir"])
            .arg(root)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start leakhound logs --pods-dir");
        let out = child.stdout.take().unwrap();
        let (tx, findings) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let v: Value = serde_json::from_str(&line).expect("a JSON finding per line");
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let err = child.stderr.take().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let (addr_tx, addr_rx) = mpsc::channel();
        {
            let stderr = stderr.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines() {
                    let Ok(line) = line else { break };
                    if let Some(rest) = line.strip_prefix("leakhound: metrics on http://") {
                        let _ = addr_tx.send(rest.trim_end_matches("/metrics").to_string());
                    }
                    let mut s = stderr.lock().unwrap();
                    s.push_str(&line);
                    s.push('\n');
                }
            });
        }
        let metrics = extra.contains(&"--metrics-addr").then(|| {
            addr_rx
                .recv_timeout(Duration::from_secs(60))
                .expect("metrics address")
        });
        Agent {
            child,
            findings,
            stderr,
            metrics,
        }
    }

    /// Findings until `done` says enough, or the deadline.
    fn collect_until(
        &self,
        into: &mut Vec<Value>,
        deadline: Duration,
        done: impl Fn(&[Value]) -> bool,
    ) {
        let end = Instant::now() + deadline;
        while !done(into) && Instant::now() < end {
            if let Ok(v) = self.findings.recv_timeout(Duration::from_millis(200)) {
                into.push(v);
            }
        }
    }

    /// SIGTERM; waits for the exit and returns the last findings.
    fn stop(mut self, into: &mut Vec<Value>) -> (Option<i32>, String) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let end = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < end, "agent did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        };
        // The reader thread drains the pipe to its end.
        while let Ok(v) = self.findings.recv_timeout(Duration::from_secs(5)) {
            into.push(v);
        }
        std::thread::sleep(Duration::from_millis(100));
        (status.code(), self.stderr.lock().unwrap().clone())
    }
}

fn secret_of(f: &Value) -> String {
    f["secret"].as_str().expect("--show-secrets").to_string()
}

#[test]
fn cri_partial_lines_json_file_and_the_pod_in_findings() {
    let root = tempfile::tempdir().unwrap();
    let mut rng = Rng(7);
    let (a, b, c) = (
        fake_github(&mut rng),
        fake_github(&mut rng),
        fake_github(&mut rng),
    );
    let uid = "0b5f2c4e-1111-4c3b-9a2d-123456789abc";
    let api = root.path().join(format!("shop_api-7d9f_{uid}/server"));
    fs::create_dir_all(&api).unwrap();
    // Line 3 is one logical line of three records: the secret is cut
    // between the first two and would not match in either alone.
    let line3 = format!("auth header token={a} end");
    let cut = line3.find("ghp_").unwrap() + 10;
    fs::write(
        api.join("0.log"),
        format!(
            "2024-05-01T10:00:00.1Z stdout F starting\n\
             2024-05-01T10:00:00.2Z stderr F warming up\n\
             2024-05-01T10:00:01.123456789Z stderr P {}\n\
             2024-05-01T10:00:01.2Z stderr P {}\n\
             2024-05-01T10:00:01.3Z stderr F \n\
             2024-05-01T10:00:02Z stdout F plain\n",
            &line3[..cut],
            &line3[cut..]
        ),
    )
    .unwrap();
    let web = root
        .path()
        .join("web_front-1_9a8b7c6d-0000-4000-8000-000000000001/nginx");
    fs::create_dir_all(&web).unwrap();
    fs::write(
        web.join("2.log"),
        format!(
            "{{\"log\":\"GET /\\n\",\"stream\":\"stdout\",\"time\":\"2024-05-01T11:00:00Z\"}}\n\
             {{\"log\":\"cfg {{\\\"token\\\": \\\"{b}\",\"stream\":\"stdout\",\"time\":\"2024-05-01T11:00:01.5Z\"}}\n\
             {{\"log\":\"\\\"}}\\n\",\"stream\":\"stdout\",\"time\":\"2024-05-01T11:00:01.6Z\"}}\n"
        ),
    )
    .unwrap();
    let agent = Agent::start(root.path(), &["--show-secrets"]);
    let mut found = Vec::new();
    agent.collect_until(&mut found, Duration::from_secs(120), |f| f.len() >= 2);
    // A pod created while the agent runs is picked up.
    let late = root
        .path()
        .join("shop_worker-5_11111111-2222-4333-8444-555555555555/w");
    fs::create_dir_all(&late).unwrap();
    fs::write(
        late.join("0.log"),
        format!("2024-05-01T12:00:00Z stdout F export TOKEN={c}\n"),
    )
    .unwrap();
    agent.collect_until(&mut found, Duration::from_secs(120), |f| f.len() >= 3);
    let (code, stderr) = agent.stop(&mut found);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(found.len(), 3, "{found:#?}\n{stderr}");
    let by: HashMap<String, &Value> = found.iter().map(|f| (secret_of(f), f)).collect();

    let f = by[&a];
    assert_eq!(f["rule_id"], "github-classic-pat");
    assert_eq!(f["line"], 3, "the logical line, not the record");
    assert_eq!(f["column"], line3.find("ghp_").unwrap() + 1);
    assert_eq!(f["timestamp"], "2024-05-01T10:00:01.123456789Z");
    let k = &f["kubernetes"];
    assert_eq!(k["kind"], "Pod");
    assert_eq!(k["namespace"], "shop");
    assert_eq!(k["name"], "api-7d9f");
    assert_eq!(k["pod"], "api-7d9f");
    assert_eq!(k["pod_uid"], uid);
    assert_eq!(k["container"], "server");
    assert_eq!(k["restart"], 0);
    assert_eq!(k["stream"], "stderr");
    assert!(f["path"].as_str().unwrap().ends_with("/server/0.log"));

    let f = by[&b];
    assert_eq!(
        (f["line"].as_u64(), f["column"].as_u64()),
        (Some(2), Some(16))
    );
    assert_eq!(f["timestamp"], "2024-05-01T11:00:01.5Z");
    assert_eq!(f["kubernetes"]["namespace"], "web");
    assert_eq!(f["kubernetes"]["container"], "nginx");
    assert_eq!(f["kubernetes"]["restart"], 2);

    assert_eq!(by[&c]["kubernetes"]["pod"], "worker-5");
}

#[test]
fn rotation_and_gzip_while_running_and_while_stopped_lose_and_repeat_nothing() {
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("state.json");
    let logs = root.path().join("pods");
    let mut rng = Rng(11);
    let mut c = Container::new(&logs, &pod_dir("ns", "p", 1), "c", false);
    let mut planted = Vec::new();
    let plant = |c: &mut Container, rng: &mut Rng, planted: &mut Vec<String>| {
        let s = fake_github(rng);
        for i in 0..50 {
            c.write(&c.records(&format!("filler {i} nothing to see"), None));
        }
        c.write(&c.records(&format!("key={s}"), None));
        planted.push(s);
    };
    plant(&mut c, &mut rng, &mut planted);
    c.rotate();
    plant(&mut c, &mut rng, &mut planted);
    let state_arg = state.to_str().unwrap();
    let agent = Agent::start(
        &logs,
        &[
            "--show-secrets",
            "--state",
            state_arg,
            "--state-interval",
            "0.5",
        ],
    );
    let mut found = Vec::new();
    agent.collect_until(&mut found, Duration::from_secs(120), |f| f.len() >= 2);
    // Rotations while it runs: rename, new file, gzip of the older one.
    for _ in 0..3 {
        plant(&mut c, &mut rng, &mut planted);
        c.rotate();
    }
    plant(&mut c, &mut rng, &mut planted);
    agent.collect_until(&mut found, Duration::from_secs(120), |f| {
        f.len() >= planted.len()
    });
    let (_, stderr) = agent.stop(&mut found);
    assert_eq!(found.len(), planted.len(), "{stderr}");
    // While it is down: the file it stopped in is rotated, then gzipped.
    plant(&mut c, &mut rng, &mut planted);
    c.rotate();
    plant(&mut c, &mut rng, &mut planted);
    c.rotate();
    plant(&mut c, &mut rng, &mut planted);
    let agent = Agent::start(&logs, &["--show-secrets", "--state", state_arg]);
    agent.collect_until(&mut found, Duration::from_secs(120), |f| {
        f.len() >= planted.len()
    });
    // Give a repeat the time to show.
    agent.collect_until(&mut found, Duration::from_secs(2), |_| false);
    let (_, stderr) = agent.stop(&mut found);
    let mut got: Vec<String> = found.iter().map(secret_of).collect();
    got.sort();
    let mut want = planted.clone();
    want.sort();
    assert_eq!(got, want, "{stderr}");
    // Lines are numbered across rotations: 51 lines per planted secret.
    let mut lines: Vec<u64> = found.iter().map(|f| f["line"].as_u64().unwrap()).collect();
    lines.sort();
    let expect: Vec<u64> = (1..=planted.len() as u64).map(|i| i * 51).collect();
    assert_eq!(lines, expect);
}

#[test]
fn a_corrupt_state_file_is_a_clear_error() {
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("state.json");
    fs::write(&state, "{not json").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_leakhound"))
        .args(["logs", "--no-config", "--pods-dir"])
        .arg(root.path())
        .arg("--state")
        .arg(&state)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a leakhound state file"), "{err}");
}

#[test]
fn metrics_and_healthz_for_standard_input() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_leakhound"))
        .args(["logs", "--no-config", "--metrics-addr", "127.0.0.1:0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = BufReader::new(child.stderr.take().unwrap());
    let mut lines = err.lines();
    let first = lines.next().unwrap().unwrap();
    let addr = metrics_addr(&first);
    let out = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in out.lines() {
            let _ = tx.send(l.unwrap());
        }
    });
    let mut stdin = child.stdin.take().unwrap();
    let mut rng = Rng(3);
    let s = fake_github(&mut rng);
    writeln!(stdin, "one\ntwo\ntoken={s}").unwrap();
    stdin.flush().unwrap();
    rx.recv_timeout(Duration::from_secs(60)).expect("a finding");
    let (status, body) = http_get(&addr, "/metrics");
    assert_eq!(status, 200);
    let samples = parse_metrics(&body);
    assert_eq!(sum_of(&samples, "leakhound_lines_scanned_total"), 3.0);
    let f: Vec<_> = samples
        .iter()
        .filter(|s| s.0 == "leakhound_findings_total")
        .collect();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].1["rule"], "github-classic-pat");
    assert_eq!(f[0].1["severity"], "high");
    assert!(!f[0].1.contains_key("namespace"));
    assert_eq!(http_get(&addr, "/healthz"), (200, "ok\n".into()));
    assert_eq!(http_get(&addr, "/nope").0, 404);
    drop(stdin);
    assert_eq!(child.wait().unwrap().code(), Some(1));
}

/// What was planted: secret → (namespace, pod, container).
type Planted = Arc<Mutex<HashMap<String, (String, String, String)>>>;

struct SimContainer {
    ns: String,
    pod: String,
    name: String,
    log: Container,
    rng: Rng,
    lines: u64,
    /// Rotated twice while the agent was down.
    down_rotated: bool,
}

impl SimContainer {
    /// Writes `n` lines: filler, long lines cut into partial records, and a
    /// planted secret (every other time cut across records) when `secret`.
    fn write(&mut self, n: usize, secret: bool, planted: &Planted) {
        let mut batch = String::new();
        for i in 0..n {
            self.lines += 1;
            let line = match (i, self.lines % 9) {
                (0, _) if secret => {
                    let s = fake_github(&mut self.rng);
                    let line =
                        format!("level=debug msg=\"env\" GITHUB_TOKEN={s} id={}", self.lines);
                    planted.lock().unwrap().insert(
                        s.clone(),
                        (self.ns.clone(), self.pod.clone(), self.name.clone()),
                    );
                    let cut = self
                        .lines
                        .is_multiple_of(2)
                        .then(|| line.find("ghp_").unwrap() + 9);
                    batch.push_str(&self.log.records(&line, cut));
                    continue;
                }
                (_, 4) => {
                    let long = "x".repeat(300 + (self.lines % 50) as usize);
                    batch.push_str(&self.log.records(&format!("blob {long} done"), Some(120)));
                    continue;
                }
                _ => format!(
                    "level=info msg=\"request\" path=/api/items/{} status=200 n={}",
                    self.lines % 977,
                    self.lines
                ),
            };
            batch.push_str(&self.log.records(&line, None));
        }
        self.log.write(&batch);
    }
}

fn scrape(agent: &Agent) -> Vec<(String, BTreeMap<String, String>, f64)> {
    let (status, body) = http_get(agent.metrics.as_deref().unwrap(), "/metrics");
    assert_eq!(status, 200);
    parse_metrics(&body)
}

/// Findings per namespace and in all, from the findings and from metrics.
fn check_metrics(samples: &[(String, BTreeMap<String, String>, f64)], found: &[Value]) {
    let mut want: BTreeMap<String, f64> = BTreeMap::new();
    for f in found {
        *want
            .entry(f["kubernetes"]["namespace"].as_str().unwrap().to_string())
            .or_default() += 1.0;
    }
    let mut got: BTreeMap<String, f64> = BTreeMap::new();
    for s in samples.iter().filter(|s| s.0 == "leakhound_findings_total") {
        assert_eq!(s.1["rule"], "github-classic-pat");
        *got.entry(s.1["namespace"].clone()).or_default() += s.2;
    }
    assert_eq!(
        got, want,
        "findings_total by namespace against the findings"
    );
    assert!(sum_of(samples, "leakhound_lines_scanned_total") > 0.0);
    assert!(sum_of(samples, "leakhound_scan_lag_seconds_count") > 0.0);
}

#[test]
fn a_simulated_node() {
    let root = tempfile::tempdir().unwrap();
    let logs = root.path().join("pods");
    let state = root.path().join("state.json");
    let planted: Planted = Arc::default();
    let mut rng = Rng(42);
    let namespaces = ["default", "payments", "web", "batch", "monitoring"];
    let mut containers: Vec<SimContainer> = Vec::new();
    let new_pod = |i: u64, rng: &mut Rng, containers: &mut Vec<SimContainer>| {
        let ns = namespaces[i as usize % namespaces.len()];
        let pod = format!("app{i}-{}", rng.pick(b"bcdfghjklmnpqrstvwxz2456789", 5));
        let dir = pod_dir(ns, &pod, i);
        for c in 0..1 + i % 3 {
            let name = format!("c{c}");
            containers.push(SimContainer {
                ns: ns.into(),
                pod: pod.clone(),
                log: Container::new(&logs, &dir, &name, i % 7 == 3),
                name,
                rng: Rng(1000 + i * 10 + c),
                lines: 0,
                down_rotated: false,
            });
        }
        dir
    };
    let mut dirs = Vec::new();
    for i in 0..50 {
        dirs.push(new_pod(i, &mut rng, &mut containers));
    }
    // History before the agent starts, some of it rotated and gzipped.
    for (i, c) in containers.iter_mut().enumerate() {
        c.write(30, true, &planted);
        if i % 4 == 0 {
            c.log.rotate();
            c.write(10, true, &planted);
        }
        if i % 8 == 0 {
            c.log.rotate();
            c.write(10, false, &planted);
        }
    }
    // The last pod is deleted while the agent runs; it writes no more.
    let doomed = dirs.pop().unwrap();
    let doomed_pod = containers.last().unwrap().pod.clone();
    containers.retain(|c| c.pod != doomed_pod);

    let state_arg = state.to_str().unwrap().to_string();
    let args = [
        "--show-secrets",
        "--state",
        &state_arg,
        "--state-interval",
        "0.5",
        "--rescan-interval",
        "1",
        "--metrics-addr",
        "127.0.0.1:0",
    ];
    let agent = Agent::start(&logs, &args);
    let mut found_a: Vec<Value> = Vec::new();
    let planted_now = |p: &Planted| p.lock().unwrap().len();
    let n = planted_now(&planted);
    agent.collect_until(&mut found_a, Duration::from_secs(180), |f| f.len() >= n);
    assert_eq!(found_a.len(), n, "history before the start");
    fs::remove_dir_all(logs.join(&doomed)).unwrap();
    for i in 50..52 {
        new_pod(i, &mut rng, &mut containers);
    }
    let streams = containers.len() as f64;
    for c in containers
        .iter_mut()
        .filter(|c| c.pod.starts_with("app50-") || c.pod.starts_with("app51-"))
    {
        c.write(20, true, &planted);
    }

    // Writers: four threads over the containers, rotating as they go; the
    // agent is stopped in the middle, files are rotated twice (the older
    // gzipped) while it is down, and it is started again from its state.
    // Phases: 0 agent A runs; 1 A stopped; 2 agent B started.
    let phase = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let ready = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let rounds_done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let per_thread: Vec<Vec<SimContainer>> = {
        let mut v: Vec<Vec<SimContainer>> = (0..4).map(|_| Vec::new()).collect();
        for (i, c) in containers.into_iter().enumerate() {
            v[i % 4].push(c);
        }
        v
    };
    const ROUNDS: usize = 30;
    let wait_phase = |phase: &std::sync::atomic::AtomicUsize, n: usize| {
        let end = Instant::now() + Duration::from_secs(300);
        while phase.load(Ordering::SeqCst) < n {
            assert!(Instant::now() < end, "phase {n} never came");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    let writers: Vec<_> = per_thread
        .into_iter()
        .map(|mut mine| {
            let (planted, phase, ready, rounds_done) = (
                planted.clone(),
                phase.clone(),
                ready.clone(),
                rounds_done.clone(),
            );
            std::thread::spawn(move || {
                let down_rotate = |c: &mut SimContainer| {
                    // The file the agent stopped in is renamed, then
                    // gzipped by the next rotation.
                    c.log.rotate();
                    c.write(5, true, &planted);
                    c.log.rotate();
                    c.down_rotated = true;
                };
                for round in 0..ROUNDS {
                    if round == 2 * ROUNDS / 3 {
                        wait_phase(&phase, 1);
                        for c in mine.iter_mut().filter(|c| !c.down_rotated) {
                            down_rotate(c);
                        }
                        ready.fetch_add(1, Ordering::SeqCst);
                        wait_phase(&phase, 2);
                    }
                    for (j, c) in mine.iter_mut().enumerate() {
                        c.write(15, round % 2 == j % 2, &planted);
                        if (round + j) % 11 == 10 {
                            c.log.rotate();
                        }
                        if phase.load(Ordering::SeqCst) == 1 && !c.down_rotated {
                            down_rotate(c);
                        }
                    }
                    rounds_done.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                }
                mine
            })
        })
        .collect();
    let wait_rounds = |n: usize| {
        let end = Instant::now() + Duration::from_secs(300);
        while rounds_done.load(Ordering::SeqCst) < n {
            assert!(Instant::now() < end, "writers stalled");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    wait_rounds(4 * ROUNDS / 3);
    // The deleted pod's stream is closed: 52 pods' containers, less one.
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let samples = scrape(&agent);
        if sum_of(&samples, "leakhound_files_followed") == streams {
            break;
        }
        assert!(
            Instant::now() < end,
            "files_followed never became {streams}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Metrics against what this agent wrote so far (everything written
    // before the scrape is in the metrics; findings written after it too,
    // so collect first, then scrape once the stream is quiet).
    let samples_a = scrape(&agent);
    // Stopped while the writers write.
    let (_, stderr_a) = agent.stop(&mut found_a);
    phase.store(1, Ordering::SeqCst);
    wait_phase(&ready, 4);
    let agent = Agent::start(&logs, &args);
    phase.store(2, Ordering::SeqCst);
    let finished: Vec<Vec<SimContainer>> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    assert!(finished.iter().flatten().all(|c| c.down_rotated));
    let total = planted_now(&planted);
    let mut found_b: Vec<Value> = Vec::new();
    agent.collect_until(&mut found_b, Duration::from_secs(300), |f| {
        found_a.len() + f.len() >= total
    });
    // Time for a duplicate to show, then metrics of the quiet agent.
    agent.collect_until(&mut found_b, Duration::from_secs(2), |_| false);
    let samples_b = scrape(&agent);
    let (_, stderr_b) = agent.stop(&mut found_b);

    let planted = planted.lock().unwrap();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for f in found_a.iter().chain(&found_b) {
        let s = secret_of(f);
        *seen.entry(s.clone()).or_default() += 1;
        let want = planted
            .get(&s)
            .unwrap_or_else(|| panic!("a finding nobody planted: {f}"));
        let k = &f["kubernetes"];
        assert_eq!(
            (
                k["namespace"].as_str().unwrap(),
                k["pod"].as_str().unwrap(),
                k["container"].as_str().unwrap()
            ),
            (want.0.as_str(), want.1.as_str(), want.2.as_str())
        );
        assert!(f["timestamp"].as_str().is_some());
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "reported more than once: {twice:?}\n{stderr_a}\n{stderr_b}"
    );
    let missing: Vec<_> = planted.keys().filter(|s| !seen.contains_key(*s)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} planted secrets never reported\n{stderr_a}\n{stderr_b}",
        missing.len(),
        planted.len()
    );
    eprintln!(
        "simulated node: {} planted, {} reported before the restart, {} after; \
         {} rotations seen by the second agent",
        planted.len(),
        found_a.len(),
        found_b.len(),
        sum_of(&samples_b, "leakhound_rotations_total")
    );
    // Metrics: counted findings are the findings each agent wrote.
    let scraped_a: f64 = sum_of(&samples_a, "leakhound_findings_total");
    assert!(scraped_a <= found_a.len() as f64);
    check_metrics(&samples_b, &found_b);
    assert!(sum_of(&samples_b, "leakhound_rotations_total") > 0.0);
}

#[test]
fn a_checkpoint_whose_file_is_gone_resumes_after_its_time() {
    // The state names a file that no longer exists under any name (its
    // inode and first bytes match nothing): lines up to the checkpoint's
    // time were scanned by the run that wrote it, later ones were not.
    let root = tempfile::tempdir().unwrap();
    let logs = root.path().join("pods");
    let dir = logs.join("ns_p_0000aaaa-1111-4222-8333-000000000001/c");
    fs::create_dir_all(&dir).unwrap();
    let mut rng = Rng(5);
    let secrets: Vec<String> = (0..10).map(|_| fake_github(&mut rng)).collect();
    let line = |i: usize| format!("2024-05-01T10:00:{i:02}.5Z stdout F token={}\n", secrets[i]);
    fs::write(dir.join("0.log.20240101-000001.gz"), {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), Default::default());
        for i in 0..6 {
            enc.write_all(line(i).as_bytes()).unwrap();
        }
        enc.finish().unwrap()
    })
    .unwrap();
    fs::write(dir.join("0.log"), (6..10).map(line).collect::<String>()).unwrap();
    let state = root.path().join("state.json");
    fs::write(
        &state,
        r#"{"version":1,"streams":{"ns_p_0000aaaa-1111-4222-8333-000000000001/c/0":
           {"dev":1,"ino":1,"offset":90,"line":4,"head_len":16,"head_crc":0,
            "time":"2024-05-01T10:00:03.5Z"}}}"#,
    )
    .unwrap();
    let agent = Agent::start(
        &logs,
        &["--show-secrets", "--state", state.to_str().unwrap()],
    );
    let mut found = Vec::new();
    agent.collect_until(&mut found, Duration::from_secs(120), |f| f.len() >= 6);
    agent.collect_until(&mut found, Duration::from_secs(1), |_| false);
    let (_, stderr) = agent.stop(&mut found);
    let mut got: Vec<(u64, String)> = found
        .iter()
        .map(|f| (f["line"].as_u64().unwrap(), secret_of(f)))
        .collect();
    got.sort();
    let want: Vec<(u64, String)> = (4..10)
        .map(|i| (i as u64 + 1, secrets[i].clone()))
        .collect();
    assert_eq!(got, want, "{stderr}");
}

#[cfg(unix)]
#[test]
fn dockers_own_rotation_behind_the_kubelets_link_loses_and_repeats_nothing() {
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("state.json");
    let logs = root.path().join("pods");
    let docker = root.path().join("containers");
    let mut rng = Rng(29);
    let mut c = DockerContainer::new(&logs, &docker, &pod_dir("ns", "d", 3), "app", "0a1b2c");
    let mut planted = Vec::new();
    let plant = |c: &mut DockerContainer, rng: &mut Rng, planted: &mut Vec<String>| {
        let s = fake_github(rng);
        for i in 0..50 {
            let r = c.inner.records(&format!("filler {i} nothing to see"), None);
            c.inner.write(&r);
        }
        let r = c.inner.records(&format!("key={s}"), None);
        c.inner.write(&r);
        planted.push(s);
    };
    plant(&mut c, &mut rng, &mut planted);
    c.rotate();
    plant(&mut c, &mut rng, &mut planted);
    let state_arg = state.to_str().unwrap();
    let args = [
        "--show-secrets",
        "--state",
        state_arg,
        "--state-interval",
        "0.5",
    ];
    let agent = Agent::start(&logs, &args);
    let mut found = Vec::new();
    agent.collect_until(&mut found, Duration::from_secs(120), |f| f.len() >= 2);
    // Rotations while it runs, two of them at once.
    plant(&mut c, &mut rng, &mut planted);
    c.rotate();
    plant(&mut c, &mut rng, &mut planted);
    c.rotate();
    plant(&mut c, &mut rng, &mut planted);
    agent.collect_until(&mut found, Duration::from_secs(120), |f| {
        f.len() >= planted.len()
    });
    let (_, stderr) = agent.stop(&mut found);
    assert_eq!(found.len(), planted.len(), "{stderr}");
    // While it is down: the file it stopped in is rotated, renumbered and
    // compressed.
    for _ in 0..3 {
        plant(&mut c, &mut rng, &mut planted);
        c.rotate();
    }
    plant(&mut c, &mut rng, &mut planted);
    let agent = Agent::start(&logs, &args);
    agent.collect_until(&mut found, Duration::from_secs(120), |f| {
        f.len() >= planted.len()
    });
    agent.collect_until(&mut found, Duration::from_secs(2), |_| false);
    let (_, stderr) = agent.stop(&mut found);
    let mut got: Vec<String> = found.iter().map(secret_of).collect();
    got.sort();
    let mut want = planted.clone();
    want.sort();
    assert_eq!(got, want, "{stderr}");
    let mut lines: Vec<u64> = found.iter().map(|f| f["line"].as_u64().unwrap()).collect();
    lines.sort();
    let expect: Vec<u64> = (1..=planted.len() as u64).map(|i| i * 51).collect();
    assert_eq!(lines, expect);
    assert!(found.iter().all(|f| f["kubernetes"]["container"] == "app"));
}
