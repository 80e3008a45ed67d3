//! The `/metrics` listener: an HTTP/1.1 endpoint serving the same snapshot the pushes take, for
//! Prometheus to scrape. Bound at install; served by hyper on a thread of its own
//! (`pushgateway-listener`) with its own current-thread tokio runtime, so that neither the
//! caller's runtime nor the pusher threads ever wait for a scraper; closed with the final push.
//!
//! Bounds: at most [`MAX_CONNECTIONS`] connections at once (more wait in the kernel's accept
//! queue), request headers of at most [`MAX_HEADER_BYTES`] bytes and [`MAX_HEADERS`] fields,
//! read within [`HEADER_TIMEOUT`]; request bodies are never read; a connection lives at most
//! [`CONNECTION_LIFETIME`].

use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, ACCEPT, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{oneshot, Semaphore};

use crate::encode::protobuf::PROTOBUF_FORMAT;
use crate::encode::TEXT_FORMAT;
use crate::source::Renderer;
use crate::InitError;

/// Connections served at once.
pub(crate) const MAX_CONNECTIONS: usize = 32;
/// The largest request head (request line and headers) read, in bytes; more is answered 431.
pub(crate) const MAX_HEADER_BYTES: usize = 16 * 1024;
/// The most header fields a request may have.
pub(crate) const MAX_HEADERS: usize = 64;
/// Time a client has to send a request's headers once it starts (and to send the next one on
/// a kept-alive connection).
pub(crate) const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest a connection is kept, however busy.
pub(crate) const CONNECTION_LIFETIME: Duration = Duration::from_secs(300);

/// The listener's thread, and how to stop it.
#[derive(Debug)]
pub(crate) struct Listener {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// A bound socket whose thread has not started yet: what `install` holds between the checks
/// and the start.
#[derive(Debug)]
pub(crate) struct Bound {
    socket: StdListener,
    addr: SocketAddr,
}

/// Checks that `text` is `host:port` (an IPv6 host in brackets), as the setting and the
/// environment variable take it.
pub(crate) fn check_addr(text: &str) -> Result<(), String> {
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err("expected host:port, e.g. 0.0.0.0:9100 or 127.0.0.1:9100".into());
    };
    if host.is_empty() {
        return Err("the host is missing: 0.0.0.0:PORT listens on every interface".into());
    }
    port.parse::<u16>()
        .map(|_| ())
        .map_err(|_| format!("the port {port:?} is not a number from 0 to 65535"))
}

/// Binds `addr`; an error names the address and the setting (or variable) that gave it.
pub(crate) fn bind(addr: &str, setting: &'static str) -> Result<Bound, InitError> {
    let error = |reason: String| InitError::Listen {
        addr: addr.to_owned(),
        setting,
        reason,
    };
    check_addr(addr).map_err(error)?;
    let socket = StdListener::bind(addr).map_err(|e| error(e.to_string()))?;
    let local = socket
        .local_addr()
        .and_then(|local| socket.set_nonblocking(true).map(|()| local))
        .map_err(|e| error(e.to_string()))?;
    Ok(Bound {
        socket,
        addr: local,
    })
}

impl Bound {
    /// Starts serving on the listener's thread.
    pub(crate) fn start(self, renderer: Arc<Renderer>) -> std::io::Result<Listener> {
        let (stop, stopped) = oneshot::channel();
        let socket = self.socket;
        let thread = crate::runtime::thread::spawn_with_runtime(
            "pushgateway-listener".into(),
            "metrics cannot be scraped",
            move || serve(socket, renderer, stopped),
        )?;
        Ok(Listener {
            addr: self.addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Listener {
    /// The address it listens on (with the port the system chose, for port 0).
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Listener {
    /// Stops accepting, ends every connection and waits for the thread: the port is free
    /// when this returns.
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

async fn serve(socket: StdListener, renderer: Arc<Renderer>, mut stopped: oneshot::Receiver<()>) {
    let listener = match tokio::net::TcpListener::from_std(socket) {
        Ok(l) => l,
        Err(e) => {
            crate::log::report(&format!("metrics cannot be scraped: {e}"));
            return;
        }
    };
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            biased;
            _ = &mut stopped => return,
            accepted = async {
                // A slot first: past the bound, connections wait in the accept queue.
                let slot = Arc::clone(&slots).acquire_owned().await;
                (slot, listener.accept().await)
            } => accepted,
        };
        let (slot, stream) = match accepted {
            (Ok(slot), Ok((stream, _))) => (slot, stream),
            (_, Err(e)) => {
                tracing::debug!(error = %e, "the metrics listener failed to accept a connection");
                // E.g. out of file descriptors: do not spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            (Err(_), _) => return,
        };
        let renderer = Arc::clone(&renderer);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let response = answer(&request, &renderer);
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEADER_BYTES)
                .max_headers(MAX_HEADERS)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_LIFETIME, connection).await;
            drop(slot);
        });
    }
}

/// The format a scrape gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Text,
    Protobuf,
}

/// The format for an `Accept` header, chosen as client_golang's `promhttp` chooses it
/// (`expfmt.Negotiate`): media ranges by quality (highest first; `*` ranges after specific ones
/// of the same quality), the first that is delimited protobuf `MetricFamily` messages or text
/// 0.0.4 (`text/plain` without a version, too) wins; nothing acceptable, or no header, is
/// text. A range with `q=0` is not acceptable.
pub(crate) fn negotiate<'a>(accept: impl Iterator<Item = &'a str>) -> Format {
    struct Range<'a> {
        kind: &'a str,
        subtype: &'a str,
        params: Vec<(&'a str, &'a str)>,
        q: f64,
    }
    let mut ranges: Vec<Range<'_>> = accept
        .flat_map(|header| header.split(','))
        .filter_map(|part| {
            let mut pieces = part.split(';');
            let media = pieces.next()?.trim();
            let (kind, subtype) = match media.split_once('/') {
                Some((k, s)) => (k.trim(), s.trim()),
                None if media == "*" => ("*", "*"),
                None => return None,
            };
            let mut range = Range {
                kind,
                subtype,
                params: Vec::new(),
                q: 1.0,
            };
            for param in pieces {
                let Some((name, value)) = param.split_once('=') else {
                    continue;
                };
                let (name, value) = (name.trim(), value.trim().trim_matches('"'));
                if name == "q" {
                    range.q = value.parse().unwrap_or(0.0);
                } else {
                    range.params.push((name, value));
                }
            }
            Some(range)
        })
        .filter(|r| r.q > 0.0)
        .collect();
    ranges.sort_by(|a, b| {
        b.q.total_cmp(&a.q)
            .then_with(|| (a.kind == "*").cmp(&(b.kind == "*")))
            .then_with(|| (a.subtype == "*").cmp(&(b.subtype == "*")))
    });
    for range in &ranges {
        let param = |name: &str| {
            range
                .params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
        };
        if range.kind.eq_ignore_ascii_case("application")
            && range.subtype.eq_ignore_ascii_case("vnd.google.protobuf")
            && param("proto") == Some("io.prometheus.client.MetricFamily")
            && param("encoding") == Some("delimited")
        {
            return Format::Protobuf;
        }
        if range.kind.eq_ignore_ascii_case("text")
            && range.subtype.eq_ignore_ascii_case("plain")
            && matches!(param("version"), None | Some("0.0.4"))
        {
            return Format::Text;
        }
    }
    Format::Text
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The answer to one request: the snapshot of this moment for `GET /metrics` (and `HEAD`),
/// 404 for another path, 405 for another method.
fn answer<B>(request: &Request<B>, renderer: &Renderer) -> Response<Full<Bytes>> {
    if request.uri().path() != "/metrics" {
        return plain(
            StatusCode::NOT_FOUND,
            "not found: metrics are at /metrics\n",
        );
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed: /metrics answers GET\n",
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let format = negotiate(
        request
            .headers()
            .get_all(ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    );
    let snapshot = renderer.scrape_snapshot();
    let mut body = Vec::new();
    let content_type = match format {
        Format::Text => {
            crate::encode::text(&snapshot, &[], &mut body);
            TEXT_FORMAT
        }
        Format::Protobuf => {
            crate::encode::protobuf::encode(&snapshot, &mut body, &mut Vec::new());
            PROTOBUF_FORMAT
        }
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(accept: &str) -> Format {
        negotiate(std::iter::once(accept))
    }

    #[test]
    fn negotiation_follows_promhttp() {
        let proto = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;\
                     encoding=delimited";
        assert_eq!(of(proto), Format::Protobuf);
        // What Prometheus 2.x sends with its protobuf scrape feature on.
        assert_eq!(
            of(&format!(
                "{proto};q=0.5,application/openmetrics-text;version=1.0.0;q=0.4,\
                 text/plain;version=0.0.4;q=0.3,*/*;q=0.1"
            )),
            Format::Protobuf
        );
        // Text preferred over protobuf.
        assert_eq!(
            of(&format!("text/plain;version=0.0.4;q=0.9,{proto};q=0.5")),
            Format::Text
        );
        // Quality decides, not order.
        assert_eq!(
            of(&format!("text/plain;version=0.0.4;q=0.3,{proto};q=0.5")),
            Format::Protobuf
        );
        // Protobuf that is not delimited, or not MetricFamily, is not served.
        assert_eq!(
            of(
                "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;\
                encoding=text"
            ),
            Format::Text
        );
        assert_eq!(
            of("application/vnd.google.protobuf;proto=other;encoding=delimited"),
            Format::Text
        );
        // Not acceptable at all: q=0.
        assert_eq!(of(&format!("{proto};q=0")), Format::Text);
        for text in [
            "",
            "*/*",
            "text/plain",
            "application/openmetrics-text;version=1.0.0",
            "garbage",
        ] {
            assert_eq!(of(text), Format::Text, "{text:?}");
        }
    }

    #[test]
    fn addresses_must_be_host_and_port() {
        assert!(check_addr("0.0.0.0:9100").is_ok());
        assert!(check_addr("[::1]:9100").is_ok());
        assert!(check_addr("localhost:0").is_ok());
        for (bad, reason) in [
            ("9100", "expected host:port"),
            (":9100", "the host is missing"),
            ("127.0.0.1:http", "is not a number"),
            ("127.0.0.1:70000", "is not a number"),
        ] {
            let error = check_addr(bad).unwrap_err();
            assert!(error.contains(reason), "{bad}: {error}");
        }
    }
}
