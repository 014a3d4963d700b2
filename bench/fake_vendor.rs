//! The vendors of `bench/github.sh` and `bench/okta.sh`, served as fast as they can. No
//! rate-limit headers (`X-RateLimit-*`, `X-Rate-Limit-*`: a vendor that advertises no limit, so
//! nothing paces the client) and no added latency: what is measured is the client. Pages are
//! generated on request, so the server's memory does not grow with N.
//!
//!   fake_vendor [github] <port file> <events> <now, RFC 3339>
//!   fake_vendor okta <port file> <events> <now, RFC 3339>
//!   fake_vendor okta-expect <events>
//!
//! **github**: one org `bench` with one org hook (id 1) whose N deliveries all failed.
//! Deliveries are newest first, ids N..1, paged by 100 with GitHub's opaque cursor
//! (`cursor=v1_<id of the last item>`). Delivery k is at now - 1h - (N - k) * spacing, the N
//! spanning 48 hours, in whole seconds as GitHub writes them.
//!
//! **okta**: an org's System Log (`GET /api/v1/logs`, `SSWS` auth) of N events, each the
//! `ListLogs` fixture event made into one of the mix below, event k (from 0) at
//! now - 1h - (N - 1 - k) * spacing, the N spanning 48 hours, in milliseconds as Okta writes
//! them. Ascending by `published`, filtered by `since`..`until`, paged by `limit` with an
//! `after` cursor (the index of the page's last event); the `next` link only while events
//! remain. The mix, first match wins:
//!
//! - every 500th: `app.oauth2.client.lifecycle.update` by an admin (a `changes` row);
//! - 12 in a row at the start of every 10,000 (offsets 1..=12), at most 5 s apart: a
//!   `system.org.rate_limit.violation` burst on the token endpoint (a `rate_limit_bursts` row);
//! - every 50th: a `system.org.rate_limit.violation` on one of 100 other URL patterns in turn,
//!   minutes apart on each (no burst);
//! - every 10th: a FAILURE `app.oauth2.as.token.grant.access_token` (`invalid_client`) of a
//!   `PublicClientApp` (a `denials` row);
//! - the rest: `user.session.start` SUCCESS (read, no row).
//!
//! `okta-expect` prints what the mix of N events must export: denials, changes, rate-limit
//! violations, bursts (the last while N is under about 14M: above, the spacing brings the
//! scattered violations of one URL pattern under a minute apart).

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

const SPAN_MS: i64 = 48 * 3600 * 1000;
const USAGE: &str = "usage: fake_vendor [github|okta] <port file> <events> <now, RFC 3339>, or fake_vendor okta-expect <events>";

#[derive(Clone, Copy)]
enum Mode {
    GitHub,
    Okta,
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mode, rest) = match args.first().map(String::as_str) {
        Some("github") => (Mode::GitHub, &args[1..]),
        Some("okta") => (Mode::Okta, &args[1..]),
        Some("okta-expect") => {
            let [events] = &args[1..] else {
                bail!(USAGE);
            };
            let e = OktaExpect::of(events.parse().context("events")?);
            println!("{} {} {} {}", e.denials, e.changes, e.violations, e.bursts);
            return Ok(());
        }
        // Without a mode: GitHub, as `bench/github.sh` calls it.
        _ => (Mode::GitHub, args.as_slice()),
    };
    let [port_file, events, now] = rest else {
        bail!(USAGE);
    };
    let events: i64 = events.parse().context("events")?;
    if events < 1 {
        bail!("events: at least 1");
    }
    let now = DateTime::parse_from_rfc3339(now).context("now")?;
    // One worker: the machine's other core is the client's.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?
        .block_on(serve(
            port_file,
            mode,
            events,
            now.timestamp_millis() - 3_600_000,
        ))
}

enum Fake {
    GitHub(GitHub),
    Okta(OktaLog),
}

impl Fake {
    fn answer(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        match self {
            Fake::GitHub(v) => v.answer(req),
            Fake::Okta(v) => v.answer(req),
        }
    }
}

async fn serve(port_file: &str, mode: Mode, events: i64, newest_ms: i64) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let port = listener.local_addr()?.port();
    let base = format!("http://127.0.0.1:{port}");
    let vendor = Arc::new(match mode {
        Mode::GitHub => Fake::GitHub(GitHub {
            events,
            newest_ms,
            base,
        }),
        Mode::Okta => Fake::Okta(OktaLog::new(events, newest_ms, base)?),
    });
    // Written whole, then renamed: the script polls for it and must never read half a number.
    let tmp = format!("{port_file}.tmp");
    std::fs::write(&tmp, format!("{port}\n"))?;
    std::fs::rename(&tmp, port_file)?;
    loop {
        let (socket, _) = listener.accept().await?;
        let _ = socket.set_nodelay(true);
        let vendor = vendor.clone();
        let service = hyper::service::service_fn(move |req| {
            let vendor = vendor.clone();
            async move { Ok::<_, Infallible>(vendor.answer(&req)) }
        });
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(socket), service)
                .await;
        });
    }
}

// ------------------------------------------------------------------------------------ GitHub

const PER_PAGE: i64 = 100;
const HOOKS: &str = r#"[{"type":"Organization","id":1,"name":"web","active":true,"events":["push"],"config":{"content_type":"json","insecure_ssl":"0","url":"https://receiver.example/hook"},"updated_at":"2026-01-01T00:00:00Z","created_at":"2026-01-01T00:00:00Z"}]"#;
const DELIVERIES: &str = "/orgs/bench/hooks/1/deliveries";

struct GitHub {
    events: i64,
    /// Time of the newest delivery, epoch ms.
    newest_ms: i64,
    base: String,
}

impl GitHub {
    fn answer(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        let path = req.uri().path();
        let query = req.uri().query().unwrap_or("");
        if req.method() != hyper::Method::GET {
            return github_reply(404, r#"{"message":"Not Found"}"#.into(), None);
        }
        match path {
            "/orgs/bench/hooks" => github_reply(200, HOOKS.into(), None),
            DELIVERIES => match cursor(query) {
                Ok(before) => self.page(before),
                Err(()) => github_reply(400, r#"{"message":"Invalid cursor"}"#.into(), None),
            },
            p if p.starts_with("/orgs/bench/audit-log") => github_reply(200, "[]".into(), None),
            _ => github_reply(404, r#"{"message":"Not Found"}"#.into(), None),
        }
    }

    /// Up to 100 deliveries with ids below `before`, newest first.
    fn page(&self, before: i64) -> Response<Full<Bytes>> {
        let first = (before - 1).min(self.events);
        let last = (first - PER_PAGE + 1).max(1);
        let mut body = String::with_capacity(400 * PER_PAGE as usize);
        body.push('[');
        for id in (last..=first).rev() {
            if id != first {
                body.push(',');
            }
            self.delivery(&mut body, id);
        }
        body.push(']');
        let next = (first >= 1 && last > 1).then(|| {
            format!(
                "<{}{DELIVERIES}?per_page={PER_PAGE}&cursor=v1_{last}>; rel=\"next\"",
                self.base
            )
        });
        github_reply(200, body, next)
    }

    fn delivery(&self, out: &mut String, id: i64) {
        let back_ms = match self.events {
            1 => 0,
            n => (n - id) * SPAN_MS / (n - 1),
        };
        let at = DateTime::<Utc>::from_timestamp_millis(self.newest_ms - back_ms)
            .unwrap_or_default()
            .format("%Y-%m-%dT%H:%M:%SZ");
        // Pairs (2k, 2k+1) share a guid: a delivery and its redelivery.
        let g = id / 2;
        let (status, code, duration) = if id % 2 == 0 {
            ("timed out", 0, "10.0")
        } else {
            ("Invalid HTTP Response: 502", 502, "0.4")
        };
        let _ = write!(
            out,
            r#"{{"id":{id},"guid":"{:08x}-242f-11e5-81e1-{:012x}","delivered_at":"{at}","redelivery":{},"duration":{duration},"status":"{status}","status_code":{code},"event":"push","action":null,"installation_id":null,"repository_id":null,"throttled_at":null}}"#,
            g.wrapping_mul(0x9e37_79b9) as u32,
            g,
            id % 2 == 1,
        );
    }
}

/// The `cursor` parameter: `v1_<id>` continues below that id; none starts at the newest.
fn cursor(query: &str) -> Result<i64, ()> {
    for pair in query.split('&') {
        if let Some(v) = pair.strip_prefix("cursor=") {
            return v
                .strip_prefix("v1_")
                .and_then(|id| id.parse().ok())
                .ok_or(());
        }
    }
    Ok(i64::MAX)
}

fn github_reply(status: u16, body: String, next: Option<String>) -> Response<Full<Bytes>> {
    let n = request_number();
    let id = format!("BE7C:{n:X}:BE7C:{n:X}:BE7C");
    reply(status, body, ("X-GitHub-Request-Id", id), next.as_slice())
}

// -------------------------------------------------------------------------------------- Okta

/// The `ListLogs` fixture: one `user.session.start` event, the template of every event.
const LOG_LIST: &str = include_str!("../tests/fixtures/okta/system-log-list.json");
const LOGS: &str = "/api/v1/logs";
/// Okta's default and largest `limit`.
const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

const CHANGE_EVERY: i64 = 500;
const BURST_EVERY: i64 = 10_000;
const BURST_AT: i64 = 1;
const BURST_LEN: i64 = 12;
/// The most a burst's violations are apart, whatever the spacing: 12 within a minute.
const BURST_STEP_MS: i64 = 5_000;
/// As scopetrail's `[bursts] min_count` default: a burst cut short by the end of the log
/// still is one with this many.
const BURST_MIN: i64 = 10;
const VIOLATION_EVERY: i64 = 50;
const VIOLATION_PATTERNS: i64 = 100;
const DENIAL_EVERY: i64 = 10;

const CLIENT: &str = "0oa1benchsync0000x7";
const TOKEN_PATTERN: &str = "/oauth2/{authServerId}/v1/token";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Change,
    /// A violation of a burst, its offset in it.
    Burst(i64),
    Violation,
    Denial,
    Session,
}

fn kind(k: i64) -> Kind {
    let in_block = k % BURST_EVERY;
    if k % CHANGE_EVERY == 0 {
        Kind::Change
    } else if (BURST_AT..BURST_AT + BURST_LEN).contains(&in_block) {
        Kind::Burst(in_block - BURST_AT)
    } else if k % VIOLATION_EVERY == 0 {
        Kind::Violation
    } else if k % DENIAL_EVERY == 0 {
        Kind::Denial
    } else {
        Kind::Session
    }
}

/// What N events of the mix export.
struct OktaExpect {
    denials: i64,
    changes: i64,
    violations: i64,
    bursts: i64,
}

impl OktaExpect {
    fn of(events: i64) -> OktaExpect {
        let mut e = OktaExpect {
            denials: 0,
            changes: 0,
            violations: 0,
            bursts: 0,
        };
        for k in 0..events {
            match kind(k) {
                Kind::Change => e.changes += 1,
                Kind::Burst(_) | Kind::Violation => e.violations += 1,
                Kind::Denial => e.denials += 1,
                Kind::Session => {}
            }
        }
        let mut start = BURST_AT;
        while start < events {
            if (events - start).min(BURST_LEN) >= BURST_MIN {
                e.bursts += 1;
            }
            start += BURST_EVERY;
        }
        e
    }
}

/// A piece of a serialized event: text as is, or a value of event k.
enum Part {
    Text(String),
    Uuid,
    Published,
    RequestId,
    Pattern,
}

/// An event serialized once, with `@@X@@` markers where each event has its own values.
struct Template(Vec<Part>);

impl Template {
    fn new(event: &Value) -> Result<Template> {
        let text = serde_json::to_string(event)?;
        let mut parts = Vec::new();
        for (i, piece) in text.split("@@").enumerate() {
            parts.push(match (i % 2, piece) {
                (0, text) => Part::Text(text.to_string()),
                (_, "UUID") => Part::Uuid,
                (_, "PUBLISHED") => Part::Published,
                (_, "REQUEST") => Part::RequestId,
                (_, "PATTERN") => Part::Pattern,
                (_, other) => bail!("template: unknown marker {other}"),
            });
        }
        Ok(Template(parts))
    }
}

struct OktaLog {
    events: i64,
    /// Time of the oldest event, epoch ms.
    oldest_ms: i64,
    base: String,
    change: Template,
    violation: Template,
    denial: Template,
    session: Template,
}

impl OktaLog {
    fn new(events: i64, newest_ms: i64, base: String) -> Result<OktaLog> {
        let list: Vec<Value> = serde_json::from_str(LOG_LIST).context("the Okta fixture")?;
        let fixture = list
            .into_iter()
            .next()
            .context("the Okta fixture is empty")?;
        // As `okta_event` of the tests: the fixture with this event's ids, time and outcome.
        let event = |event_type: &str, result: &str, reason: Option<&str>, message: &str| {
            let mut e = fixture.clone();
            e["uuid"] = json!("@@UUID@@");
            e["published"] = json!("@@PUBLISHED@@");
            e["eventType"] = json!(event_type);
            e["outcome"] = json!({"result": result, "reason": reason});
            e["displayMessage"] = json!(message);
            let warn = result != "SUCCESS";
            e["severity"] = json!(if warn { "WARN" } else { "INFO" });
            if event_type != "user.session.start" {
                e["legacyEventType"] = Value::Null;
            }
            e["debugContext"]["debugData"]["requestId"] = json!("@@REQUEST@@");
            e["transaction"]["id"] = json!("@@REQUEST@@");
            e
        };
        let party = |id: &str, kind: &str, alternate_id: &str, display: &str| json!({"id": id, "type": kind, "alternateId": alternate_id, "displayName": display, "detailEntry": null});
        let uri = |e: &mut Value, uri: &str| {
            e["debugContext"]["debugData"]["requestUri"] = json!(uri);
            e["debugContext"]["debugData"]["url"] = json!(uri);
        };
        let app = party(CLIENT, "PublicClientApp", CLIENT, "Bench sync");

        let mut change = event(
            "app.oauth2.client.lifecycle.update",
            "SUCCESS",
            None,
            "Update OAuth client",
        );
        change["actor"] = party(
            "00u1benchadmin000x7",
            "User",
            "ada.admin@bench.example",
            "Ada Admin",
        );
        change["target"] = json!([app]);
        uri(&mut change, &format!("/api/v1/apps/{CLIENT}"));

        let mut violation = event(
            "system.org.rate_limit.violation",
            "DENY",
            None,
            "Rate limit violation",
        );
        violation["target"] = json!([party(
            "@@PATTERN@@",
            "URL Pattern",
            "@@PATTERN@@",
            "@@PATTERN@@"
        )]);
        violation["debugContext"]["debugData"]["threshold"] = json!(600);
        uri(&mut violation, "/oauth2/default/v1/token");

        let mut denial = event(
            "app.oauth2.as.token.grant.access_token",
            "FAILURE",
            Some("invalid_client"),
            "OAuth2 access token request",
        );
        denial["actor"] = app;
        denial["target"] = json!([]);
        uri(&mut denial, "/oauth2/default/v1/token");

        let session = event("user.session.start", "SUCCESS", None, "User login to Okta");

        Ok(OktaLog {
            events,
            oldest_ms: newest_ms - SPAN_MS,
            base,
            change: Template::new(&change)?,
            violation: Template::new(&violation)?,
            denial: Template::new(&denial)?,
            session: Template::new(&session)?,
        })
    }

    /// Event k's place on the 48 hours.
    fn spread_ms(&self, k: i64) -> i64 {
        match self.events {
            1 => self.oldest_ms,
            n => self.oldest_ms + k * SPAN_MS / (n - 1),
        }
    }

    /// Event k's `published`: its place, or closer to its burst's first violation. Never
    /// decreasing in k.
    fn published_ms(&self, k: i64) -> i64 {
        match kind(k) {
            Kind::Burst(j) => self
                .spread_ms(k)
                .min(self.spread_ms(k - j) + j * BURST_STEP_MS),
            _ => self.spread_ms(k),
        }
    }

    /// The first event published at or after `ms`.
    fn first_at(&self, ms: i64) -> i64 {
        let (mut lo, mut hi) = (0, self.events);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.published_ms(mid) < ms {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    fn answer(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        if req.method() != hyper::Method::GET || req.uri().path() != LOGS {
            let summary = format!("Not found: Resource not found: {} (Api)", req.uri().path());
            return okta_error(404, "E0000007", &summary);
        }
        let auth = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if auth.strip_prefix("SSWS ").is_none_or(str::is_empty) {
            return okta_error(401, "E0000011", "Invalid token provided");
        }
        let query = req.uri().query().unwrap_or("");
        match self.page(query) {
            Ok(reply) => reply,
            Err(name) => okta_error(400, "E0000001", &format!("Api validation failed: {name}")),
        }
    }

    /// Events `since` (default: all) to before `until` (default: all), after the `after`
    /// cursor, at most `limit`; Err names a parameter that is not valid.
    fn page(&self, query: &str) -> Result<Response<Full<Bytes>>, &'static str> {
        let (mut since, mut until, mut limit, mut after): (i64, i64, i64, i64) =
            (0, self.events, DEFAULT_LIMIT, -1);
        let mut kept = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let time = |param| {
                DateTime::parse_from_rfc3339(&value)
                    .map(|t| self.first_at(t.timestamp_millis()))
                    .map_err(|_| param)
            };
            match name.as_ref() {
                "since" => since = time("since")?,
                "until" => until = time("until")?,
                "limit" => {
                    limit = value
                        .parse()
                        .ok()
                        .filter(|l| (1..=MAX_LIMIT).contains(l))
                        .ok_or("limit")?
                }
                "sortOrder" if value == "ASCENDING" => {}
                "sortOrder" => return Err("sortOrder (this fake serves ASCENDING only)"),
                "after" => after = value.parse().map_err(|_| "after")?,
                _ => {}
            }
            if name != "after" {
                kept.append_pair(&name, &value);
            }
        }
        let first = since.max(after.saturating_add(1));
        let end = (first + limit).min(until);
        let mut body = String::with_capacity(2_200 * (end - first).max(0) as usize + 2);
        body.push('[');
        for k in first..end {
            if k != first {
                body.push(',');
            }
            self.event(&mut body, k);
        }
        body.push(']');
        let this = format!("<{}{LOGS}?{query}>; rel=\"self\"", self.base);
        let mut links = vec![this];
        if end < until {
            kept.append_pair("after", &(end - 1).to_string());
            links.push(format!(
                "<{}{LOGS}?{}>; rel=\"next\"",
                self.base,
                kept.finish()
            ));
        }
        let n = request_number();
        let id = format!("aBenCh{:021x}", n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        Ok(reply(200, body, ("X-Okta-Request-Id", id), &links))
    }

    fn event(&self, out: &mut String, k: i64) {
        let (template, pattern) = match kind(k) {
            Kind::Change => (&self.change, None),
            Kind::Burst(_) => (&self.violation, Some(TOKEN_PATTERN.to_string())),
            Kind::Violation => {
                let p = (k / VIOLATION_EVERY) % VIOLATION_PATTERNS;
                (
                    &self.violation,
                    Some(format!("/api/v1/bench/endpoint-{p:02}")),
                )
            }
            Kind::Denial => (&self.denial, None),
            Kind::Session => (&self.session, None),
        };
        let h = mix(k as u64);
        for part in &template.0 {
            let _ = match part {
                Part::Text(text) => {
                    out.push_str(text);
                    Ok(())
                }
                // The last 12 digits are k: distinct.
                Part::Uuid => write!(
                    out,
                    "{:08x}-{:04x}-11f0-8478-{:012x}",
                    h as u32,
                    (h >> 32) as u16,
                    k
                ),
                Part::Published => write!(
                    out,
                    "{}",
                    DateTime::<Utc>::from_timestamp_millis(self.published_ms(k))
                        .unwrap_or_default()
                        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                ),
                // `mix` is a bijection: distinct.
                Part::RequestId => write!(out, "{h:016x}{:016x}", mix(h)),
                Part::Pattern => {
                    out.push_str(pattern.as_deref().unwrap_or(TOKEN_PATTERN));
                    Ok(())
                }
            };
        }
    }
}

/// splitmix64's finalizer.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn okta_error(status: u16, code: &str, summary: &str) -> Response<Full<Bytes>> {
    let n = request_number();
    let id = format!("oaeBenCh{:016x}", mix(n));
    let body = json!({
        "errorCode": code, "errorSummary": summary, "errorLink": code, "errorId": id,
        "errorCauses": [],
    });
    reply(status, body.to_string(), ("X-Okta-Request-Id", id), &[])
}

// ------------------------------------------------------------------------------------ Common

fn request_number() -> u64 {
    static REQUESTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    REQUESTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

fn reply(
    status: u16,
    body: String,
    (id_header, id): (&str, String),
    links: &[String],
) -> Response<Full<Bytes>> {
    let mut response = Response::builder()
        .status(status)
        .header("Content-Type", "application/json; charset=utf-8")
        .header(id_header, id);
    for link in links {
        response = response.header("Link", link);
    }
    response
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}
