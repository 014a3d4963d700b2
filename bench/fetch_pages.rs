//! The baseline of `bench/github.sh` and `bench/okta.sh`: the least any client of the list
//! must do. Fetch every page (following Link rel="next"), parse each body, count the items.
//! No staging, no export, no retries or pacing.
//!
//!   BENCH_TOKEN=... fetch_pages [github] <base url>
//!   BENCH_TOKEN=... fetch_pages okta <base url> <now, RFC 3339>
//!
//! **github**: the deliveries of org `bench`'s hook 1, 100 a page, each parsed into a
//! `serde_json::Value`. **okta**: the System Log of the 7 days before `now` (scopetrail's
//! first collection: its initial lookback), oldest first, 1000 a page, as scopetrail asks for
//! it; each event is parsed whole (every byte checked) but borrowed (`&RawValue`), not built
//! into a `Value` tree: for 2 KB nested events with the system allocator, the tree alone cost
//! more than scopetrail's whole pipeline (which reads a few fields of each, borrowed), and
//! would not be the least a client must do.

use anyhow::{Context, Result, bail};
use chrono::{DateTime, FixedOffset, SecondsFormat};
use serde_json::Value;
use serde_json::value::RawValue;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let token = std::env::var("BENCH_TOKEN").context("BENCH_TOKEN")?;
    let github = |base: &str| {
        (
            format!(
                "{}/orgs/bench/hooks/1/deliveries?per_page=100",
                base.trim_end_matches('/')
            ),
            format!("Bearer {token}"),
            "application/vnd.github+json",
            values as Parse,
        )
    };
    let (first, auth, accept, parse) = match args.as_slice() {
        [base] => github(base),
        [mode, base] if mode == "github" => github(base),
        [mode, base, now] if mode == "okta" => {
            let now = DateTime::parse_from_rfc3339(now).context("now")?;
            let time = |t: DateTime<FixedOffset>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
            let mut url = url::Url::parse(base)?.join("/api/v1/logs")?;
            url.query_pairs_mut()
                .append_pair("since", &time(now - chrono::Duration::days(7)))
                .append_pair("until", &time(now))
                .append_pair("limit", "1000")
                .append_pair("sortOrder", "ASCENDING");
            (
                url.to_string(),
                format!("SSWS {token}"),
                "application/json",
                raw as Parse,
            )
        }
        _ => bail!(
            "usage: fetch_pages [github] <base url>, or fetch_pages okta <base url> <now, RFC 3339>"
        ),
    };
    // The same client settings as scopetrail's (gzip offered, keep-alive), so the
    // difference is what happens to the pages.
    let client = reqwest::Client::builder().gzip(true).build()?;
    let mut url = Some(first);
    let mut count = 0usize;
    while let Some(at) = url.take() {
        let response = client
            .get(&at)
            .header("authorization", &auth)
            .header("accept", accept)
            .send()
            .await?
            .error_for_status()?;
        // Okta sends `rel="self"` and `rel="next"` in two Link headers.
        url = response
            .headers()
            .get_all(reqwest::header::LINK)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(next_link);
        let body = response.bytes().await?;
        count += parse(&body).with_context(|| format!("{at}: not a JSON array"))?;
    }
    println!("{count}");
    Ok(())
}

/// Parses a page, returns its number of items.
type Parse = fn(&[u8]) -> serde_json::Result<usize>;

fn values(body: &[u8]) -> serde_json::Result<usize> {
    serde_json::from_slice::<Vec<Value>>(body).map(|items| items.len())
}

fn raw(body: &[u8]) -> serde_json::Result<usize> {
    serde_json::from_slice::<Vec<&RawValue>>(body).map(|items| items.len())
}

/// The target of `rel="next"` in a Link header.
fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim() == r#"rel="next""#)
            .then(|| {
                target
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
    })
}
