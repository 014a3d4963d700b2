//! Exports per DESIGN §2.3, through the real binary: windows, completeness, late rows, and
//! reruns after a crash at each step of an export.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::*;

/// File names in a folder, sorted, hidden ones left out; none if it does not exist.
fn names(dir: &Path, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| !n.starts_with('.') && n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn markers(out: &Path) -> Vec<String> {
    names(&out.join("v1/_windows/weekly"), "")
}

fn marker(out: &Path, name: &str) -> serde_json::Value {
    let bytes = std::fs::read(out.join("v1/_windows/weekly").join(name)).expect("marker");
    serde_json::from_slice(&bytes).expect("marker JSON")
}

fn request_ids(out: &Path) -> Vec<String> {
    let mut ids: Vec<String> = rows(out, "denials")
        .into_iter()
        .map(|(_, r)| r["request_id"].clone())
        .collect();
    ids.sort();
    ids
}

#[test]
fn missed_windows_are_exported_in_order() {
    let s = Setup::standard();
    s.append("a.log", &[call("2026-03-03T10:00:00Z", 403, "r1")]);
    // First run: the job's first window starts at the fire before the 7-day lookback, and it
    // is already closed. Raw rows go out with the first export after they are staged, each
    // under its own day.
    s.run("2026-03-04T00:00:00Z").assert_code(0);
    assert_eq!(
        markers(&s.out()),
        vec!["20260223T000000Z_20260302T000000Z.json"]
    );
    assert_eq!(request_ids(&s.out()), vec!["r1"]);
    s.append(
        "a.log",
        &[
            call("2026-03-10T10:00:00Z", 401, "r2"),
            call("2026-03-17T10:00:00Z", 403, "r3"),
        ],
    );
    // Three weeks later: three windows, in order.
    let r = s.run("2026-03-24T06:00:00Z");
    r.assert_code(0);
    assert_eq!(
        markers(&s.out()),
        vec![
            "20260223T000000Z_20260302T000000Z.json",
            "20260302T000000Z_20260309T000000Z.json",
            "20260309T000000Z_20260316T000000Z.json",
            "20260316T000000Z_20260323T000000Z.json",
        ]
    );
    let exports: Vec<u64> = markers(&s.out())
        .iter()
        .map(|m| marker(&s.out(), m)["export"].as_u64().unwrap_or_default())
        .collect();
    assert_eq!(
        exports,
        vec![1, 2, 3, 4],
        "exports numbered in window order"
    );
    let p2 = r.stdout.find("export e000002").expect("e2 reported");
    let p4 = r.stdout.find("export e000004").expect("e4 reported");
    assert!(p2 < p4, "{}", r.stdout);
    // The rows staged by the catch-up collection go out with the first window exported after
    // it, each under its own day.
    assert_eq!(request_ids(&s.out()), vec!["r1", "r2", "r3"]);
    let keys: BTreeSet<String> = rows(&s.out(), "denials")
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert!(
        keys.iter()
            .any(|k| k.contains("dt=2026-03-17/denials-weekly-e000002")),
        "{keys:?}"
    );
}

#[test]
fn a_closed_window_makes_its_sources_due() {
    let config = BASE_CONFIG.replace(
        "paths = [\"logs/*\"]",
        "paths = [\"logs/*\"]\ncollect_every = \"1d\"",
    );
    let s = Setup::new(&config, &[("weekly", WEEKLY_JOB)]);
    s.append("a.log", &[call("2026-03-05T10:00:00Z", 403, "r1")]);
    s.run("2026-03-08T20:00:00Z").assert_code(0);
    // Not due by its cadence (1 day), but the window that ended at 00:00 waits for it.
    let r = s.run("2026-03-09T01:00:00Z");
    r.assert_code(0);
    assert!(
        r.stdout
            .contains("window 2026-03-02 00:00 UTC .. 2026-03-09 00:00 UTC (complete)"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_window_waits_for_a_late_source_then_max_wait_exports_it_incomplete() {
    let job = "schedule = \"0 0 * * MON\"\nsources = [\"proxy\"]\nmax_wait = \"12h\"\n";
    let s = Setup::new(BASE_CONFIG, &[("weekly", job)]);
    s.append("a.log", &[call("2026-03-05T10:00:00Z", 403, "r1")]);
    s.run("2026-03-08T20:00:00Z").assert_code(0);
    // Another host holds the source and is stuck: this host cannot collect it.
    let stuck = serde_json::json!({
        "owner": "other-host:4242:stuck", "generation": 3, "what": "collect proxy",
        "expires_at_ms": chrono::Utc::now().timestamp_millis() + 3_600_000, "acquired_at_ms": 0,
    });
    std::fs::write(
        s.out().join("_state/leases/source-proxy.json"),
        stuck.to_string(),
    )
    .expect("lease");
    let window = "20260302T000000Z_20260309T000000Z.json";
    let r = s.run("2026-03-09T01:00:00Z");
    r.assert_code(0);
    assert!(
        r.stdout.contains(
            "skipped: another scopetrail process (other-host:4242:stuck) is collecting it"
        ),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("waiting for proxy"), "{}", r.stdout);
    assert!(!markers(&s.out()).contains(&window.to_string()));
    // Past max_wait (12h): exported, marked incomplete, the late source named.
    let r = s.run("2026-03-09T12:30:00Z");
    r.assert_code(0);
    assert!(r.stdout.contains("INCOMPLETE: late proxy"), "{}", r.stdout);
    let m = marker(&s.out(), window);
    assert_eq!(m["complete"], false);
    assert_eq!(m["late_sources"], serde_json::json!(["proxy"]));
    assert_eq!(request_ids(&s.out()), vec!["r1"]);
    // The window's report says so at the top and names the source: a gap nobody misses.
    let page = std::fs::read_to_string(
        s.out()
            .join("reports/weekly/20260302T000000Z_20260309T000000Z.html"),
    )
    .expect("the report");
    assert!(
        page.contains("<strong class=\"bad\">INCOMPLETE</strong>"),
        "{page}"
    );
    assert!(page.contains("<b>proxy</b> was late"), "{page}");
}

#[test]
fn late_rows_land_in_a_later_export_under_their_own_day() {
    let s = Setup::standard();
    s.append("a.log", &[call("2026-03-05T10:00:00Z", 403, "r1")]);
    s.run("2026-03-09T01:00:00Z").assert_code(0);
    // A line of last week shows up after its window was exported.
    s.append("b.log", &[call("2026-03-06T23:59:00Z", 401, "late")]);
    s.run("2026-03-16T01:00:00Z").assert_code(0);
    let rows = rows(&s.out(), "denials");
    let late: Vec<&String> = rows
        .iter()
        .filter(|(_, r)| r["request_id"] == "late")
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        late,
        vec!["v1/denials/vendor=example/tenant=acme/dt=2026-03-06/denials-weekly-e000002.csv.gz"]
    );
    assert_eq!(rows.len(), 2, "each row in exactly one object");
}

/// Three weeks of a job, with staging kept a day after export so retention deletes as it goes.
const STEPS: [(&str, &str); 4] = [
    ("2026-03-05", "2026-03-09T01:00:00Z"),
    ("2026-03-12", "2026-03-16T01:00:00Z"),
    ("2026-03-13", "2026-03-18T01:00:00Z"),
    ("", "2026-03-23T01:00:00Z"),
];

fn scenario_setup() -> Setup {
    Setup::new(
        &format!("{BASE_CONFIG}\n[defaults]\nstaging_retention = \"1d\"\n"),
        &[("weekly", WEEKLY_JOB)],
    )
}

fn step_lines(step: usize, day: &str) -> Vec<String> {
    if day.is_empty() {
        return Vec::new();
    }
    (0..20)
        .map(|i| {
            call(
                &format!("{day}T{:02}:{i:02}:00Z", 1 + i % 20),
                if i % 3 == 0 { 401 } else { 403 },
                &format!("s{step}-{i:02}"),
            )
        })
        .collect()
}

/// Kills the process at each failpoint (and at the second hit of a few), reruns, and compares
/// with runs that were never interrupted: same rows, same keys, same bytes, nothing
/// overwritten. Each step of the scenario is first tried with the failpoint armed; a step whose
/// process died is run again unarmed.
#[test]
fn a_rerun_after_a_crash_at_any_step_produces_the_same_export() {
    let clean = scenario_setup();
    for (step, (day, now)) in STEPS.iter().enumerate() {
        clean.append("a.log", &step_lines(step, day));
        clean.run(now).assert_code(0);
    }
    let truth = request_ids(&clean.out());
    assert_eq!(truth.len(), 60);
    let expected = exported_bytes(&clean.out());

    let mut points: Vec<String> = scopetrail::failpoint::ALL
        .iter()
        .map(|p| p.to_string())
        .collect();
    points.push("export.after_object#2".into());
    for failpoint in &points {
        let s = scenario_setup();
        let mut fired = 0;
        for (step, (day, now)) in STEPS.iter().enumerate() {
            s.append("a.log", &step_lines(step, day));
            // An orphan to delete first comes from a collection killed after its segment.
            let mut armed = vec![failpoint.as_str()];
            if failpoint == "collect.after_orphan_delete" {
                armed.insert(0, "collect.after_segment");
            }
            for point in armed {
                let before = exported_bytes(&s.out());
                let r = run(
                    &s.config(),
                    &["--now", now],
                    &[("SCOPETRAIL_FAILPOINT", point)],
                );
                if r.code == 0 {
                    continue;
                }
                assert!(
                    r.stderr.contains("reached: aborting"),
                    "{failpoint} at step {step}: died otherwise: {}",
                    r.stderr
                );
                if point == failpoint {
                    fired += 1;
                }
                let after = exported_bytes(&s.out());
                for (key, bytes) in &before {
                    assert_eq!(
                        after.get(key),
                        Some(bytes),
                        "{failpoint}: {key} was overwritten"
                    );
                }
            }
            s.run(now).assert_code(0);
        }
        assert!(
            fired > 0,
            "{failpoint} never fired: the scenario does not reach it"
        );
        assert_eq!(
            request_ids(&s.out()),
            truth,
            "{failpoint}: rows lost or duplicated"
        );
        assert!(
            exported_bytes(&s.out()) == expected,
            "{failpoint}: not the bytes of uninterrupted runs"
        );
    }
}

#[test]
fn a_conflicting_object_stops_the_export_and_is_left_alone() {
    let s = Setup::standard();
    s.append("a.log", &[call("2026-03-05T10:00:00Z", 403, "r1")]);
    let crashed = run(
        &s.config(),
        &["--now", "2026-03-09T01:00:00Z"],
        &[("SCOPETRAIL_FAILPOINT", "export.after_plan")],
    );
    assert_ne!(crashed.code, 0);
    // Someone else's file sits under the planned key.
    let key = s
        .out()
        .join("v1/denials/vendor=example/tenant=acme/dt=2026-03-05/denials-weekly-e000001.csv.gz");
    std::fs::create_dir_all(key.parent().expect("parent")).expect("mkdir");
    std::fs::write(&key, b"not ours").expect("write");
    let r = s.run("2026-03-09T01:00:00Z");
    r.assert_code(1);
    assert!(r.stderr.contains("refusing to overwrite"), "{}", r.stderr);
    assert_eq!(std::fs::read(&key).expect("read"), b"not ours");
    assert!(
        markers(&s.out()).is_empty(),
        "no marker for an export that stopped"
    );
}

#[test]
fn a_collection_killed_before_its_checkpoint_stages_nothing_twice() {
    let s = Setup::standard();
    s.append(
        "a.log",
        &[
            call("2026-03-05T10:00:00Z", 403, "r1"),
            call("2026-03-05T11:00:00Z", 403, "r2"),
        ],
    );
    let crashed = run(
        &s.config(),
        &["--now", "2026-03-08T00:00:00Z"],
        &[("SCOPETRAIL_FAILPOINT", "collect.after_segment")],
    );
    assert_ne!(crashed.code, 0);
    let r = s.run("2026-03-09T01:00:00Z");
    r.assert_code(0);
    assert_eq!(request_ids(&s.out()), vec!["r1", "r2"]);
}

#[test]
fn rotated_and_compressed_logs_are_read_exactly_once() {
    use std::io::Write;
    let s = Setup::standard();
    let first: Vec<String> = (0..30)
        .map(|i| {
            call(
                &format!("2026-03-03T10:{i:02}:00Z"),
                403,
                &format!("a{i:02}"),
            )
        })
        .collect();
    s.append("app.log", &first);
    s.run("2026-03-04T00:00:00Z").assert_code(0);
    // More lines, then logrotate: app.log -> app.log.1, a new app.log.
    let more: Vec<String> = (0..5)
        .map(|i| {
            call(
                &format!("2026-03-04T10:{i:02}:00Z"),
                401,
                &format!("b{i:02}"),
            )
        })
        .collect();
    s.append("app.log", &more);
    std::fs::rename(s.log("app.log"), s.log("app.log.1")).expect("rotate");
    s.append("app.log", &[call("2026-03-05T10:00:00Z", 403, "c00")]);
    s.run("2026-03-05T12:00:00Z").assert_code(0);
    // Then app.log.1 is compressed (delaycompress) and removed.
    let plain = std::fs::read(s.log("app.log.1")).expect("read");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(s.log("app.log.1.gz")).expect("create"),
        flate2::Compression::default(),
    );
    gz.write_all(&plain).expect("gzip");
    gz.finish().expect("gzip");
    std::fs::remove_file(s.log("app.log.1")).expect("rm");
    s.append("app.log", &[call("2026-03-06T10:00:00Z", 403, "c01")]);
    s.run("2026-03-09T01:00:00Z").assert_code(0);
    let ids = request_ids(&s.out());
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "duplicates: {ids:?}");
    assert_eq!(ids.len(), 37, "{ids:?}");
}

#[test]
fn a_broken_source_does_not_stop_the_export_and_exits_1() {
    let s = Setup::standard();
    s.append("a.log", &[call("2026-03-05T10:00:00Z", 403, "r1")]);
    s.run("2026-03-08T00:00:00Z").assert_code(0);
    let checkpoint = s.out().join("_state/sources/proxy/checkpoint.json");
    std::fs::write(&checkpoint, b"{ not json").expect("corrupt");
    let r = s.run("2026-03-09T01:00:00Z");
    r.assert_code(1);
    assert!(
        r.stdout.contains("proxy (http_log): FAILED"),
        "{}",
        r.stdout
    );
    let last = r
        .stderr
        .lines()
        .rfind(|l| l.starts_with("scopetrail: "))
        .unwrap_or_default();
    assert!(
        last.contains("source proxy: reading the checkpoint of source proxy"),
        "one clear line: {}",
        r.stderr
    );
    // What was staged before is exported anyway, as an incomplete window once max_wait passes.
    let r = s.run("2026-03-10T01:00:00Z");
    r.assert_code(1);
    assert_eq!(request_ids(&s.out()), vec!["r1"]);
}

/// Every exported object, and the reports (which name the store, a temporary folder of each
/// scenario): a replay writes the same page too.
fn exported_bytes(out: &Path) -> BTreeMap<String, Vec<u8>> {
    let reports = walkdir::WalkDir::new(out.join("reports"))
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file() && !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| {
            let key = e.path().strip_prefix(out).expect("under out");
            let page = std::fs::read_to_string(e.path()).expect("read");
            (
                key.to_string_lossy().to_string(),
                page.replace(&out.display().to_string(), "<store>")
                    .into_bytes(),
            )
        });
    exported_files(out)
        .into_iter()
        .map(|(k, (b, _))| (k, b))
        .chain(reports)
        .collect()
}
