//! What a 401/403 from a vendor means for scopetrail's own credential, in one line (DESIGN §7):
//! an expired or invalid token, a missing scope (from `WWW-Authenticate`, or GitHub's
//! `X-Accepted-OAuth-Scopes` against `X-OAuth-Scopes`, naming the scope), or a missing
//! permission.

use reqwest::header::HeaderMap;

use super::challenge;
use super::retry::header;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    ExpiredOrInvalid,
    /// The scopes the call needs (any one of them), and those the token has when known.
    InsufficientScope {
        needs: Vec<String>,
        has: Option<Vec<String>>,
    },
    MissingPermission,
}

#[derive(Debug, Clone)]
pub struct Explained {
    pub cause: Cause,
    /// `invalid_token`, `insufficient_scope`... from `WWW-Authenticate`.
    pub auth_error: Option<String>,
    /// The vendor's message from the body.
    pub message: Option<String>,
    /// The vendor's error code from the body: Okta's `E0000006`, Stripe's `code` or `type`.
    pub code: Option<String>,
    pub line: String,
}

/// `what` names the call (`github GET /orgs/acme/hooks`).
pub fn explain(what: &str, status: u16, headers: &HeaderMap, body: &[u8]) -> Explained {
    let challenge = header(headers, "www-authenticate").and_then(challenge::parse);
    let message = body_message(body);
    let accepted = header(headers, "x-accepted-oauth-scopes").map(scope_list);
    let granted = header(headers, "x-oauth-scopes").map(scope_list);
    let auth_error = challenge.as_ref().and_then(|c| c.error.clone());
    let description = challenge.as_ref().and_then(|c| c.description.clone());
    let cause = match (auth_error.as_deref(), &accepted) {
        (Some("insufficient_scope"), _) => Cause::InsufficientScope {
            needs: challenge.map(|c| c.scope).unwrap_or_default(),
            has: granted.clone(),
        },
        (Some("invalid_token"), _) => Cause::ExpiredOrInvalid,
        (_, Some(needs))
            if !needs.is_empty()
                && granted
                    .as_ref()
                    .is_some_and(|has| !needs.iter().any(|n| implied_by(n, has))) =>
        {
            Cause::InsufficientScope {
                needs: needs.clone(),
                has: granted.clone(),
            }
        }
        _ if status == 401 => Cause::ExpiredOrInvalid,
        _ => Cause::MissingPermission,
    };
    let detail = description
        .or_else(|| message.clone())
        .map(|m| format!(" ({})", one_line(&m)))
        .unwrap_or_default();
    let line = match &cause {
        Cause::ExpiredOrInvalid => format!(
            "{what}: {status}: the token is expired, revoked or invalid{detail}; replace the credential's token"
        ),
        Cause::InsufficientScope { needs, has } => {
            let needs = if needs.is_empty() {
                "a scope the server did not name".to_string()
            } else if needs.len() == 1 {
                format!("the scope {}", needs[0])
            } else {
                format!("one of the scopes {}", needs.join(", "))
            };
            let has = match has {
                Some(h) if h.is_empty() => "; it has none".to_string(),
                Some(h) => format!("; it has {}", h.join(", ")),
                None => String::new(),
            };
            format!("{what}: {status}: insufficient scope: the token needs {needs}{has}")
        }
        Cause::MissingPermission => format!(
            "{what}: {status}: missing permission{detail}; the token is valid but its user or app may not read this"
        ),
    };
    Explained {
        cause,
        auth_error,
        message,
        code: body_code(body),
        line,
    }
}

/// GitHub's scope hierarchy: `repo` covers `read:repo_hook`, `admin:org` covers `read:org`...
fn implied_by(needed: &str, has: &[String]) -> bool {
    has.iter().any(|h| {
        h == needed
            || needed.split_once(':').is_some_and(|(_, base)| {
                h == &format!("admin:{base}") || h == &format!("write:{base}")
            })
            || (h == "repo" && needed.ends_with("repo_hook"))
    })
}

fn scope_list(header: &str) -> Vec<String> {
    header
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// `message` (GitHub, Okta's `errorSummary`, OAuth's `error_description`) from a JSON body.
pub fn body_message(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    ["message", "errorSummary", "error_description", "error"]
        .iter()
        .find_map(|k| match v.get(k) {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Object(o)) => o
                .get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string),
            _ => None,
        })
}

/// The error code of a JSON error body: Okta's `errorCode`, Stripe's `error.code` (or its
/// `error.type` when it has no code), OAuth's `error`.
pub fn body_code(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let text = |v: Option<&serde_json::Value>| v?.as_str().map(str::to_string);
    text(v.get("errorCode"))
        .or_else(|| text(v.pointer("/error/code")))
        .or_else(|| text(v.pointer("/error/type")))
        .or_else(|| text(v.get("error")))
}

fn one_line(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut out: String = s.chars().take(200).collect();
    if s.chars().count() > 200 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::test_headers as headers;

    #[test]
    fn github_names_the_missing_scope() {
        let h = headers(&[
            ("x-accepted-oauth-scopes", "admin:org_hook"),
            ("x-oauth-scopes", "read:audit_log, repo"),
        ]);
        let e = explain(
            "github GET /orgs/acme/hooks",
            403,
            &h,
            br#"{"message":"Not Found"}"#,
        );
        assert_eq!(
            e.line,
            "github GET /orgs/acme/hooks: 403: insufficient scope: the token needs the scope admin:org_hook; it has read:audit_log, repo"
        );
        // `repo` covers the repository hook scopes.
        let h = headers(&[
            (
                "x-accepted-oauth-scopes",
                "admin:repo_hook, read:repo_hook, repo",
            ),
            ("x-oauth-scopes", "repo"),
        ]);
        let e = explain("x", 403, &h, b"{}");
        assert_eq!(e.cause, Cause::MissingPermission);
    }

    #[test]
    fn bearer_challenges() {
        let h = headers(&[(
            "www-authenticate",
            r#"Bearer error="insufficient_scope", scope="okta.logs.read""#,
        )]);
        let e = explain("okta GET /api/v1/logs", 403, &h, b"");
        assert!(
            e.line
                .ends_with("insufficient scope: the token needs the scope okta.logs.read"),
            "{}",
            e.line
        );
        let h = headers(&[(
            "www-authenticate",
            r#"Bearer error="invalid_token", error_description="The access token expired""#,
        )]);
        let e = explain("x", 401, &h, b"");
        assert_eq!(e.cause, Cause::ExpiredOrInvalid);
        assert!(e.line.contains("The access token expired"), "{}", e.line);
    }

    #[test]
    fn plain_401_and_403() {
        let e = explain(
            "github GET /orgs/acme/hooks",
            401,
            &HeaderMap::new(),
            br#"{"message":"Bad credentials"}"#,
        );
        assert_eq!(
            e.line,
            "github GET /orgs/acme/hooks: 401: the token is expired, revoked or invalid (Bad credentials); replace the credential's token"
        );
        // A revoked token has no scopes to list: GitHub's 401 names only what the call accepts.
        let h = headers(&[("x-accepted-oauth-scopes", "admin:org_hook")]);
        let e = explain("x", 401, &h, br#"{"message":"Bad credentials"}"#);
        assert_eq!(e.cause, Cause::ExpiredOrInvalid);
        let e = explain(
            "x",
            403,
            &HeaderMap::new(),
            br#"{"message":"Must have admin rights"}"#,
        );
        assert_eq!(e.cause, Cause::MissingPermission);
        assert!(e.line.contains("Must have admin rights"));
    }
}
