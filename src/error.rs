//! Errors: [`InitError`] when setting up, [`PushError`] when pushing.

use std::error::Error as StdError;
use std::fmt::Write as _;
use std::time::Duration;

use crate::target::{TargetKind, TargetReport};

/// An error found while configuring or installing the exporter.
///
/// Returned by [`PushgatewayBuilder::install`](crate::PushgatewayBuilder::install),
/// [`PushgatewayBuilder::from_env`](crate::PushgatewayBuilder::from_env) and
/// [`init`](crate::init). Nothing has been installed when one is returned, so the process can
/// carry on without the exporter (recording into the `metrics` facade is then a no-op).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// A target's URL could not be parsed or is not usable.
    #[error("invalid {target} URL {url:?}: {reason}")]
    InvalidUrl {
        /// The kind of target.
        target: TargetKind,
        /// The URL as given, with any password replaced by `***`.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// The job name is empty.
    #[error("invalid job name: the job name must not be empty")]
    EmptyJob,
    /// A grouping or global label name is not a valid Prometheus label name.
    #[error("invalid {kind} label name {name:?}: {reason}")]
    InvalidLabelName {
        /// `"grouping"` or `"global"`.
        kind: &'static str,
        /// The label name as given.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A label was given twice, or a global label would be silently overwritten by a grouping
    /// label of the same name (the Pushgateway replaces body labels that are in the grouping key).
    #[error("label {name:?} is given twice: {reason}")]
    DuplicateLabel {
        /// The label name.
        name: String,
        /// Which two places name it.
        reason: &'static str,
    },
    /// A CA certificate or client identity (certificate and private key) is not usable PEM.
    #[error("invalid TLS {what}: {reason}")]
    InvalidTls {
        /// `"CA certificate"`, `"client certificate"` or `"client key"`.
        what: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// A duration or other setting is out of range.
    #[error("invalid setting {setting}: {reason}")]
    InvalidSetting {
        /// The builder method or setting.
        setting: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// An environment variable holds a value that cannot be used.
    #[error("invalid value {value:?} in environment variable {var}: {reason}")]
    InvalidEnv {
        /// The variable's name.
        var: &'static str,
        /// The value, with secrets replaced by `***`.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// A custom HTTP header name or value is invalid.
    #[error("invalid HTTP header {name:?}: {reason}")]
    InvalidHeader {
        /// The header name as given.
        name: String,
        /// Why it was refused.
        reason: String,
    },
    /// Histogram buckets were empty or not finite.
    #[error("invalid histogram buckets: {0}")]
    InvalidBuckets(String),
    /// A global `metrics` recorder is already installed in this process (by this crate or
    /// another exporter). `metrics` allows one per process.
    #[error(
        "a global metrics recorder is already installed in this process (install the exporter \
         once, before any other recorder)"
    )]
    RecorderAlreadyInstalled,
    /// The spool directory could not be read, created or locked.
    #[error("spool directory {}: {source}", dir.display())]
    Spool {
        /// The directory.
        dir: std::path::PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The pusher thread or the signal listener could not be started.
    #[error("failed to start the {what}: {source}")]
    FailedToSpawn {
        /// `"pusher thread"` or `"signal listener"`.
        what: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// An error of the HTTP client, with its source chain (I/O, TLS, DNS errors beneath it).
///
/// Opaque: the HTTP client is an implementation detail, so that a new version of it is not a
/// breaking change here. Its text and [`source`](std::error::Error::source) chain say what
/// happened.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct HttpError(reqwest::Error);

impl From<reqwest::Error> for HttpError {
    fn from(e: reqwest::Error) -> Self {
        HttpError(e)
    }
}

/// An error from one push (or delete).
///
/// `target` says which kind of target failed; `url` is the group's URL (Pushgateway) or the
/// receiver's URL (remote write), without credentials. No variant carries a password, token
/// or header value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// The gateway answered with a status that is not a success. For statuses that are retried
    /// (5xx, 408, 429) this is the last answer once retries ran out; other 4xx and 3xx are never
    /// retried (`body` holds the gateway's explanation, e.g. its 400 message about inconsistent
    /// metric types).
    #[error("{target} {url} answered {status} after {attempts} attempt(s): {body}")]
    Status {
        /// The kind of target.
        target: TargetKind,
        /// The URL.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the response body (at most 1 KiB), trimmed.
        body: String,
        /// How many requests were sent.
        attempts: u32,
    },
    /// The request could not be sent or its answer not read (connection refused or reset, TLS,
    /// DNS), and retries ran out.
    #[error("could not reach {target} {url} after {attempts} attempt(s): {cause}")]
    Transport {
        /// The kind of target.
        target: TargetKind,
        /// The URL.
        url: String,
        /// The cause, with its whole source chain, on one line.
        cause: String,
        /// How many requests were sent.
        attempts: u32,
        /// The HTTP client's error.
        #[source]
        source: HttpError,
    },
    /// The TLS handshake with the gateway failed in a way retrying cannot fix: its certificate
    /// is not trusted (give its CA with
    /// [`ca_certificate`](crate::PushgatewayBuilder::ca_certificate)) or it refused ours (see
    /// [`client_identity`](crate::PushgatewayBuilder::client_identity)). Not retried; there is
    /// no fallback to an unverified connection.
    #[error("TLS with {target} {url} failed: {cause}")]
    Tls {
        /// The kind of target.
        target: TargetKind,
        /// The URL.
        url: String,
        /// The cause, with its whole source chain, on one line, and a hint.
        cause: String,
        /// The HTTP client's error.
        #[source]
        source: HttpError,
    },
    /// The push did not finish within its time budget (the shutdown timeout for the final push,
    /// the push timeout otherwise).
    #[error("push to {target} {url} did not finish within {:.3}s{}{}", timeout.as_secs_f64(), attempts_text(*attempts), last_error.as_ref().map(|e| format!("; last error: {e}")).unwrap_or_default())]
    Timeout {
        /// The kind of target.
        target: TargetKind,
        /// The URL.
        url: String,
        /// The time budget that ran out.
        timeout: Duration,
        /// How many requests were started; 0 when the pusher was still busy with an earlier
        /// push when the time ran out.
        attempts: u32,
        /// The error of the last finished attempt, if any finished.
        last_error: Option<Box<PushError>>,
    },
    /// The request could not be prepared: the HTTP client failed to start (e.g. its TLS
    /// configuration was refused) or the body could not be encoded.
    #[error("cannot push to {target} {url}: {cause}")]
    Client {
        /// The kind of target.
        target: TargetKind,
        /// The URL.
        url: String,
        /// What failed.
        cause: String,
    },
    /// The textfile could not be written (directory missing or not writable, disk full).
    #[error("cannot write the textfile {}: {source}", path.display())]
    Textfile {
        /// The file.
        path: std::path::PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Every one of several targets failed; each one's error is in its report. (With one
    /// target, its own error is returned instead.)
    #[error("every target failed: {}", failures(targets))]
    AllFailed {
        /// Each target's report, in configuration order.
        targets: Vec<TargetReport>,
    },
    /// The final push already ran (or is running) on another path; pushes are no longer
    /// accepted.
    #[error("the Pushgateway exporter has already shut down")]
    ShutDown,
}

impl PushError {
    /// The HTTP status the gateway answered with, if this error carries one.
    pub fn status(&self) -> Option<u16> {
        match self {
            PushError::Status { status, .. } => Some(*status),
            PushError::Timeout {
                last_error: Some(e),
                ..
            } => e.status(),
            _ => None,
        }
    }
}

impl PushError {
    /// Whether the gateway refused the body itself (400, 413, 415, 422): sending the same body
    /// again cannot succeed, so it is neither retried nor spooled.
    pub(crate) fn rejects_body(&self) -> bool {
        matches!(self, PushError::Status { status, .. } if matches!(status, 400 | 413 | 415 | 422))
    }

    /// How many requests were sent.
    pub(crate) fn attempts(&self) -> u32 {
        match self {
            PushError::Status { attempts, .. }
            | PushError::Transport { attempts, .. }
            | PushError::Timeout { attempts, .. } => *attempts,
            PushError::Tls { .. } | PushError::Textfile { .. } => 1,
            PushError::AllFailed { targets } => targets
                .iter()
                .map(|t| {
                    t.result()
                        .map_or_else(PushError::attempts, |r| r.attempts())
                })
                .sum(),
            PushError::Client { .. } | PushError::ShutDown => 0,
        }
    }

    /// Whether the same snapshot could succeed later, so that the spool keeps it.
    pub(crate) fn worth_keeping(&self) -> bool {
        !self.rejects_body() && !matches!(self, PushError::ShutDown)
    }
}

fn failures(targets: &[TargetReport]) -> String {
    let mut out = String::new();
    for (i, t) in targets.iter().enumerate() {
        if let Err(e) = t.result() {
            if i > 0 {
                out.push_str("; ");
            }
            let _ = write!(out, "{e}");
        }
    }
    out
}

fn attempts_text(attempts: u32) -> String {
    match attempts {
        0 => " (the pusher was still busy with an earlier push)".into(),
        n => format!(" after {n} attempt(s)"),
    }
}

/// Renders an error and all its sources on one line, `a: b: c`, dropping a source whose text
/// the previous one already contains.
pub(crate) fn chain(err: &dyn StdError) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !out.contains(&text) {
            let _ = write!(out, ": {text}");
        }
        source = e.source();
    }
    out
}
