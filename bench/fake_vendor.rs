//! The GitHub of `bench/github.sh`: one org `bench` with one org hook (id 1) whose N
//! deliveries all failed, served as fast as it can. No `X-RateLimit-*` headers (a vendor that
//! advertises no limit, so nothing paces the client) and no added latency: what is measured is
//! the client.
//!
//!   fake_vendor <port file> <events> <now, RFC 3339>
//!
//! Deliveries are newest first, ids N..1, paged by 100 with GitHub's opaque cursor
//! (`cursor=v1_<id of the last item>`). Pages are generated on request, so the server's
//! memory does not grow with N. Delivery k is at now - 1h - (N - k) * spacing, the N spanning
//! 48 hours, in whole seconds as GitHub writes them.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

const PER_PAGE: i64 = 100;
const SPAN_MS: i64 = 48 * 3600 * 1000;
const HOOKS: &str = r#"[{"type":"Organization","id":1,"name":"web","active":true,"events":["push"],"config":{"content_type":"json","insecure_ssl":"0","url":"https://receiver.example/hook"},"updated_at":"2026-01-01T00:00:00Z","created_at":"2026-01-01T00:00:00Z"}]"#;
const DELIVERIES: &str = "/orgs/bench/hooks/1/deliveries";

struct Vendor {
    events: i64,
    /// Time of the newest delivery, epoch ms.
    newest_ms: i64,
    base: String,
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [port_file, events, now] = args.as_slice() else {
        bail!("usage: fake_vendor <port file> <events> <now, RFC 3339>");
    };
    let events: i64 = events.parse().context("events")?;
    if events < 1 {
        bail!("events: at least 1");
    }
    let now = DateTime::parse_from_rfc3339(now).context("now")?;
    // One worker: the machine's other core is the client's.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?
        .block_on(serve(port_file, events, now.timestamp_millis() - 3_600_000))
}

async fn serve(port_file: &str, events: i64, newest_ms: i64) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let port = listener.local_addr()?.port();
    let vendor = Arc::new(Vendor {
        events,
        newest_ms,
        base: format!("http://127.0.0.1:{port}"),
    });
    // Written whole, then renamed: the script polls for it and must never read half a number.
    let tmp = format!("{port_file}.tmp");
    std::fs::write(&tmp, format!("{port}\n"))?;
    std::fs::rename(&tmp, port_file)?;
    loop {
        let (socket, _) = listener.accept().await?;
        let _ = socket.set_nodelay(true);
        let vendor = vendor.clone();
        let service = hyper::service::service_fn(move |req| {
            let vendor = vendor.clone();
            async move { Ok::<_, Infallible>(vendor.answer(&req)) }
        });
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(socket), service)
                .await;
        });
    }
}

impl Vendor {
    fn answer(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        let path = req.uri().path();
        let query = req.uri().query().unwrap_or("");
        if req.method() != hyper::Method::GET {
            return reply(404, r#"{"message":"Not Found"}"#.into(), None);
        }
        match path {
            "/orgs/bench/hooks" => reply(200, HOOKS.into(), None),
            DELIVERIES => match cursor(query) {
                Ok(before) => self.page(before),
                Err(()) => reply(400, r#"{"message":"Invalid cursor"}"#.into(), None),
            },
            p if p.starts_with("/orgs/bench/audit-log") => reply(200, "[]".into(), None),
            _ => reply(404, r#"{"message":"Not Found"}"#.into(), None),
        }
    }

    /// Up to 100 deliveries with ids below `before`, newest first.
    fn page(&self, before: i64) -> Response<Full<Bytes>> {
        let first = (before - 1).min(self.events);
        let last = (first - PER_PAGE + 1).max(1);
        let mut body = String::with_capacity(400 * PER_PAGE as usize);
        body.push('[');
        for id in (last..=first).rev() {
            if id != first {
                body.push(',');
            }
            self.delivery(&mut body, id);
        }
        body.push(']');
        let next = (first >= 1 && last > 1).then(|| {
            format!(
                "<{}{DELIVERIES}?per_page={PER_PAGE}&cursor=v1_{last}>; rel=\"next\"",
                self.base
            )
        });
        reply(200, body, next)
    }

    fn delivery(&self, out: &mut String, id: i64) {
        let back_ms = match self.events {
            1 => 0,
            n => (n - id) * SPAN_MS / (n - 1),
        };
        let at = DateTime::<Utc>::from_timestamp_millis(self.newest_ms - back_ms)
            .unwrap_or_default()
            .format("%Y-%m-%dT%H:%M:%SZ");
        // Pairs (2k, 2k+1) share a guid: a delivery and its redelivery.
        let g = id / 2;
        let (status, code, duration) = if id % 2 == 0 {
            ("timed out", 0, "10.0")
        } else {
            ("Invalid HTTP Response: 502", 502, "0.4")
        };
        let _ = write!(
            out,
            r#"{{"id":{id},"guid":"{:08x}-242f-11e5-81e1-{:012x}","delivered_at":"{at}","redelivery":{},"duration":{duration},"status":"{status}","status_code":{code},"event":"push","action":null,"installation_id":null,"repository_id":null,"throttled_at":null}}"#,
            g.wrapping_mul(0x9e37_79b9) as u32,
            g,
            id % 2 == 1,
        );
    }
}

/// The `cursor` parameter: `v1_<id>` continues below that id; none starts at the newest.
fn cursor(query: &str) -> Result<i64, ()> {
    for pair in query.split('&') {
        if let Some(v) = pair.strip_prefix("cursor=") {
            return v
                .strip_prefix("v1_")
                .and_then(|id| id.parse().ok())
                .ok_or(());
        }
    }
    Ok(i64::MAX)
}

fn reply(status: u16, body: String, next: Option<String>) -> Response<Full<Bytes>> {
    static REQUESTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = REQUESTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut response = Response::builder()
        .status(status)
        .header("Content-Type", "application/json; charset=utf-8")
        .header("X-GitHub-Request-Id", format!("BE7C:{n:X}:BE7C:{n:X}:BE7C"));
    if let Some(link) = next {
        response = response.header("Link", link);
    }
    response
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}
