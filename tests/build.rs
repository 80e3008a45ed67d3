//! `PushgatewayBuilder::build()`: the recorder and the guard, nothing installed process-wide.
//! The recorder is used with `metrics::with_local_recorder`, through `metrics-util` layers,
//! or installed by the job itself; the guard's final push delivers what it recorded, read
//! back from the real Pushgateway.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use metrics_exporter_pushgateway::{PushgatewayBuilder, SignalHandling};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::layers::FanoutBuilder;

/// A builder for `job` at `gw`: no interval pushes, no lifecycle or self metrics, so that the
/// group holds only what the test records.
fn builder(gw: &Pushgateway, job: &str) -> PushgatewayBuilder {
    PushgatewayBuilder::new(gw.url.clone())
        .job(job)
        .interval(Duration::ZERO)
        .lifecycle_metrics(false)
        .self_metrics(false)
        .signals(SignalHandling::Ignore)
}

/// The metric names of `group`, without the gateway's own `push_time_seconds` and
/// `push_failure_time_seconds`.
fn names(group: &Group) -> BTreeSet<String> {
    group
        .0
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| {
            !matches!(
                k.as_str(),
                "labels"
                    | "last_push_successful"
                    | "push_time_seconds"
                    | "push_failure_time_seconds"
            )
        })
        .cloned()
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

#[test]
fn a_prefixed_recorder_installed_by_the_job_pushes_prefixed_names_on_drop() {
    let gw = Pushgateway::start();
    let (out, _) = run_job(
        false,
        "prefix-layer",
        "prefixed",
        &[],
        &[
            ("PUSHGATEWAY_URL", &gw.url),
            ("PUSHGATEWAY_INTERVAL", "0"),
            ("PUSHGATEWAY_SELF_METRICS", "0"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let group = gw.job("prefixed");
    assert_eq!(
        group.value("app_records_total", &[]),
        500.0,
        "{:#}",
        group.0
    );
    assert_eq!(
        group.value("app_parse_errors_total", &[("kind", "json")]),
        7.0
    );
    assert_eq!(group.value("app_queue_depth", &[]), 42.5);
    let (count, sum, _) = group.histogram("app_record_seconds");
    assert_eq!((count, sum), (3.0, 4.203));
    assert!(!group.has("records_total"), "{:#}", group.0);
}

#[test]
fn with_local_recorder_records_exactly_what_the_final_push_delivers() {
    let gw = Pushgateway::start();
    let (recorder, guard) = builder(&gw, "local").build().expect("build");
    // Nothing installed process-wide: no handle, no global recorder.
    assert!(metrics_exporter_pushgateway::handle().is_none());
    metrics::counter!("outside_total").increment(1);
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("local_total", "kind" => "a").increment(5);
        metrics::gauge!("local_depth").set(2.5);
        metrics::histogram!("local_seconds").record(0.25);
        metrics::histogram!("local_seconds").record(1.5);
    });
    metrics::counter!("outside_total").increment(1);
    // The guard is a handle too (Deref): what it renders is what was recorded.
    let handle: &metrics_exporter_pushgateway::PushHandle = &guard;
    assert!(
        handle.render().contains("local_depth 2.5"),
        "{}",
        handle.render()
    );
    let report = guard.shutdown().expect("final push");
    assert!(report.failed_targets().next().is_none(), "{report:?}");
    let group = gw.job("local");
    assert_eq!(
        names(&group),
        set(&["local_total", "local_depth", "local_seconds"]),
        "{:#}",
        group.0
    );
    assert_eq!(group.value("local_total", &[("kind", "a")]), 5.0);
    assert_eq!(group.value("local_depth", &[]), 2.5);
    let (count, sum, _) = group.histogram("local_seconds");
    assert_eq!((count, sum), (2.0, 1.75));
}

#[test]
fn a_fanout_with_a_debugging_recorder_both_see_the_same_values() {
    let gw = Pushgateway::start();
    let (recorder, guard) = builder(&gw, "fanout").build().expect("build");
    let debugging = DebuggingRecorder::new();
    let snapshotter = debugging.snapshotter();
    let fanout = FanoutBuilder::default()
        .add_recorder(recorder)
        .add_recorder(debugging)
        .build();
    metrics::with_local_recorder(&fanout, || {
        metrics::counter!("fanned_total").increment(4);
        metrics::gauge!("fanned_depth").set(-3.0);
        metrics::histogram!("fanned_seconds").record(0.5);
    });
    drop(guard);

    let seen: Vec<(String, DebugValue)> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| (key.key().name().to_owned(), value))
        .collect();
    let debug = |name: &str| {
        seen.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("{name} not in {seen:?}"))
    };
    let group = gw.job("fanout");
    assert_eq!(
        names(&group),
        set(&["fanned_total", "fanned_depth", "fanned_seconds"])
    );
    assert_eq!(debug("fanned_total"), &DebugValue::Counter(4));
    assert_eq!(group.value("fanned_total", &[]), 4.0);
    assert_eq!(debug("fanned_depth"), &DebugValue::Gauge((-3.0).into()));
    assert_eq!(group.value("fanned_depth", &[]), -3.0);
    assert_eq!(
        debug("fanned_seconds"),
        &DebugValue::Histogram(vec![0.5.into()])
    );
    assert_eq!(group.histogram("fanned_seconds").0, 1.0);
    assert_eq!(group.histogram("fanned_seconds").1, 0.5);
}

#[test]
fn two_builds_in_one_process_are_two_independent_exporters() {
    let gw = Pushgateway::start();
    let (first, first_guard) = builder(&gw, "first").build().expect("first build");
    let (second, second_guard) = builder(&gw, "second").build().expect("second build");
    metrics::with_local_recorder(&first, || {
        metrics::counter!("shared_total").increment(1);
        metrics::counter!("first_only_total").increment(10);
    });
    metrics::with_local_recorder(&second, || {
        metrics::counter!("shared_total").increment(2);
        metrics::gauge!("second_only").set(20.0);
    });
    drop(first_guard);
    drop(second_guard);
    let first = gw.job("first");
    let second = gw.job("second");
    assert_eq!(names(&first), set(&["shared_total", "first_only_total"]));
    assert_eq!(first.value("shared_total", &[]), 1.0);
    assert_eq!(first.value("first_only_total", &[]), 10.0);
    assert_eq!(names(&second), set(&["shared_total", "second_only"]));
    assert_eq!(second.value("shared_total", &[]), 2.0);
    assert_eq!(second.value("second_only", &[]), 20.0);
}

/// Starts the `build-signal` job `job` (hooks installed or not), sends it SIGTERM and returns
/// how it ended.
#[cfg(unix)]
fn sigterm_after_build(gw: &Pushgateway, job: &str, hooks: bool) -> std::process::ExitStatus {
    let mut env = vec![
        ("PUSHGATEWAY_URL", gw.url.as_str()),
        ("PUSHGATEWAY_INTERVAL", "0"),
    ];
    if hooks {
        env.push(("TEST_INSTALL_HOOKS", "1"));
    }
    let mut child = start_job(false, "build-signal", job, &env).child;
    // SAFETY: a signal to the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap()
}

#[cfg(unix)]
#[test]
fn build_installs_no_signal_handler_and_install_hooks_brings_the_final_push_back() {
    use std::os::unix::process::ExitStatusExt as _;
    let gw = Pushgateway::start();
    // Without the hooks, SIGTERM keeps its default action: death, no final push.
    let status = sigterm_after_build(&gw, "bare", false);
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    assert!(gw.group(&[("job", "bare")]).is_none(), "{:#?}", gw.groups());
    // With them, the final push of every value, then death by the same signal.
    let status = sigterm_after_build(&gw, "hooked", true);
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    assert_job_values(&gw.job("hooked"), "signal", 128 + libc::SIGTERM);
}
