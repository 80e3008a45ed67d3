//! `PushHandle::catalog()` of a recorder holding 5,000, 20,000 and 50,000 metric names (one
//! series each, every name described), in one process with the exporter installed (a textfile
//! target in a temporary directory, no interval push). The names are recorded once per size,
//! growing, so each size measures the catalog of all names recorded so far.
//!
//! `cargo bench --bench catalog`; needs no server.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode};
use metrics_exporter_pushgateway::{PushgatewayBuilder, SignalHandling, Target};

const SIZES: [usize; 3] = [5_000, 20_000, 50_000];

fn catalog(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let guard = PushgatewayBuilder::with_targets([Target::textfile(dir.path())])
        .job("bench_catalog")
        .interval(Duration::ZERO)
        .signals(SignalHandling::Ignore)
        .install()
        .expect("install");
    let mut group = c.benchmark_group("catalog");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(10));
    let mut recorded = 0;
    for n in SIZES {
        for i in recorded..n {
            let name = format!("bench_catalog_{i:06}_total");
            metrics::describe_counter!(name.clone(), metrics::Unit::Count, "A counter.");
            metrics::counter!(name, "kind" => "a").increment(1);
        }
        recorded = n;
        assert!(guard.catalog().metrics().len() >= n);
        group.bench_with_input(BenchmarkId::new("names", n), &n, |b, _| {
            b.iter(|| guard.catalog())
        });
    }
    group.finish();
    drop(guard);
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    catalog(&mut criterion);
    criterion.final_summary();
}
