//! Checking the configuration: target URLs (and the group paths in them), label names,
//! credentials and headers, a target's settings over the builder's, buckets, the job and
//! grouping labels, and what looks insecure (the TLS material in [`tls`](super::tls)).

use std::path::PathBuf;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::Url;

use super::connection::{Auth, Secret};
use super::headers::{build_headers, check_custom_header};
use super::tls::tls_config;
use super::{CiLabels, PushgatewayBuilder, Target};
use crate::env::PUSHGATEWAY_GROUPING;
use crate::filter::{check_patterns, Filter};
use crate::log::redact_url;
use crate::names::check_label_name;
use crate::protocol::group;
use crate::snapshot::View;
use crate::target::{PushMethod, TargetKind};
use crate::transport::TlsConfig;
use crate::InitError;

/// The interval's range (0 turns interval pushes off): long enough that the pusher thread
/// yields between pushes, short enough that no deadline computed from it overflows.
pub(super) const INTERVAL_RANGE: (Duration, Duration) =
    (Duration::from_millis(10), Duration::from_secs(24 * 3600));
/// The push and shutdown timeouts' range.
pub(super) const TIMEOUT_RANGE: (Duration, Duration) =
    (Duration::from_millis(10), Duration::from_secs(3600));

/// Checks a duration against its range; `interval` also allows zero (off).
pub(crate) fn check_duration(d: Duration, interval: bool) -> Result<(), String> {
    if d.is_zero() {
        return if interval {
            Ok(())
        } else {
            Err("a timeout must be longer than zero".into())
        };
    }
    let (min, max) = if interval {
        INTERVAL_RANGE
    } else {
        TIMEOUT_RANGE
    };
    if d < min || d > max {
        return Err(format!(
            "{} is out of range: between {} and {}{}",
            humantime::format_duration(d),
            humantime::format_duration(min),
            humantime::format_duration(max),
            if interval { ", or 0 (off)" } else { "" }
        ));
    }
    Ok(())
}

/// The spool's directory and bounds, as configured; install opens one spool of it per
/// spooling target (each its own writer of the directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SpoolDir {
    pub(crate) dir: PathBuf,
    /// The most record files the directory holds.
    pub(crate) max_files: usize,
    /// The most bytes its record files hold, in all.
    pub(crate) max_bytes: u64,
}

impl SpoolDir {
    /// Whether the directory may be used, if it exists
    /// ([`check_private_dir`](crate::file::check_private_dir)): no other user can plant
    /// records this job would replay with its own credentials.
    pub(crate) fn check_trust(&self) -> Result<(), String> {
        crate::file::check_private_dir(&self.dir)
    }
}

impl PushgatewayBuilder {
    /// The job and the grouping labels: those set in code or the environment, then those of
    /// the Pushgateway URLs' group paths, then the host name and CI labels where no label of
    /// their name is set.
    pub(crate) fn identity(&self) -> Result<(String, Vec<(String, String)>), InitError> {
        let mut job = self.job.clone();
        let mut grouping = self.grouping.clone();
        for target in &self.targets {
            let (TargetKind::Pushgateway, Some(raw)) = (target.kind(), target.url()) else {
                continue;
            };
            let conflict = |reason: String| InitError::InvalidUrl {
                target: TargetKind::Pushgateway,
                url: redact_url(raw),
                reason,
            };
            let Some(from_url) = parse_endpoint(raw, TargetKind::Pushgateway)
                .map_err(&conflict)?
                .group
            else {
                continue;
            };
            if job.is_empty() {
                job = from_url.job;
            } else if job != from_url.job {
                return Err(conflict(format!(
                    "its group path names the job {:?}, and the job is {job:?} (set by init's \
                     argument, .job() or another URL): give one job, or drop /metrics/job/... \
                     from the URL",
                    from_url.job
                )));
            }
            for (name, value) in from_url.grouping {
                match grouping.iter().find(|(n, _)| *n == name) {
                    Some((_, set)) if *set != value => {
                        return Err(conflict(format!(
                            "its group path sets {name}={value:?}, and {name}={set:?} is set \
                             too (in code, {PUSHGATEWAY_GROUPING} or another URL)"
                        )))
                    }
                    Some(_) => {}
                    None => grouping.push((name, value)),
                }
            }
        }
        if job.is_empty() {
            return Err(InitError::EmptyJob);
        }
        let mut implied = Vec::new();
        if let Some(name) = &self.hostname_label {
            let host = hostname::get().map_err(|e| InitError::InvalidSetting {
                setting: "hostname_grouping_label",
                reason: format!("cannot read the host name: {e}"),
            })?;
            implied.push((name.clone(), host.to_string_lossy().into_owned()));
        }
        if let Some(which) = self.ci_labels {
            implied.extend(ci_labels(|v| std::env::var(v).ok(), which));
        }
        for (name, value) in implied {
            if !grouping.iter().any(|(n, _)| *n == name) {
                grouping.push((name, value));
            }
        }
        Ok((job, grouping))
    }

    /// The checked URL of a target and what every request to it carries: headers (auth) and
    /// TLS. Credentials in the URL are that target's basic auth, over the target's own and
    /// the builder's; the target's headers come over the builder's. `tls` is the checked TLS
    /// material ([`tls_config`](Self::tls_config)) of every target without TLS settings of
    /// its own.
    pub(crate) fn connection(
        &self,
        target: &Target,
        tls: &TlsConfig,
    ) -> Result<Connection, InitError> {
        let kind = target.kind();
        let url = target.url().unwrap_or_default();
        let Endpoint {
            url: endpoint,
            auth: url_auth,
            ..
        } = parse_endpoint(url, kind).map_err(|reason| InitError::InvalidUrl {
            target: kind,
            url: redact_url(url),
            reason,
        })?;
        let own = &target.settings;
        for (setter, headers) in [
            ("PushgatewayBuilder::header", &self.settings.headers),
            ("Target::header", &own.headers),
        ] {
            for (name, _) in headers {
                check_custom_header(name).map_err(|reason| InitError::InvalidHeader {
                    name: name.clone(),
                    reason: format!("{reason} (given to {setter})"),
                })?;
            }
        }
        let settings = own.over(&self.settings);
        let auth = url_auth.or_else(|| settings.auth.clone());
        let tls = if own.ca_pem.is_empty() && own.client_identity.is_none() {
            tls.clone()
        } else {
            tls_config(&settings, self.accept_invalid_certs).map_err(|e| match e {
                InitError::InvalidTls { what, reason } => InitError::InvalidTls {
                    what,
                    reason: format!("{reason} (the TLS settings of {kind} {})", redact_url(url)),
                },
                other => other,
            })?
        };
        Ok(Connection {
            headers: build_headers(auth.as_ref(), &settings.headers)?,
            tls,
            credentials: auth.is_some(),
            method: settings.method.unwrap_or_default(),
            endpoint,
        })
    }

    /// A target's own labels and filter, checked: label names valid (for a Pushgateway not
    /// the job or a grouping label, which the gateway would overwrite), patterns valid, a
    /// push method only for a Pushgateway.
    pub(crate) fn view(
        &self,
        target: &Target,
        grouping: &[(String, String)],
    ) -> Result<View, InitError> {
        let labels = &target.labels;
        for (i, (name, _)) in labels.iter().enumerate() {
            check_label_name(name).map_err(|reason| InitError::InvalidLabelName {
                kind: "target",
                name: name.clone(),
                reason,
            })?;
            if labels[..i].iter().any(|(n, _)| n == name) {
                return Err(InitError::DuplicateLabel {
                    name: name.clone(),
                    reason: "it is given twice as a label of one target",
                });
            }
            let reserved = match name.as_str() {
                "le" => Some("`le` is the label of a histogram's buckets"),
                "outcome" if self.lifecycle_metrics => {
                    Some("`outcome` is the label of the lifecycle metric batch_job_outcome")
                }
                _ => None,
            };
            if let Some(reason) = reserved {
                return Err(InitError::InvalidLabelName {
                    kind: "target",
                    name: name.clone(),
                    reason,
                });
            }
            if target.kind() == TargetKind::Pushgateway
                && (name == "job" || grouping.iter().any(|(n, _)| n == name))
            {
                return Err(InitError::DuplicateLabel {
                    name: name.clone(),
                    reason: "it is a label of a Pushgateway target and the job or a grouping \
                             label, and the gateway would overwrite it with the grouping value",
                });
            }
        }
        let settings = target.settings.over(&self.settings);
        for (setting, patterns) in [
            ("allow", settings.allow.as_deref()),
            ("deny", Some(&settings.deny[..])),
        ] {
            check_patterns(patterns.into_iter().flatten())
                .map_err(|reason| InitError::InvalidSetting { setting, reason })?;
        }
        if target.settings.method.is_some() && target.kind() != TargetKind::Pushgateway {
            return Err(InitError::InvalidSetting {
                setting: "Target::method",
                reason: format!(
                    "a push method is for a Pushgateway target, and this one is {}",
                    target.kind()
                ),
            });
        }
        Ok(View {
            labels: labels.clone(),
            filter: Filter::new(settings.allow.as_deref(), &settings.deny),
            histograms: target.histograms,
        })
    }

    /// The spool directory and its bounds, checked (not the directory itself: see
    /// [`SpoolDir::check_trust`]).
    pub(crate) fn spool(&self) -> Result<Option<SpoolDir>, InitError> {
        let Some(dir) = &self.spool_dir else {
            return Ok(None);
        };
        if dir.as_os_str().is_empty() {
            return Err(InitError::InvalidSetting {
                setting: "spool_dir",
                reason: "the directory must not be empty".into(),
            });
        }
        if self.spool_max_files == 0 || self.spool_max_bytes == 0 {
            return Err(InitError::InvalidSetting {
                setting: "spool_limits",
                reason: "both bounds must be above zero".into(),
            });
        }
        Ok(Some(SpoolDir {
            dir: dir.clone(),
            max_files: self.spool_max_files,
            max_bytes: self.spool_max_bytes,
        }))
    }

    /// The builder's TLS material, checked ([`tls_config`]): that of every target without
    /// TLS settings of its own.
    pub(crate) fn tls_config(&self) -> Result<TlsConfig, InitError> {
        tls_config(&self.settings, self.accept_invalid_certs)
    }
}

/// The grouping labels of the CI environment `lookup` describes (none outside CI).
pub(super) fn ci_labels(
    lookup: impl Fn(&str) -> Option<String>,
    which: CiLabels,
) -> Vec<(String, String)> {
    let is = |var: &str| lookup(var).is_some_and(|v| v == "true");
    let vars: [(&str, &str); 4] = if is("GITHUB_ACTIONS") {
        [
            ("ci_repository", "GITHUB_REPOSITORY"),
            ("ci_workflow", "GITHUB_WORKFLOW"),
            ("ci_ref", "GITHUB_REF_NAME"),
            ("ci_commit", "GITHUB_SHA"),
        ]
    } else if is("GITLAB_CI") {
        [
            ("ci_repository", "CI_PROJECT_PATH"),
            ("ci_workflow", "CI_JOB_NAME"),
            ("ci_ref", "CI_COMMIT_REF_NAME"),
            ("ci_commit", "CI_COMMIT_SHA"),
        ]
    } else {
        return Vec::new();
    };
    vars.iter()
        .filter(|(label, _)| *label != "ci_commit" || which == CiLabels::WithCommit)
        .filter_map(|(label, var)| {
            let value = lookup(var)?;
            (!value.is_empty()).then(|| ((*label).to_owned(), value))
        })
        .collect()
}

/// The endpoint (without credentials) and the settings of every request to it.
pub(crate) struct Connection {
    /// The checked URL requests are built from: no credentials, no group path (the names of
    /// a target's address, `url`, `endpoint` and `location`, are set out at
    /// `config::target::Address`).
    pub(crate) endpoint: Url,
    pub(crate) headers: HeaderMap,
    pub(crate) tls: TlsConfig,
    /// Whether requests carry basic auth or a bearer token.
    pub(crate) credentials: bool,
    /// The method of a push to a Pushgateway.
    pub(crate) method: PushMethod,
}

/// The warning for a configuration that exposes what is pushed, if any: credentials over
/// plain http to a host that is not loopback, or certificate verification turned off.
pub(crate) fn insecure_warning(url: &Url, credentials: bool, tls: &TlsConfig) -> Option<String> {
    let shown = crate::log::shown(url);
    if tls.accept_invalid_certs {
        return Some(format!(
            "certificate verification is off for {shown} (danger_accept_invalid_certs): anyone on \
             the path can read and change what is pushed"
        ));
    }
    if credentials && url.scheme() == "http" && !is_loopback(url) {
        return Some(format!(
            "credentials are sent over plain http to {shown}, a host that is not loopback: \
             anyone on the path can read them; use https"
        ));
    }
    None
}

/// A bearer token is sent as `Authorization: Bearer <token>`: it must be a valid header value
/// (visible ASCII, spaces and tabs; no line breaks or other control characters).
pub(super) fn check_bearer_token(token: &str) -> Result<(), String> {
    match HeaderValue::from_str(&format!("Bearer {token}")) {
        Ok(_) => Ok(()),
        Err(_) => Err(
            "the token holds characters not allowed in an HTTP header (line breaks \
                       or other control characters)"
                .into(),
        ),
    }
}

pub(crate) fn check_buckets(buckets: &[f64]) -> Result<(), InitError> {
    if buckets.is_empty() {
        return Err(InitError::InvalidBuckets("no bucket bounds given".into()));
    }
    if buckets.iter().any(|b| !b.is_finite()) {
        return Err(InitError::InvalidBuckets(format!(
            "bounds must be finite (the +Inf bucket is added by itself): {buckets:?}"
        )));
    }
    if buckets.windows(2).any(|w| w[0] >= w[1]) {
        return Err(InitError::InvalidBuckets(format!(
            "bounds must be strictly increasing: {buckets:?}"
        )));
    }
    Ok(())
}

pub(super) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// A checked target URL.
#[derive(Debug)]
pub(super) struct Endpoint {
    /// The URL without credentials (and, for a Pushgateway, without a group path).
    pub(super) url: Url,
    /// The credentials the URL held, as basic auth.
    pub(super) auth: Option<Auth>,
    /// The job and grouping labels of a Pushgateway URL's group path.
    pub(super) group: Option<UrlGroup>,
}

/// The job and grouping labels of a `/metrics/job/<job>{/<label>/<value>}` path.
pub(super) use crate::protocol::group::Group as UrlGroup;

/// Parses and checks a target's URL. Without a scheme, `http://` is meant.
pub(super) fn parse_endpoint(raw: &str, kind: TargetKind) -> Result<Endpoint, String> {
    let with_scheme;
    let raw = if raw.contains("://") {
        raw
    } else {
        with_scheme = format!("http://{raw}");
        &with_scheme
    };
    let mut url = Url::parse(raw).map_err(|e| e.to_string())?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(format!(
            "the scheme must be http or https, not {:?}",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("no host".into());
    }
    if url.scheme() == "https" && !cfg!(feature = "tls") {
        return Err("https needs the crate's `tls` feature".into());
    }
    if kind == TargetKind::RemoteWrite && !cfg!(feature = "remote-write") {
        return Err("remote write needs the crate's `remote-write` feature".into());
    }
    if url.fragment().is_some() {
        return Err("a fragment cannot be part of the URL".into());
    }
    // Remote-write receivers may take settings in the query (VictoriaMetrics' extra_label).
    if url.query().is_some() && kind == TargetKind::Pushgateway {
        return Err("a query string cannot be part of a Pushgateway URL".into());
    }
    let group = if kind == TargetKind::Pushgateway {
        take_group_path(&mut url)?
    } else {
        None
    };
    let auth = if url.username().is_empty() {
        None
    } else {
        let decode = |s: &str| {
            percent_decode(s).ok_or_else(|| "the credentials are not valid UTF-8".to_owned())
        };
        let auth = Auth::Basic {
            username: decode(url.username())?,
            password: Secret(decode(url.password().unwrap_or(""))?),
        };
        let _ = url.set_username("");
        let _ = url.set_password(None);
        Some(auth)
    };
    Ok(Endpoint { url, auth, group })
}

/// Removes a `/metrics/job/<job>{/<label>/<value>}` group path from a Pushgateway URL and
/// returns its job and labels (read as the gateway reads them: [`group::parse`]). The rest of
/// the path is kept as the endpoint's prefix.
pub(super) fn take_group_path(url: &mut Url) -> Result<Option<UrlGroup>, String> {
    let path = url.path().to_owned();
    let segments: Vec<&str> = path.split('/').collect();
    let Some(at) = segments
        .windows(2)
        .position(|w| w[0] == "metrics" && (w[1] == "job" || w[1] == "job@base64"))
    else {
        return Ok(None);
    };
    let rest = &segments[at + 1..];
    let rest = rest.strip_suffix(&[""]).unwrap_or(rest);
    let group = group::parse(&format!("/{}", rest.join("/"))).map_err(|e| e.describe(&path))?;
    url.set_path(&segments[..at].join("/"));
    Ok(Some(group))
}

pub(super) fn percent_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

pub(crate) fn check_labels(
    grouping: &[(String, String)],
    global: &[(String, String)],
) -> Result<(), InitError> {
    for (kind, labels) in [("grouping", grouping), ("global", global)] {
        for (i, (name, _)) in labels.iter().enumerate() {
            check_label_name(name).map_err(|reason| InitError::InvalidLabelName {
                kind,
                name: name.clone(),
                reason,
            })?;
            if name == "job" {
                return Err(InitError::InvalidLabelName {
                    kind,
                    name: name.clone(),
                    reason: "the job label is the job name: set it with .job()",
                });
            }
            if kind == "global" && name == "le" {
                return Err(InitError::InvalidLabelName {
                    kind,
                    name: name.clone(),
                    reason: "`le` is the label of a histogram's buckets",
                });
            }
            if labels[..i].iter().any(|(n, _)| n == name) {
                return Err(InitError::DuplicateLabel {
                    name: name.clone(),
                    reason: if kind == "grouping" {
                        "it is given twice as a grouping label"
                    } else {
                        "it is given twice as a global label"
                    },
                });
            }
        }
    }
    if let Some((name, _)) = global
        .iter()
        .find(|(g, _)| grouping.iter().any(|(n, _)| n == g))
    {
        return Err(InitError::DuplicateLabel {
            name: name.clone(),
            reason: "it is both a global and a grouping label, and the gateway would overwrite \
                     the global value with the grouping value",
        });
    }
    Ok(())
}
