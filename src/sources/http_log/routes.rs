//! `api_operation` for a logged path: the route template with ids removed
//! (`/api/v1/items/8412` -> `/api/v1/items/{id}`), from templates configured per vendor first,
//! else by recognizing ids.

/// A configured template: `/repos/{owner}/{repo}/hooks/{id}`; `{...}` matches any one segment.
#[derive(Debug, Clone)]
pub struct Template {
    text: String,
    segments: Vec<Option<String>>,
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, String> {
        if !text.starts_with('/') {
            return Err(format!("route template {text:?} must start with /"));
        }
        let segments = text
            .split('/')
            .map(|s| (!(s.starts_with('{') && s.ends_with('}'))).then(|| s.to_string()))
            .collect();
        Ok(Template {
            text: text.to_string(),
            segments,
        })
    }

    fn matches(&self, path: &str) -> bool {
        let mut parts = path.split('/');
        for seg in &self.segments {
            match (seg, parts.next()) {
                (_, None) => return false,
                (Some(literal), Some(part)) if literal != part => return false,
                _ => {}
            }
        }
        parts.next().is_none()
    }
}

/// Writes the operation for `path` into `out`.
pub fn operation(templates: &[Template], path: &str, out: &mut String) {
    out.clear();
    if let Some(t) = templates.iter().find(|t| t.matches(path)) {
        out.push_str(&t.text);
        return;
    }
    let mut rest = path;
    loop {
        let end = memchr::memchr(b'/', rest.as_bytes()).unwrap_or(rest.len());
        let segment = &rest[..end];
        out.push_str(if looks_like_id(segment) {
            "{id}"
        } else {
            segment
        });
        if end == rest.len() {
            break;
        }
        out.push('/');
        rest = &rest[end + 1..];
    }
}

/// Numbers, UUIDs and hex ids, long tokens with digits: what varies per call.
fn looks_like_id(segment: &str) -> bool {
    let bytes = segment.as_bytes();
    // Most segments are words: no digit, no id, nothing more to look at.
    let digits = bytes.iter().filter(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return false;
    }
    let hex = || bytes.iter().all(|b| b.is_ascii_hexdigit() || *b == b'-');
    let token = || {
        bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
    };
    digits == bytes.len() || (bytes.len() >= 8 && hex()) || (bytes.len() >= 16 && token())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(templates: &[&str], path: &str) -> String {
        let t: Vec<Template> = templates
            .iter()
            .map(|t| Template::parse(t).unwrap_or_else(|e| panic!("{e}")))
            .collect();
        let mut out = String::new();
        operation(&t, path, &mut out);
        out
    }

    #[test]
    fn ids_are_recognized() {
        assert_eq!(op(&[], "/api/v1/items/8412"), "/api/v1/items/{id}");
        assert_eq!(
            op(
                &[],
                "/repos/acme/app/hooks/12345/deliveries/550e8400-e29b-41d4-a716-446655440000"
            ),
            "/repos/acme/app/hooks/{id}/deliveries/{id}"
        );
        assert_eq!(op(&[], "/v2/users/me"), "/v2/users/me");
        assert_eq!(
            op(&[], "/api/v1/oauth2"),
            "/api/v1/oauth2",
            "short words with digits stay"
        );
    }

    #[test]
    fn configured_templates_win() {
        let t = [
            "/repos/{owner}/{repo}/releases/latest",
            "/repos/{owner}/{repo}",
        ];
        assert_eq!(
            op(&t, "/repos/acme/erp/releases/latest"),
            "/repos/{owner}/{repo}/releases/latest"
        );
        assert_eq!(op(&t, "/repos/acme/erp"), "/repos/{owner}/{repo}");
        assert_eq!(
            op(&t, "/repos/acme/erp/pulls/7"),
            "/repos/acme/erp/pulls/{id}",
            "no template: ids only"
        );
        assert!(Template::parse("repos/{x}").is_err());
    }
}
