//! The HTML report each export writes beside its data (`reports/<job>/<window>.html`), looked
//! at in headless Chromium: it renders without console errors, shows the export's findings,
//! draws one chart point per busy hour, runs nothing a vendor string carries, and fits a
//! phone. `scopetrail report` rebuilds the same page from the exported data.

mod browser;
mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use browser::Browser;
use common::*;
use serde_json::Value;

/// Carried in an error message and a client id: it must be shown as text and never run.
const HOSTILE: &str = r#"</code><script>window.__pwned=1;document.title='pwned'</script><img src=x onerror="window.__pwned=2">"#;
const HOSTILE_APP: &str = r#"app-<svg onload="window.__pwned=3">"#;

const REPORT: &str = "reports/weekly/20260302T000000Z_20260309T000000Z.html";

/// Refusals every 20 minutes from 09:00 (four hours of them), a 429 storm of a hostile
/// client, and successes around them.
fn hostile_week(s: &Setup) -> (BTreeSet<String>, usize) {
    let mut lines = Vec::new();
    let mut denial_hours = BTreeSet::new();
    for i in 0..12 {
        let t = chrono::DateTime::parse_from_rfc3339("2026-03-05T09:00:00Z").expect("time")
            + chrono::Duration::minutes(20 * i);
        denial_hours.insert(t.format("%Y-%m-%dT%H").to_string());
        let mut line: Value = serde_json::from_str(&call(
            &t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            403,
            &format!("d{i:03}"),
        ))
        .expect("json");
        line["message"] = Value::String(HOSTILE.to_string());
        lines.push(line.to_string());
    }
    for i in 0..40 {
        lines.push(
            serde_json::json!({
                "ts": format!("2026-03-06T14:00:{i:02}.000Z"),
                "status": if i % 4 == 3 { 503 } else { 429 },
                "method": "GET",
                "url": format!("https://api.example.com/v1/items/{i}"),
                "client": HOSTILE_APP,
                "rid": format!("s{i:03}"),
            })
            .to_string(),
        );
    }
    for i in 0..24 {
        lines.push(call(
            &format!("2026-03-04T{i:02}:30:00.000Z"),
            200,
            &format!("ok{i}"),
        ));
    }
    s.append("a.log", &lines);
    // One burst: one point in the 429 row.
    (denial_hours, 1)
}

fn page_of(out: &Path) -> (PathBuf, String) {
    let path = out.join(REPORT);
    let page = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("no report at {}: {e}", path.display()));
    (path, page)
}

fn screenshot(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.png"))
}

async fn count(b: &Browser, selector: &str) -> u64 {
    b.eval(&format!(
        "return document.querySelectorAll({}).length",
        serde_json::to_string(selector).expect("json")
    ))
    .await
    .as_u64()
    .expect("a count")
}

/// Opens the page and checks it logged no error while loading.
async fn open_cleanly(b: &Browser, page: &Path) {
    b.open(page).await;
    let errors = console_errors(b).await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
}

/// Errors the page logged.
async fn console_errors(b: &Browser) -> Vec<Value> {
    b.console()
        .await
        .into_iter()
        .filter(|e| e["level"] == "SEVERE")
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_report_shows_the_findings_draws_the_failures_and_runs_no_vendor_string() {
    let s = Setup::standard();
    let (denial_hours, bursts) = hostile_week(&s);
    let run = s.run("2026-03-09T01:00:00Z");
    run.assert_code(0);
    let (path, page) = page_of(&s.out());
    run.says(&format!("report   {}", path.display()));

    // Escaped in the bytes, not merely inert in a browser.
    let lower = page.to_ascii_lowercase();
    assert!(!lower.contains("<script"), "a script element in the page");
    assert!(!lower.contains("<img"), "an img element in the page");
    assert!(!lower.contains("<svg onload"), "markup from a client id");
    assert!(page.contains("&lt;script&gt;window.__pwned=1"));
    assert!(page.contains("Content-Security-Policy"));

    let findings: Vec<Row> = rows(&s.out(), "findings")
        .into_iter()
        .map(|(_, r)| r)
        .filter(|r| r["severity"] == "failure")
        .collect();
    assert_eq!(findings.len(), 2, "{findings:?}");

    let Some(b) = Browser::start().await else {
        return;
    };
    open_cleanly(&b, &path).await;
    assert_eq!(
        b.eval("return document.title").await,
        "Integration failures 2026-03-02 .. 2026-03-09 (job weekly)"
    );

    // The export's findings, each with its title, explanation and fix.
    assert_eq!(count(&b, "#findings article.finding").await, 2);
    let shown = b
        .eval("return [...document.querySelectorAll('#findings article.finding')].map(a => a.id + '\\n' + a.innerText)")
        .await;
    let shown: Vec<String> = shown
        .as_array()
        .expect("texts")
        .iter()
        .map(|v| v.as_str().unwrap_or("").to_string())
        .collect();
    for f in &findings {
        let text = shown
            .iter()
            .find(|t| t.starts_with(&format!("f-{}\n", f["event_uid"])))
            .unwrap_or_else(|| panic!("finding {} not shown: {shown:?}", f["event_uid"]));
        assert!(text.contains(&f["title"]), "{text}");
        let first_step = f["remediation"].split("; then ").next().unwrap_or("");
        assert!(text.contains(first_step), "{first_step} not in {text}");
        assert!(text.contains("Timeline"), "{text}");
    }

    // One bar per hour with denials, one for the burst, on the vendor's chart.
    let lane = "svg.lane[data-vendor=example]";
    assert_eq!(
        count(&b, &format!("{lane} [data-series=denials] rect")).await,
        denial_hours.len() as u64
    );
    assert_eq!(
        count(&b, &format!("{lane} [data-series='429s'] rect")).await,
        bursts as u64
    );
    assert_eq!(
        count(&b, &format!("{lane} [data-series=webhook_failures] rect")).await,
        0
    );
    let drawn: u64 = b
        .eval(&format!(
            "return [...document.querySelectorAll('{lane} [data-series=denials] rect')].reduce((n, r) => n + Number(r.dataset.count), 0)"
        ))
        .await
        .as_u64()
        .expect("a sum");
    assert_eq!(drawn, 12, "every denial is in a bar");

    // The vendor strings are text on the page, and nothing they carry ran.
    assert_eq!(b.eval("return window.__pwned === undefined").await, true);
    assert_eq!(count(&b, "script").await, 0);
    assert_eq!(count(&b, "img").await, 0);
    let text = b.eval("return document.body.innerText").await;
    let text = text.as_str().expect("text");
    assert!(
        text.contains("<script>window.__pwned=1"),
        "the message is shown as text"
    );
    assert!(text.contains(HOSTILE_APP), "the client id is shown as text");

    // Readable on a phone: nothing wider than the screen but the charts' own scroll boxes.
    b.resize(390, 844).await;
    let (page_w, screen_w) = (
        b.eval("return document.documentElement.scrollWidth").await,
        b.eval("return window.innerWidth").await,
    );
    assert!(
        page_w.as_u64() <= screen_w.as_u64(),
        "the page is {page_w} px wide on a {screen_w} px screen"
    );
    b.screenshot(&screenshot("report-hostile-phone")).await;
    assert!(console_errors(&b).await.is_empty());
    b.close().await;

    // Rebuilt from the exported data: the same page, byte for byte.
    let rebuilt = s.dir.path().join("rebuilt.html");
    let again = run_report(
        &s,
        &[
            "--from",
            &s.out().to_string_lossy(),
            "--out",
            &rebuilt.to_string_lossy(),
        ],
    );
    again.assert_code(0);
    assert_eq!(std::fs::read_to_string(&rebuilt).expect("rebuilt"), page);
}

fn run_report(s: &Setup, args: &[&str]) -> Run {
    let mut cmd = bin();
    cmd.arg("report").args(args).current_dir(s.dir.path());
    Run::of(cmd.output().expect("scopetrail runs"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_report_in_chromium() {
    let dir = demo_copy();
    let config = dir.path().join("scopetrail.toml");
    run(&config, &[], &[]).assert_code(0);
    let out = dir.path().join("out");
    let (path, page) = page_of(&out);
    let findings = rows(&out, "findings");
    let failures = findings
        .iter()
        .filter(|(_, r)| r["severity"] == "failure")
        .count();
    assert_eq!(failures, 8);
    // Most important first: high confidence, then by failures.
    let first = page
        .find("gl:journal:write missing in prod")
        .expect("the journal finding");
    let medium = page.find("medium</span>").expect("a medium finding");
    assert!(first < medium, "high confidence findings come first");

    let Some(b) = Browser::start().await else {
        return;
    };
    open_cleanly(&b, &path).await;
    assert_eq!(
        count(&b, "#findings article.finding").await,
        failures as u64
    );
    // A chart per vendor that failed or changed, marks from the audit logs and status page.
    let lanes = b
        .eval("return [...document.querySelectorAll('svg.lane')].map(s => s.dataset.vendor)")
        .await;
    let lanes: BTreeSet<&str> = lanes
        .as_array()
        .expect("lanes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for vendor in ["oracle_fusion", "inventory", "github", "okta", "stripe"] {
        assert!(lanes.contains(vendor), "no chart for {vendor}: {lanes:?}");
    }
    let changes = rows(&out, "changes")
        .into_iter()
        .filter(|(_, r)| {
            r["vendor"] == "github"
                && r["source"] != "scopetrail.drift"
                && r["time_dt"].as_str() < "2026-03-09"
        })
        .count();
    assert_eq!(
        count(
            &b,
            "svg.lane[data-vendor=github] [data-marks=change] circle"
        )
        .await,
        changes as u64
    );
    assert_eq!(
        count(
            &b,
            "svg.lane[data-vendor=github] [data-marks=incident] rect"
        )
        .await,
        2,
        "the two incidents of the status page"
    );
    assert!(count(&b, "#top table.bars tr").await >= 5);
    b.screenshot(&screenshot("report-demo")).await;
    b.resize(390, 844).await;
    b.screenshot(&screenshot("report-demo-phone")).await;
    b.close().await;
}

#[test]
fn report_names_what_it_cannot_find() {
    // Two jobs over one source: the daily one exports the denials, the weekly one the rest.
    let daily = "schedule = \"0 0 * * *\"\nsources = [\"proxy\"]\ndatasets = [\"denials\"]\n";
    let weekly = "schedule = \"0 0 * * MON\"\nsources = [\"proxy\"]\ndatasets = [\"request_counts\", \"findings\", \"finding_events\"]\n";
    let s = Setup::new(BASE_CONFIG, &[("weekly", weekly), ("daily", daily)]);
    s.append("a.log", &[call("2026-03-05T09:00:00.000Z", 403, "r1")]);
    // Nothing exported yet: the folder has no v1/.
    run_report(&s, &["--from", "out"])
        .assert_code(1)
        .complains("no exported data");
    s.run("2026-03-09T01:00:00Z").assert_code(0);
    run_report(&s, &["--from", "out"])
        .assert_code(78)
        .complains("several jobs exported here (daily, weekly): choose one with --job");
    run_report(&s, &["--from", "out", "--job", "nightly"])
        .assert_code(78)
        .complains("found daily, weekly");
    let weekly = ["--from", "out", "--job", "weekly"];
    run_report(&s, &[&weekly[..], &["--window", "yesterday"]].concat())
        .assert_code(78)
        .complains("--window \"yesterday\"");
    run_report(&s, &[&weekly[..], &["--window", "2026-04-01"]].concat())
        .assert_code(1)
        .complains("20260302T000000Z_20260309T000000Z");
    // A day inside a window picks it; a range no export covers is still drawn. The weekly
    // page reads the weekly job's objects only: the denial is the daily job's.
    run_report(
        &s,
        &[&weekly[..], &["--window", "2026-03-05", "--out", "-"]].concat(),
    )
    .assert_code(0)
    .says("<title>Integration failures 2026-03-02 .. 2026-03-09 (job weekly)</title>")
    .says("<b>0</b> denials");
    run_report(
        &s,
        &[
            &weekly[..],
            &["--window", "2026-03-05..2026-03-07", "--out", "-"],
        ]
        .concat(),
    )
    .assert_code(0)
    .says("a range no single export covers");
    // The daily job's window of that day, from its own objects.
    let day = run_report(
        &s,
        &["--from", "out", "--job", "daily", "--window", "2026-03-05"],
    );
    day.assert_code(0)
        .says("daily-20260305T000000Z_20260306T000000Z.html");
    let page = std::fs::read_to_string(
        s.dir
            .path()
            .join("daily-20260305T000000Z_20260306T000000Z.html"),
    )
    .expect("written to the working folder");
    assert!(page.contains("<b>1</b> denial<"), "one denial that day");
}
