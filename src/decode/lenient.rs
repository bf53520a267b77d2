//! A lenient, line-based reader of Kubernetes Secret manifests that the
//! YAML parser refused: tab indentation, Helm templates (`{{ }}` lines),
//! manifests pasted into Markdown (fenced or indented) and manifests
//! escaped into one log or JSON line (`apiVersion: v1\nkind: Secret\n…`
//! with a literal backslash-n).
//!
//! It reads what a person reads: a `kind: Secret` line, `metadata` name and
//! namespace, `type`, and the `key: value` lines under `data:` (base64) and
//! `stringData:` at the object's indentation, with quoted values and block
//! scalars (`|`, `>`). It builds no tree: one pass splits lines into
//! documents, and each line of a document is looked at a bounded number of
//! times, so time is linear in the input and nothing recurses. Its keys go
//! through the same `secret_keys` as the YAML tree's, so the entries carry
//! the same Kubernetes provenance; spans are byte ranges of the original
//! text, so findings point at the value's line (for an escaped manifest,
//! the one physical line that holds it).

use std::borrow::Cow;

use memchr::memmem;

use super::Budget;
use super::kubernetes::{Cx, Entry, RawKey, secret_keys};
use crate::blob::KubernetesRef;

/// Longest Kubernetes key (a DNS subdomain).
const MAX_KEY: usize = 253;
/// Secret objects read from one document: a hostile file of `kind: Secret`
/// lines costs no more than this many passes over its lines.
const MAX_OBJECTS: usize = 64;
/// Keys read from one object.
const MAX_KEYS: usize = 1024;

/// A line as the reader sees it: a physical line without its line break, or
/// the part of one between escaped `\n`s.
#[derive(Clone, Copy, Debug)]
struct Line {
    start: usize,
    end: usize,
    /// Inside an escaped string: `\t` is indentation, `\"` a quote, and a
    /// plain value ends at a backslash or a quote.
    escaped: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// Empty, a comment, or a template directive (`{{- if … }}`).
    Blank,
    /// `---`, `...`, or a Markdown fence: a document boundary.
    Separator,
    Content,
}

/// A line with its indentation (in characters; a tab counts as one) and
/// where its body starts.
#[derive(Clone, Copy, Debug)]
struct Info {
    line: Line,
    indent: usize,
    body_at: usize,
    class: Class,
}

impl Info {
    fn new(text: &str, line: Line) -> Info {
        let s = &text[line.start..line.end];
        let b = s.as_bytes();
        let (mut indent, mut i) = (0, 0);
        loop {
            match b.get(i) {
                Some(b' ' | b'\t') => i += 1,
                Some(b'\\') if line.escaped && b.get(i + 1) == Some(&b't') => i += 2,
                _ => break,
            }
            indent += 1;
        }
        let body = s[i..].trim_end();
        let class = if body.is_empty()
            || body.starts_with('#')
            || body.starts_with("{{")
            || body.starts_with("{%")
        {
            Class::Blank
        } else if ["---", "...", "```", "~~~"]
            .iter()
            .any(|p| body.starts_with(p))
        {
            Class::Separator
        } else {
            Class::Content
        };
        Info {
            line,
            indent,
            body_at: line.start + i,
            class,
        }
    }

    fn body<'t>(&self, text: &'t str) -> &'t str {
        text[self.body_at..self.line.end].trim_end()
    }

    /// The key of a `key: value` line and the offset (in the text) of its
    /// value, after the colon and blanks.
    fn key_value<'t>(&self, text: &'t str) -> Option<(&'t str, usize)> {
        if self.class != Class::Content {
            return None;
        }
        let body = self.body(text);
        let b = body.as_bytes();
        let (key, mut i) = match quoted(body, 0, self.line.escaped) {
            Some((s, e, after)) => (&body[s..e], after),
            None => {
                let n = b
                    .iter()
                    .position(|c| !(c.is_ascii_alphanumeric() || b"-_./".contains(c)))
                    .unwrap_or(b.len());
                (&body[..n], n)
            }
        };
        if key.is_empty() || key.len() > MAX_KEY {
            return None;
        }
        while matches!(b.get(i), Some(b' ' | b'\t')) {
            i += 1;
        }
        if b.get(i) != Some(&b':') {
            return None;
        }
        i += 1;
        match b.get(i) {
            None | Some(b' ' | b'\t') => {}
            Some(b'\\') if self.line.escaped => {}
            _ => return None,
        }
        loop {
            match b.get(i) {
                Some(b' ' | b'\t') => i += 1,
                Some(b'\\') if self.line.escaped && b.get(i + 1) == Some(&b't') => i += 2,
                _ => break,
            }
        }
        Some((key, self.body_at + i))
    }
}

/// A quoted string starting at `at` of `s`: its content's range and the
/// offset after the closing quote (the end of `s` when it is not closed).
fn quoted(s: &str, at: usize, escaped: bool) -> Option<(usize, usize, usize)> {
    let b = s.as_bytes();
    if escaped && b[at..].starts_with(b"\\\"") {
        let from = at + 2;
        return Some(match memmem::find(&b[from..], b"\\\"") {
            Some(n) => (from, from + n, from + n + 2),
            None => (from, b.len(), b.len()),
        });
    }
    let q = *b.get(at).filter(|&&c| c == b'"' || c == b'\'')?;
    let mut i = at + 1;
    while i < b.len() {
        match b[i] {
            b'\\' if q == b'"' => i += 2,
            c if c == q && q == b'\'' && b.get(i + 1) == Some(&b'\'') => i += 2,
            c if c == q => return Some((at + 1, i, i + 1)),
            _ => i += 1,
        }
    }
    Some((at + 1, b.len(), b.len()))
}

/// What follows a key's colon.
enum Scalar<'t> {
    /// Nothing (or a comment): a mapping or nothing follows.
    None,
    /// `|` or `>`: the value is the deeper lines below.
    Block { folded: bool },
    /// A flow collection, alias or template: not a value to read.
    Skip,
    /// A quoted value (whole) or a plain one (more may follow on deeper lines).
    Value { text: Cow<'t, str>, plain: bool },
}

fn scalar(rest: &str, escaped: bool) -> Scalar<'_> {
    let b = rest.as_bytes();
    match b.first() {
        None | Some(b'#') => return Scalar::None,
        Some(b'|' | b'>') => {
            let tail =
                rest[1..].trim_start_matches(|c: char| c == '-' || c == '+' || c.is_ascii_digit());
            let tail = tail.trim_start();
            if tail.is_empty() || tail.starts_with('#') {
                return Scalar::Block {
                    folded: b[0] == b'>',
                };
            }
        }
        Some(b'[' | b'{' | b'*' | b'&' | b'!') => return Scalar::Skip,
        _ => {}
    }
    if rest.contains("{{") || rest.contains("{%") {
        return Scalar::Skip;
    }
    if let Some((s, e, _)) = quoted(rest, 0, escaped) {
        let inner = &rest[s..e];
        let text = if b[0] == b'\'' {
            Cow::Owned(inner.replace("''", "'"))
        } else if b[0] == b'"' && inner.contains('\\') {
            Cow::Owned(unescape(inner))
        } else {
            Cow::Borrowed(inner)
        };
        return Scalar::Value { text, plain: false };
    }
    let mut end = rest.len();
    if let Some(c) = rest.find(" #").or_else(|| rest.find("\t#")) {
        end = c;
    }
    if escaped && let Some(c) = rest[..end].find(['\\', '"']) {
        end = c;
    }
    Scalar::Value {
        text: Cow::Borrowed(rest[..end].trim_end()),
        plain: true,
    }
}

/// The common escapes of a YAML double-quoted scalar.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(c @ ('\\' | '"' | '/' | ' ')) => out.push(c),
            Some(c) => {
                out.push('\\');
                out.push(c);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Reads Secrets the YAML tree did not give. With `refused`, every
/// document of `text` that holds none of `roots` (sorted offsets of the
/// documents the parser completed) is read line by line. Whatever the parser said, a
/// line holding a whole manifest escaped into a string (a log line, a JSON
/// field) is read as its own document, unless it holds the start of an
/// entry already made (`covered`, sorted). Returns how many Secrets were read.
#[allow(clippy::too_many_arguments)]
pub(super) fn read(
    text: &str,
    refused: bool,
    roots: &[usize],
    covered: &[usize],
    cx: &Cx<'_>,
    out: &mut Vec<Entry>,
    budget: &mut Budget,
    notes: &mut Vec<String>,
) -> usize {
    let mut secrets = 0;
    let mut stream: Vec<Info> = Vec::new();
    let mut start = 0;
    while start <= text.len() {
        let nl = memchr::memchr(b'\n', &text.as_bytes()[start..]).map(|n| start + n);
        let mut end = nl.unwrap_or(text.len());
        if text[..end].ends_with('\r') {
            end -= 1;
        }
        let physical = Line {
            start,
            end,
            escaped: false,
        };
        let escaped = memmem::find(&text.as_bytes()[start..end], b"\\n")
            .and_then(|_| escaped_lines(text, physical));
        if let Some(lines) = escaped {
            if !within(covered, start, end) {
                let infos: Vec<Info> = lines.into_iter().map(|l| Info::new(text, l)).collect();
                secrets += document(text, &infos, cx, out, budget, notes);
            }
            if refused {
                // Read already: a blank line of the document around it.
                stream.push(Info {
                    class: Class::Blank,
                    ..Info::new(text, physical)
                });
            }
        } else if refused {
            stream.push(Info::new(text, physical));
        }
        match nl {
            Some(n) => start = n + 1,
            None => break,
        }
    }
    for doc in stream.split(|i| i.class == Class::Separator) {
        let (Some(first), Some(last)) = (doc.first(), doc.last()) else {
            continue;
        };
        let (s, e) = (first.line.start, last.line.end);
        if within(roots, s, e) {
            continue;
        }
        secrets += document(text, doc, cx, out, budget, notes);
    }
    secrets
}

/// True if one of the sorted `offsets` lies in `start..=end`.
fn within(offsets: &[usize], start: usize, end: usize) -> bool {
    offsets
        .get(offsets.partition_point(|&o| o < start))
        .is_some_and(|&o| o <= end)
}

/// The parts of a physical line between escaped `\n`s, if one of them is
/// a `kind: Secret` line. The first part starts after the last unescaped
/// quote before the first `\n` (where a JSON string value opens).
fn escaped_lines(text: &str, physical: Line) -> Option<Vec<Line>> {
    let bytes = &text.as_bytes()[..physical.end];
    let mut lines = Vec::new();
    let mut start = physical.start;
    let mut first = true;
    let mut secret = false;
    loop {
        let next = memmem::find(&bytes[start..], b"\\n").map(|n| start + n);
        let mut end = next.unwrap_or(physical.end);
        if bytes[start..end].ends_with(b"\\r") {
            end -= 2;
        }
        if first && next.is_some() {
            let seg = &bytes[start..end];
            if let Some(q) = (0..seg.len())
                .rev()
                .find(|&i| seg[i] == b'"' && (i == 0 || seg[i - 1] != b'\\'))
            {
                start += q + 1;
            }
        }
        first = false;
        let line = Line {
            start,
            end,
            escaped: true,
        };
        let info = Info::new(text, line);
        if !secret && let Some((key, value)) = info.key_value(text) {
            secret = key == "kind" && is_secret_kind(&text[value..line.end], true);
        }
        lines.push(line);
        match next {
            Some(n) => start = n + 2,
            None => break,
        }
    }
    secret.then_some(lines)
}

fn is_secret_kind(rest: &str, escaped: bool) -> bool {
    matches!(scalar(rest, escaped), Scalar::Value { text, .. } if text.eq_ignore_ascii_case("secret"))
}

/// The `kind` value of a line, if it is a `kind:` line.
fn kind_of<'t>(text: &'t str, info: &Info) -> Option<Cow<'t, str>> {
    let (key, value) = info.key_value(text)?;
    if key != "kind" {
        return None;
    }
    match scalar(&text[value..info.line.end], info.line.escaped) {
        Scalar::Value { text, .. } => Some(text),
        _ => Some(Cow::Borrowed("")),
    }
}

/// Reads the Secrets of one document (lines between separators).
fn document(
    text: &str,
    doc: &[Info],
    cx: &Cx<'_>,
    out: &mut Vec<Entry>,
    budget: &mut Budget,
    notes: &mut Vec<String>,
) -> usize {
    let mut secrets = 0;
    let mut objects = 0;
    // Lines before `done` belong to an object region already read.
    let mut done = 0;
    for k in 0..doc.len() {
        if k < done || objects >= MAX_OBJECTS {
            continue;
        }
        let Some(kind) = kind_of(text, &doc[k]) else {
            continue;
        };
        if !kind.eq_ignore_ascii_case("secret") {
            continue;
        }
        // The object's region: the lines around its `kind:` that are blank
        // or indented at least as deep (an indented block in Markdown ends
        // at the prose around it).
        let indent = doc[k].indent;
        let inside = |i: &Info| i.class == Class::Blank || i.indent >= indent;
        let mut start = k;
        while start > done && inside(&doc[start - 1]) {
            start -= 1;
        }
        let mut end = k + 1;
        while end < doc.len() && inside(&doc[end]) {
            end += 1;
        }
        done = end;
        // Several objects at one indentation without separators: each
        // starts at its `kind:` line (the first also owns the lines above).
        let kinds: Vec<usize> = (start..end)
            .filter(|&i| doc[i].indent == indent && kind_of(text, &doc[i]).is_some())
            .collect();
        for (n, &at) in kinds.iter().enumerate() {
            if objects >= MAX_OBJECTS {
                break;
            }
            objects += 1;
            let from = if n == 0 { start } else { at };
            let to = kinds.get(n + 1).copied().unwrap_or(end);
            if kind_of(text, &doc[at]).is_some_and(|k| k.eq_ignore_ascii_case("secret")) {
                secrets +=
                    usize::from(object(text, &doc[from..to], indent, cx, out, budget, notes));
            }
        }
    }
    secrets
}

/// A mapping's entries below the line at `at` (indented `indent`): the
/// indices of its key lines at the first deeper indentation, and where the
/// mapping ends.
fn children(text: &str, lines: &[Info], at: usize, indent: usize) -> (Vec<usize>, usize) {
    let mut keys = Vec::new();
    let mut child = None;
    let mut i = at + 1;
    while i < lines.len() {
        let l = &lines[i];
        if l.class != Class::Blank {
            if l.indent <= indent {
                break;
            }
            let c = *child.get_or_insert(l.indent);
            if l.indent == c && l.key_value(text).is_some() && keys.len() < MAX_KEYS {
                keys.push(i);
            }
        }
        i += 1;
    }
    (keys, i)
}

/// A key's value: its text and the original span its entry points at,
/// reading block scalars and plain values continued on deeper lines.
fn value<'t>(
    text: &'t str,
    lines: &[Info],
    at: usize,
    until: usize,
) -> Option<(Cow<'t, str>, (usize, usize))> {
    let info = &lines[at];
    let (_, v) = info.key_value(text)?;
    let rest = text[v..info.line.end].trim_end();
    let deeper = |i: &Info| i.indent > info.indent || i.body_at == i.line.end;
    match scalar(rest, info.line.escaped) {
        Scalar::None | Scalar::Skip => None,
        Scalar::Value { text: t, plain } => {
            let mut end = info.line.end;
            let mut value = t;
            if plain {
                for l in lines[at + 1..until].iter().take_while(|l| deeper(l)) {
                    let more = l.body(text);
                    if l.class == Class::Content {
                        value.to_mut().push(' ');
                        value.to_mut().push_str(more);
                        end = l.line.end;
                    }
                }
            }
            Some((value, (v, end)))
        }
        Scalar::Block { folded } => {
            let mut value = String::new();
            let mut end = info.line.end;
            let mut block_indent = None;
            for l in lines[at + 1..until].iter().take_while(|l| deeper(l)) {
                if l.body_at == l.line.end {
                    value.push('\n');
                    continue;
                }
                let strip = *block_indent.get_or_insert(l.indent);
                // Characters of indentation past the block's are content.
                let line = &text[l.line.start..l.line.end];
                let skip = line
                    .char_indices()
                    .nth(strip.min(l.indent))
                    .map_or(line.len(), |(i, _)| i)
                    .min(l.body_at - l.line.start);
                if !value.is_empty() && !value.ends_with('\n') {
                    value.push(if folded { ' ' } else { '\n' });
                }
                value.push_str(line[skip..].trim_end_matches('\r'));
                end = l.line.end;
            }
            if !folded && !value.is_empty() {
                value.push('\n');
            }
            Some((Cow::Owned(value), (v, end)))
        }
    }
}

/// Reads one Secret object (its lines, `kind:` among them, top-level keys
/// at `indent`). True if it had keys with values to read.
fn object(
    text: &str,
    lines: &[Info],
    indent: usize,
    cx: &Cx<'_>,
    out: &mut Vec<Entry>,
    budget: &mut Budget,
    notes: &mut Vec<String>,
) -> bool {
    let mut obj = KubernetesRef {
        kind: "Secret".to_string(),
        namespace: None,
        name: None,
        key: None,
        secret_type: None,
        path: None,
        log: None,
    };
    let mut fields: Vec<(usize, bool)> = Vec::new();
    let mut i = 0;
    let plain_value = |l: &Info| {
        let (_, v) = l.key_value(text)?;
        match scalar(&text[v..l.line.end], l.line.escaped) {
            Scalar::Value { text, .. } if !text.is_empty() => Some(text.into_owned()),
            _ => None,
        }
    };
    while i < lines.len() {
        let l = &lines[i];
        let top = l.indent == indent;
        match l.key_value(text).filter(|_| top).map(|(k, _)| k) {
            // SOPS-encrypted: every value is ENC[...] ciphertext.
            Some("sops") => return false,
            Some("type") => obj.secret_type = plain_value(l),
            Some("metadata") => {
                let (keys, end) = children(text, lines, i, indent);
                for k in keys {
                    match lines[k].key_value(text).map(|(k, _)| k) {
                        Some("name") => obj.name = plain_value(&lines[k]),
                        Some("namespace") => obj.namespace = plain_value(&lines[k]),
                        _ => {}
                    }
                }
                i = end;
                continue;
            }
            Some(f @ ("data" | "stringData")) => {
                fields.push((i, f == "data"));
                i = children(text, lines, i, indent).1;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    let mut keys: Vec<RawKey<'_>> = Vec::new();
    for (at, encoded) in fields {
        let (children, end) = children(text, lines, at, indent);
        for (n, &k) in children.iter().enumerate() {
            let until = children.get(n + 1).copied().unwrap_or(end);
            let Some((key, _)) = lines[k].key_value(text) else {
                continue;
            };
            if let Some((value, span)) = value(text, lines, k, until) {
                keys.push(RawKey {
                    key,
                    value,
                    encoded,
                    span,
                });
            }
        }
    }
    secret_keys(&obj, &keys, cx, out, budget, notes);
    !keys.is_empty()
}

#[cfg(test)]
mod tests {
    use super::super::{Budget, Limits, View, kubernetes};

    fn run(text: &str) -> (Option<View>, Vec<String>) {
        let mut notes = Vec::new();
        let v = kubernetes::view(
            text.as_bytes(),
            &Limits::default(),
            &mut Budget::new(1 << 20),
            &mut notes,
        );
        (v, notes)
    }

    /// `(key, entry line, original text the entry points at)` of a view.
    fn entries(text: &str) -> Vec<(String, String, String)> {
        let Some(v) = run(text).0 else {
            return Vec::new();
        };
        v.segments
            .iter()
            .map(|s| {
                let (a, b) = v.map.span(s.at, s.end);
                (
                    s.kubernetes.as_ref().unwrap().key.clone().unwrap(),
                    String::from_utf8_lossy(&v.data[s.at..s.end - 1]).into_owned(),
                    text[a..b].to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn a_refused_document_is_read_and_parsed_ones_are_not_read_twice() {
        // The first document parses; the second has tabs.
        let text = concat!(
            "kind: Secret\nmetadata:\n  name: a\ndata:\n  one: b25lLXZhbHVl\n---\n", // leakhound:allow
            "kind: Secret\nmetadata:\n\tname: b\ndata:\n\ttwo: dHdvLXZhbHVl\n", // leakhound:allow
        );
        assert_eq!(
            entries(text),
            [
                (
                    "one".into(),
                    "one: \"one-value\"".into(),
                    "b25lLXZhbHVl".into()
                ),
                (
                    "two".into(),
                    "two: \"two-value\"".into(),
                    "dHdvLXZhbHVl".into()
                ),
            ]
        );
    }

    #[test]
    fn quoted_block_and_continued_values_are_read() {
        let text = "kind: Secret\ndata:\n\tsingle: 'c2luZ2xl'\n\tdouble: \"ZG91Ymxl\" # c\n\
                    \twrapped: >\n\t\tZm9sZGVkLWFj\n\t\tcm9zcy1saW5lcw==\nstringData:\n\tconf: |\n\t\t\
                    user=app\n\t\tpassword=x\n\tquoted: \"a\\tb\"\n\tit''s: 'it''s'\n\tflow: [a, b]\n";
        let got: Vec<(String, String)> = entries(text)
            .into_iter()
            .map(|(_, line, at)| (line, at))
            .collect();
        assert_eq!(
            got,
            [
                ("single: \"single\"".into(), "'c2luZ2xl'".into()),
                ("double: \"double\"".into(), "\"ZG91Ymxl\" # c".into()),
                (
                    "wrapped: \"folded-across-lines\"".into(),
                    ">\n\t\tZm9sZGVkLWFj\n\t\tcm9zcy1saW5lcw==".into()
                ),
                (
                    "conf: user=app\npassword=x\n".into(),
                    "|\n\t\tuser=app\n\t\tpassword=x".into()
                ),
                ("quoted: \"a\tb\"".into(), "\"a\\tb\"".into()),
            ]
        );
    }

    #[test]
    fn escaped_manifests_point_at_their_physical_line() {
        let text = "first line\n{\"msg\": \"kind: Secret\\nmetadata:\\n  name: x\\ndata:\\n  \
                    k: dmFsdWUtb2Yteg==\\n\"}\nlast line\n";
        let v = run(text).0.unwrap();
        let s = &v.segments[0];
        assert_eq!(s.kubernetes.as_ref().unwrap().name.as_deref(), Some("x"));
        let (a, b) = v.map.span(s.at, s.end);
        assert_eq!(&text[a..b], "dmFsdWUtb2Yteg==");
        assert_eq!(text[..a].matches('\n').count(), 1);
    }

    #[test]
    fn other_kinds_nested_kinds_templates_and_sops_give_nothing() {
        for text in [
            "kind: ExternalSecret\nspec:\n\tdata:\n\t\tk: dmFsdWU=\n",
            "kind: SopsSecret\nspec:\n\tdata:\n\t\tk: dmFsdWU=\n",
            "kind: Deployment\nspec:\n\tref:\n\t\tkind: Secret\n\tdata:\n\t\tk: dmFsdWU=\n",
            "kind: Secret\ndata:\n\tk: {{ .Values.k | b64enc }}\n\tj: \"{{ .Values.j }}\"\n",
            "kind: Secret\ndata:\n\tk: ENC[AES256_GCM,data:abc=]\nsops:\n\tversion: 3\n",
            "Prose that mentions kind: Secret and\ndata: in passing.\n\tk: dmFsdWU=\n",
        ] {
            let (v, notes) = run(text);
            assert!(v.is_none(), "{text:?} gave {v:?}");
            assert!(
                notes.iter().all(|n| n.contains("not a valid YAML")),
                "{text:?}: {notes:?}"
            );
        }
    }

    #[test]
    fn hostile_input_takes_linear_time_and_never_panics() {
        // Indentation shrinking line by line, each line a Secret: every
        // object's region reaches back over all lines above it.
        let n = 20_000;
        let mut text = String::new();
        for i in 0..n {
            text.push_str(&" ".repeat(n / 100 - i / 100));
            text.push_str("kind: Secret\n");
        }
        text.push_str("data:\n\tk: dmFsdWU=\n\t");
        // One line of many escaped lines.
        for _ in 0..n {
            text.push_str("kind: Secret\\n\\tdata:\\n\\t\\tk: dmFsdWU=\\n");
        }
        text.push('\n');
        let started = std::time::Instant::now();
        let _ = run(&text);
        assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());

        // Fragments put together at random: no panic, whatever the order.
        let parts = [
            "kind: Secret",
            "kind: 'secret'",
            "data:",
            "stringData:",
            "metadata:",
            "name: x",
            "k: dmFsdWU=",
            "k: |",
            "k: >-",
            "k: \"a\\",
            "k: 'a''",
            "\t",
            "  ",
            "\\n",
            "\\t",
            "\\\"",
            "\"",
            "'",
            "{{ x }}",
            "---",
            "```",
            "é",
            "ü: ä",
            "#",
            ": ",
            "\r",
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            let mut t = String::new();
            for _ in 0..(seed % 40) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                t.push_str(parts[(seed % parts.len() as u64) as usize]);
                if seed.is_multiple_of(3) {
                    t.push('\n');
                }
            }
            let _ = run(&t);
        }
    }
}
