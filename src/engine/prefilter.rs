//! Keyword prefilter: one Aho-Corasick pass finds every keyword occurrence
//! and records it against each rule that uses the keyword.

use crate::rules::{RuleId, RuleSet};

/// Keyword hits of one blob, grouped by rule. Reused across blobs so the
/// per-rule vectors keep their capacity.
#[derive(Default)]
pub struct Hits {
    per_rule: Vec<Vec<(usize, usize)>>,
    touched: Vec<RuleId>,
}

impl Hits {
    fn clear(&mut self, rules: usize) {
        for r in self.touched.drain(..) {
            self.per_rule[r.index()].clear();
        }
        if self.per_rule.len() < rules {
            self.per_rule.resize_with(rules, Vec::new);
        }
    }

    /// Rules with at least one hit, in the order their first hit was seen.
    pub fn touched(&self) -> &[RuleId] {
        &self.touched
    }

    /// Hits of `rule` as `(start, end)` byte ranges, sorted by start.
    pub fn of(&self, rule: RuleId) -> &[(usize, usize)] {
        &self.per_rule[rule.index()]
    }
}

/// Fills `hits` with every keyword occurrence in `data` (overlapping ones too:
/// `sk-` and `sk-ant-` both count).
pub fn collect(rules: &RuleSet, data: &[u8], hits: &mut Hits) {
    hits.clear(rules.len());
    let Some(ac) = rules.automaton() else {
        return;
    };
    for m in ac.find_overlapping_iter(data) {
        for &rule in rules.rules_for_keyword(m.pattern().as_usize()) {
            let v = &mut hits.per_rule[rule.index()];
            if v.is_empty() {
                hits.touched.push(rule);
            }
            v.push((m.start(), m.end()));
        }
    }
    for &rule in &hits.touched {
        // Overlapping iteration reports by end offset; windows want starts.
        hits.per_rule[rule.index()].sort_unstable();
    }
}
