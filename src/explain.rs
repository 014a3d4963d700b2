//! `scopetrail explain`: correlation over exported data, as a report for people. The same
//! engine as the export's findings, run again over what the bucket holds, so it also works
//! where scopetrail does not run (a laptop with read access to the bucket).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};
use uuid::Uuid;

use crate::analysis::correlate::text::at;
use crate::analysis::correlate::{self, Correlator, Finding};
use crate::config::{Config, StoreSpec};
use crate::error::ConfigError;
use crate::model::{Dataset, Record};
use crate::output::athena::Location;
use crate::output::derive::finding_uid;
use crate::output::read::read_exported;
use crate::report::timeline::{self, About, Kind, at_s};
use crate::store::SharedStore;

/// What to explain.
pub struct Options {
    /// A folder or `s3://bucket/prefix`; without it, the configuration's store.
    pub from: Option<String>,
    /// Only failures from then on.
    pub since_ms: Option<i64>,
    /// One finding, by id or a prefix of it, with its timeline.
    pub finding: Option<String>,
}

/// Datasets correlation reads, and the exported findings (for their ids).
const READ: &[Dataset] = &[
    Dataset::Denials,
    Dataset::WebhookFailures,
    Dataset::RateLimitBursts,
    Dataset::TokenSnapshots,
    Dataset::Changes,
    Dataset::Incidents,
    Dataset::RequestCounts,
    Dataset::Findings,
];

/// Where the exported data is.
pub async fn open(config: Option<&Config>, from: Option<&str>) -> Result<(SharedStore, String)> {
    let spec = match (from, config) {
        (Some(url), config) if url.starts_with("s3://") => {
            let at = Location::parse(url).map_err(|e| ConfigError(format!("--from {e}")))?;
            let mut spec = match config.map(|c| &c.store) {
                // The configuration's endpoint, region and addressing, at another place.
                Some(StoreSpec::S3(s)) => s.clone(),
                _ => default_s3(at.bucket())?,
            };
            spec.bucket = at.bucket().to_string();
            spec.prefix = at.prefix().to_string();
            StoreSpec::S3(spec)
        }
        (Some(path), _) => {
            let path = Path::new(path);
            if !path.join("v1").is_dir() {
                bail!(
                    "{} holds no exported data (no v1/ folder): give the folder a [store] of kind \"local\" writes to",
                    path.display()
                );
            }
            StoreSpec::Local {
                // Absolute, so the report names the store as the export's page does.
                path: path.canonicalize().unwrap_or_else(|_| path.to_path_buf()),
            }
        }
        (None, Some(c)) => c.store.clone(),
        (None, None) => bail!(
            "nothing to explain: give --from PATH or --from s3://BUCKET/PREFIX, or a configuration whose store holds exports"
        ),
    };
    let store = crate::pipeline::open_store(&spec).await?;
    Ok((store, spec.describe()))
}

fn default_s3(bucket: &str) -> Result<crate::store::s3::config::S3Spec> {
    let raw: crate::store::s3::config::RawS3 =
        toml::from_str(&format!("bucket = {bucket:?}")).context("the bucket name")?;
    let (spec, problems) = raw.check();
    match spec {
        Some(s) => Ok(s),
        None => bail!(
            "{}",
            problems
                .into_iter()
                .map(|p| p.message)
                .collect::<Vec<_>>()
                .join("; ")
        ),
    }
}

/// Reads, correlates and writes the report. Returns how many findings it printed.
pub async fn explain(
    store: &SharedStore,
    location: &str,
    settings: &correlate::Settings,
    options: &Options,
    scratch: &Path,
) -> Result<(String, usize)> {
    let lookback = i64::try_from(settings.change_lookback.as_millis())?;
    let evidence_since = options.since_ms.map(|s| s.saturating_sub(lookback));
    let records = read_exported(store.as_ref(), READ, evidence_since, None, scratch)
        .await
        .with_context(|| format!("reading the exported data at {location}"))?;
    let settings = settings.clone();
    let since = options.since_ms;
    let (findings, records) = tokio::task::spawn_blocking(move || {
        let mut correlator = Correlator::new(settings);
        for r in &records {
            let failure = matches!(
                r.dataset(),
                Dataset::Denials | Dataset::WebhookFailures | Dataset::RateLimitBursts
            );
            if failure && since.is_some_and(|s| r.head().time < s) {
                continue;
            }
            correlator.add(r);
        }
        (correlator.finish(), records)
    })
    .await?;
    let mut out = String::new();
    match &options.finding {
        None => {
            summary(&mut out, &findings, &records, location, options.since_ms);
            Ok((out, findings.len()))
        }
        Some(id) => {
            let f = pick(&findings, &records, id)?;
            one(&mut out, f, &records, &finding_uid(f).to_string(), lookback);
            Ok((out, 1))
        }
    }
}

/// A finding by the id this run gives it, or by an exported finding's id (late data can
/// have moved its start, so its failures tell which one it is now).
fn pick<'a>(findings: &'a [Finding], records: &[Record], id: &str) -> Result<&'a Finding> {
    let id = id.trim().to_ascii_lowercase();
    if id.len() < 4 {
        return Err(ConfigError(format!(
            "--finding {id:?}: give at least the first 4 characters of a finding's id"
        ))
        .into());
    }
    let ours: Vec<&Finding> = findings
        .iter()
        .filter(|f| finding_uid(f).to_string().starts_with(&id))
        .collect();
    match ours.as_slice() {
        [one] => return Ok(one),
        [] => {}
        _ => bail!(
            "--finding {id:?} matches {} findings: give more of the id",
            ours.len()
        ),
    }
    let exported = records.iter().find_map(|r| match r {
        Record::Findings(f) if f.head.event_uid.to_string().starts_with(&id) => Some(f),
        _ => None,
    });
    if let Some(e) = exported {
        let related: Vec<Uuid> = e
            .related_event_uids
            .iter()
            .filter_map(|u| u.parse().ok())
            .collect();
        if let Some(f) = findings
            .iter()
            .max_by_key(|f| {
                f.related
                    .iter()
                    .filter(|r| related.contains(&r.uid))
                    .count()
            })
            .filter(|f| f.related.iter().any(|r| related.contains(&r.uid)))
        {
            return Ok(f);
        }
    }
    bail!(
        "no finding with id {id:?}: `scopetrail explain` without --finding lists them with their ids"
    )
}

fn summary(
    out: &mut String,
    findings: &[Finding],
    records: &[Record],
    location: &str,
    since: Option<i64>,
) {
    let failures = |f: &Finding| f.count;
    let span = records
        .iter()
        .filter(|r| {
            matches!(
                r.dataset(),
                Dataset::Denials | Dataset::WebhookFailures | Dataset::RateLimitBursts
            )
        })
        .map(|r| r.head().time)
        .filter(|t| since.is_none_or(|s| *t >= s))
        .fold(None, |acc: Option<(i64, i64)>, t| {
            Some(acc.map_or((t, t), |(a, b)| (a.min(t), b.max(t))))
        });
    let _ = writeln!(
        out,
        "{} over {} exported rows at {location}{}{}",
        plural(findings.len(), "finding", "findings"),
        records.len(),
        since
            .map(|s| format!(", failures since {}", at(s)))
            .unwrap_or_default(),
        span.map(|(a, b)| format!(" (failures {} .. {})", at(a), at(b)))
            .unwrap_or_default(),
    );
    if findings.is_empty() {
        let _ = writeln!(out, "\nNo failures to explain.");
        return;
    }
    let mut by_type: BTreeMap<&str, (usize, u64)> = BTreeMap::new();
    for f in findings {
        let e = by_type.entry(f.finding_type.as_str()).or_default();
        e.0 += 1;
        e.1 += failures(f);
    }
    let mut top: Vec<_> = by_type.into_iter().collect();
    top.sort_by(|a, b| b.1.1.cmp(&a.1.1).then(a.0.cmp(b.0)));
    let _ = writeln!(out, "\nTop causes (by failures explained)");
    for (t, (n, events)) in top {
        let _ = writeln!(
            out,
            "  {t:<26} {:>12}  {:>9} failures",
            plural(n, "finding", "findings"),
            events
        );
    }
    for (i, f) in findings.iter().enumerate() {
        let _ = writeln!(out);
        head(out, i + 1, f, &finding_uid(f).to_string());
    }
    let _ = writeln!(
        out,
        "\n`scopetrail explain --finding <id>` shows one finding with its timeline."
    );
}

fn head(out: &mut String, n: usize, f: &Finding, uid: &str) {
    let _ = writeln!(
        out,
        "{n}. [{} {}] {}: {}",
        f.severity.as_str(),
        f.confidence.as_str(),
        f.finding_type.as_str(),
        f.title
    );
    let _ = writeln!(
        out,
        "   id {uid}  {}/{} ({})  {} .. {}",
        f.vendor,
        f.tenant,
        f.environment,
        at(f.first_ms),
        at(f.last_ms)
    );
    let _ = writeln!(out, "   why:  {}", f.explanation);
    let _ = writeln!(out, "   fix:  {}", f.remediation);
    if !f.alternatives.is_empty() {
        let _ = writeln!(out, "   also: {}", f.alternatives.join("; "));
    }
    if let Some(u) = &f.incident_url {
        let _ = writeln!(out, "   incident: {u}");
    }
}

fn one(out: &mut String, f: &Finding, records: &[Record], uid: &str, lookback: i64) {
    head(out, 1, f, uid);
    let related: Vec<Uuid> = f.related.iter().map(|r| r.uid).collect();
    let about = About {
        vendor: &f.vendor,
        tenant: &f.tenant,
        credential: f.credential.as_deref(),
        first_ms: f.first_ms,
        last_ms: f.last_ms,
        related: &related,
        cause: f.cause.map(|c| c.uid),
    };
    let _ = writeln!(out, "\n   Timeline");
    for e in timeline::timeline(&about, &timeline::Context::new(records), lookback, true) {
        let mark = if e.kind == Kind::Cause {
            "  <= cause"
        } else {
            ""
        };
        let _ = writeln!(out, "   {}  {}{mark}", at_s(e.time), e.line());
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    correlate::text::plural(n as u64, one, many)
}
