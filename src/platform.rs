//! Every call that only some operating systems have, in one place, each with
//! a fallback that works everywhere else. The rest of the crate is portable
//! Rust; CI on Linux exercises the Unix branches, and `cargo check --target`
//! for macOS and Windows (see `scripts/cross-check.sh`) type-checks the others.
//!
//! - standard input that can say whether a read would return at once
//!   ([`Stdin::ready`]): `poll(2)` on Unix, a reader thread elsewhere;
//! - a larger pipe buffer for standard input: Linux only, skipped elsewhere;
//! - running a closure on SIGINT/SIGTERM ([`on_termination`]): a signal
//!   thread on Unix, `signal-hook`'s portable flags elsewhere;
//! - telling a socket from other special files ([`is_socket`]): Unix only;
//! - telling whether a path still names an open file ([`file_identity`]):
//!   device and inode on Unix; elsewhere none, so `--follow` notices
//!   truncation but not a rename.

use std::io::{self, Read};
use std::sync::mpsc;
use std::thread;

/// Standard input for the log filter. `ready` lets the reader gather what is
/// already waiting into one window without ever waiting for more.
pub struct Stdin {
    #[cfg(unix)]
    inner: io::Stdin,
    #[cfg(not(unix))]
    inner: ThreadedReader,
}

impl Stdin {
    /// Takes standard input. On Linux it also asks for a 1 MiB pipe buffer,
    /// so one read can take up to 1 MiB (the default 64 KiB halved
    /// throughput on a fast producer); that fails harmlessly when standard
    /// input is not a pipe.
    pub fn new() -> Stdin {
        #[cfg(target_os = "linux")]
        // SAFETY: fcntl on fd 0 with an integer argument touches no memory.
        unsafe {
            libc::fcntl(0, libc::F_SETPIPE_SZ, 1 << 20);
        }
        Stdin {
            #[cfg(unix)]
            inner: io::stdin(),
            #[cfg(not(unix))]
            inner: ThreadedReader::new(io::stdin()),
        }
    }

    /// True if a read would return at once (data or end of input waiting).
    #[cfg(unix)]
    pub fn ready(&mut self) -> bool {
        let mut pfd = libc::pollfd {
            fd: 0,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, zero timeout; poll only reads the fd number.
        let n = unsafe { libc::poll(&mut pfd, 1, 0) };
        n == 1 && (pfd.revents & (libc::POLLIN | libc::POLLHUP)) != 0
    }

    /// True if a read would return at once (data or end of input waiting).
    #[cfg(not(unix))]
    pub fn ready(&mut self) -> bool {
        self.inner.ready()
    }
}

impl Default for Stdin {
    fn default() -> Self {
        Stdin::new()
    }
}

impl Read for Stdin {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

/// Bytes a reader thread reads at once.
const CHUNK: usize = 64 * 1024;
/// Chunks a reader thread may read ahead (so at most 1 MiB in flight).
const AHEAD: usize = 16;

/// A reader whose reads happen on a thread of their own, so that whether
/// data is waiting can be asked without blocking: the portable stand-in for
/// `poll(2)`, used for standard input where there is no `poll`. Memory is
/// bounded: the thread reads at most `AHEAD` chunks of 64 KiB ahead.
pub struct ThreadedReader {
    rx: mpsc::Receiver<io::Result<Vec<u8>>>,
    /// A received chunk not yet read through, and how far it was read.
    pending: Vec<u8>,
    at: usize,
    /// An error the thread met, for the next read.
    error: Option<io::Error>,
    /// The thread has stopped: end of input, or an error.
    done: bool,
}

impl ThreadedReader {
    pub fn new<R: Read + Send + 'static>(mut reader: R) -> ThreadedReader {
        let (tx, rx) = mpsc::sync_channel(AHEAD);
        thread::spawn(move || {
            loop {
                let mut chunk = vec![0; CHUNK];
                let msg = match reader.read(&mut chunk) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => Err(e),
                    Ok(n) => {
                        chunk.truncate(n);
                        Ok(chunk)
                    }
                };
                let last = !matches!(&msg, Ok(c) if !c.is_empty());
                // The receiver went away: nobody wants the rest.
                if tx.send(msg).is_err() || last {
                    return;
                }
            }
        });
        ThreadedReader {
            rx,
            pending: Vec::new(),
            at: 0,
            error: None,
            done: false,
        }
    }

    /// True if a read would return at once: data, end of input or an error
    /// is waiting.
    pub fn ready(&mut self) -> bool {
        if self.done || self.error.is_some() || self.at < self.pending.len() {
            return true;
        }
        match self.rx.try_recv() {
            Ok(Ok(chunk)) => {
                self.take(chunk);
                true
            }
            Ok(Err(e)) => {
                self.error = Some(e);
                self.done = true;
                true
            }
            Err(mpsc::TryRecvError::Empty) => false,
            Err(mpsc::TryRecvError::Disconnected) => {
                self.done = true;
                true
            }
        }
    }

    fn take(&mut self, chunk: Vec<u8>) {
        if chunk.is_empty() {
            self.done = true;
        }
        self.pending = chunk;
        self.at = 0;
    }
}

impl Read for ThreadedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.at < self.pending.len() {
                let n = buf.len().min(self.pending.len() - self.at);
                buf[..n].copy_from_slice(&self.pending[self.at..self.at + n]);
                self.at += n;
                return Ok(n);
            }
            if let Some(e) = self.error.take() {
                return Err(e);
            }
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(chunk)) => self.take(chunk),
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(mpsc::RecvError) => self.done = true,
            }
        }
    }
}

/// Runs `handler` on a thread of its own when the process gets SIGINT or
/// SIGTERM (on Windows: Ctrl+C, through the C runtime's `signal`). The
/// handler usually ends the process; if it returns, later signals are
/// ignored.
#[cfg(unix)]
pub fn on_termination(handler: impl FnOnce() + Send + 'static) -> io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    thread::spawn(move || {
        if signals.forever().next().is_some() {
            handler();
        }
    });
    Ok(())
}

/// Runs `handler` on a thread of its own when the process gets SIGINT or
/// SIGTERM (on Windows: Ctrl+C, through the C runtime's `signal`). The
/// handler usually ends the process; if it returns, later signals are
/// ignored. Without signal iterators, a flag set by the signal is checked
/// every 50 ms.
#[cfg(not(unix))]
pub fn on_termination(handler: impl FnOnce() + Send + 'static) -> io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let flag = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(SIGINT, flag.clone())?;
    signal_hook::flag::register(SIGTERM, flag.clone())?;
    thread::spawn(move || {
        while !flag.load(Ordering::Relaxed) {
            thread::sleep(std::time::Duration::from_millis(50));
        }
        handler();
    });
    Ok(())
}

/// True for a Unix domain socket, which cannot be opened as a file (a
/// named pipe or a device can: they are read as streams). `false` where
/// there are none.
#[cfg(unix)]
pub fn is_socket(t: &std::fs::FileType) -> bool {
    use std::os::unix::fs::FileTypeExt;
    t.is_socket()
}

#[cfg(not(unix))]
pub fn is_socket(_t: &std::fs::FileType) -> bool {
    false
}

/// What identifies a file whatever its name: (device, inode) on Unix;
/// `None` where the standard library does not say.
#[cfg(unix)]
pub fn file_identity(m: &std::fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((m.dev(), m.ino()))
}

#[cfg(not(unix))]
pub fn file_identity(_m: &std::fs::Metadata) -> Option<(u64, u64)> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::{Duration, Instant};

    /// A pipe whose writing end the test controls.
    fn pipe() -> (io::PipeReader, io::PipeWriter) {
        io::pipe().expect("pipe")
    }

    fn wait_ready(r: &mut ThreadedReader) -> bool {
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if r.ready() {
                return true;
            }
            thread::sleep(Duration::from_millis(5));
        }
        false
    }

    #[test]
    fn threaded_reader_is_ready_only_when_data_or_eof_waits() {
        let (rx, mut tx) = pipe();
        let mut r = ThreadedReader::new(rx);
        thread::sleep(Duration::from_millis(50));
        assert!(!r.ready(), "nothing written yet");
        tx.write_all(b"hello\n").unwrap();
        assert!(wait_ready(&mut r));
        let mut buf = [0u8; 3];
        assert_eq!(r.read(&mut buf).unwrap(), 3);
        assert_eq!(&buf, b"hel");
        assert!(r.ready(), "the rest of the chunk is waiting");
        let mut rest = [0u8; 16];
        assert_eq!(r.read(&mut rest).unwrap(), 3);
        assert_eq!(&rest[..3], b"lo\n");
        thread::sleep(Duration::from_millis(50));
        assert!(!r.ready(), "drained, writer still open");
        drop(tx);
        assert!(wait_ready(&mut r), "end of input is ready");
        assert_eq!(r.read(&mut rest).unwrap(), 0);
        assert_eq!(r.read(&mut rest).unwrap(), 0);
    }

    #[test]
    fn threaded_reader_passes_every_byte_in_order() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut r = ThreadedReader::new(io::Cursor::new(data.clone()));
        let mut out = Vec::new();
        let mut buf = vec![0u8; 10_000];
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(out, data);
    }

    #[test]
    fn threaded_reader_hands_over_errors() {
        struct Failing(bool);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if std::mem::replace(&mut self.0, true) {
                    Err(io::Error::other("disk on fire"))
                } else {
                    buf[..2].copy_from_slice(b"ok");
                    Ok(2)
                }
            }
        }
        let mut r = ThreadedReader::new(Failing(false));
        let mut buf = [0u8; 8];
        assert_eq!(r.read(&mut buf).unwrap(), 2);
        assert!(wait_ready(&mut r), "an error is ready to be read");
        let e = r.read(&mut buf).unwrap_err();
        assert_eq!(e.to_string(), "disk on fire");
        assert_eq!(r.read(&mut buf).unwrap(), 0);
    }
}
