//! `scopetrail daemon`: calls the same idempotent `run` on each job's cron schedule, on each
//! source's cadence, and when a waiting window becomes ready, with tokio-cron-scheduler (UTC).
//!
//! One run at a time: a trigger that fires while a run is going on is remembered and served
//! by one more run afterwards, so a job is never started while it is still running (leases do
//! the same between processes). On SIGTERM or SIGINT the run in progress stops after the
//! current page, stages it, and the process exits within the grace period; anything cut short
//! is replayed by the next run, so nothing is lost even if the grace period runs out.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::Utc;
use sd_notify::NotifyState;
use tokio::sync::Notify;
use tokio_cron_scheduler::{Job as CronJob, JobBuilder, JobScheduler};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::pipeline::{self, RunOptions, RunReport};
use crate::signals;

struct Daemon {
    config: Config,
    wake: Notify,
    stop: CancellationToken,
    scheduler: JobScheduler,
    /// Pages staged and objects written by the runs, and whether one is going on.
    progress: Arc<AtomicU64>,
    running: AtomicBool,
}

pub async fn run(config: Config, grace: Duration) -> Result<()> {
    anyhow::ensure!(
        config.clock.is_none(),
        "the daemon runs on the real clock: remove [clock] from {}",
        config.file.display()
    );
    let stop = CancellationToken::new();
    signals::cancel_on_signals(stop.clone())?;
    let scheduler = JobScheduler::new()
        .await
        .context("starting the scheduler")?;
    let daemon = Arc::new(Daemon {
        config,
        wake: Notify::new(),
        stop,
        scheduler,
        progress: Arc::new(AtomicU64::new(0)),
        running: AtomicBool::new(false),
    });
    let worker = tokio::spawn(work(daemon.clone()));

    // Catch up at start: missed windows are exported in order by the first run.
    daemon.wake.notify_one();
    for job in daemon.config.jobs.values() {
        let d = daemon.clone();
        let name = job.name.clone();
        let cron = JobBuilder::new()
            .with_timezone(Utc)
            .with_cron_job_type()
            .with_schedule(job.schedule.expr())
            .map_err(|e| anyhow::anyhow!("scheduling job {}: {e:?}", job.name))?
            .with_run_async(Box::new(move |_, _| {
                let d = d.clone();
                let name = name.clone();
                Box::pin(async move {
                    tracing::info!(job = %name, "job schedule fired");
                    d.wake.notify_one();
                })
            }))
            .build()
            .map_err(|e| anyhow::anyhow!("scheduling job {}: {e:?}", job.name))?;
        daemon
            .scheduler
            .add(cron)
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    }
    for source in daemon.config.sources.values() {
        let d = daemon.clone();
        let name = source.name.clone();
        let cadence = CronJob::new_repeated_async(source.cadence.collect_every.0, move |_, _| {
            let d = d.clone();
            let name = name.clone();
            Box::pin(async move {
                tracing::debug!(source = %name, "source cadence fired");
                d.wake.notify_one();
            })
        })
        .map_err(|e| anyhow::anyhow!("scheduling source {}: {e:?}", source.name))?;
        daemon
            .scheduler
            .add(cadence)
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    }
    daemon
        .scheduler
        .start()
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let _ = sd_notify::notify(&[NotifyState::Ready, NotifyState::Status("running")]);
    if let Some(interval) = sd_notify::watchdog_enabled() {
        tokio::spawn(watchdog(daemon.clone(), interval / 2));
    }
    tracing::info!(
        jobs = daemon.config.jobs.len(),
        sources = daemon.config.sources.len(),
        "daemon started"
    );

    daemon.stop.cancelled().await;
    tracing::info!("asked to stop: finishing the current page");
    let _ = sd_notify::notify(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
    let mut scheduler = daemon.scheduler.clone();
    let _ = scheduler.shutdown().await;
    match tokio::time::timeout(grace, worker).await {
        Ok(joined) => joined?,
        Err(_) => {
            tracing::error!(
                grace_s = grace.as_secs(),
                "the run in progress did not stop within the grace period; exiting anyway (the next run replays what was cut short)"
            );
            Ok(())
        }
    }
}

/// The one worker: a run per wake-up; wake-ups during a run coalesce into one more.
async fn work(d: Arc<Daemon>) -> Result<()> {
    loop {
        tokio::select! {
            () = d.stop.cancelled() => return Ok(()),
            () = d.wake.notified() => {}
        }
        let options = RunOptions {
            cancel: d.stop.clone(),
            progress: d.progress.clone(),
            ..RunOptions::default()
        };
        d.running.store(true, Ordering::SeqCst);
        let result = pipeline::run(&d.config, &options).await;
        d.running.store(false, Ordering::SeqCst);
        match result {
            Ok(report) => {
                log_report(&report);
                d.wake_when_windows_are_ready(&report).await;
            }
            Err(e) => tracing::error!(error = %format!("{e:#}"), "run failed"),
        }
        if d.stop.is_cancelled() {
            return Ok(());
        }
    }
}

impl Daemon {
    /// A waiting window is exported as soon as its sources can have collected past its end,
    /// or at its `max_wait` deadline, without waiting for the next cadence tick.
    async fn wake_when_windows_are_ready(self: &Arc<Self>, report: &RunReport) {
        let now = Utc::now().timestamp_millis();
        let next = report
            .jobs
            .iter()
            .filter_map(|j| j.waiting.as_ref())
            .flat_map(|w| [w.ready_at_ms, w.deadline_ms])
            .filter(|t| *t > now)
            .min();
        let Some(at) = next else { return };
        // A second late, so the source's own collection at that moment is already past it.
        let delay = Duration::from_millis((at - now) as u64 + 1000);
        let d = self.clone();
        let once = CronJob::new_one_shot_async(delay, move |_, _| {
            let d = d.clone();
            Box::pin(async move { d.wake.notify_one() })
        });
        match once {
            Ok(job) => {
                if let Err(e) = self.scheduler.add(job).await {
                    tracing::warn!(error = ?e, "could not schedule a wake-up for a waiting window");
                }
            }
            Err(e) => {
                tracing::warn!(error = ?e, "could not schedule a wake-up for a waiting window")
            }
        }
    }
}

fn log_report(report: &RunReport) {
    let exports: usize = report.jobs.iter().map(|j| j.exports.len()).sum();
    let staged: u64 = report
        .sources
        .iter()
        .filter_map(|s| match &s.outcome {
            pipeline::SourceOutcome::Collected { stats, .. }
            | pipeline::SourceOutcome::Interrupted { stats } => Some(stats.staged),
            _ => None,
        })
        .sum();
    for f in &report.failures {
        tracing::error!(what = %f.what, temporary = f.temporary, "{}", f.error);
    }
    tracing::info!(run = %report.run_id, staged, exports, failures = report.failures.len(), "run finished");
    let status = format!(
        "last run {}: {staged} rows staged, {exports} exports, {} failures",
        report.finished_at,
        report.failures.len()
    );
    let _ = sd_notify::notify(&[NotifyState::Status(&status)]);
}

/// Pings systemd's watchdog while the daemon is idle or its run makes progress: a run stuck
/// on something gets the daemon restarted (what it had staged is kept; a restart resumes).
async fn watchdog(d: Arc<Daemon>, every: Duration) {
    let mut last = d.progress.load(Ordering::Relaxed);
    loop {
        tokio::select! {
            () = d.stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let now = d.progress.load(Ordering::Relaxed);
        if now != last || !d.running.load(Ordering::SeqCst) {
            let _ = sd_notify::notify(&[NotifyState::Watchdog]);
        } else {
            tracing::warn!("no progress since the last watchdog ping");
        }
        last = now;
    }
}
