//! The binary: parses the command line, wires source → engine → reporter,
//! and maps the outcome to an exit code (0 clean, 1 findings, 2 error).

mod cli;
mod logs;

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Parser;

use cli::{Cli, Command, CommonArgs, GitArgs, RulesCommand, ScanArgs};
use leakhound::engine::selftest::check_examples;
use leakhound::pipeline;
use leakhound::report::{self, Format, text};
use leakhound::rules::{self, RuleSet};
use leakhound::source::fs::WalkOptions;
use leakhound::{EngineOptions, Scanner};

pub(crate) const EXIT_FINDINGS: u8 = 1;
pub(crate) const EXIT_ERROR: u8 = 2;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("leakhound: error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn run(cli: Cli) -> Result<u8> {
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
        Command::Logs(args) => logs::run(&cli.common, args),
        Command::Git(args) => git(&cli.common, args),
        Command::Rules { command } => match command {
            RulesCommand::List => rules_list(&cli.common),
            RulesCommand::Check { path } => rules_check(&cli.common, path.as_deref()),
        },
    }
}

/// The default pack plus every `--rules` path; user rules are compiled
/// eagerly so a bad regex fails now with file and rule id.
pub(crate) fn load_rules(common: &CommonArgs) -> Result<RuleSet> {
    let mut specs = rules::embedded_specs()?;
    let mut user = Vec::new();
    for p in &common.rules {
        user.extend(rules::load_path(p)?);
    }
    if !user.is_empty() {
        RuleSet::new(user.clone(), true)?;
        specs.extend(user);
    }
    Ok(RuleSet::new(specs, false)?)
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
    let scanner = scanner_for(common)?;
    for p in args.paths.iter().filter(|p| p.as_os_str() != "-") {
        std::fs::metadata(p).with_context(|| format!("cannot scan {}", p.display()))?;
    }
    let opts = WalkOptions {
        no_ignore: args.no_ignore,
        max_file_size: args.max_file_size,
    };
    let on_skip = skip_printer(common.quiet);
    let outcome = pipeline::scan_paths(&scanner, &args.paths, &opts, &on_skip);
    report_outcome(common, &scanner, &outcome, args.strict)
}

fn scanner_for(common: &CommonArgs) -> Result<Scanner> {
    Ok(Scanner::new(
        load_rules(common)?,
        EngineOptions {
            show_secrets: common.show_secrets,
            min_confidence: common.min_confidence.into(),
            decode: leakhound::decode::Limits {
                max_depth: common.decode_depth,
                max_bytes: usize::try_from(common.max_decoded_size).unwrap_or(usize::MAX),
            },
        },
    ))
}

fn skip_printer(quiet: bool) -> impl Fn(&leakhound::source::fs::Skip) + Sync {
    move |s: &leakhound::source::fs::Skip| {
        if !quiet {
            let kind = if s.error { "warning" } else { "skipped" };
            eprintln!("leakhound: {kind}: {}: {}", s.path, s.reason);
        }
    }
}

fn git(common: &CommonArgs, args: &GitArgs) -> Result<u8> {
    use leakhound::source::git;
    let scanner = scanner_for(common)?;
    let on_skip = skip_printer(common.quiet);
    let tmp;
    let repo = if git::is_url(&args.repo) {
        tmp = tempfile::tempdir().context("creating a temporary directory for the clone")?;
        git::clone_bare(&args.repo, tmp.path())?
    } else {
        git::open(std::path::Path::new(&args.repo))?
    };
    if args.uncommitted {
        let paths = git::uncommitted(&repo)?;
        let opts = WalkOptions {
            no_ignore: true,
            max_file_size: args.max_file_size,
        };
        let outcome = if paths.is_empty() {
            pipeline::Outcome::default()
        } else {
            pipeline::scan_paths(&scanner, &paths, &opts, &on_skip)
        };
        return report_outcome(common, &scanner, &outcome, true);
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
    let total = plan.blobs.len();
    let commits = plan.commits;
    let done = std::sync::atomic::AtomicBool::new(false);
    let show_progress = !common.quiet && io::stderr().is_terminal();
    let outcome = std::thread::scope(|s| {
        if show_progress {
            s.spawn(|| progress_line(&counters, &done, commits, total));
        }
        let o = pipeline::scan_git(
            &scanner,
            &repo,
            plan,
            args.max_file_size,
            &on_skip,
            &counters,
        );
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        o
    });
    // A history scan that could not read everything is not complete: exit 2.
    report_outcome(common, &scanner, &outcome, true)
}

/// Progress on a terminal: commits enumerated, blobs scanned, MB/s.
fn progress_line(
    c: &pipeline::Counters,
    done: &std::sync::atomic::AtomicBool,
    commits: usize,
    total: usize,
) {
    use std::sync::atomic::Ordering::Relaxed;
    let start = std::time::Instant::now();
    while !done.load(Relaxed) {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let secs = start.elapsed().as_secs_f64().max(0.001);
        let mb = c.bytes.load(Relaxed) as f64 / 1e6;
        eprint!(
            "\rleakhound: {commits} commits, {}/{total} blobs scanned, {:.0} MB/s   ",
            c.files.load(Relaxed),
            mb / secs
        );
    }
    eprint!("\r{:70}\r", "");
}

/// Writes the report and summary, and maps the outcome to an exit code.
fn report_outcome(
    common: &CommonArgs,
    scanner: &Scanner,
    outcome: &pipeline::Outcome,
    strict: bool,
) -> Result<u8> {
    let quiet = common.quiet;
    let (mut out, color) = open_output(common)?;
    finish(
        report::write(
            common.format.unwrap_or(Format::Text),
            &outcome.findings,
            scanner.rules(),
            color,
            &mut out,
        )
        .and_then(|_| out.flush()),
    )?;
    if !quiet {
        let counts = text::SummaryCounts {
            files: outcome.files,
            bytes: outcome.bytes,
            skipped: outcome.skipped.len(),
            errors: outcome.errors(),
            elapsed: outcome.elapsed,
        };
        finish(text::write_summary(
            &outcome.findings,
            &counts,
            &mut io::stderr(),
        ))?;
    }
    if strict && outcome.errors() > 0 {
        eprintln!(
            "leakhound: error: {} input(s) could not be scanned (--strict)",
            outcome.errors()
        );
        return Ok(EXIT_ERROR);
    }
    Ok(if outcome.findings.is_empty() {
        0
    } else {
        EXIT_FINDINGS
    })
}

fn rules_list(common: &CommonArgs) -> Result<u8> {
    let rules = load_rules(common)?;
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

fn rules_check(common: &CommonArgs, path: Option<&std::path::Path>) -> Result<u8> {
    let (set, require) = match path {
        Some(p) => (RuleSet::new(rules::load_path(p)?, true)?, false),
        None => (load_rules(common)?, true),
    };
    let failures = check_examples(&set, require);
    for f in &failures {
        eprintln!("leakhound: error: {f}");
    }
    let examples: usize = set
        .rules()
        .iter()
        .map(|r| r.spec.examples.len() + r.spec.negative_examples.len())
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
