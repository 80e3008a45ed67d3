//! The peer the benchmarks compare with: the `prometheus` crate, recording the same series.
//! Shared by `benches/push.rs` and the test jobs (`tests/jobs`).

/// A `prometheus` registry holding `n` counter series `bench_series_total{series="<i>"}`,
/// as the benchmark jobs record them with this crate.
pub fn prometheus_registry(n: usize) -> prometheus::Registry {
    let registry = prometheus::Registry::new();
    let counters = prometheus::IntCounterVec::new(
        prometheus::Opts::new("bench_series_total", "bench series"),
        &["series"],
    )
    .unwrap();
    registry.register(Box::new(counters.clone())).unwrap();
    for i in 0..n {
        counters.with_label_values(&[&i.to_string()]).inc();
    }
    registry
}
