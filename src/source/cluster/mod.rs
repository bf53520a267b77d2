//! A live cluster as a source (`leakhound cluster`): the objects the
//! Kubernetes API lists (Secrets, ConfigMaps, and the pod templates of
//! Pods, Deployments, StatefulSets, DaemonSets, Jobs and CronJobs), page by
//! page (`limit`/`continue`), turned into blobs.
//!
//! - `kubeconfig`: where the cluster is and who we are (kubeconfig, or the
//!   in-cluster service account).
//! - `client`: HTTPS GETs with deadlines and size bounds.
//! - `objects`: an object becomes blobs. A Secret (and Helm's ConfigMap
//!   storage) is one blob, the object's JSON, read by the same Kubernetes
//!   decoder as files (`decode::kubernetes`, Helm releases included); a
//!   ConfigMap key, a container's literal `env` value, `args` or `command`
//!   is one blob each, named `Kind/name:field`.

pub mod client;
pub mod kubeconfig;
pub mod objects;

use serde_json::Value;

pub use client::{ApiError, Client, Limits};

/// The kinds audited.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Secret,
    ConfigMap,
    Pod,
    Deployment,
    StatefulSet,
    DaemonSet,
    Job,
    CronJob,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::Secret,
        Kind::ConfigMap,
        Kind::Pod,
        Kind::Deployment,
        Kind::StatefulSet,
        Kind::DaemonSet,
        Kind::Job,
        Kind::CronJob,
    ];

    /// The kind as objects name it (`Deployment`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Secret => "Secret",
            Kind::ConfigMap => "ConfigMap",
            Kind::Pod => "Pod",
            Kind::Deployment => "Deployment",
            Kind::StatefulSet => "StatefulSet",
            Kind::DaemonSet => "DaemonSet",
            Kind::Job => "Job",
            Kind::CronJob => "CronJob",
        }
    }

    /// The resource as URLs and RBAC rules name it (`deployments`).
    pub fn resource(self) -> &'static str {
        match self {
            Kind::Secret => "secrets",
            Kind::ConfigMap => "configmaps",
            Kind::Pod => "pods",
            Kind::Deployment => "deployments",
            Kind::StatefulSet => "statefulsets",
            Kind::DaemonSet => "daemonsets",
            Kind::Job => "jobs",
            Kind::CronJob => "cronjobs",
        }
    }

    /// `apiVersion` of the kind's objects.
    pub fn api_version(self) -> &'static str {
        match self {
            Kind::Secret | Kind::ConfigMap | Kind::Pod => "v1",
            Kind::Deployment | Kind::StatefulSet | Kind::DaemonSet => "apps/v1",
            Kind::Job | Kind::CronJob => "batch/v1",
        }
    }

    /// The list endpoint: in one namespace, or across all of them.
    pub fn list_path(self, namespace: Option<&str>) -> String {
        let base = match self.api_version() {
            "v1" => "/api/v1".to_string(),
            group => format!("/apis/{group}"),
        };
        match namespace {
            Some(ns) => format!("{base}/namespaces/{ns}/{}", self.resource()),
            None => format!("{base}/{}", self.resource()),
        }
    }
}

/// True if `name` is a valid namespace name (an RFC 1123 label): checked
/// before it goes into a URL path.
pub fn valid_namespace(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// Pages of one list: `limit` objects at a time, following `continue`.
pub struct Lister<'a> {
    client: &'a Client,
    path: String,
    selector: Option<String>,
    limit: String,
    next: Option<String>,
    done: bool,
    /// Pages read so far.
    pub pages: usize,
}

/// More pages than any real list has (a server that keeps answering with
/// new `continue` tokens would otherwise be followed for ever).
const MAX_PAGES: usize = 1_000_000;

impl<'a> Lister<'a> {
    pub fn new(
        client: &'a Client,
        kind: Kind,
        namespace: Option<&str>,
        selector: Option<&str>,
        page_size: usize,
    ) -> Lister<'a> {
        Lister {
            client,
            path: kind.list_path(namespace),
            selector: selector.map(str::to_string),
            limit: page_size.to_string(),
            next: None,
            done: false,
            pages: 0,
        }
    }

    /// The next page's items; `None` after the last page (or an error).
    pub fn next_page(&mut self) -> Option<Result<Vec<Value>, ApiError>> {
        if self.done {
            return None;
        }
        let mut query = vec![("limit", self.limit.as_str())];
        if let Some(s) = &self.selector {
            query.push(("labelSelector", s.as_str()));
        }
        if let Some(c) = &self.next {
            query.push(("continue", c.as_str()));
        }
        let page = self
            .client
            .get(&self.path, &query)
            .and_then(|body| parse_list(&body));
        self.pages += 1;
        match page {
            Ok((items, next)) => {
                if next.is_some() && next == self.next {
                    self.done = true;
                    return Some(Err(ApiError::Request(
                        "the server answered the same `continue` token twice; the list was not \
                         read to its end"
                            .into(),
                    )));
                }
                if self.pages >= MAX_PAGES && next.is_some() {
                    self.done = true;
                    return Some(Err(ApiError::Request(format!(
                        "more than {MAX_PAGES} pages; the list was not read to its end"
                    ))));
                }
                self.done = next.is_none();
                self.next = next;
                Some(Ok(items))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// `items` and `metadata.continue` of a list answer.
fn parse_list(body: &[u8]) -> Result<(Vec<Value>, Option<String>), ApiError> {
    let mut v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::Request(format!("the answer is not JSON: {e}")))?;
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
    if !kind.ends_with("List") {
        return Err(ApiError::Request(format!(
            "the answer is not a list (kind `{kind}`)"
        )));
    }
    let next = v
        .pointer("/metadata/continue")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .map(str::to_string);
    let items = match v.get_mut("items").map(Value::take) {
        Some(Value::Array(items)) => items,
        Some(Value::Null) | None => Vec::new(),
        Some(_) => {
            return Err(ApiError::Request(
                "the answer's `items` is not an array".into(),
            ));
        }
    };
    Ok((items, next))
}
