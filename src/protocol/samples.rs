//! The samples of a series as the text format and remote write send them: one for a counter
//! or a gauge; for a histogram a `_bucket{le="<bound>"}` sample per bound, `_bucket{le="+Inf"}`,
//! `_sum` and `_count` — for a native-only histogram, its classic equivalent (a bucket at each
//! native bucket's upper bound).
//!
//! Source: the text exposition format 0.0.4 ("Histograms and summaries") of Prometheus.

use crate::snapshot::{Series, Value};

/// A sample's value: a count (an integer in the text format) or a float.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Number {
    Count(u64),
    Float(f64),
}

impl Number {
    /// The value as a float (what remote write sends).
    pub(crate) fn as_f64(self) -> f64 {
        match self {
            Number::Count(v) => v as f64,
            Number::Float(v) => v,
        }
    }
}

/// One sample of a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Sample<'a> {
    /// What follows the family's name: `""`, `_bucket`, `_sum` or `_count`.
    pub(crate) suffix: &'static str,
    /// The `le` label of a bucket: its bound as text, or `+Inf`.
    pub(crate) le: Option<&'a str>,
    pub(crate) value: Number,
}

/// Calls `each` with every sample of `series` in the order they are sent; stops at the first
/// error. `le` holds a bucket's bound as text (a buffer the caller reuses across series).
pub(crate) fn for_each<E>(
    series: &Series<'_>,
    le: &mut String,
    mut each: impl FnMut(Sample<'_>) -> Result<(), E>,
) -> Result<(), E> {
    let plain = |value| Sample {
        suffix: "",
        le: None,
        value,
    };
    match series.value() {
        Value::Counter(v) => each(plain(Number::Count(v))),
        Value::Gauge(v) => each(plain(Number::Float(v))),
        Value::Histogram { sum, .. } => {
            let mut count = 0;
            for (bound, cumulative) in series.classic_buckets() {
                count = cumulative;
                let le = if bound == f64::INFINITY {
                    "+Inf"
                } else {
                    le.clear();
                    let _ = std::fmt::Write::write_fmt(le, format_args!("{bound}"));
                    le.as_str()
                };
                each(Sample {
                    suffix: "_bucket",
                    le: Some(le),
                    value: Number::Count(cumulative),
                })?;
            }
            let count = Number::Count(count);
            each(Sample {
                suffix: "_sum",
                le: None,
                value: Number::Float(sum),
            })?;
            each(Sample {
                suffix: "_count",
                le: None,
                value: count,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_is_its_buckets_then_sum_and_count() {
        let snapshot = crate::registry::snapshot_of(&[], &[0.5, 1.0], || {
            for v in [0.25, 0.75, 3.0] {
                metrics::histogram!("lat").record(v);
            }
            metrics::counter!("c").increment(2);
            metrics::gauge!("g").set(-1.5);
        });
        let mut rows = Vec::new();
        let mut le = String::new();
        for family in snapshot.families() {
            for series in snapshot.series(family) {
                let _ = for_each(&series, &mut le, |s| {
                    rows.push((
                        format!("{}{}", family.name, s.suffix),
                        s.le.map(str::to_owned),
                        s.value,
                    ));
                    Ok::<(), ()>(())
                });
            }
        }
        let le = |s: &str| Some(s.to_owned());
        assert_eq!(
            rows,
            [
                ("c".to_owned(), None, Number::Count(2)),
                ("g".to_owned(), None, Number::Float(-1.5)),
                ("lat_bucket".to_owned(), le("0.5"), Number::Count(1)),
                ("lat_bucket".to_owned(), le("1"), Number::Count(2)),
                ("lat_bucket".to_owned(), le("+Inf"), Number::Count(3)),
                ("lat_sum".to_owned(), None, Number::Float(4.0)),
                ("lat_count".to_owned(), None, Number::Count(3)),
            ]
        );
    }

    #[test]
    fn the_first_error_stops_the_samples() {
        let snapshot = crate::registry::snapshot_of(&[], &[1.0, 2.0], || {
            metrics::histogram!("h").record(1.0);
        });
        let family = &snapshot.families()[0];
        let series = snapshot.series(family).next().unwrap();
        let mut seen = 0;
        let result = for_each(&series, &mut String::new(), |_| {
            seen += 1;
            if seen == 2 {
                Err("full")
            } else {
                Ok(())
            }
        });
        assert_eq!((result, seen), (Err("full"), 2));
    }
}
