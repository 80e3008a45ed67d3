//! The environment: the `PUSHGATEWAY_*` variables, each read and checked by a small helper
//! of its own, into a builder.

use std::ffi::OsString;
use std::time::Duration;

use super::check::{
    check_duration, check_label_name, parse_endpoint, percent_decode, ENV_GROUPING,
};
use super::headers::check_custom_header;
use super::{CiLabels, ExpositionFormat, PushgatewayBuilder, Target};
use crate::log::redact_url;
use crate::target::TargetKind;
use crate::InitError;

/// Environment variable: the Pushgateway endpoint (default `http://127.0.0.1:9091`), or
/// several, separated by commas, to push to each.
pub const ENV_URL: &str = "PUSHGATEWAY_URL";
/// Environment variable: the URL of a Prometheus remote-write receiver to push to (several,
/// separated by commas). With this or [`ENV_TEXTFILE_DIR`] set and [`ENV_URL`] unset, no
/// Pushgateway is pushed to.
pub const ENV_REMOTE_WRITE_URL: &str = "PUSHGATEWAY_REMOTE_WRITE_URL";
/// Environment variable: node_exporter's textfile collector directory, to write
/// `<job>.prom` in.
pub const ENV_TEXTFILE_DIR: &str = "PUSHGATEWAY_TEXTFILE_DIR";
/// Environment variable: user name for HTTP basic auth (needs [`ENV_PASSWORD`]).
pub const ENV_USERNAME: &str = "PUSHGATEWAY_USERNAME";
/// Environment variable: password for HTTP basic auth.
pub const ENV_PASSWORD: &str = "PUSHGATEWAY_PASSWORD";
/// Environment variable: bearer token sent as `Authorization: Bearer <token>`.
pub const ENV_BEARER_TOKEN: &str = "PUSHGATEWAY_BEARER_TOKEN";
/// Environment variable: time between interval pushes (`15s`, `500ms`, `1m`, or seconds as a
/// number); `0` or `off` turns interval pushes off.
pub const ENV_INTERVAL: &str = "PUSHGATEWAY_INTERVAL";
/// Environment variable: time budget of a push that is not the final one.
pub const ENV_PUSH_TIMEOUT: &str = "PUSHGATEWAY_PUSH_TIMEOUT";
/// Environment variable: time budget of the final push.
pub const ENV_SHUTDOWN_TIMEOUT: &str = "PUSHGATEWAY_SHUTDOWN_TIMEOUT";
/// Environment variable: `1`, `true`, `yes` or `on` turns pushing off (the recorder is still
/// installed and `render()` works): for unit tests and local runs.
pub const ENV_DISABLED: &str = "PUSHGATEWAY_DISABLED";

/// Environment variable: directory of the disk spool, where snapshots whose push failed are
/// kept until a later process (or [`replay`](crate::replay)) sends them. Unset: no spool.
pub const ENV_SPOOL_DIR: &str = "PUSHGATEWAY_SPOOL_DIR";
/// Environment variable: path of a PEM file of CA certificates to trust (in addition to the
/// built-in roots), for a gateway with a private CA.
pub const ENV_CA_FILE: &str = "PUSHGATEWAY_CA_FILE";
/// Environment variable: path of the PEM client certificate (chain) for mutual TLS; needs
/// [`ENV_CLIENT_KEY_FILE`].
pub const ENV_CLIENT_CERT_FILE: &str = "PUSHGATEWAY_CLIENT_CERT_FILE";
/// Environment variable: path of the PEM private key of the client certificate.
pub const ENV_CLIENT_KEY_FILE: &str = "PUSHGATEWAY_CLIENT_KEY_FILE";

/// Environment variable: `0`, `false`, `no` or `off` leaves the exporter's own metrics
/// (`pushgateway_exporter_*`) out of what is pushed.
pub const ENV_SELF_METRICS: &str = "PUSHGATEWAY_SELF_METRICS";

/// Environment variable: HTTP headers sent with every request, as `name=value,name2=value2`
/// (the `OTEL_EXPORTER_OTLP_HEADERS` convention; values may be percent-encoded, e.g. `%2C`
/// for a comma). Values are treated as secrets.
pub const ENV_HEADERS: &str = "PUSHGATEWAY_HEADERS";

/// Environment variable: the name of a grouping label whose value is this host's name
/// ([`PushgatewayBuilder::hostname_grouping_label`]), e.g. `instance`.
pub const ENV_HOSTNAME_LABEL: &str = "PUSHGATEWAY_HOSTNAME_LABEL";

/// Environment variable: the most samples one remote-write request carries (a push with more
/// goes as several requests), from 1 to 1,000,000; default
/// [`DEFAULT_REMOTE_WRITE_MAX_SAMPLES`](crate::DEFAULT_REMOTE_WRITE_MAX_SAMPLES) (2,000).
pub const ENV_REMOTE_WRITE_MAX_SAMPLES: &str = "PUSHGATEWAY_REMOTE_WRITE_MAX_SAMPLES";

/// Environment variable: the body format of pushes to a Pushgateway, `protobuf` (the
/// default) or `text` ([`ExpositionFormat`](crate::ExpositionFormat)).
pub const ENV_FORMAT: &str = "PUSHGATEWAY_FORMAT";

/// Environment variable: `1`, `true`, `yes` or `on` adds grouping labels from a CI
/// environment ([`PushgatewayBuilder::ci_grouping_labels`]); `commit` adds the commit too.
pub const ENV_CI_LABELS: &str = "PUSHGATEWAY_CI_LABELS";

/// Environment variable: metric-name patterns (`*` for any run of characters),
/// comma-separated: only the metrics they match are pushed
/// ([`PushgatewayBuilder::allow`]).
pub const ENV_ALLOW: &str = "PUSHGATEWAY_ALLOW";

/// Environment variable: metric-name patterns, comma-separated: the metrics they match are
/// never pushed ([`PushgatewayBuilder::deny`]).
pub const ENV_DENY: &str = "PUSHGATEWAY_DENY";

/// Environment variable: `ip:port` to serve `GET /metrics` on, for Prometheus to scrape
/// ([`PushgatewayBuilder::listen`]), e.g. `0.0.0.0:9100` (an IP address: host names are
/// refused, not resolved). With no push target configured
/// (neither [`ENV_URL`], [`ENV_REMOTE_WRITE_URL`], [`ENV_TEXTFILE_DIR`] nor a target in code),
/// the process is only scraped.
pub const ENV_LISTEN: &str = "PUSHGATEWAY_LISTEN";

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
            (ENV_INTERVAL, &mut b.interval),
            (ENV_PUSH_TIMEOUT, &mut b.push_timeout),
            (ENV_SHUTDOWN_TIMEOUT, &mut b.shutdown_timeout),
        ] {
            if let Some(d) = env.parsed(name, |text| duration(name, text))? {
                *slot = d;
            }
        }
        if let Some(grouping) = env.parsed(ENV_GROUPING, parse_grouping)? {
            b.grouping = grouping;
        }
        b = credentials(&env, b)?;
        b = tls_files(&env, b)?;
        if let Some(name) = env.parsed(ENV_HOSTNAME_LABEL, |name| {
            check_label_name(name)
                .map(|()| name.to_owned())
                .map_err(String::from)
        })? {
            b.hostname_label = Some(name);
        }
        // A list of no items (`,`) is as if unset: it does not allow nothing.
        if let Some(patterns) = env.parsed(ENV_ALLOW, parse_patterns)? {
            if !patterns.is_empty() {
                b = b.allow(patterns);
            }
        }
        if let Some(patterns) = env.parsed(ENV_DENY, parse_patterns)? {
            b = b.deny(patterns);
        }
        if let Some(format) = env.parsed(ENV_FORMAT, parse_format)? {
            b.format = format;
        }
        if let Some(form) = env.parsed(
            super::histograms::ENV_HISTOGRAMS,
            super::histograms::parse_histograms,
        )? {
            b.histograms.form = form;
        }
        if let Some(n) = env.parsed(ENV_REMOTE_WRITE_MAX_SAMPLES, parse_max_samples)? {
            b.remote_write_max_samples = n;
        }
        if let Some(addr) = env.parsed(ENV_LISTEN, |text| {
            crate::listen::check_addr(text).map(|()| text.to_owned())
        })? {
            b.listen = Some((addr, ENV_LISTEN));
        }
        if let Some(dir) = env.get(ENV_SPOOL_DIR, false)? {
            b.spool_dir = Some(dir.into());
        }
        if let Some(which) = env.parsed(ENV_CI_LABELS, ci_labels)? {
            b.ci_labels = which;
        }
        if let Some(on) = env.parsed(ENV_SELF_METRICS, parse_bool)? {
            b.self_metrics = on;
        }
        if let Some(off) = env.parsed(ENV_DISABLED, parse_bool)? {
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
        (ENV_URL, TargetKind::Pushgateway),
        (ENV_REMOTE_WRITE_URL, TargetKind::RemoteWrite),
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
    if let Some(dir) = env.get(ENV_TEXTFILE_DIR, false)? {
        targets.push(Target::textfile(dir));
    }
    Ok(targets)
}

/// A duration variable's value; only the interval may be `0` or `off`.
fn duration(name: &'static str, text: &str) -> Result<Duration, String> {
    let d = parse_duration(text, name == ENV_INTERVAL)?;
    check_duration(d, name == ENV_INTERVAL)?;
    Ok(d)
}

/// `PUSHGATEWAY_FORMAT`: `text` or `protobuf`.
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
    match (env.get(ENV_USERNAME, false)?, env.get(ENV_PASSWORD, true)?) {
        (Some(user), _) if user.contains(':') => {
            return Err(invalid(
                ENV_USERNAME,
                user,
                "a user name must not contain ':' (basic auth puts one between the user name \
                 and the password)",
            ))
        }
        (Some(user), password) => b = b.basic_auth(user, password.unwrap_or_default()),
        (None, Some(_)) => {
            return Err(invalid(
                ENV_PASSWORD,
                "***".into(),
                format!("a password needs a user name in {ENV_USERNAME}"),
            ))
        }
        (None, None) => {}
    }
    if let Some(token) = env.get(ENV_BEARER_TOKEN, true)? {
        if let Err(reason) = super::check::check_bearer_token(&token) {
            return Err(invalid(ENV_BEARER_TOKEN, "***".into(), reason));
        }
        b = b.bearer_token(token);
    }
    if let Some(text) = env.get(ENV_HEADERS, true)? {
        let headers = parse_headers(&text)
            .map_err(|reason| invalid(ENV_HEADERS, redact_headers(&text), reason))?;
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
    if let Some(pem) = env.file(ENV_CA_FILE, pem::ca)? {
        b.settings.ca_pem = pem;
    }
    let (cert, key) = (
        env.get(ENV_CLIENT_CERT_FILE, false)?,
        env.get(ENV_CLIENT_KEY_FILE, false)?,
    );
    match (cert, key) {
        (Some(_), Some(_)) => {
            let cert = env
                .file(ENV_CLIENT_CERT_FILE, pem::certificates)?
                .unwrap_or_default();
            let key = env.file(ENV_CLIENT_KEY_FILE, pem::key)?.unwrap_or_default();
            Ok(b.client_identity(cert, key))
        }
        (Some(cert), None) => Err(invalid(
            ENV_CLIENT_CERT_FILE,
            cert,
            format!("a client certificate needs its key in {ENV_CLIENT_KEY_FILE}"),
        )),
        (None, Some(key)) => Err(invalid(
            ENV_CLIENT_KEY_FILE,
            key,
            format!("a client key needs its certificate in {ENV_CLIENT_CERT_FILE}"),
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
