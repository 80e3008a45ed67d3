//! The process-wide handle: the exporter that [`install`](crate::PushgatewayBuilder::install)
//! installed, for [`exit`](crate::exit) and for code that has no guard at hand.

use std::sync::OnceLock;

use crate::guard::PushHandle;

/// Set once, by the first `install()` (the one whose recorder became the global one).
pub(crate) static HANDLE: OnceLock<PushHandle> = OnceLock::new();

/// The handle of the exporter installed in this process, if any.
///
/// ```
/// // Anywhere in the program, e.g. a library that wants a push at a checkpoint:
/// if let Some(handle) = metrics_exporter_pushgateway::handle() {
///     let _ = handle.flush();
/// }
/// ```
pub fn handle() -> Option<PushHandle> {
    HANDLE.get().cloned()
}
