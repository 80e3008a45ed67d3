//! What the exporter adds to a job, side by side with the peers in the same run, against a
//! real Pushgateway on loopback:
//!
//! - `record`: `counter!`/`gauge!`/`histogram!`, without and with labels, through this
//!   crate's installed recorder vs a bare `metrics-exporter-prometheus` recorder given the same
//!   5 s upkeep its own exporter runs; a native histogram's record beside the classic one.
//! - `histograms`: a push of 1k and 10k histograms, classic and native; body bytes printed.
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
//! - `remote_write`: a warm push of 10k, 100k and 1M series, inside fresh processes, by
//!   remote write to a real VictoriaMetrics (`victoria-metrics`, requests of the default
//!   2,000 samples) beside the same push to a Pushgateway; the bytes on the wire and the peak
//!   resident memory added by the push (`push-memory`, one process each) are printed.
//! - `gzip`: a warm push of 10k and 100k series with and without gzip, in fresh processes;
//!   the body sizes are printed.
//! - memory: peak resident memory added by a push of 100k series against the body's size,
//!   printed.
//! - `peers` (printed, not criterion's): the same short job on each side, in fresh processes,
//!   each side on a Pushgateway of its own, the sides interleaved round by round (their
//!   order rotates, and reverses every other round) so that a noisy machine hits them alike;
//!   medians:
//!   - what a whole job's push adds to its wall time, at 1,000 and 10,000 series: (the job
//!     with its push) − (the same job without it), for this crate (the test job
//!     `series-1000` with `TEST_SERIES` series and the exporter, whose guard's drop pushes,
//!     vs `series-1000-bare`, the same job without the exporter), Go's client_golang
//!     (`benches/go/push_counters.go`: `push.New(url, job).Gatherer(reg).Push()`, a PUT of
//!     protobuf, vs `-no-push`) and the `prometheus` crate (`prometheus-series`, one
//!     `push_metrics`, vs `prometheus-series-bare`), with the ratios ours/Go and
//!     ours/prometheus. The peers' jobs without the push still record into their registry;
//!     ours without the exporter records nothing, so `series-no-push` (the exporter installed
//!     and recording, the guard forgotten: no push) splits what ours adds into install +
//!     recording and the push alone, and the ratios of the push alone are printed too. The
//!     `prometheus` crate's push builds its HTTP client first (reqwest with native-tls, which
//!     loads the system's CA bundle even for `http://`): a fixed cost of tens of ms.
//!   - the peak resident memory (the child's `ru_maxrss`, from `wait4`, so the Go binary's
//!     too) of a job that records and pushes 100,000 series, on each side, median of 5, with
//!     the ratio ours / min(Go, prometheus); beside each, the same job recording without the
//!     push (ours: `series-no-push`).
//!
//! - `exit_cost` (printed): what a short job's final push costs at exit at a round trip of
//!   20 ms (a latency proxy), over HTTP and HTTPS, this crate beside client_golang; see
//!   [`exit_cost`].
//!
//!   `PUSH_BENCH_PEER_ROUNDS` sets the rounds of the timing (default 31, after one warm-up
//!   round). The Go peer is built with `go build` into `target/go-peer` in GOPATH mode
//!   against Debian's client_golang (`GOPATH=/usr/share/gocode`, or `BENCH_GOPATH`;
//!   `GO_BIN` names another `go`), offline.
//!
//! `cargo bench --bench push`; needs `prometheus-pushgateway` and `prometheus` (`apt-get
//! install prometheus-pushgateway prometheus`) or `PUSHGATEWAY_BIN` and `PROMETHEUS_BIN`,
//! and for `peers` Go and client_golang (`apt-get install golang-go
//! golang-github-prometheus-client-golang-dev`); `scripts/install-bench-deps.sh` installs
//! what is missing. `PUSH_BENCH_ONLY` runs only the parts it names, comma-separated, of
//! `push` (render and push), `record`, `init`, `fresh_process`, `targets`, `remote_write`,
//! `gzip`, `memory`, `peers` and `exit_cost`: `PUSH_BENCH_ONLY=peers cargo bench --bench push` runs the peers alone.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/support/peer.rs"]
mod peer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::{job_bin_for, Build, Pushgateway};
use criterion::{BenchmarkId, Criterion, SamplingMode};
use metrics_exporter_pushgateway::{PushGuard, PushgatewayBuilder, SignalHandling};

const SIZES: [usize; 3] = [1_000, 10_000, 100_000];

/// The gateway shared by the benchmarks, and the exporter installed in this process.
static INSTALLED: OnceLock<(Mutex<Pushgateway>, PushGuard)> = OnceLock::new();

/// The gateway shared by the benchmarks, and the exporter installed in this process.
fn installed() -> &'static (Mutex<Pushgateway>, PushGuard) {
    INSTALLED.get_or_init(|| {
        let gw = Pushgateway::start();
        let guard = PushgatewayBuilder::new(gw.url.clone())
            .job("bench_crate")
            .histograms_for_metric(
                metrics_exporter_pushgateway::Matcher::Prefix("native_".into()),
                metrics_exporter_pushgateway::HistogramForm::Native,
            )
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
    let cases: [Case; 8] = [
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
        // Native: this crate's only (the bare recorder keeps it classic, as it does unless
        // scraped in protobuf).
        ("native histogram", || {
            metrics::histogram!("native_hot_seconds").record(0.25)
        }),
        ("native histogram, spread", || {
            use std::sync::atomic::{AtomicU32, Ordering};
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let i = NEXT.fetch_add(1, Ordering::Relaxed) % 1024;
            metrics::histogram!("native_spread_seconds").record(f64::from(i + 1) * 0.001)
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

/// A push (snapshot, encode, send) of 1k and 10k histograms of 64 observations each (from
/// 1 ms to about 1 s), classic and native, each to a gateway of its own; the body sizes are
/// printed.
fn histograms(c: &mut Criterion) {
    use metrics_exporter_pushgateway::HistogramForm;
    let mut group = c.benchmark_group("histograms");
    group.sample_size(10);
    for n in [1_000usize, 10_000] {
        for (name, form) in [
            ("classic", HistogramForm::Classic),
            ("native", HistogramForm::Native),
        ] {
            let gw = Pushgateway::start();
            let (recorder, guard) = PushgatewayBuilder::new(gw.url.clone())
                .job("bench_histograms")
                .histograms(form)
                .interval(Duration::ZERO)
                .lifecycle_metrics(false)
                .self_metrics(false)
                .build()
                .expect("build");
            metrics::with_local_recorder(&recorder, || {
                for i in 0..n {
                    let h = metrics::histogram!("bench_latency_seconds", "series" => i.to_string());
                    for j in 0..64u32 {
                        h.record(0.001 * 1.115f64.powi(j as i32));
                    }
                }
            });
            let bytes = guard.flush().expect("push").body_bytes();
            println!("histograms: {n} {name} histograms: {bytes} bytes pushed");
            group.bench_function(BenchmarkId::new(name, n), |b| {
                b.iter(|| guard.flush().expect("push"))
            });
        }
    }
    group.finish();
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

fn remote_write(c: &mut Criterion) {
    let mut group = c.benchmark_group("remote_write_push");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(1));
    let gw = Pushgateway::start();
    let vm = common::victoria::VictoriaMetrics::start();
    let write_url = vm.write_url();
    for n in [10_000, 100_000, 1_000_000] {
        let series = n.to_string();
        let cases: [(&str, Vec<(&str, &str)>); 2] = [
            ("pushgateway", vec![("PUSHGATEWAY_URL", &gw.url)]),
            (
                "remote write to VictoriaMetrics",
                vec![("PUSHGATEWAY_REMOTE_WRITE_URL", &write_url)],
            ),
        ];
        for (name, targets) in cases {
            let mut env = targets;
            env.extend([
                ("TEST_SERIES", series.as_str()),
                ("PUSHGATEWAY_INTERVAL", "off"),
                ("PUSHGATEWAY_PUSH_TIMEOUT", "300s"),
                ("PUSHGATEWAY_SHUTDOWN_TIMEOUT", "300s"),
            ]);
            let memory = numbers(job_to("push-memory", "bench_rw", &env));
            println!(
                "remote_write: {n} series, {name}: body {} bytes, peak memory added by the push \
                 {:.1} MiB",
                memory[1],
                memory[0] as f64 / (1024.0 * 1024.0)
            );
            group.bench_function(BenchmarkId::new(name, n), |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| {
                            Duration::from_nanos(numbers(job_to("push-timed", "bench_rw", &env))[0])
                        })
                        .sum()
                })
            });
        }
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

/// The Go peer, `benches/go/push_counters.go`, built once with `go build` into
/// `target/go-peer`: GOPATH mode (`GO111MODULE=off`) against Debian's client_golang under
/// `/usr/share/gocode` (or `BENCH_GOPATH`), no module proxy. Panics with what to install
/// when Go or client_golang is missing.
fn go_peer_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        const INSTALL: &str = "`apt-get install golang-go \
             golang-github-prometheus-client-golang-dev` (or run scripts/install-bench-deps.sh)";
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = root.join("target").join("go-peer");
        let bin = dir.join("push_counters");
        let go = std::env::var_os("GO_BIN").unwrap_or_else(|| "go".into());
        let gopath = std::env::var_os("BENCH_GOPATH").unwrap_or_else(|| "/usr/share/gocode".into());
        let out = Command::new(&go)
            .args(["build", "-o"])
            .arg(&bin)
            .arg("push_counters.go")
            .current_dir(root.join("benches/go"))
            .env("GOPATH", gopath)
            .env("GO111MODULE", "off")
            .env("GOFLAGS", "")
            .env("GOPROXY", "off")
            .env("GOCACHE", dir.join("cache"))
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "the Go peer needs Go, and `{}` could not run ({e}): install Go and \
                     client_golang with {INSTALL}, or point GO_BIN at `go`",
                    Path::new(&go).display()
                )
            });
        assert!(
            out.status.success(),
            "building the Go peer (benches/go/push_counters.go) failed; it needs Go and \
             client_golang: {INSTALL}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        bin
    })
}

/// The sides of `peers`.
#[derive(Clone, Copy, PartialEq)]
enum Side {
    /// This crate, in the test job.
    Ours,
    /// This crate installed and recording, but not pushing.
    OursNoPush,
    /// Go's client_golang.
    Go,
    /// The `prometheus` crate, in the test job.
    Prometheus,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Ours => "metrics-exporter-pushgateway",
            Side::OursNoPush => "metrics-exporter-pushgateway, no push",
            Side::Go => "client_golang (Go)",
            Side::Prometheus => "prometheus crate",
        }
    }

    /// The whole job recording `n` series, with its push to the gateway at `url` or without.
    fn job(self, url: &str, n: usize, push: bool) -> Command {
        let series = n.to_string();
        let env = [("TEST_SERIES", series.as_str())];
        let scenario = match (self, push) {
            (Side::Ours, true) => "series-1000",
            (Side::Ours, false) => "series-1000-bare",
            (Side::OursNoPush, _) => "series-no-push",
            (Side::Prometheus, true) => "prometheus-series",
            (Side::Prometheus, false) => "prometheus-series-bare",
            (Side::Go, _) => {
                let mut cmd = Command::new(go_peer_bin());
                if !push {
                    cmd.arg("-no-push");
                }
                cmd.arg("bench_peers")
                    .env("TEST_SERIES", &series)
                    .env("PUSHGATEWAY_URL", url);
                return cmd;
            }
        };
        job(url, scenario, "bench_peers", &env)
    }
}

/// Runs `cmd` to its end, its output dropped; returns its wall time, from spawn to reaping.
fn wall_time(mut cmd: Command) -> Duration {
    cmd.stdout(Stdio::null()).stderr(Stdio::inherit());
    let started = Instant::now();
    let status = cmd.status().expect("run job");
    let took = started.elapsed();
    assert!(status.success(), "{cmd:?}: {status}");
    took
}

/// Runs `cmd` to its end; returns its peak resident memory in bytes (`ru_maxrss` from
/// `wait4`: this child's own, whatever language it is in).
#[cfg(unix)]
fn peak_rss(mut cmd: Command) -> Option<u64> {
    cmd.stdout(Stdio::null()).stderr(Stdio::inherit());
    let child = cmd.spawn().expect("start job");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: all zeroes is a valid `rusage` (integers and `timeval`s).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: waits for our own child, which is reaped here (std's `Child` does not wait
        // on drop); `status` and `usage` are valid for writes.
        let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if got == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        assert_eq!(err.kind(), std::io::ErrorKind::Interrupted, "wait4: {err}");
    }
    drop(child);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{cmd:?}: wait status {status:#x}"
    );
    // Kilobytes on Linux.
    Some(usage.ru_maxrss as u64 * 1024)
}

#[cfg(not(unix))]
fn peak_rss(_: Command) -> Option<u64> {
    None
}

/// The `q` quantile (0..=1) of `v`, nearest rank.
fn quantile<T: Copy + PartialOrd>(v: &[T], q: f64) -> T {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// `a / b`, or "n/a" when `b` is not positive (a peer whose push added nothing measurable).
fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}x", a / b)
    } else {
        "n/a".to_owned()
    }
}

/// The runs of each case, a case being a side and whether its job pushes.
struct Runs<T>(Vec<((Side, bool), Vec<T>)>);

impl<T: Copy + PartialOrd> Runs<T> {
    fn new(cases: &[(Side, bool)]) -> Self {
        Runs(cases.iter().map(|&case| (case, Vec::new())).collect())
    }

    fn of(&self, side: Side, push: bool) -> &[T] {
        let (_, runs) = self.0.iter().find(|(c, _)| *c == (side, push)).unwrap();
        runs
    }

    fn median(&self, side: Side, push: bool) -> T {
        quantile(self.of(side, push), 0.5)
    }

    /// Runs `cases` round after round, each round in another order (rotated, and reversed
    /// every other round) so that drift of the machine hits every case alike; `warm_up`
    /// rounds first, dropped.
    fn measure(
        cases: &[(Side, bool)],
        warm_up: usize,
        rounds: usize,
        mut run: impl FnMut(Side, bool) -> T,
    ) -> Self {
        let mut runs = Self::new(cases);
        for round in 0..warm_up + rounds {
            let mut order: Vec<usize> = (0..cases.len()).collect();
            order.rotate_left(round % cases.len());
            if round % 2 == 1 {
                order.reverse();
            }
            for i in order {
                let (side, push) = cases[i];
                let value = run(side, push);
                if round >= warm_up {
                    runs.0[i].1.push(value);
                }
            }
        }
        runs
    }
}

impl Runs<f64> {
    /// The difference of the medians of two cases, and the quartiles of the round-by-round
    /// differences.
    fn added(&self, with: (Side, bool), without: (Side, bool)) -> (f64, f64, f64) {
        let diffs: Vec<f64> = (self.of(with.0, with.1).iter())
            .zip(self.of(without.0, without.1))
            .map(|(a, b)| a - b)
            .collect();
        (
            self.median(with.0, with.1) - self.median(without.0, without.1),
            quantile(&diffs, 0.25),
            quantile(&diffs, 0.75),
        )
    }
}

/// What a push adds to a whole job, and the peak memory of a job that pushes 100k series:
/// this crate, Go's client_golang and the `prometheus` crate side by side, interleaved.
fn peers(_: &mut Criterion) {
    let go = go_peer_bin();
    println!("peers: Go peer built at {}", go.display());
    let rounds: usize = std::env::var("PUSH_BENCH_PEER_ROUNDS")
        .map_or(31, |v| v.parse().expect("PUSH_BENCH_PEER_ROUNDS: a number"));
    // A gateway of its own for each side: the gateway checks a push against all it holds.
    let gateways: Vec<(Side, Pushgateway)> = [Side::Ours, Side::Go, Side::Prometheus]
        .into_iter()
        .map(|side| (side, Pushgateway::start()))
        .collect();
    let url = |side: Side| {
        let side = match side {
            Side::OursNoPush => Side::Ours,
            other => other,
        };
        let (_, gw) = gateways.iter().find(|(s, _)| *s == side).unwrap();
        gw.url.clone()
    };
    let ms = |d: f64| d * 1e3;
    let [ours, ours_no_push, go, prom] = [
        (Side::Ours, true),
        (Side::OursNoPush, false),
        (Side::Go, true),
        (Side::Prometheus, true),
    ];
    let bare = |(side, _): (Side, bool)| (side, false);

    for n in [1_000usize, 10_000] {
        let cases = [
            ours,
            bare(ours),
            ours_no_push,
            go,
            bare(go),
            prom,
            bare(prom),
        ];
        let times = Runs::measure(&cases, 1, rounds, |side, push| {
            wall_time(side.job(&url(side), n, push)).as_secs_f64()
        });
        println!(
            "peers: {n} series, a whole job's wall time with its push / without it -> what \
             the push adds (medians of {rounds} interleaved rounds; in brackets the \
             quartiles of the round-by-round differences)"
        );
        let row = |name: &str, with: (Side, bool), without: (Side, bool)| {
            let (added, q1, q3) = times.added(with, without);
            println!(
                "peers:   {name:<34} {:>8.2} ms / {:>8.2} ms -> {:>+8.2} ms [{:+.2} .. {:+.2}]",
                ms(times.median(with.0, with.1)),
                ms(times.median(without.0, without.1)),
                ms(added),
                ms(q1),
                ms(q3),
            );
            added
        };
        let added_ours = row(Side::Ours.name(), ours, bare(ours));
        let added_go = row(Side::Go.name(), go, bare(go));
        let added_prom = row(Side::Prometheus.name(), prom, bare(prom));
        println!(
            "peers:   this crate's line split: the exporter installed and recording, no push \
             (`series-no-push`) vs without the exporter; then the push alone"
        );
        row("  installed + recording", ours_no_push, bare(ours));
        let push_alone = row("  the push alone", ours, ours_no_push);
        println!(
            "peers: {n} series, what the push adds: ours/Go {}, ours/prometheus {} \
             (ours the push alone: ours/Go {}, ours/prometheus {})",
            ratio(added_ours, added_go),
            ratio(added_ours, added_prom),
            ratio(push_alone, added_go),
            ratio(push_alone, added_prom),
        );
    }

    // Peak resident memory: each side with and without its push, interleaved.
    let n = 100_000;
    let without = |(side, _): (Side, bool)| match side {
        // Recording as the peers' jobs without their push do: installed, no push.
        Side::Ours => ours_no_push,
        other => (other, false),
    };
    let cases = [ours, without(ours), go, without(go), prom, without(prom)];
    if !cfg!(unix) {
        println!("peers: peak resident memory is measured on Unix only");
        return;
    }
    let peaks = Runs::measure(&cases, 0, 5, |side, push| {
        peak_rss(side.job(&url(side), n, push)).unwrap()
    });
    let mib = |b: u64| b as f64 / 1048576.0;
    println!(
        "peers: peak resident memory (ru_maxrss) of a job that records and pushes {n} \
         series, median of 5 [min .. max]; the same job recording without the push"
    );
    for case in [ours, go, prom] {
        let runs = peaks.of(case.0, case.1);
        println!(
            "peers:   {:<34} {:>8.1} MiB [{:.1} .. {:.1}]; without the push {:.1} MiB",
            case.0.name(),
            mib(peaks.median(case.0, case.1)),
            mib(quantile(runs, 0.0)),
            mib(quantile(runs, 1.0)),
            mib(peaks.median(without(case).0, without(case).1)),
        );
    }
    let best_peer = peaks.median(go.0, go.1).min(peaks.median(prom.0, prom.1));
    println!(
        "peers: peak resident memory, ours / min(Go, prometheus): {}",
        ratio(peaks.median(ours.0, ours.1) as f64, best_peer as f64)
    );
}

/// What a short job's final push costs at exit over a network with a round trip of 20 ms
/// (`common::proxy::Fault::Latency`: every chunk 10 ms each way, connection set-up one round
/// trip): a job that records 100 series, works 300 ms and ends; exit cost = median wall time
/// of the job with its push − the same job without it (ours: `series-no-push`, the exporter
/// installed and warm-connecting; Go: `-no-push`), over HTTP and over HTTPS (a private CA, the
/// real Pushgateway with `--web.config.file`), this crate beside client_golang, interleaved.
/// `PUSH_BENCH_EXIT_ROUNDS` sets the rounds (default 9, after one warm-up round).
fn exit_cost(_: &mut Criterion) {
    use common::proxy::{Fault, Proxy};
    use common::tls::{write, Ca};
    const ONE_WAY: Duration = Duration::from_millis(10);
    let rtt = (ONE_WAY * 2).as_secs_f64();
    let rounds: usize = std::env::var("PUSH_BENCH_EXIT_ROUNDS")
        .map_or(9, |v| v.parse().expect("PUSH_BENCH_EXIT_ROUNDS: a number"));
    let go = go_peer_bin();
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("bench CA");
    let (cert, key) = ca.sign(&["127.0.0.1", "localhost"]);
    let ca_file = write(dir.path(), "ca.pem", &ca.cert_pem);
    let web_config = write(
        dir.path(),
        "web.yml",
        &format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
            write(dir.path(), "server.pem", &cert).display(),
            write(dir.path(), "server.key", &key).display(),
        ),
    );
    let ca_text = ca_file.to_str().unwrap().to_owned();
    for scheme in ["http", "https"] {
        // A gateway and a latency proxy of its own for each side.
        let gateway = || match scheme {
            "http" => Pushgateway::start(),
            _ => Pushgateway::start_secured(
                &web_config,
                "https",
                reqwest::blocking::Client::builder()
                    .use_rustls_tls()
                    .add_root_certificate(
                        reqwest::Certificate::from_pem(ca.cert_pem.as_bytes()).unwrap(),
                    )
                    .build()
                    .unwrap(),
            ),
        };
        let (ours_gw, go_gw) = (gateway(), gateway());
        let ours_proxy = Proxy::start(ours_gw.port, Fault::Latency(ONE_WAY));
        let go_proxy = Proxy::start(go_gw.port, Fault::Latency(ONE_WAY));
        let url = |proxy: &Proxy| proxy.url.replacen("http", scheme, 1);
        let (ours_url, go_url) = (url(&ours_proxy), url(&go_proxy));
        let cases = [
            (Side::Ours, true),
            (Side::Ours, false),
            (Side::Go, true),
            (Side::Go, false),
        ];
        let times = Runs::measure(&cases, 1, rounds, |side, push| {
            let env = [
                ("TEST_SERIES", "100"),
                ("TEST_WORK_MS", "300"),
                ("PUSHGATEWAY_INTERVAL", "off"),
                ("PUSHGATEWAY_CA_FILE", ca_text.as_str()),
            ];
            let cmd = match side {
                Side::Go => {
                    let mut cmd = Command::new(go);
                    if !push {
                        cmd.arg("-no-push");
                    }
                    cmd.arg("bench_exit")
                        .envs(env)
                        .env("SSL_CERT_FILE", &ca_file)
                        .env("PUSHGATEWAY_URL", &go_url);
                    cmd
                }
                _ => {
                    let scenario = if push {
                        "series-1000"
                    } else {
                        "series-no-push"
                    };
                    job(&ours_url, scenario, "bench_exit", &env)
                }
            };
            wall_time(cmd).as_secs_f64()
        });
        println!(
            "exit_cost: {scheme}, RTT {:.0} ms, a job of 100 series that works 300 ms: wall \
             time with its push / without -> exit cost (medians of {rounds} interleaved \
             rounds; in brackets the quartiles of the round-by-round differences)",
            rtt * 1e3
        );
        let cost = |side: Side| {
            let (added, q1, q3) = times.added((side, true), (side, false));
            println!(
                "exit_cost:   {:<30} {:>7.1} ms / {:>7.1} ms -> {:>6.1} ms = {:.2} RTT \
                 [{:.1} .. {:.1}]",
                side.name(),
                times.median(side, true) * 1e3,
                times.median(side, false) * 1e3,
                added * 1e3,
                added / rtt,
                q1 * 1e3,
                q3 * 1e3,
            );
            added
        };
        let (ours, go) = (cost(Side::Ours), cost(Side::Go));
        println!(
            "exit_cost: {scheme}: ours/Go {}; ours {} 1.5 RTT",
            ratio(ours, go),
            if ours <= 1.5 * rtt { "≤" } else { "> (over)" }
        );
    }
}

fn main() {
    // The peers first: their peak memory is each child's `ru_maxrss`, which on Linux starts
    // from this process's resident size when the child is forked, so it is measured while this
    // process is small. Then the pushes, so that the installed recorder holds only the pushed
    // series (and the lifecycle metrics) when they are measured.
    type Part = (&'static str, fn(&mut Criterion));
    let parts: [Part; 11] = [
        ("peers", peers),
        ("exit_cost", exit_cost),
        ("push", render_and_push),
        ("record", record),
        ("histograms", histograms),
        ("init", init),
        ("fresh_process", fresh_process),
        ("targets", targets),
        ("remote_write", remote_write),
        ("gzip", gzip),
        ("memory", memory),
    ];
    let only = std::env::var("PUSH_BENCH_ONLY").ok();
    let only: Option<Vec<&str>> = only
        .as_deref()
        .map(|v| v.split(',').map(str::trim).collect());
    if let Some(names) = &only {
        for name in names {
            assert!(
                parts.iter().any(|(part, _)| part == name),
                "PUSH_BENCH_ONLY: no part {name:?}; the parts are {:?}",
                parts.map(|(part, _)| part)
            );
        }
    }
    let mut criterion = Criterion::default().configure_from_args();
    for (name, part) in parts {
        if only.as_ref().is_none_or(|names| names.contains(&name)) {
            part(&mut criterion);
        }
    }
    criterion.final_summary();
    // Statics are not dropped: stop the shared gateway here.
    if let Some((gw, _)) = INSTALLED.get() {
        if let Ok(mut gw) = gw.lock() {
            gw.kill();
        }
    }
}
