//! What the exporter adds to a job, side by side with the peers, against a real Pushgateway on
//! loopback:
//!
//! - `init`: `install()` wall time, measured inside fresh processes (one recorder per process).
//! - `final_push_1000_series`: render + send + answer of 1,000 series, this crate's `flush()`
//!   vs the `prometheus` crate's `push_metrics` of the same series to the same gateway.
//! - `record`: `counter!`/`gauge!`/`histogram!` through this crate's installed recorder vs a
//!   bare `metrics-exporter-prometheus` recorder.
//! - `process_1000_series`: a whole job process that records 1,000 series and exits, with the
//!   exporter (init + final push) vs without it.
//!
//! `cargo bench --bench push`; needs `prometheus-pushgateway` (`apt-get install
//! prometheus-pushgateway`) or `PUSHGATEWAY_BIN`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::{job_bin_for, Build, Pushgateway};
use criterion::SamplingMode;
use criterion::{criterion_group, BenchmarkId, Criterion};
use metrics_exporter_pushgateway::{PushGuard, PushgatewayBuilder, SignalHandling};

const SERIES: usize = 1000;

fn job(scenario: &str, gw: &Pushgateway) -> Command {
    let mut cmd = Command::new(job_bin_for(Build::Release));
    cmd.args([scenario, "bench"])
        .env("PUSHGATEWAY_URL", &gw.url);
    cmd
}

fn init(c: &mut Criterion) {
    let gw = Pushgateway::start();
    let mut group = c.benchmark_group("init");
    // Each sample spawns processes but reports only the time inside `install()`: keep the
    // warm-up and measurement targets small, or criterion runs thousands of processes.
    group
        .sample_size(30)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(50))
        .measurement_time(Duration::from_millis(300));
    group.bench_function("install", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let out = job("init-time", &gw).output().expect("run job");
                    let ns: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
                    Duration::from_nanos(ns)
                })
                .sum()
        })
    });
    group.finish();
}

/// The gateway and the exporter installed in this process, shared by the benchmarks.
fn installed() -> &'static (Mutex<Pushgateway>, PushGuard) {
    static INSTALLED: OnceLock<(Mutex<Pushgateway>, PushGuard)> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let gw = Pushgateway::start();
        let guard = PushgatewayBuilder::new(gw.url.clone())
            .job("bench_crate")
            .interval(Duration::ZERO)
            .signals(SignalHandling::Ignore)
            .install()
            .expect("install");
        (Mutex::new(gw), guard)
    })
}

fn record(c: &mut Criterion) {
    installed();
    let bare = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&metrics_exporter_pushgateway::DEFAULT_BUCKETS)
        .unwrap()
        .build_recorder();
    let mut group = c.benchmark_group("record");
    // The bare recorder gets no upkeep: keep the run short so its histogram samples stay few.
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(1));
    for (recorder, local) in [("pushgateway", None), ("bare prometheus", Some(&bare))] {
        let run = |b: &mut criterion::Bencher, f: &dyn Fn()| match local {
            Some(r) => metrics::with_local_recorder(r, || b.iter(f)),
            None => b.iter(f),
        };
        group.bench_function(BenchmarkId::new("counter", recorder), |b| {
            run(b, &|| metrics::counter!("hot_counter_total").increment(1))
        });
        group.bench_function(BenchmarkId::new("counter with labels", recorder), |b| {
            run(b, &|| {
                metrics::counter!("hot_labelled_total", "format" => "csv", "shard" => "3")
                    .increment(1)
            })
        });
        group.bench_function(BenchmarkId::new("gauge", recorder), |b| {
            run(b, &|| metrics::gauge!("hot_gauge").set(1.5))
        });
        group.bench_function(BenchmarkId::new("histogram", recorder), |b| {
            run(b, &|| metrics::histogram!("hot_seconds").record(0.25))
        });
    }
    group.finish();
}

fn final_push(c: &mut Criterion) {
    let (gw, guard) = installed();
    let gw = gw.lock().unwrap();
    for i in 0..SERIES {
        metrics::counter!("bench_series_total", "series" => i.to_string()).increment(1);
    }

    let registry = prometheus::Registry::new();
    let counters = prometheus::IntCounterVec::new(
        prometheus::Opts::new("bench_series_total", "bench series"),
        &["series"],
    )
    .unwrap();
    registry.register(Box::new(counters.clone())).unwrap();
    for i in 0..SERIES {
        counters.with_label_values(&[&i.to_string()]).inc();
    }
    let address = gw.url.clone();

    let mut group = c.benchmark_group("final_push_1000_series");
    group.sample_size(50);
    group.bench_function(
        BenchmarkId::new("metrics-exporter-pushgateway", SERIES),
        |b| b.iter(|| guard.flush().expect("push")),
    );
    group.bench_function(BenchmarkId::new("prometheus push_metrics", SERIES), |b| {
        b.iter(|| {
            prometheus::push_metrics(
                "bench_prometheus",
                HashMap::new(),
                &address,
                registry.gather(),
                None,
            )
            .expect("push")
        })
    });
    group.finish();
}

fn process(c: &mut Criterion) {
    let gw = Pushgateway::start();
    let mut group = c.benchmark_group("process_1000_series");
    group.sample_size(30);
    for (name, scenario) in [
        ("without exporter", "series-1000-bare"),
        ("with exporter", "series-1000"),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let started = Instant::now();
                for _ in 0..iters {
                    let status = job(scenario, &gw).status().expect("run job");
                    assert!(status.success());
                }
                started.elapsed()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, init, record, final_push, process);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // Statics are not dropped: stop the shared gateway here.
    if let Ok(mut gw) = installed().0.lock() {
        gw.kill();
    }
}
