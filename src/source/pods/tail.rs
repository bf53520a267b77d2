//! One container log stream (`<N>.log` of one container) followed across
//! the kubelet's rotations: the live file is read as it grows; when the
//! live name points at a new file, the old one (still open) is read to its
//! end, then every file rotated after it, oldest first (plain or gzipped),
//! then the new live file. Records are parsed (`format`), partial records
//! joined into logical lines, and complete lines scanned with the streaming
//! scanner (`pipeline::stream::StreamScan`) at once; only an unfinished
//! record and an unfinished logical line are kept between polls.
//!
//! The position after the last complete line scanned is the stream's
//! `Checkpoint`: `(device, inode)` of the file, the offset in it (in the
//! decompressed bytes of a gzipped file), the number of lines so far and a
//! CRC of the file's first bytes, which finds the file again after it was
//! renamed (same inode) or gzipped (same first bytes), and tells a reused
//! inode from the file it once was.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use flate2::read::MultiGzDecoder;
use serde::{Deserialize, Serialize};

use super::format::{self, LogFormat, Record};
use super::layout::{self, ChainFile, StreamKey};
use crate::blob::{KubernetesRef, Origin, PodLog};
use crate::engine::{MAX_MATCH, Scanner, Scratch};
use crate::finding::Finding;
use crate::metrics::Metrics;
use crate::pipeline::stream::{StreamOptions, StreamScan, StreamSink, StreamStats};

/// Bytes at a file's start whose CRC identifies it.
pub const HEAD: usize = 1024;

/// Bytes read from a file at a time.
const READ: usize = 256 * 1024;

/// Where a stream's next unscanned line starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub dev: u64,
    pub ino: u64,
    /// Bytes of the file (decompressed, for a gzipped one) before the line.
    pub offset: u64,
    /// Logical lines of the stream scanned so far.
    pub line: u64,
    /// CRC-32 of the file's first `head_len` bytes (at most `HEAD`).
    pub head_len: u32,
    pub head_crc: u32,
    /// The runtime's timestamp of the last line scanned: when the file
    /// cannot be found again, lines up to this time are not scanned again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}

/// Buffers a worker thread lends to the streams it polls.
#[derive(Default)]
pub struct Buffers {
    raw: Vec<u8>,
    /// Logical lines: the stream's unfinished line first, then what the
    /// records read add.
    pending: Vec<u8>,
    /// Per complete line in `pending`: its timestamp and stream.
    metas: Vec<Meta>,
    /// The timestamps `metas` point into.
    arena: Vec<u8>,
    scratch: Scratch,
}

/// A logical line's timestamp (a range of `Buffers::arena`) and stream.
#[derive(Clone, Copy, Debug, Default)]
struct Meta {
    time: (u32, u32),
    stream: u8,
}

/// What a poll needs besides the stream.
pub struct Work<'a> {
    pub scanner: &'a Scanner,
    pub opts: &'a StreamOptions,
    pub stats: &'a Mutex<StreamStats>,
    pub sink: &'a mut dyn StreamSink,
    pub bufs: &'a mut Buffers,
    pub metrics: Option<&'a Metrics>,
    /// Bytes read in one poll before other streams get their turn.
    pub budget: usize,
}

enum Reader {
    Plain(File),
    Gzip(Box<MultiGzDecoder<BufReader<File>>>),
}

impl Read for Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Reader::Plain(f) => f.read(buf),
            Reader::Gzip(g) => g.read(buf),
        }
    }
}

/// The file being read.
struct Open {
    reader: Reader,
    id: (u64, u64),
    path: PathBuf,
    /// The rotation suffix; `None` when opened as the live file.
    suffix: Option<String>,
    /// Bytes read (decompressed).
    offset: u64,
    /// The first bytes, while fewer than `HEAD` were read from the start.
    head: Vec<u8>,
    /// `(len, crc)` of the head given by a checkpoint (resumed mid-file).
    fixed_head: Option<(u32, u32)>,
    /// The live name points at another file now: read to the end, move on.
    rotated: bool,
}

impl Open {
    fn head(&self) -> (u32, u32) {
        self.fixed_head
            .unwrap_or_else(|| (self.head.len() as u32, crc32fast::hash(&self.head)))
    }
}

enum Pos {
    /// Nothing opened yet: resume from the checkpoint, or start at the
    /// oldest file of the chain.
    Start,
    /// The rotated file with this suffix was read to its end.
    After(String),
    Open(Box<Open>),
}

/// One container log stream.
pub struct Tail {
    pub key: StreamKey,
    root: PathBuf,
    kube: Arc<KubernetesRef>,
    origin: Origin,
    pos: Pos,
    /// Checkpoint to resume from, until the stream's files are found.
    resume: Option<Checkpoint>,
    /// The position after the last complete line scanned.
    checkpoint: Option<Checkpoint>,
    /// Lines up to this time were scanned by an earlier run (the file the
    /// checkpoint named was gone): they are dropped.
    skip_through: Option<jiff::Timestamp>,
    format: Option<LogFormat>,
    /// An unfinished record (no `\n` yet).
    carry: Vec<u8>,
    /// The unfinished logical line and its meta.
    partial: Vec<u8>,
    partial_meta: Option<(Option<String>, u8)>,
    /// Inside a record longer than `max_line`: its bytes up to the next
    /// `\n` are message; `true` if the record was partial.
    raw_record: Option<bool>,
    scan: StreamScan,
    max_line: usize,
    /// The stream's files are gone (pod deleted): it was read to its end.
    pub done: bool,
}

/// A poll's per-line state in the lent buffers.
struct Lines {
    /// Start of the current (unfinished) logical line in `pending`.
    line_start: usize,
    /// Its meta, once its first record was read.
    cur: Option<Meta>,
    /// End of the complete lines in `pending`, and the file position after
    /// the last one's final record.
    complete_end: usize,
    complete_pos: Option<u64>,
}

impl Tail {
    /// A stream under `root`, resuming from `resume` when given.
    pub fn new(root: &Path, key: StreamKey, resume: Option<Checkpoint>, max_line: usize) -> Self {
        let (ns, pod, uid) = layout::parse_pod_dir(&key.pod_dir).unwrap_or(("", "", ""));
        let kube = Arc::new(KubernetesRef {
            kind: "Pod".into(),
            namespace: Some(ns.into()),
            name: Some(pod.into()),
            key: None,
            secret_type: None,
            path: None,
            container: None,
            env: None,
            log: Some(PodLog {
                pod: pod.into(),
                pod_uid: uid.into(),
                container: key.container.clone(),
                restart: key.restart,
                stream: None,
            }),
        });
        let line = resume.as_ref().map_or(0, |c| c.line) as usize;
        Tail {
            origin: Origin::PodLog {
                path: key.live(root).display().to_string(),
                kubernetes: kube.clone(),
            },
            key,
            root: root.to_path_buf(),
            kube,
            pos: Pos::Start,
            checkpoint: resume.clone(),
            resume,
            skip_through: None,
            format: None,
            carry: Vec::new(),
            partial: Vec::new(),
            partial_meta: None,
            raw_record: None,
            scan: StreamScan::starting_at(line + 1),
            max_line: max_line.max(2 * MAX_MATCH),
            done: false,
        }
    }

    /// The position after the last complete line scanned (`None` before
    /// the first line of a new stream).
    pub fn checkpoint(&self) -> Option<&Checkpoint> {
        self.checkpoint.as_ref()
    }

    /// The pod's namespace.
    pub fn namespace(&self) -> &str {
        self.kube.namespace.as_deref().unwrap_or_default()
    }

    /// Reads and scans what the stream's files hold now, up to the budget.
    /// Returns whether anything was read.
    pub fn poll(&mut self, w: &mut Work<'_>) -> io::Result<bool> {
        if self.done {
            return Ok(false);
        }
        // Lend the unfinished line to the buffers.
        let b = &mut *w.bufs;
        b.pending.clear();
        b.metas.clear();
        b.arena.clear();
        b.pending.extend_from_slice(&self.partial);
        let cur = self.partial_meta.take().map(|(time, stream)| {
            let start = b.arena.len() as u32;
            b.arena
                .extend_from_slice(time.as_deref().unwrap_or("").as_bytes());
            Meta {
                time: (start, b.arena.len() as u32),
                stream,
            }
        });
        let mut lines = Lines {
            line_start: 0,
            cur,
            complete_end: 0,
            complete_pos: None,
        };
        let res = self.poll_files(w, &mut lines);
        // Keep the unfinished line (and its meta) for the next poll.
        let b = &mut *w.bufs;
        self.partial.clear();
        self.partial
            .extend_from_slice(&b.pending[lines.line_start..]);
        if self.partial.capacity() > 4 * self.partial.len() + 4096 {
            self.partial.shrink_to(self.partial.len() + 1024);
        }
        self.partial_meta = lines
            .cur
            .map(|m| (time_of(&b.arena, m).map(str::to_string), m.stream));
        res
    }

    fn poll_files(&mut self, w: &mut Work<'_>, lines: &mut Lines) -> io::Result<bool> {
        let mut progressed = false;
        let mut read = 0;
        loop {
            if !matches!(self.pos, Pos::Open(_)) {
                match self.open_next()? {
                    true => progressed = true,
                    false => {
                        if self.gone() {
                            self.close(w, lines)?;
                        }
                        return Ok(progressed);
                    }
                }
            }
            if read >= w.budget {
                return Ok(progressed);
            }
            let Pos::Open(open) = &mut self.pos else {
                unreachable!("opened above")
            };
            let raw = &mut w.bufs.raw;
            raw.clear();
            raw.extend_from_slice(&self.carry);
            let carried = raw.len();
            raw.resize(carried + READ, 0);
            let n = read_retrying(&mut open.reader, &mut raw[carried..])?;
            raw.truncate(carried + n);
            if n > 0 {
                if open.fixed_head.is_none() && open.head.len() < HEAD {
                    let take = (HEAD - open.head.len()).min(n);
                    open.head.extend_from_slice(&raw[carried..carried + take]);
                }
                open.offset += n as u64;
                read += n;
                progressed = true;
                let base = open.offset - raw.len() as u64;
                let raw = std::mem::take(&mut w.bufs.raw);
                let used = self.ingest(&raw, base, w, lines);
                self.carry.clear();
                self.carry.extend_from_slice(&raw[used..]);
                if self.carry.capacity() > 4 * self.carry.len() + 4096 {
                    self.carry.shrink_to(self.carry.len() + 1024);
                }
                w.bufs.raw = raw;
                self.flush(w, lines)?;
                continue;
            }
            // At the end of the file.
            if open.rotated || open.suffix.is_some() {
                self.finish_file(w, lines)?;
                progressed = true;
                continue;
            }
            let live = self.key.live(&self.root);
            match fs::metadata(&live) {
                Ok(m) if file_id(&m) == open.id => {
                    if m.len() < open.offset {
                        // Truncated in place (copytruncate): start over.
                        if let Reader::Plain(f) = &mut open.reader {
                            f.seek(SeekFrom::Start(0))?;
                        }
                        open.offset = 0;
                        open.head.clear();
                        open.fixed_head = None;
                        self.carry.clear();
                        continue;
                    }
                    return Ok(progressed);
                }
                Ok(_) => {
                    // Rotated: what was written before the new file
                    // appeared is read now, then the files after it.
                    open.rotated = true;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if self.gone() {
                        self.close(w, lines)?;
                        return Ok(true);
                    }
                    // Renamed; the new live file is not there yet.
                    return Ok(progressed);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// No file of the stream is left (the pod's directory was deleted, or
    /// the kubelet removed this restart's logs).
    fn gone(&self) -> bool {
        match layout::chain(&self.root, &self.key) {
            Ok(files) => files.is_empty(),
            Err(e) => e.kind() == io::ErrorKind::NotFound,
        }
    }

    /// The stream ends: an unfinished record or line is scanned as it is.
    fn close(&mut self, w: &mut Work<'_>, lines: &mut Lines) -> io::Result<()> {
        self.end_of_data(w, lines)?;
        self.pos = Pos::Start;
        self.done = true;
        Ok(())
    }

    /// What is left of a file that will not grow: a last record without a
    /// newline, a logical line never finished.
    fn end_of_data(&mut self, w: &mut Work<'_>, lines: &mut Lines) -> io::Result<()> {
        let base = match &self.pos {
            Pos::Open(o) => o.offset - self.carry.len() as u64,
            _ => 0,
        };
        if !self.carry.is_empty() {
            let mut rest = std::mem::take(&mut self.carry);
            rest.push(b'\n');
            self.ingest(&rest, base, w, lines);
            lines.complete_pos = lines
                .complete_pos
                .map(|p| p.min(base + rest.len() as u64 - 1));
        }
        if self.raw_record.take().is_some() || lines.cur.is_some() {
            let end = match &self.pos {
                Pos::Open(o) => o.offset,
                _ => base,
            };
            self.end_line(w, lines, end);
        }
        self.flush(w, lines)
    }

    /// The current file was read to its end and will not grow: moves to
    /// the next file of the chain.
    fn finish_file(&mut self, w: &mut Work<'_>, lines: &mut Lines) -> io::Result<()> {
        // A record cut by the end of a file is complete (runtimes end
        // every record with a newline); a logical line may go on.
        if !self.carry.is_empty() {
            let base = match &self.pos {
                Pos::Open(o) => o.offset - self.carry.len() as u64,
                _ => 0,
            };
            let mut rest = std::mem::take(&mut self.carry);
            rest.push(b'\n');
            self.ingest(&rest, base, w, lines);
            // The newline added is not in the file.
            lines.complete_pos = lines
                .complete_pos
                .map(|p| p.min(base + rest.len() as u64 - 1));
            self.flush(w, lines)?;
        }
        let Pos::Open(open) = std::mem::replace(&mut self.pos, Pos::Start) else {
            return Ok(());
        };
        // Every move from one file of the chain to the next follows a
        // rotation, whether seen live or found in the chain later.
        if let Some(m) = w.metrics {
            m.rotation();
        }
        let suffix = match open.suffix.clone() {
            Some(s) => Some(s),
            None => {
                let chain = self.chain()?;
                let (len, crc) = open.head();
                locate(&chain, open.id, len, crc).and_then(|i| chain[i].suffix.clone())
            }
        };
        match suffix {
            Some(s) => self.pos = Pos::After(s),
            None => {
                // The file is gone under every name (gzipped, then the
                // gzip removed): read the chain again, skipping what an
                // earlier line's time says was read.
                self.skip_through = self
                    .checkpoint
                    .as_ref()
                    .and_then(|c| c.time.as_deref())
                    .and_then(|t| jiff::Timestamp::from_str(t).ok());
            }
        }
        Ok(())
    }

    fn chain(&self) -> io::Result<Vec<ChainFile>> {
        match layout::chain(&self.root, &self.key) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            other => other,
        }
    }

    /// Opens the next file to read; `false` when there is none yet.
    fn open_next(&mut self) -> io::Result<bool> {
        // A file listed may be renamed or gzipped before it is opened:
        // list again.
        for _ in 0..4 {
            let chain = self.chain()?;
            let (index, offset) = match &self.pos {
                Pos::Open(_) => return Ok(true),
                Pos::After(s) => {
                    match chain
                        .iter()
                        .position(|f| f.suffix.as_ref().is_none_or(|x| x > s))
                    {
                        Some(i) => (i, 0),
                        None => return Ok(false),
                    }
                }
                Pos::Start if chain.is_empty() => return Ok(false),
                Pos::Start => match self.resume.clone() {
                    Some(cp) => match locate(&chain, (cp.dev, cp.ino), cp.head_len, cp.head_crc) {
                        Some(i) => (i, cp.offset),
                        None => {
                            // Rotated and compressed past recognition
                            // while we were down: skip by time.
                            self.skip_through = cp
                                .time
                                .as_deref()
                                .and_then(|t| jiff::Timestamp::from_str(t).ok());
                            self.resume = None;
                            (0, 0)
                        }
                    },
                    None => (0, 0),
                },
            };
            match open_file(&chain[index], offset) {
                Ok(mut open) => {
                    if offset > 0
                        && let Some(cp) = &self.resume
                    {
                        open.fixed_head = Some((cp.head_len, cp.head_crc));
                    }
                    self.resume = None;
                    self.origin = Origin::PodLog {
                        path: open.path.display().to_string(),
                        kubernetes: self.kube.clone(),
                    };
                    if offset == 0 {
                        self.format = None;
                    }
                    self.pos = Pos::Open(Box::new(open));
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(_) if offset > 0 => {
                    // Shorter than the checkpoint says (rewritten): it is
                    // not the file; go by time.
                    self.skip_through = self
                        .resume
                        .take()
                        .and_then(|cp| cp.time)
                        .and_then(|t| jiff::Timestamp::from_str(&t).ok());
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }

    /// Parses the records in `data` (starting at file offset `base`) into
    /// logical lines; returns the bytes used (the rest is an unfinished
    /// record).
    fn ingest(&mut self, data: &[u8], base: u64, w: &mut Work<'_>, lines: &mut Lines) -> usize {
        let mut at = 0;
        while at < data.len() {
            if let Some(partial) = self.raw_record {
                match memchr::memchr(b'\n', &data[at..]) {
                    Some(i) => {
                        w.bufs.pending.extend_from_slice(&data[at..at + i]);
                        at += i + 1;
                        self.raw_record = None;
                        if !partial {
                            self.end_line(w, lines, base + at as u64);
                        }
                    }
                    None => {
                        w.bufs.pending.extend_from_slice(&data[at..]);
                        at = data.len();
                    }
                }
                continue;
            }
            let Some(i) = memchr::memchr(b'\n', &data[at..]) else {
                break;
            };
            let line = &data[at..at + i];
            let format = *self
                .format
                .get_or_insert_with(|| LogFormat::sniff(line.first().copied().unwrap_or(b'2')));
            let rec = format::parse(format, line);
            let partial = rec.partial;
            self.record(rec, w, lines);
            at += i + 1;
            if !partial {
                self.end_line(w, lines, base + at as u64);
            }
        }
        if data.len() - at > self.max_line {
            // A record longer than any line we buffer: its framing now,
            // its message as it comes.
            let format = *self.format.get_or_insert(LogFormat::Cri);
            let rec = format::parse(format, &data[at..]);
            self.raw_record = Some(rec.partial);
            self.record(rec, w, lines);
            at = data.len();
        }
        at
    }

    fn record(&mut self, rec: Record<'_>, w: &mut Work<'_>, lines: &mut Lines) {
        let b = &mut *w.bufs;
        if lines.cur.is_none() {
            let start = b.arena.len() as u32;
            if let Some(t) = &rec.time {
                b.arena.extend_from_slice(t.as_bytes());
            }
            lines.cur = Some(Meta {
                time: (start, b.arena.len() as u32),
                stream: match rec.stream.as_deref() {
                    Some("stdout") => 1,
                    Some("stderr") => 2,
                    _ => 0,
                },
            });
        }
        if rec.malformed
            && let Some(m) = w.metrics
        {
            m.error("malformed-record");
        }
        b.pending.extend_from_slice(&rec.message);
    }

    /// The current logical line is complete; `pos` is the file offset after
    /// its last record.
    fn end_line(&mut self, w: &mut Work<'_>, lines: &mut Lines, pos: u64) {
        let b = &mut *w.bufs;
        let meta = lines.cur.take().unwrap_or_default();
        lines.complete_pos = Some(pos);
        if let Some(skip) = self.skip_through {
            let time = time_of(&b.arena, meta).and_then(|t| jiff::Timestamp::from_str(t).ok());
            if time.is_none_or(|t| t <= skip) {
                // Scanned by an earlier run.
                b.pending.truncate(lines.line_start);
                return;
            }
            self.skip_through = None;
        }
        b.pending.push(b'\n');
        b.metas.push(meta);
        lines.line_start = b.pending.len();
        lines.complete_end = b.pending.len();
    }

    /// Scans the complete lines, and a cut of an unfinished line longer
    /// than `max_line`; records the checkpoint.
    fn flush(&mut self, w: &mut Work<'_>, lines: &mut Lines) -> io::Result<()> {
        let b = &mut *w.bufs;
        if lines.complete_end > 0 {
            let first_line = self.scan.line();
            let mut sink = PodSink {
                inner: &mut *w.sink,
                metas: &b.metas,
                arena: &b.arena,
                first_line,
                cur: None,
            };
            let end = lines.complete_end;
            self.scan.window(
                w.scanner,
                &self.origin,
                &b.pending[..end],
                end,
                &mut b.scratch,
                w.opts,
                w.stats,
                &mut sink,
            )?;
            if let Some(m) = w.metrics {
                m.beat();
                // The lag of the oldest line of the batch.
                if let Some(t) = b
                    .metas
                    .first()
                    .and_then(|m| time_of(&b.arena, *m))
                    .and_then(|t| jiff::Timestamp::from_str(t).ok())
                {
                    let lag = jiff::Timestamp::now().duration_since(t);
                    m.lag(lag.as_secs_f64().max(0.0));
                }
            }
            let last_time = b
                .metas
                .last()
                .and_then(|m| time_of(&b.arena, *m))
                .map(str::to_string);
            b.pending.drain(..end);
            lines.line_start -= end;
            lines.complete_end = 0;
            b.metas.clear();
            // Keep only the unfinished line's timestamp.
            if let Some(cur) = &mut lines.cur {
                let (s, e) = cur.time;
                b.arena.copy_within(s as usize..e as usize, 0);
                cur.time = (0, e - s);
                b.arena.truncate((e - s) as usize);
            } else {
                b.arena.clear();
            }
            if let (Pos::Open(open), Some(offset)) = (&self.pos, lines.complete_pos) {
                let (head_len, head_crc) = open.head();
                self.checkpoint = Some(Checkpoint {
                    dev: open.id.0,
                    ino: open.id.1,
                    offset,
                    line: (self.scan.line() - 1) as u64,
                    head_len,
                    head_crc,
                    time: last_time
                        .or_else(|| self.checkpoint.as_ref().and_then(|c| c.time.clone())),
                });
            }
        } else if let (Pos::Open(open), Some(offset)) = (&self.pos, lines.complete_pos) {
            // Lines were read and all skipped: the position still moves.
            let (head_len, head_crc) = open.head();
            let (line, time) = self
                .checkpoint
                .as_ref()
                .map_or((0, None), |c| (c.line, c.time.clone()));
            self.checkpoint = Some(Checkpoint {
                dev: open.id.0,
                ino: open.id.1,
                offset,
                line,
                head_len,
                head_crc,
                time,
            });
        }
        lines.complete_pos = None;
        // An unfinished line longer than max_line is scanned in cuts that
        // overlap by the longest match.
        let b = &mut *w.bufs;
        let len = b.pending.len() - lines.line_start;
        if len > self.max_line {
            debug_assert_eq!(lines.line_start, 0);
            let mut sink = PodSink {
                inner: &mut *w.sink,
                metas: &[],
                arena: &b.arena,
                first_line: self.scan.line(),
                cur: lines.cur,
            };
            let done = self.scan.window(
                w.scanner,
                &self.origin,
                &b.pending[..len],
                len - MAX_MATCH,
                &mut b.scratch,
                w.opts,
                w.stats,
                &mut sink,
            )?;
            b.pending.drain(..done);
        }
        Ok(())
    }
}

fn time_of(arena: &[u8], m: Meta) -> Option<&str> {
    let (s, e) = m.time;
    (e > s)
        .then(|| std::str::from_utf8(&arena[s as usize..e as usize]).ok())
        .flatten()
}

/// Adds the line's timestamp and stream to each finding.
struct PodSink<'a> {
    inner: &'a mut dyn StreamSink,
    metas: &'a [Meta],
    arena: &'a [u8],
    first_line: usize,
    /// The meta of an unfinished line scanned in cuts.
    cur: Option<Meta>,
}

impl StreamSink for PodSink<'_> {
    fn finding(&mut self, f: &Finding) -> io::Result<()> {
        let meta = f
            .line
            .checked_sub(self.first_line)
            .and_then(|i| self.metas.get(i).copied())
            .or(self.cur);
        let mut f = f.clone();
        if let Some(m) = meta {
            f.timestamp = time_of(self.arena, m).map(str::to_string);
            if let Some(log) = f.kubernetes.as_mut().and_then(|k| k.log.as_mut()) {
                log.stream = match m.stream {
                    1 => Some("stdout".into()),
                    2 => Some("stderr".into()),
                    _ => None,
                };
            }
        }
        self.inner.finding(&f)
    }

    fn passthrough(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.inner.passthrough(bytes)
    }

    fn scanned(&mut self, lines: u64, bytes: u64) {
        self.inner.scanned(lines, bytes)
    }
}

/// A file's (device, inode), which a rename keeps: a rotated log is told
/// from its successor by it. `(0, 0)` where the platform does not say
/// (files are then told apart by their first bytes only).
fn file_id(m: &fs::Metadata) -> (u64, u64) {
    crate::platform::file_identity(m).unwrap_or((0, 0))
}

/// Opens a file of the chain at `offset` (decompressed bytes for gzip).
fn open_file(f: &ChainFile, offset: u64) -> io::Result<Open> {
    let file = File::open(&f.path)?;
    let id = file_id(&file.metadata()?);
    let mut reader = if f.gzip {
        Reader::Gzip(Box::new(MultiGzDecoder::new(BufReader::new(file))))
    } else {
        Reader::Plain(file)
    };
    match &mut reader {
        Reader::Plain(file) => {
            if file.metadata()?.len() < offset {
                return Err(io::Error::other(format!(
                    "{}: shorter than the checkpoint's offset {offset}",
                    f.path.display()
                )));
            }
            file.seek(SeekFrom::Start(offset))?;
        }
        Reader::Gzip(g) => {
            let skipped = io::copy(&mut (&mut **g).take(offset), &mut io::sink())?;
            if skipped < offset {
                return Err(io::Error::other(format!(
                    "{}: shorter than the checkpoint's offset {offset}",
                    f.path.display()
                )));
            }
        }
    }
    Ok(Open {
        reader,
        id,
        path: f.path.clone(),
        suffix: f.suffix.clone(),
        offset,
        head: Vec::new(),
        fixed_head: None,
        rotated: false,
    })
}

/// The file of `chain` that is `(dev, ino)` with that head (a plain file
/// keeps its inode through a rename), or the gzipped file whose content
/// starts with that head.
fn locate(chain: &[ChainFile], id: (u64, u64), head_len: u32, head_crc: u32) -> Option<usize> {
    let head_matches = |r: &mut dyn Read| -> bool {
        let mut buf = vec![0; head_len as usize];
        r.read_exact(&mut buf).is_ok() && crc32fast::hash(&buf) == head_crc
    };
    chain.iter().position(|f| {
        let Ok(file) = File::open(&f.path) else {
            return false;
        };
        if f.gzip {
            head_len > 0 && head_matches(&mut MultiGzDecoder::new(BufReader::new(file)))
        } else {
            let same = file
                .metadata()
                .is_ok_and(|m| file_id(&m) == id && id != (0, 0));
            same && (head_len == 0 || head_matches(&mut &file))
        }
    })
}

/// One read, retried when a signal interrupted it.
fn read_retrying(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}
