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
    #[serde(default)]
    pub references: Vec<String>,
    #[serde(default)]
    pub examples: Vec<Example>,
    #[serde(default)]
    pub negative_examples: Vec<String>,
    /// Set for rules that run only on text a decoder builds, never on raw
    /// bytes (see `RuleContext`).
    #[serde(default)]
    pub context: Option<RuleContext>,
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
