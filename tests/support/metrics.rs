//! Scraping a metrics endpoint and parsing it with a real Prometheus
//! parser, for the tests of every long-running mode.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The `host:port` a long-running mode's first stderr line says its
/// metrics are served on.
pub fn metrics_addr(first_line: &str) -> String {
    first_line
        .strip_prefix("leakhound: metrics on http://")
        .expect(first_line)
        .trim_end_matches("/metrics")
        .to_string()
}

/// `GET path` over HTTP/1.0; status and body.
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the metrics server");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp[9..12].parse().unwrap();
    let body = resp.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    (status, body.to_string())
}

/// Parses an OpenMetrics exposition with the Prometheus Python client's
/// parser; returns `(name, labels, value)` of every sample.
pub fn parse_metrics(text: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    let script = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = []
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        out.append([s.name, s.labels, s.value])
print(json.dumps(out))
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (scripts/test.sh installs it and prometheus-client)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the OpenMetrics parser refused the exposition: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

pub fn sum_of(samples: &[(String, BTreeMap<String, String>, f64)], name: &str) -> f64 {
    samples.iter().filter(|s| s.0 == name).map(|s| s.2).sum()
}
