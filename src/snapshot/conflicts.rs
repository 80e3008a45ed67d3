//! What the gateway would refuse a whole body for: families whose names clash, and how a
//! series left out is shown.

use std::collections::HashMap;

use super::{Family, Kind};

/// At most this many characters of a label value, and of a whole series, in a
/// [`Dropped`](super::Dropped).
const SHOWN_VALUE: usize = 64;
const SHOWN_SERIES: usize = 300;

/// `name{label="value",...}` for a message: values shortened, the whole bounded.
pub(super) fn describe_series<'k>(
    name: &str,
    labels: impl Iterator<Item = (&'k str, &'k str)>,
) -> String {
    let mut out = String::new();
    let shorten = |s: &str, max: usize| -> String {
        match s.char_indices().nth(max) {
            Some((at, _)) => format!("{}...", &s[..at]),
            None => s.to_owned(),
        }
    };
    match name {
        "" => out.push_str("\"\""),
        name => out.push_str(&shorten(name, SHOWN_VALUE)),
    }
    let labels: Vec<String> = labels
        .map(|(k, v)| format!("{}={:?}", shorten(k, SHOWN_VALUE), shorten(v, SHOWN_VALUE)))
        .collect();
    if !labels.is_empty() {
        out.push('{');
        out.push_str(&labels.join(","));
        out.push('}');
    }
    shorten(&out, SHOWN_SERIES)
}

/// The families (by index) whose names clash with another family's, with why; `order` sorts
/// them by name and type. Families without series are not sent at all and clash with nothing.
pub(super) fn refused_families(
    families: &[Family],
    order: &[u32],
    has_series: &[bool],
) -> HashMap<u32, String> {
    let mut refused = HashMap::new();
    // Sorted by name and type: the first family of each name is kept.
    let mut kept: Option<&Family> = None;
    for &index in order.iter().filter(|&&i| has_series[i as usize]) {
        let family = &families[index as usize];
        match kept {
            Some(first) if first.name == family.name => {
                refused.insert(
                    index,
                    format!(
                        "`{}` is recorded as a {} and as a {}; the {} is sent",
                        family.name,
                        family.kind.as_str(),
                        first.kind.as_str(),
                        first.kind.as_str(),
                    ),
                );
            }
            _ => kept = Some(family),
        }
    }
    // Histograms that are sent.
    let histograms: std::collections::HashSet<&str> = families
        .iter()
        .enumerate()
        .filter(|(i, f)| {
            f.kind == Kind::Histogram && has_series[*i] && !refused.contains_key(&(*i as u32))
        })
        .map(|(_, f)| f.name.as_str())
        .collect();
    if histograms.is_empty() {
        return refused;
    }
    for (index, family) in families.iter().enumerate() {
        if !has_series[index] {
            continue;
        }
        let clash = ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
            family
                .name
                .strip_suffix(suffix)
                .filter(|base| histograms.contains(base))
        });
        if let Some(base) = clash {
            refused.entry(index as u32).or_insert_with(|| {
                format!(
                    "`{}` is also a series name of the histogram `{base}`; the histogram is \
                     sent",
                    family.name
                )
            });
        }
    }
    refused
}

#[cfg(test)]
mod tests {
    use crate::registry::snapshot_of;
    use crate::snapshot::sent_and_dropped;

    #[test]
    fn a_name_recorded_as_two_types_keeps_the_first_of_counter_gauge_histogram() {
        let snapshot = snapshot_of(&[], &[1.0], || {
            metrics::histogram!("jobs").record(2.0);
            metrics::gauge!("jobs", "q" => "a").set(1.0);
            metrics::counter!("jobs", "q" => "b").increment(7);
        });
        let (sent, mut dropped) = sent_and_dropped(&snapshot);
        assert_eq!(sent, ["counter jobs{q=b} Counter(7)"]);
        dropped.sort();
        assert_eq!(
            dropped,
            [
                "jobs is left out of every push: `jobs` is recorded as a histogram and as a \
                 counter; the counter is sent",
                "jobs{q=\"a\"} is left out of every push: `jobs` is recorded as a gauge and as a \
                 counter; the counter is sent",
            ]
        );
    }

    #[test]
    fn a_family_named_like_a_histograms_series_is_left_out() {
        let snapshot = snapshot_of(&[], &[1.0], || {
            metrics::histogram!("rows").record(2.0);
            metrics::counter!("rows_count").increment(3);
            metrics::gauge!("rows_sum").set(4.0);
            metrics::gauge!("rows_total").set(5.0);
        });
        let (sent, mut dropped) = sent_and_dropped(&snapshot);
        assert_eq!(
            sent,
            [
                "histogram rows{} Histogram { buckets: 0, sum: 2.0 }",
                "gauge rows_total{} Gauge(5.0)",
            ]
        );
        dropped.sort();
        assert_eq!(
            dropped,
            [
                "rows_count is left out of every push: `rows_count` is also a series name of \
                 the histogram `rows`; the histogram is sent",
                "rows_sum is left out of every push: `rows_sum` is also a series name of the \
                 histogram `rows`; the histogram is sent",
            ]
        );
    }

    #[test]
    fn a_family_without_series_clashes_with_nothing() {
        let snapshot = snapshot_of(&[], &[1.0], || {
            // Every series of the counter is left out: the gauge of the same name is sent.
            metrics::counter!("jobs", "__x" => "1").increment(1);
            metrics::gauge!("jobs", "q" => "a").set(2.0);
            // The histogram loses to the counter, so the gauge named like its sum is sent.
            metrics::counter!("rows").increment(3);
            metrics::histogram!("rows").record(1.0);
            metrics::gauge!("rows_sum").set(4.0);
        });
        let (sent, dropped) = sent_and_dropped(&snapshot);
        assert_eq!(
            sent,
            [
                "gauge jobs{q=a} Gauge(2.0)",
                "counter rows{} Counter(3)",
                "gauge rows_sum{} Gauge(4.0)",
            ]
        );
        assert_eq!(dropped.len(), 2, "{dropped:?}");
    }

    #[test]
    fn long_values_are_shortened_in_the_reason() {
        let long = "v".repeat(1_000_000);
        let snapshot = snapshot_of(&[], &[1.0], || {
            metrics::counter!("c", "__x" => long.clone()).increment(1);
        });
        let dropped = &snapshot.dropped()[0];
        assert!(dropped.series.len() < 400, "{}", dropped.series.len());
        assert!(
            dropped.series.starts_with("c{__x=\"vvvv"),
            "{}",
            dropped.series
        );
    }
}
