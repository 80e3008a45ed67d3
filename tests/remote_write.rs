//! The remote-write target against a real Prometheus (`--web.enable-remote-write-receiver`,
//! storage in a temp dir) read back through PromQL, against a real VictoriaMetrics read back
//! exactly through `/api/v1/export` (values and timestamps), and against wiremock for what a
//! real receiver will not do on demand (5xx sequences, 408, 429).

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::prometheus::Prometheus;
use common::victoria::{VictoriaMetrics, VmAgent};
use common::{
    job_bin_for, replay_remote_write, run_job, run_replay, stderr, with_env, without_warm_up, Build,
};
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

/// Runs a test job pushing by remote write to `url` only, with `env` added; returns its
/// output and the Unix time in milliseconds before it started and after it ended.
fn push_to_url(
    url: &str,
    scenario: &str,
    job: &str,
    grouping: &[&str],
    env: &[(&str, &str)],
) -> (std::process::Output, i64, i64) {
    let mut all = vec![("PUSHGATEWAY_REMOTE_WRITE_URL", url)];
    all.extend_from_slice(env);
    let before = now_ms();
    let (out, _) = run_job(false, scenario, job, grouping, &all);
    let after = now_ms();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    (out, before, after)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
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
    #[prost(message, repeated, tag = "3")]
    metadata: Vec<MetricMetadata>,
}

/// `prometheus.MetricMetadata`.
#[derive(Clone, PartialEq, prost::Message)]
struct MetricMetadata {
    #[prost(int32, tag = "1")]
    r#type: i32,
    #[prost(string, tag = "2")]
    metric_family_name: String,
    #[prost(string, tag = "4")]
    help: String,
    #[prost(string, tag = "5")]
    unit: String,
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
    flush_against_with(statuses, &[])
}

/// [`flush_against`] with `env` added.
fn flush_against_with(
    statuses: &[u16],
    env: &[(&str, &str)],
) -> (String, Vec<wiremock::Request>, String) {
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
    let mut all = vec![
        ("PUSHGATEWAY_REMOTE_WRITE_URL", url.as_str()),
        ("PUSHGATEWAY_INTERVAL", "off"),
        ("PUSHGATEWAY_PUSH_TIMEOUT", "3s"),
        ("PUSHGATEWAY_SHUTDOWN_TIMEOUT", "1s"),
    ];
    all.extend_from_slice(env);
    let (out, _) = run_job(false, "flush", "mocked", &[], &all);
    let requests = without_warm_up(
        runtime
            .block_on(server.received_requests())
            .unwrap_or_default(),
    );
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
        // A 413 names the bound of the requests and the setting that lowers it.
        let hint = if status == 413 {
            " (each request carries at most 2000 samples: lower that with \
             remote_write_max_samples or PUSHGATEWAY_REMOTE_WRITE_MAX_SAMPLES)"
        } else {
            ""
        };
        // ... and says how big the body was.
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
                "err status=Some({status}) remote write {url} answered {status} after 1 attempt(s): {size}answer {status}{hint}"
            ),
        );
        // The flush and the final push: one request each.
        assert_eq!(requests.len(), 2, "{status}");
    }
}

#[test]
fn every_value_lands_in_victoria_metrics_exactly_with_the_push_time() {
    let vm = VictoriaMetrics::start();
    let (out, before, after) = push_to_url(
        &vm.write_url(),
        "main",
        "rw-vm",
        &["instance", "shard-1"],
        &[("PUSHGATEWAY_INTERVAL", "off")],
    );
    assert!(!stderr(&out).contains("failed"), "{}", stderr(&out));
    vm.flush();
    let sel = r#"job="rw-vm",instance="shard-1""#;
    let one = |metric: &str, extra: &str| vm.one(&format!("{metric}{{{sel}{extra}}}"));
    let records = one("records_total", "");
    assert_eq!(
        records
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect::<Vec<_>>(),
        [
            ("__name__", "records_total"),
            ("instance", "shard-1"),
            ("job", "rw-vm")
        ]
    );
    // One push (the final one), one sample, stamped with the time of the push.
    assert_eq!(records.values, [500.0]);
    let stamp = records.timestamps[0];
    assert!(
        (before..=after).contains(&stamp),
        "{before} <= {stamp} <= {after}"
    );
    let exact = |metric: &str, extra: &str, value: f64| {
        let series = one(metric, extra);
        assert_eq!(series.values, [value], "{metric}{extra}");
        assert_eq!(series.timestamps, [stamp], "{metric}{extra}: same push");
    };
    exact("parse_errors_total", r#",kind="json""#, 7.0);
    exact("queue_depth", "", 42.5);
    exact("record_seconds_count", "", 3.0);
    exact("record_seconds_sum", "", 4.203);
    for (le, count) in [
        ("0.005", 1.0),
        ("0.1", 1.0),
        ("0.25", 2.0),
        ("2.5", 2.0),
        ("5", 3.0),
        ("+Inf", 3.0),
    ] {
        exact("record_seconds_bucket", &format!(r#",le="{le}""#), count);
    }
    exact("batch_job_outcome", r#",outcome="success""#, 1.0);
    exact("batch_job_exit_code", "", 0.0);
    exact(
        "pushgateway_exporter_pushes_total",
        &format!(r#",target="{}",result="failure""#, vm.write_url()),
        0.0,
    );
}

#[test]
fn interval_pushes_reach_victoria_metrics_each_a_sample_of_its_own() {
    let vm = VictoriaMetrics::start();
    push_to_url(
        &vm.write_url(),
        "run",
        "rw-vm-run",
        &[],
        &[("PUSHGATEWAY_INTERVAL", "50ms"), ("TEST_RUN_MS", "400")],
    );
    vm.flush();
    let records = vm.one(r#"records_total{job="rw-vm-run"}"#);
    assert!(records.values.len() >= 3, "{records:?}");
    assert!(records.values.iter().all(|v| *v == 500.0), "{records:?}");
    assert!(
        records.timestamps.windows(2).all(|w| w[0] < w[1]),
        "each push a time of its own: {records:?}"
    );
    let running = vm.one(r#"batch_job_outcome{job="rw-vm-run",outcome="running"}"#);
    let success = vm.one(r#"batch_job_outcome{job="rw-vm-run",outcome="success"}"#);
    assert_eq!(success.values, [1.0]);
    assert_eq!(success.timestamps, [*records.timestamps.last().unwrap()]);
    // Every push but the final one said running; the final one ended that series with a
    // staleness marker (a NaN) at its own time.
    let (marker, live) = running.values.split_last().unwrap();
    assert!(marker.is_nan(), "{running:?}");
    assert!(live.iter().all(|v| *v == 1.0), "{running:?}");
    assert_eq!(running.values.len(), records.values.len());
    assert_eq!(running.timestamps, records.timestamps);
}

/// A decoded series: its labels (name first), value and timestamp.
type Decoded = (Vec<(String, String)>, f64, i64);

/// The series of a request body, decoded.
fn decoded_series(body: &[u8]) -> Vec<Decoded> {
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .expect("a snappy block");
    WriteRequest::decode(raw.as_slice())
        .expect("a WriteRequest")
        .timeseries
        .into_iter()
        .map(|s| {
            (
                s.labels.into_iter().map(|l| (l.name, l.value)).collect(),
                s.samples[0].value,
                s.samples[0].timestamp,
            )
        })
        .collect()
}

#[test]
fn a_push_goes_in_requests_of_at_most_the_max_samples_and_a_failed_one_is_retried_alone() {
    // The first request answered is refused with 503 once, every other one taken.
    let (stdout, requests, _) = flush_against_with(
        &[503, 204],
        &[("PUSHGATEWAY_REMOTE_WRITE_MAX_SAMPLES", "3")],
    );
    // The flush's requests, then the final push's: each push has a time of its own.
    let all: Vec<Vec<Decoded>> = requests.iter().map(|r| decoded_series(&r.body)).collect();
    let flush_time = all[0][0].2;
    let bodies: Vec<Vec<Decoded>> = all
        .into_iter()
        .filter(|b| b.iter().all(|s| s.2 == flush_time))
        .collect();
    assert!(bodies.iter().all(|b| !b.is_empty() && b.len() <= 3));
    let mut distinct = bodies.clone();
    distinct.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    distinct.dedup();
    // One request sent twice (the one refused), each other once.
    assert_eq!(distinct.len() + 1, bodies.len(), "{bodies:#?}");
    assert_eq!(
        stdout.lines().next().unwrap_or(""),
        format!("ok status=Some(204) attempts={}", bodies.len())
    );
    let series: Vec<_> = distinct.into_iter().flatten().collect();
    let value = |name: &str| {
        series
            .iter()
            .find(|(l, _, _)| l[0] == ("__name__".into(), name.into()))
            .map(|(_, v, _)| *v)
    };
    assert_eq!(value("records_total"), Some(500.0));
    assert_eq!(value("queue_depth"), Some(42.5));
    assert_eq!(value("record_seconds_count"), Some(3.0));
    assert!(series.len() > 10, "{series:?}");
}

#[test]
fn values_split_over_many_requests_land_in_victoria_metrics_exactly() {
    let vm = VictoriaMetrics::start();
    let (out, before, after) = push_to_url(
        &vm.write_url(),
        "main",
        "rw-vm-batches",
        &[],
        &[
            ("PUSHGATEWAY_INTERVAL", "off"),
            ("PUSHGATEWAY_REMOTE_WRITE_MAX_SAMPLES", "2"),
        ],
    );
    assert!(!stderr(&out).contains("failed"), "{}", stderr(&out));
    vm.flush();
    let all = vm.export(r#"{job="rw-vm-batches"}"#);
    assert!(all.len() > 10, "{all:#?}");
    let stamp = all[0].timestamps[0];
    assert!((before..=after).contains(&stamp));
    assert!(all.iter().all(|s| s.timestamps == [stamp]), "{all:#?}");
    let value = |name: &str, le: &str| {
        all.iter()
            .find(|s| s.label("__name__") == name && s.label("le") == le)
            .unwrap_or_else(|| panic!("{name} {le}: {all:#?}"))
            .values
            .clone()
    };
    assert_eq!(value("records_total", ""), [500.0]);
    assert_eq!(value("parse_errors_total", ""), [7.0]);
    assert_eq!(value("queue_depth", ""), [42.5]);
    assert_eq!(value("record_seconds_bucket", "0.25"), [2.0]);
    assert_eq!(value("record_seconds_bucket", "+Inf"), [3.0]);
    assert_eq!(value("record_seconds_sum", ""), [4.203]);
    assert_eq!(value("batch_job_outcome", ""), [1.0]);
}

#[test]
fn a_request_too_big_for_victoria_metrics_is_not_retried_and_names_the_setting() {
    let vm = VictoriaMetrics::start_with(&["-maxInsertRequestSize=1000"]);
    let url = vm.write_url();
    let (out, _) = run_job(
        false,
        "flush",
        "rw-vm-big",
        &[],
        &[
            ("PUSHGATEWAY_REMOTE_WRITE_URL", &url),
            ("PUSHGATEWAY_INTERVAL", "off"),
            ("PUSHGATEWAY_PUSH_TIMEOUT", "3s"),
            ("PUSHGATEWAY_SHUTDOWN_TIMEOUT", "1s"),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().next().unwrap_or("");
    // VictoriaMetrics's own words, on one line, then the setting that fixes it.
    assert!(
        line.starts_with(&format!(
            "err status=Some(400) remote write {url} answered 400 after 1 attempt(s): "
        )),
        "{line}"
    );
    assert!(
        line.contains("mustn't exceed `-maxInsertRequestSize=1000` bytes"),
        "{line}"
    );
    assert!(
        line.ends_with(
            "(each request carries at most 2000 samples: lower that with \
             remote_write_max_samples or PUSHGATEWAY_REMOTE_WRITE_MAX_SAMPLES)"
        ),
        "{line}"
    );
    // With small enough requests, the same job's values all arrive.
    let (out, _, _) = push_to_url(
        &url,
        "main",
        "rw-vm-small",
        &[],
        &[
            ("PUSHGATEWAY_INTERVAL", "off"),
            ("PUSHGATEWAY_REMOTE_WRITE_MAX_SAMPLES", "2"),
        ],
    );
    assert!(!stderr(&out).contains("failed"), "{}", stderr(&out));
    vm.flush();
    assert_eq!(
        vm.one(r#"records_total{job="rw-vm-small"}"#).values,
        [500.0]
    );
}

#[test]
fn a_million_series_job_arrives_whole_in_victoria_metrics() {
    const SERIES: usize = 1_000_000;
    let vm = VictoriaMetrics::start();
    let url = vm.write_url();
    // The dev build the other tests use: VictoriaMetrics registering the new series takes
    // most of the time either way.
    let mut cmd = std::process::Command::new(job_bin_for(Build::Unwind));
    cmd.args(["series-1000", "rw-million"]);
    let series = SERIES.to_string();
    with_env(
        &mut cmd,
        &[
            ("PUSHGATEWAY_REMOTE_WRITE_URL", &url),
            ("PUSHGATEWAY_INTERVAL", "off"),
            ("PUSHGATEWAY_SHUTDOWN_TIMEOUT", "120s"),
            ("TEST_SERIES", &series),
        ],
    );
    let started = std::time::Instant::now();
    let out = cmd.output().expect("run the test job");
    println!(
        "the job with {SERIES} series ran in {:?}",
        started.elapsed()
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("failed"), "{}", stderr(&out));
    vm.flush();
    // Every series, each with its value, read back.
    let mut seen = vec![false; SERIES];
    let mut count = 0;
    vm.export_each(r#"bench_series_total{job="rw-million"}"#, |s| {
        assert_eq!(s.values, [1.0], "{s:?}");
        let i: usize = s.label("series").parse().expect("a series number");
        assert!(!std::mem::replace(&mut seen[i], true), "{i} twice");
        count += 1;
    });
    assert_eq!(count, SERIES);
}

#[test]
fn through_a_local_vmagent_every_value_arrives_once_victoria_metrics_is_back() {
    // The topology for a store that may be down: the job writes to a vmagent on its host,
    // which keeps what it cannot forward in its disk buffer.
    let mut vm = VictoriaMetrics::start();
    let agent = VmAgent::start(&vm.write_url());
    vm.stop();
    let started = std::time::Instant::now();
    let (out, before, after) = push_to_url(
        &agent.write_url(),
        "main",
        "rw-relay",
        &["instance", "host-1"],
        &[("PUSHGATEWAY_INTERVAL", "off")],
    );
    assert!(!stderr(&out).contains("failed"), "{}", stderr(&out));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the job does not wait for the store: {:?}",
        started.elapsed()
    );
    // The store stays down a while; the values wait in vmagent, which retries.
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        common::client().get(&vm.url).send().is_err(),
        "the store is down"
    );
    vm.restart();
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let all = loop {
        vm.flush();
        let all = vm.export(r#"{job="rw-relay"}"#);
        if all
            .iter()
            .any(|s| s.label("__name__") == "batch_job_exit_code")
            || std::time::Instant::now() > deadline
        {
            break all;
        }
    };
    let one = |name: &str, le: &str| {
        let found: Vec<_> = all
            .iter()
            .filter(|s| s.label("__name__") == name && s.label("le") == le)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "{name}{{le={le}}} in {all:#?}\nvmagent's log:\n{}",
            agent.log()
        );
        found[0].clone()
    };
    let records = one("records_total", "");
    assert_eq!(records.values, [500.0]);
    assert_eq!(records.label("instance"), "host-1");
    let stamp = records.timestamps[0];
    assert!(
        (before..=after).contains(&stamp),
        "{before} <= {stamp} <= {after}"
    );
    for (name, le, value) in [
        ("parse_errors_total", "", 7.0),
        ("queue_depth", "", 42.5),
        ("record_seconds_bucket", "0.005", 1.0),
        ("record_seconds_bucket", "0.25", 2.0),
        ("record_seconds_bucket", "+Inf", 3.0),
        ("record_seconds_sum", "", 4.203),
        ("record_seconds_count", "", 3.0),
        ("batch_job_outcome", "", 1.0),
        ("batch_job_exit_code", "", 0.0),
    ] {
        let series = one(name, le);
        assert_eq!(series.values, [value], "{name} {le}");
        assert_eq!(
            series.timestamps,
            [stamp],
            "{name} {le}: the time of the push"
        );
    }
}

/// A job whose remote-write receiver (VictoriaMetrics, not started yet on its port) is down at
/// exit: it ends within its shutdown timeout and spools the requests that did not arrive.
/// Returns the store (stopped), the spool directory, and the Unix time in milliseconds
/// around the job.
fn spooled_while_the_store_is_down(job: &str) -> (VictoriaMetrics, tempfile::TempDir, i64, i64) {
    let vm = VictoriaMetrics::stopped_on(common::free_port());
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let spool = spool.to_str().unwrap();
    let url = vm.write_url();
    let before = now_ms();
    let (out, elapsed) = run_job(
        false,
        "main",
        job,
        &["instance", "i-1"],
        &[
            ("PUSHGATEWAY_REMOTE_WRITE_URL", &url),
            ("PUSHGATEWAY_INTERVAL", "off"),
            ("PUSHGATEWAY_SHUTDOWN_TIMEOUT", "1s"),
            ("PUSHGATEWAY_SPOOL_DIR", spool),
            // Several requests, all kept in one file.
            ("PUSHGATEWAY_REMOTE_WRITE_MAX_SAMPLES", "4"),
        ],
    );
    let after = now_ms();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(elapsed < Duration::from_secs(3), "exited after {elapsed:?}");
    assert!(
        stderr(&out).contains("remote-write request(s) that did not arrive are kept in the spool"),
        "{}",
        stderr(&out)
    );
    let files: Vec<_> = std::fs::read_dir(dir.path().join("spool"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".snapshot"))
        .collect();
    assert_eq!(files.len(), 1, "one file for the push");
    (vm, dir, before, after)
}

/// Asserts that every value of the `main` job `job` is in `vm` with a timestamp of the push
/// it was made by, between `before` and `after`.
fn assert_spooled_values_arrived(vm: &VictoriaMetrics, job: &str, before: i64, after: i64) {
    vm.flush();
    let all = vm.export(&format!(r#"{{job="{job}",instance="i-1"}}"#));
    let one = |name: &str, le: &str| {
        let found: Vec<_> = all
            .iter()
            .filter(|s| s.label("__name__") == name && s.label("le") == le)
            .collect();
        assert_eq!(found.len(), 1, "{name} {le}: {all:#?}");
        found[0].clone()
    };
    let records = one("records_total", "");
    assert_eq!(records.values, [500.0]);
    let stamp = records.timestamps[0];
    assert!(
        (before..=after).contains(&stamp),
        "the original time: {before} <= {stamp} <= {after}"
    );
    for (name, le, value) in [
        ("parse_errors_total", "", 7.0),
        ("queue_depth", "", 42.5),
        ("record_seconds_bucket", "0.1", 1.0),
        ("record_seconds_bucket", "5", 3.0),
        ("record_seconds_bucket", "+Inf", 3.0),
        ("record_seconds_sum", "", 4.203),
        ("record_seconds_count", "", 3.0),
        ("batch_job_outcome", "", 1.0),
        ("batch_job_exit_code", "", 0.0),
    ] {
        let series = one(name, le);
        assert_eq!(series.values, [value], "{name} {le}");
        assert_eq!(series.timestamps, [stamp], "{name} {le}");
    }
}

#[test]
fn remote_write_spooled_while_the_store_is_down_is_sent_by_replay_with_its_timestamps() {
    let (mut vm, dir, before, after) = spooled_while_the_store_is_down("rw-spool-replay");
    vm.restart();
    let spool = dir.path().join("spool");
    let url = vm.write_url();
    assert_eq!(
        replay_remote_write(&url, spool.to_str().unwrap()),
        "1 sent, 0 kept, 0 rejected, 0 corrupt"
    );
    assert_spooled_values_arrived(&vm, "rw-spool-replay", before, after);
    assert_eq!(
        std::fs::read_dir(&spool)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".snapshot"))
            .count(),
        0
    );
}

#[test]
fn remote_write_spooled_while_the_store_is_down_is_sent_by_the_next_job() {
    let (mut vm, dir, before, after) = spooled_while_the_store_is_down("rw-spool-next");
    vm.restart();
    let spool = dir.path().join("spool");
    // Another job using the same spool directory and receiver sends it along with its own.
    let (out, _, _) = push_to_url(
        &vm.write_url(),
        "main",
        "rw-spool-other",
        &["instance", "i-1"],
        &[
            ("PUSHGATEWAY_INTERVAL", "off"),
            ("PUSHGATEWAY_SPOOL_DIR", spool.to_str().unwrap()),
        ],
    );
    assert!(!stderr(&out).contains("failed"), "{}", stderr(&out));
    assert_spooled_values_arrived(&vm, "rw-spool-next", before, after);
    vm.flush();
    assert_eq!(
        vm.one(r#"records_total{job="rw-spool-other"}"#).values,
        [500.0]
    );
}

#[test]
fn what_describe_declares_goes_as_remote_write_metadata() {
    // Prometheus 2.42's receiver does not store remote-write metadata (`/api/v1/metadata`
    // lists scraped targets' only), so the requests are decoded as a receiver would.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(MockServer::start());
    runtime.block_on(
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(204))
            .mount(&server),
    );
    let url = format!("{}/api/v1/write", server.uri());
    let (out, _, _) = push_to_url(
        &url,
        "described",
        "rw-meta",
        &[],
        &[
            ("PUSHGATEWAY_INTERVAL", "off"),
            // The histogram's series in requests of their own: each says its family.
            ("PUSHGATEWAY_REMOTE_WRITE_MAX_SAMPLES", "3"),
        ],
    );
    assert!(!stderr(&out).contains("failed"), "{}", stderr(&out));
    let requests = without_warm_up(runtime.block_on(server.received_requests()).unwrap());
    assert!(requests.len() > 3, "{}", requests.len());
    let mut seen = std::collections::BTreeMap::new();
    for request in &requests {
        let raw = snap::raw::Decoder::new()
            .decompress_vec(&request.body)
            .unwrap();
        let write = WriteRequest::decode(raw.as_slice()).unwrap();
        // Each request says what the families of its series are.
        for series in &write.timeseries {
            let name = &series.labels[0].value;
            assert!(
                write.metadata.iter().any(|m| name == &m.metric_family_name
                    || name
                        .strip_prefix(m.metric_family_name.as_str())
                        .is_some_and(|rest| { ["_bucket", "_sum", "_count"].contains(&rest) })),
                "{name} without its metadata in {:?}",
                write.metadata
            );
        }
        for m in write.metadata {
            seen.insert(m.metric_family_name.clone(), (m.r#type, m.help, m.unit));
        }
    }
    let family = |name: &str| seen.get(name).cloned().unwrap_or_default();
    // Types: 1 counter, 2 gauge, 3 histogram.
    assert_eq!(
        family("records_total"),
        (1, "Records read.".to_owned(), "count".to_owned())
    );
    assert_eq!(
        family("queue_depth"),
        (2, "Bytes queued.".to_owned(), "bytes".to_owned())
    );
    assert_eq!(
        family("record_seconds"),
        (3, "Time per record.".to_owned(), "seconds".to_owned())
    );
    // Undescribed: the type alone.
    assert_eq!(
        family("parse_errors_total"),
        (1, String::new(), String::new())
    );
}

#[test]
fn old_samples_replayed_to_prometheus_are_refused_once_with_its_answer_and_set_aside() {
    // Prometheus's receiver refuses a sample older than the newest of its series (no
    // out-of-order window): spooled requests replayed after a newer push are answered 400,
    // shown with Prometheus's words, set aside, never retried.
    let port = common::free_port();
    let url = format!("http://127.0.0.1:{port}/api/v1/write");
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let spool = spool.to_str().unwrap();
    let (out, _) = run_job(
        false,
        "main",
        "rw-old",
        &["instance", "i-1"],
        &[
            ("PUSHGATEWAY_REMOTE_WRITE_URL", &url),
            ("PUSHGATEWAY_INTERVAL", "off"),
            ("PUSHGATEWAY_SHUTDOWN_TIMEOUT", "1s"),
            ("PUSHGATEWAY_SPOOL_DIR", spool),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let prometheus = Prometheus::start_on(None, port);
    // The same series, newer, from a run without the spool.
    push_to_url(
        &url,
        "main",
        "rw-old",
        &["instance", "i-1"],
        &[("PUSHGATEWAY_INTERVAL", "off")],
    );
    let (code, stdout, err) = run_replay(&[
        ("PUSHGATEWAY_REMOTE_WRITE_URL", &url),
        ("PUSHGATEWAY_SPOOL_DIR", spool),
    ]);
    assert_eq!(code, 0, "{stdout} {err}");
    assert_eq!(stdout, "0 sent, 0 kept, 1 rejected, 0 corrupt");
    let warning = err
        .lines()
        .find(|l| l.contains("spooled snapshot refused by its target"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        warning.contains(&format!(
            "remote write {url} answered 400 after 1 attempt(s): out of order sample"
        )),
        "{warning}"
    );
    let rejected = std::fs::read_dir(dir.path().join("spool"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".rejected"))
        .count();
    assert_eq!(rejected, 1);
    // The newer value stands.
    assert_eq!(
        prometheus.value(r#"records_total{job="rw-old",instance="i-1"}"#),
        500.0
    );
}

/// A receiver's `Retry-After` on a 429 is honoured: the retry comes no earlier, within the
/// push's budget; one past the budget is not waited for, and the error says so.
#[test]
fn retry_after_from_a_receiver_is_honoured_within_the_budget() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(MockServer::start());
    runtime.block_on(async {
        Mock::given(method("POST"))
            .and(path("/near"))
            .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/near"))
            .respond_with(ResponseTemplate::new(204))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/far"))
            .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "3600"))
            .mount(&server)
            .await;
    });
    let run = |target: &str| {
        let url = format!("{}/{target}", server.uri());
        let env = [
            ("PUSHGATEWAY_REMOTE_WRITE_URL", url.as_str()),
            ("PUSHGATEWAY_INTERVAL", "off"),
            ("PUSHGATEWAY_PUSH_TIMEOUT", "3s"),
            ("PUSHGATEWAY_SHUTDOWN_TIMEOUT", "1s"),
        ];
        let started = std::time::Instant::now();
        let (out, _) = run_job(false, "flush", target, &[], &env);
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            started.elapsed(),
        )
    };
    let (out, elapsed) = run("near");
    assert!(out.starts_with("ok status=Some(204) attempts=2"), "{out}");
    assert!(
        elapsed >= Duration::from_secs(1),
        "retried too early: {elapsed:?}"
    );
    let (out, _) = run("far");
    assert!(
        out.contains("answered 429 after 1 attempt(s)")
            && out
                .contains("it asked to retry after 3600s (Retry-After), past this push's deadline"),
        "{out}"
    );
}

/// How many files in `dir` have names ending with `suffix`.
fn files_ending(dir: &std::path::Path, suffix: &str) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(suffix))
                .count()
        })
        .unwrap_or(0)
}

/// Runs the release-built test job `scenario` (the big spools' tests: a dev build spends
/// most of their time encoding and copying) with `env`; returns its output.
fn run_release(scenario: &str, job: &str, env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = std::process::Command::new(job_bin_for(Build::Release));
    cmd.args([scenario, job]);
    with_env(&mut cmd, env);
    cmd.output().expect("run the test job")
}

/// A job of `series` counter series (`bench_series_total{series="<i>"}`, each 1) whose
/// receiver is down at exit, each sample a request of its own: every request is spooled in
/// `spool`. Returns the job's stderr.
fn spool_one_request_per_series(
    vm: &VictoriaMetrics,
    spool: &str,
    job: &str,
    series: usize,
) -> String {
    let url = vm.write_url();
    let n = series.to_string();
    let out = run_release(
        "series-1000",
        job,
        &[
            ("PUSHGATEWAY_REMOTE_WRITE_URL", &url),
            ("PUSHGATEWAY_INTERVAL", "off"),
            ("PUSHGATEWAY_SHUTDOWN_TIMEOUT", "2s"),
            ("PUSHGATEWAY_SPOOL_DIR", spool),
            ("PUSHGATEWAY_REMOTE_WRITE_MAX_SAMPLES", "1"),
            ("TEST_SERIES", &n),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    stderr(&out)
}

/// Asserts that `vm` holds each of the `series` series of [`spool_one_request_per_series`]
/// of `job`, each with the value 1.
fn assert_every_series_arrived(vm: &VictoriaMetrics, job: &str, series: usize) {
    vm.flush();
    let mut seen = vec![false; series];
    vm.export_each(&format!(r#"bench_series_total{{job="{job}"}}"#), |s| {
        assert!(s.values.iter().all(|v| *v == 1.0), "{s:?}");
        let i: usize = s.label("series").parse().expect("a series number");
        seen[i] = true;
    });
    let missing = seen.iter().filter(|s| !**s).count();
    assert_eq!(missing, 0, "{missing} of {series} series missing");
}

/// A push whose snapshot takes the whole shutdown timeout to prepare is never sent; its
/// requests are kept in the spool all the same (as a Pushgateway target keeps its body), and
/// replay delivers every series.
#[test]
fn a_remote_write_snapshot_prepared_past_the_deadline_is_spooled_not_lost() {
    const SERIES: usize = 40_000;
    let mut vm = VictoriaMetrics::stopped_on(common::free_port());
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().to_str().unwrap();
    let url = vm.write_url();
    let series = SERIES.to_string();
    // A release build, as the other big spools' tests: a dev build spends longer encoding
    // 40,000 series for remote write than the exit waits for the spool.
    let out = run_release(
        "series-1000",
        "rw-big",
        &[
            ("PUSHGATEWAY_REMOTE_WRITE_URL", &url),
            ("PUSHGATEWAY_SPOOL_DIR", spool),
            // Far less than preparing 40,000 series takes.
            ("PUSHGATEWAY_SHUTDOWN_TIMEOUT", "10ms"),
            ("PUSHGATEWAY_INTERVAL", "off"),
            ("TEST_SERIES", &series),
        ],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("before anything was sent"), "{err}");
    assert!(err.contains("kept in the spool"), "{err}");
    let files = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".snapshot"))
        .count();
    assert_eq!(files, 1, "{err}");

    vm.restart();
    assert_eq!(
        replay_remote_write(&url, spool),
        "1 sent, 0 kept, 0 rejected, 0 corrupt"
    );
    assert_every_series_arrived(&vm, "rw-big", SERIES);
}

#[test]
fn a_spool_of_more_requests_than_one_file_holds_is_written_as_files_the_replay_reads() {
    // 100,100 series and the lifecycle metrics, one request each: more than the 100,000
    // requests one spool file holds.
    const SERIES: usize = 100_100;
    let mut vm = VictoriaMetrics::stopped_on(common::free_port());
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let err = spool_one_request_per_series(&vm, spool.to_str().unwrap(), "rw-many", SERIES);
    let line = err
        .lines()
        .find(|l| l.contains("remote-write request(s) that did not arrive are kept"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains(".snapshot and "), "two files: {line}");
    assert_eq!(files_ending(&spool, ".snapshot"), 2, "{line}");
    vm.restart();
    let url = vm.write_url();
    let started = std::time::Instant::now();
    let out = run_release(
        "replay",
        "-",
        &[
            ("PUSHGATEWAY_REMOTE_WRITE_URL", &url),
            ("PUSHGATEWAY_SPOOL_DIR", spool.to_str().unwrap()),
            ("PUSHGATEWAY_PUSH_TIMEOUT", "120s"),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("replayed {SERIES} requests in {:?}", started.elapsed());
    assert_eq!(
        stdout.trim(),
        "2 sent, 0 kept, 0 rejected, 0 corrupt",
        "{}",
        stderr(&out)
    );
    assert_eq!(files_ending(&spool, ".corrupt"), 0);
    assert_eq!(files_ending(&spool, ".snapshot"), 0);
    assert_every_series_arrived(&vm, "rw-many", SERIES);
}

#[test]
fn the_next_run_of_the_same_job_sends_what_an_earlier_one_spooled() {
    // Run 1 spools more than run 2 can replay before its final push, which it makes at once;
    // after it, run 2 replays until its shutdown timeout runs out: what it did not send
    // stays, and a replay sends it (on an idle machine run 2 may have sent it all). The
    // shutdown timeout leaves the final push of 60,000 series room on a loaded machine (a
    // replay attempt in flight may hold it for up to half of it).
    const SERIES: usize = 60_000;
    let job = "rw-again";
    let mut vm = VictoriaMetrics::stopped_on(common::free_port());
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let spool = spool.to_str().unwrap();
    let before = now_ms();
    spool_one_request_per_series(&vm, spool, job, SERIES);
    let after = now_ms();
    vm.restart();
    let url = vm.write_url();
    let n = SERIES.to_string();
    let out = run_release(
        "series-1000",
        job,
        &[
            ("PUSHGATEWAY_REMOTE_WRITE_URL", &url),
            ("PUSHGATEWAY_INTERVAL", "off"),
            ("PUSHGATEWAY_SHUTDOWN_TIMEOUT", "8s"),
            ("PUSHGATEWAY_SPOOL_DIR", spool),
            ("TEST_SERIES", &n),
        ],
    );
    let after_2 = now_ms();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("failed"), "{}", stderr(&out));
    let out = run_release(
        "replay",
        "-",
        &[
            ("PUSHGATEWAY_REMOTE_WRITE_URL", &url),
            ("PUSHGATEWAY_SPOOL_DIR", spool),
            ("PUSHGATEWAY_PUSH_TIMEOUT", "60s"),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout} {}", stderr(&out));
    assert!(
        [
            "0 sent, 0 kept, 0 rejected, 0 corrupt",
            "1 sent, 0 kept, 0 rejected, 0 corrupt"
        ]
        .contains(&stdout.trim()),
        "{stdout}"
    );
    assert_eq!(files_ending(std::path::Path::new(spool), ".snapshot"), 0);
    assert_eq!(files_ending(std::path::Path::new(spool), ".rejected"), 0);
    // Every series holds run 1's sample, at its own time, and run 2's.
    vm.flush();
    let (mut series, mut both) = (0, 0);
    vm.export_each(&format!(r#"bench_series_total{{job="{job}"}}"#), |s| {
        series += 1;
        let mut t = s.timestamps.clone();
        t.dedup();
        if t.len() == 2 && (before..=after).contains(&t[0]) && (after..=after_2).contains(&t[1]) {
            both += 1;
        }
    });
    assert_eq!((series, both), (SERIES, SERIES));
}

#[test]
fn a_spooled_file_longer_than_one_replay_is_sent_over_several_each_going_on() {
    const SERIES: usize = 60_000;
    let mut vm = VictoriaMetrics::stopped_on(common::free_port());
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let spool = spool.to_str().unwrap();
    spool_one_request_per_series(&vm, spool, "rw-long", SERIES);
    vm.restart();
    let url = vm.write_url();
    let mut partial = Vec::new();
    let mut runs = 0;
    loop {
        runs += 1;
        assert!(runs <= 30, "not drained after 30 replays: {partial:?}");
        let out = run_release(
            "replay",
            "-",
            &[
                ("PUSHGATEWAY_REMOTE_WRITE_URL", &url),
                ("PUSHGATEWAY_SPOOL_DIR", spool),
                ("PUSHGATEWAY_PUSH_TIMEOUT", "1s"),
            ],
        );
        let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if out.status.code() == Some(0) {
            assert_eq!(stdout, "1 sent, 0 kept, 0 rejected, 0 corrupt");
            break;
        }
        assert_eq!(out.status.code(), Some(2), "{stdout} {}", stderr(&out));
        // How far it got, and not "before anything was sent".
        let sent: usize = stdout
            .strip_prefix("0 sent, 1 kept, 0 rejected, 0 corrupt; ")
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{stdout}"));
        assert!(
            stdout.contains(" remote-write request(s) of kept files sent, the next replay continues with the rest; stopped by: ")
                && stdout.contains("did not finish within 1.000s after ")
                && !stdout.contains("before anything was sent"),
            "{stdout}"
        );
        partial.push(sent);
    }
    println!("{SERIES} requests in {runs} replays of 1 s: {partial:?}");
    assert!(
        !partial.is_empty(),
        "one replay of 1 s was enough: make the file longer"
    );
    assert!(partial.iter().sum::<usize>() < SERIES);
    assert_every_series_arrived(&vm, "rw-long", SERIES);
}

#[test]
fn two_receivers_that_differ_only_in_a_query_token_have_own_metrics_of_their_own() {
    let vm = VictoriaMetrics::start();
    let base = vm.write_url();
    let urls = format!("{base}?token=a,{base}?token=b");
    push_to_url(
        &urls,
        "run",
        "rw-two",
        &[],
        &[("PUSHGATEWAY_INTERVAL", "50ms"), ("TEST_RUN_MS", "400")],
    );
    vm.flush();
    let series = vm.export(r#"pushgateway_exporter_pushes_total{job="rw-two",result="success"}"#);
    let targets: Vec<&str> = series.iter().map(|s| s.label("target")).collect();
    // Shown without the token, the second one with its position.
    assert_eq!(
        targets,
        [format!("{base}?token=***"), format!("{base}?token=*** #2")],
        "{series:#?}"
    );
    // Each counts its own pushes: never more than the pushes of one target.
    let pushes = vm.one(r#"records_total{job="rw-two"}"#).values.len();
    for s in &series {
        assert!(
            s.last() * 2.0 <= pushes as f64,
            "{} of {pushes}: {s:?}",
            s.last()
        );
    }
}

/// The 64-bit FNV-1a of `text`: what spool files recorded of a URL holding a secret before
/// endpoints were keyed.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[test]
fn a_spool_file_holds_nothing_to_check_guesses_of_a_query_token_against() {
    let mut vm = VictoriaMetrics::stopped_on(common::free_port());
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let spool_text = spool.to_str().unwrap();
    let url = format!("{}?token=s3cret", vm.write_url());
    let spooled = |job: &str| {
        let before = now_ms();
        let (out, _) = run_job(
            false,
            "main",
            job,
            &["instance", "i-1"],
            &[
                ("PUSHGATEWAY_REMOTE_WRITE_URL", &url),
                ("PUSHGATEWAY_INTERVAL", "off"),
                ("PUSHGATEWAY_SHUTDOWN_TIMEOUT", "1s"),
                ("PUSHGATEWAY_SPOOL_DIR", spool_text),
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        (before, now_ms())
    };
    let (before_new, after_new) = spooled("rw-keyed");
    let (before_old, after_old) = spooled("rw-unkeyed");
    let files: Vec<std::path::PathBuf> = std::fs::read_dir(&spool)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".snapshot"))
        .collect();
    assert_eq!(files.len(), 2);
    let fnv = format!("{:016x}", fnv1a(&url));
    let shown = format!("{}?token=***", vm.write_url());
    for file in &files {
        let data = std::fs::read(file).unwrap();
        let text = String::from_utf8_lossy(&data);
        let endpoint = text.lines().find(|l| l.starts_with("endpoint ")).unwrap();
        assert!(
            endpoint.starts_with(&format!("endpoint {shown} #k1:")),
            "{endpoint}"
        );
        assert!(
            !text.contains(&fnv) && !text.contains("s3cret"),
            "{endpoint}"
        );
        // A file as written before keyed endpoints, with the digest anyone can recompute,
        // is still read and sent.
        if text.contains("/job/rw-unkeyed/") {
            let old = text.replacen(endpoint, &format!("endpoint {shown} #{fnv}"), 1);
            let body_at = data.windows(2).position(|w| w == b"\n\n").unwrap() + 2;
            let head_at = old.find("\n\n").unwrap() + 2;
            let mut rewritten = old.as_bytes()[..head_at].to_vec();
            rewritten.extend_from_slice(&data[body_at..]);
            std::fs::write(file, rewritten).unwrap();
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let key = std::fs::metadata(spool.join(".endpoint.key")).unwrap();
        assert_eq!((key.len(), key.permissions().mode() & 0o777), (32, 0o600));
    }
    vm.restart();
    let replay = |url: &str| {
        run_replay(&[
            ("PUSHGATEWAY_REMOTE_WRITE_URL", url),
            ("PUSHGATEWAY_SPOOL_DIR", spool_text),
        ])
        .1
    };
    // Never to the receiver with another token: the files are not for it.
    let guess = format!("{}?token=guess", vm.write_url());
    assert_eq!(replay(&guess), "0 sent, 2 kept, 0 rejected, 0 corrupt");
    assert_eq!(replay(&url), "2 sent, 0 kept, 0 rejected, 0 corrupt");
    assert_spooled_values_arrived(&vm, "rw-keyed", before_new, after_new);
    assert_spooled_values_arrived(&vm, "rw-unkeyed", before_old, after_old);
}
