//! `leakhound image` and `leakhound registry`: turn the command line into
//! image jobs (archives, layouts, registry references, a registry sweep),
//! scan them, report. An image that cannot be resolved is reported and the
//! rest are scanned; any such failure makes the exit code 2.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};

use crate::cli::{CommonArgs, ImageArgs, PullArgs, RegistryArgs};
use leakhound::config::RegistryConfig;
use leakhound::metrics::Metrics;
use leakhound::notice::{Notice, NoticeKind};
use leakhound::pipeline::{self, image::ImageJob, image::ImageScanOptions};
use leakhound::report::summary::ShardInfo;
use leakhound::source::image::cache::{self, Cache};
use leakhound::source::image::local::LocalStore;
use leakhound::source::image::registry::{self as reg, Credentials, Registry, RegistryOptions};
use leakhound::source::image::shard::{self, Shard};
use leakhound::source::image::{ImageError, LayerStore, Platform};

/// Images to scan and images that could not be resolved.
#[derive(Default)]
struct Jobs {
    jobs: Vec<ImageJob>,
    problems: Vec<Notice>,
}

impl Jobs {
    fn problem(&mut self, name: &str, e: &ImageError) {
        self.problems.push(problem(name, e));
    }
}

fn problem(name: &str, e: &ImageError) -> Notice {
    let msg = e.to_string();
    // The error names the image first; the skip line names it already.
    let reason = msg
        .strip_prefix(&format!("{name}: "))
        .unwrap_or(&msg)
        .to_string();
    Notice {
        path: name.to_string(),
        reason,
        kind: if e.is_timeout() {
            NoticeKind::Timeout
        } else {
            NoticeKind::Unreadable
        },
    }
}

pub fn image(common: &CommonArgs, args: &ImageArgs) -> Result<u8> {
    if args.refs.is_empty() && args.archive.is_empty() && args.oci_layout.is_empty() {
        bail!("name an image: REF, --archive FILE or --oci-layout DIR");
    }
    // `--max-file-size` over `max_file_size` in the config file.
    let settings = crate::settings(
        common,
        Some(std::path::Path::new(".")),
        args.pull.max_file_size,
    )?;
    let (scanner, max_file_size) = (settings.scanner, settings.max_file_size);
    let (platform, all) = platform(&args.pull)?;
    let mut jobs = Jobs::default();
    let local = args
        .archive
        .iter()
        .map(|p| (p, false))
        .chain(args.oci_layout.iter().map(|p| (p, true)));
    for (path, dir) in local {
        let name = path.display().to_string();
        if !dir && path.is_dir() {
            jobs.problems.push(Notice::new(
                NoticeKind::Unreadable,
                &name,
                "is a directory: an OCI layout directory is read with --oci-layout",
            ));
            continue;
        }
        match LocalStore::open(path, dir).and_then(|s| {
            let images = s.images(&platform, all)?;
            Ok((Arc::new(s), images))
        }) {
            Ok((store, images)) => {
                let store: Arc<dyn LayerStore> = store;
                for image in images {
                    jobs.jobs.push(ImageJob {
                        image,
                        store: store.clone(),
                    });
                }
            }
            Err(e) => jobs.problem(&name, &e),
        }
    }
    if !args.refs.is_empty() {
        let hosts = hosts(None, &args.refs);
        let registry = Arc::new(registry(
            &args.pull,
            common.timeout,
            &hosts,
            &settings.registries,
            None,
        )?);
        resolve_all(
            &registry,
            None,
            &args.refs,
            &platform,
            all,
            args.pull.parallel,
            &mut jobs,
        );
    }
    let opts = ImageScanOptions {
        max_file_size,
        parallel_layers: args.pull.parallel.max(1),
        ..ImageScanOptions::default()
    };
    scan(common, &scanner, jobs, opts, None)
}

pub fn registry_sweep(common: &CommonArgs, args: &RegistryArgs) -> Result<u8> {
    if let Some(n) = args.plan_shards {
        return crate::cmd::plan::plan(common, args, n);
    }
    // `--max-file-size` over `max_file_size` in the config file.
    let settings = crate::settings(
        common,
        Some(std::path::Path::new(".")),
        args.pull.max_file_size,
    )?;
    let (scanner, max_file_size) = (settings.scanner, settings.max_file_size);
    let (platform, all) = platform(&args.pull)?;
    let cache = match &args.cache {
        Some(dir) => {
            let (cache, notes) = Cache::open(dir, &settings.results_key)
                .with_context(|| format!("cannot open the cache {}", dir.display()))?;
            if !common.quiet {
                for n in notes.iter().take(1) {
                    eprintln!("leakhound: {n}");
                }
            }
            Some(Arc::new(cache))
        }
        None => None,
    };
    let opts = ImageScanOptions {
        max_file_size,
        parallel_layers: args.pull.parallel.max(1),
        cache,
        new_only: args.new_only,
    };
    let mut jobs = Jobs::default();
    let mut refs = Vec::new();
    if let Some(file) = &args.images_from {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the image list {}", file.display()))?;
        refs.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        );
    }
    let shard = shard(args)?;
    let (host, prefix) = match &args.target {
        Some(target) => target.split_once('/').unwrap_or((target, "")),
        None => ("", ""),
    };
    // Read before the catalog: a plan that does not fit is an error of the
    // run, found before any request.
    let plan = match (&args.plan, shard) {
        (Some(path), Some(s)) => Some(crate::cmd::plan::read(path, host, prefix, s.count)?),
        (Some(_), None) => bail!("--plan needs --shard I/N or --shard-from-env"),
        (None, _) => None,
    };
    let (metrics, _server) =
        crate::cmd::serve_metrics(common, args.metrics_addr, Metrics::for_registry)?;
    let registry = Arc::new(registry(
        &args.pull,
        common.timeout,
        &hosts(args.target.is_some().then_some(host), &refs),
        &settings.registries,
        metrics.clone(),
    )?);
    let mut repos = Vec::new();
    if args.target.is_some() {
        // Without the catalog there is nothing to sweep: an error of the run.
        repos = registry
            .catalog(host, prefix)
            .map_err(|e| {
                let hint = if e.is_timeout() { " (--timeout)" } else { "" };
                anyhow::anyhow!("{e}{hint}")
            })
            .with_context(|| format!("cannot list the repositories of {host}"))?;
    }
    let assignment = shard.map(|s| {
        // Every shard sees the same catalog and list and splits them alike
        // (or reads the same plan); tags are listed only for this shard's
        // repositories.
        let universe = repos
            .iter()
            .map(String::as_str)
            .chain(refs.iter().map(|r| shard::repository_of(r)));
        let a = match &plan {
            Some((p, _)) => p.assign(s, universe),
            None => s.assign(universe),
        };
        refs.retain(|r| a.takes(shard::repository_of(r)));
        repos.retain(|r| a.takes(r));
        (s, a)
    });
    // Tag lists on `--parallel` threads, kept in catalog order.
    let listed = parallel_map(&repos, args.pull.parallel, |repo| registry.tags(host, repo));
    for (repo, tags) in repos.iter().zip(listed) {
        match tags {
            Ok(tags) => refs.extend(tags.into_iter().map(|t| format!("{host}/{repo}:{t}"))),
            Err(e) => jobs.problem(&format!("{host}/{repo}"), &e),
        }
    }
    tracing::info!(images = refs.len(), "registry sweep");
    if let Some((s, a)) = assignment {
        if !common.quiet {
            eprintln!(
                "leakhound: shard {}/{}: {} of {} repositories, {} images{}",
                s.index,
                s.count,
                a.repositories.len(),
                a.catalog_size,
                refs.len(),
                match &plan {
                    Some((p, digest)) => format!(
                        " (by the plan {digest}; {} not in it)",
                        a.repositories.iter().filter(|r| !p.lists(r)).count()
                    ),
                    None => String::new(),
                }
            );
        }
        let unplanned = plan.as_ref().map(|(p, _)| {
            a.repositories
                .iter()
                .filter(|r| !p.lists(r))
                .cloned()
                .collect::<Vec<_>>()
        });
        let _ = crate::run_start().shard.set(ShardInfo {
            index: s.index,
            count: s.count,
            repositories: a.repositories.into_iter().collect(),
            images: refs.clone(),
            from: a.from,
            until: a.until,
            catalog_repositories: a.catalog_size,
            catalog_digest: a.catalog_digest,
            plan: plan.as_ref().map(|(_, digest)| digest.clone()),
            unplanned,
        });
    }
    let cached = resolve_all(
        &registry,
        opts.cache.as_deref(),
        &refs,
        &platform,
        all,
        args.pull.parallel,
        &mut jobs,
    );
    if opts.cache.is_some() && !common.quiet {
        eprintln!(
            "leakhound: cache: {cached} of {} reference(s) resolved from the cache (no manifest or config fetched)",
            refs.len()
        );
    }
    if let Some(m) = &metrics {
        m.cache_hits("manifest", cached as u64);
    }
    let code = scan(common, &scanner, jobs, opts, metrics.as_deref())?;
    if let (Some(linger), Some(server)) = (args.metrics_linger, &_server)
        && !linger.is_zero()
    {
        if !common.quiet {
            eprintln!(
                "leakhound: sweep done; metrics on http://{}/metrics for {} s more",
                server.addr,
                linger.as_secs_f64()
            );
        }
        std::thread::sleep(linger);
    }
    Ok(code)
}

/// `--shard I/N`, or `--shard-from-env --shards N` with the index from
/// `JOB_COMPLETION_INDEX`.
fn shard(args: &RegistryArgs) -> Result<Option<Shard>> {
    if let Some(s) = args.shard {
        return Ok(Some(s));
    }
    let (true, Some(count)) = (args.shard_from_env, args.shards) else {
        return Ok(None);
    };
    let index = std::env::var("JOB_COMPLETION_INDEX").context(
        "--shard-from-env: JOB_COMPLETION_INDEX is not set (a Kubernetes Indexed Job sets it)",
    )?;
    let index: u32 = index.trim().parse().with_context(|| {
        format!("--shard-from-env: JOB_COMPLETION_INDEX `{index}` is not a number")
    })?;
    Shard::new(index, count)
        .map(Some)
        .map_err(|e| anyhow::anyhow!("--shard-from-env: {e}"))
}

fn scan(
    common: &CommonArgs,
    scanner: &leakhound::Scanner,
    jobs: Jobs,
    opts: ImageScanOptions,
    metrics: Option<&Metrics>,
) -> Result<u8> {
    let on_skip = crate::skip_printer(common, scanner);
    let counters = pipeline::Counters::default();
    let outcome = crate::cmd::progress::while_running(
        common,
        &counters,
        None,
        &format!("files in layers of {} image(s)", jobs.jobs.len()),
        || {
            pipeline::image::scan_images(
                scanner,
                &jobs.jobs,
                jobs.problems,
                &opts,
                &on_skip,
                &counters,
            )
        },
    );
    let c = outcome.cache;
    if opts.cache.is_some() && !common.quiet {
        eprintln!(
            "leakhound: cache: {} layer(s) and {} config(s) from the cache, {} entries recorded",
            c.layer_hits, c.config_hits, c.written
        );
        if c.write_errors > 0 {
            eprintln!(
                "leakhound: warning: {} cache entries could not be written (-v / RUST_LOG=warn says why)",
                c.write_errors
            );
        }
    }
    if let Some(m) = metrics {
        m.images_scanned(outcome.images);
        m.cache_hits("layer", c.layer_hits);
        m.cache_hits("config", c.config_hits);
        for n in outcome.skipped.iter().filter(|n| n.is_error()) {
            m.error(match n.kind {
                NoticeKind::Timeout => "timeout",
                NoticeKind::Internal => "internal",
                _ => "unreadable",
            });
        }
    }
    // An image or layer that could not be read leaves the scan incomplete.
    crate::cmd::report::report_outcome_with(
        common,
        scanner,
        outcome,
        false,
        None,
        crate::Units::LayerFiles,
        &|findings| {
            if let Some(m) = metrics {
                for f in findings {
                    m.finding(&f.rule_id, f.severity.as_str(), None);
                }
            }
        },
    )
}

/// Resolves references on `parallel` threads (manifest and config
/// downloads, or with a cache a HEAD request for a tag whose digest it
/// knows), keeping the order they were given in. Returns how many came
/// from the cache.
fn resolve_all(
    registry: &Arc<Registry>,
    cache: Option<&Cache>,
    refs: &[String],
    platform: &Platform,
    all: bool,
    parallel: usize,
    jobs: &mut Jobs,
) -> usize {
    let results = parallel_map(refs, parallel, |r| {
        cache::resolve(registry, cache, r, platform, all)
    });
    let store: Arc<dyn LayerStore> = registry.clone();
    let mut cached = 0;
    for (r, res) in refs.iter().zip(results) {
        match res {
            Ok(resolved) => {
                cached += usize::from(resolved.from_cache);
                jobs.jobs
                    .extend(resolved.images.into_iter().map(|image| ImageJob {
                        image,
                        store: store.clone(),
                    }))
            }
            Err(e) => jobs.problem(r, &e),
        }
    }
    cached
}

/// `f` over `items` on `parallel` threads (registry requests: the answers
/// are awaited, not computed), the results in the items' order.
pub(crate) fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    parallel: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let results: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..parallel.clamp(1, items.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let r = f(item);
                    *results[i].lock().expect("parallel_map lock") = Some(r);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|m| {
            m.into_inner()
                .expect("parallel_map lock")
                .expect("every item is mapped once the threads are joined")
        })
        .collect()
}

pub(crate) fn platform(pull: &PullArgs) -> Result<(Platform, bool)> {
    let p = match &pull.platform {
        Some(s) => Platform::parse(s).map_err(anyhow::Error::msg)?,
        None => Platform::host(),
    };
    Ok((p, pull.all_platforms))
}

/// The registry hosts a command line names: the swept host and the hosts
/// of the image references (as `host_key` spells them, each once).
pub(crate) fn hosts(target: Option<&str>, refs: &[String]) -> Vec<String> {
    let mut out: Vec<String> = target.map(reg::host_key).into_iter().collect();
    for r in refs {
        if let Ok(h) = reg::reference_host(r)
            && !out.contains(&h)
        {
            out.push(h);
        }
    }
    out
}

/// Registry options from flags, the environment and the config file's
/// `[registries."host"]` tables. Explicit credentials (`--username` with
/// `--password-stdin`, or `LEAKHOUND_REGISTRY_USERNAME` and
/// `LEAKHOUND_REGISTRY_PASSWORD`) are for one host: the one the command
/// line names (`hosts`), or `--credentials-for`; they win over the config
/// file's and docker's for that host, and no other host sees them.
pub(crate) fn registry(
    pull: &PullArgs,
    timeout: std::time::Duration,
    hosts: &[String],
    tables: &BTreeMap<String, RegistryConfig>,
    metrics: Option<Arc<Metrics>>,
) -> Result<Registry> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let (explicit, named) = match (&pull.username, env("LEAKHOUND_REGISTRY_USERNAME")) {
        (Some(user), _) => {
            let password = if pull.password_stdin {
                let mut line = String::new();
                io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .context("reading the password from standard input")?;
                line.trim_end_matches(['\r', '\n']).to_string()
            } else {
                env("LEAKHOUND_REGISTRY_PASSWORD")
                    .context("--username needs --password-stdin or LEAKHOUND_REGISTRY_PASSWORD")?
            };
            let c = Credentials {
                username: user.clone(),
                password,
            };
            (Some(c), "--username")
        }
        (None, Some(user)) => {
            let c = Credentials {
                username: user,
                password: env("LEAKHOUND_REGISTRY_PASSWORD").context(
                    "LEAKHOUND_REGISTRY_USERNAME is set but LEAKHOUND_REGISTRY_PASSWORD is not",
                )?,
            };
            (Some(c), "LEAKHOUND_REGISTRY_USERNAME")
        }
        (None, None) => (None, ""),
    };
    let mut credentials = HashMap::new();
    let mut insecure_hosts = pull.insecure_registry.clone();
    for (host, t) in tables {
        let key = reg::host_key(host);
        if t.insecure == Some(true) {
            insecure_hosts.push(key.clone());
        }
        // A table's password is looked up only for a host this run talks to.
        let (Some(user), true) = (&t.username, hosts.contains(&key)) else {
            continue;
        };
        let var = t.password_env.as_deref().with_context(|| {
            format!("config file: [registries.\"{host}\"] has a username but no password_env")
        })?;
        let password = env(var).with_context(|| {
            format!("config file: [registries.\"{host}\"]: the environment variable {var} (password_env) is not set")
        })?;
        credentials.insert(
            key,
            Credentials {
                username: user.clone(),
                password,
            },
        );
    }
    match (explicit, &pull.credentials_for) {
        (Some(c), Some(host)) => {
            credentials.insert(reg::host_key(host), c);
        }
        (Some(c), None) => match hosts {
            [one] => {
                credentials.insert(one.clone(), c);
            }
            [] => bail!(
                "{named}: the command line names no registry to send the credentials to; \
                 name it with --credentials-for HOST"
            ),
            many => bail!(
                "{named}: the command line names {} registries ({}); name the one the \
                 credentials are for with --credentials-for HOST (others use docker's config \
                 or the config file's [registries] tables)",
                many.len(),
                many.join(", ")
            ),
        },
        (None, Some(_)) => {
            bail!("--credentials-for needs --username (or LEAKHOUND_REGISTRY_USERNAME)")
        }
        (None, None) => {}
    }
    let docker_config = env("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".docker")));
    Ok(Registry::new(RegistryOptions {
        insecure: pull.insecure,
        insecure_hosts,
        ca_certs: pull.ca_cert.clone(),
        credentials,
        docker_config,
        timeout: Some(timeout),
        max_requests_per_second: pull.max_requests_per_second,
        metrics,
    })?)
}
