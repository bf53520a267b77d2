//! The node agent of `leakhound logs --pods-dir DIR`: follows every
//! container log under the kubelet's directory (`layout`), parses CRI and
//! json-file records (`format`), survives rotation (`tail`), and resumes
//! from a state file (`state`) after a restart.
//!
//! Threads: a pool of workers takes streams in turn (each poll reads a
//! bounded amount, so a busy container cannot starve the others) and
//! sleeps when a whole round found nothing new, until inotify (the `notify`
//! crate) says something changed or the poll interval passes; the calling
//! thread discovers new pods (on inotify events and every rescan interval,
//! the fallback when events are lost or not available), drops streams
//! whose pod was deleted (after reading them to their end), and writes the
//! state file at an interval and on shutdown.
//!
//! Memory: per stream only an unfinished record and an unfinished logical
//! line are kept; read and scan buffers belong to the workers.

pub mod format;
pub mod layout;
pub mod state;
pub mod tail;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::engine::Scanner;
use crate::metrics::Metrics;
use crate::pipeline::stream::{StreamOptions, StreamSink, StreamStats};
use layout::StreamKey;
use tail::{Buffers, Checkpoint, Tail, Work};

/// Settings of the agent.
#[derive(Clone, Debug)]
pub struct AgentOptions {
    /// The kubelet's pods directory (`/var/log/pods`).
    pub root: PathBuf,
    /// Where checkpoints are kept across restarts.
    pub state: Option<PathBuf>,
    pub state_interval: Duration,
    /// Full listing of `root`, besides the one inotify events trigger.
    pub rescan_interval: Duration,
    /// Longest wait for new data when inotify says nothing.
    pub poll_interval: Duration,
    pub threads: usize,
    /// Longest logical line scanned whole.
    pub max_line: usize,
    /// Pods not followed: `(namespace, pod)`.
    pub exclude: Vec<(String, String)>,
}

/// Where the agent's findings and errors go.
pub struct Outputs<'a> {
    /// A sink per worker thread.
    pub sink: &'a (dyn Fn() -> Box<dyn StreamSink + Send> + Sync),
    /// A stream could not be read (message names the file); called once
    /// per distinct error of a stream.
    pub error: &'a (dyn Fn(String) + Sync),
    pub metrics: Option<&'a Metrics>,
}

/// Bytes one poll of a stream reads before the next stream's turn.
const BUDGET: usize = 1 << 20;

struct Stream {
    tail: Mutex<Tail>,
    /// The last error reported for it.
    error: Mutex<Option<String>>,
}

struct Shared {
    streams: Mutex<Vec<Arc<Stream>>>,
    next: AtomicUsize,
    wake: (Mutex<()>, Condvar),
    rescan: AtomicBool,
}

impl Shared {
    fn wait(&self, timeout: Duration) {
        let (lock, cv) = &self.wake;
        let guard = lock.lock().expect("wake lock");
        let _ = cv.wait_timeout(guard, timeout);
    }

    fn wake_all(&self) {
        self.wake.1.notify_all();
    }
}

/// Runs the agent until `stop` is set, then writes the state a last time.
pub fn run(
    scanner: &Scanner,
    opts: &AgentOptions,
    stream_opts: &StreamOptions,
    stats: &Mutex<StreamStats>,
    out: &Outputs<'_>,
    stop: &AtomicBool,
) -> io::Result<()> {
    if !opts.root.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{}: not a directory", opts.root.display()),
        ));
    }
    let mut resume: HashMap<String, Checkpoint> = match &opts.state {
        Some(p) => state::load(p)?.streams.into_iter().collect(),
        None => HashMap::new(),
    };
    if let Some(p) = &opts.state {
        // Fail now, not at the first checkpoint, if it cannot be written.
        save_state(p, &BTreeMap::new(), &resume, opts)?;
    }
    let shared = Arc::new(Shared {
        streams: Mutex::new(Vec::new()),
        next: AtomicUsize::new(0),
        wake: (Mutex::new(()), Condvar::new()),
        rescan: AtomicBool::new(false),
    });
    let mut known: HashSet<StreamKey> = HashSet::new();
    rescan(opts, &shared, &mut known, &mut resume, out);
    let _watcher = watch(opts, &shared, out);
    if let Some(m) = out.metrics {
        m.watch_liveness(Duration::from_secs(60).max(4 * opts.poll_interval));
    }
    let threads = opts.threads.max(1);
    std::thread::scope(|scope| -> io::Result<()> {
        for i in 0..threads {
            let shared = &shared;
            std::thread::Builder::new()
                .name(format!("pods-{i}"))
                .spawn_scoped(scope, move || {
                    worker(scanner, opts, stream_opts, stats, out, shared, stop)
                })?;
        }
        let mut next_rescan = Instant::now() + opts.rescan_interval;
        let mut next_state = Instant::now() + opts.state_interval;
        while !stop.load(Ordering::Relaxed) {
            shared.wait(Duration::from_millis(200));
            let now = Instant::now();
            if shared.rescan.swap(false, Ordering::Relaxed) || now >= next_rescan {
                rescan(opts, &shared, &mut known, &mut resume, out);
                next_rescan = now + opts.rescan_interval;
            }
            if let Some(p) = &opts.state
                && now >= next_state
            {
                if let Err(e) = save_state(p, &checkpoints(&shared), &resume, opts) {
                    (out.error)(format!("{}: cannot write the state: {e}", p.display()));
                    if let Some(m) = out.metrics {
                        m.error("state");
                    }
                }
                next_state = now + opts.state_interval;
            }
        }
        // The workers end after their current poll; the scope joins them
        // before the last state is written, so it follows the last
        // findings written.
        shared.wake_all();
        Ok(())
    })?;
    if let Some(p) = &opts.state {
        drop_done(&shared, &mut known);
        save_state(p, &checkpoints(&shared), &resume, opts)?;
    }
    Ok(())
}

fn worker(
    scanner: &Scanner,
    opts: &AgentOptions,
    stream_opts: &StreamOptions,
    stats: &Mutex<StreamStats>,
    out: &Outputs<'_>,
    shared: &Shared,
    stop: &AtomicBool,
) {
    let mut bufs = Buffers::default();
    let mut sink = (out.sink)();
    let mut idle = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let (stream, count) = {
            let streams = shared.streams.lock().expect("streams lock");
            let n = streams.len();
            let i = shared.next.fetch_add(1, Ordering::Relaxed);
            (streams.get(i % n.max(1)).cloned(), n)
        };
        if let Some(m) = out.metrics {
            m.beat();
        }
        let Some(stream) = stream else {
            shared.wait(opts.poll_interval);
            continue;
        };
        let progressed = match stream.tail.try_lock() {
            Ok(mut tail) => {
                let mut work = Work {
                    scanner,
                    opts: stream_opts,
                    stats,
                    sink: &mut *sink,
                    bufs: &mut bufs,
                    metrics: out.metrics,
                    budget: BUDGET,
                };
                let res = tail.poll(&mut work);
                let mut last = stream.error.lock().expect("error lock");
                match res {
                    Ok(p) => {
                        *last = None;
                        p
                    }
                    Err(e) => {
                        let msg = format!("{}: {e}", tail.key.live(&opts.root).display());
                        if last.as_deref() != Some(&msg) {
                            if let Some(m) = out.metrics {
                                m.error("read");
                            }
                            (out.error)(msg.clone());
                            *last = Some(msg);
                        }
                        false
                    }
                }
            }
            Err(_) => false,
        };
        if progressed {
            idle = 0;
        } else {
            idle += 1;
            if idle >= count {
                shared.wait(opts.poll_interval);
                idle = 0;
            }
        }
    }
}

/// Lists the pods directory: new streams are followed (from their
/// checkpoint, or from their first line); streams read to their end after
/// their pod was deleted are dropped.
fn rescan(
    opts: &AgentOptions,
    shared: &Shared,
    known: &mut HashSet<StreamKey>,
    resume: &mut HashMap<String, Checkpoint>,
    out: &Outputs<'_>,
) {
    drop_done(shared, known);
    let found = match layout::discover(&opts.root) {
        Ok(f) => f,
        Err(e) => {
            (out.error)(format!("{}: cannot list: {e}", opts.root.display()));
            if let Some(m) = out.metrics {
                m.error("read");
            }
            return;
        }
    };
    let mut added = Vec::new();
    for key in found {
        if known.contains(&key) {
            continue;
        }
        if let Some((ns, pod, _)) = layout::parse_pod_dir(&key.pod_dir)
            && opts.exclude.iter().any(|(n, p)| n == ns && p == pod)
        {
            continue;
        }
        let cp = resume.remove(&key.id());
        known.insert(key.clone());
        added.push(Arc::new(Stream {
            tail: Mutex::new(Tail::new(&opts.root, key, cp, opts.max_line)),
            error: Mutex::new(None),
        }));
    }
    let mut streams = shared.streams.lock().expect("streams lock");
    streams.extend(added);
    if let Some(m) = out.metrics {
        m.set_files_followed(streams.len());
    }
    drop(streams);
    shared.wake_all();
}

fn drop_done(shared: &Shared, known: &mut HashSet<StreamKey>) {
    let mut streams = shared.streams.lock().expect("streams lock");
    streams.retain(|s| {
        let tail = s.tail.lock().expect("tail lock");
        if tail.done {
            known.remove(&tail.key);
        }
        !tail.done
    });
}

fn checkpoints(shared: &Shared) -> BTreeMap<String, Checkpoint> {
    let streams: Vec<Arc<Stream>> = shared.streams.lock().expect("streams lock").clone();
    streams
        .iter()
        .filter_map(|s| {
            let tail = s.tail.lock().expect("tail lock");
            if tail.done {
                return None;
            }
            tail.checkpoint().map(|c| (tail.key.id(), c.clone()))
        })
        .collect()
}

/// Writes the checkpoints of the streams followed, and those of streams
/// not yet found again whose container directory still exists.
fn save_state(
    path: &std::path::Path,
    followed: &BTreeMap<String, Checkpoint>,
    pending: &HashMap<String, Checkpoint>,
    opts: &AgentOptions,
) -> io::Result<()> {
    let mut all = followed.clone();
    for (id, cp) in pending {
        if let Some(key) = StreamKey::from_id(id)
            && key.dir(&opts.root).is_dir()
        {
            all.entry(id.clone()).or_insert_with(|| cp.clone());
        }
    }
    state::save(path, all)
}

/// Watches the pods directory: any event wakes the workers; a created,
/// removed or renamed entry also asks for a rescan. Without inotify (or
/// out of watches) the agent polls.
fn watch(
    opts: &AgentOptions,
    shared: &Arc<Shared>,
    out: &Outputs<'_>,
) -> Option<notify::RecommendedWatcher> {
    use notify::{EventKind, RecursiveMode, Watcher, event::ModifyKind};
    let events = Arc::downgrade(shared);
    let handler = move |res: notify::Result<notify::Event>| {
        let Some(shared) = events.upgrade() else {
            return;
        };
        match res {
            Ok(ev) => {
                if matches!(
                    ev.kind,
                    EventKind::Create(_)
                        | EventKind::Remove(_)
                        | EventKind::Modify(ModifyKind::Name(_))
                ) {
                    shared.rescan.store(true, Ordering::Relaxed);
                }
            }
            // Lost events (queue overflow): list everything again.
            Err(_) => shared.rescan.store(true, Ordering::Relaxed),
        }
        shared.wake_all();
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            (out.error)(format!("file events unavailable ({e}); polling instead"));
            if let Some(m) = out.metrics {
                m.error("watch");
            }
            return None;
        }
    };
    if let Err(e) = watcher.watch(&opts.root, RecursiveMode::Recursive) {
        (out.error)(format!(
            "{}: cannot watch ({e}); polling instead",
            opts.root.display()
        ));
        if let Some(m) = out.metrics {
            m.error("watch");
        }
        return None;
    }
    Some(watcher)
}
