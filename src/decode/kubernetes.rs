//! Kubernetes manifests: Secrets (YAML and `kubectl -o json`, multi-document,
//! `kind: List`), their typed forms (dockerconfigjson, bootstrap tokens),
//! Helm's release storage (`helm.rs`) and the objects kubectl keeps in
//! `last-applied-configuration` annotations.
//!
//! Each Secret key becomes one line `KEY: "VALUE"` of a view (the decoded
//! value with its key name as context, so `db-password` lets the generic
//! password rules fire), mapped to the value's line in the original file and
//! carrying the object's `KubernetesRef`. Each key with a value also gets a
//! `kubernetes-secret:KEY=VALUE` text for the `kubernetes-secret-manifest`
//! rule, which reports a committed Secret even when no provider rule matches.

use std::borrow::Cow;
use std::sync::Arc;

use memchr::memmem;

use super::yaml::{self, Node};
use super::{Budget, Limits, Map, Piece, Segment, View, encodings, helm, lenient};
use crate::blob::KubernetesRef;

/// The annotation in which `kubectl apply` keeps the last applied object.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// Objects inside objects (last-applied inside a Helm manifest...) this deep.
const MAX_NESTED: usize = 3;

/// One line of the Kubernetes view.
#[derive(Debug)]
pub(super) struct Entry {
    pub text: Vec<u8>,
    /// Original bytes the entry points at.
    pub span: (usize, usize),
    pub steps: Vec<&'static str>,
    pub kube: Arc<KubernetesRef>,
    pub secret_entry: Option<Vec<u8>>,
}

/// Where objects come from and how to report them.
#[derive(Clone)]
pub(super) struct Cx<'a> {
    text: &'a str,
    lines: &'a [usize],
    /// Every entry points at this span (objects parsed out of a string
    /// value: an annotation, a Helm release).
    pub fixed: Option<(usize, usize)>,
    /// Steps that led to this text (a Helm release's base64/gzip).
    pub steps: Vec<&'static str>,
    /// Prefix of `kubernetes.path`.
    pub path: Option<String>,
    /// Report entries as parts of this object (a Helm release) instead of
    /// the inner object itself.
    pub outer: Option<Arc<KubernetesRef>>,
    pub nested: usize,
}

impl<'a> Cx<'a> {
    /// A context for objects parsed from `text`, whose positions are not in
    /// the blob: every entry points at `span`.
    pub fn inner(&self, text: &'a str, path: String) -> Cx<'a> {
        Cx {
            text,
            lines: &[],
            fixed: self.fixed,
            steps: self.steps.clone(),
            path: Some(join(self.path.as_deref(), &path)),
            outer: self.outer.clone(),
            nested: self.nested + 1,
        }
    }

    /// The original span a node's entry points at: from the node to the end
    /// of its line.
    pub fn span(&self, node: &Node) -> (usize, usize) {
        if let Some(s) = self.fixed {
            return s;
        }
        let Some(&line_start) = node.line.checked_sub(1).and_then(|l| self.lines.get(l)) else {
            return (0, 0);
        };
        let rest = &self.text[line_start..];
        let eol = line_start + rest.find('\n').unwrap_or(rest.len());
        let at = rest
            .char_indices()
            .nth(node.col)
            .map_or(eol, |(i, _)| line_start + i)
            .min(eol);
        let end = if self.text[..eol].ends_with('\r') {
            eol - 1
        } else {
            eol
        };
        (at, end.max(at))
    }

    /// The original span of a key's value: from the value (or, when the
    /// value starts on a later line, as a block scalar does, from its
    /// indicator on the key's line) to the end of its last line, the lines
    /// below indented deeper than the key. Raw matches inside it are the
    /// same secret as the decoded ones and merge with them.
    pub fn value_span(&self, key: &Node, value: &Node) -> (usize, usize) {
        if let Some(s) = self.fixed {
            return s;
        }
        let (key_at, key_eol) = self.span(key);
        let (mut start, mut end) = self.span(value);
        if value.line != key.line {
            // `key: |`: start after the colon on the key's line.
            let line = &self.text[key_at..key_eol];
            start = line.find(':').map_or(key_at, |c| {
                let after = &line[c + 1..];
                key_at + c + 1 + (after.len() - after.trim_start().len())
            });
        }
        let mut line = value.line;
        while let Some(&line_start) = self.lines.get(line) {
            let rest = &self.text[line_start..];
            let text = &rest[..rest.find('\n').unwrap_or(rest.len())];
            let body = text.trim_end_matches('\r');
            line += 1;
            if body.trim().is_empty() {
                continue;
            }
            let indent = body.len() - body.trim_start_matches([' ', '\t']).len();
            if indent <= key.col {
                break;
            }
            end = line_start + body.len();
        }
        (start, end.max(start))
    }

    /// The reference an entry of object `obj` reports.
    fn kref(&self, obj: &KubernetesRef, key: &str, path: Option<String>) -> Arc<KubernetesRef> {
        match &self.outer {
            Some(outer) => {
                let inner = format!(
                    "{}/{}.{}",
                    obj.kind,
                    obj.name.as_deref().unwrap_or("-"),
                    join(Some(key), path.as_deref().unwrap_or(""))
                );
                Arc::new(KubernetesRef {
                    path: Some(join(self.path.as_deref(), inner.trim_end_matches('.'))),
                    ..(**outer).clone()
                })
            }
            None => Arc::new(KubernetesRef {
                key: Some(key.to_string()),
                path: match (self.path.as_deref(), path) {
                    (None, None) => None,
                    (a, b) => Some(join(a, b.as_deref().unwrap_or(""))),
                },
                ..obj.clone()
            }),
        }
    }
}

/// `a.b`, leaving out empty parts.
pub(super) fn join(a: Option<&str>, b: &str) -> String {
    match a {
        Some(a) if !a.is_empty() && !b.is_empty() => format!("{a}.{b}"),
        Some(a) if !a.is_empty() => a.to_string(),
        _ => b.to_string(),
    }
}

/// The entry line for a key and its value: quoted when it is one line, so
/// the quoted-assignment rules (medium confidence) see it.
pub(super) fn entry_text(key: &str, value: &[u8]) -> Vec<u8> {
    let mut t = Vec::with_capacity(key.len() + value.len() + 4);
    t.extend_from_slice(key.as_bytes());
    if memchr::memchr2(b'\n', b'"', value).is_none() {
        t.extend_from_slice(b": \"");
        t.extend_from_slice(value);
        t.push(b'"');
    } else {
        t.extend_from_slice(b": ");
        t.extend_from_slice(value);
    }
    t
}

/// True if `data` may hold a Secret, a List or a ConfigMap: a `kind` key
/// with one of those values (quoted or not), in YAML, JSON or JSON escaped inside a string
/// (a last-applied annotation in `kubectl -o json` output). One memmem
/// pass: an object whose last-applied copy holds a Secret says so too.
fn triggered(data: &[u8]) -> bool {
    memmem::find_iter(data, b"kind").any(|at| {
        let rest = &data[at + 4..];
        let sep = rest
            .iter()
            .take(8)
            .position(|b| !matches!(b, b'"' | b'\'' | b'\\' | b' ' | b'\t' | b':'))
            .unwrap_or(0);
        let (seps, r) = rest.split_at(sep);
        if !seps.contains(&b':') {
            return false;
        }
        let word_end = r
            .iter()
            .position(|b| !b.is_ascii_alphanumeric())
            .unwrap_or(r.len());
        // `secret`: hand-written manifests the line reader accepts.
        matches!(&r[..word_end], b"Secret" | b"secret" | b"ConfigMap")
            || r[..word_end].ends_with(b"List")
    })
}

/// True if the text's first line that is not blank or a `#` comment opens a
/// YAML or JSON document (`---`, `{`, `[`, or `key:`): source code that only
/// mentions `kind: Secret` (a test, a doc comment) is not a broken manifest.
fn starts_like_manifest(text: &str) -> bool {
    let Some(first) = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
    else {
        return false;
    };
    if first.starts_with("---") || first.starts_with('{') || first.starts_with('[') {
        return true;
    }
    let key_end = first
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '"' | '/')))
        .unwrap_or(first.len());
    key_end > 0 && first[key_end..].starts_with(':')
}

/// The Kubernetes view of `data`, if it holds Secrets (or Helm releases,
/// or last-applied annotations) with values worth scanning.
pub fn view(
    data: &[u8],
    limits: &Limits,
    budget: &mut Budget,
    notes: &mut Vec<String>,
) -> Option<View> {
    if limits.max_depth == 0 || !triggered(data) {
        return None;
    }
    let text = std::str::from_utf8(data).ok()?;
    let (docs, err) = yaml::parse(text);
    let lines: Vec<usize> = std::iter::once(0)
        .chain(memchr::memchr_iter(b'\n', data).map(|i| i + 1))
        .collect();
    let cx = Cx {
        text,
        lines: &lines,
        fixed: None,
        steps: Vec::new(),
        path: None,
        outer: None,
        nested: 0,
    };
    let mut entries = Vec::new();
    for d in &docs {
        object(d, &cx, &mut entries, budget, notes);
    }
    // What the parser refused (from the document it stopped in) and
    // manifests escaped into one line are read line by line.
    let roots: Vec<usize> = docs
        .iter()
        .filter_map(|d| d.line.checked_sub(1).and_then(|l| lines.get(l)).copied())
        .collect();
    let mut covered: Vec<usize> = entries.iter().map(|e| e.span.0).collect();
    covered.sort_unstable();
    let read = lenient::read(
        text,
        err.is_some(),
        &roots,
        &covered,
        &cx,
        &mut entries,
        budget,
        notes,
    );
    if let Some(e) = err
        && read == 0
        && !text.contains("{{")
        && starts_like_manifest(text)
    {
        // A chart template (`{{ ... }}`) is not YAML until rendered; its raw
        // text was scanned and that is all there is to do.
        notes.push(format!(
            "not a valid YAML/JSON manifest ({e}); Kubernetes objects from there on were not \
             decoded (the raw text was scanned)"
        ));
    }
    let repeats = drop_repeated_last_applied(&mut entries);
    build_view(entries, repeats)
}

/// A last-applied copy that holds the same value as the object itself is
/// the same secret: report it once, at the object's key. Returns the blob
/// spans of the dropped copies.
fn drop_repeated_last_applied(entries: &mut Vec<Entry>) -> Vec<(usize, usize)> {
    let is_copy = |e: &Entry| {
        e.kube
            .path
            .as_deref()
            .is_some_and(|p| p.starts_with("last-applied-configuration"))
    };
    let originals: Vec<(KubernetesRef, Vec<u8>)> = entries
        .iter()
        .filter(|e| !is_copy(e))
        .map(|e| {
            (
                KubernetesRef {
                    path: None,
                    ..(*e.kube).clone()
                },
                e.text.clone(),
            )
        })
        .collect();
    let mut repeats = Vec::new();
    entries.retain(|e| {
        let keep = !is_copy(e)
            || !originals.iter().any(|(k, t)| {
                *t == e.text
                    && k.kind == e.kube.kind
                    && k.name == e.kube.name
                    && k.namespace == e.kube.namespace
                    && k.key == e.kube.key
            });
        if !keep {
            repeats.push(e.span);
        }
        keep
    });
    repeats
}

fn build_view(entries: Vec<Entry>, repeats: Vec<(usize, usize)>) -> Option<View> {
    if entries.is_empty() {
        return None;
    }
    let mut data = Vec::new();
    let mut pieces = Vec::new();
    let mut segments = Vec::new();
    for e in entries {
        let at = data.len();
        data.extend_from_slice(&e.text);
        data.push(b'\n');
        pieces.push(Piece {
            at,
            start: e.span.0,
            end: e.span.1,
        });
        segments.push(Segment {
            at,
            end: data.len(),
            steps: e.steps,
            kubernetes: Some(e.kube),
            secret_entry: e.secret_entry,
        });
    }
    Some(View {
        steps: Vec::new(),
        data,
        map: Map::Pieces(pieces),
        segments,
        repeats,
    })
}

/// Entries of one object (and of the objects it holds).
pub(super) fn object(
    node: &Node,
    cx: &Cx<'_>,
    out: &mut Vec<Entry>,
    budget: &mut Budget,
    notes: &mut Vec<String>,
) {
    let kind = node.str_at(&["kind"]).unwrap_or("");
    if kind == "List" || kind.ends_with("List") {
        for item in node.get("items").map(Node::items).unwrap_or(&[]) {
            object(item, cx, out, budget, notes);
        }
        return;
    }
    let meta = |k: &str| node.str_at(&["metadata", k]).map(str::to_string);
    let obj = KubernetesRef {
        kind: kind.to_string(),
        namespace: meta("namespace"),
        name: meta("name"),
        key: None,
        secret_type: node.str_at(&["type"]).map(str::to_string),
        path: None,
        log: None,
    };
    match kind {
        "Secret" => secret(node, &obj, cx, out, budget, notes),
        "ConfigMap" if node.str_at(&["metadata", "labels", "owner"]) == Some("helm") => {
            if let Some(release) = node.get("data").and_then(|d| d.get("release")) {
                helm::release(release, &obj, false, cx, out, budget, notes);
            }
        }
        _ => {}
    }
    last_applied(node, cx, out, budget, notes);
}

/// `namespace/name` of an object for notes.
pub(super) fn describe(obj: &KubernetesRef) -> String {
    format!(
        "{} {}/{}",
        obj.kind,
        obj.namespace.as_deref().unwrap_or("-"),
        obj.name.as_deref().unwrap_or("-")
    )
}

/// A Secret key's decoded value, where it is, and the steps to it.
type KeyValue = (String, Vec<u8>, (usize, usize), Vec<&'static str>);

/// One key of a Secret's `data` (base64, `encoded`) or `stringData` as
/// written, with the original span its entry points at.
pub(super) struct RawKey<'t> {
    pub key: &'t str,
    pub value: Cow<'t, str>,
    pub encoded: bool,
    pub span: (usize, usize),
}

fn secret(
    node: &Node,
    obj: &KubernetesRef,
    cx: &Cx<'_>,
    out: &mut Vec<Entry>,
    budget: &mut Budget,
    notes: &mut Vec<String>,
) {
    if node.get("sops").is_some() {
        // SOPS-encrypted: every value is ENC[...] ciphertext.
        return;
    }
    if obj.secret_type.as_deref() == Some("helm.sh/release.v1") {
        if let Some(release) = node.get("data").and_then(|d| d.get("release")) {
            helm::release(release, obj, true, cx, out, budget, notes);
        }
        return;
    }
    let mut keys = Vec::new();
    for (field, encoded) in [("data", true), ("stringData", false)] {
        let Some(map) = node.get(field) else {
            continue;
        };
        for (key, key_node, v) in map.keyed_entries() {
            if let Some(value) = v.as_str() {
                keys.push(RawKey {
                    key,
                    value: Cow::Borrowed(value),
                    encoded,
                    span: cx.value_span(key_node, v),
                });
            }
        }
    }
    secret_keys(obj, &keys, cx, out, budget, notes);
}

/// The entries of a Secret's keys: each value decoded, with its
/// `kubernetes-secret` text, a docker config's registry credentials and a
/// bootstrap token's whole token. Shared by the YAML tree and the
/// line-based reader of manifests the YAML parser refused (`lenient.rs`).
pub(super) fn secret_keys(
    obj: &KubernetesRef,
    keys: &[RawKey<'_>],
    cx: &Cx<'_>,
    out: &mut Vec<Entry>,
    budget: &mut Budget,
    notes: &mut Vec<String>,
) {
    let stype = obj.secret_type.as_deref().unwrap_or("");
    // Values by key, for the typed secrets that combine keys.
    let mut values: Vec<KeyValue> = Vec::new();
    for k in keys {
        let (key, s, encoded, span) = (k.key, &*k.value, k.encoded, k.span);
        let trimmed = s.trim();
        if trimmed.is_empty() || trimmed.starts_with("ENC[") {
            continue;
        }
        let mut steps = cx.steps.clone();
        let value = if encoded {
            match encodings::base64_decode(trimmed.as_bytes()) {
                Ok(b) => {
                    steps.push("base64");
                    b
                }
                Err(e) => {
                    notes.push(format!(
                        "{}: data key `{key}` is not valid base64 ({e}); not decoded",
                        describe(obj)
                    ));
                    continue;
                }
            }
        } else {
            s.as_bytes().to_vec()
        };
        if value.trim_ascii().is_empty() || !budget.take(value.len()) {
            continue;
        }
        let kube = cx.kref(obj, key, None);
        out.push(Entry {
            text: entry_text(key, &value),
            span,
            steps: steps.clone(),
            kube,
            secret_entry: (!is_public_key(stype, key))
                .then(|| [format!("kubernetes-secret:{key}=").as_bytes(), &value].concat()),
        });
        if key == ".dockerconfigjson" || key == ".dockercfg" {
            docker_config(obj, key, &value, span, &steps, cx, out, budget, notes);
        }
        values.push((key.to_string(), value, span, steps));
    }
    if stype == "bootstrap.kubernetes.io/token" {
        let get = |k: &str| values.iter().find(|v| v.0 == k);
        if let (Some(id), Some(secret)) = (get("token-id"), get("token-secret")) {
            // The whole token is `token-id.token-secret`; written as a
            // kubeadm flag so the bootstrap-token rule reads it.
            let mut text = b"kubeadm join --token ".to_vec();
            text.extend_from_slice(id.1.trim_ascii());
            text.push(b'.');
            text.extend_from_slice(secret.1.trim_ascii());
            out.push(Entry {
                text,
                span: secret.2,
                steps: secret.3.clone(),
                kube: cx.kref(obj, "token-secret", Some("token-id.token-secret".into())),
                secret_entry: None,
            });
        }
    }
}

/// Keys of typed Secrets that hold no secret (a certificate, a namespace,
/// a user name, a bootstrap token's public id and settings): scanned, but
/// not reported as a committed secret by themselves.
fn is_public_key(secret_type: &str, key: &str) -> bool {
    key.ends_with(".crt")
        || match secret_type {
            "kubernetes.io/service-account-token" => key == "namespace",
            "kubernetes.io/basic-auth" => key == "username",
            "bootstrap.kubernetes.io/token" => key != "token-secret",
            _ => false,
        }
}

/// `auths.*.auth` of a docker config: base64 of `user:password`, written
/// out as `REGISTRY username=USER password="PASSWORD"`.
#[allow(clippy::too_many_arguments)]
fn docker_config(
    obj: &KubernetesRef,
    key: &str,
    value: &[u8],
    span: (usize, usize),
    steps: &[&'static str],
    cx: &Cx<'_>,
    out: &mut Vec<Entry>,
    budget: &mut Budget,
    notes: &mut Vec<String>,
) {
    let json: serde_json::Value = match serde_json::from_slice(value) {
        Ok(j) => j,
        Err(e) => {
            notes.push(format!(
                "{}: key `{key}` is not valid JSON ({e}); its registry credentials were not decoded",
                describe(obj)
            ));
            return;
        }
    };
    let auths = json.get("auths").unwrap_or(&json);
    let Some(auths) = auths.as_object() else {
        return;
    };
    for (registry, entry) in auths {
        let Some(auth) = entry.get("auth").and_then(|a| a.as_str()) else {
            continue;
        };
        let Ok(decoded) = encodings::base64_decode(auth.as_bytes()) else {
            notes.push(format!(
                "{}: `{key}` auths.{registry}.auth is not valid base64; not decoded",
                describe(obj)
            ));
            continue;
        };
        let Some(colon) = decoded.iter().position(|&b| b == b':') else {
            continue;
        };
        if !budget.take(decoded.len()) {
            return;
        }
        let (user, password) = (&decoded[..colon], &decoded[colon + 1..]);
        let mut text = format!("{registry} username=").into_bytes();
        text.extend_from_slice(user);
        text.extend_from_slice(b" password=\"");
        text.extend_from_slice(password);
        text.push(b'"');
        let mut steps = steps.to_vec();
        steps.push("base64");
        out.push(Entry {
            text,
            span,
            steps,
            kube: cx.kref(obj, key, Some(format!("auths.{registry}.auth"))),
            secret_entry: None,
        });
    }
}

/// The object kept in the last-applied annotation, scanned as a manifest.
fn last_applied(
    node: &Node,
    cx: &Cx<'_>,
    out: &mut Vec<Entry>,
    budget: &mut Budget,
    notes: &mut Vec<String>,
) {
    let Some(ann) = node
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(LAST_APPLIED))
    else {
        return;
    };
    let Some(json) = ann.as_str() else {
        return;
    };
    if cx.nested >= MAX_NESTED {
        notes.push(format!(
            "{LAST_APPLIED} annotation of {} nested more than {MAX_NESTED} levels deep; not \
             decoded (the raw text was scanned)",
            node.str_at(&["metadata", "name"]).unwrap_or("-")
        ));
        return;
    }
    let (docs, err) = yaml::parse(json);
    if let Some(e) = err {
        notes.push(format!(
            "{LAST_APPLIED} annotation of {} is not valid JSON ({e}); not decoded",
            node.str_at(&["metadata", "name"]).unwrap_or("-")
        ));
    }
    let mut inner = cx.inner(json, "last-applied-configuration".into());
    inner.fixed = Some(cx.span(ann));
    for d in &docs {
        object(d, &inner, out, budget, notes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(v: &View) -> Vec<String> {
        String::from_utf8_lossy(&v.data)
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn run(text: &str) -> (Option<View>, Vec<String>) {
        let mut notes = Vec::new();
        let v = view(
            text.as_bytes(),
            &Limits::default(),
            &mut Budget::new(1 << 20),
            &mut notes,
        );
        (v, notes)
    }

    #[test]
    fn data_and_string_data_become_key_value_lines_at_their_lines() {
        let text = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: prod\ntype: Opaque\ndata:\n  db-password: aHVudGVyMi1wcm9k\n  empty: \"\"\nstringData:\n  api-token: s3cr3t-t0ken\n"; // leakhound:allow
        let (v, notes) = run(text);
        assert!(notes.is_empty(), "{notes:?}");
        let v = v.unwrap();
        assert_eq!(
            lines_of(&v),
            [
                "db-password: \"hunter2-prod\"",
                "api-token: \"s3cr3t-t0ken\""
            ]
        );
        let (s, e) = v.map.span(0, 5);
        assert_eq!(&text[s..e], "aHVudGVyMi1wcm9k");
        let seg = v.segment_at(3).unwrap();
        let k = seg.kubernetes.as_deref().unwrap();
        assert_eq!(
            (k.kind.as_str(), k.namespace.as_deref(), k.name.as_deref()),
            ("Secret", Some("prod"), Some("db"))
        );
        assert_eq!(k.key.as_deref(), Some("db-password"));
        assert_eq!(seg.steps, ["base64"]);
        assert!(v.segment_at(30).unwrap().steps.is_empty());
    }

    #[test]
    fn json_lists_and_legacy_dockercfg_are_decoded() {
        // .dockercfg: registries at the top level, no `auths`.
        let cfg = r#"{"registry.acme-corp.io": {"auth": "Ym90Okh0NS1XcTl6S20yTHg3dlI=", "email": "ci@acme-corp.io"}}"#; // leakhound:allow
        let cfg = cfg
            .as_bytes()
            .chunks(3)
            .map(|c| {
                const A: &[u8; 64] =
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
                let v = (c[0] as u32) << 16
                    | (*c.get(1).unwrap_or(&0) as u32) << 8
                    | *c.get(2).unwrap_or(&0) as u32;
                (0..4)
                    .map(|k| {
                        if k <= c.len() {
                            A[(v >> (18 - 6 * k) & 63) as usize] as char
                        } else {
                            '='
                        }
                    })
                    .collect::<String>()
            })
            .collect::<String>();
        let text = format!(
            "{{\n  \"kind\": \"List\",\n  \"items\": [\n    {{\"kind\": \"Secret\", \"type\": \"kubernetes.io/dockercfg\",\n     \"metadata\": {{\"name\": \"legacy\"}},\n     \"data\": {{\".dockercfg\": \"{cfg}\"}}}}\n  ]\n}}\n"
        );
        let (v, notes) = run(&text);
        assert!(notes.is_empty(), "{notes:?}");
        let v = v.unwrap();
        let lines = lines_of(&v);
        assert!(
            lines
                .iter()
                .any(|l| l == "registry.acme-corp.io username=bot password=\"Ht5-Wq9zKm2Lx7vR\""), // leakhound:allow
            "{lines:?}"
        );
        let seg = v.segments.last().unwrap();
        let k = seg.kubernetes.as_deref().unwrap();
        assert_eq!(k.path.as_deref(), Some("auths.registry.acme-corp.io.auth"));
        assert_eq!(seg.steps, ["base64", "base64"]);
        // The entry points at the value's line (6) of the original JSON.
        let (s, _) = v.map.span(seg.at, seg.end);
        assert_eq!(text[..s].matches('\n').count() + 1, 6);
    }

    #[test]
    fn sealed_sops_and_unrelated_objects_give_nothing() {
        let sealed =
            "kind: SealedSecret\nspec:\n  encryptedData:\n    password: AgBy3i4OJSWK+PiTySYZZA==\n";
        assert!(run(sealed).0.is_none());
        let sops = "kind: Secret\ndata:\n  password: ENC[AES256_GCM,data:abc=,type:str]\nsops:\n  version: 3.8.1\n";
        assert!(run(sops).0.is_none());
        assert!(run("kind: Deployment\nspec: {}\n").0.is_none());
    }

    #[test]
    fn invalid_base64_and_yaml_are_notes() {
        let (_, notes) = run("kind: Secret\nmetadata: {name: x}\ndata:\n  k: '***'\n");
        assert!(notes[0].contains("not valid base64"), "{notes:?}");
        let (_, notes) = run("kind: Secret\ndata: [unclosed\n");
        assert!(notes[0].contains("not a valid YAML"), "{notes:?}");
    }
}
