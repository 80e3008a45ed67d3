//! [`PushgatewayBuilder`]: configuration, the environment, validation and `install()`.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};
use reqwest::Url;

use crate::compression::Compression;
use crate::exit::SignalHandling;
use crate::guard::{Inner, Lane, PushGuard, PushHandle};
use crate::lifecycle::Lifecycle;
use crate::log::redact_url;
use crate::pusher::{PusherConfig, Renderer};
use crate::registry::{Installed, Matcher, Registry};
use crate::sink::group::{group_path, url_for};
use crate::sink::http::TlsConfig;
use crate::sink::pushgateway::{PushgatewaySink, Settings};
use crate::sink::remote_write::RemoteWriteSink;
use crate::sink::replay::ReplayReport;
use crate::sink::textfile::TextfileSink;
use crate::sink::Sink;
use crate::spool::{Spool, DEFAULT_SPOOL_MAX_BYTES, DEFAULT_SPOOL_MAX_FILES};
use crate::target::PushMethod;
use crate::target::{Target, TargetKind};
use crate::InitError;

/// The endpoint used when none is configured: a Pushgateway on this host, default port.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:9091";
/// Default time between interval pushes: 15 seconds.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(15);
/// Default time budget of one push that is not the final one, retries included: 10 seconds.
pub const DEFAULT_PUSH_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time budget of the final push, retries included: 5 seconds.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// Prometheus's default histogram buckets (client_golang's `DefBuckets`), in the unit
/// recorded (seconds, for durations).
pub const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Environment variable: the Pushgateway endpoint (default `http://127.0.0.1:9091`), or
/// several, separated by commas, to push to each.
pub const ENV_URL: &str = "PUSHGATEWAY_URL";
/// Environment variable: the URL of a Prometheus remote-write receiver to push to (several,
/// separated by commas). With this or [`ENV_TEXTFILE_DIR`] set and [`ENV_URL`] unset, no
/// Pushgateway is pushed to.
pub const ENV_REMOTE_WRITE_URL: &str = "PUSHGATEWAY_REMOTE_WRITE_URL";
/// Environment variable: node_exporter's textfile collector directory, to write
/// `<job>.prom` in.
pub const ENV_TEXTFILE_DIR: &str = "PUSHGATEWAY_TEXTFILE_DIR";
/// Environment variable: user name for HTTP basic auth (needs [`ENV_PASSWORD`]).
pub const ENV_USERNAME: &str = "PUSHGATEWAY_USERNAME";
/// Environment variable: password for HTTP basic auth.
pub const ENV_PASSWORD: &str = "PUSHGATEWAY_PASSWORD";
/// Environment variable: bearer token sent as `Authorization: Bearer <token>`.
pub const ENV_BEARER_TOKEN: &str = "PUSHGATEWAY_BEARER_TOKEN";
/// Environment variable: time between interval pushes (`15s`, `500ms`, `1m`, or seconds as a
/// number); `0` or `off` turns interval pushes off.
pub const ENV_INTERVAL: &str = "PUSHGATEWAY_INTERVAL";
/// Environment variable: time budget of a push that is not the final one.
pub const ENV_PUSH_TIMEOUT: &str = "PUSHGATEWAY_PUSH_TIMEOUT";
/// Environment variable: time budget of the final push.
pub const ENV_SHUTDOWN_TIMEOUT: &str = "PUSHGATEWAY_SHUTDOWN_TIMEOUT";
/// Environment variable: grouping labels as `name=value,name=value`.
pub const ENV_GROUPING: &str = "PUSHGATEWAY_GROUPING";
/// Environment variable: `1`, `true`, `yes` or `on` turns pushing off (the recorder is still
/// installed and `render()` works): for unit tests and local runs.
pub const ENV_DISABLED: &str = "PUSHGATEWAY_DISABLED";

/// Environment variable: directory of the disk spool, where snapshots whose push failed are
/// kept until a later process (or [`replay`](crate::replay)) sends them. Unset: no spool.
pub const ENV_SPOOL_DIR: &str = "PUSHGATEWAY_SPOOL_DIR";
/// Environment variable: path of a PEM file of CA certificates to trust (in addition to the
/// built-in roots), for a gateway with a private CA.
pub const ENV_CA_FILE: &str = "PUSHGATEWAY_CA_FILE";
/// Environment variable: path of the PEM client certificate (chain) for mutual TLS; needs
/// [`ENV_CLIENT_KEY_FILE`].
pub const ENV_CLIENT_CERT_FILE: &str = "PUSHGATEWAY_CLIENT_CERT_FILE";
/// Environment variable: path of the PEM private key of the client certificate.
pub const ENV_CLIENT_KEY_FILE: &str = "PUSHGATEWAY_CLIENT_KEY_FILE";

/// Environment variable: `0`, `false`, `no` or `off` leaves the exporter's own metrics
/// (`pushgateway_exporter_*`) out of what is pushed.
pub const ENV_SELF_METRICS: &str = "PUSHGATEWAY_SELF_METRICS";

/// Environment variable: HTTP headers sent with every request, as `name=value,name2=value2`
/// (the `OTEL_EXPORTER_OTLP_HEADERS` convention; values may be percent-encoded, e.g. `%2C`
/// for a comma). Values are treated as secrets.
pub const ENV_HEADERS: &str = "PUSHGATEWAY_HEADERS";

/// Environment variable: the name of a grouping label whose value is this host's name
/// ([`PushgatewayBuilder::hostname_grouping_label`]), e.g. `instance`.
pub const ENV_HOSTNAME_LABEL: &str = "PUSHGATEWAY_HOSTNAME_LABEL";

/// Environment variable: `1`, `true`, `yes` or `on` adds grouping labels from a CI
/// environment ([`PushgatewayBuilder::ci_grouping_labels`]); `commit` adds the commit too.
pub const ENV_CI_LABELS: &str = "PUSHGATEWAY_CI_LABELS";

/// The body format of a push to a Pushgateway; both carry the same samples.
///
/// Set with [`PushgatewayBuilder::exposition_format`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ExpositionFormat {
    /// The text exposition format 0.0.4 (`text/plain; version=0.0.4`).
    #[default]
    Text,
    /// Length-delimited `io.prometheus.client.MetricFamily` protobuf messages, as
    /// client_golang pushes them.
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

/// A secret that never shows in `Debug` output.
#[derive(Clone)]
struct Secret<T = String>(T);

impl<T> std::fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

#[derive(Clone, Debug)]
enum Auth {
    Basic { username: String, password: Secret },
    Bearer(Secret),
}

/// Configures and installs the exporter.
///
/// Ends in [`install`](Self::install), which installs the global `metrics` recorder, starts
/// the pusher thread and returns the [`PushGuard`]. Every setting is checked there, and any
/// problem is an [`InitError`].
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
/// | [`method`](Self::method) | [`PushMethod::Put`] | |
/// | [`compression`](Self::compression) | [`Compression::None`] | |
/// | [`signals`](Self::signals) | [`SignalHandling::PushAndExit`] | |
/// | [`lifecycle_metrics`](Self::lifecycle_metrics) | on | |
/// | [`self_metrics`](Self::self_metrics) | on | `PUSHGATEWAY_SELF_METRICS=0` turns them off |
/// | [`delete_on_shutdown`](Self::delete_on_shutdown) | off | |
/// | [`buckets`](Self::buckets) | [`DEFAULT_BUCKETS`] | |
/// | [`enabled`](Self::enabled) | on | `PUSHGATEWAY_DISABLED=1` turns it off |
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
#[derive(Clone)]
pub struct PushgatewayBuilder {
    targets: Vec<Target>,
    job: String,
    grouping: Vec<(String, String)>,
    global: Vec<(String, String)>,
    interval: Duration,
    push_timeout: Duration,
    shutdown_timeout: Duration,
    auth: Option<Auth>,
    headers: Vec<(String, Secret)>,
    method: PushMethod,
    compression: Compression,
    format: ExpositionFormat,
    signals: SignalHandling,
    lifecycle_metrics: bool,
    self_metrics: bool,
    ci_labels: Option<CiLabels>,
    hostname_label: Option<String>,
    delete_on_shutdown: bool,
    enabled: bool,
    buckets: Vec<f64>,
    buckets_for_metric: Vec<(Matcher, Vec<f64>)>,
    tls: TlsConfig,
    client_cert: Option<Vec<u8>>,
    client_key: Option<Secret<Vec<u8>>>,
    spool_dir: Option<PathBuf>,
    spool_max_files: usize,
    spool_max_bytes: u64,
}

impl std::fmt::Debug for PushgatewayBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushgatewayBuilder")
            .field("targets", &self.targets)
            .field("job", &self.job)
            .field("grouping", &self.grouping)
            .field("global", &self.global)
            .field("interval", &self.interval)
            .field("push_timeout", &self.push_timeout)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("auth", &self.auth)
            .field("headers", &self.headers)
            .field("method", &self.method)
            .field("compression", &self.compression)
            .field("format", &self.format)
            .field("signals", &self.signals)
            .field("lifecycle_metrics", &self.lifecycle_metrics)
            .field("self_metrics", &self.self_metrics)
            .field("ci_labels", &self.ci_labels)
            .field("hostname_label", &self.hostname_label)
            .field("delete_on_shutdown", &self.delete_on_shutdown)
            .field("enabled", &self.enabled)
            .field("buckets", &self.buckets)
            .field("tls", &self.tls)
            .field("client_identity", &self.client_cert.is_some())
            .field("spool_dir", &self.spool_dir)
            .field("spool_max_files", &self.spool_max_files)
            .field("spool_max_bytes", &self.spool_max_bytes)
            .finish_non_exhaustive()
    }
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
    /// default gateway ([`DEFAULT_ENDPOINT`]) is pushed to.
    pub fn with_targets(targets: impl IntoIterator<Item = Target>) -> Self {
        PushgatewayBuilder {
            targets: targets.into_iter().collect(),
            job: String::new(),
            grouping: Vec::new(),
            global: Vec::new(),
            interval: DEFAULT_INTERVAL,
            push_timeout: DEFAULT_PUSH_TIMEOUT,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            auth: None,
            headers: Vec::new(),
            method: PushMethod::Put,
            compression: Compression::None,
            format: ExpositionFormat::Text,
            signals: SignalHandling::PushAndExit,
            lifecycle_metrics: true,
            self_metrics: true,
            ci_labels: None,
            hostname_label: None,
            delete_on_shutdown: false,
            enabled: true,
            buckets: DEFAULT_BUCKETS.to_vec(),
            buckets_for_metric: Vec::new(),
            tls: TlsConfig::default(),
            client_cert: None,
            client_key: None,
            spool_dir: None,
            spool_max_files: DEFAULT_SPOOL_MAX_FILES,
            spool_max_bytes: DEFAULT_SPOOL_MAX_BYTES,
        }
    }

    /// A builder configured from the environment variables in the table above
    /// ([`ENV_URL`] and the other `ENV_*` constants); unset or empty variables keep the
    /// defaults. Targets added in code come on top of those of the environment; the default
    /// gateway is used only when neither sets any (so
    /// `from_env()?.remote_write(url)` pushes to `url` alone).
    ///
    /// # Errors
    ///
    /// [`InitError::InvalidEnv`] naming the variable and its value (secrets shown as `***`)
    /// when a variable is not Unicode, a URL does not parse, a duration is not a duration, a
    /// grouping label is malformed, or a password comes without a user name.
    pub fn from_env() -> Result<Self, InitError> {
        Self::from_lookup(|name| std::env::var_os(name))
    }

    /// [`from_env`](Self::from_env) with a custom lookup, so that tests need not change the
    /// process environment.
    pub(crate) fn from_lookup(
        lookup: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<Self, InitError> {
        let var = |name: &'static str, secret: bool| -> Result<Option<String>, InitError> {
            match lookup(name) {
                None => Ok(None),
                Some(v) => match v.into_string() {
                    Ok(s) if s.trim().is_empty() => Ok(None),
                    Ok(s) => Ok(Some(s.trim().to_owned())),
                    Err(raw) => Err(InitError::InvalidEnv {
                        var: name,
                        value: if secret {
                            "***".into()
                        } else {
                            raw.to_string_lossy().into_owned()
                        },
                        reason: "not valid Unicode".into(),
                    }),
                },
            }
        };
        let mut b = Self::with_targets([]);
        let mut targets = Vec::new();
        for (name, kind) in [
            (ENV_URL, TargetKind::Pushgateway),
            (ENV_REMOTE_WRITE_URL, TargetKind::RemoteWrite),
        ] {
            let Some(list) = var(name, false)? else {
                continue;
            };
            for url in list.split(',').map(str::trim) {
                parse_endpoint(url, kind).map_err(|reason| InitError::InvalidEnv {
                    var: name,
                    value: redact_url(&list),
                    reason,
                })?;
                targets.push(match kind {
                    TargetKind::Pushgateway => Target::pushgateway(url),
                    _ => Target::remote_write(url),
                });
            }
        }
        if let Some(dir) = var(ENV_TEXTFILE_DIR, false)? {
            targets.push(Target::textfile(dir));
        }
        b.targets = targets;
        for (name, slot) in [
            (ENV_INTERVAL, &mut b.interval),
            (ENV_PUSH_TIMEOUT, &mut b.push_timeout),
            (ENV_SHUTDOWN_TIMEOUT, &mut b.shutdown_timeout),
        ] {
            if let Some(text) = var(name, false)? {
                let d = parse_duration(&text, name == ENV_INTERVAL).map_err(|reason| {
                    InitError::InvalidEnv {
                        var: name,
                        value: text.clone(),
                        reason,
                    }
                })?;
                if d.is_zero() && name != ENV_INTERVAL {
                    return Err(InitError::InvalidEnv {
                        var: name,
                        value: text,
                        reason: "a timeout must be longer than zero".into(),
                    });
                }
                *slot = d;
            }
        }
        if let Some(text) = var(ENV_GROUPING, false)? {
            b.grouping = parse_grouping(&text).map_err(|reason| InitError::InvalidEnv {
                var: ENV_GROUPING,
                value: text.clone(),
                reason,
            })?;
        }
        match (var(ENV_USERNAME, false)?, var(ENV_PASSWORD, true)?) {
            (Some(user), password) => b = b.basic_auth(user, password.unwrap_or_default()),
            (None, Some(_)) => {
                return Err(InitError::InvalidEnv {
                    var: ENV_PASSWORD,
                    value: "***".into(),
                    reason: format!("a password needs a user name in {ENV_USERNAME}"),
                })
            }
            (None, None) => {}
        }
        if let Some(token) = var(ENV_BEARER_TOKEN, true)? {
            b = b.bearer_token(token);
        }
        if let Some(text) = var(ENV_HEADERS, true)? {
            let shown = || redact_headers(&text);
            for (name, value) in parse_headers(&text).map_err(|reason| InitError::InvalidEnv {
                var: ENV_HEADERS,
                value: shown(),
                reason,
            })? {
                b = b.header(name, value);
            }
        }
        if let Some(name) = var(ENV_HOSTNAME_LABEL, false)? {
            check_label_name(&name).map_err(|reason| InitError::InvalidEnv {
                var: ENV_HOSTNAME_LABEL,
                value: name.clone(),
                reason: reason.into(),
            })?;
            b.hostname_label = Some(name);
        }
        if let Some(dir) = var(ENV_SPOOL_DIR, false)? {
            b.spool_dir = Some(dir.into());
        }
        let read_file = |name: &'static str, path: &str| {
            std::fs::read(path).map_err(|e| InitError::InvalidEnv {
                var: name,
                value: path.to_owned(),
                reason: format!("cannot read the file: {e}"),
            })
        };
        if let Some(path) = var(ENV_CA_FILE, false)? {
            b.tls.ca_pem = read_file(ENV_CA_FILE, &path)?;
        }
        match (
            var(ENV_CLIENT_CERT_FILE, false)?,
            var(ENV_CLIENT_KEY_FILE, false)?,
        ) {
            (Some(cert), Some(key)) => {
                let cert = read_file(ENV_CLIENT_CERT_FILE, &cert)?;
                let key = read_file(ENV_CLIENT_KEY_FILE, &key)?;
                b = b.client_identity(cert, key);
            }
            (Some(cert), None) => {
                return Err(InitError::InvalidEnv {
                    var: ENV_CLIENT_CERT_FILE,
                    value: cert,
                    reason: format!("a client certificate needs its key in {ENV_CLIENT_KEY_FILE}"),
                })
            }
            (None, Some(key)) => {
                return Err(InitError::InvalidEnv {
                    var: ENV_CLIENT_KEY_FILE,
                    value: key,
                    reason: format!("a client key needs its certificate in {ENV_CLIENT_CERT_FILE}"),
                })
            }
            (None, None) => {}
        }
        if let Some(text) = var(ENV_CI_LABELS, false)? {
            b.ci_labels = if text.eq_ignore_ascii_case("commit") {
                Some(CiLabels::WithCommit)
            } else {
                parse_bool(&text)
                    .map_err(|reason| InitError::InvalidEnv {
                        var: ENV_CI_LABELS,
                        value: text.clone(),
                        reason: format!("{reason}, or commit"),
                    })?
                    .then_some(CiLabels::Stable)
            };
        }
        if let Some(text) = var(ENV_SELF_METRICS, false)? {
            b.self_metrics = parse_bool(&text).map_err(|reason| InitError::InvalidEnv {
                var: ENV_SELF_METRICS,
                value: text.clone(),
                reason,
            })?;
        }
        if let Some(text) = var(ENV_DISABLED, false)? {
            b.enabled = !parse_bool(&text).map_err(|reason| InitError::InvalidEnv {
                var: ENV_DISABLED,
                value: text.clone(),
                reason,
            })?;
        }
        Ok(b)
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
    /// can delay the end of the process (plus 200 ms). Default 5 s.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// HTTP basic auth. The password never appears in logs, errors or `Debug` output.
    pub fn basic_auth(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.auth = Some(Auth::Basic {
            username: username.into(),
            password: Secret(password.into()),
        });
        self
    }

    /// A bearer token, sent as `Authorization: Bearer <token>`. Replaces basic auth if both
    /// are set. The token never appears in logs, errors or `Debug` output.
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.auth = Some(Auth::Bearer(Secret(token.into())));
        self
    }

    /// Adds an HTTP header to every request (e.g. a tenant header for a proxy). Values are
    /// treated as secrets: never logged or shown by `Debug`.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), Secret(value.into())));
        self
    }

    /// The HTTP method of pushes. Default [`PushMethod::Put`]. With lifecycle metrics on, only
    /// a successful run's final push uses PUT; other pushes are POSTs so that a failed or
    /// killed run keeps the last success timestamp (see [`lifecycle_metrics`](Self::lifecycle_metrics)).
    pub fn method(mut self, method: PushMethod) -> Self {
        self.method = method;
        self
    }

    /// Compression of request bodies. Default [`Compression::None`].
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// The body format of pushes to a Pushgateway. Default [`ExpositionFormat::Text`].
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

    /// Trusts the CA certificate(s) in `pem` (PEM, one or more `CERTIFICATE` blocks) for the
    /// gateway's certificate, in addition to the built-in roots: for a gateway whose
    /// certificate comes from a private CA. May be called several times.
    ///
    /// A certificate that no trusted CA signed fails the push with [`PushError::Tls`]; there is
    /// no fallback to an unverified connection.
    ///
    /// [`PushError::Tls`]: crate::PushError::Tls
    pub fn ca_certificate(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.tls.ca_pem.extend_from_slice(pem.as_ref());
        self.tls.ca_pem.push(b'\n');
        self
    }

    /// The client certificate (chain) and its private key, both PEM, presented for mutual TLS
    /// (a gateway with `client_auth_type: RequireAndVerifyClientCert`). The key is treated as
    /// a secret: never logged or shown by `Debug`.
    pub fn client_identity(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.client_cert = Some(cert_pem.into());
        self.client_key = Some(Secret(key_pem.into()));
        self
    }

    /// Accepts any certificate from the gateway, without verifying it: anyone between the job
    /// and the gateway can read and change what is pushed, credentials included. For a test
    /// setup only; `install` logs a warning when it is on. Default off.
    pub fn danger_accept_invalid_certs(mut self, accept: bool) -> Self {
        self.tls.accept_invalid_certs = accept;
        self
    }

    /// Keeps snapshots whose push failed for good (retries used up, or the deadline reached
    /// at exit) in `dir`, and sends them again later: the next process that installs with the
    /// same directory replays them on its pusher thread, oldest first, before its own pushes;
    /// [`replay`](Self::replay) does it on demand. Default: no spool.
    ///
    /// Per grouping key only the newest snapshot is kept. The directory is created with mode
    /// 0700 and files with 0600. A snapshot the gateway refuses for its content (400) is not
    /// spooled. Bounded by [`spool_limits`](Self::spool_limits).
    pub fn spool_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.spool_dir = Some(dir.into());
        self
    }

    /// Bounds of the spool: at most `max_files` snapshot files and `max_bytes` bytes. When a
    /// new snapshot would exceed them, the oldest files are removed, each with a warning and
    /// counted in `pushgateway_exporter_spool_dropped_total`. Default
    /// [`DEFAULT_SPOOL_MAX_FILES`](crate::DEFAULT_SPOOL_MAX_FILES) (100) and
    /// [`DEFAULT_SPOOL_MAX_BYTES`](crate::DEFAULT_SPOOL_MAX_BYTES) (64 MiB).
    pub fn spool_limits(mut self, max_files: usize, max_bytes: u64) -> Self {
        self.spool_max_files = max_files;
        self.spool_max_bytes = max_bytes;
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

    /// Checks the configuration, installs the global `metrics` recorder, starts the pusher
    /// thread (and, unless disabled, the signal listener and the panic hook) and returns the
    /// guard that makes the final push.
    ///
    /// Takes well under a millisecond: the HTTP client and TLS roots are built on the pusher
    /// thread, not here.
    ///
    /// # Errors
    ///
    /// [`InitError`] when a setting is invalid (URL, job, label names, timeouts, headers,
    /// buckets), a recorder is already installed in this process, or a thread cannot be
    /// started. Nothing is installed when a setting is invalid.
    pub fn install(mut self) -> Result<PushGuard, InitError> {
        if self.targets.is_empty() {
            self.targets.push(Target::pushgateway(DEFAULT_ENDPOINT));
        }
        if self.compression == Compression::Gzip && !cfg!(feature = "gzip") {
            return Err(InitError::InvalidSetting {
                setting: "compression",
                reason: "gzip needs the crate's `gzip` feature".into(),
            });
        }
        let (job, grouping) = self.identity()?;
        check_labels(&grouping, &self.global)?;
        for (setting, value) in [
            ("push_timeout", self.push_timeout),
            ("shutdown_timeout", self.shutdown_timeout),
        ] {
            if value.is_zero() {
                return Err(InitError::InvalidSetting {
                    setting,
                    reason: "must be longer than zero".into(),
                });
            }
        }
        let group = group_path(&job, &grouping);
        // The job and grouping labels as series labels, for the targets that take samples.
        let mut target_labels = vec![("job".to_owned(), job.clone())];
        target_labels.extend(grouping.iter().cloned());
        // Checked once: every HTTP target uses the same TLS material.
        let tls = self.tls_config()?;
        let mut spool = self.spool()?;
        if spool.is_some()
            && !self
                .targets
                .iter()
                .any(|t| t.kind() == TargetKind::Pushgateway)
        {
            return Err(InitError::InvalidSetting {
                setting: "spool_dir",
                reason: "the spool keeps pushes to a Pushgateway, and no Pushgateway is a target"
                    .into(),
            });
        }
        // Every target is checked before any thread starts.
        let mut planned_sinks: Vec<(Planned, Option<String>)> =
            Vec::with_capacity(self.targets.len());
        for target in &self.targets {
            planned_sinks.push(match target {
                Target::Pushgateway(raw) => {
                    let c = self.connection(raw, TargetKind::Pushgateway, &tls)?;
                    let group_url = url_for(&c.endpoint, &group);
                    let warning = insecure_warning(&group_url, c.credentials, &c.tls);
                    let settings = Settings {
                        method: self.method,
                        gzip: self.compression == Compression::Gzip,
                        protobuf: self.format == ExpositionFormat::Protobuf,
                        lifecycle: self.lifecycle_metrics,
                        push_timeout: self.push_timeout,
                    };
                    // The spool keeps the first Pushgateway target's pushes.
                    let sink = PushgatewaySink::new(
                        c.endpoint,
                        group.clone(),
                        settings,
                        c.headers,
                        c.tls,
                        spool.take(),
                    );
                    (planned(sink), warning)
                }
                Target::RemoteWrite(raw) => {
                    let c = self.connection(raw, TargetKind::RemoteWrite, &tls)?;
                    let warning = insecure_warning(&c.endpoint, c.credentials, &c.tls);
                    let sink =
                        RemoteWriteSink::new(c.endpoint, target_labels.clone(), c.headers, c.tls);
                    (planned(sink), warning)
                }
                Target::Textfile(dir) => {
                    if dir.as_os_str().is_empty() {
                        return Err(InitError::InvalidSetting {
                            setting: "textfile",
                            reason: "the directory must not be empty".into(),
                        });
                    }
                    let name = crate::sink::textfile::file_name(&job, &grouping);
                    let sink = TextfileSink::new(dir.clone(), name, target_labels.clone());
                    (planned(sink), None)
                }
            });
        }
        check_buckets(&self.buckets)?;
        for (_, buckets) in &self.buckets_for_metric {
            check_buckets(buckets)?;
        }
        let registry = Arc::new(Registry::new(
            &self.buckets,
            &self.buckets_for_metric,
            &self.global,
        ));
        let renderer = Arc::new(Renderer {
            registry: Arc::clone(&registry),
            lifecycle: self.lifecycle_metrics.then(Lifecycle::start),
        });
        let mut lanes = Vec::new();
        if self.enabled {
            for (i, (start, warning)) in planned_sinks.into_iter().enumerate() {
                if let Some(warning) = warning {
                    crate::log::warn(&warning);
                }
                let config = PusherConfig {
                    self_metrics: self.self_metrics,
                    interval: (!self.interval.is_zero()).then_some(self.interval),
                    push_timeout: self.push_timeout,
                    delete_on_shutdown: self.delete_on_shutdown,
                    renderer: Arc::clone(&renderer),
                    thread_name: match i {
                        0 => "pushgateway-pusher".to_owned(),
                        i => format!("pushgateway-pusher-{}", i + 1),
                    },
                };
                lanes.push(start(config).map_err(|source| InitError::FailedToSpawn {
                    what: "pusher thread",
                    source,
                })?);
            }
        }
        // Installed only after the pusher started: a failure above leaves the process as it
        // was. (If this fails, the pusher threads end when `lanes` drops.)
        metrics::set_global_recorder(Installed(registry))
            .map_err(|_| InitError::RecorderAlreadyInstalled)?;
        let handle = PushHandle {
            inner: Arc::new(Inner {
                renderer,
                lanes,
                push_timeout: self.push_timeout,
                shutdown_timeout: self.shutdown_timeout,
                exiting_by_signal: AtomicBool::new(false),
            }),
        };
        // The recorder above was the first, so this is the first handle too.
        let _ = crate::HANDLE.set(handle.clone());
        if self.enabled {
            crate::exit::install_panic_hook(handle.clone());
            crate::exit::listen(handle.clone(), self.signals).map_err(|source| {
                InitError::FailedToSpawn {
                    what: "signal listener",
                    source,
                }
            })?;
        }
        Ok(PushGuard::new(handle))
    }
}

impl PushgatewayBuilder {
    /// The job and the grouping labels: those set in code or the environment, then those of
    /// the Pushgateway URLs' group paths, then the host name and CI labels where no label of
    /// their name is set.
    fn identity(&self) -> Result<(String, Vec<(String, String)>), InitError> {
        let mut job = self.job.clone();
        let mut grouping = self.grouping.clone();
        for target in &self.targets {
            let Target::Pushgateway(raw) = target else {
                continue;
            };
            let conflict = |reason: String| InitError::InvalidUrl {
                target: TargetKind::Pushgateway,
                url: redact_url(raw),
                reason,
            };
            let Some(from_url) = parse_endpoint(raw, TargetKind::Pushgateway)
                .map_err(&conflict)?
                .group
            else {
                continue;
            };
            if job.is_empty() {
                job = from_url.job;
            } else if job != from_url.job {
                return Err(conflict(format!(
                    "its group path names the job {:?}, and the job is {job:?} (set by init's \
                     argument, .job() or another URL): give one job, or drop /metrics/job/... \
                     from the URL",
                    from_url.job
                )));
            }
            for (name, value) in from_url.grouping {
                match grouping.iter().find(|(n, _)| *n == name) {
                    Some((_, set)) if *set != value => {
                        return Err(conflict(format!(
                            "its group path sets {name}={value:?}, and {name}={set:?} is set \
                             too (in code, {ENV_GROUPING} or another URL)"
                        )))
                    }
                    Some(_) => {}
                    None => grouping.push((name, value)),
                }
            }
        }
        if job.is_empty() {
            return Err(InitError::EmptyJob);
        }
        let mut implied = Vec::new();
        if let Some(name) = &self.hostname_label {
            let host = hostname::get().map_err(|e| InitError::InvalidSetting {
                setting: "hostname_grouping_label",
                reason: format!("cannot read the host name: {e}"),
            })?;
            implied.push((name.clone(), host.to_string_lossy().into_owned()));
        }
        if let Some(which) = self.ci_labels {
            implied.extend(ci_labels(|v| std::env::var(v).ok(), which));
        }
        for (name, value) in implied {
            if !grouping.iter().any(|(n, _)| *n == name) {
                grouping.push((name, value));
            }
        }
        Ok((job, grouping))
    }

    /// Sends every snapshot in the spool directory to the gateway now, oldest first, and
    /// returns what happened: for operators draining a spool (e.g. from cron) and for jobs
    /// that want to drain it before they start. Installs nothing; the job, grouping labels and
    /// interval are not used (each snapshot carries its own grouping key). Each snapshot gets
    /// one attempt within the push timeout; the replay stops at the first one the gateway does
    /// not take (it is down, or refuses our credentials). Blocks the calling thread.
    ///
    /// If another process is replaying the same directory, nothing is sent and the report says
    /// so ([`ReplayReport::locked`]).
    ///
    /// # Errors
    ///
    /// [`InitError`] when no spool directory is configured, a setting is invalid, or the spool
    /// directory cannot be read or locked. What the gateway answers is in the report.
    pub fn replay(mut self) -> Result<ReplayReport, InitError> {
        if self.targets.is_empty() {
            self.targets.push(Target::pushgateway(DEFAULT_ENDPOINT));
        }
        let Some(Target::Pushgateway(raw)) = self
            .targets
            .iter()
            .find(|t| t.kind() == TargetKind::Pushgateway)
        else {
            return Err(InitError::InvalidSetting {
                setting: "targets",
                reason: "replay sends to a Pushgateway, and no Pushgateway is a target".into(),
            });
        };
        let Connection {
            endpoint,
            headers,
            tls,
            credentials,
        } = self.connection(raw, TargetKind::Pushgateway, &self.tls_config()?)?;
        let Some(spool) = self.spool()? else {
            return Err(InitError::InvalidSetting {
                setting: "spool_dir",
                reason: format!("replay needs a spool directory (set {ENV_SPOOL_DIR})"),
            });
        };
        if self.push_timeout.is_zero() {
            return Err(InitError::InvalidSetting {
                setting: "push_timeout",
                reason: "must be longer than zero".into(),
            });
        }
        if let Some(warning) = insecure_warning(&endpoint, credentials, &tls) {
            crate::log::warn(&warning);
        }
        let client =
            crate::sink::http::build_client(&endpoint, &headers, &tls).map_err(|reason| {
                InitError::InvalidSetting {
                    setting: "tls",
                    reason,
                }
            })?;
        crate::sink::replay::replay_all(client, &endpoint, &spool, self.push_timeout).map_err(
            |source| InitError::Spool {
                dir: spool.dir().to_owned(),
                source,
            },
        )
    }

    /// The checked URL of a target and what every request to it carries: headers (auth) and
    /// TLS. Credentials in the URL are that target's basic auth, over the builder's.
    /// `tls` is the checked TLS material ([`tls_config`](Self::tls_config)), shared by every
    /// target.
    fn connection(
        &self,
        raw: &str,
        kind: TargetKind,
        tls: &TlsConfig,
    ) -> Result<Connection, InitError> {
        let Endpoint {
            url: endpoint,
            auth: url_auth,
            ..
        } = parse_endpoint(raw, kind).map_err(|reason| InitError::InvalidUrl {
            target: kind,
            url: redact_url(raw),
            reason,
        })?;
        let auth = url_auth.or_else(|| self.auth.clone());
        Ok(Connection {
            headers: build_headers(auth.as_ref(), &self.headers)?,
            tls: tls.clone(),
            credentials: auth.is_some(),
            endpoint,
        })
    }

    fn spool(&self) -> Result<Option<Spool>, InitError> {
        let Some(dir) = &self.spool_dir else {
            return Ok(None);
        };
        if dir.as_os_str().is_empty() {
            return Err(InitError::InvalidSetting {
                setting: "spool_dir",
                reason: "the directory must not be empty".into(),
            });
        }
        if self.spool_max_files == 0 || self.spool_max_bytes == 0 {
            return Err(InitError::InvalidSetting {
                setting: "spool_limits",
                reason: "both bounds must be above zero".into(),
            });
        }
        Ok(Some(Spool::new(
            dir.clone(),
            self.spool_max_files,
            self.spool_max_bytes,
        )))
    }

    /// Without the `tls` feature, TLS settings are refused.
    #[cfg(not(feature = "tls"))]
    fn tls_config(&self) -> Result<TlsConfig, InitError> {
        if !self.tls.ca_pem.is_empty()
            || self.client_cert.is_some()
            || self.tls.accept_invalid_certs
        {
            return Err(InitError::InvalidTls {
                what: "settings",
                reason: "TLS needs the crate's `tls` feature".into(),
            });
        }
        Ok(self.tls.clone())
    }

    /// Checks the TLS material (every PEM block parses, CA certificates are X.509) and puts
    /// it in the form the HTTP client takes.
    #[cfg(feature = "tls")]
    fn tls_config(&self) -> Result<TlsConfig, InitError> {
        use rustls_pki_types::pem::PemObject as _;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let certs = |what: &'static str, pem: &[u8]| {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
                .collect::<Result<_, _>>()
                .map_err(|e| InitError::InvalidTls {
                    what,
                    reason: format!("not valid PEM: {e}"),
                })?;
            if certs.is_empty() {
                return Err(InitError::InvalidTls {
                    what,
                    reason: "no -----BEGIN CERTIFICATE----- block found".into(),
                });
            }
            Ok(certs)
        };
        let mut tls = self.tls.clone();
        if !tls.ca_pem.is_empty() {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certs("CA certificate", &tls.ca_pem)? {
                roots.add(cert).map_err(|e| InitError::InvalidTls {
                    what: "CA certificate",
                    reason: e.to_string(),
                })?;
            }
        }
        if let (Some(cert), Some(Secret(key))) = (&self.client_cert, &self.client_key) {
            certs("client certificate", cert)?;
            PrivateKeyDer::from_pem_slice(key).map_err(|e| InitError::InvalidTls {
                what: "client key",
                reason: format!("no PKCS#8, PKCS#1 or SEC1 private key found in PEM: {e}"),
            })?;
            let mut pem = key.clone();
            pem.push(b'\n');
            pem.extend_from_slice(cert);
            tls.identity_pem = Some(pem);
        }
        Ok(tls)
    }
}

/// The grouping labels of the CI environment `lookup` describes (none outside CI).
fn ci_labels(lookup: impl Fn(&str) -> Option<String>, which: CiLabels) -> Vec<(String, String)> {
    let is = |var: &str| lookup(var).is_some_and(|v| v == "true");
    let vars: [(&str, &str); 4] = if is("GITHUB_ACTIONS") {
        [
            ("ci_repository", "GITHUB_REPOSITORY"),
            ("ci_workflow", "GITHUB_WORKFLOW"),
            ("ci_ref", "GITHUB_REF_NAME"),
            ("ci_commit", "GITHUB_SHA"),
        ]
    } else if is("GITLAB_CI") {
        [
            ("ci_repository", "CI_PROJECT_PATH"),
            ("ci_workflow", "CI_JOB_NAME"),
            ("ci_ref", "CI_COMMIT_REF_NAME"),
            ("ci_commit", "CI_COMMIT_SHA"),
        ]
    } else {
        return Vec::new();
    };
    vars.iter()
        .filter(|(label, _)| *label != "ci_commit" || which == CiLabels::WithCommit)
        .filter_map(|(label, var)| {
            let value = lookup(var)?;
            (!value.is_empty()).then(|| ((*label).to_owned(), value))
        })
        .collect()
}

/// A checked target, ready for its pusher thread: starts it and returns the channel to it.
type Planned = Box<dyn FnOnce(PusherConfig) -> std::io::Result<Lane>>;

fn planned<S: Sink + Send + 'static>(sink: S) -> Planned {
    Box::new(move |config| {
        let (kind, location) = (sink.kind(), sink.location().to_owned());
        let tx = crate::pusher::spawn(sink, config)?;
        Ok(Lane { tx, kind, location })
    })
}

/// The endpoint (without credentials) and the settings of every request to it.
struct Connection {
    endpoint: Url,
    headers: HeaderMap,
    tls: TlsConfig,
    /// Whether requests carry basic auth or a bearer token.
    credentials: bool,
}

/// The warning for a configuration that exposes what is pushed, if any: credentials over
/// plain http to a host that is not loopback, or certificate verification turned off.
fn insecure_warning(url: &Url, credentials: bool, tls: &TlsConfig) -> Option<String> {
    if tls.accept_invalid_certs {
        return Some(format!(
            "certificate verification is off for {url} (danger_accept_invalid_certs): anyone on \
             the path can read and change what is pushed"
        ));
    }
    if credentials && url.scheme() == "http" && !is_loopback(url) {
        return Some(format!(
            "credentials are sent over plain http to {url}, a host that is not loopback: \
             anyone on the path can read them; use https"
        ));
    }
    None
}

fn check_buckets(buckets: &[f64]) -> Result<(), InitError> {
    if buckets.is_empty() {
        return Err(InitError::InvalidBuckets("no bucket bounds given".into()));
    }
    if buckets.iter().any(|b| !b.is_finite()) {
        return Err(InitError::InvalidBuckets(format!(
            "bounds must be finite (the +Inf bucket is added by itself): {buckets:?}"
        )));
    }
    if buckets.windows(2).any(|w| w[0] >= w[1]) {
        return Err(InitError::InvalidBuckets(format!(
            "bounds must be strictly increasing: {buckets:?}"
        )));
    }
    Ok(())
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// A checked target URL.
#[derive(Debug)]
struct Endpoint {
    /// The URL without credentials (and, for a Pushgateway, without a group path).
    url: Url,
    /// The credentials the URL held, as basic auth.
    auth: Option<Auth>,
    /// The job and grouping labels of a Pushgateway URL's group path.
    group: Option<UrlGroup>,
}

/// The job and grouping labels of a `/metrics/job/<job>{/<label>/<value>}` path.
#[derive(Debug, PartialEq, Eq)]
struct UrlGroup {
    job: String,
    grouping: Vec<(String, String)>,
}

/// Parses and checks a target's URL. Without a scheme, `http://` is meant.
fn parse_endpoint(raw: &str, kind: TargetKind) -> Result<Endpoint, String> {
    let with_scheme;
    let raw = if raw.contains("://") {
        raw
    } else {
        with_scheme = format!("http://{raw}");
        &with_scheme
    };
    let mut url = Url::parse(raw).map_err(|e| e.to_string())?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(format!(
            "the scheme must be http or https, not {:?}",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("no host".into());
    }
    if url.scheme() == "https" && !cfg!(feature = "tls") {
        return Err("https needs the crate's `tls` feature".into());
    }
    if kind == TargetKind::RemoteWrite && !cfg!(feature = "remote-write") {
        return Err("remote write needs the crate's `remote-write` feature".into());
    }
    if url.fragment().is_some() {
        return Err("a fragment cannot be part of the URL".into());
    }
    // Remote-write receivers may take settings in the query (VictoriaMetrics' extra_label).
    if url.query().is_some() && kind == TargetKind::Pushgateway {
        return Err("a query string cannot be part of a Pushgateway URL".into());
    }
    let group = if kind == TargetKind::Pushgateway {
        take_group_path(&mut url)?
    } else {
        None
    };
    let auth = if url.username().is_empty() {
        None
    } else {
        let decode = |s: &str| {
            percent_decode(s).ok_or_else(|| "the credentials are not valid UTF-8".to_owned())
        };
        let auth = Auth::Basic {
            username: decode(url.username())?,
            password: Secret(decode(url.password().unwrap_or(""))?),
        };
        let _ = url.set_username("");
        let _ = url.set_password(None);
        Some(auth)
    };
    Ok(Endpoint { url, auth, group })
}

/// Removes a `/metrics/job/<job>{/<label>/<value>}` group path from a Pushgateway URL and
/// returns its job and labels (segments decoded as the gateway does: percent-encoding, and
/// `<label>@base64/<value>` in the URL-safe alphabet, padding optional). The rest of the
/// path is kept as the endpoint's prefix.
fn take_group_path(url: &mut Url) -> Result<Option<UrlGroup>, String> {
    let path = url.path().to_owned();
    let segments: Vec<&str> = path.split('/').collect();
    let Some(at) = segments
        .windows(2)
        .position(|w| w[0] == "metrics" && (w[1] == "job" || w[1] == "job@base64"))
    else {
        return Ok(None);
    };
    let rest = &segments[at + 1..];
    let rest = rest.strip_suffix(&[""]).unwrap_or(rest);
    if !rest.len().is_multiple_of(2) {
        return Err(format!(
            "the group path {path:?} must be /metrics/job/<job> followed by <label>/<value> \
             pairs"
        ));
    }
    let mut pairs = Vec::with_capacity(rest.len() / 2);
    for pair in rest.chunks(2) {
        let (name, value) = match pair[0].strip_suffix("@base64") {
            Some(name) => {
                let padded = pair[1].trim_end_matches('=');
                let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(padded)
                    .map_err(|e| format!("the value of {name} in the group path: {e}"))?;
                let value = String::from_utf8(bytes).map_err(|_| {
                    format!("the value of {name} in the group path is not valid UTF-8")
                })?;
                (name, value)
            }
            None => (
                pair[0],
                percent_decode(pair[1]).ok_or_else(|| {
                    format!(
                        "the value of {} in the group path is not valid UTF-8",
                        pair[0]
                    )
                })?,
            ),
        };
        pairs.push((name.to_owned(), value));
    }
    let mut pairs = pairs.into_iter();
    let job = pairs.next().map(|(_, job)| job).unwrap_or_default();
    if job.is_empty() {
        return Err(format!("the group path {path:?} names an empty job"));
    }
    url.set_path(&segments[..at].join("/"));
    Ok(Some(UrlGroup {
        job,
        grouping: pairs.collect(),
    }))
}

/// Parses `name=value,name2=value2` (values percent-decoded), as `OTEL_EXPORTER_OTLP_HEADERS`.
fn parse_headers(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut headers = Vec::new();
    for (i, item) in text.split(',').map(str::trim).enumerate() {
        if item.is_empty() {
            continue;
        }
        let Some((name, value)) = item.split_once('=') else {
            // The item may be a secret: it is not shown.
            return Err(format!("item {} is not name=value", i + 1));
        };
        let name = name.trim();
        if name.is_empty() {
            return Err("a header name is empty".into());
        }
        let value = percent_decode(value.trim())
            .ok_or_else(|| format!("the value of {name} is not valid UTF-8 once decoded"))?;
        headers.push((name.to_owned(), value));
    }
    Ok(headers)
}

/// `name=***,name2=***`: a header list with its values hidden.
fn redact_headers(text: &str) -> String {
    text.split(',')
        .map(|item| match item.split_once('=') {
            Some((name, _)) => format!("{}=***", name.trim()),
            None => "***".to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn percent_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// Checks a label name against `[a-zA-Z_][a-zA-Z0-9_]*`, with `__` reserved.
pub(crate) fn check_label_name(name: &str) -> Result<(), &'static str> {
    let mut chars = name.chars();
    match chars.next() {
        None => return Err("a label name must not be empty"),
        Some(c) if !(c.is_ascii_alphabetic() || c == '_') => {
            return Err("a label name must start with a letter or an underscore")
        }
        Some(_) => {}
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err("a label name may hold only ASCII letters, digits and underscores");
    }
    if name.starts_with("__") {
        return Err("label names starting with __ are reserved for Prometheus");
    }
    Ok(())
}

fn check_labels(
    grouping: &[(String, String)],
    global: &[(String, String)],
) -> Result<(), InitError> {
    for (kind, labels) in [("grouping", grouping), ("global", global)] {
        for (i, (name, _)) in labels.iter().enumerate() {
            check_label_name(name).map_err(|reason| InitError::InvalidLabelName {
                kind,
                name: name.clone(),
                reason,
            })?;
            if name == "job" {
                return Err(InitError::InvalidLabelName {
                    kind,
                    name: name.clone(),
                    reason: "the job label is the job name: set it with .job()",
                });
            }
            if labels[..i].iter().any(|(n, _)| n == name) {
                return Err(InitError::DuplicateLabel {
                    name: name.clone(),
                    reason: if kind == "grouping" {
                        "it is given twice as a grouping label"
                    } else {
                        "it is given twice as a global label"
                    },
                });
            }
        }
    }
    if let Some((name, _)) = global
        .iter()
        .find(|(g, _)| grouping.iter().any(|(n, _)| n == g))
    {
        return Err(InitError::DuplicateLabel {
            name: name.clone(),
            reason: "it is both a global and a grouping label, and the gateway would overwrite \
                     the global value with the grouping value",
        });
    }
    Ok(())
}

fn build_headers(auth: Option<&Auth>, custom: &[(String, Secret)]) -> Result<HeaderMap, InitError> {
    let mut headers = HeaderMap::new();
    for (name, Secret(value)) in custom {
        let header_name =
            HeaderName::from_bytes(name.as_bytes()).map_err(|e| InitError::InvalidHeader {
                name: name.clone(),
                reason: e.to_string(),
            })?;
        let mut header_value =
            HeaderValue::from_str(value).map_err(|_| InitError::InvalidHeader {
                name: name.clone(),
                reason: "the value holds characters not allowed in an HTTP header".into(),
            })?;
        header_value.set_sensitive(true);
        headers.append(header_name, header_value);
    }
    let authorization = match auth {
        None => return Ok(headers),
        Some(Auth::Basic { username, password }) => {
            if username.contains(':') {
                return Err(InitError::InvalidSetting {
                    setting: "basic_auth",
                    reason: "the user name must not contain ':'".into(),
                });
            }
            format!(
                "Basic {}",
                STANDARD.encode(format!("{username}:{}", password.0))
            )
        }
        Some(Auth::Bearer(token)) => format!("Bearer {}", token.0),
    };
    let mut value =
        HeaderValue::from_str(&authorization).map_err(|_| InitError::InvalidSetting {
            setting: if matches!(auth, Some(Auth::Bearer(_))) {
                "bearer_token"
            } else {
                "basic_auth"
            },
            reason: "the credentials hold characters not allowed in an HTTP header".into(),
        })?;
    value.set_sensitive(true);
    headers.insert(AUTHORIZATION, value);
    Ok(headers)
}

/// Parses `15s`, `500ms`, `1m 30s` (humantime), or a bare number of seconds (`2.5`); with
/// `allow_off`, also `off`.
fn parse_duration(text: &str, allow_off: bool) -> Result<Duration, String> {
    if allow_off && text.eq_ignore_ascii_case("off") {
        return Ok(Duration::ZERO);
    }
    if let Ok(secs) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(secs)
            .map_err(|_| "seconds must be a finite number, zero or more".to_owned());
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("expected a duration such as 15s, 500ms or 1m ({e})"))
}

fn parse_bool(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err("expected 1, true, yes, on, or 0, false, no, off".into()),
    }
}

fn parse_grouping(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut labels: Vec<(String, String)> = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((name, value)) = item.split_once('=') else {
            return Err(format!("{item:?} is not name=value"));
        };
        let name = name.trim();
        check_label_name(name).map_err(|reason| format!("label {name:?}: {reason}"))?;
        if name == "job" {
            return Err("the job label is the job name, not a grouping label".into());
        }
        if labels.iter().any(|(n, _)| n == name) {
            return Err(format!("label {name:?} is given twice"));
        }
        labels.push((name.to_owned(), value.trim().to_owned()));
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::ffi::OsString;

    fn env(vars: &[(&str, &str)]) -> Result<PushgatewayBuilder, InitError> {
        let map: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        PushgatewayBuilder::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn label_names() {
        for ok in ["instance", "_x", "a1_B"] {
            assert_eq!(check_label_name(ok), Ok(()), "{ok}");
        }
        for bad in ["", "a-b", "1a", "__a", "a b", "ä"] {
            assert!(check_label_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn label_conflicts_are_errors() {
        let g = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let err = check_labels(&g(&[("instance", "a"), ("instance", "b")]), &[]).unwrap_err();
        assert!(matches!(err, InitError::DuplicateLabel { ref name, .. } if name == "instance"));
        let err = check_labels(&g(&[("instance", "a")]), &g(&[("instance", "b")])).unwrap_err();
        assert!(
            err.to_string()
                .contains("both a global and a grouping label"),
            "{err}"
        );
        let err = check_labels(&g(&[("job", "a")]), &[]).unwrap_err();
        assert!(err.to_string().contains(".job()"), "{err}");
        let err = check_labels(&[], &g(&[("a-b", "x")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid global label name \"a-b\": a label name may hold only ASCII letters, digits and underscores"
        );
    }

    #[test]
    fn endpoints() {
        let Endpoint { url, auth, group } =
            parse_endpoint("http://127.0.0.1:9091", TargetKind::Pushgateway).unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:9091/");
        assert!(auth.is_none() && group.is_none());
        // No scheme: http, as client_golang and the prometheus crate take it.
        for (raw, kind) in [
            ("127.0.0.1:9091/", TargetKind::Pushgateway),
            ("gateway:9091/", TargetKind::Pushgateway),
            ("localhost:9091/prefix", TargetKind::Pushgateway),
            ("mimir:9009/api/v1/push", TargetKind::RemoteWrite),
        ] {
            let url = parse_endpoint(raw, kind).unwrap().url;
            assert_eq!(url.as_str(), format!("http://{raw}"), "{raw}");
        }
        let Endpoint { url, auth, .. } = parse_endpoint(
            "https://u:p%40ss@gw.example/prefix",
            TargetKind::Pushgateway,
        )
        .unwrap();
        assert_eq!(url.as_str(), "https://gw.example/prefix");
        match auth {
            Some(Auth::Basic { username, password }) => {
                assert_eq!(username, "u");
                assert_eq!(password.0, "p@ss");
            }
            other => panic!("{other:?}"),
        }
        for (bad, why) in [
            ("ftp://gw", "scheme"),
            ("http://", "empty host"),
            ("http://gw/?a=b", "query"),
            ("not a url", "international domain name"),
            ("gateway:9091:9092", "invalid port"),
            ("http://[::1", "invalid IPv6"),
            (
                "http://gw/metrics/job/a/instance",
                "followed by <label>/<value> pairs",
            ),
            ("http://gw/metrics/job/", "must be /metrics/job/<job>"),
            (
                "http://gw/metrics/job@base64/",
                "must be /metrics/job/<job>",
            ),
            ("http://gw/metrics/job@base64/=", "empty job"),
            ("http://gw/metrics/job/a/x@base64/!!", "the value of x"),
            ("http://gw/metrics/job/a/x@base64/_w", "not valid UTF-8"),
        ] {
            let err = parse_endpoint(bad, TargetKind::Pushgateway).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn group_paths_in_pushgateway_urls() {
        let parse = |raw| parse_endpoint(raw, TargetKind::Pushgateway).unwrap();
        let e = parse("http://gw:9091/metrics/job/ingester");
        assert_eq!(e.url.as_str(), "http://gw:9091/");
        assert_eq!(
            e.group,
            Some(UrlGroup {
                job: "ingester".into(),
                grouping: vec![]
            })
        );
        // A prefix before the group path is the endpoint's; values decoded as the gateway
        // decodes them; a trailing slash is allowed.
        let e = parse(
            "https://u:p@gw/push/metrics/job@base64/YS9i/instance/h%201/path@base64/L3Zhci9sb2c=/",
        );
        assert_eq!(e.url.as_str(), "https://gw/push");
        assert_eq!(
            e.group,
            Some(UrlGroup {
                job: "a/b".into(),
                grouping: vec![
                    ("instance".into(), "h 1".into()),
                    ("path".into(), "/var/log".into())
                ]
            })
        );
        // Remote-write URLs are taken as they are.
        let e = parse_endpoint("http://vm/metrics/job/x", TargetKind::RemoteWrite).unwrap();
        assert_eq!(e.url.as_str(), "http://vm/metrics/job/x");
        assert!(e.group.is_none());
    }

    #[test]
    fn the_group_path_gives_job_and_grouping_where_code_sets_none() {
        let b = PushgatewayBuilder::new("http://gw:9091/metrics/job/from-url/instance/h1")
            .grouping_label("zone", "eu");
        let (job, grouping) = b.identity().unwrap();
        assert_eq!(job, "from-url");
        assert_eq!(
            grouping,
            [
                ("zone".to_owned(), "eu".to_owned()),
                ("instance".to_owned(), "h1".to_owned())
            ]
        );
        // The same values twice are no conflict.
        let b = PushgatewayBuilder::new("http://gw:9091/metrics/job/a/instance/h1")
            .job("a")
            .grouping_label("instance", "h1");
        assert_eq!(b.identity().unwrap().0, "a");
        let err = PushgatewayBuilder::new("http://gw:9091/metrics/job/from-url")
            .job("ingester")
            .install()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid Pushgateway URL \"http://gw:9091/metrics/job/from-url\": its group path \
             names the job \"from-url\", and the job is \"ingester\" (set by init's argument, \
             .job() or another URL): give one job, or drop /metrics/job/... from the URL"
        );
        let err = PushgatewayBuilder::new("http://gw:9091/metrics/job/a/instance/h1")
            .grouping_label("instance", "h2")
            .install()
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("sets instance=\"h1\", and instance=\"h2\" is set too"),
            "{err}"
        );
        // Two gateways naming two jobs.
        let err = env(&[(ENV_URL, "gw1/metrics/job/a,gw2/metrics/job/b")])
            .unwrap()
            .install()
            .unwrap_err();
        assert!(err.to_string().contains("names the job \"b\""), "{err}");
        // A grouping label that is not a label name is refused as any other.
        let err = PushgatewayBuilder::new("http://gw/metrics/job/a/1x/v")
            .install()
            .unwrap_err();
        assert!(matches!(err, InitError::InvalidLabelName { .. }), "{err}");
    }

    #[test]
    fn the_default_gateway_only_without_any_target() {
        let b = env(&[]).unwrap();
        assert!(b.targets.is_empty());
        let b = env(&[])
            .unwrap()
            .remote_write("http://mimir:9009/api/v1/push");
        assert_eq!(
            b.targets,
            [Target::remote_write("http://mimir:9009/api/v1/push")]
        );
        let b = env(&[]).unwrap().textfile("/tmp");
        assert_eq!(b.targets, [Target::textfile("/tmp")]);
    }

    #[test]
    fn headers_from_the_environment() {
        let b = env(&[(
            ENV_HEADERS,
            "X-Scope-OrgID=team-a, Authorization=Bearer%20abc%2Cdef ,X-Empty=",
        )])
        .unwrap();
        let headers: Vec<(&str, &str)> = b
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.0.as_str()))
            .collect();
        assert_eq!(
            headers,
            [
                ("X-Scope-OrgID", "team-a"),
                ("Authorization", "Bearer abc,def"),
                ("X-Empty", "")
            ]
        );
        assert!(!format!("{b:?}").contains("team-a"), "{b:?}");
        for bad in ["X-A=1,secret-token", "=x", "X-A=%FF"] {
            let err = env(&[(ENV_HEADERS, bad)]).unwrap_err().to_string();
            assert!(err.contains("PUSHGATEWAY_HEADERS"), "{err}");
            assert!(!err.contains("secret") && !err.contains("%FF"), "{err}");
        }
        let err = env(&[(ENV_HEADERS, "Bad Name=1")])
            .unwrap()
            .job("j")
            .install()
            .unwrap_err();
        assert!(matches!(err, InitError::InvalidHeader { .. }), "{err}");
    }

    #[test]
    fn the_host_name_as_a_grouping_label() {
        let host = hostname::get().unwrap().to_string_lossy().into_owned();
        assert!(!host.is_empty());
        let b = env(&[(ENV_HOSTNAME_LABEL, "instance")]).unwrap().job("j");
        assert_eq!(
            b.identity().unwrap().1,
            [("instance".to_owned(), host.clone())]
        );
        // An explicit label of the same name wins.
        let b = PushgatewayBuilder::new(DEFAULT_ENDPOINT)
            .job("j")
            .hostname_grouping_label("instance")
            .grouping_label("instance", "mine");
        assert_eq!(
            b.identity().unwrap().1,
            [("instance".to_owned(), "mine".to_owned())]
        );
        let err = env(&[(ENV_HOSTNAME_LABEL, "host-name")]).unwrap_err();
        assert!(
            err.to_string().contains("PUSHGATEWAY_HOSTNAME_LABEL"),
            "{err}"
        );
    }

    #[test]
    fn targets_from_the_environment() {
        let b = env(&[(ENV_URL, "http://a:9091, http://b:9091")]).unwrap();
        assert_eq!(
            b.targets,
            [
                Target::pushgateway("http://a:9091"),
                Target::pushgateway("http://b:9091")
            ]
        );
        // Another target alone replaces the default gateway.
        let b = env(&[(ENV_REMOTE_WRITE_URL, "http://mimir:9009/api/v1/push")]).unwrap();
        assert_eq!(
            b.targets,
            [Target::remote_write("http://mimir:9009/api/v1/push")]
        );
        let b = env(&[
            (ENV_TEXTFILE_DIR, "/var/lib/node_exporter"),
            (ENV_URL, "http://gw:9091"),
            (
                ENV_REMOTE_WRITE_URL,
                "http://vm:8428/api/v1/write?extra_label=dc=eu",
            ),
        ])
        .unwrap();
        assert_eq!(
            b.targets,
            [
                Target::pushgateway("http://gw:9091"),
                Target::remote_write("http://vm:8428/api/v1/write?extra_label=dc=eu"),
                Target::textfile("/var/lib/node_exporter"),
            ]
        );
        let err = env(&[(ENV_REMOTE_WRITE_URL, "http://ok:1/w,ftp://mimir:9009")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value \"http://ok:1/w,ftp://mimir:9009\" in environment variable \
             PUSHGATEWAY_REMOTE_WRITE_URL: the scheme must be http or https, not \"ftp\""
        );
        let err = env(&[(ENV_URL, "http://gw:9091?x=1")]).unwrap_err();
        assert!(err.to_string().contains("query string"), "{err}");
    }

    #[test]
    fn target_settings_are_checked_at_install() {
        let err = PushgatewayBuilder::with_targets([Target::remote_write("mimir:x/api/v1/push")])
            .job("j")
            .install()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid remote write URL \"mimir:x/api/v1/push\": invalid port number"
        );
        let err = PushgatewayBuilder::with_targets([Target::textfile("/tmp")])
            .spool_dir("/tmp/spool")
            .job("j")
            .install()
            .unwrap_err();
        assert!(
            err.to_string().contains("no Pushgateway is a target"),
            "{err}"
        );
        let err = PushgatewayBuilder::with_targets([Target::textfile("")])
            .job("j")
            .install()
            .unwrap_err();
        assert!(err.to_string().contains("textfile"), "{err}");
    }

    #[test]
    fn redaction() {
        assert_eq!(redact_url("http://u:secret@h:1/p"), "http://u:***@h:1/p");
        assert_eq!(redact_url("http://u@h"), "http://u@h");
        assert_eq!(redact_url("http://h/p@x"), "http://h/p@x");
        assert_eq!(redact_url("nonsense"), "nonsense");
        let b = PushgatewayBuilder::new("http://u:hunter2@h")
            .basic_auth("u", "hunter3")
            .header("X-Token", "hunter4");
        let debug = format!("{b:?}");
        for secret in ["hunter2", "hunter3", "hunter4"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        let b = PushgatewayBuilder::new("http://h").bearer_token("hunter5");
        assert!(!format!("{b:?}").contains("hunter5"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15s", false), Ok(Duration::from_secs(15)));
        assert_eq!(
            parse_duration("500ms", false),
            Ok(Duration::from_millis(500))
        );
        assert_eq!(parse_duration("1m 30s", false), Ok(Duration::from_secs(90)));
        assert_eq!(
            parse_duration("2.5", false),
            Ok(Duration::from_millis(2500))
        );
        assert_eq!(parse_duration("off", true), Ok(Duration::ZERO));
        assert!(parse_duration("off", false).is_err());
        assert!(parse_duration("-1", false).is_err());
        assert!(parse_duration("NaN", false).is_err());
        assert!(parse_duration("5 parsecs", false).is_err());
    }

    #[test]
    fn environment() {
        let b = env(&[]).unwrap();
        // No target: the default gateway, chosen at install.
        assert!(b.targets.is_empty());
        assert!(b.enabled);
        let b = env(&[
            (ENV_URL, "https://gw.example:9091"),
            (ENV_INTERVAL, "off"),
            (ENV_SHUTDOWN_TIMEOUT, "2s"),
            (ENV_GROUPING, "instance=run-1, region = eu"),
            (ENV_DISABLED, "true"),
            (ENV_USERNAME, "u"),
            (ENV_PASSWORD, "p"),
        ])
        .unwrap();
        assert_eq!(b.targets, [Target::pushgateway("https://gw.example:9091")]);
        assert_eq!(b.interval, Duration::ZERO);
        assert_eq!(b.shutdown_timeout, Duration::from_secs(2));
        assert_eq!(
            b.grouping,
            vec![
                ("instance".to_owned(), "run-1".to_owned()),
                ("region".to_owned(), "eu".to_owned())
            ]
        );
        assert!(!b.enabled);
        assert!(matches!(b.auth, Some(Auth::Basic { .. })));
    }

    #[test]
    fn bad_environment_names_variable_and_value() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[(ENV_URL, "gateway:99999")], "PUSHGATEWAY_URL"),
            (
                &[(ENV_INTERVAL, "5 parsecs")],
                "\"5 parsecs\" in environment variable PUSHGATEWAY_INTERVAL",
            ),
            (
                &[(ENV_SHUTDOWN_TIMEOUT, "0")],
                "PUSHGATEWAY_SHUTDOWN_TIMEOUT",
            ),
            (
                &[(ENV_PUSH_TIMEOUT, "soon")],
                "\"soon\" in environment variable PUSHGATEWAY_PUSH_TIMEOUT",
            ),
            (&[(ENV_GROUPING, "instance")], "PUSHGATEWAY_GROUPING"),
            (&[(ENV_GROUPING, "a-b=1")], "PUSHGATEWAY_GROUPING"),
            (&[(ENV_DISABLED, "maybe")], "PUSHGATEWAY_DISABLED"),
            (&[(ENV_PASSWORD, "hunter2")], "PUSHGATEWAY_PASSWORD"),
            (
                &[(ENV_CA_FILE, "/nonexistent/ca.pem")],
                "\"/nonexistent/ca.pem\" in environment variable PUSHGATEWAY_CA_FILE: cannot read the file",
            ),
            (
                &[(ENV_CLIENT_KEY_FILE, "/k.pem")],
                "PUSHGATEWAY_CLIENT_KEY_FILE: a client key needs its certificate in PUSHGATEWAY_CLIENT_CERT_FILE",
            ),
        ];
        for (vars, expected) in cases {
            let err = env(vars).unwrap_err().to_string();
            assert!(err.contains(expected), "{vars:?}: {err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
        let err = env(&[(ENV_URL, "http://u:hunter2@/x")])
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn ci_labels_from_github_and_gitlab() {
        let lookup = |vars: &[(&str, &str)]| {
            let map: HashMap<String, String> = vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            move |k: &str| map.get(k).cloned()
        };
        let github = lookup(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_REPOSITORY", "acme/ingest"),
            ("GITHUB_WORKFLOW", "nightly"),
            ("GITHUB_REF_NAME", "main"),
            ("GITHUB_SHA", "0123abc"),
        ]);
        let pairs = |v: Vec<(String, String)>| -> Vec<String> {
            v.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
        };
        assert_eq!(
            pairs(ci_labels(&github, CiLabels::Stable)),
            [
                "ci_repository=acme/ingest",
                "ci_workflow=nightly",
                "ci_ref=main"
            ]
        );
        assert_eq!(
            pairs(ci_labels(&github, CiLabels::WithCommit))
                .last()
                .unwrap(),
            "ci_commit=0123abc"
        );
        let gitlab = lookup(&[
            ("GITLAB_CI", "true"),
            ("CI_PROJECT_PATH", "acme/ingest"),
            ("CI_JOB_NAME", "load"),
            ("CI_COMMIT_REF_NAME", ""),
        ]);
        assert_eq!(
            pairs(ci_labels(&gitlab, CiLabels::Stable)),
            ["ci_repository=acme/ingest", "ci_workflow=load"]
        );
        assert!(ci_labels(lookup(&[("CI", "true")]), CiLabels::WithCommit).is_empty());
        let err = env(&[(ENV_CI_LABELS, "sometimes")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("PUSHGATEWAY_CI_LABELS"), "{err}");
    }

    #[test]
    fn insecure_configurations_are_named() {
        let url = |u: &str| Url::parse(u).unwrap();
        let plain = TlsConfig::default();
        let w = insecure_warning(&url("http://gw.example:9091/metrics/job/j"), true, &plain);
        assert!(w.unwrap().contains("credentials are sent over plain http"));
        for (u, creds) in [
            ("http://gw.example:9091", false),
            ("https://gw.example:9091", true),
            ("http://127.0.0.1:9091", true),
            ("http://[::1]:9091", true),
            ("http://localhost:9091", true),
        ] {
            assert_eq!(insecure_warning(&url(u), creds, &plain), None, "{u}");
        }
        let danger = TlsConfig {
            accept_invalid_certs: true,
            ..TlsConfig::default()
        };
        let w = insecure_warning(&url("https://gw.example"), false, &danger).unwrap();
        assert!(w.contains("danger_accept_invalid_certs"), "{w}");
    }

    #[test]
    fn bad_settings_are_init_errors() {
        let b = || PushgatewayBuilder::new("http://127.0.0.1:9091").job("j");
        let cases: Vec<(PushgatewayBuilder, &str)> = vec![
            (PushgatewayBuilder::new("http://127.0.0.1:9091"), "job name"),
            (b().job(""), "job name"),
            (b().grouping_label("__x", "1"), "reserved"),
            (b().shutdown_timeout(Duration::ZERO), "shutdown_timeout"),
            (b().push_timeout(Duration::ZERO), "push_timeout"),
            (b().header("bad header", "x"), "HTTP header"),
            (b().header("x-a", "line\nbreak"), "not allowed"),
            (b().buckets(&[]), "bucket"),
            (b().buckets(&[1.0, 0.5]), "increasing"),
            (b().buckets(&[1.0, f64::INFINITY]), "finite"),
            (b().basic_auth("a:b", "c"), "':'"),
            (b().spool_dir(""), "spool_dir"),
            (b().spool_dir("/tmp/x").spool_limits(0, 1), "spool_limits"),
            (
                b().ca_certificate("not a certificate"),
                "invalid TLS CA certificate",
            ),
            (
                b().ca_certificate(
                    "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                ),
                "invalid TLS CA certificate",
            ),
            (
                b().client_identity(
                    "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                    "no key",
                ),
                "invalid TLS client key",
            ),
            (
                PushgatewayBuilder::new("localhost:9091:1").job("j"),
                "invalid port",
            ),
        ];
        for (builder, expected) in cases {
            let err = builder.install().unwrap_err().to_string();
            assert!(err.contains(expected), "{expected}: {err}");
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        const VARS: [&str; 14] = [
            ENV_URL,
            ENV_USERNAME,
            ENV_PASSWORD,
            ENV_BEARER_TOKEN,
            ENV_INTERVAL,
            ENV_PUSH_TIMEOUT,
            ENV_SHUTDOWN_TIMEOUT,
            ENV_GROUPING,
            ENV_DISABLED,
            ENV_SELF_METRICS,
            ENV_CI_LABELS,
            ENV_SPOOL_DIR,
            ENV_CLIENT_CERT_FILE,
            ENV_CLIENT_KEY_FILE,
        ];

        /// Text that looks like configuration more often than random bytes would.
        fn config_text() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<String>(),
                "[a-z0-9:/@.%=,_ -]{0,40}",
                "(http|https|ftp)://[a-z0-9:@.%/\\[\\]]{0,30}",
                "[0-9]{1,20}(ns|us|ms|s|m|h|d| parsecs)?",
            ]
        }

        proptest! {
            #[test]
            fn parsing_never_panics(text in config_text()) {
                let _ = parse_endpoint(&text, TargetKind::Pushgateway);
                let _ = parse_duration(&text, true);
                let _ = parse_duration(&text, false);
                let _ = parse_bool(&text);
                let _ = parse_grouping(&text);
                let _ = redact_url(&text);
            }

            #[test]
            fn any_environment_gives_a_builder_or_an_error_naming_the_variable(
                values in proptest::collection::vec(proptest::option::of(config_text()), VARS.len())
            ) {
                let vars: Vec<(&str, &str)> = VARS
                    .iter()
                    .zip(&values)
                    .filter_map(|(k, v)| v.as_deref().map(|v| (*k, v)))
                    .collect();
                match env(&vars) {
                    Ok(builder) => {
                        // Whatever the environment held, install's checks do not panic either.
                        let _ = builder.job("j").tls_config();
                    }
                    Err(InitError::InvalidEnv { var, .. }) => {
                        prop_assert!(VARS.contains(&var));
                    }
                    Err(other) => prop_assert!(false, "not InvalidEnv: {other}"),
                }
            }

            #[test]
            fn secrets_never_show_in_errors(secret in "[a-zA-Z0-9]{12,20}") {
                let url = format!("http://user:{secret}@host:bad-port");
                let err = env(&[(ENV_URL, &url)]).unwrap_err().to_string();
                prop_assert!(!err.contains(&secret), "{err}");
                let err = env(&[(ENV_PASSWORD, &secret)]).unwrap_err().to_string();
                prop_assert!(!err.contains(&secret), "{err}");
            }
        }
    }
}
