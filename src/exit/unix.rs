//! Unix: handlers for SIGTERM, SIGINT and SIGHUP (registered through `signal-hook`) and for
//! SIGABRT (a plain `sigaction` handler, see [`hold_aborts`]) that do no work inside the
//! handler: they write the signal's number into a pipe, and the signal thread makes the final
//! push. The pipe and its reader exist before any handler is registered, so a signal that
//! comes while the exporter installs either finds no handler yet (and ends the process as
//! without the exporter) or is handled as any later one.
//!
//! In a process forked from the one that installed the exporter (without `exec`), no signal
//! thread runs: there the handlers give each signal the action it had before the exporter
//! installed, as in the same program without the exporter.

use std::io::Read as _;
use std::os::fd::IntoRawFd as _;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};

use signal_hook::consts::{SIGABRT, SIGHUP, SIGINT, SIGTERM};

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
    disposition(signal) == Some(libc::SIG_IGN)
}

/// The current disposition of `signal` (`SIG_DFL`, `SIG_IGN` or a handler's address).
fn disposition(signal: i32) -> Option<libc::sighandler_t> {
    // SAFETY: with a null new action, sigaction only reads the current one into `current`,
    // a zeroed sigaction owned by this frame.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        (libc::sigaction(signal, std::ptr::null(), &mut current) == 0)
            .then_some(current.sa_sigaction)
    }
}

/// The process that installed the exporter: a fork has another id, and no signal thread.
static INSTALL_PID: AtomicU32 = AtomicU32::new(0);

/// The write end of the pipe the signal thread reads (-1 before it exists).
static WAKE: AtomicI32 = AtomicI32::new(-1);

/// Set by the first terminating signal (any of [`SIGNALS`]): with
/// [`SignalHandling::PushAndExit`], a second one, of any kind, ends the process at once.
static SIGNALLED: AtomicBool = AtomicBool::new(false);

/// Whether this process is a fork of the one that installed the exporter. Async-signal-safe.
fn forked() -> bool {
    // SAFETY: getpid has no preconditions.
    (unsafe { libc::getpid() }) as u32 != INSTALL_PID.load(Ordering::SeqCst)
}

/// Hands `signal` to the signal thread. Async-signal-safe: one non-blocking `write`.
fn wake(signal: i32) {
    let byte = signal as u8;
    let fd = WAKE.load(Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: writes one byte from a live local to a descriptor this module owns for the
        // life of the process; a failure (a full pipe) is ignored.
        unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    }
}

pub(crate) fn listen(handle: PushHandle, mode: SignalHandling) -> std::io::Result<()> {
    let (mut read, write) = UnixStream::pair()?;
    write.set_nonblocking(true)?;
    INSTALL_PID.store(std::process::id(), Ordering::SeqCst);
    let limit = handle.final_push_limit();
    ABORT_STEPS.store((limit.as_millis() / 10) as u64 + 1, Ordering::SeqCst);
    // Kept open for the life of the process: a handler may write to it at any time.
    WAKE.store(write.into_raw_fd(), Ordering::SeqCst);
    super::spawn(
        std::thread::Builder::new().name("pushgateway-signals".into()),
        move || {
            let mut byte = [0u8];
            loop {
                match read.read(&mut byte) {
                    Ok(1) => on_signal(&handle, mode, i32::from(byte[0])),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    _ => return,
                }
            }
        },
    )?;
    for signal in SIGNALS {
        if is_ignored(signal) {
            continue;
        }
        let default_before = disposition(signal) == Some(libc::SIG_DFL);
        let exit_mode = mode == SignalHandling::PushAndExit;
        let action = move || {
            // Only atomics, getpid, write and signal-hook's default-action emulation
            // (sigaction, sigprocmask, raise): all async-signal-safe.
            if forked() {
                // As without the exporter: the default action, or the application's own
                // handler (signal-hook runs the previous handler before this one).
                if default_before {
                    let _ = signal_hook::low_level::emulate_default_handler(signal);
                }
            } else if exit_mode && SIGNALLED.swap(true, Ordering::SeqCst) {
                // A second terminating signal during the first one's final push.
                let _ = signal_hook::low_level::emulate_default_handler(signal);
            } else {
                wake(signal);
            }
        };
        // SAFETY: the action only does what is listed in it, all async-signal-safe.
        unsafe { signal_hook::low_level::register(signal, action) }?;
    }
    hold_aborts()
}

/// What the signal thread does for `signal`.
fn on_signal(handle: &PushHandle, mode: SignalHandling, signal: i32) {
    if signal == SIGABRT {
        // The aborting thread waits in `hold_aborts`' handler for this push, then ends the
        // process itself.
        handle.final_push(Outcome::Signal(signal), None);
        ABORT_PUSHED.store(true, Ordering::SeqCst);
        return;
    }
    if mode == SignalHandling::PushAndContinue {
        if let Err(e) = handle.flush() {
            report(&format!("push on signal {signal} failed: {e}"));
        }
        return;
    }
    if !handle.final_push_done() && !handle.final_push(Outcome::Signal(signal), None) {
        // The process was already ending on another path (`exit`, the guard, a panic), whose
        // final push this waited for: that path ends it with its own status. Should the
        // process still be here after a grace, the signal ends it. (A second signal ends it
        // at once.)
        std::thread::sleep(super::STAND_DOWN);
    }
    // Resets the default action and raises the signal again.
    let _ = signal_hook::low_level::emulate_default_handler(signal);
    std::process::exit(128 + signal);
}

/// Set by the signal thread once the final push for a SIGABRT is done.
static ABORT_PUSHED: AtomicBool = AtomicBool::new(false);

/// Spawns one of the exporter's threads (the listener and the pusher threads) with SIGABRT
/// blocked from its first instruction (a new thread inherits the mask of the one that creates
/// it), so that a SIGABRT sent to the process is handled on a thread the final push does not
/// need. An `abort()` on such a thread still goes through: it unblocks the signal first.
pub(crate) fn spawn<F, T>(
    builder: std::thread::Builder,
    f: F,
) -> std::io::Result<std::thread::JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // SAFETY: sigset_t values initialised by sigemptyset (and filled by pthread_sigmask), used
    // by pthread_sigmask on the calling thread only.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigemptyset(&mut old);
        libc::sigaddset(&mut set, SIGABRT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        let spawned = builder.spawn(f);
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        spawned
    }
}

/// How long an abort waits for the final push at most, in 10 ms steps.
static ABORT_STEPS: AtomicU64 = AtomicU64::new(0);

/// The SIGABRT disposition before [`hold_aborts`] installed its handler.
static ABORT_BEFORE: std::sync::OnceLock<libc::sigaction> = std::sync::OnceLock::new();

/// Makes `abort()` wait for the final push: a panic hook that panics (Rust aborts then, before
/// any destructor or later hook runs), `std::process::abort`, a C library's `abort()`, a stack
/// overflow (Rust's handler aborts), a SIGABRT sent to the process. The handler runs on the
/// aborting thread and only sleeps until the signal thread has pushed (at most the shutdown
/// timeout, the 200 ms grace and the spool's wait), runs the handler the application had
/// installed before the exporter, if any, then ends the process by SIGABRT's default action
/// on that thread, as the abort would have (core dump included). On the exporter's own
/// threads, and in a forked child, it does not wait: nobody would push.
///
/// A plain `sigaction` handler of a few frames rather than one dispatched by `signal-hook`:
/// after a stack overflow it runs nested in Rust's SIGSEGV handler, on that thread's
/// alternate signal stack, which holds little more than two signal frames (Rust sizes it as
/// the larger of `SIGSTKSZ` and the kernel's `AT_MINSIGSTKSZ`).
fn hold_aborts() -> std::io::Result<()> {
    if is_ignored(SIGABRT) {
        // `abort()` still ends the process; a SIGABRT sent to it stays ignored.
        return Ok(());
    }
    // SAFETY: a zeroed sigaction filled by this frame; `on_abort` has the signature
    // SA_SIGINFO asks for; the previous action is read into a zeroed sigaction.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_abort as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        let mut before: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(SIGABRT, std::ptr::null(), &mut before) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let _ = ABORT_BEFORE.set(before);
        if libc::sigaction(SIGABRT, &action, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The SIGABRT handler. Only atomics, a constant-initialised thread-local flag, getpid,
/// write, nanosleep, sigaction and raise: all async-signal-safe, in few and small frames.
extern "C" fn on_abort(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    if !forked() && !super::is_exporter_thread() {
        wake(SIGABRT);
        let pause = libc::timespec {
            tv_sec: 0,
            tv_nsec: 10_000_000,
        };
        for _ in 0..ABORT_STEPS.load(Ordering::SeqCst) {
            if ABORT_PUSHED.load(Ordering::SeqCst) {
                break;
            }
            // SAFETY: nanosleep with a valid timespec and a null remainder.
            unsafe { libc::nanosleep(&pause, std::ptr::null_mut()) };
        }
    }
    if let Some(before) = ABORT_BEFORE.get() {
        let address = before.sa_sigaction;
        if address != libc::SIG_DFL && address != libc::SIG_IGN {
            // SAFETY: the application's handler, called as it was installed (with or without
            // SA_SIGINFO), with the arguments this handler was given.
            unsafe {
                if before.sa_flags & libc::SA_SIGINFO != 0 {
                    let handler: extern "C" fn(
                        libc::c_int,
                        *mut libc::siginfo_t,
                        *mut libc::c_void,
                    ) = std::mem::transmute(address);
                    handler(signal, info, context);
                } else {
                    let handler: extern "C" fn(libc::c_int) = std::mem::transmute(address);
                    handler(signal);
                }
            }
        }
    }
    // SIGABRT's default action: SIGABRT is blocked while this handler runs, so the raised
    // signal is delivered as it returns, and ends the process (`abort()` unblocked it first).
    // SAFETY: signal and raise with valid arguments.
    unsafe {
        libc::signal(SIGABRT, libc::SIG_DFL);
        libc::raise(SIGABRT);
    }
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
