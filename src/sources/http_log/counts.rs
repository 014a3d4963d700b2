//! The hourly `request_counts` of one collection: every line is counted by (hour, service,
//! operation, method, status class, app, credential) without allocating per line, and the
//! operations of a service are capped so memory stays bounded whatever the paths look like.

use std::collections::BTreeMap;

use rustc_hash::{FxHashMap, FxHashSet};

/// Strings seen in lines, by small integer id.
#[derive(Default)]
pub struct Interner {
    ids: FxHashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl Interner {
    pub fn id(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(s.into());
        self.ids.insert(s.into(), id);
        id
    }

    pub fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }
}

pub const OTHER_OPERATION: &str = "{other}";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CountKey {
    pub hour_ms: i64,
    /// Which host mapping (vendor, tenant) the line went to.
    pub mapping: u32,
    pub service: u32,
    pub operation: u32,
    pub method: u32,
    pub class: u32,
    pub actor: Option<u32>,
    pub credential: Option<u32>,
}

pub struct Counts {
    pub strings: Interner,
    counts: FxHashMap<CountKey, u64>,
    /// Per service, the operations counted under their own name.
    admitted: FxHashMap<u32, FxHashSet<u32>>,
    /// (service, operation text) -> id of the admitted operations: one lookup per line rather
    /// than interning the text and then asking the service's set. Bounded like `admitted`.
    known: FxHashMap<Box<[u8]>, u32>,
    /// The key being looked up in `known`, reused from line to line.
    key: Vec<u8>,
    cap: usize,
}

impl Counts {
    /// `admitted`: per service, operations admitted by earlier collections (from the cursor).
    pub fn new(cap: usize, admitted: &BTreeMap<String, Vec<String>>) -> Self {
        let mut counts = Counts {
            strings: Interner::default(),
            counts: FxHashMap::default(),
            admitted: FxHashMap::default(),
            known: FxHashMap::default(),
            key: Vec::new(),
            cap,
        };
        for (service, ops) in admitted {
            let s = counts.strings.id(service);
            let ids: FxHashSet<u32> = ops.iter().map(|o| counts.strings.id(o)).collect();
            counts.admitted.insert(s, ids);
        }
        counts
    }

    /// The operation id to count under: its own, or `{other}` once the service has `cap`.
    pub fn operation(&mut self, service: u32, operation: &str) -> u32 {
        self.key.clear();
        self.key.extend_from_slice(&service.to_le_bytes());
        self.key.extend_from_slice(operation.as_bytes());
        if let Some(&op) = self.known.get(self.key.as_slice()) {
            return op;
        }
        let op = self.strings.id(operation);
        let admitted = self.admitted.entry(service).or_default();
        // Admitted stays admitted: the set only grows.
        if admitted.contains(&op) || admitted.len() < self.cap {
            admitted.insert(op);
            self.known.insert(self.key.as_slice().into(), op);
            op
        } else {
            self.strings.id(OTHER_OPERATION)
        }
    }

    pub fn add(&mut self, key: CountKey) {
        *self.counts.entry(key).or_default() += 1;
    }

    /// The counts so far, emptied, in a stable order.
    pub fn take(&mut self) -> Vec<(CountKey, u64)> {
        let mut out: Vec<(CountKey, u64)> = self.counts.drain().collect();
        let s = |id: u32| self.strings.name(id);
        let order = |k: &CountKey| {
            (
                k.hour_ms,
                k.mapping,
                s(k.service),
                s(k.operation),
                s(k.method),
                k.class,
                k.actor.map(s),
                k.credential,
            )
        };
        out.sort_unstable_by(|(a, _), (b, _)| order(a).cmp(&order(b)));
        out
    }

    /// Per service, the admitted operations, for the cursor.
    pub fn admitted(&self) -> BTreeMap<String, Vec<String>> {
        self.admitted
            .iter()
            .map(|(s, ops)| {
                let mut names: Vec<String> = ops
                    .iter()
                    .map(|o| self.strings.name(*o).to_string())
                    .collect();
                names.sort();
                (self.strings.name(*s).to_string(), names)
            })
            .collect()
    }
}

/// The interned ids of the status classes, by their place in `CLASSES`: interned once each
/// rather than hashed per line.
#[derive(Default)]
pub struct Classes([Option<u32>; CLASSES.len()]);

impl Classes {
    /// The id of `status`'s class.
    pub fn id(&mut self, status: i64, strings: &mut Interner) -> u32 {
        let class = class_index(status);
        *self.0[class].get_or_insert_with(|| strings.id(CLASSES[class]))
    }
}

const CLASSES: [&str; 9] = [
    "401", "403", "429", "1xx", "2xx", "3xx", "4xx", "5xx", "other",
];

fn class_index(status: i64) -> usize {
    match status {
        401 => 0,
        403 => 1,
        429 => 2,
        100..=199 => 3,
        200..=299 => 4,
        300..=399 => 5,
        400..=499 => 6,
        500..=599 => 7,
        _ => 8,
    }
}

/// `2xx`, `401`, `403`, `429`, `4xx`, `5xx` (and `1xx`, `3xx`).
#[cfg(test)]
pub fn status_class(status: i64) -> &'static str {
    CLASSES[class_index(status)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_past_the_cap_are_other() {
        let mut c = Counts::new(2, &BTreeMap::new());
        let svc = c.strings.id("api.example.com");
        let a = c.operation(svc, "/a");
        let b = c.operation(svc, "/b");
        assert_eq!(c.operation(svc, "/a"), a);
        let third = c.operation(svc, "/c");
        assert_eq!(c.strings.name(third), OTHER_OPERATION);
        assert_ne!(a, b);
        let again_third = c.operation(svc, "/c");
        assert_eq!(c.strings.name(again_third), OTHER_OPERATION, "still other");
        assert_eq!(c.operation(svc, "/b"), b, "remembered");
        let elsewhere = c.strings.id("b.example.com");
        let op = c.operation(elsewhere, "/c");
        assert_eq!(c.strings.name(op), "/c", "the cap is per service");
        // The cap survives through the cursor.
        let mut again = Counts::new(2, &c.admitted());
        let svc2 = again.strings.id("api.example.com");
        let op = again.operation(svc2, "/d");
        assert_eq!(again.strings.name(op), OTHER_OPERATION);
        let op = again.operation(svc2, "/b");
        assert_eq!(again.strings.name(op), "/b");
    }

    #[test]
    fn classes() {
        assert_eq!(status_class(204), "2xx");
        assert_eq!(status_class(403), "403");
        assert_eq!(status_class(404), "4xx");
        assert_eq!(status_class(503), "5xx");
        assert_eq!(status_class(99), "other");
        let (mut classes, mut strings) = (Classes::default(), Interner::default());
        let id = classes.id(429, &mut strings);
        assert_eq!(strings.name(id), "429");
        assert_eq!(classes.id(429, &mut strings), id, "interned once");
        let other = classes.id(700, &mut strings);
        assert_eq!(strings.name(other), "other");
    }
}
