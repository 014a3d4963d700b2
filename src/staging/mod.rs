//! The staging log (DESIGN §2): per source, numbered immutable segments of normalized records,
//! and a checkpoint that commits them.
//!
//! A collection writes segment `n+1` create-only, then moves the checkpoint (cursor, highest
//! committed segment, dedup set) with a conditional replace. Segments above the checkpoint's
//! number were written by a collection that died before committing; the next session deletes
//! them, so a record is staged once even when a crash forces a re-read.
//!
//! A segment is gzip: the header line, then the records as JSON lines in merge order. The
//! header is one gzip member and the records of each dataset another, listed in the header by
//! where they are: a reader that wants some datasets only (burst detection wants rate-limit
//! events, exports skip internal datasets) decompresses only theirs. Read whole, the members are
//! one stream of lines, as in segments written before there were members (which are read
//! whole).

mod merge;

pub use merge::{Bounds, Key, Merge, SortKey};

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use flate2::Compression;
use flate2::read::MultiGzDecoder;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use tokio_util::sync::CancellationToken;

use crate::error::Temporary;
use crate::lease::Lease;
use crate::model::{Dataset, Record, utc_day, utc_day_bytes};
use crate::privacy::Privacy;
use crate::store::keys::{checkpoint_key, segment_key, segment_of, segment_prefix};
use crate::store::{Body, LocalCopy, PutOutcome, ReplaceOutcome, SharedStore, Version};

/// Where a source stands, committed after each staged page.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The highest committed segment; exports read segments up to it.
    pub segment: u64,
    /// The source's own resume state.
    pub cursor: Option<serde_json::Value>,
    /// Everything up to this time has been collected (epoch ms).
    pub watermark_ms: Option<i64>,
    /// When the last successful collection ran, for `collect_every`.
    pub last_collect_ms: Option<i64>,
    /// event_uid and event time of what was staged recently, to drop what a re-scan reads
    /// again.
    #[serde(default)]
    pub dedup: Vec<(Uuid, i64)>,
    /// Generation of the lease of the collection that last claimed the checkpoint: claiming
    /// rewrites it, so a collection that lost its lease cannot commit after the new holder
    /// started (its compare-and-swap fails).
    #[serde(default)]
    pub fence: u64,
}

/// First line of a segment: what is in it, so export plans need not read the records.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SegmentHeader {
    pub format: u32,
    pub source: String,
    pub segment: u64,
    pub created_ms: i64,
    pub rows: u64,
    pub partitions: Vec<PartitionCount>,
    /// Inputs the collection could not read since the previous segment, for the manifest.
    #[serde(default)]
    pub malformed: u64,
    #[serde(default)]
    pub malformed_examples: Vec<String>,
    /// The gzip member of each dataset's records, in order after the header's; absent in
    /// segments written before members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<Member>>,
    /// The sort keys of the first and last records, so a merge can read segments whose
    /// ranges do not overlap one after another instead of side by side; absent in segments
    /// written before bounds, and in empty ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounds: Option<Bounds>,
}

/// Where a dataset's records are in a segment: `offset` counts from the end of the header's
/// member (the first record member is at 0), `length` is the member's compressed size.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Member {
    pub dataset: Dataset,
    pub offset: u64,
    pub length: u64,
}

/// Rows of one (dataset, vendor, tenant, day): one exported object per export.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Partition {
    pub dataset: Dataset,
    pub vendor: String,
    pub tenant: String,
    /// `YYYY-MM-DD`, the UTC day of the events.
    pub day: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PartitionCount {
    #[serde(flatten)]
    pub partition: Partition,
    pub rows: u64,
}

impl Partition {
    pub fn of(record: &Record) -> Partition {
        let head = record.head();
        Partition {
            dataset: record.dataset(),
            vendor: head.vendor.clone(),
            tenant: head.tenant.clone(),
            day: utc_day(head.time),
        }
    }

    /// Whether `record` belongs here (`Partition::of` without allocating).
    pub fn holds(&self, record: &Record) -> bool {
        let head = record.head();
        self.dataset == record.dataset()
            && self.vendor == head.vendor
            && self.tenant == head.tenant
            && self.day.as_bytes() == utc_day_bytes(head.time)
    }
}

#[derive(Clone)]
pub struct Staging {
    store: SharedStore,
}

impl Staging {
    pub fn new(store: SharedStore) -> Self {
        Staging { store }
    }

    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    pub async fn checkpoint(&self, source: &str) -> Result<(Checkpoint, Option<Version>)> {
        match self.store.get(&checkpoint_key(source)).await? {
            Some((bytes, version)) => {
                let checkpoint = serde_json::from_slice(&bytes)
                    .with_context(|| format!("reading the checkpoint of source {source}"))?;
                Ok((checkpoint, Some(version)))
            }
            None => Ok((Checkpoint::default(), None)),
        }
    }

    /// Segment numbers stored for a source, committed or not, ascending.
    pub async fn segments(&self, source: &str) -> Result<Vec<u64>> {
        let mut out: Vec<u64> = self
            .store
            .list(&segment_prefix(source))
            .await?
            .iter()
            .filter_map(|k| segment_of(source, k))
            .collect();
        out.sort_unstable();
        Ok(out)
    }

    pub async fn fetch_segment(
        &self,
        source: &str,
        segment: u64,
        scratch: &Path,
    ) -> Result<LocalCopy> {
        self.store
            .fetch_to_file(&segment_key(source, segment), scratch)
            .await?
            .with_context(|| {
                format!(
                    "staging segment {segment} of source {source} is missing (deleted by hand, or by retention after another job exported it): the export cannot be completed as planned"
                )
            })
    }

    pub async fn segment_header(
        &self,
        source: &str,
        segment: u64,
        scratch: &Path,
    ) -> Result<SegmentHeader> {
        let copy = self.fetch_segment(source, segment, scratch).await?;
        let path = copy.path().to_path_buf();
        tokio::task::spawn_blocking(move || {
            let _keep = copy;
            read_header(&path)
        })
        .await?
    }

    pub async fn delete_segment(&self, source: &str, segment: u64) -> Result<()> {
        self.store.delete(&segment_key(source, segment)).await
    }

    /// Starts a collection: drops segments a crashed collection left uncommitted.
    pub async fn open<'a>(
        &'a self,
        source: &str,
        run: Collection<'a>,
    ) -> Result<SourceSession<'a>> {
        let (mut checkpoint, mut version) = self.checkpoint(source).await?;
        let stored = self.segments(source).await?;
        if version.is_none() && !stored.is_empty() {
            anyhow::bail!(
                "source {source} has {} staging segments (up to {}) but no checkpoint: the state area lost it or was restored from an older copy. Nothing was collected, so nothing is lost; to collect the source again from scratch, move {} aside first",
                stored.len(),
                stored.last().copied().unwrap_or_default(),
                segment_prefix(source)
            );
        }
        // Claim the checkpoint first: from here on, a collection that lost this source's lease
        // can no longer commit, so the orphan below cannot be a page it is about to commit.
        if let Some(lease) = run.lease {
            checkpoint.fence = lease.generation();
            let bytes = serde_json::to_vec(&checkpoint)?;
            match self
                .store
                .replace(&checkpoint_key(source), bytes, version.as_ref())
                .await?
            {
                ReplaceOutcome::Replaced(v) => version = Some(v),
                ReplaceOutcome::Conflict => {
                    return Err(Temporary(format!(
                        "the checkpoint of source {source} changed while this run claimed it: another scopetrail process is collecting it"
                    ))
                    .into());
                }
            }
        }
        // A collection writes one segment, then commits it: a crash leaves at most one.
        let above: Vec<u64> = stored
            .into_iter()
            .filter(|s| *s > checkpoint.segment)
            .collect();
        match above.as_slice() {
            [] => {}
            [orphan] if *orphan == checkpoint.segment + 1 => {
                tracing::warn!(
                    source,
                    segment = orphan,
                    "deleting the staging segment an interrupted collection did not commit"
                );
                self.delete_segment(source, *orphan).await?;
                crate::failpoint::hit("collect.after_orphan_delete");
            }
            more => anyhow::bail!(
                "the checkpoint of source {source} is at segment {} but segments {more:?} exist: the checkpoint went back (restored from an older copy?). Nothing was deleted or collected; restore the newer checkpoint, or move {} aside to collect the source again",
                checkpoint.segment,
                segment_prefix(source)
            ),
        }
        let seen = checkpoint.dedup.iter().map(|(u, _)| *u).collect();
        Ok(SourceSession {
            staging: self,
            source: source.to_string(),
            checkpoint,
            version,
            seen,
            run,
            stats: CollectStats::default(),
            pending_malformed: (0, Vec::new()),
        })
    }
}

/// What a collection is given by the run.
pub struct Collection<'a> {
    pub now: DateTime<Utc>,
    pub privacy: &'a Privacy,
    /// How long staged event ids are remembered, to drop what a re-scan reads again.
    pub dedup_horizon: chrono::Duration,
    /// Checked before every checkpoint move; `None` only in tests of staging itself.
    pub lease: Option<&'a Lease>,
    /// Set when the process is asked to stop: the source ends after the current page.
    pub cancel: CancellationToken,
    /// Bumped for each page staged.
    pub progress: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// At most this many examples of malformed inputs per segment, plan and manifest.
pub const MALFORMED_EXAMPLES: usize = 20;

/// What one collection did, for the summary and the run record.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CollectStats {
    pub pages: u64,
    pub staged: u64,
    pub duplicates: u64,
    pub segments: Vec<u64>,
    /// Per dataset, rows staged.
    pub by_dataset: BTreeMap<String, u64>,
    pub malformed: u64,
    /// The first malformed inputs, with file and line.
    pub malformed_examples: Vec<String>,
    /// Source-specific counters (lines read, files...).
    pub counters: BTreeMap<String, u64>,
}

/// One collection of one source, given to `Source::collect`.
pub struct SourceSession<'a> {
    staging: &'a Staging,
    source: String,
    checkpoint: Checkpoint,
    version: Option<Version>,
    seen: HashSet<Uuid>,
    run: Collection<'a>,
    stats: CollectStats,
    /// Malformed inputs not yet written into a segment header.
    pending_malformed: (u64, Vec<String>),
}

impl SourceSession<'_> {
    pub fn cursor(&self) -> Option<&serde_json::Value> {
        self.checkpoint.cursor.as_ref()
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.run.now
    }

    /// True once the process is asked to stop: finish the current page, save it, return.
    pub fn cancelled(&self) -> bool {
        self.run.cancel.is_cancelled()
    }

    pub fn cancel_token(&self) -> CancellationToken {
        self.run.cancel.clone()
    }

    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    pub fn count(&mut self, counter: &str, n: u64) {
        *self.stats.counters.entry(counter.to_string()).or_default() += n;
    }

    fn dedup_floor(&self) -> i64 {
        (self.run.now - self.run.dedup_horizon).timestamp_millis()
    }

    /// Bad input is counted and reported with where it was; it never stops the collection.
    pub fn malformed(&mut self, at: &str, reason: &str) {
        self.stats.malformed += 1;
        self.pending_malformed.0 += 1;
        if self.pending_malformed.1.len() < MALFORMED_EXAMPLES {
            self.pending_malformed.1.push(format!("{at}: {reason}"));
        }
        if self.stats.malformed_examples.len() < MALFORMED_EXAMPLES {
            tracing::warn!(source = %self.source, at, reason, "skipping malformed input");
            self.stats
                .malformed_examples
                .push(format!("{at}: {reason}"));
        }
    }

    /// Stages a page and commits the cursor that follows it. Records already staged (same
    /// event_uid) are dropped; personal data is handled per `[privacy]` before anything is
    /// written.
    pub async fn save(
        &mut self,
        mut records: Vec<Record>,
        cursor: serde_json::Value,
    ) -> Result<()> {
        self.stats.pages += 1;
        self.run
            .progress
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Filtered in place: a page of large records is not copied into a second one.
        let mut impossible = Vec::new();
        let (seen, stats, dedup) = (&mut self.seen, &mut self.stats, &mut self.checkpoint.dedup);
        records.retain_mut(|record| {
            let time = record.head().time;
            if !(0..=crate::model::MAX_TIME_MS).contains(&time) {
                let at = format!(
                    "{} row {}",
                    record.dataset().name(),
                    record.head().source_event_uid.as_deref().unwrap_or("?")
                );
                impossible.push((at, time));
                return false;
            }
            let uid = record.head().event_uid;
            if !seen.insert(uid) {
                stats.duplicates += 1;
                return false;
            }
            self.run.privacy.apply(record);
            dedup.push((uid, time));
            true
        });
        for (at, time) in impossible {
            self.malformed(
                &at,
                &format!("impossible event time {time} (epoch ms); the row is dropped"),
            );
        }
        let fresh = records;
        let mut next = self.checkpoint.clone();
        next.cursor = Some(cursor);
        // Pruned on every page: the whole set is written with each checkpoint.
        let floor = self.dedup_floor();
        next.dedup.retain(|(_, t)| *t >= floor);
        // A page of nothing but unreadable lines still gets a segment: the manifest of the
        // export that covers it says what could not be read.
        if !fresh.is_empty() || self.pending_malformed.0 > 0 {
            next.segment += 1;
            let segment = next.segment;
            let malformed = std::mem::take(&mut self.pending_malformed);
            let bytes = encode_segment(&self.source, segment, self.run.now, &fresh, malformed)?;
            let key = segment_key(&self.source, segment);
            match self
                .staging
                .store
                .put_new(&key, Body::Bytes(bytes), &Default::default())
                .await?
            {
                PutOutcome::Created => {}
                PutOutcome::AlreadyExists(_) => {
                    return Err(Temporary(format!(
                        "staging segment {segment} of source {} appeared while writing it: another scopetrail process is collecting this source",
                        self.source
                    ))
                    .into());
                }
            }
            crate::failpoint::hit("collect.after_segment");
            self.stats.staged += fresh.len() as u64;
            self.stats.segments.push(segment);
            for r in &fresh {
                *self
                    .stats
                    .by_dataset
                    .entry(r.dataset().name().to_string())
                    .or_default() += 1;
            }
        }
        self.commit(next).await
    }

    /// Ends a successful collection: everything up to `watermark` is collected.
    pub async fn finish(mut self, watermark: DateTime<Utc>) -> Result<CollectStats> {
        let mut next = self.checkpoint.clone();
        next.watermark_ms = Some(watermark.timestamp_millis());
        next.last_collect_ms = Some(self.run.now.timestamp_millis());
        let floor = self.dedup_floor();
        next.dedup.retain(|(_, t)| *t >= floor);
        self.commit(next).await?;
        Ok(self.stats)
    }

    /// What was done so far, when the collection failed part way: its staged pages stay.
    pub fn stats(&self) -> &CollectStats {
        &self.stats
    }

    async fn commit(&mut self, next: Checkpoint) -> Result<()> {
        if let Some(lease) = self.run.lease {
            lease.check().await?;
        }
        let bytes = serde_json::to_vec(&next)?;
        let key = checkpoint_key(&self.source);
        match self
            .staging
            .store
            .replace(&key, bytes, self.version.as_ref())
            .await?
        {
            ReplaceOutcome::Replaced(version) => self.version = Some(version),
            ReplaceOutcome::Conflict => {
                return Err(Temporary(format!(
                    "the checkpoint of source {} changed under this run: another scopetrail process is collecting it",
                    self.source
                ))
                .into());
            }
        }
        crate::failpoint::hit("collect.after_checkpoint");
        // What the checkpoint forgot, the session forgets too: a long collection's ids would
        // otherwise pile up in memory.
        if next.dedup.len() < self.seen.len() {
            self.seen = next.dedup.iter().map(|(u, _)| *u).collect();
        }
        self.checkpoint = next;
        Ok(())
    }
}

/// A segment's bytes: the header line, then the records in merge order.
fn encode_segment(
    source: &str,
    segment: u64,
    now: DateTime<Utc>,
    records: &[Record],
    (malformed, malformed_examples): (u64, Vec<String>),
) -> Result<Vec<u8>> {
    // Records are large: sorting references moves a tenth of the bytes.
    let mut records: Vec<&Record> = records.iter().collect();
    records.sort_by(|a, b| SortKey::of(a).cmp(&SortKey::of(b)));
    let mut partitions: Vec<PartitionCount> = Vec::new();
    for r in records.iter() {
        match partitions.last_mut() {
            Some(last) if last.partition.holds(r) => last.rows += 1,
            _ => partitions.push(PartitionCount {
                partition: Partition::of(r),
                rows: 1,
            }),
        }
    }
    // The records first, one member per dataset (they are sorted by dataset first), so the
    // header can say where each member is.
    let mut body = Vec::new();
    let mut members = Vec::new();
    let mut frame = Vec::new();
    for group in records.chunk_by(|a, b| a.dataset() == b.dataset()) {
        let offset = body.len() as u64;
        let mut gz = crate::gz::writer(std::mem::take(&mut body), Compression::fast());
        for r in group {
            merge::write_record(&mut gz, &mut frame, r)?;
        }
        body = crate::gz::finish(gz)?;
        members.push(Member {
            dataset: group[0].dataset(),
            offset,
            length: body.len() as u64 - offset,
        });
    }
    let header = SegmentHeader {
        format: merge::Format::CURRENT.number(),
        source: source.to_string(),
        segment,
        created_ms: now.timestamp_millis(),
        rows: records.len() as u64,
        partitions,
        malformed,
        malformed_examples,
        members: Some(members),
        bounds: match (records.first(), records.last()) {
            (Some(first), Some(last)) => Some(Bounds {
                first: Key::of(first),
                last: Key::of(last),
            }),
            _ => None,
        },
    };
    let mut gz = crate::gz::writer(Vec::new(), Compression::fast());
    serde_json::to_writer(&mut gz, &header)?;
    gz.write_all(b"\n")?;
    let mut out = crate::gz::finish(gz)?;
    out.extend_from_slice(&body);
    Ok(out)
}

fn read_header(path: &Path) -> Result<SegmentHeader> {
    let file = std::fs::File::open(path)?;
    let mut line = String::new();
    BufReader::new(MultiGzDecoder::new(file)).read_line(&mut line)?;
    serde_json::from_str(&line).with_context(|| format!("reading the header of {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Denial, Header};

    fn denial(tenant: &str, time: i64, id: &str) -> Record {
        Denial {
            head: Header {
                time,
                event_uid: crate::model::uid::uid_of(&[tenant, id]),
                vendor: "v".into(),
                tenant: tenant.into(),
                ..Default::default()
            },
            ..Default::default()
        }
        .into()
    }

    #[test]
    fn merge_of_many_segments_is_ordered_and_drops_repeats() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let now = Utc::now();
        let mut paths = Vec::new();
        let mut expected = std::collections::BTreeSet::new();
        // 150 segments: more than one merge round.
        for s in 0..150u64 {
            let mut records: Vec<Record> = (0..20)
                .map(|i| {
                    let t = ((s * 7919 + i * 104_729) % 10_000) as i64;
                    let tenant = if i % 2 == 0 { "a" } else { "b" };
                    denial(tenant, t, &format!("{s}-{i}"))
                })
                .collect();
            // The same event staged again in a later segment comes out once.
            if s > 0 {
                records.push(denial("a", 0, "repeated"));
            }
            for r in &records {
                expected.insert(r.head().event_uid);
            }
            let path = dir.path().join(format!("{s}.jsonl.gz"));
            std::fs::write(
                &path,
                encode_segment("src", s + 1, now, &records, (0, Vec::new()))?,
            )?;
            paths.push(path);
        }
        let mut merge = Merge::open(&paths, dir.path())?;
        let mut out = Vec::new();
        while let Some(r) = merge.next_record()? {
            out.push(r);
        }
        assert_eq!(out.len(), expected.len());
        assert!(
            out.windows(2)
                .all(|w| SortKey::of(&w[0]) < SortKey::of(&w[1]))
        );
        assert_eq!(out[0].head().tenant, "a");
        assert_eq!(out.last().map(|r| r.head().tenant.as_str()), Some("b"));
        Ok(())
    }

    fn rate_limit_event(tenant: &str, time: i64, id: &str) -> Record {
        crate::model::RateLimitEvent {
            head: Header {
                time,
                event_uid: crate::model::uid::uid_of(&["rl", tenant, id]),
                vendor: "v".into(),
                tenant: tenant.into(),
                ..Default::default()
            },
            http_status: Some(429),
            ..Default::default()
        }
        .into()
    }

    /// The segment as it was written before members: one gzip stream, no `members`.
    fn encode_whole(records: &[Record]) -> Result<Vec<u8>> {
        let mut sorted: Vec<&Record> = records.iter().collect();
        sorted.sort_by(|a, b| SortKey::of(a).cmp(&SortKey::of(b)));
        let mut gz = crate::gz::writer(Vec::new(), Compression::fast());
        gz.write_all(
            br#"{"format":1,"source":"src","segment":1,"created_ms":0,"rows":0,"partitions":[]}"#,
        )?;
        gz.write_all(b"\n")?;
        for r in sorted {
            serde_json::to_writer(&mut gz, r)?;
            gz.write_all(b"\n")?;
        }
        Ok(crate::gz::finish(gz)?)
    }

    /// The segment as format 1 wrote it: a member of JSON lines per dataset.
    fn encode_json_members(records: &[Record]) -> Result<Vec<u8>> {
        let mut sorted: Vec<&Record> = records.iter().collect();
        sorted.sort_by(|a, b| SortKey::of(a).cmp(&SortKey::of(b)));
        let (mut body, mut members) = (Vec::new(), Vec::new());
        for group in sorted.chunk_by(|a, b| a.dataset() == b.dataset()) {
            let offset = body.len();
            let mut gz = crate::gz::writer(std::mem::take(&mut body), Compression::fast());
            for r in group {
                serde_json::to_writer(&mut gz, r)?;
                gz.write_all(b"\n")?;
            }
            body = crate::gz::finish(gz)?;
            members.push(serde_json::json!({
                "dataset": group[0].dataset(), "offset": offset, "length": body.len() - offset,
            }));
        }
        let header = serde_json::json!({
            "format": 1, "source": "src", "segment": 1, "created_ms": 0, "rows": sorted.len(),
            "partitions": [], "members": members,
        });
        let mut gz = crate::gz::writer(Vec::new(), Compression::fast());
        writeln!(gz, "{header}")?;
        let mut out = crate::gz::finish(gz)?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    #[test]
    fn members_are_read_alone_and_older_formats_still_read() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let mut records = Vec::new();
        for i in 0..300 {
            records.push(denial(
                if i % 3 == 0 { "a" } else { "b" },
                i * 7,
                &format!("d{i}"),
            ));
            if i % 4 == 0 {
                records.push(rate_limit_event("a", i * 5, &format!("r{i}")));
            }
        }
        let new = dir.path().join("new.jsonl.gz");
        std::fs::write(
            &new,
            encode_segment("src", 1, Utc::now(), &records, (0, Vec::new()))?,
        )?;
        // Written before members, and in format 1 with members.
        let old = dir.path().join("old.jsonl.gz");
        std::fs::write(&old, encode_whole(&records)?)?;
        let json = dir.path().join("json.jsonl.gz");
        std::fs::write(&json, encode_json_members(&records)?)?;
        let header = read_header(&new)?;
        assert_eq!(header.format, 2);
        let members = header.members.clone().unwrap_or_default();
        assert_eq!(
            members.iter().map(|m| m.dataset).collect::<Vec<_>>(),
            vec![Dataset::Denials, Dataset::RateLimitEvents]
        );
        assert!(
            members[0].length < encode_json_members(&records)?.len() as u64 / 2,
            "MessagePack is smaller than JSON lines"
        );
        let all = |paths: &[std::path::PathBuf], only: Option<&[Dataset]>| -> Result<Vec<Uuid>> {
            let mut merge = Merge::open_only(paths, only, dir.path())?;
            let mut out = Vec::new();
            while let Some(r) = merge.next_record()? {
                out.push(r.head().event_uid);
            }
            Ok(out)
        };
        for only in [
            None,
            Some(&[Dataset::RateLimitEvents][..]),
            Some(&[Dataset::Denials][..]),
            Some(&[Dataset::Denials, Dataset::RateLimitEvents][..]),
            Some(&[Dataset::RequestCounts][..]),
        ] {
            let from_new = all(std::slice::from_ref(&new), only)?;
            let from_old = all(std::slice::from_ref(&old), only)?;
            assert_eq!(from_new, from_old, "{only:?}");
            assert_eq!(
                all(std::slice::from_ref(&json), only)?,
                from_new,
                "{only:?}"
            );
            let expected = records
                .iter()
                .filter(|r| only.is_none_or(|o| o.contains(&r.dataset())))
                .count();
            assert_eq!(from_new.len(), expected, "{only:?}");
            let both = all(&[new.clone(), old.clone()], only)?;
            assert_eq!(both, from_new, "the same records twice come out once");
        }
        Ok(())
    }

    #[test]
    fn segment_header_counts_partitions() -> Result<()> {
        let records = vec![
            denial("a", 86_400_000 + 5, "x"),
            denial("a", 10, "y"),
            denial("b", 20, "z"),
        ];
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("s.jsonl.gz");
        std::fs::write(
            &path,
            encode_segment(
                "src",
                7,
                Utc::now(),
                &records,
                (2, vec!["a.log:3: bad".into()]),
            )?,
        )?;
        let header = read_header(&path)?;
        assert_eq!(header.segment, 7);
        assert_eq!(header.rows, 3);
        assert_eq!((header.malformed, header.malformed_examples.len()), (2, 1));
        let days: Vec<(String, String, u64)> = header
            .partitions
            .iter()
            .map(|p| (p.partition.tenant.clone(), p.partition.day.clone(), p.rows))
            .collect();
        assert_eq!(
            days,
            vec![
                ("a".into(), "1970-01-01".into(), 1),
                ("a".into(), "1970-01-02".into(), 1),
                ("b".into(), "1970-01-01".into(), 1)
            ]
        );
        Ok(())
    }

    /// `save` keeps the first of each event and only those with a possible time, hands
    /// personal data per `[privacy]` before anything is written, and stages what it kept.
    #[tokio::test]
    async fn a_page_is_staged_without_repeats_impossible_times_or_dropped_columns() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let store: SharedStore =
            std::sync::Arc::new(crate::store::local::LocalStore::open(dir.path().join("s"))?);
        let staging = Staging::new(store);
        let privacy = Privacy {
            key: None,
            columns: [(
                "actor_user".to_string(),
                crate::privacy::PrivacyAction::Drop,
            )]
            .into(),
        };
        let now = Utc::now();
        // Within the dedup horizon, or the checkpoint forgets them.
        let t = now.timestamp_millis() - 60_000;
        let run = Collection {
            now,
            privacy: &privacy,
            dedup_horizon: chrono::Duration::days(3650),
            lease: None,
            cancel: CancellationToken::new(),
            progress: Default::default(),
        };
        let mut session = staging.open("src", run).await?;
        let with_user = |tenant: &str, time: i64, id: &str| {
            let mut r = denial(tenant, time, id);
            if let Record::Denials(d) = &mut r {
                d.actor_user = Some(format!("user-{id}"));
            }
            r
        };
        let page = vec![
            with_user("a", t, "1"),
            with_user("a", t + 1, "1"), // the same event_uid, read again
            with_user("a", -5, "2"),
            with_user("b", t + 2, "3"),
            with_user("b", crate::model::MAX_TIME_MS + 1, "4"),
        ];
        let kept: Vec<Uuid> = [&page[0], &page[3]]
            .iter()
            .map(|r| r.head().event_uid)
            .collect();
        session.save(page, serde_json::json!({"at": 1})).await?;
        // A second page repeating an event staged by the first drops it too.
        session
            .save(vec![with_user("a", t, "1")], serde_json::json!({"at": 2}))
            .await?;
        let stats = session.stats().clone();
        assert_eq!((stats.staged, stats.duplicates, stats.malformed), (2, 2, 2));
        assert!(
            stats.malformed_examples[0].contains("impossible event time -5"),
            "{:?}",
            stats.malformed_examples
        );
        let dedup: Vec<Uuid> = session.checkpoint().dedup.iter().map(|(u, _)| *u).collect();
        assert_eq!(dedup, kept);
        assert_eq!(
            session.checkpoint().cursor,
            Some(serde_json::json!({"at": 2}))
        );

        let copy = staging.fetch_segment("src", 1, dir.path()).await?;
        let mut merge = Merge::open(&[copy.path().to_path_buf()], dir.path())?;
        let mut staged = Vec::new();
        while let Some(r) = merge.next_record()? {
            staged.push(r);
        }
        assert_eq!(
            staged
                .iter()
                .map(|r| r.head().event_uid)
                .collect::<Vec<_>>(),
            kept
        );
        for r in &staged {
            let Record::Denials(d) = r else {
                panic!("{r:?}")
            };
            assert_eq!(d.actor_user, None, "dropped before staging");
        }
        Ok(())
    }
}
