//! The HTTP transport every HTTP target shares: the client (TLS, headers, no redirects), one
//! request with retries and backoff within a deadline, and what each answer means.
//!
//! Source: the Pushgateway README and the behaviour of Pushgateway 1.5.1 (retry 5xx, 408, 429
//! and connection errors, never follow a redirect), the remote-write 1.0 specification (retry
//! 5xx and 429, never another 4xx).

pub(crate) use super::answer::is_retryable;
use super::answer::{retry_after, shown_body, tls_refusal, transport_cause, with_note};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use bytes::Bytes;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode, Url};

use crate::error::chain;
use crate::report::{PushError, PushReport};
use crate::target::TargetKind;
pub(crate) use crate::transport::TlsConfig;

/// Time left for the last attempt before a push's deadline.
const LAST_ATTEMPT: Duration = Duration::from_millis(100);

/// How many bytes of an error answer are kept in [`PushError::Status`].
const MAX_ERROR_BODY: usize = 1024;

/// How long an idle connection stays in the client's pool: below the idle timeouts of common
/// load balancers and proxies (AWS ALB 60 s, nginx `keepalive_timeout` 75 s, Go's
/// `http.Server` with `IdleTimeout`), so that a pooled connection is closed by this side first.
pub(crate) const POOL_IDLE: Duration = Duration::from_secs(30);

/// Idle time after which the kernel sends TCP keep-alive probes, and between probes; after
/// [`KEEPALIVE_RETRIES`] unanswered probes the connection is dropped. The probes also keep a
/// NAT's mapping of an idle connection alive.
const KEEPALIVE: Duration = Duration::from_secs(15);
const KEEPALIVE_RETRIES: u32 = 3;

/// How often the warm-up is repeated when no interval push keeps the connection in use: well
/// before [`POOL_IDLE`] expires and before an idle timeout of 30 s along the way.
pub(crate) const REWARM: Duration = Duration::from_secs(20);

/// At most this many bytes of a warm-up's answer are read; a longer answer's connection is
/// closed rather than pooled.
const MAX_WARM_BODY: usize = 64 * 1024;

/// A final push with no answer after this long on its first attempt (at least) also goes out
/// on a fresh connection: see [`Client::hedge`].
const HEDGE_MIN: Duration = Duration::from_millis(200);

/// Builds the HTTP client: default headers (auth), TLS, no redirects.
///
/// For a plain `http://` endpoint the built-in root certificates are not loaded: the client
/// never speaks TLS (redirects are not followed), and loading them is most of the client's
/// start-up.
pub(crate) fn build_client(
    endpoint: &Url,
    headers: &HeaderMap,
    tls: &TlsConfig,
) -> Result<reqwest::Client, String> {
    build(endpoint, headers, tls, true)
}

/// [`build_client`], with a pool of idle connections when `pooled`, or none (every request on
/// a fresh connection).
fn build(
    endpoint: &Url,
    headers: &HeaderMap,
    tls: &TlsConfig,
    pooled: bool,
) -> Result<reqwest::Client, String> {
    let builder = reqwest::Client::builder()
        // Also when another crate in the build turns on reqwest's `http2` feature: over
        // HTTP/2 a gateway's TLS alert surfaces as "connection closed".
        .http1_only()
        .default_headers(headers.clone())
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(POOL_IDLE)
        .pool_max_idle_per_host(if pooled { usize::MAX } else { 0 })
        .tcp_keepalive(KEEPALIVE)
        .tcp_keepalive_interval(KEEPALIVE)
        .tcp_keepalive_retries(KEEPALIVE_RETRIES)
        .user_agent(concat!(
            env!("CARGO_PKG_NAME"),
            "/",
            env!("CARGO_PKG_VERSION")
        ));
    #[cfg(feature = "tls")]
    let builder = with_tls(builder.use_rustls_tls(), endpoint, tls)?;
    #[cfg(not(feature = "tls"))]
    let _ = (endpoint, tls);
    builder.build().map_err(|e| crate::error::chain(&e))
}

/// The TLS settings of the client: no roots loaded for `http://`, a private CA, a client
/// identity.
#[cfg(feature = "tls")]
fn with_tls(
    mut builder: reqwest::ClientBuilder,
    endpoint: &Url,
    tls: &TlsConfig,
) -> Result<reqwest::ClientBuilder, String> {
    if endpoint.scheme() == "http" {
        builder = builder.tls_built_in_root_certs(false);
    }
    if !tls.ca_pem.is_empty() {
        for cert in reqwest::Certificate::from_pem_bundle(&tls.ca_pem)
            .map_err(|e| format!("CA certificate: {}", crate::error::chain(&e)))?
        {
            builder = builder.add_root_certificate(cert);
        }
    }
    if let Some(pem) = &tls.identity_pem {
        let identity = reqwest::Identity::from_pem(pem)
            .map_err(|e| format!("client identity: {}", crate::error::chain(&e)))?;
        builder = builder.identity(identity);
    }
    if tls.accept_invalid_certs {
        builder = builder.danger_accept_invalid_certs(true);
    }
    Ok(builder)
}

/// The HTTP client of one target, built on the pusher thread by [`start`](Self::start) (TLS
/// roots and all), so that `install()` never waits for it.
///
/// The client keeps its connections in reqwest's pool ([`POOL_IDLE`], TCP keep-alive):
/// [`warm`](Self::warm) opens one before the first push, so that interval pushes and the final
/// push find it ready.
pub(crate) struct Client {
    url: Url,
    headers: HeaderMap,
    tls: TlsConfig,
    built: Option<Result<reqwest::Client, String>>,
    /// How long the last successful warm-up on a fresh connection took (connect, TLS
    /// handshake, request and answer), in microseconds; 0 before one succeeded.
    warm_micros: Arc<AtomicU64>,
    /// A client without a pool, for the second attempt of a hedged request: built in the
    /// background after the first warm-up.
    fresh: Arc<OnceLock<reqwest::Client>>,
}

impl Client {
    /// A client for requests to `url` carrying `headers`, over `tls`.
    pub(crate) fn new(url: Url, headers: HeaderMap, tls: TlsConfig) -> Self {
        Client {
            url,
            headers,
            tls,
            built: None,
            warm_micros: Arc::new(AtomicU64::new(0)),
            fresh: Arc::new(OnceLock::new()),
        }
    }

    /// Builds the client; a failure is reported on one line (each push then says it too).
    pub(crate) fn start(&mut self, location: &str) {
        let built = build_client(&self.url, &self.headers, &self.tls);
        if let Err(cause) = &built {
            crate::log::report(&format!(
                "metrics will not be pushed to {location}: the HTTP client failed to start: \
                 {cause}"
            ));
        }
        self.built = Some(built);
    }

    /// The client, or why there is none.
    pub(crate) fn get(
        &self,
        kind: TargetKind,
        location: &str,
    ) -> Result<&reqwest::Client, PushError> {
        match &self.built {
            Some(Ok(client)) => Ok(client),
            Some(Err(cause)) => Err(super::client_error(kind, location, cause.clone())),
            None => Err(super::client_error(
                kind,
                location,
                "the HTTP client has not started".into(),
            )),
        }
    }

    /// Opens a connection to the target in the background of the pusher thread's runtime
    /// and leaves it in the client's pool: the name is resolved, the TCP connection made, the
    /// TLS handshake done, and `GET url` (a request that changes nothing at the target) sent
    /// and its answer read, whatever its status. Repeated every `every`, if given, so that an
    /// idle job's connection never stays unused long enough to be dropped along the way.
    ///
    /// Each warm-up is bounded by `timeout`; one that fails or times out says nothing and
    /// leaves nothing in the pool (a connection whose answer was not read is closed), and is
    /// not retried before the next period. Must be called inside the runtime.
    pub(crate) fn warm(&self, url: Url, every: Option<Duration>, timeout: Duration) {
        let Some(Ok(client)) = &self.built else {
            return;
        };
        let client = client.clone();
        let warm_micros = Arc::clone(&self.warm_micros);
        let fresh = Arc::clone(&self.fresh);
        let (endpoint, headers, tls) = (self.url.clone(), self.headers.clone(), self.tls.clone());
        tokio::spawn(async move {
            loop {
                let started = Instant::now();
                if let Ok(true) = tokio::time::timeout(timeout, warm_once(&client, &url)).await {
                    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                    // The first one made the connection; later ones mostly reuse it.
                    let _ = warm_micros.compare_exchange(
                        0,
                        micros.max(1),
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                }
                if fresh.get().is_none() {
                    if let Ok(built) = build(&endpoint, &headers, &tls, false) {
                        let _ = fresh.set(built);
                    }
                }
                let Some(every) = every else { return };
                tokio::time::sleep(every).await;
            }
        });
    }

    /// How long the first attempt of a final push may go unanswered before the same request
    /// goes out as well on a fresh connection, for a push that may find a pooled connection
    /// gone bad while idle (dropped without a word by a NAT or a load balancer): three times
    /// what the warm-up took on a fresh connection, plus 50 ms, at least [`HEDGE_MIN`] and at
    /// most a quarter of `budget`. `None` before a warm-up succeeded (no pooled connection to
    /// doubt) and before the client without a pool for the second attempt is built.
    pub(crate) fn hedge(&self, budget: Duration) -> Option<Hedge<'_>> {
        let micros = self.warm_micros.load(Ordering::Relaxed);
        let fresh = self.fresh.get()?;
        if micros == 0 {
            return None;
        }
        let after = Duration::from_micros(micros) * 3 + Duration::from_millis(50);
        Some(Hedge {
            after: after.max(HEDGE_MIN).min(budget / 4),
            fresh,
        })
    }
}

/// When and how a request still unanswered goes out a second time.
#[derive(Clone, Copy)]
pub(crate) struct Hedge<'a> {
    /// How long the first attempt may go unanswered.
    pub(crate) after: Duration,
    /// The client of the second attempt: a fresh connection, never one from the pool.
    pub(crate) fresh: &'a reqwest::Client,
}

/// One warm-up request: whether it was answered and its whole answer read (the connection
/// then goes back to the pool).
async fn warm_once(client: &reqwest::Client, url: &Url) -> bool {
    let Ok(mut response) = client.get(url.clone()).send().await else {
        return false;
    };
    let mut read = 0;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                read += chunk.len();
                if read > MAX_WARM_BODY {
                    return false;
                }
            }
            Ok(None) => return true,
            Err(_) => return false,
        }
    }
}

/// The outcome of one attempt.
enum Attempt {
    Done(u16),
    /// Worth another attempt; not before the time the target asked for with `Retry-After`.
    Retry(PushError, Option<Duration>),
    Fail(PushError),
}

/// One request to a target: where, how and what.
pub(crate) struct Request<'a> {
    pub(crate) target: TargetKind,
    pub(crate) url: &'a Url,
    /// The URL as shown in errors and logs: redacted (no credentials, no query values).
    pub(crate) location: &'a str,
    pub(crate) method: Method,
    /// The body's headers (content type and encoding).
    pub(crate) headers: &'a HeaderMap,
    pub(crate) body: Bytes,
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
    send_hedged(client, request, deadline, budget, retry, None, in_flight).await
}

/// [`send`], and when `hedge` is given, a first attempt still unanswered after
/// [`Hedge::after`] is raced by the same request on a fresh connection; the first answer of the
/// two is the attempt's. Meant only for requests that the target may take twice: a
/// Pushgateway push (PUT replaces the group, POST the families the body carries, with the same
/// values) or deletion. Never a remote-write request: a receiver without deduplication
/// (VictoriaMetrics by default) stores the same sample twice.
pub(crate) async fn send_hedged(
    client: &reqwest::Client,
    request: &Request<'_>,
    deadline: Instant,
    budget: Duration,
    retry: bool,
    hedge: Option<Hedge<'_>>,
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
        url: request.location.to_owned(),
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
        let hedge = if attempts == 1 { hedge } else { None };
        let attempt = tokio::time::timeout_at(
            deadline.into(),
            hedged_attempt(client, request, attempts, hedge),
        )
        .await;
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
            Ok(Attempt::Retry(err, _)) if !retry => return Err(err),
            Ok(Attempt::Retry(err, asked)) => (err, asked),
        };
        let (err, asked) = err;
        let mut delay = backoff.next().unwrap_or(Duration::from_secs(2));
        let left = deadline.saturating_duration_since(Instant::now());
        if let Some(asked) = asked {
            // The target said when to come back: not before, and not at all if that is past
            // the deadline.
            if asked + LAST_ATTEMPT >= left {
                return Err(with_note(
                    err,
                    &format!(
                        "it asked to retry after {}s (Retry-After), past this push's deadline",
                        asked.as_secs_f64()
                    ),
                ));
            }
            delay = delay.max(asked);
        }
        if delay + LAST_ATTEMPT >= left {
            // One last attempt shortly before the deadline, if there is time for it.
            match left.checked_sub(LAST_ATTEMPT) {
                Some(d) if d >= Duration::from_millis(10) => delay = d,
                _ => return Err(err),
            }
        }
        tracing::debug!(url = %request.location, error = %err, ?delay, "push failed, retrying");
        last = Some(err);
        tokio::time::sleep(delay).await;
    }
}

/// One attempt, raced after `hedge` by a second one on a fresh connection; a second one is
/// made only once, and an attempt that failed in a way worth retrying leaves the answer to the
/// other one.
async fn hedged_attempt(
    client: &reqwest::Client,
    request: &Request<'_>,
    attempts: u32,
    hedge: Option<Hedge<'_>>,
) -> Attempt {
    let first = attempt(client, request, attempts);
    let Some(hedge) = hedge else {
        return first.await;
    };
    tokio::pin!(first);
    if let Ok(done) = tokio::time::timeout(hedge.after, &mut first).await {
        return done;
    }
    tracing::debug!(
        url = %request.location,
        after = ?hedge.after,
        "no answer yet: the request goes out on a fresh connection too"
    );
    let second = attempt(hedge.fresh, request, attempts);
    tokio::pin!(second);
    tokio::select! {
        done = &mut first => match done {
            Attempt::Retry(..) => second.await,
            done => done,
        },
        done = &mut second => match done {
            Attempt::Retry(..) => first.await,
            done => done,
        },
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
            // The error's own text would name the URL as requested, query string and all.
            let source = source.without_url();
            let cause = transport_cause(&source);
            let url = request.location.to_owned();
            // A certificate that is not trusted, or a handshake the gateway refused, is
            // refused again on every retry.
            return match tls_refusal(&source) {
                Some(hint) => Attempt::Fail(PushError::Tls {
                    target,
                    url,
                    cause: format!("{cause}{hint}"),
                    source: source.into(),
                }),
                None => Attempt::Retry(
                    PushError::Transport {
                        target,
                        url,
                        cause,
                        attempts,
                        source: source.into(),
                    },
                    None,
                ),
            };
        }
    };
    let status = response.status();
    if status.is_success() {
        return Attempt::Done(status.as_u16());
    }
    let asked = retry_after(response.headers());
    let location = response.headers().get(reqwest::header::LOCATION).map(|l| {
        shown_body(crate::log::redact_url(&String::from_utf8_lossy(l.as_bytes())).as_bytes())
    });
    let mut text = match read_capped(response, MAX_ERROR_BODY).await {
        Ok(b) => shown_body(&b),
        Err(e) => format!("(response body unreadable: {})", chain(&e)),
    };
    if status.is_redirection() {
        let to = location.map_or_else(|| "no Location given".to_owned(), |l| format!("to {l}"));
        text = format!(
            "a redirect {to}, which is not followed (a redirected push could reach a server \
             nobody chose): set the URL to where the target really is"
        );
    } else if status == StatusCode::PAYLOAD_TOO_LARGE {
        text = format!(
            "the body of {} bytes is over the target's request size limit; {text}",
            request.body.len()
        );
    }
    let err = PushError::Status {
        target,
        url: request.location.to_owned(),
        status: status.as_u16(),
        body: text,
        attempts,
    };
    if is_retryable(target, status) {
        Attempt::Retry(err, asked)
    } else {
        Attempt::Fail(err)
    }
}

/// Reads at most `cap` bytes of an answer's body; the rest is never read (dropping the
/// response closes the connection), so that a huge or endless error body costs nothing.
async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<Vec<u8>, reqwest::Error> {
    let mut out = Vec::new();
    while out.len() < cap {
        match response.chunk().await? {
            Some(chunk) => out.extend_from_slice(&chunk[..chunk.len().min(cap - out.len())]),
            None => break,
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transport_error_holds_no_query_token_anywhere() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Nothing listens there any more: the connection is refused.
        let url = Url::parse(&format!(
            "http://127.0.0.1:{port}/api/v1/write?access_token=tok-s3cret"
        ))
        .unwrap();
        let shown = crate::log::shown(&url);
        let headers = HeaderMap::new();
        let request = Request {
            target: TargetKind::RemoteWrite,
            url: &url,
            location: &shown,
            method: Method::POST,
            headers: &headers,
            body: Bytes::from_static(b"x"),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = reqwest::Client::new();
        let err = match runtime.block_on(attempt(&client, &request, 1)) {
            Attempt::Retry(err, _) | Attempt::Fail(err) => err,
            Attempt::Done(status) => panic!("answered {status}"),
        };
        let mut texts = vec![err.to_string(), format!("{err:?}")];
        let mut source = std::error::Error::source(&err);
        while let Some(e) = source {
            texts.push(e.to_string());
            texts.push(format!("{e:?}"));
            source = e.source();
        }
        assert!(texts.len() > 2, "{texts:?}");
        for text in texts {
            assert!(!text.contains("tok-s3cret"), "{text}");
        }
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
}
