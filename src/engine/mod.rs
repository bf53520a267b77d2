//! The engine: finds secrets in a blob's bytes.
//!
//! 1. `prefilter`: one pass of the rule set's `KeywordFinder` over the blob
//!    finds every keyword occurrence and groups them by rule.
//! 2. `confirm`: each rule whose keyword occurred runs its regex only over
//!    windows around its hits (a rule's window is its longest possible match),
//!    and keeps matches that contain one of its keywords.
//! 3. `filters` and `entropy` drop placeholders, documented example keys and
//!    low-entropy values; the rule's validator checks checksums and
//!    structure (`rules::validate`); `context` drops or downgrades matches by
//!    where they sit (env lookups, digests, data URIs, public keys, minified
//!    lines).
//! 4. Overlapping candidates of the same secret are reduced to the most
//!    specific rule, and candidates become `Finding`s with line and column.
//!
//! The engine knows rules and blobs, never where blobs came from beyond
//! `Origin`'s identity, and never formats output.

mod changes;
mod confirm;
pub mod context;
pub mod entropy;
pub mod filters;
pub mod location;
pub mod mask;
mod prefilter;
pub mod selftest;

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::allow::{Policy, Subject, Suppressed};
use crate::blob::{KubernetesRef, Origin};
use crate::decode::{self, Limits, View};
use crate::finding::Finding;
use crate::notice::{Notice, NoticeKind};
use crate::rules::{Confidence, KeywordScope, RuleId, RuleSet};
pub use changes::changed_span;
use location::LineIndex;
pub use prefilter::Hits;

/// The longest match any rule can report (see `rules::MAX_WINDOW`):
/// streaming windows overlap by this much.
pub const MAX_MATCH: usize = crate::rules::MAX_WINDOW;

/// A confirmed match before it becomes a `Finding`: the secret's byte span.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub rule: RuleId,
    pub start: usize,
    pub end: usize,
    pub entropy: f64,
    /// The rule's confidence, lowered to `Low` when the rule's validator
    /// found the value doubtful.
    pub confidence: Confidence,
    /// Set when the secret was found in a decoded view: `start..end` then
    /// cover its encoded form in the original bytes.
    pub decoded: Option<Box<DecodedSecret>>,
}

/// The decoded secret and the steps that revealed it.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodedSecret {
    pub steps: Vec<String>,
    pub secret: Vec<u8>,
    /// The Kubernetes object the secret was found in.
    pub kubernetes: Option<Arc<KubernetesRef>>,
}

impl Candidate {
    /// The secret's bytes: decoded if it was found in a decoded view.
    pub fn secret<'a>(&'a self, data: &'a [u8]) -> &'a [u8] {
        match &self.decoded {
            Some(d) => &d.secret,
            None => &data[self.start..self.end],
        }
    }

    fn kubernetes(&self) -> Option<&Arc<KubernetesRef>> {
        self.decoded.as_ref().and_then(|d| d.kubernetes.as_ref())
    }
}

/// Per-thread reusable buffers, so scanning allocates nothing per line.
#[derive(Default)]
pub struct Scratch {
    hits: Hits,
    candidates: Vec<Candidate>,
    hits_seen: bool,
}

/// What the engine is asked to report.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// Include raw secrets in findings.
    pub show_secrets: bool,
    /// Drop findings below this confidence.
    pub min_confidence: Confidence,
    /// How deep and how much `candidates_deep` decodes.
    pub decode: Limits,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            show_secrets: false,
            min_confidence: Confidence::Low,
            decode: Limits::default(),
        }
    }
}

/// A compiled rule set plus reporting options; `Sync`, shared by all threads.
pub struct Scanner {
    rules: RuleSet,
    options: EngineOptions,
    policy: Policy,
}

/// Findings of one unit not reported because an inline marker or an
/// allowlist said so.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Silenced {
    pub inline: u64,
    pub allowlist: u64,
}

impl Silenced {
    pub fn add(&mut self, other: Silenced) {
        self.inline += other.inline;
        self.allowlist += other.allowlist;
    }
}

/// What the engine found in one unit: the engine's one answer.
#[derive(Debug, Default)]
pub struct ScanResult {
    /// Findings in offset order, allowlists and inline markers applied.
    pub findings: Vec<Finding>,
    /// What could not be decoded, and why (kind `DecodeLimit`).
    pub notices: Vec<Notice>,
    /// Every confirmed match before allowlists (spans in the unit, decoded
    /// secrets among them): what `--redact` hides and what Git's parent
    /// comparison needs.
    pub candidates: Vec<Candidate>,
    /// Findings silenced, by cause.
    pub silenced: Silenced,
    /// True if the unit's raw bytes held any rule keyword.
    pub keyword_hits: bool,
}

impl Scanner {
    pub fn new(rules: RuleSet, options: EngineOptions) -> Self {
        Scanner {
            rules,
            options,
            policy: Policy::default(),
        }
    }

    /// The same scanner with allowlists and inline-marker handling.
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// The same scanner, matching down to `min` confidence.
    pub fn with_min_confidence(mut self, min: Confidence) -> Self {
        self.options.min_confidence = min;
        self
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// Why a finding of `rule` is not to be reported, if it is not. `path`
    /// is the origin's path relative to the scan root.
    fn suppression(
        &self,
        rule: &crate::rules::Rule,
        path: Option<&str>,
        commit: Option<&str>,
        secret: &[u8],
        line: &[u8],
    ) -> Option<Suppressed> {
        if let Some(re) = &rule.path
            && !path.is_some_and(|p| re.is_match(p.as_bytes()))
        {
            // Not an allowlist: the rule does not apply to this file at all.
            return Some(Suppressed::OutOfScope);
        }
        let subject = Subject {
            rule_id: &rule.spec.id,
            path,
            secret,
            line,
            commit,
        };
        if let Some(s) = self.policy.check_relative(&subject) {
            return Some(s);
        }
        rule.allow()?
            .allows(&subject)
            .then_some(Suppressed::Allowlist)
    }

    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    pub fn into_rules(self) -> RuleSet {
        self.rules
    }

    /// Candidate secrets in `data`'s raw bytes (no decoding), overlaps
    /// resolved, sorted by offset: the matching core the property tests
    /// compare with `candidates_naive`.
    pub(crate) fn candidates(&self, data: &[u8], scratch: &mut Scratch) -> Vec<Candidate> {
        self.candidates_near(data, None, scratch)
    }

    /// `candidates`, or with `changed`, only those a match touching
    /// `changed` could give (see `scan_changed`).
    fn candidates_near(
        &self,
        data: &[u8],
        changed: Option<std::ops::Range<usize>>,
        scratch: &mut Scratch,
    ) -> Vec<Candidate> {
        let min = self.options.min_confidence;
        let c = match changed.zip(self.rules.near()) {
            Some((changed, near)) => {
                prefilter::collect_near(&self.rules, near, data, changed, &mut scratch.hits);
                self.confirm_hits(data, None, min, confirm::Mode::Report, scratch)
            }
            None => self.run_rules(data, None, min, scratch),
        };
        scratch.hits_seen = !scratch.hits.touched().is_empty();
        c
    }

    /// The rules that run in `context` (`None`: raw bytes) over `data`:
    /// prefilter, confirmation, confidence floor, overlaps resolved.
    fn run_rules(
        &self,
        data: &[u8],
        context: Option<crate::rules::RuleContext>,
        min: Confidence,
        scratch: &mut Scratch,
    ) -> Vec<Candidate> {
        self.run_rules_in(data, context, min, confirm::Mode::Report, scratch)
    }

    fn run_rules_in(
        &self,
        data: &[u8],
        context: Option<crate::rules::RuleContext>,
        min: Confidence,
        mode: confirm::Mode,
        scratch: &mut Scratch,
    ) -> Vec<Candidate> {
        prefilter::collect(&self.rules, data, &mut scratch.hits);
        self.confirm_hits(data, context, min, mode, scratch)
    }

    /// Confirmation of the keyword hits in `scratch` (and the rules that
    /// need none), confidence floor, overlaps resolved.
    fn confirm_hits(
        &self,
        data: &[u8],
        context: Option<crate::rules::RuleContext>,
        min: Confidence,
        mode: confirm::Mode,
        scratch: &mut Scratch,
    ) -> Vec<Candidate> {
        scratch.candidates.clear();
        let runs = |r: &crate::rules::Rule| r.spec.confidence >= min && r.spec.context == context;
        for &rule in scratch.hits.touched() {
            let r = self.rules.rule(rule);
            if !runs(r) {
                continue;
            }
            if r.spec.scope == KeywordScope::Blob {
                confirm::confirm_blob(r, rule, data, mode, &mut scratch.candidates);
            } else {
                let hits = scratch.hits.of(rule);
                confirm::confirm_rule(r, rule, data, hits, mode, &mut scratch.candidates);
            }
        }
        for &rule in self.rules.always() {
            let r = self.rules.rule(rule);
            if runs(r) {
                confirm::confirm_blob(r, rule, data, mode, &mut scratch.candidates);
            }
        }
        if mode == confirm::Mode::Mask {
            // Every span, overlapping or not: all of them are hidden.
            return std::mem::take(&mut scratch.candidates);
        }
        scratch.candidates.retain(|c| c.confidence >= min);
        resolve_overlaps(&self.rules, data, &mut scratch.candidates)
    }

    /// Candidates of the rules that run only in `context`, in `data` (a
    /// text a decoder built for them).
    fn candidates_in_context(
        &self,
        data: &[u8],
        context: crate::rules::RuleContext,
        scratch: &mut Scratch,
    ) -> Vec<Candidate> {
        self.run_rules(data, Some(context), self.options.min_confidence, scratch)
    }

    /// Candidates in `data` and in every view the decoders find in it
    /// (Kubernetes Secrets, Helm releases, base64, hex, percent-encoding,
    /// escapes, gzip), all with spans in `data`'s coordinates. `notes`
    /// receives what could not be decoded and why.
    ///
    /// A secret found again in a later view (the generic base64 decode of
    /// a Secret's value, the raw `stringData` line) at an overlapping place
    /// is reported once, with the Kubernetes provenance if either had it.
    fn candidates_deep(
        &self,
        data: &[u8],
        changed: Option<std::ops::Range<usize>>,
        scratch: &mut Scratch,
        notes: &mut Vec<String>,
    ) -> Vec<Candidate> {
        let mut all = self.candidates_near(data, changed, scratch);
        let raw_hits = scratch.hits_seen;
        let views = decode::expand(data, &self.options.decode, notes);
        let mut secret_scratch = Scratch::default();
        for view in &views {
            for c in self.candidates(&view.data, scratch) {
                let seg = view.segment_at(c.start);
                let cand = decoded_candidate(view, seg, &c, &view.data[c.start..c.end]);
                merge(&mut all, data, cand);
            }
            for seg in &view.segments {
                let Some(text) = &seg.secret_entry else {
                    continue;
                };
                let ctx = crate::rules::RuleContext::KubernetesSecret;
                for c in self.candidates_in_context(text, ctx, &mut secret_scratch) {
                    let mut cand = decoded_candidate(view, Some(seg), &c, &text[c.start..c.end]);
                    (cand.start, cand.end) = view.map.span(seg.at, seg.end);
                    all.push(cand);
                }
            }
        }
        // A Secret's base64 `data` value was scanned decoded, with its key:
        // what raw rules found in the encoded text says the same again.
        let encoded_values: Vec<(usize, usize)> = views
            .iter()
            .flat_map(|v| {
                v.segments
                    .iter()
                    .filter(|s| s.secret_entry.is_some() && s.steps.last() == Some(&"base64"))
                    .map(|s| v.map.span(s.at, s.end))
            })
            .collect();
        if !encoded_values.is_empty() {
            all.retain(|c| {
                c.decoded.is_some()
                    || !encoded_values
                        .iter()
                        .any(|&(s, e)| s <= c.start && c.end <= e)
            });
        }
        // A last-applied copy of the object's own value: reported once, at
        // the object's key, not again from the annotation's raw text.
        let repeats: Vec<(usize, usize)> = views.iter().flat_map(|v| v.repeats.clone()).collect();
        if !repeats.is_empty() {
            all.retain(|c| !repeats.iter().any(|&(s, e)| s <= c.start && c.end <= e));
        }
        // `keyword_hits` stays about the raw bytes.
        scratch.hits_seen = raw_hits;
        all.sort_by_key(|c| (c.start, c.end, c.rule));
        all
    }

    /// Reference implementation for tests: every rule's regex over the whole
    /// input, no prefilter, no windows. The fast path must agree with it.
    #[cfg(test)]
    pub(crate) fn candidates_naive(&self, data: &[u8]) -> Vec<Candidate> {
        let mut out = Vec::new();
        for (i, r) in self.rules.rules().iter().enumerate() {
            if r.spec.confidence < self.options.min_confidence || r.spec.context.is_some() {
                continue;
            }
            confirm::confirm_naive(r, RuleId(i as u32), data, &mut out);
        }
        out.retain(|c| c.confidence >= self.options.min_confidence);
        resolve_overlaps(&self.rules, data, &mut out)
    }

    /// Scans one unit: its raw bytes and, as the options' decoding policy
    /// says, every view the decoders find in it (Kubernetes Secrets, Helm
    /// releases, base64, hex, percent-encoding, escapes, gzip), with
    /// allowlists and inline markers applied. The one entry point every
    /// source's units go through.
    ///
    /// `origin` says where `data` came from: allowlists, fingerprints and
    /// the provenance findings carry depend on it.
    pub fn scan(&self, origin: &Origin, data: &[u8], scratch: &mut Scratch) -> ScanResult {
        self.scan_changed(origin, data, None, scratch)
    }

    /// `scan`, or with `changed` (the span of `data` that differs from an
    /// earlier version of the same file, see `changed_span`), the scan of
    /// what that change can have added: at least the findings `scan` gives
    /// whose match touches the span, which include all those the earlier
    /// version did not have. Only the keyword pass is narrowed, to each rule's reach of
    /// `changed`; confirmation and the decoders see all of `data`. A rule
    /// set with rules that need no keyword near their match scans whole.
    pub fn scan_changed(
        &self,
        origin: &Origin,
        data: &[u8],
        changed: Option<std::ops::Range<usize>>,
        scratch: &mut Scratch,
    ) -> ScanResult {
        let mut notes = Vec::new();
        let candidates = self.candidates_deep(data, changed, scratch, &mut notes);
        notes.sort();
        notes.dedup();
        let notices = notes
            .into_iter()
            .map(|reason| Notice::new(NoticeKind::DecodeLimit, origin.to_string(), reason))
            .collect();
        let mut silenced = Silenced::default();
        let findings = self.findings(origin, data, &candidates, &mut silenced);
        ScanResult {
            findings,
            notices,
            candidates,
            silenced,
            keyword_hits: scratch.hits_seen,
        }
    }

    /// Turns candidates of `data` into findings (line/column, snippet,
    /// fingerprint), dropping what allowlists and inline markers silence.
    fn findings(
        &self,
        origin: &Origin,
        data: &[u8],
        cands: &[Candidate],
        silenced: &mut Silenced,
    ) -> Vec<Finding> {
        if cands.is_empty() {
            return Vec::new();
        }
        let index = LineIndex::new(data);
        let identity = origin.identity();
        let commit = origin.commit().map(|c| self.masked_commit(c));
        let path = origin.display_path();
        let rel_path = path.as_deref().map(|p| self.policy.relative(p));
        let commit_id = origin.commit().map(|c| c.id.as_str());
        let mut masks = LineMasks::default();
        cands
            .iter()
            .filter_map(|c| {
                let rule = self.rules.rule(c.rule);
                let secret = c.secret(data);
                let lines = &data[index.line_of(c.start).0..index.line_end(data, c.end)];
                match self.suppression(rule, rel_path.as_deref(), commit_id, secret, lines) {
                    Some(Suppressed::Inline) => {
                        silenced.inline += 1;
                        return None;
                    }
                    Some(Suppressed::Allowlist) => {
                        silenced.allowlist += 1;
                        return None;
                    }
                    Some(Suppressed::OutOfScope) => return None,
                    None => {}
                }
                let (line, column) = index.position(data, c.start);
                let (end_line, end_column) = index.position(data, c.end);
                Some(Finding {
                    rule_id: rule.spec.id.clone(),
                    rule_name: rule.spec.name.clone(),
                    severity: rule.spec.severity,
                    confidence: c.confidence,
                    path: path.as_deref().map(str::to_string),
                    line,
                    column,
                    end_line,
                    end_column,
                    snippet: self.snippet(data, &index, cands, c, &mut masks),
                    secret: self
                        .options
                        .show_secrets
                        .then(|| String::from_utf8_lossy(secret).into_owned()),
                    fingerprint: fingerprint(&rule.spec.id, secret, &identity),
                    raw_secret: secret.to_vec(),
                    entropy: (c.entropy * 1000.0).round() / 1000.0,
                    decoded: c
                        .decoded
                        .as_ref()
                        .map(|d| d.steps.clone())
                        .unwrap_or_default(),
                    commit: commit.clone(),
                    image: origin.image().cloned(),
                    kubernetes: c
                        .kubernetes()
                        .map(|k| (**k).clone())
                        .or_else(|| origin.kubernetes().cloned()),
                    span: c.start..c.end,
                    timestamp: None,
                })
            })
            .collect()
    }
}

impl Scanner {
    /// The commit as findings carry it: every secret in its message masked
    /// (unless `--show-secrets`), so the `commit.message` field never leaks
    /// what the report masks elsewhere.
    ///
    /// Messages are scanned decoded (base64, hex, escapes, ...), so what is
    /// masked here is decoded too: an encoded token stays hidden.
    fn masked_commit(&self, c: &crate::blob::CommitMeta) -> crate::blob::CommitMeta {
        let mut c = c.clone();
        if self.options.show_secrets {
            return c;
        }
        let msg = c.message.as_bytes();
        let mut spans = self.all_spans(msg, 0, msg.len());
        let mut scratch = Scratch::default();
        let mut notes = Vec::new();
        spans.extend(
            self.candidates_deep(msg, None, &mut scratch, &mut notes)
                .iter()
                .filter(|d| d.decoded.is_some())
                .map(|d| mask::Span {
                    start: d.start,
                    end: d.end,
                    prefix: 0,
                }),
        );
        if !spans.is_empty() {
            spans.sort_unstable();
            c.message = mask::render(msg, 0, msg.len(), &spans);
        }
        c
    }

    /// `text` with every secret in it masked (unchanged with
    /// `--show-secrets`): for provenance fields that quote scanned text,
    /// such as a commit message or an image history step.
    pub fn masked_text(&self, text: &str) -> String {
        if self.options.show_secrets {
            return text.to_string();
        }
        let msg = text.as_bytes();
        let spans = self.all_spans(msg, 0, msg.len());
        if spans.is_empty() {
            return text.to_string();
        }
        mask::render(msg, 0, msg.len(), &spans)
    }

    /// What `--redact` hides in `data`: the spans of `cands` (decoded
    /// secrets among them) and every span any raw rule matches at any
    /// confidence, each with the id of a rule that matched it; sorted,
    /// overlaps merged into the first.
    pub fn redaction_spans(&self, data: &[u8], cands: &[Candidate]) -> Vec<(usize, usize, RuleId)> {
        let mut scratch = Scratch::default();
        let mut all: Vec<(usize, usize, RuleId)> = self
            .run_rules_in(
                data,
                None,
                Confidence::Low,
                confirm::Mode::Mask,
                &mut scratch,
            )
            .iter()
            .chain(cands)
            .map(|c| (c.start, c.end, c.rule))
            .collect();
        all.sort_unstable();
        let mut out: Vec<(usize, usize, RuleId)> = Vec::with_capacity(all.len());
        for s in all {
            match out.last_mut() {
                Some(last) if s.0 < last.1 => last.1 = last.1.max(s.1),
                _ => out.push(s),
            }
        }
        out
    }

    /// Every span of `data[from..to]` that any raw rule matches at any
    /// confidence (allowlists and inline markers do not apply: a silenced
    /// secret is still a secret), with the prefix each may show.
    fn all_spans(&self, data: &[u8], from: usize, to: usize) -> Vec<mask::Span> {
        let mut scratch = Scratch::default();
        let mut spans: Vec<mask::Span> = self
            .run_rules_in(
                &data[from..to],
                None,
                Confidence::Low,
                confirm::Mode::Mask,
                &mut scratch,
            )
            .iter()
            .map(|c| {
                let (start, end) = (from + c.start, from + c.end);
                let rule = self.rules.rule(c.rule);
                mask::Span {
                    start,
                    end,
                    prefix: mask::shown_prefix(rule, &data[start..end], false),
                }
            })
            .collect();
        spans.sort_unstable();
        spans
    }

    /// The first line of candidate `c`, clipped around it, with every
    /// matched span of the line masked (see `mask`).
    fn snippet(
        &self,
        data: &[u8],
        index: &LineIndex,
        cands: &[Candidate],
        c: &Candidate,
        masks: &mut LineMasks,
    ) -> String {
        let (line_start, _) = index.line_of(c.start);
        let line_end = index.line_end(data, c.start);
        let secret_end = c.end.min(line_end);
        let from = char_floor(
            data,
            c.start.saturating_sub(SNIPPET_CONTEXT).max(line_start),
        );
        let to = char_floor(data, (secret_end + SNIPPET_CONTEXT).min(line_end));
        let spans = masks.of_line(line_start, || {
            // The previous line too: a proximity rule's keyword may sit there.
            let scan_from = match line_start.checked_sub(1) {
                Some(nl) => index.line_of(nl).0,
                None => 0,
            };
            let mut spans = self.all_spans(data, scan_from, line_end);
            for o in cands {
                let encoded = o.decoded.is_some();
                let secret = &data[o.start..o.end];
                spans.push(mask::Span {
                    start: o.start,
                    end: o.end,
                    prefix: mask::shown_prefix(self.rules.rule(o.rule), secret, encoded),
                });
            }
            spans.retain(|s| s.end > line_start && s.start < line_end.max(line_start + 1));
            spans.sort_unstable();
            spans
        });
        let mut s = String::new();
        if from > line_start {
            s.push('…');
        }
        s.push_str(&mask::render(data, from, to.max(secret_end), spans));
        if to < line_end {
            s.push('…');
        }
        s.trim_end_matches('\r').trim().to_string()
    }
}

/// The mask spans of each line that holds a finding, computed once a line.
#[derive(Default)]
struct LineMasks {
    lines: std::collections::HashMap<usize, Vec<mask::Span>>,
}

impl LineMasks {
    fn of_line(&mut self, start: usize, make: impl FnOnce() -> Vec<mask::Span>) -> &[mask::Span] {
        self.lines.entry(start).or_insert_with(make)
    }
}

/// A candidate found in a view, with its span in the blob and its steps
/// and provenance.
fn decoded_candidate(
    view: &View,
    seg: Option<&decode::Segment>,
    c: &Candidate,
    secret: &[u8],
) -> Candidate {
    let (start, end) = view.map.span(c.start, c.end);
    let mut steps: Vec<String> = view.steps.iter().map(|s| s.to_string()).collect();
    if let Some(seg) = seg {
        steps.extend(seg.steps.iter().map(|s| s.to_string()));
    }
    Candidate {
        start,
        end,
        decoded: Some(Box::new(DecodedSecret {
            steps,
            secret: secret.to_vec(),
            kubernetes: seg.and_then(|s| s.kubernetes.clone()),
        })),
        ..c.clone()
    }
}

/// Adds `cand` unless the same rule already found the same secret at an
/// overlapping place; then the earlier one keeps its place and gains the
/// Kubernetes provenance if it had none.
fn merge(all: &mut Vec<Candidate>, data: &[u8], cand: Candidate) {
    let secret = cand.secret(data).to_vec();
    let same = all.iter_mut().find(|o| {
        o.rule == cand.rule
            && o.start < cand.end.max(cand.start + 1)
            && cand.start < o.end.max(o.start + 1)
            && o.secret(data) == &secret[..]
    });
    match same {
        None => all.push(cand),
        Some(o) => {
            if o.kubernetes().is_none()
                && let Some(k) = cand.kubernetes()
            {
                let k = Some(k.clone());
                match &mut o.decoded {
                    Some(d) => d.kubernetes = k,
                    None => {
                        o.decoded = Some(Box::new(DecodedSecret {
                            steps: Vec::new(),
                            secret,
                            kubernetes: k,
                        }))
                    }
                }
            }
        }
    }
}

/// Keeps one candidate per group of overlapping secret spans: the most
/// specific rule (highest confidence, then a provider rule over a generic
/// one, then severity; then a rule whose
/// keyword is part of the secret itself, a token format with a prefix, over
/// one that only knows the context; then the longest secret, the rule
/// listed first). Returns them sorted by offset.
fn resolve_overlaps(rules: &RuleSet, data: &[u8], cands: &mut [Candidate]) -> Vec<Candidate> {
    cands.sort_by_key(|c| (c.start, c.end, c.rule));
    let key = |c: &Candidate| {
        let rule = rules.rule(c.rule);
        let secret = data[c.start..c.end].to_ascii_lowercase();
        let own_keyword = rule
            .keywords
            .iter()
            .any(|k| memchr::memmem::find(&secret, k.as_bytes()).is_some());
        (
            c.confidence,
            // A provider's rule knows more than a name-and-shape rule.
            !rule.spec.generic,
            rule.spec.severity,
            own_keyword,
            c.end - c.start,
            std::cmp::Reverse(c.rule),
        )
    };
    let better = |a: &Candidate, b: &Candidate| key(a) > key(b);
    let mut out: Vec<Candidate> = Vec::with_capacity(cands.len());
    let mut group_end = 0;
    for c in cands.iter() {
        match out.last_mut() {
            Some(last) if c.start < group_end => {
                group_end = group_end.max(c.end);
                if better(c, last) {
                    *last = c.clone();
                }
            }
            _ => {
                group_end = c.end;
                out.push(c.clone());
            }
        }
    }
    out
}

/// Stable identity of a finding: never includes offsets, so it survives
/// lines moving; includes the secret, so a different secret never collides.
pub fn fingerprint(rule_id: &str, secret: &[u8], origin_identity: &str) -> String {
    let mut h = Sha256::new();
    h.update(rule_id.as_bytes());
    h.update([0]);
    h.update(secret);
    h.update([0]);
    h.update(origin_identity.as_bytes());
    let digest = h.finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// How much of the line to show on each side of the secret.
const SNIPPET_CONTEXT: usize = 60;

/// Moves `i` back to the start of a UTF-8 character.
fn char_floor(data: &[u8], mut i: usize) -> usize {
    while i > 0 && i < data.len() && (data[i] & 0xC0) == 0x80 {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests;
