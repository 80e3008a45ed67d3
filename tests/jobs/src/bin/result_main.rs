//! A job whose `main` returns `Result`, as the README's Quickstart writes it: `init` without
//! `?`, and `finish` with the result of the work.
//!
//! `result_main <mode> <job-name>`; the configuration comes from the `PUSHGATEWAY_*`
//! environment variables. Modes: `ok`, `err`, `panic` (inside the work), `twice` (a second
//! `init` in the same process). Prints `work done` on stdout when the work ran to its end.

use std::fmt;

#[derive(Debug)]
struct JobError(&'static str);

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for JobError {}

fn main() -> Result<(), JobError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mode, job) = (args[0].as_str(), args[1].as_str());
    let guard = metrics_exporter_pushgateway::init(job);
    if mode == "twice" {
        // A second install in one process: one line, and the first exporter goes on.
        let second = metrics_exporter_pushgateway::init("second");
        assert!(!second.is_enabled());
    }
    guard.finish(run(mode))
}

fn run(mode: &str) -> Result<(), JobError> {
    for _ in 0..500 {
        metrics::counter!("records_total").increment(1);
    }
    metrics::gauge!("queue_depth").set(42.5);
    match mode {
        "err" => return Err(JobError("3 records could not be parsed")),
        "panic" => panic!("boom inside run"),
        _ => {}
    }
    println!("work done");
    Ok(())
}
