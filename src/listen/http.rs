//! The answer to one request: content negotiation, the status, the rendered body.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use hyper::header::{HeaderValue, ACCEPT, ALLOW, CONNECTION, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::OwnedSemaphorePermit;

use super::slots::{Busy, Shared};
use crate::protocol::protobuf::PROTOBUF_FORMAT;
use crate::protocol::text::TEXT_FORMAT;
use crate::source::Renderer;

/// The size of the pieces a body is handed to the connection in: hyper takes the next only
/// when the last has (nearly) left, so an unread body stays where it is counted.
const CHUNK: usize = 64 * 1024;

/// An answer's body, handed to the connection in pieces of [`CHUNK`] bytes; it holds its
/// request's [`Busy`] and, for a rendered body, its permit, until the last piece is taken.
pub(super) struct Body {
    rest: Bytes,
    _busy: Busy,
    _permit: Option<OwnedSemaphorePermit>,
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.rest.is_empty() {
            return Poll::Ready(None);
        }
        let n = self.rest.len().min(CHUNK);
        Poll::Ready(Some(Ok(Frame::data(self.rest.split_to(n)))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.rest.len() as u64)
    }
}

/// The format a scrape gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Text,
    Protobuf,
}

/// The format for an `Accept` header, chosen as client_golang's `promhttp` chooses it
/// (`expfmt.Negotiate`): media ranges by quality (highest first; `*` ranges after specific ones
/// of the same quality), the first that is delimited protobuf `MetricFamily` messages or text
/// 0.0.4 (`text/plain` without a version, too) wins; nothing acceptable, or no header, is
/// text. A range with `q=0` is not acceptable.
fn negotiate<'a>(accept: impl Iterator<Item = &'a str>) -> Format {
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

fn plain(status: StatusCode, text: &'static str, busy: Busy) -> Response<Body> {
    let mut response = Response::new(Body {
        rest: Bytes::from_static(text.as_bytes()),
        _busy: busy,
        _permit: None,
    });
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The answer once the final push has started: nothing more is rendered.
fn closing(busy: Busy) -> Response<Body> {
    let mut response = plain(
        StatusCode::SERVICE_UNAVAILABLE,
        "the process is ending: its final values go to its push targets\n",
        busy,
    );
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The answer to one request: the snapshot of this moment for `GET /metrics`; for `HEAD` the
/// same headers without rendering (the body's length is not known without it); 404 for
/// another path, 405 for another method; 503 once the final push has started.
pub(super) async fn answer<B>(request: &Request<B>, shared: &Shared, busy: Busy) -> Response<Body> {
    if request.uri().path() != "/metrics" {
        return plain(
            StatusCode::NOT_FOUND,
            "not found: metrics are at /metrics\n",
            busy,
        );
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed: /metrics answers GET\n",
            busy,
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    if shared.closing.load(Ordering::SeqCst) {
        return closing(busy);
    }
    let format = negotiate(
        request
            .headers()
            .get_all(ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    );
    let content_type = match format {
        Format::Text => TEXT_FORMAT,
        Format::Protobuf => PROTOBUF_FORMAT,
    };
    let (body, permit) = if request.method() == Method::HEAD {
        (Bytes::new(), None)
    } else {
        let Ok(permit) = Arc::clone(&shared.responses).acquire_owned().await else {
            return closing(busy);
        };
        // The final push may have started while this waited, or the client given up.
        if shared.closing.load(Ordering::SeqCst) {
            return closing(busy);
        }
        if busy.activity.probe.gone() {
            return plain(StatusCode::SERVICE_UNAVAILABLE, "", busy);
        }
        (render(&shared.renderer, format), Some(permit))
    };
    let mut response = Response::new(Body {
        rest: body,
        _busy: busy,
        _permit: permit,
    });
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// The body of a scrape: the snapshot of this moment in `format`.
fn render(renderer: &Renderer, format: Format) -> Bytes {
    let snapshot = renderer.scrape_snapshot();
    let mut body = Vec::new();
    match format {
        Format::Text => crate::protocol::text::text(&snapshot, &[], &mut body),
        Format::Protobuf => {
            crate::protocol::protobuf::encode(&snapshot, &mut body, &mut Vec::new());
        }
    }
    // A body held unread holds its length, not its growth's spare room.
    body.shrink_to_fit();
    Bytes::from(body)
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
}
