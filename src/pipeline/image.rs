//! Images through the run loop (`source::image::scan` is the source: layer
//! readers, config parts, attribution to images).

use super::{Counters, Outcome, run};
use crate::engine::Scanner;
use crate::notice::Notice;
use crate::source::image::scan::ImageSource;
pub use crate::source::image::scan::{CacheStats, ImageJob, ImageScanOptions};

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
    let source = ImageSource::new(jobs, problems, opts.clone());
    let hook = |n: &Notice| {
        source.saw(n);
        on_skip(n);
    };
    let mut outcome = run(&source, scanner, &hook, counters);
    source.record();
    outcome.layers = source.layers() as u64;
    outcome.images = jobs.len() as u64;
    outcome.cache = source.stats();
    outcome
}
