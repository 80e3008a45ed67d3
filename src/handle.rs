//! [`PushHandle`]: what renders and pushes from anywhere, and the latch of the final push
//! every exit path shares; and the process-wide handle, the exporter that
//! [`install`](crate::PushgatewayBuilder::install) installed, for [`exit`](crate::exit) and for
//! code that has no guard at hand.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use crate::lifecycle::Outcome;
use crate::pusher::{Answer, Command};
use crate::report::{PushError, PushReport, SpoolOutcome};
use crate::source::Renderer;
use crate::target::TargetKind;

/// How much longer than a push's own budget a caller waits for the pusher thread's answer.
const GRACE: Duration = Duration::from_millis(200);

/// The least time a final push waits past its deadline for a target that keeps failed pushes
/// (a spool), so that a push whose snapshot was prepared late still reaches the disk as a
/// record (see `request_noted`); the wait is the shutdown timeout when that is longer.
const SPOOL_WAIT: Duration = Duration::from_secs(1);

/// The channel to the pusher thread of one target.
pub(crate) struct TargetPusher {
    pub(crate) tx: UnboundedSender<Command>,
    pub(crate) kind: TargetKind,
    /// Where its pushes go (group URL, receiver URL, file), redacted, for errors: the
    /// target's `location` (see `config::target::Address` for the names of an address).
    pub(crate) location: String,
    /// Whether the target keeps a failed push (a spool).
    pub(crate) keeps_failed: bool,
}

pub(crate) struct Inner {
    pub(crate) renderer: Arc<Renderer>,
    /// One per target, in configuration order; none when pushing is disabled.
    pub(crate) pushers: Vec<TargetPusher>,
    pub(crate) push_timeout: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) exiting_by_signal: AtomicBool,
    /// The process that installed the exporter; a child forked from it has none of its
    /// pusher threads.
    pub(crate) pid: u32,
    /// Whether a forked child has said so already.
    pub(crate) fork_reported: AtomicBool,
    /// The final push: claimed by the first path that ends the process (the guard, `exit`, a
    /// panic, a signal), done once it returned. Every other path waits for it.
    pub(crate) final_push: FinalPush,
    /// The `/metrics` listener, until the final push closes it.
    pub(crate) listener: Mutex<Option<crate::listen::Listener>>,
}

impl Inner {
    /// Stops the listener taking and rendering requests, without waiting: the first thing a
    /// final push does, so that no scraper holds it.
    fn stop_listener(&self) {
        if std::process::id() != self.pid {
            return;
        }
        if let Some(listener) = self
            .listener
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
        {
            listener.stop();
        }
    }

    /// Closes the listener, if any, waiting for its socket and connections to be closed until
    /// `deadline` at most (the final push's own bound): the port is free when this returns,
    /// unless a scrape was still being rendered at the deadline (then it is free once that
    /// render ends).
    fn close_listener(&self, deadline: Instant) {
        let listener = self
            .listener
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(listener) = listener else {
            return;
        };
        if std::process::id() == self.pid {
            if !listener.close(deadline) {
                tracing::debug!("the metrics listener was still rendering a scrape at exit");
            }
        } else {
            // A forked child has no listener thread to stop or wait for.
            std::mem::forget(listener);
        }
    }
}

/// A push's result, and what became of each failed target's push (kept as a record in the
/// spool, or lost), by target location.
type Noted = (Result<PushReport, PushError>, Vec<(String, SpoolOutcome)>);

/// Who makes the final push, and whether it is done.
#[derive(Default)]
pub(crate) struct FinalPush {
    claimed: AtomicBool,
    done: Mutex<bool>,
    finished: Condvar,
}

impl FinalPush {
    /// Whether this caller is the first: it makes the final push, then calls [`Self::done`].
    fn claim(&self) -> bool {
        !self.claimed.swap(true, Ordering::SeqCst)
    }

    fn done(&self) {
        *self.done.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.finished.notify_all();
    }

    /// Whether the final push was made and returned.
    pub(crate) fn is_done(&self) -> bool {
        *self.done.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for the final push another path makes, at most `limit`.
    fn wait(&self, limit: Duration) {
        let done = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = self.finished.wait_timeout_while(done, limit, |done| !*done);
    }
}

/// A handle to the installed exporter: render and push from anywhere.
///
/// Cheap to clone, `Send` and `Sync`. Get one from [`PushGuard::handle`] or the global
/// [`handle()`](crate::handle). Unlike the guard, dropping a handle does nothing.
///
/// [`PushGuard::handle`]: crate::PushGuard::handle
#[derive(Clone)]
pub struct PushHandle {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for PushHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let targets: Vec<&str> = self
            .inner
            .pushers
            .iter()
            .map(|l| l.location.as_str())
            .collect();
        f.debug_struct("PushHandle")
            .field("targets", &targets)
            .field("enabled", &!self.inner.pushers.is_empty())
            .finish_non_exhaustive()
    }
}

impl PushHandle {
    /// The handle of an exporter: the one place its state is made (by install, build and a
    /// disabled guard).
    pub(crate) fn new(
        renderer: Arc<Renderer>,
        pushers: Vec<TargetPusher>,
        push_timeout: Duration,
        shutdown_timeout: Duration,
        listener: Option<crate::listen::Listener>,
    ) -> Self {
        PushHandle {
            inner: Arc::new(Inner {
                renderer,
                pushers,
                push_timeout,
                shutdown_timeout,
                exiting_by_signal: AtomicBool::new(false),
                pid: std::process::id(),
                fork_reported: AtomicBool::new(false),
                final_push: FinalPush::default(),
                listener: Mutex::new(listener),
            }),
        }
    }

    /// Renders the current values in the text exposition format: the samples a push made now
    /// would send (the lifecycle metrics say `outcome="running"`), whatever the body format of
    /// the pushes.
    pub fn render(&self) -> String {
        self.inner.renderer.render(Outcome::Running)
    }

    /// Every metric described or recorded so far: name (as sent), type, unit, help, label
    /// names and series count (see [`Catalog`](crate::Catalog)). The lifecycle metrics are
    /// not in it (they are the exporter's, with their own dashboard row); the exporter's own
    /// metrics are, once a pusher has registered them.
    pub fn catalog(&self) -> crate::Catalog {
        let renderer = &self.inner.renderer;
        crate::catalog::Catalog::build(&renderer.scrape_snapshot(), renderer.registry.described())
    }

    /// The address the `/metrics` listener serves on (with the port the system chose, when
    /// [`listen`](crate::PushgatewayBuilder::listen) was given port 0), or `None` without a
    /// listener or once the final push has closed it.
    pub fn listen_addr(&self) -> Option<std::net::SocketAddr> {
        self.inner
            .listener
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(crate::listen::Listener::addr)
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
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let guard = metrics_exporter_pushgateway::try_init("migration")?;
    /// let handle = guard.handle();
    /// for step in ["schema", "data", "indexes"] {
    ///     metrics::counter!("migration_steps_total", "step" => step).increment(1);
    ///     // Push after each step, so that a hung step still shows how far it got.
    ///     let report = handle.flush()?;
    ///     println!("pushed {} bytes, status {:?}", report.body_bytes(), report.status());
    /// }
    /// # Ok(()) }
    /// ```
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

    /// Makes the final push with `outcome`, once, within the shutdown timeout (or `cap`, if
    /// shorter; with a spool, a target that keeps failed pushes is waited for up to the
    /// budget again, at least 1 s, unless capped), unless another path (the guard, `exit`, a
    /// panic, a signal) already makes it: then waits for that one (bounded by the same limit)
    /// and returns `None`. A final push for a signal marks the process as ending by that
    /// signal.
    pub(crate) fn final_push(&self, outcome: Outcome, cap: Option<Duration>) -> Option<Noted> {
        let budget = cap.map_or(self.inner.shutdown_timeout, |cap| {
            cap.min(self.inner.shutdown_timeout)
        });
        // A capped final push (a Windows console event) has a hard limit: no waiting past it.
        let spool_wait = match cap {
            Some(_) => Duration::ZERO,
            None => budget.max(SPOOL_WAIT),
        };
        if !self.inner.pushers.is_empty() && self.is_fork() {
            // The final push in progress, if any, is the parent's: nothing to wait for.
            return Some((Err(PushError::ShutDown), Vec::new()));
        }
        let final_push = &self.inner.final_push;
        if !final_push.claim() {
            final_push.wait(budget + GRACE + spool_wait);
            return None;
        }
        let started = Instant::now();
        self.inner.stop_listener();
        if matches!(outcome, Outcome::Signal(_)) {
            self.mark_exiting_by_signal();
        }
        if !self.inner.pushers.is_empty() {
            self.inner.renderer.registry.close();
        }
        let result = self.request_noted(budget, spool_wait, |deadline, budget, reply| {
            Command::Push {
                outcome,
                deadline,
                budget,
                reply,
            }
        });
        self.inner.close_listener(started + budget + GRACE);
        final_push.done();
        Some(result)
    }

    /// Makes the final push and reports a failure on one line per failed target, saying what
    /// became of its push (kept as a record, or lost). Returns false when another path made (or makes) it instead.
    pub(crate) fn final_push_and_report(&self, outcome: Outcome, cap: Option<Duration>) -> bool {
        let Some((result, notes)) = self.final_push(outcome, cap) else {
            return false;
        };
        let note_of = |location: &str| {
            notes
                .iter()
                .filter(|(l, _)| l == location)
                .map(|(_, n)| format!("; {n}"))
                .collect::<String>()
        };
        match result {
            Ok(pushed) => {
                for target in pushed.failed_targets() {
                    if let Err(e) = target.result() {
                        crate::log::report(&format!(
                            "final push failed at one target (the others took it): {e}{}",
                            note_of(target.location())
                        ));
                    }
                }
            }
            Err(PushError::ShutDown) => {}
            Err(e) => {
                let all: String = notes.iter().map(|(_, n)| format!("; {n}")).collect();
                crate::log::report(&format!("final push failed: {e}{all}"));
            }
        }
        true
    }

    /// The longest a final push can take: the shutdown timeout, the grace, and the wait for a
    /// spool.
    #[cfg(unix)]
    pub(crate) fn final_push_limit(&self) -> Duration {
        let budget = self.inner.shutdown_timeout;
        budget + GRACE + budget.max(SPOOL_WAIT)
    }

    /// Whether the final push was made and returned (by any path).
    pub(crate) fn final_push_done(&self) -> bool {
        self.inner.final_push.is_done()
    }

    /// When a signal is ending the process (its listener made the final push and raises the
    /// signal again), waits to be ended by it, boundedly, rather than ending the process with
    /// another status.
    pub(crate) fn yield_to_signal(&self) {
        if self.inner.exiting_by_signal.load(Ordering::SeqCst) {
            std::thread::sleep(self.inner.shutdown_timeout + GRACE);
        }
    }

    pub(crate) fn mark_exiting_by_signal(&self) {
        self.inner.exiting_by_signal.store(true, Ordering::SeqCst);
    }

    /// Sends the command to every target's pusher at once, then waits for the answers until
    /// the same deadline (plus the grace): a target that hangs delays no other.
    fn request(
        &self,
        budget: Duration,
        command: impl Fn(Instant, Duration, SyncSender<Answer>) -> Command,
    ) -> Result<PushReport, PushError> {
        let (result, notes) = self.request_noted(budget, Duration::ZERO, command);
        for (_, spooled) in notes {
            crate::log::warn(&spooled.to_string());
        }
        result
    }

    /// Whether this process is a child of `fork()` after install (said once, on one line): its
    /// pusher threads are not in it.
    fn is_fork(&self) -> bool {
        if std::process::id() == self.inner.pid {
            return false;
        }
        if !self.inner.fork_reported.swap(true, Ordering::SeqCst) {
            crate::log::report(
                "this process is a fork of the one that installed the exporter: its pusher \
                 threads are not here, so nothing is pushed from it",
            );
        }
        true
    }

    /// [`request`](Self::request), with what became of each failed target's push (kept as a
    /// record, or lost; by target location) left for the caller to say.
    ///
    /// A target that keeps failed pushes (a spool) is waited for up to `spool_wait` longer:
    /// the pusher answers soon after the deadline once it has written the record, and a push
    /// whose snapshot took the whole budget to prepare is written rather than lost.
    fn request_noted(
        &self,
        budget: Duration,
        spool_wait: Duration,
        command: impl Fn(Instant, Duration, SyncSender<Answer>) -> Command,
    ) -> Noted {
        if self.inner.pushers.is_empty() {
            return (Ok(PushReport::disabled()), Vec::new());
        }
        if self.is_fork() {
            // Waiting for threads it does not have would only cost it the whole timeout.
            return (Err(PushError::ShutDown), Vec::new());
        }
        let deadline = Instant::now() + budget;
        let waiting: Vec<_> = self
            .inner
            .pushers
            .iter()
            .map(|pusher| {
                let (reply, answer) = sync_channel(1);
                let sent = pusher.tx.send(command(deadline, budget, reply)).is_ok();
                (pusher, sent.then_some(answer))
            })
            .collect();
        let mut notes = Vec::new();
        let results: Vec<_> = waiting
            .into_iter()
            .map(|(pusher, answer)| {
                let extra = if pusher.keeps_failed {
                    spool_wait
                } else {
                    Duration::ZERO
                };
                let left = (deadline + GRACE + extra).saturating_duration_since(Instant::now());
                let result = match answer.map(|a| a.recv_timeout(left)) {
                    Some(Ok(Answer { result, spool })) => {
                        if let Some(spooled) = spool {
                            notes.push((pusher.location.clone(), spooled));
                        }
                        result
                    }
                    Some(Err(RecvTimeoutError::Timeout)) => Err(PushError::Timeout {
                        target: pusher.kind,
                        url: pusher.location.clone(),
                        timeout: budget,
                        attempts: 0,
                        last_error: None,
                    }),
                    // The pusher ended (after the final push) without answering this request.
                    None | Some(Err(RecvTimeoutError::Disconnected)) => Err(PushError::ShutDown),
                };
                (pusher.kind, pusher.location.clone(), result)
            })
            .collect();
        if results
            .iter()
            .all(|(_, _, r)| matches!(r, Err(PushError::ShutDown)))
        {
            return (Err(PushError::ShutDown), notes);
        }
        (PushReport::combine(results), notes)
    }
}

/// Set once, by the first `install()` (the one whose recorder became the global one).
pub(crate) static HANDLE: OnceLock<PushHandle> = OnceLock::new();

/// The handle of the exporter installed in this process, if any.
///
/// ```
/// // Anywhere in the program, e.g. a library that wants a push at a checkpoint:
/// if let Some(handle) = metrics_exporter_pushgateway::handle() {
///     let _ = handle.flush();
/// }
/// ```
pub fn handle() -> Option<PushHandle> {
    HANDLE.get().cloned()
}
