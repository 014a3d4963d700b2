//! Per-column handling of personal data (DESIGN §7): keep, keyed hash or drop, applied before
//! a record is staged, so neither the state area nor the export ever holds what was dropped.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::Sha256;

use crate::model::Record;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrivacyAction {
    Keep,
    /// Keyed SHA-256 (HMAC): equal values still join, but cannot be read back without the key.
    Hash,
    Drop,
}

#[derive(Clone, Default)]
pub struct Privacy {
    pub key: Option<SecretString>,
    /// Column name -> action, for the columns the model marks personal.
    pub columns: BTreeMap<String, PrivacyAction>,
}

impl Privacy {
    pub fn apply(&self, record: &mut Record) {
        for (column, action) in &self.columns {
            let Some(field) = record.text_field_mut(column) else {
                continue;
            };
            let Some(value) = field.as_deref() else {
                continue;
            };
            match action {
                PrivacyAction::Keep => {}
                PrivacyAction::Drop => *field = None,
                PrivacyAction::Hash => {
                    let hashed = self.hash(value);
                    *field = hashed;
                }
            }
        }
    }

    /// `hmac:` and 32 hex digits; `None` (the value is dropped) if there is no key, which
    /// `validate` refuses anyway.
    fn hash(&self, value: &str) -> Option<String> {
        let key = self.key.as_ref()?;
        let mut mac = Hmac::<Sha256>::new_from_slice(key.expose_secret().as_bytes()).ok()?;
        mac.update(value.as_bytes());
        Some(format!(
            "hmac:{}",
            hex::encode(&mac.finalize().into_bytes()[..16])
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Denial;

    fn denial() -> Record {
        Denial {
            actor_user: Some("alice@example.com".into()),
            src_ip: Some("203.0.113.9".into()),
            user_agent: Some("sdk/1.0".into()),
            ..Default::default()
        }
        .into()
    }

    #[test]
    fn keep_hash_drop() {
        let privacy = Privacy {
            key: Some(SecretString::from("k".to_string())),
            columns: BTreeMap::from([
                ("actor_user".to_string(), PrivacyAction::Hash),
                ("src_ip".to_string(), PrivacyAction::Drop),
            ]),
        };
        let mut r = denial();
        privacy.apply(&mut r);
        let Record::Denials(d) = &r else {
            unreachable!()
        };
        let hashed = d.actor_user.clone().unwrap_or_default();
        assert!(
            hashed.starts_with("hmac:") && hashed.len() == 37,
            "{hashed}"
        );
        assert!(!hashed.contains("alice"));
        assert_eq!(d.src_ip, None);
        assert_eq!(d.user_agent.as_deref(), Some("sdk/1.0"));
        let mut again = denial();
        privacy.apply(&mut again);
        assert_eq!(
            r, again,
            "hashing is deterministic, so hashed values still join"
        );
        let other_key = Privacy {
            key: Some(SecretString::from("other".to_string())),
            ..privacy.clone()
        };
        let mut third = denial();
        other_key.apply(&mut third);
        assert_ne!(r, third, "the hash is keyed");
    }
}
