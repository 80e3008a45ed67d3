//! Where pushes go: the [`Sink`] trait the pusher loop knows, and one implementation per kind
//! of target — [`pushgateway`], [`remote_write`], [`textfile`] — over a shared retrying
//! HTTP transport ([`http`]); the Pushgateway protocol's URLs in [`group`], the replay of its
//! spooled pushes in [`replay`].

mod answer;
pub(crate) mod group;
pub(crate) mod http;
pub(crate) mod pushgateway;
pub(crate) mod remote_write;
pub(crate) mod remote_write_wire;
pub(crate) mod replay;
pub(crate) mod textfile;

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::lifecycle::Outcome;
use crate::registry::Registry;
use crate::report::{PushError, PushReport};
use crate::snapshot::Snapshot;
use crate::target::TargetKind;

/// One target's side of a push: how a snapshot is encoded for it, sent, deleted, and what is
/// done with a push that failed. The pusher thread owns one sink and calls it from its
/// current-thread runtime, so the futures need not be `Send`. All retries of a push happen
/// inside [`send`](Self::send), within the deadline it is given.
#[allow(async_fn_in_trait)]
pub(crate) trait Sink {
    fn kind(&self) -> TargetKind;

    /// Where pushes go, for errors and reports: the group URL, the receiver's URL, the file.
    fn location(&self) -> &str;

    /// The `target` label of the exporter's own metrics: the gateway's endpoint, the
    /// receiver's URL, the directory.
    fn metrics_label(&self) -> String;

    /// Prepares the sink on the pusher thread, before its first push: the HTTP client, the
    /// spool and its metrics (registered in `registry` when `self_metrics`).
    fn start(&mut self, registry: &Arc<Registry>, self_metrics: bool);

    /// Opens the connection to the target ahead of the first push, in the background of the
    /// pusher thread's runtime, sending nothing that changes anything there; again every
    /// `every` if given; each try bounded by `timeout`, silent when it fails. A target that
    /// is not reached over HTTP does nothing.
    fn warm(&self, _every: Option<Duration>, _timeout: Duration) {}

    /// Encodes `snapshot` as this target takes it, into `buf` (a cleared buffer of an earlier
    /// push, to be reused) or a buffer of its own.
    fn encode(
        &mut self,
        snapshot: &Snapshot,
        created_ms: u64,
        buf: Vec<u8>,
        scratch: &mut Vec<u8>,
    ) -> Result<Bytes, String>;

    /// Sends `body`, the push for `outcome`, retrying until `deadline`; `in_flight` is true
    /// while a request is under way.
    async fn send(
        &mut self,
        outcome: Outcome,
        body: &Bytes,
        deadline: Instant,
        budget: Duration,
        in_flight: &Cell<bool>,
    ) -> Result<PushReport, PushError>;

    /// After a push of `body` made at `created_ms`: the target took it (`Ok`), or not. A sink
    /// may keep a failed push (the spool; see [`take_note`](Self::take_note)). Returns the body
    /// when nothing kept it, so that its buffer can serve the next push.
    fn settle(
        &mut self,
        outcome: Outcome,
        created_ms: u64,
        body: Bytes,
        result: &Result<PushReport, PushError>,
    ) -> Option<Bytes>;

    /// Whether a failed push's body is kept (a spool): the final push then waits for it to be
    /// written, a little past its deadline if need be.
    fn keeps_failed(&self) -> bool {
        false
    }

    /// What became of the body of the push [`settle`](Self::settle) last saw fail (e.g.
    /// "kept in the spool as ..."), to be said on that push's one line.
    fn take_note(&mut self) -> Option<String> {
        None
    }

    /// Removes what this job pushed (its group, its file); a target without such an
    /// operation reports success without a status.
    async fn delete(
        &mut self,
        deadline: Instant,
        budget: Duration,
    ) -> Result<PushReport, PushError>;

    /// Whether [`delete_on_shutdown`](crate::PushgatewayBuilder::delete_on_shutdown) deletes
    /// at this target instead of making the final push.
    fn deletes_on_shutdown(&self) -> bool {
        true
    }

    /// Whether the sink has work of its own to do between commands (a spool replay).
    fn has_background_work(&self) -> bool {
        false
    }

    /// One step of that work, within `timeout`.
    async fn background_step(&mut self, _in_flight: &Cell<bool>, _timeout: Duration) {}

    /// That work until `deadline`, after a successful final push.
    async fn drain(&mut self, _deadline: Instant) {}
}

/// The error of a push that could not be prepared.
pub(crate) fn client_error(kind: TargetKind, location: &str, cause: String) -> PushError {
    PushError::Client {
        target: kind,
        url: location.to_owned(),
        cause,
    }
}
