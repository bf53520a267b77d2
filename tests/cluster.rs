//! `leakhound cluster` against a stub Kubernetes API server
//! (`support/kube_api.py`): HTTPS on 127.0.0.1 with a certificate signed by
//! a CA made here (`openssl`), a bearer token, list answers in the API's
//! real shapes (`kind: SecretList`, `metadata.continue`, items without
//! `kind`), pagination, label selectors and namespaces, and a 403 on one
//! resource. The objects hold a Secret of every type the Kubernetes decoder
//! reads (Opaque, dockerconfigjson, basic-auth, ssh-auth, tls,
//! service-account-token, a Helm release), ConfigMaps and the pod templates
//! of every workload kind, with fake secrets in their literal fields.

#[path = "support/image.rs"]
mod fixture;
#[path = "support/registry.rs"]
mod server;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::{Value, json};

const TOKEN: &str = "stub-api-token-for-tests";
const STRIPE: &str = concat!(
    "sk_live_51F78AEJrBbvdec9EijD8hp1cad7Lgfn7C6HDJv0hfkJ14SFSH2pWaX4vdewEM7wU",
    "CFQhIIwmNrkGFJzNfuESzUeir4Jchtwieh"
);
const GITHUB: &str = "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";
const GITHUB2: &str = "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";
const SLACK: &str = "xoxb-7255571726437-3957903447132-1rZLZ8a7syCYdzvColiggH3w";
const DB_PASSWORD: &str = "Rk7vQ2mXz9LpW4tN";

fn b64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// The stub server; killed on drop.
struct Api {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Api {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Api {
    /// Starts the stub with these lists (`/api/v1/secrets` → List) and
    /// forbidden paths.
    fn start(lists: Value, forbidden: &[&str]) -> Api {
        Api::start_stalling(lists, forbidden, &[])
    }

    /// Like `start`, with paths the server answers only after 30 s.
    fn start_stalling(lists: Value, forbidden: &[&str], stall: &[&str]) -> Api {
        Api::launch(
            json!({"lists": lists, "forbidden": forbidden, "stall": stall}),
            |_| {},
        )
    }

    /// Starts the stub with `state` (the token added), after `prepare` has
    /// run in its directory (where the CA and server certificate are).
    fn launch(mut state: Value, prepare: impl FnOnce(&Path)) -> Api {
        let dir = tempfile::tempdir().unwrap();
        server::make_certs(dir.path());
        prepare(dir.path());
        state["token"] = TOKEN.into();
        std::fs::write(dir.path().join("state.json"), state.to_string()).unwrap();
        let port = server::free_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/kube_api.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .arg(dir.path())
            .arg(dir.path().join("state.json"))
            .arg(dir.path().join("requests.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the stub API server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the stub API server did not start");
        Api { child, port, dir }
    }

    fn server(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A kubeconfig for the stub: context `stub` (namespace `shop`) with
    /// `token`, and a second context `other` with no namespace.
    fn kubeconfig(&self, token: &str) -> PathBuf {
        let which = if token == TOKEN { "right" } else { "wrong" };
        let path = self.dir.path().join(format!("kubeconfig-{which}-token"));
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: stub\nclusters:\n- name: stub\n  \
                 cluster:\n    server: {}\n    certificate-authority: ca.pem\nusers:\n- name: auditor\n  \
                 user:\n    token: {token}\ncontexts:\n- name: stub\n  context:\n    cluster: stub\n    \
                 user: auditor\n    namespace: shop\n- name: other\n  context:\n    cluster: stub\n    \
                 user: auditor\n",
                self.server()
            ),
        )
        .unwrap();
        path
    }

    /// Requests the server saw: (path, query).
    fn requests(&self) -> Vec<(String, Value)> {
        std::fs::read_to_string(self.dir.path().join("requests.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                (v["path"].as_str().unwrap().to_string(), v["query"].clone())
            })
            .collect()
    }
}

fn leakhound(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let home = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_leakhound"))
        .args(args)
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .env("HOME", home.path())
        .envs(envs.iter().copied())
        .current_dir(home.path())
        .output()
        .unwrap()
}

fn meta(name: &str, ns: &str) -> Value {
    json!({
        "name": name,
        "namespace": ns,
        "uid": format!("3f1c2d4e-{:04x}-4b5a-9c8d-{:012x}", name.len(), name.len() * 7919),
        "resourceVersion": "48100",
        "creationTimestamp": "2025-11-03T09:14:27Z",
        "managedFields": [{"manager": "kubectl-client-side-apply", "operation": "Update",
                           "apiVersion": "v1", "time": "2025-11-03T09:14:27Z",
                           "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {}}}],
    })
}

/// A typed Secret from the fixtures of the file scanner (`data` keys of
/// fixtures/kubernetes/typed/NAME.yaml), as the API lists it.
fn fixture_secret(file: &str) -> Value {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/kubernetes/typed")
            .join(file),
    )
    .unwrap();
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(&format!("{k}: ")))
            .unwrap()
            .trim()
            .to_string()
    };
    let mut data = serde_json::Map::new();
    let mut in_data = false;
    for l in text.lines() {
        if l == "data:" {
            in_data = true;
        } else if in_data && l.starts_with("  ") {
            let (k, v) = l.trim().split_once(": ").unwrap();
            data.insert(k.to_string(), v.trim_matches('"').into());
        } else {
            in_data = false;
        }
    }
    json!({
        "metadata": meta(&field("name"), "shop"),
        "type": field("type"),
        "data": data,
    })
}

/// A Helm 3 release Secret as `helm install` stores it.
fn helm_secret() -> Value {
    let release = json!({
        "name": "billing",
        "namespace": "shop",
        "version": 3,
        "info": {"status": "deployed"},
        "chart": {"metadata": {"name": "billing", "version": "1.4.2"},
                  "values": {"stripe": {"apiKey": ""}}},
        "config": {"stripe": {"apiKey": STRIPE}},
        "manifest": "",
    });
    let stored = b64(&gzip(release.to_string().as_bytes()));
    let mut m = meta("sh.helm.release.v1.billing.v3", "shop");
    m["labels"] = json!({"owner": "helm", "name": "billing", "status": "deployed", "version": "3"});
    json!({"metadata": m, "type": "helm.sh/release.v1", "data": {"release": b64(stored.as_bytes())}})
}

fn container(name: &str, env: &[(&str, &str)], args: &[&str]) -> Value {
    let env: Vec<Value> = env
        .iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .chain([json!({"name": "FROM_SECRET",
                       "valueFrom": {"secretKeyRef": {"name": "db-credentials", "key": "db-password"}}})])
        .collect();
    json!({"name": name, "image": "registry.acme-corp.io/shop/api:1.4.2", "env": env, "args": args})
}

fn workload(name: &str, ns: &str, labels: Value, spec: Value) -> Value {
    let mut m = meta(name, ns);
    m["labels"] = labels;
    json!({"metadata": m, "spec": spec})
}

fn template(containers: Vec<Value>) -> Value {
    json!({"metadata": {"labels": {"app": "x"}}, "spec": {"containers": containers}})
}

fn list(kind: &str, api_version: &str, items: Vec<Value>) -> Value {
    json!({"kind": kind, "apiVersion": api_version, "items": items})
}

/// The cluster of the tests: namespaces `shop` and `ops`.
fn cluster_lists() -> Value {
    let mut opaque = json!({
        "metadata": meta("db-credentials", "shop"),
        "type": "Opaque",
        "data": {"db-password": b64(DB_PASSWORD.as_bytes()), "stripe-api-key": b64(STRIPE.as_bytes()),
                 "db-user": b64(b"app")},
    });
    opaque["metadata"]["labels"] = json!({"app": "api"});
    let docker = json!({
        "metadata": meta("registry-pull", "shop"),
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": b64(br#"{"auths": {"registry.acme-corp.io": {"auth": "Y2ktYm90OlpwNC1LcTh2UnQyTG05eFc="}}}"#)},
    });
    let secrets = vec![
        opaque,
        docker,
        fixture_secret("basic-auth.yaml"),
        fixture_secret("ssh-auth.yaml"),
        fixture_secret("tls.yaml"),
        fixture_secret("service-account-token.yaml"),
        helm_secret(),
    ];
    let config_maps = vec![
        json!({"metadata": meta("api-config", "shop"),
               "data": {"GITHUB_TOKEN": GITHUB2, "LOG_LEVEL": "debug"}}),
        json!({"metadata": meta("harmless", "ops"), "data": {"retries": "3", "region": "eu-west-1"}}),
    ];
    let api_labels = json!({"app": "api"});
    let deployment = workload(
        "api",
        "shop",
        api_labels.clone(),
        json!({"replicas": 2, "selector": {"matchLabels": api_labels},
               "template": template(vec![container("app", &[("DB_PASSWORD", DB_PASSWORD), ("LOG_LEVEL", "info")],
                                                  &["--github-token", GITHUB])])}),
    );
    let owned = |name: &str| {
        let mut m = meta(name, "shop");
        m["labels"] = json!({"app": "api"});
        m["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                      "name": "api-7d9f8c", "uid": "9a8b", "controller": true,
                                      "blockOwnerDeletion": true}]);
        json!({"metadata": m, "spec": {"containers": [
            container("app", &[("DB_PASSWORD", DB_PASSWORD), ("LOG_LEVEL", "info")], &["--github-token", GITHUB])]},
               "status": {"phase": "Running"}})
    };
    let pods = vec![
        owned("api-7d9f8c-x2kqp"),
        owned("api-7d9f8c-b7wzn"),
        json!({"metadata": meta("debug-shell", "ops"),
               "spec": {"containers": [{"name": "sh", "image": "alpine:3.20",
                   "command": ["sh", "-c", format!("curl -H 'Authorization: token {GITHUB2}' https://api.github.com/user")]}]}}),
    ];
    let statefulset = workload(
        "ledger",
        "shop",
        json!({"app": "ledger"}),
        json!({"serviceName": "ledger", "selector": {"matchLabels": {"app": "ledger"}},
               "template": template(vec![container("db", &[("SLACK_TOKEN", SLACK)], &[])])}),
    );
    let daemonset = workload(
        "node-agent",
        "ops",
        json!({"app": "node-agent"}),
        json!({"selector": {"matchLabels": {"app": "node-agent"}},
               "template": template(vec![container("agent", &[("AGENT_TOKEN", GITHUB2)], &[])])}),
    );
    let job = workload(
        "migrate",
        "shop",
        json!({"app": "migrate"}),
        json!({"template": {"spec": {"restartPolicy": "Never",
            "initContainers": [container("wait", &[], &[])],
            "containers": [container("migrate", &[("STRIPE_KEY", STRIPE)], &[])]}}}),
    );
    let cronjob = workload(
        "backup",
        "ops",
        json!({"app": "backup"}),
        json!({"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "OnFailure",
            "containers": [{"name": "backup", "image": "alpine:3.20",
                "command": ["sh", "-c", format!("curl -X POST -H 'Authorization: Bearer {SLACK}' https://slack.com/api/chat.postMessage")]}]}}}}}),
    );
    json!({
        "/api/v1/secrets": list("SecretList", "v1", secrets),
        "/api/v1/configmaps": list("ConfigMapList", "v1", config_maps),
        "/api/v1/pods": list("PodList", "v1", pods),
        "/apis/apps/v1/deployments": list("DeploymentList", "apps/v1", vec![deployment]),
        "/apis/apps/v1/statefulsets": list("StatefulSetList", "apps/v1", vec![statefulset]),
        "/apis/apps/v1/daemonsets": list("DaemonSetList", "apps/v1", vec![daemonset]),
        "/apis/batch/v1/jobs": list("JobList", "batch/v1", vec![job]),
        "/apis/batch/v1/cronjobs": list("CronJobList", "batch/v1", vec![cronjob]),
    })
}

fn findings(out: &Output) -> Vec<Value> {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn assert_no_raw_secret(out: &Output) {
    let all = [&out.stdout[..], &out.stderr[..]].concat();
    let text = String::from_utf8_lossy(&all);
    for s in [
        STRIPE,
        GITHUB,
        GITHUB2,
        SLACK,
        DB_PASSWORD,
        "Vb8-Qw3zLk5Rt7pX",
        "Zp4-Kq8vRt2Lm9xW",
    ] {
        assert!(!text.contains(s), "a raw secret was printed: {text}");
    }
}

#[test]
fn every_kind_is_audited_page_by_page_and_a_forbidden_list_is_named_with_exit_2() {
    let api = Api::start(cluster_lists(), &["/apis/apps/v1/daemonsets"]);
    let kubeconfig = api.kubeconfig(TOKEN);
    let summary = api.dir.path().join("summary.json");
    let out = leakhound(
        &[
            "--format",
            "json",
            "--summary",
            summary.to_str().unwrap(),
            "cluster",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--all-namespaces",
            "--page-size",
            "2",
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("daemonsets in all namespaces") && stderr.contains("403"),
        "{stderr}"
    );
    assert!(stderr.contains("daemonsets.apps is forbidden"), "{stderr}");
    assert!(stderr.contains("name them with -n"), "{stderr}");
    assert!(stderr.contains("scanned 16 objects"), "{stderr}");
    assert_no_raw_secret(&out);
    let found = findings(&out);
    let got: BTreeSet<(String, String)> = found
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["rule_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let m = "kubernetes-secret-manifest";
    let expected = [
        // Every Secret type the Kubernetes decoder reads, decoded as in files.
        (
            "Secret/db-credentials:data[db-password]",
            "generic-secret-assignment-quoted",
        ),
        ("Secret/db-credentials:data[db-password]", m),
        (
            "Secret/db-credentials:data[stripe-api-key]",
            "stripe-live-secret-key",
        ),
        (
            "Secret/registry-pull:data[.dockerconfigjson]",
            "registry-docker-config-auth",
        ),
        (
            "Secret/registry-pull:data[.dockerconfigjson].auths.registry.acme-corp.io.auth",
            "generic-secret-assignment-quoted",
        ),
        (
            "Secret/grafana-admin:data[password]",
            "generic-secret-assignment-quoted",
        ),
        (
            "Secret/git-deploy-key:data[ssh-privatekey]",
            "private-key-openssh",
        ),
        ("Secret/ingress-tls:data[tls.key]", "private-key-pkcs8"),
        ("Secret/ci-deployer-token:data[token]", "jwt-token"),
        (
            "Secret/sh.helm.release.v1.billing.v3:data[release].values.stripe.apiKey",
            "stripe-live-secret-key",
        ),
        // ConfigMap values that are secrets.
        (
            "ConfigMap/api-config:data[GITHUB_TOKEN]",
            "github-classic-pat",
        ),
        // Pod templates of every workload kind.
        (
            "Deployment/api:containers[app].env[DB_PASSWORD]",
            "generic-secret-assignment-quoted",
        ),
        ("Deployment/api:containers[app].args", "github-classic-pat"),
        (
            "StatefulSet/ledger:containers[db].env[SLACK_TOKEN]",
            "slack-bot-token",
        ),
        (
            "Job/migrate:containers[migrate].env[STRIPE_KEY]",
            "stripe-live-secret-key",
        ),
        (
            "CronJob/backup:containers[backup].command",
            "slack-bot-token",
        ),
        (
            "Pod/debug-shell:containers[sh].command",
            "github-classic-pat",
        ),
    ];
    for (path, rule) in expected {
        assert!(
            got.contains(&(path.to_string(), rule.to_string())),
            "missing {path} {rule}; got {got:#?}"
        );
    }
    // The forbidden DaemonSet was not read; the Deployment's pods repeat
    // its template and are not reported again; no harmless value is.
    for (path, rule) in &got {
        assert!(!path.starts_with("DaemonSet/"), "{path}");
        assert!(!path.starts_with("Pod/api-"), "{path} {rule}");
        assert!(
            !path.contains("LOG_LEVEL") && !path.contains("harmless"),
            "{path}"
        );
        assert!(
            !path.contains("db-user") && !path.contains("FROM_SECRET"),
            "{path}"
        );
    }
    let dep = found
        .iter()
        .find(|f| f["path"] == "Deployment/api:containers[app].env[DB_PASSWORD]")
        .unwrap();
    assert_eq!(
        dep["kubernetes"],
        json!({"kind": "Deployment", "namespace": "shop", "name": "api", "key": null,
               "type": null, "container": "app", "env": "DB_PASSWORD"})
    );
    let cm = found
        .iter()
        .find(|f| f["path"] == "ConfigMap/api-config:data[GITHUB_TOKEN]")
        .unwrap();
    assert_eq!(cm["kubernetes"]["key"], "GITHUB_TOKEN");
    assert_eq!(cm["kubernetes"]["namespace"], "shop");
    let helm = found
        .iter()
        .find(|f| f["rule_id"] == "stripe-live-secret-key" && f["kubernetes"]["key"] == "release")
        .unwrap();
    assert_eq!(helm["kubernetes"]["type"], "helm.sh/release.v1");
    assert_eq!(helm["kubernetes"]["path"], "values.stripe.apiKey");
    assert_eq!(helm["decoded"], json!(["base64", "base64", "gzip"]));

    // Secrets (7) came in pages of 2, each asked for with the last
    // page's continue token.
    let reqs = api.requests();
    let secret_pages: Vec<&Value> = reqs
        .iter()
        .filter(|(p, _)| p == "/api/v1/secrets")
        .map(|(_, q)| q)
        .collect();
    assert_eq!(secret_pages.len(), 4, "{reqs:#?}");
    assert!(secret_pages.iter().all(|q| q["limit"] == "2"));
    assert!(secret_pages[0].get("continue").is_none());
    assert!(secret_pages[1..].iter().all(|q| q["continue"].is_string()));

    let s: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(s["command"], "cluster");
    assert_eq!(s["complete"], false);
    assert_eq!(s["exit_code"], 2);
    // 7 Secrets, 2 ConfigMaps, 3 Pods and 4 workloads (the DaemonSet not).
    assert_eq!(s["scanned"]["objects"], 16, "{s}");
    assert!(
        s["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["path"] == "daemonsets in all namespaces"),
        "{s}"
    );
}

#[test]
fn a_wrong_token_is_a_clear_error_and_nothing_else() {
    let api = Api::start(cluster_lists(), &[]);
    let kubeconfig = api.kubeconfig("not-the-token");
    let out = leakhound(
        &[
            "--format",
            "json",
            "cluster",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "-A",
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&api.server())
            && stderr.contains("rejected the credentials")
            && stderr.contains("401"),
        "{stderr}"
    );
    assert!(!stderr.contains("not-the-token"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // One request, then the run stopped.
    assert_eq!(api.requests().len(), 1);
}

#[test]
fn untrusted_server_certificate_is_refused() {
    let api = Api::start(cluster_lists(), &[]);
    let kubeconfig = api.dir.path().join("no-ca");
    let text = std::fs::read_to_string(api.kubeconfig(TOKEN))
        .unwrap()
        .replace("    certificate-authority: ca.pem\n", "");
    std::fs::write(&kubeconfig, text).unwrap();
    let out = leakhound(
        &["cluster", "--kubeconfig", kubeconfig.to_str().unwrap()],
        &[("SSL_CERT_FILE", "/nonexistent")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot connect to https://127.0.0.1"),
        "{stderr}"
    );
}

#[test]
fn namespace_selector_and_kinds_narrow_the_requests() {
    let api = Api::start(cluster_lists(), &[]);
    let kubeconfig = api.kubeconfig(TOKEN);
    // The context's namespace (shop) by default.
    let out = leakhound(
        &[
            "--format",
            "json",
            "cluster",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "-l",
            "app=api",
            "--kinds",
            "secrets,deployments,pods",
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let paths: BTreeSet<String> = findings(&out)
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect();
    assert!(
        paths.contains("Secret/db-credentials:data[stripe-api-key]"),
        "{paths:?}"
    );
    assert!(
        paths.contains("Deployment/api:containers[app].args"),
        "{paths:?}"
    );
    assert!(
        paths
            .iter()
            .all(|p| p.starts_with("Secret/db-credentials") || p.starts_with("Deployment/api:")),
        "{paths:?}"
    );
    let reqs = api.requests();
    let asked: BTreeSet<&str> = reqs.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        asked,
        BTreeSet::from([
            "/api/v1/namespaces/shop/secrets",
            "/apis/apps/v1/namespaces/shop/deployments",
            "/api/v1/namespaces/shop/pods",
        ])
    );
    assert!(
        reqs.iter()
            .all(|(_, q)| q["labelSelector"] == "app=api" && q["limit"] == "100")
    );

    // Another context, namespaces named on the command line.
    let out = leakhound(
        &[
            "--format",
            "json",
            "cluster",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--context",
            "other",
            "-n",
            "ops",
            "--kinds",
            "cronjobs,pods,configmaps",
        ],
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let paths: BTreeSet<String> = findings(&out)
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        paths,
        BTreeSet::from([
            "CronJob/backup:containers[backup].command".to_string(),
            "Pod/debug-shell:containers[sh].command".to_string(),
        ])
    );
}

#[test]
fn in_cluster_service_account_and_exec_plugins_authenticate() {
    let api = Api::start(cluster_lists(), &[]);
    // In a pod: no kubeconfig, the service host and the mounted account.
    let sa = tempfile::tempdir().unwrap();
    std::fs::write(sa.path().join("token"), format!("{TOKEN}\n")).unwrap();
    std::fs::copy(api.ca(), sa.path().join("ca.crt")).unwrap();
    std::fs::write(sa.path().join("namespace"), "ops").unwrap();
    let port = api.port.to_string();
    let out = leakhound(
        &["--format", "jsonl", "cluster", "--kinds", "pods"],
        &[
            ("KUBERNETES_SERVICE_HOST", "127.0.0.1"),
            ("KUBERNETES_SERVICE_PORT", &port),
            ("LEAKHOUND_SERVICE_ACCOUNT_DIR", sa.path().to_str().unwrap()),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!lines.is_empty());
    assert!(
        lines
            .iter()
            .all(|l| l["path"] == "Pod/debug-shell:containers[sh].command"),
        "{lines:#?}"
    );
    assert_eq!(api.requests()[0].0, "/api/v1/namespaces/ops/pods");

    // An exec credential plugin prints the token.
    let kubeconfig = api.dir.path().join("exec-kubeconfig");
    let cred = json!({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                      "status": {"token": TOKEN, "expirationTimestamp": "2099-01-01T00:00:00Z"}});
    let text = std::fs::read_to_string(api.kubeconfig(TOKEN)).unwrap().replace(
        &format!("    token: {TOKEN}\n"),
        &format!(
            "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: sh\n      \
             args: [-c, 'test \"$STUB_REGION\" = eu && printf %s \"$0\"', '{cred}']\n      env:\n      \
             - name: STUB_REGION\n        value: eu\n      interactiveMode: Never\n"
        ),
    );
    std::fs::write(&kubeconfig, text).unwrap();
    let out = leakhound(
        &[
            "--format",
            "json",
            "cluster",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--kinds",
            "secrets",
        ],
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!findings(&out).is_empty());
}

#[test]
fn text_jsonl_and_sarif_reports_name_the_object() {
    let api = Api::start(cluster_lists(), &[]);
    let kubeconfig = api.kubeconfig(TOKEN);
    let k = kubeconfig.to_str().unwrap();
    let base = ["cluster", "--kubeconfig", k, "--kinds", "deployments"];
    let text = leakhound(&[&["--format", "text"][..], &base].concat(), &[]);
    assert_eq!(text.status.code(), Some(1));
    let t = String::from_utf8_lossy(&text.stdout);
    assert!(
        t.contains("Deployment/api:containers[app].env[DB_PASSWORD]:1:"),
        "{t}"
    );
    assert!(
        t.contains("kubernetes: Deployment shop/api container app env DB_PASSWORD"),
        "{t}"
    );
    assert_no_raw_secret(&text);

    let jsonl = leakhound(&[&["--format", "jsonl"][..], &base].concat(), &[]);
    assert_eq!(jsonl.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&jsonl.stdout).lines().count(), 2);

    let sarif = leakhound(&[&["--format", "sarif"][..], &base].concat(), &[]);
    assert_eq!(sarif.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&sarif.stdout).unwrap();
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sarif-schema-2.1.0.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let v = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = v.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let uris: Vec<&str> = doc["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert!(
        uris.iter().any(|u| u.starts_with("Deployment/api")),
        "{uris:?}"
    );
}

#[test]
fn a_stalled_or_oversized_answer_is_named_and_the_rest_is_audited() {
    let api = Api::start_stalling(
        cluster_lists(),
        &[],
        &["/apis/batch/v1/namespaces/shop/jobs"],
    );
    let kubeconfig = api.kubeconfig(TOKEN);
    let k = kubeconfig.to_str().unwrap();
    let out = leakhound(
        &[
            "--format",
            "json",
            "--timeout",
            "5",
            "cluster",
            "--kubeconfig",
            k,
            "--kinds",
            "jobs,deployments",
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("jobs in namespace shop: not listed: no whole answer within"),
        "{stderr}"
    );
    let paths: Vec<String> = findings(&out)
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect();
    assert!(
        !paths.is_empty() && paths.iter().all(|p| p.starts_with("Deployment/api:")),
        "{paths:?}"
    );

    // A page larger than --max-response-size is refused, not read on.
    let out = leakhound(
        &[
            "--format",
            "json",
            "cluster",
            "--kubeconfig",
            k,
            "--kinds",
            "deployments,secrets",
            "--max-response-size",
            "3KiB",
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "secrets in namespace shop: not listed: the answer is larger than 3072 bytes"
        ),
        "{stderr}"
    );
    assert!(
        !stderr.contains("deployments in namespace shop"),
        "{stderr}"
    );
    let paths: Vec<String> = findings(&out)
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect();
    assert!(
        !paths.is_empty() && paths.iter().all(|p| p.starts_with("Deployment/api:")),
        "{paths:?}"
    );
}

#[test]
fn a_client_certificate_from_kubeconfig_data_authenticates() {
    // A client key as kubeadm writes it (PKCS#1 RSA), signed by the CA the
    // server trusts for clients; no token.
    let api = Api::launch(
        json!({"lists": cluster_lists(), "client_ca": "ca.pem"}),
        |d| {
            let p = |f: &str| d.join(f).display().to_string();
            server::run(Command::new("openssl").args([
                "genrsa",
                "-traditional",
                "-out",
                &p("client.key"),
                "2048",
            ]));
            server::run(Command::new("openssl").args([
                "req",
                "-new",
                "-key",
                &p("client.key"),
                "-subj",
                "/O=system:masters/CN=auditor",
                "-out",
                &p("client.csr"),
            ]));
            std::fs::write(d.join("client.cnf"), "extendedKeyUsage=clientAuth\n").unwrap();
            server::run(Command::new("openssl").args([
                "x509",
                "-req",
                "-days",
                "2",
                "-in",
                &p("client.csr"),
                "-CA",
                &p("ca.pem"),
                "-CAkey",
                &p("ca.key"),
                "-CAcreateserial",
                "-extfile",
                &p("client.cnf"),
                "-out",
                &p("client.pem"),
            ]));
        },
    );
    let d = api.dir.path();
    let data = |f: &str| b64(&std::fs::read(d.join(f)).unwrap());
    assert!(
        std::fs::read_to_string(d.join("client.key"))
            .unwrap()
            .contains("BEGIN RSA PRIVATE KEY")
    );
    let kubeconfig = d.join("cert-kubeconfig");
    let text = std::fs::read_to_string(api.kubeconfig(TOKEN))
        .unwrap()
        .replace(
            &format!("    token: {TOKEN}\n"),
            &format!(
                "    client-certificate-data: {}\n    client-key-data: {}\n",
                data("client.pem"),
                data("client.key")
            ),
        );
    std::fs::write(&kubeconfig, text).unwrap();
    let out = leakhound(
        &[
            "--format",
            "json",
            "cluster",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--kinds",
            "deployments",
        ],
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        findings(&out)
            .iter()
            .any(|f| f["path"] == "Deployment/api:containers[app].args")
    );

    // Without the certificate the same server says 401.
    let out = leakhound(
        &[
            "cluster",
            "--kubeconfig",
            api.kubeconfig("none").to_str().unwrap(),
            "--kinds",
            "deployments",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
}
