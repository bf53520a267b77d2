//! Text report for people: `path:line:column  rule  severity`, then the
//! masked snippet; and the run summary.

use std::io::{self, Write};
use std::time::Duration;

use crate::finding::Finding;
use crate::report::summary::LeftOut;
use crate::rules::Severity;

const BOLD: &str = "\x1b[1m";
const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

fn severity_color(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "\x1b[1;31m",
        Severity::High => "\x1b[31m",
        Severity::Medium => "\x1b[33m",
        Severity::Low => "\x1b[36m",
    }
}

pub fn write(findings: &[Finding], color: bool, out: &mut dyn Write) -> io::Result<()> {
    let (bold, dim, reset) = if color {
        (BOLD, DIM, RESET)
    } else {
        ("", "", "")
    };
    for f in findings {
        let sev = if color {
            severity_color(f.severity)
        } else {
            ""
        };
        writeln!(
            out,
            "{bold}{}:{}:{}{reset}  {}  {sev}{}{reset}  {dim}(confidence {}){reset}",
            escape_controls(&f.location()),
            f.line,
            f.column,
            f.rule_id,
            f.severity.as_str(),
            f.confidence.as_str()
        )?;
        if let Some(c) = &f.commit {
            let subject = escape_controls(c.message.lines().next().unwrap_or(""));
            writeln!(
                out,
                "    {dim}commit {} {} <{}> {}: {subject}{reset}",
                &c.id[..c.id.len().min(12)],
                escape_controls(&c.author),
                escape_controls(&c.email),
                c.date
            )?;
        }
        if let Some(i) = &f.image {
            let mut line = format!("image {}", i.reference);
            if let Some(n) = i.layer_index {
                line.push_str(&format!(" layer {n}"));
            }
            if let Some(d) = &i.layer_digest {
                line.push_str(&format!(" ({})", &d[..d.len().min(19)]));
            }
            if let Some(r) = i.removed_in_layer {
                line.push_str(&format!(", deleted in layer {r} but still shipped"));
            }
            writeln!(out, "    {dim}{line}{reset}")?;
            if let Some(c) = &i.created_by {
                let c: String = c.chars().take(100).collect();
                writeln!(out, "    {dim}created by: {}{reset}", escape_controls(&c))?;
            }
        }
        writeln!(out, "    {}", escape_controls(&f.snippet))?;
        if let Some(secret) = &f.secret {
            writeln!(out, "    secret: {}", escape_controls(secret))?;
        }
        if !f.decoded.is_empty() {
            writeln!(out, "    decoded: {}", f.decoded.join(" > "))?;
        }
        if let Some(k) = &f.kubernetes {
            let mut what = format!(
                "{} {}/{}",
                k.kind,
                k.namespace.as_deref().unwrap_or("-"),
                k.name.as_deref().unwrap_or("-")
            );
            if let Some(key) = &k.key {
                what.push_str(&format!(" key {key}"));
            }
            if let Some(c) = &k.container {
                what.push_str(&format!(" container {c}"));
            }
            if let Some(env) = &k.env {
                what.push_str(&format!(" env {env}"));
            }
            if let Some(path) = &k.path {
                what.push_str(&format!(" at {path}"));
            }
            writeln!(out, "    kubernetes: {what}")?;
        }
    }
    Ok(())
}

/// `text` with control characters (ESC, BEL, CR, …; not tab) written as
/// `\x1b`-style escapes: input quoted on a terminal must not move the
/// cursor, clear lines or recolour what follows.
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() && c != '\t') {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() && c != '\t' {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Counts for the summary line.
#[derive(Clone, Debug, Default)]
pub struct SummaryCounts {
    pub files: u64,
    /// What `files` counts, singular (`object` for `cluster`); empty: `file`.
    pub unit: &'static str,
    pub bytes: u64,
    pub skipped: usize,
    pub errors: usize,
    pub elapsed: Duration,
    /// Findings silenced by an inline `leakhound:allow` (or gitleaks/detect-secrets marker).
    pub inline: u64,
    /// Findings silenced by an allowlist.
    pub allowlisted: u64,
    /// Findings left out because the baseline holds their fingerprint.
    pub baselined: usize,
    /// Paths not read on purpose.
    pub left_out: LeftOut,
    /// The option that scans what ignore files leave out, named in the
    /// summary (`--no-ignore` for the command line); `None`: not named.
    pub no_ignore_option: Option<&'static str>,
}

/// The summary people read at the end of a run (written to stderr).
pub fn write_summary(
    findings: &[Finding],
    c: &SummaryCounts,
    out: &mut dyn Write,
) -> io::Result<()> {
    let secs = c.elapsed.as_secs_f64();
    let mb = c.bytes as f64 / 1e6;
    let rate = if secs > 0.0 { mb / secs } else { 0.0 };
    let mut by_sev = Vec::new();
    for s in [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
    ] {
        let n = findings.iter().filter(|f| f.severity == s).count();
        if n > 0 {
            by_sev.push(format!("{n} {}", s.as_str()));
        }
    }
    let sev = if by_sev.is_empty() {
        String::new()
    } else {
        format!(" ({})", by_sev.join(", "))
    };
    let mut quiet = Vec::new();
    if c.baselined > 0 {
        quiet.push(format!("{} in baseline", c.baselined));
    }
    if c.allowlisted > 0 {
        quiet.push(format!("{} allowlisted", c.allowlisted));
    }
    if c.inline > 0 {
        quiet.push(format!("{} allowed inline", c.inline));
    }
    let sev = if quiet.is_empty() {
        sev
    } else {
        format!("{sev}, not reported: {}", quiet.join(", "))
    };
    let mut left = Vec::new();
    let n = c.left_out.ignore_files;
    if n > 0 {
        let hint = c.no_ignore_option.map_or(String::new(), |o| {
            format!(" ({o} scans {})", if n == 1 { "it" } else { "them" })
        });
        left.push(format!("{n} path{} by ignore files{hint}", plural(n)));
    }
    let n = c.left_out.allowlist_paths;
    if n > 0 {
        left.push(format!(
            "{n} file{} by allowlist paths (-v names {})",
            plural(n),
            if n == 1 { "it" } else { "them" }
        ));
    }
    let left = if left.is_empty() {
        String::new()
    } else {
        format!("; left out: {}", left.join(", "))
    };
    writeln!(
        out,
        "leakhound: {} finding{}{sev}; scanned {} {}{}, {mb:.1} MB in {secs:.2}s ({rate:.0} MB/s); {} skipped, {} error{}{left}",
        findings.len(),
        plural(findings.len() as u64),
        c.files,
        if c.unit.is_empty() { "file" } else { c.unit },
        plural(c.files),
        c.skipped,
        c.errors,
        plural(c.errors as u64),
    )
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}
