//! The `/metrics` listener: an HTTP/1.1 endpoint serving the same snapshot the pushes take, for
//! Prometheus to scrape. Bound at install; served by hyper on a thread of its own
//! (`pushgateway-listener`) with its own current-thread tokio runtime, so that neither the
//! caller's runtime nor the pusher threads ever wait for a scraper; stopped when the final push
//! starts, closed (within the final push's bound) when it ends.
//!
//! Bounds, whatever the clients do: at most [`MAX_CONNECTIONS`] connections at once (when all
//! are taken, a new one replaces the connection idle the longest, one that has had no request
//! under way for at least [`REPLACE_AFTER`]; with none, new ones wait in the kernel's accept
//! queue); a request head of at most [`MAX_HEADER_BYTES`] bytes and [`MAX_HEADERS`] fields,
//! read within [`HEADER_TIMEOUT`] (a kept-alive connection that sends no next request in that
//! time is closed); request bodies are never read; at most [`MAX_RESPONSES`] rendered bodies
//! exist at once; a connection whose client reads nothing of its answer for [`WRITE_TIMEOUT`]
//! is closed, and the kernel holds at most [`SEND_BUFFER`] of it (doubled); a connection
//! lives at most [`CONNECTION_LIFETIME`]. `HEAD` is answered without rendering. The listening
//! socket is close-on-exec, and closed in a child forked without exec (Unix).

use std::net::{SocketAddr, TcpListener as StdListener};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use hyper::header::{HeaderValue, ACCEPT, ALLOW, CONNECTION, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{oneshot, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::{AbortHandle, JoinSet};

use crate::encode::protobuf::PROTOBUF_FORMAT;
use crate::encode::TEXT_FORMAT;
use crate::source::Renderer;
use crate::InitError;

/// Connections served at once.
pub(crate) const MAX_CONNECTIONS: usize = 32;
/// The largest request head (request line and headers) read, in bytes; more is answered 431.
pub(crate) const MAX_HEADER_BYTES: usize = 16 * 1024;
/// The most header fields a request may have.
pub(crate) const MAX_HEADERS: usize = 64;
/// Time a client has to send a whole request head once the connection is open or its last
/// answer was sent (Prometheus sends its request as soon as it connects).
pub(crate) const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Bodies rendered, or rendered and not yet handed to the socket, at once: what clients that
/// ask and do not read can make the process hold.
pub(crate) const MAX_RESPONSES: usize = 4;
/// The longest a write to a client may stay blocked (the client reads nothing) before its
/// connection is closed.
pub(crate) const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// The send buffer the kernel keeps for each connection, in bytes (it doubles the figure for
/// its own bookkeeping): what a client that does not read leaves in the kernel is bounded too.
/// 128 KiB still sends 1 MB/s or more over a 100 ms round trip.
pub(crate) const SEND_BUFFER: usize = 128 * 1024;
/// The longest a connection is kept, however busy.
pub(crate) const CONNECTION_LIFETIME: Duration = Duration::from_secs(300);
/// The size of the pieces a body is handed to the connection in: hyper takes the next only
/// when the last has (nearly) left, so an unread body stays where it is counted.
const CHUNK: usize = 64 * 1024;
/// How long a connection must have been idle before a new one may replace it: time enough
/// for a scraper on a loaded host to send its request once connected.
const REPLACE_AFTER: Duration = Duration::from_millis(250);
/// How often the accept loop looks again for a connection to replace while every place is
/// taken.
const RECHECK: Duration = Duration::from_millis(50);
/// How long dropping a listener outside a final push waits for its thread.
const DROP_WAIT: Duration = Duration::from_secs(1);

/// The listener's thread, and how to stop it.
#[derive(Debug)]
pub(crate) struct Listener {
    addr: SocketAddr,
    closing: Arc<AtomicBool>,
    stop: Option<oneshot::Sender<()>>,
    ended: Arc<Ended>,
    thread: Option<JoinHandle<()>>,
}

/// Set by the listener's thread once its socket and every connection are closed.
#[derive(Debug, Default)]
struct Ended {
    done: Mutex<bool>,
    changed: Condvar,
}

impl Ended {
    fn set(&self) {
        *self.done.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.changed.notify_all();
    }

    /// Whether it is set, waiting for it until `deadline`.
    fn wait_until(&self, deadline: Instant) -> bool {
        let done = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        let left = deadline.saturating_duration_since(Instant::now());
        let (done, _) = self
            .changed
            .wait_timeout_while(done, left, |done| !*done)
            .unwrap_or_else(PoisonError::into_inner);
        *done
    }
}

/// A bound socket whose thread has not started yet: what `install` holds between the checks
/// and the start.
#[derive(Debug)]
pub(crate) struct Bound {
    socket: StdListener,
    addr: SocketAddr,
}

/// Checks that `text` is an IP address and a port (`0.0.0.0:9100`, `127.0.0.1:9100`,
/// `[::1]:9100`), as the setting and the environment variable take it. Host names are refused,
/// not resolved: installing never waits for a name server.
pub(crate) fn check_addr(text: &str) -> Result<(), String> {
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(
            "expected host:port with an IP address, e.g. 0.0.0.0:9100 or \
                    127.0.0.1:9100"
                .into(),
        );
    };
    if host.is_empty() {
        return Err("the host is missing: 0.0.0.0:PORT listens on every interface".into());
    }
    port.parse::<u16>()
        .map_err(|_| format!("the port {port:?} is not a number from 0 to 65535"))?;
    text.parse::<SocketAddr>().map(|_| ()).map_err(|_| {
        format!(
            "{host:?} is not an IP address: give one (0.0.0.0 for every interface, 127.0.0.1 \
             or [::1] for this host only); host names are not resolved"
        )
    })
}

/// Binds `addr`; an error names the address and the setting (or variable) that gave it.
pub(crate) fn bind(addr: &str, setting: &'static str) -> Result<Bound, InitError> {
    let error = |reason: String| InitError::Listen {
        addr: addr.to_owned(),
        setting,
        reason,
    };
    check_addr(addr).map_err(error)?;
    let parsed: SocketAddr = addr.parse().map_err(|_| error("not an address".into()))?;
    // std opens sockets close-on-exec.
    let socket = StdListener::bind(parsed).map_err(|e| error(e.to_string()))?;
    let local = socket
        .local_addr()
        .and_then(|local| socket.set_nonblocking(true).map(|()| local))
        .map_err(|e| error(e.to_string()))?;
    Ok(Bound {
        socket,
        addr: local,
    })
}

impl Bound {
    /// Starts serving on the listener's thread.
    pub(crate) fn start(self, renderer: Arc<Renderer>) -> std::io::Result<Listener> {
        let (stop, stopped) = oneshot::channel();
        let closing = Arc::new(AtomicBool::new(false));
        let ended = Arc::new(Ended::default());
        let socket = self.socket;
        let shared = Arc::new(Shared {
            renderer,
            closing: Arc::clone(&closing),
            responses: Arc::new(Semaphore::new(MAX_RESPONSES)),
            epoch: Instant::now(),
        });
        let thread_ended = Arc::clone(&ended);
        #[cfg(unix)]
        fork::watch(std::os::fd::AsRawFd::as_raw_fd(&socket));
        let thread = crate::runtime::thread::spawn_with_runtime(
            "pushgateway-listener".into(),
            "metrics cannot be scraped",
            move || async move {
                serve(socket, shared, stopped).await;
                thread_ended.set();
            },
        );
        let thread = match thread {
            Ok(thread) => thread,
            Err(e) => {
                #[cfg(unix)]
                fork::forget();
                return Err(e);
            }
        };
        Ok(Listener {
            addr: self.addr,
            closing,
            stop: Some(stop),
            ended,
            thread: Some(thread),
        })
    }
}

impl Listener {
    /// The address it listens on (with the port the system chose, for port 0).
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops taking connections and rendering requests, at once: no request is rendered after
    /// this returns (one already being rendered finishes), and the thread closes the socket and
    /// every connection as soon as it is free. Does not wait.
    pub(crate) fn stop(&mut self) {
        self.closing.store(true, Ordering::SeqCst);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Stops it and waits, until `deadline` at most, for the socket and every connection to be
    /// closed; returns whether they were. A thread that is not done by then ends by itself
    /// (after the render it is in).
    pub(crate) fn close(mut self, deadline: Instant) -> bool {
        self.stop();
        self.wait(deadline)
    }

    fn wait(&mut self, deadline: Instant) -> bool {
        let Some(thread) = self.thread.take() else {
            return true;
        };
        if thread.thread().id() == std::thread::current().id() {
            return false;
        }
        if self.ended.wait_until(deadline) {
            let _ = thread.join();
            true
        } else {
            false
        }
    }
}

impl Drop for Listener {
    /// Stops it and waits, at most a second, for the port to be free.
    fn drop(&mut self) {
        self.stop();
        self.wait(Instant::now() + DROP_WAIT);
    }
}

/// What every connection of one listener shares.
struct Shared {
    renderer: Arc<Renderer>,
    /// Set when the final push starts: nothing is rendered after it.
    closing: Arc<AtomicBool>,
    /// One permit per body in flight ([`MAX_RESPONSES`]).
    responses: Arc<Semaphore>,
    /// What [`Activity::idle_since`] counts from.
    epoch: Instant,
}

impl Shared {
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// A look at a connection's socket, without reading from it: whether its client has closed
/// it (hyper does not notice while a request waits for its answer).
struct Probe {
    #[cfg(unix)]
    socket: std::os::fd::RawFd,
    #[cfg(windows)]
    socket: std::os::windows::io::RawSocket,
}

impl Probe {
    fn of(stream: &tokio::net::TcpStream) -> Self {
        Probe {
            #[cfg(unix)]
            socket: std::os::fd::AsRawFd::as_raw_fd(stream),
            #[cfg(windows)]
            socket: std::os::windows::io::AsRawSocket::as_raw_socket(stream),
        }
    }

    /// Whether the client closed the connection, or it failed.
    fn gone(&self) -> bool {
        let mut byte = [std::mem::MaybeUninit::<u8>::uninit(); 1];
        // SAFETY: the socket stays open while its connection's task, which owns the stream and
        // the requests asking this, runs.
        #[cfg(unix)]
        let socket = unsafe { std::os::fd::BorrowedFd::borrow_raw(self.socket) };
        // SAFETY: as above.
        #[cfg(windows)]
        let socket = unsafe { std::os::windows::io::BorrowedSocket::borrow_raw(self.socket) };
        // The socket is non-blocking (tokio's): no data yet is `WouldBlock`, the end is 0.
        match socket2::SockRef::from(&socket).peek(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
        }
    }
}

/// What one connection is doing, as the accept loop sees it.
struct Activity {
    probe: Probe,
    /// Requests being answered (head read, body not yet all handed to the socket).
    in_flight: AtomicUsize,
    /// When it last had no request under way (ns since [`Shared::epoch`]).
    idle_since: AtomicU64,
}

/// One open connection.
struct Open {
    id: u64,
    activity: Arc<Activity>,
    abort: AbortHandle,
}

/// The open connections: what the accept loop counts and evicts from.
#[derive(Default)]
struct Table {
    open: Mutex<Vec<Open>>,
    /// Told when a connection ends or becomes idle: there may be room now.
    changed: Notify,
}

impl Table {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Open>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The connection idle the longest, if it has been idle for [`REPLACE_AFTER`] (`now`: ns
    /// since [`Shared::epoch`]).
    fn replaceable(open: &[Open], now: u64) -> Option<usize> {
        let after = u64::try_from(REPLACE_AFTER.as_nanos()).unwrap_or(u64::MAX);
        open.iter()
            .enumerate()
            .filter(|(_, c)| c.activity.in_flight.load(Ordering::SeqCst) == 0)
            .map(|(i, c)| (i, c.activity.idle_since.load(Ordering::SeqCst)))
            .filter(|(_, since)| now.saturating_sub(*since) >= after)
            .min_by_key(|(_, since)| *since)
            .map(|(i, _)| i)
    }

    /// Whether one more connection can be taken: a free place, or an idle one to replace.
    fn has_room(&self, now: u64) -> bool {
        let open = self.lock();
        open.len() < MAX_CONNECTIONS || Self::replaceable(&open, now).is_some()
    }

    /// Makes a place for one more connection, closing the one idle the longest if every place
    /// is taken; false when none can be closed.
    fn make_room(&self, now: u64) -> bool {
        let mut open = self.lock();
        if open.len() < MAX_CONNECTIONS {
            return true;
        }
        let oldest = Self::replaceable(&open, now);
        match oldest {
            Some(i) => {
                open.swap_remove(i).abort.abort();
                true
            }
            None => false,
        }
    }

    fn remove(&self, id: u64) {
        self.lock().retain(|c| c.id != id);
        self.changed.notify_one();
    }
}

/// Takes a connection out of the table when its task ends, however it ends.
struct Leaving {
    table: Arc<Table>,
    id: u64,
}

impl Drop for Leaving {
    fn drop(&mut self) {
        self.table.remove(self.id);
    }
}

async fn serve(socket: StdListener, shared: Arc<Shared>, mut stopped: oneshot::Receiver<()>) {
    let listener = match tokio::net::TcpListener::from_std(socket) {
        Ok(l) => l,
        Err(e) => {
            crate::log::report(&format!("metrics cannot be scraped: {e}"));
            #[cfg(unix)]
            fork::forget();
            return;
        }
    };
    let table = Arc::new(Table::default());
    let mut tasks = JoinSet::new();
    let mut next_id = 0u64;
    loop {
        while tasks.try_join_next().is_some() {}
        // Room first: with every connection busy, new ones wait in the accept queue.
        if !table.has_room(shared.now()) {
            tokio::select! {
                biased;
                _ = &mut stopped => break,
                () = table.changed.notified() => continue,
                () = tokio::time::sleep(RECHECK) => continue,
            }
        }
        let accepted = tokio::select! {
            biased;
            _ = &mut stopped => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::debug!(error = %e, "the metrics listener failed to accept a connection");
                // E.g. out of file descriptors: do not spin.
                tokio::select! {
                    biased;
                    _ = &mut stopped => break,
                    () = tokio::time::sleep(Duration::from_millis(50)) => continue,
                }
            }
        };
        // Every connection may have become busy meanwhile: then this one waits.
        let mut stop_now = false;
        while !table.make_room(shared.now()) {
            tokio::select! {
                biased;
                _ = &mut stopped => { stop_now = true; break; }
                () = table.changed.notified() => {}
                () = tokio::time::sleep(RECHECK) => {}
            }
        }
        if stop_now {
            break;
        }
        next_id += 1;
        let id = next_id;
        let activity = Arc::new(Activity {
            probe: Probe::of(&stream),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(shared.now()),
        });
        let leaving = Leaving {
            table: Arc::clone(&table),
            id,
        };
        let abort = tasks.spawn(connection(
            stream,
            Arc::clone(&shared),
            Arc::clone(&activity),
            Arc::clone(&table),
            leaving,
        ));
        table.lock().push(Open {
            id,
            activity,
            abort,
        });
        // Its task reads the request head (already there, from a scraper) before this takes
        // the next connection, which could otherwise replace it as idle.
        tokio::task::yield_now().await;
    }
    // Every connection ends here (a render cannot be under way: this thread is running), then
    // the socket closes.
    tasks.shutdown().await;
    #[cfg(unix)]
    fork::closing(move || drop(listener));
    #[cfg(not(unix))]
    drop(listener);
}

/// Serves one connection until it closes, fails, times out or is evicted.
async fn connection(
    stream: tokio::net::TcpStream,
    shared: Arc<Shared>,
    activity: Arc<Activity>,
    table: Arc<Table>,
    _leaving: Leaving,
) {
    // What the kernel holds for a client that does not read: the rest stays in the body,
    // counted in the permits.
    if let Err(e) = socket2::SockRef::from(&stream).set_send_buffer_size(SEND_BUFFER) {
        tracing::debug!(error = %e, "the metrics listener could not size a send buffer");
    }
    let mut io = tokio_io_timeout::TimeoutStream::new(stream);
    io.set_write_timeout(Some(WRITE_TIMEOUT));
    let io = TokioIo::new(Box::pin(io));
    let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
        let busy = Busy::new(Arc::clone(&activity), Arc::clone(&table), &shared);
        let shared = Arc::clone(&shared);
        async move { Ok::<_, std::convert::Infallible>(answer(&request, &shared, busy).await) }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES)
        .max_headers(MAX_HEADERS)
        .serve_connection(io, service);
    let _ = tokio::time::timeout(CONNECTION_LIFETIME, connection).await;
}

/// One request under way on a connection: from its head to the last piece of its body handed
/// to the socket (or the connection's end).
struct Busy {
    activity: Arc<Activity>,
    table: Arc<Table>,
    shared: Arc<Shared>,
}

impl Busy {
    fn new(activity: Arc<Activity>, table: Arc<Table>, shared: &Arc<Shared>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::SeqCst);
        Busy {
            activity,
            table,
            shared: Arc::clone(shared),
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.activity
            .idle_since
            .store(self.shared.now(), Ordering::SeqCst);
        if self.activity.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.table.changed.notify_one();
        }
    }
}

/// An answer's body, handed to the connection in pieces of [`CHUNK`] bytes; it holds its
/// request's [`Busy`] and, for a rendered body, its permit, until the last piece is taken.
struct Body {
    rest: Bytes,
    _busy: Busy,
    _permit: Option<OwnedSemaphorePermit>,
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.rest.is_empty() {
            return Poll::Ready(None);
        }
        let n = self.rest.len().min(CHUNK);
        Poll::Ready(Some(Ok(Frame::data(self.rest.split_to(n)))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.rest.len() as u64)
    }
}

/// The format a scrape gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Text,
    Protobuf,
}

/// The format for an `Accept` header, chosen as client_golang's `promhttp` chooses it
/// (`expfmt.Negotiate`): media ranges by quality (highest first; `*` ranges after specific ones
/// of the same quality), the first that is delimited protobuf `MetricFamily` messages or text
/// 0.0.4 (`text/plain` without a version, too) wins; nothing acceptable, or no header, is
/// text. A range with `q=0` is not acceptable.
pub(crate) fn negotiate<'a>(accept: impl Iterator<Item = &'a str>) -> Format {
    struct Range<'a> {
        kind: &'a str,
        subtype: &'a str,
        params: Vec<(&'a str, &'a str)>,
        q: f64,
    }
    let mut ranges: Vec<Range<'_>> = accept
        .flat_map(|header| header.split(','))
        .filter_map(|part| {
            let mut pieces = part.split(';');
            let media = pieces.next()?.trim();
            let (kind, subtype) = match media.split_once('/') {
                Some((k, s)) => (k.trim(), s.trim()),
                None if media == "*" => ("*", "*"),
                None => return None,
            };
            let mut range = Range {
                kind,
                subtype,
                params: Vec::new(),
                q: 1.0,
            };
            for param in pieces {
                let Some((name, value)) = param.split_once('=') else {
                    continue;
                };
                let (name, value) = (name.trim(), value.trim().trim_matches('"'));
                if name == "q" {
                    range.q = value.parse().unwrap_or(0.0);
                } else {
                    range.params.push((name, value));
                }
            }
            Some(range)
        })
        .filter(|r| r.q > 0.0)
        .collect();
    ranges.sort_by(|a, b| {
        b.q.total_cmp(&a.q)
            .then_with(|| (a.kind == "*").cmp(&(b.kind == "*")))
            .then_with(|| (a.subtype == "*").cmp(&(b.subtype == "*")))
    });
    for range in &ranges {
        let param = |name: &str| {
            range
                .params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
        };
        if range.kind.eq_ignore_ascii_case("application")
            && range.subtype.eq_ignore_ascii_case("vnd.google.protobuf")
            && param("proto") == Some("io.prometheus.client.MetricFamily")
            && param("encoding") == Some("delimited")
        {
            return Format::Protobuf;
        }
        if range.kind.eq_ignore_ascii_case("text")
            && range.subtype.eq_ignore_ascii_case("plain")
            && matches!(param("version"), None | Some("0.0.4"))
        {
            return Format::Text;
        }
    }
    Format::Text
}

fn plain(status: StatusCode, text: &'static str, busy: Busy) -> Response<Body> {
    let mut response = Response::new(Body {
        rest: Bytes::from_static(text.as_bytes()),
        _busy: busy,
        _permit: None,
    });
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The answer once the final push has started: nothing more is rendered.
fn closing(busy: Busy) -> Response<Body> {
    let mut response = plain(
        StatusCode::SERVICE_UNAVAILABLE,
        "the process is ending: its final values go to its push targets\n",
        busy,
    );
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The answer to one request: the snapshot of this moment for `GET /metrics`; for `HEAD` the
/// same headers without rendering (the body's length is not known without it); 404 for
/// another path, 405 for another method; 503 once the final push has started.
async fn answer<B>(request: &Request<B>, shared: &Shared, busy: Busy) -> Response<Body> {
    if request.uri().path() != "/metrics" {
        return plain(
            StatusCode::NOT_FOUND,
            "not found: metrics are at /metrics\n",
            busy,
        );
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed: /metrics answers GET\n",
            busy,
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    if shared.closing.load(Ordering::SeqCst) {
        return closing(busy);
    }
    let format = negotiate(
        request
            .headers()
            .get_all(ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    );
    let content_type = match format {
        Format::Text => TEXT_FORMAT,
        Format::Protobuf => PROTOBUF_FORMAT,
    };
    let (body, permit) = if request.method() == Method::HEAD {
        (Bytes::new(), None)
    } else {
        let Ok(permit) = Arc::clone(&shared.responses).acquire_owned().await else {
            return closing(busy);
        };
        // The final push may have started while this waited, or the client given up.
        if shared.closing.load(Ordering::SeqCst) {
            return closing(busy);
        }
        if busy.activity.probe.gone() {
            return plain(StatusCode::SERVICE_UNAVAILABLE, "", busy);
        }
        (render(&shared.renderer, format), Some(permit))
    };
    let mut response = Response::new(Body {
        rest: body,
        _busy: busy,
        _permit: permit,
    });
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// The body of a scrape: the snapshot of this moment in `format`.
fn render(renderer: &Renderer, format: Format) -> Bytes {
    let snapshot = renderer.scrape_snapshot();
    let mut body = Vec::new();
    match format {
        Format::Text => crate::encode::text(&snapshot, &[], &mut body),
        Format::Protobuf => {
            crate::encode::protobuf::encode(&snapshot, &mut body, &mut Vec::new());
        }
    }
    // A body held unread holds its length, not its growth's spare room.
    body.shrink_to_fit();
    Bytes::from(body)
}

/// Closes the listening socket in a child forked without exec (Unix): the child has no
/// listener thread to serve it, and a socket it kept would accept connections nobody answers
/// and keep the port from the next run once the parent is gone.
#[cfg(unix)]
mod fork {
    use std::os::fd::RawFd;
    use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
    use std::sync::Once;

    /// The listening socket, or -1.
    static FD: AtomicI32 = AtomicI32::new(-1);
    /// Held while the socket closes, and across a fork: the child never sees a number that
    /// was closed and may have been given to another file meanwhile.
    static LOCK: AtomicBool = AtomicBool::new(false);
    static REGISTER: Once = Once::new();

    fn lock() {
        while LOCK
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::hint::spin_loop();
        }
    }

    fn unlock() {
        LOCK.store(false, Ordering::Release);
    }

    extern "C" fn prepare() {
        lock();
    }

    extern "C" fn parent() {
        unlock();
    }

    extern "C" fn child() {
        let fd = FD.swap(-1, Ordering::SeqCst);
        if fd >= 0 {
            // SAFETY: close is async-signal-safe; the number is the listening socket's
            // (the parent clears it under the lock before closing it).
            unsafe { libc::close(fd) };
        }
        unlock();
    }

    /// Closes `fd` in every child forked from now on.
    pub(super) fn watch(fd: RawFd) {
        REGISTER.call_once(|| {
            // SAFETY: the handlers only touch atomics and call close.
            let failed =
                unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) } != 0;
            if failed {
                tracing::debug!("pthread_atfork failed: a forked child keeps the listening socket");
            }
        });
        lock();
        FD.store(fd, Ordering::SeqCst);
        unlock();
    }

    /// Runs `close`, which closes the watched socket, so that no fork sees its number after.
    pub(super) fn closing(close: impl FnOnce()) {
        lock();
        FD.store(-1, Ordering::SeqCst);
        close();
        unlock();
    }

    /// Stops watching (the socket was not handed to a thread).
    pub(super) fn forget() {
        lock();
        FD.store(-1, Ordering::SeqCst);
        unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(accept: &str) -> Format {
        negotiate(std::iter::once(accept))
    }

    #[test]
    fn negotiation_follows_promhttp() {
        let proto = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;\
                     encoding=delimited";
        assert_eq!(of(proto), Format::Protobuf);
        // What Prometheus 2.x sends with its protobuf scrape feature on.
        assert_eq!(
            of(&format!(
                "{proto};q=0.5,application/openmetrics-text;version=1.0.0;q=0.4,\
                 text/plain;version=0.0.4;q=0.3,*/*;q=0.1"
            )),
            Format::Protobuf
        );
        // Text preferred over protobuf.
        assert_eq!(
            of(&format!("text/plain;version=0.0.4;q=0.9,{proto};q=0.5")),
            Format::Text
        );
        // Quality decides, not order.
        assert_eq!(
            of(&format!("text/plain;version=0.0.4;q=0.3,{proto};q=0.5")),
            Format::Protobuf
        );
        // Protobuf that is not delimited, or not MetricFamily, is not served.
        assert_eq!(
            of(
                "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;\
                encoding=text"
            ),
            Format::Text
        );
        assert_eq!(
            of("application/vnd.google.protobuf;proto=other;encoding=delimited"),
            Format::Text
        );
        // Not acceptable at all: q=0.
        assert_eq!(of(&format!("{proto};q=0")), Format::Text);
        for text in [
            "",
            "*/*",
            "text/plain",
            "application/openmetrics-text;version=1.0.0",
            "garbage",
        ] {
            assert_eq!(of(text), Format::Text, "{text:?}");
        }
    }

    #[test]
    fn addresses_must_be_host_and_port() {
        assert!(check_addr("0.0.0.0:9100").is_ok());
        assert!(check_addr("[::1]:9100").is_ok());
        assert!(check_addr("[::]:0").is_ok());
        for (bad, reason) in [
            ("localhost:0", "\"localhost\" is not an IP address"),
            ("metrics.example:9100", "host names are not resolved"),
            ("::1:9100", "is not an IP address"),
            ("9100", "expected host:port"),
            (":9100", "the host is missing"),
            ("127.0.0.1:http", "is not a number"),
            ("127.0.0.1:70000", "is not a number"),
        ] {
            let error = check_addr(bad).unwrap_err();
            assert!(error.contains(reason), "{bad}: {error}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn the_listening_socket_is_close_on_exec() {
        use std::os::fd::AsRawFd as _;
        let bound = bind("127.0.0.1:0", "test").unwrap();
        // SAFETY: F_GETFD on an open descriptor.
        let flags = unsafe { libc::fcntl(bound.socket.as_raw_fd(), libc::F_GETFD) };
        assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
    }
}
