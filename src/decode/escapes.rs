//! JSON and JavaScript string escapes: `\"`, `\\`, `\/`, `\n`, `\t`,
//! `\uXXXX` (with surrogate pairs) and `\xHH`. Structured logs escape
//! URLs (`https:\/\/user:pass@host`) and quotes, which hides secrets from
//! patterns written for the plain text.

use super::Decoded;

fn hex_val(b: u8) -> Option<u32> {
    (b as char).to_digit(16)
}

fn hex_at(data: &[u8], at: usize, len: usize) -> Option<u32> {
    let digits = data.get(at..at + len)?;
    digits
        .iter()
        .try_fold(0u32, |acc, &d| Some(acc * 16 + hex_val(d)?))
}

/// Decodes escapes in the lines of `data` that hold a backslash; `None`
/// when no line does (so callers skip the second scan on the common,
/// escape-free input). Lines without escapes are left out of the view:
/// they were scanned as they are, and leaving them out keeps the cost of
/// the second scan proportional to the escaped lines.
pub fn unescape(data: &[u8]) -> Option<Decoded> {
    unescape_lines(data, |_| true)
}

/// Like `unescape`, only for lines with an escape that structured data
/// uses to hide text (`\"`, `\/`, `\u`): the generic decoder for files,
/// where source code's `\n` and `\t` in every other string line would
/// double the scanned bytes for nothing.
pub fn unescape_structured(data: &[u8]) -> Option<Decoded> {
    unescape_lines(data, |after| matches!(after, Some(b'"' | b'/' | b'u')))
}

/// Decodes the lines holding a backslash for which `wanted(next byte)`.
/// Works from the backslashes (found with memchr), not from every line, so
/// a file with a few escapes costs little more than one memchr pass.
fn unescape_lines(data: &[u8], wanted: impl Fn(Option<&u8>) -> bool) -> Option<Decoded> {
    let mut out = Vec::new();
    let mut map = Vec::new();
    let mut changed = false;
    let mut view_end = 0;
    let mut covered = 0;
    for at in memchr::memchr_iter(b'\\', data) {
        if at < covered || !wanted(data.get(at + 1)) {
            continue;
        }
        let line_start = memchr::memrchr(b'\n', &data[..at]).map_or(0, |i| i + 1);
        let line_end = memchr::memchr(b'\n', &data[at..]).map_or(data.len(), |i| at + i + 1);
        changed |= unescape_into(data, line_start, line_end, &mut out, &mut map);
        view_end = line_end;
        covered = line_end;
    }
    map.push(view_end);
    changed.then(|| Decoded::new("json-escape", out, map))
}

/// Decodes `data[from..to]` onto `out`/`map`; true if any escape decoded.
fn unescape_into(
    data: &[u8],
    from: usize,
    to: usize,
    out: &mut Vec<u8>,
    map: &mut Vec<usize>,
) -> bool {
    let data = &data[..to];
    let mut changed = false;
    let mut i = from;
    while i < data.len() {
        let b = data[i];
        if b != b'\\' || i + 1 >= data.len() {
            out.push(b);
            map.push(i);
            i += 1;
            continue;
        }
        let (decoded, len): (Option<u32>, usize) = match data[i + 1] {
            b'"' => (Some('"' as u32), 2),
            b'\'' => (Some('\'' as u32), 2),
            b'\\' => (Some('\\' as u32), 2),
            b'/' => (Some('/' as u32), 2),
            b'n' => (Some('\n' as u32), 2),
            b't' => (Some('\t' as u32), 2),
            b'r' => (Some('\r' as u32), 2),
            b'x' => (hex_at(data, i + 2, 2), 4),
            b'u' => match hex_at(data, i + 2, 4) {
                Some(hi @ 0xD800..=0xDBFF) => {
                    // A surrogate pair: \uD83D\uDE00.
                    let lo = (data.get(i + 6..i + 8) == Some(b"\\u"))
                        .then(|| hex_at(data, i + 8, 4))
                        .flatten()
                        .filter(|lo| (0xDC00..=0xDFFF).contains(lo));
                    match lo {
                        Some(lo) => (Some(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)), 12),
                        None => (None, 0),
                    }
                }
                other => (other, 6),
            },
            _ => (None, 0),
        };
        match decoded.and_then(char::from_u32) {
            Some(c) => {
                let mut buf = [0u8; 4];
                for &byte in c.encode_utf8(&mut buf).as_bytes() {
                    out.push(byte);
                    map.push(i);
                }
                changed = true;
                i += len;
            }
            None => {
                out.push(b);
                map.push(i);
                i += 1;
            }
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::unescape;

    #[test]
    fn escapes_decode_and_positions_map_back() {
        let raw = br#"{"u":"https:\/\/bot:s3cr\u0065t@h\"x"}"#;
        let d = unescape(raw).unwrap();
        assert_eq!(d.data, br#"{"u":"https://bot:s3cret@h"x"}"#);
        let at = d.data.windows(6).position(|w| w == b"s3cret").unwrap();
        let (s, e) = d.original_span(at, at + 6);
        assert_eq!(&raw[s..e], br"s3cr\u0065t");
    }

    #[test]
    fn only_lines_with_escapes_are_in_the_view() {
        let raw = b"plain ghp line\nurl https:\\/\\/x\nplain again";
        let d = unescape(raw).unwrap();
        assert_eq!(d.data, b"url https://x\n");
        let (s, e) = d.original_span(4, 13);
        assert_eq!(&raw[s..e], br"https:\/\/x");
    }

    #[test]
    fn nothing_to_decode_gives_none() {
        assert!(unescape(b"plain text").is_none());
        assert!(unescape(br"C:\path\qq").is_none());
        assert!(unescape(b"trailing \\").is_none());
    }

    #[test]
    fn surrogate_pairs_and_hex_escapes() {
        let d = unescape(br"a\uD83D\uDE00b\x41").unwrap();
        assert_eq!(String::from_utf8(d.data.clone()).unwrap(), "a\u{1F600}bA");
    }
}
