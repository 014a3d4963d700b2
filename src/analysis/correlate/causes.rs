//! Every candidate cause of a group, scored from the evidence; the best explains it. Scores
//! rank causes against each other: explicit evidence (a snapshot without the scope the server
//! asked for) beats circumstance (a change of the same tenant the day before).

use super::evidence::{Change, Class, Incident, Indexed, Snapshot, about_access, revoking};
use super::groups::Group;
use super::text::{and, at, plural, span, what, when, who};
use super::{Confidence, EventRef, Finding, FindingType, Settings, Severity};

/// Status pages lag: an incident can be the cause of failures this long before it was posted.
const INCIDENT_LEAD_MS: i64 = 30 * 60_000;
/// Failures starting this close to an incident's start are its, with high confidence.
const INCIDENT_CLOSE_MS: i64 = 5 * 60_000;

struct Candidate {
    kind: FindingType,
    score: u8,
    cause: Option<EventRef>,
    /// The evidence, as a sentence.
    why: String,
    /// The cause in a few words, for the title and for alternatives.
    short: String,
    remediation: String,
    incident_url: Option<String>,
}

impl Candidate {
    fn confidence(&self) -> Confidence {
        confidence(self.score)
    }
}

fn confidence(score: u8) -> Confidence {
    match score {
        80.. => Confidence::High,
        50.. => Confidence::Medium,
        _ => Confidence::Low,
    }
}

/// What a group's causes are looked for in.
struct Context<'a> {
    group: &'a Group<'a>,
    evidence: &'a Indexed,
    settings: &'a Settings,
    /// The credential's snapshots in the group's environment, oldest first.
    own: Vec<&'a Snapshot>,
    /// Its snapshots in other environments.
    others: Vec<&'a Snapshot>,
    /// Earliest time a change or snapshot can be the cause.
    since: i64,
}

impl<'a> Context<'a> {
    fn new(group: &'a Group<'a>, evidence: &'a Indexed, settings: &'a Settings) -> Self {
        let lookback = i64::try_from(settings.change_lookback.as_millis()).unwrap_or(i64::MAX);
        let (mut own, mut others) = (Vec::new(), Vec::new());
        if let Some(name) = &group.key.credential {
            for s in evidence.snapshots.get(name).into_iter().flatten() {
                if s.environment == group.key.environment {
                    own.push(s);
                } else {
                    others.push(s);
                }
            }
        }
        Context {
            group,
            evidence,
            settings,
            own,
            others,
            since: group.first.saturating_sub(lookback),
        }
    }

    /// The snapshot nearest the failures: the latest taken by the last one, else the first after.
    fn nearest(&self) -> Option<&'a Snapshot> {
        let last = self.group.last;
        self.own
            .iter()
            .rev()
            .find(|s| s.time <= last)
            .or_else(|| self.own.iter().find(|s| s.time > last))
            .copied()
    }

    /// Vendor changes of the group's tenant between `from` and `until` that name it (its
    /// credential, app or endpoint) or nobody known, newest first.
    fn changes_between(&self, from: i64, until: i64) -> Vec<&'a Change> {
        let k = self.group.key;
        let Some(tenant) = self
            .evidence
            .changes
            .get(&(k.vendor.clone(), k.tenant.clone()))
        else {
            return Vec::new();
        };
        let mut names: Vec<&str> = Vec::new();
        names.extend(k.credential.as_deref());
        names.extend(self.group.app());
        for (d, _) in &self.group.details {
            names.extend(d.webhook_uid.as_deref());
            names.extend(d.endpoint_url.as_deref());
        }
        names.sort_unstable();
        names.dedup();
        tenant.about(&names, from, until)
    }

    /// The same, from the lookback's start.
    fn changes(&self, until: i64) -> impl Iterator<Item = &'a Change> + '_ {
        self.changes_between(self.since, until).into_iter()
    }

    /// Whom a change is about: this group's credential, another one, or nobody known.
    fn names(&self, c: &Change) -> Named {
        let ours = self.group.key.credential.as_deref();
        let app = self.group.app();
        if let Some(cred) = &c.credential {
            return if Some(cred.as_str()) == ours {
                Named::Ours
            } else {
                Named::Other
            };
        }
        let texts = [&c.target, &c.details];
        let mentions = |needle: &str| {
            texts
                .iter()
                .any(|t| t.as_deref().is_some_and(|t| t.contains(needle)))
        };
        if app.is_some_and(mentions) || ours.is_some_and(|o| c.target.as_deref() == Some(o)) {
            return Named::Ours;
        }
        // Another credential's app named as a word of the change (a lookup per word, not a
        // scan of every app per change).
        let other = texts
            .iter()
            .filter_map(|t| t.as_deref())
            .flat_map(|t| t.split(|c: char| c.is_whitespace() || "=,;/\"'()[]".contains(c)))
            .filter(|w| !w.is_empty() && Some(*w) != app)
            .filter_map(|w| self.evidence.known_apps.get(w))
            .any(|cred| Some(cred.as_str()) != ours);
        if other { Named::Other } else { Named::Nobody }
    }

    fn credential_name(&self) -> String {
        self.group
            .key
            .credential
            .clone()
            .or_else(|| self.group.app().map(str::to_string))
            .unwrap_or_else(|| format!("{} {}", self.group.key.vendor, self.group.key.tenant))
    }

    /// The OAuth client to grant to, for remediations.
    fn client(&self) -> String {
        let snapshot_app = self.nearest().and_then(|s| s.actor_app.clone());
        let app = snapshot_app.or_else(|| self.group.app().map(str::to_string));
        let issuer = self.nearest().and_then(|s| s.issuer.clone());
        match (app, issuer) {
            (Some(a), Some(i)) => format!("client {a} at {i}"),
            (Some(a), None) => format!("client {a}"),
            (None, _) => format!("the client of {}", self.credential_name()),
        }
    }

    fn check_hint(&self) -> String {
        match &self.group.key.credential {
            Some(c) => format!("check its claims with `scopetrail snapshot --credential {c}`"),
            None => "check its claims".into(),
        }
    }
}

#[derive(PartialEq)]
enum Named {
    Ours,
    Other,
    Nobody,
}

pub fn explain(group: &Group, evidence: &Indexed, settings: &Settings) -> Finding {
    let cx = Context::new(group, evidence, settings);
    let mut found = Vec::new();
    match group.class() {
        Class::Forbidden => {
            scopes(&cx, &mut found);
            audience(&cx, &mut found, 70);
            permission_change(&cx, &mut found);
            identity(&cx, &mut found);
        }
        Class::Unauthorized => {
            token_expired(&cx, &mut found);
            credential_revoked(&cx, &mut found);
            clock_skew(&cx, &mut found);
            audience(&cx, &mut found, 85);
            identity(&cx, &mut found);
        }
        Class::Webhook => webhook(&cx, &mut found),
        Class::RateLimit => rate_limited(&cx, &mut found),
    }
    incident(&cx, &mut found);
    found.sort_by(|a, b| b.score.cmp(&a.score).then(a.kind.cmp(&b.kind)));
    let mut found = found.into_iter();
    let best = found.next().unwrap_or_else(|| unexplained(&cx));
    let alternatives = found
        .map(|c| {
            format!(
                "{} ({}): {}",
                c.kind.as_str(),
                c.confidence().as_str(),
                c.short
            )
        })
        .collect();
    let counts = counts_note(&cx);
    let explanation = format!(
        "{} for {}{} {}. {}{}",
        what(group),
        who(group),
        super::text::place(group),
        when(group),
        best.why,
        counts.map(|c| format!(" {c}")).unwrap_or_default()
    );
    Finding {
        key: group.key.text(),
        vendor: group.key.vendor.clone(),
        tenant: group.key.tenant.clone(),
        environment: group.key.environment.clone(),
        credential: group.key.credential.clone(),
        finding_type: best.kind,
        severity: Severity::Failure,
        confidence: best.confidence(),
        title: format!(
            "{} for {}: {}",
            what(group),
            cx.credential_name(),
            best.short
        ),
        explanation,
        remediation: best.remediation,
        first_ms: group.first,
        last_ms: group.last,
        count: group.count,
        related: group.failures.iter().map(|f| f.event()).collect(),
        cause: best.cause,
        alternatives,
        actor_app: group.app().map(str::to_string),
        credential_uid: group
            .most(|d| d.credential_uid.as_deref())
            .map(str::to_string),
        incident_url: best.incident_url,
    }
}

/// Drift seen before anything failed on it: the point of snapshots is to see it first.
pub fn warnings(evidence: &Indexed, findings: &[Finding]) -> Vec<Finding> {
    let mut out = Vec::new();
    // The last failure of each credential and environment.
    let mut last_failure: std::collections::HashMap<(&str, &str), i64> =
        std::collections::HashMap::new();
    for f in findings {
        if let Some(c) = &f.credential {
            let last = last_failure.entry((c, &f.environment)).or_insert(f.last_ms);
            *last = (*last).max(f.last_ms);
        }
    }
    for snapshots in evidence.snapshots.values() {
        for s in snapshots.iter().filter(|s| !s.removed.is_empty()) {
            let failed = last_failure
                .get(&(s.credential.as_str(), s.environment.as_str()))
                .is_some_and(|last| *last >= s.time - 24 * 3_600_000);
            if failed {
                continue;
            }
            let removed: Vec<&str> = s.removed.iter().map(String::as_str).collect();
            let before = snapshots
                .iter()
                .rev()
                .find(|p| p.environment == s.environment && p.time < s.time && p.status == "ok");
            let mut related = vec![s.event()];
            related.extend(
                evidence
                    .drift
                    .get(&(s.credential.clone(), s.environment.clone()))
                    .into_iter()
                    .flatten()
                    .filter(|c| c.time == s.time && c.action == "privileges_removed")
                    .map(Change::event),
            );
            let client = match (&s.actor_app, &s.issuer) {
                (Some(a), Some(i)) => format!("client {a} at {i}"),
                (Some(a), None) => format!("client {a}"),
                _ => format!("the client of {}", s.credential),
            };
            out.push(Finding {
                key: format!(
                    "warning|{}|{}|{}|credential:{}|{}",
                    s.vendor,
                    s.tenant,
                    s.environment,
                    s.credential,
                    removed.join(" ")
                ),
                vendor: s.vendor.clone(),
                tenant: s.tenant.clone(),
                environment: s.environment.clone(),
                credential: Some(s.credential.clone()),
                finding_type: FindingType::ScopeDrift,
                severity: Severity::Warning,
                confidence: Confidence::High,
                title: format!(
                    "{} removed from {} ({}); nothing has failed on it yet",
                    and(&removed),
                    s.credential,
                    s.environment
                ),
                explanation: format!(
                    "The snapshot of {} no longer has {}{}. No denial of {} in {} has followed yet.",
                    at(s.time),
                    and(&removed),
                    before
                        .map(|b| format!(", which the snapshot of {} had", at(b.time)))
                        .unwrap_or_default(),
                    s.credential,
                    s.environment
                ),
                remediation: format!(
                    "If the removal was not meant, grant {} back to {} before the integration needs it; then mint a new token and check its claims with `scopetrail snapshot --credential {}`. If it was meant, nothing to do.",
                    and(&removed),
                    client,
                    s.credential
                ),
                first_ms: s.time,
                last_ms: s.time,
                count: 0,
                related,
                cause: Some(s.event()),
                alternatives: Vec::new(),
                actor_app: s.actor_app.clone(),
                credential_uid: None,
                incident_url: None,
            });
        }
    }
    out
}

/// scope_drift, environment_mismatch and insufficient_scope: what the snapshots say about
/// the scopes the denials need.
fn scopes(cx: &Context, out: &mut Vec<Candidate>) {
    let g = cx.group;
    let required = g.required_scopes();
    let check = cx.check_hint();
    let client = cx.client();
    if required.is_empty() {
        // Without the server naming the scope, a removal just before is still a lead.
        if let Some(s) = cx
            .own
            .iter()
            .rev()
            .find(|s| !s.removed.is_empty() && s.time >= cx.since && s.time <= g.last)
        {
            let removed: Vec<&str> = s.removed.iter().map(String::as_str).collect();
            out.push(Candidate {
                kind: FindingType::ScopeDrift,
                score: if g.says("insufficient_scope") { 70 } else { 55 },
                cause: Some(s.event()),
                why: format!(
                    "The snapshot of {} lost {}; the denials do not say which scope they need.",
                    at(s.time),
                    and(&removed)
                ),
                short: format!("{} removed at {}", and(&removed), at(s.time)),
                remediation: format!(
                    "Check whether the calls need {}; if so, grant it back to {client}; then mint a new token and {check}.",
                    and(&removed)
                ),
                incident_url: None,
            });
        } else if g.says("insufficient_scope") {
            // The snapshot shows what the token holds, to compare with the API's reference.
            let now = cx.nearest().filter(|s| s.privileges.is_some());
            out.push(Candidate {
                kind: FindingType::InsufficientScope,
                score: 55,
                cause: now.map(Snapshot::event),
                why: match now {
                    Some(s) => format!(
                        "The API says the token lacks a scope, without naming it; the snapshot of {} holds {}.",
                        at(s.time),
                        s.privileges.as_ref().map(|p| p.join(" ")).unwrap_or_default()
                    ),
                    None => "The API says the token lacks a scope, without naming it.".into(),
                },
                short: "a scope is missing (unnamed)".into(),
                remediation: format!(
                    "Look up the scopes the operation needs in the vendor's API reference and grant them to {client}; then mint a new token and {check}."
                ),
                incident_url: None,
            });
        }
        return;
    }
    // A removal the snapshots saw, close before the failures.
    let drift = cx
        .own
        .iter()
        .filter(|s| s.time >= cx.since && s.time <= g.last)
        .filter(|s| required.iter().any(|r| s.removed.iter().any(|x| x == r)))
        .copied();
    // Seen after the first failure, a removal is the cause only if no snapshot in between
    // still had the scope.
    let held_after_first = |s: &Snapshot| {
        cx.own.iter().any(|p| {
            p.time >= g.first
                && p.time < s.time
                && s.removed
                    .iter()
                    .any(|r| required.contains(&r.as_str()) && p.has(r))
        })
    };
    let drift = drift
        .clone()
        .rev()
        .find(|s| s.time <= g.first)
        .or_else(|| drift.clone().find(|s| !held_after_first(s)));
    let others_have = |scope: &str| {
        latest_ok_by_env(&cx.others)
            .into_iter()
            .filter(|s| s.has(scope))
            .map(|s| s.environment.clone())
            .collect::<Vec<_>>()
    };
    if let Some(s) = drift {
        let lost: Vec<&str> = required
            .iter()
            .copied()
            .filter(|r| s.removed.iter().any(|x| x == r))
            .collect();
        let had = cx
            .own
            .iter()
            .rev()
            .find(|p| p.time < s.time && lost.iter().all(|r| p.has(r)));
        let elsewhere = others_have(lost[0]);
        out.push(Candidate {
            kind: FindingType::ScopeDrift,
            score: 95,
            cause: Some(s.event()),
            why: format!(
                "{} was in the snapshot of {} and is gone since the snapshot of {}{}.",
                and(&lost),
                had.map_or_else(|| "before".to_string(), |p| at(p.time)),
                at(s.time),
                if elsewhere.is_empty() {
                    String::new()
                } else {
                    format!("; {} still has it", elsewhere.join(", "))
                }
            ),
            short: format!("{} removed at {}", and(&lost), at(s.time)),
            remediation: format!(
                "Grant {} back to {client}; then mint a new token and {check}; then retry the failed calls.",
                and(&lost)
            ),
            incident_url: None,
        });
        return;
    }
    let Some(now) = cx.nearest() else {
        // No snapshot of this credential: the server's word alone.
        out.push(Candidate {
            kind: FindingType::InsufficientScope,
            score: 65,
            cause: None,
            why: format!(
                "The API says the calls need {}; no snapshot of the credential shows what it holds.",
                and(&required)
            ),
            short: format!("{} missing", and(&required)),
            remediation: format!(
                "Grant {} to {client}; then mint a new token and check its scope claim. Add a probe of the credential so drift is seen next time.",
                and(&required)
            ),
            incident_url: None,
        });
        return;
    };
    if now.privileges.is_none() {
        return;
    }
    let missing: Vec<&str> = required.iter().copied().filter(|r| !now.has(r)).collect();
    if missing.is_empty() {
        return;
    }
    // Held once, lost longer ago than the lookback: still drift, with less certainty.
    if let Some(p) = cx
        .own
        .iter()
        .rev()
        .find(|p| p.time < now.time && missing.iter().any(|r| p.has(r)))
    {
        out.push(Candidate {
            kind: FindingType::ScopeDrift,
            score: 65,
            cause: Some(now.event()),
            why: format!(
                "{} was in the snapshot of {} and is not in the snapshot of {}.",
                and(&missing),
                at(p.time),
                at(now.time)
            ),
            short: format!("{} lost since {}", and(&missing), at(p.time)),
            remediation: format!(
                "Grant {} back to {client}; then mint a new token and {check}.",
                and(&missing)
            ),
            incident_url: None,
        });
        return;
    }
    let elsewhere = others_have(missing[0]);
    if !elsewhere.is_empty() {
        out.push(Candidate {
            kind: FindingType::EnvironmentMismatch,
            score: 90,
            cause: Some(now.event()),
            why: format!(
                "{} is in {}'s token and not in {}'s: the snapshot of {} holds {}, and no snapshot of {} ever had it.",
                and(&missing),
                elsewhere.join(", "),
                g.key.environment,
                at(now.time),
                now.privileges.as_ref().map(|p| p.join(" ")).unwrap_or_default(),
                g.key.environment,
            ),
            short: format!(
                "{} missing in {}, {} has it",
                and(&missing),
                g.key.environment,
                elsewhere.join(", ")
            ),
            remediation: format!(
                "Grant {} to {client} in {} as {} has it; then mint a new token and {check}; then retry the failed calls.",
                and(&missing),
                g.key.environment,
                elsewhere.join(", ")
            ),
            incident_url: None,
        });
        return;
    }
    out.push(Candidate {
        kind: FindingType::InsufficientScope,
        score: 88,
        cause: Some(now.event()),
        why: format!(
            "The API says the calls need {}; no snapshot of the credential ever had it (the snapshot of {} holds {}).",
            and(&missing),
            at(now.time),
            now.privileges.as_ref().map(|p| p.join(" ")).unwrap_or_default()
        ),
        short: format!("{} never granted", and(&missing)),
        remediation: format!(
            "Grant {} to {client} (the operation needs it besides what the token has); then mint a new token and {check}; then retry the failed calls.",
            and(&missing)
        ),
        incident_url: None,
    });
}

fn latest_ok_by_env<'a>(snapshots: &[&'a Snapshot]) -> Vec<&'a Snapshot> {
    let mut out: Vec<&Snapshot> = Vec::new();
    for s in snapshots.iter().filter(|s| s.status == "ok") {
        match out.iter_mut().find(|o| o.environment == s.environment) {
            Some(o) if o.time <= s.time => *o = s,
            Some(_) => {}
            None => out.push(s),
        }
    }
    out.sort_by(|a, b| a.environment.cmp(&b.environment));
    out
}

/// The host of an audience that names one (`https://host:443/x` → `host`); identifiers
/// without a dot (`api://default`) name no host and are not compared.
fn audience_host(aud: &str) -> Option<&str> {
    let rest = aud.split_once("://").map_or(aud, |(_, r)| r);
    let host = rest.split(['/', ':']).next().unwrap_or(rest);
    host.contains('.').then_some(host)
}

fn audience(cx: &Context, out: &mut Vec<Candidate>, score: u8) {
    let Some(service) = cx.group.most(|d| d.api_service.as_deref()) else {
        return;
    };
    let service = service.split(':').next().unwrap_or(service);
    let Some(s) = cx
        .own
        .iter()
        .rev()
        .find(|s| s.time <= cx.group.last && s.status == "ok" && !s.audience.is_empty())
    else {
        return;
    };
    let hosts: Vec<&str> = s.audience.iter().filter_map(|a| audience_host(a)).collect();
    if hosts.is_empty() || hosts.iter().any(|h| h.eq_ignore_ascii_case(service)) {
        return;
    }
    out.push(Candidate {
        kind: FindingType::AudienceMismatch,
        score,
        cause: Some(s.event()),
        why: format!(
            "The token of the snapshot of {} is for {} (aud), not {service}.",
            at(s.time),
            s.audience.join(" ")
        ),
        short: format!("token audience {} is not {service}", s.audience.join(" ")),
        remediation: format!(
            "Request the token for {service} (the audience or resource parameter of the token request); then mint a new token and {}.",
            cx.check_hint()
        ),
        incident_url: None,
    });
}

fn identity(cx: &Context, out: &mut Vec<Candidate>) {
    let Some(name) = &cx.group.key.credential else {
        return;
    };
    let drift = cx
        .evidence
        .drift
        .get(&(name.clone(), cx.group.key.environment.clone()));
    let Some(c) = drift.into_iter().flatten().rev().find(|c| {
        (c.action == "unexpected_identity" || c.action == "identity_changed")
            && c.time >= cx.since
            && c.time <= cx.group.last
    }) else {
        return;
    };
    let details = c.details.clone().unwrap_or_default();
    out.push(Candidate {
        kind: FindingType::IdentityMismatch,
        score: 85,
        cause: Some(c.event()),
        why: format!(
            "The probe of {} saw the calls made as another identity ({}: {details}).",
            at(c.time),
            c.action
        ),
        short: format!("caller identity is not the expected one ({details})"),
        remediation: format!(
            "Pin the credentials the SDK uses (environment variables, profile, and instance or workload role take precedence in that order) so it calls as the expected identity; then {}.",
            cx.check_hint()
        ),
        incident_url: None,
    });
}

fn token_expired(cx: &Context, out: &mut Vec<Candidate>) {
    let g = cx.group;
    let s = cx
        .own
        .iter()
        .rev()
        .find(|s| s.time <= g.first)
        .or_else(|| cx.own.iter().find(|s| s.time <= g.last))
        .copied();
    if let Some(s) = s {
        let expired_at = s.expires_at.filter(|e| *e <= g.first);
        if s.status == "expired" || expired_at.is_some() {
            // An old snapshot says less: the token may have been renewed since.
            let score = if s.time >= cx.since { 92 } else { 60 };
            let since = expired_at.map_or_else(
                || format!("the snapshot of {} found it expired", at(s.time)),
                |e| {
                    format!(
                        "it expired at {} ({} before the first denial)",
                        at(e),
                        span(g.first - e)
                    )
                },
            );
            out.push(Candidate {
                kind: FindingType::TokenExpired,
                score,
                cause: Some(s.event()),
                why: format!(
                    "The token the snapshot of {} saw was expired at the first denial: {since}.",
                    at(s.time)
                ),
                short: format!(
                    "token expired{}",
                    expired_at.map(|e| format!(" at {}", at(e))).unwrap_or_default()
                ),
                remediation: format!(
                    "Mint a new token (refresh it, or run the client-credentials grant again), and make the integration renew tokens before exp; then {}.",
                    cx.check_hint()
                ),
                incident_url: None,
            });
            return;
        }
    }
    if g.says("expired") {
        out.push(Candidate {
            kind: FindingType::TokenExpired,
            score: 60,
            cause: None,
            why: "The API's answers say the token expired; no snapshot shows its expiry.".into(),
            short: "the API says the token expired".into(),
            remediation: "Mint a new token and make the integration renew tokens before exp; add a probe of the credential to see expiry coming.".into(),
            incident_url: None,
        });
    }
}

const REFUSED_STATUSES: &[&str] = &[
    "invalid_client",
    "inactive",
    "revoked",
    "unauthorized_client",
    "invalid_grant",
];

fn credential_revoked(cx: &Context, out: &mut Vec<Candidate>) {
    let g = cx.group;
    // A probe that worked and then was refused.
    if let Some(s) = cx.own.iter().find(|s| {
        s.time >= cx.since
            && s.time <= g.last
            && REFUSED_STATUSES.contains(&s.status.as_str())
            && cx.own.iter().any(|p| p.time < s.time && p.status == "ok")
    }) {
        out.push(Candidate {
            kind: FindingType::CredentialRevoked,
            score: 90,
            cause: Some(s.event()),
            why: format!(
                "The probe of {} was refused with {} after working before.",
                at(s.time),
                s.status
            ),
            short: format!("probe refused with {} since {}", s.status, at(s.time)),
            remediation: format!(
                "Find out who rotated or revoked the credential; put the current secret into the integration (or restore the old one); then mint a new token and {}.",
                cx.check_hint()
            ),
            incident_url: None,
        });
        return;
    }
    let mut best: Option<(u8, &Change)> = None;
    for c in cx.changes(g.first) {
        let score = match cx.names(c) {
            Named::Ours => 87,
            Named::Other => continue,
            Named::Nobody if revoking(&c.action) => 45,
            Named::Nobody => continue,
        };
        if best.is_none_or(|(b, _)| score > b) {
            best = Some((score, c));
        }
    }
    if let Some((score, c)) = best {
        let by = c.actor_user.as_deref().unwrap_or("someone");
        out.push(Candidate {
            kind: FindingType::CredentialRevoked,
            score,
            cause: Some(c.event()),
            why: format!(
                "{by} did {} on {} at {}, {} before the first denial.",
                c.action,
                c.target.as_deref().unwrap_or("the credential"),
                at(c.time),
                span(g.first - c.time)
            ),
            short: format!("{} by {by} at {}", c.action, at(c.time)),
            remediation: format!(
                "Put the credential's current secret or key into the integration (it changed at {}), or ask {by} to restore it; then mint a new token and {}.",
                at(c.time),
                cx.check_hint()
            ),
            incident_url: None,
        });
    }
}

fn permission_change(cx: &Context, out: &mut Vec<Candidate>) {
    let g = cx.group;
    let mut best: Option<(u8, &Change)> = None;
    for c in cx.changes(g.first) {
        if !about_access(c) {
            continue;
        }
        let score = match cx.names(c) {
            Named::Ours => 80,
            Named::Nobody => 40,
            Named::Other => continue,
        };
        if best.is_none_or(|(b, _)| score > b) {
            best = Some((score, c));
        }
    }
    if let Some((score, c)) = best {
        let by = c.actor_user.as_deref().unwrap_or("someone");
        out.push(Candidate {
            kind: FindingType::PermissionChange,
            score,
            cause: Some(c.event()),
            why: format!(
                "{by} did {} on {} at {}, {} before the first denial{}.",
                c.action,
                c.target.as_deref().unwrap_or("its target"),
                at(c.time),
                span(g.first - c.time),
                c.details
                    .as_deref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            ),
            short: format!("{} by {by} at {}", c.action, at(c.time)),
            remediation: format!(
                "Review {} by {by} at {}: restore the role, permission or policy the integration needs, or grant it explicitly; then mint a new token and {}.",
                c.action,
                at(c.time),
                cx.check_hint()
            ),
            incident_url: None,
        });
    }
}

fn clock_skew(cx: &Context, out: &mut Vec<Candidate>) {
    let g = cx.group;
    let limit = i64::try_from(cx.settings.skew.as_millis()).unwrap_or(i64::MAX);
    for s in cx
        .own
        .iter()
        .rev()
        .filter(|s| s.time >= cx.since && s.time <= g.last)
    {
        let skew = s.server_skew_ms.filter(|k| k.abs() >= limit);
        let early = [("nbf", s.not_before), ("iat", s.issued_at)]
            .into_iter()
            .find_map(|(claim, t)| t.filter(|t| *t > s.time + limit).map(|t| (claim, t)));
        let why = match (skew, early) {
            (Some(k), _) => format!(
                "The snapshot of {} measured the server's clock {} {} this host's.",
                at(s.time),
                span(k),
                if k > 0 { "ahead of" } else { "behind" }
            ),
            (None, Some((claim, t))) => format!(
                "The token of the snapshot of {} has {claim} {}, {} in the future of when it was probed: the issuer's clock and this host's disagree.",
                at(s.time),
                at(t),
                span(t - s.time)
            ),
            (None, None) => continue,
        };
        out.push(Candidate {
            kind: FindingType::ClockSkew,
            score: 86,
            cause: Some(s.event()),
            why,
            short: "clocks disagree".into(),
            remediation: "Synchronize the clocks (chrony or systemd-timesyncd against NTP) on the integration's hosts; tokens used before their nbf or iat are refused; then retry.".into(),
            incident_url: None,
        });
        return;
    }
}

fn rate_limited(cx: &Context, out: &mut Vec<Candidate>) {
    let g = cx.group;
    let retry = g.details.iter().filter_map(|(d, _)| d.retry_after_s).max();
    let limit = g.most(|d| d.ratelimit_limit.as_ref());
    let cycling = g.count_503 > 0;
    let why = format!(
        "The API answered {}{}{}.",
        plural(g.count, "429", "429s"),
        if cycling {
            format!(
                " with {} interleaved: a per-second cap and load shedding, with the client retrying in a tight loop",
                plural(g.count_503, "503", "503s")
            )
        } else {
            String::new()
        },
        limit
            .map(|l| format!(" (advertised limit {l})"))
            .unwrap_or_default()
    );
    out.push(Candidate {
        kind: FindingType::RateLimited,
        score: 80,
        cause: g.failures.first().map(|f| f.event()),
        why,
        short: if cycling {
            "429 and 503 cycling: retries too tight".into()
        } else {
            "rate limit exceeded".into()
        },
        remediation: format!(
            "Back off exponentially with full jitter instead of retrying tighter{}; {}spread the calls over time or ask the vendor for a higher limit.",
            retry
                .map(|r| format!(", and honor Retry-After (up to {r} s here)"))
                .unwrap_or_else(|| ", and honor Retry-After".into()),
            if cycling {
                "lower the client's concurrency (the 503s are the per-second cap shedding load); "
            } else {
                ""
            }
        ),
        incident_url: None,
    });
}

fn incident(cx: &Context, out: &mut Vec<Candidate>) {
    let g = cx.group;
    let mut best: Option<(u8, &Incident)> = None;
    for i in cx
        .evidence
        .incidents
        .get(&g.key.vendor)
        .into_iter()
        .flatten()
    {
        let start = i.started.unwrap_or(i.time);
        // Not resolved (or its resolution not collected yet): for a lookback after its start.
        let end = i
            .resolved
            .unwrap_or_else(|| start.saturating_add(g.first - cx.since));
        if g.last < start - INCIDENT_LEAD_MS || g.first > end || !relevant(i, g.class()) {
            continue;
        }
        let score = if (g.first - start).abs() <= INCIDENT_CLOSE_MS {
            93
        } else {
            55
        };
        if best.is_none_or(|(b, _)| score > b) {
            best = Some((score, i));
        }
    }
    let Some((score, i)) = best else { return };
    let start = i.started.unwrap_or(i.time);
    let lag = g.first - start;
    out.push(Candidate {
        kind: FindingType::VendorIncident,
        score,
        cause: Some(EventRef {
            uid: i.uid,
            dataset: crate::model::Dataset::Incidents,
        }),
        why: format!(
            "{} reported \"{}\"{} from {}{}; the failures started {} {} it.",
            g.key.vendor,
            i.name,
            if i.components.is_empty() {
                String::new()
            } else {
                format!(" ({})", i.components.join(", "))
            },
            at(start),
            i.resolved
                .map(|r| format!(" to {}", at(r)))
                .unwrap_or_else(|| ", not resolved".into()),
            span(lag),
            if lag >= 0 { "after" } else { "before" }
        ),
        short: format!("vendor incident \"{}\" from {}", i.name, at(start)),
        remediation: format!(
            "Stop debugging the integration: follow the incident{}; retry or redeliver the failed calls once it is resolved, and check the failures stop.",
            i.url.as_deref().map(|u| format!(" at {u}")).unwrap_or_default()
        ),
        incident_url: i.url.clone(),
    });
}

/// Whether an incident's components can be what failed: webhooks for deliveries, the API for
/// calls. An incident naming no component can be anything.
fn relevant(i: &Incident, class: Class) -> bool {
    if i.components.is_empty() {
        return true;
    }
    let word = if class == Class::Webhook {
        "webhook"
    } else {
        "api"
    };
    i.components
        .iter()
        .any(|c| c.to_ascii_lowercase().contains(word))
}

fn webhook(cx: &Context, out: &mut Vec<Candidate>) {
    let g = cx.group;
    let endpoint = g.most(|d| d.webhook_uid.as_deref());
    let url = g.most(|d| d.endpoint_url.as_deref());
    let host = g.most(|d| d.api_service.as_deref());
    let about_it = |c: &Change| {
        let texts = [c.target.as_deref(), c.details.as_deref()];
        let mentions = |n: Option<&str>| {
            n.is_some_and(|n| !n.is_empty() && texts.iter().flatten().any(|t| t.contains(n)))
        };
        match (endpoint, url.or(host)) {
            // The vendor does not say which endpoint (Stripe's events): any hook change.
            (None, None) => c.action.to_ascii_lowercase().contains("hook"),
            _ => mentions(endpoint) || mentions(url) || mentions(host),
        }
    };
    let lookback = g.first - cx.since;
    // A change during the failures is not their cause; it is told after.
    let before = cx.changes(g.first).find(|c| about_it(c));
    // What the vendor did after (disabling the endpoint) is evidence, not the cause.
    let after = cx
        .changes_between(g.first + 1, g.last.saturating_add(lookback))
        .into_iter()
        .rev()
        .find(|c| about_it(c));
    let named_url = before.or(after).and_then(|c| {
        c.details.as_deref()?.split(' ').find_map(|w| {
            w.strip_prefix("url=")
                .or_else(|| w.strip_prefix("config.url="))
        })
    });
    let receiver = url
        .or(host)
        .or(named_url)
        .map(str::to_string)
        .or_else(|| endpoint.map(|e| format!("endpoint {e}")))
        .unwrap_or_else(|| "the webhook endpoint".into());
    let then = after.map(|c| {
        format!(
            " Then {} did {} at {}.",
            c.actor_user.as_deref().unwrap_or(g.key.vendor.as_str()),
            c.action,
            at(c.time)
        )
    });
    let (score, cause, why) = match before {
        Some(c) => (
            82,
            Some(c.event()),
            format!(
                "The failures cluster on {receiver}; {} did {} at {}{}.",
                c.actor_user.as_deref().unwrap_or("someone"),
                c.action,
                at(c.time),
                if c.time <= g.first {
                    format!(", {} before the first failure", span(g.first - c.time))
                } else {
                    String::new()
                }
            ),
        ),
        None => (
            70,
            None,
            format!("The failures cluster on {receiver}; nothing staged changed it before."),
        ),
    };
    out.push(Candidate {
        kind: FindingType::WebhookEndpointFailing,
        score,
        cause,
        why: format!("{why}{}", then.unwrap_or_default()),
        short: format!("receiver {receiver} failing"),
        remediation: format!(
            "Check the receiver {receiver}: that it is up, answers within the vendor's timeout, and its TLS and DNS resolve{}; once it answers 2xx, redeliver the failed events (re-enable the endpoint if the vendor disabled it).",
            if before.is_some() {
                "; compare the endpoint's configuration with before the change"
            } else {
                ""
            }
        ),
        incident_url: None,
    });
}

fn unexplained(cx: &Context) -> Candidate {
    let hint = match cx.group.class() {
        Class::Forbidden | Class::Unauthorized if cx.own.is_empty() => {
            "add a probe of the credential ([credentials.probe]) so its scopes and expiry are snapshotted"
        }
        _ => "add the vendor's audit log and status page as sources",
    };
    Candidate {
        kind: FindingType::Unexplained,
        score: 0,
        cause: None,
        why: "No snapshot, change, incident or rate limit staged around them explains them.".into(),
        short: "no cause found".into(),
        remediation: format!(
            "Read the error messages and request ids of the failures; {hint}, so the next ones are explained."
        ),
        incident_url: None,
    }
}

/// What the hourly request counts say of the operation: "never worked" or "stopped
/// working", and whether other methods on it succeed.
fn counts_note(cx: &Context) -> Option<String> {
    let g = cx.group;
    if !matches!(g.class(), Class::Forbidden | Class::Unauthorized) {
        return None;
    }
    let service = g.most(|d| d.api_service.as_deref())?;
    let operation = g.most(|d| d.api_operation.as_deref())?;
    let method = g.most(|d| d.method.as_deref())?;
    let ops = cx.evidence.counts.get(service)?;
    let from = cx.since - 3_600_000;
    let to = g.last + 3_600_000;
    // The same resource: the operation itself, its collection (`/items` of `/items/{id}`)
    // and its items (a range of the sorted operations).
    let parent = operation
        .rsplit_once('/')
        .filter(|(_, last)| last.starts_with('{'))
        .map(|(p, _)| p);
    let items = format!("{operation}/{{");
    let related = std::iter::once(operation)
        .chain(parent)
        .filter_map(|op| ops.get_key_value(op))
        .chain(
            ops.range::<str, _>((
                std::ops::Bound::Included(items.as_str()),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(op, _)| op.starts_with(&items)),
        );
    let (mut same_before, mut others) = (0i64, std::collections::BTreeMap::<&str, i64>::new());
    for (op, counts) in related {
        let lo = counts.partition_point(|c| c.hour < from);
        for c in counts[lo..].iter().take_while(|c| c.hour <= to) {
            if c.method == method && op == operation && c.hour + 3_600_000 <= g.first {
                same_before += c.count;
            } else if c.method != method {
                *others.entry(c.method.as_str()).or_default() += c.count;
            }
        }
    }
    let mut notes = Vec::new();
    let lookback = match g.first - cx.since {
        ms if ms % 3_600_000 == 0 => format!("{} h", ms / 3_600_000),
        ms => span(ms),
    };
    if same_before > 0 {
        notes.push(format!(
            "{method} calls to it worked before: {} in the {lookback} before (stopped working).",
            plural(same_before as u64, "success", "successes")
        ));
    } else {
        notes.push(format!(
            "No {method} call to it succeeded in the {lookback} before (never worked)."
        ));
    }
    if !others.is_empty() {
        let list: Vec<String> = others.iter().map(|(m, n)| format!("{m} {n}")).collect();
        notes.push(format!(
            "Other methods on the same resource succeed meanwhile ({} 2xx).",
            list.join(", ")
        ));
    }
    Some(notes.join(" "))
}
