//! Export plans (DESIGN §2.3): before anything is written, the plan pins which staging
//! segments an export covers, its window and the keys it will write, so a rerun after a crash
//! replays it to the same bytes under the same keys.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::derive::Emitted;
use crate::config::Job;
use crate::model::{Dataset, Record, to_datetime};
use crate::staging::{MALFORMED_EXAMPLES, Partition};

/// Staging segments `after + 1 ..= through` of one source.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct SegmentRange {
    pub after: u64,
    pub through: u64,
}

impl SegmentRange {
    pub fn segments(&self) -> impl Iterator<Item = u64> {
        self.after + 1..=self.through
    }
}

/// A job's export state, moved only after an export is complete.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Pointer {
    pub job: String,
    /// The last committed export (0: none yet).
    pub export: u64,
    pub next_window_start_ms: i64,
    /// Per source, the last staging segment exported.
    pub segments: BTreeMap<String, u64>,
    /// Recent exports, for staging retention (segments are kept a while after export).
    #[serde(default)]
    pub history: Vec<Exported>,
    /// Bursts emitted so far, to re-emit one that late data changes under the same id.
    #[serde(default)]
    pub bursts: Vec<Emitted>,
    /// Findings emitted so far, likewise.
    #[serde(default)]
    pub findings: Vec<Emitted>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Exported {
    pub export: u64,
    pub committed_ms: i64,
    pub segments: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PlannedObject {
    pub key: String,
    #[serde(flatten)]
    pub partition: Partition,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Plan {
    pub format: u32,
    pub job: String,
    pub export: u64,
    pub window_start_ms: i64,
    pub window_end_ms: i64,
    pub complete: bool,
    pub late_sources: Vec<String>,
    pub staging: BTreeMap<String, SegmentRange>,
    /// The job's filters when planned, so a replay does not depend on today's configuration.
    pub datasets: Vec<Dataset>,
    pub tenants: Option<Vec<String>>,
    pub objects: Vec<PlannedObject>,
    /// Rows derived for this export (bursts, findings), kept in the plan so a replay writes the same.
    #[serde(default)]
    pub derived: Vec<Record>,
    /// What the job's state remembers of the bursts once the export is committed.
    #[serde(default)]
    pub emitted: Vec<Emitted>,
    /// Findings' links to their events: the `finding_events` rows, written with the objects.
    #[serde(default)]
    pub links: Vec<super::derive::Links>,
    /// What the job's state remembers of the findings once the export is committed.
    #[serde(default)]
    pub emitted_findings: Vec<Emitted>,
    /// Per source, the inputs its collections could not read, in the staging covered.
    #[serde(default)]
    pub malformed: BTreeMap<String, Malformed>,
    /// The clock of the run that planned it: the report lists the collections that failed
    /// from the window's start until then.
    #[serde(default)]
    pub planned_ms: Option<i64>,
}

/// Inputs a source could not read: how many, and the first ones with file and line.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Malformed {
    pub count: u64,
    pub examples: Vec<String>,
}

impl Malformed {
    pub fn add(&mut self, count: u64, examples: &[String]) {
        self.count += count;
        let room = MALFORMED_EXAMPLES.saturating_sub(self.examples.len());
        self.examples.extend(examples.iter().take(room).cloned());
    }
}

impl Plan {
    pub fn wants(&self, record: &Record) -> bool {
        self.datasets.contains(&record.dataset())
            && self
                .tenants
                .as_ref()
                .is_none_or(|ts| ts.contains(&record.head().tenant))
    }

    pub fn wants_partition(&self, p: &Partition) -> bool {
        self.datasets.contains(&p.dataset)
            && self
                .tenants
                .as_ref()
                .is_none_or(|ts| ts.contains(&p.tenant))
    }

    pub fn window(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        (
            to_datetime(self.window_start_ms).unwrap_or_default(),
            to_datetime(self.window_end_ms).unwrap_or_default(),
        )
    }
}

/// How far a source has collected, for deciding whether a window is closed.
#[derive(Debug, Clone)]
pub struct SourceProgress {
    pub name: String,
    pub watermark_ms: Option<i64>,
    pub lateness_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Due {
    /// Export this window now.
    Export {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        complete: bool,
        late_sources: Vec<String>,
    },
    /// The next window is not closed yet.
    Wait {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        /// When every source can have collected past its end (the end plus their lateness).
        ready: DateTime<Utc>,
        /// When it will be exported at the latest (`max_wait`).
        deadline: DateTime<Utc>,
        /// The window has not ended yet.
        open: bool,
        waiting_for: Vec<String>,
    },
}

/// The job's next window and whether it can be exported: when every source has collected up
/// to its end plus the source's lateness, or, with the late sources marked, after `max_wait`.
pub fn next_window(
    job: &Job,
    next_start: DateTime<Utc>,
    now: DateTime<Utc>,
    progress: &[SourceProgress],
) -> Option<Due> {
    let start = next_start;
    let end = job.schedule.next_after(start)?;
    let deadline = end + job.max_wait.chrono();
    let ready = end
        + chrono::Duration::milliseconds(progress.iter().map(|p| p.lateness_ms).max().unwrap_or(0));
    let late: Vec<String> = progress
        .iter()
        .filter(|p| {
            p.watermark_ms
                .is_none_or(|w| w < end.timestamp_millis() + p.lateness_ms)
        })
        .map(|p| p.name.clone())
        .collect();
    if now < end || (!late.is_empty() && now < deadline) {
        return Some(Due::Wait {
            start,
            end,
            ready,
            deadline,
            open: now < end,
            waiting_for: late,
        });
    }
    Some(Due::Export {
        start,
        end,
        complete: late.is_empty(),
        late_sources: late,
    })
}

/// A new job exports at most this many windows before now: a schedule of a few seconds with
/// a week of lookback would otherwise start with hundreds of thousands of empty exports.
pub const MAX_FIRST_WINDOWS: usize = 1000;

/// Where a new job's first window starts: the last fire at or before the earliest data its
/// sources read back, so the first export covers the first collection.
pub fn first_window_start(
    job: &Job,
    now: DateTime<Utc>,
    lookback: chrono::Duration,
) -> Option<DateTime<Utc>> {
    let anchor = now - lookback;
    let from_lookback = job
        .schedule
        .last_at_or_before(anchor)
        .or_else(|| job.schedule.next_after(anchor))?;
    let mut earliest = job.schedule.last_at_or_before(now)?;
    for _ in 1..MAX_FIRST_WINDOWS {
        if earliest <= from_lookback {
            return Some(from_lookback);
        }
        match job
            .schedule
            .last_at_or_before(earliest - chrono::Duration::milliseconds(1))
        {
            Some(t) => earliest = t,
            None => return Some(from_lookback),
        }
    }
    Some(from_lookback.max(earliest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Dur, Loc};
    use crate::schedule::Schedule;

    fn job(max_wait_h: u64) -> Job {
        Job {
            name: "weekly".into(),
            file: "jobs/weekly.toml".into(),
            schedule: Schedule::parse("0 0 * * MON").unwrap_or_else(|e| panic!("{e}")),
            sources: vec![],
            datasets: Dataset::ALL.to_vec(),
            tenants: None,
            max_wait: Dur(std::time::Duration::from_secs(max_wait_h * 3600)),
            loc: Loc {
                file: "x".into(),
                line: 1,
                column: 1,
            },
        }
    }

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap_or_default()
    }

    fn progress(watermark: &str) -> Vec<SourceProgress> {
        vec![SourceProgress {
            name: "logs".into(),
            watermark_ms: Some(t(watermark).timestamp_millis()),
            lateness_ms: 15 * 60_000,
        }]
    }

    #[test]
    fn a_window_closes_after_lateness() {
        let j = job(24);
        let start = t("2026-03-02T00:00:00Z");
        // Collected to 00:10, lateness 15 minutes: wait.
        let due = next_window(
            &j,
            start,
            t("2026-03-09T00:10:00Z"),
            &progress("2026-03-09T00:10:00Z"),
        );
        assert!(matches!(due, Some(Due::Wait { ref waiting_for, .. }) if waiting_for == &["logs"]));
        let due = next_window(
            &j,
            start,
            t("2026-03-09T00:20:00Z"),
            &progress("2026-03-09T00:15:00Z"),
        );
        assert_eq!(
            due,
            Some(Due::Export {
                start,
                end: t("2026-03-09T00:00:00Z"),
                complete: true,
                late_sources: vec![]
            })
        );
    }

    #[test]
    fn max_wait_exports_incomplete() {
        let j = job(6);
        let start = t("2026-03-02T00:00:00Z");
        let stale = progress("2026-03-08T12:00:00Z");
        assert!(matches!(
            next_window(&j, start, t("2026-03-09T05:59:00Z"), &stale),
            Some(Due::Wait { .. })
        ));
        assert!(matches!(
            next_window(&j, start, t("2026-03-09T06:00:00Z"), &stale),
            Some(Due::Export { complete: false, ref late_sources, .. }) if late_sources == &["logs"]
        ));
    }

    #[test]
    fn first_window_covers_the_lookback() {
        let j = job(24);
        let start = first_window_start(&j, t("2026-03-09T01:00:00Z"), chrono::Duration::days(7));
        assert_eq!(start, Some(t("2026-03-02T00:00:00Z")));
    }

    #[test]
    fn a_fast_schedule_starts_with_a_bounded_number_of_windows() {
        let mut j = job(24);
        j.schedule = Schedule::parse("*/2 * * * * *").unwrap_or_else(|e| panic!("{e}"));
        let now = t("2026-03-09T01:00:00Z");
        let start = first_window_start(&j, now, chrono::Duration::days(7)).unwrap_or_default();
        let windows = (now - start).num_seconds() / 2;
        assert_eq!(windows as usize, MAX_FIRST_WINDOWS - 1, "from {start}");
    }
}
