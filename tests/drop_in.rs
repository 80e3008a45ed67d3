//! Drop-in use as people write their `main`: a `main` returning `Result` through
//! `PushGuard::finish`, `init` that never breaks the job, and signals left as the process
//! found them. Against a real Pushgateway.

mod common;

use std::process::{Command, Output};

use common::*;

/// Runs `result_main <mode> <job>` with `env` and returns its output.
fn result_main(mode: &str, job: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(job_bin_named("result_main"));
    cmd.args([mode, job]);
    with_env(&mut cmd, env);
    cmd.output().expect("run result_main")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn finish_reports_ok_as_success() {
    let gw = Pushgateway::start();
    let out = result_main("ok", "finish-ok", &[("PUSHGATEWAY_URL", &gw.url)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    let group = gw.job("finish-ok");
    assert_eq!(group.value("records_total", &[]), 500.0);
    assert_eq!(group.value("queue_depth", &[]), 42.5);
    assert_eq!(
        group.value("batch_job_outcome", &[("outcome", "success")]),
        1.0
    );
    assert_eq!(group.value("batch_job_exit_code", &[]), 0.0);
    assert!(group.has("batch_job_last_success_time_seconds"));
}

#[test]
fn finish_reports_err_as_error_and_keeps_the_last_success() {
    let gw = Pushgateway::start();
    let env = [("PUSHGATEWAY_URL", gw.url.as_str())];
    let ok = result_main("ok", "finish-err", &env);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    let last_success = gw
        .job("finish-err")
        .value("batch_job_last_success_time_seconds", &[]);

    let out = result_main("err", "finish-err", &env);
    // What Rust's `main` does with an `Err`: exit status 1, the error's Debug on stderr.
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "Error: JobError(\"3 records could not be parsed\")\n"
    );
    let group = gw.job("finish-err");
    assert_eq!(group.value("records_total", &[]), 500.0);
    assert_eq!(
        group.value("batch_job_outcome", &[("outcome", "error")]),
        1.0
    );
    assert_eq!(group.samples("batch_job_outcome").len(), 1);
    assert_eq!(group.value("batch_job_exit_code", &[]), 1.0);
    // The failed run did not replace the last success of the run before it.
    assert_eq!(
        group.value("batch_job_last_success_time_seconds", &[]),
        last_success
    );
}

#[test]
fn a_panic_inside_the_work_is_pushed_as_panic() {
    let gw = Pushgateway::start();
    let out = result_main("panic", "finish-panic", &[("PUSHGATEWAY_URL", &gw.url)]);
    assert_eq!(out.status.code(), Some(101));
    assert!(stderr(&out).contains("boom inside run"), "{}", stderr(&out));
    let group = gw.job("finish-panic");
    assert_eq!(group.value("records_total", &[]), 500.0);
    assert_eq!(
        group.value("batch_job_outcome", &[("outcome", "panic")]),
        1.0
    );
    assert_eq!(group.value("batch_job_exit_code", &[]), 101.0);
    assert!(!group.has("batch_job_last_success_time_seconds"));
}

/// `init` with a bad configuration: the work runs, the exit status is the job's own, and
/// one line on stderr names the problem.
fn assert_init_error_leaves_the_job_alone(env: &[(&str, &str)], expected: &str) {
    for (mode, code) in [("ok", 0), ("err", 1)] {
        let out = result_main(mode, "bad-config", env);
        assert_eq!(out.status.code(), Some(code), "{mode}: {}", stderr(&out));
        if mode == "ok" {
            assert_eq!(stdout(&out), "work done\n");
        }
        let lines: Vec<String> = stderr(&out)
            .lines()
            .filter(|l| !l.starts_with("Error: "))
            .map(str::to_owned)
            .collect();
        assert_eq!(lines.len(), 1, "{mode}: one line: {lines:?}");
        assert!(
            lines[0].starts_with(
                "metrics-exporter-pushgateway: metrics are not pushed, the job runs on without \
                 them: "
            ) && lines[0].contains(expected),
            "{mode}: {lines:?}"
        );
    }
}

#[test]
fn a_bad_url_leaves_the_job_running() {
    assert_init_error_leaves_the_job_alone(
        &[("PUSHGATEWAY_URL", "http://gateway:99999")],
        "invalid value \"http://gateway:99999\" in environment variable PUSHGATEWAY_URL: \
         invalid port number",
    );
}

#[test]
fn a_bad_interval_leaves_the_job_running() {
    assert_init_error_leaves_the_job_alone(
        &[("PUSHGATEWAY_INTERVAL", "5 parsecs")],
        "invalid value \"5 parsecs\" in environment variable PUSHGATEWAY_INTERVAL",
    );
}

#[test]
fn a_url_without_a_scheme_means_http() {
    let gw = Pushgateway::start();
    let bare = format!("127.0.0.1:{}", gw.port);
    let out = result_main("ok", "no-scheme", &[("PUSHGATEWAY_URL", &bare)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    assert_eq!(gw.job("no-scheme").value("records_total", &[]), 500.0);
}

#[test]
fn a_group_path_in_the_url_is_the_grouping_key() {
    let gw = Pushgateway::start();
    // The form metrics-exporter-prometheus users have: job and instance in the URL.
    let url = format!("{}/metrics/job/url-job/instance/host-7", gw.url);
    let out = result_main("ok", "url-job", &[("PUSHGATEWAY_URL", &url)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    let group = gw
        .group(&[("job", "url-job"), ("instance", "host-7")])
        .unwrap_or_else(|| panic!("no group in {:#?}", gw.groups()));
    assert_eq!(group.value("records_total", &[]), 500.0);
    assert_eq!(gw.groups().len(), 1);

    // Another job in the URL than init's: named at install, and the job still runs.
    let url = format!("{}/metrics/job/other", gw.url);
    let out = result_main("ok", "url-job", &[("PUSHGATEWAY_URL", &url)]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "work done\n");
    assert!(
        stderr(&out).contains("names the job \"other\", and the job is \"url-job\""),
        "{}",
        stderr(&out)
    );
    assert_eq!(gw.groups().len(), 1, "nothing pushed to a 400-prone URL");
}

#[test]
fn the_host_name_as_instance() {
    let gw = Pushgateway::start();
    let out = result_main(
        "ok",
        "on-host",
        &[
            ("PUSHGATEWAY_URL", &gw.url),
            ("PUSHGATEWAY_HOSTNAME_LABEL", "instance"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let group = gw
        .group(&[("job", "on-host"), ("instance", host.trim())])
        .unwrap_or_else(|| panic!("no group for host {host:?} in {:#?}", gw.groups()));
    assert_eq!(group.value("records_total", &[]), 500.0);
}

#[test]
fn a_second_init_is_one_line_and_the_first_exporter_goes_on() {
    let gw = Pushgateway::start();
    let out = result_main("twice", "twice", &[("PUSHGATEWAY_URL", &gw.url)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "work done\n");
    assert_eq!(
        stderr(&out),
        "metrics-exporter-pushgateway: metrics are not pushed, the job runs on without them: a \
         global metrics recorder is already installed in this process (install the exporter \
         once, before any other recorder)\n"
    );
    let group = gw.job("twice");
    assert_eq!(group.value("records_total", &[]), 500.0);
    assert_eq!(
        group.value("batch_job_outcome", &[("outcome", "success")]),
        1.0
    );
    assert!(gw.group(&[("job", "second")]).is_none());
}

#[cfg(unix)]
mod signals {
    //! A signal the process was started with ignored stays ignored.

    use std::io::{BufRead as _, BufReader};
    use std::os::unix::process::ExitStatusExt as _;
    use std::process::{Child, Command, Stdio};
    use std::time::Duration;

    use super::common::*;

    /// Starts the test job's `signal` scenario through `wrapper` (a command that starts its
    /// arguments with a signal ignored) and waits until it has recorded its values.
    fn start_wrapped(wrapper: &[&str], job: &str, gw: &Pushgateway) -> Child {
        let mut cmd = Command::new(wrapper[0]);
        cmd.args(&wrapper[1..])
            .arg(job_bin(false))
            .args(["signal", job])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        with_env(&mut cmd, &[("PUSHGATEWAY_URL", &gw.url)]);
        let mut child = cmd.spawn().expect("start the wrapped job");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the job did not get ready");
        child
    }

    fn survives_then_pushes_on_sigterm(wrapper: &[&str], ignored: i32, job: &str) {
        let gw = Pushgateway::start();
        let mut child = start_wrapped(wrapper, job, &gw);
        unsafe { libc::kill(child.id() as i32, ignored) };
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            child.try_wait().unwrap().is_none(),
            "the job died of a signal it was started with ignored"
        );
        assert!(gw.group(&[("job", job)]).is_none(), "no push on it either");
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
        assert_job_values(&gw.job(job), "signal", 128 + libc::SIGTERM);
    }

    #[test]
    fn nohup_keeps_sighup_ignored() {
        survives_then_pushes_on_sigterm(&["nohup"], libc::SIGHUP, "nohup");
    }

    #[test]
    fn a_parent_that_ignores_sigint_keeps_it_ignored() {
        // A shell's background job: SIGINT ignored, then exec.
        survives_then_pushes_on_sigterm(
            &["sh", "-c", "trap '' INT; exec \"$@\"", "sh"],
            libc::SIGINT,
            "bg-job",
        );
    }
}

#[test]
fn durations_out_of_range_leave_the_job_running() {
    // 1e19 s overflowed deadlines (exit 101, aborts); 1ns made the pusher spin.
    assert_init_error_leaves_the_job_alone(
        &[("PUSHGATEWAY_SHUTDOWN_TIMEOUT", "1e19")],
        "environment variable PUSHGATEWAY_SHUTDOWN_TIMEOUT",
    );
    assert_init_error_leaves_the_job_alone(
        &[("PUSHGATEWAY_INTERVAL", "1ns")],
        "1ns is out of range: between 10ms and 1day, or 0 (off)",
    );
}

/// Values recorded once the guard is gone are not pushed, and the job is told so once.
#[test]
fn values_recorded_after_the_guard_dropped_are_reported_once() {
    let gw = Pushgateway::start();
    let (out, _) = run_job(
        false,
        "record-after-drop",
        "late",
        &[],
        &[("PUSHGATEWAY_URL", &gw.url)],
    );
    assert_eq!(out.status.code(), Some(0));
    let err = stderr(&out);
    let late: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("was recorded after"))
        .collect();
    assert_eq!(
        late,
        ["metrics-exporter-pushgateway: warning: `late_total` was recorded after the final push \
          started: what is recorded from then on is not pushed (hold the guard until the job's \
          work is done)"],
        "{err}"
    );
    let group = gw.job("late");
    assert_job_values(&group, "success", 0);
    assert!(!group.has("late_total") && !group.has("late_gauge"));
}
