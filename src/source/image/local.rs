//! Images on disk: a `docker save` tar (legacy `manifest.json` with
//! `layer.tar`s, or the OCI layout that docker >= 25 writes inside it), an
//! OCI layout tarball, or an OCI layout directory (`oci-layout`,
//! `index.json`, `blobs/sha256/…`).
//!
//! A tar is indexed once (names → offsets, seeking past the data) and each
//! blob is then read in place; nothing is extracted.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::manifest::{self, Descriptor, Manifest, Platform};
use super::{Image, ImageConfig, ImageError, LayerRef, LayerStore, repository_of, sha256_digest};

/// Where a local image's files live.
enum Files {
    Dir(PathBuf),
    /// Path of the tar and, per member name, (data offset, size).
    Tar(PathBuf, HashMap<String, (u64, u64)>),
}

/// A `docker save` archive or OCI layout, opened.
pub struct LocalStore {
    /// As the user named it, for messages and references.
    label: String,
    files: Files,
}

/// Largest manifest, index or config read into memory (they are JSON of a
/// few KiB; a bigger one is hostile or not what it claims).
const MAX_JSON: u64 = 16 << 20;

impl LocalStore {
    /// Opens a tar archive (indexing its members) or an OCI layout dir.
    pub fn open(path: &Path, dir: bool) -> Result<LocalStore, ImageError> {
        let label = path.display().to_string();
        let io_err = |what: &str, source| ImageError::Io {
            image: label.clone(),
            what: what.to_string(),
            source,
        };
        if !dir && path.is_dir() {
            return Err(ImageError::invalid(
                &label,
                "is a directory, not an image archive (an OCI layout directory is read as a layout)",
            ));
        }
        let files = if dir {
            if !path.join("oci-layout").is_file() {
                return Err(ImageError::invalid(
                    &label,
                    "not an OCI layout directory (no `oci-layout` file)",
                ));
            }
            Files::Dir(path.to_path_buf())
        } else {
            let mut file = File::open(path).map_err(|e| io_err("the archive", e))?;
            let mut magic = [0u8; 4];
            let n = file
                .read(&mut magic)
                .map_err(|e| io_err("the archive", e))?;
            if magic[..n].starts_with(&[0x1f, 0x8b]) || magic[..n] == [0x28, 0xb5, 0x2f, 0xfd] {
                // Blobs are read in place by offset, which a compressed
                // archive does not allow.
                return Err(ImageError::invalid(
                    &label,
                    "the archive is compressed (gzip or zstd): decompress it first (`docker save` writes a plain tar)",
                ));
            }
            file.seek(SeekFrom::Start(0))
                .map_err(|e| io_err("the archive", e))?;
            let mut archive = tar::Archive::new(BufReader::new(file));
            let mut index = HashMap::new();
            let entries = archive
                .entries_with_seek()
                .map_err(|e| io_err("the archive", e))?;
            for entry in entries {
                let entry = entry
                    .map_err(|e| io_err("the archive's member list (truncated or not a tar)", e))?;
                if !entry.header().entry_type().is_file() {
                    continue;
                }
                let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
                let name = name.trim_start_matches("./").to_string();
                index.insert(name, (entry.raw_file_position(), entry.size()));
            }
            Files::Tar(path.to_path_buf(), index)
        };
        Ok(LocalStore { label, files })
    }

    fn exists(&self, name: &str) -> bool {
        match &self.files {
            Files::Dir(root) => root.join(name).is_file(),
            Files::Tar(_, index) => index.contains_key(name),
        }
    }

    fn open_member(&self, name: &str) -> io::Result<(Box<dyn Read + Send>, u64)> {
        match &self.files {
            Files::Dir(root) => {
                let f = File::open(root.join(name))?;
                let len = f.metadata()?.len();
                Ok((Box::new(f), len))
            }
            Files::Tar(path, index) => {
                let &(offset, size) = index
                    .get(name)
                    .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "not in the archive"))?;
                let mut f = File::open(path)?;
                f.seek(SeekFrom::Start(offset))?;
                Ok((Box::new(f.take(size)), size))
            }
        }
    }

    fn read_json(&self, name: &str) -> Result<Vec<u8>, ImageError> {
        let io_err = |source| ImageError::Io {
            image: self.label.clone(),
            what: name.to_string(),
            source,
        };
        let (r, len) = self.open_member(name).map_err(io_err)?;
        if len > MAX_JSON {
            return Err(ImageError::invalid(
                &self.label,
                format!("{name} is {len} bytes, too large for JSON metadata"),
            ));
        }
        let mut data = Vec::with_capacity(len as usize);
        r.take(MAX_JSON).read_to_end(&mut data).map_err(io_err)?;
        Ok(data)
    }

    /// Reads a blob by descriptor and checks its digest.
    fn read_blob(&self, image: &str, d: &Descriptor) -> Result<Vec<u8>, ImageError> {
        let data = self.read_json(&blob_path(&self.label, &d.digest)?)?;
        let actual = sha256_digest(&data);
        if actual != d.digest {
            return Err(ImageError::invalid(
                image,
                format!(
                    "digest mismatch for blob {}: the bytes hash to {actual}",
                    d.digest
                ),
            ));
        }
        Ok(data)
    }

    /// The images this store holds: an OCI layout's index (platforms
    /// selected as asked), else a legacy `docker save` manifest.
    pub fn images(
        &self,
        platform: &Platform,
        all_platforms: bool,
    ) -> Result<Vec<Image>, ImageError> {
        if self.exists("oci-layout") && self.exists("index.json") {
            self.oci_images(platform, all_platforms)
        } else if self.exists("manifest.json") {
            self.docker_images()
        } else {
            Err(ImageError::invalid(
                &self.label,
                "neither a docker save archive (manifest.json) nor an OCI layout (oci-layout, index.json)",
            ))
        }
    }

    fn oci_images(&self, platform: &Platform, all: bool) -> Result<Vec<Image>, ImageError> {
        let top = match manifest::parse_manifest(
            &self.label,
            Some(manifest::OCI_INDEX),
            &self.read_json("index.json")?,
        )? {
            Manifest::Index { manifests } => manifests,
            Manifest::Image { .. } => {
                return Err(ImageError::invalid(
                    &self.label,
                    "index.json is an image manifest, not an index",
                ));
            }
        };
        let chosen: Vec<&Descriptor> = if top.iter().any(|d| d.platform.is_some()) {
            manifest::select_platforms(&self.label, &top, platform, all)?
        } else {
            top.iter().collect()
        };
        let several = chosen.len() > 1;
        let mut out = Vec::new();
        for d in chosen {
            let (mut reference, repository) = self.name_of(d, several && d.platform.is_none());
            if let (Some(p), true) = (&d.platform, several) {
                reference = format!("{reference} ({p})");
            }
            self.resolve(&reference, &repository, d, platform, all, &mut out)?;
        }
        Ok(out)
    }

    /// Reference and repository of a layout's image: the full name docker
    /// and containerd record, else the layout path with the tag.
    fn name_of(&self, d: &Descriptor, several: bool) -> (String, String) {
        let ann = |k: &str| d.annotations.as_ref().and_then(|a| a.get(k)).cloned();
        if let Some(full) = ann("io.containerd.image.name") {
            return (full.clone(), repository_of(&full));
        }
        match ann("org.opencontainers.image.ref.name") {
            Some(tag) => (format!("{}:{tag}", self.label), self.label.clone()),
            None if several => (format!("{}@{}", self.label, d.digest), self.label.clone()),
            None => (self.label.clone(), self.label.clone()),
        }
    }

    fn resolve(
        &self,
        reference: &str,
        repository: &str,
        d: &Descriptor,
        platform: &Platform,
        all: bool,
        out: &mut Vec<Image>,
    ) -> Result<(), ImageError> {
        let data = self.read_blob(reference, d)?;
        match manifest::parse_manifest(reference, Some(&d.media_type), &data)? {
            Manifest::Index { manifests } => {
                for m in manifest::select_platforms(reference, &manifests, platform, all)? {
                    let r = match (&m.platform, all) {
                        (Some(p), true) => format!("{reference} ({p})"),
                        _ => reference.to_string(),
                    };
                    self.resolve(&r, repository, m, platform, false, out)?;
                }
            }
            Manifest::Image { config, layers } => {
                let cfg = ImageConfig::parse(reference, &self.read_blob(reference, &config)?)?;
                let layers = layers
                    .iter()
                    .map(|l| {
                        Ok(LayerRef {
                            digest: l.digest.clone(),
                            media_type: l.media_type.clone(),
                            location: blob_path(reference, &l.digest)?,
                        })
                    })
                    .collect::<Result<_, ImageError>>()?;
                out.push(Image {
                    reference: reference.to_string(),
                    repository: repository.to_string(),
                    digest: d.digest.clone(),
                    config_digest: config.digest.clone(),
                    config: cfg,
                    layers,
                });
            }
        }
        Ok(())
    }

    fn docker_images(&self) -> Result<Vec<Image>, ImageError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Entry {
            config: String,
            #[serde(default)]
            repo_tags: Option<Vec<String>>,
            layers: Vec<String>,
        }
        let entries: Vec<Entry> = serde_json::from_slice(&self.read_json("manifest.json")?)
            .map_err(|source| ImageError::Json {
                image: self.label.clone(),
                what: "manifest.json".into(),
                source,
            })?;
        let several = entries.len() > 1;
        let mut out = Vec::new();
        for e in entries {
            let config_bytes = self.read_json(&e.config)?;
            let id = sha256_digest(&config_bytes);
            let tag = e.repo_tags.as_ref().and_then(|t| t.first()).cloned();
            let (reference, repository) = match tag {
                Some(t) => (t.clone(), repository_of(&t)),
                None if several => (format!("{}@{id}", self.label), self.label.clone()),
                None => (self.label.clone(), self.label.clone()),
            };
            let config = ImageConfig::parse(&reference, &config_bytes)?;
            let mut layers = Vec::new();
            for (i, path) in e.layers.iter().enumerate() {
                // docker >= 25 names layers by digest; older ones wrote an
                // uncompressed `ID/layer.tar`, whose digest is its diff id.
                let digest = match path.strip_prefix("blobs/sha256/") {
                    Some(hex) => format!("sha256:{hex}"),
                    None => config.diff_ids.get(i).cloned().ok_or_else(|| {
                        ImageError::invalid(
                            &reference,
                            format!(
                                "layer {i} ({path}) has no diff id in the config to verify it by"
                            ),
                        )
                    })?,
                };
                layers.push(LayerRef {
                    digest,
                    media_type: "application/vnd.docker.image.rootfs.diff.tar".into(),
                    location: path.clone(),
                });
            }
            out.push(Image {
                reference,
                repository,
                config_digest: id.clone(),
                digest: id,
                config,
                layers,
            });
        }
        Ok(out)
    }
}

fn blob_path(image: &str, digest: &str) -> Result<String, ImageError> {
    match digest.split_once(':') {
        Some((alg, hex))
            if !alg.is_empty()
                && !hex.is_empty()
                && alg.bytes().all(|b| b.is_ascii_alphanumeric())
                && hex.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            Ok(format!("blobs/{alg}/{hex}"))
        }
        _ => Err(ImageError::invalid(
            image,
            format!("`{digest}` is not a digest"),
        )),
    }
}

impl LayerStore for LocalStore {
    fn open(&self, image: &Image, layer: &LayerRef) -> Result<Box<dyn Read + Send>, ImageError> {
        self.open_member(&layer.location)
            .map(|(r, _)| r)
            .map_err(|source| ImageError::Io {
                image: image.reference.clone(),
                what: format!("layer {}", layer.location),
                source,
            })
    }
}
