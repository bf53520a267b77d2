//! The rule file format: what users and `rules/*.toml` write.
//!
//! This is data only; compiling and validating it lives in `compile.rs`.

use serde::{Deserialize, Serialize};

/// One `rules/*.toml` file: a list of `[[rules]]` tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
}

/// A rule as written in TOML. Field meanings are documented in `docs/rules.md`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub id: String,
    pub name: String,
    pub description: String,
    pub keywords: Vec<String>,
    pub regex: String,
    #[serde(default)]
    pub min_entropy: Option<f64>,
    pub severity: Severity,
    pub confidence: Confidence,
    /// The rule knows a secret only by the name it is assigned to and its
    /// shape (`password = …`): the strict context filters apply (digests,
    /// test values, UUIDs, minified lines; see `engine::context`).
    #[serde(default)]
    pub generic: bool,
    /// Checksum or structure check run on every match (`validate.rs`).
    #[serde(default)]
    pub validator: Option<super::validate::Validator>,
    #[serde(default)]
    pub references: Vec<String>,
    #[serde(default)]
    pub examples: Vec<Example>,
    #[serde(default)]
    pub negative_examples: Vec<String>,
    /// What this rule must not report even when it matches: stopwords,
    /// regexes, paths (see `crate::allow`).
    #[serde(default)]
    pub allow: Option<crate::allow::AllowSpec>,
    /// Index of the capture group that is the secret, when the regex has
    /// several unnamed groups (imported gitleaks rules); otherwise the group
    /// named `secret`, or the only group.
    #[serde(default)]
    pub secret_group: Option<usize>,
    /// Where a keyword must be for a match to count: inside the match (the
    /// default, which lets the engine search only windows around keyword
    /// hits) or anywhere in the blob (gitleaks semantics; the regex then runs
    /// over the whole blob, and a rule without keywords runs on every blob).
    #[serde(default)]
    pub scope: KeywordScope,
    /// Keywords as context words: a match counts when one of the keywords
    /// lies within this many bytes of it (before its start or after its
    /// end, or inside it), for tokens without a prefix of their own (a
    /// 32-hex key that is a Mailgun key only when `mailgun` is near).
    #[serde(default)]
    pub proximity: Option<usize>,
    /// A regex the finding's path must match (relative to the scan root),
    /// for rules that only make sense in some files (gitleaks `path`).
    #[serde(default)]
    pub path: Option<String>,
    /// Set for rules that run only on text a decoder builds, never on raw
    /// bytes (see `RuleContext`).
    #[serde(default)]
    pub context: Option<RuleContext>,
    /// The regex's longest match (`None`: unbounded), known from build.rs
    /// for the embedded pack so that start-up does not parse regex syntax
    /// again; never read from a rule file.
    #[serde(skip)]
    pub prebuilt_max_len: Option<Option<usize>>,
}

/// Text a decoder builds for a rule that must not run on raw bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleContext {
    /// One `kubernetes-secret:KEY=VALUE` text per key of a Kubernetes Secret
    /// (`data` decoded from base64, `stringData` as written).
    KubernetesSecret,
}

impl RuleContext {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleContext::KubernetesSecret => "kubernetes-secret",
        }
    }
}

/// See `RuleSpec::scope`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeywordScope {
    #[default]
    Match,
    Blob,
}

/// A positive example: `text` must produce a finding whose secret is `secret`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Example {
    pub text: String,
    pub secret: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    Low,
    Medium,
    High,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl Confidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Low => "low",
            Confidence::Medium => "medium",
            Confidence::High => "high",
        }
    }
}
