//! The pusher thread: one named std thread per target that owns a current-thread tokio
//! runtime and its [`Sink`], takes snapshots and hands them to the sink. Everything else
//! talks to it over a channel and waits for its answer with a timeout.

use std::cell::Cell;
use std::collections::HashSet;
use std::future::Future;
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use crate::encode;
use crate::lifecycle::{Lifecycle, Outcome};
use crate::registry::Registry;
use crate::report::{PushError, PushReport};
use crate::self_metrics::SelfMetrics;
use crate::sink::{client_error, Sink};
use crate::snapshot::{Dropped, Snapshot};

/// At most this many left-out series are reported, each once; then one line says more were.
const REPORTED_DROPS: usize = 1000;

/// Takes what a push sends: the registry's values, then the lifecycle metrics.
pub(crate) struct Renderer {
    pub(crate) registry: Arc<Registry>,
    pub(crate) lifecycle: Option<Lifecycle>,
    /// The left-out series already reported.
    reported: Mutex<HashSet<String>>,
}

impl Renderer {
    pub(crate) fn new(registry: Arc<Registry>, lifecycle: Option<Lifecycle>) -> Self {
        Renderer {
            registry,
            lifecycle,
            reported: Mutex::new(HashSet::new()),
        }
    }

    /// The snapshot of this moment for `outcome`; a series left out of it (because the
    /// gateway would refuse the whole body for it) is reported once, with why.
    pub(crate) fn snapshot(&self, outcome: Outcome) -> Snapshot {
        let snapshot = self.take(outcome, true);
        if !snapshot.dropped().is_empty() {
            self.report_dropped(snapshot.dropped());
        }
        snapshot
    }

    /// The snapshot a scrape of the listener serves: the registry's values without the
    /// lifecycle metrics, which describe a pushed run (their names stay reserved, so that a
    /// scrape and a push leave out the same recorded series).
    pub(crate) fn scrape_snapshot(&self) -> Snapshot {
        let snapshot = self.take(Outcome::Running, false);
        if !snapshot.dropped().is_empty() {
            self.report_dropped(snapshot.dropped());
        }
        snapshot
    }

    fn report_dropped(&self, dropped: &[Dropped]) {
        let mut reported = self.reported.lock().unwrap_or_else(PoisonError::into_inner);
        for d in dropped {
            if reported.len() > REPORTED_DROPS || reported.contains(&d.series) {
                continue;
            }
            reported.insert(d.series.clone());
            if reported.len() > REPORTED_DROPS {
                crate::log::warn(&format!(
                    "more than {REPORTED_DROPS} series are left out of every push; the others \
                     are not listed"
                ));
            } else {
                crate::log::warn(&d.to_string());
            }
        }
    }

    fn take(&self, outcome: Outcome, with_lifecycle: bool) -> Snapshot {
        let reserved = match self.lifecycle {
            Some(_) => crate::lifecycle::NAMES,
            None => &[],
        };
        let mut builder = self.registry.snapshot(reserved);
        if let Some(lifecycle) = self.lifecycle.as_ref().filter(|_| with_lifecycle) {
            lifecycle.add_to(outcome, &mut builder);
        }
        builder.finish()
    }

    /// The snapshot of this moment in the text exposition format.
    pub(crate) fn render(&self, outcome: Outcome) -> String {
        encode::text_string(&self.snapshot(outcome))
    }
}

/// A request to the pusher thread. Each carries the deadline by which it must be answered and
/// the channel for the answer.
pub(crate) enum Command {
    /// Push now. A final `outcome` makes this the final push, after which the thread ends.
    Push {
        outcome: Outcome,
        deadline: Instant,
        budget: Duration,
        reply: SyncSender<Result<PushReport, PushError>>,
    },
    /// Delete the group.
    Delete {
        deadline: Instant,
        budget: Duration,
        reply: SyncSender<Result<PushReport, PushError>>,
    },
}

impl Command {
    fn is_final(&self) -> bool {
        matches!(self, Command::Push { outcome, .. } if outcome.is_final())
    }

    fn deadline(&self) -> Instant {
        match self {
            Command::Push { deadline, .. } | Command::Delete { deadline, .. } => *deadline,
        }
    }

    fn budget(&self) -> Duration {
        match self {
            Command::Push { budget, .. } | Command::Delete { budget, .. } => *budget,
        }
    }
}

/// What a pusher thread needs besides its sink, handed over at spawn.
pub(crate) struct PusherConfig {
    pub(crate) interval: Option<Duration>,
    pub(crate) push_timeout: Duration,
    pub(crate) delete_on_shutdown: bool,
    pub(crate) renderer: Arc<Renderer>,
    pub(crate) self_metrics: bool,
    pub(crate) thread_name: String,
}

/// Starts a pusher thread for `sink`.
pub(crate) fn spawn<S: Sink + Send + 'static>(
    sink: S,
    config: PusherConfig,
) -> std::io::Result<UnboundedSender<Command>> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name(config.thread_name.clone())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    crate::log::report(&format!(
                        "metrics will not be pushed: the pusher's runtime failed to start: {e}"
                    ));
                    return;
                }
            };
            runtime.block_on(Pusher::start(sink, config).run(rx));
        })?;
    Ok(tx)
}

async fn background(
    work: impl Future<Output = ()>,
    rx: &mut UnboundedReceiver<Command>,
    in_flight: &Cell<bool>,
) -> Option<Command> {
    tokio::pin!(work);
    let command = tokio::select! {
        biased;
        () = &mut work => return None,
        Some(c) = rx.recv() => c,
    };
    if in_flight.get() {
        let attempt_done = std::future::poll_fn(|cx| {
            if work.as_mut().poll(cx).is_ready() || !in_flight.get() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        });
        let until = command.deadline() - command.budget() / 2;
        let _ = tokio::time::timeout_at(until.into(), attempt_done).await;
    }
    Some(command)
}

struct Pusher<S> {
    sink: S,
    interval: Option<Duration>,
    push_timeout: Duration,
    delete_on_shutdown: bool,
    renderer: Arc<Renderer>,
    self_metrics: Option<SelfMetrics>,
    /// The buffer of the last body, handed back after its push, for the next one.
    spare: Vec<u8>,
    /// The buffer the protobuf encoder writes a family's metrics into.
    scratch: Vec<u8>,
    /// Whether the last interval push failed (to log a failure streak once).
    failing: bool,
}

impl<S: Sink> Pusher<S> {
    fn start(mut sink: S, config: PusherConfig) -> Self {
        let registry: &Arc<Registry> = &config.renderer.registry;
        sink.start(registry, config.self_metrics);
        let self_metrics = config
            .self_metrics
            .then(|| SelfMetrics::register(registry, sink.metrics_label()));
        Pusher {
            sink,
            interval: config.interval,
            push_timeout: config.push_timeout,
            delete_on_shutdown: config.delete_on_shutdown,
            renderer: config.renderer,
            self_metrics,
            spare: Vec::new(),
            scratch: Vec::new(),
            failing: false,
        }
    }

    /// Serves commands until the final push, pushing on the interval and doing the sink's
    /// background work in between.
    async fn run(mut self, mut rx: UnboundedReceiver<Command>) {
        let start = tokio::time::Instant::now();
        let mut next_push = self.interval.map(|i| start + i);
        let mut stashed: Option<Command> = None;
        loop {
            let command = match stashed.take() {
                Some(c) => c,
                None => {
                    let now = tokio::time::Instant::now();
                    if let (Some(at), Some(interval)) = (next_push, self.interval) {
                        if now >= at {
                            let in_flight = Cell::new(false);
                            stashed =
                                background(self.interval_push(&in_flight), &mut rx, &in_flight)
                                    .await;
                            next_push = Some(tokio::time::Instant::now() + interval);
                            continue;
                        }
                    }
                    if self.sink.has_background_work() {
                        let in_flight = Cell::new(false);
                        let timeout = self.push_timeout;
                        let step = self.sink.background_step(&in_flight, timeout);
                        stashed = background(step, &mut rx, &in_flight).await;
                        continue;
                    }
                    let timer = async {
                        match next_push {
                            Some(at) => tokio::time::sleep_until(at).await,
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        c = rx.recv() => match c {
                            Some(c) => c,
                            // Every sender is gone: nobody can ask for a push any more.
                            None => return,
                        },
                        () = timer => continue,
                    }
                }
            };
            let last = command.is_final();
            self.serve(command).await;
            if last {
                return;
            }
        }
    }

    async fn serve(&mut self, command: Command) {
        match command {
            Command::Push {
                outcome,
                deadline,
                budget,
                reply,
            } => {
                let result = self.push(outcome, deadline, budget).await;
                if outcome.is_final() && result.is_ok() {
                    // The target is up: what the sink still has to send (a spool) goes now,
                    // within the final push's deadline, rather than waiting for the next
                    // process.
                    self.sink.drain(deadline).await;
                }
                let _ = reply.send(result);
            }
            Command::Delete {
                deadline,
                budget,
                reply,
            } => {
                let result = self.sink.delete(deadline, budget).await;
                let _ = reply.send(result);
            }
        }
    }

    async fn push(
        &mut self,
        outcome: Outcome,
        deadline: Instant,
        budget: Duration,
    ) -> Result<PushReport, PushError> {
        if outcome.is_final() && self.delete_on_shutdown && self.sink.deletes_on_shutdown() {
            return self.sink.delete(deadline, budget).await;
        }
        self.send_push(outcome, deadline, budget, &Cell::new(false))
            .await
    }

    /// Takes a snapshot, encodes it into the buffer of the last push (no allocation or page
    /// faults when the size is about the same), sends it, and lets the sink settle it.
    async fn send_push(
        &mut self,
        outcome: Outcome,
        deadline: Instant,
        budget: Duration,
        in_flight: &Cell<bool>,
    ) -> Result<PushReport, PushError> {
        let created_ms = crate::clock::now_ms();
        let started = Instant::now();
        let snapshot = self.renderer.snapshot(outcome);
        let mut buf = std::mem::take(&mut self.spare);
        buf.clear();
        let body = self
            .sink
            .encode(&snapshot, created_ms, buf, &mut self.scratch)
            .map_err(|cause| client_error(self.sink.kind(), self.sink.location(), cause))?;
        drop(snapshot);
        let result = self
            .sink
            .send(outcome, &body, deadline, budget, in_flight)
            .await;
        if let Some(m) = &self.self_metrics {
            m.record(&result, body.len(), started.elapsed());
        }
        let loud = outcome.is_final() || !self.failing;
        if let Some(body) = self.sink.settle(outcome, created_ms, body, &result, loud) {
            self.recycle(body);
        }
        result
    }

    /// Takes back the buffer of a body nobody else holds any more.
    fn recycle(&mut self, body: Bytes) {
        if let Ok(buf) = body.try_into_mut() {
            self.spare = buf.into();
        }
    }

    async fn interval_push(&mut self, in_flight: &Cell<bool>) {
        let interval = self.interval.unwrap_or(self.push_timeout);
        let budget = self.push_timeout.min(interval);
        let deadline = Instant::now() + budget;
        let result = self
            .send_push(Outcome::Running, deadline, budget, in_flight)
            .await;
        match result {
            Ok(_) if self.failing => {
                self.failing = false;
                tracing::info!(target_location = %self.sink.location(), "interval push succeeded again");
            }
            Ok(_) => {}
            Err(e) if !self.failing => {
                self.failing = true;
                tracing::warn!(error = %e, "interval push failed; retrying on the next interval");
            }
            Err(e) => tracing::debug!(error = %e, "interval push failed again"),
        }
    }
}
