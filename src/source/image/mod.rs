//! Container images: what an image is made of (manifest, config, ordered
//! layers) and where its blobs come from (a `docker save` tar, an OCI
//! layout directory or tarball, or a registry), read without unpacking
//! anything to disk.
//!
//! - `manifest`: the OCI/Docker manifest and index JSON, media types and
//!   platform selection; the image config and its scannable parts.
//! - `layer`: one layer streamed through its decompressor (sniffed, not
//!   trusted from the media type) and tar reader, its digest verified as
//!   the bytes go by, whiteouts recorded.
//! - `local`: `docker save` archives and OCI layouts (directory or tar).
//! - `registry`: pulls with `oci-client` (auth, TLS, platforms, catalog),
//!   bridging its async blob streams to the synchronous tar reader.
//! - `shard`: which repositories one process of a sharded sweep takes.
//! - `plan`: a byte-balanced split made before the shards start.
//! - `cache`: what scanning layers and configs found, for incremental sweeps.

pub mod cache;
pub mod layer;
pub mod local;
pub mod manifest;
pub mod plan;
pub mod registry;
pub mod scan;
pub mod shard;

use std::io::Read;

pub use manifest::{ConfigPart, ImageConfig, Platform};

/// Why an image (or one of its layers) could not be read. Every variant
/// names the image, and the layer when there is one.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{image}: cannot read {what}: {source}")]
    Io {
        image: String,
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{image}: {what} is not valid JSON: {source}")]
    Json {
        image: String,
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{image}: unsupported manifest media type `{media_type}`")]
    UnknownMediaType { image: String, media_type: String },
    #[error("{image}: {message}")]
    Invalid { image: String, message: String },
    #[error("{image}: no manifest for platform {platform} (the index lists: {available})")]
    NoPlatform {
        image: String,
        platform: String,
        available: String,
    },
    #[error("{image}: registry: {message}")]
    Registry { image: String, message: String },
    /// A registry request got no (whole) answer within the deadline.
    #[error("{image}: registry: {message}")]
    Timeout { image: String, message: String },
}

impl ImageError {
    /// A network deadline passed (the notice kind is `Timeout`).
    pub fn is_timeout(&self) -> bool {
        matches!(self, ImageError::Timeout { .. })
    }

    pub(crate) fn invalid(image: &str, message: impl Into<String>) -> Self {
        ImageError::Invalid {
            image: image.to_string(),
            message: message.into(),
        }
    }
}

/// One layer as a manifest lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerRef {
    /// The digest the streamed bytes must hash to (`sha256:…`): the
    /// manifest's descriptor digest, or for a legacy `docker save` layer
    /// (an uncompressed `layer.tar`) its diff id.
    pub digest: String,
    pub media_type: String,
    /// Where a local store finds it (path inside the archive or layout).
    pub location: String,
}

/// An image ready to scan: who it is, its parsed config and its layers in
/// manifest order.
#[derive(Clone, Debug)]
pub struct Image {
    /// As the user named it (or as the archive records it).
    pub reference: String,
    /// The name without tag or digest: part of fingerprints.
    pub repository: String,
    /// Manifest digest, or the image id for a legacy `docker save` image.
    pub digest: String,
    /// The config blob's digest (for a legacy `docker save` image, the
    /// image id): the cache key of its parts' findings.
    pub config_digest: String,
    pub config: ImageConfig,
    pub layers: Vec<LayerRef>,
}

/// Opens layer blobs for reading, streaming. Implemented by the local
/// stores and the registry client.
pub trait LayerStore: Send + Sync {
    /// A reader over the layer's stored (usually compressed) bytes.
    fn open(&self, image: &Image, layer: &LayerRef) -> Result<Box<dyn Read + Send>, ImageError>;
}

/// `host/repo:tag@digest` without tag and digest (the part that stays when
/// an image is re-tagged or rebuilt).
pub fn repository_of(reference: &str) -> String {
    let no_digest = reference.split('@').next().unwrap_or(reference);
    // A `:` after the last `/` starts the tag (a `:` before it is a port).
    match no_digest.rfind(':') {
        Some(i) if !no_digest[i..].contains('/') => no_digest[..i].to_string(),
        _ => no_digest.to_string(),
    }
}

/// Hex SHA-256 of `data`, as `sha256:…`.
pub fn sha256_digest(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("sha256:{}", hex(&Sha256::digest(data)))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::repository_of;

    #[test]
    fn repository_drops_tag_and_digest_but_keeps_registry_port() {
        assert_eq!(
            repository_of("localhost:5000/app:1.2"),
            "localhost:5000/app"
        );
        assert_eq!(repository_of("localhost:5000/app"), "localhost:5000/app");
        assert_eq!(repository_of("app@sha256:abcd"), "app");
        assert_eq!(repository_of("ghcr.io/o/app:v1@sha256:ab"), "ghcr.io/o/app");
    }
}
