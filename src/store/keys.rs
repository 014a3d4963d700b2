//! The object layout of DESIGN §5, in one place: exported objects under `v1/`, the state
//! area under `_state/`.

use chrono::{DateTime, Utc};

use crate::staging::Partition;

pub fn object_key(partition: &Partition, job: &str, export: u64) -> String {
    let ds = partition.dataset.name();
    format!(
        "v1/{ds}/vendor={}/tenant={}/dt={}/{ds}-{job}-{}.csv.gz",
        partition.vendor,
        partition.tenant,
        partition.day,
        export_label(export)
    )
}

/// `e000042`: padded so keys list in export order.
pub fn export_label(export: u64) -> String {
    format!("e{export:06}")
}

pub fn manifest_key(job: &str, export: u64) -> String {
    format!("v1/_exports/{job}/{}.json", export_label(export))
}

/// `20260302T000000Z_20260309T000000Z`: how a window is named in keys and on the command line.
pub fn window_name(start: DateTime<Utc>, end: DateTime<Utc>) -> String {
    let t = |t: DateTime<Utc>| t.format("%Y%m%dT%H%M%SZ").to_string();
    format!("{}_{}", t(start), t(end))
}

pub fn window_key(job: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> String {
    format!("v1/_windows/{job}/{}.json", window_name(start, end))
}

/// The window's page for people (DESIGN §5).
pub fn report_key(job: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> String {
    format!("reports/{job}/{}.html", window_name(start, end))
}

pub fn run_key(run_id: &str) -> String {
    format!("v1/_runs/{run_id}.json")
}

pub fn checkpoint_key(source: &str) -> String {
    format!("_state/sources/{source}/checkpoint.json")
}

pub fn segment_prefix(source: &str) -> String {
    format!("_state/staging/{source}/")
}

/// `.jsonl.gz` since format 1: the header is still a JSON line, but format 2's records after it
/// are MessagePack (`staging::merge::Format`). Renaming would strand the segments of earlier
/// builds, which are read for weeks after an upgrade.
pub fn segment_key(source: &str, segment: u64) -> String {
    format!("{}{segment:012}.jsonl.gz", segment_prefix(source))
}

/// The segment number of a key under `segment_prefix`.
pub fn segment_of(source: &str, key: &str) -> Option<u64> {
    key.strip_prefix(&segment_prefix(source))?
        .strip_suffix(".jsonl.gz")?
        .parse()
        .ok()
}

pub fn lease_key(name: &str) -> String {
    format!("_state/leases/{name}.json")
}

/// Everything that is not exported data starts here.
pub const STATE_ROOT: &str = "_state/";

/// What a bucket's first use found out about its conditional writes.
pub const CONDITIONAL_WRITES_KEY: &str = "_state/store/conditional-writes.json";

pub fn probe_key(id: &str) -> String {
    format!("_state/store/probe-{id}")
}

/// Multipart uploads in progress, so a later run can abort what a crash left behind.
pub const UPLOADS_PREFIX: &str = "_state/uploads/";

pub fn upload_key(id: &str) -> String {
    format!("{UPLOADS_PREFIX}{id}.json")
}

pub const EXPORTS_PREFIX: &str = "_state/exports/";

pub fn pointer_key(job: &str) -> String {
    format!("_state/exports/{job}/pointer.json")
}

pub fn plan_key(job: &str, export: u64) -> String {
    format!("_state/exports/{job}/plan-{}.json", export_label(export))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Dataset;

    #[test]
    fn layout_matches_design() {
        let p = Partition {
            dataset: Dataset::Denials,
            vendor: "oracle_fusion".into(),
            tenant: "acme".into(),
            day: "2026-03-05".into(),
        };
        assert_eq!(
            object_key(&p, "weekly", 3),
            "v1/denials/vendor=oracle_fusion/tenant=acme/dt=2026-03-05/denials-weekly-e000003.csv.gz"
        );
        let start = "2026-03-02T00:00:00Z".parse().unwrap_or_default();
        let end = "2026-03-09T00:00:00Z".parse().unwrap_or_default();
        assert_eq!(
            window_key("weekly", start, end),
            "v1/_windows/weekly/20260302T000000Z_20260309T000000Z.json"
        );
        assert_eq!(manifest_key("weekly", 3), "v1/_exports/weekly/e000003.json");
    }
}
