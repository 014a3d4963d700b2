//! `WWW-Authenticate` challenges (RFC 7235, RFC 6750 §3): what a 401/403 says went wrong.

/// The parts of a challenge that explain a denial.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    /// `invalid_token`, `insufficient_scope`, `invalid_request`...
    pub error: Option<String>,
    pub description: Option<String>,
    /// The scopes the resource needs (`scope=`), split on spaces.
    pub scope: Vec<String>,
}

/// The most telling challenge of a header: the first that carries an `error`, else the
/// first. `None` if the header does not parse.
pub fn parse(header: &str) -> Option<Challenge> {
    let challenges = http_auth::parse_challenges(header).ok()?;
    let pick = challenges
        .iter()
        .find(|c| {
            c.params
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("error"))
        })
        .or_else(|| challenges.first())?;
    let param = |name: &str| {
        pick.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_unescaped())
    };
    Some(Challenge {
        scheme: pick.scheme.to_string(),
        error: param("error"),
        description: param("error_description"),
        scope: param("scope")
            .map(|s| s.split_ascii_whitespace().map(str::to_string).collect())
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6750_examples() {
        let c = parse(r#"Bearer realm="example", error="invalid_token", error_description="The access token expired""#)
            .expect("parses");
        assert_eq!(c.scheme, "Bearer");
        assert_eq!(c.error.as_deref(), Some("invalid_token"));
        assert_eq!(c.description.as_deref(), Some("The access token expired"));
        assert_eq!(
            parse(r#"Bearer realm="example""#).and_then(|c| c.error),
            None
        );
    }

    #[test]
    fn insufficient_scope_names_the_scopes() {
        let c = parse(r#"Basic realm="x", Bearer error="insufficient_scope", scope="gl:journal:write gl:journal:read""#)
            .expect("parses");
        assert_eq!(c.error.as_deref(), Some("insufficient_scope"));
        assert_eq!(c.scope, vec!["gl:journal:write", "gl:journal:read"]);
    }

    #[test]
    fn garbage_is_none() {
        assert_eq!(parse("Bearer error=\"unterminated"), None);
    }
}
