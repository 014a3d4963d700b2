//! The http_log source end to end: combined and regex formats, hourly request counts with a
//! cap on operations, host mapping with route templates, malformed lines in the manifest.

mod common;

use common::*;

fn config(source: &str) -> String {
    format!(
        r#"
[store]
kind = "local"
path = "out"

[tenants.acme]
environment = "prod"

[tenants.acme-gh]
environment = "prod"

{source}
"#
    )
}

const JOB: &str = "schedule = \"0 0 * * MON\"\nsources = [\"proxy\"]\n";

fn sum_counts(s: &Setup, filter: impl Fn(&Row) -> bool) -> i64 {
    rows(&s.out(), "request_counts")
        .iter()
        .filter(|(_, r)| filter(r))
        .map(|(_, r)| r["count"].parse::<i64>().unwrap_or(0))
        .sum()
}

#[test]
fn combined_format_from_a_forward_proxy() {
    let s = Setup::new(
        &config(
            r#"
[sources.proxy]
kind = "http_log"
tenant = "acme"
format = "combined"
paths = ["logs/access.log*"]

[[sources.proxy.hosts]]
host = "api.github.com"
vendor = "github"
tenant = "acme-gh"
routes = ["/repos/{owner}/{repo}/releases/latest"]
"#,
        ),
        &[("weekly", JOB)],
    );
    let mut lines = Vec::new();
    for i in 0..100 {
        let status = match i % 10 {
            0 => 401,
            1 => 403,
            _ => 200,
        };
        lines.push(format!(
            r#"10.0.0.7 - - [05/Mar/2026:10:{:02}:00 +0100] "GET https://api.github.com/repos/acme/erp/releases/latest HTTP/1.1" {status} 512 "-" "release-bot/2.0""#,
            i % 60
        ));
    }
    lines.push("not a combined line".into());
    s.append("access.log", &lines);
    s.run("2026-03-09T01:00:00Z").assert_code(0);
    let denials = rows(&s.out(), "denials");
    assert_eq!(denials.len(), 20);
    let (key, d) = &denials[0];
    assert!(
        key.starts_with("v1/denials/vendor=github/tenant=acme-gh/dt=2026-03-05/"),
        "{key}"
    );
    assert_eq!(d["api_operation"], "/repos/{owner}/{repo}/releases/latest");
    assert_eq!(
        d["time_dt"].get(..13),
        Some("2026-03-05T09"),
        "+0100 read as such"
    );
    assert_eq!(d["user_agent"], "release-bot/2.0");
    assert_eq!(sum_counts(&s, |_| true), 100, "every line counted once");
    assert_eq!(sum_counts(&s, |r| r["status_class"] == "2xx"), 80);
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(s.out().join("v1/_exports/weekly/e000001.json")).expect("manifest"),
    )
    .expect("json");
    let malformed = &manifest["malformed"]["proxy"];
    assert_eq!(malformed["count"], 1);
    assert!(
        malformed["examples"][0]
            .as_str()
            .unwrap_or_default()
            .contains("access.log:101:"),
        "{malformed}"
    );
}

#[test]
fn regex_format_for_an_envoy_style_line() {
    let s = Setup::new(
        &config(
            r#"
[sources.proxy]
kind = "http_log"
tenant = "acme"
format = "regex"
pattern = '^\[(?P<time>[^\]]+)\] "(?P<method>\S+) (?P<path>\S+) \S+" (?P<status>\d+) .* "(?P<host>[^"]+)" client=(?P<client_id>\S+)'
paths = ["logs/envoy.log"]
vendor = "inventory"
"#,
        ),
        &[("weekly", JOB)],
    );
    s.append(
        "envoy.log",
        &[
            r#"[2026-03-05T10:00:00.123Z] "POST /api/v1/items HTTP/1.1" 403 0 12 "inventory.acme.example" client=inv-sync"#.into(),
            r#"[2026-03-05T10:00:01.000Z] "GET /api/v1/items/77 HTTP/1.1" 200 0 12 "inventory.acme.example" client=inv-sync"#.into(),
        ],
    );
    s.run("2026-03-09T01:00:00Z").assert_code(0);
    let denials = rows(&s.out(), "denials");
    assert_eq!(denials.len(), 1);
    let d = &denials[0].1;
    assert_eq!(
        (
            d["vendor"].as_str(),
            d["http_method"].as_str(),
            d["actor_app"].as_str()
        ),
        ("inventory", "POST", "inv-sync")
    );
    assert_eq!(d["time_dt"], "2026-03-05T10:00:00.123Z");
    assert_eq!(
        sum_counts(&s, |r| r["api_operation"] == "/api/v1/items/{id}"
            && r["http_method"] == "GET"),
        1
    );
}

#[test]
fn operations_past_the_cap_are_counted_as_other() {
    let s = Setup::new(
        &config(
            r#"
[sources.proxy]
kind = "http_log"
tenant = "acme"
paths = ["logs/*"]
max_operations_per_service = 3
[sources.proxy.fields]
time = "ts"
status = "status"
method = "method"
url = "url"
"#,
        ),
        &[("weekly", JOB)],
    );
    let lines: Vec<String> = (0..50)
        .map(|i| serde_json::json!({"ts": 1_772_704_800 + i, "status": 200, "method": "get", "url": format!("https://api.example.com/v{}/x", i % 10)}).to_string())
        .collect();
    s.append("a.log", &lines);
    s.run("2026-03-09T01:00:00Z").assert_code(0);
    let counts = rows(&s.out(), "request_counts");
    let mut ops: Vec<String> = counts
        .iter()
        .map(|(_, r)| r["api_operation"].clone())
        .collect();
    ops.sort();
    ops.dedup();
    assert_eq!(
        ops,
        vec!["/v0/x", "/v1/x", "/v2/x", "{other}"],
        "three operations, then the rest"
    );
    assert_eq!(sum_counts(&s, |r| r["api_operation"] == "{other}"), 35);
    assert_eq!(
        sum_counts(&s, |r| r["http_method"] == "GET"),
        50,
        "methods in upper case"
    );
    assert_eq!(
        counts[0].1["hour_dt"], "2026-03-05T10:00:00.000Z",
        "epoch seconds read as such"
    );
}

#[test]
fn a_line_too_long_to_keep_is_reported_and_reading_goes_on_exactly_once() {
    let s = Setup::standard();
    let huge = format!(
        "{{\"ts\":\"2026-03-05T10:00:00Z\",\"status\":403,\"message\":\"{}\"}}",
        "x".repeat(2 << 20)
    );
    s.append(
        "a.log",
        &[
            call("2026-03-05T09:00:00Z", 403, "before"),
            huge,
            call("2026-03-05T11:00:00Z", 403, "after"),
        ],
    );
    let r = s.run("2026-03-08T00:00:00Z");
    r.assert_code(0);
    assert!(
        r.stdout.contains("a.log:2: line longer than 1048576 bytes"),
        "{}",
        r.stdout
    );
    // The next collection starts after all three lines: nothing is read twice.
    s.append("a.log", &[call("2026-03-06T11:00:00Z", 403, "later")]);
    s.run("2026-03-09T01:00:00Z").assert_code(0);
    let mut ids: Vec<String> = rows(&s.out(), "denials")
        .into_iter()
        .map(|(_, r)| r["request_id"].clone())
        .collect();
    ids.sort();
    assert_eq!(ids, vec!["after", "before", "later"]);
}
