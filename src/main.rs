//! The binary: parses the command line, wires source → engine → reporter,
//! and maps the outcome to an exit code (0 clean, 1 findings, 2 error).

mod cli;
mod cmd;

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{CommandFactory, Parser};

use cli::{Cli, Command, CommonArgs, RulesCommand};
use leakhound::Scanner;
use leakhound::report::summary::{
    self, FindingCounts, Item, LeftOut, Scanned, ShardInfo, Summary, SuppressedCounts,
};
use leakhound::report::{self, Format, RunInfo, text};
use leakhound::rules::{self, Confidence, RuleSet};

pub(crate) use cmd::report::{
    Units, finish, masked_arguments, open_output, report_outcome, skip_printer, write_summary,
};

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
        shard: OnceLock::new(),
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

/// When and what this run started, and the shard a sharded sweep took
/// (for the run summary and SARIF; also when the run ends in an error).
pub(crate) struct RunStart {
    pub command: &'static str,
    pub started: String,
    pub clock: Instant,
    pub shard: OnceLock<ShardInfo>,
}

static RUN: OnceLock<RunStart> = OnceLock::new();

pub(crate) fn run_start() -> &'static RunStart {
    RUN.get_or_init(|| RunStart {
        command: "leakhound",
        started: summary::now(),
        clock: Instant::now(),
        shard: OnceLock::new(),
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
        shard: start.shard.get().cloned(),
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
        Command::Scan(args) => cmd::scan::scan(&cli.common, args),
        Command::Logs(args) => cmd::logs::run(&cli.common, args),
        Command::Git(args) => cmd::git::git(&cli.common, args),
        Command::Image(args) => cmd::image::image(&cli.common, args),
        Command::Registry(args) => cmd::image::registry_sweep(&cli.common, args),
        Command::Cluster(args) => cmd::cluster::run(&cli.common, args),
        Command::Merge(args) => cmd::merge::run(&cli.common, args),
        Command::Rules { command } => match command {
            RulesCommand::List => cmd::rules::rules_list(&cli.common),
            RulesCommand::Check { path } => cmd::rules::rules_check(&cli.common, path.as_deref()),
        },
        Command::Init { dir, force } => cmd::init::init(dir, *force),
        Command::Completions { shell } => {
            // Generated into memory: clap_complete panics on a write error,
            // and a closed pipe (`| head`) is not an error.
            let mut cmd = Cli::command();
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut cmd, "leakhound", &mut script);
            finish(io::stdout().lock().write_all(&script))?;
            Ok(0)
        }
        Command::Man { dir } => cmd::init::man(dir.as_deref()),
    }
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
