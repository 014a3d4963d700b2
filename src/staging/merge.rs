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

impl<'a> SortKey<'a> {
    /// The key of a row not made yet (derived rows, made as the merge takes them).
    pub fn new(dataset: Dataset, vendor: &'a str, tenant: &'a str, time: i64, uid: Uuid) -> Self {
        SortKey {
            dataset,
            vendor,
            tenant,
            time,
            uid,
        }
    }

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

/// `SortKey`, owned: what a segment header says of its first and last records.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Key {
    dataset: Dataset,
    vendor: String,
    tenant: String,
    time: i64,
    uid: Uuid,
}

impl Key {
    pub fn of(record: &Record) -> Key {
        let k = SortKey::of(record);
        Key {
            dataset: k.dataset,
            vendor: k.vendor.to_string(),
            tenant: k.tenant.to_string(),
            time: k.time,
            uid: k.uid,
        }
    }
}

/// The range of sort keys a segment holds.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Bounds {
    pub first: Key,
    pub last: Key,
}

/// Past this many inputs, segments are merged in rounds through temporary files, so open
/// files and buffers stay bounded however many segments a week has. A round costs a whole
/// extra pass (encode, compress, decode), so the bound is high: an input costs about
/// 60 KB (its buffer, the decompressor's state and window).
const MAX_FAN_IN: usize = 256;

/// Decompressed bytes buffered per input.
const READ_BUFFER: usize = 8 * 1024;

/// How a segment's records are encoded, as its header's `format` says. The header itself is
/// always a JSON line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Format {
    /// A JSON line per record: segments written before 2.
    JsonLines,
    /// A record per frame: its length (u32, little-endian), then the record in MessagePack,
    /// structs as arrays. A merge takes half the instructions it took over JSON lines and a
    /// week's segments are a third smaller; an array shorter than its struct (staged before
    /// columns were appended) still decodes, its missing fields taking their
    /// `#[serde(default)]`.
    MessagePack,
}

impl Format {
    /// What new segments are written in.
    pub(super) const CURRENT: Format = Format::MessagePack;

    pub(super) fn number(self) -> u32 {
        match self {
            Format::JsonLines => 1,
            Format::MessagePack => 2,
        }
    }

    fn of(number: u32) -> Result<Format> {
        match number {
            1 => Ok(Format::JsonLines),
            2 => Ok(Format::MessagePack),
            n => anyhow::bail!(
                "staging format {n} is newer than this build reads (1 or 2): run the scopetrail that wrote it"
            ),
        }
    }
}

/// Reads a chain of segments one after another: their key ranges follow each other, so the
/// chain is as sorted as one segment.
struct Reader {
    chain: std::vec::IntoIter<PathBuf>,
    path: PathBuf,
    input: Box<dyn BufRead + Send>,
    /// The members still to read, when only some are: where each starts, and its length.
    members: std::vec::IntoIter<(u64, u64)>,
    format: Format,
    /// The current record's bytes: a JSON line, or a MessagePack frame's body.
    buf: String,
    frame: Vec<u8>,
    /// The current record's number in its segment, for errors.
    number: u64,
    /// The datasets wanted, when not all are.
    wanted: Option<Vec<Dataset>>,
    /// `{"<dataset>":` of each dataset wanted: the start of their records.
    only: Option<Vec<String>>,
}

impl Reader {
    fn open(chain: Vec<PathBuf>, only: Option<&[Dataset]>) -> Result<Reader> {
        let mut reader = Reader {
            chain: chain.into_iter(),
            path: PathBuf::new(),
            input: Box::new(std::io::empty()),
            members: Vec::new().into_iter(),
            format: Format::JsonLines,
            buf: String::new(),
            frame: Vec::new(),
            number: 0,
            wanted: only.map(<[Dataset]>::to_vec),
            only: only.map(|ds| ds.iter().map(|d| format!("{{\"{}\":", d.name())).collect()),
        };
        reader.open_next()?;
        Ok(reader)
    }

    /// Starts on the next segment of the chain; false at its end.
    fn open_next(&mut self) -> Result<bool> {
        let Some(path) = self.chain.next() else {
            return Ok(false);
        };
        let file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let len = file.metadata()?.len();
        self.path = path;
        self.number = 0;
        self.members = Vec::new().into_iter();
        self.input = Box::new(BufReader::with_capacity(
            READ_BUFFER,
            MultiGzDecoder::new(file),
        ));
        // The first line is the segment header.
        self.buf.clear();
        self.input.read_line(&mut self.buf)?;
        self.format =
            header_format(&self.buf).with_context(|| format!("reading {}", self.path.display()))?;
        if let Some(wanted) = &self.wanted
            && let Some(members) = wanted_members(&self.buf, wanted, len)
        {
            self.input = Box::new(std::io::empty());
            self.members = members.into_iter();
        }
        Ok(true)
    }

    /// The next record's bytes of the chain.
    fn read_record(&mut self) -> Result<bool> {
        loop {
            if self.read_record_here()? {
                return Ok(true);
            }
            if !self.open_next()? {
                return Ok(false);
            }
        }
    }

    /// The next record's bytes of the current segment.
    fn read_record_here(&mut self) -> Result<bool> {
        self.number += 1;
        loop {
            let read = match self.format {
                Format::JsonLines => {
                    self.buf.clear();
                    self.input.read_line(&mut self.buf)? > 0
                }
                Format::MessagePack => {
                    read_frame(&mut self.input, &mut self.frame).with_context(|| {
                        format!("{}: record {}: cut short", self.path.display(), self.number)
                    })?
                }
            };
            if read {
                return Ok(true);
            }
            let Some((offset, length)) = self.members.next() else {
                return Ok(false);
            };
            let mut file = File::open(&self.path)
                .with_context(|| format!("opening {}", self.path.display()))?;
            file.seek(SeekFrom::Start(offset))?;
            self.input = Box::new(BufReader::with_capacity(
                READ_BUFFER,
                GzDecoder::new(file.take(length)),
            ));
        }
    }

    fn next(&mut self) -> Result<Option<Record>> {
        loop {
            if !self.read_record()? {
                return Ok(None);
            }
            let unreadable = || {
                format!(
                    "{}: record {}: unreadable staged record",
                    self.path.display(),
                    self.number
                )
            };
            let record: Record = match self.format {
                Format::JsonLines => {
                    // Records are written externally tagged, so the tag is the first key:
                    // records of other datasets are passed over without being decoded.
                    if let Some(only) = &self.only
                        && !only.iter().any(|o| self.buf.starts_with(o.as_str()))
                    {
                        continue;
                    }
                    serde_json::from_str(&self.buf).with_context(unreadable)?
                }
                // These segments list their members, so only wanted records are read, except
                // in a merge round's file, which holds only wanted ones.
                Format::MessagePack => {
                    rmp_serde::from_slice(&self.frame).with_context(unreadable)?
                }
            };
            if let Some(wanted) = &self.wanted
                && !wanted.contains(&record.dataset())
            {
                continue;
            }
            return Ok(Some(record));
        }
    }
}

/// Boxed: the heap moves its entries at every push and pop, and a record is hundreds of
/// bytes.
struct Head {
    record: Box<Record>,
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

/// Rows from memory (derived at export), already in `SortKey` order.
type Rows<'a> = Box<dyn Iterator<Item = Record> + 'a>;

pub struct Merge<'a> {
    readers: Vec<Reader>,
    heap: BinaryHeap<Head>,
    last_uid: Option<Uuid>,
    _rounds: Vec<tempfile::TempPath>,
    /// Inputs from memory, numbered after the readers in `Head::reader`.
    rows: Vec<Rows<'a>>,
}

impl<'a> Merge<'a> {
    /// Merges sorted segment files; `scratch` takes intermediate rounds when there are many.
    pub fn open(paths: &[PathBuf], scratch: &Path) -> Result<Merge<'a>> {
        Merge::open_only(paths, None, scratch)
    }

    /// Like `open`, for the records of some datasets only: the others are passed over without
    /// being decoded.
    pub fn open_only(
        paths: &[PathBuf],
        only: Option<&[Dataset]>,
        scratch: &Path,
    ) -> Result<Merge<'a>> {
        let mut rounds = Vec::new();
        let mut inputs = chains(paths)?;
        while inputs.len() > MAX_FAN_IN {
            let mut next = Vec::new();
            for chunk in inputs.chunks(MAX_FAN_IN) {
                let tmp = tempfile::Builder::new()
                    .prefix("merge-")
                    .tempfile_in(scratch)?
                    .into_temp_path();
                Merge::open_direct(chunk, only, Vec::new())?.write_to(&tmp)?;
                next.push(vec![tmp.to_path_buf()]);
                rounds.push(tmp);
            }
            inputs = next;
        }
        Merge::open_direct(&inputs, only, rounds)
    }

    fn open_direct(
        chains: &[Vec<PathBuf>],
        only: Option<&[Dataset]>,
        rounds: Vec<tempfile::TempPath>,
    ) -> Result<Merge<'a>> {
        let mut readers = Vec::with_capacity(chains.len());
        let mut heap = BinaryHeap::with_capacity(chains.len());
        for (i, chain) in chains.iter().enumerate() {
            let mut reader = Reader::open(chain.clone(), only)?;
            if let Some(record) = reader.next()? {
                heap.push(Head {
                    record: Box::new(record),
                    reader: i,
                });
            }
            readers.push(reader);
        }
        Ok(Merge {
            readers,
            heap,
            last_uid: None,
            _rounds: rounds,
            rows: Vec::new(),
        })
    }

    /// Adds rows held in memory to the merge.
    pub fn with_rows(self, mut rows: Vec<Record>) -> Merge<'a> {
        rows.sort_by(|a, b| SortKey::of(a).cmp(&SortKey::of(b)));
        self.with_sorted(rows.into_iter())
    }

    /// Adds rows made one at a time, which must come in `SortKey` order.
    pub fn with_sorted(mut self, rows: impl Iterator<Item = Record> + 'a) -> Merge<'a> {
        let mut rows: Rows<'a> = Box::new(rows);
        if let Some(record) = rows.next() {
            self.heap.push(Head {
                record: Box::new(record),
                reader: self.readers.len() + self.rows.len(),
            });
        }
        self.rows.push(rows);
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
                None => self
                    .rows
                    .get_mut(reader - self.readers.len())
                    .and_then(|rows| rows.next()),
            };
            if let Some(next) = next {
                self.heap.push(Head {
                    record: Box::new(next),
                    reader,
                });
            }
            let uid = record.head().event_uid;
            if self.last_uid == Some(uid) {
                continue;
            }
            self.last_uid = Some(uid);
            return Ok(Some(*record));
        }
    }

    fn write_to(mut self, path: &Path) -> Result<()> {
        let mut gz = crate::gz::writer(File::create(path)?, Compression::fast());
        writeln!(gz, "{{\"format\":{}}}", Format::CURRENT.number())?;
        let mut frame = Vec::new();
        while let Some(record) = self.next_record()? {
            write_record(&mut gz, &mut frame, &record)?;
        }
        crate::gz::finish(gz)?.flush()?;
        Ok(())
    }
}

/// The segments grouped into chains whose key ranges follow each other, so each chain is
/// read as one sorted input: a collection's segments usually do not overlap (a newest-first
/// sweep stages ever older pages, a log ever newer lines), and the merge then holds one
/// reader instead of one per segment. Segments without bounds are inputs of their own.
fn chains(paths: &[PathBuf]) -> Result<Vec<Vec<PathBuf>>> {
    let mut bounded = Vec::new();
    let mut chains: Vec<Vec<PathBuf>> = Vec::new();
    for path in paths {
        match read_bounds(path)? {
            Some(b) => bounded.push((b, path.clone())),
            None => chains.push(vec![path.clone()]),
        }
    }
    bounded.sort_by(|a, b| a.0.first.cmp(&b.0.first));
    // Each segment goes after the chain that ends latest before it starts (strictly: a
    // record staged twice must meet itself in the heap, where it is dropped).
    let mut ends: Vec<(Key, Vec<PathBuf>)> = Vec::new();
    for (b, path) in bounded {
        let best = ends
            .iter_mut()
            .filter(|(end, _)| *end < b.first)
            .max_by(|x, y| x.0.cmp(&y.0));
        match best {
            Some((end, chain)) => {
                *end = b.last;
                chain.push(path);
            }
            None => ends.push((b.last, vec![path])),
        }
    }
    chains.extend(ends.into_iter().map(|(_, chain)| chain));
    Ok(chains)
}

/// The format a header line names; segments written before formats were numbered have none
/// (merge rounds) or 1, and are JSON lines.
fn header_format(header: &str) -> Result<Format> {
    #[derive(serde::Deserialize)]
    struct Listed {
        #[serde(default)]
        format: Option<u32>,
    }
    let listed: Listed = serde_json::from_str(header).context("the header line is not JSON")?;
    listed.format.map_or(Ok(Format::JsonLines), Format::of)
}

/// A MessagePack frame into `frame`; false at the end of the input.
fn read_frame(input: &mut dyn BufRead, frame: &mut Vec<u8>) -> std::io::Result<bool> {
    if input.fill_buf()?.is_empty() {
        return Ok(false);
    }
    let mut length = [0; 4];
    input.read_exact(&mut length)?;
    frame.clear();
    let length = u64::from(u32::from_le_bytes(length));
    let read = input.take(length).read_to_end(frame)?;
    if (read as u64) < length {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(true)
}

/// A segment's bounds, from its header line.
fn read_bounds(path: &Path) -> Result<Option<Bounds>> {
    #[derive(serde::Deserialize)]
    struct Listed {
        #[serde(default)]
        bounds: Option<Bounds>,
    }
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut line = String::new();
    BufReader::with_capacity(4096, GzDecoder::new(file)).read_line(&mut line)?;
    Ok(serde_json::from_str::<Listed>(&line)
        .ok()
        .and_then(|l| l.bounds))
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

/// A record as a frame of `Format::CURRENT`, encoded in `frame` first: the encoder's many
/// small writes cost less into a `Vec` than through a buffered gzip writer.
pub(super) fn write_record(
    out: &mut impl Write,
    frame: &mut Vec<u8>,
    record: &Record,
) -> Result<()> {
    frame.clear();
    frame.extend_from_slice(&[0; 4]);
    rmp_serde::encode::write(frame, record)?;
    let length = u32::try_from(frame.len() - 4).context("a staged record over 4 GiB")?;
    frame[..4].copy_from_slice(&length.to_le_bytes());
    out.write_all(frame)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Header, RateLimitEvent};

    /// `open_only` passes format 1's records over by their first key, which must be the
    /// dataset's name.
    #[test]
    fn staged_records_start_with_their_dataset_name() {
        let record = event(0, 0);
        let text = serde_json::to_string(&record).unwrap_or_default();
        assert!(
            text.starts_with(&format!("{{\"{}\":", Dataset::RateLimitEvents.name())),
            "{text}"
        );
    }

    /// A segment staged before a column was appended holds shorter arrays: the new field
    /// takes its default, and the fields before it are read as they were.
    #[test]
    fn a_record_staged_before_a_column_was_appended_reads_with_its_default() -> Result<()> {
        let full: Record = crate::model::Denial {
            head: Header {
                time: 5,
                event_uid: Uuid::from_u128(9),
                vendor: "github".into(),
                ..Default::default()
            },
            http_status: Some(403),
            request_id: Some("r".into()),
            ..Default::default()
        }
        .into();
        let mut frame = Vec::new();
        write_record(&mut Vec::new(), &mut frame, &full)?;
        let mut bytes = frame[4..].to_vec();
        // {"denials": [head, 15 fields]}, the last being request_id "r": drop it.
        let array = b"\xa7denials\xdc\x00\x10";
        let at = bytes
            .windows(array.len())
            .position(|w| w == array)
            .context("a denial is a one-entry map to an array of 16")?;
        bytes[at + array.len() - 1] = 0x0f;
        assert_eq!(bytes.split_off(bytes.len() - 2), b"\xa1r");
        let read: Record = rmp_serde::from_slice(&bytes)?;
        let Record::Denials(read) = read else {
            anyhow::bail!("not a denial: {read:?}");
        };
        assert_eq!((read.head.time, read.http_status), (5, Some(403)));
        assert_eq!(read.request_id, None);
        Ok(())
    }

    #[test]
    fn a_newer_format_or_a_cut_record_is_an_error_naming_the_segment() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let write = |name: &str, header: &str, body: &[u8]| -> Result<PathBuf> {
            let path = dir.path().join(name);
            let mut gz = crate::gz::writer(Vec::new(), Compression::fast());
            writeln!(gz, "{header}")?;
            gz.write_all(body)?;
            std::fs::write(&path, crate::gz::finish(gz)?)?;
            Ok(path)
        };
        let newer = write("newer.jsonl.gz", r#"{"format":3}"#, b"")?;
        let e = Merge::open(&[newer], dir.path())
            .err()
            .context("format 3 refused")?;
        let e = format!("{e:#}");
        assert!(
            e.contains("newer.jsonl.gz") && e.contains("staging format 3"),
            "{e}"
        );

        let mut frame = Vec::new();
        write_record(&mut Vec::new(), &mut frame, &event(1, 1))?;
        let mut body = frame.clone();
        body.extend_from_slice(&frame[..frame.len() - 3]);
        let cut = write("cut.jsonl.gz", r#"{"format":2}"#, &body)?;
        let mut merge = Merge::open(&[cut], dir.path())?;
        let e = format!(
            "{:#}",
            merge.next_record().err().context("record 2 is cut")?
        );
        assert!(e.contains("cut.jsonl.gz: record 2: cut short"), "{e}");
        Ok(())
    }

    fn event(time: i64, n: u128) -> Record {
        RateLimitEvent {
            head: Header {
                time,
                event_uid: Uuid::from_u128(n),
                vendor: "v".into(),
                tenant: "t".into(),
                environment: "prod".into(),
                source: "s".into(),
                source_event_uid: None,
                credential: None,
            },
            ..Default::default()
        }
        .into()
    }

    fn segment(dir: &Path, n: u64, records: &[Record]) -> PathBuf {
        let path = dir.join(format!("{n}.gz"));
        let bytes = super::super::encode_segment("s", n, chrono::Utc::now(), records, (0, vec![]))
            .expect("encode");
        std::fs::write(&path, bytes).expect("write");
        path
    }

    /// Segments whose ranges follow each other are read as one input; overlapping ones are
    /// merged; the output is the same sorted, deduplicated stream either way.
    #[test]
    fn segments_that_follow_each_other_are_chained() {
        let dir = tempfile::tempdir().expect("dir");
        let a: Vec<Record> = (1..=10).map(|t| event(t, t as u128)).collect();
        let b: Vec<Record> = (11..=20).map(|t| event(t, t as u128)).collect();
        // Overlaps both, and holds a record of `a` again.
        let mut c: Vec<Record> = (5..=15).map(|t| event(t, 1000 + t as u128)).collect();
        c.push(event(7, 7));
        let (pa, pb, pc) = (
            segment(dir.path(), 1, &a),
            segment(dir.path(), 2, &b),
            segment(dir.path(), 3, &c),
        );
        let paths = vec![pb.clone(), pc.clone(), pa.clone()];
        assert_eq!(
            chains(&paths).expect("chains"),
            vec![vec![pa, pb], vec![pc]]
        );

        let mut merge = Merge::open(&paths, dir.path()).expect("merge");
        let mut out = Vec::new();
        while let Some(r) = merge.next_record().expect("next") {
            out.push((r.head().time, r.head().event_uid.as_u128()));
        }
        let mut want: Vec<(i64, u128)> = (1..=20).map(|t| (t, t as u128)).collect();
        want.extend((5..=15).map(|t| (t, 1000 + t as u128)));
        want.sort();
        assert_eq!(out, want);
    }
}
