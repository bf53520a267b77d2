//! Kustomize manifests in tests: rendered with `kubectl kustomize` and
//! validated offline against the Kubernetes schemas with PyPI's
//! `kubernetes-validate --strict` (scripts/test.sh installs both).
#![allow(dead_code)]

use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

pub fn render(dir: &str) -> (String, Vec<Yaml>) {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("kubectl")
        .args(["kustomize", dir])
        .current_dir(root)
        .output()
        .expect("kubectl (the machine image ships it; scripts/test.sh installs one if not)");
    assert!(
        out.status.success(),
        "kubectl kustomize {dir}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let docs = YamlLoader::load_from_str(&text).unwrap();
    (text, docs)
}

/// `kubernetes-validate --strict` over the rendered objects; the kinds it
/// validated. Objects of kinds it has no schema for are named in `unknown`.
pub fn validate(text: &str, unknown: &[&str]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rendered.yaml");
    std::fs::write(&file, text).unwrap();
    let out = Command::new("python3")
        .args(["-m", "kubernetes_validate", "--strict"])
        .arg(&file)
        .output()
        .expect("kubernetes-validate (scripts/test.sh installs it from PyPI)");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{report}");
    let mut passed = Vec::new();
    for line in report.lines() {
        if let Some(rest) = line.split(" passed for resource ").nth(1) {
            passed.push(rest.split('/').next().unwrap().to_string());
        } else if line.contains("Couldn't find schema") {
            assert!(
                unknown.iter().any(|k| line.contains(&format!("kind {k} "))),
                "{line}"
            );
        } else {
            assert!(
                !line.contains("ERROR") && !line.contains("failed"),
                "{report}"
            );
        }
    }
    passed
}

pub fn kind<'a>(docs: &'a [Yaml], k: &str) -> &'a Yaml {
    docs.iter()
        .find(|d| d["kind"].as_str() == Some(k))
        .unwrap_or_else(|| panic!("no {k} rendered"))
}

pub fn strs(y: &Yaml) -> Vec<&str> {
    y.as_vec()
        .map(|v| v.iter().filter_map(Yaml::as_str).collect())
        .unwrap_or_default()
}
