//! `scopetrail daemon` as a real child process: it exports on the job's schedule, catches up
//! at start, never overlaps two runs, and on SIGTERM stops after the current page with nothing
//! lost.

mod common;

use std::collections::BTreeSet;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Collected every second, no lateness, a minute of lookback; exported every 3 seconds.
fn fast_setup() -> Setup {
    let config = BASE_CONFIG.replace(
        "paths = [\"logs/*\"]",
        "paths = [\"logs/*\"]\ncollect_every = \"1s\"\nlateness = \"0s\"\ninitial_lookback = \"1m\"",
    );
    Setup::new(
        &config,
        &[(
            "fast",
            "schedule = \"*/3 * * * * *\"\nsources = [\"proxy\"]\n",
        )],
    )
}

fn now_lines(prefix: &str, n: usize) -> Vec<String> {
    let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    (0..n)
        .map(|i| call(&ts, 403, &format!("{prefix}{i:03}")))
        .collect()
}

fn start_daemon(s: &Setup) -> Child {
    start_daemon_with(s, &[])
}

fn start_daemon_with(s: &Setup, env: &[(&str, &str)]) -> Child {
    let mut cmd = bin();
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.arg("daemon")
        .arg("--config")
        .arg(s.config())
        .args(["--grace", "20s"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the daemon")
}

fn exported_ids(s: &Setup) -> Vec<String> {
    rows(&s.out(), "denials")
        .into_iter()
        .map(|(_, r)| r["request_id"].clone())
        .collect()
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// SIGTERM, then how long the daemon took to exit and its exit code and stderr.
fn terminate(mut child: Child) -> (Duration, i32, String) {
    let asked = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            let took = asked.elapsed();
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut stderr);
            }
            return (took, status.code().unwrap_or(-1), stderr);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the daemon did not exit within 30 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run_records(s: &Setup) -> Vec<serde_json::Value> {
    std::fs::read_dir(s.out().join("v1/_runs"))
        .map(|d| {
            d.flatten()
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_daemon_exports_on_schedule_and_stops_on_sigterm() {
    let s = fast_setup();
    s.append("a.log", &now_lines("a", 20));
    let daemon = start_daemon(&s);
    wait_for("the first rows", Duration::from_secs(30), || {
        exported_ids(&s).len() >= 20
    });
    // While it runs: more rows, exported on a later fire of the schedule.
    let exports_before = std::fs::read_dir(s.out().join("v1/_exports/fast"))
        .map(|d| d.count())
        .unwrap_or(0);
    s.append("a.log", &now_lines("b", 10));
    wait_for("the later rows", Duration::from_secs(30), || {
        exported_ids(&s).len() >= 30
    });
    // Several runs, to check below that they never overlap (a loaded machine runs fewer a second).
    wait_for("three run records", Duration::from_secs(30), || {
        run_records(&s).len() >= 3
    });
    let exports_after = std::fs::read_dir(s.out().join("v1/_exports/fast"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(
        exports_after > exports_before,
        "exports happen on the schedule, not only at start"
    );

    let (took, code, stderr) = terminate(daemon);
    assert_eq!(code, 0, "{stderr}");
    assert!(took < Duration::from_secs(10), "took {took:?} to stop");
    let ids = exported_ids(&s);
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "a row exported twice");
    assert_eq!(ids.len(), 30);

    // One run at a time: no two runs overlap.
    let mut spans: Vec<(String, String)> = run_records(&s)
        .iter()
        .map(|r| {
            (
                r["started_at"].as_str().unwrap_or_default().to_string(),
                r["finished_at"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    spans.sort();
    assert!(spans.len() >= 3, "{} runs", spans.len());
    for pair in spans.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "runs overlap: {pair:?}");
    }
}

#[test]
fn sigterm_during_a_long_collection_stops_after_the_current_page() {
    let s = fast_setup();
    let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut truth = BTreeSet::new();
    for file in 0..4 {
        let lines: Vec<String> = (0..100_000)
            .map(|i| {
                let rid = format!("f{file}-{i:06}");
                let status = if i % 10 == 0 { 401 } else { 200 };
                if status == 401 {
                    truth.insert(rid.clone());
                }
                call(&ts, status, &rid)
            })
            .collect();
        s.append(&format!("big-{file}.log"), &lines);
    }
    // Paused right after its first page is committed, so the signal lands mid-collection.
    let daemon = start_daemon_with(
        &s,
        &[(
            "SCOPETRAIL_FAILPOINT",
            "collect.after_checkpoint:sleep=2000",
        )],
    );
    wait_for("the first staged page", Duration::from_secs(30), || {
        s.out()
            .join("_state/staging/proxy")
            .read_dir()
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
    });
    let (took, code, stderr) = terminate(daemon);
    assert_eq!(code, 0, "{stderr}");
    assert!(took < Duration::from_secs(5), "took {took:?} to stop");
    let interrupted = run_records(&s).iter().any(|r| {
        r["sources"]
            .as_array()
            .is_some_and(|ss| ss.iter().any(|x| x["outcome"] == "interrupted"))
    });
    assert!(interrupted, "the collection was cut short by the signal");

    // The next run carries on from the last staged page: nothing lost, nothing twice.
    let r = run(&s.config(), &[], &[]);
    r.assert_code(0);
    let later = Instant::now() + Duration::from_secs(4);
    while Instant::now() < later && exported_ids(&s).len() < truth.len() {
        std::thread::sleep(Duration::from_millis(500));
        run(&s.config(), &[], &[]).assert_code(0);
    }
    let ids = exported_ids(&s);
    let unique: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(unique.len(), ids.len(), "a row exported twice");
    assert!(
        unique == truth,
        "rows lost: {} of {}",
        unique.len(),
        truth.len()
    );
}
