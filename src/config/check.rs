//! Checks that span files: jobs against sources and tenants, and credential bindings against
//! what the sources collect.

use std::collections::BTreeMap;

use super::{Config, Diagnostics, Loc, OWN_SOURCES, Severity};
use crate::model::Dataset;

pub(super) fn cross_check(config: &Config, diags: &mut Diagnostics) {
    check_jobs(config, diags);
    check_credentials(config, diags);
}

fn check_jobs(config: &Config, diags: &mut Diagnostics) {
    // (dataset, source, tenant) -> the job that exports it.
    let mut claims: BTreeMap<(Dataset, String, String), (String, Loc)> = BTreeMap::new();
    let all_tenants: Vec<String> = config.tenants.keys().cloned().collect();
    for job in config.jobs.values() {
        if let Some(tenants) = &job.tenants {
            for t in tenants {
                if !config.tenants.contains_key(&t.name) {
                    diags.at(
                        &t.loc,
                        Severity::Error,
                        format!(
                            "job `{}`: tenant `{}` is not defined under [tenants]",
                            job.name, t.name
                        ),
                    );
                }
            }
        }
        for listed in &job.sources {
            let (datasets, tenants): (&[Dataset], Vec<String>) =
                if OWN_SOURCES.contains(&listed.name.as_str()) {
                    (Dataset::ALL, all_tenants.clone())
                } else if let Some(spec) = config.sources.get(&listed.name) {
                    (
                        spec.settings.datasets(),
                        spec.settings.tenants(&spec.tenant),
                    )
                } else {
                    let defined: Vec<&str> = config
                        .sources
                        .keys()
                        .map(String::as_str)
                        .chain(OWN_SOURCES.iter().copied())
                        .collect();
                    diags.at(
                        &listed.loc,
                        Severity::Error,
                        format!(
                            "job `{}` lists source `{}`, which is not defined (sources: {})",
                            job.name,
                            listed.name,
                            defined.join(", ")
                        ),
                    );
                    continue;
                };
            for dataset in datasets.iter().filter(|d| job.datasets.contains(d)) {
                for tenant in &tenants {
                    if let Some(filter) = &job.tenants
                        && !filter.iter().any(|t| &t.name == tenant)
                    {
                        continue;
                    }
                    let key = (*dataset, listed.name.clone(), tenant.clone());
                    match claims.get(&key) {
                        Some((other, _)) if other == &job.name => {}
                        Some((other, other_loc)) => {
                            let message = format!(
                                "jobs `{other}` and `{}` both export ({}, {}, {}): every row would be exported twice; narrow one job's `datasets` or `tenants`",
                                job.name,
                                dataset.name(),
                                listed.name,
                                tenant
                            );
                            diags.at(&listed.loc, Severity::Error, message.clone());
                            diags.at(other_loc, Severity::Error, message);
                        }
                        None => {
                            claims.insert(key, (job.name.clone(), listed.loc.clone()));
                        }
                    }
                }
            }
        }
    }
    let snapshots_exported = config.jobs.values().any(|j| {
        j.sources
            .iter()
            .any(|s| s.name == "scopetrail.snapshot" || s.name == "scopetrail.drift")
    });
    if let Some(c) = config.credentials.iter().find(|c| c.probe.is_some())
        && !snapshots_exported
    {
        diags.at(
            &c.loc,
            Severity::Warning,
            "credentials are snapshotted but no job exports them: list \"scopetrail.snapshot\" and \"scopetrail.drift\" in a job's sources, or their rows stay in staging".to_string(),
        );
    }
    for spec in config.sources.values() {
        let exported = config
            .jobs
            .values()
            .any(|j| j.sources.iter().any(|s| s.name == spec.name));
        if !exported {
            diags.at(
                &spec.loc,
                Severity::Warning,
                format!(
                    "source `{}` is collected but no job exports it: its rows stay in staging",
                    spec.name
                ),
            );
            continue;
        }
        let mut missed = Vec::new();
        for dataset in spec.settings.datasets() {
            for tenant in spec.settings.tenants(&spec.tenant) {
                if !claims.contains_key(&(*dataset, spec.name.clone(), tenant.clone())) {
                    missed.push(format!("({}, {tenant})", dataset.name()));
                }
            }
        }
        if !missed.is_empty() {
            diags.at(
                &spec.loc,
                Severity::Warning,
                format!(
                    "source `{}` collects {} but no job exports them: those rows stay in staging until retention deletes them",
                    spec.name,
                    missed.join(", ")
                ),
            );
        }
    }
}

fn check_credentials(config: &Config, diags: &mut Diagnostics) {
    let mut seen: BTreeMap<(&str, &str), &Loc> = BTreeMap::new();
    let coverage: Vec<_> = config
        .sources
        .values()
        .flat_map(|s| s.settings.coverage(&s.tenant))
        .collect();
    for cred in &config.credentials {
        let what = format!("credential `{}` ({})", cred.name, cred.environment);
        if let Some(first) = seen.insert((&cred.name, &cred.environment), &cred.loc) {
            diags.at(
                &cred.loc,
                Severity::Error,
                format!(
                    "{what} is defined twice (first at line {}); a logical name appears once per environment",
                    first.line
                ),
            );
        }
        if cred.used_by.is_empty() {
            diags.at(
                &cred.loc,
                Severity::Warning,
                format!("{what} has no `used_by` binding: no row can be attributed to it"),
            );
        }
        for b in &cred.used_by {
            if !config.tenants.contains_key(&b.tenant) {
                diags.at(
                    &b.loc,
                    Severity::Error,
                    format!(
                        "{what}: tenant `{}` is not defined under [tenants]",
                        b.tenant
                    ),
                );
                continue;
            }
            let hosts: Vec<Option<&str>> = if b.hosts.is_empty() {
                vec![None]
            } else {
                b.hosts.iter().map(|h| Some(h.as_str())).collect()
            };
            // A probed credential's snapshots are filed under its bindings: they need no
            // other source.
            for host in hosts.into_iter().filter(|_| cred.probe.is_none()) {
                let covered = coverage.iter().any(|c| match host {
                    None => c.vendor == b.vendor && c.tenant == b.tenant,
                    Some(h) => c.covers(&b.vendor, &b.tenant, Some(h)),
                });
                if !covered {
                    let target = match host {
                        Some(h) => format!("({}, {}, {h})", b.vendor, b.tenant),
                        None => format!("({}, {})", b.vendor, b.tenant),
                    };
                    diags.at(
                        &b.loc,
                        Severity::Error,
                        format!(
                            "{what} is bound to {target}, which no source covers: add a source of vendor `{}` for tenant `{}`, or an http_log [[sources.NAME.hosts]] mapping to them",
                            b.vendor, b.tenant
                        ),
                    );
                }
            }
        }
    }
}
