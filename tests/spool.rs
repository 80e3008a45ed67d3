//! Nothing lost when the gateway is down: the disk spool and replay, and faults injected
//! against the real Pushgateway process (stopped and started again, behind a proxy that
//! delays, resets or blackholes connections). Unix: the file modes are Unix ones
//! (`tests/windows.rs` runs the spool of a Windows build).
#![cfg(unix)]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::proxy::{Fault, Proxy};
use common::*;

/// The shutdown timeout the jobs here run with, and the margin allowed on top of it for the
/// 200 ms grace and process start and teardown on a loaded machine.
const SHUTDOWN: Duration = Duration::from_secs(1);
const MARGIN: Duration = Duration::from_millis(1000);

fn snapshots(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "snapshot"));
    files.sort();
    files
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn env<'a>(url: &'a str, spool: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("PUSHGATEWAY_URL", url),
        ("PUSHGATEWAY_SHUTDOWN_TIMEOUT", "1s"),
        ("PUSHGATEWAY_SPOOL_DIR", spool),
    ]
}

/// Runs the `replay` entry point against `url`; returns its exit code, stdout and stderr.
fn run_replay(url: &str, spool: &str, extra: &[(&str, &str)]) -> (i32, String, String) {
    let mut env = vec![("PUSHGATEWAY_URL", url), ("PUSHGATEWAY_SPOOL_DIR", spool)];
    env.extend_from_slice(extra);
    common::run_replay(&env)
}

/// Runs the `replay` entry point, which must drain the spool, and returns its stdout.
fn replay(url: &str, spool: &str) -> String {
    let (code, stdout, stderr) = run_replay(url, spool, &[]);
    assert_eq!(code, 0, "{stdout} {stderr}");
    stdout
}

#[test]
fn gateway_down_at_exit_then_replay_delivers_every_value() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let spool_s = spool.to_str().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");

    let (out, elapsed) = run_job(
        false,
        "main",
        "spooled",
        &["instance", "a/b"],
        &env(&url, spool_s),
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(elapsed < SHUTDOWN + MARGIN, "took {elapsed:?}");
    let err = stderr(&out);
    let files = snapshots(&spool);
    assert_eq!(files.len(), 1, "{files:?}");
    // One line: the failure, and where the snapshot is.
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("final push failed: "), "{err}");
    assert!(
        err.contains(&format!(
            "; the snapshot is kept in the spool as {}, for the next process using this spool \
             directory or for replay",
            files[0].display()
        )),
        "{err}"
    );
    assert_eq!(mode(&files[0]), 0o600);
    assert_eq!(mode(&spool), 0o700);
    println!("exited in {elapsed:?}; spooled {}", files[0].display());

    // The gateway comes back; an operator drains the spool.
    let gw = Pushgateway::start_on(port);
    assert!(gw.groups().is_empty());
    assert_eq!(
        replay(&url, spool_s),
        "1 sent, 0 kept, 0 rejected, 0 corrupt"
    );
    let group = gw
        .group(&[("job", "spooled"), ("instance", "a/b")])
        .expect("the spooled group");
    assert_job_values(&group, "success", 0);
    assert!(snapshots(&spool).is_empty());
    // Nothing left: a second replay sends nothing.
    assert_eq!(
        replay(&url, spool_s),
        "0 sent, 0 kept, 0 rejected, 0 corrupt"
    );
}

#[test]
fn the_next_job_with_the_same_spool_replays_it() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().to_str().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");

    // Exits with its own status, 3, while the gateway is down.
    let (out, elapsed) = run_job(false, "exit", "first", &[], &env(&url, spool));
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(elapsed < SHUTDOWN + MARGIN, "took {elapsed:?}");
    assert_eq!(snapshots(dir.path()).len(), 1);

    let gw = Pushgateway::start_on(port);
    let (out, _) = run_job(false, "main", "second", &[], &env(&url, spool));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_job_values(&gw.job("first"), "error", 3);
    assert_job_values(&gw.job("second"), "success", 0);
    assert!(snapshots(dir.path()).is_empty());
}

#[test]
fn gateway_stopped_mid_run_and_started_again() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().to_str().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut gw = Pushgateway::start_on(port);
    let mut env = env(&url, spool);
    env.extend([
        ("PUSHGATEWAY_INTERVAL", "100ms"),
        ("PUSHGATEWAY_PUSH_TIMEOUT", "100ms"),
        ("TEST_RUN_MS", "3000"),
    ]);
    let mut job = start_job(false, "run", "restarted", &env);
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(gw.job("restarted").value("records_total", &[]), 500.0);

    // The gateway dies; interval pushes fail and keep the newest snapshot in the spool.
    gw.kill();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(snapshots(dir.path()).len(), 1, "the newest snapshot only");

    // It comes back empty on the same port; interval pushes succeed again.
    let gw = Pushgateway::start_on(port);
    let status = job.child.wait().unwrap();
    let elapsed = job.started.elapsed();
    assert_eq!(status.code(), Some(0));
    assert!(
        elapsed < Duration::from_millis(3000) + MARGIN,
        "took {elapsed:?}"
    );
    let group = gw.job("restarted");
    assert_job_values(&group, "success", 0);
    // The exporter's own metrics: failed interval pushes were spooled, and the spool is
    // empty again.
    let written = group.value("pushgateway_exporter_spool_written_total", &[]);
    assert!(written >= 1.0, "{written}");
    assert_eq!(
        group.value("pushgateway_exporter_spool_snapshots", &[]),
        0.0
    );
    // A newer successful push of the group made the spooled snapshot obsolete.
    assert!(snapshots(dir.path()).is_empty());
    println!("exited in {elapsed:?}");
}

#[test]
fn delaying_proxy_slows_the_push_but_it_lands() {
    let gw = Pushgateway::start();
    let proxy = Proxy::start(gw.port, Fault::Delay(Duration::from_millis(300)));
    let (out, elapsed) = run_job(
        false,
        "exit",
        "delayed",
        &[],
        &[
            ("PUSHGATEWAY_URL", &proxy.url),
            ("PUSHGATEWAY_SHUTDOWN_TIMEOUT", "1s"),
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(elapsed >= Duration::from_millis(300), "took {elapsed:?}");
    assert!(elapsed < SHUTDOWN + MARGIN, "took {elapsed:?}");
    assert_eq!(stderr(&out), "");
    assert_job_values(&gw.job("delayed"), "error", 3);
    println!("exited in {elapsed:?}");
}

#[test]
fn reset_connections_are_retried_until_one_gets_through() {
    let gw = Pushgateway::start();
    let proxy = Proxy::start(gw.port, Fault::ResetFirst(2));
    let (out, elapsed) = run_job(
        false,
        "main",
        "resets",
        &[],
        &[
            ("PUSHGATEWAY_URL", &proxy.url),
            ("PUSHGATEWAY_SHUTDOWN_TIMEOUT", "1s"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(elapsed < SHUTDOWN + MARGIN, "took {elapsed:?}");
    assert_eq!(proxy.connections(), 3, "two resets, then the push");
    assert_job_values(&gw.job("resets"), "success", 0);
    println!("exited in {elapsed:?}");
}

#[test]
fn connections_always_reset_bound_the_exit_and_the_spool_keeps_the_values() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().to_str().unwrap();
    let gw = Pushgateway::start();
    let proxy = Proxy::start(gw.port, Fault::Reset);
    let (out, elapsed) = run_job(false, "exit", "reset", &[], &env(&proxy.url, spool));
    assert_eq!(out.status.code(), Some(3));
    assert!(elapsed < SHUTDOWN + MARGIN, "took {elapsed:?}");
    let err = stderr(&out);
    assert!(err.contains("final push failed"), "{err}");
    assert!(err.contains("reset"), "{err}");
    assert!(gw.groups().is_empty(), "nothing got through");
    assert!(proxy.connections() >= 3, "retried");
    println!(
        "exited in {elapsed:?} after {} connections",
        proxy.connections()
    );

    proxy.set(Fault::Pass);
    assert_eq!(
        replay(&proxy.url, spool),
        "1 sent, 0 kept, 0 rejected, 0 corrupt"
    );
    assert_job_values(&gw.job("reset"), "error", 3);
}

#[test]
fn blackholed_connections_bound_the_exit_and_the_spool_keeps_the_values() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().to_str().unwrap();
    let gw = Pushgateway::start();
    let proxy = Proxy::start(gw.port, Fault::Blackhole);
    let (out, elapsed) = run_job(false, "main", "blackhole", &[], &env(&proxy.url, spool));
    assert_eq!(out.status.code(), Some(0));
    assert!(elapsed >= SHUTDOWN, "waited for the deadline: {elapsed:?}");
    assert!(elapsed < SHUTDOWN + MARGIN, "took {elapsed:?}");
    assert!(
        stderr(&out).contains("did not finish within 1.000s"),
        "{}",
        stderr(&out)
    );
    assert!(gw.groups().is_empty());
    println!("exited in {elapsed:?}");

    // While the gateway is still unreachable, a replay keeps the snapshot.
    let (code, stdout, _) = run_replay(&proxy.url, spool, &[("PUSHGATEWAY_PUSH_TIMEOUT", "300ms")]);
    assert_eq!(code, 2);
    assert!(stdout.starts_with("0 sent, 1 kept"), "{stdout}");
    assert_eq!(snapshots(dir.path()).len(), 1);

    proxy.set(Fault::Pass);
    assert_eq!(
        replay(&proxy.url, spool),
        "1 sent, 0 kept, 0 rejected, 0 corrupt"
    );
    assert_job_values(&gw.job("blackhole"), "success", 0);
}

#[test]
fn an_interval_push_hanging_at_exit_leaves_the_final_push_its_time() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().to_str().unwrap();
    let gw = Pushgateway::start();
    let proxy = Proxy::start(gw.port, Fault::Blackhole);
    let mut env = env(&proxy.url, spool);
    // An interval push starts after 50 ms and hangs (its own budget is 10 s) when the job
    // ends at 300 ms.
    env.extend([
        ("PUSHGATEWAY_INTERVAL", "50ms"),
        ("PUSHGATEWAY_PUSH_TIMEOUT", "10s"),
        ("TEST_RUN_MS", "300"),
    ]);
    let (out, elapsed) = run_job(false, "run", "hung", &[], &env);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        elapsed < Duration::from_millis(300) + SHUTDOWN + MARGIN,
        "took {elapsed:?}"
    );
    println!("exited in {elapsed:?}");
    // The final snapshot (outcome success), not the interval one, is what the spool holds.
    proxy.set(Fault::Pass);
    assert_eq!(
        replay(&proxy.url, spool),
        "1 sent, 0 kept, 0 rejected, 0 corrupt"
    );
    assert_job_values(&gw.job("hung"), "success", 0);
}

#[test]
fn a_corrupt_spool_file_is_set_aside_and_the_rest_is_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().to_str().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    for job in ["one", "two"] {
        let (out, _) = run_job(false, "main", job, &[], &env(&url, spool));
        assert_eq!(out.status.code(), Some(0));
    }
    let files = snapshots(dir.path());
    assert_eq!(files.len(), 2);
    // The older one is cut short, as a full disk or a crash while copying would leave it.
    let data = std::fs::read(&files[0]).unwrap();
    std::fs::write(&files[0], &data[..data.len() - 10]).unwrap();

    let gw = Pushgateway::start_on(port);
    let (code, stdout, err) = run_replay(&url, spool, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(stdout, "1 sent, 0 kept, 0 rejected, 1 corrupt");
    assert!(
        err.contains("is not a valid snapshot (not a spool file: truncated"),
        "{err}"
    );
    assert!(gw.group(&[("job", "one")]).is_none());
    assert_job_values(&gw.job("two"), "success", 0);
    let mut aside = files[0].clone().into_os_string();
    aside.push(".corrupt");
    assert!(Path::new(&aside).is_file(), "set aside as {aside:?}");
}

#[test]
fn the_spool_bound_drops_the_oldest_snapshot_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().to_str().unwrap();
    let url = format!("http://127.0.0.1:{}", free_port());
    let mut kept = Vec::new();
    for job in ["one", "two", "three"] {
        let mut env = env(&url, spool);
        env.push(("TEST_SPOOL_MAX_FILES", "2"));
        let (out, _) = run_job(false, "main", job, &[], &env);
        assert_eq!(out.status.code(), Some(0));
        kept.push(stderr(&out));
    }
    let files = snapshots(dir.path());
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(!kept[1].contains("bound"), "{}", kept[1]);
    assert_eq!(kept[2].lines().count(), 1, "{}", kept[2]);
    assert!(
        kept[2].contains("; to stay within its bound the spool dropped 1 older snapshot(s) ("),
        "{}",
        kept[2]
    );
    let groups: Vec<String> = files
        .iter()
        .map(|f| {
            let text = String::from_utf8_lossy(&std::fs::read(f).unwrap()).into_owned();
            text.lines().nth(1).unwrap().to_owned()
        })
        .collect();
    assert_eq!(groups, ["group /job/two", "group /job/three"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replays_at_once_send_each_snapshot_once() {
    use wiremock::matchers::path_regex;
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().to_str().unwrap().to_owned();
    // The gateway is unavailable while the jobs run (snapshots are replayed to the gateway
    // they were meant for only) ...
    let server = MockServer::start().await;
    Mock::given(path_regex("^/metrics/job/"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    for job in ["one", "two", "three"] {
        let (out, _) = run_job(false, "main", job, &[], &env(&server.uri(), &spool));
        assert_eq!(out.status.code(), Some(0));
    }
    assert_eq!(snapshots(dir.path()).len(), 3);

    // ... then slow, so that the two replays overlap.
    server.reset().await;
    Mock::given(path_regex("^/metrics/job/"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(300)))
        .mount(&server)
        .await;
    let start = |uri: String, spool: String| {
        std::thread::spawn(move || {
            let mut cmd = job_command(
                false,
                "replay",
                "-",
                &[("PUSHGATEWAY_URL", &uri), ("PUSHGATEWAY_SPOOL_DIR", &spool)],
            );
            let out = cmd.output().unwrap();
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        })
    };
    let a = start(server.uri(), spool.clone());
    let b = start(server.uri(), spool.clone());
    let mut reports = [a.join().unwrap(), b.join().unwrap()];
    reports.sort();
    assert_eq!(
        reports,
        [
            "3 sent, 0 kept, 0 rejected, 0 corrupt",
            "another process is replaying this spool; nothing sent",
        ]
    );
    let mut paths: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.url.path().to_owned())
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        ["/metrics/job/one", "/metrics/job/three", "/metrics/job/two"]
    );
}

#[test]
fn a_huge_file_planted_in_the_spool_is_set_aside_unread_and_the_push_lands() {
    let gw = Pushgateway::start();
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    // Named like a snapshot (the oldest), 1 GiB (sparse: no disk used), bound 64 MiB.
    let planted = spool.join("1-00000000-planted.snapshot");
    std::fs::File::create(&planted)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let spool_text = spool.to_str().unwrap();
    let (out, elapsed) = run_job(false, "main", "planted", &[], &env(&gw.url, spool_text));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(elapsed < SHUTDOWN + MARGIN, "took {elapsed:?}");
    assert_job_values(&gw.job("planted"), "success", 0);
    // Set aside from its size alone, so that no later job trips over it again.
    assert!(!planted.exists());
    let aside = spool.join("1-00000000-planted.snapshot.corrupt");
    assert_eq!(std::fs::metadata(&aside).unwrap().len(), 1 << 30);
    assert!(
        stderr(&out).contains("more than the spool's bound"),
        "one warning says why: {}",
        stderr(&out)
    );
}

#[test]
fn a_spool_other_users_can_write_is_not_used() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let real = dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    // Nothing listens there: the final push fails, and would be spooled.
    let down = format!("http://127.0.0.1:{}", free_port());
    for (spool, why) in [
        (&open, "is writable by other users (mode 777); make it 0700"),
        (&link, "is not a directory (a link to one is not followed)"),
    ] {
        let spool_text = spool.to_str().unwrap();
        let (out, elapsed) = run_job(false, "main", "untrusted", &[], &env(&down, spool_text));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(elapsed < SHUTDOWN + MARGIN, "took {elapsed:?}");
        let err = stderr(&out);
        assert!(
            err.contains(&format!(
                "warning: the spool directory {spool_text} is not used: it {why}"
            )),
            "{err}"
        );
        assert_eq!(
            err.lines().count(),
            2,
            "the warning and the failed push: {err}"
        );
        assert!(snapshots(spool).is_empty() && snapshots(&real).is_empty());
        // The operator's replay refuses it too.
        let (code, _, err) = run_replay(&down, spool_text, &[]);
        assert_ne!(code, 0);
        assert!(err.contains(why), "{err}");
    }
}

#[test]
fn a_replay_lock_planted_as_a_link_is_not_followed() {
    let gw = Pushgateway::start();
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    // A snapshot to replay, so that the job takes the lock.
    let down = format!("http://127.0.0.1:{}", free_port());
    let spool_text = spool.to_str().unwrap();
    let (out, _) = run_job(false, "main", "lock-link", &[], &env(&down, spool_text));
    assert!(out.status.success());
    assert_eq!(snapshots(&spool).len(), 1);
    let elsewhere = dir.path().join("created-through-the-link");
    std::os::unix::fs::symlink(&elsewhere, spool.join(".replay.lock")).unwrap();
    let (out, _) = run_job(false, "main", "lock-link", &[], &env(&gw.url, spool_text));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        !elsewhere.exists(),
        "a file was created through the planted link"
    );
    assert!(
        stderr(&out).contains("cannot be locked for replay"),
        "{}",
        stderr(&out)
    );
    assert_job_values(&gw.job("lock-link"), "success", 0);
}

#[test]
fn a_snapshot_goes_only_to_its_own_gateway_and_only_to_a_group_path() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let spool_text = spool.to_str().unwrap();
    // Spooled for the gateway on `port`, which is down.
    let port = free_port();
    let meant = format!("http://127.0.0.1:{port}");
    let (out, _) = run_job(false, "main", "mine", &[], &env(&meant, spool_text));
    assert!(out.status.success());
    let file = snapshots(&spool).pop().expect("spooled");
    // Another gateway's replayer leaves it alone.
    let other = Pushgateway::start();
    let (code, report, _) = run_replay(&other.url, spool_text, &[]);
    assert_eq!(
        (code, report.trim()),
        (2, "0 sent, 1 kept, 0 rejected, 0 corrupt")
    );
    assert!(other.groups().is_empty(), "{:#?}", other.groups());
    assert!(file.exists());
    // A group path rewritten to reach elsewhere on its own gateway is never followed.
    let text = std::fs::read(&file).unwrap();
    let text = String::from_utf8_lossy(&text).replace(
        "group /job/mine\n",
        "group /job/x/../../api/v1/admin/wipe\n",
    );
    std::fs::write(&file, text.as_bytes()).unwrap();
    let gw = Pushgateway::start_on(port);
    let (code, report, err) = run_replay(&gw.url, spool_text, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(report.trim(), "0 sent, 0 kept, 0 rejected, 1 corrupt");
    assert!(gw.groups().is_empty());
    assert!(!file.exists());
    assert!(snapshots(&spool).is_empty());
}

/// A snapshot whose preparation takes the whole shutdown timeout is not lost: nothing is sent,
/// the snapshot is written to the spool (the exit waits for it, boundedly), the one line says
/// why, and replay delivers every series.
#[test]
fn a_snapshot_prepared_past_the_deadline_is_spooled_not_lost() {
    const SERIES: usize = 40_000;
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().to_str().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let series = SERIES.to_string();
    let (out, elapsed) = run_job(
        false,
        "series-1000",
        "big",
        &[],
        &[
            ("PUSHGATEWAY_URL", &url),
            ("PUSHGATEWAY_SPOOL_DIR", spool),
            // Far less than preparing 40,000 series takes.
            ("PUSHGATEWAY_SHUTDOWN_TIMEOUT", "10ms"),
            ("PUSHGATEWAY_INTERVAL", "off"),
            ("TEST_SERIES", &series),
        ],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    // The deadline, the grace, and the wait for the spool (at least 1 s), with a margin.
    assert!(
        elapsed < Duration::from_millis(10 + 200 + 1000) + MARGIN,
        "took {elapsed:?}"
    );
    let files = snapshots(dir.path());
    assert_eq!(files.len(), 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("did not finish within 0.010s before anything was sent"),
        "{err}"
    );
    assert!(
        err.contains("did not finish within 0.010s before anything was sent; last error: ")
            && err.contains(": preparing the snapshot of 400"),
        "{err}"
    );
    assert!(
        err.contains("the snapshot is kept in the spool as"),
        "{err}"
    );

    let gw = Pushgateway::start_on(port);
    assert_eq!(replay(&url, spool), "1 sent, 0 kept, 0 rejected, 0 corrupt");
    let group = gw.job("big");
    assert_eq!(group.samples("bench_series_total").len(), SERIES);
    assert_eq!(
        group.value("bench_series_total", &[("series", "39999")]),
        1.0
    );
    assert_eq!(group.value("batch_job_exit_code", &[]), 0.0);
}

/// A second SIGTERM during the final push to a silent gateway ends the process at once, by
/// SIGTERM; with a spool the snapshot was written before it was sent, so nothing is lost.
#[test]
fn a_second_signal_during_the_final_push_loses_nothing_with_a_spool() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().to_str().unwrap();
    let gw = Pushgateway::start();
    let proxy = Proxy::start(gw.port, Fault::Blackhole);
    let env = [
        ("PUSHGATEWAY_URL", proxy.url.as_str()),
        ("PUSHGATEWAY_SPOOL_DIR", spool),
        ("PUSHGATEWAY_SHUTDOWN_TIMEOUT", "10s"),
    ];
    let job = start_job(false, "signal", "twice", &env);
    let mut child = job.child;
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    std::thread::sleep(Duration::from_millis(500));
    let second = std::time::Instant::now();
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    assert!(
        second.elapsed() < Duration::from_secs(2),
        "{:?}",
        second.elapsed()
    );
    assert_eq!(snapshots(dir.path()).len(), 1);
    assert!(gw.groups().is_empty());

    proxy.set(Fault::Pass);
    assert_eq!(
        replay(&proxy.url, spool),
        "1 sent, 0 kept, 0 rejected, 0 corrupt"
    );
    assert_job_values(&gw.job("twice"), "signal", 128 + libc::SIGTERM);
}

/// The final push's snapshot written ahead of it does not push other snapshots out of a full
/// spool when the push then succeeds.
#[test]
fn a_successful_final_push_leaves_a_full_spool_alone() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().to_str().unwrap();
    let down = format!("http://127.0.0.1:{}", free_port());
    let mut env_down = env(&down, spool);
    env_down.push(("TEST_SPOOL_MAX_FILES", "1"));
    let (out, _) = run_job(false, "main", "earlier", &[], &env_down);
    assert_eq!(out.status.code(), Some(0));
    let kept = snapshots(dir.path());
    assert_eq!(kept.len(), 1, "{}", stderr(&out));

    let gw = Pushgateway::start();
    let mut env_up = env(&gw.url, spool);
    env_up.push(("TEST_SPOOL_MAX_FILES", "1"));
    let (out, _) = run_job(false, "main", "later", &[], &env_up);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    assert_job_values(&gw.job("later"), "success", 0);
    // The other gateway's snapshot is still there, and nothing else.
    assert_eq!(snapshots(dir.path()), kept);
}

/// A failed interval push's snapshot stays in the spool when the final push is then refused
/// for its content (400): the final push's copy written ahead is removed, nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_final_push_leaves_the_earlier_snapshot_in_the_spool() {
    use wiremock::matchers::path_regex;
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().to_str().unwrap().to_owned();
    let server = MockServer::start().await;
    Mock::given(path_regex("^/metrics/job/"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path_regex("^/metrics/job/"))
        .respond_with(ResponseTemplate::new(400).set_body_string("inconsistent"))
        .mount(&server)
        .await;
    let uri = server.uri();
    let mut env = env(&uri, &spool);
    // One attempt per interval push: the first one meets the 503 and is spooled.
    env.extend([
        ("PUSHGATEWAY_INTERVAL", "50ms"),
        ("PUSHGATEWAY_PUSH_TIMEOUT", "10ms"),
    ]);
    let (out, _) = run_job(false, "final-is-last", "refused", &[], &env);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("answered 400"), "{err}");
    let files = snapshots(dir.path());
    assert_eq!(files.len(), 1, "{err}");
    let text = String::from_utf8_lossy(&std::fs::read(&files[0]).unwrap()).into_owned();
    assert!(text.contains("group /job/refused"), "{text}");
}

/// The spool's own metrics exist for a remote-write target too: a remote-write-only job
/// whose receiver is down (a closed port) shows on its listener exactly what its spool holds
/// and what it wrote — the requests an earlier run left, and those of its own failed push.
#[test]
fn a_remote_write_spool_counts_in_the_spool_metrics() {
    use std::io::{BufRead as _, BufReader};
    use std::process::Stdio;

    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().to_str().unwrap();
    let down = format!("http://127.0.0.1:{}/api/v1/write", free_port());
    let mut env = vec![
        ("PUSHGATEWAY_REMOTE_WRITE_URL", down.as_str()),
        ("PUSHGATEWAY_SPOOL_DIR", spool),
        ("PUSHGATEWAY_SHUTDOWN_TIMEOUT", "1s"),
        ("PUSHGATEWAY_PUSH_TIMEOUT", "300ms"),
    ];
    // An earlier run leaves the requests of its final push in the spool.
    let (out, _) = run_job(false, "main", "rw-spooled", &[], &env);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(snapshots(dir.path()).len(), 1, "{}", stderr(&out));

    // The next run: one push fails and is kept, then it serves its values, its own included.
    env.extend([
        ("PUSHGATEWAY_INTERVAL", "0"),
        ("PUSHGATEWAY_LISTEN", "127.0.0.1:0"),
    ]);
    let mut cmd = job_command(false, "flush-then-serve", "rw-spooled", &env);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start the test job");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = || {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        line.trim_end().to_owned()
    };
    assert_eq!(line(), "ready");
    let addr = line()
        .strip_prefix("listening ")
        .expect("the listener's address")
        .to_owned();
    let files = snapshots(dir.path());
    assert_eq!(files.len(), 2, "the earlier run's requests and this one's");
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    let body = client()
        .get(format!("http://{addr}/metrics"))
        .send()
        .and_then(|r| r.text())
        .unwrap();
    let value = |name: &str| {
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {name} in:\n{body}"))
    };
    assert_eq!(value("pushgateway_exporter_spool_snapshots"), 2.0);
    assert_eq!(value("pushgateway_exporter_spool_bytes"), bytes as f64);
    assert_eq!(value("pushgateway_exporter_spool_written_total"), 1.0);
    assert_eq!(value("pushgateway_exporter_spool_replayed_total"), 0.0);
    assert_eq!(value("pushgateway_exporter_spool_dropped_total"), 0.0);

    // Its final push fails too, and is kept as well.
    drop(child.stdin.take());
    assert_eq!(line(), "dropped");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(snapshots(dir.path()).len(), 3);
}
