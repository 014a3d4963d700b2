//! Named failpoints on the state transitions (DESIGN §7): `SCOPETRAIL_FAILPOINT=<name>`
//! aborts the process right there, as a crash or a `kill -9` would, so tests can prove that a
//! rerun loses nothing and duplicates nothing.

use std::sync::OnceLock;

/// Every failpoint, in the order a run meets them.
pub const ALL: &[&str] = &[
    // A lease (collect or export) is taken; the work has not started.
    "lease.after_acquire",
    // A staging segment is written; the checkpoint does not know it yet.
    "collect.after_segment",
    // The checkpoint moved past a staged page.
    "collect.after_checkpoint",
    // A new job's export state is written (where its windows start).
    "export.after_init",
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

/// `SCOPETRAIL_FAILPOINT=name` aborts there; `name:sleep=MS` pauses there instead (for tests
/// that need two processes to overlap at a known point).
pub fn hit(name: &str) {
    static ARMED: OnceLock<Option<(String, Option<u64>)>> = OnceLock::new();
    let armed = ARMED.get_or_init(|| {
        let value = std::env::var("SCOPETRAIL_FAILPOINT").ok()?;
        Some(match value.split_once(":sleep=") {
            Some((point, ms)) => (point.to_string(), ms.parse().ok()),
            None => (value, None),
        })
    });
    match armed {
        Some((point, None)) if point == name => {
            eprintln!("scopetrail: failpoint {name} reached: aborting");
            std::process::abort();
        }
        Some((point, Some(ms))) if point == name => {
            eprintln!("scopetrail: failpoint {name} reached: pausing {ms} ms");
            std::thread::sleep(std::time::Duration::from_millis(*ms));
        }
        _ => {}
    }
}
