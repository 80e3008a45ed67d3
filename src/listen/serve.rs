//! The accept loop and the serving of one connection.

use std::net::TcpListener as StdListener;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;
use std::time::Duration;

use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

#[cfg(unix)]
use super::fork;
use super::http::answer;
use super::limits::{
    CONNECTION_LIFETIME, HEADER_TIMEOUT, MAX_HEADERS, MAX_HEADER_BYTES, SEND_BUFFER, WRITE_TIMEOUT,
};
use super::slots::{Activity, Busy, Leaving, Open, Probe, Shared, Table};

/// How often the accept loop looks again for a connection to replace while every place is
/// taken.
const RECHECK: Duration = Duration::from_millis(50);

pub(super) async fn serve(
    socket: StdListener,
    shared: Arc<Shared>,
    mut stopped: oneshot::Receiver<()>,
) {
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
