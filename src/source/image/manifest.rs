//! Manifests, indexes and image configs: the JSON that says what an image
//! is. Shared by every store, so an archive, a layout and a registry agree
//! on which media types are images, which are indexes, and which are
//! refused (named in the error, never guessed).

use serde::{Deserialize, Serialize};

use super::ImageError;
use crate::blob::ConfigField;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Every manifest media type we can read (sent as `Accept` to registries).
pub const ACCEPTED: &[&str] = &[OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_LIST];

/// A content descriptor (`mediaType`, `digest`, `size`, …).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: i64,
    #[serde(default)]
    pub platform: Option<Platform>,
    #[serde(default)]
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default)]
    pub urls: Option<Vec<String>>,
}

/// An OS/architecture pair (`--platform linux/arm64/v8`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl Platform {
    /// Parses `os/arch[/variant]`.
    pub fn parse(s: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts[..] {
            [os, arch] | [os, arch, _] if !os.is_empty() && !arch.is_empty() => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: parts.get(2).map(|v| v.to_string()),
            }),
            _ => Err(format!(
                "`{s}` is not a platform (examples: linux/amd64, linux/arm64/v8)"
            )),
        }
    }

    /// The machine we run on, in OCI's words.
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform {
            os: std::env::consts::OS.to_string(),
            architecture: architecture.to_string(),
            variant: None,
        }
    }

    /// True if an index entry's platform is this one (a variant is compared
    /// only when asked for).
    pub fn matches(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && (self.variant.is_none() || self.variant == other.variant)
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// A parsed manifest: an image, or an index of manifests.
#[derive(Clone, Debug)]
pub enum Manifest {
    Image {
        config: Descriptor,
        layers: Vec<Descriptor>,
    },
    Index {
        manifests: Vec<Descriptor>,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    schema_version: Option<i64>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
}

/// Parses a manifest or index. `declared` is the media type the referrer
/// (registry `Content-Type`, index descriptor) gave, if any; the document's
/// own `mediaType` wins when both exist. Anything that is not an OCI or
/// Docker v2 image manifest or index is refused by name.
pub fn parse_manifest(
    image: &str,
    declared: Option<&str>,
    data: &[u8],
) -> Result<Manifest, ImageError> {
    let raw: RawManifest = serde_json::from_slice(data).map_err(|source| ImageError::Json {
        image: image.to_string(),
        what: "manifest".to_string(),
        source,
    })?;
    let declared = declared.filter(|d| !d.is_empty() && *d != "application/json");
    let media_type = raw.media_type.clone().or(declared.map(str::to_string));
    let unknown = |media_type: String| ImageError::UnknownMediaType {
        image: image.to_string(),
        media_type,
    };
    match media_type.as_deref() {
        Some(OCI_MANIFEST) | Some(DOCKER_MANIFEST) => image_of(image, raw),
        Some(OCI_INDEX) | Some(DOCKER_LIST) => index_of(image, raw),
        Some(other) => Err(unknown(other.to_string())),
        // OCI allows an image manifest without `mediaType`: tell by shape.
        None if raw.schema_version == Some(2) && raw.manifests.is_some() => index_of(image, raw),
        None if raw.schema_version == Some(2) && raw.config.is_some() => image_of(image, raw),
        None => Err(unknown(format!(
            "(none; schemaVersion {})",
            raw.schema_version
                .map_or("missing".to_string(), |v| v.to_string())
        ))),
    }
}

fn image_of(image: &str, raw: RawManifest) -> Result<Manifest, ImageError> {
    let config = raw
        .config
        .ok_or_else(|| ImageError::invalid(image, "image manifest has no config"))?;
    Ok(Manifest::Image {
        config,
        layers: raw.layers.unwrap_or_default(),
    })
}

fn index_of(image: &str, raw: RawManifest) -> Result<Manifest, ImageError> {
    let manifests = raw
        .manifests
        .ok_or_else(|| ImageError::invalid(image, "index has no manifests"))?;
    Ok(Manifest::Index { manifests })
}

/// The index entries to scan: those of `platform`, or every image entry
/// (`all`). Attestation manifests (`unknown/unknown`) are never images.
pub fn select_platforms<'a>(
    image: &str,
    manifests: &'a [Descriptor],
    platform: &Platform,
    all: bool,
) -> Result<Vec<&'a Descriptor>, ImageError> {
    let images: Vec<&Descriptor> = manifests
        .iter()
        .filter(|d| d.platform.as_ref().is_none_or(|p| p.os != "unknown"))
        .collect();
    if all {
        return Ok(images);
    }
    // An entry without a platform (an OCI layout's single image) matches.
    if let Some(d) = images
        .iter()
        .find(|d| d.platform.as_ref().is_none_or(|p| platform.matches(p)))
    {
        return Ok(vec![d]);
    }
    let available: Vec<String> = images
        .iter()
        .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
        .collect();
    Err(ImageError::NoPlatform {
        image: image.to_string(),
        platform: platform.to_string(),
        available: available.join(", "),
    })
}

/// A scannable part of the image config: which one, and the bytes scanned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigPart {
    pub field: ConfigField,
    pub data: Vec<u8>,
}

/// One `history` entry.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct History {
    #[serde(default)]
    pub created_by: Option<String>,
    #[serde(default)]
    pub empty_layer: bool,
}

/// The parts of an image config we scan or report (serialised as is in
/// the sweep cache's image entries, not in the config's own shape).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct ImageConfig {
    pub env: Vec<String>,
    /// Sorted by key.
    pub labels: Vec<(String, String)>,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub history: Vec<History>,
    /// `rootfs.diff_ids`: digests of the uncompressed layers.
    pub diff_ids: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RawRunConfig {
    #[serde(default)]
    env: Option<Vec<String>>,
    #[serde(default)]
    labels: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default)]
    cmd: Option<Vec<String>>,
    #[serde(default)]
    entrypoint: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
struct RawRootfs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    config: Option<RawRunConfig>,
    #[serde(default)]
    history: Option<Vec<History>>,
    #[serde(default)]
    rootfs: Option<RawRootfs>,
}

impl ImageConfig {
    pub fn parse(image: &str, data: &[u8]) -> Result<ImageConfig, ImageError> {
        let raw: RawConfig = serde_json::from_slice(data).map_err(|source| ImageError::Json {
            image: image.to_string(),
            what: "image config".to_string(),
            source,
        })?;
        let run = raw.config.unwrap_or_default();
        Ok(ImageConfig {
            env: run.env.unwrap_or_default(),
            labels: run.labels.unwrap_or_default().into_iter().collect(),
            cmd: run.cmd,
            entrypoint: run.entrypoint,
            history: raw.history.unwrap_or_default(),
            diff_ids: raw.rootfs.unwrap_or_default().diff_ids,
        })
    }

    /// The Dockerfile step that made layer `index`: history entries with
    /// `empty_layer: true` (ENV, LABEL, ARG …) made no layer and do not
    /// count.
    pub fn created_by(&self, index: usize) -> Option<&str> {
        self.history
            .iter()
            .filter(|h| !h.empty_layer)
            .nth(index)
            .and_then(|h| h.created_by.as_deref())
    }

    /// Env entries, labels (`KEY=VALUE`), Cmd and Entrypoint (arguments
    /// joined by spaces) and every history step: build args leak into
    /// `created_by` as `|1 TOKEN=… /bin/sh -c …`.
    pub fn parts(&self) -> Vec<ConfigPart> {
        let mut out = Vec::new();
        for (i, e) in self.env.iter().enumerate() {
            out.push(part(ConfigField::Env(i), e.clone()));
        }
        for (k, v) in &self.labels {
            out.push(part(ConfigField::Label(k.clone()), format!("{k}={v}")));
        }
        if let Some(c) = &self.cmd {
            out.push(part(ConfigField::Cmd, c.join(" ")));
        }
        if let Some(e) = &self.entrypoint {
            out.push(part(ConfigField::Entrypoint, e.join(" ")));
        }
        for (i, h) in self.history.iter().enumerate() {
            if let Some(c) = &h.created_by {
                out.push(part(ConfigField::History(i), c.clone()));
            }
        }
        out
    }
}

fn part(field: ConfigField, text: String) -> ConfigPart {
    ConfigPart {
        field,
        data: text.into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_by_skips_history_entries_that_made_no_layer() {
        let cfg = ImageConfig::parse(
            "t",
            br#"{"history":[{"created_by":"ADD base"},{"created_by":"ENV A=1","empty_layer":true},
                {"created_by":"RUN make"}]}"#,
        )
        .unwrap();
        assert_eq!(cfg.created_by(0), Some("ADD base"));
        assert_eq!(cfg.created_by(1), Some("RUN make"));
        assert_eq!(cfg.created_by(2), None);
    }

    #[test]
    fn unknown_manifest_media_type_is_refused_by_name() {
        let err = parse_manifest(
            "img",
            None,
            br#"{"schemaVersion":1,"mediaType":"application/vnd.docker.distribution.manifest.v1+prettyjws"}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("manifest.v1+prettyjws"), "{err}");
    }

    #[test]
    fn platform_selection_prefers_the_asked_platform_and_skips_attestations() {
        let idx: Vec<Descriptor> = serde_json::from_str(
            r#"[{"digest":"sha256:a","platform":{"os":"linux","architecture":"arm64","variant":"v8"}},
                {"digest":"sha256:b","platform":{"os":"linux","architecture":"amd64"}},
                {"digest":"sha256:c","platform":{"os":"unknown","architecture":"unknown"}}]"#,
        )
        .unwrap();
        let amd = Platform::parse("linux/amd64").unwrap();
        assert_eq!(
            select_platforms("i", &idx, &amd, false).unwrap()[0].digest,
            "sha256:b"
        );
        assert_eq!(select_platforms("i", &idx, &amd, true).unwrap().len(), 2);
        let s390 = Platform::parse("linux/s390x").unwrap();
        let err = select_platforms("i", &idx, &s390, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("linux/arm64/v8, linux/amd64"), "{err}");
    }
}
