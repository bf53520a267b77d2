//! Reading a repository's packed objects in the order a history walk needs
//! them.
//!
//! Git stores most trees and blobs as deltas: each version of a file is a
//! delta against another version, in chains up to 50 deep, usually with the
//! newest version whole and older ones as deltas of newer ones. A history
//! walk goes the other way (oldest commits first), so with a cache that keeps
//! only the objects asked for (gix's), reading the versions of one tree in
//! commit order resolves the whole chain again for each of them: quadratic
//! in the chain's depth, and on git/git's history 37% of all the work.
//!
//! [`Reader`] resolves a chain itself, from the nearest cached link down to
//! the object asked for, and keeps every link it produced: the next version
//! (the next link) is then one delta away. [`Cache`] bounds what it keeps
//! by bytes, least recently used first out. [`Shared`] is one cache behind a
//! lock for several threads that read neighbouring objects (blobs handed out
//! in pack order): a base one thread produced serves the other.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use gix::ObjectId;
use gix::odb::pack;
use gix::odb::pack::cache::DecodeEntry;
use gix::odb::pack::data::entry::Header;

/// The packs of one object directory, each with its index.
pub struct Packs {
    packs: Vec<(pack::index::File, pack::data::File)>,
}

impl Packs {
    /// Every `*.idx` with its `*.pack` under `objects/pack` of `git_dir`;
    /// a pack that cannot be opened is left out (its objects are then read
    /// through gix, as loose objects and alternates are).
    pub fn open(objects_dir: &Path, kind: gix::hash::Kind) -> Packs {
        let mut packs = Vec::new();
        let Ok(dir) = std::fs::read_dir(objects_dir.join("pack")) else {
            return Packs { packs };
        };
        let mut idx: Vec<_> = dir
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "idx"))
            .collect();
        idx.sort();
        for path in idx {
            if let (Ok(i), Ok(d)) = (
                pack::index::File::at(&path, kind),
                pack::data::File::at(path.with_extension("pack"), kind),
            ) && i.num_objects() == d.num_objects()
            {
                packs.push((i, d));
            }
        }
        Packs { packs }
    }

    /// Which pack holds `id`, and where.
    pub fn locate(&self, id: &gix::oid) -> Option<(usize, u64)> {
        self.packs
            .iter()
            .enumerate()
            .find_map(|(n, (i, _))| i.lookup(id).map(|e| (n, i.pack_offset_at_index(e))))
    }
}

/// One cached object.
struct Slot {
    kind: gix::object::Kind,
    compressed: usize,
    data: Vec<u8>,
    tick: u64,
}

/// Decoded pack entries by (pack, data offset), evicted least recently
/// used first when they hold more than `cap` bytes.
pub struct Cache {
    slots: HashMap<(u32, u64), Slot>,
    by_age: BTreeMap<u64, (u32, u64)>,
    bytes: usize,
    cap: usize,
    tick: u64,
}

impl Cache {
    pub fn new(cap: usize) -> Cache {
        Cache {
            slots: HashMap::new(),
            by_age: BTreeMap::new(),
            bytes: 0,
            cap,
            tick: 0,
        }
    }

    fn contains(&self, pack: u32, offset: u64) -> bool {
        self.slots.contains_key(&(pack, offset))
    }
}

impl DecodeEntry for Cache {
    fn put(
        &mut self,
        pack_id: u32,
        offset: u64,
        data: &[u8],
        kind: gix::object::Kind,
        compressed_size: usize,
    ) {
        // An object bigger than a quarter of the cache would push out
        // everything else.
        if data.len() > self.cap / 4 || self.contains(pack_id, offset) {
            return;
        }
        self.tick += 1;
        self.bytes += data.len();
        self.by_age.insert(self.tick, (pack_id, offset));
        self.slots.insert(
            (pack_id, offset),
            Slot {
                kind,
                compressed: compressed_size,
                data: data.to_vec(),
                tick: self.tick,
            },
        );
        while self.bytes > self.cap {
            let Some((_, key)) = self.by_age.pop_first() else {
                break;
            };
            if let Some(s) = self.slots.remove(&key) {
                self.bytes -= s.data.len();
            }
        }
    }

    fn get(
        &mut self,
        pack_id: u32,
        offset: u64,
        out: &mut Vec<u8>,
    ) -> Option<(gix::object::Kind, usize)> {
        let slot = self.slots.get_mut(&(pack_id, offset))?;
        self.tick += 1;
        self.by_age.remove(&slot.tick);
        slot.tick = self.tick;
        self.by_age.insert(slot.tick, (pack_id, offset));
        out.clear();
        out.extend_from_slice(&slot.data);
        Some((slot.kind, slot.compressed))
    }
}

/// One [`Cache`] for several threads (each gix handle gets a [`Shared`]).
#[derive(Clone)]
pub struct Shared(pub Arc<Mutex<Cache>>);

impl DecodeEntry for Shared {
    fn put(&mut self, pack_id: u32, offset: u64, data: &[u8], kind: gix::object::Kind, n: usize) {
        if let Ok(mut c) = self.0.lock() {
            c.put(pack_id, offset, data, kind, n);
        }
    }
    fn get(
        &mut self,
        pack_id: u32,
        offset: u64,
        out: &mut Vec<u8>,
    ) -> Option<(gix::object::Kind, usize)> {
        self.0.lock().ok()?.get(pack_id, offset, out)
    }
}

/// The longest delta chain followed (Git writes at most 50 by default; a
/// corrupt pack's cycle ends here).
const MAX_CHAIN: usize = 10_000;

/// Reads packed objects, keeping every link of the delta chains it
/// resolves.
pub struct Reader {
    packs: Arc<Packs>,
    cache: Cache,
    inflate: gix::zlib::Inflate,
    chain: Vec<pack::data::Entry>,
}

impl Reader {
    pub fn new(packs: Arc<Packs>, cache_bytes: usize) -> Reader {
        Reader {
            packs,
            cache: Cache::new(cache_bytes),
            inflate: Default::default(),
            chain: Vec::new(),
        }
    }

    /// Object `id` into `out`, with its kind; `None` when it is not in one
    /// of the packs or cannot be decoded here (the caller then asks gix,
    /// which names the problem).
    pub fn read(&mut self, id: &ObjectId, out: &mut Vec<u8>) -> Option<gix::object::Kind> {
        let (n, offset) = self.packs.locate(id)?;
        let file = &self.packs.packs[n].1;
        // The links from the object up to the first one cached or whole.
        self.chain.clear();
        let mut entry = file.entry(offset).ok()?;
        loop {
            let cached = self.cache.contains(file.id, entry.data_offset);
            let base = match entry.header {
                Header::OfsDelta { base_distance } if !cached => {
                    Some(entry.checked_base_pack_offset(base_distance)?)
                }
                _ => None,
            };
            self.chain.push(entry);
            match base {
                Some(at) if self.chain.len() < MAX_CHAIN => entry = file.entry(at).ok()?,
                Some(_) => return None,
                None => break,
            }
        }
        // Down the chain: each link is one delta from the one before,
        // which the cache holds. A whole (non-delta) object at the top is
        // decoded by its first delta's resolution, so it is skipped here.
        let mut kind = None;
        let mut links = std::mem::take(&mut self.chain);
        // So is a cached link at the top: its child finds it in the cache.
        let start = match links.last() {
            Some(top)
                if links.len() > 1
                    && (!top.header.is_delta()
                        || self.cache.contains(file.id, top.data_offset)) =>
            {
                links.len() - 1
            }
            _ => links.len(),
        };
        for e in links.drain(..start).rev() {
            let outcome = file
                .decode_entry(e, out, &mut self.inflate, &|_, _| Ok(None), &mut self.cache)
                .ok()?;
            kind = Some(outcome.kind);
        }
        links.clear();
        self.chain = links;
        kind
    }
}
