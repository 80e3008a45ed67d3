//! The listener's bounds, whatever the clients do.

use std::time::Duration;

/// Connections served at once.
pub(super) const MAX_CONNECTIONS: usize = 32;
/// The largest request head (request line and headers) read, in bytes; more is answered 431.
pub(super) const MAX_HEADER_BYTES: usize = 16 * 1024;
/// The most header fields a request may have.
pub(super) const MAX_HEADERS: usize = 64;
/// Time a client has to send a whole request head once the connection is open or its last
/// answer was sent (Prometheus sends its request as soon as it connects).
pub(super) const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Bodies rendered, or rendered and not yet handed to the socket, at once: what clients that
/// ask and do not read can make the process hold.
pub(super) const MAX_RESPONSES: usize = 4;
/// The longest a write to a client may stay blocked (the client reads nothing) before its
/// connection is closed.
pub(super) const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// The send buffer the kernel keeps for each connection, in bytes (it doubles the figure for
/// its own bookkeeping): what a client that does not read leaves in the kernel is bounded too.
/// 128 KiB still sends 1 MB/s or more over a 100 ms round trip.
pub(super) const SEND_BUFFER: usize = 128 * 1024;
/// The longest a connection is kept, however busy.
pub(super) const CONNECTION_LIFETIME: Duration = Duration::from_secs(300);
/// How long a connection must have been idle before a new one may replace it: time enough
/// for a scraper on a loaded host to send its request once connected.
pub(super) const REPLACE_AFTER: Duration = Duration::from_millis(250);
