//! Images as a source: every distinct layer (by digest, across all images)
//! is streamed once by one of `parallel_layers` reader threads, its files
//! handed to the run loop as units (archives in them are opened there like
//! files on disk); each image's config parts are units too. `finish`
//! attributes each layer finding to every image and layer index that
//! ships the layer, with `removed_in_layer` from that image's later
//! whiteouts.
//!
//! Memory is bounded by the run loop's hand-off budget of files being read
//! or waiting to be scanned (a single larger file, at most the maximum file
//! size, goes alone), whatever the layer sizes and however many layers are
//! read at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::layer::{LayerItem, LayerRead, Whiteout, read_layer};
use super::{Image, LayerStore};
use crate::blob::{ImageMeta, Origin, image_identity};
use crate::decode::archive::ArchiveLimits;
use crate::engine::{Scanner, fingerprint};
use crate::finding::Finding;
use crate::notice::{Notice, NoticeKind};
use crate::source::{Emit, Found, Source, Unit};

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

/// What a unit of an image is.
#[derive(Debug)]
pub enum ImageTag {
    /// A file of distinct layer `unique`.
    Layer { unique: usize },
    /// A part of image `job`'s config.
    Config,
}

/// Images and the stores their layers come from.
pub struct ImageSource<'a> {
    jobs: &'a [ImageJob],
    problems: Mutex<Vec<Notice>>,
    opts: ImageScanOptions,
    uniques: Vec<Unique>,
    by_digest: HashMap<&'a str, usize>,
    reads: Vec<Mutex<LayerRead>>,
}

impl<'a> ImageSource<'a> {
    /// `problems` are images that could not be resolved (reported as errors).
    pub fn new(jobs: &'a [ImageJob], problems: Vec<Notice>, opts: ImageScanOptions) -> Self {
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
        let reads = uniques.iter().map(|_| Mutex::default()).collect();
        ImageSource {
            jobs,
            problems: Mutex::new(problems),
            opts,
            uniques,
            by_digest,
            reads,
        }
    }

    /// Distinct layers (by digest) read.
    pub fn layers(&self) -> usize {
        self.uniques.len()
    }

    /// Names a layer in messages: image, index and digest. A layer shared
    /// by several images is read once; its messages name the other images
    /// too, since a broken layer leaves each of them incomplete.
    fn layer_label(&self, image: &Image, index: usize) -> String {
        let digest = &image.layers[index].digest;
        let mut label = format!("{} layer {index} ({digest})", image.reference);
        let others: Vec<&str> = self
            .jobs
            .iter()
            .map(|j| &j.image)
            .filter(|i| {
                i.reference != image.reference && i.layers.iter().any(|l| &l.digest == digest)
            })
            .map(|i| i.reference.as_str())
            .collect();
        if !others.is_empty() {
            label.push_str(&format!(", also in {}", others.join(", ")));
        }
        label
    }

    /// Reads distinct layer `u`, handing its files to `out`.
    fn read(&self, u: usize, out: &dyn Emit<ImageTag>) {
        let unique = &self.uniques[u];
        let job = &self.jobs[unique.job];
        let layer = &job.image.layers[unique.index];
        let label = self.layer_label(&job.image, unique.index);
        let stored = match job.store.open(&job.image, layer) {
            Ok(r) => r,
            Err(e) => {
                out.notice(Notice::new(NoticeKind::Unreadable, label, e.to_string()));
                return;
            }
        };
        let repository: Arc<str> = job.image.repository.as_str().into();
        let mut emit = |item: LayerItem| match item {
            LayerItem::Reserve(n) => out.reserve(n),
            LayerItem::Release(n) => out.release(n),
            LayerItem::File { path, data } => out.unit(Unit {
                origin: Origin::Image {
                    repository: repository.clone(),
                    path,
                    image: Arc::default(),
                },
                data,
                tag: ImageTag::Layer { unique: u },
            }),
            LayerItem::Note { path, reason, kind } => {
                out.notice(Notice::new(kind, format!("{label}: {path}"), reason))
            }
        };
        let read = read_layer(stored, &layer.digest, self.opts.max_file_size, &mut emit);
        for e in &read.errors {
            out.notice(Notice::new(
                NoticeKind::Unreadable,
                label.clone(),
                e.clone(),
            ));
        }
        *self.reads[u].lock().expect("layer read lock") = read;
    }
}

impl Source for ImageSource<'_> {
    type Tag = ImageTag;
    type Worker = ();

    fn worker(&self) {}

    fn units(&self, out: &dyn Emit<ImageTag>) {
        for p in std::mem::take(&mut *self.problems.lock().expect("problems lock")) {
            out.notice(p);
        }
        let next = AtomicUsize::new(0);
        std::thread::scope(|s| {
            let readers = self
                .opts
                .parallel_layers
                .clamp(1, self.uniques.len().max(1));
            for _ in 0..readers {
                s.spawn(|| {
                    loop {
                        let u = next.fetch_add(1, Ordering::Relaxed);
                        if u >= self.uniques.len() {
                            break;
                        }
                        self.read(u, out);
                    }
                });
            }
        });
        for job in self.jobs {
            let img = &job.image;
            let repository: Arc<str> = img.repository.as_str().into();
            let config_meta = Arc::new(ImageMeta {
                reference: img.reference.clone(),
                digest: img.digest.clone(),
                ..ImageMeta::default()
            });
            for part in img.config.parts() {
                out.reserve(part.data.len() as u64);
                out.unit(Unit {
                    origin: Origin::ImageConfig {
                        repository: repository.clone(),
                        field: part.field,
                        image: config_meta.clone(),
                    },
                    data: part.data,
                    tag: ImageTag::Config,
                });
            }
        }
    }

    fn archives(&self, unit: &Unit<ImageTag>) -> Option<ArchiveLimits> {
        // Archives in layers are opened like files on disk.
        match unit.tag {
            ImageTag::Layer { .. } => Some(ArchiveLimits {
                max_entry: self.opts.max_file_size,
                ..Default::default()
            }),
            ImageTag::Config => None,
        }
    }

    fn describe(&self, unit: &Unit<ImageTag>) -> String {
        match (&unit.tag, &unit.origin) {
            (ImageTag::Layer { unique }, Origin::Image { path, .. }) => {
                let u = &self.uniques[*unique];
                let label = self.layer_label(&self.jobs[u.job].image, u.index);
                format!("{label}: {path}")
            }
            _ => unit.origin.to_string(),
        }
    }

    fn unit_name(&self, unit: &Unit<ImageTag>) -> String {
        match (&unit.tag, unit.origin.display_path()) {
            (ImageTag::Layer { unique }, Some(path)) => {
                let u = &self.uniques[*unique];
                let digest = &self.jobs[u.job].image.layers[u.index].digest;
                format!("{digest}:{path}")
            }
            _ => unit.origin.identity(),
        }
    }

    fn finish(
        &self,
        found: Vec<Found<ImageTag>>,
        scanner: &Scanner,
        _: &mut dyn FnMut(&Origin, &[u8]) -> Vec<Finding>,
    ) -> Vec<Finding> {
        let reads: Vec<std::sync::MutexGuard<'_, LayerRead>> = self
            .reads
            .iter()
            .map(|m| m.lock().expect("layer read lock"))
            .collect();
        let mut findings = Vec::new();
        let mut per_unique: Vec<Vec<&Finding>> = self.uniques.iter().map(|_| Vec::new()).collect();
        for f in &found {
            match f.tag {
                ImageTag::Layer { unique } => per_unique[unique].extend(&f.findings),
                ImageTag::Config => findings.extend(f.findings.iter().cloned()),
            }
        }
        for job in self.jobs {
            let img = &job.image;
            let whiteouts: Vec<&[Whiteout]> = img
                .layers
                .iter()
                .map(|l| {
                    reads[self.by_digest[l.digest.as_str()]]
                        .whiteouts
                        .as_slice()
                })
                .collect();
            for (i, layer) in img.layers.iter().enumerate() {
                let u = self.by_digest[layer.digest.as_str()];
                // The step quotes build args: never show their secrets.
                let created_by = img.config.created_by(i).map(|c| scanner.masked_text(c));
                for hit in &per_unique[u] {
                    let mut f = (*hit).clone();
                    let path = f.path.clone().unwrap_or_default();
                    let removed = (i + 1..img.layers.len())
                        .find(|&j| whiteouts[j].iter().any(|w| w.hides(&path)));
                    f.fingerprint = fingerprint(
                        &f.rule_id,
                        &f.raw_secret,
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
        findings
    }
}
