//! The default rule pack is tested data: it loads, every regex compiles,
//! every example yields its secret and every negative example stays silent.

use leakhound::engine::selftest::check_examples;
use leakhound::rules::{RuleSet, embedded_specs};

#[test]
fn default_pack_compiles_and_every_example_passes() {
    let specs = embedded_specs().expect("embedded rule files parse");
    let set = RuleSet::new(specs, true).expect("every rule compiles");
    assert!(set.len() >= 40, "the pack has only {} rules", set.len());
    let failures = check_examples(&set, true);
    assert!(
        failures.is_empty(),
        "{} example failures:\n{}",
        failures.len(),
        failures
            .iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn every_rule_says_how_to_revoke_and_where_to_read_more() {
    for (file, spec) in embedded_specs().unwrap() {
        assert!(
            !spec.references.is_empty(),
            "{file}: {} has no reference URL",
            spec.id
        );
        assert!(
            spec.references.iter().all(|r| r.starts_with("https://")),
            "{file}: {} has a reference that is not an https URL",
            spec.id
        );
        assert!(
            spec.examples.len() >= 2,
            "{file}: {} has fewer than 2 examples",
            spec.id
        );
    }
}
