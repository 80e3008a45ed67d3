//! Unix: a listener thread for SIGTERM, SIGINT and SIGHUP (through `signal-hook`, so that no
//! work is done inside a signal handler).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use super::SignalHandling;
use crate::guard::PushHandle;
use crate::lifecycle::Outcome;
use crate::log::report;

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
    let signals: Vec<i32> = SIGNALS.into_iter().filter(|s| !is_ignored(*s)).collect();
    if signals.is_empty() {
        return Ok(());
    }
    if mode == SignalHandling::PushAndExit {
        for &signal in &signals {
            // Registered first, so it sees the flag as the previous signal left it: a second
            // signal ends the process at once, while the first one's final push runs.
            let again = Arc::new(AtomicBool::new(false));
            signal_hook::flag::register_conditional_default(signal, Arc::clone(&again))?;
            signal_hook::flag::register(signal, again)?;
        }
    }
    let mut signals = Signals::new(&signals)?;
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
                if !handle.final_push(Outcome::Signal(signal), None) {
                    // The process is already ending on another path (`exit`, the guard, a
                    // panic), which made the final push: it ends with its own status. (A
                    // second signal still ends it at once.)
                    continue;
                }
                // Resets the default action and raises the signal again.
                let _ = signal_hook::low_level::emulate_default_handler(signal);
                std::process::exit(128 + signal);
            }
        })?;
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
