//! The headers of a target's requests: custom ones checked against those the transport sets,
//! and the authentication header built from the credentials.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};

use super::connection::{Auth, Secret};
use crate::error::InitError;

/// The headers the transport sets itself: the body's length, type and encoding, the
/// connection, the host, and remote write's protocol version. A custom one of these would
/// contradict the request as sent (`Content-Length: 0` sends an empty body that the gateway
/// takes as an empty push; another `Host` sends the request to another virtual host).
const TRANSPORT_HEADERS: [&str; 7] = [
    "Content-Length",
    "Content-Type",
    "Content-Encoding",
    "Transfer-Encoding",
    "Host",
    "Connection",
    "X-Prometheus-Remote-Write-Version",
];

/// A custom header's name is not one the transport sets ([`TRANSPORT_HEADERS`], in any
/// case): why not.
pub(super) fn check_custom_header(name: &str) -> Result<(), String> {
    match TRANSPORT_HEADERS
        .iter()
        .find(|h| h.eq_ignore_ascii_case(name.trim()))
    {
        Some(owned) => Err(format!(
            "{owned} is set by the exporter for each request and cannot be given as a custom \
             header (neither can {})",
            TRANSPORT_HEADERS
                .iter()
                .filter(|h| *h != owned)
                .copied()
                .collect::<Vec<_>>()
                .join(", ")
        )),
        None => Ok(()),
    }
}

pub(super) fn build_headers(
    auth: Option<&Auth>,
    custom: &[(String, Secret)],
) -> Result<HeaderMap, InitError> {
    let mut headers = HeaderMap::new();
    for (name, Secret(value)) in custom {
        let header_name =
            HeaderName::from_bytes(name.as_bytes()).map_err(|e| InitError::InvalidHeader {
                name: name.clone(),
                reason: e.to_string(),
            })?;
        let mut header_value =
            HeaderValue::from_str(value).map_err(|_| InitError::InvalidHeader {
                name: name.clone(),
                reason: "the value holds characters not allowed in an HTTP header".into(),
            })?;
        header_value.set_sensitive(true);
        headers.append(header_name, header_value);
    }
    let authorization = match auth {
        None => return Ok(headers),
        Some(Auth::Basic { username, password }) => {
            if username.contains(':') {
                return Err(InitError::InvalidSetting {
                    setting: "basic_auth",
                    reason: "the user name must not contain ':'".into(),
                });
            }
            format!(
                "Basic {}",
                STANDARD.encode(format!("{username}:{}", password.0))
            )
        }
        Some(Auth::Bearer(token)) => format!("Bearer {}", token.0),
    };
    let mut value =
        HeaderValue::from_str(&authorization).map_err(|_| InitError::InvalidSetting {
            setting: if matches!(auth, Some(Auth::Bearer(_))) {
                "bearer_token"
            } else {
                "basic_auth"
            },
            reason: "the credentials hold characters not allowed in an HTTP header".into(),
        })?;
    value.set_sensitive(true);
    headers.insert(AUTHORIZATION, value);
    Ok(headers)
}
