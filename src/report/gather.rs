//! From exported records to what the report shows: the window's findings (most important
//! first) with their evidence and timelines, drift warnings, the sources' gaps, and the
//! series the charts draw. Everything is ordered by value, never by hash order, so the same
//! records give the same page byte for byte.

use std::collections::{BTreeMap, BinaryHeap};

use rustc_hash::FxHashMap;
use uuid::Uuid;

use super::timeline::{self, About, Context, Entry};
use super::{SourceFailure, Window};
use crate::model::{Dataset, Finding, Record};

/// Failure series, in the order the charts draw them.
pub const SERIES: [Series; 3] = [Series::Denials, Series::Webhooks, Series::RateLimited];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Series {
    Denials,
    Webhooks,
    RateLimited,
}

impl Series {
    pub fn name(self) -> &'static str {
        match self {
            Series::Denials => "denials",
            Series::Webhooks => "webhook_failures",
            Series::RateLimited => "429s",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Series::Denials => "Denials (401/403)",
            Series::Webhooks => "Webhook failures",
            Series::RateLimited => "429s in bursts",
        }
    }

    /// The series a failure record counts toward, and how many failures it stands for.
    fn of(r: &Record) -> Option<(Series, u64)> {
        match r {
            Record::Denials(_) => Some((Series::Denials, 1)),
            Record::WebhookFailures(_) => Some((Series::Webhooks, 1)),
            Record::RateLimitBursts(b) => Some((
                Series::RateLimited,
                b.count.and_then(|c| u64::try_from(c).ok()).unwrap_or(1),
            )),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MarkKind {
    Drift,
    Change,
    Incident,
}

/// Something that happened on the time axis: a drift, an admin change, an incident (a span).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mark {
    pub start_ms: i64,
    pub end_ms: i64,
    pub kind: MarkKind,
    pub label: String,
}

/// One vendor's row of charts.
#[derive(Debug, Clone)]
pub struct Lane {
    pub vendor: String,
    /// Per series, (bucket index, failures) for the buckets that have any.
    pub series: BTreeMap<Series, BTreeMap<usize, u64>>,
    pub marks: Vec<Mark>,
    pub failures: u64,
}

/// A bar of the "top failing" charts, split by series.
#[derive(Debug, Clone)]
pub struct Bar {
    pub label: String,
    pub parts: BTreeMap<Series, u64>,
}

impl Bar {
    pub fn total(&self) -> u64 {
        self.parts.values().sum()
    }
}

#[derive(Debug, Clone)]
pub struct FindingView {
    pub id: String,
    pub revision: i64,
    pub finding_type: String,
    pub severity: String,
    pub confidence: String,
    pub title: String,
    pub explanation: String,
    pub remediation: Vec<String>,
    pub alternatives: Vec<String>,
    pub vendor: String,
    pub tenant: String,
    pub environment: String,
    /// The credential, else the app.
    pub who: Option<String>,
    pub first_ms: i64,
    pub last_ms: i64,
    pub count: u64,
    pub incident_url: Option<String>,
    /// Evidence and timeline, for the findings shown whole (the first `SHOWN`).
    pub detail: Option<Detail>,
}

#[derive(Debug, Clone)]
pub struct Detail {
    /// What the failures said, most frequent first: ("403 insufficient_scope", 37).
    pub said: Vec<(String, u64)>,
    /// The operations that failed, most frequent first.
    pub operations: Vec<(String, u64)>,
    /// The vendors' error messages, most frequent first.
    pub messages: Vec<(String, u64)>,
    pub cause: Option<Entry>,
    pub timeline: Vec<Row>,
}

/// Timeline entries with runs of alike failures folded into one row.
#[derive(Debug, Clone)]
pub struct Row {
    pub from_ms: i64,
    pub to_ms: i64,
    pub kind: timeline::Kind,
    pub text: String,
    pub count: u64,
    /// The vendor's ids of the first few.
    pub ids: Vec<String>,
}

/// Ids shown for a folded row.
const ROW_IDS: usize = 3;
/// Rows shown before and after the middle of a long timeline is left out.
const FIRST_ROWS: usize = 30;
const LAST_ROWS: usize = 10;

/// Folds consecutive failures that read alike (37 identical denials are one row, not 37), and
/// leaves out the middle of what is still long.
fn condense(entries: Vec<Entry>) -> Vec<Row> {
    let mut rows = fold(entries);
    if rows.len() > FIRST_ROWS + LAST_ROWS + 1 {
        let middle: Vec<Row> = rows.drain(FIRST_ROWS..rows.len() - LAST_ROWS).collect();
        let failures: u64 = middle
            .iter()
            .filter(|r| r.kind == timeline::Kind::Failure)
            .map(|r| r.count)
            .sum();
        rows.insert(
            FIRST_ROWS,
            Row {
                from_ms: middle.first().map_or(0, |r| r.from_ms),
                to_ms: middle.last().map_or(0, |r| r.to_ms),
                kind: timeline::Kind::Elided,
                text: format!(
                    "... {} more rows ({failures} failures) left out ...",
                    middle.len()
                ),
                count: 1,
                ids: Vec::new(),
            },
        );
    }
    rows
}

fn fold(entries: Vec<Entry>) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    for e in entries {
        if let Some(last) = rows.last_mut()
            && e.kind == timeline::Kind::Failure
            && last.kind == e.kind
            && last.text == e.text
        {
            last.to_ms = e.time;
            last.count += 1;
            if last.ids.len() < ROW_IDS {
                last.ids.extend(e.id);
            }
            continue;
        }
        rows.push(Row {
            from_ms: e.time,
            to_ms: e.time,
            kind: e.kind,
            text: e.text,
            count: 1,
            ids: e.id.into_iter().collect(),
        });
    }
    rows
}

/// What is wrong with a source over the window.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum SourceNote {
    /// It had not collected past the window's end when the window was exported.
    Late { source: String },
    Malformed {
        source: String,
        count: u64,
        examples: Vec<String>,
    },
    Failed {
        source: String,
        runs: u64,
        last_ms: i64,
        last_error: String,
    },
}

#[derive(Debug, Clone, Default)]
pub struct Totals {
    pub denials: u64,
    pub webhook_failures: u64,
    pub bursts: u64,
    pub rate_limited: u64,
}

pub struct Report {
    pub window: Window,
    pub location: String,
    pub bucket_ms: i64,
    pub buckets: usize,
    pub totals: Totals,
    pub findings: Vec<FindingView>,
    pub warnings: Vec<FindingView>,
    pub sources: Vec<SourceNote>,
    pub lanes: Vec<Lane>,
    pub top_operations: Vec<Bar>,
    pub top_credentials: Vec<Bar>,
}

/// Bars in each "top failing" chart.
const TOP: usize = 10;
/// A week drawn in hours; longer windows in wider buckets, so a chart keeps about 168.
const TARGET_BUCKETS: i64 = 168;
const HOUR_MS: i64 = 3_600_000;

/// Feeds `records` to a `Gatherer` in the order `build` reads datasets.
#[cfg(test)]
pub fn gather(
    window: Window,
    location: String,
    records: &[Record],
    failures: &[SourceFailure],
    lookback_ms: i64,
) -> Report {
    let mut g = Gatherer::new(window, location, failures.to_vec(), lookback_ms);
    let mut sorted: Vec<&Record> = records.iter().collect();
    sorted.sort_by_key(|r| READ.iter().position(|d| *d == r.dataset()));
    for r in sorted {
        g.add(r.clone());
    }
    g.finish()
}

/// Findings shown whole, with evidence and timeline; the rest get a line each.
pub const SHOWN: usize = 20;
/// Failures of a shown finding kept for its timeline: its first ones and its last ones.
const SAMPLE: usize = 40;
/// Distinct values counted per finding for "what the failures said" and the like.
const DISTINCT: usize = 64;

/// Builds the report from exported rows streamed through it (findings first, then their
/// links, then the evidence, then the failures: the order of `READ`), keeping aggregates and
/// samples rather than rows, so its memory does not grow with the failures of the window.
pub struct Gatherer {
    window: Window,
    location: String,
    failures: Vec<SourceFailure>,
    lookback_ms: i64,
    bucket_ms: i64,
    buckets: usize,
    totals: Totals,
    lanes: BTreeMap<String, Lane>,
    operations: BTreeMap<String, BTreeMap<Series, u64>>,
    credentials: BTreeMap<String, BTreeMap<Series, u64>>,
    /// Every finding read, at its highest revision.
    findings: FxHashMap<Uuid, Finding>,
    /// The window's findings, most important first, once the first non-finding row came.
    ranked: Option<Vec<Finding>>,
    /// Shown finding → its index in `samples`.
    shown: FxHashMap<Uuid, usize>,
    samples: Vec<Sample>,
    /// Failure → the shown findings linking it.
    links: FxHashMap<Uuid, Vec<u32>>,
    /// Snapshots, changes and incidents in reach of the window.
    context: Vec<Record>,
    bursts: FxHashMap<Uuid, Record>,
}

impl crate::output::read::Sink for Gatherer {
    fn add(&mut self, record: Record) {
        Gatherer::add(self, record);
    }
}

impl Gatherer {
    pub fn new(
        window: Window,
        location: String,
        failures: Vec<SourceFailure>,
        lookback_ms: i64,
    ) -> Self {
        let span = (window.end_ms - window.start_ms).max(HOUR_MS);
        let hours = (span + HOUR_MS - 1) / HOUR_MS;
        let bucket_ms = HOUR_MS * ((hours + TARGET_BUCKETS - 1) / TARGET_BUCKETS).max(1);
        let buckets = usize::try_from((span + bucket_ms - 1) / bucket_ms).unwrap_or(1);
        Gatherer {
            window,
            location,
            failures,
            lookback_ms,
            bucket_ms,
            buckets,
            totals: Totals::default(),
            lanes: BTreeMap::new(),
            operations: BTreeMap::new(),
            credentials: BTreeMap::new(),
            findings: FxHashMap::default(),
            ranked: None,
            shown: FxHashMap::default(),
            samples: Vec::new(),
            links: FxHashMap::default(),
            context: Vec::new(),
            bursts: FxHashMap::default(),
        }
    }

    pub fn add(&mut self, record: Record) {
        let time = record.head().time;
        let reach = |t: i64, g: &Gatherer| {
            t >= g.window.start_ms.saturating_sub(g.lookback_ms)
                && t <= g.window.end_ms.saturating_add(g.lookback_ms)
        };
        if let Record::Findings(f) = record {
            match self.findings.entry(f.head.event_uid) {
                std::collections::hash_map::Entry::Occupied(mut e) => {
                    if f.revision > e.get().revision {
                        e.insert(f);
                    }
                }
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(f);
                }
            }
            return;
        }
        self.rank();
        match record {
            Record::FindingEvents(l) => {
                if let (Some(f), Some(e)) = (&l.finding_uid, &l.related_event_uid)
                    && let (Ok(f), Ok(e)) = (f.parse::<Uuid>(), e.parse::<Uuid>())
                    && let Some(&ix) = self.shown.get(&f)
                {
                    let ix = u32::try_from(ix).unwrap_or(u32::MAX);
                    let linked = self.links.entry(e).or_default();
                    if !linked.contains(&ix) {
                        linked.push(ix);
                    }
                }
            }
            Record::TokenSnapshots(_) | Record::Changes(_) | Record::Incidents(_)
                if reach(time, self) =>
            {
                self.context.push(record);
            }
            Record::RateLimitBursts(ref b) => {
                let uid = b.head.event_uid;
                let newer = self.bursts.get(&uid).is_none_or(|kept| match kept {
                    Record::RateLimitBursts(k) => b.revision > k.revision,
                    _ => true,
                });
                if newer {
                    self.bursts.insert(uid, record);
                }
            }
            Record::Denials(_) | Record::WebhookFailures(_) => self.failure(&record),
            _ => {}
        }
    }

    /// Orders the window's findings once all of them are read, and picks those shown whole.
    fn rank(&mut self) {
        if self.ranked.is_some() {
            return;
        }
        let (start, end) = (self.window.start_ms, self.window.end_ms);
        let mut ranked: Vec<Finding> = self
            .findings
            .drain()
            .map(|(_, f)| f)
            .filter(|f| {
                let first = f.first_seen_dt.unwrap_or(f.head.time);
                first >= start && first < end
            })
            .collect();
        let level = |c: &Option<String>| match c.as_deref() {
            Some("high") => 0,
            Some("medium") => 1,
            _ => 2,
        };
        ranked.sort_by(|a, b| {
            (a.severity.as_deref() == Some("warning"))
                .cmp(&(b.severity.as_deref() == Some("warning")))
                .then(level(&a.confidence).cmp(&level(&b.confidence)))
                .then(b.related_events_count.cmp(&a.related_events_count))
                .then(a.first_seen_dt.cmp(&b.first_seen_dt))
                .then(a.head.event_uid.cmp(&b.head.event_uid))
        });
        let failures = ranked
            .iter()
            .filter(|f| f.severity.as_deref() != Some("warning"));
        let warnings = ranked
            .iter()
            .filter(|f| f.severity.as_deref() == Some("warning"));
        for f in failures.take(SHOWN).chain(warnings.take(SHOWN)) {
            self.shown.insert(f.head.event_uid, self.samples.len());
            self.samples.push(Sample::new(
                f.cause_event_uid.as_deref().and_then(|c| c.parse().ok()),
            ));
        }
        self.ranked = Some(ranked);
    }

    /// A denial, webhook failure or (deduplicated) burst: counted, and sampled for the shown
    /// findings that link it.
    fn failure(&mut self, r: &Record) {
        let Some((series, n)) = Series::of(r) else {
            return;
        };
        let h = r.head();
        if h.time >= self.window.start_ms && h.time < self.window.end_ms {
            match series {
                Series::Denials => self.totals.denials += n,
                Series::Webhooks => self.totals.webhook_failures += n,
                Series::RateLimited => {
                    self.totals.bursts += 1;
                    self.totals.rate_limited += n;
                }
            }
            let bucket =
                usize::try_from((h.time - self.window.start_ms) / self.bucket_ms).unwrap_or(0);
            let lane = self
                .lanes
                .entry(h.vendor.clone())
                .or_insert_with(|| Lane::new(&h.vendor));
            *lane
                .series
                .entry(series)
                .or_default()
                .entry(bucket)
                .or_default() += n;
            lane.failures += n;
            *self
                .operations
                .entry(operation_of(r))
                .or_default()
                .entry(series)
                .or_default() += n;
            *self
                .credentials
                .entry(credential_of(r))
                .or_default()
                .entry(series)
                .or_default() += n;
        }
        if let Some(linked) = self.links.get(&h.event_uid) {
            for &ix in linked {
                if let Some(sample) = self.samples.get_mut(ix as usize) {
                    sample.add(r);
                }
            }
        }
    }

    pub fn finish(mut self) -> Report {
        self.rank();
        let mut bursts: Vec<Record> = std::mem::take(&mut self.bursts).into_values().collect();
        bursts.sort_by_key(|b| (b.head().time, b.head().event_uid));
        for b in &bursts {
            self.failure(b);
        }
        for r in &self.context {
            let h = r.head();
            if let Some(mark) = mark_of(r)
                && mark.end_ms >= self.window.start_ms
                && mark.start_ms <= self.window.end_ms
            {
                self.lanes
                    .entry(h.vendor.clone())
                    .or_insert_with(|| Lane::new(&h.vendor))
                    .marks
                    .push(mark);
            }
        }
        let mut lanes: Vec<Lane> = std::mem::take(&mut self.lanes).into_values().collect();
        for l in &mut lanes {
            l.marks.sort();
            l.marks.dedup();
        }
        lanes.sort_by(|a, b| b.failures.cmp(&a.failures).then(a.vendor.cmp(&b.vendor)));

        let context = Context::new(&self.context);
        let mut samples = std::mem::take(&mut self.samples);
        let mut views = Vec::new();
        for f in self.ranked.take().unwrap_or_default() {
            let detail = self
                .shown
                .get(&f.head.event_uid)
                .and_then(|&ix| samples.get_mut(ix))
                .map(|sample| detail(&f, std::mem::take(sample), &context, self.lookback_ms));
            views.push(view(f, detail));
        }
        let (findings, warnings) = views.into_iter().partition(|f| f.severity != "warning");
        Report {
            sources: source_notes(&self.window, &self.failures),
            window: self.window,
            location: self.location,
            bucket_ms: self.bucket_ms,
            buckets: self.buckets,
            totals: self.totals,
            findings,
            warnings,
            lanes,
            top_operations: top(self.operations),
            top_credentials: top(self.credentials),
        }
    }
}

/// A shown finding's failures: how many, the first and last `SAMPLE` of them, and what they
/// said.
#[derive(Default)]
struct Sample {
    cause: Option<Uuid>,
    count: u64,
    first: BinaryHeap<Timed>,
    last: BinaryHeap<std::cmp::Reverse<Timed>>,
    said: Counter,
    operations: Counter,
    messages: Counter,
}

struct Timed {
    key: (i64, Uuid),
    entry: Entry,
}

impl PartialEq for Timed {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for Timed {}
impl PartialOrd for Timed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Timed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key.cmp(&other.key)
    }
}

impl Sample {
    fn new(cause: Option<Uuid>) -> Self {
        Sample {
            cause,
            ..Sample::default()
        }
    }

    fn add(&mut self, r: &Record) {
        self.count += 1;
        self.said.add(said(r));
        self.operations.add(operation_of(r));
        if let Some(m) = message(r) {
            self.messages.add(m);
        }
        let h = r.head();
        let key = (h.time, h.event_uid);
        let timed = || Timed {
            key,
            entry: Entry::of(
                r,
                if Some(h.event_uid) == self.cause {
                    timeline::Kind::Cause
                } else {
                    timeline::Kind::Failure
                },
            ),
        };
        if self.first.len() < SAMPLE {
            self.first.push(timed());
        } else if self.first.peek().is_some_and(|top| key < top.key) {
            self.first.pop();
            self.first.push(timed());
        }
        if self.last.len() < SAMPLE {
            self.last.push(std::cmp::Reverse(timed()));
        } else if self.last.peek().is_some_and(|low| key > low.0.key) {
            self.last.pop();
            self.last.push(std::cmp::Reverse(timed()));
        }
    }

    /// The sampled failures in time order, with a row saying how many were left out between.
    fn entries(self) -> Vec<Entry> {
        let mut first: Vec<Timed> = self.first.into_sorted_vec();
        let mut last: Vec<Timed> = self.last.into_iter().map(|r| r.0).collect();
        last.sort();
        let first_keys: std::collections::HashSet<(i64, Uuid)> =
            first.iter().map(|t| t.key).collect();
        last.retain(|t| !first_keys.contains(&t.key));
        let kept = (first.len() + last.len()) as u64;
        let mut out: Vec<Entry> = first.drain(..).map(|t| t.entry).collect();
        if self.count > kept
            && let Some(next) = last.first()
        {
            out.push(Entry {
                time: next.key.0,
                kind: timeline::Kind::Elided,
                text: format!("... {} more failures ...", self.count - kept),
                id: None,
            });
        }
        out.extend(last.into_iter().map(|t| t.entry));
        out
    }
}

/// Counts of distinct values, at most `DISTINCT` of them (values past that are not counted).
#[derive(Default)]
struct Counter(BTreeMap<String, u64>);

impl Counter {
    fn add(&mut self, value: String) {
        if let Some(n) = self.0.get_mut(&value) {
            *n += 1;
        } else if self.0.len() < DISTINCT {
            self.0.insert(value, 1);
        }
    }

    /// Most frequent first (ties by value), at most 3.
    fn most(&self) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = self.0.iter().map(|(k, n)| (k.clone(), *n)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v.truncate(3);
        v
    }
}

impl Lane {
    fn new(vendor: &str) -> Self {
        Lane {
            vendor: vendor.to_string(),
            series: BTreeMap::new(),
            marks: Vec::new(),
            failures: 0,
        }
    }
}

fn top(bars: BTreeMap<String, BTreeMap<Series, u64>>) -> Vec<Bar> {
    let mut bars: Vec<Bar> = bars
        .into_iter()
        .map(|(label, parts)| Bar { label, parts })
        .collect();
    bars.sort_by(|a, b| b.total().cmp(&a.total()).then(a.label.cmp(&b.label)));
    bars.truncate(TOP);
    bars
}

/// `github POST /repos/{owner}/{repo}/hooks`, or a webhook's event and receiver.
fn operation_of(r: &Record) -> String {
    let h = r.head();
    let o = |v: &Option<String>| v.as_deref().unwrap_or("?").to_string();
    match r {
        Record::Denials(d) => match &d.http_method {
            Some(m) => format!("{} {m} {}", h.vendor, o(&d.api_operation)),
            None => format!("{} {}", h.vendor, o(&d.api_operation)),
        },
        Record::WebhookFailures(w) => {
            let to = w
                .dst_hostname
                .as_deref()
                .or(w.url.as_deref())
                .or(w.webhook_uid.as_deref())
                .map(|t| format!(" to {t}"))
                .unwrap_or_default();
            format!("{} webhook {}{to}", h.vendor, o(&w.webhook_event))
        }
        Record::RateLimitBursts(b) => format!("{} {}", h.vendor, o(&b.api_operation)),
        _ => h.vendor.clone(),
    }
}

/// The credential (and its environment), else the app, else the vendor's tenant.
fn credential_of(r: &Record) -> String {
    let h = r.head();
    let app = match r {
        Record::Denials(d) => d.actor_app.as_deref(),
        Record::RateLimitBursts(b) => b.actor_app.as_deref(),
        _ => None,
    };
    match (&h.credential, app) {
        (Some(c), _) => format!("{c} ({})", h.environment),
        (None, Some(app)) => format!("app {app} ({} {})", h.vendor, h.tenant),
        (None, None) => format!("no credential ({} {})", h.vendor, h.tenant),
    }
}

fn mark_of(r: &Record) -> Option<Mark> {
    let h = r.head();
    let o = |v: &Option<String>| v.as_deref().unwrap_or("").to_string();
    let at = timeline::at_s(h.time);
    match r {
        Record::Changes(c) if h.source == crate::probes::collect::DRIFT => Some(Mark {
            start_ms: h.time,
            end_ms: h.time,
            kind: MarkKind::Drift,
            label: format!(
                "{at} drift {} on {}: {}",
                o(&c.action),
                o(&c.target),
                o(&c.details)
            ),
        }),
        Record::Changes(c) => Some(Mark {
            start_ms: h.time,
            end_ms: h.time,
            kind: MarkKind::Change,
            label: format!(
                "{at} {} by {} on {}",
                o(&c.action),
                c.actor_user.as_deref().unwrap_or(&h.source),
                o(&c.target)
            ),
        }),
        Record::TokenSnapshots(s)
            if !s.privileges_added.is_empty() || !s.privileges_removed.is_empty() =>
        {
            let mut what = Vec::new();
            if !s.privileges_removed.is_empty() {
                what.push(format!("removed {}", s.privileges_removed.join(" ")));
            }
            if !s.privileges_added.is_empty() {
                what.push(format!("added {}", s.privileges_added.join(" ")));
            }
            Some(Mark {
                start_ms: h.time,
                end_ms: h.time,
                kind: MarkKind::Drift,
                label: format!(
                    "{at} snapshot of {} ({}): {}",
                    o(&h.credential),
                    h.environment,
                    what.join("; ")
                ),
            })
        }
        Record::Incidents(i) => {
            let start = i.started_dt.unwrap_or(h.time);
            Some(Mark {
                start_ms: start,
                end_ms: i.resolved_dt.unwrap_or(h.time).max(start),
                kind: MarkKind::Incident,
                label: format!(
                    "{} incident: {} [{}]",
                    timeline::at_s(start),
                    o(&i.name),
                    o(&i.status)
                ),
            })
        }
        _ => None,
    }
}

/// A shown finding's evidence and timeline, from its sampled failures and the context.
fn detail(f: &Finding, sample: Sample, context: &Context, lookback_ms: i64) -> Detail {
    let first = f.first_seen_dt.unwrap_or(f.head.time);
    let about = About {
        vendor: &f.head.vendor,
        tenant: &f.head.tenant,
        credential: f.head.credential.as_deref(),
        first_ms: first,
        last_ms: f.last_seen_dt.unwrap_or(first),
        related: &[],
        cause: sample.cause,
    };
    let Sample {
        said,
        operations,
        messages,
        ..
    } = &sample;
    let (said, operations, messages) = (said.most(), operations.most(), messages.most());
    let mut entries = timeline::around(&about, context, lookback_ms);
    entries.extend(sample.entries());
    entries.sort_by_key(|e| e.time);
    // The cause is a snapshot, change or incident of the context, or one of the failures (the
    // first burst of a rate limit).
    let cause = entries
        .iter()
        .find(|e| e.kind == timeline::Kind::Cause)
        .cloned();
    Detail {
        said,
        operations,
        messages,
        cause,
        timeline: condense(entries),
    }
}

fn view(f: Finding, detail: Option<Detail>) -> FindingView {
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    let first = f.first_seen_dt.unwrap_or(f.head.time);
    FindingView {
        id: f.head.event_uid.to_string(),
        revision: f.revision.unwrap_or(1),
        finding_type: o(&f.finding_type),
        severity: o(&f.severity),
        confidence: o(&f.confidence),
        title: o(&f.title),
        explanation: o(&f.explanation),
        remediation: steps(f.remediation.as_deref().unwrap_or("")),
        alternatives: f
            .alternative_causes
            .as_deref()
            .map(|a| a.split("; ").map(str::to_string).collect())
            .unwrap_or_default(),
        who: f.head.credential.clone().or_else(|| f.actor_app.clone()),
        vendor: f.head.vendor,
        tenant: f.head.tenant,
        environment: f.head.environment,
        first_ms: first,
        last_ms: f.last_seen_dt.unwrap_or(first),
        count: f
            .related_events_count
            .and_then(|c| u64::try_from(c).ok())
            .unwrap_or(0),
        incident_url: f.incident_url,
        detail,
    }
}

/// "Grant X; then mint a token; then retry" as steps.
fn steps(remediation: &str) -> Vec<String> {
    remediation
        .split("; then ")
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            let mut c = s.trim().chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect())
                .unwrap_or_default()
        })
        .collect()
}

/// What a failure said: its status and error code.
fn said(r: &Record) -> String {
    let status = |s: Option<i64>| s.map(|s| s.to_string());
    let parts: Vec<String> = match r {
        Record::Denials(d) => [
            status(d.http_status),
            d.error_code.clone().or_else(|| d.auth_error.clone()),
        ]
        .into_iter()
        .flatten()
        .collect(),
        Record::WebhookFailures(w) => [status(w.http_status), w.error_type.clone()]
            .into_iter()
            .flatten()
            .collect(),
        Record::RateLimitBursts(b) => vec![format!(
            "429 burst{}",
            match b.interleaved_503 {
                Some(n) if n > 0 => format!(" with {n} 503s"),
                _ => String::new(),
            }
        )],
        _ => Vec::new(),
    };
    if parts.is_empty() {
        "?".into()
    } else {
        parts.join(" ")
    }
}

fn message(r: &Record) -> Option<String> {
    match r {
        Record::Denials(d) => d.error_message.clone(),
        Record::WebhookFailures(w) => w.error_message.clone(),
        _ => None,
    }
}

fn source_notes(window: &Window, failures: &[SourceFailure]) -> Vec<SourceNote> {
    let mut notes = Vec::new();
    if let Some(e) = &window.export {
        for s in &e.late_sources {
            notes.push(SourceNote::Late { source: s.clone() });
        }
        for (s, m) in &e.malformed {
            if m.count > 0 {
                notes.push(SourceNote::Malformed {
                    source: s.clone(),
                    count: m.count,
                    examples: m.examples.iter().take(3).cloned().collect(),
                });
            }
        }
    }
    let mut failed: BTreeMap<&str, (u64, i64, &str)> = BTreeMap::new();
    for f in failures {
        let e = failed.entry(&f.source).or_insert((0, i64::MIN, ""));
        e.0 += 1;
        if f.at_ms >= e.1 {
            e.1 = f.at_ms;
            e.2 = &f.error;
        }
    }
    for (source, (runs, last_ms, last_error)) in failed {
        notes.push(SourceNote::Failed {
            source: source.to_string(),
            runs,
            last_ms,
            last_error: last_error.to_string(),
        });
    }
    notes.sort();
    notes
}

/// Datasets the report reads, in the order `Gatherer` needs them: the findings, to pick
/// those shown whole; their links, to know their failures; the evidence; the failures.
pub const READ: &[Dataset] = &[
    Dataset::Findings,
    Dataset::FindingEvents,
    Dataset::TokenSnapshots,
    Dataset::Changes,
    Dataset::Incidents,
    Dataset::Denials,
    Dataset::WebhookFailures,
    Dataset::RateLimitBursts,
];

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::uid::uid_of;
    use crate::output::plan::Malformed;

    const T: i64 = 1_772_668_800_000; // 2026-03-05T00:00:00Z
    const HOUR: i64 = 3_600_000;

    pub(crate) fn record(
        dataset: &str,
        seed: &str,
        time: i64,
        fields: serde_json::Value,
    ) -> Record {
        let mut body = fields;
        body["head"] = json!({
            "time": time,
            "event_uid": uid_of(&[dataset, seed]),
            "vendor": "github",
            "tenant": "acme",
            "environment": "prod",
            "source": "test",
            "credential": "ci-bot",
        });
        serde_json::from_value(json!({ dataset: body })).expect("a record")
    }

    pub(crate) fn window(days: i64) -> Window {
        Window {
            job: Some("weekly".into()),
            start_ms: T,
            end_ms: T + days * 24 * HOUR,
            export: None,
        }
    }

    fn finding(seed: &str, confidence: &str, severity: &str, count: i64) -> Record {
        record(
            "findings",
            seed,
            T + HOUR,
            json!({
                "finding_type": "scope_drift", "severity": severity, "confidence": confidence,
                "title": seed, "first_seen_dt": T + HOUR, "last_seen_dt": T + 2 * HOUR,
                "related_events_count": count,
                "remediation": "grant it; then mint a token; then retry",
            }),
        )
    }

    #[test]
    fn a_week_is_drawn_in_hours_and_a_month_in_wider_buckets() {
        let week = gather(window(7), String::new(), &[], &[], 0);
        assert_eq!((week.bucket_ms, week.buckets), (HOUR, 168));
        let month = gather(window(30), String::new(), &[], &[], 0);
        assert_eq!((month.bucket_ms, month.buckets), (5 * HOUR, 144));
    }

    #[test]
    fn failures_are_counted_per_vendor_series_and_bucket() {
        let records = vec![
            record("denials", "a", T + 10, json!({"http_status": 403})),
            record("denials", "b", T + 20, json!({"http_status": 403})),
            record("denials", "c", T + 3 * HOUR, json!({"http_status": 401})),
            record("rate_limit_bursts", "d", T + 3 * HOUR, json!({"count": 50})),
            // Outside the window: not drawn.
            record("denials", "e", T - 10, json!({"http_status": 403})),
            record(
                "changes",
                "f",
                T + 5 * HOUR,
                json!({"action": "hook.config_changed"}),
            ),
        ];
        let r = gather(window(7), String::new(), &records, &[], 0);
        assert_eq!(r.lanes.len(), 1);
        let lane = &r.lanes[0];
        assert_eq!(
            lane.series[&Series::Denials],
            BTreeMap::from([(0, 2), (3, 1)])
        );
        assert_eq!(lane.series[&Series::RateLimited], BTreeMap::from([(3, 50)]));
        assert_eq!(lane.marks.len(), 1);
        assert_eq!(lane.marks[0].kind, MarkKind::Change);
        assert_eq!(
            (r.totals.denials, r.totals.rate_limited, r.totals.bursts),
            (3, 50, 1)
        );
        assert_eq!(r.top_credentials[0].label, "ci-bot (prod)");
        assert_eq!(r.top_credentials[0].total(), 53);
    }

    #[test]
    fn findings_come_most_important_first_and_warnings_apart() {
        let records = vec![
            finding("many-medium", "medium", "failure", 500),
            finding("few-high", "high", "failure", 3),
            finding("more-high", "high", "failure", 30),
            finding("drift", "high", "warning", 0),
        ];
        let r = gather(window(7), String::new(), &records, &[], 0);
        let titles: Vec<&str> = r.findings.iter().map(|f| f.title.as_str()).collect();
        assert_eq!(titles, ["more-high", "few-high", "many-medium"]);
        assert_eq!(r.warnings.len(), 1);
        assert_eq!(
            r.findings[0].remediation,
            ["Grant it", "Mint a token", "Retry"]
        );
    }

    #[test]
    fn only_the_first_findings_are_shown_whole_and_their_failures_are_sampled() {
        let mut records: Vec<Record> = (0..SHOWN + 5)
            .map(|i| finding(&format!("f{i:02}"), "high", "failure", 1000 - i as i64))
            .collect();
        let top = uid_of(&["findings", "f00"]);
        for i in 0..200 {
            let seed = format!("d{i:03}");
            records.push(record(
                "denials",
                &seed,
                T + HOUR + i * 1000,
                json!({"http_status": 403, "error_code": "insufficient_scope", "request_id": seed}),
            ));
            records.push(record(
                "finding_events",
                &format!("l{i:03}"),
                T + HOUR,
                json!({"finding_uid": top.to_string(), "related_event_uid": uid_of(&["denials", &seed]).to_string()}),
            ));
        }
        let r = gather(window(7), String::new(), &records, &[], HOUR);
        assert_eq!(r.findings.len(), SHOWN + 5);
        assert_eq!(
            r.findings.iter().filter(|f| f.detail.is_some()).count(),
            SHOWN
        );
        let d = r.findings[0].detail.as_ref().expect("shown whole");
        assert_eq!(d.said, [("403 insufficient_scope".to_string(), 200)]);
        // The first and the last SAMPLE failures, folded; the middle counted.
        let rows: Vec<(u64, &str)> = d
            .timeline
            .iter()
            .map(|r| (r.count, r.text.as_str()))
            .collect();
        assert_eq!(rows.len(), 3, "{rows:?}");
        assert_eq!(rows[0].0, SAMPLE as u64);
        assert_eq!(rows[1].1, "... 120 more failures ...");
        assert_eq!(rows[2].0, SAMPLE as u64);
        assert_eq!(d.timeline[0].ids, ["d000", "d001", "d002"]);
        assert_eq!(d.timeline[2].to_ms, T + HOUR + 199_000);
    }

    #[test]
    fn alike_failures_fold_into_one_row_and_long_timelines_lose_their_middle() {
        let entry = |i: i64, text: &str| Entry {
            time: T + i,
            kind: timeline::Kind::Failure,
            text: text.into(),
            id: Some(format!("req-{i}")),
        };
        let rows = condense(vec![
            entry(0, "a"),
            entry(1, "a"),
            entry(2, "a"),
            entry(3, "b"),
        ]);
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].count, rows[0].from_ms, rows[0].to_ms),
            (3, T, T + 2)
        );
        assert_eq!(rows[0].ids, ["req-0", "req-1", "req-2"]);
        // Alternating texts do not fold: the middle goes.
        let many: Vec<Entry> = (0..100)
            .map(|i| entry(i, if i % 2 == 0 { "a" } else { "b" }))
            .collect();
        let rows = condense(many);
        assert_eq!(rows.len(), FIRST_ROWS + 1 + LAST_ROWS);
        assert_eq!(rows[FIRST_ROWS].kind, timeline::Kind::Elided);
        assert!(rows[FIRST_ROWS].text.contains("60 more rows (60 failures)"));
    }

    #[test]
    fn source_notes_name_late_malformed_and_failing_sources() {
        let mut w = window(7);
        w.export = Some(crate::report::ExportInfo {
            export: 3,
            complete: false,
            late_sources: vec!["okta".into()],
            malformed: BTreeMap::from([(
                "proxy".to_string(),
                Malformed {
                    count: 2,
                    examples: vec!["a.log:7: not JSON".into()],
                },
            )]),
            planned_ms: None,
        });
        let failed = |at: i64, error: &str| SourceFailure {
            source: "github".into(),
            at_ms: at,
            error: error.into(),
        };
        let r = gather(
            w,
            String::new(),
            &[],
            &[failed(T + 2, "new"), failed(T + 1, "old")],
            0,
        );
        assert_eq!(r.sources.len(), 3);
        assert!(r.sources.contains(&SourceNote::Failed {
            source: "github".into(),
            runs: 2,
            last_ms: T + 2,
            last_error: "new".into(),
        }));
    }
}
