//! An in-process fake of a public Statuspage v2 API (here githubstatus.com's page) on
//! 127.0.0.1, no authentication. Serving and faults: tests/fake_http.
//!
//! There is no Statuspage fixture: incidents are built in the documented v2 shape
//! (https://www.githubstatus.com/api, https://doers.statuspage.io/api/v2/): `id`, `name`,
//! `status` (investigating, identified, monitoring, resolved, postmortem), `created_at`,
//! `updated_at`, `monitoring_at`, `resolved_at`, `impact` (none, minor, major, critical),
//! `shortlink`, `started_at`, `page_id`, `incident_updates` (newest first) and `components`,
//! with times such as `2026-11-16T09:00:12.345Z`.
//!
//! Fakes (GET only; anything else is a 404):
//! - `/api/v2/incidents.json`: the page and the 50 most recent incidents (by `created_at`,
//!   newest first), unresolved or not;
//! - `/api/v2/incidents/unresolved.json`: the unresolved ones;
//! - `/api/v2/summary.json`: the page, its components, the unresolved incidents, no scheduled
//!   maintenances, and an overall `status` from the worst unresolved impact.
//!
//! `fail_next(n, 5xx)` answers an HTML error page (as a CDN in front of it would), other
//! statuses a JSON `{"error": ...}`. `truncate_next`, `slow_next` from tests/fake_http.
#![allow(dead_code)]

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::fake_http::{self, LOWER_ALNUM, Reply, Req, Server, Vendor};

const PAGE_ID: &str = "kctbh9vrtdwd";
/// The 50 most recent incidents, as the real endpoint.
const MOST_RECENT: usize = 50;

pub type FakeStatuspage = Server<Statuspage>;

/// The page's state (see the module doc); used through [`FakeStatuspage`].
pub struct Statuspage {
    incidents: Vec<Value>,
    /// Every component an incident named, by name, in order of first mention.
    components: Vec<Value>,
}

/// Statuspage's times: milliseconds, `Z`.
pub fn statuspage_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn short_id(seed: &str) -> String {
    fake_http::derived_id(seed, LOWER_ALNUM, 12)
}

/// The component status an incident of `impact` leaves its components in.
fn degraded(impact: &str) -> &'static str {
    match impact {
        "critical" => "major_outage",
        "major" => "partial_outage",
        "minor" => "degraded_performance",
        _ => "operational",
    }
}

fn update_body(status: &str, names: &str) -> String {
    match status {
        "investigating" => {
            format!("We are investigating reports of degraded performance for {names}.")
        }
        "identified" => "The issue has been identified and a fix is being implemented.".to_string(),
        "monitoring" => "A fix has been implemented and we are monitoring the results.".to_string(),
        "resolved" => "This incident has been resolved.".to_string(),
        _ => "A postmortem has been published.".to_string(),
    }
}

impl FakeStatuspage {
    pub fn start() -> FakeStatuspage {
        Server::serve(Statuspage {
            incidents: Vec::new(),
            components: Vec::new(),
        })
    }

    /// A new incident, `investigating`, created and started at `started`, which moves
    /// `components` (by name) to the status its `impact` implies.
    pub fn add_incident(
        &self,
        id: &str,
        name: &str,
        impact: &str,
        started: DateTime<Utc>,
        components: &[&str],
    ) {
        self.with(|s| s.add_incident(id, name, impact, started, components));
    }

    /// Moves the incident to `status` at `at`: a new update (first in `incident_updates`),
    /// `updated_at`, `monitoring_at` / `resolved_at` as fitting; resolving it puts its
    /// components back to `operational`. Panics on an unknown id.
    pub fn update_incident(&self, id: &str, status: &str, at: DateTime<Utc>) {
        self.with(|s| s.update_incident(id, status, at));
    }

    /// Every incident, whole, newest first (no cap).
    pub fn incidents(&self) -> Vec<Value> {
        self.with(|s| s.sorted())
    }
}

impl Statuspage {
    fn component(&mut self, name: &str, at: &str) -> Value {
        if let Some(known) = self.components.iter().find(|c| c["name"] == name) {
            return known.clone();
        }
        let component = json!({
            "id": short_id(&format!("component/{name}")),
            "name": name,
            "status": "operational",
            "created_at": "2017-01-31T20:05:05.370Z",
            "updated_at": at,
            "position": self.components.len() + 1,
            "description": null,
            "showcase": true,
            "start_date": null,
            "group_id": null,
            "page_id": PAGE_ID,
            "group": false,
            "only_show_if_degraded": false,
        });
        self.components.push(component.clone());
        component
    }

    /// Sets the components of `incident` to `status` (and the page's copies); returns the
    /// `affected_components` of the update that did it.
    fn move_components(&mut self, incident: &mut Value, status: &str, at: &str) -> Value {
        let mut affected = Vec::new();
        for component in incident["components"].as_array_mut().into_iter().flatten() {
            let old = component["status"].as_str().unwrap_or_default().to_string();
            if old == status {
                continue;
            }
            affected.push(json!({
                "code": component["id"], "name": component["name"],
                "old_status": old, "new_status": status,
            }));
            component["status"] = json!(status);
            component["updated_at"] = json!(at);
            let page_copy = self
                .components
                .iter_mut()
                .find(|c| c["id"] == component["id"]);
            if let Some(page_copy) = page_copy {
                page_copy["status"] = json!(status);
                page_copy["updated_at"] = json!(at);
            }
        }
        if affected.is_empty() {
            Value::Null
        } else {
            Value::Array(affected)
        }
    }

    fn add_incident(
        &mut self,
        id: &str,
        name: &str,
        impact: &str,
        started: DateTime<Utc>,
        components: &[&str],
    ) {
        let at = statuspage_time(started);
        let components: Vec<Value> = components.iter().map(|c| self.component(c, &at)).collect();
        let names = components
            .iter()
            .map(|c| c["name"].as_str().unwrap_or_default());
        let names = names.collect::<Vec<_>>().join(", ");
        let mut incident = json!({
            "id": id,
            "name": name,
            "status": "investigating",
            "created_at": at,
            "updated_at": at,
            "monitoring_at": null,
            "resolved_at": null,
            "impact": impact,
            "shortlink": format!("https://stspg.io/{}", &short_id(&format!("link/{id}"))[..7]),
            "started_at": at,
            "page_id": PAGE_ID,
            "incident_updates": [],
            "components": components,
        });
        let affected = self.move_components(&mut incident, degraded(impact), &at);
        push_update(
            &mut incident,
            "investigating",
            &update_body("investigating", &names),
            &at,
            affected,
        );
        self.incidents.push(incident);
    }

    fn update_incident(&mut self, id: &str, status: &str, at: DateTime<Utc>) {
        let at = statuspage_time(at);
        let index = self.incidents.iter().position(|i| i["id"] == id);
        let index = index.unwrap_or_else(|| panic!("no incident {id}"));
        let mut incident = self.incidents[index].take();
        let affected = match status {
            "resolved" | "postmortem" => self.move_components(&mut incident, "operational", &at),
            _ => Value::Null,
        };
        incident["status"] = json!(status);
        incident["updated_at"] = json!(at);
        if status == "monitoring" && incident["monitoring_at"].is_null() {
            incident["monitoring_at"] = json!(at);
        }
        if matches!(status, "resolved" | "postmortem") && incident["resolved_at"].is_null() {
            incident["resolved_at"] = json!(at);
        }
        push_update(
            &mut incident,
            status,
            &update_body(status, ""),
            &at,
            affected,
        );
        self.incidents[index] = incident;
    }

    fn sorted(&self) -> Vec<Value> {
        let mut incidents = self.incidents.clone();
        // The times all have the same format: as strings, they sort as times.
        let key = |i: &Value| (i["created_at"].to_string(), i["id"].to_string());
        incidents.sort_by_cached_key(|i| std::cmp::Reverse(key(i)));
        incidents
    }

    fn unresolved(&self) -> Vec<Value> {
        let mut incidents = self.sorted();
        incidents.retain(|i| !matches!(i["status"].as_str(), Some("resolved" | "postmortem")));
        incidents
    }

    fn page(&self) -> Value {
        let latest = self
            .incidents
            .iter()
            .filter_map(|i| i["updated_at"].as_str())
            .max();
        let updated = latest.map_or_else(|| statuspage_time(Utc::now()), String::from);
        json!({
            "id": PAGE_ID,
            "name": "GitHub",
            "url": "https://www.githubstatus.com",
            "time_zone": "Etc/UTC",
            "updated_at": updated,
        })
    }

    fn summary(&self) -> Value {
        let unresolved = self.unresolved();
        let rank = |impact: &str| {
            ["none", "minor", "major", "critical"]
                .iter()
                .position(|i| *i == impact)
        };
        let worst = unresolved
            .iter()
            .filter_map(|i| rank(i["impact"].as_str().unwrap_or_default()))
            .max()
            .unwrap_or(0);
        let (indicator, description) = [
            ("none", "All Systems Operational"),
            ("minor", "Minor Service Outage"),
            ("major", "Partial System Outage"),
            ("critical", "Major System Outage"),
        ][worst];
        json!({
            "page": self.page(),
            "components": self.components,
            "incidents": unresolved,
            "scheduled_maintenances": [],
            "status": {"indicator": indicator, "description": description},
        })
    }
}

fn push_update(incident: &mut Value, status: &str, body: &str, at: &str, affected: Value) {
    let incident_id = incident["id"].as_str().unwrap_or_default().to_string();
    let updates = incident["incident_updates"]
        .as_array_mut()
        .expect("updates");
    let update = json!({
        "id": short_id(&format!("update/{incident_id}/{}", updates.len())),
        "status": status,
        "body": body,
        "incident_id": incident_id,
        "created_at": at,
        "updated_at": at,
        "display_at": at,
        "affected_components": affected,
        "deliver_notifications": true,
        "custom_tweet": null,
        "tweet_id": null,
    });
    updates.insert(0, update);
}

impl Vendor for Statuspage {
    fn answer(&mut self, req: &Req) -> Reply {
        let body = match (req.method, req.path) {
            ("GET", "/api/v2/incidents.json") => {
                let mut incidents = self.sorted();
                incidents.truncate(MOST_RECENT);
                json!({"page": self.page(), "incidents": incidents})
            }
            ("GET", "/api/v2/incidents/unresolved.json") => {
                json!({"page": self.page(), "incidents": self.unresolved()})
            }
            ("GET", "/api/v2/summary.json") => self.summary(),
            _ => return Reply::json(404, &json!({"error": "Not found"})),
        };
        Reply::json(200, &body)
    }

    fn injected(&mut self, _req: &Req, status: u16) -> Reply {
        let reason = hyper::StatusCode::from_u16(status).ok();
        let reason = reason.and_then(|s| s.canonical_reason()).unwrap_or("Error");
        match status {
            500.. => Reply::text(
                status,
                "text/html",
                format!(
                    "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n\
                     <center><h1>{status} {reason}</h1></center>\r\n</body>\r\n</html>\r\n"
                ),
            ),
            _ => Reply::json(status, &json!({"error": reason})),
        }
    }

    fn headers(&mut self, _req: &Req) -> Vec<(&'static str, String)> {
        vec![(
            "Content-Type",
            "application/json; charset=utf-8".to_string(),
        )]
    }
}
