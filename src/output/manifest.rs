//! What an export leaves beside the data: the manifest (everything the export wrote,
//! determined by the plan alone), the window marker (written last), and the run record
//! (what one run did, for monitoring).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::plan::{Malformed, SegmentRange};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ManifestObject {
    pub key: String,
    pub dataset: String,
    pub vendor: String,
    pub tenant: String,
    pub dt: String,
    pub rows: u64,
    /// SHA-256 of the uncompressed CSV (gzip bytes may differ between compressor versions).
    pub sha256: String,
}

/// `v1/_exports/<job>/e<export>.json`. Contains nothing a replay of the plan could change.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: u32,
    pub job: String,
    pub export: u64,
    pub window_start: String,
    pub window_end: String,
    /// False when the window was exported after `max_wait` with late sources.
    pub complete: bool,
    pub late_sources: Vec<String>,
    /// Per source, the staging segments this export read.
    pub staging: BTreeMap<String, SegmentRange>,
    /// Per source, the inputs those segments' collections could not read (file and line).
    pub malformed: BTreeMap<String, Malformed>,
    pub rows: u64,
    pub objects: Vec<ManifestObject>,
    /// The window's report for people (not data: SIEMs do not ingest it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
    /// The clock of the run that planned the export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_at: Option<String>,
}

/// `v1/_windows/<job>/<start>_<end>.json`: the window is covered; written after everything
/// else of its export.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WindowMarker {
    pub format: u32,
    pub job: String,
    pub window_start: String,
    pub window_end: String,
    pub complete: bool,
    pub late_sources: Vec<String>,
    pub export: u64,
    pub manifest: String,
}
