//! RFC 7662 token introspection, for opaque tokens: the authorization server says whether the
//! token is active and what it grants. `{"active": false}` is an observation (`inactive`), not
//! an error.

use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::Value;

use super::jwt::check_url;
use super::oauth2::{Auth, post_as_client};
use super::{Context, Observation, read_secret};
use crate::config::Credential;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub introspection_url: String,
    /// The token to introspect (`file:…`, `env:…`, `credential:…`). Default: the credential's
    /// `token`.
    pub token: Option<String>,
    /// The introspecting client: the credential's `client_id` with this secret.
    pub client_secret: String,
    pub auth: Option<Auth>,
}

impl Settings {
    pub fn check(&self, credential: &Credential) -> Vec<String> {
        let mut out = Vec::new();
        if credential.client_id.is_none() {
            out.push(
                "an introspection probe authenticates as the credential's client_id: set it"
                    .to_string(),
            );
        }
        if self.token.is_none() && credential.token.is_none() {
            out.push("an introspection probe needs the token: token = \"file:…\" in the probe, or the credential's token".to_string());
        }
        for (key, r) in [
            ("client_secret", Some(&self.client_secret)),
            ("token", self.token.as_ref()),
        ] {
            if let Some(r) = r
                && let Err(e) = crate::config::SecretRef::parse(r)
            {
                out.push(format!("{key}: {e}"));
            }
        }
        out.extend(check_url(
            "introspection_url",
            Some(&self.introspection_url),
        ));
        out
    }

    pub async fn probe(&self, credential: &Credential, ctx: &Context<'_>, obs: &mut Observation) {
        obs.token_type = Some("access_token".into());
        let token = super::current_token(self.token.as_deref(), credential, ctx.base_dir);
        let secret = read_secret(&self.client_secret, ctx.base_dir, "client_secret");
        let (token, secret) = match (token, secret) {
            (Ok(t), Ok(s)) => (t, s),
            (Err(e), _) | (_, Err(e)) => return obs.fail("unreadable", e),
        };
        let client_id = credential.client_id.clone().unwrap_or_default();
        let Ok(url) = url::Url::parse(&self.introspection_url) else {
            return obs.fail("misconfigured", "introspection_url is not a URL");
        };
        let redactor = ctx.redactor([token.clone(), secret.clone()]);
        let form = vec![
            ("token", token.expose_secret().to_string()),
            ("token_type_hint", "access_token".to_string()),
        ];
        let auth = self.auth.unwrap_or(Auth::ClientSecretBasic);
        let Some(body) =
            post_as_client(ctx, &url, &redactor, form, (&client_id, &secret, auth), obs).await
        else {
            return;
        };
        let what = format!("POST {}", redactor.scrub(url.as_str()));
        match body.get("active") {
            Some(Value::Bool(true)) => obs.read_claims(&body),
            Some(Value::Bool(false)) => obs.fail("inactive", "the authorization server says the token is not active (expired, revoked or never issued)"),
            _ => obs.fail("invalid_response", format!("{what}: no boolean `active` in the answer")),
        }
    }
}
