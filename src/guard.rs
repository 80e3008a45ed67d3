//! What users hold and call: [`PushGuard`] and [`PushHandle`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::mpsc::UnboundedSender;

use crate::gateway::PushReport;
use crate::lifecycle::Outcome;
use crate::pusher::{Command, Renderer};
use crate::target::TargetKind;
use crate::PushError;

/// How much longer than a push's own budget a caller waits for the pusher thread's answer.
const GRACE: Duration = Duration::from_millis(200);

/// The channel to the pusher thread of one target.
pub(crate) struct Lane {
    pub(crate) tx: UnboundedSender<Command>,
    pub(crate) kind: TargetKind,
    /// Where its pushes go (group URL, receiver URL, file), for errors.
    pub(crate) location: String,
}

pub(crate) struct Inner {
    pub(crate) renderer: Arc<Renderer>,
    /// One per target, in configuration order; none when pushing is disabled.
    pub(crate) lanes: Vec<Lane>,
    pub(crate) push_timeout: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) exiting_by_signal: AtomicBool,
}

/// A handle to the installed exporter: render and push from anywhere.
///
/// Cheap to clone, `Send` and `Sync`. Get one from [`PushGuard::handle`] or the global
/// [`handle()`](crate::handle). Unlike the guard, dropping a handle does nothing.
#[derive(Clone)]
pub struct PushHandle {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for PushHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let targets: Vec<&str> = self
            .inner
            .lanes
            .iter()
            .map(|l| l.location.as_str())
            .collect();
        f.debug_struct("PushHandle")
            .field("targets", &targets)
            .field("enabled", &!self.inner.lanes.is_empty())
            .finish_non_exhaustive()
    }
}

impl PushHandle {
    /// Renders the current values in the text exposition format: exactly what a push made now
    /// would send (the lifecycle metrics say `outcome="running"`).
    pub fn render(&self) -> String {
        self.inner.renderer.render(Outcome::Running)
    }

    /// Pushes the current values now, to every target at once, and waits for their answers.
    ///
    /// Blocks the calling thread for at most the push timeout (plus 200 ms); in async code,
    /// call it from `spawn_blocking` if that matters. Returns a report with no status when
    /// pushing is disabled. With several targets, the push succeeds when at least one target
    /// took it; [`PushReport::targets`] says how each fared.
    ///
    /// # Errors
    ///
    /// [`PushError`] when the target refuses the push, cannot be reached before the push
    /// timeout, or the final push has already run ([`PushError::ShutDown`]); with several
    /// targets, [`PushError::AllFailed`] when every one failed.
    pub fn flush(&self) -> Result<PushReport, PushError> {
        self.request(self.inner.push_timeout, |deadline, budget, reply| {
            Command::Push {
                outcome: Outcome::Running,
                deadline,
                budget,
                reply,
            }
        })
    }

    /// Deletes this job's group (its exact grouping key) from each Pushgateway target, and its
    /// file from a textfile target; a remote-write receiver has no such operation (its report
    /// has no status).
    ///
    /// Later pushes create the group again. The gateway answers 202 even when the group did
    /// not exist.
    ///
    /// # Errors
    ///
    /// As for [`flush`](Self::flush).
    pub fn delete(&self) -> Result<PushReport, PushError> {
        self.request(self.inner.push_timeout, |deadline, budget, reply| {
            Command::Delete {
                deadline,
                budget,
                reply,
            }
        })
    }

    /// The `metrics-exporter-prometheus` handle behind the exporter, for rendering without the
    /// lifecycle metrics or for serving the same values on a scrape endpoint.
    pub fn prometheus_handle(&self) -> PrometheusHandle {
        self.inner.renderer.recorder.handle()
    }

    /// The final push, once. A second call (from another exit path) waits until the first has
    /// finished, then returns [`PushError::ShutDown`].
    pub(crate) fn finish(&self, outcome: Outcome) -> Result<PushReport, PushError> {
        self.request(self.inner.shutdown_timeout, |deadline, budget, reply| {
            Command::Push {
                outcome,
                deadline,
                budget,
                reply,
            }
        })
    }

    pub(crate) fn mark_exiting_by_signal(&self) {
        self.inner.exiting_by_signal.store(true, Ordering::SeqCst);
    }

    /// Sends the command to every target's pusher at once, then waits for the answers until
    /// the same deadline (plus the grace): a target that hangs delays no other.
    fn request(
        &self,
        budget: Duration,
        command: impl Fn(Instant, Duration, SyncSender<Result<PushReport, PushError>>) -> Command,
    ) -> Result<PushReport, PushError> {
        if self.inner.lanes.is_empty() {
            return Ok(PushReport::disabled());
        }
        let deadline = Instant::now() + budget;
        let waiting: Vec<_> = self
            .inner
            .lanes
            .iter()
            .map(|lane| {
                let (reply, answer) = sync_channel(1);
                let sent = lane.tx.send(command(deadline, budget, reply)).is_ok();
                (lane, sent.then_some(answer))
            })
            .collect();
        let results: Vec<_> = waiting
            .into_iter()
            .map(|(lane, answer)| {
                let left = (deadline + GRACE).saturating_duration_since(Instant::now());
                let result = match answer.map(|a| a.recv_timeout(left)) {
                    Some(Ok(result)) => result,
                    Some(Err(RecvTimeoutError::Timeout)) => Err(PushError::Timeout {
                        target: lane.kind,
                        url: lane.location.clone(),
                        timeout: budget,
                        attempts: 0,
                        last_error: None,
                    }),
                    // The pusher ended (after the final push) without answering this request.
                    None | Some(Err(RecvTimeoutError::Disconnected)) => Err(PushError::ShutDown),
                };
                (lane.kind, lane.location.clone(), result)
            })
            .collect();
        if results
            .iter()
            .all(|(_, _, r)| matches!(r, Err(PushError::ShutDown)))
        {
            return Err(PushError::ShutDown);
        }
        PushReport::combine(results)
    }
}

/// Keeps the exporter running; dropping it makes the final push.
///
/// Returned by [`init`](crate::init) and
/// [`PushgatewayBuilder::install`](crate::PushgatewayBuilder::install). Hold it in `main` until
/// the process is done:
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let _guard = metrics_exporter_pushgateway::init("ingester")?;
/// // ... the job ...
/// # Ok(()) }
/// ```
///
/// `let _ = init(..)` (a bare underscore) drops the guard at once, making the final push at
/// once and no more pushes after it. [`std::process::exit`] runs no destructors: use
/// [`crate::exit`] instead. Panics and SIGTERM/SIGINT/SIGHUP are covered by the exporter itself.
///
/// On drop, the final push waits at most the shutdown timeout (plus 200 ms), and a failure is
/// reported on one line (through `tracing`, and on stderr when no subscriber is installed); drop
/// never panics. Use [`shutdown`](Self::shutdown) to get the result instead.
#[must_use = "dropping the guard makes the final push at once: hold it, e.g. `let _guard = ...`"]
pub struct PushGuard {
    handle: PushHandle,
    done: bool,
}

impl std::fmt::Debug for PushGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushGuard")
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

impl PushGuard {
    pub(crate) fn new(handle: PushHandle) -> Self {
        PushGuard {
            handle,
            done: false,
        }
    }

    /// A handle to the exporter (see [`PushHandle`]).
    pub fn handle(&self) -> PushHandle {
        self.handle.clone()
    }

    /// See [`PushHandle::render`].
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// See [`PushHandle::flush`].
    ///
    /// # Errors
    ///
    /// As for [`PushHandle::flush`].
    pub fn flush(&self) -> Result<PushReport, PushError> {
        self.handle.flush()
    }

    /// See [`PushHandle::delete`].
    ///
    /// # Errors
    ///
    /// As for [`PushHandle::flush`].
    pub fn delete(&self) -> Result<PushReport, PushError> {
        self.handle.delete()
    }

    /// Makes the final push of a successful run now and returns its result, instead of leaving
    /// it to `Drop`. Waits at most the shutdown timeout (plus 200 ms).
    ///
    /// # Errors
    ///
    /// [`PushError`] when the final push fails; [`PushError::ShutDown`] when another exit path
    /// already made it.
    pub fn shutdown(self) -> Result<PushReport, PushError> {
        self.shutdown_with_exit_code(0)
    }

    /// Makes the final push reporting `code` as the job's exit code (0 is success), and
    /// returns its result. For a `main` that decides its exit status itself, e.g. by returning
    /// [`std::process::ExitCode`]: a `main` returning `Err` cannot be told from success by
    /// `Drop`.
    ///
    /// # Errors
    ///
    /// As for [`shutdown`](Self::shutdown).
    pub fn shutdown_with_exit_code(mut self, code: i32) -> Result<PushReport, PushError> {
        self.done = true;
        self.handle.finish(Outcome::Exit(code))
    }
}

impl Drop for PushGuard {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let outcome = if std::thread::panicking() {
            Outcome::Panic
        } else {
            Outcome::Exit(0)
        };
        crate::exit::final_push(&self.handle, outcome);
        if self.handle.inner.exiting_by_signal.load(Ordering::SeqCst) {
            // The signal listener is ending the process by the signal: let it, rather than
            // returning from `main` with status 0.
            std::thread::sleep(self.handle.inner.shutdown_timeout + GRACE);
        }
    }
}
