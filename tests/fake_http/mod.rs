//! The serving machinery the vendor fakes share (tests/github_support, tests/okta_support,
//! tests/stripe_support, tests/statuspage_support): an HTTP/1 server on 127.0.0.1 (random
//! port), run from a thread with a tokio runtime of its own so it keeps answering while a test
//! blocks on a child process; the requests it saw; and the faults every vendor can be made to
//! show.
//!
//! A vendor is a [`Vendor`]: its state, behind the server's lock, answers one [`Req`] at a
//! time. [`Server<V>`] is the handle (clones share the server, which stops when the last one is
//! dropped); each vendor module names it (`pub type FakeOkta = Server<Okta>`) and adds its own
//! methods to that type.
//!
//! Every request goes through, in this order:
//! 1. [`Vendor::refuse`]: a bad credential or a forbidden key (401/403), before any fault;
//! 2. `fail_next`: the next `n` requests get [`Vendor::injected`] for the status (the vendor's
//!    5xx or 429 body and headers), without spending any rate limit;
//! 3. [`Vendor::answer`]: the vendor's own faults, rate limits, routing, the page (`Req::repeat`
//!    is set while `repeat_cursor` holds, or `repeat_cursor_matching` for the request's path
//!    and query: a list's "next" must then never advance);
//! 4. `truncate_next` cuts the next 200s: the whole `Content-Length` is announced, half the body
//!    is sent and flushed, then the connection is closed (a client sees a body error);
//! 5. `slow_next` delays any response before its headers.
//!
//! [`Vendor::headers`] are added to every response, unless the reply set a header of the same
//! name itself; a reply without `Content-Type` is `application/json`. `clear_faults` clears the
//! faults above and [`Vendor::clear_faults`], the vendor's own.
#![allow(dead_code)]

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::{Request, Response};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// One vendor's behaviour. Called with the server's lock held: no blocking, no sleeping.
pub trait Vendor: Send + 'static {
    /// A refusal answered before any fault (bad credentials, a forbidden key); `None` lets the
    /// request through.
    fn refuse(&mut self, _req: &Req) -> Option<Reply> {
        None
    }

    /// The answer to a request that got through the refusals and the injected failures.
    fn answer(&mut self, req: &Req) -> Reply;

    /// The vendor's reply for a `fail_next` status (5xx, 429, ...).
    fn injected(&mut self, req: &Req, status: u16) -> Reply;

    /// Headers every response carries (request id, rate limit, ...).
    fn headers(&mut self, req: &Req) -> Vec<(&'static str, String)>;

    /// Clears the faults the vendor keeps itself (checked in [`Vendor::answer`]), with the
    /// server's own.
    fn clear_faults(&mut self) {}
}

/// One request as the fake saw it, with the status it answered.
#[derive(Clone, Debug)]
pub struct Seen {
    pub at: Instant,
    pub method: String,
    pub path_and_query: String,
    pub authorization: Option<String>,
    pub user_agent: Option<String>,
    pub status: u16,
}

impl Seen {
    pub fn path(&self) -> &str {
        let pq = self.path_and_query.as_str();
        pq.split_once('?').map_or(pq, |(path, _)| path)
    }

    /// A query parameter, decoded (the first one of that name).
    pub fn param(&self, name: &str) -> Option<String> {
        let query = self.path_and_query.split_once('?').map_or("", |(_, q)| q);
        Params::parse(query).get(name).map(String::from)
    }
}

/// A query string, decoded, in order (names may repeat: `types[]=a&types[]=b`).
#[derive(Clone, Debug, Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    pub fn parse(query: &str) -> Params {
        Params(
            url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        let found = self.0.iter().find(|(n, _)| n == name);
        found.map(|(_, v)| v.as_str())
    }

    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let named = self.0.iter().filter(move |(n, _)| n == name);
        named.map(|(_, v)| v.as_str())
    }

    /// These parameters with `name` set to `value` (in place, or appended).
    pub fn with(&self, name: &str, value: &str) -> Params {
        let mut pairs = self.0.clone();
        pairs.retain(|(n, _)| n != name);
        pairs.push((name.to_string(), value.to_string()));
        Params(pairs)
    }

    /// `base` + `path` + `?` + the parameters, encoded (no `?` when there are none).
    pub fn url(&self, base: &str, path: &str) -> String {
        if self.0.is_empty() {
            return format!("{base}{path}");
        }
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.extend_pairs(&self.0);
        format!("{base}{path}?{}", query.finish())
    }
}

/// What a vendor sees of a request.
pub struct Req<'a> {
    /// 1 for the first request the server saw, then 2, ...: for derived ids.
    pub n: u64,
    pub method: &'a str,
    /// The path and query as the client sent them (not decoded).
    pub path_and_query: &'a str,
    pub path: &'a str,
    pub params: Params,
    pub authorization: Option<&'a str>,
    /// `http://127.0.0.1:PORT`, for the links a vendor writes.
    pub base: &'a str,
    /// `repeat_cursor` holds (for this path): a list's next page must be this one again.
    pub repeat: bool,
}

impl Req<'_> {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name)
    }

    /// The request's own URL, re-encoded (for `rel="self"` and repeated cursors).
    pub fn url(&self) -> String {
        self.params.url(self.base, self.path)
    }
}

/// A response, before the vendor's common headers are added.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    pub truncate: bool,
}

impl Reply {
    pub fn json(status: u16, body: &Value) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.to_string().into_bytes(),
            truncate: false,
        }
    }

    pub fn text(status: u16, content_type: &str, body: impl Into<String>) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type", content_type.to_string())],
            body: body.into().into_bytes(),
            truncate: false,
        }
    }

    /// Adds a header (names may repeat, e.g. two `Link` headers).
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
}

/// A fixed-window rate limit: `limit` requests per `window`, windows back to back from the
/// moment it was set.
pub struct Window {
    pub limit: u32,
    pub window: Duration,
    start: Instant,
    /// The same moment as `start` on the wall clock, for a reset in epoch seconds.
    start_wall: SystemTime,
    pub used: u32,
}

impl Window {
    pub fn new(limit: u32, window: Duration) -> Window {
        Window {
            limit,
            window: window.max(Duration::from_millis(1)),
            start: Instant::now(),
            start_wall: SystemTime::now(),
            used: 0,
        }
    }

    fn roll(&mut self) {
        while self.start.elapsed() >= self.window {
            self.start += self.window;
            self.start_wall += self.window;
            self.used = 0;
        }
    }

    /// Spends one request; `false` when the window is spent already.
    pub fn take(&mut self) -> bool {
        self.roll();
        if self.used >= self.limit {
            return false;
        }
        self.used += 1;
        true
    }

    pub fn remaining(&mut self) -> u32 {
        self.roll();
        self.limit.saturating_sub(self.used)
    }

    /// The end of the current window in epoch seconds, rounded up: a client sleeping until
    /// then finds the next window open.
    pub fn reset_epoch(&mut self) -> u64 {
        self.roll();
        epoch_ceil(self.start_wall + self.window)
    }
}

/// `at` in epoch seconds, rounded up.
pub fn epoch_ceil(at: SystemTime) -> u64 {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    since.as_secs() + u64::from(since.subsec_nanos() > 0)
}

/// A short stable hash, for ids derived from other ids (FNV-1a).
pub fn hash(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// `len` characters from `alphabet`, derived from `seed`.
pub fn derived_id(seed: &str, alphabet: &[u8], len: usize) -> String {
    let mut h = hash(seed);
    (0..len)
        .map(|i| {
            if i % 8 == 0 {
                h = hash(&format!("{seed}/{h}/{i}"));
            }
            let c = alphabet[(h % alphabet.len() as u64) as usize];
            h /= alphabet.len() as u64;
            char::from(c)
        })
        .collect()
}

pub const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
pub const LOWER_ALNUM: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// A panic elsewhere must not hide the state from the test's assertions.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Default)]
struct Faults {
    fail: usize,
    fail_status: u16,
    truncate: usize,
    slow: usize,
    delay: Duration,
    /// What the path and query contain for `repeat_cursor` to hold ("": every request).
    repeat: Vec<String>,
}

struct Shared<V> {
    vendor: V,
    faults: Faults,
    seen: Vec<Seen>,
}

/// The handle on a running fake: clones share the server, which stops when the last one is
/// dropped.
pub struct Server<V> {
    inner: Arc<Inner<V>>,
}

impl<V> Clone for Server<V> {
    fn clone(&self) -> Self {
        Server {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<V> {
    shared: Arc<Mutex<Shared<V>>>,
    base: String,
    cancel: CancellationToken,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl<V> Inner<V> {
    fn stop(&self) {
        self.cancel.cancel();
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
    }
}

impl<V> Drop for Inner<V> {
    fn drop(&mut self) {
        self.stop();
    }
}

impl<V: Vendor> Server<V> {
    /// Serves `vendor` from a thread and runtime of its own.
    pub fn serve(vendor: V) -> Server<V> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("non-blocking");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let shared = Arc::new(Mutex::new(Shared {
            vendor,
            faults: Faults::default(),
            seen: Vec::new(),
        }));
        let cancel = CancellationToken::new();
        let (s, b, c) = (shared.clone(), base.clone(), cancel.clone());
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(serve(listener, s, b.into(), c));
        });
        let inner = Inner {
            shared,
            base,
            cancel,
            thread: Mutex::new(Some(thread)),
        };
        Server {
            inner: Arc::new(inner),
        }
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn base_url(&self) -> String {
        self.inner.base.clone()
    }

    /// Stops accepting and drops open connections; returns once the port is closed.
    pub fn stop(&self) {
        self.inner.stop();
    }

    /// The vendor's state, locked, for the vendor modules' own methods.
    pub fn with<R>(&self, change: impl FnOnce(&mut V) -> R) -> R {
        change(&mut lock(&self.inner.shared).vendor)
    }

    fn faults<R>(&self, change: impl FnOnce(&mut Faults) -> R) -> R {
        change(&mut lock(&self.inner.shared).faults)
    }

    /// The next `n` requests (past the refusals) answer `status`, with the vendor's body.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.faults(|f| (f.fail, f.fail_status) = (n, status));
    }

    /// The next `n` 200s send half their body, then close the connection.
    pub fn truncate_next(&self, n: usize) {
        self.faults(|f| f.truncate = n);
    }

    /// The next `n` responses wait `delay` before their headers.
    pub fn slow_next(&self, n: usize, delay: Duration) {
        self.faults(|f| (f.slow, f.delay) = (n, delay));
    }

    /// From now on, lists point their next page at the same page, forever.
    pub fn repeat_cursor(&self) {
        self.repeat_cursor_matching("");
    }

    /// `repeat_cursor` for the requests whose path and query contain `path_contains` only.
    pub fn repeat_cursor_matching(&self, path_contains: &str) {
        self.faults(|f| f.repeat.push(path_contains.to_string()));
    }

    /// Clears the faults above and the vendor's own ([`Vendor::clear_faults`]).
    pub fn clear_faults(&self) {
        let mut shared = lock(&self.inner.shared);
        shared.faults = Faults::default();
        shared.vendor.clear_faults();
    }

    /// Every request so far, in the order they arrived.
    pub fn requests(&self) -> Vec<Seen> {
        lock(&self.inner.shared).seen.clone()
    }

    pub fn requests_matching(&self, path_contains: &str) -> Vec<Seen> {
        let mut seen = self.requests();
        seen.retain(|s| s.path_and_query.contains(path_contains));
        seen
    }
}

impl<V: Vendor> Shared<V> {
    /// The reply to `seen`, which is then recorded with its status; and how long to sit on it.
    fn answer(&mut self, base: &str, seen: Seen) -> (Reply, Option<Duration>) {
        let pq = seen.path_and_query.as_str();
        let (path, query) = pq.split_once('?').unwrap_or((pq, ""));
        let repeat = self.faults.repeat.iter().any(|r| pq.contains(r.as_str()));
        let req = Req {
            n: self.seen.len() as u64 + 1,
            method: &seen.method,
            path_and_query: pq,
            path,
            params: Params::parse(query),
            authorization: seen.authorization.as_deref(),
            base,
            repeat,
        };
        let faults = &mut self.faults;
        let mut reply = if let Some(refusal) = self.vendor.refuse(&req) {
            refusal
        } else if faults.fail > 0 {
            faults.fail -= 1;
            self.vendor.injected(&req, faults.fail_status)
        } else {
            let mut reply = self.vendor.answer(&req);
            if reply.status == 200 && faults.truncate > 0 {
                faults.truncate -= 1;
                reply.truncate = true;
            }
            reply
        };
        let delay = (faults.slow > 0).then(|| {
            faults.slow -= 1;
            faults.delay
        });
        let mut headers = self.vendor.headers(&req);
        let own = |name: &str| {
            reply
                .headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name))
        };
        headers.retain(|(name, _)| !own(name));
        if !own("Content-Type")
            && !headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("Content-Type"))
        {
            headers.push(("Content-Type", "application/json".to_string()));
        }
        headers.append(&mut reply.headers);
        reply.headers = headers;
        let status = reply.status;
        self.seen.push(Seen { status, ..seen });
        (reply, delay)
    }
}

async fn serve<V: Vendor>(
    listener: std::net::TcpListener,
    shared: Arc<Mutex<Shared<V>>>,
    base: Arc<str>,
    cancel: CancellationToken,
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    loop {
        let socket = tokio::select! {
            () = cancel.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((socket, _)) => socket,
                Err(_) => continue,
            },
        };
        let (shared, base) = (shared.clone(), base.clone());
        let service = move |req| handle(shared.clone(), base.clone(), req);
        let conn = hyper::server::conn::http1::Builder::new().serve_connection(
            hyper_util::rt::TokioIo::new(socket),
            hyper::service::service_fn(service),
        );
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = cancel.cancelled() => {}
                _ = conn => {}
            }
        });
    }
}

type Payload = Either<Full<Bytes>, Cut>;

async fn handle<V: Vendor>(
    shared: Arc<Mutex<Shared<V>>>,
    base: Arc<str>,
    req: Request<Incoming>,
) -> Result<Response<Payload>, Infallible> {
    let header = |name| req.headers().get(name)?.to_str().ok().map(String::from);
    let path_and_query = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let seen = Seen {
        at: Instant::now(),
        method: req.method().to_string(),
        path_and_query: path_and_query.to_string(),
        authorization: header(hyper::header::AUTHORIZATION),
        user_agent: header(hyper::header::USER_AGENT),
        status: 0,
    };
    let (reply, delay) = lock(&shared).answer(&base, seen);
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let mut response = Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        response = response.header(*name, value);
    }
    let body = if reply.truncate {
        // hyper trusts this header for a body of unknown size, then closes on the body's error.
        response = response.header("Content-Length", reply.body.len().to_string());
        let half = Bytes::copy_from_slice(&reply.body[..reply.body.len() / 2]);
        let pause = Box::pin(tokio::time::sleep(Duration::from_millis(50)));
        Either::Right(Cut {
            half: Some(half),
            pause,
        })
    } else {
        Either::Left(Full::new(Bytes::from(reply.body)))
    };
    Ok(response.body(body).expect("a valid response"))
}

/// A body that sends its first half, then fails: the pause lets hyper flush the half to the
/// socket before the error drops the connection.
struct Cut {
    half: Option<Bytes>,
    pause: Pin<Box<tokio::time::Sleep>>,
}

impl Body for Cut {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if let Some(half) = self.half.take() {
            return Poll::Ready(Some(Ok(Frame::data(half))));
        }
        let cut = std::io::Error::other("truncated on purpose");
        self.pause.as_mut().poll(cx).map(|()| Some(Err(cut)))
    }
}
