//! One run (DESIGN §2): collect the sources that are due, export the windows that are closed,
//! clean up what retention allows, and leave a run record. Every scheduler (the daemon, a
//! systemd timer, cron) only decides when to call this.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::bindings::Bindings;
use crate::config::{Config, Job, OWN_SOURCES, StoreSpec};
use crate::error::{ConfigError, is_interrupted, is_temporary};
use crate::lease::{Acquired, Busy, HostLock, Leases};
use crate::model::rfc3339_ms;
use crate::output::export::{Exporter, JobReport, JobSource};
use crate::output::plan::Pointer;
use crate::probes::collect as snapshots;
use crate::retention::{self, Cleanup};
use crate::sources::{BuildContext, Cadence, SourceSpec};
use crate::staging::{Checkpoint, CollectStats, Collection, Staging};
use crate::store::keys;
use crate::store::{Body, Metadata, SharedStore, local::LocalStore, s3::S3Store};

#[derive(Debug, Default, Clone)]
pub struct RunOptions {
    /// Only this job (and its sources).
    pub job: Option<String>,
    /// Pretend it is this time: what is due and which windows are closed. Never drives lease
    /// expiry or backoff.
    pub now: Option<DateTime<Utc>>,
    /// Set when the process is asked to stop: sources end after their current page, exports
    /// stop between objects (their plans are replayed by the next run).
    pub cancel: CancellationToken,
    /// Counts pages staged and objects written, so the daemon's watchdog can tell a long run
    /// from a stuck one.
    pub progress: Arc<AtomicU64>,
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
    /// Which process: host, pid and a random suffix (also the owner of its leases).
    pub owner: String,
    pub started_at: String,
    pub finished_at: String,
    pub now: String,
    pub clock: Clock,
    pub store: String,
    /// Things a person should know about how this run worked.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<String>,
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
        /// Why it was due: its cadence, or a window waiting for it.
        reason: &'static str,
    },
    NotDue {
        next_at: String,
    },
    /// Another process is collecting it.
    Skipped {
        busy: Busy,
    },
    /// Asked to stop: the pages read so far are staged; the rest is read next time.
    Interrupted {
        stats: CollectStats,
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

pub async fn open_store(spec: &StoreSpec) -> Result<SharedStore> {
    match spec {
        StoreSpec::Local { path } => Ok(Arc::new(LocalStore::open(path)?)),
        StoreSpec::S3(spec) => Ok(Arc::new(S3Store::connect(spec).await?)),
    }
}

/// What `validate --connect` reports about a store, line by line.
pub async fn check_store(spec: &StoreSpec) -> Result<Vec<String>> {
    match spec {
        StoreSpec::Local { path } => {
            LocalStore::open(path)?;
            tempfile::tempfile_in(path)
                .with_context(|| format!("{} is not writable", path.display()))?;
            Ok(vec![format!("store {}: writable", spec.describe())])
        }
        StoreSpec::S3(spec) => crate::store::s3::probe::check(spec).await,
    }
}

pub async fn run(config: &Config, options: &RunOptions) -> Result<RunReport> {
    let mut runner = Runner::open(config, options).await?;
    let mut collected = false;
    for spec in runner.wanted_sources()? {
        let r = runner.collect(&Unit::Source(spec)).await;
        collected |= matches!(r.outcome, SourceOutcome::Collected { .. });
        runner.record_source(r);
    }
    if runner.wants_snapshots() {
        let unit = Unit::Snapshots(SnapshotRequest {
            // DESIGN §2.2: at every collect of the sources, and at least hourly.
            force: collected,
            ..Default::default()
        });
        let r = runner.collect(&unit).await;
        runner.record_source(r);
    }
    for job in runner.jobs.clone() {
        if options.cancel.is_cancelled() {
            break;
        }
        let r = runner.export(job).await;
        runner.report.jobs.push(r);
    }
    runner.clean_up().await;
    runner.finish().await
}

/// What `scopetrail snapshot` asks for.
#[derive(Default)]
pub struct SnapshotRequest {
    /// Probe now, whatever the cadence says.
    pub force: bool,
    /// Only this credential.
    pub only: Option<String>,
    /// Where each credential's result goes, for the command's table.
    pub outcomes: Option<Arc<std::sync::Mutex<Vec<crate::probes::collect::Outcome>>>>,
}

/// What a run collects into staging: a configured source, or the credentials' snapshots
/// (staged as the source `scopetrail.snapshot`).
enum Unit<'a> {
    Source(&'a SourceSpec),
    Snapshots(SnapshotRequest),
}

impl Unit<'_> {
    fn name(&self) -> &str {
        match self {
            Unit::Source(s) => &s.name,
            Unit::Snapshots(_) => snapshots::SOURCE,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Unit::Source(s) => s.settings.kind(),
            Unit::Snapshots(_) => "snapshot",
        }
    }

    /// Whether a job's `sources` entry names this.
    fn listed_as(&self, listed: &str) -> bool {
        match self {
            Unit::Source(s) => s.name == listed,
            Unit::Snapshots(_) => listed == snapshots::SOURCE || listed == snapshots::DRIFT,
        }
    }

    fn cadence(&self, config: &Config) -> Cadence {
        match self {
            Unit::Source(s) => s.cadence.clone(),
            Unit::Snapshots(_) => snapshot_cadence(config),
        }
    }

    fn build(
        &self,
        ctx: &BuildContext<'_>,
        config: &Config,
    ) -> Result<Box<dyn crate::sources::Source>> {
        match self {
            Unit::Source(s) => s.build(ctx),
            Unit::Snapshots(r) => Ok(Box::new(snapshots::Snapshots {
                credentials: config.credentials.clone(),
                engine: ctx.engine.clone(),
                base_dir: config.base_dir.clone(),
                only: r.only.clone(),
                outcomes: r.outcomes.clone().unwrap_or_default(),
            })),
        }
    }
}

/// Snapshots are taken at least hourly; their rows wait `lateness` like any source's.
fn snapshot_cadence(config: &Config) -> Cadence {
    let hour = crate::config::Dur(std::time::Duration::from_secs(3600));
    Cadence {
        collect_every: hour,
        lateness: config.defaults.lateness,
        initial_lookback: config.defaults.initial_lookback,
        retention: None,
        rescan_overlap: crate::config::Dur(std::time::Duration::ZERO),
    }
}

/// Probes credentials now (`scopetrail snapshot`), staging the snapshots and drift like a run
/// does; exports are left to `run`.
pub async fn snapshot(
    config: &Config,
    options: &RunOptions,
    only: Option<String>,
) -> Result<(SourceReport, Vec<crate::probes::collect::Outcome>)> {
    if let Some(name) = &only
        && !config
            .credentials
            .iter()
            .any(|c| &c.name == name && c.probe.is_some())
    {
        return Err(ConfigError(format!(
            "no credential named `{name}` has a [credentials.probe]"
        ))
        .into());
    }
    let runner = Runner::open(config, options).await?;
    let outcomes: Arc<std::sync::Mutex<Vec<_>>> = Arc::default();
    let unit = Unit::Snapshots(SnapshotRequest {
        force: true,
        only,
        outcomes: Some(outcomes.clone()),
    });
    let report = runner.collect(&unit).await;
    let outcomes = std::mem::take(&mut *outcomes.lock().unwrap_or_else(|p| p.into_inner()));
    Ok((report, outcomes))
}

/// Everything one run shares.
struct Runner<'a> {
    config: &'a Config,
    options: &'a RunOptions,
    now: DateTime<Utc>,
    jobs: Vec<&'a Job>,
    data: SharedStore,
    staging: Staging,
    leases: Leases,
    /// Held for the whole run on a store that relies on having a single writer.
    _host_lock: Option<HostLock>,
    bindings: Arc<Bindings>,
    /// The HTTP client, rate budgets and deadline every vendor source of the run shares.
    engine: Arc<crate::http::Engine>,
    scratch: tempfile::TempDir,
    report: RunReport,
}

impl<'a> Runner<'a> {
    async fn open(config: &'a Config, options: &'a RunOptions) -> Result<Self> {
        let started = Utc::now();
        let (now, clock) = match (options.now, config.clock) {
            (Some(t), _) => (t, Clock::Flag),
            (None, Some(t)) => (t, Clock::Pinned),
            (None, None) => (started, Clock::System),
        };
        // The clock decides what retention deletes: a clock in the future ("what does next
        // month do?") would delete staging that is still needed.
        if now > started + chrono::Duration::days(1) {
            return Err(ConfigError(format!(
                "refusing to run with the clock set to {}, in the future: it decides what is due, which windows are closed and what retention deletes",
                rfc3339_ms(now.timestamp_millis())
            ))
            .into());
        }
        let jobs: Vec<&Job> = match &options.job {
            Some(name) => vec![config.jobs.get(name).ok_or_else(|| {
                ConfigError(format!(
                    "no job named `{name}` (jobs: {})",
                    config.jobs.keys().cloned().collect::<Vec<_>>().join(", ")
                ))
            })?],
            None => config.jobs.values().collect(),
        };
        let data = open_store(&config.store).await?;
        let state = match &config.state {
            Some(spec) => open_store(spec).await?,
            None => data.clone(),
        };
        let mut leases = Leases::new(state.clone(), config.defaults.lease_ttl.0);
        let mut notices = Vec::new();
        let host_lock = if data.single_writer() || state.single_writer() {
            let lock = HostLock::take(&data.location())?;
            // Said every run: the guarantee now rests on the operator's promise.
            notices.push(format!(
                "{}: the store ignores conditional writes; running as its single writer under the host lock {}",
                data.location(),
                lock.path().display()
            ));
            leases.trust_host_lock();
            Some(lock)
        } else {
            None
        };
        let scratch = tempfile::Builder::new()
            .prefix("scopetrail-")
            .tempdir()
            .context("creating a scratch folder")?;
        let report = RunReport {
            run_id: format!(
                "{}-{}",
                started.format("%Y%m%dT%H%M%SZ"),
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ),
            version: env!("CARGO_PKG_VERSION"),
            owner: leases.owner().to_string(),
            started_at: rfc3339_ms(started.timestamp_millis()),
            finished_at: String::new(),
            now: rfc3339_ms(now.timestamp_millis()),
            clock,
            store: data.location(),
            notices,
            sources: Vec::new(),
            jobs: Vec::new(),
            failures: Vec::new(),
            cleanup: Cleanup::default(),
            run_record: None,
        };
        Ok(Runner {
            config,
            options,
            now,
            jobs,
            data,
            staging: Staging::new(state),
            leases,
            _host_lock: host_lock,
            bindings: Arc::new(Bindings::new(&config.credentials)),
            engine: crate::http::Engine::new(
                &config.http,
                config.credentials.iter().filter_map(|c| c.token.clone()),
                options.cancel.clone(),
            )?,
            scratch,
            report,
        })
    }

    /// The selected jobs' sources, or every source when no job is selected.
    fn wanted_sources(&self) -> Result<Vec<&'a SourceSpec>> {
        let names: BTreeSet<&str> = match &self.options.job {
            Some(_) => self
                .jobs
                .iter()
                .flat_map(|j| j.sources.iter().map(|s| s.name.as_str()))
                .filter(|s| self.config.sources.contains_key(*s))
                .collect(),
            None => self.config.sources.keys().map(String::as_str).collect(),
        };
        Ok(names.into_iter().map(|n| &self.config.sources[n]).collect())
    }

    /// Some credential has a probe, and the run is for every job or one that lists snapshots.
    fn wants_snapshots(&self) -> bool {
        let unit = Unit::Snapshots(SnapshotRequest::default());
        self.config.credentials.iter().any(|c| c.probe.is_some())
            && (self.options.job.is_none()
                || self
                    .jobs
                    .iter()
                    .any(|j| j.sources.iter().any(|s| unit.listed_as(&s.name))))
    }

    fn record_source(&mut self, r: SourceReport) {
        if let SourceOutcome::Failed {
            error, temporary, ..
        } = &r.outcome
        {
            self.report.failures.push(Failure {
                what: format!("source {}", r.name),
                error: error.clone(),
                temporary: *temporary,
            });
        }
        self.report.sources.push(r);
    }

    /// Why a source is due now, or when it will be.
    async fn due(
        &self,
        unit: &Unit<'_>,
        checkpoint: &Checkpoint,
    ) -> Result<Result<&'static str, i64>> {
        let now = self.now.timestamp_millis();
        if let Unit::Snapshots(r) = unit
            && r.force
        {
            return Ok(Ok(if r.only.is_some() || r.outcomes.is_some() {
                "asked for"
            } else {
                "a source was collected"
            }));
        }
        let Some(last) = checkpoint.last_collect_ms else {
            return Ok(Ok("first collection"));
        };
        let cadence = unit.cadence(self.config);
        let next = last + cadence.collect_every.ms();
        if now >= next {
            return Ok(Ok("collect_every"));
        }
        // A window that has ended (plus lateness) and waits for this source should not wait
        // for its cadence too.
        let watermark = checkpoint.watermark_ms.unwrap_or(i64::MIN);
        for job in self.config.jobs.values() {
            if !job.sources.iter().any(|s| unit.listed_as(&s.name)) {
                continue;
            }
            let Some((bytes, _)) = self
                .staging
                .store()
                .get(&keys::pointer_key(&job.name))
                .await?
            else {
                continue;
            };
            let pointer: Pointer = serde_json::from_slice(&bytes)?;
            let Some(start) = crate::model::to_datetime(pointer.next_window_start_ms) else {
                continue;
            };
            if let Some(end) = job.schedule.next_after(start) {
                let ready = end.timestamp_millis() + cadence.lateness.ms();
                if ready <= now && watermark < ready {
                    return Ok(Ok("a closed window waits for it"));
                }
            }
        }
        Ok(Err(next))
    }

    async fn collect(&self, unit: &Unit<'_>) -> SourceReport {
        let name = unit.name();
        let mut r = SourceReport {
            name: name.to_string(),
            kind: unit.kind(),
            outcome: SourceOutcome::NotDue {
                next_at: String::new(),
            },
            checkpoint_before: None,
            checkpoint_after: None,
        };
        let failed = |e: anyhow::Error, stats: CollectStats| {
            tracing::error!(source = %name, error = %format!("{e:#}"), "collection failed");
            SourceOutcome::Failed {
                error: format!("{e:#}"),
                temporary: is_temporary(&e),
                stats,
            }
        };
        let before = match self.staging.checkpoint(name).await {
            Ok((c, _)) => c,
            Err(e) => {
                r.outcome = failed(e, CollectStats::default());
                return r;
            }
        };
        r.checkpoint_before = Some((&before).into());
        let reason = match self.due(unit, &before).await {
            Ok(Ok(reason)) => reason,
            Ok(Err(next_at)) => {
                r.outcome = SourceOutcome::NotDue {
                    next_at: rfc3339_ms(next_at),
                };
                r.checkpoint_after = r.checkpoint_before.clone();
                return r;
            }
            Err(e) => {
                r.outcome = failed(e, CollectStats::default());
                return r;
            }
        };
        let lease = match self
            .leases
            .acquire(&format!("source-{name}"), &format!("collect {name}"))
            .await
        {
            Ok(Acquired::Held(lease)) => lease,
            Ok(Acquired::Busy(busy)) => {
                tracing::info!(source = %name, holder = %busy.holder, "skipped: another process is collecting it");
                r.outcome = SourceOutcome::Skipped { busy };
                return r;
            }
            Err(e) => {
                r.outcome = failed(e, CollectStats::default());
                return r;
            }
        };
        r.outcome = self.collect_holding(unit, &lease, reason, failed).await;
        crate::memory::release_freed();
        if let Err(e) = lease.release().await {
            tracing::warn!(source = %name, error = %format!("{e:#}"), "could not release a lease; it expires by itself");
        }
        r.checkpoint_after = self
            .staging
            .checkpoint(name)
            .await
            .ok()
            .map(|(c, _)| (&c).into());
        r
    }

    async fn collect_holding(
        &self,
        unit: &Unit<'_>,
        lease: &crate::lease::Lease,
        reason: &'static str,
        failed: impl Fn(anyhow::Error, CollectStats) -> SourceOutcome,
    ) -> SourceOutcome {
        let cadence = &unit.cadence(self.config);
        let run = Collection {
            now: self.now,
            privacy: &self.config.privacy,
            dedup_horizon: cadence.lateness.chrono()
                + cadence.rescan_overlap.chrono()
                + chrono::Duration::hours(1),
            lease: Some(lease),
            cancel: self.options.cancel.clone(),
            progress: self.options.progress.clone(),
        };
        let mut session = match self.staging.open(unit.name(), run).await {
            Ok(s) => s,
            Err(e) => return failed(e, CollectStats::default()),
        };
        let ctx = BuildContext {
            base_dir: &self.config.base_dir,
            tenants: &self.config.tenants,
            bindings: self.bindings.clone(),
            engine: self.engine.clone(),
        };
        let result = match unit.build(&ctx, self.config) {
            Ok(mut source) => source.collect(&mut session).await,
            Err(e) => Err(e),
        };
        let stats = session.stats().clone();
        let stopped = match &result {
            Ok(()) => true,
            Err(e) => is_interrupted(e),
        };
        if self.options.cancel.is_cancelled() && stopped {
            // Not finished: the watermark stays, so the source is due again next run.
            return SourceOutcome::Interrupted { stats };
        }
        // Snapshots of some credentials only (`snapshot --credential`) are staged, but do
        // not count as the hourly snapshot of all of them.
        if let (Ok(()), Unit::Snapshots(r)) = (&result, unit)
            && r.only.is_some()
        {
            return SourceOutcome::Collected { stats, reason };
        }
        match result {
            Ok(()) => match session.finish(self.now).await {
                Ok(stats) => SourceOutcome::Collected { stats, reason },
                Err(e) => failed(e, stats),
            },
            Err(e) => failed(e, stats),
        }
    }

    async fn export(&mut self, job: &Job) -> JobReport {
        let mut report = JobReport::new(&job.name);
        let lease = match self
            .leases
            .acquire(
                &format!("job-{}", job.name),
                &format!("export {}", job.name),
            )
            .await
        {
            Ok(Acquired::Held(lease)) => lease,
            Ok(Acquired::Busy(busy)) => {
                tracing::info!(job = %job.name, holder = %busy.holder, "skipped: another process is exporting it");
                report.skipped = Some(busy);
                return report;
            }
            Err(e) => {
                self.export_failed(job, e);
                return report;
            }
        };
        let mut sources: Vec<JobSource> = job
            .sources
            .iter()
            .filter(|s| !OWN_SOURCES.contains(&s.name.as_str()))
            .filter_map(|s| self.config.sources.get(&s.name))
            .map(|s| JobSource {
                name: s.name.clone(),
                lateness_ms: s.cadence.lateness.ms(),
            })
            .collect();
        // Snapshots and drift share one staging source.
        let snapshots = Unit::Snapshots(SnapshotRequest::default());
        if job.sources.iter().any(|s| snapshots.listed_as(&s.name)) {
            sources.push(JobSource {
                name: snapshots::SOURCE.to_string(),
                lateness_ms: snapshot_cadence(self.config).lateness.ms(),
            });
        }
        let lookback = job
            .sources
            .iter()
            .filter_map(|s| self.config.sources.get(&s.name))
            .map(|s| s.cadence.initial_lookback)
            .max()
            .unwrap_or(self.config.defaults.initial_lookback);
        let run_failures: Vec<crate::report::SourceFailure> = self
            .report
            .sources
            .iter()
            .filter_map(|s| match &s.outcome {
                SourceOutcome::Failed { error, .. } => Some(crate::report::SourceFailure {
                    source: s.name.clone(),
                    at_ms: self.now.timestamp_millis(),
                    error: error.clone(),
                }),
                _ => None,
            })
            .collect();
        let exporter = Exporter {
            run_failures: &run_failures,
            data: &self.data,
            staging: &self.staging,
            scratch: self.scratch.path(),
            now: self.now,
            lease: &lease,
            cancel: &self.options.cancel,
            progress: &self.options.progress,
            bursts: &self.config.bursts,
            correlation: &self.config.correlation,
            retention: self.config.defaults.staging_retention.chrono(),
        };
        let result = exporter
            .run_job(job, &sources, lookback.chrono(), &mut report)
            .await;
        if let Err(e) = lease.release().await {
            tracing::warn!(job = %job.name, error = %format!("{e:#}"), "could not release a lease; it expires by itself");
        }
        match result {
            Ok(()) => {}
            Err(e) if is_interrupted(&e) => report.interrupted = true,
            Err(e) => self.export_failed(job, e),
        }
        report
    }

    fn export_failed(&mut self, job: &Job, e: anyhow::Error) {
        tracing::error!(job = %job.name, error = %format!("{e:#}"), "export failed");
        self.report.failures.push(Failure {
            what: format!("export of job {}", job.name),
            error: format!("{e:#}"),
            temporary: is_temporary(&e),
        });
    }

    async fn clean_up(&mut self) {
        if self.options.cancel.is_cancelled() {
            return;
        }
        match retention::clean(self.config, &self.staging, &self.data, self.now).await {
            Ok(cleanup) => self.report.cleanup = cleanup,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "retention clean-up failed; it is retried next run");
            }
        }
    }

    async fn finish(mut self) -> Result<RunReport> {
        self.report.finished_at = rfc3339_ms(Utc::now().timestamp_millis());
        let key = keys::run_key(&self.report.run_id);
        self.report.run_record = Some(key.clone());
        let mut bytes = serde_json::to_vec_pretty(&self.report)?;
        bytes.push(b'\n');
        if let Err(e) = self
            .data
            .put_new(&key, Body::Bytes(bytes), &Metadata::new())
            .await
        {
            self.report.run_record = None;
            self.report.failures.push(Failure {
                what: "run record".into(),
                error: format!("{e:#}"),
                temporary: is_temporary(&e),
            });
        }
        Ok(self.report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(failures: &[bool]) -> RunReport {
        RunReport {
            run_id: String::new(),
            version: "",
            owner: String::new(),
            started_at: String::new(),
            finished_at: String::new(),
            now: String::new(),
            clock: Clock::System,
            store: String::new(),
            notices: Vec::new(),
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
