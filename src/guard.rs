//! What users hold: [`PushGuard`], whose drop makes the final push.

use std::sync::Arc;

use crate::handle::PushHandle;
use crate::lifecycle::Outcome;
use crate::report::{PushError, PushReport};
use crate::source::Renderer;

/// Keeps the exporter running; dropping it makes the final push.
///
/// Returned by [`init`](crate::init) and
/// [`PushgatewayBuilder::install`](crate::PushgatewayBuilder::install). Hold it in `main` until
/// the process is done, and tell it how the run ended with [`finish`](Self::finish):
///
/// ```no_run
/// fn main() -> Result<(), std::io::Error> {
///     let guard = metrics_exporter_pushgateway::init("ingester");
///     guard.finish(run()) // outcome `success` for Ok, `error` and exit code 1 for Err
/// }
///
/// fn run() -> Result<(), std::io::Error> {
///     metrics::counter!("records_total").increment(500);
///     Ok(())
/// }
/// ```
///
/// `let _ = init(..)` (a bare underscore) drops the guard at once, making the final push at
/// once and no more pushes after it. [`std::process::exit`] runs no destructors: use
/// [`crate::exit`] instead. Panics, SIGTERM/SIGINT/SIGHUP and Windows console events are
/// covered by the exporter itself.
///
/// On drop, the final push waits at most the shutdown timeout (plus 200 ms; with a spool, up
/// to the shutdown timeout again, at least 1 s, to write a failed push there as a record),
/// and a failure is reported on one line (through `tracing`, and on stderr when no subscriber is installed); drop
/// never panics. A guard dropped without [`finish`](Self::finish) or an exit code reports
/// success (or `panic`, while unwinding). Use [`shutdown`](Self::shutdown) to get the push's
/// result instead.
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

    /// A guard that pushes nothing: no recorder, thread or handler is installed, recording
    /// through the `metrics` macros stays a no-op (unless another recorder is installed),
    /// [`render`](PushHandle::render) returns an empty string, and dropping it does nothing.
    ///
    /// [`init`](crate::init) returns one when the exporter cannot be installed. For the
    /// builder, the same non-fatal install:
    ///
    /// ```
    /// use metrics_exporter_pushgateway::{PushGuard, PushgatewayBuilder};
    ///
    /// let guard = PushgatewayBuilder::new("gateway:9091:bad")
    ///     .job("ingester")
    ///     .install()
    ///     .unwrap_or_else(|e| {
    ///         eprintln!("metrics are not pushed: {e}");
    ///         PushGuard::disabled()
    ///     });
    /// assert!(!guard.is_enabled());
    /// ```
    pub fn disabled() -> Self {
        let renderer = Renderer::new(
            Arc::new(crate::registry::Registry::new(&[], &[], &[])),
            None,
        );
        PushGuard {
            handle: PushHandle::new(
                Arc::new(renderer),
                Vec::new(),
                crate::DEFAULT_PUSH_TIMEOUT,
                crate::DEFAULT_SHUTDOWN_TIMEOUT,
                None,
            ),
            done: true,
        }
    }

    /// Whether this guard pushes: false for a guard from [`disabled`](Self::disabled) (what
    /// [`init`](crate::init) returns when it cannot install) and for an exporter installed
    /// with pushing turned off ([`enabled(false)`](crate::PushgatewayBuilder::enabled),
    /// `PUSHGATEWAY_DISABLED=1`).
    pub fn is_enabled(&self) -> bool {
        !self.handle.inner.pushers.is_empty()
    }

    /// A handle to the exporter (see [`PushHandle`]).
    pub fn handle(&self) -> PushHandle {
        self.handle.clone()
    }

    /// Makes the final push for the run's `result` and hands the result back unchanged: for a
    /// `main` that returns `Result`, whose `Err` `Drop` cannot see.
    ///
    /// `Ok` is pushed as outcome `success`, exit code 0, with a new
    /// `batch_job_last_success_time_seconds`; `Err` as outcome `error` and exit code 1 (what a
    /// `main` returning `Err` exits with), and the last success of earlier runs is kept at
    /// the gateway. A failed push is reported on one line, as by `Drop`; it never changes the
    /// result.
    ///
    /// ```no_run
    /// #[derive(Debug)]
    /// struct BadInput;
    ///
    /// fn main() -> Result<(), BadInput> {
    ///     let guard = metrics_exporter_pushgateway::init("parser");
    ///     guard.finish(run())
    /// }
    ///
    /// fn run() -> Result<(), BadInput> {
    ///     metrics::counter!("records_total").increment(1);
    ///     Err(BadInput) // the job exits 1; the gateway shows outcome "error"
    /// }
    /// ```
    ///
    /// A panic inside `run()` never reaches `finish`: the guard's drop pushes outcome `panic`
    /// as `main` unwinds. For a `main` returning [`std::process::ExitCode`], use
    /// [`shutdown_with_exit_code`](Self::shutdown_with_exit_code).
    pub fn finish<T, E>(mut self, result: Result<T, E>) -> Result<T, E> {
        self.done = true;
        let code = if result.is_ok() { 0 } else { 1 };
        self.handle.final_push_and_report(Outcome::Exit(code), None);
        result
    }

    /// Makes the final push of a successful run now and returns its result, instead of leaving
    /// it to `Drop`. Waits at most the shutdown timeout (plus 200 ms, and with a spool up to
    /// the shutdown timeout again, at least 1 s, to write the record).
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
        let Some((result, notes)) = self.handle.final_push(Outcome::Exit(code), None) else {
            return Err(PushError::ShutDown);
        };
        for (_, spooled) in notes {
            crate::log::warn(&spooled.to_string());
        }
        result
    }
}

/// Everything a [`PushHandle`] does, the guard does: [`render`](PushHandle::render),
/// [`catalog`](PushHandle::catalog), [`listen_addr`](PushHandle::listen_addr),
/// [`flush`](PushHandle::flush), [`delete`](PushHandle::delete).
impl std::ops::Deref for PushGuard {
    type Target = PushHandle;

    fn deref(&self) -> &PushHandle {
        &self.handle
    }
}

impl Drop for PushGuard {
    fn drop(&mut self) {
        if !self.done {
            let outcome = if std::thread::panicking() {
                Outcome::Panic
            } else {
                Outcome::Exit(0)
            };
            self.handle.final_push_and_report(outcome, None);
        }
        self.handle.yield_to_signal();
    }
}
