//! Runs started together on the same configuration: each piece of work is done once, and the
//! run that loses says what it skipped.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;

fn lines(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            call(
                &format!("2026-03-0{}T{:02}:{:02}:00Z", 3 + i % 5, 1 + i % 20, i % 60),
                403,
                &format!("r{i:05}"),
            )
        })
        .collect()
}

fn spawn(s: &Setup, env: &[(&str, &str)]) -> std::process::Child {
    let mut cmd = bin();
    cmd.arg("run")
        .arg("--config")
        .arg(s.config())
        .args(["--now", "2026-03-09T01:00:00Z"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn scopetrail")
}

fn finish(child: std::process::Child) -> Run {
    Run::of(child.wait_with_output().expect("wait"))
}

#[test]
fn the_second_run_skips_a_source_another_is_collecting() {
    let s = Setup::standard();
    s.append("a.log", &lines(200));
    // A takes the source's lease, then pauses.
    let a = spawn(
        &s,
        &[("SCOPETRAIL_FAILPOINT", "lease.after_acquire:sleep=2000")],
    );
    std::thread::sleep(Duration::from_millis(700));
    let b = finish(spawn(&s, &[]));
    b.assert_code(0);
    assert!(
        b.stdout
            .contains("proxy (http_log): skipped: another scopetrail process"),
        "{}",
        b.stdout
    );
    let a = finish(a);
    a.assert_code(0);
    assert!(a.stdout.contains("(denials 200,"), "{}", a.stdout);
    assert_each_denial_once(&s.out(), 200);
}

#[test]
fn the_second_run_skips_a_job_another_is_exporting() {
    let s = Setup::standard();
    s.append("a.log", &lines(200));
    let a = spawn(
        &s,
        &[("SCOPETRAIL_FAILPOINT", "export.after_plan:sleep=2000")],
    );
    std::thread::sleep(Duration::from_millis(700));
    let b = finish(spawn(&s, &[]));
    b.assert_code(0);
    assert!(
        b.stdout
            .contains("job weekly: skipped: another scopetrail process"),
        "{}",
        b.stdout
    );
    assert!(
        b.stdout.contains("proxy (http_log): not due"),
        "A collected it: {}",
        b.stdout
    );
    finish(a).assert_code(0);
    assert_each_denial_once(&s.out(), 200);
}

#[test]
fn runs_started_together_export_everything_once() {
    let s = Setup::standard();
    s.append("a.log", &lines(3000));
    let children: Vec<_> = (0..4).map(|_| spawn(&s, &[])).collect();
    let mut runs: Vec<Run> = children.into_iter().map(finish).collect();
    // A run that skipped the job while another still collected leaves the window to the next
    // run: that is the design (skipping is never a failure), so one more run follows.
    runs.push(finish(spawn(&s, &[])));
    for r in &runs {
        r.assert_code(0);
    }
    let collected = runs
        .iter()
        .filter(|r| r.stdout.contains("(denials 3000,"))
        .count();
    assert_eq!(collected, 1, "exactly one run collected the source");
    let exported = runs
        .iter()
        .filter(|r| r.stdout.contains("export e000001"))
        .count();
    assert_eq!(exported, 1, "exactly one run exported the window");
    assert_each_denial_once(&s.out(), 3000);
}
