//! `scopetrail validate`: every problem, with file, line and column.

mod common;

use common::*;

/// The line and column of the first occurrence of `needle` in `text`, 1-based.
fn pos(text: &str, needle: &str) -> (usize, usize) {
    let offset = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in the text"));
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn expect_at(out: &str, file: &str, text: &str, needle: &str, message: &str) {
    let (line, col) = pos(text, needle);
    let prefix = format!("{file}:{line}:{col}: error:");
    assert!(
        out.lines()
            .any(|l| l.contains(&prefix) && l.contains(message)),
        "expected `{prefix} ...{message}...` in:\n{out}"
    );
}

#[test]
fn the_sample_configuration_is_valid_and_fires_are_listed() {
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/scopetrail.toml");
    let r = validate(&demo);
    r.assert_code(0);
    assert!(
        r.stdout
            .contains("valid (6 tenants, 5 sources, 5 credentials, 1 job)"),
        "{}",
        r.stdout
    );
    // The demo pins its clock to 2026-03-09 01:00.
    assert!(
        r.stdout.contains(
            "next fires 2026-03-16T00:00:00Z, 2026-03-23T00:00:00Z, 2026-03-30T00:00:00Z"
        ),
        "{}",
        r.stdout
    );
}

#[test]
fn six_field_cron_and_its_fires() {
    let s = Setup::new(
        &format!("{BASE_CONFIG}\n[clock]\nnow = \"2026-03-04T10:00:00Z\"\n"),
        &[(
            "hourly",
            "schedule = \"30 15 * * * *\"\nsources = [\"proxy\"]\n",
        )],
    );
    let r = validate(&s.config());
    r.assert_code(0);
    assert!(r.stdout.contains("exports on \"30 15 * * * *\" (UTC); next fires 2026-03-04T10:15:30Z, 2026-03-04T11:15:30Z, 2026-03-04T12:15:30Z"), "{}", r.stdout);
}

#[test]
fn every_problem_is_reported_with_its_position() {
    let config = r#"
[store]
kind = "local"
path = "out"
colour = "blue"

[tenants.acme]
environment = "prod"

[sources.proxy]
kind = "http_log"
tenant = "acme"
paths = ["logs/*"]
collect_every = "5d"
speling = 1

[sources.proxy.fields]
time = "ts"
status = "status"
methd = "method"

[[sources.proxy.hosts]]
host = "api.example.com"
vendor = "example"

[sources.other]
kind = "ftp_log"
tenant = "nowhere"

[privacy]
key = "env:SCOPETRAIL_TEST_UNSET_VARIABLE"
[privacy.columns]
actor_user = "hash"
http_status = "drop"

[[credentials]]
name = "erp-sync"
environment = "prod"
client_id = "erp-sync"
token = "ghp_16C7e42F292c6912E7710c838347Ae178B4a"
[[credentials.used_by]]
vendor = "oracle_fusion"
tenant = "acme"
hosts = ["fa-acme.oraclecloud.com"]

[[credentials]]
name = "gh"
environment = "prod"
token = "file:missing-token-file"
[[credentials.used_by]]
vendor = "example"
tenant = "acme"
"#;
    let bad_cron = "schedule = \"0 0 * *\"\nsources = [\"proxy\", \"scopetrail.self\"]\n";
    let first = "schedule = \"0 0 * * MON\"\nsources = [\"proxy\", \"scopetrail.self\"]\ndatasets = [\"denials\", \"webhook_failure\"]\n";
    let second = "schedule = \"0 12 * * *\"\nsources = [\"scopetrail.self\", \"proxy\", \"nope\"]\ndatasets = [\"denials\"]\n";
    let s = Setup::new(
        config,
        &[
            ("a-bad-cron", bad_cron),
            ("b-weekly", first),
            ("c-daily", second),
        ],
    );
    let r = validate(&s.config());
    r.assert_code(78);
    let out = &r.stdout;
    let main = s.config().display().to_string();
    let main = main.as_str();
    expect_at(out, main, config, "colour", "unknown key `colour`");
    expect_at(
        out,
        main,
        config,
        "speling",
        "unknown key `speling` in source `proxy`",
    );
    expect_at(
        out,
        main,
        config,
        "\"method\"",
        "source `proxy`: unknown field `methd` (fields: time, status, method,",
    );
    expect_at(
        out,
        main,
        config,
        "\"5d\"",
        "collect_every 5days is more than half the source's retention of 7days",
    );
    expect_at(out, main, config, "\"ftp_log\"", "unknown kind `ftp_log`");
    expect_at(
        out,
        main,
        config,
        "\"env:SCOPETRAIL_TEST_UNSET_VARIABLE\"",
        "environment variable SCOPETRAIL_TEST_UNSET_VARIABLE is not set",
    );
    expect_at(
        out,
        main,
        config,
        "\"drop\"",
        "`http_status` is not a personal-data column",
    );
    expect_at(
        out,
        main,
        config,
        "\"ghp_16C7",
        "expected a secret reference",
    );
    expect_at(
        out,
        main,
        config,
        "\"file:missing-token-file\"",
        "secret file:missing-token-file: cannot read",
    );
    expect_at(
        out,
        main,
        config,
        "[[credentials.used_by]]\nvendor = \"oracle_fusion\"",
        "is bound to (oracle_fusion, acme, fa-acme.oraclecloud.com), which no source covers",
    );
    let jobs = s.dir.path().join("jobs");
    let f = |name: &str| jobs.join(name).display().to_string();
    expect_at(
        out,
        &f("a-bad-cron.toml"),
        bad_cron,
        "\"0 0 * *\"",
        "expected 5 fields",
    );
    expect_at(
        out,
        &f("b-weekly.toml"),
        first,
        "\"webhook_failure\"",
        "unknown dataset `webhook_failure`",
    );
    expect_at(
        out,
        &f("c-daily.toml"),
        second,
        "\"nope\"",
        "lists source `nope`, which is not defined",
    );
    // Two jobs export (denials, proxy, acme) and (denials, scopetrail.self, acme).
    expect_at(
        out,
        &f("c-daily.toml"),
        second,
        "\"proxy\"",
        "jobs `b-weekly` and `c-daily` both export (denials, proxy, acme)",
    );
    expect_at(
        out,
        &f("c-daily.toml"),
        second,
        "\"scopetrail.self\"",
        "both export (denials, scopetrail.self, acme)",
    );
    expect_at(
        out,
        &f("b-weekly.toml"),
        first,
        "\"proxy\"",
        "both export (denials, proxy, acme)",
    );
    // A pasted secret is never echoed.
    assert!(!out.contains("ghp_16C7e42F"), "{out}");
    assert!(!r.stderr.contains("ghp_16C7e42F"), "{}", r.stderr);
    assert!(
        r.stderr.contains("configuration errors; nothing was run"),
        "{}",
        r.stderr
    );
}

#[test]
fn bad_toml_is_located() {
    let config =
        "[store]\nkind = \"local\"\npath = \"out\"\n\n[tenants.acme\nenvironment = \"prod\"\n";
    let s = Setup::new(config, &[]);
    let r = validate(&s.config());
    r.assert_code(78);
    let main = s.config().display().to_string();
    assert!(
        r.stdout.contains(&format!("{main}:5:")) && r.stdout.contains("invalid TOML"),
        "{}",
        r.stdout
    );
}

#[test]
fn run_refuses_an_invalid_configuration() {
    let s = Setup::new(
        &BASE_CONFIG.replace("kind = \"http_log\"", "kind = \"http_logs\""),
        &[("weekly", WEEKLY_JOB)],
    );
    let r = s.run("2026-03-09T01:00:00Z");
    r.assert_code(78);
    assert!(
        r.stderr.contains("unknown kind `http_logs`"),
        "{}",
        r.stderr
    );
    assert!(!s.out().exists(), "nothing was written");
}

#[test]
fn s3_store_problems_are_placed_and_credentials_refused() {
    let store = r#"[store]
kind = "s3"
bucket = "siem/evidence"
endpoint = "ftp://minio:9000"
kms_key_id = "arn:aws:kms:eu-west-1:1:key/x"
storage_class = "DEEP_ARCHIVE"
part_size_mib = 4444444
"#;
    let text = BASE_CONFIG.replace("[store]\nkind = \"local\"\npath = \"out\"\n", store);
    let s = Setup::new(&text, &[("weekly", WEEKLY_JOB)]);
    let r = validate(&s.config());
    r.assert_code(78);
    let file = s.config().display().to_string();
    expect_at(
        &r.stdout,
        &file,
        &text,
        "\"siem/evidence\"",
        "`bucket` must be a bucket name",
    );
    expect_at(
        &r.stdout,
        &file,
        &text,
        "\"ftp://",
        "`endpoint` must be an http(s) URL",
    );
    expect_at(
        &r.stdout,
        &file,
        &text,
        "\"arn:aws:kms",
        "`kms_key_id` needs `sse = \"aws:kms\"`",
    );
    expect_at(
        &r.stdout,
        &file,
        &text,
        "\"DEEP_ARCHIVE\"",
        "not one a SIEM can read",
    );
    expect_at(
        &r.stdout,
        &file,
        &text,
        "4444444",
        "`part_size_mib` must be between 5 and 5120",
    );

    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    let store = format!(
        "[store]\nkind = \"s3\"\nbucket = \"evidence\"\nsecret_access_key = \"{secret}\"\n"
    );
    let text = BASE_CONFIG.replace("[store]\nkind = \"local\"\npath = \"out\"\n", &store);
    let s = Setup::new(&text, &[("weekly", WEEKLY_JOB)]);
    let r = validate(&s.config());
    r.assert_code(78);
    expect_at(
        &r.stdout,
        &s.config().display().to_string(),
        &text,
        "secret_access_key",
        "credentials do not go in the configuration file",
    );
    assert!(!r.stdout.contains(secret) && !r.stderr.contains(secret));
}

#[test]
fn an_s3_store_over_plain_http_to_another_host_is_a_warning() {
    let store =
        "[store]\nkind = \"s3\"\nbucket = \"evidence\"\nendpoint = \"http://minio.lan:9000\"\n";
    let text = BASE_CONFIG.replace("[store]\nkind = \"local\"\npath = \"out\"\n", store);
    let s = Setup::new(&text, &[("weekly", WEEKLY_JOB)]);
    let r = validate(&s.config());
    r.assert_code(0);
    assert!(
        r.stdout.contains("warning:") && r.stdout.contains("plain http"),
        "{}",
        r.stdout
    );
}
