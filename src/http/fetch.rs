//! The fetcher: one GET through the shared client with pacing, retries and the vendor's
//! wait hints, and the page loop over a pagination style. A source can also be fed from
//! saved responses (`Transport::Files`: what `gh api --paginate` or `curl -o` wrote), read
//! through the same `Pages`, so the demo and the tests run the vendor code unchanged.
//!
//! scopetrail's own 429s and 401/403s are kept as rows with `source = scopetrail.self`
//! (`Api::take_own`), never as the integration's.

use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, anyhow};
use backon::BackoffBuilder;
use reqwest::header::{HeaderMap, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;
use url::Url;

use super::client::{self, Settings};
use super::denial::{self, Explained};
use super::pace::{Pace, Pacer};
use super::paging::Paging;
use super::redact::Redactor;
use super::retry::{self, Answer, header};
use crate::error::{ConfigError, Interrupted, Temporary};
use crate::model::uid::Origin;
use crate::model::{Dataset, Denial, Header, RateLimitEvent, Record};

/// `source` of scopetrail's own failures (DESIGN §7).
pub const OWN_SOURCE: &str = "scopetrail.self";

/// What one run shares between its vendor sources: the client, the budgets, the deadline.
pub struct Engine {
    pub(super) client: reqwest::Client,
    /// For credential probes: follows no redirect.
    pub(super) probe_client: reqwest::Client,
    pacer: Pacer,
    pub(super) settings: Settings,
    pub(super) deadline: tokio::time::Instant,
    redactor: Redactor,
    pub(super) cancel: CancellationToken,
}

impl Engine {
    pub fn new(
        settings: &Settings,
        secrets: impl IntoIterator<Item = SecretString>,
        cancel: CancellationToken,
    ) -> Result<Arc<Engine>> {
        Ok(Arc::new(Engine {
            client: client::build(settings, client::Redirects::Follow)?,
            probe_client: client::build(settings, client::Redirects::Never)?,
            pacer: Pacer::new(settings.budget_share, settings.reserve),
            settings: settings.clone(),
            deadline: tokio::time::Instant::now() + settings.deadline,
            redactor: Redactor::new(secrets),
            cancel,
        }))
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Resolves once the process is asked to stop.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await
    }

    pub fn max_pages(&self) -> u64 {
        self.settings.max_pages
    }
}

/// Where a source's pages come from.
pub enum Transport {
    Http {
        base: Url,
        /// Sent as `Authorization: <scheme> <token>`.
        token: Option<Token>,
        /// `Bearer`, or Okta's `SSWS` for API tokens.
        scheme: &'static str,
        /// Vendor headers sent with every request (`Accept`, API version).
        headers: Vec<(&'static str, String)>,
    },
    /// A folder of saved responses: the request path `/orgs/acme/hooks` is the file
    /// `orgs/acme/hooks.json`, holding one page or many pages one after another.
    Files { dir: PathBuf },
}

/// A token sent with every request: a credential's, or one minted for each request (a GitHub
/// App's JWT lives 10 minutes at most, and a run can wait longer than that).
#[derive(Clone)]
pub enum Token {
    Static(SecretString),
    Minted(Arc<dyn Fn() -> Result<SecretString> + Send + Sync>),
}

impl Token {
    fn get(&self) -> Result<SecretString> {
        match self {
            Token::Static(s) => Ok(s.clone()),
            Token::Minted(mint) => mint(),
        }
    }
}

/// Whom the calls are for: the budget key and the fields of scopetrail's own rows.
#[derive(Debug, Clone)]
pub struct Target {
    pub vendor: String,
    pub tenant: String,
    pub environment: String,
    /// The credential's logical name, and its join key.
    pub credential: Option<String>,
    pub credential_uid: Option<String>,
}

/// Counts for the run record.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub requests: u64,
    pub retries: u64,
    pub rate_limited: u64,
    pub paced_ms: u64,
}

/// One source's view of the engine.
pub struct Api {
    engine: Arc<Engine>,
    transport: Transport,
    target: Target,
    budget: String,
    own: Mutex<Vec<Record>>,
    stats: Mutex<Stats>,
}

/// One page: its JSON text (checked to be JSON; the vendor reads it into its own types),
/// where the page after it is, and where it came from (for errors).
pub struct Page {
    pub body: bytes::Bytes,
    pub next: Option<Url>,
    pub at: String,
}

impl Page {
    /// The page as a JSON array, each item still text: a bad item is reported on its own.
    pub fn items(&self) -> Result<Vec<&serde_json::value::RawValue>> {
        serde_json::from_slice(&self.body)
            .map_err(|e| anyhow!("{}: expected a JSON array of items ({e})", self.at))
    }

    /// The array under `field` of a page that is an object (`data` of a Stripe list,
    /// `incidents` of a status page); a page without it is an error: the wrong endpoint, or
    /// not the vendor's API.
    pub fn items_in(&self, field: &str) -> Result<Vec<&serde_json::value::RawValue>> {
        let page: std::collections::HashMap<
            std::borrow::Cow<'_, str>,
            &serde_json::value::RawValue,
        > = serde_json::from_slice(&self.body)
            .map_err(|e| anyhow!("{}: expected a JSON object ({e})", self.at))?;
        match page.get(field) {
            None => Err(anyhow!(
                "{}: the answer has no `{field}`: is this the vendor's API (check the URL)?",
                self.at
            )),
            Some(list) => serde_json::from_str(list.get())
                .map_err(|e| anyhow!("{}: `{field}` is not an array of items ({e})", self.at)),
        }
    }
}

struct Response {
    headers: HeaderMap,
    body: bytes::Bytes,
}

impl Api {
    pub fn new(engine: Arc<Engine>, transport: Transport, target: Target) -> Api {
        let budget = format!(
            "{}/{}",
            target.vendor,
            target.credential_uid.as_deref().unwrap_or("anonymous")
        );
        Api {
            engine,
            transport,
            target,
            budget,
            own: Mutex::new(Vec::new()),
            stats: Mutex::new(Stats::default()),
        }
    }

    /// A rate limit the vendor documents but does not advertise in its answers: paced like
    /// an advertised one (`[http] budget_share` of it).
    pub fn declare_limit(&self, limit: u64, window: Duration) {
        self.engine.pacer.declare(&self.budget, limit, window);
    }

    pub fn is_files(&self) -> bool {
        matches!(self.transport, Transport::Files { .. })
    }

    /// The URL of an API path (`/orgs/acme/hooks?per_page=100`).
    pub fn url(&self, path_and_query: &str) -> Result<Url> {
        let base = match &self.transport {
            Transport::Http { base, .. } => base.clone(),
            Transport::Files { .. } => Url::parse("file:///").context("file base URL")?,
        };
        let joined = format!("{}{}", base.as_str().trim_end_matches('/'), path_and_query);
        Url::parse(&joined)
            .with_context(|| format!("bad URL {}", self.engine.redactor.scrub(&joined)))
    }

    /// The pages of a list, from `first` on. `operation` names the call in errors and in
    /// scopetrail's own rows (`GET /orgs/{org}/hooks`).
    pub fn pages(&self, first: Url, paging: Paging, operation: &str) -> Pages<'_> {
        Pages {
            api: self,
            paging,
            operation: operation.to_string(),
            next: Some(first),
            seen: HashSet::new(),
            fetched: 0,
            saved: None,
        }
    }

    /// scopetrail's own 429s and denials so far, as rows to stage.
    pub fn take_own(&self) -> Vec<Record> {
        std::mem::take(&mut *self.own.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn has_own(&self) -> bool {
        !self
            .own
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    pub fn stats(&self) -> Stats {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn bump(&self, f: impl FnOnce(&mut Stats)) {
        f(&mut self.stats.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// What a call is called in messages: `github GET /orgs/acme/hooks`.
    fn what(&self, url: &Url) -> String {
        format!(
            "{} GET {}",
            self.target.vendor,
            self.engine.redactor.scrub(url.path())
        )
    }

    async fn get(&self, url: &Url, operation: &str) -> Result<Response> {
        let Transport::Http {
            token,
            scheme,
            headers,
            ..
        } = &self.transport
        else {
            return Err(anyhow!("internal: get() on a file transport"));
        };
        client::check_url(url).map_err(ConfigError)?;
        let what = self.what(url);
        let settings = &self.engine.settings;
        let mut steps = retry::backoff(settings.max_attempts).build();
        let mut attempts = 0u32;
        loop {
            self.pace(&what).await?;
            // Slow answers count too: a run that is past its deadline makes no new calls.
            if tokio::time::Instant::now() >= self.engine.deadline {
                return Err(Temporary(format!(
                    "{what}: the run's deadline ([http] deadline) has passed; the next run goes on from here"
                ))
                .into());
            }
            attempts += 1;
            self.bump(|s| s.requests += 1);
            let mut request = self.engine.client.get(url.clone());
            for (k, v) in headers {
                request = request.header(*k, v);
            }
            if let Some(token) = token {
                let token = token.get()?;
                let mut value =
                    HeaderValue::from_str(&format!("{scheme} {}", token.expose_secret())).map_err(
                        |_| ConfigError(format!("{what}: the token is not a valid header value")),
                    )?;
                value.set_sensitive(true);
                request = request.header(reqwest::header::AUTHORIZATION, value);
            }
            let (answer, failure) = match request.send().await {
                Err(e) => (
                    Answer::Transient { wait: None },
                    format!(
                        "no answer ({})",
                        self.engine.redactor.scrub(&transport_error(&e))
                    ),
                ),
                Ok(response) => {
                    let status = response.status().as_u16();
                    let headers = response.headers().clone();
                    let now = SystemTime::now();
                    self.engine.pacer.after(&self.budget, &headers, now);
                    match response.bytes().await {
                        Err(e) => (
                            Answer::Transient { wait: None },
                            format!(
                                "{status}, body cut short ({})",
                                self.engine.redactor.scrub(&transport_error(&e))
                            ),
                        ),
                        Ok(body) => match retry::classify(status, &headers, &body, now) {
                            // Checked here, without building anything, so a page cut short
                            // is fetched again.
                            Answer::Ok => {
                                match serde_json::from_slice::<serde::de::IgnoredAny>(&body) {
                                    Ok(_) => return Ok(Response { headers, body }),
                                    Err(e) => (
                                        Answer::Transient { wait: None },
                                        format!("{status}, but the answer is not valid JSON: {e}"),
                                    ),
                                }
                            }
                            Answer::Denied => {
                                let explained = denial::explain(&what, status, &headers, &body);
                                self.own_denial(url, operation, status, &headers, &explained);
                                return Err(ConfigError(
                                    self.engine.redactor.scrub(&explained.line).into_owned(),
                                )
                                .into());
                            }
                            Answer::Failed => {
                                let message = denial::body_message(&body)
                                    .map(|m| format!(" ({})", self.engine.redactor.scrub(&m)))
                                    .unwrap_or_default();
                                return Err(anyhow!("{what}: {status}{message}"));
                            }
                            answer @ Answer::RateLimited { .. } => {
                                self.bump(|s| s.rate_limited += 1);
                                self.own_rate_limit(url, operation, status, &headers, now);
                                (answer, format!("{status}, rate limited"))
                            }
                            answer => (answer, format!("{status}")),
                        },
                    }
                }
            };
            let step = steps.next();
            let told = match answer {
                Answer::RateLimited { wait } | Answer::Transient { wait } => wait,
                _ => None,
            };
            let Some(step) = step.filter(|_| attempts < settings.max_attempts) else {
                return Err(Temporary(format!(
                    "{what}: {failure}; gave up after {attempts} attempts, the next run tries again"
                ))
                .into());
            };
            let wait = told.unwrap_or_else(|| retry::full_jitter(step));
            tracing::debug!(call = %what, %failure, wait_ms = wait.as_millis() as u64, "retrying");
            self.bump(|s| s.retries += 1);
            self.sleep(wait, &what, &failure).await?;
        }
    }

    /// Waits while the budget says so; gives up for this run if that would pass the deadline.
    async fn pace(&self, what: &str) -> Result<()> {
        loop {
            match self.engine.pacer.before(&self.budget, SystemTime::now()) {
                Pace::Go => return Ok(()),
                Pace::Wait { wait, why } => {
                    let wait = wait + Duration::from_millis(50);
                    self.bump(|s| s.paced_ms += wait.as_millis() as u64);
                    tracing::info!(call = %what, wait_ms = wait.as_millis() as u64, "pacing: {why}");
                    self.sleep(wait, what, &why).await?;
                }
            }
        }
    }

    async fn sleep(&self, wait: Duration, what: &str, why: &str) -> Result<()> {
        let left = self
            .engine
            .deadline
            .saturating_duration_since(tokio::time::Instant::now());
        if wait > left {
            return Err(Temporary(format!(
                "{what}: {why}; waiting {}s more would pass the run's deadline ([http] deadline), the next run goes on from here",
                wait.as_secs()
            ))
            .into());
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => Ok(()),
            _ = self.engine.cancel.cancelled() => Err(Interrupted.into()),
        }
    }

    fn own_rate_limit(
        &self,
        url: &Url,
        operation: &str,
        status: u16,
        headers: &HeaderMap,
        now: SystemTime,
    ) {
        let row = own_rate_limit(&self.target, url, ("GET", operation), status, headers, now);
        self.own.lock().unwrap_or_else(|p| p.into_inner()).push(row);
    }

    fn own_denial(
        &self,
        url: &Url,
        operation: &str,
        status: u16,
        headers: &HeaderMap,
        e: &Explained,
    ) {
        let time = epoch_ms(SystemTime::now());
        let required = match &e.cause {
            denial::Cause::InsufficientScope { needs, .. } => needs.clone(),
            _ => Vec::new(),
        };
        let row = Denial {
            head: own_header(&self.target, Dataset::Denials, url, status, headers, time),
            http_status: Some(i64::from(status)),
            auth_error: e.auth_error.clone(),
            error_code: e.code.clone(),
            error_message: e
                .message
                .as_deref()
                .map(|m| self.engine.redactor.scrub(m).into_owned()),
            api_service: url.host_str().map(str::to_string),
            api_operation: Some(operation.to_string()),
            http_method: Some("GET".into()),
            url_path: Some(url.path().to_string()),
            actor_user: None,
            actor_app: None,
            credential_uid: self.target.credential_uid.clone(),
            required_scope: required,
            src_ip: None,
            user_agent: Some(client::USER_AGENT.to_string()),
            request_id: request_id(headers),
        };
        self.own
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(row.into());
    }
}

/// The page loop: follows the paging style, refuses a cursor that does not advance, and
/// stops at `[http] max_pages` (`capped()` then says so; the rest is for the next run).
pub struct Pages<'a> {
    api: &'a Api,
    paging: Paging,
    operation: String,
    next: Option<Url>,
    seen: HashSet<String>,
    fetched: u64,
    /// For saved responses: the pages of the file, read at the first call.
    saved: Option<VecDeque<Page>>,
}

impl Pages<'_> {
    pub async fn next(&mut self) -> Result<Option<Page>> {
        if let Transport::Files { dir } = &self.api.transport {
            if self.saved.is_none() {
                let first = self.next.take();
                self.saved = Some(match first {
                    Some(url) => read_saved(dir, &url)?,
                    None => VecDeque::new(),
                });
            }
            return Ok(self.saved.as_mut().and_then(VecDeque::pop_front));
        }
        let Some(url) = self.next.take() else {
            return Ok(None);
        };
        if self.fetched >= self.api.engine.settings.max_pages {
            self.next = Some(url);
            return Ok(None);
        }
        if !self.seen.insert(url.as_str().to_string()) {
            return Err(anyhow!(
                "{}: the next-page link points at a page already read ({}): the vendor's cursor does not advance; stopped after {} pages",
                self.api.what(&url),
                self.api.engine.redactor.scrub(url.as_str()),
                self.fetched
            ));
        }
        let response = self.api.get(&url, &self.operation).await?;
        self.fetched += 1;
        let next = self.paging.next(&url, &response.headers, &response.body);
        if let Some(n) = &next {
            // The token goes with every page: a next link to another origin is refused.
            client::same_origin(&url, n).map_err(|e| anyhow!("{}: {e}", self.api.what(&url)))?;
        }
        self.next = next.clone();
        Ok(Some(Page {
            body: response.body,
            next,
            at: self.api.what(&url),
        }))
    }

    /// True when the loop stopped at `max_pages` with pages left.
    pub fn capped(&self) -> bool {
        self.next.is_some() && self.fetched >= self.api.engine.settings.max_pages
    }

    /// Where the loop would go on.
    pub fn pending(&self) -> Option<&Url> {
        self.next.as_ref()
    }
}

/// `dir/<path>.json`: one JSON value, or several one after another (`gh api --paginate`).
fn read_saved(dir: &std::path::Path, url: &Url) -> Result<VecDeque<Page>> {
    // `/api/v2/incidents.json` is saved as `api/v2/incidents.json` too.
    let rel = url.path().trim_start_matches('/');
    let rel = rel.strip_suffix(".json").unwrap_or(rel);
    let file = dir.join(format!("{rel}.json"));
    let bytes = std::fs::read(&file).map_err(|e| {
        ConfigError(format!(
            "saved responses: cannot read {} ({e}); save it with `gh api --paginate {} > {}`",
            file.display(),
            url.path(),
            file.display()
        ))
    })?;
    let bytes = bytes::Bytes::from(bytes);
    let mut pages = VecDeque::new();
    let mut stream =
        serde_json::Deserializer::from_slice(&bytes).into_iter::<serde::de::IgnoredAny>();
    loop {
        let offset = stream.byte_offset();
        match stream.next() {
            None => break,
            Some(Ok(_)) => pages.push_back(Page {
                body: bytes.slice(offset..stream.byte_offset()),
                next: None,
                at: format!("{} page {}", file.display(), pages.len() + 1),
            }),
            Some(Err(e)) => {
                return Err(anyhow!(
                    "{}: page {} (byte {offset}) is not valid JSON: {e}",
                    file.display(),
                    pages.len() + 1
                ));
            }
        }
    }
    Ok(pages)
}

/// The leading columns of a row about scopetrail's own call.
fn own_header(
    target: &Target,
    dataset: Dataset,
    url: &Url,
    status: u16,
    headers: &HeaderMap,
    time: i64,
) -> Header {
    let request_id = request_id(headers);
    let origin = Origin {
        dataset,
        vendor: &target.vendor,
        tenant: &target.tenant,
        environment: &target.environment,
        source: OWN_SOURCE,
    };
    let id = request_id
        .clone()
        .unwrap_or_else(|| format!("{time} {status} {}", url.path()));
    origin.header(
        time,
        origin.event_uid(&id, None),
        request_id,
        target.credential.clone(),
    )
}

/// A 429 scopetrail itself received (DESIGN §7: staged as `scopetrail.self`, never counted
/// as the integration's).
pub fn own_rate_limit(
    target: &Target,
    url: &Url,
    (method, operation): (&str, &str),
    status: u16,
    headers: &HeaderMap,
    now: SystemTime,
) -> Record {
    let number = |a: &str, b: &str| {
        header(headers, a)
            .or_else(|| header(headers, b))
            .and_then(|v| v.trim().parse::<i64>().ok())
    };
    let time = epoch_ms(now);
    RateLimitEvent {
        head: own_header(target, Dataset::RateLimitEvents, url, status, headers, time),
        http_status: Some(i64::from(status)),
        api_service: url.host_str().map(str::to_string),
        api_operation: Some(operation.to_string()),
        http_method: Some(method.to_string()),
        actor_app: None,
        credential_uid: target.credential_uid.clone(),
        retry_after_s: retry::retry_after(headers, now).map(|d| d.as_secs() as i64),
        ratelimit_limit: number("x-ratelimit-limit", "x-rate-limit-limit"),
        ratelimit_remaining: number("x-ratelimit-remaining", "x-rate-limit-remaining"),
        request_id: request_id(headers),
    }
    .into()
}

fn request_id(headers: &HeaderMap) -> Option<String> {
    [
        "x-github-request-id",
        "request-id",
        "x-request-id",
        "x-okta-request-id",
    ]
    .iter()
    .find_map(|h| header(headers, h))
    .map(str::to_string)
}

fn epoch_ms(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// reqwest's error with its causes, which name the refused connection or the timeout.
pub(super) fn transport_error(e: &reqwest::Error) -> String {
    let mut out = if e.is_timeout() {
        "timed out".to_string()
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
