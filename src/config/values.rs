//! Value types of the configuration files, each parsed (and its errors positioned) as it is
//! read.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Deserializer, de::Error as _};

const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 86_400);

/// A duration written like `15m`, `1h`, `7d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

impl Dur {
    pub fn ms(self) -> i64 {
        i64::try_from(self.0.as_millis()).unwrap_or(i64::MAX)
    }
    pub fn chrono(self) -> chrono::Duration {
        chrono::Duration::milliseconds(self.ms())
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let d = humantime::parse_duration(&text).map_err(|e| {
            D::Error::custom(format!(
                "invalid duration {text:?} ({e}); write it like \"15m\", \"1h\" or \"7d\""
            ))
        })?;
        // Times plus durations must stay within what dates can hold.
        if d > MAX_DURATION {
            return Err(D::Error::custom(format!(
                "duration {text:?} is too long: at most 100 years"
            )));
        }
        Ok(Dur(d))
    }
}

/// A name that becomes part of object keys and ids: tenants, sources, jobs, vendors.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(pub String);

impl Name {
    pub fn check(text: &str) -> Result<(), String> {
        let ok = !text.is_empty()
            && text.len() <= 64
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            && text.as_bytes()[0].is_ascii_alphanumeric();
        if ok {
            Ok(())
        } else {
            Err(format!(
                "invalid name {text:?}: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit (names become part of object keys)"
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Name::check(&text).map_err(D::Error::custom)?;
        Ok(Name(text))
    }
}

/// An RFC 3339 instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instant(pub DateTime<Utc>);

impl<'de> Deserialize<'de> for Instant {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // TOML has a native datetime; accept it as well as a string.
        let value = toml::Value::deserialize(d)?;
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Datetime(dt) => dt.to_string(),
            other => {
                return Err(D::Error::custom(format!(
                    "expected an RFC 3339 time, found {}",
                    other.type_str()
                )));
            }
        };
        DateTime::parse_from_rfc3339(&text)
            .map(|t| Instant(t.with_timezone(&Utc)))
            .map_err(|e| {
                D::Error::custom(format!(
                    "invalid time {text:?} ({e}); write it like 2026-03-09T01:00:00Z"
                ))
            })
    }
}

/// Where a secret is: configuration files hold these references, never the secrets.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// `env:NAME`
    Env(String),
    /// `file:PATH`, relative to the configuration file's folder.
    File(PathBuf),
    /// `credential:NAME`: a systemd credential, `$CREDENTIALS_DIRECTORY/NAME`.
    Systemd(String),
}

impl SecretRef {
    pub fn parse(text: &str) -> Result<SecretRef, String> {
        let bad = || {
            // Never echo the value: someone may have pasted the secret itself.
            "expected a secret reference: env:NAME, file:PATH or credential:NAME (configuration files hold references to secrets, never the secrets)".to_string()
        };
        let (scheme, rest) = text.split_once(':').ok_or_else(bad)?;
        if rest.is_empty() {
            return Err(bad());
        }
        match scheme {
            "env" => Ok(SecretRef::Env(rest.to_string())),
            "file" => Ok(SecretRef::File(PathBuf::from(rest))),
            "credential" if !rest.contains('/') => Ok(SecretRef::Systemd(rest.to_string())),
            _ => Err(bad()),
        }
    }

    /// Reads the secret. Errors name the reference, never the value.
    pub fn resolve(&self, base: &Path) -> Result<SecretString, String> {
        let value = match self {
            SecretRef::Env(name) => std::env::var(name)
                .map_err(|_| format!("secret {self}: environment variable {name} is not set"))?,
            SecretRef::File(path) => {
                let path = base.join(path);
                std::fs::read_to_string(&path)
                    .map_err(|e| format!("secret {self}: cannot read {}: {e}", path.display()))?
            }
            SecretRef::Systemd(name) => {
                let dir = std::env::var_os("CREDENTIALS_DIRECTORY").ok_or_else(|| {
                    format!(
                        "secret {self}: $CREDENTIALS_DIRECTORY is not set (systemd sets it for units with LoadCredential=)"
                    )
                })?;
                let path = Path::new(&dir).join(name);
                std::fs::read_to_string(&path)
                    .map_err(|e| format!("secret {self}: cannot read {}: {e}", path.display()))?
            }
        };
        // Files and credentials usually end with a newline that is not part of the secret.
        let value = value.trim_end_matches(['\r', '\n']);
        if value.is_empty() {
            return Err(format!("secret {self} is empty"));
        }
        Ok(SecretString::from(value.to_string()))
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(n) => write!(f, "env:{n}"),
            SecretRef::File(p) => write!(f, "file:{}", p.display()),
            SecretRef::Systemd(n) => write!(f, "credential:{n}"),
        }
    }
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretRef({self})")
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        SecretRef::parse(&text).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn a_pasted_secret_is_refused_without_being_echoed() {
        let e =
            SecretRef::parse("ghp_16C7e42F292c6912E7710c838347Ae178B4a").expect_err("not a ref");
        assert!(!e.contains("ghp_"), "{e}");
        let e = SecretRef::parse("sk_live:abc").expect_err("unknown scheme");
        assert!(!e.contains("abc"), "{e}");
    }

    #[test]
    fn file_and_systemd_references_resolve() -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        std::fs::write(dir.path().join("token"), "s3cr3t\n").map_err(|e| e.to_string())?;
        let r = SecretRef::parse("file:token")?;
        assert_eq!(r.resolve(dir.path())?.expose_secret(), "s3cr3t");
        let missing = SecretRef::parse("file:nope")?
            .resolve(dir.path())
            .expect_err("missing");
        assert!(missing.contains("file:nope"), "{missing}");
        Ok(())
    }
}
