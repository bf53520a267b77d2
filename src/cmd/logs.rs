//! `leakhound logs`: wires stream sources to the streaming pipeline, writes
//! each finding as soon as it is found, and shuts down cleanly on EOF,
//! SIGINT/SIGTERM or a closed standard output.

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result};
use leakhound::blob::Origin;
use leakhound::engine::MAX_MATCH;
use leakhound::finding::Finding;
use leakhound::metrics::Metrics;
use leakhound::pipeline::stream::{Mask, StreamOptions, StreamSink, StreamStats, scan_stream};
use leakhound::report::sink::{FindingSink, ReportSink};
use leakhound::report::summary::{self, FindingCounts, Item, Scanned, Summary, SuppressedCounts};
use leakhound::report::{Format, RunInfo, text};
use leakhound::rules::RuleSet;
use leakhound::source::stream::StreamReader;

use crate::cli::{CommonArgs, LogsArgs};
use crate::{EXIT_ERROR, EXIT_FINDINGS, settings};

/// The report (a `FindingSink` writing each finding as it comes) and the
/// redacted stream.
struct Reporter {
    sink: ReportSink<Box<dyn Write + Send>>,
    passthrough: Option<io::Stdout>,
    /// Standard output was closed by the reader of the redacted stream.
    closed: bool,
    /// What SARIF says of the run; inputs that could not be read.
    run: RunInfo<'static>,
}

impl Reporter {
    fn finish(&mut self, rules: &RuleSet) -> io::Result<()> {
        self.run.complete = self.run.errors.is_empty();
        self.sink.finish(rules, &self.run)
    }
}

/// The reporter shared with the signal thread, and the metrics.
struct Shared {
    reporter: Arc<Mutex<Reporter>>,
    /// Masks what notices quote.
    scanner: Arc<leakhound::Scanner>,
    quiet: bool,
    metrics: Option<Arc<Metrics>>,
}

impl StreamSink for Shared {
    fn finding(&mut self, f: &Finding) -> io::Result<()> {
        if let Some(m) = &self.metrics {
            let ns = f.kubernetes.as_ref().and_then(|k| k.namespace.as_deref());
            m.finding(&f.rule_id, f.severity.as_str(), ns);
        }
        self.reporter.lock().expect("reporter lock").sink.finding(f)
    }

    fn notice(&mut self, n: &leakhound::Notice) -> io::Result<()> {
        if !self.quiet {
            let line = format!("{}: {}", n.path, crate::cmd::report::reason(n));
            eprintln!(
                "leakhound: skipped: {}",
                text::escape_controls(&self.scanner.masked_text(&line))
            );
        }
        Ok(())
    }

    fn scanned(&mut self, lines: u64, bytes: u64) {
        if let Some(m) = &self.metrics {
            m.scanned(lines, bytes);
        }
    }

    fn passthrough(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut r = self.reporter.lock().expect("reporter lock");
        if let Some(out) = &mut r.passthrough {
            let res = out.write_all(bytes).and_then(|_| out.flush());
            if let Err(e) = &res
                && e.kind() == io::ErrorKind::BrokenPipe
            {
                r.closed = true;
            }
            res?;
        }
        Ok(())
    }
}

fn summary(stats: &StreamStats, started: Instant) -> String {
    let secs = started.elapsed().as_secs_f64();
    let mb = stats.bytes as f64 / 1e6;
    let rate = if secs > 0.0 { mb / secs } else { 0.0 };
    let mut s = format!(
        "leakhound: {} finding(s), {} repeat(s) not reported again; {} lines, {mb:.1} MB in {secs:.2}s ({rate:.0} MB/s)",
        stats.findings, stats.repeats, stats.lines
    );
    let mut repeated: Vec<_> = stats.repeated().collect();
    repeated.sort();
    for (fp, n) in repeated.iter().take(20) {
        s.push_str(&format!("\n  secret {} seen {n} times", &fp[..16]));
    }
    s
}

fn exit_code(stats: &StreamStats) -> u8 {
    if stats.findings > 0 { EXIT_FINDINGS } else { 0 }
}

pub fn run(common: &CommonArgs, args: &LogsArgs) -> Result<u8> {
    if common.baseline.is_some() || common.write_baseline.is_some() {
        anyhow::bail!(
            "--baseline and --write-baseline apply to scan, git and image; a log stream has no \
             reviewed state (use an allowlist in .leakhound.toml to silence a known value)"
        );
    }
    let started = Instant::now();
    let settings = settings(common, Some(std::path::Path::new(".")), None)?;
    let min_report = settings.min_confidence;
    // --redact hides every value the engine matches, whatever its
    // confidence; only reporting follows --min-confidence.
    let scanner = if args.redact {
        settings
            .scanner
            .with_min_confidence(leakhound::rules::Confidence::Low)
    } else {
        settings.scanner
    };
    let format = common.format.unwrap_or(Format::Jsonl);
    let (out, color): (Box<dyn Write + Send>, bool) = match &common.output {
        Some(p) => (
            Box::new(File::create(p).with_context(|| format!("cannot create {}", p.display()))?),
            false,
        ),
        None if args.redact => (Box::new(io::stderr()), false),
        None => (
            Box::new(io::stdout()),
            format == Format::Text && io::stdout().is_terminal(),
        ),
    };
    let reporter = Arc::new(Mutex::new(Reporter {
        sink: ReportSink::new(out, format, color, true),
        passthrough: args.redact.then(io::stdout),
        closed: false,
        run: RunInfo {
            sarif_category: common.sarif_category.clone(),
            sarif_max_results: common.sarif_max_results,
            ..RunInfo::new("logs")
        },
    }));
    let stats = Arc::new(Mutex::new(StreamStats::default()));
    let scanner = Arc::new(scanner);
    // The pods agent stops on SIGINT/SIGTERM after its current reads and
    // writes its state; the report is finished below.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if args.pods_dir.is_some() {
        let stop = stop.clone();
        leakhound::platform::on_termination(move || {
            stop.store(true, std::sync::atomic::Ordering::SeqCst)
        })
        .context("installing signal handlers")?;
    }

    // SIGINT/SIGTERM: finish the report (SARIF/JSON closing), print the
    // summary and exit; findings so far were already written.
    if args.pods_dir.is_none() {
        let (reporter, stats, scanner) = (reporter.clone(), stats.clone(), scanner.clone());
        let quiet = common.quiet;
        leakhound::platform::on_termination(move || {
            let st = stats.lock().expect("stats lock");
            let mut r = reporter.lock().expect("reporter lock");
            let _ = r.finish(scanner.rules());
            if let Some(p) = &mut r.passthrough {
                let _ = p.flush();
            }
            if !quiet {
                eprintln!("{}", summary(&st, started));
            }
            std::process::exit(exit_code(&st) as i32);
        })
        .context("installing signal handlers")?;
    }

    // Served once the signal handlers are in place.
    let (metrics, _server) = crate::cmd::serve_metrics(common, args.metrics_addr, Metrics::new)?;
    let opts = StreamOptions {
        min_report,
        report_repeats: args.report_repeats,
        redact: args.redact.then(|| match &args.mask {
            Some(m) => Mask::Fixed(m.clone()),
            None => Mask::RuleId,
        }),
    };
    let max_line = args.max_line as usize;
    let shared = || Shared {
        reporter: reporter.clone(),
        scanner: scanner.clone(),
        quiet: common.quiet,
        metrics: metrics.clone(),
    };
    let mut sink = shared();
    let mut errors = 0;
    if let Some(root) = &args.pods_dir {
        errors += crate::cmd::pods::run(
            root,
            common,
            args,
            &scanner,
            &opts,
            &stats,
            &|| Box::new(shared()),
            |item| {
                reporter
                    .lock()
                    .expect("reporter lock")
                    .run
                    .errors
                    .push(item)
            },
            metrics.as_deref(),
            &stop,
        )?;
    }
    let inputs: Vec<PathBuf> = if args.pods_dir.is_some() {
        Vec::new()
    } else if args.files.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        args.files.clone()
    };
    for path in &inputs {
        let (origin, mut reader) = if path.as_os_str() == "-" {
            (Origin::Stdin, StreamReader::stdin(max_line, MAX_MATCH))
        } else {
            let file = match File::open(path) {
                Ok(f) => f,
                Err(e) => {
                    let reason = format!("cannot open: {e}");
                    eprintln!("leakhound: warning: {}: {reason}", path.display());
                    reporter
                        .lock()
                        .expect("reporter lock")
                        .run
                        .errors
                        .push(Item {
                            path: scanner.masked_text(&path.display().to_string()),
                            reason,
                        });
                    errors += 1;
                    continue;
                }
            };
            let origin = Origin::File {
                path: path.display().to_string(),
            };
            let reader = if args.follow {
                StreamReader::follow(file, Some(path.clone()), max_line, MAX_MATCH)
            } else {
                StreamReader::new(Box::new(file), max_line, MAX_MATCH)
            };
            (origin, reader)
        };
        let res = scan_stream(&scanner, &origin, &mut reader, &opts, &stats, &mut sink);
        if let Err(e) = res {
            if reporter.lock().expect("reporter lock").closed {
                break; // The reader of our output went away: stop quietly.
            }
            if e.kind() == io::ErrorKind::BrokenPipe {
                break;
            }
            eprintln!("leakhound: warning: {origin}: {e}");
            reporter
                .lock()
                .expect("reporter lock")
                .run
                .errors
                .push(Item {
                    path: scanner.masked_text(&origin.to_string()),
                    reason: e.to_string(),
                });
            errors += 1;
        }
    }
    let st = stats.lock().expect("stats lock");
    let mut r = reporter.lock().expect("reporter lock");
    match r.finish(scanner.rules()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        other => other.context("writing findings")?,
    }
    if !common.quiet {
        eprintln!("{}", summary(&st, started));
    }
    let code = if errors > 0 {
        EXIT_ERROR
    } else {
        exit_code(&st)
    };
    let (inline, allowlisted) = (st.silenced.inline, st.silenced.allowlist);
    let start = crate::run_start();
    crate::write_summary(
        common,
        &Summary {
            summary_version: summary::SUMMARY_VERSION,
            tool: Default::default(),
            command: "logs".into(),
            arguments: crate::masked_arguments(Some(&scanner)),
            started: start.started.clone(),
            ended: summary::now(),
            elapsed_seconds: start.clock.elapsed().as_secs_f64(),
            scanned: Scanned {
                lines: st.lines,
                bytes: st.bytes,
                ..Scanned::default()
            },
            findings: FindingCounts {
                total: st.findings,
                by_severity: st.by_severity(),
                by_rule: st.by_rule.clone(),
            },
            suppressed: SuppressedCounts {
                baseline: 0,
                allowlist: allowlisted,
                inline,
            },
            left_out: Default::default(),
            skipped: Vec::new(),
            errors: r.run.errors.clone(),
            complete: errors == 0,
            exit_code: code,
            shard: None,
        },
    )?;
    Ok(code)
}
