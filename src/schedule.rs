//! Cron expressions, parsed one way everywhere: validation, due computation and the daemon.
//!
//! Expressions are UTC. Five-field expressions get a leading seconds field of `0`, and the
//! parser is croner configured exactly as tokio-cron-scheduler's `JobBuilder::with_schedule`
//! configures it (seconds required, day-of-month OR day-of-week as in Vixie cron), so the
//! daemon fires when `validate` says it will.

use std::fmt;

use chrono::{DateTime, Timelike, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds};

#[derive(Clone)]
pub struct Schedule {
    /// The normalized six-field (or nickname) expression, as handed to the daemon's scheduler.
    expr: String,
    cron: Cron,
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        let fields = trimmed.split_whitespace().count();
        let expr = if trimmed.starts_with('@') {
            trimmed.to_string()
        } else {
            match fields {
                5 => format!("0 {trimmed}"),
                6 | 7 => trimmed.split_whitespace().collect::<Vec<_>>().join(" "),
                n => {
                    return Err(format!(
                        "invalid cron expression {trimmed:?}: expected 5 fields (minute hour day-of-month month day-of-week) or 6 (with seconds first), found {n}"
                    ));
                }
            }
        };
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .build()
            .parse(&expr)
            .map_err(|e| format!("invalid cron expression {trimmed:?}: {e}"))?;
        Ok(Schedule { expr, cron })
    }

    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The first fire strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&whole_seconds(t), false)
            .ok()
    }

    /// The last fire at or before `t`.
    pub fn last_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_previous_occurrence(&whole_seconds(t), true)
            .ok()
    }

    pub fn next_fires(&self, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(n);
        let mut t = after;
        while out.len() < n {
            match self.next_after(t) {
                Some(next) => {
                    out.push(next);
                    t = next;
                }
                None => break,
            }
        }
        out
    }
}

/// Fires fall on whole seconds; croner would carry a fraction of `t` into its answer.
fn whole_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(0).unwrap_or(t)
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schedule({:?})", self.expr)
    }
}

impl<'de> serde::Deserialize<'de> for Schedule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Schedule::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().expect("test timestamp")
    }

    #[test]
    fn five_fields_get_seconds() {
        let s = Schedule::parse("0 0 * * MON").expect("valid");
        assert_eq!(s.expr(), "0 0 0 * * MON");
        assert_eq!(
            s.next_fires(t("2026-03-04T12:00:00Z"), 3),
            vec![
                t("2026-03-09T00:00:00Z"),
                t("2026-03-16T00:00:00Z"),
                t("2026-03-23T00:00:00Z")
            ]
        );
        assert_eq!(
            s.last_at_or_before(t("2026-03-09T00:00:00Z")),
            Some(t("2026-03-09T00:00:00Z"))
        );
        assert_eq!(
            s.last_at_or_before(t("2026-03-08T23:59:59Z")),
            Some(t("2026-03-02T00:00:00Z"))
        );
    }

    #[test]
    fn fractions_of_a_second_do_not_leak_into_fires() {
        let s = Schedule::parse("0 0 * * MON").expect("valid");
        let t = t("2026-03-09T00:00:00.001Z");
        assert_eq!(
            s.last_at_or_before(t),
            Some("2026-03-09T00:00:00Z".parse().expect("time"))
        );
        assert_eq!(
            s.next_after(t),
            Some("2026-03-16T00:00:00Z".parse().expect("time"))
        );
    }

    #[test]
    fn six_fields_and_nicknames() {
        assert!(Schedule::parse("30 0 * * * *").is_ok());
        let hourly = Schedule::parse("@hourly").expect("valid");
        assert_eq!(
            hourly.next_after(t("2026-03-04T12:10:00Z")),
            Some(t("2026-03-04T13:00:00Z"))
        );
    }

    #[test]
    fn day_of_month_or_day_of_week_as_vixie_cron() {
        // The 1st of the month OR a Monday.
        let s = Schedule::parse("0 0 1 * MON").expect("valid");
        assert_eq!(
            s.next_after(t("2026-03-02T12:00:00Z")),
            Some(t("2026-03-09T00:00:00Z"))
        );
        assert_eq!(
            s.next_after(t("2026-03-30T12:00:00Z")),
            Some(t("2026-04-01T00:00:00Z"))
        );
    }

    #[test]
    fn bad_expressions_say_why() {
        let e = Schedule::parse("0 0 * *").expect_err("4 fields");
        assert!(e.contains("expected 5 fields"), "{e}");
        let e = Schedule::parse("0 61 * * *").expect_err("minute 61");
        assert!(e.contains("invalid cron expression"), "{e}");
    }
}
