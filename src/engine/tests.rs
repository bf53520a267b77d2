//! Engine tests: the windowed fast path against the naive oracle, overlap
//! resolution, filters and positions.

use proptest::prelude::*;

use super::*;
use crate::rules::{RuleSet, RuleSpec, embedded_specs, parse_rule_file};

fn set(toml: &str) -> RuleSet {
    let specs = parse_rule_file("test.toml", toml).expect("test rules parse");
    RuleSet::new(
        specs
            .into_iter()
            .map(|s| ("test.toml".to_string(), s))
            .collect(),
        true,
    )
    .expect("test rules compile")
}

fn scanner(rules: RuleSet) -> Scanner {
    Scanner::new(rules, EngineOptions::default())
}

const TWO_RULES: &str = r#"
[[rules]]
id = "tok-specific"
name = "Specific token"
description = "d"
keywords = ["tok_"]
regex = '''\b(tok_[a-zA-Z0-9]{20})\b'''
severity = "high"
confidence = "high"

[[rules]]
id = "generic-assignment"
name = "Generic"
description = "d"
keywords = ["secret"]
regex = '''(?i)secret\s{0,3}=\s{0,3}"?([A-Za-z0-9_]{12,64})'''
min_entropy = 3.0
severity = "medium"
confidence = "low"
"#;

#[test]
fn overlapping_findings_keep_the_most_specific_rule() {
    let s = scanner(set(TWO_RULES));
    let data = br#"secret = "tok_Ab3dE5fG7hI9jK1lM3nO""#; // leakhound:allow
    let c = s.candidates(data, &mut Scratch::default());
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(s.rules().rule(c[0].rule).spec.id, "tok-specific");
}

#[test]
fn keyword_must_be_inside_the_match() {
    // The generic rule's keyword is far from the value: no match.
    let s = scanner(set(TWO_RULES));
    let mut data = b"secret".to_vec();
    data.extend(std::iter::repeat_n(b' ', 100));
    data.extend(b"= \"Zq8vT2mLw9pKr4\"");
    assert!(s.candidates(&data, &mut Scratch::default()).is_empty());
}

const NEAR: &str = r#"
[[rules]]
id = "acme-hex-key"
name = "Acme key"
description = "d"
keywords = ["acme"]
proximity = 40
regex = '''\b([a-f0-9]{32})\b'''
min_entropy = 3.0
severity = "high"
confidence = "medium"
"#;

#[test]
fn proximity_rules_need_a_keyword_near_the_match() {
    let s = scanner(set(NEAR));
    let key = "9f86d081884c7d659a2feaa0c55ad015";
    let found = |text: String| {
        let c = s.candidates(text.as_bytes(), &mut Scratch::default());
        assert_eq!(c, s.candidates_naive(text.as_bytes()), "windowed = oracle");
        c.len()
    };
    // Before, after, on the previous line: found.
    assert_eq!(found(format!("ACME_KEY={key}")), 1);
    assert_eq!(found(format!("{key} # acme production")), 1);
    assert_eq!(found(format!("# Acme\nkey: {key}")), 1);
    // Exactly 40 bytes between keyword and match: found; 41: not.
    let gap = |n: usize| format!("acme{}{key}", " ".repeat(n));
    assert_eq!(found(gap(40)), 1);
    assert_eq!(found(gap(41)), 0);
    assert_eq!(found(format!("{key}{}acme", " ".repeat(41))), 0);
    // No keyword at all: a bare hex digest is nothing.
    assert_eq!(found(format!("sha={key}")), 0);
}

#[test]
fn proximity_is_checked_when_rules_load() {
    for bad in [
        "proximity = 0",
        "proximity = 5000",
        "proximity = 8\nscope = \"blob\"",
    ] {
        let toml = NEAR.replace("proximity = 40", bad);
        let specs = parse_rule_file("t.toml", &toml).unwrap();
        let err = RuleSet::new(
            specs.into_iter().map(|s| ("t.toml".into(), s)).collect(),
            true,
        )
        .unwrap_err();
        assert!(err.to_string().contains("proximity"), "{err}");
    }
}

#[test]
fn placeholders_and_low_entropy_values_are_dropped() {
    let s = scanner(set(TWO_RULES));
    for text in [
        "secret = \"EXAMPLEEXAMPLEKEY\"",
        "secret = \"aaaaaaaaaaaaaaaa\"",
        "secret = \"abababababababab\"",
    ] {
        assert!(
            s.candidates(text.as_bytes(), &mut Scratch::default())
                .is_empty(),
            "{text} should be dropped"
        );
    }
}

#[test]
fn findings_carry_positions_masked_snippet_and_stable_fingerprint() {
    let s = scanner(set(TWO_RULES));
    let origin = crate::Origin::File {
        path: "a/b.env".into(),
    };
    let data = "x\n  é tok_Ab3dE5fG7hI9jK1lM3nO end\n";
    let f = s.scan(&origin, data.as_bytes(), &mut Scratch::default());
    assert_eq!(f.findings.len(), 1);
    let f = &f.findings[0];
    assert_eq!((f.line, f.column, f.end_line, f.end_column), (2, 5, 2, 29));
    assert_eq!(
        &data.as_bytes()[f.span.clone()],
        b"tok_Ab3dE5fG7hI9jK1lM3nO"
    );
    assert!(
        !f.snippet.contains("Ab3dE5"),
        "snippet leaks: {}",
        f.snippet
    );
    assert!(f.secret.is_none());
    // Moving the secret down keeps the fingerprint.
    let moved = "\n\n\nx\n tok_Ab3dE5fG7hI9jK1lM3nO\n";
    assert_eq!(
        s.scan(&origin, moved.as_bytes(), &mut Scratch::default())
            .findings[0]
            .fingerprint,
        f.fingerprint
    );
}

#[test]
fn invalid_utf8_and_nul_bytes_do_not_stop_matching() {
    let s = scanner(set(TWO_RULES));
    let mut data = vec![0xff, 0xfe, 0, 0x80];
    data.extend(b" tok_Ab3dE5fG7hI9jK1lM3nO ");
    data.extend([0xc3, 0x28]);
    assert_eq!(s.candidates(&data, &mut Scratch::default()).len(), 1);
}

/// The default pack, built once for all property-test cases.
fn pack() -> &'static Scanner {
    static PACK: std::sync::OnceLock<Scanner> = std::sync::OnceLock::new();
    PACK.get_or_init(|| {
        let specs: Vec<(String, RuleSpec)> = embedded_specs().expect("embedded pack parses");
        scanner(RuleSet::new(specs, false).expect("embedded pack compiles"))
    })
}

/// Pieces the property test assembles into inputs: every example of the
/// pack (true positives near each other and at window edges), keywords
/// alone, and filler.
fn fragments() -> &'static [Vec<u8>] {
    static FRAGMENTS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    FRAGMENTS.get_or_init(build_fragments)
}

fn build_fragments() -> Vec<Vec<u8>> {
    let specs = embedded_specs().expect("embedded pack parses");
    let mut out: Vec<Vec<u8>> = Vec::new();
    for (_, s) in specs {
        out.extend(s.examples.iter().map(|e| e.text.as_bytes().to_vec()));
        out.extend(s.negative_examples.iter().map(|n| n.as_bytes().to_vec()));
        out.extend(s.keywords.iter().map(|k| k.as_bytes().to_vec()));
    }
    out.push(b"\n".to_vec());
    out.push(b" = ".to_vec());
    out.push(vec![b'a'; 300]);
    out
}

/// What the stored proptest seed once replayed (one fragment, no noise),
/// for every fragment: a seed is an index into `fragments()`, which changes
/// with every rule edit, so single-fragment cases are checked here by value
/// and the property test stores no seeds (a failure prints its input: make
/// it a test like this one).
#[test]
fn every_fragment_alone_agrees_with_naive_scan() {
    let s = pack();
    for frag in fragments() {
        assert_eq!(
            s.candidates(frag, &mut Scratch::default()),
            s.candidates_naive(frag),
            "{}",
            String::from_utf8_lossy(frag)
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// The oracle: prefilter + windowed confirmation reports exactly what
    /// every rule's regex over the whole input reports.
    #[test]
    fn windowed_engine_agrees_with_naive_scan(
        picks in proptest::collection::vec((any::<prop::sample::Index>(), proptest::collection::vec(any::<u8>(), 0..8)), 1..24)
    ) {
        let data = assemble(&picks);
        let s = pack();
        let fast = s.candidates(&data, &mut Scratch::default());
        let naive = s.candidates_naive(&data);
        prop_assert_eq!(fast, naive);
    }

    /// Before and after the span, `new` is `old`'s beginning and end, cut at
    /// line ends; the beginning is the longest such.
    #[test]
    fn changed_span_leaves_out_only_a_common_beginning_and_end(
        old in proptest::collection::vec(prop::sample::select(&b"ab\n"[..]), 0..300),
        new in proptest::collection::vec(prop::sample::select(&b"ab\n"[..]), 0..300),
    ) {
        let r = changed_span(&old, &new);
        prop_assert!(r.start <= r.end && r.end <= new.len());
        let tail = new.len() - r.end;
        prop_assert!(r.start + tail <= old.len());
        prop_assert_eq!(&new[..r.start], &old[..r.start]);
        prop_assert_eq!(&new[r.end..], &old[old.len() - tail..]);
        prop_assert!(r.start == 0 || new[r.start - 1] == b'\n');
        prop_assert!(r.end == new.len() || r.end == r.start || new[r.end - 1] == b'\n');
        // No whole line more could be left at the beginning.
        let next = new[r.start..].iter().position(|&b| b == b'\n').map(|i| r.start + i + 1);
        if let Some(n) = next.filter(|&n| n <= r.end) {
            prop_assert!(old.get(..n) != Some(&new[..n]));
        }
    }

    /// A new version of a file scanned only around what changed finds every
    /// match the whole scan finds that touches the change, and whatever else
    /// the whole scan finds is in the old version too.
    #[test]
    fn a_scan_of_the_change_misses_nothing_new(
        old in proptest::collection::vec((any::<prop::sample::Index>(), proptest::collection::vec(any::<u8>(), 0..8)), 1..24),
        edits in proptest::collection::vec((
            any::<prop::sample::Index>(),
            0usize..400,
            proptest::collection::vec((any::<prop::sample::Index>(), proptest::collection::vec(any::<u8>(), 0..8)), 0..4),
        ), 1..4),
    ) {
        let old = assemble(&old);
        let mut new = old.clone();
        for (at, cut, insert) in &edits {
            let at = at.index(new.len() + 1);
            new.splice(at..(at + cut).min(new.len()), assemble(insert));
        }
        let s = pack();
        let changed = changed_span(&old, &new);
        let whole = s.candidates(&new, &mut Scratch::default());
        let near = s.candidates_near(&new, Some(changed.clone()), &mut Scratch::default());
        let before: Vec<(RuleId, Vec<u8>)> = s
            .candidates(&old, &mut Scratch::default())
            .iter()
            .map(|c| (c.rule, c.secret(&old).to_vec()))
            .collect();
        for c in &whole {
            if c.end >= changed.start && c.start <= changed.end {
                prop_assert!(near.contains(c), "missed {c:?} touching {changed:?}");
            } else if !near.contains(c) {
                let key = (c.rule, c.secret(&new).to_vec());
                prop_assert!(before.contains(&key), "{c:?} neither near {changed:?} nor in the old version");
            }
        }
    }
}

const CHECKSUMMED: &str = r#"
[[rules]]
id = "gh"
name = "GitHub-like"
description = "d"
keywords = ["ghp_", "ghs_"]
regex = '''\b(gh[ps]_[A-Za-z0-9]{36,255})\b'''
severity = "high"
confidence = "high"
validator = "github-crc32"
"#;

#[test]
fn checksum_failures_are_dropped_and_doubtful_values_downgraded() {
    let s = scanner(set(CHECKSUMMED));
    let valid = b"x 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 y"; // leakhound:allow
    let broken = b"x ghp_R4nd0mV4lu3sAr3N0tPl4c3h0ld3rs05xoxY y";
    let long = b"x ghs_R4nd0mV4lu3sAr3N0tPl4c3h0ld3rsR4nd0mV4lu3s y";
    for (data, want) in [
        (&valid[..], Some(Confidence::High)),
        (&broken[..], None),
        (&long[..], Some(Confidence::Low)),
    ] {
        let fast = s.candidates(data, &mut Scratch::default());
        assert_eq!(fast, s.candidates_naive(data));
        assert_eq!(fast.first().map(|c| c.confidence), want, "{fast:?}");
    }
    // A doubtful value is hidden by --min-confidence medium.
    let strict = Scanner::new(
        set(CHECKSUMMED),
        EngineOptions {
            min_confidence: Confidence::Medium,
            ..EngineOptions::default()
        },
    );
    assert!(strict.candidates(long, &mut Scratch::default()).is_empty());
    assert!(strict.candidates_naive(long).is_empty());
    assert_eq!(strict.candidates(valid, &mut Scratch::default()).len(), 1);
}

/// A proximity window begins far before its keyword, often inside a token:
/// a 36-character run in the middle of a longer key near "NetHunt" is not a
/// NetHunt key, as a search over the whole input says (found by the
/// oracle above with two fragments side by side).
#[test]
fn proximity_windows_do_not_start_matches_inside_a_longer_token() {
    let data = b"STORMGLASS_API_KEY=26477b8d-7165-4cc0-aefd-ebfd86bc1ca1-010be0f6-2435-4f25-aea1-ee5be63a35b5Get the NetHunt key from settings.";
    let s = pack();
    assert_eq!(
        s.candidates(data, &mut Scratch::default()),
        s.candidates_naive(data)
    );
}

#[test]
fn changed_span_covers_the_lines_that_differ() {
    let file: String = (0..400)
        .map(|i| format!("line {i} of the file\n"))
        .collect();
    let edit = |from: &str, to: &str| file.replacen(from, to, 1);
    let at = |needle: &str, s: &str| s.find(needle).unwrap();
    // The whole line at `needle`, its line end included.
    let line = |needle: &str, s: &str| {
        let a = at(needle, s);
        a..a + s[a..].find('\n').unwrap() + 1
    };
    // One changed line: that whole line.
    let one = edit("line 7 of", "line 7 in");
    assert_eq!(
        changed_span(file.as_bytes(), one.as_bytes()),
        line("line 7 in", &one)
    );
    // Edits apart: from the first changed line to the last.
    let two = edit("line 3 of", "line 3 XX").replacen("line 390 of", "line 390 YY", 1);
    let (first, last) = (line("line 3 XX", &two), line("line 390 YY", &two));
    assert_eq!(
        changed_span(file.as_bytes(), two.as_bytes()),
        first.start..last.end
    );
    // A line removed: an empty span where it was.
    let gone = edit("line 9 of the file\n", "");
    let l10 = at("line 10 of", &gone);
    assert_eq!(changed_span(file.as_bytes(), gone.as_bytes()), l10..l10);
    // Lines inserted, and a file with no line end at all.
    let grown = edit("line 200 of the file\n", "line 200 of the file\nnew = 1\n");
    let n = at("new = 1", &grown);
    assert_eq!(changed_span(file.as_bytes(), grown.as_bytes()), n..n + 8);
    assert_eq!(changed_span(b"", b"abc"), 0..3);
    assert_eq!(changed_span(b"abc", b""), 0..0);
    assert_eq!(changed_span(b"key = 1", b"key = 2"), 0..7);
}

/// Inputs assembled from `fragments()` by `picks`.
fn assemble(picks: &[(prop::sample::Index, Vec<u8>)]) -> Vec<u8> {
    let frags = fragments();
    let mut data = Vec::new();
    for (i, noise) in picks {
        data.extend_from_slice(&frags[i.index(frags.len())]);
        data.extend(noise);
    }
    data
}
