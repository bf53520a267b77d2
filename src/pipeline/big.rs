//! Large units (files and Git blobs over `STREAM_ABOVE` bytes) are scanned
//! from a reader in overlapping windows instead of being held whole, so
//! `--max-file-size` bounds what is scanned, not the memory it costs: a
//! worker holds at most one window plus what the engine decodes from it.
//!
//! Findings are those of the whole unit (positions, lines, columns): each
//! window is scanned whole, and a finding belongs to the window its secret
//! starts in, before the window's *boundary*. The next window starts at that
//! boundary and the current one goes on for at least `overlap` bytes past
//! it (the longest match a rule can have, `engine::MAX_MATCH`, with room for
//! encoded runs), so every match owned by a window lies wholly inside it. A
//! boundary is put where a whole-unit scan would not see a difference: at a
//! YAML document start (`---`) when one is near, else at a line start, so a
//! window never begins inside a token or a Kubernetes manifest that fits in
//! a window. What crosses a boundary is reported by the window it starts
//! in, and the next window drops a match that overlaps it.
//!
//! Limits of windows (documented in the README): a decoded run (base64,
//! hex, ...) longer than the overlap, a YAML document longer than a window
//! and `scope = "blob"` rules whose keyword is in another window are seen
//! per window; the decoding budget (`--max-decoded-size`) applies per
//! window.

use std::collections::BTreeSet;
use std::io::{self, Read};

use crate::blob::Origin;
use crate::engine::{Scanner, Scratch, Silenced};
use crate::finding::Finding;
use crate::notice::Notice;

use super::stream::Cursor;

/// Units larger than this are streamed (smaller ones are read whole, as a
/// whole read is the fastest way to scan them).
pub const STREAM_ABOVE: u64 = 32 << 20;

/// Bytes of one window.
pub const WINDOW: usize = 16 << 20;

/// Bytes a window goes on past its boundary: the longest match plus room
/// for encoded runs (base64 of a PEM key, a JWT) crossing it.
pub const OVERLAP: usize = 1 << 20;

/// Context a window keeps before its part (a proximity rule's keyword may
/// sit a few hundred bytes before the secret, a line start up to 8 KiB).
const LOOKBACK: usize = 64 << 10;

/// Bytes read before deciding whether a large unit is an archive (`ustar`
/// sits at byte 257 of a tar).
pub const SNIFF: usize = 512;

/// What a windowed scan found and counted.
#[derive(Debug, Default)]
pub struct Windowed {
    pub findings: Vec<Finding>,
    /// Decode-limit notices, each reason once.
    pub notices: Vec<Notice>,
    pub silenced: Silenced,
    pub keyword_hits: bool,
    /// Bytes scanned.
    pub bytes: u64,
    /// The first bytes had a NUL (binary, as `pipeline::is_binary` says).
    pub binary: bool,
    /// The read that failed, if one did: everything before it was scanned.
    pub error: Option<io::Error>,
}

/// Scans `reader` to its end in windows of `window` bytes overlapping by
/// `overlap` (`window >= 4 * overlap`); see the module's comment.
pub fn scan_windows(
    scanner: &Scanner,
    origin: &Origin,
    reader: &mut dyn Read,
    window: usize,
    overlap: usize,
    scratch: &mut Scratch,
) -> Windowed {
    assert!(overlap > 0 && window >= 4 * overlap, "window too small");
    let mut out = Windowed::default();
    let mut notices = BTreeSet::new();
    let mut buf: Vec<u8> = Vec::with_capacity(window);
    let mut len = 0;
    buf.resize(window, 0);
    // Offset and position of `buf[0]` in the unit.
    let mut base = 0usize;
    let mut cursor = Cursor { line: 1, column: 0 };
    // End (unit offset) of the last finding kept: a later window drops
    // what overlaps it, as a whole-unit scan keeps one of overlapping
    // secrets.
    let mut reach = 0usize;
    // Bytes at the start of the buffer that an earlier window owned: kept
    // as context (a proximity rule's keyword, the start of a line).
    let mut owned_before = 0usize;
    let lookback = (overlap / 2).min(LOOKBACK);
    let mut first = true;
    let mut eof = false;
    loop {
        while !eof && len < window {
            match reader.read(&mut buf[len..]) {
                Ok(0) => eof = true,
                Ok(n) => len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    out.error = Some(e);
                    eof = true;
                }
            }
        }
        if len <= owned_before {
            break;
        }
        if first {
            out.binary = memchr::memchr(0, &buf[..len.min(super::BINARY_SNIFF)]).is_some();
            first = false;
        }
        let (end, boundary, doc) = if eof {
            (len, len, false)
        } else {
            cut(&buf[..len], overlap)
        };
        let data = &buf[..end];
        let r = scanner.scan(origin, data, scratch);
        out.keyword_hits |= r.keyword_hits;
        out.silenced.add(r.silenced);
        notices.extend(r.notices.into_iter().map(|n| n.reason));
        let before = reach;
        let mut found: Vec<Finding> = r
            .findings
            .into_iter()
            .filter(|f| {
                (owned_before..boundary).contains(&f.span.start) && base + f.span.start >= before
            })
            .collect();
        found.sort_by_key(|f| f.span.start);
        for mut f in found {
            f.span = base + f.span.start..base + f.span.end;
            cursor.shift(&mut f);
            reach = reach.max(f.span.end);
            out.findings.push(f);
        }
        out.bytes = (base + boundary) as u64;
        if eof && boundary == len {
            break;
        }
        // The next window starts at the boundary when it is a document
        // start, else a little before it at a line start, for context.
        let keep = if doc {
            boundary
        } else {
            let from = boundary - lookback;
            match memchr::memrchr(b'\n', &buf[from - lookback..from]) {
                Some(i) => from - lookback + i + 1,
                None => from,
            }
        };
        cursor.advance(&buf[..keep]);
        buf.copy_within(keep..len, 0);
        len -= keep;
        base += keep;
        owned_before = boundary - keep;
    }
    out.notices = notices
        .into_iter()
        .map(|reason| {
            Notice::new(
                crate::notice::NoticeKind::DecodeLimit,
                origin.to_string(),
                reason,
            )
        })
        .collect();
    out
}

/// Where a full buffer is scanned to (`end`: after its last line break
/// when that is within `overlap` of its end) and where its window's
/// ownership ends (`boundary`: at least
/// `overlap` before `end`, at a document start in the last quarter of the
/// buffer, else a line start within another `overlap` before that).
fn cut(buf: &[u8], overlap: usize) -> (usize, usize, bool) {
    let len = buf.len();
    let end = match memchr::memrchr(b'\n', &buf[len - overlap..]) {
        Some(i) => len - overlap + i + 1,
        None => len,
    };
    let target = end - overlap;
    let region = &buf[target - overlap..target];
    let at = |i: usize| target - overlap + i;
    // A YAML document start (`---` at a line start) within the last
    // quarter of the buffer: a Kubernetes manifest is decoded whole in the
    // next window (what the window rescans is bounded by that quarter).
    let doc_from = (len - len / 4).min(target - overlap);
    let docs = &buf[doc_from..target];
    let doc = memchr::memmem::rfind_iter(docs, b"\n---")
        .find(|&i| matches!(docs.get(i + 4), None | Some(b'\n' | b'\r' | b' ')))
        .map(|i| doc_from + i + 1);
    let boundary = doc
        .or_else(|| memchr::memrchr(b'\n', region).map(|i| at(i) + 1))
        .unwrap_or(target);
    (end, boundary, doc.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{EngineOptions, MAX_MATCH};
    use crate::rules::{RuleSet, embedded_specs};

    fn pack() -> Scanner {
        let specs = embedded_specs().expect("embedded pack parses");
        Scanner::new(
            RuleSet::new(specs, false).expect("embedded pack compiles"),
            EngineOptions::default(),
        )
    }

    /// A few hundred KiB of the pack's examples and negative examples,
    /// base64 of examples and long lines in an order a seed picks, so
    /// windows cut through every kind of content; or (`yaml`) Kubernetes
    /// Secrets holding examples, each document shorter than a quarter
    /// window, as the module's comment says they must be to be decoded
    /// whole.
    fn input(seed: u64, yaml: bool) -> Vec<u8> {
        let specs = embedded_specs().expect("embedded pack parses");
        let mut pieces: Vec<Vec<u8>> = Vec::new();
        for (_, s) in &specs {
            pieces.extend(s.examples.iter().map(|e| e.text.as_bytes().to_vec()));
            pieces.extend(s.negative_examples.iter().map(|n| n.as_bytes().to_vec()));
        }
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as usize
        };
        let mut out = Vec::new();
        while out.len() < 600 * 1024 {
            if yaml {
                // Well-formed Secrets, each value an example, between
                // filler lines.
                let p = &pieces[next() % pieces.len()];
                use base64::Engine as _;
                let b = base64::engine::general_purpose::STANDARD.encode(p);
                let n = next();
                out.extend_from_slice(
                    format!(
                        "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: s{n}\ndata:\n  key: {b}\n"
                    )
                    .as_bytes(),
                );
                out.extend(std::iter::repeat_n(b'x', next() % 2_000));
                out.push(b'\n');
                continue;
            }
            match next() % 10 {
                0 => out.extend(std::iter::repeat_n(b'x', next() % 6_000)),
                1 => {
                    let p = &pieces[next() % pieces.len()];
                    use base64::Engine as _;
                    let b = base64::engine::general_purpose::STANDARD.encode(p);
                    out.extend_from_slice(format!("key: {b}\n").as_bytes());
                }
                _ => {
                    out.extend_from_slice(&pieces[next() % pieces.len()]);
                    out.extend_from_slice(if next() % 3 == 0 { b" " } else { b"\n" });
                }
            }
        }
        out
    }

    type Key = (usize, usize, String, usize, usize, usize, usize, String);

    fn key(f: &Finding) -> Key {
        (
            f.span.start,
            f.span.end,
            f.rule_id.clone(),
            f.line,
            f.column,
            f.end_line,
            f.end_column,
            f.fingerprint.clone(),
        )
    }

    /// Windows find what a whole-unit scan finds, at the same places, each
    /// secret once, also where a secret crosses a window's boundary.
    #[test]
    fn windows_find_what_a_whole_scan_finds() {
        let scanner = pack();
        let origin = Origin::File {
            path: "big.txt".into(),
        };
        let mut scratch = Scratch::default();
        for seed in 0..8 {
            let data = input(seed, seed % 2 == 1);
            let all = scanner.scan(&origin, &data, &mut scratch);
            let mut whole: Vec<_> = all.findings.iter().map(key).collect();
            whole.sort();
            assert!(whole.len() > 50, "seed {seed}: {} findings", whole.len());
            let w = scan_windows(
                &scanner,
                &origin,
                &mut &data[..],
                16 * MAX_MATCH,
                MAX_MATCH,
                &mut scratch,
            );
            assert!(w.error.is_none());
            assert_eq!(w.bytes, data.len() as u64);
            let mut windowed: Vec<_> = w.findings.iter().map(key).collect();
            windowed.sort();
            let missing: Vec<_> = whole.iter().filter(|k| !windowed.contains(k)).collect();
            let extra: Vec<_> = windowed.iter().filter(|k| !whole.contains(k)).collect();
            assert!(
                missing.is_empty() && extra.is_empty(),
                "seed {seed}: missing {missing:?}\nextra {extra:?}"
            );
        }
    }

    /// A secret that starts just before a boundary and ends after it is
    /// reported once, by the window it starts in.
    #[test]
    fn a_secret_across_a_boundary_is_found_once() {
        let scanner = pack();
        let origin = Origin::File {
            path: "big.txt".into(),
        };
        let specs = embedded_specs().expect("embedded pack parses");
        let example = specs
            .iter()
            .flat_map(|(_, s)| s.examples.iter())
            .find(|e| e.text.len() > 40 && !e.text.contains('\n'))
            .expect("an example")
            .text
            .clone();
        let mut scratch = Scratch::default();
        let whole_count = scanner
            .scan(&origin, example.as_bytes(), &mut scratch)
            .findings
            .len();
        assert!(whole_count > 0);
        let (window, overlap) = (4 * MAX_MATCH, MAX_MATCH);
        // Every start position around the first window's boundary (one
        // long line, so the boundary is at `window - overlap`).
        for shift in 0..example.len() + 2 {
            let at = window - overlap - example.len() - 1 + shift;
            let mut data = vec![b'.'; at];
            data.push(b' ');
            data.extend_from_slice(example.as_bytes());
            data.push(b' ');
            data.extend(std::iter::repeat_n(b'.', 3 * window));
            let whole = scanner.scan(&origin, &data, &mut scratch).findings;
            let w = scan_windows(
                &scanner,
                &origin,
                &mut &data[..],
                window,
                overlap,
                &mut scratch,
            );
            let a: Vec<_> = whole.iter().map(key).collect();
            let b: Vec<_> = w.findings.iter().map(key).collect();
            assert_eq!(a, b, "shift {shift} of {}", example.len());
        }
    }
}
