//! Archives found while walking: zip (jar, war, apk, docx...), tar, and
//! gzip, bzip2 and zstd streams (a compressed tar is opened as a tar).
//! Recognised by their magic bytes, not their names. Entries are read one
//! at a time into memory, never extracted to disk, and handed on with the
//! path `archive.zip!inner/path` (nested: `a.zip!b.tar.gz!c.txt`).
//!
//! Decompression-bomb guard: an entry may not expand past `max_ratio` times
//! its compressed size (once it is over `RATIO_FLOOR`), nor past
//! `max_entry` bytes, and one archive may not expand past `max_total` bytes
//! in all; what is refused is reported, the rest of the archive is scanned.

use std::io::{Cursor, Read as _};

use crate::notice::{Notice, NoticeKind};

/// Expanded sizes up to this are never refused for their ratio: small
/// files of repetitive text compress far beyond any sane ratio.
const RATIO_FLOOR: u64 = 1 << 20;

/// How far into archives the walk goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArchiveLimits {
    /// Archives inside archives this deep are opened (1: only the file).
    pub max_depth: usize,
    /// Largest entry read (the walk's `--max-file-size`).
    pub max_entry: u64,
    /// Bytes one archive may expand to, all entries together.
    pub max_total: u64,
    /// Largest expanded/compressed ratio accepted for an entry.
    pub max_ratio: u64,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        ArchiveLimits {
            max_depth: 3,
            max_entry: 100 << 20,
            max_total: 1 << 30,
            max_ratio: 100,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Zip,
    Tar,
    Gzip,
    Bzip2,
    Zstd,
}

/// The archive or compression format `data` starts with.
pub fn kind(data: &[u8]) -> Option<Kind> {
    match data {
        [b'P', b'K', 3, 4, ..] | [b'P', b'K', 5, 6, ..] => Some(Kind::Zip),
        [0x1f, 0x8b, 8, ..] => Some(Kind::Gzip),
        [b'B', b'Z', b'h', b'1'..=b'9', ..] => Some(Kind::Bzip2),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Some(Kind::Zstd),
        _ if data.get(257..262) == Some(b"ustar") => Some(Kind::Tar),
        _ => None,
    }
}

/// What the walk is told: an entry to scan, or something not scanned.
pub trait Visitor {
    /// A file to scan: `entry` is its path inside the archive, an inner
    /// archive's entries after a `!` (`lib/app.jar!config/app.properties`);
    /// `None` is the archive's own bytes, handed on when they could not be
    /// read as the archive they announce.
    fn entry(&mut self, entry: Option<&str>, data: Vec<u8>);
    /// Something not scanned, or not wholly: an entry the limits refused
    /// (`ArchiveLimit`), or an archive found corrupt or truncated
    /// (`Unreadable`: what could be read of it was handed on, and its raw
    /// bytes too when nothing could be read).
    fn notice(&mut self, notice: Notice);
}

/// Opens the archive `data` (named `name`) and hands every file in it, and
/// in archives inside it, to `visit`. Whatever cannot be read as the
/// archive its magic bytes announce is handed on as it is, under its own
/// name: a text file that merely starts with `BZh` or `PK` is scanned like
/// any other, and a truncated archive is scanned as far as it goes.
pub fn walk(name: &str, data: &[u8], limits: &ArchiveLimits, visit: &mut dyn Visitor) {
    let mut total = 0u64;
    let mut named = Named {
        root: name.len(),
        visit,
    };
    open(name, data, limits, 1, &mut total, &mut named);
}

/// What the readers below are told: entries by their whole name
/// (`NAME!entry!inner`), as notices name them too.
trait Emit {
    fn entry(&mut self, path: String, data: Vec<u8>);
    fn notice(&mut self, notice: Notice);
}

/// Hands entries to the caller's visitor by their path inside the archive.
struct Named<'a> {
    /// Length of the archive's own name, which every entry name starts
    /// with (followed by `!`).
    root: usize,
    visit: &'a mut dyn Visitor,
}

impl Emit for Named<'_> {
    fn entry(&mut self, path: String, data: Vec<u8>) {
        let entry = path.get(self.root + 1..).filter(|e| !e.is_empty());
        self.visit.entry(entry, data);
    }
    fn notice(&mut self, notice: Notice) {
        self.visit.notice(notice);
    }
}

/// Opens one archive; if it cannot be read at all, hands its raw bytes on.
fn open(
    name: &str,
    data: &[u8],
    limits: &ArchiveLimits,
    depth: usize,
    total: &mut u64,
    visit: &mut dyn Emit,
) {
    let opened = match kind(data) {
        Some(Kind::Zip) => zip_entries(name, data, limits, depth, total, visit),
        Some(Kind::Tar) => tar_entries(name, data, limits, depth, total, visit),
        Some(Kind::Gzip) => {
            let d = flate2::read::MultiGzDecoder::new(data);
            decompressed(
                name,
                "gzip",
                Ok(Box::new(d)),
                data,
                limits,
                depth,
                total,
                visit,
            )
        }
        Some(Kind::Bzip2) => {
            let d = bzip2::read::MultiBzDecoder::new(data);
            decompressed(
                name,
                "bzip2",
                Ok(Box::new(d)),
                data,
                limits,
                depth,
                total,
                visit,
            )
        }
        Some(Kind::Zstd) => {
            let d = zstd::stream::read::Decoder::new(data).map(|d| Box::new(d) as _);
            decompressed(name, "zstd", d, data, limits, depth, total, visit)
        }
        None => return,
    };
    if !opened {
        visit.entry(name.to_string(), data.to_vec());
    }
}

/// A gzip, bzip2 or zstd stream (`what`), read through `decoder`: its
/// content (a tar is opened as one). False when not one byte of it could be
/// decompressed.
#[allow(clippy::too_many_arguments)]
fn decompressed<'a>(
    name: &str,
    what: &str,
    decoder: std::io::Result<Box<dyn std::io::Read + 'a>>,
    data: &[u8],
    limits: &ArchiveLimits,
    depth: usize,
    total: &mut u64,
    visit: &mut dyn Emit,
) -> bool {
    let read = match decoder {
        Ok(d) => read_limited(name, d, data.len() as u64, None, limits, total, visit),
        Err(e) => Read::Broken(Vec::new(), e.to_string()),
    };
    let inner = match read {
        Read::Whole(inner) => inner,
        Read::Refused => return true,
        Read::Broken(inner, why) => {
            visit.notice(broken(name, what, &why, inner.len(), true));
            if inner.is_empty() {
                return false;
            }
            // The part before the damage is scanned, and so are the raw
            // bytes: a text file with a stray magic number is still text.
            visit.entry(name.to_string(), data.to_vec());
            inner
        }
    };
    let base = name.rsplit(['/', '!']).next().unwrap_or(name);
    let stem = [".tgz", ".gz", ".bz2", ".zst", ".zstd"]
        .iter()
        .find_map(|ext| base.strip_suffix(ext))
        .unwrap_or(base);
    let stem = if base.ends_with(".tgz") {
        format!("{stem}.tar")
    } else {
        stem.to_string()
    };
    let path = format!("{name}!{stem}");
    // A compressed tar's entries are named as the tar's: `a.tgz!etc/x`.
    if kind(&inner) == Some(Kind::Tar) {
        if !tar_entries(name, &inner, limits, depth, total, visit) {
            visit.entry(path, inner);
        }
    } else {
        found(path, inner, limits, depth, total, visit);
    }
    true
}

/// The notice for an archive or entry that broke off: `read` bytes of it
/// were read (and scanned) first.
fn broken(path: &str, what: &str, why: &str, read: usize, raw_too: bool) -> Notice {
    let scanned = match (read, raw_too) {
        (0, true) => "not readable; its raw bytes were scanned".to_string(),
        (0, false) => "not readable; not scanned".to_string(),
        (n, true) => format!(
            "corrupt or truncated after {n} bytes; those and the raw bytes were scanned, the rest \
             was not"
        ),
        (n, false) => {
            format!("corrupt or truncated after {n} bytes; those were scanned, the rest was not")
        }
    };
    // Some decoders name themselves in their errors ("bzip2: invalid data").
    let why = why
        .strip_prefix(what)
        .map_or(why, |w| w.trim_start_matches(": "));
    Notice::new(
        NoticeKind::Unreadable,
        path,
        format!("{what}: {why}: {scanned}"),
    )
}

/// An entry: opened again if it is an archive (up to the depth limit),
/// otherwise handed to the visitor.
fn found(
    path: String,
    data: Vec<u8>,
    limits: &ArchiveLimits,
    depth: usize,
    total: &mut u64,
    visit: &mut dyn Emit,
) {
    if kind(&data).is_none() {
        visit.entry(path, data);
    } else if depth < limits.max_depth {
        open(&path, &data, limits, depth + 1, total, visit);
    } else {
        visit.notice(Notice::new(
            NoticeKind::ArchiveLimit,
            path,
            format!(
                "archive nested more than {} levels deep; not opened",
                limits.max_depth
            ),
        ));
    }
}

/// What reading an entry gave.
enum Read {
    Whole(Vec<u8>),
    /// Over a limit: not read (and told to the visitor).
    Refused,
    /// Broke off with an error after the bytes given.
    Broken(Vec<u8>, String),
}

/// Reads at most the allowed bytes of an entry whose compressed size is
/// `packed` and whose expanded size, if the archive declares one, is
/// `declared`. An entry declared over the limit is refused unread; one
/// that expands past its declared size is refused as crafted. Refused
/// entries do not spend the archive's budget: a thousand bombs in front
/// cannot hide the file after them.
fn read_limited(
    path: &str,
    reader: impl std::io::Read,
    packed: u64,
    declared: Option<u64>,
    limits: &ArchiveLimits,
    total: &mut u64,
    visit: &mut dyn Emit,
) -> Read {
    let by_ratio = packed.saturating_mul(limits.max_ratio).max(RATIO_FLOOR);
    let left = limits.max_total.saturating_sub(*total);
    let limit = limits.max_entry.min(by_ratio).min(left);
    let refuse = |visit: &mut dyn Emit, (kind, why): (NoticeKind, String)| {
        visit.notice(Notice::new(kind, path, why));
        Read::Refused
    };
    let over_limit = |size: u64| {
        if limit == left {
            (
                NoticeKind::ArchiveLimit,
                format!(
                    "the archive expands past {} bytes in all (decompression-bomb guard); the rest \
                 was not scanned",
                    limits.max_total
                ),
            )
        } else if limit == by_ratio {
            (
                NoticeKind::ArchiveLimit,
                format!(
                    "expands more than {}:1 ({size} bytes from {packed} compressed; \
                 decompression-bomb guard); not scanned",
                    limits.max_ratio
                ),
            )
        } else {
            (
                NoticeKind::TooLarge,
                format!(
                    "entry is {size} bytes, larger than the maximum file size {}; not scanned",
                    limits.max_entry
                ),
            )
        }
    };
    if let Some(size) = declared
        && size > limit
    {
        return refuse(visit, over_limit(size));
    }
    let cap = declared.map_or(limit, |d| d.min(limit));
    let mut out = Vec::new();
    let res = reader.take(cap + 1).read_to_end(&mut out);
    let n = out.len() as u64;
    if n > cap {
        return match declared {
            Some(d) if d < limit => refuse(
                visit,
                (
                    NoticeKind::ArchiveLimit,
                    format!(
                        "expands past the {d} bytes its archive declares (corrupt or crafted); \
                         not scanned"
                    ),
                ),
            ),
            _ => refuse(visit, over_limit(n)),
        };
    }
    *total += n;
    match res {
        Ok(_) => Read::Whole(out),
        Err(e) => Read::Broken(out, e.to_string()),
    }
}

/// False when the archive cannot be read at all.
fn zip_entries(
    name: &str,
    data: &[u8],
    limits: &ArchiveLimits,
    depth: usize,
    total: &mut u64,
    visit: &mut dyn Emit,
) -> bool {
    let mut archive = match zip::ZipArchive::new(Cursor::new(data)) {
        Ok(a) => a,
        Err(e) => {
            visit.notice(broken(name, "zip", &e.to_string(), 0, true));
            return false;
        }
    };
    for i in 0..archive.len() {
        let file = match archive.by_index(i) {
            Ok(f) => f,
            // Encrypted entries, unknown compression methods: not opened
            // by design, unlike a damaged entry.
            Err(zip::result::ZipError::UnsupportedArchive(why)) => {
                visit.notice(Notice::new(
                    NoticeKind::ArchiveLimit,
                    format!("{name}!#{i}"),
                    format!("zip entry not supported: {why}; not scanned"),
                ));
                continue;
            }
            Err(e) => {
                visit.notice(broken(
                    &format!("{name}!#{i}"),
                    "zip entry",
                    &e.to_string(),
                    0,
                    false,
                ));
                continue;
            }
        };
        if file.is_dir() {
            continue;
        }
        let inner = match file.name() {
            Ok(n) => n.into_owned(),
            Err(_) => String::from_utf8_lossy(file.name_raw()).into_owned(),
        };
        let path = format!("{name}!{inner}");
        let (packed, declared) = (file.compressed_size(), file.size());
        match read_limited(&path, file, packed, Some(declared), limits, total, visit) {
            Read::Whole(bytes) => found(path, bytes, limits, depth, total, visit),
            Read::Refused => {}
            Read::Broken(bytes, why) => {
                visit.notice(broken(&path, "zip entry", &why, bytes.len(), false));
                if !bytes.is_empty() {
                    found(path, bytes, limits, depth, total, visit);
                }
            }
        }
        if *total >= limits.max_total {
            break;
        }
    }
    true
}

/// False when not one entry of the archive can be read.
fn tar_entries(
    name: &str,
    data: &[u8],
    limits: &ArchiveLimits,
    depth: usize,
    total: &mut u64,
    visit: &mut dyn Emit,
) -> bool {
    let mut archive = tar::Archive::new(Cursor::new(data));
    let entries = match archive.entries() {
        Ok(e) => e,
        Err(e) => {
            visit.notice(broken(name, "tar", &tar_error(&e), 0, true));
            return false;
        }
    };
    for (read, entry) in entries.enumerate() {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let raw = read == 0;
                let why = tar_error(&e);
                visit.notice(if raw {
                    broken(name, "tar", &why, 0, true)
                } else {
                    Notice::new(
                        NoticeKind::Unreadable,
                        name,
                        format!(
                            "tar: {why}: corrupt or truncated after {read} entries; those were \
                             scanned, the rest was not"
                        ),
                    )
                });
                return !raw;
            }
        };
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = format!("{name}!{}", String::from_utf8_lossy(&entry.path_bytes()));
        // A tar entry is stored whole: its size is its "compressed" size.
        let size = entry.size();
        match read_limited(&path, entry, size, Some(size), limits, total, visit) {
            Read::Whole(bytes) => found(path, bytes, limits, depth, total, visit),
            Read::Refused => {}
            Read::Broken(bytes, why) => {
                visit.notice(broken(&path, "tar entry", &why, bytes.len(), false));
                if !bytes.is_empty() {
                    found(path, bytes, limits, depth, total, visit);
                }
            }
        }
        if *total >= limits.max_total {
            break;
        }
    }
    true
}

/// A tar error without the input it quotes: the `tar` crate's messages end
/// with the header's bytes and the entry's name (`numeric field was not a
/// number: … when getting cksum for <name>`), and a name can be a secret.
pub fn tar_error(e: &std::io::Error) -> String {
    let msg = e.to_string();
    let cut = [": ", " when ", " for "]
        .iter()
        .filter_map(|sep| msg.find(sep))
        .min()
        .unwrap_or(msg.len());
    msg[..cut].trim().to_string()
}
