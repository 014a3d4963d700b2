//! Named failpoints on the state transitions (DESIGN §7): `SCOPETRAIL_FAILPOINT=<name>`
//! aborts the process right there, as a crash or a `kill -9` would, so tests can prove that a
//! rerun loses nothing and duplicates nothing.

use std::sync::OnceLock;

/// Every failpoint, in the order a run meets them.
pub const ALL: &[&str] = &[
    // A staging segment is written; the checkpoint does not know it yet.
    "collect.after_segment",
    // The checkpoint moved past a staged page.
    "collect.after_checkpoint",
    // An export plan is written; nothing of the export is.
    "export.after_plan",
    // One object of an export is written.
    "export.after_object",
    // The export manifest is written; the window marker is not.
    "export.after_manifest",
    // The window marker is written; the job's pointer has not moved.
    "export.after_marker",
    // The job's pointer moved.
    "export.after_commit",
];

pub fn hit(name: &str) {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    let armed = ARMED.get_or_init(|| std::env::var("SCOPETRAIL_FAILPOINT").ok());
    if armed.as_deref() == Some(name) {
        eprintln!("scopetrail: failpoint {name} reached: aborting");
        std::process::abort();
    }
}
