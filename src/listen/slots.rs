//! The connection slots: what the accept loop counts, and which connection it evicts for a
//! new one.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tokio::sync::{Notify, Semaphore};
use tokio::task::AbortHandle;

use super::limits::{MAX_CONNECTIONS, REPLACE_AFTER};
use crate::source::Renderer;

/// What every connection of one listener shares.
pub(super) struct Shared {
    pub(super) renderer: Arc<Renderer>,
    /// Set when the final push starts: nothing is rendered after it.
    pub(super) closing: Arc<AtomicBool>,
    /// One permit per body in flight ([`MAX_RESPONSES`](super::limits::MAX_RESPONSES)).
    pub(super) responses: Arc<Semaphore>,
    /// What [`Activity::idle_since`] counts from.
    pub(super) epoch: Instant,
}

impl Shared {
    pub(super) fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// A look at a connection's socket, without reading from it: whether its client has closed
/// it (hyper does not notice while a request waits for its answer).
pub(super) struct Probe {
    #[cfg(unix)]
    socket: std::os::fd::RawFd,
    #[cfg(windows)]
    socket: std::os::windows::io::RawSocket,
}

impl Probe {
    pub(super) fn of(stream: &tokio::net::TcpStream) -> Self {
        Probe {
            #[cfg(unix)]
            socket: std::os::fd::AsRawFd::as_raw_fd(stream),
            #[cfg(windows)]
            socket: std::os::windows::io::AsRawSocket::as_raw_socket(stream),
        }
    }

    /// Whether the client closed the connection, or it failed.
    pub(super) fn gone(&self) -> bool {
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
pub(super) struct Activity {
    pub(super) probe: Probe,
    /// Requests being answered (head read, body not yet all handed to the socket).
    pub(super) in_flight: AtomicUsize,
    /// When it last had no request under way (ns since [`Shared::epoch`]).
    pub(super) idle_since: AtomicU64,
}

/// One open connection.
pub(super) struct Open {
    pub(super) id: u64,
    pub(super) activity: Arc<Activity>,
    pub(super) abort: AbortHandle,
}

/// The open connections: what the accept loop counts and evicts from.
#[derive(Default)]
pub(super) struct Table {
    open: Mutex<Vec<Open>>,
    /// Told when a connection ends or becomes idle: there may be room now.
    pub(super) changed: Notify,
}

impl Table {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Open>> {
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
    pub(super) fn has_room(&self, now: u64) -> bool {
        let open = self.lock();
        open.len() < MAX_CONNECTIONS || Self::replaceable(&open, now).is_some()
    }

    /// Makes a place for one more connection, closing the one idle the longest if every place
    /// is taken; false when none can be closed.
    pub(super) fn make_room(&self, now: u64) -> bool {
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
pub(super) struct Leaving {
    pub(super) table: Arc<Table>,
    pub(super) id: u64,
}

impl Drop for Leaving {
    fn drop(&mut self) {
        self.table.remove(self.id);
    }
}

/// One request under way on a connection: from its head to the last piece of its body handed
/// to the socket (or the connection's end).
pub(super) struct Busy {
    pub(super) activity: Arc<Activity>,
    table: Arc<Table>,
    shared: Arc<Shared>,
}

impl Busy {
    pub(super) fn new(activity: Arc<Activity>, table: Arc<Table>, shared: &Arc<Shared>) -> Self {
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
