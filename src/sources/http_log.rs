//! `http_log`: an integration's own outbound HTTP logs, where most 401/403s are seen first.
//!
//! Reads JSON-lines files matched by globs, plain or gzip. A file is known by a fingerprint
//! of its first KiB of decompressed content, not by its inode or name, so a rotated file
//! (`app.log` -> `app.log.1` -> `app.log.1.gz`) is read exactly once; offsets count
//! decompressed bytes. The cursor is the list of (fingerprint, offset) pairs, and each row's
//! id derives from its file's fingerprint and the line's offset.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use flate2::read::MultiGzDecoder;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use toml::Spanned;
use toml::de::DeValue;

use super::{BuildContext, Coverage, Source, SourceSpec, host_matches};
use crate::bindings::{Bindings, Claim};
use crate::config::{Doc, Dur, Name, Tenant};
use crate::http::challenge;
use crate::model::uid::Origin;
use crate::model::{Dataset, Denial, Header, Record};
use crate::staging::SourceSession;

pub const KIND: &str = "http_log";
pub const DATASETS: &[Dataset] = &[Dataset::Denials];

/// Records per staged page: bounds memory whatever the size of the logs.
const PAGE_RECORDS: usize = 5_000;
/// A file is known by a hash of this much of its decompressed beginning.
const FINGERPRINT_BYTES: usize = 1024;
/// Longer lines are reported as malformed and skipped without being held in memory.
const MAX_LINE_BYTES: usize = 1 << 20;
/// Default for how long logrotate keeps the files (`rotate 7` of daily logs).
const DEFAULT_RETENTION_DAYS: u64 = 7;

#[derive(Debug, Deserialize)]
pub struct Settings {
    /// Glob patterns, relative to the configuration file's folder.
    pub paths: Vec<Spanned<String>>,
    #[serde(default)]
    pub format: LogFormat,
    pub fields: Fields,
    /// Host -> vendor and tenant, first match wins.
    #[serde(default)]
    pub hosts: Vec<HostRule>,
    /// Vendor of lines whose host no rule maps (default `other`).
    pub vendor: Option<Name>,
    pub retention: Option<Dur>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// One JSON object per line; `fields` maps dotted paths to what scopetrail needs.
    #[default]
    Json,
}

/// Dotted paths into each logged JSON object (`response.headers.www-authenticate`). A key
/// that itself contains dots (`"http.status"`) is found too.
#[derive(Debug, Deserialize)]
pub struct Fields {
    pub time: String,
    pub status: String,
    pub method: Option<String>,
    /// A full URL, or a path when `host` is given separately.
    pub url: Option<String>,
    pub host: Option<String>,
    pub path: Option<String>,
    pub client_id: Option<String>,
    /// Something the integration logs that names its credential (see credential `hints`).
    pub credential_hint: Option<String>,
    pub request_id: Option<String>,
    pub www_authenticate: Option<String>,
    /// The vendor's error code in the logged response body (`insufficient_scope`,
    /// `INSUFFICIENT_ACCESS`).
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub user_agent: Option<String>,
    /// The user the integration acted for, when it logs one (personal data: see `[privacy]`).
    pub user: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HostRule {
    /// `api.github.com`, or `*.oraclecloud.com` for any subdomain.
    pub host: String,
    pub vendor: Name,
    /// Default: the source's tenant.
    pub tenant: Option<Spanned<Name>>,
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
        }
        Some(settings)
    }

    pub fn retention(&self) -> Dur {
        self.retention.unwrap_or(Dur(std::time::Duration::from_secs(
            DEFAULT_RETENTION_DAYS * 86_400,
        )))
    }

    fn default_vendor(&self) -> &str {
        self.vendor.as_ref().map_or("other", |v| v.as_str())
    }

    pub fn tenants(&self, default_tenant: &str) -> Vec<String> {
        let mut out = vec![default_tenant.to_string()];
        for rule in &self.hosts {
            if let Some(t) = &rule.tenant {
                out.push(t.get_ref().0.clone());
            }
        }
        out.sort();
        out.dedup();
        out
    }

    pub fn coverage(&self, default_tenant: &str) -> Vec<Coverage> {
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
}

/// Where reading stands: one entry per file ever read.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Cursor {
    files: Vec<FileState>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct FileState {
    /// The fingerprint when first seen: the file's identity in event ids.
    id: String,
    /// How many leading bytes `fingerprint` covers (less than 1 KiB while the file is small).
    fp_len: usize,
    fingerprint: String,
    /// Decompressed bytes read.
    offset: u64,
    /// Lines read, for line numbers in reports.
    lines: u64,
    /// Where it was last seen, for people reading the state.
    path: String,
    seen_ms: i64,
}

pub struct HttpLog {
    inner: Arc<Reader>,
}

/// Everything the blocking reader needs.
struct Reader {
    patterns: Vec<String>,
    fields: FieldPaths,
    hosts: Vec<HostRule>,
    default_vendor: String,
    tenant: String,
    environments: BTreeMap<String, String>,
    bindings: Arc<Bindings>,
    lookback: Dur,
    retention: Dur,
}

impl HttpLog {
    pub fn new(spec: &SourceSpec, settings: &Settings, ctx: &BuildContext<'_>) -> Self {
        let patterns = settings
            .paths
            .iter()
            .map(|p| {
                ctx.base_dir
                    .join(p.get_ref())
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        HttpLog {
            inner: Arc::new(Reader {
                patterns,
                fields: FieldPaths::new(&settings.fields),
                hosts: settings.hosts.clone(),
                default_vendor: settings.default_vendor().to_string(),
                tenant: spec.tenant.clone(),
                environments: ctx
                    .tenants
                    .iter()
                    .map(|(k, t)| (k.clone(), t.environment.clone()))
                    .collect(),
                bindings: ctx.bindings.clone(),
                lookback: spec.cadence.initial_lookback,
                retention: settings.retention(),
            }),
        }
    }
}

/// What the blocking reader sends to the collection.
enum Message {
    Page(Vec<Record>, Value),
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

/// One collection's reading state, across files.
struct Pass<'a> {
    cursor: Cursor,
    page: Vec<Record>,
    lines: u64,
    now_ms: i64,
    since_ms: i64,
    cancel: &'a CancellationToken,
    tx: &'a Tx,
}

fn send(tx: &Tx, message: Message) -> Result<()> {
    // The receiver is gone only when staging failed; that error is the one to report.
    tx.blocking_send(message)
        .map_err(|_| anyhow::anyhow!("collection stopped"))
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
        let mut pass = Pass {
            // Only the first collection is bounded by the lookback; after that every new
            // line counts, late ones included.
            since_ms: match cursor {
                None => now_ms - self.lookback.ms(),
                Some(_) => i64::MIN,
            },
            now_ms,
            cursor: cursor.unwrap_or_default(),
            page: Vec::new(),
            lines: 0,
            cancel,
            tx,
        };
        let mut files = 0;
        for path in self.files()? {
            if cancel.is_cancelled() {
                break;
            }
            files += 1;
            // One unreadable file must not stop the others.
            if let Err(e) = self.read_file(&path, &mut pass) {
                send(
                    tx,
                    Message::Malformed(path.display().to_string(), format!("{e:#}")),
                )?;
            }
        }
        let Pass {
            mut cursor,
            page,
            lines,
            ..
        } = pass;
        cursor
            .files
            .retain(|f| f.seen_ms >= now_ms - 2 * self.retention.ms());
        send(tx, Message::Count("lines", lines))?;
        send(tx, Message::Count("files", files))?;
        send(tx, Message::Page(page, serde_json::to_value(&cursor)?))?;
        Ok(())
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
        let Pass {
            cursor,
            page,
            lines,
            now_ms,
            since_ms,
            cancel,
            tx,
        } = pass;
        let (now_ms, since_ms) = (*now_ms, *since_ms);
        let gzip = is_gzip(path)?;
        let prefix = {
            let mut buf = Vec::with_capacity(FINGERPRINT_BYTES);
            open(path, gzip)?
                .take(FINGERPRINT_BYTES as u64)
                .read_to_end(&mut buf)?;
            buf
        };
        if prefix.is_empty() {
            return Ok(());
        }
        let index = match find_state(&cursor.files, &prefix) {
            Some(i) => i,
            None => {
                cursor.files.push(FileState {
                    id: hex::encode(&Sha256::digest(&prefix)[..8]),
                    fp_len: 0,
                    fingerprint: String::new(),
                    offset: 0,
                    lines: 0,
                    path: String::new(),
                    seen_ms: now_ms,
                });
                cursor.files.len() - 1
            }
        };
        {
            let state = &mut cursor.files[index];
            state.fp_len = prefix.len();
            state.fingerprint = hex::encode(Sha256::digest(&prefix));
            state.path = path.display().to_string();
            state.seen_ms = now_ms;
        }
        let mut input = open(path, gzip)?;
        let start = cursor.files[index].offset;
        if gzip {
            let skipped = io::copy(&mut (&mut input).take(start), &mut io::sink())?;
            anyhow::ensure!(
                skipped == start,
                "the file is shorter than what was already read"
            );
        } else {
            input.seek_to(start)?;
        }
        let mut line = Vec::new();
        loop {
            line.clear();
            let (read, complete, too_long) = read_line(&mut input, &mut line)?;
            if read == 0 {
                break;
            }
            // An unterminated last line of a plain file may still be being written; a
            // compressed file is finished.
            if !complete && !gzip {
                break;
            }
            let state = &mut cursor.files[index];
            let offset = state.offset;
            state.offset += read as u64;
            state.lines += 1;
            let at = || format!("{}:{}", path.display(), cursor.files[index].lines);
            if too_long {
                send(
                    tx,
                    Message::Malformed(at(), format!("line longer than {MAX_LINE_BYTES} bytes")),
                )?;
                continue;
            }
            *lines += 1;
            match self.parse_line(&line, &cursor.files[index].id, offset) {
                Ok(Some(record)) if record.head().time >= since_ms => page.push(record),
                Ok(_) => {}
                Err(reason) => send(tx, Message::Malformed(at(), reason))?,
            }
            if page.len() >= PAGE_RECORDS {
                send(
                    tx,
                    Message::Page(std::mem::take(page), serde_json::to_value(&*cursor)?),
                )?;
            }
            // Asked to stop: the lines read so far go out with the last page, whose cursor
            // says exactly where the next run resumes.
            if *lines % 4096 == 0 && cancel.is_cancelled() {
                break;
            }
        }
        Ok(())
    }

    /// A denial for a 401/403 line, `None` for other lines, `Err` for a line that cannot be
    /// read.
    fn parse_line(
        &self,
        line: &[u8],
        file_id: &str,
        offset: u64,
    ) -> Result<Option<Record>, String> {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches(['\n', '\r']);
        if text.trim().is_empty() {
            return Ok(None);
        }
        let json: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let f = &self.fields;
        let status = get(&json, &f.status).ok_or("no status field")?;
        let status = as_int(status).ok_or_else(|| format!("status {status} is not a number"))?;
        let time = get(&json, &f.time).ok_or("no time field")?;
        let time = parse_time(time).ok_or_else(|| format!("cannot read time {time}"))?;
        if status != 401 && status != 403 {
            return Ok(None);
        }
        let text_of = |path: &Option<Vec<String>>| {
            path.as_ref().and_then(|p| get(&json, p)).and_then(as_text)
        };
        let (url_host, url_path) = match text_of(&f.url) {
            Some(u) => split_url(&u),
            None => (None, None),
        };
        let host = text_of(&f.host)
            .or(url_host)
            .map(|h| h.to_ascii_lowercase());
        let path = text_of(&f.path).or(url_path);
        let (vendor, tenant) = self.map_host(host.as_deref());
        let client_id = text_of(&f.client_id);
        let hint = text_of(&f.credential_hint);
        let credential = self.bindings.claim(&Claim {
            vendor: &vendor,
            tenant: &tenant,
            client_id: client_id.as_deref(),
            hint: hint.as_deref(),
            host: host.as_deref(),
        });
        let environment = credential.map_or_else(
            || self.environments.get(&tenant).cloned().unwrap_or_default(),
            |c| c.environment.clone(),
        );
        let challenge = text_of(&f.www_authenticate).and_then(|h| challenge::parse(&h));
        let source_event_uid = format!("{file_id}@{offset}");
        let origin = Origin {
            dataset: Dataset::Denials,
            vendor: &vendor,
            tenant: &tenant,
            environment: &environment,
            source: KIND,
        };
        let denial = Denial {
            head: Header {
                time,
                event_uid: origin.event_uid(&source_event_uid, None),
                vendor: vendor.clone(),
                tenant: tenant.clone(),
                environment: environment.clone(),
                source: KIND.to_string(),
                source_event_uid: Some(source_event_uid),
                credential: credential.map(|c| c.name.clone()),
            },
            http_status: Some(status),
            auth_error: challenge.as_ref().and_then(|c| c.error.clone()),
            error_code: text_of(&f.error_code),
            error_message: text_of(&f.error_message)
                .or_else(|| challenge.as_ref().and_then(|c| c.description.clone())),
            api_service: host.clone(),
            api_operation: path.as_deref().map(route_template),
            http_method: text_of(&f.method).map(|m| m.to_ascii_uppercase()),
            url_path: path,
            actor_user: text_of(&f.user),
            actor_app: client_id,
            credential_uid: credential.and_then(|c| c.credential_uid()),
            required_scope: challenge.map(|c| c.scope).unwrap_or_default(),
            src_ip: None,
            user_agent: text_of(&f.user_agent),
            request_id: text_of(&f.request_id),
        };
        Ok(Some(denial.into()))
    }

    fn map_host(&self, host: Option<&str>) -> (String, String) {
        if let Some(host) = host
            && let Some(rule) = self.hosts.iter().find(|r| host_matches(&r.host, host))
        {
            let tenant = rule
                .tenant
                .as_ref()
                .map_or(self.tenant.clone(), |t| t.get_ref().0.clone());
            return (rule.vendor.0.clone(), tenant);
        }
        (self.default_vendor.clone(), self.tenant.clone())
    }
}

fn is_gzip(path: &Path) -> Result<bool> {
    let mut magic = [0u8; 2];
    let n = File::open(path)?.read(&mut magic)?;
    Ok(n == 2 && magic == [0x1f, 0x8b])
}

fn open(path: &Path, gzip: bool) -> Result<Input> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(if gzip {
        Input::Gzip(BufReader::with_capacity(
            256 * 1024,
            MultiGzDecoder::new(file),
        ))
    } else {
        Input::Plain(BufReader::with_capacity(256 * 1024, file))
    })
}

enum Input {
    Plain(BufReader<File>),
    Gzip(BufReader<MultiGzDecoder<File>>),
}

impl Input {
    fn seek_to(&mut self, offset: u64) -> io::Result<()> {
        match self {
            Input::Plain(r) => r.seek(SeekFrom::Start(offset)).map(|_| ()),
            Input::Gzip(_) => Err(io::Error::other("cannot seek in a compressed file")),
        }
    }
}

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Input::Plain(r) => r.read(buf),
            Input::Gzip(r) => r.read(buf),
        }
    }
}

impl BufRead for Input {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        match self {
            Input::Plain(r) => r.fill_buf(),
            Input::Gzip(r) => r.fill_buf(),
        }
    }
    fn consume(&mut self, n: usize) {
        match self {
            Input::Plain(r) => r.consume(n),
            Input::Gzip(r) => r.consume(n),
        }
    }
}

/// Reads one line, keeping at most `MAX_LINE_BYTES` of it. Returns the bytes consumed,
/// whether the line ended with a newline, and whether it was too long.
fn read_line(input: &mut impl BufRead, line: &mut Vec<u8>) -> io::Result<(usize, bool, bool)> {
    let mut read = 0;
    let mut too_long = false;
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            return Ok((read, false, too_long));
        }
        let (chunk, done) = match memchr::memchr(b'\n', buf) {
            Some(i) => (&buf[..=i], true),
            None => (buf, false),
        };
        if line.len() + chunk.len() > MAX_LINE_BYTES {
            too_long = true;
        } else {
            line.extend_from_slice(chunk);
        }
        let n = chunk.len();
        input.consume(n);
        read += n;
        if done {
            return Ok((read, true, too_long));
        }
    }
}

/// The state whose fingerprint matches the beginning of this content, the longest first: a
/// file that grew past its fingerprinted beginning is still the same file.
fn find_state(files: &[FileState], prefix: &[u8]) -> Option<usize> {
    files
        .iter()
        .enumerate()
        .filter(|(_, f)| f.fp_len > 0 && f.fp_len <= prefix.len())
        .filter(|(_, f)| hex::encode(Sha256::digest(&prefix[..f.fp_len])) == f.fingerprint)
        .max_by_key(|(_, f)| f.fp_len)
        .map(|(i, _)| i)
}

struct FieldPaths {
    time: Vec<String>,
    status: Vec<String>,
    method: Option<Vec<String>>,
    url: Option<Vec<String>>,
    host: Option<Vec<String>>,
    path: Option<Vec<String>>,
    client_id: Option<Vec<String>>,
    credential_hint: Option<Vec<String>>,
    request_id: Option<Vec<String>>,
    www_authenticate: Option<Vec<String>>,
    error_code: Option<Vec<String>>,
    error_message: Option<Vec<String>>,
    user_agent: Option<Vec<String>>,
    user: Option<Vec<String>>,
}

impl FieldPaths {
    fn new(f: &Fields) -> Self {
        let split = |s: &str| s.split('.').map(str::to_string).collect::<Vec<_>>();
        let opt = |s: &Option<String>| s.as_deref().map(split);
        FieldPaths {
            time: split(&f.time),
            status: split(&f.status),
            method: opt(&f.method),
            url: opt(&f.url),
            host: opt(&f.host),
            path: opt(&f.path),
            client_id: opt(&f.client_id),
            credential_hint: opt(&f.credential_hint),
            request_id: opt(&f.request_id),
            www_authenticate: opt(&f.www_authenticate),
            error_code: opt(&f.error_code),
            error_message: opt(&f.error_message),
            user_agent: opt(&f.user_agent),
            user: opt(&f.user),
        }
    }
}

/// The value at a dotted path; at each level the longest run of segments that is itself a
/// key wins, so `{"http.status": 403}` and `{"http": {"status": 403}}` both answer
/// `http.status`.
fn get<'v>(value: &'v Value, path: &[String]) -> Option<&'v Value> {
    if path.is_empty() {
        return Some(value);
    }
    let object = value.as_object()?;
    (1..=path.len()).rev().find_map(|n| {
        let key = path[..n].join(".");
        object.get(&key).and_then(|child| get(child, &path[n..]))
    })
}

fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        other => Some(other.to_string()),
    }
}

fn as_int(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// RFC 3339 text, or epoch seconds or milliseconds (numbers past 1e11 are milliseconds:
/// 1e11 seconds is the year 5138).
fn parse_time(value: &Value) -> Option<i64> {
    let epoch = |x: f64| {
        if x > 1e11 {
            Some(x as i64)
        } else {
            Some((x * 1000.0) as i64)
        }
    };
    match value {
        Value::Number(n) => epoch(n.as_f64()?),
        Value::String(s) => match DateTime::parse_from_rfc3339(s.trim()) {
            Ok(t) => Some(t.timestamp_millis()),
            Err(_) => s.trim().parse::<f64>().ok().and_then(epoch),
        },
        _ => None,
    }
}

/// Host and path of a logged URL (query removed); a bare path has no host.
fn split_url(text: &str) -> (Option<String>, Option<String>) {
    match url::Url::parse(text) {
        Ok(u) => (u.host_str().map(str::to_string), Some(u.path().to_string())),
        Err(_) => {
            let path = text.split(['?', '#']).next().unwrap_or_default();
            (None, (!path.is_empty()).then(|| path.to_string()))
        }
    }
}

/// The route with ids removed: `/api/v1/items/8412/lines/3f2b...` -> `/api/v1/items/{id}/lines/{id}`.
pub fn route_template(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').collect();
    segments
        .iter()
        .map(|s| if looks_like_id(s) { "{id}" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

fn looks_like_id(segment: &str) -> bool {
    let digits = segment.bytes().filter(u8::is_ascii_digit).count();
    if segment.is_empty() || digits == 0 {
        return false;
    }
    let all_digits = digits == segment.len();
    let hex = segment.len() >= 8 && segment.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    let long_token = segment.len() >= 16
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    all_digits || hex || long_token
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_templates_drop_ids() {
        assert_eq!(route_template("/api/v1/items/8412"), "/api/v1/items/{id}");
        assert_eq!(
            route_template(
                "/repos/acme/app/hooks/12345/deliveries/550e8400-e29b-41d4-a716-446655440000"
            ),
            "/repos/acme/app/hooks/{id}/deliveries/{id}"
        );
        assert_eq!(
            route_template("/v2/users/me"),
            "/v2/users/me",
            "no digits, no id"
        );
        assert_eq!(
            route_template("/api/v1/oauth2"),
            "/api/v1/oauth2",
            "short words with digits stay"
        );
    }

    #[test]
    fn dotted_paths_find_nested_and_flat_keys() {
        let v: Value = serde_json::json!({"http.status": 403, "resp": {"headers": {"www-authenticate": "Bearer"}}});
        let p = |s: &str| s.split('.').map(str::to_string).collect::<Vec<_>>();
        assert_eq!(get(&v, &p("http.status")), Some(&serde_json::json!(403)));
        assert_eq!(
            get(&v, &p("resp.headers.www-authenticate"))
                .and_then(as_text)
                .as_deref(),
            Some("Bearer")
        );
        assert_eq!(get(&v, &p("resp.missing")), None);
    }

    #[test]
    fn times_in_three_forms() {
        let ms = 1_772_701_320_000; // 2026-03-05T09:02:00Z
        assert_eq!(parse_time(&Value::from("2026-03-05T09:02:00Z")), Some(ms));
        assert_eq!(
            parse_time(&Value::from("2026-03-05T10:02:00+01:00")),
            Some(ms)
        );
        assert_eq!(parse_time(&serde_json::json!(1_772_701_320)), Some(ms));
        assert_eq!(parse_time(&serde_json::json!(ms)), Some(ms));
        assert_eq!(parse_time(&Value::from("yesterday")), None);
    }

    #[test]
    fn urls_lose_their_query() {
        assert_eq!(
            split_url("https://api.github.com/repos/a/b?access_token=x"),
            (Some("api.github.com".into()), Some("/repos/a/b".into()))
        );
        assert_eq!(split_url("/v1/items?x=1"), (None, Some("/v1/items".into())));
    }

    #[test]
    fn long_lines_are_bounded() -> io::Result<()> {
        let mut data = vec![b'x'; MAX_LINE_BYTES + 10];
        data.push(b'\n');
        data.extend_from_slice(b"ok\n");
        let mut input = io::Cursor::new(data);
        let mut line = Vec::new();
        let (read, complete, too_long) = read_line(&mut input, &mut line)?;
        assert_eq!(
            (read, complete, too_long),
            (MAX_LINE_BYTES + 11, true, true)
        );
        assert!(line.len() <= MAX_LINE_BYTES);
        line.clear();
        assert_eq!(read_line(&mut input, &mut line)?, (3, true, false));
        assert_eq!(line, b"ok\n");
        Ok(())
    }
}
