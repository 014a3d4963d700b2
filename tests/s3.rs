//! The S3 backend against a real S3 server on loopback (s3s-fs, SigV4), through the scopetrail
//! binary: layout, metadata, create-only reruns, concurrent runs, a server that ignores
//! conditional writes, a flaky server, a server stopped mid-run, missing permissions,
//! multipart uploads and the leftovers of interrupted ones.

mod common;
mod s3_support;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use s3_support::*;
use sha2::Digest;

const NOW: &str = "2026-03-09T01:00:00Z";
const PREFIX: &str = "team-a/scopetrail";

struct S3Setup {
    server: TestS3,
    setup: Setup,
    locks: tempfile::TempDir,
}

impl S3Setup {
    fn new(extra_store: &str) -> S3Setup {
        S3Setup::on(TestS3::start(), extra_store)
    }

    fn on(server: TestS3, extra_store: &str) -> S3Setup {
        let config = format!(
            "{}{}",
            store_table(&server, PREFIX, extra_store),
            BASE_CONFIG.replace("[store]\nkind = \"local\"\npath = \"out\"\n", "")
        );
        S3Setup {
            server,
            setup: Setup::new(&config, &[("weekly", WEEKLY_JOB)]),
            locks: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = self.server.env();
        env.push((
            "SCOPETRAIL_LOCK_DIR",
            self.locks.path().to_string_lossy().to_string(),
        ));
        env
    }

    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = bin();
        cmd.args(args).arg("--config").arg(self.setup.config());
        for (k, v) in self.env() {
            cmd.env(k, v);
        }
        cmd
    }

    fn run(&self, now: &str) -> Run {
        Run::of(
            self.command(&["run"])
                .args(["--now", now])
                .output()
                .expect("scopetrail runs"),
        )
    }

    fn spawn(&self, now: &str, failpoint: Option<&str>) -> std::process::Child {
        let mut cmd = self.command(&["run"]);
        cmd.args(["--now", now])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(fp) = failpoint {
            cmd.env("SCOPETRAIL_FAILPOINT", fp);
        }
        cmd.spawn().expect("spawn scopetrail")
    }

    /// The objects under the prefix as files: the same layout as a local store.
    fn out(&self) -> Snapshot {
        self.server.snapshot(PREFIX)
    }

    /// Every object under v1/ but run records, with its bytes.
    fn exported(&self) -> BTreeMap<String, Vec<u8>> {
        exported_files(&self.out())
            .into_iter()
            .map(|(k, (bytes, _))| (k, bytes))
            .collect()
    }
}

/// What the bucket's first use found out about conditional writes.
fn probe_record(s: &S3Setup) -> serde_json::Value {
    let bytes =
        std::fs::read(s.out().join("_state/store/conditional-writes.json")).expect("probe record");
    serde_json::from_slice(&bytes).expect("probe JSON")
}

fn denials(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            call(
                &format!("2026-03-0{}T{:02}:{:02}:00Z", 2 + i % 6, 1 + i % 20, i % 60),
                403,
                &format!("r{i:05}"),
            )
        })
        .collect()
}

#[test]
fn exports_the_layout_with_hashes_in_metadata_and_a_rerun_writes_nothing() {
    layout_and_rerun(&S3Setup::new(""));
}

fn layout_and_rerun(s: &S3Setup) {
    s.setup.append("a.log", &denials(120));
    let first = s.run(NOW);
    first.assert_code(0);
    assert!(
        first
            .stdout
            .contains(&format!("s3://{}/{PREFIX}/", s.server.bucket)),
        "{}",
        first.stdout
    );

    let out = s.out();
    let objects = objects(&out, "denials");
    assert!(!objects.is_empty(), "no denials object under {PREFIX}/v1");
    let client = s.server.client();
    for (key, path) in &objects {
        assert!(
            key.starts_with("v1/denials/vendor=example/tenant=acme/dt=2026-03-0")
                && key.ends_with(".csv.gz"),
            "{key}"
        );
        let head = s
            .server
            .block_on(
                client
                    .head_object()
                    .bucket(&s.server.bucket)
                    .key(format!("{PREFIX}/{key}"))
                    .send(),
            )
            .expect("head");
        let sha = hex::encode(sha2::Sha256::digest(gunzip(path)));
        let metadata = head.metadata().cloned().unwrap_or_default();
        assert_eq!(metadata.get("sha256"), Some(&sha), "{key}: {metadata:?}");
        assert_eq!(head.content_type(), Some("application/gzip"));
    }
    assert_each_denial_once(&s.out(), 120);
    assert!(s.out().join("v1/_exports/weekly").is_dir(), "no manifest");
    assert!(
        s.out().join("v1/_windows/weekly").is_dir(),
        "no window marker"
    );
    let probe = probe_record(s);
    assert_eq!(probe["if_none_match"], true);
    assert_eq!(probe["if_match"], true);

    // A rerun, now and a week later with nothing new, writes no exported object again.
    let before = s.exported();
    s.run(NOW).assert_code(0);
    assert_eq!(s.exported(), before, "a rerun changed exported objects");
}

/// Objects go up several at once, and the manifest lists them in the plan's order even when
/// the first one is the last to finish.
#[test]
fn objects_go_up_several_at_once_and_the_manifest_keeps_the_plans_order() {
    let s = S3Setup::new("");
    s.setup.append("a.log", &denials(120));
    *s.server.switches.slow_put.lock().expect("lock") =
        Some(("/dt=2026-03-02/denials-".into(), Duration::from_millis(800)));
    s.run(NOW).assert_code(0);
    let most = s.server.switches.object_puts_most.load(Ordering::SeqCst);
    assert!(most >= 2, "objects were put one at a time ({most} at most)");

    let json = |path: &str| -> serde_json::Value {
        let bytes = std::fs::read(s.out().join(path)).expect(path);
        serde_json::from_slice(&bytes).expect(path)
    };
    let keys = |v: &serde_json::Value| -> Vec<String> {
        v["objects"]
            .as_array()
            .expect("objects")
            .iter()
            .map(|o| o["key"].as_str().expect("key").to_string())
            .collect()
    };
    let listed = keys(&json("v1/_exports/weekly/e000001.json"));
    let planned = keys(&json("_state/exports/weekly/plan-e000001.json"));
    assert!(listed[0].contains("/dt=2026-03-02/denials-"), "{listed:?}");
    assert_eq!(listed, planned);
    assert_each_denial_once(&s.out(), 120);
}

#[test]
fn two_processes_at_once_export_each_row_once() {
    two_processes(&S3Setup::new(""));
}

fn two_processes(s: &S3Setup) {
    s.setup.append("a.log", &denials(300));
    let a = s.spawn(NOW, Some("lease.after_acquire:sleep=1500"));
    std::thread::sleep(Duration::from_millis(300));
    let b = s.spawn(NOW, None);
    let (a, b) = (
        Run::of(a.wait_with_output().expect("wait")),
        Run::of(b.wait_with_output().expect("wait")),
    );
    assert!(
        a.code == 0 && b.code == 0,
        "{}\n{}\n{}\n{}",
        a.stdout,
        a.stderr,
        b.stdout,
        b.stderr
    );
    assert_each_denial_once(&s.out(), 300);
    let manifests = files_under(&s.out().join("v1/_exports/weekly"));
    assert_eq!(manifests.len(), 1, "{manifests:?}");
}

#[test]
fn a_server_that_ignores_conditional_writes_needs_single_writer_and_a_host_lock() {
    let s = S3Setup::new("");
    s.server
        .switches
        .ignore_conditions
        .store(true, Ordering::SeqCst);
    s.setup.append("a.log", &denials(50));
    let refused = s.run(NOW);
    refused.assert_code(78);
    assert!(
        refused.stderr.contains("ignores conditional writes")
            && refused.stderr.contains("single_writer = true"),
        "{}",
        refused.stderr
    );
    let probe = probe_record(&s);
    assert_eq!(probe["if_none_match"], false, "{probe}");
    assert!(objects(&s.out(), "denials").is_empty());

    let text = std::fs::read_to_string(s.setup.config()).expect("config");
    std::fs::write(
        s.setup.config(),
        text.replace(
            "max_attempts = 3\n",
            "max_attempts = 3\nsingle_writer = true\n",
        ),
    )
    .expect("config");
    let ok = s.run(NOW);
    ok.assert_code(0);
    let notes: Vec<&str> = ok
        .stdout
        .lines()
        .filter(|l| l.starts_with("note:"))
        .collect();
    assert_eq!(notes.len(), 1, "{}", ok.stdout);
    assert!(notes[0].contains("single writer") && notes[0].contains("host lock"));
    assert_each_denial_once(&s.out(), 50);

    // The store cannot refuse a second writer, so the host lock does.
    let lock = files_under(s.locks.path())
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with(".lock"))
        .expect("a lock file");
    let held = std::fs::OpenOptions::new()
        .write(true)
        .open(&lock)
        .expect("open lock");
    held.try_lock().expect("lock is free between runs");
    let busy = s.run(NOW);
    busy.assert_code(75);
    assert!(
        busy.stderr
            .contains("another scopetrail process on this host"),
        "{}",
        busy.stderr
    );
    drop(held);

    // Looking before writing: a rerun overwrites nothing even though the server would let it.
    let before = s.exported();
    s.run(NOW).assert_code(0);
    assert_eq!(s.exported(), before);
}

#[test]
fn a_flaky_server_loses_and_duplicates_nothing() {
    let s = S3Setup::new("");
    s.server.switches.fail_every.store(6, Ordering::SeqCst);
    s.setup.append("a.log", &denials(400));
    let run = s.run(NOW);
    run.assert_code(0);
    assert!(s.server.switches.failed.load(Ordering::SeqCst) > 3);
    assert_each_denial_once(&s.out(), 400);
}

#[test]
fn a_server_stopped_mid_run_fails_the_run_in_one_line_and_the_next_run_exports_everything() {
    let s = S3Setup::new("");
    // The failed run cannot give its export lease back to a stopped store: it expires.
    let text = std::fs::read_to_string(s.setup.config()).expect("config");
    std::fs::write(
        s.setup.config(),
        format!("[defaults]\nlease_ttl = \"2s\"\n{text}"),
    )
    .expect("config");
    s.setup.append("a.log", &denials(200));
    // Collected and staged; the export pauses after its first object.
    let child = s.spawn(NOW, Some("export.after_object:sleep=1500"));
    std::thread::sleep(Duration::from_millis(900));
    s.server.stop();
    let failed = Run::of(child.wait_with_output().expect("wait"));
    assert_eq!(failed.code, 75, "{}\n{}", failed.stdout, failed.stderr);
    let last = failed.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("scopetrail: ") && last.contains("unavailable"),
        "{}",
        failed.stderr
    );
    s.server.restart();
    std::thread::sleep(Duration::from_millis(2100));
    s.run(NOW).assert_code(0);
    assert_each_denial_once(&s.out(), 200);
}

#[test]
fn a_missing_permission_is_named() {
    let s = S3Setup::new("");
    s.setup.append("a.log", &denials(10));
    // First use: the probe writes under _state/.
    s.server.switches.deny(&["PutObject"]);
    let denied = s.run(NOW);
    denied.assert_code(78);
    assert!(
        denied
            .stderr
            .contains(&format!("s3:PutObject on arn:aws:s3:::{BUCKET}/{PREFIX}/*")),
        "{}",
        denied.stderr
    );
    let check = Run::of(
        s.command(&["validate", "--connect"])
            .output()
            .expect("validate runs"),
    );
    check.assert_code(78);
    assert!(check.stderr.contains("s3:PutObject"), "{}", check.stderr);

    s.server.switches.deny(&[]);
    let check = Run::of(
        s.command(&["validate", "--connect"])
            .output()
            .expect("validate runs"),
    );
    check.assert_code(0);
    assert!(
        check
            .stdout
            .contains("If-None-Match honoured, If-Match honoured")
            && check
                .stdout
                .contains("writable: v1/ (checked without writing)"),
        "{}",
        check.stdout
    );
    assert!(
        !s.out().join("v1/_scopetrail-write-check").exists(),
        "the write check wrote"
    );
}

#[test]
fn wrong_credentials_are_named_as_such_and_not_echoed() {
    let s = S3Setup::new("");
    let wrong = "wrong-secret-Zq81xk";
    let run = Run::of(
        s.command(&["run"])
            .args(["--now", NOW])
            .env("AWS_SECRET_ACCESS_KEY", wrong)
            .output()
            .expect("scopetrail runs"),
    );
    run.assert_code(78);
    assert!(
        run.stderr.contains("SignatureDoesNotMatch")
            && run.stderr.contains("check the credentials"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains(wrong) && !run.stdout.contains(wrong));
}

#[test]
fn an_unreachable_store_is_temporary() {
    let s = S3Setup::new("");
    s.server.stop();
    let run = s.run(NOW);
    run.assert_code(75);
    assert!(
        run.stderr.contains(&s.server.endpoint()) || run.stderr.contains("s3://"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
}

#[test]
fn no_secret_reaches_an_object_or_the_output() {
    let s = S3Setup::new("");
    s.setup.append("a.log", &denials(30));
    let first = s.run(NOW);
    first.assert_code(0);
    s.server.switches.deny(&["GetObject"]);
    let second = s.run("2026-03-16T01:00:00Z");
    for text in [&first.stdout, &first.stderr, &second.stdout, &second.stderr] {
        assert!(!text.contains(SECRET_KEY), "secret in output");
    }
    for path in files_under(s.server.root.path()) {
        let bytes = std::fs::read(&path).expect("read");
        let plain = if path.to_string_lossy().ends_with(".gz") {
            let mut out = Vec::new();
            use std::io::Read;
            let _ = flate2::read::MultiGzDecoder::new(&bytes[..]).read_to_end(&mut out);
            out
        } else {
            bytes
        };
        assert!(
            !String::from_utf8_lossy(&plain).contains(SECRET_KEY),
            "secret in {}",
            path.display()
        );
    }
}

/// The same scenarios against another S3 implementation: `.ci/run` starts moto and sets
/// `SCOPETRAIL_S3_OTHER_ENDPOINT`, once per checksum mode (`SCOPETRAIL_S3_OTHER_CHECKSUM`).
#[test]
fn another_implementation() {
    let Ok(endpoint) = std::env::var("SCOPETRAIL_S3_OTHER_ENDPOINT") else {
        eprintln!(
            "another_implementation: SCOPETRAIL_S3_OTHER_ENDPOINT is not set (.ci/run sets it); nothing checked"
        );
        return;
    };
    let checksum =
        std::env::var("SCOPETRAIL_S3_OTHER_CHECKSUM").unwrap_or_else(|_| "when_supported".into());
    let extra = format!("checksum = \"{checksum}\"");
    layout_and_rerun(&S3Setup::on(TestS3::external(&endpoint), &extra));
    two_processes(&S3Setup::on(TestS3::external(&endpoint), &extra));
    let server = TestS3::external(&endpoint);
    store::multipart(&server);
    store::leftovers_listed_by_the_server(&server);
}

mod store {
    //! The store itself, in process: multipart uploads and their leftovers.
    use super::*;
    use scopetrail::store::s3::{ChecksumMode, S3Spec, S3Store};
    use scopetrail::store::{Body, Metadata, ObjectStore, PutOutcome};

    fn spec(server: &TestS3, checksum: ChecksumMode) -> S3Spec {
        S3Spec {
            bucket: server.bucket.clone(),
            prefix: "lib/".into(),
            region: Some("us-east-1".into()),
            endpoint: Some(server.endpoint()),
            path_style: true,
            checksum,
            sse: None,
            kms_key_id: None,
            storage_class: None,
            tags: BTreeMap::from([("retention".to_string(), "7y".to_string())]),
            single_writer: false,
            profile: None,
            max_attempts: 2,
            part_size: 5 * 1024 * 1024,
        }
    }

    /// The SDK's credential chain reads the process environment; every test here sets the
    /// same values, once, and std's own environment lock orders that against `Command`.
    fn with_credentials(server: &TestS3) {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            for (k, v) in server.env() {
                // SAFETY: the same values for every test, set once before any store reads them.
                unsafe { std::env::set_var(k, v) };
            }
        });
    }

    fn big_file(dir: &std::path::Path, mib: usize) -> std::path::PathBuf {
        let path = dir.join("big.bin");
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let bytes: Vec<u8> = (0..mib * 1024 * 1024)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        std::fs::write(&path, bytes).expect("write");
        path
    }

    #[test]
    fn large_objects_go_up_in_parts_create_only_in_both_checksum_modes() {
        multipart(&TestS3::start());
    }

    pub(super) fn multipart(server: &TestS3) {
        with_credentials(server);
        let dir = tempfile::tempdir().expect("dir");
        let path = big_file(dir.path(), 12);
        for (n, mode) in [ChecksumMode::WhenSupported, ChecksumMode::WhenRequired]
            .into_iter()
            .enumerate()
        {
            let store = server
                .block_on(S3Store::connect(&spec(server, mode)))
                .expect("connect");
            let key = format!("v1/big-{n}.csv.gz");
            let metadata = Metadata::from([("sha256".to_string(), "abc".to_string())]);
            let put = server
                .block_on(store.put_new(&key, Body::File(path.clone()), &metadata))
                .expect("upload");
            assert!(matches!(put, PutOutcome::Created));
            assert_eq!(
                std::fs::read(server.snapshot("lib").join(&key)).expect("stored"),
                std::fs::read(&path).expect("source")
            );
            let again = server
                .block_on(store.put_new(&key, Body::File(path.clone()), &metadata))
                .expect("second upload");
            match again {
                PutOutcome::AlreadyExists(info) => {
                    assert_eq!(info.metadata.get("sha256").map(String::as_str), Some("abc"));
                    assert_eq!(info.size, 12 * 1024 * 1024);
                }
                PutOutcome::Created => panic!("a second multipart upload overwrote {key}"),
            }
            assert_eq!(server.open_uploads(), 0, "an upload left open");
        }
    }

    /// An upload nobody noted (the process died between starting it and noting it) is found
    /// by listing, where the server can list uploads.
    pub(super) fn leftovers_listed_by_the_server(server: &TestS3) {
        with_credentials(server);
        let store = server
            .block_on(S3Store::connect(&spec(server, ChecksumMode::WhenSupported)))
            .expect("connect");
        let client = server.client();
        server
            .block_on(
                client
                    .create_multipart_upload()
                    .bucket(&server.bucket)
                    .key("lib/v1/orphan.csv.gz")
                    .send(),
            )
            .expect("start an upload");
        assert_eq!(server.open_uploads(), 1);
        let cleaned = server
            .block_on(store.clean_leftovers(std::time::SystemTime::now() + Duration::from_secs(1)))
            .expect("clean");
        assert_eq!(cleaned, 1);
        assert_eq!(server.open_uploads(), 0);
    }

    #[test]
    fn an_interrupted_upload_is_aborted_then_and_there_or_by_a_later_run() {
        let server = TestS3::start();
        with_credentials(&server);
        let dir = tempfile::tempdir().expect("dir");
        let path = big_file(dir.path(), 11);
        let store = server
            .block_on(S3Store::connect(&spec(
                &server,
                ChecksumMode::WhenSupported,
            )))
            .expect("connect");

        // A part fails for good: the upload is aborted at once.
        server.switches.deny(&["UploadPart"]);
        let err = server
            .block_on(store.put_new("v1/a.csv.gz", Body::File(path.clone()), &Metadata::new()))
            .expect_err("denied");
        assert!(format!("{err:#}").contains("s3:PutObject"), "{err:#}");
        assert_eq!(server.open_uploads(), 0);

        // The abort fails too (as if the process died): a later cleanup aborts it.
        server
            .switches
            .deny(&["UploadPart", "AbortMultipartUpload"]);
        server
            .block_on(store.put_new("v1/b.csv.gz", Body::File(path.clone()), &Metadata::new()))
            .expect_err("denied");
        assert_eq!(server.open_uploads(), 1);
        server.switches.deny(&[]);
        let young = server
            .block_on(
                store.clean_leftovers(std::time::SystemTime::now() - Duration::from_secs(3600)),
            )
            .expect("clean");
        assert_eq!(young, 0, "a young upload may belong to a live run");
        let cleaned = server
            .block_on(store.clean_leftovers(std::time::SystemTime::now() + Duration::from_secs(1)))
            .expect("clean");
        assert_eq!(cleaned, 1);
        assert_eq!(server.open_uploads(), 0);
        assert!(
            server
                .block_on(store.list("_state/uploads/"))
                .expect("list")
                .is_empty()
        );
    }
}

#[test]
fn the_report_is_written_to_the_bucket_as_a_page_and_rebuilt_from_it() {
    let s = S3Setup::new("");
    s.setup.append("a.log", &denials(120));
    let done = s.run(NOW);
    done.assert_code(0);
    let key = format!("{PREFIX}/reports/weekly/20260302T000000Z_20260309T000000Z.html");
    done.says(&format!("report   s3://{}/{key}", s.server.bucket));
    let object = s
        .server
        .block_on(
            s.server
                .client()
                .get_object()
                .bucket(&s.server.bucket)
                .key(&key)
                .send(),
        )
        .expect("the report is in the bucket");
    assert_eq!(object.content_type(), Some("text/html; charset=utf-8"));
    let page = s
        .server
        .block_on(object.body.collect())
        .expect("body")
        .into_bytes();
    let page = String::from_utf8(page.to_vec()).expect("UTF-8");
    assert!(
        page.contains("insufficient_scope"),
        "the finding is on the page"
    );
    let url = format!("s3://{}/{PREFIX}", s.server.bucket);
    let rebuilt = Run::of(
        s.command(&["report", "--from", &url, "--out", "-"])
            .output()
            .expect("report runs"),
    );
    rebuilt.assert_code(0);
    assert_eq!(
        rebuilt.stdout, page,
        "rebuilt from the bucket: the same page"
    );
}

#[test]
fn explain_reads_the_findings_evidence_back_from_the_bucket() {
    let s = S3Setup::new("");
    s.setup.append("a.log", &denials(120));
    s.run(NOW).assert_code(0);
    let mut explain = s.command(&["explain"]);
    let by_config = Run::of(explain.output().expect("explain runs"));
    by_config.assert_code(0);
    assert!(
        by_config
            .stdout
            .contains(&format!("s3://{}/{PREFIX}/", s.server.bucket)),
        "{}",
        by_config.stdout
    );
    assert!(
        by_config.stdout.contains("insufficient_scope")
            && by_config.stdout.contains("orders:write"),
        "{}",
        by_config.stdout
    );
    // Another prefix of the same server: nothing exported there.
    let mut elsewhere = s.command(&[
        "explain",
        "--from",
        &format!("s3://{}/other", s.server.bucket),
    ]);
    let empty = Run::of(elsewhere.output().expect("explain runs"));
    empty.assert_code(0);
    assert!(
        empty.stdout.starts_with("0 findings over 0 exported rows"),
        "{}",
        empty.stdout
    );
    // The same place named by URL, one day of failures.
    let url = format!("s3://{}/{PREFIX}", s.server.bucket);
    let mut one_day = s.command(&["explain", "--from", &url, "--since", "2026-03-07"]);
    let day = Run::of(one_day.output().expect("explain runs"));
    day.assert_code(0);
    assert!(
        day.stdout.contains("failures since 2026-03-07 00:00 UTC"),
        "{}",
        day.stdout
    );
    let all: usize = by_config.stdout.matches(" denials (403").count();
    assert!(
        all >= 1 && day.stdout.matches(" denials (403").count() >= 1,
        "{}",
        day.stdout
    );
}
