//! The records (DESIGN §4) and their CSV columns: the single source of truth for the CSV
//! writer, the staging log and the Frictionless schemas in `schemas/`.

mod column;
mod datasets;
pub mod schema;
pub mod uid;

pub use column::{Cell, Column, Kind, ToCell};
pub use datasets::*;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

/// The last representable event time, 9999-12-31T23:59:59.999Z: times must fit the four-digit
/// years of RFC 3339 and every SIEM's date parser.
pub const MAX_TIME_MS: i64 = 253_402_300_799_999;

/// Epoch milliseconds as RFC 3339 UTC with milliseconds and `Z`, the form of every `_dt` column.
pub fn rfc3339_ms(ms: i64) -> String {
    match Utc.timestamp_millis_opt(ms).single() {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Millis, true),
        None => String::new(),
    }
}

pub fn to_datetime(ms: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms).single()
}

/// The UTC day of an event, the `dt` partition.
pub fn utc_day(ms: i64) -> String {
    to_datetime(ms)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "1970-01-01".to_string())
}
