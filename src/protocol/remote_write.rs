//! Prometheus remote write 1.0: the snapshot as a protobuf `WriteRequest`, in requests of at
//! most a given number of samples, each compressed with snappy's block format, and the
//! staleness markers of the series gone since the last push the receiver took.
//!
//! Source: the Prometheus Remote-Write 1.0 specification
//! (<https://prometheus.io/docs/specs/prw/remote_write_spec/>) and `prompb/remote.proto`,
//! `prompb/types.proto` of Prometheus. The messages below are those of the protocol, field
//! numbers included, derived with `prost` (no `protoc` needed to build).

use std::collections::HashMap;
use std::hash::{BuildHasher as _, RandomState};
use std::ops::Range;

use super::samples;
use super::text::target_labels;
use crate::snapshot::{Family, Kind, Snapshot, Value};

/// `prometheus.WriteRequest`.
#[cfg(test)]
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub(crate) timeseries: Vec<TimeSeries>,
    #[prost(message, repeated, tag = "3")]
    pub(crate) metadata: Vec<MetricMetadata>,
}

/// `prometheus.TimeSeries`: labels sorted by name, samples in time order.
#[cfg(test)]
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub(crate) labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub(crate) samples: Vec<Sample>,
    #[prost(message, repeated, tag = "4")]
    pub(crate) histograms: Vec<Histogram>,
}

/// `prometheus.Label`.
#[cfg(test)]
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub(crate) struct Label {
    #[prost(string, tag = "1")]
    pub(crate) name: String,
    #[prost(string, tag = "2")]
    pub(crate) value: String,
}

/// `prometheus.Sample`: the value, and the time in milliseconds since the Unix epoch.
#[cfg(test)]
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Sample {
    #[prost(double, tag = "1")]
    pub(crate) value: f64,
    #[prost(int64, tag = "2")]
    pub(crate) timestamp: i64,
}

/// `prometheus.MetricMetadata`.
#[cfg(test)]
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct MetricMetadata {
    /// `MetricType`: 0 unknown, 1 counter, 2 gauge, 3 histogram, 4 gauge histogram,
    /// 5 summary, 6 info, 7 stateset.
    #[prost(int32, tag = "1")]
    pub(crate) r#type: i32,
    #[prost(string, tag = "2")]
    pub(crate) metric_family_name: String,
    #[prost(string, tag = "4")]
    pub(crate) help: String,
    #[prost(string, tag = "5")]
    pub(crate) unit: String,
}

/// `prometheus.Histogram`, integer counts (the spans and deltas of the Prometheus native
/// histogram specification); a float histogram's fields and the reset hint are not sent.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Histogram {
    #[prost(uint64, tag = "1")]
    pub(crate) count_int: u64,
    #[prost(double, tag = "3")]
    pub(crate) sum: f64,
    #[prost(sint32, tag = "4")]
    pub(crate) schema: i32,
    #[prost(double, tag = "5")]
    pub(crate) zero_threshold: f64,
    #[prost(uint64, tag = "6")]
    pub(crate) zero_count_int: u64,
    #[prost(message, repeated, tag = "8")]
    pub(crate) negative_spans: Vec<BucketSpan>,
    #[prost(sint64, repeated, tag = "9")]
    pub(crate) negative_deltas: Vec<i64>,
    #[prost(message, repeated, tag = "11")]
    pub(crate) positive_spans: Vec<BucketSpan>,
    #[prost(sint64, repeated, tag = "12")]
    pub(crate) positive_deltas: Vec<i64>,
    #[prost(int64, tag = "15")]
    pub(crate) timestamp: i64,
}

/// `prometheus.BucketSpan`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct BucketSpan {
    #[prost(sint32, tag = "1")]
    pub(crate) offset: i32,
    #[prost(uint32, tag = "2")]
    pub(crate) length: u32,
}

impl Histogram {
    /// The native histogram of `native` (with `sum`) at `timestamp`.
    fn of(
        native: &crate::snapshot::Native<'_>,
        sum: f64,
        timestamp: i64,
        spans: &mut Vec<crate::native::Span>,
    ) -> Self {
        let value = native.value;
        let mut h = Histogram {
            count_int: value.count,
            sum,
            schema: value.schema,
            zero_threshold: value.zero_threshold,
            zero_count_int: value.zero_count,
            timestamp,
            ..Histogram::default()
        };
        for (buckets, out, deltas) in [
            (
                native.negative(),
                &mut h.negative_spans,
                &mut h.negative_deltas,
            ),
            (
                native.positive(),
                &mut h.positive_spans,
                &mut h.positive_deltas,
            ),
        ] {
            spans.clear();
            crate::native::spans_and_deltas(buckets, spans, deltas);
            out.extend(spans.iter().map(|s| BucketSpan {
                offset: s.offset,
                length: s.length,
            }));
        }
        h
    }

    /// Prometheus' staleness marker of a native histogram series: the sum is the stale NaN,
    /// nothing else counts (the specification, "Staleness markers").
    fn stale(timestamp: i64) -> Self {
        Histogram {
            sum: f64::from_bits(STALE_NAN),
            timestamp,
            ..Histogram::default()
        }
    }
}

fn metric_type(kind: Kind) -> i32 {
    match kind {
        Kind::Counter => 1,
        Kind::Gauge => 2,
        Kind::Histogram | Kind::NativeHistogram => 3,
    }
}

/// The protobuf encoding of the messages above, written without building them.
mod wire {
    pub(super) fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    pub(super) fn varint_len(v: u64) -> usize {
        prost::encoding::encoded_len_varint(v)
    }

    /// A length-delimited field `tag` holding `bytes`.
    pub(super) fn bytes(out: &mut Vec<u8>, tag: u32, bytes: &[u8]) {
        varint(out, u64::from(tag << 3 | 2));
        varint(out, bytes.len() as u64);
        out.extend_from_slice(bytes);
    }

    /// The length of a length-delimited field (tag below 16) of `len` bytes.
    pub(super) fn bytes_len(len: usize) -> usize {
        1 + varint_len(len as u64) + len
    }

    /// `prometheus.Label` as field 1 of `TimeSeries`.
    pub(super) fn label(out: &mut Vec<u8>, name: &str, value: &str) {
        let len = bytes_len(name.len()) + bytes_len(value.len());
        varint(out, 1 << 3 | 2);
        varint(out, len as u64);
        bytes(out, 1, name.as_bytes());
        bytes(out, 2, value.as_bytes());
    }

    /// The length of `prometheus.Sample { value, timestamp }`.
    fn sample_len(timestamp: i64) -> usize {
        1 + 8 + 1 + varint_len(timestamp as u64)
    }

    /// `prometheus.TimeSeries { labels, samples: [{value, timestamp}] }` as field 1 of
    /// `WriteRequest`; `labels` are the encoded label fields.
    pub(super) fn series(out: &mut Vec<u8>, labels: &[u8], value: f64, timestamp: i64) {
        let sample = sample_len(timestamp);
        varint(out, 1 << 3 | 2);
        varint(out, (labels.len() + bytes_len(sample)) as u64);
        out.extend_from_slice(labels);
        varint(out, 2 << 3 | 2);
        varint(out, sample as u64);
        out.push(1 << 3 | 1);
        out.extend_from_slice(&value.to_le_bytes());
        out.push(2 << 3);
        varint(out, timestamp as u64);
    }

    /// `prometheus.TimeSeries { labels, histograms: [histogram] }` as field 1 of
    /// `WriteRequest`; `histogram` is the encoded `prometheus.Histogram`.
    pub(super) fn histogram_series(out: &mut Vec<u8>, labels: &[u8], histogram: &[u8]) {
        varint(out, 1 << 3 | 2);
        varint(out, (labels.len() + bytes_len(histogram.len())) as u64);
        out.extend_from_slice(labels);
        bytes(out, 4, histogram);
    }
}

/// Encodes a push as requests of at most `max_samples` samples each, straight from the
/// snapshot: only the request under way is held uncompressed, and the compressed bodies of
/// all requests end up back to back in one buffer.
pub(crate) struct BatchEncoder<'a> {
    max_samples: usize,
    sent: &'a mut SentSeries,
    /// The request being built, uncompressed.
    raw: Vec<u8>,
    samples: usize,
    /// The metadata of the families this request holds series of.
    metadata: Vec<u8>,
    /// The family whose metadata is last in `metadata`.
    metadata_of: Option<usize>,
    /// One series's encoded labels.
    labels: Vec<u8>,
    /// One native histogram, encoded, and the spans of one side of it.
    histogram: Vec<u8>,
    spans: Vec<crate::native::Span>,
    /// The compressed requests, back to back.
    out: Vec<u8>,
    ranges: Vec<Range<usize>>,
    /// Whether requests are compressed (always, but in tests of the protobuf alone).
    snappy_on: bool,
    #[cfg(feature = "remote-write")]
    snappy: snap::raw::Encoder,
}

impl<'a> BatchEncoder<'a> {
    /// An encoder of requests of at most `max_samples` samples into `out` (cleared), keeping
    /// track of the series in `sent`.
    pub(crate) fn new(max_samples: usize, sent: &'a mut SentSeries, mut out: Vec<u8>) -> Self {
        sent.begin();
        out.clear();
        BatchEncoder {
            max_samples: max_samples.max(1),
            sent,
            raw: Vec::new(),
            samples: 0,
            metadata: Vec::new(),
            metadata_of: None,
            labels: Vec::new(),
            histogram: Vec::new(),
            spans: Vec::new(),
            out,
            ranges: Vec::new(),
            snappy_on: true,
            #[cfg(feature = "remote-write")]
            snappy: snap::raw::Encoder::new(),
        }
    }

    /// Adds every series of `snapshot`: one series per sample (a histogram's as its
    /// `_bucket{le}`, `_sum` and `_count` series), stamped `timestamp_ms`, with the `__name__`
    /// label and the labels of [`target_labels`] (the job and grouping labels win over a
    /// recorded label of the same name), sorted by name, each name once; then a staleness
    /// marker for each series of the last push the receiver took that is gone.
    pub(crate) fn add_snapshot(
        &mut self,
        snapshot: &Snapshot,
        target: &[(String, String)],
        timestamp_ms: i64,
    ) -> Result<(), String> {
        self.sent.pending.index.reserve(snapshot.len());
        let t = timestamp_ms;
        let mut le = String::new();
        for (index, family) in snapshot.families().iter().enumerate() {
            for series in snapshot.series(family) {
                let labels = target_labels(&series, target);
                let mut add = |suffix: &str, le: Option<&str>, value: f64| {
                    self.add(family, index, suffix, &labels, le, value, t)
                };
                // Its samples: a histogram's classic buckets, or for a receiver set to
                // classic the classic equivalent of a native one.
                if series.classic() {
                    samples::for_each(&series, &mut le, |s| add(s.suffix, s.le, s.value.as_f64()))?;
                }
                if let (Value::Histogram { sum, .. }, Some(native)) =
                    (series.value(), series.native())
                {
                    self.add_native(family, index, &labels, &native, sum, t)?;
                }
            }
        }
        // A staleness marker for each series gone since the last push the receiver took.
        let gone = self.sent.gone();
        for (labels, native) in gone {
            if native {
                self.histogram.clear();
                let _ = prost::Message::encode(&Histogram::stale(t), &mut self.histogram);
                wire::histogram_series(&mut self.raw, &labels, &self.histogram);
            } else {
                wire::series(&mut self.raw, &labels, f64::from_bits(STALE_NAN), t);
            }
            self.count_sample()?;
        }
        Ok(())
    }

    /// A native histogram series: one sample.
    fn add_native(
        &mut self,
        family: &Family,
        index: usize,
        labels: &[(&str, &str)],
        native: &crate::snapshot::Native<'_>,
        sum: f64,
        timestamp_ms: i64,
    ) -> Result<(), String> {
        let mut all: Vec<(&str, &str)> = Vec::with_capacity(labels.len() + 1);
        all.push(("__name__", family.name.as_str()));
        all.extend(labels.iter().copied());
        all.sort_by(|a, b| a.0.cmp(b.0));
        all.dedup_by(|a, b| a.0 == b.0);
        self.labels.clear();
        for (n, v) in &all {
            wire::label(&mut self.labels, n, v);
        }
        self.sent.live_native(&self.labels);
        if self.metadata_of != Some(index) {
            self.metadata_of = Some(index);
            metadata(&mut self.metadata, family);
        }
        let histogram = Histogram::of(native, sum, timestamp_ms, &mut self.spans);
        self.histogram.clear();
        let _ = prost::Message::encode(&histogram, &mut self.histogram);
        wire::histogram_series(&mut self.raw, &self.labels, &self.histogram);
        self.count_sample()
    }

    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        family: &Family,
        index: usize,
        suffix: &str,
        labels: &[(&str, &str)],
        le: Option<&str>,
        value: f64,
        timestamp_ms: i64,
    ) -> Result<(), String> {
        let full_name;
        let name = if suffix.is_empty() {
            family.name.as_str()
        } else {
            full_name = format!("{}{suffix}", family.name);
            &full_name
        };
        // `__name__` sorts before any label name that starts with a letter; a label name
        // starting with `_` may sort before it. `le` replaces a recorded label of that name.
        let mut all: Vec<(&str, &str)> = Vec::with_capacity(labels.len() + 2);
        all.push(("__name__", name));
        all.extend(labels.iter().filter(|(n, _)| le.is_none() || *n != "le"));
        if let Some(le) = le {
            all.push(("le", le));
        }
        all.sort_by(|a, b| a.0.cmp(b.0));
        all.dedup_by(|a, b| a.0 == b.0);
        self.labels.clear();
        for (n, v) in &all {
            wire::label(&mut self.labels, n, v);
        }
        self.sent.live(&self.labels);
        if self.metadata_of != Some(index) {
            self.metadata_of = Some(index);
            metadata(&mut self.metadata, family);
        }
        wire::series(&mut self.raw, &self.labels, value, timestamp_ms);
        self.count_sample()
    }

    fn count_sample(&mut self) -> Result<(), String> {
        self.samples += 1;
        if self.samples >= self.max_samples {
            self.finish_request()?;
        }
        Ok(())
    }

    /// Compresses the request under way onto the output.
    fn finish_request(&mut self) -> Result<(), String> {
        if self.samples == 0 {
            return Ok(());
        }
        self.raw.extend_from_slice(&self.metadata);
        let start = self.out.len();
        self.compress(start)?;
        self.ranges.push(start..self.out.len());
        self.raw.clear();
        self.metadata.clear();
        self.metadata_of = None;
        self.samples = 0;
        Ok(())
    }

    /// Compresses `raw` with snappy's block format (not the framed format, which receivers
    /// refuse) onto `out` from `start`.
    #[cfg(feature = "remote-write")]
    fn compress(&mut self, start: usize) -> Result<(), String> {
        if !self.snappy_on {
            self.out.extend_from_slice(&self.raw);
            return Ok(());
        }
        self.out
            .resize(start + snap::raw::max_compress_len(self.raw.len()), 0);
        let n = self
            .snappy
            .compress(&self.raw, &mut self.out[start..])
            .map_err(|err| format!("snappy compression failed: {err}"))?;
        self.out.truncate(start + n);
        Ok(())
    }

    /// Without the `remote-write` feature, remote-write targets are refused at install; this
    /// is never reached.
    #[cfg(not(feature = "remote-write"))]
    fn compress(&mut self, _: usize) -> Result<(), String> {
        if !self.snappy_on {
            self.out.extend_from_slice(&self.raw);
            return Ok(());
        }
        Err("remote write needs the crate's `remote-write` feature".into())
    }

    /// The compressed bodies back to back, and where each request's is.
    pub(crate) fn finish(mut self) -> Result<(Vec<u8>, Vec<Range<usize>>), String> {
        self.finish_request()?;
        Ok((self.out, self.ranges))
    }
}

/// `prometheus.MetricMetadata` of `family` as field 3 of `WriteRequest`: its type, name,
/// help and unit, as `describe_*` gave them.
fn metadata(out: &mut Vec<u8>, family: &Family) {
    let help = family.help.as_deref().unwrap_or("");
    let unit = family.unit.unwrap_or("");
    let kind = metric_type(family.kind) as u64;
    let optional = |s: &str| {
        if s.is_empty() {
            0
        } else {
            wire::bytes_len(s.len())
        }
    };
    let len = 1
        + wire::varint_len(kind)
        + wire::bytes_len(family.name.len())
        + optional(help)
        + optional(unit);
    wire::varint(out, 3 << 3 | 2);
    wire::varint(out, len as u64);
    out.push(1 << 3);
    wire::varint(out, kind);
    wire::bytes(out, 2, family.name.as_bytes());
    if !help.is_empty() {
        wire::bytes(out, 4, help.as_bytes());
    }
    if !unit.is_empty() {
        wire::bytes(out, 5, unit.as_bytes());
    }
}

/// Prometheus's staleness marker: a NaN with this bit pattern says "this series ended here",
/// so that PromQL stops returning its last value at once instead of 5 minutes later.
pub(crate) const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// Encoded label sets, back to back, found by their hash.
#[derive(Default)]
struct LabelSets {
    index: HashMap<u64, Range<usize>>,
    bytes: Vec<u8>,
    /// The hashes of the native histogram series (marked stale as histograms).
    native: std::collections::HashSet<u64>,
}

/// The series of the last push the receiver took, so that one that is gone from the next push
/// (e.g. `batch_job_outcome{outcome="running"}` once the job has ended) is marked stale. Only
/// their encoded labels are kept, back to back.
#[derive(Default)]
pub(crate) struct SentSeries {
    hasher: RandomState,
    /// As of the last push the receiver took.
    sent: LabelSets,
    /// The live series of the push under way.
    pending: LabelSets,
}

impl SentSeries {
    /// Starts a push: nothing pending.
    fn begin(&mut self) {
        self.pending.index.clear();
        self.pending.bytes.clear();
        self.pending.native.clear();
    }

    /// A live series of the push under way, by its encoded labels.
    fn live(&mut self, labels: &[u8]) {
        let hash = self.hasher.hash_one(labels);
        let start = self.pending.bytes.len();
        self.pending.bytes.extend_from_slice(labels);
        let range = start..self.pending.bytes.len();
        self.pending.index.insert(hash, range);
    }

    /// A live native histogram series of the push under way, by its encoded labels.
    fn live_native(&mut self, labels: &[u8]) {
        self.live(labels);
        self.pending.native.insert(self.hasher.hash_one(labels));
    }

    /// The encoded labels of each series the receiver took last time that the push under
    /// way does not hold, and whether it was a native histogram.
    fn gone(&self) -> Vec<(Vec<u8>, bool)> {
        self.sent
            .index
            .iter()
            .filter(|(hash, _)| !self.pending.index.contains_key(hash))
            .map(|(hash, range)| {
                (
                    self.sent.bytes[range.clone()].to_vec(),
                    self.sent.native.contains(hash),
                )
            })
            .collect()
    }

    /// The receiver took the push: its live series are what it has now.
    pub(crate) fn taken(&mut self) {
        std::mem::swap(&mut self.sent, &mut self.pending);
        self.begin();
    }
}

/// The requests of a push of `snapshot` at `timestamp_ms` in requests of at most
/// `max_samples` samples, decoded (uncompressed).
#[cfg(test)]
pub(crate) fn requests(
    snapshot: &Snapshot,
    target: &[(String, String)],
    timestamp_ms: i64,
    max_samples: usize,
    sent: &mut SentSeries,
) -> Vec<WriteRequest> {
    use prost::Message as _;
    let mut encoder = BatchEncoder::new(max_samples, sent, Vec::new());
    encoder.snappy_on = false;
    encoder
        .add_snapshot(snapshot, target, timestamp_ms)
        .unwrap();
    let (out, ranges) = encoder.finish().unwrap();
    ranges
        .into_iter()
        .map(|r| WriteRequest::decode(&out[r]).expect("a WriteRequest"))
        .collect()
}

/// The whole push of `snapshot` as one request, decoded.
#[cfg(test)]
pub(crate) fn write_request(
    snapshot: &Snapshot,
    target: &[(String, String)],
    timestamp_ms: i64,
) -> WriteRequest {
    let mut all = requests(
        snapshot,
        target,
        timestamp_ms,
        usize::MAX,
        &mut SentSeries::default(),
    );
    assert!(all.len() <= 1);
    all.pop().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_carry_name_target_labels_and_the_push_time() {
        let snapshot = crate::registry::snapshot_of(&[], &[1.0], || {
            metrics::describe_counter!("jobs_total", "Jobs\ndone.");
            metrics::counter!("jobs_total", "job" => "inner", "queue" => "a").increment(3);
            metrics::histogram!("lat").record(0.2);
            metrics::histogram!("lat").record(0.3);
        });
        let target = vec![
            ("job".to_owned(), "ingester".to_owned()),
            ("instance".to_owned(), "shard-1".to_owned()),
        ];
        let request = write_request(&snapshot, &target, 1_700_000_000_123);
        type Row = (Vec<(String, String)>, f64, i64);
        let series: Vec<Row> = request
            .timeseries
            .iter()
            .map(|s| {
                (
                    s.labels
                        .iter()
                        .map(|l| (l.name.clone(), l.value.clone()))
                        .collect(),
                    s.samples[0].value,
                    s.samples[0].timestamp,
                )
            })
            .collect();
        let l = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect()
        };
        let t = 1_700_000_000_123;
        assert_eq!(
            series,
            [
                (
                    l(&[
                        ("__name__", "jobs_total"),
                        ("instance", "shard-1"),
                        ("job", "ingester"),
                        ("queue", "a")
                    ]),
                    3.0,
                    t
                ),
                (
                    l(&[
                        ("__name__", "lat_bucket"),
                        ("instance", "shard-1"),
                        ("job", "ingester"),
                        ("le", "1")
                    ]),
                    2.0,
                    t
                ),
                (
                    l(&[
                        ("__name__", "lat_bucket"),
                        ("instance", "shard-1"),
                        ("job", "ingester"),
                        ("le", "+Inf")
                    ]),
                    2.0,
                    t
                ),
                (
                    l(&[
                        ("__name__", "lat_sum"),
                        ("instance", "shard-1"),
                        ("job", "ingester")
                    ]),
                    0.5,
                    t
                ),
                (
                    l(&[
                        ("__name__", "lat_count"),
                        ("instance", "shard-1"),
                        ("job", "ingester")
                    ]),
                    2.0,
                    t
                ),
            ]
        );
        assert_eq!(request.metadata[0].r#type, 1);
        assert_eq!(request.metadata[0].help, "Jobs\ndone.");
        assert_eq!(request.metadata[1].r#type, 3);
    }

    #[test]
    fn series_gone_since_the_last_taken_push_are_marked_stale() {
        let snapshot = |outcome: &'static str, b: f64| {
            crate::registry::snapshot_of(&[], &[1.0], || {
                metrics::gauge!("a", "o" => outcome).set(1.0);
                metrics::gauge!("b").set(b);
            })
        };
        let series = |requests: Vec<WriteRequest>| -> Vec<TimeSeries> {
            requests.into_iter().flat_map(|r| r.timeseries).collect()
        };
        let mut sent = SentSeries::default();
        let first = series(requests(&snapshot("running", 2.0), &[], 1, 10, &mut sent));
        assert_eq!(first.len(), 2);
        sent.taken();
        // `a{o="running"}` is gone: a marker for it; a failed push leaves it to mark again.
        for _ in 0..2 {
            let next = series(requests(&snapshot("success", 3.0), &[], 2, 10, &mut sent));
            assert_eq!(next.len(), 3);
            let marker = &next[2];
            assert_eq!(marker.labels[1].value, "running");
            assert_eq!(marker.samples[0].value.to_bits(), STALE_NAN);
            assert_eq!(marker.samples[0].timestamp, 2);
        }
        sent.taken();
        let last = series(requests(&snapshot("success", 3.0), &[], 3, 10, &mut sent));
        assert_eq!(last.len(), 2, "nothing gone any more");
    }

    #[test]
    fn a_push_is_split_into_requests_of_at_most_max_samples_each_with_its_metadata() {
        let snapshot = crate::registry::snapshot_of(&[], &[1.0], || {
            metrics::describe_counter!("c", metrics::Unit::Bytes, "Bytes read.");
            for i in 0..5 {
                metrics::counter!("c", "i" => i.to_string()).increment(i);
            }
            metrics::histogram!("h").record(0.5);
        });
        let whole = write_request(&snapshot, &[], 7);
        assert_eq!(whole.timeseries.len(), 9);
        for max in [1, 2, 3, 4, 8, 9, 100] {
            let parts = requests(&snapshot, &[], 7, max, &mut SentSeries::default());
            assert_eq!(parts.len(), 9_usize.div_ceil(max), "max {max}");
            assert!(parts.iter().all(|p| p.timeseries.len() <= max));
            let joined: Vec<TimeSeries> = parts.iter().flat_map(|p| p.timeseries.clone()).collect();
            assert_eq!(joined, whole.timeseries, "max {max}");
            // Each request says what the families of its series are, once each.
            for part in &parts {
                let mut names: Vec<&str> = part
                    .timeseries
                    .iter()
                    .map(|s| {
                        if s.labels[0].value.starts_with('h') {
                            "h"
                        } else {
                            "c"
                        }
                    })
                    .collect();
                names.dedup();
                let described: Vec<&str> = part
                    .metadata
                    .iter()
                    .map(|m| m.metric_family_name.as_str())
                    .collect();
                assert_eq!(described, names, "max {max}");
            }
        }
        let c = &whole.metadata[0];
        assert_eq!(
            (
                c.r#type,
                c.metric_family_name.as_str(),
                c.help.as_str(),
                c.unit.as_str()
            ),
            (1, "c", "Bytes read.", "bytes")
        );
        assert_eq!(whole.metadata[1].r#type, 3);
    }

    #[test]
    #[cfg(feature = "remote-write")]
    fn each_request_is_a_snappy_block_of_the_protobuf() {
        let snapshot = crate::registry::snapshot_of(&[], &[1.0], || {
            metrics::gauge!("g", "a" => "1").set(1.5);
            metrics::gauge!("g", "a" => "2").set(2.5);
            metrics::gauge!("g", "a" => "3").set(3.5);
        });
        let target = [("job".into(), "j".into())];
        let mut sent = SentSeries::default();
        let mut encoder = BatchEncoder::new(2, &mut sent, Vec::new());
        encoder.add_snapshot(&snapshot, &target, 5).unwrap();
        let (body, ranges) = encoder.finish().unwrap();
        let expected = requests(&snapshot, &target, 5, 2, &mut SentSeries::default());
        assert_eq!(ranges.len(), 2);
        for (range, expected) in ranges.into_iter().zip(expected) {
            use prost::Message as _;
            let raw = snap::raw::Decoder::new()
                .decompress_vec(&body[range])
                .unwrap();
            assert_eq!(WriteRequest::decode(raw.as_slice()).unwrap(), expected);
        }
    }
}
