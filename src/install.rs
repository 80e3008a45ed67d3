//! `install()`: the checked configuration becomes the installed recorder, one pusher thread
//! per target, the exit paths' hooks and the guard; and `replay()`, which installs nothing.

use std::sync::Arc;

use crate::compression::Compression;
use crate::config::check::SpoolDir;
use crate::config::check::{insecure_warning, Connection};
use crate::config::plan::{Delivery, Plan};
use crate::config::{
    ExpositionFormat, PushgatewayBuilder, SignalHandling, Target, DEFAULT_ENDPOINT,
};
use crate::env::PUSHGATEWAY_SPOOL_DIR;
use crate::guard::PushGuard;
use crate::handle::{PushHandle, TargetPusher};
use crate::lifecycle::Lifecycle;
use crate::protocol::group;
use crate::pusher::PusherConfig;
use crate::registry::{Installed, PushgatewayRecorder, Registry};
use crate::sink::group::url_for;
use crate::sink::pushgateway::{PushgatewaySink, Settings};
use crate::sink::remote_write::RemoteWriteSink;
use crate::sink::textfile::TextfileSink;
use crate::sink::Sink;
use crate::source::Renderer;
use crate::spool::keeper::{SpoolSettings, Spooled};
use crate::spool::{Destination, ReplayReport, Spool};
use crate::target::TargetKind;
use crate::InitError;

impl PushgatewayBuilder {
    /// Checks the configuration, installs the global `metrics` recorder, starts one pusher
    /// thread per target (and the `/metrics` listener's thread when one is set, and, unless
    /// disabled, the signal listener and the panic hook) and returns the guard that makes the
    /// final push.
    ///
    /// Takes about a millisecond (the time for the exporter's threads to start; more on a
    /// loaded machine): each target's HTTP client and TLS roots are built on its pusher
    /// thread, not here.
    ///
    /// # Errors
    ///
    /// [`InitError`] when a setting is invalid (URL, job, label names, timeouts, headers,
    /// buckets), the [`listen`](Self::listen) address cannot be bound
    /// ([`InitError::Listen`]), a recorder is already installed in this process, or a thread
    /// cannot be started. Nothing is installed when a setting is invalid.
    pub fn install(self) -> Result<PushGuard, InitError> {
        let Started {
            registry,
            handle,
            exit_hooks,
        } = self.start_exporter()?;
        // Installed only after the pushers started: a failure above leaves the process as it
        // was. (If this fails, the pusher threads end when `handle` drops.)
        metrics::set_global_recorder(Installed(registry))
            .map_err(|_| InitError::RecorderAlreadyInstalled)?;
        // The recorder above was the first, so this is the first handle too.
        let _ = crate::handle::HANDLE.set(handle.clone());
        if let Some(signals) = exit_hooks {
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
        let Started {
            registry, handle, ..
        } = self.start_exporter()?;
        Ok((
            PushgatewayRecorder(Installed(registry)),
            PushGuard::new(handle),
        ))
    }

    /// What `install()` and `build()` share: the plan carried out, in this order so that a
    /// failure leaves the process as it was: the listener's address bound (after every check,
    /// before anything starts), the registry made, one pusher thread started per target
    /// (unless pushing is off), the listener started, all behind one handle.
    fn start_exporter(self) -> Result<Started, InitError> {
        let Plan {
            job,
            grouping,
            targets,
            recorder,
            timing,
            self_metrics,
            delete_on_shutdown,
            listen,
            enabled,
            signals,
        } = self.plan()?;
        let bound = match &listen {
            Some((addr, setting)) => Some(crate::listen::bind(addr, setting)?),
            None => None,
        };
        let registry = Arc::new(Registry::with_histograms(
            &recorder.buckets,
            &recorder.buckets_for_metric,
            &recorder.histograms,
            &recorder.global,
        ));
        let renderer = Arc::new(Renderer::new(
            Arc::clone(&registry),
            recorder.lifecycle_metrics.then(Lifecycle::start),
        ));
        let mut pushers = Vec::new();
        if enabled {
            let id = Identity::new(job, grouping);
            for (i, target) in targets.into_iter().enumerate() {
                let config = PusherConfig {
                    self_metrics,
                    interval: timing.interval,
                    push_timeout: timing.push_timeout,
                    delete_on_shutdown,
                    renderer: Arc::clone(&renderer),
                    view: target.view,
                    thread_name: match i {
                        0 => "pushgateway-pusher".to_owned(),
                        i => format!("pushgateway-pusher-{}", i + 1),
                    },
                };
                pushers.push(start_pusher(target.delivery, &id, config)?);
            }
        }
        let listener = match bound {
            Some(bound) => Some(bound.start(Arc::clone(&renderer)).map_err(|source| {
                InitError::FailedToSpawn {
                    what: "metrics listener",
                    source,
                }
            })?),
            None => None,
        };
        let handle = PushHandle::new(
            renderer,
            pushers,
            timing.push_timeout,
            timing.shutdown_timeout,
            listener,
        );
        Ok(Started {
            registry,
            handle,
            exit_hooks: enabled.then_some(signals),
        })
    }

    /// Sends every record in the spool directory to where it was going now (a push to the
    /// gateway; a remote-write request kept for the first remote-write target to that
    /// receiver), oldest first, and returns what happened: for operators draining a spool
    /// (e.g. from cron) and for jobs that want to drain it before they start. Installs nothing; the job, grouping labels and
    /// interval are not used (each record carries its own grouping key). Each record gets
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
        let Some(spool_dir) = self.spool()? else {
            return Err(InitError::InvalidSetting {
                setting: "spool_dir",
                reason: format!("replay needs a spool directory (set {PUSHGATEWAY_SPOOL_DIR})"),
            });
        };
        spool_dir
            .check_trust()
            .map_err(|reason| InitError::InvalidSetting {
                setting: "spool_dir",
                reason: format!("{} {reason}", spool_dir.dir.display()),
            })?;
        let spool = Spool::new(spool_dir.dir, spool_dir.max_files, spool_dir.max_bytes);
        if self.push_timeout.is_zero() {
            return Err(InitError::InvalidSetting {
                setting: "push_timeout",
                reason: "must be longer than zero".into(),
            });
        }
        crate::spool::replay_all(&destinations, &spool, self.push_timeout).map_err(|source| {
            InitError::Spool {
                dir: spool.dir().to_owned(),
                source,
            }
        })
    }
}

/// A started exporter, before anything is installed process-wide.
struct Started {
    registry: Arc<Registry>,
    handle: PushHandle,
    /// The signal handling of the exit hooks to install, if pushing is on.
    exit_hooks: Option<SignalHandling>,
}

/// Where the job's values go, as each kind of target needs it.
struct Identity {
    /// The group path below `/metrics` (Pushgateway).
    group: String,
    /// The job and grouping labels as series labels (remote write, textfile).
    labels: Vec<(String, String)>,
    /// The file name (textfile).
    file_name: String,
}

impl Identity {
    fn new(job: String, grouping: Vec<(String, String)>) -> Self {
        Identity {
            group: group::encode(&job, &grouping),
            file_name: crate::sink::textfile::file_name(&job, &grouping),
            labels: std::iter::once(("job".to_owned(), job))
                .chain(grouping)
                .collect(),
        }
    }
}

/// Makes a planned target's sink, says the warning its configuration deserves (if any), and
/// starts its pusher thread.
fn start_pusher(
    delivery: Delivery,
    id: &Identity,
    config: PusherConfig,
) -> Result<TargetPusher, InitError> {
    match delivery {
        Delivery::Pushgateway {
            connection: c,
            format,
            compression,
            lifecycle,
            spool,
        } => {
            let group_endpoint = url_for(&c.endpoint, &id.group);
            warn_if_insecure(&group_endpoint, &c);
            let settings = Settings {
                method: c.method,
                gzip: compression == Compression::Gzip,
                protobuf: format == ExpositionFormat::Protobuf,
                lifecycle,
            };
            let sink = PushgatewaySink::new(c.endpoint, &id.group, settings, c.headers, c.tls);
            let spool = spooled_in(spool, id, &config);
            spawn(Spooled::new(sink, spool), config)
        }
        Delivery::RemoteWrite {
            connection: c,
            max_samples,
            spool,
        } => {
            warn_if_insecure(&c.endpoint, &c);
            let sink =
                RemoteWriteSink::new(c.endpoint, id.labels.clone(), c.headers, c.tls, max_samples);
            let spool = spooled_in(spool, id, &config);
            spawn(Spooled::new(sink, spool), config)
        }
        Delivery::Textfile { dir } => spawn(
            Spooled::new(
                TextfileSink::new(dir, id.file_name.clone(), id.labels.clone()),
                None,
            ),
            config,
        ),
    }
}

/// Where a target's failed pushes are kept, if it has a spool.
fn spooled_in(
    spool: Option<SpoolDir>,
    id: &Identity,
    config: &PusherConfig,
) -> Option<SpoolSettings> {
    spool.map(|d| SpoolSettings {
        spool: Spool::new(d.dir, d.max_files, d.max_bytes),
        group: id.group.clone(),
        push_timeout: config.push_timeout,
    })
}

/// The warning for a connection that exposes what is pushed to `shown_url`, if any.
fn warn_if_insecure(shown_url: &reqwest::Url, c: &Connection) {
    if let Some(warning) = insecure_warning(shown_url, c.credentials, &c.tls) {
        crate::log::warn(&warning);
    }
}

/// Starts the pusher thread of `sink` and returns the channel to it.
fn spawn<S: Sink + Send + 'static>(
    sink: Spooled<S>,
    config: PusherConfig,
) -> Result<TargetPusher, InitError> {
    let about = sink.sink().about();
    let (kind, location) = (about.kind, about.location.clone());
    let keeps_failed = sink.keeps_failed();
    let tx = crate::pusher::spawn(sink, config).map_err(|source| InitError::FailedToSpawn {
        what: "pusher thread",
        source,
    })?;
    Ok(TargetPusher {
        tx,
        kind,
        location,
        keeps_failed,
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
