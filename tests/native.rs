//! Native histograms against real servers: a job pushes to a real Pushgateway (protobuf)
//! scraped by a real Prometheus 2.42 with `--enable-feature=native-histograms` and
//! `honor_labels: true`, and by remote write to the same Prometheus' receiver and to a
//! VictoriaMetrics (no native histograms) set to classic. What Prometheus answers through
//! PromQL is checked against the values the job recorded (`record_native` of the test jobs).

mod common;

use std::time::Duration;

use common::prometheus::Prometheus;
use common::victoria::VictoriaMetrics;
use common::{replay_remote_write, run_job, stderr, Pushgateway};

const NATIVE: &[&str] = &["--enable-feature=native-histograms"];
const WAIT: Duration = Duration::from_secs(20);

/// The observations of `latency_seconds`, as the test job records them.
fn latencies() -> Vec<f64> {
    (0..10_010u32)
        .map(|i| 10f64.powf(-3.0 + 4.0 * f64::from(i) / 10_009.0))
        .collect()
}

/// Their sum, added in the order recorded (as the exporter adds them).
fn latency_sum() -> f64 {
    latencies().iter().fold(0.0, |sum, v| sum + v)
}

/// The largest relative error of a quantile at schema 3: one bucket's growth, 2^(1/8) - 1.
fn schema_3_error() -> f64 {
    2f64.powf(0.125) - 1.0
}

/// Runs the `native` job with `env`; it must succeed.
fn run(job: &str, env: &[(&str, &str)]) {
    let mut all = vec![("PUSHGATEWAY_INTERVAL", "off")];
    all.extend_from_slice(env);
    let (out, _) = run_job(false, "native", job, &[], &all);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("failed"), "{}", stderr(&out));
}

/// Checks the native `latency_seconds` and `offset_seconds` of `job` as Prometheus answers:
/// one series each, no classic series, count and sum exact, quantiles within the resolution.
fn assert_native_in(prometheus: &Prometheus, job: &str) {
    let sel = format!(r#"job="{job}""#);
    prometheus.wait_for(&format!("histogram_count(latency_seconds{{{sel}}})"), WAIT);
    assert_eq!(
        prometheus.value(&format!("histogram_count(latency_seconds{{{sel}}})")),
        10_010.0
    );
    let sum = prometheus.value(&format!("histogram_sum(latency_seconds{{{sel}}})"));
    assert_eq!(sum, latency_sum());
    // One series per histogram: no `_bucket`, `_sum` or `_count`.
    let names = prometheus.query(&format!(
        r#"count by (__name__) ({{__name__=~"(latency|offset)_seconds.*",{sel}}})"#
    ));
    let mut names: Vec<(String, f64)> = names
        .into_iter()
        .map(|(labels, n)| (labels["__name__"].clone(), n))
        .collect();
    names.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        names,
        [
            ("latency_seconds".to_owned(), 1.0),
            ("offset_seconds".to_owned(), 1.0)
        ]
    );
    let mut sorted = latencies();
    sorted.sort_by(f64::total_cmp);
    for q in [0.5, 0.9, 0.99] {
        let truth = sorted[(q * sorted.len() as f64).ceil() as usize - 1];
        let answer = prometheus.value(&format!(
            "histogram_quantile({q}, latency_seconds{{{sel}}})"
        ));
        let error = (answer - truth).abs() / truth;
        assert!(
            error <= schema_3_error(),
            "quantile {q}: {answer} against {truth}, relative error {error}"
        );
        // The bound holds for any data; for these log-uniform values the interpolation inside
        // the right bucket is within 0.2 % (a value counted one bucket off is about 8 % off,
        // inside the bound above).
        assert!(
            error <= 0.01,
            "quantile {q}: {answer} against {truth}, relative error {error}"
        );
    }
    // Both signs, zero (the zero bucket) and one of each.
    assert_eq!(
        prometheus.value(&format!("histogram_count(offset_seconds{{{sel}}})")),
        5.0
    );
    assert_eq!(
        prometheus.value(&format!("histogram_sum(offset_seconds{{{sel}}})")),
        0.75
    );
    // Half of the observations are at or below 0: the median is in the zero bucket.
    let median = prometheus.value(&format!("histogram_quantile(0.5, offset_seconds{{{sel}}})"));
    assert!(median.abs() < 1e-30, "{median}");
}

#[test]
fn a_native_histogram_goes_through_the_gateway_to_prometheus_as_one_series() {
    let gw = Pushgateway::start();
    let target = format!("127.0.0.1:{}", gw.port);
    let prometheus = Prometheus::start_scraping(&[("pushgateway", &target, true)], NATIVE);
    run(
        "native-gw",
        &[
            ("PUSHGATEWAY_URL", &gw.url),
            ("PUSHGATEWAY_HISTOGRAMS", "native"),
        ],
    );
    assert_native_in(&prometheus, "native-gw");
    // Every histogram of the job is native.
    let sel = r#"job="native-gw""#;
    assert_eq!(
        prometheus.value(&format!("histogram_count(record_seconds{{{sel}}})")),
        3.0
    );
    assert!(prometheus
        .query(&format!("record_seconds_bucket{{{sel}}}"))
        .is_empty());
}

#[test]
fn both_sends_classic_and_native_buckets_in_one_family() {
    let gw = Pushgateway::start();
    let target = format!("127.0.0.1:{}", gw.port);
    let prometheus = Prometheus::start_scraping(&[("pushgateway", &target, true)], NATIVE);
    run(
        "both-gw",
        &[
            ("PUSHGATEWAY_URL", &gw.url),
            ("PUSHGATEWAY_HISTOGRAMS", "both"),
        ],
    );
    // Prometheus with native histograms takes the native part.
    let sel = r#"job="both-gw""#;
    prometheus.wait_for(&format!("histogram_count(latency_seconds{{{sel}}})"), WAIT);
    assert_eq!(
        prometheus.value(&format!("histogram_count(latency_seconds{{{sel}}})")),
        10_010.0
    );
    // Prometheus 2.42 keeps only the native part of a scraped histogram that has both (2.45
    // and later keep the classic one too with `scrape_classic_histograms: true`).
    assert!(prometheus
        .query(&format!("latency_seconds_bucket{{{sel}}}"))
        .is_empty());
    // The gateway holds the classic buckets beside it.
    let (count, sum, buckets) = gw.job("both-gw").histogram("latency_seconds");
    assert_eq!(count, 10_010.0);
    assert_eq!(sum, latency_sum());
    let at = |le: &str| buckets.iter().find(|(b, _)| b == le).map(|(_, n)| *n);
    let below_0_1 = latencies().iter().filter(|v| **v <= 0.1).count() as f64;
    assert_eq!(at("0.1"), Some(below_0_1), "{buckets:?}");
    assert_eq!(at("+Inf"), Some(10_010.0), "{buckets:?}");
}

#[test]
fn classic_stays_the_default() {
    let gw = Pushgateway::start();
    let target = format!("127.0.0.1:{}", gw.port);
    let prometheus = Prometheus::start_scraping(&[("pushgateway", &target, true)], NATIVE);
    run("classic-gw", &[("PUSHGATEWAY_URL", &gw.url)]);
    let sel = r#"job="classic-gw""#;
    prometheus.wait_for(&format!("latency_seconds_count{{{sel}}}"), WAIT);
    assert_eq!(
        prometheus.value(&format!("latency_seconds_count{{{sel}}}")),
        10_010.0
    );
    assert!(prometheus
        .query(&format!("histogram_count(latency_seconds{{{sel}}})"))
        .is_empty());
    assert_eq!(
        prometheus.value(&format!(r#"latency_seconds_bucket{{{sel},le="+Inf"}}"#)),
        10_010.0
    );
}

/// Remote write carries both forms of a `both` histogram, as series of their own: the native
/// histogram, and the classic `_bucket`, `_sum` and `_count` samples.
#[test]
fn remote_write_carries_both_forms_of_a_both_histogram() {
    let prometheus = Prometheus::start_scraping(&[], NATIVE);
    run(
        "both-rw",
        &[
            ("PUSHGATEWAY_REMOTE_WRITE_URL", &prometheus.write_url()),
            ("PUSHGATEWAY_HISTOGRAMS", "both"),
        ],
    );
    let sel = r#"job="both-rw""#;
    prometheus.wait_for(&format!("histogram_count(latency_seconds{{{sel}}})"), WAIT);
    assert_eq!(
        prometheus.value(&format!("histogram_count(latency_seconds{{{sel}}})")),
        10_010.0
    );
    assert_eq!(
        prometheus.value(&format!("histogram_sum(latency_seconds{{{sel}}})")),
        latency_sum()
    );
    assert_eq!(
        prometheus.value(&format!("latency_seconds_count{{{sel}}}")),
        10_010.0
    );
    assert_eq!(
        prometheus.value(&format!("latency_seconds_sum{{{sel}}}")),
        latency_sum()
    );
    let below_0_1 = latencies().iter().filter(|v| **v <= 0.1).count() as f64;
    assert_eq!(
        prometheus.value(&format!(r#"latency_seconds_bucket{{{sel},le="0.1"}}"#)),
        below_0_1
    );
    assert_eq!(
        prometheus.value(&format!(r#"latency_seconds_bucket{{{sel},le="+Inf"}}"#)),
        10_010.0
    );
}

#[test]
fn remote_write_carries_native_histograms_and_a_classic_target_gets_the_classic_equivalent() {
    let prometheus = Prometheus::start_scraping(&[], NATIVE);
    let vm = VictoriaMetrics::start();
    run(
        "native-rw",
        &[
            ("PUSHGATEWAY_REMOTE_WRITE_URL", &prometheus.write_url()),
            ("TEST_CLASSIC_REMOTE_WRITE_URL", &vm.write_url()),
            ("PUSHGATEWAY_HISTOGRAMS", "native"),
        ],
    );
    assert_native_in(&prometheus, "native-rw");
    // VictoriaMetrics gets the classic equivalent: count and sum exact, a cumulative count at
    // each native bucket's upper bound.
    vm.flush();
    let sel = r#"job="native-rw""#;
    let one = |metric: &str, extra: &str| vm.one(&format!("{metric}{{{sel}{extra}}}")).values;
    assert_eq!(one("latency_seconds_count", ""), [10_010.0]);
    // VictoriaMetrics keeps about 12 significant digits of a float.
    let sum = one("latency_seconds_sum", "")[0];
    assert!((sum - latency_sum()).abs() / latency_sum() < 1e-11, "{sum}");
    assert_eq!(one("latency_seconds_bucket", r#",le="+Inf""#), [10_010.0]);
    // 1 closes a bucket of every schema: the count at or below 1 is exact.
    let at_or_below_1 = latencies().iter().filter(|v| **v <= 1.0).count() as f64;
    assert_eq!(one("latency_seconds_bucket", r#",le="1""#), [at_or_below_1]);
    assert_eq!(one("offset_seconds_count", ""), [5.0]);
    assert_eq!(one("offset_seconds_sum", ""), [0.75]);
}

#[test]
fn the_listener_serves_native_histograms_in_protobuf_and_their_classic_equivalent_as_text() {
    use std::io::{BufRead as _, BufReader};
    use std::process::Stdio;

    let env = [
        ("PUSHGATEWAY_LISTEN", "127.0.0.1:0"),
        ("PUSHGATEWAY_HISTOGRAMS", "native"),
        ("TEST_NATIVE", "1"),
    ];
    let mut cmd = common::job_command(false, "serve", "native-listen", &env);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = cmd.spawn().expect("start the test job");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = || {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        line.trim().to_owned()
    };
    assert_eq!(line(), "ready");
    let addr = line()
        .strip_prefix("listening ")
        .expect("the listener's address")
        .to_owned();
    // A text scrape: the classic equivalent, never empty.
    let text = common::client()
        .get(format!("http://{addr}/metrics"))
        .header("Accept", "text/plain")
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        text.contains("latency_seconds_bucket{le=\"+Inf\"} 10010\n"),
        "{text}"
    );
    let at_or_below_1 = latencies().iter().filter(|v| **v <= 1.0).count();
    assert!(
        text.contains(&format!(
            "latency_seconds_bucket{{le=\"1\"}} {at_or_below_1}\n"
        )),
        "{text}"
    );
    assert!(text.contains("latency_seconds_count 10010\n"), "{text}");
    // Prometheus asks for protobuf and takes the native histogram.
    let prometheus = Prometheus::start_scraping(&[("listener", &addr, false)], NATIVE);
    let sel = r#"job="listener""#;
    prometheus.wait_for(&format!("histogram_count(latency_seconds{{{sel}}})"), WAIT);
    assert_eq!(
        prometheus.value(&format!("histogram_count(latency_seconds{{{sel}}})")),
        10_010.0
    );
    assert_eq!(
        prometheus.value(&format!("histogram_sum(latency_seconds{{{sel}}})")),
        latency_sum()
    );
    assert!(prometheus
        .query(&format!("latency_seconds_bucket{{{sel}}}"))
        .is_empty());
    drop(child.stdin.take());
    assert_eq!(line(), "dropped");
    assert!(child.wait().unwrap().success());
}

#[test]
fn native_histograms_spooled_while_the_receiver_is_down_arrive_unchanged_by_replay() {
    let port = common::free_port();
    let url = format!("http://127.0.0.1:{port}/api/v1/write");
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let spool = spool.to_str().unwrap();
    let (out, _) = run_job(
        false,
        "native",
        "native-spool",
        &[],
        &[
            ("PUSHGATEWAY_REMOTE_WRITE_URL", &url),
            ("PUSHGATEWAY_INTERVAL", "off"),
            ("PUSHGATEWAY_SHUTDOWN_TIMEOUT", "1s"),
            ("PUSHGATEWAY_SPOOL_DIR", spool),
            ("PUSHGATEWAY_HISTOGRAMS", "native"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("kept in the spool"),
        "{}",
        stderr(&out)
    );
    let prometheus = Prometheus::start_scraping_on(&[], NATIVE, port);
    assert_eq!(
        replay_remote_write(&url, spool),
        "1 sent, 0 kept, 0 rejected, 0 corrupt"
    );
    assert_native_in(&prometheus, "native-spool");
}

#[test]
fn a_text_pushgateway_gets_the_classic_equivalent_and_install_says_so() {
    let gw = Pushgateway::start();
    let (out, _) = run_job(
        false,
        "native",
        "native-text",
        &[],
        &[
            ("PUSHGATEWAY_URL", &gw.url),
            ("PUSHGATEWAY_INTERVAL", "off"),
            ("PUSHGATEWAY_FORMAT", "text"),
            ("PUSHGATEWAY_HISTOGRAMS", "native"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let said: Vec<_> = stderr(&out)
        .lines()
        .filter(|l| l.contains("as their classic equivalent"))
        .map(str::to_owned)
        .collect();
    assert_eq!(said.len(), 1, "{}", stderr(&out));
    let (count, sum, buckets) = gw.job("native-text").histogram("latency_seconds");
    assert_eq!(count, 10_010.0);
    assert_eq!(sum, latency_sum());
    let at_or_below_1 = latencies().iter().filter(|v| **v <= 1.0).count() as f64;
    let at = |le: &str| buckets.iter().find(|(b, _)| b == le).map(|(_, n)| *n);
    assert_eq!(at("1"), Some(at_or_below_1), "{buckets:?}");
    assert_eq!(at("+Inf"), Some(10_010.0), "{buckets:?}");
}
