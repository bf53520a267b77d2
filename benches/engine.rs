//! Engine throughput and start-up.
//!
//! `engine_throughput`: MB/s of one thread over a generated 64 MiB corpus (256 KiB
//! in `cargo test`'s one-shot run) of
//! source-like text with a secret every ~256 KiB, scanned as 32 KiB blobs
//! (a typical source file size), with every default rule.
//! `keywords`: the keyword pass alone, `KeywordFinder` against an
//! Aho-Corasick DFA, on the generated corpus and on this repository's sources.
//! `startup`: building the `RuleSet` (keyword finder; regexes compile
//! lazily) and compiling every regex eagerly, as rule count grows.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use leakhound::engine::{Scanner, Scratch};
use leakhound::rules::{KeywordFinder, RuleSet, embedded_keywords, embedded_specs};
use leakhound::{EngineOptions, Rule};

const CORPUS: usize = 64 << 20;

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
const BLOB: usize = 32 << 10;

/// Deterministic xorshift so every run scans the same bytes.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

/// Source-like lines (identifiers, calls, config keys, comments, some of
/// them words that are keywords of generic rules) with sparse real-format
/// secrets taken from the rules' own examples.
pub fn corpus(size: usize) -> Vec<u8> {
    let words = [
        "let", "fn", "return", "if", "else", "for", "while", "struct", "impl", "self", "value",
        "buffer", "count", "index", "result", "error", "config", "request", "response", "user",
        "name", "path", "file", "data", "len", "token", "password", "secret", "key", "auth",
        "client", "server", "handle", "parse", "write", "read", "0", "1", "42", "4096", "0x1f",
    ];
    let puncts = [
        "(", ")", " = ", ", ", ".", "::", " + ", "; ", " { ", " }", "->", "[", "]",
    ];
    let secrets: Vec<String> = embedded_specs()
        .expect("embedded pack")
        .into_iter()
        .flat_map(|(_, s)| s.examples.into_iter().map(|e| e.text))
        .collect();
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let mut out = Vec::with_capacity(size + 4096);
    let mut next_secret = 256 << 10;
    while out.len() < size {
        let indent = (rng.next() % 4) as usize * 4;
        out.extend(std::iter::repeat_n(b' ', indent));
        if rng.next().is_multiple_of(10) {
            out.extend_from_slice(b"// ");
        }
        for _ in 0..(3 + rng.next() % 9) {
            out.extend_from_slice(rng.pick(&words).as_bytes());
            out.extend_from_slice(rng.pick(&puncts).as_bytes());
        }
        out.push(b'\n');
        if out.len() >= next_secret && !secrets.is_empty() {
            let s = &secrets[(rng.next() % secrets.len() as u64) as usize];
            out.extend_from_slice(s.as_bytes());
            out.push(b'\n');
            next_secret += 256 << 10;
        }
    }
    out
}

fn engine_throughput(c: &mut Criterion) {
    let data = corpus(scaled(CORPUS, 256 << 10));
    // The matching core alone: no decoding.
    let options = EngineOptions {
        decode: leakhound::decode::Limits {
            max_depth: 0,
            ..Default::default()
        },
        ..EngineOptions::default()
    };
    let scanner = Scanner::new(RuleSet::embedded().expect("pack"), options);
    let origin = leakhound::Origin::Stdin;
    let mut g = c.benchmark_group("engine");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("scan_64MiB_corpus_1_thread", |b| {
        let mut scratch = Scratch::default();
        b.iter(|| {
            let mut n = 0;
            for blob in data.chunks(BLOB) {
                n += scanner.scan(&origin, blob, &mut scratch).candidates.len();
            }
            n
        })
    });
    g.finish();
}

/// This repository's own Rust sources and rules, repeated to `size`: real
/// code, where keywords are sparse (the generated corpus has one every few
/// words).
fn source_corpus(size: usize) -> Vec<u8> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = ["src", "rules"]
        .iter()
        .flat_map(|d| walk(&root.join(d)))
        .collect();
    files.sort();
    let mut one = Vec::new();
    for f in files {
        one.extend(std::fs::read(f).expect("readable source"));
    }
    one.iter().copied().cycle().take(size).collect()
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("readable dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs" || x == "toml") {
                out.push(p);
            }
        }
    }
    out
}

/// The keyword pass alone: `KeywordFinder` against the Aho-Corasick DFA it
/// replaced, on both corpora.
fn keyword_pass(c: &mut Criterion) {
    let patterns = embedded_keywords().expect("pack");
    let finder = KeywordFinder::new(&patterns).expect("finder");
    let dfa = aho_corasick::AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .kind(Some(aho_corasick::AhoCorasickKind::DFA))
        .build(&patterns)
        .expect("dfa");
    let size = scaled(16 << 20, 256 << 10);
    let mut g = c.benchmark_group("keywords");
    g.sample_size(10);
    for (name, data) in [
        ("generated", corpus(size)),
        ("sources", source_corpus(size)),
    ] {
        g.throughput(Throughput::Bytes(data.len() as u64));
        g.bench_with_input(BenchmarkId::new("finder", name), &data, |b, d| {
            b.iter(|| {
                let mut n = 0usize;
                finder.find(d, 0..d.len(), |_, _, _| n += 1);
                n
            })
        });
        g.bench_with_input(BenchmarkId::new("aho_corasick_dfa", name), &data, |b, d| {
            b.iter(|| dfa.find_overlapping_iter(d.as_slice()).count())
        });
    }
    g.finish();
}

fn startup(c: &mut Criterion) {
    let specs = embedded_specs().expect("pack");
    let mut g = c.benchmark_group("startup");
    g.sample_size(20);
    let mut counts = vec![10, specs.len() / 2, specs.len()];
    counts.dedup();
    for n in counts {
        let subset: Vec<_> = specs.iter().take(n).cloned().collect();
        g.bench_with_input(BenchmarkId::new("ruleset_lazy", n), &subset, |b, s| {
            b.iter(|| RuleSet::new(s.clone(), false).expect("pack").len())
        });
        g.bench_with_input(
            BenchmarkId::new("ruleset_all_regexes", n),
            &subset,
            |b, s| {
                b.iter(|| {
                    let set = RuleSet::new(s.clone(), false).expect("pack");
                    set.rules().iter().map(Rule::regex).count()
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, engine_throughput, keyword_pass, startup);
criterion_main!(benches);
