//! `leakhound merge REPORT…`: the reports and run summaries of several
//! processes (the shards of a registry sweep, runs over parts of a tree)
//! made into what one run would have reported.
//!
//! Inputs are told apart by content: a JSON array is a `--format json`
//! report, an object with `runs` a SARIF log, an object with
//! `summary_version` a run summary, anything else JSON lines (an empty file
//! is a JSONL report without findings). A finding reported by two inputs
//! (the same shard run twice, overlapping runs) is kept once: the same
//! fingerprint in the same image (reference, digest, layer) at the same
//! place. The exit code is the one a single run would have had: 2 when a
//! summary or SARIF log says its run was incomplete (or failed), else 1
//! with findings, else 0. Reports are already masked; merging never sees a
//! raw secret (unless the inputs were written with `--show-secrets`).

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::cli::{CommonArgs, MergeArgs};
use crate::{EXIT_ERROR, EXIT_FINDINGS};
use leakhound::finding::Finding;
use leakhound::report::summary::{
    self, FindingCounts, Item, LeftOut, Scanned, Summary, SuppressedCounts,
};
use leakhound::report::{self, Format, RunInfo, sarif, text};
use leakhound::source::image::shard;

/// What the inputs said, together.
#[derive(Default)]
struct Merged {
    findings: Vec<Finding>,
    seen: HashSet<String>,
    duplicates: usize,
    /// Some input said its run was incomplete.
    incomplete: bool,
    errors: Vec<Item>,
    skipped: Vec<Item>,
    summaries: Vec<Value>,
    reports: usize,
}

impl Merged {
    fn add(&mut self, f: Finding) {
        let image = f.image.as_ref();
        let key = format!(
            "{}\0{}\0{}\0{:?}\0{:?}\0{}:{}-{}:{}",
            f.fingerprint,
            image.map_or("", |i| i.reference.as_str()),
            image.map_or("", |i| i.digest.as_str()),
            image.and_then(|i| i.layer_index),
            f.commit.as_ref().map(|c| c.id.as_str()),
            f.line,
            f.column,
            f.end_line,
            f.end_column
        );
        if self.seen.insert(key) {
            self.findings.push(f);
        } else {
            self.duplicates += 1;
        }
    }
}

pub fn run(common: &CommonArgs, args: &MergeArgs) -> Result<u8> {
    // The default pack describes rules in SARIF and masks messages.
    let scanner = crate::cmd::rules::load_rules(common)?;
    let mut m = Merged::default();
    for path in &args.reports {
        let data = read_bounded(path, args.max_report_size)?;
        read_input(path, &data, &mut m)
            .with_context(|| format!("cannot merge {}", path.display()))?;
    }
    m.findings.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    let summaries_incomplete = m.summaries.iter().any(|s| {
        s["complete"] == Value::Bool(false) || s["exit_code"].as_u64() == Some(EXIT_ERROR.into())
    });
    let shard_problems = shard_problems(&m.summaries);
    let complete = !(m.incomplete || summaries_incomplete || !shard_problems.is_empty());
    let code = if !complete {
        EXIT_ERROR
    } else if m.findings.is_empty() {
        0
    } else {
        EXIT_FINDINGS
    };
    for s in &m.summaries {
        for (key, into) in [("errors", &mut m.errors), ("skipped", &mut m.skipped)] {
            for i in s[key].as_array().into_iter().flatten() {
                into.push(Item {
                    path: i["path"].as_str().unwrap_or_default().to_string(),
                    reason: i["reason"].as_str().unwrap_or_default().to_string(),
                });
            }
        }
    }
    m.errors.extend(shard_problems);
    dedup(&mut m.errors);
    dedup(&mut m.skipped);
    let format = common.format.unwrap_or(Format::Text);
    let mut run = RunInfo::new(&merged_command(&m.summaries));
    run.sarif_category = common.sarif_category.clone();
    run.sarif_max_results = common.sarif_max_results;
    run.complete = complete;
    run.errors = m.errors.clone();
    run.skipped = m.skipped.clone();
    let (mut out, color) = crate::open_output(common)?;
    written(
        report::write(format, &m.findings, scanner.rules(), &run, color, &mut out)
            .and_then(|_| out.flush()),
    )?;
    if !common.quiet {
        eprintln!(
            "leakhound: merged {} report(s) and {} summary file(s): {} finding(s), {} duplicate(s) dropped{}",
            m.reports,
            m.summaries.len(),
            m.findings.len(),
            m.duplicates,
            if complete {
                String::new()
            } else {
                format!("; incomplete ({} error(s) named)", m.errors.len())
            }
        );
        for e in &m.errors {
            eprintln!(
                "leakhound: error: {}",
                text::escape_controls(&scanner.masked_text(&format!("{}: {}", e.path, e.reason)))
            );
        }
    }
    let start = crate::run_start();
    crate::write_summary(
        common,
        &Summary {
            summary_version: summary::SUMMARY_VERSION,
            tool: Default::default(),
            command: "merge".into(),
            arguments: crate::masked_arguments(Some(&scanner)),
            started: earliest(&m.summaries, "started").unwrap_or_else(|| start.started.clone()),
            ended: summary::now(),
            elapsed_seconds: start.clock.elapsed().as_secs_f64(),
            scanned: scanned(&m.summaries),
            findings: FindingCounts::of(&m.findings),
            suppressed: suppressed(&m.summaries),
            left_out: left_out(&m.summaries),
            skipped: m.skipped.clone(),
            errors: m.errors.clone(),
            complete,
            exit_code: code,
            shard: None,
        },
    )?;
    Ok(code)
}

/// What keeps the summaries of a sharded sweep from adding up to the whole
/// sweep: a gap between one shard's run and the next (a repository pushed
/// or deleted between their catalog reads moved the cut, so the repository
/// at it fell to neither; an overlap only repeats findings, dropped here),
/// shards of one count split by different plans (or some by a plan and
/// some by count: their repositories may overlap or be missed), or shards
/// of a count not all given.
fn shard_problems(summaries: &[Value]) -> Vec<Item> {
    use std::collections::BTreeMap;
    type Ends = (Option<String>, Option<String>);
    let mut by_count: BTreeMap<u64, BTreeMap<u64, Ends>> = BTreeMap::new();
    // Per count, the shards (`I/N`) that used each plan (`None`: none).
    let mut plans: BTreeMap<u64, BTreeMap<Option<String>, Vec<u64>>> = BTreeMap::new();
    for s in summaries {
        let shard = &s["shard"];
        let (Some(index), Some(count)) = (shard["index"].as_u64(), shard["count"].as_u64()) else {
            continue;
        };
        let end = |k: &str| shard[k].as_str().map(str::to_string);
        by_count
            .entry(count)
            .or_default()
            .insert(index, (end("from"), end("until")));
        plans
            .entry(count)
            .or_default()
            .entry(end("plan"))
            .or_default()
            .push(index);
    }
    // `None` ends a run at the order's end.
    fn key(r: &Option<String>) -> Option<(u64, &str)> {
        r.as_deref().map(shard::order_key)
    }
    let later = |a: &Option<String>, b: &Option<String>| match (key(a), key(b)) {
        (Some(a), Some(b)) => a > b,
        (None, Some(_)) => true,
        _ => false,
    };
    let mut out = Vec::new();
    for (count, shards) in by_count {
        let path = format!("shards of {count}");
        let used = &plans[&count];
        if used.len() > 1 {
            let groups: Vec<String> = used
                .iter()
                .map(|(plan, indexes)| {
                    let mut indexes = indexes.clone();
                    indexes.sort_unstable();
                    indexes.dedup();
                    let listed: Vec<String> = indexes
                        .iter()
                        .take(16)
                        .map(|i| format!("{i}/{count}"))
                        .collect();
                    format!(
                        "{}{} by {}",
                        listed.join(", "),
                        if indexes.len() > 16 { " and more" } else { "" },
                        match plan {
                            Some(p) => format!("the plan {p}"),
                            None => "repository count (no plan)".into(),
                        }
                    )
                })
                .collect();
            out.push(Item {
                path: path.clone(),
                reason: format!(
                    "shards were split differently ({}): their repositories may overlap or be \
                     missed; sweep again with one plan",
                    groups.join("; ")
                ),
            });
        }
        for (i, (_, until)) in &shards {
            let Some((from, _)) = shards.get(&(i + 1)) else {
                continue;
            };
            if later(from, until) {
                out.push(Item {
                    path: path.clone(),
                    reason: format!(
                        "shards {i}/{count} and {}/{count} saw different catalogs (a repository \
                         pushed or deleted between their starts): neither took `{}`{}; sweep again",
                        i + 1,
                        until.as_deref().unwrap_or_default(),
                        match from {
                            Some(f) => format!(" nor what falls between it and `{f}`"),
                            None => " nor what follows it".into(),
                        }
                    ),
                });
            }
        }
        let missing: Vec<String> = (0..count)
            .filter(|i| !shards.contains_key(i))
            .map(|i| format!("{i}/{count}"))
            .collect();
        if !missing.is_empty() {
            let more = match missing.len() {
                n if n > 16 => format!(" and {} more", n - 16),
                _ => String::new(),
            };
            out.push(Item {
                path,
                reason: format!(
                    "no summary of shard(s) {}{more}: their repositories are not in the merge",
                    missing[..missing.len().min(16)].join(", ")
                ),
            });
        }
    }
    out
}

fn dedup(items: &mut Vec<Item>) {
    let mut seen = HashSet::new();
    items.retain(|i| seen.insert((i.path.clone(), i.reason.clone())));
}

/// The subcommand the inputs ran (for the SARIF category), when they agree.
fn merged_command(summaries: &[Value]) -> String {
    let mut commands = summaries.iter().filter_map(|s| s["command"].as_str());
    match commands.next() {
        Some(c) if summaries.iter().all(|s| s["command"] == c) => c.to_string(),
        _ => "merge".into(),
    }
}

fn earliest(summaries: &[Value], key: &str) -> Option<String> {
    summaries
        .iter()
        .filter_map(|s| s[key].as_str())
        .min()
        .map(str::to_string)
}

fn sum(summaries: &[Value], section: &str, key: &str) -> u64 {
    summaries
        .iter()
        .filter_map(|s| s[section][key].as_u64())
        .sum()
}

fn scanned(s: &[Value]) -> Scanned {
    Scanned {
        files: sum(s, "scanned", "files"),
        blobs: sum(s, "scanned", "blobs"),
        layers: sum(s, "scanned", "layers"),
        images: sum(s, "scanned", "images"),
        lines: sum(s, "scanned", "lines"),
        objects: sum(s, "scanned", "objects"),
        bytes: sum(s, "scanned", "bytes"),
        cached_layers: sum(s, "scanned", "cached_layers"),
    }
}

fn suppressed(s: &[Value]) -> SuppressedCounts {
    SuppressedCounts {
        baseline: sum(s, "suppressed", "baseline"),
        allowlist: sum(s, "suppressed", "allowlist"),
        inline: sum(s, "suppressed", "inline"),
    }
}

fn left_out(s: &[Value]) -> LeftOut {
    LeftOut {
        ignore_files: sum(s, "left_out", "ignore_files"),
        allowlist_paths: sum(s, "left_out", "allowlist_paths"),
        too_large: sum(s, "left_out", "too_large"),
    }
}

/// A closed standard output is not an error.
fn written(r: std::io::Result<()>) -> Result<()> {
    match r {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing the report"),
    }
}

fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>> {
    let f = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut data = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut data)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if data.len() as u64 > max {
        bail!(
            "{} is larger than --max-report-size ({max} bytes)",
            path.display()
        );
    }
    Ok(data)
}

fn read_input(path: &Path, data: &[u8], m: &mut Merged) -> Result<()> {
    let first = data.iter().find(|b| !b.is_ascii_whitespace());
    match first {
        None => {
            m.reports += 1;
            return Ok(());
        }
        Some(b'[') => {
            let findings: Vec<Finding> =
                serde_json::from_slice(data).context("not a JSON report (an array of findings)")?;
            m.reports += 1;
            findings.into_iter().for_each(|f| m.add(f));
            return Ok(());
        }
        Some(b'{') => {}
        Some(_) => bail!("not a leakhound report or summary (JSON, JSONL or SARIF)"),
    }
    if let Ok(v) = serde_json::from_slice::<Value>(data) {
        if v.get("summary_version").is_some() {
            m.summaries.push(v);
            return Ok(());
        }
        if v.get("runs").is_some() {
            m.reports += 1;
            return read_sarif(&v, m);
        }
    }
    // JSON lines: one finding per line.
    m.reports += 1;
    for (i, f) in serde_json::Deserializer::from_slice(data)
        .into_iter::<Finding>()
        .enumerate()
    {
        let f = f.with_context(|| {
            format!(
                "{}: finding {} is not a leakhound finding",
                path.display(),
                i + 1
            )
        })?;
        m.add(f);
    }
    Ok(())
}

/// Findings back from a SARIF log leakhound wrote: rule, place and snippet
/// from the result, fingerprint from `partialFingerprints`, everything
/// else from its properties. An invocation that did not succeed, and its
/// notifications, make the merge incomplete.
fn read_sarif(v: &Value, m: &mut Merged) -> Result<()> {
    for run in v["runs"].as_array().context("`runs` is not a list")? {
        let rules = run["tool"]["driver"]["rules"].as_array();
        for inv in run["invocations"].as_array().into_iter().flatten() {
            if inv["executionSuccessful"] == Value::Bool(false) {
                m.incomplete = true;
            }
            for n in inv["toolExecutionNotifications"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let text = n["message"]["text"].as_str().unwrap_or_default();
                let (path, reason) = text.split_once(": ").unwrap_or(("", text));
                let item = Item {
                    path: path.to_string(),
                    reason: reason.to_string(),
                };
                if n["level"] == "error" {
                    m.errors.push(item);
                } else {
                    m.skipped.push(item);
                }
            }
        }
        for r in run["results"].as_array().into_iter().flatten() {
            m.add(sarif_finding(r, rules).context("a SARIF result leakhound did not write")?);
        }
    }
    Ok(())
}

fn sarif_finding(r: &Value, rules: Option<&Vec<Value>>) -> Result<Finding> {
    let props = &r["properties"];
    let rule_id = r["ruleId"].as_str().context("no ruleId")?.to_string();
    let rule_name = rules
        .and_then(|rs| rs.iter().find(|d| d["id"] == rule_id.as_str()))
        .and_then(|d| d["name"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| rule_id.clone());
    let loc = &r["locations"][0];
    let phys = &loc["physicalLocation"];
    let region = &phys["region"];
    let num = |v: &Value| v.as_u64().unwrap_or(0) as usize;
    let (path, region) = if phys.is_object() {
        let uri = phys["artifactLocation"]["uri"]
            .as_str()
            .context("no artifact URI")?;
        (Some(sarif::uri_to_path(uri)), region.clone())
    } else {
        (None, Value::Null)
    };
    let snippet = region["snippet"]["text"]
        .as_str()
        .map(str::to_string)
        .or_else(|| {
            let text = loc["message"]["text"].as_str()?;
            Some(text.split_once(": ").map_or(text, |(_, s)| s).to_string())
        })
        .unwrap_or_default();
    let (line, column) = if path.is_some() {
        (num(&region["startLine"]), num(&region["startColumn"]))
    } else {
        message_position(loc["message"]["text"].as_str().unwrap_or_default())
    };
    Ok(Finding {
        rule_id,
        rule_name,
        severity: prop(props, "severity").context("no severity")?,
        confidence: prop(props, "confidence").context("no confidence")?,
        path,
        line,
        column,
        end_line: region["endLine"].as_u64().map_or(line, |n| n as usize),
        end_column: region["endColumn"].as_u64().map_or(column, |n| n as usize),
        snippet,
        secret: props["secret"].as_str().map(str::to_string),
        fingerprint: r["partialFingerprints"][sarif::FINGERPRINT_KEY]
            .as_str()
            .context("no leakhound fingerprint")?
            .to_string(),
        raw_secret: Vec::new(),
        entropy: props["entropy"].as_f64().unwrap_or(0.0),
        decoded: prop(props, "decoded").unwrap_or_default(),
        commit: prop(props, "commit").ok().flatten(),
        image: prop(props, "image").ok().flatten(),
        kubernetes: prop(props, "kubernetes").ok().flatten(),
        span: 0..0,
        timestamp: None,
    })
}

fn prop<T: serde::de::DeserializeOwned>(props: &Value, key: &str) -> serde_json::Result<T> {
    serde_json::from_value(props[key].clone())
}

/// `commit message, line L column C: …` (a commit message's location).
fn message_position(text: &str) -> (usize, usize) {
    let rest = text.split_once("line ").map_or("", |(_, r)| r);
    let mut nums = rest
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap_or(0));
    (nums.next().unwrap_or(0), nums.next().unwrap_or(0))
}
