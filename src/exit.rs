//! The exit paths that do not go through the guard's `Drop`: a panic hook, a signal listener
//! and [`exit`](crate::exit).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::guard::PushHandle;
use crate::lifecycle::Outcome;
use crate::PushError;

/// The signals the exporter listens to: the ones that end a job that is stopped, interrupted
/// or loses its terminal.
pub const SIGNALS: [i32; 3] = [SIGTERM, SIGINT, SIGHUP];

/// What the exporter does when the process receives SIGTERM, SIGINT or SIGHUP.
///
/// Set with [`PushgatewayBuilder::signals`](crate::PushgatewayBuilder::signals).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SignalHandling {
    /// Make the final push (bounded by the shutdown timeout), then end the process as the
    /// signal's default action would: the parent sees death by that signal. A second signal of
    /// the same kind during the final push ends the process at once. The default.
    #[default]
    PushAndExit,
    /// Push the current values and carry on: for applications that handle the signal
    /// themselves (e.g. with `tokio::signal`) and run their own graceful shutdown, at the end of
    /// which the guard's drop makes the final push. With this mode the exporter's handler
    /// replaces the signal's default action, so the application must end itself.
    PushAndContinue,
    /// Install no signal handler: the signals keep their default action (no final push) or the
    /// application's own handling.
    Ignore,
}

/// Reports an error on one line: through `tracing`, and on stderr when no `tracing`
/// subscriber is installed, so that it is never lost.
pub(crate) fn report(message: &str) {
    tracing::error!("{message}");
    if !tracing::dispatcher::has_been_set() {
        eprintln!("metrics-exporter-pushgateway: {message}");
    }
}

/// Reports a warning on one line: through `tracing`, and on stderr when no `tracing`
/// subscriber is installed.
pub(crate) fn warn(message: &str) {
    tracing::warn!("{message}");
    if !tracing::dispatcher::has_been_set() {
        eprintln!("metrics-exporter-pushgateway: warning: {message}");
    }
}

/// Runs the final push for `outcome` and reports its failure, if any. A final push that
/// another path already made is not an error.
pub(crate) fn final_push(handle: &PushHandle, outcome: Outcome) {
    match handle.finish(outcome) {
        Ok(pushed) => {
            for target in pushed.failed_targets() {
                if let Err(e) = target.result() {
                    report(&format!(
                        "final push failed at one target (the others took it): {e}"
                    ));
                }
            }
        }
        Err(PushError::ShutDown) => {}
        Err(e) => report(&format!("final push failed: {e}")),
    }
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
        final_push(&handle, Outcome::Panic);
    }));
}

/// Starts the signal listener thread for `mode`.
pub(crate) fn listen(handle: PushHandle, mode: SignalHandling) -> std::io::Result<()> {
    if mode == SignalHandling::Ignore {
        return Ok(());
    }
    if mode == SignalHandling::PushAndExit {
        for signal in SIGNALS {
            // Registered first, so it sees the flag as the previous signal left it: a second
            // signal ends the process at once, while the first one's final push runs.
            let again = Arc::new(AtomicBool::new(false));
            signal_hook::flag::register_conditional_default(signal, Arc::clone(&again))?;
            signal_hook::flag::register(signal, again)?;
        }
    }
    let mut signals = Signals::new(SIGNALS)?;
    std::thread::Builder::new()
        .name("pushgateway-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if mode == SignalHandling::PushAndContinue {
                    if let Err(e) = handle.flush() {
                        report(&format!("push on signal {signal} failed: {e}"));
                    }
                    continue;
                }
                handle.mark_exiting_by_signal();
                final_push(&handle, Outcome::Signal(signal));
                // Resets the default action and raises the signal again.
                let _ = signal_hook::low_level::emulate_default_handler(signal);
                std::process::exit(128 + signal);
            }
        })?;
    Ok(())
}

/// Makes the final push, reporting `code` as the job's exit code, then ends the process with
/// [`std::process::exit`]`(code)`.
///
/// Use it instead of `std::process::exit`, which runs no destructors and so skips the guard's
/// final push. The push is bounded by the shutdown timeout; if it fails, one error line is
/// reported (through `tracing`, and on stderr when no subscriber is installed) and the process
/// still exits with `code`. Without an installed exporter this is `std::process::exit(code)`.
pub fn exit(code: i32) -> ! {
    if let Some(handle) = crate::handle() {
        final_push(&handle, Outcome::Exit(code));
    }
    std::process::exit(code)
}
