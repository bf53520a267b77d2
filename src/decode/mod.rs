//! Decoders look inside bytes and hand back derived views whose positions
//! map back to the original, so findings point at the original line.
//!
//! `expand` is the one entry point for files and Git blobs: it runs the
//! Kubernetes decoder (Secrets, Helm releases, last-applied annotations)
//! and the generic decoders (base64, hex, percent, escapes, gzip/zlib inside
//! them) recursively, up to a depth limit and a per-blob budget of decoded
//! bytes, and only where a cheap trigger says a decoder can apply.

pub mod archive;
pub mod encodings;
pub mod escapes;
pub mod helm;
pub mod kubernetes;
mod lenient;
mod map;
mod runs;
pub mod yaml;

use std::sync::Arc;

use crate::blob::KubernetesRef;
pub use map::{Map, Piece};

/// A decoded view of some bytes, with the way back to the input's offsets.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// Name of the decoding step, as reported in a finding's `decoded`.
    pub step: &'static str,
    pub data: Vec<u8>,
    pub map: Map,
}

impl Decoded {
    /// `map[i]` is the input offset where decoded byte `i` starts;
    /// `map[data.len()]` is the input end.
    pub fn new(step: &'static str, data: Vec<u8>, map: Vec<usize>) -> Self {
        debug_assert_eq!(map.len(), data.len() + 1);
        Decoded {
            step,
            data,
            map: Map::offsets(map),
        }
    }

    /// A view every byte of which comes from input bytes `start..end` as a
    /// whole (decompressed data has no finer map).
    pub fn spanning(step: &'static str, data: Vec<u8>, start: usize, end: usize) -> Self {
        Decoded {
            step,
            data,
            map: Map::Pieces(vec![Piece { at: 0, start, end }]),
        }
    }

    /// The input byte span covering decoded bytes `start..end`.
    pub fn original_span(&self, start: usize, end: usize) -> (usize, usize) {
        self.map.span(start, end)
    }
}

/// The most decoding steps followed (`--decode-depth` is refused above it).
pub const MAX_DEPTH: usize = 32;

/// How far decoding may go for one blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Decoding steps from the raw bytes to a view (0: no decoding).
    pub max_depth: usize,
    /// Decoded bytes produced for one blob, all views together: bounds the
    /// time and memory a blob of nested encodings (or a gzip bomb) costs.
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 3,
            max_bytes: 8 << 20,
        }
    }
}

/// Decoded bytes left for a blob; decoders take from it before they grow
/// their output.
#[derive(Debug)]
pub struct Budget {
    left: usize,
    exhausted: bool,
}

impl Budget {
    pub fn new(bytes: usize) -> Self {
        Budget {
            left: bytes,
            exhausted: false,
        }
    }

    /// Takes `n` bytes; false (and remembered) when there are not enough.
    pub fn take(&mut self, n: usize) -> bool {
        if n > self.left {
            self.exhausted = true;
            return false;
        }
        self.left -= n;
        true
    }

    pub fn left(&self) -> usize {
        self.left
    }

    pub fn exhausted(&self) -> bool {
        self.exhausted
    }
}

/// One part of a view that came from one place with one provenance: a
/// Kubernetes Secret key's `KEY: VALUE` line, for instance.
#[derive(Clone, Debug)]
pub struct Segment {
    /// View range of the segment.
    pub at: usize,
    pub end: usize,
    /// Steps that produced this segment, outermost first (after the view's).
    pub steps: Vec<&'static str>,
    pub kubernetes: Option<Arc<KubernetesRef>>,
    /// For a Secret's key, the text the `kubernetes-secret` rules run on
    /// (`kubernetes-secret:KEY=VALUE`).
    pub secret_entry: Option<Vec<u8>>,
}

/// Bytes derived from a blob, with the map back to the blob's offsets.
#[derive(Clone, Debug)]
pub struct View {
    /// Steps from the blob's bytes to this view, outermost first.
    pub steps: Vec<&'static str>,
    pub data: Vec<u8>,
    /// View offsets to blob offsets.
    pub map: Map,
    /// Provenance of parts of the view; empty for generic decodes.
    pub segments: Vec<Segment>,
    /// Blob spans whose secrets are reported elsewhere in this view: a
    /// last-applied copy of the value the object itself holds. Nothing
    /// found inside them (raw or decoded) is reported again.
    pub repeats: Vec<(usize, usize)>,
}

impl View {
    /// The segment holding view offset `at`.
    pub fn segment_at(&self, at: usize) -> Option<&Segment> {
        let i = self.segments.partition_point(|s| s.at <= at);
        self.segments[..i]
            .last()
            .filter(|s| at < s.end.max(s.at + 1))
    }
}

/// Largest blob the decoders look at: view maps hold `u32` offsets.
const MAX_DECODABLE: usize = u32::MAX as usize - 1;

/// Every view of `data` worth scanning, Kubernetes views first (so their
/// richer provenance wins over a generic decode of the same bytes).
/// `notes` receives what could not be decoded and why.
pub fn expand(data: &[u8], limits: &Limits, notes: &mut Vec<String>) -> Vec<View> {
    let mut out = Vec::new();
    if limits.max_depth == 0 || data.len() > MAX_DECODABLE {
        return out;
    }
    // Decoding recurses once per step: the depth is capped whatever the
    // caller asks, so no input can exhaust a worker thread's stack.
    let capped = Limits {
        max_depth: limits.max_depth.min(MAX_DEPTH),
        ..*limits
    };
    let limits = &capped;
    let mut budget = Budget::new(limits.max_bytes);
    if let Some(v) = kubernetes::view(data, limits, &mut budget, notes) {
        out.push(v);
    }
    generic(data, None, &[], 1, limits, &mut budget, notes, &mut out);
    if budget.exhausted() {
        notes.push(format!(
            "decoded content exceeds the budget of {} bytes per file; the rest of its encoded \
             content was not decoded (the raw bytes were scanned)",
            limits.max_bytes
        ));
    }
    out
}

/// Runs the generic decoders over `data` (a view whose map to the blob is
/// `parent`, `None` for the blob itself) and recurses into their output.
#[allow(clippy::too_many_arguments)]
fn generic(
    data: &[u8],
    parent: Option<&Map>,
    steps: &[&'static str],
    depth: usize,
    limits: &Limits,
    budget: &mut Budget,
    notes: &mut Vec<String>,
    out: &mut Vec<View>,
) {
    for d in encodings::decode(data, budget, notes) {
        let map = match parent {
            None => d.map,
            Some(p) => p.compose(&d.map),
        };
        let mut steps = steps.to_vec();
        steps.push(d.step);
        if depth < limits.max_depth {
            generic(
                &d.data,
                Some(&map),
                &steps,
                depth + 1,
                limits,
                budget,
                notes,
                out,
            );
        } else if encodings::looks_encoded(&d.data) {
            notes.push(format!(
                "encoded content nested deeper than {} levels ({}, ...) was not decoded further",
                limits.max_depth,
                steps.join(" > ")
            ));
        }
        if encodings::is_mostly_text(&d.data) {
            out.push(View {
                steps,
                data: d.data,
                map,
                segments: Vec::new(),
                repeats: Vec::new(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn nested_views_map_back_to_the_outer_encoding_with_steps_outermost_first() {
        let secret = "password=Zq8vT2mLw9pK"; // leakhound:allow
        let twice = b64(b64(secret.as_bytes()).as_bytes());
        let raw = format!("first line\nblob: {twice}\n");
        let mut notes = Vec::new();
        let views = expand(raw.as_bytes(), &Limits::default(), &mut notes);
        let v = views
            .iter()
            .find(|v| v.steps == ["base64", "base64"])
            .expect("two steps deep");
        let at = v
            .data
            .windows(secret.len())
            .position(|w| w == secret.as_bytes());
        let at = at.unwrap();
        let (s, e) = v.map.span(at, at + secret.len());
        let run = raw.find(&twice).unwrap();
        assert!(
            s >= run && e <= run + twice.len(),
            "{s}..{e} outside the run"
        );
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn depth_and_budget_limits_are_notes() {
        let mut deep = "password=Zq8vT2mLw9pK".to_string();
        for _ in 0..4 {
            deep = b64(deep.as_bytes());
        }
        let mut notes = Vec::new();
        expand(deep.as_bytes(), &Limits::default(), &mut notes);
        assert!(
            notes.iter().any(|n| n.contains("nested deeper than 3")),
            "{notes:?}"
        );

        let many: String = (0..200)
            .map(|i| {
                format!(
                    "k{i}: {}\n",
                    b64(format!("value number {i:04} here").as_bytes())
                )
            })
            .collect();
        let mut notes = Vec::new();
        let limits = Limits {
            max_depth: 3,
            max_bytes: 1000,
        };
        let views = expand(many.as_bytes(), &limits, &mut notes);
        let decoded: usize = views.iter().map(|v| v.data.len()).sum();
        assert!(decoded <= 1000 + 200, "{decoded} bytes decoded");
        assert!(notes.iter().any(|n| n.contains("budget")), "{notes:?}");
    }

    #[test]
    fn depth_zero_decodes_nothing() {
        let raw = b64(b"password=Zq8vT2mLw9pK");
        let limits = Limits {
            max_depth: 0,
            ..Limits::default()
        };
        assert!(expand(raw.as_bytes(), &limits, &mut Vec::new()).is_empty());
    }
}
