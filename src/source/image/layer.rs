//! One layer, streamed: stored bytes → SHA-256 (verified against the
//! manifest's digest once the last byte went by) → decompressor chosen by
//! the magic bytes (gzip, zstd or none; media types lie) → tar reader →
//! each regular file handed out whole (up to `max_file_size`), or, over
//! `pipeline::big::STREAM_ABOVE`, through a `Piped` reader as the layer is
//! read, for the run loop to scan in windows. Nothing is written to disk
//! and at most one file of the layer (or a few pipe chunks of a large one)
//! is held at a time.
//!
//! Whiteouts (`.wh.NAME`, `.wh..wh..opq`) are recorded, not scanned, so
//! the caller can tell which findings a later layer deleted.

use std::io::{self, BufRead, BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use sha2::{Digest, Sha256};

use crate::notice::NoticeKind;

/// A file found in a layer, or a note about an entry that was not scanned.
#[derive(Debug)]
pub enum LayerItem {
    /// `n` bytes are about to be read into memory for the next file: the
    /// caller may wait here until it has room (memory stays bounded
    /// whatever the file sizes). Always followed by `File` or `Release`.
    Reserve(u64),
    /// The reserved bytes were not read after all (the layer broke).
    Release(u64),
    File {
        path: String,
        data: Vec<u8>,
    },
    /// A file over `STREAM_ABOVE` bytes: its `size` bytes come through
    /// `reader` while the layer is read (the layer's reader waits until
    /// they are taken), so it is never held whole. Dropping the reader
    /// lets the layer go on without it.
    Stream {
        path: String,
        size: u64,
        reader: Piped,
    },
    /// `error`: a failure (hostile path) rather than policy (too large).
    Note {
        path: String,
        reason: String,
        kind: NoticeKind,
    },
}

/// A whiteout: `path` deleted (with everything under it), or for an
/// opaque whiteout every lower-layer entry under directory `path`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Whiteout {
    pub path: String,
    pub opaque: bool,
}

impl Whiteout {
    /// True if this whiteout hides `path` (a file of a lower layer).
    pub fn hides(&self, path: &str) -> bool {
        let under = |dir: &str| {
            dir.is_empty()
                || (path.len() > dir.len()
                    && path.starts_with(dir)
                    && path.as_bytes()[dir.len()] == b'/')
        };
        if self.opaque {
            under(&self.path)
        } else {
            path == self.path || under(&self.path)
        }
    }
}

/// What reading a layer left besides its files.
#[derive(Debug, Default)]
pub struct LayerRead {
    pub whiteouts: Vec<Whiteout>,
    /// Stored (compressed) bytes read.
    pub stored_bytes: u64,
    /// Failures that stopped the layer or make it untrustworthy (truncated,
    /// corrupt, digest mismatch); files read before them were handed out.
    pub errors: Vec<String>,
    /// The stored bytes stopped coming within the source's deadline (the
    /// errors say so): a timeout, not a corrupt layer.
    pub timed_out: bool,
}

/// Decompressed bytes past which a layer must also stay under
/// `BOMB_RATIO` times its stored size (a decompression bomb guard: gzip
/// tops out near 1032:1, so real layers stay far below).
const BOMB_FLOOR: u64 = 1 << 30;
const BOMB_RATIO: u64 = 200;

/// Reads `stored` (a layer's stored bytes), hands each regular file to
/// `emit`, and checks the bytes hash to `digest` (`sha256:…`).
pub fn read_layer(
    stored: Box<dyn Read + Send>,
    digest: &str,
    max_file_size: u64,
    emit: &mut dyn FnMut(LayerItem),
) -> LayerRead {
    let stored_count = Arc::new(AtomicU64::new(0));
    let mut raw = BufReader::with_capacity(
        256 * 1024,
        Hashing {
            inner: stored,
            hasher: Sha256::new(),
            count: stored_count.clone(),
        },
    );
    let mut out = LayerRead::default();
    match decoder(&mut raw) {
        Err(e) => out.errors.push(format!("cannot start decompressing: {e}")),
        Ok(decoded) => {
            let guarded = BombGuard {
                inner: decoded,
                stored: stored_count,
                decoded: 0,
            };
            read_tar(guarded, max_file_size, emit, &mut out);
        }
    }
    // The tar end marker can come before the end of the stored bytes
    // (padding, compressor trailer): read them all so the digest covers
    // the whole blob.
    let drained = io::copy(&mut raw, &mut io::sink());
    let hashing = raw.into_inner();
    out.stored_bytes = hashing.count.load(Ordering::Relaxed);
    if let Err(e) = drained {
        // Not every byte was read (a broken download, or a source that
        // verifies the digest itself and says so at the end): there is no
        // whole blob to compare, and the error says why.
        out.timed_out = e.kind() == io::ErrorKind::TimedOut;
        out.errors.push(format!("cannot read to the end: {e}"));
        return out;
    }
    match digest.split_once(':') {
        Some(("sha256", expected)) => {
            let actual = super::hex(&hashing.hasher.finalize());
            if !actual.eq_ignore_ascii_case(expected) {
                // The mismatch explains any tar error: report it first.
                out.errors.insert(
                    0,
                    format!("digest mismatch: the manifest says {digest}, the bytes hash to sha256:{actual}"),
                );
            }
        }
        _ => out.errors.push(format!(
            "cannot verify digest `{digest}`: only sha256 is supported"
        )),
    }
    out
}

fn decoder<'a, R: BufRead + 'a>(raw: &'a mut R) -> io::Result<Box<dyn Read + 'a>> {
    let head = raw.fill_buf()?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(raw))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::with_buffer(raw)?)
    } else {
        Box::new(raw)
    })
}

fn read_tar(decoded: impl Read, max: u64, emit: &mut dyn FnMut(LayerItem), out: &mut LayerRead) {
    let mut archive = tar::Archive::new(decoded);
    let entries = match archive.entries() {
        Ok(e) => e,
        Err(e) => {
            out.errors.push(format!(
                "not a tar archive: {}",
                crate::decode::archive::tar_error(&e)
            ));
            return;
        }
    };
    for entry in entries {
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) => {
                out.errors.push(format!(
                    "truncated or corrupt layer: {}",
                    crate::decode::archive::tar_error(&e)
                ));
                return;
            }
        };
        let raw_path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let path = normalize(&raw_path);
        let (dir, name) = match path.rsplit_once('/') {
            Some((d, n)) => (d, n),
            None => ("", path.as_str()),
        };
        if name == ".wh..wh..opq" {
            out.whiteouts.push(Whiteout {
                path: dir.to_string(),
                opaque: true,
            });
            continue;
        }
        if let Some(deleted) = name.strip_prefix(".wh.") {
            let path = if dir.is_empty() {
                deleted.to_string()
            } else {
                format!("{dir}/{deleted}")
            };
            out.whiteouts.push(Whiteout {
                path,
                opaque: false,
            });
            continue;
        }
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_contiguous()) {
            continue;
        }
        if raw_path.split('/').any(|c| c == "..") {
            // Nothing is extracted, so it cannot escape here; but a layer
            // that tries is hostile and the scan is not what a runtime sees.
            emit(LayerItem::Note {
                path: path.clone(),
                reason: format!(
                    "tar entry path `{raw_path}` escapes the layer root (scanned anyway)"
                ),
                kind: NoticeKind::Unreadable,
            });
        }
        let size = entry.size();
        if size > max {
            emit(LayerItem::Note {
                path,
                reason: format!("file is {size} bytes, larger than the maximum file size {max}"),
                kind: NoticeKind::TooLarge,
            });
            continue;
        }
        if size > crate::pipeline::big::STREAM_ABOVE {
            let (tx, reader) = piped();
            emit(LayerItem::Stream {
                path: path.clone(),
                size,
                reader,
            });
            if let Err(e) = pump(&mut entry, size, &path, &tx) {
                out.errors.push(e);
                return;
            }
            continue;
        }
        emit(LayerItem::Reserve(size));
        let mut data = Vec::with_capacity(size as usize);
        // The header's size bounds the read: a file never grows past what
        // was reserved.
        if let Err(e) = (&mut entry).take(size).read_to_end(&mut data) {
            emit(LayerItem::Release(size));
            out.errors.push(format!(
                "truncated or corrupt layer reading {path}: {}",
                crate::decode::archive::tar_error(&e)
            ));
            return;
        }
        if (data.len() as u64) < size {
            emit(LayerItem::Release(size));
            out.errors.push(format!(
                "truncated layer: {path} ends after {} of {size} bytes",
                data.len()
            ));
            return;
        }
        emit(LayerItem::File { path, data });
    }
}

/// Bytes of one piece handed through a `Piped` reader, and pieces in
/// flight: a large file costs the layer's reader at most 4 MiB on top of
/// the window its scan holds.
const PIPE_CHUNK: usize = 1 << 20;
const PIPE_DEPTH: usize = 4;

enum Piece {
    Bytes(Vec<u8>),
    End,
    Failed(String),
}

/// The reading end of a large layer file: its bytes as the layer's reader
/// hands them over. A file cut short (a broken layer, a reader that
/// stopped) is a read error, never a clean end.
pub struct Piped {
    rx: Receiver<Piece>,
    piece: Vec<u8>,
    at: usize,
    done: bool,
}

impl std::fmt::Debug for Piped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Piped")
    }
}

fn piped() -> (SyncSender<Piece>, Piped) {
    let (tx, rx) = sync_channel(PIPE_DEPTH);
    let reader = Piped {
        rx,
        piece: Vec::new(),
        at: 0,
        done: false,
    };
    (tx, reader)
}

impl Read for Piped {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.at < self.piece.len() {
                let n = buf.len().min(self.piece.len() - self.at);
                buf[..n].copy_from_slice(&self.piece[self.at..self.at + n]);
                self.at += n;
                return Ok(n);
            }
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Piece::Bytes(b)) => {
                    self.piece = b;
                    self.at = 0;
                }
                Ok(Piece::End) => self.done = true,
                Ok(Piece::Failed(why)) => {
                    self.done = true;
                    return Err(io::Error::other(why));
                }
                Err(_) => {
                    self.done = true;
                    return Err(io::Error::other("the layer's reader stopped"));
                }
            }
        }
    }
}

/// Hands the `size` bytes of a layer file to its `Piped` reader; a layer
/// that breaks off inside the file is an error of the layer (told to the
/// reader too). When the reader is gone the rest of the file is left to
/// the tar reader, which skips it.
fn pump(
    entry: &mut impl Read,
    size: u64,
    path: &str,
    tx: &SyncSender<Piece>,
) -> Result<(), String> {
    let mut left = size;
    while left > 0 {
        let want = left.min(PIPE_CHUNK as u64) as usize;
        let mut piece = vec![0u8; want];
        let mut got = 0;
        while got < want {
            match entry.read(&mut piece[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let why = format!(
                        "truncated or corrupt layer reading {path}: {}",
                        crate::decode::archive::tar_error(&e)
                    );
                    let _ = tx.send(Piece::Failed(why.clone()));
                    return Err(why);
                }
            }
        }
        if got < want {
            let why = format!(
                "truncated layer: {path} ends after {} of {size} bytes",
                size - left + got as u64
            );
            let _ = tx.send(Piece::Failed(why.clone()));
            return Err(why);
        }
        left -= want as u64;
        if tx.send(Piece::Bytes(piece)).is_err() {
            return Ok(());
        }
    }
    let _ = tx.send(Piece::End);
    Ok(())
}

/// `./a/b`, `/a/b` and `a/b` are the same file in a layer.
fn normalize(p: &str) -> String {
    let mut s = p;
    loop {
        if let Some(r) = s.strip_prefix("./") {
            s = r;
        } else if let Some(r) = s.strip_prefix('/') {
            s = r;
        } else {
            break;
        }
    }
    s.trim_end_matches('/').to_string()
}

struct Hashing {
    inner: Box<dyn Read + Send>,
    hasher: Sha256,
    count: Arc<AtomicU64>,
}

impl Read for Hashing {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

struct BombGuard<R> {
    inner: R,
    stored: Arc<AtomicU64>,
    decoded: u64,
}

impl<R: Read> Read for BombGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.decoded += n as u64;
        let stored = self.stored.load(Ordering::Relaxed).max(1);
        if self.decoded > BOMB_FLOOR && self.decoded / stored > BOMB_RATIO {
            return Err(io::Error::other(format!(
                "decompression bomb: {} bytes from {stored} stored bytes (over {BOMB_RATIO}:1)",
                self.decoded
            )));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whiteouts_hide_the_file_and_what_is_under_a_deleted_dir() {
        let w = Whiteout {
            path: "app/.env".into(),
            opaque: false,
        };
        assert!(w.hides("app/.env"));
        assert!(w.hides("app/.env/x"));
        assert!(!w.hides("app/.envrc"));
        let o = Whiteout {
            path: "etc".into(),
            opaque: true,
        };
        assert!(o.hides("etc/passwd"));
        assert!(!o.hides("etc"));
        assert!(!o.hides("etcetera/x"));
    }

    #[test]
    fn paths_lose_leading_dot_and_slash() {
        assert_eq!(normalize("./app/.env"), "app/.env");
        assert_eq!(normalize("/etc/x"), "etc/x");
    }
}
