//! The example ingester's work, shared by `examples/ingester.rs` (which pushes its metrics)
//! and `examples/catalog.rs` (which prints their catalog): its metric descriptions, and the
//! parsing of one file.

use std::path::Path;
use std::time::Instant;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, histogram, Unit};

/// Per-record parse time is in microseconds: buckets from 1 µs to 10 ms.
pub const RECORD_BUCKETS: [f64; 9] = [1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 1e-4, 5e-4, 1e-3, 1e-2];

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

pub fn ingest(path: &Path) -> std::io::Result<()> {
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

/// What each metric is: its help text and unit, for every encoder and for the catalog. The
/// error counter starts at 0, so that `rate()` and alerts see it before the first error.
pub fn describe() {
    counter!("ingester_file_errors_total").increment(0);
    describe_counter!(
        "ingester_bytes_total",
        Unit::Bytes,
        "Bytes read from the input files."
    );
    describe_counter!("ingester_records_total", "Records parsed.");
    describe_counter!("ingester_fields_total", "Fields in the records parsed.");
    describe_counter!("ingester_parse_errors_total", "Lines that did not parse.");
    describe_counter!("ingester_files_total", "Input files read to their end.");
    describe_counter!(
        "ingester_file_errors_total",
        "Input files that could not be read."
    );
    describe_gauge!(
        "ingester_input_files",
        "Input files named on the command line."
    );
    describe_histogram!(
        "ingester_record_duration_seconds",
        Unit::Seconds,
        "Time to parse one record."
    );
}
