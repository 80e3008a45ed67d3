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

use std::path::Path;
use std::time::Instant;

use metrics::{counter, gauge, histogram};
use metrics_exporter_pushgateway::{Matcher, PushGuard, PushgatewayBuilder};

/// Per-record parse time is in microseconds: buckets from 1 µs to 10 ms.
const RECORD_BUCKETS: [f64; 9] = [1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 1e-4, 5e-4, 1e-3, 1e-2];

#[derive(Clone, Copy)]
enum Format {
    Text,
    Csv,
    JsonLines,
}

impl Format {
    fn of(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some("csv") => Format::Csv,
            Some("jsonl" | "ndjson") => Format::JsonLines,
            _ => Format::Text,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Csv => "csv",
            Format::JsonLines => "jsonl",
        }
    }
}

/// Parses one line; `Err` is a parse error. `columns` is the CSV header's width.
fn parse(format: Format, line: &str, columns: &mut Option<usize>) -> Result<usize, String> {
    match format {
        Format::Text => Ok(line.split_whitespace().count()),
        Format::Csv => {
            let fields = line.split(',').count();
            match *columns {
                None => {
                    *columns = Some(fields);
                    Ok(fields)
                }
                Some(n) if n == fields => Ok(fields),
                Some(n) => Err(format!("{fields} fields, header has {n}")),
            }
        }
        Format::JsonLines => serde_json::from_str::<serde_json::Value>(line)
            .map(|v| v.as_object().map_or(1, |o| o.len()))
            .map_err(|e| e.to_string()),
    }
}

fn ingest(path: &Path) -> std::io::Result<()> {
    let text = std::fs::read_to_string(path)?;
    let format = Format::of(path);
    let kind = format.label();
    let mut columns = None;
    counter!("ingester_bytes_total", "format" => kind).increment(text.len() as u64);
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let started = Instant::now();
        let parsed = parse(format, line, &mut columns);
        histogram!("ingester_record_duration_seconds", "format" => kind)
            .record(started.elapsed().as_secs_f64());
        match parsed {
            Ok(fields) => {
                counter!("ingester_records_total", "format" => kind).increment(1);
                counter!("ingester_fields_total", "format" => kind).increment(fields as u64);
            }
            Err(e) => {
                counter!("ingester_parse_errors_total", "format" => kind).increment(1);
                eprintln!("{}:{}: {e}", path.display(), n + 1);
            }
        }
    }
    counter!("ingester_files_total", "format" => kind).increment(1);
    Ok(())
}

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
