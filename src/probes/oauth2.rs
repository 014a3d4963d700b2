//! OAuth2 client credentials (RFC 6749 §4.4): asks the token endpoint for a token the way the
//! integration does, and reads the answer: the granted `scope` and `expires_in` (§5.1), or the
//! error (§5.2: `invalid_client` after a success means the secret was rotated or revoked).
//! When the token is a JWT its claims say the rest (audience, roles, expiry).

use base64::Engine as _;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header::{AUTHORIZATION, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;

use super::jwt::{self, check_url};
use super::{Context, Observation, json_object, read_secret, requested};
use crate::config::Credential;

/// What differs between identity providers: how the client authenticates by default, and
/// what the request must carry.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// Any RFC 6749 server.
    #[default]
    Generic,
    Okta,
    /// Microsoft Entra ID: `scope` is `<resource>/.default`; app roles come in `roles`.
    Entra,
    /// Auth0: the API is named by `audience`; RBAC permissions in `permissions`.
    Auth0,
    Salesforce,
    /// Oracle IDCS / OCI identity domains (Oracle Fusion): scopes carry the resource.
    OracleIdcs,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Auth {
    ClientSecretBasic,
    ClientSecretPost,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub token_url: String,
    /// A secret reference: `env:…`, `file:…`, `credential:…`.
    pub client_secret: String,
    #[serde(default)]
    pub profile: Profile,
    pub auth: Option<Auth>,
    /// What the integration asks for: a space-separated string or a list.
    #[serde(default, deserialize_with = "scope_list")]
    pub scope: Vec<String>,
    pub audience: Option<String>,
    pub resource: Option<String>,
    /// The issuer's JWKS, to check the signature of a JWT access token.
    pub jwks_url: Option<String>,
}

fn scope_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scopes {
        Text(String),
        List(Vec<String>),
    }
    Ok(match Scopes::deserialize(d)? {
        Scopes::Text(s) => s.split_whitespace().map(str::to_string).collect(),
        Scopes::List(l) => l,
    })
}

impl Settings {
    fn auth(&self) -> Auth {
        self.auth.unwrap_or(match self.profile {
            Profile::Entra | Profile::Auth0 => Auth::ClientSecretPost,
            _ => Auth::ClientSecretBasic,
        })
    }

    pub fn check(&self, credential: &Credential) -> Vec<String> {
        let mut out = Vec::new();
        if credential.client_id.is_none() {
            out.push("an oauth2 probe needs the credential's client_id".to_string());
        }
        if let Err(e) = crate::config::SecretRef::parse(&self.client_secret) {
            out.push(format!("client_secret: {e}"));
        }
        out.extend(check_url("token_url", Some(&self.token_url)));
        out.extend(check_url("jwks_url", self.jwks_url.as_deref()));
        match self.profile {
            Profile::Entra if self.scope.is_empty() => {
                out.push("profile entra needs scope (e.g. \"api://<app id>/.default\")".to_string())
            }
            Profile::Auth0 if self.audience.is_none() => {
                out.push("profile auth0 needs audience (the API identifier)".to_string())
            }
            _ => {}
        }
        out
    }

    pub async fn probe(&self, credential: &Credential, ctx: &Context<'_>, obs: &mut Observation) {
        obs.token_type = Some("access_token".into());
        obs.actor_app = credential.client_id.clone();
        obs.issuer = credential.issuer.clone();
        obs.requested = requested(&self.scope);
        let Some(client_id) = credential.client_id.clone() else {
            return obs.fail("misconfigured", "no client_id");
        };
        let secret = match read_secret(&self.client_secret, ctx.base_dir, "client_secret") {
            Ok(s) => s,
            Err(e) => return obs.fail("unreadable", e),
        };
        let Ok(url) = url::Url::parse(&self.token_url) else {
            return obs.fail(
                "misconfigured",
                format!("token_url `{}` is not a URL", self.token_url),
            );
        };
        let mut form = vec![("grant_type", "client_credentials".to_string())];
        if !self.scope.is_empty() {
            form.push(("scope", self.scope.join(" ")));
        }
        if let Some(a) = &self.audience {
            form.push(("audience", a.clone()));
        }
        if let Some(r) = &self.resource {
            form.push(("resource", r.clone()));
        }
        let mut redactor = ctx.redactor([secret.clone()]);
        let Some(body) = post_as_client(
            ctx,
            &url,
            &redactor,
            form,
            (&client_id, &secret, self.auth()),
            obs,
        )
        .await
        else {
            return;
        };
        let what = format!("POST {}", redactor.scrub(url.as_str()));
        let Some(token) = body.get("access_token").and_then(Value::as_str) else {
            return obs.fail(
                "invalid_response",
                format!("{what}: no access_token in the answer"),
            );
        };
        redactor = redactor.with([SecretString::from(token.to_string())]);
        if let Some(t) = body.get("token_type").and_then(Value::as_str) {
            obs.token_type = Some(format!("access_token ({})", t.to_ascii_lowercase()));
        }
        if jwt::looks_like_jwt(token) {
            jwt::inspect(token, self.jwks_url.as_deref(), ctx, &redactor, obs).await;
        } else {
            // An opaque token: only the answer says what it grants; without `scope`, unknown.
            obs.privileges = None;
        }
        // §5.1: the granted scope, when given, is what the server says it granted.
        if let Some(scope) = body.get("scope").and_then(Value::as_str) {
            let granted = scope.split_whitespace().map(|s| super::privilege("scp", s));
            let mut privileges = obs.privileges.take().unwrap_or_default();
            privileges.retain(|p| !p.starts_with("scp:"));
            privileges.extend(granted);
            obs.privileges = Some(privileges);
        }
        if obs.expires_at_ms.is_none()
            && let Some(secs) = expires_in(&body)
        {
            obs.expires_at_ms = Some(
                ctx.now
                    .timestamp_millis()
                    .saturating_add(secs.saturating_mul(1000)),
            );
        }
        if obs.actor_app.is_none() {
            obs.actor_app = Some(client_id);
        }
    }
}

/// POSTs `form` to an authorization server's endpoint as the client (RFC 6749 §2.3.1), and
/// returns the JSON answer of a 200. Anything else is recorded in `obs`: no answer
/// (`unreachable`), the §5.2 `error` with its `error_description`, or the HTTP status.
pub(super) async fn post_as_client(
    ctx: &Context<'_>,
    url: &url::Url,
    redactor: &crate::http::redact::Redactor,
    mut form: Vec<(&'static str, String)>,
    (client_id, secret, auth): (&str, &SecretString, Auth),
    obs: &mut Observation,
) -> Option<serde_json::Map<String, Value>> {
    let mut auth_header = None;
    match auth {
        Auth::ClientSecretPost => {
            form.push(("client_id", client_id.to_string()));
            form.push(("client_secret", secret.expose_secret().to_string()));
        }
        Auth::ClientSecretBasic => auth_header = Some(basic(client_id, secret)),
    }
    let what = format!("POST {}", redactor.scrub(url.as_str()));
    let reply = ctx
        .engine
        .exchange(&what, url, redactor, &ctx.own, |c| {
            let mut r = c
                .post(url.clone())
                .form(&form)
                .header("accept", "application/json");
            if let Some(h) = &auth_header {
                r = r.header(AUTHORIZATION, h.clone());
            }
            r
        })
        .await;
    let reply = match reply {
        Ok(r) => r,
        Err(e) => {
            obs.fail("unreachable", e);
            return None;
        }
    };
    obs.skew_ms = reply.skew_ms;
    let body = json_object(&reply.body);
    if reply.status != 200 {
        let text = |k: &str| {
            let b = body.as_ref().ok()?;
            b.get(k).and_then(Value::as_str).map(str::to_string)
        };
        // The server's `error` becomes the snapshot's status only if it looks like an
        // RFC 6749 code: a server must not be able to write `ok`, or a line break, there.
        let status = text("error")
            .filter(|e| error_code(e))
            .unwrap_or_else(|| format!("http_{}", reply.status));
        let message = text("error_description")
            .unwrap_or_else(|| format!("the server answered {}", reply.status));
        let line = format!("{what}: {} {message}", reply.status);
        obs.fail(&status, redactor.scrub(&line).into_owned());
        return None;
    }
    match body {
        Ok(b) => Some(b),
        Err(e) => {
            obs.fail("invalid_response", format!("{what}: {e}"));
            None
        }
    }
}

/// `invalid_client`, `invalid_scope`...: lowercase letters, digits and `_`, never `ok`.
pub(super) fn error_code(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text != "ok"
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// `expires_in`: a number, or a numeric string (some servers).
fn expires_in(body: &serde_json::Map<String, Value>) -> Option<i64> {
    match body.get("expires_in")? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|s| (0..=10 * 365 * 86_400).contains(s))
}

/// RFC 6749 §2.3.1: id and secret are form-encoded before they are joined and base64ed.
pub(super) fn basic(client_id: &str, secret: &SecretString) -> HeaderValue {
    let pair = format!(
        "{}:{}",
        utf8_percent_encode(client_id, NON_ALPHANUMERIC),
        utf8_percent_encode(secret.expose_secret(), NON_ALPHANUMERIC)
    );
    let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
    let mut value = HeaderValue::from_str(&format!("Basic {encoded}"))
        .unwrap_or_else(|_| HeaderValue::from_static("Basic"));
    value.set_sensitive(true);
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_in_as_number_or_string() {
        let body = |v: Value| json_object(v.to_string().as_bytes()).unwrap_or_default();
        let text = include_str!("../../tests/fixtures/oauth/rfc6749-5.1-token-response.json");
        assert_eq!(
            expires_in(&json_object(text.as_bytes()).unwrap_or_default()),
            Some(3600)
        );
        assert_eq!(
            expires_in(&body(serde_json::json!({"expires_in": "7200"}))),
            Some(7200)
        );
        assert_eq!(
            expires_in(&body(serde_json::json!({"expires_in": -1}))),
            None
        );
        assert_eq!(expires_in(&body(serde_json::json!({}))), None);
    }

    #[test]
    fn only_error_codes_become_statuses() {
        assert!(error_code("invalid_client") && error_code("unauthorized_client"));
        assert!(!error_code("ok"));
        assert!(!error_code("Invalid Client\nok"));
        assert!(!error_code(""));
        assert!(!error_code(&"a".repeat(65)));
    }

    #[test]
    fn basic_auth_form_encodes_first() {
        let h = basic("my client", &SecretString::from("s:e/c".to_string()));
        let text = h
            .to_str()
            .unwrap_or_default()
            .trim_start_matches("Basic ")
            .to_string();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap_or_default();
        assert_eq!(String::from_utf8_lossy(&decoded), "my%20client:s%3Ae%2Fc");
        assert!(h.is_sensitive());
    }
}
