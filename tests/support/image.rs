//! Container images built at test time: layer tars (with whiteouts)
//! gzipped by flate2, config and manifests by serde_json, digests by sha2,
//! written as an OCI layout directory, a `docker save` archive (legacy and
//! OCI flavours) or pushed to a registry. The secrets are fake and built
//! from parts, so no real-looking token sits in the source as one string.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::Output;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// A GitHub classic token, in `.env` (layer 0, deleted by layer 1).
pub fn gh_token() -> String {
    format!("ghp_{}{}", "NrcjnnG7CqYtZiX0wKPs", "1NHYNRr61b32COc2")
}
/// A GitHub token passed as a build arg (history only).
pub fn build_arg_token() -> String {
    format!("ghp_{}{}", "rh5jOXEDmTTXrUVnaajy", "Cw9RQQrtAL2OCAot")
}
/// A Slack bot token in a config file (layer 2).
pub fn slack_token() -> String {
    format!(
        "xoxb-{}-{}-{}",
        "7255571726437", "3957903447132", "1rZLZ8a7syCYdzvColiggH3w"
    )
}
/// An npm token in the config's Env.
pub fn npm_token() -> String {
    format!("npm_{}{}", "PEkKRjhnU6Bc1NGhfjtO", "G78cAQ09lE1IsrQr")
}

pub fn sha256(data: &[u8]) -> String {
    let d = Sha256::digest(data);
    format!(
        "sha256:{}",
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// A tar of regular files (a whiteout is an empty file named `.wh.NAME`).
pub fn layer_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mtime(1_700_000_000);
        // `append_data` refuses `..`; a hostile layer writes the raw name.
        let name = h.as_old_mut().name.as_mut();
        name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// An image: layer tars, their stored (gzip) form, history and env.
pub struct TestImage {
    pub tars: Vec<Vec<u8>>,
    pub stored: Vec<Vec<u8>>,
    pub config: Vec<u8>,
}

pub const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

impl TestImage {
    /// The image of the issue: layer 0 adds `app/.env` with a token, layer 1
    /// deletes it (whiteout), layer 2 adds a config with a Slack token; the
    /// config's Env holds an npm token and its history a build arg.
    pub fn leaky() -> TestImage {
        let env = format!("GITHUB_TOKEN={}\n", gh_token());
        let yaml = format!("slack:\n  bot_token: {}\n", slack_token());
        TestImage::new(
            vec![
                layer_tar(&[
                    ("app/.env", env.as_bytes()),
                    ("app/main.py", b"print('hi')\n"),
                ]),
                layer_tar(&[("app/.wh..env", b"")]),
                layer_tar(&[("etc/app/config.yaml", yaml.as_bytes())]),
            ],
            json!([
                {"created_by": "COPY .env /app/.env # buildkit"},
                {"created_by": "ARG DEPLOY_TOKEN", "empty_layer": true},
                {"created_by": format!("|1 DEPLOY_TOKEN={} /bin/sh -c rm /app/.env", build_arg_token())},
                {"created_by": "COPY config.yaml /etc/app/config.yaml # buildkit"},
            ]),
            vec![
                "PATH=/usr/local/bin:/usr/bin".into(),
                format!("NPM_TOKEN={}", npm_token()),
            ],
        )
    }

    pub fn new(tars: Vec<Vec<u8>>, history: Value, env: Vec<String>) -> TestImage {
        let stored: Vec<Vec<u8>> = tars.iter().map(|t| gzip(t)).collect();
        let diff_ids: Vec<String> = tars.iter().map(|t| sha256(t)).collect();
        let config = serde_json::to_vec(&json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": env, "Cmd": ["python", "/app/main.py"], "Labels": {"org.example.team": "core"}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        }))
        .unwrap();
        TestImage {
            tars,
            stored,
            config,
        }
    }

    pub fn layer_digests(&self) -> Vec<String> {
        self.stored.iter().map(|l| sha256(l)).collect()
    }

    pub fn manifest(&self) -> Vec<u8> {
        let layers: Vec<Value> = self
            .stored
            .iter()
            .map(|l| json!({"mediaType": LAYER_GZIP, "digest": sha256(l), "size": l.len()}))
            .collect();
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(&self.config), "size": self.config.len()},
            "layers": layers,
        }))
        .unwrap()
    }

    /// Files of an OCI layout (name → bytes), `ref.name` = `tag`.
    pub fn oci_files(&self, tag: &str) -> Vec<(String, Vec<u8>)> {
        let manifest = self.manifest();
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": sha256(&manifest), "size": manifest.len(),
                           "annotations": {"org.opencontainers.image.ref.name": tag}}],
        }))
        .unwrap();
        let mut files = vec![
            (
                "oci-layout".to_string(),
                br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
            ),
            ("index.json".to_string(), index),
        ];
        for blob in self.stored.iter().chain([&self.config, &manifest]) {
            files.push((blob_path(&sha256(blob)), blob.clone()));
        }
        files
    }

    pub fn write_oci_dir(&self, dir: &Path, tag: &str) {
        for (name, data) in self.oci_files(tag) {
            let p = dir.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, data).unwrap();
        }
    }

    /// `docker save` as docker < 25 wrote it: `manifest.json`, the config
    /// as `ID.json`, uncompressed `N/layer.tar`s named by diff id.
    pub fn write_docker_save_legacy(&self, path: &Path, repo_tag: &str) {
        let id = sha256(&self.config)[7..].to_string();
        let layers: Vec<String> = (0..self.tars.len())
            .map(|i| format!("{i:064x}/layer.tar"))
            .collect();
        let manifest = serde_json::to_vec(&json!([
            {"Config": format!("{id}.json"), "RepoTags": [repo_tag], "Layers": layers}
        ]))
        .unwrap();
        let mut files = vec![(format!("{id}.json"), self.config.clone())];
        for (name, tar) in layers.iter().zip(&self.tars) {
            files.push((name.clone(), tar.clone()));
        }
        // docker writes manifest.json last.
        files.push(("manifest.json".into(), manifest));
        write_tar(path, &files);
    }

    /// `docker save` as docker >= 25 writes it: an OCI layout plus
    /// `manifest.json`, the image named by `io.containerd.image.name`.
    pub fn write_docker_save_oci(&self, path: &Path, name: &str) {
        let mut files = self.oci_files("latest");
        let manifest = self.manifest();
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": sha256(&manifest), "size": manifest.len(),
                           "annotations": {"io.containerd.image.name": name,
                                           "org.opencontainers.image.ref.name": "latest"}}],
        }))
        .unwrap();
        files[1].1 = index;
        let layers: Vec<String> = self.stored.iter().map(|l| blob_path(&sha256(l))).collect();
        let docker = serde_json::to_vec(&json!([
            {"Config": blob_path(&sha256(&self.config)), "RepoTags": [name], "Layers": layers}
        ]))
        .unwrap();
        files.push(("manifest.json".into(), docker));
        write_tar(path, &files);
    }
}

pub fn blob_path(digest: &str) -> String {
    format!("blobs/sha256/{}", &digest[7..])
}

pub fn write_tar(path: &Path, files: &[(String, Vec<u8>)]) {
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, name, &data[..]).unwrap();
    }
    b.into_inner().unwrap().flush().unwrap();
}

/// Runs `leakhound --format json ARGS`: exit code, findings, stderr.
/// The leakhound binary with no registry credentials from the machine
/// (no docker config, no credential variables).
pub fn isolated_leakhound() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_leakhound"));
    cmd.env("HOME", "/nonexistent")
        .env_remove("DOCKER_CONFIG")
        .env_remove("LEAKHOUND_REGISTRY_USERNAME")
        .env_remove("LEAKHOUND_REGISTRY_PASSWORD");
    cmd
}

pub fn leakhound(
    args: &[&str],
    stdin: Option<&str>,
    envs: &[(&str, &str)],
) -> (Option<i32>, Vec<Value>, String) {
    use std::process::Stdio;
    let mut cmd = isolated_leakhound();
    cmd.args(["--format", "json"]).args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        let mut i = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            i.write_all(s.as_bytes()).unwrap();
        }
    }
    let out: Output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let findings = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{stderr}", String::from_utf8_lossy(&out.stdout)));
    (out.status.code(), findings, stderr)
}

/// The finding at `path` (exactly one expected).
pub fn at<'a>(findings: &'a [Value], path: &str) -> &'a Value {
    let hits: Vec<&Value> = findings.iter().filter(|f| f["path"] == path).collect();
    assert_eq!(
        hits.len(),
        1,
        "one finding at {path} expected in {findings:#?}"
    );
    hits[0]
}

/// Checks the findings of `TestImage::leaky` as scanned from anywhere:
/// `layer_digests` as the source names them, `reference` the image name.
pub fn assert_leaky_findings(findings: &[Value], reference: &str, layer_digests: &[String]) {
    let env = at(findings, "app/.env");
    assert_eq!(env["rule_id"], "github-classic-pat", "{env:#}");
    let img = &env["image"];
    assert_eq!(img["reference"], reference);
    assert_eq!(img["layer_index"], 0);
    assert_eq!(img["layer_digest"], layer_digests[0].as_str());
    assert_eq!(img["created_by"], "COPY .env /app/.env # buildkit");
    assert_eq!(
        img["removed_in_layer"], 1,
        "the whiteout in layer 1 deleted it"
    );

    let cfg = at(findings, "etc/app/config.yaml");
    assert_eq!(cfg["image"]["layer_index"], 2);
    assert_eq!(cfg["image"]["layer_digest"], layer_digests[2].as_str());
    assert_eq!(
        cfg["image"]["created_by"],
        "COPY config.yaml /etc/app/config.yaml # buildkit"
    );
    assert!(cfg["image"]["removed_in_layer"].is_null());

    let env_var = at(findings, "config:Env[1]");
    assert!(env_var["image"]["layer_index"].is_null());
    assert_eq!(env_var["line"], 1);
    assert_eq!(env_var["column"], "NPM_TOKEN=".len() + 1);

    let arg = at(findings, "config:history[2].created_by");
    assert_eq!(arg["rule_id"], "github-classic-pat");
    assert_eq!(findings.len(), 4, "nothing else: {findings:#?}");
    // Every finding names the image, and nothing shows a raw secret: not
    // the snippet, not the history step quoted in `created_by`.
    let text = serde_json::to_string(findings).unwrap();
    for s in [gh_token(), build_arg_token(), slack_token(), npm_token()] {
        assert!(!text.contains(&s), "secret leaked in the report");
    }
}

/// The distinct `image.reference` values of findings, sorted.
pub fn image_references(findings: &[Value]) -> Vec<String> {
    let mut refs: Vec<String> = findings
        .iter()
        .map(|f| f["image"]["reference"].as_str().unwrap().to_string())
        .collect();
    refs.sort();
    refs.dedup();
    refs
}
