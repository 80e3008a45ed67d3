//! The builder of a [`Snapshot`]: series as the registry hands them over, sorted, with what the
//! gateway would refuse left out.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use metrics::Key;

use super::conflicts::{describe_series, refused_families};
use super::{
    Description, Dropped, Family, Kind, LabelSpan, SeriesEntry, Snapshot, Value, View, MAX_DROPPED,
};
use crate::filter::Filter;
use crate::names::{is_metric_name, label_name, metric_name};
use crate::native::{HistogramForm, NativeBuckets};

/// Collects a [`Snapshot`]: series as the registry hands them over, families found by name.
pub(crate) struct SnapshotBuilder {
    snapshot: Snapshot,
    /// Labels on every series: the global labels (a recorded label of the same name gives
    /// its value), then the target's (`true`: its value wins).
    global: Vec<(String, String, bool)>,
    /// Family index by name as recorded, one per type (`u32::MAX`: none).
    by_name: HashMap<String, [u32; 3]>,
    /// Family index by type and name as sent.
    by_sent: HashMap<(Kind, String), u32>,
    /// Names the exporter sends itself: recorded metrics of these names are left out.
    reserved: &'static [&'static str],
    /// Families of recorded names that are left out (by name as recorded).
    refused: HashMap<String, String>,
    /// The metrics the target takes, and the recorded names it does not.
    filter: Filter,
    filtered: std::collections::HashSet<String>,
    /// Whether two series may be one once sent (a name made valid, a recorded label that a
    /// global or target label replaced): only then are duplicates looked for.
    may_collide: bool,
    /// The histogram form the target takes, if it has one of its own.
    histograms: Option<HistogramForm>,
    /// The native part of the histogram series being pushed.
    pending_native: Option<u32>,
}

/// Which recorded family a name as recorded belongs to.
#[derive(Clone, Copy)]
enum Slot {
    Family(u32),
    /// None: the name cannot be sent.
    Refused,
    /// None: the target does not take the metric.
    Filtered,
}

impl SnapshotBuilder {
    /// A builder whose series carry `global_labels`, and that leaves out recorded metrics
    /// named like one of `reserved` (the exporter's own metrics).
    pub(crate) fn new(
        global_labels: &[(String, String)],
        reserved: &'static [&'static str],
        view: &View,
    ) -> Self {
        let mut global: Vec<(String, String, bool)> = global_labels
            .iter()
            .map(|(n, v)| (n.clone(), v.clone(), false))
            .collect();
        for (name, value) in &view.labels {
            match global.iter_mut().find(|(n, _, _)| n == name) {
                Some(label) => *label = (name.clone(), value.clone(), true),
                None => global.push((name.clone(), value.clone(), true)),
            }
        }
        SnapshotBuilder {
            snapshot: Snapshot::default(),
            global,
            by_name: HashMap::new(),
            by_sent: HashMap::new(),
            reserved,
            refused: HashMap::new(),
            filter: view.filter.clone(),
            filtered: std::collections::HashSet::new(),
            may_collide: false,
            histograms: view.histograms,
            pending_native: None,
        }
    }

    fn push_text(&mut self, text: &str) -> (u32, u32) {
        let start = self.snapshot.text.len();
        self.snapshot.text.push_str(text);
        (start as u32, self.snapshot.text.len() as u32)
    }

    /// The family of a recorded `name` and `kind`, added if new; `Refused` (and the series
    /// dropped with a reason) when the name cannot be sent.
    fn family(
        &mut self,
        kind: Kind,
        name: &str,
        describe: impl FnOnce(&str) -> (Option<String>, Option<&'static str>),
    ) -> Slot {
        let slot = kind as usize;
        if let Some(index) = self.by_name.get(name).map(|ids| ids[slot]) {
            if index != u32::MAX {
                return Slot::Family(index);
            }
        }
        if self.refused.contains_key(name) {
            return Slot::Refused;
        }
        if self.filtered.contains(name) {
            return Slot::Filtered;
        }
        let sent = metric_name(name);
        if !self.filter.is_open() && !self.filter.allows(&sent) {
            self.filtered.insert(name.to_owned());
            return Slot::Filtered;
        }
        let refusal = if sent.is_empty() {
            Some("its metric name is empty".to_owned())
        } else if self.reserved.contains(&sent.as_ref()) {
            Some(format!(
                "`{sent}` is the name of one of the exporter's own lifecycle metrics; rename \
                 the metric, or turn the lifecycle metrics off (`lifecycle_metrics(false)`)"
            ))
        } else {
            None
        };
        if let Some(reason) = refusal {
            self.refused.insert(name.to_owned(), reason);
            return Slot::Refused;
        }
        let sent = sent.into_owned();
        Slot::Family(self.add_family(kind, name, sent, describe))
    }

    /// The family of `sent` and `kind`, added if new, and remembered for `name` as recorded.
    fn add_family(
        &mut self,
        kind: Kind,
        name: &str,
        sent: String,
        describe: impl FnOnce(&str) -> (Option<String>, Option<&'static str>),
    ) -> u32 {
        // Names that become one once made valid (`a.b`, `a_b`) are one family, as the
        // gateway would see them.
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
        self.by_name.entry(name.to_owned()).or_insert([u32::MAX; 3])[kind as usize] = index;
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

    /// Adds a series of a recorded metric `name`: the global labels first (a recorded label of
    /// the same name gives its value), then the recorded labels. A series the gateway would
    /// refuse (a label name that is empty, starts with `__`, is given twice, or is `le` on a
    /// histogram) is dropped with the reason instead.
    fn push_series<'k>(
        &mut self,
        slot: Slot,
        name: &str,
        recorded: impl Iterator<Item = (&'k str, &'k str)> + Clone,
        value: impl FnOnce(&mut Self) -> Value,
    ) {
        let family = match slot {
            Slot::Family(family) => family,
            Slot::Refused => {
                let reason = self.refused.get(name).cloned().unwrap_or_default();
                self.drop_series(name, recorded, reason);
                return;
            }
            Slot::Filtered => return,
        };
        let (start, text_start) = (self.snapshot.labels.len(), self.snapshot.text.len());
        let mut renamed = !is_metric_name(name);
        let global = std::mem::take(&mut self.global);
        for (label, value, forced) in &global {
            let value = match forced {
                true => value.as_str(),
                false => recorded
                    .clone()
                    .filter(|(n, _)| n == label)
                    .last()
                    .map_or(value.as_str(), |(_, v)| v),
            };
            self.push_label(start, label, value);
        }
        let global_end = self.snapshot.labels.len();
        let histogram = self.snapshot.families[family as usize].kind == Kind::Histogram;
        let mut refusal = None;
        for (label, value) in recorded.clone() {
            if global.iter().any(|(g, _, _)| g == label) {
                // Series that differ only in this label become one.
                self.may_collide = true;
                continue;
            }
            let sent = label_name(label);
            renamed |= sent != label;
            refusal = if sent.is_empty() {
                Some("a label name is empty".to_owned())
            } else if sent.starts_with("__") {
                Some(format!(
                    "label names starting with `__` are reserved for Prometheus (`{sent}`)"
                ))
            } else if histogram && sent == "le" {
                Some("a histogram cannot have a label named `le` (its buckets use it)".to_owned())
            } else if self.snapshot.labels[global_end..]
                .iter()
                .any(|span| self.snapshot.slice(span.name) == sent)
            {
                Some(format!(
                    "the label `{sent}` is given twice (once made valid, if it was not)"
                ))
            } else {
                None
            };
            if refusal.is_some() {
                break;
            }
            self.push_label(start, &sent, value);
        }
        self.global = global;
        if let Some(reason) = refusal {
            self.snapshot.labels.truncate(start);
            self.snapshot.text.truncate(text_start);
            self.drop_series(name, recorded, reason);
            return;
        }
        self.may_collide |= renamed;
        let end = self.snapshot.labels.len();
        // Recorded labels in one order (by name), so that a series is the same series however
        // its labels were given.
        let (text, labels) = (&self.snapshot.text, &mut self.snapshot.labels);
        labels[global_end..end].sort_unstable_by(|a, b| {
            text[a.name.0 as usize..a.name.1 as usize]
                .cmp(&text[b.name.0 as usize..b.name.1 as usize])
        });
        let value = value(self);
        self.snapshot.series.push(SeriesEntry {
            family,
            labels: (start as u32, end as u32),
            value,
            renamed,
            native: self.pending_native.take().unwrap_or(super::NO_NATIVE),
        });
    }

    fn drop_series<'k>(
        &mut self,
        name: &str,
        recorded: impl Iterator<Item = (&'k str, &'k str)>,
        reason: String,
    ) {
        self.snapshot.note_dropped(|| Dropped {
            series: describe_series(name, recorded),
            reason,
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
        let slot = self.family(Kind::Counter, key.name(), Self::described(descriptions));
        let labels = key.labels().map(|l| (l.key(), l.value()));
        self.push_series(slot, key.name(), labels, |_| Value::Counter(value));
    }

    pub(crate) fn add_gauge(
        &mut self,
        key: &Key,
        value: f64,
        descriptions: &HashMap<String, Description>,
    ) {
        let slot = self.family(Kind::Gauge, key.name(), Self::described(descriptions));
        let labels = key.labels().map(|l| (l.key(), l.value()));
        self.push_series(slot, key.name(), labels, |_| Value::Gauge(value));
    }

    /// Adds a histogram series that has classic buckets at `bounds` (if `classic`; `read`
    /// appends their cumulative counts and returns the sum) and native ones (if `native`).
    /// What the view's target does not take is left out; a native-only histogram has one
    /// classic count, `+Inf`'s, so that its classic form is never empty.
    pub(crate) fn add_histogram_parts(
        &mut self,
        key: &Key,
        bounds: &Arc<[f64]>,
        classic: bool,
        read: impl FnOnce(&mut Vec<u64>) -> f64,
        native: Option<&NativeBuckets>,
        descriptions: &HashMap<String, Description>,
    ) {
        let form = self.histograms;
        let native = native.filter(|_| form != Some(HistogramForm::Classic) || !classic);
        let send_native = native.is_some() && form != Some(HistogramForm::Classic);
        let classic = classic && !(send_native && form == Some(HistogramForm::Native));
        let no_bounds: Arc<[f64]>;
        let bounds = if classic {
            bounds
        } else {
            no_bounds = Arc::new([]);
            &no_bounds
        };
        let slot = self.family(Kind::Histogram, key.name(), Self::described(descriptions));
        if let Slot::Family(family) = slot {
            let family_bounds = &mut self.snapshot.families[family as usize].bounds;
            if family_bounds.is_none() {
                *family_bounds = Some(Arc::clone(bounds));
            }
            if family_bounds.as_ref().is_some_and(|b| b[..] != bounds[..]) {
                // A family has one set of buckets. Bounds are chosen by the name as sent, so
                // the series of one family always share them; a series that did not could
                // not be encoded in it, and is left out.
                return;
            }
        }
        let labels = key.labels().map(|l| (l.key(), l.value()));
        self.push_series(slot, key.name(), labels, |this| {
            let buckets = this.snapshot.buckets.len() as u32;
            // The native counts before the sum (see `AtomicHistogram::record`).
            let native = native.map(|n| n.read_into(&mut this.snapshot.native_buckets));
            let sum = if classic {
                read(&mut this.snapshot.buckets)
            } else {
                let mut unused = Vec::new();
                read(&mut unused)
            };
            if let Some(value) = native {
                if !classic {
                    this.snapshot.buckets.push(value.count);
                }
                this.pending_native = Some(this.snapshot.natives.len() as u32);
                this.snapshot.natives.push(super::NativeEntry {
                    value,
                    classic,
                    send: send_native,
                });
            }
            Value::Histogram { buckets, sum }
        });
    }

    /// Adds a gauge series of a family that is not in the registry (the lifecycle metrics).
    pub(crate) fn add_own_gauge(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
        value: f64,
    ) {
        if !self.filter.is_open() && !self.filter.allows(name) {
            return;
        }
        let family = self.add_family(Kind::Gauge, name, name.to_owned(), |_| {
            (Some(help.to_owned()), None)
        });
        self.push_series(Slot::Family(family), name, labels.iter().copied(), |_| {
            Value::Gauge(value)
        });
    }

    /// Sorts the families by name and the series of each by their labels, leaving out what the
    /// gateway would refuse the whole body for: a name recorded as two types (the first of
    /// counter, gauge, histogram is kept), a family named like a histogram's `_bucket`, `_sum`
    /// or `_count` series (the histogram is kept), and a series given twice (the one recorded
    /// exactly as sent is kept).
    pub(crate) fn finish(self) -> Snapshot {
        let may_collide = self.may_collide;
        let mut s = self.snapshot;
        let mut order: Vec<u32> = (0..s.families.len() as u32).collect();
        order.sort_by(|&a, &b| {
            let (fa, fb) = (&s.families[a as usize], &s.families[b as usize]);
            (fa.name.as_str(), fa.kind).cmp(&(fb.name.as_str(), fb.kind))
        });
        let mut has_series = vec![false; s.families.len()];
        for entry in &s.series {
            has_series[entry.family as usize] = true;
        }
        let refused = refused_families(&s.families, &order, &has_series);
        let mut rank = vec![u32::MAX; s.families.len()];
        let mut kept = 0;
        for &old in &order {
            if !refused.contains_key(&old) {
                rank[old as usize] = kept;
                kept += 1;
            }
        }
        if !refused.is_empty() {
            let (text, labels) = (&s.text, &s.labels);
            for entry in s.series.iter().filter(|e| refused.contains_key(&e.family)) {
                if s.dropped.len() >= MAX_DROPPED {
                    s.dropped_more += 1;
                    continue;
                }
                let family = &s.families[entry.family as usize];
                s.dropped.push(Dropped {
                    series: describe_series(&family.name, label_list(text, labels, entry)),
                    reason: refused[&entry.family].clone(),
                });
            }
            s.series.retain(|e| !refused.contains_key(&e.family));
        }
        for entry in &mut s.series {
            entry.family = rank[entry.family as usize];
        }
        let mut families: Vec<Option<Family>> = s.families.into_iter().map(Some).collect();
        s.families = order
            .iter()
            .filter(|&old| !refused.contains_key(old))
            .filter_map(|&old| families[old as usize].take())
            .collect();
        let (text, labels) = (&s.text, &s.labels);
        s.series.sort_unstable_by(|a, b| {
            a.family
                .cmp(&b.family)
                .then_with(|| {
                    compare_labels(label_list(text, labels, a), label_list(text, labels, b))
                })
                .then(a.renamed.cmp(&b.renamed))
        });
        let families = &s.families;
        let mut previous: Option<&SeriesEntry> = None;
        let mut duplicate = vec![false; if may_collide { s.series.len() } else { 0 }];
        for (i, entry) in s.series.iter().enumerate().filter(|_| may_collide) {
            if let Some(p) = previous {
                if p.family == entry.family
                    && label_list(text, labels, p).eq(label_list(text, labels, entry))
                {
                    duplicate[i] = true;
                    if s.dropped.len() >= MAX_DROPPED {
                        s.dropped_more += 1;
                        continue;
                    }
                    s.dropped.push(Dropped {
                        series: describe_series(
                            &families[entry.family as usize].name,
                            label_list(text, labels, entry),
                        ),
                        reason: "it is the same series as another once names are made valid \
                                 (such as `a.b` and `a_b`, or label names `a-b` and `a_b`) or \
                                 the global and target labels added; one is sent, the one \
                                 recorded under valid names if there is one"
                            .to_owned(),
                    });
                    continue;
                }
            }
            previous = Some(entry);
        }
        if duplicate.contains(&true) {
            let mut i = 0;
            s.series.retain(|_| {
                i += 1;
                !duplicate[i - 1]
            });
        }
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
        if s.families.iter().any(|f| f.series.is_empty()) {
            // A family whose every series was left out is not sent at all.
            let mut rank = Vec::with_capacity(s.families.len());
            let mut kept = 0u32;
            for family in &s.families {
                rank.push(kept);
                kept += u32::from(!family.series.is_empty());
            }
            for entry in &mut s.series {
                entry.family = rank[entry.family as usize];
            }
            s.families.retain(|f| !f.series.is_empty());
        }
        s
    }
}

/// The labels of `entry`.
fn label_list<'a>(
    text: &'a str,
    labels: &'a [LabelSpan],
    entry: &SeriesEntry,
) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
    labels[entry.labels.0 as usize..entry.labels.1 as usize]
        .iter()
        .map(move |span| {
            (
                &text[span.name.0 as usize..span.name.1 as usize],
                &text[span.value.0 as usize..span.value.1 as usize],
            )
        })
}

fn compare_labels<'a>(
    a: impl Iterator<Item = (&'a str, &'a str)>,
    b: impl Iterator<Item = (&'a str, &'a str)>,
) -> Ordering {
    a.cmp(b)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::registry::{snapshot_of, Installed, Registry};
    use crate::snapshot::{sent_and_dropped, View};

    #[test]
    fn names_that_become_one_are_one_family() {
        let snapshot = snapshot_of(&[], &[1.0], || {
            metrics::counter!("db.queries", "op" => "r").increment(1);
            metrics::counter!("db_queries", "op" => "w").increment(2);
        });
        let families = snapshot.families();
        assert_eq!(families.len(), 1);
        assert_eq!(families[0].name, "db_queries");
        let values: Vec<_> = snapshot
            .series(&families[0])
            .map(|s| (s.labels().collect::<Vec<_>>(), s.value()))
            .collect();
        assert_eq!(
            values,
            [
                (vec![("op", "r")], crate::snapshot::Value::Counter(1)),
                (vec![("op", "w")], crate::snapshot::Value::Counter(2)),
            ]
        );
    }

    #[test]
    fn global_labels_come_first_and_a_recorded_one_gives_its_value() {
        let snapshot = snapshot_of(&[("service", "api"), ("zone", "eu")], &[1.0], || {
            metrics::gauge!("g", "zone" => "us", "a" => "2").set(1.0);
        });
        let family = &snapshot.families()[0];
        let labels: Vec<_> = snapshot.series(family).next().unwrap().labels().collect();
        assert_eq!(labels, [("service", "api"), ("zone", "us"), ("a", "2")]);
    }

    #[test]
    fn series_the_gateway_would_refuse_are_left_out_with_a_reason_and_the_rest_is_kept() {
        let snapshot = snapshot_of(&[("service", "api")], &[1.0], || {
            metrics::counter!("ok_total", "a" => "1").increment(1);
            metrics::counter!("").increment(2);
            metrics::counter!("ok_total", "__secret" => "x").increment(3);
            metrics::counter!("ok_total", "a" => "1", "a" => "2").increment(4);
            metrics::counter!("ok_total", "a-b" => "1", "a_b" => "2").increment(5);
            metrics::histogram!("latency", "le" => "x").record(0.5);
            metrics::histogram!("latency").record(0.5);
        });
        let (sent, dropped) = sent_and_dropped(&snapshot);
        assert_eq!(
            sent,
            [
                "histogram latency{service=api} Histogram { buckets: 0, sum: 0.5 }",
                "counter ok_total{service=api,a=1} Counter(1)",
            ]
        );
        let expected = [
            "\"\" is left out of every push: its metric name is empty",
            "ok_total{__secret=\"x\"} is left out of every push: label names starting with `__` \
             are reserved for Prometheus (`__secret`)",
            "ok_total{a=\"1\",a=\"2\"} is left out of every push: the label `a` is given twice \
             (once made valid, if it was not)",
            "ok_total{a-b=\"1\",a_b=\"2\"} is left out of every push: the label `a_b` is given \
             twice (once made valid, if it was not)",
            "latency{le=\"x\"} is left out of every push: a histogram cannot have a label named \
             `le` (its buckets use it)",
        ];
        let mut dropped = dropped;
        dropped.sort();
        let mut expected = expected.map(str::to_owned).to_vec();
        expected.sort();
        assert_eq!(dropped, expected);
    }

    #[test]
    fn of_two_names_that_become_one_the_series_recorded_under_the_valid_name_is_sent() {
        for order in [["db.queries", "db_queries"], ["db_queries", "db.queries"]] {
            let snapshot = snapshot_of(&[], &[1.0], || {
                for (i, name) in order.into_iter().enumerate() {
                    let value = if name == "db_queries" {
                        10
                    } else {
                        20 + i as u64
                    };
                    metrics::counter!(name, "op" => "r").increment(value);
                }
                metrics::counter!("db.queries", "op" => "w").increment(1);
            });
            let (sent, dropped) = sent_and_dropped(&snapshot);
            assert_eq!(
                sent,
                [
                    "counter db_queries{op=r} Counter(10)",
                    "counter db_queries{op=w} Counter(1)",
                ]
            );
            assert_eq!(dropped.len(), 1, "{dropped:?}");
            assert!(
                dropped[0].starts_with(
                    "db_queries{op=\"r\"} is left out of every push: it is the same \
                     series as another once names are made valid"
                ),
                "{dropped:?}"
            );
        }
    }

    #[test]
    fn recorded_metrics_named_like_a_reserved_name_are_left_out() {
        let registry = Arc::new(Registry::new(&[1.0], &[], &[]));
        metrics::with_local_recorder(&Installed(Arc::clone(&registry)), || {
            metrics::histogram!("batch_job_duration_seconds").record(3.0);
            metrics::counter!("batch_job_runs_total").increment(1);
        });
        let mut builder = registry.snapshot(crate::lifecycle::NAMES, &View::default());
        builder.add_own_gauge("batch_job_duration_seconds", "Wall time.", &[], 1.5);
        let (sent, dropped) = sent_and_dropped(&builder.finish());
        assert_eq!(
            sent,
            [
                "gauge batch_job_duration_seconds{} Gauge(1.5)",
                "counter batch_job_runs_total{} Counter(1)",
            ]
        );
        assert_eq!(
            dropped,
            ["batch_job_duration_seconds is left out of every push: `batch_job_duration_seconds` \
              is the name of one of the exporter's own lifecycle metrics; rename the metric, or \
              turn the lifecycle metrics off (`lifecycle_metrics(false)`)"]
        );
        // Without reserved names the same metric is sent.
        let (sent, dropped) = sent_and_dropped(&registry.take());
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert!(dropped.is_empty());
    }

    #[test]
    fn series_the_same_whatever_their_label_order_are_one() {
        let snapshot = snapshot_of(&[], &[1.0], || {
            metrics::counter!("a.b", "x" => "1", "y" => "2").increment(1);
            metrics::counter!("a_b", "y" => "2", "x" => "1").increment(2);
            metrics::counter!("c", "b-b" => "1", "a" => "2").increment(3);
            metrics::counter!("c", "a" => "2", "b_b" => "1").increment(4);
        });
        let (sent, dropped) = sent_and_dropped(&snapshot);
        assert_eq!(
            sent,
            [
                "counter a_b{x=1,y=2} Counter(2)",
                "counter c{a=2,b_b=1} Counter(4)",
            ]
        );
        assert_eq!(dropped.len(), 2, "{dropped:?}");
    }

    #[test]
    fn at_most_a_bounded_number_of_left_out_series_are_described() {
        let snapshot = snapshot_of(&[], &[1.0], || {
            for i in 0..5000 {
                metrics::counter!("c", "__x" => i.to_string()).increment(1);
            }
        });
        assert_eq!(snapshot.dropped().len(), crate::snapshot::MAX_DROPPED);
        assert_eq!(snapshot.dropped_more(), 5000 - crate::snapshot::MAX_DROPPED);
    }
}
