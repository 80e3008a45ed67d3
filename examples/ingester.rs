//! A short-lived ingester: reads the files named on its command line (plain text, CSV or JSON
//! lines), parses every line, and exits. Its metrics reach the Pushgateway on exit.
//!
//! ```text
//! PUSHGATEWAY_URL=http://127.0.0.1:9091 cargo run --example ingester -- data.csv events.jsonl
//! ```
//!
//! The targets are configuration, not code: `PUSHGATEWAY_URL=http://a:9091,http://b:9091`
//! pushes to two gateways, `PUSHGATEWAY_REMOTE_WRITE_URL=http://mimir:9009/api/v1/push` to a
//! remote-write store, `PUSHGATEWAY_TEXTFILE_DIR=/var/lib/prometheus/node-exporter` to
//! node_exporter's textfile collector; any mix of them at once.
//!
//! Exit status: 0 when every file was read, 1 when one could not be (the final push reports it
//! as `batch_job_outcome{outcome="error"}`), 2 without files to read. A bad metrics
//! configuration is reported on one line and the files are ingested all the same.

#[path = "support/ingest.rs"]
mod ingest;

use std::path::Path;

use metrics::{counter, gauge};
use metrics_exporter_pushgateway::{Matcher, PushGuard, PushgatewayBuilder};

use ingest::{ingest, RECORD_BUCKETS};

fn main() {
    // PUSHGATEWAY_URL and the other PUSHGATEWAY_* variables configure the push; the builder
    // adds buckets that fit per-record times.
    // A metrics problem must not stop the ingestion: report it, go on without pushing.
    let guard = PushgatewayBuilder::from_env()
        .and_then(|b| {
            b.job("ingester")
                .buckets_for_metric(
                    Matcher::Full("ingester_record_duration_seconds".into()),
                    &RECORD_BUCKETS,
                )
                .install()
        })
        .unwrap_or_else(|e| {
            eprintln!("ingester: metrics are not pushed: {e}");
            PushGuard::disabled()
        });
    // Help and units for every metric (`examples/METRICS.md` is their catalog).
    ingest::describe();

    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!("usage: ingester FILE...");
        metrics_exporter_pushgateway::exit(2);
    }
    gauge!("ingester_input_files").set(files.len() as f64);
    let mut failed = 0;
    for file in &files {
        if let Err(e) = ingest(Path::new(file)) {
            counter!("ingester_file_errors_total").increment(1);
            eprintln!("ingester: {file}: {e}");
            failed += 1;
        }
    }
    if failed > 0 {
        // Final push reporting exit code 1, then exit(1).
        metrics_exporter_pushgateway::exit(1);
    }
    // Final push of a successful run, with its result.
    match guard.shutdown() {
        Ok(report) => {
            eprintln!(
                "ingester: pushed {} bytes in {:?}",
                report.body_bytes(),
                report.elapsed()
            );
            // With several targets (PUSHGATEWAY_URL=a,b), the ones that did not take it.
            for target in report.failed_targets() {
                if let Err(e) = target.result() {
                    eprintln!("ingester: {e}");
                }
            }
        }
        Err(e) => eprintln!("ingester: final push failed: {e}"),
    }
}
