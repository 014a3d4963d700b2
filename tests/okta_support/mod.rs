//! An in-process fake of an Okta org's System Log API (`https://acme.okta.com`) on 127.0.0.1,
//! speaking Okta's wire format. Serving and faults: tests/fake_http.
//!
//! `GET /api/v1/logs` (anything else is Okta's 404 body):
//! - `since` (inclusive, default 7 days ago, as Okta), `until` (exclusive), ISO 8601;
//! - `limit` (default 100, 1 to 1000, else 400 E0000001), `sortOrder` (ASCENDING default,
//!   DESCENDING), `filter` (only `field eq "x"` / `field sw "x"` clauses on a dotted path such
//!   as `eventType` or `outcome.result`, joined by `and` / `or`; other clauses are ignored), `q`
//!   ignored;
//! - events ordered by (`published`, `uuid`); the opaque `after` cursor is the last event's
//!   (published, uuid), so events added meanwhile never shift a page;
//! - `Link: <...>; rel="self"` always. `Link: <...&after=CURSOR>; rel="next"`: on a bounded
//!   request (`until` given) only when more events remain; on a polling request (no `until`)
//!   always, even on a page with no events, as Okta does.
//!
//! Like Okta: `SSWS <token>` or `Bearer <token>` (else 401 E0000011), `set_forbidden` (403 with
//! the E0000006 fixture body), `X-Rate-Limit-Limit`/`-Remaining`/`-Reset` and
//! `X-Okta-Request-Id` on every response, and a fixed-window rate limit (default 600 per
//! minute) answered 429 with the E0000047 fixture body once spent. `fail_next(n, 429)` answers
//! the same body with `X-Rate-Limit-Remaining: 0` and a reset 1 s ahead (not counted in
//! `rate_limited`, which counts refusals of the rate limit itself).
//!
//! Events: [`okta_event`] takes the `ListLogs` fixture's event as the template and sets the
//! fields the tests vary.
#![allow(dead_code)]

use std::time::{Duration, SystemTime};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::fake_http::{self, ALNUM, Reply, Req, Server, Vendor, Window};

const LOG_LIST: &str = include_str!("../fixtures/okta/system-log-list.json");
const WITH_SECURITY_CONTEXT: &str =
    include_str!("../fixtures/okta/system-log-event-with-security-context.json");
const TOO_MANY: &str = include_str!("../fixtures/okta/error-toomanyrequests.json");
const ACCESS_DENIED: &str = include_str!("../fixtures/okta/error-accessdenied.json");

pub type FakeOkta = Server<Okta>;

/// The org's state (see the module doc); used through [`FakeOkta`].
pub struct Okta {
    token: String,
    forbidden: bool,
    events: Vec<Value>,
    rate: Window,
    rate_limited: u64,
}

impl FakeOkta {
    pub fn start(token: &str) -> FakeOkta {
        Server::serve(Okta {
            token: token.to_string(),
            forbidden: false,
            events: Vec::new(),
            rate: Window::new(600, Duration::from_secs(60)),
            rate_limited: 0,
        })
    }

    pub fn add_event(&self, event: Value) {
        self.with(|o| o.events.push(event));
    }

    /// Every event added so far, in the order they were added.
    pub fn events(&self) -> Vec<Value> {
        self.with(|o| o.events.clone())
    }

    /// Valid tokens get 403 E0000006 (a token whose admin lacks the report role).
    pub fn set_forbidden(&self, forbidden: bool) {
        self.with(|o| o.forbidden = forbidden);
    }

    /// Starts a new window now, with nothing used.
    pub fn set_rate_limit(&self, limit: u32, window: Duration) {
        self.with(|o| o.rate = Window::new(limit, window));
    }

    /// Requests refused by the rate limit.
    pub fn rate_limited(&self) -> u64 {
        self.with(|o| o.rate_limited)
    }
}

/// Okta's error body, with a fresh `errorId`.
pub fn okta_error(code: &str, summary: &str, causes: &[&str]) -> Value {
    let id = format!(
        "oae{}",
        fake_http::derived_id(&fastrand::u64(..).to_string(), ALNUM, 22)
    );
    let causes: Vec<Value> = causes.iter().map(|c| json!({"errorSummary": c})).collect();
    json!({
        "errorCode": code,
        "errorSummary": summary,
        "errorLink": code,
        "errorId": id,
        "errorCauses": causes,
    })
}

fn invalid(param: &str, cause: &str) -> Reply {
    let summary = format!("Api validation failed: {param}");
    Reply::json(400, &okta_error("E0000001", &summary, &[cause]))
}

fn fixture(text: &str) -> Value {
    serde_json::from_str(text).expect("fixture")
}

/// Okta's `published`: milliseconds, `Z`.
pub fn okta_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The `ListLogs` fixture event with `uuid`, `published`, `eventType`, `outcome`, a
/// `debugContext.debugData.requestId` (and `transaction.id`) derived from the uuid, a fitting
/// `displayMessage` and `severity`, and no `target` (add them with [`with_target`]).
pub fn okta_event(
    uuid: &str,
    published: DateTime<Utc>,
    event_type: &str,
    result: &str,
    reason: Option<&str>,
) -> Value {
    let mut event = fixture(LOG_LIST)[0].take();
    let request_id = format!(
        "{:016x}{:016x}",
        fake_http::hash(uuid),
        fake_http::hash(&format!("{uuid}/request"))
    );
    event["uuid"] = json!(uuid);
    event["published"] = json!(okta_time(published));
    event["eventType"] = json!(event_type);
    event["outcome"] = json!({"result": result, "reason": reason});
    event["displayMessage"] = json!(display_message(event_type));
    let warn = matches!(result, "FAILURE" | "DENY") || event_type.contains("rate_limit");
    event["severity"] = json!(if warn { "WARN" } else { "INFO" });
    if event_type != "user.session.start" {
        event["legacyEventType"] = Value::Null;
    }
    event["debugContext"]["debugData"]["requestId"] = json!(request_id);
    event["transaction"]["id"] = json!(request_id);
    let uri = if event_type.starts_with("app.oauth2.as.authorize") {
        Some("/oauth2/default/v1/authorize")
    } else if event_type.contains("token.grant") {
        Some("/oauth2/default/v1/token")
    } else {
        None
    };
    if let Some(uri) = uri {
        event["debugContext"]["debugData"]["requestUri"] = json!(uri);
        event["debugContext"]["debugData"]["url"] = json!(uri);
    }
    event["target"] = json!([]);
    event
}

/// Approximations of Okta's display messages for the event types the tests use.
fn display_message(event_type: &str) -> &'static str {
    match event_type {
        "user.session.start" => "User login to Okta",
        "app.oauth2.as.token.grant.access_token" | "app.oauth2.token.grant.access_token" => {
            "OAuth2 access token is granted"
        }
        "app.oauth2.as.authorize.scope_denied" => "OAuth2 authorization scope denied",
        "system.org.rate_limit.violation" => "Rate limit violation",
        "system.client.rate_limit.violation" => "Client-based rate limit violation",
        "system.org.rate_limit.warning" => "Rate limit warning",
        "policy.lifecycle.update" => "Update policy",
        "application.lifecycle.update" => "Update application",
        "app.oauth2.as.consent.revoke" => "Revoke consent",
        "system.api_token.revoke" => "Revoke API token",
        "app.oauth2.client.lifecycle.update" => "Update OAuth client",
        _ => "Okta event",
    }
}

/// `actor`: e.g. (`0oa...`, `PublicClientApp`, client id, app name), (`00u...`, `User`, login,
/// name) or (`0oa...`, `SystemPrincipal`, `system@okta.com`, `Okta System`).
pub fn with_actor(
    mut event: Value,
    id: &str,
    kind: &str,
    alternate_id: &str,
    display: &str,
) -> Value {
    event["actor"] = json!({
        "id": id, "type": kind, "alternateId": alternate_id, "displayName": display,
        "detailEntry": null,
    });
    event
}

/// Appends one `target` entry (e.g. the `AppInstance` or `PublicClientApp` a grant was for).
pub fn with_target(
    mut event: Value,
    id: &str,
    kind: &str,
    alternate_id: &str,
    display: &str,
) -> Value {
    let target = json!({
        "id": id, "type": kind, "alternateId": alternate_id, "displayName": display,
        "detailEntry": null,
    });
    match event["target"].as_array_mut() {
        Some(targets) => targets.push(target),
        None => event["target"] = json!([target]),
    }
    event
}

/// Sets `debugContext.debugData.<key>` (e.g. `grantType`, `requestedScopes`, `threshold`).
pub fn with_debug(mut event: Value, key: &str, value: Value) -> Value {
    event["debugContext"]["debugData"][key] = value;
    event
}

/// Sets `client.ipAddress` (and the first `request.ipChain` entry).
pub fn with_client_ip(mut event: Value, ip: &str) -> Value {
    event["client"]["ipAddress"] = json!(ip);
    event["request"]["ipChain"][0]["ip"] = json!(ip);
    event
}

/// Sets `securityContext` to the one of the `ListLogsWithAdditionalSecurityContext` fixture
/// (risk HIGH, "Suspected Session Hijacking", user behaviors, bot protection).
pub fn with_security_context(mut event: Value) -> Value {
    let rich = fixture(WITH_SECURITY_CONTEXT);
    event["securityContext"] = rich["securityContext"].clone();
    event
}

/// An event's place in the log: (`published` in epoch ms, `uuid`).
fn key(event: &Value) -> (i64, String) {
    let published = event["published"].as_str().unwrap_or_default();
    let ms = DateTime::parse_from_rfc3339(published).map_or(0, |t| t.timestamp_millis());
    (ms, event["uuid"].as_str().unwrap_or_default().to_string())
}

fn cursor((ms, uuid): &(i64, String)) -> String {
    format!("{ms}_{uuid}")
}

fn parse_cursor(cursor: &str) -> Option<(i64, String)> {
    let (ms, uuid) = cursor.split_once('_')?;
    Some((ms.parse().ok()?, uuid.to_string()))
}

fn parse_time(value: &str) -> Option<i64> {
    Some(DateTime::parse_from_rfc3339(value).ok()?.timestamp_millis())
}

/// `eventType eq "x" and outcome.result eq "FAILURE" or ...`; unknown clauses hold.
fn matches_filter(event: &Value, filter: &str) -> bool {
    let clause = |clause: &str| {
        let clause = clause.trim().trim_matches(|c| c == '(' || c == ')').trim();
        let mut words = clause.splitn(3, ' ');
        let (Some(field), Some(op), Some(value)) = (words.next(), words.next(), words.next())
        else {
            return true;
        };
        let value = value.trim().trim_matches('"');
        let pointer = format!("/{}", field.replace('.', "/"));
        let actual = event.pointer(&pointer).and_then(Value::as_str);
        match op {
            "eq" => actual == Some(value),
            "sw" => actual.is_some_and(|a| a.starts_with(value)),
            _ => true,
        }
    };
    filter
        .split(" or ")
        .any(|any| any.split(" and ").all(clause))
}

impl Okta {
    fn logs(&mut self, req: &Req) -> Reply {
        let limit = match req.param("limit").map(str::parse::<i64>) {
            None => 100,
            Some(Ok(n)) if (1..=1000).contains(&n) => n as usize,
            Some(_) => return invalid("limit", "limit: The limit must be between 1 and 1000."),
        };
        let time = |name: &str| match req.param(name).map(parse_time) {
            Some(None) => {
                let cause = format!(
                    "{name}: The date format in your query is not recognized. Please enter dates \
                     using ISO8601 string format."
                );
                Err(invalid(name, &cause))
            }
            parsed => Ok(parsed.flatten()),
        };
        let week_ago = (Utc::now() - chrono::Duration::days(7)).timestamp_millis();
        let since = match time("since") {
            Ok(since) => since.unwrap_or(week_ago),
            Err(reply) => return reply,
        };
        let until = match time("until") {
            Ok(until) => until,
            Err(reply) => return reply,
        };
        let desc = match req.param("sortOrder") {
            None | Some("ASCENDING") => false,
            Some("DESCENDING") => true,
            Some(_) => return invalid("sortOrder", "sortOrder: Invalid sort order."),
        };
        let after = match req.param("after").map(parse_cursor) {
            Some(None) => return invalid("after", "after: Invalid cursor."),
            after => after.flatten(),
        };
        let filter = req.param("filter").unwrap_or_default();
        let mut remaining: Vec<((i64, String), &Value)> = self
            .events
            .iter()
            .map(|e| (key(e), e))
            .filter(|(k, _)| k.0 >= since && until.is_none_or(|until| k.0 < until))
            .filter(|(_, e)| filter.is_empty() || matches_filter(e, filter))
            .collect();
        remaining.sort_by(|a, b| a.0.cmp(&b.0));
        if desc {
            remaining.reverse();
        }
        if let Some(after) = &after {
            remaining.retain(|(k, _)| if desc { k < after } else { k > after });
        }
        let more = remaining.len() > limit;
        remaining.truncate(limit);
        let last = remaining.last().map(|(k, _)| cursor(k));
        let page: Vec<Value> = remaining.into_iter().map(|(_, e)| e.clone()).collect();
        let polling = until.is_none();
        let next = if req.repeat {
            Some(req.url())
        } else if more || polling {
            let after = last.or_else(|| req.param("after").map(String::from));
            Some(match after {
                Some(after) => req.params.with("after", &after).url(req.base, req.path),
                None => req.url(),
            })
        } else {
            None
        };
        let reply = Reply::json(200, &Value::Array(page));
        let reply = reply.header("Link", format!("<{}>; rel=\"self\"", req.url()));
        match next {
            Some(next) => reply.header("Link", format!("<{next}>; rel=\"next\"")),
            None => reply,
        }
    }
}

impl Vendor for Okta {
    fn refuse(&mut self, req: &Req) -> Option<Reply> {
        let auth = req.authorization.unwrap_or_default();
        let token = auth.strip_prefix("SSWS ").or(auth.strip_prefix("Bearer "));
        if token != Some(self.token.as_str()) {
            let body = okta_error("E0000011", "Invalid token provided", &[]);
            return Some(Reply::json(401, &body));
        }
        self.forbidden
            .then(|| Reply::json(403, &fixture(ACCESS_DENIED)))
    }

    fn answer(&mut self, req: &Req) -> Reply {
        if !self.rate.take() {
            self.rate_limited += 1;
            return Reply::json(429, &fixture(TOO_MANY));
        }
        match (req.method, req.path) {
            ("GET", "/api/v1/logs") => self.logs(req),
            _ => {
                let summary = format!("Not found: Resource not found: {} (Api)", req.path);
                Reply::json(404, &okta_error("E0000007", &summary, &[]))
            }
        }
    }

    fn injected(&mut self, _req: &Req, status: u16) -> Reply {
        match status {
            429 => {
                let reset = fake_http::epoch_ceil(SystemTime::now() + Duration::from_secs(1));
                Reply::json(429, &fixture(TOO_MANY))
                    .header("X-Rate-Limit-Remaining", "0")
                    .header("X-Rate-Limit-Reset", reset.to_string())
            }
            500.. => {
                let body = okta_error("E0000009", "Internal Server Error", &[]);
                Reply::json(status, &body)
            }
            _ => {
                let reason = hyper::StatusCode::from_u16(status).ok();
                let reason = reason.and_then(|s| s.canonical_reason()).unwrap_or("Error");
                Reply::json(status, &okta_error("E0000001", reason, &[]))
            }
        }
    }

    fn headers(&mut self, req: &Req) -> Vec<(&'static str, String)> {
        let scrambled = req.n.wrapping_mul(2_654_435_761);
        let request_id = fake_http::derived_id(&format!("okta/{scrambled}"), ALNUM, 27);
        vec![
            ("Content-Type", "application/json".to_string()),
            ("X-Okta-Request-Id", request_id),
            ("X-Rate-Limit-Limit", self.rate.limit.to_string()),
            ("X-Rate-Limit-Remaining", self.rate.remaining().to_string()),
            ("X-Rate-Limit-Reset", self.rate.reset_epoch().to_string()),
        ]
    }
}
