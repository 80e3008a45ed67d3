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

/// The URL as given, with the password of any `user:password@` part replaced by `***`, with
/// or without a scheme (`user:password@gateway:9091` is a URL here too).
pub(crate) fn redact_url(raw: &str) -> String {
    let start = raw.find("://").map_or(0, |i| i + 3);
    let rest = &raw[start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            let user = userinfo.split(':').next().unwrap_or("");
            let shown = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_owned()
            };
            format!("{}{}{}", &raw[..start], shown, &rest[at..])
        }
        None => raw.to_owned(),
    }
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
        assert_eq!(redact_url("gw:9091/p@x"), "gw:9091/p@x");
        assert_eq!(redact_url("nonsense"), "nonsense");
    }
}
