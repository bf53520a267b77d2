//! What each fuzz target feeds its input to. The targets in `fuzz_targets/`
//! call these, and `tests/fuzz_corpus.rs` (stable Rust, `cargo test`) replays
//! every file of `fuzz/corpus/*` and `fuzz/regressions/*` through them, so a
//! crash found once stays fixed. Only leakhound's public library API is used.

use std::io::Cursor;
use std::path::Path;

use leakhound::decode::archive::{self, ArchiveLimits, Visitor};
use leakhound::decode::{Budget, Limits, encodings, escapes, kubernetes, yaml};
use leakhound::source::image::layer;
use leakhound::source::image::manifest::{self, ImageConfig};
use leakhound::source::image::registry;
use leakhound::source::stream::StreamReader;

/// Target names, as in `fuzz_targets/` and `fuzz/corpus/`.
pub const TARGETS: &[&str] = &[
    "yaml",
    "kubernetes",
    "encodings",
    "archive",
    "layer",
    "oci",
    "docker_config",
    "rules",
    "config",
    "gitleaks",
    "log_lines",
];

/// Runs `target` on `data`; false for an unknown target name.
pub fn run(target: &str, data: &[u8]) -> bool {
    match target {
        "yaml" => yaml_parse(data),
        "kubernetes" => kubernetes_view(data),
        "encodings" => encodings_decode(data),
        "archive" => archive_walk(data),
        "layer" => layer_read(data),
        "oci" => oci_parse(data),
        "docker_config" => docker_config(data),
        "rules" => rules(data),
        "config" => config(data),
        "gitleaks" => gitleaks(data),
        "log_lines" => log_lines(data),
        _ => return false,
    }
    true
}

/// The YAML reader the Kubernetes decoder walks.
pub fn yaml_parse(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let (docs, _err) = yaml::parse(text);
        for d in &docs {
            let _ = d.str_at(&["metadata", "name"]);
            let _ = d.keyed_entries();
        }
    }
}

/// Kubernetes Secrets, Helm releases, last-applied annotations.
pub fn kubernetes_view(data: &[u8]) {
    let limits = Limits::default();
    let mut budget = Budget::new(limits.max_bytes);
    let mut notes = Vec::new();
    if let Some(v) = kubernetes::view(data, &limits, &mut budget, &mut notes) {
        check_view(&v, data.len());
    }
}

/// base64, hex, percent, escapes, compressed payloads; and the whole
/// decoding pass (`decode::expand`) with its default limits.
pub fn encodings_decode(data: &[u8]) {
    let mut notes = Vec::new();
    let mut budget = Budget::new(1 << 20);
    for d in encodings::decode(data, &mut budget, &mut notes) {
        let _ = d.original_span(0, d.data.len());
    }
    let _ = encodings::base64_decode(data);
    if let Some(d) = escapes::unescape(data) {
        let _ = d.original_span(0, d.data.len());
    }
    if let Some(d) = escapes::unescape_structured(data) {
        let _ = d.original_span(0, d.data.len());
    }
    let limits = Limits {
        max_depth: 3,
        max_bytes: 4 << 20,
    };
    for v in leakhound::decode::expand(data, &limits, &mut notes) {
        check_view(&v, data.len());
    }
}

fn check_view(v: &leakhound::decode::View, blob_len: usize) {
    let (s, e) = v.map.span(0, v.data.len());
    assert!(s <= e && e <= blob_len, "view maps outside the blob");
    let _ = v.segment_at(v.data.len() / 2);
}

struct Sink;

impl Visitor for Sink {
    fn entry(&mut self, _entry: Option<&str>, _data: Vec<u8>) {}
    fn notice(&mut self, _notice: leakhound::Notice) {}
}

/// zip, tar, gzip, bzip2, zstd, nested; from memory and from a reader.
pub fn archive_walk(data: &[u8]) {
    if archive::kind(data).is_none() {
        return;
    }
    // Entries over 4 KiB go the streamed way, so both are fuzzed.
    let limits = ArchiveLimits {
        max_entry: 16 << 20,
        max_total: 64 << 20,
        stream_above: 4 << 10,
        ..ArchiveLimits::default()
    };
    archive::walk("fuzz", data, &limits, &mut Sink);
    archive::walk_reader("fuzz", &mut &data[..], &limits, &mut Sink);
}

/// An image layer (tar, gzip or zstd) with its digest check.
pub fn layer_read(data: &[u8]) {
    let r = layer::read_layer(
        Box::new(Cursor::new(data.to_vec())),
        "sha256:0000000000000000000000000000000000000000000000000000000000000000",
        16 << 20,
        &mut |_item| {},
    );
    assert_eq!(r.stored_bytes, data.len() as u64);
}

/// OCI/Docker manifests, indexes and image configs.
pub fn oci_parse(data: &[u8]) {
    for declared in [
        None,
        Some("application/vnd.oci.image.index.v1+json"),
        Some("application/vnd.docker.distribution.manifest.v2+json"),
    ] {
        if let Ok(m) = manifest::parse_manifest("fuzz", declared, data) {
            let _ = format!("{m:?}");
        }
    }
    if let Ok(c) = ImageConfig::parse("fuzz", data) {
        let _ = c.parts();
        let _ = c.created_by(0);
    }
}

/// A docker `config.json`, looked up for a few host spellings.
pub fn docker_config(data: &[u8]) {
    for host in ["registry.example", "docker.io", "index.docker.io"] {
        let _ = registry::docker_config_lookup("config.json", data, host);
    }
}

/// A rule file, compiled as user rules are.
pub fn rules(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(specs) = leakhound::rules::parse_rule_file("rules.toml", text) {
        let named = specs.into_iter().map(|s| ("rules.toml".to_string(), s));
        let _ = leakhound::RuleSet::new(named.collect(), true);
    }
}

/// `.leakhound.toml`.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = leakhound::config::parse(Path::new(".leakhound.toml"), text) {
        let _ = c.max_file_size();
    }
    let _ = leakhound::config::parse_size(text);
}

/// A gitleaks config, imported and compiled.
pub fn gitleaks(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(imported) = leakhound::rules::gitleaks::import("gitleaks.toml", text) {
        let _ = leakhound::RuleSet::new(imported.rules, true);
    }
}

/// The `logs` line windowing: small windows so long lines get cut.
pub fn log_lines(data: &[u8]) {
    let mut r = StreamReader::new(Box::new(Cursor::new(data.to_vec())), 4096, 512);
    let mut emitted = 0usize;
    while let Ok(Some(w)) = r.next_window() {
        assert!(w.emit <= w.len && w.len <= r.data().len());
        assert!(w.emit > 0, "a window that emits nothing never ends");
        emitted += w.emit;
        r.consume(w.emit);
    }
    assert_eq!(emitted, data.len());
}
