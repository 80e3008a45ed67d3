//! Where pushes go: [`Target`] and its [`TargetKind`].

use std::path::PathBuf;

/// A place the exporter pushes to. A job can push to several at once (see
/// [`PushgatewayBuilder::targets`](crate::PushgatewayBuilder::targets)); each is pushed to on
/// its own thread, retried on its own, and a target that is down never delays the others.
///
/// | target | what is sent | when it fits |
/// |---|---|---|
/// | [`Pushgateway`](Self::Pushgateway) | the group, protobuf (or text 0.0.4), PUT/POST | the usual path: Prometheus scrapes the gateway |
/// | [`RemoteWrite`](Self::RemoteWrite) | Prometheus remote write 1.0, samples stamped at push time | Mimir, Cortex, Thanos Receive, VictoriaMetrics, Prometheus with `--web.enable-remote-write-receiver` |
/// | [`Textfile`](Self::Textfile) | `<dir>/<job>.prom`, written atomically | a host running node_exporter: no network at all |
///
/// URLs are checked at install; credentials in a URL (`https://user:password@host`) are that
/// target's basic auth.
///
/// ```no_run
/// use metrics_exporter_pushgateway::{PushgatewayBuilder, Target};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let guard = PushgatewayBuilder::with_targets([
///     Target::pushgateway("http://pushgateway:9091"),
///     Target::remote_write("http://victoria-metrics:8428/api/v1/write"),
/// ])
/// .job("ingester")
/// .install()?;
/// let report = guard.shutdown()?; // Ok when at least one target took the final push
/// for target in report.failed_targets() {
///     eprintln!("{} {} did not take it", target.kind(), target.location());
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// A Prometheus Pushgateway at this endpoint (e.g. `http://127.0.0.1:9091`).
    Pushgateway(String),
    /// A Prometheus remote-write receiver at this URL (e.g.
    /// `http://mimir:9009/api/v1/push`, `http://127.0.0.1:9090/api/v1/write`).
    RemoteWrite(String),
    /// node_exporter's textfile collector directory (its
    /// `--collector.textfile.directory`).
    Textfile(PathBuf),
}

impl Target {
    /// A Pushgateway at `endpoint`.
    pub fn pushgateway(endpoint: impl Into<String>) -> Self {
        Target::Pushgateway(endpoint.into())
    }

    /// A remote-write receiver at `url`.
    pub fn remote_write(url: impl Into<String>) -> Self {
        Target::RemoteWrite(url.into())
    }

    /// node_exporter's textfile collector directory `dir`.
    pub fn textfile(dir: impl Into<PathBuf>) -> Self {
        Target::Textfile(dir.into())
    }

    /// What kind of target this is.
    pub fn kind(&self) -> TargetKind {
        match self {
            Target::Pushgateway(_) => TargetKind::Pushgateway,
            Target::RemoteWrite(_) => TargetKind::RemoteWrite,
            Target::Textfile(_) => TargetKind::Textfile,
        }
    }
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Pushgateway(url) => f
                .debug_tuple("Pushgateway")
                .field(&crate::log::redact_url(url))
                .finish(),
            Target::RemoteWrite(url) => f
                .debug_tuple("RemoteWrite")
                .field(&crate::log::redact_url(url))
                .finish(),
            Target::Textfile(dir) => f.debug_tuple("Textfile").field(dir).finish(),
        }
    }
}

/// The kind of a [`Target`]; displayed as `Pushgateway`, `remote write` or `textfile`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TargetKind {
    /// A Prometheus Pushgateway.
    Pushgateway,
    /// A Prometheus remote-write receiver.
    RemoteWrite,
    /// node_exporter's textfile collector directory.
    Textfile,
}

impl std::fmt::Display for TargetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TargetKind::Pushgateway => "Pushgateway",
            TargetKind::RemoteWrite => "remote write",
            TargetKind::Textfile => "textfile",
        })
    }
}

/// The HTTP method of a push.
///
/// Source: the Pushgateway README, "PUT method" and "POST method".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PushMethod {
    /// Replace every metric of the group (the default). Metrics recorded by an earlier run but
    /// not by this one disappear from the gateway.
    #[default]
    Put,
    /// Replace only the metric families present in the body; other families of the group stay.
    Post,
}

impl PushMethod {
    pub(crate) fn http(self) -> reqwest::Method {
        match self {
            PushMethod::Put => reqwest::Method::PUT,
            PushMethod::Post => reqwest::Method::POST,
        }
    }
}
