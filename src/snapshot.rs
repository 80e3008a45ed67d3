//! The snapshot every target encodes from: the families of one moment, each series with its
//! labels and value, sorted — built straight from the registry, never parsed back from text.
//!
//! Memory stays close to the size of the data: the label names and values of all series live
//! in one string, the series in one vector (a few dozen bytes each), histogram counts in
//! another; nothing is allocated per series.
//!
//! Samples are sorted by family, then by their labels. The Pushgateway sorts every group's
//! samples when it checks a push against what it holds, and input already in order is much
//! cheaper for it (a 100,000-series text body in random order took Pushgateway 1.5.1 about
//! 0.58 s to accept on loopback, sorted 0.27 s). Sorted bodies also compress better.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use metrics::{Key, SharedString, Unit};

/// What `describe_*` said of a metric: its help text and unit.
#[derive(Debug, Clone)]
pub(crate) struct Description {
    pub(crate) help: SharedString,
    pub(crate) unit: Option<Unit>,
}

/// The type of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    /// As the text format's `# TYPE` line names it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// `name` as a valid metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`, other characters replaced by
/// `_` (what `metrics-exporter-prometheus` sends for the same name). Borrowed when valid.
pub(crate) fn metric_name(name: &str) -> Cow<'_, str> {
    let valid = name.chars().enumerate().all(|(i, c)| {
        c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
    });
    if valid && !name.is_empty() {
        Cow::Borrowed(name)
    } else {
        Cow::Owned(metrics_exporter_prometheus::formatting::sanitize_metric_name(name))
    }
}

/// `name` as a valid label name: `[a-zA-Z_][a-zA-Z0-9_]*`, other characters replaced by `_`.
fn label_name(name: &str) -> Cow<'_, str> {
    let valid = name
        .chars()
        .enumerate()
        .all(|(i, c)| c.is_ascii_alphabetic() || c == '_' || (i > 0 && c.is_ascii_digit()));
    if valid && !name.is_empty() {
        Cow::Borrowed(name)
    } else {
        Cow::Owned(metrics_exporter_prometheus::formatting::sanitize_label_key(
            name,
        ))
    }
}

/// A metric family: name, type, help text, and for a histogram its bucket bounds.
#[derive(Debug, Clone)]
pub(crate) struct Family {
    pub(crate) name: String,
    pub(crate) kind: Kind,
    /// The help text as described (not escaped).
    pub(crate) help: Option<String>,
    /// The unit given to `describe_*`, as `metrics` names it (`seconds`, `bytes`, ...).
    pub(crate) unit: Option<&'static str>,
    /// A histogram's bucket bounds (without `+Inf`).
    pub(crate) bounds: Option<Arc<[f64]>>,
    /// The series of this family: a range of [`Snapshot::series`] once finished.
    series: Range<usize>,
}

/// A value of one series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value {
    Counter(u64),
    Gauge(f64),
    /// `buckets` indexes the snapshot's cumulative bucket counts (one per bound, then `+Inf`,
    /// whose count is the histogram's count).
    Histogram {
        buckets: u32,
        sum: f64,
    },
}

/// Where a label's name and value are in the snapshot's text.
#[derive(Debug, Clone, Copy)]
struct LabelSpan {
    name: (u32, u32),
    value: (u32, u32),
}

#[derive(Debug, Clone)]
struct SeriesEntry {
    family: u32,
    labels: (u32, u32),
    value: Value,
}

/// The families and series of one moment, sorted; see the module docs.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    families: Vec<Family>,
    series: Vec<SeriesEntry>,
    labels: Vec<LabelSpan>,
    text: String,
    buckets: Vec<u64>,
}

/// One series of a family, as encoders see it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Series<'a> {
    snapshot: &'a Snapshot,
    entry: &'a SeriesEntry,
}

impl<'a> Series<'a> {
    /// The labels, global labels first, in the order recorded; names valid, values as they
    /// are (not escaped).
    pub(crate) fn labels(&self) -> impl ExactSizeIterator<Item = (&'a str, &'a str)> + 'a {
        let snapshot = self.snapshot;
        let (start, end) = self.entry.labels;
        snapshot.labels[start as usize..end as usize]
            .iter()
            .map(move |span| (snapshot.slice(span.name), snapshot.slice(span.value)))
    }

    pub(crate) fn value(&self) -> Value {
        self.entry.value
    }

    /// A histogram's cumulative counts, one per bound and then `+Inf`.
    pub(crate) fn bucket_counts(&self) -> &'a [u64] {
        match self.entry.value {
            Value::Histogram { buckets, .. } => {
                let bounds = self.snapshot.families[self.entry.family as usize]
                    .bounds
                    .as_deref()
                    .map_or(0, <[f64]>::len);
                &self.snapshot.buckets[buckets as usize..buckets as usize + bounds + 1]
            }
            _ => &[],
        }
    }
}

impl Snapshot {
    fn slice(&self, (start, end): (u32, u32)) -> &str {
        &self.text[start as usize..end as usize]
    }

    /// The families, sorted by name (and type, for a name recorded as two types).
    pub(crate) fn families(&self) -> &[Family] {
        &self.families
    }

    /// The series of `family`, sorted by their labels.
    pub(crate) fn series<'a>(
        &'a self,
        family: &'a Family,
    ) -> impl ExactSizeIterator<Item = Series<'a>> + 'a {
        self.series[family.series.clone()]
            .iter()
            .map(move |entry| Series {
                snapshot: self,
                entry,
            })
    }

    /// How many series the snapshot holds.
    pub(crate) fn len(&self) -> usize {
        self.series.len()
    }
}

/// Collects a [`Snapshot`]: series as the registry hands them over, families found by name.
pub(crate) struct SnapshotBuilder {
    snapshot: Snapshot,
    global: Vec<(String, String)>,
    /// Family index by name as recorded, one per type (`u32::MAX`: none).
    by_name: HashMap<String, [u32; 3]>,
    /// Family index by type and name as sent.
    by_sent: HashMap<(Kind, String), u32>,
}

impl SnapshotBuilder {
    pub(crate) fn new(global_labels: &[(String, String)]) -> Self {
        SnapshotBuilder {
            snapshot: Snapshot::default(),
            global: global_labels.to_vec(),
            by_name: HashMap::new(),
            by_sent: HashMap::new(),
        }
    }

    fn push_text(&mut self, text: &str) -> (u32, u32) {
        let start = self.snapshot.text.len();
        self.snapshot.text.push_str(text);
        (start as u32, self.snapshot.text.len() as u32)
    }

    /// The family of `name` (as recorded) and `kind`, added if new.
    fn family(
        &mut self,
        kind: Kind,
        name: &str,
        describe: impl FnOnce(&str) -> (Option<String>, Option<&'static str>),
    ) -> u32 {
        let slot = kind as usize;
        if let Some(index) = self.by_name.get(name).map(|ids| ids[slot]) {
            if index != u32::MAX {
                return index;
            }
        }
        // Names that become one once made valid (`a.b`, `a_b`) are one family, as the
        // gateway would see them.
        let sent = metric_name(name).into_owned();
        let index = match self.by_sent.get(&(kind, sent.clone())) {
            Some(&index) => index,
            None => {
                let (help, unit) = describe(&sent);
                let index = self.snapshot.families.len() as u32;
                self.by_sent.insert((kind, sent.clone()), index);
                self.snapshot.families.push(Family {
                    name: sent,
                    kind,
                    help,
                    unit,
                    bounds: None,
                    series: 0..0,
                });
                index
            }
        };
        self.by_name.entry(name.to_owned()).or_insert([u32::MAX; 3])[slot] = index;
        index
    }

    fn described(
        descriptions: &HashMap<String, Description>,
    ) -> impl FnOnce(&str) -> (Option<String>, Option<&'static str>) + '_ {
        move |name| match descriptions.get(name) {
            Some(d) => (Some(d.help.to_string()), d.unit.map(|u| u.as_str())),
            None => (None, None),
        }
    }

    /// Adds a series: the global labels first (a recorded label of the same name gives its
    /// value), then the recorded labels; a name given twice keeps its first place and its last
    /// value.
    fn push_series<'k>(
        &mut self,
        family: u32,
        recorded: impl Iterator<Item = (&'k str, &'k str)> + Clone,
        value: Value,
    ) {
        let start = self.snapshot.labels.len();
        let global = std::mem::take(&mut self.global);
        for (name, value) in &global {
            let value = recorded
                .clone()
                .filter(|(n, _)| n == name)
                .last()
                .map_or(value.as_str(), |(_, v)| v);
            self.push_label(start, name, value);
        }
        for (name, value) in recorded {
            if global.iter().any(|(g, _)| g == name) {
                continue;
            }
            self.push_label(start, &label_name(name), value);
        }
        self.global = global;
        let end = self.snapshot.labels.len();
        self.snapshot.series.push(SeriesEntry {
            family,
            labels: (start as u32, end as u32),
            value,
        });
    }

    fn push_label(&mut self, series_start: usize, name: &str, value: &str) {
        let value = self.push_text(value);
        let existing = self.snapshot.labels[series_start..]
            .iter()
            .position(|span| self.snapshot.slice(span.name) == name);
        match existing {
            Some(at) => self.snapshot.labels[series_start + at].value = value,
            None => {
                let name = self.push_text(name);
                self.snapshot.labels.push(LabelSpan { name, value });
            }
        }
    }

    pub(crate) fn add_counter(
        &mut self,
        key: &Key,
        value: u64,
        descriptions: &HashMap<String, Description>,
    ) {
        let family = self.family(Kind::Counter, key.name(), Self::described(descriptions));
        let labels = key.labels().map(|l| (l.key(), l.value()));
        self.push_series(family, labels, Value::Counter(value));
    }

    pub(crate) fn add_gauge(
        &mut self,
        key: &Key,
        value: f64,
        descriptions: &HashMap<String, Description>,
    ) {
        let family = self.family(Kind::Gauge, key.name(), Self::described(descriptions));
        let labels = key.labels().map(|l| (l.key(), l.value()));
        self.push_series(family, labels, Value::Gauge(value));
    }

    /// Adds a histogram series with `bounds`; `read` appends its cumulative counts (one per
    /// bound, then `+Inf`) and returns its sum.
    pub(crate) fn add_histogram(
        &mut self,
        key: &Key,
        bounds: &Arc<[f64]>,
        read: impl FnOnce(&mut Vec<u64>) -> f64,
        descriptions: &HashMap<String, Description>,
    ) {
        let family = self.family(Kind::Histogram, key.name(), Self::described(descriptions));
        let family_bounds = &mut self.snapshot.families[family as usize].bounds;
        if family_bounds.is_none() {
            *family_bounds = Some(Arc::clone(bounds));
        }
        if family_bounds.as_ref().is_some_and(|b| b[..] != bounds[..]) {
            // A family has one set of buckets. Bounds are chosen by the name as sent, so the
            // series of one family always share them; a series that did not could not be
            // encoded in it, and is left out.
            return;
        }
        let buckets = self.snapshot.buckets.len() as u32;
        let sum = read(&mut self.snapshot.buckets);
        let labels = key.labels().map(|l| (l.key(), l.value()));
        self.push_series(family, labels, Value::Histogram { buckets, sum });
    }

    /// Adds a gauge series of a family that is not in the registry (the lifecycle metrics).
    pub(crate) fn add_own_gauge(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
        value: f64,
    ) {
        let family = self.family(Kind::Gauge, name, |_| (Some(help.to_owned()), None));
        self.push_series(family, labels.iter().copied(), Value::Gauge(value));
    }

    /// Sorts the families by name and the series of each by their labels.
    pub(crate) fn finish(self) -> Snapshot {
        let mut s = self.snapshot;
        let mut order: Vec<u32> = (0..s.families.len() as u32).collect();
        order.sort_by(|&a, &b| {
            let (fa, fb) = (&s.families[a as usize], &s.families[b as usize]);
            (fa.name.as_str(), fa.kind).cmp(&(fb.name.as_str(), fb.kind))
        });
        let mut rank = vec![0u32; order.len()];
        for (new, &old) in order.iter().enumerate() {
            rank[old as usize] = new as u32;
        }
        for entry in &mut s.series {
            entry.family = rank[entry.family as usize];
        }
        let mut families: Vec<Option<Family>> = s.families.into_iter().map(Some).collect();
        s.families = order
            .iter()
            .filter_map(|&old| families[old as usize].take())
            .collect();
        let (text, labels) = (&s.text, &s.labels);
        let label_list = |entry: &SeriesEntry| {
            labels[entry.labels.0 as usize..entry.labels.1 as usize]
                .iter()
                .map(|span| {
                    (
                        &text[span.name.0 as usize..span.name.1 as usize],
                        &text[span.value.0 as usize..span.value.1 as usize],
                    )
                })
        };
        s.series.sort_unstable_by(|a, b| {
            a.family
                .cmp(&b.family)
                .then_with(|| compare_labels(label_list(a), label_list(b)))
        });
        let mut start = 0;
        for (index, family) in s.families.iter_mut().enumerate() {
            let end = start
                + s.series[start..]
                    .iter()
                    .take_while(|e| e.family as usize == index)
                    .count();
            family.series = start..end;
            start = end;
        }
        s
    }
}

fn compare_labels<'a>(
    a: impl Iterator<Item = (&'a str, &'a str)>,
    b: impl Iterator<Item = (&'a str, &'a str)>,
) -> Ordering {
    a.cmp(b)
}
