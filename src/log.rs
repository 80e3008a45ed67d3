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

/// The URL as given, with the password of any `user:password@` part replaced by `***`.
pub(crate) fn redact_url(raw: &str) -> String {
    let Some(scheme_end) = raw.find("://") else {
        return raw.to_owned();
    };
    let rest = &raw[scheme_end + 3..];
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
            format!("{}{}{}", &raw[..scheme_end + 3], shown, &rest[at..])
        }
        None => raw.to_owned(),
    }
}
