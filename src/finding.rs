//! `Finding`: the JSON contract. One object per secret found; `--format json`
//! writes an array of them, `--format jsonl` one per line. Field order and
//! names are stable; new fields are only ever added.

use serde::{Deserialize, Serialize};

use crate::rules::{Confidence, Severity};

/// One secret found. Every field is documented because it is the contract
/// other programs parse.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Finding {
    /// Stable, kebab-case id of the rule that matched (e.g. `aws-access-key-id`).
    pub rule_id: String,
    /// Human-readable rule name.
    pub rule_name: String,
    /// `low`, `medium`, `high` or `critical`: what an attacker gets with it.
    pub severity: Severity,
    /// `low`, `medium` or `high`: how sure we are that it is a live secret.
    /// The rule's confidence, lowered to `low` when its validator or a
    /// context filter finds this value doubtful.
    pub confidence: Confidence,
    /// Where the secret is: a path as given on the command line (or found
    /// under it), `-` for standard input, the path in the repository for Git;
    /// `null` for a commit or tag message and for an unreachable Git blob.
    pub path: Option<String>,
    /// 1-based line of the secret's first character.
    pub line: usize,
    /// 1-based column (in characters) of the secret's first character.
    pub column: usize,
    /// 1-based line of the position just past the secret.
    pub end_line: usize,
    /// 1-based column (in characters) just past the secret's last character
    /// (exclusive, as in SARIF).
    pub end_column: usize,
    /// The line holding the secret, the secret masked, clipped around it.
    pub snippet: String,
    /// The raw secret; present only with `--show-secrets`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Hex SHA-256 of rule id, secret and origin identity (never offsets):
    /// stable across runs and when lines move; used by baselines and SARIF.
    pub fingerprint: String,
    /// The raw secret, never serialised: the reporters use it to mask this
    /// secret wherever else it appears in the run's output.
    #[serde(skip)]
    pub raw_secret: Vec<u8>,
    /// Shannon entropy of the secret in bits per byte.
    pub entropy: f64,
    /// Decoding steps that led to the secret (`base64`, …), outermost first;
    /// empty when it was found in the raw bytes.
    pub decoded: Vec<String>,
    /// Git provenance (`leakhound git`): the first commit that introduced
    /// the secret: `{id, author, email, date, message}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<crate::blob::CommitMeta>,
    /// Container image provenance (`leakhound image`, `leakhound registry`):
    /// `{reference, digest, layer_index, layer_digest, created_by,
    /// removed_in_layer}`; `path` is then the path inside the layer, or the
    /// config part (`config:Env[3]`, `config:Labels.KEY`, `config:Cmd`,
    /// `config:Entrypoint`, `config:history[5].created_by`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<crate::blob::ImageMeta>,
    /// The Kubernetes object the secret was found in:
    /// `{kind, namespace, name, key, type, path}` (see `KubernetesRef`);
    /// absent for secrets outside Kubernetes manifests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<crate::blob::KubernetesRef>,
    /// Byte range of the secret in the unit that was scanned (its encoded
    /// form for a decoded secret), never serialised: streaming sources
    /// place findings in their stream with it, and the cross-source parity
    /// test compares positions with it.
    #[serde(skip)]
    pub span: std::ops::Range<usize>,
    /// The log line's own timestamp (RFC 3339, as the container runtime
    /// wrote it), for container logs read by `logs --pods-dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
}

impl Finding {
    /// Sort key for deterministic output: image (name, digest) and layer,
    /// path, commit, line, column, then rule id.
    #[allow(clippy::type_complexity)]
    pub fn sort_key(
        &self,
    ) -> (
        Option<(&str, &str, Option<usize>)>,
        Option<&str>,
        Option<&str>,
        usize,
        usize,
        &str,
    ) {
        (
            self.image
                .as_ref()
                .map(|i| (i.reference.as_str(), i.digest.as_str(), i.layer_index)),
            self.path.as_deref(),
            self.commit.as_ref().map(|c| c.id.as_str()),
            self.line,
            self.column,
            &self.rule_id,
        )
    }

    /// Where to point a person: the path, or the commit for a message.
    pub fn location(&self) -> String {
        match (&self.path, &self.commit) {
            (Some(p), _) => p.clone(),
            (None, Some(c)) => format!("commit {}", &c.id[..c.id.len().min(12)]),
            (None, None) => "-".to_string(),
        }
    }
}
