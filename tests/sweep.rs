//! Registry sweeps at scale against Debian's `docker-registry` on
//! 127.0.0.1: incremental sweeps with `--cache` (shared by 8 shard
//! processes), and `leakhound merge` of shard reports.

#[path = "support/fake.rs"]
mod fake;
#[path = "support/image.rs"]
mod fixture;
#[path = "support/registry.rs"]
mod server;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use fixture::*;
use serde_json::{Value, json};
use server::*;

/// A shared base layer (a GitHub token in `.env`) and a layer of the
/// repository's own (another token), with the repository's name in Env.
fn image(rng: &mut fake::Rng, name: &str) -> TestImage {
    let base = format!("GITHUB_TOKEN={}\n", gh_token());
    let own = format!("token: {}\nservice: {name}\n", fake::fake_github(rng));
    TestImage::new(
        vec![
            layer_tar(&[("app/.env", base.as_bytes())]),
            layer_tar(&[(
                &format!("srv/{}.yaml", name.replace('/', "_")),
                own.as_bytes(),
            )]),
        ],
        json!([{"created_by": "COPY .env /app/"}, {"created_by": "COPY srv /srv"}]),
        vec![format!("SERVICE={name}")],
    )
}

/// `leakhound --format json --summary FILE ARGS`: code, findings, summary,
/// stderr.
fn sweep(args: &[&str], summary: &Path) -> (Option<i32>, Vec<Value>, Value, String) {
    let (code, findings, stderr) = leakhound(
        &[&["--summary", summary.to_str().unwrap()], args].concat(),
        None,
        &[],
    );
    let s = serde_json::from_slice(&std::fs::read(summary).unwrap()).unwrap();
    (code, findings, s, stderr)
}

fn sorted(mut v: Vec<Value>) -> Vec<Value> {
    v.sort_by_key(|f| f.to_string());
    v
}

const WIDGET_RULE: &str = r#"[[rules]]
id = "widget-token"
name = "Widget token"
description = "A token of the test's own rule."
keywords = ["widget_"]
regex = '''\b(widget_[a-z0-9]{24})\b'''
severity = "high"
confidence = "high"
examples = [ { text = 'key = widget_k3j5h7g9f1d3s5a7p9o1i3u5', secret = "widget_k3j5h7g9f1d3s5a7p9o1i3u5" } ]
"#;

/// A second sweep with `--cache` reads no layer and reports exactly what
/// the first (and an uncached sweep) reported; new images have only their
/// new layers read, and `--new-only` reports only those; a changed rule
/// pack starts the cache afresh; 8 shard processes fill one cache directory
/// at once, after which an unsharded sweep reads nothing.
#[test]
fn cached_sweeps_read_only_unseen_layers_and_report_the_same_findings() {
    let reg = Registry::start(Mode::Plain);
    let mut rng = fake::Rng(0x5eed_cafe);
    for i in 0..40 {
        let repo = format!("team{}/svc{i}", i % 4);
        reg.push(&image(&mut rng, &repo), &repo, "v1");
    }
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let cache_arg = cache.to_str().unwrap();
    let summary = dir.path().join("summary.json");
    let base = ["registry", &reg.host, "--insecure"];

    let (code, plain, _, stderr) = sweep(&base, &summary);
    assert_eq!(code, Some(1), "{stderr}");
    // 40 own layers, the shared one in each of 40 images.
    assert_eq!(plain.len(), 80, "{stderr}");
    let plain = sorted(plain);

    let cached_args = [&base[..], &["--cache", cache_arg]].concat();
    let (code, first, s1, stderr) = sweep(&cached_args, &summary);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(sorted(first), plain, "a first cached sweep differs");
    assert_eq!(s1["scanned"]["layers"], 41, "{s1}");
    assert_eq!(s1["scanned"]["cached_layers"], 0, "{s1}");

    let before = reg.requests().len();
    let (code, second, s2, stderr) = sweep(&cached_args, &summary);
    assert_eq!(code, Some(1), "{stderr}");
    // An unchanged tag costs one HEAD: no manifest, config or layer is
    // fetched again.
    let asked = reg.requests().split_off(before);
    let fetched: Vec<&String> = asked
        .iter()
        .filter(|r| r.contains("/blobs/") || (r.starts_with("GET") && r.contains("/manifests/")))
        .collect();
    assert!(fetched.is_empty(), "{fetched:?}");
    let heads = asked.iter().filter(|r| r.starts_with("HEAD")).count();
    assert_eq!(heads, 40, "{asked:?}");
    assert!(
        stderr.contains("40 of 40 reference(s) resolved from the cache"),
        "{stderr}"
    );
    assert_eq!(sorted(second), plain, "the cached sweep differs");
    assert_eq!(s2["scanned"]["layers"], 0, "{s2}");
    assert_eq!(s2["scanned"]["cached_layers"], 41, "{s2}");
    assert_eq!(s2["scanned"]["bytes"], 0, "{s2}");
    assert!(
        stderr.contains("41 layer(s) and 40 config(s) from the cache"),
        "{stderr}"
    );
    // Entries are whole files, owner-only; no temporary file is left.
    let mut entries = 0;
    for e in walk(&cache) {
        let name = e.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.starts_with(".tmp"), "{name} left behind");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&e).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", e.display());
        }
        entries += 1;
    }
    assert_eq!(entries, 121, "41 layers, 40 configs and 40 manifests");

    // Two new images: their own layers and configs are read, and with
    // --new-only only what they hold is reported (the shared layer's token
    // was reported before).
    for i in 40..42 {
        let repo = format!("team9/new{i}");
        reg.push(&image(&mut rng, &repo), &repo, "v1");
    }
    let new_only = [&cached_args[..], &["--new-only"]].concat();
    let (code, new, s3, stderr) = sweep(&new_only, &summary);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(s3["scanned"]["layers"], 2, "{s3}");
    assert_eq!(s3["scanned"]["cached_layers"], 41, "{s3}");
    let refs: Vec<&str> = new
        .iter()
        .map(|f| f["image"]["reference"].as_str().unwrap())
        .collect();
    assert_eq!(new.len(), 2, "{refs:?}");
    assert!(refs.iter().all(|r| r.contains("/team9/new")), "{refs:?}");
    assert!(
        new.iter().all(|f| f["image"]["layer_index"] == 1),
        "{new:?}"
    );
    // Without --new-only the cached layers' findings come back too.
    let (_, all, _, _) = sweep(&cached_args, &summary);
    assert_eq!(all.len(), 84);

    // Another rule pack: the cache starts afresh, every layer is read.
    let rules = dir.path().join("widget.toml");
    std::fs::write(&rules, WIDGET_RULE).unwrap();
    let with_rule = [&["--rules", rules.to_str().unwrap()][..], &cached_args[..]].concat();
    let (code, _, s4, stderr) = sweep(&with_rule, &summary);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(s4["scanned"]["layers"], 43, "{s4}");
    assert!(stderr.contains("rules or settings changed"), "{stderr}");
    // A result-changing setting too.
    let (_, _, s5, _) = sweep(
        &[&["--min-confidence", "high"][..], &with_rule[..]].concat(),
        &summary,
    );
    assert_eq!(s5["scanned"]["layers"], 43, "{s5}");

    // 8 shards filling one fresh cache at the same time.
    let shared = dir.path().join("shared");
    let children: Vec<_> = (0..8)
        .map(|i| {
            isolated_leakhound()
                .args(["--format", "json", "registry", &reg.host, "--insecure"])
                .args(["--shard", &format!("{i}/8"), "--cache"])
                .arg(&shared)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut union = Vec::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        union.extend(serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap());
    }
    let shared_arg = shared.to_str().unwrap();
    let (code, after, s6, stderr) =
        sweep(&[&base[..], &["--cache", shared_arg]].concat(), &summary);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(s6["scanned"]["layers"], 0, "{s6}");
    assert_eq!(
        sorted(after.clone()),
        sorted(union),
        "cached sweep vs the shards"
    );
    assert_eq!(after.len(), 84);
}

/// The requests of `reg` after the first `before`, as `METHOD path`, the
/// ones that fetched something (a manifest GET or a blob).
fn fetches(reg: &Registry, before: usize) -> Vec<String> {
    reg.requests()
        .split_off(before)
        .into_iter()
        .filter(|r| r.contains("/blobs/") || (r.starts_with("GET") && r.contains("/manifests/")))
        .collect()
}

/// A tag pushed again names another manifest digest: the cached sweep
/// reads that image again (its manifest, config and new layer, nothing
/// else) and reports exactly what an uncached sweep reports, the old
/// image's own secret no longer; `--new-only` reports only the new layer.
/// An index swept for another platform is resolved again, not replayed.
#[test]
fn a_tag_pushed_again_and_another_platform_are_read_again() {
    let reg = Registry::start(Mode::Plain);
    let mut rng = fake::Rng(0xfeed_f00d);
    for i in 0..6 {
        let repo = format!("team{}/svc{i}", i % 2);
        reg.push(&image(&mut rng, &repo), &repo, "v1");
    }
    // A two-platform index whose images differ in their own layer.
    reg.push(&image(&mut rng, "multi/app"), "multi/app", "amd");
    reg.push(&image(&mut rng, "multi/app"), "multi/app", "arm");
    reg.push_index("multi/app", "latest", &[("amd", "amd64"), ("arm", "arm64")]);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let summary = dir.path().join("summary.json");
    let base = [
        "registry",
        &reg.host,
        "--insecure",
        "--platform",
        "linux/amd64",
    ];
    let cached_args = [&base[..], &["--cache", cache.to_str().unwrap()]].concat();
    let (code, _, _, stderr) = sweep(&cached_args, &summary);
    assert_eq!(code, Some(1), "{stderr}");

    // svc3:v1 pushed again with a layer of its own holding another token.
    let old_token_of = |findings: &[Value]| {
        findings
            .iter()
            .filter(|f| {
                f["image"]["reference"]
                    .as_str()
                    .unwrap()
                    .ends_with("/team1/svc3:v1")
            })
            .filter(|f| f["image"]["layer_index"] == 1)
            .map(|f| f["fingerprint"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let (_, uncached_before, _, _) = sweep(&base, &summary);
    reg.push(&image(&mut rng, "team1/svc3"), "team1/svc3", "v1");
    let before = reg.requests().len();
    let (code, cached, s, stderr) = sweep(&cached_args, &summary);
    assert_eq!(code, Some(1), "{stderr}");
    let fetched = fetches(&reg, before);
    // The new manifest, its config and its own layer (the base is cached).
    assert_eq!(fetched.len(), 3, "{fetched:?}");
    assert!(
        fetched[0].starts_with("GET /v2/team1/svc3/manifests/v1"),
        "{fetched:?}"
    );
    assert_eq!(s["scanned"]["layers"], 1, "{s}");
    let (_, uncached, _, _) = sweep(&base, &summary);
    assert_eq!(
        sorted(cached.clone()),
        sorted(uncached),
        "cached vs uncached after a push"
    );
    let (old, new) = (old_token_of(&uncached_before), old_token_of(&cached));
    assert_eq!((old.len(), new.len()), (1, 1));
    assert_ne!(
        old, new,
        "the re-pushed tag still reports its old layer's secret"
    );

    // Pushed again once more: --new-only reports the new layer's token only.
    reg.push(&image(&mut rng, "team1/svc3"), "team1/svc3", "v1");
    let (code, new_only, _, stderr) =
        sweep(&[&cached_args[..], &["--new-only"]].concat(), &summary);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(new_only.len(), 1, "{new_only:?}");
    assert_eq!(new_only[0]["image"]["layer_index"], 1);
    assert!(
        new_only[0]["image"]["reference"]
            .as_str()
            .unwrap()
            .ends_with("/team1/svc3:v1")
    );

    // The index for arm64: resolved afresh (the amd64 entry is not
    // replayed), reporting what an uncached arm64 sweep reports.
    fn arm<'a>(args: &[&'a str]) -> Vec<&'a str> {
        args.iter()
            .map(|a| {
                if *a == "linux/amd64" {
                    "linux/arm64"
                } else {
                    a
                }
            })
            .collect()
    }
    let before = reg.requests().len();
    let (code, cached_arm, _, stderr) = sweep(&arm(&cached_args), &summary);
    assert_eq!(code, Some(1), "{stderr}");
    let fetched = fetches(&reg, before);
    assert!(
        fetched
            .iter()
            .any(|r| r == "GET /v2/multi/app/manifests/latest"),
        "{fetched:?}"
    );
    let (_, uncached_arm, _, _) = sweep(&arm(&base), &summary);
    assert_eq!(sorted(cached_arm.clone()), sorted(uncached_arm));
    let layer_of = |findings: &[Value]| {
        findings
            .iter()
            .find(|f| {
                f["image"]["reference"]
                    .as_str()
                    .unwrap()
                    .ends_with("/multi/app:latest")
                    && f["image"]["layer_index"] == 1
            })
            .map(|f| f["image"]["layer_digest"].clone())
    };
    let (_, cached_amd, _, _) = sweep(&cached_args, &summary);
    assert_ne!(layer_of(&cached_arm), layer_of(&cached_amd));
    assert!(layer_of(&cached_arm).is_some());
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// 8 shard reports in JSON, JSONL and SARIF with their summaries merge
/// into exactly the unsharded sweep's report; an input given twice adds
/// nothing; a summary of an incomplete shard makes the merge exit 2.
/// Merging every report but shard 5's summary is incomplete (exit 2) and
/// names the shard.
fn assert_missing_shard_5_is_named(inputs: &[PathBuf]) {
    let out = Command::new(env!("CARGO_BIN_EXE_leakhound"))
        .args(["--format", "json", "merge"])
        .args(
            inputs
                .iter()
                .filter(|p| !p.ends_with("shard-5.summary.json")),
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no summary of shard(s) 5/8"), "{stderr}");
}

#[test]
fn merged_shard_reports_equal_one_sweep() {
    let reg = Registry::start(Mode::Plain);
    let mut rng = fake::Rng(0x0dd_ba11);
    for i in 0..40 {
        let repo = format!("group{}/app{i}", i % 5);
        reg.push(&image(&mut rng, &repo), &repo, "v1");
    }
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("whole.json");
    let base = ["registry", &reg.host, "--insecure"];
    let (code, whole, whole_summary, stderr) = sweep(&base, &summary);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(whole.len(), 80);

    let mut inputs = Vec::new();
    for i in 0..8 {
        let format = ["json", "jsonl", "sarif"][i % 3];
        let report = dir.path().join(format!("shard-{i}.{format}"));
        let summary = dir.path().join(format!("shard-{i}.summary.json"));
        let out = isolated_leakhound()
            .args(["--format", format, "--output"])
            .arg(&report)
            .arg("--summary")
            .arg(&summary)
            .args(base)
            .args(["--shard", &format!("{i}/8")])
            .output()
            .unwrap();
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        inputs.push(report);
        inputs.push(summary);
    }
    let merge = |extra: &[&Path], format: &str| {
        let out_summary = dir.path().join("merged.summary.json");
        let out = Command::new(env!("CARGO_BIN_EXE_leakhound"))
            .args(["--format", format, "--summary"])
            .arg(&out_summary)
            .arg("merge")
            .args(&inputs)
            .args(extra)
            .output()
            .unwrap();
        let s: Value = serde_json::from_slice(&std::fs::read(&out_summary).unwrap()).unwrap();
        (
            out.status.code(),
            out.stdout,
            s,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // 40 repositories over 8 shards: 5 each (ranks in hash order), every
    // shard having split the same catalog.
    let mut digests = Vec::new();
    for i in 0..8 {
        let s: Value = serde_json::from_slice(&std::fs::read(&inputs[2 * i + 1]).unwrap()).unwrap();
        assert_eq!(
            s["shard"]["repositories"].as_array().unwrap().len(),
            5,
            "{s}"
        );
        assert_eq!(s["shard"]["catalog_repositories"], 40, "{s}");
        digests.push(s["shard"]["catalog_digest"].clone());
    }
    assert!(digests.iter().all(|d| *d == digests[0]), "{digests:?}");
    let (code, stdout, s, stderr) = merge(&[], "json");
    assert_eq!(code, Some(1), "{stderr}");
    let merged: Vec<Value> = serde_json::from_slice(&stdout).unwrap();
    assert_eq!(
        sorted(merged),
        sorted(whole.clone()),
        "merged shards differ"
    );
    assert_eq!(s["complete"], true, "{s}");
    assert_eq!(s["findings"], whole_summary["findings"], "{s}");
    assert_eq!(s["scanned"]["images"], 40, "{s}");
    // Each shard reads the shared base layer itself: layers add up to more.
    assert!(s["scanned"]["layers"].as_u64() >= whole_summary["scanned"]["layers"].as_u64());

    // A shard given twice: nothing added.
    let (code, stdout, _, stderr) = merge(&[&inputs[0], &inputs[4]], "jsonl");
    assert_eq!(code, Some(1), "{stderr}");
    let lines = String::from_utf8(stdout).unwrap();
    assert_eq!(lines.lines().count(), 80, "{stderr}");
    assert!(stderr.contains("duplicate(s) dropped"), "{stderr}");

    // The merged SARIF holds every finding with its fingerprint.
    let (code, stdout, _, stderr) = merge(&[], "sarif");
    assert_eq!(code, Some(1), "{stderr}");
    let sarif: Value = serde_json::from_slice(&stdout).unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 80);
    assert_eq!(
        sarif["runs"][0]["invocations"][0]["executionSuccessful"],
        true
    );

    // A shard that could not finish: the merge is incomplete, exit 2.
    let broken = dir.path().join("broken.summary.json");
    let mut b: Value = serde_json::from_slice(&std::fs::read(&inputs[1]).unwrap()).unwrap();
    b["complete"] = json!(false);
    b["exit_code"] = json!(2);
    b["errors"] = json!([{"path": "registry.example/app:v1", "reason": "manifest: timed out"}]);
    std::fs::write(&broken, b.to_string()).unwrap();
    let (code, _, s, stderr) = merge(&[&broken], "json");
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(s["complete"], false);
    assert_eq!(s["errors"][0]["path"], "registry.example/app:v1", "{s}");
    assert!(stderr.contains("manifest: timed out"), "{stderr}");

    // A shard whose run started later than its neighbour's ended (it saw
    // another catalog: a repository at the cut fell to neither), and a
    // shard missing: incomplete, named. An overlap only repeats findings.
    let summary_of = |i: usize| -> Value {
        serde_json::from_slice(
            &std::fs::read(dir.path().join(format!("shard-{i}.summary.json"))).unwrap(),
        )
        .unwrap()
    };
    let (three, mut four) = (summary_of(3), summary_of(4));
    let cut = three["shard"]["until"].as_str().unwrap().to_string();
    assert_eq!(four["shard"]["from"], cut.as_str());
    let next = four["shard"]["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .find(|r| *r != cut)
        .unwrap()
        .to_string();
    four["shard"]["from"] = json!(next);
    let later = dir.path().join("shard-4-later.summary.json");
    std::fs::write(&later, four.to_string()).unwrap();
    let (code, _, s, stderr) = merge(&[&later], "json");
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(s["complete"], false);
    assert!(
        stderr.contains("shards 3/8 and 4/8 saw different catalogs")
            && stderr.contains(&format!("neither took `{cut}`")),
        "{stderr}"
    );
    let mut three_longer = three.clone();
    three_longer["shard"]["until"] = Value::Null;
    let longer = dir.path().join("shard-3-longer.summary.json");
    std::fs::write(&longer, three_longer.to_string()).unwrap();
    let (code, _, _, stderr) = merge(&[&longer], "json");
    assert_eq!(code, Some(1), "an overlap is no gap: {stderr}");
    assert_missing_shard_5_is_named(&inputs);

    // Something that is no report is an error naming the file.
    let junk = dir.path().join("junk.txt");
    std::fs::write(&junk, "hello\n").unwrap();
    let (code, _, _, stderr) = merge(&[&junk], "json");
    assert_eq!(code, Some(2));
    assert!(stderr.contains("junk.txt"), "{stderr}");
}

/// `image` with a third layer of `pad` bytes of text (sizes the plan
/// balances).
fn sized_image(rng: &mut fake::Rng, name: &str, pad: usize) -> TestImage {
    let mut img = image(rng, name);
    let mut text = String::with_capacity(pad + 32);
    while text.len() < pad {
        text.push_str(&format!(
            "k{} = {}\n",
            rng.next() % 5000,
            rng.next() % 1_000_000
        ));
    }
    let extra = TestImage::new(
        vec![layer_tar(&[("srv/data.txt", text.as_bytes())])],
        json!([]),
        vec![],
    );
    img.tars.extend(extra.tars);
    img.stored.extend(extra.stored);
    let diff_ids: Vec<String> = img.tars.iter().map(|t| sha256(t)).collect();
    let mut config: Value = serde_json::from_slice(&img.config).unwrap();
    config["rootfs"]["diff_ids"] = json!(diff_ids);
    config["history"]
        .as_array_mut()
        .unwrap()
        .push(json!({"created_by": "COPY data /srv"}));
    img.config = serde_json::to_vec(&config).unwrap();
    img
}

/// `leakhound ARGS` with stdout discarded: exit code and stderr.
fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = isolated_leakhound()
        .args(args)
        .stdout(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// FNV-1a, 64 bit (as `source/image/shard.rs`).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A shard plan made from manifests alone (no config or layer fetched)
/// balances bytes: 8 shard processes reading it scan within 25% of the
/// mean each, read every image once between them (the registry's log), and
/// report exactly what one unsharded sweep reports, including a repository
/// and a tag pushed after planning (the repository swept by the one shard
/// its name hashes to, the tag by its repository's shard). `merge` takes
/// them as complete and refuses shards split by another plan or none.
#[test]
fn a_shard_plan_balances_bytes_and_covers_every_image_once() {
    let reg = Registry::start(Mode::Plain);
    let mut rng = fake::Rng(0x91a4_b0d5);
    // 40 repositories whose sizes differ 8× (log-uniform), 1 or 2 tags.
    let mut tags = Vec::new();
    for i in 0..40 {
        let repo = format!("team{}/svc{i}", i % 5);
        let unit = (rng.next() % 1000) as f64 / 1000.0;
        let size = 16.0 * 1024.0 * 8f64.powf(unit);
        for t in 0..1 + (rng.next() % 2) as usize {
            let pad = (size * (0.7 + 0.6 * (rng.next() % 100) as f64 / 100.0)) as usize;
            let tag = format!("v{t}");
            reg.push(&sized_image(&mut rng, &repo, pad), &repo, &tag);
            tags.push(format!("{repo}:{tag}"));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plans/plan.json");
    let plan_arg = plan.to_str().unwrap();
    let base = ["registry", &reg.host, "--insecure"];
    let plan_args = [&base[..], &["--plan-shards", "8", "--plan-out", plan_arg]].concat();

    let before = reg.requests().len();
    let (code, stderr) = run(&plan_args);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("leakhound: plan: 40 repositories"),
        "{stderr}"
    );
    let asked = reg.requests().split_off(before);
    assert!(
        !asked.iter().any(|r| r.contains("/blobs/")),
        "planning fetched a blob: {asked:?}"
    );
    let manifest_gets = asked
        .iter()
        .filter(|r| r.starts_with("GET") && r.contains("/manifests/"))
        .count();
    assert_eq!(manifest_gets, tags.len(), "{asked:?}");
    let plan_text = std::fs::read(&plan).unwrap();
    let p: Value = serde_json::from_slice(&plan_text).unwrap();
    assert_eq!(p["plan_version"], 1);
    assert_eq!(p["registry"], reg.host.as_str());
    assert_eq!(p["shards"], 8);
    let planned: Vec<(String, u64)> = p["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert!(r["bytes"].as_u64().unwrap() > 1000, "{r}");
            (
                r["name"].as_str().unwrap().to_string(),
                r["shard"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(planned.len(), 40);

    // Planning again with --keep-existing-plan keeps the file as it is.
    let keep = [&plan_args[..], &["--keep-existing-plan"]].concat();
    let (code, stderr) = run(&keep);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("keeping"), "{stderr}");
    assert_eq!(std::fs::read(&plan).unwrap(), plan_text);

    // Three planners of one Job starting at once: one measures the
    // registry, the others wait for its plan and keep it.
    let race = dir.path().join("plans/race.json");
    let before = reg.requests().len();
    let racers: Vec<_> = (0..3)
        .map(|_| {
            isolated_leakhound()
                .args(base)
                .args(["--plan-shards", "8", "--keep-existing-plan", "--plan-out"])
                .arg(&race)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in racers {
        let out = c.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
    }
    let asked = reg.requests().split_off(before);
    let gets = asked
        .iter()
        .filter(|r| r.starts_with("GET") && r.contains("/manifests/"))
        .count();
    assert_eq!(gets, tags.len(), "planned more than once: {asked:?}");
    assert!(race.exists() && !race.with_extension("lock").exists());

    // After planning: a new repository and a new tag of a planned one.
    reg.push(&sized_image(&mut rng, "late/new", 20_000), "late/new", "v1");
    reg.push(
        &sized_image(&mut rng, "team0/svc0", 20_000),
        "team0/svc0",
        "late",
    );
    tags.push("late/new:v1".into());
    tags.push("team0/svc0:late".into());
    let late_shard = (fnv1a(b"late/new") % 8) as usize;
    let svc0_shard = planned.iter().find(|(n, _)| n == "team0/svc0").unwrap().1 as usize;

    let summary = dir.path().join("whole.json");
    let (code, whole, _, stderr) = sweep(&base, &summary);
    assert_eq!(code, Some(1), "{stderr}");

    let before = reg.requests().len();
    let children: Vec<_> = (0..8)
        .map(|i| {
            let summary = dir.path().join(format!("shard-{i}.summary.json"));
            let report = dir.path().join(format!("shard-{i}.json"));
            let child = isolated_leakhound()
                .args(["--format", "json", "--output"])
                .arg(&report)
                .arg("--summary")
                .arg(&summary)
                .args(base)
                .args(["--shard", &format!("{i}/8"), "--plan", plan_arg])
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (summary, report, child)
        })
        .collect();
    let schema = jsonschema::validator_for(
        &serde_json::from_slice(
            &std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/summary.schema.json"))
                .unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    let (mut union, mut inputs, mut images, mut bytes) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let plan_digest = sha256(&plan_text);
    for (i, (summary, report, child)) in children.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "shard {i}: {stderr}"
        );
        union.extend(
            serde_json::from_slice::<Vec<Value>>(&std::fs::read(&report).unwrap()).unwrap(),
        );
        let s: Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
        let errors: Vec<String> = schema.iter_errors(&s).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "shard {i} summary: {errors:#?}");
        assert_eq!(s["shard"]["plan"], plan_digest.as_str(), "{s}");
        let repos: Vec<&str> = s["shard"]["repositories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        let mut want: Vec<&str> = planned
            .iter()
            .filter(|(_, sh)| *sh == i as u64)
            .map(|(n, _)| n.as_str())
            .collect();
        let unplanned = s["shard"]["unplanned"].as_array().unwrap();
        if i == late_shard {
            want.push("late/new");
            assert_eq!(unplanned, &[json!("late/new")], "{s}");
        } else {
            assert!(unplanned.is_empty(), "{s}");
        }
        want.sort();
        assert_eq!(repos, want, "shard {i}");
        images.extend(
            s["shard"]["images"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap().to_string()),
        );
        if i == svc0_shard {
            assert!(
                images.iter().any(|r| r.ends_with("/team0/svc0:late")),
                "shard {i}: {s}"
            );
        }
        bytes.push(s["scanned"]["bytes"].as_u64().unwrap());
        inputs.push(report);
        inputs.push(summary);
    }
    // Every image swept by exactly one shard, and read once: one manifest
    // GET per tag over all 8 shards.
    let mut want: Vec<String> = tags.iter().map(|t| format!("{}/{t}", reg.host)).collect();
    want.sort();
    images.sort();
    assert_eq!(images, want);
    let asked = reg.requests().split_off(before);
    let mut gets: Vec<&String> = asked
        .iter()
        .filter(|r| r.starts_with("GET") && r.contains("/manifests/"))
        .collect();
    gets.sort();
    let n = gets.len();
    gets.dedup();
    assert_eq!((n, gets.len()), (tags.len(), tags.len()), "{gets:?}");
    assert_eq!(sorted(union), sorted(whole.clone()), "shards vs one sweep");
    // Bytes scanned per shard within 25% of the mean.
    let mean = bytes.iter().sum::<u64>() as f64 / 8.0;
    for (i, b) in bytes.iter().enumerate() {
        let off = (*b as f64 - mean).abs() / mean;
        assert!(off < 0.25, "shard {i}: {b} bytes, mean {mean}: {bytes:?}");
    }

    // merge: complete; a shard made from another plan, or from none, is not.
    let merge = |extra: &[&Path]| {
        let out = Command::new(env!("CARGO_BIN_EXE_leakhound"))
            .args(["--format", "json", "merge"])
            .args(&inputs)
            .args(extra)
            .output()
            .unwrap();
        let found: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
        (
            out.status.code(),
            found,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, merged, stderr) = merge(&[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(sorted(merged), sorted(whole));
    let s3: Value = serde_json::from_slice(&std::fs::read(&inputs[7]).unwrap()).unwrap();
    for (name, plan) in [
        ("other", json!(format!("sha256:{}", "ab".repeat(32)))),
        ("none", Value::Null),
    ] {
        let mut other = s3.clone();
        match &plan {
            Value::Null => other["shard"].as_object_mut().unwrap().remove("plan"),
            p => other["shard"]
                .as_object_mut()
                .unwrap()
                .insert("plan".into(), p.clone()),
        };
        let file = dir.path().join(format!("shard-3-{name}.summary.json"));
        std::fs::write(&file, other.to_string()).unwrap();
        let (code, _, stderr) = merge(&[&file]);
        assert_eq!(code, Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains("shards were split differently") && stderr.contains("3/8 by "),
            "{name}: {stderr}"
        );
    }
    // A missing shard is still named.
    assert_missing_shard_5_is_named(&inputs);

    // A plan for another shard count, or without a shard, is refused.
    let (code, stderr) = run(&[&base[..], &["--shard", "1/4", "--plan", plan_arg]].concat());
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("splits into 8 shards, not 4"), "{stderr}");
    let (code, stderr) = run(&[&base[..], &["--plan", plan_arg]].concat());
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--plan needs --shard"), "{stderr}");
    let other_host = format!("{}/team1", reg.host);
    let (code, stderr) = run(&[
        "registry",
        &other_host,
        "--insecure",
        "--shard",
        "1/8",
        "--plan",
        plan_arg,
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("is for"), "{stderr}");
}
