//! `leakhound cluster`: audits a live cluster through the Kubernetes API.
//! Each kind is listed in each namespace asked for (or across all), page by
//! page; each page's objects become blobs that are scanned before the next
//! page is asked for, so memory holds one page (`--page-size`,
//! `--max-response-size`) and the findings. A list the API refuses (a 403)
//! or that fails part-way is named and the rest is still audited: exit 2.
//! Credentials the server rejects (401), an untrusted or unreachable server
//! end the run before anything was listed.

use std::collections::HashSet;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::cli::{ClusterArgs, ClusterKind, CommonArgs};
use leakhound::notice::{Notice, NoticeKind};
use leakhound::pipeline::{self, Counters, Outcome};
use leakhound::source::cluster::kubeconfig::{self, LoadOptions};
use leakhound::source::cluster::{self, ApiError, Client, Kind, Limits, Lister, objects};

fn kind(k: ClusterKind) -> Kind {
    match k {
        ClusterKind::Secrets => Kind::Secret,
        ClusterKind::Configmaps => Kind::ConfigMap,
        ClusterKind::Pods => Kind::Pod,
        ClusterKind::Deployments => Kind::Deployment,
        ClusterKind::Statefulsets => Kind::StatefulSet,
        ClusterKind::Daemonsets => Kind::DaemonSet,
        ClusterKind::Jobs => Kind::Job,
        ClusterKind::Cronjobs => Kind::CronJob,
    }
}

/// `secrets in namespace prod`, `secrets in all namespaces`.
fn what(kind: Kind, ns: Option<&str>) -> String {
    match ns {
        Some(ns) => format!("{} in namespace {ns}", kind.resource()),
        None => format!("{} in all namespaces", kind.resource()),
    }
}

pub fn run(common: &CommonArgs, args: &ClusterArgs) -> Result<u8> {
    let settings = crate::settings(common, Some(Path::new(".")), None)?;
    let scanner = settings.scanner;
    for ns in &args.namespace {
        if !cluster::valid_namespace(ns) {
            bail!("--namespace `{ns}` is not a valid namespace name");
        }
    }
    let target = kubeconfig::load(&LoadOptions::from_env(
        args.kubeconfig.clone(),
        args.context.clone(),
    ))
    .context("choosing the cluster (--kubeconfig, --context)")?;
    let namespaces: Vec<Option<String>> = if args.all_namespaces {
        vec![None]
    } else if !args.namespace.is_empty() {
        args.namespace.iter().cloned().map(Some).collect()
    } else {
        vec![Some(target.namespace.clone())]
    };
    let server = target.server.clone();
    let client = Client::new(
        target,
        Limits {
            timeout: common.timeout,
            max_response: args.max_response_size,
        },
    )?;
    let mut kinds: Vec<Kind> = if args.kinds.is_empty() {
        Kind::ALL.to_vec()
    } else {
        args.kinds.iter().map(|k| kind(*k)).collect()
    };
    kinds.sort();
    kinds.dedup();

    let on_skip = crate::skip_printer(common, &scanner);
    let counters = Counters::default();
    let started = Instant::now();
    let mut findings = Vec::new();
    let mut skipped: Vec<Notice> = Vec::new();
    let mut derived = HashSet::new();
    let mut listed = 0u64;
    let mut any_answer = false;
    let mut stopped: Option<String> = None;
    for &kind in &kinds {
        for ns in &namespaces {
            let place = what(kind, ns.as_deref());
            if let Some(why) = &stopped {
                let n = Notice::new(NoticeKind::Unreadable, place, format!("not listed: {why}"));
                on_skip(&n);
                skipped.push(n);
                continue;
            }
            let mut lister = Lister::new(
                &client,
                kind,
                ns.as_deref(),
                args.selector.as_deref(),
                args.page_size as usize,
            );
            while let Some(page) = lister.next_page() {
                let items = match page {
                    Ok(items) => items,
                    Err(ApiError::Fatal(why)) if !any_answer => bail!("{why}"),
                    Err(e) => {
                        let fatal = matches!(e, ApiError::Fatal(_));
                        // Rights granted per namespace (RoleBindings) do
                        // not cover a cluster-wide list.
                        let hint = if ns.is_none() && e.to_string().starts_with("HTTP 403") {
                            " (with rights in some namespaces only, name them with -n)"
                        } else {
                            ""
                        };
                        let reason = if lister.pages > 1 {
                            format!(
                                "listed only in part (page {} failed): {e}{hint}",
                                lister.pages
                            )
                        } else {
                            format!("not listed: {e}{hint}")
                        };
                        let n = Notice::new(NoticeKind::Unreadable, place.clone(), reason);
                        on_skip(&n);
                        skipped.push(n);
                        if fatal {
                            stopped =
                                Some(format!("the audit stopped after an earlier error: {e}"));
                        }
                        continue;
                    }
                };
                any_answer = true;
                listed += items.len() as u64;
                let objs: Vec<objects::Object> = items
                    .into_iter()
                    .map(|item| objects::object(kind, item))
                    .collect();
                let mut blobs = Vec::new();
                for o in objs {
                    if o.derived {
                        derived.insert(objects::object_key(&o));
                    }
                    blobs.extend(o.blobs);
                }
                let out = pipeline::scan_blobs(&scanner, blobs, &on_skip, &counters);
                findings.extend(out.findings);
                skipped.extend(out.skipped);
            }
        }
    }
    for f in &mut findings {
        objects::place(f);
    }
    objects::dedup_derived(&mut findings, &derived);
    findings.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    skipped.sort_by(|a, b| a.path.cmp(&b.path));
    if !common.quiet && listed == 0 && skipped.iter().all(|s| !s.is_error()) {
        eprintln!(
            "leakhound: warning: {server} listed no objects ({}{})",
            namespaces
                .iter()
                .map(|n| n
                    .as_deref()
                    .map_or("all namespaces".to_string(), |n| format!("namespace {n}")))
                .collect::<Vec<_>>()
                .join(", "),
            args.selector
                .as_deref()
                .map(|s| format!(", selector {s}"))
                .unwrap_or_default()
        );
    }
    let outcome = Outcome {
        findings,
        files: listed,
        bytes: counters.bytes.load(std::sync::atomic::Ordering::Relaxed),
        skipped,
        elapsed: started.elapsed(),
        ..Outcome::default()
    };
    crate::report_outcome(common, &scanner, outcome, true, None, crate::Units::Objects)
}
