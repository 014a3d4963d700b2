//! Writes N lines of an integration's outbound HTTP log, JSON, about 300 bytes each: about 2%
//! 401/403, 0.5% 429 in bursts, some 503, over the week before 2026-03-09. Deterministic:
//! the same N gives the same bytes.
//!
//!     cargo run --release --example gen_http_log -- 1000000 > lines.jsonl
//!
//! A second argument, a power of two, gives that many layouts used evenly: each line carries a
//! random subset of optional request headers, as loggers that log only the headers present do.
//!
//!     cargo run --release --example gen_http_log -- 200000 16 > layouts.jsonl

use std::io::{BufWriter, Write};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const HOSTS: [(&str, &str); 4] = [
    (
        "fa-acme.fa.ocs.oraclecloud.com",
        "/fscmRestApi/resources/11.13.18.05/journalBatches",
    ),
    ("api.github.com", "/repos/acme/erp/hooks"),
    ("inventory.acme.example", "/api/v1/items"),
    ("api.stripe.com", "/v1/payment_intents"),
];
const CLIENTS: [&str; 5] = ["erp-sync", "release-bot", "inv-sync", "billing", "reports"];
const METHODS: [&str; 4] = ["GET", "GET", "POST", "PATCH"];

fn main() -> std::io::Result<()> {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let layouts: u64 = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1);
    let optional = layouts.max(1).ilog2();
    let start_ms: i64 = 1_772_409_600_000; // 2026-03-02T00:00:00Z
    let span_ms: i64 = 7 * 86_400_000;
    let mut rng = Rng(0x5eed_2026_0302_0001);
    let out = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 20, out.lock());
    let mut burst_left = 0u64;
    for i in 0..n {
        let t = start_ms + (i as i64 * span_ms) / n as i64;
        let host = (rng.below(4)) as usize;
        let client = CLIENTS[(host + rng.below(2) as usize) % CLIENTS.len()];
        // 0.5% of lines are 429s, in bursts of about 50.
        if burst_left == 0 && rng.below(100_000) < 12 {
            burst_left = 40 + rng.below(20);
        }
        let r = rng.below(1000);
        let status = if burst_left > 0 {
            burst_left -= 1;
            if burst_left.is_multiple_of(7) {
                503
            } else {
                429
            }
        } else if r < 12 {
            401
        } else if r < 20 {
            403
        } else if r < 22 {
            503
        } else if r < 60 {
            404
        } else if r < 200 {
            201
        } else {
            200
        };
        let secs = t.div_euclid(1000);
        let day = (secs / 86_400 - 20_514) + 2; // 2026-03-02 is day 20514
        let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
        let (host_name, path) = HOSTS[host];
        let mut extra = String::new();
        if optional > 0 {
            let present = rng.next();
            for h in (0..optional).filter(|h| present >> h & 1 == 1) {
                extra += &format!(r#","x-opt-{h}":"{:08x}""#, rng.next() & 0xffff_ffff);
            }
        }
        write!(
            out,
            r#"{{"ts":"2026-03-{day:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z","client_id":"{client}","request":{{"id":"req-{id:012x}","method":"{method}","url":"https://{host_name}{path}/{item}","headers":{{"user-agent":"{client}/4.2 (Java 21)"{extra}}}}},"response":{{"status":{status},"duration_ms":{dur}"#,
            ms = t.rem_euclid(1000),
            id = rng.next() & 0xffff_ffff_ffff,
            method = METHODS[rng.below(4) as usize],
            item = rng.below(100_000),
            dur = 20 + rng.below(900),
        )?;
        match status {
            401 => out.write_all(br#","headers":{"www-authenticate":"Bearer error=\"invalid_token\", error_description=\"The access token expired\""}}}"#)?,
            403 => out.write_all(br#","headers":{"www-authenticate":"Bearer error=\"insufficient_scope\", scope=\"gl:journal:write\""},"body":{"error":"insufficient_scope"}}}"#)?,
            429 => out.write_all(br#","headers":{"retry-after":"30","x-ratelimit-remaining":"0"}}}"#)?,
            _ => out.write_all(br#","headers":{"content-type":"application/json"}}}"#)?,
        }
        out.write_all(b"\n")?;
    }
    out.flush()
}
