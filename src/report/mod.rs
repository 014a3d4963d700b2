//! The report people read (DESIGN §5: `<prefix>/reports/<job>/<window>.html`): one
//! self-contained HTML page per exported window, built from what the export wrote, so the
//! report an export leaves and the one `scopetrail report --from` rebuilds come from the same
//! rows through the same code.

mod chart;
mod gather;
mod html;
pub mod timeline;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use chrono::{DateTime, NaiveDate};
use serde::Deserialize;

use crate::error::ConfigError;
use crate::output::manifest::{Manifest, WindowMarker};
use crate::output::plan::Malformed;
use crate::output::read::for_each_exported;
use crate::store::{Body, Metadata, ObjectStore, PutOutcome, ReplaceOutcome};

/// The window a report is about.
#[derive(Debug, Clone)]
pub struct Window {
    /// The job whose export it is; none for a range given by hand.
    pub job: Option<String>,
    pub start_ms: i64,
    pub end_ms: i64,
    /// What the export of this window recorded; none when no export covers it exactly.
    pub export: Option<ExportInfo>,
}

#[derive(Debug, Clone)]
pub struct ExportInfo {
    pub export: u64,
    pub complete: bool,
    pub late_sources: Vec<String>,
    pub malformed: BTreeMap<String, Malformed>,
    /// When the export was planned: failed collections until then are listed.
    pub planned_ms: Option<i64>,
}

/// A collection that failed in a run around the window.
#[derive(Debug, Clone)]
pub struct SourceFailure {
    pub source: String,
    /// The run's clock.
    pub at_ms: i64,
    pub error: String,
}

/// Reads the window's exported rows (with `lookback` before and after, for timelines) and the
/// run records around it, and renders the page. `also_failed` are failures of a run whose
/// record is not written yet (the run exporting the window).
pub async fn build(
    store: &dyn ObjectStore,
    location: &str,
    window: Window,
    lookback_ms: i64,
    also_failed: &[SourceFailure],
    scratch: &Path,
) -> Result<String> {
    let from = window.start_ms.saturating_sub(lookback_ms);
    let until = failures_until(&window);
    let mut failures = run_failures(store, window.start_ms, until).await?;
    failures.extend(
        also_failed
            .iter()
            .filter(|f| f.at_ms >= window.start_ms && f.at_ms <= until)
            .cloned(),
    );
    // A store can hold several jobs' exports: the page is about this job's.
    let job = window.job.clone();
    let gatherer = gather::Gatherer::new(window, location.to_string(), failures, lookback_ms);
    let gatherer = for_each_exported(
        store,
        gather::READ,
        Some(from),
        job.as_deref(),
        scratch,
        gatherer,
    )
    .await
    .with_context(|| format!("reading the exported data at {location}"))?;
    tokio::task::spawn_blocking(move || html::render(&gatherer.finish()))
        .await
        .context("rendering the report")
}

/// Without an export's planning time (a range given by hand, an export of an older version):
/// how long after a window's end a run can still be collecting for it (the default
/// `max_wait`).
const RUNS_AFTER_MS: i64 = 24 * 3_600_000;

/// Failed collections are listed from the window's start until the export was planned, so
/// the page written by the export and one rebuilt later list the same runs.
fn failures_until(window: &Window) -> i64 {
    window
        .export
        .as_ref()
        .and_then(|e| e.planned_ms)
        .unwrap_or_else(|| window.end_ms.saturating_add(RUNS_AFTER_MS))
}

/// Collections that failed in the runs whose clock fell between `from` and `until`.
async fn run_failures(
    store: &dyn ObjectStore,
    from: i64,
    until: i64,
) -> Result<Vec<SourceFailure>> {
    #[derive(Deserialize)]
    struct Run {
        now: String,
        #[serde(default)]
        sources: Vec<RunSource>,
    }
    #[derive(Deserialize)]
    struct RunSource {
        name: String,
        outcome: String,
        #[serde(default)]
        error: Option<String>,
    }
    let keys = store
        .list("v1/_runs/")
        .await
        .with_context(|| format!("listing v1/_runs/ in {}", store.location()))?;
    let mut out = Vec::new();
    for key in keys.into_iter().filter(|k| k.ends_with(".json")) {
        let Some((bytes, _)) = store.get(&key).await? else {
            continue;
        };
        // A run record this build cannot read says nothing about the window; it is not a
        // reason to withhold the report.
        let Ok(run) = serde_json::from_slice::<Run>(&bytes) else {
            tracing::warn!(key = %key, "a run record could not be read; the report leaves it out");
            continue;
        };
        let Ok(now) = DateTime::parse_from_rfc3339(&run.now) else {
            continue;
        };
        let now = now.timestamp_millis();
        if now < from || now > until {
            continue;
        }
        for s in run.sources {
            if s.outcome == "failed" {
                out.push(SourceFailure {
                    source: s.name,
                    at_ms: now,
                    error: s.error.unwrap_or_default(),
                });
            }
        }
    }
    Ok(out)
}

/// Writes the page. Reports are for people, not SIEMs: a report written again with other
/// content (a rebuild that knows more) replaces the old one.
pub async fn write(store: &dyn ObjectStore, key: &str, page: &str) -> Result<()> {
    let bytes = page.as_bytes().to_vec();
    match store
        .put_new(key, Body::Bytes(bytes.clone()), &Metadata::new())
        .await?
    {
        PutOutcome::Created => Ok(()),
        PutOutcome::AlreadyExists(_) => {
            let existing = store.get(key).await?;
            match existing {
                Some((old, _)) if old == bytes => Ok(()),
                Some((_, version)) => match store.replace(key, bytes, Some(&version)).await? {
                    ReplaceOutcome::Replaced(_) => Ok(()),
                    ReplaceOutcome::Conflict => {
                        bail!("{key} changed while this run replaced it: another process wrote it")
                    }
                },
                None => bail!("{key} was there and is gone: another process deleted it"),
            }
        }
    }
}

/// `scopetrail report`: the page of an exported window, rebuilt from what the store holds.
pub async fn rebuild(
    store: &dyn ObjectStore,
    location: &str,
    choice: &Choice<'_>,
    lookback_ms: i64,
    scratch: &Path,
) -> Result<(Window, String)> {
    let window = choose(store, choice).await?;
    let page = build(store, location, window.clone(), lookback_ms, &[], scratch).await?;
    Ok((window, page))
}

impl Window {
    /// As its marker names it: `20260302T000000Z_20260309T000000Z`.
    pub fn name(&self) -> String {
        match (
            crate::model::to_datetime(self.start_ms),
            crate::model::to_datetime(self.end_ms),
        ) {
            (Some(s), Some(e)) => crate::store::keys::window_name(s, e),
            _ => format!("{}_{}", self.start_ms, self.end_ms),
        }
    }
}

/// `weekly-20260302T000000Z_20260309T000000Z.html`: a file name for a rebuilt page.
pub fn file_name(window: &Window) -> String {
    let job = window.job.as_deref().map(|j| format!("{j}-"));
    format!("{}{}.html", job.unwrap_or_default(), window.name())
}

/// Which window `scopetrail report` rebuilds.
pub struct Choice<'a> {
    pub job: Option<&'a str>,
    /// A window marker's name (`20260302T000000Z_20260309T000000Z`), a range of days
    /// (`2026-03-02..2026-03-09`), or a day inside an exported window; the newest by default.
    pub window: Option<&'a str>,
}

/// Finds the window to report on from the window markers exports left.
pub async fn choose(store: &dyn ObjectStore, choice: &Choice<'_>) -> Result<Window> {
    let keys = store
        .list("v1/_windows/")
        .await
        .with_context(|| format!("listing v1/_windows/ in {}", store.location()))?;
    // v1/_windows/<job>/<start>_<end>.json
    let mut windows: Vec<(String, i64, i64, String)> = Vec::new();
    for key in &keys {
        let Some(rest) = key.strip_prefix("v1/_windows/") else {
            continue;
        };
        let Some((job, name)) = rest.split_once('/') else {
            continue;
        };
        let Some((start, end)) = name.strip_suffix(".json").and_then(|n| n.split_once('_')) else {
            continue;
        };
        if let (Some(s), Some(e)) = (marker_time(start), marker_time(end)) {
            windows.push((job.to_string(), s, e, key.clone()));
        }
    }
    let mut jobs: Vec<&str> = windows.iter().map(|w| w.0.as_str()).collect();
    jobs.dedup();
    let job = match (choice.job, jobs.as_slice()) {
        (Some(j), _) if jobs.contains(&j) => j.to_string(),
        (Some(j), []) => bail!(
            "no exported windows at {}: has job {j} exported yet?",
            store.location()
        ),
        (Some(j), found) => {
            return Err(ConfigError(format!(
                "--job {j}: no exported windows of that job; found {}",
                found.join(", ")
            ))
            .into());
        }
        (None, [one]) => one.to_string(),
        (None, []) => bail!(
            "no exported windows at {} (no v1/_windows/): run an export first, or give --window START..END",
            store.location()
        ),
        (None, many) => {
            return Err(ConfigError(format!(
                "several jobs exported here ({}): choose one with --job",
                many.join(", ")
            ))
            .into());
        }
    };
    windows.retain(|w| w.0 == job);
    windows.sort_by_key(|w| (w.1, w.2));
    let picked = match choice.window {
        None => windows.last(),
        Some(text) => {
            let text = text.trim();
            if let Some((s, e)) = day_range(text)? {
                match windows.iter().find(|w| w.1 == s && w.2 == e) {
                    Some(w) => Some(w),
                    // A range no export covers exactly: reported without export details.
                    None => {
                        return Ok(Window {
                            job: Some(job),
                            start_ms: s,
                            end_ms: e,
                            export: None,
                        });
                    }
                }
            } else if let Some(w) = windows.iter().find(|w| {
                w.3.ends_with(&format!("/{text}.json")) || w.3.ends_with(&format!("/{text}"))
            }) {
                Some(w)
            } else if let Some(day) = parse_day(text) {
                windows.iter().rev().find(|w| w.1 <= day && day < w.2)
            } else {
                return Err(ConfigError(format!(
                    "--window {text:?}: give a window's name (20260302T000000Z_20260309T000000Z), a day inside one (2026-03-05) or a range of days (2026-03-02..2026-03-09)"
                ))
                .into());
            }
        }
    };
    let Some((_, start_ms, end_ms, marker_key)) = picked.cloned() else {
        bail!(
            "no exported window of job {job} matches {:?}; exported: {}",
            choice.window.unwrap_or(""),
            windows
                .iter()
                .map(|w| w
                    .3
                    .rsplit('/')
                    .next()
                    .unwrap_or("")
                    .trim_end_matches(".json"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    let export = export_info(store, &marker_key).await?;
    Ok(Window {
        job: Some(job),
        start_ms,
        end_ms,
        export: Some(export),
    })
}

async fn export_info(store: &dyn ObjectStore, marker_key: &str) -> Result<ExportInfo> {
    let json = |key: &str| {
        let key = key.to_string();
        async move {
            let (bytes, _) = store
                .get(&key)
                .await?
                .with_context(|| format!("{key} is listed but gone"))?;
            anyhow::Ok((key, bytes))
        }
    };
    let (key, bytes) = json(marker_key).await?;
    let marker: WindowMarker =
        serde_json::from_slice(&bytes).with_context(|| format!("{key}: not a window marker"))?;
    let (key, bytes) = json(&marker.manifest).await?;
    let manifest: Manifest =
        serde_json::from_slice(&bytes).with_context(|| format!("{key}: not an export manifest"))?;
    Ok(ExportInfo {
        export: marker.export,
        complete: marker.complete,
        late_sources: marker.late_sources,
        malformed: manifest.malformed,
        planned_ms: manifest
            .planned_at
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp_millis()),
    })
}

fn marker_time(text: &str) -> Option<i64> {
    chrono::NaiveDateTime::parse_from_str(text, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc().timestamp_millis())
}

fn parse_day(text: &str) -> Option<i64> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
}

/// `2026-03-02..2026-03-09`: from the start of the first day to the start of the second.
fn day_range(text: &str) -> Result<Option<(i64, i64)>> {
    let Some((a, b)) = text.split_once("..") else {
        return Ok(None);
    };
    match (parse_day(a.trim()), parse_day(b.trim())) {
        (Some(s), Some(e)) if s < e => Ok(Some((s, e))),
        _ => Err(ConfigError(format!(
            "--window {text:?}: a range is two days, the first before the second: 2026-03-02..2026-03-09"
        ))
        .into()),
    }
}
