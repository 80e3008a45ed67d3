//! The exit paths that do not go through the guard's `Drop`: a panic hook, a signal listener
//! and [`exit`](crate::exit).

use crate::guard::PushHandle;
use crate::lifecycle::Outcome;
use crate::runtime::thread::is_exporter_thread;

#[cfg(unix)]
#[path = "exit/unix.rs"]
mod platform;
#[cfg(windows)]
#[path = "exit/windows.rs"]
mod platform;
#[cfg(not(any(unix, windows)))]
mod platform {
    //! No way to hear that the process is asked to end: only the guard, panics and `exit`.
    pub(crate) fn listen(
        _: crate::guard::PushHandle,
        _: super::SignalHandling,
    ) -> std::io::Result<()> {
        Ok(())
    }
}

/// How long a signal that came while another path made the final push leaves that path to end
/// the process with its own status, before the signal ends it.
const STAND_DOWN: std::time::Duration = std::time::Duration::from_secs(1);

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
    /// signal of the same kind during the final push ends the process at once. The default.
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

/// Installs a panic hook that runs the previous hook first and then, when panics abort the
/// process, makes the final push before the abort. With `panic = "unwind"` the guard's drop
/// makes it while the panicking main thread unwinds.
pub(crate) fn install_panic_hook(handle: PushHandle) {
    if !cfg!(panic = "abort") {
        return;
    }
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        previous(info);
        if !is_exporter_thread() {
            handle.final_push(Outcome::Panic, None);
        }
    }));
}

/// Starts what makes the final push when the process is asked to end, for `mode`: a signal
/// listener on Unix, a console control handler on Windows.
pub(crate) fn listen(handle: PushHandle, mode: SignalHandling) -> std::io::Result<()> {
    if mode == SignalHandling::Ignore {
        return Ok(());
    }
    platform::listen(handle, mode)
}

/// Makes the final push, reporting `code` as the job's exit code, then ends the process with
/// [`std::process::exit`]`(code)`.
///
/// Use it instead of `std::process::exit`, which runs no destructors and so skips the guard's
/// final push. The push is bounded by the shutdown timeout; if it fails, one error line is
/// reported (through `tracing`, and on stderr when no subscriber is installed) and the process
/// still exits with `code`. Without an installed exporter this is `std::process::exit(code)`.
///
/// ```no_run
/// fn main() {
///     let _guard = metrics_exporter_pushgateway::init("ingester");
///     let files: Vec<String> = std::env::args().skip(1).collect();
///     if files.is_empty() {
///         eprintln!("usage: ingester FILE...");
///         // Final push with outcome "error", exit code 2; then the process exits 2.
///         metrics_exporter_pushgateway::exit(2);
///     }
///     // ...
/// }
/// ```
pub fn exit(code: i32) -> ! {
    if let Some(handle) = crate::handle::handle() {
        handle.final_push(Outcome::Exit(code), None);
        handle.yield_to_signal();
    }
    std::process::exit(code)
}
