//! Archives found while walking: zip (jar, war, apk, docx...), tar, and
//! gzip, bzip2 and zstd streams (a compressed tar is opened as a tar).
//! Recognised by their magic bytes, not their names. Entries are read one
//! at a time, never extracted to disk, and handed on with the path
//! `archive.zip!inner/path` (nested: `a.zip!b.tar.gz!c.txt`): whole when
//! they are small, as a stream (`Visitor::stream`, which the run loop scans
//! in windows) when larger than `ArchiveLimits::stream_above`, so an entry's
//! size costs no memory. A compressed stream is decompressed as it is
//! read, never held whole; `walk_reader` opens an archive too large to hold
//! from a reader (a zip, whose directory is at its end, through an unnamed
//! temporary file).
//!
//! Decompression-bomb guard: an entry may not expand past `max_ratio` times
//! its compressed size (once it is over `RATIO_FLOOR`), nor past
//! `max_entry` bytes, and one archive may not expand past `max_total` bytes
//! in all; what is refused is reported, the rest of the archive is scanned.

use std::cell::Cell;
use std::io::{self, Cursor, Read, Seek};
use std::rc::Rc;

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
    /// Entries larger than this are handed on as streams, not whole.
    pub stream_above: u64,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        ArchiveLimits {
            max_depth: 3,
            max_entry: 100 << 20,
            max_total: 1 << 30,
            max_ratio: 100,
            stream_above: 32 << 20,
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
    /// A file larger than `ArchiveLimits::stream_above`, handed on as it is
    /// read: the visitor reads `reader` to its end or to an error, and says
    /// how many bytes it read and the error that stopped it (default: read
    /// and dropped).
    fn stream(&mut self, _entry: Option<&str>, reader: &mut dyn Read) -> (u64, Option<io::Error>) {
        match io::copy(reader, &mut io::sink()) {
            Ok(n) => (n, None),
            Err(e) => (0, Some(e)),
        }
    }
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
    let mut w = Walker {
        limits,
        total: 0,
        root: name.len(),
        visit,
    };
    w.open(name, data, 1);
}

/// Opens the archive `reader` yields from its first byte (named `name`)
/// without holding it whole, as `walk` does. True when its raw bytes are
/// still to be scanned, which only the caller can read again: nothing of
/// it could be read as the archive its magic bytes announce, or it broke
/// off (the notice says "and the raw bytes were scanned").
pub fn walk_reader(
    name: &str,
    reader: &mut dyn Read,
    limits: &ArchiveLimits,
    visit: &mut dyn Visitor,
) -> bool {
    let mut w = Walker {
        limits,
        total: 0,
        root: name.len(),
        visit,
    };
    w.open_reader(name, reader, 1)
}

/// Bytes read before deciding what a stream is (`ustar` sits at 257).
const SNIFF: usize = 512;

/// Bytes of a large nested entry kept while it is opened as an archive:
/// when it turns out not to be one (it failed at once), these and the rest
/// are scanned raw.
const RECORD: usize = 1 << 20;

/// The compressed size an expanded size is held against: known, or
/// counted as a stream is read (a compressed stream read from a reader).
#[derive(Clone)]
enum Packed {
    Known(u64),
    Counted(Rc<Cell<u64>>),
}

impl Packed {
    fn get(&self) -> u64 {
        match self {
            Packed::Known(n) => *n,
            Packed::Counted(c) => c.get(),
        }
    }
}

/// One walk: the limits, the bytes spent so far, the caller's visitor.
struct Walker<'a> {
    limits: &'a ArchiveLimits,
    /// Bytes all entries expanded to so far (`max_total`).
    total: u64,
    /// Length of the archive's own name, which every entry name starts
    /// with (followed by `!`).
    root: usize,
    visit: &'a mut dyn Visitor,
}

impl Walker<'_> {
    fn inner<'p>(&self, path: &'p str) -> Option<&'p str> {
        path.get(self.root + 1..).filter(|e| !e.is_empty())
    }

    fn entry(&mut self, path: &str, data: Vec<u8>) {
        let entry = self.inner(path);
        self.visit.entry(entry, data);
    }

    fn stream(&mut self, path: &str, reader: &mut dyn Read) -> (u64, Option<io::Error>) {
        let entry = self.inner(path);
        self.visit.stream(entry, reader)
    }

    fn notice(&mut self, notice: Notice) {
        self.visit.notice(notice);
    }

    /// Opens one archive in memory; if it cannot be read at all, hands its
    /// raw bytes on.
    fn open(&mut self, name: &str, data: &[u8], depth: usize) {
        let packed = Packed::Known(data.len() as u64);
        let raw = match kind(data) {
            Some(Kind::Zip) => !self.zip_entries(name, Cursor::new(data), depth),
            Some(Kind::Tar) => !self.tar_entries(name, &mut &data[..], depth, None),
            Some(Kind::Gzip) => {
                let d = flate2::read::MultiGzDecoder::new(data);
                self.decompressed(name, "gzip", Ok(Box::new(d)), packed, depth)
            }
            Some(Kind::Bzip2) => {
                let d = bzip2::read::MultiBzDecoder::new(data);
                self.decompressed(name, "bzip2", Ok(Box::new(d)), packed, depth)
            }
            Some(Kind::Zstd) => {
                let d = zstd::stream::read::Decoder::new(data).map(|d| Box::new(d) as _);
                self.decompressed(name, "zstd", d, packed, depth)
            }
            None => return,
        };
        // What could not be read as the archive it announces, or broke off
        // inside it, is scanned raw too: a text file with a stray magic
        // number is still text.
        if raw {
            self.entry(name, data.to_vec());
        }
    }

    /// Opens the archive `reader` yields, as it is read. True when its raw
    /// bytes are still to be scanned (see `walk_reader`).
    fn open_reader(&mut self, name: &str, reader: &mut dyn Read, depth: usize) -> bool {
        let mut head = Vec::with_capacity(SNIFF);
        if let Err(e) = reader.take(SNIFF as u64).read_to_end(&mut head) {
            self.notice(broken(name, "archive", &e.to_string(), 0, false));
            return false;
        }
        let Some(k) = kind(&head) else {
            return true;
        };
        let mut input = Prefixed::new(head, reader);
        if k == Kind::Zip {
            // The directory is at the end: the zip goes to an unnamed file
            // (gone with the process, whatever ends it) to be read in place.
            let spooled = tempfile::tempfile().and_then(|mut f| {
                io::copy(&mut input, &mut f)?;
                f.rewind()?;
                Ok(f)
            });
            let mut file = match spooled {
                Ok(f) => f,
                Err(e) => {
                    self.notice(Notice::new(
                        NoticeKind::Unreadable,
                        name,
                        format!(
                            "zip: cannot copy to a temporary file to open it: {e}; not scanned"
                        ),
                    ));
                    return false;
                }
            };
            if !self.zip_entries(name, &mut file, depth) {
                let (_, err) = match file.rewind() {
                    Ok(()) => self.stream(name, &mut file),
                    Err(e) => (0, Some(e)),
                };
                if let Some(e) = err {
                    self.notice(Notice::new(
                        NoticeKind::Unreadable,
                        name,
                        format!("cannot read its raw bytes again: {e}"),
                    ));
                }
            }
            return false;
        }
        let counted = Rc::new(Cell::new(0));
        let mut input = Counting {
            inner: input,
            count: counted.clone(),
        };
        let packed = Packed::Counted(counted);
        match k {
            Kind::Zip => unreachable!("a zip was opened above"),
            Kind::Tar => !self.tar_entries(name, &mut input, depth, None),
            Kind::Gzip => {
                let d = flate2::read::MultiGzDecoder::new(&mut input);
                self.decompressed(name, "gzip", Ok(Box::new(d)), packed, depth)
            }
            Kind::Bzip2 => {
                let d = bzip2::read::MultiBzDecoder::new(&mut input);
                self.decompressed(name, "bzip2", Ok(Box::new(d)), packed, depth)
            }
            Kind::Zstd => {
                let d = zstd::stream::read::Decoder::new(&mut input).map(|d| Box::new(d) as _);
                self.decompressed(name, "zstd", d, packed, depth)
            }
        }
    }

    /// An archive inside a large entry, opened as the entry streams; when
    /// it cannot be read as one, the entry is scanned raw: from the bytes
    /// kept while trying (`RECORD`) and the rest, or, when more was read
    /// than kept, named as not scanned raw.
    fn open_nested(&mut self, path: &str, reader: &mut dyn Read, depth: usize) {
        let mut rec = Recording {
            inner: reader,
            kept: Vec::new(),
            overflow: false,
        };
        if !self.open_reader(path, &mut rec, depth) {
            return;
        }
        if rec.overflow {
            self.notice(Notice::new(
                NoticeKind::Unreadable,
                path,
                "its raw bytes could not be read again after it broke off; not scanned raw",
            ));
            return;
        }
        let kept = std::mem::take(&mut rec.kept);
        let mut again = Prefixed::new(kept, rec.inner);
        if let (_, Some(e)) = self.stream(path, &mut again) {
            self.notice(broken(path, "entry", &e.to_string(), 0, false));
        }
    }

    /// A gzip, bzip2 or zstd stream (`what`) of an archive compressed to
    /// `packed` bytes, read through `decoder`: its content (a tar is opened
    /// as one) as it is decompressed. True when the raw bytes are to be
    /// scanned too: not one byte decompressed, or it broke off (the notice
    /// says so).
    fn decompressed<'d>(
        &mut self,
        name: &str,
        what: &str,
        decoder: io::Result<Box<dyn Read + 'd>>,
        packed: Packed,
        depth: usize,
    ) -> bool {
        let decoder = match decoder {
            Ok(d) => d,
            Err(e) => {
                self.notice(broken(name, what, &e.to_string(), 0, true));
                return true;
            }
        };
        let failed: Rc<std::cell::RefCell<Option<String>>> = Rc::default();
        let mut tap = Tap {
            inner: decoder,
            read: 0,
            failed: failed.clone(),
        };
        let mut head = Vec::with_capacity(SNIFF);
        let _ = (&mut tap).take(SNIFF as u64).read_to_end(&mut head);
        if head.is_empty() {
            return match failed.take() {
                Some(why) => {
                    self.notice(broken(name, what, &why, 0, true));
                    true
                }
                None => false,
            };
        }
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
        let limits = *self.limits;
        let by_ratio = match &packed {
            Packed::Known(p) => Some(p.saturating_mul(limits.max_ratio).max(RATIO_FLOOR)),
            Packed::Counted(_) => None,
        };
        if kind(&head) == Some(Kind::Tar) {
            // A compressed tar's entries are named as the tar's:
            // `a.tgz!etc/x`; each is held to the limits, and the whole
            // stream to the ratio.
            let first = head.clone();
            let mut guard = Guard::new(
                Prefixed::new(head, &mut tap),
                by_ratio.unwrap_or(u64::MAX),
                packed.clone(),
                limits.max_ratio,
            );
            let quiet = || failed.borrow().is_some();
            let opened = self.tar_entries(name, &mut guard, depth, Some(&quiet));
            if !opened && failed.borrow().is_none() {
                // Not a tar after all: its first block (all the tar reader
                // took) and the rest are a file.
                let mut again = Prefixed::new(first, &mut guard);
                if let Err((n, why)) =
                    self.entry_from(&path, name, &mut again, &packed, None, depth)
                {
                    self.notice(broken(name, what, &why, n as usize, true));
                    return true;
                }
            }
            let (read, stop) = (guard.read, guard.stop);
            if stop.is_some() {
                self.notice(Notice::new(
                    NoticeKind::ArchiveLimit,
                    name,
                    format!(
                        "expands more than {}:1 ({} bytes from {} compressed; decompression-bomb \
                         guard); the rest was not scanned",
                        limits.max_ratio,
                        read + 1,
                        packed.get()
                    ),
                ));
            }
        } else {
            let mut input = Prefixed::new(head, &mut tap);
            if let Err((n, why)) = self.entry_from(&path, name, &mut input, &packed, None, depth)
                && failed.borrow().is_none()
            {
                self.notice(broken(name, what, &why, n as usize, true));
                return true;
            }
        }
        match failed.take() {
            Some(why) => {
                self.notice(broken(name, what, &why, tap.read as usize, true));
                true
            }
            None => false,
        }
    }

    /// An entry read whole: opened again if it is an archive (up to the
    /// depth limit), otherwise handed to the visitor.
    fn found(&mut self, path: &str, data: Vec<u8>, depth: usize) {
        if kind(&data).is_none() {
            self.entry(path, data);
        } else if depth < self.limits.max_depth {
            self.open(path, &data, depth + 1);
        } else {
            self.too_deep(path);
        }
    }

    fn too_deep(&mut self, path: &str) {
        let max = self.limits.max_depth;
        self.notice(Notice::new(
            NoticeKind::ArchiveLimit,
            path,
            format!("archive nested more than {max} levels deep; not opened"),
        ));
    }

    /// Reads an entry whose compressed size is `packed` and whose expanded
    /// size, if the archive declares one, is `declared`: whole when it is
    /// small (to `found`), else handed on as a stream (an archive in it
    /// opened as it streams). An entry declared over the limits is refused
    /// unread, one found over them while read whole is refused, one found
    /// over them while streamed is cut there (what went by was scanned);
    /// one that expands past its declared size is refused as crafted.
    /// Refused entries do not spend the archive's budget: a thousand bombs
    /// in front cannot hide the file after them. Notices name the entry
    /// `label`. Err: the read broke off after the bytes given (handed on
    /// all the same), and why.
    fn entry_from(
        &mut self,
        path: &str,
        label: &str,
        reader: &mut dyn Read,
        packed: &Packed,
        declared: Option<u64>,
        depth: usize,
    ) -> Result<(), (u64, String)> {
        let limits = *self.limits;
        let left = limits.max_total.saturating_sub(self.total);
        let by_ratio = match packed {
            Packed::Known(p) => Some(p.saturating_mul(limits.max_ratio).max(RATIO_FLOOR)),
            Packed::Counted(_) => None,
        };
        let limit = limits.max_entry.min(left).min(by_ratio.unwrap_or(u64::MAX));
        let over = |size: u64, scanned: Option<u64>, ratio: bool| {
            let tail = match scanned {
                None => "not scanned".to_string(),
                Some(n) => format!("the first {n} bytes were scanned, the rest was not"),
            };
            if ratio || Some(limit) == by_ratio && limit != left {
                Notice::new(
                    NoticeKind::ArchiveLimit,
                    label,
                    format!(
                        "expands more than {}:1 ({size} bytes from {} compressed; \
                         decompression-bomb guard); {tail}",
                        limits.max_ratio,
                        packed.get()
                    ),
                )
            } else if limit == left {
                Notice::new(
                    NoticeKind::ArchiveLimit,
                    label,
                    format!(
                        "the archive expands past {} bytes in all (decompression-bomb guard); \
                         the rest was not scanned",
                        limits.max_total
                    ),
                )
            } else {
                Notice::new(
                    NoticeKind::TooLarge,
                    label,
                    format!(
                        "entry is {size} bytes, larger than the maximum file size {}; {tail}",
                        limits.max_entry
                    ),
                )
            }
        };
        if let Some(size) = declared
            && size > limit
        {
            self.notice(over(size, None, false));
            return Ok(());
        }
        let cap = declared.map_or(limit, |d| d.min(limit));
        let crafted = |d: u64| {
            Notice::new(
                NoticeKind::ArchiveLimit,
                label,
                format!(
                    "expands past the {d} bytes its archive declares (corrupt or crafted); \
                     not scanned"
                ),
            )
        };
        let mut guard = Guard::new(reader, cap, packed.clone(), limits.max_ratio);
        let mut head = Vec::new();
        let res = (&mut guard)
            .take(limits.stream_above + 1)
            .read_to_end(&mut head);
        let n = head.len() as u64;
        if let Some(stop) = guard.stop
            && n <= limits.stream_above
        {
            // Over a limit while read whole: refused.
            self.notice(match (stop, declared) {
                (Stop::Cap, Some(d)) if d < limit => crafted(d),
                (stop, _) => over(n + 1, None, stop == Stop::Ratio),
            });
            return Ok(());
        }
        if n <= limits.stream_above || res.is_err() {
            self.total += n;
            if res.is_ok() || n > 0 {
                self.found(path, head, depth);
            }
            return res.map(|_| ()).map_err(|e| (n, e.to_string()));
        }
        let k = kind(&head);
        let mut input = Prefixed::new(head, &mut guard);
        let err = match k {
            Some(_) if depth >= limits.max_depth => {
                self.too_deep(path);
                return Ok(());
            }
            Some(_) => {
                self.open_nested(path, &mut input, depth + 1);
                None
            }
            None => self.stream(path, &mut input).1.map(|e| e.to_string()),
        };
        let (read, stop) = (guard.read, guard.stop);
        self.total += read;
        if let Some(stop) = stop {
            self.notice(match (stop, declared) {
                (Stop::Cap, Some(d)) if d < limit => crafted(d),
                (stop, _) => over(read + 1, Some(read), stop == Stop::Ratio),
            });
        }
        match err {
            Some(why) => Err((read, why)),
            None => Ok(()),
        }
    }

    /// False when the archive cannot be read at all.
    fn zip_entries<R: Read + Seek>(&mut self, name: &str, reader: R, depth: usize) -> bool {
        let mut archive = match zip::ZipArchive::new(reader) {
            Ok(a) => a,
            Err(e) => {
                self.notice(broken(name, "zip", &e.to_string(), 0, true));
                return false;
            }
        };
        for i in 0..archive.len() {
            let mut file = match archive.by_index(i) {
                Ok(f) => f,
                // Encrypted entries, unknown compression methods: not opened
                // by design, unlike a damaged entry.
                Err(zip::result::ZipError::UnsupportedArchive(why)) => {
                    self.notice(Notice::new(
                        NoticeKind::ArchiveLimit,
                        format!("{name}!#{i}"),
                        format!("zip entry not supported: {why}; not scanned"),
                    ));
                    continue;
                }
                Err(e) => {
                    self.notice(broken(
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
            let packed = Packed::Known(file.compressed_size());
            let declared = file.size();
            if let Err((n, why)) =
                self.entry_from(&path, &path, &mut file, &packed, Some(declared), depth)
            {
                self.notice(broken(&path, "zip entry", &why, n as usize, false));
            }
            if self.total >= self.limits.max_total {
                break;
            }
        }
        true
    }

    /// False when not one entry of the archive can be read. `quiet`: true
    /// when a failure is the decompressor's, which the caller names.
    fn tar_entries(
        &mut self,
        name: &str,
        reader: &mut dyn Read,
        depth: usize,
        quiet: Option<&dyn Fn() -> bool>,
    ) -> bool {
        let quiet = || quiet.is_some_and(|q| q());
        let mut archive = tar::Archive::new(reader);
        let entries = match archive.entries() {
            Ok(e) => e,
            Err(e) => {
                if !quiet() {
                    self.notice(broken(name, "tar", &tar_error(&e), 0, true));
                }
                return false;
            }
        };
        for (read, entry) in entries.enumerate() {
            let mut entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    let raw = read == 0;
                    if !quiet() {
                        let why = tar_error(&e);
                        self.notice(if raw {
                            broken(name, "tar", &why, 0, true)
                        } else {
                            Notice::new(
                                NoticeKind::Unreadable,
                                name,
                                format!(
                                    "tar: {why}: corrupt or truncated after {read} entries; \
                                     those were scanned, the rest was not"
                                ),
                            )
                        });
                    }
                    return !raw;
                }
            };
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let path = format!("{name}!{}", String::from_utf8_lossy(&entry.path_bytes()));
            // A tar entry is stored whole: its size is its "compressed" size.
            let size = entry.size();
            if let Err((n, why)) = self.entry_from(
                &path,
                &path,
                &mut entry,
                &Packed::Known(size),
                Some(size),
                depth,
            ) && !quiet()
            {
                self.notice(broken(&path, "tar entry", &why, n as usize, false));
            }
            if self.total >= self.limits.max_total {
                break;
            }
        }
        true
    }
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

/// `head`, then the rest of `rest`; `head` is freed once read.
struct Prefixed<R> {
    head: Vec<u8>,
    at: usize,
    rest: R,
}

impl<R> Prefixed<R> {
    fn new(head: Vec<u8>, rest: R) -> Self {
        Prefixed { head, at: 0, rest }
    }
}

impl<R: Read> Read for Prefixed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at < self.head.len() {
            let n = buf.len().min(self.head.len() - self.at);
            buf[..n].copy_from_slice(&self.head[self.at..self.at + n]);
            self.at += n;
            if self.at == self.head.len() {
                self.head = Vec::new();
                self.at = 0;
            }
            return Ok(n);
        }
        self.rest.read(buf)
    }
}

/// Counts the bytes read (a compressed stream's size so far).
struct Counting<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// Keeps the first `RECORD` bytes read, to read them again.
struct Recording<R> {
    inner: R,
    kept: Vec<u8>,
    overflow: bool,
}

impl<R: Read> Read for Recording<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if !self.overflow {
            if self.kept.len() + n > RECORD {
                self.overflow = true;
                self.kept = Vec::new();
            } else {
                self.kept.extend_from_slice(&buf[..n]);
            }
        }
        Ok(n)
    }
}

/// A decompressor's output: bytes read, and the first error (the
/// decompressor's, which readers above it would otherwise report as
/// their own).
struct Tap<R> {
    inner: R,
    read: u64,
    failed: Rc<std::cell::RefCell<Option<String>>>,
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.read += n as u64;
                Ok(n)
            }
            Err(e) => {
                let mut failed = self.failed.borrow_mut();
                if failed.is_none() {
                    *failed = Some(e.to_string());
                }
                Err(e)
            }
        }
    }
}

/// Why a `Guard` stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// More than its cap.
    Cap,
    /// More than the ratio allows to the compressed bytes read so far.
    Ratio,
}

/// Yields at most `left` bytes of `inner`, and ends (noting why) when there
/// is more, or when a counted compressed size says the ratio is exceeded.
struct Guard<R> {
    inner: R,
    left: u64,
    packed: Packed,
    max_ratio: u64,
    read: u64,
    stop: Option<Stop>,
}

impl<R> Guard<R> {
    fn new(inner: R, cap: u64, packed: Packed, max_ratio: u64) -> Self {
        Guard {
            inner,
            left: cap,
            packed,
            max_ratio,
            read: 0,
            stop: None,
        }
    }
}

impl<R: Read> Read for Guard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.stop.is_some() || buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            // One more byte means the cap was passed.
            let mut one = [0u8; 1];
            loop {
                match self.inner.read(&mut one) {
                    Ok(0) => return Ok(0),
                    Ok(_) => {
                        self.stop = Some(Stop::Cap);
                        return Ok(0);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.read += n as u64;
        self.left -= n as u64;
        if let Packed::Counted(c) = &self.packed
            && self.read > RATIO_FLOOR
            && self.read > c.get().saturating_mul(self.max_ratio)
        {
            self.stop = Some(Stop::Ratio);
        }
        Ok(n)
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

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    /// What a walk handed over: entries whole (name, size), streamed
    /// (name, bytes) and notices.
    #[derive(Default)]
    struct Seen {
        whole: Vec<(Option<String>, usize)>,
        streamed: Vec<(Option<String>, Vec<u8>)>,
        notices: Vec<Notice>,
    }

    impl Visitor for Seen {
        fn entry(&mut self, entry: Option<&str>, data: Vec<u8>) {
            self.whole.push((entry.map(String::from), data.len()));
        }
        fn stream(
            &mut self,
            entry: Option<&str>,
            reader: &mut dyn Read,
        ) -> (u64, Option<io::Error>) {
            let mut v = Vec::new();
            let r = reader.read_to_end(&mut v);
            let n = v.len() as u64;
            self.streamed.push((entry.map(String::from), v));
            (n, r.err())
        }
        fn notice(&mut self, notice: Notice) {
            self.notices.push(notice);
        }
    }

    fn tar(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zip(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, data) in files {
            w.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    /// Entries go whole below the threshold and as streams above it, in
    /// memory and from a reader, whatever the format.
    #[test]
    fn entries_over_the_threshold_are_streamed_and_the_others_handed_whole() {
        let limits = ArchiveLimits {
            stream_above: 1024,
            ..ArchiveLimits::default()
        };
        let big: Vec<u8> = (0..5000u32).flat_map(|i| i.to_le_bytes()).collect();
        let files: [(&str, &[u8]); 2] = [("big.bin", &big), ("small.txt", b"small")];
        for (name, data) in [
            ("a.tar", tar(&files)),
            ("a.tgz", gz(&tar(&files))),
            ("a.zip", zip(&files)),
            ("a.tar.gz.zip", zip(&[("in.tar.gz", &gz(&tar(&files)))])),
        ] {
            let prefix = if name == "a.tar.gz.zip" {
                "in.tar.gz!"
            } else {
                ""
            };
            let from_reader = name != "a.tar.gz.zip";
            for reader in [false, true] {
                if reader && !from_reader {
                    continue;
                }
                let mut seen = Seen::default();
                if reader {
                    assert!(!walk_reader(name, &mut &data[..], &limits, &mut seen));
                } else {
                    walk(name, &data, &limits, &mut seen);
                }
                assert!(seen.notices.is_empty(), "{name}: {:?}", seen.notices);
                assert_eq!(
                    seen.whole,
                    vec![(Some(format!("{prefix}small.txt")), 5)],
                    "{name}"
                );
                assert_eq!(seen.streamed.len(), 1, "{name}");
                assert_eq!(
                    seen.streamed[0].0.as_deref(),
                    Some(format!("{prefix}big.bin").as_str())
                );
                assert!(seen.streamed[0].1 == big, "{name}: bytes differ");
            }
        }
    }

    /// Content whose size no header declares (a `.gz`'s) is streamed up to
    /// the entry limit and the rest named; declared entries over it are
    /// refused unread.
    #[test]
    fn a_stream_past_the_entry_limit_is_scanned_to_it_and_named() {
        let limits = ArchiveLimits {
            stream_above: 1024,
            max_entry: 4096,
            ..ArchiveLimits::default()
        };
        let data = vec![b'x'; 10_000];
        let mut seen = Seen::default();
        walk("x.gz", &gz(&data), &limits, &mut seen);
        assert_eq!(seen.streamed.len(), 1);
        assert_eq!(seen.streamed[0].1.len(), 4096);
        assert_eq!(seen.notices.len(), 1, "{:?}", seen.notices);
        assert_eq!(seen.notices[0].kind, NoticeKind::TooLarge);
        assert!(
            seen.notices[0]
                .reason
                .contains("the first 4096 bytes were scanned"),
            "{:?}",
            seen.notices
        );
        let mut seen = Seen::default();
        walk("x.tar", &tar(&[("x", &data)]), &limits, &mut seen);
        assert!(seen.streamed.is_empty() && seen.whole.is_empty());
        assert!(seen.notices[0].reason.ends_with("not scanned"));
    }

    /// From a reader, what is no archive (or broke off in one) asks the
    /// caller for its raw bytes; a damaged large entry inside is named.
    #[test]
    fn from_a_reader_what_fails_to_open_asks_for_its_raw_bytes() {
        let limits = ArchiveLimits {
            stream_above: 1024,
            ..ArchiveLimits::default()
        };
        for text in [&b"BZh91AY&SY not bzip2"[..], b"\x1f\x8b\x08\x00 not gzip"] {
            let mut seen = Seen::default();
            assert!(walk_reader("t.txt", &mut &text[..], &limits, &mut seen));
            assert!(
                seen.notices[0].reason.contains("raw bytes were scanned"),
                "{:?}",
                seen.notices
            );
        }
        let big = vec![b'y'; 50_000];
        let tgz = gz(&tar(&[("big.txt", &big)]));
        let cut = &tgz[..tgz.len() / 2];
        let mut seen = Seen::default();
        assert!(walk_reader("cut.tgz", &mut &cut[..], &limits, &mut seen));
        assert!(
            seen.notices
                .iter()
                .any(|n| n.reason.starts_with("gzip: ") && n.kind == NoticeKind::Unreadable),
            "{:?}",
            seen.notices
        );
    }
}
