//! The spool directory itself: whether it can be trusted, the replay lock, and what dead
//! writers left behind.

use std::fs::{self, File};
use std::io;
use std::time::Duration;

use super::{owner_only, Spool, TMP_PREFIX};

const LOCK: &str = ".replay.lock";
/// A temporary file older than this was left by a writer that died mid-write.
const STALE_TMP: Duration = Duration::from_secs(600);

impl Spool {
    /// Takes the directory's replay lock without waiting: `None` when another process holds
    /// it (that process is replaying this directory).
    pub(crate) fn lock(&self) -> io::Result<Option<File>> {
        self.create_dir()?;
        let mut options = owner_only();
        options.read(true).write(true).create(true).truncate(false);
        // Never through a link planted in its place.
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
        let file = options.open(self.dir.join(LOCK))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(file)),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }

    /// Removes temporary files left by writers that died mid-write. Call with the lock held.
    pub(crate) fn remove_stale_tmp(&self) {
        let Ok(dir) = fs::read_dir(&self.dir) else {
            return;
        };
        for item in dir.flatten() {
            let name = item.file_name();
            if !name.to_str().is_some_and(|n| n.starts_with(TMP_PREFIX)) {
                continue;
            }
            let stale = item
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > STALE_TMP);
            if stale {
                let _ = fs::remove_file(item.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_replayer_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let a = Spool::new(dir.path().into(), 10, 1 << 20);
        let b = Spool::new(dir.path().into(), 10, 1 << 20);
        let held = a.lock().unwrap();
        assert!(held.is_some());
        assert!(b.lock().unwrap().is_none());
        drop(held);
        assert!(b.lock().unwrap().is_some());
    }
}
