//! Keyword prefilter: one pass of the rule set's `KeywordFinder` finds every
//! keyword occurrence and records it against each rule that uses the keyword.

use std::ops::Range;

use crate::rules::{Near, RuleId, RuleSet};

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
    let Some(keywords) = rules.keywords() else {
        return;
    };
    keywords.find(data, 0..data.len(), |p, start, end| {
        hits.add(rules.rules_for_keyword(p), start, end)
    });
    hits.sort();
}

/// Like `collect`, but only keyword occurrences a match touching `changed`
/// could contain: every keyword within `near.reach` of it, and the
/// far-reaching rules' keywords out to their reach. A match whose keyword
/// lies further out does not touch `changed`.
pub fn collect_near(
    rules: &RuleSet,
    near: &Near,
    data: &[u8],
    changed: Range<usize>,
    hits: &mut Hits,
) {
    hits.clear(rules.len());
    let Some(keywords) = rules.keywords() else {
        return;
    };
    let around = |reach: usize| {
        changed.start.saturating_sub(reach)..changed.end.saturating_add(reach).min(data.len())
    };
    let close = around(near.reach);
    keywords.find(data, close.clone(), |p, start, end| {
        hits.add(rules.rules_for_keyword(p), start, end)
    });
    if let Some(far) = &near.far {
        // The bands either side overlap the close range by a keyword's
        // length, so that a keyword across its edge is found (twice at
        // worst: harmless).
        let wide = around(far.reach);
        let k = far.longest_keyword;
        let bands = [
            wide.start..(close.start + k).min(close.end),
            close.end.saturating_sub(k).max(close.start)..wide.end,
        ];
        for band in bands.into_iter().filter(|b| b.start < b.end) {
            far.keywords.find(data, band, |p, start, end| {
                hits.add(&far.keyword_rules[p], start, end)
            });
        }
    }
    hits.sort();
}

impl Hits {
    fn add(&mut self, rules: &[RuleId], start: usize, end: usize) {
        for &rule in rules {
            let v = &mut self.per_rule[rule.index()];
            if v.is_empty() {
                self.touched.push(rule);
            }
            v.push((start, end));
        }
    }

    fn sort(&mut self) {
        // The finder reports in no particular order (and the far bands
        // after the close range); windows want starts in order.
        for &rule in &self.touched {
            self.per_rule[rule.index()].sort_unstable();
        }
    }
}
