//! Running a job's exports: plan (or replay a plan a crash left), write the objects
//! create-only from temporary files hashed while compressing, then the manifest and the window
//! marker, then commit the job's pointer.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use flate2::Compression;
use futures_util::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::csv::CsvEncoder;
use super::derive::{self, SourceStaging, Window};
use super::manifest::{Manifest, ManifestObject, WindowMarker};
use super::plan::{
    self, Due, Exported, Plan, PlannedObject, Pointer, SegmentRange, SourceProgress,
};
use crate::config::Job;
use crate::error::{Interrupted, Temporary};
use crate::lease::{Busy, Lease};
use crate::model::{Dataset, Record, rfc3339_ms};
use crate::report;
use crate::staging::{Merge, Partition, Staging};
use crate::store::keys;
use crate::store::{Body, Metadata, PutOutcome, ReplaceOutcome, SharedStore};

/// Objects put at once. A local put waits on fsyncs, an S3 one on the network; the
/// encoder keeps working meanwhile, one object ahead of each.
const PUTS_IN_FLIGHT: usize = 8;

/// The gzip level of exported objects. They are about 1% of the size of the logs they come
/// from, and deflating them was a run's largest cost after reading the logs: level 4 takes about
/// three quarters of level 6's time for 4% more bytes (the bench week). A replay under another
/// level still finds its objects: they are compared by the SHA-256 of the uncompressed CSV.
pub(crate) const GZIP_LEVEL: u32 = 4;

/// Everything an export needs.
pub struct Exporter<'a> {
    pub data: &'a SharedStore,
    pub staging: &'a Staging,
    pub scratch: &'a Path,
    pub now: DateTime<Utc>,
    /// The job's lease, checked before a plan is written and before the pointer moves.
    pub lease: &'a Lease,
    pub cancel: &'a CancellationToken,
    /// Bumped for each object written.
    pub progress: &'a std::sync::atomic::AtomicU64,
    pub bursts: &'a crate::analysis::bursts::Settings,
    pub correlation: &'a crate::analysis::correlate::Settings,
    /// How long what an export emitted is remembered (with the staging it came from).
    pub retention: chrono::Duration,
    /// This run's failed collections, for the report (the run's record is written after).
    pub run_failures: &'a [report::SourceFailure],
}

/// One source of a job, as the exporter sees it.
#[derive(Debug, Clone)]
pub struct JobSource {
    pub name: String,
    pub lateness_ms: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExportReport {
    pub manifest: Manifest,
    pub manifest_key: String,
    /// The window's report (`reports/<job>/<window>.html`).
    pub report_key: String,
    /// Where a person opens it: a file path, or an `s3://` URL.
    pub report_at: String,
    /// Objects this run wrote (the rest were already there: a replay).
    pub written: usize,
    pub replayed: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Waiting {
    pub window_start: String,
    pub window_end: String,
    /// When its sources can have collected past its end (end plus lateness), epoch ms.
    pub ready_at_ms: i64,
    pub deadline: String,
    pub deadline_ms: i64,
    /// The window has not ended yet.
    pub open: bool,
    /// Sources that have not collected past the window's end plus their lateness.
    pub waiting_for: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct JobReport {
    pub job: String,
    pub exports: Vec<ExportReport>,
    pub waiting: Option<Waiting>,
    /// Another process holds the job's lease.
    pub skipped: Option<Busy>,
    /// Asked to stop between exports; an export cut short is replayed by the next run.
    pub interrupted: bool,
}

impl JobReport {
    pub fn new(job: &str) -> Self {
        JobReport {
            job: job.to_string(),
            exports: Vec::new(),
            waiting: None,
            skipped: None,
            interrupted: false,
        }
    }
}

impl Exporter<'_> {
    /// Exports every closed window of the job, in order.
    pub async fn run_job(
        &self,
        job: &Job,
        sources: &[JobSource],
        lookback: chrono::Duration,
        report: &mut JobReport,
    ) -> Result<()> {
        loop {
            if self.cancel.is_cancelled() {
                return Err(Interrupted.into());
            }
            let (pointer, version) = self.pointer(job, lookback).await?;
            let next = pointer.export + 1;
            let (plan, replayed) = match self.load_plan(&job.name, next).await? {
                Some(plan) => (plan, true),
                None => {
                    let start = datetime_of_ms(pointer.next_window_start_ms)?;
                    let progress = self.progress(sources).await?;
                    let due = plan::next_window(job, start, self.now, &progress)
                        .context("the job's schedule has no next fire")?;
                    match due {
                        Due::Wait {
                            start,
                            end,
                            ready,
                            deadline,
                            open,
                            waiting_for,
                        } => {
                            report.waiting = Some(Waiting {
                                window_start: rfc3339_ms(start.timestamp_millis()),
                                window_end: rfc3339_ms(end.timestamp_millis()),
                                ready_at_ms: ready.timestamp_millis(),
                                deadline: rfc3339_ms(deadline.timestamp_millis()),
                                deadline_ms: deadline.timestamp_millis(),
                                open,
                                waiting_for,
                            });
                            return Ok(());
                        }
                        Due::Export {
                            start,
                            end,
                            complete,
                            late_sources,
                        } => {
                            let plan = self
                                .make_plan(
                                    job,
                                    &pointer,
                                    sources,
                                    (start, end),
                                    complete,
                                    late_sources,
                                )
                                .await?;
                            let bytes = serde_json::to_vec_pretty(&plan)?;
                            self.lease.check().await?;
                            match self
                                .staging
                                .store()
                                .replace(&keys::plan_key(&job.name, next), bytes, None)
                                .await?
                            {
                                ReplaceOutcome::Replaced(_) => {
                                    crate::failpoint::hit("export.after_plan");
                                    (plan, false)
                                }
                                // Another process planned it first: replay theirs.
                                ReplaceOutcome::Conflict => continue,
                            }
                        }
                    }
                }
            };
            // Shared with the blocking encoder rather than copied: at 10M log lines the plan
            // is several MB.
            let plan = Arc::new(plan);
            crate::memory::release_freed();
            let mut done = self.execute(&plan).await?;
            crate::memory::release_freed();
            done.replayed = replayed;
            self.commit(&pointer, version, &plan).await?;
            tracing::info!(
                job = %job.name,
                export = plan.export,
                objects = done.manifest.objects.len(),
                complete = plan.complete,
                "exported window {} .. {}",
                done.manifest.window_start,
                done.manifest.window_end
            );
            report.exports.push(done);
        }
    }

    async fn pointer(
        &self,
        job: &Job,
        lookback: chrono::Duration,
    ) -> Result<(Pointer, Option<crate::store::Version>)> {
        let store = self.staging.store();
        let key = keys::pointer_key(&job.name);
        loop {
            if let Some((bytes, version)) = store.get(&key).await? {
                let pointer = serde_json::from_slice(&bytes)
                    .with_context(|| format!("reading the export state of job {}", job.name))?;
                return Ok((pointer, Some(version)));
            }
            // A new job: fix where its windows start, so later runs do not move it.
            let start = plan::first_window_start(job, self.now, lookback)
                .context("the job's schedule never fires")?;
            let pointer = Pointer {
                job: job.name.clone(),
                export: 0,
                next_window_start_ms: start.timestamp_millis(),
                segments: BTreeMap::new(),
                history: Vec::new(),
                bursts: Vec::new(),
                findings: Vec::new(),
            };
            match store
                .replace(&key, serde_json::to_vec_pretty(&pointer)?, None)
                .await?
            {
                ReplaceOutcome::Replaced(version) => {
                    crate::failpoint::hit("export.after_init");
                    return Ok((pointer, Some(version)));
                }
                // Another process started the job at the same moment: use theirs.
                ReplaceOutcome::Conflict => continue,
            }
        }
    }

    async fn load_plan(&self, job: &str, export: u64) -> Result<Option<Plan>> {
        match self
            .staging
            .store()
            .get(&keys::plan_key(job, export))
            .await?
        {
            Some((bytes, _)) => {
                Ok(Some(serde_json::from_slice(&bytes).with_context(|| {
                    format!("reading export plan {export} of job {job}")
                })?))
            }
            None => Ok(None),
        }
    }

    async fn progress(&self, sources: &[JobSource]) -> Result<Vec<SourceProgress>> {
        let mut out = Vec::new();
        for s in sources {
            let (checkpoint, _) = self.staging.checkpoint(&s.name).await?;
            out.push(SourceProgress {
                name: s.name.clone(),
                watermark_ms: checkpoint.watermark_ms,
                lateness_ms: s.lateness_ms,
            });
        }
        Ok(out)
    }

    /// Where a job that sees a source for the first time starts: after what any other job
    /// exported of it (a renamed job, a source moved from one job to another), so no row goes
    /// out twice; at the beginning if no job ever exported it.
    async fn exported_elsewhere(&self, job: &str, source: &str) -> Result<u64> {
        let store = self.staging.store();
        let mut through = 0;
        for key in store.list(keys::EXPORTS_PREFIX).await? {
            if !key.ends_with("/pointer.json") || key == keys::pointer_key(job) {
                continue;
            }
            if let Some((bytes, _)) = store.get(&key).await? {
                let other: Pointer =
                    serde_json::from_slice(&bytes).with_context(|| format!("reading {key}"))?;
                through = through.max(other.segments.get(source).copied().unwrap_or(0));
            }
        }
        if through > 0 {
            tracing::info!(
                job,
                source,
                through,
                "the job starts on this source after what other jobs exported"
            );
        }
        Ok(through)
    }

    async fn make_plan(
        &self,
        job: &Job,
        pointer: &Pointer,
        sources: &[JobSource],
        (start, end): (DateTime<Utc>, DateTime<Utc>),
        complete: bool,
        late_sources: Vec<String>,
    ) -> Result<Plan> {
        let export = pointer.export + 1;
        let mut plan = Plan {
            format: 1,
            job: job.name.clone(),
            export,
            window_start_ms: start.timestamp_millis(),
            window_end_ms: end.timestamp_millis(),
            complete,
            late_sources,
            staging: BTreeMap::new(),
            datasets: job.datasets.clone(),
            tenants: job
                .tenants
                .as_ref()
                .map(|ts| ts.iter().map(|t| t.name.clone()).collect()),
            objects: Vec::new(),
            derived: Vec::new(),
            emitted: Vec::new(),
            emitted_findings: Vec::new(),
            links: Vec::new(),
            malformed: BTreeMap::new(),
            planned_ms: Some(self.now.timestamp_millis()),
        };
        let mut partitions = std::collections::BTreeSet::new();
        let mut new_headers: BTreeMap<String, Vec<crate::staging::SegmentHeader>> = BTreeMap::new();
        for s in sources {
            let (checkpoint, _) = self.staging.checkpoint(&s.name).await?;
            let after = match pointer.segments.get(&s.name) {
                Some(after) => *after,
                None => self.exported_elsewhere(&job.name, &s.name).await?,
            };
            anyhow::ensure!(
                checkpoint.segment >= after,
                "the checkpoint of source {} is at staging segment {} but job {} already exported through segment {after}: the state went back (restored from an older copy?). Nothing was exported; restore the newer state",
                s.name,
                checkpoint.segment,
                job.name
            );
            let range = SegmentRange {
                after,
                through: checkpoint.segment,
            };
            let headers = new_headers.entry(s.name.clone()).or_default();
            for segment in range.segments() {
                let header = self
                    .staging
                    .segment_header(&s.name, segment, self.scratch)
                    .await?;
                for p in &header.partitions {
                    if plan.wants_partition(&p.partition) {
                        partitions.insert(p.partition.clone());
                    }
                }
                if header.malformed > 0 {
                    plan.malformed
                        .entry(s.name.clone())
                        .or_default()
                        .add(header.malformed, &header.malformed_examples);
                }
                headers.push(header);
            }
            plan.staging.insert(s.name.clone(), range);
        }
        let wants_findings = plan.datasets.contains(&Dataset::Findings)
            || plan.datasets.contains(&Dataset::FindingEvents);
        if plan.datasets.contains(&Dataset::RateLimitBursts) || wants_findings {
            let ranges = plan.staging.clone();
            let staged: Vec<SourceStaging<'_>> = ranges
                .iter()
                .map(|(name, range)| SourceStaging {
                    name,
                    new: new_headers.get(name).map_or(&[][..], Vec::as_slice),
                    through: range.through,
                })
                .collect();
            let window = Window { start, end };
            let findings_from = if wants_findings {
                Some(derive::findings_reach(
                    &staged,
                    &window,
                    self.bursts.margin,
                    self.correlation,
                    &pointer.findings,
                )?)
            } else {
                None
            };
            let (bursts, all_bursts) = derive::bursts(
                self.staging,
                self.scratch,
                &staged,
                &window,
                self.bursts,
                &pointer.bursts,
                findings_from,
            )
            .await?;
            if plan.datasets.contains(&Dataset::RateLimitBursts) {
                self.add_derived(&mut plan, &mut partitions, bursts, false, |p| {
                    &mut p.emitted
                });
            }
            if wants_findings {
                let (findings, links) = derive::findings(
                    self.staging,
                    self.scratch,
                    &staged,
                    &window,
                    self.correlation,
                    self.bursts.margin,
                    all_bursts,
                    &pointer.findings,
                )
                .await?;
                let kept: Vec<_> = links
                    .into_iter()
                    // Links come only with findings sent in this export.
                    .filter(|l| {
                        plan.tenants
                            .as_ref()
                            .is_none_or(|ts| ts.contains(&l.tenant))
                    })
                    .collect();
                if plan.datasets.contains(&Dataset::FindingEvents) {
                    for l in &kept {
                        for r in l.rows().take(1) {
                            partitions.insert(Partition::of(&r));
                        }
                    }
                    plan.links = kept;
                }
                // Remembered even when only finding_events is exported, or its links would go
                // out again with every export.
                self.add_derived(&mut plan, &mut partitions, findings, true, |p| {
                    &mut p.emitted_findings
                });
            }
        }
        plan.objects = partitions
            .into_iter()
            .map(|partition| PlannedObject {
                key: keys::object_key(&partition, &job.name, export),
                partition,
            })
            .collect();
        Ok(plan)
    }

    /// Adds derived rows the job wants to the plan, and what to remember of them.
    fn add_derived(
        &self,
        plan: &mut Plan,
        partitions: &mut std::collections::BTreeSet<Partition>,
        derived: derive::Derived,
        remember_unwritten: bool,
        remembered: impl Fn(&mut Plan) -> &mut Vec<derive::Emitted>,
    ) {
        let tenant_wanted = |r: &Record| {
            plan.tenants
                .as_ref()
                .is_none_or(|ts| ts.contains(&r.head().tenant))
        };
        let kept: std::collections::HashSet<uuid::Uuid> = derived
            .rows
            .iter()
            .filter(|r| plan.wants(r) || (remember_unwritten && tenant_wanted(r)))
            .map(|r| r.head().event_uid)
            .collect();
        let rows: Vec<Record> = derived.rows.into_iter().filter(|r| plan.wants(r)).collect();
        for r in &rows {
            partitions.insert(Partition::of(r));
        }
        let emitted = derived
            .emitted
            .into_iter()
            .filter(|e| kept.contains(&e.uid));
        remembered(plan).extend(emitted);
        plan.derived.extend(rows);
    }

    /// Writes what the plan says. Running it twice writes nothing new the second time.
    async fn execute(&self, plan: &Arc<Plan>) -> Result<ExportReport> {
        let mut copies = Vec::new();
        for (source, range) in &plan.staging {
            for segment in range.segments() {
                copies.push(
                    self.staging
                        .fetch_segment(source, segment, self.scratch)
                        .await?,
                );
            }
        }
        let paths: Vec<PathBuf> = copies.iter().map(|c| c.path().to_path_buf()).collect();
        // Each object is put while the next is encoded, several at a time: a put mostly waits
        // (an fsync, an upload), which then overlaps the encoding instead of following it.
        let (sender, receiver) = tokio::sync::mpsc::channel(PUTS_IN_FLIGHT);
        let encoder = {
            let plan = Arc::clone(plan);
            let scratch = self.scratch.to_path_buf();
            tokio::task::spawn_blocking(move || {
                encode(&plan, &paths, &scratch, |e| sender.blocking_send(e).is_ok())
            })
        };
        let put = self.put_objects(plan, receiver).await;
        let encoded = encoder.await?;
        drop(copies);
        // A failed put stops the encoder; a failed encoding ends the objects early.
        let (objects, written) = put?;
        encoded?;
        anyhow::ensure!(
            objects.len() == plan.objects.len(),
            "export plan {} of job {} names {} objects but staging produced {}",
            plan.export,
            plan.job,
            plan.objects.len(),
            objects.len()
        );

        let (start, end) = plan.window();
        let report_key = self.report(plan, start, end).await?;
        let manifest = Manifest {
            format: 1,
            job: plan.job.clone(),
            export: plan.export,
            window_start: rfc3339_ms(start.timestamp_millis()),
            window_end: rfc3339_ms(end.timestamp_millis()),
            complete: plan.complete,
            late_sources: plan.late_sources.clone(),
            staging: plan.staging.clone(),
            malformed: plan.malformed.clone(),
            rows: objects.iter().map(|o| o.rows).sum(),
            objects,
            report: Some(report_key.clone()),
            planned_at: plan.planned_ms.map(rfc3339_ms),
        };
        let manifest_key = keys::manifest_key(&plan.job, plan.export);
        self.put_json(&manifest_key, &manifest).await?;
        crate::failpoint::hit("export.after_manifest");
        let marker = WindowMarker {
            format: 1,
            job: plan.job.clone(),
            window_start: manifest.window_start.clone(),
            window_end: manifest.window_end.clone(),
            complete: plan.complete,
            late_sources: plan.late_sources.clone(),
            export: plan.export,
            manifest: manifest_key.clone(),
        };
        self.put_json(&keys::window_key(&plan.job, start, end), &marker)
            .await?;
        crate::failpoint::hit("export.after_marker");
        Ok(ExportReport {
            manifest,
            manifest_key,
            report_at: format!(
                "{}/{report_key}",
                self.data.location().trim_end_matches('/')
            ),
            report_key,
            written,
            replayed: false,
        })
    }

    /// The window's page for people, from what this and earlier exports wrote.
    async fn report(
        &self,
        plan: &Plan,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<String> {
        let key = keys::report_key(&plan.job, start, end);
        let window = report::Window {
            job: Some(plan.job.clone()),
            start_ms: start.timestamp_millis(),
            end_ms: end.timestamp_millis(),
            export: Some(report::ExportInfo {
                export: plan.export,
                complete: plan.complete,
                late_sources: plan.late_sources.clone(),
                malformed: plan.malformed.clone(),
                planned_ms: plan.planned_ms,
            }),
        };
        let lookback =
            i64::try_from(self.correlation.change_lookback.as_millis()).unwrap_or(i64::MAX);
        let page = report::build(
            self.data.as_ref(),
            &self.data.location(),
            window,
            lookback,
            self.run_failures,
            self.scratch,
        )
        .await
        .with_context(|| format!("building the report {key}"))?;
        report::write(self.data.as_ref(), &key, &page)
            .await
            .with_context(|| format!("writing the report {key}"))?;
        crate::failpoint::hit("export.after_report");
        Ok(key)
    }

    /// Puts the encoded objects as they come, in order, at most `PUTS_IN_FLIGHT` at once: the
    /// manifest's objects and how many of them this run created.
    async fn put_objects(
        &self,
        plan: &Plan,
        mut receiver: tokio::sync::mpsc::Receiver<Encoded>,
    ) -> Result<(Vec<ManifestObject>, usize)> {
        let planned: BTreeMap<&Partition, &str> = plan
            .objects
            .iter()
            .map(|o| (&o.partition, o.key.as_str()))
            .collect();
        let puts = futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx))
            .map(|e| self.put_encoded(plan, &planned, e))
            .buffered(PUTS_IN_FLIGHT);
        let mut puts = std::pin::pin!(puts);
        let mut objects = Vec::new();
        let mut written = 0;
        while let Some(put) = puts.next().await {
            let (key, e, created) = put?;
            written += usize::from(created);
            crate::failpoint::hit("export.after_object");
            self.progress
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            objects.push(ManifestObject {
                key: key.to_string(),
                dataset: e.partition.dataset.name().to_string(),
                vendor: e.partition.vendor.clone(),
                tenant: e.partition.tenant.clone(),
                dt: e.partition.day.clone(),
                rows: e.rows,
                sha256: e.sha256.clone(),
            });
        }
        Ok((objects, written))
    }

    /// Puts one object under the key the plan gave its partition.
    async fn put_encoded<'k>(
        &self,
        plan: &Plan,
        planned: &BTreeMap<&Partition, &'k str>,
        e: Encoded,
    ) -> Result<(&'k str, Encoded, bool)> {
        if self.cancel.is_cancelled() {
            return Err(Interrupted.into());
        }
        let key = *planned.get(&e.partition).with_context(|| {
            format!(
                "staging holds {:?} rows that export plan {} did not plan",
                e.partition, plan.export
            )
        })?;
        let created = self.put_object(key, &e).await?;
        Ok((key, e, created))
    }

    /// True if this call created the object; false if a rerun found it already there.
    async fn put_object(&self, key: &str, e: &Encoded) -> Result<bool> {
        let metadata = Metadata::from([
            ("sha256".to_string(), e.sha256.clone()),
            ("rows".to_string(), e.rows.to_string()),
        ]);
        match self
            .data
            .put_new(key, Body::File(e.file.to_path_buf()), &metadata)
            .await?
        {
            PutOutcome::Created => Ok(true),
            PutOutcome::AlreadyExists(info) if info.metadata.get("sha256") == Some(&e.sha256) => {
                Ok(false)
            }
            PutOutcome::AlreadyExists(info) => anyhow::bail!(
                "refusing to overwrite {key}: it already exists with other content (sha256 {}, this export's {}); the export stops so nothing is ingested twice",
                info.metadata
                    .get("sha256")
                    .map_or("unknown", String::as_str),
                e.sha256
            ),
        }
    }

    async fn put_json<T: Serialize>(&self, key: &str, value: &T) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(value)?;
        bytes.push(b'\n');
        match self
            .data
            .put_new(key, Body::Bytes(bytes.clone()), &Metadata::new())
            .await?
        {
            PutOutcome::Created => Ok(()),
            PutOutcome::AlreadyExists(_) => {
                let existing = self.data.get(key).await?.map(|(b, _)| b);
                anyhow::ensure!(
                    existing.as_deref() == Some(&bytes[..]),
                    "refusing to overwrite {key}: it already exists with other content"
                );
                Ok(())
            }
        }
    }

    async fn commit(
        &self,
        pointer: &Pointer,
        version: Option<crate::store::Version>,
        plan: &Plan,
    ) -> Result<()> {
        let mut next = pointer.clone();
        next.export = plan.export;
        next.next_window_start_ms = plan.window_end_ms;
        for (source, range) in &plan.staging {
            next.segments.insert(source.clone(), range.through);
        }
        next.history.push(Exported {
            export: plan.export,
            committed_ms: self.now.timestamp_millis(),
            segments: next.segments.clone(),
        });
        // Late data older than staging retention cannot reach them any more.
        let forget_before = (self.now - self.retention).timestamp_millis();
        for (remembered, emitted) in [
            (&mut next.bursts, &plan.emitted),
            (&mut next.findings, &plan.emitted_findings),
        ] {
            for e in emitted {
                remembered.retain(|b| b.uid != e.uid);
                remembered.push(e.clone());
            }
            remembered.retain(|b| b.end_ms >= forget_before);
        }
        self.lease.check().await?;
        match self
            .staging
            .store()
            .replace(
                &keys::pointer_key(&plan.job),
                serde_json::to_vec_pretty(&next)?,
                version.as_ref(),
            )
            .await?
        {
            ReplaceOutcome::Replaced(_) => {
                crate::failpoint::hit("export.after_commit");
                Ok(())
            }
            ReplaceOutcome::Conflict => Err(Temporary(format!(
                "the export state of job {} changed under this run: another scopetrail process exported it",
                plan.job
            ))
            .into()),
        }
    }
}

fn datetime_of_ms(ms: i64) -> Result<DateTime<Utc>> {
    crate::model::to_datetime(ms).context("export state holds an impossible time")
}

/// One object's CSV, gzipped in a temporary file, with the hash of the uncompressed bytes.
struct Encoded {
    partition: Partition,
    file: tempfile::TempPath,
    rows: u64,
    sha256: String,
}

/// Hashes what passes through, uncompressed.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

type ObjectWriter = CsvEncoder<Hashing<crate::gz::Writer<File>>>;

fn start_object(
    partition: &Partition,
    scratch: &Path,
) -> Result<(ObjectWriter, tempfile::TempPath)> {
    let (file, path) = tempfile::Builder::new()
        .prefix("object-")
        .suffix(".csv.gz")
        .tempfile_in(scratch)?
        .into_parts();
    let gz = crate::gz::writer(file, Compression::new(GZIP_LEVEL));
    let writer = CsvEncoder::new(
        Hashing {
            inner: gz,
            hasher: Sha256::new(),
        },
        partition.dataset,
    )?;
    Ok((writer, path))
}

fn finish_object(
    partition: Partition,
    writer: ObjectWriter,
    file: tempfile::TempPath,
) -> Result<Encoded> {
    let rows = writer.rows();
    let hashing = writer.finish()?;
    let sha256 = hex::encode(hashing.hasher.finalize());
    crate::gz::finish(hashing.inner)?.flush()?;
    Ok(Encoded {
        partition,
        file,
        rows,
        sha256,
    })
}

/// One ordered pass over the planned segments; one object open at a time, handed to `put` once
/// written. Stops early, without error, when `put` says nobody takes objects any more.
fn encode(
    plan: &Plan,
    segments: &[PathBuf],
    scratch: &Path,
    mut put: impl FnMut(Encoded) -> bool,
) -> Result<()> {
    // Records of datasets the job does not export (internal ones) are not decoded.
    let mut merge = Merge::open_only(segments, Some(&plan.datasets), scratch)?
        .with_rows(plan.derived.clone())
        .with_sorted(derive::link_rows(&plan.links));
    let mut current: Option<(Partition, ObjectWriter, tempfile::TempPath)> = None;
    while let Some(record) = merge.next_record()? {
        if !plan.wants(&record) {
            continue;
        }
        if current.as_ref().is_none_or(|(p, _, _)| !p.holds(&record)) {
            let partition = Partition::of(&record);
            if let Some((p, w, f)) = current.take()
                && !put(finish_object(p, w, f)?)
            {
                return Ok(());
            }
            let (writer, file) = start_object(&partition, scratch)?;
            current = Some((partition, writer, file));
        }
        if let Some((_, writer, _)) = current.as_mut() {
            writer.write(&record)?;
        }
    }
    if let Some((p, w, f)) = current.take() {
        put(finish_object(p, w, f)?);
    }
    Ok(())
}
