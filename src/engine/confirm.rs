//! Regex confirmation: runs a rule's regex over bounded windows around its
//! keyword hits, and keeps matches that contain one of its keywords and pass
//! the placeholder and entropy filters, the rule's validator and the context
//! filters.

use regex_automata::Input;

use super::context::{self, Judgement};
use super::{Candidate, entropy, filters};
use crate::rules::{Confidence, Rule, RuleId, Verdict};

/// What a search is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Findings: every filter, validator and context check applies.
    Report,
    /// Spans to mask in output: every regex match with its keyword
    /// condition, nothing filtered (a value with a broken checksum or a
    /// placeholder-like part is hidden all the same).
    Mask,
}

/// Confirms `rule` around `hits` (sorted by start) and appends candidates.
///
/// A match must contain a keyword hit, so it starts at most `window` bytes
/// before a hit and ends at most `window` bytes after it: searching
/// `[hit.start - window, hit.end + window]` finds every such match. Windows
/// that touch are merged so no byte is searched twice. Look-around (`\b`)
/// sees the bytes outside the window, so edges do not create false matches.
pub fn confirm_rule(
    rule: &Rule,
    id: RuleId,
    data: &[u8],
    hits: &[(usize, usize)],
    mode: Mode,
    out: &mut Vec<Candidate>,
) {
    // A proximity rule's match may lie up to `proximity` bytes away from
    // its keyword, so its window reaches that much further.
    let reach = rule.window + rule.spec.proximity.unwrap_or(0);
    let mut i = 0;
    while i < hits.len() {
        let mut start = hits[i].0.saturating_sub(reach);
        if rule.spec.proximity.is_some() {
            start = line_start(data, start);
        }
        let mut end = (hits[i].1 + reach).min(data.len());
        i += 1;
        while i < hits.len() && hits[i].0.saturating_sub(reach) <= end {
            end = (hits[i].1 + reach).min(data.len());
            i += 1;
        }
        search(rule, id, data, start..end, Some(hits), mode, out);
    }
}

/// How far back a proximity window looks for the start of its line.
const RESYNC: usize = 8 << 10;

/// Where a proximity window starting at `at` should start: at the newline
/// that ends the line before (at most `RESYNC` bytes back), or at 0.
///
/// A proximity window reaches far past its keyword and so usually begins
/// inside some token; a search begun there can find a match that starts
/// inside a longer match a search from the beginning would have taken (a
/// 36-character run in the middle of a 73-character key). These rules'
/// matches do not run across lines, so a search begun at a line break cuts
/// the line into the same matches as a search over the whole input; the
/// newline itself is kept in the window, as the boundary a token at the
/// start of the line may need (`(?:^|[^A-Za-z0-9])`).
fn line_start(data: &[u8], at: usize) -> usize {
    let from = at.saturating_sub(RESYNC);
    match memchr::memrchr(b'\n', &data[from..at]) {
        Some(i) => from + i,
        None if from == 0 => 0,
        // No line break near: a minified line; the window stays as it was.
        None => at,
    }
}

/// A `scope = "blob"` rule whose keyword occurred somewhere (or that has
/// none): its regex over all of `data`, no keyword condition on the match.
pub fn confirm_blob(rule: &Rule, id: RuleId, data: &[u8], mode: Mode, out: &mut Vec<Candidate>) {
    search(rule, id, data, 0..data.len(), None, mode, out);
}

/// The oracle: the rule's regex over all of `data`, with the same
/// keyword condition, computed without the prefilter.
#[cfg(test)]
pub fn confirm_naive(rule: &Rule, id: RuleId, data: &[u8], out: &mut Vec<Candidate>) {
    let lower = data.to_ascii_lowercase();
    let mut hits: Vec<(usize, usize)> = Vec::new();
    for k in &rule.keywords {
        let finder = memchr::memmem::Finder::new(k.as_bytes());
        hits.extend(finder.find_iter(&lower).map(|s| (s, s + k.len())));
    }
    hits.sort_unstable();
    if rule.spec.scope == crate::rules::KeywordScope::Blob {
        if rule.keywords.is_empty() || !hits.is_empty() {
            confirm_blob(rule, id, data, Mode::Report, out);
        }
        return;
    }
    search(
        rule,
        id,
        data,
        0..data.len(),
        Some(&hits),
        Mode::Report,
        out,
    );
}

fn search(
    rule: &Rule,
    id: RuleId,
    data: &[u8],
    range: std::ops::Range<usize>,
    hits: Option<&[(usize, usize)]>,
    mode: Mode,
    out: &mut Vec<Candidate>,
) {
    let (re, group) = rule.regex();
    // Blob scope has no window, so no length bound either.
    let max_len = if hits.is_some() {
        rule.window.max(1)
    } else {
        usize::MAX
    };
    let input = Input::new(data).range(range);
    for caps in re.captures_iter(input) {
        let (Some(m), Some(s)) = (caps.get_match(), caps.get_group(group)) else {
            continue;
        };
        let keyword_ok = |h: &[(usize, usize)]| match rule.spec.proximity {
            None => contains_hit(h, m.start(), m.end()),
            Some(p) => near_hit(h, m.start(), m.end(), p, p + rule.longest_keyword),
        };
        if m.len() > max_len || hits.is_some_and(|h| !keyword_ok(h)) {
            continue;
        }
        if mode == Mode::Mask {
            out.push(Candidate {
                rule: id,
                start: s.start,
                end: s.end,
                entropy: 0.0,
                confidence: Confidence::Low,
                decoded: None,
            });
            continue;
        }
        let secret = &data[s.start..s.end];
        // A generic rule has no format to vouch for a value, only that it
        // looks random: counted-out filler does not.
        if filters::is_placeholder(secret)
            || (rule.spec.id.starts_with("generic-") && filters::not_a_generic_secret(secret))
            || (rule.spec.proximity.is_some() && names_its_context(rule, secret))
        {
            continue;
        }
        let e = entropy::shannon(secret);
        if rule.spec.min_entropy.is_some_and(|min| e < min) {
            continue;
        }
        let mut confidence = rule.spec.confidence;
        match rule.spec.validator.map(|v| v.check(secret)) {
            Some(Verdict::Invalid) => continue,
            Some(Verdict::Doubtful) => confidence = Confidence::Low,
            Some(Verdict::Valid) | None => {}
        }
        match context::judge(data, s.start, s.end, rule.spec.generic) {
            Judgement::Drop => continue,
            Judgement::Downgrade => confidence = Confidence::Low,
            Judgement::Keep => {}
        }
        out.push(Candidate {
            rule: id,
            start: s.start,
            end: s.end,
            entropy: e,
            confidence,
            decoded: None,
        });
    }
}

/// A proximity rule's keywords are the words found near a token, never
/// in it: a value holding one (`freshworks-crm-api-key` near `freshworks`)
/// is a name. Keywords under four letters are left out, as a random token
/// may hold them by chance.
fn names_its_context(rule: &Rule, secret: &[u8]) -> bool {
    let lower = secret.to_ascii_lowercase();
    rule.keywords
        .iter()
        .filter(|k| k.len() >= 4)
        .any(|k| memchr::memmem::find(&lower, k.as_bytes()).is_some())
}

/// True if some hit ends at most `p` bytes before `start`, starts at most
/// `p` bytes after `end`, or overlaps `[start, end)`. `reach` is `p` plus
/// the longest keyword: no hit starting further before `start` can end near.
fn near_hit(hits: &[(usize, usize)], start: usize, end: usize, p: usize, reach: usize) -> bool {
    let from = hits.partition_point(|h| h.0 + reach < start);
    hits[from..]
        .iter()
        .take_while(|h| h.0 <= end + p)
        .any(|h| h.1 + p >= start)
}

/// True if some hit lies entirely inside `[start, end)`.
fn contains_hit(hits: &[(usize, usize)], start: usize, end: usize) -> bool {
    let first = hits.partition_point(|h| h.0 < start);
    hits[first..]
        .iter()
        .take_while(|h| h.0 < end)
        .any(|h| h.1 <= end)
}
