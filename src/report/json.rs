//! JSON (one array) and JSONL (one object per line) reports.

use std::io::{self, Write};

use crate::finding::Finding;

pub fn write_array(findings: &[Finding], out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, findings)?;
    out.write_all(b"\n")
}

pub fn write_lines(findings: &[Finding], out: &mut dyn Write) -> io::Result<()> {
    for f in findings {
        write_line(f, out)?;
    }
    Ok(())
}

/// One finding as one JSON line (also used by streaming sources).
pub fn write_line(f: &Finding, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer(&mut *out, f)?;
    out.write_all(b"\n")
}
