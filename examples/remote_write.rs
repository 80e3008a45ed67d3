//! A batch job that pushes straight to a Prometheus-compatible store by remote write (Grafana
//! Mimir, Cortex, Thanos Receive, VictoriaMetrics, or Prometheus itself with
//! `--web.enable-remote-write-receiver`), with no Pushgateway in between.
//!
//! ```text
//! prometheus --web.enable-remote-write-receiver --web.listen-address=127.0.0.1:9090 &
//! REMOTE_WRITE_URL=http://127.0.0.1:9090/api/v1/write cargo run --example remote_write
//! ```
//!
//! Then in Prometheus: `reconcile_accounts_total{job="reconcile"}`. A store behind auth takes
//! the same settings as a gateway, e.g. Mimir's tenant header and basic auth:
//! `.header("X-Scope-OrgID", "team-a").basic_auth(user, password)`. The same switch needs no
//! code at all with [`init`](metrics_exporter_pushgateway::init): set
//! `PUSHGATEWAY_REMOTE_WRITE_URL` instead of `PUSHGATEWAY_URL`.

use std::time::Instant;

use metrics::{counter, gauge, histogram};
use metrics_exporter_pushgateway::{PushgatewayBuilder, Target};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("REMOTE_WRITE_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:9090/api/v1/write".into());
    let guard = PushgatewayBuilder::with_targets([Target::remote_write(url)])
        .job("reconcile")
        .grouping_label("region", "eu-west")
        .install()?;

    let started = Instant::now();
    for account in 0..250u64 {
        counter!("reconcile_accounts_total").increment(1);
        if account % 40 == 0 {
            counter!("reconcile_mismatches_total").increment(1);
        }
    }
    histogram!("reconcile_batch_duration_seconds").record(started.elapsed().as_secs_f64());
    gauge!("reconcile_backlog").set(0.0);

    // The final push, with each target's result: samples are stamped now.
    let report = guard.shutdown()?;
    eprintln!(
        "remote write: status {:?}, {} bytes (snappy) in {:?}",
        report.status(),
        report.body_bytes(),
        report.elapsed()
    );
    Ok(())
}
