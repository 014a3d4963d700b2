//! Feeds: the engine side of reading a vendor's list, so a vendor file only says what to
//! request and how an item maps to records. A feed owns its cursor inside the source's
//! checkpoint, the boundary ids, the re-scan overlap, and when pages are staged:
//!
//! - **oldest first** (an audit log read in ascending order): the high-water mark moves with
//!   every staged batch, and the next run asks again from the mark minus the overlap;
//! - **newest first** (GitHub's webhook deliveries: no time filter, newest on top): a sweep
//!   reads down to the previous mark minus the overlap and commits the new mark only once it
//!   got there. An interrupted sweep is remembered (its top and the next page's URL): the
//!   next run finishes it first, then sweeps again from the top.
//!
//! Items read again in the overlap are skipped by the ids the mark keeps of its last
//! `rescan_overlap`, so a rerun long after the source's dedup set forgot them stages nothing
//! twice; the dedup set drops anything else read twice within its horizon.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Result, anyhow};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::http::{Api, Page, Paging};
use crate::model::Record;
use crate::staging::SourceSession;

/// Records staged per segment, and pages read between checkpoints when nothing is staged.
const BATCH_RECORDS: usize = 5_000;
const BATCH_PAGES: usize = 100;

/// The newest item time read, and the (time, id) of every item within the re-scan overlap
/// of it: a re-read of the overlap skips these, so nothing is staged twice however long ago
/// the last run was (the source's dedup set only covers a recent horizon).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Mark {
    pub time_ms: i64,
    pub recent: BTreeSet<(i64, String)>,
}

impl Mark {
    fn include(mark: &mut Option<Mark>, time_ms: i64, id: &str, overlap_ms: i64) {
        let m = mark.get_or_insert_with(|| Mark {
            time_ms,
            recent: BTreeSet::new(),
        });
        if time_ms > m.time_ms {
            m.time_ms = time_ms;
            let oldest = time_ms - overlap_ms;
            m.recent = m.recent.split_off(&(oldest, String::new()));
        }
        if time_ms >= m.time_ms - overlap_ms {
            m.recent.insert((time_ms, id.to_string()));
        }
    }

    fn merge(into: &mut Option<Mark>, other: &Mark, overlap_ms: i64) {
        for (time_ms, id) in &other.recent {
            Mark::include(into, *time_ms, id, overlap_ms);
        }
    }

    fn holds(mark: Option<&Mark>, time_ms: i64, id: &str) -> bool {
        mark.is_some_and(|m| {
            time_ms >= m.recent.first().map_or(m.time_ms, |f| f.0)
                && m.recent.contains(&(time_ms, id.to_string()))
        })
    }
}

/// A newest-first sweep that has not reached the previous mark yet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sweep {
    pub top: Mark,
    pub next: String,
    /// Where the sweep stops, fixed when it started: a first sweep's floor (the initial
    /// lookback) would otherwise move with the clock between runs.
    #[serde(default)]
    pub floor_ms: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FeedCursor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high: Option<Mark>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<Sweep>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Cursors {
    feeds: BTreeMap<String, FeedCursor>,
    /// What a source remembers of objects that are not events (Stripe's webhook endpoints),
    /// to tell what changed; saved with the feeds.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    state: BTreeMap<String, serde_json::Value>,
}

/// One item of a page: its time and the vendor's id (for the mark), and its rows (none for
/// items that are not failures).
pub struct Item {
    pub time_ms: i64,
    pub id: String,
    pub records: Vec<Record>,
}

/// What a page held: items, and the ones that could not be read (index, reason).
pub type Read = Vec<Result<Item, String>>;

/// The feeds of one source in one collection.
pub struct Feeds<'s, 'a> {
    session: &'s mut SourceSession<'a>,
    cursors: Cursors,
    pending: Vec<Record>,
    pages_since_save: usize,
    overlap_ms: i64,
    /// Where a feed read for the first time starts.
    first_floor_ms: i64,
    /// Items later than this are not believed (a clock of the vendor's far ahead would
    /// otherwise move a mark past every real item).
    latest_ms: i64,
    /// Set when staging failed: the session's state is then unknown, so nothing more is
    /// staged in this collection (the next run starts from the last committed checkpoint).
    broken: bool,
}

impl<'s, 'a> Feeds<'s, 'a> {
    pub fn open(
        session: &'s mut SourceSession<'a>,
        overlap: chrono::Duration,
        initial_lookback: chrono::Duration,
    ) -> Result<Self> {
        let cursors = match session.cursor() {
            None => Cursors::default(),
            Some(v) => serde_json::from_value(v.clone()).map_err(|e| {
                anyhow!("the checkpoint's cursor is not a feed cursor ({e}); was the source's kind changed? Move its state aside to collect it again")
            })?,
        };
        let first_floor_ms = (session.now() - initial_lookback).timestamp_millis();
        let latest_ms = (session.now() + chrono::Duration::days(1)).timestamp_millis();
        Ok(Feeds {
            session,
            cursors,
            pending: Vec::new(),
            pages_since_save: 0,
            overlap_ms: overlap.num_milliseconds(),
            first_floor_ms,
            latest_ms,
            broken: false,
        })
    }

    pub fn session(&mut self) -> &mut SourceSession<'a> {
        self.session
    }

    /// Where a read of `key` starts: the mark minus the overlap, or the initial lookback.
    pub fn since_ms(&self, key: &str) -> i64 {
        self.cursors
            .feeds
            .get(key)
            .and_then(|c| c.high.as_ref())
            .map_or(self.first_floor_ms, |h| h.time_ms - self.overlap_ms)
    }

    /// Reads a list whose pages come oldest first, from `first` (which asks from
    /// `since_ms(key)` on).
    pub async fn oldest_first(
        &mut self,
        key: &str,
        api: &Api,
        first: Url,
        paging: Paging,
        operation: &str,
        read: impl Fn(&Page) -> Result<Read>,
    ) -> Result<()> {
        if self.broken {
            return self.save(api).await;
        }
        let since = self.since_ms(key);
        let mut pages = api.pages(first, paging, operation);
        loop {
            let page = match pages.next().await {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(e) => return self.fail(api, e).await,
            };
            let high = self.cursor(key).high.clone();
            let mut mark = high.clone();
            for item in self.items(&page, &read)? {
                if item.time_ms < since || Mark::holds(high.as_ref(), item.time_ms, &item.id) {
                    continue;
                }
                Mark::include(&mut mark, item.time_ms, &item.id, self.overlap_ms);
                self.pending.extend(item.records);
            }
            self.cursor(key).high = mark;
            self.page_done(api).await?;
            if self.session.cancelled() {
                break;
            }
        }
        if pages.capped() {
            tracing::info!(
                feed = key,
                "stopped at [http] max_pages; the next run goes on"
            );
        }
        self.save(api).await
    }

    /// Reads a list whose pages come newest first, down to the previous mark minus the
    /// overlap.
    pub async fn newest_first(
        &mut self,
        key: &str,
        api: &Api,
        first: Url,
        paging: Paging,
        operation: &str,
        read: impl Fn(&Page) -> Result<Read>,
    ) -> Result<()> {
        if self.broken {
            return self.save(api).await;
        }
        if let Some(sweep) = self.cursor(key).sweep.clone() {
            // A resume URL from another origin (api_url changed) would take the token there.
            let next = Url::parse(&sweep.next)
                .ok()
                .filter(|n| crate::http::client::same_origin(&first, n).is_ok());
            match next {
                Some(next) => {
                    let floor = sweep.floor_ms.unwrap_or_else(|| self.since_ms(key));
                    let resumed = self
                        .sweep(
                            key,
                            api,
                            next,
                            paging.clone(),
                            operation,
                            &read,
                            (Some(sweep.top), floor),
                        )
                        .await;
                    match resumed {
                        Ok(true) => {}
                        Ok(false) => return self.save(api).await,
                        // Worth the same try next run (the vendor was away, the token refused,
                        // the process asked to stop); staging failures end the collection.
                        Err(e)
                            if crate::error::is_temporary(&e)
                                || crate::error::is_config(&e)
                                || crate::error::is_interrupted(&e)
                                || self.broken =>
                        {
                            return Err(e);
                        }
                        // A page that will never come (a cursor that no longer works or
                        // does not advance) must not block the newer deliveries above it.
                        Err(e) => {
                            tracing::warn!(feed = key, error = %format!("{e:#}"), "giving up the interrupted sweep; sweeping again from the top");
                            self.cursor(key).sweep = None;
                        }
                    }
                }
                None => self.cursor(key).sweep = None,
            }
        }
        if self.session.cancelled() {
            return self.save(api).await;
        }
        let floor = self.since_ms(key);
        self.sweep(key, api, first, paging, operation, &read, (None, floor))
            .await?;
        self.save(api).await
    }

    /// One sweep from `url` down to `floor`, from `top` on (an interrupted sweep's); true when
    /// it reached the floor or the end of the list.
    #[allow(clippy::too_many_arguments)]
    async fn sweep(
        &mut self,
        key: &str,
        api: &Api,
        url: Url,
        paging: Paging,
        operation: &str,
        read: &impl Fn(&Page) -> Result<Read>,
        (mut top, floor): (Option<Mark>, i64),
    ) -> Result<bool> {
        let high = self.cursor(key).high.clone();
        let mut pages = api.pages(url, paging, operation);
        let mut reached_floor = false;
        while !reached_floor {
            let page = match pages.next().await {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(e) => return self.fail(api, e).await.map(|()| false),
            };
            for item in self.items(&page, read)? {
                if item.time_ms < floor {
                    reached_floor = true;
                    continue;
                }
                Mark::include(&mut top, item.time_ms, &item.id, self.overlap_ms);
                if Mark::holds(high.as_ref(), item.time_ms, &item.id) {
                    continue;
                }
                self.pending.extend(item.records);
            }
            let cursor = self.cursor(key);
            cursor.sweep = match (&top, pages.pending()) {
                (Some(top), Some(next)) if !reached_floor => Some(Sweep {
                    top: top.clone(),
                    next: next.to_string(),
                    floor_ms: Some(floor),
                }),
                _ => None,
            };
            self.page_done(api).await?;
            if self.session.cancelled() {
                return Ok(false);
            }
        }
        if pages.capped() && !reached_floor {
            tracing::info!(
                feed = key,
                "stopped at [http] max_pages; the next run finishes the sweep"
            );
            return Ok(false);
        }
        let overlap_ms = self.overlap_ms;
        let cursor = self.cursor(key);
        cursor.sweep = None;
        if let Some(top) = &top {
            Mark::merge(&mut cursor.high, top, overlap_ms);
        }
        Ok(true)
    }

    fn cursor(&mut self, key: &str) -> &mut FeedCursor {
        self.cursors.feeds.entry(key.to_string()).or_default()
    }

    fn items(&mut self, page: &Page, read: &impl Fn(&Page) -> Result<Read>) -> Result<Vec<Item>> {
        let mut items = Vec::new();
        for (i, item) in read(page)?.into_iter().enumerate() {
            match item {
                Ok(item) if !(0..=self.latest_ms).contains(&item.time_ms) => {
                    self.session.malformed(
                        &format!("{} item {}", page.at, i + 1),
                        &format!(
                            "impossible time {} (epoch ms): before 1970 or more than a day ahead",
                            item.time_ms
                        ),
                    )
                }
                Ok(item) => items.push(item),
                Err(reason) => self
                    .session
                    .malformed(&format!("{} item {}", page.at, i + 1), &reason),
            }
        }
        Ok(items)
    }

    async fn page_done(&mut self, api: &Api) -> Result<()> {
        self.pages_since_save += 1;
        if self.pending.len() >= BATCH_RECORDS || self.pages_since_save >= BATCH_PAGES {
            self.save(api).await?;
        }
        Ok(())
    }

    /// Keeps what was read before a failure, then reports it.
    async fn fail(&mut self, api: &Api, e: anyhow::Error) -> Result<()> {
        if let Err(save) = self.save(api).await {
            tracing::error!(error = %format!("{e:#}"), "reading failed, and so did staging what was read before");
            return Err(save);
        }
        Err(e)
    }

    /// Stages what is pending (and scopetrail's own rows) with the cursors that follow it.
    pub async fn save(&mut self, api: &Api) -> Result<()> {
        if self.broken {
            return Err(anyhow!(
                "staging failed earlier in this collection; the next run goes on from the last committed checkpoint"
            ));
        }
        let mut records = std::mem::take(&mut self.pending);
        records.extend(api.take_own());
        self.pages_since_save = 0;
        let cursor = serde_json::to_value(&self.cursors)?;
        let saved = self.session.save(records, cursor).await;
        self.broken = saved.is_err();
        saved
    }

    /// True once staging failed in this collection.
    pub fn broken(&self) -> bool {
        self.broken
    }

    /// What the source kept under `key` at the last save.
    pub fn state(&self, key: &str) -> Option<&serde_json::Value> {
        self.cursors.state.get(key)
    }

    /// Keeps `value` under `key`, saved with the next staged records.
    pub fn set_state(&mut self, key: &str, value: serde_json::Value) {
        self.cursors.state.insert(key.to_string(), value);
    }

    /// Stages records that belong to no feed (changes found by comparing `state`).
    pub fn stage(&mut self, records: impl IntoIterator<Item = Record>) {
        self.pending.extend(records);
    }

    /// Ends a collection whose lists were read one after another, each failure kept so one
    /// list refused does not stop the others: stages scopetrail's own rows of calls after
    /// the last save, counts the calls for the run record, and reports the first failure.
    pub async fn finish(mut self, api: &Api, mut failures: Vec<anyhow::Error>) -> Result<()> {
        if !self.broken
            && (api.has_own() || !self.pending.is_empty())
            && let Err(e) = self.save(api).await
        {
            failures.push(e);
        }
        self.count_calls(api);
        let mut failures = failures.into_iter();
        match failures.next() {
            None => Ok(()),
            Some(first) => {
                let more = failures.count();
                if more > 0 {
                    tracing::warn!("{more} more lists of this source failed; see the errors above");
                }
                Err(first)
            }
        }
    }

    /// Adds an API view's calls to the run record (`finish` does it for the source's main
    /// view; a second view, such as a GitHub App's, is counted with this).
    pub fn count_calls(&mut self, api: &Api) {
        let stats = api.stats();
        for (counter, n) in [
            ("requests", stats.requests),
            ("retries", stats.retries),
            ("429s received", stats.rate_limited),
            ("ms paced", stats.paced_ms),
        ] {
            if n > 0 {
                self.session.count(counter, n);
            }
        }
    }

    /// Forgets the feeds under `prefix` other than `keep` (hooks no longer listed).
    pub fn retain(&mut self, prefix: &str, keep: &[String]) {
        self.cursors
            .feeds
            .retain(|k, _| !k.starts_with(prefix) || keep.iter().any(|x| x == k));
    }
}

#[cfg(test)]
mod tests {
    use super::Mark;

    #[test]
    fn a_mark_keeps_the_ids_of_its_overlap() {
        let mut mark = None;
        for (t, id) in [(5000, "a"), (4500, "b"), (3000, "c"), (5000, "e")] {
            Mark::include(&mut mark, t, id, 1000);
        }
        let m = mark.clone().expect("mark");
        assert_eq!(m.time_ms, 5000);
        assert!(Mark::holds(Some(&m), 4500, "b") && Mark::holds(Some(&m), 5000, "e"));
        assert!(!Mark::holds(Some(&m), 3000, "c"), "older than the overlap");
        assert!(!Mark::holds(Some(&m), 4500, "x"));
        Mark::include(&mut mark, 7000, "d", 1000);
        let m = mark.expect("mark");
        assert_eq!(m.recent.len(), 1, "{m:?}");
        assert!(Mark::holds(Some(&m), 7000, "d") && !Mark::holds(Some(&m), 5000, "a"));
    }
}
