//! Subcommand handlers: each turns its command line into a source, runs
//! it, and reports. `main.rs` dispatches here.

pub mod cluster;
pub mod git;
pub mod image;
pub mod init;
pub mod logs;
pub mod merge;
pub mod plan;
pub mod pods;
pub mod progress;
pub mod report;
pub mod rules;
pub mod scan;

/// `--metrics-addr`: `metrics` served on `addr` (its bound address told on
/// stderr unless `--quiet`) for as long as the returned server lives.
pub(crate) fn serve_metrics(
    common: &crate::cli::CommonArgs,
    addr: Option<std::net::SocketAddr>,
    metrics: impl FnOnce() -> leakhound::metrics::Metrics,
) -> anyhow::Result<(
    Option<std::sync::Arc<leakhound::metrics::Metrics>>,
    Option<leakhound::metrics::Server>,
)> {
    use anyhow::Context;
    let Some(addr) = addr else {
        return Ok((None, None));
    };
    let m = std::sync::Arc::new(metrics());
    let server = leakhound::metrics::serve(addr, m.clone())
        .with_context(|| format!("cannot serve metrics on {addr}"))?;
    if !common.quiet {
        eprintln!("leakhound: metrics on http://{}/metrics", server.addr);
    }
    Ok((Some(m), Some(server)))
}
