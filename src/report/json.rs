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

/// One finding as an element of a pretty-printed array (indented by two
/// spaces, no separator): an array written element by element has the
/// bytes of `write_array`. Strings never hold a raw newline, so indenting
/// each line is safe.
pub fn write_element(f: &Finding, out: &mut dyn Write) -> io::Result<()> {
    let text = serde_json::to_string_pretty(f)?;
    for (i, line) in text.lines().enumerate() {
        if i > 0 {
            out.write_all(b"\n")?;
        }
        out.write_all(b"  ")?;
        out.write_all(line.as_bytes())?;
    }
    Ok(())
}

/// One finding as one JSON line (also used by streaming sources).
pub fn write_line(f: &Finding, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer(&mut *out, f)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_array_written_element_by_element_is_the_pretty_array() {
        let f = Finding {
            rule_id: "r".into(),
            rule_name: "R \"q\"\nx".into(),
            severity: crate::rules::Severity::High,
            confidence: crate::rules::Confidence::Medium,
            path: Some("a\nb".into()),
            line: 1,
            column: 2,
            end_line: 1,
            end_column: 9,
            snippet: "k=*****".into(),
            secret: None,
            fingerprint: "00".into(),
            raw_secret: Vec::new(),
            entropy: 3.5,
            decoded: vec!["base64".into()],
            commit: None,
            image: None,
            kubernetes: None,
            timestamp: Some("2026-12-05T10:00:00.123456789Z".into()),
            span: 0..0,
        };
        for n in [0, 1, 3] {
            let all = vec![f.clone(); n];
            let mut whole = Vec::new();
            write_array(&all, &mut whole).unwrap();
            let mut sink = crate::report::sink::ReportSink::new(
                Vec::new(),
                crate::report::Format::Json,
                false,
                false,
            );
            use crate::report::sink::FindingSink;
            for f in &all {
                sink.finding(f).unwrap();
            }
            let rules = crate::rules::RuleSet::new(Vec::new(), false).unwrap();
            sink.finish(&rules, &crate::report::RunInfo::new("scan"))
                .unwrap();
            assert_eq!(
                String::from_utf8(sink.into_inner()).unwrap(),
                String::from_utf8(whole).unwrap()
            );
        }
    }
}
