//! The crate without its default features (`default-features = false`): a plain-HTTP
//! Pushgateway pusher that still pushes on every exit path, and a clear error for what needs
//! a feature (HTTPS, gzip, remote write). The test jobs are built with `--no-default-features`.

mod common;

use std::process::Command;

use common::*;

fn minimal_job(scenario: &str, job: &str, env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(job_bin_for(Build::Minimal));
    cmd.args([scenario, job]);
    with_env(&mut cmd, env);
    cmd.output().expect("run the minimal test job")
}

#[test]
fn without_default_features_a_job_pushes_to_a_gateway() {
    let gw = Pushgateway::start();
    for (job, extra) in [
        ("minimal", None),
        ("minimal-text", Some(("PUSHGATEWAY_FORMAT", "text"))),
    ] {
        let mut env = vec![("PUSHGATEWAY_URL", gw.url.as_str())];
        env.extend(extra);
        let out = minimal_job("main", job, &env);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(stderr(&out), "");
        assert_job_values(&gw.job(job), "success", 0);
    }
}

#[test]
fn without_default_features_what_needs_one_says_which() {
    // init: one line naming the feature, and the job runs on.
    let result_main = job_bin_for(Build::Minimal).with_file_name("result_main");
    let ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca.path(), "-----BEGIN CERTIFICATE-----\n").unwrap();
    let ca_path = ca.path().to_str().unwrap();
    for (var, value, expected) in [
        (
            "PUSHGATEWAY_URL",
            "https://127.0.0.1:9091",
            "https needs the crate's `tls` feature",
        ),
        (
            "PUSHGATEWAY_REMOTE_WRITE_URL",
            "http://127.0.0.1:9090/api/v1/write",
            "remote write needs the crate's `remote-write` feature",
        ),
        (
            "PUSHGATEWAY_CA_FILE",
            ca_path,
            "TLS needs the crate's `tls` feature",
        ),
    ] {
        let mut cmd = Command::new(&result_main);
        cmd.args(["ok", "needs-feature"]);
        with_env(&mut cmd, &[(var, value)]);
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{var}: {}", stderr(&out));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "work done\n");
        assert_eq!(stderr(&out).lines().count(), 1, "{var}: {}", stderr(&out));
        assert!(stderr(&out).contains(expected), "{var}: {}", stderr(&out));
    }
    // install(): the error names the setting.
    let gw = Pushgateway::start();
    let out = minimal_job(
        "flush",
        "gzip-off",
        &[("PUSHGATEWAY_URL", &gw.url), ("TEST_GZIP", "1")],
    );
    assert!(
        stderr(&out).contains(
            "install failed: invalid setting compression: gzip needs the crate's `gzip` feature"
        ),
        "{}",
        stderr(&out)
    );
    assert!(gw.groups().is_empty());
}
