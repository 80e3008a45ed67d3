//! The Pushgateway protocol: the group URL and its encoding, one push with retries, and what
//! each answer means.
//!
//! Source: the Pushgateway README ("URL", "PUT/POST/DELETE method") and the behaviour of
//! Pushgateway 1.5.1, summarised in the crate docs.

use std::cell::Cell;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use base64::engine::general_purpose::URL_SAFE;
use base64::Engine as _;
use bytes::Bytes;

use reqwest::header::{HeaderMap, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};

use crate::error::chain;
use crate::report::{PushError, PushReport};
use crate::target::TargetKind;

/// Time left for the last attempt before a push's deadline.
const LAST_ATTEMPT: Duration = Duration::from_millis(100);

/// How many bytes of an error answer are kept in [`PushError::Status`].
const MAX_ERROR_BODY: usize = 1024;

/// The HTTP method of a push.
///
/// Source: the Pushgateway README, "PUT method" and "POST method".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PushMethod {
    /// Replace every metric of the group (the default). Metrics recorded by an earlier run but
    /// not by this one disappear from the gateway.
    #[default]
    Put,
    /// Replace only the metric families present in the body; other families of the group stay.
    Post,
}

impl PushMethod {
    fn http(self) -> Method {
        match self {
            PushMethod::Put => Method::PUT,
            PushMethod::Post => Method::POST,
        }
    }
}

/// Whether a label value can go into the URL path as it is. Everything else goes as
/// `@base64`: empty values, `.` and `..` (a 301 to a cleaned path), `/` and `%` (decoded before
/// routing), `+` and spaces (clients that send a space as `+` corrupt it), and non-ASCII.
fn is_plain(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Appends `/{name}/{value}` (or `/{name}@base64/{encoded}`) to `path`.
///
/// The base64 form uses the URL-safe alphabet with padding; the empty value is `=`, as the
/// Pushgateway README asks.
pub(crate) fn push_segment(path: &mut String, name: &str, value: &str) {
    path.push('/');
    path.push_str(name);
    if is_plain(value) {
        path.push('/');
        path.push_str(value);
    } else {
        path.push_str("@base64/");
        if value.is_empty() {
            path.push('=');
        } else {
            URL_SAFE.encode_string(value, path);
        }
    }
}

/// The group's path below `/metrics`: `/job/{job}{/{label}/{value}}`, encoded.
pub(crate) fn group_path(job: &str, grouping: &[(String, String)]) -> String {
    let mut path = String::new();
    push_segment(&mut path, "job", job);
    for (name, value) in grouping {
        push_segment(&mut path, name, value);
    }
    path
}

/// The URL of the group at `group` (a [`group_path`]) on the gateway at `endpoint`, keeping
/// any path prefix of the endpoint (a gateway behind a reverse proxy).
pub(crate) fn url_for(endpoint: &Url, group: &str) -> Url {
    let mut path = endpoint.path().trim_end_matches('/').to_owned();
    path.push_str("/metrics");
    path.push_str(group);
    let mut url = endpoint.clone();
    url.set_path(&path);
    url
}

/// Builds the group URL `{endpoint}/metrics/job/{job}{/{label}/{value}}`.
#[cfg(test)]
pub(crate) fn group_url(endpoint: &Url, job: &str, grouping: &[(String, String)]) -> Url {
    url_for(endpoint, &group_path(job, grouping))
}

/// The outcome of one attempt.
enum Attempt {
    Done(u16),
    Retry(PushError),
    Fail(PushError),
}

/// One request to a target: where, how and what.
pub(crate) struct Request<'a> {
    pub(crate) target: TargetKind,
    pub(crate) url: &'a Url,
    /// The URL as text, for errors and logs (it never holds credentials).
    pub(crate) url_text: &'a str,
    pub(crate) method: Method,
    /// The body's headers (content type and encoding).
    pub(crate) headers: &'a HeaderMap,
    pub(crate) body: Bytes,
}

impl<'a> Request<'a> {
    /// A push of `body` (exposition text, gzip-compressed or not) to a group.
    pub(crate) fn push(
        url: &'a Url,
        url_text: &'a str,
        method: PushMethod,
        headers: &'a HeaderMap,
        body: Bytes,
    ) -> Self {
        Request {
            target: TargetKind::Pushgateway,
            url,
            url_text,
            method: method.http(),
            headers,
            body,
        }
    }

    /// The deletion of a group.
    pub(crate) fn delete(url: &'a Url, url_text: &'a str) -> Self {
        static NONE: std::sync::LazyLock<HeaderMap> = std::sync::LazyLock::new(HeaderMap::new);
        Request {
            target: TargetKind::Pushgateway,
            url,
            url_text,
            method: Method::DELETE,
            headers: &NONE,
            body: Bytes::new(),
        }
    }
}

/// The headers of a push body: the text format or protobuf, gzip-compressed or not.
pub(crate) fn push_headers(gzip: bool, protobuf: bool) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let format = if protobuf {
        crate::encode::protobuf::PROTOBUF_FORMAT
    } else {
        crate::encode::TEXT_FORMAT
    };
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(format));
    if gzip {
        // Pushgateway 1.5.1 matches the encoding case-sensitively.
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    headers
}

/// Sends `request`, retrying connection errors and the statuses [`is_retryable`] names with
/// exponential backoff and jitter until `deadline` (or, when `retry` is false, making one
/// attempt).
///
/// `in_flight` is true while an attempt is under way and false between attempts, so that the
/// pusher can tell whether dropping this future would cut a request short.
pub(crate) async fn send(
    client: &reqwest::Client,
    request: &Request<'_>,
    deadline: Instant,
    budget: Duration,
    retry: bool,
    in_flight: &Cell<bool>,
) -> Result<PushReport, PushError> {
    let start = Instant::now();
    let mut backoff = ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(50))
        .with_max_delay(Duration::from_secs(2))
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build();
    let mut attempts = 0;
    let mut last: Option<PushError> = None;
    let timed_out = |attempts, last: Option<PushError>| PushError::Timeout {
        target: request.target,
        url: request.url_text.to_owned(),
        timeout: budget,
        attempts,
        last_error: last.map(Box::new),
    };
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(timed_out(attempts, last));
        }
        attempts += 1;
        in_flight.set(true);
        let attempt =
            tokio::time::timeout_at(deadline.into(), attempt(client, request, attempts)).await;
        in_flight.set(false);
        let err = match attempt {
            Err(_elapsed) => return Err(timed_out(attempts, last)),
            Ok(Attempt::Done(status)) => {
                return Ok(PushReport::sent(
                    Some(status),
                    attempts,
                    request.body.len(),
                    start.elapsed(),
                ))
            }
            Ok(Attempt::Fail(err)) => return Err(err),
            Ok(Attempt::Retry(err)) if !retry => return Err(err),
            Ok(Attempt::Retry(err)) => err,
        };
        let mut delay = backoff.next().unwrap_or(Duration::from_secs(2));
        let left = deadline.saturating_duration_since(Instant::now());
        if delay + LAST_ATTEMPT >= left {
            // One last attempt shortly before the deadline, if there is time for it.
            match left.checked_sub(LAST_ATTEMPT) {
                Some(d) if d >= Duration::from_millis(10) => delay = d,
                _ => return Err(err),
            }
        }
        tracing::debug!(url = %request.url_text, error = %err, ?delay, "push failed, retrying");
        last = Some(err);
        tokio::time::sleep(delay).await;
    }
}

async fn attempt(client: &reqwest::Client, request: &Request<'_>, attempts: u32) -> Attempt {
    let mut builder = client
        .request(request.method.clone(), request.url.clone())
        .headers(request.headers.clone());
    if request.method != Method::DELETE {
        builder = builder.body(request.body.clone());
    }
    let target = request.target;
    let response = match builder.send().await {
        Ok(r) => r,
        Err(source) => {
            let cause = transport_cause(&source);
            let url = request.url_text.to_owned();
            // A certificate that is not trusted, or a handshake the gateway refused, is
            // refused again on every retry.
            return match tls_refusal(&source) {
                Some(hint) => Attempt::Fail(PushError::Tls {
                    target,
                    url,
                    cause: format!("{cause}{hint}"),
                    source: source.into(),
                }),
                None => Attempt::Retry(PushError::Transport {
                    target,
                    url,
                    cause,
                    attempts,
                    source: source.into(),
                }),
            };
        }
    };
    let status = response.status();
    if status.is_success() {
        return Attempt::Done(status.as_u16());
    }
    let text = match response.bytes().await {
        Ok(b) => {
            let b = &b[..b.len().min(MAX_ERROR_BODY)];
            String::from_utf8_lossy(b).trim().to_owned()
        }
        Err(e) => format!("(response body unreadable: {})", chain(&e)),
    };
    let err = PushError::Status {
        target,
        url: request.url_text.to_owned(),
        status: status.as_u16(),
        body: text,
        attempts,
    };
    if is_retryable(target, status) {
        Attempt::Retry(err)
    } else {
        Attempt::Fail(err)
    }
}

/// Whether a request `target` answered with `status` may succeed later: 5xx and 429 Too Many
/// Requests, and from a Pushgateway also 408 Request Timeout. The remote-write specification
/// asks senders to retry 5xx and 429 only, never another 4xx: a receiver refuses the same
/// samples again (out of order, invalid labels).
pub(crate) fn is_retryable(target: TargetKind, status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::REQUEST_TIMEOUT && target == TargetKind::Pushgateway)
}

/// Whether `err` is a TLS failure that retrying cannot fix (a certificate not trusted, a
/// handshake the gateway refused), with a hint for the configuration to look at.
#[cfg(not(feature = "tls"))]
fn tls_refusal(_: &reqwest::Error) -> Option<&'static str> {
    None
}

#[cfg(feature = "tls")]
fn tls_refusal(err: &reqwest::Error) -> Option<&'static str> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        // `io::Error` hides the error it wraps from `source()`, and may wrap another one.
        let mut candidate = e;
        loop {
            if let Some(tls) = candidate.downcast_ref::<rustls::Error>() {
                return Some(tls_hint(tls));
            }
            match candidate
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
            {
                Some(inner) => candidate = inner,
                None => break,
            }
        }
        source = e.source();
    }
    None
}

#[cfg(feature = "tls")]
fn tls_hint(err: &rustls::Error) -> &'static str {
    use rustls::{AlertDescription, CertificateError, Error};
    match err {
        Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            " (the gateway's certificate is not signed by a trusted CA: give its CA with \
             ca_certificate or PUSHGATEWAY_CA_FILE)"
        }
        Error::InvalidCertificate(_) => " (the gateway's certificate was refused)",
        Error::AlertReceived(
            AlertDescription::CertificateRequired
            | AlertDescription::BadCertificate
            | AlertDescription::HandshakeFailure,
        ) => {
            " (the gateway requires a client certificate it trusts: give one with \
             client_identity or PUSHGATEWAY_CLIENT_CERT_FILE and PUSHGATEWAY_CLIENT_KEY_FILE)"
        }
        Error::AlertReceived(_) => " (the gateway refused the TLS handshake)",
        _ => "",
    }
}

/// The cause of a transport error without reqwest's own "error sending request for url (...)"
/// prefix, which repeats the URL.
fn transport_cause(err: &reqwest::Error) -> String {
    match std::error::Error::source(err) {
        Some(source) => chain(source),
        None => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(name: &str, value: &str) -> String {
        let mut s = String::new();
        push_segment(&mut s, name, value);
        s
    }

    #[test]
    fn plain_values_stay_plain() {
        assert_eq!(segment("instance", "run-42_a"), "/instance/run-42_a");
        assert_eq!(segment("job", "ingester"), "/job/ingester");
    }

    #[test]
    fn awkward_values_go_as_base64() {
        // empty: `=`, as the Pushgateway README asks
        assert_eq!(segment("instance", ""), "/instance@base64/=");
        // `/` must not split the path, `.`/`..` must not be cleaned away
        assert_eq!(segment("path", "a/b"), "/path@base64/YS9i");
        assert_eq!(segment("v", "."), "/v@base64/Lg==");
        assert_eq!(segment("v", ".."), "/v@base64/Li4=");
        // a space must never arrive as `+`, and `+` must stay `+`
        assert_eq!(segment("v", "a b"), "/v@base64/YSBi");
        assert_eq!(segment("v", "a+b"), "/v@base64/YSti");
        assert_eq!(segment("v", "100%"), "/v@base64/MTAwJQ==");
        // non-ASCII, and the URL-safe alphabet (`-`/`_`, never `+`/`/`)
        assert_eq!(segment("v", "zürich"), "/v@base64/esO8cmljaA==");
        assert_eq!(segment("v", "~~~"), "/v@base64/fn5-");
    }

    #[test]
    fn group_url_keeps_a_path_prefix() {
        let endpoint = Url::parse("https://proxy.example/pushgateway/").unwrap();
        let url = group_url(
            &endpoint,
            "my job",
            &[
                ("instance".into(), "run-1".into()),
                ("path".into(), "/tmp/x".into()),
            ],
        );
        assert_eq!(
            url.as_str(),
            "https://proxy.example/pushgateway/metrics/job@base64/bXkgam9i/instance/run-1/path@base64/L3RtcC94"
        );
        let url = group_url(&Url::parse("http://127.0.0.1:9091").unwrap(), "j", &[]);
        assert_eq!(url.as_str(), "http://127.0.0.1:9091/metrics/job/j");
    }

    #[test]
    fn retryable_statuses() {
        let status = |s| StatusCode::from_u16(s).unwrap();
        for s in [500, 502, 503, 504, 408, 429] {
            assert!(is_retryable(TargetKind::Pushgateway, status(s)), "{s}");
        }
        for s in [500, 503, 429] {
            assert!(is_retryable(TargetKind::RemoteWrite, status(s)), "{s}");
        }
        for s in [400, 401, 403, 404, 405, 301, 302] {
            assert!(!is_retryable(TargetKind::Pushgateway, status(s)), "{s}");
            assert!(!is_retryable(TargetKind::RemoteWrite, status(s)), "{s}");
        }
        assert!(!is_retryable(TargetKind::RemoteWrite, status(408)));
    }

    mod properties {
        use super::*;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use proptest::prelude::*;

        /// The Pushgateway's reading of a group path (its `splitLabels`): `/`-separated
        /// name/value pairs; a name ending in `@base64` has its value decoded with the URL-safe
        /// alphabet, padding optional, and must be UTF-8; other values are taken as they are
        /// (after the router's percent-decoding, which plain values never need).
        fn gateway_decode(path: &str) -> Option<Vec<(String, String)>> {
            let parts: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
            if !parts.len().is_multiple_of(2) {
                return None;
            }
            parts
                .chunks(2)
                .map(|pair| match pair[0].strip_suffix("@base64") {
                    Some(name) => {
                        let bytes = URL_SAFE_NO_PAD.decode(pair[1].trim_end_matches('=')).ok()?;
                        Some((name.to_owned(), String::from_utf8(bytes).ok()?))
                    }
                    None => {
                        let value = percent_encoding::percent_decode_str(pair[1])
                            .decode_utf8()
                            .ok()?;
                        Some((pair[0].to_owned(), value.into_owned()))
                    }
                })
                .collect()
        }

        proptest! {
            #[test]
            fn any_grouping_value_round_trips(job in ".{1,12}", value in any::<String>()) {
                let grouping = vec![("instance".to_owned(), value.clone())];
                let path = group_path(&job, &grouping);
                prop_assert_eq!(
                    gateway_decode(&path),
                    Some(vec![("job".to_owned(), job.clone()), ("instance".to_owned(), value)])
                );
                // The URL keeps the path exactly: no dot segments removed, nothing re-encoded.
                let url = url_for(&Url::parse("http://127.0.0.1:9091/prefix").unwrap(), &path);
                prop_assert_eq!(url.path(), format!("/prefix/metrics{path}"));
            }
        }
    }
}
