//! `Blob` and `Origin`: bytes to scan and where they came from.
//!
//! `Origin` is the only type that knows what a "file", "stdin", "commit",
//! "blob", "layer" or "image config" is; the engine and reporters treat every
//! blob alike and ask the origin for the path, the fingerprint identity and
//! the provenance objects (`commit`, `image`) that findings carry.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A Git commit as findings report it (`commit` in the JSON contract).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CommitMeta {
    /// Full hex object id.
    pub id: String,
    pub author: String,
    pub email: String,
    /// Author date, RFC 3339 in the author's time zone.
    pub date: String,
    /// The whole commit message.
    pub message: String,
}

/// Container image provenance as findings report it (`image` in the JSON
/// contract).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ImageMeta {
    /// The image as named: the registry reference given (with ` (os/arch)`
    /// under `--all-platforms`); for an archive or layout, the name it
    /// records (`RepoTags`, `io.containerd.image.name`), else its path with
    /// `:TAG` from `org.opencontainers.image.ref.name` (or `@DIGEST` when it
    /// holds several unnamed images).
    pub reference: String,
    /// The manifest digest (`sha256:…`); for a `docker save` archive without
    /// manifests, the image id (the config's digest).
    pub digest: String,
    /// 0-based index of the layer in manifest order; `null` for the config.
    pub layer_index: Option<usize>,
    /// The layer's digest as the manifest names it (compressed bytes); for a
    /// legacy `docker save` layer, its diff id.
    pub layer_digest: Option<String>,
    /// The Dockerfile step (config `history[].created_by`) that made the
    /// layer; `null` when the history does not say.
    pub created_by: Option<String>,
    /// 0-based index of the later layer whose whiteout deleted this file
    /// (it is still shipped in the lower layer); `null` if never deleted.
    pub removed_in_layer: Option<usize>,
}

/// The Kubernetes object a secret was found in (`kubernetes` in the JSON
/// contract): a Secret's key, a Helm release's inner path, or an object kept
/// in a `last-applied-configuration` annotation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KubernetesRef {
    /// `Secret`, `ConfigMap` (Helm's ConfigMap storage), ...
    pub kind: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// The `data`/`stringData` key that holds the secret.
    pub key: Option<String>,
    /// The Secret's `type` (`Opaque`, `kubernetes.io/dockerconfigjson`, ...).
    #[serde(rename = "type")]
    pub secret_type: Option<String>,
    /// Where inside the key's value: a Helm release's inner path
    /// (`values.stripe.apiKey`, `manifest.Secret/db.data.password`), a
    /// dockerconfigjson entry (`auths.registry.io.auth`), or
    /// `last-applied-configuration` for the copy of an object that kubectl
    /// keeps in that annotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The container of a pod template (`leakhound cluster`) whose literal
    /// `env` value, `args` or `command` holds the secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The container's environment variable holding the secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// A container's log stream (`leakhound logs --pods-dir`): `kind` is
    /// `Pod`, `name` the pod, and these fields name the container.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub log: Option<PodLog>,
}

/// The container a log line came from, as the kubelet's log path
/// `<namespace>_<pod>_<uid>/<container>/<restart>.log` names it (the
/// namespace is `KubernetesRef::namespace`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PodLog {
    pub pod: String,
    pub pod_uid: String,
    pub container: String,
    /// The container's restart count (the log file's number).
    pub restart: u32,
    /// `stdout` or `stderr`, as the log line says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
}

/// Where a blob's bytes came from.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    /// A file on disk, named by the path as the user gave it (relative paths
    /// stay relative so reports are stable across checkouts).
    File { path: String },
    /// Standard input (`-`).
    Stdin,
    /// A Git blob: `path` where it was introduced (none for an unreachable
    /// blob), `commit` the first commit that introduced it (none for a
    /// staged or unreachable blob).
    GitBlob {
        blob: String,
        path: Option<String>,
        commit: Option<Arc<CommitMeta>>,
    },
    /// The message of a commit, or of an annotated tag (`tag` names it) with
    /// the commit it points at.
    GitMessage {
        commit: Arc<CommitMeta>,
        tag: Option<String>,
    },
    /// A regular file in an image layer (`path` inside the layer, no leading
    /// `/`). `repository` is the image name without tag or digest: a secret
    /// at the same path keeps its fingerprint when the image is re-tagged or
    /// rebuilt.
    Image {
        repository: Arc<str>,
        path: String,
        image: Arc<ImageMeta>,
    },
    /// A part of an image's config (an `Env` entry, a label, `Cmd`, …);
    /// reported with the path `config:Env[3]`.
    ImageConfig {
        repository: Arc<str>,
        field: ConfigField,
        image: Arc<ImageMeta>,
    },
    /// A file inside an archive found at `archive` (never itself an
    /// `ArchiveEntry`: nested archives extend `entry`, which is the path
    /// inside the outermost archive, each inner archive's entries after a
    /// `!`: `lib/app.jar!config/app.properties`). Findings keep the
    /// archive's provenance (commit, image, object) and report the path
    /// `ARCHIVE!ENTRY`.
    ArchiveEntry { archive: Arc<Origin>, entry: String },
    /// An object read from a cluster's API (`leakhound cluster`): `path` is
    /// `Kind/name` for a whole object (a Secret, Helm's ConfigMap storage;
    /// the Kubernetes decoder names the key) or `Kind/name:field` for one
    /// field (`ConfigMap/app:data[KEY]`,
    /// `Deployment/api:containers[app].env[DB_PASSWORD]`); `object` is the
    /// provenance findings carry when the decoder gives none.
    Cluster {
        path: String,
        object: Arc<KubernetesRef>,
    },
    /// A container's log file under the kubelet's pods directory; `path` is
    /// the file read (a rotated name when the line was read there).
    PodLog {
        path: String,
        kubernetes: Arc<KubernetesRef>,
    },
}

impl Origin {
    /// The path reported for findings in this blob (`None`: a commit
    /// message or an unreachable blob, which have no path).
    pub fn display_path(&self) -> Option<Cow<'_, str>> {
        match self {
            Origin::File { path } => Some(path.into()),
            Origin::Stdin => Some("-".into()),
            Origin::GitBlob { path, .. } => path.as_deref().map(Cow::from),
            Origin::GitMessage { .. } => None,
            Origin::Image { path, .. } => Some(path.into()),
            Origin::ImageConfig { field, .. } => Some(field.to_string().into()),
            Origin::ArchiveEntry { archive, entry } => {
                Some(format!("{}!{entry}", archive.name()).into())
            }
            Origin::Cluster { path, .. } => Some(path.into()),
            Origin::PodLog { path, .. } => Some(path.into()),
        }
    }

    /// The Kubernetes object a blob read from a cluster belongs to, or the
    /// pod and container of a log line.
    pub fn kubernetes(&self) -> Option<&KubernetesRef> {
        match self {
            Origin::Cluster { object, .. } => Some(object),
            Origin::PodLog { kubernetes, .. } => Some(kubernetes),
            Origin::ArchiveEntry { archive, .. } => archive.kubernetes(),
            _ => None,
        }
    }

    /// The image findings in this blob are attributed to.
    pub fn image(&self) -> Option<&ImageMeta> {
        match self {
            Origin::Image { image, .. } | Origin::ImageConfig { image, .. } => Some(image),
            Origin::ArchiveEntry { archive, .. } => archive.image(),
            _ => None,
        }
    }

    /// The commit findings in this blob are attributed to.
    pub fn commit(&self) -> Option<&CommitMeta> {
        match self {
            Origin::GitBlob { commit, .. } => commit.as_deref(),
            Origin::GitMessage { commit, .. } => Some(commit),
            Origin::ArchiveEntry { archive, .. } => archive.commit(),
            _ => None,
        }
    }

    /// The origin of `entry`, a file inside an archive found at this
    /// origin (an archive inside an archive extends the entry path).
    pub fn archive_entry(self: &Arc<Origin>, entry: &str) -> Origin {
        match &**self {
            Origin::ArchiveEntry {
                archive,
                entry: outer,
            } => Origin::ArchiveEntry {
                archive: archive.clone(),
                entry: format!("{outer}!{entry}"),
            },
            _ => Origin::ArchiveEntry {
                archive: self.clone(),
                entry: entry.to_string(),
            },
        }
    }

    /// The path, or for a unit without one (a commit message, an
    /// unreachable blob) its description.
    fn name(&self) -> Cow<'_, str> {
        self.display_path()
            .unwrap_or_else(|| Cow::Owned(self.to_string()))
    }

    /// The same provenance under another path (for fingerprint identity).
    fn with_path(&self, path: String) -> Origin {
        match self {
            Origin::GitBlob { blob, commit, .. } => Origin::GitBlob {
                blob: blob.clone(),
                path: Some(path),
                commit: commit.clone(),
            },
            Origin::Image {
                repository, image, ..
            }
            | Origin::ImageConfig {
                repository, image, ..
            } => Origin::Image {
                repository: repository.clone(),
                path,
                image: image.clone(),
            },
            Origin::Cluster { object, .. } => Origin::Cluster {
                path,
                object: object.clone(),
            },
            Origin::PodLog { kubernetes, .. } => Origin::PodLog {
                path,
                kubernetes: kubernetes.clone(),
            },
            _ => Origin::File { path },
        }
    }

    /// Identity of the origin used in fingerprints: stable across runs and
    /// independent of offsets, so a finding keeps its fingerprint when lines
    /// move. A file and a Git blob are identified by their path alone
    /// (without a leading `./`), so a secret keeps its fingerprint across
    /// commits, and a baseline written by `leakhound scan .` in a
    /// repository's root also serves `leakhound git` there. An image file or
    /// config part is identified by repository and path (not digest or tag,
    /// which change with every build).
    pub fn identity(&self) -> String {
        match self {
            Origin::File { path }
            | Origin::GitBlob {
                path: Some(path), ..
            } => path.strip_prefix("./").unwrap_or(path).to_string(),
            Origin::Stdin => "stdin".to_string(),
            Origin::GitBlob {
                blob, path: None, ..
            } => format!("git-blob:{blob}"),
            Origin::GitMessage { tag: Some(tag), .. } => format!("git-tag:{tag}"),
            Origin::GitMessage { commit, .. } => format!("git-commit:{}", commit.id),
            Origin::Image {
                repository, path, ..
            } => image_identity(repository, path),
            Origin::ImageConfig {
                repository, field, ..
            } => image_identity(repository, &field.to_string()),
            // What it was when entries took their archive's provenance
            // with the path `a.zip!b`: baselines stay valid.
            Origin::ArchiveEntry { archive, entry } => archive
                .with_path(format!("{}!{entry}", archive.name()))
                .identity(),
            Origin::Cluster { path, object } => {
                format!("k8s:{}/{path}", object.namespace.as_deref().unwrap_or("-"))
            }
            // The container, not the file: rotation and restarts keep the
            // fingerprint, so a secret logged again is a repeat.
            Origin::PodLog { kubernetes: k, .. } => format!(
                "pod-log:{}/{}/{}",
                k.namespace.as_deref().unwrap_or_default(),
                k.name.as_deref().unwrap_or_default(),
                k.log
                    .as_ref()
                    .map(|l| l.container.as_str())
                    .unwrap_or_default()
            ),
        }
    }
}

/// Fingerprint identity of an image file or config part: `Origin::identity`
/// of `Origin::Image`, for findings re-attributed to another image that
/// shares the layer.
pub fn image_identity(repository: &str, path: &str) -> String {
    format!("image:{repository}:{path}")
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::GitBlob {
                blob, path: None, ..
            } => write!(f, "blob {blob}"),
            Origin::GitMessage { tag: Some(t), .. } => write!(f, "tag {t} message"),
            Origin::GitMessage { commit, .. } => write!(f, "commit {} message", commit.id),
            Origin::Image { path, image, .. } => match image.layer_index {
                Some(i) => write!(f, "{} layer {i} {path}", image.reference),
                None => write!(f, "{} {path}", image.reference),
            },
            Origin::ImageConfig { field, image, .. } => write!(f, "{} {field}", image.reference),
            Origin::ArchiveEntry { archive, entry } => write!(f, "{archive}!{entry}"),
            Origin::Cluster { path, object } => match &object.namespace {
                Some(ns) => write!(f, "{path} (namespace {ns})"),
                None => f.write_str(path),
            },
            other => f.write_str(other.display_path().as_deref().unwrap_or("-")),
        }
    }
}

/// A part of an image config that is scanned, as findings name it
/// (`config:Env[3]`, `config:Labels.KEY`, `config:Cmd`,
/// `config:Entrypoint`, `config:history[2].created_by`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConfigField {
    /// The index of the `Env` entry.
    Env(usize),
    /// A label's key.
    Label(String),
    Cmd,
    Entrypoint,
    /// The index of the `history` entry whose `created_by` it is.
    History(usize),
}

impl fmt::Display for ConfigField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigField::Env(i) => write!(f, "config:Env[{i}]"),
            ConfigField::Label(k) => write!(f, "config:Labels.{k}"),
            ConfigField::Cmd => f.write_str("config:Cmd"),
            ConfigField::Entrypoint => f.write_str("config:Entrypoint"),
            ConfigField::History(i) => write!(f, "config:history[{i}].created_by"),
        }
    }
}

/// Bytes plus their origin.
#[derive(Clone, Debug)]
pub struct Blob {
    pub origin: Origin,
    pub data: Vec<u8>,
}

impl Blob {
    pub fn new(origin: Origin, data: Vec<u8>) -> Self {
        Blob { origin, data }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit() -> Arc<CommitMeta> {
        Arc::new(CommitMeta {
            id: "c0ffee".into(),
            author: "a".into(),
            email: "a@example.com".into(),
            date: "2026-01-01T00:00:00+00:00".into(),
            message: "m".into(),
        })
    }

    #[test]
    fn an_archive_entry_keeps_its_archives_provenance_and_reports_the_joined_path() {
        let blob = Arc::new(Origin::GitBlob {
            blob: "b1".into(),
            path: Some("./lib/app.jar".into()),
            commit: Some(commit()),
        });
        let inner = blob.archive_entry("config.zip");
        let entry = Arc::new(inner).archive_entry("app.properties");
        let Origin::ArchiveEntry { archive, entry: e } = &entry else {
            panic!("not an entry: {entry:?}");
        };
        // Nested archives extend the entry; the archive stays the blob.
        assert_eq!(**archive, *blob);
        assert_eq!(e, "config.zip!app.properties");
        assert_eq!(
            entry.display_path().as_deref(),
            Some("./lib/app.jar!config.zip!app.properties")
        );
        assert_eq!(entry.commit().map(|c| c.id.as_str()), Some("c0ffee"));
        // The fingerprint identity of the path-encoded origin it replaces.
        assert_eq!(entry.identity(), "lib/app.jar!config.zip!app.properties");
    }

    #[test]
    fn entries_of_archives_without_a_path_are_named_by_their_description() {
        let unreachable = Arc::new(Origin::GitBlob {
            blob: "b2".into(),
            path: None,
            commit: None,
        });
        let entry = unreachable.archive_entry("x.env");
        assert_eq!(entry.display_path().as_deref(), Some("blob b2!x.env"));
        assert_eq!(entry.to_string(), "blob b2!x.env");
        let image = Arc::new(Origin::Image {
            repository: "acme/api".into(),
            path: "app/lib.tgz".into(),
            image: Arc::new(ImageMeta {
                reference: "acme/api:1".into(),
                layer_index: Some(2),
                ..ImageMeta::default()
            }),
        });
        let entry = image.archive_entry("lib/.env");
        assert_eq!(entry.identity(), "image:acme/api:app/lib.tgz!lib/.env");
        assert_eq!(entry.image().and_then(|i| i.layer_index), Some(2));
        assert_eq!(entry.to_string(), "acme/api:1 layer 2 app/lib.tgz!lib/.env");
    }

    #[test]
    fn config_fields_render_as_the_config_paths_reports_have_always_used() {
        let image = Arc::new(ImageMeta {
            reference: "acme/api:1".into(),
            ..ImageMeta::default()
        });
        for (field, path) in [
            (ConfigField::Env(3), "config:Env[3]"),
            (
                ConfigField::Label("org.key".into()),
                "config:Labels.org.key",
            ),
            (ConfigField::Cmd, "config:Cmd"),
            (ConfigField::Entrypoint, "config:Entrypoint"),
            (ConfigField::History(2), "config:history[2].created_by"),
        ] {
            let origin = Origin::ImageConfig {
                repository: "acme/api".into(),
                field,
                image: image.clone(),
            };
            assert_eq!(origin.display_path().as_deref(), Some(path));
            assert_eq!(origin.identity(), image_identity("acme/api", path));
            assert_eq!(origin.to_string(), format!("acme/api:1 {path}"));
            assert!(origin.image().is_some() && origin.commit().is_none());
        }
    }
}
