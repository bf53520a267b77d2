//! deploy/cluster-audit: the kustomization renders (`kubectl kustomize`),
//! every object validates against the Kubernetes schemas offline
//! (`kubernetes-validate --strict`, from PyPI; scripts/test.sh installs
//! both), the ClusterRole grants exactly get/list of the kinds
//! `leakhound cluster` reads, and the CronJob runs `cluster` with the
//! service account the role is bound to.

use std::path::Path;
use std::process::Command;

use leakhound::decode::yaml::{self, Node};
use leakhound::source::cluster::Kind;

fn render() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/cluster-audit");
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(&dir)
        .output()
        .expect("kubectl is installed (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "kubectl kustomize: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn validate(text: &str) -> std::process::Output {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("rendered.yaml");
    std::fs::write(&f, text).unwrap();
    Command::new("kubernetes-validate")
        .args(["--strict", "--quiet"])
        .arg(&f)
        .output()
        .expect("kubernetes-validate is installed (scripts/test.sh installs it from PyPI)")
}

fn strs(n: Option<&Node>) -> Vec<String> {
    n.map(Node::items)
        .unwrap_or(&[])
        .iter()
        .filter_map(|i| i.as_str().map(str::to_string))
        .collect()
}

#[test]
fn kustomization_renders_and_validates_against_the_schemas() {
    let text = render();
    let out = validate(&text);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The validator can fail: a misspelt field is refused.
    let broken = text.replacen("concurrencyPolicy:", "concurrencyPolcy:", 1);
    assert_ne!(broken, text);
    assert!(!validate(&broken).status.success());
}

#[test]
fn cluster_role_is_read_only_and_covers_every_kind_audited() {
    let text = render();
    let (docs, err) = yaml::parse(&text);
    assert!(err.is_none(), "{err:?}");
    let of = |kind: &str| {
        docs.iter()
            .find(|d| d.str_at(&["kind"]) == Some(kind))
            .unwrap_or_else(|| panic!("no {kind}"))
    };
    let role = of("ClusterRole");
    let mut granted = Vec::new();
    for rule in role.get("rules").map(Node::items).unwrap_or(&[]) {
        let mut verbs = strs(rule.get("verbs"));
        verbs.sort();
        assert_eq!(verbs, ["get", "list"], "read-only verbs only");
        for group in strs(rule.get("apiGroups")) {
            for r in strs(rule.get("resources")) {
                granted.push((group.clone(), r));
            }
        }
    }
    let mut wanted: Vec<(String, String)> = Kind::ALL
        .iter()
        .map(|k| {
            let group = k.api_version().rsplit_once('/').map_or("", |(g, _)| g);
            (group.to_string(), k.resource().to_string())
        })
        .collect();
    granted.sort();
    wanted.sort();
    assert_eq!(granted, wanted);

    let binding = of("ClusterRoleBinding");
    let sa = of("ServiceAccount");
    let sa_name = sa.str_at(&["metadata", "name"]).unwrap();
    let subject = &binding.get("subjects").unwrap().items()[0];
    assert_eq!(subject.str_at(&["name"]), Some(sa_name));
    assert_eq!(
        subject.str_at(&["namespace"]),
        sa.str_at(&["metadata", "namespace"])
    );
    assert_eq!(
        binding.str_at(&["roleRef", "name"]),
        role.str_at(&["metadata", "name"])
    );

    let cron = of("CronJob");
    let pod = cron
        .get("spec")
        .and_then(|s| s.get("jobTemplate"))
        .and_then(|s| s.get("spec"))
        .and_then(|s| s.get("template"))
        .and_then(|s| s.get("spec"))
        .unwrap();
    assert_eq!(pod.str_at(&["serviceAccountName"]), Some(sa_name));
    let c = &pod.get("containers").unwrap().items()[0];
    let args = strs(c.get("args"));
    assert!(args.contains(&"cluster".to_string()), "{args:?}");
    assert!(args.contains(&"--all-namespaces".to_string()), "{args:?}");
    // The arguments parse as the binary's command line.
    let out = Command::new(env!("CARGO_BIN_EXE_leakhound"))
        .args(&args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
