//! Rows scopetrail derives at export time (429 bursts, then the findings that explain
//! failures): detection reads every retained staging segment around the window, then each
//! row is matched with what earlier exports emitted, so one that late data changes keeps its
//! `event_uid` and goes out again with a higher `revision`, and one that did not change is
//! not sent again.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::analysis::bursts::{self, Burst, Detector};
use crate::analysis::correlate::{self, Correlator, EventRef, Finding, Severity};
use crate::model::uid::Origin;
use crate::model::{
    Dataset, Finding as FindingRow, FindingEvent, Header, RateLimitBurst, Record, utc_day,
};
use crate::staging::{Merge, SegmentHeader, SortKey, Staging};
use crate::store::LocalCopy;

/// A derived row an export emitted, remembered in the job's export state.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Emitted {
    pub uid: Uuid,
    /// The group the row is about (see `bursts::GroupKey::text`).
    pub key: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub revision: i64,
    /// What the row said; a change is a new revision.
    pub fingerprint: String,
}

/// What detection needs about one source of the job.
pub struct SourceStaging<'a> {
    pub name: &'a str,
    /// Headers of the segments this export newly covers.
    pub new: &'a [SegmentHeader],
    /// The last segment this export covers.
    pub through: u64,
}

pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// What one kind of derived row gives an export.
pub struct Derived {
    /// Rows to write with this export: new ones and new revisions.
    pub rows: Vec<Record>,
    /// What the job's state remembers of them.
    pub emitted: Vec<Emitted>,
}

/// The bursts to emit with this export, and every burst found around the window (those not
/// sent again too, with their ids), as evidence for findings; detection reads from
/// `at_least_from` if that is earlier.
pub async fn bursts(
    staging: &Staging,
    scratch: &Path,
    sources: &[SourceStaging<'_>],
    window: &Window,
    settings: &bursts::Settings,
    remembered: &[Emitted],
    at_least_from: Option<i64>,
) -> Result<(Derived, Vec<Record>)> {
    let margin = chrono::Duration::from_std(settings.margin)?;
    let gap_ms = i64::try_from(settings.gap.as_millis())?;
    let wanted = [Dataset::RateLimitEvents];
    let mut from = reach_back(sources, &wanted, window, margin, gap_ms, remembered);
    if let Some(f) = at_least_from {
        from = from.min(f);
    }
    let to = (window.end + margin).timestamp_millis();
    let copies = segments_of(staging, scratch, sources, &wanted, from, to).await?;
    let paths: Vec<PathBuf> = copies.iter().map(|c| c.path().to_path_buf()).collect();
    let scratch = scratch.to_path_buf();
    let detection = settings.clone();
    let found = tokio::task::spawn_blocking(move || -> Result<Vec<Burst>> {
        let mut merge = Merge::open_only(&paths, Some(&wanted), &scratch)?;
        let mut detector = Detector::new(detection);
        while let Some(record) = merge.next_record()? {
            if let Record::RateLimitEvents(e) = &record
                && (from..=to).contains(&e.head.time)
            {
                detector.add(e);
            }
        }
        Ok(detector.finish())
    })
    .await??;
    drop(copies);
    let found = found.into_iter().map(|b| Found {
        key: b.key.text(),
        start_ms: b.start_ms,
        end_ms: b.end_ms,
        fingerprint: fingerprint(&b),
        new_uid: origin(&b).derived_uid(&b.key.text(), b.start_ms),
        item: b,
    });
    let mut derived = Derived {
        rows: Vec::new(),
        emitted: Vec::new(),
    };
    let mut all = Vec::new();
    for (burst, e, send) in reconcile(found, window, gap_ms, remembered) {
        let row = row(burst, e.uid, e.revision);
        if send {
            derived.rows.push(row.clone());
            derived.emitted.push(e);
        }
        all.push(row);
    }
    Ok((derived, all))
}

/// The findings to emit with this export: correlation over every staged record around the
/// window (the change lookback before it, a day after it for snapshots taken later), with
/// the bursts found. A finding belongs to the export its first failure falls in.
#[allow(clippy::too_many_arguments)]
pub async fn findings(
    staging: &Staging,
    scratch: &Path,
    sources: &[SourceStaging<'_>],
    window: &Window,
    settings: &correlate::Settings,
    margin: std::time::Duration,
    bursts: Vec<Record>,
    remembered: &[Emitted],
) -> Result<(Derived, Vec<Links>)> {
    let first = findings_reach(sources, window, margin, settings, remembered)?;
    let margin = chrono::Duration::from_std(margin)?;
    let lookback_ms = i64::try_from(settings.change_lookback.as_millis())?;
    let gap_ms = i64::try_from(settings.gap.as_millis())?;
    let end = window.end.timestamp_millis();
    // Failures around the window (and back to where late ones landed), evidence from the
    // lookback before them to a day after.
    let failures = first..(end + margin.num_milliseconds());
    let (from, to) = (first - lookback_ms, end + lookback_ms);
    let wanted = EVIDENCE;
    let copies = segments_of(staging, scratch, sources, &wanted, from, to).await?;
    let paths: Vec<PathBuf> = copies.iter().map(|c| c.path().to_path_buf()).collect();
    let scratch = scratch.to_path_buf();
    let settings = settings.clone();
    let found = tokio::task::spawn_blocking(move || -> Result<Vec<Finding>> {
        let mut merge = Merge::open_only(&paths, Some(&wanted), &scratch)?;
        let mut correlator = Correlator::new(settings);
        let is_failure = |d: Dataset| matches!(d, Dataset::Denials | Dataset::WebhookFailures);
        while let Some(record) = merge.next_record()? {
            let t = record.head().time;
            let keep = if is_failure(record.dataset()) {
                failures.contains(&t)
            } else {
                (from..to).contains(&t)
            };
            if keep {
                correlator.add(&record);
            }
        }
        for b in bursts.iter().filter(|b| failures.contains(&b.head().time)) {
            correlator.add(b);
        }
        Ok(correlator.finish())
    })
    .await??;
    drop(copies);
    let found = found
        .into_iter()
        // Drift seen in the lookback before the failures read: its failures may be out of view.
        .filter(|f| f.severity == Severity::Failure || f.first_ms >= first)
        .map(|f| Found {
            key: f.key.clone(),
            start_ms: f.first_ms,
            end_ms: f.last_ms,
            fingerprint: finding_fingerprint(&f),
            new_uid: finding_uid(&f),
            item: f,
        });
    let mut derived = Derived {
        rows: Vec::new(),
        emitted: Vec::new(),
    };
    let mut links = Vec::new();
    for (f, e, send) in reconcile(found, window, gap_ms, remembered) {
        if send {
            links.push(Links::of(&f, e.uid));
            derived.rows.push(finding_row(f, e.uid, e.revision));
            derived.emitted.push(e);
        }
    }
    Ok((derived, links))
}

/// Where detection starts reading: the margin before the window, earlier where late rows of
/// `datasets` landed (new segments with older days), and at the start of anything emitted
/// that could reach there, so it is seen whole and not cut into a false new revision.
fn reach_back(
    sources: &[SourceStaging<'_>],
    datasets: &[Dataset],
    window: &Window,
    margin: chrono::Duration,
    gap_ms: i64,
    remembered: &[Emitted],
) -> i64 {
    let earliest_new = sources
        .iter()
        .flat_map(|s| s.new)
        .flat_map(|h| &h.partitions)
        .filter(|p| datasets.contains(&p.partition.dataset))
        .filter_map(|p| day_start(&p.partition.day))
        .min();
    let start = (window.start - margin).timestamp_millis();
    let mut from = start;
    if let Some(t) = earliest_new {
        from = from.min(t - margin.num_milliseconds());
    }
    // Each row reached pulls in the ones that reach it, until none does; never further back
    // than a bound, so one finding that fails for months does not make every export re-read
    // all of staging.
    let limit = start - MAX_REACH_BACK_MS;
    let mut by_end: Vec<&Emitted> = remembered.iter().collect();
    by_end.sort_by_key(|r| std::cmp::Reverse(r.end_ms));
    for r in by_end {
        if r.end_ms + gap_ms >= from {
            from = from.min(r.start_ms - gap_ms);
        }
    }
    from.max(limit)
}

/// How far before its window an export reads back for what late data changed.
const MAX_REACH_BACK_MS: i64 = 8 * 86_400_000;

/// Where finding detection starts reading failures: bursts must be detected from there too, or
/// a finding re-read whole would lose its earlier bursts.
pub fn findings_reach(
    sources: &[SourceStaging<'_>],
    window: &Window,
    margin: std::time::Duration,
    settings: &correlate::Settings,
    remembered: &[Emitted],
) -> Result<i64> {
    let margin = chrono::Duration::from_std(margin)?;
    let gap_ms = i64::try_from(settings.gap.as_millis())?;
    Ok(reach_back(
        sources, &FAILED, window, margin, gap_ms, remembered,
    ))
}

/// Datasets whose late rows make findings worth a second look.
const FAILED: [Dataset; 3] = [
    Dataset::Denials,
    Dataset::WebhookFailures,
    Dataset::RateLimitEvents,
];

/// What correlation reads besides bursts.
const EVIDENCE: [Dataset; 6] = [
    Dataset::Denials,
    Dataset::WebhookFailures,
    Dataset::TokenSnapshots,
    Dataset::Changes,
    Dataset::Incidents,
    Dataset::RequestCounts,
];

/// Local copies of every retained segment, up to what the export covers, holding any of
/// `datasets` on the days between `from` and `to`.
async fn segments_of(
    staging: &Staging,
    scratch: &Path,
    sources: &[SourceStaging<'_>],
    datasets: &[Dataset],
    from: i64,
    to: i64,
) -> Result<Vec<LocalCopy>> {
    let days: BTreeSet<String> = (from.div_euclid(86_400_000)..=to.div_euclid(86_400_000))
        .map(|d| utc_day(d * 86_400_000))
        .collect();
    let mut copies = Vec::new();
    for s in sources {
        for segment in staging
            .segments(s.name)
            .await?
            .into_iter()
            .filter(|n| *n <= s.through)
        {
            let header = staging.segment_header(s.name, segment, scratch).await?;
            let wanted = header.partitions.iter().any(|p| {
                datasets.contains(&p.partition.dataset) && days.contains(&p.partition.day)
            });
            if wanted {
                copies.push(staging.fetch_segment(s.name, segment, scratch).await?);
            }
        }
    }
    Ok(copies)
}

/// A derived row as found, before it is matched with what earlier exports emitted.
struct Found<T> {
    item: T,
    key: String,
    start_ms: i64,
    end_ms: i64,
    fingerprint: String,
    /// Its id if it is new.
    new_uid: Uuid,
}

/// Matches what was found with what was emitted: a changed row is a new revision under the
/// same id, an unchanged one is not sent again (`false`), a new one gets its id from its
/// group and start. Rows starting after the window wait for the next export (`false` too).
fn reconcile<T>(
    found: impl IntoIterator<Item = Found<T>>,
    window: &Window,
    gap_ms: i64,
    remembered: &[Emitted],
) -> Vec<(T, Emitted, bool)> {
    let mut out = Vec::new();
    let mut taken = std::collections::HashSet::new();
    for f in found {
        // One remembered row per found one: two found where one was emitted (late data split
        // it) keep the id for the first and give the second its own.
        let before = remembered.iter().find(|r| {
            r.key == f.key
                && r.start_ms - gap_ms <= f.end_ms
                && f.start_ms <= r.end_ms + gap_ms
                && !taken.contains(&r.uid)
        });
        if let Some(r) = before {
            taken.insert(r.uid);
        }
        let (uid, revision, send) = match before {
            Some(r) if r.fingerprint == f.fingerprint => (r.uid, r.revision, false),
            Some(r) => (r.uid, r.revision + 1, true),
            // Not this export's to send, but evidence all the same (a burst just after the
            // window still belongs to a finding that starts in it).
            None if f.start_ms >= window.end.timestamp_millis() => (f.new_uid, 1, false),
            None => (f.new_uid, 1, true),
        };
        let emitted = Emitted {
            uid,
            key: f.key,
            start_ms: f.start_ms,
            end_ms: f.end_ms,
            revision,
            fingerprint: f.fingerprint,
        };
        out.push((f.item, emitted, send));
    }
    out
}

fn origin(b: &Burst) -> Origin<'_> {
    Origin {
        dataset: Dataset::RateLimitBursts,
        vendor: &b.key.vendor,
        tenant: &b.key.tenant,
        environment: &b.environment,
        source: &b.key.source,
    }
}

fn fingerprint(b: &Burst) -> String {
    format!(
        "{}|{}|{}|{}|{}|{:?}|{:?}|{:?}",
        b.start_ms,
        b.end_ms,
        b.count_429,
        b.count_503,
        b.peak_per_minute,
        b.retry_after_max_s,
        b.ratelimit_limit,
        b.ratelimit_remaining_min
    )
}

fn row(b: Burst, uid: Uuid, revision: i64) -> Record {
    let related_count = b.related_count() as i64;
    RateLimitBurst {
        head: Header {
            time: b.start_ms,
            event_uid: uid,
            vendor: b.key.vendor.clone(),
            tenant: b.key.tenant.clone(),
            environment: b.environment,
            source: b.key.source.clone(),
            source_event_uid: None,
            credential: b.credential,
        },
        start_time_dt: Some(b.start_ms),
        end_time_dt: Some(b.end_ms),
        count: Some(b.count_429 as i64),
        peak_per_minute: Some(b.peak_per_minute as i64),
        interleaved_503: Some(b.count_503 as i64),
        api_service: b.api_service,
        api_operation: Some(b.key.operation.clone()).filter(|o| !o.is_empty()),
        actor_app: b.actor_app,
        credential_uid: b.credential_uid,
        retry_after_max_s: b.retry_after_max_s,
        ratelimit_limit: b.ratelimit_limit,
        ratelimit_remaining_min: b.ratelimit_remaining_min,
        related_event_uids: b.related,
        related_events_count: Some(related_count),
        revision: Some(revision),
    }
    .into()
}

fn day_start(day: &str) -> Option<i64> {
    let date = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

const CORRELATION: &str = "scopetrail.correlation";

fn finding_origin(f: &Finding) -> Origin<'_> {
    Origin {
        dataset: Dataset::Findings,
        vendor: &f.vendor,
        tenant: &f.tenant,
        environment: &f.environment,
        source: CORRELATION,
    }
}

/// A new finding's id: over its group and first failure (DESIGN §4).
pub fn finding_uid(f: &Finding) -> Uuid {
    finding_origin(f).derived_uid(&f.key, f.first_ms)
}

fn finding_fingerprint(f: &Finding) -> String {
    format!(
        "{}|{}|{}|{}|{}|{}|{:?}|{}",
        f.finding_type.as_str(),
        f.confidence.as_str(),
        f.first_ms,
        f.last_ms,
        f.related.len(),
        f.alternatives.len(),
        f.cause.map(|c| c.uid),
        f.severity.as_str()
    )
}

fn finding_row(f: Finding, uid: Uuid, revision: i64) -> Record {
    let related_count = f.related.len() as i64;
    let head = finding_origin(&f).header(f.first_ms, uid, None, f.credential.clone());
    FindingRow {
        head,
        finding_type: Some(f.finding_type.as_str().into()),
        severity: Some(f.severity.as_str().into()),
        title: Some(f.title),
        explanation: Some(f.explanation),
        confidence: Some(f.confidence.as_str().into()),
        first_seen_dt: Some(f.first_ms),
        last_seen_dt: Some(f.last_ms),
        related_events_count: Some(related_count),
        related_event_uids: f
            .related
            .iter()
            .take(bursts::MAX_RELATED)
            .map(|r| r.uid.to_string())
            .collect(),
        cause_event_uid: f.cause.map(|c| c.uid.to_string()),
        alternative_causes: Some(f.alternatives.join("; ")).filter(|a| !a.is_empty()),
        actor_app: f.actor_app,
        credential_uid: f.credential_uid,
        incident_url: f.incident_url,
        remediation: Some(f.remediation),
        revision: Some(revision),
    }
    .into()
}

/// A finding's links to its events, kept compact in the plan (a finding can have a million)
/// and turned into `finding_events` rows when the objects are written.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Links {
    pub finding: Uuid,
    pub time: i64,
    pub vendor: String,
    pub tenant: String,
    pub environment: String,
    pub credential: Option<String>,
    /// The failures and the cause, by dataset (the order the plan keeps them in).
    #[serde(with = "compact_refs")]
    pub related: Vec<EventRef>,
}

impl Links {
    fn of(f: &Finding, uid: Uuid) -> Links {
        let mut related = f.related.clone();
        related.extend(f.cause.filter(|c| !f.related.contains(c)));
        related.sort_by_key(|r| r.dataset);
        Links {
            finding: uid,
            time: f.first_ms,
            vendor: f.vendor.clone(),
            tenant: f.tenant.clone(),
            environment: f.environment.clone(),
            credential: f.credential.clone(),
            related,
        }
    }

    fn origin(&self) -> Origin<'_> {
        Origin {
            dataset: Dataset::FindingEvents,
            vendor: &self.vendor,
            tenant: &self.tenant,
            environment: &self.environment,
            source: CORRELATION,
        }
    }

    /// A link's `event_uid`, from the (finding, event) pair.
    fn uid(&self, related: &EventRef) -> Uuid {
        let pair = format!("{}/{}", self.finding, related.uid);
        self.origin().event_uid(&pair, None)
    }

    fn row(&self, related: &EventRef, uid: Uuid) -> Record {
        FindingEvent {
            head: self
                .origin()
                .header(self.time, uid, None, self.credential.clone()),
            finding_uid: Some(self.finding.to_string()),
            related_event_uid: Some(related.uid.to_string()),
            related_dataset: Some(related.dataset.name().into()),
        }
        .into()
    }

    /// The `finding_events` rows.
    pub fn rows(&self) -> impl Iterator<Item = Record> + '_ {
        self.related.iter().map(|r| self.row(r, self.uid(r)))
    }
}

/// `Links::related` in a plan: per dataset, its events' ids as one base64 string of 16-byte
/// ids. A week can link a million events, and as JSON objects they took 100 bytes each.
mod compact_refs {
    use std::collections::BTreeMap;

    use base64::Engine;
    use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};
    use uuid::Uuid;

    use crate::analysis::correlate::EventRef;
    use crate::model::Dataset;

    pub fn serialize<S: Serializer>(refs: &[EventRef], s: S) -> Result<S::Ok, S::Error> {
        let mut ids: BTreeMap<Dataset, Vec<u8>> = BTreeMap::new();
        for r in refs {
            ids.entry(r.dataset)
                .or_default()
                .extend_from_slice(r.uid.as_bytes());
        }
        s.collect_map(ids.iter().map(|(d, ids)| (d, B64.encode(ids))))
    }

    /// Plans written by earlier builds list the events as objects.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        ByDataset(BTreeMap<Dataset, String>),
        Listed(Vec<EventRef>),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<EventRef>, D::Error> {
        let ids = match Stored::deserialize(d)? {
            Stored::ByDataset(ids) => ids,
            Stored::Listed(refs) => return Ok(refs),
        };
        let mut refs = Vec::new();
        for (dataset, text) in ids {
            let bytes = B64
                .decode(&text)
                .map_err(|e| D::Error::custom(format!("{}: {e}", dataset.name())))?;
            if bytes.len() % 16 != 0 {
                return Err(D::Error::custom(format!(
                    "{}: {} bytes of ids, not a multiple of 16",
                    dataset.name(),
                    bytes.len()
                )));
            }
            refs.extend(bytes.chunks_exact(16).map(|id| EventRef {
                uid: Uuid::from_slice(id).unwrap_or_default(),
                dataset,
            }));
        }
        Ok(refs)
    }
}

/// Every link's `finding_events` row in the merge's order (`SortKey`), made as it is taken:
/// a week's links can be millions, and a row takes a hundred times the room of its link.
pub fn link_rows(links: &[Links]) -> impl Iterator<Item = Record> + '_ {
    let mut order: Vec<(Uuid, u32, u32)> = links
        .iter()
        .enumerate()
        .flat_map(|(l, link)| {
            (link.related.iter().enumerate())
                .map(move |(r, related)| (link.uid(related), l as u32, r as u32))
        })
        .collect();
    let key = |&(uid, l, _): &(Uuid, u32, u32)| {
        let link = &links[l as usize];
        SortKey::new(
            Dataset::FindingEvents,
            &link.vendor,
            &link.tenant,
            link.time,
            uid,
        )
    };
    order.sort_unstable_by(|a, b| key(a).cmp(&key(b)));
    order.into_iter().filter_map(move |(uid, l, r)| {
        let link = links.get(l as usize)?;
        Some(link.row(link.related.get(r as usize)?, uid))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(finding: u8, vendor: &str, time: i64, n: u8) -> Links {
        let event = |i: u8, dataset| EventRef {
            uid: Uuid::from_bytes([i; 16]),
            dataset,
        };
        let mut related: Vec<EventRef> = (0..n).map(|i| event(i, Dataset::Denials)).collect();
        related.push(event(200, Dataset::TokenSnapshots));
        related.sort_by_key(|r| r.dataset);
        Links {
            finding: Uuid::from_bytes([finding; 16]),
            time,
            vendor: vendor.into(),
            tenant: "acme".into(),
            environment: "prod".into(),
            credential: Some("erp-sync".into()),
            related,
        }
    }

    #[test]
    fn link_rows_come_in_merge_order_and_are_the_links_rows() {
        let all = vec![
            links(1, "okta", 5_000, 30),
            links(2, "github", 9_000, 20),
            links(3, "github", 1_000, 25),
            links(4, "okta", 5_000, 10),
        ];
        let made: Vec<Record> = link_rows(&all).collect();
        assert!(
            made.windows(2)
                .all(|w| SortKey::of(&w[0]) < SortKey::of(&w[1])),
            "rows out of the merge's order"
        );
        let uids = |rows: &[Record]| {
            let mut u: Vec<Uuid> = rows.iter().map(|r| r.head().event_uid).collect();
            u.sort();
            u
        };
        let expected: Vec<Record> = all.iter().flat_map(|l| l.rows()).collect();
        assert_eq!(made.len(), 30 + 20 + 25 + 10 + 4);
        assert_eq!(uids(&made), uids(&expected));
        assert_eq!(made, {
            let mut e = expected;
            e.sort_by(|a, b| SortKey::of(a).cmp(&SortKey::of(b)));
            e
        });
    }

    #[test]
    fn a_plans_links_are_one_base64_string_per_dataset() {
        let l = links(7, "github", 1_000, 3);
        let json = serde_json::to_value(&l).unwrap_or_default();
        let related = &json["related"];
        // 3 ids of 16 bytes: 48 bytes, 64 characters of base64.
        assert_eq!(related["denials"].as_str().map(str::len), Some(64));
        assert!(related["token_snapshots"].is_string(), "{related}");
        let back: Links = serde_json::from_value(json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, l);

        // Plans written by earlier builds listed the events as objects.
        let mut old = serde_json::to_value(&l).unwrap_or_default();
        old["related"] = serde_json::to_value(&l.related).unwrap_or_default();
        assert!(old["related"].is_array());
        let back: Links = serde_json::from_value(old).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, l);

        let mut bad = serde_json::to_value(&l).unwrap_or_default();
        bad["related"]["denials"] = "AAAA".into();
        let err = serde_json::from_value::<Links>(bad)
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("denials") && e.contains("multiple of 16")),
            "{err:?}"
        );
    }
}
