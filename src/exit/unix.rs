//! Unix: handlers for SIGTERM, SIGINT and SIGHUP (registered through `signal-hook`) and for
//! SIGABRT (a plain `sigaction` handler, see [`hold_aborts`]). The first three only mark the
//! signal pending and wake the signal thread through a socket pair, which makes the final
//! push; the SIGABRT handler does the same, then waits on the aborting thread for that push.
//! The socket pair and its reader exist before any handler is registered, so a signal that
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

use crate::config::SignalHandling;
use crate::handle::PushHandle;
use crate::lifecycle::Outcome;
use crate::log::report;
use crate::report::PushError;
use crate::runtime::thread::spawn;

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

/// The write end of the socket pair the signal thread reads (-1 before it exists).
static WAKE: AtomicI32 = AtomicI32::new(-1);

/// The signals handed to the signal thread and not yet taken by it, one bit per signal
/// number: a storm of signals wakes the thread once, and never fills the socket.
static PENDING: AtomicU64 = AtomicU64::new(0);

/// Whether the signal thread runs: when it has ended, a handler does what the signal would
/// have done without the exporter, and an abort does not wait.
static LISTENING: AtomicBool = AtomicBool::new(false);

/// Set by the first terminating signal (any of [`SIGNALS`]): with
/// [`SignalHandling::PushAndExit`], a second one, of any kind, ends the process at once.
static SIGNALLED: AtomicBool = AtomicBool::new(false);

/// Whether this process is a fork of the one that installed the exporter. Async-signal-safe.
fn forked() -> bool {
    // SAFETY: getpid has no preconditions.
    (unsafe { libc::getpid() }) as u32 != INSTALL_PID.load(Ordering::SeqCst)
}

/// Hands `signal` to the signal thread; false if no signal thread runs to take it.
/// Async-signal-safe: atomics and one non-blocking `send`, without SIGPIPE. A `send` that
/// finds the socket full leaves a byte the thread has not read yet: it will see this bit.
fn wake(signal: i32) -> bool {
    if !LISTENING.load(Ordering::SeqCst) {
        return false;
    }
    let bit = 1u64 << signal;
    if PENDING.fetch_or(bit, Ordering::SeqCst) & bit == 0 {
        let byte = 1u8;
        // SAFETY: sends one byte from a live local on a socket this module owns for the life
        // of the process; MSG_NOSIGNAL: a closed peer is an error, not a SIGPIPE.
        unsafe {
            libc::send(
                WAKE.load(Ordering::SeqCst),
                (&byte as *const u8).cast(),
                1,
                libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
            )
        };
    }
    true
}

/// Clears [`LISTENING`] when the signal thread ends, however it ends.
struct Listening;

impl Drop for Listening {
    fn drop(&mut self) {
        LISTENING.store(false, Ordering::SeqCst);
    }
}

pub(crate) fn listen(handle: PushHandle, mode: SignalHandling) -> std::io::Result<()> {
    let (mut read, write) = UnixStream::pair()?;
    INSTALL_PID.store(std::process::id(), Ordering::SeqCst);
    let limit = handle.final_push_limit();
    ABORT_STEPS.store((limit.as_millis() / 10) as u64 + 1, Ordering::SeqCst);
    // Kept open for the life of the process: a handler may write to it at any time.
    WAKE.store(write.into_raw_fd(), Ordering::SeqCst);
    LISTENING.store(true, Ordering::SeqCst);
    spawn(
        std::thread::Builder::new().name("pushgateway-signals".into()),
        move || {
            let _listening = Listening;
            let mut byte = [0u8];
            loop {
                match read.read(&mut byte) {
                    Ok(1) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    _ => return,
                }
                let pending = PENDING.swap(0, Ordering::SeqCst);
                // An abort first: its thread is waiting for the push.
                for signal in [SIGABRT, SIGTERM, SIGINT, SIGHUP] {
                    if pending & (1 << signal) != 0 {
                        on_signal(&handle, mode, signal);
                    }
                }
            }
        },
    )?;
    for signal in SIGNALS {
        let before = disposition(signal);
        if before == Some(libc::SIG_IGN) {
            continue;
        }
        let default_before = before == Some(libc::SIG_DFL);
        // A signal the application already handles (a reload on SIGHUP, its own graceful
        // shutdown) is left to it: the current values are pushed, and the application's
        // handler (signal-hook runs it before this one) decides what happens.
        let exit_mode = mode == SignalHandling::PushAndExit && default_before;
        let action = move || {
            // Only atomics, getpid, send and signal-hook's default-action emulation
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
            } else if !wake(signal) && default_before {
                // No signal thread to push: as without the exporter.
                let _ = signal_hook::low_level::emulate_default_handler(signal);
            }
        };
        if !exit_mode {
            CONTINUE.fetch_or(1 << signal, Ordering::SeqCst);
        }
        // SAFETY: the action only does what is listed in it, all async-signal-safe.
        unsafe { signal_hook::low_level::register(signal, action) }?;
    }
    hold_aborts()
}

/// The signals for which the signal thread pushes the current values and lets the process
/// go on: all of them with [`SignalHandling::PushAndContinue`], and those the application
/// handled itself before the exporter installed.
static CONTINUE: AtomicU64 = AtomicU64::new(0);

/// What the signal thread does for `signal`.
fn on_signal(handle: &PushHandle, mode: SignalHandling, signal: i32) {
    if signal == SIGABRT {
        // The aborting thread waits in `hold_aborts`' handler for this push, then ends the
        // process itself.
        handle.final_push_and_report(super::abort_outcome(), None);
        ABORT_PUSHED.store(true, Ordering::SeqCst);
        return;
    }
    if mode == SignalHandling::PushAndContinue
        || CONTINUE.load(Ordering::SeqCst) & (1 << signal) != 0
    {
        match handle.flush() {
            // The process ended on another path while the signal came: its final push has
            // the values.
            Ok(_) | Err(PushError::ShutDown) => {}
            Err(e) => report(&format!("push on signal {signal} failed: {e}")),
        }
        return;
    }
    if !handle.final_push_done() && !handle.final_push_and_report(Outcome::Signal(signal), None) {
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

/// How long an abort waits for the final push at most, in 10 ms steps.
static ABORT_STEPS: AtomicU64 = AtomicU64::new(0);

/// The SIGABRT disposition before [`hold_aborts`] installed its handler.
static ABORT_BEFORE: std::sync::OnceLock<libc::sigaction> = std::sync::OnceLock::new();

/// Makes `abort()` wait for the final push: a panic hook that panics (Rust aborts then, before
/// any destructor or later hook runs), `std::process::abort`, a C library's `abort()`, a stack
/// overflow (Rust's handler aborts), a SIGABRT sent to the process. The handler runs on the
/// aborting thread and only sleeps until the signal thread has pushed (at most the shutdown
/// timeout, the 200 ms grace and the spool's wait), then gives SIGABRT back the action it had
/// before the exporter installed (an application's crash reporter, or the default action)
/// and raises it again, so that the process ends as the abort would have (core dump
/// included). On the exporter's own threads, and in a forked child, it does not wait: nobody
/// would push.
///
/// A plain `sigaction` handler of a few frames rather than one dispatched by `signal-hook`:
/// after a stack overflow it runs nested in Rust's SIGSEGV handler, on that thread's
/// alternate signal stack, which holds little more than two signal frames (Rust sizes it as
/// the larger of `SIGSTKSZ` and the kernel's `AT_MINSIGSTKSZ`). Rust's handler aborts while
/// it holds the lock that starting and ending threads take: a final push that needs a new
/// thread then (a host name to resolve) is not made, and the abort waits out its bound.
fn hold_aborts() -> std::io::Result<()> {
    if is_ignored(SIGABRT) {
        // `abort()` still ends the process; a SIGABRT sent to it stays ignored.
        return Ok(());
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if cfg!(panic = "abort") {
        // SAFETY: registers a function with the signature on_exit asks for.
        if unsafe { on_exit(exiting, std::ptr::null_mut()) } == 0 {
            EXIT_HEARD.store(true, Ordering::SeqCst);
        }
    }
    // SAFETY: a zeroed sigaction filled by this frame; `on_abort` has the signature
    // SA_SIGINFO asks for; the previous action is read into a zeroed sigaction.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_abort as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        let mut before: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(SIGABRT, &action, &mut before) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let _ = ABORT_BEFORE.set(before);
    }
    ABORT_HELD.store(true, Ordering::SeqCst);
    enlarge_alternate_stack();
    Ok(())
}

/// The alternate signal stack the installing thread is given, in bytes.
const ALTERNATE_STACK: usize = 64 * 1024;

/// Gives the installing thread (usually `main`) an alternate signal stack of
/// [`ALTERNATE_STACK`] bytes, above a guard page, when the one it has is smaller. After a
/// stack overflow, Rust's SIGSEGV handler runs on that stack and aborts there: the SIGABRT
/// handler's signal frame then comes on top of the first one, and two signal frames with a
/// processor's full register state (AVX-512: about 3.5 KiB each) and Rust's handler take
/// nearly all of the 8 KiB Rust gives a thread when the kernel asks for less
/// (`AT_MINSIGSTKSZ`). Other threads keep the stack Rust gave them. Never unmapped: the stack
/// serves until the thread ends (Rust's runtime then disables it).
fn enlarge_alternate_stack() {
    // SAFETY: sigaltstack reads into a zeroed stack_t owned by this frame; the new stack is a
    // fresh private mapping of `length` bytes whose first page is made inaccessible, handed
    // to sigaltstack only when both calls succeeded, and unmapped if sigaltstack refuses it.
    unsafe {
        let mut current: libc::stack_t = std::mem::zeroed();
        if libc::sigaltstack(std::ptr::null(), &mut current) != 0
            || current.ss_flags & (libc::SS_DISABLE | libc::SS_ONSTACK) != 0
            || current.ss_size >= ALTERNATE_STACK
        {
            return;
        }
        let page = match libc::sysconf(libc::_SC_PAGESIZE) {
            n if n > 0 => n as usize,
            _ => 4096,
        };
        let length = page + ALTERNATE_STACK;
        let base = libc::mmap(
            std::ptr::null_mut(),
            length,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if base == libc::MAP_FAILED {
            return;
        }
        let alternate = libc::stack_t {
            ss_sp: base.cast::<u8>().add(page).cast(),
            ss_flags: 0,
            ss_size: ALTERNATE_STACK,
        };
        if libc::mprotect(base, page, libc::PROT_NONE) != 0
            || libc::sigaltstack(&alternate, std::ptr::null_mut()) != 0
        {
            libc::munmap(base, length);
        }
    }
}

/// Whether the SIGABRT handler is installed.
static ABORT_HELD: AtomicBool = AtomicBool::new(false);

/// Whether [`exiting`] runs when the process exits.
static EXIT_HEARD: AtomicBool = AtomicBool::new(false);

/// Whether the panic hook leaves the final push to the path that ends the process: the abort
/// that follows the hooks (held by the SIGABRT handler) or an exit a later hook makes (heard
/// through `on_exit`, glibc's `atexit` that is given the exit status).
pub(crate) fn panic_push_deferred() -> bool {
    ABORT_HELD.load(Ordering::SeqCst) && EXIT_HEARD.load(Ordering::SeqCst) && !forked()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
extern "C" {
    /// glibc: registers `function` to run at `exit`, with the exit status.
    fn on_exit(
        function: extern "C" fn(libc::c_int, *mut libc::c_void),
        argument: *mut libc::c_void,
    ) -> libc::c_int;
}

/// Runs in `exit`: after a panic whose final push was left to the path that ends the process
/// (a panic hook set after the exporter's that exits), the final push with that status.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
extern "C" fn exiting(status: libc::c_int, _: *mut libc::c_void) {
    if let Some(handle) = crate::handle::handle() {
        if !forked() && !handle.final_push_done() {
            if let super::Outcome::PanicExit(_) = super::exit_outcome(status) {
                handle.final_push_and_report(super::exit_outcome(status), None);
            }
        }
    }
}

/// The SIGABRT handler. Only atomics, a constant-initialised thread-local flag, getpid,
/// send, nanosleep, sigaction and raise: all async-signal-safe, in few and small frames.
extern "C" fn on_abort(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    if !forked() && !crate::runtime::thread::is_exporter_thread() && wake(SIGABRT) {
        let pause = libc::timespec {
            tv_sec: 0,
            tv_nsec: 10_000_000,
        };
        for _ in 0..ABORT_STEPS.load(Ordering::SeqCst) {
            if ABORT_PUSHED.load(Ordering::SeqCst) || !LISTENING.load(Ordering::SeqCst) {
                break;
            }
            // SAFETY: nanosleep with a valid timespec and a null remainder.
            unsafe { libc::nanosleep(&pause, std::ptr::null_mut()) };
        }
    }
    // SIGABRT gets back the action it had before (with its own flags and mask: the kernel
    // applies them), and is raised again: blocked while this handler runs, it is delivered
    // as the handler returns. Should that action return, `abort()` ends the process itself.
    // SAFETY: sigaction with a sigaction read by `hold_aborts` (or a zeroed one: SIG_DFL),
    // raise with a valid signal.
    unsafe {
        let mut default: libc::sigaction = std::mem::zeroed();
        let before = ABORT_BEFORE.get().unwrap_or_else(|| {
            default.sa_sigaction = libc::SIG_DFL;
            &default
        });
        libc::sigaction(SIGABRT, before, std::ptr::null_mut());
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
