//! Prometheus metrics of long-running scans (`logs` from standard input,
//! files or a pods directory; registry sweeps) and the small HTTP server
//! that serves them:
//! `GET /metrics` (OpenMetrics text, which Prometheus scrapes) and
//! `GET /healthz` (liveness: `ok` while the scan loop is turning).
//!
//! Counters are updated where the work happens (the streaming sink, the
//! pods agent); the registry is encoded on each scrape.

use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use prometheus_client::encoding::{EncodeLabel, EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of `leakhound_findings_total`: rule, severity, and the pod's
/// namespace for container logs (absent otherwise).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct FindingLabels {
    rule: String,
    severity: &'static str,
    namespace: Option<String>,
}

impl EncodeLabelSet for FindingLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), fmt::Error> {
        ("rule", self.rule.as_str()).encode(encoder.encode_label())?;
        ("severity", self.severity).encode(encoder.encode_label())?;
        if let Some(ns) = &self.namespace {
            ("namespace", ns.as_str()).encode(encoder.encode_label())?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct ErrorLabels {
    kind: &'static str,
}

impl EncodeLabelSet for ErrorLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), fmt::Error> {
        ("kind", self.kind).encode(encoder.encode_label())
    }
}

/// Labels of `leakhound_registry_requests_total`: the answer's status
/// code, or `none` when no answer came (a timeout, a refused connection).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct StatusLabels {
    status: String,
}

impl EncodeLabelSet for StatusLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), fmt::Error> {
        ("status", self.status.as_str()).encode(encoder.encode_label())
    }
}

/// Scan lag buckets, in seconds.
const LAG_BUCKETS: [f64; 12] = [
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// The metrics of one run.
pub struct Metrics {
    registry: Registry,
    lines: Counter,
    bytes: Counter,
    findings: Family<FindingLabels, Counter>,
    files: Gauge,
    rotations: Counter,
    errors: Family<ErrorLabels, Counter>,
    lag: Histogram,
    images: Counter,
    layers_fetched: Counter,
    bytes_fetched: Counter,
    /// Cache hits by kind (`manifest`, `layer`, `config`).
    cache_hits: Family<ErrorLabels, Counter>,
    requests: Family<StatusLabels, Counter>,
    retries: Counter,
    /// Seconds since the epoch of the scan loop's last turn.
    heartbeat: AtomicU64,
    /// `/healthz` fails when the loop has not turned for this long (only
    /// for loops that turn on their own: the pods agent).
    watchdog: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Metrics {
    /// The metrics of `logs`.
    pub fn new() -> Self {
        Self::blank().for_logs()
    }

    fn blank() -> Self {
        Metrics {
            lines: Counter::default(),
            bytes: Counter::default(),
            findings: Family::default(),
            files: Gauge::default(),
            rotations: Counter::default(),
            errors: Family::default(),
            lag: Histogram::new(LAG_BUCKETS),
            heartbeat: AtomicU64::new(now_secs()),
            watchdog: AtomicU64::new(0),
            images: Counter::default(),
            layers_fetched: Counter::default(),
            bytes_fetched: Counter::default(),
            cache_hits: Family::default(),
            requests: Family::default(),
            retries: Counter::default(),
            registry: Registry::default(),
        }
    }

    fn for_logs(self) -> Self {
        let m = self;
        let mut registry = Registry::with_prefix("leakhound");
        registry.register("lines_scanned", "Log lines scanned", m.lines.clone());
        registry.register(
            "bytes_scanned",
            "Bytes of log messages scanned",
            m.bytes.clone(),
        );
        registry.register(
            "findings",
            "Secrets reported, by rule, severity and (container logs) namespace",
            m.findings.clone(),
        );
        registry.register(
            "files_followed",
            "Container log streams followed",
            m.files.clone(),
        );
        registry.register(
            "rotations",
            "Log file rotations followed",
            m.rotations.clone(),
        );
        registry.register(
            "errors",
            "Errors by kind (read, malformed-record, state, watch)",
            m.errors.clone(),
        );
        registry.register(
            "scan_lag_seconds",
            "Seconds between a log line's timestamp and its scan (the oldest line of each batch)",
            m.lag.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The metrics of a registry sweep (`registry`, `image` from a
    /// registry): requests, retries, layers and bytes fetched are counted
    /// as they happen; images, cache hits and findings when the scan ends.
    pub fn for_registry() -> Self {
        let m = Self::blank();
        let mut registry = Registry::with_prefix("leakhound");
        registry.register(
            "images_scanned",
            "Images scanned (each platform of an index counts)",
            m.images.clone(),
        );
        registry.register(
            "layers_fetched",
            "Layer blobs downloaded from registries (not those a cache answered)",
            m.layers_fetched.clone(),
        );
        registry.register(
            "bytes_fetched",
            "Bytes of layer blobs downloaded from registries",
            m.bytes_fetched.clone(),
        );
        registry.register(
            "cache_hits",
            "Cache hits by kind (manifest, layer, config)",
            m.cache_hits.clone(),
        );
        registry.register(
            "registry_requests",
            "Registry requests by answer status (`none`: no answer)",
            m.requests.clone(),
        );
        registry.register(
            "registry_retries",
            "Registry requests tried again after a 429, 502, 503 or 504",
            m.retries.clone(),
        );
        registry.register(
            "findings",
            "Secrets reported, by rule and severity",
            m.findings.clone(),
        );
        registry.register(
            "errors",
            "Inputs not scanned, by kind (unreadable, timeout, internal)",
            m.errors.clone(),
        );
        Metrics { registry, ..m }
    }

    pub fn images_scanned(&self, n: u64) {
        self.images.inc_by(n);
    }

    pub fn layer_fetched(&self) {
        self.layers_fetched.inc();
    }

    pub fn bytes_fetched(&self, n: u64) {
        self.bytes_fetched.inc_by(n);
    }

    /// `n` hits of the cache for `kind` (`manifest`, `layer`, `config`).
    pub fn cache_hits(&self, kind: &'static str, n: u64) {
        self.cache_hits
            .get_or_create(&ErrorLabels { kind })
            .inc_by(n);
    }

    /// A registry answer with `status` (`None`: no answer).
    pub fn registry_request(&self, status: Option<u16>) {
        let status = status.map_or_else(|| "none".to_string(), |s| s.to_string());
        self.requests.get_or_create(&StatusLabels { status }).inc();
    }

    pub fn registry_retry(&self) {
        self.retries.inc();
    }

    /// Lines and bytes just scanned.
    pub fn scanned(&self, lines: u64, bytes: u64) {
        self.lines.inc_by(lines);
        self.bytes.inc_by(bytes);
    }

    /// One secret reported.
    pub fn finding(&self, rule: &str, severity: &'static str, namespace: Option<&str>) {
        self.findings
            .get_or_create(&FindingLabels {
                rule: rule.to_string(),
                severity,
                namespace: namespace.map(str::to_string),
            })
            .inc();
    }

    pub fn set_files_followed(&self, n: usize) {
        self.files.set(n as i64);
    }

    pub fn rotation(&self) {
        self.rotations.inc();
    }

    pub fn error(&self, kind: &'static str) {
        self.errors.get_or_create(&ErrorLabels { kind }).inc();
    }

    pub fn lag(&self, seconds: f64) {
        self.lag.observe(seconds);
    }

    /// The scan loop turned.
    pub fn beat(&self) {
        self.heartbeat.store(now_secs(), Ordering::Relaxed);
    }

    /// From now on `/healthz` fails when `beat` was not called for `after`.
    pub fn watch_liveness(&self, after: Duration) {
        self.beat();
        self.watchdog
            .store(after.as_secs().max(1), Ordering::Relaxed);
    }

    fn alive(&self) -> bool {
        let limit = self.watchdog.load(Ordering::Relaxed);
        limit == 0 || now_secs().saturating_sub(self.heartbeat.load(Ordering::Relaxed)) <= limit
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String");
        out
    }
}

/// How long a connection may take to send its request headers, and to be
/// served whole.
const HEADER_DEADLINE: Duration = Duration::from_secs(10);
const CONNECTION_DEADLINE: Duration = Duration::from_secs(30);
/// Connections served at once; more are closed at once.
const MAX_CONNECTIONS: usize = 32;

/// A running metrics server.
pub struct Server {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Serves `/metrics` and `/healthz` on `addr` from a thread of its own.
/// Binding errors are returned here (a port in use is a start-up error).
pub fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<Server> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
                while !stopped.load(Ordering::Relaxed) {
                    let accepted =
                        tokio::time::timeout(Duration::from_millis(500), listener.accept()).await;
                    let Ok(Ok((stream, _))) = accepted else {
                        continue;
                    };
                    let Ok(slot) = slots.clone().try_acquire_owned() else {
                        continue; // Too many at once: closed.
                    };
                    let metrics = metrics.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |req| {
                            let metrics = metrics.clone();
                            async move { Ok::<_, Infallible>(respond(&metrics, &req)) }
                        });
                        let conn = hyper::server::conn::http1::Builder::new()
                            .timer(hyper_util::rt::TokioTimer::new())
                            .header_read_timeout(HEADER_DEADLINE)
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                        let _ = tokio::time::timeout(CONNECTION_DEADLINE, conn).await;
                        drop(slot);
                    });
                }
            })
        })?;
    Ok(Server { addr: local, stop })
}

fn respond<B>(metrics: &Metrics, req: &Request<B>) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, ctype: &str, body: String| {
        Response::builder()
            .status(status)
            .header("content-type", ctype)
            .body(Full::new(Bytes::from(body)))
            .expect("a valid response")
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        );
    }
    match req.uri().path() {
        "/metrics" => reply(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.encode(),
        ),
        "/healthz" if metrics.alive() => reply(StatusCode::OK, "text/plain", "ok\n".into()),
        "/healthz" => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "scan loop stalled\n".into(),
        ),
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_and_labels() {
        let m = Metrics::new();
        m.scanned(3, 120);
        m.finding("github-classic-pat", "high", Some("prod"));
        m.finding("github-classic-pat", "high", None);
        m.lag(0.2);
        let text = m.encode();
        assert!(text.contains("leakhound_lines_scanned_total 3\n"), "{text}");
        assert!(text.contains(
            "leakhound_findings_total{rule=\"github-classic-pat\",severity=\"high\",namespace=\"prod\"} 1\n"
        ), "{text}");
        assert!(
            text.contains(
                "leakhound_findings_total{rule=\"github-classic-pat\",severity=\"high\"} 1\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("leakhound_scan_lag_seconds_count 1\n"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn registry_metrics_are_their_own_set() {
        let m = Metrics::for_registry();
        m.registry_request(Some(429));
        m.registry_request(Some(200));
        m.registry_request(Some(200));
        m.registry_request(None);
        m.registry_retry();
        m.layer_fetched();
        m.bytes_fetched(512);
        m.images_scanned(2);
        m.cache_hits("layer", 3);
        m.finding("slack-bot-token", "high", None);
        let text = m.encode();
        for line in [
            "leakhound_registry_requests_total{status=\"200\"} 2\n",
            "leakhound_registry_requests_total{status=\"429\"} 1\n",
            "leakhound_registry_requests_total{status=\"none\"} 1\n",
            "leakhound_registry_retries_total 1\n",
            "leakhound_layers_fetched_total 1\n",
            "leakhound_bytes_fetched_total 512\n",
            "leakhound_images_scanned_total 2\n",
            "leakhound_cache_hits_total{kind=\"layer\"} 3\n",
            "leakhound_findings_total{rule=\"slack-bot-token\",severity=\"high\"} 1\n",
        ] {
            assert!(text.contains(line), "{line}{text}");
        }
        assert!(!text.contains("lines_scanned"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}
