//! deploy/: the node agent's kustomize manifests render with `kubectl
//! kustomize`, every object validates against the Kubernetes schemas
//! (PyPI `kubernetes-validate`, offline, strict), the DaemonSet is hardened
//! as the README promises, scraping is wired both ways (annotations; a
//! ServiceMonitor selecting the Service), and the agent starts with the
//! container's own arguments.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/kustomize.rs"]
mod kustomize;

use kustomize::{kind, render, strs, validate};
use yaml_rust2::Yaml;

/// Every label of `subset` is in `labels`.
fn selects(subset: &Yaml, labels: &Yaml) -> bool {
    let (Some(sub), Some(all)) = (subset.as_hash(), labels.as_hash()) else {
        return false;
    };
    !sub.is_empty() && sub.iter().all(|(k, v)| all.get(k) == Some(v))
}

fn check_daemonset(ds: &Yaml) -> (i64, Vec<String>) {
    let pod = &ds["spec"]["template"]["spec"];
    assert!(selects(
        &ds["spec"]["selector"]["matchLabels"],
        &ds["spec"]["template"]["metadata"]["labels"]
    ));
    assert_eq!(pod["automountServiceAccountToken"].as_bool(), Some(false));
    let tolerations = pod["tolerations"].as_vec().unwrap();
    assert!(
        tolerations
            .iter()
            .any(|t| t["operator"].as_str() == Some("Exists") && t["key"].is_badvalue()),
        "tolerates every taint"
    );
    let c = &pod["containers"][0];
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(sc["allowPrivilegeEscalation"].as_bool(), Some(false));
    assert_eq!(sc["privileged"].as_bool(), Some(false));
    assert_eq!(strs(&sc["capabilities"]["drop"]), ["ALL"]);
    assert!(sc["capabilities"]["add"].is_badvalue());
    for k in ["requests", "limits"] {
        for r in ["cpu", "memory"] {
            assert!(c["resources"][k][r].as_str().is_some(), "{k}.{r}");
        }
    }
    // Volumes: the pods directory read-only, the state directory.
    let mounts = c["volumeMounts"].as_vec().unwrap();
    let mount = |path: &str| {
        mounts
            .iter()
            .find(|m| m["mountPath"].as_str() == Some(path))
            .unwrap_or_else(|| panic!("{path} mounted"))
    };
    assert_eq!(mount("/var/log/pods")["readOnly"].as_bool(), Some(true));
    let state_volume = mount("/var/lib/leakhound")["name"].as_str().unwrap();
    let volumes = pod["volumes"].as_vec().unwrap();
    let host = |name: &str| {
        volumes
            .iter()
            .find(|v| v["name"].as_str() == Some(name))
            .map(|v| v["hostPath"]["path"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(
        host(mount("/var/log/pods")["name"].as_str().unwrap()),
        "/var/log/pods"
    );
    assert_eq!(host(state_volume), "/var/lib/leakhound");
    let args: Vec<String> = strs(&c["args"]).iter().map(|s| s.to_string()).collect();
    assert!(args.contains(&"--pods-dir=/var/log/pods".to_string()));
    assert!(
        args.iter()
            .any(|a| a.starts_with("--state=/var/lib/leakhound/"))
    );
    assert!(args.contains(&"--format=jsonl".to_string()));
    let port = c["ports"][0]["containerPort"].as_i64().unwrap();
    assert_eq!(c["ports"][0]["name"].as_str(), Some("metrics"));
    assert!(args.contains(&format!("--metrics-addr=0.0.0.0:{port}")));
    assert_eq!(
        c["livenessProbe"]["httpGet"]["path"].as_str(),
        Some("/healthz")
    );
    (port, args)
}

/// The binary accepts the container's arguments: it starts, serves
/// `/healthz`, and stops on SIGTERM.
fn agent_starts_with(args: &[String]) {
    let dir = tempfile::tempdir().unwrap();
    let pods = dir.path().join("pods");
    std::fs::create_dir(&pods).unwrap();
    let args: Vec<String> = args
        .iter()
        .map(|a| {
            a.replace("/var/log/pods", pods.to_str().unwrap())
                .replace("/var/lib/leakhound", dir.path().to_str().unwrap())
                .replace("0.0.0.0:9153", "127.0.0.1:0")
                .replace("$(POD_NAMESPACE)/$(POD_NAME)", "leakhound/agent-x")
        })
        .collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_leakhound"))
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(
        first.starts_with("leakhound: metrics on http://"),
        "{first}"
    );
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let end = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < end, "no exit on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
    assert!(Path::new(&dir.path().join("state.json")).exists());
}

#[test]
fn node_agent_with_scrape_annotations() {
    let (text, docs) = render("deploy/node-agent");
    let mut passed = validate(&text, &[]);
    passed.sort();
    assert_eq!(passed, ["daemonset", "namespace", "serviceaccount"]);
    let ds = kind(&docs, "DaemonSet");
    let (port, args) = check_daemonset(ds);
    let ann = &ds["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(ann["prometheus.io/scrape"].as_str(), Some("true"));
    assert_eq!(
        ann["prometheus.io/port"].as_str(),
        Some(port.to_string().as_str())
    );
    assert_eq!(ann["prometheus.io/path"].as_str(), Some("/metrics"));
    let image = ds["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap();
    assert!(image.contains("leakhound"), "{image}");
    agent_starts_with(&args);
}

#[test]
fn node_agent_with_a_service_monitor() {
    let (text, docs) = render("deploy/node-agent-servicemonitor");
    let mut passed = validate(&text, &["ServiceMonitor"]);
    passed.sort();
    assert_eq!(
        passed,
        ["daemonset", "namespace", "service", "serviceaccount"]
    );
    let ds = kind(&docs, "DaemonSet");
    let (port, _) = check_daemonset(ds);
    assert!(
        ds["spec"]["template"]["metadata"]["annotations"]["prometheus.io/scrape"].is_badvalue(),
        "not scraped twice"
    );
    // ServiceMonitor → Service (labels, port name) → the agent's pods.
    let svc = kind(&docs, "Service");
    let sm = kind(&docs, "ServiceMonitor");
    assert_eq!(sm["apiVersion"].as_str(), Some("monitoring.coreos.com/v1"));
    assert!(selects(
        &sm["spec"]["selector"]["matchLabels"],
        &svc["metadata"]["labels"]
    ));
    assert_eq!(
        strs(&sm["spec"]["namespaceSelector"]["matchNames"]),
        [svc["metadata"]["namespace"].as_str().unwrap()]
    );
    let sp = &svc["spec"]["ports"][0];
    assert_eq!(
        sm["spec"]["endpoints"][0]["port"].as_str(),
        sp["name"].as_str()
    );
    assert_eq!(
        sm["spec"]["endpoints"][0]["path"].as_str(),
        Some("/metrics")
    );
    assert_eq!(sp["targetPort"].as_str(), Some("metrics"));
    assert_eq!(sp["port"].as_i64(), Some(port));
    assert!(selects(
        &svc["spec"]["selector"],
        &ds["spec"]["template"]["metadata"]["labels"]
    ));
}
