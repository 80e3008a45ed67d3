//! Several targets at once, and the textfile target: against real Pushgateways, a loopback
//! proxy that blackholes, and real files read back (and checked by `promtool`).

mod common;

use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::proxy::{Fault, Proxy};
use common::{assert_job_values, run_job, stderr, Pushgateway};

const SHUTDOWN: Duration = Duration::from_secs(1);
/// Process start and exit on a loaded 2-core machine, on top of the 200 ms grace.
const MARGIN: Duration = Duration::from_millis(1500);

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn two_gateways_one_down_values_land_on_the_other_within_the_deadline() {
    let up = Pushgateway::start();
    let behind = Pushgateway::start();
    // The first target accepts connections and never answers: the worst kind of down.
    let down = Proxy::start(behind.port, Fault::Blackhole);
    let urls = format!("{},{}", down.url, up.url);
    let started = unix_now();
    let (out, elapsed) = run_job(
        false,
        "main",
        "redundant",
        &[],
        &[
            ("PUSHGATEWAY_URL", &urls),
            ("PUSHGATEWAY_SHUTDOWN_TIMEOUT", "1s"),
            ("PUSHGATEWAY_INTERVAL", "off"),
        ],
    );
    println!("exited in {elapsed:?}");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(elapsed < SHUTDOWN + MARGIN, "took {elapsed:?}");
    let group = up.job("redundant");
    assert_job_values(&group, "success", 0);
    // The gateway that is up got its push at once, not after the other one's deadline.
    let pushed_at = group.value("push_time_seconds", &[]);
    assert!(
        pushed_at - started < 0.8,
        "pushed {:.3} s after the start",
        pushed_at - started
    );
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "final push failed at one target (the others took it): push to Pushgateway {}/metrics/job/redundant did not finish within 1.000s",
            down.url
        )),
        "{err}"
    );
    assert!(behind.groups().is_empty());
}

#[test]
fn the_report_says_which_target_took_the_push() {
    let up = Pushgateway::start();
    let refused = common::free_port();
    let urls = format!("{},http://127.0.0.1:{refused}", up.url);
    let env = [
        ("PUSHGATEWAY_URL", urls.as_str()),
        ("PUSHGATEWAY_PUSH_TIMEOUT", "500ms"),
        ("PUSHGATEWAY_INTERVAL", "off"),
    ];
    let (out, _) = run_job(false, "flush", "which", &[], &env);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[0].split(' ').take(2).collect::<Vec<_>>(),
        ["ok", "status=Some(200)"]
    );
    assert_eq!(lines[1], "target Pushgateway ok Some(200)");
    assert!(
        lines[2].starts_with(&format!(
            "target Pushgateway err could not reach Pushgateway http://127.0.0.1:{refused}/metrics/job/which after "
        )) && lines[2].contains("Connection refused"),
        "{stdout}"
    );
    assert_eq!(up.job("which").value("records_total", &[]), 500.0);

    // Every target down: an error naming each.
    let other = common::free_port();
    let urls = format!("http://127.0.0.1:{refused},http://127.0.0.1:{other}");
    let env = [
        ("PUSHGATEWAY_URL", urls.as_str()),
        ("PUSHGATEWAY_PUSH_TIMEOUT", "300ms"),
        ("PUSHGATEWAY_INTERVAL", "off"),
    ];
    let (out, _) = run_job(false, "flush", "none", &[], &env);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with(
            "err status=None every target failed: could not reach Pushgateway http://127.0.0.1:"
        ),
        "{stdout}"
    );
    for port in [refused, other] {
        assert!(
            stdout.contains(&format!("127.0.0.1:{port}/metrics/job/none after ")),
            "{stdout}"
        );
    }
}

/// The sample lines of a textfile, sorted, without the lifecycle gauges whose values are times.
fn stable_samples(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter(|l| {
            !l.starts_with("batch_job_start_time")
                && !l.starts_with("batch_job_duration")
                && !l.starts_with("batch_job_last_success_time")
        })
        .filter(|l| !l.starts_with("pushgateway_exporter_"))
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

#[test]
fn textfile_target_writes_the_job_file_atomically_for_node_exporter() {
    let dir = tempfile::tempdir().unwrap();
    let textfiles = dir.path().to_str().unwrap();
    let (out, elapsed) = run_job(
        false,
        "main",
        "nightly-backup",
        &["instance", "db-1"],
        &[("PUSHGATEWAY_TEXTFILE_DIR", textfiles)],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    println!("exited in {elapsed:?}");
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    // No temporary file left, no other file: one per job and grouping key.
    assert_eq!(names, ["nightly-backup_instance_db-1.prom"]);
    let path = dir.path().join(&names[0]);
    let text = std::fs::read_to_string(&path).unwrap();
    let l = |s: &str| s.replace('\'', "\"");
    assert_eq!(
        stable_samples(&text),
        [
            l("batch_job_exit_code{instance='db-1',job='nightly-backup'} 0"),
            l("batch_job_outcome{instance='db-1',job='nightly-backup',outcome='success'} 1"),
            l("parse_errors_total{instance='db-1',job='nightly-backup',kind='json'} 7"),
            l("queue_depth{instance='db-1',job='nightly-backup'} 42.5"),
            l("record_seconds_bucket{instance='db-1',job='nightly-backup',le='+Inf'} 3"),
            l("record_seconds_bucket{instance='db-1',job='nightly-backup',le='0.005'} 1"),
            l("record_seconds_bucket{instance='db-1',job='nightly-backup',le='0.01'} 1"),
            l("record_seconds_bucket{instance='db-1',job='nightly-backup',le='0.025'} 1"),
            l("record_seconds_bucket{instance='db-1',job='nightly-backup',le='0.05'} 1"),
            l("record_seconds_bucket{instance='db-1',job='nightly-backup',le='0.1'} 1"),
            l("record_seconds_bucket{instance='db-1',job='nightly-backup',le='0.25'} 2"),
            l("record_seconds_bucket{instance='db-1',job='nightly-backup',le='0.5'} 2"),
            l("record_seconds_bucket{instance='db-1',job='nightly-backup',le='1'} 2"),
            l("record_seconds_bucket{instance='db-1',job='nightly-backup',le='10'} 3"),
            l("record_seconds_bucket{instance='db-1',job='nightly-backup',le='2.5'} 2"),
            l("record_seconds_bucket{instance='db-1',job='nightly-backup',le='5'} 3"),
            l("record_seconds_count{instance='db-1',job='nightly-backup'} 3"),
            l("record_seconds_sum{instance='db-1',job='nightly-backup'} 4.203"),
            l("records_total{instance='db-1',job='nightly-backup'} 500"),
        ]
    );
    assert!(text.contains("# TYPE record_seconds histogram\n"), "{text}");
    assert!(text.contains(
        "batch_job_last_success_time_seconds{instance=\"db-1\",job=\"nightly-backup\"} "
    ));
    // Readable by node_exporter's user.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o444, 0o444, "mode {mode:o}");
    }
    // The file parses as the exposition format for Prometheus's own linter (which also
    // lints naming; only parse errors matter here).
    let check = Command::new(common::prometheus::promtool_bin())
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&path).unwrap())
        .output()
        .expect("run promtool");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(!report.contains("error while linting"), "{report}");
}

#[test]
fn a_gateway_and_a_textfile_both_get_every_push_and_a_bad_directory_fails_alone() {
    let gw = Pushgateway::start();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let (out, _) = run_job(
        false,
        "main",
        "both",
        &[],
        &[
            ("PUSHGATEWAY_URL", &gw.url),
            ("PUSHGATEWAY_TEXTFILE_DIR", missing.to_str().unwrap()),
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    assert_job_values(&gw.job("both"), "success", 0);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "final push failed at one target (the others took it): cannot write the textfile {}: No such file or directory",
            missing.join("both.prom").display()
        )),
        "{err}"
    );

    let textfiles = dir.path().to_str().unwrap();
    let started = Instant::now();
    let (out, _) = run_job(
        false,
        "main",
        "both",
        &[],
        &[
            ("PUSHGATEWAY_URL", &gw.url),
            ("PUSHGATEWAY_TEXTFILE_DIR", textfiles),
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let text = std::fs::read_to_string(dir.path().join("both.prom")).unwrap();
    assert!(
        text.contains("\nrecords_total{job=\"both\"} 500\n"),
        "{text}"
    );
    println!("both targets in {:?}", started.elapsed());
}

/// Each target with its own credentials, labels and filter, in one job: a Pushgateway with
/// basic auth takes only `records_*` and the lifecycle metrics, with its label; a
/// remote-write receiver (Prometheus) with other credentials takes everything but
/// `records_total`, with its tenant label. The builder-wide credentials, which neither
/// accepts, are not used.
#[test]
fn each_target_gets_its_own_credentials_labels_and_metrics() {
    use common::prometheus::Prometheus;

    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    let hash = common::tls::bcrypt_hash("gw-pass");
    std::fs::write(&web, format!("basic_auth_users:\n  gw-user: '{hash}'\n")).unwrap();
    let reader = reqwest::blocking::Client::builder()
        .default_headers(
            [(
                reqwest::header::AUTHORIZATION,
                format!(
                    "Basic {}",
                    base64::Engine::encode(
                        &base64::engine::general_purpose::STANDARD,
                        "gw-user:gw-pass"
                    )
                )
                .parse()
                .unwrap(),
            )]
            .into_iter()
            .collect(),
        )
        .build()
        .unwrap();
    let gw = Pushgateway::start_secured(&web, "http", reader);
    let prometheus = Prometheus::start_with_basic_auth(None, "rw-user", "rw-pass");
    let (out, _) = run_job(
        false,
        "per-target",
        "tenants",
        &[],
        &[
            ("TEST_GW_URL", &gw.url),
            ("TEST_GW_USER", "gw-user"),
            ("TEST_GW_PASS", "gw-pass"),
            ("TEST_RW_URL", &prometheus.write_url()),
            ("TEST_RW_USER", "rw-user"),
            ("TEST_RW_PASS", "rw-pass"),
        ],
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(err, "");

    // The gateway: only what it allows, each series with its label.
    let group = gw.job("tenants");
    assert_eq!(group.value("records_total", &[("pipeline", "main")]), 500.0);
    assert_eq!(
        group.value(
            "batch_job_outcome",
            &[("outcome", "success"), ("pipeline", "main")]
        ),
        1.0
    );
    for denied in [
        "parse_errors_total",
        "queue_depth",
        "record_seconds",
        "pushgateway_exporter_pushes_total",
    ] {
        assert!(!group.has(denied), "{denied} at the gateway: {:#}", group.0);
    }

    // The receiver: everything but what it denies, each series with its tenant.
    let wait = Duration::from_secs(10);
    let series = prometheus.wait_for("parse_errors_total", wait);
    assert_eq!(series.len(), 1, "{series:?}");
    assert_eq!(series[0].0["tenant"], "team-a");
    assert_eq!(series[0].0["job"], "tenants");
    assert_eq!(series[0].1, 7.0);
    assert_eq!(prometheus.value("queue_depth{tenant=\"team-a\"}"), 42.5);
    assert_eq!(
        prometheus.value("record_seconds_count{tenant=\"team-a\"}"),
        3.0
    );
    assert_eq!(
        prometheus.value("batch_job_outcome{outcome=\"success\",tenant=\"team-a\"}"),
        1.0
    );
    assert!(prometheus.query("records_total").is_empty());
    assert!(prometheus.query("{pipeline=\"main\"}").is_empty());
}
