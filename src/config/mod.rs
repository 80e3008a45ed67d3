//! [`PushgatewayBuilder`]: the settings and their defaults, read in [`env`], checked in [`check`].

pub(crate) mod check;
mod connection;
mod env;
mod headers;
mod histograms;
pub(crate) mod plan;
mod signals;
mod target;
#[cfg(test)]
mod tests;
mod tls;

pub use signals::SignalHandling;
pub use target::Target;

use std::path::PathBuf;
use std::time::Duration;

use connection::{connection_setters, ConnectionSettings};

use crate::compression::Compression;
use crate::registry::{HistogramSettings, Matcher};
use crate::InitError;

/// The endpoint used when none is configured: a Pushgateway on this host, default port.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:9091";
/// Default time between interval pushes: 15 seconds.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(15);
/// Default time budget of one push that is not the final one, retries included: 10 seconds.
pub const DEFAULT_PUSH_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time budget of the final push, retries included: 5 seconds.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Default bound on the samples of one remote-write request: 2,000, the default
/// `queue_config.max_samples_per_send` of Prometheus's own remote-write sender, which every
/// receiver built for Prometheus takes (about 100 KiB of protobuf for series of a few labels,
/// far below VictoriaMetrics's `-maxInsertRequestSize` of 32 MiB and Mimir's distributor
/// message size).
pub const DEFAULT_REMOTE_WRITE_MAX_SAMPLES: usize = 2_000;

/// The accepted range of the samples of one remote-write request.
pub(crate) const MAX_SAMPLES_RANGE: std::ops::RangeInclusive<usize> = 1..=1_000_000;

/// Default bound on the number of record files in a spool directory: 100.
pub const DEFAULT_SPOOL_MAX_FILES: usize = 100;
/// Default bound on the total size of a spool directory's record files: 64 MiB.
pub const DEFAULT_SPOOL_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// Prometheus's default histogram buckets (client_golang's `DefBuckets`), in the unit
/// recorded (seconds, for durations).
pub const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The body format of a push to a Pushgateway; both carry the same samples.
///
/// Set with [`PushgatewayBuilder::exposition_format`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ExpositionFormat {
    /// The text exposition format 0.0.4 (`text/plain; version=0.0.4`): readable on the wire,
    /// for debugging.
    Text,
    /// Length-delimited `io.prometheus.client.MetricFamily` protobuf messages, as
    /// client_golang pushes them: the default. Pushgateway 1.5.1 takes them faster than the
    /// same samples as text (a warm push of 1,000 series: 3.1 ms against 4.2 ms; 100,000:
    /// 215 ms against 264 ms), and the body is a fifth smaller.
    #[default]
    Protobuf,
}

/// Which grouping labels come from a CI environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CiLabels {
    /// Repository, workflow and ref name.
    Stable,
    /// Those and the commit.
    WithCommit,
}

/// Configures and installs the exporter.
///
/// Ends in [`install`](Self::install), which installs the global `metrics` recorder, starts
/// one pusher thread per target and returns the [`PushGuard`](crate::PushGuard) (or in
/// [`build`](Self::build), which installs nothing process-wide). Every setting is checked
/// there, and any problem is an [`InitError`].
///
/// | method | default | environment ([`from_env`](Self::from_env)) |
/// |---|---|---|
/// | [`new`](Self::new) (endpoint) | `http://127.0.0.1:9091` | `PUSHGATEWAY_URL` |
/// | [`job`](Self::job) | none: required | argument of [`init`](crate::init) |
/// | [`grouping_label`](Self::grouping_label) | none | `PUSHGATEWAY_GROUPING=k=v,k2=v2` |
/// | [`global_label`](Self::global_label) | none | |
/// | [`interval`](Self::interval) | 15 s (`ZERO`: off) | `PUSHGATEWAY_INTERVAL` |
/// | [`push_timeout`](Self::push_timeout) | 10 s | `PUSHGATEWAY_PUSH_TIMEOUT` |
/// | [`shutdown_timeout`](Self::shutdown_timeout) | 5 s | `PUSHGATEWAY_SHUTDOWN_TIMEOUT` |
/// | [`basic_auth`](Self::basic_auth) | none | `PUSHGATEWAY_USERNAME`, `PUSHGATEWAY_PASSWORD` |
/// | [`bearer_token`](Self::bearer_token) | none | `PUSHGATEWAY_BEARER_TOKEN` |
/// | [`header`](Self::header) | none | |
/// | [`ca_certificate`](Self::ca_certificate) | built-in roots only | `PUSHGATEWAY_CA_FILE` |
/// | [`client_identity`](Self::client_identity) | none | `PUSHGATEWAY_CLIENT_CERT_FILE`, `PUSHGATEWAY_CLIENT_KEY_FILE` |
/// | [`spool_dir`](Self::spool_dir) | none: no spool | `PUSHGATEWAY_SPOOL_DIR` |
/// | [`spool_limits`](Self::spool_limits) | 100 files, 64 MiB | |
/// | [`remote_write_max_samples`](Self::remote_write_max_samples) | 2,000 | `PUSHGATEWAY_REMOTE_WRITE_MAX_SAMPLES` |
/// | [`method`](Self::method) | [`PushMethod::Put`](crate::PushMethod::Put) | |
/// | [`compression`](Self::compression) | [`Compression::None`] | |
/// | [`signals`](Self::signals) | [`SignalHandling::PushAndExit`] | |
/// | [`lifecycle_metrics`](Self::lifecycle_metrics) | on | |
/// | [`self_metrics`](Self::self_metrics) | on | `PUSHGATEWAY_SELF_METRICS=0` turns them off |
/// | [`delete_on_shutdown`](Self::delete_on_shutdown) | off | |
/// | [`buckets`](Self::buckets) | [`DEFAULT_BUCKETS`] | |
/// | [`histograms`](Self::histograms) | [`HistogramForm::Classic`](crate::HistogramForm::Classic) | `PUSHGATEWAY_HISTOGRAMS=classic\|native\|both` |
/// | [`native_histogram_bucket_factor`](Self::native_histogram_bucket_factor) | 1.1 (schema 3) | |
/// | [`native_histogram_max_buckets`](Self::native_histogram_max_buckets) | 160 | |
/// | [`native_histogram_zero_threshold`](Self::native_histogram_zero_threshold) | 2^-128 | |
/// | [`enabled`](Self::enabled) | on | `PUSHGATEWAY_DISABLED=1` turns it off |
/// | [`listen`](Self::listen) | none: not scraped | `PUSHGATEWAY_LISTEN=ip:port` |
///
/// ```no_run
/// use std::time::Duration;
/// use metrics_exporter_pushgateway::PushgatewayBuilder;
///
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     // The environment first (PUSHGATEWAY_URL, ...), then settings in code on top.
///     let guard = PushgatewayBuilder::from_env()?
///         .job("nightly-export")
///         .grouping_label("region", "eu")
///         .interval(Duration::from_secs(30))
///         .shutdown_timeout(Duration::from_secs(3))
///         .install()?;
///     guard.finish(export())
/// }
///
/// fn export() -> Result<(), Box<dyn std::error::Error>> {
///     metrics::counter!("exported_rows_total").increment(10_000);
///     Ok(())
/// }
/// ```
#[derive(Clone, Debug)]
pub struct PushgatewayBuilder {
    pub(crate) targets: Vec<Target>,
    job: String,
    grouping: Vec<(String, String)>,
    pub(crate) global: Vec<(String, String)>,
    pub(crate) interval: Duration,
    pub(crate) push_timeout: Duration,
    pub(crate) shutdown_timeout: Duration,
    /// The defaults of every target's own settings.
    pub(crate) settings: ConnectionSettings,
    pub(crate) compression: Compression,
    pub(crate) format: ExpositionFormat,
    pub(crate) signals: SignalHandling,
    pub(crate) lifecycle_metrics: bool,
    pub(crate) self_metrics: bool,
    ci_labels: Option<CiLabels>,
    hostname_label: Option<String>,
    pub(crate) delete_on_shutdown: bool,
    pub(crate) enabled: bool,
    pub(crate) buckets: Vec<f64>,
    pub(crate) buckets_for_metric: Vec<(Matcher, Vec<f64>)>,
    pub(crate) histograms: HistogramSettings,
    native_factor: f64,
    native_zero_threshold: f64,
    native_max_buckets: u32,
    pub(crate) accept_invalid_certs: bool,
    spool_dir: Option<PathBuf>,
    spool_max_files: usize,
    spool_max_bytes: u64,
    pub(crate) remote_write_max_samples: usize,
    /// The listener's address, and the setting or variable that gave it.
    pub(crate) listen: Option<(String, &'static str)>,
}

impl PushgatewayBuilder {
    /// A builder pushing to the Pushgateway at `endpoint` (e.g. `http://127.0.0.1:9091`, or
    /// `https://proxy.example/pushgateway` behind a reverse proxy). Without a scheme,
    /// `http://` is meant (`127.0.0.1:9091`). Credentials in the URL
    /// (`http://user:password@host`) are taken as basic auth and removed from the URL. A
    /// group path (`http://gw:9091/metrics/job/<job>{/<label>/<value>}`, the form
    /// `metrics-exporter-prometheus` takes) gives the job and grouping labels where the
    /// builder sets none; a value that differs from the builder's is an error at install.
    ///
    /// Nothing is checked until [`install`](Self::install).
    ///
    /// ```no_run
    /// use metrics_exporter_pushgateway::PushgatewayBuilder;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let guard = PushgatewayBuilder::new("http://pushgateway:9091")
    ///     .job("ingester")
    ///     .grouping_label("instance", "shard-3")
    ///     .install()?;
    /// guard.finish(Ok::<(), std::io::Error>(()))?;
    /// # Ok(()) }
    /// ```
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self::with_targets([Target::pushgateway(endpoint)])
    }

    /// A builder pushing to `targets` (see [`Target`]): several Pushgateways for redundancy,
    /// a remote-write receiver, a textfile directory, or any mix. Each target gets every push
    /// on its own thread, retried on its own within the same time budget; a target that is
    /// down neither delays nor fails the others.
    ///
    /// Nothing is checked until [`install`](Self::install). With no target at all, the
    /// default gateway ([`DEFAULT_ENDPOINT`]) is pushed to, unless a
    /// [`listen`](Self::listen) address is set: then the process is only scraped.
    pub fn with_targets(targets: impl IntoIterator<Item = Target>) -> Self {
        PushgatewayBuilder {
            targets: targets.into_iter().collect(),
            job: String::new(),
            grouping: Vec::new(),
            global: Vec::new(),
            interval: DEFAULT_INTERVAL,
            push_timeout: DEFAULT_PUSH_TIMEOUT,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            settings: ConnectionSettings::default(),
            compression: Compression::None,
            format: ExpositionFormat::Protobuf,
            signals: SignalHandling::PushAndExit,
            lifecycle_metrics: true,
            self_metrics: true,
            ci_labels: None,
            hostname_label: None,
            delete_on_shutdown: false,
            enabled: true,
            buckets: DEFAULT_BUCKETS.to_vec(),
            buckets_for_metric: Vec::new(),
            histograms: HistogramSettings::default(),
            native_factor: crate::native::DEFAULT_BUCKET_FACTOR,
            native_zero_threshold: crate::native::DEFAULT_ZERO_THRESHOLD,
            native_max_buckets: crate::native::DEFAULT_MAX_BUCKETS,
            accept_invalid_certs: false,
            spool_dir: None,
            spool_max_files: DEFAULT_SPOOL_MAX_FILES,
            spool_max_bytes: DEFAULT_SPOOL_MAX_BYTES,
            remote_write_max_samples: DEFAULT_REMOTE_WRITE_MAX_SAMPLES,
            listen: None,
        }
    }

    /// A builder configured from the environment variables in the table above (their names
    /// are the constants of [`env`](crate::env), where each is described); unset or empty variables keep the
    /// defaults. Targets added in code come on top of those of the environment; the default
    /// gateway is used only when neither sets any and no listener is set (so
    /// `from_env()?.remote_write(url)` pushes to `url` alone, and `PUSHGATEWAY_LISTEN` alone
    /// makes a process that is only scraped).
    ///
    /// # Errors
    ///
    /// [`InitError::InvalidEnv`] naming the variable and its value (secrets shown as `***`)
    /// when a variable is not Unicode, a URL does not parse, a duration is not a duration, a
    /// grouping label is malformed, or a password comes without a user name.
    pub fn from_env() -> Result<Self, InitError> {
        Self::from_lookup(|name| std::env::var_os(name))
    }

    /// Replaces the targets with `targets` (see [`with_targets`](Self::with_targets)).
    pub fn targets(mut self, targets: impl IntoIterator<Item = Target>) -> Self {
        self.targets = targets.into_iter().collect();
        self
    }

    /// Adds a target to those configured.
    pub fn add_target(mut self, target: Target) -> Self {
        self.targets.push(target);
        self
    }

    /// Serves `GET /metrics` on `addr` (an IP address and a port, e.g. `0.0.0.0:9100` or
    /// `[::1]:9100`; a host name is an [`InitError::Listen`], never resolved, so that install
    /// never waits for a name server; port 0 lets the system choose, see
    /// [`PushHandle::listen_addr`](crate::PushHandle::listen_addr)) for
    /// Prometheus to scrape, from the same registry the pushes send: one binary can be a
    /// scraped service and a pushing job at once, or only scraped (with no push target
    /// configured, nothing is pushed). Also `PUSHGATEWAY_LISTEN`.
    ///
    /// The body is the text format 0.0.4, or delimited protobuf `MetricFamily` messages when
    /// the scraper's `Accept` header prefers them (Prometheus with its protobuf scrape
    /// feature), negotiated as client_golang's `promhttp` does. Another path is answered 404,
    /// another method than `GET` or `HEAD` 405. The batch-job lifecycle metrics
    /// (`batch_job_*`, see [`lifecycle`](crate::lifecycle)) are not served: they describe a
    /// pushed run and belong to its group at the gateway, and a scraper has `up` and its own
    /// timestamps for what they would say; the exporter's own metrics are served.
    ///
    /// The address is bound at [`install`](Self::install) (a taken port is an
    /// [`InitError::Listen`] naming the address and the setting); the listener runs on a thread
    /// of its own with its own runtime, never the caller's, serves at most 32 connections at
    /// once (a new one replaces the one idle the longest when all are taken), reads at most
    /// 16 KiB of request headers within 5 s and no request body, holds at most 4 rendered
    /// bodies, drops a client that reads nothing for 10 s, answers `HEAD` without rendering,
    /// and stops when the final push starts (the guard's drop, [`exit`](crate::exit), a
    /// signal): the port is free once the final push has returned, which no scraper can
    /// delay past its bound. Plain HTTP only; put a reverse proxy in front for TLS.
    pub fn listen(mut self, addr: impl Into<String>) -> Self {
        self.listen = Some((addr.into(), "PushgatewayBuilder::listen"));
        self
    }

    /// Adds a Prometheus remote-write receiver (`url`, e.g. `http://mimir:9009/api/v1/push`)
    /// as a target: the same as `add_target(Target::remote_write(url))`.
    pub fn remote_write(self, url: impl Into<String>) -> Self {
        self.add_target(Target::remote_write(url))
    }

    /// Adds node_exporter's textfile collector directory as a target: the same as
    /// `add_target(Target::textfile(dir))`.
    pub fn textfile(self, dir: impl Into<PathBuf>) -> Self {
        self.add_target(Target::textfile(dir))
    }

    /// The job name: the `job` label of every pushed series, and the first part of the
    /// grouping key. Any non-empty string; values that cannot go into a URL path as they are
    /// are sent base64-encoded.
    pub fn job(mut self, job: impl Into<String>) -> Self {
        self.job = job.into();
        self
    }

    /// Adds a label to the grouping key (`/metrics/job/<job>/<name>/<value>`): pushes with the
    /// same job and grouping key replace each other. Every distinct grouping key is a group the
    /// gateway keeps until deleted, so use stable, low-cardinality values (a host or shard, not
    /// a run ID). The name must be a valid label name; the value may be any string.
    pub fn grouping_label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.grouping.push((name.into(), value.into()));
        self
    }

    /// Adds grouping labels that tell CI runs apart, read at [`install`](Self::install) from
    /// the CI environment, when there is one:
    ///
    /// | label | GitHub Actions | GitLab CI |
    /// |---|---|---|
    /// | `ci_repository` | `GITHUB_REPOSITORY` | `CI_PROJECT_PATH` |
    /// | `ci_workflow` | `GITHUB_WORKFLOW` | `CI_JOB_NAME` (GitLab names jobs, not workflows) |
    /// | `ci_ref` | `GITHUB_REF_NAME` | `CI_COMMIT_REF_NAME` |
    ///
    /// Outside CI (neither `GITHUB_ACTIONS` nor `GITLAB_CI` is `true`) it adds nothing. A
    /// grouping label set explicitly wins over the CI one of the same name.
    ///
    /// The cardinality rule: every distinct grouping key is a group the Pushgateway keeps
    /// until it is deleted, so only values that repeat from run to run belong in it. A branch
    /// per pull request already adds a group per branch; the commit would add one per push,
    /// which is why it is left out unless asked for with
    /// [`ci_commit_grouping_label`](Self::ci_commit_grouping_label). Also
    /// `PUSHGATEWAY_CI_LABELS=1` (or `=commit`).
    pub fn ci_grouping_labels(mut self) -> Self {
        if self.ci_labels.is_none() {
            self.ci_labels = Some(CiLabels::Stable);
        }
        self
    }

    /// [`ci_grouping_labels`](Self::ci_grouping_labels) and `ci_commit` (`GITHUB_SHA`,
    /// `CI_COMMIT_SHA`): one group per commit, kept by the gateway until deleted. Use with
    /// [`delete_on_shutdown`](Self::delete_on_shutdown) or a clean-up job.
    pub fn ci_commit_grouping_label(mut self) -> Self {
        self.ci_labels = Some(CiLabels::WithCommit);
        self
    }

    /// Adds a grouping label `name` whose value is this host's name, read at
    /// [`install`](Self::install) (`gethostname` on Unix, `GetComputerNameExW` on Windows):
    /// what client_golang's `push.HostnameGroupingKey` gives, for jobs that run on several
    /// hosts and must not replace each other's group. Also `PUSHGATEWAY_HOSTNAME_LABEL=instance`
    /// (shells' `$HOSTNAME` is not exported to cron jobs or set on Windows). A grouping label
    /// of the same name set explicitly wins.
    ///
    /// ```no_run
    /// use metrics_exporter_pushgateway::PushgatewayBuilder;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let _guard = PushgatewayBuilder::from_env()?
    ///     .job("backup")
    ///     .hostname_grouping_label("instance") // /metrics/job/backup/instance/<host name>
    ///     .install()?;
    /// # Ok(()) }
    /// ```
    pub fn hostname_grouping_label(mut self, name: impl Into<String>) -> Self {
        self.hostname_label = Some(name.into());
        self
    }

    /// Adds a label to every series in the body (not to the grouping key).
    pub fn global_label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.global.push((name.into(), value.into()));
        self
    }

    /// Time between pushes in the background. [`Duration::ZERO`] turns interval pushes off
    /// (only flushes and the final push are sent). Default 15 s.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Time budget of a push that is not the final one (interval pushes, [`flush`]), retries
    /// included; an interval push also never takes longer than the interval. Default 10 s.
    ///
    /// [`flush`]: crate::PushHandle::flush
    pub fn push_timeout(mut self, timeout: Duration) -> Self {
        self.push_timeout = timeout;
        self
    }

    /// Time budget of the final push, retries included: the longest a dead or hanging gateway
    /// can delay the end of the process (plus 200 ms). With a [spool](Self::spool_dir), a
    /// final push that failed is then written there as a record, for which the exit waits up
    /// to this timeout again (at least 1 s). Default 5 s.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Compression of request bodies. Default [`Compression::None`].
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// The body format of pushes to a Pushgateway. Default [`ExpositionFormat::Protobuf`];
    /// also `PUSHGATEWAY_FORMAT=text|protobuf`.
    pub fn exposition_format(mut self, format: ExpositionFormat) -> Self {
        self.format = format;
        self
    }

    /// What SIGTERM, SIGINT and SIGHUP do. Default [`SignalHandling::PushAndExit`].
    pub fn signals(mut self, signals: SignalHandling) -> Self {
        self.signals = signals;
        self
    }

    /// Whether pushes carry the batch-job lifecycle metrics ([`crate::lifecycle`]): start time,
    /// duration, outcome, exit code and last success time. Default on.
    pub fn lifecycle_metrics(mut self, enabled: bool) -> Self {
        self.lifecycle_metrics = enabled;
        self
    }

    /// Whether pushes carry the exporter's own metrics, prefixed `pushgateway_exporter_`:
    /// `pushes_total{result="success"|"failure"}`, `push_duration_seconds` (the last push,
    /// retries included), `sent_bytes_total` (request bodies, every attempt),
    /// `last_success_time_seconds`, and with a spool `spool_snapshots`, `spool_bytes`,
    /// `spool_written_total`, `spool_replayed_total`, `spool_dropped_total`. They are recorded
    /// after each push, so a push's own result shows from the next push on. Default on.
    pub fn self_metrics(mut self, enabled: bool) -> Self {
        self.self_metrics = enabled;
        self
    }

    /// Delete the group instead of making a final push, for long-running services that must
    /// not leave a stale group behind when they stop. Default off.
    pub fn delete_on_shutdown(mut self, enabled: bool) -> Self {
        self.delete_on_shutdown = enabled;
        self
    }

    /// Whether anything is pushed. When off, the recorder is still installed and
    /// [`render`](crate::PushHandle::render) works, but no thread, signal handler or panic hook
    /// is installed and pushes return a report without a status. Default on.
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Accepts any certificate from the gateway, without verifying it: anyone between the job
    /// and the gateway can read and change what is pushed, credentials included. For a test
    /// setup only; `install` logs a warning when it is on. Default off.
    pub fn danger_accept_invalid_certs(mut self, accept: bool) -> Self {
        self.accept_invalid_certs = accept;
        self
    }

    /// Keeps pushes that failed for good (retries used up, or the deadline reached at exit)
    /// in `dir`, one record (file) each, and sends them again later: the next process that installs with the
    /// same directory replays them on its pusher thread, oldest first, before its own pushes;
    /// [`replay`](Self::replay) does it on demand. Default: no spool.
    ///
    /// Per grouping key only the newest record is kept. The directory is created with mode
    /// 0700 and files with 0600. A push the gateway refuses for its content (400) is not
    /// spooled. Bounded by [`spool_limits`](Self::spool_limits).
    ///
    /// The spool keeps the first Pushgateway target's pushes and, of the first remote-write
    /// target's, the requests that did not arrive (with their samples' original timestamps),
    /// replayed to that receiver only.
    pub fn spool_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.spool_dir = Some(dir.into());
        self
    }

    /// Bounds of the spool: at most `max_files` records (files) and `max_bytes` bytes. When a
    /// new record would exceed them, the oldest files are removed, each with a warning and
    /// counted in `pushgateway_exporter_spool_dropped_total`. Default
    /// [`DEFAULT_SPOOL_MAX_FILES`](crate::DEFAULT_SPOOL_MAX_FILES) (100) and
    /// [`DEFAULT_SPOOL_MAX_BYTES`](crate::DEFAULT_SPOOL_MAX_BYTES) (64 MiB).
    pub fn spool_limits(mut self, max_files: usize, max_bytes: u64) -> Self {
        self.spool_max_files = max_files;
        self.spool_max_bytes = max_bytes;
        self
    }

    /// The most samples one remote-write request carries, from 1 to 1,000,000: a push with
    /// more goes as several requests, up to four at a time, each retried on its own within
    /// the push's time budget. Default
    /// [`DEFAULT_REMOTE_WRITE_MAX_SAMPLES`](crate::DEFAULT_REMOTE_WRITE_MAX_SAMPLES) (2,000);
    /// also `PUSHGATEWAY_REMOTE_WRITE_MAX_SAMPLES`. A value out of range is an
    /// [`InitError::InvalidSetting`] at install.
    pub fn remote_write_max_samples(mut self, max: usize) -> Self {
        self.remote_write_max_samples = max;
        self
    }

    /// Histogram bucket upper bounds for all histograms (strictly increasing, finite).
    /// Default [`DEFAULT_BUCKETS`]. Histograms are always rendered as Prometheus histograms
    /// (never summaries), so they aggregate across runs and instances.
    pub fn buckets(mut self, buckets: &[f64]) -> Self {
        self.buckets = buckets.to_vec();
        self
    }

    /// Histogram bucket upper bounds for the metrics `matcher` selects (full name, prefix or
    /// suffix), instead of [`buckets`](Self::buckets).
    pub fn buckets_for_metric(mut self, matcher: Matcher, buckets: &[f64]) -> Self {
        self.buckets_for_metric.push((matcher, buckets.to_vec()));
        self
    }
}

/// A builder with every setting at its default and no target: the same as
/// [`with_targets([])`](PushgatewayBuilder::with_targets), and as
/// [`from_env`](PushgatewayBuilder::from_env) in an environment that sets none of its
/// variables. Installed as it is, it pushes to the default gateway ([`DEFAULT_ENDPOINT`]);
/// a target added to it replaces the default gateway instead of joining it
/// (`PushgatewayBuilder::default().remote_write(url)` pushes to `url` alone, where
/// `new(DEFAULT_ENDPOINT).remote_write(url)` pushes to both). The job is not set: as with
/// [`new`](PushgatewayBuilder::new), [`job`](PushgatewayBuilder::job) (or a group path in a
/// URL) must give it before install.
///
/// ```no_run
/// use metrics_exporter_pushgateway::PushgatewayBuilder;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let _guard = PushgatewayBuilder::default().job("nightly").install()?; // 127.0.0.1:9091
/// # Ok(()) }
/// ```
impl Default for PushgatewayBuilder {
    fn default() -> Self {
        Self::with_targets([])
    }
}

connection_setters!(PushgatewayBuilder);
