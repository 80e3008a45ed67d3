//! `PUSHGATEWAY_DISABLED=1`: the recorder works, nothing is sent.

mod common;

use common::*;

#[test]
fn disabled_by_environment_records_but_never_pushes() {
    let gw = Pushgateway::start();
    // This test binary holds this one test, so changing its environment is safe.
    std::env::set_var("PUSHGATEWAY_URL", &gw.url);
    std::env::set_var("PUSHGATEWAY_DISABLED", "1");
    let guard = metrics_exporter_pushgateway::try_init("quiet").expect("init");
    metrics::counter!("records_total").increment(5);
    assert!(guard.render().contains("records_total 5\n"));
    let report = guard.flush().expect("flush is a no-op");
    assert_eq!(report.status(), None);
    assert_eq!(report.attempts(), 0);
    assert_eq!(guard.shutdown().expect("no-op").status(), None);
    assert!(gw.groups().is_empty(), "{:#?}", gw.groups());
}
