//! Pacing (DESIGN §7): scopetrail shares each vendor's rate limit with the integration it
//! watches, so per (vendor, credential) it uses at most `budget_share` of the advertised
//! limit in each of the vendor's windows, and stops calling while `remaining` is under the
//! reserve. It must never be the cause of the integration's 429s.
//!
//! The budget is learned from the answers (`X-RateLimit-Limit`, `-Remaining`, `-Reset`, and
//! Okta's `X-Rate-Limit-*`); before the first answer there is nothing to pace against, and a
//! vendor that advertises no limit is not paced.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;

use super::retry::{Reset, header, reset_at};

/// What the caller should do before its request.
#[derive(Debug, Clone, PartialEq)]
pub enum Pace {
    Go,
    /// Wait this long, then ask again.
    Wait {
        wait: Duration,
        why: String,
    },
}

#[derive(Debug, Default)]
struct Budget {
    limit: Option<u64>,
    remaining: Option<u64>,
    /// When the vendor's current window ends.
    reset: Option<SystemTime>,
    /// scopetrail's own requests in the current window, counted when sent.
    ours: u64,
    /// A limit the vendor documents but does not advertise (Stripe): its window starts with
    /// the first request counted in it.
    declared: Option<(u64, Duration)>,
}

pub struct Pacer {
    share: f64,
    reserve: f64,
    budgets: Mutex<HashMap<String, Budget>>,
}

impl Pacer {
    pub fn new(share: f64, reserve: f64) -> Self {
        Pacer {
            share,
            reserve,
            budgets: Mutex::new(HashMap::new()),
        }
    }

    /// Asks before a request to the budget `key` ((vendor, credential)); `Go` counts the
    /// request against the budget.
    pub fn before(&self, key: &str, now: SystemTime) -> Pace {
        let mut budgets = self.budgets.lock().unwrap_or_else(|p| p.into_inner());
        let b = budgets.entry(key.to_string()).or_default();
        if let Some(reset) = b.reset
            && now >= reset
        {
            // A new window: the vendor's counts are refreshed by the next answer.
            b.ours = 0;
            b.remaining = None;
            b.reset = None;
        }
        if let (Some((limit, window)), None) = (b.declared, b.reset) {
            b.limit = Some(limit);
            b.reset = now.checked_add(window);
        }
        if let (Some(limit), Some(reset)) = (b.limit, b.reset) {
            let wait = reset.duration_since(now).unwrap_or_default();
            let allowance = ((limit as f64 * self.share).floor() as u64).max(1);
            if b.ours >= allowance {
                return Pace::Wait {
                    wait,
                    why: format!(
                        "used its budget share ({} of {limit} requests in this window, budget_share {})",
                        b.ours, self.share
                    ),
                };
            }
            if let Some(remaining) = b.remaining {
                let floor = (limit as f64 * self.reserve).ceil() as u64;
                if remaining <= floor {
                    return Pace::Wait {
                        wait,
                        why: format!(
                            "only {remaining} of {limit} requests remain in this window; the reserve of {floor} is left to the integration"
                        ),
                    };
                }
            }
        }
        b.ours += 1;
        if let Some(r) = b.remaining.as_mut() {
            *r = r.saturating_sub(1);
        }
        Pace::Go
    }

    /// A limit of `limit` requests per `window` that the vendor's answers do not carry.
    pub fn declare(&self, key: &str, limit: u64, window: Duration) {
        let mut budgets = self.budgets.lock().unwrap_or_else(|p| p.into_inner());
        budgets.entry(key.to_string()).or_default().declared = Some((limit, window));
    }

    /// Learns the budget from an answer's headers.
    pub fn after(&self, key: &str, headers: &HeaderMap, now: SystemTime) {
        let number = |a: &str, b: &str| {
            header(headers, a)
                .or_else(|| header(headers, b))
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let limit = number("x-ratelimit-limit", "x-rate-limit-limit");
        let remaining = number("x-ratelimit-remaining", "x-rate-limit-remaining");
        let reset = reset_at(headers).and_then(|r| match r {
            Reset::At(t) => Some(t),
            Reset::In(d) => now.checked_add(d),
        });
        let mut budgets = self.budgets.lock().unwrap_or_else(|p| p.into_inner());
        let b = budgets.entry(key.to_string()).or_default();
        if let Some(reset) = reset {
            // Another window than the one counted: what was counted belongs to the old one,
            // except this answer's own request. A reset given as "seconds from now" moves a
            // little with every answer: only a jump of more than two seconds is a new window.
            let moved = |r: SystemTime| {
                let gap = r.duration_since(reset).unwrap_or_else(|e| e.duration());
                gap > Duration::from_secs(2)
            };
            match b.reset {
                Some(r) if !moved(r) => {}
                Some(_) => {
                    b.ours = 1;
                    b.reset = Some(reset);
                }
                None => b.reset = Some(reset),
            }
        }
        if limit.is_some() {
            b.limit = limit;
        }
        if remaining.is_some() {
            b.remaining = remaining;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderName, HeaderValue};
    use std::time::UNIX_EPOCH;

    fn answer(limit: u64, remaining: u64, reset: u64) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("x-ratelimit-limit", limit),
            ("x-ratelimit-remaining", remaining),
            ("x-ratelimit-reset", reset),
        ] {
            h.insert(
                HeaderName::from_static(k),
                HeaderValue::from_str(&v.to_string()).expect("value"),
            );
        }
        h
    }

    const T0: u64 = 1_772_700_000;

    #[test]
    fn stays_within_the_share_of_each_window() {
        let pacer = Pacer::new(0.1, 0.2);
        let now = UNIX_EPOCH + Duration::from_secs(T0);
        let mut sent = 0;
        loop {
            match pacer.before("github/bot", now) {
                Pace::Go => {
                    sent += 1;
                    pacer.after("github/bot", &answer(100, 100 - sent, T0 + 60), now);
                }
                Pace::Wait { wait, why } => {
                    assert_eq!(wait, Duration::from_secs(60));
                    assert!(why.contains("budget share"), "{why}");
                    break;
                }
            }
        }
        assert_eq!(sent, 10);
        // The next window opens a new allowance.
        let later = now + Duration::from_secs(61);
        assert_eq!(pacer.before("github/bot", later), Pace::Go);
    }

    #[test]
    fn leaves_the_reserve_to_the_integration() {
        let pacer = Pacer::new(0.5, 0.2);
        let now = UNIX_EPOCH + Duration::from_secs(T0);
        assert_eq!(pacer.before("k", now), Pace::Go);
        // The integration used most of the window.
        pacer.after("k", &answer(100, 20, T0 + 30), now);
        match pacer.before("k", now) {
            Pace::Wait { wait, why } => {
                assert_eq!(wait, Duration::from_secs(30));
                assert!(why.contains("reserve"), "{why}");
            }
            Pace::Go => panic!("must not call under the reserve"),
        }
    }

    #[test]
    fn relative_resets_keep_one_window() {
        let pacer = Pacer::new(0.1, 0.2);
        let t0 = UNIX_EPOCH + Duration::from_secs(T0);
        let mut sent = 0u64;
        let mut now = t0;
        // Okta style: X-Rate-Limit-Reset as seconds from now, shrinking as time goes.
        while let Pace::Go = pacer.before("okta/app", now) {
            sent += 1;
            let left = 60 - now.duration_since(t0).map_or(0, |d| d.as_secs());
            let mut h = HeaderMap::new();
            for (k, v) in [
                ("x-rate-limit-limit", 100),
                ("x-rate-limit-remaining", 100 - sent),
                ("x-rate-limit-reset", left),
            ] {
                h.insert(
                    HeaderName::from_static(k),
                    HeaderValue::from_str(&v.to_string()).expect("value"),
                );
            }
            pacer.after("okta/app", &h, now);
            now += Duration::from_millis(700);
            assert!(sent <= 10, "went past the share");
        }
        assert_eq!(sent, 10);
    }

    #[test]
    fn no_advertised_limit_means_no_pacing() {
        let pacer = Pacer::new(0.1, 0.2);
        let now = UNIX_EPOCH + Duration::from_secs(T0);
        for _ in 0..1000 {
            assert_eq!(pacer.before("k", now), Pace::Go);
            pacer.after("k", &HeaderMap::new(), now);
        }
    }

    #[test]
    fn a_declared_limit_paces_without_headers() {
        let pacer = Pacer::new(0.1, 0.2);
        pacer.declare("stripe", 25, Duration::from_secs(1));
        let now = UNIX_EPOCH + Duration::from_secs(T0);
        assert_eq!(pacer.before("stripe", now), Pace::Go);
        pacer.after("stripe", &HeaderMap::new(), now);
        assert_eq!(pacer.before("stripe", now), Pace::Go);
        assert!(
            matches!(pacer.before("stripe", now), Pace::Wait { .. }),
            "2 of 25 per second"
        );
        let later = now + Duration::from_secs(1);
        assert_eq!(pacer.before("stripe", later), Pace::Go, "a new window");
    }
}
