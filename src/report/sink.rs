//! `FindingSink`: where findings go as they are found. Streaming formats
//! (JSONL, text, and JSON's array elements) are written at once; SARIF, a
//! whole document, is held and written by `finish`. Every subcommand
//! reports through one: `scan`, `git` and `image` hand over their sorted
//! findings, `logs` each finding as its line completes.

use std::io::{self, Write};

use crate::finding::Finding;
use crate::report::{Format, RunInfo, json, sarif, text};
use crate::rules::RuleSet;

/// Receives findings as they come, then the end of the run.
pub trait FindingSink {
    fn finding(&mut self, f: &Finding) -> io::Result<()>;
    /// Closes the report (a JSON array's end, the SARIF document).
    fn finish(&mut self, rules: &RuleSet, run: &RunInfo) -> io::Result<()>;
}

/// A report in one of the formats, written to `out`.
pub struct ReportSink<W: Write> {
    out: W,
    format: Format,
    color: bool,
    /// Flush after each finding (a live stream's reader waits for it).
    flush_each: bool,
    wrote_any: bool,
    /// SARIF is one document: findings are kept for `finish`.
    held: Vec<Finding>,
}

impl<W: Write> ReportSink<W> {
    pub fn new(out: W, format: Format, color: bool, flush_each: bool) -> Self {
        ReportSink {
            out,
            format,
            color,
            flush_each,
            wrote_any: false,
            held: Vec::new(),
        }
    }

    /// Findings held for the end (SARIF).
    pub fn held(&self) -> &[Finding] {
        &self.held
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write> FindingSink for ReportSink<W> {
    fn finding(&mut self, f: &Finding) -> io::Result<()> {
        match self.format {
            Format::Jsonl => json::write_line(f, &mut self.out)?,
            Format::Text => text::write(std::slice::from_ref(f), self.color, &mut self.out)?,
            // The same bytes as the whole array written at once.
            Format::Json => {
                let sep: &[u8] = if self.wrote_any { b",\n" } else { b"[\n" };
                self.out.write_all(sep)?;
                json::write_element(f, &mut self.out)?;
            }
            Format::Sarif => self.held.push(f.clone()),
        }
        self.wrote_any = true;
        if self.flush_each {
            self.out.flush()?;
        }
        Ok(())
    }

    fn finish(&mut self, rules: &RuleSet, run: &RunInfo) -> io::Result<()> {
        match self.format {
            Format::Json if self.wrote_any => self.out.write_all(b"\n]\n")?,
            Format::Json => self.out.write_all(b"[]\n")?,
            Format::Sarif => sarif::write(&self.held, rules, run, &mut self.out)?,
            _ => {}
        }
        self.out.flush()
    }
}
