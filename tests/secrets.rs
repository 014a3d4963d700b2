//! Secrets never appear in any output: files, staging, state, logs, the summary. Personal data
//! is hashed or dropped as configured before anything is written.

mod common;

use common::*;

const TOKEN: &str = "ghp_TESTtokenValue0123456789abcdefghijklmnop";
const PRIVACY_KEY: &str = "privacy-key-s3cr3t-value-0123456789";

#[test]
fn no_secret_in_any_output_and_personal_data_hashed() {
    let config = BASE_CONFIG.replace(
        "user_agent = \"agent\"",
        "user_agent = \"agent\"\nuser = \"user\"",
    ) + r#"
[privacy]
key = "env:SCOPETRAIL_TEST_PRIVACY_KEY"
[privacy.columns]
actor_user = "hash"

[[credentials]]
name = "release-bot"
environment = "prod"
token = "env:SCOPETRAIL_TEST_TOKEN"
[[credentials.used_by]]
vendor = "example"
tenant = "acme"
hosts = ["api.example.com"]
"#;
    let s = Setup::new(&config, &[("weekly", WEEKLY_JOB)]);
    s.append(
        "a.log",
        &[serde_json::json!({"ts": "2026-03-05T10:00:00Z", "status": 401, "url": "https://api.example.com/v1/x",
            "user": "alice@example.com", "rid": "r1"})
        .to_string()],
    );
    let env = [
        ("SCOPETRAIL_TEST_TOKEN", TOKEN),
        ("SCOPETRAIL_TEST_PRIVACY_KEY", PRIVACY_KEY),
    ];
    let mut outputs = String::new();
    for now in ["2026-03-08T00:00:00Z", "2026-03-09T01:00:00Z"] {
        let r = run(
            &s.config(),
            &["--now", now, "-vv", "--log-format", "json"],
            &env,
        );
        r.assert_code(0);
        outputs.push_str(&r.stdout);
        outputs.push_str(&r.stderr);
    }

    let rows = rows(&s.out(), "denials");
    assert_eq!(rows.len(), 1);
    let row = &rows[0].1;
    assert_eq!(row["credential"], "release-bot", "attributed by host");
    // base64(SHA-256(token)), GitHub's hashed_token, computed here independently.
    use base64::Engine;
    use sha2::Digest;
    let expected =
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(TOKEN.as_bytes()));
    assert_eq!(row["credential_uid"], expected);
    assert!(
        row["actor_user"].starts_with("hmac:"),
        "{}",
        row["actor_user"]
    );

    // Every byte written anywhere, decompressed where gzip, and everything printed.
    let mut everything = outputs.into_bytes();
    for entry in walkdir::WalkDir::new(s.dir.path()).into_iter().flatten() {
        if entry.file_type().is_file() && entry.path() != s.config() {
            let bytes = std::fs::read(entry.path()).expect("read");
            if bytes.starts_with(&[0x1f, 0x8b]) {
                everything.extend(gunzip(entry.path()));
            } else {
                everything.extend(bytes);
            }
        }
    }
    let haystack = String::from_utf8_lossy(&everything);
    assert!(
        haystack.contains(&expected) && haystack.contains("hmac:"),
        "the search sees the outputs"
    );
    for secret in [TOKEN, PRIVACY_KEY] {
        assert!(!haystack.contains(secret), "a secret leaked");
    }
    // The personal data itself is gone from the export and the staging log alike (the
    // input logs are the integration's, not ours).
    let written: String = walkdir::WalkDir::new(s.out())
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let bytes = std::fs::read(e.path()).expect("read");
            if bytes.starts_with(&[0x1f, 0x8b]) {
                String::from_utf8_lossy(&gunzip(e.path())).into_owned()
            } else {
                String::from_utf8_lossy(&bytes).into_owned()
            }
        })
        .collect();
    assert!(
        !written.contains("alice@example.com"),
        "personal data written despite hash"
    );
}
