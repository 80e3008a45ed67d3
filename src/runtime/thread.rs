//! The exporter's own threads (the pushers, the listener, the signal listener): started
//! through [`spawn`], which marks them and, on Unix, starts them with SIGABRT blocked.

thread_local! {
    /// Whether this thread is one of the exporter's own (a pusher, the listener, the signal
    /// listener): a panic or an abort there makes no final push, which would wait for itself.
    static EXPORTER_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Spawns one of the exporter's own threads, marked as such (on Unix with SIGABRT blocked
/// from its first instruction).
pub(crate) fn spawn<F, T>(
    builder: std::thread::Builder,
    f: F,
) -> std::io::Result<std::thread::JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    #[cfg(unix)]
    {
        let (started, has_started) = std::sync::mpsc::sync_channel(1);
        let f = move || {
            EXPORTER_THREAD.with(|t| t.set(true));
            let _ = started.send(());
            f()
        };
        let thread = spawn_without_sigabrt(builder, f)?;
        // Returns once the thread runs its own code: a stack overflow right after install
        // would otherwise find it still in the runtime's thread start, which waits on the
        // overflowing thread, and no final push would be made.
        let _ = has_started.recv_timeout(std::time::Duration::from_secs(1));
        Ok(thread)
    }
    #[cfg(not(unix))]
    builder.spawn(move || {
        EXPORTER_THREAD.with(|t| t.set(true));
        f()
    })
}

/// Spawns one of the exporter's own threads named `name`, running the future `make` returns
/// on a current-thread tokio runtime of its own; a runtime that fails to start is reported
/// on one line (`what` says what is then lost).
pub(crate) fn spawn_with_runtime<M, F>(
    name: String,
    what: &'static str,
    make: M,
) -> std::io::Result<std::thread::JoinHandle<()>>
where
    M: FnOnce() -> F + Send + 'static,
    F: std::future::Future<Output = ()>,
{
    spawn(std::thread::Builder::new().name(name), move || {
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(make()),
            Err(e) => crate::log::report(&format!(
                "{what}: the runtime of thread {} failed to start: {e}",
                std::thread::current().name().unwrap_or("?")
            )),
        }
    })
}

/// Whether the calling thread is one of the exporter's own.
pub(crate) fn is_exporter_thread() -> bool {
    EXPORTER_THREAD.with(std::cell::Cell::get)
}

/// Spawns one of the exporter's threads with SIGABRT blocked from its first instruction (a
/// new thread inherits the mask of the one that creates it), so that a SIGABRT sent to the
/// process is handled on a thread the final push does not need (see `exit/unix.rs`). An
/// `abort()` on such a thread still ends the process (the C library forces SIGABRT's default
/// action when a handler does not); the exporter's SIGABRT handler does not wait there.
#[cfg(unix)]
fn spawn_without_sigabrt<F, T>(
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
        libc::sigaddset(&mut set, libc::SIGABRT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        let spawned = builder.spawn(f);
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        spawned
    }
}
