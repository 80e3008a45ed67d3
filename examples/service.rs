//! A long-running service: pushes every 5 s in the background, runs its own graceful
//! shutdown on Ctrl-C / SIGTERM, and deletes its group when it stops so that no stale group
//! is left at the gateway.
//!
//! With `PUSHGATEWAY_LISTEN=ip:port` it also serves `GET /metrics` for Prometheus to scrape,
//! from the same registry; with the listener and no `PUSHGATEWAY_URL`, it is only scraped.
//!
//! ```text
//! cargo run --example service -- 30     # run 30 s, or until Ctrl-C
//! PUSHGATEWAY_LISTEN=127.0.0.1:9100 cargo run --example service -- 30   # scraped only
//! ```

use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, gauge, Unit};
use metrics_exporter_pushgateway::{PushgatewayBuilder, SignalHandling};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: u64 = std::env::args().nth(1).map_or(Ok(30), |s| s.parse())?;
    let guard = PushgatewayBuilder::from_env()?
        .job("service")
        .hostname_grouping_label("instance")
        .interval(Duration::from_secs(5))
        // The application handles the signals itself (below); the exporter pushes on them and
        // lets the application shut down.
        .signals(SignalHandling::PushAndContinue)
        .delete_on_shutdown(true)
        .install()?;

    if let Some(addr) = guard.listen_addr() {
        eprintln!("service: serving http://{addr}/metrics");
    }
    describe_counter!(
        "service_ticks_total",
        Unit::Count,
        "Work loop iterations, one every 500 ms."
    );
    describe_gauge!("service_queue_depth", "Items waiting in the queue.");
    describe_gauge!("service_workers", "Worker tasks configured.");
    gauge!("service_workers").set(4.0);

    let work = async {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tick.tick().await;
            counter!("service_ticks_total").increment(1);
            gauge!("service_queue_depth").set(f64::from(rand_depth()));
        }
    };
    tokio::select! {
        () = work => {}
        _ = tokio::signal::ctrl_c() => eprintln!("service: interrupted, shutting down"),
        () = tokio::time::sleep(Duration::from_secs(seconds)) => {}
    }
    // Deletes the group (delete_on_shutdown); the result says whether it worked.
    if let Err(e) = guard.shutdown() {
        eprintln!("service: {e}");
    }
    Ok(())
}

fn rand_depth() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_micros() % 100)
}
