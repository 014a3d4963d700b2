//! An in-process fake of api.github.com on 127.0.0.1 (random port), speaking GitHub's wire
//! format, for the tests that run the scopetrail binary against "GitHub". Serving and the
//! faults every vendor fake has: tests/fake_http.
//!
//! Fakes (GET only; anything else is GitHub's 404 body):
//! - `/orgs/{org}/hooks`, `/repos/{owner}/{repo}/hooks`: hook objects, in numbered pages
//!   (`page`, `per_page`) as GitHub pages this endpoint, Link `rel="next"`;
//! - `/orgs/{org}/hooks/{id}/deliveries`, `/repos/{owner}/{repo}/hooks/{id}/deliveries`:
//!   deliveries newest first, paged with an opaque `cursor` (`v1_<id of the last item>`, so
//!   deliveries added meanwhile never shift a page), Link `rel="next"`;
//! - `/app/hook/deliveries`: the GitHub App's webhook deliveries, paged the same way, for a
//!   JWT of the App only (RS256 by its key, `iss` its id, at most 10 minutes long; any other
//!   credential is 401), see `set_app`;
//! - `/user`: the token's owner (any token may read it);
//! - `/orgs/{org}/audit-log`, `/enterprises/{enterprise}/audit-log`: `phrase` (only
//!   `created:>=DATE` or `created:>=DATETIME` is understood), `order` (asc/desc, default desc),
//!   `per_page`, opaque `after` cursor.
//!
//! Like GitHub: `Bearer`/`token` authentication (401 "Bad credentials"), `X-GitHub-Request-Id`
//! on every response, `X-OAuth-Scopes` and `X-Accepted-OAuth-Scopes` (to a recognized token)
//! with a 403 when they do not intersect, and a primary rate limit in fixed windows
//! (`X-RateLimit-*` headers, 403 "API rate limit exceeded" once spent).
//!
//! Faults, counted so the tests are deterministic. They apply to authenticated requests (a bad
//! token is answered 401 first), are checked in this order and do not spend the rate limit:
//! `fail_next` (5xx, or 429 with `Retry-After: 1`), `secondary_limit_next` (403 with
//! `Retry-After`), `fail_path_after`. Then `truncate_next` cuts the next 200s: the whole
//! `Content-Length` is announced, half the body is sent and flushed, then the connection is
//! closed. `slow_next` delays any response before its headers. `repeat_cursor` makes a list's
//! `rel="next"` point at the request's own cursor (or page), forever, even on the last page.
//! `fail_next`, `truncate_next`, `slow_next` and `repeat_cursor` are tests/fake_http's (the
//! latter as `repeat_cursor_matching`); `secondary_limit_next` and `fail_path_after` are
//! GitHub's own, checked first in [`GitHub`]'s answer, before the rate limit.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};

/// What `requests` returns, still named here too.
#[allow(unused_imports)]
pub use crate::fake_http::Seen;
use crate::fake_http::{Reply, Req, Server, Vendor, Window};

const DOCS: &str = "https://docs.github.com/rest";
const SCOPE_DOCS: &str = "https://docs.github.com/rest/webhooks/repo-deliveries#list-deliveries-for-a-repository-webhook";
const RATE_DOCS: &str =
    "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting";
const SECONDARY_DOCS: &str = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits";

/// One webhook delivery, as `GET .../hooks/{id}/deliveries` lists it.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub id: i64,
    pub guid: String,
    pub delivered_at: DateTime<Utc>,
    pub redelivery: bool,
    pub duration: f64,
    pub status: String,
    pub status_code: i64,
    pub event: String,
    pub action: Option<String>,
}

impl Delivery {
    pub fn ok(id: i64, guid: impl Into<String>, at: DateTime<Utc>) -> Delivery {
        Delivery {
            id,
            guid: guid.into(),
            delivered_at: at,
            redelivery: false,
            duration: 0.27,
            status: "OK".to_string(),
            status_code: 200,
            event: "push".to_string(),
            action: None,
        }
    }

    /// `status` is GitHub's text, e.g. "Invalid HTTP Response: 503" or "timed out".
    pub fn failed(
        id: i64,
        guid: impl Into<String>,
        at: DateTime<Utc>,
        status: &str,
        status_code: i64,
    ) -> Delivery {
        let status = status.to_string();
        let ok = Delivery::ok(id, guid, at);
        Delivery {
            duration: 10.0,
            status,
            status_code,
            ..ok
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "guid": self.guid,
            "delivered_at": self.delivered_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "redelivery": self.redelivery,
            "duration": self.duration,
            "status": self.status,
            "status_code": self.status_code,
            "event": self.event,
            "action": self.action,
            "installation_id": null,
            "repository_id": null,
            "throttled_at": null,
        })
    }
}

/// The handle: clones share the server, which stops when the last one is dropped. The methods
/// every fake has (`base_url`, `stop`, `fail_next`, `truncate_next`, `slow_next`,
/// `clear_faults`, `requests`, `requests_matching`) are [`Server`]'s, through `Deref`: a
/// wrapper rather than `Server<GitHub>` itself, as GitHub's `repeat_cursor` takes the path it
/// applies to.
#[derive(Clone)]
pub struct FakeGitHub(Server<GitHub>);

impl std::ops::Deref for FakeGitHub {
    type Target = Server<GitHub>;

    fn deref(&self) -> &Server<GitHub> {
        &self.0
    }
}

impl FakeGitHub {
    /// Serves from a thread and runtime of its own, so it keeps answering while the test
    /// blocks on the scopetrail child process.
    pub fn start(token: &str) -> FakeGitHub {
        let granted = ["admin:org_hook", "read:audit_log", "repo"];
        FakeGitHub(Server::serve(GitHub {
            token: token.to_string(),
            granted: granted.map(String::from).to_vec(),
            hooks: BTreeMap::new(),
            deliveries: HashMap::new(),
            audit: BTreeMap::new(),
            rate: Window::new(5000, Duration::from_secs(3600)),
            advertise_limit: true,
            rate_limited: 0,
            faults: Faults::default(),
            scope_header: true,
            expiration: None,
            app: None,
            app_deliveries: Vec::new(),
            app_jwts: Vec::new(),
            recognized: false,
        }))
    }

    /// An organization that exists, with no hooks yet (unknown ones answer 404).
    pub fn add_org(&self, org: &str) {
        self.with(|s| _ = s.hooks.entry(format!("orgs/{org}")).or_default());
    }

    /// A repository (`owner/repo`) that exists, with no hooks yet.
    pub fn add_repo(&self, owner_repo: &str) {
        self.with(|s| _ = s.hooks.entry(format!("repos/{owner_repo}")).or_default());
    }

    pub fn add_org_hook(&self, org: &str, hook_id: i64) {
        self.with(|s| {
            s.hooks
                .entry(format!("orgs/{org}"))
                .or_default()
                .push(hook_id)
        });
    }

    /// `owner_repo`: `owner/repo`.
    pub fn add_repo_hook(&self, owner_repo: &str, hook_id: i64) {
        let owner = format!("repos/{owner_repo}");
        self.with(|s| s.hooks.entry(owner).or_default().push(hook_id));
    }

    pub fn add_delivery(&self, hook_id: i64, delivery: Delivery) {
        self.with(|s| s.deliveries.entry(hook_id).or_default().push(delivery));
    }

    /// One audit-log entry, whole (`@timestamp`, `created_at` in epoch ms, `_document_id`, ...).
    pub fn add_audit(&self, org: &str, entry: Value) {
        self.with(|s| s.audit.entry(org.into()).or_default().push(entry));
    }

    /// Whether answers carry `X-OAuth-Scopes` (a classic token) or not (fine-grained).
    pub fn set_scope_header(&self, on: bool) {
        self.with(|s| s.scope_header = on);
    }

    /// `github-authentication-token-expiration`, e.g. `2026-12-01 00:00:00 UTC`.
    pub fn set_token_expiration(&self, at: Option<&str>) {
        self.with(|s| s.expiration = at.map(String::from));
    }

    pub fn set_granted_scopes(&self, scopes: &[&str]) {
        self.with(|s| s.granted = scopes.iter().map(|g| g.to_string()).collect());
    }

    /// Starts a new window now, with nothing used.
    pub fn set_rate_limit(&self, limit: u32, window: Duration) {
        self.with(|s| s.rate = Window::new(limit, window));
    }

    /// `false`: no `X-RateLimit-*` headers and no limit at all.
    pub fn set_advertise_limit(&self, advertise: bool) {
        self.with(|s| s.advertise_limit = advertise);
    }

    pub fn secondary_limit_next(&self, n: usize, retry_after_secs: u64) {
        self.with(|s| (s.faults.secondary, s.faults.retry_after) = (n, retry_after_secs));
    }

    /// Requests whose path and query contain `path_contains` succeed `after_ok` times, then
    /// answer `status` until `clear_faults`.
    pub fn fail_path_after(&self, path_contains: &str, after_ok: usize, status: u16) {
        let needle = path_contains.to_string();
        self.with(|s| s.faults.path = Some((needle, after_ok, status)));
    }

    /// For the lists whose path and query contain `path_contains`, until `clear_faults`.
    pub fn repeat_cursor(&self, path_contains: &str) {
        self.repeat_cursor_matching(path_contains);
    }

    /// A GitHub App `app_id` whose JWTs verify with the RSA key of `jwks` (RFC 7517 n, e).
    pub fn set_app(&self, app_id: &str, jwks: &Value) {
        let rsa = jwks["keys"]
            .as_array()
            .and_then(|keys| keys.iter().find(|k| k["kty"] == "RSA"))
            .expect("an RSA key");
        let key = jsonwebtoken::DecodingKey::from_rsa_components(
            rsa["n"].as_str().expect("n"),
            rsa["e"].as_str().expect("e"),
        )
        .expect("RSA components");
        self.with(|s| s.app = Some((app_id.to_string(), key)));
    }

    pub fn add_app_delivery(&self, delivery: Delivery) {
        self.with(|s| s.app_deliveries.push(delivery));
    }

    /// The JWTs the App's endpoints were called with.
    pub fn app_jwts(&self) -> Vec<String> {
        self.with(|s| s.app_jwts.clone())
    }

    /// An enterprise's audit log entry (`/enterprises/{enterprise}/audit-log`).
    pub fn add_enterprise_audit(&self, enterprise: &str, entry: Value) {
        self.with(|s| {
            s.audit
                .entry(format!("enterprises/{enterprise}"))
                .or_default()
                .push(entry)
        });
    }

    /// Requests refused by the primary rate limit.
    pub fn rate_limited(&self) -> u64 {
        self.with(|s| s.rate_limited)
    }
}

/// GitHub's state (see the module doc); used through [`FakeGitHub`].
pub struct GitHub {
    token: String,
    granted: Vec<String>,
    /// Hook ids by owner: `orgs/{org}` or `repos/{owner}/{repo}`, as in the paths.
    hooks: BTreeMap<String, Vec<i64>>,
    deliveries: HashMap<i64, Vec<Delivery>>,
    audit: BTreeMap<String, Vec<Value>>,
    /// The primary rate limit, spent (and advertised) only while `advertise_limit`.
    rate: Window,
    advertise_limit: bool,
    rate_limited: u64,
    faults: Faults,
    /// Classic tokens get `X-OAuth-Scopes`; fine-grained and App tokens do not.
    scope_header: bool,
    /// `github-authentication-token-expiration`, for tokens that expire.
    expiration: Option<String>,
    /// A GitHub App: its id (the JWT's `iss`) and public key, and its webhook's deliveries.
    app: Option<(String, jsonwebtoken::DecodingKey)>,
    app_deliveries: Vec<Delivery>,
    /// The JWTs `/app/...` was called with.
    app_jwts: Vec<String>,
    /// Whether the request being answered carries a credential GitHub recognized: set by
    /// `refuse`, read by `headers` (the server calls both for every request, under its lock).
    recognized: bool,
}

/// GitHub's own faults, checked in this order at the start of [`Vendor::answer`] (after
/// tests/fake_http's `fail_next`, before the rate limit); cleared by `clear_faults`.
#[derive(Default)]
struct Faults {
    secondary: usize,
    retry_after: u64,
    /// What the path and query contain, successes left, then the status.
    path: Option<(String, usize, u16)>,
}

impl Vendor for GitHub {
    fn refuse(&mut self, req: &Req) -> Option<Reply> {
        let bearer = req
            .authorization
            .and_then(|a| a.strip_prefix("Bearer ").or(a.strip_prefix("token ")));
        self.recognized = match route(req.method, req.path) {
            // GitHub: "A JSON web token could not be decoded" for anything but the App's JWT.
            Some(Endpoint::AppDeliveries) => bearer.is_some_and(|jwt| {
                self.app_jwts.push(jwt.to_string());
                self.app_jwt_valid(jwt)
            }),
            _ => bearer == Some(self.token.as_str()),
        };
        (!self.recognized).then(|| error(401, "Bad credentials", DOCS))
    }

    fn answer(&mut self, req: &Req) -> Reply {
        let faults = &mut self.faults;
        if faults.secondary > 0 {
            faults.secondary -= 1;
            return secondary(403, faults.retry_after, &request_id(req.n));
        }
        if let Some((needle, ok_left, status)) = &mut faults.path
            && req.path_and_query.contains(needle.as_str())
        {
            if *ok_left == 0 {
                return injected(*status, &request_id(req.n));
            }
            *ok_left -= 1;
        }
        if self.advertise_limit && !self.rate.take() {
            self.rate_limited += 1;
            return error(403, "API rate limit exceeded for user ID 1.", RATE_DOCS);
        }
        let Some(endpoint) = route(req.method, req.path) else {
            return not_found();
        };
        let accepted = endpoint.accepted();
        if !accepted.is_empty()
            && !accepted
                .iter()
                .any(|a| self.granted.contains(&a.to_string()))
        {
            return error(403, "Must have admin rights to Repository.", SCOPE_DOCS);
        }
        match endpoint {
            Endpoint::Hooks(owner) => self.hooks(req, &owner),
            Endpoint::Deliveries(owner, hook) => self.deliveries(req, &owner, hook),
            Endpoint::Audit(org) => self.audit_log(req, &org),
            Endpoint::AppDeliveries => delivery_page(req, self.app_deliveries.iter()),
            Endpoint::User => Reply::json(
                200,
                &json!({"login": "acme-bot", "id": 4242, "type": "User"}),
            ),
        }
    }

    fn injected(&mut self, req: &Req, status: u16) -> Reply {
        injected(status, &request_id(req.n))
    }

    fn headers(&mut self, req: &Req) -> Vec<(&'static str, String)> {
        let mut headers = vec![
            (
                "Content-Type",
                "application/json; charset=utf-8".to_string(),
            ),
            ("X-GitHub-Request-Id", request_id(req.n)),
        ];
        if self.advertise_limit {
            let (remaining, reset) = (self.rate.remaining(), self.rate.reset_epoch());
            headers.extend([
                ("X-RateLimit-Limit", self.rate.limit.to_string()),
                ("X-RateLimit-Remaining", remaining.to_string()),
                ("X-RateLimit-Used", self.rate.used.to_string()),
                ("X-RateLimit-Reset", reset.to_string()),
                ("X-RateLimit-Resource", "core".to_string()),
            ]);
        }
        // GitHub tells scopes only to a token it recognized.
        if self.recognized && self.scope_header {
            let accepted = route(req.method, req.path).map(|e| e.accepted());
            headers.push(("X-OAuth-Scopes", self.granted.join(", ")));
            let accepted = accepted.unwrap_or_default().join(", ");
            headers.push(("X-Accepted-OAuth-Scopes", accepted));
        }
        if let Some(expiration) = self.expiration.as_ref().filter(|_| self.recognized) {
            headers.push(("github-authentication-token-expiration", expiration.clone()));
        }
        headers
    }

    fn clear_faults(&mut self) {
        self.faults = Faults::default();
    }
}

impl GitHub {
    fn hooks(&self, req: &Req, owner: &str) -> Reply {
        let Some(ids) = self.hooks.get(owner) else {
            return not_found();
        };
        let mut ids = ids.clone();
        ids.sort_unstable();
        let page = param(req, "page").and_then(|p| p.parse().ok());
        let page: usize = page.filter(|p| *p > 0).unwrap_or(1);
        let skip = (page - 1).saturating_mul(per_page(req));
        let next = (page + 1).to_string();
        let remaining = ids.iter().skip(skip);
        let remaining = remaining.map(|id| (next.clone(), hook_json(req.base, owner, *id)));
        list_page(req, "page", remaining.collect(), Vec::new())
    }

    /// An App JWT: RS256 by the App's key, `iss` the App's id, alive, and at most 10 minutes
    /// long, as GitHub checks it.
    fn app_jwt_valid(&self, jwt: &str) -> bool {
        let Some((id, key)) = &self.app else {
            return false;
        };
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        // `iss` is checked below: jsonwebtoken reads only string issuers, GitHub takes the
        // App's id as a number too.
        validation.set_required_spec_claims(&["exp", "iat"]);
        validation.validate_aud = false;
        let Ok(data) = jsonwebtoken::decode::<Value>(jwt, key, &validation) else {
            return false;
        };
        let claims = data.claims;
        let iss = match &claims["iss"] {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            _ => return false,
        };
        let lifetime = claims["exp"].as_i64().unwrap_or(0) - claims["iat"].as_i64().unwrap_or(0);
        iss == *id && lifetime <= 600
    }

    fn deliveries(&self, req: &Req, owner: &str, hook: i64) -> Reply {
        if !self.hooks.get(owner).is_some_and(|ids| ids.contains(&hook)) {
            return not_found();
        }
        let all = self.deliveries.get(&hook).into_iter().flatten();
        delivery_page(req, all)
    }

    fn audit_log(&self, req: &Req, org: &str) -> Reply {
        if !self.audit.contains_key(org) && !self.hooks.contains_key(&format!("orgs/{org}")) {
            return not_found();
        }
        let (phrase, order) = (param(req, "phrase"), param(req, "order"));
        let since = phrase.and_then(phrase_since).unwrap_or(i64::MIN);
        let desc = order != Some("asc");
        let after = match param(req, "after").map(parse_after) {
            Some(None) => return error(400, "Invalid cursor", DOCS),
            after => after.flatten(),
        };
        let all = self.audit.get(org).into_iter().flatten();
        let mut remaining: Vec<((i64, String), &Value)> = all
            .map(|entry| (audit_key(entry), entry))
            .filter(|(key, _)| key.0 >= since)
            .collect();
        remaining.sort_by(|a, b| a.0.cmp(&b.0));
        if desc {
            remaining.reverse();
        }
        let beyond = |key: &(i64, String), after: &(i64, String)| match desc {
            true => key < after,
            false => key > after,
        };
        remaining.retain(|(key, _)| after.as_ref().is_none_or(|after| beyond(key, after)));
        let remaining = remaining.into_iter();
        let remaining = remaining.map(|((ms, id), entry)| (format!("{ms}.{id}"), entry.clone()));
        let mut pairs: Vec<(&str, String)> = Vec::new();
        pairs.extend(phrase.map(|p| ("phrase", p.to_string())));
        pairs.extend(order.map(|o| ("order", o.to_string())));
        list_page(req, "after", remaining.collect(), pairs)
    }
}

fn delivery_page<'d>(req: &Req, all: impl Iterator<Item = &'d Delivery>) -> Reply {
    let cursor = param(req, "cursor").map(|c| c.strip_prefix("v1_")?.parse().ok());
    let before = match cursor {
        Some(None) => return error(400, "Invalid cursor", DOCS),
        cursor => cursor.flatten().unwrap_or(i64::MAX),
    };
    let mut remaining: Vec<&Delivery> = all.filter(|d| d.id < before).collect();
    remaining.sort_by_key(|d| std::cmp::Reverse(d.id));
    let remaining = remaining.iter();
    let remaining = remaining.map(|d| (format!("v1_{}", d.id), d.to_json()));
    list_page(req, "cursor", remaining.collect(), Vec::new())
}

/// A query parameter; of a repeated one the last, as this fake always read them.
fn param<'r>(req: &'r Req, name: &str) -> Option<&'r str> {
    let mut named = req.params.0.iter().rev().filter(|(n, _)| n == name);
    named.next().map(|(_, v)| v.as_str())
}

fn per_page(req: &Req) -> usize {
    let asked = param(req, "per_page").and_then(|v| v.parse::<usize>().ok());
    asked.filter(|n| *n > 0).map_or(30, |n| n.min(100))
}

/// The first `per_page` of `remaining` (each with the cursor `name` that continues after it),
/// and when more remain a Link rel="next" carrying `pairs`, `per_page` and the cursor. While
/// `repeat_cursor` holds, rel="next" is the request's own cursor, even on the last page.
fn list_page(
    req: &Req,
    name: &str,
    remaining: Vec<(String, Value)>,
    pairs: Vec<(&str, String)>,
) -> Reply {
    let per = per_page(req);
    let more = remaining.len() > per;
    let (cursors, items): (Vec<String>, Vec<Value>) = remaining.into_iter().take(per).unzip();
    let after_page = cursors.last().cloned();
    let next = match req.repeat {
        true => param(req, name).map(String::from).or(after_page),
        false => after_page.filter(|_| more),
    };
    let reply = Reply::json(200, &Value::Array(items));
    let Some(next) = next else {
        return reply;
    };
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.extend_pairs(pairs);
    query.extend_pairs([("per_page", per.to_string()), (name, next)]);
    let (base, path, query) = (req.base, req.path, query.finish());
    reply.header("Link", format!("<{base}{path}?{query}>; rel=\"next\""))
}

/// `X-GitHub-Request-Id` of the server's `n`th request (also in secondary-limit messages).
fn request_id(n: u64) -> String {
    let scrambled = n.wrapping_mul(2_654_435_761) & 0xFF_FFFF;
    let pid = std::process::id() & 0xFFFF;
    format!("FA4E:{pid:04X}:{n:06X}:{scrambled:06X}:0")
}

/// GitHub's error body.
fn error(status: u16, message: &str, docs: &str) -> Reply {
    let status_text = status.to_string();
    let body = json!({"message": message, "documentation_url": docs, "status": status_text});
    Reply::json(status, &body)
}

fn not_found() -> Reply {
    error(404, "Not Found", DOCS)
}

fn secondary(status: u16, retry_after: u64, request_id: &str) -> Reply {
    let message = format!(
        "You have exceeded a secondary rate limit. Please wait a few minutes before you try \
         again. If you reach out to GitHub Support for help, please include the request ID \
         {request_id}."
    );
    let reply = error(status, &message, SECONDARY_DOCS);
    reply.header("Retry-After", retry_after.to_string())
}

/// The reply to `fail_next` and `fail_path_after`.
fn injected(status: u16, request_id: &str) -> Reply {
    let reason = hyper::StatusCode::from_u16(status).ok();
    match status {
        429 => secondary(429, 1, request_id),
        500.. => Reply::json(status, &json!({"message": "Server Error"})),
        _ => error(
            status,
            reason.and_then(|s| s.canonical_reason()).unwrap_or("?"),
            DOCS,
        ),
    }
}

/// Owners are written as in the paths: `orgs/{org}` or `repos/{owner}/{repo}`.
enum Endpoint {
    Hooks(String),
    Deliveries(String, i64),
    Audit(String),
    /// The token's owner: any token may read it.
    User,
    /// The App's webhook deliveries: a JWT of the App, not a token.
    AppDeliveries,
}

impl Endpoint {
    fn accepted(&self) -> &'static [&'static str] {
        match self {
            Endpoint::Audit(_) => &["read:audit_log"],
            Endpoint::User | Endpoint::AppDeliveries => &[],
            Endpoint::Hooks(owner) | Endpoint::Deliveries(owner, _)
                if owner.starts_with("orgs/") =>
            {
                &["admin:org_hook"]
            }
            _ => &["admin:repo_hook", "read:repo_hook", "repo"],
        }
    }
}

fn route(method: &str, path: &str) -> Option<Endpoint> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if parts == ["user"] && method == "GET" {
        return Some(Endpoint::User);
    }
    if parts == ["app", "hook", "deliveries"] && method == "GET" {
        return Some(Endpoint::AppDeliveries);
    }
    if let ["enterprises", enterprise, "audit-log"] = parts.as_slice() {
        return (method == "GET").then(|| Endpoint::Audit(format!("enterprises/{enterprise}")));
    }
    let (owner, rest) = match parts.as_slice() {
        ["orgs", org, rest @ ..] => (format!("orgs/{org}"), rest),
        ["repos", owner, repo, rest @ ..] => (format!("repos/{owner}/{repo}"), rest),
        _ => return None,
    };
    Some(match rest {
        _ if method != "GET" => return None,
        ["hooks"] => Endpoint::Hooks(owner),
        ["hooks", id, "deliveries"] => Endpoint::Deliveries(owner, id.parse().ok()?),
        ["audit-log"] if parts[0] == "orgs" => Endpoint::Audit(parts[1].to_string()),
        _ => return None,
    })
}

/// `created:>=2024-05-01` or `created:>=2024-05-01T10:00:00Z`, in epoch ms.
fn phrase_since(phrase: &str) -> Option<i64> {
    let mut words = phrase.split_whitespace();
    let value = words.find_map(|w| w.strip_prefix("created:>="))?;
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Some(t.timestamp_millis());
    }
    let day = NaiveDate::parse_from_str(value, "%Y-%m-%d").ok()?;
    Some(day.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

/// The audit log's order, and (written `ms.id`) its opaque `after` cursor: the Link's query
/// encoding takes care of any character in the document id.
fn audit_key(entry: &Value) -> (i64, String) {
    let created = &entry["created_at"];
    let ms = created.as_i64().or(created.as_f64().map(|f| f as i64));
    let id = entry["_document_id"].as_str().unwrap_or_default();
    (ms.unwrap_or(0), id.to_string())
}

fn parse_after(cursor: &str) -> Option<(i64, String)> {
    let (ms, id) = cursor.split_once('.')?;
    Some((ms.parse().ok()?, id.to_string()))
}

fn hook_json(base: &str, owner: &str, id: i64) -> Value {
    let url = format!("{base}/{owner}/hooks/{id}");
    let at = "2019-06-03T00:57:16Z";
    let mut hook = json!({
        "type": if owner.starts_with("orgs/") { "Organization" } else { "Repository" },
        "id": id, "name": "web", "active": true, "events": ["push"],
        "config": {
            "content_type": "json",
            "insecure_ssl": "0",
            "url": format!("https://ci.example.com/hook/{id}"),
        },
        "updated_at": at, "created_at": at,
        "url": url, "ping_url": format!("{url}/pings"), "deliveries_url": format!("{url}/deliveries"),
    });
    if owner.starts_with("repos/") {
        hook["test_url"] = json!(format!("{url}/test"));
        hook["last_response"] = json!({"code": null, "status": "unused", "message": null});
    }
    hook
}
