//! Logs go to stderr: human-readable on a terminal, JSON lines otherwise (journald, cron
//! mail, a Kubernetes log collector). No secret is ever a field of a log event.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable on a terminal, JSON otherwise.
    Auto,
    Human,
    Json,
}

const QUIET_CRATES: &str = "aws_config=warn,aws_runtime=warn,aws_sdk_s3=warn,aws_sigv4=warn,aws_smithy_runtime=warn,aws_smithy_runtime_api=warn,aws_smithy_http_client=warn,hyper=warn,hyper_util=warn";

pub fn init(format: LogFormat, verbose: u8) {
    let json = match format {
        LogFormat::Auto => !std::io::stderr().is_terminal(),
        LogFormat::Human => false,
        LogFormat::Json => true,
    };
    // On a terminal the run summary says what matters; machines get every event.
    let default = match (verbose, json) {
        (0, false) => "warn",
        (0, true) | (1, _) => "info",
        _ => "debug",
    };
    // The AWS SDK narrates every credential lookup and request at info: only its warnings
    // unless -vv asks for everything.
    let default = if verbose >= 2 {
        default.to_string()
    } else {
        format!("{default},{QUIET_CRATES}")
    };
    let filter =
        EnvFilter::try_from_env("SCOPETRAIL_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init();
    } else {
        builder.compact().with_target(false).init();
    }
}
