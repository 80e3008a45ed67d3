//! The textfile target: the snapshot written as `<dir>/<job>.prom` for node_exporter's
//! textfile collector.
//!
//! Source: node_exporter's README, "Textfile Collector": files ending in `.prom` in the
//! collector's directory are read on every scrape, in the text exposition format, without
//! timestamps; a file must be written atomically (to a temporary name, then renamed) so that
//! a scrape never reads half of it.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{About, Push, Sink};
use crate::report::{PushError, PushReport};
use crate::snapshot::Snapshot;
use crate::target::TargetKind;

/// The file name for a job and its grouping labels: `<job>.prom`, or
/// `<job>_<label>_<value>...prom` with grouping labels, so that two groups never share a
/// file. Characters other than ASCII letters, digits, `_`, `-` and `.` become `_`, and a
/// leading `.` (a hidden file the collector skips) becomes `_`.
pub(crate) fn file_name(job: &str, grouping: &[(String, String)]) -> String {
    let mut name = String::new();
    let mut push = |part: &str| {
        name.extend(part.chars().map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        }));
    };
    push(job);
    for (label, value) in grouping {
        push("_");
        push(label);
        push("_");
        push(value);
    }
    if name.starts_with('.') {
        name.replace_range(..1, "_");
    }
    name.push_str(".prom");
    name
}

/// Replaces `dir/name` with `body` atomically: written to a hidden temporary file in the same
/// directory (which the collector ignores), flushed to disk, then renamed over the old file.
/// The file is readable by other users (mode 0644 before the umask): node_exporter usually
/// runs as a user of its own.
pub(crate) fn write_atomically(dir: &Path, name: &str, body: &[u8]) -> std::io::Result<PathBuf> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    crate::file::write_atomically(&tmp, &path, 0o644, &[body])?;
    Ok(path)
}

/// node_exporter's textfile collector directory: `<dir>/<name>` replaced atomically on every
/// push, the job and grouping labels on every sample.
pub(crate) struct TextfileSink {
    dir: PathBuf,
    /// The file name in `dir`.
    name: String,
    about: About,
    /// The job and grouping labels, added to every sample.
    labels: Vec<(String, String)>,
}

impl TextfileSink {
    pub(crate) fn new(dir: PathBuf, name: String, labels: Vec<(String, String)>) -> Self {
        TextfileSink {
            about: About {
                kind: TargetKind::Textfile,
                location: dir.join(&name).display().to_string(),
                metrics_label: dir.display().to_string(),
                deletes_on_shutdown: true,
                endpoint: None,
                replaces: true,
            },
            dir,
            name,
            labels,
        }
    }
}

impl Sink for TextfileSink {
    fn about(&self) -> &About {
        &self.about
    }

    fn encode(
        &mut self,
        snapshot: &Snapshot,
        _created_ms: u64,
        mut buf: Vec<u8>,
        _scratch: &mut Vec<u8>,
    ) -> Result<Bytes, String> {
        crate::protocol::text::text(snapshot, &self.labels, &mut buf);
        Ok(Bytes::from(buf))
    }

    async fn send(
        &mut self,
        _push: &Push,
        body: &Bytes,
        _in_flight: &Cell<bool>,
    ) -> Result<PushReport, PushError> {
        let started = Instant::now();
        write_atomically(&self.dir, &self.name, body)
            .map(|_| PushReport::sent(None, 1, body.len(), started.elapsed()))
            .map_err(|source| PushError::Textfile {
                path: self.dir.join(&self.name),
                source,
            })
    }

    async fn delete(&mut self, _: Instant, _: Duration) -> Result<PushReport, PushError> {
        let path = self.dir.join(&self.name);
        let started = Instant::now();
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(PushReport::sent(None, 1, 0, started.elapsed())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(PushReport::sent(None, 1, 0, started.elapsed()))
            }
            Err(source) => Err(PushError::Textfile { path, source }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe_and_distinct_per_group() {
        assert_eq!(file_name("ingester", &[]), "ingester.prom");
        assert_eq!(
            file_name("nightly backup", &[("instance".into(), "db/1".into())]),
            "nightly_backup_instance_db_1.prom"
        );
        assert_eq!(file_name("../etc", &[]), "_._etc.prom");
        assert_eq!(file_name("zürich", &[]), "z_rich.prom");
    }

    #[test]
    fn writes_replace_the_file_and_leave_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        write_atomically(dir.path(), "j.prom", b"a 1\n").unwrap();
        let path = write_atomically(dir.path(), "j.prom", b"a 2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a 2\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["j.prom"]);
        let missing = dir.path().join("missing");
        assert!(write_atomically(&missing, "j.prom", b"a 1\n").is_err());
    }
}
