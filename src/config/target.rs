//! [`Target`]: a place pushes go, with the settings it has of its own.

use std::path::{Path, PathBuf};

use super::connection::{connection_setters, ConnectionSettings};
use crate::native::HistogramForm;
use crate::target::TargetKind;

/// A place the exporter pushes to, with the settings it has of its own. A job can push to
/// several at once (see [`PushgatewayBuilder::targets`](crate::PushgatewayBuilder::targets));
/// each is pushed to on its own thread, retried on its own, and a target that is down never
/// delays the others.
///
/// | target | what is sent | when it fits |
/// |---|---|---|
/// | [`pushgateway`](Self::pushgateway) | the group, protobuf (or text 0.0.4), PUT/POST | the usual path: Prometheus scrapes the gateway |
/// | [`remote_write`](Self::remote_write) | Prometheus remote write 1.0, samples stamped at push time | Mimir, Cortex, Thanos Receive, VictoriaMetrics, Prometheus with `--web.enable-remote-write-receiver` |
/// | [`textfile`](Self::textfile) | `<dir>/<job>.prom`, written atomically | a host running node_exporter: no network at all |
///
/// URLs are checked at install; credentials in a URL (`https://user:password@host`) are that
/// target's basic auth.
///
/// # Settings of its own
///
/// The builder's settings are the defaults every target inherits; a target can have its own:
///
/// | target setting | over the builder's |
/// |---|---|
/// | [`basic_auth`](Self::basic_auth), [`bearer_token`](Self::bearer_token) | replaces its authentication (credentials in the URL win over both) |
/// | [`header`](Self::header) | added to its headers; a name the builder sets too takes the target's value |
/// | [`label`](Self::label) | a label on every series sent to this target (the remote-write flow's `extraLabels`), over a recorded label of the same name |
/// | [`allow`](Self::allow) | replaces its allow list |
/// | [`deny`](Self::deny) | added to its deny list |
/// | [`ca_certificate`](Self::ca_certificate) | added to the CA certificates it trusts |
/// | [`client_identity`](Self::client_identity) | replaces its client certificate |
/// | [`method`](Self::method) | replaces its push method (Pushgateway targets) |
/// | [`histograms`](Self::histograms) | the histogram form it takes (`Classic` for a receiver without native histograms) |
///
/// ```no_run
/// use metrics_exporter_pushgateway::{PushgatewayBuilder, Target};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let guard = PushgatewayBuilder::with_targets([
///     Target::pushgateway("http://pushgateway:9091").basic_auth("ci", "s3cret"),
///     // A Grafana Mimir tenant: its own token and tenant header, its own label, and only
///     // the ingester's metrics (and the job's lifecycle).
///     Target::remote_write("https://mimir.example/api/v1/push")
///         .bearer_token("t0ken")
///         .header("X-Scope-OrgID", "team-a")
///         .label("tenant", "team-a")
///         .allow(["ingester_*", "batch_job_*"]),
/// ])
/// .job("ingester")
/// .install()?;
/// let report = guard.shutdown()?; // Ok when at least one target took the final push
/// for target in report.failed_targets() {
///     eprintln!("{} {} did not take it", target.kind(), target.location());
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    kind: TargetKind,
    address: Address,
    /// What the target sets over the builder's settings.
    pub(crate) settings: ConnectionSettings,
    /// Labels on every series sent to this target.
    pub(crate) labels: Vec<(String, String)>,
    /// The histogram form this target takes, if not the recorded one.
    pub(crate) histograms: Option<HistogramForm>,
}

/// Where a target is: a URL, or a directory.
///
/// A target's address has three names in the crate, one per meaning:
/// - `url`: the URL as configured, text that may hold credentials and (for a Pushgateway) a
///   group path: `Address::Url`, [`Target::url`], the `PUSHGATEWAY_URL` items;
/// - `endpoint`: the checked [`reqwest::Url`] that requests are built from, without
///   credentials or group path (`config::check::Connection::endpoint`);
/// - `location`: the text shown in errors, logs and reports, secrets redacted: the group
///   URL, the receiver's URL or the file (`sink::About::location`, `TargetPusher::location`,
///   [`TargetReport::location`](crate::TargetReport::location),
///   [`PushError::location`](crate::PushError::location); `PushError`'s public fields keep
///   the name `url` for it).
#[derive(Clone, PartialEq, Eq)]
enum Address {
    Url(String),
    Dir(PathBuf),
}

/// The URL with its credentials hidden.
impl std::fmt::Debug for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Url(url) => f
                .debug_tuple("Url")
                .field(&crate::log::redact_url(url))
                .finish(),
            Address::Dir(dir) => f.debug_tuple("Dir").field(dir).finish(),
        }
    }
}

impl Target {
    fn new(kind: TargetKind, address: Address) -> Self {
        Target {
            kind,
            address,
            settings: ConnectionSettings::default(),
            labels: Vec::new(),
            histograms: None,
        }
    }

    /// A Prometheus Pushgateway at `endpoint` (e.g. `http://127.0.0.1:9091`).
    pub fn pushgateway(endpoint: impl Into<String>) -> Self {
        Target::new(TargetKind::Pushgateway, Address::Url(endpoint.into()))
    }

    /// A Prometheus remote-write receiver at `url` (e.g. `http://mimir:9009/api/v1/push`,
    /// `http://127.0.0.1:9090/api/v1/write`).
    pub fn remote_write(url: impl Into<String>) -> Self {
        Target::new(TargetKind::RemoteWrite, Address::Url(url.into()))
    }

    /// node_exporter's textfile collector directory (its `--collector.textfile.directory`).
    pub fn textfile(dir: impl Into<PathBuf>) -> Self {
        Target::new(TargetKind::Textfile, Address::Dir(dir.into()))
    }

    /// What kind of target this is.
    pub fn kind(&self) -> TargetKind {
        self.kind
    }

    /// The URL as given, for a Pushgateway or remote-write target.
    pub fn url(&self) -> Option<&str> {
        match &self.address {
            Address::Url(url) => Some(url),
            Address::Dir(_) => None,
        }
    }

    /// The directory, for a textfile target.
    pub fn dir(&self) -> Option<&Path> {
        match &self.address {
            Address::Dir(dir) => Some(dir),
            Address::Url(_) => None,
        }
    }

    /// A label on every series this target receives (the remote-write flow's `extraLabels`),
    /// over a recorded label of the same name. For a Pushgateway, a label named like the job
    /// or a grouping label is an error at install (the gateway would overwrite it).
    pub fn label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.push((name.into(), value.into()));
        self
    }

    /// The histogram form this target takes, whatever the histograms are recorded as:
    /// [`HistogramForm::Classic`] for a receiver that has no native histograms (Prometheus
    /// without `--enable-feature=native-histograms`, VictoriaMetrics before 1.92) gets each
    /// native histogram as its classic equivalent (a cumulative count at each native
    /// bucket's upper bound, `+Inf`, `_sum`, `_count`); [`HistogramForm::Native`] leaves out
    /// the classic buckets of a histogram recorded as both; [`HistogramForm::Both`] (like
    /// not setting it) sends what is recorded.
    pub fn histograms(mut self, form: HistogramForm) -> Self {
        self.histograms = Some(form);
        self
    }
}

connection_setters!(Target);
