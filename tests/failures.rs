//! A dead, hanging or refusing gateway at exit never hangs the job nor changes its exit
//! status; answers are retried or not as the protocol says; the final push is the last request.

mod common;

use std::net::TcpListener;
use std::time::Duration;

use common::*;
use wiremock::matchers::{header, method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The shutdown timeout the jobs here run with, and the margin allowed on top of it for the
/// 200 ms grace and process start and teardown on a loaded machine.
const SHUTDOWN: Duration = Duration::from_secs(1);
const MARGIN: Duration = Duration::from_millis(1000);

fn run_against(url: &str, scenario: &str, job: &str) -> (std::process::Output, Duration) {
    run_job(
        false,
        scenario,
        job,
        &[],
        &[
            ("PUSHGATEWAY_URL", url),
            ("PUSHGATEWAY_SHUTDOWN_TIMEOUT", "1s"),
            // The bodies are read here: text.
            ("PUSHGATEWAY_FORMAT", "text"),
        ],
    )
}

/// The job exits 0 within the shutdown timeout plus the margin, with one error line that
/// names the group URL and `cause`.
fn assert_bounded_failure(url: &str, cause: &str) {
    let (out, elapsed) = run_against(url, "main", "doomed");
    assert_eq!(out.status.code(), Some(0), "the job's own status");
    assert!(elapsed < SHUTDOWN + MARGIN, "took {elapsed:?}");
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one error line: {err}");
    assert!(lines[0].contains("final push failed"), "{err}");
    assert!(
        lines[0].contains(&format!("{url}/metrics/job/doomed")),
        "{err}"
    );
    assert!(lines[0].contains(cause), "expected {cause:?} in {err}");
    println!("exited in {elapsed:?}: {}", lines[0]);
}

#[test]
fn gateway_refusing_connections() {
    let url = format!("http://127.0.0.1:{}", free_port());
    assert_bounded_failure(&url, "Connection refused");
}

#[test]
fn gateway_accepting_but_never_answering() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    assert_bounded_failure(&url, "did not finish within 1.000s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_answering_503_is_retried_until_the_deadline() {
    let server = MockServer::start().await;
    Mock::given(path_regex("^/metrics/job/"))
        .respond_with(ResponseTemplate::new(503).set_body_string("overloaded"))
        .mount(&server)
        .await;
    assert_bounded_failure(&server.uri(), "answered 503");
    let requests = without_warm_up(server.received_requests().await.unwrap());
    assert!(requests.len() >= 3, "retried: {} requests", requests.len());
    // Backoff: not a storm (50 ms doubling to 2 s within 1 s is at most about 6 attempts).
    assert!(requests.len() <= 8, "{} requests", requests.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_503_503_200_end_in_success() {
    let server = MockServer::start().await;
    Mock::given(path_regex("^/metrics/job/"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(path_regex("^/metrics/job/"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let (out, elapsed) = run_against(&server.uri(), "shutdown", "flaky");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok Some(200)\n");
    assert_eq!(out.status.code(), Some(0), "the job's own status");
    assert!(elapsed < SHUTDOWN + MARGIN, "took {elapsed:?}");
    let requests = without_warm_up(server.received_requests().await.unwrap());
    assert_eq!(requests.len(), 3);
    let body = String::from_utf8_lossy(&requests[2].body).into_owned();
    assert!(body.contains("records_total 500\n"), "{body}");
    // No sample timestamps: every sample line is `name{labels} value`.
    for line in body
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        assert_eq!(line.split(' ').count(), 2, "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_errors_are_not_retried_and_keep_no_secret() {
    let server = MockServer::start().await;
    Mock::given(path_regex("^/metrics/job/"))
        .respond_with(ResponseTemplate::new(401).set_body_string("Unauthorized"))
        .mount(&server)
        .await;
    let (out, _) = run_job(
        false,
        "shutdown",
        "locked",
        &[],
        &[
            ("PUSHGATEWAY_URL", &server.uri()),
            ("PUSHGATEWAY_USERNAME", "ci"),
            ("PUSHGATEWAY_PASSWORD", "hunter2-secret"),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        stdout,
        format!(
            "err Pushgateway {}/metrics/job/locked answered 401 after 1 attempt(s): Unauthorized\n",
            server.uri()
        )
    );
    let requests = without_warm_up(server.received_requests().await.unwrap());
    assert_eq!(requests.len(), 1, "a 401 is not retried");
    // base64("ci:hunter2-secret")
    assert_eq!(
        requests[0].headers["authorization"],
        "Basic Y2k6aHVudGVyMi1zZWNyZXQ="
    );
    assert!(!stdout.contains("hunter2") && !stderr(&out).contains("hunter2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_is_sent() {
    let server = MockServer::start().await;
    Mock::given(header("authorization", "Bearer t0ken"))
        .and(method("PUT"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let (out, _) = run_job(
        false,
        "shutdown",
        "bearer",
        &[],
        &[
            ("PUSHGATEWAY_URL", &server.uri()),
            ("PUSHGATEWAY_BEARER_TOKEN", "t0ken"),
        ],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok Some(200)\n");
}

#[test]
fn gateway_400_carries_the_gateways_explanation() {
    let gw = Pushgateway::start();
    // Another group already has `queue_depth` as a counter; the job pushes it as a gauge.
    let r = client()
        .put(format!("{}/metrics/job/other", gw.url))
        .body("# TYPE queue_depth counter\nqueue_depth 1\n")
        .send()
        .unwrap();
    assert!(r.status().is_success());
    let (out, _) = run_job(
        false,
        "shutdown",
        "clash",
        &[],
        &[("PUSHGATEWAY_URL", &gw.url)],
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        stdout.starts_with(&format!(
            "err Pushgateway {}/metrics/job/clash answered 400 after 1 attempt(s): ",
            gw.url
        )),
        "{stdout}"
    );
    assert!(stdout.contains("queue_depth"), "{stdout}");
    assert!(stdout.contains("inconsistent"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_final_push_is_the_last_request() {
    let server = MockServer::start().await;
    Mock::given(path_regex("^/metrics/job/"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(150)))
        .mount(&server)
        .await;
    let (out, _) = run_job(
        false,
        "final-is-last",
        "ordered",
        &[],
        &[
            ("PUSHGATEWAY_URL", &server.uri()),
            ("PUSHGATEWAY_INTERVAL", "20ms"),
            ("PUSHGATEWAY_FORMAT", "text"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let requests = without_warm_up(server.received_requests().await.unwrap());
    assert!(
        requests.len() >= 2,
        "interval pushes ran: {}",
        requests.len()
    );
    let (last, earlier) = requests.split_last().unwrap();
    let body = String::from_utf8_lossy(&last.body);
    assert_eq!(last.method.as_str(), "PUT");
    assert!(body.contains("records_total 2\n"), "{body}");
    assert!(body.contains("outcome=\"success\""), "{body}");
    for r in earlier {
        let body = String::from_utf8_lossy(&r.body);
        assert_eq!(
            r.method.as_str(),
            "POST",
            "interval pushes keep the last success"
        );
        assert!(body.contains("outcome=\"running\""), "{body}");
    }
}

#[test]
#[cfg(unix)]
fn delete_on_shutdown_removes_the_group() {
    use std::os::unix::process::ExitStatusExt as _;

    let gw = Pushgateway::start();
    let mut child = start_job(
        false,
        "signal",
        "service",
        &[
            ("PUSHGATEWAY_URL", &gw.url),
            ("PUSHGATEWAY_INTERVAL", "50ms"),
            ("TEST_DELETE_ON_SHUTDOWN", "1"),
        ],
    )
    .child;
    // Interval pushes create the group ...
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while gw.group(&[("job", "service")]).is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "no interval push arrived"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(gw.job("service").value("records_total", &[]), 500.0);
    // ... and stopping the service deletes it.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGTERM));
    assert!(
        gw.group(&[("job", "service")]).is_none(),
        "{:#?}",
        gw.groups()
    );
}

#[test]
#[cfg(unix)]
fn push_and_continue_leaves_the_process_running() {
    use std::io::Read as _;

    let gw = Pushgateway::start();
    let mut job = start_job(
        false,
        "signal",
        "graceful",
        &[("PUSHGATEWAY_URL", &gw.url), ("TEST_SIGNALS_CONTINUE", "1")],
    );
    unsafe { libc::kill(job.child.id() as i32, libc::SIGTERM) };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while gw.group(&[("job", "graceful")]).is_none() {
        assert!(std::time::Instant::now() < deadline, "no push on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    let group = gw.job("graceful");
    assert_eq!(group.value("records_total", &[]), 500.0);
    assert_eq!(
        group.value("batch_job_outcome", &[("outcome", "running")]),
        1.0
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(job.child.try_wait().unwrap().is_none(), "still running");
    job.child.kill().unwrap();
    let mut err = String::new();
    job.child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(err, "");
}

#[test]
fn a_huge_error_body_is_not_read() {
    // A gateway (here a loopback server) that answers 500 with a 1 GiB body, written as fast
    // as the client reads it: the client keeps 1 KiB of it and closes the connection, so the
    // server cannot write much; reading it all cost a job gigabytes.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let written = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = std::sync::Arc::clone(&written);
    std::thread::spawn(move || {
        let started = std::time::Instant::now();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let seen = std::sync::Arc::clone(&seen);
            std::thread::spawn(move || {
                use std::io::{Read as _, Write as _};
                let mut head = [0u8; 65536];
                let _ = stream.read(&mut head);
                let _ = stream.write_all(
                    b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 1073741824\r\n\r\n",
                );
                let chunk = vec![b'x'; 65536];
                let mut sent = 0usize;
                // Bounded: at most 1 GiB and 20 s per connection.
                while sent < 1 << 30 && started.elapsed() < Duration::from_secs(20) {
                    match stream.write(&chunk) {
                        Ok(n) if n > 0 => sent += n,
                        _ => break,
                    }
                }
                seen.lock().unwrap().push(sent);
            });
        }
    });
    let (out, elapsed) = run_against(&url, "main", "huge-answer");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(elapsed < SHUTDOWN + MARGIN, "took {elapsed:?}");
    let err = stderr(&out);
    assert!(err.contains("answered 500"), "{err}");
    assert!(
        err.len() < 2048,
        "the line holds at most 1 KiB of the body: {err}"
    );
    std::thread::sleep(Duration::from_millis(300));
    let written = written.lock().unwrap().clone();
    assert!(!written.is_empty(), "the job connected");
    for sent in written {
        assert!(
            sent < 64 << 20,
            "the client stopped reading after its 1 KiB; the server wrote {sent} bytes"
        );
    }
}

/// A token in a remote-write URL's query string and a password holding `/` and `#` show
/// nowhere: not in errors, not in the logs (every line of the exporter and its HTTP client),
/// not in the `target` label of the exporter's own metrics stored at the gateway. The request
/// itself still carries the token.
#[test]
fn query_tokens_and_odd_passwords_show_nowhere() {
    let gw = Pushgateway::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let receiver = rt.block_on(async {
        let receiver = MockServer::start().await;
        Mock::given(path_regex("^/api/v1/write$"))
            .respond_with(ResponseTemplate::new(401).set_body_string("bad token"))
            .mount(&receiver)
            .await;
        receiver
    });
    let token = "tok-s3cret-9f2";
    let rw_url = format!("{}/api/v1/write?access_token={token}", receiver.uri());
    let (out, _) = run_job(
        false,
        "main",
        "tokens",
        &[],
        &[
            ("PUSHGATEWAY_URL", &gw.url),
            ("PUSHGATEWAY_REMOTE_WRITE_URL", &rw_url),
            ("PUSHGATEWAY_SELF_METRICS", "true"),
            ("PUSHGATEWAY_INTERVAL", "100ms"),
            ("TEST_TRACING", "1"),
        ],
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let shown = format!("{}/api/v1/write?access_token=***", receiver.uri());
    assert!(
        err.contains(&format!("remote write {shown} answered 401")),
        "{err}"
    );
    assert!(!err.contains(token), "the token is in the logs: {err}");
    let group = gw.job("tokens");
    let targets: Vec<String> = group
        .samples("pushgateway_exporter_pushes_total")
        .iter()
        .map(|s| s["labels"]["target"].as_str().unwrap_or("").to_owned())
        .collect();
    assert!(targets.contains(&shown), "{targets:?} {:#}", group.0);
    let stored = client()
        .get(format!("{}/metrics", gw.url))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        !stored.contains(token),
        "the token is stored at the gateway"
    );
    let requests = rt.block_on(receiver.received_requests()).unwrap();
    assert!(!requests.is_empty());
    assert!(requests
        .iter()
        .all(|r| r.url.query() == Some(&format!("access_token={token}")[..])));

    // A password holding an unencoded `/` and `#` makes the URL invalid; the error hides it.
    let (out, _) = run_job(
        false,
        "main",
        "odd",
        &[],
        &[(
            "PUSHGATEWAY_URL",
            &format!("{},http://alice:se/cr#et@127.0.0.1:9", gw.url),
        )],
    );
    let err = stderr(&out);
    assert!(err.contains("alice:***@127.0.0.1:9"), "{err}");
    for part in ["se/cr", "cr#et", "#et"] {
        assert!(!err.contains(part), "{part} in {err}");
    }
}

/// `Retry-After` is honoured: a wait past the deadline is not waited for (one attempt, and the
/// line says why), a wait within it is (the retry comes no earlier).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured_within_the_deadline() {
    let server = MockServer::start().await;
    Mock::given(path_regex("^/metrics/job/far$"))
        .respond_with(ResponseTemplate::new(503).insert_header("Retry-After", "3600"))
        .mount(&server)
        .await;
    Mock::given(path_regex("^/metrics/job/near$"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path_regex("^/metrics/job/near$"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let env = [
        ("PUSHGATEWAY_URL", server.uri()),
        ("PUSHGATEWAY_SHUTDOWN_TIMEOUT", "3s".into()),
        ("PUSHGATEWAY_INTERVAL", "off".into()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let (out, elapsed) = run_job(false, "shutdown", "far", &[], &env);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        stdout.contains("answered 503 after 1 attempt(s)")
            && stdout
                .contains("it asked to retry after 3600s (Retry-After), past this push's deadline"),
        "{stdout}"
    );
    assert!(elapsed < Duration::from_secs(2), "waited: {elapsed:?}");

    let (out, elapsed) = run_job(false, "shutdown", "near", &[], &env);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok Some(200)\n");
    assert!(
        elapsed >= Duration::from_secs(1),
        "retried before Retry-After: {elapsed:?}"
    );
    let near = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == "/metrics/job/near")
        .count();
    assert_eq!(near, 2);
}

/// A redirect is not followed and the line says where it pointed; a 413 says how big the body
/// was and shows only the start of a long answer, on one line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_and_oversized_bodies_are_explained_on_one_line() {
    let server = MockServer::start().await;
    Mock::given(path_regex("^/metrics/job/moved$"))
        .respond_with(
            ResponseTemplate::new(307)
                .insert_header("Location", "http://127.0.0.1:1/elsewhere?token=leak"),
        )
        .mount(&server)
        .await;
    let page = format!(
        "<html>\n<h1>413 Request Entity Too Large</h1>\n{}</html>",
        "x".repeat(5000)
    );
    Mock::given(path_regex("^/metrics/job/big$"))
        .respond_with(ResponseTemplate::new(413).set_body_string(page))
        .mount(&server)
        .await;
    let env = [
        ("PUSHGATEWAY_URL", server.uri()),
        ("PUSHGATEWAY_FORMAT", "text".into()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let (out, _) = run_job(false, "main", "moved", &[], &env);
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("answered 307 after 1 attempt(s): a redirect to http://127.0.0.1:1/elsewhere?token=***, which is not followed"),
        "{err}"
    );
    assert!(!err.contains("leak"), "{err}");

    let (out, _) = run_job(false, "main", "big", &[], &env);
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("answered 413 after 1 attempt(s): the body of "),
        "{err}"
    );
    assert!(
        err.contains("bytes is over the target's request size limit; <html> <h1>413 Request Entity Too Large</h1> xxx"),
        "{err}"
    );
    assert!(err.len() < 700, "{} bytes: {err}", err.len());
}

/// `PushError`'s accessors on the error of a real push: the kind of target, where it went
/// (without the credentials of the URL) and how many requests were sent (one: a 404 is never
/// retried). In-process, through `build()`, which installs nothing process-wide.
#[test]
fn a_push_error_names_its_target_location_and_attempts() {
    use metrics_exporter_pushgateway::{PushError, PushgatewayBuilder, SignalHandling, TargetKind};
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(MockServer::start());
    runtime.block_on(
        Mock::given(method("PUT"))
            .respond_with(ResponseTemplate::new(404).set_body_string("no such gateway"))
            .mount(&server),
    );
    let url = server
        .uri()
        .replace("http://", "http://user:secret-password@");
    let (_recorder, guard) = PushgatewayBuilder::new(url)
        .job("accessors")
        .interval(Duration::ZERO)
        .signals(SignalHandling::Ignore)
        .build()
        .expect("build");
    let err = guard.flush().expect_err("the mock answers 404");
    assert!(
        matches!(err, PushError::Status { status: 404, .. }),
        "{err}"
    );
    assert_eq!(err.target(), Some(TargetKind::Pushgateway));
    assert_eq!(
        err.location().as_deref(),
        Some(format!("{}/metrics/job/accessors", server.uri()).as_str())
    );
    assert!(!err.to_string().contains("secret-password"), "{err}");
    assert_eq!(err.attempts(), 1);
    assert_eq!(PushError::ShutDown.target(), None);
    assert_eq!(PushError::ShutDown.location(), None);
    assert_eq!(PushError::ShutDown.attempts(), 0);
    drop(guard);
}
