//! Importing a gitleaks (or betterleaks) TOML config: its rules become
//! leakhound rules and its allowlists leakhound allowlists, so a team's
//! existing custom config keeps working when they switch.
//!
//! Supported: `[[rules]]` with `id`, `description`, `regex`, `secretGroup`,
//! `entropy`, `keywords`, `path` (a regex the file path must match), `tags`;
//! rule allowlists (`[rules.allowlist]` and `[[rules.allowlists]]`) and global
//! ones (`[allowlist]`, `[[allowlists]]` with `targetRules`) with
//! `regexes`, `regexTarget`, `paths` (regexes), `stopwords`, `commits`,
//! `condition`. Everything else is listed in `Imported::unsupported`, never
//! silently ignored.
//!
//! Semantics kept: a gitleaks keyword may occur anywhere in the fragment, not
//! only inside the match, so imported rules use `scope = "blob"`.

use serde::Deserialize;

use super::{Confidence, KeywordScope, RuleError, RuleSpec, Severity};
use crate::allow::{AllowSpec, Allowlist, Condition, Target};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GlConfig {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    extend: Option<toml::Value>,
    #[serde(default)]
    rules: Vec<GlRule>,
    #[serde(default)]
    allowlist: Option<GlAllowlist>,
    #[serde(default)]
    allowlists: Vec<GlAllowlist>,
    #[serde(flatten)]
    other: toml::Table,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GlRule {
    id: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    regex: Option<String>,
    #[serde(default)]
    secret_group: Option<usize>,
    #[serde(default)]
    entropy: Option<f64>,
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    allowlist: Option<GlAllowlist>,
    #[serde(default)]
    allowlists: Vec<GlAllowlist>,
    #[serde(flatten)]
    other: toml::Table,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GlAllowlist {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    condition: Option<String>,
    #[serde(default)]
    regex_target: Option<String>,
    #[serde(default)]
    regexes: Vec<String>,
    #[serde(default)]
    paths: Vec<String>,
    #[serde(default)]
    stopwords: Vec<String>,
    #[serde(default)]
    commits: Vec<String>,
    #[serde(default)]
    target_rules: Vec<String>,
    #[serde(flatten)]
    other: toml::Table,
}

/// What an import produced.
#[derive(Debug, Default)]
pub struct Imported {
    /// `(file, spec)` pairs, ready for `RuleSet::new`.
    pub rules: Vec<(String, RuleSpec)>,
    /// Global and per-rule allowlists (per-rule ones are restricted to their
    /// rule's id).
    pub allowlists: Vec<Allowlist>,
    /// Fields and rules that were not imported, with why.
    pub unsupported: Vec<String>,
}

/// Rule ids are kebab-case here; gitleaks allows `_` and upper case.
fn rule_id(id: &str) -> String {
    id.chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '-',
        })
        .collect::<String>()
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

fn unknown_fields(what: &str, t: &toml::Table, out: &mut Vec<String>) {
    for k in t.keys() {
        out.push(format!("{what}: field `{k}` is not supported"));
    }
}

fn allowlist(
    file: &str,
    a: &GlAllowlist,
    what: &str,
    rules: Vec<String>,
    unsupported: &mut Vec<String>,
) -> Result<Allowlist, RuleError> {
    unknown_fields(what, &a.other, unsupported);
    let invalid = |reason: String| RuleError::Invalid {
        file: file.to_string(),
        rule_id: what.to_string(),
        reason,
    };
    let target = match a.regex_target.as_deref() {
        None | Some("secret") => Target::Secret,
        Some("line") => Target::Line,
        Some("match") => {
            unsupported.push(format!(
                "{what}: regexTarget = \"match\" is applied to the whole line (a superset of the match)"
            ));
            Target::Line
        }
        Some(other) => return Err(invalid(format!("unknown regexTarget `{other}`"))),
    };
    let condition = match a
        .condition
        .as_deref()
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        None | Some("OR") => Condition::Or,
        Some("AND") => Condition::And,
        Some(other) => return Err(invalid(format!("unknown condition `{other}`"))),
    };
    let spec = AllowSpec {
        description: a.description.clone(),
        rules,
        paths: Vec::new(),
        regexes: a.regexes.clone(),
        target,
        stopwords: a.stopwords.clone(),
        commits: a.commits.clone(),
        condition,
    };
    // Paths are regexes in gitleaks.
    Allowlist::build(&spec, &a.paths, "").map_err(|e| invalid(e.to_string()))
}

/// Parses a gitleaks config. `file` names it in errors and in rule listings.
pub fn import(file: &str, text: &str) -> Result<Imported, RuleError> {
    let cfg: GlConfig = toml::from_str(text).map_err(|e| RuleError::Parse {
        file: file.to_string(),
        message: e.to_string().trim_end().to_string(),
    })?;
    let mut out = Imported::default();
    let _ = &cfg.title;
    if let Some(ext) = &cfg.extend {
        out.unsupported.push(format!(
            "[extend] ({ext}) is not imported: leakhound's own rule pack is used instead of \
             gitleaks' default config"
        ));
    }
    unknown_fields("config", &cfg.other, &mut out.unsupported);
    for r in &cfg.rules {
        let id = rule_id(&r.id);
        let what = format!("rule `{}`", r.id);
        unknown_fields(&what, &r.other, &mut out.unsupported);
        let Some(regex) = &r.regex else {
            out.unsupported.push(format!(
                "{what}: rules without `regex` (path-only rules) are not imported"
            ));
            continue;
        };
        let description = r
            .description
            .clone()
            .filter(|d| !d.trim().is_empty())
            .unwrap_or_else(|| format!("{} (imported from {file})", r.id));
        let mut spec = RuleSpec {
            id: id.clone(),
            name: description.clone(),
            description: format!("{description} Imported from gitleaks config {file}."),
            keywords: r.keywords.clone(),
            regex: regex.clone(),
            min_entropy: r.entropy.filter(|e| *e > 0.0),
            severity: Severity::High,
            confidence: Confidence::Medium,
            references: Vec::new(),
            examples: Vec::new(),
            negative_examples: Vec::new(),
            allow: None,
            secret_group: r.secret_group.filter(|g| *g > 0),
            scope: KeywordScope::Blob,
            proximity: None,
            path: r.path.clone(),
            // gitleaks runs no checksum or context filter of ours.
            generic: false,
            validator: None,
            context: None,
            prebuilt_max_len: None,
        };
        if spec.secret_group.is_none() {
            // gitleaks takes the whole match when there is no group, and
            // the first group when there are several.
            spec.regex = whole_or_first_group(&spec.regex);
        }
        let _ = &r.tags;
        if let Some(a) = &r.allowlist {
            out.allowlists.push(allowlist(
                file,
                a,
                &format!("{what} allowlist"),
                vec![id.clone()],
                &mut out.unsupported,
            )?);
        }
        for (i, a) in r.allowlists.iter().enumerate() {
            if !a.target_rules.is_empty() {
                out.unsupported.push(format!(
                    "{what} allowlists[{i}]: targetRules ignored inside a rule"
                ));
            }
            out.allowlists.push(allowlist(
                file,
                a,
                &format!("{what} allowlists[{i}]"),
                vec![id.clone()],
                &mut out.unsupported,
            )?);
        }
        out.rules.push((file.to_string(), spec));
    }
    let globals = cfg.allowlist.iter().chain(cfg.allowlists.iter());
    for (i, a) in globals.enumerate() {
        let targets = a.target_rules.iter().map(|t| rule_id(t)).collect();
        out.allowlists.push(allowlist(
            file,
            a,
            &format!("global allowlist #{}", i + 1),
            targets,
            &mut out.unsupported,
        )?);
    }
    Ok(out)
}

/// gitleaks reports the first capture group when the regex has any and the
/// whole match otherwise; leakhound wants exactly one secret group, so wrap
/// a group-less regex in one and name the first group of a multi-group one.
fn whole_or_first_group(regex: &str) -> String {
    match regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(regex)
    {
        Ok(hir) if hir.properties().explicit_captures_len() == 0 => format!("({regex})"),
        _ => regex.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
title = "team config"

[[rules]]
id = "Acme_API_Key"
description = "Acme API key"
regex = '''acme_(?:live|test)_([a-z0-9]{24})'''
keywords = ["acme_"]
entropy = 3.0

[rules.allowlist]
stopwords = ["dummy"]

[[rules]]
id = "internal-token"
regex = '''itk-[0-9a-f]{16}'''
path = '''\.env$'''
keywords = ["itk-"]
skipReport = true

[[rules]]
id = "pem-file"
path = '''\.pem$'''

[[allowlists]]
paths = ['''^vendor/''']
"#;

    #[test]
    fn rules_and_allowlists_are_imported_and_unsupported_fields_listed() {
        let imp = import("gl.toml", CONFIG).expect("config imports");
        let ids: Vec<&str> = imp.rules.iter().map(|(_, r)| r.id.as_str()).collect();
        assert_eq!(ids, ["acme-api-key", "internal-token"]);
        assert_eq!(imp.rules[0].1.min_entropy, Some(3.0));
        assert_eq!(imp.rules[0].1.scope, KeywordScope::Blob);
        assert_eq!(imp.rules[1].1.regex, "(itk-[0-9a-f]{16})");
        assert_eq!(imp.rules[1].1.path.as_deref(), Some(r"\.env$"));
        assert_eq!(imp.allowlists.len(), 2);
        assert!(imp.unsupported.iter().any(|u| u.contains("skipReport")));
        assert!(imp.unsupported.iter().any(|u| u.contains("pem-file")));
        crate::rules::RuleSet::new(imp.rules, true).expect("imported rules compile");
    }

    #[test]
    fn bad_regexes_are_errors_naming_the_rule() {
        let err = crate::rules::RuleSet::new(
            import("gl.toml", "[[rules]]\nid = \"x\"\nregex = '''a(b'''\n")
                .unwrap()
                .rules,
            true,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("gl.toml") && err.contains("`x`"), "{err}");
    }
}
