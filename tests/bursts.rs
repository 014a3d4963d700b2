//! 429 bursts through the real binary: whole across a window's edge, re-emitted with a higher
//! revision (same event_uid) when late lines extend them, and never made of scattered 429s.

mod common;

use common::*;

const DAILY: &str = "schedule = \"0 0 * * *\"\nsources = [\"proxy\"]\n";

fn setup() -> Setup {
    let config = BASE_CONFIG.replace(
        "error_code = \"error\"",
        "error_code = \"error\"\nretry_after = \"retry_after\"\nratelimit_remaining = \"remaining\"",
    );
    Setup::new(&config, &[("daily", DAILY)])
}

/// A 429 (or every fourth a 503) every `step` seconds from `from`, `n` of them.
fn storm(from: &str, n: usize, step: i64, prefix: &str) -> Vec<String> {
    let start = chrono::DateTime::parse_from_rfc3339(from).expect("time");
    (0..n)
        .map(|i| {
            let t = start + chrono::Duration::seconds(i as i64 * step);
            serde_json::json!({
                "ts": t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "status": if i % 4 == 3 { 503 } else { 429 },
                "method": "GET",
                "url": format!("https://api.example.com/v1/items/{}", 1000 + i),
                "client": "app-1",
                "rid": format!("{prefix}{i:04}"),
                "retry_after": "30",
                "remaining": 0,
            })
            .to_string()
        })
        .collect()
}

fn bursts(s: &Setup) -> Vec<(String, Row)> {
    rows(&s.out(), "rate_limit_bursts")
}

#[test]
fn a_burst_across_a_window_edge_is_whole_and_goes_with_the_window_it_starts_in() {
    let s = setup();
    // 23:55 to 00:05, every 2 seconds: 300 answers, 225 of them 429s.
    s.append("a.log", &storm("2026-03-05T23:55:00Z", 300, 2, "x"));
    s.run("2026-03-05T23:58:00Z").assert_code(0);
    s.run("2026-03-06T01:00:00Z").assert_code(0);
    s.run("2026-03-07T01:00:00Z").assert_code(0);
    let found = bursts(&s);
    assert_eq!(found.len(), 1, "one burst, emitted once: {found:?}");
    let (key, b) = &found[0];
    assert!(key.contains("/dt=2026-03-05/"), "{key}");
    assert_eq!(b["start_time_dt"], "2026-03-05T23:55:00.000Z");
    assert_eq!(b["end_time_dt"], "2026-03-06T00:04:58.000Z");
    assert_eq!(b["count"], "225");
    assert_eq!(b["interleaved_503"], "75");
    assert_eq!(b["peak_per_minute"], "23");
    assert_eq!(b["api_operation"], "/v1/items/{id}");
    assert_eq!(b["retry_after_max_s"], "30");
    assert_eq!(b["ratelimit_remaining_min"], "0");
    assert_eq!(b["related_events_count"], "300");
    assert_eq!(b["related_event_uids"].split(' ').count(), 100);
    assert_eq!(b["revision"], "1");
}

#[test]
fn late_lines_extending_a_burst_re_emit_it_with_the_same_id_and_a_higher_revision() {
    let s = setup();
    s.append("a.log", &storm("2026-03-05T10:00:00Z", 120, 2, "a"));
    s.run("2026-03-06T01:00:00Z").assert_code(0);
    // The integration's second host logs late: more 429s of the same stream, just after.
    s.append("b.log", &storm("2026-03-05T10:04:00Z", 60, 2, "b"));
    s.run("2026-03-07T01:00:00Z").assert_code(0);
    let mut found = bursts(&s);
    found.sort_by(|a, b| a.1["revision"].cmp(&b.1["revision"]));
    assert_eq!(found.len(), 2, "{found:?}");
    let (k1, first) = &found[0];
    let (k2, second) = &found[1];
    assert_eq!(first["event_uid"], second["event_uid"], "the same burst");
    assert_eq!(
        (first["revision"].as_str(), second["revision"].as_str()),
        ("1", "2")
    );
    assert_eq!(
        (first["count"].as_str(), second["count"].as_str()),
        ("90", "135")
    );
    assert_eq!(second["end_time_dt"], "2026-03-05T10:05:58.000Z");
    assert!(k1.contains("/dt=2026-03-05/") && k1.contains("-e"), "{k1}");
    assert!(
        k2.contains("/dt=2026-03-05/") && k1 != k2,
        "the new revision is in a later object: {k2}"
    );
    // Nothing changes after: no third revision.
    s.run("2026-03-08T01:00:00Z").assert_code(0);
    assert_eq!(bursts(&s).len(), 2);
}

#[test]
fn scattered_429s_are_not_a_burst() {
    let s = setup();
    s.append("a.log", &storm("2026-03-05T10:00:00Z", 60, 120, "s"));
    s.run("2026-03-06T01:00:00Z").assert_code(0);
    assert!(bursts(&s).is_empty());
    assert!(
        !s.out().join("v1/rate_limit_events").exists(),
        "rate-limit events are never exported"
    );
    let counts = rows(&s.out(), "request_counts");
    let n429: i64 = counts
        .iter()
        .filter(|(_, r)| r["status_class"] == "429")
        .map(|(_, r)| r["count"].parse::<i64>().unwrap_or(0))
        .sum();
    assert_eq!(n429, 45, "every 429 still counted");
}
