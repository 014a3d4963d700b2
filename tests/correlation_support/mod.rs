//! The world builder and the checker of `tests/correlation.rs`: small worlds of records (the
//! failures and the evidence around them) and the findings they must give.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use chrono::{TimeZone, Utc};
use scopetrail::analysis::correlate::{
    Confidence, Correlator, EventRef, Finding, FindingType, Settings, Severity,
};
use scopetrail::model::{
    Change, Dataset, Denial, Header, Incident, RateLimitBurst, RateLimitEvent, Record,
    RequestCount, TokenSnapshot, WebhookFailure,
};
use uuid::Uuid;

pub const MIN: i64 = 60_000;
pub const HOUR: i64 = 60 * MIN;
pub const DAY: i64 = 24 * HOUR;

/// `HH:MM` on a day of March 2026, UTC, in epoch milliseconds.
pub fn on(day: u32, hm: &str) -> i64 {
    let (h, m) = hm.split_once(':').expect("HH:MM");
    Utc.with_ymd_and_hms(2026, 3, day, h.parse().unwrap(), m.parse().unwrap(), 0)
        .single()
        .expect("a time")
        .timestamp_millis()
}

/// `HH:MM` on Thursday 5 March 2026, the day of most stories.
pub fn at(hm: &str) -> i64 {
    on(5, hm)
}

/// A deterministic event uid for a record's name.
pub fn uid(name: &str) -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_OID, name.as_bytes())
}

fn s(text: &str) -> Option<String> {
    Some(text.to_string())
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|x| x.to_string()).collect()
}

/// One credential binding: who calls what, in which environment. Builds the records that
/// concern it (its failures, its snapshots, the changes that name it).
#[derive(Debug, Clone)]
pub struct Cred {
    pub vendor: String,
    pub tenant: String,
    pub env: String,
    /// The logical credential name; None for calls no binding claims (grouped by actor_app).
    pub name: Option<String>,
    pub app: String,
    pub issuer: String,
    pub service: String,
    pub method: Option<String>,
    pub operation: String,
}

impl Cred {
    pub fn new(vendor: &str, tenant: &str, env: &str, name: &str, app: &str) -> Cred {
        Cred {
            vendor: vendor.into(),
            tenant: tenant.into(),
            env: env.into(),
            name: Some(name.into()),
            app: app.into(),
            issuer: format!("https://auth.{tenant}.example"),
            service: format!("api.{tenant}.example"),
            method: Some("GET".into()),
            operation: "/v1/items".into(),
        }
    }

    /// Calls no credential binding claims.
    pub fn unbound(mut self) -> Cred {
        self.name = None;
        self
    }

    pub fn issuer(mut self, issuer: &str) -> Cred {
        self.issuer = issuer.into();
        self
    }

    pub fn service(mut self, host: &str) -> Cred {
        self.service = host.into();
        self
    }

    /// The operation its failures are on: `("POST", "/v1/items")`; an empty method for
    /// vendors that log only an operation name.
    pub fn op(mut self, method: &str, operation: &str) -> Cred {
        self.method = (!method.is_empty()).then(|| method.to_string());
        self.operation = operation.into();
        self
    }

    pub fn credential_uid(&self) -> String {
        format!("{}#{}", self.issuer, self.app)
    }

    fn who(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.app.clone())
    }

    pub fn head(&self, kind: &str, name: &str, time: i64, source: &str) -> Header {
        Header {
            time,
            event_uid: uid(&format!(
                "{kind}/{}/{}/{}/{}/{name}",
                self.vendor,
                self.tenant,
                self.env,
                self.who()
            )),
            vendor: self.vendor.clone(),
            tenant: self.tenant.clone(),
            environment: self.env.clone(),
            source: source.into(),
            source_event_uid: None,
            credential: self.name.clone(),
        }
    }

    fn denial(&self, name: &str, time: i64) -> Denial {
        Denial {
            head: self.head("denial", name, time, "http_log"),
            api_service: s(&self.service),
            api_operation: s(&self.operation),
            http_method: self.method.clone(),
            url_path: s(&self.operation),
            actor_app: s(&self.app),
            credential_uid: s(&self.credential_uid()),
            user_agent: s("integration/2.3"),
            request_id: s(&format!("req-{name}")),
            ..Denial::default()
        }
    }

    /// A 403 `insufficient_scope` naming the scopes required (or a bare 403 when none).
    pub fn forbidden(&self, name: &str, time: i64, scopes: &[&str]) -> Denial {
        Denial {
            http_status: Some(403),
            auth_error: (!scopes.is_empty()).then(|| "insufficient_scope".to_string()),
            required_scope: strings(scopes),
            error_message: s("Forbidden"),
            ..self.denial(name, time)
        }
    }

    /// A 401 with `WWW-Authenticate: Bearer error="invalid_token"` and nothing else.
    pub fn unauthorized(&self, name: &str, time: i64) -> Denial {
        Denial {
            http_status: Some(401),
            auth_error: s("invalid_token"),
            ..self.denial(name, time)
        }
    }

    /// A successful probe of the credential: privileges as given, valid for 12 hours, the
    /// audience is the API it calls.
    pub fn snapshot(&self, name: &str, time: i64, privileges: &[&str]) -> TokenSnapshot {
        let mut privileges = strings(privileges);
        privileges.sort();
        TokenSnapshot {
            head: self.head("snapshot", name, time, "scopetrail.snapshot"),
            probe: s("jwt"),
            status: s("ok"),
            token_type: s("access_token"),
            issuer: s(&self.issuer),
            audience: vec![format!("https://{}", self.service)],
            subject: s(&self.app),
            actor_app: s(&self.app),
            privileges: Some(privileges),
            expires_at_dt: Some(time + 12 * HOUR),
            credential_uid: s(&self.credential_uid()),
            signature: s("verified"),
            ..TokenSnapshot::default()
        }
    }

    /// A probe that failed with `status` (invalid_client, inactive...): privileges unknown.
    pub fn failed_probe(&self, name: &str, time: i64, status: &str) -> TokenSnapshot {
        TokenSnapshot {
            status: s(status),
            audience: Vec::new(),
            privileges: None,
            expires_at_dt: None,
            signature: None,
            ..self.snapshot(name, time, &[])
        }
    }

    /// A change from the vendor's audit trail, on this credential's vendor and tenant, naming
    /// nobody in particular as its `credential`.
    pub fn vendor_change(
        &self,
        name: &str,
        time: i64,
        action: &str,
        target_type: &str,
        target: &str,
    ) -> Change {
        Change {
            head: Header {
                source: format!("{}.audit_log", self.vendor),
                source_event_uid: s(&format!("evt-{name}")),
                credential: None,
                ..self.head("change", name, time, "")
            },
            action: s(action),
            actor_user: s("admin@acme.test"),
            target_type: s(target_type),
            target: s(target),
            details: None,
        }
    }

    /// scopetrail's own drift event for this credential, as the probes write them.
    pub fn drift(&self, name: &str, time: i64, action: &str, details: &str) -> Change {
        Change {
            head: self.head("drift", name, time, "scopetrail.drift"),
            action: s(action),
            actor_user: None,
            target_type: s("credential"),
            target: Some(format!("{} ({})", self.who(), self.env)),
            details: s(details),
        }
    }

    /// A 429 burst of this credential on its operation, from `start` to `end`.
    pub fn burst(
        &self,
        name: &str,
        start: i64,
        end: i64,
        count: i64,
        interleaved_503: i64,
    ) -> RateLimitBurst {
        RateLimitBurst {
            head: self.head("burst", name, start, "scopetrail.bursts"),
            start_time_dt: Some(start),
            end_time_dt: Some(end),
            count: Some(count),
            peak_per_minute: Some((count / ((end - start) / MIN).max(1)).max(1)),
            interleaved_503: Some(interleaved_503),
            api_service: s(&self.service),
            api_operation: s(&self.operation),
            actor_app: s(&self.app),
            credential_uid: s(&self.credential_uid()),
            retry_after_max_s: Some(60),
            ratelimit_limit: Some(600),
            ratelimit_remaining_min: Some(0),
            related_event_uids: Vec::new(),
            related_events_count: Some(count + interleaved_503),
            revision: Some(1),
        }
    }

    /// One 429 (or 503) answer: staged input to bursts, never a failure group by itself.
    pub fn rate_event(&self, name: &str, time: i64, status: i64) -> RateLimitEvent {
        RateLimitEvent {
            head: self.head("rate_event", name, time, "http_log"),
            http_status: Some(status),
            api_service: s(&self.service),
            api_operation: s(&self.operation),
            http_method: self.method.clone(),
            actor_app: s(&self.app),
            credential_uid: s(&self.credential_uid()),
            retry_after_s: Some(1),
            ratelimit_limit: Some(600),
            ratelimit_remaining: Some(0),
            request_id: s(&format!("req-{name}")),
        }
    }

    /// Requests of the hour starting at `hour` on this credential's service: `operation` with
    /// `method` answered `status_class` `count` times.
    pub fn requests(
        &self,
        name: &str,
        hour: i64,
        method: &str,
        operation: &str,
        status_class: &str,
        count: i64,
    ) -> RequestCount {
        RequestCount {
            head: self.head("requests", name, hour, "http_log"),
            hour_dt: Some(hour),
            api_service: s(&self.service),
            api_operation: s(operation),
            http_method: s(method),
            status_class: s(status_class),
            actor_app: s(&self.app),
            count: Some(count),
        }
    }
}

/// A webhook endpoint of a vendor's tenant.
#[derive(Debug, Clone)]
pub struct Hook {
    pub vendor: String,
    pub tenant: String,
    pub env: String,
    pub webhook_uid: Option<String>,
    pub url: String,
}

impl Hook {
    pub fn new(vendor: &str, tenant: &str, webhook_uid: &str, url: &str) -> Hook {
        Hook {
            vendor: vendor.into(),
            tenant: tenant.into(),
            env: "prod".into(),
            webhook_uid: (!webhook_uid.is_empty()).then(|| webhook_uid.to_string()),
            url: url.into(),
        }
    }

    /// A failed delivery: `error_type` timeout, connect, http_5xx (with `status`), pending...
    pub fn failure(
        &self,
        name: &str,
        time: i64,
        error_type: &str,
        status: Option<i64>,
    ) -> WebhookFailure {
        let host = url::Url::parse(&self.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string));
        WebhookFailure {
            head: Header {
                time,
                event_uid: uid(&format!(
                    "webhook/{}/{}/{}/{name}",
                    self.vendor, self.tenant, self.url
                )),
                vendor: self.vendor.clone(),
                tenant: self.tenant.clone(),
                environment: self.env.clone(),
                source: format!("{}.webhook_deliveries", self.vendor),
                source_event_uid: s(&format!("dlv-{name}")),
                credential: None,
            },
            webhook_uid: self.webhook_uid.clone(),
            delivery_uid: s(&format!("dlv-{name}")),
            delivery_group: s(&format!("grp-{name}")),
            webhook_event: s("invoice.paid"),
            dst_hostname: host,
            url: s(&self.url),
            http_status: status,
            error_type: s(error_type),
            error_message: s(match error_type {
                "timeout" => "Timed out after 10s",
                "connect" => "Connection refused",
                "pending" => "Delivery pending: the vendor retries",
                _ => "Receiver answered with an error",
            }),
            attempt: Some(1),
            redelivery: Some(false),
            latency_ms: (error_type == "timeout").then_some(10_000),
            ..WebhookFailure::default()
        }
    }

    /// A change on the vendor's audit trail naming this endpoint.
    pub fn change(&self, name: &str, time: i64, action: &str, target_type: &str) -> Change {
        Change {
            head: Header {
                time,
                event_uid: uid(&format!(
                    "change/{}/{}/{}/{name}",
                    self.vendor, self.tenant, self.url
                )),
                vendor: self.vendor.clone(),
                tenant: self.tenant.clone(),
                environment: self.env.clone(),
                source: format!("{}.audit_log", self.vendor),
                source_event_uid: s(&format!("evt-{name}")),
                credential: None,
            },
            action: s(action),
            actor_user: s("dave@acme.test"),
            target_type: s(target_type),
            target: self.webhook_uid.clone(),
            details: None,
        }
    }
}

/// A status-page incident of a vendor, as it evolves: one row per update, all sharing the
/// vendor's incident id.
#[derive(Debug, Clone)]
pub struct StatusIncident {
    pub vendor: String,
    pub id: String,
    pub name: String,
    pub components: Vec<String>,
    pub started: i64,
    pub url: String,
    pub impact: String,
}

impl StatusIncident {
    pub fn new(vendor: &str, id: &str, name: &str, components: &[&str], started: i64) -> Self {
        StatusIncident {
            vendor: vendor.into(),
            id: id.into(),
            name: name.into(),
            components: strings(components),
            started,
            url: format!("https://status.{vendor}.example/incidents/{id}"),
            impact: "major".into(),
        }
    }

    /// The row of the update at `time` with `status`; `resolved` on the resolving update.
    pub fn update(&self, time: i64, status: &str, resolved: Option<i64>) -> Incident {
        Incident {
            head: Header {
                time,
                event_uid: uid(&format!("incident/{}/{}/{time}", self.vendor, self.id)),
                vendor: self.vendor.clone(),
                tenant: format!("{}-status", self.vendor),
                environment: "prod".into(),
                source: format!("{}.statuspage", self.vendor),
                source_event_uid: s(&self.id),
                credential: None,
            },
            name: s(&self.name),
            status: s(status),
            impact: s(&self.impact),
            components: self.components.clone(),
            started_dt: Some(self.started),
            resolved_dt: resolved,
            url: s(&self.url),
        }
    }
}

/// What a finding must be.
#[derive(Debug, Clone)]
pub enum CauseIs {
    Nothing,
    Exactly(EventRef),
    OneOf(Vec<EventRef>),
}

#[derive(Debug, Clone)]
pub struct Expect {
    pub finding_type: FindingType,
    pub severity: Severity,
    pub confidence: Option<Confidence>,
    pub cause: CauseIs,
    /// The group: the failures (for a warning, the snapshot).
    pub related: Vec<EventRef>,
    /// Words the explanation must contain (any case).
    pub says: Vec<String>,
    /// Words the remediation must contain (any case).
    pub fix_says: Vec<String>,
    /// Steps the remediation must take in this order; each step is any of its words.
    pub fix_order: Vec<Vec<String>>,
    pub alternatives: Vec<FindingType>,
    pub not_alternatives: Vec<FindingType>,
    pub incident_url: Option<String>,
}

impl Expect {
    /// A failure finding of type `t` over exactly these failures, no cause unless said.
    pub fn new(t: FindingType, related: &[EventRef]) -> Expect {
        Expect {
            finding_type: t,
            severity: Severity::Failure,
            confidence: None,
            cause: CauseIs::Nothing,
            related: related.to_vec(),
            says: Vec::new(),
            fix_says: Vec::new(),
            fix_order: Vec::new(),
            alternatives: Vec::new(),
            not_alternatives: Vec::new(),
            incident_url: None,
        }
    }

    /// A drift warning: the snapshot that saw it is the cause and the whole group.
    pub fn warning(t: FindingType, snapshot: EventRef) -> Expect {
        Expect {
            severity: Severity::Warning,
            cause: CauseIs::Exactly(snapshot),
            ..Expect::new(t, &[snapshot])
        }
    }

    pub fn high(self) -> Self {
        self.confidence(Confidence::High)
    }
    pub fn medium(self) -> Self {
        self.confidence(Confidence::Medium)
    }
    pub fn low(self) -> Self {
        self.confidence(Confidence::Low)
    }
    pub fn confidence(mut self, c: Confidence) -> Self {
        self.confidence = Some(c);
        self
    }
    pub fn cause(mut self, cause: EventRef) -> Self {
        self.cause = CauseIs::Exactly(cause);
        self
    }
    pub fn cause_one_of(mut self, causes: &[EventRef]) -> Self {
        self.cause = CauseIs::OneOf(causes.to_vec());
        self
    }
    pub fn says(mut self, words: &[&str]) -> Self {
        self.says.extend(words.iter().map(|w| w.to_string()));
        self
    }
    pub fn fix_says(mut self, words: &[&str]) -> Self {
        self.fix_says.extend(words.iter().map(|w| w.to_string()));
        self
    }
    pub fn fix_order(mut self, steps: &[&[&str]]) -> Self {
        self.fix_order = steps.iter().map(|step| strings(step)).collect();
        self
    }
    pub fn alt(mut self, t: FindingType) -> Self {
        self.alternatives.push(t);
        self
    }
    pub fn not_alt(mut self, t: FindingType) -> Self {
        self.not_alternatives.push(t);
        self
    }
    pub fn incident_url(mut self, url: &str) -> Self {
        self.incident_url = Some(url.into());
        self
    }
}

/// Remediation for a missing scope: grant it to the client first, then get a new token.
pub const GRANT_THEN_MINT: &[&[&str]] = &[
    &["grant", "add the scope", "assign"],
    &[
        "mint",
        "new token",
        "fresh token",
        "new access token",
        "reissue",
        "re-issue",
        "request a token",
        "obtain a token",
    ],
];

/// A world: the records, and the findings they must give.
#[derive(Debug, Default)]
pub struct World {
    pub records: Vec<Record>,
    pub expected: Vec<Expect>,
    times: BTreeMap<EventRef, i64>,
}

impl World {
    /// Adds a record, and gives the reference findings use for it.
    pub fn add(&mut self, record: impl Into<Record>) -> EventRef {
        let record = record.into();
        let r = EventRef {
            uid: record.head().event_uid,
            dataset: record.dataset(),
        };
        self.times.insert(r, record.head().time);
        self.records.push(record);
        r
    }

    /// `n` records `step` apart from `start`, made by `make(name, time)`.
    pub fn series<R: Into<Record>>(
        &mut self,
        prefix: &str,
        n: usize,
        start: i64,
        step: i64,
        mut make: impl FnMut(&str, i64) -> R,
    ) -> Vec<EventRef> {
        (0..n)
            .map(|i| {
                let record = make(&format!("{prefix}-{i}"), start + i as i64 * step);
                self.add(record)
            })
            .collect()
    }

    pub fn expect(&mut self, e: Expect) {
        self.expected.push(e);
    }

    pub fn time_of(&self, r: &EventRef) -> Option<i64> {
        self.times.get(r).copied()
    }

    /// Takes in another world's records and expectations.
    pub fn merge(&mut self, other: World) {
        self.records.extend(other.records);
        self.expected.extend(other.expected);
        self.times.extend(other.times);
    }
}

/// Runs the engine over `records` in this order.
pub fn run(records: &[Record]) -> Vec<Finding> {
    let mut correlator = Correlator::new(Settings::default());
    for r in records {
        correlator.add(r);
    }
    correlator.finish()
}

/// A small seeded generator (Knuth's MMIX LCG), so no new dependency.
#[derive(Debug, Clone)]
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    /// 0..n
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// lo..=hi
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// The group a finding or an expectation is about: its related events, sorted.
pub fn group_key(related: &[EventRef]) -> Vec<EventRef> {
    let mut g = related.to_vec();
    g.sort();
    g
}

pub fn describe(f: &Finding) -> String {
    format!(
        "  {} {} {} | cause {:?} | {} related ({} .. {}) | key {}\n    title: {}\n    explanation: {}\n    remediation: {}\n    alternatives: {:?}\n    incident_url: {:?}",
        f.finding_type.as_str(),
        f.severity.as_str(),
        f.confidence.as_str(),
        f.cause.map(|c| (c.dataset.name(), c.uid)),
        f.related.len(),
        scopetrail::model::rfc3339_ms(f.first_ms),
        scopetrail::model::rfc3339_ms(f.last_ms),
        f.key,
        f.title,
        f.explanation,
        f.remediation,
        f.alternatives,
        f.incident_url,
    )
}

fn name_ref(w: &World, r: &EventRef) -> String {
    let time = w
        .time_of(r)
        .map(scopetrail::model::rfc3339_ms)
        .unwrap_or_else(|| "?".into());
    format!("{} {} at {time}", r.dataset.name(), r.uid)
}

/// Every difference between what `w` expects and what the engine found, as readable lines.
/// Empty when they agree.
pub fn differences(w: &World, findings: &[Finding]) -> Vec<String> {
    let mut errors = Vec::new();
    let mut matched = vec![false; findings.len()];
    for (n, e) in w.expected.iter().enumerate() {
        let want = group_key(&e.related);
        let label = format!(
            "expected #{n} ({} {}, {} related)",
            e.finding_type.as_str(),
            e.severity.as_str(),
            want.len()
        );
        let found = findings
            .iter()
            .enumerate()
            .find(|(i, f)| !matched[*i] && group_key(&f.related) == want);
        let Some((i, f)) = found else {
            let overlapping: Vec<String> = findings
                .iter()
                .filter(|f| f.related.iter().any(|r| want.contains(r)))
                .map(describe)
                .collect();
            errors.push(format!(
                "{label}: no finding has exactly this group (first {}); findings sharing some of it:\n{}",
                want.iter()
                    .min_by_key(|r| (w.time_of(r), **r))
                    .map(|r| name_ref(w, r))
                    .unwrap_or_default(),
                if overlapping.is_empty() {
                    "  none".to_string()
                } else {
                    overlapping.join("\n")
                }
            ));
            continue;
        };
        matched[i] = true;
        let mut wrong = Vec::new();
        if f.finding_type != e.finding_type {
            wrong.push(format!(
                "finding_type {} (expected {})",
                f.finding_type.as_str(),
                e.finding_type.as_str()
            ));
        }
        if f.severity != e.severity {
            wrong.push(format!(
                "severity {} (expected {})",
                f.severity.as_str(),
                e.severity.as_str()
            ));
        }
        if let Some(c) = e.confidence
            && f.confidence != c
        {
            wrong.push(format!(
                "confidence {} (expected {})",
                f.confidence.as_str(),
                c.as_str()
            ));
        }
        match (&e.cause, f.cause) {
            (CauseIs::Nothing, None) => {}
            (CauseIs::Nothing, Some(got)) => {
                wrong.push(format!("cause {} (expected none)", name_ref(w, &got)))
            }
            (CauseIs::Exactly(want), got) if got != Some(*want) => wrong.push(format!(
                "cause {} (expected {})",
                got.map_or("none".into(), |g| name_ref(w, &g)),
                name_ref(w, want)
            )),
            (CauseIs::OneOf(any), got) if !got.is_some_and(|g| any.contains(&g)) => {
                wrong.push(format!(
                    "cause {} (expected one of {} records)",
                    got.map_or("none".into(), |g| name_ref(w, &g)),
                    any.len()
                ))
            }
            _ => {}
        }
        let mut sorted = f.related.clone();
        sorted.sort();
        if sorted.windows(2).any(|p| p[0] == p[1]) {
            wrong.push("related holds the same event twice".into());
        }
        if e.severity == Severity::Failure {
            let times: Vec<i64> = e
                .related
                .iter()
                .filter(|r| matches!(r.dataset, Dataset::Denials | Dataset::WebhookFailures))
                .filter_map(|r| w.time_of(r))
                .collect();
            if times.len() == e.related.len()
                && let (Some(first), Some(last)) = (times.iter().min(), times.iter().max())
                && (f.first_ms != *first || f.last_ms != *last)
            {
                wrong.push(format!(
                    "first/last {} .. {} (expected {} .. {})",
                    scopetrail::model::rfc3339_ms(f.first_ms),
                    scopetrail::model::rfc3339_ms(f.last_ms),
                    scopetrail::model::rfc3339_ms(*first),
                    scopetrail::model::rfc3339_ms(*last)
                ));
            }
            if times.len() == e.related.len() && f.count != e.related.len() as u64 {
                wrong.push(format!("count {} (expected {})", f.count, e.related.len()));
            }
        }
        let explanation = f.explanation.to_lowercase();
        let remediation = f.remediation.to_lowercase();
        if e.severity == Severity::Warning && f.count != 0 {
            wrong.push(format!("count {} for a warning (expected 0)", f.count));
        }
        if f.title.trim().is_empty() || explanation.trim().is_empty() {
            wrong.push("empty title or explanation".into());
        }
        if f.severity == Severity::Failure && remediation.trim().is_empty() {
            wrong.push("empty remediation".into());
        }
        for word in &e.says {
            if !explanation.contains(&word.to_lowercase()) {
                wrong.push(format!("explanation does not say {word:?}"));
            }
        }
        for word in &e.fix_says {
            if !remediation.contains(&word.to_lowercase()) {
                wrong.push(format!("remediation does not say {word:?}"));
            }
        }
        let mut from = 0;
        for step in &e.fix_order {
            let next = step
                .iter()
                .filter_map(|word| {
                    remediation[from..]
                        .find(&word.to_lowercase())
                        .map(|p| from + p)
                })
                .min();
            match next {
                Some(p) => from = p + 1,
                None => {
                    wrong.push(format!(
                        "remediation does not say any of {step:?} after the steps before it"
                    ));
                    break;
                }
            }
        }
        for t in &e.alternatives {
            if !f.alternatives.iter().any(|a| a.starts_with(t.as_str())) {
                wrong.push(format!("alternatives lack {}", t.as_str()));
            }
        }
        for t in &e.not_alternatives {
            if f.alternatives.iter().any(|a| a.contains(t.as_str())) {
                wrong.push(format!("alternatives claim {} (may not)", t.as_str()));
            }
        }
        if let Some(url) = &e.incident_url
            && f.incident_url.as_deref() != Some(url.as_str())
        {
            wrong.push(format!(
                "incident_url {:?} (expected {url:?})",
                f.incident_url
            ));
        }
        if !wrong.is_empty() {
            errors.push(format!("{label}: {}\n{}", wrong.join("; "), describe(f)));
        }
    }
    for (i, f) in findings.iter().enumerate() {
        if !matched[i] {
            errors.push(format!("unexpected finding:\n{}", describe(f)));
        }
    }
    errors
}

/// Runs a world in its order, reversed and shuffled (the findings must be the same), and
/// compares them with what it expects.
pub fn check(name: &str, w: &World) {
    let findings = run(&w.records);
    // CORRELATION_SHOW=1 prints what the engine found (with --nocapture).
    if std::env::var_os("CORRELATION_SHOW").is_some() {
        println!(
            "scenario {name}:\n{}",
            findings.iter().map(describe).collect::<Vec<_>>().join("\n")
        );
    }
    let mut reversed = w.records.clone();
    reversed.reverse();
    let mut orders = vec![("reversed".to_string(), reversed)];
    let mut rng = Lcg(0x5eed ^ name.len() as u64);
    for n in 0..3 {
        let mut shuffled = w.records.clone();
        rng.shuffle(&mut shuffled);
        orders.push((format!("shuffle #{n}"), shuffled));
    }
    let mut errors = differences(w, &findings);
    for (how, records) in orders {
        let again = run(&records);
        if again != findings {
            let a: BTreeSet<String> = findings.iter().map(describe).collect();
            let b: BTreeSet<String> = again.iter().map(describe).collect();
            errors.push(format!(
                "the findings depend on the order of the records ({how}):\n  in order only:\n{}\n  {how} only:\n{}",
                a.difference(&b).cloned().collect::<Vec<_>>().join("\n"),
                b.difference(&a).cloned().collect::<Vec<_>>().join("\n"),
            ));
            break;
        }
    }
    if !errors.is_empty() {
        panic!(
            "scenario {name}: {} problem(s)\n{}\n\nall findings:\n{}",
            errors.len(),
            errors.join("\n"),
            findings.iter().map(describe).collect::<Vec<_>>().join("\n")
        );
    }
}

/// The finding an expectation describes, as an engine that agrees with it would write it:
/// for testing the checker itself.
pub fn perfect_finding(w: &World, e: &Expect) -> Finding {
    let times: Vec<i64> = e.related.iter().filter_map(|r| w.time_of(r)).collect();
    let mut related = e.related.clone();
    related.sort_by_key(|r| (w.time_of(r), *r));
    let remediation: Vec<String> = e
        .fix_order
        .iter()
        .map(|step| step[0].clone())
        .chain(e.fix_says.iter().cloned())
        .collect();
    Finding {
        key: format!("{:?}", group_key(&e.related).first()),
        vendor: "vendor".into(),
        tenant: "tenant".into(),
        environment: "prod".into(),
        credential: None,
        finding_type: e.finding_type,
        severity: e.severity,
        confidence: e.confidence.unwrap_or(Confidence::Low),
        title: "title".into(),
        explanation: format!("because {}", e.says.join(", ")),
        remediation: format!("do {}", remediation.join(", then ")),
        count: match e.severity {
            Severity::Warning => 0,
            Severity::Failure => e.related.len() as u64,
        },
        first_ms: times.iter().copied().min().unwrap_or_default(),
        last_ms: times.iter().copied().max().unwrap_or_default(),
        related,
        cause: match &e.cause {
            CauseIs::Nothing => None,
            CauseIs::Exactly(c) => Some(*c),
            CauseIs::OneOf(any) => any.first().copied(),
        },
        alternatives: e
            .alternatives
            .iter()
            .map(|t| format!("{} (low): a candidate", t.as_str()))
            .collect(),
        actor_app: None,
        credential_uid: None,
        incident_url: e.incident_url.clone(),
    }
}
