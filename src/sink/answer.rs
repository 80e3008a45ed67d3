//! What a target's answers and transport errors say: the shown body of an error answer,
//! `Retry-After`, which statuses may succeed later, and the hints for TLS refusals.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::StatusCode;

use crate::error::chain;
use crate::report::PushError;
use crate::target::TargetKind;

/// At most this many characters of an error answer's body are shown, on one line.
const SHOWN_BODY: usize = 300;

/// An error answer's body as shown: whitespace runs (newlines too) as one space, at most
/// [`SHOWN_BODY`] characters.
pub(super) fn shown_body(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::new();
    for (i, word) in text.split_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(word);
        if out.chars().count() > SHOWN_BODY {
            let cut = out
                .char_indices()
                .nth(SHOWN_BODY)
                .map_or(out.len(), |(at, _)| at);
            out.truncate(cut);
            out.push_str("...");
            break;
        }
    }
    out
}

/// How long `Retry-After` asks to wait: delay-seconds or an HTTP date (RFC 9110, 10.2.3).
pub(super) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// `err` with `note` added to what it says.
pub(super) fn with_note(err: PushError, note: &str) -> PushError {
    match err {
        PushError::Status {
            target,
            url,
            status,
            body,
            attempts,
        } => PushError::Status {
            target,
            url,
            status,
            body: format!("{body} ({note})"),
            attempts,
        },
        other => other,
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
pub(super) fn tls_refusal(_: &reqwest::Error) -> Option<&'static str> {
    None
}

#[cfg(feature = "tls")]
pub(super) fn tls_refusal(err: &reqwest::Error) -> Option<&'static str> {
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
pub(super) fn tls_hint(err: &rustls::Error) -> &'static str {
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
pub(super) fn transport_cause(err: &reqwest::Error) -> String {
    match std::error::Error::source(err) {
        Some(source) => chain(source),
        None => err.to_string(),
    }
}
