//! The binary: parses the command line, wires source → engine → reporter,
//! and maps the outcome to an exit code (0 clean, 1 findings, 2 error).

mod cli;
mod cmd;
mod pods;
mod progress;

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{CommandFactory, Parser};

use cli::{Cli, Command, CommonArgs, GitArgs, RulesCommand, ScanArgs};
use leakhound::Scanner;
use leakhound::config;
use leakhound::engine::selftest::check_examples;
use leakhound::notice::NoticeKind;
use leakhound::pipeline;
use leakhound::report::summary::{
    self, FindingCounts, Item, LeftOut, Scanned, Summary, SuppressedCounts,
};
use leakhound::report::{self, Format, RunInfo, baseline, text};
use leakhound::rules::{self, Confidence, RuleSet};
use leakhound::source::fs::WalkOptions;

pub(crate) const EXIT_FINDINGS: u8 = 1;
pub(crate) const EXIT_ERROR: u8 = 2;

fn main() -> ExitCode {
    // Relay mode: this binary stands between gix and `ssh` (see
    // source::ssh_relay), before any parsing or set-up.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args
        .get(1)
        .is_some_and(|a| a == leakhound::source::ssh_relay::ARG)
    {
        let code = leakhound::source::ssh_relay::run(&args[2..]);
        return ExitCode::from(u8::try_from(code).unwrap_or(255));
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(io::stderr)
        .init();
    // One TLS provider for the process (ring): registries (oci-client) and
    // https Git remotes (gix over reqwest) both use rustls without a built-in
    // provider, which keeps aws-lc's long C build out of the binary.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // A panic's message can quote input (a slice of a file, a name): the
    // default hook would print it raw. Say where it happened; the unit's
    // error (masked like every message) says what was not scanned.
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("leakhound: internal error (panic{at})");
    }));
    let cli = Cli::parse();
    let _ = RUN.set(RunStart {
        command: cli.command.name(),
        started: summary::now(),
        clock: Instant::now(),
    });
    match run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let msg = error_message(&e);
            let scanner = fallback_scanner();
            let shown = match &scanner {
                Some(s) if !cli.common.show_secrets => s.masked_text(&msg),
                _ => msg,
            };
            eprintln!("leakhound: error: {}", text::escape_controls(&shown));
            report_failure(&cli.common, scanner.as_ref(), &shown);
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// An error and its causes on one line, each cause once: errors that quote
/// their source in their own text (`cannot read config file: No such file
/// or directory`) are not followed by it again, and multi-line causes (a
/// regex parser's caret diagram) are folded.
fn error_message(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let text = cause
            .to_string()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        if msg.contains(&text) {
            continue;
        }
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&text);
    }
    msg
}

/// When and what this run started (for the run summary and SARIF).
pub(crate) struct RunStart {
    pub command: &'static str,
    pub started: String,
    pub clock: Instant,
}

static RUN: OnceLock<RunStart> = OnceLock::new();

pub(crate) fn run_start() -> &'static RunStart {
    RUN.get_or_init(|| RunStart {
        command: "leakhound",
        started: summary::now(),
        clock: Instant::now(),
    })
}

/// The default pack, to mask what an error message quotes when the run's
/// own scanner could not be built.
fn fallback_scanner() -> Option<Scanner> {
    let specs = rules::pack_specs().ok()?;
    Some(Scanner::new(
        RuleSet::new(specs, false).ok()?,
        leakhound::EngineOptions::default(),
    ))
}

/// The command line after the program name, every secret in it masked.
pub(crate) fn masked_arguments(scanner: Option<&Scanner>) -> Vec<String> {
    std::env::args()
        .skip(1)
        .map(|a| match scanner {
            Some(s) => s.masked_text(&a),
            None => a,
        })
        .collect()
}

/// Writes the run summary where `--summary` asks (`-`: standard error).
pub(crate) fn write_summary(common: &CommonArgs, s: &Summary) -> Result<()> {
    let Some(path) = &common.summary else {
        return Ok(());
    };
    let mut text = serde_json::to_string_pretty(s).context("serialising the run summary")?;
    text.push('\n');
    if path.as_os_str() == "-" {
        finish(io::stderr().write_all(text.as_bytes()))
    } else {
        std::fs::write(path, text)
            .with_context(|| format!("cannot write summary {}", path.display()))
    }
}

/// A run that stopped on an error still leaves its machine-readable
/// traces: the summary (`complete: false`) and, with `--format sarif`, a
/// SARIF log with no results whose invocation failed and says why.
fn report_failure(common: &CommonArgs, scanner: Option<&Scanner>, message: &str) {
    let start = run_start();
    let error = Item {
        path: String::new(),
        reason: message.to_string(),
    };
    let s = Summary {
        summary_version: summary::SUMMARY_VERSION,
        tool: Default::default(),
        command: start.command.to_string(),
        arguments: masked_arguments(scanner),
        started: start.started.clone(),
        ended: summary::now(),
        elapsed_seconds: start.clock.elapsed().as_secs_f64(),
        scanned: Scanned::default(),
        findings: FindingCounts::of(&[]),
        suppressed: SuppressedCounts::default(),
        left_out: LeftOut::default(),
        skipped: Vec::new(),
        errors: vec![error.clone()],
        complete: false,
        exit_code: EXIT_ERROR,
        shard: cmd::image::SHARD.get().cloned(),
    };
    if let Err(e) = write_summary(common, &s) {
        eprintln!("leakhound: error: {e:#}");
    }
    if common.format == Some(Format::Sarif)
        && let Some(scanner) = scanner
    {
        let mut run = RunInfo::new(start.command);
        run.sarif_category = common.sarif_category.clone();
        run.complete = false;
        run.errors = vec![error];
        let written = open_output(common).and_then(|(mut out, _)| {
            finish(
                report::write(Format::Sarif, &[], scanner.rules(), &run, false, &mut out)
                    .and_then(|_| out.flush()),
            )
        });
        if let Err(e) = written {
            eprintln!("leakhound: error: {e:#}");
        }
    }
}

fn run(cli: &Cli) -> Result<u8> {
    if let Some(n) = cli.common.threads {
        if n == 0 {
            bail!("--threads must be at least 1");
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .context("starting the worker threads")?;
    }
    match &cli.command {
        Command::Scan(args) => scan(&cli.common, args),
        Command::Logs(args) => cmd::logs::run(&cli.common, args),
        Command::Git(args) => git(&cli.common, args),
        Command::Image(args) => cmd::image::image(&cli.common, args),
        Command::Registry(args) => cmd::image::registry_sweep(&cli.common, args),
        Command::Cluster(args) => cmd::cluster::run(&cli.common, args),
        Command::Merge(args) => cmd::merge::run(&cli.common, args),
        Command::Rules { command } => match command {
            RulesCommand::List => rules_list(&cli.common),
            RulesCommand::Check { path } => rules_check(&cli.common, path.as_deref()),
        },
        Command::Init { dir, force } => init(dir, *force),
        Command::Completions { shell } => {
            // Generated into memory: clap_complete panics on a write error,
            // and a closed pipe (`| head`) is not an error.
            let mut cmd = Cli::command();
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut cmd, "leakhound", &mut script);
            finish(io::stdout().lock().write_all(&script))?;
            Ok(0)
        }
        Command::Man { dir } => man(dir.as_deref()),
    }
}

/// `leakhound man`: the main page on standard output, or every page
/// (`leakhound.1`, `leakhound-SUB.1`, `leakhound-rules-list.1`, …) in `dir`.
fn man(dir: Option<&Path>) -> Result<u8> {
    let cmd = Cli::command();
    let Some(dir) = dir else {
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut page)?;
        finish(io::stdout().lock().write_all(&page))?;
        return Ok(0);
    };
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // Breadth-first over subcommands with their page names; no recursion.
    let mut queue = vec![("leakhound".to_string(), cmd)];
    let mut written = 0;
    while let Some((name, mut c)) = queue.pop() {
        c = c.name(name.clone()).bin_name(name.replace('-', " "));
        for sub in c.get_subcommands() {
            if sub.get_name() != "help" {
                queue.push((format!("{name}-{}", sub.get_name()), sub.clone()));
            }
        }
        let mut page = Vec::new();
        clap_mangen::Man::new(c).render(&mut page)?;
        let path = dir.join(format!("{name}.1"));
        std::fs::write(&path, page).with_context(|| format!("cannot write {}", path.display()))?;
        written += 1;
    }
    eprintln!("leakhound: wrote {written} man pages to {}", dir.display());
    Ok(0)
}

pub(crate) use leakhound::settings::Settings;

/// The library's settings for a scan rooted at `root`, from the command
/// line (`max_file_size`: the subcommand's `--max-file-size`); warnings
/// about the config are printed unless `--quiet`.
pub(crate) fn settings(
    common: &CommonArgs,
    root: Option<&Path>,
    max_file_size: Option<u64>,
) -> Result<Settings> {
    if common.decode_depth > leakhound::decode::MAX_DEPTH {
        bail!(
            "--decode-depth {}: at most {} decoding steps are followed",
            common.decode_depth,
            leakhound::decode::MAX_DEPTH
        );
    }
    let overrides = leakhound::settings::Overrides {
        no_config: common.no_config,
        config: common.config.clone(),
        rules: common.rules.clone(),
        gitleaks_config: common.gitleaks_config.clone(),
        min_confidence: common.min_confidence.map(Confidence::from),
        max_file_size,
        no_decode: common.no_decode,
        decode: leakhound::decode::Limits {
            max_depth: common.decode_depth,
            max_bytes: usize::try_from(common.max_decoded_size).unwrap_or(usize::MAX),
        },
        show_secrets: common.show_secrets,
    };
    let settings = leakhound::settings::build(&overrides, root)?;
    if !common.quiet {
        for (path, w) in &settings.warnings {
            eprintln!("leakhound: warning: {}: {w}", path.display());
        }
    }
    Ok(settings)
}

/// The rules in effect (for `rules list|check`), with the config in the
/// current directory applied.
pub(crate) fn load_rules(common: &CommonArgs) -> Result<Scanner> {
    Ok(settings(common, Some(Path::new(".")), None)?.scanner)
}

/// Where the report goes, and whether it may be coloured.
pub(crate) fn open_output(common: &CommonArgs) -> Result<(Box<dyn Write>, bool)> {
    match &common.output {
        Some(path) => {
            let f = File::create(path)
                .with_context(|| format!("cannot create output file {}", path.display()))?;
            Ok((Box::new(BufWriter::new(f)), false))
        }
        None => {
            let stdout = io::stdout();
            let color = common.format.unwrap_or(Format::Text) == Format::Text
                && stdout.is_terminal()
                && std::env::var_os("NO_COLOR").is_none();
            Ok((Box::new(BufWriter::new(stdout.lock())), color))
        }
    }
}

/// Writes a report; a closed standard output (a pager or `head` exited) is
/// not an error.
fn finish(result: io::Result<()>) -> Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing the report"),
    }
}

fn scan(common: &CommonArgs, args: &ScanArgs) -> Result<u8> {
    for p in args.paths.iter().filter(|p| p.as_os_str() != "-") {
        std::fs::metadata(p).with_context(|| format!("cannot scan {}", p.display()))?;
    }
    let root = args.paths.iter().find(|p| p.as_os_str() != "-");
    let Settings {
        scanner,
        max_file_size,
        ..
    } = settings(common, root.map(PathBuf::as_path), args.max_file_size)?;
    let opts = WalkOptions {
        no_ignore: args.no_ignore,
        max_file_size,
    };
    let on_skip = skip_printer(common, &scanner);
    let counters = pipeline::Counters::default();
    let outcome = progress::while_running(common, &counters, None, "files", || {
        pipeline::scan_paths(&scanner, &args.paths, &opts, &on_skip, &counters)
    });
    if outcome.files == 0 && !common.quiet {
        warn_nothing_scanned(&scanner, &args.paths, &outcome.skipped);
    }
    let code = report_outcome(
        common,
        &scanner,
        outcome,
        args.strict,
        root.map(PathBuf::as_path),
        Units::Files,
    );
    // The process ends next: freeing a thousand compiled rules one by one
    // would cost more than scanning a small file (pre-commit runs this).
    drop(on_skip);
    std::mem::forget(scanner);
    code
}

/// Says why a scan read no file at all: an empty tree, ignore files or
/// allowlists that cover everything, or files too large or unreadable.
fn warn_nothing_scanned(scanner: &Scanner, roots: &[PathBuf], skipped: &[leakhound::Notice]) {
    let roots: Vec<String> = roots.iter().map(|p| p.display().to_string()).collect();
    let count = |kind| skipped.iter().filter(|s| s.kind == kind).count();
    let mut why = Vec::new();
    for (kind, what, hint) in [
        (
            NoticeKind::Ignored,
            "left out by ignore files",
            " (--no-ignore scans them)",
        ),
        (
            NoticeKind::Allowlisted,
            "covered by allowlist paths",
            " (-v names them)",
        ),
        (NoticeKind::TooLarge, "larger than --max-file-size", ""),
        (NoticeKind::Unreadable, "unreadable", ""),
        (NoticeKind::ArchiveLimit, "left out by archive limits", ""),
        (NoticeKind::DecodeLimit, "left out by decoding limits", ""),
        (NoticeKind::Internal, "failed by an internal error", ""),
    ] {
        let n = count(kind);
        if n > 0 {
            why.push(format!(
                "{n} path{} {what}{hint}",
                if n == 1 { "" } else { "s" }
            ));
        }
    }
    let why = if why.is_empty() {
        "no files there".to_string()
    } else {
        why.join(", ")
    };
    eprintln!(
        "leakhound: warning: no file was scanned under {}: {why}",
        text::escape_controls(&scanner.masked_text(&roots.join(", ")))
    );
}

/// Prints skipped inputs as they happen (unless `-q`); files skipped
/// because an allowlist covers them only with `--verbose`.
///
/// A message may quote input (a file or entry name): every span of it that
/// any rule matches is masked, and control characters are escaped so a name
/// cannot move the terminal's cursor over earlier lines.
pub(crate) fn skip_printer<'a>(
    common: &CommonArgs,
    scanner: &'a Scanner,
) -> impl Fn(&leakhound::Notice) + Sync + 'a {
    let (quiet, verbose) = (common.quiet, common.verbose);
    move |s: &leakhound::Notice| {
        if quiet || (s.kind.is_routine() && !verbose) {
            return;
        }
        let kind = if s.is_error() { "warning" } else { "skipped" };
        let line = format!("{}: {}", s.path, s.reason);
        eprintln!(
            "leakhound: {kind}: {}",
            text::escape_controls(&scanner.masked_text(&line))
        );
    }
}

fn git(common: &CommonArgs, args: &GitArgs) -> Result<u8> {
    use leakhound::source::git;
    let tmp;
    let (repo, root) = if git::is_url(&args.repo) {
        tmp = tempfile::tempdir().context("creating a temporary directory for the clone")?;
        // Dropping `tmp` removes the clone on every return and unwinding
        // panic; a signal ends the process without either, so it removes
        // the clone itself.
        remove_on_signal(tmp.path().to_path_buf())?;
        (
            git::clone_bare(&args.repo, tmp.path(), common.timeout)?,
            None,
        )
    } else {
        let repo = git::open(Path::new(&args.repo))?;
        let root = repo.workdir().unwrap_or(repo.path()).to_path_buf();
        (repo, Some(root))
    };
    let Settings {
        scanner,
        max_file_size,
        ..
    } = settings(common, root.as_deref(), args.max_file_size)?;
    let on_skip = skip_printer(common, &scanner);
    if args.uncommitted {
        let paths = git::uncommitted(&repo)?;
        let opts = WalkOptions {
            no_ignore: true,
            max_file_size,
        };
        let counters = pipeline::Counters::default();
        let outcome = if paths.is_empty() {
            pipeline::Outcome::default()
        } else {
            pipeline::scan_paths(&scanner, &paths, &opts, &on_skip, &counters)
        };
        return report_outcome(
            common,
            &scanner,
            outcome,
            false,
            root.as_deref(),
            Units::Files,
        );
    }
    let plan = if args.staged {
        git::staged(&repo)?
    } else {
        git::plan(
            &repo,
            &git::GitOptions {
                branch: args.branch.clone(),
                since_commit: args.since_commit.clone(),
                range: args.range.clone(),
                all_objects: args.all_objects,
            },
        )?
    };
    let counters = pipeline::Counters::default();
    let total = plan.blobs.len() as u64;
    let what = format!("blobs of {} commits", plan.commits);
    let outcome = progress::while_running(common, &counters, Some(total), &what, || {
        pipeline::scan_git(&scanner, &repo, plan, max_file_size, &on_skip, &counters)
    });
    // A history scan that could not read everything is not complete: exit 2.
    report_outcome(
        common,
        &scanner,
        outcome,
        false,
        root.as_deref(),
        Units::Blobs,
    )
}

/// On SIGINT, SIGTERM or SIGHUP: removes `dir` (a temporary clone) and
/// exits as the signal would (128 + its number).
fn remove_on_signal(dir: PathBuf) -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .context("installing signal handlers")?;
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            // The clone may still be writing: try again while files appear.
            for _ in 0..20 {
                if std::fs::remove_dir_all(&dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            std::process::exit(128 + sig);
        }
    });
    Ok(())
}

/// What a subcommand's `Outcome::files` counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Units {
    Files,
    Blobs,
    /// Files in image layers (layers and images are counted apart).
    LayerFiles,
    /// Objects a cluster's API listed.
    Objects,
}

/// Writes the report and summary, and maps the outcome to an exit code.
/// `root` is the scan root (SARIF URIs are relative to it when absolute).
pub(crate) fn report_outcome(
    common: &CommonArgs,
    scanner: &Scanner,
    mut outcome: pipeline::Outcome,
    strict: bool,
    root: Option<&Path>,
    units: Units,
) -> Result<u8> {
    let quiet = common.quiet;
    if let Some(path) = &common.write_baseline {
        baseline::write(path, &outcome.findings)?;
        if !quiet {
            eprintln!(
                "leakhound: wrote {} fingerprint(s) to baseline {}",
                outcome.findings.len(),
                path.display()
            );
        }
    }
    let mut baselined = 0;
    if let Some(path) = &common.baseline {
        let known = baseline::read(path)?;
        let before = outcome.findings.len();
        outcome.findings.retain(|f| !known.contains(&f.fingerprint));
        baselined = before - outcome.findings.len();
    }
    report::redact::mask_across(&mut outcome.findings);
    let errors = outcome.errors();
    let complete = errors == 0;
    // Anything not scanned makes the run incomplete: exit 2, whatever was
    // found. `--strict` counts what a limit left out on purpose too (too
    // large, archive and decoding limits), not paths ignore files or
    // allowlists leave out.
    let limited = outcome
        .skipped
        .iter()
        .filter(|s| !s.is_error() && !s.kind.is_routine())
        .count();
    let code = if errors > 0 || (strict && limited > 0) {
        EXIT_ERROR
    } else if outcome.findings.is_empty() || common.write_baseline.is_some() {
        0
    } else {
        EXIT_FINDINGS
    };
    // Messages quote paths: masked like every other output.
    let item = |s: &leakhound::Notice| Item {
        path: scanner.masked_text(&s.path),
        reason: scanner.masked_text(&s.reason),
    };
    let start = run_start();
    let mut run = RunInfo::new(start.command);
    run.root = root;
    run.sarif_category = common.sarif_category.clone();
    run.sarif_max_results = common.sarif_max_results;
    run.complete = complete;
    run.errors = outcome
        .skipped
        .iter()
        .filter(|s| s.is_error())
        .map(item)
        .collect();
    // Paths ignore files leave out are routine and may be many: counted,
    // and named on stderr with --verbose.
    run.skipped = outcome
        .skipped
        .iter()
        .filter(|s| !s.is_error() && s.kind != NoticeKind::Ignored)
        .map(item)
        .collect();
    let count = |kind| outcome.skipped.iter().filter(|s| s.kind == kind).count() as u64;
    let left_out = LeftOut {
        ignore_files: count(NoticeKind::Ignored),
        allowlist_paths: count(NoticeKind::Allowlisted),
        too_large: count(NoticeKind::TooLarge),
    };
    let format = common.format.unwrap_or(Format::Text);
    let (mut out, color) = open_output(common)?;
    finish(
        report::write(
            format,
            &outcome.findings,
            scanner.rules(),
            &run,
            color,
            &mut out,
        )
        .and_then(|_| out.flush()),
    )?;
    let dropped = report::sarif::dropped(&outcome.findings, &run);
    if format == Format::Sarif && dropped > 0 && !quiet {
        eprintln!(
            "leakhound: warning: the SARIF report holds the {} most severe of {} findings \
             ({dropped} left out; --sarif-max-results)",
            common.sarif_max_results,
            outcome.findings.len()
        );
    }
    let (inline, allowlisted) = (outcome.silenced.inline, outcome.silenced.allowlist);
    if !quiet {
        let counts = text::SummaryCounts {
            files: outcome.files,
            unit: if units == Units::Objects {
                "object"
            } else {
                ""
            },
            bytes: outcome.bytes,
            // Paths allowlists and ignore files cover were left out on
            // purpose: counted apart.
            skipped: outcome
                .skipped
                .iter()
                .filter(|s| !s.kind.is_routine() && !s.is_error())
                .count(),
            errors,
            elapsed: outcome.elapsed,
            inline,
            allowlisted,
            baselined,
            left_out,
        };
        finish(text::write_summary(
            &outcome.findings,
            &counts,
            &mut io::stderr(),
        ))?;
    }
    let mut scanned = Scanned {
        bytes: outcome.bytes,
        layers: outcome.layers,
        images: outcome.images,
        cached_layers: outcome.cache.layer_hits,
        ..Scanned::default()
    };
    match units {
        Units::Files | Units::LayerFiles => scanned.files = outcome.files,
        Units::Blobs => scanned.blobs = outcome.files,
        Units::Objects => scanned.objects = outcome.files,
    }
    write_summary(
        common,
        &Summary {
            summary_version: summary::SUMMARY_VERSION,
            tool: Default::default(),
            command: start.command.to_string(),
            arguments: masked_arguments(Some(scanner)),
            started: start.started.clone(),
            ended: summary::now(),
            elapsed_seconds: start.clock.elapsed().as_secs_f64(),
            scanned,
            findings: FindingCounts::of(&outcome.findings),
            suppressed: SuppressedCounts {
                baseline: baselined as u64,
                allowlist: allowlisted,
                inline,
            },
            left_out,
            skipped: run.skipped.clone(),
            errors: run.errors.clone(),
            complete: complete && code != EXIT_ERROR,
            exit_code: code,
            shard: cmd::image::SHARD.get().cloned(),
        },
    )?;
    if code == EXIT_ERROR {
        if errors > 0 {
            eprintln!("leakhound: error: {errors} input(s) could not be scanned");
        }
        if strict && limited > 0 {
            eprintln!("leakhound: error: {limited} input(s) left out by limits (--strict)");
        }
    }
    Ok(code)
}

fn rules_list(common: &CommonArgs) -> Result<u8> {
    let scanner = load_rules(common)?;
    let rules = scanner.rules();
    let (mut out, _) = open_output(common)?;
    let res = match common.format.unwrap_or(Format::Text) {
        Format::Json | Format::Jsonl | Format::Sarif => {
            let list: Vec<_> = rules
                .rules()
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "id": r.spec.id,
                        "name": r.spec.name,
                        "severity": r.spec.severity,
                        "confidence": r.spec.confidence,
                        "validator": r.spec.validator,
                        "generic": r.spec.generic,
                        "keywords": r.keywords,
                        "description": r.spec.description,
                        "references": r.spec.references,
                        "file": r.file,
                    })
                })
                .collect();
            serde_json::to_writer_pretty(&mut out, &list)
                .map_err(io::Error::from)
                .and_then(|_| writeln!(out))
        }
        Format::Text => rules.rules().iter().try_for_each(|r| {
            writeln!(
                out,
                "{:<44} {:<8} {:<6} {}",
                r.spec.id,
                r.spec.severity.as_str(),
                r.spec.confidence.as_str(),
                r.spec.name
            )
        }),
    };
    finish(res.and_then(|_| out.flush()))?;
    Ok(0)
}

/// `leakhound init`: writes the commented config template.
fn init(dir: &Path, force: bool) -> Result<u8> {
    let path = dir.join(config::FILE_NAME);
    if path.exists() && !force {
        bail!("{} exists; use --force to replace it", path.display());
    }
    std::fs::write(&path, config::TEMPLATE)
        .with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("leakhound: wrote {}", path.display());
    Ok(0)
}

fn rules_check(common: &CommonArgs, path: Option<&std::path::Path>) -> Result<u8> {
    let (set, require) = match path {
        Some(p) => (RuleSet::new(rules::load_path(p)?, true)?, false),
        None => (load_rules(common)?.into_rules(), true),
    };
    let failures = check_examples(&set, require);
    for f in &failures {
        eprintln!("leakhound: error: {f}");
    }
    let examples: usize = set
        .rules()
        .iter()
        .map(|r| {
            let (e, n) = leakhound::engine::selftest::examples_of(r);
            e.len() + n.len()
        })
        .sum();
    if failures.is_empty() {
        if !common.quiet {
            println!(
                "ok: {} rules, {} examples and negative examples checked",
                set.len(),
                examples
            );
        }
        Ok(0)
    } else {
        eprintln!("leakhound: {} example check(s) failed", failures.len());
        Ok(EXIT_ERROR)
    }
}
