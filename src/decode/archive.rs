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

use std::io::{Cursor, Read};

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
    fn entry(&mut self, path: String, data: Vec<u8>);
    fn skip(&mut self, path: String, reason: String);
}

/// Opens the archive `data` (named `name`) and hands every file in it, and
/// in archives inside it, to `visit`.
pub fn walk(name: &str, data: &[u8], limits: &ArchiveLimits, visit: &mut dyn Visitor) {
    let mut total = 0u64;
    open(name, data, limits, 1, &mut total, visit);
}

fn open(
    name: &str,
    data: &[u8],
    limits: &ArchiveLimits,
    depth: usize,
    total: &mut u64,
    visit: &mut dyn Visitor,
) {
    match kind(data) {
        Some(Kind::Zip) => zip_entries(name, data, limits, depth, total, visit),
        Some(Kind::Tar) => tar_entries(name, data, limits, depth, total, visit),
        Some(k) => {
            let Some(inner) = decompress(name, k, data, data.len() as u64, limits, total, visit)
            else {
                return;
            };
            if kind(&inner) == Some(Kind::Tar) {
                tar_entries(name, &inner, limits, depth, total, visit);
            } else {
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
                found(format!("{name}!{stem}"), inner, limits, depth, total, visit);
            }
        }
        None => {}
    }
}

/// An entry: opened again if it is an archive (up to the depth limit),
/// otherwise handed to the visitor.
fn found(
    path: String,
    data: Vec<u8>,
    limits: &ArchiveLimits,
    depth: usize,
    total: &mut u64,
    visit: &mut dyn Visitor,
) {
    if kind(&data).is_none() {
        visit.entry(path, data);
    } else if depth < limits.max_depth {
        open(&path, &data, limits, depth + 1, total, visit);
    } else {
        visit.skip(
            path,
            format!(
                "archive nested more than {} levels deep; not opened",
                limits.max_depth
            ),
        );
    }
}

/// Reads at most the allowed bytes of an entry whose compressed size is
/// `packed`; `None` (and a skip) when it is larger or broken.
fn read_limited(
    path: &str,
    reader: impl Read,
    packed: u64,
    limits: &ArchiveLimits,
    total: &mut u64,
    visit: &mut dyn Visitor,
) -> Option<Vec<u8>> {
    let by_ratio = packed.saturating_mul(limits.max_ratio).max(RATIO_FLOOR);
    let left = limits.max_total.saturating_sub(*total);
    let limit = limits.max_entry.min(by_ratio).min(left);
    let mut out = Vec::new();
    let res = reader.take(limit + 1).read_to_end(&mut out);
    *total += out.len() as u64;
    if out.len() as u64 > limit {
        let why = if limit == left {
            format!(
                "the archive expands past {} bytes in all (decompression-bomb guard); the rest \
                 was not scanned",
                limits.max_total
            )
        } else if limit == by_ratio {
            format!(
                "expands more than {}:1 ({packed} compressed bytes; decompression-bomb guard); \
                 not scanned",
                limits.max_ratio
            )
        } else {
            format!(
                "entry is larger than --max-file-size {}; not scanned",
                limits.max_entry
            )
        };
        visit.skip(path.to_string(), why);
        return None;
    }
    if let Err(e) = res {
        visit.skip(
            path.to_string(),
            format!("cannot decompress: {e}; not scanned"),
        );
        return None;
    }
    Some(out)
}

fn decompress(
    name: &str,
    k: Kind,
    data: &[u8],
    packed: u64,
    limits: &ArchiveLimits,
    total: &mut u64,
    visit: &mut dyn Visitor,
) -> Option<Vec<u8>> {
    match k {
        Kind::Gzip => read_limited(
            name,
            flate2::read::MultiGzDecoder::new(data),
            packed,
            limits,
            total,
            visit,
        ),
        Kind::Bzip2 => read_limited(
            name,
            bzip2::read::MultiBzDecoder::new(data),
            packed,
            limits,
            total,
            visit,
        ),
        Kind::Zstd => match zstd::stream::read::Decoder::new(data) {
            Ok(d) => read_limited(name, d, packed, limits, total, visit),
            Err(e) => {
                visit.skip(name.to_string(), format!("cannot read zstd data: {e}"));
                None
            }
        },
        Kind::Zip | Kind::Tar => None,
    }
}

fn zip_entries(
    name: &str,
    data: &[u8],
    limits: &ArchiveLimits,
    depth: usize,
    total: &mut u64,
    visit: &mut dyn Visitor,
) {
    let mut archive = match zip::ZipArchive::new(Cursor::new(data)) {
        Ok(a) => a,
        Err(e) => {
            visit.skip(name.to_string(), format!("not a readable zip archive: {e}"));
            return;
        }
    };
    for i in 0..archive.len() {
        let file = match archive.by_index(i) {
            Ok(f) => f,
            Err(e) => {
                visit.skip(
                    format!("{name}!#{i}"),
                    format!("cannot read zip entry: {e}"),
                );
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
        // The declared sizes may lie; `read_limited` does not trust them.
        let packed = file.compressed_size();
        if let Some(bytes) = read_limited(&path, file, packed, limits, total, visit) {
            found(path, bytes, limits, depth, total, visit);
        }
        if *total >= limits.max_total {
            return;
        }
    }
}

fn tar_entries(
    name: &str,
    data: &[u8],
    limits: &ArchiveLimits,
    depth: usize,
    total: &mut u64,
    visit: &mut dyn Visitor,
) {
    let mut archive = tar::Archive::new(Cursor::new(data));
    let entries = match archive.entries() {
        Ok(e) => e,
        Err(e) => {
            visit.skip(
                name.to_string(),
                format!("not a readable tar archive: {}", tar_error(&e)),
            );
            return;
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                visit.skip(
                    name.to_string(),
                    format!(
                        "tar archive is corrupt or truncated ({}); the rest was not scanned",
                        tar_error(&e)
                    ),
                );
                return;
            }
        };
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = format!("{name}!{}", String::from_utf8_lossy(&entry.path_bytes()));
        // A tar entry is stored whole: its size is its "compressed" size.
        let size = entry.size();
        if let Some(bytes) = read_limited(&path, entry, size, limits, total, visit) {
            found(path, bytes, limits, depth, total, visit);
        }
        if *total >= limits.max_total {
            return;
        }
    }
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
