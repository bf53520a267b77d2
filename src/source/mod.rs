//! Sources enumerate units of work and nothing else: bytes (or what the
//! source needs to read them in a worker) plus an `Origin`. They know
//! nothing of matching or output; the run loop (`pipeline::run`) scans
//! what they yield, the same way for every source.
//!
//! Source-specific logic lives here: the walk's ignore files (`fs`), Git's
//! history plan and parent comparison (`git`), image layers, whiteouts and
//! attribution (`image`), log windows (`stream`), blobs already in memory
//! (`memory`: a cluster's objects).

pub mod cluster;
pub mod fs;
pub mod git;
pub mod gitpack;
pub mod image;
pub mod memory;
pub mod pods;
pub mod ssh_relay;
pub mod stream;

use crate::blob::Origin;
use crate::decode::archive::ArchiveLimits;
use crate::engine::{Scanner, Scratch};
use crate::finding::Finding;
use crate::notice::Notice;

/// A unit of work: bytes and where they came from, and the source's own
/// note about it (`tag`: a path to read, a blob id, a layer).
#[derive(Debug)]
pub struct Unit<T> {
    pub origin: Origin,
    /// The bytes; empty until `Source::load` reads them when the source
    /// defers reading to the worker (files, Git blobs).
    pub data: Vec<u8>,
    pub tag: T,
}

/// Findings of one unit (and of the archive entries inside it), with the
/// unit's tag and its place in the source's order.
#[derive(Debug)]
pub struct Found<T> {
    /// 0-based position of the unit in the order the source yielded it.
    pub seq: usize,
    pub tag: T,
    pub findings: Vec<Finding>,
}

/// Where a source hands its units: the run loop, which applies
/// back-pressure (a call may wait until workers have room).
pub trait Emit<T>: Sync {
    fn unit(&self, unit: Unit<T>);
    fn notice(&self, notice: Notice);
    /// `n` bytes are about to be read into memory for a unit: waits until
    /// the run loop has room for them. Followed by `unit` (which takes
    /// them over) or `release`.
    fn reserve(&self, n: u64);
    fn release(&self, n: u64);
    /// Hands over the units given so far now rather than in a later
    /// batch: a unit whose bytes the source writes into a pipe must reach
    /// a worker before the source waits on that pipe.
    fn flush(&self);
}

/// A source of units. The run loop calls `units` on a thread of its own,
/// `load`, `review` and `describe` on its workers (each with its own
/// `Worker` state), and `finish` once every unit was scanned.
pub trait Source: Sync {
    /// What the source notes about each unit.
    type Tag: Send;
    /// Per-worker state (a thread-local repository handle).
    type Worker;

    fn worker(&self) -> Self::Worker;

    /// Yields every unit (and notices of what cannot be scanned) to `out`,
    /// in the source's order.
    fn units(&self, out: &dyn Emit<Self::Tag>);

    /// Reads a unit's bytes when the source deferred it (default: the bytes
    /// came with the unit).
    fn load(&self, _unit: &mut Unit<Self::Tag>, _w: &mut Self::Worker) -> Result<(), Notice> {
        Ok(())
    }

    /// A reader of the unit's bytes when the unit is large enough to be
    /// scanned in windows (`pipeline::big::STREAM_ABOVE`) rather than
    /// loaded whole (default: never). The reader yields at most the
    /// source's size limit and fails past it.
    fn stream(
        &self,
        _unit: &mut Unit<Self::Tag>,
        _w: &mut Self::Worker,
    ) -> Option<Result<Box<dyn std::io::Read + Send>, Notice>> {
        None
    }

    /// The span of the loaded unit that differs from an earlier unit of the
    /// same name whose findings the source reports (Git: the version of the
    /// file the walk found before): only what a change there can have added
    /// is looked for (`Scanner::scan_changed`). Default: none, all of it.
    fn changed(&self, _unit: &Unit<Self::Tag>) -> Option<std::ops::Range<usize>> {
        None
    }

    /// How archives found in units are opened; `None`: never (standard
    /// input).
    fn archives(&self, unit: &Unit<Self::Tag>) -> Option<ArchiveLimits>;

    /// Drops findings the source knows are not new (Git: secrets a parent
    /// version of the file already held). Not called for archive entries.
    fn review(
        &self,
        _unit: &Unit<Self::Tag>,
        _findings: &mut Vec<Finding>,
        _w: &mut Self::Worker,
        _scanner: &Scanner,
        _scratch: &mut Scratch,
    ) {
    }

    /// The unit as messages name it (a panic, a decode limit).
    fn describe(&self, unit: &Unit<Self::Tag>) -> String {
        unit.origin.to_string()
    }

    /// The unit's stable name (a path, an object id, a layer digest and
    /// path): what `--shard` will select units by.
    fn unit_name(&self, unit: &Unit<Self::Tag>) -> String {
        unit.origin.identity()
    }

    /// Turns the findings of every unit into the source's findings (Git:
    /// first introduction only; images: attributed to every image that
    /// ships the layer). `found` is in no particular order.
    ///
    /// `scan` scans bytes that are not units of their own (commit messages):
    /// notices and silenced findings are counted, the bytes are not.
    fn finish(
        &self,
        found: Vec<Found<Self::Tag>>,
        _scanner: &Scanner,
        _scan: &mut dyn FnMut(&Origin, &[u8]) -> Vec<Finding>,
    ) -> Vec<Finding> {
        found.into_iter().flat_map(|f| f.findings).collect()
    }
}
