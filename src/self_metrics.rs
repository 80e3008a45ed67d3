//! The exporter's own metrics (`pushgateway_exporter_*`), registered in the job's registry:
//! how the pushes to each target went, and what the spool holds.

use std::sync::Arc;
use std::time::Duration;

use metrics::{Counter, Gauge, Key, Recorder as _, Unit};

use crate::registry::{Installed, Registry};
use crate::report::{PushError, PushReport};

/// Registers the exporter's own metrics in the job's registry.
pub(crate) struct Registrar {
    recorder: Installed,
}

impl Registrar {
    fn new(registry: &Arc<Registry>) -> Registrar {
        Registrar {
            recorder: Installed(Arc::clone(registry)),
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
        self.recorder.0.own_gauge(&Self::key(suffix, labels))
    }

    fn counter(
        &self,
        suffix: &str,
        labels: &[(&'static str, &str)],
        help: &'static str,
    ) -> Counter {
        self.recorder
            .describe_counter(Self::name(suffix).into(), None, help.into());
        self.recorder.0.own_counter(&Self::key(suffix, labels))
    }
}

/// The exporter's own metrics: how its pushes to one target went.
pub(crate) struct SelfMetrics {
    succeeded: Counter,
    failed: Counter,
    duration: Gauge,
    sent_bytes: Counter,
    last_success: Gauge,
}

impl SelfMetrics {
    /// Registers the metrics of the target shown as `target` (its URL without secrets). A
    /// target shown as an earlier one is (two URLs that differ only in a secret, such as a
    /// query token) gets ` #2`, ` #3`, ... after it, by the order the targets were given in,
    /// so that each target has series of its own.
    pub(crate) fn register(recorder: &Arc<Registry>, target: String) -> Self {
        let target = unique_target(recorder, target);
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

    pub(crate) fn record(
        &self,
        result: &Result<PushReport, PushError>,
        body_bytes: usize,
        elapsed: Duration,
    ) {
        let attempts = match result {
            Ok(report) => {
                self.succeeded.increment(1);
                self.last_success.set(crate::clock::unix_seconds());
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

/// `target`, or the first of `target #2`, `target #3`, ... that no target registered yet.
fn unique_target(recorder: &Registry, target: String) -> String {
    let taken = |t: &str| {
        recorder.has_counter(&Registrar::key(
            "pushes_total",
            &[("target", t), ("result", "success")],
        ))
    };
    if !taken(&target) {
        return target;
    }
    (2..)
        .map(|n| format!("{target} #{n}"))
        .find(|t| !taken(t))
        .unwrap_or(target)
}

/// The spool's own metrics, in the same registry as the job's.
pub(crate) struct SpoolMetrics {
    pub(crate) snapshots: Gauge,
    pub(crate) bytes: Gauge,
    pub(crate) written: Counter,
    pub(crate) replayed: Counter,
    pub(crate) dropped: Counter,
}

/// Prefix of the exporter's own metrics.
pub(crate) const SELF_PREFIX: &str = "pushgateway_exporter_";

impl SpoolMetrics {
    pub(crate) fn register(recorder: &Arc<Registry>) -> Self {
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
                "Spooled records the target accepted on replay.",
            ),
            dropped: r.counter(
                "spool_dropped_total",
                &[],
                "Snapshots dropped to keep the spool within its bounds, or set aside as corrupt or rejected.",
            ),
        }
    }
}
