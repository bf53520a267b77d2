//! Progress on standard error while a long scan runs: a bar when the total
//! is known (Git blobs), a spinner with counts otherwise. Only on a terminal
//! and never with `-q`, so logs and CI output stay clean.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use leakhound::pipeline::Counters;

use crate::cli::CommonArgs;

/// Runs `work`, showing progress from `counters` until it returns.
pub fn while_running<T>(
    common: &CommonArgs,
    counters: &Counters,
    total: Option<u64>,
    what: &str,
    work: impl FnOnce() -> T,
) -> T {
    if common.quiet || !std::io::stderr().is_terminal() {
        return work();
    }
    let bar = match total {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template(
                "{spinner} {pos}/{len} {msg} [{bar:30}] {elapsed_precise} {prefix}",
            )
            .expect("static template")
            .progress_chars("=> "),
        ),
        None => ProgressBar::no_length().with_style(
            ProgressStyle::with_template("{spinner} {pos} {msg} {elapsed_precise} {prefix}")
                .expect("static template"),
        ),
    };
    bar.set_message(what.to_string());
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Relaxed) {
                let secs = bar.elapsed().as_secs_f64().max(0.001);
                let bytes = counters.bytes.load(Relaxed);
                bar.set_position(counters.files.load(Relaxed));
                bar.set_prefix(format!(
                    "{:.1} MB, {:.0} MB/s",
                    bytes as f64 / 1e6,
                    bytes as f64 / 1e6 / secs
                ));
                std::thread::sleep(Duration::from_millis(100));
            }
            bar.finish_and_clear();
        });
        let out = work();
        done.store(true, Relaxed);
        out
    })
}
