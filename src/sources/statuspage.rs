//! Vendor status pages: incidents from a Statuspage v2 page (`/api/v2/incidents.json`,
//! GitHub's, Atlassian's and many other vendors' status pages), or from that file saved. The endpoint
//! lists only the most recent incidents (50), so it is collected often. An incident is staged
//! again at each `updated_at`, so its resolution is recorded; analysis keeps the latest
//! version of each incident.
//!
//! Status pages of other providers are configured with their `provider` so `validate` can say
//! they are not supported, rather than the page being silently ignored.

use anyhow::Result;
use async_trait::async_trait;
use chrono::DateTime;
use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;
use url::Url;

use super::feed::{Feeds, Item};
use super::{BuildContext, Coverage, Remote, Source, SourceConfig, SourceSpec};
use crate::config::{Doc, Dur, Name};
use crate::http::{Api, Paging};
use crate::model::uid::Origin;
use crate::model::{Dataset, Incident, Record};
use crate::staging::SourceSession;

pub const KIND: &str = "statuspage";
/// The `source` of its rows.
pub const INCIDENTS_SOURCE: &str = "statuspage.incidents";
pub const DATASETS: &[Dataset] = &[Dataset::Incidents];
const INCIDENTS: &str = "/api/v2/incidents.json";
/// The providers this build reads.
const PROVIDERS: &[&str] = &["statuspage"];
/// A version seen again within this much of the newest is recognized by the feed's mark.
const DEFAULT_OVERLAP_HOURS: u64 = 24;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Whose status page it is: the `vendor` of its rows, as in the bindings (`github`).
    pub vendor: Spanned<Name>,
    /// `statuspage` (Atlassian Statuspage v2, the default); any other provider is refused by
    /// `validate` as not supported.
    pub provider: Option<Spanned<String>>,
    /// The page's address, `https://www.githubstatus.com`.
    pub page_url: Option<Spanned<String>>,
    /// A folder holding a saved `api/v2/incidents.json`, read instead of the page.
    pub saved: Option<Spanned<String>>,
}

impl Settings {
    pub fn decode(doc: &mut Doc<'_>, value: &Spanned<DeValue<'_>>, what: &str) -> Option<Self> {
        let settings: Settings = doc.decode(value, what)?;
        if let Some(provider) = &settings.provider
            && !PROVIDERS.contains(&provider.get_ref().as_str())
        {
            doc.error(
                provider.span(),
                format!(
                    "{what}: status pages of provider `{}` are not supported (this build reads: {}); remove the source, or watch that page by hand",
                    provider.get_ref(),
                    PROVIDERS.join(", ")
                ),
            );
        }
        match (&settings.page_url, &settings.saved) {
            (Some(url), None) => match Url::parse(url.get_ref()) {
                Ok(u) => {
                    if let Err(e) = crate::http::client::check_url(&u) {
                        doc.error(url.span(), format!("{what}: page_url: {e}"));
                    }
                }
                Err(e) => doc.error(url.span(), format!("{what}: page_url is not a URL: {e}")),
            },
            (None, Some(_)) => {}
            (Some(_), Some(saved)) => doc.error(
                saved.span(),
                format!("{what}: give `page_url` or `saved` (a folder with api/v2/incidents.json), not both"),
            ),
            (None, None) => doc.error(
                value.span(),
                format!("{what}: give `page_url` (e.g. \"https://www.githubstatus.com\") or `saved` (a folder with api/v2/incidents.json)"),
            ),
        }
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

    /// The page lists only its latest incidents, and an incident can start and end within
    /// an hour.
    fn default_collect_every(&self) -> Option<Dur> {
        Some(Dur(std::time::Duration::from_secs(15 * 60)))
    }

    fn default_rescan_overlap(&self) -> Dur {
        Dur(std::time::Duration::from_secs(DEFAULT_OVERLAP_HOURS * 3600))
    }

    /// Incidents concern a vendor, not a credential.
    fn coverage(&self, _tenant: &str) -> Vec<Coverage> {
        Vec::new()
    }

    fn build(&self, spec: &SourceSpec, ctx: &BuildContext<'_>) -> Result<Box<dyn Source>> {
        Ok(Box::new(StatusPage::new(spec, self, ctx)?))
    }
}

#[derive(Deserialize)]
struct IncidentItem {
    id: String,
    name: Option<String>,
    status: Option<String>,
    impact: Option<String>,
    created_at: Option<String>,
    updated_at: Option<String>,
    started_at: Option<String>,
    resolved_at: Option<String>,
    shortlink: Option<String>,
    /// Null on some pages.
    components: Option<Vec<ComponentItem>>,
}

#[derive(Deserialize)]
struct ComponentItem {
    name: Option<String>,
}

pub struct StatusPage {
    vendor: String,
    tenant: String,
    environment: String,
    /// Where an incident without a shortlink is shown.
    page: Option<String>,
    api: Api,
    overlap: chrono::Duration,
    lookback: chrono::Duration,
}

impl StatusPage {
    fn new(spec: &SourceSpec, s: &Settings, ctx: &BuildContext<'_>) -> Result<Self> {
        let environment = ctx.environment(&spec.tenant);
        let vendor = s.vendor.get_ref().0.clone();
        let (api, _) = Remote {
            vendor: &vendor,
            saved: s.saved.as_ref(),
            credential: None,
            base: s.page_url.as_ref().map_or("", |u| u.get_ref()),
            scheme: "Bearer",
            headers: vec![("accept", "application/json".into())],
            token_example: "",
        }
        .connect(spec, ctx)?;
        Ok(StatusPage {
            page: s
                .page_url
                .as_ref()
                .map(|u| u.get_ref().trim_end_matches('/').to_string()),
            vendor,
            tenant: spec.tenant.clone(),
            environment,
            api,
            overlap: spec.cadence.rescan_overlap.chrono(),
            lookback: spec.cadence.initial_lookback.chrono(),
        })
    }

    /// One version of an incident: its id and `updated_at` make the row; the mark knows the
    /// version by both.
    fn incident(&self, i: IncidentItem) -> Result<Item, String> {
        let time = |field: &str, v: &Option<String>| -> Result<Option<i64>, String> {
            v.as_deref()
                .map(|t| {
                    DateTime::parse_from_rfc3339(t)
                        .map(|t| t.timestamp_millis())
                        .map_err(|e| format!("incident {}: {field} `{t}`: {e}", i.id))
                })
                .transpose()
        };
        let created = time("created_at", &i.created_at)?;
        let updated = time("updated_at", &i.updated_at)?
            .or(created)
            .ok_or_else(|| format!("incident {}: neither updated_at nor created_at", i.id))?;
        let started = time("started_at", &i.started_at)?.or(created);
        let resolved = time("resolved_at", &i.resolved_at)?;
        let version = i.updated_at.clone().unwrap_or_default();
        let origin = Origin {
            dataset: Dataset::Incidents,
            vendor: &self.vendor,
            tenant: &self.tenant,
            environment: &self.environment,
            source: INCIDENTS_SOURCE,
        };
        let head = origin.header(
            updated,
            origin.event_uid(&i.id, Some(&version)),
            Some(i.id.clone()),
            None,
        );
        let mut components: Vec<String> = i
            .components
            .into_iter()
            .flatten()
            .filter_map(|c| c.name)
            .collect();
        components.sort();
        components.dedup();
        let url = i.shortlink.or_else(|| {
            self.page
                .as_ref()
                .map(|page| format!("{page}/incidents/{}", i.id))
        });
        Ok(Item {
            time_ms: updated,
            id: format!("{}@{version}", i.id),
            records: vec![Record::from(Incident {
                head,
                name: i.name,
                status: i.status,
                impact: i.impact,
                components,
                started_dt: started,
                resolved_dt: resolved,
                url,
            })],
        })
    }
}

#[async_trait]
impl Source for StatusPage {
    async fn collect(&mut self, session: &mut SourceSession<'_>) -> Result<()> {
        let mut feeds = Feeds::open(session, self.overlap, self.lookback)?;
        let first = self.api.url(INCIDENTS)?;
        let read = feeds
            .oldest_first(
                "incidents",
                &self.api,
                first,
                Paging::Single,
                "GET /api/v2/incidents.json",
                |page| {
                    Ok(page
                        .items_in("incidents")?
                        .into_iter()
                        .map(|raw| {
                            serde_json::from_str(raw.get())
                                .map_err(|e| format!("not an incident: {e}"))
                                .and_then(|i| self.incident(i))
                        })
                        .collect())
                },
            )
            .await;
        let failures = read.err().into_iter().collect();
        feeds.finish(&self.api, failures).await
    }
}
