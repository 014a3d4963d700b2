//! Reads back what the export wrote (DESIGN §4, §5): the `.csv.gz` objects under
//! `v1/<dataset>/`, as `Record`s, for `scopetrail explain --from`.
//!
//! The CSV encoding is not fully reversible, and this reader does not pretend otherwise:
//! - free text (`Kind::Text`) had its control characters replaced by spaces and was cut at
//!   `MAX_TEXT_BYTES`; both are kept as read. The `'` the writer put before a leading `=`, `+`,
//!   `-` or `@` is removed, so a value that really began with `'=` comes back without its `'`;
//! - an empty cell is null: `Some("")` comes back `None`, and a known empty list
//!   (`Some(vec![])`, e.g. `privileges`) comes back unknown (`None`);
//! - ids (`Kind::Id`) had control characters percent-encoded but `%` itself left alone, so the
//!   encoding cannot be undone safely: ids come back as written (`a%0Ab` stays `a%0Ab`);
//! - list items are percent-decoded exactly; empty items are dropped.
//!
//! `time_dt` repeats `time` and is ignored. Columns a newer `v1` appended after the ones this
//! build knows are ignored.

use std::collections::hash_map::Entry;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use flate2::read::MultiGzDecoder;
use rustc_hash::FxHashMap;
use uuid::Uuid;

use super::csv::decode_list;
use crate::model::{CellValue, Column, Dataset, Kind, Record, utc_day};
use crate::store::ObjectStore;

/// The header column that repeats `time` as RFC 3339: not a field of any record.
const TIME_DT: &str = "time_dt";

/// Reads one dataset CSV (header row first) into records.
pub fn parse_csv(reader: impl Read, dataset: Dataset, name: &str) -> Result<Vec<Record>> {
    CsvRows::new(reader, dataset, name)?.collect()
}

/// The rows of one dataset CSV, one `Record` at a time. `new` reads and checks the header row.
/// Errors name the object, the line and the column: `"{name}: line {n}, column {col}: {what}"`.
/// A row that cannot be converted is an error for that row only; the rows after it can still
/// be read. An I/O error (a truncated or corrupt gzip stream) ends the iteration.
pub struct CsvRows<R: Read> {
    reader: ::csv::Reader<R>,
    dataset: Dataset,
    name: String,
    record: ::csv::ByteRecord,
    done: bool,
}

impl<R: Read> CsvRows<R> {
    pub fn new(reader: R, dataset: Dataset, name: &str) -> Result<Self> {
        let mut reader = ::csv::ReaderBuilder::new()
            .has_headers(false)
            .buffer_capacity(256 * 1024)
            .from_reader(reader);
        let mut header = ::csv::ByteRecord::new();
        let found = reader
            .read_byte_record(&mut header)
            .map_err(|e| csv_error(name, &e))?;
        anyhow::ensure!(found, "{name}: empty, expected a header row");
        check_header(&header, dataset, name)?;
        Ok(CsvRows {
            reader,
            dataset,
            name: name.to_string(),
            record: ::csv::ByteRecord::new(),
            done: false,
        })
    }

    pub fn dataset(&self) -> Dataset {
        self.dataset
    }
}

impl<R: Read> Iterator for CsvRows<R> {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        if self.done {
            return None;
        }
        match self.reader.read_byte_record(&mut self.record) {
            Ok(false) => {
                self.done = true;
                None
            }
            Ok(true) => {
                let line = self.record.position().map_or(0, |p| p.line());
                Some(record(self.dataset, &self.record, &self.name, line))
            }
            Err(e) => {
                self.done = e.is_io_error();
                Some(Err(csv_error(&self.name, &e)))
            }
        }
    }
}

fn csv_error(name: &str, e: &::csv::Error) -> anyhow::Error {
    match e.kind() {
        ::csv::ErrorKind::Io(io) => anyhow!("{name}: reading: {io}"),
        ::csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => anyhow!(
            "{name}: line {}: {len} fields where the header has {expected_len}",
            pos.as_ref().map_or(0, |p| p.line())
        ),
        _ => match e.position() {
            Some(pos) => anyhow!("{name}: line {}: {e}", pos.line()),
            None => anyhow!("{name}: {e}"),
        },
    }
}

/// The header must start with the dataset's columns, in order; columns a newer `v1` appended
/// after them are allowed.
fn check_header(header: &::csv::ByteRecord, dataset: Dataset, name: &str) -> Result<()> {
    for (i, column) in dataset.columns().enumerate() {
        let Some(found) = header.get(i) else {
            anyhow::bail!(
                "{name}: not a {} file: the header ends before column {} ({}), after {i} columns",
                dataset.name(),
                i + 1,
                column.name
            );
        };
        // Tolerated although the writer never puts one there.
        let found = if i == 0 {
            found.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(found)
        } else {
            found
        };
        if found != column.name.as_bytes() {
            anyhow::bail!(
                "{name}: not a {} file: header column {} is {:?}, expected {}",
                dataset.name(),
                i + 1,
                shown(&String::from_utf8_lossy(found)),
                column.name
            );
        }
    }
    Ok(())
}

/// A row's cells as a `Record`: each column's text typed by its `Kind`, then taken by its
/// field (`Record::from_values`).
fn record(dataset: Dataset, cells: &::csv::ByteRecord, name: &str, line: u64) -> Result<Record> {
    // Cells past the known columns (a newer v1) are never asked for.
    let mut cells = cells.iter();
    let mut value = |column: &'static Column| -> Result<CellValue, String> {
        let bytes = cells.next().ok_or("missing")?;
        if column.name == TIME_DT {
            return Ok(CellValue::Null);
        }
        let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
        if text.is_empty() {
            return Ok(CellValue::Null);
        }
        cell_value(column.kind, text)
    };
    Record::from_values(dataset, &mut value)
        .map_err(|(column, what)| anyhow!("{name}: line {line}, column {}: {what}", column.name))
}

/// A non-empty cell's value.
fn cell_value(kind: Kind, text: &str) -> Result<CellValue, String> {
    let bad = || format!("{:?} is not {}", shown(text), kind.expected());
    Ok(match kind {
        Kind::EpochMs | Kind::Integer => CellValue::Int(text.parse::<i64>().map_err(|_| bad())?),
        Kind::DateTime => {
            let time = chrono::DateTime::parse_from_rfc3339(text).map_err(|_| bad())?;
            CellValue::Int(time.timestamp_millis())
        }
        Kind::Uuid => CellValue::Uuid(Uuid::try_parse(text).map_err(|_| bad())?),
        Kind::Boolean => match text {
            "true" => CellValue::Bool(true),
            "false" => CellValue::Bool(false),
            _ => return Err(bad()),
        },
        Kind::Id => CellValue::Str(text.to_string()),
        Kind::Text => CellValue::Str(unneutralize(text).to_string()),
        Kind::List => CellValue::List(decode_list(unneutralize(text))),
    })
}

/// Removes the `'` the writer puts before a leading `=`, `+`, `-` or `@` (and nothing else).
fn unneutralize(text: &str) -> &str {
    match text.as_bytes() {
        [b'\'', b'=' | b'+' | b'-' | b'@', ..] => &text[1..],
        _ => text,
    }
}

/// A cell as quoted in an error message: at most 60 characters.
fn shown(text: &str) -> String {
    const MAX: usize = 60;
    match text.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// The revision of a row whose dataset has a `revision` column: a later revision of the same
/// `event_uid` replaces the earlier ones.
fn revision(record: &Record) -> Option<i64> {
    match record {
        Record::RateLimitBursts(r) => r.revision,
        Record::Findings(r) => r.revision,
        _ => None,
    }
}

/// What `for_each_exported` hands each row to, one object at a time on a blocking thread.
pub trait Sink: Send + 'static {
    fn add(&mut self, record: Record);
}

/// One row per (dataset, `event_uid`): the highest revision, or the first seen.
#[derive(Default)]
struct Latest {
    rows: Vec<Record>,
    at: FxHashMap<(Dataset, Uuid), usize>,
}

impl Sink for Latest {
    fn add(&mut self, record: Record) {
        match self.at.entry((record.dataset(), record.head().event_uid)) {
            Entry::Vacant(e) => {
                e.insert(self.rows.len());
                self.rows.push(record);
            }
            Entry::Occupied(e) => {
                if let Some(kept) = self.rows.get_mut(*e.get())
                    && revision(&record) > revision(kept)
                {
                    *kept = record;
                }
            }
        }
    }
}

/// Whether an exported object is to be read: a `.csv.gz` outside `_` folders, of a day not
/// entirely before `since_day`.
fn wanted(key: &str, since_day: Option<&str>, job: Option<(Dataset, &str)>) -> bool {
    // `<dataset>-<job>-e<export>.csv.gz`: a job named `weekly` is not `weekly-eu`.
    let of_job = |(dataset, job): (Dataset, &str)| {
        key.rsplit('/')
            .next()
            .and_then(|name| name.strip_prefix(dataset.name()))
            .and_then(|rest| rest.strip_prefix('-'))
            .and_then(|rest| rest.strip_prefix(job))
            .and_then(|rest| rest.strip_prefix("-e"))
            .and_then(|rest| rest.strip_suffix(".csv.gz"))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    key.ends_with(".csv.gz")
        && job.is_none_or(of_job)
        && key.split('/').all(|segment| {
            !segment.starts_with('_')
                && match (segment.strip_prefix("dt="), since_day) {
                    (Some(day), Some(since)) => day >= since,
                    _ => true,
                }
        })
}

/// The exported rows of `datasets` in a store (keys relative to the store's own prefix, as
/// the export wrote them), one per `event_uid` (the highest revision where the dataset has
/// one), with `time >= since_ms`. Objects of days entirely before `since_ms`'s day are not
/// read. With `job`, only the objects that job's exports wrote. S3 objects are downloaded to
/// `scratch` one at a time and deleted once read.
pub async fn read_exported(
    store: &dyn ObjectStore,
    datasets: &[Dataset],
    since_ms: Option<i64>,
    job: Option<&str>,
    scratch: &Path,
) -> Result<Vec<Record>> {
    let latest =
        for_each_exported(store, datasets, since_ms, job, scratch, Latest::default()).await?;
    let mut rows = latest.rows;
    // After the dedup: a later revision moved before `since_ms` takes the row out.
    if let Some(since) = since_ms {
        rows.retain(|r| r.head().time >= since);
    }
    Ok(rows)
}

/// Every row of the exported objects of `datasets`, dataset after dataset in the order given,
/// to `sink`, without keeping them: for readers whose memory must not grow with the data.
/// Rows are as written: revisions are not deduplicated, and objects of days entirely before
/// `since_ms`'s day are skipped but the rows of the objects read are not filtered by time.
pub async fn for_each_exported<S: Sink>(
    store: &dyn ObjectStore,
    datasets: &[Dataset],
    since_ms: Option<i64>,
    job: Option<&str>,
    scratch: &Path,
    sink: S,
) -> Result<S> {
    let since_day = since_ms.map(utc_day);
    let mut sink = sink;
    let mut done: Vec<Dataset> = Vec::new();
    for &dataset in datasets {
        if done.contains(&dataset) {
            continue;
        }
        done.push(dataset);
        let prefix = format!("v1/{}/", dataset.name());
        let keys = store
            .list(&prefix)
            .await
            .with_context(|| format!("listing {prefix} in {}", store.location()))?;
        for key in keys {
            if !wanted(&key, since_day.as_deref(), job.map(|j| (dataset, j))) {
                continue;
            }
            let Some(copy) = store
                .fetch_to_file(&key, scratch)
                .await
                .with_context(|| format!("reading {key} from {}", store.location()))?
            else {
                tracing::warn!(key = %key, "an exported object was listed but is gone");
                continue;
            };
            sink = tokio::task::spawn_blocking(move || {
                let mut sink = sink;
                let file = File::open(copy.path())
                    .with_context(|| format!("{key}: opening {}", copy.path().display()))?;
                for record in CsvRows::new(MultiGzDecoder::new(file), dataset, &key)? {
                    sink.add(record?);
                }
                anyhow::Ok(sink)
            })
            .await??;
        }
    }
    Ok(sink)
}

#[cfg(test)]
mod tests {
    use flate2::Compression;

    use super::*;
    use crate::model::uid::uid_of;
    use crate::model::{
        Denial, Finding, HEADER_COLUMNS, Header, RateLimitBurst, TokenSnapshot, WebhookFailure,
    };
    use crate::output::csv::CsvEncoder;
    use crate::staging::Partition;
    use crate::store::local::LocalStore;
    use crate::store::{Body, Metadata, keys};

    const T: i64 = 1_772_668_920_123; // 2026-03-05T00:02:00.123Z

    fn csv_of(dataset: Dataset, rows: &[Record]) -> Result<String> {
        let mut enc = CsvEncoder::new(Vec::new(), dataset)?;
        for r in rows {
            enc.write(r)?;
        }
        Ok(String::from_utf8(enc.finish()?)?)
    }

    fn round_trip(dataset: Dataset, rows: &[Record]) -> Result<Vec<Record>> {
        parse_csv(csv_of(dataset, rows)?.as_bytes(), dataset, "test.csv")
    }

    fn head(dataset: Dataset, seed: i64, time: i64) -> Header {
        Header {
            time,
            event_uid: uid_of(&[dataset.name(), &seed.to_string()]),
            vendor: "github".into(),
            tenant: "acme corp".into(),
            environment: "prod".into(),
            source: "github.audit_log".into(),
            source_event_uid: Some("+evt/1==".into()),
            credential: Some("ci-bot".into()),
        }
    }

    /// A record of `dataset` made column by column, as a reader would, so that every column,
    /// including those appended later, is covered: `head`'s values, then `specific`'s.
    fn record_of(
        dataset: Dataset,
        head: &Header,
        specific: impl Fn(usize, &Column) -> CellValue,
    ) -> Result<Record> {
        let mut at = 0usize;
        let mut value = |column: &'static Column| -> Result<CellValue, String> {
            at += 1;
            let text = |s: &str| CellValue::Str(s.to_string());
            Ok(match (at - 1).checked_sub(HEADER_COLUMNS.len()) {
                Some(i) => specific(i, column),
                None => match column.name {
                    "time" => CellValue::Int(head.time),
                    "event_uid" => CellValue::Uuid(head.event_uid),
                    "vendor" => text(&head.vendor),
                    "tenant" => text(&head.tenant),
                    "environment" => text(&head.environment),
                    "source" => text(&head.source),
                    "source_event_uid" => head
                        .source_event_uid
                        .as_deref()
                        .map_or(CellValue::Null, text),
                    "credential" => head.credential.as_deref().map_or(CellValue::Null, text),
                    _ => CellValue::Null,
                },
            })
        };
        Record::from_values(dataset, &mut value)
            .map_err(|(column, what)| anyhow!("{}: {what}", column.name))
    }

    /// A record of `dataset` with every column set.
    fn full_record(dataset: Dataset, seed: i64) -> Result<Record> {
        let texts = [
            "=1+2, \"quoted\"",
            "+33 1 23",
            "-x",
            "@user é ✓",
            "'plain' text, with a comma",
            "a=b",
        ];
        record_of(dataset, &head(dataset, seed, T + seed), |i, column| {
            let n = i as i64 + seed;
            match column.kind {
                Kind::Text => CellValue::Str(texts[(i + seed as usize) % texts.len()].into()),
                Kind::Id => CellValue::Str(format!("-id+/{n}==")),
                Kind::Integer => CellValue::Int(-42 - n),
                Kind::Boolean => CellValue::Bool(n % 2 == 0),
                Kind::DateTime | Kind::EpochMs => CellValue::Int(T + n),
                Kind::Uuid => CellValue::Uuid(uid_of(&[&n.to_string()])),
                Kind::List => CellValue::List(
                    ["=SUM(A1)", "role:Org Admin", "50%", "a%20b", "tab\there"]
                        .map(String::from)
                        .to_vec(),
                ),
            }
        })
    }

    /// Every field null or empty.
    fn empty_record(dataset: Dataset, seed: i64) -> Result<Record> {
        let head = Header {
            time: T,
            event_uid: uid_of(&["empty", dataset.name(), &seed.to_string()]),
            ..Header::default()
        };
        record_of(dataset, &head, |_, _| CellValue::Null)
    }

    #[test]
    fn records_are_tagged_by_dataset_name_and_every_column_is_a_field() -> Result<()> {
        for &dataset in Dataset::ALL.iter().chain(Dataset::INTERNAL) {
            let record = full_record(dataset, 0)?;
            assert_eq!(record.dataset(), dataset);
            let tagged = serde_json::to_value(&record)?;
            assert!(tagged.get(dataset.name()).is_some(), "{tagged}");
            // Every field was set from a column: none is left at its default.
            let fields = tagged[dataset.name()].as_object().map_or(0, |o| o.len());
            assert_eq!(fields, dataset.specific_columns().len() + 1, "{tagged}");
            assert!(
                tagged[dataset.name()]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .all(|(_, v)| !v.is_null()),
                "{tagged}"
            );
            // Dedup knows every dataset that has a revision.
            let has_revision = dataset.columns().any(|c| c.name == "revision");
            assert_eq!(revision(&record).is_some(), has_revision, "{dataset:?}");
        }
        Ok(())
    }

    #[test]
    fn every_dataset_round_trips_through_the_writer() -> Result<()> {
        for &dataset in Dataset::ALL {
            let rows = vec![
                full_record(dataset, 0)?,
                empty_record(dataset, 1)?,
                full_record(dataset, 3)?,
            ];
            assert_eq!(round_trip(dataset, &rows)?, rows, "{dataset:?}");
        }
        Ok(())
    }

    #[test]
    fn chosen_values_round_trip() -> Result<()> {
        let denial = Denial {
            head: Header {
                credential: None,
                ..head(Dataset::Denials, 1, 0)
            },
            http_status: Some(403),
            error_message: Some("=cmd|' /C calc'!A0".into()),
            error_code: Some("'quoted".into()),
            api_operation: Some("@op".into()),
            credential_uid: Some("+abc/def==".into()),
            required_scope: vec!["repo".into(), "read:org".into()],
            request_id: Some("-".into()),
            ..Denial::default()
        };
        let webhook = WebhookFailure {
            head: head(Dataset::WebhookFailures, 2, T),
            redelivery: Some(false),
            attempt: Some(0),
            latency_ms: Some(-1),
            ..WebhookFailure::default()
        };
        let webhook_true = WebhookFailure {
            head: head(Dataset::WebhookFailures, 3, crate::model::MAX_TIME_MS),
            redelivery: Some(true),
            ..WebhookFailure::default()
        };
        let snapshot = TokenSnapshot {
            head: head(Dataset::TokenSnapshots, 4, T),
            privileges: Some(vec!["role:Org Admin".into(), "scp:100%".into()]),
            privileges_requested: None,
            audience: vec!["-aud".into(), "b c".into()],
            issued_at_dt: Some(0),
            expires_at_dt: Some(T + 3_600_000),
            not_before_dt: None,
            privileges_added: vec!["x\ny".into()],
            ..TokenSnapshot::default()
        };
        let text = csv_of(Dataset::Denials, &[denial.clone().into()])?;
        assert!(text.contains(",'=cmd|' /C calc'!A0,"), "{text}");
        assert!(text.contains(",+abc/def==,"), "{text}");
        assert_eq!(
            round_trip(Dataset::Denials, &[denial.clone().into()])?,
            [denial.into()]
        );
        let webhooks: Vec<Record> = vec![webhook.into(), webhook_true.into()];
        assert_eq!(round_trip(Dataset::WebhookFailures, &webhooks)?, webhooks);
        let text = csv_of(Dataset::TokenSnapshots, &[snapshot.clone().into()])?;
        assert!(text.contains(",role:Org%20Admin scp:100%25,"), "{text}");
        assert!(text.contains(",'-aud b%20c,"), "{text}");
        assert!(text.contains(",1970-01-01T00:00:00.000Z,"), "{text}");
        assert_eq!(
            round_trip(Dataset::TokenSnapshots, &[snapshot.clone().into()])?,
            [snapshot.into()]
        );
        Ok(())
    }

    #[test]
    fn what_the_encoding_loses() -> Result<()> {
        let snapshot = TokenSnapshot {
            head: head(Dataset::TokenSnapshots, 1, T),
            status: Some(String::new()),
            issuer: Some("'=x".into()),
            subject: Some("a\r\nb".into()),
            identity: Some("'@".into()),
            credential_uid: Some("id\nbreak".into()),
            privileges: Some(vec![]),
            audience: vec![String::new(), "a".into()],
            ..TokenSnapshot::default()
        };
        let back = round_trip(Dataset::TokenSnapshots, &[snapshot.into()])?;
        let Some(Record::TokenSnapshots(back)) = back.first() else {
            anyhow::bail!("{back:?}");
        };
        assert_eq!(back.status, None, "empty text is null");
        assert_eq!(
            back.issuer.as_deref(),
            Some("=x"),
            "a real leading ' is lost"
        );
        assert_eq!(
            back.subject.as_deref(),
            Some("a  b"),
            "controls become spaces"
        );
        assert_eq!(back.identity.as_deref(), Some("@"));
        assert_eq!(
            back.credential_uid.as_deref(),
            Some("id%0Abreak"),
            "ids are not decoded"
        );
        assert_eq!(back.privileges, None, "a known empty list reads as unknown");
        assert_eq!(back.audience, ["a"], "empty items are dropped");
        Ok(())
    }

    #[test]
    fn unneutralize_strips_only_what_the_writer_added() {
        for (cell, value) in [
            ("'=1", "=1"),
            ("'+1", "+1"),
            ("'-1", "-1"),
            ("'@a", "@a"),
            ("'a", "'a"),
            ("''=1", "''=1"),
            ("'", "'"),
            ("=1", "=1"),
            ("", ""),
        ] {
            assert_eq!(unneutralize(cell), value, "{cell:?}");
        }
    }

    fn denial_csv() -> Result<String> {
        let rows: Vec<Record> = (0..2)
            .map(|i| {
                Denial {
                    head: head(Dataset::Denials, i, T),
                    http_status: Some(401),
                    ..Denial::default()
                }
                .into()
            })
            .collect();
        csv_of(Dataset::Denials, &rows)
    }

    fn error_of(text: &str, dataset: Dataset) -> String {
        match parse_csv(text.as_bytes(), dataset, "obj.csv") {
            Ok(rows) => format!("no error, {} rows", rows.len()),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_wrong_header_names_the_object_and_the_column() -> Result<()> {
        let text = denial_csv()?;
        let renamed = text.replacen(",error_code,", ",err_code,", 1);
        assert_eq!(
            error_of(&renamed, Dataset::Denials),
            "obj.csv: not a denials file: header column 12 is \"err_code\", expected error_code"
        );
        let err = error_of(&text, Dataset::Changes);
        assert!(
            err.starts_with(
                "obj.csv: not a changes file: header column 10 is \"http_status\", expected action"
            ),
            "{err}"
        );
        let short = "time,time_dt,event_uid\n";
        let err = error_of(short, Dataset::Denials);
        assert!(
            err.starts_with(
                "obj.csv: not a denials file: the header ends before column 4 (vendor)"
            ),
            "{err}"
        );
        assert!(error_of("", Dataset::Denials).contains("empty"));
        Ok(())
    }

    #[test]
    fn trailing_columns_of_a_newer_v1_are_ignored() -> Result<()> {
        let text = denial_csv()?;
        let wider: String = text
            .lines()
            .enumerate()
            .map(|(i, l)| match i {
                0 => format!("{l},future_column\n"),
                _ => format!("{l},\"x, y\"\n"),
            })
            .collect();
        let want = parse_csv(text.as_bytes(), Dataset::Denials, "a")?;
        assert_eq!(parse_csv(wider.as_bytes(), Dataset::Denials, "b")?, want);
        assert_eq!(want.len(), 2);
        Ok(())
    }

    #[test]
    fn bad_cells_name_the_line_and_the_column() -> Result<()> {
        let text = denial_csv()?;
        let lines: Vec<&str> = text.lines().collect();
        let (Some(header), Some(good), Some(bad)) = (lines.first(), lines.get(1), lines.get(2))
        else {
            anyhow::bail!("{text}");
        };
        let with = |bad: String| format!("{header}\n{good}\n{bad}\n");
        let err = error_of(&with(bad.replacen(",401,", ",4o1,", 1)), Dataset::Denials);
        assert_eq!(
            err,
            "obj.csv: line 3, column http_status: \"4o1\" is not an integer"
        );
        // time_dt repeats time and is not read.
        let err = error_of(
            &with(bad.replacen("2026-03-05T00:02:00.123Z", "noon", 1)),
            Dataset::Denials,
        );
        assert_eq!(err, "no error, 2 rows");
        let (time, rest) = bad.split_once(',').unwrap_or_default();
        let err = error_of(&with(format!(",{rest}")), Dataset::Denials);
        assert_eq!(
            err,
            "obj.csv: line 3, column time: empty, expected an integer"
        );
        let err = error_of(&with(format!("{time}x,{rest}")), Dataset::Denials);
        assert!(err.starts_with("obj.csv: line 3, column time: "), "{err}");
        let uid = head(Dataset::Denials, 1, T).event_uid.to_string();
        let err = error_of(&with(bad.replacen(&uid, "not-a-uuid", 1)), Dataset::Denials);
        assert_eq!(
            err,
            "obj.csv: line 3, column event_uid: \"not-a-uuid\" is not a UUID"
        );
        let err = error_of(&with(format!("{bad},extra")), Dataset::Denials);
        assert!(err.starts_with("obj.csv: line 3: "), "{err}");
        let mut bytes = with(bad.replacen(",401,", ",@@,", 1)).into_bytes();
        if let Some(at) = bytes.windows(2).position(|w| w == b"@@") {
            bytes[at] = 0xFF;
        }
        let err = parse_csv(&bytes[..], Dataset::Denials, "obj.csv")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.starts_with("obj.csv: line 3, column http_status: not UTF-8"),
            "{err}"
        );

        // Booleans and datetimes, on a dataset that has them.
        let row: Record = WebhookFailure {
            head: head(Dataset::WebhookFailures, 1, T),
            redelivery: Some(true),
            ..WebhookFailure::default()
        }
        .into();
        let text = csv_of(Dataset::WebhookFailures, &[row])?;
        let err = error_of(
            &text.replacen(",true,", ",yes,", 1),
            Dataset::WebhookFailures,
        );
        assert_eq!(
            err,
            "obj.csv: line 2, column redelivery: \"yes\" is not true or false"
        );
        let row: Record = RateLimitBurst {
            head: head(Dataset::RateLimitBursts, 1, T),
            start_time_dt: Some(T),
            ..RateLimitBurst::default()
        }
        .into();
        let text = csv_of(Dataset::RateLimitBursts, &[row])?;
        // The second occurrence: time_dt comes first, and is ignored.
        let at = text.rfind("2026-03-05T00:02:00.123Z").unwrap_or_default();
        let broken = format!(
            "{}2026-13-05T00:02:00.123Z{}",
            &text[..at],
            &text[at + 24..]
        );
        assert_eq!(
            error_of(&broken, Dataset::RateLimitBursts),
            "obj.csv: line 2, column start_time_dt: \"2026-13-05T00:02:00.123Z\" is not an RFC 3339 time"
        );
        Ok(())
    }

    #[test]
    fn rows_after_a_bad_row_can_still_be_read() -> Result<()> {
        let text = denial_csv()?;
        let broken = text.replacen(",401,", ",x,", 1);
        let rows: Vec<Result<Record>> =
            CsvRows::new(broken.as_bytes(), Dataset::Denials, "o")?.collect();
        assert_eq!(rows.len(), 2);
        assert!(rows.first().is_some_and(|r| r.is_err()));
        assert!(rows.get(1).is_some_and(|r| r.is_ok()));
        Ok(())
    }

    #[test]
    fn which_keys_are_read() {
        let since = Some("2026-03-05");
        for (key, want) in [
            (
                "v1/denials/vendor=a/tenant=b/dt=2026-03-05/denials-j-e000001.csv.gz",
                true,
            ),
            (
                "v1/denials/vendor=a/tenant=b/dt=2026-03-06/denials-j-e000001.csv.gz",
                true,
            ),
            (
                "v1/denials/vendor=a/tenant=b/dt=2026-03-04/denials-j-e000001.csv.gz",
                false,
            ),
            ("v1/denials/_tmp/dt=2026-03-06/x.csv.gz", false),
            (
                "v1/denials/vendor=a/tenant=b/dt=2026-03-06/_x.csv.gz",
                false,
            ),
            ("v1/denials/vendor=a/tenant=b/dt=2026-03-06/x.csv", false),
            ("v1/denials/vendor=a/tenant=b/dt=2026-03-06/x.json", false),
        ] {
            assert_eq!(wanted(key, since, None), want, "{key}");
        }
        assert!(wanted(
            "v1/denials/vendor=a/tenant=b/dt=2026-03-04/denials-j-e000001.csv.gz",
            None,
            None
        ));
        // One job's objects: not another's whose name starts alike.
        for (key, want) in [
            (
                "v1/denials/dt=2026-03-06/denials-weekly-e000001.csv.gz",
                true,
            ),
            (
                "v1/denials/dt=2026-03-06/denials-weekly-eu-e000001.csv.gz",
                false,
            ),
            (
                "v1/denials/dt=2026-03-06/denials-daily-e000001.csv.gz",
                false,
            ),
            ("v1/denials/dt=2026-03-06/denials-weekly-e.csv.gz", false),
        ] {
            let job = Some((Dataset::Denials, "weekly"));
            assert_eq!(wanted(key, None, job), want, "{key}");
        }
    }

    fn gzip_csv(dataset: Dataset, rows: &[Record]) -> Result<Vec<u8>> {
        // As the export writes an object (export.rs, start_object / finish_object).
        let gz = crate::gz::writer(
            Vec::new(),
            Compression::new(crate::output::export::GZIP_LEVEL),
        );
        let mut enc = CsvEncoder::new(gz, dataset)?;
        for r in rows {
            enc.write(r)?;
        }
        Ok(crate::gz::finish(enc.finish()?)?)
    }

    async fn put(
        store: &LocalStore,
        day: &str,
        export: u64,
        dataset: Dataset,
        rows: &[Record],
    ) -> Result<String> {
        let partition = Partition {
            dataset,
            vendor: "github".into(),
            tenant: "acme".into(),
            day: day.into(),
        };
        let key = keys::object_key(&partition, "weekly", export);
        store
            .put_new(
                &key,
                Body::Bytes(gzip_csv(dataset, rows)?),
                &Metadata::new(),
            )
            .await?;
        Ok(key)
    }

    fn burst(seed: i64, time: i64, revision: Option<i64>) -> Record {
        RateLimitBurst {
            head: head(Dataset::RateLimitBursts, seed, time),
            count: revision.map(|r| 10 * r),
            revision,
            ..RateLimitBurst::default()
        }
        .into()
    }

    fn finding(seed: i64, time: i64, revision: i64) -> Record {
        Finding {
            head: head(Dataset::Findings, seed, time),
            title: Some(format!("revision {revision}")),
            revision: Some(revision),
            ..Finding::default()
        }
        .into()
    }

    fn denial(seed: i64, time: i64) -> Record {
        Denial {
            head: head(Dataset::Denials, seed, time),
            http_status: Some(403),
            ..Denial::default()
        }
        .into()
    }

    #[tokio::test]
    async fn reads_an_export_laid_out_like_a_real_one() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let scratch = tempfile::tempdir()?;
        let store = LocalStore::open(dir.path().join("store"))?;
        let day = "2026-03-05";
        let since = T + 12 * 3_600_000; // 2026-03-05T12:02:00.123Z
        let later = since + 60_000;

        // Bursts re-emitted with other revisions, in later exports.
        put(
            &store,
            day,
            1,
            Dataset::RateLimitBursts,
            &[burst(1, later, Some(1)), burst(2, later, None)],
        )
        .await?;
        put(
            &store,
            day,
            2,
            Dataset::RateLimitBursts,
            &[burst(1, later, Some(3))],
        )
        .await?;
        put(
            &store,
            day,
            3,
            Dataset::RateLimitBursts,
            &[burst(1, later, Some(2)), burst(2, later, Some(1))],
        )
        .await?;
        // A later revision whose start moved before `since`: the burst is left out.
        put(
            &store,
            day,
            4,
            Dataset::RateLimitBursts,
            &[burst(3, later, Some(1))],
        )
        .await?;
        put(
            &store,
            day,
            5,
            Dataset::RateLimitBursts,
            &[burst(3, since - 1, Some(2))],
        )
        .await?;
        put(&store, day, 1, Dataset::Findings, &[finding(1, later, 1)]).await?;
        put(
            &store,
            "2026-03-06",
            2,
            Dataset::Findings,
            &[finding(1, later, 2)],
        )
        .await?;
        // The same denial in two exports; one before `since` on its day.
        put(
            &store,
            day,
            1,
            Dataset::Denials,
            &[denial(1, later), denial(2, since - 1)],
        )
        .await?;
        put(
            &store,
            day,
            2,
            Dataset::Denials,
            &[denial(1, later), denial(3, since)],
        )
        .await?;
        // Not read: a day before since's (garbage, so reading it would fail), `_` folders,
        // other files, a dataset not asked for.
        let before =
            "v1/denials/vendor=github/tenant=acme/dt=2026-03-04/denials-weekly-e000001.csv.gz";
        store
            .put_new(before, Body::Bytes(b"not gzip".to_vec()), &Metadata::new())
            .await?;
        store
            .put_new(
                "v1/denials/_tmp/denials.csv.gz",
                Body::Bytes(b"junk".to_vec()),
                &Metadata::new(),
            )
            .await?;
        store
            .put_new(
                "v1/denials/README.txt",
                Body::Bytes(b"junk".to_vec()),
                &Metadata::new(),
            )
            .await?;
        store
            .put_new(
                "v1/_exports/weekly/e000001.json",
                Body::Bytes(b"{}".to_vec()),
                &Metadata::new(),
            )
            .await?;
        put(
            &store,
            day,
            1,
            Dataset::Changes,
            &[empty_record(Dataset::Changes, 1)?],
        )
        .await?;

        let asked = [
            Dataset::Denials,
            Dataset::RateLimitBursts,
            Dataset::Findings,
            Dataset::Denials,
        ];
        let mut got = read_exported(&store, &asked, Some(since), None, scratch.path()).await?;
        got.sort_by_key(|r| (r.dataset(), r.head().event_uid));
        let mut want = vec![
            denial(1, later),
            denial(3, since),
            burst(1, later, Some(3)),
            burst(2, later, Some(1)),
            finding(1, later, 2),
        ];
        want.sort_by_key(|r| (r.dataset(), r.head().event_uid));
        assert_eq!(got, want);

        // Without `since` the earlier day is read, and its error names the object.
        let err = read_exported(&store, &[Dataset::Denials], None, None, scratch.path())
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.starts_with(&format!("{before}: reading: ")), "{err}");
        let bursts = read_exported(
            &store,
            &[Dataset::RateLimitBursts],
            None,
            None,
            scratch.path(),
        )
        .await?;
        assert_eq!(bursts.len(), 3);
        assert!(bursts.contains(&burst(3, since - 1, Some(2))));
        assert!(
            read_exported(&store, &[], None, None, scratch.path())
                .await?
                .is_empty()
        );
        Ok(())
    }
}
