//! Attribution of rows to credentials through the bindings (DESIGN §3): correlation links
//! failures to causes only through these, never by comparing vendor names.

use crate::config::Credential;
use crate::sources::host_matches;

/// What a row says about the credential that made the call.
#[derive(Debug, Default, Clone, Copy)]
pub struct Claim<'a> {
    pub vendor: &'a str,
    pub tenant: &'a str,
    pub client_id: Option<&'a str>,
    /// Something the integration logs that names its credential (a key id, a label).
    pub hint: Option<&'a str>,
    pub host: Option<&'a str>,
}

pub struct Bindings {
    credentials: Vec<Credential>,
}

impl Bindings {
    pub fn new(credentials: &[Credential]) -> Self {
        Bindings {
            credentials: credentials.to_vec(),
        }
    }

    /// The credential a row belongs to: by client id, then by hint, then by host when only
    /// one credential is bound to it. Only credentials bound to the row's (vendor, tenant)
    /// can claim it.
    pub fn claim(&self, claim: &Claim<'_>) -> Option<&Credential> {
        self.claim_index(claim).and_then(|i| self.get(i))
    }

    /// The credential a source calls its vendor with, by name and environment.
    pub fn named(&self, name: &str, environment: &str) -> Option<&Credential> {
        self.credentials
            .iter()
            .find(|c| c.name == name && c.environment == environment)
    }

    /// The credential whose join key a vendor's audit record names (GitHub's
    /// `hashed_token`), among those bound to its (vendor, tenant).
    pub fn claim_uid(&self, vendor: &str, tenant: &str, uid: &str) -> Option<&Credential> {
        self.credentials.iter().find(|c| {
            c.used_by
                .iter()
                .any(|b| b.vendor == vendor && b.tenant == tenant)
                && c.credential_uid().as_deref() == Some(uid)
        })
    }

    pub fn get(&self, index: usize) -> Option<&Credential> {
        self.credentials.get(index)
    }

    /// Like `claim`, the credential's index, for callers that remember the answer.
    pub fn claim_index(&self, claim: &Claim<'_>) -> Option<usize> {
        let bound: Vec<(usize, &Credential)> = self
            .credentials
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                c.used_by
                    .iter()
                    .any(|b| b.vendor == claim.vendor && b.tenant == claim.tenant)
            })
            .collect();
        if let Some(id) = claim.client_id
            && let Some((i, _)) = bound.iter().find(|(_, c)| {
                c.client_id.as_deref() == Some(id) || c.access_key_id.as_deref() == Some(id)
            })
        {
            return Some(*i);
        }
        if let Some(hint) = claim.hint
            && let Some((i, _)) = bound
                .iter()
                .find(|(_, c)| c.name == hint || c.hints.iter().any(|h| h == hint))
        {
            return Some(*i);
        }
        let host = claim.host?;
        let mut by_host = bound.iter().filter(|(_, c)| {
            c.used_by.iter().any(|b| {
                b.vendor == claim.vendor
                    && b.tenant == claim.tenant
                    && b.hosts.iter().any(|h| host_matches(h, host))
            })
        });
        match (by_host.next(), by_host.next()) {
            (Some((i, _)), None) => Some(*i),
            // Two credentials on one host: the host alone cannot say which made the call.
            _ => None,
        }
    }
}
