//! A short-lived job for the integration tests: records a fixed set of values, then ends the
//! way its first argument says.
//!
//! `job <scenario> <job-name> [<label> <value>]...`; the rest of the configuration comes from
//! the `PUSHGATEWAY_*` environment variables. Prints `ready` on stdout once the values are
//! recorded.

#[path = "../../support/peer.rs"]
mod peer;

use std::io::Write as _;
use std::time::Duration;

use metrics_exporter_pushgateway::{PushGuard, PushgatewayBuilder, SignalHandling, Target};

fn install(job: &str, grouping: &[String]) -> PushGuard {
    let mut builder = PushgatewayBuilder::from_env()
        .unwrap_or_else(|e| panic!("environment: {e}"))
        .job(job);
    for pair in grouping.chunks(2) {
        builder = builder.grouping_label(&pair[0], &pair[1]);
    }
    // Settings that have no environment variable of their own.
    if std::env::var_os("TEST_DELETE_ON_SHUTDOWN").is_some() {
        builder = builder.delete_on_shutdown(true);
    }
    if std::env::var_os("TEST_SIGNALS_CONTINUE").is_some() {
        builder = builder.signals(SignalHandling::PushAndContinue);
    }
    if let Ok(n) = std::env::var("TEST_SPOOL_MAX_FILES") {
        builder = builder.spool_limits(n.parse().unwrap(), 1 << 20);
    }
    if std::env::var_os("TEST_DANGER_ACCEPT_INVALID_CERTS").is_some() {
        builder = builder.danger_accept_invalid_certs(true);
    }
    if std::env::var_os("TEST_GZIP").is_some() {
        builder = builder.compression(metrics_exporter_pushgateway::Compression::Gzip);
    }
    if std::env::var_os("TEST_NO_LIFECYCLE").is_some() {
        builder = builder.lifecycle_metrics(false);
    }
    if let Ok(url) = std::env::var("TEST_CLASSIC_REMOTE_WRITE_URL") {
        // A receiver without native histograms.
        builder = builder.add_target(
            metrics_exporter_pushgateway::Target::remote_write(url)
                .histograms(metrics_exporter_pushgateway::HistogramForm::Classic),
        );
    }
    builder
        .install()
        .unwrap_or_else(|e| panic!("install failed: {e}"))
}

/// The values every scenario records before it ends.
fn record() {
    for _ in 0..500 {
        metrics::counter!("records_total").increment(1);
    }
    metrics::counter!("parse_errors_total", "kind" => "json").increment(7);
    metrics::gauge!("queue_depth").set(42.5);
    for v in [0.003, 0.2, 4.0] {
        metrics::histogram!("record_seconds").record(v);
    }
}

/// 10,010 log-uniform observations from 1 ms to 10 s in `latency_seconds`, and a few of
/// both signs, zero, and infinities in `offset_seconds`: what the native histogram tests
/// compute their expectations from.
fn record_native() {
    for i in 0..10_010u32 {
        metrics::histogram!("latency_seconds").record(latency(i));
    }
    for v in [-2.0, -0.5, 0.0, 0.25, 3.0] {
        metrics::histogram!("offset_seconds").record(v);
    }
}

/// The `i`-th observation of `latency_seconds`.
fn latency(i: u32) -> f64 {
    10f64.powf(-3.0 + 4.0 * f64::from(i) / 10_009.0)
}

fn ready() {
    println!("ready");
    std::io::stdout().flush().unwrap();
}

#[tokio::main]
async fn tokio_multi(job: &str, grouping: &[String]) {
    // Installed inside the runtime, as `#[tokio::main] async fn main` does.
    let guard = install(job, grouping);
    tokio::time::sleep(Duration::from_millis(1)).await;
    record();
    drop(guard);
}

#[tokio::main(flavor = "current_thread")]
async fn tokio_current(job: &str, grouping: &[String]) {
    // Installed inside the runtime, as `#[tokio::main] async fn main` does.
    let guard = install(job, grouping);
    tokio::time::sleep(Duration::from_millis(1)).await;
    record();
    drop(guard);
}

/// Installed inside a current-thread runtime whose only thread then blocks for `TEST_RUN_MS`:
/// the listener must not need the caller's runtime.
#[tokio::main(flavor = "current_thread")]
async fn listen_tokio(job: &str, grouping: &[String]) {
    let guard = install(job, grouping);
    record();
    ready();
    listening(&guard);
    std::thread::sleep(Duration::from_millis(
        std::env::var("TEST_RUN_MS").map_or(1000, |v| v.parse().unwrap()),
    ));
    drop(guard);
}

/// Prints the listener's address (the port the system chose).
fn listening(guard: &PushGuard) {
    let addr = guard.listen_addr().expect("a listener");
    println!("listening {addr}");
    std::io::stdout().flush().unwrap();
}

async fn drop_it(guard: PushGuard) {
    tokio::task::yield_now().await;
    drop(guard);
}

#[tokio::main(flavor = "current_thread")]
async fn async_fn_drop(guard: PushGuard) {
    record();
    drop_it(guard).await;
}

#[tokio::main]
async fn task_drop(guard: PushGuard) {
    record();
    tokio::spawn(async move { drop(guard) }).await.unwrap();
}

/// Raises Ctrl-C in this process's console (`GenerateConsoleCtrlEvent`). A process whose
/// standard streams are pipes may have no console to raise it in: it gets a console of its
/// own first, keeping its standard handles.
#[cfg(windows)]
fn ctrl_c_on_self() {
    use windows_sys::Win32::System::Console::{
        AllocConsole, FreeConsole, GenerateConsoleCtrlEvent, GetStdHandle, SetStdHandle,
        CTRL_C_EVENT, STD_ERROR_HANDLE, STD_INPUT_HANDLE, STD_OUTPUT_HANDLE,
    };
    // SAFETY: plain Win32 calls; the saved handles stay open and are put back as they were.
    unsafe {
        if GenerateConsoleCtrlEvent(CTRL_C_EVENT, 0) != 0 {
            return;
        }
        let handles = [STD_INPUT_HANDLE, STD_OUTPUT_HANDLE, STD_ERROR_HANDLE]
            .map(|which| (which, GetStdHandle(which)));
        FreeConsole();
        assert!(AllocConsole() != 0, "AllocConsole failed");
        for (which, handle) in handles {
            SetStdHandle(which, handle);
        }
        assert!(
            GenerateConsoleCtrlEvent(CTRL_C_EVENT, 0) != 0,
            "GenerateConsoleCtrlEvent failed"
        );
    }
}

#[cfg(not(windows))]
fn ctrl_c_on_self() {
    panic!("the ctrl-c scenario is for Windows");
}

/// Replaces this thread's alternate signal stack with one of `SIGSTKSZ` bytes above a guard
/// page: what Rust's runtime gives a thread when the kernel's `AT_MINSIGSTKSZ` is smaller
/// (it takes the larger of the two). After a stack overflow two signal frames, Rust's handler,
/// `abort()` and the exporter's SIGABRT handler nested in it must fit on the alternate stack.
#[cfg(unix)]
fn small_alternate_stack() {
    let size = libc::SIGSTKSZ;
    // A guard page below it, as Rust's runtime leaves: what does not fit faults there instead
    // of writing over other memory. Never unmapped: the stack serves until the process ends.
    let page = 4096;
    let length = page + size.div_ceil(page) * page;
    // SAFETY: an anonymous private mapping; its first page is then made inaccessible.
    let base = unsafe {
        let base = libc::mmap(
            std::ptr::null_mut(),
            length,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        assert_ne!(base, libc::MAP_FAILED, "mmap");
        libc::mprotect(base, page, libc::PROT_NONE);
        base.cast::<u8>()
    };
    let alt = libc::stack_t {
        // Right above the guard: `size` bytes, then the fault.
        // SAFETY: within the mapping of `length` bytes.
        ss_sp: unsafe { base.add(page) }.cast(),
        ss_flags: 0,
        ss_size: size,
    };
    // SAFETY: `alt` describes a live, writable region of `size` bytes that is never freed.
    let rc = unsafe { libc::sigaltstack(&alt, std::ptr::null_mut()) };
    assert_eq!(rc, 0, "sigaltstack: {}", std::io::Error::last_os_error());
}

#[cfg(not(unix))]
fn small_alternate_stack() {}

/// Set by the application's own SIGHUP handler.
static SIGHUP_SEEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[cfg(unix)]
fn on_sighup_set_flag() {
    extern "C" fn on_sighup(_: libc::c_int) {
        SIGHUP_SEEN.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    // SAFETY: a zeroed sigaction with a handler that only stores an atomic.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sighup as *const () as libc::sighandler_t;
        libc::sigaction(libc::SIGHUP, &action, std::ptr::null_mut());
    }
}

#[cfg(not(unix))]
fn on_sighup_set_flag() {
    panic!("the own-sighup-handler scenario is for Unix");
}

/// A crash reporter's SIGABRT handler as such libraries install it (`SA_RESETHAND |
/// SA_NODEFER`): it reports, raises SIGABRT again (now with the default action) and would
/// exit 1 should that return.
#[cfg(unix)]
fn crash_reporter() {
    extern "C" fn report(signal: libc::c_int) {
        const LINE: &[u8] = b"crash reporter ran\n";
        // SAFETY: write, raise and _exit are async-signal-safe.
        unsafe {
            libc::write(2, LINE.as_ptr().cast(), LINE.len());
            libc::raise(signal);
            libc::_exit(1);
        }
    }
    // SAFETY: a zeroed sigaction with a handler that only does what `report` lists.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = report as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_RESETHAND | libc::SA_NODEFER;
        libc::sigaction(libc::SIGABRT, &action, std::ptr::null_mut());
    }
}

#[cfg(not(unix))]
fn crash_reporter() {
    panic!("the abort-with-reporter scenario is for Unix");
}

/// Raises SIGTERM on this process from another thread after `delay`.
#[cfg(unix)]
fn signal_self_after(delay: Duration) {
    std::thread::spawn(move || {
        let until = std::time::Instant::now() + delay;
        while std::time::Instant::now() < until {
            std::hint::spin_loop();
        }
        // SAFETY: kill with this process's id and a valid signal.
        unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
    });
}

#[cfg(not(unix))]
fn signal_self_after(_: Duration) {
    panic!("the signal-during-install scenario is for Unix");
}

/// Forks a child (`TEST_FORK_DEPTH=2`: a child that forks a grandchild) that would run 8 s
/// and exit 42, sends it `TEST_FORK_SIGNAL` after 300 ms from its parent, and prints how it
/// ended: `leaf: signal N after S s` or `leaf: exit N after S s`. The job then ends as usual.
#[cfg(unix)]
fn fork_signal() {
    let signal: i32 = std::env::var("TEST_FORK_SIGNAL").unwrap().parse().unwrap();
    let depth: u32 = std::env::var("TEST_FORK_DEPTH").map_or(1, |v| v.parse().unwrap());
    std::io::stdout().flush().unwrap();
    // SAFETY: the children only sleep, fork, kill, wait, write and _exit.
    unsafe {
        if depth == 2 {
            match libc::fork() {
                0 => {
                    signal_a_leaf(signal);
                    libc::_exit(0);
                }
                middle => {
                    let mut status = 0;
                    libc::waitpid(middle, &mut status, 0);
                }
            }
        } else {
            signal_a_leaf(signal);
        }
    }
}

/// Forks the leaf, signals it after 300 ms, waits for it and prints how it ended.
#[cfg(unix)]
unsafe fn signal_a_leaf(signal: i32) {
    let leaf = libc::fork();
    if leaf == 0 {
        std::thread::sleep(Duration::from_secs(8));
        libc::_exit(42);
    }
    std::thread::sleep(Duration::from_millis(300));
    let sent = std::time::Instant::now();
    libc::kill(leaf, signal);
    let mut status = 0;
    libc::waitpid(leaf, &mut status, 0);
    let how = if libc::WIFSIGNALED(status) {
        format!("signal {}", libc::WTERMSIG(status))
    } else {
        format!("exit {}", libc::WEXITSTATUS(status))
    };
    let line = format!("leaf: {how} after {:.3} s\n", sent.elapsed().as_secs_f64());
    libc::write(1, line.as_ptr().cast(), line.len());
}

#[cfg(not(unix))]
fn fork_signal() {
    panic!("the fork-signal scenario is for Unix");
}

#[cfg(unix)]
fn fork_exit() {
    let started = std::time::Instant::now();
    // SAFETY: the child only calls the exporter's exit, which reports one line and exits.
    match unsafe { libc::fork() } {
        0 => metrics_exporter_pushgateway::exit(7),
        pid => {
            let mut status = 0;
            // SAFETY: waiting for the child just forked.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            println!(
                "child {} {}",
                libc::WEXITSTATUS(status),
                started.elapsed().as_millis()
            );
        }
    }
}

#[cfg(unix)]
fn fork_and_leave() {
    let ms = std::env::var("TEST_CHILD_MS").map_or(10_000, |v| v.parse().unwrap());
    // SAFETY: the child only sleeps and ends with _exit.
    match unsafe { libc::fork() } {
        0 => {
            std::thread::sleep(Duration::from_millis(ms));
            // SAFETY: ends the child without running the parent's destructors or hooks.
            unsafe { libc::_exit(0) };
        }
        pid => {
            println!("child {pid}");
            std::io::stdout().flush().unwrap();
        }
    }
}

#[cfg(not(unix))]
fn fork_and_leave() {
    panic!("fork is Unix");
}

#[cfg(not(unix))]
fn fork_exit() {
    panic!("fork is Unix");
}

/// A field of /proc/self/status in KiB.
fn vm_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// The peer: the `prometheus` crate's `push_metrics` of `n` counter series, timed from the
/// end of the job's work, in a fresh process (its HTTP client is built by the first push).
fn prometheus_push_timed(job: &str, n: usize) {
    let registry = peer::prometheus_registry(n);
    let url = std::env::var(metrics_exporter_pushgateway::env::PUSHGATEWAY_URL).unwrap();
    let started = std::time::Instant::now();
    prometheus::push_metrics(
        job,
        std::collections::HashMap::new(),
        &url,
        registry.gather(),
        None,
    )
    .expect("push_metrics");
    println!("{}", started.elapsed().as_nanos());
}

/// The peer's whole job: `n` counter series recorded in a `prometheus` registry, then, when
/// `push`, one `push_metrics` (PUT, protobuf) to `PUSHGATEWAY_URL`.
fn prometheus_series(job: &str, n: usize, push: bool) {
    let registry = peer::prometheus_registry(n);
    if push {
        let url = std::env::var(metrics_exporter_pushgateway::env::PUSHGATEWAY_URL).unwrap();
        prometheus::push_metrics(
            job,
            std::collections::HashMap::new(),
            &url,
            registry.gather(),
            None,
        )
        .expect("push_metrics");
    }
}

/// The job's own work: `TEST_WORK_MS` milliseconds (none when unset).
fn work() {
    if let Ok(ms) = std::env::var("TEST_WORK_MS") {
        std::thread::sleep(Duration::from_millis(ms.parse().unwrap()));
    }
}

/// Records `n` counter series, as a job with that many series would.
fn record_series(n: usize) {
    for i in 0..n {
        metrics::counter!("bench_series_total", "series" => i.to_string()).increment(1);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (scenario, job, grouping) = (&args[0], &args[1], &args[2..]);
    if std::env::var_os("TEST_TRACING").is_some() {
        // Everything the exporter and its HTTP client log, to check what the logs hold.
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(std::io::stderr)
            .init();
    }
    if scenario == "replay" {
        // An operator draining the spool: no recorder installed.
        let report =
            metrics_exporter_pushgateway::replay().unwrap_or_else(|e| panic!("replay failed: {e}"));
        println!("{report}");
        std::process::exit(if report.is_drained() { 0 } else { 2 });
    }
    // Benchmark scenarios: whole processes with and without the exporter.
    let series = || std::env::var("TEST_SERIES").map_or(1000, |v| v.parse().unwrap());
    match scenario.as_str() {
        "final-push-timed" => {
            // What a job pays at exit: the guard's drop, in a fresh process.
            let guard = install(job, grouping);
            record_series(series());
            let started = std::time::Instant::now();
            drop(guard);
            println!("{}", started.elapsed().as_nanos());
            return;
        }
        "prometheus-push-timed" => return prometheus_push_timed(job, series()),
        "push-timed" => {
            // A warm push (client and connection up), then one timed push.
            let guard = install(job, grouping);
            record_series(series());
            guard.flush().expect("first push");
            let started = std::time::Instant::now();
            let report = guard.flush().expect("timed push");
            println!("{} {}", started.elapsed().as_nanos(), report.body_bytes());
            return;
        }
        "render-memory" => {
            // The same for the render alone (a snapshot and its text), into a buffer that
            // already has the room.
            let guard = install(job, grouping);
            record_series(series());
            let before = vm_kib("VmRSS:");
            std::fs::write("/proc/self/clear_refs", "5").expect("clear_refs");
            let text = guard.render();
            let peak = vm_kib("VmHWM:");
            println!("{} {}", (peak - before) * 1024, text.len());
            std::mem::forget(guard);
            return;
        }
        "push-memory" => {
            // Peak resident memory added by one push, against the body's size.
            let guard = install(job, grouping);
            record_series(series());
            let before = vm_kib("VmRSS:");
            // Resets VmHWM (the peak) to the current resident size.
            std::fs::write("/proc/self/clear_refs", "5").expect("clear_refs");
            let report = guard.flush().expect("push");
            let peak = vm_kib("VmHWM:");
            println!("{} {}", (peak - before) * 1024, report.body_bytes());
            return;
        }
        "init-time" => {
            let started = std::time::Instant::now();
            let guard = install(job, grouping);
            println!("{}", started.elapsed().as_nanos());
            std::mem::forget(guard);
            return;
        }
        "series-1000-bare" => return record_series(series()),
        "series-1000" => {
            let _guard = install(job, grouping);
            record_series(series());
            return work();
        }
        "series-no-push" => {
            // The exporter installed and the series recorded, but no push: the guard is
            // forgotten, and the job ends before the first interval push.
            let guard = install(job, grouping);
            record_series(series());
            work();
            std::mem::forget(guard);
            return;
        }
        "signal-during-install" => {
            // Another thread raises SIGTERM `TEST_SIGNAL_DELAY_US` after install begins: the
            // job must die by it, whether it comes before the handlers or after them.
            let delay = std::env::var("TEST_SIGNAL_DELAY_US").map_or(0, |v| v.parse().unwrap());
            signal_self_after(Duration::from_micros(delay));
            let _guard = install(job, grouping);
            record();
            std::thread::sleep(Duration::from_secs(3));
            println!("survived");
            return;
        }
        "own-sighup-handler" => {
            // An application that reloads on SIGHUP, with its handler installed before the
            // exporter: SIGHUP must not end it.
            on_sighup_set_flag();
            let _guard = install(job, grouping);
            record();
            ready();
            let until = std::time::Instant::now() + Duration::from_secs(5);
            while !SIGHUP_SEEN.load(std::sync::atomic::Ordering::SeqCst) {
                assert!(std::time::Instant::now() < until, "no SIGHUP came");
                std::thread::sleep(Duration::from_millis(10));
            }
            eprintln!("reloaded");
            return;
        }
        "abort-with-reporter" => {
            // A crash reporter's SIGABRT handler installed before the exporter: it still runs,
            // with its own flags, after the final push.
            crash_reporter();
            let _guard = install(job, grouping);
            record();
            ready();
            std::process::abort();
        }
        "fork-signal" => {
            let _guard = install(job, grouping);
            record();
            return fork_signal();
        }
        "prometheus-series" => return prometheus_series(job, series(), true),
        "prometheus-series-bare" => return prometheus_series(job, series(), false),
        _ => {}
    }
    if scenario == "per-target" {
        // Two targets with settings of their own, over builder-wide credentials that neither
        // gateway nor receiver accepts.
        let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} not set"));
        let guard = PushgatewayBuilder::with_targets([
            Target::pushgateway(var("TEST_GW_URL"))
                .basic_auth(var("TEST_GW_USER"), var("TEST_GW_PASS"))
                .allow(["records_*", "batch_job_*"])
                .label("pipeline", "main"),
            Target::remote_write(var("TEST_RW_URL"))
                .basic_auth(var("TEST_RW_USER"), var("TEST_RW_PASS"))
                .header("X-Scope-OrgID", "team-a")
                .label("tenant", "team-a")
                .deny(["records_total"]),
        ])
        .basic_auth("nobody", "wrong")
        .interval(Duration::ZERO)
        .job(job)
        .install()
        .unwrap_or_else(|e| panic!("install failed: {e}"));
        record();
        let report = guard
            .shutdown()
            .unwrap_or_else(|e| panic!("final push: {e}"));
        assert!(report.failed_targets().next().is_none(), "{report:?}");
        return;
    }
    match scenario.as_str() {
        "try-init" => {
            // The error `try_init` returns, on one line.
            match metrics_exporter_pushgateway::try_init(job) {
                Ok(guard) => println!("ok {:?}", guard.listen_addr()),
                Err(e) => println!("err {e}"),
            }
            return;
        }
        "prefix-layer" => {
            // The recorder from build(), wrapped in a metrics-util layer and installed by the
            // job itself; the guard's drop makes the final push.
            use metrics_util::layers::{Layer as _, PrefixLayer};
            let (recorder, guard) = PushgatewayBuilder::from_env()
                .unwrap_or_else(|e| panic!("environment: {e}"))
                .job(job)
                .build()
                .unwrap_or_else(|e| panic!("build failed: {e}"));
            metrics::set_global_recorder(PrefixLayer::new("app").layer(recorder))
                .unwrap_or_else(|e| panic!("set_global_recorder: {e}"));
            record();
            drop(guard);
            return;
        }
        "build-signal" => {
            // The recorder from build(), installed by the job; the exit paths' hooks only with
            // TEST_INSTALL_HOOKS. Waits for the test's signal.
            let (recorder, guard) = PushgatewayBuilder::from_env()
                .unwrap_or_else(|e| panic!("environment: {e}"))
                .job(job)
                .build()
                .unwrap_or_else(|e| panic!("build failed: {e}"));
            metrics::set_global_recorder(recorder)
                .unwrap_or_else(|e| panic!("set_global_recorder: {e}"));
            if std::env::var_os("TEST_INSTALL_HOOKS").is_some() {
                guard
                    .install_hooks(SignalHandling::PushAndExit)
                    .unwrap_or_else(|e| panic!("install_hooks: {e}"));
                assert!(metrics_exporter_pushgateway::handle().is_some());
            } else {
                assert!(metrics_exporter_pushgateway::handle().is_none());
            }
            record();
            ready();
            std::thread::sleep(Duration::from_secs(60));
            unreachable!("the test sends a signal");
        }
        "listen-tokio" => return listen_tokio(job, grouping),
        "tokio-multi" => return tokio_multi(job, grouping),
        "tokio-current" => return tokio_current(job, grouping),
        _ => {}
    }
    if scenario == "panicking-hook" {
        // Another library's panic hook that panics itself: Rust aborts the process at once.
        std::panic::set_hook(Box::new(|_| panic!("the hook fails too")));
    }
    if scenario == "stack-overflow" {
        // The alternate signal stack Rust's runtime gives `main` on a processor whose kernel
        // asks for less than SIGSTKSZ, set before the exporter installs.
        small_alternate_stack();
    }
    let guard = install(job, grouping);
    match scenario.as_str() {
        "panicking-hook" => {
            record();
            ready();
            panic!("boom");
        }
        "abort" => {
            record();
            ready();
            std::process::abort();
        }
        "stack-overflow" => {
            record();
            ready();
            #[allow(unconditional_recursion)] // on purpose: it overflows the stack
            fn deeper(n: u64) -> u64 {
                let pad = std::hint::black_box([n; 64]);
                deeper(n + 1) + pad[0]
            }
            println!("{}", deeper(0));
        }
        "main" => {
            record();
            ready();
        }
        "native" => {
            // The native histogram observations beside the usual values.
            record();
            record_native();
        }
        "label-clash" => {
            // Series labels named like the job and grouping labels, which a target that
            // takes samples must replace, not repeat.
            record();
            metrics::counter!("clash_total", "job" => "inner", "instance" => "inner", "zone" => "a")
                .increment(2);
        }
        "described" => {
            // Metrics described with help and units, for the metadata targets carry.
            metrics::describe_counter!("records_total", metrics::Unit::Count, "Records read.");
            metrics::describe_gauge!("queue_depth", metrics::Unit::Bytes, "Bytes queued.");
            metrics::describe_histogram!(
                "record_seconds",
                metrics::Unit::Seconds,
                "Time per record."
            );
            record();
        }
        "bad-series" => {
            // Series a gateway refuses a whole body for, beside good ones.
            record();
            metrics::counter!("").increment(1);
            metrics::counter!("tasks_total", "__tenant" => "a").increment(2);
            metrics::counter!("tasks_total", "kind" => "a", "kind" => "b").increment(3);
            metrics::counter!("tasks_total", "kind" => "c").increment(4);
            metrics::gauge!("workers").set(5.0);
            metrics::counter!("workers").increment(6);
            metrics::histogram!("batch_job_duration_seconds").record(7.0);
            metrics::counter!("rows.read", "table" => "t").increment(8);
            metrics::counter!("rows_read", "table" => "t").increment(9);
            metrics::histogram!("fetch_seconds", "le" => "x").record(0.1);
            metrics::gauge!("record_seconds_count").set(10.0);
        }
        "async-fn-drop" => async_fn_drop(guard),
        "task-drop" => task_drop(guard),
        "exit" => {
            record();
            ready();
            metrics_exporter_pushgateway::exit(3);
        }
        "panic" => {
            record();
            ready();
            panic!("boom");
        }
        "panic-hook-exits" => {
            // A panic hook set after the exporter's that ends the process with its own code.
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                previous(info);
                std::process::exit(2);
            }));
            record();
            ready();
            panic!("boom");
        }
        "panic-in-thread" => {
            record();
            // Unwinding: the process goes on, and so does the job.
            let joined = std::thread::spawn(|| panic!("worker failed")).join();
            assert!(joined.is_err());
            metrics::counter!("records_total").increment(1);
        }
        "signal" => {
            record();
            ready();
            std::thread::sleep(Duration::from_secs(60));
            unreachable!("the test sends a signal");
        }
        "fork-exit" => {
            // A child forked after install ends with exit(7) at once; the parent waits for it,
            // prints its status and time, and ends normally (its own final push).
            record();
            fork_exit();
        }
        "ctrl-c" => {
            // Windows: the job presses Ctrl-C on itself, then waits to be ended.
            record();
            ready();
            ctrl_c_on_self();
            std::thread::sleep(Duration::from_secs(60));
            unreachable!("Ctrl-C ends the job");
        }
        "shutdown" => {
            record();
            match guard.shutdown() {
                Ok(report) => println!("ok {:?}", report.status()),
                Err(e) => println!("err {e}"),
            }
        }
        "exit-code" => {
            record();
            let code = guard.shutdown_with_exit_code(4).is_ok();
            println!("pushed {code}");
            std::process::exit(4);
        }
        "run" => {
            // A job that runs for TEST_RUN_MS (interval pushes meanwhile), then ends normally.
            record();
            if std::env::var_os("TEST_FLUSH_FIRST").is_some() {
                // A push at the start, whose connection then idles while the job works.
                guard.flush().expect("the first push");
            }
            ready();
            let ms = std::env::var("TEST_RUN_MS").map_or(1000, |v| v.parse().unwrap());
            std::thread::sleep(Duration::from_millis(ms));
        }
        "serve" => {
            // Runs (interval pushes, scrapes of its listener) until its stdin closes, then
            // drops the guard (the final push closes the listener), says so, and lives on for
            // TEST_LINGER_MS. With TEST_SERIES, that many counter series too.
            record();
            if std::env::var_os("TEST_NATIVE").is_some() {
                record_native();
            }
            if let Ok(n) = std::env::var("TEST_SERIES") {
                record_series(n.parse().unwrap());
            }
            ready();
            listening(&guard);
            std::io::copy(&mut std::io::stdin(), &mut std::io::sink()).unwrap();
            drop(guard);
            println!("dropped");
            std::io::stdout().flush().unwrap();
            let linger = std::env::var("TEST_LINGER_MS").map_or(0, |v| v.parse().unwrap());
            std::thread::sleep(Duration::from_millis(linger));
            return;
        }
        "flush-then-serve" => {
            // One push now (its result unsaid), then serves as `serve` does until its stdin
            // closes, with no other push before the final one (PUSHGATEWAY_INTERVAL=0).
            record();
            let _ = guard.flush();
            ready();
            listening(&guard);
            std::io::copy(&mut std::io::stdin(), &mut std::io::sink()).unwrap();
            drop(guard);
            println!("dropped");
            std::io::stdout().flush().unwrap();
            return;
        }
        "serve-fork" => {
            // A daemon-style fork: the child outlives the parent (it sleeps TEST_CHILD_MS and
            // ends without running anything of the parent's), the parent drops its guard and
            // ends at once.
            record();
            ready();
            listening(&guard);
            fork_and_leave();
        }
        "flush" => {
            record();
            match guard.flush() {
                Ok(report) => {
                    println!(
                        "ok status={:?} attempts={}",
                        report.status(),
                        report.attempts()
                    );
                    // With several targets, one line each.
                    let several = report.targets().len() > 1;
                    for target in report.targets().iter().filter(|_| several) {
                        match target.result() {
                            Ok(r) => println!("target {} ok {:?}", target.kind(), r.status()),
                            Err(e) => println!("target {} err {e}", target.kind()),
                        }
                    }
                }
                Err(e) => println!("err status={:?} {e}", e.status()),
            }
        }
        "record-after-drop" => {
            // Work that goes on after the guard is gone: not pushed, and said so once.
            record();
            drop(guard);
            metrics::counter!("late_total").increment(1);
            metrics::gauge!("late_gauge").set(2.0);
            metrics::counter!("late_total").increment(1);
        }
        "final-is-last" => {
            // Interval pushes run every few milliseconds (PUSHGATEWAY_INTERVAL) against a slow
            // gateway, so that one is under way when the guard drops.
            metrics::counter!("records_total").increment(1);
            std::thread::sleep(Duration::from_millis(300));
            metrics::counter!("records_total").increment(1);
            drop(guard);
        }
        other => panic!("unknown scenario {other}"),
    }
}
