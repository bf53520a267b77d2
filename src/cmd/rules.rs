//! `leakhound rules list|check`.

use std::io::{self, Write};
use std::path::Path;

use anyhow::Result;

use crate::cli::CommonArgs;
use crate::{EXIT_ERROR, finish, open_output, settings};
use leakhound::Scanner;
use leakhound::engine::selftest::check_examples;
use leakhound::report::Format;
use leakhound::rules::{self, RuleSet};

/// The rules in effect (for `rules list|check`), with the config in the
/// current directory applied.
pub(crate) fn load_rules(common: &CommonArgs) -> Result<Scanner> {
    Ok(settings(common, Some(Path::new(".")), None)?.scanner)
}

pub(crate) fn rules_list(common: &CommonArgs) -> Result<u8> {
    let scanner = load_rules(common)?;
    let rules = scanner.rules();
    let (mut out, _) = open_output(common)?;
    let res = match common.format.unwrap_or(Format::Text) {
        Format::Json | Format::Jsonl | Format::Sarif => {
            let list: Vec<_> = rules
                .rules()
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "id": r.spec.id,
                        "name": r.spec.name,
                        "severity": r.spec.severity,
                        "confidence": r.spec.confidence,
                        "validator": r.spec.validator,
                        "generic": r.spec.generic,
                        "keywords": r.keywords,
                        "description": r.spec.description,
                        "references": r.spec.references,
                        "file": r.file,
                    })
                })
                .collect();
            serde_json::to_writer_pretty(&mut out, &list)
                .map_err(io::Error::from)
                .and_then(|_| writeln!(out))
        }
        Format::Text => rules.rules().iter().try_for_each(|r| {
            writeln!(
                out,
                "{:<44} {:<8} {:<6} {}",
                r.spec.id,
                r.spec.severity.as_str(),
                r.spec.confidence.as_str(),
                r.spec.name
            )
        }),
    };
    finish(res.and_then(|_| out.flush()))?;
    Ok(0)
}

pub(crate) fn rules_check(common: &CommonArgs, path: Option<&std::path::Path>) -> Result<u8> {
    let (set, require) = match path {
        Some(p) => (RuleSet::new(rules::load_path(p)?, true)?, false),
        None => (load_rules(common)?.into_rules(), true),
    };
    let failures = check_examples(&set, require);
    for f in &failures {
        eprintln!("leakhound: error: {f}");
    }
    let examples: usize = set
        .rules()
        .iter()
        .map(|r| {
            let (e, n) = leakhound::engine::selftest::examples_of(r);
            e.len() + n.len()
        })
        .sum();
    if failures.is_empty() {
        if !common.quiet {
            println!(
                "ok: {} rules, {} examples and negative examples checked",
                set.len(),
                examples
            );
        }
        Ok(0)
    } else {
        eprintln!("leakhound: {} example check(s) failed", failures.len());
        Ok(EXIT_ERROR)
    }
}
