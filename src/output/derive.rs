//! Rows scopetrail derives at export time (429 bursts; findings will join them): detection
//! reads every retained staging segment around the window, then each burst is matched with
//! what earlier exports emitted, so one that late data extends keeps its `event_uid` and goes
//! out again with a higher `revision`, and one that did not change is not sent again.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::analysis::bursts::{self, Burst, Detector};
use crate::model::uid::Origin;
use crate::model::{Dataset, Header, RateLimitBurst, Record, utc_day};
use crate::staging::{Merge, SegmentHeader, Staging};

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

/// The bursts to emit with this export, and what to remember of them.
pub async fn bursts(
    staging: &Staging,
    scratch: &Path,
    sources: &[SourceStaging<'_>],
    window: &Window,
    settings: &bursts::Settings,
    remembered: &[Emitted],
) -> Result<(Vec<Record>, Vec<Emitted>)> {
    let margin = chrono::Duration::from_std(settings.margin)?;
    let gap_ms = i64::try_from(settings.gap.as_millis())?;
    // Late events make earlier bursts worth a second look: start at the earliest day that got
    // new rate-limit events, and at the start of any burst that could reach it.
    let earliest_new = sources
        .iter()
        .flat_map(|s| s.new)
        .flat_map(|h| &h.partitions)
        .filter(|p| p.partition.dataset == Dataset::RateLimitEvents)
        .filter_map(|p| day_start(&p.partition.day))
        .min();
    let mut from = (window.start - margin).timestamp_millis();
    if let Some(t) = earliest_new {
        from = from.min(t - margin.num_milliseconds());
    }
    for r in remembered {
        if r.end_ms + gap_ms >= from {
            from = from.min(r.start_ms - gap_ms);
        }
    }
    let to = (window.end + margin).timestamp_millis();

    // Every retained segment with rate-limit events of those days.
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
                p.partition.dataset == Dataset::RateLimitEvents && days.contains(&p.partition.day)
            });
            if wanted {
                copies.push(staging.fetch_segment(s.name, segment, scratch).await?);
            }
        }
    }
    let paths: Vec<PathBuf> = copies.iter().map(|c| c.path().to_path_buf()).collect();
    let scratch = scratch.to_path_buf();
    let detection = settings.clone();
    let found = tokio::task::spawn_blocking(move || -> Result<Vec<Burst>> {
        let mut merge = Merge::open_only(&paths, Some(&[Dataset::RateLimitEvents]), &scratch)?;
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
    Ok(reconcile(found, window, gap_ms, remembered))
}

/// Matches what was found with what was emitted: a changed burst is a new revision under the
/// same id, an unchanged one is not sent again, a new one gets its id from its group and
/// start. Bursts starting after the window wait for the next export.
fn reconcile(
    found: Vec<Burst>,
    window: &Window,
    gap_ms: i64,
    remembered: &[Emitted],
) -> (Vec<Record>, Vec<Emitted>) {
    let mut rows = Vec::new();
    let mut emitted = Vec::new();
    for b in found {
        let key = b.key.text();
        let before = remembered.iter().find(|r| {
            r.key == key && r.start_ms - gap_ms <= b.end_ms && b.start_ms <= r.end_ms + gap_ms
        });
        let fingerprint = fingerprint(&b);
        let (uid, revision) = match before {
            Some(r) if r.fingerprint == fingerprint => continue,
            Some(r) => (r.uid, r.revision + 1),
            None if b.start_ms >= window.end.timestamp_millis() => continue,
            None => {
                let origin = origin(&b);
                (origin.derived_uid(&key, b.start_ms), 1)
            }
        };
        emitted.push(Emitted {
            uid,
            key,
            start_ms: b.start_ms,
            end_ms: b.end_ms,
            revision,
            fingerprint,
        });
        rows.push(row(b, uid, revision));
    }
    (rows, emitted)
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
