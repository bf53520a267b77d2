//! Replays the fuzz seed corpus and every saved fuzz regression through the
//! functions the `cargo fuzz` targets call (`fuzz/harness.rs`), on stable
//! Rust: a crash the fuzzer once found stays fixed, in seconds, in CI.
//!
//! Layout: `fuzz/corpus/TARGET/*` (seeds) and `fuzz/regressions/TARGET/*`
//! (inputs that once crashed, hung or blew memory).

#[path = "../fuzz/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::path::Path;

fn replay(dir: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut n = 0;
    let Ok(targets) = std::fs::read_dir(&root) else {
        return 0;
    };
    for t in targets {
        let t = t.unwrap();
        let name = t.file_name().into_string().unwrap();
        if !t.file_type().unwrap().is_dir() {
            continue;
        }
        assert!(
            harness::TARGETS.contains(&name.as_str()),
            "{dir}/{name}: no fuzz target of that name"
        );
        for f in std::fs::read_dir(t.path()).unwrap() {
            let p = f.unwrap().path();
            let data = std::fs::read(&p).unwrap();
            let ok = std::panic::catch_unwind(|| harness::run(&name, &data));
            assert!(
                matches!(ok, Ok(true)),
                "{}: the {name} target failed on it",
                p.display()
            );
            n += 1;
        }
    }
    n
}

#[test]
fn fuzz_seed_corpus_replays_clean() {
    let n = replay("fuzz/corpus");
    // Every target has seeds.
    for t in harness::TARGETS {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(t);
        assert!(dir.is_dir(), "fuzz/corpus/{t} is missing");
    }
    assert!(n >= harness::TARGETS.len(), "only {n} seeds replayed");
}

#[test]
fn fuzz_regressions_replay_clean() {
    replay("fuzz/regressions");
}
