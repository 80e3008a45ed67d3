//! The on-disk record of one spooled push: its header, its body, and the reader that checks
//! both before anything of it is trusted.

use std::fs::{self, File};
use std::io::{self, Read as _};
use std::path::Path;

use bytes::Bytes;

use crate::protocol::group;
use crate::target::{Format, PushMethod};

/// The first line of a file whose body is text.
const MAGIC: &str = "metrics-exporter-pushgateway spool 1";
/// The first line of a file whose body is protobuf: a reader that knows only version 1 sets
/// such a file aside instead of sending it as text.
const MAGIC_2: &str = "metrics-exporter-pushgateway spool 2";
/// The first line of a file of remote-write requests.
const MAGIC_3: &str = "metrics-exporter-pushgateway spool 3";
/// The most requests one remote-write file may hold: the writer splits what did not arrive
/// into files of at most this many, and the reader refuses a file of more (it bounds what a
/// reader holds, 32 bytes of index per request besides the file).
pub(crate) const MAX_FRAMES: usize = 100_000;
/// The longest header a reader accepts.
const MAX_HEADER: usize = 64 * 1024;

/// One snapshot: what a push sent, and where.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    /// The group's path below `/metrics`, encoded as in the URL: `/job/<job>{/<label>/<value>}`.
    pub(crate) group: String,
    pub(crate) method: PushMethod,
    /// What the body is: text (`format text`, and files without the line), protobuf
    /// (`format protobuf`), each gzipped or not (`encoding`), or remote-write requests
    /// (`format remote-write`, `encoding snappy`, see [`frames`]).
    pub(crate) format: Format,
    /// The gateway it was meant for (its endpoint, which holds no credentials), or the
    /// remote-write receiver's URL: replayed there only.
    pub(crate) endpoint: String,
    /// When it was rendered, in milliseconds since the Unix epoch.
    pub(crate) created_ms: u64,
    pub(crate) body: Bytes,
}

impl Snapshot {
    /// Whether this is a gateway's snapshot of `group`, which a newer push of that group makes
    /// obsolete. Remote-write requests are never obsolete: their samples carry their own
    /// timestamps, and the receiver keeps every one.
    pub(super) fn same_group(&self, group: &str) -> bool {
        !self.format.is_remote_write() && self.group == group
    }
}

/// Remote-write requests as a file body: each preceded by its length (4 bytes, big-endian).
pub(crate) fn framed<'a>(requests: impl IntoIterator<Item = &'a [u8]>) -> Bytes {
    let mut out = Vec::new();
    for request in requests {
        out.extend_from_slice(&(request.len() as u32).to_be_bytes());
        out.extend_from_slice(request);
    }
    Bytes::from(out)
}

/// The remote-write requests of a file body: every byte in a request, none empty, at most
/// [`MAX_FRAMES`] of them (the bound [`Spool::write_unbounded`](super::Spool::write_unbounded)
/// holds the writer to).
pub(crate) fn frames(body: &Bytes) -> Result<Vec<Bytes>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < body.len() {
        let len_bytes: [u8; 4] = body
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .ok_or("a request's length is cut short")?;
        let len = u32::from_be_bytes(len_bytes) as usize;
        let end = at + 4 + len;
        if len == 0 || end > body.len() {
            return Err(format!("a request of {len} bytes does not fit the body"));
        }
        if out.len() == MAX_FRAMES {
            return Err(too_many_frames("more than"));
        }
        out.push(body.slice(at + 4..end));
        at = end;
    }
    if out.is_empty() {
        return Err("no request".into());
    }
    Ok(out)
}

/// How many requests a file body of remote-write requests holds, counting only their
/// lengths; the body is one [`framed`] wrote.
pub(super) fn frame_count(body: &[u8]) -> usize {
    let (mut at, mut n) = (0, 0);
    while let Some(len) = body.get(at..at + 4) {
        let len = u32::from_be_bytes(len.try_into().unwrap_or_default()) as usize;
        at += 4 + len;
        n += 1;
    }
    n
}

pub(super) fn too_many_frames(how: &str) -> String {
    format!("{how} {MAX_FRAMES} requests, the most one spool file holds")
}

pub(super) fn header(s: &Snapshot) -> String {
    format!(
        "{}\ngroup {}\nendpoint {}\nmethod {}\nencoding {}\nformat {}\ncreated {}\nlength {}\n\
         crc32 {:08x}\n\n",
        match s.format {
            Format::RemoteWrite => MAGIC_3,
            Format::Protobuf { .. } => MAGIC_2,
            Format::Text { .. } => MAGIC,
        },
        s.group,
        s.endpoint,
        match s.method {
            PushMethod::Put => "PUT",
            PushMethod::Post => "POST",
        },
        match s.format {
            Format::RemoteWrite => "snappy",
            f if f.is_gzip() => "gzip",
            _ => "identity",
        },
        match s.format {
            Format::RemoteWrite => "remote-write",
            Format::Protobuf { .. } => "protobuf",
            Format::Text { .. } => "text",
        },
        s.created_ms,
        s.body.len(),
        crc32fast::hash(&s.body),
    )
}

/// Why a file could not be read back.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("not a spool file: {0}")]
    Corrupt(String),
}

/// Reads and checks one snapshot file of at most `max_bytes`. A file that is not a regular
/// file (a link, a FIFO, a device) or is larger is refused from its metadata, before it is
/// opened or read: such a file can block a reader or fill its memory.
pub(crate) fn read(path: &Path, max_bytes: u64) -> Result<Snapshot, ReadError> {
    let meta = fs::symlink_metadata(path)?;
    if !meta.is_file() {
        return Err(ReadError::Corrupt("not a regular file".into()));
    }
    if meta.len() > max_bytes {
        return Err(ReadError::Corrupt(format!(
            "{} bytes, more than the spool's bound of {max_bytes}",
            meta.len()
        )));
    }
    let mut data = Vec::new();
    // Bounded again, should it grow meanwhile.
    File::open(path)?
        .take(max_bytes.saturating_add(1))
        .read_to_end(&mut data)?;
    parse(&data).map_err(ReadError::Corrupt)
}

fn parse(data: &[u8]) -> Result<Snapshot, String> {
    let end = data
        .windows(2)
        .take(MAX_HEADER)
        .position(|w| w == b"\n\n")
        .ok_or("no end of header")?;
    let head = std::str::from_utf8(&data[..end]).map_err(|_| "header is not UTF-8")?;
    let body = &data[end + 2..];
    let mut lines = head.lines();
    let version = lines.next();
    if version != Some(MAGIC) && version != Some(MAGIC_2) && version != Some(MAGIC_3) {
        return Err("unknown format (first line)".into());
    }
    let (mut group, mut method, mut gzip, mut created, mut length, mut crc) =
        (None, None, None, None, None, None);
    let mut protobuf = false;
    let mut remote_write = false;
    let mut snappy = false;
    let mut endpoint = None;
    for line in lines {
        let (key, value) = line.split_once(' ').ok_or("malformed header line")?;
        match key {
            "group" if group::is_canonical(value) => group = Some(value.to_owned()),
            "endpoint" => endpoint = Some(value.to_owned()),
            "method" => {
                method = Some(match value {
                    "PUT" => PushMethod::Put,
                    "POST" => PushMethod::Post,
                    _ => return Err(format!("unknown method {value:?}")),
                });
            }
            "encoding" => {
                gzip = Some(match value {
                    "gzip" => true,
                    "identity" => false,
                    "snappy" => {
                        snappy = true;
                        false
                    }
                    _ => return Err(format!("unknown encoding {value:?}")),
                });
            }
            "format" => {
                (protobuf, remote_write) = match value {
                    "protobuf" => (true, false),
                    "text" => (false, false),
                    "remote-write" => (false, true),
                    _ => return Err(format!("unknown format {value:?}")),
                };
            }
            "created" => created = value.parse::<u64>().ok(),
            "length" => length = value.parse::<usize>().ok(),
            "crc32" => crc = u32::from_str_radix(value, 16).ok(),
            _ => {}
        }
    }
    let (Some(group), Some(method), Some(gzip), Some(created_ms), Some(length), Some(crc)) =
        (group, method, gzip, created, length, crc)
    else {
        return Err("missing or invalid header field".into());
    };
    if body.len() != length {
        return Err(format!(
            "truncated: the body has {} of {length} bytes",
            body.len()
        ));
    }
    if crc32fast::hash(body) != crc {
        return Err("checksum mismatch".into());
    }
    // Remote-write requests only in a version-3 file, snappy and POST, and nothing else there.
    if remote_write != (version == Some(MAGIC_3))
        || remote_write != snappy
        || (remote_write && method != PushMethod::Post)
    {
        return Err("format, encoding and version do not agree".into());
    }
    let body = Bytes::copy_from_slice(body);
    let format = if remote_write {
        frames(&body).map_err(|e| format!("remote-write body: {e}"))?;
        Format::RemoteWrite
    } else {
        Format::pushgateway(protobuf, gzip)
    };
    Ok(Snapshot {
        group,
        method,
        format,
        endpoint: endpoint.ok_or("no endpoint recorded")?,
        created_ms,
        body,
    })
}

#[cfg(test)]
mod untrusted_files {
    use super::*;

    #[test]
    fn files_over_the_bound_or_not_regular_are_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("1-00000000-x.snapshot");
        let file = File::create(&big).unwrap();
        // Sparse: a 1 GiB file that costs no disk.
        file.set_len(1 << 30).unwrap();
        let err = read(&big, 64 << 20).unwrap_err().to_string();
        assert!(
            err.contains("1073741824 bytes, more than the spool's bound"),
            "{err}"
        );
        #[cfg(unix)]
        {
            let fifo = dir.path().join("2-00000000-x.snapshot");
            let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
            // SAFETY: a valid NUL-terminated path.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
            // Refused from its metadata: opening it would block.
            let err = read(&fifo, 64 << 20).unwrap_err().to_string();
            assert!(err.contains("not a regular file"), "{err}");
            let link = dir.path().join("3-00000000-x.snapshot");
            std::os::unix::fs::symlink(&big, &link).unwrap();
            let err = read(&link, u64::MAX).unwrap_err().to_string();
            assert!(err.contains("not a regular file"), "{err}");
        }
    }
}

#[cfg(test)]
mod remote_write_records {
    use super::*;

    fn remote_write(group: &str, endpoint: &str, created_ms: u64, requests: &[&[u8]]) -> Snapshot {
        Snapshot {
            group: group.into(),
            method: PushMethod::Post,
            format: Format::RemoteWrite,
            endpoint: endpoint.into(),
            created_ms,
            body: framed(requests.iter().copied()),
        }
    }

    #[test]
    fn remote_write_files_are_checked_before_they_are_trusted() {
        let good = header(&remote_write("/job/a", "http://vm/", 5, &[b"x"]));
        let body = framed([&b"x"[..]]);
        let file = |head: &str, body: &[u8]| {
            let mut data = head.as_bytes().to_vec();
            data.extend_from_slice(body);
            parse(&data)
        };
        assert!(file(&good, &body).is_ok());
        // A remote-write body under another version, encoding or method is refused.
        for (from, to) in [
            ("spool 3", "spool 2"),
            ("encoding snappy", "encoding identity"),
            ("method POST", "method PUT"),
            ("format remote-write", "format protobuf"),
        ] {
            assert!(file(&good.replace(from, to), &body).is_err(), "{to}");
        }
        // Lengths that do not add up to the body are refused, checksum or not.
        for bad in [&b"\0\0\0\x05x"[..], b"\0\0\0", b"\0\0\0\0", b""] {
            let head = header(&Snapshot {
                body: Bytes::copy_from_slice(bad),
                ..remote_write("/job/a", "http://vm/", 5, &[])
            });
            assert!(file(&head, bad).is_err(), "{bad:?}");
        }
    }
}

#[cfg(test)]
mod formats {
    use super::*;

    fn file(head: &str, body: &[u8]) -> Result<Snapshot, String> {
        let mut data = head.as_bytes().to_vec();
        data.extend_from_slice(body);
        parse(&data)
    }

    /// Each format is written as files always said it, and read back as it: a version-1
    /// file without a `format` line (written before there was one) is text.
    #[test]
    fn each_format_is_written_and_read_as_before() {
        let body = b"a 1\n";
        let crc = format!("{:08x}", crc32fast::hash(body));
        let head = |magic: &str, encoding: &str, format: Option<&str>| {
            let format = format.map_or(String::new(), |f| format!("format {f}\n"));
            format!(
                "metrics-exporter-pushgateway spool {magic}\ngroup /job/a\nendpoint http://gw/\n\
                 method PUT\nencoding {encoding}\n{format}created 5\nlength 4\ncrc32 {crc}\n\n"
            )
        };
        for (magic, encoding, line, format) in [
            ("1", "identity", None, Format::Text { gzip: false }),
            ("1", "gzip", Some("text"), Format::Text { gzip: true }),
            (
                "2",
                "identity",
                Some("protobuf"),
                Format::Protobuf { gzip: false },
            ),
            (
                "2",
                "gzip",
                Some("protobuf"),
                Format::Protobuf { gzip: true },
            ),
        ] {
            let read = file(&head(magic, encoding, line), body).unwrap();
            assert_eq!(read.format, format, "{magic} {encoding} {line:?}");
            if line.is_some() {
                assert_eq!(header(&read), head(magic, encoding, line));
            }
        }
    }
}
