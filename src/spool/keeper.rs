//! [`Spooled`]: any sink, spooled. What a sink says is worth keeping of a failed push is
//! written to the spool; the final push of a target whose pushes replace the earlier ones is
//! written ahead of it; a push the target took removes the records it made obsolete and
//! starts replaying the rest in the background; a successful final push drains it. The
//! spool's own metrics count all of it, for every spooling target.

use std::cell::Cell;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::replay::{Background, Step};
use super::{framed, Entry, Record, Spool, MAX_FRAMES};
use crate::registry::Registry;
use crate::report::{DroppedRecord, LostRequests, PushError, PushReport, SpoolOutcome};
use crate::self_metrics::SpoolMetrics;
use crate::sink::{Keep, Push, Sink};
use crate::target::{Format, PushMethod, TargetKind};

/// Where a target's failed pushes are kept.
pub(crate) struct SpoolSettings {
    pub(crate) spool: Spool,
    /// This job's grouping key, as a gateway's group path.
    pub(crate) group: String,
    /// The time one replayed file may take.
    pub(crate) push_timeout: Duration,
}

/// A sink and, if it has one, its spool.
pub(crate) struct Spooled<S> {
    sink: S,
    keeper: Option<Keeper>,
}

struct Keeper {
    spool: Spool,
    group: String,
    push_timeout: Duration,
    metrics: Option<SpoolMetrics>,
    replay: Option<Background>,
    /// The final push's record written before it was sent: the record, its file (none when
    /// it alone is over the bounds) and what became of it.
    ahead: Option<(Record, Option<PathBuf>, SpoolOutcome)>,
}

impl<S: Sink> Spooled<S> {
    pub(crate) fn new(sink: S, spool: Option<SpoolSettings>) -> Self {
        Spooled {
            sink,
            keeper: spool.map(|s| Keeper {
                spool: s.spool,
                group: s.group,
                push_timeout: s.push_timeout,
                metrics: None,
                replay: None,
                ahead: None,
            }),
        }
    }

    pub(crate) fn sink(&self) -> &S {
        &self.sink
    }

    pub(crate) fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    /// Whether a failed push is kept: the final push then waits for it to be written, a
    /// little past its deadline if need be.
    pub(crate) fn keeps_failed(&self) -> bool {
        self.keeper.is_some()
    }

    /// Starts the sink (see [`Sink::start`]), then the spool: its directory, its metrics
    /// (registered in `registry` when `self_metrics`), and the replay of what it holds.
    pub(crate) fn start(
        &mut self,
        registry: &Arc<Registry>,
        self_metrics: bool,
        rewarm: Option<Duration>,
        timeout: Duration,
    ) {
        self.sink.start(rewarm, timeout);
        let Some(keeper) = &mut self.keeper else {
            return;
        };
        if self_metrics {
            keeper.metrics = Some(SpoolMetrics::register(registry));
        }
        if let Err(e) = keeper.spool.create_dir() {
            crate::log::report(&format!(
                "the spool directory {} cannot be created: {e}; failed pushes will be lost",
                keeper.spool.dir().display()
            ));
        }
        keeper.update_gauges();
        keeper.replay = Background::begin(&keeper.spool);
    }

    /// Sends `body` (see [`Sink::send`]). The final push of a target whose pushes replace the
    /// earlier ones is written to the spool first: whatever ends the process during the push
    /// (a second signal, a kill), it is on disk. Removed once the target took it.
    pub(crate) async fn send(
        &mut self,
        push: &Push,
        body: &Bytes,
        in_flight: &Cell<bool>,
    ) -> Result<PushReport, PushError> {
        if let Some(keeper) = &mut self.keeper {
            keeper.ahead = None;
            if push.outcome.is_final() && self.sink.about().replaces {
                if let Keep::Whole { method, format } = self.sink.keep(push, body, None) {
                    let record = keeper.record(&self.sink, push, method, format, body.clone());
                    let (path, outcome) = keeper.write(&record, true);
                    keeper.ahead = Some((record, path, outcome));
                }
            }
        }
        self.sink.send(push, body, in_flight).await
    }

    /// After the push of `body` ended with `result`: a success makes older records of the
    /// group obsolete (for a target whose pushes replace them) and starts replaying the
    /// spool; of a failure, what the sink says is worth keeping is kept. Returns what became
    /// of a failed push's values, and the body, whose buffer may serve the next push.
    pub(crate) fn settle(
        &mut self,
        push: &Push,
        body: Bytes,
        result: &Result<PushReport, PushError>,
    ) -> (Option<SpoolOutcome>, Bytes) {
        let Some(keeper) = &mut self.keeper else {
            return (None, body);
        };
        let ahead = keeper.ahead.take();
        let replaces = self.sink.about().replaces;
        let error = match result {
            Ok(_) => {
                keeper.pushed(push, replaces);
                return (None, body);
            }
            Err(e) => e,
        };
        let outcome = match self.sink.keep(push, &body, Some(error)) {
            Keep::Nothing => {
                if let Some((_, Some(path), _)) = ahead {
                    // The target refused the body itself: it is not worth keeping.
                    let _ = std::fs::remove_file(path);
                    keeper.update_gauges();
                }
                None
            }
            Keep::Whole { method, format } => Some(match ahead {
                Some((record, path, outcome)) => keeper.bound_ahead(&record, path, outcome),
                None => {
                    let record = keeper.record(&self.sink, push, method, format, body.clone());
                    keeper.write(&record, false).1
                }
            }),
            Keep::Requests(requests) if requests.is_empty() => None,
            Keep::Requests(requests) => Some(keeper.keep_requests(&self.sink, push, &requests)),
        };
        (outcome, body)
    }

    /// Whether a replay of the spool is under way, to go on between commands.
    pub(crate) fn has_background_work(&self) -> bool {
        self.keeper.as_ref().is_some_and(|k| k.replay.is_some())
    }

    /// Replays the oldest spooled record left, within `timeout`; ends the replay when none
    /// is left or the target did not take it.
    pub(crate) async fn background_step(&mut self, in_flight: &Cell<bool>, timeout: Duration) {
        let Some(keeper) = &mut self.keeper else {
            return;
        };
        keeper.replay_step(&self.sink, in_flight, timeout).await;
    }

    /// Replays what is left of the spool until `deadline`, after a successful final push.
    pub(crate) async fn drain(&mut self, deadline: Instant) {
        let Some(keeper) = &mut self.keeper else {
            return;
        };
        let in_flight = Cell::new(false);
        while keeper.replay.is_some() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left < Duration::from_millis(10) {
                break;
            }
            let timeout = keeper.push_timeout.min(left);
            keeper.replay_step(&self.sink, &in_flight, timeout).await;
        }
    }
}

impl Keeper {
    /// The record of `body`, pushed with `method` in `format`.
    fn record<S: Sink>(
        &self,
        sink: &S,
        push: &Push,
        method: PushMethod,
        format: Format,
        body: Bytes,
    ) -> Record {
        Record {
            group: self.group.clone(),
            method,
            format,
            endpoint: sink
                .about()
                .endpoint
                .as_ref()
                .map(|e| self.spool.endpoint_id(e))
                .unwrap_or_default(),
            created_ms: push.created_ms,
            body,
        }
    }

    /// After a push the target took: for a target whose pushes replace the earlier ones, the
    /// group's older records (and the copy written ahead, of the same time) are obsolete.
    /// The target is up, so what else is spooled can be sent: after a final push too for a
    /// target whose records are never obsolete (a job that pushes only at exit sends what an
    /// earlier one left, within the final push's deadline).
    fn pushed(&mut self, push: &Push, replaces: bool) {
        if replaces {
            let removed = self.spool.remove_group(&self.group, push.created_ms);
            if removed > 0 {
                tracing::debug!(
                    removed,
                    "spooled snapshots of this group replaced by a newer push"
                );
            }
        }
        if self.replay.is_none() && !(replaces && push.outcome.is_final()) {
            self.replay = Background::begin(&self.spool);
        }
        self.update_gauges();
    }

    /// Writes `record` (`ahead` of its push: without removing other files to stay within the
    /// bounds, see [`Self::bound_ahead`]). Returns its file, and what became of it.
    fn write(&self, record: &Record, ahead: bool) -> (Option<PathBuf>, SpoolOutcome) {
        let result = match ahead {
            true => self.spool.write_unbounded(record),
            false => self.spool.write(record),
        };
        let kept = match result {
            Ok(written) => match written.path {
                Some(path) => {
                    self.count_written(1);
                    let outcome = SpoolOutcome::Kept {
                        file: path.clone(),
                        dropped: self.dropped(&written.dropped),
                        unbounded: None,
                    };
                    (Some(path), outcome)
                }
                None => (
                    None,
                    SpoolOutcome::TooBig {
                        bytes: written.dropped.first().map_or(0, |e| e.bytes),
                        max_bytes: self.spool.max_bytes(),
                    },
                ),
            },
            Err(e) => (
                None,
                SpoolOutcome::Failed {
                    dir: self.spool.dir().to_owned(),
                    error: e.to_string(),
                },
            ),
        };
        self.update_gauges();
        kept
    }

    /// A record written ahead of a push that failed: it replaces the group's older ones, and
    /// the spool's bounds now apply.
    fn bound_ahead(
        &self,
        record: &Record,
        path: Option<PathBuf>,
        mut outcome: SpoolOutcome,
    ) -> SpoolOutcome {
        let Some(path) = path else {
            return outcome;
        };
        if let SpoolOutcome::Kept {
            dropped, unbounded, ..
        } = &mut outcome
        {
            match self.spool.settle(record, &path) {
                Ok((_, more)) => dropped.extend(self.dropped(&more)),
                Err(e) => *unbounded = Some(e.to_string()),
            }
        }
        self.update_gauges();
        outcome
    }

    /// Keeps `requests` of the push, in files of at most [`MAX_FRAMES`] requests each.
    fn keep_requests<S: Sink>(&self, sink: &S, push: &Push, requests: &[Bytes]) -> SpoolOutcome {
        let spool = &self.spool;
        let (mut kept, mut lost): (Vec<(PathBuf, usize)>, _) = (Vec::new(), Vec::new());
        let mut dropped: Vec<Entry> = Vec::new();
        for chunk in requests.chunks(MAX_FRAMES) {
            let body = framed(chunk.iter().map(|r| &r[..]));
            let record = self.record(sink, push, PushMethod::Post, Format::RemoteWrite, body);
            match spool.write(&record) {
                Ok(written) => match written.path {
                    Some(path) => {
                        self.count_written(1);
                        kept.push((path, chunk.len()));
                        dropped.extend(written.dropped);
                    }
                    None => lost.push(LostRequests::TooBig {
                        requests: chunk.len(),
                        bytes: written.dropped.first().map_or(0, |e| e.bytes),
                        max_bytes: spool.max_bytes(),
                    }),
                },
                Err(e) => lost.push(LostRequests::Failed {
                    requests: chunk.len(),
                    dir: spool.dir().to_owned(),
                    error: e.to_string(),
                }),
            }
        }
        // The bounds may drop a file of this very push, written before the last one.
        let (ours, older): (Vec<_>, Vec<_>) = dropped
            .into_iter()
            .partition(|e| kept.iter().any(|(p, _)| *p == e.path));
        for entry in &ours {
            if let Some(at) = kept.iter().position(|(p, _)| *p == entry.path) {
                let (_, requests) = kept.remove(at);
                lost.push(LostRequests::DroppedAgain { requests });
            }
        }
        self.count_dropped(ours.len());
        let dropped = self.dropped(&older);
        if let Some(first) = dropped.first() {
            // A line of its own each time: a failure streak logs only its first push's line.
            let bytes: u64 = dropped.iter().map(|e| e.bytes).sum();
            crate::log::warn(&format!(
                "to stay within its bounds ({} files, {} bytes) the spool {} dropped {} older \
                 snapshot(s) ({bytes} bytes, {} first): their values are lost",
                spool.max_files(),
                spool.max_bytes(),
                spool.dir().display(),
                dropped.len(),
                first.file.display()
            ));
        }
        self.update_gauges();
        SpoolOutcome::Requests {
            kept,
            lost,
            dropped,
        }
    }

    /// The records the bounds dropped, counted.
    fn dropped(&self, entries: &[Entry]) -> Vec<DroppedRecord> {
        self.count_dropped(entries.len());
        entries
            .iter()
            .map(|e| DroppedRecord {
                file: e.path.clone(),
                bytes: e.bytes,
            })
            .collect()
    }

    fn count_written(&self, n: u64) {
        if let Some(m) = &self.metrics {
            m.written.increment(n);
        }
    }

    fn count_dropped(&self, n: usize) {
        if let (Some(m), true) = (&self.metrics, n > 0) {
            m.dropped.increment(n as u64);
        }
    }

    fn update_gauges(&self) {
        if let Some(m) = &self.metrics {
            let (files, bytes) = self.spool.size();
            m.snapshots.set(files as f64);
            m.bytes.set(bytes as f64);
        }
    }

    /// Replays the oldest spooled record left to `sink`'s target; ends the replay when none
    /// is left or the target did not take it.
    async fn replay_step<S: Sink>(&mut self, sink: &S, in_flight: &Cell<bool>, timeout: Duration) {
        let about = sink.about();
        let (Some(replay), Some(client), Some(endpoint)) =
            (&mut self.replay, sink.client(), &about.endpoint)
        else {
            self.replay = None;
            return;
        };
        let metrics = &self.metrics;
        let count = |step: &Step| {
            if let Some(m) = metrics {
                match step {
                    Step::Sent => m.replayed.increment(1),
                    Step::Rejected(..) | Step::Corrupt(..) => m.dropped.increment(1),
                    Step::Kept(_) | Step::Partly { .. } | Step::Gone | Step::Elsewhere => {}
                }
            }
        };
        let remote_write = about.kind == TargetKind::RemoteWrite;
        let go_on = replay
            .step(
                client,
                endpoint,
                remote_write,
                &self.spool,
                timeout,
                in_flight,
                count,
            )
            .await;
        if !go_on {
            if let Some(replay) = self.replay.take() {
                replay.finish();
            }
            self.update_gauges();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::Outcome;
    use crate::sink::About;

    /// A remote-write target whose pushes fail with `n` requests that did not arrive.
    struct Failing(About, usize);

    impl Sink for Failing {
        fn about(&self) -> &About {
            &self.0
        }

        fn encode(
            &mut self,
            _: &crate::snapshot::Snapshot,
            _: u64,
            _: Vec<u8>,
            _: &mut Vec<u8>,
        ) -> Result<Bytes, String> {
            unreachable!()
        }

        async fn send(
            &mut self,
            _: &Push,
            _: &Bytes,
            _: &Cell<bool>,
        ) -> Result<PushReport, PushError> {
            unreachable!()
        }

        async fn delete(&mut self, _: Instant, _: Duration) -> Result<PushReport, PushError> {
            unreachable!()
        }

        fn keep(&self, _: &Push, _: &Bytes, _: Option<&PushError>) -> Keep {
            Keep::Requests((0..self.1).map(|_| Bytes::from_static(&[7])).collect())
        }
    }

    /// A push made at `created_ms` to a receiver spooling in `spool`, of which `n` requests
    /// did not arrive: what became of them.
    fn failed_push(spool: Spool, n: usize, created_ms: u64) -> Option<SpoolOutcome> {
        let url = reqwest::Url::parse("http://127.0.0.1:1/api/v1/write").unwrap();
        let about = About {
            kind: TargetKind::RemoteWrite,
            location: url.to_string(),
            metrics_label: url.to_string(),
            deletes_on_shutdown: false,
            endpoint: Some(url),
            replaces: false,
        };
        let settings = SpoolSettings {
            spool,
            group: "/job/j".into(),
            push_timeout: Duration::from_secs(1),
        };
        let mut spooled = Spooled::new(Failing(about, n), Some(settings));
        let push = Push {
            outcome: Outcome::Running,
            created_ms,
            deadline: Instant::now(),
            budget: Duration::from_secs(1),
        };
        let failed = Err(PushError::Client {
            target: TargetKind::RemoteWrite,
            url: String::new(),
            cause: "down".into(),
        });
        spooled.settle(&push, Bytes::new(), &failed).0
    }

    #[test]
    fn failed_requests_are_kept_in_files_the_reader_takes_and_older_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path().into(), 10, 64 << 20);
        let n = MAX_FRAMES * 2 + 1;
        let note = failed_push(spool.sibling(), n, 1).unwrap().to_string();
        assert!(
            note.starts_with(&format!("the {n} remote-write request(s)")),
            "{note}"
        );
        assert_eq!(note.matches(".snapshot").count(), 3, "{note}");
        let counts: Vec<usize> = spool
            .entries()
            .unwrap()
            .iter()
            .map(|e| {
                super::super::frames(&super::super::read(&e.path, u64::MAX).unwrap().body)
                    .unwrap()
                    .len()
            })
            .collect();
        assert_eq!(counts, [MAX_FRAMES, MAX_FRAMES, 1]);
        // A newer push's requests do not replace them.
        failed_push(spool.sibling(), 5, 2);
        assert_eq!(spool.entries().unwrap().len(), 4);
    }

    #[test]
    fn the_spools_bounds_drop_the_oldest_remote_write_file_with_a_warning() {
        use std::sync::{Mutex, PoisonError};
        #[derive(Clone, Default)]
        struct Lines(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Lines {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                let mut lines = self.0.lock().unwrap_or_else(PoisonError::into_inner);
                lines.extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path().into(), 2, 64 << 20);
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            for t in 1..=3 {
                failed_push(spool.sibling(), 1, t);
            }
        });
        let created: Vec<u64> = spool
            .entries()
            .unwrap()
            .iter()
            .map(|e| super::super::read(&e.path, u64::MAX).unwrap().created_ms)
            .collect();
        assert_eq!(created, [2, 3]);
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.matches("WARN").count(), 1, "{text}");
        assert!(
            text.contains("to stay within its bounds (2 files, 67108864 bytes) the spool")
                && text.contains("dropped 1 older snapshot(s)")
                && text.contains("their values are lost"),
            "{text}"
        );
    }

    /// A gateway whose pushes fail: refused for their body (400), or not reached. It counts
    /// the records in the spool directory (the third field) while a push is under way.
    struct Gateway(About, bool, PathBuf, Option<usize>);

    fn records(dir: &std::path::Path) -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "snapshot"))
            .collect()
    }

    impl Sink for Gateway {
        fn about(&self) -> &About {
            &self.0
        }

        fn encode(
            &mut self,
            _: &crate::snapshot::Snapshot,
            _: u64,
            _: Vec<u8>,
            _: &mut Vec<u8>,
        ) -> Result<Bytes, String> {
            unreachable!()
        }

        async fn send(
            &mut self,
            _: &Push,
            _: &Bytes,
            _: &Cell<bool>,
        ) -> Result<PushReport, PushError> {
            self.3 = Some(records(&self.2).len());
            Err(match self.1 {
                true => PushError::Status {
                    target: TargetKind::Pushgateway,
                    url: String::new(),
                    status: 400,
                    body: "inconsistent".into(),
                    attempts: 1,
                },
                false => PushError::Client {
                    target: TargetKind::Pushgateway,
                    url: String::new(),
                    cause: "down".into(),
                },
            })
        }

        async fn delete(&mut self, _: Instant, _: Duration) -> Result<PushReport, PushError> {
            unreachable!()
        }

        fn keep(&self, _: &Push, _: &Bytes, failed: Option<&PushError>) -> Keep {
            match failed {
                Some(e) if !e.worth_keeping() => Keep::Nothing,
                _ => Keep::Whole {
                    method: PushMethod::Put,
                    format: Format::Protobuf { gzip: true },
                },
            }
        }
    }

    /// The final push's record is on disk while it is sent, and stays when the gateway was
    /// not reached; a body the gateway refused is not kept.
    #[test]
    fn the_final_push_is_written_ahead_and_kept_only_if_worth_it() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for refused in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let url = reqwest::Url::parse("http://127.0.0.1:1/").unwrap();
            let about = About {
                kind: TargetKind::Pushgateway,
                location: "http://127.0.0.1:1/metrics/job/j".into(),
                metrics_label: url.to_string(),
                deletes_on_shutdown: true,
                endpoint: Some(url),
                replaces: true,
            };
            let settings = SpoolSettings {
                spool: Spool::new(dir.path().into(), 10, 1 << 20),
                group: "/job/j".into(),
                push_timeout: Duration::from_secs(1),
            };
            let gateway = Gateway(about, refused, dir.path().into(), None);
            let mut spooled = Spooled::new(gateway, Some(settings));
            let push = Push {
                outcome: Outcome::Exit(0),
                created_ms: 7,
                deadline: Instant::now() + Duration::from_secs(1),
                budget: Duration::from_secs(1),
            };
            let body = Bytes::from_static(b"body");
            let result = runtime.block_on(spooled.send(&push, &body, &Cell::new(false)));
            // Written before it was sent, whatever the answer.
            assert_eq!(spooled.sink().3, Some(1), "records while the push was sent");
            let (outcome, _) = spooled.settle(&push, body, &result);
            let files = records(dir.path());
            if refused {
                assert_eq!(outcome, None);
                assert!(files.is_empty(), "{files:?}");
                continue;
            }
            let Some(SpoolOutcome::Kept {
                file,
                dropped,
                unbounded,
            }) = &outcome
            else {
                panic!("{outcome:?}");
            };
            assert_eq!(files, std::slice::from_ref(file));
            assert!(dropped.is_empty() && unbounded.is_none());
            let record = super::super::read(file, u64::MAX).unwrap();
            assert_eq!(
                (
                    record.group.as_str(),
                    record.format,
                    record.created_ms,
                    &record.body[..]
                ),
                ("/job/j", Format::Protobuf { gzip: true }, 7, &b"body"[..])
            );
            assert!(outcome
                .unwrap()
                .to_string()
                .starts_with("the snapshot is kept in the spool as "));
        }
    }
}
