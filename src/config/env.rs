//! The environment: the `PUSHGATEWAY_*` variables, each read and checked by a small helper
//! of its own, into a builder.

use std::ffi::OsString;
use std::time::Duration;

use super::check::{check_duration, parse_endpoint, percent_decode};
use super::headers::check_custom_header;
use super::{CiLabels, ExpositionFormat, PushgatewayBuilder, Target};
use crate::env::*;
use crate::log::redact_url;
use crate::names::check_label_name;
use crate::target::TargetKind;
use crate::InitError;

/// The items of a comma-separated list variable, each trimmed; empty items (`a,,b`, a
/// trailing or leading comma) are skipped. Every list variable is read through this.
fn list_items(text: &str) -> impl Iterator<Item = &str> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

/// The environment as a lookup function, read one variable at a time.
struct Env<F>(F);

impl<F: Fn(&str) -> Option<OsString>> Env<F> {
    /// The trimmed value of `name`; `None` when unset or blank. A `secret` value is never shown
    /// in an error.
    fn get(&self, name: &'static str, secret: bool) -> Result<Option<String>, InitError> {
        let Some(value) = (self.0)(name) else {
            return Ok(None);
        };
        match value.into_string() {
            Ok(s) if s.trim().is_empty() => Ok(None),
            Ok(s) => Ok(Some(s.trim().to_owned())),
            Err(raw) => Err(invalid(
                name,
                if secret {
                    "***".into()
                } else {
                    raw.to_string_lossy().into_owned()
                },
                "not valid Unicode",
            )),
        }
    }

    /// `name` parsed by `parse`; an error names the variable and its value.
    fn parsed<T>(
        &self,
        name: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, InitError> {
        match self.get(name, false)? {
            None => Ok(None),
            Some(text) => parse(&text)
                .map(Some)
                .map_err(|reason| invalid(name, text, reason)),
        }
    }

    /// The contents of the file named by `name`: a regular file of at most 1 MiB (checked
    /// before it is opened: a FIFO would block, `/dev/zero` would never end) whose content
    /// passes `check`; an error names the variable and the file.
    fn file(
        &self,
        name: &'static str,
        check: impl Fn(&[u8]) -> Result<(), String>,
    ) -> Result<Option<Vec<u8>>, InitError> {
        const MAX: u64 = 1 << 20;
        self.parsed(name, |path| {
            let meta = std::fs::metadata(path).map_err(|e| format!("cannot read the file: {e}"))?;
            if !meta.is_file() {
                return Err("not a regular file".into());
            }
            if meta.len() > MAX {
                return Err(format!("{} bytes, more than the 1 MiB allowed", meta.len()));
            }
            let mut data = Vec::new();
            std::io::Read::read_to_end(
                &mut std::io::Read::take(
                    std::fs::File::open(path).map_err(|e| format!("cannot read the file: {e}"))?,
                    MAX,
                ),
                &mut data,
            )
            .map_err(|e| format!("cannot read the file: {e}"))?;
            check(&data)?;
            Ok(data)
        })
    }
}

/// Checks of PEM files named by the environment, so that an error names the variable and the
/// file (the same checks run again at install for material given to the builder).
#[cfg(feature = "tls")]
mod pem {
    pub(super) use super::super::tls::{check_ca_certificates as ca, check_private_key as key};

    pub(super) fn certificates(pem: &[u8]) -> Result<(), String> {
        super::super::tls::check_certificates(pem).map(drop)
    }
}

/// Without TLS there is nothing to check: install refuses TLS material with its own error.
#[cfg(not(feature = "tls"))]
mod pem {
    pub(super) fn ca(_: &[u8]) -> Result<(), String> {
        Ok(())
    }
    pub(super) use ca as certificates;
    pub(super) use ca as key;
}

fn invalid(var: &'static str, value: String, reason: impl Into<String>) -> InitError {
    InitError::InvalidEnv {
        var,
        value,
        reason: reason.into(),
    }
}

impl PushgatewayBuilder {
    /// [`from_env`](Self::from_env) with a custom lookup, so that tests need not change the
    /// process environment.
    pub(crate) fn from_lookup(
        lookup: impl Fn(&str) -> Option<OsString>,
    ) -> Result<Self, InitError> {
        let env = Env(lookup);
        let mut b = Self::with_targets(targets(&env)?);
        for (name, slot) in [
            (PUSHGATEWAY_INTERVAL, &mut b.interval),
            (PUSHGATEWAY_PUSH_TIMEOUT, &mut b.push_timeout),
            (PUSHGATEWAY_SHUTDOWN_TIMEOUT, &mut b.shutdown_timeout),
        ] {
            if let Some(d) = env.parsed(name, |text| duration(name, text))? {
                *slot = d;
            }
        }
        if let Some(grouping) = env.parsed(PUSHGATEWAY_GROUPING, parse_grouping)? {
            b.grouping = grouping;
        }
        b = credentials(&env, b)?;
        b = tls_files(&env, b)?;
        if let Some(name) = env.parsed(PUSHGATEWAY_HOSTNAME_LABEL, |name| {
            check_label_name(name)
                .map(|()| name.to_owned())
                .map_err(String::from)
        })? {
            b.hostname_label = Some(name);
        }
        // A list of no items (`,`) is as if unset: it does not allow nothing.
        if let Some(patterns) = env.parsed(PUSHGATEWAY_ALLOW, parse_patterns)? {
            if !patterns.is_empty() {
                b = b.allow(patterns);
            }
        }
        if let Some(patterns) = env.parsed(PUSHGATEWAY_DENY, parse_patterns)? {
            b = b.deny(patterns);
        }
        if let Some(format) = env.parsed(PUSHGATEWAY_FORMAT, parse_format)? {
            b.format = format;
        }
        if let Some(form) =
            env.parsed(PUSHGATEWAY_HISTOGRAMS, super::histograms::parse_histograms)?
        {
            b.histograms.form = form;
        }
        if let Some(n) = env.parsed(PUSHGATEWAY_REMOTE_WRITE_MAX_SAMPLES, parse_max_samples)? {
            b.remote_write_max_samples = n;
        }
        if let Some(addr) = env.parsed(PUSHGATEWAY_LISTEN, |text| {
            crate::listen::check_addr(text).map(|()| text.to_owned())
        })? {
            b.listen = Some((addr, PUSHGATEWAY_LISTEN));
        }
        if let Some(dir) = env.get(PUSHGATEWAY_SPOOL_DIR, false)? {
            b.spool_dir = Some(dir.into());
        }
        if let Some(which) = env.parsed(PUSHGATEWAY_CI_LABELS, ci_labels)? {
            b.ci_labels = which;
        }
        if let Some(on) = env.parsed(PUSHGATEWAY_SELF_METRICS, parse_bool)? {
            b.self_metrics = on;
        }
        if let Some(off) = env.parsed(PUSHGATEWAY_DISABLED, parse_bool)? {
            b.enabled = !off;
        }
        Ok(b)
    }
}

/// The targets of `PUSHGATEWAY_URL`, `PUSHGATEWAY_REMOTE_WRITE_URL` (comma-separated lists)
/// and `PUSHGATEWAY_TEXTFILE_DIR`; each URL is checked now, so that the error names its
/// variable.
fn targets<F: Fn(&str) -> Option<OsString>>(env: &Env<F>) -> Result<Vec<Target>, InitError> {
    let mut targets = Vec::new();
    for (name, kind) in [
        (PUSHGATEWAY_URL, TargetKind::Pushgateway),
        (PUSHGATEWAY_REMOTE_WRITE_URL, TargetKind::RemoteWrite),
    ] {
        let Some(list) = env.get(name, false)? else {
            continue;
        };
        for url in list_items(&list) {
            parse_endpoint(url, kind).map_err(|reason| {
                let shown: Vec<String> = list.split(',').map(redact_url).collect();
                invalid(name, shown.join(","), reason)
            })?;
            targets.push(match kind {
                TargetKind::Pushgateway => Target::pushgateway(url),
                _ => Target::remote_write(url),
            });
        }
    }
    if let Some(dir) = env.get(PUSHGATEWAY_TEXTFILE_DIR, false)? {
        targets.push(Target::textfile(dir));
    }
    Ok(targets)
}

/// A duration variable's value; only the interval may be `0` or `off`.
fn duration(name: &'static str, text: &str) -> Result<Duration, String> {
    let d = parse_duration(text, name == PUSHGATEWAY_INTERVAL)?;
    check_duration(d, name == PUSHGATEWAY_INTERVAL)?;
    Ok(d)
}

/// `PUSHGATEWAY_REMOTE_WRITE_MAX_SAMPLES`: a whole number in
/// [`MAX_SAMPLES_RANGE`](crate::config::MAX_SAMPLES_RANGE).
fn parse_max_samples(text: &str) -> Result<usize, String> {
    let range = crate::config::MAX_SAMPLES_RANGE;
    text.parse::<usize>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            format!(
                "must be a whole number from {} to {}",
                range.start(),
                range.end()
            )
        })
}

/// `PUSHGATEWAY_FORMAT`: `text` or `protobuf`, in any case.
fn parse_format(text: &str) -> Result<ExpositionFormat, String> {
    match text.to_ascii_lowercase().as_str() {
        "text" => Ok(ExpositionFormat::Text),
        "protobuf" => Ok(ExpositionFormat::Protobuf),
        _ => Err("expected text or protobuf".into()),
    }
}

/// `PUSHGATEWAY_CI_LABELS`: a boolean, or `commit`.
fn ci_labels(text: &str) -> Result<Option<CiLabels>, String> {
    if text.eq_ignore_ascii_case("commit") {
        return Ok(Some(CiLabels::WithCommit));
    }
    parse_bool(text)
        .map(|on| on.then_some(CiLabels::Stable))
        .map_err(|reason| format!("{reason}, or commit"))
}

/// Comma-separated metric-name patterns (blanks around them and empty items ignored).
fn parse_patterns(text: &str) -> Result<Vec<String>, String> {
    let patterns: Vec<String> = list_items(text).map(str::to_owned).collect();
    crate::filter::check_patterns(&patterns)?;
    Ok(patterns)
}

/// Basic auth, a bearer token and headers (values and secrets never shown in errors).
fn credentials<F: Fn(&str) -> Option<OsString>>(
    env: &Env<F>,
    mut b: PushgatewayBuilder,
) -> Result<PushgatewayBuilder, InitError> {
    match (
        env.get(PUSHGATEWAY_USERNAME, false)?,
        env.get(PUSHGATEWAY_PASSWORD, true)?,
    ) {
        (Some(user), _) if user.contains(':') => {
            return Err(invalid(
                PUSHGATEWAY_USERNAME,
                user,
                "a user name must not contain ':' (basic auth puts one between the user name \
                 and the password)",
            ))
        }
        (Some(user), password) => b = b.basic_auth(user, password.unwrap_or_default()),
        (None, Some(_)) => {
            return Err(invalid(
                PUSHGATEWAY_PASSWORD,
                "***".into(),
                format!("a password needs a user name in {PUSHGATEWAY_USERNAME}"),
            ))
        }
        (None, None) => {}
    }
    if let Some(token) = env.get(PUSHGATEWAY_BEARER_TOKEN, true)? {
        if let Err(reason) = super::check::check_bearer_token(&token) {
            return Err(invalid(PUSHGATEWAY_BEARER_TOKEN, "***".into(), reason));
        }
        b = b.bearer_token(token);
    }
    if let Some(text) = env.get(PUSHGATEWAY_HEADERS, true)? {
        let headers = parse_headers(&text)
            .map_err(|reason| invalid(PUSHGATEWAY_HEADERS, redact_headers(&text), reason))?;
        for (name, value) in headers {
            b = b.header(name, value);
        }
    }
    Ok(b)
}

/// The CA file, and the client certificate with its key (both or neither).
fn tls_files<F: Fn(&str) -> Option<OsString>>(
    env: &Env<F>,
    mut b: PushgatewayBuilder,
) -> Result<PushgatewayBuilder, InitError> {
    if let Some(pem) = env.file(PUSHGATEWAY_CA_FILE, pem::ca)? {
        b.settings.ca_pem = pem;
    }
    let (cert, key) = (
        env.get(PUSHGATEWAY_CLIENT_CERT_FILE, false)?,
        env.get(PUSHGATEWAY_CLIENT_KEY_FILE, false)?,
    );
    match (cert, key) {
        (Some(_), Some(_)) => {
            let cert = env
                .file(PUSHGATEWAY_CLIENT_CERT_FILE, pem::certificates)?
                .unwrap_or_default();
            let key = env
                .file(PUSHGATEWAY_CLIENT_KEY_FILE, pem::key)?
                .unwrap_or_default();
            Ok(b.client_identity(cert, key))
        }
        (Some(cert), None) => Err(invalid(
            PUSHGATEWAY_CLIENT_CERT_FILE,
            cert,
            format!("a client certificate needs its key in {PUSHGATEWAY_CLIENT_KEY_FILE}"),
        )),
        (None, Some(key)) => Err(invalid(
            PUSHGATEWAY_CLIENT_KEY_FILE,
            key,
            format!("a client key needs its certificate in {PUSHGATEWAY_CLIENT_CERT_FILE}"),
        )),
        (None, None) => Ok(b),
    }
}

/// Parses `name=value,name2=value2` (values percent-decoded), as `OTEL_EXPORTER_OTLP_HEADERS`.
pub(super) fn parse_headers(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut headers = Vec::new();
    for (i, item) in list_items(text).enumerate() {
        let Some((name, value)) = item.split_once('=') else {
            // The item may be a secret: it is not shown.
            return Err(format!("item {} is not name=value", i + 1));
        };
        let name = name.trim();
        if name.is_empty() {
            return Err("a header name is empty".into());
        }
        check_custom_header(name)?;
        let value = percent_decode(value.trim())
            .ok_or_else(|| format!("the value of {name} is not valid UTF-8 once decoded"))?;
        headers.push((name.to_owned(), value));
    }
    Ok(headers)
}

/// `name=***,name2=***`: a header list with its values hidden.
pub(super) fn redact_headers(text: &str) -> String {
    text.split(',')
        .map(|item| match item.split_once('=') {
            Some((name, _)) => format!("{}=***", name.trim()),
            None => "***".to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses `15s`, `500ms`, `1m 30s` (humantime), or a bare number of seconds (`2.5`); with
/// `allow_off`, also `off`.
pub(super) fn parse_duration(text: &str, allow_off: bool) -> Result<Duration, String> {
    if allow_off && text.eq_ignore_ascii_case("off") {
        return Ok(Duration::ZERO);
    }
    if let Ok(secs) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(secs)
            .map_err(|_| "seconds must be a finite number, zero or more".to_owned());
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("expected a duration such as 15s, 500ms or 1m ({e})"))
}

pub(super) fn parse_bool(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err("expected 1, true, yes, on, or 0, false, no, off".into()),
    }
}

pub(super) fn parse_grouping(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut labels: Vec<(String, String)> = Vec::new();
    for item in list_items(text) {
        let Some((name, value)) = item.split_once('=') else {
            return Err(format!("{item:?} is not name=value"));
        };
        let name = name.trim();
        check_label_name(name).map_err(|reason| format!("label {name:?}: {reason}"))?;
        if name == "job" {
            return Err("the job label is the job name, not a grouping label".into());
        }
        if labels.iter().any(|(n, _)| n == name) {
            return Err(format!("label {name:?} is given twice"));
        }
        labels.push((name.to_owned(), value.trim().to_owned()));
    }
    Ok(labels)
}
