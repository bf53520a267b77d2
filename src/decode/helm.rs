//! Helm 3 release storage: a Secret of type `helm.sh/release.v1` (named
//! `sh.helm.release.v1.NAME.vN`) whose `data.release` is base64 (the
//! Secret's encoding) of base64 of gzip of the release JSON, or a ConfigMap
//! labelled `owner: helm` whose `data.release` is base64 of gzip.
//!
//! The release holds the values the chart was installed with (`config`,
//! reported as `values.a.b`), the chart's defaults (`chart.values.a.b`), its
//! templates and the rendered manifests (Secrets among them, decoded as
//! manifests). Every entry points at the `release` key's line and reports
//! the inner path in `kubernetes.path`.

use super::kubernetes::{Cx, Entry, describe, entry_text, join, object};
use super::yaml::{self, Node};
use super::{Budget, encodings};
use crate::blob::KubernetesRef;
use std::sync::Arc;

/// Decodes a release value and adds entries for what it holds.
pub(super) fn release(
    value: &Node,
    obj: &KubernetesRef,
    in_secret: bool,
    cx: &Cx<'_>,
    out: &mut Vec<Entry>,
    budget: &mut Budget,
    notes: &mut Vec<String>,
) {
    let Some(text) = value.as_str() else {
        return;
    };
    let what = describe(obj);
    let mut steps = cx.steps.clone();
    let mut bytes = text.as_bytes().to_vec();
    // A Secret's data is base64 of what Helm stored; Helm stores base64.
    for _ in 0..1 + usize::from(in_secret) {
        match encodings::base64_decode(&bytes) {
            Ok(b) => bytes = b,
            Err(e) => {
                notes.push(format!(
                    "{what}: Helm release is not valid base64 ({e}); not decoded"
                ));
                return;
            }
        }
        steps.push("base64");
    }
    if encodings::is_compressed(&bytes) {
        let (step, inflated, problem) = encodings::inflate(&bytes, budget);
        if let Some(p) = problem {
            notes.push(format!("{what}: Helm release: {p}"));
            return;
        }
        steps.push(step);
        bytes = inflated;
    }
    let json: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(j) => j,
        Err(e) => {
            notes.push(format!(
                "{what}: Helm release is not valid JSON after decoding ({e}); not scanned"
            ));
            return;
        }
    };
    let outer = Arc::new(KubernetesRef {
        key: Some("release".into()),
        ..obj.clone()
    });
    let mut rcx = cx.clone();
    rcx.fixed = Some(cx.span(value));
    rcx.steps = steps;
    rcx.outer = Some(outer.clone());
    rcx.nested += 1;
    let mut add = |path: String, key: &str, v: &[u8], out: &mut Vec<Entry>| {
        out.push(Entry {
            text: entry_text(key, v),
            span: rcx.fixed.unwrap_or_default(),
            steps: rcx.steps.clone(),
            kube: Arc::new(KubernetesRef {
                path: Some(join(cx.path.as_deref(), &path)),
                ..(*outer).clone()
            }),
            secret_entry: None,
        });
    };
    flatten("values", "values", &json["config"], &mut add, out);
    flatten(
        "chart.values",
        "values",
        &json["chart"]["values"],
        &mut add,
        out,
    );
    for t in json["chart"]["templates"].as_array().into_iter().flatten() {
        let (Some(name), Some(data)) = (t["name"].as_str(), t["data"].as_str()) else {
            continue;
        };
        if let Ok(src) = encodings::base64_decode(data.as_bytes())
            && budget.take(src.len())
        {
            add(format!("chart.templates.{name}"), name, &src, out);
        }
    }
    let mut manifests = vec![("manifest".to_string(), &json["manifest"])];
    for (i, h) in json["hooks"].as_array().into_iter().flatten().enumerate() {
        manifests.push((format!("hooks[{i}].manifest"), &h["manifest"]));
    }
    for (path, m) in manifests {
        let Some(m) = m.as_str() else {
            continue;
        };
        // The rendered text as it is, then its objects as manifests.
        add(path.clone(), &path, m.as_bytes(), out);
        if rcx.nested > 3 {
            continue;
        }
        let (docs, err) = yaml::parse(m);
        if let Some(e) = err {
            notes.push(format!(
                "{what}: Helm release {path} is not valid YAML ({e}); its objects were not decoded"
            ));
        }
        let mcx = rcx.inner(m, path);
        for d in &docs {
            object(d, &mcx, out, budget, notes);
        }
    }
}

/// One entry per string leaf of a values tree: `KEY: "VALUE"` (the leaf's
/// own key as context), reported as `prefix.a.b`.
fn flatten(
    path: &str,
    key: &str,
    v: &serde_json::Value,
    add: &mut impl FnMut(String, &str, &[u8], &mut Vec<Entry>),
    out: &mut Vec<Entry>,
) {
    match v {
        serde_json::Value::String(s) if !s.is_empty() => {
            add(path.to_string(), key, s.as_bytes(), out)
        }
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                flatten(&format!("{path}.{k}"), k, v, add, out);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten(&format!("{path}[{i}]"), key, v, add, out);
            }
        }
        _ => {}
    }
}
