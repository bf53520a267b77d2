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

/// The claim mounted at `path` in container `c` of the pod spec.
fn claim_at<'a>(pod: &'a Yaml, c: &Yaml, path: &str) -> &'a str {
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

/// A container's hardening, and its `JOB_UID` taken from the Job's uid.
fn check_container(c: &Yaml) {
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(sc["allowPrivilegeEscalation"].as_bool(), Some(false));
    assert_eq!(strs(&sc["capabilities"]["drop"]), ["ALL"]);
    let uid = c["env"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|e| e["name"].as_str() == Some("JOB_UID"))
        .expect("JOB_UID in the environment");
    assert_eq!(
        uid["valueFrom"]["fieldRef"]["fieldPath"].as_str(),
        Some("metadata.labels['batch.kubernetes.io/controller-uid']")
    );
}

/// Checks a Job spec (of the Job or the CronJob's template); returns the
/// plan init container's and the sweep container's arguments.
fn check_job(spec: &Yaml, docs: &[Yaml]) -> (Vec<String>, Vec<String>) {
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
    // The plan: made (or kept) by the init container, for as many shards,
    // where the sweep reads it, on the shared cache volume.
    let init = &pod["initContainers"][0];
    let plan_args: Vec<String> = strs(&init["args"]).iter().map(|s| s.to_string()).collect();
    assert!(
        plan_args.contains(&format!("--plan-shards={completions}")),
        "completions {completions} and --plan-shards differ: {plan_args:?}"
    );
    assert!(
        plan_args.iter().any(|a| a == "--keep-existing-plan"),
        "{plan_args:?}"
    );
    let plan_out = plan_args
        .iter()
        .find_map(|a| a.strip_prefix("--plan-out="))
        .expect("--plan-out");
    assert!(
        plan_out.starts_with("/cache/") && plan_out.contains("$(JOB_UID)"),
        "{plan_out}"
    );
    assert!(args.contains(&format!("--plan={plan_out}")), "{args:?}");
    assert_eq!(claim_at(pod, init, "/cache"), claim_at(pod, c, "/cache"));
    check_container(init);
    check_container(c);
    let claims: Vec<&str> = docs
        .iter()
        .filter(|d| d["kind"].as_str() == Some("PersistentVolumeClaim"))
        .map(|d| d["metadata"]["name"].as_str().unwrap())
        .collect();
    for path in ["/cache", "/results"] {
        let claim = claim_at(pod, c, path);
        assert!(claims.contains(&claim), "{claim} not rendered: {claims:?}");
    }
    // Shards on several nodes share the cache and the results.
    for d in docs
        .iter()
        .filter(|d| d["kind"].as_str() == Some("PersistentVolumeClaim"))
    {
        assert_eq!(strs(&d["spec"]["accessModes"]), ["ReadWriteMany"]);
    }
    assert_eq!(pod["automountServiceAccountToken"].as_bool(), Some(false));
    (plan_args, args)
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
    let (plan_args, args) = check_job(&kind(&docs, "Job")["spec"], &docs);

    let (text, cron_docs) = render("deploy/registry-sweep-cron");
    let passed = validate(&text, &[]);
    assert!(passed.iter().any(|p| p == "cronjob"), "{passed:?}");
    assert!(!cron_docs.iter().any(|d| d["kind"].as_str() == Some("Job")));
    let cron = kind(&cron_docs, "CronJob");
    assert!(cron["spec"]["schedule"].as_str().is_some());
    assert_eq!(cron["spec"]["concurrencyPolicy"].as_str(), Some("Forbid"));
    let cron_args = check_job(&cron["spec"]["jobTemplate"]["spec"], &cron_docs);
    assert_eq!((plan_args.clone(), args.clone()), cron_args);

    // The containers' arguments, with Kubernetes' $(VAR) expansion and the
    // volumes as temporary directories, sweep a real registry: the init
    // container writes the plan (and a second one keeps it), then shard 0
    // of 8 sweeps by it, writes its report and summary to the results
    // directory and fills the cache.
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
            .replace("$(JOB_UID)", "0b5e7a52-job-uid")
            .replace("/results", results.to_str().unwrap())
            .replace("/cache", cache.to_str().unwrap())
    };
    let mut plan_text = None;
    for _ in 0..2 {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_leakhound"))
            .args(plan_args.iter().map(|a| expand(a)))
            .arg("--insecure")
            .env("DOCKER_CONFIG", dir.path().join("no-docker-config"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        let text = std::fs::read(cache.join("plans/0b5e7a52-job-uid.json")).unwrap();
        assert_eq!(
            *plan_text.get_or_insert(text.clone()),
            text,
            "the plan was kept"
        );
    }
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
    assert!(
        summary["shard"]["plan"]
            .as_str()
            .is_some_and(|p| p.starts_with("sha256:")),
        "{summary}"
    );
    assert!(results.join("shard-0.jsonl").exists());
    assert!(cache.join("leakhound-cache-v1").is_dir(), "{stderr}");
}
