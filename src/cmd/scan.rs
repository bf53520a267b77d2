//! `leakhound scan`: files, directories and standard input.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::cli::{CommonArgs, ScanArgs};
use crate::cmd::progress;
use crate::{Settings, Units, report_outcome, settings, skip_printer};
use leakhound::Scanner;
use leakhound::notice::NoticeKind;
use leakhound::pipeline;
use leakhound::report::text;
use leakhound::source::fs::WalkOptions;

pub(crate) fn scan(common: &CommonArgs, args: &ScanArgs) -> Result<u8> {
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
pub(crate) fn warn_nothing_scanned(
    scanner: &Scanner,
    roots: &[PathBuf],
    skipped: &[leakhound::Notice],
) {
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
