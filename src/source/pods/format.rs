//! The two container log formats the kubelet's directory holds, one record
//! per `\n`-terminated line:
//!
//! - CRI (containerd, CRI-O): `<RFC3339Nano time> <stdout|stderr> <tags>
//!   <message>`, where the tag `P` marks a partial record (the runtime cut a
//!   long line; the next records continue it) and `F` a full one.
//! - Docker's json-file: `{"log":"…\n","stream":"stdout","time":"…"}`; a
//!   `log` without the trailing newline is partial.
//!
//! A file's format is told by its first byte (`{` is json-file).

use std::borrow::Cow;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Cri,
    JsonFile,
}

impl LogFormat {
    /// The format of a file whose first byte is `first`.
    pub fn sniff(first: u8) -> Self {
        if first == b'{' {
            LogFormat::JsonFile
        } else {
            LogFormat::Cri
        }
    }
}

/// One record of a log file.
#[derive(Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// The runtime's timestamp, as written; `None` for a malformed line.
    pub time: Option<Cow<'a, str>>,
    /// `stdout` or `stderr` (`None` when the line does not say).
    pub stream: Option<Cow<'a, str>>,
    /// The record continues in the next one.
    pub partial: bool,
    /// The application's bytes, without the record's framing or newline.
    pub message: Cow<'a, [u8]>,
    /// The line did not follow the format; it is scanned whole.
    pub malformed: bool,
}

/// Parses one record (`line` without its `\n`). A line that does not
/// follow the format is not dropped: it becomes a full record of itself.
pub fn parse(format: LogFormat, line: &[u8]) -> Record<'_> {
    let parsed = match format {
        LogFormat::Cri => parse_cri(line),
        LogFormat::JsonFile => parse_json(line),
    };
    parsed.unwrap_or(Record {
        time: None,
        stream: None,
        partial: false,
        message: Cow::Borrowed(line),
        malformed: true,
    })
}

fn parse_cri(line: &[u8]) -> Option<Record<'_>> {
    let sp = memchr::memchr(b' ', line)?;
    let time = std::str::from_utf8(&line[..sp]).ok()?;
    if !time.starts_with(|c: char| c.is_ascii_digit()) || !time.contains('T') {
        return None;
    }
    let rest = &line[sp + 1..];
    let sp = memchr::memchr(b' ', rest)?;
    let stream = std::str::from_utf8(&rest[..sp]).ok()?;
    if stream != "stdout" && stream != "stderr" {
        return None;
    }
    let rest = &rest[sp + 1..];
    let (tags, message) = match memchr::memchr(b' ', rest) {
        Some(sp) => (&rest[..sp], &rest[sp + 1..]),
        None => (rest, &rest[rest.len()..]),
    };
    // Tags are `:`-separated; the first is P or F.
    let partial = match tags.split(|&b| b == b':').next()? {
        b"P" => true,
        b"F" => false,
        _ => return None,
    };
    Some(Record {
        time: Some(Cow::Borrowed(time)),
        stream: Some(Cow::Borrowed(stream)),
        partial,
        message: Cow::Borrowed(message),
        malformed: false,
    })
}

#[derive(serde::Deserialize)]
struct JsonRecord<'a> {
    #[serde(borrow)]
    log: Cow<'a, str>,
    #[serde(borrow, default)]
    stream: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    time: Option<Cow<'a, str>>,
}

fn parse_json(line: &[u8]) -> Option<Record<'_>> {
    let r: JsonRecord<'_> = serde_json::from_slice(line).ok()?;
    let (partial, message) = match r.log {
        Cow::Borrowed(s) => match s.strip_suffix('\n') {
            Some(m) => (false, Cow::Borrowed(m.as_bytes())),
            None => (true, Cow::Borrowed(s.as_bytes())),
        },
        Cow::Owned(mut s) => {
            let partial = !s.ends_with('\n');
            if !partial {
                s.pop();
            }
            (partial, Cow::Owned(s.into_bytes()))
        }
    };
    Some(Record {
        time: r.time,
        stream: r.stream,
        partial,
        message,
        malformed: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cri_records() {
        let r = parse(
            LogFormat::Cri,
            b"2024-05-01T10:00:00.123456789Z stdout F hello world",
        );
        assert_eq!(r.time.as_deref(), Some("2024-05-01T10:00:00.123456789Z"));
        assert_eq!(r.stream.as_deref(), Some("stdout"));
        assert!(!r.partial && !r.malformed);
        assert_eq!(&*r.message, b"hello world");
        let r = parse(LogFormat::Cri, b"2024-05-01T10:00:00Z stderr P part ");
        assert!(r.partial);
        assert_eq!(&*r.message, b"part ");
        // An empty full record ends a partial line; tags may carry more.
        let r = parse(LogFormat::Cri, b"2024-05-01T10:00:00+02:00 stdout F");
        assert_eq!((&*r.message, r.partial), (&b""[..], false));
        let r = parse(LogFormat::Cri, b"2024-05-01T10:00:00Z stdout P:x msg");
        assert!(r.partial);
    }

    #[test]
    fn malformed_lines_are_kept_whole() {
        for line in [
            &b"just text"[..],
            b"2024-05-01T10:00:00Z stdin F x",
            b"2024 stdout F x",
        ] {
            let r = parse(LogFormat::Cri, line);
            assert!(r.malformed);
            assert_eq!(&*r.message, line);
        }
        let r = parse(LogFormat::JsonFile, b"{\"no\":\"log\"}");
        assert!(r.malformed);
    }

    #[test]
    fn json_file_records() {
        let r = parse(
            LogFormat::JsonFile,
            br#"{"log":"token=\"abc\"\n","stream":"stderr","time":"2024-05-01T10:00:00.5Z"}"#,
        );
        assert_eq!(&*r.message, b"token=\"abc\"");
        assert!(!r.partial);
        assert_eq!(r.stream.as_deref(), Some("stderr"));
        assert_eq!(r.time.as_deref(), Some("2024-05-01T10:00:00.5Z"));
        let r = parse(
            LogFormat::JsonFile,
            br#"{"log":"no newline","stream":"stdout"}"#,
        );
        assert!(r.partial);
        assert_eq!(LogFormat::sniff(b'{'), LogFormat::JsonFile);
        assert_eq!(LogFormat::sniff(b'2'), LogFormat::Cri);
    }
}
