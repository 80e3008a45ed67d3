//! TLS, basic auth and mutual TLS against the real Pushgateway, started with a
//! `--web.config.file` and certificates made for each test.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::tls::{bcrypt_hash, write, Ca};
use common::*;

/// A secured gateway and the files a job needs to reach it.
struct Secured {
    gw: Pushgateway,
    ca_file: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    _dir: tempfile::TempDir,
}

/// Starts a gateway with TLS (a certificate for 127.0.0.1 from a fresh CA) and `extra`
/// appended to `tls_server_config`, plus `top` at the top level of the web config.
fn secured(client_auth: bool, basic_auth: Option<(&str, &str)>) -> Secured {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let (cert, key) = ca.sign(&["127.0.0.1", "localhost"]);
    let client_ca = Ca::new("test client CA");
    let (client_cert, client_key) = client_ca.sign(&["pusher"]);
    let p = dir.path();
    let ca_file = write(p, "ca.pem", &ca.cert_pem);
    let mut config = format!(
        "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
        write(p, "server.pem", &cert).display(),
        write(p, "server.key", &key).display(),
    );
    if client_auth {
        config += &format!(
            "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {}\n",
            write(p, "client-ca.pem", &client_ca.cert_pem).display()
        );
    }
    if let Some((user, password)) = basic_auth {
        config += &format!("basic_auth_users:\n  {user}: '{}'\n", bcrypt_hash(password));
    }
    let web_config = write(p, "web.yml", &config);
    // The client that reads the gateway back has everything it needs.
    let mut reader = reqwest::blocking::Client::builder()
        .use_rustls_tls()
        .timeout(Duration::from_secs(10))
        .add_root_certificate(reqwest::Certificate::from_pem(ca.cert_pem.as_bytes()).unwrap());
    if client_auth {
        let pem = format!("{client_key}\n{client_cert}");
        reader = reader.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    if let Some((user, password)) = basic_auth {
        let mut headers = reqwest::header::HeaderMap::new();
        let token = base64_basic(user, password);
        headers.insert(reqwest::header::AUTHORIZATION, token.parse().unwrap());
        reader = reader.default_headers(headers);
    }
    let gw = Pushgateway::start_secured(&web_config, "https", reader.build().unwrap());
    Secured {
        gw,
        ca_file,
        client_cert: write(p, "client.pem", &client_cert),
        client_key: write(p, "client.key", &client_key),
        _dir: dir,
    }
}

fn base64_basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// Runs the `flush` scenario (push once, print the result, then the final push) and returns
/// its stdout line, stderr and wall time.
fn flush(job: &str, env: &[(&str, &str)]) -> (String, String, Duration) {
    let (out, elapsed) = run_job(false, "flush", job, &[], env);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (stdout, stderr(&out), elapsed)
}

#[test]
fn tls_with_a_custom_ca_pushes() {
    let s = secured(false, None);
    let ca = s.ca_file.to_str().unwrap();
    let (out, err, _) = flush(
        "tls",
        &[("PUSHGATEWAY_URL", &s.gw.url), ("PUSHGATEWAY_CA_FILE", ca)],
    );
    assert_eq!(out, "ok status=Some(200) attempts=1");
    assert_eq!(err, "");
    assert!(s.gw.url.starts_with("https://"));
    assert_job_values(&s.gw.job("tls"), "success", 0);
}

#[test]
fn a_certificate_from_an_unknown_ca_is_refused_at_once() {
    let s = secured(false, None);
    let (out, err, elapsed) = flush(
        "untrusted",
        &[
            ("PUSHGATEWAY_URL", &s.gw.url),
            ("PUSHGATEWAY_SHUTDOWN_TIMEOUT", "5s"),
            ("PUSHGATEWAY_PUSH_TIMEOUT", "5s"),
        ],
    );
    let url = format!("{}/metrics/job/untrusted", s.gw.url);
    assert!(
        out.starts_with(&format!(
            "err status=None TLS with Pushgateway {url} failed: "
        )),
        "{out}"
    );
    println!("{out}");
    assert!(out.contains("UnknownIssuer"), "{out}");
    assert!(out.contains("not signed by a trusted CA"), "{out}");
    // Not retried until the timeout: a certificate does not become trusted by waiting.
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    assert!(
        err.contains("final push failed: TLS with Pushgateway"),
        "{err}"
    );
    assert!(s.gw.groups().is_empty());
}

#[test]
fn turning_verification_off_is_explicit_and_loud() {
    let s = secured(false, None);
    let (out, err, _) = flush(
        "unverified",
        &[
            ("PUSHGATEWAY_URL", &s.gw.url),
            ("TEST_DANGER_ACCEPT_INVALID_CERTS", "1"),
        ],
    );
    assert_eq!(out, "ok status=Some(200) attempts=1");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].contains("warning: certificate verification is off"),
        "{err}"
    );
    assert_job_values(&s.gw.job("unverified"), "success", 0);
}

#[test]
fn basic_auth_right_credentials_push_and_wrong_ones_get_401_once() {
    let s = secured(false, Some(("pusher", "correct-horse")));
    let ca = s.ca_file.to_str().unwrap();
    let (out, err, _) = flush(
        "authed",
        &[
            ("PUSHGATEWAY_URL", &s.gw.url),
            ("PUSHGATEWAY_CA_FILE", ca),
            ("PUSHGATEWAY_USERNAME", "pusher"),
            ("PUSHGATEWAY_PASSWORD", "correct-horse"),
        ],
    );
    assert_eq!(out, "ok status=Some(200) attempts=1");
    assert_eq!(err, "");
    assert_job_values(&s.gw.job("authed"), "success", 0);

    // Wrong password, with every log line of the exporter and its HTTP client on stderr.
    let (out, err, elapsed) = flush(
        "intruder",
        &[
            ("PUSHGATEWAY_URL", &s.gw.url),
            ("PUSHGATEWAY_CA_FILE", ca),
            ("PUSHGATEWAY_USERNAME", "pusher"),
            ("PUSHGATEWAY_PASSWORD", "battery-staple"),
            ("TEST_TRACING", "1"),
        ],
    );
    let url = format!("{}/metrics/job/intruder", s.gw.url);
    assert!(
        out.starts_with(&format!(
            "err status=Some(401) Pushgateway {url} answered 401 after 1 attempt(s)"
        )),
        "{out}"
    );
    assert!(elapsed < Duration::from_secs(3), "not retried: {elapsed:?}");
    assert!(err.contains("final push failed"), "{err}");
    assert!(err.lines().count() > 5, "trace logs are on: {err}");
    let basic = base64_basic("pusher", "battery-staple");
    for secret in ["battery-staple", basic.as_str(), &basic[6..]] {
        assert!(!out.contains(secret), "{secret} in {out}");
        assert!(!err.contains(secret), "{secret} in the logs");
    }
    assert!(s.gw.group(&[("job", "intruder")]).is_none());
}

#[test]
fn mutual_tls_pushes_with_a_client_certificate_and_is_refused_without() {
    let s = secured(true, None);
    let ca = s.ca_file.to_str().unwrap();
    let (cert, key) = (
        s.client_cert.to_str().unwrap(),
        s.client_key.to_str().unwrap(),
    );
    let (out, err, _) = flush(
        "mtls",
        &[
            ("PUSHGATEWAY_URL", &s.gw.url),
            ("PUSHGATEWAY_CA_FILE", ca),
            ("PUSHGATEWAY_CLIENT_CERT_FILE", cert),
            ("PUSHGATEWAY_CLIENT_KEY_FILE", key),
        ],
    );
    assert_eq!(out, "ok status=Some(200) attempts=1");
    assert_eq!(err, "");
    assert_job_values(&s.gw.job("mtls"), "success", 0);

    let (out, _, elapsed) = flush(
        "anonymous",
        &[
            ("PUSHGATEWAY_URL", &s.gw.url),
            ("PUSHGATEWAY_CA_FILE", ca),
            ("PUSHGATEWAY_PUSH_TIMEOUT", "5s"),
        ],
    );
    assert!(
        out.starts_with("err status=None TLS with Pushgateway"),
        "{out}"
    );
    println!("{out}");
    assert!(out.contains("requires a client certificate"), "{out}");
    assert!(elapsed < Duration::from_secs(3), "not retried: {elapsed:?}");
    assert!(s.gw.group(&[("job", "anonymous")]).is_none());
}

#[test]
fn pem_that_is_not_a_certificate_is_an_init_error() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = write(dir.path(), "bogus.pem", "this is not PEM\n");
    let (out, _) = run_job(
        false,
        "main",
        "bad-ca",
        &[],
        &[("PUSHGATEWAY_CA_FILE", bogus.to_str().unwrap())],
    );
    assert_eq!(
        out.status.code(),
        Some(101),
        "the configuration was refused"
    );
    let err = stderr(&out);
    // The error names the variable and the file.
    assert!(
        err.contains(&format!(
            "invalid value {:?} in environment variable PUSHGATEWAY_CA_FILE: no -----BEGIN \
             CERTIFICATE----- block found",
            bogus.to_str().unwrap()
        )),
        "{err}"
    );

    let (out, _) = run_job(
        false,
        "main",
        "no-key",
        &[],
        &[("PUSHGATEWAY_CLIENT_CERT_FILE", bogus.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(101));
    let err = stderr(&out);
    assert!(
        err.contains("environment variable PUSHGATEWAY_CLIENT_CERT_FILE: a client certificate needs its key in PUSHGATEWAY_CLIENT_KEY_FILE"),
        "{err}"
    );
}

#[test]
fn credentials_over_plain_http_to_another_host_log_one_warning() {
    // The warning comes at install. The job installs and ends without any push (the
    // `init-time` scenario forgets its guard), so nothing is sent to the address, which is
    // reserved for documentation (192.0.2.0/24).
    let (out, _) = run_job(
        false,
        "init-time",
        "exposed",
        &[],
        &[("PUSHGATEWAY_URL", "http://pusher:s3cret-pw@192.0.2.1:9091")],
    );
    assert_eq!(out.status.code(), Some(0));
    let err = stderr(&out);
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(
        warnings[0].contains(
            "credentials are sent over plain http to http://192.0.2.1:9091/metrics/job/exposed"
        ),
        "{err}"
    );
    assert!(!err.contains("s3cret-pw"), "{err}");

    // Over https, or to loopback, there is nothing to warn about.
    for (scenario, url) in [
        ("init-time", "https://pusher:s3cret-pw@192.0.2.1:9091"),
        ("main", "http://pusher:s3cret-pw@127.0.0.1:9"),
    ] {
        let (out, _) = run_job(
            false,
            scenario,
            "fine",
            &[],
            &[
                ("PUSHGATEWAY_URL", url),
                ("PUSHGATEWAY_SHUTDOWN_TIMEOUT", "300ms"),
            ],
        );
        assert!(!stderr(&out).contains("warning"), "{url}: {}", stderr(&out));
    }
}
