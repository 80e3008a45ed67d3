//! The remote-write target against a real Prometheus (`--web.enable-remote-write-receiver`,
//! storage in a temp dir) read back through PromQL, and against wiremock for what a real
//! receiver will not do on demand (5xx sequences, 408, 429).

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::prometheus::Prometheus;
use common::{run_job, stderr};
use prost::Message as _;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Runs a test job pushing by remote write to `prometheus` only, with `env` added.
fn push_to(
    prometheus: &Prometheus,
    scenario: &str,
    job: &str,
    grouping: &[&str],
    env: &[(&str, &str)],
) -> (std::process::Output, Duration) {
    let url = prometheus.write_url();
    let mut all = vec![("PUSHGATEWAY_REMOTE_WRITE_URL", url.as_str())];
    all.extend_from_slice(env);
    let (out, elapsed) = run_job(false, scenario, job, grouping, &all);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    (out, elapsed)
}

/// A series's labels as pairs, sorted by name.
fn label_pairs(series: &common::prometheus::Series) -> Vec<(&str, &str)> {
    series
        .0
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// Waits until a query returns something: Prometheus makes written samples queryable at
/// once, but a loaded machine may delay the answer.
const QUERY_WAIT: Duration = Duration::from_secs(10);

#[test]
fn every_value_lands_in_prometheus_with_job_and_grouping_labels() {
    let prometheus = Prometheus::start(None);
    let url = prometheus.write_url();
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let (out, elapsed) = push_to(
        &prometheus,
        "main",
        "rw-job",
        &["instance", "shard-1"],
        &[("PUSHGATEWAY_INTERVAL", "off")],
    );
    assert!(!stderr(&out).contains("failed"), "{}", stderr(&out));
    println!("exited in {elapsed:?}");

    let series = prometheus.wait_for(r#"records_total{job="rw-job"}"#, QUERY_WAIT);
    assert_eq!(
        label_pairs(&series[0]),
        [
            ("__name__", "records_total"),
            ("instance", "shard-1"),
            ("job", "rw-job")
        ]
    );
    assert_eq!(series[0].1, 500.0);
    let sel = r#"job="rw-job",instance="shard-1""#;
    let value = |metric: &str, extra: &str| prometheus.value(&format!("{metric}{{{sel}{extra}}}"));
    assert_eq!(value("parse_errors_total", r#",kind="json""#), 7.0);
    assert_eq!(value("queue_depth", ""), 42.5);
    assert_eq!(value("record_seconds_count", ""), 3.0);
    assert!((value("record_seconds_sum", "") - 4.203).abs() < 1e-9);
    for (le, count) in [
        ("0.005", 1.0),
        ("0.1", 1.0),
        ("0.25", 2.0),
        ("2.5", 2.0),
        ("5", 3.0),
        ("+Inf", 3.0),
    ] {
        assert_eq!(
            value("record_seconds_bucket", &format!(r#",le="{le}""#)),
            count,
            "le={le}"
        );
    }
    // The histogram works as one in PromQL.
    let median = prometheus.value(&format!(
        "histogram_quantile(0.5, record_seconds_bucket{{{sel}}})"
    ));
    assert!(median > 0.1 && median <= 0.25, "median {median}");
    assert_eq!(value("batch_job_outcome", r#",outcome="success""#), 1.0);
    assert_eq!(value("batch_job_exit_code", ""), 0.0);
    // Samples carry the time of the push.
    let stamped = prometheus.value(&format!("timestamp(records_total{{{sel}}})"));
    assert!(
        stamped >= before - 1.0 && stamped < before + 30.0,
        "stamped {stamped}, started {before}"
    );
    // The exporter's own metrics name the receiver.
    assert_eq!(
        prometheus.value(&format!(
            r#"pushgateway_exporter_pushes_total{{{sel},target="{url}",result="failure"}}"#
        )),
        0.0
    );
}

#[test]
fn interval_pushes_then_the_final_one_and_series_that_ended_are_marked_stale() {
    let prometheus = Prometheus::start(None);
    push_to(
        &prometheus,
        "run",
        "rw-run",
        &[],
        &[("PUSHGATEWAY_INTERVAL", "50ms"), ("TEST_RUN_MS", "400")],
    );
    prometheus.wait_for(r#"batch_job_exit_code{job="rw-run"}"#, QUERY_WAIT);
    // Several pushes landed, each a sample of its own.
    let pushes = prometheus.value(r#"count_over_time(records_total{job="rw-run"}[5m])"#);
    assert!(pushes >= 3.0, "{pushes} samples");
    assert_eq!(
        prometheus
            .value(r#"count_over_time(batch_job_outcome{job="rw-run",outcome="running"}[5m])"#),
        pushes - 1.0,
        "every push but the final one said running"
    );
    // The series that said "running" ended with the final push (a staleness marker), so only
    // the outcome of the run is there now, not 5 minutes of both.
    let outcome = prometheus.query(r#"batch_job_outcome{job="rw-run"}"#);
    assert_eq!(outcome.len(), 1, "{outcome:?}");
    assert_eq!(
        outcome[0].0.get("outcome").map(String::as_str),
        Some("success")
    );
    assert_eq!(outcome[0].1, 1.0);
    assert_eq!(prometheus.value(r#"records_total{job="rw-run"}"#), 500.0);
}

#[test]
fn labels_named_like_the_job_or_grouping_labels_are_replaced_not_repeated() {
    // Prometheus 2.42 answers 500 to a series with a repeated label name, which a sender
    // would retry until its deadline.
    let prometheus = Prometheus::start(None);
    let (out, elapsed) = push_to(
        &prometheus,
        "label-clash",
        "clash",
        &["instance", "outer"],
        &[
            ("PUSHGATEWAY_INTERVAL", "off"),
            ("PUSHGATEWAY_SHUTDOWN_TIMEOUT", "3s"),
        ],
    );
    assert!(!stderr(&out).contains("failed"), "{}", stderr(&out));
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    let series = prometheus.wait_for("clash_total", QUERY_WAIT);
    assert_eq!(series.len(), 1, "{series:?}");
    assert_eq!(
        label_pairs(&series[0]),
        [
            ("__name__", "clash_total"),
            ("instance", "outer"),
            ("job", "clash"),
            ("zone", "a")
        ]
    );
    assert_eq!(series[0].1, 2.0);
}

/// `prometheus.WriteRequest` as `prompb/remote.proto` defines it, decoded independently of
/// the crate's own definition.
#[derive(Clone, PartialEq, prost::Message)]
struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    timeseries: Vec<TimeSeries>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    samples: Vec<Sample>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Label {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Sample {
    #[prost(double, tag = "1")]
    value: f64,
    #[prost(int64, tag = "2")]
    timestamp: i64,
}

/// Runs the `flush` scenario against a receiver mocked to answer `statuses` in turn (the
/// last one from then on); returns its stdout, the requests received and the receiver's URL.
fn flush_against(statuses: &[u16]) -> (String, Vec<wiremock::Request>, String) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(MockServer::start());
    runtime.block_on(async {
        for (i, status) in statuses.iter().enumerate() {
            let mock = Mock::given(method("POST"))
                .and(path("/api/v1/push"))
                .respond_with(
                    ResponseTemplate::new(*status).set_body_string(format!("answer {status}")),
                );
            if i + 1 < statuses.len() {
                mock.up_to_n_times(1).mount(&server).await;
            } else {
                mock.mount(&server).await;
            }
        }
    });
    let url = format!("{}/api/v1/push", server.uri());
    let (out, _) = run_job(
        false,
        "flush",
        "mocked",
        &[],
        &[
            ("PUSHGATEWAY_REMOTE_WRITE_URL", &url),
            ("PUSHGATEWAY_INTERVAL", "off"),
            ("PUSHGATEWAY_PUSH_TIMEOUT", "3s"),
            ("PUSHGATEWAY_SHUTDOWN_TIMEOUT", "1s"),
        ],
    );
    let requests = runtime
        .block_on(server.received_requests())
        .unwrap_or_default();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        requests,
        url,
    )
}

#[test]
fn requests_follow_the_remote_write_spec_and_5xx_and_429_are_retried() {
    let (stdout, requests, _) = flush_against(&[503, 429, 500, 204]);
    assert!(
        stdout.starts_with("ok status=Some(204) attempts=4\n"),
        "{stdout}"
    );
    // The flush (4 attempts), then the final push (1).
    assert_eq!(requests.len(), 5);
    let request = &requests[3];
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    assert_eq!(header("content-type"), "application/x-protobuf");
    assert_eq!(header("content-encoding"), "snappy");
    assert_eq!(header("x-prometheus-remote-write-version"), "0.1.0");
    assert!(
        header("user-agent").starts_with("metrics-exporter-pushgateway/"),
        "{}",
        header("user-agent")
    );
    // A snappy block (not the framed format), then the protobuf.
    let raw = snap::raw::Decoder::new()
        .decompress_vec(&request.body)
        .expect("a snappy block");
    let write = WriteRequest::decode(raw.as_slice()).expect("a WriteRequest");
    let records = write
        .timeseries
        .iter()
        .find(|s| {
            s.labels
                .iter()
                .any(|l| l.name == "__name__" && l.value == "records_total")
        })
        .expect("records_total sent");
    assert_eq!(records.samples.len(), 1);
    assert_eq!(records.samples[0].value, 500.0);
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!((now_ms - records.samples[0].timestamp).abs() < 60_000);
    for series in &write.timeseries {
        let names: Vec<&str> = series.labels.iter().map(|l| l.name.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted, "labels sorted, each once");
        assert!(names.contains(&"job"));
    }
}

#[test]
fn other_4xx_answers_are_never_retried() {
    for status in [400, 401, 408, 413] {
        let (stdout, requests, url) = flush_against(&[status]);
        // A 413 says how big the body was.
        let size = match stdout.find("the body of ") {
            Some(at) if status == 413 => {
                let rest = &stdout[at..];
                format!("{}; ", &rest[..rest.find("limit").unwrap() + 5])
            }
            _ => String::new(),
        };
        assert_eq!(
            stdout.lines().next().unwrap_or(""),
            format!(
                "err status=Some({status}) remote write {url} answered {status} after 1 attempt(s): {size}answer {status}"
            ),
        );
        // The flush and the final push: one request each.
        assert_eq!(requests.len(), 2, "{status}");
    }
}
