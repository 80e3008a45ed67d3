//! The Pushgateway's group path below `/metrics`: `/job/<job>{/<label>/<value>}`, a value that
//! cannot go into a URL path as it is written as `/<label>@base64/<value in base64>`. One
//! grammar, read three ways: [`encode`] writes it, [`parse`] reads it as the gateway does (a
//! group path in a configured URL), [`is_canonical`] checks that a path is exactly one this
//! crate writes (a spooled record's, before it reaches a URL).
//!
//! Source: the Pushgateway README ("URL") and its `splitLabels`, and the behaviour of
//! Pushgateway 1.5.1, summarised in the crate docs.

use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;

use crate::names::is_label_name;

/// The suffix of a label name whose value is written in base64.
const BASE64: &str = "@base64";

/// The job and the grouping labels of a group, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Group {
    pub(crate) job: String,
    pub(crate) grouping: Vec<(String, String)>,
}

/// Why a group path cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ParseError {
    /// Not `/job/<job>` followed by `/<label>/<value>` pairs.
    NotPairs,
    /// The value of the label `name` is not base64 (the URL-safe alphabet).
    Base64 { name: String, error: String },
    /// The value of the label `name` is not UTF-8 once decoded.
    NotUtf8 { name: String },
    /// The job is empty.
    EmptyJob,
}

impl ParseError {
    /// The sentence for this error in the group path `path` (as the user wrote it).
    pub(crate) fn describe(&self, path: &str) -> String {
        match self {
            ParseError::NotPairs => format!(
                "the group path {path:?} must be /metrics/job/<job> followed by <label>/<value> \
                 pairs"
            ),
            ParseError::Base64 { name, error } => {
                format!("the value of {name} in the group path: {error}")
            }
            ParseError::NotUtf8 { name } => {
                format!("the value of {name} in the group path is not valid UTF-8")
            }
            ParseError::EmptyJob => format!("the group path {path:?} names an empty job"),
        }
    }
}

/// One `<name>/<value>` pair of a group path as written.
struct Pair<'a> {
    /// The label name, without `@base64`.
    name: &'a str,
    /// Whether the name carried `@base64`.
    base64: bool,
    /// The value as written.
    value: &'a str,
}

/// The pairs of a group path (`/job/<job>{/<name>/<value>}`), `None` when it does not start
/// with `/` or its segments do not pair up.
fn pairs(path: &str) -> Option<Vec<Pair<'_>>> {
    let parts: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    if !parts.len().is_multiple_of(2) {
        return None;
    }
    let pairs = parts.chunks(2).map(|pair| {
        let (name, base64) = match pair[0].strip_suffix(BASE64) {
            Some(name) => (name, true),
            None => (pair[0], false),
        };
        Pair {
            name,
            base64,
            value: pair[1],
        }
    });
    Some(pairs.collect())
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
        path.push_str(BASE64);
        path.push('/');
        if value.is_empty() {
            path.push('=');
        } else {
            URL_SAFE.encode_string(value, path);
        }
    }
}

/// The group's path below `/metrics`: `/job/{job}{/{label}/{value}}`, encoded.
pub(crate) fn encode(job: &str, grouping: &[(String, String)]) -> String {
    let mut path = String::new();
    push_segment(&mut path, "job", job);
    for (name, value) in grouping {
        push_segment(&mut path, name, value);
    }
    path
}

/// Reads a group path (`/job/<job>{/<label>/<value>}`) as the gateway does: a value after a
/// name ending in `@base64` in the URL-safe alphabet, padding optional, other values
/// percent-decoded; values must be UTF-8, the job not empty. The first pair's name is taken
/// as `job`.
pub(crate) fn parse(path: &str) -> Result<Group, ParseError> {
    let pairs = pairs(path).ok_or(ParseError::NotPairs)?;
    let mut decoded = Vec::new();
    for pair in pairs {
        let value = if pair.base64 {
            let bytes = URL_SAFE_NO_PAD
                .decode(pair.value.trim_end_matches('='))
                .map_err(|e| ParseError::Base64 {
                    name: pair.name.to_owned(),
                    error: e.to_string(),
                })?;
            String::from_utf8(bytes).map_err(|_| ParseError::NotUtf8 {
                name: pair.name.to_owned(),
            })?
        } else {
            percent_encoding::percent_decode_str(pair.value)
                .decode_utf8()
                .map_err(|_| ParseError::NotUtf8 {
                    name: pair.name.to_owned(),
                })?
                .into_owned()
        };
        decoded.push((pair.name.to_owned(), value));
    }
    let mut decoded = decoded.into_iter();
    let job = decoded.next().map(|(_, job)| job).unwrap_or_default();
    if job.is_empty() {
        return Err(ParseError::EmptyJob);
    }
    Ok(Group {
        job,
        grouping: decoded.collect(),
    })
}

/// Whether `path` is a group path exactly as this crate encodes one: `/job/<value>`, then
/// `/<name>/<value>` pairs, a valid label name (`job` first) with an optional `@base64`
/// suffix, a value `[A-Za-z0-9_-]+` or, after `@base64`, the URL-safe base64 alphabet with
/// `=`, and a path [`parse`] reads (well-formed base64, a job that is not empty). Nothing else
/// reaches a URL: no dot segments, escapes, separators or other paths of the gateway.
pub(crate) fn is_canonical(path: &str) -> bool {
    let Some(pairs) = pairs(path) else {
        return false;
    };
    let well_formed = pairs.iter().enumerate().all(|(i, pair)| {
        let name_ok = is_label_name(pair.name) && (i > 0 || pair.name == "job");
        let value_ok = !pair.value.is_empty()
            && pair.value.bytes().all(|b| {
                b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (pair.base64 && b == b'=')
            });
        name_ok && value_ok
    });
    well_formed && parse(path).is_ok()
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
    fn only_group_paths_as_this_crate_encodes_them() {
        for ok in [
            "/job/ingester",
            "/job@base64/YS9i/instance/h-1",
            "/job/j/empty@base64/=",
            "/job/j/v@base64/Li4=",
        ] {
            assert!(is_canonical(ok), "{ok}");
        }
        for bad in [
            "",
            "/",
            "/job",
            "/job/",
            "/job/x/../../api/v1/admin/wipe",
            "/job/x/..",
            "/job/%2e%2e",
            "/job/a\\b",
            "/job/a\tb",
            "/job/a b",
            "/-/quit",
            "/instance/x",
            "/job/x/1a/y",
            "/job/x/a",
            "//job/x",
            "/job/x?a=b",
            "/job/x#f",
            "/job/a=",
            // the gateway would refuse these: base64 of a bad length, an empty job
            "/job/x/a@base64/A",
            "/job@base64/=",
        ] {
            assert!(!is_canonical(bad), "{bad:?}");
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// A valid label name (`[a-zA-Z_][a-zA-Z0-9_]*`, as `names::is_label_name` checks).
        fn label_name() -> impl Strategy<Value = String> {
            "[a-zA-Z_][a-zA-Z0-9_]{0,8}"
        }

        proptest! {
            #[test]
            fn what_is_encoded_parses_back_and_is_canonical(
                job in any::<String>().prop_filter("a job", |j| !j.is_empty()),
                grouping in proptest::collection::vec((label_name(), any::<String>()), 0..4),
            ) {
                let path = encode(&job, &grouping);
                prop_assert!(is_canonical(&path), "{}", path);
                prop_assert_eq!(
                    parse(&path),
                    Ok(Group { job: job.clone(), grouping: grouping.clone() })
                );
                // And as the gateway reads it, by a decoder written apart from `parse`.
                let mut expected = vec![("job".to_owned(), job)];
                expected.extend(grouping);
                prop_assert_eq!(gateway_decode(&path), Some(expected));
            }
        }

        /// The Pushgateway's own reading of a group path (`splitLabels` in its
        /// `handler/push.go`): `/`-separated name/value pairs, a name ending in `@base64`
        /// taking a URL-safe base64 value (padding optional), any other value
        /// percent-decoded. Independent of [`parse`], so that the two check each other.
        fn gateway_decode(path: &str) -> Option<Vec<(String, String)>> {
            use base64::engine::general_purpose::URL_SAFE_NO_PAD;
            use base64::Engine as _;
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
    }
}
