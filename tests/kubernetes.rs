//! Kubernetes manifests and encoded content through the binary: the tree in
//! fixtures/kubernetes (as a platform team keeps it: multi-document YAML,
//! kubectl JSON and Lists, typed Secrets, last-applied annotations,
//! SealedSecrets, SOPS, placeholders, chart templates, broken files) plus
//! Helm release storage and nested encodings generated here from plain
//! values. Every real value must be found at its line with its
//! `kubernetes` fields and decoded secret; nothing else may be reported.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use assert_cmd::Command;
use serde_json::{Value, json};

const STRIPE: &str = concat!(
    "sk_live_51F78AEJrBbvdec9EijD8hp1cad7Lgfn7C6HDJv0hfkJ14SFSH2pWaX4vdewEM7wU",
    "CFQhIIwmNrkGFJzNfuESzUeir4Jchtwieh"
);
const GITHUB: &str = "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";

fn leakhound() -> Command {
    Command::new(env!("CARGO_BIN_EXE_leakhound"))
}

fn b64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// A Helm 3 release as `helm install` stores it: chart values, a template
/// and the rendered manifest (a Secret) with the values put in.
fn helm_release(name: &str, version: u32, values: Value) -> Vec<u8> {
    let template = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: billing-stripe\ntype: Opaque\n\
                    data:\n  apiKey: {{ .Values.stripe.apiKey | b64enc }}\n";
    let manifest = format!(
        "---\n# Source: billing/templates/secret.yaml\napiVersion: v1\nkind: Secret\nmetadata:\n  \
         name: billing-stripe\ntype: Opaque\ndata:\n  apiKey: {}\n",
        b64(STRIPE.as_bytes())
    );
    let release = json!({
        "name": name,
        "namespace": "billing",
        "version": version,
        "info": {"status": "deployed", "description": "Upgrade complete"},
        "chart": {
            "metadata": {"name": "billing", "version": "1.4.2"},
            "values": {"stripe": {"apiKey": ""}, "image": {"tag": "1.4.2"}},
            "templates": [{"name": "templates/secret.yaml", "data": b64(template.as_bytes())}],
        },
        "config": values,
        "manifest": manifest,
    });
    gzip(release.to_string().as_bytes())
}

fn helm_secret(release_value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: sh.helm.release.v1.billing.v3\n  \
         namespace: billing\n  labels:\n    name: billing\n    owner: helm\n    status: deployed\n    \
         version: \"3\"\ntype: helm.sh/release.v1\ndata:\n  release: {release_value}\n"
    )
}

/// The fixture tree plus generated files, in a temporary directory.
fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/kubernetes");
    copy_dir(&src, dir.path());
    let gen_dir = dir.path().join("generated");
    std::fs::create_dir_all(&gen_dir).unwrap();
    let write = |name: &str, text: String| std::fs::write(gen_dir.join(name), text).unwrap();

    // Helm's Secret storage: base64 (the Secret's data) of base64 of gzip.
    let release = helm_release(
        "billing",
        3,
        json!({"stripe": {"apiKey": STRIPE}, "replicas": 2}),
    );
    write(
        "helm-release-secret.yaml",
        helm_secret(&b64(b64(&release).as_bytes())),
    );
    // Helm's ConfigMap storage: base64 of gzip.
    let release = helm_release("billing", 4, json!({"github": {"token": GITHUB}}));
    write(
        "helm-release-configmap.yaml",
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: billing.v4\n  namespace: billing\n  \
             labels: {{owner: helm, name: billing, status: deployed, version: \"4\"}}\ndata:\n  \
             release: {}\n",
            b64(&release)
        ),
    );
    // A release whose gzip stream was cut short.
    let release = helm_release("billing", 5, json!({}));
    let cut = &release[..release.len() / 2];
    write(
        "helm-release-truncated.yaml",
        helm_secret(&b64(b64(cut).as_bytes())).replace("v1.billing.v3", "v1.billing.v5"),
    );
    // Generic encodings in any file: base64 of base64 (found), base64 four
    // times over (deeper than the limit: a note), gzip inside base64.
    let aws = format!("aws_access_key_id = {}", "AKIAO7IHIDT3FXYJQ4UG");
    let twice = b64(b64(aws.as_bytes()).as_bytes());
    let four = b64(b64(twice.as_bytes()).as_bytes());
    let zipped = b64(&gzip(format!("token: {GITHUB}\n").as_bytes()));
    write(
        "encoded.env",
        format!("BLOB={twice}\nDEEP={four}\nZIPPED={zipped}\n"),
    );
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// 1-based line of the first line of `path` holding `needle`.
fn line_of(root: &Path, path: &str, needle: &str) -> u64 {
    let text = std::fs::read_to_string(root.join(path)).unwrap();
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{path} has no line with {needle:?}")) as u64
        + 1
}

struct Expect {
    path: &'static str,
    /// Text on the line the finding must point at.
    at: &'static str,
    rule: &'static str,
    /// `kubernetes.key` and `kubernetes.path` (None: absent).
    key: Option<&'static str>,
    kpath: Option<&'static str>,
    decoded: &'static [&'static str],
    secret: String,
}

fn e(
    path: &'static str,
    at: &'static str,
    rule: &'static str,
    key: Option<&'static str>,
    kpath: Option<&'static str>,
    decoded: &'static [&'static str],
    secret: &str,
) -> Expect {
    Expect {
        path,
        at,
        rule,
        key,
        kpath,
        decoded,
        secret: secret.to_string(),
    }
}

fn scan(root: &Path) -> (Vec<Value>, String, Option<i32>) {
    let out = leakhound()
        .current_dir(root)
        .args(["--format", "json", "--show-secrets", "scan", "."])
        .output()
        .unwrap();
    let findings: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    (
        findings,
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code(),
    )
}

#[test]
fn every_real_value_is_found_at_its_line_with_its_object_and_nothing_else() {
    let dir = tree();
    let root = dir.path();
    let (findings, stderr, code) = scan(root);
    assert_eq!(code, Some(1), "{stderr}");
    let m = "kubernetes-secret-manifest";
    let b: &[&str] = &["base64"];
    let plain: &[&str] = &[];
    let pem = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/scan/positives/deploy/id_ed25519"),
    )
    .unwrap();
    let jwt = concat!(
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJiZDZlZDJkZS0yZGM5LTQwNjYtOTAyNS00NzYxMWY3MTU5OTAiLC",
        "Jpc3MiOiJodHRwczovL2F1dGguYWNtZS1jb3JwLmlvLyIsImF1ZCI6ImJpbGxpbmctYXBpIiwiaWF0IjoxNzk1NjAwMzg2LCJleHAiOj",
        "E4MjcxMzYzODYsInNjb3BlIjoiaW52b2ljZXM6cmVhZCBpbnZvaWNlczp3cml0ZSJ9.FoScBBwIJhQmlcCBBN_09maHhwKD_BiO3NUlKI3sgSA"
    );
    let slack = "xoxb-7255571726437-3957903447132-1rZLZ8a7syCYdzvColiggH3w";
    let docker =
        r#"{"auths": {"registry.acme-corp.io": {"auth": "Y2ktYm90OlpwNC1LcTh2UnQyTG05eFc="}}}"#;
    let old_url = "postgres://app_rw:hgxHMMK8WI6LrynHoE@db-prod.internal.acme-corp.io:5432/ledger";
    let secrets = "apps/billing/secrets.yaml";
    let pull = "apps/billing/pull-secret.yaml";
    let helm = "generated/helm-release-secret.yaml";
    let cm = "generated/helm-release-configmap.yaml";
    let helm_steps: &[&str] = &["base64", "base64", "gzip"];
    let cm_steps: &[&str] = &["base64", "gzip"];
    let expected = vec![
        // Multi-document YAML: data (base64) and stringData, anchors.
        e(
            secrets,
            "db-password:",
            "generic-secret-assignment-quoted",
            Some("db-password"),
            None,
            b,
            "Rk7vQ2mXz9LpW4tN",
        ),
        e(
            secrets,
            "db-password:",
            m,
            Some("db-password"),
            None,
            b,
            "Rk7vQ2mXz9LpW4tN",
        ),
        e(
            secrets,
            "stripe-api-key:",
            "stripe-live-secret-key",
            Some("stripe-api-key"),
            None,
            b,
            STRIPE,
        ),
        e(
            secrets,
            "stripe-api-key:",
            m,
            Some("stripe-api-key"),
            None,
            b,
            STRIPE,
        ),
        e(
            secrets,
            "github-token:",
            "github-classic-pat",
            Some("github-token"),
            None,
            plain,
            GITHUB,
        ),
        e(
            secrets,
            "github-token:",
            m,
            Some("github-token"),
            None,
            plain,
            GITHUB,
        ),
        e(
            secrets,
            "slack-bot-token:",
            "slack-bot-token",
            Some("slack-bot-token"),
            None,
            b,
            slack,
        ),
        e(
            secrets,
            "slack-bot-token:",
            m,
            Some("slack-bot-token"),
            None,
            b,
            slack,
        ),
        // A config file in a block scalar: the secret at its own line, the
        // committed Secret at the key's line.
        e(
            "apps/billing/app-config.yaml",
            "password:",
            "generic-secret-assignment-quoted",
            Some("application.yaml"),
            None,
            plain,
            "Ht5-Wq9zKm2Lx7vR",
        ),
        e(
            "apps/billing/app-config.yaml",
            "application.yaml:",
            m,
            Some("application.yaml"),
            None,
            plain,
            "",
        ),
        // dockerconfigjson: the auth entry and the password inside it.
        e(
            pull,
            ".dockerconfigjson",
            "registry-docker-config-auth",
            Some(".dockerconfigjson"),
            None,
            b,
            "Y2ktYm90OlpwNC1LcTh2UnQyTG05eFc=",
        ),
        e(
            pull,
            ".dockerconfigjson",
            "generic-secret-assignment-quoted",
            Some(".dockerconfigjson"),
            Some("auths.registry.acme-corp.io.auth"),
            &["base64", "base64"],
            "Zp4-Kq8vRt2Lm9xW",
        ),
        e(
            pull,
            ".dockerconfigjson",
            m,
            Some(".dockerconfigjson"),
            None,
            b,
            docker,
        ),
        // kubectl get secret -o json (managedFields and all).
        e(
            "kubectl/secret.json",
            "\"aws-access-key-id\"",
            "aws-access-key-id",
            Some("aws-access-key-id"),
            None,
            b,
            "AKIAO7IHIDT3FXYJQ4UG",
        ),
        e(
            "kubectl/secret.json",
            "\"aws-access-key-id\"",
            m,
            Some("aws-access-key-id"),
            None,
            b,
            "AKIAO7IHIDT3FXYJQ4UG",
        ),
        e(
            "kubectl/secret.json",
            "\"aws-secret-access-key\"",
            "aws-secret-access-key",
            Some("aws-secret-access-key"),
            None,
            b,
            "howhvk2ZR24wSQfOE5jOpQPvkDe/lLbjU2bQc9jo",
        ),
        e(
            "kubectl/secret.json",
            "\"aws-secret-access-key\"",
            m,
            Some("aws-secret-access-key"),
            None,
            b,
            "howhvk2ZR24wSQfOE5jOpQPvkDe/lLbjU2bQc9jo",
        ),
        // kind: List; the rotated value survives only in last-applied.
        e(
            "kubectl/list.yaml",
            "{\"apiVersion\"",
            "database-postgres-url-password",
            Some("DATABASE_URL"),
            Some("last-applied-configuration"),
            plain,
            "hgxHMMK8WI6LrynHoE",
        ),
        e(
            "kubectl/list.yaml",
            "{\"apiVersion\"",
            m,
            Some("DATABASE_URL"),
            Some("last-applied-configuration"),
            plain,
            old_url,
        ),
        e(
            "kubectl/list.yaml",
            "webhook-signing-secret:",
            "stripe-webhook-signing-secret",
            Some("webhook-signing-secret"),
            None,
            b,
            "whsec_Lq8Vz3Tn6Rk1Xw9Pm4Jb7Hc2Fd5Ys0Ga",
        ),
        e(
            "kubectl/list.yaml",
            "webhook-signing-secret:",
            m,
            Some("webhook-signing-secret"),
            None,
            b,
            "whsec_Lq8Vz3Tn6Rk1Xw9Pm4Jb7Hc2Fd5Ys0Ga",
        ),
        // Typed Secrets.
        e(
            "typed/basic-auth.yaml",
            "password:",
            "generic-secret-assignment-quoted",
            Some("password"),
            None,
            b,
            "Vb8-Qw3zLk5Rt7pX",
        ),
        e(
            "typed/basic-auth.yaml",
            "password:",
            m,
            Some("password"),
            None,
            b,
            "Vb8-Qw3zLk5Rt7pX",
        ),
        e(
            "typed/ssh-auth.yaml",
            "ssh-privatekey:",
            "private-key-openssh",
            Some("ssh-privatekey"),
            None,
            b,
            pem.trim_end(),
        ),
        e(
            "typed/ssh-auth.yaml",
            "ssh-privatekey:",
            m,
            Some("ssh-privatekey"),
            None,
            b,
            &pem,
        ),
        e(
            "typed/tls.yaml",
            "tls.key:",
            "private-key-pkcs8",
            Some("tls.key"),
            None,
            b,
            "",
        ),
        e(
            "typed/tls.yaml",
            "tls.key:",
            m,
            Some("tls.key"),
            None,
            b,
            "",
        ),
        e(
            "typed/service-account-token.yaml",
            "token:",
            "jwt-token",
            Some("token"),
            None,
            b,
            jwt,
        ),
        e(
            "typed/service-account-token.yaml",
            "token:",
            m,
            Some("token"),
            None,
            b,
            jwt,
        ),
        e(
            "typed/bootstrap-token.yaml",
            "token-secret:",
            "kubernetes-bootstrap-token",
            Some("token-secret"),
            Some("token-id.token-secret"),
            b,
            "68jre4.122notiscy2wlxzi",
        ),
        e(
            "typed/bootstrap-token.yaml",
            "token-secret:",
            "kubernetes-bootstrap-token-secret",
            Some("token-secret"),
            None,
            b,
            "122notiscy2wlxzi",
        ),
        e(
            "typed/bootstrap-token.yaml",
            "token-secret:",
            m,
            Some("token-secret"),
            None,
            b,
            "122notiscy2wlxzi",
        ),
        // Helm release storage: values and the Secret in the manifest.
        e(
            helm,
            "release:",
            "stripe-live-secret-key",
            Some("release"),
            Some("values.stripe.apiKey"),
            helm_steps,
            STRIPE,
        ),
        e(
            helm,
            "release:",
            m,
            Some("release"),
            Some("manifest.Secret/billing-stripe.apiKey"),
            &["base64", "base64", "gzip", "base64"],
            STRIPE,
        ),
        e(
            cm,
            "release:",
            "github-classic-pat",
            Some("release"),
            Some("values.github.token"),
            cm_steps,
            GITHUB,
        ),
        e(
            cm,
            "release:",
            "stripe-live-secret-key",
            Some("release"),
            Some("manifest.Secret/billing-stripe.apiKey"),
            &["base64", "gzip", "base64"],
            STRIPE,
        ),
        e(
            cm,
            "release:",
            m,
            Some("release"),
            Some("manifest.Secret/billing-stripe.apiKey"),
            &["base64", "gzip", "base64"],
            STRIPE,
        ),
        // Generic decoders in any file; a broken manifest's raw text.
        e(
            "generated/encoded.env",
            "BLOB=",
            "aws-access-key-id",
            None,
            None,
            &["base64", "base64"],
            "AKIAO7IHIDT3FXYJQ4UG",
        ),
        e(
            "generated/encoded.env",
            "ZIPPED=",
            "github-classic-pat",
            None,
            None,
            &["base64", "gzip"],
            GITHUB,
        ),
        // A manifest the YAML parser refuses is read line by line.
        e(
            "broken/malformed.yaml",
            "api-token:",
            "github-classic-pat",
            Some("api-token"),
            None,
            b,
            GITHUB,
        ),
        e(
            "broken/malformed.yaml",
            "api-token:",
            m,
            Some("api-token"),
            None,
            b,
            GITHUB,
        ),
        e(
            "broken/unclosed.json",
            "\"api-key\"",
            "generic-secret-assignment-quoted",
            Some("api-key"),
            None,
            b,
            "Jm4-Tq7vXz2Rk9Lw",
        ),
        e(
            "broken/unclosed.json",
            "\"api-key\"",
            m,
            Some("api-key"),
            None,
            b,
            "Jm4-Tq7vXz2Rk9Lw",
        ),
    ];

    let mut problems = Vec::new();
    let mut matched = BTreeSet::new();
    for x in &expected {
        let line = line_of(root, x.path, x.at);
        let hit = findings.iter().position(|f| {
            let k = &f["kubernetes"];
            f["path"] == format!("./{}", x.path)
                && f["line"] == line
                && f["rule_id"] == x.rule
                && k["key"].as_str() == x.key
                && k["path"].as_str() == x.kpath
                && f["decoded"] == json!(x.decoded)
                && (x.secret.is_empty() || f["secret"] == x.secret.as_str())
        });
        match hit {
            Some(i) => {
                matched.insert(i);
            }
            None => problems.push(format!(
                "missing: {} line {line} {} key={:?} path={:?} decoded={:?}",
                x.path, x.rule, x.key, x.kpath, x.decoded
            )),
        }
    }
    for (i, f) in findings.iter().enumerate() {
        if !matched.contains(&i) {
            problems.push(format!(
                "unexpected: {} line {} {} kubernetes={} decoded={}",
                f["path"], f["line"], f["rule_id"], f["kubernetes"], f["decoded"]
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // Kubernetes fields of one finding in full.
    let stripe = findings
        .iter()
        .find(|f| f["rule_id"] == "stripe-live-secret-key" && f["path"] == format!("./{secrets}"))
        .unwrap();
    assert_eq!(
        stripe["kubernetes"],
        json!({"kind": "Secret", "namespace": "billing", "name": "billing-credentials",
               "key": "stripe-api-key", "type": "Opaque"})
    );
    // The encoded value is masked whole: its first characters would give
    // away the secret's.
    assert_eq!(stripe["snippet"], "stripe-api-key: *****");
    let helm_finding = findings
        .iter()
        .find(|f| f["path"] == format!("./{helm}") && f["rule_id"] == "stripe-live-secret-key")
        .unwrap();
    assert_eq!(
        helm_finding["kubernetes"]["name"],
        "sh.helm.release.v1.billing.v3"
    );
    assert_eq!(helm_finding["kubernetes"]["type"], "helm.sh/release.v1");
    let cm_finding = findings
        .iter()
        .find(|f| f["path"] == format!("./{cm}") && f["rule_id"] == "github-classic-pat")
        .unwrap();
    assert_eq!(cm_finding["kubernetes"]["kind"], "ConfigMap");
}

#[test]
fn bad_input_is_noted_and_the_rest_is_scanned() {
    let dir = tree();
    let (findings, stderr, _) = scan(dir.path());
    for note in [
        "broken/unclosed-flow.yaml: not a valid YAML/JSON manifest",
        "broken/invalid-base64.yaml: Secret billing/hand-edited: data key `api-key` is not valid base64",
        "generated/helm-release-truncated.yaml: Secret billing/sh.helm.release.v1.billing.v5: Helm release: gzip data is truncated or corrupt",
        "generated/encoded.env: encoded content nested deeper than 3 levels",
    ] {
        assert!(stderr.contains(note), "no note {note:?} in:\n{stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    // The summary counts them as skipped (the truncated release twice: the
    // Helm decoder and the generic base64 > base64 > gzip path both say so).
    assert!(stderr.contains(" 5 skipped, 0 errors"), "{stderr}");
    assert!(!findings.is_empty());
}

#[test]
fn harmless_manifests_are_silent() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/kubernetes/harmless");
    let out = leakhound()
        .args(["--format", "json", "scan"])
        .arg(&root)
        .output()
        .unwrap();
    let findings: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(findings.is_empty(), "false positives: {findings:#?}");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn decoding_can_be_turned_off() {
    let dir = tree();
    let out = leakhound()
        .current_dir(dir.path())
        .args(["--format", "json", "--decode-depth", "0", "scan", "typed"])
        .output()
        .unwrap();
    let findings: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    // Without decoding only raw rules for encoded forms fire (no key or
    // kubernetes fields, nothing decoded); some do, so the checks below
    // are about findings, not vacuous over an empty list.
    assert_eq!(out.status.code(), Some(1), "{findings:#?}");
    assert!(!findings.is_empty());
    assert!(findings.iter().all(|f| f["decoded"] == json!([])));
    assert!(findings.iter().all(|f| f.get("kubernetes").is_none()));
}

#[test]
fn sarif_describes_the_manifest_rule() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/kubernetes/typed");
    let out = leakhound()
        .args(["--format", "sarif", "scan"])
        .arg(root.join("basic-auth.yaml"))
        .output()
        .unwrap();
    let sarif: Value = serde_json::from_slice(&out.stdout).unwrap();
    let result = &sarif["runs"][0]["results"][0];
    assert_eq!(
        result["properties"]["kubernetes"]["name"], "grafana-admin",
        "{result:#}"
    );
    let rules = &sarif["runs"][0]["tool"]["driver"]["rules"];
    assert!(
        rules
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == "kubernetes-secret-manifest"),
        "{rules:#}"
    );
}

/// `(path, line, rule_id, secret)` of every finding of a scan of `root`.
fn hits(root: &Path) -> Vec<(String, u64, String, String)> {
    let (findings, stderr, _) = scan(root);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let mut hits: Vec<_> = findings
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap_or("").to_string(),
                f["line"].as_u64().unwrap_or(0),
                f["rule_id"].as_str().unwrap_or("").to_string(),
                f["secret"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    hits.sort();
    hits
}

#[test]
fn placeholders_are_silent_next_to_real_values() {
    let dir = tempfile::tempdir().unwrap();
    let placeholders = [
        "REPLACE_ME",
        "password",
        "changeme\n",
        "<your-token>",
        "${DB_PASSWORD}",
        "xxxxxxxxxxxx",
        "TODO",
        "CHANGE_ME",
        "replace-with-your-key",
        "secret",
        "none",
        "null",
        "<redacted>",
        "*****",
        "your-password-here",
        "insert_token_here",
    ];
    let mut yaml = String::from("apiVersion: v1\nkind: Secret\nmetadata:\n  name: app\ndata:\n");
    for (i, p) in placeholders.iter().enumerate() {
        yaml.push_str(&format!("  data-{i}: {}\n", b64(p.as_bytes())));
    }
    yaml.push_str(&format!("  db-password: {}\n", b64(b"P@ssw0rd-9xQ!")));
    yaml.push_str("stringData:\n");
    for (i, p) in placeholders.iter().enumerate() {
        yaml.push_str(&format!("  plain-{i}: {:?}\n", p.trim_end()));
    }
    yaml.push_str("  api-token: Kq8vRt2Lm9xWz4Tn\n");
    std::fs::write(dir.path().join("secret.yaml"), &yaml).unwrap();
    let mut env = String::new();
    for p in &placeholders {
        env.push_str(&format!("DB_PASSWORD={}\n", p.trim_end()));
        env.push_str(&format!("api_token = \"{}\"\n", p.trim_end()));
    }
    env.push_str("password = \"P@ssw0rd-9xQ!\"\n");
    std::fs::write(dir.path().join("app.env"), &env).unwrap();

    let m = "kubernetes-secret-manifest";
    let at = |text: &str, needle: &str| {
        text.lines().position(|l| l.contains(needle)).unwrap() as u64 + 1
    };
    let expected = vec![
        (
            "./app.env".to_string(),
            at(&env, "P@ssw0rd"),
            "generic-secret-assignment-quoted".to_string(),
            "P@ssw0rd-9xQ!".to_string(),
        ),
        (
            "./secret.yaml".to_string(),
            at(&yaml, "db-password:"),
            "generic-secret-assignment-quoted".to_string(),
            "P@ssw0rd-9xQ!".to_string(),
        ),
        (
            "./secret.yaml".to_string(),
            at(&yaml, "db-password:"),
            m.to_string(),
            "P@ssw0rd-9xQ!".to_string(),
        ),
        (
            "./secret.yaml".to_string(),
            at(&yaml, "api-token:"),
            "generic-secret-assignment-quoted".to_string(),
            "Kq8vRt2Lm9xWz4Tn".to_string(),
        ),
        (
            "./secret.yaml".to_string(),
            at(&yaml, "api-token:"),
            m.to_string(),
            "Kq8vRt2Lm9xWz4Tn".to_string(),
        ),
    ];
    let mut expected = expected;
    expected.sort();
    assert_eq!(hits(dir.path()), expected);
}

/// An expected finding in a broken manifest: path, line, rule, namespace,
/// name, key, decoding steps, secret.
type Broken<'a> = (
    &'a str,
    u64,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    &'a str,
    &'a [&'a str],
    &'a str,
);

/// Manifests the YAML parser refuses, as they turn up in repositories:
/// every real value is still decoded, reported at its line with the
/// Secret's namespace, name and key; templated and placeholder values,
/// SOPS and other kinds stay silent.
#[test]
fn broken_manifests_are_read_line_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: String| {
        std::fs::write(dir.path().join(name), &text).unwrap();
        text
    };
    let pw = "Rk7vQ2mXz9LpW4tN";
    let tabs = write(
        "tabs.yaml",
        format!(
            "apiVersion: v1\ndata:\n\t# abbreviated\n\tdb-password: {}\n\tusername: {}\n\tnote: {}\n\
             kind: 'secret'\nmetadata:\n\tname: db-user-pass\n\tnamespace: default\ntype: Opaque\n\
             ---\napiVersion: v1\nkind: Secret\nmetadata:\n\tname: sops-encrypted\ndata:\n\t\
             token: ENC[AES256_GCM,data:8kQw3mZ0,type:str]\nsops:\n\tversion: 3.8.1\n\
             ---\nkind: ExternalSecret\nspec:\n\tdata:\n\t\tapi-key: {}\n",
            b64(pw.as_bytes()),
            b64(b"admin"),
            b64(b"REPLACE_ME"),
            b64(b"Xq3-Lm8vTz5Rw2Kp"),
        ),
    );
    let helm = write(
        "secret.tpl.yaml",
        format!(
            "{{{{- if .Values.credentials.create }}}}\napiVersion: v1\nkind: Secret\nmetadata:\n  \
             name: {{{{ include \"billing.fullname\" . }}}}\n  namespace: billing\ntype: Opaque\n\
             data:\n  db-password: {{{{ .Values.dbPassword | b64enc | quote }}}}\n  \
             {{{{- if .Values.github }}}}\n  github-token: {}\n  {{{{- end }}}}\nstringData:\n  \
             stripe-key: \"{STRIPE}\"\n{{{{- end }}}}\n",
            b64(GITHUB.as_bytes())
        ),
    );
    let markdown = write(
        "README.md",
        format!(
            "# Billing\n\n1. Create the credentials:\n\n   ```yaml\n   apiVersion: v1\n   kind: Secret\n   \
             metadata:\n     name: billing-credentials\n     namespace: billing\n   stringData:\n     \
             STRIPE_KEY: {STRIPE}\n     placeholder: <your-token>\n   ```\n\n\
             Or, already encoded:\n\n    kind: Secret\n    metadata:\n      name: indented\n    \
             data:\n      db-password: {}\n\nThe `data:` values are base64.\n",
            b64(pw.as_bytes())
        ),
    );
    let log = write(
        "deploy.log",
        format!(
            "2026-12-01T10:00:00Z INFO starting\n2026-12-01T10:00:01Z DEBUG applying: apiVersion: v1\\n\
             kind: Secret\\nmetadata:\\n  name: log-secret\\n  namespace: ops\\ndata:\\n  \
             db-password: {}\\n\n2026-12-01T10:00:02Z INFO done\n",
            b64(pw.as_bytes())
        ),
    );
    let json = write(
        "events.jsonl",
        format!(
            "{{\"level\":\"info\",\"msg\":\"created\"}}\n{{\"level\":\"debug\",\"manifest\":\"apiVersion: v1\\n\
             kind: Secret\\nmetadata:\\n  name: json-secret\\n  namespace: ci\\nstringData:\\n  \
             github-token: \\\"{GITHUB}\\\"\\n  password: \\\"changeme\\\"\\n\"}}\n"
        ),
    );

    let (findings, stderr, code) = scan(dir.path());
    assert_eq!(code, Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let line = |text: &str, needle: &str| {
        text.lines().position(|l| l.contains(needle)).unwrap() as u64 + 1
    };
    let m = "kubernetes-secret-manifest";
    let q = "generic-secret-assignment-quoted";
    let gh = "github-classic-pat";
    let st = "stripe-live-secret-key";
    let b: &[&str] = &["base64"];
    let plain: &[&str] = &[];
    #[rustfmt::skip]
    let expected: Vec<Broken> = vec![
        ("tabs.yaml", line(&tabs, "db-password:"), q, Some("default"), Some("db-user-pass"), "db-password", b, pw),
        ("tabs.yaml", line(&tabs, "db-password:"), m, Some("default"), Some("db-user-pass"), "db-password", b, pw),
        ("secret.tpl.yaml", line(&helm, "github-token:"), gh, Some("billing"), None, "github-token", b, GITHUB),
        ("secret.tpl.yaml", line(&helm, "github-token:"), m, Some("billing"), None, "github-token", b, GITHUB),
        ("secret.tpl.yaml", line(&helm, "stripe-key:"), st, Some("billing"), None, "stripe-key", plain, STRIPE),
        ("secret.tpl.yaml", line(&helm, "stripe-key:"), m, Some("billing"), None, "stripe-key", plain, STRIPE),
        ("README.md", line(&markdown, "STRIPE_KEY:"), st, Some("billing"), Some("billing-credentials"), "STRIPE_KEY", plain, STRIPE),
        ("README.md", line(&markdown, "STRIPE_KEY:"), m, Some("billing"), Some("billing-credentials"), "STRIPE_KEY", plain, STRIPE),
        ("README.md", line(&markdown, "db-password:"), q, None, Some("indented"), "db-password", b, pw),
        ("README.md", line(&markdown, "db-password:"), m, None, Some("indented"), "db-password", b, pw),
        ("deploy.log", line(&log, "log-secret"), q, Some("ops"), Some("log-secret"), "db-password", b, pw),
        ("deploy.log", line(&log, "log-secret"), m, Some("ops"), Some("log-secret"), "db-password", b, pw),
        ("events.jsonl", line(&json, "json-secret"), gh, Some("ci"), Some("json-secret"), "github-token", plain, GITHUB),
        ("events.jsonl", line(&json, "json-secret"), m, Some("ci"), Some("json-secret"), "github-token", plain, GITHUB),
    ];
    let mut problems = Vec::new();
    let mut matched = BTreeSet::new();
    for (path, line, rule, ns, name, key, decoded, secret) in &expected {
        let hit = findings.iter().position(|f| {
            let k = &f["kubernetes"];
            f["path"] == format!("./{path}")
                && f["line"] == *line
                && f["rule_id"] == *rule
                && k["kind"] == "Secret"
                && k["namespace"].as_str() == *ns
                && k["name"].as_str() == *name
                && k["key"] == *key
                && f["decoded"] == json!(decoded)
                && f["secret"] == *secret
        });
        match hit {
            Some(i) => {
                matched.insert(i);
            }
            None => problems.push(format!("missing: {path} line {line} {rule} {key}")),
        }
    }
    for (i, f) in findings.iter().enumerate() {
        if !matched.contains(&i) {
            problems.push(format!(
                "unexpected: {} line {} {} kubernetes={} decoded={} secret={}",
                f["path"], f["line"], f["rule_id"], f["kubernetes"], f["decoded"], f["secret"]
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A Secret as `kubectl apply` leaves it: the value in `data` (base64) or
/// `stringData`, and the last-applied-configuration annotation holding
/// `applied` in the same form (the JSON kubectl writes there).
fn applied_secret(current: &str, applied: &str, base64: bool) -> String {
    let (field, now, then) = if base64 {
        ("data", b64(current.as_bytes()), b64(applied.as_bytes()))
    } else {
        ("stringData", current.to_string(), applied.to_string())
    };
    let annotation = json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "ci", "namespace": "build"},
        field: {"github-token": then},
    })
    .to_string();
    format!(
        "apiVersion: v1\nkind: Secret\ntype: Opaque\nmetadata:\n  name: ci\n  namespace: build\n  \
         annotations:\n    kubectl.kubernetes.io/last-applied-configuration: |\n      {annotation}\n\
         {field}:\n  github-token: {now}\n"
    )
}

fn github_findings(yaml: &str) -> Vec<(String, Option<String>)> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret.yaml"), yaml).unwrap();
    let out = leakhound()
        .current_dir(dir.path())
        .args([
            "--no-config",
            "--format",
            "json",
            "--show-secrets",
            "scan",
            ".",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{yaml}");
    let findings: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let mut got: Vec<(String, Option<String>)> = findings
        .iter()
        .filter(|f| f["rule_id"] == "github-classic-pat")
        .map(|f| {
            (
                f["secret"].as_str().unwrap().to_string(),
                f["kubernetes"]["path"].as_str().map(str::to_string),
            )
        })
        .collect();
    got.sort();
    got
}

#[test]
fn last_applied_copy_of_the_same_value_is_reported_once_and_a_rotated_one_twice() {
    let old = "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"; // leakhound:allow
    for base64 in [true, false] {
        // Same value in the object and the annotation: one finding, at the
        // object's key (not again from the annotation's raw text).
        assert_eq!(
            github_findings(&applied_secret(GITHUB, GITHUB, base64)),
            [(GITHUB.to_string(), None)],
            "base64 {base64}"
        );
        // Rotated: the current value at the key, the old one only in the
        // annotation.
        let mut want = vec![
            (GITHUB.to_string(), None),
            (
                old.to_string(),
                Some("last-applied-configuration".to_string()),
            ),
        ];
        want.sort();
        assert_eq!(
            github_findings(&applied_secret(GITHUB, old, base64)),
            want,
            "base64 {base64}"
        );
    }
}
