//! Masking: what a report may show of a line that holds secrets.
//!
//! Masking is per line, not per finding: a snippet hides every span of its
//! line that any rule matched (whatever its confidence, allowlisted or
//! baselined included), so a line holding two secrets never shows the
//! second one raw next to the first. A masked span keeps a short prefix only
//! when the rule's own keyword starts the secret (`ghp_`, `sk_live_`,
//! `AKIA`): that names the kind of token without giving any of its random
//! part. Passwords and values of generic rules are hidden whole.

use crate::rules::Rule;

/// What replaces a secret's hidden bytes.
pub const MASK: &str = "*****";

/// Longest prefix ever shown.
const MAX_PREFIX: usize = 12;

/// A span to hide in the blob's bytes, and how many of its first bytes may
/// be shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub prefix: usize,
}

/// How many leading bytes of `secret` (as found by `rule`) may be shown:
/// the rule's keyword when the secret starts with it and the rest is at
/// least as long; nothing for generic rules and for encoded secrets (the
/// first characters of an encoding give away the first of the secret).
pub fn shown_prefix(rule: &Rule, secret: &[u8], encoded: bool) -> usize {
    if encoded || rule.spec.generic {
        return 0;
    }
    rule.keywords
        .iter()
        .map(String::as_bytes)
        .filter(|k| {
            k.len() <= MAX_PREFIX
                && secret.len() >= 2 * k.len()
                && secret[..k.len()].eq_ignore_ascii_case(k)
        })
        .map(<[u8]>::len)
        .max()
        .unwrap_or(0)
}

/// `data[from..to]` as text with every span in `spans` (sorted by start,
/// possibly overlapping) replaced by its shown prefix and [`MASK`]. A span
/// that starts before `from` shows no prefix; one that runs past `to` is
/// masked all the same.
pub fn render(data: &[u8], from: usize, to: usize, spans: &[Span]) -> String {
    // Overlapping spans hide as one, with the first one's prefix.
    let mut merged: Vec<Span> = Vec::with_capacity(spans.len());
    for s in spans {
        match merged.last_mut() {
            Some(last) if s.start < last.end => {
                last.end = last.end.max(s.end);
                // A token rule and a generic one found the same value: the
                // token's keyword may show.
                if s.start == last.start {
                    last.prefix = last.prefix.max(s.prefix);
                }
            }
            _ => merged.push(*s),
        }
    }
    let mut out = Vec::with_capacity(to.saturating_sub(from) + 8);
    let mut at = from;
    for s in &merged {
        if s.end <= at || s.start >= to {
            continue;
        }
        let start = s.start.max(at);
        out.extend_from_slice(&data[at..start]);
        let shown = if s.start >= at {
            armour_or_prefix(&data[s.start..s.end], s.prefix)
        } else {
            0
        };
        out.extend_from_slice(&data[start..start + shown]);
        out.extend_from_slice(MASK.as_bytes());
        at = s.end.min(to);
    }
    if at < to {
        out.extend_from_slice(&data[at..to]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Bytes of a secret that may be shown: a PEM/OpenSSH armour line names the
/// key type and holds nothing secret; otherwise the prefix.
fn armour_or_prefix(secret: &[u8], prefix: usize) -> usize {
    if secret.starts_with(b"-----BEGIN ")
        && let Some(nl) = memchr::memchr(b'\n', secret)
    {
        return secret[..nl].trim_ascii_end().len();
    }
    prefix.min(secret.len())
}

/// A secret shown on its own: its prefix, then [`MASK`].
pub fn masked(secret: &[u8], prefix: usize) -> String {
    render(
        secret,
        0,
        secret.len(),
        &[Span {
            start: 0,
            end: secret.len(),
            prefix,
        }],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(start: usize, end: usize, prefix: usize) -> Span {
        Span { start, end, prefix }
    }

    #[test]
    fn every_span_is_hidden_and_prefixes_only_where_given() {
        let line = b"a=ghp_AAAAAAAAAAAAAAAA b=hunter2hunter2 c";
        let spans = [span(2, 22, 4), span(25, 39, 0)];
        assert_eq!(render(line, 0, line.len(), &spans), "a=ghp_***** b=***** c");
    }

    #[test]
    fn spans_cut_by_the_clip_show_nothing_of_themselves() {
        let line = b"xx=ghp_AAAAAAAAAAAAAAAA tail";
        // The clip starts inside the secret: no prefix, no secret byte.
        assert_eq!(
            render(line, 10, line.len(), &[span(3, 23, 4)]),
            "***** tail"
        );
        // The clip ends inside the secret: masked all the same.
        assert_eq!(render(line, 0, 12, &[span(3, 23, 4)]), "xx=ghp_*****");
    }

    #[test]
    fn overlapping_spans_are_masked_once() {
        let line = b"k=abcdefghijklmnop!";
        let spans = [span(2, 12, 0), span(5, 18, 0)];
        assert_eq!(render(line, 0, line.len(), &spans), "k=*****!");
    }

    #[test]
    fn pem_armour_stays_readable() {
        let key = b"-----BEGIN RSA PRIVATE KEY-----\nMIIEow...";
        assert_eq!(masked(key, 0), "-----BEGIN RSA PRIVATE KEY-----*****");
    }
}
