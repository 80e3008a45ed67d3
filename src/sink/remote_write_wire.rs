//! What a remote-write request carries besides its body: the headers the specification
//! requires, for the sink and for the replay of spooled requests alike.
//!
//! Source: the Prometheus Remote-Write 1.0 specification
//! (<https://prometheus.io/docs/specs/prw/remote_write_spec/>).

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};

/// The protocol version this crate speaks, sent in `X-Prometheus-Remote-Write-Version`.
pub(crate) const VERSION: &str = "0.1.0";

/// How many requests of one push are under way at once.
pub(crate) const CONCURRENT_REQUESTS: usize = 4;

/// The headers of every remote-write request, as the specification requires.
pub(crate) fn headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-protobuf"),
    );
    headers.insert(CONTENT_ENCODING, HeaderValue::from_static("snappy"));
    headers.insert(
        HeaderName::from_static("x-prometheus-remote-write-version"),
        HeaderValue::from_static(VERSION),
    );
    headers
}
