//! Line formats: JSON lines with a mapping of dotted paths, the nginx/Apache combined format,
//! or a regular expression with named captures. Each fills the same slots, one per field.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

use super::json::{Paths, Scalar};
use super::shape::Shapes;

/// What a line can tell; a regex's named captures and the `fields` table use these names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Time,
    Status,
    Method,
    Url,
    Host,
    Path,
    ClientId,
    CredentialHint,
    RequestId,
    WwwAuthenticate,
    RetryAfter,
    RateLimitLimit,
    RateLimitRemaining,
    ErrorCode,
    ErrorMessage,
    UserAgent,
    User,
}

pub const FIELDS: [(Field, &str); 17] = [
    (Field::Time, "time"),
    (Field::Status, "status"),
    (Field::Method, "method"),
    (Field::Url, "url"),
    (Field::Host, "host"),
    (Field::Path, "path"),
    (Field::ClientId, "client_id"),
    (Field::CredentialHint, "credential_hint"),
    (Field::RequestId, "request_id"),
    (Field::WwwAuthenticate, "www_authenticate"),
    (Field::RetryAfter, "retry_after"),
    (Field::RateLimitLimit, "ratelimit_limit"),
    (Field::RateLimitRemaining, "ratelimit_remaining"),
    (Field::ErrorCode, "error_code"),
    (Field::ErrorMessage, "error_message"),
    (Field::UserAgent, "user_agent"),
    (Field::User, "user"),
];

pub fn field_named(name: &str) -> Option<Field> {
    FIELDS.iter().find(|(_, n)| *n == name).map(|(f, _)| *f)
}

/// One line's values, by field.
pub struct Slots<'a>(pub [Option<Scalar<'a>>; FIELDS.len()]);

impl<'a> Slots<'a> {
    pub fn new() -> Self {
        Slots(std::array::from_fn(|_| None))
    }
    pub fn get(&self, f: Field) -> Option<&Scalar<'a>> {
        self.0[f as usize].as_ref()
    }
    pub fn str(&self, f: Field) -> Option<&str> {
        self.get(f).and_then(Scalar::as_str)
    }
    pub fn int(&self, f: Field) -> Option<i64> {
        self.get(f).and_then(Scalar::as_int)
    }
    pub fn text(&self, f: Field) -> Option<String> {
        self.get(f).and_then(Scalar::to_text)
    }
    fn put(&mut self, f: Field, v: &'a str) {
        self.0[f as usize] = Some(Scalar::Str(Cow::Borrowed(v)));
    }
}

pub enum LineFormat {
    Json {
        /// The fields every line needs (counting and attribution).
        counted: Paths,
        /// Every mapped field, read again for the lines that become rows.
        all: Paths,
    },
    Combined,
    Regex {
        regex: regex::Regex,
        /// Capture group index -> field.
        groups: Vec<(usize, Field)>,
    },
}

impl LineFormat {
    /// Reads a line (without its line break) into `out`; `lossy` holds a repaired copy when
    /// the line is not valid UTF-8 where it matters.
    ///
    /// `shapes` are those of the lines read so far (JSON reads most lines by them).
    pub fn extract<'a>(
        &self,
        line: &'a [u8],
        lossy: &'a mut Option<String>,
        out: &mut Slots<'a>,
        shapes: &mut Shapes,
    ) -> Result<(), String> {
        self.extract_with(line, lossy, out, Some(shapes))
    }

    /// JSON reads only what counting needs at first, and a line that becomes a row again.
    pub fn reads_twice(&self) -> bool {
        matches!(self, LineFormat::Json { .. })
    }

    /// Every field of a line, for the lines that become rows.
    pub fn extract_all<'a>(
        &self,
        line: &'a [u8],
        lossy: &'a mut Option<String>,
        out: &mut Slots<'a>,
    ) -> Result<(), String> {
        self.extract_with(line, lossy, out, None)
    }

    fn extract_with<'a>(
        &self,
        line: &'a [u8],
        lossy: &'a mut Option<String>,
        out: &mut Slots<'a>,
        shapes: Option<&mut Shapes>,
    ) -> Result<(), String> {
        if let LineFormat::Json { counted, all } = self {
            // Every field is read only for the few lines that become rows: by the scanner.
            let (paths, read) = match shapes {
                Some(shapes) => (counted, shapes.extract(counted, line, &mut out.0)),
                None => (all, super::scan::extract(all, line, &mut out.0)),
            };
            return match read {
                Ok(()) => Ok(()),
                // A kept value is not UTF-8: read a repaired copy of the line instead.
                Err(super::scan::ScanError::Utf8) => {
                    *out = Slots::new();
                    let text: &'a str = lossy.insert(String::from_utf8_lossy(line).into_owned());
                    super::scan::extract(paths, text.as_bytes(), &mut out.0)
                        .map_err(|e| e.to_string())
                }
                Err(e) => Err(e.to_string()),
            };
        }
        let text: &'a str = match std::str::from_utf8(line) {
            Ok(t) => t,
            Err(_) => lossy.insert(String::from_utf8_lossy(line).into_owned()),
        };
        match self {
            LineFormat::Json { .. } => Ok(()),
            LineFormat::Combined => combined(text, out),
            LineFormat::Regex { regex, groups } => {
                let line = text;
                let caps = regex
                    .captures(line)
                    .ok_or("does not match the configured pattern")?;
                for (i, field) in groups {
                    if let Some(m) = caps.get(*i) {
                        out.put(*field, m.as_str());
                    }
                }
                Ok(())
            }
        }
    }
}

/// `127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 200 2326 "ref" "agent"`
fn combined<'a>(line: &'a str, out: &mut Slots<'a>) -> Result<(), String> {
    let mut rest = line;
    let _remote_addr = token(&mut rest).ok_or("no remote address")?;
    let _ident = token(&mut rest).ok_or("no identity")?;
    let user = token(&mut rest).ok_or("no user")?;
    if user != "-" {
        out.put(Field::User, user);
    }
    rest = rest.trim_start();
    let time = rest
        .strip_prefix('[')
        .and_then(|r| r.split_once(']'))
        .ok_or("no [time]")?;
    out.put(Field::Time, time.0);
    rest = time.1;
    let request = quoted(&mut rest).ok_or("no \"request\"")?;
    let mut parts = request.splitn(3, ' ');
    if let (Some(method), Some(target)) = (parts.next(), parts.next()) {
        out.put(Field::Method, method);
        out.put(Field::Url, target);
    }
    let status = token(&mut rest).ok_or("no status")?;
    out.put(Field::Status, status);
    let _bytes = token(&mut rest);
    let _referer = quoted(&mut rest);
    if let Some(agent) = quoted(&mut rest)
        && agent != "-"
    {
        out.put(Field::UserAgent, agent);
    }
    Ok(())
}

fn token<'a>(rest: &mut &'a str) -> Option<&'a str> {
    let s = rest.trim_start();
    if s.is_empty() {
        return None;
    }
    let end = s.find(' ').unwrap_or(s.len());
    *rest = &s[end..];
    Some(&s[..end])
}

/// A double-quoted field; nginx escapes quotes inside as `\x22`, Apache as `\"`.
fn quoted<'a>(rest: &mut &'a str) -> Option<&'a str> {
    let s = rest.trim_start().strip_prefix('"')?;
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => {
                *rest = &s[i + 1..];
                return Some(&s[..i]);
            }
            _ => i += 1,
        }
    }
    None
}

/// Reads times, remembering the last hour (or custom-format text) seen: consecutive lines of a log mostly share it.
pub struct Times {
    /// A strftime format (`%d/%b/%Y:%H:%M:%S %z`); `None`: RFC 3339 or epoch numbers.
    format: Option<String>,
    last: Last,
    /// The last RFC 3339 hour (`2026-03-05T09`) and its time: compared as bytes in place.
    hour: Option<([u8; 13], i64)>,
}

/// The last text parsed and its time.
#[derive(Default)]
struct Last {
    key: String,
    ms: i64,
}

impl Last {
    fn get(&mut self, key: &str, parse: impl FnOnce(&str) -> Option<i64>) -> Option<i64> {
        if key != self.key {
            self.ms = parse(key)?;
            self.key.clear();
            self.key.push_str(key);
        }
        Some(self.ms)
    }
}

pub const COMBINED_TIME: &str = "%d/%b/%Y:%H:%M:%S %z";

impl Times {
    pub fn new(format: Option<String>) -> Self {
        Times {
            format,
            last: Last::default(),
            hour: None,
        }
    }

    /// Epoch milliseconds.
    pub fn parse(&mut self, value: &Scalar<'_>) -> Option<i64> {
        match value {
            Scalar::Int(n) => Some(epoch(*n as f64)),
            Scalar::Float(f) => Some(epoch(*f)),
            Scalar::Str(s) => {
                let s = trim(s);
                if let Some(format) = &self.format {
                    return self.last.get(s, |t| parse_with(t, format));
                }
                // The common shape first: it has dashes, so it is never taken for a number.
                if let Some(t) = self.common_rfc3339(s) {
                    return Some(t);
                }
                if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                    s.parse::<f64>().ok().map(epoch)
                } else {
                    // Anything else RFC 3339 allows, by chrono.
                    DateTime::parse_from_rfc3339(s)
                        .ok()
                        .map(|t| t.timestamp_millis())
                }
            }
            _ => None,
        }
    }

    /// `2026-03-05T09:02:50.779Z` or with `+hh:mm`: the hour is remembered (a log's lines
    /// mostly share it), minutes, seconds, fraction and zone are read every time.
    fn common_rfc3339(&mut self, s: &str) -> Option<i64> {
        let (head, rest) = s.as_bytes().split_first_chunk::<19>()?;
        let shaped = !rest.is_empty()
            && head[4] == b'-'
            && head[7] == b'-'
            && matches!(head[10], b'T' | b't' | b' ')
            && head[13] == b':'
            && head[16] == b':';
        if !shaped {
            return None;
        }
        let (fraction_ms, zone) = match rest.split_first() {
            Some((b'.', r)) => {
                let digits = r.iter().take_while(|c| c.is_ascii_digit()).count();
                if digits == 0 {
                    (0, rest)
                } else {
                    let ms = (0..3).fold(0, |n, i| {
                        n * 10 + r[..digits].get(i).map_or(0, |d| i64::from(d - b'0'))
                    });
                    (ms, &r[digits..])
                }
            }
            _ => (0, rest),
        };
        let offset_ms = match zone {
            [b'Z' | b'z'] => 0,
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                let minutes = two_digits(*h1, *h2)? * 60 + two_digits(*m1, *m2)?;
                if *sign == b'+' {
                    minutes * 60_000
                } else {
                    -minutes * 60_000
                }
            }
            _ => return None,
        };
        let (minute, second) = (
            two_digits(head[14], head[15])?,
            two_digits(head[17], head[18])?,
        );
        if minute > 59 || second > 59 {
            return None;
        }
        let hour = match self.hour {
            Some((text, ms)) if head[..13] == text => ms,
            _ => {
                // `head[13]` is a `:`: a char boundary.
                let h = s.get(..13)?;
                let num = |r: std::ops::Range<usize>| h.get(r)?.parse::<u32>().ok();
                let date =
                    chrono::NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
                let ms = date
                    .and_hms_opt(num(11..13)?, 0, 0)?
                    .and_utc()
                    .timestamp_millis();
                let mut text = [0; 13];
                text.copy_from_slice(&head[..13]);
                self.hour = Some((text, ms));
                ms
            }
        };
        Some(hour + minute * 60_000 + second * 1000 + fraction_ms - offset_ms)
    }
}

/// `str::trim`, without a look at the characters when the ends are visible ASCII (Unicode
/// whitespace is never that).
fn trim(s: &str) -> &str {
    let visible = |c: Option<&u8>| c.is_some_and(|c| (b'!'..=b'~').contains(c));
    if visible(s.as_bytes().first()) && visible(s.as_bytes().last()) {
        s
    } else {
        s.trim()
    }
}

fn two_digits(a: u8, b: u8) -> Option<i64> {
    (a.is_ascii_digit() && b.is_ascii_digit()).then(|| i64::from((a - b'0') * 10 + (b - b'0')))
}

/// Epoch seconds or milliseconds: numbers past 1e11 are milliseconds (1e11 seconds is the
/// year 5138).
fn epoch(x: f64) -> i64 {
    if x > 1e11 {
        x as i64
    } else {
        (x * 1000.0) as i64
    }
}

fn parse_with(s: &str, format: &str) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_str(s, format) {
        return Some(t.timestamp_millis());
    }
    // A format without a zone is UTC.
    NaiveDateTime::parse_from_str(s, format)
        .ok()
        .map(|t| Utc.from_utc_datetime(&t).timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_every_form() {
        let ms = 1_772_701_320_000; // 2026-03-05T09:02:00Z
        let mut t = Times::new(None);
        let s = |v: &'static str| Scalar::Str(Cow::Borrowed(v));
        assert_eq!(t.parse(&s("2026-03-05T09:02:00Z")), Some(ms));
        assert_eq!(t.parse(&s("2026-03-05T09:02:00.5Z")), Some(ms + 500));
        assert_eq!(t.parse(&s("2026-03-05T09:02:00.123456Z")), Some(ms + 123));
        assert_eq!(t.parse(&s("2026-03-05T10:02:00.250+01:00")), Some(ms + 250));
        assert_eq!(t.parse(&Scalar::Int(1_772_701_320)), Some(ms));
        assert_eq!(t.parse(&Scalar::Int(ms)), Some(ms));
        assert_eq!(t.parse(&s("1772701320.5")), Some(ms + 500));
        assert_eq!(t.parse(&s("yesterday")), None);
        assert_eq!(t.parse(&s(" 2026-03-05T09:02:00Z\t")), Some(ms), "trimmed");
        assert_eq!(
            t.parse(&s("2026-03-05T09:02:00Z\u{a0}")),
            Some(ms),
            "Unicode spaces too"
        );
        assert_eq!(t.parse(&s("2026-03-05T10:02:00Z")), Some(ms + 3_600_000));
        assert_eq!(
            t.parse(&s("2026-03-05T09:02:00Z")),
            Some(ms),
            "another hour again"
        );
        assert_eq!(t.parse(&s("")), None);
        let mut clf = Times::new(Some(COMBINED_TIME.into()));
        assert_eq!(clf.parse(&s("05/Mar/2026:10:02:00 +0100")), Some(ms));
        assert_eq!(
            clf.parse(&s("05/Mar/2026:10:02:00 +0100")),
            Some(ms),
            "from the cache"
        );
    }

    #[test]
    fn the_fast_path_agrees_with_chrono() {
        let mut t = Times::new(None);
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..5000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let ms = (x % 4_102_444_800_000) as i64; // before 2100
            let when = Utc.timestamp_millis_opt(ms).single().expect("in range");
            let zone = ["Z", "+05:30", "-08:00", "z"][(x % 4) as usize];
            let fraction = [".123", "", ".1", ".123456789"][(x >> 8) as usize % 4];
            let text = match zone {
                "Z" | "z" => when
                    .format(&format!("%Y-%m-%dT%H:%M:%S{fraction}{zone}"))
                    .to_string(),
                _ => {
                    let offset: chrono::FixedOffset = zone.parse().expect("offset");
                    when.with_timezone(&offset)
                        .format(&format!("%Y-%m-%dT%H:%M:%S{fraction}%:z"))
                        .to_string()
                }
            };
            let want = DateTime::parse_from_rfc3339(&text)
                .map(|t| t.timestamp_millis())
                .ok();
            assert_eq!(
                t.parse(&Scalar::Str(Cow::Owned(text.clone()))),
                want,
                "{text}"
            );
        }
        // Leap seconds and odd shapes go to chrono.
        for text in [
            "2016-12-31T23:59:60Z",
            "2026-03-05T09:02:00.Z",
            "2026-13-05T09:02:00Z",
        ] {
            let want = DateTime::parse_from_rfc3339(text)
                .map(|t| t.timestamp_millis())
                .ok();
            assert_eq!(t.parse(&Scalar::Str(Cow::Borrowed(text))), want, "{text}");
        }
    }

    #[test]
    fn combined_lines() {
        let line = r#"10.0.0.7 - frank [05/Mar/2026:10:02:00 +0100] "POST https://api.example.com/v1/orders?x=1 HTTP/1.1" 403 12 "-" "erp-sync/4.2 \"quoted\"""#;
        let mut lossy = None;
        let mut out = Slots::new();
        LineFormat::Combined
            .extract(
                line.as_bytes(),
                &mut lossy,
                &mut out,
                &mut Shapes::default(),
            )
            .expect("parses");
        assert_eq!(out.str(Field::Method), Some("POST"));
        assert_eq!(
            out.str(Field::Url),
            Some("https://api.example.com/v1/orders?x=1")
        );
        assert_eq!(out.int(Field::Status), Some(403));
        assert_eq!(out.str(Field::User), Some("frank"));
        assert_eq!(
            out.str(Field::UserAgent),
            Some(r#"erp-sync/4.2 \"quoted\""#)
        );
        assert!(
            LineFormat::Combined
                .extract(
                    b"garbage",
                    &mut None,
                    &mut Slots::new(),
                    &mut Shapes::default()
                )
                .is_err()
        );
    }

    #[test]
    fn regex_lines() {
        let regex = regex::Regex::new(r#"^\[(?P<time>[^\]]+)\] "(?P<method>\S+) (?P<path>\S+) \S+" (?P<status>\d+) host=(?P<host>\S+)"#)
            .expect("regex");
        let groups = regex
            .capture_names()
            .enumerate()
            .filter_map(|(i, n)| Some((i, field_named(n?)?)))
            .collect();
        let format = LineFormat::Regex { regex, groups };
        let mut lossy = None;
        let mut out = Slots::new();
        format
            .extract(
                br#"[2026-03-05T09:02:00Z] "GET /v1/x HTTP/1.1" 429 host=api.example.com"#,
                &mut lossy,
                &mut out,
                &mut Shapes::default(),
            )
            .expect("matches");
        assert_eq!(out.int(Field::Status), Some(429));
        assert_eq!(out.str(Field::Host), Some("api.example.com"));
        assert!(
            format
                .extract(
                    b"nope",
                    &mut None,
                    &mut Slots::new(),
                    &mut Shapes::default()
                )
                .is_err()
        );
    }
}
