//! 429 bursts: rate-limit answers of the same (vendor, tenant, credential or app, operation)
//! with gaps under a threshold, once they reach a count. 503s in the same stream are counted
//! as interleaved (a per-second cap and load shedding) but do not make a burst by themselves.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::model::RateLimitEvent;

/// At most this many ids in `related_event_uids`; `related_events_count` has them all.
pub const MAX_RELATED: usize = 100;

#[derive(Debug, Clone)]
pub struct Settings {
    /// Answers further apart than this start a new burst.
    pub gap: Duration,
    /// 429s needed for a burst.
    pub min_count: u64,
    /// How far around the window detection reads, so a burst crossing its edge is whole.
    pub margin: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            gap: Duration::from_secs(60),
            min_count: 10,
            margin: Duration::from_secs(3600),
        }
    }
}

/// What makes answers one stream: a burst never mixes two of these.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupKey {
    pub vendor: String,
    pub tenant: String,
    pub source: String,
    /// The credential's name when one claims the calls, else the app.
    pub caller: String,
    pub operation: String,
}

impl GroupKey {
    pub fn of(e: &RateLimitEvent) -> GroupKey {
        GroupKey {
            vendor: e.head.vendor.clone(),
            tenant: e.head.tenant.clone(),
            source: e.head.source.clone(),
            caller: e
                .head
                .credential
                .clone()
                .or_else(|| e.actor_app.clone())
                .unwrap_or_default(),
            operation: e.api_operation.clone().unwrap_or_default(),
        }
    }

    /// One string, for ids.
    pub fn text(&self) -> String {
        format!(
            "{}|{}|{}|{}|{}",
            self.vendor, self.tenant, self.source, self.caller, self.operation
        )
    }
}

/// A burst as detected, before it is matched to what earlier exports emitted.
#[derive(Debug, Clone, PartialEq)]
pub struct Burst {
    pub key: GroupKey,
    pub environment: String,
    pub credential: Option<String>,
    pub credential_uid: Option<String>,
    pub actor_app: Option<String>,
    pub api_service: Option<String>,
    pub start_ms: i64,
    pub end_ms: i64,
    pub count_429: u64,
    pub count_503: u64,
    pub peak_per_minute: u64,
    pub retry_after_max_s: Option<i64>,
    pub ratelimit_limit: Option<i64>,
    pub ratelimit_remaining_min: Option<i64>,
    pub related: Vec<String>,
}

impl Burst {
    fn start(e: &RateLimitEvent, key: GroupKey) -> Burst {
        Burst {
            key,
            environment: e.head.environment.clone(),
            credential: e.head.credential.clone(),
            credential_uid: e.credential_uid.clone(),
            actor_app: e.actor_app.clone(),
            api_service: e.api_service.clone(),
            start_ms: e.head.time,
            end_ms: e.head.time,
            count_429: 0,
            count_503: 0,
            peak_per_minute: 0,
            retry_after_max_s: None,
            ratelimit_limit: None,
            ratelimit_remaining_min: None,
            related: Vec::new(),
        }
    }

    pub fn related_count(&self) -> u64 {
        self.count_429 + self.count_503
    }
}

/// An open stream: the burst so far and its 429s per minute.
struct Open {
    burst: Burst,
    per_minute: BTreeMap<i64, u64>,
}

impl Open {
    fn add(&mut self, e: &RateLimitEvent) {
        let b = &mut self.burst;
        b.end_ms = e.head.time;
        if e.http_status == Some(503) {
            b.count_503 += 1;
        } else {
            b.count_429 += 1;
            *self
                .per_minute
                .entry(e.head.time.div_euclid(60_000))
                .or_default() += 1;
        }
        b.retry_after_max_s = b.retry_after_max_s.max(e.retry_after_s);
        b.ratelimit_limit = b.ratelimit_limit.max(e.ratelimit_limit);
        b.ratelimit_remaining_min = match (b.ratelimit_remaining_min, e.ratelimit_remaining) {
            (Some(a), Some(r)) => Some(a.min(r)),
            (a, r) => a.or(r),
        };
        if b.related.len() < MAX_RELATED {
            b.related.push(e.head.event_uid.to_string());
        }
    }

    fn close(mut self, settings: &Settings) -> Option<Burst> {
        (self.burst.count_429 >= settings.min_count).then(|| {
            self.burst.peak_per_minute = self.per_minute.values().copied().max().unwrap_or(0);
            self.burst
        })
    }
}

/// Feeds on rate-limit events in time order (per vendor and tenant, as the staging merge
/// yields them) and keeps only the streams still open, so memory does not grow with the data.
pub struct Detector {
    settings: Settings,
    open: HashMap<GroupKey, Open>,
    done: Vec<Burst>,
}

impl Detector {
    pub fn new(settings: Settings) -> Self {
        Detector {
            settings,
            open: HashMap::new(),
            done: Vec::new(),
        }
    }

    pub fn add(&mut self, e: &RateLimitEvent) {
        let gap = i64::try_from(self.settings.gap.as_millis()).unwrap_or(i64::MAX);
        let t = e.head.time;
        // Streams that went quiet for longer than the gap are over.
        let ended: Vec<GroupKey> = self
            .open
            .iter()
            .filter(|(_, o)| t - o.burst.end_ms > gap)
            .map(|(k, _)| k.clone())
            .collect();
        for k in ended {
            if let Some(o) = self.open.remove(&k)
                && let Some(b) = o.close(&self.settings)
            {
                self.done.push(b);
            }
        }
        let key = GroupKey::of(e);
        self.open
            .entry(key.clone())
            .or_insert_with(|| Open {
                burst: Burst::start(e, key),
                per_minute: BTreeMap::new(),
            })
            .add(e);
    }

    /// Every burst found, by start.
    pub fn finish(mut self) -> Vec<Burst> {
        for (_, o) in self.open.drain() {
            if let Some(b) = o.close(&self.settings) {
                self.done.push(b);
            }
        }
        self.done
            .sort_by(|a, b| (a.start_ms, &a.key).cmp(&(b.start_ms, &b.key)));
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Header;

    fn event(t: i64, status: i64, op: &str) -> RateLimitEvent {
        RateLimitEvent {
            head: Header {
                time: t,
                event_uid: uuid::Uuid::new_v4(),
                vendor: "inventory".into(),
                tenant: "acme".into(),
                source: "http_log".into(),
                ..Default::default()
            },
            http_status: Some(status),
            api_operation: Some(op.into()),
            actor_app: Some("inv-sync".into()),
            retry_after_s: Some(30),
            ratelimit_remaining: Some(0),
            ..Default::default()
        }
    }

    fn detect(events: &[RateLimitEvent]) -> Vec<Burst> {
        let mut d = Detector::new(Settings::default());
        for e in events {
            d.add(e);
        }
        d.finish()
    }

    #[test]
    fn a_tight_loop_of_429_and_503_is_one_burst() {
        // 12 answers every 4 s, every fourth a 503: 9 429s... not enough; 40 are.
        let events: Vec<_> = (0..40)
            .map(|i| event(i * 4_000, if i % 4 == 3 { 503 } else { 429 }, "/items/{id}"))
            .collect();
        let bursts = detect(&events);
        assert_eq!(bursts.len(), 1);
        let b = &bursts[0];
        assert_eq!((b.count_429, b.count_503), (30, 10));
        assert_eq!((b.start_ms, b.end_ms), (0, 156_000));
        assert_eq!(b.peak_per_minute, 12);
        assert_eq!(b.retry_after_max_s, Some(30));
        assert_eq!(b.related.len(), 40);
    }

    #[test]
    fn scattered_429s_are_not_a_burst() {
        let events: Vec<_> = (0..50)
            .map(|i| event(i * 120_000, 429, "/items/{id}"))
            .collect();
        assert!(
            detect(&events).is_empty(),
            "two minutes apart: more than the gap"
        );
    }

    #[test]
    fn operations_and_callers_are_separate_streams() {
        let mut events: Vec<_> = (0..10).map(|i| event(i * 1_000, 429, "/a")).collect();
        events.extend((0..10).map(|i| event(i * 1_000 + 500, 429, "/b")));
        events.sort_by_key(|e| e.head.time);
        let bursts = detect(&events);
        assert_eq!(bursts.len(), 2);
        assert!(bursts.iter().all(|b| b.count_429 == 10));
        let mut other_app = event(20_000, 429, "/a");
        other_app.actor_app = Some("someone-else".into());
        assert_ne!(GroupKey::of(&other_app), GroupKey::of(&events[0]));
    }

    #[test]
    fn a_gap_splits_bursts_and_related_ids_are_capped() {
        let mut events: Vec<_> = (0..150).map(|i| event(i * 100, 429, "/a")).collect();
        events.extend((0..10).map(|i| event(1_000_000 + i * 100, 429, "/a")));
        let bursts = detect(&events);
        assert_eq!(bursts.len(), 2);
        assert_eq!(bursts[0].related.len(), MAX_RELATED);
        assert_eq!(bursts[0].related_count(), 150);
    }
}
