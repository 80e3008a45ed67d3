//! Reporting on one line, and URLs made safe to show: the leaf every other module uses.

/// Reports an error on one line: through `tracing`, and on stderr when no `tracing`
/// subscriber is installed, so that it is never lost.
pub(crate) fn report(message: &str) {
    tracing::error!("{message}");
    if !tracing::dispatcher::has_been_set() {
        eprintln!("metrics-exporter-pushgateway: {message}");
    }
}

/// Reports a warning on one line: through `tracing`, and on stderr when no `tracing`
/// subscriber is installed.
pub(crate) fn warn(message: &str) {
    tracing::warn!("{message}");
    if !tracing::dispatcher::has_been_set() {
        eprintln!("metrics-exporter-pushgateway: warning: {message}");
    }
}

/// The URL as given, safe to show: the password of a `user:password@` part replaced by `***`
/// (with or without a scheme: `user:password@gateway:9091` is a URL here too, and a password
/// holding an unencoded `/`, `?`, `#` or `@` is still found), the value of every query
/// parameter replaced by `***` (tokens such as `?access_token=` travel there), and a fragment
/// by `#***`.
///
/// This is for text that may not even parse; where an `@` after a `:` cannot be told apart
/// from a password, it is treated as one. [`shown`] shows a parsed URL.
pub(crate) fn redact_url(raw: &str) -> String {
    // Only the schemes pushed to count as one: in `user://pass@host` the `//` may just as well
    // start a password.
    let lower = raw.get(..8).unwrap_or(raw).to_ascii_lowercase();
    let start = ["http://", "https://"]
        .iter()
        .find(|scheme| lower.starts_with(*scheme))
        .map_or(0, |scheme| scheme.len());
    let rest = &raw[start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    // With a `:` before it, the last `@` anywhere may end a password (one holding an
    // unencoded `/`, `?`, `#` or `@`); without one, only an `@` in the authority ends a user
    // name.
    let at = match (rest.find(':'), rest.rfind('@')) {
        (Some(colon), Some(at)) if at > colon => Some(at),
        _ => rest[..authority_end].rfind('@'),
    };
    let mut out = String::with_capacity(raw.len());
    out.push_str(&raw[..start]);
    let after = match at {
        Some(at) => {
            let userinfo = &rest[..at];
            match userinfo.split_once(':') {
                Some((user, _)) => {
                    out.push_str(user);
                    out.push_str(":***");
                }
                None => out.push_str(userinfo),
            }
            &rest[at..]
        }
        None => rest,
    };
    let (before_fragment, fragment) = match after.split_once('#') {
        Some((b, _)) => (b, true),
        None => (after, false),
    };
    match before_fragment.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            out.push_str(&redact_query(query));
        }
        None => out.push_str(before_fragment),
    }
    if fragment {
        out.push_str("#***");
    }
    out
}

/// Query parameters known to hold no secret, shown as they are: VictoriaMetrics' labels and
/// filters added to what it ingests (`?extra_label=tenant=a`), which tell targets apart.
const SHOWN_PARAMETERS: [&str; 2] = ["extra_label", "extra_filters"];

/// `a=1&b` as `a=***&b`, but for [`SHOWN_PARAMETERS`].
fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if SHOWN_PARAMETERS.contains(&name) => pair.to_owned(),
            Some((name, _)) => format!("{name}=***"),
            None => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A parsed URL as it may be shown (in errors, `Debug`, reports, the exporter's own metrics'
/// `target` label, spool files): no user name or password, every query value `***`, no
/// fragment.
pub(crate) fn shown(url: &url::Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_fragment(None);
    if let Some(query) = url.query() {
        let redacted = redact_query(query);
        url.set_query(Some(&redacted));
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden_with_or_without_a_scheme() {
        assert_eq!(redact_url("http://u:secret@h:1/p"), "http://u:***@h:1/p");
        assert_eq!(redact_url("u:secret@h:1/p"), "u:***@h:1/p");
        assert_eq!(
            redact_url("pusher:s3cret@gw:bad-port"),
            "pusher:***@gw:bad-port"
        );
        assert_eq!(redact_url("http://u@h"), "http://u@h");
        assert_eq!(redact_url("http://h/p@x"), "http://h/p@x");
        // An `@` after a `:` may end a password holding a `/`: hidden, to be safe.
        assert_eq!(redact_url("gw:9091/p@x"), "gw:***@x");
        assert_eq!(redact_url("nonsense"), "nonsense");
    }

    #[test]
    fn passwords_with_unencoded_delimiters_are_hidden() {
        for (raw, shown) in [
            ("http://alice:pa/ss@gw:9091", "http://alice:***@gw:9091"),
            ("http://alice:pa#ss@gw:9091/p", "http://alice:***@gw:9091/p"),
            ("http://alice:pa?ss@gw:9091/p", "http://alice:***@gw:9091/p"),
            ("http://alice:p@ss@gw:9091/p", "http://alice:***@gw:9091/p"),
            ("http://alice:123/s@gw/p", "http://alice:***@gw/p"),
            ("alice:a/b#c?d@gw", "alice:***@gw"),
            (
                "https://bob:x@gw/a?token=t",
                "https://bob:***@gw/a?token=***",
            ),
        ] {
            assert_eq!(redact_url(raw), shown, "{raw}");
            assert!(!redact_url(raw).contains("ss"), "{raw}");
        }
    }

    #[test]
    fn query_values_and_fragments_are_hidden() {
        assert_eq!(
            redact_url("https://rw.example/api/v1/push?access_token=s3cret&x"),
            "https://rw.example/api/v1/push?access_token=***&x"
        );
        assert_eq!(redact_url("http://gw/p#s3cret"), "http://gw/p#***");
        let url =
            url::Url::parse("https://u:p@rw.example:9/push?access_token=s3cret#frag").unwrap();
        assert_eq!(shown(&url), "https://rw.example:9/push?access_token=***");
        let plain = url::Url::parse("http://gw:9091/metrics/job/j/mail/a@b").unwrap();
        assert_eq!(shown(&plain), "http://gw:9091/metrics/job/j/mail/a@b");
        let vm = url::Url::parse("http://vm:8428/api/v1/write?extra_label=t=a&token=x").unwrap();
        assert_eq!(
            shown(&vm),
            "http://vm:8428/api/v1/write?extra_label=t=a&token=***"
        );
    }

    proptest::proptest! {
        #[test]
        fn a_password_never_shows_however_it_is_written(
            scheme in proptest::option::of("(http|https)://"),
            user in "[a-z]{1,8}",
            password in "[!-~]{6,20}",
            rest in "(/[a-z/]{0,10})?(\\?[a-z]{1,5}=[a-z0-9]{1,8})?",
        ) {
            let raw = format!("{}{user}:{password}@gw.example:9091{rest}", scheme.unwrap_or_default());
            let shown = redact_url(&raw);
            proptest::prop_assert!(!shown.contains(&password), "{raw} -> {shown}");
        }
    }
}
