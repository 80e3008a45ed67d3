//! The pusher thread: one named std thread per target that owns a current-thread tokio
//! runtime and its [`Sink`], takes snapshots and hands them to the sink. Everything else
//! talks to it over a channel and waits for its answer with a timeout.

use std::cell::Cell;
use std::future::Future;
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use crate::lifecycle::Outcome;
use crate::registry::Registry;
use crate::report::{PushError, PushReport, SpoolOutcome};
use crate::self_metrics::SelfMetrics;
use crate::sink::{client_error, Push, Sink};
use crate::snapshot::View;
use crate::source::Renderer;
use crate::spool::keeper::Spooled;

/// A pusher's answer to a command: its result, and what became of a failed push (kept in the
/// spool as a record, or lost), to be said on the same line as the error.
pub(crate) struct Answer {
    pub(crate) result: Result<PushReport, PushError>,
    pub(crate) spool: Option<SpoolOutcome>,
}

/// A request to the pusher thread. Each carries the deadline by which it must be answered and
/// the channel for the answer.
pub(crate) enum Command {
    /// Push now. A final `outcome` makes this the final push, after which the thread ends.
    Push {
        outcome: Outcome,
        deadline: Instant,
        budget: Duration,
        reply: SyncSender<Answer>,
    },
    /// Delete the group.
    Delete {
        deadline: Instant,
        budget: Duration,
        reply: SyncSender<Answer>,
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
    /// What this target sees of the registry.
    pub(crate) view: View,
    pub(crate) self_metrics: bool,
    pub(crate) thread_name: String,
}

/// Starts a pusher thread for `sink`.
pub(crate) fn spawn<S: Sink + Send + 'static>(
    sink: Spooled<S>,
    config: PusherConfig,
) -> std::io::Result<UnboundedSender<Command>> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    // Registered here, before any push: every target's own metrics are in the first snapshot
    // of every other target.
    let self_metrics = config.self_metrics.then(|| {
        let label = sink.sink().about().metrics_label.clone();
        SelfMetrics::register(&config.renderer.registry, label)
    });
    crate::runtime::thread::spawn_with_runtime(
        config.thread_name.clone(),
        "metrics will not be pushed",
        move || Pusher::start(sink, config, self_metrics).run(rx),
    )?;
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
    sink: Spooled<S>,
    interval: Option<Duration>,
    push_timeout: Duration,
    delete_on_shutdown: bool,
    renderer: Arc<Renderer>,
    view: View,
    self_metrics: Option<SelfMetrics>,
    /// The buffer of the last body, handed back after its push, for the next one.
    spare: Vec<u8>,
    /// The buffer the protobuf encoder writes a family's metrics into.
    scratch: Vec<u8>,
    /// Whether the last interval push failed (to log a failure streak once).
    failing: bool,
}

impl<S: Sink> Pusher<S> {
    fn start(sink: Spooled<S>, config: PusherConfig, self_metrics: Option<SelfMetrics>) -> Self {
        Pusher {
            sink,
            interval: config.interval,
            push_timeout: config.push_timeout,
            delete_on_shutdown: config.delete_on_shutdown,
            renderer: config.renderer,
            view: config.view,
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
        // The connection is made now, while the job works, and made again before it could go
        // stale when no interval push keeps it in use.
        let rewarm = match self.interval {
            Some(interval) if interval <= crate::sink::http::REWARM => None,
            _ => Some(crate::sink::http::REWARM),
        };
        let registry: &Arc<Registry> = &self.renderer.registry;
        let self_metrics = self.self_metrics.is_some();
        self.sink
            .start(registry, self_metrics, rewarm, self.push_timeout);
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
                let (result, spool) = self.push(outcome, deadline, budget).await;
                if outcome.is_final() && result.is_ok() {
                    // The target is up: what the sink still has to send (a spool) goes now,
                    // within the final push's deadline, rather than waiting for the next
                    // process.
                    self.sink.drain(deadline).await;
                }
                let _ = reply.send(Answer { result, spool });
            }
            Command::Delete {
                deadline,
                budget,
                reply,
            } => {
                let result = self.sink.sink_mut().delete(deadline, budget).await;
                let _ = reply.send(Answer {
                    result,
                    spool: None,
                });
            }
        }
    }

    async fn push(
        &mut self,
        outcome: Outcome,
        deadline: Instant,
        budget: Duration,
    ) -> (Result<PushReport, PushError>, Option<SpoolOutcome>) {
        let deletes = self.sink.sink().about().deletes_on_shutdown;
        if outcome.is_final() && self.delete_on_shutdown && deletes {
            return (self.sink.sink_mut().delete(deadline, budget).await, None);
        }
        self.send_push(outcome, deadline, budget, &Cell::new(false))
            .await
    }

    /// Takes a snapshot, encodes it into the buffer of the last push (no allocation or page
    /// faults when the size is about the same), sends it, and lets the spool settle it. Returns
    /// the result and what became of a failed push (kept as a record in the spool, or lost).
    async fn send_push(
        &mut self,
        outcome: Outcome,
        deadline: Instant,
        budget: Duration,
        in_flight: &Cell<bool>,
    ) -> (Result<PushReport, PushError>, Option<SpoolOutcome>) {
        let push = Push {
            outcome,
            created_ms: crate::clock::now_ms(),
            deadline,
            budget,
        };
        let started = Instant::now();
        let snapshot = self.renderer.snapshot_for(outcome, &self.view);
        let mut buf = std::mem::take(&mut self.spare);
        buf.clear();
        let encoded =
            self.sink
                .sink_mut()
                .encode(&snapshot, push.created_ms, buf, &mut self.scratch);
        let about = self.sink.sink().about();
        let (kind, location) = (about.kind, about.location.clone());
        let body = match encoded {
            Ok(body) => body,
            Err(cause) => return (Err(client_error(kind, &location, cause)), None),
        };
        let series = snapshot.len();
        drop(snapshot);
        let result = if Instant::now() >= deadline {
            // Preparing the snapshot took the whole budget: nothing is sent, and the spool
            // still keeps it.
            Err(PushError::Timeout {
                target: kind,
                url: location.clone(),
                timeout: budget,
                attempts: 0,
                last_error: Some(Box::new(client_error(
                    kind,
                    &location,
                    format!(
                        "preparing the snapshot of {series} series took {:.3}s",
                        started.elapsed().as_secs_f64()
                    ),
                ))),
            })
        } else {
            self.sink.send(&push, &body, in_flight).await
        };
        if let Some(m) = &self.self_metrics {
            m.record(&result, body.len(), started.elapsed());
        }
        let (spool, body) = self.sink.settle(&push, body, &result);
        self.recycle(body);
        (result, spool)
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
        let (result, spool) = self
            .send_push(Outcome::Running, deadline, budget, in_flight)
            .await;
        let note = spool.map(|n| format!("; {n}")).unwrap_or_default();
        match result {
            Ok(_) if self.failing => {
                self.failing = false;
                let location = &self.sink.sink().about().location;
                tracing::info!(target_location = %location, "interval push succeeded again");
            }
            Ok(_) => {}
            Err(e) if !self.failing => {
                self.failing = true;
                tracing::warn!("interval push failed; retrying on the next interval: {e}{note}");
            }
            Err(e) => tracing::debug!("interval push failed again: {e}{note}"),
        }
    }
}
