//! The README's first command: the demo job on the bundled sample data, twice.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;

use common::*;

/// The truth, computed from the sample logs without scopetrail's reader: request ids of the
/// 401/403 lines of the week before the demo's pinned clock, per UTC day.
fn denials_in_sample(logs: &Path) -> BTreeMap<String, String> {
    let since = chrono::DateTime::parse_from_rfc3339("2026-03-02T01:00:00Z").expect("time");
    let mut truth = BTreeMap::new();
    for entry in std::fs::read_dir(logs).expect("logs") {
        let path = entry.expect("entry").path();
        let file = std::fs::File::open(&path).expect("log");
        let reader: Box<dyn BufRead> = if path.extension().is_some_and(|e| e == "gz") {
            Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(file)))
        } else {
            Box::new(BufReader::new(file))
        };
        for line in reader.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line.expect("line")) else {
                continue; // the sample's deliberately truncated line
            };
            let status = v["response"]["status"].as_i64().unwrap_or_default();
            let ts = chrono::DateTime::parse_from_rfc3339(v["ts"].as_str().unwrap_or_default())
                .expect("ts");
            if (status == 401 || status == 403) && ts >= since {
                truth.insert(
                    v["request"]["id"].as_str().unwrap_or_default().to_string(),
                    ts.format("%Y-%m-%d").to_string(),
                );
            }
        }
    }
    truth
}

#[test]
fn demo_exports_the_sample_week_once() {
    let dir = demo_copy();
    let config = dir.path().join("scopetrail.toml");
    let out = dir.path().join("out");

    let first = run(&config, &[], &[]);
    first.assert_code(0);
    assert!(first.stdout.contains("export e000001"), "{}", first.stdout);
    assert!(first.stdout.contains("(complete)"), "{}", first.stdout);
    assert!(
        first.stdout.contains("1 malformed input skipped"),
        "{}",
        first.stdout
    );
    assert!(
        first.stdout.contains("erp-proxy.log-20260305.gz:2"),
        "the malformed line is named with file and line: {}",
        first.stdout
    );

    // Every denial of the sample, exactly once, under the dt of its day.
    let truth = denials_in_sample(&dir.path().join("logs"));
    assert_eq!(truth.len(), 66, "the sample has 66 denials in the window");
    let exported: Vec<(String, Row)> = rows(&out, "denials")
        .into_iter()
        .filter(|(_, r)| r["source"] == "http_log")
        .collect();
    let mut seen = BTreeMap::new();
    for (key, row) in &exported {
        let rid = row["request_id"].clone();
        let day = truth
            .get(&rid)
            .unwrap_or_else(|| panic!("exported a row not in the input: {rid}"));
        assert!(
            key.contains(&format!("/dt={day}/")),
            "{key} is not under dt={day}"
        );
        assert!(
            seen.insert(rid, key.clone()).is_none(),
            "a row exported twice"
        );
    }
    assert_eq!(seen.len(), truth.len(), "rows lost");

    // The layout of DESIGN §5.
    let fusion = "v1/denials/vendor=oracle_fusion/tenant=acme-fusion/dt=2026-03-05/denials-weekly-e000001.csv.gz";
    assert!(out.join(fusion).is_file());
    assert!(out.join("v1/_exports/weekly/e000001.json").is_file());
    assert!(
        out.join("v1/_windows/weekly/20260302T000000Z_20260309T000000Z.json")
            .is_file()
    );
    let fusion_rows = read_csv(&gunzip(&out.join(fusion)));
    assert_eq!(
        fusion_rows.len(),
        37,
        "DESIGN §1's 37 denials for erp-sync in prod"
    );
    let r = &fusion_rows[0];
    assert_eq!(r["credential"], "erp-sync");
    assert_eq!(r["environment"], "prod");
    assert_eq!(
        r["credential_uid"],
        "https://idcs-acme.identity.oraclecloud.com#erp-sync"
    );
    assert_eq!(r["auth_error"], "insufficient_scope");
    assert_eq!(r["required_scope"], "gl:journal:write");
    assert_eq!(r["time_dt"], "2026-03-05T09:02:50.779Z");

    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join("v1/_exports/weekly/e000001.json")).expect("manifest"),
    )
    .expect("manifest JSON");
    assert_eq!(manifest["complete"], true);
    let listed = manifest["objects"].as_array().expect("objects");
    let rows_of = |dataset: &str| -> u64 {
        listed
            .iter()
            .filter(|o| o["dataset"] == dataset)
            .map(|o| o["rows"].as_u64().unwrap_or_default())
            .sum()
    };
    assert_eq!(rows_of("denials"), 66 + 12, "the log's and Okta's");
    // The saved tokens' snapshots, and the drift that explains prod's 403s.
    assert_eq!(rows_of("token_snapshots"), 2);
    let drift: Vec<(String, String, String)> = common::rows(&out, "changes")
        .into_iter()
        .filter(|(_, r)| r["source"] == "scopetrail.drift")
        .map(|(_, r)| {
            (
                r["environment"].clone(),
                r["action"].clone(),
                r["details"].clone(),
            )
        })
        .collect();
    assert!(
        drift.contains(&(
            "prod".into(),
            "environment_mismatch".into(),
            "only_in_test=scp:gl:journal:write".into()
        )),
        "{drift:?}"
    );
    assert!(
        drift
            .iter()
            .any(|d| d.0 == "prod" && d.1 == "token_expiring"),
        "{drift:?}"
    );
    assert_eq!(
        manifest["rows"].as_u64(),
        Some(
            listed
                .iter()
                .map(|o| o["rows"].as_u64().unwrap_or_default())
                .sum()
        )
    );

    // The second run exports nothing new, says so, and changes no object.
    let before = exported_files(&out);
    let second = run(&config, &[], &[]);
    second.assert_code(0);
    assert!(
        second.stdout.contains("nothing new to export"),
        "{}",
        second.stdout
    );
    assert!(second.stdout.contains("not due"), "{}", second.stdout);
    let after = exported_files(&out);
    for (key, bytes) in &before {
        assert_eq!(after.get(key), Some(bytes), "{key} changed");
    }

    // The 429 storm of 6 March is one burst, and so are Okta's rate-limit violations.
    let bursts = rows(&out, "rate_limit_bursts");
    assert_eq!(bursts.len(), 2);
    let storm = bursts
        .iter()
        .find(|(_, r)| r["vendor"] == "inventory")
        .expect("storm");
    assert_eq!(storm.1["api_operation"], "/api/v1/items/{id}");
    assert_eq!(storm.1["credential"], "inv-sync");

    // The saved vendor responses: hr-sync's token failures after its secret was rotated,
    // Stripe's unacknowledged events and the endpoint it disabled, GitHub's incidents.
    let okta: Vec<Row> = rows(&out, "denials")
        .into_iter()
        .map(|(_, r)| r)
        .filter(|r| r["vendor"] == "okta")
        .collect();
    assert_eq!(okta.len(), 12);
    assert!(
        okta.iter()
            .all(|r| r["credential"] == "hr-sync" && r["error_code"] == "invalid_client")
    );
    let stripe: Vec<Row> = rows(&out, "webhook_failures")
        .into_iter()
        .map(|(_, r)| r)
        .filter(|r| r["vendor"] == "stripe")
        .collect();
    assert_eq!(stripe.len(), 40);
    let pending = stripe
        .iter()
        .filter(|r| r["error_type"] == "pending")
        .count();
    assert!(
        pending > 0 && pending < 40,
        "pending within 3 days of the clock, failed before: {pending}"
    );
    let incidents = rows(&out, "incidents");
    assert_eq!(incidents.len(), 2);
    assert!(
        incidents
            .iter()
            .all(|(_, r)| r["status"] == "resolved" && !r["resolved_dt"].is_empty())
    );

    // Each story of the week is explained (DESIGN §1): one finding per cluster, the cause
    // named with its evidence, and the fix.
    let findings: Vec<Row> = rows(&out, "findings").into_iter().map(|(_, r)| r).collect();
    let of = |credential: &str, kind: &str| -> Row {
        findings
            .iter()
            .find(|f| f["credential"] == credential && f["finding_type"] == kind)
            .unwrap_or_else(|| panic!("no {kind} finding for {credential}: {findings:#?}"))
            .clone()
    };
    let journal = of("erp-sync", "environment_mismatch");
    assert_eq!(journal["confidence"], "high");
    assert_eq!(journal["related_events_count"], "37");
    assert_eq!(journal["first_seen_dt"], "2026-03-05T09:02:50.779Z");
    for needle in ["gl:journal:write", "test", "09:02 UTC", "prod"] {
        assert!(
            journal["explanation"].contains(needle),
            "{needle}: {journal:?}"
        );
    }
    assert!(
        journal["remediation"].starts_with("Grant gl:journal:write to client erp-sync"),
        "{journal:?}"
    );
    let inventory = of("inv-sync", "insufficient_scope");
    assert!(
        inventory["explanation"].contains("inventory.read"),
        "{inventory:?}"
    );
    assert!(
        inventory["explanation"].contains("GET"),
        "GETs succeed: {inventory:?}"
    );
    let storm = of("inv-sync", "rate_limited");
    assert!(
        storm["remediation"].contains("exponentially with full jitter"),
        "{storm:?}"
    );
    let rotated = of("hr-sync", "credential_revoked");
    assert!(
        rotated["explanation"].contains("ada.admin@acme.example"),
        "{rotated:?}"
    );
    assert_eq!(
        of("release-bot", "token_expired")["related_events_count"],
        "8"
    );
    let hooks: Vec<&Row> = findings
        .iter()
        .filter(|f| f["finding_type"] == "webhook_endpoint_failing")
        .collect();
    assert_eq!(
        hooks.len(),
        2,
        "GitHub's deploy hook and Stripe's billing endpoint"
    );
    assert!(
        findings
            .iter()
            .all(|f| f["finding_type"] != "vendor_incident"),
        "the Actions incident is not the webhooks' cause, nor the one on webhooks days before"
    );
    let links = rows(&out, "finding_events");
    let linked = |f: &Row| {
        links
            .iter()
            .filter(|(_, l)| l["finding_uid"] == f["event_uid"])
            .count()
    };
    // The failures, and the cause (here a snapshot) once more.
    assert_eq!(linked(&journal), 38);
    let explain = Run::of(
        bin()
            .args(["explain", "--config"])
            .arg(&config)
            .output()
            .expect("explain runs"),
    );
    explain.assert_code(0);
    assert!(
        explain.stdout.contains(&journal["title"]),
        "explain says what the export says: {}",
        explain.stdout
    );

    // The CSVs are what the schemas say: one file of each dataset written.
    if let Some(tool) = frictionless() {
        for dataset in [
            "denials",
            "rate_limit_bursts",
            "request_counts",
            "findings",
            "finding_events",
        ] {
            let files = objects(&out, dataset);
            let (_, path) = files
                .iter()
                .next()
                .unwrap_or_else(|| panic!("no {dataset}"));
            assert_valid_csv(&tool, path, dataset);
        }
    }
}
