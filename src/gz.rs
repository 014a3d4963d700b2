//! Gzip writers, buffered: flate2 zero-fills its 32 KiB output buffer on every `write`, so the
//! many small writes of serde_json or the csv crate made gzip cost more than everything else
//! (42% of a run in `memset`). Every gzip writer of the crate comes from here.

use std::io::{self, BufWriter, Write};

use flate2::Compression;
use flate2::write::GzEncoder;

const BUFFER: usize = 128 * 1024;

pub type Writer<W> = BufWriter<GzEncoder<W>>;

/// flate2 writes mtime 0 in the header, so the same input always gives the same bytes.
pub fn writer<W: Write>(inner: W, level: Compression) -> Writer<W> {
    BufWriter::with_capacity(BUFFER, GzEncoder::new(inner, level))
}

pub fn finish<W: Write>(writer: Writer<W>) -> io::Result<W> {
    writer.into_inner().map_err(|e| e.into_error())?.finish()
}
