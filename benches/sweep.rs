//! A sharded, incremental registry sweep measured end to end (not
//! Criterion: one run whose figures are per-shard bytes, wall time, peak
//! memory and cache size).
//!
//! Debian's `docker-registry` on 127.0.0.1 is filled with IMAGES images over
//! REPOS repositories (two tags per repository and more; `org{r%7}/svc{r}`):
//! each image has a base layer shared by all, and two layers of its own
//! (pseudo-random text, LAYER_KIB each) with a fake GitHub token planted.
//! The release binary then sweeps it as 8 shard processes at once (all
//! sharing one `--cache` directory), twice; the bench reports each shard's
//! scanned bytes against the mean, both sweeps' wall time, every shard's
//! peak RSS (VmHWM from `/usr/bin/time`-less /proc polling), the cache's
//! size per image, and that every planted token was found in both sweeps.
//!
//!     cargo bench --bench sweep -- [IMAGES] [REPOS] [LAYER_KIB]
//!
//! Without `--bench` (as `cargo test --all-targets` runs it) 16 images over
//! 8 repositories with 16 KiB layers prove it works.

#[path = "../tests/support/fake.rs"]
mod fake;
#[path = "../tests/support/image.rs"]
mod fixture;
#[path = "../tests/support/registry.rs"]
mod server;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fixture::{TestImage, layer_tar};
use serde_json::{Value, json};

const SHARDS: usize = 8;

fn text(rng: &mut fake::Rng, bytes: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "config", "server", "listen", "timeout", "retry", "value", "path", "user", "cache",
        "level", "debug", "info", "port", "host", "name", "enable",
    ];
    let mut out = Vec::with_capacity(bytes + 64);
    while out.len() < bytes {
        let w = WORDS[(rng.next() % WORDS.len() as u64) as usize];
        out.extend_from_slice(
            format!("{w}_{} = {}\n", rng.next() % 1000, rng.next() % 100_000).as_bytes(),
        );
    }
    out
}

/// Peak resident memory of `pid` so far, in KiB (Linux).
fn vm_hwm(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

struct Shard {
    bytes: u64,
    layers: u64,
    cached: u64,
    images: u64,
    peak_kib: u64,
    findings: Vec<Value>,
}

/// Runs the 8 shards at once; their figures and the wall time.
fn sweep(host: &str, cache: &Path, out: &Path) -> (Vec<Shard>, Duration) {
    let start = Instant::now();
    let mut children: Vec<_> = (0..SHARDS)
        .map(|i| {
            let summary = out.join(format!("summary-{i}.json"));
            let child = Command::new(env!("CARGO_BIN_EXE_leakhound"))
                .args(["--quiet", "--format", "json", "--summary"])
                .arg(&summary)
                .args([
                    "registry",
                    host,
                    "--insecure",
                    "--shard",
                    &format!("{i}/{SHARDS}"),
                ])
                .arg("--cache")
                .arg(cache)
                .env("HOME", "/nonexistent")
                .env_remove("DOCKER_CONFIG")
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap();
            (summary, child, 0u64)
        })
        .collect();
    // Poll peak memory while they run (VmHWM is gone once a child exits).
    let readers: Vec<_> = children
        .iter_mut()
        .map(|(_, c, _)| {
            let mut stdout = c.stdout.take().unwrap();
            std::thread::spawn(move || {
                let mut v = Vec::new();
                std::io::Read::read_to_end(&mut stdout, &mut v).unwrap();
                v
            })
        })
        .collect();
    loop {
        let mut running = 0;
        for (_, c, peak) in children.iter_mut() {
            if c.try_wait().unwrap().is_none() {
                running += 1;
                if let Some(k) = vm_hwm(c.id()) {
                    *peak = (*peak).max(k);
                }
            }
        }
        if running == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let wall = start.elapsed();
    let shards = children
        .into_iter()
        .zip(readers)
        .map(|((summary, mut c, peak), r)| {
            let code = c.wait().unwrap().code();
            assert!(matches!(code, Some(0 | 1)), "shard exit {code:?}");
            let s: Value = serde_json::from_slice(&std::fs::read(summary).unwrap()).unwrap();
            let n = |k: &str| s["scanned"][k].as_u64().unwrap_or(0);
            Shard {
                bytes: n("bytes"),
                layers: n("layers"),
                cached: n("cached_layers"),
                images: n("images"),
                peak_kib: peak,
                findings: serde_json::from_slice(&r.join().unwrap()).unwrap(),
            }
        })
        .collect();
    (shards, wall)
}

fn dir_size(dir: &Path) -> (u64, u64) {
    let (mut bytes, mut files) = (0, 0);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let m = e.metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else {
                bytes += m.len();
                files += 1;
            }
        }
    }
    (bytes, files)
}

fn report(name: &str, shards: &[Shard], wall: Duration) {
    let total: u64 = shards.iter().map(|s| s.bytes).sum();
    let mean = total as f64 / shards.len() as f64;
    println!(
        "{name}: {:.2} s wall, {:.1} MB scanned",
        wall.as_secs_f64(),
        total as f64 / 1e6
    );
    for (i, s) in shards.iter().enumerate() {
        let off = if mean > 0.0 {
            (s.bytes as f64 - mean) / mean * 100.0
        } else {
            0.0
        };
        println!(
            "  shard {i}: {:>3} images, {:>3} layers read, {:>3} from cache, {:>8.2} MB ({off:+5.1}% of mean), peak RSS {:.1} MiB",
            s.images,
            s.layers,
            s.cached,
            s.bytes as f64 / 1e6,
            s.peak_kib as f64 / 1024.0
        );
    }
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let nums: Vec<usize> = std::env::args().filter_map(|a| a.parse().ok()).collect();
    let (images, repos, layer_kib) = if bench {
        (
            nums.first().copied().unwrap_or(200),
            nums.get(1).copied().unwrap_or(50),
            nums.get(2).copied().unwrap_or(512),
        )
    } else {
        (16, 8, 16)
    };
    let reg = server::Registry::start(server::Mode::Plain);
    let mut rng = fake::Rng(0xbe9c_45ee);
    let base = layer_tar(&[("etc/os-release", b"NAME=bench\n")]);
    let mut planted = Vec::new();
    let push_start = Instant::now();
    for i in 0..images {
        let r = i % repos;
        let repo = format!("org{}/svc{r}", r % 7);
        let tag = format!("v{}", i / repos);
        let mut tars = vec![base.clone()];
        for l in 0..2 {
            let mut body = text(&mut rng, layer_kib * 1024 / 2);
            let token = fake::fake_github(&mut rng);
            body.extend_from_slice(format!("GITHUB_TOKEN={token}\n").as_bytes());
            body.extend(text(&mut rng, layer_kib * 1024 / 2));
            tars.push(layer_tar(&[(&format!("app/conf{l}.ini"), &body)]));
            planted.push(format!("{}/{repo}:{tag} {l}", reg.host));
        }
        let img = TestImage::new(
            tars,
            json!([{"created_by": "base"}, {"created_by": "COPY conf0"}, {"created_by": "COPY conf1"}]),
            vec![format!("SERVICE=svc{r}")],
        );
        reg.push(&img, &repo, &tag);
    }
    println!(
        "registry: {images} images over {repos} repositories, 2 × {layer_kib} KiB own layers each (pushed in {:.1} s)",
        push_start.elapsed().as_secs_f64()
    );
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let (first, t1) = sweep(&reg.host, &cache, dir.path());
    report("first sweep (empty cache)", &first, t1);
    let (cache_bytes, cache_files) = dir_size(&cache);
    let (second, t2) = sweep(&reg.host, &cache, dir.path());
    report("second sweep (unchanged registry, cached)", &second, t2);
    println!(
        "cache: {cache_files} entries, {:.1} KiB ({:.2} KiB per image); second sweep {:.1}× faster",
        cache_bytes as f64 / 1024.0,
        cache_bytes as f64 / 1024.0 / images as f64,
        t1.as_secs_f64() / t2.as_secs_f64()
    );
    // Every planted token found, in both sweeps.
    for (name, shards) in [("first", &first), ("second", &second)] {
        let mut found: Vec<String> = shards
            .iter()
            .flat_map(|s| &s.findings)
            .filter(|f| {
                f["rule_id"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("github"))
            })
            .map(|f| {
                let layer = f["image"]["layer_index"].as_u64().unwrap() - 1;
                format!("{} {layer}", f["image"]["reference"].as_str().unwrap())
            })
            .collect();
        found.sort();
        found.dedup();
        let mut want = planted.clone();
        want.sort();
        assert_eq!(found, want, "{name} sweep: planted tokens not all found");
    }
    println!(
        "recall: all {} planted tokens found in both sweeps",
        planted.len()
    );
}
