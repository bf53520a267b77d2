//! What ships: the binary itself must not look like a leak (it is copied
//! into images and onto systems that leakhound then scans).

use std::fs;

use aho_corasick::AhoCorasick;
use leakhound::rules::embedded_specs;

/// Every rule example's captured secret; none may appear in the binary as
/// text, or scanning a system that has leakhound installed reports it.
#[test]
fn the_binary_holds_no_rule_example_as_text() {
    let mut secrets: Vec<String> = Vec::new();
    for (_, spec) in embedded_specs().unwrap() {
        for ex in &spec.examples {
            if ex.secret.len() >= 16 {
                secrets.push(ex.secret.clone());
            }
        }
    }
    assert!(
        secrets.len() > 200,
        "only {} example secrets",
        secrets.len()
    );
    let binary = fs::read(env!("CARGO_BIN_EXE_leakhound")).unwrap();
    let ac = AhoCorasick::new(&secrets).unwrap();
    let found: Vec<&str> = ac
        .find_iter(&binary)
        .map(|m| secrets[m.pattern().as_usize()].as_str())
        .take(5)
        .collect();
    assert!(found.is_empty(), "example secrets in the binary: {found:?}");
}
