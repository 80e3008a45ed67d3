//! The disk spool: pushes that failed for good, each kept on disk as a record (the body as it
//! was sent, and where it goes) until a later push of it is answered with a 2xx.
//!
//! One file per record, named `<created ms>-<group hash>-<writer>.snapshot` so that names
//! sort oldest first. A file is a short text header, a blank line and the body as it was sent:
//!
//! ```text
//! metrics-exporter-pushgateway spool 1
//! group /job/ingester/instance/shard-3
//! endpoint http://pushgateway:9091/
//! method PUT
//! encoding identity
//! format text
//! created 1763700000123
//! length 1234
//! crc32 0a1b2c3d
//!
//! <body>
//! ```
//!
//! A file whose body is protobuf (`format protobuf`) starts with `... spool 2` instead, so that
//! a reader that knows only version 1 sets it aside rather than sending it as text.
//!
//! A remote-write push whose requests did not all arrive keeps those requests in one file that
//! starts with `... spool 3` and says `format remote-write`, `encoding snappy`, `method POST`;
//! its `endpoint` is the receiver's URL, its `group` the job's grouping key, and its body the
//! requests as sent (each a snappy block of a `WriteRequest`, its samples with their original
//! timestamps), each preceded by its length as 4 bytes, big-endian. A file holds at most
//! [`MAX_FRAMES`] requests: the writer splits what did not arrive into files of at most that
//! many, and the reader refuses a file of more. A newer push never replaces such a file (its
//! samples carry their own timestamps, and the receiver keeps them): each is sent by a replay
//! or set aside with a line saying why; only the spool's bounds drop one, with a line too. A
//! replay that stops part-way rewrites the file without the requests the receiver took, so
//! that the next one continues with the rest.
//!
//! An `endpoint` whose URL holds something a reader must not learn (query values, a
//! fragment) is recorded in its shown form (query values `***`) followed by ` #k1:` and an
//! HMAC-SHA256 of the whole URL (first 16 bytes, hex) under a random 32-byte key kept in
//! `<dir>/.endpoint.key` (0600, made by the first writer that needs it): endpoints that differ
//! only in a secret are told apart, and a file alone gives nothing to check guesses of the
//! secret against. Files written before keyed endpoints (` #` and a 64-bit FNV-1a of the URL)
//! are still read and replayed to their endpoint.
//!
//! Files are written to a temporary name, synced and renamed, so a reader never sees half a
//! file; a file that does not parse or whose length or checksum is wrong anyway (a full disk, a
//! copy) is renamed to `*.corrupt`. One process at a time replays a directory: the replayer
//! holds an exclusive lock on `<dir>/.replay.lock`, which the operating system releases when
//! the process ends, however it ends.

use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

mod dir;
mod endpoint;
pub(crate) mod keeper;
mod record;
mod replay;

use endpoint::{
    fnv_endpoint_id, hides_something, keyed_digest, read_key, EndpointKey, KEY, KEY_LEN, NO_KEY,
};
use record::{frame_count, header, too_many_frames};
pub(crate) use record::{framed, frames, read, ReadError, Record, MAX_FRAMES};
pub use replay::ReplayReport;
pub(crate) use replay::{replay_all, Destination};

const SNAPSHOT: &str = ".snapshot";
const CORRUPT: &str = ".corrupt";
const REJECTED: &str = ".rejected";
const TMP_PREFIX: &str = ".tmp-";

/// A record file found in the directory.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) path: PathBuf,
    pub(crate) bytes: u64,
}

/// What writing a record did.
#[derive(Debug, Default)]
pub(crate) struct Written {
    pub(crate) path: Option<PathBuf>,
    /// Files removed to honour the bounds, the new one included when it alone is too big.
    pub(crate) dropped: Vec<Entry>,
    /// Older records of the same group, replaced by the new one.
    pub(crate) replaced: usize,
}

/// A spool directory and its bounds.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    max_files: usize,
    max_bytes: u64,
    /// Tells this process's files apart: `<pid>x<start nanos>`.
    writer: String,
    seq: AtomicU64,
    /// The key of endpoint identities, read or made on first need.
    key: OnceLock<Result<EndpointKey, String>>,
}

/// A stable 32-bit hash of a group path, for file names.
fn group_hash(group: &str) -> u32 {
    crc32fast::hash(group.as_bytes())
}

impl Spool {
    pub(crate) fn new(dir: PathBuf, max_files: usize, max_bytes: u64) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        // Two spools of one process (a gateway's and a receiver's) never share a file name.
        static SPOOLS: AtomicU64 = AtomicU64::new(0);
        let n = SPOOLS.fetch_add(1, Ordering::Relaxed);
        let writer = match n {
            0 => format!("{}x{nanos:08x}", std::process::id()),
            n => format!("{}x{nanos:08x}x{n}", std::process::id()),
        };
        Spool {
            dir,
            max_files,
            max_bytes,
            writer,
            seq: AtomicU64::new(0),
            key: OnceLock::new(),
        }
    }

    /// How the spool records the endpoint at `url`, to replay a file there only: its shown
    /// form (no user name or password, query values `***`), and when that hides something, a
    /// keyed digest of the whole URL (see the module's documentation), so that endpoints that
    /// differ only in a secret are told apart without a digest anyone can check guesses
    /// against.
    pub(crate) fn endpoint_id(&self, url: &url::Url) -> String {
        let shown = crate::log::shown(url);
        if !hides_something(url, &shown) {
            return shown;
        }
        match self.key() {
            Ok(key) => format!("{shown} #k1:{}", keyed_digest(key, url)),
            Err(_) => format!("{shown}{NO_KEY}"),
        }
    }

    /// Whether a file's recorded `endpoint` is the one at `url`: as [`endpoint_id`] records
    /// it, or as files written before keyed identities did.
    ///
    /// [`endpoint_id`]: Self::endpoint_id
    pub(crate) fn is_endpoint(&self, recorded: &str, url: &url::Url) -> bool {
        if recorded.ends_with(NO_KEY) {
            return false;
        }
        recorded == self.endpoint_id(url) || recorded == fnv_endpoint_id(url)
    }

    /// The key of endpoint identities: read from [`KEY`], or made (random, 0600) if there is
    /// none yet. Two processes making one at once agree on the first one linked in place.
    fn key(&self) -> Result<&[u8; KEY_LEN], String> {
        self.key
            .get_or_init(|| self.load_key().map(EndpointKey))
            .as_ref()
            .map(|k| &k.0)
            .map_err(Clone::clone)
    }

    fn load_key(&self) -> Result<[u8; KEY_LEN], String> {
        let path = self.dir.join(KEY);
        let failed = |e: &dyn std::fmt::Display| {
            format!(
                "the spool's endpoint key {} cannot be used: {e}",
                path.display()
            )
        };
        for _ in 0..3 {
            match read_key(&path) {
                Ok(key) => return Ok(key),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(failed(&e)),
            }
            self.create_dir().map_err(|e| failed(&e))?;
            let mut key = [0; KEY_LEN];
            getrandom::fill(&mut key).map_err(|e| failed(&e))?;
            let seq = self.seq.fetch_add(1, Ordering::Relaxed);
            let tmp = self
                .dir
                .join(format!("{TMP_PREFIX}{}-{seq}.key", self.writer));
            let made = (|| {
                let mut options = owner_only();
                options.write(true).create_new(true);
                let mut file = options.open(&tmp)?;
                io::Write::write_all(&mut file, &key)?;
                file.sync_all()?;
                // Never replaces a key another process linked first.
                fs::hard_link(&tmp, &path)
            })();
            let _ = fs::remove_file(&tmp);
            match made {
                Ok(()) => {
                    crate::file::sync_dir(&self.dir);
                    return Ok(key);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(failed(&e)),
            }
        }
        Err(failed(&"it keeps changing"))
    }

    /// Another writer of the same directory with the same bounds, for another target.
    #[cfg(test)]
    pub(crate) fn sibling(&self) -> Spool {
        Spool::new(self.dir.clone(), self.max_files, self.max_bytes)
    }

    /// The bound on the number of files in the spool.
    pub(crate) fn max_files(&self) -> usize {
        self.max_files
    }

    /// The bound on the spool's total size, which no single file may exceed either.
    pub(crate) fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates the directory (owner-only) if it does not exist.
    pub(crate) fn create_dir(&self) -> io::Result<()> {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&self.dir)
    }

    /// Writes `snapshot` atomically (temporary file, fsync, rename, fsync of the directory),
    /// removes older records of the same group, then removes the oldest files until the
    /// directory is within its bounds.
    pub(crate) fn write(&self, snapshot: &Record) -> io::Result<Written> {
        let mut written = self.write_unbounded(snapshot)?;
        if let Some(path) = &written.path {
            (written.replaced, written.dropped) = self.settle(snapshot, path)?;
        }
        Ok(written)
    }

    /// For a record just written at `path`: removes the older records of its group (they
    /// would only overwrite its newer values; never remote-write requests, see
    /// [`Record::same_group`]), then the oldest files until the directory is within its
    /// bounds. Returns how many were replaced, and what the bounds dropped.
    pub(crate) fn settle(&self, snapshot: &Record, path: &Path) -> io::Result<(usize, Vec<Entry>)> {
        let replaced = self.remove_older(snapshot, Some(path));
        Ok((replaced, self.enforce_bounds(path)?))
    }

    /// [`write`](Self::write) without touching any other file: for a record written ahead
    /// of its push, which is removed again if the push succeeds, and
    /// [`settle`](Self::settle)d if it fails.
    ///
    /// A remote-write record of more than [`MAX_FRAMES`] requests, and one whose endpoint
    /// could not be recorded (no key), are refused with an error saying so.
    pub(crate) fn write_unbounded(&self, snapshot: &Record) -> io::Result<Written> {
        if snapshot.format.is_remote_write() && frame_count(&snapshot.body) > MAX_FRAMES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                too_many_frames(&format!("{} requests:", frame_count(&snapshot.body))),
            ));
        }
        if snapshot.endpoint.ends_with(NO_KEY) {
            let why = self.key().err().unwrap_or_default();
            return Err(io::Error::other(why));
        }
        let mut written = Written::default();
        let header = header(snapshot);
        let size = (header.len() + snapshot.body.len()) as u64;
        if size > self.max_bytes {
            // It alone is over the bound: dropped without touching what is already spooled.
            written.dropped.push(Entry {
                path: self
                    .dir
                    .join(self.name(snapshot, self.seq.load(Ordering::Relaxed))),
                bytes: size,
            });
            return Ok(written);
        }
        self.create_dir()?;
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .dir
            .join(format!("{TMP_PREFIX}{}-{seq}{SNAPSHOT}", self.writer));
        let path = self.dir.join(self.name(snapshot, seq));
        crate::file::write_atomically(&tmp, &path, 0o600, &[header.as_bytes(), &snapshot.body])?;
        // Older records of the same group would only overwrite this one's newer values.
        written.path = Some(path);
        Ok(written)
    }

    fn name(&self, snapshot: &Record, seq: u64) -> String {
        format!(
            "{:013}-{:08x}-{}-{seq}{SNAPSHOT}",
            snapshot.created_ms,
            group_hash(&snapshot.group),
            self.writer,
        )
    }

    /// Removes the oldest files (set-aside ones first) until the directory holds at most
    /// `max_files` files and `max_bytes` bytes; never `keep`.
    fn enforce_bounds(&self, keep: &Path) -> io::Result<Vec<Entry>> {
        let mut files: Vec<Entry> = self.entries()?;
        files.extend(self.set_aside()?);
        let mut count = files.len();
        let mut bytes: u64 = files.iter().map(|e| e.bytes).sum();
        // Set-aside files go first, then records, each oldest first.
        files.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
        let mut dropped = Vec::new();
        for entry in files {
            if count <= self.max_files && bytes <= self.max_bytes {
                break;
            }
            if entry.path == keep {
                continue;
            }
            if fs::remove_file(&entry.path).is_ok() {
                count -= 1;
                bytes -= entry.bytes;
                dropped.push(entry);
            }
        }
        Ok(dropped)
    }

    /// The record files, oldest first.
    pub(crate) fn entries(&self) -> io::Result<Vec<Entry>> {
        self.list(|name| name.ends_with(SNAPSHOT) && !name.starts_with('.'))
    }

    fn set_aside(&self) -> io::Result<Vec<Entry>> {
        self.list(|name| name.ends_with(CORRUPT) || name.ends_with(REJECTED))
    }

    fn list(&self, keep: impl Fn(&str) -> bool) -> io::Result<Vec<Entry>> {
        let dir = match fs::read_dir(&self.dir) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut entries = Vec::new();
        for item in dir {
            let item = item?;
            let name = item.file_name();
            let Some(name) = name.to_str() else { continue };
            if !keep(name) {
                continue;
            }
            // A file removed meanwhile (replayed or replaced by another process) is skipped.
            if let Ok(meta) = item.metadata() {
                if meta.is_file() {
                    entries.push(Entry {
                        path: item.path(),
                        bytes: meta.len(),
                    });
                }
            }
        }
        entries.sort_by(|a, b| file_name(&a.path).cmp(file_name(&b.path)));
        Ok(entries)
    }

    /// Number of record files and their total size in bytes.
    pub(crate) fn size(&self) -> (usize, u64) {
        self.entries()
            .map(|e| (e.len(), e.iter().map(|e| e.bytes).sum()))
            .unwrap_or((0, 0))
    }

    /// Removes the gateway records of `group` created at or before `until_ms`: a newer push
    /// of the same group made them obsolete. Returns how many were removed.
    pub(crate) fn remove_group(&self, group: &str, until_ms: u64) -> usize {
        self.remove_matching(group, until_ms, None)
    }

    /// Removes the gateway records of the same group as `newer` created at or before it,
    /// except `keep`; nothing for remote-write requests.
    fn remove_older(&self, newer: &Record, keep: Option<&Path>) -> usize {
        if newer.format.is_remote_write() {
            return 0;
        }
        self.remove_matching(&newer.group, newer.created_ms, keep)
    }

    fn remove_matching(&self, group: &str, until_ms: u64, keep: Option<&Path>) -> usize {
        let hash = format!("-{:08x}-", group_hash(group));
        let Ok(entries) = self.entries() else {
            return 0;
        };
        let mut removed = 0;
        for entry in entries {
            if !file_name(&entry.path).contains(&hash) || Some(entry.path.as_path()) == keep {
                continue;
            }
            if let Ok(old) = read(&entry.path, self.max_bytes) {
                if old.same_group(group)
                    && old.created_ms <= until_ms
                    && fs::remove_file(&entry.path).is_ok()
                {
                    removed += 1;
                }
            }
        }
        removed
    }

    /// Renames a file that cannot be replayed to `<name>.corrupt` or `<name>.rejected`, where
    /// it stays for an operator (and counts towards the bounds) but is not replayed again.
    pub(crate) fn set_aside_file(&self, path: &Path, rejected: bool) -> io::Result<PathBuf> {
        let mut aside = path.as_os_str().to_owned();
        aside.push(if rejected { REJECTED } else { CORRUPT });
        let aside = PathBuf::from(aside);
        fs::rename(path, &aside)?;
        Ok(aside)
    }

    /// Replaces the remote-write file at `path`, read as `snapshot`, with one holding only
    /// `left` of its requests (a replay delivered the others), atomically, under the same
    /// name (its place in the replay order) and with the endpoint as this spool now records
    /// it. Nothing is written if the file is gone meanwhile (the bounds dropped it).
    pub(crate) fn rewrite(
        &self,
        path: &Path,
        snapshot: &Record,
        url: &url::Url,
        left: &[Bytes],
    ) -> io::Result<()> {
        let rest = Record {
            endpoint: self.endpoint_id(url),
            body: framed(left.iter().map(|b| &b[..])),
            ..snapshot.clone()
        };
        if rest.endpoint.ends_with(NO_KEY) {
            return Err(io::Error::other(self.key().err().unwrap_or_default()));
        }
        if !path.exists() {
            return Ok(());
        }
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .dir
            .join(format!("{TMP_PREFIX}{}-{seq}{SNAPSHOT}", self.writer));
        let header = header(&rest);
        crate::file::write_atomically(&tmp, path, 0o600, &[header.as_bytes(), &rest.body])
    }
}

/// Options for a new file that only its owner can read: mode 0600 on Unix. On Windows the
/// file takes the access rules of its directory (by default, those of the user's profile or
/// of wherever the directory was made).
fn owner_only() -> OpenOptions {
    #[allow(unused_mut)]
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Set-aside files before records, each oldest first.
fn sort_key(e: &Entry) -> (bool, &str) {
    (file_name(&e.path).ends_with(SNAPSHOT), file_name(&e.path))
}

fn file_name(path: &Path) -> &str {
    path.file_name().and_then(|n| n.to_str()).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::{Format, PushMethod};

    pub(super) fn snapshot(group: &str, created_ms: u64, body: &str) -> Record {
        Record {
            group: group.into(),
            method: PushMethod::Put,
            format: Format::Text { gzip: false },
            endpoint: "http://127.0.0.1:9091/".into(),
            created_ms,
            body: Bytes::from(body.to_owned()),
        }
    }

    fn names(spool: &Spool) -> Vec<String> {
        spool
            .entries()
            .unwrap()
            .iter()
            .map(|e| read(&e.path, u64::MAX).unwrap().group)
            .collect()
    }

    #[test]
    fn round_trip_and_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path().join("spool"), 10, 1 << 20);
        let s = Record {
            method: PushMethod::Post,
            format: Format::Protobuf { gzip: true },
            ..snapshot("/job/a/instance@base64/YS9i", 1_700_000_000_123, "x 1\n")
        };
        let written = spool.write(&s).unwrap();
        let path = written.path.unwrap();
        let back = read(&path, u64::MAX).unwrap();
        assert_eq!(back.group, s.group);
        assert_eq!(back.method, PushMethod::Post);
        assert_eq!(back.format, Format::Protobuf { gzip: true });
        assert_eq!(back.created_ms, 1_700_000_000_123);
        assert_eq!(back.body, s.body);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(spool.dir()), 0o700);
        }
    }

    #[test]
    fn newest_snapshot_per_group_wins() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path().into(), 10, 1 << 20);
        spool.write(&snapshot("/job/a", 1, "a 1\n")).unwrap();
        spool.write(&snapshot("/job/b", 2, "b 1\n")).unwrap();
        let w = spool.write(&snapshot("/job/a", 3, "a 2\n")).unwrap();
        assert_eq!(w.replaced, 1);
        assert_eq!(names(&spool), ["/job/b", "/job/a"]);
        let a = read(&spool.entries().unwrap()[1].path, u64::MAX).unwrap();
        assert_eq!(&a.body[..], b"a 2\n");
        assert_eq!(spool.remove_group("/job/a", 2), 0);
        assert_eq!(spool.remove_group("/job/a", 3), 1);
        assert_eq!(names(&spool), ["/job/b"]);
    }

    #[test]
    fn bounds_drop_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path().into(), 2, 1 << 20);
        spool.write(&snapshot("/job/a", 1, "a 1\n")).unwrap();
        spool.write(&snapshot("/job/b", 2, "b 1\n")).unwrap();
        let w = spool.write(&snapshot("/job/c", 3, "c 1\n")).unwrap();
        assert_eq!(w.dropped.len(), 1);
        assert_eq!(names(&spool), ["/job/b", "/job/c"]);

        // A byte bound: each file is 150 bytes.
        let spool = Spool::new(dir.path().join("bytes"), 100, 400);
        for (i, g) in ["/job/a", "/job/b", "/job/c"].iter().enumerate() {
            spool.write(&snapshot(g, i as u64, "x 1\n")).unwrap();
        }
        assert_eq!(names(&spool), ["/job/b", "/job/c"]);
        // One record over the bound by itself is dropped and touches nothing else.
        let big = "y 1\n".repeat(200);
        let w = spool.write(&snapshot("/job/d", 9, &big)).unwrap();
        assert!(w.path.is_none());
        assert_eq!(w.dropped.len(), 1);
        assert_eq!(names(&spool), ["/job/b", "/job/c"]);
    }

    #[test]
    fn truncated_and_foreign_files_are_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path().into(), 10, 1 << 20);
        let path = spool
            .write(&snapshot("/job/a", 1, "a_total 1\nb 2\n"))
            .unwrap()
            .path
            .unwrap();
        let data = fs::read(&path).unwrap();
        for cut in [0, 10, data.len() / 2, data.len() - 1] {
            fs::write(&path, &data[..cut]).unwrap();
            assert!(
                matches!(read(&path, u64::MAX), Err(ReadError::Corrupt(_))),
                "cut {cut}"
            );
        }
        let mut flipped = data.clone();
        *flipped.last_mut().unwrap() ^= 1;
        fs::write(&path, &flipped).unwrap();
        assert!(read(&path, u64::MAX)
            .unwrap_err()
            .to_string()
            .contains("checksum"));
        fs::write(&path, b"hello\n\nworld").unwrap();
        assert!(read(&path, u64::MAX).is_err());
        let aside = spool.set_aside_file(&path, false).unwrap();
        assert!(aside.to_str().unwrap().ends_with(".snapshot.corrupt"));
        assert!(spool.entries().unwrap().is_empty());
    }
}

#[cfg(test)]
mod remote_write_files {
    use super::tests::snapshot;
    use super::*;
    use crate::target::{Format, PushMethod};

    fn remote_write(group: &str, endpoint: &str, created_ms: u64, requests: &[&[u8]]) -> Record {
        Record {
            method: PushMethod::Post,
            format: Format::RemoteWrite,
            endpoint: endpoint.into(),
            body: framed(requests.iter().copied()),
            ..snapshot(group, created_ms, "")
        }
    }

    #[test]
    fn remote_write_requests_round_trip_in_version_3_files() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path().into(), 10, 1 << 20);
        let rw = remote_write(
            "/job/a",
            "http://vm:8428/api/v1/write",
            5,
            &[b"one", b"two!"],
        );
        let path = spool.write(&rw).unwrap().path.unwrap();
        let text = fs::read(&path).unwrap();
        assert!(text.starts_with(b"metrics-exporter-pushgateway spool 3\n"));
        let head = String::from_utf8_lossy(&text);
        assert!(head.contains("\nformat remote-write\n") && head.contains("\nencoding snappy\n"));
        let back = read(&path, u64::MAX).unwrap();
        assert_eq!(back.format, Format::RemoteWrite);
        assert_eq!(back.method, PushMethod::Post);
        assert_eq!(back.endpoint, "http://vm:8428/api/v1/write");
        let requests = frames(&back.body).unwrap();
        assert_eq!(requests, [&b"one"[..], &b"two!"[..]]);
    }

    #[test]
    fn remote_write_files_are_never_replaced_by_newer_ones() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path().into(), 10, 1 << 20);
        spool.write(&snapshot("/job/a", 1, "a 1\n")).unwrap();
        for (t, url) in [
            (2, "http://vm-1/"),
            (3, "http://vm-2/"),
            (4, "http://vm-1/"),
        ] {
            let w = spool
                .write(&remote_write("/job/a", url, t, &[b"1"]))
                .unwrap();
            assert_eq!(w.replaced, 0, "{t}");
        }
        let kinds = || -> Vec<(bool, String)> {
            spool
                .entries()
                .unwrap()
                .iter()
                .map(|e| read(&e.path, u64::MAX).unwrap())
                .map(|s| (s.format.is_remote_write(), s.endpoint))
                .collect()
        };
        assert_eq!(kinds().len(), 4);
        assert_eq!(
            spool.remove_group("/job/a", 9),
            1,
            "the gateway's file only"
        );
        let left: Vec<String> = kinds().into_iter().map(|(_, e)| e).collect();
        assert_eq!(left, ["http://vm-1/", "http://vm-2/", "http://vm-1/"]);
    }

    #[test]
    fn what_the_writer_may_write_the_reader_reads_and_no_more() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path().into(), 10, 64 << 20);
        let one = [7_u8];
        let at_bound = vec![&one[..]; MAX_FRAMES];
        let path = spool
            .write(&remote_write("/job/a", "http://vm/", 1, &at_bound))
            .unwrap()
            .path
            .unwrap();
        let back = read(&path, u64::MAX).unwrap();
        assert_eq!(frames(&back.body).unwrap().len(), MAX_FRAMES);
        let over = vec![&one[..]; MAX_FRAMES + 1];
        let err = spool
            .write(&remote_write("/job/a", "http://vm/", 2, &over))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "100001 requests: 100000 requests, the most one spool file holds"
        );
        assert_eq!(spool.entries().unwrap().len(), 1, "nothing written");
        let body = framed(over.iter().copied());
        assert!(frames(&body).unwrap_err().starts_with("more than 100000"));
    }

    #[test]
    fn endpoints_that_differ_only_in_a_secret_are_told_apart_by_a_keyed_digest() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path().join("spool"), 10, 1 << 20);
        let url = |u: &str| url::Url::parse(u).unwrap();
        let plain = url("http://vm:8428/api/v1/write");
        assert_eq!(spool.endpoint_id(&plain), "http://vm:8428/api/v1/write");
        assert!(
            !dir.path().join("spool").join(KEY).exists(),
            "no key until one is needed"
        );
        let (a, b) = (url("http://vm/w?token=a"), url("http://vm/w?token=b"));
        let (id_a, id_b) = (spool.endpoint_id(&a), spool.endpoint_id(&b));
        assert_ne!(id_a, id_b);
        assert!(id_a.starts_with("http://vm/w?token=*** #k1:"), "{id_a}");
        assert_eq!(id_a.len(), "http://vm/w?token=*** #k1:".len() + 32);
        // Not the unkeyed digest of earlier files, which anyone could recompute.
        assert_ne!(id_a, fnv_endpoint_id(&a));
        assert!(spool.is_endpoint(&id_a, &a) && !spool.is_endpoint(&id_a, &b));
        assert!(
            spool.is_endpoint(&fnv_endpoint_id(&a), &a),
            "old files still match"
        );
        assert!(!spool.is_endpoint(&fnv_endpoint_id(&b), &a));
        // The same key for another writer of the directory, and for the next process.
        let again = Spool::new(dir.path().join("spool"), 10, 1 << 20);
        assert_eq!(again.endpoint_id(&a), id_a);
        let key = dir.path().join("spool").join(KEY);
        assert_eq!(fs::read(&key).unwrap().len(), KEY_LEN);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&key).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        // Another directory, another key.
        let other = Spool::new(dir.path().join("other"), 10, 1 << 20);
        assert_ne!(other.endpoint_id(&a), id_a);
        // A key file that is not one is never used, and spooling says why.
        fs::write(&key, b"short").unwrap();
        let broken = Spool::new(dir.path().join("spool"), 10, 1 << 20);
        let snapshot = Record {
            endpoint: broken.endpoint_id(&a),
            ..remote_write("/job/a", "", 1, &[b"x"])
        };
        let err = broken.write(&snapshot).unwrap_err().to_string();
        assert!(
            err.contains("endpoint key") && err.contains("32 bytes"),
            "{err}"
        );
        assert!(!broken.is_endpoint(&snapshot.endpoint, &a));
    }
}
