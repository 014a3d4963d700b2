//! Single calls for credential probes: a token request, an introspection, a "who am I". Unlike
//! `fetch`, every HTTP answer is a result (a 401 `invalid_client` is exactly what a probe is
//! there to see); only a missing answer, a server error or a 429 is tried again. Token and
//! introspection requests are POSTs, but repeating one only mints or reads a token again.
//! No redirect is followed: a 307 would carry a posted secret to another origin.

use std::time::{Duration, SystemTime};

use backon::BackoffBuilder;
use reqwest::header::HeaderMap;

use super::client;
use super::fetch::{Engine, transport_error};
use super::redact::Redactor;
use super::retry::{self, Answer};

/// Probes run every hour: a short retry budget, the next snapshot tries again.
const MAX_ATTEMPTS: u32 = 3;
/// Token, introspection and JWKS answers are small; a server sending more is not one of them.
const MAX_BODY: usize = 1 << 20;

/// Where a probe's own 429s go: rows for the credential's (vendor, tenant), staged with
/// `source = scopetrail.self`.
pub struct Own<'a> {
    pub target: &'a super::fetch::Target,
    pub rows: &'a std::sync::Mutex<Vec<crate::model::Record>>,
}

pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: bytes::Bytes,
    /// The server's `Date` minus the local clock when the answer came, in milliseconds.
    pub skew_ms: Option<i64>,
}

impl Engine {
    /// Sends the request `build` makes (again on each attempt), following no redirect. `Err`
    /// is one line, already scrubbed by `redactor`, saying why no answer came.
    pub async fn exchange(
        &self,
        what: &str,
        url: &url::Url,
        redactor: &Redactor,
        own: &Own<'_>,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<Reply, String> {
        client::check_url(url)?;
        let mut steps = retry::backoff(MAX_ATTEMPTS.min(self.settings.max_attempts)).build();
        let mut attempts = 0;
        loop {
            attempts += 1;
            // A 5xx or 429 that persists is still the server's answer: it is kept, and
            // returned if no later attempt does better.
            let mut answered = None;
            // Built once: its method names the row of a 429, then it is sent.
            let request = build(&self.probe_client).build();
            let method = request
                .as_ref()
                .map_or_else(|_| "POST".to_string(), |r| r.method().to_string());
            let sent = match request {
                Ok(r) => self.probe_client.execute(r).await,
                Err(e) => Err(e),
            };
            let (told, failure) = match sent {
                Err(e) => (None, format!("no answer ({})", transport_error(&e))),
                Ok(response) => {
                    let status = response.status().as_u16();
                    let headers = response.headers().clone();
                    let now = SystemTime::now();
                    match read_capped(response).await {
                        Err(e) => (None, format!("{status}, {e}")),
                        Ok(body) => {
                            let skew_ms = skew(&headers, now);
                            let answer = retry::classify(status, &headers, &body, now);
                            if let Answer::RateLimited { .. } = answer {
                                let row = super::fetch::own_rate_limit(
                                    own.target,
                                    url,
                                    (&method, url.path()),
                                    status,
                                    &headers,
                                    now,
                                );
                                own.rows.lock().unwrap_or_else(|p| p.into_inner()).push(row);
                            }
                            match answer {
                                Answer::RateLimited { wait } | Answer::Transient { wait } => {
                                    let failure = format!("{status}");
                                    answered = Some(Reply {
                                        status,
                                        headers,
                                        body,
                                        skew_ms,
                                    });
                                    (wait, failure)
                                }
                                _ => {
                                    return Ok(Reply {
                                        status,
                                        headers,
                                        body,
                                        skew_ms,
                                    });
                                }
                            }
                        }
                    }
                }
            };
            let failure = redactor.scrub(&failure).into_owned();
            let Some(step) = steps.next().filter(|_| attempts < MAX_ATTEMPTS) else {
                return answered.ok_or_else(|| {
                    format!("{what}: {failure}; gave up after {attempts} attempts")
                });
            };
            let wait = told.unwrap_or_else(|| retry::full_jitter(step));
            if tokio::time::Instant::now() + wait > self.deadline || wait > Duration::from_secs(60)
            {
                return answered.ok_or_else(|| {
                    format!(
                        "{what}: {failure}; not waiting {}s for another attempt",
                        wait.as_secs()
                    )
                });
            }
            tracing::debug!(call = %what, %failure, wait_ms = wait.as_millis() as u64, "retrying");
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.cancel.cancelled() => return Err(format!("{what}: stopped")),
            }
        }
    }
}

/// The body, or why not: cut short, or larger than `MAX_BODY`.
async fn read_capped(mut response: reqwest::Response) -> Result<bytes::Bytes, String> {
    let mut body = bytes::BytesMut::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY {
                    return Err(format!(
                        "an answer larger than {} KiB, not read",
                        MAX_BODY / 1024
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body.freeze()),
            Err(e) => return Err(format!("body cut short ({})", transport_error(&e))),
        }
    }
}

/// Server time minus local time, from the `Date` header (one-second resolution).
pub fn skew(headers: &HeaderMap, now: SystemTime) -> Option<i64> {
    let date = headers.get(reqwest::header::DATE)?.to_str().ok()?;
    let server = httpdate::parse_http_date(date).ok()?;
    let ms = |t: SystemTime| -> Option<i64> {
        let d = t.duration_since(SystemTime::UNIX_EPOCH).ok()?;
        i64::try_from(d.as_millis()).ok()
    };
    // The header drops the milliseconds: compare whole seconds, so a synced clock shows 0.
    Some((ms(server)? / 1000 - ms(now)? / 1000) * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skew_from_the_date_header() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_400);
        let ahead =
            httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_090));
        let h = crate::http::test_headers(&[("date", &ahead)]);
        assert_eq!(skew(&h, now), Some(90_000));
        let same =
            httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        assert_eq!(
            skew(&crate::http::test_headers(&[("date", &same)]), now),
            Some(0)
        );
        assert_eq!(
            skew(&crate::http::test_headers(&[("date", "yesterday")]), now),
            None
        );
        assert_eq!(skew(&HeaderMap::new(), now), None);
    }
}
