//! The promise: a final push on every way a process ends, read back from a real Pushgateway.
//! Each case runs the test job (`tests/jobs`) as a child process: the global recorder
//! installs once per process. Unix: the signals are Unix ones (`tests/windows.rs` runs the
//! exit paths of a Windows build).
#![cfg(unix)]

mod common;

use std::os::unix::process::ExitStatusExt as _;
use std::time::Duration;

use common::proxy::{Fault, Proxy};
use common::*;

fn env(gw: &Pushgateway) -> Vec<(&'static str, String)> {
    vec![("PUSHGATEWAY_URL", gw.url.clone())]
}

fn pairs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn assert_success_run(scenario: &str) {
    let gw = Pushgateway::start();
    let env = env(&gw);
    let (out, _) = run_job(false, scenario, scenario, &[], &pairs(&env));
    assert_eq!(out.status.code(), Some(0), "{scenario}: {}", stderr(&out));
    assert_eq!(stderr(&out), "", "{scenario}: nothing on stderr");
    let group = gw.job(scenario);
    assert_job_values(&group, "success", 0);
    assert!(group.last_push_successful());
    let last_success = group.value("batch_job_last_success_time_seconds", &[]);
    let start = group.value("batch_job_start_time_seconds", &[]);
    assert!(last_success >= start, "{last_success} < {start}");
}

#[test]
fn guard_dropped_at_the_end_of_a_sync_main() {
    assert_success_run("main");
}

#[test]
fn guard_dropped_in_tokio_multi_thread_main() {
    assert_success_run("tokio-multi");
}

#[test]
fn guard_dropped_in_tokio_current_thread_main() {
    assert_success_run("tokio-current");
}

#[test]
fn guard_dropped_inside_an_async_fn() {
    assert_success_run("async-fn-drop");
}

#[test]
fn guard_dropped_inside_a_spawned_task() {
    assert_success_run("task-drop");
}

#[test]
fn panic_with_unwind_pushes_and_exits_101() {
    let gw = Pushgateway::start();
    let env = env(&gw);
    let (out, _) = run_job(false, "panic", "panic-unwind", &[], &pairs(&env));
    assert_eq!(out.status.code(), Some(101));
    // The default panic hook, which ran before ours, printed the message.
    assert!(stderr(&out).contains("boom"), "{}", stderr(&out));
    let group = gw.job("panic-unwind");
    assert_job_values(&group, "panic", 101);
    assert!(!group.has("batch_job_last_success_time_seconds"));
}

#[test]
fn panic_with_abort_pushes_from_the_hook_then_aborts() {
    let gw = Pushgateway::start();
    let env = env(&gw);
    let (out, _) = run_job(true, "panic", "panic-abort", &[], &pairs(&env));
    assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{:?}", out.status);
    assert!(stderr(&out).contains("boom"), "{}", stderr(&out));
    assert_job_values(&gw.job("panic-abort"), "panic", 134);
}

/// With `panic = "abort"`, a panic hook set after the exporter's that exits with its own code:
/// what the gateway holds is what the process did (outcome `panic`, exit code 2).
#[test]
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn a_later_panic_hook_that_exits_is_what_the_final_push_reports() {
    let gw = Pushgateway::start();
    let env = env(&gw);
    let (out, elapsed) = run_job(true, "panic-hook-exits", "panic-exit", &[], &pairs(&env));
    assert_eq!(
        out.status.code(),
        Some(2),
        "{:?} {}",
        out.status,
        stderr(&out)
    );
    assert!(stderr(&out).contains("boom"), "{}", stderr(&out));
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert_job_values(&gw.job("panic-exit"), "panic", 2);
}

#[test]
fn panic_in_a_worker_thread_does_not_end_the_job() {
    let gw = Pushgateway::start();
    let env = env(&gw);
    let (out, _) = run_job(false, "panic-in-thread", "worker", &[], &pairs(&env));
    assert_eq!(out.status.code(), Some(0));
    let group = gw.job("worker");
    assert_eq!(group.value("records_total", &[]), 501.0);
    assert_eq!(
        group.value("batch_job_outcome", &[("outcome", "success")]),
        1.0
    );
}

fn assert_signal(signal: i32, name: &str) {
    let gw = Pushgateway::start();
    let env = env(&gw);
    let job = format!("signal-{name}");
    let mut child = start_job(false, "signal", &job, &pairs(&env)).child;
    unsafe { libc::kill(child.id() as i32, signal) };
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(signal), "{name}: {status:?}");
    assert_job_values(&gw.job(&job), "signal", 128 + signal);
}

#[test]
fn sigterm_pushes_then_dies_by_sigterm() {
    assert_signal(libc::SIGTERM, "term");
}

#[test]
fn sigint_pushes_then_dies_by_sigint() {
    assert_signal(libc::SIGINT, "int");
}

#[test]
fn sighup_pushes_then_dies_by_sighup() {
    assert_signal(libc::SIGHUP, "hup");
}

#[test]
fn exit_pushes_then_exits_with_the_code() {
    let gw = Pushgateway::start();
    let env = env(&gw);
    let (out, _) = run_job(false, "exit", "exit", &[], &pairs(&env));
    assert_eq!(out.status.code(), Some(3));
    let group = gw.job("exit");
    assert_job_values(&group, "error", 3);
    assert!(!group.has("batch_job_last_success_time_seconds"));
}

#[test]
fn shutdown_with_exit_code_reports_the_code() {
    let gw = Pushgateway::start();
    let env = env(&gw);
    let (out, _) = run_job(false, "exit-code", "exit-code", &[], &pairs(&env));
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "pushed true\n");
    assert_job_values(&gw.job("exit-code"), "error", 4);
}

#[test]
fn a_failed_run_keeps_the_last_success_timestamp() {
    let gw = Pushgateway::start();
    let env = env(&gw);
    let (out, _) = run_job(false, "main", "nightly", &[], &pairs(&env));
    assert!(out.status.success());
    let success = gw
        .job("nightly")
        .value("batch_job_last_success_time_seconds", &[]);

    let (out, _) = run_job(false, "exit", "nightly", &[], &pairs(&env));
    assert_eq!(out.status.code(), Some(3));
    let group = gw.job("nightly");
    assert_job_values(&group, "error", 3);
    assert_eq!(
        group.value("batch_job_last_success_time_seconds", &[]),
        success
    );

    // A killed run (interval pushes only) keeps it too.
    let mut interval = env.clone();
    interval.push(("PUSHGATEWAY_INTERVAL", "50ms".into()));
    let mut child = start_job(false, "signal", "nightly", &pairs(&interval)).child;
    std::thread::sleep(Duration::from_millis(400));
    child.kill().unwrap();
    child.wait().unwrap();
    let group = gw.job("nightly");
    assert_eq!(
        group.value("batch_job_outcome", &[("outcome", "running")]),
        1.0
    );
    assert_eq!(
        group.value("batch_job_last_success_time_seconds", &[]),
        success
    );

    // The next success replaces the whole group.
    let (out, _) = run_job(false, "main", "nightly", &[], &pairs(&env));
    assert!(out.status.success());
    let group = gw.job("nightly");
    assert_job_values(&group, "success", 0);
    assert!(group.value("batch_job_last_success_time_seconds", &[]) > success);
}

#[test]
fn a_forked_child_does_not_wait_for_pusher_threads_it_does_not_have() {
    let gw = Pushgateway::start();
    let (out, _) = run_job(
        false,
        "fork-exit",
        "forking",
        &[],
        &[("PUSHGATEWAY_URL", &gw.url)],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let fields: Vec<&str> = stdout.split_whitespace().collect();
    assert_eq!(fields[..2], ["child", "7"], "{stdout}");
    let ms: u64 = fields[2].parse().unwrap();
    // Without the check the child waited the whole shutdown timeout (5 s).
    assert!(ms < 2000, "the child took {ms} ms");
    assert_eq!(
        stderr(&out),
        "metrics-exporter-pushgateway: this process is a fork of the one that installed the \
         exporter: its pusher threads are not here, so nothing is pushed from it\n"
    );
    // The parent's own final push.
    assert_job_values(&gw.job("forking"), "success", 0);
}

/// A SIGTERM that comes while `exit(3)` makes its final push leaves the job's own exit status:
/// the process was already ending, and its push goes on.
#[test]
fn a_signal_during_exits_final_push_keeps_the_exit_code() {
    let gw = Pushgateway::start();
    let proxy = Proxy::start(gw.port, Fault::Delay(Duration::from_millis(700)));
    for run in 0..3 {
        let job = format!("exit-then-term-{run}");
        let started = start_job(
            false,
            "exit",
            &job,
            &[
                ("PUSHGATEWAY_URL", &proxy.url),
                ("PUSHGATEWAY_INTERVAL", "off"),
            ],
        );
        let mut child = started.child;
        std::thread::sleep(Duration::from_millis(200));
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(3), "run {run}: {status:?}");
        assert_job_values(&gw.job(&job), "error", 3);
    }
}

#[test]
fn sigabrt_pushes_then_dies_by_sigabrt() {
    assert_signal(libc::SIGABRT, "abrt");
}

/// `abort()`, a panic hook that panics itself (Rust aborts then, before any destructor runs),
/// and a stack overflow (Rust aborts from its SIGSEGV handler, on the alternate signal stack):
/// the abort waits for the final push, then goes on.
#[test]
fn an_abort_waits_for_the_final_push() {
    let gw = Pushgateway::start();
    let env = env(&gw);
    for scenario in ["abort", "panicking-hook", "stack-overflow"] {
        let (out, elapsed) = run_job(false, scenario, scenario, &[], &pairs(&env));
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGABRT),
            "{scenario}: {}",
            stderr(&out)
        );
        assert!(elapsed < Duration::from_secs(5), "{scenario}: {elapsed:?}");
        assert_job_values(&gw.job(scenario), "signal", 128 + libc::SIGABRT);
    }
}

/// After a stack overflow the SIGABRT handler runs nested in Rust's SIGSEGV handler, on the
/// thread's alternate signal stack. The job starts with the smallest one Rust's runtime gives
/// a thread (`SIGSTKSZ`, where the kernel asks for less), on which two signal frames of this
/// processor and Rust's handler leave too little room; the exporter gives the installing
/// thread a larger one. In a build without optimisations and in a release build, the job
/// dies by SIGABRT, as without the exporter, after its final push.
#[test]
fn a_stack_overflow_on_a_small_alternate_stack_dies_by_sigabrt_after_the_final_push() {
    let gw = Pushgateway::start();
    for (build, job) in [
        (Build::Unwind, "overflow-dev"),
        (Build::Release, "overflow-release"),
    ] {
        for run in 0..3 {
            let mut cmd = std::process::Command::new(job_bin_for(build));
            cmd.arg("stack-overflow").arg(job);
            with_env(&mut cmd, &[("PUSHGATEWAY_URL", gw.url.as_str())]);
            let started = std::time::Instant::now();
            let out = cmd.output().expect("run the test job");
            assert_eq!(
                out.status.signal(),
                Some(libc::SIGABRT),
                "{job}, run {run}: {:?} {}",
                out.status,
                stderr(&out)
            );
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{job}: {:?}",
                started.elapsed()
            );
            assert_job_values(&gw.job(job), "signal", 128 + libc::SIGABRT);
        }
    }
}

/// A child forked after install, without exec, and a grandchild forked by it, end on SIGTERM,
/// SIGINT and SIGHUP as the same program without the exporter would: at once, by the signal.
/// The forking job's own final push is not disturbed.
#[test]
fn a_forked_child_and_grandchild_die_by_their_first_signal() {
    let gw = Pushgateway::start();
    for depth in ["1", "2"] {
        for (signal, name) in [
            (libc::SIGTERM, "term"),
            (libc::SIGINT, "int"),
            (libc::SIGHUP, "hup"),
        ] {
            let job = format!("fork-{name}-{depth}");
            let signal_text = signal.to_string();
            let env = [
                ("PUSHGATEWAY_URL", gw.url.as_str()),
                ("TEST_FORK_SIGNAL", signal_text.as_str()),
                ("TEST_FORK_DEPTH", depth),
            ];
            let (out, _) = run_job(false, "fork-signal", &job, &[], &env);
            assert_eq!(out.status.code(), Some(0), "{job}: {}", stderr(&out));
            let stdout = String::from_utf8_lossy(&out.stdout);
            let line = stdout
                .lines()
                .find(|l| l.starts_with("leaf: "))
                .unwrap_or_else(|| panic!("{job}: no leaf line in {stdout:?}"));
            let (how, after) = line["leaf: ".len()..].split_once(" after ").unwrap();
            assert_eq!(how, format!("signal {signal}"), "{job}: {line}");
            let seconds: f64 = after.trim_end_matches(" s").parse().unwrap();
            assert!(seconds < 2.0, "{job}: {line}");
            assert_job_values(&gw.job(&job), "success", 0);
        }
    }
}

/// A SIGTERM raised by another thread while `install()` runs is never swallowed: the job dies
/// by it, before the handlers exist (as without the exporter) or after them (final push
/// made). Swept over the first 600 µs of install, with both cores busy.
#[test]
fn a_signal_during_install_always_ends_the_job() {
    let gw = Pushgateway::start();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hogs: Vec<_> = (0..2)
        .map(|_| {
            let stop = std::sync::Arc::clone(&stop);
            std::thread::spawn(move || {
                // At the lowest priority: the load delays the job's threads without starving
                // the other tests of this binary.
                // SAFETY: setpriority on this thread's own id.
                unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as u32, 19) };
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    let mut handled = 0;
    let mut survivors = Vec::new();
    for run in 0..150 {
        let delay = (run * 4 % 600).to_string();
        let job = format!("install-signal-{run}");
        let env = [
            ("PUSHGATEWAY_URL", gw.url.as_str()),
            ("TEST_SIGNAL_DELAY_US", delay.as_str()),
        ];
        let (out, elapsed) = run_job(false, "signal-during-install", &job, &[], &env);
        if out.status.signal() != Some(libc::SIGTERM) {
            survivors.push(format!("{delay} µs: {:?} after {elapsed:?}", out.status));
        } else if !gw.groups().is_empty() && gw.group(&[("job", &job)]).is_some() {
            handled += 1;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for hog in hogs {
        hog.join().unwrap();
    }
    assert!(survivors.is_empty(), "not ended by SIGTERM: {survivors:#?}");
    // Some of the signals came after the handlers and were pushed for.
    eprintln!("{handled} of 150 signals came after the handlers");
}

/// With `PushAndExit`, a second terminating signal of another kind during the first one's
/// final push ends the process at once, by that second signal.
#[test]
fn a_second_signal_of_another_kind_ends_the_final_push_at_once() {
    let gw = Pushgateway::start();
    let proxy = Proxy::start(gw.port, Fault::Blackhole);
    for (second, name) in [(libc::SIGINT, "int"), (libc::SIGHUP, "hup")] {
        let env = [
            ("PUSHGATEWAY_URL", proxy.url.as_str()),
            ("PUSHGATEWAY_SHUTDOWN_TIMEOUT", "10s"),
        ];
        let mut child = start_job(false, "signal", &format!("term-then-{name}"), &env).child;
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        std::thread::sleep(Duration::from_millis(500));
        let sent = std::time::Instant::now();
        unsafe { libc::kill(child.id() as i32, second) };
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(second), "{name}: {status:?}");
        assert!(
            sent.elapsed() < Duration::from_secs(2),
            "{name}: {:?}",
            sent.elapsed()
        );
    }
}

/// A SIGHUP the application handled itself before the exporter installed (a reload) does not
/// end it: the current values are pushed, its handler runs, and the job goes on to its own
/// end and final push.
#[test]
fn a_signal_the_application_handles_itself_does_not_end_it() {
    let gw = Pushgateway::start();
    let env = env(&gw);
    let job = start_job(false, "own-sighup-handler", "reloader", &pairs(&env));
    let child = job.child;
    unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{:?} {}",
        out.status,
        stderr(&out)
    );
    assert_eq!(stderr(&out), "reloaded\n");
    assert_job_values(&gw.job("reloader"), "success", 0);
}

/// A crash reporter's SIGABRT handler installed before the exporter runs after the final
/// push, with its own flags (`SA_RESETHAND | SA_NODEFER`): the job dies by SIGABRT, as
/// without the exporter.
#[test]
fn an_abort_runs_the_crash_reporter_installed_before_after_the_final_push() {
    let gw = Pushgateway::start();
    let env = env(&gw);
    let (out, elapsed) = run_job(false, "abort-with-reporter", "reporter", &[], &pairs(&env));
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "{:?} {}",
        out.status,
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("crash reporter ran"),
        "{}",
        stderr(&out)
    );
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert_job_values(&gw.job("reporter"), "signal", 128 + libc::SIGABRT);
}
