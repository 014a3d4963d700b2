//! Credential probes (DESIGN §3, §4 `token_snapshots`): each one looks at a credential the way
//! its vendor sees it and says what it holds now: privileges, audience, issuer, identity,
//! expiry, the server's clock. `collect` turns the observations into rows and drift.
//!
//! A probe never fails the run: a refused secret, an inactive token or an unreachable server
//! is itself the observation (`status`), which drift compares with the last good one.

pub mod aws;
pub mod collect;
pub mod github;
pub mod introspect;
pub mod jwt;
pub mod oauth2;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::{Credential, Dur, SecretRef};
use crate::http::Engine;
use crate::http::redact::Redactor;

/// The longest a probe may take, retries included.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Warn this long before a token expires, unless the probe says otherwise.
pub const DEFAULT_EXPIRY_HORIZON: Dur = Dur(std::time::Duration::from_secs(7 * 86_400));
/// Server clocks further off than this make tokens fail `nbf`/`iat`/`exp` checks.
pub const DEFAULT_MAX_SKEW: Dur = Dur(std::time::Duration::from_secs(120));

/// A credential's `[credentials.probe]` table.
#[derive(Debug, Clone)]
pub struct ProbeSpec {
    pub kind: ProbeKind,
    /// Drift warns when the token expires within this.
    pub expiry_horizon: Dur,
    /// Drift warns when the server's clock is further off than this.
    pub max_skew: Dur,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProbeKind {
    /// OAuth2 client credentials grant against a token endpoint.
    Oauth2(oauth2::Settings),
    /// The token an integration keeps in a file or variable, read as a JWT.
    Jwt(jwt::Settings),
    /// RFC 7662 introspection of an opaque token.
    Introspection(introspect::Settings),
    /// A GitHub token: one call, its scope and expiry headers.
    Github(github::Settings),
    /// STS GetCallerIdentity with the integration's AWS profile.
    Aws(aws::Settings),
}

impl ProbeKind {
    pub const KINDS: &'static [&'static str] = &["oauth2", "jwt", "introspection", "github", "aws"];

    pub fn name(&self) -> &'static str {
        match self {
            ProbeKind::Oauth2(_) => "oauth2",
            ProbeKind::Jwt(_) => "jwt",
            ProbeKind::Introspection(_) => "introspection",
            ProbeKind::Github(_) => "github",
            ProbeKind::Aws(_) => "aws",
        }
    }

    /// Problems `validate` reports, each one line.
    pub fn check(&self, credential: &Credential) -> Vec<String> {
        match self {
            ProbeKind::Oauth2(s) => s.check(credential),
            ProbeKind::Jwt(s) => s.check(credential),
            ProbeKind::Introspection(s) => s.check(credential),
            ProbeKind::Github(s) => s.check(credential),
            ProbeKind::Aws(s) => s.check(credential),
        }
    }
}

/// What one probe saw. Kept in the snapshot cursor (the last one, and the last good one, of
/// each credential) and written as a `token_snapshots` row.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub probe: String,
    /// When it was taken (epoch ms).
    #[serde(default)]
    pub at_ms: i64,
    /// `ok`, or what went wrong: `invalid_client`, `invalid_scope`, `inactive`, `expired`,
    /// `unsigned`, `invalid_signature`, `unreachable`, `http_500`...
    pub status: String,
    /// The server's or scopetrail's explanation of a status other than `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default)]
    pub token_type: Option<String>,
    #[serde(default)]
    pub issuer: Option<String>,
    #[serde(default)]
    pub audience: Vec<String>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub actor_app: Option<String>,
    /// `scp:…`, `role:…`, `perm:…`. `None`: unknown (a fine-grained GitHub token, a token
    /// response without `scope` and an opaque token), which is not the same as none.
    #[serde(default)]
    pub privileges: Option<BTreeSet<String>>,
    #[serde(default)]
    pub requested: Option<BTreeSet<String>>,
    #[serde(default)]
    pub issued_at_ms: Option<i64>,
    #[serde(default)]
    pub expires_at_ms: Option<i64>,
    #[serde(default)]
    pub not_before_ms: Option<i64>,
    #[serde(default)]
    pub skew_ms: Option<i64>,
    #[serde(default)]
    pub identity: Option<String>,
    #[serde(default)]
    pub credential_uid: Option<String>,
    /// For JWTs: `verified`, `not checked` (no `jwks_url`), or why it could not be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

impl Observation {
    pub fn new(probe: &str, credential: &Credential) -> Observation {
        Observation {
            probe: probe.to_string(),
            status: "ok".to_string(),
            credential_uid: credential.credential_uid(),
            ..Default::default()
        }
    }

    pub fn ok(&self) -> bool {
        self.status == "ok"
    }

    pub fn fail(&mut self, status: &str, message: impl Into<String>) {
        self.status = status.to_string();
        self.message = Some(message.into());
    }

    /// Reads the claims of a JWT or an introspection answer (they share the names): Entra's
    /// `scp` string and `roles`, Okta's `scp` array and `cid`, Auth0's `scope` and
    /// `permissions`, RFC 7662's `scope` and `client_id`.
    pub fn read_claims(&mut self, claims: &Map<String, Value>) {
        let text = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_string);
        let time = |k: &str| {
            claims
                .get(k)
                .and_then(Value::as_f64)
                .filter(|s| {
                    s.is_finite() && (0.0..=crate::model::MAX_TIME_MS as f64 / 1000.0).contains(s)
                })
                .map(|s| (s * 1000.0) as i64)
        };
        self.issuer = text("iss").or(self.issuer.take());
        if let Some(aud) = claims.get("aud") {
            self.audience = words(aud);
        }
        self.subject = text("sub").or(self.subject.take());
        self.actor_app = ["azp", "client_id", "cid", "appid"]
            .iter()
            .find_map(|k| text(k))
            .or(self.actor_app.take());
        self.issued_at_ms = time("iat");
        self.expires_at_ms = time("exp");
        self.not_before_ms = time("nbf");
        if let Some(t) = text("token_type") {
            self.token_type = Some(t);
        }
        // No privilege claim at all: unknown here. A JWT without one grants none (the caller
        // says so); an introspection answer may just leave `scope` out (RFC 7662 §2.2).
        let mut privileges: Option<BTreeSet<String>> = None;
        for (claim, kind) in [
            ("scp", "scp"),
            ("scope", "scp"),
            ("roles", "role"),
            ("permissions", "perm"),
        ] {
            if let Some(v) = claims.get(claim) {
                privileges
                    .get_or_insert_default()
                    .extend(words(v).iter().map(|w| privilege(kind, w)));
            }
        }
        self.privileges = privileges;
    }
}

/// A claim that is a space-separated string or an array of strings.
fn words(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => s.split_whitespace().map(str::to_string).collect(),
        // Items of an array are names as given: role names contain spaces.
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// `scp:Read` from `Read`, and from `api://<app id>/Read` or `https://host/Read`: scopes
/// that embed their audience (Entra) compare by what they grant.
pub fn privilege(kind: &str, name: &str) -> String {
    let name = match name.split_once("://") {
        Some((_, rest)) => rest
            .rsplit('/')
            .next()
            .filter(|s| !s.is_empty())
            .unwrap_or(name),
        None => name,
    };
    format!("{kind}:{name}")
}

/// Scopes as configured (a string or a list) to the prefixed set.
pub fn requested(scopes: &[String]) -> Option<BTreeSet<String>> {
    (!scopes.is_empty()).then(|| scopes.iter().map(|s| privilege("scp", s)).collect())
}

/// What every probe gets.
pub struct Context<'a> {
    pub engine: &'a Arc<Engine>,
    pub base_dir: &'a Path,
    pub now: DateTime<Utc>,
    pub jwks: &'a jwt::KeyCache,
    /// The probed credential's own 429s go here.
    pub own: crate::http::exchange::Own<'a>,
}

impl Context<'_> {
    /// The engine's redactor plus this probe's own secrets.
    pub fn redactor(&self, more: impl IntoIterator<Item = secrecy::SecretString>) -> Redactor {
        self.engine.redactor().with(more)
    }
}

/// Probes one credential.
pub async fn probe(spec: &ProbeSpec, credential: &Credential, ctx: &Context<'_>) -> Observation {
    let mut obs = Observation::new(spec.kind.name(), credential);
    obs.at_ms = ctx.now.timestamp_millis();
    let work = async {
        match &spec.kind {
            ProbeKind::Oauth2(s) => s.probe(credential, ctx, &mut obs).await,
            ProbeKind::Jwt(s) => s.probe(credential, ctx, &mut obs).await,
            ProbeKind::Introspection(s) => s.probe(credential, ctx, &mut obs).await,
            ProbeKind::Github(s) => s.probe(credential, ctx, &mut obs).await,
            ProbeKind::Aws(s) => s.probe(credential, ctx, &mut obs).await,
        }
    };
    // Every probe, the AWS SDK's included, is bounded: one stuck server must not hold the
    // others or the run.
    let stopped = tokio::select! {
        done = tokio::time::timeout(PROBE_TIMEOUT, work) => done.is_err().then_some("no answer within 2 minutes"),
        () = ctx.engine.cancelled() => Some("stopped: the process was asked to stop"),
    };
    if let Some(why) = stopped {
        obs = Observation::new(spec.kind.name(), credential);
        obs.at_ms = ctx.now.timestamp_millis();
        obs.fail("unreachable", why);
    }
    if obs.ok()
        && let Some(exp) = obs.expires_at_ms
        && exp <= ctx.now.timestamp_millis()
    {
        obs.fail(
            "expired",
            format!("the token expired at {}", crate::model::rfc3339_ms(exp)),
        );
    }
    obs
}

/// A secret reference of a probe setting, read now (the integration may have replaced the
/// file since the last run).
pub fn read_secret(
    reference: &str,
    base_dir: &Path,
    what: &str,
) -> Result<secrecy::SecretString, String> {
    SecretRef::parse(reference)
        .and_then(|r| r.resolve(base_dir))
        .map_err(|e| format!("{what}: {e}"))
}

/// The token to probe: the probe's own `token` reference, else the credential's, read now.
pub fn current_token(
    own: Option<&str>,
    credential: &Credential,
    base_dir: &Path,
) -> Result<secrecy::SecretString, String> {
    match (own, &credential.token_ref) {
        (Some(r), _) => read_secret(r, base_dir, "token"),
        (None, Some(r)) => r.resolve(base_dir).map_err(|e| format!("token: {e}")),
        (None, None) => credential
            .token
            .clone()
            .ok_or_else(|| "no token to read".to_string()),
    }
}

/// The body's JSON object, or why not.
pub fn json_object(body: &[u8]) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("the answer is not a JSON object".to_string()),
        Err(e) => Err(format!("the answer is not JSON ({e})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    fn read(v: Value) -> Observation {
        let mut o = Observation::default();
        o.read_claims(&claims(v));
        o
    }

    fn set(items: &[&str]) -> Option<BTreeSet<String>> {
        Some(items.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn entra_scp_string_and_roles() {
        let o = read(
            json!({"aud": "api://5e1f/", "iss": "https://login.microsoftonline.com/t/v2.0",
            "appid": "5e1f-app", "scp": "Orders.Read Orders.Write", "roles": ["Admin.All"], "exp": 1700000000}),
        );
        assert_eq!(
            o.privileges,
            set(&["role:Admin.All", "scp:Orders.Read", "scp:Orders.Write"])
        );
        assert_eq!(o.actor_app.as_deref(), Some("5e1f-app"));
        assert_eq!(o.expires_at_ms, Some(1_700_000_000_000));
    }

    #[test]
    fn okta_scp_array_and_cid() {
        let text = include_str!("../../tests/fixtures/okta/oidc-access-token-payload.json");
        let o = read(serde_json::from_str(text).unwrap_or_default());
        assert_eq!(
            o.privileges,
            set(&["scp:custom", "scp:email", "scp:flights", "scp:openid"])
        );
        assert_eq!(o.actor_app.as_deref(), Some("nmdP1fcyvdVO11AL7ECm"));
        assert_eq!(o.audience, vec!["https://api.example.com"]);
        assert_eq!(o.issued_at_ms, Some(1_467_145_094_000));
    }

    #[test]
    fn auth0_scope_and_permissions() {
        let text = include_str!("../../tests/fixtures/auth0/access-token-auth0-profile.json");
        let mut v: Value = serde_json::from_str(text).unwrap_or_default();
        v["permissions"] = json!(["read:patients", "delete:patients"]);
        let o = read(v);
        assert_eq!(
            o.privileges,
            set(&[
                "perm:delete:patients",
                "perm:read:patients",
                "scp:openid",
                "scp:profile",
                "scp:read:admin",
                "scp:read:patients"
            ])
        );
        assert_eq!(o.audience.len(), 2);
        assert_eq!(o.actor_app.as_deref(), Some("my_client_id"));
    }

    #[test]
    fn role_names_keep_their_spaces() {
        let o = read(json!({"roles": ["Journal Approver", "GL Admin"], "scp": "a b"}));
        assert_eq!(
            o.privileges,
            set(&["role:GL Admin", "role:Journal Approver", "scp:a", "scp:b"])
        );
    }

    #[test]
    fn no_privilege_claim_is_unknown_here() {
        assert_eq!(read(json!({"sub": "x"})).privileges, None);
        assert_eq!(read(json!({"scp": []})).privileges, set(&[]));
    }

    #[test]
    fn scopes_that_embed_their_audience_compare_by_name() {
        assert_eq!(
            privilege("scp", "api://5e1f-4a/Orders.Read"),
            "scp:Orders.Read"
        );
        assert_eq!(
            privilege("scp", "https://graph.microsoft.com/.default"),
            "scp:.default"
        );
        assert_eq!(privilege("scp", "read:admin"), "scp:read:admin");
        assert_eq!(
            privilege("role", "Journal Approver"),
            "role:Journal Approver"
        );
    }

    #[test]
    fn absurd_times_are_ignored() {
        let o = read(json!({"exp": 1e300, "iat": -5, "nbf": "soon"}));
        assert_eq!(
            (o.expires_at_ms, o.issued_at_ms, o.not_before_ms),
            (None, None, None)
        );
    }
}
