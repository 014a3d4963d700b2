use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};

use scopetrail::config::{Config, Diagnostics, StoreSpec};
use scopetrail::error::{ConfigError, is_temporary};
use scopetrail::logging::{self, LogFormat};
use scopetrail::model::{Dataset, schema};
use scopetrail::output::athena;
use scopetrail::pipeline::{self, RunOptions, exit};
use scopetrail::{signals, summary};
use tokio_util::sync::CancellationToken;

const EXIT_CODES: &str = "\
Exit codes:
  0   success: everything due was done
  1   partial failure: a source or an export failed (the others ran; what was collected is kept)
  2   bad command line
  75  temporary failure: only things a later run can get past failed (store unavailable, work
      held by another process); run again later
  78  configuration error: nothing was run; `scopetrail validate` lists every problem";

#[derive(Parser)]
#[command(
    name = "scopetrail",
    version,
    about = "Keeps the paper trail of API integration failures: denials (401/403), failed webhook deliveries and 429 bursts, as CSV in object storage for your SIEM.",
    long_about = "Keeps the paper trail of API integration failures: denials (401/403), failed webhook deliveries and 429 bursts, as CSV in object storage for your SIEM.\n\n`scopetrail run` does whatever is due and exits: call it from a systemd timer, cron or a Kubernetes CronJob, as often as you like (hourly is a good default). Each source is collected every `collect_every`; each job exports its closed windows on its cron schedule (UTC).",
    after_help = EXIT_CODES
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, value_enum, default_value = "auto", global = true)]
    log_format: LogFormat,
    /// More log output (-v: info, -vv: debug). SCOPETRAIL_LOG=<filter> overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Collect the sources that are due, export the windows that are closed, then exit.
    #[command(after_help = EXIT_CODES)]
    Run(RunArgs),
    /// Stay running: run on each job's schedule and each source's cadence (UTC), catching up
    /// missed windows at start, until SIGTERM or SIGINT.
    #[command(
        after_help = "On SIGTERM or SIGINT the run in progress stops after the current page, stages it and the process exits 0 within --grace; a second signal exits at once. Nothing is lost either way: the next run resumes from the last checkpoint and replays any export cut short."
    )]
    Daemon {
        #[command(flatten)]
        config: ConfigArg,
        /// How long to wait for the run in progress to stop after SIGTERM.
        #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
        grace: std::time::Duration,
    },
    /// Probe the credentials now and print what each holds and what changed: privileges,
    /// expiry, clock skew, drift since the last snapshot.
    #[command(
        after_help = "Each credential with a [credentials.probe] table is probed as a run would (OAuth2 token request, JWT, introspection, GitHub token, AWS STS). The snapshots and any drift are staged like a run's, so the next export carries them and the next snapshot compares with these.\n\nExit codes: 0 every probe succeeded, 1 some probe reported a problem (status other than ok), 75 the state store is unavailable, 78 configuration error."
    )]
    Snapshot {
        #[command(flatten)]
        config: ConfigArg,
        /// Only the credential of this name (in every environment it has).
        #[arg(long, value_name = "NAME")]
        credential: Option<String>,
    },
    /// Explain the failures in exported data: for each cluster of denials, webhook failures
    /// and 429 bursts, its most likely cause, the evidence and the fix; top causes first.
    #[command(
        after_help = "It reads what exports wrote (the configuration's store, or --from) and runs the same correlation as the export's `findings`: failures are grouped by credential, error class and operation, and each group's candidate causes (scope drift, environment mismatch, audience, identity, expiry, clock skew, revocation, admin changes, rate limits, vendor incidents, a failing webhook receiver) are ranked from the snapshots, changes, incidents and request counts around it.\n\nExamples:\n  scopetrail explain --config demo/scopetrail.toml\n  scopetrail explain --from /var/lib/scopetrail/out --since 7d\n  scopetrail explain --from s3://siem-evidence/scopetrail --since 2026-03-05\n  scopetrail explain --config demo/scopetrail.toml --finding 3f2a9c1e\n\nFor --from s3://, the AWS credential chain (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL...) applies; with a configuration whose store is S3, its endpoint and addressing are used.\n\nExit codes: 0 report printed, 1 the data could not be read, 75 the store is unreachable, 78 bad arguments or configuration."
    )]
    Explain(ExplainArgs),
    /// Rebuild the HTML report of an exported window (the page each export writes to
    /// reports/<job>/<window>.html) from the exported data, into a local file.
    #[command(
        after_help = "The page is self-contained (no script, font or image from elsewhere; a Content-Security-Policy that forbids them): the window's findings, most important first, each with its explanation, evidence, timeline and fix; drift warnings; sources that were late, failing or skipped malformed input; per vendor, denials, webhook failures and 429s over the window with drifts, admin changes and incidents marked; the top failing operations and credentials. A rebuild reads the rows exported since, so it can know more than the page the export wrote.\n\nExamples:\n  scopetrail report --config demo/scopetrail.toml\n  scopetrail report --from /var/lib/scopetrail/out --job weekly --window 2026-03-05\n  scopetrail report --from s3://siem-evidence/scopetrail --window 20260302T000000Z_20260309T000000Z --out week.html\n\nExit codes: 0 written, 1 the data could not be read, 75 the store is unreachable, 78 bad arguments or configuration."
    )]
    Report(ReportArgs),
    /// Check the configuration and report every problem with file, line and column.
    #[command(
        after_help = "With --connect it also reaches the store: on S3 it lists the prefix, writes, reads and deletes a probe object under _state/, records whether the server honours conditional writes (If-None-Match, If-Match), and checks that v1/ is writable without writing there. A denial names the missing permission.\n\nExit codes: 0 valid (warnings may be printed), 75 store unreachable (try again later), 78 invalid or a permission is missing."
    )]
    Validate(ValidateArgs),
    /// Print the Frictionless Table Schema of a dataset (without one: list the datasets), or
    /// with --athena the Athena DDL for querying the bucket.
    #[command(
        after_help = "With --athena it prints, for the dataset named or for every one, an Athena CREATE EXTERNAL TABLE over s3://<bucket>/<prefix>/v1/<dataset>/ (OpenCSVSerDe, every column STRING, the vendor=, tenant= and dt= folders as partitions found by partition projection: no crawler, no MSCK REPAIR), then a CREATE OR REPLACE VIEW <dataset>_typed that gives the columns their types (empty cells are NULL). Paste each statement into the Athena query editor on its own, in a database of your choice. Queries must name the vendor and tenant with `=` (injected projection): SELECT * FROM denials_typed WHERE vendor = 'github' AND tenant = 'acme-prod' AND dt >= '2026-03-01'.\n\nExamples:\n  scopetrail schema --athena denials --location s3://siem-evidence/scopetrail\n  scopetrail schema --athena > athena.sql     (placeholders <bucket> and <prefix> to replace)"
    )]
    Schema {
        /// A dataset, e.g. `denials`.
        dataset: Option<String>,
        /// Write every dataset's schema as <DIR>/<dataset>.json instead.
        #[arg(long, value_name = "DIR", conflicts_with = "athena")]
        write: Option<PathBuf>,
        /// Print Athena DDL (table with partition projection, and a typed view) instead of the
        /// Table Schema; every dataset unless one is named.
        #[arg(long)]
        athena: bool,
        /// The store's bucket and prefix, as in the `[store]` table, for the DDL's locations
        /// [default: the placeholders s3://<bucket>/<prefix>/].
        #[arg(long, value_name = "S3_URL", requires = "athena", value_parser = parse_location)]
        location: Option<athena::Location>,
    },
}

#[derive(Args)]
struct ConfigArg {
    /// The main configuration file [default: ./scopetrail.toml if present, else
    /// /etc/scopetrail/scopetrail.toml].
    #[arg(long, short, env = "SCOPETRAIL_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Args)]
struct ExplainArgs {
    /// The main configuration file, for its store and [correlation] settings [default:
    /// ./scopetrail.toml if present; not needed with --from].
    #[arg(long, short, env = "SCOPETRAIL_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Exported data to read: a folder (a local store's path) or s3://BUCKET/PREFIX
    /// [default: the configuration's store].
    #[arg(long, value_name = "PATH_OR_S3_URL")]
    from: Option<String>,
    /// Only failures since then: a duration back from now (7d, 36h) or a time (2026-03-05,
    /// 2026-03-05T09:00:00Z).
    #[arg(long, value_name = "WHEN")]
    since: Option<String>,
    /// One finding, by its id or the first characters of it, with its timeline.
    #[arg(long, value_name = "ID")]
    finding: Option<String>,
}

#[derive(Args)]
struct ReportArgs {
    /// The main configuration file, for its store and [correlation] lookback [default:
    /// ./scopetrail.toml if present; not needed with --from].
    #[arg(long, short, env = "SCOPETRAIL_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Exported data to read: a folder (a local store's path) or s3://BUCKET/PREFIX
    /// [default: the configuration's store].
    #[arg(long, value_name = "PATH_OR_S3_URL")]
    from: Option<String>,
    /// The job whose window it is [default: the only job that exported there].
    #[arg(long, value_name = "NAME")]
    job: Option<String>,
    /// A window's name (20260302T000000Z_20260309T000000Z), a day inside an exported window
    /// (2026-03-05), or a range of days (2026-03-02..2026-03-09) [default: the newest
    /// exported window].
    #[arg(long, value_name = "WINDOW")]
    window: Option<String>,
    /// Where to write the page; - for standard output [default:
    /// ./<job>-<window>.html].
    #[arg(long, short, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct ValidateArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Also connect to the store (and the state store): reachable, writable, conditional
    /// writes honoured.
    #[arg(long)]
    connect: bool,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Only this job and the sources it lists.
    #[arg(long, value_name = "NAME")]
    job: Option<String>,
    /// Act as if it were this time (RFC 3339, e.g. 2026-03-09T01:00:00Z): decides what is due
    /// and which windows are closed.
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    now: Option<DateTime<Utc>>,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e}; write it like 30s or 2m"))
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{e}; write it like 2026-03-09T01:00:00Z"))
}

fn parse_location(s: &str) -> Result<athena::Location, String> {
    athena::Location::parse(s)
}

fn config_path(arg: &ConfigArg) -> PathBuf {
    if let Some(p) = &arg.config {
        return p.clone();
    }
    let local = Path::new("scopetrail.toml");
    if local.exists() {
        local.to_path_buf()
    } else {
        PathBuf::from("/etc/scopetrail/scopetrail.toml")
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format, cli.verbose);
    let code = match cli.command {
        Command::Run(args) => run(args),
        Command::Daemon { config, grace } => daemon(&config, grace),
        Command::Validate(args) => validate(&args),
        Command::Explain(args) => explain(&args),
        Command::Report(args) => report(&args),
        Command::Snapshot { config, credential } => snapshot(&config, credential),
        Command::Schema {
            dataset,
            athena: true,
            location,
            ..
        } => print_athena(dataset, &location.unwrap_or_default()),
        Command::Schema { dataset, write, .. } => print_schema(dataset, write),
    };
    ExitCode::from(code)
}

fn print_diagnostics(diags: &Diagnostics, to_stdout: bool) {
    for d in &diags.0 {
        if to_stdout {
            println!("{d}");
        } else {
            eprintln!("{d}");
        }
    }
}

fn load(path: &Path, to_stdout: bool) -> Result<Config, u8> {
    match Config::load(path) {
        Ok((config, warnings)) => {
            print_diagnostics(&warnings, to_stdout);
            Ok(config)
        }
        Err(diags) => {
            print_diagnostics(&diags, to_stdout);
            let n = diags.errors().count();
            eprintln!(
                "scopetrail: {} has {n} configuration error{}; nothing was run",
                path.display(),
                if n == 1 { "" } else { "s" }
            );
            Err(exit::CONFIG)
        }
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

fn run(args: RunArgs) -> u8 {
    let path = config_path(&args.config);
    let config = match load(&path, false) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let cancel = CancellationToken::new();
    let options = RunOptions {
        job: args.job,
        now: args.now,
        cancel: cancel.clone(),
        ..RunOptions::default()
    };
    let result = match runtime() {
        Ok(rt) => rt.block_on(async {
            signals::cancel_on_signals(cancel.clone())?;
            pipeline::run(&config, &options).await
        }),
        Err(e) => Err(e.into()),
    };
    match result {
        Ok(report) => {
            print!("{}", summary::render(&report));
            if cancel.is_cancelled() && report.failures.is_empty() {
                eprintln!(
                    "scopetrail: interrupted: asked to stop; what was read is staged and the next run carries on"
                );
            }
            let code = report.exit_code();
            if let Some(first) = report.failures.first() {
                let more = match report.failures.len() {
                    1 => String::new(),
                    n => format!(" (and {} more; see above)", n - 1),
                };
                // One line on stderr, so cron mail says what broke.
                eprintln!("scopetrail: {}: {}{more}", first.what, first.error);
            }
            code
        }
        Err(e) => {
            eprintln!("scopetrail: {e:#}");
            error_code(&e)
        }
    }
}

fn snapshot(arg: &ConfigArg, credential: Option<String>) -> u8 {
    use pipeline::SourceOutcome;
    let path = config_path(arg);
    let config = match load(&path, false) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let options = RunOptions::default();
    let result = match runtime() {
        Ok(rt) => rt.block_on(pipeline::snapshot(&config, &options, credential)),
        Err(e) => Err(e.into()),
    };
    let (report, outcomes) = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("scopetrail: {e:#}");
            return error_code(&e);
        }
    };
    match &report.outcome {
        SourceOutcome::Failed {
            error, temporary, ..
        } => {
            eprintln!("scopetrail: snapshot: {error}");
            if *temporary {
                exit::TEMPORARY
            } else {
                exit::PARTIAL
            }
        }
        SourceOutcome::Skipped { busy } => {
            eprintln!(
                "scopetrail: snapshot: another process is taking snapshots ({}); try again in a minute",
                busy.holder
            );
            exit::TEMPORARY
        }
        _ => {
            let now = config.clock.unwrap_or_else(Utc::now).timestamp_millis();
            print!("{}", summary::render_snapshots(&outcomes, now));
            if outcomes.iter().all(|o| o.observation.ok()) {
                exit::OK
            } else {
                exit::PARTIAL
            }
        }
    }
}

fn daemon(arg: &ConfigArg, grace: std::time::Duration) -> u8 {
    let path = config_path(arg);
    let config = match load(&path, false) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let result = match runtime() {
        Ok(rt) => rt.block_on(scopetrail::daemon::run(config, grace)),
        Err(e) => Err(e.into()),
    };
    match result {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("scopetrail: daemon: {e:#}");
            exit::PARTIAL
        }
    }
}

fn explain(args: &ExplainArgs) -> u8 {
    let config = match optional_config(&args.config, args.from.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let now = config
        .as_ref()
        .and_then(|c| c.clock)
        .unwrap_or_else(Utc::now);
    let since_ms = match args
        .since
        .as_deref()
        .map(|s| parse_since(s, now))
        .transpose()
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("scopetrail: --since {e}");
            return exit::CONFIG;
        }
    };
    let options = scopetrail::explain::Options {
        from: args.from.clone(),
        since_ms,
        finding: args.finding.clone(),
    };
    let settings = config
        .as_ref()
        .map(|c| c.correlation.clone())
        .unwrap_or_default();
    let work = async {
        let (store, location) =
            scopetrail::explain::open(config.as_ref(), options.from.as_deref()).await?;
        let scratch = tempfile::tempdir()?;
        scopetrail::explain::explain(&store, &location, &settings, &options, scratch.path()).await
    };
    let result = match runtime() {
        Ok(rt) => rt.block_on(work),
        Err(e) => Err(e.into()),
    };
    match result {
        Ok((report, _)) => {
            print!("{report}");
            exit::OK
        }
        Err(e) => {
            eprintln!("scopetrail: explain: {e:#}");
            error_code(&e)
        }
    }
}

/// The configuration `explain` and `report` read: optional with --from, needed without.
fn optional_config(config: &Option<PathBuf>, from: Option<&str>) -> Result<Option<Config>, u8> {
    let path = config.clone().or_else(|| {
        let local = Path::new("scopetrail.toml");
        (from.is_none() || local.exists()).then(|| config_path(&ConfigArg { config: None }))
    });
    match &path {
        Some(p) => load(p, false).map(Some),
        None => Ok(None),
    }
}

fn report(args: &ReportArgs) -> u8 {
    let config = match optional_config(&args.config, args.from.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let lookback = config
        .as_ref()
        .map(|c| c.correlation.clone())
        .unwrap_or_default()
        .change_lookback;
    let lookback = i64::try_from(lookback.as_millis()).unwrap_or(i64::MAX);
    let choice = scopetrail::report::Choice {
        job: args.job.as_deref(),
        window: args.window.as_deref(),
    };
    let work = async {
        // The page names the store as the export's page does: by its location.
        let (store, _) = scopetrail::explain::open(config.as_ref(), args.from.as_deref()).await?;
        let scratch = tempfile::tempdir()?;
        let location = store.location();
        scopetrail::report::rebuild(store.as_ref(), &location, &choice, lookback, scratch.path())
            .await
    };
    let result = match runtime() {
        Ok(rt) => rt.block_on(work),
        Err(e) => Err(e.into()),
    };
    let (window, page) = match result {
        Ok(done) => done,
        Err(e) => {
            eprintln!("scopetrail: report: {e:#}");
            return error_code(&e);
        }
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(scopetrail::report::file_name(&window)));
    if out.as_os_str() == "-" {
        print!("{page}");
        return exit::OK;
    }
    match std::fs::write(&out, page) {
        Ok(()) => {
            println!("{}", out.display());
            exit::OK
        }
        Err(e) => {
            eprintln!("scopetrail: report: writing {}: {e}", out.display());
            exit::CONFIG
        }
    }
}

/// `7d`, `36h` back from now, or a day or time.
fn parse_since(text: &str, now: chrono::DateTime<Utc>) -> Result<i64, String> {
    if let Ok(d) = humantime::parse_duration(text) {
        return chrono::Duration::from_std(d)
            .ok()
            .and_then(|d| now.checked_sub_signed(d))
            .map(|t| t.timestamp_millis())
            .ok_or_else(|| format!("{text:?} reaches back before any date scopetrail can read"));
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_millis());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        && let Some(t) = d.and_hms_opt(0, 0, 0)
    {
        return Ok(t.and_utc().timestamp_millis());
    }
    Err(format!(
        "{text:?} is neither a duration (7d, 36h) nor a day or time (2026-03-05, 2026-03-05T09:00:00Z)"
    ))
}

fn validate(args: &ValidateArgs) -> u8 {
    let path = config_path(&args.config);
    let config = match load(&path, true) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    println!(
        "{}: valid ({}, {}, {}, {})",
        path.display(),
        count(config.tenants.len(), "tenant"),
        count(config.sources.len(), "source"),
        count(config.credentials.len(), "credential"),
        count(config.jobs.len(), "job")
    );
    let now = config.clock.unwrap_or_else(Utc::now);
    for job in config.jobs.values() {
        let fires: Vec<String> = job
            .schedule
            .next_fires(now, 3)
            .iter()
            .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .collect();
        println!(
            "job {} ({}): exports on \"{}\" (UTC); next fires {}",
            job.name,
            job.file.display(),
            job.schedule.expr(),
            fires.join(", ")
        );
    }
    if !args.connect {
        return exit::OK;
    }
    let stores: Vec<&StoreSpec> = std::iter::once(&config.store)
        .chain(config.state.as_ref())
        .collect();
    let checked = runtime().map_err(anyhow::Error::from).and_then(|rt| {
        rt.block_on(async {
            for spec in stores {
                for line in pipeline::check_store(spec).await? {
                    println!("{line}");
                }
            }
            Ok(())
        })
    });
    match checked {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("scopetrail: {e:#}");
            error_code(&e)
        }
    }
}

/// The exit code of a run that failed as a whole.
fn error_code(e: &anyhow::Error) -> u8 {
    if e.chain().any(|c| c.is::<ConfigError>()) {
        exit::CONFIG
    } else if is_temporary(e) {
        exit::TEMPORARY
    } else {
        exit::PARTIAL
    }
}

fn print_schema(dataset: Option<String>, write: Option<PathBuf>) -> u8 {
    if let Some(dir) = write {
        for d in Dataset::ALL {
            let path = dir.join(format!("{}.json", d.name()));
            if let Err(e) = std::fs::create_dir_all(&dir)
                .and_then(|()| std::fs::write(&path, schema::render(*d)))
            {
                eprintln!("scopetrail: writing {}: {e}", path.display());
                return exit::PARTIAL;
            }
        }
        println!("wrote {} schemas to {}", Dataset::ALL.len(), dir.display());
        return exit::OK;
    }
    match dataset {
        Some(name) => match dataset_named(&name) {
            Some(d) => {
                print!("{}", schema::render(d));
                exit::OK
            }
            None => exit::CONFIG,
        },
        None => {
            for d in Dataset::ALL {
                println!("{:<18} {}", d.name(), d.ocsf_class());
            }
            println!(
                "\n`scopetrail schema <dataset>` prints its Frictionless Table Schema; `scopetrail schema --athena` the Athena DDL."
            );
            exit::OK
        }
    }
}

/// An exported dataset by name; an unknown one is reported with the list.
fn dataset_named(name: &str) -> Option<Dataset> {
    let found = Dataset::from_name(name);
    if found.is_none() {
        eprintln!(
            "scopetrail: unknown dataset `{name}` (datasets: {})",
            Dataset::ALL
                .iter()
                .map(|d| d.name())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    found
}

fn print_athena(dataset: Option<String>, location: &athena::Location) -> u8 {
    match dataset {
        Some(name) => match dataset_named(&name) {
            Some(d) => print!("{}", athena::render(d, location)),
            None => return exit::CONFIG,
        },
        None => print!("{}", athena::render_all(location)),
    }
    exit::OK
}

// Many small, short-lived allocations (one per JSON value, CSV cell and record): jemalloc's
// thread caches make them cheaper and return memory better than glibc's malloc (bench/github.sh).
// Its options stay the defaults: a run hands freed memory back at the end of each phase
// (`scopetrail::memory`), and whatever is freed after that goes back within ten seconds.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
