//! Files replaced atomically: the one routine the spool and the textfile target write with.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::Path;

/// Writes `parts` to the new file `tmp` (mode `mode` on Unix; elsewhere the directory's access
/// rules), flushes it to disk, renames it over `path` and syncs the directory, so that a reader
/// sees the old file or the whole new one, never a part. `tmp` must be in the same directory
/// as `path`; a file already at `tmp` (left by a writer that died) is removed first, and on
/// failure `tmp` is removed again.
pub(crate) fn write_atomically(
    tmp: &Path,
    path: &Path,
    #[cfg_attr(not(unix), allow(unused_variables))] mode: u32,
    parts: &[&[u8]],
) -> io::Result<()> {
    let _ = fs::remove_file(tmp);
    let result = (|| {
        let mut options = OpenOptions::new();
        // create_new: never through a link planted at `tmp`.
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
        let mut file = options.open(tmp)?;
        for part in parts {
            file.write_all(part)?;
        }
        file.sync_all()?;
        fs::rename(tmp, path)?;
        if let Some(dir) = path.parent() {
            sync_dir(dir);
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(tmp);
    }
    result
}

/// Makes a rename in `dir` durable. Not every platform or file system can sync a directory
/// (Windows cannot open one as a file); the rename itself is atomic either way.
pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Whether `dir` (absent, or a directory) may hold files this process acts on: not a link, and
/// on Unix owned by this process's user and writable by nobody else, so that no other user can
/// plant files there. Says why not. (Elsewhere the directory's access rules are the operating
/// system's.)
pub(crate) fn check_private_dir(dir: &Path) -> Result<(), String> {
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("cannot be read: {e}")),
    };
    if !meta.is_dir() {
        return Err("is not a directory (a link to one is not followed)".into());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me {
            return Err(format!(
                "is owned by user {}, not by this process's user {me}",
                meta.uid()
            ));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(format!(
                "is writable by other users (mode {:o}); make it 0700",
                meta.mode() & 0o777
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let (tmp, path) = (dir.path().join(".t.tmp"), dir.path().join("f"));
        write_atomically(&tmp, &path, 0o600, &[b"a ", b"1\n"]).unwrap();
        // A leftover temporary file is no obstacle.
        std::fs::write(&tmp, "stale").unwrap();
        write_atomically(&tmp, &path, 0o600, &[b"a 2\n"]).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a 2\n");
        assert!(!tmp.exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[test]
    fn a_failed_write_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let err = write_atomically(&missing.join(".t"), &missing.join("f"), 0o600, &[b"x"]);
        assert!(err.is_err());
        assert!(!missing.exists());
    }
}
