//! When to try a request again and how long to wait first (DESIGN §7): the server's own
//! hints win (`Retry-After` in seconds or as an HTTP date, `X-RateLimit-Reset` /
//! `X-Rate-Limit-Reset`, GitHub's primary and secondary limit rules, `Stripe-Should-Retry`);
//! otherwise exponential backoff with full jitter. Only GET requests are sent, so a retry
//! never repeats a side effect.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;

/// What an answer means for the request that got it.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Ok,
    /// The vendor's rate limit: wait (as told, when it says) and try again.
    RateLimited {
        wait: Option<Duration>,
    },
    /// A server or network failure: try again after a backoff, or as told.
    Transient {
        wait: Option<Duration>,
    },
    /// 401/403 that is not a rate limit: retrying will not help.
    Denied,
    /// Anything else (404, 422...): retrying will not help.
    Failed,
}

/// GitHub's secondary limit says so only in the message of a 403.
const SECONDARY_LIMIT: &str = "secondary rate limit";

/// GitHub: "if you exceed a secondary limit without retry-after, wait at least one minute".
const SECONDARY_LIMIT_MIN_WAIT: Duration = Duration::from_secs(60);

pub fn classify(status: u16, headers: &HeaderMap, body: &[u8], now: SystemTime) -> Answer {
    let should_retry = header(headers, "stripe-should-retry");
    if should_retry == Some("false") && status != 429 {
        return if matches!(status, 401 | 403) {
            Answer::Denied
        } else {
            Answer::Failed
        };
    }
    let told = retry_after(headers, now);
    let exhausted = header(headers, "x-ratelimit-remaining")
        .or_else(|| header(headers, "x-rate-limit-remaining"))
        .is_some_and(|r| r.trim() == "0");
    let rate_wait = told.or_else(|| exhausted.then(|| reset_wait(headers, now)).flatten());
    match status {
        200..=299 => Answer::Ok,
        403 | 429 if rate_wait.is_none() && contains_ignore_case(body, SECONDARY_LIMIT) => {
            Answer::RateLimited {
                wait: Some(SECONDARY_LIMIT_MIN_WAIT),
            }
        }
        429 => Answer::RateLimited { wait: rate_wait },
        403 if told.is_some() || exhausted => Answer::RateLimited { wait: rate_wait },
        401 | 403 => Answer::Denied,
        408 | 500 | 502 | 503 | 504 => Answer::Transient { wait: told },
        _ if should_retry == Some("true") => Answer::Transient { wait: told },
        _ => Answer::Failed,
    }
}

/// `Retry-After`: delay-seconds or an HTTP date.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = header(headers, "retry-after")?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Until the limit's window resets: `X-RateLimit-Reset` (GitHub, epoch seconds) or
/// `X-Rate-Limit-Reset` (Okta, epoch seconds); small values are seconds from now, as some
/// APIs send.
pub fn reset_wait(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let at = reset_at(headers)?;
    Some(match at {
        Reset::At(at) => at.duration_since(now).unwrap_or(Duration::ZERO),
        Reset::In(d) => d,
    })
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reset {
    At(SystemTime),
    In(Duration),
}

pub fn reset_at(headers: &HeaderMap) -> Option<Reset> {
    let value = header(headers, "x-ratelimit-reset")
        .or_else(|| header(headers, "x-rate-limit-reset"))?
        .trim();
    let n: f64 = value.parse().ok()?;
    let d = Duration::try_from_secs_f64(n).ok()?;
    // Epoch seconds are past 10^9 since 2001; anything smaller is a delay.
    Some(if n >= 1e9 {
        Reset::At(UNIX_EPOCH.checked_add(d)?)
    } else {
        Reset::In(d)
    })
}

/// Full jitter (a uniform wait between zero and the exponential step) over the step backon
/// computes; the step itself spreads retries out, the jitter keeps many clients apart.
pub fn full_jitter(step: Duration) -> Duration {
    step.mul_f64(fastrand::f64())
}

pub fn backoff(max_attempts: u32) -> backon::ExponentialBuilder {
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(Duration::from_secs(30))
        .with_factor(2.0)
        .with_max_times(max_attempts.saturating_sub(1) as usize)
}

pub fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn contains_ignore_case(body: &[u8], needle: &str) -> bool {
    let n = needle.as_bytes();
    body.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::test_headers as headers;

    const NOW: u64 = 1_772_700_000;
    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(NOW)
    }

    #[test]
    fn retry_after_in_seconds_and_as_a_date() {
        assert_eq!(
            retry_after(&headers(&[("retry-after", "17")]), now()),
            Some(Duration::from_secs(17))
        );
        let date = httpdate::fmt_http_date(now() + Duration::from_secs(90));
        assert_eq!(
            retry_after(&headers(&[("retry-after", &date)]), now()),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "soon")]), now()),
            None
        );
    }

    #[test]
    fn github_primary_limit_waits_for_the_reset() {
        let reset = (NOW + 600).to_string();
        let h = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", &reset),
        ]);
        let want = Answer::RateLimited {
            wait: Some(Duration::from_secs(600)),
        };
        assert_eq!(classify(403, &h, b"{}", now()), want);
        assert_eq!(classify(429, &h, b"{}", now()), want);
    }

    #[test]
    fn github_secondary_limit() {
        let h = headers(&[("x-ratelimit-remaining", "4000"), ("retry-after", "30")]);
        assert_eq!(
            classify(403, &h, b"{}", now()),
            Answer::RateLimited {
                wait: Some(Duration::from_secs(30))
            }
        );
        let body = br#"{"message":"You have exceeded a Secondary Rate Limit. Please wait"}"#;
        let h = headers(&[("x-ratelimit-remaining", "4000")]);
        assert_eq!(
            classify(403, &h, body, now()),
            Answer::RateLimited {
                wait: Some(SECONDARY_LIMIT_MIN_WAIT)
            }
        );
        assert_eq!(
            classify(403, &h, b"{\"message\":\"Forbidden\"}", now()),
            Answer::Denied
        );
    }

    #[test]
    fn secondary_limit_on_a_429_waits_a_minute() {
        let body = br#"{"message":"You have exceeded a secondary rate limit."}"#;
        let h = headers(&[("x-ratelimit-remaining", "4000")]);
        assert_eq!(
            classify(429, &h, body, now()),
            Answer::RateLimited {
                wait: Some(SECONDARY_LIMIT_MIN_WAIT)
            }
        );
    }

    #[test]
    fn absurd_resets_are_ignored() {
        for v in ["1e20", "1e300", "-5", "NaN", "inf"] {
            let h = headers(&[("x-ratelimit-reset", v), ("x-ratelimit-remaining", "0")]);
            assert_eq!(reset_wait(&h, now()), None, "{v}");
            let _ = classify(429, &h, b"", now());
        }
    }

    #[test]
    fn okta_reset_and_relative_resets() {
        let reset = (NOW + 42).to_string();
        let h = headers(&[
            ("x-rate-limit-remaining", "0"),
            ("x-rate-limit-reset", &reset),
        ]);
        assert_eq!(
            classify(429, &h, b"", now()),
            Answer::RateLimited {
                wait: Some(Duration::from_secs(42))
            }
        );
        let h = headers(&[("x-ratelimit-reset", "12")]);
        assert_eq!(reset_wait(&h, now()), Some(Duration::from_secs(12)));
    }

    #[test]
    fn stripe_should_retry_decides() {
        let no = headers(&[("stripe-should-retry", "false")]);
        assert_eq!(classify(503, &no, b"", now()), Answer::Failed);
        let yes = headers(&[("stripe-should-retry", "true")]);
        assert_eq!(
            classify(409, &yes, b"", now()),
            Answer::Transient { wait: None }
        );
    }

    #[test]
    fn server_errors_retry_and_client_errors_do_not() {
        let h = HeaderMap::new();
        for s in [500, 502, 503, 504] {
            assert_eq!(
                classify(s, &h, b"", now()),
                Answer::Transient { wait: None }
            );
        }
        assert_eq!(classify(404, &h, b"", now()), Answer::Failed);
        assert_eq!(classify(401, &h, b"", now()), Answer::Denied);
        assert_eq!(classify(200, &h, b"", now()), Answer::Ok);
    }

    #[test]
    fn full_jitter_stays_under_the_step() {
        for _ in 0..1000 {
            assert!(full_jitter(Duration::from_secs(8)) < Duration::from_secs(8));
        }
    }
}
