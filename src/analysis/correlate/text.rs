//! How findings word times, counts and groups.

use chrono::{DateTime, Utc};

use super::evidence::Class;
use super::groups::Group;

/// `2026-03-05 09:02 UTC`.
pub fn at(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// `3h 20m`, `12m`, `40s`.
pub fn span(ms: i64) -> String {
    let s = ms.unsigned_abs() / 1000;
    match (s / 86_400, (s % 86_400) / 3600, (s % 3600) / 60) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

pub fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// "credential erp-sync in prod", "app Iv1.8a61 at acme-github", "stripe tenant acme-stripe".
pub fn who(group: &Group) -> String {
    let k = group.key;
    match (&k.credential, group.app()) {
        (Some(c), _) => format!("credential {c} in {}", k.environment),
        (None, Some(a)) => format!("app {a} at {} ({})", k.tenant, k.environment),
        (None, None) => format!("{} tenant {} ({})", k.vendor, k.tenant, k.environment),
    }
}

/// "37 denials (403 insufficient_scope)", "12 failed webhook deliveries (timeout, http_5xx)".
pub fn what(group: &Group) -> String {
    let n = group.count;
    match group.class() {
        Class::Forbidden | Class::Unauthorized => {
            let mut said = Vec::new();
            for (d, _) in group.details.iter().take(3) {
                let status = d.http_status.map(|s| s.to_string());
                let code = d.error_code.clone().or_else(|| d.auth_error.clone());
                let text = [status, code]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ");
                if !text.is_empty() && !said.contains(&text) {
                    said.push(text);
                }
            }
            let noun = plural(n, "denial", "denials");
            if said.is_empty() {
                noun
            } else {
                format!("{noun} ({})", said.join(", "))
            }
        }
        Class::Webhook => {
            let mut kinds: Vec<&str> = group
                .details
                .iter()
                .filter_map(|(d, _)| d.error_type.as_deref())
                .collect();
            kinds.sort_unstable();
            kinds.dedup();
            let noun = plural(n, "failed webhook delivery", "failed webhook deliveries");
            if kinds.is_empty() {
                noun
            } else {
                format!("{noun} ({})", kinds.join(", "))
            }
        }
        Class::RateLimit => {
            let bursts = group.failures.len() as u64;
            format!(
                "{} in {}",
                plural(n, "429", "429s"),
                plural(bursts, "burst", "bursts")
            )
        }
    }
}

/// "on POST /journalBatches", "on endpoint we_123", or nothing.
pub fn place(group: &Group) -> String {
    let op = &group.key.operation;
    if op.is_empty() {
        return String::new();
    }
    match group.class() {
        Class::Webhook => format!(" to endpoint {op}"),
        _ => format!(" on {op}"),
    }
}

/// "from 2026-03-05 09:02 UTC to 15:08 (6h 6m)".
pub fn when(group: &Group) -> String {
    if group.first == group.last {
        return format!("at {}", at(group.first));
    }
    let end = at(group.last);
    let first = at(group.first);
    let end = if first[..10] == end[..10] {
        end[11..].to_string()
    } else {
        end
    };
    format!("from {first} to {end} ({})", span(group.last - group.first))
}

/// A list of scopes for a sentence: `a`, `a and b`, `a, b and c`.
pub fn and(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}
