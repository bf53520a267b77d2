//! The image run loop: every distinct layer (by digest, across all images)
//! is streamed once by a reader thread into a bounded hand-off that the
//! rayon workers drain; each image's config parts are scanned; then each
//! finding is attributed to every image and layer index that ships it,
//! with `removed_in_layer` from that image's later whiteouts.
//!
//! Memory is bounded by the run loop's `HANDOFF_BYTES` of files being read or waiting to
//! be scanned (a single larger file, at most `--max-file-size`, goes
//! alone), whatever the layer sizes and however many layers are read at
//! once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rayon::prelude::*;

use super::{Budget, Counters, Outcome, SkipList, contained, counted_scan, scan_or_open};
use crate::blob::{Blob, ImageMeta, Origin, image_identity};
use crate::engine::{Scanner, Scratch, fingerprint};
use crate::finding::Finding;
use crate::notice::{Notice, NoticeKind};
use crate::source::image::layer::{LayerItem, LayerRead, Whiteout, read_layer};
use crate::source::image::{Image, LayerStore};

/// An image to scan and the store its layers are read from.
pub struct ImageJob {
    pub image: Image,
    pub store: Arc<dyn LayerStore>,
}

/// How to scan images.
#[derive(Clone, Debug)]
pub struct ImageScanOptions {
    pub max_file_size: u64,
    /// Layers read (downloaded, decompressed) at the same time.
    pub parallel_layers: usize,
}

/// A layer to read once: the first image and index that list its digest.
struct Unique {
    job: usize,
    index: usize,
}

/// A file from a layer, waiting for a worker.
struct Work {
    unique: usize,
    path: String,
    data: Vec<u8>,
}

/// A finding in a layer before it is attributed to images (its raw secret,
/// kept in memory only, fingerprints it for each image).
struct LayerHit {
    unique: usize,
    finding: Finding,
}

/// Names a layer in messages: image, index and digest.
/// A layer shared by several images is read once; its messages name the
/// other images too, since a broken layer leaves each of them incomplete.
fn layer_label(jobs: &[ImageJob], image: &Image, index: usize) -> String {
    let digest = &image.layers[index].digest;
    let mut label = format!("{} layer {index} ({digest})", image.reference);
    let others: Vec<&str> = jobs
        .iter()
        .map(|j| &j.image)
        .filter(|i| i.reference != image.reference && i.layers.iter().any(|l| &l.digest == digest))
        .map(|i| i.reference.as_str())
        .collect();
    if !others.is_empty() {
        label.push_str(&format!(", also in {}", others.join(", ")));
    }
    label
}

/// Scans images: layers deduplicated by digest, config parts per image.
/// `problems` are images that could not be resolved (reported as errors).
pub fn scan_images(
    scanner: &Scanner,
    jobs: &[ImageJob],
    problems: Vec<Notice>,
    opts: &ImageScanOptions,
    on_skip: &(dyn Fn(&Notice) + Sync),
    counters: &Counters,
) -> Outcome {
    let start = Instant::now();
    let skipped = SkipList::new(on_skip);
    for p in problems {
        skipped.push(p);
    }
    let mut uniques: Vec<Unique> = Vec::new();
    let mut by_digest: HashMap<&str, usize> = HashMap::new();
    for (j, job) in jobs.iter().enumerate() {
        for (i, l) in job.image.layers.iter().enumerate() {
            by_digest.entry(&l.digest).or_insert_with(|| {
                uniques.push(Unique { job: j, index: i });
                uniques.len() - 1
            });
        }
    }
    let reads: Vec<Mutex<LayerRead>> = uniques.iter().map(|_| Mutex::default()).collect();
    let budget = Budget::new();
    let next = AtomicUsize::new(0);
    let (tx, rx) = sync_channel::<Work>(256);
    let hits: Vec<LayerHit> = std::thread::scope(|s| {
        for _ in 0..opts.parallel_layers.clamp(1, uniques.len().max(1)) {
            let tx = tx.clone();
            let (uniques, reads, budget, next, skipped) =
                (&uniques, &reads, &budget, &next, &skipped);
            s.spawn(move || {
                loop {
                    let u = next.fetch_add(1, Ordering::Relaxed);
                    let Some(unique) = uniques.get(u) else { break };
                    let job = &jobs[unique.job];
                    let layer = &job.image.layers[unique.index];
                    let label = layer_label(jobs, &job.image, unique.index);
                    let stored = match job.store.open(&job.image, layer) {
                        Ok(r) => r,
                        Err(e) => {
                            skipped.push(Notice {
                                path: label,
                                reason: e.to_string(),
                                kind: NoticeKind::Unreadable,
                            });
                            continue;
                        }
                    };
                    let mut emit = |item: LayerItem| match item {
                        LayerItem::Reserve(n) => budget.acquire(n),
                        LayerItem::Release(n) => budget.release(n),
                        LayerItem::File { path, data } => {
                            let n = data.len() as u64;
                            if tx
                                .send(Work {
                                    unique: u,
                                    path,
                                    data,
                                })
                                .is_err()
                            {
                                budget.release(n);
                            }
                        }
                        LayerItem::Note { path, reason, kind } => skipped.push(Notice {
                            path: format!("{label}: {path}"),
                            reason,
                            kind,
                        }),
                    };
                    let read = read_layer(stored, &layer.digest, opts.max_file_size, &mut emit);
                    for e in &read.errors {
                        skipped.push(Notice {
                            path: label.clone(),
                            reason: e.clone(),
                            kind: NoticeKind::Unreadable,
                        });
                    }
                    *reads[u].lock().expect("layer read lock") = read;
                }
            });
        }
        drop(tx);
        rx.into_iter()
            .par_bridge()
            .map_init(Scratch::default, |scratch, w| {
                let n = w.data.len() as u64;
                let job = &jobs[uniques[w.unique].job];
                let blob = Blob::new(
                    Origin::Image {
                        repository: job.image.repository.as_str().into(),
                        path: w.path,
                        image: Arc::default(),
                    },
                    w.data,
                );
                let out: Vec<LayerHit> = contained(
                    || {
                        let Origin::Image { path, .. } = &blob.origin else {
                            return blob.origin.to_string();
                        };
                        format!(
                            "{}: {path}",
                            layer_label(jobs, &job.image, uniques[w.unique].index)
                        )
                    },
                    scratch,
                    &skipped,
                    |scratch| {
                        // Archives in layers are opened like files on disk.
                        let limits = crate::decode::archive::ArchiveLimits {
                            max_entry: opts.max_file_size,
                            ..Default::default()
                        };
                        let (found, _) = scan_or_open(
                            scanner,
                            &blob.origin,
                            &blob.data,
                            Some(limits),
                            scratch,
                            counters,
                            &skipped,
                        );
                        found
                            .into_iter()
                            .map(|finding| LayerHit {
                                unique: w.unique,
                                finding,
                            })
                            .collect()
                    },
                );
                drop(blob);
                budget.release(n);
                out
            })
            .flatten()
            .collect()
    });
    let reads: Vec<LayerRead> = reads
        .into_iter()
        .map(|m| m.into_inner().expect("layer read lock"))
        .collect();
    let mut per_unique: Vec<Vec<&LayerHit>> = uniques.iter().map(|_| Vec::new()).collect();
    for h in &hits {
        per_unique[h.unique].push(h);
    }

    let mut findings = Vec::new();
    let mut scratch = Scratch::default();
    for job in jobs {
        let img = &job.image;
        let repository: Arc<str> = img.repository.as_str().into();
        let config_meta = Arc::new(ImageMeta {
            reference: img.reference.clone(),
            digest: img.digest.clone(),
            ..ImageMeta::default()
        });
        for part in img.config.parts() {
            let blob = Blob::new(
                Origin::Image {
                    repository: repository.clone(),
                    path: part.path,
                    image: config_meta.clone(),
                },
                part.data,
            );
            findings.extend(
                counted_scan(
                    scanner,
                    &blob.origin,
                    &blob.data,
                    &mut scratch,
                    counters,
                    &skipped,
                )
                .findings,
            );
        }
        let whiteouts: Vec<&[Whiteout]> = img
            .layers
            .iter()
            .map(|l| reads[by_digest[l.digest.as_str()]].whiteouts.as_slice())
            .collect();
        for (i, layer) in img.layers.iter().enumerate() {
            let u = by_digest[layer.digest.as_str()];
            // The step quotes build args: never show their secrets.
            let created_by = img.config.created_by(i).map(|c| scanner.masked_text(c));
            for hit in &per_unique[u] {
                let mut f = hit.finding.clone();
                let path = f.path.clone().unwrap_or_default();
                let removed = (i + 1..img.layers.len())
                    .find(|&j| whiteouts[j].iter().any(|w| w.hides(&path)));
                f.fingerprint = fingerprint(
                    &f.rule_id,
                    &hit.finding.raw_secret,
                    &image_identity(&img.repository, &path),
                );
                f.image = Some(ImageMeta {
                    reference: img.reference.clone(),
                    digest: img.digest.clone(),
                    layer_index: Some(i),
                    layer_digest: Some(layer.digest.clone()),
                    created_by: created_by.clone(),
                    removed_in_layer: removed,
                });
                findings.push(f);
            }
        }
    }
    let mut outcome = Outcome::finish(findings, counters, skipped, start);
    outcome.layers = uniques.len() as u64;
    outcome.images = jobs.len() as u64;
    outcome
}
