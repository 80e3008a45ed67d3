//! Soak: 10,000 pushes back to back against a real Pushgateway, with the exporter installed in
//! this test process. Threads, open file descriptors and resident memory must stay flat.

mod common;

use std::time::{Duration, Instant};

use common::*;
use metrics_exporter_pushgateway::{PushgatewayBuilder, SignalHandling};

/// Threads, open file descriptors and resident memory (KiB) of this process.
fn usage() -> (usize, usize, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/self/status"))
    };
    let fds = std::fs::read_dir("/proc/self/fd").unwrap().count();
    (field("Threads:") as usize, fds, field("VmRSS:"))
}

#[test]
fn ten_thousand_pushes_keep_threads_fds_and_memory_flat() {
    const PUSHES: u64 = 10_000;
    let gw = Pushgateway::start();
    let guard = PushgatewayBuilder::new(&gw.url)
        .job("soak")
        .interval(Duration::ZERO)
        .signals(SignalHandling::Ignore)
        .install()
        .unwrap();
    for i in 0..100 {
        metrics::gauge!("soak_series", "i" => i.to_string()).set(f64::from(i));
    }
    let pushes = metrics::counter!("soak_pushes_total");
    let started = Instant::now();
    let mut warm = None;
    for i in 1..=PUSHES {
        pushes.increment(1);
        guard.flush().unwrap_or_else(|e| panic!("push {i}: {e}"));
        if i == 1_000 {
            warm = Some(usage());
        }
    }
    let elapsed = started.elapsed();
    let (threads0, fds0, rss0) = warm.unwrap();
    let (threads, fds, rss) = usage();
    println!(
        "{PUSHES} pushes in {elapsed:?} ({:.0} µs each); after 1,000: {threads0} threads, \
         {fds0} fds, {rss0} KiB RSS; after {PUSHES}: {threads} threads, {fds} fds, {rss} KiB RSS",
        elapsed.as_secs_f64() * 1e6 / PUSHES as f64
    );
    assert_eq!(threads, threads0, "threads");
    assert!(
        fds <= fds0 + 2,
        "file descriptors grew from {fds0} to {fds}"
    );
    assert!(
        rss <= rss0 + 8 * 1024,
        "resident memory grew from {rss0} KiB to {rss} KiB"
    );
    assert_eq!(
        gw.job("soak").value("soak_pushes_total", &[]),
        PUSHES as f64
    );
    guard.shutdown().unwrap();
}
