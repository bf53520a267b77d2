//! The run summary for machines (`--summary FILE`): what was scanned, what
//! was found, suppressed, skipped and what failed, and whether the scan is
//! complete. A CI step reads `complete` to tell a clean run from a partial
//! one; the findings formats keep their shape. The schema is
//! `docs/summary.schema.json`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::finding::Finding;
use crate::rules::Severity;

/// Version of the summary's shape; bumped only when a field changes meaning
/// or goes away (fields are only ever added).
pub const SUMMARY_VERSION: u32 = 1;

#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub summary_version: u32,
    pub tool: ToolInfo,
    /// The subcommand: `scan`, `git`, `image`, `registry`, `logs`.
    pub command: String,
    /// The command line after the program name, every secret in it masked.
    pub arguments: Vec<String>,
    /// RFC 3339 UTC times.
    pub started: String,
    pub ended: String,
    pub elapsed_seconds: f64,
    pub scanned: Scanned,
    pub findings: FindingCounts,
    pub suppressed: SuppressedCounts,
    /// Paths not read on purpose, by why.
    pub left_out: LeftOut,
    /// Inputs left out on purpose or not readable (each also in `errors`
    /// when it is an error). Paths ignore files leave out are only counted
    /// (`left_out.ignore_files`; `--verbose` names them on stderr).
    pub skipped: Vec<Item>,
    /// Inputs that could not be scanned, and errors that stopped the run.
    pub errors: Vec<Item>,
    /// False when anything was not scanned as asked (then the exit code
    /// is 2).
    pub complete: bool,
    pub exit_code: u8,
    /// A sharded registry sweep: which shard this run was, and the images
    /// it covered (no other shard reads them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardInfo>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ShardInfo {
    /// Counted from 0.
    pub index: u32,
    pub count: u32,
    /// Repositories of the registry (or list) that fell to this shard.
    pub repositories: Vec<String>,
    /// Image references swept, in order.
    pub images: Vec<String>,
    /// The first repository of this shard's run in the order the shards
    /// are cut from (`null` for the first shard): see
    /// `source::image::shard`.
    pub from: Option<String>,
    /// The first repository of the next shard's run as this shard saw the
    /// catalog (`null` for the last shard); `merge` checks it is the next
    /// shard's `from`.
    pub until: Option<String>,
    /// Distinct repositories every shard split between them (the catalog
    /// and the `--images-from` list).
    pub catalog_repositories: usize,
    /// `sha256:` of those repositories' sorted paths: shards of one sweep
    /// with the same digest saw the same catalog.
    pub catalog_digest: String,
    /// `sha256:` of the shard plan file the split came from (`--plan`);
    /// absent for a split by repository count. `merge` wants one plan for
    /// all shards of a count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// Repositories this shard took that the plan does not list (created
    /// after planning), by FNV-1a of the path modulo the shard count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unplanned: Option<Vec<String>>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ToolInfo {
    pub name: &'static str,
    pub version: &'static str,
}

impl Default for ToolInfo {
    fn default() -> Self {
        ToolInfo {
            name: "leakhound",
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}

/// What was read. A unit a subcommand does not have stays 0 (`scan` reads
/// files, `git` blobs, `image` files in layers, `logs` lines).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Scanned {
    pub files: u64,
    pub blobs: u64,
    pub layers: u64,
    pub images: u64,
    pub lines: u64,
    /// Objects a cluster's API listed (`cluster`).
    pub objects: u64,
    pub bytes: u64,
    /// Distinct layers whose findings came from `registry --cache` (not
    /// read; `layers` counts those read).
    #[serde(default)]
    pub cached_layers: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct FindingCounts {
    /// Findings reported (after baseline, allowlists and inline markers).
    pub total: u64,
    /// `low`, `medium`, `high`, `critical`: every key present.
    pub by_severity: BTreeMap<&'static str, u64>,
    /// Rule id → findings reported.
    pub by_rule: BTreeMap<String, u64>,
}

impl FindingCounts {
    pub fn of(findings: &[Finding]) -> FindingCounts {
        let mut c = FindingCounts::default();
        for s in [
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
        ] {
            c.by_severity.insert(s.as_str(), 0);
        }
        for f in findings {
            c.total += 1;
            *c.by_severity.entry(f.severity.as_str()).or_insert(0) += 1;
            *c.by_rule.entry(f.rule_id.clone()).or_insert(0) += 1;
        }
        c
    }
}

/// Findings matched but not reported, by why.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SuppressedCounts {
    pub baseline: u64,
    pub allowlist: u64,
    pub inline: u64,
}

/// Paths not read on purpose, by why; each names the option that would
/// include them.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct LeftOut {
    /// Left out by `.gitignore` (in a Git work tree), `.ignore` or Git's
    /// excludes (`--no-ignore` scans them); a directory counts once.
    pub ignore_files: u64,
    /// Covered by an allowlist path, so not read (`--verbose` names them).
    pub allowlist_paths: u64,
    /// Larger than `--max-file-size`.
    pub too_large: u64,
}

/// A path (or image, or URL) and what happened to it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Item {
    pub path: String,
    pub reason: String,
}

/// Now, as RFC 3339 UTC with millisecond precision.
pub fn now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Millisecond)
        .map(|t| t.to_string())
        .unwrap_or_default()
}
