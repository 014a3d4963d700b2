//! One run (DESIGN §2): collect the sources that are due, export the windows that are closed,
//! clean up what retention allows, and leave a run record.

use std::collections::BTreeSet;
use std::sync::Arc;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::bindings::Bindings;
use crate::config::{Config, Job, OWN_SOURCES, StoreSpec};
use crate::error::{ConfigError, is_temporary};
use crate::model::rfc3339_ms;
use crate::output::export::{Exporter, JobReport, JobSource};
use crate::output::keys;
use crate::retention::{self, Cleanup};
use crate::sources::BuildContext;
use crate::staging::{Checkpoint, CollectStats, Staging};
use crate::store::{Body, Metadata, SharedStore, local::LocalStore};

#[derive(Debug, Default, Clone)]
pub struct RunOptions {
    /// Only this job (and its sources).
    pub job: Option<String>,
    /// Pretend it is this time: what is due and which windows are closed. Never drives lease
    /// expiry or backoff.
    pub now: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Clock {
    System,
    /// `--now` on the command line.
    Flag,
    /// `[clock] now` in the configuration (the demo's).
    Pinned,
}

#[derive(Debug, Serialize)]
pub struct RunReport {
    pub run_id: String,
    pub version: &'static str,
    pub started_at: String,
    pub finished_at: String,
    pub now: String,
    pub clock: Clock,
    pub store: String,
    pub sources: Vec<SourceReport>,
    pub jobs: Vec<JobReport>,
    pub failures: Vec<Failure>,
    pub cleanup: Cleanup,
    /// Key of this run's record, once written.
    pub run_record: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct SourceReport {
    pub name: String,
    pub kind: &'static str,
    #[serde(flatten)]
    pub outcome: SourceOutcome,
    pub checkpoint_before: Option<CheckpointSummary>,
    pub checkpoint_after: Option<CheckpointSummary>,
}

#[derive(Debug, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum SourceOutcome {
    Collected {
        stats: CollectStats,
    },
    NotDue {
        next_at: String,
    },
    /// What was staged before the failure stays staged.
    Failed {
        error: String,
        temporary: bool,
        stats: CollectStats,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckpointSummary {
    pub segment: u64,
    pub watermark: Option<String>,
    pub last_collect: Option<String>,
}

impl From<&Checkpoint> for CheckpointSummary {
    fn from(c: &Checkpoint) -> Self {
        CheckpointSummary {
            segment: c.segment,
            watermark: c.watermark_ms.map(rfc3339_ms),
            last_collect: c.last_collect_ms.map(rfc3339_ms),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Failure {
    pub what: String,
    pub error: String,
    pub temporary: bool,
}

/// Exit codes (documented in `--help` and the README). 75 and 78 are sysexits' EX_TEMPFAIL
/// and EX_CONFIG, which cron wrappers and systemd's `RestartPreventExitStatus=` understand.
pub mod exit {
    pub const OK: u8 = 0;
    /// Something failed and the rest ran; what was collected is kept.
    pub const PARTIAL: u8 = 1;
    /// Only things a later run can get past failed.
    pub const TEMPORARY: u8 = 75;
    /// Nothing was run.
    pub const CONFIG: u8 = 78;
}

impl RunReport {
    pub fn exported_anything(&self) -> bool {
        self.jobs.iter().any(|j| !j.exports.is_empty())
    }

    pub fn exit_code(&self) -> u8 {
        if self.failures.is_empty() {
            exit::OK
        } else if self.failures.iter().all(|f| f.temporary) {
            exit::TEMPORARY
        } else {
            exit::PARTIAL
        }
    }
}

pub fn open_store(spec: &StoreSpec) -> Result<SharedStore> {
    match spec {
        StoreSpec::Local { path } => Ok(Arc::new(LocalStore::open(path)?)),
    }
}

pub async fn run(config: &Config, options: &RunOptions) -> Result<RunReport> {
    let started = Utc::now();
    let (now, clock) = match (options.now, config.clock) {
        (Some(t), _) => (t, Clock::Flag),
        (None, Some(t)) => (t, Clock::Pinned),
        (None, None) => (started, Clock::System),
    };
    let jobs: Vec<&Job> = match &options.job {
        Some(name) => vec![config.jobs.get(name).ok_or_else(|| {
            ConfigError(format!(
                "no job named `{name}` (jobs: {})",
                config.jobs.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?],
        None => config.jobs.values().collect(),
    };
    let data = open_store(&config.store)?;
    let state = match &config.state {
        Some(spec) => open_store(spec)?,
        None => data.clone(),
    };
    let staging = Staging::new(state.clone());
    let scratch = tempfile::Builder::new()
        .prefix("scopetrail-")
        .tempdir()
        .context("creating a scratch folder")?;
    let run_id = format!(
        "{}-{}",
        started.format("%Y%m%dT%H%M%SZ"),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let mut report = RunReport {
        run_id,
        version: env!("CARGO_PKG_VERSION"),
        started_at: rfc3339_ms(started.timestamp_millis()),
        finished_at: String::new(),
        now: rfc3339_ms(now.timestamp_millis()),
        clock,
        store: data.location(),
        sources: Vec::new(),
        jobs: Vec::new(),
        failures: Vec::new(),
        cleanup: Cleanup::default(),
        run_record: None,
    };

    // Collect.
    let wanted: BTreeSet<&str> = match &options.job {
        Some(_) => jobs
            .iter()
            .flat_map(|j| j.sources.iter().map(|s| s.name.as_str()))
            .filter(|s| config.sources.contains_key(*s))
            .collect(),
        None => config.sources.keys().map(String::as_str).collect(),
    };
    let ctx = BuildContext {
        base_dir: &config.base_dir,
        tenants: &config.tenants,
        bindings: Arc::new(Bindings::new(&config.credentials)),
    };
    for name in wanted {
        let r = collect(config, &staging, &ctx, name, now).await;
        if let SourceOutcome::Failed {
            error, temporary, ..
        } = &r.outcome
        {
            report.failures.push(Failure {
                what: format!("source {name}"),
                error: error.clone(),
                temporary: *temporary,
            });
        }
        report.sources.push(r);
    }

    // Export.
    let exporter = Exporter {
        data: &data,
        staging: &staging,
        scratch: scratch.path(),
        now,
    };
    for job in jobs {
        let sources: Vec<JobSource> = job
            .sources
            .iter()
            .filter(|s| !OWN_SOURCES.contains(&s.name.as_str()))
            .filter_map(|s| config.sources.get(&s.name))
            .map(|s| JobSource {
                name: s.name.clone(),
                lateness_ms: s.cadence.lateness.ms(),
            })
            .collect();
        let lookback = job
            .sources
            .iter()
            .filter_map(|s| config.sources.get(&s.name))
            .map(|s| s.cadence.initial_lookback)
            .max()
            .unwrap_or(config.defaults.initial_lookback);
        let mut job_report = JobReport {
            job: job.name.clone(),
            exports: Vec::new(),
            waiting: None,
        };
        if let Err(e) = exporter
            .run_job(job, &sources, lookback.chrono(), &mut job_report)
            .await
        {
            tracing::error!(job = %job.name, error = %format!("{e:#}"), "export failed");
            report.failures.push(Failure {
                what: format!("export of job {}", job.name),
                error: format!("{e:#}"),
                temporary: is_temporary(&e),
            });
        }
        report.jobs.push(job_report);
    }

    // Clean up.
    match retention::clean(config, &staging, &data, now).await {
        Ok(cleanup) => report.cleanup = cleanup,
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "retention clean-up failed; it is retried next run");
        }
    }

    report.finished_at = rfc3339_ms(Utc::now().timestamp_millis());
    let key = keys::run_key(&report.run_id);
    report.run_record = Some(key.clone());
    let mut bytes = serde_json::to_vec_pretty(&report)?;
    bytes.push(b'\n');
    if let Err(e) = data
        .put_new(&key, Body::Bytes(bytes), &Metadata::new())
        .await
    {
        report.run_record = None;
        report.failures.push(Failure {
            what: "run record".into(),
            error: format!("{e:#}"),
            temporary: is_temporary(&e),
        });
    }
    Ok(report)
}

async fn collect(
    config: &Config,
    staging: &Staging,
    ctx: &BuildContext<'_>,
    name: &str,
    now: DateTime<Utc>,
) -> SourceReport {
    let spec = &config.sources[name];
    let mut r = SourceReport {
        name: name.to_string(),
        kind: spec.settings.kind(),
        outcome: SourceOutcome::NotDue {
            next_at: String::new(),
        },
        checkpoint_before: None,
        checkpoint_after: None,
    };
    let failed = |e: anyhow::Error, stats: CollectStats| {
        tracing::error!(source = name, error = %format!("{e:#}"), "collection failed");
        SourceOutcome::Failed {
            error: format!("{e:#}"),
            temporary: is_temporary(&e),
            stats,
        }
    };
    let before = match staging.checkpoint(name).await {
        Ok((c, _)) => c,
        Err(e) => {
            r.outcome = failed(e, CollectStats::default());
            return r;
        }
    };
    r.checkpoint_before = Some((&before).into());
    let every = spec.cadence.collect_every.ms();
    if let Some(last) = before.last_collect_ms
        && now.timestamp_millis() - last < every
    {
        r.outcome = SourceOutcome::NotDue {
            next_at: rfc3339_ms(last + every),
        };
        r.checkpoint_after = r.checkpoint_before.clone();
        return r;
    }
    let horizon = spec.cadence.lateness.chrono()
        + spec.cadence.rescan_overlap.chrono()
        + chrono::Duration::hours(1);
    let mut session = match staging.open(name, now, &config.privacy, horizon).await {
        Ok(s) => s,
        Err(e) => {
            r.outcome = failed(e, CollectStats::default());
            return r;
        }
    };
    let mut source = spec.build(ctx);
    r.outcome = match source.collect(&mut session).await {
        Ok(()) => {
            let partial = session.stats().clone();
            match session.finish(now).await {
                Ok(stats) => SourceOutcome::Collected { stats },
                Err(e) => failed(e, partial),
            }
        }
        Err(e) => failed(e, session.stats().clone()),
    };
    r.checkpoint_after = staging
        .checkpoint(name)
        .await
        .ok()
        .map(|(c, _)| (&c).into());
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(failures: &[bool]) -> RunReport {
        RunReport {
            run_id: String::new(),
            version: "",
            started_at: String::new(),
            finished_at: String::new(),
            now: String::new(),
            clock: Clock::System,
            store: String::new(),
            sources: Vec::new(),
            jobs: Vec::new(),
            failures: failures
                .iter()
                .map(|&temporary| Failure {
                    what: "x".into(),
                    error: "y".into(),
                    temporary,
                })
                .collect(),
            cleanup: Cleanup::default(),
            run_record: None,
        }
    }

    #[test]
    fn exit_codes() {
        assert_eq!(report(&[]).exit_code(), exit::OK);
        assert_eq!(report(&[true, true]).exit_code(), exit::TEMPORARY);
        assert_eq!(report(&[true, false]).exit_code(), exit::PARTIAL);
        assert_eq!(report(&[false]).exit_code(), exit::PARTIAL);
    }
}
