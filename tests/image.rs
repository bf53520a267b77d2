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
        .args([
            "--no-config",
            "image",
            "--archive",
            second.to_str().unwrap(),
        ])
        .args(["--oci-layout", dir.path().to_str().unwrap()])
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // Both images read, nothing else (no registry pull): findings, exit 1.
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
        stderr.contains(
            "app/.env: file is 54 bytes, larger than the maximum file size 40 (--max-file-size)"
        ),
        "{stderr}"
    );
    assert!(!findings.iter().any(|f| f["path"] == "app/.env"));
    assert!(findings.iter().any(|f| f["path"] == "config:Env[1]"));
}

#[test]
fn max_file_size_from_the_config_file_applies_to_image_layers() {
    let dir = tempfile::tempdir().unwrap();
    let img = TestImage::leaky();
    let layout_dir = dir.path().join("layout");
    img.write_oci_dir(&layout_dir, "v1");
    let layout = layout_dir.display().to_string();
    let cfg = dir.path().join("leakhound.toml");
    std::fs::write(&cfg, "max_file_size = \"40\"\n").unwrap();
    let (code, findings, stderr) = leakhound(
        &[
            "image",
            "--oci-layout",
            &layout,
            "--config",
            cfg.to_str().unwrap(),
        ],
        None,
        &[],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("app/.env: file is 54 bytes, larger than"),
        "{stderr}"
    );
    assert!(!findings.iter().any(|f| f["path"] == "app/.env"));
    // The command line wins over the config file.
    let (code, findings, stderr) = leakhound(
        &[
            "image",
            "--oci-layout",
            &layout,
            "--config",
            cfg.to_str().unwrap(),
            "--max-file-size",
            "1MiB",
        ],
        None,
        &[],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        findings.iter().any(|f| f["path"] == "app/.env"),
        "{findings:#?}"
    );
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
    let (code, _, stderr) = leakhound(
        &["image", "--archive", dir.path().to_str().unwrap()],
        None,
        &[],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("is a directory: an OCI layout directory is read with --oci-layout"),
        "{stderr}"
    );
}

/// An OCI layout whose index.json points at a multi-platform index (as
/// docker's containerd store writes): amd64 holds the leaky image, arm64
/// another one.
fn multi_platform_layout(dir: &std::path::Path) -> (TestImage, TestImage) {
    let amd = TestImage::leaky();
    let yaml = format!("token: {}\n", slack_token());
    let arm = TestImage::new(
        vec![layer_tar(&[("arm/app.yaml", yaml.as_bytes())])],
        json!([{"created_by": "COPY app.yaml /arm/"}]),
        vec![],
    );
    let mut files = amd.oci_files("latest");
    files.extend(arm.oci_files("latest").into_iter().skip(2));
    let entry = |img: &TestImage, arch: &str| {
        let m = img.manifest();
        json!({"mediaType": OCI_MANIFEST, "digest": sha256(&m), "size": m.len(),
               "platform": {"os": "linux", "architecture": arch}})
    };
    let nested = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry(&amd, "amd64"), entry(&arm, "arm64"),
                      {"mediaType": OCI_MANIFEST, "digest": sha256(b"att"), "size": 3,
                       "platform": {"os": "unknown", "architecture": "unknown"}}],
    }))
    .unwrap();
    files[1].1 = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": sha256(&nested),
                       "size": nested.len(), "annotations": {"io.containerd.image.name": "example.org/multi:1"}}],
    }))
    .unwrap();
    files.push((blob_path(&sha256(&nested)), nested));
    for (name, data) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
    (amd, arm)
}

#[test]
fn multi_platform_index_scans_the_asked_platform_or_all_and_names_the_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let (amd, arm) = multi_platform_layout(dir.path());
    let layout = dir.path().to_str().unwrap();

    let (code, findings, stderr) = leakhound(
        &["image", "--oci-layout", layout, "--platform", "linux/amd64"],
        None,
        &[],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert_leaky_findings(&findings, "example.org/multi:1", &amd.layer_digests());

    let (code, findings, stderr) = leakhound(
        &["image", "--oci-layout", layout, "--platform", "linux/arm64"],
        None,
        &[],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0]["path"], "arm/app.yaml");
    assert_eq!(
        findings[0]["image"]["digest"],
        sha256(&arm.manifest()).as_str()
    );

    let (code, findings, stderr) = leakhound(
        &["image", "--oci-layout", layout, "--all-platforms"],
        None,
        &[],
    );
    assert_eq!(code, Some(1), "{stderr}");
    let refs = image_references(&findings);
    assert_eq!(
        refs,
        [
            "example.org/multi:1 (linux/amd64)",
            "example.org/multi:1 (linux/arm64)"
        ]
    );

    let (code, _, stderr) = leakhound(
        &["image", "--oci-layout", layout, "--platform", "linux/s390x"],
        None,
        &[],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "no manifest for platform linux/s390x (the index lists: linux/amd64, linux/arm64)"
        ),
        "{stderr}"
    );
}

#[test]
fn opaque_whiteout_marks_files_of_lower_layers_in_that_directory_as_removed() {
    let dir = tempfile::tempdir().unwrap();
    let env = format!("GITHUB_TOKEN={}\n", gh_token());
    let img = TestImage::new(
        vec![
            layer_tar(&[("srv/conf/.env", env.as_bytes())]),
            layer_tar(&[
                ("srv/conf/.wh..wh..opq", b""),
                ("srv/conf/app.ini", b"[app]\n"),
            ]),
        ],
        json!([{"created_by": "COPY conf /srv/conf"}, {"created_by": "RUN rm -rf /srv/conf && mkdir /srv/conf"}]),
        vec![],
    );
    img.write_oci_dir(dir.path(), "v1");
    let (code, findings, stderr) = leakhound(
        &["image", "--oci-layout", dir.path().to_str().unwrap()],
        None,
        &[],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        at(&findings, "srv/conf/.env")["image"]["removed_in_layer"],
        1
    );
}

#[test]
fn decompression_bomb_layer_is_stopped_and_named() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    // A 2 GiB file of zeros: ~2 MB gzipped, far over 200:1 once past 1 GiB.
    let size: u64 = 2 << 30;
    let mut h = tar::Header::new_gnu();
    h.set_path("var/zeros").unwrap();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_cksum();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best()); // zlib-rs level 1 stays under the 200:1 guard
    gz.write_all(h.as_bytes()).unwrap();
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..(size >> 20) {
        gz.write_all(&chunk).unwrap();
    }
    gz.write_all(&[0u8; 1024]).unwrap();
    let stored = gz.finish().unwrap();
    let mut img = TestImage::new(
        vec![Vec::new()],
        json!([{"created_by": "RUN make-bomb"}]),
        vec![],
    );
    img.stored = vec![stored];
    img.write_oci_dir(dir.path(), "v1");
    let (code, _, stderr) = leakhound(
        &["image", "--oci-layout", dir.path().to_str().unwrap()],
        None,
        &[],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("layer 0 (sha256:") && stderr.contains("decompression bomb"),
        "{stderr}"
    );
}

#[test]
fn compressed_archive_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("app.tar");
    TestImage::leaky().write_docker_save_legacy(&tar, "example.org/app:1.0");
    let gz = dir.path().join("app.tar.gz");
    std::fs::write(&gz, gzip(&std::fs::read(&tar).unwrap())).unwrap();
    let (code, _, stderr) = leakhound(&["image", "--archive", gz.to_str().unwrap()], None, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("app.tar.gz: the archive is compressed"),
        "{stderr}"
    );
}

#[test]
fn broken_layer_shared_by_two_images_is_read_once_and_names_both() {
    let dir = tempfile::tempdir().unwrap();
    let img = TestImage::leaky();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    img.write_oci_dir(&a, "v1");
    img.write_oci_dir(&b, "v2");
    let other = gzip(&layer_tar(&[("etc/app/config.yaml", b"nothing here\n")]));
    std::fs::write(a.join(blob_path(&img.layer_digests()[2])), other).unwrap();
    let args = [
        "image",
        "--oci-layout",
        a.to_str().unwrap(),
        "--oci-layout",
        b.to_str().unwrap(),
    ];
    let (code, _, stderr) = leakhound(&args, None, &[]);
    assert_eq!(code, Some(2), "{stderr}");

    let line = stderr
        .lines()
        .find(|l| l.contains("digest mismatch"))
        .expect("the mismatch is named");
    assert!(
        line.contains(&format!("{}:v1 layer 2", a.display())),
        "{line}"
    );
    assert!(
        line.contains(&format!("also in {}:v2", b.display())),
        "{line}"
    );
    assert_eq!(
        stderr.matches("digest mismatch").count(),
        1,
        "read once: {stderr}"
    );
}
