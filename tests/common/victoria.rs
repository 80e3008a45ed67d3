//! A real VictoriaMetrics single-node server and a real `vmagent` (the OS package
//! `victoria-metrics`), each started on a free loopback port with its data in a temp dir:
//! remote-write receivers whose stored samples are read back exactly through
//! `/api/v1/export`.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{client, free_port};

/// Finds `name` (a binary of the `victoria-metrics` package): `$<env>`, or `name` on the
/// `PATH`. Panics with what to install when there is none.
fn package_bin(name: &str, env: &str) -> PathBuf {
    if let Some(bin) = std::env::var_os(env) {
        return bin.into();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "this test needs `{name}`, and none was found: install it with \
                 `apt-get install victoria-metrics` (or run .ci/run, which does), or point \
                 {env} at the binary"
            )
        })
}

/// The VictoriaMetrics single-node server: `$VICTORIA_METRICS_BIN` or `victoria-metrics`.
pub fn victoria_metrics_bin() -> PathBuf {
    package_bin("victoria-metrics", "VICTORIA_METRICS_BIN")
}

/// VictoriaMetrics's remote-write relay: `$VMAGENT_BIN` or `vmagent`.
pub fn vmagent_bin() -> PathBuf {
    package_bin("vmagent", "VMAGENT_BIN")
}

/// One series as `/api/v1/export` returns it: its labels (`__name__` included), its values
/// and their timestamps in milliseconds, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Exported {
    pub labels: BTreeMap<String, String>,
    pub values: Vec<f64>,
    pub timestamps: Vec<i64>,
}

impl Exported {
    fn parse(line: &str) -> Self {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let labels = v["metric"]
            .as_object()
            .unwrap_or_else(|| panic!("no metric in {line}"))
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
            .collect();
        // Numbers, `null` for a staleness marker, strings for the infinities.
        let values = v["values"]
            .as_array()
            .unwrap_or_else(|| panic!("no values in {line}"))
            .iter()
            .map(|v| {
                v.as_f64()
                    .or_else(|| v.is_null().then_some(f64::NAN))
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    .unwrap_or_else(|| panic!("not a number: {v} in {line}"))
            })
            .collect();
        let timestamps = v["timestamps"]
            .as_array()
            .unwrap_or_else(|| panic!("no timestamps in {line}"))
            .iter()
            .map(|t| {
                t.as_i64()
                    .unwrap_or_else(|| panic!("bad timestamp in {line}"))
            })
            .collect();
        Exported {
            labels,
            values,
            timestamps,
        }
    }

    /// The label `name`, or "".
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }

    /// The last value.
    pub fn last(&self) -> f64 {
        *self.values.last().expect("a series with no value")
    }
}

/// A process of the `victoria-metrics` package, killed on drop; its data dir outlives a
/// [`stop`](Self::stop), so that a restart finds what it had.
struct Server {
    name: &'static str,
    bin: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
    port: u16,
    url: String,
    dir: tempfile::TempDir,
}

impl Server {
    fn new(name: &'static str, bin: PathBuf, port: u16, dir: tempfile::TempDir) -> Self {
        Server {
            name,
            bin,
            args: Vec::new(),
            child: None,
            port,
            url: format!("http://127.0.0.1:{port}"),
            dir,
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join(format!("{}.log", self.name))
    }

    fn run(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map(Stdio::from)
            .unwrap_or_else(|_| Stdio::null());
        let child = Command::new(&self.bin)
            .args(&self.args)
            .arg(format!("-httpListenAddr=127.0.0.1:{}", self.port))
            .arg("-loggerLevel=WARN")
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {}: {e}", self.bin.display()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(r) = client().get(format!("{}/health", self.url)).send() {
                if r.status().is_success() {
                    return;
                }
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "{} exited with {status}; its log:\n{}",
                    self.name,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "{} at {} did not become ready in 30 s; its log:\n{}",
            self.name,
            self.url,
            self.log()
        );
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A VictoriaMetrics single-node server on a free loopback port, storage in a temp dir,
/// retention one day, every written sample searchable at once (no latency offset, no cache).
pub struct VictoriaMetrics {
    server: Server,
    pub url: String,
    pub port: u16,
}

impl VictoriaMetrics {
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    /// A server on `port` (one a job was told about while nothing listened there).
    pub fn start_on(port: u16) -> Self {
        let mut vm = Self::stopped_on(port);
        vm.server.run();
        vm
    }

    /// A server with these command-line flags added (e.g. `-maxInsertRequestSize=1000`).
    pub fn start_with(flags: &[&str]) -> Self {
        let mut vm = Self::stopped_on(free_port());
        vm.server.args.extend(flags.iter().map(|f| (*f).to_owned()));
        vm.server.run();
        vm
    }

    /// A server on `port` that is not running yet: [`restart`](Self::restart) starts it.
    pub fn stopped_on(port: u16) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut server = Server::new("victoria-metrics", victoria_metrics_bin(), port, dir);
        server.args = vec![
            format!(
                "-storageDataPath={}",
                server.dir.path().join("data").display()
            ),
            "-retentionPeriod=1d".into(),
            "-search.latencyOffset=0s".into(),
            "-search.disableCache".into(),
        ];
        VictoriaMetrics {
            url: server.url.clone(),
            port,
            server,
        }
    }

    /// The remote-write receiver's URL.
    pub fn write_url(&self) -> String {
        format!("{}/api/v1/write", self.url)
    }

    /// Stops the server (killed); its data stays for [`restart`](Self::restart).
    pub fn stop(&mut self) {
        self.server.stop();
    }

    /// Starts the server again on the same port and data.
    pub fn restart(&mut self) {
        self.server.run();
    }

    pub fn log(&self) -> String {
        self.server.log()
    }

    /// Makes what was written searchable: `GET /internal/force_flush`, then the second the
    /// server may take to publish it.
    pub fn flush(&self) {
        let r = client()
            .get(format!("{}/internal/force_flush", self.url))
            .send()
            .expect("GET /internal/force_flush");
        assert!(r.status().is_success(), "force_flush: {}", r.status());
        std::thread::sleep(Duration::from_secs(1));
    }

    /// Every series `selector` matches, as `/api/v1/export` returns them (after a
    /// [`flush`](Self::flush)), read line by line.
    pub fn export(&self, selector: &str) -> Vec<Exported> {
        let mut out = Vec::new();
        self.export_each(selector, |s| out.push(s));
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }

    /// Calls `each` with every series `selector` matches, without holding them all.
    pub fn export_each(&self, selector: &str, mut each: impl FnMut(Exported)) {
        let response = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(300))
            .build()
            .expect("client")
            .get(format!("{}/api/v1/export", self.url))
            .query(&[("match[]", selector)])
            .send()
            .unwrap_or_else(|e| panic!("export {selector}: {e}"));
        assert!(
            response.status().is_success(),
            "export {selector}: {}",
            response.status()
        );
        for line in BufReader::new(response).lines() {
            let line = line.expect("read the export");
            if !line.trim().is_empty() {
                each(Exported::parse(&line));
            }
        }
    }

    /// Flushes, then exports until `selector` matches `n` series, for at most `timeout`.
    pub fn wait_for(&self, selector: &str, n: usize, timeout: Duration) -> Vec<Exported> {
        let deadline = Instant::now() + timeout;
        loop {
            self.flush();
            let series = self.export(selector);
            if series.len() >= n || Instant::now() > deadline {
                assert_eq!(
                    series.len(),
                    n,
                    "{selector}: {series:#?}\nVictoriaMetrics's log:\n{}",
                    self.log()
                );
                return series;
            }
        }
    }

    /// The one series `selector` matches now (call [`flush`](Self::flush) first).
    pub fn one(&self, selector: &str) -> Exported {
        let mut series = self.export(selector);
        assert_eq!(
            series.len(),
            1,
            "{selector}: {series:#?}\nVictoriaMetrics's log:\n{}",
            self.log()
        );
        series.remove(0)
    }

    /// How many series the server has (`/api/v1/series/count`).
    pub fn series_count(&self) -> u64 {
        let body: Value = client()
            .get(format!("{}/api/v1/series/count", self.url))
            .send()
            .and_then(|r| r.json())
            .expect("GET /api/v1/series/count");
        body["data"][0]
            .as_u64()
            .unwrap_or_else(|| panic!("series count: {body}"))
    }
}

/// A `vmagent` on a free loopback port: it takes remote write on `/api/v1/write`, buffers it
/// on disk in its own temp dir (`-remoteWrite.tmpDataPath`) and forwards it to
/// `-remoteWrite.url`, retrying while that is down.
pub struct VmAgent {
    server: Server,
    pub url: String,
}

impl VmAgent {
    /// A relay to the remote-write receiver at `remote_write_url`.
    pub fn start(remote_write_url: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut server = Server::new("vmagent", vmagent_bin(), free_port(), dir);
        server.args = vec![
            format!("-remoteWrite.url={remote_write_url}"),
            format!(
                "-remoteWrite.tmpDataPath={}",
                server.dir.path().join("buffer").display()
            ),
            // Sends what it has at once rather than on its own second's tick.
            "-remoteWrite.flushInterval=100ms".into(),
        ];
        server.run();
        VmAgent {
            url: server.url.clone(),
            server,
        }
    }

    /// Where jobs send remote write.
    pub fn write_url(&self) -> String {
        format!("{}/api/v1/write", self.url)
    }

    pub fn log(&self) -> String {
        self.server.log()
    }
}
