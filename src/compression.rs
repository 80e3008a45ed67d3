//! Request body compression.

#[cfg(feature = "gzip")]
use std::io::Write as _;

/// How request bodies are compressed.
///
/// The Pushgateway accepts `Content-Encoding: gzip` bodies (and since 1.6 also snappy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Compression {
    /// Send bodies as they are (the default: on loopback and fast networks compressing costs
    /// more time than it saves).
    #[default]
    None,
    /// Compress bodies with gzip at the fastest level; the text format shrinks about tenfold.
    /// Needs the crate's `gzip` feature (on by default).
    Gzip,
}

/// Without the `gzip` feature, [`Compression::Gzip`] is refused at install; this is never
/// reached.
#[cfg(not(feature = "gzip"))]
pub(crate) fn gzip(_: &[u8]) -> std::io::Result<Vec<u8>> {
    Err(std::io::Error::other(
        "gzip needs the crate's `gzip` feature",
    ))
}

/// Compresses `body` with gzip at the fastest level.
#[cfg(feature = "gzip")]
pub(crate) fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 8 + 64),
        flate2::Compression::fast(),
    );
    encoder.write_all(body)?;
    encoder.finish()
}
