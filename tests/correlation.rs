//! The correlation engine's scenario suite (DESIGN §6, issue 9), written before the engine.
//!
//! Each scenario is a small world: the failures (denials, webhook failures, 429 bursts) and
//! the evidence around them (snapshots, changes, incidents, request counts), with the findings
//! it must give: type, severity, cause, the exact failures of each group, confidence where the
//! rules fix it, and the words the explanation and the remediation must hold. Every world is
//! also fed reversed and shuffled: the findings may not depend on the order of the records.
//! Then precision and recall per finding type, over every scenario and a seeded generated
//! world of 200 groups (`cargo test --test correlation -- --nocapture` prints the table).

mod correlation_support;

use std::collections::BTreeMap;

use correlation_support::*;
use scopetrail::analysis::correlate::{EventRef, Finding, FindingType, Severity};
use scopetrail::model::{Change, Denial, RateLimitBurst, Record, TokenSnapshot, WebhookFailure};

use FindingType::*;

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check(stringify!($name), &worlds::$name());
            }
        )*
        /// Every scenario, by name, for precision and recall.
        const SCENARIOS: &[(&str, fn() -> World)] = &[$((stringify!($name), worlds::$name as fn() -> World)),*];
    };
}

scenarios! {
    seed_prod_token_lacks_journal_write_that_test_has_after_a_permission_reset,
    seed_prod_token_lost_journal_write_in_a_permission_reset,
    seed_inventory_post_needs_inventory_read_while_gets_succeed,
    insufficient_scope_without_any_snapshot_is_medium_and_has_no_cause,
    removal_of_another_scope_is_not_the_cause,
    seed_429_and_503_cycling_in_a_tight_loop_among_scattered_429s,
    a_revised_burst_is_one_failure_read_at_its_last_revision,
    seed_webhook_failures_minutes_after_a_vendor_incident,
    seed_burst_starting_with_an_api_incident_is_the_incident,
    incident_window_edges_and_medium_confidence,
    an_incident_resolved_before_the_failures_is_read_from_its_last_update,
    incidents_on_other_components_or_other_vendors_are_not_claimed,
    token_expired_by_snapshot,
    token_expired_by_a_probe_saying_expired,
    a_token_renewed_before_the_failures_is_not_expired,
    token_expired_from_the_error_message_without_a_snapshot,
    seed_003_invalid_token_header_with_insufficient_scope_body_is_not_expiry,
    invalid_token_alone_is_unexplained,
    credential_revoked_by_a_vendor_change,
    credential_revoked_by_a_probe_newly_failing,
    permission_change_naming_the_app_is_high,
    permission_change_naming_nothing_known_is_low,
    changes_to_other_apps_other_tenants_or_too_old_are_never_claimed,
    audience_mismatch,
    identity_mismatch,
    clock_skew_from_the_server_date,
    clock_skew_from_a_token_not_yet_valid,
    webhook_endpoint_changed_on_the_vendor_side,
    webhook_endpoints_failing_without_a_cause,
    drift_before_any_failure_is_a_warning,
    two_causes_in_one_window,
    groups_split_on_gap_operation_and_class,
    a_quiet_world_has_no_findings,
}

/// The credentials and endpoints the stories share (the demo's, mostly).
mod cast {
    use super::*;

    pub const JOURNAL_READ: &str = "scp:gl:journal:read";
    pub const JOURNAL_WRITE: &str = "scp:gl:journal:write";
    pub const LEDGER_READ: &str = "scp:gl:ledger:read";

    /// Oracle Fusion's `erp-sync`, posting journal batches; prod and test are two pods.
    pub fn erp(env: &str) -> Cred {
        let (tenant, app, idcs, host) = if env == "prod" {
            (
                "acme-fusion",
                "erp-sync",
                "https://idcs-acme.identity.oraclecloud.com",
                "fa-acme.fa.ocs.oraclecloud.com",
            )
        } else {
            (
                "acme-fusion-test",
                "erp-sync-test",
                "https://idcs-acme-test.identity.oraclecloud.com",
                "fa-acme-test.fa.ocs.oraclecloud.com",
            )
        };
        Cred::new("oracle_fusion", tenant, env, "erp-sync", app)
            .issuer(idcs)
            .service(host)
            .op("POST", "/fscmRestApi/resources/11.13.18.05/journalBatches")
    }

    /// Another Fusion credential of the same pod, reading workers.
    pub fn hcm() -> Cred {
        Cred::new(
            "oracle_fusion",
            "acme-fusion",
            "prod",
            "hcm-sync",
            "hcm-sync",
        )
        .issuer("https://idcs-acme.identity.oraclecloud.com")
        .service("fa-acme.fa.ocs.oraclecloud.com")
        .op("GET", "/hcmRestApi/resources/11.13.18.05/workers")
    }

    /// An Okta API client.
    pub fn okta(name: &str, app: &str) -> Cred {
        Cred::new("okta", "acme-okta", "prod", name, app)
            .issuer("https://acme.okta.com/oauth2/default")
            .service("acme.okta.com")
            .op("GET", "/api/v1/users")
    }

    pub fn hr_sync() -> Cred {
        okta("hr-sync", "0oa8hrsync0000000x7")
    }

    pub fn auth0() -> Cred {
        Cred::new(
            "auth0",
            "acme-auth0",
            "prod",
            "reports-api",
            "reports-client",
        )
        .issuer("https://acme.eu.auth0.com/")
        .service("acme.eu.auth0.com")
        .op("GET", "/api/v2/users")
    }

    /// The GitHub App of the demo.
    pub fn release_bot() -> Cred {
        Cred::new(
            "github",
            "acme-github",
            "prod",
            "release-bot",
            "Iv1.8a61f9b3a7aba766",
        )
        .issuer("https://github.com")
        .service("api.github.com")
        .op("GET", "/repos/{owner}/{repo}/pulls")
    }

    pub fn stripe_hook(id: &str, url: &str) -> Hook {
        Hook::new("stripe", "acme-stripe", id, url)
    }
}

mod worlds {
    use super::cast::*;
    use super::*;

    /// DESIGN §1, where prod never had the scope. erp-sync's prod token has always been
    /// `gl:journal:read gl:ledger:read` (07:00 and 09:00 snapshots); the test pod's token has
    /// `gl:journal:write` too. At 08:55 Carol resets the role's permissions in prod; from 09:02
    /// 37 journal posts get 403 insufficient_scope requiring `gl:journal:write`. Prod never
    /// had it and test does: environment_mismatch, caused by prod's latest snapshot; the reset
    /// (which names erp-sync) is an alternative, scope evidence outranks it.
    pub fn seed_prod_token_lacks_journal_write_that_test_has_after_a_permission_reset() -> World {
        let mut w = World::default();
        let (prod, test) = (erp("prod"), erp("test"));
        w.add(prod.snapshot("0700", at("07:00"), &[JOURNAL_READ, LEDGER_READ]));
        let prod_0900 = w.add(prod.snapshot("0900", at("09:00"), &[JOURNAL_READ, LEDGER_READ]));
        w.add(test.snapshot(
            "0800",
            at("08:00"),
            &[JOURNAL_READ, JOURNAL_WRITE, LEDGER_READ],
        ));
        for c in [&prod, &test] {
            w.add(c.drift(
                "mismatch",
                at("09:00"),
                "environment_mismatch",
                "only_in_test=scp:gl:journal:write",
            ));
        }
        w.add(Change {
            actor_user: Some("carol@acme.test".into()),
            ..prod.vendor_change(
                "reset",
                at("08:55"),
                "role.permissions.reset",
                "role",
                "erp-sync",
            )
        });
        let denials = w.series("post", 37, at("09:02"), MIN, |n, t| {
            prod.forbidden(n, t, &["gl:journal:write"])
        });
        w.expect(
            Expect::new(EnvironmentMismatch, &denials)
                .high()
                .cause(prod_0900)
                .says(&["gl:journal:write", "09:02", "test"])
                .fix_says(&["gl:journal:write", "erp-sync"])
                .fix_order(GRANT_THEN_MINT)
                .alt(PermissionChange),
        );
        w
    }

    /// DESIGN §1 as written: "the `gl:journal:write` scope was in the 08:00 snapshot and is
    /// gone since 09:00; test still has it". Carol's permission reset at 08:58 named erp-sync;
    /// the 09:00 snapshot records the removal (and the probe staged its drift row); 37
    /// denials follow from 09:02. scope_drift, caused by the 09:00 snapshot; the reset is an
    /// alternative. The removal has failures: no warning.
    pub fn seed_prod_token_lost_journal_write_in_a_permission_reset() -> World {
        let mut w = World::default();
        let (prod, test) = (erp("prod"), erp("test"));
        w.add(prod.snapshot(
            "0800",
            at("08:00"),
            &[JOURNAL_READ, JOURNAL_WRITE, LEDGER_READ],
        ));
        let prod_0900 = w.add(TokenSnapshot {
            privileges_removed: vec![JOURNAL_WRITE.into()],
            ..prod.snapshot("0900", at("09:00"), &[JOURNAL_READ, LEDGER_READ])
        });
        w.add(prod.drift("removed", at("09:00"), "privileges_removed", JOURNAL_WRITE));
        w.add(test.snapshot(
            "0800",
            at("08:00"),
            &[JOURNAL_READ, JOURNAL_WRITE, LEDGER_READ],
        ));
        w.add(Change {
            actor_user: Some("carol@acme.test".into()),
            ..prod.vendor_change(
                "reset",
                at("08:58"),
                "role.permissions.reset",
                "role",
                "erp-sync",
            )
        });
        let denials = w.series("post", 37, at("09:02"), MIN, |n, t| {
            prod.forbidden(n, t, &["gl:journal:write"])
        });
        w.expect(
            Expect::new(ScopeDrift, &denials)
                .high()
                .cause(prod_0900)
                .says(&["gl:journal:write", "09:02", "09:00"])
                .fix_says(&["gl:journal:write", "erp-sync"])
                .fix_order(GRANT_THEN_MINT)
                .alt(PermissionChange),
        );
        w
    }

    /// The inventory API wants `inventory.read` for writes too. inv-sync's token has only
    /// `inventory.write` (08:00 and 10:00 snapshots). Its GETs on /v2/items succeed all
    /// morning (request_counts: GET 2xx); from 10:15 every POST gets 403 insufficient_scope
    /// naming `inventory.read inventory.write`. Never had inventory.read: insufficient_scope,
    /// caused by the latest snapshot, and the explanation says the GETs succeed. A role change
    /// naming inv-sync two days earlier is out of the lookback.
    pub fn seed_inventory_post_needs_inventory_read_while_gets_succeed() -> World {
        let mut w = World::default();
        let inv = Cred::new(
            "inventory",
            "acme-inventory",
            "prod",
            "inv-sync",
            "inv-sync",
        )
        .issuer("https://auth.acme.example")
        .service("inventory.acme.example")
        .op("POST", "/v2/items");
        w.add(inv.snapshot("0800", at("08:00"), &["scp:inventory.write"]));
        let latest = w.add(inv.snapshot("1000", at("10:00"), &["scp:inventory.write"]));
        w.add(inv.requests("get09", at("09:00"), "GET", "/v2/items", "2xx", 180));
        w.add(inv.requests("get10", at("10:00"), "GET", "/v2/items", "2xx", 240));
        w.add(inv.requests("post10", at("10:00"), "POST", "/v2/items", "403", 12));
        w.add(inv.vendor_change("old", on(3, "10:00"), "role.updated", "role", "inv-sync"));
        let denials = w.series("post", 12, at("10:15"), 2 * MIN, |n, t| {
            inv.forbidden(n, t, &["inventory.read", "inventory.write"])
        });
        w.expect(
            Expect::new(InsufficientScope, &denials)
                .high()
                .cause(latest)
                .says(&["inventory.read", "GET", "10:15"])
                .fix_says(&["inventory.read", "inv-sync"])
                .fix_order(GRANT_THEN_MINT)
                .not_alt(PermissionChange),
        );
        w
    }

    /// release-bot's release creation is refused with 403 and `X-Accepted-OAuth-Scopes: repo`;
    /// nothing ever snapshotted the token. insufficient_scope, medium, no cause.
    pub fn insufficient_scope_without_any_snapshot_is_medium_and_has_no_cause() -> World {
        let mut w = World::default();
        let bot = release_bot().op("POST", "/repos/{owner}/{repo}/releases");
        let denials = w.series("rel", 6, at("14:00"), 5 * MIN, |n, t| Denial {
            error_message: Some("Resource not accessible by personal access token".into()),
            ..bot.forbidden(n, t, &["repo"])
        });
        w.expect(
            Expect::new(InsufficientScope, &denials)
                .medium()
                .says(&["repo"]),
        );
        w
    }

    /// At 09:00 erp-sync lost `gl:ledger:write`, but the denials from 09:30 want
    /// `gl:journal:write`, which it never had (and no other environment has it): that removal
    /// is not their cause. insufficient_scope, caused by the latest snapshot; no warning
    /// either, the credential has failures.
    pub fn removal_of_another_scope_is_not_the_cause() -> World {
        let mut w = World::default();
        let prod = erp("prod");
        w.add(prod.snapshot(
            "0800",
            at("08:00"),
            &[JOURNAL_READ, LEDGER_READ, "scp:gl:ledger:write"],
        ));
        let latest = w.add(TokenSnapshot {
            privileges_removed: vec!["scp:gl:ledger:write".into()],
            ..prod.snapshot("0900", at("09:00"), &[JOURNAL_READ, LEDGER_READ])
        });
        let denials = w.series("post", 8, at("09:30"), 2 * MIN, |n, t| {
            prod.forbidden(n, t, &["gl:journal:write"])
        });
        w.expect(
            Expect::new(InsufficientScope, &denials)
                .high()
                .cause(latest)
                .says(&["gl:journal:write"]),
        );
        w
    }

    /// hr-sync pages through Okta's users in a tight loop: from 11:00 to 11:20, 950 429s with
    /// 310 503s among them (a per-second cap and load shedding). Elsewhere scattered single
    /// 429s on /api/v1/groups, never a burst, and hourly request counts with 429 and 5xx
    /// classes: those are no failure group. One finding, rate_limited, high; it names the
    /// 503s and says back off exponentially with jitter.
    pub fn seed_429_and_503_cycling_in_a_tight_loop_among_scattered_429s() -> World {
        let mut w = World::default();
        let users = hr_sync();
        let groups = hr_sync().op("GET", "/api/v1/groups");
        w.add(users.snapshot(
            "1000",
            at("10:00"),
            &["scp:okta.groups.read", "scp:okta.users.read"],
        ));
        let burst = w.add(users.burst("loop", at("11:00"), at("11:20"), 950, 310));
        for (n, hm) in ["08:13", "10:41", "13:07", "15:55"].iter().enumerate() {
            w.add(groups.rate_event(&format!("s{n}"), at(hm), 429));
        }
        w.add(groups.rate_event("s503", at("12:00"), 503));
        w.add(users.requests("u2", at("11:00"), "GET", "/api/v1/users", "2xx", 400));
        w.add(users.requests("u429", at("11:00"), "GET", "/api/v1/users", "429", 950));
        w.add(users.requests("u5", at("11:00"), "GET", "/api/v1/users", "5xx", 310));
        w.add(groups.requests("g429", at("10:00"), "GET", "/api/v1/groups", "429", 1));
        w.expect(
            Expect::new(RateLimited, &[burst])
                .high()
                .cause(burst)
                .says(&["503"])
                .fix_says(&["exponential", "jitter"]),
        );
        w
    }

    /// A burst first staged at 15:05 (40 429s) and extended by late lines: the same event_uid
    /// at revision 2 has 180 429s up to 15:20. One failure, read at its highest revision,
    /// whichever comes first.
    pub fn a_revised_burst_is_one_failure_read_at_its_last_revision() -> World {
        let mut w = World::default();
        let billing = Cred::new(
            "stripe",
            "acme-stripe",
            "prod",
            "stripe-billing",
            "rk_billing",
        )
        .issuer("https://api.stripe.com")
        .service("api.stripe.com")
        .op("POST", "/v1/invoices");
        let first = billing.burst("b", at("15:00"), at("15:05"), 40, 0);
        let last = RateLimitBurst {
            end_time_dt: Some(at("15:20")),
            count: Some(180),
            related_events_count: Some(180),
            peak_per_minute: Some(12),
            revision: Some(2),
            ..first.clone()
        };
        let burst = w.add(first);
        w.add(last);
        w.expect(
            Expect::new(RateLimited, &[burst])
                .high()
                .cause(burst)
                .says(&["180"])
                .fix_says(&["exponential", "jitter"]),
        );
        w
    }

    /// Stripe opens "Delayed webhook deliveries" (component Webhooks) at 14:00, identifies it
    /// at 14:25, resolves it at 15:10. From 14:03 deliveries to our endpoint time out or stay
    /// pending. vendor_incident, high (3 minutes after its start), caused by its latest update,
    /// with its URL; the endpoint failing is only an alternative. A Dashboard incident at the
    /// same time is not it.
    pub fn seed_webhook_failures_minutes_after_a_vendor_incident() -> World {
        let mut w = World::default();
        let hook = stripe_hook(
            "we_1Mr5jvLkdIwHu7ixhBHfRnl6",
            "https://hooks.acme.example/stripe",
        );
        let inc = StatusIncident::new(
            "stripe",
            "lmk0cyt3k9x8",
            "Delayed webhook deliveries",
            &["Webhooks"],
            at("14:00"),
        );
        w.add(inc.update(at("14:00"), "investigating", None));
        w.add(inc.update(at("14:25"), "identified", None));
        let resolved = w.add(inc.update(at("15:10"), "resolved", Some(at("15:10"))));
        let dash = StatusIncident::new(
            "stripe",
            "d4shb0rd",
            "Dashboard slow",
            &["Dashboard"],
            at("13:30"),
        );
        w.add(dash.update(at("13:30"), "investigating", None));
        w.add(dash.update(at("16:00"), "resolved", Some(at("16:00"))));
        let failures = w.series("dlv", 16, at("14:03"), 3 * MIN, |n, t| {
            let kind = if n.ends_with(['0', '2', '4', '6', '8']) {
                "timeout"
            } else {
                "pending"
            };
            hook.failure(n, t, kind, None)
        });
        w.expect(
            Expect::new(VendorIncident, &failures)
                .high()
                .cause(resolved)
                .incident_url(&inc.url)
                .says(&["Delayed webhook deliveries", "14:00"])
                .fix_order(&[&["incident", "status page", "status."]])
                .alt(WebhookEndpointFailing),
        );
        w
    }

    /// GitHub's "Degraded performance for API requests" starts at 14:00 (component API
    /// Requests); release-bot's 429s and 503s begin at 13:57, 3 minutes before. The incident
    /// outranks the rate limit: vendor_incident high, rate_limited an alternative.
    pub fn seed_burst_starting_with_an_api_incident_is_the_incident() -> World {
        let mut w = World::default();
        let bot = release_bot();
        let inc = StatusIncident::new(
            "github",
            "x7k2p9q1",
            "Degraded performance for API requests",
            &["API Requests"],
            at("14:00"),
        );
        w.add(inc.update(at("14:00"), "investigating", None));
        let resolved = w.add(inc.update(at("14:40"), "resolved", Some(at("14:40"))));
        let burst = w.add(bot.burst("b", at("13:57"), at("14:22"), 420, 140));
        w.expect(
            Expect::new(VendorIncident, &[burst])
                .high()
                .cause(resolved)
                .incident_url(&inc.url)
                .says(&["Degraded performance for API requests"])
                .fix_order(&[&["incident", "status page", "status."]])
                .alt(RateLimited),
        );
        w
    }

    /// Okta's "Elevated API error rates" (component API) opens at 11:00 and is still open
    /// (monitoring since 12:30). Four Okta clients get 401 invalid_token with nothing else to
    /// explain them:
    /// - scim-sync from 10:40 (20 minutes before: status pages lag, so claimed, medium);
    /// - hr-sync from 12:00 (an hour in: medium);
    /// - audit-export from 10:20 to 10:26 (ended before 10:30: not claimed, unexplained);
    /// - provisioning, whose token expired at 10:00 (06:00 snapshot), from 11:30: the expiry
    ///   is high and wins, the medium incident is an alternative.
    pub fn incident_window_edges_and_medium_confidence() -> World {
        let mut w = World::default();
        let inc = StatusIncident::new(
            "okta",
            "okta-1123",
            "Elevated API error rates",
            &["API"],
            at("11:00"),
        );
        w.add(inc.update(at("11:00"), "investigating", None));
        let latest = w.add(inc.update(at("12:30"), "monitoring", None));
        let scim = okta("scim-sync", "0oa-scim-sync");
        let early = w.series("d", 5, at("10:40"), 2 * MIN, |n, t| scim.unauthorized(n, t));
        let hr = hr_sync();
        let late = w.series("d", 5, at("12:00"), 5 * MIN, |n, t| hr.unauthorized(n, t));
        let audit = okta("audit-export", "0oa-audit-export");
        let before = w.series("d", 4, at("10:20"), 2 * MIN, |n, t| {
            audit.unauthorized(n, t)
        });
        let prov = okta("provisioning", "0oa-provisioning");
        let expired = w.add(TokenSnapshot {
            expires_at_dt: Some(at("10:00")),
            ..prov.snapshot("0600", at("06:00"), &["scp:okta.users.manage"])
        });
        let prov_denials = w.series("d", 3, at("11:30"), 5 * MIN, |n, t| prov.unauthorized(n, t));
        w.expect(
            Expect::new(VendorIncident, &early)
                .medium()
                .cause(latest)
                .incident_url(&inc.url)
                .says(&["Elevated API error rates"]),
        );
        w.expect(
            Expect::new(VendorIncident, &late)
                .medium()
                .cause(latest)
                .incident_url(&inc.url),
        );
        w.expect(
            Expect::new(Unexplained, &before)
                .low()
                .not_alt(VendorIncident),
        );
        w.expect(
            Expect::new(TokenExpired, &prov_denials)
                .high()
                .cause(expired)
                .alt(VendorIncident),
        );
        w
    }

    /// Okta's API incident opened at 08:00 (that row has no resolution) and was resolved at
    /// 09:45 (a later row of the same incident). hr-sync's 401s at 11:00 come after: the
    /// incident is over, not claimed; unexplained.
    pub fn an_incident_resolved_before_the_failures_is_read_from_its_last_update() -> World {
        let mut w = World::default();
        let inc = StatusIncident::new("okta", "okta-0800", "Okta API errors", &[], at("08:00"));
        w.add(inc.update(at("08:00"), "investigating", None));
        w.add(inc.update(at("09:45"), "resolved", Some(at("09:45"))));
        let hr = hr_sync();
        let denials = w.series("d", 5, at("11:00"), 2 * MIN, |n, t| hr.unauthorized(n, t));
        w.expect(
            Expect::new(Unexplained, &denials)
                .low()
                .not_alt(VendorIncident),
        );
        w
    }

    /// At 09:28 GitHub opens "Incident with Actions and Pages"; at 09:35 Okta opens an API
    /// incident. From 09:30 GitHub deliveries to our CI hook time out, and release-bot gets
    /// 401s from 09:40. Neither incident is about them (other components, other vendor):
    /// webhook_endpoint_failing without cause, and unexplained.
    pub fn incidents_on_other_components_or_other_vendors_are_not_claimed() -> World {
        let mut w = World::default();
        let gh = StatusIncident::new(
            "github",
            "gh-actions",
            "Incident with Actions and Pages",
            &["Actions", "Pages"],
            at("09:28"),
        );
        w.add(gh.update(at("09:28"), "investigating", None));
        w.add(gh.update(at("10:30"), "resolved", Some(at("10:30"))));
        let ok = StatusIncident::new(
            "okta",
            "okta-api",
            "Okta API degraded",
            &["API"],
            at("09:35"),
        );
        w.add(ok.update(at("09:35"), "investigating", None));
        let hook = Hook::new(
            "github",
            "acme-github",
            "12345",
            "https://ci.acme.example/github",
        );
        let deliveries = w.series("dlv", 10, at("09:30"), 3 * MIN, |n, t| {
            hook.failure(n, t, "timeout", None)
        });
        let bot = release_bot();
        let denials = w.series("d", 3, at("09:40"), 5 * MIN, |n, t| Denial {
            error_message: Some("Bad credentials".into()),
            ..bot.unauthorized(n, t)
        });
        w.expect(Expect::new(WebhookEndpointFailing, &deliveries).not_alt(VendorIncident));
        w.expect(
            Expect::new(Unexplained, &denials)
                .low()
                .not_alt(VendorIncident),
        );
        w
    }

    /// hcm-sync's token, snapshotted at 06:00, expired at 07:00; nothing renewed it. From
    /// 07:05 its worker reads get 401 invalid_token. token_expired, high, caused by the
    /// snapshot; the explanation says when it expired.
    pub fn token_expired_by_snapshot() -> World {
        let mut w = World::default();
        let hcm = hcm();
        let snapshot = w.add(TokenSnapshot {
            expires_at_dt: Some(at("07:00")),
            ..hcm.snapshot("0600", at("06:00"), &["scp:hcm:workers:read"])
        });
        let denials = w.series("d", 5, at("07:05"), 5 * MIN, |n, t| hcm.unauthorized(n, t));
        w.expect(
            Expect::new(TokenExpired, &denials)
                .high()
                .cause(snapshot)
                .says(&["07:00", "07:05"]),
        );
        w
    }

    /// hcm-sync's probe worked at 08:00 and answers `expired` at 09:00 (the integration
    /// stopped refreshing the saved token); the worker reads get 401 from 09:05.
    /// token_expired, high, caused by the 09:00 snapshot (an expired token is not a revoked
    /// client).
    pub fn token_expired_by_a_probe_saying_expired() -> World {
        let mut w = World::default();
        let hcm = hcm();
        w.add(hcm.snapshot("0800", at("08:00"), &["scp:hcm:workers:read"]));
        let expired = w.add(hcm.failed_probe("0900", at("09:00"), "expired"));
        let denials = w.series("d", 4, at("09:05"), 5 * MIN, |n, t| hcm.unauthorized(n, t));
        w.expect(
            Expect::new(TokenExpired, &denials)
                .high()
                .cause(expired)
                .not_alt(CredentialRevoked),
        );
        w
    }

    /// The same token expired at 07:00, but the 06:58 snapshot shows a new one, valid until
    /// 07:58. The 401s from 07:05 are not an expiry: unexplained.
    pub fn a_token_renewed_before_the_failures_is_not_expired() -> World {
        let mut w = World::default();
        let hcm = hcm();
        w.add(TokenSnapshot {
            expires_at_dt: Some(at("07:00")),
            ..hcm.snapshot("0600", at("06:00"), &["scp:hcm:workers:read"])
        });
        w.add(TokenSnapshot {
            expires_at_dt: Some(at("07:58")),
            ..hcm.snapshot("0658", at("06:58"), &["scp:hcm:workers:read"])
        });
        let denials = w.series("d", 3, at("07:05"), 5 * MIN, |n, t| hcm.unauthorized(n, t));
        w.expect(
            Expect::new(Unexplained, &denials)
                .low()
                .not_alt(TokenExpired),
        );
        w
    }

    /// reports-api has no snapshot; Auth0 answers its 401s with "Expired token received for
    /// JSON Web Token validation". token_expired from the error alone: medium, no cause.
    pub fn token_expired_from_the_error_message_without_a_snapshot() -> World {
        let mut w = World::default();
        let reports = auth0();
        let denials = w.series("d", 4, at("16:00"), 2 * MIN, |n, t| Denial {
            error_code: Some("invalid_token".into()),
            error_message: Some("Expired token received for JSON Web Token validation".into()),
            ..reports.unauthorized(n, t)
        });
        w.expect(Expect::new(TokenExpired, &denials).medium());
        w
    }

    /// Seed 003: ION answers 401 with `WWW-Authenticate: Bearer error="invalid_token"` but the
    /// body's error is `insufficient_scope`. The token is valid (09:00 snapshot, until
    /// 21:00). The body wins: insufficient_scope (forbidden), caused by the latest snapshot;
    /// never token_expired, not even as an alternative.
    pub fn seed_003_invalid_token_header_with_insufficient_scope_body_is_not_expiry() -> World {
        let mut w = World::default();
        let ion = Cred::new(
            "infor_ion",
            "acme-ion",
            "prod",
            "ion-sync",
            "ACME_PRD~ion-sync",
        )
        .issuer("https://mingle-sso.eu1.inforcloudsuite.com:443/ACME_PRD/as/")
        .service("mingle-ionapi.eu1.inforcloudsuite.com")
        .op(
            "POST",
            "/ACME_PRD/M3/m3api-rest/v2/execute/MMS200MI/AddItmBasic",
        );
        let snapshot = w.add(ion.snapshot("0900", at("09:00"), &["scp:m3.read"]));
        let denials = w.series("d", 6, at("10:00"), 3 * MIN, |n, t| Denial {
            error_code: Some("insufficient_scope".into()),
            error_message: Some("The access token does not have the required scope".into()),
            ..ion.unauthorized(n, t)
        });
        w.expect(
            Expect::new(InsufficientScope, &denials)
                .cause(snapshot)
                .not_alt(TokenExpired),
        );
        w
    }

    /// A GitHub App no binding claims (grouped by its client id) gets 401 invalid_token "Bad
    /// credentials", and nothing else is known: no snapshot, no change naming it on this
    /// tenant (a sandbox org uninstalled it: another tenant). `invalid_token` alone is not
    /// an expiry: unexplained, low.
    pub fn invalid_token_alone_is_unexplained() -> World {
        let mut w = World::default();
        let ghost = Cred::new("github", "acme-github", "prod", "", "Iv1.0000ghost")
            .unbound()
            .service("api.github.com")
            .op("GET", "/repos/{owner}/{repo}/issues");
        let sandbox = Cred {
            tenant: "acme-github-sandbox".into(),
            ..ghost.clone()
        };
        w.add(sandbox.vendor_change(
            "uninstall",
            at("15:30"),
            "integration_installation.destroy",
            "integration",
            "Iv1.0000ghost",
        ));
        w.add(ghost.vendor_change(
            "member",
            at("15:00"),
            "org.update_member",
            "user",
            "octocat",
        ));
        let denials = w.series("d", 5, at("16:00"), 4 * MIN, |n, t| Denial {
            error_message: Some("Bad credentials".into()),
            ..ghost.unauthorized(n, t)
        });
        w.expect(
            Expect::new(Unexplained, &denials)
                .low()
                .not_alt(TokenExpired)
                .not_alt(CredentialRevoked),
        );
        w
    }

    /// At 15:40 Alice deactivates the Okta app 0oa-scim-sync; from 15:45 scim-sync's calls get
    /// 401 "Invalid token provided". credential_revoked, high, caused by her change.
    pub fn credential_revoked_by_a_vendor_change() -> World {
        let mut w = World::default();
        let scim = okta("scim-sync", "0oa-scim-sync");
        w.add(scim.snapshot("0600", at("06:00"), &["scp:okta.users.manage"]));
        let change = w.add(Change {
            actor_user: Some("alice@acme.test".into()),
            ..scim.vendor_change(
                "deactivate",
                at("15:40"),
                "application.lifecycle.deactivate",
                "AppInstance",
                "0oa-scim-sync",
            )
        });
        let denials = w.series("d", 5, at("15:45"), 5 * MIN, |n, t| Denial {
            error_code: Some("E0000011".into()),
            error_message: Some("Invalid token provided".into()),
            ..scim.unauthorized(n, t)
        });
        w.expect(
            Expect::new(CredentialRevoked, &denials)
                .high()
                .cause(change)
                .says(&["alice@acme.test", "15:45"]),
        );
        w
    }

    /// reports-api's probe worked at 06:00 and fails with invalid_client at 07:00 (a rotated
    /// secret); its calls get 401 from 07:10. credential_revoked, high, caused by the 07:00
    /// snapshot.
    pub fn credential_revoked_by_a_probe_newly_failing() -> World {
        let mut w = World::default();
        let reports = auth0();
        w.add(reports.snapshot("0600", at("06:00"), &["scp:read:users"]));
        let failing = w.add(reports.failed_probe("0700", at("07:00"), "invalid_client"));
        let denials = w.series("d", 5, at("07:10"), 5 * MIN, |n, t| {
            reports.unauthorized(n, t)
        });
        w.expect(
            Expect::new(CredentialRevoked, &denials)
                .high()
                .cause(failing)
                .says(&["invalid_client"]),
        );
        w
    }

    /// At 13:10 Bob removes a permission set from the Salesforce integration's connected app;
    /// from 13:15 its Opportunity inserts fail with INSUFFICIENT_ACCESS. No snapshot says
    /// anything: permission_change, high, caused by Bob's change.
    pub fn permission_change_naming_the_app_is_high() -> World {
        let mut w = World::default();
        let sf = Cred::new(
            "salesforce",
            "acme-sf",
            "prod",
            "sf-integration",
            "3MVG9sfintegration",
        )
        .issuer("https://login.salesforce.com")
        .service("acme.my.salesforce.com")
        .op("POST", "/services/data/v62.0/sobjects/Opportunity");
        let change = w.add(Change {
            actor_user: Some("bob@acme.test".into()),
            ..sf.vendor_change(
                "permset",
                at("13:10"),
                "permission_set_assignment_removed",
                "PermissionSet",
                "3MVG9sfintegration",
            )
        });
        let denials = w.series("d", 10, at("13:15"), 3 * MIN, |n, t| Denial {
            error_code: Some("INSUFFICIENT_ACCESS".into()),
            error_message: Some("insufficient access rights on object id".into()),
            ..sf.forbidden(n, t, &[])
        });
        w.expect(
            Expect::new(PermissionChange, &denials)
                .high()
                .cause(change)
                .says(&["bob@acme.test", "13:10"]),
        );
        w
    }

    /// At 08:00 someone removes a repository from the platform team; from 08:30 release-bot's
    /// content writes get 403 "Resource not accessible by integration". The change names
    /// nothing scopetrail knows: permission_change, low, caused by it.
    pub fn permission_change_naming_nothing_known_is_low() -> World {
        let mut w = World::default();
        let bot = release_bot().op("PUT", "/repos/{owner}/{repo}/contents/{path}");
        let change = w.add(bot.vendor_change(
            "team",
            at("08:00"),
            "team.remove_repository",
            "team",
            "acme/platform-team",
        ));
        let denials = w.series("d", 4, at("08:30"), 5 * MIN, |n, t| Denial {
            error_message: Some("Resource not accessible by integration".into()),
            ..bot.forbidden(n, t, &[])
        });
        w.expect(Expect::new(PermissionChange, &denials).low().cause(change));
        w
    }

    /// scim-sync's group writes get 403 E0000006 from 10:00. Around them: a consent granted to
    /// hr-sync's app (another credential), a consent revoked for scim-sync on the preview
    /// tenant (another tenant), the same revoked on this tenant two days ago (out of the
    /// lookback), a session start (no permission), and scopetrail's own drift row (not an
    /// admin change). None may be claimed: unexplained.
    pub fn changes_to_other_apps_other_tenants_or_too_old_are_never_claimed() -> World {
        let mut w = World::default();
        let scim = okta("scim-sync", "0oa-scim-sync")
            .op("POST", "/api/v1/groups/{groupId}/users/{userId}");
        let hr = hr_sync();
        w.add(hr.snapshot("0600", at("06:00"), &["scp:okta.users.read"]));
        w.add(scim.vendor_change(
            "other-app",
            at("09:30"),
            "app.oauth2.as.consent.grant",
            "AppInstance",
            &hr.app,
        ));
        let preview = Cred {
            tenant: "acme-okta-preview".into(),
            ..scim.clone()
        };
        w.add(preview.vendor_change(
            "preview",
            at("09:40"),
            "app.oauth2.as.consent.revoke",
            "AppInstance",
            "0oa-scim-sync",
        ));
        w.add(scim.vendor_change(
            "old",
            on(3, "09:00"),
            "app.oauth2.as.consent.revoke",
            "AppInstance",
            "0oa-scim-sync",
        ));
        w.add(scim.vendor_change(
            "session",
            at("09:50"),
            "user.session.start",
            "User",
            "carol@acme.test",
        ));
        w.add(scim.drift(
            "added",
            at("09:55"),
            "privileges_added",
            "scp:okta.groups.read",
        ));
        let denials = w.series("d", 5, at("10:00"), 5 * MIN, |n, t| Denial {
            error_code: Some("E0000006".into()),
            error_message: Some(
                "You do not have permission to perform the requested action".into(),
            ),
            ..scim.forbidden(n, t, &[])
        });
        w.expect(
            Expect::new(Unexplained, &denials)
                .low()
                .not_alt(PermissionChange),
        );
        w
    }

    /// ap-sync's token was minted for the test pod (audience fa-acme-test...) and used against
    /// prod (fa-acme...): 401s from 12:00. audience_mismatch, high, caused by the snapshot.
    pub fn audience_mismatch() -> World {
        let mut w = World::default();
        let ap = Cred::new("oracle_fusion", "acme-fusion", "prod", "ap-sync", "ap-sync")
            .issuer("https://idcs-acme.identity.oraclecloud.com")
            .service("fa-acme.fa.ocs.oraclecloud.com")
            .op("GET", "/fscmRestApi/resources/11.13.18.05/invoices");
        let snapshot = w.add(TokenSnapshot {
            audience: vec!["https://fa-acme-test.fa.ocs.oraclecloud.com".into()],
            ..ap.snapshot("1100", at("11:00"), &["scp:ap:invoices:read"])
        });
        let denials = w.series("d", 6, at("12:00"), 2 * MIN, |n, t| Denial {
            error_message: Some("The token audience is not valid".into()),
            ..ap.unauthorized(n, t)
        });
        w.expect(
            Expect::new(AudienceMismatch, &denials)
                .high()
                .cause(snapshot)
                .says(&["fa-acme-test"]),
        );
        w
    }

    /// The S3 export picked up the instance role: at 09:55 the probe reports
    /// `unexpected_identity` (ec2-default instead of s3-export); from 10:05 its PutObject calls
    /// get AccessDenied. identity_mismatch, high, caused by the drift row. A policy change on
    /// the dev account (another tenant) is not claimed.
    pub fn identity_mismatch() -> World {
        let mut w = World::default();
        let s3 = Cred::new(
            "aws",
            "acme-aws-prod",
            "prod",
            "s3-export",
            "AKIAIOSFODNN7EXAMPLE",
        )
        .issuer("aws")
        .service("s3.amazonaws.com")
        .op("PUT", "PutObject");
        let assumed = "arn:aws:sts::123456789012:assumed-role/ec2-default/i-0abc";
        w.add(TokenSnapshot {
            identity: Some(assumed.into()),
            audience: Vec::new(),
            privileges: None,
            expires_at_dt: None,
            token_type: Some("aws_access_key".into()),
            ..s3.snapshot("0955", at("09:55"), &[])
        });
        let drift = w.add(s3.drift(
            "identity",
            at("09:55"),
            "unexpected_identity",
            &format!("expected arn:aws:iam::123456789012:role/s3-export, got {assumed}"),
        ));
        let dev = Cred {
            tenant: "acme-aws-dev".into(),
            ..s3.clone()
        };
        w.add(dev.vendor_change(
            "detach",
            at("09:00"),
            "DetachRolePolicy",
            "role",
            "s3-export",
        ));
        let denials = w.series("d", 6, at("10:05"), 4 * MIN, |n, t| Denial {
            error_code: Some("AccessDenied".into()),
            error_message: Some(format!(
                "User: {assumed} is not authorized to perform: s3:PutObject"
            )),
            ..s3.forbidden(n, t, &[])
        });
        w.expect(
            Expect::new(IdentityMismatch, &denials)
                .high()
                .cause(drift)
                .says(&["identity"])
                .not_alt(PermissionChange),
        );
        w
    }

    /// The 09:00 snapshot of hr-sync saw Okta's Date header 185 s ahead of this host; its
    /// calls get 401 from 09:10. clock_skew, high, caused by the snapshot.
    pub fn clock_skew_from_the_server_date() -> World {
        let mut w = World::default();
        let hr = hr_sync();
        let snapshot = w.add(TokenSnapshot {
            server_skew_ms: Some(185_000),
            ..hr.snapshot("0900", at("09:00"), &["scp:okta.users.read"])
        });
        let denials = w.series("d", 4, at("09:10"), 3 * MIN, |n, t| hr.unauthorized(n, t));
        w.expect(Expect::new(ClockSkew, &denials).high().cause(snapshot));
        w
    }

    /// reports-api's token, probed at 08:59, is issued and valid only from 09:06 (the issuer's
    /// clock is ahead); the calls from 09:00 to 09:04 get 401 "jwt not active".
    /// clock_skew, high, caused by the snapshot.
    pub fn clock_skew_from_a_token_not_yet_valid() -> World {
        let mut w = World::default();
        let reports = auth0();
        let snapshot = w.add(TokenSnapshot {
            issued_at_dt: Some(at("09:06")),
            not_before_dt: Some(at("09:06")),
            expires_at_dt: Some(at("10:06")),
            ..reports.snapshot("0859", at("08:59"), &["scp:read:users"])
        });
        let denials = w.series("d", 3, at("09:00"), 2 * MIN, |n, t| Denial {
            error_message: Some("jwt not active".into()),
            ..reports.unauthorized(n, t)
        });
        w.expect(Expect::new(ClockSkew, &denials).high().cause(snapshot));
        w
    }

    /// At 10:55 Dave changes the CI hook's configuration on GitHub; from 11:00 its deliveries
    /// cannot connect. webhook_endpoint_failing, caused by his change.
    pub fn webhook_endpoint_changed_on_the_vendor_side() -> World {
        let mut w = World::default();
        let hook = Hook::new(
            "github",
            "acme-github",
            "12345678",
            "https://ci.acme.example/hooks/github",
        );
        let change = w.add(hook.change("config", at("10:55"), "hook.config_changed", "hook"));
        let failures = w.series("dlv", 8, at("11:00"), 5 * MIN, |n, t| {
            hook.failure(n, t, "connect", None)
        });
        w.expect(
            Expect::new(WebhookEndpointFailing, &failures)
                .cause(change)
                .says(&["dave@acme.test"]),
        );
        w
    }

    /// Four Stripe endpoints fail at night: one times out, one answers 502, one known only by
    /// its URL refuses connections, one known only by its host fails TLS. Another endpoint
    /// (we_C) was disabled at 01:30: not theirs. Four webhook_endpoint_failing findings, no
    /// cause.
    pub fn webhook_endpoints_failing_without_a_cause() -> World {
        let mut w = World::default();
        let a = stripe_hook("we_A", "https://hooks.acme.example/stripe");
        let b = stripe_hook("we_B", "https://billing.acme.example/webhooks");
        let c = stripe_hook("we_C", "https://old.acme.example/webhooks");
        let d = stripe_hook("", "https://crm.acme.example/stripe");
        w.add(c.change(
            "disabled",
            at("01:30"),
            "webhook_endpoint.disabled",
            "webhook_endpoint",
        ));
        let fa = w.series("a", 10, at("02:00"), 3 * MIN, |n, t| {
            a.failure(n, t, "timeout", None)
        });
        let fb = w.series("b", 6, at("02:10"), 4 * MIN, |n, t| {
            b.failure(n, t, "http_5xx", Some(502))
        });
        let fd = w.series("d", 3, at("02:20"), 5 * MIN, |n, t| {
            d.failure(n, t, "connect", None)
        });
        // Known only by its host: neither an id nor a URL.
        let fe = w.series("e", 4, at("02:30"), 2 * MIN, |n, t| WebhookFailure {
            url: None,
            dst_hostname: Some("erp.acme.example".into()),
            ..d.failure(&format!("host-{n}"), t, "tls", None)
        });
        for f in [fa, fb, fd, fe] {
            w.expect(Expect::new(WebhookEndpointFailing, &f));
        }
        w
    }

    /// Monday 2 March: erp-sync's prod token lost `gl:journal:write` at 10:00 and its test token
    /// lost `gl:ledger:read` at 10:05; nothing of either has failed since (prod's 401s of
    /// Sunday 06:00 are more than 24 hours before). Two warnings, each caused by its snapshot.
    /// hcm-sync lost a scope at 12:00 but failed at 10:00 the same day: no warning for it.
    /// The two failure groups themselves are unexplained.
    pub fn drift_before_any_failure_is_a_warning() -> World {
        let mut w = World::default();
        let (prod, test) = (erp("prod"), erp("test"));
        w.add(prod.snapshot(
            "mon0900",
            on(2, "09:00"),
            &[JOURNAL_READ, JOURNAL_WRITE, LEDGER_READ],
        ));
        let prod_drift = w.add(TokenSnapshot {
            privileges_removed: vec![JOURNAL_WRITE.into()],
            ..prod.snapshot("mon1000", on(2, "10:00"), &[JOURNAL_READ, LEDGER_READ])
        });
        let test_drift = w.add(TokenSnapshot {
            privileges_removed: vec![LEDGER_READ.into()],
            ..test.snapshot("mon1005", on(2, "10:05"), &[JOURNAL_READ, JOURNAL_WRITE])
        });
        let sunday = w.series("sun", 3, on(1, "06:00"), 2 * MIN, |n, t| {
            prod.unauthorized(n, t)
        });
        let hcm = hcm();
        let hcm_failures = w.series("mon", 2, on(2, "10:00"), 5 * MIN, |n, t| {
            hcm.unauthorized(n, t)
        });
        w.add(TokenSnapshot {
            privileges_removed: vec!["scp:hcm:workers:write".into()],
            ..hcm.snapshot("mon1200", on(2, "12:00"), &["scp:hcm:workers:read"])
        });
        w.expect(Expect::warning(ScopeDrift, prod_drift).says(&["gl:journal:write"]));
        w.expect(Expect::warning(ScopeDrift, test_drift).says(&["gl:ledger:read"]));
        w.expect(Expect::new(Unexplained, &sunday).low());
        w.expect(Expect::new(Unexplained, &hcm_failures).low());
        w
    }

    /// 09:00 to 09:40, four things fail at once, each for its own reason:
    /// - erp-sync lost `gl:journal:write` at 09:00: scope_drift;
    /// - hcm-sync, same Fusion pod, token expired at 09:00: token_expired;
    /// - Stripe webhook deliveries, Stripe incident opened at 09:03: vendor_incident;
    /// - release-bot's 429 burst, while GitHub has an Actions/Pages incident that is not
    ///   about the API: rate_limited.
    ///
    /// An unrelated Okta session change adds noise.
    pub fn two_causes_in_one_window() -> World {
        let mut w = World::default();
        let prod = erp("prod");
        w.add(prod.snapshot(
            "0800",
            at("08:00"),
            &[JOURNAL_READ, JOURNAL_WRITE, LEDGER_READ],
        ));
        let drift = w.add(TokenSnapshot {
            privileges_removed: vec![JOURNAL_WRITE.into()],
            ..prod.snapshot("0900", at("09:00"), &[JOURNAL_READ, LEDGER_READ])
        });
        let posts = w.series("post", 10, at("09:02"), 2 * MIN, |n, t| {
            prod.forbidden(n, t, &["gl:journal:write"])
        });

        let hcm = hcm();
        let expired = w.add(TokenSnapshot {
            expires_at_dt: Some(at("09:00")),
            ..hcm.snapshot("0600", at("06:00"), &["scp:hcm:workers:read"])
        });
        let reads = w.series("read", 3, at("09:05"), 5 * MIN, |n, t| {
            hcm.unauthorized(n, t)
        });

        let hook = stripe_hook("we_billing", "https://billing.acme.example/stripe");
        let inc = StatusIncident::new(
            "stripe",
            "str-0903",
            "Webhook delivery delays",
            &["Webhooks"],
            at("09:03"),
        );
        let stripe_inc = w.add(inc.update(at("09:03"), "investigating", None));
        let deliveries = w.series("dlv", 9, at("09:05"), 3 * MIN, |n, t| {
            hook.failure(n, t, "timeout", None)
        });

        let gh = StatusIncident::new(
            "github",
            "gh-pages",
            "Incident with Actions and Pages",
            &["Actions", "Pages"],
            at("09:08"),
        );
        w.add(gh.update(at("09:08"), "investigating", None));
        let bot = release_bot();
        let burst = w.add(bot.burst("b", at("09:10"), at("09:25"), 300, 0));

        w.add(hr_sync().vendor_change(
            "session",
            at("09:01"),
            "user.session.start",
            "User",
            "erin@acme.test",
        ));

        w.expect(Expect::new(ScopeDrift, &posts).high().cause(drift));
        w.expect(Expect::new(TokenExpired, &reads).high().cause(expired));
        w.expect(
            Expect::new(VendorIncident, &deliveries)
                .high()
                .cause(stripe_inc)
                .incident_url(&inc.url),
        );
        w.expect(
            Expect::new(RateLimited, &[burst])
                .high()
                .cause(burst)
                .not_alt(VendorIncident),
        );
        w
    }

    /// erp-sync lost `gl:journal:write` at 08:30. Its journal posts fail 09:00-09:10 and again
    /// 10:00-10:10 (50 minutes apart: two groups), then at 12:00 and 12:30 (exactly the 30
    /// minute gap: one group). Meanwhile its ledger reads get 401 at 09:05 and 09:07: another
    /// class and operation, its own group (unexplained).
    pub fn groups_split_on_gap_operation_and_class() -> World {
        let mut w = World::default();
        let prod = erp("prod");
        let ledger = erp("prod").op("GET", "/fscmRestApi/resources/11.13.18.05/ledgerBalances");
        w.add(prod.snapshot(
            "0800",
            at("08:00"),
            &[JOURNAL_READ, JOURNAL_WRITE, LEDGER_READ],
        ));
        let drift = w.add(TokenSnapshot {
            privileges_removed: vec![JOURNAL_WRITE.into()],
            ..prod.snapshot("0830", at("08:30"), &[JOURNAL_READ, LEDGER_READ])
        });
        // The scope comes back at 11:00 and is removed again at 11:30: another cause.
        w.add(TokenSnapshot {
            privileges_added: vec![JOURNAL_WRITE.into()],
            ..prod.snapshot(
                "1100",
                at("11:00"),
                &[JOURNAL_READ, JOURNAL_WRITE, LEDGER_READ],
            )
        });
        let again = w.add(TokenSnapshot {
            privileges_removed: vec![JOURNAL_WRITE.into()],
            ..prod.snapshot("1130", at("11:30"), &[JOURNAL_READ, LEDGER_READ])
        });
        let scope = |n: &str, t| prod.forbidden(n, t, &["gl:journal:write"]);
        let first = w.series("a", 6, at("09:00"), 2 * MIN, scope);
        let second = w.series("b", 6, at("10:00"), 2 * MIN, scope);
        let third = w.series("c", 2, at("12:00"), 30 * MIN, scope);
        let reads = w.series("r", 2, at("09:05"), 2 * MIN, |n, t| {
            ledger.unauthorized(n, t)
        });
        // 09:00 and 10:00 are two clusters (50 minutes apart) with one cause: one finding.
        let mut both = first;
        both.extend(second);
        w.expect(Expect::new(ScopeDrift, &both).high().cause(drift));
        // 12:00 and 12:30 are exactly the gap apart: one cluster, of the second removal.
        w.expect(Expect::new(ScopeDrift, &third).high().cause(again));
        w.expect(Expect::new(Unexplained, &reads).low());
        w
    }

    /// Nothing failed: snapshots without drift (one with a scope added), role changes naming
    /// apps, an open API incident, request counts with 401, 403 and 429 classes, scattered
    /// 429 and 503 answers, a `token_expiring` drift row. No finding at all.
    pub fn a_quiet_world_has_no_findings() -> World {
        let mut w = World::default();
        let (prod, test) = (erp("prod"), erp("test"));
        let hr = hr_sync();
        w.add(prod.snapshot("0800", at("08:00"), &[JOURNAL_READ, JOURNAL_WRITE]));
        w.add(test.snapshot("0800", at("08:00"), &[JOURNAL_READ, JOURNAL_WRITE]));
        w.add(TokenSnapshot {
            privileges_added: vec!["scp:okta.groups.read".into()],
            ..hr.snapshot(
                "0900",
                at("09:00"),
                &["scp:okta.groups.read", "scp:okta.users.read"],
            )
        });
        w.add(hr.drift(
            "added",
            at("09:00"),
            "privileges_added",
            "scp:okta.groups.read",
        ));
        w.add(prod.drift("expiring", at("08:00"), "token_expiring", "expires in 5d"));
        w.add(prod.vendor_change(
            "role",
            at("07:00"),
            "role.permissions.updated",
            "role",
            "erp-sync",
        ));
        w.add(hr.vendor_change(
            "grant",
            at("07:30"),
            "app.oauth2.as.consent.grant",
            "AppInstance",
            &hr.app,
        ));
        let inc = StatusIncident::new(
            "okta",
            "okta-open",
            "Okta API latency",
            &["API"],
            at("10:00"),
        );
        w.add(inc.update(at("10:00"), "investigating", None));
        for (n, class) in ["2xx", "401", "403", "429"].iter().enumerate() {
            w.add(prod.requests(
                &format!("q{n}"),
                at("10:00"),
                "POST",
                &prod.operation,
                class,
                3,
            ));
        }
        for (n, hm) in ["08:10", "11:45", "14:20"].iter().enumerate() {
            w.add(hr.rate_event(&format!("r{n}"), at(hm), if n == 1 { 503 } else { 429 }));
        }
        w
    }
}

// ---------------------------------------------------------------------------------------------
// A generated world: 200 groups, each planted with one known cause (or none) among noise that
// may not be claimed. Groups are three days apart, each on its own tenant and credential.

const KINDS: &[&str] = &[
    "scope_drift",
    "scope_drift_warning",
    "insufficient_scope",
    "environment_mismatch",
    "audience_mismatch",
    "identity_mismatch",
    "token_expired",
    "credential_revoked",
    "permission_change",
    "clock_skew",
    "rate_limited",
    "vendor_incident",
    "webhook_endpoint_failing",
    "unexplained",
];

const VENDORS: &[&str] = &[
    "oracle_fusion",
    "okta",
    "salesforce",
    "github",
    "auth0",
    "infor_ion",
    "msgraph",
];

/// 2025-06-01T00:00:00Z: generated groups start here, three days apart.
const GENERATED_BASE: i64 = 1_748_736_000_000;

fn generated_world(groups: usize, seed: u64) -> World {
    let mut w = World::default();
    let mut rng = Lcg(seed);
    for i in 0..groups {
        let kind = KINDS[i % KINDS.len()];
        plant(&mut w, &mut rng, i, kind);
    }
    w
}

/// One group of kind `kind` (sometimes two, split by more than the gap) and its noise.
fn plant(w: &mut World, rng: &mut Lcg, i: usize, kind: &str) {
    let vendor = *rng.pick(VENDORS);
    let env = if kind == "environment_mismatch" {
        "prod"
    } else {
        *rng.pick(&["prod", "prod", "test", "staging"])
    };
    let tenant = format!("gen{i}-{vendor}");
    let method = *rng.pick(&["GET", "POST", "PUT", "DELETE", ""]);
    let bound = Cred::new(
        vendor,
        &tenant,
        env,
        &format!("gen{i}-sync"),
        &format!("gen{i}-app"),
    )
    .service(&format!("api.gen{i}.example"))
    .op(method, &format!("/v{}/things{i}", rng.range(1, 3)));
    // Calls no binding claims are grouped by client id: only where no snapshot is needed.
    let may_be_unbound = matches!(
        kind,
        "credential_revoked" | "rate_limited" | "vendor_incident" | "unexplained"
    );
    let unbound = may_be_unbound && rng.chance(25);
    let c = if unbound {
        bound.clone().unbound()
    } else {
        bound.clone()
    };
    let t0 = GENERATED_BASE + i as i64 * 3 * DAY + rng.range(6 * 60, 14 * 60) * MIN;
    let n = rng.range(1, 25) as usize;
    let step = rng.range(1, 6) * MIN;
    let last = t0 + (n as i64 - 1) * step;
    // A second group of the same failures, after more than the gap.
    let splits = matches!(
        kind,
        "scope_drift" | "token_expired" | "webhook_endpoint_failing" | "unexplained"
    ) && rng.chance(30);
    let t1 = last + rng.range(31, 180) * MIN;
    let n1 = rng.range(1, 5) as usize;
    let end = if splits {
        t1 + (n1 as i64 - 1) * step
    } else {
        last
    };
    let scope = format!("things{i}");
    let read = format!("scp:{scope}.read");
    let write = format!("scp:{scope}.write");

    // The forms denials take: a named scope (403 insufficient_scope, or the vendor's code
    // in the body, or seed 003's 401 with the code in the body), a bare 403 (vendor codes),
    // a 401 (invalid_token, a vendor code, or nothing but the status).
    let scope_form = rng.below(3);
    let named = move |d: Denial, scopes: &[&str]| -> Denial {
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        match scope_form {
            0 => Denial {
                required_scope: scopes,
                ..d
            },
            1 => Denial {
                auth_error: None,
                error_code: Some("insufficient_scope".into()),
                required_scope: scopes,
                ..d
            },
            _ => Denial {
                http_status: Some(401),
                auth_error: Some("invalid_token".into()),
                error_code: Some("insufficient_scope".into()),
                required_scope: scopes,
                ..d
            },
        }
    };
    let code403 = *rng.pick(&[
        None,
        Some("AccessDenied"),
        Some("INSUFFICIENT_ACCESS"),
        Some("E0000006"),
    ]);
    let bare = move |d: Denial| -> Denial {
        Denial {
            auth_error: None,
            required_scope: Vec::new(),
            error_code: code403.map(str::to_string),
            ..d
        }
    };
    let form401 = rng.below(3);
    let refused = move |d: Denial| -> Denial {
        match form401 {
            0 => d,
            1 => Denial {
                auth_error: None,
                error_code: Some("E0000011".into()),
                error_message: Some("Invalid token provided".into()),
                ..d
            },
            _ => Denial {
                auth_error: None,
                ..d
            },
        }
    };
    // The failures of a group and, when it splits, of the second one.
    let failures = |w: &mut World, make: &dyn Fn(&str, i64) -> Record| -> Vec<Vec<EventRef>> {
        let mut groups = vec![w.series("a", n, t0, step, make)];
        if splits {
            groups.push(w.series("b", n1, t1, step, make));
        }
        groups
    };
    let before = |rng: &mut Lcg, lo_min: i64, hi_min: i64| t0 - rng.range(lo_min, hi_min) * MIN;
    let expect_all =
        |w: &mut World, groups: Vec<Vec<EventRef>>, e: &dyn Fn(&[EventRef]) -> Expect| {
            for g in groups {
                w.expect(e(&g));
            }
        };

    match kind {
        "scope_drift" => {
            let at = before(rng, 1, 20 * 60);
            w.add(c.snapshot("s0", at - HOUR, &[&read, &write]));
            let cause = w.add(TokenSnapshot {
                privileges_removed: vec![write.clone()],
                ..c.snapshot("s1", at, &[&read])
            });
            let required = format!("{scope}.write");
            let g = failures(w, &|name, t| {
                named(c.forbidden(name, t, &[]), &[required.as_str()]).into()
            });
            expect_all(w, g, &|f| Expect::new(ScopeDrift, f).high().cause(cause));
        }
        "scope_drift_warning" => {
            w.add(c.snapshot("s0", t0 - HOUR, &[&read, &write]));
            let cause = w.add(TokenSnapshot {
                privileges_removed: vec![write.clone()],
                ..c.snapshot("s1", t0, &[&read])
            });
            w.expect(Expect::warning(ScopeDrift, cause));
        }
        "insufficient_scope" => {
            let cause = w.add(c.snapshot("s0", before(rng, 1, 600), &[&write]));
            if rng.chance(50) {
                w.add(c.requests("get", t0 - t0 % HOUR, "GET", &c.operation, "2xx", 50));
            }
            let required = format!("{scope}.read");
            let also_write = format!("{scope}.write");
            let both = rng.chance(50);
            let g = failures(w, &|name, t| {
                let scopes: &[&str] = if both {
                    &[required.as_str(), also_write.as_str()]
                } else {
                    &[required.as_str()]
                };
                named(c.forbidden(name, t, &[]), scopes).into()
            });
            expect_all(w, g, &|f| {
                Expect::new(InsufficientScope, f).high().cause(cause)
            });
        }
        "environment_mismatch" => {
            let cause = w.add(c.snapshot("s0", before(rng, 1, 600), &[&read]));
            let other = Cred {
                env: "test".into(),
                tenant: format!("{tenant}-test"),
                app: format!("gen{i}-app-test"),
                ..c.clone()
            };
            w.add(other.snapshot("s0", before(rng, 1, 600), &[&read, &write]));
            let required = format!("{scope}.write");
            let g = failures(w, &|name, t| {
                named(c.forbidden(name, t, &[]), &[required.as_str()]).into()
            });
            expect_all(w, g, &|f| {
                Expect::new(EnvironmentMismatch, f).high().cause(cause)
            });
        }
        "audience_mismatch" => {
            let cause = w.add(TokenSnapshot {
                audience: vec![format!("https://other-{i}.example/")],
                ..c.snapshot("s0", before(rng, 1, 600), &[&read])
            });
            let g = failures(w, &|name, t| refused(c.unauthorized(name, t)).into());
            expect_all(w, g, &|f| {
                Expect::new(AudienceMismatch, f).high().cause(cause)
            });
        }
        "identity_mismatch" => {
            let action = *rng.pick(&["unexpected_identity", "identity_changed"]);
            let cause = w.add(c.drift(
                "id",
                before(rng, 1, 600),
                action,
                "arn:aws:sts::1:assumed-role/other/x",
            ));
            let g = failures(w, &|name, t| bare(c.forbidden(name, t, &[])).into());
            expect_all(w, g, &|f| {
                Expect::new(IdentityMismatch, f).high().cause(cause)
            });
        }
        "token_expired" => {
            let cause = if rng.chance(70) {
                w.add(TokenSnapshot {
                    expires_at_dt: Some(before(rng, 0, 60)),
                    ..c.snapshot("s0", before(rng, 120, 600), &[&read])
                })
            } else {
                let at = before(rng, 1, 300);
                w.add(c.snapshot("s0", at - HOUR, &[&read]));
                w.add(c.failed_probe("s1", at, "expired"))
            };
            let g = failures(w, &|name, t| refused(c.unauthorized(name, t)).into());
            expect_all(w, g, &|f| Expect::new(TokenExpired, f).high().cause(cause));
        }
        "credential_revoked" => {
            let cause = if unbound || rng.chance(50) {
                let mut change = c.vendor_change(
                    "revoke",
                    before(rng, 1, 23 * 60),
                    rng.pick::<&str>(&[
                        "client_secret.rotate",
                        "application.lifecycle.deactivate",
                        "oauth_access.revoke",
                    ]),
                    "application",
                    &c.app,
                );
                if !unbound && rng.chance(50) {
                    change.head.credential = c.name.clone();
                    change.target = Some("an application".into());
                }
                w.add(change)
            } else {
                let at = before(rng, 1, 300);
                w.add(c.snapshot("s0", at - HOUR, &[&read]));
                w.add(c.failed_probe(
                    "s1",
                    at,
                    rng.pick::<&str>(&["invalid_client", "inactive", "revoked"]),
                ))
            };
            let g = failures(w, &|name, t| refused(c.unauthorized(name, t)).into());
            expect_all(w, g, &|f| {
                Expect::new(CredentialRevoked, f).high().cause(cause)
            });
        }
        "permission_change" => {
            let (action, target_type) = *rng.pick(&[
                ("role.permission.removed", "role"),
                ("DetachRolePolicy", "policy"),
                ("member.remove", "team"),
                ("consent.revoke", "grant"),
                ("update", "PermissionSet"),
            ]);
            let cause = w.add(c.vendor_change(
                "perm",
                before(rng, 1, 23 * 60),
                action,
                target_type,
                &c.app,
            ));
            let g = failures(w, &|name, t| bare(c.forbidden(name, t, &[])).into());
            expect_all(w, g, &|f| {
                Expect::new(PermissionChange, f).high().cause(cause)
            });
        }
        "clock_skew" => {
            let cause = if rng.chance(70) {
                let skew = rng.range(60_001, 600_000) * if rng.chance(50) { 1 } else { -1 };
                w.add(TokenSnapshot {
                    server_skew_ms: Some(skew),
                    ..c.snapshot("s0", before(rng, 1, 600), &[&read])
                })
            } else {
                let valid_from = t0 + rng.range(1, 10) * MIN;
                w.add(TokenSnapshot {
                    issued_at_dt: Some(valid_from),
                    not_before_dt: Some(valid_from),
                    expires_at_dt: Some(valid_from + HOUR),
                    ..c.snapshot("s0", before(rng, 1, 5), &[&read])
                })
            };
            let g = failures(w, &|name, t| refused(c.unauthorized(name, t)).into());
            expect_all(w, g, &|f| Expect::new(ClockSkew, f).high().cause(cause));
        }
        "rate_limited" => {
            let bursts: Vec<EventRef> = (0..rng.range(1, 3))
                .map(|b| {
                    let start = t0 + b * 20 * MIN;
                    let i503 = if rng.chance(50) { rng.range(1, 100) } else { 0 };
                    let count = rng.range(30, 900);
                    w.add(c.burst(
                        &format!("b{b}"),
                        start,
                        start + rng.range(2, 10) * MIN,
                        count,
                        i503,
                    ))
                })
                .collect();
            w.expect(
                Expect::new(RateLimited, &bursts)
                    .high()
                    .cause_one_of(&bursts),
            );
        }
        "vendor_incident" => {
            let started = t0 + rng.range(-5, 5) * MIN;
            let resolved = last + rng.range(20, 120) * MIN;
            let form = rng.below(3);
            let components: &[&str] = match form {
                0 => &["Webhooks"],
                1 => &["API Requests"],
                _ if rng.chance(50) => &["API"],
                _ => &[],
            };
            let inc = StatusIncident::new(
                vendor,
                &format!("gen{i}"),
                "Service disruption",
                components,
                started,
            );
            w.add(inc.update(started, "investigating", None));
            if rng.chance(50) {
                w.add(inc.update(started + 10 * MIN, "identified", None));
            }
            let cause = w.add(inc.update(resolved, "resolved", Some(resolved)));
            let f = match form {
                0 => {
                    let hook = Hook::new(
                        vendor,
                        &tenant,
                        &format!("hook{i}"),
                        &format!("https://hooks.gen{i}.example/in"),
                    );
                    w.series("h", n, t0, step, |name, t| {
                        hook.failure(name, t, "timeout", None)
                    })
                }
                1 => vec![w.add(c.burst("b", t0, last + MIN, 200, 20))],
                _ => w.series("u", n, t0, step, |name, t| refused(c.unauthorized(name, t))),
            };
            w.expect(Expect::new(VendorIncident, &f).high().cause(cause));
        }
        "webhook_endpoint_failing" => {
            let hook = Hook::new(
                vendor,
                &tenant,
                &format!("hook{i}"),
                &format!("https://hooks.gen{i}.example/in"),
            );
            let cause = rng.chance(50).then(|| {
                w.add(hook.change("chg", before(rng, 1, 600), "hook.config_changed", "hook"))
            });
            let error = *rng.pick(&["timeout", "connect", "http_5xx", "pending", "dns", "tls"]);
            let g = failures(w, &|name, t| {
                WebhookFailure {
                    http_status: (error == "http_5xx").then_some(503),
                    ..hook.failure(name, t, error, None)
                }
                .into()
            });
            expect_all(w, g, &|f| {
                let e = Expect::new(WebhookEndpointFailing, f);
                match cause {
                    Some(cause) => e.cause(cause),
                    None => e,
                }
            });
        }
        "unexplained" => {
            if !unbound && rng.chance(50) {
                w.add(c.snapshot("s0", before(rng, 1, 600), &[&read]));
            }
            let g = failures(w, &|name, t| refused(c.unauthorized(name, t)).into());
            expect_all(w, g, &|f| Expect::new(Unexplained, f).low());
        }
        other => unreachable!("{other}"),
    }

    // Noise, none of which may be claimed.
    if rng.chance(40) {
        // The same role change, on another tenant.
        let elsewhere = Cred {
            tenant: format!("{tenant}-other"),
            ..bound.clone()
        };
        w.add(elsewhere.vendor_change(
            "n-role",
            t0 - HOUR,
            "role.permission.removed",
            "role",
            &c.app,
        ));
    }
    if rng.chance(40) {
        // An incident of the vendor on a component the failures do not use.
        let component = *rng.pick(&["Pages", "Dashboard", "Billing portal"]);
        let inc = StatusIncident::new(
            vendor,
            &format!("gen{i}-noise"),
            "Unrelated trouble",
            &[component],
            t0 - 10 * MIN,
        );
        w.add(inc.update(t0 - 10 * MIN, "investigating", None));
        w.add(inc.update(end + HOUR, "resolved", Some(end + HOUR)));
    }
    if rng.chance(40) {
        // An incident of the vendor on the very components, resolved before the failures
        // (and before the 30 minutes that status pages lag).
        let components: &[&str] = rng.pick::<&[&str]>(&[&["API"][..], &["Webhooks"][..], &[][..]]);
        let resolved = t0 - rng.range(31, 120) * MIN;
        let inc = StatusIncident::new(
            vendor,
            &format!("gen{i}-earlier"),
            "Earlier trouble",
            components,
            resolved - 3 * HOUR,
        );
        w.add(inc.update(resolved - 3 * HOUR, "investigating", None));
        w.add(inc.update(resolved, "resolved", Some(resolved)));
    }
    if rng.chance(40) {
        // Scattered 429s: never a burst.
        for (k, dt) in [-3 * HOUR, -2 * HOUR, 5 * HOUR].iter().enumerate() {
            w.add(c.rate_event(&format!("n-429-{k}"), t0 + dt, 429));
        }
    }
    if rng.chance(40) {
        w.add(c.requests("n-2xx", t0 - t0 % HOUR, "GET", &c.operation, "2xx", 100));
    }
    if rng.chance(40) {
        // Another credential of the tenant, and a role change naming its app.
        let other = Cred {
            name: Some(format!("gen{i}-other")),
            app: format!("gen{i}-other-app"),
            ..bound.clone()
        };
        w.add(other.snapshot("n-snap", t0 - 2 * HOUR, &[&read]));
        w.add(c.vendor_change(
            "n-other",
            t0 - HOUR,
            "role.permission.removed",
            "role",
            &other.app,
        ));
    }
    if rng.chance(40) {
        w.add(c.vendor_change(
            "n-session",
            t0 - 30 * MIN,
            "user.session.start",
            "User",
            "someone@acme.test",
        ));
    }
    if rng.chance(40) {
        // A role change naming the app, but more than 24 hours before.
        w.add(c.vendor_change(
            "n-old",
            t0 - DAY - rng.range(1, 600) * MIN,
            "role.permission.removed",
            "role",
            &c.app,
        ));
    }
    if rng.chance(40) {
        // A role change naming the app, after every failure.
        w.add(c.vendor_change(
            "n-after",
            end + rng.range(1, 120) * MIN,
            "role.permission.removed",
            "role",
            &c.app,
        ));
    }
    if !unbound
        && matches!(
            kind,
            "token_expired" | "audience_mismatch" | "clock_skew" | "unexplained"
        )
        && rng.chance(40)
    {
        // A healthy snapshot after every failure: it says nothing of the token they used.
        w.add(c.snapshot("n-later", end + rng.range(1, 120) * MIN, &[&read]));
    }
}

/// A finding's type, split into failures and warnings.
fn label(t: FindingType, severity: Severity) -> String {
    match severity {
        Severity::Warning => format!("{} (warning)", t.as_str()),
        Severity::Failure => t.as_str().to_string(),
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    expected: usize,
    found: usize,
    true_positives: usize,
    /// Findings that are exactly one expected group, or several expected groups of their type
    /// joined (one finding for failures that pause and resume with the same cause)...
    joined_found: usize,
    /// ...and the expected groups such findings cover.
    joined_recalled: usize,
}

/// Counts, per type: a finding is a true positive when an expectation has its type, severity
/// and exactly its group.
fn tally(w: &World, findings: &[Finding], table: &mut BTreeMap<String, Tally>) {
    let expected: Vec<(String, Vec<EventRef>)> = w
        .expected
        .iter()
        .map(|e| (label(e.finding_type, e.severity), group_key(&e.related)))
        .collect();
    let mut used = vec![false; expected.len()];
    let mut covered = vec![false; expected.len()];
    for e in &expected {
        table.entry(e.0.clone()).or_default().expected += 1;
    }
    for f in findings {
        let l = label(f.finding_type, f.severity);
        table.entry(l.clone()).or_default().found += 1;
        let g = group_key(&f.related);
        if let Some(k) =
            (0..expected.len()).find(|&k| !used[k] && expected[k].0 == l && expected[k].1 == g)
        {
            used[k] = true;
            table.get_mut(&l).expect("counted").true_positives += 1;
        }
        // The expected groups of this type inside the finding, if together they are all of it.
        let inside: Vec<usize> = (0..expected.len())
            .filter(|&k| expected[k].0 == l && expected[k].1.iter().all(|r| g.contains(r)))
            .collect();
        let mut union: Vec<EventRef> = inside.iter().flat_map(|&k| expected[k].1.clone()).collect();
        union.sort();
        if !inside.is_empty() && union == g {
            let t = table.get_mut(&l).expect("counted");
            t.joined_found += 1;
            for k in inside {
                if !covered[k] {
                    covered[k] = true;
                    t.joined_recalled += 1;
                }
            }
        }
    }
}

fn ratio(num: usize, den: usize) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

#[test]
fn precision_and_recall_per_finding_type() {
    let mut table: BTreeMap<String, Tally> = BTreeMap::new();
    let mut disagreements = Vec::new();
    for (name, make) in SCENARIOS {
        let w = make();
        let findings = run(&w.records);
        tally(&w, &findings, &mut table);
        let d = differences(&w, &findings);
        if !d.is_empty() {
            disagreements.push(format!("{name}: {} difference(s)", d.len()));
        }
    }
    let generated = generated_world(200, 0x5c09e7a11);
    let findings = run(&generated.records);
    tally(&generated, &findings, &mut table);
    let generated_differences = differences(&generated, &findings);

    println!(
        "\nprecision and recall per finding type ({} scenarios + 200 generated groups)",
        SCENARIOS.len()
    );
    println!(
        "{:<32} {:>8} {:>6} {:>5} {:>10} {:>7}   {:>11} {:>8}",
        "finding_type", "expected", "found", "exact", "precision", "recall", "exact p", "exact r"
    );
    let mut failing = Vec::new();
    for (l, t) in &table {
        let p = ratio(t.joined_found, t.found);
        let r = ratio(t.joined_recalled, t.expected);
        let show = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.3}"));
        println!(
            "{l:<32} {:>8} {:>6} {:>5} {:>10} {:>7}   {:>11} {:>8}",
            t.expected,
            t.found,
            t.true_positives,
            show(p),
            show(r),
            show(ratio(t.true_positives, t.found)),
            show(ratio(t.true_positives, t.expected)),
        );
        if p.unwrap_or(0.0) < 0.9 || r.unwrap_or(0.0) < 0.9 {
            failing.push(l.clone());
        }
    }
    println!(
        "(asserted: precision and recall >= 0.9, where a finding is right when it is exactly one\n \
         expected group of its type, or exactly several of them joined: clusters of one group that\n \
         pause and resume with the same cause are one finding; `exact`: one group only, not asserted)"
    );
    if !disagreements.is_empty() {
        println!(
            "\nscenarios that disagree with the engine (any field): {}",
            disagreements.join(", ")
        );
    }
    println!(
        "generated world: {} of {} expectations differ in some field",
        generated_differences
            .iter()
            .filter(|d| !d.starts_with("unexpected"))
            .count(),
        generated.expected.len()
    );
    // CORRELATION_DIFFERENCES=all prints every difference, not only the first few.
    let shown = match std::env::var("CORRELATION_DIFFERENCES").as_deref() {
        Ok("all") => usize::MAX,
        _ => 8,
    };
    for d in generated_differences.iter().take(shown) {
        println!("  {}", d.lines().take(3).collect::<Vec<_>>().join("\n    "));
    }
    assert!(
        failing.is_empty(),
        "precision or recall below 0.9 for: {}",
        failing.join(", ")
    );
}

/// The generated world, fed in another order, gives the same findings.
#[test]
fn the_generated_world_does_not_depend_on_record_order() {
    let w = generated_world(200, 0x5c09e7a11);
    let findings = run(&w.records);
    let mut shuffled: Vec<Record> = w.records.clone();
    Lcg(42).shuffle(&mut shuffled);
    let again = run(&shuffled);
    assert_eq!(findings.len(), again.len(), "as many findings");
    assert!(findings == again, "the same findings whatever the order");
}

/// The generator itself plants what it says: one expectation per group, every kind present.
#[test]
fn the_generated_world_covers_every_finding_type() {
    let w = generated_world(200, 0x5c09e7a11);
    assert!(
        w.expected.len() >= 200,
        "one expectation per group at least"
    );
    for t in FindingType::ALL {
        assert!(
            w.expected.iter().any(|e| e.finding_type == t),
            "{} planted",
            t.as_str()
        );
    }
    for (name, make) in SCENARIOS {
        let world = make();
        for e in &world.expected {
            assert!(
                !e.related.is_empty(),
                "{name}: an expectation without events"
            );
        }
    }
}

/// The checker itself, without the engine: an engine that wrote exactly what each scenario
/// expects passes it, and each kind of mistake is caught.
#[test]
fn the_checker_catches_wrong_findings() {
    for (name, make) in SCENARIOS {
        let w = make();
        let perfect: Vec<Finding> = w.expected.iter().map(|e| perfect_finding(&w, e)).collect();
        let d = differences(&w, &perfect);
        assert!(d.is_empty(), "{name}: a perfect engine fails: {d:#?}");
    }
    let w = worlds::seed_prod_token_lost_journal_write_in_a_permission_reset();
    let good = perfect_finding(&w, &w.expected[0]);
    let other = w.records.iter().find_map(|r| match r {
        Record::TokenSnapshots(s) => Some(EventRef {
            uid: s.head.event_uid,
            dataset: r.dataset(),
        }),
        _ => None,
    });
    type Mutation = Box<dyn Fn(&mut Vec<Finding>)>;
    let mutations: Vec<(&str, Mutation)> = vec![
        (
            "type",
            Box::new(|f| f[0].finding_type = EnvironmentMismatch),
        ),
        ("severity", Box::new(|f| f[0].severity = Severity::Warning)),
        (
            "confidence",
            Box::new(|f| f[0].confidence = scopetrail::analysis::correlate::Confidence::Medium),
        ),
        ("cause", Box::new(move |f| f[0].cause = other)),
        ("no cause", Box::new(|f| f[0].cause = None)),
        (
            "a failure short",
            Box::new(|f| {
                f[0].related.pop();
            }),
        ),
        (
            "a failure twice",
            Box::new(|f| {
                let r = f[0].related[0];
                f[0].related.push(r);
            }),
        ),
        (
            "an extra finding",
            Box::new(|f| {
                let mut x = f[0].clone();
                x.related.truncate(1);
                f.push(x);
            }),
        ),
        ("no finding", Box::new(|f| f.clear())),
        (
            "explanation",
            Box::new(|f| f[0].explanation = "something".into()),
        ),
        (
            "remediation order",
            Box::new(|f| {
                f[0].remediation =
                    "mint a new token, then grant gl:journal:write to erp-sync".into()
            }),
        ),
        ("alternatives", Box::new(|f| f[0].alternatives.clear())),
        ("first time", Box::new(|f| f[0].first_ms -= 1)),
        ("count", Box::new(|f| f[0].count += 1)),
    ];
    for (what, mutate) in mutations {
        let mut findings = vec![good.clone()];
        mutate(&mut findings);
        assert!(
            !differences(&w, &findings).is_empty(),
            "a wrong {what} goes unnoticed"
        );
    }
    let w = worlds::incidents_on_other_components_or_other_vendors_are_not_claimed();
    let mut findings: Vec<Finding> = w.expected.iter().map(|e| perfect_finding(&w, e)).collect();
    findings[0]
        .alternatives
        .push("vendor_incident (medium): Incident with Actions and Pages".into());
    assert!(
        !differences(&w, &findings).is_empty(),
        "a forbidden alternative goes unnoticed"
    );
}
