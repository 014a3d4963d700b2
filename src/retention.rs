//! Staging segments and plans are kept `staging_retention` after their export, then deleted
//! (DESIGN §2); leftovers of interrupted writes are removed.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::Config;
use crate::output::plan::Pointer;
use crate::staging::Staging;
use crate::store::keys;
use crate::store::{SharedStore, Version};

#[derive(Debug, Default, Clone, Serialize)]
pub struct Cleanup {
    pub segments: usize,
    pub plans: usize,
    pub leftovers: usize,
}

/// Temporary files younger than this may belong to a run still going.
const LEFTOVER_AGE: Duration = Duration::from_secs(3600);

pub async fn clean(
    config: &Config,
    staging: &Staging,
    data: &SharedStore,
    now: DateTime<Utc>,
) -> Result<Cleanup> {
    let mut done = Cleanup::default();
    let cutoff = (now - config.defaults.staging_retention.chrono()).timestamp_millis();
    let mut pointers: BTreeMap<String, (Pointer, Version)> = BTreeMap::new();
    for job in config.jobs.keys() {
        if let Some((bytes, version)) = staging.store().get(&keys::pointer_key(job)).await? {
            pointers.insert(job.clone(), (serde_json::from_slice(&bytes)?, version));
        }
    }
    use crate::probes::collect::{DRIFT, SOURCE as SNAPSHOTS};
    // Snapshots and drift share one staging source, which jobs list under either name.
    let staged = config
        .sources
        .keys()
        .map(String::as_str)
        .chain(Some(SNAPSHOTS));
    for source in staged {
        let listed = |name: &str| name == source || (source == SNAPSHOTS && name == DRIFT);
        let jobs: Vec<&String> = config
            .jobs
            .values()
            .filter(|j| j.sources.iter().any(|s| listed(&s.name)))
            .map(|j| &j.name)
            .collect();
        if jobs.is_empty() {
            continue;
        }
        // A segment may go once every job that exports the source exported it long enough ago.
        let deletable = jobs
            .iter()
            .map(|job| {
                pointers.get(*job).map_or(0, |(p, _)| {
                    p.history
                        .iter()
                        .filter(|h| h.committed_ms <= cutoff)
                        .filter_map(|h| h.segments.get(source).copied())
                        .max()
                        .unwrap_or(0)
                })
            })
            .min()
            .unwrap_or(0);
        for segment in staging.segments(source).await? {
            if segment > deletable {
                break;
            }
            staging.delete_segment(source, segment).await?;
            crate::failpoint::hit("clean.after_segment_delete");
            done.segments += 1;
        }
    }
    for (job, (pointer, version)) in pointers {
        let (old, recent): (Vec<_>, Vec<_>) = pointer
            .history
            .iter()
            .cloned()
            .partition(|h| h.committed_ms <= cutoff);
        if old.len() < 2 {
            continue;
        }
        for h in &old[..old.len() - 1] {
            staging
                .store()
                .delete(&keys::plan_key(&job, h.export))
                .await?;
            crate::failpoint::hit("clean.after_plan_delete");
            done.plans += 1;
        }
        // The newest old entry stays: it says which segments are past retention.
        let mut pruned = pointer.clone();
        pruned.history = old[old.len() - 1..].iter().cloned().chain(recent).collect();
        // A concurrent export moved the pointer: leave the pruning to the next run.
        staging
            .store()
            .replace(
                &keys::pointer_key(&job),
                serde_json::to_vec_pretty(&pruned)?,
                Some(&version),
            )
            .await?;
    }
    let before = SystemTime::now() - LEFTOVER_AGE;
    done.leftovers = data.clean_leftovers(before).await?;
    if !std::ptr::addr_eq(
        std::sync::Arc::as_ptr(data),
        std::sync::Arc::as_ptr(staging.store()),
    ) {
        done.leftovers += staging.store().clean_leftovers(before).await?;
    }
    Ok(done)
}
