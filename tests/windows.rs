//! The exit paths of a Windows build, run for real under wine against a real Pushgateway on
//! loopback: the test jobs are built for `x86_64-pc-windows-gnu` (mingw-w64), started with
//! `wine64`, and their values read back from the gateway.
//!
//! Needs `rustup target add x86_64-pc-windows-gnu`, the `gcc-mingw-w64-x86-64` and `wine64`
//! packages (`scripts/test.sh` installs them). Wine 8 lacks `ProcessPrng` in
//! `bcryptprimitives.dll`, which Rust's std calls: `tests/windows/bcryptprimitives.c` is a stub
//! put next to the `.exe` for wine only (real Windows has the DLL).
#![cfg(target_os = "linux")]

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::*;

const TARGET: &str = "x86_64-pc-windows-gnu";

/// `STATUS_CONTROL_C_EXIT`, the exit code of a process ended by a console event.
const STATUS_CONTROL_C_EXIT: f64 = 3_221_225_786.0;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn find(names: &[&str], extra: &[&str], what: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in names {
            if dir.join(name).is_file() {
                return dir.join(name);
            }
        }
    }
    for candidate in extra {
        if Path::new(candidate).is_file() {
            return candidate.into();
        }
    }
    panic!("this test needs {what}, and none was found: run scripts/test.sh, which installs it");
}

/// The test jobs built for Windows, with the wine stub DLL next to them.
fn windows_jobs() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let gcc = find(
            &["x86_64-w64-mingw32-gcc"],
            &[],
            "the mingw-w64 C compiler (apt-get install gcc-mingw-w64-x86-64)",
        );
        let target = root().join("target").join("test-jobs");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "--target", TARGET, "--manifest-path"])
            .arg(root().join("tests/jobs/Cargo.toml"))
            .env("CARGO_TARGET_DIR", &target)
            .status()
            .expect("run cargo to build the test jobs for Windows");
        assert!(
            status.success(),
            "building tests/jobs for {TARGET} failed (is the target installed? rustup target \
             add {TARGET})"
        );
        let dir = target.join(TARGET).join("debug");
        let status = Command::new(gcc)
            .args(["-shared", "-O2", "-o"])
            .arg(dir.join("bcryptprimitives.dll"))
            .arg(root().join("tests/windows/bcryptprimitives.c"))
            .arg("-ladvapi32")
            .status()
            .expect("run x86_64-w64-mingw32-gcc");
        assert!(
            status.success(),
            "building the bcryptprimitives stub failed"
        );
        dir
    })
}

/// wine64 and a prefix of its own, started once: its services are up before the first job,
/// with their standard streams on /dev/null, so that jobs start in milliseconds.
struct Wine {
    bin: PathBuf,
    prefix: PathBuf,
}

fn wine() -> &'static Wine {
    static WINE: OnceLock<Wine> = OnceLock::new();
    WINE.get_or_init(|| {
        let bin = find(
            &["wine64", "wine"],
            &["/usr/lib/wine/wine64"],
            "wine (apt-get install wine64)",
        );
        let prefix = root().join("target").join("wine-prefix");
        std::fs::create_dir_all(&prefix).unwrap();
        let started = Instant::now();
        let status = Command::new(&bin)
            .arg("wineboot")
            .env("WINEPREFIX", &prefix)
            .env("WINEDEBUG", "-all")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run wine64 wineboot");
        assert!(status.success(), "wineboot failed: {status:?}");
        eprintln!("wine prefix ready in {:?}", started.elapsed());
        Wine { bin, prefix }
    })
}

/// What a Windows job left: its status, stdout and stderr, and its wall time.
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

/// Runs the Windows test job `scenario` for `job` under wine, its streams in files (wine's
/// services would hold a pipe open after the job ends), and waits at most 60 s.
fn run_windows_job(scenario: &str, job: &str, env: &[(&str, &str)]) -> Run {
    let exe = windows_jobs().join("pushgateway-test-jobs.exe");
    let wine = wine();
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut cmd = Command::new(&wine.bin);
    cmd.arg(&exe)
        .args([scenario, job])
        .env("WINEPREFIX", &wine.prefix)
        .env("WINEDEBUG", "-all")
        .stdin(Stdio::null())
        .stdout(File::create(&out).unwrap())
        .stderr(File::create(&err).unwrap());
    with_env(&mut cmd, env);
    let started = Instant::now();
    let mut child = cmd.spawn().expect("start wine64");
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the Windows job {scenario} did not end in 60 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = started.elapsed();
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    Run {
        status,
        stdout: read(&out),
        stderr: read(&err),
        elapsed,
    }
}

#[test]
fn guard_dropped_at_the_end_of_main() {
    let gw = Pushgateway::start();
    let run = run_windows_job("main", "win-main", &[("PUSHGATEWAY_URL", &gw.url)]);
    assert_eq!(run.status.code(), Some(0), "{}", run.stderr);
    assert_eq!(run.stdout, "ready\n");
    assert_job_values(&gw.job("win-main"), "success", 0);
}

#[test]
fn exit_with_a_code() {
    let gw = Pushgateway::start();
    let run = run_windows_job("exit", "win-exit", &[("PUSHGATEWAY_URL", &gw.url)]);
    assert_eq!(run.status.code(), Some(3), "{}", run.stderr);
    assert_job_values(&gw.job("win-exit"), "error", 3);
}

#[test]
fn panic_pushes_and_exits_101() {
    let gw = Pushgateway::start();
    let run = run_windows_job("panic", "win-panic", &[("PUSHGATEWAY_URL", &gw.url)]);
    assert_eq!(run.status.code(), Some(101), "{}", run.stderr);
    assert!(run.stderr.contains("boom"), "{}", run.stderr);
    assert_job_values(&gw.job("win-panic"), "panic", 101);
}

#[test]
fn ctrl_c_pushes_then_ends_as_without_the_exporter() {
    let gw = Pushgateway::start();
    // The same job with the exporter installed but no console handler (pushing disabled):
    // how Ctrl-C ends a process here without the exporter.
    let bare = run_windows_job(
        "ctrl-c",
        "win-ctrl-c-bare",
        &[("PUSHGATEWAY_URL", &gw.url), ("PUSHGATEWAY_DISABLED", "1")],
    );
    assert!(gw.groups().is_empty());
    assert!(
        bare.elapsed < Duration::from_secs(30),
        "Ctrl-C ended the bare job"
    );

    let run = run_windows_job(
        "ctrl-c",
        "win-ctrl-c",
        &[
            ("PUSHGATEWAY_URL", &gw.url),
            ("PUSHGATEWAY_SHUTDOWN_TIMEOUT", "3s"),
        ],
    );
    assert_eq!(
        run.status.code(),
        bare.status.code(),
        "ends as without the exporter; stderr: {}",
        run.stderr
    );
    assert!(run.elapsed < Duration::from_secs(30), "{:?}", run.elapsed);
    let group = gw.job("win-ctrl-c");
    assert_eq!(group.value("records_total", &[]), 500.0, "{:#}", group.0);
    assert_eq!(
        group.value("batch_job_outcome", &[("outcome", "signal")]),
        1.0
    );
    assert_eq!(
        group.value("batch_job_exit_code", &[]),
        STATUS_CONTROL_C_EXIT
    );
    assert!(!group.has("batch_job_last_success_time_seconds"));
}

#[test]
fn a_dead_gateway_does_not_hang_the_windows_job() {
    // Nothing listens there: the final push gives up at the shutdown timeout.
    let url = format!("http://127.0.0.1:{}", free_port());
    let run = run_windows_job(
        "main",
        "win-dead",
        &[
            ("PUSHGATEWAY_URL", &url),
            ("PUSHGATEWAY_SHUTDOWN_TIMEOUT", "1s"),
        ],
    );
    assert_eq!(run.status.code(), Some(0), "{}", run.stderr);
    assert!(run.elapsed < Duration::from_secs(10), "{:?}", run.elapsed);
    assert!(
        run.stderr.contains("final push failed"),
        "one error line: {}",
        run.stderr
    );
}

#[test]
fn the_spool_keeps_and_replays_on_windows() {
    let spool = tempfile::tempdir().unwrap();
    // A Windows path the job can reach: wine maps the host's / to Z:.
    let spool_dir = format!("Z:{}", spool.path().display()).replace('/', "\\");
    // Down while the job runs; up on the same port for the replay (a snapshot is replayed
    // to the gateway it was meant for only).
    let port = free_port();
    let dead = format!("http://127.0.0.1:{port}");
    let run = run_windows_job(
        "main",
        "win-spool",
        &[
            ("PUSHGATEWAY_URL", &dead),
            ("PUSHGATEWAY_SHUTDOWN_TIMEOUT", "1s"),
            ("PUSHGATEWAY_SPOOL_DIR", &spool_dir),
        ],
    );
    assert_eq!(run.status.code(), Some(0), "{}", run.stderr);
    let files: Vec<_> = std::fs::read_dir(spool.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".snapshot"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}; {}", run.stderr);

    let gw = Pushgateway::start_on(port);
    let replay = run_windows_job(
        "replay",
        "win-spool",
        &[
            ("PUSHGATEWAY_URL", &gw.url),
            ("PUSHGATEWAY_SPOOL_DIR", &spool_dir),
        ],
    );
    assert_eq!(replay.status.code(), Some(0), "{}", replay.stderr);
    assert!(replay.stdout.contains("1 sent"), "{}", replay.stdout);
    assert_job_values(&gw.job("win-spool"), "success", 0);
}
