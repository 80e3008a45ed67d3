//! Drains a spool directory: sends every snapshot kept there by jobs whose gateway was down,
//! oldest first. For operators, e.g. from cron:
//!
//! ```text
//! PUSHGATEWAY_URL=http://pushgateway:9091 PUSHGATEWAY_SPOOL_DIR=/var/spool/metrics \
//!     cargo run --release --example replay
//! ```
//!
//! Exits 0 when the spool is drained, 2 when snapshots are left (the gateway is still down, or
//! another process is replaying the same directory), 1 on a configuration error.

use std::process::ExitCode;

fn main() -> ExitCode {
    match metrics_exporter_pushgateway::replay() {
        Ok(report) => {
            println!("{report}");
            if report.is_drained() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            }
        }
        Err(e) => {
            eprintln!("replay: {e}");
            ExitCode::FAILURE
        }
    }
}
