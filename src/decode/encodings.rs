//! Generic decoders for any bytes: base64 and base64url runs, hex runs,
//! percent-encoding, JSON/JS string escapes, and gzip/zlib data (as found
//! inside base64). Each is gated by a cheap trigger (a run of at least 16
//! alphabet characters, a `%XX` escape, a backslash, a compression magic) so
//! plain text costs one pass of byte-class lookups.
//!
//! Decoded runs that are mostly text are joined into one view per encoding
//! (one newline between runs), so a file with many encoded values costs one
//! more scan, not one per value.

use std::io::Read;

use super::runs::{CLASS, DIGIT, LOWER, NON_HEX, STD_SYM, UPPER, URL_SYM, long_runs};
use super::{Budget, Decoded, escapes};

/// Shortest base64 run decoded: 16 characters hold 12 bytes, enough for an
/// encoded AWS access key id prefix (`QUtJQ...`) and short passwords.
pub const MIN_BASE64: usize = 16;
/// Shortest hex run decoded (16 bytes).
pub const MIN_HEX: usize = 32;

/// The 6-bit value of a base64 or base64url character.
fn sextet(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    }
}

/// Decodes base64 (standard or url alphabet, padding optional), ignoring
/// ASCII whitespace (Kubernetes and PEM values are wrapped). The error says
/// what is wrong and where.
pub fn base64_decode(text: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 3);
    let mut acc = 0u32;
    let mut bits = 0;
    let mut padding = 0;
    let mut chars = 0usize;
    for (i, &c) in text.iter().enumerate() {
        if c.is_ascii_whitespace() {
            continue;
        }
        if c == b'=' {
            padding += 1;
            continue;
        }
        if padding > 0 {
            return Err(format!("data after '=' padding at character {}", i + 1));
        }
        let v = sextet(c).ok_or_else(|| {
            format!(
                "character {:?} at position {} is not base64",
                c as char,
                i + 1
            )
        })?;
        chars += 1;
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    if chars % 4 == 1 {
        return Err(format!(
            "{chars} base64 characters cannot be a whole encoding"
        ));
    }
    if padding > 2 {
        return Err("more than two '=' padding characters".into());
    }
    Ok(out)
}

/// True if `data` starts with a gzip or zlib header.
pub fn is_compressed(data: &[u8]) -> bool {
    match data {
        [0x1f, 0x8b, 8, ..] => true,
        // zlib: deflate with a 32 KiB window at one of the four levels
        // zlib writes (a weaker check matches random bytes too often).
        [0x78, 0x01 | 0x5e | 0x9c | 0xda, ..] => true,
        _ => false,
    }
}

/// True if `data` is compressed or is one base64 string as a whole: what
/// the depth limit stops from being decoded further.
pub fn looks_encoded(data: &[u8]) -> bool {
    let t = data.trim_ascii();
    is_compressed(data)
        || (t.len() >= MIN_BASE64 && t.iter().all(|&c| CLASS[c as usize] != 0 || c == b'='))
}

/// Mostly text: almost no control bytes, and valid UTF-8 or nearly all
/// ASCII. Decoded bytes that fail this are binary and not scanned.
pub fn is_mostly_text(d: &[u8]) -> bool {
    if d.is_empty() {
        return false;
    }
    let controls = d
        .iter()
        .filter(|&&b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0x7f)
        .count();
    if controls * 50 > d.len() {
        return false;
    }
    std::str::from_utf8(d).is_ok() || d.iter().filter(|&&b| b >= 0x80).count() * 10 <= d.len()
}

/// Inflates gzip or zlib `data` into at most the budget's bytes. Returns
/// the step name, what was inflated, and a problem (truncated or corrupt
/// stream, or the budget ran out) if there was one.
pub fn inflate(data: &[u8], budget: &mut Budget) -> (&'static str, Vec<u8>, Option<String>) {
    let gzip = data.starts_with(&[0x1f, 0x8b]);
    let step = if gzip { "gzip" } else { "zlib" };
    let limit = budget.left() as u64;
    let mut out = Vec::new();
    let res = if gzip {
        flate2::read::MultiGzDecoder::new(data)
            .take(limit + 1)
            .read_to_end(&mut out)
    } else {
        flate2::read::ZlibDecoder::new(data)
            .take(limit + 1)
            .read_to_end(&mut out)
    };
    // A zlib header that inflates to nothing was two bytes that looked like
    // one; a gzip magic is three bytes and worth a note.
    let mut problem = res
        .err()
        .filter(|_| gzip || !out.is_empty())
        .map(|e| format!("{step} data is truncated or corrupt ({e})"));
    if out.len() as u64 > limit {
        out.truncate(limit as usize);
        problem = Some(format!(
            "{step} data expands past the decoded-bytes budget ({} bytes of {} compressed \
             bytes); only the first part was scanned",
            limit,
            data.len()
        ));
    }
    budget.take(out.len().min(limit as usize));
    (step, out, problem)
}

/// A decoded run collected into one joined view per encoding.
struct Joined {
    step: &'static str,
    data: Vec<u8>,
    map: Vec<usize>,
}

impl Joined {
    fn new(step: &'static str) -> Self {
        Joined {
            step,
            data: Vec::new(),
            map: Vec::new(),
        }
    }

    /// Appends a decoded run: `bytes[k]` came from input offset `at(k)`,
    /// the run ends at input offset `end`.
    fn push(&mut self, bytes: &[u8], at: impl Fn(usize) -> usize, end: usize) {
        for (k, &b) in bytes.iter().enumerate() {
            self.data.push(b);
            self.map.push(at(k));
        }
        // The separator maps to the run's end, so a match never spans runs
        // in the original.
        self.data.push(b'\n');
        self.map.push(end);
    }

    fn finish(mut self, out: &mut Vec<Decoded>) {
        if self.data.is_empty() {
            return;
        }
        let end = *self.map.last().unwrap_or(&0);
        self.map.push(end);
        out.push(Decoded::new(self.step, self.data, self.map));
    }
}

/// Every decoded view of `data` worth looking at, each with its map to
/// `data`'s offsets. Compressed data is inflated whole; otherwise runs of
/// base64, base64url and hex, percent-encoded tokens and escaped lines.
pub fn decode(data: &[u8], budget: &mut Budget, notes: &mut Vec<String>) -> Vec<Decoded> {
    let mut out = Vec::new();
    if is_compressed(data) {
        let (step, bytes, problem) = inflate(data, budget);
        if let Some(p) = problem {
            notes.push(p);
        }
        if !bytes.is_empty() {
            out.push(Decoded::spanning(step, bytes, 0, data.len()));
        }
        return out;
    }
    runs(data, budget, &mut out);
    percent(data, budget, &mut out);
    if let Some(d) = escapes::unescape_structured(data)
        && budget.take(d.data.len())
    {
        out.push(d);
    }
    out
}

/// Base64, base64url and hex runs.
fn runs(data: &[u8], budget: &mut Budget, out: &mut Vec<Decoded>) {
    let mut b64 = Joined::new("base64");
    let mut url = Joined::new("base64url");
    let mut hex = Joined::new("hex");
    long_runs(data, |start, i, classes| {
        if budget.left() == 0 {
            return;
        }
        let mut end = i;
        while end < data.len() && end - i < 2 && data[end] == b'=' {
            end += 1;
        }
        let run = &data[start..i];
        let len = run.len();
        let has = |c: u8| classes & c != 0;
        if !has(NON_HEX) && len >= MIN_HEX && has(DIGIT) && !(has(LOWER) && has(UPPER)) {
            // Hashes and ids (checksum files are full of them) decode to
            // binary: the first 16 bytes tell before the whole run is done.
            let text_start = run[..32]
                .chunks_exact(2)
                .map(|p| (sextet_hex(p[0]) << 4) | sextet_hex(p[1]))
                .all(|b| (0x20..0x7f).contains(&b) || matches!(b, b'\t' | b'\n' | b'\r'));
            if !text_start {
                return;
            }
            let bytes: Vec<u8> = run
                .chunks_exact(2)
                .map(|p| (sextet_hex(p[0]) << 4) | sextet_hex(p[1]))
                .collect();
            if is_mostly_text(&bytes) && budget.take(bytes.len()) {
                hex.push(&bytes, |k| start + 2 * k, i);
            }
            return;
        }
        // Base64 of text (and of compressed data) mixes upper and lower
        // case; snake_case and SHOUTING_CASE identifiers do not.
        if !(has(LOWER) && has(UPPER)) || has(STD_SYM) && has(URL_SYM) {
            return;
        }
        if !plausible_start(run) {
            return;
        }
        // A run of 4k+1 characters has one character too many.
        let usable = &run[..len - usize::from(len % 4 == 1)];
        let Ok(bytes) = base64_decode(usable) else {
            return;
        };
        let joined = if has(URL_SYM) { &mut url } else { &mut b64 };
        let at = |k: usize| start + (k / 3) * 4 + k % 3;
        if is_compressed(&bytes) {
            if budget.take(bytes.len()) {
                let map: Vec<usize> = (0..bytes.len())
                    .map(at)
                    .chain(std::iter::once(end))
                    .collect();
                out.push(Decoded::new(joined.step, bytes, map));
            }
        } else if is_mostly_text(&bytes) && budget.take(bytes.len()) {
            joined.push(&bytes, at, end);
        }
    });
    b64.finish(out);
    url.finish(out);
    hex.finish(out);
}

/// The first 16 characters decode to text or to a compression header:
/// rejects most runs before the whole run is decoded.
fn plausible_start(run: &[u8]) -> bool {
    let mut acc = 0u32;
    let mut bytes = [0u8; 12];
    for (g, chunk) in run[..16].chunks_exact(4).enumerate() {
        for &c in chunk {
            acc = (acc << 6) | sextet(c).unwrap_or(0) as u32;
        }
        bytes[g * 3] = (acc >> 16) as u8;
        bytes[g * 3 + 1] = (acc >> 8) as u8;
        bytes[g * 3 + 2] = acc as u8;
    }
    is_compressed(&bytes)
        || !bytes
            .iter()
            .any(|&b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0x7f)
}

fn sextet_hex(c: u8) -> u8 {
    (c as char).to_digit(16).unwrap_or(0) as u8
}

/// Bytes that may be part of a URL or form value around a `%XX` escape.
fn is_token_byte(b: u8) -> bool {
    b > 0x20 && b < 0x7f && !b"\"'<>`\\{}|^".contains(&b)
}

/// Percent-encoded tokens: a token (a run of URL bytes) is decoded when it
/// holds an escape of a byte that URLs must escape (`%40` `@`, `%3A` `:`,
/// `%2F` `/`...), so `printf("%d")` and `100%` stay untouched.
fn percent(data: &[u8], budget: &mut Budget, out: &mut Vec<Decoded>) {
    let mut view = Joined::new("percent");
    let mut covered = 0;
    for p in memchr::memchr_iter(b'%', data) {
        if p < covered {
            continue;
        }
        let Some(v) = hex_pair(data, p + 1) else {
            continue;
        };
        if v.is_ascii_alphanumeric() || v < 0x20 {
            continue;
        }
        let mut start = p;
        while start > 0 && is_token_byte(data[start - 1]) {
            start -= 1;
        }
        let mut end = p;
        while end < data.len() && is_token_byte(data[end]) {
            end += 1;
        }
        covered = end;
        let mut bytes = Vec::with_capacity(end - start);
        let mut at = Vec::with_capacity(end - start);
        let mut i = start;
        while i < end {
            match (data[i], hex_pair(data, i + 1)) {
                (b'%', Some(v)) if i + 2 < end => {
                    bytes.push(v);
                    at.push(i);
                    i += 3;
                }
                (b, _) => {
                    bytes.push(b);
                    at.push(i);
                    i += 1;
                }
            }
        }
        if budget.take(bytes.len()) {
            view.push(&bytes, |k| at[k], end);
        }
    }
    view.finish(out);
}

fn hex_pair(data: &[u8], at: usize) -> Option<u8> {
    let h = (*data.get(at)? as char).to_digit(16)?;
    let l = (*data.get(at + 1)? as char).to_digit(16)?;
    Some((h * 16 + l) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &[u8]) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in s.chunks(3) {
            let n = chunk.len();
            let v = (chunk[0] as u32) << 16
                | (*chunk.get(1).unwrap_or(&0) as u32) << 8
                | *chunk.get(2).unwrap_or(&0) as u32;
            for k in 0..4 {
                if k <= n {
                    out.push(A[(v >> (18 - 6 * k) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    fn decode_all(data: &[u8]) -> Vec<Decoded> {
        decode(data, &mut Budget::new(1 << 20), &mut Vec::new())
    }

    #[test]
    fn base64_runs_decode_and_map_each_byte_back() {
        let secret = format!("AKIA{}", "QX3T7RZ2KPLM4WNB");
        let enc = b64(format!("key={secret}").as_bytes());
        let raw = format!("aws: {enc}  # encoded\n");
        let views = decode_all(raw.as_bytes());
        let v = views.iter().find(|v| v.step == "base64").unwrap();
        let at = v
            .data
            .windows(secret.len())
            .position(|w| w == secret.as_bytes())
            .unwrap();
        let (s, e) = v.original_span(at, at + secret.len());
        // The secret's 20 bytes start at decoded byte 4: inside the second
        // group of four characters, and end at the run's end.
        assert_eq!(s, 5 + 5);
        assert!(e <= 5 + enc.len() && e > s);
    }

    proptest::proptest! {
        /// Wherever a base64 run sits in a line, every decoded byte maps
        /// back to the character group that encodes it, so a secret found
        /// in the view points at its encoded form on the original line.
        #[test]
        fn decoded_positions_map_back_to_their_encoding(
            before in "[ -~&&[^A-Za-z0-9+/=_-]]{0,3}[ -~]{0,40} ",
            secret in "[A-Za-z0-9]{12,40}",
            after in " [ -~]{0,40}",
            lines in 0usize..4,
        ) {
            let plain = format!("key={secret}");
            let enc = b64(plain.as_bytes());
            let raw = format!("{}{before}{enc}{after}", "x\n".repeat(lines));
            let views = decode_all(raw.as_bytes());
            let v = views.iter().find(|v| {
                v.step == "base64"
                    && v.data.windows(plain.len()).any(|w| w == plain.as_bytes())
            });
            let v = v.expect("the run is decoded");
            let at = v.data.windows(plain.len()).position(|w| w == plain.as_bytes()).unwrap();
            let run_start = raw.find(&enc).unwrap();
            for k in 0..plain.len() {
                let (s, _) = v.original_span(at + k, at + k + 1);
                proptest::prop_assert_eq!(s, run_start + (k / 3) * 4 + k % 3);
            }
            let (s, e) = v.original_span(at, at + plain.len());
            proptest::prop_assert_eq!(s, run_start);
            proptest::prop_assert_eq!(e, run_start + enc.len());
        }
    }

    #[test]
    fn identifiers_and_binary_are_left_alone() {
        assert!(decode_all(b"static int drm_atomic_helper_commit_tail_rpm(void);").is_empty());
        // Random base64 that decodes to binary is not a text view.
        assert!(decode_all(b"sha: 3q2+7wABAgMEBQYHCAkKCwwNDg8Q").is_empty());
        assert!(decode_all(br#"printf("%d items, 100%\n", n);"#).len() <= 1);
    }

    #[test]
    fn gzip_inside_base64_is_inflated() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, b"password=hunter2-but-longer").unwrap();
        let gz = gz.finish().unwrap();
        let raw = format!("blob: {}\n", b64(&gz));
        let views = decode_all(raw.as_bytes());
        let inner = views.iter().find(|v| v.step == "base64").unwrap();
        assert!(is_compressed(&inner.data));
        let text = decode_all(&inner.data);
        assert_eq!(text[0].step, "gzip");
        assert_eq!(text[0].data, b"password=hunter2-but-longer");
    }

    #[test]
    fn truncated_gzip_is_a_note_not_a_panic() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, &b"line of text\n".repeat(100)).unwrap();
        let gz = gz.finish().unwrap();
        let mut notes = Vec::new();
        let _ = decode(&gz[..gz.len() / 2], &mut Budget::new(1 << 20), &mut notes);
        assert!(notes[0].contains("truncated or corrupt"), "{notes:?}");
    }

    #[test]
    fn gzip_bomb_stops_at_the_budget() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut gz, &vec![b'a'; 4 << 20]).unwrap();
        let gz = gz.finish().unwrap();
        let mut notes = Vec::new();
        let mut budget = Budget::new(64 << 10);
        let views = decode(&gz, &mut budget, &mut notes);
        assert_eq!(views[0].data.len(), 64 << 10);
        assert!(notes[0].contains("budget"), "{notes:?}");
    }

    #[test]
    fn percent_and_hex_runs_decode() {
        let raw = b"url=https://bot:p%40ss%3Aword@host/x and 70617373776f72643d68756e74657232"; // leakhound:allow
        let views = decode_all(raw);
        let p = views.iter().find(|v| v.step == "percent").unwrap();
        let text = String::from_utf8_lossy(&p.data);
        assert!(text.contains("bot:p@ss:word@host"), "{text}");
        let at = p.data.iter().position(|&b| b == b'@').unwrap();
        let (s, _) = p.original_span(at, at + 1);
        assert_eq!(&raw[s..s + 3], b"%40");
        let h = views.iter().find(|v| v.step == "hex").unwrap();
        assert_eq!(h.data, b"password=hunter2\n");
    }

    #[test]
    fn base64_errors_name_the_problem() {
        assert!(
            base64_decode(b"aGVsbG8*")
                .unwrap_err()
                .contains("not base64")
        );
        assert!(base64_decode(b"aGVsb").unwrap_err().contains("whole"));
        assert_eq!(base64_decode(b"aGVs\n bG8=").unwrap(), b"hello");
    }
}
