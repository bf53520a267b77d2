//! A sharded, incremental registry sweep measured end to end (not
//! Criterion: one run whose figures are per-shard bytes, wall time, peak
//! memory, requests and cache size).
//!
//! Debian's `docker-registry` on 127.0.0.1 is filled with IMAGES images over
//! REPOS repositories (`org{r%7}/svc{r}`), sized the way a company registry
//! is: every repository has at least one tag and the rest of the images
//! fall on repositories at random (so some have one tag, some eight); each
//! repository builds on one of three shared base layers (8, 30 and 75 MiB of
//! text: alpine-, distroless-with-a-runtime- and debian-slim-sized OS layers,
//! each shared by many images); each image adds an
//! application layer whose size is the repository's own (log-uniform from
//! 1 MiB to 32 MiB, so the largest application is 32 times the smallest),
//! varied by ±30% between its tags, and a small config layer (2 to 32 KiB).
//! A fake GitHub token is planted in a third of the application layers and
//! in the 30 MiB base (reported for every image that ships it).
//!
//! The release binary first plans a byte-balanced split
//! (`--plan-shards 8 --plan-out`, manifests only), then sweeps the registry
//! by that plan as 8 shard processes at once (each with a `--cache`
//! directory of its own, so that a base layer another shard read first does
//! not hide a shard's share of the bytes), each under `/usr/bin/time -v`,
//! twice: the first sweep with an empty cache, the second of the unchanged
//! registry. Reported: the planning pass's time, requests and peak RSS;
//! each shard's scanned bytes against the mean (and what the split by
//! repository count without a plan, and a plain FNV-1a-modulo-8 split, of
//! the same registry would have given, from the generated sizes), wall
//! time of both sweeps and their ratio, every shard's peak RSS, the
//! requests each sweep made (from the registry's access log), the cache's
//! size per image, and that every planted token was found in both sweeps.
//! `LEAKHOUND_BENCH_NO_PLAN=1` sweeps by repository count instead.
//!
//!     cargo bench --bench sweep -- [IMAGES] [REPOS]
//!     LEAKHOUND_BIN=/other/build/leakhound cargo bench --bench sweep   # another build
//!
//! Without `--bench` (as `cargo test --all-targets` runs it) 16 images over
//! 8 repositories with sizes divided by 64 prove it works.

#[path = "../tests/support/fake.rs"]
mod fake;
#[path = "../tests/support/image.rs"]
mod fixture;
#[path = "../tests/support/registry.rs"]
mod server;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fixture::{TestImage, layer_tar};
use serde_json::{Value, json};

const SHARDS: usize = 8;
const KIB: usize = 1024;

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

/// `bytes` of text, with `token` in the middle when there is one.
fn body(rng: &mut fake::Rng, bytes: usize, token: Option<&str>) -> Vec<u8> {
    let mut out = text(rng, bytes / 2);
    if let Some(t) = token {
        out.extend_from_slice(format!("GITHUB_TOKEN={t}\n").as_bytes());
    }
    out.extend(text(rng, bytes / 2));
    out
}

/// A uniform float in [0, 1).
fn unit(rng: &mut fake::Rng) -> f64 {
    (rng.next() >> 11) as f64 / (1u64 << 53) as f64
}

/// FNV-1a, 64 bit (as `source/image/shard.rs`): for the plain modulo split
/// the bench compares against.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

struct Shard {
    bytes: u64,
    layers: u64,
    cached: u64,
    images: u64,
    repositories: BTreeSet<String>,
    peak_kib: Option<u64>,
    /// User and system CPU seconds.
    cpu: Option<f64>,
    findings: Vec<Value>,
}

/// The value of `NAME: VALUE` in a `/usr/bin/time -v` report.
fn time_field<T: std::str::FromStr>(report: &Path, name: &str) -> Option<T> {
    let text = std::fs::read_to_string(report).ok()?;
    let line = text.lines().find(|l| l.trim_start().starts_with(name))?;
    line.rsplit(':').next()?.trim().parse().ok()
}

/// The binary measured: `LEAKHOUND_BIN` (another build, to compare),
/// else this build's.
fn binary() -> PathBuf {
    std::env::var_os("LEAKHOUND_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_leakhound")))
}

/// Runs the 8 shards at once (by `plan` if given); their figures and the
/// wall time.
fn sweep(
    host: &str,
    cache: &Path,
    out: &Path,
    time: Option<&Path>,
    plan: Option<&Path>,
) -> (Vec<Shard>, Duration) {
    let start = Instant::now();
    let children: Vec<_> = (0..SHARDS)
        .map(|i| {
            let summary = out.join(format!("summary-{i}.json"));
            let report = out.join(format!("findings-{i}.json"));
            let rss = out.join(format!("time-{i}.txt"));
            let _ = std::fs::remove_file(&rss);
            let mut cmd = match time {
                Some(t) => {
                    let mut c = Command::new(t);
                    c.arg("-v").arg("-o").arg(&rss);
                    c.arg(binary());
                    c
                }
                None => Command::new(binary()),
            };
            cmd.args(["--quiet", "--format", "json", "--summary"])
                .arg(&summary)
                .arg("--output")
                .arg(&report)
                .args([
                    "registry",
                    host,
                    "--insecure",
                    "--shard",
                    &format!("{i}/{SHARDS}"),
                ])
                .arg("--cache")
                .arg(cache.join(format!("shard-{i}")))
                .args(plan.map(|p| format!("--plan={}", p.display())))
                .env("HOME", "/nonexistent")
                .env_remove("DOCKER_CONFIG")
                .stdout(Stdio::null())
                .stderr(Stdio::inherit());
            (summary, report, rss, cmd.spawn().unwrap())
        })
        .collect();
    let mut done = Vec::new();
    for (summary, report, rss, mut c) in children {
        let code = c.wait().unwrap().code();
        assert!(matches!(code, Some(0 | 1)), "shard exit {code:?}");
        done.push((summary, report, rss));
    }
    let wall = start.elapsed();
    let shards = done
        .into_iter()
        .map(|(summary, report, rss)| {
            let s: Value = serde_json::from_slice(&std::fs::read(summary).unwrap()).unwrap();
            let n = |k: &str| s["scanned"][k].as_u64().unwrap_or(0);
            Shard {
                bytes: n("bytes"),
                layers: n("layers"),
                cached: n("cached_layers"),
                images: n("images"),
                repositories: s["shard"]["repositories"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_str().unwrap().to_string())
                    .collect(),
                peak_kib: time_field(&rss, "Maximum resident set size"),
                cpu: time_field::<f64>(&rss, "User time")
                    .zip(time_field::<f64>(&rss, "System time"))
                    .map(|(u, s)| u + s),
                findings: serde_json::from_slice(&std::fs::read(report).unwrap()).unwrap(),
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

/// Largest deviation from the mean, in percent.
fn spread(values: &[u64]) -> f64 {
    let mean = values.iter().sum::<u64>() as f64 / values.len() as f64;
    values
        .iter()
        .map(|&v| (v as f64 - mean).abs() / mean * 100.0)
        .fold(0.0, f64::max)
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
        let rss = s.peak_kib.map_or("n/a".to_string(), |k| {
            format!("{:.1} MiB", k as f64 / 1024.0)
        });
        let cpu = s.cpu.map_or("n/a".to_string(), |c| format!("{c:.2} s"));
        println!(
            "  shard {i}: {:>2} repos, {:>3} images, {:>3} layers read, {:>3} from cache, {:>7.2} MB ({off:+6.1}% of mean), CPU {cpu}, peak RSS {rss}",
            s.repositories.len(),
            s.images,
            s.layers,
            s.cached,
            s.bytes as f64 / 1e6,
        );
    }
}

/// Requests by kind (from the registry's access log lines `METHOD path`).
fn requests(lines: &[String]) -> BTreeMap<&'static str, usize> {
    let mut out = BTreeMap::new();
    for l in lines {
        let kind = if l.contains("/blobs/") {
            "GET blob"
        } else if l.contains("/manifests/") && l.starts_with("HEAD") {
            "HEAD manifest"
        } else if l.contains("/manifests/") {
            "GET manifest"
        } else if l.contains("/tags/list") {
            "GET tags"
        } else if l.contains("/_catalog") {
            "GET catalog"
        } else {
            "other"
        };
        *out.entry(kind).or_insert(0) += 1;
    }
    out
}

/// One image as generated: what its layers hold, for the expected split.
struct Generated {
    repo: String,
    base: usize,
    own_bytes: u64,
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let nums: Vec<usize> = std::env::args().filter_map(|a| a.parse().ok()).collect();
    let (images, repos, scale) = if bench {
        (
            nums.first().copied().unwrap_or(200),
            nums.get(1).copied().unwrap_or(50),
            1,
        )
    } else {
        (16, 8, 64)
    };
    let time = Path::new("/usr/bin/time");
    let time = time.exists().then_some(time);
    if time.is_none() {
        println!("(no /usr/bin/time: peak RSS not measured; apt-get install time)");
    }
    let reg = server::Registry::start(server::Mode::Plain);
    let mut rng = fake::Rng(0xbe9c_45ee);
    let mut planted = Vec::new();
    // Three shared bases; the 6 MiB one carries a token.
    let base_sizes = [
        8 * KIB * KIB / scale,
        30 * KIB * KIB / scale,
        75 * KIB * KIB / scale,
    ];
    let base_token = fake::fake_github(&mut rng);
    let bases: Vec<(Vec<u8>, Vec<u8>)> = base_sizes
        .iter()
        .enumerate()
        .map(|(b, &size)| {
            let token = (b == 1).then_some(base_token.as_str());
            let tar = layer_tar(&[("usr/share/base/os.conf", &body(&mut rng, size, token))]);
            let gz = fixture::gzip(&tar);
            (tar, gz)
        })
        .collect();
    // Tags per repository: one each, the rest at random.
    let mut tags = vec![1usize; repos];
    for _ in repos..images {
        tags[(rng.next() % repos as u64) as usize] += 1;
    }
    let (lo, hi) = ((KIB * KIB / scale) as f64, (32 * KIB * KIB / scale) as f64);
    let mut generated = Vec::new();
    let push_start = Instant::now();
    for (r, &n) in tags.iter().enumerate() {
        let repo = format!("org{}/svc{r}", r % 7);
        let base = (rng.next() % 3) as usize;
        let typical = (lo.ln() + unit(&mut rng) * (hi.ln() - lo.ln())).exp();
        for t in 0..n {
            let tag = format!("v{t}");
            let app = (typical * (0.7 + 0.6 * unit(&mut rng))) as usize;
            let conf = (2 * KIB + (rng.next() % (30 * KIB as u64)) as usize) / scale;
            let token = rng
                .next()
                .is_multiple_of(3)
                .then(|| fake::fake_github(&mut rng));
            if token.is_some() {
                planted.push(format!("{}/{repo}:{tag} 1", reg.host));
            }
            if base == 1 {
                planted.push(format!("{}/{repo}:{tag} 0", reg.host));
            }
            let app_body = body(&mut rng, app, token.as_deref());
            let conf_body = text(&mut rng, conf);
            generated.push(Generated {
                repo: repo.clone(),
                base,
                own_bytes: (app_body.len() + conf_body.len()) as u64,
            });
            // TestImage::new with the base's gzip made once, not per image.
            let mut img = TestImage::new(
                vec![
                    layer_tar(&[("app/app.bin.conf", &app_body)]),
                    layer_tar(&[("app/config.ini", &conf_body)]),
                ],
                json!([]),
                vec![],
            );
            img.tars.insert(0, bases[base].0.clone());
            img.stored.insert(0, bases[base].1.clone());
            let diff_ids: Vec<String> = img.tars.iter().map(|t| fixture::sha256(t)).collect();
            img.config = serde_json::to_vec(&json!({
                "architecture": "amd64",
                "os": "linux",
                "config": {"Env": [format!("SERVICE=svc{r}")], "Cmd": ["/app/run"]},
                "rootfs": {"type": "layers", "diff_ids": diff_ids},
                "history": [{"created_by": "ADD rootfs /"}, {"created_by": "COPY app /app"},
                            {"created_by": "COPY config.ini /app"}],
            }))
            .unwrap();
            reg.push(&img, &repo, &tag);
        }
    }
    println!(
        "registry: {images} images over {repos} repositories ({}-{} tags each), bases of {:?} KiB, \
         application layers {:.0}-{:.0} KiB; pushed in {:.1} s; {} planted tokens",
        tags.iter().min().unwrap(),
        tags.iter().max().unwrap(),
        base_sizes.map(|b| b / KIB),
        lo / KIB as f64,
        hi / KIB as f64,
        push_start.elapsed().as_secs_f64(),
        planted.len()
    );
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let plan_file = dir.path().join("plan.json");
    let use_plan = std::env::var_os("LEAKHOUND_BENCH_NO_PLAN").is_none();
    let plan_log = reg.requests().len();
    let plan_start = Instant::now();
    if use_plan {
        let rss = dir.path().join("time-plan.txt");
        let mut cmd = match time {
            Some(t) => {
                let mut c = Command::new(t);
                c.arg("-v").arg("-o").arg(&rss).arg(binary());
                c
            }
            None => Command::new(binary()),
        };
        let status = cmd
            .args(["registry", &reg.host, "--insecure", "--plan-shards"])
            .arg(SHARDS.to_string())
            .arg("--plan-out")
            .arg(&plan_file)
            .env("HOME", "/nonexistent")
            .env_remove("DOCKER_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .status()
            .unwrap();
        assert!(status.success(), "planning: {status}");
        let plan_wall = plan_start.elapsed();
        println!(
            "plan: {:.2} s wall, peak RSS {}, requests {:?}",
            plan_wall.as_secs_f64(),
            time_field::<u64>(&rss, "Maximum resident set size").map_or(
                "n/a".to_string(),
                |k| format!("{:.1} MiB", k as f64 / 1024.0)
            ),
            requests(&reg.requests()[plan_log..])
        );
    } else {
        println!("no plan (LEAKHOUND_BENCH_NO_PLAN): shards split by repository count");
    }
    let plan = use_plan.then_some(plan_file.as_path());
    let log_start = reg.requests().len();
    let (first, t1) = sweep(&reg.host, &cache, dir.path(), time, plan);
    let log_1 = reg.requests().len();
    report("first sweep (empty cache)", &first, t1);
    let (cache_bytes, cache_files) = dir_size(&cache);
    // The cached sweep as it was before image entries: layer and config
    // entries only, so every manifest and config is fetched again.
    for i in 0..SHARDS {
        let root = cache.join(format!("shard-{i}")).join("leakhound-cache-v1");
        for key in std::fs::read_dir(root).unwrap() {
            let _ = std::fs::remove_dir_all(key.unwrap().path().join("images"));
        }
    }
    let (layers_only, t_old) = sweep(&reg.host, &cache, dir.path(), time, plan);
    let log_2 = reg.requests().len();
    report(
        "second sweep with layer and config entries only (manifests and configs fetched)",
        &layers_only,
        t_old,
    );
    let (second, t2) = sweep(&reg.host, &cache, dir.path(), time, plan);
    let log_3 = reg.requests().len();
    report("second sweep (unchanged registry, cached)", &second, t2);
    // What 8 processes cost with nothing to sweep (a prefix with no
    // repository): start-up, rules, catalog (no plan: it is for the whole
    // registry).
    let (_, t0) = sweep(
        &format!("{}/none-such", reg.host),
        &cache,
        dir.path(),
        time,
        None,
    );
    println!(
        "floor: 8 shard processes with nothing to sweep: {:.2} s wall",
        t0.as_secs_f64()
    );
    let log = reg.requests();
    for (name, range) in [
        ("first sweep", log_start..log_1),
        ("layer/config entries only", log_1..log_2),
        ("cached sweep", log_2..log_3),
    ] {
        println!("requests, {name}: {:?}", requests(&log[range]));
    }
    println!(
        "cache after the first sweep (8 shard caches): {cache_files} entries, {:.1} KiB ({:.2} KiB per image)",
        cache_bytes as f64 / 1024.0,
        cache_bytes as f64 / 1024.0 / images as f64,
    );
    println!(
        "second sweep {:.1}× faster than the first ({:.1}× with layer and config entries only)",
        t1.as_secs_f64() / t2.as_secs_f64(),
        t1.as_secs_f64() / t_old.as_secs_f64()
    );
    let measured: Vec<u64> = first.iter().map(|s| s.bytes).collect();
    // What the shards' repositories hold, from the generated sizes, and
    // what a plain hash-modulo split would have held.
    let expected = |owner: &dyn Fn(&str) -> usize| {
        let mut bytes = vec![0u64; SHARDS];
        let mut bases_of: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); SHARDS];
        for g in &generated {
            let s = owner(&g.repo);
            bytes[s] += g.own_bytes;
            bases_of[s].insert(g.base);
        }
        for (s, b) in bases_of.iter().enumerate() {
            bytes[s] += b.iter().map(|&i| base_sizes[i] as u64).sum::<u64>();
        }
        bytes
    };
    let rank = expected(&|repo: &str| {
        first
            .iter()
            .position(|s| s.repositories.contains(repo))
            .unwrap()
    });
    let modulo = expected(&|repo: &str| (fnv1a(repo.as_bytes()) % SHARDS as u64) as usize);
    // The split by repository count (no plan): FNV-1a order cut into runs.
    let mut by_hash: Vec<&str> = generated
        .iter()
        .map(|g| g.repo.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    by_hash.sort_by_key(|r| (fnv1a(r.as_bytes()), *r));
    let count_split = expected(&|repo: &str| {
        let rank = by_hash.iter().position(|r| *r == repo).unwrap();
        (0..SHARDS)
            .find(|&i| rank < (i + 1) * by_hash.len() / SHARDS)
            .unwrap()
    });
    println!(
        "balance ({}): largest shard deviation from the mean {:.1}% measured ({:.1}% from the generated sizes); \
         the split by repository count would give {:.1}%, a plain FNV-1a modulo {SHARDS} split {:.1}% (shards of {:?} repositories)",
        if use_plan {
            "by the plan"
        } else {
            "by repository count"
        },
        spread(&measured),
        spread(&rank),
        spread(&count_split),
        spread(&modulo),
        (0..SHARDS)
            .map(|s| {
                generated
                    .iter()
                    .map(|g| &g.repo)
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .filter(|r| fnv1a(r.as_bytes()) % SHARDS as u64 == s as u64)
                    .count()
            })
            .collect::<Vec<_>>()
    );
    // Every image in exactly one shard.
    let covered: usize = first.iter().map(|s| s.images as usize).sum();
    assert_eq!(covered, images, "images over the shards");
    // Every planted token found, in both sweeps.
    for (name, shards) in [
        ("first", &first),
        ("layer/config entries only", &layers_only),
        ("second", &second),
    ] {
        let mut found: Vec<String> = shards
            .iter()
            .flat_map(|s| &s.findings)
            .filter(|f| {
                f["rule_id"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("github"))
            })
            .map(|f| {
                format!(
                    "{} {}",
                    f["image"]["reference"].as_str().unwrap(),
                    f["image"]["layer_index"].as_u64().unwrap()
                )
            })
            .collect();
        found.sort();
        found.dedup();
        let mut want = planted.clone();
        want.sort();
        assert_eq!(found, want, "{name} sweep: planted tokens not all found");
    }
    println!(
        "recall: all {} planted tokens found in every sweep",
        planted.len()
    );
}
