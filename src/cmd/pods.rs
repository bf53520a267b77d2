//! `leakhound logs --pods-dir`: the node agent's settings from the command
//! line, its warnings on standard error; the agent itself is
//! `leakhound::source::pods`.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, Result};
use leakhound::Scanner;
use leakhound::metrics::Metrics;
use leakhound::pipeline::stream::{StreamOptions, StreamSink, StreamStats};
use leakhound::report::summary::Item;
use leakhound::source::pods::{self, AgentOptions, Outputs};

use crate::cli::{CommonArgs, LogsArgs};

/// Longest wait for new data when no file event arrives.
const POLL: Duration = Duration::from_millis(250);

/// Runs the agent until SIGINT/SIGTERM sets `stop`; returns how many
/// distinct errors it met (each already named on standard error and handed
/// to `record`).
#[allow(clippy::too_many_arguments)]
pub fn run(
    root: &Path,
    common: &CommonArgs,
    args: &LogsArgs,
    scanner: &Scanner,
    opts: &StreamOptions,
    stats: &Mutex<StreamStats>,
    sink: &(dyn Fn() -> Box<dyn StreamSink + Send> + Sync),
    mut record: impl FnMut(Item),
    metrics: Option<&Metrics>,
    stop: &AtomicBool,
) -> Result<usize> {
    let agent = AgentOptions {
        root: root.to_path_buf(),
        state: args.state.clone(),
        state_interval: args.state_interval,
        rescan_interval: args.rescan_interval,
        poll_interval: POLL,
        threads: common
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        max_line: args.max_line as usize,
        exclude: args
            .exclude_pod
            .iter()
            .map(|p| match p.split_once('/') {
                Some((ns, pod)) if !ns.is_empty() && !pod.is_empty() => {
                    Ok((ns.to_string(), pod.to_string()))
                }
                _ => Err(anyhow::anyhow!("--exclude-pod {p}: give NAMESPACE/POD")),
            })
            .collect::<Result<_>>()?,
    };
    let errors: Mutex<Vec<Item>> = Mutex::new(Vec::new());
    let quiet = common.quiet;
    let on_error = |msg: String| {
        // A path can hold anything; the message goes through the masks.
        let msg = scanner.masked_text(&msg);
        if !quiet {
            eprintln!("leakhound: warning: {msg}");
        }
        let mut errors = errors.lock().expect("errors lock");
        if errors.len() < 1000 {
            errors.push(Item {
                path: root.display().to_string(),
                reason: msg,
            });
        }
    };
    let outputs = Outputs {
        sink,
        error: &on_error,
        metrics,
    };
    pods::run(scanner, &agent, opts, stats, &outputs, stop)
        .with_context(|| format!("following container logs under {}", root.display()))?;
    let errors = errors.into_inner().expect("errors lock");
    let n = errors.len();
    for e in errors {
        record(e);
    }
    Ok(n)
}
