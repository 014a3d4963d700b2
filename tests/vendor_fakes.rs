//! The vendor fakes (tests/okta_support, tests/stripe_support, tests/statuspage_support on
//! tests/fake_http) speak their vendor's wire format: proven here with a plain HTTP client.

mod fake_http;
mod okta_support;
mod statuspage_support;
mod stripe_support;

use std::time::Duration;

use chrono::{DateTime, Utc};
use okta_support::{FakeOkta, okta_event, okta_time, with_actor};
use reqwest::Response;
use reqwest::header::HeaderMap;
use serde_json::Value;
use statuspage_support::FakeStatuspage;
use stripe_support::{FakeStripe, stripe_event};

const OKTA_TOKEN: &str = "00aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789";
const STRIPE_KEY: &str = "rk_test_51FakeKeyNeverToBeSeen4242";

fn t0() -> DateTime<Utc> {
    let now = Utc::now() - chrono::Duration::days(2);
    now - chrono::Duration::seconds(now.timestamp() % 3600)
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    Some(headers.get(name)?.to_str().ok()?.to_string())
}

/// The URL of the `Link` header with `rel`, among all of them.
fn link(headers: &HeaderMap, rel: &str) -> Option<String> {
    let links = headers
        .get_all("link")
        .iter()
        .filter_map(|v| v.to_str().ok());
    let wanted = format!("; rel=\"{rel}\"");
    let found = links
        .into_iter()
        .find_map(|l| l.strip_suffix(&wanted).map(String::from))?;
    Some(
        found
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_string(),
    )
}

fn with_query(url: &str, pairs: &[(&str, &str)]) -> String {
    reqwest::Url::parse_with_params(url, pairs)
        .expect("url")
        .to_string()
}

async fn json(response: Response) -> (u16, HeaderMap, Value) {
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    let body = response.bytes().await.expect("a whole body");
    (
        status,
        headers,
        serde_json::from_slice(&body).expect("a JSON body"),
    )
}

#[tokio::test]
async fn okta_pages_by_link_and_limits_its_rate() {
    let okta = FakeOkta::start(OKTA_TOKEN);
    let t0 = t0();
    for i in 0..2500 {
        let at = t0 + chrono::Duration::milliseconds(i * 1000);
        let event = okta_event(
            &format!("uuid-{i:05}"),
            at,
            "app.oauth2.as.token.grant.access_token",
            "FAILURE",
            Some("invalid_client"),
        );
        okta.add_event(with_actor(event, "0oa1", "PublicClientApp", "0oa1", "CI"));
    }
    let http = reqwest::Client::new();
    let get = |url: String, auth: &str| http.get(url).header("Authorization", auth).send();
    let auth = format!("SSWS {OKTA_TOKEN}");

    let until = t0 + chrono::Duration::hours(1);
    let (since, until) = (okta_time(t0), okta_time(until));
    let first = format!("{}/api/v1/logs", okta.base_url());
    let first = reqwest::Url::parse_with_params(
        &first,
        [
            ("since", since.as_str()),
            ("until", &until),
            ("limit", "1000"),
        ],
    );
    let mut url = Some(first.expect("url").to_string());
    let mut pages = Vec::new();
    while let Some(next) = url.take() {
        let (status, headers, body) = json(get(next, &auth).await.expect("get")).await;
        assert_eq!(status, 200);
        assert!(link(&headers, "self").is_some());
        assert!(header(&headers, "x-okta-request-id").is_some());
        assert_eq!(
            header(&headers, "x-rate-limit-limit").as_deref(),
            Some("600")
        );
        pages.push(body.as_array().expect("an array").len());
        url = link(&headers, "next");
    }
    assert_eq!(
        pages,
        [1000, 1000, 500],
        "a bounded request ends without rel=next"
    );

    // A polling request (no `until`) past the last event: no events, rel="next" all the same.
    let after_all = okta_time(t0 + chrono::Duration::hours(2));
    let polling = format!("{}/api/v1/logs?since={after_all}", okta.base_url());
    let (status, headers, body) = json(get(polling, &auth).await.expect("get")).await;
    assert_eq!((status, body), (200, serde_json::json!([])));
    assert!(link(&headers, "next").is_some());

    let (status, _, body) = json(get(first_page(&okta), "SSWS wrong").await.unwrap()).await;
    assert_eq!(
        (status, body["errorCode"].as_str()),
        (401, Some("E0000011"))
    );

    okta.set_rate_limit(1, Duration::from_secs(60));
    let bearer = format!("Bearer {OKTA_TOKEN}");
    assert_eq!(get(first_page(&okta), &bearer).await.unwrap().status(), 200);
    let (status, headers, body) = json(get(first_page(&okta), &bearer).await.unwrap()).await;
    let fixture: Value =
        serde_json::from_str(include_str!("fixtures/okta/error-toomanyrequests.json")).unwrap();
    assert_eq!((status, body), (429, fixture));
    assert_eq!(
        header(&headers, "x-rate-limit-remaining").as_deref(),
        Some("0")
    );
    let reset: u64 = header(&headers, "x-rate-limit-reset")
        .unwrap()
        .parse()
        .unwrap();
    assert!(reset >= Utc::now().timestamp() as u64);
    assert_eq!(okta.rate_limited(), 1);
    let seen = okta.requests();
    assert_eq!(seen.last().map(|s| s.status), Some(429));
}

fn first_page(okta: &FakeOkta) -> String {
    format!("{}/api/v1/logs?limit=10", okta.base_url())
}

#[tokio::test]
async fn stripe_pages_newest_first_and_speaks_stripe_errors() {
    let stripe = FakeStripe::start(STRIPE_KEY);
    let created = Utc::now().timestamp() - 3600;
    for i in 0..25 {
        let pending = if i % 5 == 0 { 2 } else { 0 };
        let id = format!("evt_{i:03}");
        let event = stripe_event(&id, created + i, "charge.failed", pending, None, None);
        stripe.add_event(event);
    }
    // Delivered at last: 4 events left pending.
    stripe.set_event(stripe_event(
        "evt_020",
        created + 20,
        "charge.failed",
        0,
        None,
        None,
    ));
    let http = reqwest::Client::new();
    let events = format!("{}/v1/events", stripe.base_url());

    let mut ids = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut query = vec![("limit", "10")];
        query.extend(after.as_deref().map(|a| ("starting_after", a)));
        let url = with_query(&events, &query);
        let request = http.get(url).basic_auth(STRIPE_KEY, Some(""));
        let (status, headers, body) = json(request.send().await.unwrap()).await;
        assert_eq!(status, 200);
        assert!(header(&headers, "request-id").is_some_and(|id| id.starts_with("req_")));
        assert_eq!(body["object"], "list");
        let data = body["data"].as_array().unwrap();
        ids.extend(data.iter().map(|e| e["id"].as_str().unwrap().to_string()));
        after = data.last().map(|e| e["id"].as_str().unwrap().to_string());
        if body["has_more"] == false {
            break;
        }
    }
    let newest_first: Vec<String> = (0..25).rev().map(|i| format!("evt_{i:03}")).collect();
    assert_eq!(ids, newest_first);

    let created_gte = created.to_string();
    let pending = [
        ("delivery_success", "false"),
        ("created[gte]", &created_gte),
    ];
    let pending = http
        .get(with_query(&events, &pending))
        .bearer_auth(STRIPE_KEY);
    let (_, _, body) = json(pending.send().await.unwrap()).await;
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["evt_015", "evt_010", "evt_005", "evt_000"]);

    let bad = http.get(&events).bearer_auth("sk_test_wrongkey1234").send();
    let (status, headers, body) = json(bad.await.unwrap()).await;
    assert_eq!(status, 401);
    assert_eq!(
        header(&headers, "stripe-should-retry").as_deref(),
        Some("false")
    );
    assert!(header(&headers, "request-id").is_some());
    assert_eq!(
        body["error"]["message"],
        "Invalid API Key provided: sk_test_********1234"
    );

    let missing = with_query(&events, &[("starting_after", "evt_x")]);
    let missing = http.get(missing).bearer_auth(STRIPE_KEY);
    let (status, _, body) = json(missing.send().await.unwrap()).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &Value::from("resource_missing"))
    );

    stripe.truncate_next(1);
    let cut = http
        .get(&events)
        .bearer_auth(STRIPE_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(cut.status(), 200);
    assert!(
        cut.bytes().await.is_err(),
        "a truncated body is a body error"
    );
    let whole = http
        .get(&events)
        .bearer_auth(STRIPE_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(
        json(whole).await.2["data"].as_array().map(Vec::len),
        Some(10)
    );
}

#[tokio::test]
async fn statuspage_lists_the_50_most_recent_incidents() {
    let page = FakeStatuspage::start();
    let t0 = t0();
    for i in 0..60 {
        let started = t0 + chrono::Duration::minutes(i);
        page.add_incident(
            &format!("inc{i:02}"),
            "Degraded Actions",
            "minor",
            started,
            &["Actions"],
        );
    }
    page.update_incident("inc59", "resolved", t0 + chrono::Duration::hours(2));
    let http = reqwest::Client::new();
    let url = format!("{}/api/v2/incidents.json", page.base_url());

    let (status, _, body) = json(http.get(&url).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(body["page"]["id"], "kctbh9vrtdwd");
    let incidents = body["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 50);
    assert_eq!(
        (&incidents[0]["id"], &incidents[49]["id"]),
        (&"inc59".into(), &"inc10".into())
    );
    let resolved = &incidents[0];
    assert_eq!(resolved["status"], "resolved");
    assert!(resolved["resolved_at"].is_string());
    assert_eq!(resolved["incident_updates"][0]["status"], "resolved");
    assert_eq!(resolved["components"][0]["status"], "operational");
    assert_eq!(
        incidents[1]["components"][0]["status"],
        "degraded_performance"
    );

    page.fail_next(1, 503);
    let failed = http.get(&url).send().await.unwrap();
    assert_eq!(failed.status(), 503);
    assert!(header(failed.headers(), "content-type").is_some_and(|t| t.starts_with("text/html")));
}

#[tokio::test]
async fn faults_are_the_vendors_own() {
    let okta = FakeOkta::start(OKTA_TOKEN);
    let t0 = t0();
    let event = okta_event("u1", t0, "system.org.rate_limit.violation", "DENY", None);
    okta.add_event(event);
    let http = reqwest::Client::new();
    let auth = format!("SSWS {OKTA_TOKEN}");
    let bounded = with_query(
        &format!("{}/api/v1/logs", okta.base_url()),
        &[
            ("since", &okta_time(t0)),
            ("until", &okta_time(t0 + chrono::Duration::hours(1))),
        ],
    );
    let get = |url: &str| http.get(url).header("Authorization", &auth).send();

    okta.fail_next(1, 429);
    let (status, headers, body) = json(get(&bounded).await.unwrap()).await;
    assert_eq!(
        (status, body["errorCode"].as_str()),
        (429, Some("E0000047"))
    );
    assert_eq!(
        header(&headers, "x-rate-limit-remaining").as_deref(),
        Some("0")
    );
    assert_eq!(
        okta.rate_limited(),
        0,
        "an injected 429 is not the rate limit's"
    );

    okta.repeat_cursor();
    let (_, headers, body) = json(get(&bounded).await.unwrap()).await;
    assert_eq!(body.as_array().map(Vec::len), Some(1));
    assert_eq!(link(&headers, "next"), link(&headers, "self"));

    let stripe = FakeStripe::start(STRIPE_KEY);
    stripe.add_event(stripe_event(
        "evt_1",
        Utc::now().timestamp(),
        "charge.failed",
        1,
        None,
        None,
    ));
    stripe.repeat_cursor();
    stripe.slow_next(1, Duration::from_millis(300));
    let started = std::time::Instant::now();
    let after = with_query(
        &format!("{}/v1/events", stripe.base_url()),
        &[("starting_after", "evt_1")],
    );
    let (_, _, body) = json(
        http.get(after)
            .bearer_auth(STRIPE_KEY)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(
        (&body["has_more"], &body["data"][0]["id"]),
        (&Value::Bool(true), &"evt_1".into())
    );
    stripe.lock_timeout_next(1);
    let locked = http
        .get(format!("{}/v1/events", stripe.base_url()))
        .bearer_auth(STRIPE_KEY);
    let (status, headers, body) = json(locked.send().await.unwrap()).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (429, &"lock_timeout".into())
    );
    assert_eq!(
        header(&headers, "stripe-should-retry").as_deref(),
        Some("true")
    );
}
