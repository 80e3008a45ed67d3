//! Unix: a listener thread for SIGTERM, SIGINT and SIGHUP (through `signal-hook`, so that no
//! work is done inside a signal handler), and for SIGABRT, whose handler holds an `abort()`
//! back until the final push is made.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use signal_hook::consts::{SIGABRT, SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use super::SignalHandling;
use crate::guard::PushHandle;
use crate::lifecycle::Outcome;
use crate::log::report;
use crate::runtime::thread::spawn;

/// The signals that end a job that is stopped, interrupted or loses its terminal.
const SIGNALS: [i32; 3] = [SIGTERM, SIGINT, SIGHUP];

/// Whether `signal` is ignored in this process (`SIG_IGN`), as `nohup` leaves SIGHUP and a
/// shell leaves SIGINT for a background job. A handler installed over it would change what
/// the process does when the signal comes.
fn is_ignored(signal: i32) -> bool {
    // SAFETY: with a null new action, sigaction only reads the current one into `current`,
    // a zeroed sigaction owned by this frame.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut current) == 0
            && current.sa_sigaction == libc::SIG_IGN
    }
}

pub(crate) fn listen(handle: PushHandle, mode: SignalHandling) -> std::io::Result<()> {
    let mut signals: Vec<i32> = SIGNALS.into_iter().filter(|s| !is_ignored(*s)).collect();
    if mode == SignalHandling::PushAndExit {
        for &signal in &signals {
            // Registered first, so it sees the flag as the previous signal left it: a second
            // signal ends the process at once, while the first one's final push runs.
            let again = Arc::new(AtomicBool::new(false));
            signal_hook::flag::register_conditional_default(signal, Arc::clone(&again))?;
            signal_hook::flag::register(signal, again)?;
        }
    }
    signals.push(SIGABRT);
    let mut iterator = Signals::new(&signals)?;
    hold_aborts(&handle)?;
    spawn(
        std::thread::Builder::new().name("pushgateway-signals".into()),
        move || {
            for signal in iterator.forever() {
                if signal == SIGABRT {
                    // The aborting thread waits in `hold_aborts`' handler for this push, then
                    // ends the process itself.
                    handle.final_push(Outcome::Signal(signal), None);
                    ABORT_PUSHED.store(true, Ordering::SeqCst);
                    continue;
                }
                if mode == SignalHandling::PushAndContinue {
                    if let Err(e) = handle.flush() {
                        report(&format!("push on signal {signal} failed: {e}"));
                    }
                    continue;
                }
                if !handle.final_push_done() && !handle.final_push(Outcome::Signal(signal), None) {
                    // The process was already ending on another path (`exit`, the guard, a
                    // panic), whose final push this waited for: that path ends it with its own
                    // status. Should the process still be here after a grace, the signal ends
                    // it. (A second signal ends it at once.)
                    std::thread::sleep(super::STAND_DOWN);
                }
                // Resets the default action and raises the signal again.
                let _ = signal_hook::low_level::emulate_default_handler(signal);
                std::process::exit(128 + signal);
            }
        },
    )?;
    Ok(())
}

/// Set by the listener once the final push for a SIGABRT is done.
static ABORT_PUSHED: AtomicBool = AtomicBool::new(false);

/// The process that installed the exporter: in a forked child there is no listener to wait
/// for.
static ABORT_PID: AtomicU32 = AtomicU32::new(0);

/// How long an abort waits for the final push at most, in 10 ms steps.
static ABORT_STEPS: AtomicU64 = AtomicU64::new(0);

/// Makes `abort()` wait for the final push: a panic hook that panics (Rust aborts then, before
/// any destructor or later hook runs), `std::process::abort`, a C library's `abort()`, a
/// SIGABRT sent to the process. The handler runs on the aborting thread and only sleeps until
/// the listener thread has pushed (at most the shutdown timeout, the 200 ms grace and the
/// spool's wait), then ends the process by SIGABRT's default action on that thread, as the
/// abort would have (core dump included). On the exporter's own threads, and in a forked
/// child, it does not wait: nobody would push.
fn hold_aborts(handle: &PushHandle) -> std::io::Result<()> {
    let limit = handle.final_push_limit();
    ABORT_STEPS.store((limit.as_millis() / 10) as u64 + 1, Ordering::SeqCst);
    ABORT_PID.store(std::process::id(), Ordering::SeqCst);
    let action = || {
        // Only atomics, a constant-initialised thread-local flag, getpid, nanosleep and
        // signal-hook's default-action emulation (sigaction, sigprocmask, raise): all
        // async-signal-safe.
        // SAFETY: getpid has no preconditions.
        let forked = unsafe { libc::getpid() } as u32 != ABORT_PID.load(Ordering::SeqCst);
        if !forked && !super::is_exporter_thread() {
            let steps = ABORT_STEPS.load(Ordering::SeqCst);
            let pause = libc::timespec {
                tv_sec: 0,
                tv_nsec: 10_000_000,
            };
            for _ in 0..steps {
                if ABORT_PUSHED.load(Ordering::SeqCst) {
                    break;
                }
                // SAFETY: nanosleep with a valid timespec and a null remainder.
                unsafe { libc::nanosleep(&pause, std::ptr::null_mut()) };
            }
        }
        let _ = signal_hook::low_level::emulate_default_handler(SIGABRT);
    };
    // SAFETY: the action only does what is listed above, all async-signal-safe.
    unsafe { signal_hook::low_level::register(SIGABRT, action) }?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_with_its_default_action_is_not_ignored() {
        // SIGTERM's disposition in a test process is the default one.
        assert!(!is_ignored(SIGTERM));
    }
}
