//! A cron job on a host running node_exporter: its metrics are written to
//! `<dir>/backup.prom` for the textfile collector, atomically, with no network and no
//! Pushgateway. node_exporter serves the file on every scrape until the next run replaces it.
//!
//! ```text
//! TEXTFILE_DIR=/var/lib/prometheus/node-exporter cargo run --example textfile
//! ```
//!
//! (`/var/lib/prometheus/node-exporter` is where Debian's node_exporter looks; elsewhere, its
//! `--collector.textfile.directory`.) With [`init`](metrics_exporter_pushgateway::init), the
//! same needs no code: `PUSHGATEWAY_TEXTFILE_DIR=/var/lib/prometheus/node-exporter`.

use metrics::{counter, gauge};
use metrics_exporter_pushgateway::{PushgatewayBuilder, Target};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::var("TEXTFILE_DIR")
        .unwrap_or_else(|_| std::env::temp_dir().display().to_string());
    let guard = PushgatewayBuilder::with_targets([Target::textfile(&dir)])
        .job("backup")
        // A cron job has nothing to push between its start and its end.
        .interval(std::time::Duration::ZERO)
        .install()?;

    let mut bytes = 0u64;
    for table in ["accounts", "orders", "events"] {
        let size = 1_000_000 + table.len() as u64 * 4096;
        counter!("backup_bytes_total", "table" => table).increment(size);
        bytes += size;
    }
    gauge!("backup_size_bytes").set(bytes as f64);

    let report = guard.shutdown()?;
    for target in report.targets() {
        eprintln!(
            "wrote {} ({} bytes)",
            target.location(),
            report.body_bytes()
        );
    }
    Ok(())
}
