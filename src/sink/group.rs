//! The Pushgateway protocol: the group path and its encoding, the group URL, the requests to
//! a group and the body's headers.
//!
//! Source: the Pushgateway README ("URL", "PUT/POST/DELETE method") and the behaviour of
//! Pushgateway 1.5.1, summarised in the crate docs.

use base64::engine::general_purpose::URL_SAFE;
use base64::Engine as _;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};
use reqwest::{Method, Url};

use super::http::Request;
use crate::target::{PushMethod, TargetKind};

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
