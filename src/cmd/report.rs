//! What every scanning subcommand does at the end: the report, the run
//! summary, and the exit code; and how skipped inputs are told.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::Path;

use anyhow::{Context, Result};

use crate::cli::CommonArgs;
use crate::{EXIT_ERROR, EXIT_FINDINGS, run_start};
use leakhound::Scanner;
use leakhound::notice::NoticeKind;
use leakhound::pipeline;
use leakhound::report::summary::{
    self, FindingCounts, Item, LeftOut, Scanned, Summary, SuppressedCounts,
};
use leakhound::report::{self, Format, RunInfo, baseline, text};

/// A notice's message as the command line tells it: the library names
/// limits in words, and the option that changes them is added here.
pub(crate) fn reason(n: &leakhound::Notice) -> String {
    match n.kind {
        NoticeKind::TooLarge => format!("{} (--max-file-size)", n.reason),
        NoticeKind::Ignored => format!("{} (--no-ignore scans it)", n.reason),
        NoticeKind::Timeout => format!("{} (--timeout)", n.reason),
        _ => n.reason.clone(),
    }
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
    outcome: pipeline::Outcome,
    strict: bool,
    root: Option<&Path>,
    units: Units,
) -> Result<u8> {
    report_outcome_with(common, scanner, outcome, strict, root, units, &|_| {})
}

/// `report_outcome`, telling `reported` the findings the report holds
/// (after the baseline), before they are written.
pub(crate) fn report_outcome_with(
    common: &CommonArgs,
    scanner: &Scanner,
    mut outcome: pipeline::Outcome,
    strict: bool,
    root: Option<&Path>,
    units: Units,
    reported: &dyn Fn(&[leakhound::Finding]),
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
    reported(&outcome.findings);
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
        reason: scanner.masked_text(&reason(s)),
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
            no_ignore_option: Some("--no-ignore"),
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
            shard: start.shard.get().cloned(),
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
        let line = format!("{}: {}", s.path, reason(s));
        eprintln!(
            "leakhound: {kind}: {}",
            text::escape_controls(&scanner.masked_text(&line))
        );
    }
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
pub(crate) fn finish(result: io::Result<()>) -> Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing the report"),
    }
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
