//! The Pushgateway's protobuf body: length-delimited `io.prometheus.client.MetricFamily`
//! messages (`Content-Type: application/vnd.google.protobuf;
//! proto=io.prometheus.client.MetricFamily; encoding=delimited`), what client_golang pushes.
//!
//! Source: `io/prometheus/client/metrics.proto` of prometheus/client_model (proto2: every
//! scalar field is optional, so each is written even when it holds its default). The messages
//! are declared with `prost` derive, field numbers as in the protocol; no `protoc` is needed
//! to build.

use prost::encoding::{encode_varint, encoded_len_varint};
use prost::Message;

use crate::snapshot::{Kind, Snapshot, Value};

/// `Content-Type` of a protobuf body.
pub(crate) const PROTOBUF_FORMAT: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

/// `io.prometheus.client.LabelPair`.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct LabelPair {
    #[prost(string, optional, tag = "1")]
    pub(crate) name: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub(crate) value: Option<String>,
}

/// `io.prometheus.client.Gauge`.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct Gauge {
    #[prost(double, optional, tag = "1")]
    pub(crate) value: Option<f64>,
}

/// `io.prometheus.client.Counter`.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct Counter {
    #[prost(double, optional, tag = "1")]
    pub(crate) value: Option<f64>,
}

/// `io.prometheus.client.Bucket`.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct Bucket {
    #[prost(uint64, optional, tag = "1")]
    pub(crate) cumulative_count: Option<u64>,
    #[prost(double, optional, tag = "2")]
    pub(crate) upper_bound: Option<f64>,
}

/// `io.prometheus.client.Histogram`: classic buckets, and the fields of a native histogram
/// (the Prometheus native histogram specification, "Classic Prometheus formats").
#[derive(Clone, PartialEq, Message)]
pub(crate) struct Histogram {
    #[prost(uint64, optional, tag = "1")]
    pub(crate) sample_count: Option<u64>,
    #[prost(double, optional, tag = "2")]
    pub(crate) sample_sum: Option<f64>,
    #[prost(message, repeated, tag = "3")]
    pub(crate) bucket: Vec<Bucket>,
    #[prost(sint32, optional, tag = "5")]
    pub(crate) schema: Option<i32>,
    #[prost(double, optional, tag = "6")]
    pub(crate) zero_threshold: Option<f64>,
    #[prost(uint64, optional, tag = "7")]
    pub(crate) zero_count: Option<u64>,
    #[prost(message, repeated, tag = "9")]
    pub(crate) negative_span: Vec<BucketSpan>,
    #[prost(sint64, repeated, tag = "10")]
    pub(crate) negative_delta: Vec<i64>,
    #[prost(message, repeated, tag = "12")]
    pub(crate) positive_span: Vec<BucketSpan>,
    #[prost(sint64, repeated, tag = "13")]
    pub(crate) positive_delta: Vec<i64>,
}

/// `io.prometheus.client.BucketSpan`: `length` consecutive native buckets, `offset` after
/// the previous span (the first span's offset is its first index).
#[derive(Clone, PartialEq, Message)]
pub(crate) struct BucketSpan {
    #[prost(sint32, optional, tag = "1")]
    pub(crate) offset: Option<i32>,
    #[prost(uint32, optional, tag = "2")]
    pub(crate) length: Option<u32>,
}

/// `io.prometheus.client.Metric`.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct Metric {
    #[prost(message, repeated, tag = "1")]
    pub(crate) label: Vec<LabelPair>,
    #[prost(message, optional, tag = "2")]
    pub(crate) gauge: Option<Gauge>,
    #[prost(message, optional, tag = "3")]
    pub(crate) counter: Option<Counter>,
    #[prost(message, optional, tag = "7")]
    pub(crate) histogram: Option<Histogram>,
}

/// `io.prometheus.client.MetricType`: COUNTER 0, GAUGE 1, SUMMARY 2, UNTYPED 3, HISTOGRAM 4.
pub(crate) fn metric_type(kind: Kind) -> i32 {
    match kind {
        Kind::Counter => 0,
        Kind::Gauge => 1,
        Kind::Histogram | Kind::NativeHistogram => 4,
    }
}

/// `io.prometheus.client.MetricFamily`.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct MetricFamily {
    #[prost(string, optional, tag = "1")]
    pub(crate) name: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub(crate) help: Option<String>,
    #[prost(int32, optional, tag = "3")]
    pub(crate) r#type: Option<i32>,
    #[prost(message, repeated, tag = "4")]
    pub(crate) metric: Vec<Metric>,
}

/// The tag of `MetricFamily.metric`.
const METRIC_TAG: u32 = 4;

/// Appends `snapshot` as length-delimited `MetricFamily` messages. One `Metric` message is
/// reused for every series, and the metrics of a family are encoded into `scratch` before the
/// family's header is written: nothing is allocated per series once the buffers have grown.
pub(crate) fn encode(snapshot: &Snapshot, out: &mut Vec<u8>, scratch: &mut Vec<u8>) {
    let mut metric = Metric::default();
    // A native histogram's spans, reused for every series.
    let mut spans = Vec::new();
    for family in snapshot.families() {
        scratch.clear();
        for series in snapshot.series(family) {
            let count = series.labels().len();
            metric.label.resize_with(count, LabelPair::default);
            for (pair, (name, value)) in metric.label.iter_mut().zip(series.labels()) {
                set(&mut pair.name, name);
                set(&mut pair.value, value);
            }
            metric.gauge = None;
            metric.counter = None;
            match series.value() {
                // A counter's value is a double in the protocol.
                Value::Counter(v) => {
                    metric.counter = Some(Counter {
                        value: Some(v as f64),
                    })
                }
                Value::Gauge(v) => metric.gauge = Some(Gauge { value: Some(v) }),
                Value::Histogram { sum, .. } => {
                    let histogram = metric.histogram.get_or_insert_with(Histogram::default);
                    histogram.sample_sum = Some(sum);
                    histogram_buckets(histogram, &series, &mut spans);
                }
            }
            if !matches!(series.value(), Value::Histogram { .. }) {
                metric.histogram = None;
            }
            prost::encoding::message::encode(METRIC_TAG, &metric, scratch);
        }
        let header = MetricFamily {
            name: Some(family.name.clone()),
            help: family.help.clone(),
            r#type: Some(metric_type(family.kind)),
            metric: Vec::new(),
        };
        let len = header.encoded_len() + scratch.len();
        out.reserve(encoded_len_varint(len as u64) + len);
        encode_varint(len as u64, out);
        // Writing into a Vec cannot fail.
        let _ = header.encode(out);
        out.extend_from_slice(scratch);
    }
}

/// A histogram's count and buckets: its classic ones (or the classic equivalent of a native
/// one, for a target that takes no native histograms), and its native ones.
fn histogram_buckets(
    histogram: &mut Histogram,
    series: &crate::snapshot::Series<'_>,
    spans: &mut Vec<crate::native::Span>,
) {
    histogram.bucket.clear();
    let mut count = 0;
    if series.classic() {
        // The +Inf bucket too (client_golang leaves it to the count): the gateway then
        // holds, and its API shows, the same buckets as for a text body.
        for (bound, cumulative) in series.classic_buckets() {
            count = cumulative;
            histogram.bucket.push(Bucket {
                cumulative_count: Some(cumulative),
                upper_bound: Some(bound),
            });
        }
    }
    histogram.schema = None;
    histogram.zero_threshold = None;
    histogram.zero_count = None;
    for list in [&mut histogram.negative_delta, &mut histogram.positive_delta] {
        list.clear();
    }
    histogram.negative_span.clear();
    histogram.positive_span.clear();
    let Some(native) = series.native() else {
        histogram.sample_count = Some(count);
        return;
    };
    let value = native.value;
    histogram.sample_count = Some(value.count);
    histogram.schema = Some(value.schema);
    histogram.zero_threshold = Some(value.zero_threshold);
    histogram.zero_count = Some(value.zero_count);
    for (buckets, out_spans, deltas) in [
        (
            native.negative(),
            &mut histogram.negative_span,
            &mut histogram.negative_delta,
        ),
        (
            native.positive(),
            &mut histogram.positive_span,
            &mut histogram.positive_delta,
        ),
    ] {
        spans.clear();
        crate::native::spans_and_deltas(buckets, spans, deltas);
        out_spans.extend(spans.iter().map(|span| BucketSpan {
            offset: Some(span.offset),
            length: Some(span.length),
        }));
    }
    // A native histogram with no bucket gets a no-op span, or with a zero threshold of zero
    // it would read as a classic one (the specification); client_golang adds it only then,
    // but it is harmless always.
    if histogram.positive_span.is_empty() && histogram.negative_span.is_empty() {
        histogram.positive_span.push(BucketSpan {
            offset: Some(0),
            length: Some(0),
        });
    }
}

fn set(slot: &mut Option<String>, text: &str) {
    let s = slot.get_or_insert_with(String::new);
    s.clear();
    s.push_str(text);
}
