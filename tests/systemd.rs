//! The shipped systemd units pass `systemd-analyze verify` without a single complaint.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn systemd_analyze() -> Option<PathBuf> {
    let found = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file());
    if found.is_none() {
        common::missing_tool("systemd-analyze", "apt-get install systemd");
    }
    found
}

/// The units as shipped, with ExecStart pointing at the binary under test (verify checks that
/// the command exists and is executable).
fn units_for_test() -> (tempfile::TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd");
    let mut units = Vec::new();
    for name in [
        "scopetrail.service",
        "scopetrail.timer",
        "scopetrail-daemon.service",
    ] {
        let text = std::fs::read_to_string(shipped.join(name)).expect("unit");
        let text = text.replace(
            "/usr/local/bin/scopetrail",
            env!("CARGO_BIN_EXE_scopetrail"),
        );
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        units.push(path);
    }
    (dir, units)
}

#[test]
fn units_pass_systemd_analyze_verify() {
    let Some(tool) = systemd_analyze() else {
        return;
    };
    let (_dir, units) = units_for_test();
    let out = Command::new(tool)
        .args(["verify", "--man=no"])
        .args(&units)
        .output()
        .expect("systemd-analyze runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify:\n{said}"
    );
}

#[test]
fn units_say_what_the_issue_and_the_docs_promise() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd");
    let read = |n: &str| std::fs::read_to_string(shipped.join(n)).expect("unit");
    let oneshot = read("scopetrail.service");
    let timer = read("scopetrail.timer");
    let daemon = read("scopetrail-daemon.service");
    for line in [
        "Type=oneshot",
        "ExecStart=/usr/local/bin/scopetrail run --config /etc/scopetrail/scopetrail.toml",
    ] {
        assert!(oneshot.contains(line), "{line}");
    }
    for line in [
        "OnCalendar=hourly",
        "Persistent=true",
        "RandomizedDelaySec=",
    ] {
        assert!(timer.contains(line), "{line}");
    }
    assert!(daemon.contains("Type=notify") && daemon.contains("scopetrail daemon --config"));
    for unit in [&oneshot, &daemon] {
        for line in [
            "LoadCredential=scopetrail:/etc/scopetrail/credentials",
            "StateDirectory=scopetrail",
            "DynamicUser=yes",
            "User=scopetrail",
            "ProtectSystem=strict",
            "NoNewPrivileges=yes",
            "PrivateTmp=yes",
        ] {
            assert!(unit.contains(line), "{line}");
        }
    }
}

/// How the units hand secrets over: a credential in $CREDENTIALS_DIRECTORY, referenced as
/// `credential:NAME`, read and applied by a real run.
#[test]
fn a_systemd_credential_is_read_from_credentials_directory() {
    let config = format!(
        "{}\n[privacy]\nkey = \"credential:scopetrail_privacy-key\"\n[privacy.columns]\nactor_user = \"hash\"\n",
        common::BASE_CONFIG.replace(
            "user_agent = \"agent\"",
            "user_agent = \"agent\"\nuser = \"user\""
        )
    );
    let s = common::Setup::new(&config, &[("weekly", common::WEEKLY_JOB)]);
    let missing = common::validate(&s.config());
    missing.assert_code(78);
    assert!(
        missing.stdout.contains("$CREDENTIALS_DIRECTORY is not set"),
        "{}",
        missing.stdout
    );

    let line = serde_json::json!({"ts": "2026-03-05T10:00:00Z", "status": 403, "url": "https://api.example.com/v1/x", "user": "alice@example.com", "rid": "r1"});
    s.append("a.log", &[line.to_string()]);
    let hashed_with = |key: &str| -> String {
        let creds = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            creds.path().join("scopetrail_privacy-key"),
            format!("{key}\n"),
        )
        .expect("write");
        let _ = std::fs::remove_dir_all(s.out());
        common::run(
            &s.config(),
            &["--now", "2026-03-09T01:00:00Z"],
            &[(
                "CREDENTIALS_DIRECTORY",
                creds.path().to_str().expect("utf-8"),
            )],
        )
        .assert_code(0);
        common::rows(&s.out(), "denials").remove(0).1["actor_user"].clone()
    };
    let first = hashed_with("k3y-from-systemd");
    assert!(first.starts_with("hmac:"), "{first}");
    assert_eq!(
        hashed_with("k3y-from-systemd"),
        first,
        "the same key, the same hash"
    );
    assert_ne!(
        hashed_with("another-key"),
        first,
        "the credential's value is the key"
    );
}
