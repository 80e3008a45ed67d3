//! Test support: a real Pushgateway started on a free loopback port, the test jobs built as
//! child-process binaries, and reading groups back from the gateway's API.
#![allow(dead_code)]

pub mod prometheus;
pub mod proxy;
pub mod tls;
pub mod victoria;

use std::io::{BufRead as _, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Finds the Pushgateway binary: `$PUSHGATEWAY_BIN`, or `prometheus-pushgateway` (Debian's
/// package) or `pushgateway` on the `PATH`. Panics with what to install when there is none.
pub fn pushgateway_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("PUSHGATEWAY_BIN") {
        return bin.into();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["prometheus-pushgateway", "pushgateway"] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "this test needs a real Pushgateway, and none was found: install it with \
         `apt-get install prometheus-pushgateway` (or run .ci/run, which does), or point \
         PUSHGATEWAY_BIN at the binary"
    );
}

/// A free port on 127.0.0.1 (free when asked; the caller binds it next).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// A real Pushgateway process on a free loopback port, persistence off, killed on drop.
pub struct Pushgateway {
    child: Child,
    pub port: u16,
    pub url: String,
    /// The client that reads the gateway back (with the CA, client certificate and
    /// credentials a secured gateway needs).
    client: reqwest::blocking::Client,
    _dir: tempfile::TempDir,
}

impl Pushgateway {
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    pub fn start_on(port: u16) -> Self {
        Self::launch(port, None, "http", client())
    }

    /// A gateway serving with `--web.config.file=web_config` (TLS, basic auth, client
    /// certificates), read back with `client`.
    pub fn start_secured(
        web_config: &Path,
        scheme: &str,
        client: reqwest::blocking::Client,
    ) -> Self {
        Self::launch(free_port(), Some(web_config), scheme, client)
    }

    fn launch(
        port: u16,
        web_config: Option<&Path>,
        scheme: &str,
        client: reqwest::blocking::Client,
    ) -> Self {
        let bin = pushgateway_bin();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cmd = Command::new(&bin);
        cmd.arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--persistence.file=")
            .arg("--web.enable-admin-api");
        if let Some(config) = web_config {
            cmd.arg(format!("--web.config.file={}", config.display()));
        }
        let child = cmd
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {}: {e}", bin.display()));
        let gw = Pushgateway {
            child,
            port,
            url: format!("{scheme}://127.0.0.1:{port}"),
            client,
            _dir: dir,
        };
        gw.wait_ready();
        gw
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        let client = &self.client;
        while Instant::now() < deadline {
            if let Ok(r) = client.get(format!("{}/-/ready", self.url)).send() {
                if r.status().is_success() {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "the Pushgateway on port {} did not become ready in 15 s",
            self.port
        );
    }

    /// Every group, as `GET /api/v1/metrics` returns it.
    pub fn groups(&self) -> Vec<Value> {
        let body: Value = self
            .client
            .get(format!("{}/api/v1/metrics", self.url))
            .send()
            .and_then(|r| r.json())
            .expect("GET /api/v1/metrics");
        assert_eq!(body["status"], "success", "{body}");
        body["data"].as_array().cloned().unwrap_or_default()
    }

    /// The group whose grouping labels are exactly `labels` (job included), if any.
    pub fn group(&self, labels: &[(&str, &str)]) -> Option<Group> {
        self.groups().into_iter().map(Group).find(|g| {
            let have = g.0["labels"].as_object().cloned().unwrap_or_default();
            have.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| have.get(*k).and_then(Value::as_str) == Some(*v))
        })
    }

    /// The group `job=<job>` with no other grouping label; panics when it is missing.
    pub fn job(&self, job: &str) -> Group {
        self.group(&[("job", job)])
            .unwrap_or_else(|| panic!("no group job={job} in {:#?}", self.groups()))
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Pushgateway {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// One group from `/api/v1/metrics`.
#[derive(Debug, Clone)]
pub struct Group(pub Value);

impl Group {
    /// The samples of `metric`, each with its labels.
    pub fn samples(&self, metric: &str) -> Vec<Value> {
        self.0[metric]["metrics"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub fn has(&self, metric: &str) -> bool {
        !self.0[metric].is_null()
    }

    /// The value of the sample of `metric` whose labels include `labels`.
    pub fn value(&self, metric: &str, labels: &[(&str, &str)]) -> f64 {
        let sample = self
            .samples(metric)
            .into_iter()
            .find(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s["labels"][*k].as_str() == Some(*v))
            })
            .unwrap_or_else(|| panic!("no sample {metric}{labels:?} in {:#}", self.0));
        let v = if sample["value"].is_null() {
            &sample["count"]
        } else {
            &sample["value"]
        };
        v.as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{metric}: not a number: {sample}"))
    }

    pub fn metric_type(&self, metric: &str) -> String {
        self.0[metric]["type"].as_str().unwrap_or("").to_owned()
    }

    /// A histogram's first sample: (count, sum, buckets by upper bound).
    pub fn histogram(&self, metric: &str) -> (f64, f64, Vec<(String, f64)>) {
        let s = &self.samples(metric)[0];
        let num = |v: &Value| v.as_str().unwrap().parse::<f64>().unwrap();
        let mut buckets: Vec<(String, f64)> = s["buckets"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), num(v)))
            .collect();
        buckets.sort_by(|a, b| a.0.parse::<f64>().unwrap().total_cmp(&b.0.parse().unwrap()));
        (num(&s["count"]), num(&s["sum"]), buckets)
    }

    pub fn last_push_successful(&self) -> bool {
        self.0["last_push_successful"].as_bool().unwrap_or(false)
    }
}

/// Asserts that `group` holds every value the test job records, and the lifecycle metrics of
/// `outcome` with `exit_code`.
pub fn assert_job_values(group: &Group, outcome: &str, exit_code: i32) {
    assert_eq!(group.value("records_total", &[]), 500.0, "{:#}", group.0);
    assert_eq!(group.metric_type("records_total"), "COUNTER");
    assert_eq!(group.value("parse_errors_total", &[("kind", "json")]), 7.0);
    assert_eq!(group.value("queue_depth", &[]), 42.5);
    assert_eq!(group.metric_type("record_seconds"), "HISTOGRAM");
    let (count, sum, buckets) = group.histogram("record_seconds");
    assert_eq!(count, 3.0);
    assert!((sum - 4.203).abs() < 1e-9, "sum {sum}");
    let bucket = |le: &str| buckets.iter().find(|(b, _)| b == le).map(|(_, c)| *c);
    assert_eq!(bucket("0.005"), Some(1.0), "{buckets:?}");
    assert_eq!(bucket("0.1"), Some(1.0));
    assert_eq!(bucket("0.25"), Some(2.0));
    assert_eq!(bucket("2.5"), Some(2.0));
    assert_eq!(bucket("5"), Some(3.0));
    assert_eq!(bucket("10"), Some(3.0));
    assert_eq!(
        group.value("batch_job_outcome", &[("outcome", outcome)]),
        1.0
    );
    assert_eq!(group.samples("batch_job_outcome").len(), 1);
    assert_eq!(
        group.value("batch_job_exit_code", &[]),
        f64::from(exit_code)
    );
    let duration = group.value("batch_job_duration_seconds", &[]);
    assert!((0.0..30.0).contains(&duration), "duration {duration}");
    assert!(group.value("batch_job_start_time_seconds", &[]) > 1.6e9);
}

static JOBS: [OnceLock<PathBuf>; 4] = [
    OnceLock::new(),
    OnceLock::new(),
    OnceLock::new(),
    OnceLock::new(),
];

/// How the test jobs are built.
#[derive(Clone, Copy)]
pub enum Build {
    /// The dev profile, `panic = "unwind"`.
    Unwind,
    /// The dev profile with `panic = "abort"`.
    Abort,
    /// The release profile, for benchmarks.
    Release,
    /// The dev profile, on the crate without its default features (`default-features =
    /// false`: plain-HTTP Pushgateway pushes only).
    Minimal,
}

/// Builds the test jobs (`tests/jobs`) once per process and returns the binary.
pub fn job_bin_for(build: Build) -> &'static Path {
    let (index, profile, dir) = match build {
        Build::Unwind => (0, "dev", "debug"),
        Build::Abort => (1, "abort", "abort"),
        Build::Release => (2, "release", "release"),
        Build::Minimal => (3, "dev", "debug"),
    };
    JOBS[index].get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let minimal = matches!(build, Build::Minimal);
        // Another directory for the other features, so that neither build replaces the other.
        let target = root.join("target").join(if minimal {
            "test-jobs-minimal"
        } else {
            "test-jobs"
        });
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "--profile", profile, "--manifest-path"])
            .arg(root.join("tests/jobs/Cargo.toml"));
        if minimal {
            cmd.arg("--no-default-features");
        }
        let status = cmd
            .env("CARGO_TARGET_DIR", &target)
            .status()
            .expect("run cargo to build the test jobs");
        assert!(status.success(), "building tests/jobs failed");
        target.join(dir).join("pushgateway-test-jobs")
    })
}

/// The test jobs built with `panic = "abort"` or `"unwind"`.
pub fn job_bin(abort: bool) -> &'static Path {
    job_bin_for(if abort { Build::Abort } else { Build::Unwind })
}

/// A test job started as a child process with a clean `PUSHGATEWAY_*` environment.
pub struct Job {
    pub child: Child,
    pub started: Instant,
}

pub fn job_command(abort: bool, scenario: &str, job: &str, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(job_bin(abort));
    cmd.arg(scenario).arg(job);
    with_env(&mut cmd, env);
    cmd
}

/// Another binary of the test jobs (`tests/jobs/src/bin/<name>.rs`), `panic = "unwind"`.
pub fn job_bin_named(name: &str) -> PathBuf {
    job_bin(false).with_file_name(name)
}

/// Gives `cmd` a clean `PUSHGATEWAY_*` environment, then `env`; on Unix, SIGTERM, SIGINT and
/// SIGHUP start with their default action whatever this process inherited (a test run as a
/// shell's background job has SIGINT ignored, and a child would inherit that).
pub fn with_env(cmd: &mut Command, env: &[(&str, &str)]) {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt as _;
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
                    libc::signal(signal, libc::SIG_DFL);
                }
                Ok(())
            });
        }
    }
    for (k, _) in std::env::vars() {
        if k.starts_with("PUSHGATEWAY_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
}

/// Runs a test job to its end; returns its output and wall time.
pub fn run_job(
    abort: bool,
    scenario: &str,
    job: &str,
    grouping: &[&str],
    env: &[(&str, &str)],
) -> (Output, Duration) {
    let mut cmd = job_command(abort, scenario, job, env);
    cmd.args(grouping);
    let started = Instant::now();
    let output = cmd.output().expect("run the test job");
    (output, started.elapsed())
}

/// Starts a test job and waits until it has recorded its values (it prints `ready`).
pub fn start_job(abort: bool, scenario: &str, job: &str, env: &[(&str, &str)]) -> Job {
    let mut cmd = job_command(abort, scenario, job, env);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().expect("start the test job");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready", "the job did not get ready");
    Job { child, started }
}

/// The requests a mock target received, without the warm-up that opens the connection
/// (`GET /-/healthy` of a gateway, `GET /` of a remote-write receiver): the pushes alone.
pub fn without_warm_up(requests: Vec<wiremock::Request>) -> Vec<wiremock::Request> {
    requests
        .into_iter()
        .filter(|r| r.method.as_str() != "GET")
        .collect()
}

/// Runs the test job's `replay` entry point with `env` (the target's URL, the spool
/// directory, anything else); returns its exit code (-1 when a signal ended it), its stdout
/// trimmed and its stderr.
pub fn run_replay(env: &[(&str, &str)]) -> (i32, String, String) {
    let (out, _) = run_job(false, "replay", "-", &[], env);
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.code().unwrap_or(-1), stdout, stderr(&out))
}

/// Replays the spool `spool` to the remote-write receiver at `url`, which must end with exit
/// code 0; returns the replay's report (its stdout, trimmed).
pub fn replay_remote_write(url: &str, spool: &str) -> String {
    let (code, stdout, err) = run_replay(&[
        ("PUSHGATEWAY_REMOTE_WRITE_URL", url),
        ("PUSHGATEWAY_SPOOL_DIR", spool),
    ]);
    assert_eq!(code, 0, "{stdout} {err}");
    stdout
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
