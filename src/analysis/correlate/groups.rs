//! Failures of one key, split where they pause for longer than the gap.

use std::collections::BTreeMap;

use super::Settings;
use super::evidence::{Class, Detail, Failure, GroupKey, Indexed};

/// One cluster of failures and what they say together.
pub struct Group<'a> {
    /// Where its failures are in the evidence.
    pub range: std::ops::Range<usize>,
    pub key: &'a GroupKey,
    pub failures: &'a [Failure],
    pub first: i64,
    pub last: i64,
    /// Failures, counting each 429 of a burst.
    pub count: u64,
    pub count_503: u64,
    /// What the failures said, most often first.
    pub details: Vec<(&'a Detail, u64)>,
}

impl<'a> Group<'a> {
    pub fn class(&self) -> Class {
        self.key.class
    }

    /// Scopes the server said were required, without their kind: from `WWW-Authenticate`,
    /// else from a message that names them ("inventory.write requires inventory.read").
    pub fn required_scopes(&self) -> Vec<&'a str> {
        let mut out: Vec<&str> = self
            .details
            .iter()
            .flat_map(|(d, _)| d.required_scope.iter().map(|s| super::evidence::bare(s)))
            .collect();
        if out.is_empty() {
            out = self
                .details
                .iter()
                .filter_map(|(d, _)| d.error_message.as_deref())
                .flat_map(message_scopes)
                .collect();
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The most common value of a detail field.
    pub fn most<T: ?Sized>(&self, field: impl Fn(&'a Detail) -> Option<&'a T>) -> Option<&'a T> {
        self.details.iter().find_map(|(d, _)| field(d))
    }

    /// Whether any failure's code, auth error or message says this (case-insensitive).
    pub fn says(&self, word: &str) -> bool {
        self.details.iter().any(|(d, _)| {
            [&d.error_code, &d.auth_error, &d.error_message]
                .into_iter()
                .flatten()
                .any(|s| {
                    s.as_bytes()
                        .windows(word.len())
                        .any(|w| w.eq_ignore_ascii_case(word.as_bytes()))
                })
        })
    }

    pub fn app(&self) -> Option<&'a str> {
        self.key
            .actor_app
            .as_deref()
            .or_else(|| self.most(|d| d.actor_app.as_deref()))
    }
}

pub fn split<'a>(evidence: &'a Indexed, settings: &Settings) -> Vec<Group<'a>> {
    let gap = i64::try_from(settings.gap.as_millis()).unwrap_or(i64::MAX);
    let mut groups = Vec::new();
    let failures = &evidence.failures;
    let mut start = 0;
    let mut reach = i64::MIN;
    for (i, f) in failures.iter().enumerate() {
        if i > start && (f.key != failures[i - 1].key || f.time > reach.saturating_add(gap)) {
            groups.push(group(evidence, start..i));
            start = i;
            reach = i64::MIN;
        }
        reach = reach.max(evidence.extent(f).end);
    }
    if start < failures.len() {
        groups.push(group(evidence, start..failures.len()));
    }
    groups
}

/// Groups of one key, from the first to the last, as one.
pub fn join<'a>(evidence: &'a Indexed, first: &Group, last: &Group) -> Group<'a> {
    group(evidence, first.range.start..last.range.end)
}

fn group(evidence: &Indexed, range: std::ops::Range<usize>) -> Group<'_> {
    let failures = &evidence.failures[range.clone()];
    let mut tally: BTreeMap<u32, u64> = BTreeMap::new();
    let mut count = 0;
    let mut count_503 = 0;
    let mut last = i64::MIN;
    for f in failures {
        *tally.entry(f.detail).or_default() += 1;
        let extent = evidence.extent(f);
        count += u64::from(extent.count);
        count_503 += u64::from(extent.count_503);
        last = last.max(extent.end);
    }
    let mut details: Vec<(&Detail, u64)> = tally
        .into_iter()
        .map(|(d, n)| (&evidence.details[d as usize], n))
        .collect();
    details.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    Group {
        range,
        key: &evidence.keys[failures[0].key as usize],
        failures,
        first: failures[0].time,
        last,
        count,
        count_503,
        details,
    }
}

/// Scope-like words (`gl:journal:write`, `inventory.read`) after the word that says they are
/// needed (`requires`, `required`, `scope`, `missing`).
fn message_scopes(message: &str) -> Vec<&str> {
    let words = message.split(|c: char| c.is_whitespace() || ",;()'\"[]".contains(c));
    let mut after = false;
    let mut out = Vec::new();
    for w in words.filter(|w| !w.is_empty()) {
        let lower = w.to_ascii_lowercase();
        if [
            "requires", "required", "require", "scope", "scopes", "missing",
        ]
        .contains(&lower.trim_end_matches(':'))
        {
            after = true;
            continue;
        }
        let w = w.trim_end_matches(['.', ':']);
        // Short dotted or colon words; not URLs, paths, or anything long enough to be a token
        // echoed in a message.
        let scope_like = w.contains(['.', ':'])
            && w.len() <= 64
            && w.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && w.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._:-*".contains(c));
        if after && scope_like {
            out.push(w);
        } else {
            // Only the words right after the one that says they are needed.
            after = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::message_scopes;

    #[test]
    fn scopes_are_read_from_messages_that_name_them() {
        assert_eq!(
            message_scopes("inventory.write requires inventory.read"),
            ["inventory.read"]
        );
        assert_eq!(
            message_scopes("Missing scope gl:journal:write"),
            ["gl:journal:write"]
        );
        assert!(message_scopes("Bad credentials. See docs.github.com").is_empty());
        assert!(message_scopes("required: see https://x.example/docs").is_empty());
        assert!(message_scopes("Missing scope (see docs.example.com/scopes)").is_empty());
        assert_eq!(
            message_scopes("requires a.read b:write; then docs.example.com"),
            ["a.read", "b:write"]
        );
    }
}
