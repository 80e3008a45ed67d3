//! Validation: the builder, every setting checked and merged, becomes a [`Plan`], the
//! resolved configuration that [`install`](crate::PushgatewayBuilder::install) and
//! [`build`](crate::PushgatewayBuilder::build) carry out without checking anything again.

use std::path::PathBuf;
use std::time::Duration;

use super::check::{check_buckets, check_duration, check_labels, Connection, SpoolDir};
use super::{ExpositionFormat, PushgatewayBuilder, SignalHandling, Target, DEFAULT_ENDPOINT};
use crate::compression::Compression;
use crate::registry::{HistogramSettings, Matcher};
use crate::snapshot::View;
use crate::target::TargetKind;
use crate::transport::TlsConfig;
use crate::InitError;

/// The checked configuration of one exporter: what to record, where each target's pushes
/// go and how, the pushers' timing, the listener and the exit hooks.
pub(crate) struct Plan {
    /// The job, resolved: set in code or the environment, or from a group path.
    pub(crate) job: String,
    /// The grouping labels, resolved: code and environment, the URLs' group paths, then the
    /// host name and CI labels where no label of their name is set.
    pub(crate) grouping: Vec<(String, String)>,
    /// One per target, in configuration order: the default gateway when none is configured
    /// and no listener is set. Planned (and so checked) even when pushing is off.
    pub(crate) targets: Vec<TargetPlan>,
    /// What the recorder is made with.
    pub(crate) recorder: RecorderPlan,
    /// What every pusher thread runs with.
    pub(crate) timing: Timing,
    /// Whether pushes carry the exporter's own metrics.
    pub(crate) self_metrics: bool,
    /// Whether the final push deletes the group instead.
    pub(crate) delete_on_shutdown: bool,
    /// The `/metrics` listener's address, and the setting or variable that gave it (not bound
    /// yet: binding is the first thing install does).
    pub(crate) listen: Option<(String, &'static str)>,
    /// Whether anything is pushed: when off, no pusher thread is started and no exit hook is
    /// installed.
    pub(crate) enabled: bool,
    /// What the signal listener does, when the exit hooks are installed.
    pub(crate) signals: SignalHandling,
}

/// The recorder's settings.
pub(crate) struct RecorderPlan {
    pub(crate) buckets: Vec<f64>,
    pub(crate) buckets_for_metric: Vec<(Matcher, Vec<f64>)>,
    /// Classic, native or both, by metric, and the resolution of native histograms.
    pub(crate) histograms: HistogramSettings,
    /// Labels on every series.
    pub(crate) global: Vec<(String, String)>,
    /// Whether pushes carry the batch-job lifecycle metrics.
    pub(crate) lifecycle_metrics: bool,
}

/// The pushers' timing.
#[derive(Clone, Copy)]
pub(crate) struct Timing {
    /// Time between interval pushes; `None`: off.
    pub(crate) interval: Option<Duration>,
    /// Budget of a push that is not the final one.
    pub(crate) push_timeout: Duration,
    /// Budget of the final push.
    pub(crate) shutdown_timeout: Duration,
}

/// One target, checked.
pub(crate) struct TargetPlan {
    /// Its own labels and filter.
    pub(crate) view: View,
    /// Where its pushes go, and how.
    pub(crate) delivery: Delivery,
}

/// A target's destination and the settings of its pushes, by kind.
pub(crate) enum Delivery {
    Pushgateway {
        connection: Connection,
        format: ExpositionFormat,
        compression: Compression,
        /// Whether pushes carry the lifecycle metrics (they decide the push method).
        lifecycle: bool,
        /// Where failed pushes are kept as records: the first Pushgateway target's only.
        spool: Option<SpoolDir>,
    },
    RemoteWrite {
        connection: Connection,
        /// The most samples of one request.
        max_samples: usize,
        /// Where failed requests are kept as records: the first remote-write target's only.
        spool: Option<SpoolDir>,
    },
    Textfile {
        /// node_exporter's textfile collector directory (not empty).
        dir: PathBuf,
    },
}

impl PushgatewayBuilder {
    /// Checks every setting and every target, before anything starts, and resolves them into
    /// the [`Plan`]. A spool directory that is not safe to use is a warning (and no spool),
    /// not an error.
    pub(crate) fn plan(mut self) -> Result<Plan, InitError> {
        if self.targets.is_empty() && self.listen.is_none() {
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
        let samples = super::MAX_SAMPLES_RANGE;
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
        // Checked once: every HTTP target without TLS settings of its own uses this material.
        let tls = self.tls_config()?;
        let mut spool = self.spool()?.filter(|spool| match spool.check_trust() {
            Ok(()) => true,
            Err(reason) => {
                crate::log::warn(&format!(
                    "the spool directory {} is not used: it {reason}; failed pushes are not \
                     kept",
                    spool.dir.display()
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
        // The spool keeps the first Pushgateway target's pushes and the first remote-write
        // target's requests, in the same directory.
        let mut rw_spool = spool.clone();
        let targets = self
            .targets
            .iter()
            .map(|target| self.plan_target(target, &grouping, &tls, &mut spool, &mut rw_spool))
            .collect::<Result<_, _>>()?;
        if self.enabled {
            self.note_text_histograms();
        }
        Ok(Plan {
            job,
            grouping,
            targets,
            recorder: RecorderPlan {
                buckets: self.buckets,
                buckets_for_metric: self.buckets_for_metric,
                histograms: self.histograms,
                global: self.global,
                lifecycle_metrics: self.lifecycle_metrics,
            },
            timing: Timing {
                interval: (!self.interval.is_zero()).then_some(self.interval),
                push_timeout: self.push_timeout,
                shutdown_timeout: self.shutdown_timeout,
            },
            self_metrics: self.self_metrics,
            delete_on_shutdown: self.delete_on_shutdown,
            listen: self.listen,
            enabled: self.enabled,
            signals: self.signals,
        })
    }

    /// Checks one target: its labels and filter, its connection (URL, headers, TLS), a
    /// textfile directory that is not empty.
    fn plan_target(
        &self,
        target: &Target,
        grouping: &[(String, String)],
        tls: &TlsConfig,
        spool: &mut Option<SpoolDir>,
        rw_spool: &mut Option<SpoolDir>,
    ) -> Result<TargetPlan, InitError> {
        let view = self.view(target, grouping)?;
        let delivery = match target.kind() {
            TargetKind::Pushgateway => Delivery::Pushgateway {
                connection: self.connection(target, tls)?,
                format: self.format,
                compression: self.compression,
                lifecycle: self.lifecycle_metrics,
                spool: spool.take(),
            },
            TargetKind::RemoteWrite => Delivery::RemoteWrite {
                connection: self.connection(target, tls)?,
                max_samples: self.remote_write_max_samples,
                spool: rw_spool.take(),
            },
            TargetKind::Textfile => {
                let dir = target.dir().unwrap_or(std::path::Path::new(""));
                if dir.as_os_str().is_empty() {
                    return Err(InitError::InvalidSetting {
                        setting: "textfile",
                        reason: "the directory must not be empty".into(),
                    });
                }
                Delivery::Textfile {
                    dir: dir.to_owned(),
                }
            }
        };
        Ok(TargetPlan { view, delivery })
    }
}
