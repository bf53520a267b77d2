//! The cache of an incremental registry sweep (`registry --cache DIR`):
//! what scanning a layer or an image config found, by digest, so a later
//! sweep reads only layers it has not seen and reports the findings of the
//! others again for every image that ships them.
//!
//! Layout: `DIR/leakhound-cache-v1/<results key>/{layers,configs}/<algo>/<hex>.json`.
//! The results key (`Settings::results_key`) hashes the rule pack and every
//! setting that changes results: a different key is a different (empty)
//! cache, and the entries of other keys are removed when a sweep opens the
//! cache. Each entry is one file written to a temporary name beside it and
//! renamed into place, so processes sharing the directory (the shards of a
//! sweep) never see half an entry, and two writers of the same digest write
//! the same content. Entries hold the raw secrets (fingerprints of images
//! that ship a cached layer are computed from them): files are created
//! owner-only (0600 in a 0700 directory); treat the cache like the images.
//! Reads are bounded (`MAX_ENTRY`); an entry that does not parse, or names
//! another digest or key, is a miss.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::finding::Finding;
use crate::notice::{Notice, NoticeKind};

/// Version of the cache's layout and entry shape.
const LAYOUT: &str = "leakhound-cache-v1";

/// Largest entry read (an entry holds one layer's findings).
const MAX_ENTRY: u64 = 64 << 20;

/// A finding as the cache keeps it: the finding and its raw secret (never
/// serialised in reports, needed to fingerprint it for other images and
/// to mask it in other findings' snippets).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CachedFinding {
    pub finding: Finding,
    /// The raw secret, hex.
    pub raw: String,
}

impl CachedFinding {
    pub fn of(f: &Finding) -> CachedFinding {
        CachedFinding {
            finding: f.clone(),
            raw: super::hex(&f.raw_secret),
        }
    }

    pub fn into_finding(self) -> Option<Finding> {
        let mut f = self.finding;
        f.raw_secret = unhex(&self.raw)?;
        Some(f)
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// What scanning one layer or config found.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Entry {
    /// The results key it was made under.
    pub key: String,
    /// The layer's or config's digest.
    pub digest: String,
    pub findings: Vec<CachedFinding>,
    /// A layer's whiteouts: (path, opaque).
    #[serde(default)]
    pub whiteouts: Vec<(String, bool)>,
    /// Files and bytes scanned when it was read.
    #[serde(default)]
    pub files: u64,
    #[serde(default)]
    pub bytes: u64,
}

/// Layers or configs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Layer,
    Config,
}

impl Kind {
    fn dir(self) -> &'static str {
        match self {
            Kind::Layer => "layers",
            Kind::Config => "configs",
        }
    }
}

/// An opened cache directory under one results key.
#[derive(Debug)]
pub struct Cache {
    dir: PathBuf,
    key: String,
}

impl Cache {
    /// Opens (creating) the cache in `dir` for results under `key`; entries
    /// made under other keys (another rule pack or other settings) are
    /// removed. `notes` tells what happened to them.
    pub fn open(dir: &Path, key: &str) -> std::io::Result<(Cache, Vec<String>)> {
        let root = dir.join(LAYOUT);
        create_private_dir(&root)?;
        let mut notes = Vec::new();
        for e in std::fs::read_dir(&root)?.flatten() {
            let name = e.file_name();
            if name.to_str() != Some(key) && e.path().is_dir() {
                // Another shard may be removing it at the same time.
                let _ = std::fs::remove_dir_all(e.path());
                notes.push(format!(
                    "cache {}: rules or settings changed; entries made under the old ones removed",
                    dir.display()
                ));
            }
        }
        let here = root.join(key);
        create_private_dir(&here)?;
        Ok((
            Cache {
                dir: here,
                key: key.to_string(),
            },
            notes,
        ))
    }

    fn path(&self, kind: Kind, digest: &str) -> Option<PathBuf> {
        let (algo, hex) = digest.split_once(':')?;
        let ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric());
        if !ok(algo) || !ok(hex) {
            return None;
        }
        Some(
            self.dir
                .join(kind.dir())
                .join(algo)
                .join(format!("{hex}.json")),
        )
    }

    /// The entry for `digest`, if one was made under this key.
    pub fn get(&self, kind: Kind, digest: &str) -> Option<Entry> {
        let path = self.path(kind, digest)?;
        let f = std::fs::File::open(&path).ok()?;
        let mut data = Vec::new();
        f.take(MAX_ENTRY + 1).read_to_end(&mut data).ok()?;
        if data.len() as u64 > MAX_ENTRY {
            return None;
        }
        let e: Entry = serde_json::from_slice(&data).ok()?;
        (e.key == self.key && e.digest == digest).then_some(e)
    }

    /// Writes `entry` (atomically: a temporary file renamed into place).
    pub fn put(&self, kind: Kind, entry: &Entry) -> Result<(), Notice> {
        let fail = |e: std::io::Error| {
            Notice::new(
                NoticeKind::Unreadable,
                format!("cache {}", self.dir.display()),
                format!("cannot record {}: {e}", entry.digest),
            )
        };
        let Some(path) = self.path(kind, &entry.digest) else {
            return Ok(());
        };
        let parent = path.parent().expect("entry path has a parent");
        std::fs::create_dir_all(parent).map_err(fail)?;
        let mut entry = entry.clone();
        entry.key = self.key.clone();
        let data = serde_json::to_vec(&entry).map_err(|e| fail(e.into()))?;
        // tempfile creates the file 0600.
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(parent)
            .map_err(fail)?;
        tmp.write_all(&data).map_err(fail)?;
        tmp.persist(&path).map_err(|e| fail(e.error))?;
        Ok(())
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_other_keys_are_misses_then_removed() {
        let dir = tempfile::tempdir().unwrap();
        let (c, notes) = Cache::open(dir.path(), "k1").unwrap();
        assert!(notes.is_empty());
        let d = "sha256:00ff";
        assert!(c.get(Kind::Layer, d).is_none());
        let e = Entry {
            digest: d.into(),
            files: 3,
            whiteouts: vec![("etc".into(), true)],
            ..Entry::default()
        };
        c.put(Kind::Layer, &e).unwrap();
        let got = c.get(Kind::Layer, d).unwrap();
        assert_eq!((got.files, got.key.as_str()), (3, "k1"));
        assert!(c.get(Kind::Config, d).is_none());
        // A digest that could climb out of the directory is never a path.
        assert!(c.path(Kind::Layer, "sha256:../x").is_none());
        let (c2, notes) = Cache::open(dir.path(), "k2").unwrap();
        assert_eq!(notes.len(), 1);
        assert!(c2.get(Kind::Layer, d).is_none());
        assert!(!dir.path().join(LAYOUT).join("k1").exists());
        assert_eq!(unhex("00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(unhex("0"), None);
    }
}
