//! Streaming k-way merge of sorted segments: exports read a week of staging in one ordered
//! pass, holding one record per segment, never sorting the week in memory.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use flate2::Compression;
use flate2::read::{GzDecoder, MultiGzDecoder};
use uuid::Uuid;

use super::Member;
use crate::model::{Dataset, Record};

/// The order of records in segments and exports: partitions come out contiguous, rows within
/// a partition by time, ties broken by id so the bytes never depend on arrival order.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SortKey<'a> {
    dataset: Dataset,
    vendor: &'a str,
    tenant: &'a str,
    time: i64,
    uid: Uuid,
}

impl SortKey<'_> {
    pub fn of(record: &Record) -> SortKey<'_> {
        let h = record.head();
        SortKey {
            dataset: record.dataset(),
            vendor: &h.vendor,
            tenant: &h.tenant,
            time: h.time,
            uid: h.event_uid,
        }
    }
}

/// Past this many inputs, segments are merged in rounds through temporary files, so open
/// files and buffers stay bounded however many segments a week has.
const MAX_FAN_IN: usize = 64;

struct Reader {
    path: PathBuf,
    input: Box<dyn BufRead + Send>,
    /// The members still to read, when only some are: where each starts, and its length.
    members: std::vec::IntoIter<(u64, u64)>,
    buf: String,
    line: u64,
    /// `{"<dataset>":` of each dataset wanted, when not all are: the start of their records.
    only: Option<Vec<String>>,
}

impl Reader {
    fn open(path: &Path, only: Option<&[Dataset]>) -> Result<Reader> {
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let len = file.metadata()?.len();
        let mut reader = Reader {
            path: path.to_path_buf(),
            input: Box::new(BufReader::with_capacity(
                32 * 1024,
                MultiGzDecoder::new(file),
            )),
            members: Vec::new().into_iter(),
            buf: String::new(),
            line: 0,
            only: only.map(|ds| ds.iter().map(|d| format!("{{\"{}\":", d.name())).collect()),
        };
        // The first line is the segment header.
        reader.read_line()?;
        if let Some(only) = only
            && let Some(members) = wanted_members(&reader.buf, only, len)
        {
            reader.input = Box::new(std::io::empty());
            reader.members = members.into_iter();
        }
        Ok(reader)
    }

    fn read_line(&mut self) -> Result<bool> {
        self.buf.clear();
        self.line += 1;
        loop {
            if self.input.read_line(&mut self.buf)? > 0 {
                return Ok(true);
            }
            let Some((offset, length)) = self.members.next() else {
                return Ok(false);
            };
            let mut file = File::open(&self.path)
                .with_context(|| format!("opening {}", self.path.display()))?;
            file.seek(SeekFrom::Start(offset))?;
            self.input = Box::new(BufReader::with_capacity(
                32 * 1024,
                GzDecoder::new(file.take(length)),
            ));
        }
    }

    fn next(&mut self) -> Result<Option<Record>> {
        loop {
            if !self.read_line()? {
                return Ok(None);
            }
            // Records are written externally tagged, so the tag is the first key: records of
            // other datasets are passed over without being decoded.
            if let Some(only) = &self.only
                && !only.iter().any(|o| self.buf.starts_with(o.as_str()))
            {
                continue;
            }
            let record = serde_json::from_str(&self.buf).with_context(|| {
                format!(
                    "{}:{}: unreadable staged record",
                    self.path.display(),
                    self.line
                )
            })?;
            return Ok(Some(record));
        }
    }
}

struct Head {
    record: Record,
    reader: usize,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    // Reversed: BinaryHeap is a max-heap and the merge wants the smallest first.
    fn cmp(&self, other: &Self) -> Ordering {
        (SortKey::of(&other.record), other.reader).cmp(&(SortKey::of(&self.record), self.reader))
    }
}

pub struct Merge {
    readers: Vec<Reader>,
    heap: BinaryHeap<Head>,
    last_uid: Option<Uuid>,
    _rounds: Vec<tempfile::TempPath>,
    /// Rows from memory (derived at export), merged in as one more input.
    rows: std::vec::IntoIter<Record>,
}

impl Merge {
    /// Merges sorted segment files; `scratch` takes intermediate rounds when there are many.
    pub fn open(paths: &[PathBuf], scratch: &Path) -> Result<Merge> {
        Merge::open_only(paths, None, scratch)
    }

    /// Like `open`, for the records of some datasets only: the others are passed over without
    /// being decoded.
    pub fn open_only(paths: &[PathBuf], only: Option<&[Dataset]>, scratch: &Path) -> Result<Merge> {
        let mut rounds = Vec::new();
        let mut inputs: Vec<PathBuf> = paths.to_vec();
        while inputs.len() > MAX_FAN_IN {
            let mut next = Vec::new();
            for chunk in inputs.chunks(MAX_FAN_IN) {
                let tmp = tempfile::Builder::new()
                    .prefix("merge-")
                    .tempfile_in(scratch)?
                    .into_temp_path();
                Merge::open_direct(chunk, only, Vec::new())?.write_to(&tmp)?;
                next.push(tmp.to_path_buf());
                rounds.push(tmp);
            }
            inputs = next;
        }
        Merge::open_direct(&inputs, only, rounds)
    }

    fn open_direct(
        paths: &[PathBuf],
        only: Option<&[Dataset]>,
        rounds: Vec<tempfile::TempPath>,
    ) -> Result<Merge> {
        let mut readers = Vec::with_capacity(paths.len());
        let mut heap = BinaryHeap::with_capacity(paths.len());
        for (i, path) in paths.iter().enumerate() {
            let mut reader = Reader::open(path, only)?;
            if let Some(record) = reader.next()? {
                heap.push(Head { record, reader: i });
            }
            readers.push(reader);
        }
        Ok(Merge {
            readers,
            heap,
            last_uid: None,
            _rounds: rounds,
            rows: Vec::new().into_iter(),
        })
    }

    /// Adds rows held in memory to the merge.
    pub fn with_rows(mut self, mut rows: Vec<Record>) -> Merge {
        rows.sort_by(|a, b| SortKey::of(a).cmp(&SortKey::of(b)));
        let mut rows = rows.into_iter();
        if let Some(record) = rows.next() {
            self.heap.push(Head {
                record,
                reader: self.readers.len(),
            });
        }
        self.rows = rows;
        self
    }

    /// The next record in order; a record staged twice (same event_uid) comes out once.
    pub fn next_record(&mut self) -> Result<Option<Record>> {
        loop {
            let Some(Head { record, reader }) = self.heap.pop() else {
                return Ok(None);
            };
            let next = match self.readers.get_mut(reader) {
                Some(r) => r.next()?,
                None => self.rows.next(),
            };
            if let Some(next) = next {
                self.heap.push(Head {
                    record: next,
                    reader,
                });
            }
            let uid = record.head().event_uid;
            if self.last_uid == Some(uid) {
                continue;
            }
            self.last_uid = Some(uid);
            return Ok(Some(record));
        }
    }

    fn write_to(mut self, path: &Path) -> Result<()> {
        let mut gz = crate::gz::writer(File::create(path)?, Compression::fast());
        gz.write_all(b"{}\n")?;
        let mut line = Vec::new();
        while let Some(record) = self.next_record()? {
            write_record(&mut gz, &mut line, &record)?;
        }
        crate::gz::finish(gz)?.flush()?;
        Ok(())
    }
}

/// Where the members of the datasets in `only` are in a segment of `len` bytes, from its
/// header line; `None` if the header does not list members (then the segment is read whole).
fn wanted_members(header: &str, only: &[Dataset], len: u64) -> Option<Vec<(u64, u64)>> {
    #[derive(serde::Deserialize)]
    struct Listed {
        #[serde(default)]
        members: Option<Vec<Member>>,
    }
    let members = serde_json::from_str::<Listed>(header).ok()?.members?;
    // The members end the file: the first starts where their lengths, summed, begin.
    let body: u64 = members.iter().map(|m| m.length).sum();
    let start = len.checked_sub(body)?;
    let mut at = 0;
    for m in &members {
        if m.offset != at {
            return None;
        }
        at += m.length;
    }
    Some(
        members
            .iter()
            .filter(|m| only.contains(&m.dataset))
            .map(|m| (start + m.offset, m.length))
            .collect(),
    )
}

/// A record and its newline, encoded in `line` first: serde_json's many small writes cost
/// less into a `Vec` than through a buffered gzip writer.
pub(super) fn write_record(
    out: &mut impl Write,
    line: &mut Vec<u8>,
    record: &Record,
) -> Result<()> {
    line.clear();
    serde_json::to_writer(&mut *line, record)?;
    line.push(b'\n');
    out.write_all(line)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Header, RateLimitEvent};

    /// `open_only` passes records over by their first key, which must be the dataset's name.
    #[test]
    fn staged_records_start_with_their_dataset_name() {
        let head = Header {
            time: 0,
            event_uid: Uuid::nil(),
            vendor: "v".into(),
            tenant: "t".into(),
            environment: "prod".into(),
            source: "s".into(),
            source_event_uid: None,
            credential: None,
        };
        let record: Record = RateLimitEvent {
            head,
            ..Default::default()
        }
        .into();
        let text = serde_json::to_string(&record).unwrap_or_default();
        assert!(
            text.starts_with(&format!("{{\"{}\":", Dataset::RateLimitEvents.name())),
            "{text}"
        );
    }
}
