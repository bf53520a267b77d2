//! Images as a source: every distinct layer (by digest, across all images)
//! is streamed once by one of `parallel_layers` reader threads, its files
//! handed to the run loop as units (archives in them are opened there like
//! files on disk); each image's config parts are units too. `finish`
//! attributes each layer finding to every image and layer index that
//! ships the layer, with `removed_in_layer` from that image's later
//! whiteouts.
//!
//! Memory is bounded by the run loop's hand-off budget of files being read
//! or waiting to be scanned (a single file up to `pipeline::big::
//! STREAM_ABOVE` larger than the budget goes alone; a larger one comes
//! through a pipe and is scanned in windows), whatever the file and layer
//! sizes and however many layers are read at once.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::cache::{Cache, CachedFinding, Entry, Kind};

use super::layer::{LayerItem, LayerRead, Piped, Whiteout, read_layer};
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
#[derive(Clone, Debug, Default)]
pub struct ImageScanOptions {
    pub max_file_size: u64,
    /// Layers read (downloaded, decompressed) at the same time.
    pub parallel_layers: usize,
    /// Results of layers and configs scanned before (`--cache`): those
    /// are not read again.
    pub cache: Option<Arc<Cache>>,
    /// Report only findings of layers and configs not in the cache.
    pub new_only: bool,
}

/// What the cache saved and recorded in one scan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Distinct layers whose results came from the cache (not read).
    pub layer_hits: u64,
    /// Images whose config results came from the cache.
    pub config_hits: u64,
    /// Entries written (layers and configs read completely).
    pub written: u64,
    /// Entries that could not be written.
    pub write_errors: u64,
}

thread_local! {
    /// The unit a run-loop worker is scanning (set by `load`): the source
    /// (its address) and the unit's tag, so a notice raised while scanning
    /// it (a decoding limit, a contained panic) keeps its layer or config
    /// out of the cache.
    static CURRENT: Cell<Option<(usize, Current)>> = const { Cell::new(None) };
}

#[derive(Clone, Copy, Debug)]
enum Current {
    Layer(usize),
    Config(usize),
}

/// A layer to read once: the first image and index that list its digest.
struct Unique {
    job: usize,
    index: usize,
}

/// What a unit of an image is.
#[derive(Debug)]
pub enum ImageTag {
    /// A file of distinct layer `unique`; `piped`: a large one, whose
    /// bytes come through a pipe from the layer's reader (taken by
    /// `stream`), to be scanned in windows.
    Layer { unique: usize, piped: Option<Piped> },
    /// A part of image `job`'s config.
    Config { job: usize },
}

/// Images and the stores their layers come from.
pub struct ImageSource<'a> {
    jobs: &'a [ImageJob],
    problems: Mutex<Vec<Notice>>,
    opts: ImageScanOptions,
    uniques: Vec<Unique>,
    by_digest: HashMap<&'a str, usize>,
    reads: Vec<Mutex<LayerRead>>,
    /// Per distinct layer: its cache entry when one was found.
    cached: Vec<Mutex<Option<Entry>>>,
    /// Per job: findings of its config from the cache.
    cached_configs: Vec<Option<Vec<Finding>>>,
    /// Per distinct layer and per job's config: something was not scanned
    /// (so nothing is recorded in the cache).
    tainted_layers: Vec<AtomicBool>,
    tainted_configs: Vec<AtomicBool>,
    /// A notice no layer or config could be told from: nothing is recorded.
    tainted_all: AtomicBool,
    /// Entries to record once the scan is known to be complete.
    pending: Mutex<Vec<(Kind, Entry)>>,
    stats: Mutex<CacheStats>,
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
        let mut stats = CacheStats::default();
        // Each config entry is read once, however many images share it.
        let mut configs: HashMap<&str, Option<Vec<Finding>>> = HashMap::new();
        let cached_configs: Vec<Option<Vec<Finding>>> = jobs
            .iter()
            .map(|j| {
                let c = opts.cache.as_ref()?;
                let found = configs
                    .entry(j.image.config_digest.as_str())
                    .or_insert_with(|| {
                        c.get(Kind::Config, &j.image.config_digest)?
                            .findings
                            .into_iter()
                            .map(CachedFinding::into_finding)
                            .collect()
                    })
                    .clone();
                stats.config_hits += u64::from(found.is_some());
                found
            })
            .collect();
        ImageSource {
            jobs,
            problems: Mutex::new(problems),
            cached: uniques.iter().map(|_| Mutex::default()).collect(),
            tainted_layers: uniques.iter().map(|_| AtomicBool::default()).collect(),
            tainted_configs: jobs.iter().map(|_| AtomicBool::default()).collect(),
            cached_configs,
            tainted_all: AtomicBool::default(),
            pending: Mutex::default(),
            stats: Mutex::new(stats),
            opts,
            uniques,
            by_digest,
            reads,
        }
    }

    /// Distinct layers (by digest) read (not taken from the cache).
    pub fn layers(&self) -> usize {
        self.uniques.len() - self.stats().layer_hits as usize
    }

    /// What the cache saved and recorded.
    pub fn stats(&self) -> CacheStats {
        *self.stats.lock().expect("cache stats lock")
    }

    /// The run loop's notice hook: a notice raised while a worker scanned
    /// a unit of this source keeps that unit's layer or config out of the
    /// cache.
    pub fn saw(&self, n: &Notice) {
        if self.opts.cache.is_none() || n.kind.is_routine() {
            return;
        }
        match CURRENT.get() {
            Some((id, Current::Layer(u))) if id == self.id() => {
                self.tainted_layers[u].store(true, Ordering::Relaxed)
            }
            Some((id, Current::Config(j))) if id == self.id() => {
                self.tainted_configs[j].store(true, Ordering::Relaxed)
            }
            // A worker's notice that names no unit of ours (none is
            // expected) keeps everything out. Reader threads taint their
            // layer themselves; images not resolved hold no cached part.
            _ if rayon::current_thread_index().is_some() => {
                self.tainted_all.store(true, Ordering::Relaxed)
            }
            _ => {}
        }
    }

    fn id(&self) -> usize {
        self as *const Self as usize
    }

    /// Notes the unit this worker scans (see `CURRENT`).
    fn current(&self, unit: &Unit<ImageTag>) {
        let current = match unit.tag {
            ImageTag::Layer { unique, .. } => Current::Layer(unique),
            ImageTag::Config { job } => Current::Config(job),
        };
        CURRENT.set(Some((self.id(), current)));
    }

    /// Records what was read completely in the cache (after the scan,
    /// when every notice is known).
    pub fn record(&self) {
        let Some(c) = &self.opts.cache else { return };
        let pending = std::mem::take(&mut *self.pending.lock().expect("pending lock"));
        if self.tainted_all.load(Ordering::Relaxed) {
            return;
        }
        let mut stats = self.stats.lock().expect("cache stats lock");
        for (kind, entry) in pending {
            match c.put(kind, &entry) {
                Ok(()) => stats.written += 1,
                Err(n) => {
                    tracing::warn!("{}: {}", n.path, n.reason);
                    stats.write_errors += 1;
                }
            }
        }
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
        if let Some(e) = self
            .opts
            .cache
            .as_ref()
            .and_then(|c| c.get(Kind::Layer, &layer.digest))
        {
            *self.cached[u].lock().expect("cached lock") = Some(e);
            self.stats.lock().expect("cache stats lock").layer_hits += 1;
            return;
        }
        let label = self.layer_label(&job.image, unique.index);
        let taint = || self.tainted_layers[u].store(true, Ordering::Relaxed);
        let stored = match job.store.open(&job.image, layer) {
            Ok(r) => r,
            Err(e) => {
                taint();
                let kind = if e.is_timeout() {
                    NoticeKind::Timeout
                } else {
                    NoticeKind::Unreadable
                };
                out.notice(Notice::new(kind, label, e.to_string()));
                return;
            }
        };
        let repository: Arc<str> = job.image.repository.as_str().into();
        // Notices of the layer's files name the image, layer and digest.
        let meta = Arc::new(ImageMeta {
            reference: job.image.reference.clone(),
            digest: job.image.digest.clone(),
            layer_index: Some(unique.index),
            layer_digest: Some(layer.digest.clone()),
            ..ImageMeta::default()
        });
        let mut emit = |item: LayerItem| match item {
            LayerItem::Reserve(n) => out.reserve(n),
            LayerItem::Release(n) => out.release(n),
            LayerItem::File { path, data } => out.unit(Unit {
                origin: Origin::Image {
                    repository: repository.clone(),
                    path,
                    image: meta.clone(),
                },
                data,
                tag: ImageTag::Layer {
                    unique: u,
                    piped: None,
                },
            }),
            LayerItem::Stream { path, reader, .. } => {
                out.unit(Unit {
                    origin: Origin::Image {
                        repository: repository.clone(),
                        path,
                        image: meta.clone(),
                    },
                    data: Vec::new(),
                    tag: ImageTag::Layer {
                        unique: u,
                        piped: Some(reader),
                    },
                });
                // A worker must take the unit before this thread feeds
                // its pipe.
                out.flush();
            }
            LayerItem::Note { path, reason, kind } => {
                if !kind.is_routine() {
                    taint();
                }
                out.notice(Notice::new(kind, format!("{label}: {path}"), reason))
            }
        };
        let read = read_layer(stored, &layer.digest, self.opts.max_file_size, &mut emit);
        if !read.errors.is_empty() {
            taint();
        }
        let kind = if read.timed_out {
            NoticeKind::Timeout
        } else {
            NoticeKind::Unreadable
        };
        for e in &read.errors {
            out.notice(Notice::new(kind, label.clone(), e.clone()));
        }
        *self.reads[u].lock().expect("layer read lock") = read;
    }
}

impl Source for ImageSource<'_> {
    type Tag = ImageTag;
    type Worker = ();

    fn worker(&self) {}

    fn load(&self, unit: &mut Unit<ImageTag>, _: &mut ()) -> Result<(), Notice> {
        self.current(unit);
        Ok(())
    }

    fn stream(
        &self,
        unit: &mut Unit<ImageTag>,
        _: &mut (),
    ) -> Option<Result<Box<dyn std::io::Read + Send>, Notice>> {
        let ImageTag::Layer { piped, .. } = &mut unit.tag else {
            return None;
        };
        let reader = piped.take()?;
        self.current(unit);
        Some(Ok(Box::new(reader)))
    }

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
        for (j, job) in self.jobs.iter().enumerate() {
            if self.cached_configs[j].is_some() {
                continue;
            }
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
                    tag: ImageTag::Config { job: j },
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
            ImageTag::Config { .. } => None,
        }
    }

    fn describe(&self, unit: &Unit<ImageTag>) -> String {
        match (&unit.tag, &unit.origin) {
            (ImageTag::Layer { unique, .. }, Origin::Image { path, .. }) => {
                let u = &self.uniques[*unique];
                let label = self.layer_label(&self.jobs[u.job].image, u.index);
                format!("{label}: {path}")
            }
            _ => unit.origin.to_string(),
        }
    }

    fn unit_name(&self, unit: &Unit<ImageTag>) -> String {
        match (&unit.tag, unit.origin.display_path()) {
            (ImageTag::Layer { unique, .. }, Some(path)) => {
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
        let cached: Vec<std::sync::MutexGuard<'_, Option<Entry>>> = self
            .cached
            .iter()
            .map(|m| m.lock().expect("cached lock"))
            .collect();
        let mut findings = Vec::new();
        let mut per_unique: Vec<Vec<Finding>> = self.uniques.iter().map(|_| Vec::new()).collect();
        let mut per_config: Vec<Vec<Finding>> = self.jobs.iter().map(|_| Vec::new()).collect();
        for f in found {
            match f.tag {
                ImageTag::Layer { unique, .. } => per_unique[unique].extend(f.findings),
                ImageTag::Config { job } => per_config[job].extend(f.findings),
            }
        }
        // What a layer read now leaves in the cache, and what a cached
        // layer found before.
        let mut whiteouts_of: Vec<Vec<Whiteout>> = Vec::with_capacity(self.uniques.len());
        let mut pending = Vec::new();
        for (u, unique) in self.uniques.iter().enumerate() {
            let digest = &self.jobs[unique.job].image.layers[unique.index].digest;
            match &*cached[u] {
                Some(e) => {
                    per_unique[u] = e
                        .findings
                        .iter()
                        .cloned()
                        .filter_map(CachedFinding::into_finding)
                        .collect();
                    whiteouts_of.push(
                        e.whiteouts
                            .iter()
                            .map(|(path, opaque)| Whiteout {
                                path: path.clone(),
                                opaque: *opaque,
                            })
                            .collect(),
                    );
                }
                None => {
                    whiteouts_of.push(reads[u].whiteouts.clone());
                    if self.opts.cache.is_some() && !self.tainted_layers[u].load(Ordering::Relaxed)
                    {
                        pending.push((
                            Kind::Layer,
                            Entry {
                                digest: digest.clone(),
                                findings: per_unique[u].iter().map(CachedFinding::of).collect(),
                                whiteouts: reads[u]
                                    .whiteouts
                                    .iter()
                                    .map(|w| (w.path.clone(), w.opaque))
                                    .collect(),
                                bytes: reads[u].stored_bytes,
                                ..Entry::default()
                            },
                        ));
                    }
                }
            }
        }
        for (j, job) in self.jobs.iter().enumerate() {
            let img = &job.image;
            match &self.cached_configs[j] {
                Some(before) if !self.opts.new_only => findings.extend(before.iter().map(|f| {
                    let mut f = f.clone();
                    f.fingerprint = fingerprint(
                        &f.rule_id,
                        &f.raw_secret,
                        &image_identity(&img.repository, f.path.as_deref().unwrap_or_default()),
                    );
                    let meta = f.image.get_or_insert_default();
                    meta.reference = img.reference.clone();
                    meta.digest = img.digest.clone();
                    f
                })),
                Some(_) => {}
                None => {
                    let mine = std::mem::take(&mut per_config[j]);
                    if self.opts.cache.is_some()
                        && !self.tainted_configs[j].load(Ordering::Relaxed)
                        && !pending.iter().any(|(k, e): &(Kind, Entry)| {
                            *k == Kind::Config && e.digest == img.config_digest
                        })
                    {
                        pending.push((
                            Kind::Config,
                            Entry {
                                digest: img.config_digest.clone(),
                                findings: mine.iter().map(CachedFinding::of).collect(),
                                ..Entry::default()
                            },
                        ));
                    }
                    findings.extend(mine);
                }
            }
        }
        *self.pending.lock().expect("pending lock") = pending;
        for job in self.jobs {
            let img = &job.image;
            let whiteouts: Vec<&[Whiteout]> = img
                .layers
                .iter()
                .map(|l| whiteouts_of[self.by_digest[l.digest.as_str()]].as_slice())
                .collect();
            for (i, layer) in img.layers.iter().enumerate() {
                let u = self.by_digest[layer.digest.as_str()];
                if self.opts.new_only && cached[u].is_some() {
                    continue;
                }
                // The step quotes build args: never show their secrets.
                let created_by = img.config.created_by(i).map(|c| scanner.masked_text(c));
                for hit in &per_unique[u] {
                    let mut f = hit.clone();
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
