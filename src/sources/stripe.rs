//! Stripe: events whose webhook delivery failed or is still failing (`GET /v1/events` with
//! `delivery_success=false`, newest first, `starting_after` paging), and the webhook
//! endpoints, compared with what the last collection saw.
//!
//! Stripe retries a delivery for 3 days: an event younger than that is `pending`, an older
//! one `failed`. The two are versions of one event (DESIGN §2.1), so the feed reads back 4
//! days (the retry period and a day's margin) to see each pending event become failed.
//! Stripe advertises no rate limit in its answers; its documented one (25 requests/s in test
//! mode, 100 live) is declared to the pacer.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::Result;
use async_trait::async_trait;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use toml::Spanned;
use toml::de::DeValue;

use super::feed::{Feeds, Item};
use super::{BuildContext, Coverage, Remote, Source, SourceConfig, SourceSpec};
use crate::config::{Doc, Dur};
use crate::http::{Api, Paging};
use crate::model::uid::Origin;
use crate::model::{Change, Dataset, Record, WebhookFailure};
use crate::staging::SourceSession;

pub const KIND: &str = "stripe";
/// The `source` of its rows.
pub const EVENTS: &str = "stripe.events";
pub const ENDPOINTS: &str = "stripe.webhook_endpoints";
pub const VENDOR: &str = "stripe";
pub const DATASETS: &[Dataset] = &[Dataset::WebhookFailures, Dataset::Changes, Dataset::Denials];

const DEFAULT_API: &str = "https://api.stripe.com";
/// Stripe keeps events for 30 days.
const RETENTION_DAYS: u64 = 30;
/// How long Stripe retries a live delivery.
const RETRY_DAYS: i64 = 3;
const DEFAULT_OVERLAP_DAYS: u64 = 4;
const ENDPOINTS_STATE: &str = "webhook_endpoints";

const LIST: Paging = Paging::CursorField {
    items: "data",
    has_more: "has_more",
    id: "id",
    param: "starting_after",
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The `[[credentials]]` entry with the key (a restricted key that may read events and
    /// webhook endpoints is enough).
    pub credential: Option<Spanned<String>>,
    /// Default `https://api.stripe.com`.
    pub api_url: Option<Spanned<String>>,
    /// A folder of saved responses (`v1/events.json`, `v1/webhook_endpoints.json`).
    pub saved: Option<Spanned<String>>,
    /// Whether webhook endpoints are compared with the last collection (default true).
    pub webhook_endpoints: Option<bool>,
}

impl Settings {
    pub fn decode(doc: &mut Doc<'_>, value: &Spanned<DeValue<'_>>, what: &str) -> Option<Self> {
        let settings: Settings = doc.decode(value, what)?;
        Remote::check(
            doc,
            value,
            what,
            settings.api_url.as_ref().map(|u| ("api_url", u)),
            settings.saved.as_ref(),
            (settings.credential.as_ref(), true),
        );
        Some(settings)
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
        Some(Dur(Duration::from_secs(RETENTION_DAYS * 86_400)))
    }

    fn default_rescan_overlap(&self) -> Dur {
        Dur(Duration::from_secs(DEFAULT_OVERLAP_DAYS * 86_400))
    }

    fn least_rescan_overlap(&self) -> Option<(Dur, &'static str)> {
        Some((
            Dur(Duration::from_secs(RETRY_DAYS as u64 * 86_400)),
            "an event pending delivery is read again until Stripe's 3 days of retries are over, to record that it failed",
        ))
    }

    fn needs_token(&self) -> bool {
        self.saved.is_none()
    }

    fn credential(&self) -> Option<&Spanned<String>> {
        self.credential.as_ref()
    }

    fn coverage(&self, tenant: &str) -> Vec<Coverage> {
        vec![Coverage::all_of(VENDOR, tenant)]
    }

    fn build(&self, spec: &SourceSpec, ctx: &BuildContext<'_>) -> Result<Box<dyn Source>> {
        Ok(Box::new(Stripe::new(spec, self, ctx)?))
    }
}

#[derive(Deserialize)]
struct EventItem {
    id: String,
    created: i64,
    #[serde(rename = "type")]
    kind: Option<String>,
    pending_webhooks: Option<i64>,
    request: Option<RequestRef>,
}

/// The API request that caused an event (null ids for automatic events; older API versions
/// wrote the request id as a bare string).
#[derive(Deserialize)]
#[serde(untagged)]
enum RequestRef {
    Object {
        id: Option<String>,
        idempotency_key: Option<String>,
    },
    Id(String),
}

#[derive(Deserialize)]
struct EndpointItem {
    id: String,
    url: Option<String>,
    status: Option<String>,
    #[serde(default)]
    enabled_events: Vec<String>,
}

/// What the last collection saw of an endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Seen {
    url: String,
    status: String,
    events: BTreeSet<String>,
}

pub struct Stripe {
    tenant: String,
    environment: String,
    api: Api,
    endpoints: bool,
    overlap: chrono::Duration,
    lookback: chrono::Duration,
}

impl Stripe {
    fn new(spec: &SourceSpec, s: &Settings, ctx: &BuildContext<'_>) -> Result<Self> {
        let (api, credential) = Remote {
            vendor: VENDOR,
            saved: s.saved.as_ref(),
            credential: s.credential.as_ref(),
            base: s.api_url.as_ref().map_or(DEFAULT_API, |u| u.get_ref()),
            scheme: "Bearer",
            headers: Vec::new(),
            token_example: "env:STRIPE_API_KEY",
        }
        .connect(spec, ctx)?;
        let live = credential
            .as_ref()
            .and_then(|c| c.token.as_ref())
            .is_some_and(|t| t.expose_secret().contains("_live_"));
        api.declare_limit(if live { 100 } else { 25 }, Duration::from_secs(1));
        Ok(Stripe {
            tenant: spec.tenant.clone(),
            environment: ctx.environment(&spec.tenant),
            api,
            endpoints: s.webhook_endpoints.unwrap_or(true),
            overlap: spec.cadence.rescan_overlap.chrono(),
            lookback: spec.cadence.initial_lookback.chrono(),
        })
    }

    fn origin(&self, dataset: Dataset, source: &'static str) -> Origin<'_> {
        Origin {
            dataset,
            vendor: VENDOR,
            tenant: &self.tenant,
            environment: &self.environment,
            source,
        }
    }

    /// An event some endpoint has not acknowledged: `pending` while Stripe retries, `failed`
    /// after; each state is its own version (and its own id for the feed's mark).
    fn event(&self, e: EventItem, now_ms: i64) -> Result<Item, String> {
        let time = e
            .created
            .checked_mul(1000)
            .ok_or_else(|| format!("event {}: created {} is not a time", e.id, e.created))?;
        let pending = e.pending_webhooks.unwrap_or(0);
        if pending <= 0 {
            return Ok(Item {
                time_ms: time,
                id: e.id,
                records: Vec::new(),
            });
        }
        let state = if now_ms - time < RETRY_DAYS * 86_400_000 {
            "pending"
        } else {
            "failed"
        };
        let (request_id, idempotency_key) = match e.request {
            Some(RequestRef::Object {
                id,
                idempotency_key,
            }) => (id, idempotency_key),
            Some(RequestRef::Id(id)) => (Some(id), None),
            None => (None, None),
        };
        let origin = self.origin(Dataset::WebhookFailures, EVENTS);
        let head = origin.header(
            time,
            origin.event_uid(&e.id, Some(state)),
            Some(e.id.clone()),
            None,
        );
        let message = match state {
            "pending" => format!(
                "{pending} webhook endpoint(s) have not acknowledged it; Stripe still retries"
            ),
            _ => format!(
                "{pending} webhook endpoint(s) never acknowledged it within Stripe's {RETRY_DAYS} days of retries"
            ),
        };
        let failure = WebhookFailure {
            head,
            webhook_uid: None,
            delivery_uid: Some(e.id.clone()),
            delivery_group: Some(e.id.clone()),
            webhook_event: e.kind,
            dst_hostname: None,
            url: None,
            http_status: None,
            error_type: Some(state.into()),
            error_message: Some(message),
            attempt: None,
            redelivery: None,
            latency_ms: None,
            request_id,
            idempotency_key,
            pending_webhooks: Some(pending),
        };
        Ok(Item {
            time_ms: time,
            id: format!("{}#{state}", e.id),
            records: vec![failure.into()],
        })
    }

    /// The endpoints now, against what the last collection saw: one change per endpoint
    /// disabled, enabled, created, deleted, moved to another URL, or given other events.
    async fn compare_endpoints(&self, feeds: &mut Feeds<'_, '_>) -> Result<()> {
        let first = self.api.url("/v1/webhook_endpoints?limit=100")?;
        let mut pages = self.api.pages(first, LIST, "GET /v1/webhook_endpoints");
        let mut now: BTreeMap<String, Seen> = BTreeMap::new();
        while let Some(page) = pages.next().await? {
            for raw in page.items_in("data")? {
                let e: EndpointItem = serde_json::from_str(raw.get()).map_err(|err| {
                    anyhow::anyhow!("{}: not a webhook endpoint ({err})", page.at)
                })?;
                let url = e.url.as_deref().map(without_query).unwrap_or_default();
                let mut events: BTreeSet<String> = e.enabled_events.into_iter().collect();
                events.retain(|e| !e.is_empty());
                now.insert(
                    e.id,
                    Seen {
                        url,
                        status: e.status.unwrap_or_default(),
                        events,
                    },
                );
            }
        }
        let before: Option<BTreeMap<String, Seen>> = feeds
            .state(ENDPOINTS_STATE)
            .and_then(|v| serde_json::from_value(v.clone()).ok());
        let time = feeds.session().now().timestamp_millis();
        let changes = endpoint_changes(before.as_ref(), &now);
        let records: Vec<Record> = changes
            .into_iter()
            .map(|(id, action, details)| {
                let origin = self.origin(Dataset::Changes, ENDPOINTS);
                // The time too: disabled, enabled, then disabled again is a new change.
                let version = format!("{action} {details} {time}");
                Change {
                    head: origin.header(
                        time,
                        origin.event_uid(&id, Some(&version)),
                        Some(id.clone()),
                        None,
                    ),
                    action: Some(action),
                    actor_user: None,
                    target_type: Some("webhook_endpoint".into()),
                    target: Some(id),
                    details: Some(details),
                }
                .into()
            })
            .collect();
        feeds.stage(records);
        feeds.set_state(ENDPOINTS_STATE, serde_json::to_value(&now)?);
        feeds.save(&self.api).await
    }
}

/// (endpoint id, action, details) for each difference; a first look reports only endpoints
/// already disabled.
fn endpoint_changes(
    before: Option<&BTreeMap<String, Seen>>,
    now: &BTreeMap<String, Seen>,
) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let describe = |s: &Seen| format!("url={} status={}", s.url, s.status);
    for (id, seen) in now {
        let old = before.and_then(|b| b.get(id));
        match old {
            None if before.is_none() => {
                if seen.status == "disabled" {
                    out.push((
                        id.clone(),
                        "webhook_endpoint.disabled".into(),
                        describe(seen),
                    ));
                }
            }
            None => out.push((
                id.clone(),
                "webhook_endpoint.created".into(),
                describe(seen),
            )),
            Some(old) => {
                if old.status != seen.status {
                    let action = match seen.status.as_str() {
                        "disabled" => "webhook_endpoint.disabled",
                        "enabled" => "webhook_endpoint.enabled",
                        _ => "webhook_endpoint.status_changed",
                    };
                    let details = format!("{} was={}", describe(seen), old.status);
                    out.push((id.clone(), action.into(), details));
                }
                if old.events != seen.events {
                    let added: Vec<&str> = seen
                        .events
                        .difference(&old.events)
                        .map(String::as_str)
                        .collect();
                    let removed: Vec<&str> = old
                        .events
                        .difference(&seen.events)
                        .map(String::as_str)
                        .collect();
                    let details = format!(
                        "url={} added={} removed={}",
                        seen.url,
                        added.join(","),
                        removed.join(",")
                    );
                    out.push((
                        id.clone(),
                        "webhook_endpoint.enabled_events_changed".into(),
                        details,
                    ));
                }
                if old.url != seen.url {
                    let details = format!("url={} was={}", seen.url, old.url);
                    out.push((id.clone(), "webhook_endpoint.url_changed".into(), details));
                }
            }
        }
    }
    for (id, old) in before.into_iter().flatten() {
        if !now.contains_key(id) {
            out.push((id.clone(), "webhook_endpoint.deleted".into(), describe(old)));
        }
    }
    out
}

/// A receiver URL without its query (where receivers put tokens) and credentials.
fn without_query(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            u.set_query(None);
            u.set_fragment(None);
            let _ = u.set_password(None);
            let _ = u.set_username("");
            u.to_string()
        }
        Err(_) => url.split('?').next().unwrap_or(url).to_string(),
    }
}

#[async_trait]
impl Source for Stripe {
    async fn collect(&mut self, session: &mut SourceSession<'_>) -> Result<()> {
        let mut feeds = Feeds::open(session, self.overlap, self.lookback)?;
        let key = "events";
        let now_ms = feeds.session().now().timestamp_millis();
        let since_s = feeds.since_ms(key).div_euclid(1000);
        let first = self.api.url(&format!(
            "/v1/events?delivery_success=false&limit=100&created%5Bgte%5D={since_s}"
        ))?;
        let mut failures = Vec::new();
        if let Err(e) = feeds
            .newest_first(key, &self.api, first, LIST, "GET /v1/events", |page| {
                Ok(page
                    .items_in("data")?
                    .into_iter()
                    .map(|raw| {
                        serde_json::from_str(raw.get())
                            .map_err(|e| format!("not an event: {e}"))
                            .and_then(|e| self.event(e, now_ms))
                    })
                    .collect())
            })
            .await
        {
            failures.push(e);
        }
        if self.endpoints
            && !feeds.broken()
            && !feeds.session().cancelled()
            && let Err(e) = self.compare_endpoints(&mut feeds).await
        {
            failures.push(e);
        }
        feeds.finish(&self.api, failures).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(status: &str, events: &[&str]) -> Seen {
        Seen {
            url: "https://example.com/hook".into(),
            status: status.into(),
            events: events.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn endpoint_changes_against_the_last_look() {
        let first: BTreeMap<String, Seen> = [
            ("we_1".to_string(), seen("enabled", &["charge.failed"])),
            ("we_2".to_string(), seen("disabled", &["*"])),
        ]
        .into();
        let found = endpoint_changes(None, &first);
        assert_eq!(
            found.len(),
            1,
            "a first look reports only what is disabled: {found:?}"
        );
        assert_eq!(found[0].1, "webhook_endpoint.disabled");
        let later: BTreeMap<String, Seen> = [
            (
                "we_1".to_string(),
                seen("disabled", &["charge.failed", "charge.succeeded"]),
            ),
            ("we_3".to_string(), seen("enabled", &["*"])),
        ]
        .into();
        let found = endpoint_changes(Some(&first), &later);
        let actions: Vec<&str> = found.iter().map(|c| c.1.as_str()).collect();
        assert_eq!(
            actions,
            [
                "webhook_endpoint.disabled",
                "webhook_endpoint.enabled_events_changed",
                "webhook_endpoint.created",
                "webhook_endpoint.deleted"
            ]
        );
        assert!(
            found[1].2.contains("added=charge.succeeded removed="),
            "{}",
            found[1].2
        );
        assert!(endpoint_changes(Some(&later), &later).is_empty());
    }

    #[test]
    fn reads_the_fixture_event_and_endpoint() {
        let e: EventItem =
            serde_json::from_str(include_str!("../../tests/fixtures/stripe/event.json"))
                .expect("event");
        assert_eq!(e.pending_webhooks, Some(0));
        assert!(matches!(
            e.request,
            Some(RequestRef::Object { id: None, .. })
        ));
        let w: EndpointItem = serde_json::from_str(include_str!(
            "../../tests/fixtures/stripe/webhook_endpoint.json"
        ))
        .expect("endpoint");
        assert_eq!(w.enabled_events, ["charge.failed", "charge.succeeded"]);
        assert_eq!(
            without_query("https://u:p@x.test/h?token=s"),
            "https://x.test/h"
        );
    }
}
