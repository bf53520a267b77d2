//! The cache of an incremental registry sweep (`registry --cache DIR`):
//! what scanning a layer or an image config found, by digest, so a later
//! sweep reads only layers it has not seen and reports the findings of the
//! others again for every image that ships them; and what each manifest or
//! index resolved to (config and layers), by the manifest's digest, so a tag
//! that still names a known digest costs one HEAD request and nothing else.
//!
//! Layout: `DIR/leakhound-cache-v1/<results key>/{layers,configs,images}/<algo>/<hex>.json`.
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
//!
//! Image entries hold no findings, only what the manifest (and the config
//! it names) said, which its digest fixes: they stay true whatever was
//! scanned since, and the findings still come from the layer and config
//! entries (a layer whose entry is missing is read again).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::registry::{Registry, Resolution};
use super::{Image, ImageConfig, ImageError, LayerRef, Platform};
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

/// What a manifest or index resolved to, by its digest.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ImageEntry {
    pub key: String,
    /// The manifest's or index's digest.
    pub digest: String,
    /// For an index, the platforms chosen (`linux/amd64`, or `all` for
    /// every platform): another choice is a miss. `None` for an image
    /// manifest, which every choice resolves alike.
    pub selection: Option<String>,
    pub images: Vec<ResolvedImage>,
}

/// One image of an `ImageEntry`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ResolvedImage {
    /// What `Registry::resolve` appended to the reference to name the
    /// image (` (linux/arm64)` with every platform), usually nothing.
    pub suffix: String,
    /// The image manifest's digest.
    pub digest: String,
    pub config_digest: String,
    pub config: ImageConfig,
    /// Digest and media type of each layer, in manifest order.
    pub layers: Vec<(String, String)>,
}

/// Layers, configs or resolved manifests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Layer,
    Config,
    Image,
}

impl Kind {
    fn dir(self) -> &'static str {
        match self {
            Kind::Layer => "layers",
            Kind::Config => "configs",
            Kind::Image => "images",
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

    /// The entry for a layer's or config's `digest`, if one was made under
    /// this key.
    pub fn get(&self, kind: Kind, digest: &str) -> Option<Entry> {
        let e: Entry = self.read(kind, digest)?;
        (e.key == self.key && e.digest == digest).then_some(e)
    }

    /// Writes a layer's or config's `entry`.
    pub fn put(&self, kind: Kind, entry: &Entry) -> Result<(), Notice> {
        let mut entry = entry.clone();
        entry.key = self.key.clone();
        self.write(kind, &entry.digest, &entry)
    }

    /// The images the manifest or index `digest` resolved to, named after
    /// `reference` in `repository` (`host/team/app`), when it is known
    /// under this key and `selection` (see `ImageEntry::selection`).
    pub fn images(
        &self,
        digest: &str,
        reference: &str,
        repository: &str,
        selection: &str,
    ) -> Option<Vec<Image>> {
        let e: ImageEntry = self.read(Kind::Image, digest)?;
        if e.key != self.key
            || e.digest != digest
            || e.selection.as_deref().is_some_and(|s| s != selection)
        {
            return None;
        }
        Some(
            e.images
                .into_iter()
                .map(|i| {
                    let location = format!("{repository}@{}", i.digest);
                    Image {
                        reference: format!("{reference}{}", i.suffix),
                        repository: repository.to_string(),
                        layers: i
                            .layers
                            .into_iter()
                            .map(|(digest, media_type)| LayerRef {
                                digest,
                                media_type,
                                location: location.clone(),
                            })
                            .collect(),
                        digest: i.digest,
                        config_digest: i.config_digest,
                        config: i.config,
                    }
                })
                .collect(),
        )
    }

    /// Records what `reference` resolved to under `selection`.
    pub fn put_images(
        &self,
        reference: &str,
        resolved: &Resolution,
        selection: &str,
    ) -> Result<(), Notice> {
        let entry = ImageEntry {
            key: self.key.clone(),
            digest: resolved.digest.clone(),
            selection: resolved.index.then(|| selection.to_string()),
            images: resolved
                .images
                .iter()
                .map(|i| ResolvedImage {
                    suffix: i
                        .reference
                        .strip_prefix(reference)
                        .unwrap_or_default()
                        .to_string(),
                    digest: i.digest.clone(),
                    config_digest: i.config_digest.clone(),
                    config: i.config.clone(),
                    layers: i
                        .layers
                        .iter()
                        .map(|l| (l.digest.clone(), l.media_type.clone()))
                        .collect(),
                })
                .collect(),
        };
        self.write(Kind::Image, &resolved.digest, &entry)
    }

    fn read<T: serde::de::DeserializeOwned>(&self, kind: Kind, digest: &str) -> Option<T> {
        let path = self.path(kind, digest)?;
        let f = std::fs::File::open(&path).ok()?;
        let mut data = Vec::new();
        f.take(MAX_ENTRY + 1).read_to_end(&mut data).ok()?;
        if data.len() as u64 > MAX_ENTRY {
            return None;
        }
        serde_json::from_slice(&data).ok()
    }

    /// Writes `entry` (atomically: a temporary file renamed into place).
    fn write<T: Serialize>(&self, kind: Kind, digest: &str, entry: &T) -> Result<(), Notice> {
        let fail = |e: std::io::Error| {
            Notice::new(
                NoticeKind::Unreadable,
                format!("cache {}", self.dir.display()),
                format!("cannot record {digest}: {e}"),
            )
        };
        let Some(path) = self.path(kind, digest) else {
            return Ok(());
        };
        let parent = path.parent().expect("entry path has a parent");
        std::fs::create_dir_all(parent).map_err(fail)?;
        let data = serde_json::to_vec(entry).map_err(|e| fail(e.into()))?;
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

/// How a reference was resolved.
#[derive(Debug)]
pub struct Resolved {
    pub images: Vec<Image>,
    /// From an image entry: no manifest or config was fetched.
    pub from_cache: bool,
}

/// Resolves `reference` like `Registry::resolve`, asking the cache first:
/// a HEAD request gives the digest the tag names now, and a digest with an
/// image entry is resolved from it with no further request. A tag pushed
/// again names another digest and is resolved afresh; so is everything
/// when the registry sends no digest or the HEAD fails (the GET then says
/// why, if it fails too). What is resolved afresh is recorded; a failure to
/// record is logged (the sweep is no less complete for it).
pub fn resolve(
    registry: &Registry,
    cache: Option<&Cache>,
    reference: &str,
    platform: &Platform,
    all: bool,
) -> Result<Resolved, ImageError> {
    let Some(cache) = cache else {
        return Ok(Resolved {
            images: registry.resolve(reference, platform, all)?,
            from_cache: false,
        });
    };
    let selection = if all {
        "all".to_string()
    } else {
        platform.to_string()
    };
    if let Ok(Some(digest)) = registry.manifest_digest(reference) {
        let repository = Registry::repository(reference)?;
        if let Some(images) = cache.images(&digest, reference, &repository, &selection) {
            return Ok(Resolved {
                images,
                from_cache: true,
            });
        }
    }
    let resolved = registry.resolve_top(reference, platform, all)?;
    if let Err(n) = cache.put_images(reference, &resolved, &selection) {
        tracing::warn!("{}: {}", n.path, n.reason);
    }
    Ok(Resolved {
        images: resolved.images,
        from_cache: false,
    })
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

    fn resolution(index: bool) -> Resolution {
        let image = |name: &str, digest: &str| Image {
            reference: name.to_string(),
            repository: "reg.example:5000/team/app".into(),
            digest: digest.into(),
            config_digest: "sha256:c0".into(),
            config: ImageConfig::parse(
                "t",
                br#"{"config":{"Env":["A=1"]},"history":[{"created_by":"ADD x"}]}"#,
            )
            .unwrap(),
            layers: vec![LayerRef {
                digest: "sha256:1a".into(),
                media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
                location: format!("reg.example:5000/team/app@{digest}"),
            }],
        };
        let r = "reg.example:5000/team/app:v1";
        Resolution {
            digest: "sha256:70".into(),
            index,
            images: if index {
                vec![
                    image(&format!("{r} (linux/amd64)"), "sha256:a1"),
                    image(&format!("{r} (linux/arm64)"), "sha256:a2"),
                ]
            } else {
                vec![image(r, "sha256:70")]
            },
        }
    }

    #[test]
    fn image_entries_give_back_the_images_and_an_index_only_for_its_platform_choice() {
        let dir = tempfile::tempdir().unwrap();
        let (c, _) = Cache::open(dir.path(), "k").unwrap();
        let r = "reg.example:5000/team/app:v1";
        let repo = "reg.example:5000/team/app";
        let single = resolution(false);
        c.put_images(r, &single, "linux/amd64").unwrap();
        // A single manifest resolves alike for every platform choice.
        let got = c.images("sha256:70", r, repo, "linux/arm64").unwrap();
        assert_eq!(got.len(), 1);
        let (want, got) = (&single.images[0], &got[0]);
        assert_eq!(
            (
                &got.reference,
                &got.digest,
                &got.config_digest,
                &got.config,
                &got.layers
            ),
            (
                &want.reference,
                &want.digest,
                &want.config_digest,
                &want.config,
                &want.layers
            )
        );
        // Another tag or repository with the same digest is named as asked.
        let other = c
            .images(
                "sha256:70",
                "reg.example:5000/x/y:v9",
                "reg.example:5000/x/y",
                "all",
            )
            .unwrap();
        assert_eq!(other[0].reference, "reg.example:5000/x/y:v9");
        assert_eq!(
            other[0].layers[0].location,
            "reg.example:5000/x/y@sha256:70"
        );

        let index = resolution(true);
        c.put_images(r, &index, "all").unwrap();
        assert!(c.images("sha256:70", r, repo, "linux/amd64").is_none());
        let got = c.images("sha256:70", r, repo, "all").unwrap();
        let names: Vec<&str> = got.iter().map(|i| i.reference.as_str()).collect();
        assert_eq!(
            names,
            [format!("{r} (linux/amd64)"), format!("{r} (linux/arm64)")]
        );
        // Another results key does not see it.
        let (c2, _) = Cache::open(dir.path(), "k2").unwrap();
        assert!(c2.images("sha256:70", r, repo, "all").is_none());
    }
}
