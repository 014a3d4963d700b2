//! The engine's HTTP side, shared by every vendor source (DESIGN §3, §7): one client
//! (`client`), retries with jitter and the servers' own wait hints (`retry`), pacing within a
//! share of the advertised rate limit (`pace`), pagination styles (`paging`), what a 401/403
//! means (`denial`, `challenge`), redaction of secrets (`redact`), and the fetcher that puts
//! them together and also reads saved responses from files (`fetch`); single calls whose
//! every answer matters, for credential probes (`exchange`).

pub mod challenge;
pub mod client;
pub mod denial;
pub mod exchange;
pub mod fetch;
pub mod pace;
pub mod paging;
pub mod redact;
pub mod retry;

pub use client::Settings;
pub use fetch::{Api, Engine, Page, Pages, Token, Transport};
pub use paging::Paging;

/// A header map from pairs, for the unit tests of the pieces above.
#[cfg(test)]
pub(crate) fn test_headers(pairs: &[(&str, &str)]) -> reqwest::header::HeaderMap {
    let mut h = reqwest::header::HeaderMap::new();
    for (k, v) in pairs {
        h.insert(
            reqwest::header::HeaderName::from_bytes(k.as_bytes()).expect("name"),
            reqwest::header::HeaderValue::from_str(v).expect("value"),
        );
    }
    h
}
