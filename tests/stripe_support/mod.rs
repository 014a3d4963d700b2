//! An in-process fake of api.stripe.com on 127.0.0.1, speaking Stripe's wire format. Serving
//! and faults: tests/fake_http.
//!
//! Fakes (GET only; anything else is Stripe's "Unrecognized request URL" 404):
//! - `/v1/events`: `created` (exact) or `created[gte]`/`[gt]`/`[lte]`/`[lt]` (Unix seconds),
//!   `delivery_success` (`false`: only events with `pending_webhooks > 0`; `true`: only 0),
//!   `type` (exact, or with a `*` wildcard as `charge.*`), `types[]`; only events of the last
//!   30 days, as Stripe keeps them;
//! - `/v1/webhook_endpoints`.
//!
//! Both are Stripe lists: newest first by (`created`, `id`) descending, `limit` (1 to 100,
//! default 10, else 400), cursors `starting_after` / `ending_before` (object ids; an unknown id
//! is 400 `resource_missing`), body `{"object":"list","url":...,"has_more":...,"data":[...]}`.
//!
//! Like Stripe: `Authorization: Bearer <key>` or Basic with the key as user name (401 with the
//! presented key masked), `set_restricted` (403 naming the missing `rak_event_read`
//! permission), `Request-Id` on every response and `Stripe-Should-Retry` on errors, no
//! rate-limit headers. `set_rate_limit` is enforced silently (429 `rate_limit`, counted in
//! `rate_limited`, default: none), `lock_timeout_next` answers 429 `lock_timeout`. Faults from
//! tests/fake_http; `repeat_cursor` makes lists ignore their cursor and answer their first page
//! with `has_more: true`, forever.
//!
//! Objects: [`stripe_event`] and [`webhook_endpoint`] take Stripe's `fixtures3.json` objects as
//! templates and set the fields the tests vary.
#![allow(dead_code)]

use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use crate::fake_http::{self, ALNUM, Reply, Req, Server, Vendor, Window};

const EVENT: &str = include_str!("../fixtures/stripe/event.json");
const ENDPOINT: &str = include_str!("../fixtures/stripe/webhook_endpoint.json");
/// How far back Stripe lists events.
const RETENTION_SECS: i64 = 30 * 24 * 3600;

pub type FakeStripe = Server<Stripe>;

/// The account's state (see the module doc); used through [`FakeStripe`].
pub struct Stripe {
    key: String,
    restricted: bool,
    events: Vec<Value>,
    endpoints: Vec<Value>,
    rate: Option<Window>,
    rate_limited: u64,
    lock_timeouts: usize,
}

impl FakeStripe {
    pub fn start(key: &str) -> FakeStripe {
        Server::serve(Stripe {
            key: key.to_string(),
            restricted: false,
            events: Vec::new(),
            endpoints: Vec::new(),
            rate: None,
            rate_limited: 0,
            lock_timeouts: 0,
        })
    }

    pub fn add_event(&self, event: Value) {
        self.with(|s| s.events.push(event));
    }

    /// Replaces the event with the same id (e.g. its `pending_webhooks` going to 0), or adds it.
    pub fn set_event(&self, event: Value) {
        self.with(|s| replace_by_id(&mut s.events, event));
    }

    pub fn events(&self) -> Vec<Value> {
        self.with(|s| s.events.clone())
    }

    pub fn add_endpoint(&self, endpoint: Value) {
        self.with(|s| s.endpoints.push(endpoint));
    }

    /// Replaces the endpoint with the same id (e.g. disabled), or adds it.
    pub fn set_endpoint(&self, endpoint: Value) {
        self.with(|s| replace_by_id(&mut s.endpoints, endpoint));
    }

    /// Valid keys get 403: a restricted key without `rak_event_read`.
    pub fn set_restricted(&self, restricted: bool) {
        self.with(|s| s.restricted = restricted);
    }

    /// `n` requests per `per`, in fixed windows from now; refusals are silent 429s.
    pub fn set_rate_limit(&self, n: u32, per: Duration) {
        self.with(|s| s.rate = Some(Window::new(n, per)));
    }

    /// The next `n` requests (past faults and rate limit) answer 429 `lock_timeout`.
    pub fn lock_timeout_next(&self, n: usize) {
        self.with(|s| s.lock_timeouts = n);
    }

    /// Requests refused by the rate limit (not `lock_timeout`, not `fail_next`).
    pub fn rate_limited(&self) -> u64 {
        self.with(|s| s.rate_limited)
    }
}

fn replace_by_id(objects: &mut Vec<Value>, object: Value) {
    match objects.iter_mut().find(|o| o["id"] == object["id"]) {
        Some(old) => *old = object,
        None => objects.push(object),
    }
}

/// The fixture event with `id`, `created`, `type`, `pending_webhooks` and `request`.
pub fn stripe_event(
    id: &str,
    created: i64,
    kind: &str,
    pending_webhooks: u64,
    request_id: Option<&str>,
    idempotency_key: Option<&str>,
) -> Value {
    let mut event: Value = serde_json::from_str(EVENT).expect("fixture");
    event["id"] = json!(id);
    event["created"] = json!(created);
    event["type"] = json!(kind);
    event["pending_webhooks"] = json!(pending_webhooks);
    event["request"] = json!({"id": request_id, "idempotency_key": idempotency_key});
    event
}

/// The fixture endpoint with `id`, `url`, `status` (`enabled`/`disabled`), `enabled_events`.
pub fn webhook_endpoint(id: &str, url: &str, status: &str, enabled_events: &[&str]) -> Value {
    let mut endpoint: Value = serde_json::from_str(ENDPOINT).expect("fixture");
    endpoint["id"] = json!(id);
    endpoint["url"] = json!(url);
    endpoint["status"] = json!(status);
    endpoint["enabled_events"] = json!(enabled_events);
    endpoint
}

/// As Stripe shows a key in errors: its prefix (`sk_test_`), stars, its last 4 characters.
pub fn mask_key(key: &str) -> String {
    let prefix = key.rfind('_').map_or(0, |i| i + 1);
    let keep = key.len().saturating_sub(4).max(prefix);
    let stars = "*".repeat(keep - prefix);
    format!("{}{stars}{}", &key[..prefix], &key[keep..])
}

/// Stripe's error body; `Stripe-Should-Retry` is true for 429, 5xx and `lock_timeout`.
pub fn stripe_error(status: u16, error: Value) -> Reply {
    let retry = status == 429 || status >= 500 || error["code"] == "lock_timeout";
    Reply::json(status, &json!({"error": error})).header("Stripe-Should-Retry", retry.to_string())
}

fn invalid(param: &str, message: &str) -> Reply {
    let error = json!({"message": message, "param": param, "type": "invalid_request_error"});
    stripe_error(400, error)
}

fn rate_limit_error() -> Reply {
    stripe_error(
        429,
        json!({
            "code": "rate_limit",
            "doc_url": "https://stripe.com/docs/error-codes/rate-limit",
            "message": "Request rate limit exceeded. You can learn more about rate limits here \
                        https://stripe.com/docs/rate-limits.",
            "type": "invalid_request_error",
        }),
    )
}

fn lock_timeout_error() -> Reply {
    stripe_error(
        429,
        json!({
            "code": "lock_timeout",
            "doc_url": "https://stripe.com/docs/error-codes/lock-timeout",
            "message": "This object cannot be accessed right now because another API request \
                        or Stripe process is currently accessing it. If you see this error \
                        intermittently, retry the request. If you see this error frequently and \
                        are making multiple concurrent requests to a single object, make your \
                        requests serially or at a lower rate. See \
                        https://stripe.com/docs/rate-limits for more information.",
            "type": "invalid_request_error",
        }),
    )
}

fn int_param(req: &Req, name: &str) -> Result<Option<i64>, Reply> {
    match req.param(name) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| invalid(name, &format!("Invalid integer: {v}"))),
    }
}

/// A list's order, newest first: (`created`, `id`), to be sorted descending.
fn key(object: &Value) -> (i64, String) {
    let created = object["created"].as_i64().unwrap_or(0);
    (
        created,
        object["id"].as_str().unwrap_or_default().to_string(),
    )
}

impl Stripe {
    fn events(&self, req: &Req) -> Reply {
        let mut bounds: Vec<(&str, i64)> = Vec::new();
        for name in [
            "created",
            "created[gte]",
            "created[gt]",
            "created[lte]",
            "created[lt]",
        ] {
            match int_param(req, name) {
                Ok(Some(v)) => bounds.push((name, v)),
                Ok(None) => {}
                Err(reply) => return reply,
            }
        }
        let delivered = match req.param("delivery_success") {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(v) => return invalid("delivery_success", &format!("Invalid boolean: {v}")),
        };
        let kinds: Vec<&str> = req
            .params
            .all("type")
            .chain(req.params.all("types[]"))
            .collect();
        let oldest = chrono::Utc::now().timestamp() - RETENTION_SECS;
        let kept = self.events.iter().filter(|e| {
            let created = e["created"].as_i64().unwrap_or(0);
            let in_bounds = bounds.iter().all(|&(name, v)| match name {
                "created" => created == v,
                "created[gte]" => created >= v,
                "created[gt]" => created > v,
                "created[lte]" => created <= v,
                _ => created < v,
            });
            let kind = e["type"].as_str().unwrap_or_default();
            let kind_ok = kinds.is_empty()
                || kinds.iter().any(|k| match k.strip_suffix('*') {
                    Some(prefix) => kind.starts_with(prefix),
                    None => kind == *k,
                });
            let pending = e["pending_webhooks"].as_u64().unwrap_or(0) > 0;
            created >= oldest && in_bounds && kind_ok && delivered.is_none_or(|d| d != pending)
        });
        list(req, "/v1/events", "event", &self.events, kept.collect())
    }
}

/// One page of `kept` (a subset of `all`, where cursors are looked up), as Stripe pages.
fn list(req: &Req, url: &str, noun: &str, all: &[Value], mut kept: Vec<&Value>) -> Reply {
    let limit = match int_param(req, "limit") {
        Ok(None) => 10,
        Ok(Some(n)) if (1..=100).contains(&n) => n as usize,
        Ok(Some(n)) if n < 1 => {
            return invalid("limit", "This value must be greater than or equal to 1.");
        }
        Ok(Some(n)) => {
            let message =
                format!("This value must be less than or equal to 100 (it currently is '{n}').");
            return invalid("limit", &message);
        }
        Err(reply) => return reply,
    };
    let (after, before) = (req.param("starting_after"), req.param("ending_before"));
    if after.is_some() && before.is_some() {
        let message =
            "You may only specify one of these parameters: ending_before, starting_after.";
        return invalid("ending_before", message);
    }
    kept.sort_by_key(|o| std::cmp::Reverse(key(o)));
    let cursor = match (after, before) {
        _ if req.repeat => None,
        (Some(id), _) | (_, Some(id)) => {
            let name = if after.is_some() {
                "starting_after"
            } else {
                "ending_before"
            };
            match all.iter().find(|o| o["id"] == id) {
                Some(o) => Some(key(o)),
                None => {
                    let error = json!({
                        "code": "resource_missing",
                        "doc_url": "https://stripe.com/docs/error-codes/resource-missing",
                        "message": format!("No such {noun}: '{id}'"),
                        "param": name,
                        "type": "invalid_request_error",
                    });
                    return stripe_error(400, error);
                }
            }
        }
        (None, None) => None,
    };
    let (page, has_more) = match (cursor, before.is_some()) {
        (Some(cursor), true) => {
            // The `limit` objects just newer than the cursor, still newest first.
            kept.retain(|o| key(o) > cursor);
            let skip = kept.len().saturating_sub(limit);
            (kept.split_off(skip), skip > 0)
        }
        (cursor, _) => {
            if let Some(cursor) = cursor {
                kept.retain(|o| key(o) < cursor);
            }
            let more = kept.len() > limit;
            kept.truncate(limit);
            (kept, more || req.repeat)
        }
    };
    let body = json!({"object": "list", "url": url, "has_more": has_more, "data": page});
    Reply::json(200, &body)
}

impl Vendor for Stripe {
    fn refuse(&mut self, req: &Req) -> Option<Reply> {
        let auth = req.authorization.unwrap_or_default();
        let presented = if let Some(key) = auth.strip_prefix("Bearer ") {
            Some(key.to_string())
        } else if let Some(basic) = auth.strip_prefix("Basic ") {
            let decoded = base64::engine::general_purpose::STANDARD.decode(basic.trim());
            let decoded = decoded.ok().and_then(|d| String::from_utf8(d).ok());
            decoded.map(|d| {
                d.split_once(':')
                    .map_or(d.as_str(), |(user, _)| user)
                    .to_string()
            })
        } else {
            None
        };
        let message = match presented {
            Some(key) if key == self.key => None,
            Some(key) if !key.is_empty() => {
                Some(format!("Invalid API Key provided: {}", mask_key(&key)))
            }
            _ => Some(
                "You did not provide an API key. You need to provide your API key in the \
                 Authorization header, using Bearer auth (e.g. 'Authorization: Bearer \
                 YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, \
                 or we can help at https://support.stripe.com/."
                    .to_string(),
            ),
        };
        if let Some(message) = message {
            let error = json!({"message": message, "type": "invalid_request_error"});
            return Some(stripe_error(401, error));
        }
        self.restricted.then(|| {
            let message = format!(
                "The provided key '{}' does not have the required permissions for this \
                 endpoint on account 'acct_1Fake'. Having the 'rak_event_read' permission \
                 would allow this request to continue.",
                mask_key(&self.key)
            );
            let error = json!({"message": message, "type": "invalid_request_error"});
            stripe_error(403, error)
        })
    }

    fn answer(&mut self, req: &Req) -> Reply {
        if let Some(rate) = &mut self.rate
            && !rate.take()
        {
            self.rate_limited += 1;
            return rate_limit_error();
        }
        if self.lock_timeouts > 0 {
            self.lock_timeouts -= 1;
            return lock_timeout_error();
        }
        match (req.method, req.path) {
            ("GET", "/v1/events") => self.events(req),
            ("GET", "/v1/webhook_endpoints") => {
                let kept = self.endpoints.iter().collect();
                list(
                    req,
                    "/v1/webhook_endpoints",
                    "webhook endpoint",
                    &self.endpoints,
                    kept,
                )
            }
            (method, path) => {
                let message = format!(
                    "Unrecognized request URL ({method}: {path}). Please see \
                     https://stripe.com/docs or we can help at https://support.stripe.com/."
                );
                let error = json!({"message": message, "type": "invalid_request_error"});
                stripe_error(404, error)
            }
        }
    }

    fn injected(&mut self, _req: &Req, status: u16) -> Reply {
        match status {
            429 => rate_limit_error(),
            500.. => {
                let error = json!({"message": "An unknown error occurred", "type": "api_error"});
                stripe_error(status, error)
            }
            _ => {
                let reason = hyper::StatusCode::from_u16(status).ok();
                let reason = reason.and_then(|s| s.canonical_reason()).unwrap_or("Error");
                stripe_error(
                    status,
                    json!({"message": reason, "type": "invalid_request_error"}),
                )
            }
        }
    }

    fn headers(&mut self, _req: &Req) -> Vec<(&'static str, String)> {
        let id = fake_http::derived_id(&fastrand::u64(..).to_string(), ALNUM, 14);
        vec![
            ("Content-Type", "application/json".to_string()),
            ("Request-Id", format!("req_{id}")),
        ]
    }
}
