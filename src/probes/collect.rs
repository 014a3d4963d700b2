//! The snapshot step of a run (DESIGN §2.2): probes every credential that has a probe, stages
//! a `token_snapshots` row for each and a `changes` row (`source = scopetrail.drift`) for each
//! drift. It is collected like a source, under the name `scopetrail.snapshot`: same lease,
//! staging and checkpoint, whose cursor keeps each credential's last snapshot and last good
//! one, and the environment mismatches already reported.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Context, Observation, ProbeKind, jwt::KeyCache, probe};
use crate::analysis::drift::{self, Drift, Limits};
use crate::config::Credential;
use crate::http::exchange::Own;
use crate::http::fetch::Target;
use crate::model::uid::Origin;
use crate::model::{Change, Dataset, Header, Record, TokenSnapshot};
use crate::sources::Source;
use crate::staging::SourceSession;

/// The staging source of snapshots and drift, and the `source` of snapshot rows.
pub const SOURCE: &str = "scopetrail.snapshot";
/// The `source` of drift rows.
pub const DRIFT: &str = "scopetrail.drift";

/// One credential's result, for the `snapshot` command's table.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub credential: String,
    pub environment: String,
    pub observation: Observation,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub drift: Vec<Drift>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Cursor {
    /// By `name/environment`.
    #[serde(default)]
    credentials: BTreeMap<String, Seen>,
    /// The mismatch last reported for a logical name and pair of environments.
    #[serde(default)]
    mismatches: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Seen {
    last: Observation,
    last_ok: Option<Observation>,
}

pub struct Snapshots {
    pub credentials: Vec<Credential>,
    pub engine: Arc<crate::http::Engine>,
    pub base_dir: PathBuf,
    /// Only this credential (`scopetrail snapshot --credential`).
    pub only: Option<String>,
    /// Filled as the collection goes.
    pub outcomes: Arc<Mutex<Vec<Outcome>>>,
}

fn key(c: &Credential) -> String {
    format!("{}/{}", c.name, c.environment)
}

#[async_trait]
impl Source for Snapshots {
    async fn collect(&mut self, session: &mut SourceSession<'_>) -> Result<()> {
        let now = session.now();
        let mut cursor: Cursor = match session.cursor() {
            None => Cursor::default(),
            Some(v) => serde_json::from_value(v.clone()).unwrap_or_else(|e| {
                session.malformed(
                    "snapshot cursor",
                    &format!("unreadable ({e}); drift starts again from this snapshot"),
                );
                Cursor::default()
            }),
        };
        let jwks = KeyCache::default();
        let mut records = Vec::new();
        let probed: Vec<&Credential> = self
            .credentials
            .iter()
            .filter(|c| c.probe.is_some())
            .filter(|c| self.only.as_ref().is_none_or(|n| *n == c.name))
            .collect();
        for credential in &probed {
            let Some(spec) = &credential.probe else {
                continue;
            };
            if session.cancelled() {
                break;
            }
            let (target, own) = (own_target(credential), Mutex::new(Vec::new()));
            let ctx = Context {
                engine: &self.engine,
                base_dir: &self.base_dir,
                now,
                jwks: &jwks,
                own: Own {
                    target: &target,
                    rows: &own,
                },
            };
            let obs = probe(spec, credential, &ctx).await;
            records.extend(own.into_inner().unwrap_or_else(|p| p.into_inner()));
            tracing::info!(credential = %credential.name, environment = %credential.environment, status = %obs.status, "snapshot");
            let seen = cursor.credentials.get(&key(credential));
            let last_ok =
                seen.and_then(|s| s.last_ok.as_ref().or(Some(&s.last).filter(|l| l.ok())));
            let limits = Limits {
                // A client-credentials token is minted fresh at every probe: its short life
                // is normal, not a warning.
                expiry_horizon_ms: match &spec.kind {
                    ProbeKind::Oauth2(_) => None,
                    _ => Some(spec.expiry_horizon.ms()),
                },
                max_skew_ms: spec.max_skew.ms(),
                expected_identity: match &spec.kind {
                    ProbeKind::Aws(a) => a.expected_identity(),
                    _ => None,
                },
            };
            let drifts = drift::drift(seen.map(|s| &s.last), last_ok, &obs, &limits);
            let (added, removed) = drift::privilege_changes(last_ok, &obs);
            let rows = Rows {
                credential,
                now: now.timestamp_millis(),
            };
            records.push(rows.snapshot(&obs, &added, &removed));
            records.extend(drifts.iter().map(|d| rows.drift(d)));
            // The last good snapshot keeps the last privileges known: a probe that could
            // not see them (a scope header gone for a while) must not hide a removal later.
            let last_ok = match (obs.ok(), last_ok) {
                (true, Some(before)) if obs.privileges.is_none() => Some(Observation {
                    privileges: before.privileges.clone(),
                    ..obs.clone()
                }),
                (true, _) => Some(obs.clone()),
                (false, before) => before.cloned(),
            };
            self.outcomes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(Outcome {
                    credential: credential.name.clone(),
                    environment: credential.environment.clone(),
                    observation: obs.clone(),
                    added,
                    removed,
                    drift: drifts,
                });
            cursor
                .credentials
                .insert(key(credential), Seen { last: obs, last_ok });
        }
        for (credential, d) in self.environment_mismatches(&mut cursor) {
            records.push(
                Rows {
                    credential,
                    now: now.timestamp_millis(),
                }
                .drift(&d),
            );
            let mut outcomes = self.outcomes.lock().unwrap_or_else(|p| p.into_inner());
            let mine = |o: &&mut Outcome| {
                o.credential == credential.name && o.environment == credential.environment
            };
            if let Some(o) = outcomes.iter_mut().find(mine) {
                o.drift.push(d);
            }
        }
        session.count("credentials probed", probed.len() as u64);
        // Credentials removed from the configuration are forgotten.
        let probed = self.credentials.iter().filter(|c| c.probe.is_some());
        let keys: std::collections::BTreeSet<String> = probed.map(key).collect();
        cursor.credentials.retain(|k, _| keys.contains(k));
        session.save(records, serde_json::to_value(&cursor)?).await
    }
}

impl Snapshots {
    /// Credentials with one name in several environments, compared pairwise on their last
    /// good snapshots. A mismatch is reported when it appears or changes.
    fn environment_mismatches(&self, cursor: &mut Cursor) -> Vec<(&Credential, Drift)> {
        let mut by_name: BTreeMap<&str, Vec<&Credential>> = BTreeMap::new();
        for c in self.credentials.iter().filter(|c| c.probe.is_some()) {
            by_name.entry(&c.name).or_default().push(c);
        }
        let mut out = Vec::new();
        // Pairs no longer configured are forgotten: were they added back, their mismatch
        // would be new again.
        let pairs: std::collections::BTreeSet<String> = by_name
            .values()
            .flat_map(|g| {
                g.iter()
                    .enumerate()
                    .flat_map(move |(i, a)| g[i + 1..].iter().map(move |b| pair_key(a, b)))
            })
            .collect();
        cursor.mismatches.retain(|k, _| pairs.contains(k));
        for group in by_name.values().filter(|g| g.len() > 1) {
            for (i, a) in group.iter().enumerate() {
                for b in &group[i + 1..] {
                    let last = |c: &Credential| {
                        cursor
                            .credentials
                            .get(&key(c))
                            .and_then(|s| s.last_ok.as_ref())
                    };
                    let pair = pair_key(a, b);
                    let found = match (last(a), last(b)) {
                        (Some(x), Some(y)) => {
                            drift::environment_mismatch((&a.environment, x), (&b.environment, y))
                        }
                        _ => None,
                    };
                    match found {
                        Some(details) if cursor.mismatches.get(&pair) != Some(&details) => {
                            for c in [*a, *b] {
                                out.push((
                                    c,
                                    Drift {
                                        action: "environment_mismatch",
                                        details: details.clone(),
                                    },
                                ));
                            }
                            cursor.mismatches.insert(pair, details);
                        }
                        Some(_) => {}
                        None => {
                            cursor.mismatches.remove(&pair);
                        }
                    }
                }
            }
        }
        out
    }
}

/// Whom a probe's own calls are for: the rows of its 429s.
fn own_target(c: &Credential) -> Target {
    let (vendor, tenant) = c
        .used_by
        .first()
        .map_or((String::new(), String::new()), |b| {
            (b.vendor.clone(), b.tenant.clone())
        });
    Target {
        vendor,
        tenant,
        environment: c.environment.clone(),
        credential: Some(c.name.clone()),
        credential_uid: c.credential_uid(),
    }
}

/// `name/env1/env2`, the environments sorted: reordering the configuration changes nothing.
fn pair_key(a: &Credential, b: &Credential) -> String {
    let (x, y) = if a.environment <= b.environment {
        (a, b)
    } else {
        (b, a)
    };
    format!("{}/{}/{}", x.name, x.environment, y.environment)
}

/// The rows of one credential's snapshot.
struct Rows<'a> {
    credential: &'a Credential,
    now: i64,
}

impl Rows<'_> {
    fn header(&self, dataset: Dataset, source: &str, group: &str) -> Header {
        // A probed credential has at least one binding (`validate` says so): its rows are
        // filed under the (vendor, tenant) it is used against.
        let (vendor, tenant) = self
            .credential
            .used_by
            .first()
            .map_or(("", ""), |b| (b.vendor.as_str(), b.tenant.as_str()));
        let origin = Origin {
            dataset,
            vendor,
            tenant,
            environment: &self.credential.environment,
            source,
        };
        origin.header(
            self.now,
            origin.derived_uid(&format!("{}\u{1f}{group}", self.credential.name), self.now),
            None,
            Some(self.credential.name.clone()),
        )
    }

    fn snapshot(&self, o: &Observation, added: &[String], removed: &[String]) -> Record {
        let list = |s: &Option<std::collections::BTreeSet<String>>| {
            s.as_ref().map(|s| s.iter().cloned().collect())
        };
        Record::from(TokenSnapshot {
            head: self.header(Dataset::TokenSnapshots, SOURCE, "snapshot"),
            probe: Some(o.probe.clone()),
            status: Some(o.status.clone()),
            token_type: o.token_type.clone(),
            issuer: o.issuer.clone(),
            audience: o.audience.clone(),
            subject: o.subject.clone(),
            actor_app: o.actor_app.clone(),
            privileges: list(&o.privileges),
            privileges_requested: list(&o.requested),
            issued_at_dt: o.issued_at_ms,
            expires_at_dt: o.expires_at_ms,
            not_before_dt: o.not_before_ms,
            server_skew_ms: o.skew_ms,
            identity: o.identity.clone(),
            credential_uid: o.credential_uid.clone(),
            privileges_added: added.to_vec(),
            privileges_removed: removed.to_vec(),
            signature: o.signature.clone(),
        })
    }

    fn drift(&self, d: &Drift) -> Record {
        Record::from(Change {
            head: self.header(
                Dataset::Changes,
                DRIFT,
                &format!("{}\u{1f}{}", d.action, d.details),
            ),
            action: Some(d.action.to_string()),
            actor_user: None,
            target_type: Some("credential".into()),
            target: Some(format!(
                "{} ({})",
                self.credential.name, self.credential.environment
            )),
            details: Some(d.details.clone()),
        })
    }
}
