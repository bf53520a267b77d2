//! Registry pulls: credentials per host (explicit ones, docker's
//! `config.json` and credential helpers), TLS (system roots plus extra CA
//! certificates), plain HTTP for chosen hosts, platform selection, the
//! catalog and tag lists for sweeps.
//!
//! Every request goes through one place, [`Registry::send`]: a per-host
//! token bucket (a request rate shared by every thread of a run), retries
//! of 429/502/503/504 (`Retry-After`, else exponential backoff with
//! jitter), redirects followed by hand so that credentials never reach
//! another origin, and a deadline per answer. Each host's auth challenge is
//! probed once, and bearer tokens are kept per host and scope, shared by
//! every thread (one fetch per scope, renewed once on a 401).
//!
//! The tokio runtime lives here and nowhere else: layer blobs arrive as an
//! async stream, forwarded chunk by chunk over a bounded channel to a
//! blocking `Read` that the (synchronous) tar reader consumes, so a layer
//! is never held whole in memory.

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use futures_util::StreamExt;
use oci_client::Reference;
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use reqwest::{Method, StatusCode, Url};
use tokio::time::Instant;

use super::manifest::{self, Manifest, Platform};
use super::{Image, ImageConfig, ImageError, LayerRef, LayerStore};
use crate::metrics::Metrics;

/// Tries of a request the registry answered "too many requests" (429) or
/// "unavailable" (502/503/504): the first and up to 5 more.
pub const ATTEMPTS: u32 = 6;
/// Without `Retry-After`, waits double from `RETRY_DELAY` up to
/// `MAX_RETRY_DELAY`, plus up to half again of random jitter (capped there
/// too), so that threads rate-limited together do not return together.
const RETRY_DELAY: Duration = Duration::from_millis(500);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(8);
/// The longest `Retry-After` honoured: a registry asking for a longer
/// pause makes the request fail at once, naming the host and the wait.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Redirects followed per request (a blob redirected to a CDN is one).
const MAX_REDIRECTS: usize = 5;

/// How long a registry may keep leakhound waiting when no timeout is
/// given: to connect, for a whole metadata answer (token, manifest, index,
/// config, catalog or tag page), and for a layer download to make progress.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The slowest a layer download may go, averaged over each timeout of
/// waiting for data: below it (a registry that trickles bytes forever) the
/// layer is abandoned and reported. Time the tar reader spends scanning does
/// not count, only time spent waiting on the network.
pub const MIN_LAYER_RATE: f64 = 1024.0;

/// Chunks of a layer in flight between the download and the tar reader.
const CHUNKS_IN_FLIGHT: usize = 16;
/// Largest image config accepted (JSON of a few KiB in practice).
const MAX_CONFIG: usize = 16 << 20;
/// Largest manifest or index read (real ones are a few KiB; an index of
/// every platform of a large image stays far below this). A longer answer
/// is abandoned as it arrives, never held whole.
pub const MAX_MANIFEST: usize = 4 << 20;
/// Largest catalog page or tag list read (a page of 100 names is a few
/// KiB; a longer answer is abandoned as it arrives).
pub const MAX_LIST: usize = 4 << 20;
/// Largest token answer read (a JWT of a few KiB in practice).
pub const MAX_TOKEN: usize = 1 << 20;
/// Largest error answer read for its message.
const MAX_ERROR_BODY: usize = 64 << 10;

/// User name and password given explicitly (flags, environment, config).
#[derive(Clone, Debug)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// How to reach registries.
#[derive(Clone, Default)]
pub struct RegistryOptions {
    /// Plain HTTP to every host.
    pub insecure: bool,
    /// Plain HTTP to these hosts (`host:port`) only.
    pub insecure_hosts: Vec<String>,
    /// Extra trusted CA certificates (PEM files).
    pub ca_certs: Vec<PathBuf>,
    /// Credentials by host (`host:port`, as [`host_key`] spells it); for
    /// these hosts they win over docker's config, and no other host ever
    /// sees them.
    pub credentials: HashMap<String, Credentials>,
    /// Docker's config directory (`$DOCKER_CONFIG`, else `~/.docker`).
    pub docker_config: Option<PathBuf>,
    /// Connect and answer deadline; `DEFAULT_TIMEOUT` when unset.
    pub timeout: Option<Duration>,
    /// Requests per second to each host (tokens, lists, manifests, blobs),
    /// shared by every thread; no limit when unset.
    pub max_requests_per_second: Option<f64>,
    /// Requests by status, retries, layers and bytes fetched.
    pub metrics: Option<Arc<Metrics>>,
}

impl std::fmt::Debug for RegistryOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the passwords.
        f.debug_struct("RegistryOptions")
            .field("insecure", &self.insecure)
            .field("insecure_hosts", &self.insecure_hosts)
            .field("ca_certs", &self.ca_certs)
            .field("credentials_for", &self.credentials.keys())
            .field("timeout", &self.timeout)
            .field("max_requests_per_second", &self.max_requests_per_second)
            .finish()
    }
}

/// The name a registry host is known by: lowercase, and Docker Hub's
/// names folded into the one its API answers on (`index.docker.io`).
pub fn host_key(host: &str) -> String {
    let h = host.trim().trim_end_matches('/').to_ascii_lowercase();
    match h.as_str() {
        "docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "index.docker.io".to_string()
        }
        _ => h,
    }
}

/// The registry host of an image reference (`alpine` is Docker Hub's).
pub fn reference_host(reference: &str) -> Result<String, ImageError> {
    Ok(host_key(Registry::parse_ref(reference)?.resolve_registry()))
}

/// A registry client with its own runtime.
pub struct Registry {
    rt: tokio::runtime::Runtime,
    /// Follows no redirect on its own (`send` does, dropping credentials
    /// when the origin changes).
    http: reqwest::Client,
    opts: RegistryOptions,
    timeout: Duration,
    auths: Mutex<HashMap<String, RegistryAuth>>,
    /// Each host's challenge to `GET /v2/`, probed once.
    challenges: Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Option<BearerChallenge>>>>>,
    /// Bearer tokens by host and scope, one fetch at a time per slot.
    tokens: Mutex<HashMap<(String, String), TokenSlot>>,
    limiter: Option<Limiter>,
}

type TokenSlot = Arc<tokio::sync::Mutex<Option<String>>>;

/// What a reference resolved to.
#[derive(Debug)]
pub struct Resolution {
    /// Digest of the manifest or index the reference named.
    pub digest: String,
    /// The reference named an index (the images are the platforms chosen).
    pub index: bool,
    pub images: Vec<Image>,
}

/// Why a registry request failed.
#[derive(Debug)]
enum CallError {
    /// The registry's answer, or the transport's error.
    Oci(OciDistributionError),
    /// No (whole) answer from `host` within the deadline.
    Timeout { host: String, after: Duration },
    /// `host` asked (`Retry-After`) for a longer pause than we wait.
    WaitTooLong { host: String, wait: Duration },
}

impl From<OciDistributionError> for CallError {
    fn from(e: OciDistributionError) -> Self {
        CallError::Oci(e)
    }
}

impl From<reqwest::Error> for CallError {
    fn from(e: reqwest::Error) -> Self {
        CallError::Oci(e.into())
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Oci(e) => e.fmt(f),
            CallError::Timeout { host, after } => write!(
                f,
                "{host}: no complete answer within {}; abandoned",
                seconds(*after)
            ),
            CallError::WaitTooLong { host, wait } => write!(
                f,
                "{host} asks to wait {} before another request (Retry-After), more than the {} \
                 leakhound waits; abandoned",
                seconds(*wait),
                seconds(MAX_RETRY_AFTER)
            ),
        }
    }
}

/// `2 s`, `0.5 s`: a duration as the user gave it.
/// A header's value, when it is text.
fn header(
    headers: &reqwest::header::HeaderMap,
    name: impl reqwest::header::AsHeaderName,
) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn seconds(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

fn reg_err(image: &str, e: impl std::fmt::Display) -> ImageError {
    ImageError::Registry {
        image: image.to_string(),
        message: e.to_string(),
    }
}

/// A failed request for `image` (`what`: the manifest, a layer...), typed
/// as a timeout when it is one.
fn call_err(image: &str, what: &str, e: CallError) -> ImageError {
    let message = format!("{what}: {e}");
    match e {
        CallError::Timeout { .. } => ImageError::Timeout {
            image: image.to_string(),
            message,
        },
        _ => reg_err(image, message),
    }
}

/// An answer whose headers arrived, and the deadline for the rest of it.
struct Sent {
    res: reqwest::Response,
    deadline: Instant,
    host: String,
}

/// Requests per second per host: a token bucket of depth one (requests
/// evenly spaced), shared by every thread. A request reserves its slot and
/// sleeps until then, so waiting threads are served in arrival order.
struct Limiter {
    interval: Duration,
    next: Mutex<HashMap<String, Instant>>,
}

impl Limiter {
    fn new(per_second: f64) -> Option<Limiter> {
        (per_second > 0.0 && per_second.is_finite()).then(|| Limiter {
            interval: Duration::from_secs_f64(1.0 / per_second),
            next: Mutex::new(HashMap::new()),
        })
    }

    async fn acquire(&self, host: &str) {
        let at = {
            let mut next = self.next.lock().expect("rate limiter lock");
            let now = Instant::now();
            let slot = next.entry(host.to_string()).or_insert(now);
            let at = (*slot).max(now);
            *slot = at + self.interval;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

/// `host:port` of a URL, as errors and the rate limiter name it.
fn host_of(url: &Url) -> String {
    let host = url.host_str().unwrap_or("?");
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    }
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// The pause a `Retry-After` value asks for: seconds, or an HTTP-date
/// (`now` is the current time in seconds since the epoch; a date in the
/// past asks for none). `None` when the value is neither.
pub fn retry_after(value: &str, now: i64) -> Option<Duration> {
    let v = value.trim();
    if let Ok(s) = v.parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    let when = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(v)
        .ok()?;
    Some(Duration::from_secs(
        u64::try_from(when.as_second() - now).unwrap_or(0),
    ))
}

/// The pause before try `attempt + 1` when the registry named none:
/// 0.5 s doubled per try, plus up to half again of jitter, at most 8 s.
fn backoff(attempt: u32, jitter: f64) -> Duration {
    let base = RETRY_DELAY.saturating_mul(1 << attempt.saturating_sub(1).min(8));
    base.mul_f64(1.0 + jitter.clamp(0.0, 1.0) / 2.0)
        .min(MAX_RETRY_DELAY)
}

/// A number in [0, 1) for jitter (std's hasher keys are random).
fn random_unit() -> f64 {
    use std::hash::BuildHasher;
    let x = std::collections::hash_map::RandomState::new().hash_one(0u8);
    (x >> 11) as f64 / (1u64 << 53) as f64
}

fn authorize(req: reqwest::RequestBuilder, auth: &RegistryAuth) -> reqwest::RequestBuilder {
    match auth {
        RegistryAuth::Bearer(t) => req.bearer_auth(t),
        RegistryAuth::Basic(user, password) => req.basic_auth(user, Some(password)),
        RegistryAuth::Anonymous => req,
    }
}

impl Registry {
    pub fn new(opts: RegistryOptions) -> Result<Registry, ImageError> {
        // reqwest is built without a default TLS provider (ring instead of
        // aws-lc, which needs cmake and a long C build); install ring once.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let timeout = opts.timeout.unwrap_or(DEFAULT_TIMEOUT);
        // No reqwest read timeout: it also fires when the tar reader is slow
        // to ask for the next chunk (a layer being scanned), not only when
        // the network is; `send` and `open` set deadlines on waiting instead.
        let mut http = reqwest::Client::builder()
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none());
        for path in &opts.ca_certs {
            let what = "a CA certificate";
            let data = std::fs::read(path).map_err(|source| ImageError::Io {
                image: what.into(),
                what: path.display().to_string(),
                source,
            })?;
            for cert in reqwest::Certificate::from_pem_bundle(&data)
                .map_err(|e| reg_err(what, format!("{}: {e}", path.display())))?
            {
                http = http.add_root_certificate(cert);
            }
        }
        let http = http.build().map_err(|e| reg_err("registry client", e))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|source| ImageError::Io {
                image: "registry client".into(),
                what: "the network runtime".into(),
                source,
            })?;
        let limiter = opts.max_requests_per_second.and_then(Limiter::new);
        Ok(Registry {
            rt,
            http,
            timeout,
            limiter,
            opts,
            auths: Mutex::new(HashMap::new()),
            challenges: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        })
    }

    /// Runs requests on the runtime and waits for them (every request in
    /// them has its own deadline).
    fn call<T>(&self, request: impl Future<Output = Result<T, CallError>>) -> Result<T, CallError> {
        self.rt.block_on(request)
    }

    /// The one way a request leaves: rate-limited per host, redirects
    /// followed by hand (`auth` is sent only to `url`'s origin, never to a
    /// CDN a blob is redirected to), 429/502/503/504 tried again after the
    /// pause `Retry-After` asks for (at most `MAX_RETRY_AFTER`) or a backoff,
    /// `ATTEMPTS` tries in all. The headers must arrive within the timeout;
    /// `Sent::deadline` is the one for the body.
    async fn send(
        &self,
        method: Method,
        url: &str,
        accept: Option<&str>,
        auth: &RegistryAuth,
    ) -> Result<Sent, CallError> {
        let first = Url::parse(url).map_err(|e| {
            OciDistributionError::GenericError(Some(format!("{url}: not a URL: {e}")))
        })?;
        let mut attempt = 1;
        loop {
            let (mut target, mut method_now, mut hops) = (first.clone(), method.clone(), 0);
            let sent = loop {
                let host = host_of(&target);
                if let Some(l) = &self.limiter {
                    l.acquire(&host).await;
                }
                let mut req = self.http.request(method_now.clone(), target.clone());
                if let Some(a) = accept {
                    req = req.header(reqwest::header::ACCEPT, a);
                }
                if same_origin(&target, &first) {
                    req = authorize(req, auth);
                }
                let deadline = Instant::now() + self.timeout;
                let res = match tokio::time::timeout_at(deadline, req.send()).await {
                    Err(_) => {
                        self.count(|m| m.registry_request(None));
                        return Err(CallError::Timeout {
                            host,
                            after: self.timeout,
                        });
                    }
                    Ok(Err(e)) => {
                        self.count(|m| m.registry_request(None));
                        return Err(e.into());
                    }
                    Ok(Ok(res)) => res,
                };
                let status = res.status();
                self.count(|m| m.registry_request(Some(status.as_u16())));
                let location = header(res.headers(), reqwest::header::LOCATION)
                    .and_then(|l| target.join(l).ok());
                match location {
                    Some(next) if status.is_redirection() && hops < MAX_REDIRECTS => {
                        hops += 1;
                        tracing::debug!(from = %host, to = %host_of(&next), "redirected");
                        if status == StatusCode::SEE_OTHER && method_now != Method::HEAD {
                            method_now = Method::GET;
                        }
                        target = next;
                    }
                    _ => {
                        break Sent {
                            res,
                            deadline,
                            host,
                        };
                    }
                }
            };
            let status = sent.res.status().as_u16();
            if !matches!(status, 429 | 502 | 503 | 504) || attempt >= ATTEMPTS {
                return Ok(sent);
            }
            let asked = header(sent.res.headers(), reqwest::header::RETRY_AFTER)
                .and_then(|v| retry_after(v, jiff::Timestamp::now().as_second()));
            let wait = match asked {
                Some(w) if w > MAX_RETRY_AFTER => {
                    return Err(CallError::WaitTooLong {
                        host: sent.host,
                        wait: w,
                    });
                }
                Some(w) => w,
                None => backoff(attempt, random_unit()),
            };
            tracing::debug!(attempt, status, host = %sent.host, wait = ?wait, "registry busy, trying again");
            drop(sent);
            self.count(|m| m.registry_retry());
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// `send`, then the whole body, at most `cap` bytes, within the
    /// answer's deadline.
    async fn read(
        &self,
        sent: Sent,
        cap: usize,
        what: &str,
    ) -> Result<(StatusCode, reqwest::header::HeaderMap, Vec<u8>, String), CallError> {
        let (status, headers, url) = (
            sent.res.status(),
            sent.res.headers().clone(),
            sent.res.url().to_string(),
        );
        let body = tokio::time::timeout_at(sent.deadline, read_capped(sent.res, cap, what))
            .await
            .map_err(|_| CallError::Timeout {
                host: sent.host,
                after: self.timeout,
            })??;
        Ok((status, headers, body, url))
    }

    fn count(&self, f: impl FnOnce(&Metrics)) {
        if let Some(m) = &self.opts.metrics {
            f(m);
        }
    }

    /// `host`'s answer to `GET /v2/`, asked once per run: the bearer
    /// challenge, or `None` (basic credentials or none wanted).
    async fn challenge(&self, host: &str) -> Result<Option<BearerChallenge>, CallError> {
        let cell = self
            .challenges
            .lock()
            .expect("challenge cache lock")
            .entry(host.to_string())
            .or_default()
            .clone();
        cell.get_or_try_init(|| async {
            let url = format!("{}://{host}/v2/", self.scheme(host));
            let sent = self
                .send(Method::GET, &url, None, &RegistryAuth::Anonymous)
                .await?;
            let status = sent.res.status();
            let challenge = header(sent.res.headers(), reqwest::header::WWW_AUTHENTICATE)
                .and_then(BearerChallenge::parse);
            if matches!(status.as_u16(), 429 | 502 | 503 | 504) {
                // Still busy after every try: an error, not remembered.
                let (status, _, body, url) = self.read(sent, MAX_ERROR_BODY, "answer").await?;
                answer_error(status, &body, &url)?;
            }
            Ok::<_, CallError>(challenge)
        })
        .await
        .cloned()
    }

    /// How to authorize a request to `host` for `scope`: the bearer token
    /// of the challenge (`hint`, from a 401, else the host's), kept per
    /// host and scope; renewed when it is `failed` (it got a 401), unless
    /// another thread renewed it already. Without a bearer challenge, the
    /// credentials themselves (basic) or none.
    async fn authz(
        &self,
        host: &str,
        scope: &str,
        creds: &RegistryAuth,
        failed: Option<&str>,
        hint: Option<BearerChallenge>,
    ) -> Result<RegistryAuth, CallError> {
        if let RegistryAuth::Bearer(_) = creds {
            return Ok(creds.clone());
        }
        let challenge = match hint {
            Some(c) => Some(c),
            None => self.challenge(host).await?,
        };
        let Some(challenge) = challenge else {
            return Ok(creds.clone());
        };
        let slot = self
            .tokens
            .lock()
            .expect("token cache lock")
            .entry((host.to_string(), scope.to_string()))
            .or_default()
            .clone();
        let mut token = slot.lock().await;
        if let Some(t) = token.as_ref()
            && failed != Some(t.as_str())
        {
            return Ok(RegistryAuth::Bearer(t.clone()));
        }
        let t = self.fetch_token(&challenge, scope, creds).await?;
        *token = Some(t.clone());
        Ok(RegistryAuth::Bearer(t))
    }

    /// A bearer token for `scope` from the challenge's realm, bought with
    /// `creds` (sent to the realm only), read with a size cap.
    async fn fetch_token(
        &self,
        challenge: &BearerChallenge,
        scope: &str,
        creds: &RegistryAuth,
    ) -> Result<String, CallError> {
        let mut url = Url::parse(&challenge.realm).map_err(|e| {
            OciDistributionError::AuthenticationFailure(format!(
                "the token realm `{}` is not a URL: {e}",
                challenge.realm
            ))
        })?;
        url.query_pairs_mut().append_pair("scope", scope);
        if let Some(service) = &challenge.service {
            url.query_pairs_mut().append_pair("service", service);
        }
        let sent = self.send(Method::GET, url.as_str(), None, creds).await?;
        let (status, _, body, _) = self.read(sent, MAX_TOKEN, "token").await?;
        if !status.is_success() {
            return Err(OciDistributionError::AuthenticationFailure(
                String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned(),
            )
            .into());
        }
        #[derive(serde::Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let t: Token = serde_json::from_slice(&body)
            .map_err(|e| OciDistributionError::RegistryTokenDecodeError(e.to_string()))?;
        t.token.or(t.access_token).ok_or_else(|| {
            OciDistributionError::RegistryTokenDecodeError("the answer holds no token".into())
                .into()
        })
    }

    /// A request to `host` for `scope` with its authorization, once more
    /// with a renewed token after a 401.
    async fn authorized(
        &self,
        host: &str,
        scope: &str,
        creds: &RegistryAuth,
        method: Method,
        url: &str,
        accept: Option<&str>,
    ) -> Result<Sent, CallError> {
        let (mut failed, mut hint) = (None, None);
        loop {
            let auth = self
                .authz(host, scope, creds, failed.as_deref(), hint.take())
                .await?;
            let sent = self.send(method.clone(), url, accept, &auth).await?;
            if sent.res.status() != StatusCode::UNAUTHORIZED || failed.is_some() {
                return Ok(sent);
            }
            let challenge = header(sent.res.headers(), reqwest::header::WWW_AUTHENTICATE)
                .and_then(BearerChallenge::parse);
            match (&auth, challenge) {
                (RegistryAuth::Bearer(t), c) => {
                    failed = Some(t.clone());
                    hint = c;
                }
                // A host whose `/v2/` wanted no token but this path does.
                (_, Some(c)) => {
                    failed = Some(String::new());
                    hint = Some(c);
                }
                _ => return Ok(sent),
            }
        }
    }

    /// Credentials for `host`: explicit ones for that host, else docker's
    /// config (a credential helper, then `auths`), else anonymous.
    fn auth_for(&self, host: &str) -> Result<RegistryAuth, ImageError> {
        if let Some(a) = self.auths.lock().expect("auth cache lock").get(host) {
            return Ok(a.clone());
        }
        let auth = match self.opts.credentials.get(&host_key(host)) {
            Some(c) => RegistryAuth::Basic(c.username.clone(), c.password.clone()),
            None => docker_config_auth(self.opts.docker_config.as_deref(), host)?,
        };
        self.auths
            .lock()
            .expect("auth cache lock")
            .insert(host.to_string(), auth.clone());
        Ok(auth)
    }

    fn parse_ref(reference: &str) -> Result<Reference, ImageError> {
        reference
            .parse::<Reference>()
            .map_err(|e| ImageError::invalid(reference, format!("not an image reference: {e}")))
    }

    /// Resolves a reference to the images to scan (one per platform asked).
    pub fn resolve(
        &self,
        reference: &str,
        platform: &Platform,
        all: bool,
    ) -> Result<Vec<Image>, ImageError> {
        self.resolve_top(reference, platform, all).map(|r| r.images)
    }

    /// `host/team/app`: an image's `repository` (part of fingerprints) for
    /// a reference, as `resolve` names it.
    pub fn repository(reference: &str) -> Result<String, ImageError> {
        let r = Self::parse_ref(reference)?;
        Ok(format!("{}/{}", r.registry(), r.repository()))
    }

    /// The digest of the manifest or index `reference` names, from the
    /// registry's `Docker-Content-Digest` answer to a HEAD request (a
    /// reference by digest needs no request); `None` when the registry sends
    /// no such header. A HEAD carries no body, and Docker Hub does not count
    /// it against its pull limit: a sweep's cache (`cache::resolve`) asks
    /// this first and fetches nothing more for a digest it knows.
    pub fn manifest_digest(&self, reference: &str) -> Result<Option<String>, ImageError> {
        let r = Self::parse_ref(reference)?;
        if let Some(d) = r.digest() {
            return Ok(Some(d.to_string()));
        }
        let auth = self.auth_for(r.resolve_registry())?;
        self.call(self.manifest_head(&r, &auth))
            .map_err(|e| call_err(reference, "manifest", e))
    }

    /// The layers (digest, declared size) of the images `reference` names
    /// for `platform` (or every platform, `all`), from manifests alone: no
    /// config or layer is fetched. For shard plans (`plan`).
    pub fn layer_sizes(
        &self,
        reference: &str,
        platform: &Platform,
        all: bool,
    ) -> Result<Vec<(String, u64)>, ImageError> {
        let r = Self::parse_ref(reference)?;
        let auth = self.auth_for(r.resolve_registry())?;
        let (data, _) = self
            .call(self.manifest(&r, &auth))
            .map_err(|e| call_err(reference, "manifest", e))?;
        let size = |l: &manifest::Descriptor| (l.digest.clone(), l.size.max(0) as u64);
        let manifests = match manifest::parse_manifest(reference, None, &data)? {
            Manifest::Image { layers, .. } => return Ok(layers.iter().map(size).collect()),
            Manifest::Index { manifests } => manifests,
        };
        let mut out = Vec::new();
        for d in manifest::select_platforms(reference, &manifests, platform, all)? {
            let pr = Reference::with_digest(
                r.registry().to_string(),
                r.repository().to_string(),
                d.digest.clone(),
            );
            let what = format!("manifest {}", d.digest);
            let (data, _) = self
                .call(self.manifest(&pr, &auth))
                .map_err(|e| call_err(reference, &what, e))?;
            match manifest::parse_manifest(reference, Some(&d.media_type), &data)? {
                Manifest::Image { layers, .. } => out.extend(layers.iter().map(size)),
                Manifest::Index { .. } => {
                    return Err(ImageError::invalid(
                        reference,
                        "an index inside an index is not supported",
                    ));
                }
            }
        }
        Ok(out)
    }

    /// `resolve`, with the digest of the manifest or index the reference
    /// named.
    pub fn resolve_top(
        &self,
        reference: &str,
        platform: &Platform,
        all: bool,
    ) -> Result<Resolution, ImageError> {
        let r = Self::parse_ref(reference)?;
        let auth = self.auth_for(r.resolve_registry())?;
        let (data, digest) = self
            .call(self.manifest(&r, &auth))
            .map_err(|e| call_err(reference, "manifest", e))?;
        let repository = format!("{}/{}", r.registry(), r.repository());
        match manifest::parse_manifest(reference, None, &data)? {
            Manifest::Image { config, layers } => Ok(Resolution {
                digest: digest.clone(),
                index: false,
                images: vec![self.image(
                    reference,
                    &repository,
                    &r,
                    digest,
                    &config,
                    &layers,
                    &auth,
                )?],
            }),
            Manifest::Index { manifests } => {
                let mut out = Vec::new();
                for d in manifest::select_platforms(reference, &manifests, platform, all)? {
                    let name = match (&d.platform, all) {
                        (Some(p), true) => format!("{reference} ({p})"),
                        _ => reference.to_string(),
                    };
                    let pr = Reference::with_digest(
                        r.registry().to_string(),
                        r.repository().to_string(),
                        d.digest.clone(),
                    );
                    let (data, digest) = self
                        .call(self.manifest(&pr, &auth))
                        .map_err(|e| call_err(&name, &format!("manifest {}", d.digest), e))?;
                    match manifest::parse_manifest(&name, Some(&d.media_type), &data)? {
                        Manifest::Image { config, layers } => out.push(self.image(
                            &name,
                            &repository,
                            &r,
                            digest,
                            &config,
                            &layers,
                            &auth,
                        )?),
                        Manifest::Index { .. } => {
                            return Err(ImageError::invalid(
                                &name,
                                "an index inside an index is not supported",
                            ));
                        }
                    }
                }
                Ok(Resolution {
                    digest,
                    index: true,
                    images: out,
                })
            }
        }
    }

    /// HEAD of a manifest: the digest the registry names in
    /// `Docker-Content-Digest` (`sha256:` and 64 hex digits), if any.
    async fn manifest_head(
        &self,
        r: &Reference,
        auth: &RegistryAuth,
    ) -> Result<Option<String>, CallError> {
        let sent = self.manifest_request(r, auth, Method::HEAD).await?;
        let status = sent.res.status();
        answer_error(status, &[], sent.res.url().as_str())?;
        let digest = header(sent.res.headers(), "docker-content-digest")
            .filter(|d| {
                d.strip_prefix("sha256:").is_some_and(|h| {
                    h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                })
            })
            .map(str::to_string);
        Ok(digest)
    }

    /// A manifest or index and its digest, read with a size cap: the body
    /// is abandoned once past `MAX_MANIFEST` (a hostile registry once made
    /// a whole-body read grow to 5 GB).
    async fn manifest(
        &self,
        r: &Reference,
        auth: &RegistryAuth,
    ) -> Result<(Vec<u8>, String), CallError> {
        let sent = self.manifest_request(r, auth, Method::GET).await?;
        let (status, headers, body, url) = self.read(sent, MAX_MANIFEST, "manifest").await?;
        let digest_header = header(&headers, "docker-content-digest").map(str::to_string);
        answer_error(status, &body, &url)?;
        let digest = super::sha256_digest(&body);
        for (what, want) in [
            ("the reference's", r.digest()),
            ("the registry's", digest_header.as_deref()),
        ] {
            if let Some(want) = want
                && want.starts_with("sha256:")
                && want != digest
            {
                return Err(OciDistributionError::DigestError(
                    oci_client::errors::DigestError::VerificationError {
                        expected: want.to_string(),
                        actual: format!("{digest} (not {what} digest)"),
                    },
                )
                .into());
            }
        }
        Ok((body, digest))
    }

    /// A request for `r`'s manifest with the same Accept for HEAD and GET
    /// (a registry may convert between formats by Accept), with the
    /// repository's pull token.
    async fn manifest_request(
        &self,
        r: &Reference,
        auth: &RegistryAuth,
        method: Method,
    ) -> Result<Sent, CallError> {
        let host = r.resolve_registry();
        let tag = r.digest().or(r.tag()).unwrap_or("latest");
        let url = format!(
            "{}://{host}/v2/{}/manifests/{tag}",
            self.scheme(host),
            r.repository()
        );
        let scope = format!("repository:{}:pull", r.repository());
        let accept = manifest::ACCEPTED.join(", ");
        self.authorized(host, &scope, auth, method, &url, Some(&accept))
            .await
    }

    /// A blob of `r`'s repository: the answer, its headers checked (a
    /// redirect to a CDN followed without the registry's credentials).
    async fn blob(
        &self,
        r: &Reference,
        auth: &RegistryAuth,
        digest: &str,
    ) -> Result<Sent, CallError> {
        let host = r.resolve_registry();
        let url = format!(
            "{}://{host}/v2/{}/blobs/{digest}",
            self.scheme(host),
            r.repository()
        );
        let scope = format!("repository:{}:pull", r.repository());
        let sent = self
            .authorized(host, &scope, auth, Method::GET, &url, None)
            .await?;
        if !sent.res.status().is_success() {
            let (status, _, body, url) = self.read(sent, MAX_ERROR_BODY, "error answer").await?;
            answer_error(status, &body, &url)?;
            return Err(OciDistributionError::ServerError {
                code: status.as_u16(),
                url,
                message: "not a blob".into(),
            }
            .into());
        }
        Ok(sent)
    }

    #[allow(clippy::too_many_arguments)]
    fn image(
        &self,
        name: &str,
        repository: &str,
        r: &Reference,
        digest: String,
        config: &manifest::Descriptor,
        layers: &[manifest::Descriptor],
        auth: &RegistryAuth,
    ) -> Result<Image, ImageError> {
        if config.size as usize > MAX_CONFIG {
            return Err(ImageError::invalid(
                name,
                format!("config is {} bytes, too large", config.size),
            ));
        }
        let what = format!("config {}", config.digest);
        let data = self
            .call(async {
                let sent = self.blob(r, auth, &config.digest).await?;
                // At most the declared size.
                let (_, _, data, _) = self.read(sent, config.size as usize, "blob").await?;
                Ok::<_, CallError>(data)
            })
            .map_err(|e| call_err(name, &what, e))?;
        let got = super::sha256_digest(&data);
        if config.digest.starts_with("sha256:") && got != config.digest {
            return Err(reg_err(
                name,
                format!("{what}: the registry sent bytes whose digest is {got}"),
            ));
        }
        let pullable = format!("{repository}@{digest}");
        Ok(Image {
            reference: name.to_string(),
            repository: repository.to_string(),
            digest,
            config_digest: config.digest.clone(),
            config: ImageConfig::parse(name, &data)?,
            layers: layers
                .iter()
                .map(|l| LayerRef {
                    digest: l.digest.clone(),
                    media_type: l.media_type.clone(),
                    location: pullable.clone(),
                })
                .collect(),
        })
    }

    /// Repositories of a registry (`/v2/_catalog`, every page), those under
    /// `prefix` only.
    pub fn catalog(&self, host: &str, prefix: &str) -> Result<Vec<String>, ImageError> {
        let auth = self.auth_for(host)?;
        let mut out = Vec::new();
        let mut last: Option<String> = None;
        loop {
            let mut url = format!("{}://{host}/v2/_catalog?n=100", self.scheme(host));
            if let Some(l) = &last {
                url.push_str("&last=");
                url.push_str(&query_escape(l));
            }
            let page: CatalogPage = self
                .call(self.list_page(host, "registry:catalog:*", &auth, &url))
                .map_err(|e| call_err(host, "catalog", e))?;
            let n = page.repositories.len();
            last = page.repositories.last().cloned();
            out.extend(page.repositories.into_iter().filter(|r| {
                prefix.is_empty()
                    || r == prefix
                    || r.starts_with(&format!("{}/", prefix.trim_end_matches('/')))
            }));
            if n < 100 {
                break;
            }
        }
        Ok(out)
    }

    /// Every tag of `host/repository` (every page).
    pub fn tags(&self, host: &str, repository: &str) -> Result<Vec<String>, ImageError> {
        let name = format!("{host}/{repository}");
        let auth = self.auth_for(host)?;
        let scope = format!("repository:{repository}:pull");
        let mut out: Vec<String> = Vec::new();
        loop {
            let mut url = format!(
                "{}://{host}/v2/{repository}/tags/list?n=100",
                self.scheme(host)
            );
            if let Some(l) = out.last() {
                url.push_str("&last=");
                url.push_str(&query_escape(l));
            }
            let page: TagsPage = self
                .call(self.list_page(host, &scope, &auth, &url))
                .map_err(|e| call_err(&name, "tags", e))?;
            let tags = page.tags.unwrap_or_default();
            let n = tags.len();
            out.extend(tags);
            if n < 100 {
                break;
            }
        }
        Ok(out)
    }

    /// `http` for hosts named insecure (or all), else `https`.
    fn scheme(&self, host: &str) -> &'static str {
        let key = host_key(host);
        if self.opts.insecure || self.opts.insecure_hosts.iter().any(|h| host_key(h) == key) {
            "http"
        } else {
            "https"
        }
    }

    /// One page of a list (catalog, tags) at `url`, as JSON, read with a
    /// size cap (`MAX_LIST`).
    async fn list_page<T: serde::de::DeserializeOwned>(
        &self,
        host: &str,
        scope: &str,
        auth: &RegistryAuth,
        url: &str,
    ) -> Result<T, CallError> {
        let sent = self
            .authorized(host, scope, auth, Method::GET, url, None)
            .await?;
        let (status, _, body, _) = self.read(sent, MAX_LIST, "list page").await?;
        answer_error(status, &body, url)?;
        serde_json::from_slice(&body).map_err(|e| {
            OciDistributionError::GenericError(Some(format!("{url}: not a list: {e}"))).into()
        })
    }
}

/// `GET /v2/_catalog`
#[derive(serde::Deserialize)]
struct CatalogPage {
    #[serde(default)]
    repositories: Vec<String>,
}

/// `GET /v2/NAME/tags/list` (`tags` is `null` for a repository without tags)
#[derive(serde::Deserialize)]
struct TagsPage {
    tags: Option<Vec<String>>,
}

/// `WWW-Authenticate: Bearer realm="...",service="..."`
#[derive(Clone, Debug)]
struct BearerChallenge {
    realm: String,
    service: Option<String>,
}

impl BearerChallenge {
    fn parse(header: &str) -> Option<BearerChallenge> {
        let (scheme, params) = header.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let (mut realm, mut service) = (None, None);
        let mut rest = params.trim();
        while !rest.is_empty() {
            let (key, after) = rest.split_once('=')?;
            let (value, after) = match after.strip_prefix('"') {
                Some(quoted) => {
                    let end = quoted.find('"')?;
                    (&quoted[..end], &quoted[end + 1..])
                }
                None => after.split_once(',').unwrap_or((after, "")),
            };
            match key.trim().to_ascii_lowercase().as_str() {
                "realm" => realm = Some(value.to_string()),
                "service" => service = Some(value.to_string()),
                _ => {}
            }
            rest = after.trim_start_matches([',', ' ']);
        }
        Some(BearerChallenge {
            realm: realm?,
            service,
        })
    }
}

/// `s` escaped for a URL query value.
fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A metadata answer's body (manifest, token, list page), abandoned once
/// past `cap` bytes as it arrives: a hostile registry once made a
/// whole-body read grow to 5 GB.
async fn read_capped(
    mut res: reqwest::Response,
    cap: usize,
    what: &str,
) -> Result<Vec<u8>, OciDistributionError> {
    let url = res.url().to_string();
    let too_large = || {
        OciDistributionError::GenericError(Some(if what == "blob" {
            format!(
                "{url}: the blob is longer than the {cap} bytes its manifest declares; cut there"
            )
        } else {
            format!("{url}: the answer is larger than {cap} bytes, more than any {what}; abandoned")
        }))
    };
    if res.content_length().is_some_and(|n| n > cap as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await? {
        if body.len() + chunk.len() > cap {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

impl LayerStore for Registry {
    fn open(&self, image: &Image, layer: &LayerRef) -> Result<Box<dyn Read + Send>, ImageError> {
        let r = Self::parse_ref(&layer.location)?;
        let auth = self.auth_for(r.resolve_registry())?;
        let what = format!("layer {}", layer.digest);
        let sent = self
            .call(self.blob(&r, &auth, &layer.digest))
            .map_err(|e| call_err(&image.reference, &what, e))?;
        self.count(|m| m.layer_fetched());
        let metrics = self.opts.metrics.clone();
        let mut stream = sent.res.bytes_stream();
        let (tx, rx) = tokio::sync::mpsc::channel(CHUNKS_IN_FLIGHT);
        let timeout = self.timeout;
        self.rt.spawn(async move {
            // Bytes a window of `timeout` spent waiting must bring; only the
            // waiting counts (not time the reader spends on earlier chunks).
            let floor = (MIN_LAYER_RATE * timeout.as_secs_f64()) as usize;
            let (mut waited, mut got) = (Duration::ZERO, 0usize);
            loop {
                let asked = std::time::Instant::now();
                let next =
                    tokio::time::timeout(timeout.saturating_sub(waited), stream.next()).await;
                waited += asked.elapsed();
                let chunk = match next {
                    Ok(None) => break,
                    Ok(Some(chunk)) => chunk.map_err(io::Error::other),
                    Err(_) => Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "download stalled: {got} bytes in {} of waiting, less than {} bytes/s; \
                             layer abandoned",
                            seconds(waited),
                            MIN_LAYER_RATE
                        ),
                    )),
                };
                if let Ok(c) = &chunk {
                    if let Some(m) = &metrics {
                        m.bytes_fetched(c.len() as u64);
                    }
                    got += c.len();
                    if got >= floor {
                        (waited, got) = (Duration::ZERO, 0);
                    }
                }
                let end = chunk.is_err();
                if tx.send(chunk).await.is_err() || end {
                    break;
                }
            }
        });
        Ok(Box::new(ChunkReader {
            rx,
            chunk: bytes::Bytes::new(),
            failed: None,
        }))
    }
}

/// A registry's error answer as oci-client reports it: 401 unauthorized, a
/// 4xx with the OCI error envelope, else the status and the body's start.
fn answer_error(
    status: reqwest::StatusCode,
    body: &[u8],
    url: &str,
) -> Result<(), OciDistributionError> {
    let start = || String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned();
    match status {
        s if s.is_success() => Ok(()),
        reqwest::StatusCode::UNAUTHORIZED => Err(OciDistributionError::UnauthorizedError {
            url: url.to_string(),
        }),
        s if s.is_client_error() => Err(
            match serde_json::from_slice::<oci_client::errors::OciEnvelope>(body) {
                Ok(envelope) => OciDistributionError::RegistryError {
                    envelope,
                    url: url.to_string(),
                },
                Err(_) => OciDistributionError::ServerError {
                    code: s.as_u16(),
                    url: url.to_string(),
                    message: start(),
                },
            },
        ),
        s => Err(OciDistributionError::ServerError {
            code: s.as_u16(),
            url: url.to_string(),
            message: start(),
        }),
    }
}

/// A blocking `Read` over chunks sent by the download task.
struct ChunkReader {
    rx: tokio::sync::mpsc::Receiver<io::Result<bytes::Bytes>>,
    chunk: bytes::Bytes,
    failed: Option<(io::ErrorKind, String)>,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            if let Some((kind, message)) = &self.failed {
                // A failed download stays failed: later reads must not
                // look like the end of a whole blob.
                return Err(io::Error::new(*kind, message.clone()));
            }
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Err(e)) => self.failed = Some((e.kind(), e.to_string())),
                Some(Ok(c)) => self.chunk = c,
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

/// Credentials docker would use for `host`: `credHelpers[host]`, then
/// `auths[host]` (`auth` is base64 `user:password`), then `credsStore`.
fn docker_config_auth(
    dir: Option<&std::path::Path>,
    host: &str,
) -> Result<RegistryAuth, ImageError> {
    let Some(dir) = dir else {
        return Ok(RegistryAuth::Anonymous);
    };
    let path = dir.join("config.json");
    let data = match std::fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(RegistryAuth::Anonymous),
        Err(source) => {
            return Err(ImageError::Io {
                image: host.to_string(),
                what: path.display().to_string(),
                source,
            });
        }
    };
    match docker_config_lookup(&path.display().to_string(), &data, host)? {
        DockerAuth::Helper(helper) => credential_helper(&helper, host),
        DockerAuth::Basic(u, p) => Ok(RegistryAuth::Basic(u, p)),
        DockerAuth::Anonymous => Ok(RegistryAuth::Anonymous),
    }
}

/// What a docker `config.json` says to use for one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerAuth {
    /// Run `docker-credential-NAME` (`credHelpers[host]` or `credsStore`).
    Helper(String),
    /// `auths[host].auth`, decoded: user and password.
    Basic(String, String),
    /// Nothing for this host.
    Anonymous,
}

/// Parses a docker `config.json` (`data`, named `path` in errors) and picks
/// the credentials for `host`: `credHelpers[host]`, then `auths[host]`
/// (`auth` is base64 `user:password`), then `credsStore`. Runs nothing.
pub fn docker_config_lookup(path: &str, data: &[u8], host: &str) -> Result<DockerAuth, ImageError> {
    let cfg: serde_json::Value =
        serde_json::from_slice(data).map_err(|source| ImageError::Json {
            image: host.to_string(),
            what: path.to_string(),
            source,
        })?;
    if let Some(helper) = cfg["credHelpers"][host].as_str() {
        return Ok(DockerAuth::Helper(helper.to_string()));
    }
    // Docker Hub's key is historically the v1 URL.
    let keys = [
        host.to_string(),
        format!("https://{host}"),
        format!("https://{host}/v1/"),
    ];
    for k in &keys {
        if let Some(auth) = cfg["auths"][k]["auth"].as_str() {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| {
                    s.split_once(':')
                        .map(|(u, p)| (u.to_string(), p.to_string()))
                });
            return match decoded {
                Some((u, p)) => Ok(DockerAuth::Basic(u, p)),
                None => Err(ImageError::invalid(
                    host,
                    format!("{path}: auths[\"{k}\"].auth is not base64 of user:password"),
                )),
            };
        }
    }
    if let Some(store) = cfg["credsStore"].as_str() {
        return Ok(DockerAuth::Helper(store.to_string()));
    }
    Ok(DockerAuth::Anonymous)
}

/// Runs `docker-credential-NAME get` with the host on standard input.
fn credential_helper(name: &str, host: &str) -> Result<RegistryAuth, ImageError> {
    use std::process::{Command, Stdio};
    let program = format!("docker-credential-{name}");
    let fail = |m: String| ImageError::invalid(host, format!("credential helper {program}: {m}"));
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot run: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        stdin
            .write_all(host.as_bytes())
            .map_err(|e| fail(e.to_string()))?;
    }
    let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stdout).trim().to_string();
        // Helpers say "credentials not found" for hosts they do not know.
        if msg.contains("credentials not found") {
            return Ok(RegistryAuth::Anonymous);
        }
        return Err(fail(format!("{}: {msg}", out.status)));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| fail(format!("output is not JSON: {e}")))?;
    match (v["Username"].as_str(), v["Secret"].as_str()) {
        (Some(u), Some(s)) => Ok(RegistryAuth::Basic(u.to_string(), s.to_string())),
        _ => Err(fail("output has no Username and Secret".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_an_http_date() {
        // 1994-11-06T08:49:37Z
        let now = 784_111_777;
        assert_eq!(retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        // A date in the past asks for no pause.
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-3", now), None);
        assert_eq!(retry_after("1.5", now), None);
    }

    #[test]
    fn backoff_doubles_from_half_a_second_with_jitter_up_to_eight() {
        let ms = |a, j| backoff(a, j).as_millis();
        assert_eq!(
            [1, 2, 3, 4, 5, 6].map(|a| ms(a, 0.0)),
            [500, 1000, 2000, 4000, 8000, 8000]
        );
        assert_eq!(ms(1, 0.999_999), 749);
        assert_eq!(ms(3, 0.5), 2500);
        assert_eq!(ms(5, 0.9), 8000);
        assert_eq!(ms(40, 0.9), 8000);
        let r = random_unit();
        assert!((0.0..1.0).contains(&r));
    }

    #[test]
    fn host_keys_fold_docker_hub_and_case() {
        assert_eq!(host_key("Docker.IO"), "index.docker.io");
        assert_eq!(host_key("registry-1.docker.io"), "index.docker.io");
        assert_eq!(host_key("Reg.Example:5000"), "reg.example:5000");
        assert_eq!(reference_host("alpine:3").unwrap(), "index.docker.io");
        assert_eq!(
            reference_host("127.0.0.1:5000/team/app:v1").unwrap(),
            "127.0.0.1:5000"
        );
    }

    #[test]
    fn origins_differ_by_scheme_host_or_port() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert!(same_origin(
            &u("https://r.io/v2/a"),
            &u("https://r.io:443/b")
        ));
        assert!(!same_origin(&u("https://r.io/a"), &u("https://cdn.r.io/a")));
        assert!(!same_origin(&u("http://r.io/a"), &u("https://r.io/a")));
        assert!(!same_origin(
            &u("http://r.io:5000/a"),
            &u("http://r.io:5001/a")
        ));
        assert_eq!(host_of(&u("http://127.0.0.1:5000/v2/")), "127.0.0.1:5000");
        assert_eq!(host_of(&u("https://r.io/v2/")), "r.io");
    }

    #[test]
    fn the_limiter_spaces_requests_per_host_across_tasks() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let limiter = Arc::new(Limiter::new(20.0).unwrap());
        assert!(Limiter::new(0.0).is_none());
        let start = Instant::now();
        let times = rt.block_on(async {
            let mut tasks = Vec::new();
            for i in 0..10 {
                let l = limiter.clone();
                let host = if i % 2 == 0 { "a" } else { "b" };
                tasks.push(tokio::spawn(async move {
                    l.acquire(host).await;
                    (host, Instant::now())
                }));
            }
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.unwrap());
            }
            out
        });
        for host in ["a", "b"] {
            let mut at: Vec<_> = times
                .iter()
                .filter(|t| t.0 == host)
                .map(|t| t.1 - start)
                .collect();
            at.sort();
            assert_eq!(at.len(), 5);
            // 20 per second: the k-th no sooner than k * 50 ms (a sleep
            // never ends early; it may end late).
            for (k, t) in at.iter().enumerate() {
                assert!(*t >= Duration::from_millis(50 * k as u64), "{at:?}");
            }
        }
    }
}
