//! Correlation (DESIGN §6): failures (denials, webhook failures, 429 bursts) are grouped by
//! who failed, how and where, with a gap; each group gets every candidate cause scored from
//! the staged evidence (snapshots, changes, incidents, request counts), and the best becomes
//! its finding. Drift that nothing has failed on yet becomes a warning.
//!
//! Feed it every record of the period with [`Correlator::add`] (any dataset; what it does not
//! use is ignored), then [`Correlator::finish`]. The result depends only on the records, never
//! on the order they came in.

mod causes;
mod evidence;
mod groups;
pub mod text;

use std::time::Duration;

use uuid::Uuid;

use crate::model::{Dataset, Record};

pub use evidence::Evidence;

#[derive(Debug, Clone)]
pub struct Settings {
    /// Failures of one group further apart than this are two findings.
    pub gap: Duration,
    /// How long before the first failure an admin change can be its cause.
    pub change_lookback: Duration,
    /// A server clock further off than this, or a token valid this far in the future of a
    /// failing call, is skew.
    pub skew: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            gap: Duration::from_secs(30 * 60),
            change_lookback: Duration::from_secs(24 * 3600),
            skew: Duration::from_secs(60),
        }
    }
}

/// DESIGN §6's finding types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FindingType {
    ScopeDrift,
    InsufficientScope,
    EnvironmentMismatch,
    AudienceMismatch,
    IdentityMismatch,
    TokenExpired,
    CredentialRevoked,
    PermissionChange,
    ClockSkew,
    RateLimited,
    VendorIncident,
    WebhookEndpointFailing,
    Unexplained,
}

impl FindingType {
    pub const ALL: [FindingType; 13] = [
        FindingType::ScopeDrift,
        FindingType::InsufficientScope,
        FindingType::EnvironmentMismatch,
        FindingType::AudienceMismatch,
        FindingType::IdentityMismatch,
        FindingType::TokenExpired,
        FindingType::CredentialRevoked,
        FindingType::PermissionChange,
        FindingType::ClockSkew,
        FindingType::RateLimited,
        FindingType::VendorIncident,
        FindingType::WebhookEndpointFailing,
        FindingType::Unexplained,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FindingType::ScopeDrift => "scope_drift",
            FindingType::InsufficientScope => "insufficient_scope",
            FindingType::EnvironmentMismatch => "environment_mismatch",
            FindingType::AudienceMismatch => "audience_mismatch",
            FindingType::IdentityMismatch => "identity_mismatch",
            FindingType::TokenExpired => "token_expired",
            FindingType::CredentialRevoked => "credential_revoked",
            FindingType::PermissionChange => "permission_change",
            FindingType::ClockSkew => "clock_skew",
            FindingType::RateLimited => "rate_limited",
            FindingType::VendorIncident => "vendor_incident",
            FindingType::WebhookEndpointFailing => "webhook_endpoint_failing",
            FindingType::Unexplained => "unexplained",
        }
    }

    pub fn from_name(name: &str) -> Option<FindingType> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Confidence {
    Low,
    Medium,
    High,
}

impl Confidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Low => "low",
            Confidence::Medium => "medium",
            Confidence::High => "high",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Drift seen before anything failed on it.
    Warning,
    /// Failures, explained or not.
    Failure,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Failure => "failure",
        }
    }
}

/// A record a finding points at.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct EventRef {
    pub uid: Uuid,
    pub dataset: Dataset,
}

/// One explained group of failures, or one warning.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// What the group is (binding, error class, operation), for ids: stable across runs.
    pub key: String,
    pub vendor: String,
    pub tenant: String,
    pub environment: String,
    /// The credential's name, when one is bound.
    pub credential: Option<String>,
    pub finding_type: FindingType,
    pub severity: Severity,
    pub confidence: Confidence,
    pub title: String,
    pub explanation: String,
    pub remediation: String,
    /// First and last failure (for a warning: the snapshot that saw the drift).
    pub first_ms: i64,
    pub last_ms: i64,
    /// Failures, counting each 429 of a burst (for a warning: 0).
    pub count: u64,
    /// The failures, sorted by time (for a warning: the snapshot and its drift rows).
    pub related: Vec<EventRef>,
    /// The record that is the cause: a snapshot, a change, an incident, a burst.
    pub cause: Option<EventRef>,
    /// Every other candidate that scored, best first: "type (confidence): why".
    pub alternatives: Vec<String>,
    pub actor_app: Option<String>,
    pub credential_uid: Option<String>,
    pub incident_url: Option<String>,
}

/// Collects the evidence, then explains.
pub struct Correlator {
    settings: Settings,
    evidence: Evidence,
}

impl Correlator {
    pub fn new(settings: Settings) -> Correlator {
        Correlator {
            settings,
            evidence: Evidence::default(),
        }
    }

    /// Takes in one record of any dataset.
    pub fn add(&mut self, record: &Record) {
        self.evidence.add(record);
    }

    /// Every finding, most severe and most certain first.
    pub fn finish(self) -> Vec<Finding> {
        let Correlator { settings, evidence } = self;
        let evidence = evidence.index();
        let groups = groups::split(&evidence, &settings);
        let mut findings = Vec::new();
        // Failures that pause and resume with the same cause (a POST refused every few hours
        // for a week) are one finding, not one per burst of activity. Each group is explained
        // once; only a run of joined groups is explained again, as a whole.
        let mut explained = groups
            .iter()
            .map(|g| causes::explain(g, &evidence, &settings));
        let mut next = explained.next();
        let mut i = 0;
        while let Some(first) = next.take() {
            let mut j = i + 1;
            next = explained.next();
            while let Some(f) = &next {
                if groups[j].key != groups[i].key
                    || (f.finding_type, f.cause) != (first.finding_type, first.cause)
                {
                    break;
                }
                j += 1;
                next = explained.next();
            }
            if j == i + 1 {
                findings.push(first);
            } else {
                let whole = groups::join(&evidence, &groups[i], &groups[j - 1]);
                findings.push(causes::explain(&whole, &evidence, &settings));
            }
            i = j;
        }
        findings.extend(causes::warnings(&evidence, &findings));
        findings.sort_by(|a, b| {
            (
                b.severity,
                b.confidence,
                b.related.len(),
                a.first_ms,
                &a.key,
            )
                .cmp(&(
                    a.severity,
                    a.confidence,
                    a.related.len(),
                    b.first_ms,
                    &b.key,
                ))
        });
        findings
    }
}
