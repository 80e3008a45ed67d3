//! The metric catalog and the dashboard generated from it, against real processes: the example
//! ingester pushes to a real Pushgateway, a real Prometheus scrapes it, and every PromQL
//! expression of the dashboard that `examples/catalog.rs` generates returns data. The drift
//! check against the checked-in `examples/METRICS.md`, in Markdown and JSON.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::prometheus::Prometheus;
use common::Pushgateway;
use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Builds an example (with `features`) and returns its binary.
fn example_bin(name: &str, features: &[&str]) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "--example", name, "--manifest-path"])
        .arg(root().join("Cargo.toml"));
    if !features.is_empty() {
        cmd.arg("--features").arg(features.join(","));
    }
    let status = cmd.status().expect("run cargo to build the example");
    assert!(status.success(), "building the example {name} failed");
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from);
    target.join("debug/examples").join(name)
}

fn catalog(args: &[&str]) -> Output {
    let out = Command::new(example_bin("catalog", &["serde"]))
        .args(args)
        .output()
        .expect("run the catalog example");
    assert!(
        out.status.code().is_some(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Every `expr` of the dashboard's panels, with its panel's title.
fn expressions(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            out.push((
                panel["title"].as_str().unwrap().to_owned(),
                target["expr"].as_str().unwrap().to_owned(),
            ));
        }
    }
    out
}

#[test]
fn every_dashboard_expression_returns_data_after_the_ingester_ran() {
    let ingester = example_bin("ingester", &[]);
    let gw = Pushgateway::start();
    let prometheus = Prometheus::start(Some(&format!("127.0.0.1:{}", gw.port)));
    let data = root().join("examples/data");
    let run = |files: &[&str]| {
        let out = Command::new(&ingester)
            .args(files.iter().map(|f| data.join(f)))
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
    };
    let sel = r#"job="ingester",instance="host-1""#;
    // Two runs, the second reading the CSV file twice: the counters grow between scrapes, so
    // that rates and quantiles have something to show.
    run(&["venues.csv"]);
    prometheus.wait_for(
        &format!(r#"ingester_records_total{{{sel},format="csv"}} == 4"#),
        Duration::from_secs(20),
    );
    run(&["venues.csv", "venues.csv", "events.jsonl"]);
    prometheus.wait_for(
        &format!(r#"ingester_records_total{{{sel},format="csv"}} == 8"#),
        Duration::from_secs(20),
    );
    prometheus.wait_for(
        &format!(r#"ingester_records_total{{{sel},format="jsonl"}} == 4"#),
        Duration::from_secs(20),
    );

    let out = catalog(&["dashboard"]);
    assert!(out.status.success());
    let dashboard: Value = serde_json::from_str(&stdout(&out)).expect("the dashboard is JSON");
    let exprs = expressions(&dashboard);
    // Every metric of the catalog has its panel, and the two rows of the exporter's own.
    let catalog_md = stdout(&catalog(&["markdown"]));
    let metrics = metrics_of(&catalog_md);
    assert_eq!(metrics.len(), 8, "{catalog_md}");
    for name in &metrics {
        assert!(
            exprs.iter().any(|(_, e)| e.contains(name.as_str())),
            "no panel for {name}"
        );
    }
    let rows: Vec<&str> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] == "row")
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    assert_eq!(rows, ["ingester", "Batch job", "Exporter"]);

    for (title, expr) in &exprs {
        let promql = expr
            .replace("$job", "ingester")
            .replace("$instance", "host-1")
            .replace("$__rate_interval", "1m");
        let result = prometheus.query(&promql);
        assert!(!result.is_empty(), "{title}: {promql} returned nothing");
        let values: Vec<f64> = result.iter().map(|(_, v)| *v).collect();
        println!("{promql} = {values:?}");
        if title.starts_with("ingester_") {
            // The ingester's own panels show what its two runs did.
            if promql.contains("rate(") {
                assert!(
                    values.iter().any(|v| v.is_finite() && *v > 0.0)
                        || title.starts_with("ingester_file_errors_total")
                        || title.starts_with("ingester_parse_errors_total"),
                    "{title}: {promql} = {values:?}"
                );
            }
            assert!(
                values.iter().all(|v| v.is_finite()),
                "{promql} = {values:?}"
            );
        }
    }
    // The values behind some of them, exactly.
    let value = |q: &str| prometheus.value(q);
    assert_eq!(value(&format!("ingester_input_files{{{sel}}}")), 3.0);
    assert_eq!(value(&format!(r#"batch_job_outcome{{{sel}}} == 1"#)), 1.0);
    let p99 = value(&format!(
        "histogram_quantile(0.99, sum by (le) \
         (rate(ingester_record_duration_seconds_bucket{{{sel}}}[1m])))"
    ));
    assert!(p99 > 0.0 && p99 <= 1e-2, "{p99}");
    // What the catalog says of each metric is what the gateway holds: type and help.
    let group = gw
        .group(&[("job", "ingester"), ("instance", "host-1")])
        .expect("the group");
    let catalog_json: Value =
        serde_json::from_str(&stdout(&catalog(&["json"]))).expect("the catalog is JSON");
    for m in catalog_json["metrics"].as_array().unwrap() {
        let name = m["name"].as_str().unwrap();
        assert_eq!(
            group.metric_type(name).to_lowercase(),
            m["type"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(group.0[name]["help"], m["help"], "{name}");
    }
}

/// The metric names of a `METRICS.md`.
fn metrics_of(markdown: &str) -> Vec<String> {
    markdown
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`'))
        .map(|(name, _)| name.to_owned())
        .collect()
}

#[test]
fn the_checked_in_catalog_matches_and_drift_is_reported() {
    let checked_in = root().join("examples/METRICS.md");
    let out = catalog(&["check", checked_in.to_str().unwrap()]);
    assert_eq!(
        stdout(&out).trim(),
        "the metric catalog matches the checked-in one"
    );
    assert!(out.status.success());

    // A checked-in catalog that fell behind the code: a row gone, a help changed, a metric
    // the code no longer has.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(&checked_in).unwrap();
    let stale: String = text
        .lines()
        .filter(|l| !l.starts_with("| `ingester_fields_total`"))
        .map(|l| {
            l.replace("| Records parsed. |", "| Records read. |")
                .replace("| bytes | `format` |", "|  | `format` |")
        })
        .chain(["| `ingester_retries_total` | counter |  | `format` | 2 | Retries. |".into()])
        .collect::<Vec<_>>()
        .join("\n");
    let stale_path = dir.path().join("METRICS.md");
    std::fs::write(&stale_path, stale).unwrap();
    let out = catalog(&["check", stale_path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out).trim(),
        "the metric catalog differs from the checked-in one (1 added, 1 removed, 2 changed):\n  \
         added   ingester_fields_total (counter, labels [format])\n  \
         removed ingester_retries_total (counter, labels [format])\n  \
         changed ingester_bytes_total: unit none -> \"bytes\"\n  \
         changed ingester_records_total: help \"Records read.\" -> \"Records parsed.\""
    );

    // The same catalog as JSON checks the same way.
    let json_path = dir.path().join("metrics.json");
    std::fs::write(&json_path, stdout(&catalog(&["json"]))).unwrap();
    let out = catalog(&["check", json_path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stdout(&out));
}
