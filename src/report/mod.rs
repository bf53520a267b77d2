//! Reporters turn findings into text, JSON, JSONL or SARIF. They never scan.

pub mod baseline;
pub mod json;
pub mod sarif;
pub mod text;

use std::io::{self, Write};

use crate::finding::Finding;
use crate::rules::RuleSet;

/// Output formats of `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Jsonl,
    Sarif,
}

/// Writes `findings` (already sorted) in `format`.
pub fn write(
    format: Format,
    findings: &[Finding],
    rules: &RuleSet,
    color: bool,
    out: &mut dyn Write,
) -> io::Result<()> {
    match format {
        Format::Text => text::write(findings, color, out),
        Format::Json => json::write_array(findings, out),
        Format::Jsonl => json::write_lines(findings, out),
        Format::Sarif => sarif::write(findings, rules, out),
    }
}
