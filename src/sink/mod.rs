//! Where pushes go: the [`Sink`] trait the pusher loop knows, and one implementation per kind
//! of target — [`pushgateway`], [`remote_write`], [`textfile`] — over a shared retrying
//! HTTP transport ([`http`]); the Pushgateway protocol's URLs in [`group`]. A sink keeps
//! nothing of a failed push itself: it says what is worth keeping ([`Sink::keep`]), and the
//! spool (`spool::keeper`) keeps it.

mod answer;
pub(crate) mod group;
pub(crate) mod http;
pub(crate) mod pushgateway;
pub(crate) mod remote_write;
pub(crate) mod remote_write_wire;
pub(crate) mod textfile;

use std::cell::Cell;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::Url;

use crate::lifecycle::Outcome;
use crate::report::{PushError, PushReport};
use crate::snapshot::Snapshot;
use crate::target::{Format, PushMethod, TargetKind};

/// One push: what it reports, when its snapshot was taken, and its time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Push {
    pub(crate) outcome: Outcome,
    /// When the snapshot was taken, in milliseconds since the Unix epoch.
    pub(crate) created_ms: u64,
    /// When the push must be done, retries included.
    pub(crate) deadline: Instant,
    /// The push's whole time budget, of which `deadline` is the end.
    pub(crate) budget: Duration,
}

/// What a target is, as the pusher, the exporter's own metrics and the spool see it.
#[derive(Debug, Clone)]
pub(crate) struct About {
    pub(crate) kind: TargetKind,
    /// Where pushes go, for errors and reports: the group URL, the receiver's URL, the file.
    pub(crate) location: String,
    /// The `target` label of the exporter's own metrics: the gateway's endpoint, the
    /// receiver's URL, the directory.
    pub(crate) metrics_label: String,
    /// Whether [`delete_on_shutdown`](crate::PushgatewayBuilder::delete_on_shutdown) deletes
    /// at this target instead of making the final push.
    pub(crate) deletes_on_shutdown: bool,
    /// Where a spooled push is sent again, and which a spooled record names: the gateway's
    /// endpoint, the receiver's URL; none for a target that is never spooled.
    pub(crate) endpoint: Option<Url>,
    /// Whether a push replaces what the earlier pushes of its group sent (a Pushgateway's
    /// group). Then a push the target took makes the group's older spooled records obsolete,
    /// the final push is written to the spool before it is sent (sending it again changes
    /// nothing), and its deadline is not given to replaying the rest of the spool. Otherwise
    /// (remote write: every sample carries its own time) spooled records are never obsolete,
    /// nothing is written ahead, and a successful final push also replays what is spooled.
    pub(crate) replaces: bool,
}

/// What is worth keeping of a push, for the spool to write.
pub(crate) enum Keep {
    Nothing,
    /// The whole body, to be sent again as it was with `method`.
    Whole {
        method: PushMethod,
        format: Format,
    },
    /// These requests of the push (remote write), each to be sent again on its own.
    Requests(Vec<Bytes>),
}

/// One target's side of a push: how a snapshot is encoded for it, sent, deleted, and what of
/// a failed push is worth keeping. The pusher thread owns one sink (inside the spool's
/// `Spooled`) and calls it from its current-thread runtime, so the futures need not be
/// `Send`. All retries of a push happen inside [`send`](Self::send), within its deadline.
#[allow(async_fn_in_trait)]
pub(crate) trait Sink {
    fn about(&self) -> &About;

    /// Prepares the sink on the pusher thread's runtime, before its first push (the HTTP
    /// client), and opens the connection to the target in the background, sending nothing
    /// that changes anything there; again every `rewarm` if given; each try bounded by
    /// `timeout`, silent when it fails.
    fn start(&mut self, _rewarm: Option<Duration>, _timeout: Duration) {}

    /// Encodes `snapshot`, taken at `created_ms`, as this target takes it, into `buf` (a
    /// cleared buffer of an earlier push, to be reused) or a buffer of its own.
    fn encode(
        &mut self,
        snapshot: &Snapshot,
        created_ms: u64,
        buf: Vec<u8>,
        scratch: &mut Vec<u8>,
    ) -> Result<Bytes, String>;

    /// Sends `body`, retrying until the push's deadline; `in_flight` is true while a request
    /// is under way.
    async fn send(
        &mut self,
        push: &Push,
        body: &Bytes,
        in_flight: &Cell<bool>,
    ) -> Result<PushReport, PushError>;

    /// Removes what this job pushed (its group, its file); a target without such an
    /// operation reports success without a status.
    async fn delete(
        &mut self,
        deadline: Instant,
        budget: Duration,
    ) -> Result<PushReport, PushError>;

    /// What of `push`'s `body` is worth keeping: after it `failed` with that error, or
    /// (`None`) before a final push is sent, for a target whose pushes
    /// [`replace`](About::replaces) the earlier ones.
    fn keep(&self, _push: &Push, _body: &Bytes, _failed: Option<&PushError>) -> Keep {
        Keep::Nothing
    }

    /// The HTTP client a spooled push is sent again with, once started.
    fn client(&self) -> Option<&reqwest::Client> {
        None
    }
}

/// The error of a push that could not be prepared.
pub(crate) fn client_error(kind: TargetKind, location: &str, cause: String) -> PushError {
    PushError::Client {
        target: kind,
        url: location.to_owned(),
        cause,
    }
}
