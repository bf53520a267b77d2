//! Deadlines for ssh remotes. Git over ssh runs the `ssh` program and talks
//! through its standard input and output, so a server that completes the
//! handshake and then says nothing (or trickles a byte now and then) would
//! keep `leakhound git ssh://…` waiting forever: `ssh`'s own options only
//! notice a peer that stopped answering keep-alives.
//!
//! The ssh command given to gix is therefore this binary in relay mode,
//! `leakhound __ssh-relay SECONDS SSH-COMMAND…`: it runs the real command
//! and copies bytes both ways, and if the server side sends less than
//! `MIN_RATE` bytes/s over `SECONDS` of waiting for it, it kills the command
//! and says so. Time spent waiting for gix to take the bytes (while it
//! indexes a pack) does not count: only waiting on the server does.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The first argument that puts the binary in relay mode.
pub const ARG: &str = "__ssh-relay";

/// Slowest the server side may send, averaged over each timeout of waiting
/// (as for `git://` and registry layers).
const MIN_RATE: f64 = 1024.0;

/// Runs the relay: `args` are SECONDS and the ssh command with its
/// arguments. Returns the process exit code.
pub fn run(args: &[OsString]) -> i32 {
    let fail = |msg: String| {
        eprintln!("leakhound: ssh: {msg}");
        255
    };
    let (Some(secs), Some(program)) = (args.first(), args.get(1)) else {
        return fail("relay mode needs SECONDS and a command".into());
    };
    let Some(timeout) = secs
        .to_str()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .map(Duration::from_secs_f64)
    else {
        return fail(format!("relay mode: {secs:?} is not a number of seconds"));
    };
    let mut child = match Command::new(program)
        .args(&args[2..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return fail(format!("cannot run {program:?}: {e}")),
    };
    let (Some(mut to_server), Some(mut from_server)) = (child.stdin.take(), child.stdout.take())
    else {
        return fail("no pipes to the ssh command".into());
    };
    // Our input to the server, as it comes; its end closes the server's.
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut to_server);
    });
    // The server's output, read on a thread so waiting for it can time out.
    let (tx, rx) = mpsc::sync_channel::<std::io::Result<Vec<u8>>>(4);
    std::thread::spawn(move || {
        loop {
            let mut buf = vec![0; 64 * 1024];
            let msg = match from_server.read(&mut buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Ok(n) => {
                    buf.truncate(n);
                    Ok(buf)
                }
                Err(e) => Err(e),
            };
            let end = !matches!(&msg, Ok(b) if !b.is_empty());
            if tx.send(msg).is_err() || end {
                return;
            }
        }
    });
    let floor = (MIN_RATE * timeout.as_secs_f64()) as usize;
    let (mut waited, mut got, mut total) = (Duration::ZERO, 0usize, 0u64);
    let mut out = std::io::stdout().lock();
    loop {
        let asked = Instant::now();
        let next = rx.recv_timeout(timeout.saturating_sub(waited));
        waited += asked.elapsed();
        match next {
            Ok(Ok(bytes)) if !bytes.is_empty() => {
                got += bytes.len();
                total += bytes.len() as u64;
                if got >= floor {
                    (waited, got) = (Duration::ZERO, 0);
                }
                if out.write_all(&bytes).and_then(|_| out.flush()).is_err() {
                    // gix stopped listening: nothing more to relay.
                    let _ = child.kill();
                    let _ = child.wait();
                    return 0;
                }
            }
            // End of the server's output: the command's own status.
            Ok(Ok(_)) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                return child.wait().ok().and_then(|s| s.code()).unwrap_or(255);
            }
            Ok(Err(e)) => {
                let _ = child.kill();
                let _ = child.wait();
                return fail(format!("reading from the ssh command: {e}"));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                return fail(format!(
                    "the server sent {got} bytes in {} s of waiting ({total} in all), less than \
                     {MIN_RATE} bytes/s (--timeout); abandoned",
                    timeout.as_secs_f64()
                ));
            }
        }
    }
}
