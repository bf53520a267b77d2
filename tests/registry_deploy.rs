//! deploy/registry-sweep (an Indexed Job) and deploy/registry-sweep-cron
//! (the same Job nightly): both render with `kubectl kustomize`, every
//! object validates against the Kubernetes schemas offline
//! (`kubernetes-validate --strict`), the Job runs one shard per completion
//! with the results and the cache on PersistentVolumeClaims, and the
//! container's own arguments run a sharded, cached sweep of a real
//! registry.

#[path = "support/image.rs"]
mod fixture;
#[path = "support/kustomize.rs"]
mod kustomize;
#[path = "support/registry.rs"]
mod server;

use kustomize::{kind, render, strs, validate};
use yaml_rust2::Yaml;

/// The pod spec's claim mounted at `path`.
fn claim_at<'a>(pod: &'a Yaml, path: &str) -> &'a str {
    let c = &pod["containers"][0];
    let mount = c["volumeMounts"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"].as_str() == Some(path))
        .unwrap_or_else(|| panic!("{path} mounted"));
    assert!(mount["readOnly"].as_bool() != Some(true), "{path} writable");
    let volume = pod["volumes"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap();
    volume["persistentVolumeClaim"]["claimName"]
        .as_str()
        .unwrap_or_else(|| panic!("{path} is not on a claim"))
}

/// Checks a Job spec (of the Job or the CronJob's template); returns the
/// container's arguments.
fn check_job(spec: &Yaml, docs: &[Yaml]) -> Vec<String> {
    assert_eq!(spec["completionMode"].as_str(), Some("Indexed"));
    let completions = spec["completions"].as_i64().unwrap();
    assert!(spec["parallelism"].as_i64().unwrap() <= completions);
    let pod = &spec["template"]["spec"];
    let c = &pod["containers"][0];
    let args: Vec<String> = strs(&c["args"]).iter().map(|s| s.to_string()).collect();
    assert!(args.iter().any(|a| a == "--shard-from-env"), "{args:?}");
    assert!(
        args.contains(&format!("--shards={completions}")),
        "completions {completions} and --shards differ: {args:?}"
    );
    assert!(args.iter().any(|a| a == "--cache=/cache"), "{args:?}");
    let claims: Vec<&str> = docs
        .iter()
        .filter(|d| d["kind"].as_str() == Some("PersistentVolumeClaim"))
        .map(|d| d["metadata"]["name"].as_str().unwrap())
        .collect();
    for path in ["/cache", "/results"] {
        let claim = claim_at(pod, path);
        assert!(claims.contains(&claim), "{claim} not rendered: {claims:?}");
    }
    // Shards on several nodes share the cache and the results.
    for d in docs
        .iter()
        .filter(|d| d["kind"].as_str() == Some("PersistentVolumeClaim"))
    {
        assert_eq!(strs(&d["spec"]["accessModes"]), ["ReadWriteMany"]);
    }
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(sc["allowPrivilegeEscalation"].as_bool(), Some(false));
    assert_eq!(strs(&sc["capabilities"]["drop"]), ["ALL"]);
    assert_eq!(pod["automountServiceAccountToken"].as_bool(), Some(false));
    args
}

#[test]
fn registry_sweep_job_and_cronjob_render_validate_and_their_arguments_run() {
    let (text, docs) = render("deploy/registry-sweep");
    let passed = validate(&text, &[]);
    for k in [
        "namespace",
        "serviceaccount",
        "persistentvolumeclaim",
        "configmap",
        "job",
    ] {
        assert!(
            passed.iter().any(|p| p == k),
            "{k} not validated: {passed:?}"
        );
    }
    let args = check_job(&kind(&docs, "Job")["spec"], &docs);

    let (text, cron_docs) = render("deploy/registry-sweep-cron");
    let passed = validate(&text, &[]);
    assert!(passed.iter().any(|p| p == "cronjob"), "{passed:?}");
    assert!(!cron_docs.iter().any(|d| d["kind"].as_str() == Some("Job")));
    let cron = kind(&cron_docs, "CronJob");
    assert!(cron["spec"]["schedule"].as_str().is_some());
    assert_eq!(cron["spec"]["concurrencyPolicy"].as_str(), Some("Forbid"));
    let cron_args = check_job(&cron["spec"]["jobTemplate"]["spec"], &cron_docs);
    assert_eq!(args, cron_args);

    // The container's arguments, with Kubernetes' $(VAR) expansion and the
    // volumes as temporary directories, sweep a real registry: shard 0 of 8
    // writes its report and summary to the results directory and fills
    // the cache.
    let reg = server::Registry::start(server::Mode::Plain);
    let img = fixture::TestImage::leaky();
    for i in 0..8 {
        reg.push(&img, &format!("team/svc{i}"), "v1");
    }
    let dir = tempfile::tempdir().unwrap();
    let (results, cache) = (dir.path().join("results"), dir.path().join("cache"));
    std::fs::create_dir_all(&results).unwrap();
    let expand = |a: &str| {
        a.replace("$(JOB_COMPLETION_INDEX)", "0")
            .replace("$(REGISTRY)", &reg.host)
            .replace("/results", results.to_str().unwrap())
            .replace("/cache", cache.to_str().unwrap())
    };
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_leakhound"))
        .args(args.iter().map(|a| expand(a)))
        // The test registry speaks plain HTTP.
        .arg("--insecure")
        .env("JOB_COMPLETION_INDEX", "0")
        .env("DOCKER_CONFIG", dir.path().join("no-docker-config"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{stderr}");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(results.join("summary-0.json")).unwrap()).unwrap();
    assert_eq!(summary["shard"]["index"], 0, "{summary}");
    assert_eq!(summary["shard"]["count"], 8, "{summary}");
    assert_eq!(summary["complete"], true, "{summary}");
    assert!(results.join("shard-0.jsonl").exists());
    assert!(cache.join("leakhound-cache-v1").is_dir(), "{stderr}");
}
