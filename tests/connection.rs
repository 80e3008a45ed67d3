//! The connection to the gateway: made by the pusher thread right after install with a
//! request that changes nothing there (`GET /-/healthy`), kept for the pushes, and never
//! costing the final push its budget when it went bad while idle.

mod common;

use std::time::{Duration, Instant};

use common::proxy::{Fault, Proxy};
use common::*;

/// Slack for a loaded machine on top of a bound the exporter keeps.
const MARGIN: Duration = Duration::from_millis(1500);

/// Waits up to 5 s for `cond`.
fn eventually(cond: impl Fn() -> bool) -> bool {
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// The request line of a final push to the group `job=<job>`.
fn push_line(job: &str) -> String {
    format!("PUT /metrics/job/{job} HTTP/1.1")
}

#[test]
fn before_the_first_push_only_the_warm_up_reaches_the_gateway() {
    let gw = Pushgateway::start();
    let proxy = Proxy::start(gw.port, Fault::Pass);
    let job = start_job(
        false,
        "run",
        "warm_first",
        &[
            ("PUSHGATEWAY_URL", &proxy.url),
            ("PUSHGATEWAY_INTERVAL", "off"),
            ("TEST_RUN_MS", "2000"),
        ],
    );
    // The connection is made while the job works, with the health check alone.
    assert!(
        eventually(|| proxy.request_lines().len() == 1),
        "no warm-up: {:?}",
        proxy.request_lines()
    );
    assert_eq!(proxy.request_lines(), ["GET /-/healthy HTTP/1.1"]);
    assert_eq!(proxy.connections(), 1);
    assert!(
        gw.group(&[("job", "warm_first")]).is_none(),
        "{:#?}",
        gw.groups()
    );
    let out = job.child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    assert_job_values(&gw.job("warm_first"), "success", 0);
    assert_eq!(
        proxy.request_lines(),
        [
            "GET /-/healthy HTTP/1.1".to_owned(),
            push_line("warm_first")
        ]
    );
}

#[test]
fn the_final_push_goes_on_the_warmed_connection() {
    let gw = Pushgateway::start();
    let proxy = Proxy::start(gw.port, Fault::Pass);
    let (out, _) = run_job(
        false,
        "run",
        "warm_one_connection",
        &[],
        &[
            ("PUSHGATEWAY_URL", &proxy.url),
            ("PUSHGATEWAY_INTERVAL", "off"),
            ("TEST_RUN_MS", "500"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_job_values(&gw.job("warm_one_connection"), "success", 0);
    assert_eq!(
        proxy.request_lines(),
        [
            "GET /-/healthy HTTP/1.1".to_owned(),
            push_line("warm_one_connection")
        ]
    );
    assert_eq!(proxy.connections(), 1, "warm-up and final push on one");
}

#[test]
fn a_gateway_down_at_install_and_back_before_the_end_gets_the_final_push() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let job = start_job(
        false,
        "run",
        "warm_down",
        &[
            ("PUSHGATEWAY_URL", &url),
            ("PUSHGATEWAY_INTERVAL", "off"),
            ("PUSHGATEWAY_SHUTDOWN_TIMEOUT", "3s"),
            ("TEST_RUN_MS", "1500"),
        ],
    );
    // The warm-up finds nothing listening; the gateway comes up while the job works.
    std::thread::sleep(Duration::from_millis(500));
    let gw = Pushgateway::start_on(port);
    let out = job.child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The failed warm-up says nothing.
    assert_eq!(stderr(&out), "");
    assert_job_values(&gw.job("warm_down"), "success", 0);
}

/// Runs a job that pushes once at its start (`flush`), then works 3 s without interval
/// pushes, behind `proxy`; returns what its final push cost beyond the 3 s.
fn three_second_job(gw: &Pushgateway, proxy: &Proxy, job: &str) -> Duration {
    const BUDGET: Duration = Duration::from_secs(3);
    let work = Duration::from_secs(3);
    let (out, elapsed) = run_job(
        false,
        "run",
        job,
        &[],
        &[
            ("PUSHGATEWAY_URL", &proxy.url),
            ("PUSHGATEWAY_INTERVAL", "off"),
            ("PUSHGATEWAY_SHUTDOWN_TIMEOUT", "3s"),
            ("TEST_FLUSH_FIRST", "1"),
            ("TEST_RUN_MS", "3000"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    // The final push's own values, not those of the push at the start.
    assert_job_values(&gw.job(job), "success", 0);
    assert!(elapsed < work + BUDGET + MARGIN, "took {elapsed:?}");
    let cost = elapsed.saturating_sub(work);
    println!("{job}: {elapsed:?}, the final push and exit {cost:?}");
    cost
}

#[test]
fn a_connection_closed_while_idle_costs_the_final_push_nothing_but_a_fresh_one() {
    let gw = Pushgateway::start();
    let proxy = Proxy::start(gw.port, Fault::CloseIdle(Duration::from_secs(1)));
    three_second_job(&gw, &proxy, "warm_closed");
    assert!(proxy.connections() >= 2, "{}", proxy.connections());
}

#[test]
fn a_connection_stalled_while_idle_costs_the_final_push_nothing_but_a_fresh_one() {
    let gw = Pushgateway::start();
    let proxy = Proxy::start(gw.port, Fault::StallIdle(Duration::from_secs(1)));
    three_second_job(&gw, &proxy, "warm_stalled");
    assert!(proxy.connections() >= 2, "{}", proxy.connections());
}
