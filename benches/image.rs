//! Image scan end to end against the file scan of the same bytes.
//!
//! A generated 64 MiB image (two gzip layers of 1024 source-like 32 KiB
//! files each, a fake token every 64 files) is written as an OCI layout
//! and also extracted to a directory. `image_oci_layout` scans the layout
//! (sha256 + gunzip + tar + engine, every core); `scan_extracted` scans the
//! directory. The gap is the cost of reading an image instead of files.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use leakhound::Notice;
use leakhound::pipeline::image::{ImageJob, ImageScanOptions, scan_images};
use leakhound::pipeline::{Counters, scan_paths};
use leakhound::rules::{RuleSet, embedded_specs};
use leakhound::source::fs::WalkOptions;
use leakhound::source::image::local::LocalStore;
use leakhound::source::image::{LayerStore, Platform};
use leakhound::{EngineOptions, Scanner};
use sha2::{Digest, Sha256};

/// 1024 under `cargo bench`, 64 in `cargo test`'s one-shot run (see `scaled`).
fn files_per_layer() -> usize {
    scaled(1024, 64)
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
const FILE: usize = 32 << 10;

fn sha(data: &[u8]) -> String {
    let d = Sha256::digest(data);
    format!(
        "sha256:{}",
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// Deterministic source-like text.
fn file_text(seed: u64, secret: bool) -> Vec<u8> {
    let words = [
        "let", "fn", "return", "self", "value", "config", "request", "user", "token", "password",
        "secret", "key", "client", "server", "parse", "0x1f", "=", "(", ")", ";",
    ];
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(FILE + 128);
    while out.len() < FILE {
        for _ in 0..10 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.extend_from_slice(words[(x % words.len() as u64) as usize].as_bytes());
            out.push(b' ');
        }
        out.push(b'\n');
    }
    if secret {
        out.extend_from_slice(
            format!(
                "GITHUB_TOKEN=ghp_{}{}\n",
                "NrcjnnG7CqYtZiX0wKPs", "1NHYNRr61b32COc2"
            )
            .as_bytes(),
        );
    }
    out
}

fn build(root: &Path) -> u64 {
    let layout = root.join("layout");
    let files = root.join("files");
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    let mut total = 0u64;
    let mut layers = Vec::new();
    for l in 0..2 {
        let mut tar = tar::Builder::new(Vec::new());
        for i in 0..files_per_layer() {
            let data = file_text((l * files_per_layer() + i) as u64 + 1, i % 64 == 0);
            let path = format!("app{l}/src/f{i}.rs");
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            tar.append_data(&mut h, &path, &data[..]).unwrap();
            let p = files.join(&path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, &data).unwrap();
            total += data.len() as u64;
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&tar.into_inner().unwrap()).unwrap();
        let gz = gz.finish().unwrap();
        layers.push(
            serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": sha(&gz), "size": gz.len()}),
        );
        std::fs::write(layout.join("blobs/sha256").join(&sha(&gz)[7..]), gz).unwrap();
    }
    let config = serde_json::to_vec(
        &serde_json::json!({"config": {}, "rootfs": {"type": "layers"},
        "history": [{"created_by": "COPY app0"}, {"created_by": "COPY app1"}]}),
    )
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(&config), "size": config.len()},
        "layers": layers}))
    .unwrap();
    let index = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(&manifest), "size": manifest.len()}]}))
    .unwrap();
    std::fs::write(
        layout.join("blobs/sha256").join(&sha(&config)[7..]),
        &config,
    )
    .unwrap();
    std::fs::write(
        layout.join("blobs/sha256").join(&sha(&manifest)[7..]),
        &manifest,
    )
    .unwrap();
    std::fs::write(layout.join("index.json"), index).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    total
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let total = build(dir.path());
    let scanner = Scanner::new(
        RuleSet::new(embedded_specs().unwrap(), false).unwrap(),
        EngineOptions::default(),
    );
    let store = Arc::new(LocalStore::open(&dir.path().join("layout"), true).unwrap());
    let images = store.images(&Platform::host(), false).unwrap();
    let store: Arc<dyn LayerStore> = store;
    let jobs: Vec<ImageJob> = images
        .into_iter()
        .map(|image| ImageJob {
            image,
            store: store.clone(),
        })
        .collect();
    let opts = ImageScanOptions {
        max_file_size: 100 << 20,
        parallel_layers: 4,
        ..ImageScanOptions::default()
    };
    let no_skip = |_: &Notice| {};
    let mut g = c.benchmark_group("image");
    g.throughput(Throughput::Bytes(total));
    g.sample_size(10);
    g.bench_function("image_oci_layout", |b| {
        b.iter(|| {
            let o = scan_images(
                &scanner,
                &jobs,
                Vec::new(),
                &opts,
                &no_skip,
                &Counters::default(),
            );
            assert_eq!(o.findings.len(), 2 * files_per_layer() / 64);
        })
    });
    let roots = vec![dir.path().join("files")];
    let walk = WalkOptions {
        no_ignore: true,
        max_file_size: 100 << 20,
    };
    g.bench_function("scan_extracted", |b| {
        b.iter(|| {
            let o = scan_paths(
                &scanner,
                &roots,
                &walk,
                &no_skip,
                &leakhound::pipeline::Counters::default(),
            );
            assert_eq!(o.findings.len(), 2 * files_per_layer() / 64);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
