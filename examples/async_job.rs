//! An async batch job: fetches (here: simulates) pages concurrently on a tokio runtime and
//! exits. The guard lives in the async `main`; its drop makes the final push without
//! blocking on, or panicking inside, the job's runtime.
//!
//! ```text
//! cargo run --example async_job
//! ```

use std::time::{Duration, Instant};

use metrics::{counter, histogram};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Never fails: a bad configuration is one line on stderr, and the job runs on.
    let guard = metrics_exporter_pushgateway::init("async_job");
    // The final push says `success` for Ok, `error` (exit code 1) for Err.
    guard.finish(fetch_all().await)
}

async fn fetch_all() -> Result<(), Box<dyn std::error::Error>> {
    let tasks: Vec<_> = (0..20u64)
        .map(|page| {
            tokio::spawn(async move {
                let started = Instant::now();
                tokio::time::sleep(Duration::from_millis(5 + page % 7)).await;
                histogram!("async_job_page_duration_seconds")
                    .record(started.elapsed().as_secs_f64());
                counter!("async_job_pages_total").increment(1);
                counter!("async_job_items_total").increment(10 * page);
            })
        })
        .collect();
    for task in tasks {
        task.await?;
    }
    Ok(())
}
