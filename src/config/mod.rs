//! Configuration: the main file (store, state, tenants, sources, credentials and their
//! bindings, privacy) and job files (schedule, sources, datasets), read into typed specs.
//!
//! Loading reports every problem it can find, each with file, line and column, rather than
//! stopping at the first: `scopetrail validate` is how people find out what is wrong.

mod check;
pub mod diagnostics;
mod values;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;

pub use diagnostics::{Diagnostic, Diagnostics, Doc, Loc, Severity};
pub use values::{Dur, Instant, Name, SecretRef};

use crate::model::Dataset;
use crate::privacy::{Privacy, PrivacyAction};
use crate::schedule::Schedule;
use crate::sources::{Cadence, SourceSpec};
use crate::store::s3::S3Spec;
use crate::store::s3::config::{CREDENTIAL_KEYS as S3_CREDENTIAL_KEYS, RawS3};

#[derive(Debug, Clone)]
pub enum StoreSpec {
    Local { path: PathBuf },
    S3(S3Spec),
}

impl StoreSpec {
    pub fn describe(&self) -> String {
        match self {
            StoreSpec::Local { path } => format!("local folder {}", path.display()),
            StoreSpec::S3(spec) => spec.describe(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Defaults {
    pub collect_every: Dur,
    pub lateness: Dur,
    pub initial_lookback: Dur,
    pub staging_retention: Dur,
    pub max_wait: Dur,
    /// How long a lease lasts without renewal: how long work of a crashed process stays
    /// blocked.
    pub lease_ttl: Dur,
}

impl Default for Defaults {
    fn default() -> Self {
        let h = |hours: u64| Dur(std::time::Duration::from_secs(hours * 3600));
        Defaults {
            collect_every: h(1),
            lateness: Dur(std::time::Duration::from_secs(15 * 60)),
            initial_lookback: h(7 * 24),
            staging_retention: h(35 * 24),
            max_wait: h(24),
            lease_ttl: Dur(std::time::Duration::from_secs(5 * 60)),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Tenant {
    pub name: String,
    pub environment: String,
}

/// A configured credential and what it is used against (DESIGN §3).
#[derive(Clone)]
pub struct Credential {
    pub name: String,
    pub environment: String,
    pub client_id: Option<String>,
    pub issuer: Option<String>,
    pub access_key_id: Option<String>,
    pub token: Option<SecretString>,
    /// Where `token` comes from, read again by probes: the integration may replace the file
    /// while a daemon runs.
    pub token_ref: Option<SecretRef>,
    /// Strings an integration logs that identify this credential (a key id, a label).
    pub hints: Vec<String>,
    pub used_by: Vec<Binding>,
    /// How it is snapshotted (`[credentials.probe]`).
    pub probe: Option<crate::probes::ProbeSpec>,
    pub loc: Loc,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("name", &self.name)
            .field("environment", &self.environment)
            .field("credential_uid", &self.credential_uid())
            .finish_non_exhaustive()
    }
}

impl Credential {
    /// The join key for vendors' audit records (DESIGN §4): `<issuer>#<client_id>`, the AWS
    /// access key id, or the base64 SHA-256 of a token (GitHub's `hashed_token`).
    pub fn credential_uid(&self) -> Option<String> {
        use base64::Engine;
        use sha2::{Digest, Sha256};
        if let Some(key) = &self.access_key_id {
            return Some(key.clone());
        }
        if let (Some(issuer), Some(client)) = (&self.issuer, &self.client_id) {
            return Some(format!("{issuer}#{client}"));
        }
        if let Some(token) = &self.token {
            let digest = Sha256::digest(token.expose_secret().as_bytes());
            return Some(base64::engine::general_purpose::STANDARD.encode(digest));
        }
        self.client_id.clone()
    }
}

#[derive(Debug, Clone)]
pub struct Binding {
    pub vendor: String,
    pub tenant: String,
    pub hosts: Vec<String>,
    pub loc: Loc,
}

#[derive(Debug, Clone)]
pub struct Listed {
    pub name: String,
    pub loc: Loc,
}

#[derive(Debug, Clone)]
pub struct Job {
    pub name: String,
    pub file: PathBuf,
    pub schedule: Schedule,
    pub sources: Vec<Listed>,
    pub datasets: Vec<Dataset>,
    /// `None`: every tenant the sources produce.
    pub tenants: Option<Vec<Listed>>,
    pub max_wait: Dur,
    pub loc: Loc,
}

/// scopetrail's own sources, which jobs list like any other.
pub const OWN_SOURCES: &[&str] = &[
    "scopetrail.snapshot",
    "scopetrail.drift",
    "scopetrail.correlation",
    "scopetrail.self",
];

pub struct Config {
    pub file: PathBuf,
    /// Relative paths in the configuration are relative to this folder, not to the working
    /// directory, so cron and systemd (which start in `/`) read the same files as a shell.
    pub base_dir: PathBuf,
    pub store: StoreSpec,
    /// Where checkpoints, staging, plans and leases go; `None`: the store, under `_state/`.
    pub state: Option<StoreSpec>,
    pub defaults: Defaults,
    /// A pinned clock (the demo's); `--now` overrides it.
    pub clock: Option<DateTime<Utc>>,
    pub tenants: BTreeMap<String, Tenant>,
    pub sources: BTreeMap<String, SourceSpec>,
    pub credentials: Vec<Credential>,
    pub privacy: Privacy,
    /// How 429s make a burst.
    pub bursts: crate::analysis::bursts::Settings,
    /// How failures are grouped and how far back causes are looked for (`[correlation]`).
    pub correlation: crate::analysis::correlate::Settings,
    /// The HTTP engine's settings (`[http]`).
    pub http: crate::http::Settings,
    pub jobs: BTreeMap<String, Job>,
}

impl Config {
    /// Reads and checks the configuration. `Err` holds every error (and warning) found; `Ok`
    /// carries the warnings alongside.
    pub fn load(file: &Path) -> Result<(Config, Diagnostics), Diagnostics> {
        let mut diags = Diagnostics::default();
        let config = load(file, &mut diags);
        diags.sort();
        match config {
            Some(config) if !diags.has_errors() => Ok((config, diags)),
            _ => Err(diags),
        }
    }

    pub fn environment_of(&self, tenant: &str) -> &str {
        self.tenants
            .get(tenant)
            .map_or("unknown", |t| t.environment.as_str())
    }
}

// ----- the main file -----

const MAIN_KEYS: &[&str] = &[
    "store",
    "state",
    "defaults",
    "clock",
    "tenants",
    "sources",
    "credentials",
    "privacy",
    "bursts",
    "correlation",
    "http",
    "jobs",
];

#[derive(Deserialize)]
struct RawLocalStore {
    #[allow(dead_code)]
    kind: String,
    path: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawDefaults {
    collect_every: Option<Dur>,
    lateness: Option<Dur>,
    initial_lookback: Option<Dur>,
    staging_retention: Option<Dur>,
    max_wait: Option<Dur>,
    lease_ttl: Option<Dur>,
}

#[derive(Deserialize, Default)]
struct RawHttp {
    ca_bundle: Option<Spanned<String>>,
    timeout: Option<Dur>,
    connect_timeout: Option<Dur>,
    budget_share: Option<Spanned<f64>>,
    reserve: Option<Spanned<f64>>,
    max_attempts: Option<u32>,
    max_pages: Option<u64>,
    deadline: Option<Dur>,
}

#[derive(Deserialize, Default)]
struct RawBursts {
    gap: Option<Dur>,
    min_count: Option<u64>,
    margin: Option<Dur>,
}

#[derive(Deserialize, Default)]
struct RawCorrelation {
    gap: Option<Dur>,
    change_lookback: Option<Dur>,
    skew: Option<Dur>,
}

#[derive(Deserialize)]
struct RawClock {
    now: Instant,
}

#[derive(Deserialize)]
struct RawTenant {
    environment: Name,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
}

/// The keys every source has; the rest of its table belongs to its kind.
#[derive(Deserialize)]
struct RawSourceCommon {
    kind: Spanned<String>,
    tenant: Spanned<Name>,
    collect_every: Option<Spanned<Dur>>,
    lateness: Option<Dur>,
    initial_lookback: Option<Dur>,
    retention: Option<Dur>,
    rescan_overlap: Option<Dur>,
}

const SOURCE_COMMON_KEYS: &[&str] = &[
    "kind",
    "tenant",
    "collect_every",
    "lateness",
    "initial_lookback",
    "retention",
    "rescan_overlap",
];

#[derive(Deserialize)]
struct RawCredential {
    name: Name,
    environment: Name,
    client_id: Option<String>,
    issuer: Option<String>,
    access_key_id: Option<String>,
    /// Parsed after decoding, so a pasted secret does not hide the credential's other
    /// problems.
    token: Option<Spanned<String>>,
    #[serde(default)]
    hints: Vec<String>,
    #[serde(default)]
    used_by: Vec<Spanned<RawBinding>>,
    probe: Option<RawProbe>,
}

#[derive(Deserialize)]
struct RawProbe {
    expiry_horizon: Option<Dur>,
    max_skew: Option<Dur>,
    #[serde(flatten)]
    kind: crate::probes::ProbeKind,
}

#[derive(Deserialize)]
struct RawBinding {
    vendor: Name,
    tenant: Spanned<Name>,
    #[serde(default)]
    hosts: Vec<String>,
}

#[derive(Deserialize)]
struct RawPrivacy {
    key: Option<Spanned<String>>,
    #[serde(default)]
    columns: BTreeMap<String, Spanned<PrivacyAction>>,
}

#[derive(Deserialize)]
struct RawJob {
    schedule: Spanned<Schedule>,
    sources: Vec<Spanned<String>>,
    datasets: Option<Vec<Spanned<String>>>,
    tenants: Option<Vec<Spanned<Name>>>,
    max_wait: Option<Dur>,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
}

fn read_file(file: &Path, diags: &mut Diagnostics) -> Option<String> {
    match std::fs::read_to_string(file) {
        Ok(text) => Some(text),
        Err(e) => {
            diags.file_error(file, format!("cannot read the configuration file: {e}"));
            None
        }
    }
}

fn load(file: &Path, diags: &mut Diagnostics) -> Option<Config> {
    let text = read_file(file, diags)?;
    let base_dir = file
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let base_dir = std::fs::canonicalize(&base_dir).unwrap_or(base_dir);
    let mut doc = Doc::new(file, &text, diags);
    let root = doc.parse()?;
    let root_table = root.get_ref();

    for (key, _) in root_table.iter() {
        if !MAIN_KEYS.contains(&key.get_ref().as_ref()) {
            doc.error(
                key.span(),
                format!(
                    "unknown key `{}` (expected one of: {})",
                    key.get_ref(),
                    MAIN_KEYS.join(", ")
                ),
            );
        }
    }

    let store = match root_table.get("store") {
        Some(v) => decode_store(&mut doc, v, &base_dir, "[store]"),
        None => {
            doc.error(0..0, "missing [store] table (where exported files go), e.g. [store] kind = \"local\" path = \"out\"");
            None
        }
    };
    let state = root_table
        .get("state")
        .and_then(|v| decode_store(&mut doc, v, &base_dir, "[state]"));

    let raw_defaults: RawDefaults = root_table
        .get("defaults")
        .and_then(|v| doc.decode(v, "[defaults]"))
        .unwrap_or_default();
    let d = Defaults::default();
    let defaults = Defaults {
        collect_every: raw_defaults.collect_every.unwrap_or(d.collect_every),
        lateness: raw_defaults.lateness.unwrap_or(d.lateness),
        initial_lookback: raw_defaults.initial_lookback.unwrap_or(d.initial_lookback),
        staging_retention: raw_defaults
            .staging_retention
            .unwrap_or(d.staging_retention),
        max_wait: raw_defaults.max_wait.unwrap_or(d.max_wait),
        lease_ttl: raw_defaults.lease_ttl.unwrap_or(d.lease_ttl),
    };
    if defaults.lease_ttl.0 < std::time::Duration::from_secs(1) {
        let span = root_table.get("defaults").map_or(0..0, |v| v.span());
        doc.error(span, "[defaults] lease_ttl must be at least 1s");
    }

    let clock = root_table
        .get("clock")
        .and_then(|v| doc.decode::<RawClock>(v, "[clock]"))
        .map(|c| c.now.0);

    let mut tenants = BTreeMap::new();
    for (name, value) in table_entries(&mut doc, root_table.get("tenants"), "tenants") {
        if let Err(e) = Name::check(name.get_ref()) {
            doc.error(name.span(), e);
        }
        if let Some(raw) = doc.decode::<RawTenant>(value, &format!("tenant `{}`", name.get_ref())) {
            tenants.insert(
                name.get_ref().to_string(),
                Tenant {
                    name: name.get_ref().to_string(),
                    environment: raw.environment.0,
                },
            );
        }
    }

    let mut sources = BTreeMap::new();
    for (name, value) in table_entries(&mut doc, root_table.get("sources"), "sources") {
        if let Some(spec) = decode_source(&mut doc, name, value, &defaults, &tenants) {
            sources.insert(spec.name.clone(), spec);
        }
    }

    let mut credentials = Vec::new();
    if let Some(value) = root_table.get("credentials") {
        match value.get_ref() {
            DeValue::Array(items) => {
                for item in items.iter() {
                    if let Some(c) = decode_credential(&mut doc, item, &base_dir) {
                        credentials.push(c);
                    }
                }
            }
            _ => doc.error(
                value.span(),
                "`credentials` must be an array of tables: write each as [[credentials]]",
            ),
        }
    }

    let bursts = {
        let raw: RawBursts = root_table
            .get("bursts")
            .and_then(|v| doc.decode(v, "[bursts]"))
            .unwrap_or_default();
        let d = crate::analysis::bursts::Settings::default();
        let settings = crate::analysis::bursts::Settings {
            gap: raw.gap.map_or(d.gap, |g| g.0),
            min_count: raw.min_count.unwrap_or(d.min_count),
            margin: raw.margin.map_or(d.margin, |m| m.0),
        };
        if settings.min_count == 0 || settings.gap.is_zero() {
            let span = root_table.get("bursts").map_or(0..0, |v| v.span());
            doc.error(span, "[bursts]: gap and min_count must be more than zero");
        }
        if settings.margin < settings.gap {
            let span = root_table.get("bursts").map_or(0..0, |v| v.span());
            doc.error(
                span,
                "[bursts]: margin must be at least the gap, or bursts at a window's edge are cut",
            );
        }
        settings
    };
    let correlation = {
        let raw: RawCorrelation = root_table
            .get("correlation")
            .and_then(|v| doc.decode(v, "[correlation]"))
            .unwrap_or_default();
        let d = crate::analysis::correlate::Settings::default();
        let settings = crate::analysis::correlate::Settings {
            gap: raw.gap.map_or(d.gap, |g| g.0),
            change_lookback: raw.change_lookback.map_or(d.change_lookback, |g| g.0),
            skew: raw.skew.map_or(d.skew, |g| g.0),
        };
        if settings.gap.is_zero() || settings.skew < std::time::Duration::from_secs(1) {
            let span = root_table.get("correlation").map_or(0..0, |v| v.span());
            doc.error(
                span,
                "[correlation]: gap must be more than zero, and skew at least 1s (every clock differs by some milliseconds)",
            );
        }
        settings
    };
    for spec in sources.values() {
        let Some(name) = spec.settings.credential() else {
            continue;
        };
        let environment = tenants
            .get(&spec.tenant)
            .map_or("", |t| t.environment.as_str());
        let found = credentials
            .iter()
            .find(|c| &c.name == name.get_ref() && c.environment == environment);
        match found {
            None => doc.error(
                name.span(),
                format!(
                    "source `{}`: no [[credentials]] entry named `{}` with environment = \"{environment}\" (the environment of tenant {})",
                    spec.name,
                    name.get_ref(),
                    spec.tenant
                ),
            ),
            Some(c) if c.token.is_none() && spec.settings.needs_token() => doc.error(
                name.span(),
                format!(
                    "source `{}`: credential `{}` has no token: add token = \"env:NAME\" (or file:…, credential:…)",
                    spec.name,
                    name.get_ref()
                ),
            ),
            Some(_) => {}
        }
    }

    let http = {
        let raw: RawHttp = root_table
            .get("http")
            .and_then(|v| doc.decode(v, "[http]"))
            .unwrap_or_default();
        let d = crate::http::Settings::default();
        let mut share = |v: &Option<Spanned<f64>>, default: f64, what: &str| match v {
            Some(v)
                if !(0.0..=1.0).contains(v.get_ref())
                    || *v.get_ref() == 0.0 && what == "budget_share" =>
            {
                doc.error(
                    v.span(),
                    format!("[http] {what} is a share: more than 0, at most 1 (0.1 = 10%)"),
                );
                default
            }
            Some(v) => *v.get_ref(),
            None => default,
        };
        let budget_share = share(&raw.budget_share, d.budget_share, "budget_share");
        let reserve = share(&raw.reserve, d.reserve, "reserve");
        crate::http::Settings {
            ca_bundle: raw.ca_bundle.map(|p| base_dir.join(p.get_ref())),
            timeout: raw.timeout.map_or(d.timeout, |t| t.0),
            connect_timeout: raw.connect_timeout.map_or(d.connect_timeout, |t| t.0),
            budget_share,
            reserve,
            max_attempts: raw.max_attempts.unwrap_or(d.max_attempts).max(1),
            max_pages: raw.max_pages.unwrap_or(d.max_pages).max(1),
            deadline: raw.deadline.map_or(d.deadline, |t| t.0),
        }
    };
    if let Some(bundle) = &http.ca_bundle
        && !bundle.is_file()
    {
        let span = root_table.get("http").map_or(0..0, |v| v.span());
        doc.error(
            span,
            format!("[http] ca_bundle: {} is not a file", bundle.display()),
        );
    }

    let privacy = match root_table.get("privacy") {
        Some(v) => decode_privacy(&mut doc, v, &base_dir),
        None => Privacy::default(),
    };

    let job_globs: Vec<Spanned<String>> = match root_table.get("jobs") {
        Some(v) => doc.decode(v, "`jobs`").unwrap_or_default(),
        None => vec![Spanned::new(0..0, "jobs/*.toml".to_string())],
    };
    let mut job_files = Vec::new();
    for pattern in &job_globs {
        let full = base_dir.join(pattern.get_ref());
        match glob::glob(&full.to_string_lossy()) {
            Ok(paths) => {
                for p in paths.flatten() {
                    job_files.push(p);
                }
            }
            Err(e) => doc.error(pattern.span(), format!("invalid glob pattern: {e}")),
        }
    }
    job_files.sort();
    job_files.dedup();
    if job_files.is_empty() {
        let span = job_globs.first().map_or(0..0, |g| g.span());
        doc.warning(
            span,
            format!(
                "no job files match {}: nothing will be exported",
                job_globs
                    .iter()
                    .map(|g| g.get_ref().as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    drop(doc);

    let mut jobs = BTreeMap::new();
    for job_file in job_files {
        if let Some(job) = load_job(&job_file, &defaults, diags) {
            jobs.insert(job.name.clone(), job);
        }
    }

    let config = Config {
        file: file.to_path_buf(),
        base_dir,
        store: store?,
        state,
        defaults,
        clock,
        tenants,
        sources,
        credentials,
        privacy,
        bursts,
        correlation,
        http,
        jobs,
    };
    check::cross_check(&config, diags);
    Some(config)
}

/// The entries of a table of named tables (`[tenants.x]`, `[sources.x]`).
fn table_entries<'a, 'i>(
    doc: &mut Doc<'i>,
    value: Option<&'a Spanned<DeValue<'i>>>,
    what: &str,
) -> Vec<(
    &'a Spanned<std::borrow::Cow<'i, str>>,
    &'a Spanned<DeValue<'i>>,
)> {
    match value.map(|v| (v, v.get_ref())) {
        None => Vec::new(),
        Some((_, DeValue::Table(t))) => t.iter().collect(),
        Some((v, _)) => {
            doc.error(
                v.span(),
                format!("`{what}` must be a table of named tables, like [{what}.NAME]"),
            );
            Vec::new()
        }
    }
}

fn decode_store(
    doc: &mut Doc<'_>,
    value: &Spanned<DeValue<'_>>,
    base_dir: &Path,
    what: &str,
) -> Option<StoreSpec> {
    let DeValue::Table(table) = value.get_ref() else {
        doc.error(value.span(), format!("{what} must be a table"));
        return None;
    };
    for (key, _) in table.iter() {
        if S3_CREDENTIAL_KEYS.contains(&key.get_ref().as_ref()) {
            doc.error(
                key.span(),
                format!("{what}: credentials do not go in the configuration file: scopetrail takes them from the standard AWS chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile with SSO or credential_process, IRSA web identity, ECS, instance metadata)"),
            );
            return None;
        }
    }
    let kind = match table.get("kind").map(|k| (k, k.get_ref())) {
        Some((_, DeValue::String(kind))) => kind.to_string(),
        Some((k, _)) => {
            doc.error(
                k.span(),
                format!("{what}: `kind` must be \"local\" or \"s3\""),
            );
            return None;
        }
        None => {
            doc.error(
                value.span(),
                format!("{what}: missing `kind` (\"local\" or \"s3\")"),
            );
            return None;
        }
    };
    match kind.as_str() {
        "local" => {
            let raw: RawLocalStore = doc.decode(value, what)?;
            match raw.path {
                Some(path) => Some(StoreSpec::Local {
                    path: base_dir.join(path),
                }),
                None => {
                    doc.error(
                        value.span(),
                        format!("{what}: a local store needs `path`, the folder to write into"),
                    );
                    None
                }
            }
        }
        "s3" => {
            let raw: RawS3 = doc.decode(value, what)?;
            let (spec, problems) = raw.check();
            for p in problems {
                let message = format!("{what}: {}", p.message);
                if p.warning {
                    doc.warning(p.span, message);
                } else {
                    doc.error(p.span, message);
                }
            }
            spec.map(StoreSpec::S3)
        }
        other => {
            let span = table.get("kind").map(|k| k.span()).unwrap_or(value.span());
            doc.error(
                span,
                format!("{what}: unknown store kind `{other}` (\"local\" or \"s3\")"),
            );
            None
        }
    }
}

fn decode_source(
    doc: &mut Doc<'_>,
    name: &Spanned<std::borrow::Cow<'_, str>>,
    value: &Spanned<DeValue<'_>>,
    defaults: &Defaults,
    tenants: &BTreeMap<String, Tenant>,
) -> Option<SourceSpec> {
    let what = format!("source `{}`", name.get_ref());
    if let Err(e) = Name::check(name.get_ref()) {
        doc.error(name.span(), e);
    }
    if name.get_ref().starts_with("scopetrail") {
        doc.error(
            name.span(),
            "source names starting with `scopetrail` are reserved for scopetrail's own sources",
        );
    }
    let DeValue::Table(table) = value.get_ref() else {
        doc.error(value.span(), format!("{what} must be a table"));
        return None;
    };
    // Split the table: the engine's keys, and the kind's own.
    let (mut common, mut own) = (toml::de::DeTable::new(), toml::de::DeTable::new());
    for (k, v) in table.iter() {
        let target = if SOURCE_COMMON_KEYS.contains(&k.get_ref().as_ref()) {
            &mut common
        } else {
            &mut own
        };
        target.insert(k.clone(), v.clone());
    }
    let common: RawSourceCommon =
        doc.decode(&Spanned::new(value.span(), DeValue::Table(common)), &what)?;
    let kind = common.kind.get_ref().as_str();
    let own = Spanned::new(value.span(), DeValue::Table(own));
    let Some(settings) = crate::sources::decode_settings(kind, doc, &own, &what, tenants) else {
        if !crate::sources::KINDS.contains(&kind) {
            doc.error(
                common.kind.span(),
                format!(
                    "{what}: unknown kind `{kind}` (this build has: {})",
                    crate::sources::KINDS.join(", ")
                ),
            );
        }
        return None;
    };
    let tenant = common.tenant.get_ref().0.clone();
    if !tenants.contains_key(&tenant) {
        doc.error(
            common.tenant.span(),
            format!("{what}: tenant `{tenant}` is not defined under [tenants]"),
        );
    }
    let collect_every = common.collect_every.as_ref().map_or_else(
        || {
            settings
                .default_collect_every()
                .unwrap_or(defaults.collect_every)
        },
        |c| *c.get_ref(),
    );
    let retention = common.retention.or(settings.default_retention());
    if let Some(retention) = retention
        && collect_every.0 * 2 > retention.0
    {
        let span = common
            .collect_every
            .as_ref()
            .map_or(name.span(), |c| c.span());
        doc.error(
            span,
            format!(
                "{what}: collect_every {collect_every} is more than half the source's retention of {retention}: a missed collection would lose data; collect at least every {}",
                Dur(retention.0 / 2)
            ),
        );
    }
    if collect_every.0.is_zero() {
        doc.error(
            name.span(),
            format!("{what}: collect_every must be more than zero"),
        );
    }
    if let (Some(overlap), Some((least, why))) =
        (common.rescan_overlap, settings.least_rescan_overlap())
        && overlap < least
    {
        doc.error(
            name.span(),
            format!("{what}: rescan_overlap {overlap} is less than {least}: {why}"),
        );
    }
    let cadence = Cadence {
        collect_every,
        lateness: common.lateness.unwrap_or(defaults.lateness),
        initial_lookback: {
            let lookback = common.initial_lookback.unwrap_or(defaults.initial_lookback);
            retention.map_or(lookback, |r| lookback.min(r))
        },
        retention,
        rescan_overlap: common
            .rescan_overlap
            .unwrap_or(settings.default_rescan_overlap()),
    };
    // Kept even when a check failed, so jobs that list it are still checked against it.
    Some(SourceSpec {
        name: name.get_ref().to_string(),
        tenant,
        cadence,
        settings,
        loc: doc.loc(name.span()),
    })
}

fn decode_credential(
    doc: &mut Doc<'_>,
    value: &Spanned<DeValue<'_>>,
    base_dir: &Path,
) -> Option<Credential> {
    let raw: RawCredential = doc.decode(value, "[[credentials]]")?;
    let what = format!("credential `{}` ({})", raw.name, raw.environment);
    let token = raw
        .token
        .as_ref()
        .and_then(|r| resolve_secret(doc, r, base_dir, &format!("{what}: token")));
    if raw.client_id.is_none() && raw.access_key_id.is_none() && raw.token.is_none() {
        doc.error(
            value.span(),
            format!("{what}: give its identity: client_id (with issuer), access_key_id, or token"),
        );
    }
    let used_by = raw
        .used_by
        .iter()
        .map(|b| Binding {
            vendor: b.get_ref().vendor.0.clone(),
            tenant: b.get_ref().tenant.get_ref().0.clone(),
            hosts: b
                .get_ref()
                .hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            loc: doc.loc(b.span()),
        })
        .collect();
    let probe = raw.probe.map(|p| crate::probes::ProbeSpec {
        kind: p.kind,
        expiry_horizon: p
            .expiry_horizon
            .unwrap_or(crate::probes::DEFAULT_EXPIRY_HORIZON),
        max_skew: p.max_skew.unwrap_or(crate::probes::DEFAULT_MAX_SKEW),
    });
    let credential = Credential {
        name: raw.name.0,
        environment: raw.environment.0,
        client_id: raw.client_id,
        issuer: raw.issuer,
        access_key_id: raw.access_key_id,
        token,
        token_ref: raw
            .token
            .as_ref()
            .and_then(|t| SecretRef::parse(t.get_ref()).ok()),
        hints: raw.hints,
        used_by,
        probe,
        loc: doc.loc(value.span()),
    };
    if let Some(probe) = &credential.probe {
        let kind = probe.kind.name();
        for problem in probe.kind.check(&credential) {
            doc.error(
                value.span(),
                format!("{what}: [credentials.probe] ({kind}): {problem}"),
            );
        }
        if credential.used_by.is_empty() {
            doc.error(value.span(), format!("{what}: a probed credential needs [[credentials.used_by]]: its snapshots are filed under the vendor and tenant it is used against"));
        }
    }
    Some(credential)
}

/// Parses and reads a secret reference; errors name the reference, never a value.
fn resolve_secret(
    doc: &mut Doc<'_>,
    text: &Spanned<String>,
    base_dir: &Path,
    what: &str,
) -> Option<SecretString> {
    let resolved = SecretRef::parse(text.get_ref()).and_then(|r| r.resolve(base_dir));
    match resolved {
        Ok(secret) => Some(secret),
        Err(e) => {
            doc.error(text.span(), format!("{what}: {e}"));
            None
        }
    }
}

fn decode_privacy(doc: &mut Doc<'_>, value: &Spanned<DeValue<'_>>, base_dir: &Path) -> Privacy {
    let Some(raw) = doc.decode::<RawPrivacy>(value, "[privacy]") else {
        return Privacy::default();
    };
    let key = raw
        .key
        .as_ref()
        .and_then(|r| resolve_secret(doc, r, base_dir, "[privacy] key"));
    let personal: Vec<&str> = Dataset::ALL
        .iter()
        .flat_map(|d| d.columns())
        .filter(|c| c.personal)
        .map(|c| c.name)
        .collect();
    let mut columns = BTreeMap::new();
    for (column, action) in &raw.columns {
        if !personal.contains(&column.as_str()) {
            let mut names = personal.clone();
            names.sort();
            names.dedup();
            doc.error(
                action.span(),
                format!(
                    "[privacy.columns]: `{column}` is not a personal-data column; options apply to: {}",
                    names.join(", ")
                ),
            );
            continue;
        }
        if *action.get_ref() == PrivacyAction::Hash && raw.key.is_none() {
            doc.error(
                action.span(),
                "[privacy]: hashing needs a key: set key = \"env:NAME\" (or file:, credential:)",
            );
        }
        columns.insert(column.clone(), *action.get_ref());
    }
    Privacy { key, columns }
}

fn load_job(file: &Path, defaults: &Defaults, diags: &mut Diagnostics) -> Option<Job> {
    let text = read_file(file, diags)?;
    let name = file
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let mut doc = Doc::new(file, &text, diags);
    if let Err(e) = Name::check(&name) {
        doc.error(0..0, format!("job name (the file name) {e}"));
    }
    let root = doc.parse()?;
    let root_value = Spanned::new(root.span(), DeValue::Table(root.into_inner()));
    let raw: RawJob = doc.decode(&root_value, &format!("job `{name}`"))?;
    let mut datasets = Vec::new();
    match &raw.datasets {
        None => datasets.extend_from_slice(Dataset::ALL),
        Some(list) => {
            for d in list {
                match Dataset::from_name(d.get_ref()) {
                    Some(dataset) => datasets.push(dataset),
                    None => doc.error(
                        d.span(),
                        format!(
                            "unknown dataset `{}` (datasets: {})",
                            d.get_ref(),
                            Dataset::ALL
                                .iter()
                                .map(|d| d.name())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ),
                }
            }
        }
    }
    if raw.sources.is_empty() {
        doc.error(root_value.span(), format!("job `{name}` lists no sources"));
    }
    let job = Job {
        name: name.clone(),
        file: file.to_path_buf(),
        schedule: raw.schedule.get_ref().clone(),
        sources: raw
            .sources
            .iter()
            .map(|s| Listed {
                name: s.get_ref().clone(),
                loc: doc.loc(s.span()),
            })
            .collect(),
        datasets,
        tenants: raw.tenants.as_ref().map(|ts| {
            ts.iter()
                .map(|t| Listed {
                    name: t.get_ref().0.clone(),
                    loc: doc.loc(t.span()),
                })
                .collect()
        }),
        max_wait: raw.max_wait.unwrap_or(defaults.max_wait),
        loc: doc.loc(raw.schedule.span()),
    };
    Some(job)
}
