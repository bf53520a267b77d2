//! `leakhound logs --pods-dir` as a node agent under load (not Criterion:
//! one long run whose figures are lag, memory and recall).
//!
//! 200 container logs (CRI format, some lines cut into partial records)
//! are written by four threads at a paced total rate (default 100 MB/s),
//! rotated the kubelet's way at 10 MiB (rename, new file, the oldest
//! rotated file removed beyond five), with a fake secret planted about
//! every 1 MB. The release binary follows them; the bench reports
//!
//! - lag: for each planted secret, the time from the line's timestamp to
//!   the finding's arrival on the agent's stdout (p50/p99/max), and the
//!   agent's own `leakhound_scan_lag_seconds` histogram;
//! - peak memory: the agent's VmHWM from /proc;
//! - recall: planted secrets reported (each once).
//!
//!     cargo bench --bench pods -- [SECONDS] [MB_PER_S] [CONTAINERS]
//!
//! Without `--bench` (as `cargo test --all-targets` runs it) a 2-second run
//! at 5 MB/s over 20 containers proves it works.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ROTATE_AT: u64 = 10 << 20;
const KEEP_ROTATED: u32 = 4;

#[path = "../tests/support/fake.rs"]
mod fake;
use fake::{Rng, fake_github};

/// Messages of ordinary log lines (no secrets).
fn pool() -> Vec<String> {
    (0..512u64)
        .map(|i| match i % 4 {
            0 => format!(
                "level=info msg=\"request done\" path=/api/v1/items/{i} status=200 duration_ms={} req_id={:016x} user_agent=\"Mozilla/5.0 (X11; Linux x86_64)\"",
                i % 900,
                i.wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ),
            1 => format!(
                "{{\"ts\":\"2026-11-25T10:00:00Z\",\"level\":\"debug\",\"msg\":\"GET https:\\/\\/api.internal\\/v2\\/items?page={i}\",\"accept\":\"application\\/json\",\"trace\":\"{:032x}\"}}",
                i.wrapping_mul(0x2545_f491_4f6c_dd1d) as u128 * 7
            ),
            2 => format!(
                "[worker-{}] WARN retrying job {:08x} after timeout; attempt {} of 5, backoff {}ms, queue depth {}",
                i % 8,
                i * 7919,
                i % 5,
                i * 13 % 1000,
                i % 77
            ),
            _ => format!(
                "INFO  c.e.shop.OrderService - order {} placed for customer {} total={}.{:02} EUR items={}",
                100_000 + i,
                i * 31,
                i % 500,
                i % 100,
                i % 9 + 1
            ),
        })
        .collect()
}

struct Log {
    dir: PathBuf,
    file: File,
    size: u64,
    rotations: u32,
}

impl Log {
    fn new(dir: PathBuf) -> Self {
        fs::create_dir_all(&dir).unwrap();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("0.log"))
            .unwrap();
        Log {
            dir,
            file,
            size: 0,
            rotations: 0,
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        self.file.write_all(bytes).unwrap();
        self.size += bytes.len() as u64;
        if self.size >= ROTATE_AT {
            self.rotations += 1;
            let r = self.rotations;
            fs::rename(
                self.dir.join("0.log"),
                self.dir.join(format!("0.log.20240101-{r:06}")),
            )
            .unwrap();
            self.file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.join("0.log"))
                .unwrap();
            self.size = 0;
            if r > KEEP_ROTATED {
                let _ = fs::remove_file(
                    self.dir
                        .join(format!("0.log.20240101-{:06}", r - KEEP_ROTATED)),
                );
            }
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn vm_hwm_kib(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU seconds (user + system) the process used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime and
    // stime are the 12th and 13th, in clock ticks.
    let rest = stat.rsplit_once(')').map_or("", |x| x.1);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    let tick = 100.0; // USER_HZ on Linux
    (f.get(11).unwrap_or(&0.0) + f.get(12).unwrap_or(&0.0)) / tick
}

fn http_get(addr: &str, path: &str) -> String {
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return String::new();
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = write!(s, "GET {path} HTTP/1.0\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let nums: Vec<f64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (secs, mbps, containers) = if bench {
        (
            nums.first().copied().unwrap_or(30.0),
            nums.get(1).copied().unwrap_or(100.0),
            nums.get(2).copied().unwrap_or(200.0) as usize,
        )
    } else {
        (2.0, 5.0, 20)
    };
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("pods");
    fs::create_dir_all(&root).unwrap();
    let mut logs: Vec<Log> = (0..containers)
        .map(|i| {
            let pod = format!(
                "ns{}_pod{}-x_{:08x}-0000-4000-8000-{:012x}",
                i % 10,
                i / 3,
                i,
                i
            );
            Log::new(root.join(pod).join(format!("c{}", i % 3)))
        })
        .collect();

    let mut agent = Command::new(env!("CARGO_BIN_EXE_leakhound"))
        .args(["logs", "--no-config", "--show-secrets", "--pods-dir"])
        .arg(&root)
        .args(["--metrics-addr", "127.0.0.1:0", "--state"])
        .arg(tmp.path().join("state.json"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("leakhound binary");
    let mut err = BufReader::new(agent.stderr.take().unwrap()).lines();
    let first = err.next().unwrap().unwrap();
    let addr = first
        .trim_start_matches("leakhound: metrics on http://")
        .trim_end_matches("/metrics")
        .to_string();
    std::thread::spawn(move || for _ in err {});

    // Findings: arrival time against the line's own timestamp.
    let lags: Arc<Mutex<Vec<f64>>> = Arc::default();
    let reported: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let out = agent.stdout.take().unwrap();
    let reader = {
        let (lags, reported) = (lags.clone(), reported.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let now = jiff::Timestamp::now();
                let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                if let Some(t) = v["timestamp"]
                    .as_str()
                    .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                {
                    lags.lock()
                        .unwrap()
                        .push(now.duration_since(t).as_secs_f64());
                }
                *reported
                    .lock()
                    .unwrap()
                    .entry(v["secret"].as_str().unwrap_or("").to_string())
                    .or_default() += 1;
            }
        })
    };

    // Writers: paced in 10 ms ticks, each thread a quarter of the logs.
    let planted: Arc<Mutex<Vec<String>>> = Arc::default();
    let written = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let pool = Arc::new(pool());
    let threads = 4;
    let per_tick = (mbps * 1e6 / 100.0 / threads as f64) as u64;
    let mut shares: Vec<Vec<Log>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, l) in logs.drain(..).enumerate() {
        shares[i % threads].push(l);
    }
    let started = Instant::now();
    let writers: Vec<_> = shares
        .into_iter()
        .enumerate()
        .map(|(t, mut mine)| {
            let (planted, written, stop, pool) =
                (planted.clone(), written.clone(), stop.clone(), pool.clone());
            std::thread::spawn(move || {
                let mut rng = Rng(0x5eed + t as u64);
                let mut next_secret = 1u64 << 20;
                let mut mine_written = 0u64;
                let mut tick = 0u64;
                let mut buf = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    tick += 1;
                    let mut budget = per_tick;
                    let mut k = (rng.next() % mine.len() as u64) as usize;
                    while budget > 0 {
                        let n = mine.len();
                        let log = &mut mine[k % n];
                        k += 1;
                        buf.clear();
                        let ts = jiff::Timestamp::now().to_string();
                        for _ in 0..8 {
                            let msg = &pool[(rng.next() % pool.len() as u64) as usize];
                            if rng.next().is_multiple_of(16) {
                                let (a, b) = msg.split_at(msg.len() / 2);
                                writeln!(buf, "{ts} stdout P {a}").unwrap();
                                writeln!(buf, "{ts} stdout F {b}").unwrap();
                            } else {
                                writeln!(buf, "{ts} stdout F {msg}").unwrap();
                            }
                        }
                        if mine_written >= next_secret {
                            next_secret += 1 << 20;
                            let s = fake_github(&mut rng);
                            writeln!(buf, "{ts} stderr F export GITHUB_TOKEN={s}").unwrap();
                            planted.lock().unwrap().push(s);
                        }
                        log.write(&buf);
                        mine_written += buf.len() as u64;
                        budget = budget.saturating_sub(buf.len() as u64);
                    }
                    written.fetch_add(per_tick, Ordering::Relaxed);
                    // Pace: tick n ends at n * 10 ms.
                    let due = started + Duration::from_millis(10 * tick);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                }
                mine_written
            })
        })
        .collect();
    let mut peak_kib = 0;
    while started.elapsed().as_secs_f64() < secs {
        std::thread::sleep(Duration::from_millis(200));
        peak_kib = peak_kib.max(vm_hwm_kib(agent.id()));
    }
    stop.store(true, Ordering::Relaxed);
    let total: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    let elapsed = started.elapsed().as_secs_f64();
    // Let the agent finish what was written.
    let want = planted.lock().unwrap().len();
    let deadline = Instant::now() + Duration::from_secs(60);
    while reported.lock().unwrap().len() < want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let catch_up = Instant::now();
    peak_kib = peak_kib.max(vm_hwm_kib(agent.id()));
    let cpu = cpu_seconds(agent.id());
    let metrics = http_get(&addr, "/metrics");
    Command::new("kill")
        .args(["-TERM", &agent.id().to_string()])
        .status()
        .unwrap();
    agent.wait().unwrap();
    reader.join().unwrap();
    let _ = catch_up;

    let planted = planted.lock().unwrap();
    let reported = reported.lock().unwrap();
    let found = planted.iter().filter(|s| reported.contains_key(*s)).count();
    let repeated = reported.values().filter(|n| **n > 1).count();
    let mut lags = lags.lock().unwrap().clone();
    lags.sort_by(f64::total_cmp);
    let hist: Vec<&str> = metrics
        .lines()
        .filter(|l| {
            l.starts_with("leakhound_scan_lag_seconds_bucket")
                || l.starts_with("leakhound_scan_lag_seconds_count")
        })
        .collect();
    println!(
        "pods agent: {containers} containers, {:.1} MB written in {elapsed:.1}s ({:.1} MB/s)",
        total as f64 / 1e6,
        total as f64 / 1e6 / elapsed
    );
    println!(
        "  lag (line timestamp -> finding on stdout), {} findings: p50 {:.3}s p99 {:.3}s max {:.3}s",
        lags.len(),
        percentile(&lags, 0.5),
        percentile(&lags, 0.99),
        lags.last().copied().unwrap_or(f64::NAN)
    );
    println!("  peak memory (VmHWM): {:.1} MiB", peak_kib as f64 / 1024.0);
    println!(
        "  agent CPU: {cpu:.1} s user+system ({:.0} MB per CPU second); load average {}",
        total as f64 / 1e6 / cpu.max(0.001),
        fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    println!(
        "  planted {} secrets, reported {found}, reported more than once {repeated}",
        planted.len()
    );
    for l in hist {
        println!("  {l}");
    }
    if !bench {
        assert_eq!(found, planted.len(), "every planted secret reported");
        assert_eq!(repeated, 0);
    }
}
