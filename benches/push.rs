//! What the exporter adds to a job, side by side with the peers in the same run, against a
//! real Pushgateway on loopback:
//!
//! - `record`: `counter!`/`gauge!`/`histogram!`, without and with labels, through this
//!   crate's installed recorder vs a bare `metrics-exporter-prometheus` recorder given the same
//!   5 s upkeep its own exporter runs.
//! - `init`: `install()` wall time, inside fresh processes (one recorder per process).
//! - `render`: rendering 1k, 10k and 100k series (this crate's text body, a bare
//!   `metrics-exporter-prometheus` recorder's render of the same series, the `prometheus`
//!   crate's `TextEncoder` and the `ProtobufEncoder` its `push_metrics` uses), the part of a
//!   push that is not the gateway's.
//! - `push`: render + send + answer of 1k, 10k and 100k series with warm clients: this crate's
//!   `flush()` vs the `prometheus` crate's `push_metrics` of the same series.
//! - `final_push_in_a_fresh_process`: what a job pays at exit for 1,000 series, measured
//!   inside fresh processes: this crate's guard drop vs `push_metrics` (whose HTTP client is
//!   built by its first push).
//! - `process_1000_series`: a whole job process that records 1,000 series and exits, with the
//!   exporter (init + final push) vs without it.
//! - `targets_1000_series`: a warm push of 1,000 series, inside fresh processes, to each kind
//!   of target: a Pushgateway, a Prometheus receiving remote write, a textfile directory, and
//!   a Pushgateway and a remote-write receiver at once; the body sizes are printed.
//! - `gzip`: a warm push of 10k and 100k series with and without gzip, in fresh processes;
//!   the body sizes are printed.
//! - memory: peak resident memory added by a push of 100k series against the body's size,
//!   printed.
//!
//! `cargo bench --bench push`; needs `prometheus-pushgateway` and `prometheus` (`apt-get
//! install prometheus-pushgateway prometheus`) or `PUSHGATEWAY_BIN` and `PROMETHEUS_BIN`.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/support/peer.rs"]
mod peer;

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::{job_bin_for, Build, Pushgateway};
use criterion::{criterion_group, BenchmarkId, Criterion, SamplingMode};
use metrics_exporter_pushgateway::{PushGuard, PushgatewayBuilder, SignalHandling};

const SIZES: [usize; 3] = [1_000, 10_000, 100_000];

/// The gateway shared by the benchmarks, and the exporter installed in this process.
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

/// A release-built test job for `scenario`, pushing to the gateway at `url`.
fn job(url: &str, scenario: &str, job: &str, env: &[(&str, &str)]) -> Command {
    let mut cmd = job_to(scenario, job, env);
    cmd.env("PUSHGATEWAY_URL", url);
    cmd
}

/// A release-built test job for `scenario`, its targets given by `env`.
fn job_to(scenario: &str, job: &str, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(job_bin_for(Build::Release));
    cmd.args([scenario, job]).envs(env.iter().copied());
    cmd
}

/// Runs a job that prints numbers on one line; returns them.
fn numbers(mut cmd: Command) -> Vec<u64> {
    let out = cmd.output().expect("run job");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|n| n.parse().expect("a number"))
        .collect()
}

fn record(c: &mut Criterion) {
    installed();
    let bare = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&metrics_exporter_pushgateway::DEFAULT_BUCKETS)
        .unwrap()
        .build_recorder();
    // The upkeep `metrics-exporter-prometheus` runs every 5 s when it installs itself; this
    // crate's pusher thread runs the same.
    let handle = bare.handle();
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_secs(5));
        handle.run_upkeep();
    });
    let mut group = c.benchmark_group("record");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    type Case = (&'static str, fn());
    let cases: [Case; 6] = [
        ("counter", || metrics::counter!("hot_total").increment(1)),
        ("counter, 2 labels", || {
            metrics::counter!("hot_labelled_total", "format" => "csv", "shard" => "3").increment(1)
        }),
        ("gauge", || metrics::gauge!("hot_gauge").set(1.5)),
        ("gauge, 2 labels", || {
            metrics::gauge!("hot_labelled_gauge", "format" => "csv", "shard" => "3").set(1.5)
        }),
        ("histogram", || {
            metrics::histogram!("hot_seconds").record(0.25)
        }),
        ("histogram, 2 labels", || {
            metrics::histogram!("hot_labelled_seconds", "format" => "csv", "shard" => "3")
                .record(0.25)
        }),
    ];
    // Side by side, case by case, so that drift of the machine hits both alike.
    for (name, f) in cases {
        group.bench_function(BenchmarkId::new(name, "pushgateway"), |b| b.iter(f));
        group.bench_function(BenchmarkId::new(name, "bare prometheus"), |b| {
            metrics::with_local_recorder(&bare, || b.iter(f))
        });
    }
    group.finish();
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
                .map(|_| Duration::from_nanos(numbers(job(&gw.url, "init-time", "bench", &[]))[0]))
                .sum()
        })
    });
    group.finish();
}

/// Records series `from..to` into this crate's recorder.
fn record_series(from: usize, to: usize) {
    for i in from..to {
        metrics::counter!("bench_series_total", "series" => i.to_string()).increment(1);
    }
}

fn render_and_push(c: &mut Criterion) {
    let (_, guard) = installed();
    // The gateway checks every push against all it holds, so each side gets a gateway of its
    // own: the peer's, started here, holds only the peer's series.
    let peer_gw = Pushgateway::start();
    let url = peer_gw.url.clone();
    let mut recorded = 0;
    for n in SIZES {
        record_series(recorded, n);
        recorded = n;
        let registry = peer::prometheus_registry(n);
        let samples = if n >= 100_000 { 10 } else { 20 };

        let mut group = c.benchmark_group("render");
        group.sample_size(samples);
        group.bench_function(BenchmarkId::new("metrics-exporter-pushgateway", n), |b| {
            b.iter(|| guard.render())
        });
        let peer_recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        metrics::with_local_recorder(&peer_recorder, || record_series(0, n));
        let peer_handle = peer_recorder.handle();
        group.bench_function(
            BenchmarkId::new("bare metrics-exporter-prometheus recorder", n),
            |b| {
                b.iter(|| {
                    let mut out = Vec::new();
                    peer_handle.render_to_write(&mut out).unwrap();
                    out
                })
            },
        );
        group.bench_function(BenchmarkId::new("prometheus ProtobufEncoder", n), |b| {
            b.iter(|| {
                use prometheus::Encoder as _;
                let mut out = Vec::new();
                prometheus::ProtobufEncoder::new()
                    .encode(&registry.gather(), &mut out)
                    .unwrap();
                out
            })
        });
        group.bench_function(BenchmarkId::new("prometheus TextEncoder", n), |b| {
            b.iter(|| {
                let mut out = String::new();
                prometheus::TextEncoder::new()
                    .encode_utf8(&registry.gather(), &mut out)
                    .unwrap();
                out
            })
        });
        group.finish();

        let mut group = c.benchmark_group("push");
        group.sample_size(samples);
        group.bench_function(BenchmarkId::new("metrics-exporter-pushgateway", n), |b| {
            b.iter(|| guard.flush().expect("push"))
        });
        group.bench_function(BenchmarkId::new("prometheus push_metrics", n), |b| {
            b.iter(|| {
                prometheus::push_metrics(
                    "bench_prometheus",
                    HashMap::new(),
                    &url,
                    registry.gather(),
                    None,
                )
                .expect("push")
            })
        });
        group.finish();
    }
}

fn fresh_process(c: &mut Criterion) {
    let mut group = c.benchmark_group("final_push_in_a_fresh_process");
    group
        .sample_size(20)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(1));
    for (name, scenario) in [
        ("metrics-exporter-pushgateway", "final-push-timed"),
        ("prometheus push_metrics", "prometheus-push-timed"),
    ] {
        let gw = Pushgateway::start();
        group.bench_function(BenchmarkId::new(name, 1000), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        Duration::from_nanos(numbers(job(&gw.url, scenario, "bench_fresh", &[]))[0])
                    })
                    .sum()
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("process_1000_series");
    group.sample_size(30);
    let gw = Pushgateway::start();
    for (name, scenario) in [
        ("without exporter", "series-1000-bare"),
        ("with exporter", "series-1000"),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let started = Instant::now();
                for _ in 0..iters {
                    let status = job(&gw.url, scenario, "bench", &[])
                        .status()
                        .expect("run job");
                    assert!(status.success());
                }
                started.elapsed()
            })
        });
    }
    group.finish();
}

fn gzip(c: &mut Criterion) {
    let mut group = c.benchmark_group("gzip");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(1));
    for n in [10_000usize, 100_000] {
        let series = n.to_string();
        for (name, gzip) in [("identity", false), ("gzip", true)] {
            let gw = Pushgateway::start();
            let env: Vec<(&str, &str)> = if gzip {
                vec![("TEST_SERIES", &series), ("TEST_GZIP", "1")]
            } else {
                vec![("TEST_SERIES", &series)]
            };
            let bytes = numbers(job(&gw.url, "push-timed", "bench_gzip", &env))[1];
            println!("gzip: {n} series, {name}: body {bytes} bytes");
            group.bench_function(BenchmarkId::new(name, n), |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| {
                            Duration::from_nanos(
                                numbers(job(&gw.url, "push-timed", "bench_gzip", &env))[0],
                            )
                        })
                        .sum()
                })
            });
        }
    }
    group.finish();
}

/// One warm push of 1,000 series to each kind of target, timed inside fresh processes: a
/// real Pushgateway, a real Prometheus receiving remote write, a textfile directory, and a
/// Pushgateway and a remote-write receiver at once.
fn targets(c: &mut Criterion) {
    let mut group = c.benchmark_group("targets_1000_series");
    group
        .sample_size(20)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(1));
    let gw = Pushgateway::start();
    let prometheus = common::prometheus::Prometheus::start(None);
    let write_url = prometheus.write_url();
    let dir = tempfile::tempdir().expect("temp dir");
    let textfiles = dir.path().to_str().expect("UTF-8 temp dir");
    let cases: [(&str, Vec<(&str, &str)>); 4] = [
        ("pushgateway", vec![("PUSHGATEWAY_URL", &gw.url)]),
        (
            "remote write",
            vec![("PUSHGATEWAY_REMOTE_WRITE_URL", &write_url)],
        ),
        ("textfile", vec![("PUSHGATEWAY_TEXTFILE_DIR", textfiles)]),
        (
            "pushgateway + remote write",
            vec![
                ("PUSHGATEWAY_URL", &gw.url),
                ("PUSHGATEWAY_REMOTE_WRITE_URL", &write_url),
            ],
        ),
    ];
    for (name, targets) in cases {
        let mut env = targets;
        env.extend([("TEST_SERIES", "1000"), ("PUSHGATEWAY_INTERVAL", "off")]);
        let bytes = numbers(job_to("push-timed", "bench_targets", &env))[1];
        println!("targets: 1000 series, {name}: body {bytes} bytes");
        group.bench_function(BenchmarkId::new(name, 1000), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        Duration::from_nanos(
                            numbers(job_to("push-timed", "bench_targets", &env))[0],
                        )
                    })
                    .sum()
            })
        });
    }
    group.finish();
}

/// Peak resident memory added by a push of 100k series, against the body's size (printed:
/// criterion measures time only). The median of five fresh processes.
fn memory(_: &mut Criterion) {
    let gw = Pushgateway::start();
    let median = |scenario: &str| {
        let mut runs: Vec<(u64, u64)> = (0..5)
            .map(|_| {
                let env = [("TEST_SERIES", "100000")];
                let v = numbers(job(&gw.url, scenario, "bench_memory", &env));
                (v[0], v[1])
            })
            .collect();
        runs.sort();
        runs[2]
    };
    let mib = |b: u64| b as f64 / 1048576.0;
    let (added, body) = median("push-memory");
    println!(
        "memory: push of 100000 series: peak resident memory +{:.1} MiB for a {:.1} MiB body \
         ({:.2}x the body; median of 5 processes)",
        mib(added),
        mib(body),
        added as f64 / body as f64
    );
    let (render, body) = median("render-memory");
    println!(
        "memory: of which the render alone: +{:.1} MiB \
         ({:.2}x the {:.1} MiB it writes)",
        mib(render),
        render as f64 / body as f64,
        mib(body)
    );
}

// Pushes first, so that the installed recorder holds only the pushed series (and the
// lifecycle metrics) when they are measured.
criterion_group!(
    benches,
    render_and_push,
    record,
    init,
    fresh_process,
    targets,
    gzip,
    memory
);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // Statics are not dropped: stop the shared gateway here.
    if let Ok(mut gw) = installed().0.lock() {
        gw.kill();
    }
}
