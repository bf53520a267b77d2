//! `Blob` and `Origin`: bytes to scan and where they came from.
//!
//! `Origin` is the only type that knows what a "file", "stdin", "commit" or
//! "blob" is; the engine and reporters treat every blob alike and ask the
//! origin for the path, the fingerprint identity and the provenance objects
//! (`commit`) that findings carry.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

/// A Git commit as findings report it (`commit` in the JSON contract).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
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

/// The Kubernetes object a secret was found in (`kubernetes` in the JSON
/// contract): a Secret's key, a Helm release's inner path, or an object kept
/// in a `last-applied-configuration` annotation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
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
}

impl Origin {
    /// The path reported for findings in this blob (`None`: a commit
    /// message or an unreachable blob, which have no path).
    pub fn display_path(&self) -> Option<&str> {
        match self {
            Origin::File { path } => Some(path),
            Origin::Stdin => Some("-"),
            Origin::GitBlob { path, .. } => path.as_deref(),
            Origin::GitMessage { .. } => None,
        }
    }

    /// The commit findings in this blob are attributed to.
    pub fn commit(&self) -> Option<&CommitMeta> {
        match self {
            Origin::GitBlob { commit, .. } => commit.as_deref(),
            Origin::GitMessage { commit, .. } => Some(commit),
            _ => None,
        }
    }

    /// Identity of the origin used in fingerprints: stable across runs and
    /// independent of offsets, so a finding keeps its fingerprint when lines
    /// move. A Git blob is identified by its path (a secret that stays at
    /// the same path keeps its fingerprint across commits).
    pub fn identity(&self) -> String {
        match self {
            Origin::File { path } => format!("file:{path}"),
            Origin::Stdin => "stdin".to_string(),
            Origin::GitBlob {
                path: Some(path), ..
            } => format!("git:{path}"),
            Origin::GitBlob {
                blob, path: None, ..
            } => format!("git-blob:{blob}"),
            Origin::GitMessage { tag: Some(tag), .. } => format!("git-tag:{tag}"),
            Origin::GitMessage { commit, .. } => format!("git-commit:{}", commit.id),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::GitBlob {
                blob, path: None, ..
            } => write!(f, "blob {blob}"),
            Origin::GitMessage { tag: Some(t), .. } => write!(f, "tag {t} message"),
            Origin::GitMessage { commit, .. } => write!(f, "commit {} message", commit.id),
            other => f.write_str(other.display_path().unwrap_or("-")),
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
