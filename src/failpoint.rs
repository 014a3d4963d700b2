//! Named failpoints on the state transitions (DESIGN §7): `SCOPETRAIL_FAILPOINT=<name>`
//! aborts the process right there, as a crash or a `kill -9` would, so tests can prove that a
//! rerun loses nothing and duplicates nothing. `<name>#<n>` aborts at its n-th hit (the second
//! object, the third page); `<name>:sleep=<ms>` pauses there instead, for tests that need two
//! processes to overlap at a known point.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Every failpoint, in the order a run meets them.
pub const ALL: &[&str] = &[
    // A lease (collect or export) is taken; the work has not started.
    "lease.after_acquire",
    // The staging segment an interrupted collection left uncommitted is deleted.
    "collect.after_orphan_delete",
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
    // The window's report is written; the export manifest is not.
    "export.after_report",
    // The export manifest is written; the window marker is not.
    "export.after_manifest",
    // The window marker is written; the job's pointer has not moved.
    "export.after_marker",
    // The job's pointer moved.
    "export.after_commit",
    // Retention deleted a staging segment past its retention.
    "clean.after_segment_delete",
    // Retention deleted an old plan; the pointer's history is not pruned yet.
    "clean.after_plan_delete",
];

enum Action {
    Abort,
    Sleep(u64),
}

struct Armed {
    name: String,
    /// Fire at this hit (1 = the first).
    at: u64,
    action: Action,
    hits: AtomicU64,
}

fn armed() -> Option<&'static Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let value = std::env::var("SCOPETRAIL_FAILPOINT").ok()?;
            let (point, action) = match value.split_once(":sleep=") {
                Some((p, ms)) => (p, Action::Sleep(ms.parse().ok()?)),
                None => (value.as_str(), Action::Abort),
            };
            let (name, at) = match point.split_once('#') {
                Some((n, at)) => (n, at.parse().ok()?),
                None => (point, 1),
            };
            Some(Armed {
                name: name.to_string(),
                at,
                action,
                hits: AtomicU64::new(0),
            })
        })
        .as_ref()
}

pub fn hit(name: &str) {
    let Some(armed) = armed() else { return };
    if armed.name != name || armed.hits.fetch_add(1, Ordering::SeqCst) + 1 != armed.at {
        return;
    }
    match armed.action {
        Action::Abort => {
            eprintln!("scopetrail: failpoint {name} reached: aborting");
            std::process::abort();
        }
        Action::Sleep(ms) => {
            eprintln!("scopetrail: failpoint {name} reached: pausing {ms} ms");
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
    }
}
