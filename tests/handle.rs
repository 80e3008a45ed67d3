//! The guard and handle in one process: render, flush, delete, shutdown, and what comes after.

mod common;

use std::time::Duration;

use common::*;
use metrics_exporter_pushgateway::{InitError, PushError, PushgatewayBuilder, SignalHandling};

#[test]
fn render_flush_delete_shutdown() {
    let gw = Pushgateway::start();
    assert!(metrics_exporter_pushgateway::handle().is_none());
    let builder = || {
        PushgatewayBuilder::new(gw.url.clone())
            .job("in-process")
            .grouping_label("instance", "a")
            .global_label("service", "svc")
            .interval(Duration::ZERO)
            .signals(SignalHandling::Ignore)
    };
    let guard = builder().install().expect("install");
    let handle = metrics_exporter_pushgateway::handle().expect("global handle");

    metrics::counter!("records_total").increment(3);
    let text = guard.render();
    assert!(
        text.contains("records_total{service=\"svc\"} 3\n"),
        "{text}"
    );
    assert!(
        text.contains("batch_job_outcome{service=\"svc\",outcome=\"running\"} 1\n"),
        "{text}"
    );

    let report = handle.flush().expect("flush");
    assert_eq!(report.status(), Some(200));
    assert_eq!(report.attempts(), 1);
    assert!(report.body_bytes() > 100);
    let labels = [("job", "in-process"), ("instance", "a")];
    let group = gw.group(&labels).expect("group after flush");
    assert_eq!(group.value("records_total", &[("service", "svc")]), 3.0);

    // One recorder per process.
    let second = builder().install().unwrap_err();
    assert!(
        matches!(second, InitError::RecorderAlreadyInstalled),
        "{second}"
    );

    let report = guard.delete().expect("delete");
    assert_eq!(report.status(), Some(202));
    assert!(gw.group(&labels).is_none());

    metrics::counter!("records_total").increment(1);
    let report = guard.shutdown().expect("final push");
    assert_eq!(report.status(), Some(200));
    let group = gw.group(&labels).expect("group after the final push");
    assert_eq!(group.value("records_total", &[("service", "svc")]), 4.0);
    assert_eq!(
        group.value("batch_job_outcome", &[("outcome", "success")]),
        1.0
    );

    // After the final push, pushes are refused and rendering still works.
    assert!(matches!(handle.flush(), Err(PushError::ShutDown)));
    assert!(handle
        .render()
        .contains("records_total{service=\"svc\"} 4\n"));
}
