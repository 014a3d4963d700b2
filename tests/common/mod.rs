//! Helpers for the integration tests: run the real binary on a configuration in a temporary
//! folder, read back what it exported.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub type Row = BTreeMap<String, String>;

pub fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scopetrail"));
    cmd.env_remove("SCOPETRAIL_FAILPOINT")
        .env_remove("SCOPETRAIL_CONFIG")
        .env("SCOPETRAIL_LOG", "info");
    cmd
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn of(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Stdout says `text`; else the test fails showing all the output.
    pub fn says(&self, text: &str) -> &Self {
        assert!(
            self.stdout.contains(text),
            "expected {text:?} in stdout\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Stderr says `text`.
    pub fn complains(&self, text: &str) -> &Self {
        assert!(
            self.stderr.contains(text),
            "expected {text:?} in stderr\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

pub fn run(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = bin();
    cmd.arg("run").arg("--config").arg(config).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Run::of(cmd.output().expect("the scopetrail binary runs"))
}

pub fn validate(config: &Path) -> Run {
    Run::of(
        bin()
            .arg("validate")
            .arg("--config")
            .arg(config)
            .output()
            .expect("the scopetrail binary runs"),
    )
}

/// Every exported object of a dataset under `out`, by key.
pub fn objects(out: &Path, dataset: &str) -> BTreeMap<String, PathBuf> {
    let root = out.join("v1").join(dataset);
    let mut found = BTreeMap::new();
    if !root.exists() {
        return found;
    }
    for entry in walkdir::WalkDir::new(&root).into_iter().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if entry.file_type().is_file() && name.ends_with(".csv.gz") && !name.starts_with('.') {
            let key = entry
                .path()
                .strip_prefix(out)
                .map(|p| p.to_string_lossy().to_string())
                .unwrap_or_default();
            found.insert(key, entry.path().to_path_buf());
        }
    }
    found
}

pub fn gunzip(path: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(path).expect("object exists"))
        .read_to_end(&mut bytes)
        .expect("object is gzip");
    bytes
}

pub fn read_csv(bytes: &[u8]) -> Vec<Row> {
    let mut reader = csv::Reader::from_reader(bytes);
    let headers = reader.headers().expect("header row").clone();
    reader
        .records()
        .map(|r| {
            let r = r.expect("valid CSV record");
            headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// Every exported row of a dataset, with the key of the object it is in.
pub fn rows(out: &Path, dataset: &str) -> Vec<(String, Row)> {
    let mut all = Vec::new();
    for (key, path) in objects(out, dataset) {
        for row in read_csv(&gunzip(&path)) {
            all.push((key.clone(), row));
        }
    }
    all
}

/// Every denial exported under `out` is there exactly once, and all `expected` of them.
pub fn assert_each_denial_once(out: &Path, expected: usize) {
    let ids: Vec<String> = rows(out, "denials")
        .into_iter()
        .map(|(_, r)| r["request_id"].clone())
        .collect();
    let unique: std::collections::BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "a row exported twice");
    assert_eq!(ids.len(), expected, "rows lost");
}

/// The `frictionless` validator: `$SCOPETRAIL_FRICTIONLESS`, else on `PATH`. Missing, it
/// skips the test loudly on a laptop and fails it under `CI=true`.
pub fn frictionless() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SCOPETRAIL_FRICTIONLESS") {
        return Some(PathBuf::from(p));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("frictionless"))
            .find(|p| p.is_file())
    });
    if on_path.is_none() {
        missing_tool(
            "frictionless",
            "pip install frictionless (scripts/test does it in a virtualenv)",
        );
    }
    on_path
}

pub fn missing_tool(tool: &str, how: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{tool} is required under CI=true: {how}");
    }
    // Straight to the process's stderr: the test harness captures eprintln! of passing tests,
    // and a skip nobody sees is a test that silently checks nothing.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "\n========== SKIPPED: `{tool}` is not installed ({how}); a test checks nothing here ==========\n"
    );
}

/// None of `secrets` is in any file under `dir` (configuration files aside; gzip files
/// decompressed: exports, staging segments, state) nor in any of `outputs`.
pub fn assert_no_secret_in(dir: &Path, secrets: &[&str], outputs: &[&str]) {
    for entry in walkdir::WalkDir::new(dir).into_iter().flatten() {
        if !entry.file_type().is_file() || entry.path().extension().is_some_and(|e| e == "toml") {
            continue;
        }
        let bytes = if entry.path().to_string_lossy().ends_with(".gz") {
            gunzip(entry.path())
        } else {
            std::fs::read(entry.path()).expect("readable")
        };
        let text = String::from_utf8_lossy(&bytes);
        for s in secrets {
            assert!(
                !text.contains(s),
                "a secret is in {}",
                entry.path().display()
            );
        }
    }
    for out in outputs {
        for s in secrets {
            assert!(!out.contains(s), "a secret is in the output: {out}");
        }
    }
}

/// Every exported file under `out/v1` but run records (new each run by design), by key, with
/// its bytes and inode.
pub fn exported_files(out: &Path) -> BTreeMap<String, (Vec<u8>, u64)> {
    use std::os::unix::fs::MetadataExt;
    walkdir::WalkDir::new(out.join("v1"))
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .filter(|e| !e.path().to_string_lossy().contains("/_runs/"))
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| {
            let key = e
                .path()
                .strip_prefix(out)
                .expect("under out")
                .to_string_lossy()
                .to_string();
            let ino = e.metadata().expect("metadata").ino();
            (key, (std::fs::read(e.path()).expect("read"), ino))
        })
        .collect()
}

/// Validates a CSV.gz against a dataset's checked-in schema; panics with the validator's
/// report on failure.
pub fn assert_valid_csv(tool: &Path, csv_gz: &Path, dataset: &str) {
    let schema = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(format!("{dataset}.json"));
    let output = Command::new(tool)
        .arg("validate")
        .arg(csv_gz)
        .arg("--schema")
        .arg(&schema)
        .arg("--json")
        // Absolute paths are "unsafe" to frictionless unless trusted.
        .arg("--trusted")
        .output()
        .expect("frictionless runs");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "frictionless gave no JSON report ({e}): {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert_eq!(
        report["valid"],
        serde_json::Value::Bool(true),
        "{} does not match schemas/{dataset}.json:\n{}",
        csv_gz.display(),
        serde_json::to_string_pretty(&report["tasks"]).unwrap_or_default()
    );
}

/// A configuration in a temporary folder: one http_log source over `logs/*`, one weekly job.
pub struct Setup {
    pub dir: tempfile::TempDir,
}

pub const BASE_CONFIG: &str = r#"
[store]
kind = "local"
path = "out"

[tenants.acme]
environment = "prod"

[sources.proxy]
kind = "http_log"
tenant = "acme"
paths = ["logs/*"]

[sources.proxy.fields]
time = "ts"
status = "status"
method = "method"
url = "url"
client_id = "client"
request_id = "rid"
www_authenticate = "www_authenticate"
error_code = "error"
error_message = "message"
user_agent = "agent"

[[sources.proxy.hosts]]
host = "api.example.com"
vendor = "example"
"#;

pub const WEEKLY_JOB: &str = r#"
schedule = "0 0 * * MON"
sources = ["proxy"]
"#;

impl Setup {
    pub fn new(config: &str, jobs: &[(&str, &str)]) -> Setup {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("logs")).expect("logs dir");
        std::fs::create_dir_all(dir.path().join("jobs")).expect("jobs dir");
        std::fs::write(dir.path().join("scopetrail.toml"), config).expect("config");
        for (name, text) in jobs {
            std::fs::write(dir.path().join("jobs").join(format!("{name}.toml")), text)
                .expect("job");
        }
        Setup { dir }
    }

    pub fn standard() -> Setup {
        Setup::new(BASE_CONFIG, &[("weekly", WEEKLY_JOB)])
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("scopetrail.toml")
    }

    pub fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    pub fn log(&self, name: &str) -> PathBuf {
        self.dir.path().join("logs").join(name)
    }

    pub fn append(&self, name: &str, lines: &[String]) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log(name))
            .expect("log file");
        for l in lines {
            writeln!(f, "{l}").expect("write log line");
        }
    }

    pub fn run(&self, now: &str) -> Run {
        run(&self.config(), &["--now", now], &[])
    }
}

/// A logged call in the shape of `BASE_CONFIG`'s field mapping.
pub fn call(ts: &str, status: u16, rid: &str) -> String {
    serde_json::json!({
        "ts": ts,
        "status": status,
        "method": "POST",
        "url": "https://api.example.com/v1/orders/123?debug=1",
        "client": "app-1",
        "rid": rid,
        "www_authenticate": if status == 403 { "Bearer error=\"insufficient_scope\", scope=\"orders:write\"" } else { "" },
    })
    .to_string()
}

/// Copies demo/ (config, job, logs) to a temporary folder so the test leaves the tree alone.
pub fn demo_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo");
    for entry in walkdir::WalkDir::new(&demo).into_iter().flatten() {
        let rel = entry.path().strip_prefix(&demo).expect("under demo");
        if rel.starts_with("out") {
            continue;
        }
        let target = dir.path().join(rel);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
    dir
}
