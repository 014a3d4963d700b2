//! A GitHub token: one call to `/user` shows its scopes (`X-OAuth-Scopes`), its expiry
//! (`github-authentication-token-expiration`) and its owner. Fine-grained and GitHub App
//! tokens send no scope header: their privileges are unknown, not empty.

use chrono::{NaiveDateTime, TimeZone, Utc};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::Value;

use super::jwt::check_url;
use super::{Context, Observation, json_object, privilege};
use crate::config::Credential;

pub const DEFAULT_API_URL: &str = "https://api.github.com";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `https://api.github.com`, or GitHub Enterprise Server's `https://HOST/api/v3`.
    pub api_url: Option<String>,
}

impl Settings {
    pub fn check(&self, credential: &Credential) -> Vec<String> {
        let mut out = Vec::new();
        if credential.token.is_none() {
            out.push("a github probe needs the credential's token".to_string());
        }
        out.extend(check_url("api_url", self.api_url.as_deref()));
        out
    }

    pub async fn probe(&self, credential: &Credential, ctx: &Context<'_>, obs: &mut Observation) {
        let token = match super::current_token(None, credential, ctx.base_dir) {
            Ok(t) => t,
            Err(e) => return obs.fail("unreadable", e),
        };
        let token = &token;
        obs.token_type = Some(token_type(token.expose_secret()).into());
        let base = self
            .api_url
            .as_deref()
            .unwrap_or(DEFAULT_API_URL)
            .trim_end_matches('/');
        let Ok(url) = url::Url::parse(&format!("{base}/user")) else {
            return obs.fail("misconfigured", format!("api_url `{base}` is not a URL"));
        };
        let redactor = ctx.redactor([token.clone()]);
        let what = format!("github GET {}", url.path());
        let Ok(mut bearer) = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
        else {
            return obs.fail("misconfigured", "the token is not a valid header value");
        };
        bearer.set_sensitive(true);
        let reply = ctx
            .engine
            .exchange(&what, &url, &redactor, &ctx.own, |c| {
                c.get(url.clone())
                    .header(AUTHORIZATION, bearer.clone())
                    .header("accept", "application/vnd.github+json")
                    .header("x-github-api-version", "2022-11-28")
            })
            .await;
        let reply = match reply {
            Ok(r) => r,
            Err(e) => return obs.fail("unreachable", e),
        };
        obs.skew_ms = reply.skew_ms;
        obs.privileges = scopes(&reply.headers);
        obs.expires_at_ms = expiration(&reply.headers);
        let body = json_object(&reply.body).ok();
        let message = || {
            body.as_ref()
                .and_then(|b| b.get("message").and_then(Value::as_str))
                .map(|m| redactor.scrub(m).into_owned())
                .unwrap_or_default()
        };
        match reply.status {
            200 => {
                let b = body.as_ref();
                obs.identity = b
                    .and_then(|b| b.get("login"))
                    .and_then(Value::as_str)
                    .map(str::to_string);
                obs.subject = b.and_then(|b| b.get("id")).map(|v| v.to_string());
            }
            // An App installation token may not read /user: the headers still say what it is.
            403 if token.expose_secret().starts_with("ghs_") => {}
            401 => obs.fail("invalid_token", format!("{what}: 401 {}", message())),
            s => obs.fail(&format!("http_{s}"), format!("{what}: {s} {}", message())),
        }
    }
}

/// From the token's prefix (GitHub's documented formats).
fn token_type(token: &str) -> &'static str {
    match token.get(..4).unwrap_or("") {
        "ghp_" => "pat_classic",
        "gho_" => "oauth",
        "ghu_" => "app_user",
        "ghs_" => "app_installation",
        _ if token.starts_with("github_pat_") => "pat_fine_grained",
        _ => "token",
    }
}

/// `X-OAuth-Scopes: repo, read:org`; an empty header is a token with no scopes; no header, a
/// token whose privileges are not expressed as scopes.
fn scopes(headers: &HeaderMap) -> Option<std::collections::BTreeSet<String>> {
    let text = headers.get("x-oauth-scopes")?.to_str().ok()?;
    Some(
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| privilege("scp", s))
            .collect(),
    )
}

/// `github-authentication-token-expiration: 2026-12-01 00:00:00 UTC` (or `+0000`).
fn expiration(headers: &HeaderMap) -> Option<i64> {
    let text = headers
        .get("github-authentication-token-expiration")?
        .to_str()
        .ok()?
        .trim();
    if let Ok(t) = chrono::DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S %z") {
        return Some(t.timestamp_millis());
    }
    let naive =
        NaiveDateTime::parse_from_str(text.trim_end_matches(" UTC"), "%Y-%m-%d %H:%M:%S").ok()?;
    Some(Utc.from_utc_datetime(&naive).timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::test_headers;

    #[test]
    fn scope_header_known_empty_or_unknown() {
        let s = scopes(&test_headers(&[("x-oauth-scopes", "repo, read:org")])).unwrap_or_default();
        assert_eq!(
            s.into_iter().collect::<Vec<_>>(),
            ["scp:read:org", "scp:repo"]
        );
        assert_eq!(
            scopes(&test_headers(&[("x-oauth-scopes", "")])),
            Some(Default::default())
        );
        assert_eq!(scopes(&HeaderMap::new()), None);
    }

    #[test]
    fn expiration_in_both_forms() {
        let utc = expiration(&test_headers(&[(
            "github-authentication-token-expiration",
            "2026-12-01 00:00:00 UTC",
        )]));
        let offset = expiration(&test_headers(&[(
            "github-authentication-token-expiration",
            "2026-12-01 01:00:00 +0100",
        )]));
        assert_eq!(utc, Some(1_796_083_200_000));
        assert_eq!(offset, utc);
    }

    #[test]
    fn token_types() {
        assert_eq!(token_type("ghp_abc"), "pat_classic");
        assert_eq!(token_type("github_pat_11AB"), "pat_fine_grained");
        assert_eq!(token_type("ghs_x"), "app_installation");
        assert_eq!(token_type("x"), "token");
    }
}
