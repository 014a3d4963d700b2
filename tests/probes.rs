//! Credential snapshots and drift (issue: probes, drift, `scopetrail snapshot`): the real
//! binary against a fake identity provider, JWKS, introspection endpoint, STS
//! (tests/idp_support) and GitHub (tests/github_support) on loopback, with tokens signed at
//! test time with real RS256 and ES256 keys.

mod common;
mod fake_http;
mod github_support;
mod idp_support;

use chrono::Utc;
use common::{Row, Run, Setup, rows};
use idp_support::{Client, FakeIdp, TestKeys};
use serde_json::json;

const PROD_SECRET: &str = "prod-client-secret-0f9e8d7c";
const TEST_SECRET: &str = "test-client-secret-1a2b3c4d";
const GH_TOKEN: &str = "ghp_SnapshotTokenNeverToBeSeen0123";

const HOURLY: &str = r#"
schedule = "0 * * * *"
sources = ["scopetrail.snapshot", "scopetrail.drift"]
datasets = ["token_snapshots", "changes"]
"#;

fn head() -> String {
    r#"
[store]
kind = "local"
path = "out"
[tenants.erp]
environment = "prod"
[tenants.erp-test]
environment = "test"
"#
    .to_string()
}

/// An OAuth2 client-credentials credential in `environment`, bound to `tenant`.
fn oauth2(idp: &FakeIdp, env: &str, client_id: &str, secret_var: &str, extra: &str) -> String {
    let tenant = if env == "prod" { "erp" } else { "erp-test" };
    format!(
        r#"
[[credentials]]
name = "erp-sync"
environment = "{env}"
issuer = "{iss}"
client_id = "{client_id}"
[credentials.probe]
kind = "oauth2"
token_url = "{token}"
client_secret = "env:{secret_var}"
scope = "gl:journal:read gl:journal:write"
jwks_url = "{keys}"
{extra}
[[credentials.used_by]]
vendor = "okta"
tenant = "{tenant}"
"#,
        iss = idp.url("/"),
        token = idp.url("/token"),
        keys = idp.url("/keys"),
    )
}

fn snapshot(setup: &Setup, args: &[&str]) -> Run {
    let mut cmd = common::bin();
    if args.contains(&"-vv") {
        cmd.env("SCOPETRAIL_LOG", "trace");
    }
    cmd.arg("snapshot")
        .arg("--config")
        .arg(setup.config())
        .args(args);
    cmd.env("ERP_PROD_SECRET", PROD_SECRET)
        .env("ERP_TEST_SECRET", TEST_SECRET)
        .env("GH_TOKEN", GH_TOKEN);
    Run::of(cmd.output().expect("the scopetrail binary runs"))
}

/// A run two hours on: it takes a snapshot of its own (staged segments are exported whatever
/// their times, DESIGN §2.3), then exports.
fn export(setup: &Setup) -> Run {
    let now = (Utc::now() + chrono::Duration::hours(2))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    common::run(
        &setup.config(),
        &["--now", &now],
        &[
            ("ERP_PROD_SECRET", PROD_SECRET),
            ("ERP_TEST_SECRET", TEST_SECRET),
            ("GH_TOKEN", GH_TOKEN),
        ],
    )
}

fn okta_client(secret: &str, scp: &[&str]) -> Client {
    let mut c = Client::new(
        secret,
        "ES256",
        json!({"ver": 1, "aud": "api://erp", "sub": "erp-prod", "cid": "erp-prod", "scp": scp}),
    );
    c.expires_in = 3600;
    c
}

fn by_time(mut rows: Vec<(String, Row)>) -> Vec<Row> {
    rows.sort_by(|a, b| {
        (a.1["time"].clone(), a.1["event_uid"].clone())
            .cmp(&(b.1["time"].clone(), b.1["event_uid"].clone()))
    });
    rows.into_iter().map(|(_, r)| r).collect()
}

#[test]
fn okta_client_credentials_a_dropped_scope_then_a_rotated_secret() {
    let idp = FakeIdp::start();
    idp.set_client(
        "erp-prod",
        okta_client(PROD_SECRET, &["gl:journal:read", "gl:journal:write"]),
    );
    let config = head()
        + &oauth2(
            &idp,
            "prod",
            "erp-prod",
            "ERP_PROD_SECRET",
            "profile = \"okta\"",
        );
    let setup = Setup::new(&config, &[("hourly", HOURLY)]);

    let first = snapshot(&setup, &[]);
    first.assert_code(0);
    assert!(
        first.stdout.contains("erp-sync")
            && first
                .stdout
                .contains("scp:gl:journal:read scp:gl:journal:write"),
        "{}",
        first.stdout
    );
    first.says("nothing changed");
    let asked = &idp.token_requests()[0];
    assert!(asked.basic, "Okta's default is client_secret_basic");
    assert_eq!(
        asked.form.get("scope").map(String::as_str),
        Some("gl:journal:read gl:journal:write")
    );
    assert!(!asked.form.contains_key("client_secret"));

    idp.set_client("erp-prod", okta_client(PROD_SECRET, &["gl:journal:read"]));
    let second = snapshot(&setup, &[]);
    second.assert_code(0);
    second.says("erp-sync (prod): privileges_removed: removed=scp:gl:journal:write");

    idp.set_client(
        "erp-prod",
        okta_client("rotated-secret-99887766", &["gl:journal:read"]),
    );
    let third = snapshot(&setup, &[]);
    third.assert_code(1);
    third.says("invalid_client");
    third.says("probe_failing: status=invalid_client after a successful probe");
    // The fixture's error_description is what the engineer reads.
    third.says("No client credentials found");

    export(&setup).assert_code(0);
    let out = setup.out();
    let snaps = by_time(rows(&out, "token_snapshots"));
    let statuses: Vec<&str> = snaps.iter().map(|r| r["status"].as_str()).collect();
    // The last is the exporting run's own snapshot: still failing, so no new drift.
    assert_eq!(
        statuses,
        ["ok", "ok", "invalid_client", "invalid_client"],
        "{snaps:#?}"
    );
    let first = &snaps[0];
    assert_eq!(first["source"], "scopetrail.snapshot");
    assert_eq!(first["vendor"], "okta");
    assert_eq!(first["tenant"], "erp");
    assert_eq!(first["credential"], "erp-sync");
    assert_eq!(first["probe"], "oauth2");
    assert_eq!(
        first["credential_uid"],
        format!("{}#erp-prod", idp.url("/"))
    );
    assert_eq!(first["actor_app"], "erp-prod");
    assert_eq!(first["audience"], "api://erp");
    assert_eq!(first["issuer"], idp.url("/"));
    assert_eq!(
        first["privileges"],
        "scp:gl:journal:read scp:gl:journal:write"
    );
    assert_eq!(
        first["privileges_requested"],
        "scp:gl:journal:read scp:gl:journal:write"
    );
    assert!(first["expires_at_dt"].ends_with('Z') && !first["issued_at_dt"].is_empty());
    let skew: i64 = first["server_skew_ms"].parse().expect("skew is a number");
    assert!(
        skew.abs() <= 1000,
        "a server on this host is in sync: {skew}"
    );
    assert_eq!(snaps[1]["privileges_removed"], "scp:gl:journal:write");
    assert_eq!(snaps[1]["privileges_added"], "");
    // A failed probe knows nothing of privileges: null, not empty.
    assert_eq!(snaps[2]["privileges"], "");
    assert_eq!(snaps[2]["privileges_removed"], "");

    let drift: Vec<Row> = by_time(rows(&out, "changes"));
    let actions: Vec<&str> = drift.iter().map(|r| r["action"].as_str()).collect();
    assert_eq!(
        actions,
        ["privileges_removed", "probe_failing"],
        "{drift:#?}"
    );
    assert!(drift.iter().all(|r| r["source"] == "scopetrail.drift"
        && r["target"] == "erp-sync (prod)"
        && r["credential"] == "erp-sync"));
    assert_no_secrets(&setup, &idp, &[&first_run_text(&[&third, &second])]);
}

fn first_run_text(runs: &[&Run]) -> String {
    runs.iter()
        .map(|r| format!("{}{}", r.stdout, r.stderr))
        .collect()
}

/// No client secret and no access token handed out is in any file under the setup, or in
/// the output given.
fn assert_no_secrets(setup: &Setup, idp: &FakeIdp, outputs: &[&str]) {
    let mut secrets: Vec<String> = vec![PROD_SECRET.into(), TEST_SECRET.into(), GH_TOKEN.into()];
    secrets.extend(idp.issued());
    for entry in walkdir::WalkDir::new(setup.config().parent().expect("dir"))
        .into_iter()
        .flatten()
    {
        if !entry.file_type().is_file() || entry.path().extension().is_some_and(|e| e == "toml") {
            continue;
        }
        let bytes = std::fs::read(entry.path()).expect("readable");
        let text = if entry.path().to_string_lossy().ends_with(".gz") {
            String::from_utf8_lossy(&common::gunzip(entry.path())).into_owned()
        } else {
            String::from_utf8_lossy(&bytes).into_owned()
        };
        for s in &secrets {
            assert!(
                !text.contains(s.as_str()),
                "a secret is in {}",
                entry.path().display()
            );
        }
    }
    for out in outputs {
        for s in &secrets {
            assert!(
                !out.contains(s.as_str()),
                "a secret is in the output:\n{out}"
            );
        }
    }
}

#[test]
fn entra_and_auth0_claim_shapes_signed_rs256() {
    let idp = FakeIdp::start();
    let mut entra = Client::new(
        PROD_SECRET,
        "RS256",
        json!({
            "aud": "api://5e1f-erp", "appid": "erp-prod", "sub": "sp-object-id",
            "scp": "Journal.Read Journal.Write", "roles": ["Ledger.Admin"],
        }),
    );
    entra.scope = None;
    idp.set_client("erp-prod", entra);
    let auth0 = Client::new(
        TEST_SECRET,
        "RS256",
        json!({
            "aud": ["https://erp.example.com/api"], "azp": "erp-test", "sub": "erp-test@clients",
            "scope": "read:journal", "permissions": ["read:journal", "post:journal"],
        }),
    );
    idp.set_client("erp-test", auth0);
    let config = head()
        + &oauth2(
            &idp,
            "prod",
            "erp-prod",
            "ERP_PROD_SECRET",
            "profile = \"entra\"",
        )
        .replace(
            "scope = \"gl:journal:read gl:journal:write\"",
            "scope = \"api://5e1f-erp/.default\"",
        )
        + &oauth2(
            &idp,
            "test",
            "erp-test",
            "ERP_TEST_SECRET",
            "profile = \"auth0\"\naudience = \"https://erp.example.com/api\"",
        );
    let setup = Setup::new(&config, &[("hourly", HOURLY)]);
    // Traced to the wire (-vv): secrets posted in the form and tokens in the answers too.
    let run = snapshot(&setup, &["-vv"]);
    run.assert_code(0);
    assert!(run.stderr.contains("TRACE"), "traced: {}", run.stderr);
    run.says("role:Ledger.Admin scp:Journal.Read scp:Journal.Write");
    run.says("perm:post:journal perm:read:journal scp:read:journal");
    // Both profiles post the client's credentials in the form; Auth0 names its API.
    let requests = idp.token_requests();
    assert!(
        requests
            .iter()
            .all(|r| !r.basic && r.form.contains_key("client_secret")),
        "{requests:?}"
    );
    let auth0 = requests
        .iter()
        .find(|r| r.client_id == "erp-test")
        .expect("auth0 asked");
    assert_eq!(
        auth0.form.get("audience").map(String::as_str),
        Some("https://erp.example.com/api")
    );
    // Same logical credential, different privileges: an environment mismatch, once.
    run.says("environment_mismatch");
    let again = snapshot(&setup, &[]);
    assert!(
        !again.stdout.contains("environment_mismatch"),
        "{}",
        again.stdout
    );
    export(&setup).assert_code(0);
    let mismatch: Vec<Row> = rows(&setup.out(), "changes")
        .into_iter()
        .map(|(_, r)| r)
        .filter(|r| r["action"] == "environment_mismatch")
        .collect();
    assert_eq!(mismatch.len(), 2, "one row per environment: {mismatch:#?}");
    assert!(
        mismatch[0]["details"]
            .contains("only_in_prod=role:Ledger.Admin,scp:Journal.Read,scp:Journal.Write"),
        "{mismatch:#?}"
    );
    assert_no_secrets(&setup, &idp, &[&run.stdout, &run.stderr]);

    // RFC 6749 §5.2 `invalid_scope`, with the server's description (the Okta fixture).
    let mut refused = idp.client("erp-test");
    refused.refuse_scope = true;
    idp.set_client("erp-test", refused);
    let refused = snapshot(&setup, &["--credential", "erp-sync"]);
    refused.assert_code(1);
    refused.says("erp-sync    test  oauth2  invalid_scope");
    refused.says("No scopes were requested.");
}

/// The JWT an integration keeps in a file: expiry horizon, expired, unsigned, forged.
#[test]
fn a_saved_jwt_expiring_expired_unsigned_and_forged() {
    let idp = FakeIdp::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let token_file = dir.path().join("token.jwt");
    let now = Utc::now().timestamp();
    // A 30-day token: long-lived enough for the expiry horizon to matter.
    let claims = |exp: i64| json!({"iss": idp.url("/"), "aud": "api://erp", "sub": "svc", "cid": "erp-prod", "scp": ["gl:journal:read"], "iat": now - 27 * 86_400, "exp": exp});
    std::fs::write(
        &token_file,
        idp.keys().sign("ES256", &claims(now + 3 * 86_400)),
    )
    .expect("token");
    let config = format!(
        "{}\n[[credentials]]\nname = \"erp-sync\"\nenvironment = \"prod\"\nissuer = \"{iss}\"\nclient_id = \"erp-prod\"\n[credentials.probe]\nkind = \"jwt\"\ntoken = \"file:{file}\"\njwks_url = \"{keys}\"\n[[credentials.used_by]]\nvendor = \"okta\"\ntenant = \"erp\"\n",
        head(),
        iss = idp.url("/"),
        file = token_file.display(),
        keys = idp.url("/keys"),
    );
    let setup = Setup::new(&config, &[("hourly", HOURLY)]);
    let run = snapshot(&setup, &[]);
    run.assert_code(0);
    assert!(
        run.stdout.contains("token_expiring"),
        "within the default 7-day horizon: {}",
        run.stdout
    );
    assert!(
        run.stdout.contains("in 2d 23h") || run.stdout.contains("in 3d"),
        "{}",
        run.stdout
    );
    // Said once, not every hour.
    let again = snapshot(&setup, &[]);
    again.says("nothing changed");

    std::fs::write(&token_file, idp.keys().sign("RS256", &claims(now - 60))).expect("token");
    let expired = snapshot(&setup, &[]);
    expired.assert_code(1);
    expired.says("token_expired");

    std::fs::write(&token_file, TestKeys::unsigned(&claims(now + 86_400))).expect("token");
    let unsigned = snapshot(&setup, &[]);
    assert!(
        unsigned.stdout.contains("unsigned") && unsigned.stdout.contains("not trusted"),
        "{}",
        unsigned.stdout
    );

    // Signed by someone else's key with the issuer's key id: it must not verify.
    let forged = TestKeys::generate().sign("ES256", &claims(now + 86_400));
    std::fs::write(&token_file, &forged).expect("token");
    let bad = snapshot(&setup, &[]);
    bad.says("invalid_signature");

    export(&setup).assert_code(0);
    let statuses: Vec<String> = by_time(rows(&setup.out(), "token_snapshots"))
        .into_iter()
        .map(|r| r["status"].clone())
        .collect();
    assert_eq!(
        statuses,
        [
            "ok",
            "ok",
            "expired",
            "unsigned",
            "invalid_signature",
            "invalid_signature"
        ],
        "{:#?}",
        by_time(rows(&setup.out(), "token_snapshots"))
            .iter()
            .map(|r| (r["time_dt"].clone(), r["status"].clone()))
            .collect::<Vec<_>>()
    );
    let text = std::fs::read_to_string(&token_file).expect("token");
    for entry in walkdir::WalkDir::new(setup.out())
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
    {
        let bytes = if entry.path().to_string_lossy().ends_with(".gz") {
            common::gunzip(entry.path())
        } else {
            std::fs::read(entry.path()).expect("file")
        };
        assert!(
            !String::from_utf8_lossy(&bytes).contains(text.trim()),
            "the token is in {}",
            entry.path().display()
        );
    }
}

/// An opaque token, introspected; `active: false` is a snapshot, not an error.
#[test]
fn introspection_active_then_inactive() {
    let idp = FakeIdp::start();
    idp.set_client("erp-prod", Client::new(PROD_SECRET, "opaque", json!({})));
    let fixture: serde_json::Value = serde_json::from_str(include_str!(
        "fixtures/oauth/rfc7662-2.2-introspection-active.json"
    ))
    .expect("fixture");
    let opaque = "2YotnFZFEjr1zCsicMWpAA-opaque";
    let mut claims = fixture.clone();
    claims["exp"] = json!(Utc::now().timestamp() + 30 * 86_400);
    idp.set_active(opaque, Some(claims));
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("opaque.token"), opaque).expect("token");
    let config = format!(
        "{}\n[[credentials]]\nname = \"partner-api\"\nenvironment = \"prod\"\nissuer = \"https://server.example.com/\"\nclient_id = \"erp-prod\"\n[credentials.probe]\nkind = \"introspection\"\nintrospection_url = \"{url}\"\ntoken = \"file:{file}\"\nclient_secret = \"env:ERP_PROD_SECRET\"\n[[credentials.used_by]]\nvendor = \"okta\"\ntenant = \"erp\"\n",
        head(),
        url = idp.url("/introspect"),
        file = dir.path().join("opaque.token").display(),
    );
    let setup = Setup::new(&config, &[("hourly", HOURLY)]);
    let run = snapshot(&setup, &[]);
    run.assert_code(0);
    run.says("scp:dolphin scp:read scp:write");
    idp.set_active(opaque, None);
    let revoked = snapshot(&setup, &[]);
    revoked.assert_code(1);
    assert!(
        revoked.stdout.contains("inactive") && revoked.stdout.contains("probe_failing"),
        "{}",
        revoked.stdout
    );
    export(&setup).assert_code(0);
    let snaps = by_time(rows(&setup.out(), "token_snapshots"));
    assert_eq!(snaps[0]["actor_app"], "l238j323ds-23ij4");
    assert_eq!(snaps[0]["subject"], "Z5O3upPC88QrAjx00dis");
    assert_eq!(
        snaps[0]["audience"],
        "https://protected.example.net/resource"
    );
    assert_eq!(snaps[1]["status"], "inactive");
    assert_no_secrets(&setup, &idp, &[&revoked.stdout, &revoked.stderr]);
    assert!(!revoked.stdout.contains(opaque) && !revoked.stderr.contains(opaque));
}

#[test]
fn github_token_scopes_expiry_and_unknown_privileges() {
    let gh = github_support::FakeGitHub::start(GH_TOKEN);
    gh.set_granted_scopes(&["repo", "admin:org_hook"]);
    gh.set_token_expiration(Some("2030-01-01 00:00:00 UTC"));
    let config = format!(
        "{}\n[tenants.acme]\nenvironment = \"prod\"\n[[credentials]]\nname = \"release-bot\"\nenvironment = \"prod\"\ntoken = \"env:GH_TOKEN\"\n[credentials.probe]\nkind = \"github\"\napi_url = \"{}\"\n[[credentials.used_by]]\nvendor = \"github\"\ntenant = \"acme\"\n",
        head(),
        gh.base_url()
    );
    let setup = Setup::new(&config, &[("hourly", HOURLY)]);
    let run = snapshot(&setup, &[]);
    run.assert_code(0);
    run.says("scp:admin:org_hook scp:repo");
    // A fine-grained token: no scope header, so its privileges are unknown, not empty.
    gh.set_scope_header(false);
    let fine = snapshot(&setup, &[]);
    fine.assert_code(0);
    assert!(
        fine.stdout.contains("unknown") && fine.stdout.contains("privileges_unknown"),
        "{}",
        fine.stdout
    );
    assert!(
        !fine.stdout.contains("privileges_removed"),
        "{}",
        fine.stdout
    );
    export(&setup).assert_code(0);
    let snaps = by_time(rows(&setup.out(), "token_snapshots"));
    assert_eq!(snaps[0]["identity"], "acme-bot");
    assert_eq!(snaps[0]["token_type"], "pat_classic");
    assert_eq!(snaps[0]["expires_at_dt"], "2030-01-01T00:00:00.000Z");
    assert_eq!(snaps[1]["privileges"], "", "null");
    use base64::Engine;
    use sha2::Digest;
    let hashed =
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(GH_TOKEN.as_bytes()));
    assert_eq!(snaps[0]["credential_uid"], hashed, "GitHub's hashed_token");
}

#[test]
fn aws_caller_identity_against_the_expected_one_and_a_skewed_clock() {
    let idp = FakeIdp::start();
    let fixture: serde_json::Value = serde_json::from_str(include_str!(
        "fixtures/aws/sts-get-caller-identity-assumed-role.json"
    ))
    .expect("fixture");
    let s = |k: &str| fixture[k].as_str().unwrap_or_default().to_string();
    idp.set_sts_identity(&s("Account"), &s("Arn"), &s("UserId"));
    idp.set_skew(600);
    let config = format!(
        "{}\n[tenants.aws-prod]\nenvironment = \"prod\"\n[[credentials]]\nname = \"erp-s3-writer\"\nenvironment = \"prod\"\naccess_key_id = \"AKIAIOSFODNN7EXAMPLE\"\n[credentials.probe]\nkind = \"aws\"\nregion = \"us-east-1\"\nendpoint = \"{}\"\nexpected_identity = \"arn:aws:iam::123456789012:user/erp-s3-writer\"\n[[credentials.used_by]]\nvendor = \"aws\"\ntenant = \"aws-prod\"\n",
        head(),
        idp.url("/sts/")
    );
    let setup = Setup::new(&config, &[("hourly", HOURLY)]);
    let mut cmd = common::bin();
    cmd.arg("snapshot").arg("--config").arg(setup.config());
    cmd.env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
        .env(
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        )
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    let run = Run::of(cmd.output().expect("runs"));
    run.assert_code(0);
    run.says("unexpected_identity: identity=arn:aws:sts::123456789012:assumed-role/my-role-name/my-role-session-name");
    assert!(
        run.stdout.contains("clock_skew: server_skew_ms=600000")
            || run.stdout.contains("clock_skew: server_skew_ms=599000")
            || run.stdout.contains("clock_skew: server_skew_ms=601000"),
        "{}",
        run.stdout
    );
    assert!(!format!("{}{}", run.stdout, run.stderr).contains("wJalrXUtnFEMI"));
}

#[test]
fn validate_names_what_a_probe_lacks() {
    let config = format!(
        "{}\n[[credentials]]\nname = \"a\"\nenvironment = \"prod\"\nclient_id = \"x\"\n[credentials.probe]\nkind = \"oauth2\"\nprofile = \"entra\"\ntoken_url = \"http://login.example.com/token\"\nclient_secret = \"s3cr3t-pasted-here\"\n\n[[credentials]]\nname = \"b\"\nenvironment = \"prod\"\ntoken = \"env:GH_TOKEN\"\n[credentials.probe]\nkind = \"gitlab\"\n",
        head()
    );
    let setup = Setup::new(&config, &[]);
    let run = common::validate(&setup.config());
    run.assert_code(78);
    let text = format!("{}{}", run.stdout, run.stderr);
    for expected in [
        "profile entra needs scope",
        "client_secret: expected a secret reference",
        "token_url: ",
        "a probed credential needs [[credentials.used_by]]",
        "gitlab",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(!text.contains("s3cr3t-pasted-here"), "{text}");
}

/// Snapshot segments are deleted like any source's once every job that exports them has done
/// so `staging_retention` ago.
#[test]
fn snapshot_staging_is_cleaned_up_after_export() {
    let idp = FakeIdp::start();
    idp.set_client("erp-prod", okta_client(PROD_SECRET, &["gl:journal:read"]));
    let config = head()
        + "[defaults]\nstaging_retention = \"1m\"\n"
        + &oauth2(&idp, "prod", "erp-prod", "ERP_PROD_SECRET", "");
    let setup = Setup::new(&config, &[("hourly", HOURLY)]);
    snapshot(&setup, &[]).assert_code(0);
    let staged = || {
        let dir = setup.out().join("_state/staging/scopetrail.snapshot");
        std::fs::read_dir(dir).map_or(0, |d| {
            d.flatten()
                .filter(|e| {
                    let n = e.file_name().to_string_lossy().to_string();
                    n.ends_with(".jsonl.gz") && !n.starts_with('.')
                })
                .count()
        })
    };
    assert!(staged() >= 1, "the snapshot is staged");
    export(&setup).assert_code(0);
    let later = (Utc::now() + chrono::Duration::hours(3))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    common::run(
        &setup.config(),
        &["--now", &later],
        &[("ERP_PROD_SECRET", PROD_SECRET)],
    )
    .assert_code(0);
    assert_eq!(
        staged(),
        1,
        "only the newest run's segment, not yet exported, is left"
    );
}

/// A token endpoint that redirects gets no secret sent on, and a server cannot name its own
/// refusal `ok`.
#[test]
fn a_redirect_carries_no_secret_and_a_server_cannot_say_ok() {
    let idp = FakeIdp::start();
    let elsewhere = FakeIdp::start();
    idp.set_client("erp-prod", okta_client(PROD_SECRET, &["gl:journal:read"]));
    let config = head()
        + &oauth2(
            &idp,
            "prod",
            "erp-prod",
            "ERP_PROD_SECRET",
            "auth = \"client_secret_post\"",
        );
    let setup = Setup::new(&config, &[("hourly", HOURLY)]);
    idp.set_token_answer(307, "", Some(&elsewhere.url("/token")));
    let redirected = snapshot(&setup, &[]);
    redirected.assert_code(1);
    redirected.says("http_307");
    assert!(
        elsewhere.paths().is_empty(),
        "followed to {:?}",
        elsewhere.paths()
    );

    idp.set_token_answer(
        400,
        r#"{"error":"ok","error_description":"fine\nok"}"#,
        None,
    );
    let lying = snapshot(&setup, &[]);
    lying.assert_code(1);
    lying.says("http_400");
    assert!(!lying.stdout.contains("  ok  "), "{}", lying.stdout);
}

/// A 429 from the token endpoint is waited out, and staged as scopetrail's own (DESIGN §7),
/// never as the integration's.
#[test]
fn the_probes_own_429_is_retried_and_staged_as_scopetrail_self() {
    let idp = FakeIdp::start();
    idp.set_client("erp-prod", okta_client(PROD_SECRET, &["gl:journal:read"]));
    idp.rate_limit_next(1);
    let config = head() + &oauth2(&idp, "prod", "erp-prod", "ERP_PROD_SECRET", "");
    let setup = Setup::new(&config, &[("hourly", HOURLY)]);
    snapshot(&setup, &[])
        .assert_code(0)
        .says("scp:gl:journal:read");
    assert_eq!(idp.paths().iter().filter(|p| *p == "/token").count(), 2);
    let staged = setup.out().join("_state/staging/scopetrail.snapshot");
    let segments: Vec<std::path::PathBuf> = std::fs::read_dir(&staged)
        .expect("staged")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().to_string());
            name.is_some_and(|n| n.ends_with(".jsonl.gz") && !n.starts_with('.'))
        })
        .collect();
    let scratch = tempfile::tempdir().expect("scratch");
    let mut merge = scopetrail::staging::Merge::open(&segments, scratch.path()).expect("merge");
    let mut own = Vec::new();
    while let Some(record) = merge.next_record().expect("a staged record") {
        if record.head().source == "scopetrail.self" {
            own.push(record);
        }
    }
    assert_eq!(own.len(), 1, "{own:#?}");
    let scopetrail::model::Record::RateLimitEvents(e) = &own[0] else {
        panic!("not a rate-limit event: {:?}", own[0]);
    };
    assert_eq!(e.http_status, Some(429));
    assert_eq!(e.retry_after_s, Some(1));
    assert_eq!(e.ratelimit_limit, Some(600));
    assert_eq!(e.api_operation.as_deref(), Some("/token"));
    assert_eq!(e.http_method.as_deref(), Some("POST"));
    assert_eq!(e.head.vendor, "okta");
    assert_eq!(e.head.credential.as_deref(), Some("erp-sync"));
}
