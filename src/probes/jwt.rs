//! A JWT's header and claims: from the token an integration keeps (the only way to see the
//! expiry of the token actually in use), or from what a token endpoint just issued. The
//! signature is checked against the issuer's JWKS when a `jwks_url` is given; `alg: none`
//! and tokens that do not verify are reported, and their claims never count as a good
//! snapshot.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{DecodingKey, Validation};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use super::{Context, Observation, json_object};
use crate::config::Credential;
use crate::http::redact::Redactor;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Where the integration keeps its token (`file:…`, `env:…`, `credential:…`), read at
    /// every probe. Default: the credential's `token`.
    pub token: Option<String>,
    /// The issuer's JWKS, to check the signature.
    pub jwks_url: Option<String>,
}

impl Settings {
    pub fn check(&self, credential: &Credential) -> Vec<String> {
        let mut out = Vec::new();
        if self.token.is_none() && credential.token.is_none() {
            out.push("a jwt probe needs the token: token = \"file:…\" in the probe, or the credential's token".to_string());
        }
        if let Some(r) = &self.token
            && let Err(e) = crate::config::SecretRef::parse(r)
        {
            out.push(format!("token: {e}"));
        }
        out.extend(check_url("jwks_url", self.jwks_url.as_deref()));
        out
    }

    pub async fn probe(&self, credential: &Credential, ctx: &Context<'_>, obs: &mut Observation) {
        let token = match super::current_token(self.token.as_deref(), credential, ctx.base_dir) {
            Ok(t) => t,
            Err(e) => return obs.fail("unreadable", e),
        };
        obs.token_type = Some("access_token".into());
        let redactor = ctx.redactor([token.clone()]);
        inspect(
            token.expose_secret(),
            self.jwks_url.as_deref(),
            ctx,
            &redactor,
            obs,
        )
        .await;
    }
}

/// A URL setting that must be https (or http on loopback).
pub fn check_url(key: &str, url: Option<&str>) -> Option<String> {
    let url = url?;
    match url::Url::parse(url) {
        Err(e) => Some(format!("{key}: `{url}` is not a URL ({e})")),
        Ok(u) => crate::http::client::check_url(&u)
            .err()
            .map(|e| format!("{key}: {e}")),
    }
}

/// True for a token in JWS compact form (three base64url parts): the rest are opaque.
pub fn looks_like_jwt(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    parts.len() == 3
        && parts[..2]
            .iter()
            .all(|p| !p.is_empty() && URL_SAFE_NO_PAD.decode(p).is_ok())
}

fn part(token: &str, index: usize, what: &str) -> Result<Map<String, Value>, String> {
    let text = token
        .split('.')
        .nth(index)
        .ok_or_else(|| format!("the token is not a JWT: it has no {what}"))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| format!("the token is not a JWT: its {what} is not base64url"))?;
    json_object(&bytes).map_err(|e| format!("the token's {what}: {e}"))
}

/// Reads the claims of `token` into `obs` and checks its signature.
pub async fn inspect(
    token: &str,
    jwks_url: Option<&str>,
    ctx: &Context<'_>,
    redactor: &Redactor,
    obs: &mut Observation,
) {
    if token.split('.').count() != 3 {
        return obs.fail(
            "not_a_jwt",
            "the token is not a JWT (expected three dot-separated parts)",
        );
    }
    let (header, claims) = match (part(token, 0, "header"), part(token, 1, "claims")) {
        (Ok(h), Ok(c)) => (h, c),
        (Err(e), _) | (_, Err(e)) => return obs.fail("not_a_jwt", e),
    };
    obs.read_claims(&claims);
    // The token is all there is: no privilege claim means it grants none.
    obs.privileges.get_or_insert_default();
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
    if alg.eq_ignore_ascii_case("none") || alg.is_empty() {
        obs.signature = Some("none".into());
        obs.privileges = None;
        return obs.fail(
            "unsigned",
            "the token is not signed (alg none): its claims are not trusted",
        );
    }
    let Some(url) = jwks_url else {
        obs.signature = Some("not checked (no jwks_url)".into());
        return;
    };
    let (verdict, skew) = verify(token, url, ctx, redactor).await;
    // The issuer's clock, when nothing else of this probe asked a server.
    obs.skew_ms = obs.skew_ms.or(skew);
    match verdict {
        Ok(()) => obs.signature = Some("verified".into()),
        // What an unverified token claims to grant is not known.
        Err(Unverified::Invalid(e)) => {
            obs.signature = Some("invalid".into());
            obs.privileges = None;
            obs.fail("invalid_signature", e);
        }
        Err(Unverified::NoKey(e)) => {
            obs.signature = Some("not checked (no key)".into());
            obs.privileges = None;
            obs.fail("unverifiable", e);
        }
    }
}

/// Why a signature was not accepted: it is wrong, or there was no key to check it with.
enum Unverified {
    Invalid(String),
    NoKey(String),
}

async fn verify(
    token: &str,
    url: &str,
    ctx: &Context<'_>,
    redactor: &Redactor,
) -> (Result<(), Unverified>, Option<i64>) {
    let header = match jsonwebtoken::decode_header(token) {
        Ok(h) => h,
        Err(e) => {
            return (
                Err(Unverified::Invalid(format!("the token's header: {e}"))),
                None,
            );
        }
    };
    let kid = header.kid.clone().unwrap_or_default();
    let (jwk, skew) = match ctx.jwks.key(url, &kid, ctx, redactor).await {
        Ok(found) => found,
        Err(e) => return (Err(Unverified::NoKey(e)), None),
    };
    (
        check(token, &header, &kid, &jwk, url).map_err(Unverified::Invalid),
        skew,
    )
}

fn check(
    token: &str,
    header: &jsonwebtoken::Header,
    kid: &str,
    jwk: &Jwk,
    url: &str,
) -> Result<(), String> {
    // A shared-secret algorithm cannot be checked against public keys, and accepting one
    // would let anyone who knows the public key forge tokens.
    if !matches!(
        header.alg.family(),
        jsonwebtoken::AlgorithmFamily::Rsa
            | jsonwebtoken::AlgorithmFamily::Ec
            | jsonwebtoken::AlgorithmFamily::Ed
    ) {
        return Err(format!(
            "the token is signed with {:?}, a shared secret; only public-key algorithms can be checked against a JWKS",
            header.alg
        ));
    }
    if jwk.common.public_key_use == Some(jsonwebtoken::jwk::PublicKeyUse::Encryption) {
        return Err(format!(
            "key `{kid}` of {url} is an encryption key, not a signing key"
        ));
    }
    // A key published for one algorithm is not to be used with another.
    if let Some(alg) = jwk.common.key_algorithm
        && format!("{alg:?}") != format!("{:?}", header.alg)
    {
        return Err(format!(
            "key `{kid}` of {url} is for {alg:?}, the token says {:?}",
            header.alg
        ));
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("key `{kid}` of {url}: {e}"))?;
    let mut validation = Validation::new(header.alg);
    // Only the signature is checked here: expiry, audience and issuer are what a snapshot
    // records and drift compares, not reasons to stop reading.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map(|_| ())
        .map_err(|e| format!("the signature does not verify with key `{kid}` of {url} ({e})"))
}

/// JWKS documents by URL, fetched once per run, and once more when a token names a key the
/// cached set lacks (the issuer rotated its keys). A failed fetch is remembered for the run,
/// so one unreachable issuer costs one attempt, not one per credential.
#[derive(Default)]
pub struct KeyCache {
    /// Each set with the issuer's clock skew when it was fetched.
    sets: Mutex<HashMap<String, (JwkSet, Option<i64>)>>,
    fetches: Mutex<HashMap<String, u8>>,
    failed: Mutex<HashMap<String, String>>,
}

impl KeyCache {
    async fn key(
        &self,
        url: &str,
        kid: &str,
        ctx: &Context<'_>,
        redactor: &Redactor,
    ) -> Result<(Jwk, Option<i64>), String> {
        let find = |(set, skew): &(JwkSet, Option<i64>)| -> Option<(Jwk, Option<i64>)> {
            let key = if kid.is_empty() && set.keys.len() == 1 {
                set.keys.first()
            } else {
                set.find(kid)
            };
            key.cloned().map(|k| (k, *skew))
        };
        let missing = || match kid {
            "" => format!("the token names no key (kid) and {url} has several"),
            kid => format!("{url} has no key `{kid}`"),
        };
        if let Some(found) = self.sets.lock().await.get(url).and_then(find) {
            return Ok(found);
        }
        if let Some(e) = self.failed.lock().await.get(url) {
            return Err(e.clone());
        }
        {
            let mut fetches = self.fetches.lock().await;
            let n = fetches.entry(url.to_string()).or_default();
            if *n >= 2 {
                return Err(missing());
            }
            *n += 1;
        }
        let fetched = match fetch(url, ctx, redactor).await {
            Ok(f) => f,
            Err(e) => {
                self.failed.lock().await.insert(url.to_string(), e.clone());
                return Err(e);
            }
        };
        let found = find(&fetched);
        self.sets.lock().await.insert(url.to_string(), fetched);
        found.ok_or_else(missing)
    }
}

async fn fetch(
    url: &str,
    ctx: &Context<'_>,
    redactor: &Redactor,
) -> Result<(JwkSet, Option<i64>), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("jwks_url `{url}`: {e}"))?;
    let what = format!("GET {url}");
    let reply = ctx
        .engine
        .exchange(&what, &parsed, redactor, &ctx.own, |c| {
            c.get(parsed.clone())
        })
        .await?;
    if reply.status != 200 {
        return Err(format!("{what}: {}", reply.status));
    }
    let set =
        serde_json::from_slice(&reply.body).map_err(|e| format!("{what}: not a JWKS ({e})"))?;
    Ok((set, reply.skew_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_shape() {
        assert!(looks_like_jwt("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."));
        assert!(!looks_like_jwt("2YotnFZFEjr1zCsicMWpAA"));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("..x"));
    }

    #[test]
    fn parts_are_read_or_named() {
        let token = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.";
        assert_eq!(
            part(token, 1, "claims")
                .ok()
                .and_then(|c| c.get("sub").cloned()),
            Some(Value::from("x"))
        );
        assert!(
            part("e30.!!!.", 1, "claims")
                .err()
                .unwrap_or_default()
                .contains("claims is not base64url")
        );
        assert!(
            part("e30.WzFd.", 1, "claims")
                .err()
                .unwrap_or_default()
                .contains("not a JSON object")
        );
    }
}
