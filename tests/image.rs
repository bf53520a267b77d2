//! `leakhound image` on images built at test time and written as a
//! `docker save` archive (legacy and docker >= 25 flavours), an OCI layout
//! directory and an OCI layout tarball; and on broken or hostile images.

#[path = "support/image.rs"]
mod fixture;

use fixture::*;
use serde_json::json;

#[test]
fn oci_layout_dir_reports_every_layer_config_env_and_build_arg_with_provenance() {
    let dir = tempfile::tempdir().unwrap();
    let img = TestImage::leaky();
    img.write_oci_dir(dir.path(), "v1");
    let layout = dir.path().display().to_string();
    let (code, findings, stderr) = leakhound(&["image", "--oci-layout", &layout], None, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_leaky_findings(&findings, &format!("{layout}:v1"), &img.layer_digests());
    let manifest_digest = sha256(&img.manifest());
    assert!(
        findings
            .iter()
            .all(|f| f["image"]["digest"] == manifest_digest.as_str())
    );
}

#[test]
fn legacy_docker_save_archive_names_layers_by_diff_id() {
    let dir = tempfile::tempdir().unwrap();
    let img = TestImage::leaky();
    let tar = dir.path().join("app.tar");
    img.write_docker_save_legacy(&tar, "example.org/team/app:1.0");
    let (code, findings, stderr) =
        leakhound(&["image", "--archive", tar.to_str().unwrap()], None, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    let diff_ids: Vec<String> = img.tars.iter().map(|t| sha256(t)).collect();
    assert_leaky_findings(&findings, "example.org/team/app:1.0", &diff_ids);
    // The image id (config digest) stands in for a manifest digest.
    assert_eq!(findings[0]["image"]["digest"], sha256(&img.config).as_str());
}

#[test]
fn docker_25_archive_is_read_as_an_oci_layout_with_the_image_name() {
    let dir = tempfile::tempdir().unwrap();
    let img = TestImage::leaky();
    let tar = dir.path().join("app.tar");
    img.write_docker_save_oci(&tar, "docker.io/library/app:latest");
    let (code, findings, stderr) =
        leakhound(&["image", "--archive", tar.to_str().unwrap()], None, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_leaky_findings(
        &findings,
        "docker.io/library/app:latest",
        &img.layer_digests(),
    );
}

#[test]
fn retagged_image_keeps_fingerprints_and_a_shared_layer_is_reported_for_each_image() {
    let dir = tempfile::tempdir().unwrap();
    let img = TestImage::leaky();
    let (a, b) = (dir.path().join("a.tar"), dir.path().join("b.tar"));
    img.write_docker_save_legacy(&a, "example.org/app:1.0");
    img.write_docker_save_legacy(&b, "example.org/app:2.0");
    let args = [
        "image",
        "--archive",
        a.to_str().unwrap(),
        "--archive",
        b.to_str().unwrap(),
    ];
    let (code, findings, stderr) = leakhound(&args, None, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(findings.len(), 8, "4 per image: {findings:#?}");
    // Each layer was read once (deduplicated by digest): 3 layer files
    // and 8 config parts per image.
    assert!(stderr.contains("scanned 19 files"), "{stderr}");
    let fp = |tag: &str| {
        findings
            .iter()
            .find(|f| f["path"] == "app/.env" && f["image"]["reference"] == tag)
            .unwrap()["fingerprint"]
            .clone()
    };
    assert_eq!(fp("example.org/app:1.0"), fp("example.org/app:2.0"));
}

#[test]
fn text_report_names_image_layer_step_and_deletion_without_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    TestImage::leaky().write_oci_dir(dir.path(), "v1");
    // An image whose step that made a leaky layer quotes a build arg.
    let yaml = format!("token: {}\n", slack_token());
    let step = format!(
        "|1 DEPLOY_TOKEN={} /bin/sh -c ./fetch-config",
        build_arg_token()
    );
    let img = TestImage::new(
        vec![layer_tar(&[("etc/app.yaml", yaml.as_bytes())])],
        json!([{"created_by": step}]),
        vec![],
    );
    let second = dir.path().join("second.tar");
    img.write_docker_save_legacy(&second, "example.org/app:2");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_leakhound"))
        .args(["image", "--archive", second.to_str().unwrap()])
        .args(["image", "--oci-layout", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("layer 0 (sha256:"), "{text}");
    assert!(
        text.contains("deleted in layer 1 but still shipped"),
        "{text}"
    );
    assert!(
        text.contains("created by: |1 DEPLOY_TOKEN=ghp_*****"),
        "{text}"
    );
    assert!(!text.contains(&build_arg_token()));
}

#[test]
fn zstd_and_uncompressed_layers_are_sniffed_whatever_the_media_type_says() {
    let dir = tempfile::tempdir().unwrap();
    let mut img = TestImage::leaky();
    // Layer 0 stored as zstd, layer 2 uncompressed; the manifest still
    // says gzip for both.
    img.stored[0] = zstd::encode_all(&img.tars[0][..], 3).unwrap();
    img.stored[2] = img.tars[2].clone();
    img.write_oci_dir(dir.path(), "v1");
    let layout = dir.path().display().to_string();
    let (code, findings, stderr) = leakhound(&["image", "--oci-layout", &layout], None, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_leaky_findings(&findings, &format!("{layout}:v1"), &img.layer_digests());
}

#[test]
fn digest_mismatch_is_an_error_naming_image_and_layer_and_the_rest_is_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let img = TestImage::leaky();
    img.write_oci_dir(dir.path(), "v1");
    // Replace layer 2's bytes with another valid layer under the old name.
    let other = gzip(&layer_tar(&[("etc/app/config.yaml", b"nothing here\n")]));
    std::fs::write(dir.path().join(blob_path(&img.layer_digests()[2])), other).unwrap();
    let layout = dir.path().display().to_string();
    let (code, findings, stderr) = leakhound(&["image", "--oci-layout", &layout], None, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    let label = format!("{layout}:v1 layer 2 ({})", img.layer_digests()[2]);
    assert!(
        stderr.contains(&label) && stderr.contains("digest mismatch"),
        "{stderr}"
    );
    assert!(findings.iter().any(|f| f["path"] == "app/.env"));
    assert!(findings.iter().any(|f| f["path"] == "config:Env[1]"));
}

#[test]
fn truncated_layer_is_an_error_and_files_before_the_cut_are_still_found() {
    let dir = tempfile::tempdir().unwrap();
    let filler: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let env = format!("GITHUB_TOKEN={}\n", gh_token());
    let big = layer_tar(&[("app/.env", env.as_bytes()), ("app/blob.bin", &filler)]);
    let img = TestImage::new(vec![big], json!([{"created_by": "COPY . /app"}]), vec![]);
    img.write_oci_dir(dir.path(), "v1");
    let path = dir.path().join(blob_path(&img.layer_digests()[0]));
    let stored = std::fs::read(&path).unwrap();
    std::fs::write(&path, &stored[..stored.len() / 2]).unwrap();
    let layout = dir.path().display().to_string();
    let (code, findings, stderr) = leakhound(&["image", "--oci-layout", &layout], None, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("{layout}:v1 layer 0 (sha256:")),
        "{stderr}"
    );
    assert!(stderr.contains("truncated or corrupt layer"), "{stderr}");
    assert!(
        findings.iter().any(|f| f["path"] == "app/.env"),
        "{findings:#?}"
    );
}

#[test]
fn unknown_manifest_media_type_is_refused_by_name_and_other_images_are_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad");
    let img = TestImage::leaky();
    img.write_oci_dir(&bad, "v1");
    // Point the index at a manifest of a type we do not read.
    let manifest = br#"{"schemaVersion":1,"mediaType":"application/vnd.docker.distribution.manifest.v1+prettyjws"}"#;
    std::fs::write(bad.join(blob_path(&sha256(manifest))), manifest).unwrap();
    let index = json!({"schemaVersion": 2, "manifests": [{"mediaType": OCI_MANIFEST,
        "digest": sha256(manifest), "size": manifest.len()}]});
    std::fs::write(bad.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    let good = dir.path().join("good.tar");
    img.write_docker_save_legacy(&good, "example.org/app:1.0");
    let args = [
        "image",
        "--oci-layout",
        bad.to_str().unwrap(),
        "--archive",
        good.to_str().unwrap(),
    ];
    let (code, findings, stderr) = leakhound(&args, None, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("manifest.v1+prettyjws"), "{stderr}");
    assert!(stderr.contains(bad.to_str().unwrap()), "{stderr}");
    assert_eq!(findings.len(), 4, "the good archive is still scanned");
}

#[test]
fn hostile_tar_path_is_reported_as_an_error_and_its_content_still_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let env = format!("GITHUB_TOKEN={}\n", gh_token());
    let evil = layer_tar(&[("../../root/.env", env.as_bytes())]);
    let img = TestImage::new(
        vec![evil],
        json!([{"created_by": "ADD evil.tar /"}]),
        vec![],
    );
    let tar = dir.path().join("evil.tar");
    img.write_docker_save_legacy(&tar, "example.org/evil:1");
    let (code, findings, stderr) =
        leakhound(&["image", "--archive", tar.to_str().unwrap()], None, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("example.org/evil:1 layer 0 (sha256:"),
        "{stderr}"
    );
    assert!(stderr.contains("escapes the layer root"), "{stderr}");
    assert_eq!(findings.len(), 1, "{findings:#?}");
}

#[test]
fn files_over_max_file_size_are_skipped_and_listed_without_failing_the_scan() {
    let dir = tempfile::tempdir().unwrap();
    let img = TestImage::leaky();
    img.write_oci_dir(dir.path(), "v1");
    let layout = dir.path().display().to_string();
    let (code, findings, stderr) = leakhound(
        &["image", "--oci-layout", &layout, "--max-file-size", "40"],
        None,
        &[],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("app/.env: file is 54 bytes, larger than --max-file-size 40"),
        "{stderr}"
    );
    assert!(!findings.iter().any(|f| f["path"] == "app/.env"));
    assert!(findings.iter().any(|f| f["path"] == "config:Env[1]"));
}

#[test]
fn a_path_that_is_no_image_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("x.tar");
    write_tar(&tar, &[("hello.txt".into(), b"hi".to_vec())]);
    let (code, findings, stderr) =
        leakhound(&["image", "--archive", tar.to_str().unwrap()], None, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(findings.is_empty());
    assert!(stderr.contains("neither a docker save archive"), "{stderr}");
}
