//! Files and directories: walks roots with `ignore` and reads each file
//! into a blob. Hidden files are scanned, `.git/` is never entered, and
//! ignore files follow ripgrep's convention: `.gitignore` and Git's
//! excludes apply inside a Git work tree only, `.ignore` everywhere
//! (`--no-ignore` turns all of them off). Every path an ignore file leaves
//! out is named, so a scan never silently covers less than the user thinks.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::blob::{Blob, Origin};
use crate::notice::{Notice, NoticeKind};

/// How to walk.
#[derive(Clone, Debug)]
pub struct WalkOptions {
    /// Ignore .gitignore, .ignore and git excludes.
    pub no_ignore: bool,
    /// Files larger than this are skipped and reported.
    pub max_file_size: u64,
}

/// A file found by the walk, or a reason it cannot be scanned.
#[derive(Debug)]
pub enum Entry {
    File { path: PathBuf, size: u64 },
    Skipped(Notice),
}

/// The reason of a `Notice` for a path an ignore file leaves out.
pub const IGNORED_PATH: &str = "left out by an ignore file";

/// Display form of a path: as found under the root the user gave.
pub fn display(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// Checks that every root exists before any work starts (a missing root is
/// an error of the whole scan, exit 2, not a skipped file).
pub fn check_roots(roots: &[PathBuf]) -> Result<(), String> {
    for r in roots {
        if let Err(e) = std::fs::metadata(r) {
            return Err(format!("cannot scan {}: {e}", r.display()));
        }
    }
    Ok(())
}

/// Walks `roots` lazily; items are yielded as the walk finds them,
/// including one `Skipped` entry (kind `Ignored`) for each path an ignore
/// file leaves out (a left-out directory is one path).
pub fn walk(roots: &[PathBuf], opts: &WalkOptions) -> impl Iterator<Item = Entry> + Send {
    let mut builder = ignore::WalkBuilder::new(&roots[0]);
    for r in &roots[1..] {
        builder.add(r);
    }
    let use_ignore = !opts.no_ignore;
    builder
        .hidden(false)
        .ignore(use_ignore)
        .git_ignore(use_ignore)
        .git_global(use_ignore)
        .git_exclude(use_ignore)
        .parents(use_ignore)
        .require_git(true)
        .follow_links(false)
        .filter_entry(|e| e.file_name() != ".git");
    let max = opts.max_file_size;
    let mut left_out = LeftOut {
        on: use_ignore,
        open: Vec::new(),
    };
    // `None` marks the end of the walk: the directories still open are
    // closed then.
    builder
        .build()
        .map(Some)
        .chain(std::iter::once(None))
        .flat_map(move |res| {
            let mut out = match &res {
                Some(res) => left_out.visit(res),
                None => left_out.close_to(0),
            };
            out.extend(res.and_then(|res| entry(res, max)));
            out
        })
}

/// One walk result as an entry: files (or why one cannot be read), or
/// nothing for directories and other kinds.
fn entry(res: Result<ignore::DirEntry, ignore::Error>, max: u64) -> Option<Entry> {
    match res {
        Err(err) => Some(Entry::Skipped(Notice {
            path: walk_error_path(&err),
            reason: err.to_string(),
            kind: NoticeKind::Unreadable,
        })),
        Ok(e) => {
            if e.depth() == 0 && !e.file_type().is_some_and(|t| t.is_file() || t.is_dir()) {
                return explicit_special(e.into_path());
            }
            if !e.file_type().is_some_and(|t| t.is_file()) {
                return None;
            }
            let path = e.into_path();
            match std::fs::metadata(&path) {
                Err(err) => Some(Entry::Skipped(Notice {
                    path: display(&path),
                    reason: format!("cannot read metadata: {err}"),
                    kind: NoticeKind::Unreadable,
                })),
                Ok(m) if m.len() > max => Some(Entry::Skipped(too_large(&path, m.len(), max))),
                Ok(m) => Some(Entry::File {
                    path,
                    size: m.len(),
                }),
            }
        }
    }
}

/// A root the user named that is not a regular file or directory (or a
/// link to one): a pipe or character device (`<(cmd)`, `/dev/stdin`, a
/// FIFO) is read as a stream, as `-` is; what cannot be opened (a socket)
/// is an error, never silently nothing. Special files met inside a
/// directory are passed over: opening a FIFO nobody writes would hang.
fn explicit_special(path: PathBuf) -> Option<Entry> {
    match std::fs::metadata(&path) {
        Err(err) => Some(Entry::Skipped(Notice {
            path: display(&path),
            reason: format!("cannot read metadata: {err}"),
            kind: NoticeKind::Unreadable,
        })),
        Ok(m) if m.is_dir() => None,
        Ok(m) if m.is_file() => Some(Entry::File {
            path,
            size: m.len(),
        }),
        Ok(m) if crate::platform::is_socket(&m.file_type()) => Some(Entry::Skipped(Notice {
            path: display(&path),
            reason: "is a socket, which cannot be read as a file; not scanned".into(),
            kind: NoticeKind::Unreadable,
        })),
        // Read to its end (at most --max-file-size bytes) by `read`.
        Ok(_) => Some(Entry::File { path, size: 0 }),
    }
}

/// Finds the paths ignore files left out. The `ignore` walker does not say
/// what it passed over, so each directory it entered is listed again once
/// the walk has left it: a child the walker never yielded was ignored.
/// Only the directories on the current path are held, so memory is bounded
/// by depth times fan-out; the cost is one more `read_dir` per directory.
struct LeftOut {
    on: bool,
    /// Directories entered and not yet left: path, depth, names yielded.
    open: Vec<(PathBuf, usize, HashSet<OsString>)>,
}

impl LeftOut {
    fn visit(&mut self, res: &Result<ignore::DirEntry, ignore::Error>) -> Vec<Entry> {
        if !self.on {
            return Vec::new();
        }
        let (path, depth, is_dir) = match res {
            Ok(e) => (
                e.path(),
                e.depth(),
                e.file_type().is_some_and(|t| t.is_dir()),
            ),
            // A child that could not be read was not left out by a rule.
            Err(err) => {
                if let (Some(path), Some((dir, _, seen))) = (error_path(err), self.open.last_mut())
                    && path.parent() == Some(dir.as_path())
                    && let Some(name) = path.file_name()
                {
                    seen.insert(name.to_owned());
                }
                return Vec::new();
            }
        };
        let out = self.close_to(depth);
        if let (Some((_, d, seen)), Some(name)) = (self.open.last_mut(), path.file_name())
            && *d + 1 == depth
        {
            seen.insert(name.to_owned());
        }
        if is_dir {
            self.open.push((path.to_path_buf(), depth, HashSet::new()));
        }
        out
    }

    /// Leaves every open directory at `depth` or deeper.
    fn close_to(&mut self, depth: usize) -> Vec<Entry> {
        let mut out = Vec::new();
        while self.open.last().is_some_and(|(_, d, _)| *d >= depth) {
            let Some((dir, _, seen)) = self.open.pop() else {
                break;
            };
            // A directory that cannot be listed again was reported by the
            // walk itself when it could not be read.
            let Ok(children) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut names: Vec<OsString> = children
                .filter_map(|c| c.ok().map(|c| c.file_name()))
                .filter(|n| n != ".git" && !seen.contains(n))
                .collect();
            names.sort();
            out.extend(names.into_iter().map(|n| {
                Entry::Skipped(Notice {
                    path: display(&dir.join(n)),
                    reason: IGNORED_PATH.into(),
                    kind: NoticeKind::Ignored,
                })
            }));
        }
        out
    }
}

fn error_path(err: &ignore::Error) -> Option<&Path> {
    match err {
        ignore::Error::WithPath { path, .. } => Some(path),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            error_path(err)
        }
        _ => None,
    }
}

fn walk_error_path(err: &ignore::Error) -> String {
    error_path(err).map_or_else(|| "<walk>".to_string(), display)
}

fn too_large(path: &Path, size: u64, max: u64) -> Notice {
    Notice {
        path: display(path),
        reason: format!("file is {size} bytes, larger than the maximum file size {max}"),
        kind: NoticeKind::TooLarge,
    }
}

/// Reads a file into a blob, refusing to read more than `max` bytes even
/// if the file grew since the walk saw it.
pub fn read(path: &Path, size_hint: u64, max: u64) -> Result<Blob, Notice> {
    let fail = |e: io::Error| Notice {
        path: display(path),
        reason: format!("cannot read: {e}"),
        kind: NoticeKind::Unreadable,
    };
    let file = File::open(path).map_err(fail)?;
    let mut data = Vec::with_capacity(size_hint.min(max) as usize);
    file.take(max + 1).read_to_end(&mut data).map_err(fail)?;
    if data.len() as u64 > max {
        return Err(too_large(path, data.len() as u64, max));
    }
    Ok(Blob::new(
        Origin::File {
            path: display(path),
        },
        data,
    ))
}

/// A reader that yields at most `max` bytes and fails if there are more
/// (a file that grew past `--max-file-size` after the walk saw it, or a
/// pipe that holds more).
pub struct Capped<R> {
    inner: R,
    left: u64,
    max: u64,
}

impl<R: Read> Capped<R> {
    pub fn new(inner: R, max: u64) -> Self {
        Capped {
            inner,
            left: max,
            max,
        }
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::other(format!(
                    "larger than the maximum file size {}",
                    self.max
                ))),
            };
        }
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// Reads standard input into a blob (at most `max` bytes).
pub fn read_stdin(max: u64) -> Result<Blob, Notice> {
    let mut data = Vec::new();
    io::stdin()
        .lock()
        .take(max + 1)
        .read_to_end(&mut data)
        .map_err(|e| Notice {
            path: "-".into(),
            reason: format!("cannot read standard input: {e}"),
            kind: NoticeKind::Unreadable,
        })?;
    if data.len() as u64 > max {
        return Err(Notice {
            path: "-".into(),
            reason: format!("standard input is larger than the maximum file size {max}"),
            kind: NoticeKind::TooLarge,
        });
    }
    Ok(Blob::new(Origin::Stdin, data))
}

/// Files and directories as a source: the walk on the source's thread,
/// each file read by the worker that scans it. `-` is standard input
/// (read whole first; archives in it are not opened).
pub struct FsSource<'a> {
    pub roots: &'a [PathBuf],
    pub opts: &'a WalkOptions,
}

/// What the walk noted about a file.
#[derive(Debug)]
pub enum FileTag {
    /// To be read by the worker (`size` as the walk saw it).
    Read { path: PathBuf, size: u64 },
    /// Standard input, already read.
    Stdin,
}

impl super::Source for FsSource<'_> {
    type Tag = FileTag;
    type Worker = ();

    fn worker(&self) {}

    fn units(&self, out: &dyn super::Emit<FileTag>) {
        let (stdin, paths): (Vec<&PathBuf>, Vec<&PathBuf>) =
            self.roots.iter().partition(|p| p.as_os_str() == "-");
        if !stdin.is_empty() {
            match read_stdin(self.opts.max_file_size) {
                Ok(blob) => {
                    out.reserve(blob.data.len() as u64);
                    out.unit(super::Unit {
                        origin: blob.origin,
                        data: blob.data,
                        tag: FileTag::Stdin,
                    });
                }
                Err(n) => out.notice(n),
            }
        }
        if paths.is_empty() {
            return;
        }
        let paths: Vec<PathBuf> = paths.into_iter().cloned().collect();
        for entry in walk(&paths, self.opts) {
            match entry {
                Entry::Skipped(n) => out.notice(n),
                Entry::File { path, size } => out.unit(super::Unit {
                    origin: Origin::File {
                        path: display(&path),
                    },
                    data: Vec::new(),
                    tag: FileTag::Read { path, size },
                }),
            }
        }
    }

    fn load(&self, unit: &mut super::Unit<FileTag>, _: &mut ()) -> Result<(), Notice> {
        if let FileTag::Read { path, size } = &unit.tag {
            unit.data = read(path, *size, self.opts.max_file_size)?.data;
        }
        Ok(())
    }

    fn stream(
        &self,
        unit: &mut super::Unit<FileTag>,
        _: &mut (),
    ) -> Option<Result<Box<dyn Read + Send>, Notice>> {
        let FileTag::Read { path, size } = &unit.tag else {
            return None;
        };
        // Large files, and pipes or devices (size 0, not regular), which
        // can hold anything up to the limit.
        let large = *size > crate::pipeline::big::STREAM_ABOVE
            || (*size == 0 && std::fs::metadata(path).is_ok_and(|m| !m.is_file()));
        if !large {
            return None;
        }
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) => {
                return Some(Err(Notice {
                    path: display(path),
                    reason: format!("cannot read: {e}"),
                    kind: NoticeKind::Unreadable,
                }));
            }
        };
        Some(Ok(Box::new(Capped::new(file, self.opts.max_file_size))))
    }

    fn archives(
        &self,
        unit: &super::Unit<FileTag>,
    ) -> Option<crate::decode::archive::ArchiveLimits> {
        match unit.tag {
            FileTag::Stdin => None,
            FileTag::Read { .. } => Some(crate::decode::archive::ArchiveLimits {
                max_entry: self.opts.max_file_size,
                ..Default::default()
            }),
        }
    }
}
