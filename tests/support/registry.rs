//! A real registry for the tests: Debian's `docker-registry` (CNCF
//! distribution) on 127.0.0.1 with a random port and a temp storage dir,
//! plain HTTP, TLS with htpasswd basic auth (CA and server certificate made
//! with `openssl`), or bearer tokens from a stub token server; images pushed
//! with `oci-client`. Every process and thread is stopped on drop.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::fixture::*;
use oci_client::client::{
    Certificate, CertificateEncoding, ClientConfig, ClientProtocol, Config, ImageLayer,
};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

pub const USER: &str = "ci-bot";
pub const PASSWORD: &str = "not-a-real-password-4711";

/// A running registry; killed (and its storage removed) on drop, panics
/// included.
pub struct Registry {
    child: Child,
    pub dir: tempfile::TempDir,
    pub host: String,
    tls: bool,
    /// Credentials the registry wants (basic, or for its token server).
    auth: RegistryAuth,
    /// The token server (`Mode::Token`).
    pub tokens: Option<HttpStub>,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How the registry is set up.
#[derive(Clone, Copy, PartialEq)]
pub enum Mode {
    /// Plain HTTP, anonymous.
    Plain,
    /// TLS with htpasswd basic auth.
    TlsBasic,
    /// Plain HTTP with bearer tokens from `token_server`.
    Token,
}

/// A one-route HTTP server on 127.0.0.1: `answer` gets the request's
/// Authorization header and returns status line and JSON body. Counts
/// requests; stopped and joined on drop.
pub struct HttpStub {
    pub port: u16,
    pub requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HttpStub {
    pub fn start(
        answer: impl Fn(Option<&str>) -> (&'static str, String) + Send + 'static,
    ) -> HttpStub {
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

pub fn b64url(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

/// A token server for the registry's `token` auth: answers requests that
/// carry the right basic credentials with a JWT (RS256, signed by openssl
/// with a certificate the registry trusts, `x5c` in the header) granting
/// pull and push on every repository the tests use; anything else gets 401.
pub fn token_server(dir: &Path) -> HttpStub {
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
impl Drop for HttpStub {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a server certificate for 127.0.0.1 signed by it.
pub fn make_certs(dir: &Path) {
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
    pub fn start(mode: Mode) -> Registry {
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
            let t = token_server(dir.path());
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
        // Its access log (one line per request) goes to stdout.
        let log = std::fs::File::create(dir.path().join("access.log")).unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(log)
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
            tokens,
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

    /// Every request the registry answered so far, as `METHOD /path?query`
    /// (from its access log), oldest first.
    pub fn requests(&self) -> Vec<String> {
        let log = std::fs::read_to_string(self.dir.path().join("access.log")).unwrap();
        log.lines()
            .filter_map(|l| {
                let request = l.split('"').nth(1)?;
                let mut words = request.split(' ');
                Some(format!("{} {}", words.next()?, words.next()?))
            })
            .collect()
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// An oci-client that trusts the test CA (TLS mode) or speaks HTTP.
    pub fn client(&self) -> Client {
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
    pub fn push_index(&self, repo: &str, tag: &str, platforms: &[(&str, &str)]) {
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
    pub fn push(&self, img: &TestImage, repo: &str, tag: &str) {
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
