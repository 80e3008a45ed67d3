//! Closes the listening socket in a child forked without exec (Unix): the child has no
//! listener thread to serve it, and a socket it kept would accept connections nobody answers
//! and keep the port from the next run once the parent is gone.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Once;

/// The listening socket, or -1.
static FD: AtomicI32 = AtomicI32::new(-1);
/// Held while the socket closes, and across a fork: the child never sees a number that
/// was closed and may have been given to another file meanwhile.
static LOCK: AtomicBool = AtomicBool::new(false);
static REGISTER: Once = Once::new();

fn lock() {
    while LOCK
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        std::hint::spin_loop();
    }
}

fn unlock() {
    LOCK.store(false, Ordering::Release);
}

extern "C" fn prepare() {
    lock();
}

extern "C" fn parent() {
    unlock();
}

extern "C" fn child() {
    let fd = FD.swap(-1, Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: close is async-signal-safe; the number is the listening socket's
        // (the parent clears it under the lock before closing it).
        unsafe { libc::close(fd) };
    }
    unlock();
}

/// Closes `fd` in every child forked from now on.
pub(super) fn watch(fd: RawFd) {
    REGISTER.call_once(|| {
        // SAFETY: the handlers only touch atomics and call close.
        let failed = unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) } != 0;
        if failed {
            tracing::debug!("pthread_atfork failed: a forked child keeps the listening socket");
        }
    });
    lock();
    FD.store(fd, Ordering::SeqCst);
    unlock();
}

/// Runs `close`, which closes the watched socket, so that no fork sees its number after.
pub(super) fn closing(close: impl FnOnce()) {
    lock();
    FD.store(-1, Ordering::SeqCst);
    close();
    unlock();
}

/// Stops watching (the socket was not handed to a thread).
pub(super) fn forget() {
    lock();
    FD.store(-1, Ordering::SeqCst);
    unlock();
}
