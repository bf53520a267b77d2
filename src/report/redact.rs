//! Masking across a run: a secret found in one place is hidden wherever
//! else it is quoted in the run's output (another finding's snippet, a
//! commit message, an image history step), even where no rule matched it
//! there (a password a generic rule found in a config file, quoted bare in
//! a log line next to another secret).
//!
//! The engine already masks every span of a snippet's line that any rule
//! matches; this is the second net, over the exact bytes of every secret
//! reported. It does nothing when the run shows secrets.

use std::collections::HashSet;

use aho_corasick::{AhoCorasick, MatchKind};

use crate::engine::mask::MASK;
use crate::finding::Finding;

/// Secrets shorter than this are not searched for elsewhere: short values
/// (`admin`, `1234`) would hide ordinary words all over the report.
const MIN_LEN: usize = 8;

/// At most this many distinct secrets are searched for (a stream may report
/// without end; memory stays bounded).
const MAX_SECRETS: usize = 100_000;

/// The secrets of a run so far and an automaton over them.
#[derive(Default)]
pub struct Redactor {
    secrets: Vec<Vec<u8>>,
    seen: HashSet<Vec<u8>>,
    automaton: Option<AhoCorasick>,
    dirty: bool,
}

impl Redactor {
    /// Remembers the secrets of `findings` (those whose secret is shown are
    /// skipped: the run shows secrets).
    pub fn learn<'a>(&mut self, findings: impl IntoIterator<Item = &'a Finding>) {
        for f in findings {
            if f.secret.is_some() || self.secrets.len() >= MAX_SECRETS {
                continue;
            }
            // A multi-line secret (a PEM key) is quoted a line at a time.
            for part in f.raw_secret.split(|&b| b == b'\n') {
                let part = part.trim_ascii();
                // PEM armour (`-----BEGIN … KEY-----`) names a key type.
                let armour = part.starts_with(b"-----");
                if part.len() >= MIN_LEN && !armour && self.seen.insert(part.to_vec()) {
                    self.secrets.push(part.to_vec());
                    self.dirty = true;
                }
            }
        }
    }

    /// Hides every known secret in the fields of `f` that quote input.
    pub fn apply(&mut self, f: &mut Finding) {
        if f.secret.is_some() || self.secrets.is_empty() {
            return;
        }
        if self.dirty {
            self.automaton = AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&self.secrets)
                .ok();
            self.dirty = false;
        }
        let Some(ac) = &self.automaton else { return };
        let hide = |text: &mut String| {
            if ac.is_match(text.as_bytes()) {
                let mut out = String::with_capacity(text.len());
                ac.replace_all_with(text, &mut out, |_, _, dst| {
                    dst.push_str(MASK);
                    true
                });
                *text = out;
            }
        };
        hide(&mut f.snippet);
        if let Some(c) = &mut f.commit {
            hide(&mut c.message);
        }
        if let Some(created_by) = f.image.as_mut().and_then(|i| i.created_by.as_mut()) {
            hide(created_by);
        }
    }
}

/// Hides every secret of `findings` wherever another finding quotes it.
pub fn mask_across(findings: &mut [Finding]) {
    let mut r = Redactor::default();
    r.learn(findings.iter());
    for f in findings {
        r.apply(f);
    }
}
