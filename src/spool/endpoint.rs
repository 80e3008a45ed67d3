//! The keyed identity of an endpoint, as a spool file records it (see the spool's
//! documentation): its shown form, and a keyed digest when that hides something.

use std::fs::{self, File};
use std::io::{self, Read as _};
use std::path::Path;

/// The file holding the key of endpoint identities (see the spool's documentation).
pub(super) const KEY: &str = ".endpoint.key";
pub(super) const KEY_LEN: usize = 32;
/// What an endpoint identity ends with when no key could be had: such a record is refused
/// by [`Spool::write_unbounded`](super::Spool::write_unbounded), saying why.
pub(super) const NO_KEY: &str = " #no-key";

/// The key of endpoint identities: never shown.
pub(super) struct EndpointKey(pub(super) [u8; KEY_LEN]);

impl std::fmt::Debug for EndpointKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EndpointKey(***)")
    }
}

/// Whether the shown form of `url` hides something besides a user name and password (which
/// never tell endpoints apart).
pub(super) fn hides_something(url: &url::Url, shown: &str) -> bool {
    let mut bare = url.clone();
    let _ = bare.set_username("");
    let _ = bare.set_password(None);
    bare.as_str() != shown
}

/// HMAC-SHA256 of the whole of `url` under `key`, its first 16 bytes in hex.
pub(super) fn keyed_digest(key: &[u8; KEY_LEN], url: &url::Url) -> String {
    use hmac::Mac as _;
    use std::fmt::Write as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key length");
    mac.update(url.as_str().as_bytes());
    let digest = mac.finalize().into_bytes();
    digest[..16].iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// The endpoint as files written before keyed identities recorded it: when the shown form
/// hides something, ` #` and a 64-bit FNV-1a of the whole URL. Only compared with, never
/// written.
pub(super) fn fnv_endpoint_id(url: &url::Url) -> String {
    let shown = crate::log::shown(url);
    if !hides_something(url, &shown) {
        return shown;
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in url.as_str().bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{shown} #{hash:016x}")
}

/// Reads the key file at `path`: a regular file (not a link) of exactly [`KEY_LEN`] bytes,
/// and on Unix readable by its owner only.
pub(super) fn read_key(path: &Path) -> io::Result<[u8; KEY_LEN]> {
    let meta = fs::symlink_metadata(path)?;
    let invalid = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
    if !meta.is_file() || meta.len() != KEY_LEN as u64 {
        return Err(invalid(format!(
            "not a regular file of {KEY_LEN} bytes; remove it to have a new key made (files \
             spooled under the old one are then not replayed)"
        )));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(invalid(format!(
                "readable or writable by other users (mode {mode:o}); make it 0600"
            )));
        }
    }
    let mut key = [0; KEY_LEN];
    File::open(path)?.read_exact(&mut key)?;
    Ok(key)
}
