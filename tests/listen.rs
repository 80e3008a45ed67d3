//! The `/metrics` listener, end to end: a real Prometheus scrapes a running process (the
//! example service, the test jobs) while a real Pushgateway takes its interval pushes;
//! content negotiation with Prometheus's own `Accept` header; bounds; a port in use; the port
//! freed at shutdown.

mod common;

use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::prometheus::Prometheus;
use common::{client, job_bin_named, job_command, with_env, Pushgateway};

const PROTOBUF: &str = "application/vnd.google.protobuf; \
                        proto=io.prometheus.client.MetricFamily; encoding=delimited";

/// Builds an example and returns its binary.
fn example_bin(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "--example", name, "--manifest-path"])
        .arg(root.join("Cargo.toml"))
        .status()
        .expect("run cargo to build the example");
    assert!(status.success(), "building the example {name} failed");
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    target.join("debug/examples").join(name)
}

/// `GET http://addr/metrics` with `accept`, once the listener answers: status, content type,
/// body.
fn scrape(addr: &str, accept: Option<&str>) -> (u16, String, Vec<u8>) {
    let mut request = client().get(format!("http://{addr}/metrics"));
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let response = request
        .send()
        .unwrap_or_else(|e| panic!("scrape {addr}: {e:?}"));
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.bytes().unwrap().to_vec())
}

fn text(addr: &str) -> String {
    let (status, content_type, body) = scrape(addr, None);
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    String::from_utf8(body).unwrap()
}

/// The value of the sample line `series` in a text body.
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// A test job serving on a port the system chose (`PUSHGATEWAY_LISTEN=127.0.0.1:0`), until
/// [`Served::finish`] closes its stdin.
struct Served {
    child: Child,
    stdout: BufReader<ChildStdout>,
    addr: String,
}

impl Served {
    fn start(scenario: &str, job: &str, env: &[(&str, &str)]) -> Served {
        let mut env = env.to_vec();
        env.push(("PUSHGATEWAY_LISTEN", "127.0.0.1:0"));
        let mut cmd = job_command(false, scenario, job, &env);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut child = cmd.spawn().expect("start the test job");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        assert_eq!(line(&mut stdout), "ready");
        let addr = line(&mut stdout)
            .strip_prefix("listening ")
            .expect("the listener's address")
            .to_owned();
        Served {
            child,
            stdout,
            addr,
        }
    }

    /// Closes its stdin: the job drops its guard, says so, and ends (after lingering for
    /// `TEST_LINGER_MS`).
    fn drop_guard(&mut self) {
        drop(self.child.stdin.take());
        assert_eq!(line(&mut self.stdout), "dropped");
    }

    fn finish(mut self) -> std::process::ExitStatus {
        self.drop_guard();
        self.child.wait().unwrap()
    }
}

fn line(from: &mut impl BufRead) -> String {
    let mut line = String::new();
    from.read_line(&mut line).unwrap();
    line.trim().to_owned()
}

fn kill(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn prometheus_scrapes_the_example_service_that_only_serves() {
    let bin = example_bin("service");
    let mut cmd = Command::new(&bin);
    cmd.arg("60").stderr(Stdio::piped());
    // The listener and no push target: only scraped.
    with_env(&mut cmd, &[("PUSHGATEWAY_LISTEN", "127.0.0.1:0")]);
    let mut child = cmd.spawn().expect("start the example service");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let addr = line(&mut stderr)
        .strip_prefix("service: serving http://")
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .expect("the service says where it serves")
        .to_owned();

    let prometheus = Prometheus::start_scraping(&[("service", &addr, false)], &[]);
    let sel = format!(r#"job="service",instance="{addr}""#);
    let found = prometheus.wait_for(
        &format!("service_workers{{{sel}}}"),
        Duration::from_secs(20),
    );
    assert_eq!(found[0].1, 4.0);
    assert_eq!(prometheus.value(&format!("up{{{sel}}}")), 1.0);
    // The counter grows while the service runs (one tick every 500 ms).
    let first = prometheus.value(&format!("service_ticks_total{{{sel}}}"));
    std::thread::sleep(Duration::from_millis(1500));
    let later = prometheus
        .wait_for(
            &format!("service_ticks_total{{{sel}}} > {first}"),
            Duration::from_secs(10),
        )
        .remove(0)
        .1;
    assert!(later >= first + 1.0, "{first} then {later}");
    // What the listener serves now, and what Prometheus read of it, agree.
    let body = text(&addr);
    assert!(
        body.contains("# HELP service_workers Worker tasks configured.\n"),
        "{body}"
    );
    assert!(
        body.contains("# TYPE service_ticks_total counter\n"),
        "{body}"
    );
    // No push target: no lifecycle metrics (they describe a pushed run), no self-metrics.
    assert!(!body.contains("batch_job_"), "{body}");
    assert!(!body.contains("pushgateway_exporter_"), "{body}");
    assert!(prometheus
        .query(&format!("{{__name__=~\"batch_job_.*\",{sel}}}"))
        .is_empty());

    // SIGINT: the service shuts down, its listener with it.
    #[cfg(unix)]
    // SAFETY: a signal to our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    #[cfg(not(unix))]
    child.kill().unwrap();
    let status = child.wait().unwrap();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert_eq!(status.code(), Some(0), "{rest}");
    assert!(TcpStream::connect(&addr).is_err(), "still listening");
    TcpListener::bind(&addr).expect("the port is free once the service is gone");
}

#[test]
fn scrapes_during_interval_pushes_are_both_correct() {
    let gw = Pushgateway::start();
    let job = Served::start(
        "serve",
        "scraped-job",
        &[
            ("PUSHGATEWAY_URL", &gw.url),
            ("PUSHGATEWAY_INTERVAL", "100ms"),
        ],
    );
    let addr = job.addr.clone();
    let gw_target = format!("127.0.0.1:{}", gw.port);
    let prometheus = Prometheus::start_scraping(
        &[
            ("listener", &addr, false),
            ("pushgateway", &gw_target, true),
        ],
        &[],
    );
    // Eight scrapers at once, while the pusher pushes every 100 ms.
    let pushes = format!(
        r#"pushgateway_exporter_pushes_total{{result="success",target="{}/"}}"#,
        gw.url
    );
    let scrapers: Vec<_> = (0..8)
        .map(|_| {
            let (addr, pushes) = (addr.clone(), pushes.clone());
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                for _ in 0..25 {
                    let body = text(&addr);
                    assert_eq!(sample(&body, "records_total"), Some(500.0), "{body}");
                    assert_eq!(sample(&body, "queue_depth"), Some(42.5), "{body}");
                    assert_eq!(sample(&body, "record_seconds_count"), Some(3.0), "{body}");
                    assert_eq!(
                        sample(&body, r#"record_seconds_bucket{le="0.25"}"#),
                        Some(2.0),
                        "{body}"
                    );
                    seen.push(sample(&body, &pushes).unwrap_or(0.0));
                    std::thread::sleep(Duration::from_millis(40));
                }
                seen
            })
        })
        .collect();
    let mut most = 0.0f64;
    for scraper in scrapers {
        let seen = scraper.join().expect("a scraper failed");
        // The pushes went on while it scraped.
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
        assert!(
            seen.last() > seen.first(),
            "no push during the scrapes: {seen:?}"
        );
        most = most.max(*seen.last().unwrap());
    }
    assert!(most >= 5.0, "{most} pushes");
    // Prometheus has the same values from both paths: the listener and the gateway.
    let listener = r#"job="listener""#;
    prometheus.wait_for(
        &format!("records_total{{{listener}}}"),
        Duration::from_secs(20),
    );
    let via_gw = r#"job="scraped-job""#;
    prometheus.wait_for(
        &format!("records_total{{{via_gw}}}"),
        Duration::from_secs(20),
    );
    for (metric, labels) in [
        ("records_total", ""),
        ("parse_errors_total", r#",kind="json""#),
        ("queue_depth", ""),
        ("record_seconds_count", ""),
        ("record_seconds_bucket", r#",le="0.25""#),
    ] {
        let q = |sel: &str| format!("{metric}{{{sel}{labels}}}");
        assert_eq!(
            prometheus.value(&q(listener)),
            prometheus.value(&q(via_gw)),
            "{metric}{labels}"
        );
    }
    assert_eq!(
        prometheus.value(&format!("records_total{{{listener}}}")),
        500.0
    );
    // The lifecycle metrics come through the gateway only.
    assert_eq!(
        prometheus.value(&format!(
            r#"batch_job_outcome{{{via_gw},outcome="running"}}"#
        )),
        1.0
    );
    assert!(prometheus
        .query(&format!("batch_job_outcome{{{listener}}}"))
        .is_empty());
    let status = job.finish();
    assert!(status.success());
    assert!(TcpStream::connect(&addr).is_err(), "still listening");
    let group = gw.job("scraped-job");
    assert_eq!(group.value("records_total", &[]), 500.0);
    assert_eq!(
        group.value("batch_job_outcome", &[("outcome", "success")]),
        1.0
    );
}

/// The `Accept` header Prometheus sends, read off a socket it scrapes.
fn prometheus_accept_header(flags: &[&str]) -> String {
    let socket = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = socket.local_addr().unwrap().to_string();
    let _prometheus = Prometheus::start_scraping(&[("probe", &target, false)], flags);
    let (mut stream, _) = socket.accept().unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
    String::from_utf8(head)
        .unwrap()
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("accept")
                .then(|| value.trim().to_owned())
        })
        .expect("Prometheus sent no Accept header")
}

#[test]
fn protobuf_when_the_scraper_asks_for_it() {
    let job = Served::start("serve", "proto-job", &[]);
    let addr = job.addr.clone();
    // Prometheus's own headers: without its protobuf feature it gets text, with it protobuf.
    let plain = prometheus_accept_header(&[]);
    let with_proto = prometheus_accept_header(&["--enable-feature=native-histograms"]);
    println!("Accept without the feature: {plain}\nwith it: {with_proto}");
    assert!(
        with_proto.contains("application/vnd.google.protobuf"),
        "{with_proto}"
    );
    let (status, content_type, body) = scrape(&addr, Some(&plain));
    assert_eq!(
        (status, content_type.as_str()),
        (200, "text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(String::from_utf8(body)
        .unwrap()
        .contains("records_total 500\n"));
    let (status, content_type, body) = scrape(&addr, Some(&with_proto));
    assert_eq!((status, content_type.as_str()), (200, PROTOBUF));
    // Length-delimited MetricFamily messages, as the protobuf encoder's own tests check them.
    let mut names = Vec::new();
    let mut rest = body.as_slice();
    while !rest.is_empty() {
        let (len, used) = varint(rest);
        let message = &rest[used..used + len as usize];
        // Field 1 (name), wire type 2: tag 0x0a, then its length and the name.
        assert_eq!(message[0], 0x0a);
        let (name_len, n) = varint(&message[1..]);
        names.push(String::from_utf8(message[1 + n..1 + n + name_len as usize].to_vec()).unwrap());
        rest = &rest[used + len as usize..];
    }
    assert_eq!(
        names,
        [
            "parse_errors_total",
            "queue_depth",
            "record_seconds",
            "records_total"
        ]
    );

    // A real Prometheus scraping in protobuf reads the same values.
    let prometheus = Prometheus::start_scraping(
        &[("listener", &addr, false)],
        &["--enable-feature=native-histograms"],
    );
    let sel = r#"job="listener""#;
    prometheus.wait_for(&format!("records_total{{{sel}}}"), Duration::from_secs(20));
    assert_eq!(prometheus.value(&format!("records_total{{{sel}}}")), 500.0);
    assert_eq!(prometheus.value(&format!("queue_depth{{{sel}}}")), 42.5);
    assert_eq!(
        prometheus.value(&format!(r#"parse_errors_total{{{sel},kind="json"}}"#)),
        7.0
    );
    prometheus.wait_for(
        &format!("record_seconds_count{{{sel}}}"),
        Duration::from_secs(20),
    );
    assert_eq!(
        prometheus.value(&format!("record_seconds_count{{{sel}}}")),
        3.0
    );
    assert_eq!(
        prometheus.value(&format!(r#"record_seconds_bucket{{{sel},le="0.25"}}"#)),
        2.0
    );
    assert!(job.finish().success());
}

fn varint(bytes: &[u8]) -> (u64, usize) {
    let mut value = 0u64;
    for (i, b) in bytes.iter().enumerate() {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return (value, i + 1);
        }
    }
    panic!("truncated varint");
}

#[test]
fn other_paths_methods_and_oversized_heads_are_refused() {
    let job = Served::start("serve", "paths-job", &[]);
    let addr = job.addr.clone();
    let http = client();
    for path in ["/", "/metrics/", "/metricsx", "/favicon.ico"] {
        let r = http.get(format!("http://{addr}{path}")).send().unwrap();
        assert_eq!(r.status().as_u16(), 404, "{path}");
    }
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let r = http
            .request(method.parse().unwrap(), format!("http://{addr}/metrics"))
            .body("x".repeat(100))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 405, "{method}");
        assert_eq!(r.headers()["allow"], "GET, HEAD");
    }
    let r = http.head(format!("http://{addr}/metrics")).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // A query string is still /metrics.
    let r = http
        .get(format!("http://{addr}/metrics?x=1"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // Request headers beyond 16 KiB: refused, and the listener goes on.
    let r = http
        .get(format!("http://{addr}/metrics"))
        .header("x-big", "a".repeat(20 * 1024))
        .send();
    match r {
        Ok(r) => assert_eq!(r.status().as_u16(), 431),
        Err(e) => assert!(e.is_request() || e.is_connect() || e.is_body(), "{e}"),
    }
    assert!(text(&addr).contains("records_total 500\n"));
    assert!(job.finish().success());
}

#[test]
fn stalled_clients_neither_stall_pushes_nor_outlast_the_connection_bound() {
    let gw = Pushgateway::start();
    let job = Served::start(
        "serve",
        "stalled",
        &[
            ("PUSHGATEWAY_URL", &gw.url),
            ("PUSHGATEWAY_INTERVAL", "100ms"),
        ],
    );
    let addr = job.addr.clone();
    // More half-sent requests than the listener serves at once: every slot is taken.
    let stalled: Vec<TcpStream> = (0..40)
        .map(|_| {
            let mut s = TcpStream::connect(&addr).unwrap();
            s.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n")
                .unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // The pushes go on: the gateway's count of successful pushes grows.
    let pushed = |gw: &Pushgateway| {
        gw.job("stalled").value(
            "pushgateway_exporter_pushes_total",
            &[("target", &format!("{}/", gw.url)), ("result", "success")],
        )
    };
    let before = pushed(&gw);
    std::thread::sleep(Duration::from_millis(1000));
    let after = pushed(&gw);
    assert!(after >= before + 3.0, "{before} then {after}");
    // Once the stalled clients go, scrapes are answered again.
    drop(stalled);
    let started = Instant::now();
    assert!(text(&addr).contains("records_total 500\n"));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(job.finish().success());
}

#[test]
fn a_port_in_use_is_an_error_for_try_init_and_one_line_for_init() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let gw = Pushgateway::start();
    let env = [
        ("PUSHGATEWAY_URL", gw.url.as_str()),
        ("PUSHGATEWAY_LISTEN", &addr),
    ];
    let out = job_command(false, "try-init", "taken", &env)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.trim(),
        format!(
            "err cannot listen for scrapes on \"{addr}\" (set by PUSHGATEWAY_LISTEN): Address \
             already in use (os error 98)"
        )
    );
    // Nothing was installed: nothing pushed.
    assert!(gw.group(&[("job", "taken")]).is_none());

    // init: one line, and the job runs on, without pushing or listening.
    let mut cmd = Command::new(job_bin_named("result_main"));
    cmd.args(["ok", "taken-init"]);
    with_env(&mut cmd, &env);
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("work done"));
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains(&format!(
            "metrics are not pushed, the job runs on without them: cannot listen for scrapes on \
             \"{addr}\" (set by PUSHGATEWAY_LISTEN): Address already in use"
        )),
        "{stderr}"
    );
    assert!(gw.group(&[("job", "taken-init")]).is_none());
    drop(taken);
}

#[test]
fn the_listener_closes_when_the_guard_drops_and_the_port_is_free() {
    let mut job = Served::start("serve", "closing", &[("TEST_LINGER_MS", "5000")]);
    let addr = job.addr.clone();
    // Served while the guard lives, with a kept-alive connection open.
    let mut kept = TcpStream::connect(&addr).unwrap();
    kept.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    kept.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut first = [0u8; 12];
    kept.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    job.drop_guard();
    // The process lives on; its listener is gone, the kept-alive connection closed (its read
    // ends), and the port can be bound again.
    assert!(job.child.try_wait().unwrap().is_none());
    assert!(TcpStream::connect(&addr).is_err(), "still listening");
    let mut rest = Vec::new();
    let _ = kept.read_to_end(&mut rest);
    TcpListener::bind(&addr).expect("the port is free once the guard is dropped");
    assert!(job.child.wait().unwrap().success());
}

#[test]
fn a_tokio_main_that_blocks_its_only_thread_is_still_scraped() {
    let mut cmd = job_command(
        false,
        "listen-tokio",
        "tokio-job",
        &[
            ("PUSHGATEWAY_LISTEN", "127.0.0.1:0"),
            ("TEST_RUN_MS", "60000"),
        ],
    );
    cmd.stdout(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    assert_eq!(line(&mut stdout), "ready");
    let addr = line(&mut stdout)
        .strip_prefix("listening ")
        .unwrap()
        .to_owned();
    let body = text(&addr);
    assert_eq!(sample(&body, "records_total"), Some(500.0), "{body}");
    kill(child);
}

/// The final push's bound with a 3 s shutdown timeout: the timeout and the 200 ms grace.
const BOUND_3S: Duration = Duration::from_millis(3200);
/// What the test adds to a bound it measures from outside the job: the pipe and the
/// scheduling of a loaded 2-core machine.
const MARGIN: Duration = Duration::from_millis(400);

/// Clients that each keep `pipelined` requests for `/metrics` sent ahead on their connection
/// and read what comes, reconnecting when it closes, until `stop` (at most 2 minutes).
fn crowd(
    addr: &str,
    clients: usize,
    pipelined: usize,
    stop: &Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<u64>> {
    let requests = "GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n".repeat(pipelined);
    (0..clients)
        .map(|_| {
            let (addr, stop, requests) = (addr.to_owned(), Arc::clone(stop), requests.clone());
            std::thread::spawn(move || {
                let started = Instant::now();
                let mut read = 0u64;
                let mut buf = vec![0u8; 64 * 1024];
                while !stop.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(120) {
                    let Ok(mut s) = TcpStream::connect(&addr) else {
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    };
                    s.set_read_timeout(Some(Duration::from_millis(500)))
                        .unwrap();
                    s.set_write_timeout(Some(Duration::from_millis(500)))
                        .unwrap();
                    if s.write_all(requests.as_bytes()).is_err() {
                        continue;
                    }
                    while !stop.load(Ordering::SeqCst) {
                        match s.read(&mut buf) {
                            Ok(0) => break,
                            Ok(n) => {
                                read += n as u64;
                                let answered = buf[..n]
                                    .windows(12)
                                    .filter(|w| w == b"HTTP/1.1 200")
                                    .count();
                                // As many again as were answered: `pipelined` ahead.
                                let again = "GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n";
                                if s.write_all(again.repeat(answered).as_bytes()).is_err() {
                                    break;
                                }
                            }
                            Err(e)
                                if e.kind() == std::io::ErrorKind::WouldBlock
                                    || e.kind() == std::io::ErrorKind::TimedOut => {}
                            Err(_) => break,
                        }
                    }
                }
                read
            })
        })
        .collect()
}

/// A job with many series, scraped by 32 clients that each keep 8 requests pipelined, its
/// final push to a real gateway with a 3 s shutdown timeout.
fn crowded(
    job: &str,
    gw: &Pushgateway,
    series: usize,
) -> (Served, Arc<AtomicBool>, Vec<std::thread::JoinHandle<u64>>) {
    let series = series.to_string();
    let served = Served::start(
        "serve",
        job,
        &[
            ("PUSHGATEWAY_URL", &gw.url),
            ("PUSHGATEWAY_INTERVAL", "0"),
            ("PUSHGATEWAY_SHUTDOWN_TIMEOUT", "3s"),
            ("TEST_SERIES", &series),
        ],
    );
    assert!(text(&served.addr).contains("records_total 500\n"));
    let stop = Arc::new(AtomicBool::new(false));
    let clients = crowd(&served.addr, 32, 8, &stop);
    // Until scrapes are being answered and many more are queued behind them.
    std::thread::sleep(Duration::from_secs(3));
    (served, stop, clients)
}

/// Every value the job recorded, exactly, at the gateway: the test job's own and `series`
/// counter series of 1.
fn assert_all_pushed(group: &common::Group, outcome: &str, exit_code: i32, series: usize) {
    common::assert_job_values(group, outcome, exit_code);
    let samples = group.samples("bench_series_total");
    assert_eq!(samples.len(), series);
    assert!(
        samples.iter().all(|s| s["value"] == "1"),
        "{:?}",
        &samples[..3]
    );
}

const CROWD_SERIES: usize = 50_000;

#[test]
fn scrapers_do_not_hold_the_guards_drop_past_its_bound() {
    let gw = Pushgateway::start();
    let (mut job, stop, clients) = crowded("crowded-drop", &gw, CROWD_SERIES);
    let started = Instant::now();
    job.drop_guard();
    let took = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let read: u64 = clients.into_iter().map(|c| c.join().unwrap()).sum();
    println!("guard drop under a crowd of scrapers: {took:?} ({read} bytes scraped)");
    assert!(read > 0, "the crowd was not answered");
    assert!(took < BOUND_3S + MARGIN, "the guard's drop took {took:?}");
    assert!(job.child.wait().unwrap().success());
    assert_all_pushed(&gw.job("crowded-drop"), "success", 0, CROWD_SERIES);
}

#[cfg(unix)]
#[test]
fn scrapers_do_not_hold_a_sigterm_past_its_bound_and_it_kills_by_sigterm() {
    use std::os::unix::process::ExitStatusExt as _;
    let gw = Pushgateway::start();
    let (mut job, stop, clients) = crowded("crowded-term", &gw, CROWD_SERIES);
    let started = Instant::now();
    // SAFETY: a signal to our own child.
    assert_eq!(
        unsafe { libc::kill(job.child.id() as i32, libc::SIGTERM) },
        0
    );
    // Meanwhile main ends too, as a job's main does when its work is done.
    std::thread::sleep(Duration::from_millis(100));
    drop(job.child.stdin.take());
    let status = job.child.wait().unwrap();
    let took = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().unwrap();
    }
    println!("SIGTERM under a crowd of scrapers: {took:?}, {status:?}");
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    assert!(took < BOUND_3S + MARGIN, "the SIGTERM took {took:?}");
    assert_all_pushed(
        &gw.job("crowded-term"),
        "signal",
        128 + libc::SIGTERM,
        CROWD_SERIES,
    );
}

#[test]
fn idle_connections_do_not_keep_scrapers_out() {
    let job = Served::start("serve", "idle-flood", &[]);
    let addr = job.addr.clone();
    // 64 connections that send nothing, held open; one the listener closes is opened again at
    // once, as an attacker's would be.
    let stop = Arc::new(AtomicBool::new(false));
    let attacker = {
        let (addr, stop) = (addr.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let started = Instant::now();
            let mut open: Vec<TcpStream> = Vec::new();
            let mut reopened = 0usize;
            while !stop.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(120) {
                open.retain(|s| {
                    let mut byte = [0u8; 1];
                    // Still open while a read would block.
                    matches!(s.peek(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
                });
                while open.len() < 64 {
                    let Ok(s) = TcpStream::connect(&addr) else {
                        break;
                    };
                    s.set_nonblocking(true).unwrap();
                    open.push(s);
                    reopened += 1;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            reopened
        })
    };
    std::thread::sleep(Duration::from_secs(1));
    let mut took = Vec::new();
    for _ in 0..6 {
        let started = Instant::now();
        let (status, _, body) = scrape(&addr, None);
        took.push(started.elapsed());
        assert_eq!(status, 200);
        assert!(String::from_utf8(body)
            .unwrap()
            .contains("records_total 500\n"));
        std::thread::sleep(Duration::from_millis(500));
    }
    stop.store(true, Ordering::SeqCst);
    let opened = attacker.join().unwrap();
    println!("scrapes beside 64 idle connections ({opened} opened): {took:?}");
    assert!(took.iter().all(|t| *t < Duration::from_secs(2)), "{took:?}");
    assert!(job.finish().success());
}

/// The job's resident memory, KiB.
#[cfg(target_os = "linux")]
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// The CPU time the job has used (user and system), in clock ticks.
#[cfg(target_os = "linux")]
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // After the command name in parentheses: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// The bytes queued to send, unacknowledged or unsent, in the kernel for the connections
/// whose local port is `port` (`/proc/net/tcp`'s `tx_queue`).
#[cfg(target_os = "linux")]
fn send_queues(port: u16) -> u64 {
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            let local_port = u16::from_str_radix(fields[1].rsplit_once(':')?.1, 16).ok()?;
            let tx = u64::from_str_radix(fields[4].split_once(':')?.0, 16).ok()?;
            (local_port == port).then_some(tx)
        })
        .sum()
}

#[cfg(target_os = "linux")]
#[test]
fn clients_that_ask_and_never_read_hold_a_bounded_number_of_bodies() {
    use std::os::fd::AsRawFd as _;
    let job = Served::start("serve", "unread", &[("TEST_SERIES", "100000")]);
    let addr = job.addr.clone();
    let port: u16 = addr.rsplit_once(':').unwrap().1.parse().unwrap();
    let pid = job.child.id();
    // One scrape first: the body's size, and the allocator warmed by one render.
    let body = text(&addr).len() as u64;
    std::thread::sleep(Duration::from_millis(300));
    let before = rss_kib(pid) * 1024;
    let silent: Vec<TcpStream> = (0..32)
        .map(|_| {
            let s = TcpStream::connect(&addr).unwrap();
            // A small receive window: what is unread stays with the job.
            let size: libc::c_int = 4096;
            // SAFETY: setsockopt on an open socket with a c_int option.
            unsafe {
                libc::setsockopt(
                    s.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVBUF,
                    std::ptr::from_ref(&size).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
            (&s).write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
                .unwrap();
            s
        })
        .collect();
    // What the job holds for them: its memory beyond what it had, and its sockets' queues.
    let (mut peak, mut peak_rss) = (0u64, before);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(15) {
        let rss = rss_kib(pid) * 1024;
        peak_rss = peak_rss.max(rss);
        peak = peak.max(rss.saturating_sub(before) + send_queues(port));
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "32 clients that never read: RSS {} MiB, peak {} MiB; held at most {:.1} bodies of {} \
         KiB (memory and socket queues)",
        before >> 20,
        peak_rss >> 20,
        peak as f64 / body as f64,
        body >> 10
    );
    // At most 4 bodies in the job, 256 KiB in the kernel per connection, and 8 MiB of
    // allocator slack; before these bounds, every body (32 of them).
    let bound = 4 * body + 32 * 256 * 1024 + 8 * 1024 * 1024;
    assert!(peak < bound, "held {peak} bytes, bodies of {body}");
    // Once they go, scrapes are answered again.
    drop(silent);
    let started = Instant::now();
    assert!(text(&addr).contains("records_total 500\n"));
    println!("the next scrape after they went: {:?}", started.elapsed());
    assert!(job.finish().success());
}

#[cfg(target_os = "linux")]
#[test]
fn head_answers_without_rendering() {
    let job = Served::start("serve", "heads", &[("TEST_SERIES", "50000")]);
    let addr = job.addr.clone();
    let pid = job.child.id();
    // What a few GETs cost, then fifty HEADs.
    let ticks = cpu_ticks(pid);
    for _ in 0..5 {
        text(&addr);
    }
    let gets = cpu_ticks(pid) - ticks;
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let ticks = cpu_ticks(pid);
    let mut answers = Vec::new();
    for _ in 0..50 {
        s.write_all(b"HEAD /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
            .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        answers.push(String::from_utf8(head).unwrap());
    }
    let heads = cpu_ticks(pid) - ticks;
    println!(
        "5 GETs: {gets} ticks; 50 HEADs: {heads} ticks\n{}",
        answers[0]
    );
    for answer in &answers {
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(
            answer.contains("content-type: text/plain; version=0.0.4; charset=utf-8\r\n"),
            "{answer}"
        );
        // The length of a body that was not rendered is not known.
        assert!(!answer.contains("content-length"), "{answer}");
    }
    // The connection carried no body: the next GET's answer is read right after them.
    s.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 12];
    s.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    assert!(
        gets >= 5,
        "5 GETs cost {gets} ticks: too few series to tell"
    );
    assert!(
        heads * 5 < gets,
        "50 HEADs cost {heads} ticks, 5 GETs {gets}"
    );
    assert!(job.finish().success());
}

#[cfg(unix)]
#[test]
fn a_forked_child_that_outlives_the_parent_does_not_keep_the_port() {
    let mut cmd = job_command(
        false,
        "serve-fork",
        "forked",
        &[
            ("PUSHGATEWAY_LISTEN", "127.0.0.1:0"),
            ("TEST_CHILD_MS", "20000"),
        ],
    );
    cmd.stdout(Stdio::piped());
    let mut parent = cmd.spawn().unwrap();
    let mut stdout = BufReader::new(parent.stdout.take().unwrap());
    assert_eq!(line(&mut stdout), "ready");
    let addr = line(&mut stdout)
        .strip_prefix("listening ")
        .unwrap()
        .to_owned();
    let child: i32 = line(&mut stdout)
        .strip_prefix("child ")
        .unwrap()
        .parse()
        .unwrap();
    assert!(parent.wait().unwrap().success());
    // The parent is gone, its child lives on.
    // SAFETY: signal 0 only checks that the process exists.
    assert_eq!(unsafe { libc::kill(child, 0) }, 0, "the child is gone");
    let held = child_listens_on(child, &addr);
    let bound = TcpListener::bind(&addr).map(drop);
    // SAFETY: the job's own child, which the test ends.
    unsafe { libc::kill(child, libc::SIGKILL) };
    assert!(
        !held,
        "the child still holds the listening socket of {addr}"
    );
    // The port is free, unless another test's server took it meanwhile (a port the kernel
    // hands out again): then it is not the child's.
    if let Err(e) = bound {
        assert!(
            TcpStream::connect(&addr).is_ok() && !child_listens_on(child, &addr),
            "the port is not free once the parent is gone: {e}"
        );
    }
}

/// Whether process `pid` holds a socket listening on `addr` (from /proc/net/tcp and its
/// /proc/<pid>/fd links).
#[cfg(target_os = "linux")]
fn child_listens_on(pid: i32, addr: &str) -> bool {
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let inodes: Vec<String> = tcp
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = u16::from_str_radix(fields[1].rsplit(':').next()?, 16).ok()?;
            // State 0A: LISTEN.
            (local_port == port && fields[3] == "0A").then(|| fields[9].to_owned())
        })
        .collect();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .any(|link| {
            inodes
                .iter()
                .any(|inode| link.to_string_lossy() == format!("socket:[{inode}]"))
        })
}

#[cfg(all(unix, not(target_os = "linux")))]
fn child_listens_on(_: i32, addr: &str) -> bool {
    TcpStream::connect(addr).is_ok()
}

#[test]
fn a_host_name_to_listen_on_is_refused_at_once_without_resolving_it() {
    for addr in ["metrics-host.invalid:9100", "localhost:9100"] {
        // Built (the first time) before the clock starts.
        let mut cmd = job_command(false, "try-init", "named", &[("PUSHGATEWAY_LISTEN", addr)]);
        let started = Instant::now();
        let out = cmd.output().unwrap();
        let took = started.elapsed();
        let host = addr.rsplit_once(':').unwrap().0;
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!(
                "err invalid value {addr:?} in environment variable PUSHGATEWAY_LISTEN: {host:?} is not an \
                 IP address: give one (0.0.0.0 for every interface, 127.0.0.1 or [::1] for \
                 this host only); host names are not resolved"
            )
        );
        assert!(took < Duration::from_secs(2), "{addr}: {took:?}");
    }
}
