//! Command-line definitions (clap) only; no behaviour here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use leakhound::report::Format;
use leakhound::rules::Confidence;
use leakhound::source::image::shard::Shard;

#[derive(Debug, Parser)]
#[command(
    name = "leakhound",
    version,
    about = "Find leaked secrets in files, Git history, container images and logs.",
    after_help = "Exit codes: 0 nothing found, 1 findings, 2 the scan could not be completed as asked."
)]
pub struct Cli {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand takes.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Output format [default: text; jsonl for `logs`].
    #[arg(long, global = true, value_parser = format_parser())]
    pub format: Option<Format>,
    /// Write the report to FILE instead of standard output.
    #[arg(long, short = 'o', global = true, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Include raw secret values in the report (they are masked by default).
    #[arg(long, global = true)]
    pub show_secrets: bool,
    /// Extra rule file or directory of *.toml rule files (repeatable).
    #[arg(long = "rules", global = true, value_name = "PATH")]
    pub rules: Vec<PathBuf>,
    /// Worker threads (default: one per core).
    #[arg(long, global = true, value_name = "N")]
    pub threads: Option<usize>,
    /// Report only findings of at least this confidence [default: medium,
    /// or the config file's `min_confidence`].
    #[arg(long, global = true, value_enum)]
    pub min_confidence: Option<ConfidenceArg>,
    /// No summary and no warnings on standard error; only the report.
    #[arg(long, short = 'q', global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Also tell what was skipped by policy (too large, allowlisted) and why.
    #[arg(long, short = 'v', global = true)]
    pub verbose: bool,
    /// Settings file [default: .leakhound.toml in the scan root, if any].
    #[arg(long, global = true, value_name = "FILE", conflicts_with = "no_config")]
    pub config: Option<PathBuf>,
    /// Do not read .leakhound.toml.
    #[arg(long, global = true)]
    pub no_config: bool,
    /// Import a gitleaks/betterleaks TOML config: its rules and allowlists.
    #[arg(long, global = true, value_name = "FILE")]
    pub gitleaks_config: Option<PathBuf>,
    /// Report only findings whose fingerprint is not in this baseline file.
    #[arg(long, global = true, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Write every finding's fingerprint to FILE (reviewed findings that
    /// later runs with --baseline FILE stay quiet about); exits 0.
    #[arg(long, global = true, value_name = "FILE")]
    pub write_baseline: Option<PathBuf>,
    /// Do not look inside encodings (JSON escapes, base64, ...).
    #[arg(long, global = true)]
    pub no_decode: bool,
    /// `scan` and `git`: decoding steps followed into encoded content
    /// (Kubernetes Secrets, base64, hex, percent, escapes, gzip); 0 turns
    /// decoding off.
    #[arg(long, global = true, value_name = "N", default_value_t = 3)]
    pub decode_depth: usize,
    /// `scan` and `git`: decoded bytes produced per file at most (bounds
    /// nested encodings and compression bombs).
    #[arg(long, global = true, value_name = "SIZE", default_value = "8MiB", value_parser = parse_size)]
    pub max_decoded_size: u64,
    /// Write the run summary as JSON to FILE (`-`: standard error): counts,
    /// skipped inputs, errors and whether the scan is complete.
    #[arg(long, global = true, value_name = "FILE")]
    pub summary: Option<PathBuf>,
    /// Network deadline in seconds (`git URL`, `image`, `registry`): to
    /// connect; for a registry's token, manifest, config, catalog or tags
    /// answer to arrive whole; for a Git or layer transfer to send anything
    /// (a layer must also average 1 KiB/s over each such wait). What stalls
    /// is abandoned, named, and the exit code is 2.
    #[arg(long, global = true, value_name = "SECONDS", default_value = "30", value_parser = parse_timeout)]
    pub timeout: std::time::Duration,
    /// SARIF `automationDetails.id` category (default: the subcommand), to
    /// tell several uploads of one commit apart.
    #[arg(long, global = true, value_name = "NAME")]
    pub sarif_category: Option<String>,
    /// Results a SARIF run holds at most (GitHub refuses more than 25,000);
    /// the most severe are kept.
    #[arg(long, global = true, value_name = "N", default_value_t = 25_000)]
    pub sarif_max_results: usize,
}

impl Command {
    /// The subcommand's name, as typed.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Scan(_) => "scan",
            Command::Logs(_) => "logs",
            Command::Git(_) => "git",
            Command::Image(_) => "image",
            Command::Registry(_) => "registry",
            Command::Cluster(_) => "cluster",
            Command::Merge(_) => "merge",
            Command::Rules { .. } => "rules",
            Command::Init { .. } => "init",
            Command::Completions { .. } => "completions",
            Command::Man { .. } => "man",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ConfidenceArg {
    Low,
    Medium,
    High,
}

/// `--format`'s values (the library's `Format` knows no clap).
fn format_parser() -> impl clap::builder::TypedValueParser<Value = Format> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(["text", "json", "jsonl", "sarif"]).map(|s| {
        match s.as_str() {
            "json" => Format::Json,
            "jsonl" => Format::Jsonl,
            "sarif" => Format::Sarif,
            _ => Format::Text,
        }
    })
}

impl From<ConfidenceArg> for Confidence {
    fn from(c: ConfidenceArg) -> Self {
        match c {
            ConfidenceArg::Low => Confidence::Low,
            ConfidenceArg::Medium => Confidence::Medium,
            ConfidenceArg::High => Confidence::High,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scan files and directories (`-` reads standard input).
    Scan(ScanArgs),
    /// Scan log streams line by line (standard input when no FILE), reporting
    /// each secret as soon as its line has arrived.
    Logs(LogsArgs),
    /// Scan a Git repository's history: every blob of every ref, each once,
    /// attributed to the commit that introduced it.
    Git(GitArgs),
    /// Scan container images: every layer (files a later layer deleted too)
    /// and the image config (Env, Labels, Cmd, Entrypoint, history).
    Image(ImageArgs),
    /// Scan every tagged image of a registry (or under HOST/PREFIX), or the
    /// images listed in a file; layers shared between images are read once.
    Registry(RegistryArgs),
    /// Audit a live Kubernetes cluster through its API (read-only): Secrets
    /// (typed Secrets and Helm releases decoded), ConfigMaps, and the pod
    /// templates of Pods, Deployments, StatefulSets, DaemonSets, Jobs and
    /// CronJobs (literal env values, args, command).
    Cluster(ClusterArgs),
    /// Merge reports (JSON, JSONL, SARIF) and run summaries of shards or
    /// runs into one report in any format: findings deduplicated, exit code
    /// as one run would have given (2 if any part was incomplete).
    Merge(MergeArgs),
    /// List or check rules.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Write a commented .leakhound.toml (in DIR, default the current directory).
    Init {
        /// Directory to write .leakhound.toml in.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff) to standard output, or with --dir write
    /// leakhound.1 and one page per subcommand (leakhound-scan.1, …) there.
    Man {
        /// Directory to write every page into.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Files or directories to scan; `-` is standard input.
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,
    /// Also scan files that .gitignore, .ignore and git excludes leave out.
    #[arg(long)]
    pub no_ignore: bool,
    /// Skip (and report) files larger than this: bytes, or with a suffix
    /// K, M, G (powers of 1024; KiB/MiB/GiB also accepted) [default: 100MiB].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_file_size: Option<u64>,
    /// Exit 2 also when a limit left something out on purpose (a file
    /// over --max-file-size, an archive entry the bomb guard refused, a
    /// decoding limit); a file that could not be read always gives exit 2.
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Args)]
pub struct GitArgs {
    /// Repository path (work tree, bare or mirror) or URL to clone.
    #[arg(default_value = ".")]
    pub repo: String,
    /// Only this ref's history.
    #[arg(long, value_name = "REF")]
    pub branch: Option<String>,
    /// Only content introduced by commits not reachable from REV (a PR gate).
    #[arg(long, value_name = "REV", conflicts_with_all = ["range", "staged", "uncommitted"])]
    pub since_commit: Option<String>,
    /// Only content introduced by commits in A..B.
    #[arg(long, value_name = "A..B", conflicts_with_all = ["staged", "uncommitted", "branch"])]
    pub range: Option<String>,
    /// Only what is staged (the index against HEAD): for pre-commit hooks.
    #[arg(long, conflicts_with = "uncommitted")]
    pub staged: bool,
    /// Only work-tree changes against HEAD (modified and new files).
    #[arg(long)]
    pub uncommitted: bool,
    /// Also scan unreachable (dangling) blobs left by rebases and resets.
    #[arg(long)]
    pub all_objects: bool,
    /// Skip (and report) blobs larger than this [default: 100MiB].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_file_size: Option<u64>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Log files to scan in turn; standard input when none (or `-`).
    pub files: Vec<PathBuf>,
    /// Keep reading a file as it grows (like `tail -F`): follows truncation
    /// and rotation by rename (the old file read to its end, then the new).
    #[arg(long)]
    pub follow: bool,
    /// Longest line scanned whole; longer lines are scanned in overlapping
    /// windows, never buffered without bound.
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = parse_size)]
    pub max_line: u64,
    /// Pass the stream through to standard output with every secret replaced
    /// by a mask; findings then go to standard error (or --output).
    #[arg(long)]
    pub redact: bool,
    /// The mask --redact writes instead of `[REDACTED:rule-id]`.
    #[arg(long, value_name = "STRING", requires = "redact")]
    pub mask: Option<String>,
    /// Report every occurrence of a secret, not only the first.
    #[arg(long)]
    pub report_repeats: bool,
    /// Node agent: follow every container log under the kubelet's pods
    /// directory (DIR/<namespace>_<pod>_<uid>/<container>/<N>.log; CRI or
    /// Docker json-file records) through rotations, new and deleted pods,
    /// until SIGTERM [default DIR: /var/log/pods].
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = "/var/log/pods",
          conflicts_with_all = ["files", "follow", "redact"])]
    pub pods_dir: Option<PathBuf>,
    /// With --pods-dir: do not follow this pod's logs (NAMESPACE/POD;
    /// repeatable), e.g. the agent's own, which holds its findings.
    #[arg(long, value_name = "NAMESPACE/POD", requires = "pods_dir")]
    pub exclude_pod: Vec<String>,
    /// With --pods-dir: keep each log's position in FILE (written
    /// atomically every --state-interval and on shutdown); a restarted
    /// agent resumes there, rotated files included.
    #[arg(long, value_name = "FILE", requires = "pods_dir")]
    pub state: Option<PathBuf>,
    /// Seconds between two writes of the --state file.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = parse_timeout)]
    pub state_interval: std::time::Duration,
    /// Seconds between two full listings of --pods-dir (new pods are also
    /// found at once through file events).
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = parse_timeout)]
    pub rescan_interval: std::time::Duration,
    /// Serve Prometheus metrics on HOST:PORT (`/metrics`) and a liveness
    /// probe (`/healthz`) while the scan runs.
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_addr: Option<std::net::SocketAddr>,
}

#[derive(Debug, Args)]
pub struct ImageArgs {
    /// Image references to pull from a registry (`host/repo:tag`,
    /// `host/repo@sha256:…`).
    pub refs: Vec<String>,
    /// A `docker save` archive or an OCI layout tarball (repeatable).
    #[arg(long, value_name = "FILE")]
    pub archive: Vec<PathBuf>,
    /// An OCI layout directory (repeatable).
    #[arg(long, value_name = "DIR")]
    pub oci_layout: Vec<PathBuf>,
    #[command(flatten)]
    pub pull: PullArgs,
}

#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// Registry host (with port), optionally with a repository prefix:
    /// `registry.example.com:5000/team`.
    #[arg(required_unless_present = "images_from")]
    pub target: Option<String>,
    /// Scan the image references listed in FILE (one per line, `#`
    /// comments) instead of listing the registry's catalog.
    #[arg(long, value_name = "FILE")]
    pub images_from: Option<PathBuf>,
    /// Sweep only the I-th of N shards (I counted from 0): the catalog's
    /// repositories, ordered by a stable hash of their path, are cut into N
    /// runs that differ by one repository at most, so N processes given 0/N
    /// to N-1/N that see the same catalog cover it once between them, each
    /// repository (and image) in one shard.
    #[arg(long, value_name = "I/N", value_parser = Shard::parse, conflicts_with = "shard_from_env")]
    pub shard: Option<Shard>,
    /// Take the shard index from JOB_COMPLETION_INDEX (a Kubernetes Indexed
    /// Job's pods have it), with --shards N.
    #[arg(long, requires = "shards")]
    pub shard_from_env: bool,
    /// How many shards --shard-from-env splits the sweep into.
    #[arg(long, value_name = "N", requires = "shard_from_env")]
    pub shards: Option<u32>,
    /// With --shard or --shard-from-env: split by the shard plan in FILE
    /// (written by --plan-shards) instead of by repository count. The plan
    /// gives each repository it lists a shard; a repository it does not
    /// list (pushed after planning) goes to shard FNV-1a(path) mod N, so
    /// shards reading the same plan never overlap or miss a repository.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// Plan a byte-balanced split into N shards instead of sweeping: list
    /// every repository's tags and fetch their manifests (no config or
    /// layer), size each repository by its distinct layers and deal them
    /// out largest first to the least loaded shard; write the plan to
    /// --plan-out for the shards' --plan.
    #[arg(
        long,
        value_name = "N",
        requires = "plan_out",
        conflicts_with_all = ["shard", "shard_from_env", "plan", "images_from", "cache"],
        value_parser = clap::value_parser!(u32).range(1..=100_000)
    )]
    pub plan_shards: Option<u32>,
    /// Where --plan-shards writes the plan (written whole, by rename).
    #[arg(long, value_name = "FILE", requires = "plan_shards")]
    pub plan_out: Option<PathBuf>,
    /// With --plan-out: if FILE exists already (written by another pod of
    /// the same Job), keep it, once checked to be a plan for this registry,
    /// prefix and shard count. Planners started together take turns by a
    /// lock file beside FILE: the first plans, the others wait and keep its
    /// plan (a lock not refreshed for a minute is taken over).
    #[arg(long, requires = "plan_out")]
    pub keep_existing_plan: bool,
    /// Incremental sweeps: record in DIR what each layer and image config
    /// held (by digest, with the rule pack and the settings that change
    /// results) and what each manifest resolved to, and read only layers
    /// not seen before; a tag whose manifest digest (asked with a HEAD
    /// request) is known costs nothing more. Findings of recorded layers are
    /// reported again for every image that ships them. Other rules or
    /// settings start the cache afresh. Shards may share DIR. The cache
    /// holds the raw secrets found (files are owner-only).
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// With --cache: report only findings of layers and configs not in the
    /// cache (what is new since the last sweep).
    #[arg(long, requires = "cache")]
    pub new_only: bool,
    /// Serve Prometheus metrics on HOST:PORT (`/metrics`: requests by
    /// status, retries, layers and bytes fetched, images, cache hits,
    /// findings, errors) and a liveness probe (`/healthz`) during the sweep.
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// With --metrics-addr: keep serving metrics this many seconds after
    /// the sweep ends (the report is written first), so that a scrape sees
    /// the final counts.
    #[arg(long, value_name = "SECONDS", requires = "metrics_addr", value_parser = parse_linger)]
    pub metrics_linger: Option<std::time::Duration>,
    #[command(flatten)]
    pub pull: PullArgs,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Reports (`--format json`, `jsonl` or `sarif`) and run summaries
    /// (`--summary`), told apart by their content.
    #[arg(required = true, value_name = "REPORT")]
    pub reports: Vec<PathBuf>,
    /// Largest input file read.
    #[arg(long, value_name = "SIZE", default_value = "1GiB", value_parser = parse_size)]
    pub max_report_size: u64,
}

#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Kubeconfig file [default: $KUBECONFIG, else ~/.kube/config, else the
    /// in-cluster service account].
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context to use instead of the current one.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Namespace to audit (repeatable) [default: the context's namespace].
    #[arg(
        long,
        short = 'n',
        value_name = "NS",
        conflicts_with = "all_namespaces"
    )]
    pub namespace: Vec<String>,
    /// Audit every namespace (needs cluster-wide list rights).
    #[arg(long, short = 'A')]
    pub all_namespaces: bool,
    /// Only objects with these labels (`app=api,tier!=cache`, as kubectl).
    #[arg(long, short = 'l', value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// Kinds to audit [default: all].
    #[arg(long, value_enum, value_delimiter = ',', value_name = "KIND,...")]
    pub kinds: Vec<ClusterKind>,
    /// Objects asked for per list request (`limit`; the rest follows with
    /// `continue`).
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub page_size: u32,
    /// Largest API answer read (a page of objects).
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = parse_size)]
    pub max_response_size: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ClusterKind {
    Secrets,
    Configmaps,
    Pods,
    Deployments,
    Statefulsets,
    Daemonsets,
    Jobs,
    Cronjobs,
}

/// How images are fetched and read (shared by `image` and `registry`).
#[derive(Debug, Args)]
pub struct PullArgs {
    /// Skip (and report) files in layers larger than this [default:
    /// 100MiB, or `max_file_size` in the config file].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_file_size: Option<u64>,
    /// Platform to pick from multi-platform images: os/arch[/variant]
    /// (default: this machine's).
    #[arg(long, value_name = "OS/ARCH", conflicts_with = "all_platforms")]
    pub platform: Option<String>,
    /// Scan every platform of multi-platform images.
    #[arg(long)]
    pub all_platforms: bool,
    /// Registry user name (the password is read from standard input with
    /// --password-stdin, or from LEAKHOUND_REGISTRY_PASSWORD). Sent only to
    /// the registry the command line names (`registry HOST`, or the host of
    /// the image references), or to --credentials-for HOST.
    #[arg(long, value_name = "NAME")]
    pub username: Option<String>,
    /// Read the registry password from the first line of standard input.
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
    /// The registry (host[:port]) --username (or
    /// LEAKHOUND_REGISTRY_USERNAME) is for, when the command line names
    /// several; no other host is sent them.
    #[arg(long, value_name = "HOST")]
    pub credentials_for: Option<String>,
    /// Also trust this CA certificate (PEM) for registry TLS (repeatable).
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Vec<PathBuf>,
    /// Talk plain HTTP to every registry (a registry on localhost).
    #[arg(long)]
    pub insecure: bool,
    /// Talk plain HTTP to this registry (host[:port]) only (repeatable).
    #[arg(long, value_name = "HOST")]
    pub insecure_registry: Vec<String>,
    /// At most N requests per second to each registry host (tokens, lists,
    /// manifests, blobs), shared by every thread of the run [default: no
    /// limit].
    #[arg(long, value_name = "N", value_parser = parse_rate)]
    pub max_requests_per_second: Option<f64>,
    /// Layers downloaded and read at the same time.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub parallel: usize,
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// List the rules in effect (the default pack plus --rules).
    List,
    /// Validate a rule file or directory and run its examples (default: the built-in pack).
    Check {
        /// Rule file or directory; the built-in pack when omitted.
        path: Option<PathBuf>,
    },
}

pub use leakhound::config::parse_size;

/// `--max-requests-per-second`: a rate above 0.
fn parse_rate(s: &str) -> Result<f64, String> {
    let n: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number"))?;
    if !(n > 0.0 && n <= 1_000_000.0) {
        return Err(format!("`{s}`: give a rate above 0"));
    }
    Ok(n)
}

/// `--metrics-linger`: seconds, 0 allowed.
fn parse_linger(s: &str) -> Result<std::time::Duration, String> {
    if s.trim().parse::<f64>() == Ok(0.0) {
        return Ok(std::time::Duration::ZERO);
    }
    parse_timeout(s)
}

/// `--timeout`: seconds, fractions allowed, more than 0.
fn parse_timeout(s: &str) -> Result<std::time::Duration, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !(secs > 0.0 && secs <= 86_400.0) {
        return Err(format!("`{s}`: give between 0 and 86400 seconds"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}
