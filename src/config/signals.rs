//! [`SignalHandling`]: what the exit paths do with a signal, a setting of the builder.

/// What the exporter does when the process is asked to end from outside: on Unix SIGTERM,
/// SIGINT and SIGHUP; on Windows Ctrl-C, Ctrl-Break, closing the console window, logoff and
/// system shutdown.
///
/// Set with [`PushgatewayBuilder::signals`](crate::PushgatewayBuilder::signals).
///
/// On Unix, a signal the process was started with ignored (`nohup`'s SIGHUP, a shell's SIGINT
/// for a background job) stays ignored: no handler is installed for it, whatever the mode.
///
/// ```no_run
/// use metrics_exporter_pushgateway::{PushgatewayBuilder, SignalHandling};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // A service that runs its own graceful shutdown on SIGTERM (e.g. with tokio::signal):
/// // the exporter pushes the current values when the signal comes, the guard's drop at the
/// // end of the shutdown makes the final push.
/// let guard = PushgatewayBuilder::from_env()?
///     .job("api-worker")
///     .signals(SignalHandling::PushAndContinue)
///     .install()?;
/// # drop(guard); Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SignalHandling {
    /// Make the final push (bounded by the shutdown timeout), then end the process as the
    /// signal's default action would: the parent sees death by that signal (on Windows, the
    /// exit code of the event's default handling, `STATUS_CONTROL_C_EXIT`). On Unix a second
    /// SIGTERM, SIGINT or SIGHUP during the final push ends the process at once. A signal the
    /// application already handled when the exporter installed (its own handler, e.g. a
    /// reload on SIGHUP) is treated as with [`PushAndContinue`](Self::PushAndContinue): the
    /// current values are pushed and the application's handler decides. The default.
    ///
    /// Windows gives a console that is closed, and a process at logoff or shutdown, a few
    /// seconds before it ends the process: for those events the final push is bounded by 4 s
    /// even when the shutdown timeout is longer. Windows calls the console handlers last
    /// registered first: a handler the application registers after the exporter's and that
    /// keeps the process alive leaves it running with its final push made and no more pushes;
    /// such an application wants [`PushAndContinue`](Self::PushAndContinue).
    #[default]
    PushAndExit,
    /// Push the current values and carry on: for applications that handle the signal
    /// themselves (e.g. with `tokio::signal`) and run their own graceful shutdown, at the end of
    /// which the guard's drop makes the final push. With this mode the exporter's handler
    /// replaces the signal's default action, so the application must end itself. (On Windows,
    /// closing the console, logoff and shutdown end the process whatever a handler does: for
    /// those the final push is made.)
    PushAndContinue,
    /// Install no signal handler: the signals keep their default action (no final push) or the
    /// application's own handling.
    Ignore,
}
