//! The baseline of `bench/github.sh`: the least any client of the deliveries list must do.
//! Fetch every page (following Link rel="next"), parse each body into JSON values, count the
//! items. No staging, no export, no retries or pacing.
//!
//!   BENCH_TOKEN=... fetch_pages <base url>

use anyhow::{Context, Result, bail};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [base] = args.as_slice() else {
        bail!("usage: fetch_pages <base url>");
    };
    let token = std::env::var("BENCH_TOKEN").context("BENCH_TOKEN")?;
    // The same client settings as scopetrail's (gzip offered, keep-alive), so the
    // difference is what happens to the pages.
    let client = reqwest::Client::builder().gzip(true).build()?;
    let mut url = Some(format!(
        "{}/orgs/bench/hooks/1/deliveries?per_page=100",
        base.trim_end_matches('/')
    ));
    let mut count = 0usize;
    while let Some(at) = url.take() {
        let response = client
            .get(&at)
            .bearer_auth(&token)
            .header("accept", "application/vnd.github+json")
            .send()
            .await?
            .error_for_status()?;
        url = response
            .headers()
            .get(reqwest::header::LINK)
            .and_then(|v| v.to_str().ok())
            .and_then(next_link);
        let body = response.bytes().await?;
        let items: Vec<Value> =
            serde_json::from_slice(&body).with_context(|| format!("{at}: not a JSON array"))?;
        count += items.len();
    }
    println!("{count}");
    Ok(())
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
