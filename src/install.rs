//! `install()`: the checked configuration becomes the installed recorder, one pusher thread
//! per target, the exit paths' hooks and the guard; and `replay()`, which installs nothing.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use crate::compression::Compression;
use crate::config::check::{
    check_buckets, check_duration, check_labels, insecure_warning, Connection,
};
use crate::config::{
    ExpositionFormat, PushgatewayBuilder, SignalHandling, Target, DEFAULT_ENDPOINT, ENV_SPOOL_DIR,
};
use crate::guard::PushGuard;
use crate::handle::{Inner, PushHandle, TargetPusher};
use crate::lifecycle::Lifecycle;
use crate::pusher::PusherConfig;
use crate::registry::{Installed, PushgatewayRecorder, Registry};
use crate::sink::group::{group_path, url_for};
use crate::sink::pushgateway::{PushgatewaySink, Settings};
use crate::sink::remote_write::{RemoteWriteSink, SpoolSettings};
use crate::sink::replay::Destination;
use crate::sink::replay::ReplayReport;
use crate::sink::textfile::TextfileSink;
use crate::sink::Sink;
use crate::snapshot::View;
use crate::source::Renderer;
use crate::spool::Spool;
use crate::target::TargetKind;
use crate::transport::TlsConfig;
use crate::InitError;

impl PushgatewayBuilder {
    /// Checks the configuration, installs the global `metrics` recorder, starts the pusher
    /// thread (and, unless disabled, the signal listener and the panic hook) and returns the
    /// guard that makes the final push.
    ///
    /// Takes about a millisecond (the time for the exporter's threads to start; more on a
    /// loaded machine): the HTTP client and TLS roots are built on the pusher thread, not
    /// here.
    ///
    /// # Errors
    ///
    /// [`InitError`] when a setting is invalid (URL, job, label names, timeouts, headers,
    /// buckets), the [`listen`](Self::listen) address cannot be bound
    /// ([`InitError::Listen`]), a recorder is already installed in this process, or a thread
    /// cannot be started. Nothing is installed when a setting is invalid.
    pub fn install(self) -> Result<PushGuard, InitError> {
        let (signals, enabled) = (self.signals, self.enabled);
        let (registry, handle) = self.start_exporter()?;
        // Installed only after the pushers started: a failure above leaves the process as it
        // was. (If this fails, the pusher threads end when `handle` drops.)
        metrics::set_global_recorder(Installed(registry))
            .map_err(|_| InitError::RecorderAlreadyInstalled)?;
        // The recorder above was the first, so this is the first handle too.
        let _ = crate::handle::HANDLE.set(handle.clone());
        if enabled {
            install_exit_hooks(&handle, signals)?;
        }
        Ok(PushGuard::new(handle))
    }

    /// Checks the configuration and starts the exporter as [`install`](Self::install) does,
    /// but installs nothing process-wide: returns the recorder, for the caller to install or
    /// to compose, and the guard that makes the final push of what it recorded.
    ///
    /// Not installed, and so not done for this exporter:
    ///
    /// - **no global recorder**: the `metrics` macros record into the returned recorder only
    ///   where it is installed — by `metrics::set_global_recorder` (as it is, or wrapped in
    ///   `metrics-util` layers such as `PrefixLayer`, `FilterLayer` or a `Fanout` with another
    ///   recorder) or for a while by `metrics::with_local_recorder`;
    /// - **no process-wide handle**: [`handle()`](crate::handle) does not return this
    ///   exporter's handle and [`exit`](crate::exit) makes no final push for it (end with the
    ///   guard's [`finish`](PushGuard::finish) or
    ///   [`shutdown_with_exit_code`](PushGuard::shutdown_with_exit_code) instead);
    /// - **no signal handler** (no console control handler on Windows): SIGTERM, SIGINT and
    ///   SIGHUP keep their default action, which ends the process without a final push;
    /// - **no panic hook**: with `panic = "abort"` a panic ends the process without a final
    ///   push (with `panic = "unwind"` the guard's drop still makes it while `main` unwinds).
    ///
    /// The guard's drop, [`finish`](PushGuard::finish) and
    /// [`shutdown`](PushGuard::shutdown) make the final push as after `install()`, and
    /// interval pushes, the listener and every target run the same. To get the exit paths
    /// back for a recorder installed by the caller, call
    /// [`PushGuard::install_hooks`] once the recorder is installed. Each `build()` is an
    /// exporter of its own: two in one process push two groups.
    ///
    /// ```
    /// use std::time::Duration;
    /// use metrics_exporter_pushgateway::PushgatewayBuilder;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // Nothing listens on port 1 here: the final push fails, within 100 ms.
    /// let (recorder, guard) = PushgatewayBuilder::new("http://127.0.0.1:1")
    ///     .job("unit-test")
    ///     .shutdown_timeout(Duration::from_millis(100))
    ///     .build()?;
    /// metrics::with_local_recorder(&recorder, || {
    ///     metrics::counter!("records_total").increment(3);
    /// });
    /// assert!(guard.render().contains("records_total 3"));
    /// // Nothing was installed process-wide:
    /// assert!(metrics_exporter_pushgateway::handle().is_none());
    /// // The final push of records_total 3 (an error here, with no gateway):
    /// assert!(guard.shutdown().is_err());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`install`](Self::install), except that a recorder already installed in the
    /// process is no error here.
    pub fn build(self) -> Result<(PushgatewayRecorder, PushGuard), InitError> {
        let (registry, handle) = self.start_exporter()?;
        Ok((
            PushgatewayRecorder(Installed(registry)),
            PushGuard::new(handle),
        ))
    }

    /// What `install()` and `build()` share: the checked settings become the registry, one
    /// pusher thread per target and the listener, behind one handle.
    fn start_exporter(mut self) -> Result<(Arc<Registry>, PushHandle), InitError> {
        if self.targets.is_empty() && self.listen.is_none() {
            self.targets.push(Target::pushgateway(DEFAULT_ENDPOINT));
        }
        let planned = self.plan()?;
        // Bound after every check and before anything starts: a taken port leaves the process
        // as it was.
        let bound = match &self.listen {
            Some((addr, setting)) => Some(crate::listen::bind(addr, setting)?),
            None => None,
        };
        let registry = Arc::new(Registry::with_histograms(
            &self.buckets,
            &self.buckets_for_metric,
            &self.histograms,
            &self.global,
        ));
        let renderer = Arc::new(Renderer::new(
            Arc::clone(&registry),
            self.lifecycle_metrics.then(Lifecycle::start),
        ));
        if self.enabled {
            self.note_text_histograms();
        }
        let pushers = if self.enabled {
            self.start(planned, &renderer)?
        } else {
            Vec::new()
        };
        let listener = match bound {
            Some(bound) => Some(bound.start(Arc::clone(&renderer)).map_err(|source| {
                InitError::FailedToSpawn {
                    what: "metrics listener",
                    source,
                }
            })?),
            None => None,
        };
        let handle = PushHandle {
            inner: Arc::new(Inner {
                renderer,
                pushers,
                push_timeout: self.push_timeout,
                shutdown_timeout: self.shutdown_timeout,
                exiting_by_signal: AtomicBool::new(false),
                pid: std::process::id(),
                fork_reported: AtomicBool::new(false),
                final_push: crate::handle::FinalPush::default(),
                listener: Mutex::new(listener),
            }),
        };
        Ok((registry, handle))
    }

    /// Checks every setting and every target, before anything starts: one sink per target,
    /// with the warning its configuration deserves, if any.
    pub(crate) fn plan(&self) -> Result<Vec<(Planned, Option<String>)>, InitError> {
        if self.compression == Compression::Gzip && !cfg!(feature = "gzip") {
            return Err(InitError::InvalidSetting {
                setting: "compression",
                reason: "gzip needs the crate's `gzip` feature".into(),
            });
        }
        let (job, grouping) = self.identity()?;
        check_labels(&grouping, &self.global)?;
        for (setting, value, interval) in [
            ("interval", self.interval, true),
            ("push_timeout", self.push_timeout, false),
            ("shutdown_timeout", self.shutdown_timeout, false),
        ] {
            check_duration(value, interval)
                .map_err(|reason| InitError::InvalidSetting { setting, reason })?;
        }
        check_buckets(&self.buckets)?;
        self.check_histograms()?;
        let samples = crate::config::MAX_SAMPLES_RANGE;
        if !samples.contains(&self.remote_write_max_samples) {
            return Err(InitError::InvalidSetting {
                setting: "remote_write_max_samples",
                reason: format!(
                    "{} is out of range: from {} to {} samples per request \
                     (also PUSHGATEWAY_REMOTE_WRITE_MAX_SAMPLES)",
                    self.remote_write_max_samples,
                    samples.start(),
                    samples.end()
                ),
            });
        }
        for (_, buckets) in &self.buckets_for_metric {
            check_buckets(buckets)?;
        }
        // Checked once: every HTTP target uses the same TLS material.
        let tls = self.tls_config()?;
        let mut spool = self.spool()?.filter(|spool| match spool.check_trust() {
            Ok(()) => true,
            Err(reason) => {
                crate::log::warn(&format!(
                    "the spool directory {} is not used: it {reason}; failed pushes are not \
                     kept",
                    spool.dir().display()
                ));
                false
            }
        });
        if spool.is_some()
            && !self
                .targets
                .iter()
                .any(|t| matches!(t.kind(), TargetKind::Pushgateway | TargetKind::RemoteWrite))
        {
            return Err(InitError::InvalidSetting {
                setting: "spool_dir",
                reason: "the spool keeps pushes to a Pushgateway or a remote-write receiver, \
                         and neither is a target"
                    .into(),
            });
        }
        let identity = Identity::new(job, grouping);
        let mut rw_spool = spool.as_ref().map(Spool::sibling);
        self.targets
            .iter()
            // The spool keeps the first Pushgateway target's pushes and the first remote-write
            // target's requests.
            .map(|target| self.plan_target(target, &identity, &tls, &mut spool, &mut rw_spool))
            .collect()
    }

    /// Checks one target and makes its sink.
    fn plan_target(
        &self,
        target: &Target,
        id: &Identity,
        tls: &TlsConfig,
        spool: &mut Option<Spool>,
        rw_spool: &mut Option<Spool>,
    ) -> Result<(Planned, Option<String>), InitError> {
        let view = self.view(target, &id.grouping)?;
        Ok(match target.kind() {
            TargetKind::Pushgateway => {
                let c = self.connection(target, tls)?;
                let group_url = url_for(&c.endpoint, &id.group);
                let warning = insecure_warning(&group_url, c.credentials, &c.tls);
                let settings = Settings {
                    method: c.method,
                    gzip: self.compression == Compression::Gzip,
                    protobuf: self.format == ExpositionFormat::Protobuf,
                    lifecycle: self.lifecycle_metrics,
                    push_timeout: self.push_timeout,
                };
                let sink = PushgatewaySink::new(
                    c.endpoint,
                    id.group.clone(),
                    settings,
                    c.headers,
                    c.tls,
                    spool.take(),
                );
                (planned(sink, view), warning)
            }
            TargetKind::RemoteWrite => {
                let c = self.connection(target, tls)?;
                let warning = insecure_warning(&c.endpoint, c.credentials, &c.tls);
                let sink = RemoteWriteSink::new(
                    c.endpoint,
                    id.labels.clone(),
                    c.headers,
                    c.tls,
                    self.remote_write_max_samples,
                    SpoolSettings {
                        group: id.group.clone(),
                        spool: rw_spool.take(),
                        push_timeout: self.push_timeout,
                    },
                );
                (planned(sink, view), warning)
            }
            TargetKind::Textfile => {
                let dir = target.dir().unwrap_or(std::path::Path::new(""));
                if dir.as_os_str().is_empty() {
                    return Err(InitError::InvalidSetting {
                        setting: "textfile",
                        reason: "the directory must not be empty".into(),
                    });
                }
                let sink =
                    TextfileSink::new(dir.to_owned(), id.file_name.clone(), id.labels.clone());
                (planned(sink, view), None)
            }
        })
    }

    /// One line when native histograms go to a Pushgateway in the text format, which has
    /// none: they are sent as their classic equivalent.
    fn note_text_histograms(&self) {
        let text_gateway = self.format == ExpositionFormat::Text
            && self
                .targets
                .iter()
                .any(|t| t.kind() == TargetKind::Pushgateway);
        if text_gateway && self.histograms.any_native() {
            crate::log::warn(
                "native histograms go to the Pushgateway as their classic equivalent (a count \
                 at each native bucket's upper bound): the text format has no native \
                 histograms; the protobuf format (the default) sends them as they are",
            );
        }
    }

    /// Starts one pusher thread per planned target.
    fn start(
        &self,
        planned: Vec<(Planned, Option<String>)>,
        renderer: &Arc<Renderer>,
    ) -> Result<Vec<TargetPusher>, InitError> {
        let mut pushers = Vec::with_capacity(planned.len());
        for (i, (start, warning)) in planned.into_iter().enumerate() {
            if let Some(warning) = warning {
                crate::log::warn(&warning);
            }
            let config = PusherConfig {
                self_metrics: self.self_metrics,
                interval: (!self.interval.is_zero()).then_some(self.interval),
                push_timeout: self.push_timeout,
                delete_on_shutdown: self.delete_on_shutdown,
                renderer: Arc::clone(renderer),
                view: View::default(),
                thread_name: match i {
                    0 => "pushgateway-pusher".to_owned(),
                    i => format!("pushgateway-pusher-{}", i + 1),
                },
            };
            pushers.push(start(config).map_err(|source| InitError::FailedToSpawn {
                what: "pusher thread",
                source,
            })?);
        }
        Ok(pushers)
    }

    /// Sends every snapshot in the spool directory to the gateway now (the remote-write
    /// requests kept for the first remote-write target to that receiver), oldest first, and
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
        let tls = self.tls_config()?;
        // The first Pushgateway target and the first remote-write target, as at install.
        let mut destinations = Vec::new();
        for kind in [TargetKind::Pushgateway, TargetKind::RemoteWrite] {
            let Some(target) = self.targets.iter().find(|t| t.kind() == kind) else {
                continue;
            };
            let Connection {
                endpoint,
                headers,
                tls,
                credentials,
                ..
            } = self.connection(target, &tls)?;
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
            destinations.push(Destination {
                client,
                endpoint,
                remote_write: kind == TargetKind::RemoteWrite,
            });
        }
        if destinations.is_empty() {
            return Err(InitError::InvalidSetting {
                setting: "targets",
                reason: "replay sends to a Pushgateway or a remote-write receiver, and neither \
                         is a target"
                    .into(),
            });
        }
        let Some(spool) = self.spool()? else {
            return Err(InitError::InvalidSetting {
                setting: "spool_dir",
                reason: format!("replay needs a spool directory (set {ENV_SPOOL_DIR})"),
            });
        };
        spool
            .check_trust()
            .map_err(|reason| InitError::InvalidSetting {
                setting: "spool_dir",
                reason: format!("{} {reason}", spool.dir().display()),
            })?;
        if self.push_timeout.is_zero() {
            return Err(InitError::InvalidSetting {
                setting: "push_timeout",
                reason: "must be longer than zero".into(),
            });
        }
        crate::sink::replay::replay_all(&destinations, &spool, self.push_timeout).map_err(
            |source| InitError::Spool {
                dir: spool.dir().to_owned(),
                source,
            },
        )
    }
}

/// Where the job's values go, as each kind of target needs it.
struct Identity {
    /// The group path below `/metrics` (Pushgateway).
    group: String,
    /// The job and grouping labels as series labels (remote write, textfile).
    labels: Vec<(String, String)>,
    /// The file name (textfile).
    file_name: String,
    /// The grouping labels.
    grouping: Vec<(String, String)>,
}

impl Identity {
    fn new(job: String, grouping: Vec<(String, String)>) -> Self {
        Identity {
            group: group_path(&job, &grouping),
            file_name: crate::sink::textfile::file_name(&job, &grouping),
            labels: std::iter::once(("job".to_owned(), job))
                .chain(grouping.iter().cloned())
                .collect(),
            grouping,
        }
    }
}

/// A checked target, ready for its pusher thread: starts it and returns the channel to it.
type Planned = Box<dyn FnOnce(PusherConfig) -> std::io::Result<TargetPusher>>;

fn planned<S: Sink + Send + 'static>(sink: S, view: View) -> Planned {
    Box::new(move |mut config| {
        config.view = view;
        let (kind, location) = (sink.kind(), sink.location().to_owned());
        let keeps_failed = sink.keeps_failed();
        let tx = crate::pusher::spawn(sink, config)?;
        Ok(TargetPusher {
            tx,
            kind,
            location,
            keeps_failed,
        })
    })
}

/// The exit paths' hooks for `handle`'s exporter: the panic hook, and the signal listener (a
/// console control handler on Windows) for `signals`.
fn install_exit_hooks(handle: &PushHandle, signals: SignalHandling) -> Result<(), InitError> {
    crate::exit::install_panic_hook(handle.clone());
    crate::exit::listen(handle.clone(), signals).map_err(|source| InitError::FailedToSpawn {
        what: "signal listener",
        source,
    })
}

impl PushGuard {
    /// For an exporter from [`PushgatewayBuilder::build`]: installs what
    /// [`install`](PushgatewayBuilder::install) adds to it — the process-wide handle (so that
    /// [`handle()`](crate::handle) returns this exporter's and [`exit`](crate::exit) makes its
    /// final push), the panic hook (a final push when a panic aborts) and, for `signals`, the
    /// signal listener (on Windows the console control handler) that makes the final push
    /// when the process is asked to end. Call it once, after installing the recorder.
    ///
    /// ```no_run
    /// use metrics_exporter_pushgateway::{PushgatewayBuilder, SignalHandling};
    /// use metrics_util::layers::{Layer as _, PrefixLayer};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let (recorder, guard) = PushgatewayBuilder::from_env()?.job("ingester").build()?;
    /// metrics::set_global_recorder(PrefixLayer::new("ingester").layer(recorder))?;
    /// guard.install_hooks(SignalHandling::PushAndExit)?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`InitError::HooksAlreadyInstalled`] when the hooks were installed already in this
    /// process (by `install()` or this method), for this exporter or another;
    /// [`InitError::FailedToSpawn`] when the signal listener cannot be started.
    pub fn install_hooks(&self, signals: SignalHandling) -> Result<(), InitError> {
        let handle = self.handle();
        crate::handle::HANDLE
            .set(handle.clone())
            .map_err(|_| InitError::HooksAlreadyInstalled)?;
        install_exit_hooks(&handle, signals)
    }
}
