//! The records (DESIGN §4) and their CSV columns: the single source of truth for the CSV
//! writer, the staging log and the Frictionless schemas in `schemas/`.

mod column;
mod datasets;
pub mod schema;
pub mod uid;

pub use column::{Cell, CellValue, Column, FromCell, Kind, ToCell};
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

/// `rfc3339_ms`, appended to `out` without chrono's formatting machinery (times of rows are
/// within 1970..=9999; others go through chrono).
pub fn push_rfc3339_ms(ms: i64, out: &mut String) {
    if !(0..=MAX_TIME_MS).contains(&ms) {
        out.push_str(&rfc3339_ms(ms));
        return;
    }
    let mut text = *b"1970-01-01T00:00:00.000Z";
    text[..10].copy_from_slice(&day_bytes(ms.div_euclid(86_400_000)));
    let in_day = ms.rem_euclid(86_400_000);
    let (h, m, s, milli) = (
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    );
    digits(h as u32, &mut text[11..13]);
    digits(m as u32, &mut text[14..16]);
    digits(s as u32, &mut text[17..19]);
    digits(milli as u32, &mut text[20..23]);
    out.push_str(std::str::from_utf8(&text).unwrap_or_default());
}

/// `n` in decimal, right-aligned and zero-padded in `at`.
fn digits(mut n: u32, at: &mut [u8]) {
    for c in at.iter_mut().rev() {
        *c = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// `YYYY-MM-DD` of a day counted from 1970-01-01, for days of years 0..=9999 (the civil
/// calendar from days, as in Howard Hinnant's `civil_from_days`).
fn day_bytes(days: i64) -> [u8; 10] {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let mut out = *b"1970-01-01";
    digits(y.clamp(0, 9999) as u32, &mut out[0..4]);
    digits(m as u32, &mut out[5..7]);
    digits(d as u32, &mut out[8..10]);
    out
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
    if (0..=MAX_TIME_MS).contains(&ms) {
        return day_bytes(ms.div_euclid(86_400_000));
    }
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

    #[test]
    fn fast_formats_agree_with_chrono() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut ms_values = vec![
            -1,
            0,
            1,
            86_399_999,
            951_782_400_000,
            MAX_TIME_MS,
            MAX_TIME_MS + 1,
        ];
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ms_values.push((x % (MAX_TIME_MS as u64 + 1)) as i64);
        }
        for ms in ms_values {
            let mut out = String::from("x");
            push_rfc3339_ms(ms, &mut out);
            assert_eq!(out, format!("x{}", rfc3339_ms(ms)), "{ms}");
            let chrono_day = to_datetime(ms).map(|t| t.format("%Y-%m-%d").to_string());
            if let Some(day) = chrono_day.filter(|_| (0..=MAX_TIME_MS).contains(&ms)) {
                assert_eq!(utc_day(ms), day, "{ms}");
            }
        }
    }
}
