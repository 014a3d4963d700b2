//! The HTTP engine, proven on GitHub: a fake GitHub on loopback (tests/github_support) that
//! speaks the real wire format (the fixtures' payloads, Link paging, rate-limit and scope
//! headers, secondary limits, 5xx, slow and truncated answers), and the real binary against it.

mod common;
mod fake_http;
mod github_support;
#[path = "idp_support/keys.rs"]
mod keys;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::{Row, Run, Setup, rows};
use github_support::{Delivery, FakeGitHub};
use serde_json::{Value, json};

const TOKEN: &str = "ghp_T3stT0kenNeverToBeSeen0123456789";

/// Two days before the wall clock: runs can then step a day at a time without a clock in the
/// future, and every window they close holds the events.
fn t0() -> DateTime<Utc> {
    let now = Utc::now() - chrono::Duration::days(2);
    now - chrono::Duration::seconds(now.timestamp() % 3600)
}

fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The fake, with the org and repository the configuration names.
fn fake() -> FakeGitHub {
    let gh = FakeGitHub::start(TOKEN);
    gh.add_org("acme");
    gh.add_repo("acme/app");
    gh
}

fn config(gh: &FakeGitHub, http: &str) -> String {
    format!(
        r#"
[store]
kind = "local"
path = "out"

[http]
{http}

[tenants.acme-github]
environment = "prod"

[sources.gh]
kind = "github"
tenant = "acme-github"
org = "acme"
repos = ["acme/app"]
credential = "release-bot"
api_url = "{base}"

[[credentials]]
name = "release-bot"
environment = "prod"
token = "env:GH_TEST_TOKEN"
[[credentials.used_by]]
vendor = "github"
tenant = "acme-github"
"#,
        base = gh.base_url()
    )
}

/// The head of the configurations written whole by a test.
const LOCAL_STORE: &str = r#"
[store]
kind = "local"
path = "out"
[tenants.acme-github]
environment = "prod"
"#;

const DAILY: &str = r#"
schedule = "0 0 * * *"
sources = ["gh"]
"#;

fn setup(gh: &FakeGitHub, http: &str) -> Setup {
    Setup::new(&config(gh, http), &[("daily", DAILY)])
}

fn run_at(s: &Setup, now: DateTime<Utc>) -> Run {
    common::run(
        &s.config(),
        &["--now", &at(now)],
        &[("GH_TEST_TOKEN", TOKEN)],
    )
}

fn by_uid(rows: &[(String, Row)], column: &str) -> BTreeMap<String, Row> {
    let mut out = BTreeMap::new();
    for (_, r) in rows {
        let key = r[column].clone();
        assert!(
            out.insert(key.clone(), r.clone()).is_none(),
            "{column} {key} exported twice"
        );
    }
    out
}

/// The fake with org hook 1 and `n` deliveries (`deliveries`) ending 28 hours before
/// `t0()`, which is returned with the ids of the failed ones.
fn one_hook(n: i64) -> (FakeGitHub, DateTime<Utc>, BTreeSet<String>) {
    let gh = fake();
    gh.add_org_hook("acme", 1);
    let t = t0();
    let failed = deliveries(&gh, 1, 3, n, t - chrono::Duration::hours(28));
    (gh, t, failed)
}

/// Each of `want` (delivery ids) exported once, and nothing else.
fn assert_failures_exported_once(s: &Setup, want: &BTreeSet<String>) {
    let all = by_uid(&rows(&s.out(), "webhook_failures"), "delivery_uid");
    assert_eq!(&all.keys().cloned().collect::<BTreeSet<_>>(), want);
}

/// `n` deliveries on hook `hook`, one a minute back from `newest`, ids from `first_id` up;
/// every third failed.
fn deliveries(
    gh: &FakeGitHub,
    hook: i64,
    first_id: i64,
    n: i64,
    newest: DateTime<Utc>,
) -> BTreeSet<String> {
    let mut failed = BTreeSet::new();
    for k in 0..n {
        let id = first_id + k;
        let t = newest - chrono::Duration::minutes(n - 1 - k);
        let guid = format!("{:08x}-242f-11e5-81e1-c7b6966d2516", id / 2);
        let d = match id % 3 {
            0 => Delivery::failed(id, guid, t, "timed out", 0),
            1 => Delivery::ok(id, guid, t),
            _ => Delivery::failed(id, guid, t, "Invalid HTTP Response: 502", 502),
        };
        if id % 3 != 1 {
            failed.insert(id.to_string());
        }
        gh.add_delivery(hook, d);
    }
    failed
}

/// The fixture's audit events, moved to `t` (their own times are in 2020, past any lookback),
/// plus events that refuse or revoke access.
fn audit(gh: &FakeGitHub, t: DateTime<Utc>) {
    let fixture: Vec<Value> =
        serde_json::from_str(include_str!("fixtures/github/audit-log.json")).expect("fixture");
    let ms = |offset_s: i64| (t + chrono::Duration::seconds(offset_s)).timestamp_millis();
    for (i, mut e) in fixture.into_iter().enumerate() {
        e["@timestamp"] = json!(ms(i as i64));
        e["created_at"] = json!(ms(i as i64));
        gh.add_audit("acme", e);
    }
    gh.add_audit(
        "acme",
        json!({"@timestamp": ms(10), "created_at": ms(10), "_document_id": "ZGVuaWVk", "action": "org.oauth_app_access_denied",
               "actor": "mona-admin", "org": "acme", "oauth_application_name": "Release Notes Bot"}),
    );
    gh.add_audit(
        "acme",
        json!({"@timestamp": ms(20), "created_at": ms(20), "_document_id": "cmV2b2tlZA", "action": "oauth_authorization.destroy",
               "actor": "octocat", "org": "acme", "hashed_token": hashed(TOKEN),
               "token_scopes": "admin:org_hook,read:audit_log", "programmatic_access_type": "OAuth access token"}),
    );
}

fn hashed(token: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(token.as_bytes()))
}

#[test]
fn deliveries_and_audit_log_become_rows_once() {
    let gh = fake();
    gh.add_org_hook("acme", 1);
    gh.add_repo_hook("acme/app", 2);
    let t = t0();
    let mut failed = deliveries(&gh, 1, 1000, 250, t - chrono::Duration::hours(30));
    failed.extend(deliveries(&gh, 2, 5000, 7, t - chrono::Duration::hours(29)));
    audit(&gh, t - chrono::Duration::hours(30));
    let s = setup(&gh, "");
    run_at(&s, t).assert_code(0);

    let failures = by_uid(&rows(&s.out(), "webhook_failures"), "delivery_uid");
    assert_eq!(failures.keys().cloned().collect::<BTreeSet<_>>(), failed);
    let timeout = &failures["1002"];
    assert_eq!(timeout["webhook_uid"], "1");
    assert_eq!(timeout["error_type"], "timeout");
    assert_eq!(timeout["http_status"], "");
    assert_eq!(timeout["error_message"], "timed out");
    assert_eq!(
        timeout["delivery_group"],
        "000001f5-242f-11e5-81e1-c7b6966d2516"
    );
    assert_eq!(timeout["source"], "github.webhook_deliveries");
    assert_eq!(timeout["source_event_uid"], "1002");
    assert_eq!(timeout["latency_ms"], "10000");
    let origin = scopetrail::model::uid::Origin {
        dataset: scopetrail::model::Dataset::WebhookFailures,
        vendor: "github",
        tenant: "acme-github",
        environment: "prod",
        source: "github.webhook_deliveries",
    };
    assert_eq!(
        timeout["event_uid"],
        origin.event_uid("1002", None).to_string()
    );
    let bad_gateway = &failures["1004"];
    assert_eq!(
        (
            bad_gateway["http_status"].as_str(),
            bad_gateway["error_type"].as_str()
        ),
        ("502", "http_5xx")
    );
    assert_eq!(failures["5000"]["webhook_uid"], "2");

    let changes = by_uid(&rows(&s.out(), "changes"), "source_event_uid");
    assert_eq!(
        changes.keys().map(String::as_str).collect::<Vec<_>>(),
        vec!["ZGVuaWVk", "cmV2b2tlZA", "xJJFlFOhQ6b-5vaAFy9Rjw"],
        "team, token and refusal events are changes; org.create and repo.destroy are not"
    );
    let team = &changes["xJJFlFOhQ6b-5vaAFy9Rjw"];
    assert_eq!(team["action"], "team.add_member");
    assert_eq!(
        (team["target_type"].as_str(), team["target"].as_str()),
        ("user", "monalisa")
    );
    let revoked = &changes["cmV2b2tlZA"];
    assert_eq!(
        revoked["credential"], "release-bot",
        "hashed_token names the credential"
    );
    assert!(
        revoked["details"].contains(&format!("hashed_token={}", hashed(TOKEN))),
        "{}",
        revoked["details"]
    );
    assert!(revoked["details"].contains("programmatic_access_type=OAuth access token"));

    // Every call: the token as a bearer, scopetrail's user agent, Link URLs followed.
    let seen = gh.requests();
    assert!(
        seen.iter()
            .all(|r| r.authorization.as_deref() == Some(&format!("Bearer {TOKEN}")[..]))
    );
    assert!(seen.iter().all(|r| {
        r.user_agent
            .as_deref()
            .is_some_and(|u| u.starts_with("scopetrail/"))
    }));
    assert_eq!(
        gh.requests_matching("/orgs/acme/hooks/1/deliveries").len(),
        3,
        "250 deliveries: 3 pages"
    );
    assert!(
        gh.requests_matching("/orgs/acme/audit-log")
            .iter()
            .all(|r| r.path_and_query.contains("order=asc"))
    );

    // A rerun a day later reads only the top page and stages nothing again.
    let before = gh.requests().len();
    run_at(&s, t + chrono::Duration::days(1)).assert_code(0);
    let again = gh.requests()[before..].to_vec();
    assert_eq!(
        again
            .iter()
            .filter(|r| r.path_and_query.contains("/hooks/1/deliveries"))
            .count(),
        1
    );
    by_uid(&rows(&s.out(), "changes"), "source_event_uid");
    assert_failures_exported_once(&s, &failed);

    // New deliveries on top: exported once, next to the old ones.
    let mut all = failed;
    all.extend(deliveries(&gh, 1, 2000, 30, t + chrono::Duration::hours(1)));
    run_at(&s, t + chrono::Duration::days(2)).assert_code(0);
    assert_failures_exported_once(&s, &all);
}

#[test]
fn a_sweep_cut_short_resumes_where_it_stopped() {
    let (gh, t, failed) = one_hook(600);
    let s = setup(&gh, "max_attempts = 2");
    // Pages 1 and 2 of 6 come back, then the server fails.
    gh.fail_path_after("/hooks/1/deliveries", 2, 500);
    let first = run_at(&s, t);
    assert_ne!(first.code, 0);
    assert!(
        first
            .stderr
            .contains("github GET /orgs/acme/hooks/1/deliveries: 500"),
        "{}",
        first.stderr
    );
    assert!(
        first.stderr.contains("gave up after 2 attempts"),
        "{}",
        first.stderr
    );
    // What was read is kept: exported with the first window.
    let partial = by_uid(&rows(&s.out(), "webhook_failures"), "delivery_uid");
    assert_eq!(
        partial.len(),
        133,
        "pages 1 and 2: the newest 200 deliveries, of which 133 failed"
    );

    gh.clear_faults();
    // Meanwhile one more delivery arrived on top.
    let top = deliveries(&gh, 1, 603, 1, t + chrono::Duration::minutes(5));
    let before = gh.requests().len();
    run_at(&s, t + chrono::Duration::days(1)).assert_code(0);
    let pages: Vec<String> = gh.requests()[before..]
        .iter()
        .filter(|r| r.path_and_query.contains("/hooks/1/deliveries"))
        .map(|r| r.path_and_query.clone())
        .collect();
    assert!(
        pages[0].contains("cursor="),
        "the sweep resumes at its next page: {pages:?}"
    );
    assert_eq!(
        pages.len(),
        5,
        "4 pages to finish the sweep, 1 for the new top: {pages:?}"
    );
    let mut want = failed;
    want.extend(top);
    assert_failures_exported_once(&s, &want);
}

#[test]
fn retries_server_errors_limits_slow_and_truncated_answers() {
    let (gh, t, failed) = one_hook(300);
    let s = setup(&gh, "timeout = \"1s\"");
    gh.fail_next(2, 502);
    gh.secondary_limit_next(1, 1);
    gh.truncate_next(1);
    gh.slow_next(1, Duration::from_secs(3));
    let r = run_at(&s, t);
    r.assert_code(0);
    assert!(r.stdout.contains("retries"), "{}", r.stdout);
    assert_failures_exported_once(&s, &failed);
}

#[test]
fn pacing_keeps_within_the_budget_share_with_no_429() {
    let (gh, t, _) = one_hook(1400);
    let window = Duration::from_secs(2);
    // 30 a window, a quarter of it for scopetrail: at most 7 requests per window for 17.
    gh.set_rate_limit(30, window);
    let start = Instant::now();
    let s = setup(&gh, "budget_share = 0.25");
    let r = run_at(&s, t);
    r.assert_code(0);
    assert_eq!(gh.rate_limited(), 0, "scopetrail must never hit the limit");
    let mut per_window: BTreeMap<u128, u32> = BTreeMap::new();
    for seen in gh.requests() {
        *per_window
            .entry(seen.at.duration_since(start).as_millis() / window.as_millis())
            .or_default() += 1;
    }
    assert!(per_window.values().all(|n| *n <= 7), "{per_window:?}");
    assert!(
        per_window.len() >= 3,
        "the run waited for new windows: {per_window:?}"
    );
    assert!(r.stdout.contains("ms paced"), "{}", r.stdout);
}

#[test]
fn max_pages_splits_a_sweep_across_runs_and_the_mark_moves_only_at_its_end() {
    let gh = fake();
    gh.add_org_hook("acme", 1);
    // A day earlier than the other tests: a fourth run exports what the third staged.
    let t = t0() - chrono::Duration::days(1);
    let failed = deliveries(&gh, 1, 3, 450, t - chrono::Duration::hours(28));
    let s = setup(&gh, "max_pages = 2");
    let mut requests = Vec::new();
    for day in 0..3 {
        let before = gh.requests().len();
        run_at(&s, t + chrono::Duration::days(day)).assert_code(0);
        requests.push(
            gh.requests()[before..]
                .iter()
                .filter(|r| r.path_and_query.contains("/hooks/1/deliveries"))
                .map(|r| r.path_and_query.clone())
                .collect::<Vec<_>>(),
        );
    }
    // 5 pages: 2, then 2 more from where the sweep stopped, then the last one and a look
    // at the top, which is now the mark.
    assert_eq!(
        requests.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![2, 2, 2],
        "{requests:?}"
    );
    assert!(requests[1][0].contains("cursor=") && requests[2][0].contains("cursor="));
    assert!(!requests[2][1].contains("cursor="), "{requests:?}");
    run_at(&s, t + chrono::Duration::days(3)).assert_code(0);
    assert_failures_exported_once(&s, &failed);
}

#[test]
fn a_wait_past_the_deadline_ends_the_source_for_this_run() {
    let (gh, t, _) = one_hook(10);
    let s = setup(&gh, "deadline = \"2s\"");
    gh.secondary_limit_next(1, 600);
    let r = run_at(&s, t);
    assert_eq!(r.code, 75, "{}", r.stderr);
    assert!(
        r.stderr.contains("github GET /orgs/acme/hooks: 403, rate limited; waiting 600s more would pass the run's deadline"),
        "{}",
        r.stderr
    );
    gh.clear_faults();
    run_at(&s, t + chrono::Duration::days(1)).assert_code(0);
    assert_eq!(rows(&s.out(), "webhook_failures").len(), 7);
}

#[test]
fn a_cursor_that_does_not_advance_stops_that_list_only() {
    let (gh, t, _) = one_hook(300);
    audit(&gh, t - chrono::Duration::hours(28));
    gh.repeat_cursor("/hooks/1/deliveries");
    let s = setup(&gh, "");
    let r = run_at(&s, t);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("cursor does not advance"), "{}", r.stderr);
    assert!(gh.requests_matching("/hooks/1/deliveries").len() <= 3);
    assert_eq!(
        rows(&s.out(), "changes").len(),
        3,
        "the audit log was still read"
    );
    // The next run gives up the stuck sweep and reads the top again, so newer deliveries
    // are not held up behind the page that never comes.
    let before = gh.requests().len();
    let again = run_at(&s, t + chrono::Duration::days(1));
    assert_ne!(again.code, 0);
    let tops = gh.requests()[before..]
        .iter()
        .filter(|r| {
            r.path_and_query.contains("/hooks/1/deliveries")
                && !r.path_and_query.contains("cursor=")
        })
        .count();
    assert_eq!(tops, 1, "{}", again.stderr);
}

#[test]
fn a_missing_scope_or_a_bad_token_is_named_in_one_line() {
    let (gh, t, _) = one_hook(10);
    audit(&gh, t - chrono::Duration::hours(28));
    gh.set_granted_scopes(&["read:audit_log"]);
    let s = setup(&gh, "");
    let r = run_at(&s, t);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("github GET /orgs/acme/hooks: 403: insufficient scope: the token needs the scope admin:org_hook; it has read:audit_log"),
        "{}",
        r.stderr
    );
    assert_eq!(
        rows(&s.out(), "changes").len(),
        3,
        "the audit log was still read"
    );

    let wrong = common::run(
        &s.config(),
        &["--now", &at(t + chrono::Duration::days(1))],
        &[("GH_TEST_TOKEN", "ghp_wrongWrongWrong")],
    );
    assert_ne!(wrong.code, 0);
    assert!(
        wrong
            .stderr
            .contains("401: the token is expired, revoked or invalid (Bad credentials)"),
        "{}",
        wrong.stderr
    );
}

/// Every file under `dir` and both outputs, searched for the token.
fn assert_no_secret(dir: &Path, runs: &[&Run]) {
    for r in runs {
        assert!(
            !r.stdout.contains(TOKEN) && !r.stderr.contains(TOKEN),
            "token in output"
        );
        assert!(
            !r.stderr.contains(&TOKEN[4..20]),
            "part of the token in output"
        );
    }
    for entry in walkdir::WalkDir::new(dir).into_iter().flatten() {
        if !entry.file_type().is_file() {
            continue;
        }
        let raw = std::fs::read(entry.path()).expect("read");
        let mut text = raw.clone();
        if entry.path().to_string_lossy().ends_with(".gz") {
            let mut plain = Vec::new();
            let _ = std::io::Read::read_to_end(
                &mut flate2::read::MultiGzDecoder::new(&raw[..]),
                &mut plain,
            );
            text = plain;
        }
        let text = String::from_utf8_lossy(&text);
        assert!(!text.contains(TOKEN), "token in {}", entry.path().display());
    }
}

#[test]
fn the_token_never_reaches_a_file_or_a_log() {
    let (gh, t, _) = one_hook(120);
    audit(&gh, t - chrono::Duration::hours(28));
    let s = setup(&gh, "");
    gh.fail_next(1, 503);
    gh.secondary_limit_next(1, 1);
    let verbose = common::run(
        &s.config(),
        &["--now", &at(t), "-vv"],
        &[("GH_TEST_TOKEN", TOKEN), ("SCOPETRAIL_LOG", "trace")],
    );
    verbose.assert_code(0);
    gh.set_granted_scopes(&["repo"]);
    let denied = run_at(&s, t + chrono::Duration::days(1));
    assert_ne!(denied.code, 0);
    assert!(!rows(&s.out(), "webhook_failures").is_empty());
    assert_no_secret(s.dir.path(), &[&verbose, &denied]);
}

#[test]
fn saved_responses_feed_the_same_code() {
    let s = Setup::new(
        &format!(
            r#"{LOCAL_STORE}
[sources.gh]
kind = "github"
tenant = "acme-github"
org = "acme"
saved = "saved"
"#
        ),
        &[("daily", DAILY)],
    );
    let t = t0();
    let saved = s.dir.path().join("saved/orgs/acme");
    std::fs::create_dir_all(saved.join("hooks/7")).expect("dirs");
    std::fs::write(
        saved.join("hooks.json"),
        r#"[{"id": 7, "config": {"url": "https://ci.example.com/hook?token=abc"}}]"#,
    )
    .expect("hooks");
    // `gh api --paginate` prints the pages one after another: the fixture, then a page of
    // failures. The fixture's items are older than the lookback and are not read.
    let fixture = include_str!("fixtures/github/hook-delivery-items.json");
    let failure = |id: i64, minutes: i64| {
        json!({"id": id, "guid": "0b989ba4-242f-11e5-81e1-c7b6966d2516",
               "delivered_at": at(t - chrono::Duration::hours(26) - chrono::Duration::minutes(minutes)),
               "redelivery": id % 2 == 0, "duration": 10.0, "status": "timed out", "status_code": 0,
               "event": "issues", "action": "opened", "installation_id": 123, "repository_id": 456, "throttled_at": null})
    };
    let page = Value::Array(vec![failure(22, 0), failure(21, 5)]);
    std::fs::write(
        saved.join("hooks/7/deliveries.json"),
        format!("{page}\n{fixture}"),
    )
    .expect("deliveries");
    std::fs::write(
        saved.join("audit-log.json"),
        include_str!("fixtures/github/audit-log.json"),
    )
    .expect("audit");
    run_at(&s, t).assert_code(0);
    let failures = by_uid(&rows(&s.out(), "webhook_failures"), "delivery_uid");
    assert_eq!(
        failures.keys().map(String::as_str).collect::<Vec<_>>(),
        vec!["21", "22"]
    );
    assert_eq!(
        failures["22"]["url"], "https://ci.example.com/hook",
        "query removed"
    );
    assert_eq!(failures["22"]["webhook_event"], "issues.opened");
    assert_eq!(failures["22"]["redelivery"], "true");
    // Read again the next day: nothing staged twice.
    run_at(&s, t + chrono::Duration::days(1)).assert_code(0);
    assert_eq!(rows(&s.out(), "webhook_failures").len(), 2);

    // A page cut short is named by file and page.
    std::fs::write(
        saved.join("hooks/7/deliveries.json"),
        format!("{page}\n[{{\"id\": 23, \"gu"),
    )
    .expect("cut");
    let r = run_at(&s, t + chrono::Duration::days(2));
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("deliveries.json: page 2"), "{}", r.stderr);
}

#[test]
fn validate_names_what_a_github_source_lacks() {
    let s = Setup::new(
        &format!(
            r#"{LOCAL_STORE}
[sources.gh]
kind = "github"
tenant = "acme-github"
repos = ["acme"]
api_url = "http://api.github.com"
[sources.gh2]
kind = "github"
tenant = "acme-github"
org = "acme"
credential = "nobody"
[sources.gh3]
kind = "github"
tenant = "acme-github"
org = "acme"
credential = "no-token"
[[credentials]]
name = "no-token"
environment = "prod"
client_id = "Iv1.abc"
"#
        ),
        &[(
            "daily",
            "schedule = \"0 0 * * *\"\nsources = [\"gh\", \"gh2\", \"gh3\"]\n",
        )],
    );
    let r = common::validate(&s.config());
    assert_eq!(r.code, 78, "{}", r.stderr);
    let said = format!("{}{}", r.stdout, r.stderr);
    for want in [
        "`acme` is not owner/repo",
        "api_url: http://api.github.com: plain http is refused except to loopback",
        "name the `credential`",
        "no [[credentials]] entry named `nobody` with environment = \"prod\"",
        "credential `no-token` has no token",
    ] {
        assert!(said.contains(want), "missing {want:?} in\n{said}");
    }
}

/// A GitHub App's webhook deliveries, read with a JWT the App's private key signs (a secret
/// reference to its PEM), and an enterprise's audit log.
#[test]
fn app_deliveries_with_the_apps_jwt_and_the_enterprise_audit_log() {
    let keys = keys::TestKeys::generate();
    let gh = FakeGitHub::start(TOKEN);
    gh.set_app("123456", &keys.jwks());
    let t = t0();
    let mut failed = BTreeSet::new();
    for i in 0..120 {
        let at = t - chrono::Duration::hours(20) + chrono::Duration::minutes(i);
        let guid = format!("{i:08x}-aaaa-11e5-81e1-c7b6966d2516");
        let d = if i % 4 == 0 {
            failed.insert((9000 + i).to_string());
            Delivery::failed(9000 + i, guid, at, "Invalid HTTP Response: 503", 503)
        } else {
            Delivery::ok(9000 + i, guid, at)
        };
        gh.add_app_delivery(d);
    }
    let ms = |h: i64| (t - chrono::Duration::hours(h)).timestamp_millis();
    gh.add_enterprise_audit(
        "acme-corp",
        json!({"@timestamp": ms(10), "created_at": ms(10), "_document_id": "ZW50LXBhdA", "action": "personal_access_token.access_revoked",
               "actor": "ent-admin", "business": "acme-corp", "user": "release-bot-user"}),
    );
    gh.add_enterprise_audit(
        "acme-corp",
        json!({"@timestamp": ms(9), "created_at": ms(9), "_document_id": "ZW50LXJlcG8", "action": "repo.create",
               "actor": "octocat", "business": "acme-corp", "repo": "acme/new"}),
    );
    let config = format!(
        r#"{LOCAL_STORE}
[sources.gh]
kind = "github"
tenant = "acme-github"
enterprise = "acme-corp"
app_id = 123456
app_private_key = "file:app.pem"
credential = "release-bot"
api_url = "{base}"

[[credentials]]
name = "release-bot"
environment = "prod"
token = "env:GH_TEST_TOKEN"
[[credentials.used_by]]
vendor = "github"
tenant = "acme-github"
"#,
        base = gh.base_url()
    );
    let s = Setup::new(&config, &[("daily", DAILY)]);
    let pem = keys.rsa_private_pem();
    std::fs::write(s.dir.path().join("app.pem"), &pem).expect("pem");
    let run = run_at(&s, t);
    run.assert_code(0);

    let failures = by_uid(&rows(&s.out(), "webhook_failures"), "delivery_uid");
    assert_eq!(failures.keys().cloned().collect::<BTreeSet<_>>(), failed);
    assert!(failures.values().all(|r| r["webhook_uid"] == "app/123456"));
    let changes = by_uid(&rows(&s.out(), "changes"), "source_event_uid");
    assert_eq!(
        changes.keys().collect::<Vec<_>>(),
        ["ZW50LXBhdA"],
        "repo.create is no change of ours"
    );
    assert!(changes["ZW50LXBhdA"]["details"].contains("business=acme-corp"));
    let enterprise = gh.requests_matching("/enterprises/acme-corp/audit-log");
    assert!(!enterprise.is_empty());
    assert!(
        enterprise
            .iter()
            .all(|r| r.authorization.as_deref() == Some(&format!("Bearer {TOKEN}")[..]))
    );

    // Every App call carried a JWT of the App: RS256, iss the App id, at most 10 minutes.
    let jwts = gh.app_jwts();
    assert!(!jwts.is_empty());
    for jwt in &jwts {
        let claims: Value = {
            use base64::Engine;
            let part = jwt.split('.').nth(1).expect("claims");
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part)
                .expect("base64");
            serde_json::from_slice(&bytes).expect("claims JSON")
        };
        assert_eq!(claims["iss"], 123456);
        assert!(claims["exp"].as_i64().unwrap_or(0) - claims["iat"].as_i64().unwrap_or(0) <= 600);
    }
    // Neither the key nor a JWT is written anywhere (exports, staging, state, output).
    let key_body: String = pem.lines().nth(1).expect("a PEM line").to_string();
    let mut secrets: Vec<&str> = jwts.iter().map(String::as_str).collect();
    secrets.extend([key_body.as_str(), TOKEN]);
    let pem_file = s.dir.path().join("app.pem");
    let saved_pem = std::fs::read(&pem_file).expect("pem");
    std::fs::remove_file(&pem_file).expect("the key file itself aside");
    common::assert_no_secret_in(s.dir.path(), &secrets, &[&run.stdout, &run.stderr]);
    std::fs::write(&pem_file, saved_pem).expect("pem");

    // Another App's key: GitHub refuses the JWT, the run says so in one line.
    let other = keys::TestKeys::generate();
    std::fs::write(s.dir.path().join("app.pem"), other.rsa_private_pem()).expect("pem");
    let refused = run_at(&s, t + chrono::Duration::hours(2));
    assert_ne!(refused.code, 0);
    refused.says("GET /app/hook/deliveries").says("401");
    // A file that is no key is named, and never echoed.
    std::fs::write(s.dir.path().join("app.pem"), "not-a-key-but-maybe-a-secret").expect("pem");
    let bad = run_at(&s, t + chrono::Duration::hours(3));
    assert_ne!(bad.code, 0);
    bad.says("app_private_key is not an RSA private key in PEM");
    assert!(
        !bad.stdout.contains("not-a-key-but-maybe-a-secret")
            && !bad.stderr.contains("not-a-key-but-maybe-a-secret")
    );
}
