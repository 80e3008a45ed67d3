//! [`InitError`]: what can go wrong when setting up; and the one-line rendering of an error
//! chain.

use std::error::Error as StdError;
use std::fmt::Write as _;

use crate::target::TargetKind;

/// An error found while configuring or installing the exporter.
///
/// Returned by [`PushgatewayBuilder::install`](crate::PushgatewayBuilder::install),
/// [`build`](crate::PushgatewayBuilder::build),
/// [`replay`](crate::PushgatewayBuilder::replay),
/// [`from_env`](crate::PushgatewayBuilder::from_env), [`try_init`](crate::try_init),
/// [`replay()`](crate::replay) and [`PushGuard::install_hooks`](crate::PushGuard::install_hooks)
/// ([`init`](crate::init) reports it on one line instead). Nothing has been installed when
/// one is returned by install or build, so the process can carry on without the exporter
/// (recording into the `metrics` facade is then a no-op).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// A target's URL could not be parsed or is not usable (scheme, host, a feature that is
    /// off), or its group path names a job or grouping label that another setting gives a
    /// different value.
    #[error("invalid {target} URL {url:?}: {reason}")]
    InvalidUrl {
        /// The kind of target.
        target: TargetKind,
        /// The URL as given, safe to show: a password, query values and a fragment replaced
        /// by `***`.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// The job name is empty.
    #[error("invalid job name: the job name must not be empty")]
    EmptyJob,
    /// A grouping, global or target label name is not a valid Prometheus label name, or is
    /// one the exporter or the gateway gives a meaning of its own (`job`; `le`; `outcome`
    /// with the lifecycle metrics on).
    #[error("invalid {kind} label name {name:?}: {reason}")]
    InvalidLabelName {
        /// `"grouping"`, `"global"` or `"target"`.
        kind: &'static str,
        /// The label name as given.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A label was given twice, or a global label (or a Pushgateway target's own label) would
    /// be silently overwritten by the job or a grouping label of the same name (the
    /// Pushgateway replaces body labels that are in the grouping key).
    #[error("label {name:?} is given twice: {reason}")]
    DuplicateLabel {
        /// The label name.
        name: String,
        /// Which two places name it.
        reason: &'static str,
    },
    /// A CA certificate or client identity (certificate and private key) is not usable PEM,
    /// or TLS settings are given and the crate's `tls` feature is off.
    #[error("invalid TLS {what}: {reason}")]
    InvalidTls {
        /// `"CA certificate"`, `"client certificate"`, `"client key"`, or `"settings"` (the
        /// `tls` feature is off).
        what: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// A setting is out of range (a duration, the spool limits, the samples per request),
    /// empty where a value is needed (a directory), needs a feature that is off, or does not
    /// fit the other settings (a spool or replay without a target that keeps pushes).
    #[error("invalid setting {setting}: {reason}")]
    InvalidSetting {
        /// The builder method or setting, e.g. `"shutdown_timeout"`, `"spool_dir"`,
        /// `"Target::method"`.
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
    /// Histogram buckets were empty, not finite or not strictly increasing.
    #[error("invalid histogram buckets: {0}")]
    InvalidBuckets(String),
    /// A global `metrics` recorder is already installed in this process (by this crate or
    /// another exporter). `metrics` allows one per process.
    #[error(
        "a global metrics recorder is already installed in this process (install the exporter \
         once, before any other recorder)"
    )]
    RecorderAlreadyInstalled,
    /// [`PushGuard::install_hooks`](crate::PushGuard::install_hooks) was called when the exit
    /// paths' hooks were installed already in this process (by `install()` or an earlier
    /// call): they serve one exporter.
    #[error(
        "the exit hooks (process-wide handle, panic hook, signal listener) are already \
         installed in this process, for one exporter"
    )]
    HooksAlreadyInstalled,
    /// The spool directory could not be read, created or locked by
    /// [`replay`](crate::PushgatewayBuilder::replay) (at install, a spool that cannot be used
    /// is a warning, and pushes go on without it).
    #[error("spool directory {}: {source}", dir.display())]
    Spool {
        /// The directory.
        dir: std::path::PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The `/metrics` listener could not listen on its address: it is malformed, not an IP
    /// address (host names are not resolved), or is taken (`Address already in use`) or not
    /// allowed.
    #[error("cannot listen for scrapes on {addr:?} (set by {setting}): {reason}")]
    Listen {
        /// The address as given.
        addr: String,
        /// `PushgatewayBuilder::listen` or the environment variable `PUSHGATEWAY_LISTEN`.
        setting: &'static str,
        /// Why (the operating system's error, for a taken port).
        reason: String,
    },
    /// A pusher thread (one per target), the `/metrics` listener's thread or the signal
    /// listener could not be started.
    #[error("failed to start the {what}: {source}")]
    FailedToSpawn {
        /// `"pusher thread"`, `"metrics listener"` or `"signal listener"`.
        what: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
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
