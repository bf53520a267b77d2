//! `leakhound logs`: streaming throughput and per-line latency.
//!
//! `stream_throughput`: the streaming pipeline over a generated 64 MiB log
//! (key=value lines, JSON lines with escapes, warnings) with a secret every
//! ~1 MiB, read through `StreamReader` as from a pipe.
//! `line_latency`: the real binary on a pipe that stays open; each sample
//! writes one line with a secret and waits for its JSONL finding.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use leakhound::blob::Origin;
use leakhound::engine::MAX_MATCH;
use leakhound::finding::Finding;
use leakhound::pipeline::stream::{StreamOptions, StreamSink, StreamStats, scan_stream};
use leakhound::rules::RuleSet;
use leakhound::source::stream::StreamReader;
use leakhound::{EngineOptions, Scanner};

const SECRET: &str = "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"; // leakhound:allow (fake, for the bench)

fn log(size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 1024);
    let mut i = 0u64;
    while out.len() < size {
        i += 1;
        let line = match i % 10 {
            0..=4 => format!(
                "2026-11-25T10:00:{:02}Z level=info msg=\"request done\" path=/api/v1/items/{i} status=200 duration_ms={} req_id={:016x}\n",
                i % 60,
                i % 900,
                i.wrapping_mul(0x9e3779b97f4a7c15)
            ),
            5..=7 => format!(
                "{{\"ts\":\"2026-11-25T10:00:{:02}Z\",\"level\":\"debug\",\"msg\":\"GET https:\\/\\/api.internal\\/v2\\/items?page={i}\",\"accept\":\"application\\/json\"}}\n",
                i % 60
            ),
            _ => format!(
                "[{i}] WARN worker-{}: retrying job {:08x} after timeout\n",
                i % 8,
                i * 7919
            ),
        };
        out.extend_from_slice(line.as_bytes());
        if i.is_multiple_of(8000) {
            out.extend_from_slice(format!("ERROR env dump GITHUB_TOKEN={SECRET}\n").as_bytes());
        }
    }
    out
}

struct Discard;
impl StreamSink for Discard {
    fn finding(&mut self, _: &Finding) -> std::io::Result<()> {
        Ok(())
    }
    fn passthrough(&mut self, _: &[u8]) -> std::io::Result<()> {
        Ok(())
    }
}

/// `cargo bench` passes `--bench`; `cargo test --all-targets` runs each
/// benchmark once without it, where a small input proves it works (the
/// full size at opt-level 0 cost minutes of CI).
fn scaled(full: usize, test: usize) -> usize {
    if std::env::args().any(|a| a == "--bench") {
        full
    } else {
        test
    }
}

fn stream_throughput(c: &mut Criterion) {
    let data = log(scaled(64 << 20, 256 << 10));
    let scanner = Scanner::new(RuleSet::embedded().expect("pack"), EngineOptions::default());
    let mut g = c.benchmark_group("logs");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("stream_64MiB_log", |b| {
        b.iter(|| {
            let mut reader = StreamReader::new(
                Box::new(std::io::Cursor::new(data.clone())),
                1 << 20,
                MAX_MATCH,
            );
            let stats = Mutex::new(StreamStats::default());
            let opts = StreamOptions {
                report_repeats: true,
                redact: None,
                min_report: leakhound::rules::Confidence::Low,
            };
            scan_stream(
                &scanner,
                &Origin::Stdin,
                &mut reader,
                &opts,
                &stats,
                &mut Discard,
            )
            .expect("stream scan");
            stats.into_inner().unwrap().findings
        })
    });
    g.finish();
}

fn line_latency(c: &mut Criterion) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_leakhound"))
        .args(["logs", "--report-repeats", "-q"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start leakhound logs");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut g = c.benchmark_group("logs");
    g.sample_size(50);
    g.bench_function("secret_line_to_finding_latency", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut line = String::new();
            for _ in 0..iters {
                let start = Instant::now();
                writeln!(stdin, "level=error token={SECRET}").unwrap();
                stdin.flush().unwrap();
                line.clear();
                stdout.read_line(&mut line).unwrap();
                total += start.elapsed();
            }
            total
        })
    });
    g.finish();
    drop(stdin);
    let _ = child.wait();
}

criterion_group!(benches, stream_throughput, line_latency);
criterion_main!(benches);
