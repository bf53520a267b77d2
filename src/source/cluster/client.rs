//! The Kubernetes API over HTTPS: reqwest's blocking client on the rustls
//! stack the binary already carries (ring provider), authenticated as the
//! kubeconfig or service account says (bearer token, token file read again
//! before each request, basic auth, client certificate, or an exec
//! credential plugin), and only `GET`s of list endpoints.
//!
//! Every request has a deadline (`--timeout`: to connect, and for the whole
//! answer to arrive) and every answer a size bound; what fails is an
//! `ApiError` that says whether the rest of the audit can go on.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::blocking::Client as Http;
use reqwest::header::{ACCEPT, AUTHORIZATION};

use super::kubeconfig::{Exec, Target};

/// Largest answer of a credential plugin.
const MAX_EXEC_OUTPUT: u64 = 1 << 20;
/// An exec token this close to its expiry is fetched again.
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);

/// A request that failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Nothing more can be asked of this server: it cannot be reached or
    /// trusted, or it refused our credentials (401).
    #[error("{0}")]
    Fatal(String),
    /// This request failed (403, 404, 410, 5xx, a stalled, truncated,
    /// oversized or malformed answer); other requests may succeed.
    #[error("{0}")]
    Request(String),
}

/// How long and how much.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// To connect, and for each answer to arrive whole.
    pub timeout: Duration,
    /// Largest answer read.
    pub max_response: u64,
}

/// A bearer token and when it stops being valid.
#[derive(Clone)]
struct Token {
    value: String,
    expires: Option<jiff::Timestamp>,
}

/// An authenticated client of one API server.
pub struct Client {
    http: Http,
    target: Target,
    limits: Limits,
    /// The exec plugin's current token.
    exec_token: Mutex<Option<Token>>,
}

impl Client {
    /// Builds the client; runs the exec credential plugin, if any, once
    /// now (its client certificate, if it returns one, is fixed for the
    /// run; its token is fetched again when it expires).
    pub fn new(target: Target, limits: Limits) -> Result<Client, ApiError> {
        let mut builder = Http::builder()
            .connect_timeout(limits.timeout)
            .timeout(limits.timeout)
            .user_agent(concat!("leakhound/", env!("CARGO_PKG_VERSION")))
            .tls_backend_rustls();
        if let Some(pem) = &target.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                ApiError::Fatal(format!(
                    "the CA certificate of {} is not valid PEM: {}",
                    target.source,
                    chain(&e)
                ))
            })?;
            builder = builder.tls_certs_only(certs);
        }
        if target.insecure {
            builder = builder.danger_accept_invalid_certs(true);
        }
        let mut exec_token = None;
        let mut identity_pem = target
            .credentials
            .client_cert
            .as_ref()
            .map(|(c, k)| [c.as_slice(), b"\n", k.as_slice()].concat());
        if let Some(exec) = &target.credentials.exec {
            let cred = run_exec(exec, limits.timeout)?;
            if let (Some(c), Some(k)) = (cred.cert, cred.key) {
                identity_pem = Some([c.as_bytes(), b"\n", k.as_bytes()].concat());
            }
            exec_token = cred.token;
        }
        if let Some(pem) = identity_pem {
            let id = reqwest::Identity::from_pem(&pem).map_err(|e| {
                ApiError::Fatal(format!(
                    "the client certificate or key of {} is not usable: {}",
                    target.source,
                    chain(&e)
                ))
            })?;
            builder = builder.identity(id);
        }
        let http = builder.build().map_err(|e| {
            ApiError::Fatal(format!(
                "cannot set up HTTPS for {}: {}",
                target.server,
                chain(&e)
            ))
        })?;
        Ok(Client {
            http,
            target,
            limits,
            exec_token: Mutex::new(exec_token),
        })
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The `Authorization` header value, if any.
    fn authorization(&self) -> Result<Option<String>, ApiError> {
        let c = &self.target.credentials;
        if let Some(exec) = &c.exec {
            let mut slot = self.exec_token.lock().expect("exec token lock");
            let stale = slot.as_ref().is_some_and(|t| {
                t.expires.is_some_and(|e| {
                    e.as_second() - (EXPIRY_MARGIN.as_secs() as i64)
                        <= jiff::Timestamp::now().as_second()
                })
            });
            if stale {
                *slot = run_exec(exec, self.limits.timeout)?.token;
            }
            if let Some(t) = slot.as_ref() {
                return Ok(Some(format!("Bearer {}", t.value)));
            }
        }
        if let Some(f) = &c.token_file {
            let token = read_token(f).map_err(ApiError::Fatal)?;
            return Ok(Some(format!("Bearer {token}")));
        }
        if let Some(t) = &c.token {
            return Ok(Some(format!("Bearer {}", t.trim())));
        }
        if let Some((user, password)) = &c.basic {
            use base64::Engine;
            let pair = format!("{user}:{password}");
            return Ok(Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )));
        }
        Ok(None)
    }

    /// GETs `path` (with `query`) and returns the body of a 2xx answer.
    pub fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Vec<u8>, ApiError> {
        let server = &self.target.server;
        let mut url = reqwest::Url::parse(&format!("{server}{path}"))
            .map_err(|e| ApiError::Fatal(format!("server `{server}` is not a URL: {e}")))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let started = Instant::now();
        let mut req = self.http.get(url).header(ACCEPT, "application/json");
        if let Some(auth) = self.authorization()? {
            req = req.header(AUTHORIZATION, auth);
        }
        let resp = req.send().map_err(|e| self.send_error(path, &e))?;
        let status = resp.status();
        let body = self.read_body(path, resp, started)?;
        if status.is_success() {
            return Ok(body);
        }
        let (reason, message) = status_message(&body);
        let said = match (reason, message) {
            (Some(r), Some(m)) => format!("{r}: {m}"),
            (None, Some(m)) => m,
            (Some(r), None) => r,
            (None, None) => String::new(),
        };
        let code = status.as_u16();
        let said = if said.is_empty() {
            format!("HTTP {code}")
        } else {
            format!("HTTP {code}, {said}")
        };
        if code == 401 {
            return Err(ApiError::Fatal(format!(
                "{server} rejected the credentials of {} ({said}); the token or certificate \
                 is wrong or expired",
                self.target.source
            )));
        }
        Err(ApiError::Request(said))
    }

    /// Reads an answer whole within the deadline and the size bound.
    fn read_body(
        &self,
        path: &str,
        mut resp: reqwest::blocking::Response,
        started: Instant,
    ) -> Result<Vec<u8>, ApiError> {
        let max = self.limits.max_response;
        if resp.content_length().is_some_and(|l| l > max) {
            return Err(self.too_large());
        }
        let mut body = Vec::new();
        let mut chunk = vec![0u8; 64 << 10];
        loop {
            // Each read waits at most --timeout (reqwest's per-read
            // deadline); the whole answer too.
            if started.elapsed() > self.limits.timeout {
                return Err(self.stalled(path));
            }
            let n = match resp.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(ApiError::Request(format!(
                        "the answer broke off after {} bytes: {}",
                        body.len(),
                        chain(&e)
                    )));
                }
            };
            if (body.len() + n) as u64 > max {
                return Err(self.too_large());
            }
            body.extend_from_slice(&chunk[..n]);
        }
        Ok(body)
    }

    fn too_large(&self) -> ApiError {
        ApiError::Request(format!(
            "the answer is larger than {} bytes (the response size limit; a smaller page size \
             asks for fewer objects at a time)",
            self.limits.max_response
        ))
    }

    fn stalled(&self, _path: &str) -> ApiError {
        ApiError::Request(format!(
            "no whole answer within {:?} (the request timeout)",
            self.limits.timeout
        ))
    }

    fn send_error(&self, path: &str, e: &reqwest::Error) -> ApiError {
        let server = &self.target.server;
        if e.is_connect() {
            ApiError::Fatal(format!("cannot connect to {server}: {}", chain(e)))
        } else if e.is_timeout() {
            self.stalled(path)
        } else {
            ApiError::Request(format!("request to {server} failed: {}", chain(e)))
        }
    }
}

/// An error and its causes, `a: b: c` (reqwest's own message says little:
/// the TLS or socket cause is further down).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = s.source();
    }
    parts.join(": ")
}

/// `reason` and `message` of a `kind: Status` answer.
fn status_message(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        let text = String::from_utf8_lossy(&body[..body.len().min(200)])
            .trim()
            .to_string();
        return (None, (!text.is_empty()).then_some(text));
    };
    let s = |k: &str| v.get(k).and_then(|m| m.as_str()).map(str::to_string);
    (s("reason"), s("message"))
}

fn read_token(path: &PathBuf) -> Result<String, String> {
    let mut buf = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(1 << 20).read_to_string(&mut buf))
        .map_err(|e| format!("cannot read token file {}: {e}", path.display()))?;
    let t = buf.trim();
    if t.is_empty() {
        return Err(format!("token file {} is empty", path.display()));
    }
    Ok(t.to_string())
}

/// What an exec plugin returned.
struct ExecCredential {
    token: Option<Token>,
    cert: Option<String>,
    key: Option<String>,
}

/// Runs an exec credential plugin non-interactively, within the deadline,
/// and reads its `ExecCredential` from standard output. Its standard error
/// is kept only to explain a failure.
fn run_exec(exec: &Exec, timeout: Duration) -> Result<ExecCredential, ApiError> {
    let fail = |why: String| {
        let hint = exec
            .install_hint
            .as_deref()
            .map(|h| format!(" ({})", h.trim()))
            .unwrap_or_default();
        ApiError::Fatal(format!("credential plugin `{}` {why}{hint}", exec.command))
    };
    let program = match &exec.dir {
        Some(d) if exec.command.contains('/') && !exec.command.starts_with('/') => {
            d.join(&exec.command)
        }
        _ => PathBuf::from(&exec.command),
    };
    let info = serde_json::json!({
        "apiVersion": exec.api_version,
        "kind": "ExecCredential",
        "spec": {"interactive": false},
    });
    let mut child = Command::new(&program)
        .args(&exec.args)
        .envs(exec.env.iter().map(|(k, v)| (k, v)))
        .env("KUBERNETES_EXEC_INFO", info.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("could not be started: {e}")))?;
    let reader = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(r) = r {
                let _ = r.take(MAX_EXEC_OUTPUT).read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err = reader(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if started.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!(
                    "did not answer within {timeout:?} (the request timeout)"
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(fail(format!("could not be waited for: {e}"))),
        }
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if !status.success() {
        let last = String::from_utf8_lossy(&stderr);
        let last = last.trim().lines().last().unwrap_or("").to_string();
        return Err(fail(format!("failed ({status}): {last}")));
    }
    let v: serde_json::Value = serde_json::from_slice(&stdout)
        .map_err(|e| fail(format!("did not print an ExecCredential (JSON): {e}")))?;
    let st = v
        .get("status")
        .ok_or_else(|| fail("printed an ExecCredential without `status`".into()))?;
    let s = |k: &str| {
        st.get(k)
            .and_then(|x| x.as_str())
            .filter(|x| !x.is_empty())
            .map(str::to_string)
    };
    let token = s("token").map(|value| Token {
        value,
        expires: s("expirationTimestamp").and_then(|t| t.parse().ok()),
    });
    let (cert, key) = (s("clientCertificateData"), s("clientKeyData"));
    if token.is_none() && (cert.is_none() || key.is_none()) {
        return Err(fail(
            "returned neither a token nor a client certificate and key".into(),
        ));
    }
    Ok(ExecCredential { token, cert, key })
}
