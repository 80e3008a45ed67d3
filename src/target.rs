//! Where pushes go, and how they get there: [`Target`] with the settings it has of its own,
//! and its [`TargetKind`].

use std::path::{Path, PathBuf};

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
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    kind: TargetKind,
    address: Address,
    pub(crate) own: TargetSettings,
}

/// Where a target is.
#[derive(Clone, PartialEq, Eq)]
enum Address {
    Url(String),
    Dir(PathBuf),
}

/// A secret that never shows in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret<T = String>(pub(crate) T);

impl<T> std::fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

/// How requests authenticate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Auth {
    Basic { username: String, password: Secret },
    Bearer(Secret),
}

/// What a target sets for itself (see [`Target`]); empty by default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TargetSettings {
    pub(crate) auth: Option<Auth>,
    pub(crate) headers: Vec<(String, Secret)>,
    pub(crate) labels: Vec<(String, String)>,
    pub(crate) allow: Option<Vec<String>>,
    pub(crate) deny: Vec<String>,
    pub(crate) ca_pem: Vec<u8>,
    pub(crate) client_identity: Option<(Vec<u8>, Secret<Vec<u8>>)>,
    pub(crate) method: Option<PushMethod>,
}

impl Target {
    fn new(kind: TargetKind, address: Address) -> Self {
        Target {
            kind,
            address,
            own: TargetSettings::default(),
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

    /// Basic auth for this target only, over the builder's authentication.
    pub fn basic_auth(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.own.auth = Some(Auth::Basic {
            username: username.into(),
            password: Secret(password.into()),
        });
        self
    }

    /// A bearer token (`Authorization: Bearer <token>`) for this target only, over the
    /// builder's authentication.
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.own.auth = Some(Auth::Bearer(Secret(token.into())));
        self
    }

    /// A header on every request to this target (e.g. `X-Scope-OrgID` for a Grafana Mimir or
    /// Cortex tenant), over a builder header of the same name. Its value is treated as a
    /// secret.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.own.headers.push((name.into(), Secret(value.into())));
        self
    }

    /// A label on every series this target receives (the remote-write flow's `extraLabels`),
    /// over a recorded label of the same name. For a Pushgateway, a label named like the job
    /// or a grouping label is an error at install (the gateway would overwrite it).
    pub fn label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.own.labels.push((name.into(), value.into()));
        self
    }

    /// Only the metrics whose names (as sent) match one of `patterns` (`*` for any run of
    /// characters) go to this target; replaces the builder's allow list. The lifecycle and
    /// the exporter's own metrics are filtered like any other: allow `batch_job_*` to keep the
    /// lifecycle metrics.
    pub fn allow<S: Into<String>>(mut self, patterns: impl IntoIterator<Item = S>) -> Self {
        self.own.allow = Some(patterns.into_iter().map(Into::into).collect());
        self
    }

    /// The metrics whose names (as sent) match one of `patterns` never go to this target, on
    /// top of the builder's deny list (a deny wins over an allow).
    pub fn deny<S: Into<String>>(mut self, patterns: impl IntoIterator<Item = S>) -> Self {
        self.own.deny.extend(patterns.into_iter().map(Into::into));
        self
    }

    /// CA certificates (PEM) this target is trusted by, on top of the builder's and the
    /// built-in roots. Needs the `tls` feature.
    pub fn ca_certificate(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.own.ca_pem.extend_from_slice(pem.as_ref());
        self.own.ca_pem.push(b'\n');
        self
    }

    /// The client certificate (PEM chain) and private key (PEM) this target is pushed to
    /// with (mutual TLS), over the builder's. Needs the `tls` feature.
    pub fn client_identity(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.own.client_identity = Some((cert_pem.into(), Secret(key_pem.into())));
        self
    }

    /// The push method for this Pushgateway target, over the builder's; an error at install
    /// for other targets.
    pub fn method(mut self, method: PushMethod) -> Self {
        self.own.method = Some(method);
        self
    }
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Target");
        d.field("kind", &self.kind);
        match &self.address {
            Address::Url(url) => d.field("url", &crate::log::redact_url(url)),
            Address::Dir(dir) => d.field("dir", dir),
        };
        let own = &self.own;
        if let Some(auth) = &own.auth {
            d.field(
                "auth",
                &match auth {
                    Auth::Basic { .. } => "basic",
                    Auth::Bearer(_) => "bearer",
                },
            );
        }
        if !own.headers.is_empty() {
            let names: Vec<&str> = own.headers.iter().map(|(n, _)| n.as_str()).collect();
            d.field("headers", &names);
        }
        if !own.labels.is_empty() {
            d.field("labels", &own.labels);
        }
        if let Some(allow) = &own.allow {
            d.field("allow", allow);
        }
        if !own.deny.is_empty() {
            d.field("deny", &own.deny);
        }
        if !own.ca_pem.is_empty() {
            d.field("ca_certificates", &true);
        }
        if own.client_identity.is_some() {
            d.field("client_identity", &true);
        }
        if let Some(method) = own.method {
            d.field("method", &method);
        }
        d.finish()
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
