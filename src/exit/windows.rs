//! Windows: a console control handler (`SetConsoleCtrlHandler`) for Ctrl-C, Ctrl-Break, the
//! console window being closed, logoff and system shutdown.
//!
//! Windows calls the handler on a thread of its own, so the final push can block there. After
//! it, the handler returns `FALSE`, and the next handler — in the end Windows' default one,
//! which calls `ExitProcess` — runs as it would have without the exporter.

use std::sync::OnceLock;
use std::time::Duration;

use windows_sys::core::BOOL;
use windows_sys::Win32::System::Console::{
    SetConsoleCtrlHandler, CTRL_BREAK_EVENT, CTRL_CLOSE_EVENT, CTRL_C_EVENT, CTRL_LOGOFF_EVENT,
    CTRL_SHUTDOWN_EVENT,
};

use super::SignalHandling;
use crate::handle::PushHandle;
use crate::lifecycle::Outcome;
use crate::log::report;

/// The longest a final push may take for the events after which Windows ends the process by
/// itself (a closed console: 5 s; logoff and shutdown: a few seconds more at most).
const CLOSING_BUDGET: Duration = Duration::from_secs(4);

const FALSE: BOOL = 0;
const TRUE: BOOL = 1;

static HANDLER: OnceLock<(PushHandle, SignalHandling)> = OnceLock::new();

/// Whether the panic hook leaves the final push to the path that ends the process: not on
/// Windows (no handler runs when the process aborts).
pub(crate) fn panic_push_deferred() -> bool {
    false
}

pub(crate) fn listen(handle: PushHandle, mode: SignalHandling) -> std::io::Result<()> {
    if HANDLER.set((handle, mode)).is_err() {
        // Installed once per process, as the recorder is.
        return Ok(());
    }
    // SAFETY: `on_event` is a valid handler routine for the life of the process.
    if unsafe { SetConsoleCtrlHandler(Some(on_event), TRUE) } == FALSE {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

unsafe extern "system" fn on_event(event: u32) -> BOOL {
    // A panic must not unwind into Windows: it is caught, and the event goes on to the next
    // handler.
    std::panic::catch_unwind(|| handle_event(event)).unwrap_or(FALSE)
}

fn handle_event(event: u32) -> BOOL {
    let Some((handle, mode)) = HANDLER.get() else {
        return FALSE;
    };
    let closing = match event {
        CTRL_C_EVENT | CTRL_BREAK_EVENT => false,
        CTRL_CLOSE_EVENT | CTRL_LOGOFF_EVENT | CTRL_SHUTDOWN_EVENT => true,
        _ => return FALSE,
    };
    if *mode == SignalHandling::PushAndContinue && !closing {
        if let Err(e) = handle.flush() {
            report(&format!("push on console event {event} failed: {e}"));
        }
        // Handled: the application ends itself.
        return TRUE;
    }
    if !handle.final_push_done()
        && !handle.final_push_and_report(
            Outcome::Signal(event as i32),
            closing.then_some(CLOSING_BUDGET),
        )
        && !closing
    {
        // The process was already ending on another path, whose final push this waited for:
        // that path ends it with its own status. Should the process still be here after a
        // grace, the default handling ends it.
        std::thread::sleep(super::STAND_DOWN);
    }
    // The default handling follows: the process ends as it would have without the exporter.
    FALSE
}
