//! Sources: one module per vendor (and `http_log`). A source knows only what to read and how
//! an item maps to records; the engine (`staging`) owns cursors, dedup, staging and
//! checkpoints, so a source's whole job is one `collect()` that hands over pages.

pub mod feed;
pub mod github;
pub mod http_log;
pub mod okta;
pub mod statuspage;
pub mod stripe;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use async_trait::async_trait;
use toml::Spanned;
use toml::de::DeValue;

use crate::bindings::Bindings;
use crate::config::{Doc, Dur, Loc, Tenant};
use crate::model::Dataset;
use crate::staging::SourceSession;

#[async_trait]
pub trait Source: Send {
    /// Reads everything new since `session.cursor()` and hands it over with
    /// `session.save(records, cursor)`, page by page, the cursor saying where the next read
    /// starts once that page is staged.
    async fn collect(&mut self, session: &mut SourceSession<'_>) -> Result<()>;
}

/// How often a source is collected and how long its vendor keeps data (DESIGN §2.1).
#[derive(Debug, Clone)]
pub struct Cadence {
    pub collect_every: Dur,
    /// How long after a window's end its data may still arrive.
    pub lateness: Dur,
    /// How far back the first collection reads (capped at the retention).
    pub initial_lookback: Dur,
    /// How long the vendor keeps what this source reads; `validate` rejects a
    /// `collect_every` above half of it.
    pub retention: Option<Dur>,
    /// How far before its cursor the source reads again, to catch late events.
    pub rescan_overlap: Dur,
}

/// A configured source.
#[derive(Debug)]
pub struct SourceSpec {
    pub name: String,
    /// The tenant its rows belong to unless the source maps them elsewhere.
    pub tenant: String,
    pub cadence: Cadence,
    pub settings: SourceSettings,
    pub loc: Loc,
}

/// What a source's rows can be attributed to: (vendor, tenant) and, for logs mapped by host,
/// which hosts (`None`: any).
#[derive(Debug, Clone)]
pub struct Coverage {
    pub vendor: String,
    pub tenant: String,
    pub host: Option<String>,
}

impl Coverage {
    /// Every row of a (vendor, tenant): an API source's.
    pub fn all_of(vendor: &str, tenant: &str) -> Coverage {
        Coverage {
            vendor: vendor.into(),
            tenant: tenant.into(),
            host: None,
        }
    }

    pub fn covers(&self, vendor: &str, tenant: &str, host: Option<&str>) -> bool {
        self.vendor == vendor
            && self.tenant == tenant
            && match (&self.host, host) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(pattern), Some(host)) => host_matches(pattern, host),
            }
    }
}

/// `api.github.com` matches itself; `*.oraclecloud.com` matches any subdomain of it.
pub fn host_matches(pattern: &str, host: &str) -> bool {
    let host = host.trim_end_matches('.');
    match pattern.strip_prefix("*.") {
        Some(suffix) => {
            host.len() > suffix.len() + 1
                && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
                && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
        }
        None => pattern.eq_ignore_ascii_case(host),
    }
}

/// What a source needs from the configuration to run.
pub struct BuildContext<'a> {
    pub base_dir: &'a Path,
    pub tenants: &'a BTreeMap<String, Tenant>,
    pub bindings: Arc<Bindings>,
    /// The run's HTTP engine: client, budgets, deadline.
    pub engine: Arc<crate::http::Engine>,
}

impl BuildContext<'_> {
    /// The environment of a tenant (empty when it has none).
    pub fn environment(&self, tenant: &str) -> String {
        self.tenants
            .get(tenant)
            .map_or(String::new(), |t| t.environment.clone())
    }
}

/// A kind's own settings (the rest of its `[sources.NAME]` table), what the engine asks of
/// them, and the builder of the source a run collects.
pub trait SourceConfig: std::fmt::Debug + Send + Sync {
    /// The `source` column of its rows.
    fn kind(&self) -> &'static str;

    /// The datasets its rows can go to.
    fn datasets(&self) -> &'static [Dataset];

    /// How often it is collected unless configured (`None`: `[defaults] collect_every`).
    fn default_collect_every(&self) -> Option<Dur> {
        None
    }

    /// How long the vendor keeps what this source reads (`None`: not limited).
    fn default_retention(&self) -> Option<Dur> {
        None
    }

    /// How far before its mark a source reads again unless configured.
    fn default_rescan_overlap(&self) -> Dur {
        Dur(std::time::Duration::ZERO)
    }

    /// The least `rescan_overlap` that reads again every object that can still change, and
    /// why.
    fn least_rescan_overlap(&self) -> Option<(Dur, &'static str)> {
        None
    }

    /// Whether the source calls an API with its credential's token.
    fn needs_token(&self) -> bool {
        false
    }

    /// The credential a vendor source calls its API with, by name.
    fn credential(&self) -> Option<&Spanned<String>> {
        None
    }

    /// The tenants its rows can belong to.
    fn tenants(&self, default_tenant: &str) -> Vec<String> {
        vec![default_tenant.to_string()]
    }

    /// What its rows can be attributed to, for the bindings' check; none for sources whose
    /// rows concern no credential (status pages).
    fn coverage(&self, default_tenant: &str) -> Vec<Coverage>;

    fn build(&self, spec: &SourceSpec, ctx: &BuildContext<'_>) -> Result<Box<dyn Source>>;
}

pub type SourceSettings = Box<dyn SourceConfig>;

/// The kinds this build has.
pub const KINDS: &[&str] = &["http_log", "github", "okta", "stripe", "statuspage"];

/// Decodes a kind's settings; `None` when they have errors (reported into `doc`) or the kind
/// is unknown.
pub fn decode_settings(
    kind: &str,
    doc: &mut Doc<'_>,
    value: &Spanned<DeValue<'_>>,
    what: &str,
    tenants: &BTreeMap<String, Tenant>,
) -> Option<SourceSettings> {
    fn boxed<T: SourceConfig + 'static>(settings: Option<T>) -> Option<SourceSettings> {
        settings.map(|s| Box::new(s) as SourceSettings)
    }
    match kind {
        "http_log" => boxed(http_log::Settings::decode(doc, value, what, tenants)),
        "github" => boxed(github::Settings::decode(doc, value, what)),
        "okta" => boxed(okta::Settings::decode(doc, value, what)),
        "statuspage" => boxed(statuspage::Settings::decode(doc, value, what)),
        "stripe" => boxed(stripe::Settings::decode(doc, value, what)),
        _ => None,
    }
}

/// How a vendor source reaches its API: saved responses, or the API at `base` with the
/// named credential's token (or none, for public APIs).
pub struct Remote<'a> {
    pub vendor: &'a str,
    pub saved: Option<&'a Spanned<String>>,
    pub credential: Option<&'a Spanned<String>>,
    pub base: &'a str,
    /// `Bearer`, or Okta's `SSWS`.
    pub scheme: &'static str,
    pub headers: Vec<(&'static str, String)>,
    /// How the token is usually given, for the error when it is missing.
    pub token_example: &'a str,
}

impl Remote<'_> {
    /// The source's view of the engine, and the credential it calls with.
    pub fn connect(
        self,
        spec: &SourceSpec,
        ctx: &BuildContext<'_>,
    ) -> Result<(crate::http::Api, Option<crate::config::Credential>)> {
        use crate::error::ConfigError;
        use crate::http::Transport;
        let environment = ctx.environment(&spec.tenant);
        let credential = match self.credential {
            None => None,
            Some(name) => Some(
                ctx.bindings
                    .named(name.get_ref(), &environment)
                    .ok_or_else(|| {
                        ConfigError(format!(
                            "source {}: no [[credentials]] entry named `{}` for environment {environment}",
                            spec.name,
                            name.get_ref()
                        ))
                    })?
                    .clone(),
            ),
        };
        let transport = match self.saved {
            Some(dir) => Transport::Files {
                dir: ctx.base_dir.join(dir.get_ref()),
            },
            None => {
                // No credential: a public API (a status page).
                let token = match (&credential, self.credential) {
                    (Some(c), Some(name)) => Some(c.token.clone().ok_or_else(|| {
                        ConfigError(format!(
                            "source {}: credential `{}` has no token (token = \"{}\", \"file:…\" or \"credential:…\")",
                            spec.name,
                            name.get_ref(),
                            self.token_example,
                        ))
                    })?),
                    _ => None,
                };
                Transport::Http {
                    base: url::Url::parse(self.base).map_err(|e| {
                        ConfigError(format!("source {}: {e}: {}", spec.name, self.base))
                    })?,
                    token: token.map(crate::http::Token::Static),
                    scheme: self.scheme,
                    headers: self.headers,
                }
            }
        };
        let target = crate::http::fetch::Target {
            vendor: self.vendor.into(),
            tenant: spec.tenant.clone(),
            environment,
            credential: credential.as_ref().map(|c| c.name.clone()),
            credential_uid: credential.as_ref().and_then(|c| c.credential_uid()),
        };
        let api = crate::http::Api::new(ctx.engine.clone(), transport, target);
        Ok((api, credential))
    }

    /// `validate`'s rules: an https URL, and either saved responses or a credential (when
    /// `credential_needed`: a GitHub App alone signs its own calls).
    pub fn check(
        doc: &mut Doc<'_>,
        value: &Spanned<DeValue<'_>>,
        what: &str,
        url: Option<(&str, &Spanned<String>)>,
        saved: Option<&Spanned<String>>,
        (credential, credential_needed): (Option<&Spanned<String>>, bool),
    ) {
        if let Some((key, url)) = url {
            match url::Url::parse(url.get_ref()) {
                Ok(u) => {
                    if let Err(e) = crate::http::client::check_url(&u) {
                        doc.error(url.span(), format!("{what}: {key}: {e}"));
                    }
                }
                Err(e) => doc.error(url.span(), format!("{what}: {key} is not a URL: {e}")),
            }
        }
        match (saved, credential) {
            (Some(saved), _) if url.is_some() => doc.error(
                saved.span(),
                format!(
                    "{what}: `saved` reads saved responses instead of the API: drop {}",
                    url.map_or("", |(k, _)| k)
                ),
            ),
            (None, None) if credential_needed => doc.error(
                value.span(),
                format!("{what}: name the `credential` (a [[credentials]] entry with a token) the API is called with, or give `saved` (a folder of saved responses)"),
            ),
            _ => {}
        }
    }
}

impl SourceSpec {
    pub fn build(&self, ctx: &BuildContext<'_>) -> Result<Box<dyn Source>> {
        self.settings.build(self, ctx)
    }
}

#[cfg(test)]
mod host_tests {
    use super::host_matches;

    #[test]
    fn host_patterns() {
        assert!(host_matches("api.github.com", "API.GitHub.com"));
        assert!(host_matches(
            "*.oraclecloud.com",
            "fa-acme.fa.ocs.oraclecloud.com"
        ));
        assert!(!host_matches("*.oraclecloud.com", "oraclecloud.com"));
        assert!(!host_matches("*.oraclecloud.com", "evil-oraclecloud.com"));
        assert!(!host_matches("api.github.com", "api.github.com.evil.net"));
    }
}
