//! Blobs already in memory (the objects a cluster's API listed): each a
//! unit of the run loop as it is, scanned like a file, archives not opened
//! (an API object is text, not a file that could be an archive).

use std::sync::Mutex;

use super::{Emit, Source, Unit};
use crate::blob::Blob;
use crate::decode::archive::ArchiveLimits;

pub struct MemorySource {
    blobs: Mutex<Vec<Blob>>,
}

impl MemorySource {
    pub fn new(blobs: Vec<Blob>) -> Self {
        MemorySource {
            blobs: Mutex::new(blobs),
        }
    }
}

impl Source for MemorySource {
    type Tag = ();
    type Worker = ();

    fn worker(&self) {}

    fn units(&self, out: &dyn Emit<()>) {
        let blobs = std::mem::take(&mut *self.blobs.lock().expect("blobs lock"));
        for b in blobs {
            out.reserve(b.data.len() as u64);
            out.unit(Unit {
                origin: b.origin,
                data: b.data,
                tag: (),
            });
        }
    }

    fn archives(&self, _: &Unit<()>) -> Option<ArchiveLimits> {
        None
    }
}
