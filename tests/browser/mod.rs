//! Headless Chromium driven through chromedriver's WebDriver API (Debian's `chromium` and
//! `chromium-driver`), over loopback HTTP with reqwest. Missing, it skips the test loudly on
//! a laptop and fails it under `CI=true` (`.ci/run` installs both).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use crate::common::missing_tool;

pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

fn tool(env: &str, default: &str) -> Option<PathBuf> {
    let path = std::env::var_os(env).map_or_else(|| PathBuf::from(default), PathBuf::from);
    path.is_file().then_some(path)
}

impl Browser {
    /// A fresh browser with an empty profile, or None (after saying so) where Chromium is not
    /// installed.
    pub async fn start() -> Option<Browser> {
        let chromium = tool("SCOPETRAIL_CHROMIUM", "/usr/bin/chromium");
        let driver = tool("SCOPETRAIL_CHROMEDRIVER", "/usr/bin/chromedriver");
        let (Some(chromium), Some(driver)) = (chromium, driver) else {
            missing_tool(
                "chromium and chromedriver",
                "apt-get install chromium chromium-driver (.ci/run does it)",
            );
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let profile = tempfile::tempdir().expect("profile dir");
        let mut browser = Browser {
            driver: child,
            base,
            session: String::new(),
            http,
            _profile: profile,
        };
        for _ in 0..100 {
            if browser
                .http
                .get(format!("{}/status", browser.base))
                .send()
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The flags a sandboxed machine without network needs: no sandbox (root), and none of
        // Chromium's own calls home.
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1100,900",
            &format!("--user-data-dir={}", browser._profile.path().display()),
        ];
        let created = browser
            .call(
                reqwest::Method::POST,
                "/session",
                json!({"capabilities": {"alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {"binary": chromium, "args": args},
                    "goog:loggingPrefs": {"browser": "ALL"},
                }}}),
            )
            .await;
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session from chromedriver: {created}"))
            .to_string();
        Some(browser)
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url);
        if !body.is_null() {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.expect("chromedriver answers");
        let status = response.status();
        let text = response.text().await.expect("a body");
        let value: Value = serde_json::from_str(&text).expect("JSON from chromedriver");
        assert!(status.is_success(), "{path}: {status}: {text}");
        value["value"].clone()
    }

    fn at(&self, what: &str) -> String {
        format!("/session/{}/{what}", self.session)
    }

    pub async fn open(&self, file: &Path) {
        let url = url::Url::from_file_path(file).expect("an absolute path");
        self.call(
            reqwest::Method::POST,
            &self.at("url"),
            json!({"url": url.as_str()}),
        )
        .await;
    }

    /// The value of a script run in the page (WebDriver's, not the page's: the page's CSP
    /// does not apply to it).
    pub async fn eval(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            &self.at("execute/sync"),
            json!({"script": script, "args": []}),
        )
        .await
    }

    /// What the page wrote to the console, with its level, since the last call.
    pub async fn console(&self) -> Vec<Value> {
        match self
            .call(
                reqwest::Method::POST,
                &self.at("se/log"),
                json!({"type": "browser"}),
            )
            .await
        {
            Value::Array(entries) => entries,
            other => panic!("no log entries: {other}"),
        }
    }

    pub async fn resize(&self, width: u32, height: u32) {
        self.call(
            reqwest::Method::POST,
            &self.at("window/rect"),
            json!({"width": width, "height": height}),
        )
        .await;
    }

    /// A PNG of the whole page at the window's width (the window grown to the page's height).
    pub async fn screenshot(&self, to: &Path) {
        let width = self
            .eval("return window.innerWidth")
            .await
            .as_u64()
            .unwrap_or(1100);
        let height = self
            .eval("return document.documentElement.scrollHeight")
            .await
            .as_u64()
            .unwrap_or(900);
        self.resize(width as u32, height.min(16_000) as u32).await;
        let png = self
            .call(reqwest::Method::GET, &self.at("screenshot"), Value::Null)
            .await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().expect("base64"))
            .expect("a PNG");
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir).expect("screenshot dir");
        }
        std::fs::write(to, bytes).expect("screenshot written");
    }

    pub async fn close(mut self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send()
            .await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}
