//! The evidence correlation reads, kept compact: a million failures say a handful of different
//! things, so what a failure says is interned and each failure is a few numbers.

use std::collections::HashMap;

use uuid::Uuid;

use super::EventRef;
use crate::model::{Dataset, Record};

/// How a failure failed, as far as causes care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// 403 and its equivalents: the caller is known but may not.
    Forbidden,
    /// 401 and its equivalents: the credential itself was refused.
    Unauthorized,
    Webhook,
    RateLimit,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Forbidden => "forbidden",
            Class::Unauthorized => "unauthorized",
            Class::Webhook => "webhook",
            Class::RateLimit => "rate_limit",
        }
    }
}

/// What makes failures one group (DESIGN §6): who, how, where.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupKey {
    pub vendor: String,
    pub tenant: String,
    pub environment: String,
    /// The bound credential's name; without one, the app.
    pub credential: Option<String>,
    pub actor_app: Option<String>,
    pub class: Class,
    /// "METHOD operation" for denials, the endpoint for webhooks, the operation for bursts.
    pub operation: String,
}

impl GroupKey {
    /// One string, for ids.
    pub fn text(&self) -> String {
        let who = match (&self.credential, &self.actor_app) {
            (Some(c), _) => format!("credential:{c}"),
            (None, Some(a)) => format!("app:{a}"),
            (None, None) => String::new(),
        };
        format!(
            "{}|{}|{}|{}|{}|{}",
            self.class.as_str(),
            self.vendor,
            self.tenant,
            self.environment,
            who,
            self.operation
        )
    }
}

/// What a failure says beyond its time and id.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Detail {
    pub http_status: Option<i64>,
    pub auth_error: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub api_service: Option<String>,
    pub api_operation: Option<String>,
    pub method: Option<String>,
    pub required_scope: Vec<String>,
    pub actor_app: Option<String>,
    pub credential_uid: Option<String>,
    pub error_type: Option<String>,
    pub endpoint_url: Option<String>,
    pub webhook_uid: Option<String>,
    pub retry_after_s: Option<i64>,
    pub ratelimit_limit: Option<i64>,
}

/// One failure: a denial, a webhook failure or a whole burst. A busy week has hundreds of
/// thousands of them, nearly all single: what only a burst has is kept aside in an `Extent`,
/// so a failure is 40 bytes, not 56.
#[derive(Debug, Clone, Copy)]
pub struct Failure {
    pub key: u32,
    pub detail: u32,
    /// A burst's index into the extents; `SINGLE` (never an index) for the others.
    extent: u32,
    pub dataset: Dataset,
    pub time: i64,
    pub uid: Uuid,
}

const SINGLE: u32 = u32::MAX;

/// What a burst has beyond its first 429.
#[derive(Debug, Clone, Copy)]
pub struct Extent {
    /// The last 429.
    pub end: i64,
    /// The 429s, and the 503s among them.
    pub count: u32,
    pub count_503: u32,
    /// Only a burst's latest revision counts.
    pub revision: u32,
}

impl Failure {
    pub fn event(&self) -> EventRef {
        EventRef {
            uid: self.uid,
            dataset: self.dataset,
        }
    }

    /// Its extent: a failure that is not a burst is one, at its time.
    fn extent(&self, extents: &[Extent]) -> Extent {
        match extents.get(self.extent as usize) {
            Some(e) => *e,
            None => Extent {
                end: self.time,
                count: 1,
                count_503: 0,
                revision: 0,
            },
        }
    }
}

#[derive(Debug, Clone)]
pub struct Snapshot {
    pub time: i64,
    pub uid: Uuid,
    pub vendor: String,
    pub tenant: String,
    pub environment: String,
    pub credential: String,
    pub status: String,
    /// Without their kind prefix (`scp:`, `role:`, `perm:`); `None` when unknown.
    pub privileges: Option<Vec<String>>,
    pub removed: Vec<String>,
    pub audience: Vec<String>,
    pub issuer: Option<String>,
    pub actor_app: Option<String>,
    pub identity: Option<String>,
    pub expires_at: Option<i64>,
    pub not_before: Option<i64>,
    pub issued_at: Option<i64>,
    pub server_skew_ms: Option<i64>,
}

impl Snapshot {
    pub fn event(&self) -> EventRef {
        EventRef {
            uid: self.uid,
            dataset: Dataset::TokenSnapshots,
        }
    }

    pub fn has(&self, privilege: &str) -> bool {
        self.privileges
            .as_ref()
            .is_some_and(|p| p.iter().any(|x| x == privilege))
    }
}

#[derive(Debug, Clone)]
pub struct Change {
    pub time: i64,
    pub uid: Uuid,
    pub vendor: String,
    pub tenant: String,
    pub environment: String,
    pub source: String,
    pub credential: Option<String>,
    pub action: String,
    pub actor_user: Option<String>,
    pub target_type: Option<String>,
    pub target: Option<String>,
    pub details: Option<String>,
}

impl Change {
    pub fn event(&self) -> EventRef {
        EventRef {
            uid: self.uid,
            dataset: Dataset::Changes,
        }
    }

    /// scopetrail's own drift rows, as opposed to a vendor's audit trail.
    pub fn is_drift(&self) -> bool {
        self.source.starts_with("scopetrail.")
    }
}

#[derive(Debug, Clone)]
pub struct Incident {
    /// The latest version's time and id.
    pub time: i64,
    pub uid: Uuid,
    pub vendor: String,
    pub name: String,
    pub components: Vec<String>,
    pub started: Option<i64>,
    pub resolved: Option<i64>,
    pub url: Option<String>,
}

/// Successful requests of one hour, method and operation.
#[derive(Debug, Clone)]
pub struct Count {
    pub hour: i64,
    pub method: String,
    pub count: i64,
}

/// api_service → api_operation (sorted, so an operation's items are a range) → 2xx counts,
/// by hour once indexed.
pub type Counts = HashMap<String, std::collections::BTreeMap<String, Vec<Count>>>;

/// Everything `add` was given, then sorted and indexed by `index`.
#[derive(Default)]
pub struct Evidence {
    pub keys: Vec<GroupKey>,
    // Looked up once per failure: a fast hash, not SipHash (the keys are not an attacker's).
    key_ids: rustc_hash::FxHashMap<GroupKey, u32>,
    pub details: Vec<Detail>,
    detail_ids: rustc_hash::FxHashMap<Detail, u32>,
    pub failures: Vec<Failure>,
    extents: Vec<Extent>,
    pub snapshots: Vec<Snapshot>,
    pub changes: Vec<Change>,
    incidents: HashMap<(String, String), Incident>,
    pub counts: Counts,
    /// Every app and client id a credential is known by, for telling whose a change is.
    pub known_apps: HashMap<String, String>,
}

/// The evidence, sorted for lookups by time.
pub struct Indexed {
    pub keys: Vec<GroupKey>,
    pub details: Vec<Detail>,
    /// By key, then time.
    pub failures: Vec<Failure>,
    extents: Vec<Extent>,
    /// Credential name → its snapshots, oldest first.
    pub snapshots: HashMap<String, Vec<Snapshot>>,
    /// (vendor, tenant) → vendor changes, indexed by whom they name.
    pub changes: HashMap<(String, String), TenantChanges>,
    /// (credential, environment) → drift rows, oldest first.
    pub drift: HashMap<(String, String), Vec<Change>>,
    /// Vendor → incidents.
    pub incidents: HashMap<String, Vec<Incident>>,
    /// api_service → (api_operation, hourly count).
    pub counts: Counts,
    /// App or client id → credential name.
    pub known_apps: HashMap<String, String>,
}

impl Indexed {
    pub fn extent(&self, f: &Failure) -> Extent {
        f.extent(&self.extents)
    }
}

impl Evidence {
    pub fn add(&mut self, record: &Record) {
        match record {
            Record::Denials(d) => {
                let class = denial_class(d);
                let method = d.http_method.clone();
                let operation = d
                    .api_operation
                    .clone()
                    .or_else(|| d.url_path.clone())
                    .unwrap_or_default();
                let operation = match &method {
                    Some(m) => format!("{m} {operation}"),
                    None => operation,
                };
                let key = self.key(record, d.actor_app.as_deref(), class, operation);
                let detail = self.detail(Detail {
                    http_status: d.http_status,
                    auth_error: d.auth_error.clone(),
                    error_code: d.error_code.clone(),
                    error_message: d.error_message.clone(),
                    api_service: d.api_service.clone(),
                    api_operation: d.api_operation.clone(),
                    method,
                    required_scope: d.required_scope.clone(),
                    actor_app: d.actor_app.clone(),
                    credential_uid: d.credential_uid.clone(),
                    ..Detail::default()
                });
                self.failure(record, key, detail, d.head.time, None);
            }
            Record::WebhookFailures(w) => {
                let endpoint = w
                    .webhook_uid
                    .clone()
                    .or_else(|| w.url.clone())
                    .or_else(|| w.dst_hostname.clone())
                    .unwrap_or_default();
                let key = self.key(record, None, Class::Webhook, endpoint);
                let detail = self.detail(Detail {
                    http_status: w.http_status,
                    error_type: w.error_type.clone(),
                    error_message: w.error_message.clone(),
                    api_service: w.dst_hostname.clone(),
                    endpoint_url: w.url.clone(),
                    webhook_uid: w.webhook_uid.clone(),
                    ..Detail::default()
                });
                self.failure(record, key, detail, w.head.time, None);
            }
            Record::RateLimitBursts(b) => {
                let operation = b.api_operation.clone().unwrap_or_default();
                let key = self.key(record, b.actor_app.as_deref(), Class::RateLimit, operation);
                let detail = self.detail(Detail {
                    api_service: b.api_service.clone(),
                    api_operation: b.api_operation.clone(),
                    actor_app: b.actor_app.clone(),
                    credential_uid: b.credential_uid.clone(),
                    retry_after_s: b.retry_after_max_s,
                    ratelimit_limit: b.ratelimit_limit,
                    ..Detail::default()
                });
                let start = b.start_time_dt.unwrap_or(b.head.time);
                let number = |n: Option<i64>| n.unwrap_or(0).clamp(0, u32::MAX as i64) as u32;
                let extent = Extent {
                    end: b.end_time_dt.map_or(start, |e| e.max(start)),
                    count: number(b.count),
                    count_503: number(b.interleaved_503),
                    revision: number(b.revision),
                };
                self.failure(record, key, detail, start, Some(extent));
            }
            Record::TokenSnapshots(s) => {
                let Some(credential) = s.head.credential.clone() else {
                    return;
                };
                if let Some(app) = &s.actor_app {
                    self.know_app(app, &credential);
                }
                self.snapshots.push(Snapshot {
                    time: s.head.time,
                    uid: s.head.event_uid,
                    vendor: s.head.vendor.clone(),
                    tenant: s.head.tenant.clone(),
                    environment: s.head.environment.clone(),
                    credential,
                    status: s.status.clone().unwrap_or_default(),
                    privileges: s
                        .privileges
                        .as_ref()
                        .map(|p| p.iter().map(|x| bare(x).to_string()).collect()),
                    removed: s
                        .privileges_removed
                        .iter()
                        .map(|x| bare(x).to_string())
                        .collect(),
                    audience: s.audience.clone(),
                    issuer: s.issuer.clone(),
                    actor_app: s.actor_app.clone(),
                    identity: s.identity.clone(),
                    expires_at: s.expires_at_dt,
                    not_before: s.not_before_dt,
                    issued_at: s.issued_at_dt,
                    server_skew_ms: s.server_skew_ms,
                });
            }
            Record::Changes(c) => self.changes.push(Change {
                time: c.head.time,
                uid: c.head.event_uid,
                vendor: c.head.vendor.clone(),
                tenant: c.head.tenant.clone(),
                environment: c.head.environment.clone(),
                source: c.head.source.clone(),
                credential: c.head.credential.clone(),
                action: c.action.clone().unwrap_or_default(),
                actor_user: c.actor_user.clone(),
                target_type: c.target_type.clone(),
                target: c.target.clone(),
                details: c.details.clone(),
            }),
            Record::Incidents(i) => {
                let id = i
                    .head
                    .source_event_uid
                    .clone()
                    .unwrap_or_else(|| i.head.event_uid.to_string());
                let incident = Incident {
                    time: i.head.time,
                    uid: i.head.event_uid,
                    vendor: i.head.vendor.clone(),
                    name: i.name.clone().unwrap_or_default(),
                    components: i.components.clone(),
                    started: i.started_dt,
                    resolved: i.resolved_dt,
                    url: i.url.clone(),
                };
                // Each update is a row: the latest one knows the resolution.
                let slot = self
                    .incidents
                    .entry((i.head.vendor.clone(), id))
                    .or_insert_with(|| incident.clone());
                if (incident.time, incident.uid) > (slot.time, slot.uid) {
                    *slot = incident;
                }
            }
            Record::RequestCounts(r) => {
                // Successes are what tell "never worked" from "stopped working".
                let (Some(service), Some(hour), Some("2xx")) =
                    (&r.api_service, r.hour_dt, r.status_class.as_deref())
                else {
                    return;
                };
                self.counts
                    .entry(service.clone())
                    .or_default()
                    .entry(r.api_operation.clone().unwrap_or_default())
                    .or_default()
                    .push(Count {
                        hour,
                        method: r.http_method.clone().unwrap_or_default(),
                        count: r.count.unwrap_or(0),
                    });
            }
            Record::Findings(_) | Record::FindingEvents(_) | Record::RateLimitEvents(_) => {}
        }
    }

    fn key(&mut self, record: &Record, app: Option<&str>, class: Class, operation: String) -> u32 {
        let head = record.head();
        let key = GroupKey {
            vendor: head.vendor.clone(),
            tenant: head.tenant.clone(),
            environment: head.environment.clone(),
            credential: head.credential.clone(),
            actor_app: if head.credential.is_some() {
                None
            } else {
                app.map(str::to_string)
            },
            class,
            operation,
        };
        if let (Some(c), Some(a)) = (&head.credential, app) {
            self.know_app(a, c);
        }
        if let Some(&id) = self.key_ids.get(&key) {
            return id;
        }
        let id = self.keys.len() as u32;
        self.keys.push(key.clone());
        self.key_ids.insert(key, id);
        id
    }

    /// An app claimed by two credentials is remembered as the first by name, whatever the
    /// order records came in.
    fn know_app(&mut self, app: &str, credential: &str) {
        match self.known_apps.get_mut(app) {
            Some(c) if credential < c.as_str() => *c = credential.to_string(),
            Some(_) => {}
            None => {
                self.known_apps
                    .insert(app.to_string(), credential.to_string());
            }
        }
    }

    fn detail(&mut self, detail: Detail) -> u32 {
        if let Some(&id) = self.detail_ids.get(&detail) {
            return id;
        }
        let id = self.details.len() as u32;
        self.details.push(detail.clone());
        self.detail_ids.insert(detail, id);
        id
    }

    fn failure(
        &mut self,
        record: &Record,
        key: u32,
        detail: u32,
        time: i64,
        extent: Option<Extent>,
    ) {
        let extent = match extent {
            Some(e) => {
                self.extents.push(e);
                (self.extents.len() - 1) as u32
            }
            None => SINGLE,
        };
        self.failures.push(Failure {
            key,
            detail,
            extent,
            dataset: record.dataset(),
            time,
            uid: record.head().event_uid,
        });
    }

    pub fn index(self) -> Indexed {
        let Evidence {
            keys,
            details,
            mut failures,
            extents,
            snapshots,
            changes,
            incidents,
            mut counts,
            known_apps,
            ..
        } = self;
        for list in counts.values_mut().flat_map(|ops| ops.values_mut()) {
            list.sort_by_key(|c| c.hour);
        }
        // Keys are numbered in arrival order; sort by the key itself so the result does not
        // depend on the order records came in.
        let mut order: Vec<u32> = (0..keys.len() as u32).collect();
        order.sort_by(|a, b| keys[*a as usize].cmp(&keys[*b as usize]));
        let mut rank = vec![0u32; keys.len()];
        for (r, k) in order.iter().enumerate() {
            rank[*k as usize] = r as u32;
        }
        // A row given twice (a burst and its later revision, read back from exports) is one
        // failure, at its latest revision.
        failures.sort_unstable_by_key(|f| (f.uid, std::cmp::Reverse(f.extent(&extents).revision)));
        failures.dedup_by_key(|f| f.uid);
        failures.sort_unstable_by_key(|f| (rank[f.key as usize], f.time, f.uid));
        let snapshots_names: Vec<String> = {
            let mut n: Vec<String> = snapshots.iter().map(|s| s.credential.clone()).collect();
            n.sort_unstable();
            n.dedup();
            n
        };
        let mut by_credential: HashMap<String, Vec<Snapshot>> = HashMap::new();
        for s in snapshots {
            by_credential
                .entry(s.credential.clone())
                .or_default()
                .push(s);
        }
        for list in by_credential.values_mut() {
            list.sort_by_key(|s| (s.time, s.uid));
        }
        let mut by_place: HashMap<(String, String), Vec<Change>> = HashMap::new();
        let mut drift: HashMap<(String, String), Vec<Change>> = HashMap::new();
        for c in changes {
            if c.is_drift() {
                if let Some(cred) = &c.credential {
                    drift
                        .entry((cred.clone(), c.environment.clone()))
                        .or_default()
                        .push(c);
                }
            } else {
                by_place
                    .entry((c.vendor.clone(), c.tenant.clone()))
                    .or_default()
                    .push(c);
            }
        }
        for list in drift.values_mut() {
            list.sort_by_key(|c| (c.time, c.uid));
        }
        let known: std::collections::HashSet<&str> = known_apps
            .iter()
            .flat_map(|(a, c)| [a.as_str(), c.as_str()])
            .chain(snapshots_names.iter().map(String::as_str))
            .collect();
        let by_place: HashMap<(String, String), TenantChanges> = by_place
            .into_iter()
            .map(|(k, v)| (k, TenantChanges::build(v, &known)))
            .collect();
        let mut by_vendor: HashMap<String, Vec<Incident>> = HashMap::new();
        for i in incidents.into_values() {
            by_vendor.entry(i.vendor.clone()).or_default().push(i);
        }
        for list in by_vendor.values_mut() {
            list.sort_by_key(|i| (i.started, i.uid));
        }
        Indexed {
            keys,
            details,
            failures,
            extents,
            snapshots: by_credential,
            changes: by_place,
            drift,
            incidents: by_vendor,
            counts,
            known_apps,
        }
    }
}

/// A tenant's vendor changes, and which of them a group needs to look at: those naming it
/// (its credential, app, endpoint), and those naming nobody known that could still be a cause
/// (a revocation, an access change, a hook change). A group never scans the whole tenant's
/// history, so the cost per group does not grow with how busy the audit log is.
#[derive(Default)]
pub struct TenantChanges {
    /// Oldest first.
    pub all: Vec<Change>,
    naming: HashMap<String, Vec<u32>>,
    /// Naming nobody known, by what they could cause. Of revocations and access changes only
    /// the newest in a window can be the cause (they all score alike), so a group reads one
    /// of each, however busy the tenant's audit log.
    unnamed_revoking: Vec<u32>,
    unnamed_access: Vec<u32>,
    unnamed_hooks: Vec<u32>,
}

impl TenantChanges {
    /// `known`: every app and credential name.
    fn build(mut all: Vec<Change>, known: &std::collections::HashSet<&str>) -> TenantChanges {
        all.sort_by_key(|c| (c.time, c.uid));
        let mut naming: HashMap<String, Vec<u32>> = HashMap::new();
        let (mut unnamed_revoking, mut unnamed_access, mut unnamed_hooks) =
            (Vec::new(), Vec::new(), Vec::new());
        for (i, c) in all.iter().enumerate() {
            let i = i as u32;
            let mut named: Vec<&str> = Vec::new();
            if let Some(cred) = &c.credential {
                named.push(cred);
            } else {
                named.extend(c.target.as_deref());
                for w in words(c.target.as_deref()).chain(words(c.details.as_deref())) {
                    if known.contains(w) || about_hooks(c) {
                        named.push(w);
                    }
                }
            }
            named.sort_unstable();
            named.dedup();
            let knows_someone = named.iter().any(|w| known.contains(w)) || c.credential.is_some();
            for w in named {
                naming.entry(w.to_string()).or_default().push(i);
            }
            if !knows_someone {
                for (list, yes) in [
                    (&mut unnamed_revoking, revoking(&c.action)),
                    (&mut unnamed_access, about_access(c)),
                    (&mut unnamed_hooks, about_hooks(c)),
                ] {
                    if yes {
                        list.push(i);
                    }
                }
            }
        }
        TenantChanges {
            all,
            naming,
            unnamed_revoking,
            unnamed_access,
            unnamed_hooks,
        }
    }

    /// The changes between `since` and `until` that name one of `names` or nobody known,
    /// newest first.
    pub fn about(&self, names: &[&str], since: i64, until: i64) -> Vec<&Change> {
        let window = |ids: &[u32]| -> Vec<u32> {
            let lo = ids.partition_point(|i| self.all[*i as usize].time < since);
            let hi = ids.partition_point(|i| self.all[*i as usize].time <= until);
            ids[lo..hi.max(lo)].to_vec()
        };
        let mut ids = window(&self.unnamed_hooks);
        ids.extend(window(&self.unnamed_revoking).last());
        ids.extend(window(&self.unnamed_access).last());
        for n in names {
            if let Some(list) = self.naming.get(*n) {
                ids.extend(window(list));
            }
        }
        ids.sort_unstable_by(|a, b| b.cmp(a));
        ids.dedup();
        ids.into_iter().map(|i| &self.all[i as usize]).collect()
    }
}

fn words(text: Option<&str>) -> impl Iterator<Item = &str> {
    text.unwrap_or("")
        .split(|c: char| c.is_whitespace() || "=,;\"'()[]".contains(c))
        .filter(|w| !w.is_empty())
}

/// A change that can take a credential away.
pub fn revoking(action: &str) -> bool {
    let a = action.to_ascii_lowercase();
    [
        "revoke",
        "rotate",
        "secret",
        "delete",
        "deactivate",
        "suspend",
        "destroy",
        "regenerate",
    ]
    .iter()
    .any(|w| a.contains(w))
}

/// A change to who may do what.
pub fn about_access(c: &Change) -> bool {
    let text = format!(
        "{} {}",
        c.action.to_ascii_lowercase(),
        c.target_type.as_deref().unwrap_or("").to_ascii_lowercase()
    );
    [
        "role",
        "permission",
        "policy",
        "scope",
        "grant",
        "privilege",
        "consent",
        "team",
        "member",
        "access",
    ]
    .iter()
    .any(|w| text.contains(w))
}

/// A change to a webhook.
pub fn about_hooks(c: &Change) -> bool {
    c.action.to_ascii_lowercase().contains("hook")
}

/// A privilege without its kind: `scp:gl:journal:write` → `gl:journal:write`.
pub fn bare(privilege: &str) -> &str {
    for kind in ["scp:", "role:", "perm:"] {
        if let Some(rest) = privilege.strip_prefix(kind) {
            return rest;
        }
    }
    privilege
}

/// Codes that mean "you may not", whatever the status says. A body's code wins over the
/// header's `invalid_token` (seed 003).
const FORBIDDEN_CODES: &[&str] = &[
    "insufficient_scope",
    "insufficient_access",
    "insufficient_permissions",
    "accessdenied",
    "access_denied",
    "forbidden",
    "authorizationfailed",
    "authorization_failed",
    "permission_denied",
    "unauthorizedoperation",
];

fn denial_class(d: &crate::model::Denial) -> Class {
    let forbidden_code = [&d.error_code, &d.auth_error]
        .into_iter()
        .flatten()
        .any(|c| FORBIDDEN_CODES.contains(&c.to_ascii_lowercase().as_str()));
    if d.http_status == Some(403) || forbidden_code || !d.required_scope.is_empty() {
        Class::Forbidden
    } else {
        Class::Unauthorized
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The point of `Extent`: memory per failure, at hundreds of thousands of failures a week.
    #[test]
    fn a_failure_is_40_bytes_and_a_single_one_has_the_extent_of_one() {
        assert_eq!(std::mem::size_of::<Failure>(), 40);
        let f = Failure {
            key: 0,
            detail: 0,
            extent: SINGLE,
            dataset: Dataset::Denials,
            time: 7,
            uid: Uuid::nil(),
        };
        let e = f.extent(&[]);
        assert_eq!((e.end, e.count, e.count_503, e.revision), (7, 1, 0, 0));
        let burst = Extent {
            end: 9,
            count: 12,
            count_503: 2,
            revision: 3,
        };
        let f = Failure { extent: 0, ..f };
        let e = f.extent(&[burst]);
        assert_eq!((e.end, e.count, e.count_503, e.revision), (9, 12, 2, 3));
    }
}
