//! The rules' self-test: every example must yield its secret and every
//! negative example must yield nothing. `cargo test` and
//! `leakhound rules check` run this same code.

use super::{Hits, confirm, prefilter};
use crate::rules::{RuleId, RuleSet};

/// One example that did not behave as written.
#[derive(Debug, Clone, PartialEq)]
pub struct ExampleFailure {
    pub file: String,
    pub rule_id: String,
    pub message: String,
}

impl std::fmt::Display for ExampleFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: rule `{}`: {}",
            self.file, self.rule_id, self.message
        )
    }
}

/// Secrets `rule` finds in `text` on its own (other rules do not compete).
fn secrets_of(rules: &RuleSet, id: RuleId, text: &[u8], hits: &mut Hits) -> Vec<Vec<u8>> {
    prefilter::collect(rules, text, hits);
    let mut out = Vec::new();
    confirm::confirm_rule(
        rules.rule(id),
        id,
        text,
        hits.of(id),
        confirm::Mode::Report,
        &mut out,
    );
    out.into_iter()
        .map(|c| text[c.start..c.end].to_vec())
        .collect()
}

/// A rule's examples and negative examples; those of the embedded pack
/// are looked up, as the pack a scan loads carries none.
pub fn examples_of(rule: &crate::rules::Rule) -> (&[crate::rules::Example], &[String]) {
    let spec = &rule.spec;
    if spec.examples.is_empty()
        && spec.negative_examples.is_empty()
        && spec.prebuilt_max_len.is_some()
        && let Some((e, n)) = crate::rules::pack_examples(&spec.id)
    {
        return (e, n);
    }
    (&spec.examples, &spec.negative_examples)
}

/// Runs every rule's examples. With `require_examples`, a rule without a
/// positive and a negative example is a failure too (the default pack).
pub fn check_examples(rules: &RuleSet, require_examples: bool) -> Vec<ExampleFailure> {
    let mut failures = Vec::new();
    let mut hits = Hits::default();
    for (i, rule) in rules.rules().iter().enumerate() {
        let id = RuleId(i as u32);
        let mut fail = |message: String| {
            failures.push(ExampleFailure {
                file: rule.file.clone(),
                rule_id: rule.spec.id.clone(),
                message,
            })
        };
        let (examples, negatives) = examples_of(rule);
        if require_examples && examples.is_empty() {
            fail("has no examples".into());
        }
        if require_examples && negatives.is_empty() {
            fail("has no negative_examples".into());
        }
        for ex in examples {
            let found = secrets_of(rules, id, ex.text.as_bytes(), &mut hits);
            if !found.iter().any(|s| s == ex.secret.as_bytes()) {
                let got: Vec<_> = found.iter().map(|s| String::from_utf8_lossy(s)).collect();
                fail(format!(
                    "example {:?} should yield secret {:?}, found {:?}",
                    ex.text, ex.secret, got
                ));
            }
        }
        for neg in negatives {
            let found = secrets_of(rules, id, neg.as_bytes(), &mut hits);
            if !found.is_empty() {
                let got: Vec<_> = found.iter().map(|s| String::from_utf8_lossy(s)).collect();
                fail(format!(
                    "negative example {neg:?} should not match, found {got:?}"
                ));
            }
        }
    }
    failures
}
