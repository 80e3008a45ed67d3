//! The exit paths that do not go through the guard's `Drop`: a panic hook, a signal listener
//! and [`exit`](crate::exit).

use crate::config::SignalHandling;
use crate::handle::PushHandle;
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
    pub(crate) fn panic_push_deferred() -> bool {
        false
    }

    pub(crate) fn listen(
        _: crate::handle::PushHandle,
        _: super::SignalHandling,
    ) -> std::io::Result<()> {
        Ok(())
    }
}

/// How long a signal that came while another path made the final push leaves that path to end
/// the process with its own status, before the signal ends it.
const STAND_DOWN: std::time::Duration = std::time::Duration::from_secs(1);

/// Installs a panic hook that runs the previous hook first and then, when panics abort the
/// process, makes sure the final push says so. With `panic = "unwind"` the guard's drop makes
/// it while the panicking main thread unwinds.
///
/// On Linux with glibc, when the SIGABRT handler is installed, the hook only marks the panic:
/// the final push is made by whatever then ends the process, so that it reports what the
/// process does — the abort that follows the hooks (outcome `panic`, 134), or an exit that a
/// panic hook set later makes (outcome `panic`, its code; `std::process::exit` included,
/// through `on_exit`). Elsewhere the hook makes the final push itself (outcome `panic`, the
/// abort's status).
pub(crate) fn install_panic_hook(handle: PushHandle) {
    if !cfg!(panic = "abort") {
        return;
    }
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        previous(info);
        if is_exporter_thread() {
            return;
        }
        PANICKING.store(true, std::sync::atomic::Ordering::SeqCst);
        if !platform::panic_push_deferred() {
            handle.final_push_and_report(Outcome::Panic, None);
        }
    }));
}

/// Set by the panic hook (with `panic = "abort"`): the process is ending by a panic.
static PANICKING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// What a final push for an exit with `code` reports: after a panic (a later panic hook
/// exits), outcome `panic` with that code.
pub(crate) fn exit_outcome(code: i32) -> Outcome {
    if PANICKING.load(std::sync::atomic::Ordering::SeqCst) {
        Outcome::PanicExit(code)
    } else {
        Outcome::Exit(code)
    }
}

/// What a final push for an abort reports: a panic's, when the abort follows one.
#[cfg(unix)]
fn abort_outcome() -> Outcome {
    if PANICKING.load(std::sync::atomic::Ordering::SeqCst) {
        Outcome::Panic
    } else {
        Outcome::Signal(libc::SIGABRT)
    }
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
        handle.final_push_and_report(exit_outcome(code), None);
        handle.yield_to_signal();
    }
    std::process::exit(code)
}
