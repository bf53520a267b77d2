//! `leakhound image` and `leakhound registry` against a real registry:
//! Debian's `docker-registry` (CNCF distribution) started on 127.0.0.1 with
//! a random port and a temp storage dir, once plain HTTP, once TLS (a CA
//! and server certificate made here with `openssl`) with htpasswd basic
//! auth. Images are built by the test and pushed with `oci-client`.

#[path = "support/image.rs"]
mod fixture;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fixture::*;
use oci_client::client::{
    Certificate, CertificateEncoding, ClientConfig, ClientProtocol, Config, ImageLayer,
};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

const USER: &str = "ci-bot";
const PASSWORD: &str = "not-a-real-password-4711";

/// A running registry; killed (and its storage removed) on drop, panics
/// included.
struct Registry {
    child: Child,
    dir: tempfile::TempDir,
    host: String,
    tls: bool,
    /// Credentials the registry wants (basic, or for its token server).
    auth: RegistryAuth,
    _tokens: Option<HttpStub>,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How the registry is set up.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Plain HTTP, anonymous.
    Plain,
    /// TLS with htpasswd basic auth.
    TlsBasic,
    /// Plain HTTP with bearer tokens from `TokenServer`.
    Token,
}

/// A token server for the registry's `token` auth: answers requests that
/// carry the right basic credentials with a JWT (RS256, signed by openssl
/// with a certificate the registry trusts, `x5c` in the header) granting
/// pull and push on every repository the tests use; anything else gets 401.
struct TokenServer;

/// A one-route HTTP server on 127.0.0.1: `answer` gets the request's
/// Authorization header and returns status line and JSON body. Counts
/// requests; stopped and joined on drop.
struct HttpStub {
    port: u16,
    requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HttpStub {
    fn start(answer: impl Fn(Option<&str>) -> (&'static str, String) + Send + 'static) -> HttpStub {
        use std::sync::atomic::Ordering::Relaxed;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (stop2, requests2) = (stop.clone(), requests.clone());
        let thread = std::thread::spawn(move || {
            use std::io::{BufRead, BufReader, Write};
            for conn in listener.incoming() {
                if stop2.load(Relaxed) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                requests2.fetch_add(1, Relaxed);
                let mut auth = None;
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                    if line == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':')
                        && k.eq_ignore_ascii_case("authorization")
                    {
                        auth = Some(v.trim().to_string());
                    }
                    line.clear();
                }
                let (status, body) = answer(auth.as_deref());
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        HttpStub {
            port,
            requests,
            stop,
            thread: Some(thread),
        }
    }
}

fn b64url(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

impl TokenServer {
    fn start(dir: &Path) -> HttpStub {
        let d = |f: &str| dir.join(f).display().to_string();
        run(Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args([
                "-subj",
                "/CN=leakhound token signer",
                "-keyout",
                &d("token.key"),
                "-out",
                &d("token.pem"),
            ]));
        let der = Command::new("openssl")
            .args(["x509", "-in", &d("token.pem"), "-outform", "DER"])
            .output()
            .unwrap()
            .stdout;
        use base64::Engine as _;
        let header = serde_json::json!({"alg": "RS256", "typ": "JWT",
            "x5c": [base64::engine::general_purpose::STANDARD.encode(&der)]});
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let repo = |name: &str| serde_json::json!({"type": "repository", "name": name, "actions": ["pull", "push"]});
        let claims = serde_json::json!({"iss": "leakhound-test", "sub": USER, "aud": "leakhound-registry",
            "exp": now + 3600, "nbf": now - 60, "iat": now - 60, "jti": "leakhound-test-1",
            "access": [repo("team/app"), repo("team/tool"), repo("elsewhere/tool"),
                       {"type": "registry", "name": "catalog", "actions": ["*"]}]});
        let input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        std::fs::write(dir.join("jwt.input"), &input).unwrap();
        let sig = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign", &d("token.key"), &d("jwt.input")])
            .output()
            .unwrap();
        assert!(sig.status.success());
        let token = format!("{input}.{}", b64url(&sig.stdout));
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
        );
        let body = serde_json::json!({"token": token, "expires_in": 3600}).to_string();
        HttpStub::start(move |auth| {
            if auth == Some(expected.as_str()) {
                ("200 OK", body.clone())
            } else {
                ("401 Unauthorized", "{}".to_string())
            }
        })
    }
}

impl Drop for HttpStub {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a server certificate for 127.0.0.1 signed by it.
fn make_certs(dir: &Path) {
    let d = |f: &str| dir.join(f);
    run(Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=leakhound test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            d("ca.key").to_str().unwrap(),
            "-out",
            d("ca.pem").to_str().unwrap(),
        ]));
    run(Command::new("openssl")
        .args([
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .args([
            "-keyout",
            d("server.key").to_str().unwrap(),
            "-out",
            d("server.csr").to_str().unwrap(),
        ]));
    std::fs::write(
        d("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
        .args([
            "-in",
            d("server.csr").to_str().unwrap(),
            "-CA",
            d("ca.pem").to_str().unwrap(),
            "-CAkey",
            d("ca.key").to_str().unwrap(),
            "-extfile",
            d("ext.cnf").to_str().unwrap(),
            "-out",
            d("server.pem").to_str().unwrap(),
        ]));
}

impl Registry {
    fn start(mode: Mode) -> Registry {
        let tls = mode == Mode::TlsBasic;
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut yaml = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: leakhound-test\n",
            dir.path().join("storage").display()
        );
        if tls {
            make_certs(dir.path());
            let out = Command::new("htpasswd")
                .args(["-Bbn", USER, PASSWORD])
                .output()
                .unwrap();
            assert!(out.status.success());
            std::fs::write(dir.path().join("htpasswd"), out.stdout).unwrap();
            yaml.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\nauth:\n  htpasswd:\n    realm: leakhound-test\n    path: {}\n",
                dir.path().join("server.pem").display(),
                dir.path().join("server.key").display(),
                dir.path().join("htpasswd").display()
            ));
        }
        let mut tokens = None;
        if mode == Mode::Token {
            let t = TokenServer::start(dir.path());
            yaml.push_str(&format!(
                "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: leakhound-registry\n    \
                 issuer: leakhound-test\n    rootcertbundle: {}\n",
                t.port,
                dir.path().join("token.pem").display()
            ));
            tokens = Some(t);
        }
        let config = dir.path().join("config.yml");
        std::fs::write(&config, yaml).unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry runs (apt-get install docker-registry)");
        let reg = Registry {
            child,
            dir,
            host: format!("127.0.0.1:{port}"),
            tls,
            auth: if mode == Mode::Plain {
                RegistryAuth::Anonymous
            } else {
                RegistryAuth::Basic(USER.into(), PASSWORD.into())
            },
            _tokens: tokens,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&reg.host).is_err() {
            assert!(
                Instant::now() < deadline,
                "registry did not start on {}",
                reg.host
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        reg
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// An oci-client that trusts the test CA (TLS mode) or speaks HTTP.
    fn client(&self) -> Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut config = ClientConfig {
            protocol: if self.tls {
                ClientProtocol::Https
            } else {
                ClientProtocol::Http
            },
            ..ClientConfig::default()
        };
        if self.tls {
            config.extra_root_certificates.push(Certificate {
                encoding: CertificateEncoding::Pem,
                data: std::fs::read(self.ca()).unwrap(),
            });
        }
        Client::try_from(config).unwrap()
    }

    /// Pushes an index `repo:tag` over the images already pushed as
    /// `repo:T` for each `(T, arch)`.
    fn push_index(&self, repo: &str, tag: &str, platforms: &[(&str, &str)]) {
        let client = self.client();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut manifests = Vec::new();
        for (t, arch) in platforms {
            let r: Reference = format!("{}/{repo}:{t}", self.host).parse().unwrap();
            let (body, digest) = rt
                .block_on(client.pull_manifest_raw(&r, &self.auth, &[OCI_MANIFEST]))
                .unwrap();
            manifests.push(
                serde_json::json!({"mediaType": OCI_MANIFEST, "digest": digest,
                "size": body.len(), "platform": {"os": "linux", "architecture": arch}}),
            );
        }
        let index = serde_json::from_value(serde_json::json!({"schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests}))
        .unwrap();
        let r: Reference = format!("{}/{repo}:{tag}", self.host).parse().unwrap();
        rt.block_on(client.push_manifest_list(&r, &self.auth, index))
            .expect("push index");
    }

    /// Pushes `img` as `host/repo:tag` with oci-client.
    fn push(&self, img: &TestImage, repo: &str, tag: &str) {
        let client = self.client();
        let auth = self.auth.clone();
        let reference: Reference = format!("{}/{repo}:{tag}", self.host).parse().unwrap();
        let layers: Vec<ImageLayer> = img
            .stored
            .iter()
            .map(|l| ImageLayer::new(l.clone(), LAYER_GZIP.into(), None))
            .collect();
        let cfg = Config::new(img.config.clone(), OCI_CONFIG.into(), None);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(client.push(&reference, &layers, cfg, &auth, None))
            .expect("push");
    }
}

#[test]
fn image_pulled_over_plain_http_reports_layers_config_and_history() {
    let reg = Registry::start(Mode::Plain);
    let img = TestImage::leaky();
    reg.push(&img, "team/app", "v1");
    let reference = format!("{}/team/app:v1", reg.host);
    let (code, findings, stderr) = leakhound(&["image", &reference, "--insecure"], None, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_leaky_findings(&findings, &reference, &img.layer_digests());
}

#[test]
fn tls_registry_with_basic_auth_takes_password_stdin_env_or_docker_config_and_401_is_an_error() {
    let reg = Registry::start(Mode::TlsBasic);
    let img = TestImage::leaky();
    reg.push(&img, "team/app", "v1");
    let reference = format!("{}/team/app:v1", reg.host);
    let ca = reg.ca().display().to_string();

    let (code, findings, stderr) = leakhound(
        &[
            "image",
            &reference,
            "--ca-cert",
            &ca,
            "--username",
            USER,
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
        &[],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert_leaky_findings(&findings, &reference, &img.layer_digests());

    let env = [
        ("LEAKHOUND_REGISTRY_USERNAME", USER),
        ("LEAKHOUND_REGISTRY_PASSWORD", PASSWORD),
    ];
    let (code, findings, stderr) = leakhound(&["image", &reference, "--ca-cert", &ca], None, &env);
    assert_eq!((code, findings.len()), (Some(1), 4), "{stderr}");

    let docker = tempfile::tempdir().unwrap();
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let cfg = serde_json::json!({"auths": {reg.host.clone(): {"auth": auth}}});
    std::fs::write(docker.path().join("config.json"), cfg.to_string()).unwrap();
    let dc = docker.path().to_str().unwrap();
    let (code, findings, stderr) = leakhound(
        &["image", &reference, "--ca-cert", &ca],
        None,
        &[("DOCKER_CONFIG", dc)],
    );
    assert_eq!((code, findings.len()), (Some(1), 4), "{stderr}");

    // A credential helper named in credHelpers, run as docker would.
    let helper = docker.path().join("docker-credential-lhtest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread host\n[ \"$host\" = {} ] || {{ echo credentials not found; exit 1; }}\n\
             printf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}' \"$host\"\n",
            reg.host
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cfg = serde_json::json!({"credHelpers": {reg.host.clone(): "lhtest"}});
    std::fs::write(docker.path().join("config.json"), cfg.to_string()).unwrap();
    let path = format!("{dc}:{}", std::env::var("PATH").unwrap_or_default());
    let (code, findings, stderr) = leakhound(
        &["image", &reference, "--ca-cert", &ca],
        None,
        &[("DOCKER_CONFIG", dc), ("PATH", &path)],
    );
    assert_eq!((code, findings.len()), (Some(1), 4), "{stderr}");

    // No credentials: the registry says 401; named, exit 2.
    let (code, findings, stderr) = leakhound(&["image", &reference, "--ca-cert", &ca], None, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(findings.is_empty());
    assert!(stderr.contains(&reference), "{stderr}");
    assert!(stderr.contains("Not authorized"), "{stderr}");

    // Without the CA the certificate is not trusted: an error, not a pass.
    let (code, _, stderr) = leakhound(&["image", &reference], None, &env);
    assert_eq!(code, Some(2), "{stderr}");
}

#[test]
fn registry_sweep_scans_every_tag_under_the_prefix_once_per_layer_and_survives_a_missing_image() {
    let reg = Registry::start(Mode::Plain);
    let img = TestImage::leaky();
    reg.push(&img, "team/app", "v1");
    reg.push(&img, "team/app", "v2");
    let other = TestImage::new(
        vec![layer_tar(&[(
            "srv/.npmrc",
            format!("//registry.npmjs.org/:_authToken={}\n", npm_token()).as_bytes(),
        )])],
        serde_json::json!([{"created_by": "COPY .npmrc /srv/"}]),
        vec![],
    );
    reg.push(&other, "team/tool", "1");
    reg.push(&other, "elsewhere/tool", "1");

    let target = format!("{}/team", reg.host);
    let (code, findings, stderr) = leakhound(&["registry", &target, "--insecure"], None, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    let mut refs: Vec<&str> = findings
        .iter()
        .map(|f| f["image"]["reference"].as_str().unwrap())
        .collect();
    refs.dedup();
    let h = &reg.host;
    assert_eq!(
        refs,
        [
            format!("{h}/team/app:v1"),
            format!("{h}/team/app:v2"),
            format!("{h}/team/tool:1")
        ]
    );
    assert_eq!(findings.len(), 4 + 4 + 1, "{findings:#?}");
    // 3 + 1 distinct layer files, each read once; 8 + 8 + 3 config parts.
    assert!(stderr.contains("scanned 23 files"), "{stderr}");

    // A list with an image that does not exist: named, the rest scanned.
    let list = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        list.path(),
        format!("# images\n{h}/team/gone:1\n{h}/team/tool:1\n"),
    )
    .unwrap();
    let (code, findings, stderr) = leakhound(
        &[
            "registry",
            "--images-from",
            list.path().to_str().unwrap(),
            "--insecure",
        ],
        None,
        &[],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains(&format!("{h}/team/gone:1")), "{stderr}");
    assert_eq!(findings.len(), 1, "{findings:#?}");
}

#[test]
fn bearer_token_registry_is_pulled_with_a_token_bought_with_basic_credentials() {
    let reg = Registry::start(Mode::Token);
    let img = TestImage::leaky();
    reg.push(&img, "team/app", "v1");
    let reference = format!("{}/team/app:v1", reg.host);
    let (code, findings, stderr) = leakhound(
        &[
            "image",
            &reference,
            "--insecure",
            "--username",
            USER,
            "--password-stdin",
        ],
        Some(PASSWORD),
        &[],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert_leaky_findings(&findings, &reference, &img.layer_digests());

    // The token server refuses other credentials: the pull is an error.
    let (code, findings, stderr) = leakhound(
        &[
            "image",
            &reference,
            "--insecure",
            "--username",
            USER,
            "--password-stdin",
        ],
        Some("wrong"),
        &[],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        findings.is_empty() && stderr.contains(&reference),
        "{stderr}"
    );
}

#[test]
fn layer_served_with_other_bytes_than_its_digest_is_an_error_naming_image_and_layer() {
    let reg = Registry::start(Mode::Plain);
    let img = TestImage::leaky();
    reg.push(&img, "team/app", "v1");
    // Change layer 2's bytes in the registry's own storage: it serves
    // blobs as stored, without re-checking them.
    let digest = &img.layer_digests()[2];
    let hex = &digest[7..];
    let data = reg.dir.path().join(format!(
        "storage/docker/registry/v2/blobs/sha256/{}/{hex}/data",
        &hex[..2]
    ));
    let other = gzip(&layer_tar(&[("etc/app/config.yaml", b"nothing here\n")]));
    std::fs::write(&data, other).unwrap();
    let reference = format!("{}/team/app:v1", reg.host);
    let (code, findings, stderr) = leakhound(&["image", &reference, "--insecure"], None, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("{reference} layer 2 ({digest})")),
        "{stderr}"
    );
    // Found while streaming, by oci-client or by us: one error either way.
    assert!(
        stderr.contains("Invalid digest") || stderr.contains("digest mismatch"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches(&format!("layer 2 ({digest})")).count(),
        1,
        "{stderr}"
    );
    // The other layers and the config are still scanned.
    assert!(findings.iter().any(|f| f["path"] == "app/.env"));
    assert!(findings.iter().any(|f| f["path"] == "config:Env[1]"));
}

#[test]
fn rate_limited_registry_is_retried_then_named_as_the_error() {
    // A registry that answers every request "too many requests".
    let stub = HttpStub::start(|_| {
        (
            "429 Too Many Requests",
            r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"pull rate limit"}]}"#.to_string(),
        )
    });
    let reference = format!("127.0.0.1:{}/team/app:v1", stub.port);
    let (code, findings, stderr) = leakhound(&["image", &reference, "--insecure"], None, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(findings.is_empty());
    assert!(
        stderr.contains(&reference) && stderr.contains("pull rate limit"),
        "{stderr}"
    );
    // One attempt is at most two requests (a /v2/ probe, the manifest):
    // more means it was tried again.
    let n = stub.requests.load(std::sync::atomic::Ordering::Relaxed);
    assert!(n >= 3, "{n} requests");
}

#[test]
fn multi_platform_image_in_a_registry_scans_the_asked_platform_or_all() {
    let reg = Registry::start(Mode::Plain);
    let amd = TestImage::leaky();
    let yaml = format!("token: {}\n", slack_token());
    let arm = TestImage::new(
        vec![layer_tar(&[("arm/app.yaml", yaml.as_bytes())])],
        serde_json::json!([{"created_by": "COPY app.yaml /arm/"}]),
        vec![],
    );
    reg.push(&amd, "team/multi", "amd");
    reg.push(&arm, "team/multi", "arm");
    reg.push_index("team/multi", "1", &[("amd", "amd64"), ("arm", "arm64")]);
    let reference = format!("{}/team/multi:1", reg.host);

    let args = [
        "image",
        &reference,
        "--insecure",
        "--platform",
        "linux/arm64",
    ];
    let (code, findings, stderr) = leakhound(&args, None, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0]["path"], "arm/app.yaml");

    let args = [
        "image",
        &reference,
        "--insecure",
        "--platform",
        "linux/amd64",
    ];
    let (code, findings, stderr) = leakhound(&args, None, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_leaky_findings(&findings, &reference, &amd.layer_digests());

    let (code, findings, stderr) = leakhound(
        &["image", &reference, "--insecure", "--all-platforms"],
        None,
        &[],
    );
    assert_eq!(code, Some(1), "{stderr}");
    let mut refs: Vec<&str> = findings
        .iter()
        .map(|f| f["image"]["reference"].as_str().unwrap())
        .collect();
    refs.sort();
    refs.dedup();
    assert_eq!(
        refs,
        [
            format!("{reference} (linux/amd64)"),
            format!("{reference} (linux/arm64)")
        ]
    );
}
