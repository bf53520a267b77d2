//! The streaming run loop for `leakhound logs`: scans each window of a
//! stream as soon as it arrives, hands findings to a sink at once, and
//! optionally writes the stream through with every secret masked.
//!
//! Memory is bounded by the reader's window (`--max-line` plus a read
//! buffer) and by the repeat table (`MAX_TRACKED` fingerprints).

use std::collections::HashMap;
use std::io::{self, Write};

use crate::blob::Origin;
use crate::engine::location::char_count;
use crate::engine::{ScanResult, Scanner, Scratch, Silenced};
use crate::finding::Finding;
use crate::notice::Notice;
use crate::source::stream::StreamReader;

/// Distinct secrets whose repeats are counted; beyond this the table is
/// cleared, so a stream of ever-new secrets cannot grow memory without
/// bound (a repeat after a clear is reported again: over-reporting, never
/// under-reporting).
const MAX_TRACKED: usize = 100_000;

/// Options of one streaming scan.
pub struct StreamOptions {
    /// Report every occurrence, not only the first of each secret.
    pub report_repeats: bool,
    /// Write the stream through with secrets replaced by the mask.
    pub redact: Option<Mask>,
    /// Findings below this confidence are not reported (they are still
    /// redacted: `--redact` hides everything the engine matched).
    pub min_report: crate::rules::Confidence,
}

/// What replaces a secret in `--redact` output.
#[derive(Clone, Debug)]
pub enum Mask {
    /// `[REDACTED:rule-id]`
    RuleId,
    /// A fixed string.
    Fixed(String),
}

/// Counts of a streaming scan, and the repeat table.
#[derive(Debug, Default)]
pub struct StreamStats {
    pub lines: u64,
    pub bytes: u64,
    pub findings: u64,
    pub repeats: u64,
    /// Findings allowlists and inline markers silenced.
    pub silenced: Silenced,
    /// Findings reported, by rule id and by severity.
    pub by_rule: std::collections::BTreeMap<String, u64>,
    severities: [u64; 4],
    seen: HashMap<String, u64>,
}

impl StreamStats {
    /// Findings reported by severity, every severity present.
    pub fn by_severity(&self) -> std::collections::BTreeMap<&'static str, u64> {
        use crate::rules::Severity::*;
        [Low, Medium, High, Critical]
            .into_iter()
            .map(|s| (s.as_str(), self.severities[s as usize]))
            .collect()
    }

    /// Secrets seen more than once, with how often (fingerprint → count).
    pub fn repeated(&self) -> impl Iterator<Item = (&str, u64)> {
        self.seen
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(k, n)| (k.as_str(), *n))
    }
}

/// Where findings and the redacted stream go. Called with each finding as
/// soon as its line is complete; `passthrough` is called once per window.
pub trait StreamSink {
    fn finding(&mut self, f: &Finding) -> io::Result<()>;
    fn passthrough(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Something not scanned wholly (a decoding limit): told as it happens.
    fn notice(&mut self, _: &Notice) -> io::Result<()> {
        Ok(())
    }
    /// Lines and bytes of a window just scanned (for metrics).
    fn scanned(&mut self, _lines: u64, _bytes: u64) {}
}

/// Windows larger than this are split at line boundaries and the parts
/// scanned in parallel: a busy stream delivers 1 MiB windows, and one
/// thread alone scanned a 500 MB log at half the speed of the file scan.
const PART: usize = 256 * 1024;

/// Scans a window (positions in the window). Small windows, the common
/// case of a live stream, are scanned at once on this thread; larger ones
/// in parts cut at line boundaries, each part's findings moved to the
/// window's lines and offsets.
fn scan_parts(
    scanner: &Scanner,
    origin: &Origin,
    data: &[u8],
    scratch: &mut Scratch,
) -> ScanResult {
    use rayon::prelude::*;
    let mut bounds = vec![0];
    while data.len() - bounds[bounds.len() - 1] > PART {
        let from = bounds[bounds.len() - 1] + PART;
        match memchr::memchr(b'\n', &data[from..]) {
            Some(i) if from + i + 1 < data.len() => bounds.push(from + i + 1),
            _ => break,
        }
    }
    bounds.push(data.len());
    if bounds.len() == 2 {
        return scanner.scan(origin, data, scratch);
    }
    // Lines before each part.
    let mut lines_before = vec![0usize];
    for w in bounds.windows(2) {
        let n = memchr::memchr_iter(b'\n', &data[w[0]..w[1]]).count();
        lines_before.push(lines_before[lines_before.len() - 1] + n);
    }
    let parts: Vec<ScanResult> = bounds
        .par_windows(2)
        .enumerate()
        .map_init(Scratch::default, |scratch, (k, w)| {
            let mut r = scanner.scan(origin, &data[w[0]..w[1]], scratch);
            for c in &mut r.candidates {
                c.start += w[0];
                c.end += w[0];
            }
            for f in &mut r.findings {
                f.span = f.span.start + w[0]..f.span.end + w[0];
                f.line += lines_before[k];
                f.end_line += lines_before[k];
            }
            r
        })
        .collect();
    let mut all = ScanResult::default();
    for r in parts {
        all.findings.extend(r.findings);
        all.candidates.extend(r.candidates);
        all.notices.extend(r.notices);
        all.silenced.add(r.silenced);
        all.keyword_hits |= r.keyword_hits;
    }
    all
}

/// Position of the reader inside the stream.
pub(crate) struct Cursor {
    /// 1-based line of the first buffered byte.
    pub(crate) line: usize,
    /// Characters of that line already consumed (a cut long line).
    pub(crate) column: usize,
}

impl Cursor {
    pub(crate) fn advance(&mut self, consumed: &[u8]) {
        let newlines = memchr::memchr_iter(b'\n', consumed).count();
        if newlines > 0 {
            self.line += newlines;
            let last = memchr::memrchr(b'\n', consumed).expect("counted a newline");
            self.column = char_count(&consumed[last + 1..]);
        } else {
            self.column += char_count(consumed);
        }
    }

    pub(crate) fn shift(&self, f: &mut Finding) {
        if f.line == 1 {
            f.column += self.column;
        }
        if f.end_line == 1 {
            f.end_column += self.column;
        }
        f.line += self.line - 1;
        f.end_line += self.line - 1;
    }
}

/// The windowed scan of one stream: where it is (line and column of the
/// next byte), what it masks in passthrough, and windows that could not be
/// scanned. `scan_stream` drives one from a `StreamReader`; the pods agent
/// (`source::pods`) drives one per container log from its own buffers.
pub struct StreamScan {
    cursor: Cursor,
    out: Vec<u8>,
    redactor: crate::report::redact::Redactor,
    /// Lines of windows whose scan panicked (a bug): named at the end.
    unscanned: Vec<(usize, usize)>,
}

impl Default for StreamScan {
    fn default() -> Self {
        Self::starting_at(1)
    }
}

impl StreamScan {
    /// A scan whose first byte is at the start of 1-based line `line`.
    pub fn starting_at(line: usize) -> Self {
        StreamScan {
            cursor: Cursor { line, column: 0 },
            out: Vec::new(),
            redactor: Default::default(),
            unscanned: Vec::new(),
        }
    }

    /// The 1-based line of the next byte.
    pub fn line(&self) -> usize {
        self.cursor.line
    }

    /// Scans one window `data` (see `source::stream::Window`): findings of
    /// candidates that start before `emit` go to `sink`, with lines counted
    /// from the stream's start. Returns how many bytes are done: `emit`, or
    /// more when a secret crosses the cut of a long line (it is reported
    /// whole now). The caller drops that many bytes from its buffer.
    #[allow(clippy::too_many_arguments)]
    pub fn window(
        &mut self,
        scanner: &Scanner,
        origin: &Origin,
        data: &[u8],
        emit: usize,
        scratch: &mut Scratch,
        opts: &StreamOptions,
        stats: &std::sync::Mutex<StreamStats>,
        sink: &mut dyn StreamSink,
    ) -> io::Result<usize> {
        // Each window is a unit of work: a panic in it is contained, the
        // window is withheld (never passed through unredacted) and named.
        let scanned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            super::test_panic(origin);
            let mut r = scan_parts(scanner, origin, data, scratch);
            r.candidates.retain(|c| c.start < emit);
            r.findings.retain(|f| f.span.start < emit);
            r
        }));
        let Ok(ScanResult {
            candidates: cands,
            mut findings,
            notices,
            silenced,
            ..
        }) = scanned
        else {
            *scratch = Scratch::default();
            let lines = memchr::memchr_iter(b'\n', &data[..emit]).count();
            let line = self.cursor.line;
            self.unscanned.push((line, line + lines.saturating_sub(1)));
            if opts.redact.is_some() {
                writeln!(
                    out_marker(&mut self.out),
                    "[leakhound: {emit} bytes withheld, not scanned: internal error]",
                )?;
                sink.passthrough(&self.out)?;
            }
            self.cursor.advance(&data[..emit]);
            return Ok(emit);
        };
        // A secret across the cut of a long line is emitted whole now.
        let emit = cands.iter().map(|c| c.end).fold(emit, usize::max);
        // (`silenced` counts the whole window: a silenced secret in the
        // overlap of a cut long line is counted in both windows.)
        for n in &notices {
            sink.notice(n)?;
        }
        let lines = memchr::memchr_iter(b'\n', &data[..emit]).count() as u64;
        sink.scanned(lines, emit as u64);
        {
            let mut st = stats.lock().expect("stats lock");
            st.silenced.add(silenced);
            st.bytes += emit as u64;
            st.lines += lines;
            for f in &mut findings {
                if f.confidence < opts.min_report {
                    continue;
                }
                self.cursor.shift(f);
                if st.seen.len() >= MAX_TRACKED {
                    st.seen.clear();
                }
                let n = st.seen.entry(f.fingerprint.clone()).or_insert(0);
                *n += 1;
                if *n > 1 {
                    st.repeats += 1;
                    if !opts.report_repeats {
                        continue;
                    }
                }
                st.findings += 1;
                *st.by_rule.entry(f.rule_id.clone()).or_insert(0) += 1;
                st.severities[f.severity as usize] += 1;
                self.redactor.learn(std::iter::once(&*f));
                self.redactor.apply(f);
                sink.finding(f)?;
            }
        }
        if let Some(mask) = &opts.redact {
            let out = &mut self.out;
            out.clear();
            let mut at = 0;
            for (start, end, rule) in scanner.redaction_spans(&data[..emit], &cands) {
                if start < at || start >= emit {
                    continue;
                }
                out.extend_from_slice(&data[at..start]);
                match mask {
                    Mask::RuleId => {
                        let id = &scanner.rules().rule(rule).spec.id;
                        write!(out, "[REDACTED:{id}]")?;
                    }
                    Mask::Fixed(s) => out.extend_from_slice(s.as_bytes()),
                }
                at = end.min(emit);
            }
            out.extend_from_slice(&data[at..emit]);
            sink.passthrough(out)?;
        }
        self.cursor.advance(&data[..emit]);
        Ok(emit)
    }

    /// Ends the scan: an error naming the lines a contained panic left
    /// unscanned, if any.
    pub fn finish(self) -> io::Result<()> {
        if self.unscanned.is_empty() {
            return Ok(());
        }
        let lines: Vec<String> = self
            .unscanned
            .iter()
            .map(|(a, b)| {
                if a == b {
                    format!("{a}")
                } else {
                    format!("{a}-{b}")
                }
            })
            .collect();
        Err(io::Error::other(format!(
            "line(s) {} not scanned: internal error (a bug in leakhound; please report it)",
            lines.join(", ")
        )))
    }
}

/// Scans one stream to its end. `stats` is shared so a signal handler can
/// print the summary mid-stream.
pub fn scan_stream(
    scanner: &Scanner,
    origin: &Origin,
    reader: &mut StreamReader,
    opts: &StreamOptions,
    stats: &std::sync::Mutex<StreamStats>,
    sink: &mut dyn StreamSink,
) -> io::Result<()> {
    let mut scratch = Scratch::default();
    let mut scan = StreamScan::default();
    while let Some(w) = reader.next_window()? {
        let data = &reader.data()[..w.len];
        let done = scan.window(
            scanner,
            origin,
            data,
            w.emit,
            &mut scratch,
            opts,
            stats,
            sink,
        )?;
        reader.consume(done);
    }
    scan.finish()
}

/// The redaction buffer, emptied for a marker line.
fn out_marker(out: &mut Vec<u8>) -> &mut Vec<u8> {
    out.clear();
    out
}
