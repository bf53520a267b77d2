//! Reporters turn findings into text, JSON, JSONL or SARIF. They never scan.

pub mod baseline;
pub mod json;
pub mod redact;
pub mod sarif;
pub mod sink;
pub mod summary;
pub mod text;

use std::io::{self, Write};
use std::path::Path;

use crate::finding::Finding;
use crate::rules::RuleSet;

/// Report formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Jsonl,
    Sarif,
}

/// What a report says about the run beside its findings (SARIF's
/// invocation, automation details and base URIs).
#[derive(Clone, Debug)]
pub struct RunInfo<'a> {
    /// The subcommand (`scan`, `git`, …): the default SARIF category.
    pub command: String,
    /// The scan root; artifact URIs are relative to it when it is absolute.
    pub root: Option<&'a Path>,
    pub sarif_category: Option<String>,
    pub sarif_max_results: usize,
    /// False when anything was not scanned as asked.
    pub complete: bool,
    pub errors: Vec<summary::Item>,
    pub skipped: Vec<summary::Item>,
}

impl RunInfo<'_> {
    /// A run of `command` with nothing said about it yet.
    pub fn new(command: &str) -> RunInfo<'static> {
        RunInfo {
            command: command.to_string(),
            root: None,
            sarif_category: None,
            sarif_max_results: sarif::GITHUB_MAX_RESULTS,
            complete: true,
            errors: Vec::new(),
            skipped: Vec::new(),
        }
    }
}

/// Writes `findings` (already sorted) in `format`, through the same
/// `FindingSink` a streaming run writes through.
pub fn write(
    format: Format,
    findings: &[Finding],
    rules: &RuleSet,
    run: &RunInfo,
    color: bool,
    out: &mut dyn Write,
) -> io::Result<()> {
    use sink::FindingSink;
    let mut s = sink::ReportSink::new(out, format, color, false);
    for f in findings {
        s.finding(f)?;
    }
    s.finish(rules, run)
}
