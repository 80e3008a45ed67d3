//! Prometheus remote write 1.0: the snapshot as a protobuf `WriteRequest`, compressed with
//! snappy's block format.
//!
//! Source: the Prometheus Remote-Write 1.0 specification
//! (<https://prometheus.io/docs/specs/prw/remote_write_spec/>) and `prompb/remote.proto`,
//! `prompb/types.proto` of Prometheus. The messages below are those of the protocol, field
//! numbers included, derived with `prost` (no `protoc` needed to build).

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher as _, RandomState};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};
use reqwest::Url;

use super::http::{self, Request};
use super::Sink;
use crate::encode::target_labels;
use crate::lifecycle::Outcome;
use crate::registry::Registry;
use crate::report::{PushError, PushReport};
use crate::snapshot::{Kind, Snapshot, Value};
use crate::target::TargetKind;

/// The protocol version this crate speaks, sent in `X-Prometheus-Remote-Write-Version`.
pub(crate) const VERSION: &str = "0.1.0";

/// `prometheus.WriteRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub(crate) timeseries: Vec<TimeSeries>,
    #[prost(message, repeated, tag = "3")]
    pub(crate) metadata: Vec<MetricMetadata>,
}

/// `prometheus.TimeSeries`: labels sorted by name, samples in time order.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub(crate) labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub(crate) samples: Vec<Sample>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub(crate) struct Label {
    #[prost(string, tag = "1")]
    pub(crate) name: String,
    #[prost(string, tag = "2")]
    pub(crate) value: String,
}

/// `prometheus.Sample`: the value, and the time in milliseconds since the Unix epoch.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Sample {
    #[prost(double, tag = "1")]
    pub(crate) value: f64,
    #[prost(int64, tag = "2")]
    pub(crate) timestamp: i64,
}

/// `prometheus.MetricMetadata`.
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

fn metric_type(kind: Kind) -> i32 {
    match kind {
        Kind::Counter => 1,
        Kind::Gauge => 2,
        Kind::Histogram => 3,
    }
}

/// Builds the write request for `snapshot`: one series per sample (a histogram's as its
/// `_bucket{le}`, `_sum` and `_count` series), stamped `timestamp_ms`, with the `__name__`
/// label and the labels of [`target_labels`] (the job and grouping labels win over a recorded
/// label of the same name), sorted by name, each name once.
pub(crate) fn write_request(
    snapshot: &Snapshot,
    target: &[(String, String)],
    timestamp_ms: i64,
) -> WriteRequest {
    let mut request = WriteRequest {
        timeseries: Vec::with_capacity(snapshot.len()),
        metadata: Vec::with_capacity(snapshot.families().len()),
    };
    let mut push = |name: String, labels: &[(&str, &str)], le: Option<&str>, value: f64| {
        let mut series_labels = Vec::with_capacity(labels.len() + 2);
        series_labels.push(Label {
            name: "__name__".into(),
            value: name,
        });
        series_labels.extend(labels.iter().map(|(name, value)| Label {
            name: (*name).to_owned(),
            value: (*value).to_owned(),
        }));
        if let Some(le) = le {
            series_labels.push(Label {
                name: "le".into(),
                value: le.to_owned(),
            });
        }
        // `__name__` sorts before any label name that starts with a letter; a label name
        // starting with `_` may sort before it.
        series_labels.sort_by(|a, b| a.name.cmp(&b.name));
        series_labels.dedup_by(|a, b| a.name == b.name);
        request.timeseries.push(TimeSeries {
            labels: series_labels,
            samples: vec![Sample {
                value,
                timestamp: timestamp_ms,
            }],
        });
    };
    for family in snapshot.families() {
        let name = &family.name;
        let bounds = family.bounds.as_deref().unwrap_or(&[]);
        for series in snapshot.series(family) {
            let labels = target_labels(&series, target);
            match series.value() {
                Value::Counter(v) => push(name.clone(), &labels, None, v as f64),
                Value::Gauge(v) => push(name.clone(), &labels, None, v),
                Value::Histogram { sum, .. } => {
                    let counts = series.bucket_counts();
                    for (bound, count) in bounds.iter().zip(counts) {
                        let le = bound.to_string();
                        push(format!("{name}_bucket"), &labels, Some(&le), *count as f64);
                    }
                    let count = counts.last().copied().unwrap_or(0) as f64;
                    push(format!("{name}_bucket"), &labels, Some("+Inf"), count);
                    push(format!("{name}_sum"), &labels, None, sum);
                    push(format!("{name}_count"), &labels, None, count);
                }
            }
        }
    }
    request.metadata = snapshot
        .families()
        .iter()
        .map(|family| MetricMetadata {
            r#type: metric_type(family.kind),
            metric_family_name: family.name.clone(),
            help: family.help.clone().unwrap_or_default(),
            unit: family.unit.unwrap_or_default().to_owned(),
        })
        .collect();
    request
}

/// Prometheus's staleness marker: a NaN with this bit pattern says "this series ended here",
/// so that PromQL stops returning its last value at once instead of 5 minutes later.
pub(crate) const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// The series of the last push the receiver took, so that one that is gone from the next push
/// (e.g. `batch_job_outcome{outcome="running"}` once the job has ended) is marked stale.
#[derive(Default)]
pub(crate) struct SentSeries {
    hasher: RandomState,
    /// Series labels by their hash, as of the last successful push.
    sent: HashMap<u64, Vec<Label>>,
    /// The hashes of the live series of the push under way.
    pending_hashes: Vec<u64>,
    /// Their labels, once the request is encoded.
    pending: HashMap<u64, Vec<Label>>,
}

impl SentSeries {
    /// Adds a staleness marker at `timestamp_ms` for each series the receiver took last time
    /// and that is missing from `request`.
    pub(crate) fn mark_gone(&mut self, request: &mut WriteRequest, timestamp_ms: i64) {
        self.pending_hashes = request
            .timeseries
            .iter()
            .map(|s| self.hasher.hash_one(&s.labels))
            .collect();
        let live: HashSet<u64> = self.pending_hashes.iter().copied().collect();
        for (hash, labels) in &self.sent {
            if !live.contains(hash) {
                request.timeseries.push(TimeSeries {
                    labels: labels.clone(),
                    samples: vec![Sample {
                        value: f64::from_bits(STALE_NAN),
                        timestamp: timestamp_ms,
                    }],
                });
            }
        }
    }

    /// Keeps the live series of the encoded `request` until its push succeeds.
    pub(crate) fn hold(&mut self, request: WriteRequest) {
        let hashes = std::mem::take(&mut self.pending_hashes);
        self.pending = hashes
            .into_iter()
            .zip(request.timeseries.into_iter().map(|s| s.labels))
            .collect();
    }

    /// The receiver took the push: its live series are what it has now.
    pub(crate) fn taken(&mut self) {
        self.sent = std::mem::take(&mut self.pending);
    }
}

/// The request body: the write request, protobuf-encoded, compressed with snappy's block
/// format (not the framed format, which receivers refuse).
#[cfg(feature = "remote-write")]
pub(crate) fn encode(request: &WriteRequest) -> Result<Vec<u8>, String> {
    use prost::Message as _;
    let raw = request.encode_to_vec();
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        .map_err(|e| format!("snappy compression failed: {e}"))
}

/// Without the `remote-write` feature, remote-write targets are refused at install; this is
/// never reached.
#[cfg(not(feature = "remote-write"))]
pub(crate) fn encode(_: &WriteRequest) -> Result<Vec<u8>, String> {
    Err("remote write needs the crate's `remote-write` feature".into())
}

/// The headers of every remote-write request, as the specification requires.
pub(crate) fn headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-protobuf"),
    );
    headers.insert(CONTENT_ENCODING, HeaderValue::from_static("snappy"));
    headers.insert(
        HeaderName::from_static("x-prometheus-remote-write-version"),
        HeaderValue::from_static(VERSION),
    );
    headers
}

/// A remote-write receiver: the job and grouping labels go on every series, and series gone
/// since the last push it took get a staleness marker.
pub(crate) struct RemoteWriteSink {
    url: Url,
    location: String,
    /// The job and grouping labels, added to every series.
    labels: Vec<(String, String)>,
    body_headers: HeaderMap,
    client: http::Client,
    sent_series: SentSeries,
}

impl RemoteWriteSink {
    /// A receiver at `url`; requests carry `headers` over `tls`.
    pub(crate) fn new(
        url: Url,
        labels: Vec<(String, String)>,
        headers: HeaderMap,
        tls: http::TlsConfig,
    ) -> Self {
        RemoteWriteSink {
            location: crate::log::shown(&url),
            client: http::Client::new(url.clone(), headers, tls),
            url,
            labels,
            body_headers: self::headers(),
            sent_series: SentSeries::default(),
        }
    }
}

impl Sink for RemoteWriteSink {
    fn kind(&self) -> TargetKind {
        TargetKind::RemoteWrite
    }

    fn location(&self) -> &str {
        &self.location
    }

    fn metrics_label(&self) -> String {
        self.location.clone()
    }

    fn start(&mut self, _: &Arc<Registry>, _: bool) {
        self.client.start(&self.location);
    }

    fn encode(
        &mut self,
        snapshot: &Snapshot,
        created_ms: u64,
        _buf: Vec<u8>,
        _scratch: &mut Vec<u8>,
    ) -> Result<Bytes, String> {
        let now = i64::try_from(created_ms).unwrap_or(i64::MAX);
        let mut request = write_request(snapshot, &self.labels, now);
        self.sent_series.mark_gone(&mut request, now);
        let body = encode(&request);
        self.sent_series.hold(request);
        body.map(Bytes::from)
    }

    async fn send(
        &mut self,
        _outcome: Outcome,
        body: &Bytes,
        deadline: Instant,
        budget: Duration,
        in_flight: &Cell<bool>,
    ) -> Result<PushReport, PushError> {
        let client = self.client.get(TargetKind::RemoteWrite, &self.location)?;
        let request = Request {
            target: TargetKind::RemoteWrite,
            url: &self.url,
            url_text: &self.location,
            method: reqwest::Method::POST,
            headers: &self.body_headers,
            body: body.clone(),
        };
        http::send(client, &request, deadline, budget, true, in_flight).await
    }

    fn settle(
        &mut self,
        _outcome: Outcome,
        _created_ms: u64,
        _body: Bytes,
        result: &Result<PushReport, PushError>,
    ) -> Option<Bytes> {
        if result.is_ok() {
            self.sent_series.taken();
        }
        // The body is snappy's buffer, not one to render into.
        None
    }

    /// A remote-write receiver has no such operation: success without a status.
    async fn delete(&mut self, _: Instant, _: Duration) -> Result<PushReport, PushError> {
        Ok(PushReport::sent(None, 0, 0, Duration::ZERO))
    }

    fn deletes_on_shutdown(&self) -> bool {
        false
    }
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
        let request = |outcome: &'static str, b: f64, t| {
            let snapshot = crate::registry::snapshot_of(&[], &[1.0], || {
                metrics::gauge!("a", "o" => outcome).set(1.0);
                metrics::gauge!("b").set(b);
            });
            write_request(&snapshot, &[], t)
        };
        let mut sent = SentSeries::default();
        let mut first = request("running", 2.0, 1);
        sent.mark_gone(&mut first, 1);
        assert_eq!(first.timeseries.len(), 2);
        sent.hold(first);
        sent.taken();
        // `a{o="running"}` is gone: a marker for it; a failed push leaves it to mark again.
        for _ in 0..2 {
            let mut next = request("success", 3.0, 2);
            sent.mark_gone(&mut next, 2);
            assert_eq!(next.timeseries.len(), 3);
            let marker = &next.timeseries[2];
            assert_eq!(marker.labels[1].value, "running");
            assert_eq!(marker.samples[0].value.to_bits(), STALE_NAN);
            assert_eq!(marker.samples[0].timestamp, 2);
            sent.hold(next);
        }
        sent.taken();
        let mut last = request("success", 3.0, 3);
        sent.mark_gone(&mut last, 3);
        assert_eq!(last.timeseries.len(), 2, "nothing gone any more");
    }

    #[test]
    #[cfg(feature = "remote-write")]
    fn body_is_a_snappy_block_of_the_protobuf() {
        use prost::Message as _;
        let snapshot = crate::registry::snapshot_of(&[], &[1.0], || metrics::gauge!("g").set(1.5));
        let request = write_request(&snapshot, &[("job".into(), "j".into())], 5);
        let body = encode(&request).unwrap();
        let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
        assert_eq!(WriteRequest::decode(raw.as_slice()).unwrap(), request);
    }
}
