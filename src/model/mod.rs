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
    String::from_utf8_lossy(&utc_day_bytes(ms)).into_owned()
}

/// `utc_day` without allocating, for comparisons made once per row.
pub fn utc_day_bytes(ms: i64) -> [u8; 10] {
    use chrono::Datelike;
    let (y, m, d) = to_datetime(ms).map_or((1970, 1, 1), |t| (t.year(), t.month(), t.day()));
    let mut out = *b"1970-01-01";
    let digits = |n: u32, at: &mut [u8]| {
        let mut n = n;
        for c in at.iter_mut().rev() {
            *c = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    digits(y.clamp(0, 9999) as u32, &mut out[0..4]);
    digits(m, &mut out[5..7]);
    digits(d, &mut out[8..10]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_day_agrees_with_chrono() {
        for ms in [
            0,
            1,
            86_399_999,
            86_400_000,
            1_772_701_320_000,
            951_782_400_000, // 2000-02-29
            MAX_TIME_MS,
        ] {
            let want = to_datetime(ms).map(|t| t.format("%Y-%m-%d").to_string());
            assert_eq!(Some(utc_day(ms)), want, "{ms}");
        }
    }
}
