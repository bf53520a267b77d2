//! Registry pulls with `oci-client`: credentials (flags, env, docker's
//! `config.json` and credential helpers), TLS (system roots plus
//! `--ca-cert`), plain HTTP with `--insecure`, platform selection, the
//! catalog and tag lists for sweeps.
//!
//! The tokio runtime lives here and nowhere else: layer blobs arrive as an
//! async stream, forwarded chunk by chunk over a bounded channel to a
//! blocking `Read` that the (synchronous) tar reader consumes, so a layer
//! is never held whole in memory.

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::StreamExt;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use super::manifest::{self, Manifest, Platform};
use super::{Image, ImageConfig, ImageError, LayerRef, LayerStore};

/// Attempts of a request the registry answered "too many requests" (429)
/// or "unavailable" (502/503/504); waits double from `RETRY_DELAY`.
const ATTEMPTS: u32 = 3;
const RETRY_DELAY: std::time::Duration = std::time::Duration::from_millis(500);

/// How long a registry may keep leakhound waiting when `--timeout` is not
/// given: to connect, for a whole metadata answer (token, manifest, index,
/// config, catalog or tag page), and for a layer download to make progress.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The slowest a layer download may go, averaged over each `--timeout` of
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

/// User name and password given explicitly (flags or environment).
#[derive(Clone, Debug)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// How to reach registries.
#[derive(Clone, Debug, Default)]
pub struct RegistryOptions {
    /// Plain HTTP (a registry on localhost).
    pub insecure: bool,
    /// Extra trusted CA certificates (PEM files).
    pub ca_certs: Vec<PathBuf>,
    /// Wins over every other source of credentials.
    pub credentials: Option<Credentials>,
    /// Docker's config directory (`$DOCKER_CONFIG`, else `~/.docker`).
    pub docker_config: Option<PathBuf>,
    /// Connect and idle deadline (`--timeout`); `DEFAULT_TIMEOUT` when unset.
    pub timeout: Option<Duration>,
}

/// A registry client with its own runtime.
pub struct Registry {
    rt: tokio::runtime::Runtime,
    client: Client,
    /// For manifests, read with a size cap (oci-client reads them whole).
    http: reqwest::Client,
    opts: RegistryOptions,
    timeout: Duration,
    auths: Mutex<HashMap<String, RegistryAuth>>,
    /// Bearer tokens for manifest pulls by `host/repository` (`None`: the
    /// registry wants none, or basic credentials).
    tokens: Mutex<HashMap<String, Option<String>>>,
}

/// What a reference resolved to.
#[derive(Debug)]
pub struct Resolution {
    /// Digest of the manifest or index the reference named.
    pub digest: String,
    /// The reference named an index (the images are the platforms chosen).
    pub index: bool,
    pub images: Vec<Image>,
}

/// Why a registry request failed: the registry's answer, or no (whole)
/// answer within the deadline.
#[derive(Debug)]
enum CallError {
    Oci(OciDistributionError),
    Timeout(Duration),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Oci(e) => e.fmt(f),
            CallError::Timeout(d) => write!(
                f,
                "no complete answer within {} (--timeout); abandoned",
                seconds(*d)
            ),
        }
    }
}

/// `2 s`, `0.5 s`: a duration as the user gave it.
fn seconds(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

fn reg_err(image: &str, e: impl std::fmt::Display) -> ImageError {
    ImageError::Registry {
        image: image.to_string(),
        message: e.to_string(),
    }
}

impl Registry {
    pub fn new(opts: RegistryOptions) -> Result<Registry, ImageError> {
        // reqwest is built without a default TLS provider (ring instead of
        // aws-lc, which needs cmake and a long C build); install ring once.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut extra = Vec::new();
        let mut http =
            reqwest::Client::builder().connect_timeout(opts.timeout.unwrap_or(DEFAULT_TIMEOUT));
        for path in &opts.ca_certs {
            let data = std::fs::read(path).map_err(|source| ImageError::Io {
                image: "--ca-cert".into(),
                what: path.display().to_string(),
                source,
            })?;
            for cert in reqwest::Certificate::from_pem_bundle(&data)
                .map_err(|e| reg_err("--ca-cert", format!("{}: {e}", path.display())))?
            {
                http = http.add_root_certificate(cert);
            }
            extra.push(Certificate {
                encoding: CertificateEncoding::Pem,
                data,
            });
        }
        let timeout = opts.timeout.unwrap_or(DEFAULT_TIMEOUT);
        // No reqwest read timeout: it also fires when the tar reader is slow
        // to ask for the next chunk (a layer being scanned), not only when
        // the network is; `call` and `open` set deadlines on waiting instead.
        let config = ClientConfig {
            protocol: if opts.insecure {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            extra_root_certificates: extra,
            platform_resolver: None,
            connect_timeout: Some(timeout),
            ..ClientConfig::default()
        };
        let client = Client::try_from(config).map_err(|e| reg_err("registry client", e))?;
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
        Ok(Registry {
            rt,
            client,
            http,
            opts,
            timeout,
            auths: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        })
    }

    /// Runs a request on the runtime, again (after a pause) while the
    /// registry says it is rate-limited or unavailable. Each attempt,
    /// token round trips included, must end within the timeout.
    fn call<T, F: Future<Output = Result<T, OciDistributionError>>>(
        &self,
        mut request: impl FnMut() -> F,
    ) -> Result<T, CallError> {
        let mut delay = RETRY_DELAY;
        let mut attempt = 1;
        loop {
            let answer = self
                .rt
                .block_on(async { tokio::time::timeout(self.timeout, request()).await });
            let Ok(answer) = answer else {
                return Err(CallError::Timeout(self.timeout));
            };
            match answer {
                Err(e) if attempt < ATTEMPTS && transient(&e) => {
                    tracing::debug!(attempt, error = %e, "registry busy, retrying");
                    std::thread::sleep(delay);
                    delay *= 2;
                    attempt += 1;
                }
                other => return other.map_err(CallError::Oci),
            }
        }
    }

    /// Credentials for `host`: explicit ones, else docker's config (a
    /// credential helper, then `auths`), else anonymous.
    fn auth_for(&self, host: &str) -> Result<RegistryAuth, ImageError> {
        if let Some(a) = self.auths.lock().expect("auth cache lock").get(host) {
            return Ok(a.clone());
        }
        let auth = match &self.opts.credentials {
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
        self.call(|| self.manifest_head(&r, &auth))
            .map_err(|e| reg_err(reference, format!("manifest: {e}")))
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
            .call(|| self.manifest(&r, &auth))
            .map_err(|e| reg_err(reference, format!("manifest: {e}")))?;
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
            let (data, _) = self
                .call(|| self.manifest(&pr, &auth))
                .map_err(|e| reg_err(reference, format!("manifest {}: {e}", d.digest)))?;
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
            .call(|| self.manifest(&r, &auth))
            .map_err(|e| reg_err(reference, format!("manifest: {e}")))?;
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
                        .call(|| self.manifest(&pr, &auth))
                        .map_err(|e| reg_err(&name, format!("manifest {}: {e}", d.digest)))?;
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
    /// `Docker-Content-Digest` (`sha256:` and 64 hex digits), if any. The
    /// token is kept per repository and renewed once on a 401, as for GET.
    async fn manifest_head(
        &self,
        r: &Reference,
        auth: &RegistryAuth,
    ) -> Result<Option<String>, OciDistributionError> {
        let (res, url) = self
            .manifest_request(r, auth, reqwest::Method::HEAD)
            .await?;
        let status = res.status();
        answer_error(status, &[], &url)?;
        let digest = res
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
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
    /// a whole-body read grow to 5 GB). The token (`token`) is kept per
    /// repository and renewed once on a 401.
    async fn manifest(
        &self,
        r: &Reference,
        auth: &RegistryAuth,
    ) -> Result<(Vec<u8>, String), OciDistributionError> {
        let (res, url) = self.manifest_request(r, auth, reqwest::Method::GET).await?;
        let status = res.status();
        let header = res
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = read_capped(res, MAX_MANIFEST, "manifest").await?;
        answer_error(status, &body, &url)?;
        let digest = super::sha256_digest(&body);
        for (what, want) in [
            ("the reference's", r.digest()),
            ("the registry's", header.as_deref()),
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
                ));
            }
        }
        Ok((body, digest))
    }

    /// A request for `r`'s manifest with the same Accept for HEAD and GET
    /// (a registry may convert between formats by Accept), carrying the
    /// repository's token, renewed once on a 401. Returns the answer and
    /// the URL asked.
    async fn manifest_request(
        &self,
        r: &Reference,
        auth: &RegistryAuth,
        method: reqwest::Method,
    ) -> Result<(reqwest::Response, String), OciDistributionError> {
        let tag = r.digest().or(r.tag()).unwrap_or("latest");
        let url = format!(
            "{}://{}/v2/{}/manifests/{tag}",
            self.scheme(),
            r.resolve_registry(),
            r.repository()
        );
        let mut renewed = false;
        loop {
            let token = self.token(r, auth, renewed).await?;
            let mut req = self
                .http
                .request(method.clone(), &url)
                .header(reqwest::header::ACCEPT, manifest::ACCEPTED.join(", "));
            req = match (token.as_ref(), auth) {
                (Some(t), _) | (None, RegistryAuth::Bearer(t)) => req.bearer_auth(t),
                (None, RegistryAuth::Basic(user, password)) => req.basic_auth(user, Some(password)),
                (None, RegistryAuth::Anonymous) => req,
            };
            let res = req.send().await?;
            if res.status() == reqwest::StatusCode::UNAUTHORIZED && !renewed {
                renewed = true;
                continue;
            }
            return Ok((res, url));
        }
    }

    /// The bearer token for pulls from `r`'s repository, from the cache
    /// unless `renew`.
    async fn token(
        &self,
        r: &Reference,
        auth: &RegistryAuth,
        renew: bool,
    ) -> Result<Option<String>, OciDistributionError> {
        let key = format!("{}/{}", r.resolve_registry(), r.repository());
        if !renew && let Some(t) = self.tokens.lock().expect("token cache lock").get(&key) {
            return Ok(t.clone());
        }
        // The token answer is read here with a size cap (oci-client would
        // read it whole), then handed to oci-client for the blob pulls.
        let scope = format!("repository:{}:pull", r.repository());
        let pull = oci_client::RegistryOperation::Pull;
        // The registry's credentials stay the user's (oci-client keeps the
        // first it is given per registry), the token is this repository's.
        self.client
            .store_auth_if_needed(r.resolve_registry(), auth)
            .await;
        let t = match self.bearer(r.resolve_registry(), &scope, auth).await? {
            Some(t) => self.client.auth(r, &RegistryAuth::Bearer(t), pull).await?,
            // Basic credentials or none: no answer body to read.
            None => self.client.auth(r, auth, pull).await?,
        };
        self.tokens
            .lock()
            .expect("token cache lock")
            .insert(key, t.clone());
        Ok(t)
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
        let data = self
            .call(|| async {
                self.client
                    .store_auth_if_needed(r.resolve_registry(), auth)
                    .await;
                // At most the declared size: a longer body is cut there.
                let mut data = Capped {
                    data: Vec::new(),
                    cap: config.size as usize,
                };
                self.client
                    .pull_blob(r, config.digest.as_str(), &mut data)
                    .await
                    .map(|_| data.data)
            })
            .map_err(|e| reg_err(name, format!("config {}: {e}", config.digest)))?;
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
            let mut url = format!("{}://{host}/v2/_catalog?n=100", self.scheme());
            if let Some(l) = &last {
                url.push_str("&last=");
                url.push_str(&query_escape(l));
            }
            let page: CatalogPage = self
                .call(|| self.list_page(host, "registry:catalog:*", &auth, &url))
                .map_err(|e| reg_err(host, format!("catalog: {e}")))?;
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
            let mut url = format!("{}://{host}/v2/{repository}/tags/list?n=100", self.scheme());
            if let Some(l) = out.last() {
                url.push_str("&last=");
                url.push_str(&query_escape(l));
            }
            let page: TagsPage = self
                .call(|| self.list_page(host, &scope, &auth, &url))
                .map_err(|e| reg_err(&name, format!("tags: {e}")))?;
            let tags = page.tags.unwrap_or_default();
            let n = tags.len();
            out.extend(tags);
            if n < 100 {
                break;
            }
        }
        Ok(out)
    }

    fn scheme(&self) -> &'static str {
        if self.opts.insecure { "http" } else { "https" }
    }

    /// A bearer token for `scope` on `host` when the registry asks for one
    /// (`WWW-Authenticate: Bearer` on `/v2/`), fetched from its realm with
    /// `auth` and read with a size cap (`MAX_TOKEN`); `None` when it asks
    /// for basic credentials or none.
    async fn bearer(
        &self,
        host: &str,
        scope: &str,
        auth: &RegistryAuth,
    ) -> Result<Option<String>, OciDistributionError> {
        if let RegistryAuth::Bearer(t) = auth {
            return Ok(Some(t.clone()));
        }
        let probe = self
            .http
            .get(format!("{}://{host}/v2/", self.scheme()))
            .send()
            .await?;
        let Some(challenge) = probe
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(BearerChallenge::parse)
        else {
            return Ok(None);
        };
        drop(probe);
        let mut req = self.http.get(&challenge.realm).query(&[("scope", scope)]);
        if let Some(service) = &challenge.service {
            req = req.query(&[("service", service)]);
        }
        if let RegistryAuth::Basic(user, password) = auth {
            req = req.basic_auth(user, Some(password));
        }
        let res = req.send().await?;
        let status = res.status();
        let body = read_capped(res, MAX_TOKEN, "token").await?;
        if !status.is_success() {
            return Err(OciDistributionError::AuthenticationFailure(
                String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned(),
            ));
        }
        #[derive(serde::Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let t: Token = serde_json::from_slice(&body)
            .map_err(|e| OciDistributionError::RegistryTokenDecodeError(e.to_string()))?;
        t.token.or(t.access_token).map(Some).ok_or_else(|| {
            OciDistributionError::RegistryTokenDecodeError("the answer holds no token".into())
        })
    }

    /// One page of a list (catalog, tags) at `url`, as JSON, read with a
    /// size cap (`MAX_LIST`); the token for `scope` is kept per host and
    /// scope and renewed once on a 401.
    async fn list_page<T: serde::de::DeserializeOwned>(
        &self,
        host: &str,
        scope: &str,
        auth: &RegistryAuth,
        url: &str,
    ) -> Result<T, OciDistributionError> {
        let key = format!("{host} {scope}");
        let mut renewed = false;
        loop {
            let cached = self
                .tokens
                .lock()
                .expect("token cache lock")
                .get(&key)
                .cloned();
            let token = match cached {
                Some(t) if !renewed => t,
                _ => {
                    let t = self.bearer(host, scope, auth).await?;
                    self.tokens
                        .lock()
                        .expect("token cache lock")
                        .insert(key.clone(), t.clone());
                    t
                }
            };
            let mut req = self.http.get(url);
            req = match (token.as_ref(), auth) {
                (Some(t), _) => req.bearer_auth(t),
                (None, RegistryAuth::Basic(user, password)) => req.basic_auth(user, Some(password)),
                (None, _) => req,
            };
            let res = req.send().await?;
            let status = res.status();
            if status == reqwest::StatusCode::UNAUTHORIZED && !renewed {
                renewed = true;
                continue;
            }
            let body = read_capped(res, MAX_LIST, "list page").await?;
            answer_error(status, &body, url)?;
            return serde_json::from_slice(&body).map_err(|e| {
                OciDistributionError::GenericError(Some(format!("{url}: not a list: {e}")))
            });
        }
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
        OciDistributionError::GenericError(Some(format!(
            "{url}: the answer is larger than {cap} bytes, more than any {what}; abandoned"
        )))
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
        let mut stream = self
            .call(|| async {
                self.client
                    .store_auth_if_needed(r.resolve_registry(), &auth)
                    .await;
                self.client
                    .pull_blob_stream(&r, layer.digest.as_str())
                    .await
            })
            .map_err(|e| reg_err(&image.reference, format!("layer {}: {e}", layer.digest)))?;
        let (tx, rx) = tokio::sync::mpsc::channel(CHUNKS_IN_FLIGHT);
        let timeout = self.timeout;
        self.rt.spawn(async move {
            // Bytes a window of `timeout` spent waiting must bring; only the
            // waiting counts (not time the reader spends on earlier chunks).
            let floor = (MIN_LAYER_RATE * timeout.as_secs_f64()) as usize;
            let (mut waited, mut got) = (Duration::ZERO, 0usize);
            loop {
                let asked = Instant::now();
                let next =
                    tokio::time::timeout(timeout.saturating_sub(waited), stream.next()).await;
                waited += asked.elapsed();
                let chunk = match next {
                    Ok(None) => break,
                    Ok(Some(chunk)) => chunk,
                    Err(_) => Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "download stalled: {got} bytes in {} of waiting, less than {} bytes/s \
                             (--timeout); layer abandoned",
                            seconds(waited),
                            MIN_LAYER_RATE
                        ),
                    )),
                };
                if let Ok(c) = &chunk {
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

/// An in-memory body that refuses to grow past `cap` bytes.
struct Capped {
    data: Vec<u8>,
    cap: usize,
}

impl tokio::io::AsyncWrite for Capped {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        if self.data.len() + buf.len() > self.cap {
            let cap = self.cap;
            return std::task::Poll::Ready(Err(io::Error::other(format!(
                "the blob is longer than the {cap} bytes its manifest declares; cut there"
            ))));
        }
        self.data.extend_from_slice(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
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

/// 429 and 502/503/504: worth another try after a pause.
fn transient(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::ServerError { code, .. } => matches!(code, 429 | 502 | 503 | 504),
        OciDistributionError::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .any(|e| e.code == OciErrorCode::Toomanyrequests),
        _ => false,
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
