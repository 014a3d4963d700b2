//! When the state area or the configuration changes under scopetrail: a lost checkpoint, a
//! renamed job, logs that vanish or are half written. Nothing may be lost or sent twice, and
//! a gap must never pass for a complete window.

mod common;

use std::collections::BTreeSet;

use common::*;

fn ids(s: &Setup) -> Vec<String> {
    let mut ids: Vec<String> = rows(&s.out(), "denials")
        .into_iter()
        .map(|(_, r)| r["request_id"].clone())
        .collect();
    ids.sort();
    ids
}

fn assert_once(s: &Setup, expected: &[&str]) {
    let got = ids(s);
    let unique: BTreeSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), got.len(), "a row exported twice: {got:?}");
    assert_eq!(got, expected);
}

#[test]
fn a_lost_checkpoint_stops_the_source_without_losing_what_was_staged() {
    let s = Setup::standard();
    s.append("a.log", &[call("2026-03-05T10:00:00Z", 403, "r1")]);
    s.run("2026-03-09T01:00:00Z").assert_code(0);
    s.append("a.log", &[call("2026-03-10T10:00:00Z", 403, "r2")]);
    s.run("2026-03-11T00:00:00Z").assert_code(0);
    // Someone deletes the checkpoint (to "re-read the logs"), or restores an old backup.
    let checkpoint = s.out().join("_state/sources/proxy/checkpoint.json");
    let saved = std::fs::read(&checkpoint).expect("checkpoint");
    std::fs::remove_file(&checkpoint).expect("rm");
    s.append("a.log", &[call("2026-03-12T10:00:00Z", 403, "r3")]);
    let r = s.run("2026-03-12T12:00:00Z");
    r.assert_code(1);
    assert!(
        r.stderr
            .contains("staging segments (up to 2) but no checkpoint"),
        "{}",
        r.stderr
    );
    assert!(
        s.out()
            .join("_state/staging/proxy/000000000002.jsonl.gz")
            .exists(),
        "the staged, unexported segment is kept"
    );
    // Put back, the next runs carry on: nothing lost, nothing twice.
    std::fs::write(&checkpoint, saved).expect("restore");
    s.run("2026-03-16T01:00:00Z").assert_code(0);
    assert_once(&s, &["r1", "r2", "r3"]);
}

#[test]
fn an_older_checkpoint_is_refused_rather_than_trusted() {
    let s = Setup::standard();
    s.append("a.log", &[call("2026-03-05T10:00:00Z", 403, "r1")]);
    s.run("2026-03-06T00:00:00Z").assert_code(0);
    let checkpoint = s.out().join("_state/sources/proxy/checkpoint.json");
    let old = std::fs::read(&checkpoint).expect("checkpoint");
    s.append("a.log", &[call("2026-03-06T10:00:00Z", 403, "r2")]);
    s.run("2026-03-07T00:00:00Z").assert_code(0);
    s.append("a.log", &[call("2026-03-07T10:00:00Z", 403, "r3")]);
    s.run("2026-03-08T00:00:00Z").assert_code(0);
    std::fs::write(&checkpoint, old).expect("restore the old copy");
    let r = s.run("2026-03-09T01:00:00Z");
    r.assert_code(1);
    assert!(
        r.stderr.contains("the checkpoint went back"),
        "{}",
        r.stderr
    );
    assert_eq!(
        names_in(&s.out().join("_state/staging/proxy")),
        vec![
            "000000000001.jsonl.gz",
            "000000000002.jsonl.gz",
            "000000000003.jsonl.gz"
        ],
        "nothing deleted"
    );
}

#[test]
fn a_renamed_job_carries_on_where_the_old_name_left_off() {
    let config = format!("{BASE_CONFIG}\n[defaults]\nstaging_retention = \"1d\"\n");
    let s = Setup::new(&config, &[("weekly", WEEKLY_JOB)]);
    s.append("a.log", &[call("2026-03-05T10:00:00Z", 403, "r1")]);
    s.run("2026-03-09T01:00:00Z").assert_code(0);
    s.append("a.log", &[call("2026-03-12T10:00:00Z", 403, "r2")]);
    s.run("2026-03-16T01:00:00Z").assert_code(0);
    std::fs::rename(
        s.dir.path().join("jobs/weekly.toml"),
        s.dir.path().join("jobs/weekly-v2.toml"),
    )
    .expect("rename");
    s.append("a.log", &[call("2026-03-19T10:00:00Z", 403, "r3")]);
    // Retention already deleted what the old name exported; the new name must neither export it
    // again nor look for it.
    let r = s.run("2026-03-23T01:00:00Z");
    r.assert_code(0);
    assert_once(&s, &["r1", "r2", "r3"]);
    let keys: Vec<String> = rows(&s.out(), "denials")
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert!(
        keys.iter().any(|k| k.contains("denials-weekly-v2-e000001")),
        "{keys:?}"
    );
}

#[test]
fn no_matching_file_is_a_failure_not_a_quiet_week() {
    let s = Setup::new(
        &BASE_CONFIG.replace("paths = [\"logs/*\"]", "paths = [\"nothing-here/*.log\"]"),
        &[("weekly", WEEKLY_JOB)],
    );
    let r = s.run("2026-03-09T01:00:00Z");
    r.assert_code(1);
    assert!(r.stderr.contains("no file matches"), "{}", r.stderr);
    assert!(
        r.stdout.contains(
            "window 2026-03-02 00:00 UTC .. 2026-03-09 00:00 UTC ended; waiting for proxy"
        ),
        "{}",
        r.stdout
    );
}

#[test]
fn a_half_written_gzip_is_read_later_and_the_window_waits() {
    use std::io::Write;
    let s = Setup::standard();
    let lines: Vec<String> = (0..2000)
        .map(|i| {
            call(
                &format!("2026-03-05T10:{:02}:{:02}Z", i / 60 % 60, i % 60),
                403,
                &format!("r{i:04}"),
            )
        })
        .collect();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for l in &lines {
        writeln!(gz, "{l}").expect("gzip");
    }
    let whole = gz.finish().expect("gzip");
    // logrotate is still compressing it.
    std::fs::write(s.log("a.log.1.gz"), &whole[..whole.len() / 2]).expect("write");
    let r = s.run("2026-03-09T01:00:00Z");
    r.assert_code(75);
    assert!(
        r.stderr.contains("could not be read to the end"),
        "{}",
        r.stderr
    );
    assert!(!r.stdout.contains("(complete)"), "{}", r.stdout);
    std::fs::write(s.log("a.log.1.gz"), &whole).expect("write");
    s.run("2026-03-09T02:00:00Z").assert_code(0);
    let expected: Vec<String> = (0..2000).map(|i| format!("r{i:04}")).collect();
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    assert_once(&s, &expected);
}

fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}
