//! The run loop: pulls blobs from a source, fans them out to the engine on
//! rayon (one `Scratch` per worker), collects findings and counts what was
//! scanned and skipped. Output order is made deterministic here.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::blob::{Blob, Origin};
use crate::decode::archive;
use crate::engine::{Scanner, Scratch};
use crate::finding::Finding;
use crate::notice::{Notice, NoticeKind};
use crate::source::fs::{self, Entry, WalkOptions};
use crate::source::git;

pub mod image;
pub mod memory;
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
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown cause".into());
            skipped.push(Notice {
                path: unit(),
                reason: format!("{INTERNAL_ERROR}: {message}"),
                kind: NoticeKind::Internal,
            });
            T::default()
        }
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

/// Candidates of a blob and of what decodes out of it, counted in the
/// scan's statistics; what could not be decoded goes to the skip list.
fn counted_candidates(
    scanner: &Scanner,
    blob: &Blob,
    scratch: &mut Scratch,
    c: &Counters,
    skipped: &SkipList<'_>,
) -> Vec<crate::engine::Candidate> {
    test_panic(&blob.origin);
    let mut notes = Vec::new();
    let cands = scanner.candidates_deep(&blob.data, scratch, &mut notes);
    notes.sort();
    notes.dedup();
    for reason in notes {
        skipped.push(Notice {
            path: blob.origin.to_string(),
            reason,
            kind: NoticeKind::DecodeLimit,
        });
    }
    c.files.fetch_add(1, Ordering::Relaxed);
    c.bytes.fetch_add(blob.data.len() as u64, Ordering::Relaxed);
    if !scratch.had_keyword_hits() && is_binary(&blob.data) {
        c.binary.fetch_add(1, Ordering::Relaxed);
    }
    cands
}

fn scan_blob(
    scanner: &Scanner,
    blob: &Blob,
    scratch: &mut Scratch,
    c: &Counters,
    skipped: &SkipList<'_>,
) -> Vec<Finding> {
    let cands = counted_candidates(scanner, blob, scratch, c, skipped);
    scanner.findings(blob, &cands)
}

/// Scans the entries of an archive as they are read, each as a file named
/// `archive!entry`.
struct ArchiveScan<'a, 's> {
    scanner: &'a Scanner,
    scratch: &'a mut Scratch,
    counters: &'a Counters,
    skipped: &'a SkipList<'s>,
    /// The origin of an entry, from its `archive!entry` path.
    origin: &'a dyn Fn(String) -> Origin,
    findings: Vec<Finding>,
}

impl archive::Visitor for ArchiveScan<'_, '_> {
    fn entry(&mut self, path: String, data: Vec<u8>) {
        let blob = Blob::new((self.origin)(path), data);
        let (scanner, counters, skipped) = (self.scanner, self.counters, self.skipped);
        let found = contained(
            || blob.origin.to_string(),
            self.scratch,
            skipped,
            |scratch| scan_blob(scanner, &blob, scratch, counters, skipped),
        );
        self.findings.extend(found);
    }

    fn skip(&mut self, path: String, reason: String) {
        self.skipped.push(Notice {
            path,
            reason,
            kind: NoticeKind::ArchiveLimit,
        });
    }
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

    fn push(&self, s: Notice) {
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
        }
    }
}

/// Scans what a Git plan lists: blobs in parallel (each worker with its own
/// repository handle and scratch), then commit and tag messages.
pub fn scan_git(
    scanner: &Scanner,
    repo: &gix::Repository,
    plan: git::Plan,
    max_file_size: u64,
    on_skip: &(dyn Fn(&Notice) + Sync),
    counters: &Counters,
) -> Outcome {
    let start = Instant::now();
    let skipped = SkipList::new(on_skip);
    for p in plan.problems {
        skipped.push(p);
    }
    let shared = repo.clone().into_sync();
    let mut indexed: Vec<(usize, Vec<Finding>)> = plan
        .blobs
        .par_iter()
        .enumerate()
        .map_init(
            || (shared.to_thread_local(), Scratch::default()),
            |(repo, scratch), (i, task)| {
                contained(
                    || task.origin.to_string(),
                    scratch,
                    &skipped,
                    |scratch| {
                        let blob = match git::read_blob(repo, task.id, &task.origin, max_file_size)
                        {
                            Ok(blob) => blob,
                            Err(s) => {
                                skipped.push(s);
                                return (i, Vec::new());
                            }
                        };
                        if archive::kind(&blob.data).is_some() {
                            // Entries of a committed archive, each at `path!entry`
                            // with the blob's commit (all of them, in diff scopes
                            // too: entries are not compared with older versions).
                            let entry_origin = |path: String| match &blob.origin {
                                Origin::GitBlob { blob, commit, .. } => Origin::GitBlob {
                                    blob: blob.clone(),
                                    path: Some(path),
                                    commit: commit.clone(),
                                },
                                _ => Origin::File { path },
                            };
                            let mut visit = ArchiveScan {
                                scanner,
                                scratch,
                                counters,
                                skipped: &skipped,
                                origin: &entry_origin,
                                findings: Vec::new(),
                            };
                            let limits = archive::ArchiveLimits {
                                max_entry: max_file_size,
                                ..Default::default()
                            };
                            archive::walk(
                                &blob.origin.to_string(),
                                &blob.data,
                                &limits,
                                &mut visit,
                            );
                            return (i, visit.findings);
                        }
                        let mut cands =
                            counted_candidates(scanner, &blob, scratch, counters, &skipped);
                        if !cands.is_empty() && !task.previous.is_empty() {
                            // Only secrets this change added: drop those the same
                            // path already held in a parent.
                            let mut old: Vec<(crate::rules::RuleId, Vec<u8>)> = Vec::new();
                            for prev in &task.previous {
                                if let Ok(p) =
                                    git::read_blob(repo, *prev, &task.origin, max_file_size)
                                {
                                    let mut notes = Vec::new();
                                    for c in scanner.candidates_deep(&p.data, scratch, &mut notes) {
                                        old.push((c.rule, c.secret(&p.data).to_vec()));
                                    }
                                }
                            }
                            cands.retain(|c| {
                                !old.iter()
                                    .any(|(r, s)| *r == c.rule && s[..] == *c.secret(&blob.data))
                            });
                        }
                        (i, scanner.findings(&blob, &cands))
                    },
                )
            },
        )
        .filter(|(_, f)| !f.is_empty())
        .collect();
    // Blobs are listed in topological order of the commits that introduced
    // them: when later versions of a file still hold the same secret, keep
    // only the first (the fingerprint is rule, secret and path), as a person
    // reviewing history wants the commit that added it, once.
    indexed.sort_by_key(|(i, _)| *i);
    let mut seen = std::collections::HashSet::new();
    let mut findings: Vec<Finding> = indexed
        .into_iter()
        .flat_map(|(_, f)| f)
        .filter(|f| seen.insert(f.fingerprint.clone()))
        .collect();
    // Messages are decoded like blobs: a base64 or percent-encoded token
    // pasted into a commit message is as leaked as one in a file.
    let mut scratch = Scratch::default();
    for m in &plan.messages {
        let mut notes = Vec::new();
        let cands = scanner.candidates_deep(&m.data, &mut scratch, &mut notes);
        notes.sort();
        notes.dedup();
        for reason in notes {
            skipped.push(Notice::new(
                NoticeKind::DecodeLimit,
                m.origin.to_string(),
                reason,
            ));
        }
        findings.extend(scanner.findings(m, &cands));
    }
    Outcome::finish(findings, counters, skipped, start)
}

/// Scans files and directories (`-` is standard input). `on_skip` is told
/// about each skipped input as it happens (the binary prints it).
pub fn scan_paths(
    scanner: &Scanner,
    roots: &[PathBuf],
    opts: &WalkOptions,
    on_skip: &(dyn Fn(&Notice) + Sync),
    counters: &Counters,
) -> Outcome {
    let start = Instant::now();
    let skipped = SkipList::new(on_skip);
    let skip = |s: Notice| skipped.push(s);
    let mut findings: Vec<Finding> = Vec::new();

    let (stdin, paths): (Vec<&PathBuf>, Vec<&PathBuf>) =
        roots.iter().partition(|p| p.as_os_str() == "-");
    if !stdin.is_empty() {
        match fs::read_stdin(opts.max_file_size) {
            Ok(blob) => findings.extend(contained(
                || "-".into(),
                &mut Scratch::default(),
                &skipped,
                |scratch| scan_blob(scanner, &blob, scratch, counters, &skipped),
            )),
            Err(s) => skip(s),
        }
    }
    if !paths.is_empty() {
        let paths: Vec<PathBuf> = paths.into_iter().cloned().collect();
        let per_file: Vec<Vec<Finding>> = fs::walk(&paths, opts)
            .par_bridge()
            .map_init(Scratch::default, |scratch, entry| match entry {
                Entry::Skipped(s) => {
                    skip(s);
                    Vec::new()
                }
                Entry::File { path, .. } if scanner.policy().skips_path(&fs::display(&path)) => {
                    skip(Notice {
                        path: fs::display(&path),
                        reason: ALLOWLISTED_PATH.into(),
                        kind: NoticeKind::Allowlisted,
                    });
                    Vec::new()
                }
                Entry::File { path, size } => contained(
                    || fs::display(&path),
                    scratch,
                    &skipped,
                    |scratch| match fs::read(&path, size, opts.max_file_size) {
                        Ok(blob) if archive::kind(&blob.data).is_some() => {
                            let mut visit = ArchiveScan {
                                scanner,
                                scratch,
                                counters,
                                skipped: &skipped,
                                origin: &|path| Origin::File { path },
                                findings: Vec::new(),
                            };
                            let name = blob.origin.to_string();
                            let limits = archive::ArchiveLimits {
                                max_entry: opts.max_file_size,
                                ..Default::default()
                            };
                            archive::walk(&name, &blob.data, &limits, &mut visit);
                            visit.findings
                        }
                        Ok(blob) => scan_blob(scanner, &blob, scratch, counters, &skipped),
                        Err(s) => {
                            skip(s);
                            Vec::new()
                        }
                    },
                ),
            })
            .filter(|v| !v.is_empty())
            .collect();
        findings.extend(per_file.into_iter().flatten());
    }

    Outcome::finish(findings, counters, skipped, start)
}
