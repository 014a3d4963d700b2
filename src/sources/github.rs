//! GitHub: webhook deliveries of organization and repository hooks (the hooks are found by
//! listing them; one feed per hook, newest first: the API has no time filter and keeps 3
//! days), and the organization audit log (oldest first, `phrase=created:>=…`, epoch-ms
//! times, `_document_id`). Failed deliveries become `webhook_failures`; token, app, hook,
//! permission, team and member events, and admin decisions that refuse or revoke access,
//! become `changes`.

use std::borrow::Cow;
use std::sync::Arc;

use anyhow::{Result, anyhow};
use async_trait::async_trait;
use chrono::DateTime;
use serde::Deserialize;
use serde_json::Value;
use toml::Spanned;
use toml::de::DeValue;
use url::Url;

use super::feed::{Feeds, Item, Read};
use super::{BuildContext, Coverage, Remote, Source, SourceConfig, SourceSpec};
use crate::bindings::Bindings;
use crate::config::SecretRef;
use crate::config::{Doc, Dur};
use crate::error::ConfigError;
use crate::http::fetch::Target;
use crate::http::{Api, Paging, Token, Transport};
use crate::model::uid::Origin;
use crate::model::{Change, Dataset, Header, Record, WebhookFailure};
use crate::staging::SourceSession;
use secrecy::{ExposeSecret, SecretString};

pub const KIND: &str = "github";
pub const VENDOR: &str = "github";
pub const DELIVERIES: &str = "github.webhook_deliveries";
pub const AUDIT_LOG: &str = "github.audit_log";
pub const DATASETS: &[Dataset] = &[Dataset::WebhookFailures, Dataset::Changes, Dataset::Denials];

/// GitHub keeps webhook deliveries for 3 days.
const RETENTION_DAYS: u64 = 3;
const DEFAULT_API: &str = "https://api.github.com";
/// Audit events can be indexed a little after their time.
const DEFAULT_OVERLAP_MINUTES: u64 = 5;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Organization: its hooks' deliveries and its audit log.
    pub org: Option<String>,
    /// `owner/repo`: their hooks' deliveries.
    #[serde(default)]
    pub repos: Vec<Spanned<String>>,
    /// The `[[credentials]]` entry (with a `token`) the calls are made with.
    pub credential: Option<Spanned<String>>,
    /// `https://api.github.com`, or GitHub Enterprise Server's `https://HOST/api/v3`.
    pub api_url: Option<Spanned<String>>,
    /// A folder of saved responses to read instead of the API.
    pub saved: Option<Spanned<String>>,
    /// Default: true.
    pub webhook_deliveries: Option<bool>,
    /// Default: true when `org` or `enterprise` is set (needs GitHub Enterprise Cloud and
    /// `read:audit_log`).
    pub audit_log: Option<bool>,
    /// An enterprise's slug: its audit log.
    pub enterprise: Option<String>,
    /// A GitHub App (its numeric id, or its client id): the deliveries of its webhook, read
    /// with a JWT signed by `app_private_key`.
    pub app_id: Option<Spanned<AppId>>,
    /// A secret reference (`file:…`, `env:…`, `credential:…`) to the App's private key (PEM).
    pub app_private_key: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum AppId {
    Number(u64),
    Text(String),
}

impl std::fmt::Display for AppId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppId::Number(n) => write!(f, "{n}"),
            AppId::Text(t) => f.write_str(t),
        }
    }
}

impl Settings {
    pub fn decode(doc: &mut Doc<'_>, value: &Spanned<DeValue<'_>>, what: &str) -> Option<Settings> {
        let settings: Settings = doc.decode(value, what)?;
        if settings.org.is_none()
            && settings.repos.is_empty()
            && settings.enterprise.is_none()
            && settings.app_id.is_none()
        {
            doc.error(value.span(), format!("{what}: give `org` (organization hooks and audit log), `repos` (repository hooks), `enterprise` (its audit log) or `app_id` (a GitHub App's webhook deliveries)"));
        }
        match (&settings.app_id, &settings.app_private_key) {
            (Some(id), None) if settings.saved.is_none() => doc.error(
                id.span(),
                format!("{what}: app_id needs app_private_key, a reference to the App's private key (file:…, env:… or credential:…)"),
            ),
            (None, Some(key)) => doc.error(key.span(), format!("{what}: app_private_key needs app_id")),
            (_, Some(key)) => {
                if let Err(e) = SecretRef::parse(key.get_ref()) {
                    doc.error(key.span(), format!("{what}: app_private_key: {e}"));
                }
            }
            _ => {}
        }
        for repo in &settings.repos {
            let parts: Vec<&str> = repo.get_ref().split('/').collect();
            if parts.len() != 2 || parts.iter().any(|p| p.is_empty()) {
                doc.error(
                    repo.span(),
                    format!("{what}: `{}` is not owner/repo", repo.get_ref()),
                );
            }
        }
        Remote::check(
            doc,
            value,
            what,
            settings.api_url.as_ref().map(|u| ("api_url", u)),
            settings.saved.as_ref(),
            (settings.credential.as_ref(), settings.needs_credential()),
        );
        Some(settings)
    }

    /// Everything but an App's deliveries is read with the credential's token.
    fn needs_credential(&self) -> bool {
        self.org.is_some() || !self.repos.is_empty() || self.enterprise.is_some()
    }

    fn deliveries(&self) -> bool {
        self.webhook_deliveries.unwrap_or(true)
    }

    fn audit(&self) -> bool {
        self.audit_log.unwrap_or(true)
    }
}

impl SourceConfig for Settings {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn datasets(&self) -> &'static [Dataset] {
        DATASETS
    }

    fn default_retention(&self) -> Option<Dur> {
        Some(Dur(std::time::Duration::from_secs(RETENTION_DAYS * 86_400)))
    }

    fn default_rescan_overlap(&self) -> Dur {
        Dur(std::time::Duration::from_secs(DEFAULT_OVERLAP_MINUTES * 60))
    }

    fn needs_token(&self) -> bool {
        self.saved.is_none() && self.needs_credential()
    }

    fn credential(&self) -> Option<&Spanned<String>> {
        self.credential.as_ref()
    }

    fn coverage(&self, tenant: &str) -> Vec<Coverage> {
        vec![Coverage::all_of(VENDOR, tenant)]
    }

    fn build(&self, spec: &SourceSpec, ctx: &BuildContext<'_>) -> Result<Box<dyn Source>> {
        Ok(Box::new(GitHub::new(spec, self, ctx)?))
    }
}

/// What a hook listing says of each hook.
#[derive(Deserialize)]
struct HookItem {
    id: i64,
    config: Option<HookConfig>,
}

#[derive(Deserialize)]
struct HookConfig {
    url: Option<String>,
}

/// One item of a deliveries page (the fixture's shape); read straight into this, not into a
/// generic JSON tree, since a busy hook has many.
#[derive(Deserialize)]
struct DeliveryItem<'a> {
    id: i64,
    #[serde(borrow)]
    guid: Option<Cow<'a, str>>,
    #[serde(borrow)]
    delivered_at: Cow<'a, str>,
    redelivery: Option<bool>,
    duration: Option<f64>,
    #[serde(borrow)]
    status: Option<Cow<'a, str>>,
    status_code: Option<i64>,
    #[serde(borrow)]
    event: Option<Cow<'a, str>>,
    #[serde(borrow)]
    action: Option<Cow<'a, str>>,
}

/// A hook whose deliveries are read: where they are listed and where it delivers.
struct Hook {
    /// Its feed's key in the source's cursor: its path, or `app/<app id>/hook/deliveries`
    /// (another App is another feed).
    key: String,
    /// `orgs/acme/hooks/1/deliveries`, `repos/acme/app/hooks/2/deliveries` or
    /// `app/hook/deliveries`.
    path: String,
    operation: &'static str,
    /// `webhook_uid` of its rows: the hook id, or `app/<app id>`.
    uid: String,
    url: Option<String>,
}

impl Hook {
    fn feed(&self) -> String {
        self.key.clone()
    }
}

/// A GitHub App whose webhook deliveries are read: they need a JWT of the App, minted at each
/// collection (GitHub accepts one for at most 10 minutes).
struct App {
    id: AppId,
    /// `None` with saved responses.
    key: Option<jsonwebtoken::EncodingKey>,
}

pub struct GitHub {
    org: Option<String>,
    repos: Vec<String>,
    enterprise: Option<String>,
    app: Option<App>,
    deliveries: bool,
    audit: bool,
    /// What the App's calls need besides its JWT.
    engine: Arc<crate::http::Engine>,
    base: Url,
    saved: Option<std::path::PathBuf>,
    tenant: String,
    environment: String,
    api: Api,
    bindings: Arc<Bindings>,
    overlap: chrono::Duration,
    lookback: chrono::Duration,
}

impl GitHub {
    pub fn new(spec: &SourceSpec, s: &Settings, ctx: &BuildContext<'_>) -> Result<Self> {
        let base = s.api_url.as_ref().map_or(DEFAULT_API, |u| u.get_ref());
        let (api, _) = Remote {
            vendor: VENDOR,
            saved: s.saved.as_ref(),
            credential: s.credential.as_ref(),
            base,
            scheme: "Bearer",
            headers: headers(),
            token_example: "env:GITHUB_TOKEN",
        }
        .connect(spec, ctx)?;
        let app = match &s.app_id {
            None => None,
            Some(id) => Some(App {
                id: id.get_ref().clone(),
                key: match (&s.app_private_key, &s.saved) {
                    (Some(key), None) => Some(app_key(&spec.name, key.get_ref(), ctx.base_dir)?),
                    _ => None,
                },
            }),
        };
        Ok(GitHub {
            org: s.org.clone(),
            repos: s.repos.iter().map(|r| r.get_ref().clone()).collect(),
            enterprise: s.enterprise.clone(),
            app,
            engine: ctx.engine.clone(),
            base: Url::parse(base)
                .map_err(|e| ConfigError(format!("source {}: api_url: {e}", spec.name)))?,
            saved: s.saved.as_ref().map(|d| ctx.base_dir.join(d.get_ref())),
            deliveries: s.deliveries(),
            audit: s.audit(),
            tenant: spec.tenant.clone(),
            environment: ctx.environment(&spec.tenant),
            api,
            bindings: ctx.bindings.clone(),
            overlap: spec.cadence.rescan_overlap.chrono(),
            lookback: spec.cadence.initial_lookback.chrono(),
        })
    }

    fn head(
        &self,
        dataset: Dataset,
        source: &str,
        time: i64,
        id: &str,
        credential: Option<String>,
    ) -> Header {
        let origin = Origin {
            dataset,
            vendor: VENDOR,
            tenant: &self.tenant,
            environment: &self.environment,
            source,
        };
        origin.header(
            time,
            origin.event_uid(id, None),
            Some(id.into()),
            credential,
        )
    }

    /// The App's view of the API: its webhook's deliveries need a JWT of the App, not the
    /// credential's token.
    fn app_api(&self, app: &App) -> Result<Api> {
        let transport = match (&self.saved, &app.key) {
            (Some(dir), _) => Transport::Files { dir: dir.clone() },
            (None, Some(key)) => Transport::Http {
                base: self.base.clone(),
                token: Some(Token::Minted({
                    let (id, key) = (app.id.clone(), key.clone());
                    Arc::new(move || app_jwt(&id, &key))
                })),
                scheme: "Bearer",
                headers: headers(),
            },
            (None, None) => return Err(anyhow!("internal: an App without its key")),
        };
        let target = Target {
            vendor: VENDOR.into(),
            tenant: self.tenant.clone(),
            environment: self.environment.clone(),
            credential: None,
            credential_uid: Some(format!("app/{}", app.id)),
        };
        Ok(Api::new(self.engine.clone(), transport, target))
    }

    async fn hooks(&self, owner: &str) -> Result<Vec<Hook>> {
        let first = self.api.url(&format!("/{owner}/hooks?per_page=100"))?;
        let operation = if owner.starts_with("orgs/") {
            "GET /orgs/{org}/hooks"
        } else {
            "GET /repos/{owner}/{repo}/hooks"
        };
        let mut pages = self.api.pages(first, Paging::Link, operation);
        let mut hooks = Vec::new();
        while let Some(page) = pages.next().await? {
            let listed: Vec<HookItem> = serde_json::from_slice(&page.body)
                .map_err(|e| anyhow!("{}: not a list of hooks ({e})", page.at))?;
            let operation = if owner.starts_with("orgs/") {
                "GET /orgs/{org}/hooks/{hook_id}/deliveries"
            } else {
                "GET /repos/{owner}/{repo}/hooks/{hook_id}/deliveries"
            };
            hooks.extend(listed.into_iter().map(|h| Hook {
                key: format!("{owner}/hooks/{}/deliveries", h.id),
                path: format!("{owner}/hooks/{}/deliveries", h.id),
                operation,
                uid: h.id.to_string(),
                url: h.config.and_then(|c| c.url),
            }));
        }
        Ok(hooks)
    }

    async fn collect_hook(&self, feeds: &mut Feeds<'_, '_>, api: &Api, hook: &Hook) -> Result<()> {
        let first = api.url(&format!("/{}?per_page=100", hook.path))?;
        let key = hook.feed();
        feeds
            .newest_first(&key, api, first, Paging::Link, hook.operation, |page| {
                Ok(page
                    .items()?
                    .into_iter()
                    .map(|d| {
                        serde_json::from_str(d.get())
                            .map_err(|e| format!("not a delivery: {e}"))
                            .and_then(|d| self.delivery(hook, d))
                    })
                    .collect())
            })
            .await
    }

    fn delivery(&self, hook: &Hook, d: DeliveryItem<'_>) -> Result<Item, String> {
        let id = d.id.to_string();
        let time = DateTime::parse_from_rfc3339(&d.delivered_at)
            .map_err(|e| format!("delivery {id}: delivered_at `{}`: {e}", d.delivered_at))?
            .timestamp_millis();
        let status = d.status.as_deref().unwrap_or("");
        let code = d.status_code.unwrap_or(0);
        let failed = status != "OK" || code == 0 || code >= 400;
        let mut records = Vec::new();
        if failed {
            let (dst_hostname, url) = match hook.url.as_deref().and_then(|u| Url::parse(u).ok()) {
                Some(mut u) => {
                    u.set_query(None);
                    u.set_fragment(None);
                    let _ = u.set_password(None);
                    let _ = u.set_username("");
                    (u.host_str().map(str::to_string), Some(u.to_string()))
                }
                None => (None, None),
            };
            records.push(
                WebhookFailure {
                    head: self.head(Dataset::WebhookFailures, DELIVERIES, time, &id, None),
                    webhook_uid: Some(hook.uid.clone()),
                    delivery_uid: Some(id.clone()),
                    delivery_group: d.guid.map(Cow::into_owned),
                    webhook_event: d.event.map(|e| match d.action {
                        Some(a) => format!("{e}.{a}"),
                        None => e.into_owned(),
                    }),
                    dst_hostname,
                    url,
                    http_status: (code > 0).then_some(code),
                    error_type: Some(error_type(code, status).into()),
                    error_message: (!status.is_empty()).then(|| status.to_string()),
                    attempt: None,
                    redelivery: d.redelivery,
                    latency_ms: d.duration.map(|s| (s * 1000.0).round() as i64),
                    request_id: None,
                    idempotency_key: None,
                    pending_webhooks: None,
                }
                .into(),
            );
        }
        Ok(Item {
            time_ms: time,
            id,
            records,
        })
    }

    /// The audit log of `owner`: `orgs/acme` or `enterprises/acme-corp`.
    async fn collect_audit(&self, feeds: &mut Feeds<'_, '_>, owner: &str) -> Result<()> {
        let key = format!("{owner}/audit-log");
        // Whole seconds: the search syntax has no milliseconds.
        let since = crate::model::to_datetime(feeds.since_ms(&key))
            .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .ok_or_else(|| anyhow!("audit log of {owner}: its mark is not a time"))?;
        let operation = if owner.starts_with("orgs/") {
            "GET /orgs/{org}/audit-log"
        } else {
            "GET /enterprises/{enterprise}/audit-log"
        };
        let mut first = self.api.url(&format!("/{key}"))?;
        first
            .query_pairs_mut()
            .append_pair("phrase", &format!("created:>={since}"))
            .append_pair("include", "all")
            .append_pair("order", "asc")
            .append_pair("per_page", "100");
        feeds
            .oldest_first(&key, &self.api, first, Paging::Link, operation, |page| {
                Ok(page
                    .items()?
                    .into_iter()
                    .map(|e| {
                        serde_json::from_str(e.get())
                            .map_err(|e| format!("not JSON: {e}"))
                            .and_then(|e: Value| self.audit_event(&e))
                    })
                    .collect::<Read>())
            })
            .await
    }

    fn audit_event(&self, e: &Value) -> Result<Item, String> {
        let id = e
            .get("_document_id")
            .and_then(Value::as_str)
            .ok_or("an audit event without `_document_id`")?
            .to_string();
        let time = e
            .get("created_at")
            .or_else(|| e.get("@timestamp"))
            .and_then(Value::as_i64)
            .ok_or_else(|| format!("audit event {id}: no epoch-ms `created_at`"))?;
        let action = e.get("action").and_then(Value::as_str).unwrap_or("");
        let mut records = Vec::new();
        if is_change(action) {
            let text = |k: &str| e.get(k).and_then(Value::as_str).map(str::to_string);
            let hashed = text("hashed_token");
            let credential = hashed.as_deref().and_then(|h| {
                self.bindings
                    .claim_uid(VENDOR, &self.tenant, h)
                    .map(|c| c.name.clone())
            });
            let (target_type, target) = target(e);
            let details: Vec<String> = [
                "hashed_token",
                "token_scopes",
                "programmatic_access_type",
                "token_id",
                "oauth_application_name",
                "integration",
                "permission",
                "old_permission",
                "repo",
                "hook_id",
                "team",
                "business",
            ]
            .iter()
            .filter_map(|k| {
                let v = e.get(*k)?;
                let v = match v {
                    Value::String(s) => s.clone(),
                    Value::Null => return None,
                    other => other.to_string(),
                };
                Some(format!("{k}={v}"))
            })
            .chain(hook_url(e).map(|u| format!("config.url={u}")))
            .collect();
            records.push(Record::from(Change {
                head: self.head(Dataset::Changes, AUDIT_LOG, time, &id, credential),
                action: Some(action.to_string()),
                actor_user: text("actor"),
                target_type,
                target,
                details: (!details.is_empty()).then(|| details.join(" ")),
            }));
        }
        Ok(Item {
            time_ms: time,
            id,
            records,
        })
    }
}

/// Audit actions that can explain a failure: credentials, apps, hooks, permissions, teams and
/// members, and admin decisions that refuse or revoke access.
fn is_change(action: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "oauth_",
        "org.oauth_app_access",
        "integration",
        "org.integration",
        "personal_access_token",
        "org_credential_authorization",
        "org.sso_response",
        "hook",
        "team",
        "org.add_member",
        "org.remove_member",
        "org.update_member",
        "org.invite_member",
        "org.add_outside_collaborator",
        "org.remove_outside_collaborator",
        "org.update_default_repository_permission",
        "org.update_member_repository",
        "repo.add_member",
        "repo.remove_member",
        "repo.update_member",
        "role",
        "org.update_organization_role",
        "deploy_key",
        "public_key",
        "org.disable_saml",
        "org.enable_saml",
        "ip_allow_list",
    ];
    action.ends_with("_denied")
        || action.ends_with(".deny")
        || action.ends_with("access_revoked")
        || PREFIXES.iter().any(|p| action.starts_with(p))
}

/// A hook's delivery URL from a config change, without its query (where receivers put
/// tokens); the rest of the config (the masked secret) is left out.
fn hook_url(e: &Value) -> Option<String> {
    let mut url = Url::parse(e.pointer("/config/url")?.as_str()?).ok()?;
    url.set_query(None);
    let _ = url.set_password(None);
    Some(url.to_string())
}

/// What a change acted on, most specific first.
fn target(e: &Value) -> (Option<String>, Option<String>) {
    for (key, kind) in [
        ("user", "user"),
        ("team", "team"),
        ("hook_id", "hook"),
        ("oauth_application_name", "oauth_application"),
        ("integration", "github_app"),
        ("repo", "repository"),
        ("org", "organization"),
    ] {
        match e.get(key) {
            Some(Value::String(s)) if !s.is_empty() => return (Some(kind.into()), Some(s.clone())),
            Some(Value::Number(n)) => return (Some(kind.into()), Some(n.to_string())),
            _ => {}
        }
    }
    (None, None)
}

/// `error_type` of a failed delivery: from the status code, or from GitHub's status text
/// when there was no answer.
fn error_type(code: i64, status: &str) -> &'static str {
    match code {
        400..=499 => "http_4xx",
        500..=599 => "http_5xx",
        _ => {
            let s = status.to_ascii_lowercase();
            if s.contains("timed out") || s.contains("timeout") {
                "timeout"
            } else if s.contains("dns") || s.contains("resolve") || s.contains("no such host") {
                "dns"
            } else if s.contains("ssl") || s.contains("tls") || s.contains("certificate") {
                "tls"
            } else {
                "connect"
            }
        }
    }
}

/// The headers of every GitHub API call.
fn headers() -> Vec<(&'static str, String)> {
    vec![
        ("accept", "application/vnd.github+json".into()),
        ("x-github-api-version", "2022-11-28".into()),
    ]
}

/// The App's private key, read from its secret reference; never echoed in errors.
fn app_key(
    source: &str,
    reference: &str,
    base: &std::path::Path,
) -> Result<jsonwebtoken::EncodingKey> {
    let pem = SecretRef::parse(reference)
        .and_then(|r| r.resolve(base))
        .map_err(|e| ConfigError(format!("source {source}: app_private_key: {e}")))?;
    jsonwebtoken::EncodingKey::from_rsa_pem(pem.expose_secret().as_bytes()).map_err(|e| {
        ConfigError(format!(
            "source {source}: app_private_key is not an RSA private key in PEM ({e}); use the .pem file GitHub generated for the App"
        ))
        .into()
    })
}

/// A JWT of the App (RS256), valid from a minute ago (clock drift) for 9 minutes: GitHub
/// refuses one that lives longer than 10. It uses the real clock, not a pinned one.
fn app_jwt(id: &AppId, key: &jsonwebtoken::EncodingKey) -> Result<SecretString> {
    let now = chrono::Utc::now().timestamp();
    let iss = match id {
        AppId::Number(n) => serde_json::json!(n),
        AppId::Text(t) => serde_json::json!(t),
    };
    let claims = serde_json::json!({"iat": now - 60, "exp": now + 540, "iss": iss});
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    let token = jsonwebtoken::encode(&header, &claims, key)
        .map_err(|e| anyhow!("signing the GitHub App's JWT: {e}"))?;
    Ok(SecretString::from(token))
}

#[async_trait]
impl Source for GitHub {
    async fn collect(&mut self, session: &mut SourceSession<'_>) -> Result<()> {
        let mut feeds = Feeds::open(session, self.overlap, self.lookback)?;
        // A failure in one list (a hook whose deliveries the token may not read) does not
        // stop the others; the first is reported once they ran.
        let mut failures: Vec<anyhow::Error> = Vec::new();
        if self.deliveries {
            let owners = self
                .org
                .iter()
                .map(|o| format!("orgs/{o}"))
                .chain(self.repos.iter().map(|r| format!("repos/{r}")));
            for owner in owners {
                match self.hooks(&owner).await {
                    Ok(hooks) => {
                        let listed: Vec<String> = hooks.iter().map(Hook::feed).collect();
                        feeds.retain(&format!("{owner}/hooks/"), &listed);
                        for hook in &hooks {
                            if feeds.session().cancelled() || feeds.broken() {
                                break;
                            }
                            if let Err(e) = self.collect_hook(&mut feeds, &self.api, hook).await {
                                failures.push(e);
                            }
                        }
                    }
                    Err(e) => {
                        feeds.save(&self.api).await?;
                        failures.push(e);
                    }
                }
            }
            if let Some(app) = &self.app
                && !feeds.session().cancelled()
                && !feeds.broken()
            {
                let hook = Hook {
                    key: format!("app/{}/hook/deliveries", app.id),
                    path: "app/hook/deliveries".into(),
                    operation: "GET /app/hook/deliveries",
                    uid: format!("app/{}", app.id),
                    url: None,
                };
                let read = match self.app_api(app) {
                    Ok(api) => {
                        let read = self.collect_hook(&mut feeds, &api, &hook).await;
                        feeds.count_calls(&api);
                        // The App's own refusals, after the feed's last save.
                        if api.has_own() && !feeds.broken() {
                            feeds.save(&api).await?;
                        }
                        read
                    }
                    Err(e) => Err(e),
                };
                if let Err(e) = read {
                    failures.push(e);
                }
            }
        }
        if self.audit {
            let owners = self
                .org
                .iter()
                .map(|o| format!("orgs/{o}"))
                .chain(self.enterprise.iter().map(|e| format!("enterprises/{e}")));
            for owner in owners {
                if feeds.session().cancelled() || feeds.broken() {
                    break;
                }
                if let Err(e) = self.collect_audit(&mut feeds, &owner).await {
                    failures.push(e);
                }
            }
        }
        // scopetrail's own rows of calls after the last save (a hook listing refused) are
        // staged by `finish`.
        feeds.finish(&self.api, failures).await
    }
}
