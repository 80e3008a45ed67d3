//! The text exposition format 0.0.4 of a [`Snapshot`] (the Pushgateway's body, the scrape,
//! the textfile collector's file), written straight into the caller's (reused) buffer.

use std::convert::Infallible;
use std::io::Write as _;

use super::samples::{self, Number, Sample};
use crate::snapshot::{Series, Snapshot};

/// `Content-Type` of a text body.
pub(crate) const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Appends `snapshot` in the text exposition format 0.0.4: per family a `# HELP` line (when
/// described), a `# TYPE` line, its samples, and a blank line. With `extra` labels (the
/// textfile collector's job and grouping labels), each sample's labels are those of
/// [`target_labels`].
pub(crate) fn text(snapshot: &Snapshot, extra: &[(String, String)], out: &mut Vec<u8>) {
    let mut le = String::new();
    for family in snapshot.families() {
        let name = family.name.as_str();
        if let Some(help) = &family.help {
            out.extend_from_slice(b"# HELP ");
            out.extend_from_slice(name.as_bytes());
            out.push(b' ');
            escape_help(help, out);
            out.push(b'\n');
        }
        let _ = writeln!(out, "# TYPE {name} {}", family.kind.as_str());
        for series in snapshot.series(family) {
            // The text format has no native histograms: a native-only one goes as its classic
            // equivalent.
            let _ = samples::for_each(&series, &mut le, |s| {
                sample(out, name, &series, extra, s);
                Ok::<(), Infallible>(())
            });
        }
        out.push(b'\n');
    }
}

/// The snapshot in the text format, as a string (for `render()`).
pub(crate) fn text_string(snapshot: &Snapshot) -> String {
    let mut out = Vec::new();
    text(snapshot, &[], &mut out);
    // Only valid UTF-8 goes in: names, label values and help texts are `str`s.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The labels of a series pushed outside the Pushgateway: its own, then the job and grouping
/// labels `target`, which replace a label of the same name (as the Pushgateway replaces
/// them); labels with an empty value are dropped (Prometheus treats them as absent). Sorted by
/// name, each name once.
pub(crate) fn target_labels<'a>(
    series: &Series<'a>,
    target: &'a [(String, String)],
) -> Vec<(&'a str, &'a str)> {
    let mut labels: Vec<(&str, &str)> = Vec::with_capacity(series.labels().len() + target.len());
    labels.extend(target.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    labels.extend(
        series
            .labels()
            .filter(|(k, _)| !target.iter().any(|(t, _)| t == k)),
    );
    labels.retain(|(_, v)| !v.is_empty());
    labels.sort_by(|a, b| a.0.cmp(b.0));
    labels.dedup_by(|a, b| a.0 == b.0);
    labels
}

/// Appends one sample line: `name{labels} value`.
fn sample(
    out: &mut Vec<u8>,
    name: &str,
    series: &Series<'_>,
    extra: &[(String, String)],
    sample: Sample<'_>,
) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(sample.suffix.as_bytes());
    let mut first = true;
    let mut label = |out: &mut Vec<u8>, n: &str, v: &str| {
        out.push(if first { b'{' } else { b',' });
        first = false;
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(b"=\"");
        escape_label_value(v, out);
        out.push(b'"');
    };
    if extra.is_empty() {
        for (n, v) in series.labels() {
            label(out, n, v);
        }
    } else {
        for (n, v) in target_labels(series, extra) {
            label(out, n, v);
        }
    }
    if let Some(le) = sample.le {
        label(out, "le", le);
    }
    if !first {
        out.push(b'}');
    }
    out.push(b' ');
    match sample.value {
        Number::Count(v) => {
            let _ = write!(out, "{v}");
        }
        Number::Float(v) => write_value(v, out),
    }
    out.push(b'\n');
}

/// Appends `value` as the text format writes a sample value: `+Inf`, `-Inf`, `NaN`, or the
/// shortest decimal that reads back as the same number.
pub(crate) fn write_value(value: f64, out: &mut Vec<u8>) {
    if value.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if value.is_infinite() {
        out.extend_from_slice(if value > 0.0 { b"+Inf" } else { b"-Inf" });
    } else {
        let _ = write!(out, "{value}");
    }
}

/// Appends a label value escaped for the text format: `\` as `\\`, `"` as `\"`, a line feed
/// as `\n`.
pub(crate) fn escape_label_value(value: &str, out: &mut Vec<u8>) {
    if !value.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
        out.extend_from_slice(value.as_bytes());
        return;
    }
    for b in value.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b => out.push(b),
        }
    }
}

/// Appends a help text escaped for the text format: `\` as `\\`, a line feed as `\n`.
fn escape_help(help: &str, out: &mut Vec<u8>) {
    for b in help.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;
    use crate::protocol::protobuf::{self, MetricFamily};
    use crate::snapshot::{Kind, Value};

    /// Labels as owned pairs.
    type Labels = Vec<(String, String)>;
    /// (sample name, family type, labels, value) of one sample.
    type Row = (String, String, Labels, String);

    /// Series with odd names, escapes in label values and help, an empty label value,
    /// NaN and ±Inf, a histogram, and global labels.
    fn odd() -> Snapshot {
        crate::registry::snapshot_of(&[("service", "a\"b")], &[0.5, 1.0], || {
            metrics::describe_counter!("req.total", "Requests\nserved \\ counted.");
            metrics::counter!("req.total", "path" => "/a\\b\"c\nd", "empty" => "").increment(7);
            metrics::counter!("req.total", "path" => "/").increment(1);
            metrics::gauge!("temp", "zone" => "b").set(f64::NAN);
            metrics::gauge!("temp", "zone" => "a").set(f64::INFINITY);
            metrics::gauge!("temp", "zone" => "c").set(f64::NEG_INFINITY);
            metrics::gauge!("9lives").set(-0.25);
            for v in [0.1, 0.7, 3.0, f64::NAN] {
                metrics::histogram!("lat", "service" => "own").record(v);
            }
        })
    }

    #[test]
    fn text_is_sorted_escaped_and_exact() {
        let text = text_string(&odd());
        assert_eq!(
            text,
            "# TYPE _lives gauge\n\
             _lives{service=\"a\\\"b\"} -0.25\n\
             \n\
             # TYPE lat histogram\n\
             lat_bucket{service=\"own\",le=\"0.5\"} 1\n\
             lat_bucket{service=\"own\",le=\"1\"} 2\n\
             lat_bucket{service=\"own\",le=\"+Inf\"} 4\n\
             lat_sum{service=\"own\"} NaN\n\
             lat_count{service=\"own\"} 4\n\
             \n\
             # HELP req_total Requests\\nserved \\\\ counted.\n\
             # TYPE req_total counter\n\
             req_total{service=\"a\\\"b\",empty=\"\",path=\"/a\\\\b\\\"c\\nd\"} 7\n\
             req_total{service=\"a\\\"b\",path=\"/\"} 1\n\
             \n\
             # TYPE temp gauge\n\
             temp{service=\"a\\\"b\",zone=\"a\"} +Inf\n\
             temp{service=\"a\\\"b\",zone=\"b\"} NaN\n\
             temp{service=\"a\\\"b\",zone=\"c\"} -Inf\n\
             \n"
        );
    }

    /// (family, type, labels, value) rows of every sample, histograms as buckets, sum and
    /// count, from the protobuf body.
    fn rows_from_protobuf(body: &[u8]) -> Vec<Row> {
        let mut rows = Vec::new();
        let mut buf = body;
        while !buf.is_empty() {
            let family = MetricFamily::decode_length_delimited(&mut buf).unwrap();
            let name = family.name.clone().unwrap();
            let kind = match family.r#type.unwrap() {
                0 => "counter",
                1 => "gauge",
                4 => "histogram",
                other => panic!("type {other}"),
            };
            for metric in &family.metric {
                let labels: Vec<(String, String)> = metric
                    .label
                    .iter()
                    .map(|l| (l.name.clone().unwrap(), l.value.clone().unwrap()))
                    .collect();
                let mut row = |suffix: &str, extra: Option<(&str, String)>, value: f64| {
                    let mut labels = labels.clone();
                    labels.extend(extra.map(|(k, v)| (k.to_owned(), v)));
                    rows.push((
                        format!("{name}{suffix}"),
                        kind.to_owned(),
                        labels,
                        format!("{value:?}"),
                    ));
                };
                if let Some(c) = &metric.counter {
                    row("", None, c.value.unwrap());
                } else if let Some(g) = &metric.gauge {
                    row("", None, g.value.unwrap());
                } else if let Some(h) = &metric.histogram {
                    for b in &h.bucket {
                        let bound = b.upper_bound.unwrap();
                        let le = if bound == f64::INFINITY {
                            "+Inf".to_owned()
                        } else {
                            bound.to_string()
                        };
                        row(
                            "_bucket",
                            Some(("le", le)),
                            b.cumulative_count.unwrap() as f64,
                        );
                    }
                    let count = h.sample_count.unwrap() as f64;
                    row("_sum", None, h.sample_sum.unwrap());
                    row("_count", None, count);
                }
            }
        }
        rows
    }

    /// The same rows from the snapshot, through the text format's sample lines.
    fn rows_from_snapshot(s: &Snapshot) -> Vec<Row> {
        let mut rows = Vec::new();
        for family in s.families() {
            for series in s.series(family) {
                let labels: Vec<(String, String)> = series
                    .labels()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
                let kind = family.kind.as_str().to_owned();
                let mut row = |suffix: &str, extra: Option<(&str, String)>, value: f64| {
                    let mut labels = labels.clone();
                    labels.extend(extra.map(|(k, v)| (k.to_owned(), v)));
                    rows.push((
                        format!("{}{suffix}", family.name),
                        kind.clone(),
                        labels,
                        format!("{value:?}"),
                    ));
                };
                // Expanded here by hand, not by `samples`, so that the encoders are checked
                // against a second reading of the format.
                match series.value() {
                    Value::Counter(v) => row("", None, v as f64),
                    Value::Gauge(v) => row("", None, v),
                    Value::Histogram { sum, .. } => {
                        let bounds = family.bounds.as_deref().unwrap_or(&[]);
                        let counts = series.bucket_counts();
                        for (b, c) in bounds.iter().zip(counts) {
                            row("_bucket", Some(("le", b.to_string())), *c as f64);
                        }
                        let count = *counts.last().unwrap() as f64;
                        row("_bucket", Some(("le", "+Inf".into())), count);
                        row("_sum", None, sum);
                        row("_count", None, count);
                    }
                }
            }
        }
        rows
    }

    #[test]
    fn protobuf_carries_the_same_samples_as_the_snapshot() {
        let s = odd();
        let mut body = Vec::new();
        protobuf::encode(&s, &mut body, &mut Vec::new());
        let from_protobuf = rows_from_protobuf(&body);
        assert_eq!(from_protobuf, rows_from_snapshot(&s));
        assert_eq!(from_protobuf.len(), 1 + 5 + 2 + 3);
        // Help texts travel unescaped.
        let mut buf = &body[..];
        let families: Vec<MetricFamily> = std::iter::from_fn(|| {
            (!buf.is_empty()).then(|| MetricFamily::decode_length_delimited(&mut buf).unwrap())
        })
        .collect();
        assert_eq!(
            families[2].help.as_deref(),
            Some("Requests\nserved \\ counted.")
        );
        assert_eq!(
            families[2].r#type,
            Some(protobuf::metric_type(Kind::Counter))
        );
    }

    #[test]
    fn text_carries_the_same_samples_as_the_snapshot() {
        // Each sample line of the text, unescaped, against the snapshot's rows.
        let s = odd();
        let text = text_string(&s);
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        let rows = rows_from_snapshot(&s);
        assert_eq!(lines.len(), rows.len());
        for (line, (name, _, labels, _)) in lines.iter().zip(&rows) {
            assert!(line.starts_with(name.as_str()), "{line} vs {name}");
            for (k, v) in labels {
                let mut escaped = Vec::new();
                escape_label_value(v, &mut escaped);
                let pair = format!("{k}=\"{}\"", String::from_utf8(escaped).unwrap());
                assert!(line.contains(&pair), "{line} lacks {pair}");
            }
        }
    }

    #[test]
    fn remote_write_carries_the_same_samples_with_the_target_labels() {
        let s = odd();
        let target = vec![("job".to_owned(), "j".to_owned())];
        let request = crate::protocol::remote_write::write_request(&s, &target, 1);
        let mut expected: Vec<(String, Labels, String)> = rows_from_snapshot(&s)
            .into_iter()
            .map(|(name, _, labels, value)| {
                let mut labels: Vec<(String, String)> = labels
                    .into_iter()
                    .filter(|(_, v)| !v.is_empty())
                    .chain([("__name__".to_owned(), name.clone()), target[0].clone()])
                    .collect();
                labels.sort();
                (name, labels, value)
            })
            .collect();
        let mut got: Vec<(String, Labels, String)> = request
            .timeseries
            .iter()
            .map(|ts| {
                let labels: Vec<(String, String)> = ts
                    .labels
                    .iter()
                    .map(|l| (l.name.clone(), l.value.clone()))
                    .collect();
                let name = labels
                    .iter()
                    .find(|(k, _)| k == "__name__")
                    .unwrap()
                    .1
                    .clone();
                (name, labels, format!("{:?}", ts.samples[0].value))
            })
            .collect();
        expected.sort();
        got.sort();
        assert_eq!(got, expected);
    }
}
