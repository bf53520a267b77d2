//! The run loop: pulls blobs from a source, fans them out to the engine on
//! rayon (one `Scratch` per worker), collects findings and counts what was
//! scanned and skipped. Output order is made deterministic here.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::blob::Origin;
use crate::decode::archive;
use crate::engine::{ScanResult, Scanner, Scratch, Silenced};
use crate::finding::Finding;
use crate::notice::{Notice, NoticeKind};
use crate::source::fs::{self, WalkOptions};
use crate::source::{Emit, Found, Source, Unit, git};

pub mod big;
pub mod image;
pub mod stream;

/// The reason of a `Notice` for a file every finding of which an allowlist
/// would silence: not read at all. Shown only with `--verbose`.
pub const ALLOWLISTED_PATH: &str = "allowlisted path";

/// How a `Notice` for a unit that panicked begins: the scan is incomplete
/// whatever `--strict` says.
pub const INTERNAL_ERROR: &str =
    "not scanned: internal error (a bug in leakhound; please report it)";

/// Bytes examined to decide whether a file is binary (a NUL byte in them).
const BINARY_SNIFF: usize = 8 * 1024;

/// What a scan produced.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Sorted by path, line, column, rule id.
    pub findings: Vec<Finding>,
    pub files: u64,
    pub bytes: u64,
    /// Binary files that held no keyword (so were not scanned further).
    pub binary_without_keywords: u64,
    pub skipped: Vec<Notice>,
    pub elapsed: Duration,
    /// Distinct image layers read (`image`, `registry`).
    pub layers: u64,
    /// Images scanned (`image`, `registry`).
    pub images: u64,
    /// What `registry --cache` saved and recorded.
    pub cache: image::CacheStats,
    /// Findings allowlists and inline markers silenced.
    pub silenced: Silenced,
}

impl Outcome {
    /// Skips caused by failures (unreadable files), not by policy.
    pub fn errors(&self) -> usize {
        self.skipped.iter().filter(|s| s.is_error()).count()
    }
}

/// Live counts of a running scan, readable from another thread (the
/// progress line) while workers update them.
#[derive(Default)]
pub struct Counters {
    pub files: AtomicU64,
    pub bytes: AtomicU64,
    pub binary: AtomicU64,
    /// Findings silenced by inline markers and by allowlists.
    pub inline: AtomicU64,
    pub allowlist: AtomicU64,
}

fn is_binary(data: &[u8]) -> bool {
    memchr::memchr(0, &data[..data.len().min(BINARY_SNIFF)]).is_some()
}

/// Runs one unit of work (a file, a blob, a layer entry); a panic in it
/// (a bug in leakhound or a library it uses) becomes an error naming the
/// unit, the worker's scratch space is reset, and the scan goes on. The
/// panic's message can quote input: it goes through the skip list, which
/// masks secrets, never straight to the terminal (see `main`'s hook).
pub(crate) fn contained<T: Default>(
    unit: impl FnOnce() -> String,
    scratch: &mut Scratch,
    skipped: &SkipList<'_>,
    work: impl FnOnce(&mut Scratch) -> T,
) -> T {
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&mut *scratch)));
    match caught {
        Ok(v) => v,
        Err(payload) => {
            *scratch = Scratch::default();
            skipped.push(internal_error(unit(), payload));
            T::default()
        }
    }
}

/// The notice of a unit whose scan panicked.
fn internal_error(unit: String, payload: Box<dyn std::any::Any + Send>) -> Notice {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown cause".into());
    Notice {
        path: unit,
        reason: format!("{INTERNAL_ERROR}: {message}"),
        kind: NoticeKind::Internal,
    }
}

/// Test-only trigger for `contained`: debug builds panic on a unit whose
/// name contains `LEAKHOUND_TEST_PANIC`, so tests can check that a panic
/// is contained. Release builds have no such switch.
pub(crate) fn test_panic(origin: &Origin) {
    #[cfg(debug_assertions)]
    {
        static TRIGGER: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
        if let Some(t) = TRIGGER.get_or_init(|| std::env::var("LEAKHOUND_TEST_PANIC").ok())
            && !t.is_empty()
            && origin.to_string().contains(t.as_str())
        {
            panic!("test panic in {origin}");
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = origin;
}

/// Scans a unit (the engine's one entry point) and counts it in the
/// scan's statistics; what could not be decoded goes to the skip list.
fn counted_scan(
    scanner: &Scanner,
    origin: &Origin,
    data: &[u8],
    changed: Option<std::ops::Range<usize>>,
    scratch: &mut Scratch,
    c: &Counters,
    skipped: &SkipList<'_>,
) -> ScanResult {
    test_panic(origin);
    let mut result = scanner.scan_changed(origin, data, changed, scratch);
    for n in std::mem::take(&mut result.notices) {
        skipped.push(n);
    }
    c.files.fetch_add(1, Ordering::Relaxed);
    c.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
    c.inline
        .fetch_add(result.silenced.inline, Ordering::Relaxed);
    c.allowlist
        .fetch_add(result.silenced.allowlist, Ordering::Relaxed);
    if !result.keyword_hits && is_binary(data) {
        c.binary.fetch_add(1, Ordering::Relaxed);
    }
    result
}

/// Skipped inputs: told to the caller as they happen, kept for the outcome.
pub(crate) struct SkipList<'a> {
    on_skip: &'a (dyn Fn(&Notice) + Sync),
    list: Mutex<Vec<Notice>>,
}

impl<'a> SkipList<'a> {
    fn new(on_skip: &'a (dyn Fn(&Notice) + Sync)) -> Self {
        SkipList {
            on_skip,
            list: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn push(&self, s: Notice) {
        (self.on_skip)(&s);
        self.list.lock().expect("skip list lock").push(s);
    }
}

impl Outcome {
    /// The outcome of a finished scan, in deterministic order.
    fn finish(
        mut findings: Vec<Finding>,
        counters: &Counters,
        skipped: SkipList<'_>,
        start: Instant,
    ) -> Outcome {
        findings.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        let mut skipped = skipped.list.into_inner().expect("skip list lock");
        skipped.sort_by(|a, b| a.path.cmp(&b.path));
        Outcome {
            findings,
            files: counters.files.load(Ordering::Relaxed),
            bytes: counters.bytes.load(Ordering::Relaxed),
            binary_without_keywords: counters.binary.load(Ordering::Relaxed),
            skipped,
            elapsed: start.elapsed(),
            layers: 0,
            images: 0,
            cache: image::CacheStats::default(),
            silenced: Silenced {
                inline: counters.inline.load(Ordering::Relaxed),
                allowlist: counters.allowlist.load(Ordering::Relaxed),
            },
        }
    }
}

/// Bytes of units read but not yet scanned, across all producers.
const HANDOFF_BYTES: u64 = 64 << 20;

/// Batches of units waiting for a worker (beyond the byte budget): room
/// for 32,768 units whose bytes are read by the worker (a few MB of
/// names), so that a source handing over a large batch at once (Git: blobs
/// in pack order) goes on to find the next while the workers scan it.
const HANDOFF_BATCHES: usize = 512;

/// Units handed over at once: one channel message (and one wake-up) per
/// unit cost 10% of a scan of many small files in context switches.
const BATCH: usize = 64;

/// Counts bytes in flight; producers wait when the workers fall behind.
pub(crate) struct Budget {
    used: Mutex<u64>,
    freed: Condvar,
}

impl Budget {
    pub(crate) fn new() -> Budget {
        Budget {
            used: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    pub(crate) fn acquire(&self, n: u64) {
        let mut used = self.used.lock().expect("budget lock");
        // A unit larger than the whole budget still goes, alone.
        while *used > 0 && *used + n > HANDOFF_BYTES {
            used = self.freed.wait(used).expect("budget lock");
        }
        *used += n;
    }
    pub(crate) fn release(&self, n: u64) {
        *self.used.lock().expect("budget lock") -= n;
        self.freed.notify_all();
    }
}

/// The run loop's side of `Emit`: a bounded hand-off to the workers, in
/// batches of units (a unit holding bytes goes at once).
struct Handoff<'a, 's, T> {
    tx: SyncSender<Vec<(usize, Unit<T>)>>,
    pending: Mutex<Vec<(usize, Unit<T>)>>,
    seq: AtomicUsize,
    budget: &'a Budget,
    skipped: &'a SkipList<'s>,
}

impl<T: Send> Handoff<'_, '_, T> {
    fn flush(&self, batch: Vec<(usize, Unit<T>)>) {
        if let Err(e) = self.tx.send(batch) {
            for (_, u) in e.0 {
                self.budget.release(u.data.len() as u64);
            }
        }
    }

    /// Hands over what is pending (the source is done).
    fn finish(&self) {
        let batch = std::mem::take(&mut *self.pending.lock().expect("hand-off lock"));
        if !batch.is_empty() {
            self.flush(batch);
        }
    }
}

impl<T: Send> Emit<T> for Handoff<'_, '_, T> {
    fn unit(&self, unit: Unit<T>) {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let holds_bytes = !unit.data.is_empty();
        let full = {
            let mut pending = self.pending.lock().expect("hand-off lock");
            pending.push((seq, unit));
            (holds_bytes || pending.len() >= BATCH).then(|| std::mem::take(&mut *pending))
        };
        if let Some(batch) = full {
            self.flush(batch);
        }
    }
    fn notice(&self, notice: Notice) {
        self.skipped.push(notice);
    }
    fn reserve(&self, n: u64) {
        self.budget.acquire(n);
    }
    fn release(&self, n: u64) {
        self.budget.release(n);
    }
    fn flush(&self) {
        self.finish();
    }
}

/// Scans an archive's entries as they are read, each as a unit with the
/// archive's provenance and the entry's path.
struct ArchiveScan<'a, 's> {
    scanner: &'a Scanner,
    scratch: &'a mut Scratch,
    counters: &'a Counters,
    skipped: &'a SkipList<'s>,
    parent: Arc<Origin>,
    findings: Vec<Finding>,
}

impl ArchiveScan<'_, '_> {
    /// An entry's provenance: the archive's, with the entry's path when the
    /// archive names one (a `.gz` stream has none).
    fn origin(&self, entry: Option<&str>) -> Origin {
        match entry {
            Some(entry) => self.parent.archive_entry(entry),
            None => (*self.parent).clone(),
        }
    }
}

impl archive::Visitor for ArchiveScan<'_, '_> {
    fn entry(&mut self, entry: Option<&str>, data: Vec<u8>) {
        let origin = self.origin(entry);
        let (scanner, counters, skipped) = (self.scanner, self.counters, self.skipped);
        let found = contained(
            || origin.to_string(),
            self.scratch,
            skipped,
            |scratch| {
                counted_scan(scanner, &origin, &data, None, scratch, counters, skipped).findings
            },
        );
        self.findings.extend(found);
    }

    fn stream(
        &mut self,
        entry: Option<&str>,
        reader: &mut dyn std::io::Read,
    ) -> (u64, Option<std::io::Error>) {
        let origin = self.origin(entry);
        let (scanner, counters, skipped) = (self.scanner, self.counters, self.skipped);
        let w = contained(
            || origin.to_string(),
            self.scratch,
            skipped,
            |scratch| {
                test_panic(&origin);
                big::scan_windows(scanner, &origin, reader, big::WINDOW, big::OVERLAP, scratch)
            },
        );
        // The walk names an entry that broke off itself.
        let mut w = w;
        let (bytes, error) = (w.bytes, w.error.take());
        let found = counted_windows(w, counters, skipped, &|| origin.to_string());
        self.findings.extend(found);
        (bytes, error)
    }

    fn notice(&mut self, notice: Notice) {
        self.skipped.push(notice);
    }
}

/// Scans a unit's bytes, or, when `archives` allows it and they are an
/// archive, each entry in it (true: it was opened).
#[allow(clippy::too_many_arguments)]
pub(crate) fn scan_or_open(
    scanner: &Scanner,
    origin: &Origin,
    data: &[u8],
    changed: Option<std::ops::Range<usize>>,
    archives: Option<archive::ArchiveLimits>,
    scratch: &mut Scratch,
    counters: &Counters,
    skipped: &SkipList<'_>,
) -> (Vec<Finding>, bool) {
    if let Some(limits) = archives
        && archive::kind(data).is_some()
    {
        let name = match origin.display_path() {
            Some(p) => p.into_owned(),
            None => origin.to_string(),
        };
        let mut visit = ArchiveScan {
            scanner,
            scratch,
            counters,
            skipped,
            parent: Arc::new(origin.clone()),
            findings: Vec::new(),
        };
        let limits = archive::ArchiveLimits {
            stream_above: big::STREAM_ABOVE,
            ..limits
        };
        archive::walk(&name, data, &limits, &mut visit);
        return (visit.findings, true);
    }
    let found = counted_scan(scanner, origin, data, changed, scratch, counters, skipped).findings;
    (found, false)
}

/// The run loop, the same for every source: the source yields units on a
/// thread of its own into a hand-off bounded by bytes, rayon workers load
/// and scan them (archives opened and decodings followed alike for every
/// source), each unit under `contained`; the source then turns the
/// findings into its report order and provenance.
pub fn run<S: Source>(
    source: &S,
    scanner: &Scanner,
    on_skip: &(dyn Fn(&Notice) + Sync),
    counters: &Counters,
) -> Outcome {
    let start = Instant::now();
    let skipped = SkipList::new(on_skip);
    let budget = Budget::new();
    let (tx, rx) = sync_channel::<Vec<(usize, Unit<S::Tag>)>>(HANDOFF_BATCHES);
    let found: Vec<Found<S::Tag>> = std::thread::scope(|s| {
        let handoff = Handoff {
            tx,
            pending: Mutex::new(Vec::new()),
            seq: AtomicUsize::new(0),
            budget: &budget,
            skipped: &skipped,
        };
        s.spawn(move || {
            source.units(&handoff);
            handoff.finish();
        });
        rx.into_iter()
            .flatten()
            .par_bridge()
            .map_init(
                || (source.worker(), Scratch::default()),
                |(worker, scratch), (seq, mut unit)| {
                    let held = unit.data.len() as u64;
                    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        scan_unit(
                            source, &mut unit, worker, scanner, scratch, counters, &skipped,
                        )
                    }));
                    let findings = caught.unwrap_or_else(|payload| {
                        *scratch = Scratch::default();
                        skipped.push(internal_error(source.describe(&unit), payload));
                        Vec::new()
                    });
                    budget.release(held);
                    (!findings.is_empty()).then_some(Found {
                        seq,
                        tag: unit.tag,
                        findings,
                    })
                },
            )
            .flatten()
            .collect()
    });
    let mut scratch = Scratch::default();
    let mut side = |origin: &Origin, data: &[u8]| {
        let result = scanner.scan(origin, data, &mut scratch);
        for n in result.notices {
            skipped.push(n);
        }
        counters
            .inline
            .fetch_add(result.silenced.inline, Ordering::Relaxed);
        counters
            .allowlist
            .fetch_add(result.silenced.allowlist, Ordering::Relaxed);
        result.findings
    };
    let findings = source.finish(found, scanner, &mut side);
    Outcome::finish(findings, counters, skipped, start)
}

/// One unit: loaded, then opened as an archive or scanned, then reviewed.
fn scan_unit<S: Source>(
    source: &S,
    unit: &mut Unit<S::Tag>,
    worker: &mut S::Worker,
    scanner: &Scanner,
    scratch: &mut Scratch,
    counters: &Counters,
    skipped: &SkipList<'_>,
) -> Vec<Finding> {
    if let Origin::File { path } = &unit.origin
        && scanner.policy().skips_path(path)
    {
        skipped.push(Notice {
            path: path.clone(),
            reason: ALLOWLISTED_PATH.into(),
            kind: NoticeKind::Allowlisted,
        });
        return Vec::new();
    }
    match source.stream(unit, worker) {
        None => {
            if let Err(n) = source.load(unit, worker) {
                skipped.push(n);
                return Vec::new();
            }
        }
        Some(Err(n)) => {
            skipped.push(n);
            return Vec::new();
        }
        Some(Ok(reader)) => {
            let (mut findings, opened) = scan_big(
                source, unit, worker, reader, scanner, scratch, counters, skipped,
            );
            if !opened && !findings.is_empty() {
                source.review(unit, &mut findings, worker, scanner, scratch);
            }
            return findings;
        }
    }
    let archives = source.archives(unit);
    let changed = source.changed(unit);
    let (mut findings, opened) = scan_or_open(
        scanner,
        &unit.origin,
        &unit.data,
        changed,
        archives,
        scratch,
        counters,
        skipped,
    );
    if opened {
        return findings;
    }
    if !findings.is_empty() {
        source.review(unit, &mut findings, worker, scanner, scratch);
    }
    findings
}

/// Scans a large unit from `reader` in windows (`big`), or, when it is an
/// archive, opens it as it is read (`archive::walk_reader`: large entries
/// in windows too), scanning its raw bytes again when they are wanted
/// (true: it was opened). What could not be read is a notice naming how far
/// the scan got.
#[allow(clippy::too_many_arguments)]
fn scan_big<S: Source>(
    source: &S,
    unit: &mut Unit<S::Tag>,
    worker: &mut S::Worker,
    mut reader: Box<dyn std::io::Read + Send>,
    scanner: &Scanner,
    scratch: &mut Scratch,
    counters: &Counters,
    skipped: &SkipList<'_>,
) -> (Vec<Finding>, bool) {
    use std::io::Read;
    let mut prefix = Vec::with_capacity(big::SNIFF);
    if let Err(e) = (&mut reader)
        .take(big::SNIFF as u64)
        .read_to_end(&mut prefix)
    {
        skipped.push(Notice {
            path: source.describe(unit),
            reason: format!("cannot read: {e}"),
            kind: NoticeKind::Unreadable,
        });
        return (Vec::new(), false);
    }
    let mut input = std::io::Cursor::new(prefix).chain(reader);
    if let Some(limits) = source.archives(unit)
        && archive::kind(input.get_ref().0.get_ref()).is_some()
    {
        let name = match unit.origin.display_path() {
            Some(p) => p.into_owned(),
            None => unit.origin.to_string(),
        };
        let mut visit = ArchiveScan {
            scanner,
            scratch,
            counters,
            skipped,
            parent: Arc::new(unit.origin.clone()),
            findings: Vec::new(),
        };
        let limits = archive::ArchiveLimits {
            stream_above: big::STREAM_ABOVE,
            ..limits
        };
        let raw = archive::walk_reader(&name, &mut input, &limits, &mut visit);
        let mut findings = visit.findings;
        drop(input);
        if raw {
            // Not readable as the archive it announces (or broken off in
            // it): its raw bytes, read again, are scanned like any file's.
            match source.stream(unit, worker) {
                Some(Ok(mut again)) => {
                    findings.extend(windowed(
                        source, unit, &mut again, scanner, scratch, counters, skipped,
                    ));
                }
                Some(Err(n)) => skipped.push(n),
                None => skipped.push(Notice {
                    path: source.describe(unit),
                    reason: "its raw bytes cannot be read a second time; not scanned raw".into(),
                    kind: NoticeKind::Unreadable,
                }),
            }
        }
        return (findings, true);
    }
    let findings = windowed(
        source, unit, &mut input, scanner, scratch, counters, skipped,
    );
    (findings, false)
}

/// Scans a large unit's bytes from `reader` in windows and counts them.
fn windowed<S: Source>(
    source: &S,
    unit: &Unit<S::Tag>,
    reader: &mut dyn std::io::Read,
    scanner: &Scanner,
    scratch: &mut Scratch,
    counters: &Counters,
    skipped: &SkipList<'_>,
) -> Vec<Finding> {
    test_panic(&unit.origin);
    let w = big::scan_windows(
        scanner,
        &unit.origin,
        reader,
        big::WINDOW,
        big::OVERLAP,
        scratch,
    );
    counted_windows(w, counters, skipped, &|| source.describe(unit))
}

/// Counts a windowed scan in the statistics; its decode notices, and the
/// read that stopped it (naming the unit as `describe` says), go to the
/// skip list.
fn counted_windows(
    w: big::Windowed,
    counters: &Counters,
    skipped: &SkipList<'_>,
    describe: &dyn Fn() -> String,
) -> Vec<Finding> {
    for n in w.notices {
        skipped.push(n);
    }
    if let Some(e) = w.error {
        let at = w.bytes;
        skipped.push(Notice {
            path: describe(),
            reason: format!("cannot read past byte {at}: {e}; the bytes before it were scanned"),
            kind: NoticeKind::Unreadable,
        });
    }
    counters.files.fetch_add(1, Ordering::Relaxed);
    counters.bytes.fetch_add(w.bytes, Ordering::Relaxed);
    counters
        .inline
        .fetch_add(w.silenced.inline, Ordering::Relaxed);
    counters
        .allowlist
        .fetch_add(w.silenced.allowlist, Ordering::Relaxed);
    if !w.keyword_hits && w.binary {
        counters.binary.fetch_add(1, Ordering::Relaxed);
    }
    w.findings
}

/// Scans what a Git plan lists: blobs in parallel (each worker with its own
/// repository handle), then commit and tag messages.
pub fn scan_git(
    scanner: &Scanner,
    repo: &gix::Repository,
    plan: git::Plan,
    max_file_size: u64,
    on_skip: &(dyn Fn(&Notice) + Sync),
    counters: &Counters,
) -> Outcome {
    let source = git::GitSource::new(repo, plan, max_file_size);
    run(&source, scanner, on_skip, counters)
}

/// Scans files and directories (`-` is standard input). `on_skip` is told
/// about each skipped input as it happens (the binary prints it).
/// Scans blobs already in memory (a page of a cluster's objects), each a
/// unit of the run loop.
pub fn scan_blobs(
    scanner: &Scanner,
    blobs: Vec<crate::blob::Blob>,
    on_skip: &(dyn Fn(&Notice) + Sync),
    counters: &Counters,
) -> Outcome {
    run(
        &crate::source::memory::MemorySource::new(blobs),
        scanner,
        on_skip,
        counters,
    )
}

pub fn scan_paths(
    scanner: &Scanner,
    roots: &[PathBuf],
    opts: &WalkOptions,
    on_skip: &(dyn Fn(&Notice) + Sync),
    counters: &Counters,
) -> Outcome {
    let source = fs::FsSource { roots, opts };
    run(&source, scanner, on_skip, counters)
}
