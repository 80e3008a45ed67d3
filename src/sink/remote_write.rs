//! The remote-write target: a push as requests of at most `max_samples` samples each (encoded
//! by [`protocol::remote_write`](crate::protocol::remote_write)), sent a few at a time, each
//! retried on its own; what the spool keeps of a failed push is the requests that did not
//! arrive.
//!
//! Source: the Prometheus Remote-Write 1.0 specification
//! (<https://prometheus.io/docs/specs/prw/remote_write_spec/>).

use std::cell::Cell;
use std::ops::Range;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::HeaderMap;
use reqwest::Url;

use super::http::{self, Request};
use super::remote_write_wire::{headers, CONCURRENT_REQUESTS};
use super::{About, Keep, Push, Sink};
use crate::protocol::remote_write::{BatchEncoder, SentSeries};
use crate::report::{PushError, PushReport};
use crate::snapshot::Snapshot;
use crate::target::TargetKind;

/// A remote-write receiver: the job and grouping labels go on every series, series gone
/// since the last push it took get a staleness marker, and a push goes as requests of at most
/// `max_samples` samples, [`CONCURRENT_REQUESTS`] at a time, each retried on its own.
pub(crate) struct RemoteWriteSink {
    about: About,
    url: Url,
    /// The job and grouping labels, added to every series.
    labels: Vec<(String, String)>,
    body_headers: HeaderMap,
    client: http::Client,
    sent_series: SentSeries,
    max_samples: usize,
    /// Where each request's body is in the push's body.
    ranges: Vec<Range<usize>>,
    /// The requests of the last push the receiver did not take and that are worth keeping,
    /// by index.
    failed: Vec<usize>,
}

impl RemoteWriteSink {
    /// A receiver at `url`; requests carry `headers` over `tls` and at most `max_samples`
    /// samples each.
    pub(crate) fn new(
        url: Url,
        labels: Vec<(String, String)>,
        headers: HeaderMap,
        tls: http::TlsConfig,
        max_samples: usize,
    ) -> Self {
        let location = crate::log::shown(&url);
        RemoteWriteSink {
            about: About {
                kind: TargetKind::RemoteWrite,
                metrics_label: location.clone(),
                location,
                deletes_on_shutdown: false,
                endpoint: Some(url.clone()),
                replaces: false,
            },
            client: http::Client::new(url.clone(), headers, tls),
            url,
            labels,
            body_headers: self::headers(),
            sent_series: SentSeries::default(),
            max_samples,
            ranges: Vec::new(),
            failed: Vec::new(),
        }
    }

    /// `err` with, for an answer that says the request was too big, the bound that made it
    /// and the setting that lowers it.
    fn explain(&self, mut err: PushError) -> PushError {
        if let PushError::Status { status, body, .. } = &mut err {
            // VictoriaMetrics answers 400 naming `-maxInsertRequestSize`.
            if *status == 413 || body.contains("maxInsertRequestSize") {
                body.push_str(&format!(
                    " (each request carries at most {} samples: lower that with \
                     remote_write_max_samples or {})",
                    self.max_samples, "PUSHGATEWAY_REMOTE_WRITE_MAX_SAMPLES"
                ));
            }
        }
        err
    }
}

impl Sink for RemoteWriteSink {
    fn about(&self) -> &About {
        &self.about
    }

    /// Starts the client, and warms it with `GET /` of the receiver's origin: a remote-write
    /// URL takes writes only (VictoriaMetrics reads any request to it as one, and counts an
    /// empty one as an error), while the root reads nothing and changes nothing (Prometheus
    /// answers a redirect, VictoriaMetrics its index page). The URL's query stays (an access
    /// token there goes with every request).
    fn start(&mut self, rewarm: Option<Duration>, timeout: Duration) {
        self.client.start(&self.about.location);
        let mut url = self.url.clone();
        url.set_path("/");
        self.client.warm(url, rewarm, timeout);
    }

    fn encode(
        &mut self,
        snapshot: &Snapshot,
        created_ms: u64,
        buf: Vec<u8>,
        _scratch: &mut Vec<u8>,
    ) -> Result<Bytes, String> {
        self.failed.clear();
        let now = i64::try_from(created_ms).unwrap_or(i64::MAX);
        let mut encoder = BatchEncoder::new(self.max_samples, &mut self.sent_series, buf);
        encoder.add_snapshot(snapshot, &self.labels, now)?;
        let (body, ranges) = encoder.finish()?;
        self.ranges = ranges;
        // Until `send` says which requests arrived, none has: a push that is never sent (its
        // snapshot took the whole budget to prepare) is kept whole, as a Pushgateway's is.
        self.failed = (0..self.ranges.len()).collect();
        Ok(Bytes::from(body))
    }

    /// Sends each request of the push, [`CONCURRENT_REQUESTS`] at a time, each retried on
    /// its own until `deadline`. The report sums the attempts and bytes of all; the error is
    /// that of the first request the receiver did not take.
    async fn send(
        &mut self,
        push: &Push,
        body: &Bytes,
        in_flight: &Cell<bool>,
    ) -> Result<PushReport, PushError> {
        use futures_util::StreamExt as _;
        self.failed.clear();
        let location = self.about.location.as_str();
        let client = self.client.get(TargetKind::RemoteWrite, location)?;
        let started = Instant::now();
        let (url, headers) = (&self.url, &self.body_headers);
        let (deadline, budget) = (push.deadline, push.budget);
        in_flight.set(true);
        let mut results: Vec<(usize, Result<PushReport, PushError>)> =
            futures_util::stream::iter(self.ranges.iter().cloned().enumerate())
                .map(|(i, range)| async move {
                    let request = Request {
                        target: TargetKind::RemoteWrite,
                        url,
                        url_text: location,
                        method: reqwest::Method::POST,
                        headers,
                        body: body.slice(range),
                    };
                    let own = Cell::new(false);
                    (
                        i,
                        http::send(client, &request, deadline, budget, true, &own).await,
                    )
                })
                .buffer_unordered(CONCURRENT_REQUESTS)
                .collect()
                .await;
        in_flight.set(false);
        results.sort_by_key(|(i, _)| *i);
        let (mut attempts, mut status) = (0, None);
        let mut first_error = None;
        for (i, result) in results {
            match result {
                Ok(report) => {
                    attempts += report.attempts();
                    status = report.status();
                }
                Err(e) => {
                    attempts += e.attempts();
                    if e.worth_keeping() {
                        self.failed.push(i);
                    }
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => {
                if self.ranges.len() > 1 {
                    tracing::debug!(
                        failed = self.failed.len(),
                        requests = self.ranges.len(),
                        "requests of the push the receiver did not take"
                    );
                }
                Err(self.explain(e))
            }
            None => {
                // The receiver has these series now.
                self.sent_series.taken();
                Ok(PushReport::sent(
                    status,
                    attempts,
                    body.len(),
                    started.elapsed(),
                ))
            }
        }
    }

    /// A remote-write receiver has no such operation: success without a status.
    async fn delete(&mut self, _: Instant, _: Duration) -> Result<PushReport, PushError> {
        Ok(PushReport::sent(None, 0, 0, Duration::ZERO))
    }

    /// The requests of the push that did not arrive, and that the receiver did not refuse for
    /// their content: their samples keep their original timestamps.
    fn keep(&self, _push: &Push, body: &Bytes, failed: Option<&PushError>) -> Keep {
        if failed.is_none() || self.failed.is_empty() {
            return Keep::Nothing;
        }
        Keep::Requests(
            self.failed
                .iter()
                .filter_map(|&i| self.ranges.get(i))
                .map(|r| body.slice(r.clone()))
                .collect(),
        )
    }

    fn client(&self) -> Option<&reqwest::Client> {
        self.client
            .get(TargetKind::RemoteWrite, &self.about.location)
            .ok()
    }
}
