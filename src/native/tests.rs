use std::sync::Arc;

use super::*;

fn config(schema: i32, zero_threshold: f64, max_buckets: u32) -> NativeConfig {
    NativeConfig {
        schema,
        zero_threshold,
        max_buckets,
    }
}

type Buckets = Vec<(i32, u64)>;

/// The histogram read: the value, its positive and its negative buckets.
fn read(h: &NativeBuckets) -> (NativeValue, Buckets, Buckets) {
    let mut buckets = vec![(7, 7)]; // Appended to, not replaced.
    let value = h.read_into(&mut buckets);
    assert_eq!(buckets[0], (7, 7));
    (
        value,
        value.positive(&buckets).to_vec(),
        value.negative(&buckets).to_vec(),
    )
}

/// The snapshot of `registry` that a target of histogram form `target` takes (`None`: each
/// histogram in the form it was recorded in).
fn snapshot_of(
    registry: &crate::registry::Registry,
    target: Option<HistogramForm>,
) -> crate::snapshot::Snapshot {
    let view = crate::snapshot::View {
        histograms: target,
        ..crate::snapshot::View::default()
    };
    registry.snapshot(&[], &view).finish()
}

fn spans_of(buckets: &[(i32, u64)]) -> (Vec<(i32, u32)>, Vec<i64>) {
    let (mut spans, mut deltas) = (Vec::new(), Vec::new());
    spans_and_deltas(buckets, &mut spans, &mut deltas);
    (spans.iter().map(|s| (s.offset, s.length)).collect(), deltas)
}

#[test]
fn spans_and_deltas_of_the_specifications_example() {
    // The specification's "Buckets" example: -2→3, -1→5, 0→0, 1→0, 2→1, 3→0, 4→3, 5→2. Gaps
    // of one or two buckets are filled (client_golang), which gives its third form.
    let buckets = [(-2, 3), (-1, 5), (2, 1), (4, 3), (5, 2)];
    assert_eq!(
        spans_of(&buckets),
        (vec![(-2, 8)], vec![3, 2, -5, 0, 1, -1, 3, -1])
    );
    // A gap of three starts a new span.
    assert_eq!(
        spans_of(&[(0, 1), (4, 2), (5, 2), (9, 1)]),
        (vec![(0, 1), (3, 2), (3, 1)], vec![1, 1, 0, -1])
    );
    // A gap of two is filled; the first span may start below zero.
    assert_eq!(
        spans_of(&[(-10, 4), (-7, 4)]),
        (vec![(-10, 4)], vec![4, -4, 0, 4])
    );
    assert_eq!(spans_of(&[]), (vec![], vec![]));
}

#[test]
fn observations_go_to_their_buckets_at_the_default_schema() {
    let h = NativeBuckets::new(NativeConfig::default());
    assert_eq!(NativeConfig::default().schema, 3);
    for v in [1.0, 1.0, 2.0, 1.05, 3.0, -1.0, -0.001] {
        h.record(v);
    }
    let (value, positive, negative) = read(&h);
    assert_eq!(value.schema, 3);
    assert_eq!(value.count, 7);
    assert_eq!(value.zero_count, 0);
    // 1 closes bucket 0, 2 closes bucket 8; 1.05 is in (1, 2^(1/8)] = bucket 1; 3 in bucket
    // 13 (2^(13/8) = 3.08).
    assert_eq!(positive, [(0, 2), (1, 1), (8, 1), (13, 1)]);
    assert_eq!(negative, [(index::index(-0.001, 3), 1), (0, 1)]);
}

#[test]
fn zero_and_values_within_the_threshold_go_to_the_zero_bucket() {
    let h = NativeBuckets::new(NativeConfig::default());
    for v in [0.0, -0.0, 1e-40, -2.9e-39, DEFAULT_ZERO_THRESHOLD, 3e-39] {
        h.record(v);
    }
    let (value, positive, negative) = read(&h);
    assert_eq!(value.zero_count, 5);
    assert_eq!(value.zero_threshold, DEFAULT_ZERO_THRESHOLD);
    assert_eq!(value.count, 6);
    assert_eq!(positive.len(), 1);
    assert!(negative.is_empty());
    // A threshold of zero takes only zeros.
    let h = NativeBuckets::new(config(3, 0.0, 160));
    h.record(0.0);
    h.record(1e-300);
    let (value, positive, _) = read(&h);
    assert_eq!(value.zero_count, 1);
    assert_eq!(positive, [(index::index(1e-300, 3), 1)]);
}

#[test]
fn nan_is_counted_in_no_bucket_and_infinities_in_the_overflow_buckets() {
    let h = NativeBuckets::new(NativeConfig::default());
    for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, f64::MAX, 1.0] {
        h.record(v);
    }
    let (value, positive, negative) = read(&h);
    // NaN: in the count only (the specification: the count exceeds the buckets by the NaNs).
    assert_eq!(value.count, 5);
    let in_buckets: u64 = positive.iter().chain(&negative).map(|b| b.1).sum();
    assert_eq!(in_buckets + value.zero_count, 4);
    let max = index::index(f64::MAX, 3);
    assert_eq!(max, 8192);
    assert_eq!(positive, [(0, 1), (max, 1), (max + 1, 1)]);
    assert_eq!(negative, [(max + 1, 1)]);
}

#[test]
fn more_buckets_than_allowed_halve_the_resolution_until_they_fit() {
    // 20 buckets of schema 3 in a row: 1 = bucket 0 up to bucket 19.
    let h = NativeBuckets::new(config(3, DEFAULT_ZERO_THRESHOLD, 10));
    let values: Vec<f64> = (0..20).map(|i| index::upper_bound(i, 3)).collect();
    for v in &values {
        h.record(*v);
    }
    let (value, positive, _) = read(&h);
    // The 11th bucket (0 to 10) exceeds 10: schema 2, where they are 6 (0 to 5). Buckets 11
    // to 19 of schema 3 are 6 to 10 of schema 2: 11 again, so schema 1.
    assert_eq!(value.schema, 1);
    assert_eq!(value.count, 20);
    assert!(positive.len() <= 10, "{positive:?}");
    // Every count is where the value belongs at the schema reached.
    let mut expected: Vec<(i32, u64)> = Vec::new();
    for v in &values {
        let i = index::index(*v, value.schema);
        match expected.last_mut() {
            Some(last) if last.0 == i => last.1 += 1,
            _ => expected.push((i, 1)),
        }
    }
    assert_eq!(positive, expected);

    // Widely spread values halve it several times; never below -4.
    let h = NativeBuckets::new(config(3, DEFAULT_ZERO_THRESHOLD, 4));
    for e in -300..300 {
        h.record(10f64.powi(e));
        h.record(-(10f64.powi(e)));
    }
    let (value, positive, negative) = read(&h);
    assert_eq!(value.schema, -4);
    assert_eq!(value.count, 1200);
    let total: u64 = positive.iter().chain(&negative).map(|b| b.1).sum();
    // 10^-39 and below are within the zero threshold (2^-128).
    assert_eq!(value.zero_count, 2 * 262);
    assert_eq!(total + value.zero_count, 1200);
    for (i, _) in positive.iter().chain(&negative) {
        assert!(index::upper_bound(*i, -4) > 0.0);
    }
}

#[test]
fn the_resolution_is_as_client_golang_halving_one_schema_at_a_time() {
    // client_golang halves once each time the limit is exceeded. With the default 160:
    // buckets 0 to 160 of schema 3 (161) become 0 to 80 of schema 2; buckets up to 320 of
    // schema 3 are up to 160 of schema 2 (161 again), which become 0 to 80 of schema 1.
    let h = NativeBuckets::new(NativeConfig::default());
    for i in 0..=320 {
        h.record(index::upper_bound(i, 3));
    }
    let (value, positive, _) = read(&h);
    assert_eq!(value.schema, 1);
    assert_eq!(positive.len(), 81);
    assert_eq!(value.count, 321);
}

#[test]
fn tables_grow_without_losing_counts_and_stay_bounded() {
    let h = NativeBuckets::new(NativeConfig::default());
    for round in 0..3 {
        for i in 0..150 {
            h.record(index::upper_bound(i, 3));
        }
        let (value, positive, _) = read(&h);
        assert_eq!(value.schema, 3);
        assert_eq!(positive.len(), 150);
        assert!(positive.iter().all(|b| b.1 == round + 1));
    }
    let largest = largest_capacity(160);
    assert_eq!(largest, 512);
    // Tables are taken in order: those set are the first ones, no gap.
    let tables = h.tables.iter().filter(|t| t.get().is_some()).count();
    assert!(h.tables[..tables].iter().all(|t| t.get().is_some()));
    assert!(tables < h.tables.len(), "{tables} of {}", h.tables.len());
    let slots: usize = h
        .tables
        .iter()
        .filter_map(OnceLock::get)
        .map(|t| t.slots.len())
        .sum();
    assert!(slots <= 2 * 256, "{slots}");
}

#[test]
fn concurrent_recordings_are_all_counted_through_every_change() {
    let h = Arc::new(NativeBuckets::new(config(8, DEFAULT_ZERO_THRESHOLD, 20)));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let h = Arc::clone(&h);
            std::thread::spawn(move || {
                for i in 0..20_000u32 {
                    let v = f64::from(i % 1000 + 1) * if t % 2 == 0 { 1.0 } else { -0.01 };
                    h.record(v);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let (value, positive, negative) = read(&h);
    assert_eq!(value.count, 80_000);
    let total: u64 = positive.iter().chain(&negative).map(|b| b.1).sum();
    assert_eq!(total, 80_000);
    assert!(value.schema < 8);
    // Each value is counted in its bucket at the final schema.
    let check = NativeBuckets::new(config(value.schema, DEFAULT_ZERO_THRESHOLD, 1000));
    for t in 0..4 {
        for i in 0..20_000u32 {
            check.record(f64::from(i % 1000 + 1) * if t % 2 == 0 { 1.0 } else { -0.01 });
        }
    }
    let (_, p, n) = read(&check);
    assert_eq!((positive, negative), (p, n));
}

#[test]
fn the_classic_equivalent_counts_at_the_bucket_bounds() {
    let h = NativeBuckets::new(config(0, 0.001, 160));
    for v in [
        -3.0,
        -1.0,
        0.0,
        0.0005,
        1.0,
        1.5,
        3.0,
        f64::INFINITY,
        f64::NAN,
    ] {
        h.record(v);
    }
    let mut buckets = Vec::new();
    let value = h.read_into(&mut buckets);
    let classic: Vec<(f64, u64)> = classic_equivalent(&value, &buckets).collect();
    assert_eq!(
        classic,
        [
            // -3 is in [-4, -2): bound -2; -1 in [-1, -0.5): bound -0.5.
            (-2.0, 1),
            (-0.5, 2),
            (0.001, 4),
            (1.0, 5),
            (2.0, 6),
            (4.0, 7),
            // +Inf's bucket and the NaN are in +Inf only.
            (f64::INFINITY, 9),
        ]
    );
}

mod forms {
    use std::sync::Arc;

    use super::snapshot_of;
    use crate::native::HistogramForm;
    use crate::registry::{HistogramSettings, Installed, Matcher, Registry};
    use crate::snapshot::Snapshot;

    fn registry(settings: HistogramSettings) -> Arc<Registry> {
        let registry = Arc::new(Registry::with_histograms(&[1.0, 2.0], &[], &settings, &[]));
        metrics::with_local_recorder(&Installed(Arc::clone(&registry)), || {
            for v in [0.5, 1.0, 1.5, 3.0] {
                metrics::histogram!("n_seconds").record(v);
                metrics::histogram!("c_seconds").record(v);
            }
        });
        registry
    }

    /// A family's name, whether it is sent native, classic, and its classic buckets.
    type Form = (String, bool, bool, Vec<(f64, u64)>);

    /// Per family: whether it is sent native, classic, and its classic buckets.
    fn forms(snapshot: &Snapshot) -> Vec<Form> {
        snapshot
            .families()
            .iter()
            .map(|family| {
                let series = snapshot.series(family).next().unwrap();
                (
                    family.name.clone(),
                    series.native().is_some(),
                    series.classic(),
                    series.classic_buckets().collect(),
                )
            })
            .collect()
    }

    fn settings(form: HistogramForm) -> HistogramSettings {
        HistogramSettings {
            for_metric: vec![(Matcher::Prefix("n_".into()), form)],
            ..HistogramSettings::default()
        }
    }

    const CLASSIC: [(f64, u64); 3] = [(1.0, 2), (2.0, 3), (f64::INFINITY, 4)];

    #[test]
    fn classic_is_the_default() {
        let registry = registry(HistogramSettings::default());
        let snapshot = registry.take();
        for (_, native, classic, buckets) in forms(&snapshot) {
            assert!(!native && classic);
            assert_eq!(buckets, CLASSIC);
        }
    }

    #[test]
    fn a_matcher_makes_a_histogram_native_and_a_classic_target_gets_its_classic_equivalent() {
        let registry = registry(settings(HistogramForm::Native));
        let snapshot = registry.take();
        let forms = forms(&snapshot);
        assert_eq!(
            forms[0],
            ("c_seconds".into(), false, true, CLASSIC.to_vec())
        );
        let (name, native, classic, buckets) = &forms[1];
        assert_eq!(
            (name.as_str(), *native, *classic),
            ("n_seconds", true, false)
        );
        // The classic equivalent: 0.5 and 1 close buckets -8 and 0 of schema 3, 1.5 is in
        // bucket 5 (2^(5/8) = 1.54), 3 in bucket 13.
        let bound = |i| crate::native::upper_bound(i, 3);
        assert_eq!(
            buckets,
            &[
                (bound(-8), 1),
                (bound(0), 2),
                (bound(5), 3),
                (bound(13), 4),
                (f64::INFINITY, 4)
            ]
        );
        let family = &snapshot.families()[1];
        let series = snapshot.series(family).next().unwrap();
        let native = series.native().unwrap();
        assert_eq!(native.value.count, 4);
        assert_eq!(native.positive(), [(-8, 1), (0, 1), (5, 1), (13, 1)]);
        match series.value() {
            crate::snapshot::Value::Histogram { sum, .. } => assert_eq!(sum, 6.0),
            other => panic!("{other:?}"),
        }
        // Without native histograms, the count is in `+Inf` for the encoders of today.
        assert_eq!(series.bucket_counts(), [4]);

        let forms_classic = self::forms(&snapshot_of(&registry, Some(HistogramForm::Classic)));
        assert!(!forms_classic[1].1);
        assert!(forms_classic[1].2);
        assert_eq!(&forms_classic[1].3, buckets);
    }

    #[test]
    fn both_is_sent_as_both_and_each_target_takes_its_part() {
        let registry = registry(settings(HistogramForm::Both));
        for (target, native, classic) in [
            (None, true, true),
            (Some(HistogramForm::Both), true, true),
            (Some(HistogramForm::Classic), false, true),
            (Some(HistogramForm::Native), true, false),
        ] {
            let snapshot = snapshot_of(&registry, target);
            let forms = forms(&snapshot);
            assert_eq!(forms[1].0, "n_seconds");
            assert_eq!((forms[1].1, forms[1].2), (native, classic), "{target:?}");
            if classic {
                assert_eq!(forms[1].3, CLASSIC, "{target:?}");
            }
            // A classic histogram stays classic for every target.
            assert_eq!(forms[0].3, CLASSIC);
            assert!(!forms[0].1 && forms[0].2);
        }
    }

    #[test]
    fn the_form_is_read_from_the_environment_and_the_builder() {
        use crate::PushgatewayBuilder;
        let from = |value: &str| {
            PushgatewayBuilder::from_lookup(|name| {
                (name == crate::env::PUSHGATEWAY_HISTOGRAMS).then(|| value.into())
            })
        };
        assert_eq!(
            from("native").unwrap().histograms.form,
            HistogramForm::Native
        );
        assert_eq!(from("Both").unwrap().histograms.form, HistogramForm::Both);
        assert_eq!(
            from("classic").unwrap().histograms.form,
            HistogramForm::Classic
        );
        let error = from("sparse").unwrap_err().to_string();
        assert!(error.contains("PUSHGATEWAY_HISTOGRAMS"), "{error}");
        assert!(error.contains("classic, native or both"), "{error}");
        let b = PushgatewayBuilder::new("http://127.0.0.1:9091")
            .native_histogram_bucket_factor(1.01)
            .native_histogram_max_buckets(50)
            .native_histogram_zero_threshold(0.0);
        assert_eq!(
            b.histograms.native,
            crate::native::NativeConfig {
                schema: 7,
                zero_threshold: 0.0,
                max_buckets: 50
            }
        );
        assert_eq!(
            PushgatewayBuilder::new("x").histograms.native,
            crate::native::NativeConfig::default()
        );
        for bad in [
            PushgatewayBuilder::new("x").native_histogram_bucket_factor(1.0),
            PushgatewayBuilder::new("x").native_histogram_bucket_factor(f64::NAN),
            PushgatewayBuilder::new("x").native_histogram_zero_threshold(-1.0),
            PushgatewayBuilder::new("x").native_histogram_max_buckets(0),
            PushgatewayBuilder::new("x").native_histogram_max_buckets(4097),
        ] {
            assert!(bad.check_histograms().is_err());
        }
        let target = crate::Target::remote_write("http://127.0.0.1:8428/api/v1/write")
            .histograms(HistogramForm::Classic);
        let view = PushgatewayBuilder::new("x").view(&target, &[]).unwrap();
        assert_eq!(view.histograms, Some(HistogramForm::Classic));
    }
}

/// The encoders, from the one snapshot.
mod encoders {
    use std::sync::Arc;

    use prost::Message as _;

    use super::snapshot_of;
    use crate::native::HistogramForm;
    use crate::protocol::protobuf::{self, MetricFamily};
    use crate::protocol::remote_write::{requests, SentSeries, STALE_NAN};
    use crate::registry::{HistogramSettings, Installed, Registry};
    use crate::snapshot::Snapshot;

    fn registry(form: HistogramForm) -> Arc<Registry> {
        let settings = HistogramSettings {
            form,
            ..HistogramSettings::default()
        };
        let registry = Arc::new(Registry::with_histograms(&[1.0], &[], &settings, &[]));
        metrics::with_local_recorder(&Installed(Arc::clone(&registry)), || {
            for v in [-0.5, 0.0, 1.0, 1.05, 1.06, 3.0] {
                metrics::histogram!("h_seconds").record(v);
            }
        });
        registry
    }

    fn histogram_of(snapshot: &Snapshot) -> protobuf::Histogram {
        let mut body = Vec::new();
        protobuf::encode(snapshot, &mut body, &mut Vec::new());
        let family = MetricFamily::decode_length_delimited(&body[..]).unwrap();
        family.metric[0].histogram.clone().unwrap()
    }

    fn spans(spans: &[protobuf::BucketSpan]) -> Vec<(i32, u32)> {
        spans
            .iter()
            .map(|s| (s.offset.unwrap(), s.length.unwrap()))
            .collect()
    }

    #[test]
    fn the_pushgateway_protobuf_carries_schema_zero_bucket_spans_and_deltas() {
        let h = histogram_of(&snapshot_of(&registry(HistogramForm::Native), None));
        assert_eq!(h.sample_count, Some(6));
        assert_eq!(h.sample_sum, Some(5.61));
        assert_eq!(h.schema, Some(3));
        assert_eq!(
            h.zero_threshold,
            Some(crate::native::DEFAULT_ZERO_THRESHOLD)
        );
        assert_eq!(h.zero_count, Some(1));
        // 1 closes bucket 0; 1.05 and 1.06 are in bucket 1; 3 in bucket 13.
        assert_eq!(spans(&h.positive_span), [(0, 2), (11, 1)]);
        assert_eq!(h.positive_delta, [1, 1, -1]);
        // -0.5 closes negative bucket -8.
        assert_eq!(spans(&h.negative_span), [(-8, 1)]);
        assert_eq!(h.negative_delta, [1]);
        // No classic buckets: a native-only histogram.
        assert!(h.bucket.is_empty());
    }

    #[test]
    fn both_carries_classic_and_native_buckets_and_a_classic_target_the_equivalent() {
        let both = registry(HistogramForm::Both);
        let h = histogram_of(&snapshot_of(&both, None));
        let buckets: Vec<(f64, u64)> = h
            .bucket
            .iter()
            .map(|b| (b.upper_bound.unwrap(), b.cumulative_count.unwrap()))
            .collect();
        assert_eq!(buckets, [(1.0, 3), (f64::INFINITY, 6)]);
        assert_eq!(h.schema, Some(3));
        assert_eq!(h.sample_count, Some(6));
        // The sum is added once.
        assert_eq!(h.sample_sum, Some(5.61));
        // A target set to native: no classic buckets.
        let h = histogram_of(&snapshot_of(&both, Some(HistogramForm::Native)));
        assert!(h.bucket.is_empty());
        assert_eq!(h.schema, Some(3));
        // A target set to classic gets a native-only histogram's classic equivalent.
        let native = registry(HistogramForm::Native);
        let h = histogram_of(&snapshot_of(&native, Some(HistogramForm::Classic)));
        assert_eq!(h.schema, None);
        assert!(h.positive_span.is_empty());
        let bounds: Vec<f64> = h.bucket.iter().map(|b| b.upper_bound.unwrap()).collect();
        let b = |i| crate::native::upper_bound(i, 3);
        assert_eq!(
            bounds,
            [
                -b(-9),
                crate::native::DEFAULT_ZERO_THRESHOLD,
                b(0),
                b(1),
                b(13),
                f64::INFINITY
            ]
        );
        let counts: Vec<u64> = h
            .bucket
            .iter()
            .map(|b| b.cumulative_count.unwrap())
            .collect();
        assert_eq!(counts, [1, 2, 3, 5, 6, 6]);
        assert_eq!(h.sample_count, Some(6));
    }

    #[test]
    fn an_empty_native_histogram_has_a_no_op_span() {
        let settings = HistogramSettings {
            form: HistogramForm::Native,
            ..HistogramSettings::default()
        };
        let registry = Arc::new(Registry::with_histograms(&[1.0], &[], &settings, &[]));
        metrics::with_local_recorder(&Installed(Arc::clone(&registry)), || {
            let _ = metrics::histogram!("h_seconds");
            metrics::histogram!("nan_seconds").record(f64::NAN);
        });
        let snapshot = registry.take();
        let mut body = Vec::new();
        protobuf::encode(&snapshot, &mut body, &mut Vec::new());
        let mut buf = &body[..];
        for name in ["h_seconds", "nan_seconds"] {
            let family = MetricFamily::decode_length_delimited(&mut buf).unwrap();
            assert_eq!(family.name.as_deref(), Some(name));
            let h = family.metric[0].histogram.clone().unwrap();
            assert_eq!(spans(&h.positive_span), [(0, 0)]);
            assert!(h.positive_delta.is_empty());
        }
    }

    #[test]
    fn text_bodies_carry_a_native_histogram_as_its_classic_equivalent() {
        let snapshot = snapshot_of(&registry(HistogramForm::Native), None);
        let text = crate::protocol::text::text_string(&snapshot);
        let b = |i| crate::native::upper_bound(i, 3);
        let expected = format!(
            "# TYPE h_seconds histogram\n\
             h_seconds_bucket{{le=\"{}\"}} 1\n\
             h_seconds_bucket{{le=\"{}\"}} 2\n\
             h_seconds_bucket{{le=\"1\"}} 3\n\
             h_seconds_bucket{{le=\"{}\"}} 5\n\
             h_seconds_bucket{{le=\"{}\"}} 6\n\
             h_seconds_bucket{{le=\"+Inf\"}} 6\n\
             h_seconds_sum 5.61\n\
             h_seconds_count 6\n\n",
            -b(-9),
            crate::native::DEFAULT_ZERO_THRESHOLD,
            b(1),
            b(13),
        );
        assert_eq!(text, expected);
        // Both: the classic buckets alone.
        let text = crate::protocol::text::text_string(&registry(HistogramForm::Both).take());
        assert!(text.contains("h_seconds_bucket{le=\"1\"} 3\nh_seconds_bucket{le=\"+Inf\"} 6\n"));
    }

    #[test]
    fn remote_write_sends_one_native_series_and_marks_it_stale_as_a_histogram() {
        let registry = registry(HistogramForm::Native);
        let mut sent = SentSeries::default();
        let all = requests(&snapshot_of(&registry, None), &[], 1000, 100, &mut sent);
        sent.taken();
        let series: Vec<_> = all.iter().flat_map(|r| &r.timeseries).collect();
        assert_eq!(series.len(), 1);
        let s = series[0];
        assert!(s.samples.is_empty());
        assert_eq!(s.labels[0].value, "h_seconds");
        let h = &s.histograms[0];
        assert_eq!((h.count_int, h.sum, h.schema), (6, 5.61, 3));
        assert_eq!(h.zero_count_int, 1);
        assert_eq!(h.positive_deltas, [1, 1, -1]);
        assert_eq!(h.positive_spans.len(), 2);
        assert_eq!((h.negative_spans[0].offset, h.negative_deltas[0]), (-8, 1));
        assert_eq!(h.timestamp, 1000);
        // The series is gone from the next push: its stale marker is a histogram whose sum
        // is the stale NaN.
        let empty = Registry::new(&[1.0], &[], &[]).take();
        let all = requests(&empty, &[], 2000, 100, &mut sent);
        let series: Vec<_> = all.iter().flat_map(|r| &r.timeseries).collect();
        assert_eq!(series.len(), 1);
        let h = &series[0].histograms[0];
        assert_eq!(h.sum.to_bits(), STALE_NAN);
        assert_eq!((h.count_int, h.timestamp), (0, 2000));
        // A receiver set to classic gets the classic equivalent as samples.
        let mut sent = SentSeries::default();
        let all = requests(
            &snapshot_of(&registry, Some(HistogramForm::Classic)),
            &[],
            1000,
            100,
            &mut sent,
        );
        let series: Vec<_> = all.iter().flat_map(|r| &r.timeseries).collect();
        assert_eq!(series.len(), 6 + 2);
        assert!(series.iter().all(|s| s.histograms.is_empty()));
    }
}

/// The catalog's type and the dashboard's queries of a native-only histogram.
mod catalog {
    use std::sync::Arc;

    use crate::native::HistogramForm;
    use crate::registry::{HistogramSettings, Installed, Registry};
    use crate::{Catalog, MetricType};

    fn catalog(form: HistogramForm) -> Catalog {
        let settings = HistogramSettings {
            form,
            ..HistogramSettings::default()
        };
        let registry = Arc::new(Registry::with_histograms(&[1.0], &[], &settings, &[]));
        metrics::with_local_recorder(&Installed(Arc::clone(&registry)), || {
            metrics::histogram!("fetch_seconds").record(0.5);
        });
        Catalog::build(&registry.take(), registry.described())
    }

    #[test]
    fn a_native_only_histogram_is_a_native_histogram_in_the_catalog() {
        let types = |form| catalog(form).metrics()[0].metric_type;
        assert_eq!(types(HistogramForm::Native), MetricType::NativeHistogram);
        assert_eq!(types(HistogramForm::Both), MetricType::Histogram);
        assert_eq!(types(HistogramForm::Classic), MetricType::Histogram);
        let markdown = catalog(HistogramForm::Native).to_markdown();
        assert!(markdown.contains("native_histogram"), "{markdown}");
        assert_eq!(
            Catalog::from_markdown(&markdown).unwrap(),
            catalog(HistogramForm::Native)
        );
    }

    #[cfg(feature = "serde")]
    #[test]
    fn the_dashboard_queries_a_native_histogram_without_bucket_or_le() {
        let options = crate::DashboardOptions::new("Ingester");
        let dashboard = catalog(HistogramForm::Native)
            .grafana_dashboard(&options)
            .unwrap()
            .to_string();
        assert!(
            dashboard.contains("histogram_quantile(0.9, sum(rate(fetch_seconds{"),
            "{dashboard}"
        );
        assert!(!dashboard.contains("fetch_seconds_bucket"), "{dashboard}");
        let json = catalog(HistogramForm::Native).to_json();
        assert!(json.contains("\"native_histogram\""), "{json}");
        assert_eq!(
            Catalog::from_json(&json).unwrap(),
            catalog(HistogramForm::Native)
        );
    }
}
