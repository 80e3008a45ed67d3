//! Sending spooled snapshots again: one file at a time, oldest first, each removed only after
//! the gateway answered 2xx.

use std::cell::Cell;
use std::collections::VecDeque;
use std::fs::File;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::Url;

use super::{Entry, ReadError, Spool};
use crate::report::PushError;
use crate::sink::group::{push_headers, url_for};
use crate::sink::http::{self, Request};
use crate::sink::remote_write_wire;

/// What [`replay`](crate::replay) or
/// [`PushgatewayBuilder::replay`](crate::PushgatewayBuilder::replay) did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct ReplayReport {
    /// Snapshots the gateway accepted (2xx), now removed from the spool.
    pub sent: usize,
    /// Snapshots still in the spool: the gateway could not be reached or refused the request
    /// for a reason that may change (5xx, 401, ...). Replay stops at the first such answer.
    pub kept: usize,
    /// Snapshots the gateway refused with 400 (e.g. a metric type that conflicts with another
    /// group), renamed to `*.rejected` in the spool directory.
    pub rejected: usize,
    /// Files that were not valid snapshots (truncated, altered), renamed to `*.corrupt`.
    pub corrupt: usize,
    /// Another process held the spool's replay lock, so nothing was sent.
    pub locked: bool,
    /// Remote-write requests the receiver took from files that are still kept (counted in
    /// `kept`): such a file is rewritten without them, and the next replay continues with
    /// the rest.
    pub requests_sent: usize,
    /// The error that stopped the replay, if any.
    pub error: Option<PushError>,
}

impl ReplayReport {
    /// Whether the spool is empty of snapshots that can still be sent.
    pub fn is_drained(&self) -> bool {
        self.kept == 0 && !self.locked
    }
}

impl std::fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.locked {
            return f.write_str("another process is replaying this spool; nothing sent");
        }
        write!(
            f,
            "{} sent, {} kept, {} rejected, {} corrupt",
            self.sent, self.kept, self.rejected, self.corrupt
        )?;
        if self.requests_sent > 0 {
            write!(
                f,
                "; {} remote-write request(s) of kept files sent, the next replay continues \
                 with the rest",
                self.requests_sent
            )?;
        }
        if let Some(e) = &self.error {
            write!(f, "; stopped by: {e}")?;
        }
        Ok(())
    }
}

/// The result of replaying one file.
pub(crate) enum Step {
    /// Accepted and removed.
    Sent,
    /// Still in the spool; replay should stop (the gateway is down or refuses us).
    Kept(PushError),
    /// A remote-write file of which the receiver took `sent` of `of` requests before `error`;
    /// the file now holds the others (`saved` says if it could not be rewritten).
    Partly {
        sent: usize,
        of: usize,
        error: PushError,
        saved: Result<(), String>,
    },
    /// Refused for its content; set aside.
    Rejected(PushError, PathBuf),
    /// Not a valid snapshot; set aside.
    Corrupt(String, Option<PathBuf>),
    /// Gone meanwhile (replaced by a newer snapshot of its group, or removed).
    Gone,
    /// Meant for another gateway: left in the spool for a replayer of that one.
    Elsewhere,
}

/// A replay of a spool in the background, by a sink on its pusher thread: one file a step,
/// oldest first, under the spool's replay lock.
pub(crate) struct Background {
    _lock: File,
    queue: VecDeque<Entry>,
    report: ReplayReport,
}

impl Background {
    /// Starts a replay of `spool`, unless it is empty or another process (or target) is
    /// replaying it.
    pub(crate) fn begin(spool: &Spool) -> Option<Background> {
        let queue: VecDeque<Entry> = match spool.entries() {
            Ok(e) if e.is_empty() => return None,
            Ok(e) => e.into(),
            Err(e) => {
                crate::log::warn(&format!(
                    "spool directory {} cannot be read: {e}",
                    spool.dir().display()
                ));
                return None;
            }
        };
        match spool.lock() {
            Ok(Some(lock)) => {
                spool.remove_stale_tmp();
                Some(Background {
                    _lock: lock,
                    queue,
                    report: ReplayReport::default(),
                })
            }
            Ok(None) => {
                tracing::debug!("another process is replaying the spool");
                None
            }
            Err(e) => {
                crate::log::warn(&format!(
                    "spool directory {} cannot be locked for replay: {e}",
                    spool.dir().display()
                ));
                None
            }
        }
    }

    /// Replays the oldest file left to the target at `endpoint` (see [`replay_one`]), shows
    /// `on_step` what happened, and says whether the replay goes on (false: none was left, or
    /// the target did not take it). A file is taken off the queue only once done: a step cut
    /// short by a final push stays first.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn step(
        &mut self,
        client: &reqwest::Client,
        endpoint: &Url,
        remote_write: bool,
        spool: &Spool,
        timeout: Duration,
        in_flight: &Cell<bool>,
        on_step: impl FnOnce(&Step),
    ) -> bool {
        let Some(entry) = self.queue.front().cloned() else {
            return false;
        };
        let step = replay_one(
            client,
            endpoint,
            remote_write,
            spool,
            &entry,
            timeout,
            in_flight,
        )
        .await;
        self.queue.pop_front();
        on_step(&step);
        // A file cut only by the step's time goes on in the next step (and counts once, when
        // it is done).
        let more = match &step {
            Step::Partly {
                sent,
                error: PushError::Timeout { .. },
                saved: Ok(()),
                ..
            } => Some(*sent),
            _ => None,
        };
        if record(step, &entry, &mut self.report) {
            return true;
        }
        if let Some(sent) = more {
            self.report.kept -= 1;
            self.report.requests_sent -= sent;
            self.report.error = None;
            self.queue.push_front(entry);
            return true;
        }
        self.report.kept += self.queue.len();
        false
    }

    /// Ends the replay, saying what it did.
    pub(crate) fn finish(self) {
        let r = &self.report;
        if r.sent + r.rejected + r.corrupt > 0 {
            tracing::info!(report = %r, "spool replayed");
        }
    }
}

/// Replays `entry` to the gateway at `endpoint` (with `remote_write`, to the remote-write
/// receiver at that URL): one attempt (per request), within `timeout`.
pub(crate) async fn replay_one(
    client: &reqwest::Client,
    endpoint: &Url,
    remote_write: bool,
    spool: &Spool,
    entry: &Entry,
    timeout: Duration,
    in_flight: &Cell<bool>,
) -> Step {
    let snapshot = match super::read(&entry.path, spool.max_bytes()) {
        Ok(s) => s,
        Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => return Step::Gone,
        Err(e) => {
            let aside = spool.set_aside_file(&entry.path, false).ok();
            return Step::Corrupt(e.to_string(), aside);
        }
    };
    if !spool.is_endpoint(&snapshot.endpoint, endpoint)
        || snapshot.format.is_remote_write() != remote_write
    {
        // Never to another gateway or receiver than the one it was meant for (another job's
        // spool, or a planted file): its grouping key and values belong there.
        return Step::Elsewhere;
    }
    let deadline = Instant::now() + timeout;
    let result = if remote_write {
        let requests = super::frames(&snapshot.body).unwrap_or_default();
        let mut progress = Progress {
            spool,
            path: &entry.path,
            snapshot: &snapshot,
            url: endpoint,
            delivered: vec![false; requests.len()],
            requests,
            saved: false,
        };
        let result = replay_requests(
            client,
            endpoint,
            &mut progress,
            deadline,
            timeout,
            in_flight,
        )
        .await;
        let sent = progress.delivered.iter().filter(|d| **d).count();
        match result {
            Err(error) if sent > 0 && !error.rejects_body() => {
                let saved = progress.save().map_err(|e| e.to_string());
                return Step::Partly {
                    sent,
                    of: progress.requests.len(),
                    error,
                    saved,
                };
            }
            result => {
                progress.saved = true;
                result
            }
        }
    } else {
        let url = url_for(endpoint, &snapshot.group);
        let url_text = crate::log::shown(&url);
        let headers = push_headers(snapshot.format.is_gzip(), snapshot.format.is_protobuf());
        let request = Request::push(&url, &url_text, snapshot.method, &headers, snapshot.body);
        http::send(client, &request, deadline, timeout, false, in_flight)
            .await
            .map(drop)
    };
    match result {
        Ok(_) => {
            // Already gone is fine: a writer replaced it with a newer snapshot meanwhile.
            let _ = std::fs::remove_file(&entry.path);
            Step::Sent
        }
        Err(e) if e.rejects_body() => match spool.set_aside_file(&entry.path, true) {
            Ok(aside) => Step::Rejected(e, aside),
            Err(_) => Step::Gone,
        },
        Err(e) => Step::Kept(e),
    }
}

/// A remote-write file under replay: which of its requests the receiver took. Dropped
/// before it was [`save`](Self::save)d (a replay cut short by a push), it saves itself.
struct Progress<'a> {
    spool: &'a Spool,
    path: &'a std::path::Path,
    snapshot: &'a super::Snapshot,
    url: &'a Url,
    requests: Vec<bytes::Bytes>,
    delivered: Vec<bool>,
    saved: bool,
}

impl Progress<'_> {
    /// Rewrites the file without the requests the receiver took, if it took any.
    fn save(&mut self) -> std::io::Result<()> {
        self.saved = true;
        if !self.delivered.contains(&true) {
            return Ok(());
        }
        let left: Vec<bytes::Bytes> = self
            .requests
            .iter()
            .zip(&self.delivered)
            .filter(|(_, d)| !**d)
            .map(|(r, _)| r.clone())
            .collect();
        if left.is_empty() {
            return std::fs::remove_file(self.path);
        }
        self.spool
            .rewrite(self.path, self.snapshot, self.url, &left)
    }
}

impl Drop for Progress<'_> {
    fn drop(&mut self) {
        if self.saved {
            return;
        }
        let sent = self.delivered.iter().filter(|d| **d).count();
        if sent == 0 {
            return;
        }
        match self.save() {
            Ok(()) => tracing::info!(
                file = %self.path.display(),
                sent,
                of = self.requests.len(),
                "replay of spooled remote-write requests cut short; the rest stays spooled"
            ),
            Err(e) => crate::log::warn(&format!(
                "replay of {} cut short after {sent} of its {} remote-write requests, and \
                 the file could not be rewritten without them ({e}): the next replay sends \
                 them again",
                self.path.display(),
                self.requests.len()
            )),
        }
    }
}

/// Sends the remote-write requests of `progress` to the receiver at `endpoint`,
/// [`CONCURRENT_REQUESTS`](remote_write_wire::CONCURRENT_REQUESTS) at a time, one attempt
/// each, marking each one taken; none is started after one was not taken. The error is the
/// first request's that was not taken; a timeout counts every attempt of the replay.
async fn replay_requests(
    client: &reqwest::Client,
    endpoint: &Url,
    progress: &mut Progress<'_>,
    deadline: Instant,
    timeout: Duration,
    in_flight: &Cell<bool>,
) -> Result<(), PushError> {
    use futures_util::StreamExt as _;
    let url_text = crate::log::shown(endpoint);
    let headers = remote_write_wire::headers();
    let stop = Cell::new(false);
    let (url_text, headers, stop_ref) = (&url_text, &headers, &stop);
    let mut sends = futures_util::stream::iter(progress.requests.clone().into_iter().enumerate())
        .map(|(i, body)| async move {
            if stop_ref.get() {
                return (i, None);
            }
            let request = Request {
                target: crate::target::TargetKind::RemoteWrite,
                url: endpoint,
                url_text,
                method: reqwest::Method::POST,
                headers,
                body,
            };
            let own = Cell::new(false);
            let result = http::send(client, &request, deadline, timeout, false, &own).await;
            (i, Some(result))
        })
        .buffer_unordered(remote_write_wire::CONCURRENT_REQUESTS);
    // Under way until every started request has its answer: a push waits for it (within
    // its own bound) rather than cutting requests off mid-way.
    in_flight.set(true);
    let (mut first_error, mut attempts) = (None::<PushError>, 0);
    while let Some((i, result)) = sends.next().await {
        match result {
            Some(Ok(report)) => {
                attempts += report.attempts();
                progress.delivered[i] = true;
            }
            Some(Err(e)) => {
                attempts += e.attempts();
                stop.set(true);
                first_error.get_or_insert(e);
            }
            None => {}
        }
    }
    in_flight.set(false);
    match first_error {
        None => Ok(()),
        Some(PushError::Timeout {
            target,
            url,
            timeout,
            last_error,
            ..
        }) => Err(PushError::Timeout {
            target,
            url,
            timeout,
            attempts,
            last_error,
        }),
        Some(e) => Err(e),
    }
}

/// Logs what one step did, and adds it to `report`. Returns whether to go on.
pub(crate) fn record(step: Step, entry: &Entry, report: &mut ReplayReport) -> bool {
    match step {
        Step::Sent => {
            report.sent += 1;
            tracing::info!(file = %entry.path.display(), "spooled snapshot sent");
            true
        }
        Step::Gone => true,
        Step::Elsewhere => {
            report.kept += 1;
            tracing::debug!(file = %entry.path.display(), "spooled snapshot is for another gateway");
            true
        }
        Step::Rejected(e, aside) => {
            report.rejected += 1;
            crate::log::warn(&format!(
                "spooled snapshot refused by its target, set aside as {}: {e}",
                aside.display()
            ));
            true
        }
        Step::Corrupt(why, aside) => {
            report.corrupt += 1;
            crate::log::warn(&format!(
                "spool file {} is not a valid snapshot ({why}); set aside as {}",
                entry.path.display(),
                aside.map_or_else(|| "(rename failed)".into(), |p| p.display().to_string())
            ));
            true
        }
        Step::Kept(e) => {
            report.kept += 1;
            tracing::debug!(error = %e, "replay stopped; the spool is kept");
            report.error = Some(e);
            false
        }
        Step::Partly {
            sent,
            of,
            error,
            saved,
        } => {
            report.kept += 1;
            report.requests_sent += sent;
            let rest = match saved {
                Ok(()) => format!(
                    "the other {} stay in the spool, and the next replay continues with them",
                    of - sent
                ),
                Err(e) => format!(
                    "the file could not be rewritten without them ({e}): the next replay sends \
                     all {of} again"
                ),
            };
            tracing::info!(
                "spooled remote-write requests partly sent: {sent} of the {of} in {}; {rest}; \
                 stopped by: {error}",
                entry.path.display()
            );
            report.error = Some(error);
            false
        }
    }
}

/// Where [`replay_all`] sends: a gateway's endpoint, or (`remote_write`) a remote-write
/// receiver's URL, with the client for it.
pub(crate) struct Destination {
    pub(crate) client: reqwest::Client,
    pub(crate) endpoint: Url,
    pub(crate) remote_write: bool,
}

/// Replays the whole spool in this thread (for [`crate::replay`]), each file to the
/// destination it was meant for.
pub(crate) fn replay_all(
    destinations: &[Destination],
    spool: &Spool,
    timeout: Duration,
) -> std::io::Result<ReplayReport> {
    let mut report = ReplayReport::default();
    // A directory that is not there is more likely a mistyped path than an empty spool.
    std::fs::read_dir(spool.dir())?;
    let Some(_lock) = spool.lock()? else {
        report.locked = true;
        return Ok(report);
    };
    spool.remove_stale_tmp();
    let entries = spool.entries()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let in_flight = Cell::new(false);
    let mut left = entries.len();
    for entry in &entries {
        left -= 1;
        let mut step = Step::Elsewhere;
        for d in destinations {
            step = runtime.block_on(replay_one(
                &d.client,
                &d.endpoint,
                d.remote_write,
                spool,
                entry,
                timeout,
                &in_flight,
            ));
            if !matches!(step, Step::Elsewhere) {
                break;
            }
        }
        if !record(step, entry, &mut report) {
            report.kept += left;
            break;
        }
    }
    Ok(report)
}
