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
//!
//! [`MAX_CONNECTIONS`]: limits::MAX_CONNECTIONS
//! [`REPLACE_AFTER`]: limits::REPLACE_AFTER
//! [`MAX_HEADER_BYTES`]: limits::MAX_HEADER_BYTES
//! [`MAX_HEADERS`]: limits::MAX_HEADERS
//! [`HEADER_TIMEOUT`]: limits::HEADER_TIMEOUT
//! [`MAX_RESPONSES`]: limits::MAX_RESPONSES
//! [`WRITE_TIMEOUT`]: limits::WRITE_TIMEOUT
//! [`SEND_BUFFER`]: limits::SEND_BUFFER
//! [`CONNECTION_LIFETIME`]: limits::CONNECTION_LIFETIME

use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, Semaphore};

use crate::source::Renderer;
use crate::InitError;

#[cfg(unix)]
mod fork;
mod http;
mod limits;
mod serve;
mod slots;

use limits::MAX_RESPONSES;
use slots::Shared;

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
                serve::serve(socket, shared, stopped).await;
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

#[cfg(test)]
mod tests {
    use super::*;

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
