//! The Pushgateway target: one job's group on one gateway, the method of each push, and the
//! disk spool of the pushes that failed (kept, and replayed in the background).

use std::cell::Cell;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::HeaderMap;
use reqwest::Url;

use super::group::{push_headers, url_for};
use super::http::{self, Request};
use super::replay::{Background, Step};
use super::Sink;
use crate::lifecycle::Outcome;
use crate::protocol::{protobuf, text};
use crate::registry::Registry;
use crate::report::{PushError, PushReport};
use crate::self_metrics::SpoolMetrics;
use crate::snapshot::Snapshot;
use crate::spool::{self, Spool};
use crate::target::{PushMethod, TargetKind};

/// A Pushgateway target: one job's group on one gateway, and (for the first gateway) the
/// spool of its failed pushes.
pub(crate) struct PushgatewaySink {
    /// The gateway's endpoint (with any path prefix), for replaying other groups.
    endpoint: Url,
    /// This job's group path below `/metrics`.
    group: String,
    /// This job's group URL, and as text.
    url: Url,
    location: String,
    method: PushMethod,
    gzip: bool,
    protobuf: bool,
    /// Whether pushes carry the lifecycle metrics (then only a successful run replaces the
    /// group).
    lifecycle: bool,
    body_headers: HeaderMap,
    client: http::Client,
    push_timeout: Duration,
    spool: Option<Spool>,
    spool_metrics: Option<SpoolMetrics>,
    replay: Option<Background>,
    /// What became of the last failed push's snapshot, for its one line.
    note: Option<String>,
    /// When the body last encoded was taken (ms since the Unix epoch).
    encoded_ms: u64,
    /// A final push's snapshot written to the spool before it was sent: its file (if kept)
    /// and what became of it.
    ahead: Option<(Option<PathBuf>, String)>,
}

/// How a Pushgateway target pushes.
pub(crate) struct Settings {
    pub(crate) method: PushMethod,
    pub(crate) gzip: bool,
    pub(crate) protobuf: bool,
    pub(crate) lifecycle: bool,
    pub(crate) push_timeout: Duration,
}

impl PushgatewaySink {
    /// The group `group` (a [`group_path`]) on the gateway at `endpoint`; requests carry
    /// `headers` over `tls`; failed pushes go to `spool`.
    pub(crate) fn new(
        endpoint: Url,
        group: String,
        settings: Settings,
        headers: HeaderMap,
        tls: http::TlsConfig,
        spool: Option<Spool>,
    ) -> Self {
        let url = url_for(&endpoint, &group);
        PushgatewaySink {
            location: crate::log::shown(&url),
            client: http::Client::new(url.clone(), headers, tls),
            body_headers: push_headers(settings.gzip, settings.protobuf),
            endpoint,
            group,
            url,
            method: settings.method,
            gzip: settings.gzip,
            protobuf: settings.protobuf,
            lifecycle: settings.lifecycle,
            push_timeout: settings.push_timeout,
            spool,
            spool_metrics: None,
            note: None,
            encoded_ms: 0,
            ahead: None,
            replay: None,
        }
    }

    /// The method for a push with this outcome. With lifecycle metrics on, only a successful
    /// run's final push replaces the whole group (PUT); every other push is a POST, which
    /// replaces the families it carries and keeps the last success timestamp of earlier runs.
    fn method(&self, outcome: Outcome) -> PushMethod {
        if self.lifecycle && !outcome.is_success() {
            PushMethod::Post
        } else {
            self.method
        }
    }

    /// After a successful push made at `created_ms`: older spooled snapshots of this group are
    /// obsolete, and the gateway is up, so anything else spooled can be sent.
    fn pushed(&mut self, created_ms: u64, last: bool) {
        let Some(spool) = &self.spool else {
            return;
        };
        let removed = spool.remove_group(&self.group, created_ms);
        if removed > 0 {
            tracing::debug!(
                removed,
                "spooled snapshots of this group replaced by a newer push"
            );
        }
        if !last && self.replay.is_none() {
            self.start_replay();
        }
        self.update_spool_gauges();
    }

    /// The snapshot of a push of `body` made at `created_ms`, as the spool keeps it.
    fn spooled(&self, outcome: Outcome, created_ms: u64, body: Bytes) -> spool::Snapshot {
        spool::Snapshot {
            group: self.group.clone(),
            method: self.method(outcome),
            gzip: self.gzip,
            protobuf: self.protobuf,
            remote_write: false,
            endpoint: self
                .spool
                .as_ref()
                .map(|s| s.endpoint_id(&self.endpoint))
                .unwrap_or_default(),
            created_ms,
            body,
        }
    }

    /// Writes `snapshot` to the spool (`ahead` of its push: without removing other files to
    /// stay within the bounds, see [`Self::bound_ahead`]); what became of it is the note the
    /// pusher adds to the push's one line if the push fails.
    fn write_spool(
        &mut self,
        snapshot: &spool::Snapshot,
        ahead: bool,
    ) -> Option<(Option<PathBuf>, String)> {
        let spool = self.spool.as_ref()?;
        let result = match ahead {
            true => spool.write_unbounded(snapshot),
            false => spool.write(snapshot),
        };
        let kept = match result {
            Ok(written) => {
                let mut note = match &written.path {
                    Some(path) => {
                        if let Some(m) = &self.spool_metrics {
                            m.written.increment(1);
                        }
                        format!(
                            "the snapshot is kept in the spool as {}, for the next process \
                             using this spool directory or for replay",
                            path.display()
                        )
                    }
                    None => format!(
                        "the snapshot is not kept: it alone ({} bytes) is over the spool's bound \
                         of {} bytes; its values are lost",
                        written.dropped.first().map_or(0, |e| e.bytes),
                        spool.max_bytes()
                    ),
                };
                if written.path.is_some() {
                    note.push_str(&self.dropped_note(&written.dropped));
                }
                (written.path, note)
            }
            Err(e) => (
                None,
                format!(
                    "the snapshot could not be spooled in {} either: {e}; its values are lost",
                    spool.dir().display()
                ),
            ),
        };
        self.update_spool_gauges();
        Some(kept)
    }

    /// What the spool's bounds removed, for the note ("" when nothing).
    fn dropped_note(&self, dropped: &[spool::Entry]) -> String {
        if dropped.is_empty() {
            return String::new();
        }
        if let Some(m) = &self.spool_metrics {
            m.dropped.increment(dropped.len() as u64);
        }
        let bytes: u64 = dropped.iter().map(|e| e.bytes).sum();
        format!(
            "; to stay within its bound the spool dropped {} older snapshot(s) ({bytes} bytes, \
             {} first)",
            dropped.len(),
            dropped[0].path.display()
        )
    }

    /// A snapshot written ahead of a push that failed: it replaces the group's older ones,
    /// and the spool's bounds now apply.
    fn bound_ahead(
        &mut self,
        snapshot: &spool::Snapshot,
        (path, mut note): (Option<PathBuf>, String),
    ) -> String {
        if let (Some(path), Some(spool)) = (&path, &self.spool) {
            match spool.settle(snapshot, path) {
                Ok((_, dropped)) => note.push_str(&self.dropped_note(&dropped)),
                Err(e) => {
                    note.push_str(&format!("; the spool's bounds could not be enforced: {e}"))
                }
            }
            self.update_spool_gauges();
        }
        note
    }

    fn update_spool_gauges(&self) {
        if let (Some(spool), Some(m)) = (&self.spool, &self.spool_metrics) {
            let (files, bytes) = spool.size();
            m.snapshots.set(files as f64);
            m.bytes.set(bytes as f64);
        }
    }

    /// Starts replaying the spool in the background, unless it is empty or another process
    /// is replaying it.
    fn start_replay(&mut self) {
        if let Some(spool) = &self.spool {
            self.replay = Background::begin(spool);
        }
    }

    /// Replays what is left of the spool until `deadline`.
    async fn drain_replay(&mut self, deadline: Instant) {
        let in_flight = Cell::new(false);
        while self.replay.is_some() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left < Duration::from_millis(10) {
                break;
            }
            let timeout = self.push_timeout.min(left);
            self.replay_step(&in_flight, timeout).await;
        }
    }

    /// Replays the oldest spooled snapshot left; ends the replay when none is left or the
    /// gateway did not take it.
    async fn replay_step(&mut self, in_flight: &Cell<bool>, timeout: Duration) {
        let (Some(replay), Some(spool), Ok(client)) = (
            &mut self.replay,
            &self.spool,
            self.client.get(TargetKind::Pushgateway, &self.location),
        ) else {
            self.replay = None;
            return;
        };
        let metrics = &self.spool_metrics;
        let count = |step: &Step| {
            if let Some(m) = metrics {
                match step {
                    Step::Sent => m.replayed.increment(1),
                    Step::Rejected(..) | Step::Corrupt(..) => m.dropped.increment(1),
                    Step::Kept(_) | Step::Partly { .. } | Step::Gone | Step::Elsewhere => {}
                }
            }
        };
        let go_on = replay
            .step(
                client,
                &self.endpoint,
                false,
                spool,
                timeout,
                in_flight,
                count,
            )
            .await;
        if !go_on {
            self.finish_replay();
        }
    }

    fn finish_replay(&mut self) {
        if let Some(replay) = self.replay.take() {
            replay.finish();
        }
        self.update_spool_gauges();
    }
}

impl Sink for PushgatewaySink {
    fn kind(&self) -> TargetKind {
        TargetKind::Pushgateway
    }

    fn location(&self) -> &str {
        &self.location
    }

    fn metrics_label(&self) -> String {
        crate::log::shown(&self.endpoint)
    }

    fn start(&mut self, registry: &Arc<Registry>, self_metrics: bool) {
        self.client.start(&self.location);
        let Some(spool) = &self.spool else {
            return;
        };
        if self_metrics {
            self.spool_metrics = Some(SpoolMetrics::register(registry));
        }
        if let Err(e) = spool.create_dir() {
            crate::log::report(&format!(
                "the spool directory {} cannot be created: {e}; failed pushes will be lost",
                spool.dir().display()
            ));
        }
        self.update_spool_gauges();
        self.start_replay();
    }

    /// `GET {endpoint}/-/healthy`: Pushgateway's health check (1.5.1 answers `200 OK`),
    /// which reads nothing and changes nothing, behind the same path prefix as the pushes.
    fn warm(&self, every: Option<Duration>, timeout: Duration) {
        let mut url = self.endpoint.clone();
        let path = format!("{}/-/healthy", self.endpoint.path().trim_end_matches('/'));
        url.set_path(&path);
        self.client.warm(url, every, timeout);
    }

    fn encode(
        &mut self,
        snapshot: &Snapshot,
        created_ms: u64,
        mut buf: Vec<u8>,
        scratch: &mut Vec<u8>,
    ) -> Result<Bytes, String> {
        self.encoded_ms = created_ms;
        if self.protobuf {
            protobuf::encode(snapshot, &mut buf, scratch);
        } else {
            text::text(snapshot, &[], &mut buf);
        }
        if !self.gzip {
            return Ok(Bytes::from(buf));
        }
        crate::compression::gzip(&buf)
            .map(Bytes::from)
            .map_err(|e| format!("gzip compression failed: {e}"))
    }

    async fn send(
        &mut self,
        outcome: Outcome,
        body: &Bytes,
        deadline: Instant,
        budget: Duration,
        in_flight: &Cell<bool>,
    ) -> Result<PushReport, PushError> {
        if outcome.is_final() && self.spool.is_some() {
            // Written before it is sent: whatever ends the process during the push (a second
            // signal, a kill), the snapshot is on disk. Removed once the gateway took it.
            let snapshot = self.spooled(outcome, self.encoded_ms, body.clone());
            self.ahead = self.write_spool(&snapshot, true);
        }
        let client = self.client.get(TargetKind::Pushgateway, &self.location)?;
        let request = Request::push(
            &self.url,
            &self.location,
            self.method(outcome),
            &self.body_headers,
            body.clone(),
        );
        let hedge = outcome
            .is_final()
            .then(|| self.client.hedge(budget))
            .flatten();
        http::send_hedged(client, &request, deadline, budget, true, hedge, in_flight).await
    }

    fn settle(
        &mut self,
        outcome: Outcome,
        created_ms: u64,
        body: Bytes,
        result: &Result<PushReport, PushError>,
    ) -> Option<Bytes> {
        let ahead = self.ahead.take();
        match result {
            Ok(_) => {
                // Removes the copy written ahead too (same creation time).
                self.pushed(created_ms, outcome.is_final());
                Some(body)
            }
            Err(e) if e.worth_keeping() && self.spool.is_some() => {
                let snapshot = self.spooled(outcome, created_ms, body);
                self.note = match ahead {
                    Some(kept) => Some(self.bound_ahead(&snapshot, kept)),
                    None => self.write_spool(&snapshot, false).map(|(_, note)| note),
                };
                None
            }
            Err(_) => {
                if let Some((Some(path), _)) = ahead {
                    // The gateway refused the body itself: it is not worth keeping.
                    let _ = std::fs::remove_file(path);
                    self.update_spool_gauges();
                }
                Some(body)
            }
        }
    }

    async fn delete(
        &mut self,
        deadline: Instant,
        budget: Duration,
    ) -> Result<PushReport, PushError> {
        let client = self.client.get(TargetKind::Pushgateway, &self.location)?;
        let request = Request::delete(&self.url, &self.location);
        let hedge = self.client.hedge(budget);
        http::send_hedged(
            client,
            &request,
            deadline,
            budget,
            true,
            hedge,
            &Cell::new(false),
        )
        .await
    }

    fn keeps_failed(&self) -> bool {
        self.spool.is_some()
    }

    fn take_note(&mut self) -> Option<String> {
        self.note.take()
    }

    fn has_background_work(&self) -> bool {
        self.replay.is_some()
    }

    async fn background_step(&mut self, in_flight: &Cell<bool>, timeout: Duration) {
        self.replay_step(in_flight, timeout).await;
    }

    async fn drain(&mut self, deadline: Instant) {
        self.drain_replay(deadline).await;
    }
}
