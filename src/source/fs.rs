//! Files and directories: walks roots with `ignore` (respecting .gitignore
//! unless told not to, including hidden files, never entering `.git/`) and
//! reads each file into a blob.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::blob::{Blob, Origin};

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
    Skipped(Skip),
}

/// Something not scanned, and why. `error` marks failures (unreadable,
/// vanished) as opposed to policy (too large), for `--strict`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skip {
    pub path: String,
    pub reason: String,
    pub error: bool,
}

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

/// Walks `roots` lazily; items are yielded as the walk finds them.
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
        .require_git(false)
        .follow_links(false)
        .filter_entry(|e| e.file_name() != ".git");
    let max = opts.max_file_size;
    builder.build().filter_map(move |res| match res {
        Err(err) => Some(Entry::Skipped(Skip {
            path: walk_error_path(&err),
            reason: err.to_string(),
            error: true,
        })),
        Ok(e) => {
            if !e.file_type().is_some_and(|t| t.is_file()) {
                return None;
            }
            let path = e.into_path();
            match std::fs::metadata(&path) {
                Err(err) => Some(Entry::Skipped(Skip {
                    path: display(&path),
                    reason: format!("cannot read metadata: {err}"),
                    error: true,
                })),
                Ok(m) if m.len() > max => Some(Entry::Skipped(too_large(&path, m.len(), max))),
                Ok(m) => Some(Entry::File {
                    path,
                    size: m.len(),
                }),
            }
        }
    })
}

fn walk_error_path(err: &ignore::Error) -> String {
    match err {
        ignore::Error::WithPath { path, .. } => display(path),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            walk_error_path(err)
        }
        _ => "<walk>".to_string(),
    }
}

fn too_large(path: &Path, size: u64, max: u64) -> Skip {
    Skip {
        path: display(path),
        reason: format!("file is {size} bytes, larger than --max-file-size {max}"),
        error: false,
    }
}

/// Reads a file into a blob, refusing to read more than `max` bytes even
/// if the file grew since the walk saw it.
pub fn read(path: &Path, size_hint: u64, max: u64) -> Result<Blob, Skip> {
    let fail = |e: io::Error| Skip {
        path: display(path),
        reason: format!("cannot read: {e}"),
        error: true,
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

/// Reads standard input into a blob (at most `max` bytes).
pub fn read_stdin(max: u64) -> Result<Blob, Skip> {
    let mut data = Vec::new();
    io::stdin()
        .lock()
        .take(max + 1)
        .read_to_end(&mut data)
        .map_err(|e| Skip {
            path: "-".into(),
            reason: format!("cannot read standard input: {e}"),
            error: true,
        })?;
    if data.len() as u64 > max {
        return Err(Skip {
            path: "-".into(),
            reason: format!("standard input is larger than --max-file-size {max}"),
            error: false,
        });
    }
    Ok(Blob::new(Origin::Stdin, data))
}
