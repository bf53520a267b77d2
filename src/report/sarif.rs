//! SARIF 2.1.0 report, as GitHub code scanning reads it: `ruleId` is the
//! rule id, only the rules that fired are described, `level` follows
//! severity, and `partialFingerprints` holds our stable fingerprint.
//!
//! The log is written on every run, also one that could not complete:
//! `invocations[0].executionSuccessful` is then false and every error and
//! skipped input is a `toolExecutionNotifications` entry, so an upload step
//! shows what went wrong instead of failing on a missing file. GitHub takes
//! at most 25,000 results a run: past the cap the most severe are kept and
//! a notification says how many were dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};
use std::path::Path;

use serde_sarif::sarif::{
    ArtifactContent, ArtifactLocation, Invocation, Location, LogicalLocation, Message,
    MultiformatMessageString, Notification, PhysicalLocation, PropertyBag, Region,
    ReportingConfiguration, ReportingDescriptor, Result as SarifResult, ResultLevel, Run,
    RunAutomationDetails, Sarif, Tool, ToolComponent,
};

use super::RunInfo;
use crate::finding::Finding;
use crate::rules::{Confidence, RuleSet, Severity};

/// Where people learn about the tool (`tool.driver.informationUri`).
pub const INFORMATION_URI: &str = "https://github.com/leakhound/leakhound";

/// GitHub code scanning refuses a run with more results than this.
pub const GITHUB_MAX_RESULTS: usize = 25_000;

/// The base id artifact URIs are relative to when the scan root is
/// absolute (GitHub resolves it to the checkout).
pub const SRCROOT: &str = "%SRCROOT%";

/// Key of the fingerprint in `partialFingerprints`: it names the hash
/// (SHA-256 of rule id, secret and origin) and its version.
pub const FINGERPRINT_KEY: &str = "leakhoundSecretSha256/v1";

const SCHEMA_URI: &str = "https://json.schemastore.org/sarif-2.1.0.json";

fn level(s: Severity) -> ResultLevel {
    match s {
        Severity::Critical | Severity::High => ResultLevel::Error,
        Severity::Medium => ResultLevel::Warning,
        Severity::Low => ResultLevel::Note,
    }
}

/// GitHub's `security-severity` property (a CVSS-like score) orders alerts.
fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
    }
}

/// A path as a relative URI reference: forward slashes, no leading `./`,
/// and every byte outside the unreserved set percent-encoded.
pub fn path_to_uri(path: &str) -> String {
    let p = path.replace('\\', "/");
    let p = p.trim_start_matches("./");
    let mut out = String::with_capacity(p.len());
    for b in p.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if p.starts_with('/') {
        format!("file://{out}")
    } else {
        out
    }
}

fn rule_descriptor(rules: &RuleSet, id: &str) -> Option<ReportingDescriptor> {
    let rule = rules.rules().iter().find(|r| r.spec.id == id)?;
    let spec = &rule.spec;
    let mut props = BTreeMap::new();
    props.insert(
        "security-severity".to_string(),
        serde_json::Value::from(security_severity(spec.severity)),
    );
    props.insert(
        "confidence".to_string(),
        serde_json::Value::from(spec.confidence.as_str()),
    );
    props.insert(
        "precision".to_string(),
        serde_json::Value::from(precision(spec.confidence, spec.validator.is_some())),
    );
    let mut help = spec.description.clone();
    for r in &spec.references {
        help.push('\n');
        help.push_str(r);
    }
    let mut markdown = format!("**{}**\n\n{}\n", spec.name, spec.description);
    markdown.push_str(
        "\nRevoke or rotate the credential first (removing it from the code does not: it \
         stays in history, images and logs), then remove it and load it from a secret store.\n",
    );
    if !spec.references.is_empty() {
        markdown.push_str("\nReferences:\n");
        for r in &spec.references {
            markdown.push_str(&format!("- <{r}>\n"));
        }
    }
    let d = ReportingDescriptor::builder()
        .id(spec.id.clone())
        .name(spec.name.clone())
        .short_description(
            MultiformatMessageString::builder()
                .text(spec.name.clone())
                .build(),
        )
        .full_description(
            MultiformatMessageString::builder()
                .text(spec.description.clone())
                .build(),
        )
        .help(
            MultiformatMessageString::builder()
                .text(help)
                .markdown(markdown)
                .build(),
        )
        .default_configuration(
            ReportingConfiguration::builder()
                .level(serde_json::to_value(level(spec.severity)).unwrap_or_default())
                .build(),
        )
        .properties(
            PropertyBag::builder()
                .tags(vec!["security".to_string(), "secret".to_string()])
                .additional_properties(props)
                .build(),
        );
    Some(match spec.references.first() {
        Some(uri) => d.help_uri(uri.clone()).build(),
        None => d.build(),
    })
}

/// GitHub's `precision` property from a rule's confidence: a checksum or
/// structure validator makes a high-confidence rule very precise.
fn precision(c: Confidence, validated: bool) -> &'static str {
    match c {
        Confidence::High if validated => "very-high",
        Confidence::High => "high",
        Confidence::Medium => "medium",
        Confidence::Low => "low",
    }
}

/// The artifact location of a path: relative to the scan root (with
/// `%SRCROOT%` as its base) when the root is absolute and holds the path.
/// The path `path_to_uri` made `uri` from (`leakhound merge` reads SARIF
/// back): percent escapes decoded, `file://` dropped.
pub fn uri_to_path(uri: &str) -> String {
    let uri = uri.strip_prefix("file://").unwrap_or(uri);
    let b = uri.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn artifact(path: &str, root: Option<&Path>) -> ArtifactLocation {
    if let Some(root) = root
        && let Ok(rel) = Path::new(path).strip_prefix(root)
    {
        let rel = rel.to_string_lossy();
        if !rel.is_empty() {
            return ArtifactLocation::builder()
                .uri(path_to_uri(&rel))
                .uri_base_id(SRCROOT)
                .build();
        }
    }
    ArtifactLocation::builder().uri(path_to_uri(path)).build()
}

fn result(f: &Finding, rule_index: i64, root: Option<&Path>) -> SarifResult {
    let region = Region::builder()
        .start_line(f.line as i64)
        .start_column(f.column as i64)
        .end_line(f.end_line as i64)
        .end_column(f.end_column as i64)
        .snippet(ArtifactContent::builder().text(f.snippet.clone()).build())
        .build();
    let location = match (&f.path, &f.commit) {
        (Some(p), _) => Location::builder()
            .physical_location(
                PhysicalLocation::builder()
                    .artifact_location(artifact(p, root))
                    .region(region)
                    .build(),
            )
            .build(),
        // A commit or tag message has no file: a logical location names the
        // commit (line and column are within the message).
        (None, commit) => {
            let id = commit.as_ref().map_or("unknown", |c| c.id.as_str());
            Location::builder()
                .logical_locations(vec![
                    LogicalLocation::builder()
                        .name(id.to_string())
                        .fully_qualified_name(format!("commit {id} message"))
                        .kind("text")
                        .build(),
                ])
                .message(
                    Message::builder()
                        .text(format!(
                            "commit message, line {} column {}: {}",
                            f.line, f.column, f.snippet
                        ))
                        .build(),
                )
                .build()
        }
    };
    let mut fingerprints = BTreeMap::new();
    fingerprints.insert(FINGERPRINT_KEY.to_string(), f.fingerprint.clone());
    let mut props = BTreeMap::new();
    props.insert(
        "severity".into(),
        serde_json::Value::from(f.severity.as_str()),
    );
    props.insert(
        "confidence".into(),
        serde_json::Value::from(f.confidence.as_str()),
    );
    props.insert("entropy".into(), serde_json::Value::from(f.entropy));
    if !f.decoded.is_empty() {
        props.insert("decoded".into(), serde_json::Value::from(f.decoded.clone()));
    }
    if let Some(c) = &f.commit {
        props.insert("commit".into(), serde_json::to_value(c).unwrap_or_default());
    }
    if let Some(i) = &f.image {
        props.insert("image".into(), serde_json::to_value(i).unwrap_or_default());
    }
    if let Some(k) = &f.kubernetes {
        props.insert(
            "kubernetes".into(),
            serde_json::to_value(k).unwrap_or_default(),
        );
    }
    if let Some(s) = &f.secret {
        props.insert("secret".into(), serde_json::Value::from(s.clone()));
    }
    SarifResult::builder()
        .rule_id(f.rule_id.clone())
        .rule_index(rule_index)
        .level(level(f.severity))
        .message(
            Message::builder()
                .text(format!("{} found: {}", f.rule_name, f.snippet))
                .build(),
        )
        .locations(vec![location])
        .partial_fingerprints(fingerprints)
        .properties(PropertyBag::builder().additional_properties(props).build())
        .build()
}

/// The results a run keeps under `max`: the most severe (then most
/// confident) first, in their original order among equals; and how many
/// were dropped.
fn capped(findings: &[Finding], max: usize) -> (Vec<&Finding>, usize) {
    if findings.len() <= max {
        return (findings.iter().collect(), 0);
    }
    let mut order: Vec<usize> = (0..findings.len()).collect();
    order.sort_by_key(|&i| {
        let f = &findings[i];
        (std::cmp::Reverse((f.severity, f.confidence)), i)
    });
    order.truncate(max);
    order.sort_unstable();
    (
        order.into_iter().map(|i| &findings[i]).collect(),
        findings.len() - max,
    )
}

fn notification(level: &str, text: String) -> Notification {
    Notification::builder()
        .level(serde_json::Value::from(level))
        .message(Message::builder().text(text).build())
        .build()
}

/// The SARIF log as a value (tests validate it against the schema).
pub fn to_sarif(findings: &[Finding], rules: &RuleSet, run: &RunInfo) -> Sarif {
    let (kept, dropped) = capped(findings, run.sarif_max_results);
    let fired: BTreeSet<&str> = kept.iter().map(|f| f.rule_id.as_str()).collect();
    let descriptors: Vec<ReportingDescriptor> = fired
        .iter()
        .filter_map(|id| rule_descriptor(rules, id))
        .collect();
    let index: BTreeMap<&str, i64> = fired
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, i as i64))
        .collect();
    let root = run.root.filter(|r| r.is_absolute());
    let results: Vec<SarifResult> = kept
        .iter()
        .map(|f| result(f, index[f.rule_id.as_str()], root))
        .collect();
    let mut notes: Vec<Notification> = Vec::new();
    for e in &run.errors {
        notes.push(notification("error", format!("{}: {}", e.path, e.reason)));
    }
    for s in &run.skipped {
        notes.push(notification(
            "note",
            format!("skipped {}: {}", s.path, s.reason),
        ));
    }
    if dropped > 0 {
        notes.push(notification(
            "warning",
            format!(
                "{dropped} of {} results were left out: a SARIF run holds at most {} \
                 (--sarif-max-results); the most severe were kept",
                findings.len(),
                run.sarif_max_results
            ),
        ));
    }
    let invocation = Invocation::builder()
        .execution_successful(run.complete)
        .tool_execution_notifications(notes)
        .build();
    let driver = ToolComponent::builder()
        .name("leakhound")
        .version(env!("CARGO_PKG_VERSION"))
        .semantic_version(env!("CARGO_PKG_VERSION"))
        .information_uri(INFORMATION_URI)
        .rules(descriptors)
        .build();
    let category = run
        .sarif_category
        .clone()
        .unwrap_or_else(|| run.command.clone());
    let automation = RunAutomationDetails::builder()
        .id(format!("{}/", category.trim_end_matches('/')))
        .build();
    let mut run_log = Run::builder()
        .tool(Tool::builder().driver(driver).build())
        .results(results)
        .invocations(vec![invocation])
        .automation_details(automation)
        .column_kind(serde_json::Value::from("unicodeCodePoints"))
        .build();
    if let Some(root) = root {
        let mut uri = path_to_uri(&root.to_string_lossy());
        if !uri.ends_with('/') {
            uri.push('/');
        }
        let mut bases = BTreeMap::new();
        bases.insert(
            SRCROOT.to_string(),
            ArtifactLocation::builder().uri(uri).build(),
        );
        run_log.original_uri_base_ids = Some(bases);
    }
    Sarif::builder()
        .schema(SCHEMA_URI)
        .version(serde_json::Value::from("2.1.0"))
        .runs(vec![run_log])
        .build()
}

/// How many results `to_sarif` leaves out under the run's cap.
pub fn dropped(findings: &[Finding], run: &RunInfo) -> usize {
    findings.len().saturating_sub(run.sarif_max_results)
}

pub fn write(
    findings: &[Finding],
    rules: &RuleSet,
    run: &RunInfo,
    out: &mut dyn Write,
) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &to_sarif(findings, rules, run))?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::path_to_uri;

    #[test]
    fn paths_become_relative_uri_references() {
        assert_eq!(path_to_uri("./src/a b.rs"), "src/a%20b.rs");
        assert_eq!(path_to_uri("/tmp/x"), "file:///tmp/x");
        assert_eq!(path_to_uri("-"), "-");
    }
}
