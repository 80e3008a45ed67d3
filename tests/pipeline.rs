//! The path users run, end to end: the example ingester pushes to a real Pushgateway, a real
//! Prometheus scrapes the gateway (`honor_labels: true`), and PromQL returns the ingester's
//! values with its `job` and grouping labels.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::prometheus::Prometheus;
use common::Pushgateway;

/// Builds the example ingester and returns its binary.
fn ingester_bin() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "--example",
            "ingester",
            "--manifest-path",
        ])
        .arg(root.join("Cargo.toml"))
        .status()
        .expect("run cargo to build the example ingester");
    assert!(status.success(), "building the example ingester failed");
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    target.join("debug/examples/ingester")
}

#[test]
fn the_ingesters_values_reach_prometheus_through_the_pushgateway() {
    let bin = ingester_bin();
    let gw = Pushgateway::start();
    let prometheus = Prometheus::start(Some(&format!("127.0.0.1:{}", gw.port)));
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data");
    let started = Instant::now();
    let out = Command::new(&bin)
        .arg(data.join("venues.csv"))
        .arg(data.join("events.jsonl"))
        .env("PUSHGATEWAY_URL", &gw.url)
        .env("PUSHGATEWAY_GROUPING", "instance=host-1")
        .output()
        .expect("run the ingester");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("ingester ran in {:?}", started.elapsed());

    let sel = r#"job="ingester",instance="host-1""#;
    let found = prometheus.wait_for(
        &format!(r#"batch_job_outcome{{{sel},outcome="success"}}"#),
        Duration::from_secs(20),
    );
    println!(
        "in Prometheus {:?} after the ingester started",
        started.elapsed()
    );
    assert_eq!(found[0].1, 1.0);
    // The scrape job's own labels are not on the series: honor_labels keeps the pushed ones.
    assert_eq!(found[0].0.get("job").map(String::as_str), Some("ingester"));
    assert_eq!(
        found[0].0.get("instance").map(String::as_str),
        Some("host-1")
    );

    // Every value as the data files give it. venues.csv: a header of 4 columns and 5 rows,
    // 2 of which have 3 and 5 fields (4 records of 4 fields, 2 parse errors). events.jsonl:
    // 6 lines, 2 of which are not JSON (4 records of 3 fields each, 2 parse errors).
    let value = |q: &str| prometheus.value(q);
    let csv = format!(r#"{sel},format="csv""#);
    let jsonl = format!(r#"{sel},format="jsonl""#);
    assert_eq!(value(&format!("ingester_records_total{{{csv}}}")), 4.0);
    assert_eq!(value(&format!("ingester_fields_total{{{csv}}}")), 16.0);
    assert_eq!(value(&format!("ingester_parse_errors_total{{{csv}}}")), 2.0);
    assert_eq!(value(&format!("ingester_files_total{{{csv}}}")), 1.0);
    assert_eq!(
        value(&format!("ingester_bytes_total{{{csv}}}")),
        std::fs::metadata(data.join("venues.csv")).unwrap().len() as f64
    );
    assert_eq!(value(&format!("ingester_records_total{{{jsonl}}}")), 4.0);
    assert_eq!(value(&format!("ingester_fields_total{{{jsonl}}}")), 12.0);
    assert_eq!(
        value(&format!("ingester_parse_errors_total{{{jsonl}}}")),
        2.0
    );
    assert_eq!(
        value(&format!("ingester_record_duration_seconds_count{{{csv}}}")),
        6.0
    );
    assert_eq!(value(&format!("ingester_input_files{{{sel}}}")), 2.0);
    assert_eq!(value(&format!("batch_job_exit_code{{{sel}}}")), 0.0);
    // What the gateway holds is what Prometheus has.
    let group = gw
        .group(&[("job", "ingester"), ("instance", "host-1")])
        .expect("the group");
    assert_eq!(
        value(&format!("ingester_fields_total{{{jsonl}}}")),
        group.value("ingester_fields_total", &[("format", "jsonl")])
    );
    // Time since the last success, as an alert would compute it.
    let age = value(&format!(
        "time() - batch_job_last_success_time_seconds{{{sel}}}"
    ));
    assert!((0.0..60.0).contains(&age), "{age}");
}
