//! A [`metrics`] recorder that pushes to a Prometheus Pushgateway: on an interval in the
//! background, and one final time on every way a process ends — return from `main`, panic,
//! SIGTERM/SIGINT/SIGHUP, Ctrl-C or a closed console on Windows, [`exit`] — bounded in time, so
//! a dead gateway never hangs a job.
//!
//! Made for short-lived processes (batch jobs, ingesters, CLI tools, CI steps) that record with
//! `counter!`, `gauge!` and `histogram!` and would otherwise exit before anything scrapes them.
//!
//! # Quickstart
//!
//! ```no_run
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // PUSHGATEWAY_URL, default http://127.0.0.1:9091. Never fails: a bad setting is one
//!     // line on stderr, and the job runs on without pushing.
//!     let guard = metrics_exporter_pushgateway::init("ingester");
//!     // The final push: outcome "success" for Ok, "error" and exit code 1 for Err.
//!     guard.finish(run())
//! }
//!
//! fn run() -> Result<(), Box<dyn std::error::Error>> {
//!     metrics::counter!("records_total").increment(500);
//!     Ok(())
//! }
//! ```
//!
//! A plain `fn main()` holds the guard (`let _guard = init("ingester");`) and its drop at the
//! end of `main` pushes outcome `success`; [`try_init`] returns the configuration error
//! instead of going on without pushing.
//!
//! Or configured in code:
//!
//! ```no_run
//! use std::time::Duration;
//! use metrics_exporter_pushgateway::PushgatewayBuilder;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let guard = PushgatewayBuilder::new("http://127.0.0.1:9091")
//!     .job("ingester")
//!     .grouping_label("instance", "shard-3")
//!     .global_label("service", "venue-scraper")
//!     .interval(Duration::from_secs(15))
//!     .shutdown_timeout(Duration::from_secs(5))
//!     .install()?;
//! // ...
//! guard.shutdown()?; // final push, with its result
//! # Ok(()) }
//! ```
//!
//! # Behaviour at exit
//!
//! | how the process ends | what happens |
//! |---|---|
//! | `main` returns, guard dropped (sync or `#[tokio::main]`, any flavour) | final push, outcome `success` |
//! | `main` returns [`PushGuard::finish`]`(result)` | final push, `success` for `Ok`, `error` with exit code 1 for `Err` |
//! | [`exit`]`(code)` | final push with `code`, then `std::process::exit(code)` |
//! | [`PushGuard::shutdown_with_exit_code`] | final push with that code, result returned |
//! | panic, `panic = "unwind"` | previous panic hook runs; final push (outcome `panic`) while `main` unwinds; status 101 |
//! | panic, `panic = "abort"` | previous panic hook runs; final push from the panic hook; then the abort |
//! | SIGTERM, SIGINT, SIGHUP | final push, then death by the same signal ([`SignalHandling`] to change); a signal ignored at install (`nohup`) stays ignored |
//! | Windows: Ctrl-C, Ctrl-Break, console closed, logoff, shutdown | final push, then Windows' default handling ends the process |
//! | `std::process::exit`, SIGKILL, OOM kill | no final push: only what interval pushes already sent |
//!
//! Every final push is bounded by the shutdown timeout (default 5 s) plus 200 ms; with a
//! [spool](PushgatewayBuilder::spool_dir), the exit may wait up to the shutdown timeout again
//! (at least 1 s) for a push that failed to be written there as a record (not after a Windows
//! console event, whose limit is hard). A failure is reported on one line (through `tracing`, and on stderr when no `tracing` subscriber is
//! installed) and never changes the process's exit status. The final push is the last request
//! sent: an interval push still under way is waited for (for at most half the shutdown
//! timeout, so that a hanging gateway leaves the final push time of its own), never overtaken
//! while the gateway answers.
//!
//! # Targets
//!
//! A Pushgateway by default; by configuration also several gateways at once, a Prometheus
//! remote-write receiver (Grafana Mimir, Cortex, Thanos Receive, VictoriaMetrics, Prometheus),
//! or node_exporter's textfile collector directory, in any mix: see [`Target`] and
//! [`PushgatewayBuilder::with_targets`], or `PUSHGATEWAY_URL=a,b`,
//! `PUSHGATEWAY_REMOTE_WRITE_URL`, `PUSHGATEWAY_TEXTFILE_DIR`. Each target is pushed to on its
//! own thread; one that is down never delays or fails the others.
//!
//! # Scraped too
//!
//! [`PushgatewayBuilder::listen`] (or `PUSHGATEWAY_LISTEN=ip:port`) serves `GET /metrics`
//! from the same registry, for Prometheus to scrape: a service scraped while it runs and
//! pushing at exit, or, with no push target configured, only scraped.
//!
//! # Metric catalog
//!
//! [`PushHandle::catalog`] lists every metric described or recorded (name, type, unit, help,
//! label names, series count): a [`Catalog`] rendered as a `METRICS.md`, compared with a
//! checked-in one in tests ([`Catalog::diff`]), and, with the `serde` feature, serialised as
//! JSON and turned into a Grafana dashboard.
//!
//! # When the gateway is down
//!
//! With [`PushgatewayBuilder::spool_dir`] (or `PUSHGATEWAY_SPOOL_DIR`), a push that fails for
//! good is kept on disk as a record, and the next process with the same directory (or
//! [`replay`]) sends it once the gateway is back: a job whose gateway is down at exit loses
//! nothing. A remote-write target keeps the requests that did not arrive the same way, with
//! their samples' timestamps. See the README's "Disk spool" and "Failure modes" for the
//! guarantees and limits.
//!
//! # Security
//!
//! HTTPS through rustls, a private CA ([`PushgatewayBuilder::ca_certificate`]), mutual TLS
//! ([`PushgatewayBuilder::client_identity`]), basic auth and bearer tokens. A certificate that
//! is not trusted fails with [`PushError::Tls`] and is never retried without verification.
//! Secrets never appear in logs, errors or `Debug` output.
//!
//! # Design
//!
//! One named thread per target (`pushgateway-pusher`, `pushgateway-pusher-2`, …) owns a
//! current-thread tokio runtime of its own and that target's HTTP client; the guard, the
//! panic hook, the signal listener (a console control handler on Windows) and [`exit`] send
//! every target's thread the request over a channel at once and wait for the answers until
//! one deadline. The `/metrics` listener has a thread and a runtime of its own too. The
//! caller's runtime (if any) is never blocked on, and no work is done inside a signal
//! handler. The recorder is a `metrics-util`
//! registry with atomic storage; a push takes one sorted snapshot of it, which every target
//! encodes from (text, protobuf, remote write, textfile).
//!
//! # Features
//!
//! `tls` (rustls), `remote-write` and `gzip`, on by default; `native-roots` adds the system's
//! certificate store. `default-features = false` leaves a plain-HTTP Pushgateway pusher, and
//! refuses at install, naming the feature, what needs one that is off.
//!
//! # Protocol
//!
//! Pushes go to `{endpoint}/metrics/job/{job}{/{label}/{value}}` as protobuf `MetricFamily`
//! messages, or in the text exposition format 0.0.4 ([`ExpositionFormat`]), without sample
//! timestamps. Values that cannot go into a URL path as they are (empty,
//! `.`, `..`, `/`, spaces, `+`, `%`, non-ASCII) are sent as `@base64` with the URL-safe alphabet.
//! 2xx is success; 5xx, 408, 429 and connection errors are retried with exponential backoff and
//! jitter within the push's time budget; other answers are not retried and the error carries the
//! gateway's explanation. Redirects are never followed.
#![deny(missing_docs)]
// The docs show `main` itself: where the guard lives is the point of them.
#![allow(clippy::needless_doctest_main)]
#![cfg_attr(docsrs, feature(doc_cfg))]
mod catalog;
mod clock;
mod compression;
mod config;
pub mod env;
mod error;
mod exit;
mod file;
mod filter;
mod guard;
mod handle;
mod install;
pub mod lifecycle;
mod listen;
mod log;
mod names;
mod native;
mod protocol;
mod pusher;
mod registry;
mod report;
mod runtime;
mod self_metrics;
mod sink;
mod snapshot;
mod source;
mod spool;
mod target;
mod transport;

#[cfg(feature = "serde")]
pub use catalog::DashboardOptions;
pub use catalog::{Catalog, CatalogDiff, CatalogError, MetricChange, MetricInfo, MetricType};
pub use compression::Compression;
pub use config::{
    ExpositionFormat, PushgatewayBuilder, SignalHandling, Target, DEFAULT_BUCKETS,
    DEFAULT_ENDPOINT, DEFAULT_INTERVAL, DEFAULT_PUSH_TIMEOUT, DEFAULT_REMOTE_WRITE_MAX_SAMPLES,
    DEFAULT_SHUTDOWN_TIMEOUT, DEFAULT_SPOOL_MAX_BYTES, DEFAULT_SPOOL_MAX_FILES,
};
pub use error::InitError;
pub use exit::exit;
pub use guard::PushGuard;
pub use handle::{handle, PushHandle};
pub use native::HistogramForm;
pub use registry::{Matcher, PushgatewayRecorder};
pub use report::{HttpError, PushError, PushReport, TargetReport};
pub use spool::ReplayReport;
pub use target::{PushMethod, TargetKind};

/// Installs the exporter for `job`, configured from the environment, and returns the guard
/// whose drop makes the final push. Never fails: metrics must not take down the job they
/// observe.
///
/// The same as `PushgatewayBuilder::from_env()?.job(job).install()`; see [`env`](mod@env) for the
/// variables (`PUSHGATEWAY_URL`, default
/// `http://127.0.0.1:9091`; `PUSHGATEWAY_DISABLED=1` turns pushing off). When that fails — an
/// invalid environment value, an empty job, a `PUSHGATEWAY_LISTEN` address in use, a recorder
/// already installed — one line names the
/// variable or setting and why (through `tracing`, and on stderr when no `tracing` subscriber
/// is installed), and a [disabled](PushGuard::disabled) guard is returned: the job runs on,
/// its exit status untouched, without pushing. Use [`try_init`] to fail fast instead.
///
/// ```no_run
/// fn main() {
///     // PUSHGATEWAY_URL, default http://127.0.0.1:9091
///     let _guard = metrics_exporter_pushgateway::init("ingester");
///     metrics::counter!("records_total").increment(500);
/// } // the guard drops here: final push of every value recorded
/// ```
pub fn init(job: &str) -> PushGuard {
    try_init(job).unwrap_or_else(|e| {
        log::report(&format!(
            "metrics are not pushed, the job runs on without them: {e}"
        ));
        PushGuard::disabled()
    })
}

/// [`init`], returning the error instead of going on without pushing: for jobs that would
/// rather not run unobserved.
///
/// ```no_run
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let guard = metrics_exporter_pushgateway::try_init("ingester")?;
///     metrics::counter!("records_total").increment(500);
///     guard.finish(Ok(()))
/// }
/// ```
///
/// # Errors
///
/// [`InitError`] for an empty job, an invalid environment value (naming the variable), a
/// `PUSHGATEWAY_LISTEN` address that cannot be bound ([`InitError::Listen`]), or a recorder
/// already installed in this process.
pub fn try_init(job: &str) -> Result<PushGuard, InitError> {
    PushgatewayBuilder::from_env()?.job(job).install()
}

/// Sends the records kept in the spool directory (pushes to the gateway, remote-write
/// requests to the receiver) to where they were going, configured from the environment (`PUSHGATEWAY_SPOOL_DIR`,
/// `PUSHGATEWAY_URL`, `PUSHGATEWAY_REMOTE_WRITE_URL`, credentials and TLS as for [`init`]):
/// for operators draining a spool, e.g. from cron.
///
/// The same as `PushgatewayBuilder::from_env()?.replay()`; see
/// [`PushgatewayBuilder::replay`].
///
/// # Errors
///
/// [`InitError`] for an invalid environment value, no spool directory, or a spool directory
/// that cannot be read or locked.
///
/// ```no_run
/// // PUSHGATEWAY_SPOOL_DIR=/var/spool/metrics PUSHGATEWAY_URL=http://gw:9091, from cron:
/// let report = metrics_exporter_pushgateway::replay()?;
/// println!("{report}"); // e.g. "3 sent, 0 kept, 0 rejected, 0 corrupt"
/// std::process::exit(if report.is_drained() { 0 } else { 2 });
/// # Ok::<(), metrics_exporter_pushgateway::InitError>(())
/// ```
pub fn replay() -> Result<ReplayReport, InitError> {
    PushgatewayBuilder::from_env()?.replay()
}

/// The README's examples, compiled as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
