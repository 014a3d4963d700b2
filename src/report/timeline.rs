//! What happened around a finding, in time order: its failures, its cause, and the
//! credential's snapshots, the tenant's changes and the vendor's incidents near it. Shared by
//! `scopetrail explain --finding` (text) and the HTML report.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use crate::model::Record;

/// Failures listed before the middle ones are elided, and after.
const FIRST_SHOWN: usize = 20;
const LAST_SHOWN: usize = 5;

/// The exported records, indexed once for every finding's timeline.
pub struct Context<'a> {
    by_uid: HashMap<Uuid, &'a Record>,
    /// Snapshots, changes and incidents: what can be around a finding.
    around: Vec<&'a Record>,
}

impl<'a> Context<'a> {
    pub fn new(records: &'a [Record]) -> Self {
        Context {
            by_uid: records.iter().map(|r| (r.head().event_uid, r)).collect(),
            around: records
                .iter()
                .filter(|r| {
                    matches!(
                        r,
                        Record::TokenSnapshots(_) | Record::Changes(_) | Record::Incidents(_)
                    )
                })
                .collect(),
        }
    }

    pub fn get(&self, uid: &Uuid) -> Option<&'a Record> {
        self.by_uid.get(uid).copied()
    }
}

/// Whose timeline: a finding's key and span.
pub struct About<'a> {
    pub vendor: &'a str,
    pub tenant: &'a str,
    pub credential: Option<&'a str>,
    pub first_ms: i64,
    pub last_ms: i64,
    /// The finding's failures, in time order.
    pub related: &'a [Uuid],
    pub cause: Option<Uuid>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Failure,
    Cause,
    Snapshot,
    Change,
    Incident,
    /// Failures left out in the middle of a long finding.
    Elided,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Failure => "failure",
            Kind::Cause => "cause",
            Kind::Snapshot => "snapshot",
            Kind::Change => "change",
            Kind::Incident => "incident",
            Kind::Elided => "elided",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub time: i64,
    pub kind: Kind,
    pub text: String,
    /// The vendor's id of a failure (request, delivery), for support tickets.
    pub id: Option<String>,
}

impl Entry {
    pub fn of(r: &Record, kind: Kind) -> Entry {
        Entry {
            time: r.head().time,
            kind,
            text: describe(r),
            id: vendor_id(r),
        }
    }

    /// The text with the vendor's id, as one line.
    pub fn line(&self) -> String {
        match &self.id {
            Some(id) => format!("{} ({id})", self.text),
            None => self.text.clone(),
        }
    }
}

fn vendor_id(r: &Record) -> Option<String> {
    match r {
        Record::Denials(d) => d.request_id.clone(),
        Record::WebhookFailures(w) => w.delivery_uid.clone(),
        _ => None,
    }
}

/// The finding's failures (with `elide`, only the first 20 and the last 5), its cause, and
/// what was around it within `lookback` either side.
pub fn timeline(about: &About, context: &Context, lookback: i64, elide: bool) -> Vec<Entry> {
    let mut entries = failures(about, context, elide);
    entries.extend(around(about, context, lookback));
    entries.sort_by_key(|e| e.time);
    entries
}

/// The finding's failures found in `context`, the cause marked.
fn failures(about: &About, context: &Context, elide: bool) -> Vec<Entry> {
    let mut entries: Vec<Entry> = Vec::new();
    let n = about.related.len();
    let elide = elide && n > FIRST_SHOWN + LAST_SHOWN;
    for (i, uid) in about.related.iter().enumerate() {
        if elide && (FIRST_SHOWN..n - LAST_SHOWN).contains(&i) {
            if i == FIRST_SHOWN {
                entries.push(Entry {
                    time: context.get(uid).map_or(about.first_ms, |r| r.head().time),
                    kind: Kind::Elided,
                    text: format!("... {} more failures ...", n - FIRST_SHOWN - LAST_SHOWN),
                    id: None,
                });
            }
            continue;
        }
        if let Some(r) = context.get(uid) {
            let kind = if Some(*uid) == about.cause {
                Kind::Cause
            } else {
                Kind::Failure
            };
            entries.push(Entry::of(r, kind));
        }
    }
    entries
}

/// What was around a finding within `lookback` either side: the credential's snapshots, the
/// tenant's changes, the vendor's incidents; and its cause, however far, unless it is one of
/// the failures (`about.related`).
pub fn around(about: &About, context: &Context, lookback: i64) -> Vec<Entry> {
    let from = about.first_ms - lookback;
    let to = about.last_ms + lookback;
    let mut entries: Vec<Entry> = Vec::new();
    let related: HashSet<&Uuid> = about.related.iter().collect();
    for r in &context.around {
        let h = r.head();
        if related.contains(&h.event_uid)
            || Some(h.event_uid) == about.cause
            || h.time < from
            || h.time > to
        {
            continue;
        }
        let same_credential = h.credential.is_some() && h.credential.as_deref() == about.credential;
        let kind = match r {
            Record::TokenSnapshots(_) if same_credential => Kind::Snapshot,
            Record::Changes(_)
                if (h.vendor == about.vendor
                    && h.tenant == about.tenant
                    && h.time <= about.last_ms)
                    || same_credential =>
            {
                Kind::Change
            }
            Record::Incidents(_) if h.vendor == about.vendor => Kind::Incident,
            _ => continue,
        };
        entries.push(Entry::of(r, kind));
    }
    // The cause, however far from the failures, unless it is one of them.
    if let Some(cause) = about.cause.filter(|c| !related.contains(c))
        && let Some(r) = context.get(&cause)
    {
        entries.push(Entry::of(r, Kind::Cause));
    }
    entries
}

/// One line about a record, for people (without the vendor's id: see `Entry::line`).
pub fn describe(r: &Record) -> String {
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    match r {
        Record::Denials(d) => format!(
            "denial    {} {} {} {}",
            d.http_status.map(|s| s.to_string()).unwrap_or_default(),
            d.error_code
                .clone()
                .or_else(|| d.auth_error.clone())
                .unwrap_or_default(),
            o(&d.http_method),
            o(&d.api_operation),
        ),
        Record::WebhookFailures(w) => format!(
            "webhook   {} {} {} {}",
            o(&w.error_type),
            w.http_status.map(|s| s.to_string()).unwrap_or_default(),
            o(&w.webhook_event),
            o(&w.url)
        ),
        Record::RateLimitBursts(b) => format!(
            "burst     {} 429s, {} 503s on {} until {}",
            b.count.unwrap_or(0),
            b.interleaved_503.unwrap_or(0),
            o(&b.api_operation),
            b.end_time_dt.map(at_s).unwrap_or_default()
        ),
        Record::TokenSnapshots(s) => format!(
            "snapshot  {} ({}) {}: {}{}",
            o(&s.head.credential),
            s.head.environment,
            o(&s.status),
            s.privileges
                .as_ref()
                .map_or("privileges unknown".into(), |p| p.join(" ")),
            if s.privileges_removed.is_empty() {
                String::new()
            } else {
                format!("; removed {}", s.privileges_removed.join(" "))
            }
        ),
        Record::Changes(c) => format!(
            "change    {} by {} on {}{}",
            o(&c.action),
            c.actor_user.as_deref().unwrap_or(&c.head.source),
            o(&c.target),
            c.details
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        ),
        Record::Incidents(i) => format!(
            "incident  {} [{}] {} {}",
            o(&i.name),
            o(&i.status),
            i.components.join(", "),
            o(&i.url)
        ),
        other => other.dataset().name().to_string(),
    }
}

/// `2026-03-05 09:02:11`, UTC.
pub fn at_s(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| ms.to_string())
}
