//! Drift (DESIGN §6 causes): what changed in a credential between two snapshots, and between
//! the same logical credential in two environments. Each change is reported once, when it
//! appears: a token that stays expired, a skew that stays large, a mismatch that stays are
//! not reported again every hour.

use std::collections::BTreeSet;

use crate::probes::Observation;
use crate::probes::aws::matches;

/// One drift event: a `changes` row with `source = scopetrail.drift`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    pub action: &'static str,
    pub details: String,
}

/// The thresholds of one credential's probe.
#[derive(Debug, Clone, Copy)]
pub struct Limits<'a> {
    /// `None`: no warning before expiry (a token minted fresh at every probe).
    pub expiry_horizon_ms: Option<i64>,
    pub max_skew_ms: i64,
    pub expected_identity: Option<&'a str>,
}

/// Privileges gained and lost against the previous successful snapshot (empty when either
/// side is unknown).
pub fn privilege_changes(
    last_ok: Option<&Observation>,
    now: &Observation,
) -> (Vec<String>, Vec<String>) {
    match (
        last_ok.and_then(|l| l.privileges.as_ref()),
        now.privileges.as_ref(),
    ) {
        (Some(before), Some(after)) if now.ok() => (
            after.difference(before).cloned().collect(),
            before.difference(after).cloned().collect(),
        ),
        _ => (Vec::new(), Vec::new()),
    }
}

/// What `now` changes against `last` (the previous snapshot, whatever its status) and
/// `last_ok` (the previous successful one).
pub fn drift(
    last: Option<&Observation>,
    last_ok: Option<&Observation>,
    now: &Observation,
    limits: &Limits<'_>,
) -> Vec<Drift> {
    let mut out = Vec::new();
    let mut push = |action: &'static str, details: String| out.push(Drift { action, details });
    let same_status = last.is_some_and(|l| l.status == now.status);
    if now.ok() {
        if let Some(before) = last_ok {
            let (added, removed) = privilege_changes(Some(before), now);
            if !removed.is_empty() {
                push(
                    "privileges_removed",
                    format!("removed={}", removed.join(",")),
                );
            }
            if !added.is_empty() {
                push("privileges_added", format!("added={}", added.join(",")));
            }
            if before.privileges.is_some() && now.privileges.is_none() {
                push("privileges_unknown", "the probe no longer sees the privileges (a scope header or `scope` that was there is gone)".into());
            }
            let set = |v: &[String]| v.iter().cloned().collect::<BTreeSet<_>>();
            if set(&before.audience) != set(&now.audience)
                && !(before.audience.is_empty() && now.audience.is_empty())
            {
                push(
                    "audience_changed",
                    format!(
                        "from={} to={}",
                        before.audience.join(","),
                        now.audience.join(",")
                    ),
                );
            }
            if let (Some(a), Some(b)) = (&before.issuer, &now.issuer)
                && a != b
            {
                push("issuer_changed", format!("from={a} to={b}"));
            }
            let (a, b) = (before.identity.as_deref(), now.identity.as_deref());
            if let (Some(a), Some(b)) = (a.map(without_session), b.map(without_session))
                && a != b
            {
                push("identity_changed", format!("from={a} to={b}"));
            }
        }
        if last.is_some_and(|l| !l.ok()) {
            push(
                "probe_recovered",
                format!("ok again after {}", last.map_or("", |l| l.status.as_str())),
            );
        }
        let unexpected = |o: &Observation| {
            o.ok()
                && limits
                    .expected_identity
                    .zip(o.identity.as_deref())
                    .is_some_and(|(e, i)| !matches(e, i))
        };
        if unexpected(now) && !last.is_some_and(unexpected) {
            push(
                "unexpected_identity",
                format!(
                    "identity={} expected={}",
                    now.identity.as_deref().unwrap_or(""),
                    limits.expected_identity.unwrap_or("")
                ),
            );
        }
        // A token whose whole life is shorter than the horizon (an hourly token the
        // integration refreshes) is always "expiring": only long-lived ones are warned of.
        let expiring = |o: &Observation| {
            let Some((exp, horizon)) = o.expires_at_ms.zip(limits.expiry_horizon_ms) else {
                return false;
            };
            let short_lived = o.issued_at_ms.is_some_and(|iat| exp - iat <= horizon);
            !short_lived && exp - o.at_ms <= horizon
        };
        if expiring(now)
            && !last.is_some_and(|l| expiring(l) && l.expires_at_ms == now.expires_at_ms)
        {
            let exp = now.expires_at_ms.unwrap_or_default();
            push(
                "token_expiring",
                format!(
                    "expires_at={} in={}",
                    crate::model::rfc3339_ms(exp),
                    human(exp - now.at_ms)
                ),
            );
        }
    } else if now.status == "expired" {
        if !same_status {
            push(
                "token_expired",
                now.message.clone().unwrap_or_else(|| "expired".into()),
            );
        }
    } else if !last.is_some_and(|l| !l.ok() && (same_status || transient(l) && transient(now))) {
        // New, or a different refusal; not a flap between two kinds of no answer.
        let after = match last_ok {
            Some(_) if last.is_some_and(Observation::ok) => " after a successful probe",
            _ => "",
        };
        push(
            "probe_failing",
            format!(
                "status={}{after}: {}",
                now.status,
                now.message.as_deref().unwrap_or("")
            ),
        );
    }
    let skewed = |o: &Observation| o.skew_ms.is_some_and(|s| s.abs() > limits.max_skew_ms);
    if skewed(now) && !last.is_some_and(skewed) {
        push(
            "clock_skew",
            format!("server_skew_ms={}", now.skew_ms.unwrap_or_default()),
        );
    }
    // A token issued in this host's future: the issuer's clock is ahead, and checks of
    // `nbf` / `iat` here fail (DESIGN §6 clock_skew).
    let future = |o: &Observation| {
        [("nbf", o.not_before_ms), ("iat", o.issued_at_ms)]
            .into_iter()
            .find(|(_, t)| t.is_some_and(|t| t > o.at_ms + limits.max_skew_ms))
    };
    if let Some((claim, Some(t))) = future(now)
        && last.is_none_or(|l| future(l).is_none())
    {
        push(
            "clock_skew",
            format!(
                "{claim}={} is {} ahead of this host",
                crate::model::rfc3339_ms(t),
                human(t - now.at_ms)
            ),
        );
    }
    out
}

/// No answer, or a server error: says nothing about the credential.
fn transient(o: &Observation) -> bool {
    o.status == "unreachable" || o.status.starts_with("http_5")
}

/// An assumed role's ARN without its session name, which SDKs make up per session
/// (`assumed-role/erp-writer/botocore-session-1700000000` is still `erp-writer`).
fn without_session(arn: &str) -> &str {
    match arn.find(":assumed-role/") {
        Some(i) => {
            let role = i + ":assumed-role/".len();
            arn[role..]
                .find('/')
                .map_or(arn, |slash| &arn[..role + slash])
        }
        None => arn,
    }
}

/// Privileges one environment's credential has and another's lacks, as one line per side
/// (empty when they agree or either is unknown).
pub fn environment_mismatch(a: (&str, &Observation), b: (&str, &Observation)) -> Option<String> {
    let (pa, pb) = (a.1.privileges.as_ref()?, b.1.privileges.as_ref()?);
    if !(a.1.ok() && b.1.ok()) || pa == pb {
        return None;
    }
    let only = |x: &BTreeSet<String>, y: &BTreeSet<String>| {
        x.difference(y).cloned().collect::<Vec<_>>().join(",")
    };
    let mut parts = Vec::new();
    let (only_a, only_b) = (only(pa, pb), only(pb, pa));
    if !only_a.is_empty() {
        parts.push(format!("only_in_{}={only_a}", a.0));
    }
    if !only_b.is_empty() {
        parts.push(format!("only_in_{}={only_b}", b.0));
    }
    Some(parts.join(" "))
}

/// `3d 4h`, `45m`: for people reading a table at 3 a.m.
pub fn human(ms: i64) -> String {
    let (sign, ms) = if ms < 0 { ("-", -ms) } else { ("", ms) };
    let mins = ms / 60_000;
    let (d, h, m) = (mins / 1440, mins / 60 % 24, mins % 60);
    let text = match (d, h, m) {
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    };
    format!("{sign}{text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;
    const LIMITS: Limits<'static> = Limits {
        expiry_horizon_ms: Some(7 * 24 * HOUR),
        max_skew_ms: 120_000,
        expected_identity: None,
    };

    fn obs(at: i64, privileges: Option<&[&str]>) -> Observation {
        Observation {
            probe: "jwt".into(),
            status: "ok".into(),
            at_ms: at,
            audience: vec!["api://erp".into()],
            privileges: privileges.map(|p| p.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        }
    }

    fn actions(d: &[Drift]) -> Vec<&'static str> {
        d.iter().map(|d| d.action).collect()
    }

    #[test]
    fn a_sequence_of_snapshots() {
        let s1 = obs(0, Some(&["scp:read", "scp:write"]));
        assert!(drift(None, None, &s1, &LIMITS).is_empty());
        // Same again: nothing.
        let s2 = obs(HOUR, Some(&["scp:read", "scp:write"]));
        assert!(drift(Some(&s1), Some(&s1), &s2, &LIMITS).is_empty());
        // A scope dropped.
        let s3 = obs(2 * HOUR, Some(&["scp:read"]));
        let d = drift(Some(&s2), Some(&s2), &s3, &LIMITS);
        assert_eq!(
            d,
            vec![Drift {
                action: "privileges_removed",
                details: "removed=scp:write".into()
            }]
        );
        // The secret rotated: the probe fails, once.
        let mut s4 = obs(3 * HOUR, None);
        s4.fail("invalid_client", "Invalid client secret");
        let d = drift(Some(&s3), Some(&s3), &s4, &LIMITS);
        assert_eq!(actions(&d), ["probe_failing"]);
        assert!(
            d[0].details
                .starts_with("status=invalid_client after a successful probe")
        );
        let mut s5 = s4.clone();
        s5.at_ms = 4 * HOUR;
        assert!(drift(Some(&s4), Some(&s3), &s5, &LIMITS).is_empty());
        // Fixed, with the scope back: compared with the last good one.
        let s6 = obs(5 * HOUR, Some(&["scp:read", "scp:write"]));
        assert_eq!(
            actions(&drift(Some(&s5), Some(&s3), &s6, &LIMITS)),
            ["privileges_added", "probe_recovered"]
        );
    }

    #[test]
    fn unknown_is_not_empty() {
        let known = obs(0, Some(&["scp:repo"]));
        let unknown = obs(HOUR, None);
        assert_eq!(privilege_changes(Some(&known), &unknown), (vec![], vec![]));
        assert_eq!(
            actions(&drift(Some(&known), Some(&known), &unknown, &LIMITS)),
            ["privileges_unknown"]
        );
        let empty = obs(HOUR, Some(&[]));
        assert_eq!(
            privilege_changes(Some(&known), &empty),
            (vec![], vec!["scp:repo".to_string()])
        );
    }

    #[test]
    fn expiry_horizon_and_expired_once() {
        let mut a = obs(0, Some(&[]));
        a.expires_at_ms = Some(10 * 24 * HOUR);
        assert!(drift(None, None, &a, &LIMITS).is_empty());
        let mut b = a.clone();
        b.at_ms = 4 * 24 * HOUR;
        let d = drift(Some(&a), Some(&a), &b, &LIMITS);
        assert_eq!(actions(&d), ["token_expiring"]);
        assert!(d[0].details.ends_with("in=6d"), "{d:?}");
        let mut c = b.clone();
        c.at_ms += HOUR;
        assert!(drift(Some(&b), Some(&b), &c, &LIMITS).is_empty());
        let mut e = c.clone();
        e.at_ms = 11 * 24 * HOUR;
        e.fail("expired", "the token expired");
        assert_eq!(
            actions(&drift(Some(&c), Some(&c), &e, &LIMITS)),
            ["token_expired"]
        );
        assert!(drift(Some(&e), Some(&c), &e, &LIMITS).is_empty());
    }

    #[test]
    fn skew_and_identity() {
        let mut a = obs(0, None);
        a.skew_ms = Some(-300_000);
        a.identity = Some("arn:aws:sts::1:assumed-role/ec2-instance/i-0abc".into());
        let limits = Limits {
            expected_identity: Some("arn:aws:iam::1:user/erp-sync"),
            ..LIMITS
        };
        assert_eq!(
            actions(&drift(None, None, &a, &limits)),
            ["unexpected_identity", "clock_skew"]
        );
        assert!(drift(Some(&a), Some(&a), &a, &limits).is_empty());
        let mut b = a.clone();
        b.identity = Some("arn:aws:iam::1:user/erp-sync".into());
        b.skew_ms = Some(1000);
        assert_eq!(
            actions(&drift(Some(&a), Some(&a), &b, &limits)),
            ["identity_changed"]
        );
    }

    #[test]
    fn short_lived_tokens_are_not_expiring_and_sessions_are_not_identities() {
        let mut hourly = obs(0, Some(&[]));
        hourly.issued_at_ms = Some(0);
        hourly.expires_at_ms = Some(HOUR);
        assert!(drift(None, None, &hourly, &LIMITS).is_empty());
        let mut a = obs(0, None);
        a.identity = Some("arn:aws:sts::1:assumed-role/erp-writer/botocore-session-1".into());
        let mut b = a.clone();
        b.identity = Some("arn:aws:sts::1:assumed-role/erp-writer/botocore-session-2".into());
        assert!(drift(Some(&a), Some(&a), &b, &LIMITS).is_empty());
        b.identity = Some("arn:aws:sts::1:assumed-role/ec2-role/i-0abc".into());
        assert_eq!(
            actions(&drift(Some(&a), Some(&a), &b, &LIMITS)),
            ["identity_changed"]
        );
    }

    #[test]
    fn failures_flapping_between_no_answers_are_said_once() {
        let good = obs(0, Some(&[]));
        let mut down = obs(HOUR, None);
        down.fail("unreachable", "no answer");
        let mut five = obs(2 * HOUR, None);
        five.fail("http_503", "503");
        assert_eq!(
            actions(&drift(Some(&good), Some(&good), &down, &LIMITS)),
            ["probe_failing"]
        );
        assert!(drift(Some(&down), Some(&good), &five, &LIMITS).is_empty());
        let mut refused = obs(3 * HOUR, None);
        refused.fail("invalid_client", "rotated");
        assert_eq!(
            actions(&drift(Some(&five), Some(&good), &refused, &LIMITS)),
            ["probe_failing"]
        );
    }

    #[test]
    fn a_token_from_the_future() {
        let mut t = obs(0, Some(&[]));
        t.not_before_ms = Some(10 * 60_000);
        let d = drift(None, None, &t, &LIMITS);
        assert_eq!(actions(&d), ["clock_skew"]);
        assert!(d[0].details.starts_with("nbf="), "{d:?}");
        assert!(drift(Some(&t), Some(&t), &t, &LIMITS).is_empty());
    }

    #[test]
    fn environments_compared() {
        let prod = obs(0, Some(&["scp:gl:journal:read"]));
        let test = obs(0, Some(&["scp:gl:journal:read", "scp:gl:journal:write"]));
        assert_eq!(
            environment_mismatch(("prod", &prod), ("test", &test)).as_deref(),
            Some("only_in_test=scp:gl:journal:write")
        );
        assert_eq!(environment_mismatch(("prod", &prod), ("test", &prod)), None);
        assert_eq!(
            environment_mismatch(("prod", &prod), ("test", &obs(0, None))),
            None
        );
    }

    #[test]
    fn human_durations() {
        assert_eq!(human(45 * 60_000), "45m");
        assert_eq!(human(3 * HOUR + 5 * 60_000), "3h 5m");
        assert_eq!(human(50 * HOUR), "2d 2h");
        assert_eq!(human(-2 * HOUR), "-2h");
    }
}
