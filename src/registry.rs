//! The recorder: a `metrics-util` [`Registry`] with atomic storage, as
//! `metrics-exporter-prometheus` builds its own, plus the descriptions and global labels.
//!
//! Counters and gauges are `AtomicU64`s (a gauge holds the bits of an `f64`). A histogram is a
//! fixed set of atomic bucket counters chosen when the series is registered, and the bits of
//! its sum: recording is a binary search over the bounds and two atomic operations, with
//! nothing to drain later and memory that does not grow with the number of samples.

use std::cmp::Ordering as Order;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use metrics::{
    Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use metrics_util::registry::{Registry as MetricsRegistry, Storage};

use crate::native::{HistogramForm, NativeBuckets, NativeConfig};
#[cfg(test)]
use crate::snapshot::Snapshot;
use crate::snapshot::{Description, Kind, SnapshotBuilder, View};

/// Selects metrics by name, for [`buckets_for_metric`](crate::PushgatewayBuilder::buckets_for_metric)
/// and [`histograms_for_metric`](crate::PushgatewayBuilder::histograms_for_metric).
/// Matched against the metric name as it is sent (invalid characters replaced by `_`).
///
/// The variants are those of metrics-exporter-prometheus's `Matcher`, so settings carry over;
/// the type is this crate's own so that a new major version of that crate is not a breaking
/// change here.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Matcher {
    /// The whole name.
    Full(String),
    /// A prefix of the name.
    Prefix(String),
    /// A suffix of the name.
    Suffix(String),
}

impl Matcher {
    /// Full names first, then prefixes, then suffixes; each by its text.
    fn order(&self) -> (u8, &str) {
        match self {
            Matcher::Full(s) => (0, s),
            Matcher::Prefix(s) => (1, s),
            Matcher::Suffix(s) => (2, s),
        }
    }

    fn matches(&self, name: &str) -> bool {
        match self {
            Matcher::Full(full) => name == full,
            Matcher::Prefix(prefix) => name.starts_with(prefix.as_str()),
            Matcher::Suffix(suffix) => name.ends_with(suffix.as_str()),
        }
    }
}

/// How histograms are kept: the form of each (by metric name, as
/// [`buckets_for_metric`](crate::PushgatewayBuilder::buckets_for_metric) chooses bounds) and
/// the resolution of native ones.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct HistogramSettings {
    pub(crate) form: HistogramForm,
    pub(crate) for_metric: Vec<(Matcher, HistogramForm)>,
    pub(crate) native: NativeConfig,
}

impl HistogramSettings {
    /// Whether any histogram may be native.
    pub(crate) fn any_native(&self) -> bool {
        self.form.native() || self.for_metric.iter().any(|(_, form)| form.native())
    }
}

/// A histogram series: one atomic counter per classic bucket (the last one above every
/// bound, for `+Inf`; none for a native-only histogram), the sum's bits, and the native
/// buckets of a native histogram.
#[derive(Debug)]
pub(crate) struct AtomicHistogram {
    bounds: Arc<[f64]>,
    buckets: Box<[AtomicU64]>,
    sum: AtomicU64,
    native: Option<NativeBuckets>,
}

impl AtomicHistogram {
    fn with_form(bounds: Arc<[f64]>, form: HistogramForm, native: NativeConfig) -> Self {
        let bounds: Arc<[f64]> = if form.classic() { bounds } else { Arc::new([]) };
        let classic = if form.classic() { bounds.len() + 1 } else { 0 };
        let buckets = (0..classic).map(|_| AtomicU64::new(0)).collect();
        AtomicHistogram {
            bounds,
            buckets,
            sum: AtomicU64::new(0f64.to_bits()),
            native: form.native().then(|| NativeBuckets::new(native)),
        }
    }

    /// Whether the histogram has classic buckets.
    pub(crate) fn classic(&self) -> bool {
        !self.buckets.is_empty()
    }

    /// The native buckets, for a native histogram.
    pub(crate) fn native(&self) -> Option<&NativeBuckets> {
        self.native.as_ref()
    }

    pub(crate) fn bounds(&self) -> &Arc<[f64]> {
        &self.bounds
    }

    /// Appends the cumulative count of each bound and of `+Inf` to `out`; returns the sum.
    pub(crate) fn read_into(&self, out: &mut Vec<u64>) -> f64 {
        let mut total = 0;
        for bucket in self.buckets.iter() {
            total += bucket.load(Ordering::Relaxed);
            out.push(total);
        }
        f64::from_bits(self.sum.load(Ordering::Relaxed))
    }
}

impl HistogramFn for AtomicHistogram {
    fn record(&self, value: f64) {
        if let Some(native) = &self.native {
            // The sum first: a snapshot reads the native counts first, so that one that counts
            // a NaN also has the NaN sum (Prometheus takes a count above the buckets' only
            // with a NaN sum).
            self.add_to_sum(value);
            native.record(value);
            if self.buckets.is_empty() {
                return;
            }
            // The classic buckets of a histogram that has both; the sum is added.
            let index = self.bounds.partition_point(|bound| {
                matches!(value.partial_cmp(bound), Some(Order::Greater) | None)
            });
            self.buckets[index].fetch_add(1, Ordering::Relaxed);
            return;
        }
        // The first bound the value is at or below; NaN is above every bound (only +Inf
        // counts it), as Prometheus clients do.
        let index = self.bounds.partition_point(|bound| {
            matches!(value.partial_cmp(bound), Some(Order::Greater) | None)
        });
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
        self.add_to_sum(value);
    }
}

impl AtomicHistogram {
    fn add_to_sum(&self, value: f64) {
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + value).to_bits())
            });
    }
}

/// Creates the storage of each new series; histograms get their buckets and form by name.
#[derive(Debug)]
pub(crate) struct AtomicStorage {
    buckets: Arc<[f64]>,
    buckets_for_metric: Vec<(Matcher, Arc<[f64]>)>,
    histograms: HistogramSettings,
}

impl Storage<Key> for AtomicStorage {
    type Counter = Arc<AtomicU64>;
    type Gauge = Arc<AtomicU64>;
    type Histogram = Arc<AtomicHistogram>;

    fn counter(&self, _: &Key) -> Self::Counter {
        Arc::new(AtomicU64::new(0))
    }

    fn gauge(&self, _: &Key) -> Self::Gauge {
        Arc::new(AtomicU64::new(0))
    }

    fn histogram(&self, key: &Key) -> Self::Histogram {
        let name = crate::names::metric_name(key.name());
        let bounds = self
            .buckets_for_metric
            .iter()
            .find(|(matcher, _)| matcher.matches(&name))
            .map_or(&self.buckets, |(_, bounds)| bounds);
        let form = self
            .histograms
            .for_metric
            .iter()
            .find(|(matcher, _)| matcher.matches(&name))
            .map_or(self.histograms.form, |(_, form)| *form);
        Arc::new(AtomicHistogram::with_form(
            Arc::clone(bounds),
            form,
            self.histograms.native,
        ))
    }
}

/// The recorder's state, shared by the installed recorder, the handles and the pushers.
#[derive(Debug)]
pub(crate) struct Registry {
    registry: MetricsRegistry<Key, AtomicStorage>,
    /// By metric name as sent; the first description of a name wins.
    descriptions: RwLock<HashMap<String, Description>>,
    /// The type each name was first described as, by metric name as sent.
    described_kinds: RwLock<HashMap<String, Kind>>,
    global_labels: Vec<(String, String)>,
    /// Set when the final push starts: what is recorded afterwards is not pushed.
    closed: AtomicBool,
    /// Whether a recording after the final push was reported (once).
    late_reported: AtomicBool,
}

impl Registry {
    /// A registry whose histograms have `buckets` (or the first matching
    /// `buckets_for_metric`), and whose series all carry `global_labels`.
    pub(crate) fn new(
        buckets: &[f64],
        buckets_for_metric: &[(Matcher, Vec<f64>)],
        global_labels: &[(String, String)],
    ) -> Self {
        Self::with_histograms(
            buckets,
            buckets_for_metric,
            &HistogramSettings::default(),
            global_labels,
        )
    }

    /// As [`new`](Self::new), with histograms kept as `histograms` says.
    pub(crate) fn with_histograms(
        buckets: &[f64],
        buckets_for_metric: &[(Matcher, Vec<f64>)],
        histograms: &HistogramSettings,
        global_labels: &[(String, String)],
    ) -> Self {
        // As `metrics-exporter-prometheus` chooses: a matcher given twice keeps its last
        // buckets; full names are tried first, then prefixes, then suffixes, each in order.
        let mut matchers: Vec<(Matcher, Arc<[f64]>)> = Vec::new();
        for (matcher, bounds) in buckets_for_metric {
            matchers.retain(|(m, _)| m != matcher);
            matchers.push((matcher.clone(), bounds.as_slice().into()));
        }
        matchers.sort_by(|(a, _), (b, _)| a.order().cmp(&b.order()));
        // The same order for the forms.
        let mut histograms = histograms.clone();
        let mut forms: Vec<(Matcher, HistogramForm)> = Vec::new();
        for (matcher, form) in histograms.for_metric {
            forms.retain(|(m, _)| m != &matcher);
            forms.push((matcher, form));
        }
        forms.sort_by(|(a, _), (b, _)| a.order().cmp(&b.order()));
        histograms.for_metric = forms;
        let storage = AtomicStorage {
            buckets: buckets.into(),
            buckets_for_metric: matchers,
            histograms,
        };
        Registry {
            registry: MetricsRegistry::new(storage),
            descriptions: RwLock::new(HashMap::new()),
            described_kinds: RwLock::new(HashMap::new()),
            global_labels: global_labels.to_vec(),
            closed: AtomicBool::new(false),
            late_reported: AtomicBool::new(false),
        }
    }

    /// The values of this moment, with the descriptions and global labels, as a builder to
    /// which more families (the lifecycle metrics) can be added. Recorded metrics named like
    /// one of `reserved` are left out.
    pub(crate) fn snapshot(
        &self,
        reserved: &'static [&'static str],
        view: &View,
    ) -> SnapshotBuilder {
        let descriptions = self
            .descriptions
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let mut builder = SnapshotBuilder::new(&self.global_labels, reserved, view);
        self.registry.visit_counters(|key, value| {
            builder.add_counter(key, value.load(Ordering::Relaxed), &descriptions);
        });
        self.registry.visit_gauges(|key, value| {
            let value = f64::from_bits(value.load(Ordering::Relaxed));
            builder.add_gauge(key, value, &descriptions);
        });
        self.registry.visit_histograms(|key, histogram| {
            builder.add_histogram_parts(
                key,
                histogram.bounds(),
                histogram.classic(),
                |out| histogram.read_into(out),
                histogram.native(),
                &descriptions,
            );
        });
        builder
    }

    /// The snapshot of this moment, sorted.
    #[cfg(test)]
    pub(crate) fn take(&self) -> Snapshot {
        self.snapshot(&[], &View::default()).finish()
    }

    /// Marks the start of the final push: a metric recorded through the `metrics` macros from
    /// now on is reported, once, as not pushed.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }

    /// The counter of `key`, for the exporter's own metrics: never reported as late.
    pub(crate) fn own_counter(&self, key: &Key) -> Counter {
        self.registry
            .get_or_create_counter(key, |c| Counter::from_arc(Arc::clone(c)))
    }

    /// Whether the counter `key` is registered.
    pub(crate) fn has_counter(&self, key: &Key) -> bool {
        self.registry.get_counter(key).is_some()
    }

    /// The gauge of `key`, for the exporter's own metrics.
    pub(crate) fn own_gauge(&self, key: &Key) -> Gauge {
        self.registry
            .get_or_create_gauge(key, |g| Gauge::from_arc(Arc::clone(g)))
    }

    fn own_histogram(&self, key: &Key) -> Histogram {
        self.registry
            .get_or_create_histogram(key, |h| Histogram::from_arc(Arc::clone(h)))
    }

    /// Reports, once, that `key` was recorded after the final push started.
    fn check_open(&self, key: &Key) {
        if self.closed.load(Ordering::Relaxed) && !self.late_reported.swap(true, Ordering::Relaxed)
        {
            crate::log::warn(&format!(
                "`{}` was recorded after the final push started: what is recorded from then on \
                 is not pushed (hold the guard until the job's work is done)",
                key.name()
            ));
        }
    }

    /// Every described metric: its name as sent, the type it was described as, its help and
    /// unit; sorted by name.
    pub(crate) fn described(&self) -> Vec<(String, Kind, Description)> {
        let descriptions = self
            .descriptions
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let kinds = self
            .described_kinds
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let mut described: Vec<_> = descriptions
            .iter()
            .filter_map(|(name, d)| Some((name.clone(), *kinds.get(name)?, d.clone())))
            .collect();
        described.sort_by(|a, b| a.0.cmp(&b.0));
        described
    }

    fn describe(&self, kind: Kind, key: &KeyName, unit: Option<Unit>, help: SharedString) {
        let name = crate::names::metric_name(key.as_str()).into_owned();
        self.described_kinds
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(name.clone())
            .or_insert(kind);
        self.descriptions
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(name)
            .or_insert(Description { help, unit });
    }
}

/// The global recorder: the registry, shared.
#[derive(Debug, Clone)]
pub(crate) struct Installed(pub(crate) Arc<Registry>);

impl Recorder for Installed {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0.describe(Kind::Counter, &key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0.describe(Kind::Gauge, &key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0.describe(Kind::Histogram, &key, unit, description);
    }

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        self.0.check_open(key);
        self.0.own_counter(key)
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        self.0.check_open(key);
        self.0.own_gauge(key)
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        self.0.check_open(key);
        self.0.own_histogram(key)
    }
}

/// The exporter's recorder, returned by
/// [`PushgatewayBuilder::build`](crate::PushgatewayBuilder::build) for the caller to install
/// (`metrics::set_global_recorder`), to wrap in `metrics-util` layers (`PrefixLayer`,
/// `FilterLayer`, `Fanout` with another recorder) or to use for a while with
/// `metrics::with_local_recorder`. What it records is what the guard returned with it
/// pushes. Clones record into the same registry.
#[derive(Clone)]
pub struct PushgatewayRecorder(pub(crate) Installed);

impl std::fmt::Debug for PushgatewayRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushgatewayRecorder")
            .finish_non_exhaustive()
    }
}

impl Recorder for PushgatewayRecorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0.describe_counter(key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0.describe_gauge(key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0.describe_histogram(key, unit, description);
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        self.0.register_counter(key, metadata)
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        self.0.register_gauge(key, metadata)
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        self.0.register_histogram(key, metadata)
    }
}

/// A snapshot of what `record` records (through the `metrics` macros) into a registry of its
/// own with `buckets` and `global` labels.
#[cfg(test)]
pub(crate) fn snapshot_of(
    global: &[(&str, &str)],
    buckets: &[f64],
    record: impl FnOnce(),
) -> Snapshot {
    let global: Vec<(String, String)> = global
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let registry = Arc::new(Registry::new(buckets, &[], &global));
    metrics::with_local_recorder(&Installed(Arc::clone(&registry)), record);
    registry.take()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bounds a histogram named `name` gets.
    fn bounds_of(registry: &Registry, name: &'static str) -> Vec<f64> {
        let key = Key::from_name(name);
        let h = registry.registry.get_or_create_histogram(&key, Arc::clone);
        h.bounds().to_vec()
    }

    #[test]
    fn full_names_win_over_prefixes_and_the_last_of_a_matcher_wins() {
        let registry = Registry::new(
            &[1.0],
            &[
                (Matcher::Prefix("http_".into()), vec![2.0]),
                (Matcher::Suffix("_seconds".into()), vec![3.0]),
                (Matcher::Full("http_latency_seconds".into()), vec![4.0]),
                (Matcher::Prefix("http_".into()), vec![5.0]),
            ],
            &[],
        );
        assert_eq!(bounds_of(&registry, "http_latency_seconds"), [4.0]);
        assert_eq!(bounds_of(&registry, "http_requests"), [5.0]);
        assert_eq!(bounds_of(&registry, "db_seconds"), [3.0]);
        assert_eq!(bounds_of(&registry, "other"), [1.0]);
    }

    #[test]
    fn histograms_count_at_or_below_each_bound_and_nan_only_in_inf() {
        let snapshot = snapshot_of(&[], &[1.0, 2.0], || {
            for v in [0.5, 1.0, 1.5, 7.0, f64::NAN] {
                metrics::histogram!("h").record(v);
            }
        });
        let family = &snapshot.families()[0];
        let series = snapshot.series(family).next().unwrap();
        assert_eq!(series.bucket_counts(), [2, 3, 5]);
        match series.value() {
            crate::snapshot::Value::Histogram { sum, .. } => assert!(sum.is_nan()),
            other => panic!("{other:?}"),
        }
    }
}
