//! The Pushgateway target: one job's group on one gateway, the method of each push, and what
//! of a failed push the spool keeps (the whole body).

use std::cell::Cell;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::HeaderMap;
use reqwest::Url;

use super::group::{push_headers, url_for};
use super::http::{self, Request};
use super::{About, Keep, Push, Sink};
use crate::lifecycle::Outcome;
use crate::protocol::{protobuf, text};
use crate::report::{PushError, PushReport};
use crate::snapshot::Snapshot;
use crate::target::{Format, PushMethod, TargetKind};

/// A Pushgateway target: one job's group on one gateway.
pub(crate) struct PushgatewaySink {
    about: About,
    /// The gateway's endpoint (with any path prefix).
    endpoint: Url,
    /// This job's group URL.
    url: Url,
    method: PushMethod,
    format: Format,
    /// Whether pushes carry the lifecycle metrics (then only a successful run replaces the
    /// group).
    lifecycle: bool,
    body_headers: HeaderMap,
    client: http::Client,
}

/// How a Pushgateway target pushes.
pub(crate) struct Settings {
    pub(crate) method: PushMethod,
    pub(crate) gzip: bool,
    pub(crate) protobuf: bool,
    pub(crate) lifecycle: bool,
}

impl PushgatewaySink {
    /// The group `group` (a [`group_path`](super::group::group_path)) on the gateway at
    /// `endpoint`; requests carry `headers` over `tls`.
    pub(crate) fn new(
        endpoint: Url,
        group: &str,
        settings: Settings,
        headers: HeaderMap,
        tls: http::TlsConfig,
    ) -> Self {
        let url = url_for(&endpoint, group);
        let location = crate::log::shown(&url);
        PushgatewaySink {
            about: About {
                kind: TargetKind::Pushgateway,
                metrics_label: crate::log::shown(&endpoint),
                location,
                deletes_on_shutdown: true,
                endpoint: Some(endpoint.clone()),
                replaces: true,
            },
            client: http::Client::new(url.clone(), headers, tls),
            body_headers: push_headers(settings.gzip, settings.protobuf),
            endpoint,
            url,
            method: settings.method,
            format: Format::pushgateway(settings.protobuf, settings.gzip),
            lifecycle: settings.lifecycle,
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
}

impl Sink for PushgatewaySink {
    fn about(&self) -> &About {
        &self.about
    }

    /// Starts the client, and warms it with `GET {endpoint}/-/healthy`: Pushgateway's health
    /// check (1.5.1 answers `200 OK`), which reads nothing and changes nothing, behind the
    /// same path prefix as the pushes.
    fn start(&mut self, rewarm: Option<Duration>, timeout: Duration) {
        self.client.start(&self.about.location);
        let mut url = self.endpoint.clone();
        let path = format!("{}/-/healthy", self.endpoint.path().trim_end_matches('/'));
        url.set_path(&path);
        self.client.warm(url, rewarm, timeout);
    }

    fn encode(
        &mut self,
        snapshot: &Snapshot,
        _created_ms: u64,
        mut buf: Vec<u8>,
        scratch: &mut Vec<u8>,
    ) -> Result<Bytes, String> {
        if self.format.is_protobuf() {
            protobuf::encode(snapshot, &mut buf, scratch);
        } else {
            text::text(snapshot, &[], &mut buf);
        }
        if !self.format.is_gzip() {
            return Ok(Bytes::from(buf));
        }
        crate::compression::gzip(&buf)
            .map(Bytes::from)
            .map_err(|e| format!("gzip compression failed: {e}"))
    }

    async fn send(
        &mut self,
        push: &Push,
        body: &Bytes,
        in_flight: &Cell<bool>,
    ) -> Result<PushReport, PushError> {
        let client = self
            .client
            .get(TargetKind::Pushgateway, &self.about.location)?;
        let request = Request::push(
            &self.url,
            &self.about.location,
            self.method(push.outcome),
            &self.body_headers,
            body.clone(),
        );
        let hedge = push
            .outcome
            .is_final()
            .then(|| self.client.hedge(push.budget))
            .flatten();
        http::send_hedged(
            client,
            &request,
            push.deadline,
            push.budget,
            true,
            hedge,
            in_flight,
        )
        .await
    }

    async fn delete(
        &mut self,
        deadline: Instant,
        budget: Duration,
    ) -> Result<PushReport, PushError> {
        let client = self
            .client
            .get(TargetKind::Pushgateway, &self.about.location)?;
        let request = Request::delete(&self.url, &self.about.location);
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

    /// The whole body, sent again as it was pushed; not when the gateway refused the body
    /// itself.
    fn keep(&self, push: &Push, _body: &Bytes, failed: Option<&PushError>) -> Keep {
        match failed {
            Some(e) if !e.worth_keeping() => Keep::Nothing,
            _ => Keep::Whole {
                method: self.method(push.outcome),
                format: self.format,
            },
        }
    }

    fn client(&self) -> Option<&reqwest::Client> {
        self.client
            .get(TargetKind::Pushgateway, &self.about.location)
            .ok()
    }
}
