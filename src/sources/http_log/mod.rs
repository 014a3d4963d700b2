//! `http_log`: an integration's own outbound HTTP logs, where most 401/403s and 429s are seen
//! first. Lines are JSON (a mapping of dotted paths: read by their learned layout, `shape.rs`,
//! or in one pass over their bytes, `scan.rs`), nginx/Apache combined, or matched by a
//! regular expression; files are plain or gzip and read exactly once across rotation
//! (`files.rs`). Every line is counted into hourly `request_counts`; 401/403 lines become
//! `denials`, 429/503 lines rate-limit events (the input of `rate_limit_bursts`).
//!
//! The cursor is the list of (fingerprint, offset) pairs of the files read, with the
//! operations admitted per service; each row's id derives from its file's fingerprint and the
//! line's offset.

mod counts;
mod files;
mod format;
mod json;
mod routes;
mod scan;
mod shape;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use toml::Spanned;
use toml::de::DeValue;

use self::counts::{Classes, CountKey, Counts};
use self::files::{FileState, MAX_LINE_BYTES};
use self::format::{COMBINED_TIME, Field, LineFormat, Slots, Times, field_named};
use self::routes::Template;
use self::shape::Shapes;
use super::{BuildContext, Coverage, Source, SourceConfig, SourceSpec, host_matches};
use crate::bindings::{Bindings, Claim};
use crate::config::{Doc, Dur, Name, Tenant};
use crate::http::challenge;
use crate::model::uid::Origin;
use crate::model::{Dataset, Denial, Header, RateLimitEvent, Record, RequestCount};
use crate::staging::SourceSession;

pub const KIND: &str = "http_log";
pub const DATASETS: &[Dataset] = &[
    Dataset::Denials,
    Dataset::RequestCounts,
    Dataset::RateLimitBursts,
];

/// Records per staged page: bounds memory whatever the size of the logs.
const PAGE_RECORDS: usize = 5_000;
/// Default for how long logrotate keeps the files (`rotate 7` of daily logs).
const DEFAULT_RETENTION_DAYS: u64 = 7;
const DEFAULT_MAX_OPERATIONS: usize = 1000;

#[derive(Debug, Deserialize)]
pub struct Settings {
    /// Glob patterns, relative to the configuration file's folder.
    pub paths: Vec<Spanned<String>>,
    #[serde(default)]
    pub format: LogFormat,
    /// For `format = "json"`: dotted paths into each line.
    pub fields: Option<BTreeMap<String, Spanned<String>>>,
    /// For `format = "regex"`: named captures are the fields (time, status, method...).
    pub pattern: Option<Spanned<String>>,
    /// strftime format of `time` (default: RFC 3339 or epoch numbers; for `combined`, the
    /// common log format's `%d/%b/%Y:%H:%M:%S %z`).
    pub time_format: Option<String>,
    /// Host -> vendor and tenant (and route templates), first match wins.
    #[serde(default)]
    pub hosts: Vec<HostRule>,
    /// Vendor of lines whose host no rule maps (default `other`).
    pub vendor: Option<Name>,
    /// Distinct operations counted per service before the rest become `{other}`.
    pub max_operations_per_service: Option<usize>,
    pub retention: Option<Dur>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Json,
    Combined,
    Regex,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HostRule {
    /// `api.github.com`, or `*.oraclecloud.com` for any subdomain.
    pub host: String,
    pub vendor: Name,
    /// Default: the source's tenant.
    pub tenant: Option<Spanned<Name>>,
    /// Route templates (`/repos/{owner}/{repo}/hooks/{id}`) tried before ids are recognized.
    #[serde(default)]
    pub routes: Vec<Spanned<String>>,
}

impl Settings {
    pub fn decode(
        doc: &mut Doc<'_>,
        value: &Spanned<DeValue<'_>>,
        what: &str,
        tenants: &BTreeMap<String, Tenant>,
    ) -> Option<Settings> {
        let settings: Settings = doc.decode(value, what)?;
        if settings.paths.is_empty() {
            doc.error(value.span(), format!("{what}: `paths` lists no files"));
        }
        for p in &settings.paths {
            if let Err(e) = glob::Pattern::new(p.get_ref()) {
                doc.error(p.span(), format!("{what}: invalid glob pattern: {e}"));
            }
        }
        match settings.format {
            LogFormat::Json => match &settings.fields {
                None => doc.error(value.span(), format!("{what}: format \"json\" needs a [fields] table (at least time and status)")),
                Some(fields) => {
                    for (name, path) in fields {
                        if field_named(name).is_none() {
                            doc.error(path.span(), format!("{what}: unknown field `{name}` (fields: {})", field_names()));
                        }
                    }
                    for required in ["time", "status"] {
                        if !fields.contains_key(required) {
                            doc.error(value.span(), format!("{what}: [fields] needs `{required}`"));
                        }
                    }
                }
            },
            LogFormat::Regex => match &settings.pattern {
                None => doc.error(value.span(), format!("{what}: format \"regex\" needs `pattern`, with named captures for the fields")),
                Some(p) => match regex::Regex::new(p.get_ref()) {
                    Err(e) => doc.error(p.span(), format!("{what}: invalid pattern: {e}")),
                    Ok(re) => {
                        let names: Vec<&str> = re.capture_names().flatten().collect();
                        for n in &names {
                            if field_named(n).is_none() {
                                doc.error(p.span(), format!("{what}: capture `{n}` is not a field (fields: {})", field_names()));
                            }
                        }
                        for required in ["time", "status"] {
                            if !names.contains(&required) {
                                doc.error(p.span(), format!("{what}: the pattern needs a capture named `{required}`"));
                            }
                        }
                    }
                },
            },
            LogFormat::Combined => {}
        }
        if settings.format != LogFormat::Json && settings.fields.is_some() {
            doc.error(
                value.span(),
                format!(
                    "{what}: [fields] is for format \"json\"; the {:?} format knows its fields",
                    settings.format
                ),
            );
        }
        if settings.format != LogFormat::Regex && settings.pattern.is_some() {
            doc.error(
                value.span(),
                format!("{what}: `pattern` is for format \"regex\""),
            );
        }
        for rule in &settings.hosts {
            if let Some(t) = &rule.tenant
                && !tenants.contains_key(t.get_ref().as_str())
            {
                doc.error(
                    t.span(),
                    format!(
                        "{what}: tenant `{}` is not defined under [tenants]",
                        t.get_ref()
                    ),
                );
            }
            for r in &rule.routes {
                if let Err(e) = Template::parse(r.get_ref()) {
                    doc.error(r.span(), format!("{what}: {e}"));
                }
            }
        }
        if settings.max_operations_per_service == Some(0) {
            doc.error(
                value.span(),
                format!("{what}: max_operations_per_service must be at least 1"),
            );
        }
        Some(settings)
    }

    fn retention(&self) -> Dur {
        self.retention.unwrap_or(Dur(std::time::Duration::from_secs(
            DEFAULT_RETENTION_DAYS * 86_400,
        )))
    }

    fn default_vendor(&self) -> &str {
        self.vendor.as_ref().map_or("other", |v| v.as_str())
    }

    fn line_format(&self) -> Result<LineFormat> {
        Ok(match self.format {
            LogFormat::Json => {
                let (mut counted, mut all) = (json::Paths::default(), json::Paths::default());
                for (name, path) in self.fields.iter().flatten() {
                    let field =
                        field_named(name).with_context(|| format!("unknown field {name}"))?;
                    all.add(path.get_ref(), field as usize);
                    if COUNTED.contains(&field) {
                        counted.add(path.get_ref(), field as usize);
                    }
                }
                // The first reading of a line skips the other mapped fields by their keys.
                counted.skip_others(&all);
                LineFormat::Json { counted, all }
            }
            LogFormat::Combined => LineFormat::Combined,
            LogFormat::Regex => {
                let pattern = self
                    .pattern
                    .as_ref()
                    .context("format regex without a pattern")?;
                let regex = regex::Regex::new(pattern.get_ref())?;
                let groups = regex
                    .capture_names()
                    .enumerate()
                    .filter_map(|(i, n)| Some((i, field_named(n?)?)))
                    .collect();
                LineFormat::Regex { regex, groups }
            }
        })
    }
}

impl SourceConfig for Settings {
    fn kind(&self) -> &'static str {
        "http_log"
    }

    fn datasets(&self) -> &'static [Dataset] {
        DATASETS
    }

    fn default_retention(&self) -> Option<Dur> {
        Some(self.retention())
    }

    fn tenants(&self, default_tenant: &str) -> Vec<String> {
        let mut out = vec![default_tenant.to_string()];
        out.extend(
            self.hosts
                .iter()
                .filter_map(|r| r.tenant.as_ref())
                .map(|t| t.get_ref().0.clone()),
        );
        out.sort();
        out.dedup();
        out
    }

    fn coverage(&self, default_tenant: &str) -> Vec<Coverage> {
        let mut out: Vec<Coverage> = self
            .hosts
            .iter()
            .map(|rule| Coverage {
                vendor: rule.vendor.0.clone(),
                tenant: rule
                    .tenant
                    .as_ref()
                    .map_or(default_tenant.to_string(), |t| t.get_ref().0.clone()),
                host: Some(rule.host.to_ascii_lowercase()),
            })
            .collect();
        if let Some(vendor) = &self.vendor {
            out.push(Coverage {
                vendor: vendor.0.clone(),
                tenant: default_tenant.to_string(),
                host: None,
            });
        }
        out
    }

    fn build(&self, spec: &SourceSpec, ctx: &BuildContext<'_>) -> Result<Box<dyn Source>> {
        Ok(Box::new(HttpLog::new(spec, self, ctx)?))
    }
}

/// What every line needs: counting it and attributing it.
const COUNTED: [Field; 8] = [
    Field::Time,
    Field::Status,
    Field::Method,
    Field::Url,
    Field::Host,
    Field::Path,
    Field::ClientId,
    Field::CredentialHint,
];

fn field_names() -> String {
    format::FIELDS
        .iter()
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where reading stands.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Cursor {
    files: Vec<FileState>,
    /// Per service, the operations counted under their own name (the rest are `{other}`).
    #[serde(default)]
    operations: BTreeMap<String, Vec<String>>,
}

pub struct HttpLog {
    inner: Arc<Reader>,
}

/// A host mapping, resolved: what its lines are attributed to.
struct Mapping {
    vendor: String,
    tenant: String,
    environment: String,
    routes: Vec<Template>,
}

/// Everything the blocking reader needs.
struct Reader {
    patterns: Vec<String>,
    format: LineFormat,
    time_format: Option<String>,
    hosts: Vec<HostRule>,
    /// One per host rule, then the default (unmapped hosts).
    mappings: Vec<Mapping>,
    bindings: Arc<Bindings>,
    lookback: Dur,
    retention: Dur,
    max_operations: usize,
}

impl HttpLog {
    pub fn new(spec: &SourceSpec, settings: &Settings, ctx: &BuildContext<'_>) -> Result<Self> {
        let environment = |tenant: &str| {
            ctx.tenants
                .get(tenant)
                .map_or(String::new(), |t| t.environment.clone())
        };
        let mut mappings: Vec<Mapping> = settings
            .hosts
            .iter()
            .map(|rule| {
                let tenant = rule
                    .tenant
                    .as_ref()
                    .map_or(spec.tenant.clone(), |t| t.get_ref().0.clone());
                Ok(Mapping {
                    vendor: rule.vendor.0.clone(),
                    environment: environment(&tenant),
                    tenant,
                    routes: rule
                        .routes
                        .iter()
                        .map(|r| Template::parse(r.get_ref()))
                        .collect::<Result<_, _>>()
                        .map_err(anyhow::Error::msg)?,
                })
            })
            .collect::<Result<_>>()?;
        mappings.push(Mapping {
            vendor: settings.default_vendor().to_string(),
            tenant: spec.tenant.clone(),
            environment: environment(&spec.tenant),
            routes: Vec::new(),
        });
        let time_format = match (&settings.time_format, settings.format) {
            (Some(f), _) => Some(f.clone()),
            (None, LogFormat::Combined) => Some(COMBINED_TIME.to_string()),
            (None, _) => None,
        };
        Ok(HttpLog {
            inner: Arc::new(Reader {
                patterns: settings
                    .paths
                    .iter()
                    .map(|p| {
                        ctx.base_dir
                            .join(p.get_ref())
                            .to_string_lossy()
                            .into_owned()
                    })
                    .collect(),
                format: settings.line_format()?,
                time_format,
                hosts: settings.hosts.clone(),
                mappings,
                bindings: ctx.bindings.clone(),
                lookback: spec.cadence.initial_lookback,
                retention: settings.retention(),
                max_operations: settings
                    .max_operations_per_service
                    .unwrap_or(DEFAULT_MAX_OPERATIONS),
            }),
        })
    }
}

/// What the blocking reader sends to the collection.
enum Message {
    Page(Vec<Record>, serde_json::Value),
    Malformed(String, String),
    Count(&'static str, u64),
}

#[async_trait]
impl Source for HttpLog {
    async fn collect(&mut self, session: &mut SourceSession<'_>) -> Result<()> {
        let cursor: Option<Cursor> = session
            .cursor()
            .map(|v| serde_json::from_value(v.clone()))
            .transpose()
            .context("reading the http_log cursor")?;
        let now = session.now();
        let cancel = session.cancel_token();
        let (tx, mut rx) = tokio::sync::mpsc::channel(2);
        let reader = self.inner.clone();
        let task = tokio::task::spawn_blocking(move || reader.read_all(cursor, now, &cancel, &tx));
        while let Some(message) = rx.recv().await {
            match message {
                Message::Page(records, cursor) => session.save(records, cursor).await?,
                Message::Malformed(at, reason) => session.malformed(&at, &reason),
                Message::Count(name, n) => session.count(name, n),
            }
        }
        task.await?
    }
}

type Tx = tokio::sync::mpsc::Sender<Message>;

fn send(tx: &Tx, message: Message) -> Result<()> {
    // The receiver is gone only when staging failed; that error is the one to report.
    tx.blocking_send(message)
        .map_err(|_| anyhow::anyhow!("collection stopped"))
}

/// (mapping, client id, hint, host), interned.
type ClaimKey = (usize, Option<u32>, Option<u32>, Option<u32>);

/// One collection's reading state, across files.
struct Pass<'a> {
    cursor: Cursor,
    page: Vec<Record>,
    counts: Counts,
    /// Where the lines counted since the last page began: part of the counts' ids.
    counts_from: Option<String>,
    /// (host) -> mapping index, and (mapping, client, hint, host) -> credential index.
    host_mappings: FxHashMap<String, usize>,
    credentials: FxHashMap<ClaimKey, Option<usize>>,
    /// A line's (host, method, client, hint) as logged -> what it is counted as (see
    /// `Reader::attribution`), and the key being looked up, reused from line to line.
    attributions: FxHashMap<Box<[u8]>, Attribution>,
    attribution_key: Vec<u8>,
    /// `WWW-Authenticate` values as logged -> what they say: a log repeats a few of them.
    challenges: FxHashMap<Box<str>, Option<challenge::Challenge>>,
    times: Times,
    /// The layouts of the lines read so far (see `shape.rs`).
    shapes: Shapes,
    classes: Classes,
    /// (service, path before a trailing id) -> the operation counted (see
    /// `Reader::operation_id`), and the key being looked up, reused from line to line.
    prefix_operations: FxHashMap<Box<[u8]>, u32>,
    prefix_key: Vec<u8>,
    operation: String,
    lines: u64,
    now_ms: i64,
    since_ms: i64,
    cancel: &'a CancellationToken,
    tx: &'a Tx,
}

/// What a line's host, method, client and hint are counted and attributed as.
#[derive(Clone, Copy)]
struct Attribution {
    mapping: usize,
    service: u32,
    method: u32,
    actor: Option<u32>,
    credential: Option<usize>,
}

/// Distinct (host, method, client, hint) remembered per collection; past that many (a log
/// whose clients are all different), lines are attributed without being remembered.
const MAX_ATTRIBUTIONS: usize = 1 << 16;
/// Distinct (service, path before a trailing id) remembered per collection.
const MAX_PREFIXES: usize = 1 << 16;
/// Longer keys (odd logs with huge client ids) are not remembered: the cache stays a few MB.
const MAX_ATTRIBUTION_KEY: usize = 256;

/// Where a line is: its file's identity and its offset, for ids and reports.
struct At<'a> {
    file_id: &'a str,
    offset: u64,
}

impl Reader {
    fn read_all(
        &self,
        cursor: Option<Cursor>,
        now: DateTime<Utc>,
        cancel: &CancellationToken,
        tx: &Tx,
    ) -> Result<()> {
        let now_ms = now.timestamp_millis();
        let cursor_given = cursor.is_some();
        let cursor = cursor.unwrap_or_default();
        let mut pass = Pass {
            counts: Counts::new(self.max_operations, &cursor.operations),
            cursor,
            page: Vec::with_capacity(PAGE_RECORDS),
            counts_from: None,
            host_mappings: FxHashMap::default(),
            credentials: FxHashMap::default(),
            attributions: FxHashMap::default(),
            attribution_key: Vec::new(),
            challenges: FxHashMap::default(),
            times: Times::new(self.time_format.clone()),
            shapes: Shapes::default(),
            classes: Classes::default(),
            prefix_operations: FxHashMap::default(),
            prefix_key: Vec::new(),
            operation: String::new(),
            lines: 0,
            now_ms,
            // Only the first collection is bounded by the lookback; after that every new
            // line counts, late ones included.
            since_ms: if cursor_given {
                i64::MIN
            } else {
                now_ms - self.lookback.ms()
            },
            cancel,
            tx,
        };
        let paths = self.files()?;
        let mut failed = Vec::new();
        for path in &paths {
            if cancel.is_cancelled() {
                break;
            }
            // One unreadable file must not stop the others; it fails the collection after them.
            if let Err(e) = self.read_file(path, &mut pass) {
                failed.push(format!("{}: {e:#}", path.display()));
            }
        }
        pass.cursor
            .files
            .retain(|f| f.seen_ms >= now_ms - 2 * self.retention.ms());
        send(tx, Message::Count("lines", pass.lines))?;
        send(tx, Message::Count("files", paths.len() as u64))?;
        self.flush(&mut pass)?;
        // A gap must not pass for a quiet week: the watermark does not move past it.
        if paths.is_empty() {
            anyhow::bail!(
                "no file matches {}: nothing was read",
                self.patterns.join(", ")
            );
        }
        if !failed.is_empty() {
            let message = format!(
                "{} of {} files could not be read to the end: {}",
                failed.len(),
                paths.len(),
                failed.join("; ")
            );
            // A compressed file is usually still being written by logrotate: the next run reads it.
            if failed.iter().all(|f| f.contains(".gz:")) {
                return Err(crate::error::Temporary(message).into());
            }
            anyhow::bail!(message);
        }
        Ok(())
    }

    /// Stages what was read so far, with the cursor that follows it.
    fn flush(&self, pass: &mut Pass<'_>) -> Result<()> {
        let from = pass.counts_from.take().unwrap_or_default();
        let counted = pass.counts.take();
        pass.page.reserve_exact(counted.len());
        // The next page is reserved whole, with room for about as many counts as this one:
        // records are large, and a page grown from empty (or grown for its counts) moved
        // them and touched up to twice its memory.
        let next = Vec::with_capacity(PAGE_RECORDS + counted.len() + counted.len() / 4);
        for (key, n) in counted {
            pass.page.push(self.count_row(&pass.counts, key, n, &from));
        }
        pass.cursor.operations = pass.counts.admitted();
        let cursor = serde_json::to_value(&pass.cursor)?;
        send(
            pass.tx,
            Message::Page(std::mem::replace(&mut pass.page, next), cursor),
        )
    }

    fn files(&self) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        for pattern in &self.patterns {
            for entry in glob::glob(pattern).with_context(|| format!("glob {pattern}"))? {
                match entry {
                    Ok(p) if p.is_file() => out.push(p),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot read a path the glob matched"),
                }
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    fn read_file(&self, path: &Path, pass: &mut Pass<'_>) -> Result<()> {
        let opened = files::Opened::open(path)?;
        if opened.prefix.is_empty() {
            return Ok(());
        }
        let index = match files::find_state(&pass.cursor.files, &opened.prefix) {
            Some(i) => i,
            None => {
                pass.cursor
                    .files
                    .push(FileState::new(&opened.prefix, pass.now_ms));
                pass.cursor.files.len() - 1
            }
        };
        let state = &mut pass.cursor.files[index];
        if !opened.gzip && state.offset > opened.len {
            // Truncated in place (copytruncate) and rewritten with the same beginning: a new
            // file under an old name.
            tracing::warn!(path = %path.display(), offset = state.offset, len = opened.len, "the file is shorter than what was read of it: reading it as a new file");
            *state = FileState::new(
                &[&opened.prefix[..], &pass.now_ms.to_be_bytes()[..]].concat(),
                pass.now_ms,
            );
        }
        state.saw(&opened.prefix, path, pass.now_ms);
        let gzip = opened.gzip;
        let mut input = opened.read_from(state.offset)?;
        let file_id = pass.cursor.files[index].id.clone();
        let mut long = Vec::new();
        loop {
            // Most lines lie whole in the reader's buffer: read them there, without a copy.
            let in_place = {
                let buf = input.fill_buf()?;
                match memchr::memchr(b'\n', buf) {
                    Some(end) => {
                        self.line(&buf[..=end], path, index, &file_id, false, pass)?;
                        Some(end + 1)
                    }
                    None => None,
                }
            };
            match in_place {
                Some(n) => input.consume(n),
                None => {
                    long.clear();
                    let read = files::read_line(&mut input, &mut long)?;
                    // An unterminated last line of a plain file may still be being written;
                    // a compressed file is finished.
                    if read.read == 0 || (!read.complete && !gzip) {
                        break;
                    }
                    let bytes = if read.too_long { &long[..0] } else { &long[..] };
                    // A line too long to keep still moves the offset by all its bytes.
                    pass.cursor.files[index].offset += (read.read - bytes.len()) as u64;
                    self.line(bytes, path, index, &file_id, read.too_long, pass)?;
                }
            }
            if pass.page.len() >= PAGE_RECORDS {
                self.flush(pass)?;
            }
            // Asked to stop: the lines read so far go out with the last page, whose cursor
            // says exactly where the next run resumes.
            if pass.lines.is_multiple_of(4096) && pass.cancel.is_cancelled() {
                break;
            }
        }
        Ok(())
    }

    /// One line of a file: moves the file's offset past it, then counts it (or reports it).
    fn line(
        &self,
        bytes: &[u8],
        path: &Path,
        index: usize,
        file_id: &str,
        too_long: bool,
        pass: &mut Pass<'_>,
    ) -> Result<()> {
        let state = &mut pass.cursor.files[index];
        let offset = state.offset;
        state.offset += bytes.len() as u64;
        state.lines += 1;
        let line_no = state.lines;
        let report =
            |reason: String| Message::Malformed(format!("{}:{line_no}", path.display()), reason);
        if too_long {
            return send(
                pass.tx,
                report(format!("line longer than {MAX_LINE_BYTES} bytes")),
            );
        }
        pass.lines += 1;
        if pass.counts_from.is_none() {
            pass.counts_from = Some(format!("{file_id}@{offset}"));
        }
        let at = At { file_id, offset };
        if let Err(reason) = self.process(bytes, &at, pass) {
            send(pass.tx, report(reason))?;
        }
        Ok(())
    }

    /// Counts one line; a 401/403 becomes a denial, a 429/503 a rate-limit event.
    fn process(&self, line: &[u8], at: &At<'_>, pass: &mut Pass<'_>) -> Result<(), String> {
        let line = line.trim_ascii_end();
        if line.trim_ascii_start().is_empty() {
            return Ok(());
        }
        let mut lossy = None;
        let mut f = Slots::new();
        self.format
            .extract(line, &mut lossy, &mut f, &mut pass.shapes)?;
        let status = match f.get(Field::Status) {
            None => return Err("no status".into()),
            Some(s) => s
                .as_int()
                .ok_or_else(|| format!("status {s:?} is not a number"))?,
        };
        let time = match f.get(Field::Time) {
            None => return Err("no time".into()),
            Some(t) => pass
                .times
                .parse(t)
                .ok_or_else(|| format!("cannot read the time {t:?}"))?,
        };
        if !(0..=crate::model::MAX_TIME_MS).contains(&time) {
            return Err(format!("the time {time} (epoch ms) is out of range"));
        }
        if time < pass.since_ms {
            return Ok(());
        }
        let (url_host, url_path) = match f.str(Field::Url) {
            Some(url) => split_url(url),
            None => (None, None),
        };
        let host = f.str(Field::Host).or(url_host);
        let path = f.str(Field::Path).or(url_path).unwrap_or("/");
        let who = self.attribution(
            host,
            f.str(Field::Method).unwrap_or("-"),
            f.str(Field::ClientId),
            f.str(Field::CredentialHint),
            pass,
        );
        let operation = self.operation_id(&who, path, pass);
        let counts = &mut pass.counts;
        let key = CountKey {
            hour_ms: time - time.rem_euclid(3_600_000),
            mapping: who.mapping as u32,
            service: who.service,
            operation,
            method: who.method,
            class: pass.classes.id(status, &mut counts.strings),
            actor: who.actor,
            credential: who.credential.map(|c| c as u32),
        };
        counts.add(key);

        if matches!(status, 401 | 403 | 429 | 503) {
            // The row names the operation itself, even one counted as `{other}`.
            routes::operation(
                &self.mappings[who.mapping].routes,
                path,
                &mut pass.operation,
            );
            let (mut lossy, mut all) = (None, Slots::new());
            let f = if self.format.reads_twice() {
                self.format.extract_all(line, &mut lossy, &mut all)?;
                &all
            } else {
                &f
            };
            let challenge = match f.str(Field::WwwAuthenticate) {
                Some(header) if matches!(status, 401 | 403) => challenge_of(header, pass),
                _ => None,
            };
            let record = self.event(
                f,
                challenge,
                status,
                time,
                host.map(|h| lowercase(h).into_owned()),
                path,
                who.mapping,
                who.credential,
                at,
                &pass.operation,
            );
            pass.page.push(record);
        }
        Ok(())
    }

    /// The operation id a line is counted under. Paths mostly differ only in a trailing id
    /// (`/items/8412`): the operation is remembered per service and the path before it, so
    /// most lines neither work out the route nor look its text up.
    fn operation_id(&self, who: &Attribution, path: &str, pass: &mut Pass<'_>) -> u32 {
        let routes = &self.mappings[who.mapping].routes;
        // A template matches a whole path: with templates, every path is worked out.
        let cut = if routes.is_empty() {
            routes::trailing_id(path)
        } else {
            None
        };
        let Some(cut) = cut else {
            routes::operation(routes, path, &mut pass.operation);
            return pass.counts.operation(who.service, &pass.operation);
        };
        let mut key = std::mem::take(&mut pass.prefix_key);
        key.clear();
        key.extend_from_slice(&who.service.to_le_bytes());
        key.extend_from_slice(path.as_bytes().get(..cut).unwrap_or_default());
        let op = match pass.prefix_operations.get(key.as_slice()) {
            Some(&op) => op,
            None => {
                routes::operation(routes, path, &mut pass.operation);
                let op = pass.counts.operation(who.service, &pass.operation);
                // `{other}` is not remembered, like in `Counts::operation`; an admitted
                // operation stays admitted, so its id holds for the whole collection.
                if pass.counts.strings.name(op) != counts::OTHER_OPERATION
                    && pass.prefix_operations.len() < MAX_PREFIXES
                    && key.len() <= MAX_ATTRIBUTION_KEY
                {
                    pass.prefix_operations.insert(key.as_slice().into(), op);
                }
                op
            }
        };
        pass.prefix_key = key;
        op
    }

    /// The row of a 401/403 (a denial) or a 429/503 (a rate-limit event).
    #[allow(clippy::too_many_arguments)]
    fn event(
        &self,
        f: &Slots<'_>,
        challenge: Option<challenge::Challenge>,
        status: i64,
        time: i64,
        host: Option<String>,
        path: &str,
        mapping: usize,
        credential: Option<usize>,
        at: &At<'_>,
        operation: &str,
    ) -> Record {
        let m = &self.mappings[mapping];
        let credential = credential.and_then(|i| self.bindings.get(i));
        let environment = credential.map_or(m.environment.as_str(), |c| c.environment.as_str());
        let dataset = if matches!(status, 401 | 403) {
            Dataset::Denials
        } else {
            Dataset::RateLimitEvents
        };
        let source_event_uid = format!("{}@{}", at.file_id, at.offset);
        let origin = Origin {
            dataset,
            vendor: &m.vendor,
            tenant: &m.tenant,
            environment,
            source: KIND,
        };
        let head = origin.header(
            time,
            origin.event_uid(&source_event_uid, None),
            Some(source_event_uid),
            credential.map(|c| c.name.clone()),
        );
        let method = f.str(Field::Method).map(str::to_ascii_uppercase);
        let credential_uid = credential.and_then(|c| c.credential_uid());
        if dataset == Dataset::RateLimitEvents {
            return RateLimitEvent {
                head,
                http_status: Some(status),
                api_service: host,
                api_operation: Some(operation.to_string()),
                http_method: method,
                actor_app: f.text(Field::ClientId),
                credential_uid,
                retry_after_s: f.get(Field::RetryAfter).and_then(retry_after_seconds(time)),
                ratelimit_limit: f.int(Field::RateLimitLimit),
                ratelimit_remaining: f.int(Field::RateLimitRemaining),
                request_id: f.text(Field::RequestId),
            }
            .into();
        }
        Denial {
            head,
            http_status: Some(status),
            auth_error: challenge.as_ref().and_then(|c| c.error.clone()),
            error_code: f.text(Field::ErrorCode),
            error_message: f
                .text(Field::ErrorMessage)
                .or_else(|| challenge.as_ref().and_then(|c| c.description.clone())),
            api_service: host,
            api_operation: Some(operation.to_string()),
            http_method: method,
            url_path: Some(path.to_string()),
            actor_user: f.text(Field::User),
            actor_app: f.text(Field::ClientId),
            credential_uid,
            required_scope: challenge.map(|c| c.scope).unwrap_or_default(),
            src_ip: None,
            user_agent: f.text(Field::UserAgent),
            request_id: f.text(Field::RequestId),
        }
        .into()
    }

    /// What a line's host, method, client and hint are counted and attributed as, remembered
    /// per distinct four as logged: they repeat from line to line, and one lookup replaces
    /// the interning of each, the case changes, the host rule and the credential lookups.
    fn attribution(
        &self,
        host: Option<&str>,
        method: &str,
        client: Option<&str>,
        hint: Option<&str>,
        pass: &mut Pass<'_>,
    ) -> Attribution {
        let mut key = std::mem::take(&mut pass.attribution_key);
        key.clear();
        for part in [host, Some(method), client, hint] {
            // 0xfe and 0xff are never in UTF-8: a missing part and the end of each are told
            // apart from any text.
            match part {
                Some(text) => key.extend_from_slice(text.as_bytes()),
                None => key.push(0xfe),
            }
            key.push(0xff);
        }
        let who = match pass.attributions.get(key.as_slice()) {
            Some(who) => *who,
            None => {
                let who = self.attribute(host, method, client, hint, pass);
                if pass.attributions.len() < MAX_ATTRIBUTIONS && key.len() <= MAX_ATTRIBUTION_KEY {
                    pass.attributions.insert(key.as_slice().into(), who);
                }
                who
            }
        };
        pass.attribution_key = key;
        who
    }

    /// `attribution`, worked out.
    fn attribute(
        &self,
        host: Option<&str>,
        method: &str,
        client: Option<&str>,
        hint: Option<&str>,
        pass: &mut Pass<'_>,
    ) -> Attribution {
        let host = host.map(lowercase);
        let mapping = self.mapping(host.as_deref(), pass);
        let strings = &mut pass.counts.strings;
        let service = strings.id(host.as_deref().unwrap_or("-"));
        let actor = client.map(|c| strings.id(c));
        let method = if method.bytes().any(|b| b.is_ascii_lowercase()) {
            strings.id(&method.to_ascii_uppercase())
        } else {
            strings.id(method)
        };
        let hint = hint.map(|h| strings.id(h));
        let credential = self.credential(
            mapping,
            (client, actor),
            hint,
            (host.as_deref(), service),
            pass,
        );
        Attribution {
            mapping,
            service,
            method,
            actor,
            credential,
        }
    }

    /// The host rule a host falls under (or the default), remembered per host.
    fn mapping(&self, host: Option<&str>, pass: &mut Pass<'_>) -> usize {
        let default = self.mappings.len() - 1;
        let Some(host) = host else { return default };
        if let Some(&m) = pass.host_mappings.get(host) {
            return m;
        }
        let m = self
            .hosts
            .iter()
            .position(|r| host_matches(&r.host, host))
            .unwrap_or(default);
        pass.host_mappings.insert(host.to_string(), m);
        m
    }

    /// The credential that claims a line, remembered per (mapping, client, hint, host), each
    /// given with its interned id.
    fn credential(
        &self,
        mapping: usize,
        (client, client_id): (Option<&str>, Option<u32>),
        hint: Option<u32>,
        (host, host_id): (Option<&str>, u32),
        pass: &mut Pass<'_>,
    ) -> Option<usize> {
        let key = (mapping, client_id, hint, Some(host_id));
        if let Some(&c) = pass.credentials.get(&key) {
            return c;
        }
        let m = &self.mappings[mapping];
        let hint_text = hint.map(|h| pass.counts.strings.name(h).to_string());
        let found = self.bindings.claim_index(&Claim {
            vendor: &m.vendor,
            tenant: &m.tenant,
            client_id: client,
            hint: hint_text.as_deref(),
            host,
        });
        pass.credentials.insert(key, found);
        found
    }

    fn count_row(&self, counts: &Counts, key: CountKey, n: u64, from: &str) -> Record {
        let m = &self.mappings[key.mapping as usize];
        let credential = key.credential.and_then(|i| self.bindings.get(i as usize));
        let environment = credential.map_or(m.environment.as_str(), |c| c.environment.as_str());
        let s = |id: u32| counts.strings.name(id);
        let actor = key.actor.map(s);
        let group = format!(
            "{} {} {} {} {} {}",
            s(key.service),
            s(key.method),
            s(key.operation),
            s(key.class),
            actor.unwrap_or(""),
            credential.map_or("", |c| c.name.as_str())
        );
        let origin = Origin {
            dataset: Dataset::RequestCounts,
            vendor: &m.vendor,
            tenant: &m.tenant,
            environment,
            source: KIND,
        };
        RequestCount {
            head: Header {
                time: key.hour_ms,
                // One row per key, hour and page of reading: additive partial counts.
                event_uid: origin.event_uid(&format!("{group}@{}#{from}", key.hour_ms), None),
                vendor: m.vendor.clone(),
                tenant: m.tenant.clone(),
                environment: environment.to_string(),
                source: KIND.to_string(),
                source_event_uid: None,
                credential: credential.map(|c| c.name.clone()),
            },
            hour_dt: Some(key.hour_ms),
            api_service: Some(s(key.service).to_string()),
            api_operation: Some(s(key.operation).to_string()),
            http_method: Some(s(key.method).to_string()),
            status_class: Some(s(key.class).to_string()),
            actor_app: actor.map(str::to_string),
            count: Some(n as i64),
        }
        .into()
    }
}

/// `Retry-After` as seconds: a number, or an HTTP date relative to the line's time.
fn retry_after_seconds(time_ms: i64) -> impl Fn(&json::Scalar<'_>) -> Option<i64> {
    move |v| {
        v.as_int().or_else(|| {
            let date = httpdate::parse_http_date(v.as_str()?).ok()?;
            let at = DateTime::<Utc>::from(date).timestamp_millis();
            Some(((at - time_ms) / 1000).max(0))
        })
    }
}

/// A `WWW-Authenticate` value parsed, remembered per distinct value (up to a bound).
fn challenge_of(header: &str, pass: &mut Pass<'_>) -> Option<challenge::Challenge> {
    if let Some(known) = pass.challenges.get(header) {
        return known.clone();
    }
    let parsed = challenge::parse(header);
    if pass.challenges.len() < MAX_CHALLENGES && header.len() <= MAX_ATTRIBUTION_KEY {
        pass.challenges.insert(header.into(), parsed.clone());
    }
    parsed
}

/// Distinct `WWW-Authenticate` values remembered per collection.
const MAX_CHALLENGES: usize = 1024;

/// Hosts are counted and matched in lower case.
fn lowercase(host: &str) -> Cow<'_, str> {
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

/// Host and path of a logged URL (query removed); a bare path has no host.
fn split_url(text: &str) -> (Option<&str>, Option<&str>) {
    let b = text.as_bytes();
    let scheme = if b.starts_with(b"https://") {
        5
    } else if b.starts_with(b"http://") {
        4
    } else {
        b.iter()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
            .count()
    };
    let (host, rest) = if scheme > 0 && b[scheme..].starts_with(b"://") {
        let after = &text[scheme + 3..];
        let (start, colon, end) = authority(after.as_bytes());
        // All three are at ASCII bytes or the end: char boundaries.
        let host = after.get(start..colon.unwrap_or(end)).unwrap_or_default();
        (
            (!host.is_empty()).then_some(host),
            after.get(end..).unwrap_or_default(),
        )
    } else {
        (None, text)
    };
    let end = memchr::memchr2(b'?', b'#', rest.as_bytes()).unwrap_or(rest.len());
    let path = &rest[..end];
    (host, (!path.is_empty()).then_some(path))
}

/// One pass over a URL's authority (what follows `://`), eight bytes at a time: where the
/// host starts (after the last `user:password@`), where its port starts and where the
/// authority ends (at a `/`, `?` or `#`).
fn authority(a: &[u8]) -> (usize, Option<usize>, usize) {
    use routes::{bytes_equal, word};
    let (mut start, mut colon) = (0, None);
    let mut at = 0;
    while at < a.len() {
        let w = word(a, at);
        let ends = bytes_equal(w, b'/') | bytes_equal(w, b'?') | bytes_equal(w, b'#');
        // The bits below the first end (all of them without one).
        let before = (ends & ends.wrapping_neg()).wrapping_sub(1);
        let ats = bytes_equal(w, b'@') & before;
        let mut colons = bytes_equal(w, b':') & before;
        if ats != 0 {
            let last = 63 - ats.leading_zeros();
            start = at + (last / 8) as usize + 1;
            colon = None;
            // Only the colons after the last `@` count.
            colons &= !(2u64 << last).wrapping_sub(1);
        }
        if colon.is_none() && colons != 0 {
            colon = Some(at + (colons.trailing_zeros() / 8) as usize);
        }
        if ends != 0 {
            return (start, colon, at + (ends.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    (start, colon, a.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_query_and_credentials() {
        assert_eq!(
            split_url("https://api.github.com/repos/a/b?access_token=x"),
            (Some("api.github.com"), Some("/repos/a/b"))
        );
        assert_eq!(
            split_url("https://user:pw@api.example.com:8443/v1#frag"),
            (Some("api.example.com"), Some("/v1"))
        );
        assert_eq!(split_url("/v1/items?x=1"), (None, Some("/v1/items")));
        assert_eq!(
            split_url("https://a:b@c@api.example.com/x"),
            (Some("api.example.com"), Some("/x")),
            "the last @ ends the user part"
        );
        assert_eq!(split_url("/a/https://b/c"), (None, Some("/a/https://b/c")));
        assert_eq!(
            split_url("https://api.example.com"),
            (Some("api.example.com"), None)
        );
    }

    /// `authority` one byte at a time.
    fn authority_slowly(a: &[u8]) -> (usize, Option<usize>, usize) {
        let (mut start, mut colon, mut end) = (0, None, a.len());
        for (i, c) in a.iter().enumerate() {
            match c {
                b'/' | b'?' | b'#' => {
                    end = i;
                    break;
                }
                b'@' => (start, colon) = (i + 1, None),
                b':' if colon.is_none() => colon = Some(i),
                _ => {}
            }
        }
        (start, colon, end)
    }

    #[test]
    fn authorities_eight_bytes_at_a_time() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let alphabet = b"a.b:@/?#9\x80@:";
        for _ in 0..50_000 {
            let len = (x % 30) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    alphabet[(x % alphabet.len() as u64) as usize]
                })
                .collect();
            assert_eq!(authority(&bytes), authority_slowly(&bytes), "{bytes:?}");
        }
        for url in [
            "ftp://h:1/x",
            "HTTPS://Api.Example.com/A?b",
            "http:/x",
            "https:x",
            "a+b-c.d://h/p",
            "https://@/",
            "https://:@:/",
        ] {
            let (host, path) = split_url(url);
            let want = match url.split_once("://") {
                Some((scheme, after)) if !scheme.is_empty() => {
                    let (start, colon, end) = authority_slowly(after.as_bytes());
                    let host = &after[start..colon.unwrap_or(end)];
                    let rest = &after[end..];
                    let path = &rest[..rest.find(['?', '#']).unwrap_or(rest.len())];
                    (
                        (!host.is_empty()).then_some(host),
                        (!path.is_empty()).then_some(path),
                    )
                }
                _ => (None, Some(url)),
            };
            assert_eq!((host, path), want, "{url}");
        }
    }

    #[test]
    fn retry_after_in_both_forms() {
        let at = 1_445_412_480_000; // Wed, 21 Oct 2015 07:28:00 GMT
        let f = retry_after_seconds(at - 120_000);
        assert_eq!(f(&json::Scalar::Int(30)), Some(30));
        assert_eq!(
            f(&json::Scalar::Str("Wed, 21 Oct 2015 07:28:00 GMT".into())),
            Some(120)
        );
    }
}
