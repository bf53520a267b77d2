//! `leakhound registry HOST --plan-shards N --plan-out FILE`: measure every
//! repository (tag lists and manifests, on `--parallel` threads; no config
//! or layer) and write a byte-balanced shard plan for the shards' `--plan`
//! (`source::image::plan`); and reading a plan for a shard.
//!
//! A repository that could not be measured whole (a tag list or manifest
//! that failed) is planned with the bytes that were measured and named in
//! a warning: planning errors cost balance, never coverage, since every
//! repository the shards see is swept by exactly one of them whatever the
//! plan says.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::cli::{CommonArgs, RegistryArgs};
use crate::cmd::image::{hosts, parallel_map, platform, registry};
use leakhound::report::text::escape_controls;
use leakhound::source::image::plan::{self, Measured, Plan};

pub fn plan(common: &CommonArgs, args: &RegistryArgs, shards: u32) -> Result<u8> {
    let out = args
        .plan_out
        .as_deref()
        .context("--plan-shards needs --plan-out FILE")?;
    let target = args
        .target
        .as_deref()
        .context("--plan-shards needs the registry (HOST[/PREFIX])")?;
    let (host, prefix) = target.split_once('/').unwrap_or((target, ""));
    let keep = |common: &CommonArgs| -> Result<u8> {
        let (p, digest) = read(out, host, prefix, shards)?;
        if !common.quiet {
            eprintln!(
                "leakhound: plan: keeping {} ({digest}, {} repositories, made {})",
                out.display(),
                p.repositories.len(),
                escape_controls(&p.created)
            );
        }
        Ok(0)
    };
    // Pods of one Job plan once: the first takes FILE.lock and plans, the
    // others wait for FILE. The lock saves requests only: were two to plan,
    // the first plan written would still be the one every shard reads.
    let mut lock = None;
    if args.keep_existing_plan {
        let lock_path = out.with_extension("lock");
        let mut told = false;
        loop {
            if out.exists() {
                return keep(common);
            }
            match Lock::take(&lock_path) {
                // Written between the look and the lock: keep it.
                Ok(Some(_)) if out.exists() => return keep(common),
                Ok(Some(l)) => {
                    lock = Some(l);
                    break;
                }
                Ok(None) => {
                    if !common.quiet && !told {
                        eprintln!(
                            "leakhound: plan: another planner holds {}; waiting for {}",
                            lock_path.display(),
                            out.display()
                        );
                        told = true;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(500));
                }
                // No lock to be had (a volume refusing it): plan anyway.
                Err(e) => {
                    tracing::warn!(error = %e, "cannot take the plan lock; planning without it");
                    break;
                }
            }
        }
    }
    let (platform, all) = platform(&args.pull)?;
    let settings = crate::settings(common, Some(Path::new(".")), args.pull.max_file_size)?;
    let registry = registry(
        &args.pull,
        common.timeout,
        &hosts(Some(host), &[]),
        &settings.registries,
        None,
    )?;
    let started = std::time::Instant::now();
    let repos = registry
        .catalog(host, prefix)
        .with_context(|| format!("cannot list the repositories of {host}"))?;
    let listed = parallel_map(&repos, args.pull.parallel, |r| registry.tags(host, r));
    let mut measured: Vec<Measured> = repos
        .iter()
        .map(|name| Measured {
            name: name.clone(),
            tags: 0,
            layers: BTreeMap::new(),
        })
        .collect();
    let mut problems = Vec::new();
    let mut refs = Vec::new();
    for (i, tags) in listed.into_iter().enumerate() {
        match tags {
            Ok(tags) => {
                measured[i].tags = tags.len();
                refs.extend(
                    tags.into_iter()
                        .map(|t| (i, format!("{host}/{}:{t}", repos[i]))),
                );
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    let sizes = parallel_map(&refs, args.pull.parallel, |(_, r)| {
        registry.layer_sizes(r, &platform, all)
    });
    for ((i, _), layers) in refs.iter().zip(sizes) {
        match layers {
            Ok(layers) => measured[*i].layers.extend(layers),
            Err(e) => problems.push(e.to_string()),
        }
    }
    let p = Plan::make(host, prefix, shards, &measured);
    let text = p.to_json();
    let kept = write(out, text.as_bytes(), args.keep_existing_plan)
        .with_context(|| format!("cannot write the plan {}", out.display()))?;
    // Written: waiting planners find it once the lock is gone.
    drop(lock);
    if common.quiet {
        return Ok(0);
    }
    for e in &problems {
        eprintln!(
            "leakhound: warning: plan: {} (planned with the bytes measured)",
            escape_controls(e)
        );
    }
    if kept {
        let (p, digest) = read(out, host, prefix, shards)?;
        eprintln!(
            "leakhound: plan: another planner wrote {} first; keeping it ({digest}, {} repositories)",
            out.display(),
            p.repositories.len()
        );
        return Ok(0);
    }
    let total: u64 = p.shard_bytes.iter().sum();
    let mean = total as f64 / f64::from(shards);
    let worst = p
        .shard_bytes
        .iter()
        .map(|&b| {
            if mean > 0.0 {
                (b as f64 - mean).abs() / mean * 100.0
            } else {
                0.0
            }
        })
        .fold(0.0, f64::max);
    eprintln!(
        "leakhound: plan: {} repositories, {} tags, {:.1} MB of layers over {shards} shards \
         (largest deviation from the mean {worst:.1}%) in {:.1} s; written to {} ({})",
        p.repositories.len(),
        refs.len(),
        total as f64 / 1e6,
        started.elapsed().as_secs_f64(),
        out.display(),
        Plan::digest(text.as_bytes())
    );
    Ok(0)
}

/// An exclusive lock file, its modification time refreshed while held (so
/// a planner that died leaves a lock others see go stale and take over)
/// and removed on drop.
struct Lock {
    path: std::path::PathBuf,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    refresher: Option<std::thread::JoinHandle<()>>,
}

/// A lock file not refreshed for this long belongs to a planner that died.
const STALE: std::time::Duration = std::time::Duration::from_secs(60);
const REFRESH: std::time::Duration = std::time::Duration::from_secs(5);

impl Lock {
    /// The lock, or `None` if another live planner holds it (a stale one is
    /// removed, to be taken on the next try).
    fn take(path: &Path) -> std::io::Result<Option<Lock>> {
        use std::sync::atomic::Ordering::Relaxed;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let age = std::fs::metadata(path)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| std::time::SystemTime::now().duration_since(t).ok());
                if age.is_some_and(|a| a > STALE) {
                    let _ = std::fs::remove_file(path);
                }
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        let refresher = std::thread::spawn(move || {
            let mut since = std::time::Instant::now();
            while !stop2.load(Relaxed) {
                std::thread::sleep(std::time::Duration::from_millis(200));
                if since.elapsed() >= REFRESH {
                    let _ = file.set_modified(std::time::SystemTime::now());
                    since = std::time::Instant::now();
                }
            }
        });
        Ok(Some(Lock {
            path: path.to_path_buf(),
            stop,
            refresher: Some(refresher),
        }))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.refresher.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Writes `data` to `path` whole: a temporary file beside it, then a
/// rename, or with `keep` one that fails if `path` exists (another planner
/// won). Returns true if an existing plan was kept.
fn write(path: &Path, data: &[u8], keep: bool) -> std::io::Result<bool> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    if keep {
        match tmp.persist_noclobber(path) {
            Ok(_) => Ok(false),
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(true),
            Err(e) => Err(e.error),
        }
    } else {
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(false)
    }
}

/// The plan in `path` (bounded read), checked to be for `host`, `prefix`
/// (when a registry is given) and `shards`; and its digest.
pub fn read(path: &Path, host: &str, prefix: &str, shards: u32) -> Result<(Plan, String)> {
    let f = std::fs::File::open(path)
        .with_context(|| format!("cannot read the shard plan {}", path.display()))?;
    let mut data = Vec::new();
    f.take(plan::MAX_PLAN + 1)
        .read_to_end(&mut data)
        .with_context(|| format!("cannot read the shard plan {}", path.display()))?;
    if data.len() as u64 > plan::MAX_PLAN {
        bail!(
            "the shard plan {} is larger than {} bytes",
            path.display(),
            plan::MAX_PLAN
        );
    }
    let p = Plan::parse(&data)
        .map_err(|e| anyhow::anyhow!("the shard plan {}: {e}", path.display()))?;
    if !host.is_empty() && (p.registry != host || p.prefix != prefix) {
        bail!(
            "the shard plan {} is for {}{}{}, not {host}{}{prefix}",
            path.display(),
            escape_controls(&p.registry),
            if p.prefix.is_empty() { "" } else { "/" },
            escape_controls(&p.prefix),
            if prefix.is_empty() { "" } else { "/" },
        );
    }
    if p.shards != shards {
        bail!(
            "the shard plan {} splits into {} shards, not {shards}",
            path.display(),
            p.shards
        );
    }
    let digest = Plan::digest(&data);
    Ok((p, digest))
}
