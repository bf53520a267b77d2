//! SARIF 2.1.0 report, as GitHub code scanning reads it: `ruleId` is the
//! rule id, only the rules that fired are described, `level` follows
//! severity, and `partialFingerprints` holds our stable fingerprint.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};

use serde_sarif::sarif::{
    ArtifactContent, ArtifactLocation, Location, Message, MultiformatMessageString,
    PhysicalLocation, PropertyBag, Region, ReportingConfiguration, ReportingDescriptor,
    Result as SarifResult, ResultLevel, Run, Sarif, Tool, ToolComponent,
};

use crate::finding::Finding;
use crate::rules::{RuleSet, Severity};

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
    let mut help = spec.description.clone();
    for r in &spec.references {
        help.push('\n');
        help.push_str(r);
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
        .help(MultiformatMessageString::builder().text(help).build())
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

fn result(f: &Finding, rule_index: i64) -> SarifResult {
    let region = Region::builder()
        .start_line(f.line as i64)
        .start_column(f.column as i64)
        .end_line(f.end_line as i64)
        .end_column(f.end_column as i64)
        .snippet(ArtifactContent::builder().text(f.snippet.clone()).build())
        .build();
    let location = Location::builder()
        .physical_location(
            PhysicalLocation::builder()
                .artifact_location(
                    ArtifactLocation::builder()
                        .uri(match &f.path {
                            Some(p) => path_to_uri(p),
                            // A commit or tag message has no file; name the
                            // commit so the result still has a location.
                            None => format!(
                                "git-commit/{}",
                                f.commit.as_ref().map_or("unknown", |c| c.id.as_str())
                            ),
                        })
                        .build(),
                )
                .region(region)
                .build(),
        )
        .build();
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

/// The SARIF log as a value (tests validate it against the schema).
pub fn to_sarif(findings: &[Finding], rules: &RuleSet) -> Sarif {
    let fired: BTreeSet<&str> = findings.iter().map(|f| f.rule_id.as_str()).collect();
    let descriptors: Vec<ReportingDescriptor> = fired
        .iter()
        .filter_map(|id| rule_descriptor(rules, id))
        .collect();
    let index: BTreeMap<&str, i64> = fired
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, i as i64))
        .collect();
    let results: Vec<SarifResult> = findings
        .iter()
        .map(|f| result(f, index[f.rule_id.as_str()]))
        .collect();
    let driver = ToolComponent::builder()
        .name("leakhound")
        .version(env!("CARGO_PKG_VERSION"))
        .semantic_version(env!("CARGO_PKG_VERSION"))
        .rules(descriptors)
        .build();
    let run = Run::builder()
        .tool(Tool::builder().driver(driver).build())
        .results(results)
        .column_kind(serde_json::Value::from("unicodeCodePoints"))
        .build();
    Sarif::builder()
        .schema(SCHEMA_URI)
        .version(serde_json::Value::from("2.1.0"))
        .runs(vec![run])
        .build()
}

pub fn write(findings: &[Finding], rules: &RuleSet, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &to_sarif(findings, rules))?;
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
