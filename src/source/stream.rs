//! Log streams: reads a byte stream into windows of whole lines as soon as
//! they arrive, with bounded memory. A line longer than `max_line` is cut
//! into overlapping windows so a secret across a cut is still seen.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

use crate::platform::{Stdin, file_identity};

/// What the caller may do with the current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Bytes of the buffer to scan.
    pub len: usize,
    /// Bytes that are final and may be emitted (`<= len`). Less than `len`
    /// only when a long line was cut: the tail is scanned again with what
    /// follows. Matches that start before `emit` belong to this window.
    pub emit: usize,
}

/// How much already-waiting input is gathered into one window: enough for
/// the window to be split across threads (see `pipeline::stream::PART`).
const GATHER: usize = 1 << 20;

/// Polling interval of `--follow` when the file has no new data.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

enum Input {
    /// Any reader.
    Reader(Box<dyn Read + Send>),
    /// Standard input, which can tell whether a read would block.
    Stdin(Stdin),
    /// A file followed as it grows (`--follow`); `pos` detects truncation,
    /// `path` a rename (rotation).
    Follow {
        file: File,
        pos: u64,
        path: Option<PathBuf>,
    },
}

/// Chunked line reader over stdin, a file or a followed file.
pub struct StreamReader {
    input: Input,
    buf: Vec<u8>,
    len: usize,
    max_line: usize,
    overlap: usize,
    eof: bool,
}

impl StreamReader {
    /// `max_line`: longest line buffered whole; `overlap`: bytes a cut line
    /// keeps from one window to the next (the longest match a rule can have).
    pub fn new(reader: Box<dyn Read + Send>, max_line: usize, overlap: usize) -> Self {
        Self::with_input(Input::Reader(reader), max_line, overlap)
    }

    /// Reads standard input. The reader gathers what is already waiting in
    /// the pipe into one window (a pipe hands over at most 64 KiB per read)
    /// without ever waiting for more; see `platform::Stdin`.
    pub fn stdin(max_line: usize, overlap: usize) -> Self {
        Self::with_input(Input::Stdin(Stdin::new()), max_line, overlap)
    }

    /// Follows `file` from its start, waiting for more data at its end.
    /// With the `path` it was opened by, rotation is followed as `tail -F`
    /// does: when the path names another file (the old one renamed to
    /// `app.log.1` and a new `app.log` created), the old file is read to
    /// its end and the new one from its start. Truncation (copytruncate)
    /// starts over from the beginning.
    pub fn follow(file: File, path: Option<PathBuf>, max_line: usize, overlap: usize) -> Self {
        Self::with_input(Input::Follow { file, pos: 0, path }, max_line, overlap)
    }

    fn with_input(input: Input, max_line: usize, overlap: usize) -> Self {
        let max_line = max_line.max(2 * overlap).max(4096);
        StreamReader {
            input,
            buf: vec![0; max_line + 64 * 1024],
            len: 0,
            max_line,
            overlap,
            eof: false,
        }
    }

    /// The buffered bytes.
    pub fn data(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Drops the first `n` bytes (after the caller emitted them).
    pub fn consume(&mut self, n: usize) {
        self.buf.copy_within(n..self.len, 0);
        self.len -= n;
    }

    /// Waits for the next window: complete lines, a cut of a line longer
    /// than `max_line`, or the last partial line at end of input. `None` at
    /// end of input with nothing left.
    pub fn next_window(&mut self) -> io::Result<Option<Window>> {
        loop {
            if let Some(nl) = memchr::memrchr(b'\n', &self.buf[..self.len]) {
                return Ok(Some(Window {
                    len: nl + 1,
                    emit: nl + 1,
                }));
            }
            if self.len >= self.max_line {
                return Ok(Some(Window {
                    len: self.len,
                    emit: self.len - self.overlap,
                }));
            }
            if self.eof {
                return Ok((self.len > 0).then_some(Window {
                    len: self.len,
                    emit: self.len,
                }));
            }
            self.fill()?;
            // Take what else is already waiting, up to a large window.
            while !self.eof && self.len < GATHER.min(self.buf.len()) && self.readable_now() {
                self.fill()?;
            }
        }
    }

    /// True if a read would return at once (data or end of file waiting).
    fn readable_now(&mut self) -> bool {
        match &mut self.input {
            Input::Stdin(stdin) => stdin.ready(),
            _ => false,
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        let space = &mut self.buf[self.len..];
        let n = match &mut self.input {
            Input::Reader(r) => read_retrying(r, space)?,
            Input::Stdin(r) => read_retrying(r, space)?,
            Input::Follow { file, pos, path } => loop {
                let n = file.read(space)?;
                if n > 0 {
                    *pos += n as u64;
                    break n;
                }
                let open = file.metadata()?;
                if open.len() < *pos {
                    // Truncated (log rotation by copytruncate): start over.
                    file.seek(SeekFrom::Start(0))?;
                    *pos = 0;
                    continue;
                }
                // At the end of the open file: if its path now names a new
                // file, that is where the writer went. A path that is gone
                // (renamed, new file not created yet) keeps the old one.
                if let Some(p) = path.as_deref()
                    && let Ok(now) = std::fs::metadata(p)
                    && let (Some(a), Some(b)) = (file_identity(&open), file_identity(&now))
                    && a != b
                {
                    *file = File::open(p)?;
                    *pos = 0;
                    continue;
                }
                std::thread::sleep(FOLLOW_POLL);
            },
        };
        if n == 0 {
            self.eof = true;
        }
        self.len += n;
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn windows(input: &[u8], max_line: usize, overlap: usize) -> Vec<(Vec<u8>, usize)> {
        let mut r = StreamReader::new(Box::new(io::Cursor::new(input.to_vec())), max_line, overlap);
        let mut out = Vec::new();
        while let Some(w) = r.next_window().unwrap() {
            out.push((r.data()[..w.len].to_vec(), w.emit));
            r.consume(w.emit);
        }
        out
    }

    #[test]
    fn complete_lines_then_the_last_partial_line() {
        let w = windows(b"a\nb\nc", 4096, 16);
        let emitted: Vec<u8> = w.iter().flat_map(|(d, e)| d[..*e].to_vec()).collect();
        assert_eq!(emitted, b"a\nb\nc");
        assert_eq!(w.last().unwrap().0, b"c");
    }

    #[test]
    fn long_lines_are_cut_with_overlap_and_every_byte_emitted_once() {
        let line: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let mut input = line.clone();
        input.extend(b"\nshort\n");
        let w = windows(&input, 4096, 512);
        assert!(w.len() >= 3, "{} windows", w.len());
        assert!(w.iter().all(|(d, _)| d.len() <= 4096 + 64 * 1024));
        let emitted: Vec<u8> = w.iter().flat_map(|(d, e)| d[..*e].to_vec()).collect();
        assert_eq!(emitted, input);
    }
}
