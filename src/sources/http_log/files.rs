//! Log files as http_log sees them: known by a fingerprint of their first KiB of decompressed
//! content (inodes are reused and change across copies), read as decompressed bytes from an
//! offset, line by line with a bound on line length.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{Context, Result};
use flate2::read::MultiGzDecoder;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A file is known by a hash of this much of its decompressed beginning.
pub const FINGERPRINT_BYTES: usize = 1024;
/// Longer lines are reported as malformed and skipped without being held in memory.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Where reading stands in one file ever read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileState {
    /// The fingerprint when first seen: the file's identity in event ids.
    pub id: String,
    /// How many leading bytes `fingerprint` covers (less than 1 KiB while the file is small).
    pub fp_len: usize,
    pub fingerprint: String,
    /// Decompressed bytes read.
    pub offset: u64,
    /// Lines read, for line numbers in reports.
    pub lines: u64,
    /// Where it was last seen, for people reading the state.
    pub path: String,
    pub seen_ms: i64,
}

impl FileState {
    pub fn new(prefix: &[u8], now_ms: i64) -> FileState {
        FileState {
            id: hex::encode(&Sha256::digest(prefix)[..8]),
            fp_len: 0,
            fingerprint: String::new(),
            offset: 0,
            lines: 0,
            path: String::new(),
            seen_ms: now_ms,
        }
    }

    /// Records the file's current beginning, which may have grown since it was first seen.
    pub fn saw(&mut self, prefix: &[u8], path: &Path, now_ms: i64) {
        self.fp_len = prefix.len();
        self.fingerprint = hex::encode(Sha256::digest(prefix));
        self.path = path.display().to_string();
        self.seen_ms = now_ms;
    }
}

/// The state whose fingerprint matches the beginning of this content, the longest first: a
/// file that grew past its fingerprinted beginning is still the same file.
pub fn find_state(files: &[FileState], prefix: &[u8]) -> Option<usize> {
    files
        .iter()
        .enumerate()
        .filter(|(_, f)| f.fp_len > 0 && f.fp_len <= prefix.len())
        .filter(|(_, f)| hex::encode(Sha256::digest(&prefix[..f.fp_len])) == f.fingerprint)
        .max_by_key(|(_, f)| f.fp_len)
        .map(|(i, _)| i)
}

/// A log file, opened once: every read of it (the sniff for gzip, the fingerprint, the lines)
/// goes through the same open file, so a rotation between them cannot mix two files.
pub struct Opened {
    file: File,
    pub gzip: bool,
    /// Its first KiB of decompressed content.
    pub prefix: Vec<u8>,
    /// Bytes on disk (compressed, for gzip).
    pub len: u64,
}

impl Opened {
    pub fn open(path: &Path) -> Result<Opened> {
        let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let len = file.metadata()?.len();
        let mut magic = [0u8; 2];
        let n = file.read(&mut magic)?;
        let gzip = n == 2 && magic == [0x1f, 0x8b];
        file.seek(SeekFrom::Start(0))?;
        let mut prefix = Vec::with_capacity(FINGERPRINT_BYTES);
        if gzip {
            MultiGzDecoder::new(&file)
                .take(FINGERPRINT_BYTES as u64)
                .read_to_end(&mut prefix)?;
        } else {
            (&file)
                .take(FINGERPRINT_BYTES as u64)
                .read_to_end(&mut prefix)?;
        }
        Ok(Opened {
            file,
            gzip,
            prefix,
            len,
        })
    }

    /// The decompressed content from `offset` on.
    pub fn read_from(mut self, offset: u64) -> Result<Input> {
        self.file.seek(SeekFrom::Start(0))?;
        if self.gzip {
            let mut input = BufReader::with_capacity(256 * 1024, MultiGzDecoder::new(self.file));
            let skipped = io::copy(&mut (&mut input).take(offset), &mut io::sink())?;
            anyhow::ensure!(
                skipped == offset,
                "the file is shorter than what was already read"
            );
            Ok(Input::Gzip(Box::new(input)))
        } else {
            self.file.seek(SeekFrom::Start(offset))?;
            Ok(Input::Plain(BufReader::with_capacity(
                256 * 1024,
                self.file,
            )))
        }
    }
}

pub enum Input {
    Plain(BufReader<File>),
    // Boxed: the decoder's state is large, and one input exists at a time.
    Gzip(Box<BufReader<MultiGzDecoder<File>>>),
}

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Input::Plain(r) => r.read(buf),
            Input::Gzip(r) => r.read(buf),
        }
    }
}

impl BufRead for Input {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        match self {
            Input::Plain(r) => r.fill_buf(),
            Input::Gzip(r) => r.fill_buf(),
        }
    }
    fn consume(&mut self, n: usize) {
        match self {
            Input::Plain(r) => r.consume(n),
            Input::Gzip(r) => r.consume(n),
        }
    }
}

/// One line read.
pub struct Line {
    /// Bytes consumed, newline included.
    pub read: usize,
    /// Ended with a newline (an unterminated last line may still be being written).
    pub complete: bool,
    /// Longer than `MAX_LINE_BYTES`: its bytes were not kept.
    pub too_long: bool,
}

/// Reads one line into `line`, keeping at most `MAX_LINE_BYTES` of it.
pub fn read_line(input: &mut impl BufRead, line: &mut Vec<u8>) -> io::Result<Line> {
    let mut read = 0;
    let mut too_long = false;
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            return Ok(Line {
                read,
                complete: false,
                too_long,
            });
        }
        let (chunk, done) = match memchr::memchr(b'\n', buf) {
            Some(i) => (&buf[..=i], true),
            None => (buf, false),
        };
        if line.len() + chunk.len() > MAX_LINE_BYTES {
            too_long = true;
        } else {
            line.extend_from_slice(chunk);
        }
        let n = chunk.len();
        input.consume(n);
        read += n;
        if done {
            return Ok(Line {
                read,
                complete: true,
                too_long,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_bounded() -> io::Result<()> {
        let mut data = vec![b'x'; MAX_LINE_BYTES + 10];
        data.push(b'\n');
        data.extend_from_slice(b"ok\n");
        let mut input = io::Cursor::new(data);
        let mut line = Vec::new();
        let l = read_line(&mut input, &mut line)?;
        assert_eq!(
            (l.read, l.complete, l.too_long),
            (MAX_LINE_BYTES + 11, true, true)
        );
        assert!(line.len() <= MAX_LINE_BYTES);
        line.clear();
        let l = read_line(&mut input, &mut line)?;
        assert_eq!((l.read, l.complete, l.too_long), (3, true, false));
        assert_eq!(line, b"ok\n");
        Ok(())
    }

    #[test]
    fn a_grown_file_is_still_the_same_file() {
        let small = b"line one\n".to_vec();
        let mut state = FileState::new(&small, 0);
        state.saw(&small, Path::new("a.log"), 0);
        let grown = b"line one\nline two\n".to_vec();
        assert_eq!(find_state(std::slice::from_ref(&state), &grown), Some(0));
        assert_eq!(find_state(&[state], b"other\n"), None);
    }
}
