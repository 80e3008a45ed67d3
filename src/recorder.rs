//! The installed recorder: `metrics-exporter-prometheus`'s own, built on the pusher thread.
//!
//! Building a `PrometheusRecorder` calibrates its clock (`quanta`), about 0.7 ms, which would
//! be most of `install()`. So `install()` installs this thin recorder at once and the pusher
//! thread builds the real one first thing. Whoever needs it first builds it (a metric
//! recorded in the first instant waits for the build instead of being lost); after that, each
//! registration costs one extra atomic load, and recording through the returned handles costs
//! exactly what it costs with `metrics-exporter-prometheus` alone.

use std::sync::{Mutex, OnceLock};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

/// A `PrometheusRecorder` built on first use.
pub(crate) struct LazyRecorder {
    builder: Mutex<Option<PrometheusBuilder>>,
    recorder: OnceLock<PrometheusRecorder>,
}

impl LazyRecorder {
    pub(crate) fn new(builder: PrometheusBuilder) -> Self {
        LazyRecorder {
            builder: Mutex::new(Some(builder)),
            recorder: OnceLock::new(),
        }
    }

    /// The recorder, built now if nobody has built it yet (concurrent callers wait for the
    /// one building it).
    pub(crate) fn get(&self) -> &PrometheusRecorder {
        self.recorder.get_or_init(|| {
            let builder = self
                .builder
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .take()
                .unwrap_or_default();
            builder.build_recorder()
        })
    }

    pub(crate) fn handle(&self) -> PrometheusHandle {
        self.get().handle()
    }
}

/// What is installed as the global recorder: a shared [`LazyRecorder`].
pub(crate) struct Installed(pub(crate) std::sync::Arc<LazyRecorder>);

impl Recorder for Installed {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0.get().describe_counter(key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0.get().describe_gauge(key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0.get().describe_histogram(key, unit, description);
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        self.0.get().register_counter(key, metadata)
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        self.0.get().register_gauge(key, metadata)
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        self.0.get().register_histogram(key, metadata)
    }
}
