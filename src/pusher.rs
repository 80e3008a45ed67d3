//! The pusher thread: one named std thread that owns a current-thread tokio runtime and the
//! HTTP client, renders snapshots and sends them. Everything else talks to it over a channel and
//! waits for its answer with a timeout.

use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::HeaderMap;
use reqwest::Url;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use crate::gateway::{Gateway, PushMethod, PushReport};
use crate::lifecycle::{Lifecycle, Outcome};
use crate::recorder::LazyRecorder;
use crate::PushError;

/// How often the recorder's upkeep runs (drains histogram samples into their buckets so that
/// memory stays bounded between pushes), as `metrics-exporter-prometheus` does by default.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Renders what a push sends: the recorder's exposition text, then the lifecycle metrics.
pub(crate) struct Renderer {
    pub(crate) recorder: Arc<LazyRecorder>,
    pub(crate) lifecycle: Option<Lifecycle>,
}

impl Renderer {
    pub(crate) fn render(&self, outcome: Outcome, capacity: usize) -> String {
        let mut buf = Vec::with_capacity(capacity);
        // Writing into a Vec cannot fail.
        let _ = self.recorder.handle().render_to_write(&mut buf);
        // The exposition format is UTF-8 by construction.
        let mut text = String::from_utf8(buf)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        if let Some(lifecycle) = &self.lifecycle {
            lifecycle.render(outcome, &mut text);
        }
        text
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

/// What the pusher thread needs, handed over at spawn.
pub(crate) struct PusherConfig {
    pub(crate) url: Url,
    pub(crate) headers: HeaderMap,
    pub(crate) method: PushMethod,
    pub(crate) interval: Option<Duration>,
    pub(crate) push_timeout: Duration,
    pub(crate) delete_on_shutdown: bool,
    pub(crate) gzip: bool,
    pub(crate) renderer: Arc<Renderer>,
}

/// Starts the pusher thread.
pub(crate) fn spawn(config: PusherConfig) -> std::io::Result<UnboundedSender<Command>> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("pushgateway-pusher".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    crate::exit::report(&format!(
                        "metrics will not be pushed: the pusher's runtime failed to start: {e}"
                    ));
                    return;
                }
            };
            runtime.block_on(run(config, rx));
        })?;
    Ok(tx)
}

fn build_gateway(config: &PusherConfig) -> Result<Gateway, String> {
    let client = reqwest::Client::builder()
        .default_headers(config.headers.clone())
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!(
            env!("CARGO_PKG_NAME"),
            "/",
            env!("CARGO_PKG_VERSION")
        ))
        .build()
        .map_err(|e| crate::error::chain(&e))?;
    Ok(Gateway {
        client,
        url_text: config.url.to_string(),
        url: config.url.clone(),
        gzip: config.gzip,
    })
}

async fn run(config: PusherConfig, mut rx: UnboundedReceiver<Command>) {
    // First the recorder, which the caller's thread may be waiting for; then the client.
    config.renderer.recorder.get();
    let gateway = build_gateway(&config);
    if let Err(cause) = &gateway {
        crate::exit::report(&format!(
            "metrics will not be pushed to {}: the HTTP client failed to start: {cause}",
            config.url
        ));
    }
    let mut pusher = Pusher {
        gateway,
        config,
        last_len: 4096,
        failing: false,
    };
    let start = tokio::time::Instant::now();
    let mut next_push = pusher.config.interval.map(|i| start + i);
    let mut next_upkeep = start + UPKEEP_INTERVAL;
    let mut stashed: Option<Command> = None;
    loop {
        let command = match stashed.take() {
            Some(c) => c,
            None => {
                let wake = next_push.map_or(next_upkeep, |p| p.min(next_upkeep));
                tokio::select! {
                    c = rx.recv() => match c {
                        Some(c) => c,
                        // Every sender is gone: nobody can ask for a push any more.
                        None => return,
                    },
                    () = tokio::time::sleep_until(wake) => {
                        let now = tokio::time::Instant::now();
                        if now >= next_upkeep {
                            pusher.config.renderer.recorder.handle().run_upkeep();
                            next_upkeep = now + UPKEEP_INTERVAL;
                        }
                        if let (Some(at), Some(interval)) = (next_push, pusher.config.interval) {
                            if now >= at {
                                let interrupted = async { stashed = rx.recv().await };
                                pusher.interval_push(interrupted).await;
                                next_push = Some(tokio::time::Instant::now() + interval);
                            }
                        }
                        continue;
                    }
                }
            }
        };
        match command {
            Command::Push {
                outcome,
                deadline,
                budget,
                reply,
            } => {
                let result = pusher.push(outcome, deadline, budget).await;
                let _ = reply.send(result);
                if outcome.is_final() {
                    return;
                }
            }
            Command::Delete {
                deadline,
                budget,
                reply,
            } => {
                let result = pusher.delete(deadline, budget).await;
                let _ = reply.send(result);
            }
        }
    }
}

struct Pusher {
    gateway: Result<Gateway, String>,
    config: PusherConfig,
    /// Size of the last body, to allocate the next one at once.
    last_len: usize,
    /// Whether the last interval push failed (to log a failure streak once).
    failing: bool,
}

impl Pusher {
    fn gateway(&self) -> Result<&Gateway, PushError> {
        self.gateway.as_ref().map_err(|cause| PushError::Client {
            url: self.config.url.to_string(),
            cause: cause.clone(),
        })
    }

    /// The method for a push with this outcome. With lifecycle metrics on, only a successful
    /// run's final push replaces the whole group (PUT); every other push is a POST, which
    /// replaces the families it carries and keeps the last success timestamp of earlier runs.
    fn method(&self, outcome: Outcome) -> PushMethod {
        if self.config.renderer.lifecycle.is_some() && !outcome.is_success() {
            PushMethod::Post
        } else {
            self.config.method
        }
    }

    fn body(&mut self, outcome: Outcome) -> Result<Bytes, PushError> {
        let text = self
            .config
            .renderer
            .render(outcome, self.last_len + self.last_len / 8);
        self.last_len = text.len();
        if self.config.gzip {
            crate::compression::gzip(text.as_bytes())
                .map(Bytes::from)
                .map_err(|e| PushError::Client {
                    url: self.config.url.to_string(),
                    cause: format!("gzip compression failed: {e}"),
                })
        } else {
            Ok(Bytes::from(text))
        }
    }

    async fn push(
        &mut self,
        outcome: Outcome,
        deadline: Instant,
        budget: Duration,
    ) -> Result<PushReport, PushError> {
        if outcome.is_final() && self.config.delete_on_shutdown {
            return self.delete(deadline, budget).await;
        }
        let method = self.method(outcome);
        let body = self.body(outcome)?;
        self.gateway()?
            .send(Some(method), body, deadline, budget, std::future::pending())
            .await
    }

    async fn delete(
        &mut self,
        deadline: Instant,
        budget: Duration,
    ) -> Result<PushReport, PushError> {
        self.gateway()?
            .send(None, Bytes::new(), deadline, budget, std::future::pending())
            .await
    }

    /// A push on the interval: its failures are logged (once per failure streak), not returned.
    async fn interval_push(&mut self, interrupted: impl std::future::Future<Output = ()>) {
        let interval = self.config.interval.unwrap_or(self.config.push_timeout);
        let budget = self.config.push_timeout.min(interval);
        let deadline = Instant::now() + budget;
        let result = match self.body(Outcome::Running) {
            Ok(body) => match self.gateway() {
                Ok(gw) => {
                    gw.send(
                        Some(self.method(Outcome::Running)),
                        body,
                        deadline,
                        budget,
                        interrupted,
                    )
                    .await
                }
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match result {
            Ok(_) if self.failing => {
                self.failing = false;
                tracing::info!(url = %self.config.url, "interval push succeeded again");
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
