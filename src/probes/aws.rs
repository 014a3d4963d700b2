//! AWS caller identity: STS GetCallerIdentity with the integration's profile, the way its SDK
//! would resolve credentials. An SDK that silently picked up another identity (an instance
//! role instead of the configured user) shows up as an `identity` that is not the expected one.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use aws_sdk_sts::config::interceptors::BeforeDeserializationInterceptorContextRef;
use aws_sdk_sts::config::{ConfigBag, Intercept, Region, RuntimeComponents};
use serde::Deserialize;

use super::jwt::check_url;
use super::{Context, Observation};
use crate::config::Credential;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The shared-config profile the integration uses; default: the standard chain.
    pub profile: Option<String>,
    pub region: Option<String>,
    /// Another STS endpoint (a VPC endpoint, or a test server).
    pub endpoint: Option<String>,
    /// The ARN the integration should run as; `*` matches any run of characters (a role
    /// session name).
    pub expected_identity: Option<String>,
}

impl Settings {
    pub fn check(&self, _credential: &Credential) -> Vec<String> {
        check_url("endpoint", self.endpoint.as_deref())
            .into_iter()
            .collect()
    }

    pub async fn probe(&self, _credential: &Credential, ctx: &Context<'_>, obs: &mut Observation) {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(p) = &self.profile {
            loader = loader.profile_name(p);
        }
        loader = loader.region(Region::new(
            self.region.clone().unwrap_or_else(|| "us-east-1".into()),
        ));
        let shared = loader.load().await;
        let seen = DateSeen::default();
        let mut builder = aws_sdk_sts::config::Builder::from(&shared).interceptor(seen.clone());
        if let Some(e) = &self.endpoint {
            builder = builder.endpoint_url(e);
        }
        let client = aws_sdk_sts::Client::from_conf(builder.build());
        obs.token_type = Some("aws_credentials".into());
        let mut redactor = ctx.redactor([]);
        if let Some(provider) = shared.credentials_provider() {
            use aws_credential_types::provider::ProvideCredentials;
            match provider.provide_credentials().await {
                Ok(c) => {
                    obs.credential_uid = Some(c.access_key_id().to_string());
                    let secrets = [Some(c.secret_access_key()), c.session_token()];
                    redactor = redactor.with(
                        secrets
                            .into_iter()
                            .flatten()
                            .map(|s| secrecy::SecretString::from(s.to_string())),
                    );
                }
                Err(e) => {
                    return obs.fail(
                        "no_credentials",
                        format!(
                            "the AWS credential chain{} found no credentials ({})",
                            self.profile
                                .as_ref()
                                .map(|p| format!(" (profile {p})"))
                                .unwrap_or_default(),
                            ctx.redactor([]).scrub(&e.to_string())
                        ),
                    );
                }
            }
        }
        match client.get_caller_identity().send().await {
            Ok(out) => {
                obs.identity = out.arn().map(str::to_string);
                obs.subject = out.user_id().map(str::to_string);
                obs.issuer = out.account().map(|a| format!("aws:{a}"));
                obs.token_type = obs.identity.as_deref().map(|arn| kind_of(arn).to_string());
            }
            Err(e) => {
                use aws_sdk_sts::error::ProvideErrorMetadata;
                let status = match e.code() {
                    Some(code) => code.to_string(),
                    None if e.as_service_error().is_none() => "unreachable".to_string(),
                    None => "error".to_string(),
                };
                let message = e
                    .message()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{}", aws_sdk_sts::error::DisplayErrorContext(&e)));
                // An expired session is the credential's state, not a failure of the probe.
                let status = match status.as_str() {
                    "ExpiredToken" | "ExpiredTokenException" => "expired".to_string(),
                    _ => status,
                };
                obs.fail(
                    &status,
                    format!("sts GetCallerIdentity: {}", redactor.scrub(&message)),
                );
            }
        }
        obs.skew_ms = seen.skew();
    }

    pub fn expected_identity(&self) -> Option<&str> {
        self.expected_identity.as_deref()
    }
}

/// `arn:aws:sts::1:assumed-role/r/s` -> `assumed_role`.
fn kind_of(arn: &str) -> &'static str {
    let resource = arn.splitn(6, ':').nth(5).unwrap_or("");
    match resource.split('/').next().unwrap_or("") {
        "assumed-role" => "assumed_role",
        "federated-user" => "federated_user",
        "user" => "iam_user",
        "root" => "root",
        _ => "aws_credentials",
    }
}

/// `expected` with `*` as a wildcard.
pub fn matches(expected: &str, actual: &str) -> bool {
    let mut parts = expected.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = actual.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for p in middle {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// The `Date` of STS's answer, for the clock skew.
#[derive(Debug, Clone, Default)]
struct DateSeen(Arc<Mutex<Option<i64>>>);

impl DateSeen {
    fn skew(&self) -> Option<i64> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Intercept for DateSeen {
    fn name(&self) -> &'static str {
        "scopetrail-date"
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_sts::error::BoxError> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(date) = context.response().headers().get("date")
            && let Ok(v) = reqwest::header::HeaderValue::from_str(date)
        {
            headers.insert(reqwest::header::DATE, v);
        }
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) =
            crate::http::exchange::skew(&headers, SystemTime::now());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_patterns() {
        let arn = "arn:aws:sts::123456789012:assumed-role/my-role-name/my-role-session-name";
        assert!(matches(
            "arn:aws:sts::123456789012:assumed-role/my-role-name/*",
            arn
        ));
        assert!(matches(arn, arn));
        assert!(!matches("arn:aws:iam::123456789012:user/Alice", arn));
        assert!(!matches(
            "arn:aws:sts::123456789012:assumed-role/other/*",
            arn
        ));
        assert!(matches("*:assumed-role/*/my-role-session-name", arn));
    }

    #[test]
    fn identity_kinds() {
        assert_eq!(kind_of("arn:aws:iam::123456789012:user/Alice"), "iam_user");
        assert_eq!(
            kind_of("arn:aws:sts::123456789012:assumed-role/r/s"),
            "assumed_role"
        );
        assert_eq!(
            kind_of("arn:aws:sts::123456789012:federated-user/f"),
            "federated_user"
        );
    }
}
