//! A real Prometheus (the OS package's `prometheus`) started on a free loopback port with its
//! storage in a temp dir: a remote-write receiver, and a scraper of a Pushgateway.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{client, free_port};

/// Finds the Prometheus binary: `$PROMETHEUS_BIN`, or `prometheus` on the `PATH`. Panics with
/// what to install when there is none.
pub fn prometheus_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("PROMETHEUS_BIN") {
        return bin.into();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("prometheus"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "this test needs a real Prometheus, and none was found: install it with \
                 `apt-get install prometheus` (or run .ci/run, which does), or point \
                 PROMETHEUS_BIN at the binary"
            )
        })
}

/// A series as a query returns it: its labels and value.
pub type Series = (BTreeMap<String, String>, f64);

/// A Prometheus process, killed on drop.
pub struct Prometheus {
    child: Child,
    pub url: String,
    dir: tempfile::TempDir,
    /// The basic auth its web endpoints require, if any.
    auth: Option<(String, String)>,
}

impl Prometheus {
    /// A Prometheus that accepts remote write on `/api/v1/write` and, with `scrape`, scrapes
    /// that `host:port` every 200 ms with `honor_labels: true`, as a Pushgateway must be.
    pub fn start(scrape: Option<&str>) -> Self {
        Self::start_on(scrape, free_port())
    }

    /// [`start`](Self::start) on `port` (one a job was told about while nothing listened
    /// there).
    pub fn start_on(scrape: Option<&str>, port: u16) -> Self {
        Self::launch(&Self::gateway_job(scrape), &[], None, port)
    }

    /// A Prometheus that scrapes each `(job_name, host:port, honor_labels)` every 200 ms, with
    /// extra command-line `flags` (e.g. `--enable-feature=native-histograms`, with which
    /// Prometheus 2.x asks for protobuf).
    pub fn start_scraping(jobs: &[(&str, &str, bool)], flags: &[&str]) -> Self {
        Self::launch(jobs, flags, None, free_port())
    }

    /// [`start_scraping`](Self::start_scraping) on `port` (one a job was told about while
    /// nothing listened there).
    pub fn start_scraping_on(jobs: &[(&str, &str, bool)], flags: &[&str], port: u16) -> Self {
        Self::launch(jobs, flags, None, port)
    }

    fn gateway_job(scrape: Option<&str>) -> Vec<(&str, &str, bool)> {
        scrape
            .map(|target| ("pushgateway", target, true))
            .into_iter()
            .collect()
    }

    /// A Prometheus as [`start`](Self::start) makes it, whose web endpoints (remote write
    /// and queries) require basic auth with `user` and `password`.
    pub fn start_with_basic_auth(scrape: Option<&str>, user: &str, password: &str) -> Self {
        Self::launch(
            &Self::gateway_job(scrape),
            &[],
            Some((user.to_owned(), password.to_owned())),
            free_port(),
        )
    }

    fn launch(
        jobs: &[(&str, &str, bool)],
        flags: &[&str],
        auth: Option<(String, String)>,
        port: u16,
    ) -> Self {
        let bin = prometheus_bin();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = String::from("global:\n  scrape_interval: 1s\n");
        if !jobs.is_empty() {
            config.push_str("scrape_configs:\n");
        }
        for (job, target, honor_labels) in jobs {
            config.push_str(&format!(
                "  - job_name: {job}\n    honor_labels: {honor_labels}\n    \
                 scrape_interval: 200ms\n    scrape_timeout: 200ms\n    \
                 static_configs:\n      - targets: ['{target}']\n"
            ));
        }
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write prometheus.yml");
        let mut command = Command::new(&bin);
        if let Some((user, password)) = &auth {
            let web = dir.path().join("web.yml");
            let hash = super::tls::bcrypt_hash(password);
            std::fs::write(&web, format!("basic_auth_users:\n  {user}: '{hash}'\n"))
                .expect("write web.yml");
            command.arg(format!("--web.config.file={}", web.display()));
        }
        let child = command
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-remote-write-receiver")
            .args(flags)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(dir.path().join("prometheus.log"))
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
            )
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {}: {e}", bin.display()));
        let prometheus = Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
            auth,
        };
        prometheus.wait_ready();
        prometheus
    }

    /// A GET request to `url`, with the basic auth this Prometheus requires.
    fn get(&self, url: &str) -> reqwest::blocking::RequestBuilder {
        let request = client().get(url);
        match &self.auth {
            Some((user, password)) => request.basic_auth(user, Some(password)),
            None => request,
        }
    }

    /// The remote-write receiver's URL.
    pub fn write_url(&self) -> String {
        format!("{}/api/v1/write", self.url)
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(r) = self.get(&format!("{}/-/ready", self.url)).send() {
                if r.status().is_success() {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "Prometheus at {} did not become ready in 30 s; its log:\n{}",
            self.url,
            self.log()
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// An instant query through the HTTP API: each series's labels and value.
    pub fn query(&self, promql: &str) -> Vec<Series> {
        let answer: Value = self
            .get(&format!("{}/api/v1/query", self.url))
            .query(&[("query", promql)])
            .send()
            .and_then(|r| r.json())
            .unwrap_or_else(|e| panic!("query {promql}: {e}"));
        assert_eq!(answer["status"], "success", "query {promql}: {answer}");
        answer["data"]["result"]
            .as_array()
            .unwrap_or_else(|| panic!("query {promql}: no result in {answer}"))
            .iter()
            .map(|s| {
                let labels = s["metric"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
                            .collect()
                    })
                    .unwrap_or_default();
                let value = s["value"][1]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("query {promql}: not a number in {s}"));
                (labels, value)
            })
            .collect()
    }

    /// Queries until the result is not empty, for at most `timeout`.
    pub fn wait_for(&self, promql: &str, timeout: Duration) -> Vec<Series> {
        let deadline = Instant::now() + timeout;
        loop {
            let result = self.query(promql);
            if !result.is_empty() {
                return result;
            }
            if Instant::now() > deadline {
                panic!(
                    "{promql} returned nothing within {timeout:?}; Prometheus's log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The value of the one series `promql` returns.
    pub fn value(&self, promql: &str) -> f64 {
        match self.query(promql).as_slice() {
            [(_, v)] => *v,
            other => panic!("{promql}: expected one series, got {other:?}"),
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Finds `promtool`, which comes with Prometheus: `$PROMTOOL_BIN`, or next to the Prometheus
/// binary, or on the `PATH`.
pub fn promtool_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("PROMTOOL_BIN") {
        return bin.into();
    }
    let beside = prometheus_bin().with_file_name("promtool");
    if beside.is_file() {
        return beside;
    }
    panic!("this test needs promtool, which comes with Prometheus (`apt-get install prometheus`)");
}
