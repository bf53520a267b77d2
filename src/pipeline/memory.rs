//! Blobs already in memory (objects a cluster's API listed), scanned in
//! parallel like files: each blob a unit under `contained`, decoded as
//! files are, what could not be decoded named.

use std::time::Instant;

use rayon::prelude::*;

use super::{Counters, Outcome, SkipList, contained, counted_scan};
use crate::blob::Blob;
use crate::engine::{Scanner, Scratch};
use crate::notice::Notice;

/// Scans `blobs`; `on_skip` is told about each notice as it happens.
pub fn scan_blobs(
    scanner: &Scanner,
    blobs: &[Blob],
    on_skip: &(dyn Fn(&Notice) + Sync),
    counters: &Counters,
) -> Outcome {
    let start = Instant::now();
    let skipped = SkipList::new(on_skip);
    let findings: Vec<_> = blobs
        .par_iter()
        .map_init(Scratch::default, |scratch, blob| {
            contained(
                || blob.origin.to_string(),
                scratch,
                &skipped,
                |scratch| {
                    counted_scan(
                        scanner,
                        &blob.origin,
                        &blob.data,
                        scratch,
                        counters,
                        &skipped,
                    )
                    .findings
                },
            )
        })
        .flatten()
        .collect();
    Outcome::finish(findings, counters, skipped, start)
}
