//! The Pushgateway protocol: the group URL (the group path is
//! [`protocol::group`](crate::protocol::group)'s), the requests to a group and the body's
//! headers.
//!
//! Source: the Pushgateway README ("URL", "PUT/POST/DELETE method") and the behaviour of
//! Pushgateway 1.5.1, summarised in the crate docs.

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};
use reqwest::{Method, Url};

use super::http::Request;
#[cfg(test)]
use crate::protocol::group;
use crate::target::{PushMethod, TargetKind};

/// The URL of the group at `group` (a group path, as
/// [`group::encode`](crate::protocol::group::encode) writes it) on the gateway at `endpoint`,
/// keeping any path prefix of the endpoint (a gateway behind a reverse proxy).
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
    url_for(endpoint, &group::encode(job, grouping))
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
        crate::protocol::protobuf::PROTOBUF_FORMAT
    } else {
        crate::protocol::text::TEXT_FORMAT
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
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn the_url_keeps_the_group_path_exactly(
                job in ".{1,12}",
                value in any::<String>(),
            ) {
                let path = group::encode(&job, &[("instance".to_owned(), value)]);
                // No dot segments removed, nothing re-encoded.
                let url = url_for(&Url::parse("http://127.0.0.1:9091/prefix").unwrap(), &path);
                prop_assert_eq!(url.path(), format!("/prefix/metrics{path}"));
            }
        }
    }
}
