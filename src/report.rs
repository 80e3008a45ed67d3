//! What a push did: its [`PushReport`] (with a [`TargetReport`] per target) or its
//! [`PushError`]. One module, as the three refer to each other.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::target::TargetKind;

/// What one push did.
///
/// With several targets, a push succeeds when at least one target took it: the status and
/// body size are those of the first target (in configuration order) that took it, the
/// attempts are summed over all targets, the elapsed time is the longest, and
/// [`targets`](Self::targets) says how each target fared.
#[derive(Debug, Clone)]
pub struct PushReport {
    pub(crate) status: Option<u16>,
    pub(crate) attempts: u32,
    pub(crate) body_bytes: usize,
    pub(crate) elapsed: Duration,
    pub(crate) targets: Vec<TargetReport>,
}

impl PushReport {
    pub(crate) fn disabled() -> Self {
        PushReport::sent(None, 0, 0, Duration::ZERO)
    }

    pub(crate) fn sent(
        status: Option<u16>,
        attempts: u32,
        body_bytes: usize,
        elapsed: Duration,
    ) -> Self {
        PushReport {
            status,
            attempts,
            body_bytes,
            elapsed,
            targets: Vec::new(),
        }
    }

    /// Combines the targets' results, `(kind, location, result)` in configuration order: a
    /// success when at least one target took the push. One target's failure is returned as it
    /// is; when every one of several targets failed, [`PushError::AllFailed`].
    pub(crate) fn combine(
        mut results: Vec<(TargetKind, String, Result<PushReport, PushError>)>,
    ) -> Result<PushReport, PushError> {
        if results.len() == 1 {
            if let Some((_, _, Err(e))) = results.pop_if(|r| r.2.is_err()) {
                return Err(e);
            }
        }
        let targets: Vec<TargetReport> = results
            .into_iter()
            .map(|(kind, location, result)| TargetReport {
                kind,
                location,
                result: result.map_err(Arc::new),
            })
            .collect();
        let Some(first) = targets.iter().find_map(|t| t.result.as_ref().ok()) else {
            return Err(PushError::AllFailed { targets });
        };
        let mut report = PushReport::sent(first.status, 0, first.body_bytes, Duration::ZERO);
        for t in &targets {
            match &t.result {
                Ok(r) => {
                    report.attempts += r.attempts;
                    report.elapsed = report.elapsed.max(r.elapsed);
                }
                Err(e) => report.attempts += e.attempts(),
            }
        }
        report.targets = targets;
        Ok(report)
    }

    /// The status of the successful answer (200 or 202 from a Pushgateway, 2xx from a
    /// remote-write receiver), or `None` when pushing is disabled or the target is a textfile.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// How many requests were sent, retries included (0 when pushing is disabled; a textfile
    /// write counts as one).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Size of the request body in bytes, as sent (after compression, if any).
    pub fn body_bytes(&self) -> usize {
        self.body_bytes
    }

    /// Wall time from the start of the first attempt to the successful answer.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// How each target fared, in the order the targets were configured (empty when pushing
    /// is disabled, and in the reports inside a [`TargetReport`]).
    pub fn targets(&self) -> &[TargetReport] {
        &self.targets
    }

    /// The targets that did not take the push (none when every target took it).
    pub fn failed_targets(&self) -> impl Iterator<Item = &TargetReport> {
        self.targets.iter().filter(|t| !t.succeeded())
    }
}

/// What one push did at one target: part of a [`PushReport`].
#[derive(Debug, Clone)]
pub struct TargetReport {
    pub(crate) kind: TargetKind,
    pub(crate) location: String,
    pub(crate) result: Result<PushReport, Arc<PushError>>,
}

impl TargetReport {
    /// The kind of target.
    pub fn kind(&self) -> TargetKind {
        self.kind
    }

    /// Where: the group URL (Pushgateway), the receiver's URL (remote write), both without
    /// credentials, or the file written (textfile).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Whether this target took the push.
    pub fn succeeded(&self) -> bool {
        self.result.is_ok()
    }

    /// This target's answer, or why it failed.
    pub fn result(&self) -> Result<&PushReport, &PushError> {
        self.result.as_ref().map_err(|e| &**e)
    }
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
        /// The start of the response body on one line (at most 300 characters), or for a
        /// redirect where it pointed (redirects are never followed), for a 413 the body's size.
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
    #[error("push to {target} {url} did not finish within {:.3}s{}{}", timeout.as_secs_f64(), attempts_text(*attempts, last_error.is_some()), last_error.as_ref().map(|e| format!("; last error: {e}")).unwrap_or_default())]
    Timeout {
        /// The kind of target.
        target: TargetKind,
        /// The URL.
        url: String,
        /// The time budget that ran out.
        timeout: Duration,
        /// How many requests were started; 0 when nothing was sent: the snapshot was still
        /// being prepared, or an earlier push was still under way, when the time ran out.
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
    /// The kind of target that failed; `None` for [`AllFailed`](Self::AllFailed) (see each
    /// target's report) and [`ShutDown`](Self::ShutDown).
    pub fn target(&self) -> Option<TargetKind> {
        match self {
            PushError::Status { target, .. }
            | PushError::Transport { target, .. }
            | PushError::Tls { target, .. }
            | PushError::Timeout { target, .. }
            | PushError::Client { target, .. } => Some(*target),
            PushError::Textfile { .. } => Some(TargetKind::Textfile),
            PushError::AllFailed { .. } | PushError::ShutDown => None,
        }
    }

    /// Where the push went, without credentials (no user or password; query parameters that
    /// look secret redacted): the group's URL for a Pushgateway, the receiver's URL for remote write, the
    /// file's path for the textfile collector. `None` for [`AllFailed`](Self::AllFailed) and
    /// [`ShutDown`](Self::ShutDown).
    pub fn location(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            PushError::Status { url, .. }
            | PushError::Transport { url, .. }
            | PushError::Tls { url, .. }
            | PushError::Timeout { url, .. }
            | PushError::Client { url, .. } => Some(std::borrow::Cow::Borrowed(url.as_str())),
            PushError::Textfile { path, .. } => Some(path.to_string_lossy()),
            PushError::AllFailed { .. } | PushError::ShutDown => None,
        }
    }

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

    /// How many requests were sent: for [`Timeout`](Self::Timeout) how many were started
    /// (0 when nothing was sent), 1 for [`Tls`](Self::Tls) and
    /// [`Textfile`](Self::Textfile), the sum over the targets for
    /// [`AllFailed`](Self::AllFailed), 0 when nothing could be sent
    /// ([`Client`](Self::Client), [`ShutDown`](Self::ShutDown)).
    pub fn attempts(&self) -> u32 {
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

    /// Whether the same push could succeed later, so that the spool keeps it as a record.
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

fn attempts_text(attempts: u32, explained: bool) -> String {
    match attempts {
        0 if explained => " before anything was sent".into(),
        0 => " before anything was sent (its snapshot was still being prepared, or an earlier \
               push was still under way)"
            .into(),
        n => format!(" after {n} attempt(s)"),
    }
}

/// What the spool did with the values of a push that failed, said on that push's one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SpoolOutcome {
    /// The push's snapshot is kept as `file`; to stay within its bounds the spool dropped
    /// the `dropped` older records, or it could not enforce them (`unbounded`, why).
    Kept {
        file: PathBuf,
        dropped: Vec<DroppedRecord>,
        unbounded: Option<String>,
    },
    /// The snapshot alone (`bytes`) is over the spool's bound of `max_bytes`: lost.
    TooBig { bytes: u64, max_bytes: u64 },
    /// The snapshot could not be written in `dir` (`error`): lost.
    Failed { dir: PathBuf, error: String },
    /// Remote-write requests that did not arrive: those kept, by file with how many each,
    /// and those lost. The older records the bounds dropped meanwhile (`dropped`) are said
    /// on a line of their own.
    Requests {
        kept: Vec<(PathBuf, usize)>,
        lost: Vec<LostRequests>,
        dropped: Vec<DroppedRecord>,
    },
}

/// A spooled record the spool's bounds removed: its file and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DroppedRecord {
    pub(crate) file: PathBuf,
    pub(crate) bytes: u64,
}

/// Remote-write requests of a failed push that the spool could not keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LostRequests {
    /// `requests` that alone (`bytes`) are over the spool's bound of `max_bytes`.
    TooBig {
        requests: usize,
        bytes: u64,
        max_bytes: u64,
    },
    /// `requests` that could not be written in `dir` (`error`).
    Failed {
        requests: usize,
        dir: PathBuf,
        error: String,
    },
    /// `requests` written, then dropped again by the bounds for a later file of the push.
    DroppedAgain { requests: usize },
}

impl std::fmt::Display for SpoolOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const FOR_REPLAY: &str = "for the next process using this spool directory or for replay";
        match self {
            SpoolOutcome::Kept {
                file,
                dropped,
                unbounded,
            } => {
                write!(
                    f,
                    "the snapshot is kept in the spool as {}, {FOR_REPLAY}",
                    file.display()
                )?;
                if let Some(first) = dropped.first() {
                    let bytes: u64 = dropped.iter().map(|d| d.bytes).sum();
                    write!(
                        f,
                        "; to stay within its bound the spool dropped {} older snapshot(s) \
                         ({bytes} bytes, {} first)",
                        dropped.len(),
                        first.file.display()
                    )?;
                }
                if let Some(why) = unbounded {
                    write!(f, "; the spool's bounds could not be enforced: {why}")?;
                }
                Ok(())
            }
            SpoolOutcome::TooBig { bytes, max_bytes } => write!(
                f,
                "the snapshot is not kept: it alone ({bytes} bytes) is over the spool's bound \
                 of {max_bytes} bytes; its values are lost"
            ),
            SpoolOutcome::Failed { dir, error } => write!(
                f,
                "the snapshot could not be spooled in {} either: {error}; its values are lost",
                dir.display()
            ),
            SpoolOutcome::Requests { kept, lost, .. } => {
                let count: usize = kept.iter().map(|(_, n)| n).sum();
                if count > 0 {
                    let files: Vec<String> =
                        kept.iter().map(|(p, _)| p.display().to_string()).collect();
                    write!(
                        f,
                        "the {count} remote-write request(s) that did not arrive are kept in \
                         the spool as {}, {FOR_REPLAY}",
                        files.join(" and ")
                    )?;
                }
                if !lost.is_empty() {
                    if count > 0 {
                        f.write_str("; ")?;
                    }
                    let lost: Vec<String> = lost.iter().map(ToString::to_string).collect();
                    write!(
                        f,
                        "of the requests that did not arrive, {}; their values are lost",
                        lost.join(", ")
                    )?;
                }
                Ok(())
            }
        }
    }
}

impl std::fmt::Display for LostRequests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LostRequests::TooBig {
                requests,
                bytes,
                max_bytes,
            } => write!(
                f,
                "{requests} request(s) are not kept: they alone ({bytes} bytes) are over the \
                 spool's bound of {max_bytes} bytes"
            ),
            LostRequests::Failed {
                requests,
                dir,
                error,
            } => write!(
                f,
                "{requests} request(s) could not be spooled in {}: {error}",
                dir.display()
            ),
            LostRequests::DroppedAgain { requests } => write!(
                f,
                "{requests} request(s) were dropped again to keep the spool within its bounds"
            ),
        }
    }
}
