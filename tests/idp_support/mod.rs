//! A fake identity provider on 127.0.0.1 (random port), speaking the OAuth wire formats, for the
//! tests that run the scopetrail binary against "Okta", "Entra", "Auth0":
//! - `POST /token`: RFC 6749 client credentials, the client authenticated by HTTP Basic
//!   (form-encoded id and secret, §2.3.1) or in the form; §5.1 answers with a JWT signed by
//!   the test keys (or an opaque token), §5.2 errors with the fixtures' bodies;
//! - `GET /keys`: the JWKS;
//! - `POST /introspect`: RFC 7662, the fixture's inactive answer for unknown tokens;
//! - `POST /sts/`: AWS STS `GetCallerIdentity` (query protocol, XML), the identity settable.
//!
//! Every answer has a `Date` header, shifted by `set_skew` to fake a server clock that is off.
#![allow(dead_code)]

pub mod keys;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub use keys::TestKeys;

const INVALID_CLIENT: &str = include_str!("../fixtures/okta/oauth-error-invalid-client.json");
const INVALID_SCOPE: &str = include_str!("../fixtures/okta/oauth-error-invalid-scope.json");
const TOO_MANY: &str = include_str!("../fixtures/okta/error-toomanyrequests.json");
const INACTIVE: &str = include_str!("../fixtures/oauth/rfc7662-2.2-introspection-inactive.json");

/// How a client's tokens look.
#[derive(Clone)]
pub struct Client {
    pub secret: String,
    /// `RS256`, `ES256`, or `opaque`.
    pub alg: &'static str,
    /// Claims of its access tokens; `iss`, `iat`, `exp` are added.
    pub claims: Value,
    /// The §5.1 `scope` of the answer (absent when `None`).
    pub scope: Option<String>,
    pub expires_in: i64,
    /// Answer `invalid_scope` instead of a token.
    pub refuse_scope: bool,
}

impl Client {
    pub fn new(secret: &str, alg: &'static str, claims: Value) -> Client {
        Client {
            secret: secret.into(),
            alg,
            claims,
            scope: None,
            expires_in: 86_400,
            refuse_scope: false,
        }
    }
}

/// One request to the token endpoint, as the server saw it.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub client_id: String,
    /// True when the client authenticated with HTTP Basic.
    pub basic: bool,
    pub form: HashMap<String, String>,
}

#[derive(Default)]
struct State {
    clients: HashMap<String, Client>,
    /// Introspection: token -> its claims while active.
    active: HashMap<String, Value>,
    skew: i64,
    issued: Vec<String>,
    token_requests: Vec<TokenRequest>,
    sts_identity: Option<(String, String, String)>,
    /// Answers the token endpoint with this (status, body, Location) instead.
    token_override: Option<(u16, String, Option<String>)>,
    /// Requests that reached the server, by path.
    paths: Vec<String>,
    /// The next this many token requests get Okta's 429.
    rate_limited: u32,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The handle; the server stops when the test's last handle is dropped.
#[derive(Clone)]
pub struct FakeIdp {
    state: Arc<Mutex<State>>,
    keys: Arc<TestKeys>,
    base: String,
    cancel: CancellationToken,
    _stop: Option<Arc<Stop>>,
}

struct Stop(CancellationToken);

impl Drop for Stop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

impl FakeIdp {
    pub fn start() -> FakeIdp {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("non-blocking");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let cancel = CancellationToken::new();
        let idp = FakeIdp {
            state: Arc::default(),
            keys: Arc::new(TestKeys::generate()),
            base,
            cancel: cancel.clone(),
            _stop: Some(Arc::new(Stop(cancel))),
        };
        let server = FakeIdp {
            _stop: None,
            ..idp.clone()
        };
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(server.serve(listener));
        });
        idp
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn keys(&self) -> &TestKeys {
        &self.keys
    }

    pub fn set_client(&self, id: &str, client: Client) {
        lock(&self.state).clients.insert(id.into(), client);
    }

    pub fn client(&self, id: &str) -> Client {
        lock(&self.state).clients[id].clone()
    }

    pub fn set_active(&self, token: &str, claims: Option<Value>) {
        let mut s = lock(&self.state);
        match claims {
            Some(c) => s.active.insert(token.into(), c),
            None => s.active.remove(token),
        };
    }

    /// The server's clock runs this far ahead (negative: behind).
    pub fn set_skew(&self, seconds: i64) {
        lock(&self.state).skew = seconds;
    }

    pub fn set_sts_identity(&self, account: &str, arn: &str, user_id: &str) {
        lock(&self.state).sts_identity = Some((account.into(), arn.into(), user_id.into()));
    }

    /// Every access token handed out so far.
    pub fn issued(&self) -> Vec<String> {
        lock(&self.state).issued.clone()
    }

    /// The token endpoint answers this instead of a token (a redirect when `location`).
    pub fn set_token_answer(&self, status: u16, body: &str, location: Option<&str>) {
        lock(&self.state).token_override = Some((status, body.into(), location.map(String::from)));
    }

    /// The next `n` token requests are refused with Okta's 429 (`Retry-After: 1`).
    pub fn rate_limit_next(&self, n: u32) {
        lock(&self.state).rate_limited = n;
    }

    /// Every request path the server received.
    pub fn paths(&self) -> Vec<String> {
        lock(&self.state).paths.clone()
    }

    pub fn token_requests(&self) -> Vec<TokenRequest> {
        lock(&self.state).token_requests.clone()
    }

    async fn serve(self, listener: std::net::TcpListener) {
        let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
        loop {
            let socket = tokio::select! {
                () = self.cancel.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok((socket, _)) => socket,
                    Err(_) => continue,
                },
            };
            let idp = self.clone();
            let service = hyper::service::service_fn(move |req| {
                let idp = idp.clone();
                async move { Ok::<_, Infallible>(idp.handle(req).await) }
            });
            tokio::spawn(async move {
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(socket), service);
                let _ = conn.await;
            });
        }
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let form: HashMap<String, String> =
            url::form_urlencoded::parse(&body).into_owned().collect();
        let basic = parts
            .headers
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|pair| {
                let (id, secret) = pair.split_once(':')?;
                let decode = |s: &str| {
                    percent_encoding::percent_decode_str(s)
                        .decode_utf8_lossy()
                        .into_owned()
                };
                Some((decode(id), decode(secret)))
            });
        lock(&self.state).paths.push(parts.uri.path().to_string());
        let overridden = lock(&self.state)
            .token_override
            .clone()
            .filter(|_| parts.uri.path() == "/token");
        let limited = {
            let mut s = lock(&self.state);
            let hit = s.rate_limited > 0 && parts.uri.path() == "/token";
            if hit {
                s.rate_limited -= 1;
            }
            hit
        };
        if limited {
            return Response::builder()
                .status(429)
                .header("content-type", "application/json")
                .header("retry-after", "1")
                .header("x-rate-limit-limit", "600")
                .header("x-rate-limit-remaining", "0")
                .body(Full::new(Bytes::from(TOO_MANY)))
                .expect("a valid response");
        }
        if let Some((status, body, location)) = overridden {
            let mut response = Response::builder()
                .status(status)
                .header("content-type", "application/json");
            if let Some(l) = location {
                response = response.header("location", l);
            }
            return response
                .body(Full::new(Bytes::from(body)))
                .expect("a valid response");
        }
        let (status, content_type, body) = match (parts.method.as_str(), parts.uri.path()) {
            ("POST", "/token") => self.token(basic, form),
            ("GET", "/keys") => (200, "application/json", self.keys.jwks().to_string()),
            ("POST", "/introspect") => self.introspect(basic, form),
            ("POST", "/sts/") => self.sts(form),
            _ => (
                404,
                "application/json",
                json!({"error": "not_found"}).to_string(),
            ),
        };
        let now = SystemTime::now();
        let skew = lock(&self.state).skew;
        let date = if skew >= 0 {
            now + Duration::from_secs(skew as u64)
        } else {
            now - Duration::from_secs(skew.unsigned_abs())
        };
        let mut response = Response::builder()
            .status(status)
            .header("content-type", content_type)
            .header("date", httpdate::fmt_http_date(date))
            .header("cache-control", "no-store");
        if status == 401 {
            response = response.header("www-authenticate", "Basic realm=\"token\"");
        }
        response
            .body(Full::new(Bytes::from(body)))
            .expect("a valid response")
    }

    fn authenticate(
        &self,
        basic: &Option<(String, String)>,
        form: &HashMap<String, String>,
    ) -> Option<(String, Client)> {
        let (id, secret) = match basic {
            Some((id, secret)) => (id.clone(), secret.clone()),
            None => (
                form.get("client_id")?.clone(),
                form.get("client_secret")?.clone(),
            ),
        };
        let client = lock(&self.state).clients.get(&id).cloned()?;
        (client.secret == secret).then_some((id, client))
    }

    fn token(
        &self,
        basic: Option<(String, String)>,
        form: HashMap<String, String>,
    ) -> (u16, &'static str, String) {
        let Some((id, client)) = self.authenticate(&basic, &form) else {
            return (401, "application/json", INVALID_CLIENT.to_string());
        };
        lock(&self.state).token_requests.push(TokenRequest {
            client_id: id,
            basic: basic.is_some(),
            form: form.clone(),
        });
        if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
            return (
                400,
                "application/json",
                json!({"error": "unsupported_grant_type"}).to_string(),
            );
        }
        if client.refuse_scope {
            return (400, "application/json", INVALID_SCOPE.to_string());
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        let mut claims = client.claims.clone();
        claims["iss"] = json!(self.url("/"));
        claims["iat"] = json!(now);
        claims["nbf"] = json!(now);
        claims["exp"] = json!(now + client.expires_in);
        let token = match client.alg {
            "opaque" => format!("opaque-{}-{}", now, lock(&self.state).issued.len()),
            alg => self.keys.sign(alg, &claims),
        };
        lock(&self.state).issued.push(token.clone());
        let mut answer =
            json!({"access_token": token, "token_type": "Bearer", "expires_in": client.expires_in});
        if let Some(scope) = &client.scope {
            answer["scope"] = json!(scope);
        }
        (200, "application/json", answer.to_string())
    }

    fn introspect(
        &self,
        basic: Option<(String, String)>,
        form: HashMap<String, String>,
    ) -> (u16, &'static str, String) {
        if self.authenticate(&basic, &form).is_none() {
            return (401, "application/json", INVALID_CLIENT.to_string());
        }
        let token = form.get("token").cloned().unwrap_or_default();
        match lock(&self.state).active.get(&token) {
            Some(claims) => {
                let mut answer = claims.clone();
                answer["active"] = json!(true);
                (200, "application/json", answer.to_string())
            }
            None => (200, "application/json", INACTIVE.to_string()),
        }
    }

    fn sts(&self, form: HashMap<String, String>) -> (u16, &'static str, String) {
        if form.get("Action").map(String::as_str) != Some("GetCallerIdentity") {
            return (400, "text/xml", "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidAction</Code><Message>unknown action</Message></Error><RequestId>1</RequestId></ErrorResponse>".into());
        }
        let Some((account, arn, user)) = lock(&self.state).sts_identity.clone() else {
            return (403, "text/xml", "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidClientTokenId</Code><Message>The security token included in the request is invalid.</Message></Error><RequestId>2</RequestId></ErrorResponse>".into());
        };
        let xml = format!(
            "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult><Arn>{arn}</Arn><UserId>{user}</UserId><Account>{account}</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>01234567-89ab-cdef-0123-456789abcdef</RequestId></ResponseMetadata></GetCallerIdentityResponse>"
        );
        (200, "text/xml", xml)
    }
}
