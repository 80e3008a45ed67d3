//! Batch-job lifecycle metrics: when the run started, how long it took, how it ended, and when
//! the job last succeeded.
//!
//! Source: the Prometheus instrumentation guide, "Batch jobs": push the time of the last
//! success so that `time() - last_success > X` can be alerted on.

use std::time::Instant;

use crate::snapshot::SnapshotBuilder;

/// Name of the gauge holding the Unix time, in seconds, at which this run started.
pub const START_TIME: &str = "batch_job_start_time_seconds";
/// Name of the gauge holding the run's wall time so far, in seconds.
pub const DURATION: &str = "batch_job_duration_seconds";
/// Name of the gauge holding the exit code of the run; pushed once the run has ended.
pub const EXIT_CODE: &str = "batch_job_exit_code";
/// Name of the gauge, with an `outcome` label, that is 1 for the run's outcome: `running`,
/// `success`, `error`, `panic` or `signal`.
pub const OUTCOME: &str = "batch_job_outcome";
/// Name of the gauge holding the Unix time, in seconds, of the last successful run. Pushed only
/// by a successful run; failed runs leave the gateway's value as it was.
pub const LAST_SUCCESS: &str = "batch_job_last_success_time_seconds";

/// Every lifecycle metric's name: reserved while the lifecycle metrics are on.
pub(crate) const NAMES: &[&str] = &[START_TIME, DURATION, EXIT_CODE, OUTCOME, LAST_SUCCESS];

/// How a run ends, or that it has not ended yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Still running: interval pushes and flushes.
    Running,
    /// Ended with this exit code (0 is success).
    Exit(i32),
    /// Ended by a panic.
    Panic,
    /// Ended by a panic, then by an exit with this code that a later panic hook made (with
    /// `panic = "abort"`).
    PanicExit(i32),
    /// Ended by this signal (on Windows: this console control event).
    Signal(i32),
}

impl Outcome {
    pub(crate) fn is_final(self) -> bool {
        self != Outcome::Running
    }

    pub(crate) fn is_success(self) -> bool {
        self == Outcome::Exit(0)
    }

    fn label(self) -> &'static str {
        match self {
            Outcome::Running => "running",
            Outcome::Exit(0) => "success",
            Outcome::Exit(_) => "error",
            Outcome::Panic | Outcome::PanicExit(_) => "panic",
            Outcome::Signal(_) => "signal",
        }
    }

    /// The exit status a shell would report: the code, 101 for an unwinding panic, 134 for
    /// an aborting one (SIGABRT), 128 + the signal number for a signal. On Windows an aborting
    /// panic ends with `STATUS_STACK_BUFFER_OVERRUN` (0xC0000409, Rust's `abort`) and a
    /// console event with `STATUS_CONTROL_C_EXIT` (0xC000013A), as unsigned numbers.
    fn exit_code(self) -> Option<i64> {
        match self {
            Outcome::Running => None,
            Outcome::Exit(code) | Outcome::PanicExit(code) => Some(code.into()),
            Outcome::Panic if cfg!(panic = "abort") && cfg!(windows) => Some(0xC000_0409),
            Outcome::Panic if cfg!(panic = "abort") => Some(128 + 6),
            Outcome::Panic => Some(101),
            Outcome::Signal(_) if cfg!(windows) => Some(0xC000_013A),
            Outcome::Signal(sig) => Some(128 + i64::from(sig)),
        }
    }
}

/// The start of the run.
pub(crate) struct Lifecycle {
    started: Instant,
    started_unix: f64,
}

impl Lifecycle {
    pub(crate) fn start() -> Self {
        Lifecycle {
            started: Instant::now(),
            started_unix: crate::clock::unix_seconds(),
        }
    }

    /// Adds the lifecycle metric families for `outcome` (each series also gets the global
    /// labels, as every series does).
    pub(crate) fn add_to(&self, outcome: Outcome, snapshot: &mut SnapshotBuilder) {
        snapshot.add_own_gauge(
            START_TIME,
            "Unix time in seconds at which this run of the job started.",
            &[],
            self.started_unix,
        );
        snapshot.add_own_gauge(
            DURATION,
            "Wall time of this run of the job in seconds.",
            &[],
            self.started.elapsed().as_secs_f64(),
        );
        snapshot.add_own_gauge(
            OUTCOME,
            "1 for how this run of the job ended, or running.",
            &[("outcome", outcome.label())],
            1.0,
        );
        if let Some(code) = outcome.exit_code() {
            snapshot.add_own_gauge(
                EXIT_CODE,
                "Exit code of the last finished run of the job.",
                &[],
                code as f64,
            );
        }
        if outcome.is_success() {
            snapshot.add_own_gauge(
                LAST_SUCCESS,
                "Unix time in seconds at which the job last finished successfully.",
                &[],
                crate::clock::unix_seconds(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(l: &Lifecycle, outcome: Outcome, global: &[(String, String)]) -> String {
        let mut builder = SnapshotBuilder::new(global, NAMES, &crate::snapshot::View::default());
        l.add_to(outcome, &mut builder);
        crate::protocol::text::text_string(&builder.finish())
    }

    #[test]
    fn running_has_no_exit_code_and_no_last_success() {
        let l = Lifecycle::start();
        let s = render(&l, Outcome::Running, &[]);
        assert!(
            s.contains("batch_job_outcome{outcome=\"running\"} 1\n"),
            "{s}"
        );
        assert!(!s.contains(EXIT_CODE));
        assert!(!s.contains(LAST_SUCCESS));
    }

    #[test]
    fn outcomes_and_exit_codes() {
        let global = vec![("service".to_owned(), "a\"b".to_owned())];
        let l = Lifecycle::start();
        for (outcome, label, code) in [
            (Outcome::Exit(0), "success", 0),
            (Outcome::Exit(3), "error", 3),
            (Outcome::Signal(15), "signal", 143),
            (Outcome::Panic, "panic", 101),
            (Outcome::PanicExit(2), "panic", 2),
        ] {
            let s = render(&l, outcome, &global);
            assert!(
                s.contains(&format!(
                    "batch_job_outcome{{service=\"a\\\"b\",outcome=\"{label}\"}} 1\n"
                )),
                "{s}"
            );
            assert!(
                s.contains(&format!(
                    "batch_job_exit_code{{service=\"a\\\"b\"}} {code}\n"
                )),
                "{s}"
            );
            assert_eq!(s.contains(LAST_SUCCESS), outcome.is_success(), "{s}");
        }
    }
}
