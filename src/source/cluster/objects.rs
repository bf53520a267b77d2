//! Objects from the API become blobs.
//!
//! - A Secret, and a ConfigMap in which Helm stores a release (label
//!   `owner: helm`), is one blob: the object's JSON (with the `kind` and
//!   `apiVersion` list items lack, without `managedFields`), which the
//!   Kubernetes decoder reads exactly as it reads a manifest in a file:
//!   typed Secrets, Helm releases, last-applied copies. `place` then names
//!   the key in the finding's path (`Secret/db:data[password]`).
//! - Every other ConfigMap key (`data`, and `binaryData` decoded) is a blob
//!   `KEY: "VALUE"`, so the key names the value for the generic rules, as
//!   for a Secret's keys.
//! - In a pod template (a Pod's spec; a Deployment's, StatefulSet's,
//!   DaemonSet's or Job's `spec.template`; a CronJob's
//!   `spec.jobTemplate.spec.template`), each container's literal `env`
//!   values (`NAME: "VALUE"`), its `args` and `command` (joined as a shell
//!   line), the exec commands and HTTP headers of its probes and lifecycle
//!   hooks are blobs, named like `Deployment/api:containers[app].env[X]`.
//! - Annotations of objects other than Secrets are blobs too (but not
//!   kubectl's last-applied copy, which repeats the object's own fields).

use std::sync::Arc;

use serde_json::Value;

use super::Kind;
use crate::blob::{Blob, KubernetesRef, Origin};
use crate::decode::encodings::base64_decode;
use crate::decode::kubernetes::entry_text;
use crate::finding::Finding;

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// One object's blobs, and whether a controller owns it.
pub struct Object {
    pub kind: Kind,
    pub namespace: Option<String>,
    pub name: String,
    /// The object was made by a controller from a template that is audited
    /// too (a ReplicaSet's Pod, a CronJob's Job): its findings repeat the
    /// owner's, and `dedup_derived` drops the repeats.
    pub derived: bool,
    pub blobs: Vec<Blob>,
}

/// The blobs of one list item of `kind`.
pub fn object(kind: Kind, mut item: Value) -> Object {
    let meta = |k: &str| {
        item.pointer(&format!("/metadata/{k}"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let name = meta("name").unwrap_or_else(|| "-".into());
    let namespace = meta("namespace");
    let derived = item
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|owners| {
            owners
                .iter()
                .any(|o| o.get("controller").and_then(Value::as_bool) == Some(true))
        })
        && matches!(kind, Kind::Pod | Kind::Job);
    let object = KubernetesRef {
        kind: kind.name().to_string(),
        namespace: namespace.clone(),
        name: Some(name.clone()),
        secret_type: (kind == Kind::Secret)
            .then(|| item.get("type").and_then(Value::as_str).map(str::to_string))
            .flatten(),
        ..KubernetesRef::default()
    };
    let prefix = format!("{}/{name}", kind.name());
    let mut b = Builder {
        prefix: &prefix,
        object: &object,
        blobs: Vec::new(),
    };
    let helm_storage = kind == Kind::ConfigMap
        && item
            .pointer("/metadata/labels/owner")
            .and_then(Value::as_str)
            == Some("helm");
    if kind == Kind::Secret || helm_storage {
        whole(&mut b, kind, &mut item);
    } else {
        annotations(&mut b, &item);
        if kind == Kind::ConfigMap {
            config_map(&mut b, &item);
        } else if let Some(spec) = pod_spec(kind, &item) {
            pod_template(&mut b, spec);
        }
    }
    Object {
        kind,
        namespace,
        name,
        derived,
        blobs: b.blobs,
    }
}

struct Builder<'a> {
    prefix: &'a str,
    object: &'a KubernetesRef,
    blobs: Vec<Blob>,
}

impl Builder<'_> {
    /// A blob for `field` of the object, reported with `object` changed by
    /// `refine`.
    fn add(&mut self, field: &str, data: Vec<u8>, refine: impl FnOnce(&mut KubernetesRef)) {
        let mut object = self.object.clone();
        refine(&mut object);
        self.blobs.push(Blob::new(
            Origin::Cluster {
                path: format!("{}:{field}", self.prefix),
                object: Arc::new(object),
            },
            data,
        ));
    }
}

/// The object's JSON, for the Kubernetes decoder.
fn whole(b: &mut Builder<'_>, kind: Kind, item: &mut Value) {
    if let Some(m) = item.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    if let Some(o) = item.as_object_mut() {
        o.insert("kind".into(), kind.name().into());
        o.insert("apiVersion".into(), kind.api_version().into());
    }
    let data = serde_json::to_vec_pretty(item).unwrap_or_default();
    b.blobs.push(Blob::new(
        Origin::Cluster {
            path: b.prefix.to_string(),
            object: Arc::new(b.object.clone()),
        },
        data,
    ));
}

fn annotations(b: &mut Builder<'_>, item: &Value) {
    let Some(ann) = item
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
    else {
        return;
    };
    for (k, v) in ann {
        if k == LAST_APPLIED {
            continue;
        }
        if let Some(v) = v.as_str().filter(|v| !v.trim().is_empty()) {
            b.add(
                &format!("metadata.annotations[{k}]"),
                entry_text(k, v.as_bytes()),
                |o| o.path = Some(format!("metadata.annotations[{k}]")),
            );
        }
    }
}

fn config_map(b: &mut Builder<'_>, item: &Value) {
    for (field, encoded) in [("data", false), ("binaryData", true)] {
        let Some(map) = item.get(field).and_then(Value::as_object) else {
            continue;
        };
        for (k, v) in map {
            let Some(v) = v.as_str().filter(|v| !v.trim().is_empty()) else {
                continue;
            };
            let value = if encoded {
                let compact: String = v.split_whitespace().collect();
                match base64_decode(compact.as_bytes()) {
                    Ok(d) => d,
                    // Not base64 after all: scanned as it is.
                    Err(_) => v.as_bytes().to_vec(),
                }
            } else {
                v.as_bytes().to_vec()
            };
            b.add(&format!("{field}[{k}]"), entry_text(k, &value), |o| {
                o.key = Some(k.clone());
            });
        }
    }
}

/// The pod spec a kind's object holds.
fn pod_spec(kind: Kind, item: &Value) -> Option<&Value> {
    match kind {
        Kind::Pod => item.get("spec"),
        Kind::Deployment | Kind::StatefulSet | Kind::DaemonSet | Kind::Job => {
            item.pointer("/spec/template/spec")
        }
        Kind::CronJob => item.pointer("/spec/jobTemplate/spec/template/spec"),
        Kind::Secret | Kind::ConfigMap => None,
    }
}

/// A command line as a shell would show it: arguments with spaces quoted.
fn shell_line(args: &[Value]) -> Vec<u8> {
    let words: Vec<String> = args
        .iter()
        .filter_map(Value::as_str)
        .map(|a| {
            if a.is_empty() || (a.contains([' ', '\t']) && !a.contains(['"', '\n'])) {
                format!("\"{a}\"")
            } else {
                a.to_string()
            }
        })
        .collect();
    words.join(" ").into_bytes()
}

fn pod_template(b: &mut Builder<'_>, spec: &Value) {
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for c in spec
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let cname = c.get("name").and_then(Value::as_str).unwrap_or("-");
            let at = format!("{list}[{cname}]");
            let container = |o: &mut KubernetesRef| o.container = Some(cname.to_string());
            for e in c.get("env").and_then(Value::as_array).into_iter().flatten() {
                let (Some(name), Some(value)) = (
                    e.get("name").and_then(Value::as_str),
                    e.get("value").and_then(Value::as_str),
                ) else {
                    continue;
                };
                if value.trim().is_empty() {
                    continue;
                }
                b.add(
                    &format!("{at}.env[{name}]"),
                    entry_text(name, value.as_bytes()),
                    |o| {
                        container(o);
                        o.env = Some(name.to_string());
                    },
                );
            }
            let mut lines: Vec<(String, &Value)> = Vec::new();
            for field in ["command", "args"] {
                if let Some(v) = c.get(field) {
                    lines.push((field.to_string(), v));
                }
            }
            for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
                if let Some(v) = c.pointer(&format!("/{probe}/exec/command")) {
                    lines.push((format!("{probe}.exec.command"), v));
                }
                headers(b, &at, &format!("{probe}.httpGet"), c.get(probe), cname);
            }
            for hook in ["postStart", "preStop"] {
                let h = c.pointer(&format!("/lifecycle/{hook}"));
                if let Some(v) = h.and_then(|h| h.pointer("/exec/command")) {
                    lines.push((format!("lifecycle.{hook}.exec.command"), v));
                }
                headers(b, &at, &format!("lifecycle.{hook}.httpGet"), h, cname);
            }
            for (field, v) in lines {
                let Some(words) = v.as_array().filter(|w| !w.is_empty()) else {
                    continue;
                };
                b.add(&format!("{at}.{field}"), shell_line(words), |o| {
                    container(o);
                    o.path = Some(field.clone());
                });
            }
        }
    }
}

/// `httpGet.httpHeaders` of a probe or hook: `Authorization: Bearer ...`
/// is a secret in a pod spec.
fn headers(b: &mut Builder<'_>, at: &str, field: &str, handler: Option<&Value>, cname: &str) {
    let Some(hs) = handler
        .and_then(|h| h.pointer("/httpGet/httpHeaders"))
        .and_then(Value::as_array)
    else {
        return;
    };
    for h in hs {
        let (Some(name), Some(value)) = (
            h.get("name").and_then(Value::as_str),
            h.get("value").and_then(Value::as_str),
        ) else {
            continue;
        };
        let path = format!("{field}.httpHeaders[{name}]");
        let mut text = name.as_bytes().to_vec();
        text.extend_from_slice(b": ");
        text.extend_from_slice(value.as_bytes());
        b.add(&format!("{at}.{path}"), text, |o| {
            o.container = Some(cname.to_string());
            o.path = Some(path.clone());
        });
    }
}

/// Names the key in the path of a finding in a whole-object blob: a
/// Secret's `Secret/db` becomes `Secret/db:data[password]`, a Helm
/// release's `…:data[release].values.stripe.apiKey`, a last-applied copy's
/// `…:metadata.annotations[kubectl.kubernetes.io/last-applied-configuration].data[password]`.
pub fn place(f: &mut Finding) {
    let (Some(path), Some(k)) = (&f.path, &f.kubernetes) else {
        return;
    };
    if path.contains(':') {
        return;
    }
    let Some(key) = &k.key else {
        return;
    };
    let inner = k.path.as_deref().unwrap_or("");
    let placed = match inner.strip_prefix("last-applied-configuration") {
        Some(rest) => {
            let rest = rest.trim_start_matches('.');
            let tail = if rest.is_empty() {
                String::new()
            } else {
                format!(".{rest}")
            };
            format!("{path}:metadata.annotations[{LAST_APPLIED}].data[{key}]{tail}")
        }
        None if inner.is_empty() => format!("{path}:data[{key}]"),
        None => format!("{path}:data[{key}].{inner}"),
    };
    f.path = Some(placed);
}

/// Drops findings of derived objects (a Deployment's Pods, a CronJob's
/// Jobs) that repeat a finding of an object that is not derived, at the
/// same field in the same namespace, and repeats among derived objects
/// (fifty replicas are one finding). Findings a controller did not put
/// there (a value a webhook injected, a bare Pod) stay.
pub fn dedup_derived(findings: &mut Vec<Finding>, derived: &std::collections::HashSet<String>) {
    use std::collections::HashSet;
    let object_of = |f: &Finding| -> Option<String> {
        let k = f.kubernetes.as_ref()?;
        Some(format!(
            "{}/{}/{}",
            k.kind,
            k.namespace.as_deref().unwrap_or(""),
            k.name.as_deref().unwrap_or("")
        ))
    };
    let key = |f: &Finding| -> (Option<String>, String, String, Vec<u8>) {
        let field = f
            .path
            .as_deref()
            .and_then(|p| p.split_once(':'))
            .map(|(_, field)| field.to_string())
            .unwrap_or_default();
        (
            f.kubernetes.as_ref().and_then(|k| k.namespace.clone()),
            field,
            f.rule_id.clone(),
            f.raw_secret.clone(),
        )
    };
    let is_derived = |f: &Finding| object_of(f).is_some_and(|o| derived.contains(&o));
    let mut seen: HashSet<_> = findings
        .iter()
        .filter(|f| !is_derived(f))
        .map(key)
        .collect();
    findings.retain(|f| !is_derived(f) || seen.insert(key(f)));
}

/// The name `dedup_derived` knows an object by.
pub fn object_key(o: &Object) -> String {
    format!(
        "{}/{}/{}",
        o.kind.name(),
        o.namespace.as_deref().unwrap_or(""),
        o.name
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn paths(o: &Object) -> Vec<String> {
        o.blobs
            .iter()
            .map(|b| b.origin.display_path().unwrap().to_string())
            .collect()
    }

    #[test]
    fn pod_templates_give_one_blob_per_literal_field() {
        let dep = json!({
            "metadata": {"name": "api", "namespace": "shop",
                         "annotations": {LAST_APPLIED: "{}", "team": "payments"}},
            "spec": {"template": {"spec": {
                "initContainers": [{"name": "migrate", "command": ["sh", "-c", "migrate up"]}],
                "containers": [{
                    "name": "app",
                    "env": [{"name": "DB_PASSWORD", "value": "x"},
                            {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
                    "args": ["--token", "abc def"],
                    "livenessProbe": {"httpGet": {"path": "/", "port": 80,
                        "httpHeaders": [{"name": "Authorization", "value": "Bearer t"}]}},
                }],
            }}},
        });
        let o = object(Kind::Deployment, dep);
        assert!(!o.derived);
        assert_eq!(
            paths(&o),
            [
                "Deployment/api:metadata.annotations[team]",
                "Deployment/api:initContainers[migrate].command",
                "Deployment/api:containers[app].env[DB_PASSWORD]",
                "Deployment/api:containers[app].livenessProbe.httpGet.httpHeaders[Authorization]",
                "Deployment/api:containers[app].args",
            ]
        );
        assert_eq!(o.blobs[1].data, b"sh -c \"migrate up\"");
        assert_eq!(o.blobs[2].data, b"DB_PASSWORD: \"x\"");
        let k = o.blobs[2].origin.kubernetes().unwrap();
        assert_eq!(
            (
                k.container.as_deref(),
                k.env.as_deref(),
                k.namespace.as_deref()
            ),
            (Some("app"), Some("DB_PASSWORD"), Some("shop"))
        );
    }

    #[test]
    fn secrets_are_whole_objects_and_owned_pods_are_derived() {
        let s = object(
            Kind::Secret,
            json!({"metadata": {"name": "db", "managedFields": [{"manager": "kubectl"}]},
                   "type": "Opaque", "data": {"password": "aHVudGVy"}}),
        );
        assert_eq!(paths(&s), ["Secret/db"]);
        let text = String::from_utf8(s.blobs[0].data.clone()).unwrap();
        assert!(text.contains("\"kind\": \"Secret\"") && !text.contains("managedFields"));
        let pod = json!({"metadata": {"name": "api-1", "ownerReferences": [
            {"kind": "ReplicaSet", "name": "api-7d", "controller": true}]},
            "spec": {"containers": [{"name": "app", "env": [{"name": "A", "value": "b"}]}]}});
        assert!(object(Kind::Pod, pod).derived);
    }

    #[test]
    fn findings_in_whole_objects_name_their_key() {
        let mut f = Finding {
            rule_id: "r".into(),
            rule_name: "r".into(),
            severity: crate::rules::Severity::High,
            confidence: crate::rules::Confidence::High,
            path: Some("Secret/db".into()),
            line: 1,
            column: 1,
            end_line: 1,
            end_column: 2,
            snippet: String::new(),
            secret: None,
            fingerprint: String::new(),
            raw_secret: Vec::new(),
            entropy: 0.0,
            decoded: Vec::new(),
            commit: None,
            image: None,
            kubernetes: Some(KubernetesRef {
                kind: "Secret".into(),
                key: Some("release".into()),
                path: Some("values.stripe.apiKey".into()),
                ..KubernetesRef::default()
            }),
            span: 0..1,
            timestamp: None,
        };
        place(&mut f);
        assert_eq!(
            f.path.as_deref(),
            Some("Secret/db:data[release].values.stripe.apiKey")
        );
    }
}
