//! Findings through the real binary: written with each export beside the evidence, re-emitted
//! with a higher revision (same id) when late failures extend them, linked to every failure in
//! `finding_events`, and explained again from the exported data by `scopetrail explain`.

mod common;

use std::collections::BTreeSet;

use common::*;

const DAILY: &str = "schedule = \"0 0 * * *\"\nsources = [\"proxy\"]\n";

/// `n` POSTs refused with `insufficient_scope` every `step` minutes from `from`.
fn refused(from: &str, n: usize, step: i64, prefix: &str) -> Vec<String> {
    let start = chrono::DateTime::parse_from_rfc3339(from).expect("time");
    (0..n)
        .map(|i| {
            let t = start + chrono::Duration::minutes(i as i64 * step);
            call(
                &t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                403,
                &format!("{prefix}{i:04}"),
            )
        })
        .collect()
}

fn findings(s: &Setup) -> Vec<(String, Row)> {
    rows(&s.out(), "findings")
}

#[test]
fn late_failures_re_emit_a_finding_with_the_same_id_and_every_failure_is_linked() {
    let s = Setup::new(BASE_CONFIG, &[("daily", DAILY)]);
    s.append("a.log", &refused("2026-03-05T09:00:00Z", 12, 5, "a"));
    s.run("2026-03-06T01:00:00Z").assert_code(0);
    let first = findings(&s);
    assert_eq!(first.len(), 1, "{first:?}");
    let f = &first[0].1;
    assert_eq!(f["finding_type"], "insufficient_scope");
    assert_eq!(f["severity"], "failure");
    assert_eq!(
        f["confidence"], "medium",
        "no snapshot: the server's word only"
    );
    assert_eq!(f["source"], "scopetrail.correlation");
    assert_eq!(f["related_events_count"], "12");
    assert_eq!(f["revision"], "1");
    assert_eq!(f["first_seen_dt"], "2026-03-05T09:00:00.000Z");
    assert!(f["explanation"].contains("orders:write"), "{f:?}");
    assert!(f["remediation"].starts_with("Grant orders:write"), "{f:?}");
    assert_eq!(f["actor_app"], "app-1");

    // Another host of the integration logs late: more refusals of the same group.
    s.append("b.log", &refused("2026-03-05T10:00:00Z", 6, 5, "b"));
    s.run("2026-03-07T01:00:00Z").assert_code(0);
    let mut all = findings(&s);
    all.sort_by(|a, b| a.1["revision"].cmp(&b.1["revision"]));
    assert_eq!(all.len(), 2, "{all:?}");
    let (k1, r1) = &all[0];
    let (k2, r2) = &all[1];
    assert_eq!(r1["event_uid"], r2["event_uid"], "the same finding");
    assert_eq!(
        (r1["revision"].as_str(), r2["revision"].as_str()),
        ("1", "2")
    );
    assert_eq!(r2["related_events_count"], "18");
    assert_eq!(r2["last_seen_dt"], "2026-03-05T10:25:00.000Z");
    assert_ne!(k1, k2, "the revision is in a later object");

    // Every denial is linked, under the finding's id, exactly once per link.
    let denials: BTreeSet<String> = rows(&s.out(), "denials")
        .into_iter()
        .map(|(_, r)| r["event_uid"].clone())
        .collect();
    assert_eq!(denials.len(), 18);
    let links = rows(&s.out(), "finding_events");
    let linked: BTreeSet<String> = links
        .iter()
        .filter(|(_, r)| r["finding_uid"] == r2["event_uid"] && r["related_dataset"] == "denials")
        .map(|(_, r)| r["related_event_uid"].clone())
        .collect();
    assert_eq!(linked, denials);
    let ids: BTreeSet<&String> = links.iter().map(|(_, r)| &r["event_uid"]).collect();
    let pairs: BTreeSet<(&String, &String)> = links
        .iter()
        .map(|(_, r)| (&r["finding_uid"], &r["related_event_uid"]))
        .collect();
    assert_eq!(ids.len(), pairs.len(), "a link's id is its pair");

    // Nothing new: no third revision.
    s.run("2026-03-08T01:00:00Z").assert_code(0);
    assert_eq!(findings(&s).len(), 2);

    if let Some(tool) = frictionless() {
        for dataset in ["findings", "finding_events"] {
            let files = objects(&s.out(), dataset);
            let (_, path) = files.iter().next().expect("an object");
            assert_valid_csv(&tool, path, dataset);
        }
    }
}

#[test]
fn explain_reads_the_export_and_shows_one_finding_with_its_timeline() {
    let s = Setup::standard();
    s.append("a.log", &refused("2026-03-05T09:00:00Z", 30, 4, "a"));
    // A 429 storm of the same client is another finding.
    let storm: Vec<String> = (0..40)
        .map(|i| {
            serde_json::json!({
                "ts": format!("2026-03-06T14:00:{:02}.000Z", i),
                "status": if i % 4 == 3 { 503 } else { 429 },
                "method": "GET",
                "url": format!("https://api.example.com/v1/items/{i}"),
                "client": "app-1",
                "rid": format!("s{i:03}"),
            })
            .to_string()
        })
        .collect();
    s.append("a.log", &storm);
    s.run("2026-03-09T01:00:00Z").assert_code(0);
    let exported = findings(&s);
    assert_eq!(exported.len(), 2, "{exported:?}");

    let explain = Run::of(
        bin()
            .args(["explain", "--config"])
            .arg(s.config())
            .output()
            .expect("explain runs"),
    );
    explain.assert_code(0);
    let out = &explain.stdout;
    assert!(out.starts_with("2 findings over "), "{out}");
    assert!(out.contains("Top causes"), "{out}");
    assert!(out.contains("insufficient_scope"), "{out}");
    assert!(out.contains("rate_limited"), "{out}");
    assert!(out.contains("exponentially with full jitter"), "{out}");
    for (_, f) in &exported {
        assert!(out.contains(&f["event_uid"]), "the export's ids: {out}");
    }

    // One finding by a prefix of its id, with its failures in time order.
    let scope = exported
        .iter()
        .find(|(_, f)| f["finding_type"] == "insufficient_scope")
        .expect("the scope finding");
    let one = Run::of(
        bin()
            .args(["explain", "--from"])
            .arg(s.out())
            .args(["--finding", &scope.1["event_uid"][..8]])
            .output()
            .expect("explain runs"),
    );
    one.assert_code(0);
    assert!(one.stdout.contains("Timeline"), "{}", one.stdout);
    let times: Vec<&str> = one
        .stdout
        .lines()
        .filter(|l| l.contains("denial "))
        .map(|l| l.trim_start().split("  ").next().unwrap_or(""))
        .collect();
    assert_eq!(times.len(), 25, "20 first, 5 last: {}", one.stdout);
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert!(
        one.stdout.contains("... 5 more failures ..."),
        "{}",
        one.stdout
    );

    // --since leaves the denials out; a wrong id and a folder without exports are named.
    let since = Run::of(
        bin()
            .args(["explain", "--from"])
            .arg(s.out())
            .args(["--since", "2026-03-06"])
            .output()
            .expect("explain runs"),
    );
    since.assert_code(0);
    assert!(
        since.stdout.starts_with("1 finding over"),
        "{}",
        since.stdout
    );
    assert!(
        !since.stdout.contains("insufficient_scope"),
        "{}",
        since.stdout
    );
    let wrong = Run::of(
        bin()
            .args(["explain", "--from"])
            .arg(s.out())
            .args(["--finding", "ffffffff"])
            .output()
            .expect("explain runs"),
    );
    wrong.assert_code(1);
    assert!(
        wrong.stderr.contains("no finding with id \"ffffffff\""),
        "{}",
        wrong.stderr
    );
    let empty = tempfile::tempdir().expect("dir");
    let nowhere = Run::of(
        bin()
            .args(["explain", "--from"])
            .arg(empty.path())
            .output()
            .expect("explain runs"),
    );
    nowhere.assert_code(1);
    assert!(
        nowhere.stderr.contains("holds no exported data"),
        "{}",
        nowhere.stderr
    );
    let bad_since = Run::of(
        bin()
            .args(["explain", "--from"])
            .arg(s.out())
            .args(["--since", "last tuesday"])
            .output()
            .expect("explain runs"),
    );
    bad_since.assert_code(78);
    assert!(
        bad_since.stderr.contains("--since \"last tuesday\""),
        "{}",
        bad_since.stderr
    );
}

#[test]
fn a_rate_limit_finding_across_midnight_is_not_cut_by_the_next_export() {
    let config = BASE_CONFIG.replace(
        "error_code = \"error\"",
        "error_code = \"error\"\nretry_after = \"retry_after\"",
    );
    let s = Setup::new(&config, &[("daily", DAILY)]);
    // Twelve 429s in a minute, every 20 minutes from 21:00 to 00:20: eleven bursts, one
    // cluster (20 minutes apart is within the 30-minute gap) across two export windows.
    let start = chrono::DateTime::parse_from_rfc3339("2026-03-05T21:00:00Z").expect("time");
    let lines: Vec<String> = (0..11)
        .flat_map(|b| (0..12).map(move |i| (b, i)))
        .map(|(b, i)| {
            let t = start + chrono::Duration::minutes(b * 20) + chrono::Duration::seconds(i * 4);
            serde_json::json!({
                "ts": t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "status": 429,
                "method": "GET",
                "url": format!("https://api.example.com/v1/items/{i}"),
                "client": "app-1",
                "rid": format!("b{b:02}-{i:02}"),
                "retry_after": "30",
            })
            .to_string()
        })
        .collect();
    s.append("a.log", &lines);
    s.run("2026-03-06T01:00:00Z").assert_code(0);
    s.run("2026-03-07T01:00:00Z").assert_code(0);
    let found = findings(&s);
    assert_eq!(
        found.len(),
        1,
        "emitted once, not revised shorter: {found:?}"
    );
    let f = &found[0].1;
    assert_eq!(f["finding_type"], "rate_limited");
    assert_eq!(f["related_events_count"], "11");
    assert_eq!(f["first_seen_dt"], "2026-03-05T21:00:00.000Z");
    assert_eq!(f["last_seen_dt"], "2026-03-06T00:20:44.000Z");
    assert_eq!(rows(&s.out(), "rate_limit_bursts").len(), 11);
}
