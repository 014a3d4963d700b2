//! Secrets never reach a log line, an error, a manifest or a file (DESIGN §7). Requests
//! carry them only in headers marked sensitive; anything built from a vendor's answer or a
//! transport error passes through `Redactor::scrub` before it is shown or stored.

use std::borrow::Cow;

use secrecy::{ExposeSecret, SecretString};

/// Query parameters that carry credentials in some APIs' URLs.
const SECRET_PARAMS: &[&str] = &[
    "access_token",
    "token",
    "key",
    "api_key",
    "apikey",
    "client_secret",
    "code",
    "sig",
    "signature",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
];

pub const REDACTED: &str = "[redacted]";

#[derive(Default, Clone)]
pub struct Redactor {
    secrets: Vec<SecretString>,
}

impl Redactor {
    pub fn new(secrets: impl IntoIterator<Item = SecretString>) -> Self {
        Redactor {
            // A very short "secret" would redact ordinary words; configs refuse those anyway.
            secrets: secrets
                .into_iter()
                .filter(|s| s.expose_secret().len() >= 6)
                .collect(),
        }
    }

    /// These secrets too (a probe's client secret, the token it was given).
    pub fn with(&self, more: impl IntoIterator<Item = SecretString>) -> Redactor {
        let mut out = self.clone();
        out.secrets.extend(Redactor::new(more).secrets);
        out
    }

    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for secret in &self.secrets {
            let s = secret.expose_secret();
            if out.contains(s) {
                out = Cow::Owned(out.replace(s, REDACTED));
            }
        }
        if out.contains('?') {
            out = Cow::Owned(scrub_query_params(&out));
        }
        out
    }
}

/// `…?token=abc&x=1` -> `…?token=[redacted]&x=1`, wherever a URL appears in the text.
fn scrub_query_params(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(q) = rest.find(['?', '&']) {
        out.push_str(&rest[..=q]);
        rest = &rest[q + 1..];
        let name_end = rest.find('=').unwrap_or(0);
        let name = &rest[..name_end];
        if name_end > 0
            && !name.contains([' ', '&', '?', '/'])
            && SECRET_PARAMS.iter().any(|p| p.eq_ignore_ascii_case(name))
        {
            out.push_str(name);
            out.push('=');
            out.push_str(REDACTED);
            let value_end = rest[name_end + 1..]
                .find(|c: char| c == '&' || c == '#' || c.is_whitespace() || c == '"' || c == ')')
                .map_or(rest.len(), |i| name_end + 1 + i);
            rest = &rest[value_end..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_secrets_and_secret_parameters() {
        let r = Redactor::new([SecretString::from("ghp_s3cr3tT0ken")]);
        assert_eq!(
            r.scrub("error sending request for url (https://x/y?access_token=abc&page=2): Bearer ghp_s3cr3tT0ken"),
            "error sending request for url (https://x/y?access_token=[redacted]&page=2): Bearer [redacted]"
        );
        assert_eq!(r.scrub("nothing here"), "nothing here");
        assert_eq!(
            r.scrub("https://x/y?page=2&cursor=v1_9"),
            "https://x/y?page=2&cursor=v1_9"
        );
    }
}
