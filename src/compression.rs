//! Request body compression.

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
    Gzip,
}

/// Compresses `body` with gzip at the fastest level.
pub(crate) fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 8 + 64),
        flate2::Compression::fast(),
    );
    encoder.write_all(body)?;
    encoder.finish()
}
