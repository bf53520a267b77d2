//! `leakhound image` and `leakhound registry` against a real registry:
//! Debian's `docker-registry` (CNCF distribution) started on 127.0.0.1 with
//! a random port and a temp storage dir, once plain HTTP, once TLS (a CA
//! and server certificate made here with `openssl`) with htpasswd basic
//! auth. Images are built by the test and pushed with `oci-client`.

#[path = "support/image.rs"]
mod fixture;
#[path = "support/registry.rs"]
mod server;

use fixture::*;
use server::*;

#[test]
fn image_pulled_over_plain_http_reports_layers_config_and_history() {
    let reg = Registry::start(Mode::Plain);
    let img = TestImage::leaky();
    reg.push(&img, "team/app", "v1");
    let reference = format!("{}/team/app:v1", reg.host);
    let (code, findings, stderr) = leakhound(&["image", &reference, "--insecure"], None, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_leaky_findings(&findings, &reference, &img.layer_digests());
}

#[test]
fn tls_registry_with_basic_auth_takes_password_stdin_env_or_docker_config_and_401_is_an_error() {
    let reg = Registry::start(Mode::TlsBasic);
    let img = TestImage::leaky();
    reg.push(&img, "team/app", "v1");
    let reference = format!("{}/team/app:v1", reg.host);
    let ca = reg.ca().display().to_string();

    let (code, findings, stderr) = leakhound(
        &[
            "image",
            &reference,
            "--ca-cert",
            &ca,
            "--username",
            USER,
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
        &[],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert_leaky_findings(&findings, &reference, &img.layer_digests());

    let env = [
        ("LEAKHOUND_REGISTRY_USERNAME", USER),
        ("LEAKHOUND_REGISTRY_PASSWORD", PASSWORD),
    ];
    let (code, findings, stderr) = leakhound(&["image", &reference, "--ca-cert", &ca], None, &env);
    assert_eq!((code, findings.len()), (Some(1), 4), "{stderr}");

    let docker = tempfile::tempdir().unwrap();
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let cfg = serde_json::json!({"auths": {reg.host.clone(): {"auth": auth}}});
    std::fs::write(docker.path().join("config.json"), cfg.to_string()).unwrap();
    let dc = docker.path().to_str().unwrap();
    let (code, findings, stderr) = leakhound(
        &["image", &reference, "--ca-cert", &ca],
        None,
        &[("DOCKER_CONFIG", dc)],
    );
    assert_eq!((code, findings.len()), (Some(1), 4), "{stderr}");

    // A credential helper named in credHelpers, run as docker would.
    let helper = docker.path().join("docker-credential-lhtest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread host\n[ \"$host\" = {} ] || {{ echo credentials not found; exit 1; }}\n\
             printf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}' \"$host\"\n",
            reg.host
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cfg = serde_json::json!({"credHelpers": {reg.host.clone(): "lhtest"}});
    std::fs::write(docker.path().join("config.json"), cfg.to_string()).unwrap();
    let path = format!("{dc}:{}", std::env::var("PATH").unwrap_or_default());
    let (code, findings, stderr) = leakhound(
        &["image", &reference, "--ca-cert", &ca],
        None,
        &[("DOCKER_CONFIG", dc), ("PATH", &path)],
    );
    assert_eq!((code, findings.len()), (Some(1), 4), "{stderr}");

    // No credentials: the registry says 401; named, exit 2.
    let (code, findings, stderr) = leakhound(&["image", &reference, "--ca-cert", &ca], None, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(findings.is_empty());
    assert!(stderr.contains(&reference), "{stderr}");
    assert!(stderr.contains("Not authorized"), "{stderr}");

    // Without the CA the certificate is not trusted: an error, not a pass.
    let (code, _, stderr) = leakhound(&["image", &reference], None, &env);
    assert_eq!(code, Some(2), "{stderr}");
}

#[test]
fn registry_sweep_scans_every_tag_under_the_prefix_once_per_layer_and_survives_a_missing_image() {
    let reg = Registry::start(Mode::Plain);
    let img = TestImage::leaky();
    reg.push(&img, "team/app", "v1");
    reg.push(&img, "team/app", "v2");
    let other = TestImage::new(
        vec![layer_tar(&[(
            "srv/.npmrc",
            format!("//registry.npmjs.org/:_authToken={}\n", npm_token()).as_bytes(),
        )])],
        serde_json::json!([{"created_by": "COPY .npmrc /srv/"}]),
        vec![],
    );
    reg.push(&other, "team/tool", "1");
    reg.push(&other, "elsewhere/tool", "1");

    let target = format!("{}/team", reg.host);
    let (code, findings, stderr) = leakhound(&["registry", &target, "--insecure"], None, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    let mut refs: Vec<&str> = findings
        .iter()
        .map(|f| f["image"]["reference"].as_str().unwrap())
        .collect();
    refs.dedup();
    let h = &reg.host;
    assert_eq!(
        refs,
        [
            format!("{h}/team/app:v1"),
            format!("{h}/team/app:v2"),
            format!("{h}/team/tool:1")
        ]
    );
    assert_eq!(findings.len(), 4 + 4 + 1, "{findings:#?}");
    // 3 + 1 distinct layer files, each read once; 8 + 8 + 3 config parts.
    assert!(stderr.contains("scanned 23 files"), "{stderr}");

    // A list with an image that does not exist: named, the rest scanned.
    let list = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        list.path(),
        format!("# images\n{h}/team/gone:1\n{h}/team/tool:1\n"),
    )
    .unwrap();
    let (code, findings, stderr) = leakhound(
        &[
            "registry",
            "--images-from",
            list.path().to_str().unwrap(),
            "--insecure",
        ],
        None,
        &[],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains(&format!("{h}/team/gone:1")), "{stderr}");
    assert_eq!(findings.len(), 1, "{findings:#?}");
}

#[test]
fn bearer_token_registry_is_pulled_with_a_token_bought_with_basic_credentials() {
    let reg = Registry::start(Mode::Token);
    let img = TestImage::leaky();
    reg.push(&img, "team/app", "v1");
    let reference = format!("{}/team/app:v1", reg.host);
    let (code, findings, stderr) = leakhound(
        &[
            "image",
            &reference,
            "--insecure",
            "--username",
            USER,
            "--password-stdin",
        ],
        Some(PASSWORD),
        &[],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert_leaky_findings(&findings, &reference, &img.layer_digests());

    // The token server refuses other credentials: the pull is an error.
    let (code, findings, stderr) = leakhound(
        &[
            "image",
            &reference,
            "--insecure",
            "--username",
            USER,
            "--password-stdin",
        ],
        Some("wrong"),
        &[],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        findings.is_empty() && stderr.contains(&reference),
        "{stderr}"
    );
}

#[test]
fn layer_served_with_other_bytes_than_its_digest_is_an_error_naming_image_and_layer() {
    let reg = Registry::start(Mode::Plain);
    let img = TestImage::leaky();
    reg.push(&img, "team/app", "v1");
    // Change layer 2's bytes in the registry's own storage: it serves
    // blobs as stored, without re-checking them.
    let digest = &img.layer_digests()[2];
    let hex = &digest[7..];
    let data = reg.dir.path().join(format!(
        "storage/docker/registry/v2/blobs/sha256/{}/{hex}/data",
        &hex[..2]
    ));
    let other = gzip(&layer_tar(&[("etc/app/config.yaml", b"nothing here\n")]));
    std::fs::write(&data, other).unwrap();
    let reference = format!("{}/team/app:v1", reg.host);
    let (code, findings, stderr) = leakhound(&["image", &reference, "--insecure"], None, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("{reference} layer 2 ({digest})")),
        "{stderr}"
    );
    // Found while streaming, by oci-client or by us: one error either way.
    assert!(
        stderr.contains("Invalid digest") || stderr.contains("digest mismatch"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches(&format!("layer 2 ({digest})")).count(),
        1,
        "{stderr}"
    );
    // The other layers and the config are still scanned.
    assert!(findings.iter().any(|f| f["path"] == "app/.env"));
    assert!(findings.iter().any(|f| f["path"] == "config:Env[1]"));
}

#[test]
fn rate_limited_registry_is_retried_then_named_as_the_error() {
    // A registry that answers every request "too many requests".
    let stub = HttpStub::start(|_| {
        (
            "429 Too Many Requests",
            r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"pull rate limit"}]}"#.to_string(),
        )
    });
    let reference = format!("127.0.0.1:{}/team/app:v1", stub.port);
    let (code, findings, stderr) = leakhound(&["image", &reference, "--insecure"], None, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(findings.is_empty());
    assert!(
        stderr.contains(&reference) && stderr.contains("pull rate limit"),
        "{stderr}"
    );
    // One attempt is at most two requests (a /v2/ probe, the manifest):
    // more means it was tried again.
    let n = stub.requests.load(std::sync::atomic::Ordering::Relaxed);
    assert!(n >= 3, "{n} requests");
}

/// The README: 429 and 502/503/504 without `Retry-After` are "tried six
/// times in all, waiting 0.5 s, 1 s, 2 s, 4 s and 8 s (plus jitter)".
/// Five waits take at least 15.5 s; only that lower bound is checked (a
/// loaded machine makes any upper bound flaky). The four statuses run at
/// once.
#[test]
fn busy_registry_answers_are_tried_six_times_with_growing_waits() {
    let cases = [
        (
            "429 Too Many Requests",
            r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"pull rate limit"}]}"#,
        ),
        ("502 Bad Gateway", "upstream connect error"),
        ("503 Service Unavailable", "no healthy upstream"),
        ("504 Gateway Timeout", "upstream request timeout"),
    ];
    std::thread::scope(|s| {
        for (status, body) in cases {
            s.spawn(move || {
                let stub = HttpStub::start(move |_| (status, body.to_string()));
                let reference = format!("127.0.0.1:{}/team/app:v1", stub.port);
                let start = std::time::Instant::now();
                let (code, findings, stderr) =
                    leakhound(&["image", &reference, "--insecure"], None, &[]);
                let took = start.elapsed();
                assert_eq!(code, Some(2), "{status}: {stderr}");
                assert!(findings.is_empty());
                assert!(stderr.contains(&reference), "{status}: {stderr}");
                assert!(
                    took >= std::time::Duration::from_millis(15_500),
                    "{status}: gave up after {took:?}, before waiting 0.5+1+2+4+8 s"
                );
                let n = stub.requests.load(std::sync::atomic::Ordering::Relaxed);
                assert_eq!(n, 6, "{status}: {n} requests");
            });
        }
    });
}

#[test]
fn multi_platform_image_in_a_registry_scans_the_asked_platform_or_all() {
    let reg = Registry::start(Mode::Plain);
    let amd = TestImage::leaky();
    let yaml = format!("token: {}\n", slack_token());
    let arm = TestImage::new(
        vec![layer_tar(&[("arm/app.yaml", yaml.as_bytes())])],
        serde_json::json!([{"created_by": "COPY app.yaml /arm/"}]),
        vec![],
    );
    reg.push(&amd, "team/multi", "amd");
    reg.push(&arm, "team/multi", "arm");
    reg.push_index("team/multi", "1", &[("amd", "amd64"), ("arm", "arm64")]);
    let reference = format!("{}/team/multi:1", reg.host);

    let args = [
        "image",
        &reference,
        "--insecure",
        "--platform",
        "linux/arm64",
    ];
    let (code, findings, stderr) = leakhound(&args, None, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0]["path"], "arm/app.yaml");

    let args = [
        "image",
        &reference,
        "--insecure",
        "--platform",
        "linux/amd64",
    ];
    let (code, findings, stderr) = leakhound(&args, None, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_leaky_findings(&findings, &reference, &amd.layer_digests());

    let (code, findings, stderr) = leakhound(
        &["image", &reference, "--insecure", "--all-platforms"],
        None,
        &[],
    );
    assert_eq!(code, Some(1), "{stderr}");
    let refs = image_references(&findings);
    assert_eq!(
        refs,
        [
            format!("{reference} (linux/amd64)"),
            format!("{reference} (linux/arm64)")
        ]
    );
}

/// SARIF of `registry` (and of `image` from a registry), validated against
/// the official 2.1.0 schema: a sweep with findings (exit 1), and a sweep
/// where one image is missing (exit 2: the results of the rest, and
/// `executionSuccessful: false` with a notification naming the image).
#[test]
fn sarif_of_registry_and_image_pulls_is_valid_including_a_failed_sweep() {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/sarif-schema-2.1.0.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let schema = jsonschema::validator_for(&schema).expect("the SARIF schema compiles");
    let reg = Registry::start(Mode::Plain);
    let img = TestImage::leaky();
    reg.push(&img, "team/app", "v1");
    let h = &reg.host;
    let sarif = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_leakhound"))
            .args(["--no-config", "--format", "sarif"])
            .args(args)
            .env("HOME", "/nonexistent")
            .env_remove("DOCKER_CONFIG")
            .output()
            .unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        let errors: Vec<String> = schema.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{args:?}: {errors:#?}");
        (out.status.code(), doc)
    };
    let team = format!("{h}/team");
    let (code, doc) = sarif(&["registry", &team, "--insecure"]);
    assert_eq!(code, Some(1));
    let run = &doc["runs"][0];
    assert_eq!(run["automationDetails"]["id"], "registry/");
    assert_eq!(run["invocations"][0]["executionSuccessful"], true);
    assert_eq!(run["results"].as_array().unwrap().len(), 4, "{doc:#}");

    let reference = format!("{h}/team/app:v1");
    let (code, doc) = sarif(&["image", &reference, "--insecure"]);
    assert_eq!(code, Some(1));
    assert_eq!(doc["runs"][0]["results"].as_array().unwrap().len(), 4);

    let list = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(list.path(), format!("{h}/team/gone:1\n{reference}\n")).unwrap();
    let (code, doc) = sarif(&[
        "registry",
        "--images-from",
        list.path().to_str().unwrap(),
        "--insecure",
    ]);
    assert_eq!(code, Some(2));
    let run = &doc["runs"][0];
    assert_eq!(run["results"].as_array().unwrap().len(), 4, "{doc:#}");
    let inv = &run["invocations"][0];
    assert_eq!(inv["executionSuccessful"], false);
    let notes = inv["toolExecutionNotifications"].to_string();
    assert!(notes.contains(&format!("{h}/team/gone:1")), "{notes}");
}

/// A sweep split into 8 shards run as 8 processes at once: their findings
/// together are the unsharded sweep's, no image is read by two shards, and
/// each shard's summary names its index and the images it covered.
/// `--shard-from-env` reads the index as a Kubernetes Indexed Job gives it.
#[test]
fn eight_shards_cover_the_registry_once_and_together_equal_one_sweep() {
    let reg = Registry::start(Mode::Plain);
    let img = TestImage::leaky();
    let mut all: Vec<String> = Vec::new();
    for i in 0..48 {
        let repo = format!("team{}/svc{i}", i % 5);
        let tag = if i % 3 == 0 { "v2" } else { "v1" };
        reg.push(&img, &repo, tag);
        all.push(format!("{}/{repo}:{tag}", reg.host));
    }
    all.sort();
    let key = |f: &serde_json::Value| {
        format!("{} {} {}", f["image"]["reference"], f["path"], f["rule_id"])
    };
    let (code, whole, stderr) = leakhound(&["registry", &reg.host, "--insecure"], None, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    let mut whole: Vec<String> = whole.iter().map(key).collect();
    whole.sort();

    let dir = tempfile::tempdir().unwrap();
    let children: Vec<_> = (0..8)
        .map(|i| {
            let summary = dir.path().join(format!("summary-{i}.json"));
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_leakhound"));
            cmd.args(["--format", "json", "--summary"])
                .arg(&summary)
                .args(["registry", &reg.host, "--insecure"])
                .env("HOME", "/nonexistent")
                .env_remove("DOCKER_CONFIG")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            if i == 3 {
                cmd.args(["--shard-from-env", "--shards", "8"])
                    .env("JOB_COMPLETION_INDEX", "3");
            } else {
                cmd.args(["--shard", &format!("{i}/8")]);
            }
            (summary, cmd.spawn().unwrap())
        })
        .collect();
    let schema_path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/summary.schema.json");
    let summary_schema = jsonschema::validator_for(
        &serde_json::from_slice(&std::fs::read(schema_path).unwrap()).unwrap(),
    )
    .unwrap();
    let mut union: Vec<String> = Vec::new();
    let mut covered: Vec<String> = Vec::new();
    for (i, (summary, child)) in children.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "shard {i}: {stderr}"
        );
        let found: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
        union.extend(found.iter().map(key));
        let s: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
        let errors: Vec<String> = summary_schema
            .iter_errors(&s)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "shard {i} summary: {errors:#?}");
        assert_eq!(s["shard"]["index"], i as u64, "{s}");
        assert_eq!(s["shard"]["count"], 8);
        let images: Vec<String> = s["shard"]["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        // Every finding of a shard is in an image the shard names.
        for f in &found {
            let r = f["image"]["reference"].as_str().unwrap();
            assert!(images.iter().any(|i| i == r), "shard {i}: {r} not named");
        }
        assert!(stderr.contains(&format!("shard {i}/8:")), "{stderr}");
        covered.extend(images);
    }
    union.sort();
    assert_eq!(union, whole, "the shards together differ from one sweep");
    covered.sort();
    let n = covered.len();
    covered.dedup();
    assert_eq!(n, covered.len(), "an image read by two shards");
    assert_eq!(covered, all, "images no shard covered");

    // Bad shard arguments are refused up front.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_leakhound"))
        .args(["registry", &reg.host, "--insecure", "--shard", "8/8"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not below the shard count"), "{stderr}");
}
