//! The pusher thread: one named std thread that owns a current-thread tokio runtime and the
//! HTTP client, renders snapshots and sends them. Everything else talks to it over a channel and
//! waits for its answer with a timeout.

use std::cell::Cell;
use std::collections::VecDeque;
use std::fs::File;
use std::future::Future;
use std::path::PathBuf;
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use metrics::{Counter, Gauge, Key, Level, Metadata, Recorder as _, Unit};
use reqwest::header::HeaderMap;
use reqwest::Url;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use crate::encode;
use crate::gateway::{self, PushMethod, Request};
use crate::lifecycle::{Lifecycle, Outcome};
use crate::registry::{Installed, Registry};
use crate::replay::{self, ReplayReport, Step};
use crate::report::{PushError, PushReport};
use crate::snapshot::Snapshot;
use crate::spool::{self, Entry, Spool};
use crate::target::TargetKind;
use crate::{remote_write, textfile};

/// Takes what a push sends: the registry's values, then the lifecycle metrics.
pub(crate) struct Renderer {
    pub(crate) registry: Arc<Registry>,
    pub(crate) lifecycle: Option<Lifecycle>,
}

impl Renderer {
    /// The snapshot of this moment for `outcome`.
    pub(crate) fn snapshot(&self, outcome: Outcome) -> Snapshot {
        let mut builder = self.registry.snapshot();
        if let Some(lifecycle) = &self.lifecycle {
            lifecycle.add_to(outcome, &mut builder);
        }
        builder.finish()
    }

    /// The snapshot of this moment in the text exposition format.
    pub(crate) fn render(&self, outcome: Outcome) -> String {
        encode::text_string(&self.snapshot(outcome))
    }
}

/// A request to the pusher thread. Each carries the deadline by which it must be answered and
/// the channel for the answer.
pub(crate) enum Command {
    /// Push now. A final `outcome` makes this the final push, after which the thread ends.
    Push {
        outcome: Outcome,
        deadline: Instant,
        budget: Duration,
        reply: SyncSender<Result<PushReport, PushError>>,
    },
    /// Delete the group.
    Delete {
        deadline: Instant,
        budget: Duration,
        reply: SyncSender<Result<PushReport, PushError>>,
    },
}

impl Command {
    fn is_final(&self) -> bool {
        matches!(self, Command::Push { outcome, .. } if outcome.is_final())
    }

    fn deadline(&self) -> Instant {
        match self {
            Command::Push { deadline, .. } | Command::Delete { deadline, .. } => *deadline,
        }
    }

    fn budget(&self) -> Duration {
        match self {
            Command::Push { budget, .. } | Command::Delete { budget, .. } => *budget,
        }
    }
}

/// TLS settings of the HTTP client.
#[derive(Clone, Default)]
pub(crate) struct TlsConfig {
    /// Extra trusted CA certificates, PEM.
    pub(crate) ca_pem: Vec<u8>,
    /// The client identity as reqwest takes it: private key and certificate chain, PEM.
    pub(crate) identity_pem: Option<Vec<u8>>,
    pub(crate) accept_invalid_certs: bool,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("ca_certificates", &!self.ca_pem.is_empty())
            .field("client_identity", &self.identity_pem.is_some())
            .field("accept_invalid_certs", &self.accept_invalid_certs)
            .finish()
    }
}

/// Builds the HTTP client: default headers (auth), TLS, no redirects.
///
/// For a plain `http://` endpoint the built-in root certificates are not loaded: the client
/// never speaks TLS (redirects are not followed), and loading them is most of the client's
/// start-up.
pub(crate) fn build_client(
    endpoint: &Url,
    headers: &HeaderMap,
    tls: &TlsConfig,
) -> Result<reqwest::Client, String> {
    let builder = reqwest::Client::builder()
        // Also when another crate in the build turns on reqwest's `http2` feature: over
        // HTTP/2 a gateway's TLS alert surfaces as "connection closed".
        .http1_only()
        .default_headers(headers.clone())
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!(
            env!("CARGO_PKG_NAME"),
            "/",
            env!("CARGO_PKG_VERSION")
        ));
    #[cfg(feature = "tls")]
    let builder = with_tls(builder.use_rustls_tls(), endpoint, tls)?;
    #[cfg(not(feature = "tls"))]
    let _ = (endpoint, tls);
    builder.build().map_err(|e| crate::error::chain(&e))
}

/// The TLS settings of the client: no roots loaded for `http://`, a private CA, a client
/// identity.
#[cfg(feature = "tls")]
fn with_tls(
    mut builder: reqwest::ClientBuilder,
    endpoint: &Url,
    tls: &TlsConfig,
) -> Result<reqwest::ClientBuilder, String> {
    if endpoint.scheme() == "http" {
        builder = builder.tls_built_in_root_certs(false);
    }
    if !tls.ca_pem.is_empty() {
        for cert in reqwest::Certificate::from_pem_bundle(&tls.ca_pem)
            .map_err(|e| format!("CA certificate: {}", crate::error::chain(&e)))?
        {
            builder = builder.add_root_certificate(cert);
        }
    }
    if let Some(pem) = &tls.identity_pem {
        let identity = reqwest::Identity::from_pem(pem)
            .map_err(|e| format!("client identity: {}", crate::error::chain(&e)))?;
        builder = builder.identity(identity);
    }
    if tls.accept_invalid_certs {
        builder = builder.danger_accept_invalid_certs(true);
    }
    Ok(builder)
}

/// Where one pusher sends its pushes, and how.
pub(crate) enum Sink {
    Pushgateway {
        /// The gateway's endpoint (with any path prefix), for replaying other groups.
        endpoint: Url,
        /// This job's group path below `/metrics`.
        group: String,
        /// This job's group URL.
        url: Url,
        method: PushMethod,
        gzip: bool,
        protobuf: bool,
    },
    RemoteWrite {
        url: Url,
        /// The job and grouping labels, added to every series.
        labels: Vec<(String, String)>,
    },
    Textfile {
        dir: PathBuf,
        /// The file name in `dir`.
        name: String,
        /// The job and grouping labels, added to every sample.
        labels: Vec<(String, String)>,
    },
}

impl Sink {
    pub(crate) fn kind(&self) -> TargetKind {
        match self {
            Sink::Pushgateway { .. } => TargetKind::Pushgateway,
            Sink::RemoteWrite { .. } => TargetKind::RemoteWrite,
            Sink::Textfile { .. } => TargetKind::Textfile,
        }
    }

    /// Where pushes go, for errors and reports: the group URL, the receiver's URL, the file.
    pub(crate) fn location(&self) -> String {
        match self {
            Sink::Pushgateway { url, .. } | Sink::RemoteWrite { url, .. } => url.to_string(),
            Sink::Textfile { dir, name, .. } => dir.join(name).display().to_string(),
        }
    }

    /// The value of the exporter's own metrics' `target` label: the gateway's endpoint, the
    /// receiver's URL, the directory.
    fn metrics_label(&self) -> String {
        match self {
            Sink::Pushgateway { endpoint, .. } => endpoint.to_string(),
            Sink::RemoteWrite { url, .. } => url.to_string(),
            Sink::Textfile { dir, .. } => dir.display().to_string(),
        }
    }

    /// The URL the HTTP client connects to; `None` for a textfile.
    pub(crate) fn http_url(&self) -> Option<&Url> {
        match self {
            Sink::Pushgateway { url, .. } | Sink::RemoteWrite { url, .. } => Some(url),
            Sink::Textfile { .. } => None,
        }
    }

    /// The headers of a push body.
    fn body_headers(&self) -> HeaderMap {
        match self {
            Sink::Pushgateway { gzip, protobuf, .. } => gateway::push_headers(*gzip, *protobuf),
            Sink::RemoteWrite { .. } => remote_write::headers(),
            Sink::Textfile { .. } => HeaderMap::new(),
        }
    }
}

/// What a pusher thread needs, handed over at spawn.
pub(crate) struct PusherConfig {
    pub(crate) sink: Sink,
    /// Headers of every request (auth, custom headers).
    pub(crate) headers: HeaderMap,
    pub(crate) tls: TlsConfig,
    pub(crate) interval: Option<Duration>,
    pub(crate) push_timeout: Duration,
    pub(crate) delete_on_shutdown: bool,
    pub(crate) renderer: Arc<Renderer>,
    pub(crate) spool: Option<Spool>,
    pub(crate) self_metrics: bool,
    pub(crate) thread_name: String,
}

/// Starts a pusher thread.
pub(crate) fn spawn(config: PusherConfig) -> std::io::Result<UnboundedSender<Command>> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name(config.thread_name.clone())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    crate::log::report(&format!(
                        "metrics will not be pushed: the pusher's runtime failed to start: {e}"
                    ));
                    return;
                }
            };
            runtime.block_on(run(config, rx));
        })?;
    Ok(tx)
}

/// Runs background work (an interval push, a replay step) until it is done or a command
/// arrives, and returns the command. A request under way is waited for, so that an older push
/// never lands after a newer one, but for at most half of the command's own time budget (a
/// hanging gateway must not eat all of it); no further attempt starts.
async fn background(
    work: impl Future<Output = ()>,
    rx: &mut UnboundedReceiver<Command>,
    in_flight: &Cell<bool>,
) -> Option<Command> {
    tokio::pin!(work);
    let command = tokio::select! {
        biased;
        () = &mut work => return None,
        Some(c) = rx.recv() => c,
    };
    if in_flight.get() {
        let attempt_done = std::future::poll_fn(|cx| {
            if work.as_mut().poll(cx).is_ready() || !in_flight.get() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        });
        let until = command.deadline() - command.budget() / 2;
        let _ = tokio::time::timeout_at(until.into(), attempt_done).await;
    }
    Some(command)
}

async fn run(config: PusherConfig, mut rx: UnboundedReceiver<Command>) {
    let location = config.sink.location();
    let client = config
        .sink
        .http_url()
        .map(|url| build_client(url, &config.headers, &config.tls));
    if let Some(Err(cause)) = &client {
        crate::log::report(&format!(
            "metrics will not be pushed to {location}: the HTTP client failed to start: {cause}"
        ));
    }
    let spool_metrics = config
        .spool
        .as_ref()
        .filter(|_| config.self_metrics)
        .map(|_| SpoolMetrics::register(&config.renderer.registry));
    let self_metrics = config
        .self_metrics
        .then(|| SelfMetrics::register(&config.renderer.registry, config.sink.metrics_label()));
    let mut pusher = Pusher {
        client,
        location,
        body_headers: config.sink.body_headers(),
        sent_series: remote_write::SentSeries::default(),
        config,
        spare: Vec::new(),
        scratch: Vec::new(),
        failing: false,
        replay: None,
        spool_metrics,
        self_metrics,
    };
    if let Some(spool) = &pusher.config.spool {
        if let Err(e) = spool.create_dir() {
            crate::log::report(&format!(
                "the spool directory {} cannot be created: {e}; failed pushes will be lost",
                spool.dir().display()
            ));
        }
        pusher.update_spool_gauges();
        pusher.start_replay();
    }
    let start = tokio::time::Instant::now();
    let mut next_push = pusher.config.interval.map(|i| start + i);
    let mut stashed: Option<Command> = None;
    loop {
        let command = match stashed.take() {
            Some(c) => c,
            None => {
                let now = tokio::time::Instant::now();
                if let (Some(at), Some(interval)) = (next_push, pusher.config.interval) {
                    if now >= at {
                        let in_flight = Cell::new(false);
                        stashed =
                            background(pusher.interval_push(&in_flight), &mut rx, &in_flight).await;
                        next_push = Some(tokio::time::Instant::now() + interval);
                        continue;
                    }
                }
                if pusher.replay.is_some() {
                    let in_flight = Cell::new(false);
                    let timeout = pusher.config.push_timeout;
                    stashed =
                        background(pusher.replay_step(&in_flight, timeout), &mut rx, &in_flight)
                            .await;
                    continue;
                }
                let timer = async {
                    match next_push {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    c = rx.recv() => match c {
                        Some(c) => c,
                        // Every sender is gone: nobody can ask for a push any more.
                        None => return,
                    },
                    () = timer => continue,
                }
            }
        };
        let last = command.is_final();
        match command {
            Command::Push {
                outcome,
                deadline,
                budget,
                reply,
            } => {
                let result = pusher.push(outcome, deadline, budget).await;
                if outcome.is_final() && result.is_ok() {
                    // The gateway is up: what is left of the spool goes now, within the final
                    // push's deadline, rather than waiting for the next process.
                    pusher.drain_replay(deadline).await;
                }
                let _ = reply.send(result);
            }
            Command::Delete {
                deadline,
                budget,
                reply,
            } => {
                let result = pusher.delete(deadline, budget).await;
                let _ = reply.send(result);
            }
        }
        if last {
            return;
        }
    }
}

/// Registers the exporter's own metrics in the job's registry.
struct Registrar {
    recorder: Installed,
    metadata: Metadata<'static>,
}

impl Registrar {
    fn new(registry: &Arc<Registry>) -> Registrar {
        Registrar {
            recorder: Installed(Arc::clone(registry)),
            metadata: Metadata::new(module_path!(), Level::INFO, Some(module_path!())),
        }
    }

    fn name(suffix: &str) -> String {
        format!("{SELF_PREFIX}{suffix}")
    }

    fn key(suffix: &str, labels: &[(&'static str, &str)]) -> Key {
        let labels: Vec<metrics::Label> = labels
            .iter()
            .map(|(k, v)| metrics::Label::new(*k, (*v).to_owned()))
            .collect();
        Key::from_parts(Self::name(suffix), labels)
    }

    fn gauge(
        &self,
        suffix: &str,
        labels: &[(&'static str, &str)],
        unit: Option<Unit>,
        help: &'static str,
    ) -> Gauge {
        self.recorder
            .describe_gauge(Self::name(suffix).into(), unit, help.into());
        self.recorder
            .register_gauge(&Self::key(suffix, labels), &self.metadata)
    }

    fn counter(
        &self,
        suffix: &str,
        labels: &[(&'static str, &str)],
        help: &'static str,
    ) -> Counter {
        self.recorder
            .describe_counter(Self::name(suffix).into(), None, help.into());
        self.recorder
            .register_counter(&Self::key(suffix, labels), &self.metadata)
    }
}

/// The exporter's own metrics: how its pushes to one target went.
struct SelfMetrics {
    succeeded: Counter,
    failed: Counter,
    duration: Gauge,
    sent_bytes: Counter,
    last_success: Gauge,
}

impl SelfMetrics {
    fn register(recorder: &Arc<Registry>, target: String) -> Self {
        let r = Registrar::new(recorder);
        let t = [("target", target.as_str())];
        let pushes = "Pushes by target and result (interval pushes, flushes and final pushes; \
                      a push's own result shows from the next push on).";
        SelfMetrics {
            succeeded: r.counter(
                "pushes_total",
                &[("target", &target), ("result", "success")],
                pushes,
            ),
            failed: r.counter(
                "pushes_total",
                &[("target", &target), ("result", "failure")],
                pushes,
            ),
            duration: r.gauge(
                "push_duration_seconds",
                &t,
                Some(Unit::Seconds),
                "Wall time of the last push to the target, retries included.",
            ),
            sent_bytes: r.counter(
                "sent_bytes_total",
                &t,
                "Request body bytes sent to the target (bytes written, for a textfile), every \
                 attempt counted.",
            ),
            last_success: r.gauge(
                "last_success_time_seconds",
                &t,
                Some(Unit::Seconds),
                "Unix time of the last successful push to the target.",
            ),
        }
    }

    fn record(&self, result: &Result<PushReport, PushError>, body_bytes: usize, elapsed: Duration) {
        let attempts = match result {
            Ok(report) => {
                self.succeeded.increment(1);
                self.last_success.set(spool::now_ms() as f64 / 1000.0);
                report.attempts()
            }
            Err(e) => {
                self.failed.increment(1);
                e.attempts()
            }
        };
        self.duration.set(elapsed.as_secs_f64());
        self.sent_bytes
            .increment(body_bytes as u64 * u64::from(attempts));
    }
}

/// The spool's own metrics, in the same registry as the job's.
struct SpoolMetrics {
    snapshots: Gauge,
    bytes: Gauge,
    written: Counter,
    replayed: Counter,
    dropped: Counter,
}

/// Prefix of the exporter's own metrics.
pub(crate) const SELF_PREFIX: &str = "pushgateway_exporter_";

impl SpoolMetrics {
    fn register(recorder: &Arc<Registry>) -> Self {
        let r = Registrar::new(recorder);
        SpoolMetrics {
            snapshots: r.gauge(
                "spool_snapshots",
                &[],
                None,
                "Snapshots waiting in the spool directory.",
            ),
            bytes: r.gauge(
                "spool_bytes",
                &[],
                Some(Unit::Bytes),
                "Size of the snapshots waiting in the spool directory.",
            ),
            written: r.counter(
                "spool_written_total",
                &[],
                "Snapshots written to the spool after a failed push.",
            ),
            replayed: r.counter(
                "spool_replayed_total",
                &[],
                "Spooled snapshots the gateway accepted on replay.",
            ),
            dropped: r.counter(
                "spool_dropped_total",
                &[],
                "Snapshots dropped to keep the spool within its bounds, or set aside as corrupt or rejected.",
            ),
        }
    }
}

/// A replay under way: the directory's lock, what is left to send, what was done.
struct Replay {
    _lock: File,
    queue: VecDeque<Entry>,
    report: ReplayReport,
}

struct Pusher {
    /// The HTTP client; `None` for a textfile.
    client: Option<Result<reqwest::Client, String>>,
    config: PusherConfig,
    /// Where pushes go, for errors and logs.
    location: String,
    /// The headers of a push body.
    body_headers: HeaderMap,
    /// What a remote-write receiver has, to mark series that are gone as stale.
    sent_series: remote_write::SentSeries,
    /// The buffer of the last body, handed back after its push, for the next one.
    spare: Vec<u8>,
    /// The buffer the protobuf encoder writes a family's metrics into.
    scratch: Vec<u8>,
    /// Whether the last interval push failed (to log a failure streak once).
    failing: bool,
    replay: Option<Replay>,
    spool_metrics: Option<SpoolMetrics>,
    self_metrics: Option<SelfMetrics>,
}

impl Pusher {
    fn client(&self) -> Result<&reqwest::Client, PushError> {
        match &self.client {
            Some(Ok(client)) => Ok(client),
            Some(Err(cause)) => Err(self.client_error(cause.clone())),
            None => Err(self.client_error("no HTTP client for this target".into())),
        }
    }

    fn client_error(&self, cause: String) -> PushError {
        PushError::Client {
            target: self.config.sink.kind(),
            url: self.location.clone(),
            cause,
        }
    }

    /// The method for a push to a Pushgateway with this outcome. With lifecycle metrics on,
    /// only a successful run's final push replaces the whole group (PUT); every other push is
    /// a POST, which replaces the families it carries and keeps the last success timestamp of
    /// earlier runs.
    fn method(&self, configured: PushMethod, outcome: Outcome) -> PushMethod {
        if self.config.renderer.lifecycle.is_some() && !outcome.is_success() {
            PushMethod::Post
        } else {
            configured
        }
    }

    /// Renders the body of a push into the buffer of the last one (no allocation or page
    /// faults when the size is about the same), and encodes it as the target takes it.
    fn body(&mut self, outcome: Outcome, created_ms: u64) -> Result<Bytes, PushError> {
        let snapshot = self.config.renderer.snapshot(outcome);
        let mut buf = std::mem::take(&mut self.spare);
        buf.clear();
        let encoded = match &self.config.sink {
            Sink::Pushgateway { gzip, protobuf, .. } => {
                if *protobuf {
                    encode::protobuf::encode(&snapshot, &mut buf, &mut self.scratch);
                } else {
                    encode::text(&snapshot, &[], &mut buf);
                }
                if !*gzip {
                    return Ok(Bytes::from(buf));
                }
                crate::compression::gzip(&buf).map_err(|e| format!("gzip compression failed: {e}"))
            }
            Sink::RemoteWrite { labels, .. } => {
                let now = i64::try_from(created_ms).unwrap_or(i64::MAX);
                let mut request = remote_write::write_request(&snapshot, labels, now);
                self.sent_series.mark_gone(&mut request, now);
                let body = remote_write::encode(&request);
                self.sent_series.hold(request);
                body
            }
            Sink::Textfile { labels, .. } => {
                encode::text(&snapshot, labels, &mut buf);
                return Ok(Bytes::from(buf));
            }
        };
        self.spare = buf;
        encoded
            .map(Bytes::from)
            .map_err(|cause| self.client_error(cause))
    }

    /// Takes back the buffer of a body nobody else holds any more, if it is the rendering
    /// buffer itself (an uncompressed Pushgateway body).
    fn recycle(&mut self, body: Bytes) {
        if !matches!(
            self.config.sink,
            Sink::Pushgateway { gzip: false, .. } | Sink::Textfile { .. }
        ) {
            return;
        }
        if let Ok(buf) = body.try_into_mut() {
            self.spare = buf.into();
        }
    }

    /// Sends a rendered body to the target.
    async fn send_body(
        &self,
        outcome: Outcome,
        body: &Bytes,
        deadline: Instant,
        budget: Duration,
        in_flight: &Cell<bool>,
    ) -> Result<PushReport, PushError> {
        match &self.config.sink {
            Sink::Pushgateway { url, method, .. } => {
                let request = Request::push(
                    url,
                    &self.location,
                    self.method(*method, outcome),
                    &self.body_headers,
                    body.clone(),
                );
                gateway::send(self.client()?, &request, deadline, budget, true, in_flight).await
            }
            Sink::RemoteWrite { url, .. } => {
                let request = Request {
                    target: TargetKind::RemoteWrite,
                    url,
                    url_text: &self.location,
                    method: reqwest::Method::POST,
                    headers: &self.body_headers,
                    body: body.clone(),
                };
                gateway::send(self.client()?, &request, deadline, budget, true, in_flight).await
            }
            Sink::Textfile { dir, name, .. } => {
                let started = Instant::now();
                textfile::write_atomically(dir, name, body)
                    .map(|_| PushReport::sent(None, 1, body.len(), started.elapsed()))
                    .map_err(|source| PushError::Textfile {
                        path: dir.join(name),
                        source,
                    })
            }
        }
    }

    /// Renders and sends a push; to a Pushgateway, a failure that may succeed later keeps
    /// the snapshot in the spool, and a success makes older spooled snapshots of the group
    /// obsolete.
    async fn send_push(
        &mut self,
        outcome: Outcome,
        deadline: Instant,
        budget: Duration,
        in_flight: &Cell<bool>,
    ) -> Result<PushReport, PushError> {
        let created_ms = spool::now_ms();
        let started = Instant::now();
        let body = self.body(outcome, created_ms)?;
        let result = self
            .send_body(outcome, &body, deadline, budget, in_flight)
            .await;
        if let Some(m) = &self.self_metrics {
            m.record(&result, body.len(), started.elapsed());
        }
        match (&result, &self.config.sink) {
            (Ok(_), _) => {
                self.sent_series.taken();
                self.pushed(created_ms, outcome.is_final());
                self.recycle(body);
            }
            (
                Err(e),
                Sink::Pushgateway {
                    group,
                    method,
                    gzip,
                    protobuf,
                    ..
                },
            ) if e.worth_keeping() => {
                let snapshot = spool::Snapshot {
                    group: group.clone(),
                    method: self.method(*method, outcome),
                    gzip: *gzip,
                    protobuf: *protobuf,
                    created_ms,
                    body,
                };
                self.keep(snapshot, outcome.is_final() || !self.failing);
            }
            (Err(_), _) => self.recycle(body),
        }
        result
    }

    async fn push(
        &mut self,
        outcome: Outcome,
        deadline: Instant,
        budget: Duration,
    ) -> Result<PushReport, PushError> {
        if outcome.is_final()
            && self.config.delete_on_shutdown
            && self.config.sink.kind() != TargetKind::RemoteWrite
        {
            return self.delete(deadline, budget).await;
        }
        self.send_push(outcome, deadline, budget, &Cell::new(false))
            .await
    }

    /// Deletes the job's group from a Pushgateway, or its file from a textfile directory;
    /// nothing for a remote-write receiver, which has no such operation.
    async fn delete(
        &mut self,
        deadline: Instant,
        budget: Duration,
    ) -> Result<PushReport, PushError> {
        match &self.config.sink {
            Sink::Pushgateway { url, .. } => {
                let request = Request::delete(url, &self.location);
                gateway::send(
                    self.client()?,
                    &request,
                    deadline,
                    budget,
                    true,
                    &Cell::new(false),
                )
                .await
            }
            Sink::RemoteWrite { .. } => Ok(PushReport::sent(None, 0, 0, Duration::ZERO)),
            Sink::Textfile { dir, name, .. } => {
                let path = dir.join(name);
                let started = Instant::now();
                match std::fs::remove_file(&path) {
                    Ok(()) => Ok(PushReport::sent(None, 1, 0, started.elapsed())),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        Ok(PushReport::sent(None, 1, 0, started.elapsed()))
                    }
                    Err(source) => Err(PushError::Textfile { path, source }),
                }
            }
        }
    }

    /// A push on the interval: its failures are logged (once per failure streak), not returned.
    async fn interval_push(&mut self, in_flight: &Cell<bool>) {
        let interval = self.config.interval.unwrap_or(self.config.push_timeout);
        let budget = self.config.push_timeout.min(interval);
        let deadline = Instant::now() + budget;
        let result = self
            .send_push(Outcome::Running, deadline, budget, in_flight)
            .await;
        match result {
            Ok(_) if self.failing => {
                self.failing = false;
                tracing::info!(target_location = %self.location, "interval push succeeded again");
            }
            Ok(_) => {}
            Err(e) if !self.failing => {
                self.failing = true;
                tracing::warn!(error = %e, "interval push failed; retrying on the next interval");
            }
            Err(e) => tracing::debug!(error = %e, "interval push failed again"),
        }
    }

    /// After a successful push made at `created_ms`: older spooled snapshots of this group are
    /// obsolete, and the gateway is up, so anything else spooled can be sent.
    fn pushed(&mut self, created_ms: u64, last: bool) {
        let (Some(spool), Sink::Pushgateway { group, .. }) =
            (&self.config.spool, &self.config.sink)
        else {
            return;
        };
        let removed = spool.remove_group(group, created_ms);
        if removed > 0 {
            tracing::debug!(
                removed,
                "spooled snapshots of this group replaced by a newer push"
            );
        }
        if !last && self.replay.is_none() {
            self.start_replay();
        }
        self.update_spool_gauges();
    }

    /// Writes a snapshot whose push failed to the spool; `loud` logs it as a warning.
    fn keep(&mut self, snapshot: spool::Snapshot, loud: bool) {
        let Some(spool) = &self.config.spool else {
            return;
        };
        match spool.write(&snapshot) {
            Ok(written) => {
                if let Some(path) = &written.path {
                    if let Some(m) = &self.spool_metrics {
                        m.written.increment(1);
                    }
                    let message = format!(
                        "the snapshot that could not be pushed is kept in the spool as {}; \
                         it is sent by the next process using this spool directory, or by replay",
                        path.display()
                    );
                    if loud {
                        crate::log::warn(&message);
                    } else {
                        tracing::debug!("{message}");
                    }
                }
                for entry in &written.dropped {
                    if let Some(m) = &self.spool_metrics {
                        m.dropped.increment(1);
                    }
                    crate::log::warn(&format!(
                        "spool {} is over its bound: dropped {} ({} bytes)",
                        spool.dir().display(),
                        entry.path.display(),
                        entry.bytes
                    ));
                }
            }
            Err(e) => crate::log::report(&format!(
                "the snapshot that could not be pushed could not be spooled in {} either: {e}; \
                 its values are lost",
                spool.dir().display()
            )),
        }
        self.update_spool_gauges();
    }

    fn update_spool_gauges(&self) {
        if let (Some(spool), Some(m)) = (&self.config.spool, &self.spool_metrics) {
            let (files, bytes) = spool.size();
            m.snapshots.set(files as f64);
            m.bytes.set(bytes as f64);
        }
    }

    /// Starts replaying the spool in the background, unless it is empty or another process
    /// is replaying it.
    fn start_replay(&mut self) {
        let Some(spool) = &self.config.spool else {
            return;
        };
        let queue: VecDeque<Entry> = match spool.entries() {
            Ok(e) if e.is_empty() => return,
            Ok(e) => e.into(),
            Err(e) => {
                crate::log::warn(&format!(
                    "spool directory {} cannot be read: {e}",
                    spool.dir().display()
                ));
                return;
            }
        };
        match spool.lock() {
            Ok(Some(lock)) => {
                spool.remove_stale_tmp();
                self.replay = Some(Replay {
                    _lock: lock,
                    queue,
                    report: ReplayReport::default(),
                });
            }
            Ok(None) => tracing::debug!("another process is replaying the spool"),
            Err(e) => crate::log::warn(&format!(
                "spool directory {} cannot be locked for replay: {e}",
                spool.dir().display()
            )),
        }
    }

    /// Replays the oldest spooled snapshot left; ends the replay when none is left or the
    /// gateway did not take it.
    /// Replays what is left of the spool until `deadline`.
    async fn drain_replay(&mut self, deadline: Instant) {
        let in_flight = Cell::new(false);
        while self.replay.is_some() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left < Duration::from_millis(10) {
                break;
            }
            let timeout = self.config.push_timeout.min(left);
            self.replay_step(&in_flight, timeout).await;
        }
    }

    async fn replay_step(&mut self, in_flight: &Cell<bool>, timeout: Duration) {
        let (Some(replay), Some(spool), Some(Ok(client)), Sink::Pushgateway { endpoint, .. }) = (
            &mut self.replay,
            &self.config.spool,
            &self.client,
            &self.config.sink,
        ) else {
            self.replay = None;
            return;
        };
        // Taken off the queue only once done: a step cut short by a final push stays first.
        let Some(entry) = replay.queue.front().cloned() else {
            self.finish_replay();
            return;
        };
        let step = replay::replay_one(client, endpoint, spool, &entry, timeout, in_flight).await;
        replay.queue.pop_front();
        if let Some(m) = &self.spool_metrics {
            match step {
                Step::Sent => m.replayed.increment(1),
                Step::Rejected(..) | Step::Corrupt(..) => m.dropped.increment(1),
                Step::Kept(_) | Step::Gone => {}
            }
        }
        if !replay::record(step, &entry, &mut replay.report) {
            replay.report.kept += replay.queue.len();
            self.finish_replay();
        }
    }

    fn finish_replay(&mut self) {
        if let Some(replay) = self.replay.take() {
            let r = &replay.report;
            if r.sent + r.rejected + r.corrupt > 0 {
                tracing::info!(report = %r, "spool replayed");
            }
        }
        self.update_spool_gauges();
    }
}
