//! The short summary a person reads after `scopetrail run`: what was collected, what was
//! exported where, and what was late or failed.

use std::fmt::Write;

use crate::pipeline::{Clock, RunReport, SourceOutcome};

/// `2026-03-09 00:00 UTC`: the RFC 3339 of the records is for machines.
fn short(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|_| rfc3339.to_string())
}

pub fn render(report: &RunReport) -> String {
    let mut out = String::new();
    let clock = match report.clock {
        Clock::System => String::new(),
        Clock::Flag => format!(" (clock set by --now to {})", short(&report.now)),
        Clock::Pinned => format!(
            " (clock pinned by the configuration to {})",
            short(&report.now)
        ),
    };
    let _ = writeln!(out, "scopetrail run {}{clock}", report.run_id);
    for notice in &report.notices {
        let _ = writeln!(out, "note: {notice}");
    }

    let _ = writeln!(out, "\ncollected");
    let mut collected_any = false;
    for s in &report.sources {
        match &s.outcome {
            SourceOutcome::Collected { stats, .. } => {
                collected_any = true;
                let mut counters = stats
                    .counters
                    .iter()
                    .map(|(k, v)| format!("{v} {k}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                if !counters.is_empty() {
                    counters.push_str("; ");
                }
                let by_dataset = if stats.by_dataset.is_empty() {
                    String::new()
                } else {
                    format!(
                        " ({})",
                        stats
                            .by_dataset
                            .iter()
                            .map(|(k, v)| format!("{k} {v}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                let _ = write!(
                    out,
                    "  {} ({}): {counters}{} rows staged{by_dataset}",
                    s.name, s.kind, stats.staged
                );
                if stats.duplicates > 0 {
                    let _ = write!(out, ", {} duplicates dropped", stats.duplicates);
                }
                if stats.malformed > 0 {
                    let _ = write!(
                        out,
                        ", {} malformed input{} skipped",
                        stats.malformed,
                        if stats.malformed == 1 { "" } else { "s" }
                    );
                }
                out.push('\n');
                for example in stats.malformed_examples.iter().take(3) {
                    let _ = writeln!(out, "      malformed: {example}");
                }
            }
            SourceOutcome::NotDue { next_at } => {
                let _ = writeln!(
                    out,
                    "  {} ({}): not due; next collection at {}",
                    s.name,
                    s.kind,
                    short(next_at)
                );
            }
            SourceOutcome::Skipped { busy } => {
                let _ = writeln!(
                    out,
                    "  {} ({}): skipped: another scopetrail process ({}) is collecting it; its lease ends at {}",
                    s.name,
                    s.kind,
                    busy.holder,
                    short(&busy.until)
                );
            }
            SourceOutcome::Interrupted { stats } => {
                collected_any |= stats.staged > 0;
                let _ = writeln!(
                    out,
                    "  {} ({}): interrupted (asked to stop) after staging {} rows; the rest is read next run",
                    s.name, s.kind, stats.staged
                );
            }
            SourceOutcome::Failed { stats, .. } => {
                collected_any |= stats.staged > 0;
                let _ = writeln!(
                    out,
                    "  {} ({}): FAILED after staging {} rows (kept); see below",
                    s.name, s.kind, stats.staged
                );
            }
        }
    }
    if report.sources.is_empty() {
        let _ = writeln!(out, "  no sources configured");
    } else if !collected_any {
        let _ = writeln!(out, "  nothing new");
    }

    let _ = writeln!(out, "\nexported (under {})", report.store);
    for job in &report.jobs {
        for export in &job.exports {
            let e = &export.manifest;
            let state = if e.complete {
                "complete".to_string()
            } else {
                format!("INCOMPLETE: late {}", e.late_sources.join(", "))
            };
            let replay = if export.replayed {
                ", replayed after an interruption"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "  job {} export e{:06}: window {} .. {} ({state}{replay}), {} rows in {} files",
                job.job,
                e.export,
                short(&e.window_start),
                short(&e.window_end),
                e.objects.iter().map(|o| o.rows).sum::<u64>(),
                e.objects.len()
            );
            // One line per dataset, vendor and tenant: the days it spans and its rows.
            let mut groups: Vec<(&str, &str, &str, Vec<&str>, u64)> = Vec::new();
            for o in &e.objects {
                match groups.last_mut() {
                    Some((d, v, t, days, rows))
                        if (*d, *v, *t)
                            == (o.dataset.as_str(), o.vendor.as_str(), o.tenant.as_str()) =>
                    {
                        days.push(&o.dt);
                        *rows += o.rows;
                    }
                    _ => groups.push((&o.dataset, &o.vendor, &o.tenant, vec![&o.dt], o.rows)),
                }
            }
            for (dataset, vendor, tenant, days, rows) in groups {
                let dt = match days.as_slice() {
                    [one] => one.to_string(),
                    [first, .., last] => format!("{first}..{last} ({} days)", days.len()),
                    [] => String::new(),
                };
                let _ = writeln!(
                    out,
                    "    {dataset:<18} vendor={vendor} tenant={tenant} dt={dt}  {rows} rows"
                );
            }
            let _ = writeln!(out, "    manifest {}", export.manifest_key);
            let _ = writeln!(out, "    report   {}", export.report_at);
        }
        if let Some(busy) = &job.skipped {
            let _ = writeln!(
                out,
                "  job {}: skipped: another scopetrail process ({}) is exporting it; its lease ends at {}",
                job.job,
                busy.holder,
                short(&busy.until)
            );
        }
        if job.interrupted {
            let _ = writeln!(
                out,
                "  job {}: interrupted (asked to stop); the next run carries on",
                job.job
            );
        }
        if let Some(w) = &job.waiting {
            let why = if w.open {
                format!(
                    "still open; exported once its sources have collected past its end, by {} at the latest",
                    short(&w.deadline)
                )
            } else {
                format!(
                    "ended; waiting for {} to collect past its end, exported incomplete at {} otherwise",
                    w.waiting_for.join(", "),
                    short(&w.deadline)
                )
            };
            let _ = writeln!(
                out,
                "  job {}: next window {} .. {} {why}",
                job.job,
                short(&w.window_start),
                short(&w.window_end)
            );
        }
    }
    if !report.exported_anything() {
        let _ = writeln!(out, "  nothing new to export");
    }

    let _ = writeln!(out, "\nlate or failed");
    let late: Vec<String> = report
        .jobs
        .iter()
        .flat_map(|j| &j.exports)
        .map(|e| &e.manifest)
        .filter(|e| !e.complete)
        .map(|e| {
            format!(
                "  job {} export e{:06} was exported incomplete: {} late",
                e.job,
                e.export,
                e.late_sources.join(", ")
            )
        })
        .collect();
    if late.is_empty() && report.failures.is_empty() {
        let _ = writeln!(out, "  nothing");
    }
    for l in late {
        let _ = writeln!(out, "{l}");
    }
    for f in &report.failures {
        let kind = if f.temporary { " (temporary)" } else { "" };
        let _ = writeln!(out, "  {}{kind}: {}", f.what, f.error);
    }
    if let Some(key) = &report.run_record {
        let _ = writeln!(out, "\nrun record: {key}");
    }
    out
}

/// `scopetrail snapshot`: one line per credential, then what changed, for someone reading it
/// in the middle of an incident.
pub fn render_snapshots(outcomes: &[crate::probes::collect::Outcome], now_ms: i64) -> String {
    use crate::analysis::drift::human;
    let mut rows = vec![[
        "CREDENTIAL".to_string(),
        "ENV".into(),
        "PROBE".into(),
        "STATUS".into(),
        "EXPIRES".into(),
        "SKEW".into(),
        "PRIVILEGES".into(),
    ]];
    for o in outcomes {
        let obs = &o.observation;
        let expires = match obs.expires_at_ms {
            Some(e) if e > now_ms => format!("in {}", human(e - now_ms)),
            Some(e) => format!("{} ago", human(now_ms - e)),
            None => "-".into(),
        };
        let skew = obs
            .skew_ms
            .map_or("-".into(), |s| format!("{:+}s", s / 1000));
        let privileges = match &obs.privileges {
            None => "unknown".to_string(),
            Some(p) if p.is_empty() => "none".into(),
            Some(p) => p.iter().cloned().collect::<Vec<_>>().join(" "),
        };
        rows.push([
            o.credential.clone(),
            o.environment.clone(),
            obs.probe.clone(),
            obs.status.clone(),
            expires,
            skew,
            privileges,
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        for (cell, w) in r.iter().zip(&widths) {
            let _ = write!(out, "{cell:<w$}  ");
        }
        let _ = writeln!(out, "{}", r[6]);
    }
    let mut changes = Vec::new();
    for o in outcomes {
        let who = format!("{} ({})", o.credential, o.environment);
        // A failure that is new is said by its drift line, which carries the message.
        let new = o
            .drift
            .iter()
            .any(|d| matches!(d.action, "probe_failing" | "token_expired"));
        if let Some(m) = o
            .observation
            .message
            .as_deref()
            .filter(|_| !o.observation.ok() && !new)
        {
            changes.push(format!("{who}: {}: {m}", o.observation.status));
        }
        for d in &o.drift {
            changes.push(format!("{who}: {}: {}", d.action, d.details));
        }
    }
    if outcomes.is_empty() {
        out.push_str("no credential has a [credentials.probe]\n");
    } else if changes.is_empty() {
        out.push_str("\nnothing changed since the last snapshots\n");
    } else {
        out.push_str("\nchanged or failing:\n");
        for c in changes {
            let _ = writeln!(out, "  {c}");
        }
    }
    out
}
