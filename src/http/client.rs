//! The one reqwest client: rustls with verified TLS (the platform's roots, plus a CA bundle
//! when configured), `http://` only to loopback, timeouts, gzip, and a User-Agent that names
//! scopetrail so vendors' logs tell its calls from the integration's.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use url::{Host, Url};

pub const USER_AGENT: &str = concat!("scopetrail/", env!("CARGO_PKG_VERSION"));

/// `[http]` in the main configuration file.
#[derive(Debug, Clone)]
pub struct Settings {
    /// PEM bundle of extra roots (a corporate TLS-inspecting proxy's CA), added to the
    /// platform's.
    pub ca_bundle: Option<PathBuf>,
    /// For one whole request, body included.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// At most this share of a vendor's advertised rate limit is used by scopetrail.
    pub budget_share: f64,
    /// scopetrail stops calling when `remaining` falls under this share of the limit.
    pub reserve: f64,
    /// Attempts per request before the source gives up for this run.
    pub max_attempts: u32,
    /// Pages per list and run; the rest is read by the next run.
    pub max_pages: u64,
    /// How long one run may spend collecting from vendor APIs, waits included.
    pub deadline: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            ca_bundle: None,
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            budget_share: 0.10,
            reserve: 0.20,
            max_attempts: 6,
            max_pages: 10_000,
            deadline: Duration::from_secs(45 * 60),
        }
    }
}

/// Whether the client follows redirects: list reads do (within the checks below); credential
/// probes never do, since a 307 would carry a posted client secret or token to another origin.
#[derive(Clone, Copy, PartialEq)]
pub enum Redirects {
    Follow,
    Never,
}

pub fn build(settings: &Settings, redirects: Redirects) -> Result<reqwest::Client> {
    let policy = match redirects {
        Redirects::Never => reqwest::redirect::Policy::none(),
        // A redirect must not lead a bearer token to plain http on the network.
        Redirects::Follow => reqwest::redirect::Policy::custom(|attempt| {
            if attempt.previous().len() >= 5 {
                attempt.error("more than 5 redirects")
            } else if let Err(e) = check_url(attempt.url()) {
                attempt.error(e)
            } else {
                attempt.follow()
            }
        }),
    };
    let mut builder = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .timeout(settings.timeout)
        .connect_timeout(settings.connect_timeout)
        .gzip(true)
        .redirect(policy);
    if let Some(path) = &settings.ca_bundle {
        let pem = std::fs::read(path)
            .with_context(|| format!("[http] ca_bundle: cannot read {}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).with_context(|| {
            format!(
                "[http] ca_bundle: {} is not a PEM certificate bundle",
                path.display()
            )
        })?;
        builder = builder.tls_certs_merge(certs);
    }
    builder.build().context("cannot set up the HTTP client")
}

/// `https://` anywhere; `http://` only to this machine, where tests and local proxies are.
pub fn check_url(url: &Url) -> Result<(), String> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" => Err(format!(
            "{}: plain http is refused except to loopback; use https://",
            redacted_origin(url)
        )),
        other => Err(format!(
            "{}: unsupported scheme {other}",
            redacted_origin(url)
        )),
    }
}

/// A next-page link must stay where the first page was: the credential goes with it.
pub fn same_origin(current: &Url, next: &Url) -> Result<(), String> {
    if current.origin() == next.origin() {
        Ok(())
    } else {
        Err(format!(
            "the next-page link leads to another origin ({}); not followed, since the token would go with it",
            redacted_origin(next)
        ))
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

fn redacted_origin(url: &Url) -> String {
    format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback() {
        let ok = |s: &str| check_url(&Url::parse(s).expect("url")).is_ok();
        assert!(ok("https://api.github.com/orgs/acme/hooks"));
        assert!(ok("http://127.0.0.1:8080/x"));
        assert!(ok("http://127.9.9.9/x"));
        assert!(ok("http://[::1]:80/x"));
        assert!(ok("http://localhost:3000/x"));
        assert!(!ok("http://api.github.com/x"));
        assert!(!ok("http://10.0.0.1/x"));
        assert!(!ok("ftp://127.0.0.1/x"));
    }

    #[test]
    fn next_links_stay_on_their_origin() {
        let u = |s: &str| Url::parse(s).expect("url");
        let first = u("https://api.github.com/orgs/acme/hooks/1/deliveries?per_page=100");
        assert!(
            same_origin(
                &first,
                &u("https://api.github.com/orgs/acme/hooks/1/deliveries?cursor=v1_9")
            )
            .is_ok()
        );
        assert!(
            same_origin(
                &first,
                &u("https://evil.example/orgs/acme/hooks/1/deliveries")
            )
            .is_err()
        );
        assert!(same_origin(&first, &u("http://api.github.com/x")).is_err());
        assert!(same_origin(&first, &u("https://api.github.com:8443/x")).is_err());
    }

    #[test]
    fn user_agent_names_scopetrail_and_its_version() {
        assert!(USER_AGENT.starts_with(&format!("scopetrail/{}", env!("CARGO_PKG_VERSION"))));
    }
}
