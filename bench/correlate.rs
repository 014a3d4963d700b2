//! Correlation over a generated week (issue #9): a world shaped like the demo's, scaled up.
//!
//!     cargo run --release --example correlate -- <mode> <failures> <changes>
//!
//! **correlate** feeds every record to `Correlator::add` as it is generated, then `finish`.
//! **baseline** does over the same stream the least any correlator must: per failure, its
//! group key (interned to a u32), time and id; the changes kept; then a sort by key and time
//! and a count of groups split at the 30-minute gap. **generate** only builds the records and
//! drops them: what the other two spend generating, to subtract.
//!
//! Prints one JSON line: `{"mode","failures","changes","findings","seconds","types",
//! "records","vmhwm_kb","fed_vmhwm_kb"}`. `seconds` is generating + feeding + `finish` (not
//! building the world's tables, not dropping the findings); `vmhwm_kb` is the process's peak
//! RSS (VmHWM), read at the end; `fed_vmhwm_kb` the same read before `finish` (correlate
//! only, else 0).
//!
//! The world is fixed whatever the sizes: 10 vendors, 200 tenants (a prod and a test tenant
//! per vendor and pair), 1,000 credential names bound in both environments of their pair
//! (2,000 bindings), 300 webhook endpoints; hourly snapshots of about a tenth of the bindings
//! (some lose a scope, a few get revoked) with the drift rows of the removals; 36 vendor
//! incidents of 2 to 3 updates each; hourly 2xx request counts per (service, operation,
//! method) over 8 days. Failures (denials, webhook failures, 429 bursts) come in clusters of
//! heavy-tailed size (1 to 10,000, most small) over the 7 days from 2026-03-02, some caused
//! by a removal, a revocation, an incident or a change naming the credential; `changes` admin
//! changes (a few name a credential's app or a webhook, most are logins and other noise) over
//! the 8 days from 2026-03-01. Deterministic: a seeded LCG, the same sizes give the same
//! records.

use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::time::Instant;

use scopetrail::analysis::correlate::{Correlator, Settings};
use scopetrail::model::{
    Change, Denial, Header, Incident, RateLimitBurst, Record, RequestCount, TokenSnapshot,
    WebhookFailure,
};
use uuid::Uuid;

// As in the binary (src/main.rs): the engine runs with jemalloc in production.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// 2026-03-01T00:00:00Z: changes, snapshots and counts span 8 days from here.
const START: i64 = 1_772_323_200_000;
const END: i64 = START + 8 * DAY;
/// Failures span the last 7 of them.
const FAIL_START: i64 = START + DAY;
const GAP: i64 = 30 * 60_000;

/// Knuth's MMIX LCG; the high half of the state is the output (its low bits are poor).
struct Rng(u64);

impl Rng {
    fn u32(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 32) as u32
    }
    fn u64(&mut self) -> u64 {
        (u64::from(self.u32()) << 32) | u64::from(self.u32())
    }
    /// 0..n, for n below 2^32.
    fn below(&mut self, n: u64) -> u64 {
        (u64::from(self.u32()) * n) >> 32
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo) as u64) as i64
    }
    /// (0, 1].
    fn unit(&mut self) -> f64 {
        (f64::from(self.u32()) + 1.0) / 4_294_967_296.0
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    fn uid(&mut self) -> Uuid {
        Uuid::from_u64_pair(self.u64(), self.u64())
    }
}

/// A fixed hash, for per-entity traits that must not consume the stream's randomness.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// (name, shared API host or None for one host per tenant, per-tenant host suffix, source).
const VENDORS: [(&str, Option<&str>, &str, &str); 10] = [
    ("oracle_fusion", None, "fa.ocs.oraclecloud.com", "http_log"),
    ("github", Some("api.github.com"), "", "http_log"),
    ("okta", None, "okta.com", "okta"),
    ("stripe", Some("api.stripe.com"), "", "http_log"),
    ("inventory", None, "inventory.example", "http_log"),
    ("salesforce", None, "my.salesforce.com", "http_log"),
    (
        "microsoft_graph",
        Some("graph.microsoft.com"),
        "",
        "http_log",
    ),
    ("aws", Some("iam.amazonaws.com"), "", "http_log"),
    (
        "google_workspace",
        Some("admin.googleapis.com"),
        "",
        "http_log",
    ),
    ("slack", Some("slack.com"), "", "http_log"),
];
const OKTA: usize = 2;
const STRIPE: usize = 3;
const RESOURCES: [&str; 12] = [
    "journalBatches",
    "ledgers",
    "invoices",
    "items",
    "users",
    "groups",
    "orders",
    "payments",
    "files",
    "channels",
    "repos",
    "reports",
];
const OKTA_OPS: [(&str, &str); 3] = [
    (
        "app.oauth2.as.token.grant.access_token",
        "/oauth2/default/v1/token",
    ),
    ("app.oauth2.as.authorize", "/oauth2/default/v1/authorize"),
    ("core.user_auth.login_failed", "/api/v1/authn"),
];
/// Vendors whose webhooks fail (the others have none).
const HOOK_VENDORS: [usize; 6] = [0, 1, 2, 3, 5, 9];

struct Op {
    method: Option<&'static str>,
    template: String,
    path: String,
    scope: String,
}

struct Tenant {
    vendor: usize,
    name: String,
    env: &'static str,
    host: String,
}

struct Binding {
    tenant: usize,
    name: String,
    app: String,
    credential_uid: String,
    issuer: String,
    user_agent: String,
    /// The scopes the credential was granted, sorted.
    granted: Vec<String>,
    snapshotted: bool,
}

struct Endpoint {
    tenant: usize,
    webhook_uid: Option<String>,
    url: Option<String>,
    host: Option<String>,
}

struct World {
    tenants: Vec<Tenant>,
    ops: Vec<Vec<Op>>,
    bindings: Vec<Binding>,
    endpoints: Vec<Endpoint>,
    /// Endpoint indices by tenant.
    hooks_of: Vec<Vec<usize>>,
}

impl World {
    fn new() -> World {
        let ops = (0..VENDORS.len())
            .map(|v| {
                if v == OKTA {
                    return OKTA_OPS
                        .iter()
                        .map(|(op, path)| Op {
                            method: None,
                            template: op.to_string(),
                            path: path.to_string(),
                            scope: "okta.apps.read".into(),
                        })
                        .collect();
                }
                let prefix = match v {
                    0 => "/fscmRestApi/resources/11.13.18.05".to_string(),
                    _ => format!("/api/v{}", 1 + v % 3),
                };
                let mut out = Vec::new();
                for k in 0..4 {
                    let res = RESOURCES[(v * 5 + k) % RESOURCES.len()];
                    let path = format!("{prefix}/{res}");
                    for (method, item, access) in [
                        ("GET", false, "read"),
                        ("GET", true, "read"),
                        ("POST", false, "write"),
                    ] {
                        out.push(Op {
                            method: Some(method),
                            template: if item {
                                format!("{path}/{{id}}")
                            } else {
                                path.clone()
                            },
                            path: if item {
                                format!("{path}/{}", 1000 + k)
                            } else {
                                path.clone()
                            },
                            scope: format!("{}.{access}", res.to_ascii_lowercase()),
                        });
                    }
                }
                out
            })
            .collect::<Vec<Vec<Op>>>();
        let tenants: Vec<Tenant> = (0..200)
            .map(|t| {
                let v = t % 10;
                let (vendor, shared, suffix, _) = VENDORS[v];
                let test = (t / 10) % 2 == 1;
                let name = format!("{vendor}-{:02}{}", t / 20, if test { "-test" } else { "" });
                let host = shared.map_or_else(|| format!("{name}.{suffix}"), str::to_string);
                Tenant {
                    vendor: v,
                    name,
                    env: if test { "test" } else { "prod" },
                    host,
                }
            })
            .collect();
        let bindings = (0..2000)
            .map(|b| {
                let t = b / 10;
                let tenant = &tenants[t];
                let v = tenant.vendor;
                let vendor = VENDORS[v].0;
                let name = format!("{vendor}-{:02}-app{}", t / 20, b % 10);
                let h = mix(b as u64);
                let app = match v {
                    OKTA => format!("0oa{:013x}x7", h >> 12),
                    1 => format!("Iv1.{:016x}", h),
                    _ if tenant.env == "test" => format!("{name}-test"),
                    _ => name.clone(),
                };
                let issuer = match v {
                    OKTA => format!("https://{}/oauth2/default", tenant.host),
                    _ => format!("https://idcs-{}.identity.example", tenant.name),
                };
                // Every read scope; each write scope with a probability of a half.
                let mut granted: Vec<String> = ops[v]
                    .iter()
                    .enumerate()
                    .filter(|(o, op)| op.scope.ends_with(".read") || (h >> (o % 60)) & 1 == 1)
                    .map(|(_, op)| op.scope.clone())
                    .collect();
                granted.sort();
                granted.dedup();
                Binding {
                    tenant: t,
                    credential_uid: format!("{issuer}#{app}"),
                    issuer,
                    user_agent: format!("{name}/2.{} (Java 21)", b % 10),
                    name,
                    app,
                    granted,
                    snapshotted: (h >> 40).is_multiple_of(10),
                }
            })
            .collect();
        let hook_tenants: Vec<usize> = (0..200)
            .filter(|t| HOOK_VENDORS.contains(&(t % 10)))
            .collect();
        let mut hooks_of = vec![Vec::new(); tenants.len()];
        let endpoints = (0..300)
            .map(|e| {
                let t = hook_tenants[(e * 37) % hook_tenants.len()];
                hooks_of[t].push(e);
                let tenant = &tenants[t];
                let host = format!("recv{e:03}.{}.example", tenant.name);
                match tenant.vendor {
                    // Stripe's events say no endpoint.
                    STRIPE => Endpoint {
                        tenant: t,
                        webhook_uid: None,
                        url: None,
                        host: None,
                    },
                    v => Endpoint {
                        tenant: t,
                        webhook_uid: Some(if v == 1 {
                            format!("{}", 40_125_000 + e)
                        } else {
                            format!("hook-{e:04}")
                        }),
                        url: Some(format!("https://{host}/hooks/{}", VENDORS[v].0)),
                        host: Some(host),
                    },
                }
            })
            .collect();
        World {
            tenants,
            ops,
            bindings,
            endpoints,
            hooks_of,
        }
    }

    fn header(&self, t: usize, time: i64, uid: Uuid, source: &str) -> Header {
        let tenant = &self.tenants[t];
        Header {
            time,
            event_uid: uid,
            vendor: VENDORS[tenant.vendor].0.to_string(),
            tenant: tenant.name.clone(),
            environment: tenant.env.to_string(),
            source: source.to_string(),
            source_event_uid: None,
            credential: None,
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum DenialKind {
    /// 403 insufficient_scope naming the scope (WWW-Authenticate scope=).
    MissingScope,
    /// 403 with a vendor code, no scope named.
    Forbidden,
    /// 401 invalid_token, expired.
    Expired,
    /// 401 invalid_client.
    BadClient,
    /// Okta's System Log: no status.
    Okta,
}

#[derive(Clone, Copy)]
enum What {
    Denial {
        binding: usize,
        unbound: bool,
        op: usize,
        kind: DenialKind,
    },
    Webhook {
        endpoint: usize,
    },
    Bursts {
        binding: usize,
        op: usize,
        cycling: bool,
    },
}

#[derive(Clone, Copy)]
struct Episode {
    what: What,
    start: i64,
    size: u64,
    /// Mean time between failures.
    every: i64,
    /// Runs of a few failures every 4 hours (a job refused each time it runs).
    chronic: bool,
}

#[derive(Default, serde::Serialize)]
struct Counts {
    denials: u64,
    webhook_failures: u64,
    rate_limit_bursts: u64,
    changes: u64,
    drift_changes: u64,
    token_snapshots: u64,
    incidents: u64,
    request_counts: u64,
}

struct Gen<'w, 's> {
    w: &'w World,
    rng: Rng,
    sink: &'s mut dyn FnMut(&Record),
    counts: Counts,
    /// Episodes a cause in the stream sets off, run next.
    pending: Vec<Episode>,
}

impl<'w, 's> Gen<'w, 's> {
    /// Generates the week into `sink`; returns what was fed.
    fn feed(
        w: &'w World,
        rng: Rng,
        sink: &'s mut dyn FnMut(&Record),
        failures: u64,
        changes: u64,
    ) -> Counts {
        let mut g = Gen {
            w,
            rng,
            sink,
            counts: Counts::default(),
            pending: Vec::new(),
        };
        g.run(failures, changes);
        g.counts
    }

    fn emit(&mut self, record: Record) {
        (self.sink)(&record);
    }

    /// Everything: the fixed evidence first, then failures with the changes interleaved in
    /// proportion.
    fn run(&mut self, failures: u64, changes: u64) {
        let mut planned = self.snapshots();
        planned.extend(self.incidents());
        self.request_counts();
        let mut done = 0;
        while done < failures {
            let episode = match self.pending.pop().or_else(|| planned.pop()) {
                Some(e) => e,
                None => self.random_episode(),
            };
            done += self.episode(episode, failures - done);
            while self.counts.changes < changes * done / failures {
                self.change();
            }
        }
        while self.counts.changes < changes {
            self.change();
        }
    }

    /// A binding, skewed: the busiest tenth of them get about a third of the episodes.
    fn busy_binding(&mut self) -> usize {
        let r = (2000.0 * self.rng.unit().powi(2)) as usize;
        (r.min(1999) * 7919) % 2000
    }

    /// 1 to 10,000, P(size >= k) = 1/k.
    fn cluster_size(&mut self) -> u64 {
        ((1.0 / self.rng.unit()) as u64).clamp(1, 10_000)
    }

    fn random_episode(&mut self) -> Episode {
        let start = self.rng.range(FAIL_START, END);
        let size = self.cluster_size();
        let every = *self
            .rng
            .pick(&[10_000, 30_000, 60_000, 60_000, 300_000, 900_000]);
        let roll = self.rng.below(100);
        let what = if roll < 82 {
            let binding = self.busy_binding();
            let v = self.w.tenants[self.w.bindings[binding].tenant].vendor;
            let n = self.w.ops[v].len() as u64;
            // Each credential fails on a few operations of its own, mostly.
            let op = ((mix(binding as u64) % n + self.rng.below(3) * 5) % n) as usize;
            let kind = if v == OKTA {
                DenialKind::Okta
            } else {
                match self.rng.below(100) {
                    0..45 => DenialKind::MissingScope,
                    45..60 => DenialKind::Forbidden,
                    60..85 => DenialKind::Expired,
                    _ => DenialKind::BadClient,
                }
            };
            What::Denial {
                binding,
                unbound: self.rng.chance(5),
                op,
                kind,
            }
        } else if roll < 96 {
            What::Webhook {
                endpoint: self.rng.below(self.w.endpoints.len() as u64) as usize,
            }
        } else {
            let binding = self.busy_binding();
            let v = self.w.tenants[self.w.bindings[binding].tenant].vendor;
            What::Bursts {
                binding,
                op: self.rng.below(self.w.ops[v].len() as u64) as usize,
                cycling: self.rng.chance(20),
            }
        };
        Episode {
            what,
            start,
            size: if matches!(what, What::Bursts { .. }) {
                1 + self.rng.below(4)
            } else {
                size
            },
            every: if matches!(what, What::Bursts { .. }) {
                20 * 60_000
            } else {
                every
            },
            chronic: matches!(what, What::Denial { .. }) && self.rng.chance(5),
        }
    }

    /// Emits up to `budget` failures of an episode (fewer if it runs past the week).
    fn episode(&mut self, e: Episode, budget: u64) -> u64 {
        let w = self.w;
        let size = e.size.min(budget);
        let run = 1 + self.rng.below(3);
        let mut t = e.start.clamp(FAIL_START, END - 1);
        let mut emitted = 0;
        match e.what {
            What::Denial {
                binding,
                unbound,
                op,
                kind,
            } => {
                let b = &w.bindings[binding];
                let tenant = &w.tenants[b.tenant];
                let o = &w.ops[tenant.vendor][op];
                let source = VENDORS[tenant.vendor].3;
                let app = if unbound {
                    format!("{}-unbound-{}", VENDORS[tenant.vendor].0, binding % 50)
                } else {
                    b.app.clone()
                };
                let mut template = Denial {
                    head: w.header(b.tenant, 0, Uuid::nil(), source),
                    api_service: (kind != DenialKind::Okta).then(|| tenant.host.clone()),
                    api_operation: Some(o.template.clone()),
                    http_method: o.method.map(str::to_string),
                    url_path: Some(o.path.clone()),
                    actor_app: Some(app.clone()),
                    credential_uid: (!unbound).then(|| b.credential_uid.clone()),
                    user_agent: Some(b.user_agent.clone()),
                    ..Denial::default()
                };
                template.head.credential = (!unbound).then(|| b.name.clone());
                let (status, auth, code, message): (Option<i64>, Option<&str>, Option<&str>, &str) =
                    match kind {
                        DenialKind::MissingScope => {
                            template.required_scope = vec![o.scope.clone()];
                            (
                                Some(403),
                                Some("insufficient_scope"),
                                Some("insufficient_scope"),
                                "",
                            )
                        }
                        DenialKind::Forbidden => (
                            Some(403),
                            None,
                            Some(*self.rng.pick(&[
                                "INSUFFICIENT_ACCESS",
                                "AccessDenied",
                                "Forbidden",
                            ])),
                            "You do not have permission to perform this action",
                        ),
                        DenialKind::Expired => (
                            Some(401),
                            Some("invalid_token"),
                            None,
                            "The access token expired",
                        ),
                        DenialKind::BadClient => (
                            Some(401),
                            Some("invalid_token"),
                            Some("invalid_client"),
                            "Client authentication failed",
                        ),
                        DenialKind::Okta if self.rng.chance(70) => (
                            None,
                            Some("invalid_client"),
                            Some("invalid_client"),
                            "OAuth2 access token request",
                        ),
                        DenialKind::Okta => (
                            None,
                            None,
                            Some("E0000006"),
                            "You do not have permission to perform the requested action",
                        ),
                    };
                template.http_status = status;
                template.auth_error = auth.map(str::to_string);
                template.error_code = code.map(str::to_string);
                template.error_message = Some(if kind == DenialKind::MissingScope {
                    format!("Missing scope {}", o.scope)
                } else {
                    message.to_string()
                });
                let log = self.rng.u64();
                while emitted < size && t < END {
                    let mut d = template.clone();
                    d.head.time = t;
                    d.head.event_uid = self.rng.uid();
                    let n = self.rng.u64();
                    if kind == DenialKind::Okta {
                        d.head.source_event_uid = Some(format!("{:032x}", n));
                        d.src_ip = Some(format!(
                            "10.{}.{}.{}",
                            n & 255,
                            (n >> 8) & 255,
                            (n >> 16) & 255
                        ));
                    } else {
                        d.head.source_event_uid = Some(format!("{log:016x}@{}", n >> 44));
                        d.request_id = Some(format!("req-{:012x}", n >> 16));
                    }
                    self.emit(d.into());
                    self.counts.denials += 1;
                    emitted += 1;
                    t += self.next_gap(&e, emitted, run);
                }
            }
            What::Webhook { endpoint } => {
                let ep = &w.endpoints[endpoint];
                let vendor = w.tenants[ep.tenant].vendor;
                let (error_type, status, message) = *self.rng.pick(&[
                    ("timeout", None, "Timed out after 10 seconds"),
                    ("http_5xx", Some(502), "502 Bad Gateway"),
                    ("http_5xx", Some(503), "503 Service Unavailable"),
                    ("connect", None, "Connection refused"),
                    ("tls", None, "certificate verify failed"),
                    ("dns", None, "no such host"),
                ]);
                let (error_type, status, message) = if vendor == STRIPE {
                    (
                        "failed",
                        None,
                        "1 webhook endpoint(s) never acknowledged it within Stripe's 3 days of retries",
                    )
                } else {
                    (error_type, status, message)
                };
                let template = WebhookFailure {
                    head: w.header(ep.tenant, 0, Uuid::nil(), VENDORS[vendor].0),
                    webhook_uid: ep.webhook_uid.clone(),
                    dst_hostname: ep.host.clone(),
                    url: ep.url.clone(),
                    http_status: status,
                    error_type: Some(error_type.to_string()),
                    error_message: Some(message.to_string()),
                    ..WebhookFailure::default()
                };
                while emitted < size && t < END {
                    let mut f = template.clone();
                    f.head.time = t;
                    f.head.event_uid = self.rng.uid();
                    let n = self.rng.u64();
                    let delivery = format!("{:016x}", n);
                    f.head.source_event_uid = Some(delivery.clone());
                    f.delivery_uid = Some(delivery);
                    f.delivery_group = Some(format!("{:016x}", n >> 3));
                    f.webhook_event = Some(
                        self.rng
                            .pick(&["push", "pull_request", "invoice.paid", "user.created"])
                            .to_string(),
                    );
                    f.attempt = Some(1 + (n % 5) as i64);
                    f.redelivery = Some(!n.is_multiple_of(5));
                    f.latency_ms = Some((n % 10_000) as i64);
                    self.emit(f.into());
                    self.counts.webhook_failures += 1;
                    emitted += 1;
                    t += self.next_gap(&e, emitted, run);
                }
            }
            What::Bursts {
                binding,
                op,
                cycling,
            } => {
                let b = &w.bindings[binding];
                let tenant = &w.tenants[b.tenant];
                let o = &w.ops[tenant.vendor][op];
                while emitted < size && t < END {
                    let count = 10 + (300.0 * self.rng.unit().powi(3)) as i64;
                    let end = t + count * self.rng.range(200, 2000);
                    let retry_after = self.rng.range(1, 60);
                    let mut head = w.header(b.tenant, t, self.rng.uid(), VENDORS[tenant.vendor].3);
                    head.credential = Some(b.name.clone());
                    self.emit(
                        RateLimitBurst {
                            head,
                            start_time_dt: Some(t),
                            end_time_dt: Some(end),
                            count: Some(count),
                            peak_per_minute: Some(count.min(60)),
                            interleaved_503: Some(if cycling { count / 7 } else { 0 }),
                            api_service: Some(tenant.host.clone()),
                            api_operation: Some(o.template.clone()),
                            actor_app: Some(b.app.clone()),
                            credential_uid: Some(b.credential_uid.clone()),
                            retry_after_max_s: Some(retry_after),
                            ratelimit_limit: Some(600),
                            ratelimit_remaining_min: Some(0),
                            // The engine reads only the count; the 429s' ids are left out.
                            related_events_count: Some(count),
                            revision: Some(1),
                            ..RateLimitBurst::default()
                        }
                        .into(),
                    );
                    self.counts.rate_limit_bursts += 1;
                    emitted += 1;
                    t = end + self.rng.range(e.every / 2, e.every * 3 / 2);
                }
            }
        }
        // At least one: the start is within the week and the budget at least 1.
        emitted
    }

    /// The time to the next failure of an episode: about `every`; a chronic one pauses 4 hours
    /// after each run of `run` failures.
    fn next_gap(&mut self, e: &Episode, emitted: u64, run: u64) -> i64 {
        let gap = self.rng.range(e.every / 2, e.every * 3 / 2).max(1000);
        if e.chronic && emitted.is_multiple_of(run) {
            4 * HOUR + self.rng.range(-GAP / 2, GAP / 2)
        } else {
            gap.min(GAP - 60_000)
        }
    }

    /// One admin change: most are noise, a few name a credential's app or a webhook. Some of
    /// those set off failures of that credential.
    fn change(&mut self) {
        let w = self.w;
        let time = self.rng.range(START, END);
        let t = (200.0 * self.rng.unit().powf(1.5)) as usize;
        let t = (t.min(199) * 71) % 200;
        let tenant = &w.tenants[t];
        let vendor = VENDORS[tenant.vendor].0;
        let source = match tenant.vendor {
            OKTA => "okta".to_string(),
            _ => format!("{vendor}.audit_log"),
        };
        let mut head = w.header(t, time, self.rng.uid(), &source);
        let n = self.rng.u64();
        head.source_event_uid = Some(format!("{:020x}", n >> 8));
        let admin = format!("admin{}@{}.example", n % 7, tenant.name);
        let roll = self.rng.below(100);
        let change = if roll < 3 {
            let binding = t * 10 + (n % 10) as usize;
            let b = &w.bindings[binding];
            let (action, target_type) = *self.rng.pick(&[
                ("app.oauth2.client.lifecycle.update", "PublicClientApp"),
                ("oauth_application.revoke", "oauth_application"),
                ("client_secret.rotate", "oauth_application"),
                ("app.grant.scope.revoke", "oauth_application"),
                ("role.permission.remove", "integration_user"),
                ("integration.access.update", "integration"),
            ]);
            if self.rng.chance(50) {
                head.credential = Some(b.name.clone());
            }
            if self.rng.chance(30) {
                let v = tenant.vendor;
                let op = (mix(binding as u64) % w.ops[v].len() as u64) as usize;
                let kind = match (v, action) {
                    (OKTA, _) => DenialKind::Okta,
                    (_, a) if a.contains("role") || a.contains("scope") => DenialKind::Forbidden,
                    _ => DenialKind::BadClient,
                };
                let size = self.cluster_size();
                self.pending.push(Episode {
                    what: What::Denial {
                        binding,
                        unbound: false,
                        op,
                        kind,
                    },
                    start: (time + self.rng.range(60_000, 2 * HOUR)).max(FAIL_START),
                    size,
                    every: 60_000,
                    chronic: false,
                });
            }
            Change {
                head,
                action: Some(action.to_string()),
                actor_user: Some(admin),
                target_type: Some(target_type.to_string()),
                target: Some(b.app.clone()),
                details: Some(format!("result=SUCCESS client_id={}", b.app)),
            }
        } else if roll < 4 && !w.hooks_of[t].is_empty() {
            let ep = &w.endpoints[*self.rng.pick(&w.hooks_of[t])];
            Change {
                head,
                action: Some("hook.config_changed".into()),
                actor_user: Some(admin),
                target_type: Some("hook".into()),
                target: ep.webhook_uid.clone(),
                details: Some(format!(
                    "hook_id={} config.url={}",
                    ep.webhook_uid.as_deref().unwrap_or(""),
                    ep.url.as_deref().unwrap_or("")
                )),
            }
        } else {
            // Logins dominate audit logs; about a quarter are about access.
            let (action, target_type) = *self.rng.pick(&[
                ("user.session.start", "user"),
                ("user.session.start", "user"),
                ("user.authentication.sso", "user"),
                ("user.authentication.sso", "user"),
                ("user.login", "user"),
                ("user.login", "user"),
                ("user.mfa.factor.activate", "user"),
                ("user.account.update_password", "user"),
                ("repo.create", "repo"),
                ("git.clone", "repo"),
                ("record.update", "record"),
                ("document.share", "document"),
                ("team.add_member", "team"),
                ("team.remove_member", "team"),
                ("group.user_membership.add", "group"),
                ("role.assigned", "role"),
            ]);
            let target = match target_type {
                "user" | "team" | "group" | "role" => {
                    format!("user{}@{}.example", n % 500, tenant.name)
                }
                _ => format!("{target_type}-{}", n % 1000),
            };
            Change {
                head,
                action: Some(action.to_string()),
                actor_user: Some(admin),
                target_type: Some(target_type.to_string()),
                target: Some(target),
                details: Some(format!(
                    "result=SUCCESS ip=10.{}.{}.{}",
                    (n >> 8) & 255,
                    (n >> 16) & 255,
                    (n >> 24) & 255
                )),
            }
        };
        self.emit(change.into());
        self.counts.changes += 1;
    }

    /// Hourly snapshots of about a tenth of the bindings over the 8 days; a fifth of them
    /// lose a scope once (with scopetrail's drift row), a twentieth are revoked. Returns the
    /// failures those set off.
    fn snapshots(&mut self) -> Vec<Episode> {
        let w = self.w;
        let mut caused = Vec::new();
        for (i, b) in w.bindings.iter().enumerate().filter(|(_, b)| b.snapshotted) {
            let tenant = &w.tenants[b.tenant];
            let v = tenant.vendor;
            let h = mix(i as u64 ^ 0xabcd);
            let mut held: Vec<String> = b.granted.clone();
            let removal =
                (h.is_multiple_of(5) && held.len() > 1).then(|| (24 + (h >> 8) % 160) as i64);
            let revoked = (h >> 20)
                .is_multiple_of(20)
                .then(|| (48 + (h >> 28) % 140) as i64);
            let skew = if (h >> 36).is_multiple_of(30) {
                120_000
            } else {
                (h >> 40) as i64 % 2000
            };
            let audience = if (h >> 44).is_multiple_of(20) {
                format!("https://other-{}.example", tenant.name)
            } else {
                format!("https://{}:443", tenant.host)
            };
            for hour in 0..192i64 {
                let time = START + hour * HOUR + 60_000;
                let mut removed = Vec::new();
                if removal == Some(hour) {
                    let lost = held.remove((h >> 16) as usize % held.len());
                    removed.push(format!("scp:{lost}"));
                    let mut head = w.header(b.tenant, time, self.rng.uid(), "scopetrail.drift");
                    head.credential = Some(b.name.clone());
                    self.emit(
                        Change {
                            head,
                            action: Some("privileges_removed".into()),
                            target_type: Some("credential".into()),
                            target: Some(format!("{} ({})", b.name, tenant.env)),
                            details: Some(format!("removed={}", removed[0])),
                            ..Change::default()
                        }
                        .into(),
                    );
                    self.counts.drift_changes += 1;
                    if let Some(op) = w.ops[v].iter().position(|o| o.scope == lost) {
                        caused.push(Episode {
                            what: What::Denial {
                                binding: i,
                                unbound: false,
                                op,
                                kind: if v == OKTA {
                                    DenialKind::Okta
                                } else {
                                    DenialKind::MissingScope
                                },
                            },
                            start: (time + self.rng.range(60_000, 3 * HOUR)).max(FAIL_START),
                            size: 20 + self.rng.below(500),
                            every: 60_000,
                            chronic: false,
                        });
                    }
                }
                let refused = revoked.is_some_and(|r| hour >= r);
                if revoked == Some(hour) {
                    caused.push(Episode {
                        what: What::Denial {
                            binding: i,
                            unbound: false,
                            op: (h % w.ops[v].len() as u64) as usize,
                            kind: if v == OKTA {
                                DenialKind::Okta
                            } else {
                                DenialKind::BadClient
                            },
                        },
                        start: (time + self.rng.range(60_000, HOUR)).max(FAIL_START),
                        size: 50 + self.rng.below(2000),
                        every: 30_000,
                        chronic: false,
                    });
                }
                let mut head = w.header(b.tenant, time, self.rng.uid(), "scopetrail.snapshot");
                head.credential = Some(b.name.clone());
                self.emit(
                    TokenSnapshot {
                        head,
                        probe: Some("jwt".into()),
                        status: Some(if refused { "invalid_client" } else { "ok" }.into()),
                        token_type: Some("access_token".into()),
                        issuer: Some(b.issuer.clone()),
                        audience: if refused {
                            Vec::new()
                        } else {
                            vec![audience.clone()]
                        },
                        subject: Some(b.app.clone()),
                        actor_app: Some(b.app.clone()),
                        privileges: (!refused)
                            .then(|| held.iter().map(|s| format!("scp:{s}")).collect()),
                        issued_at_dt: (!refused).then_some(time),
                        expires_at_dt: (!refused).then_some(time + HOUR),
                        server_skew_ms: Some(skew),
                        credential_uid: Some(b.credential_uid.clone()),
                        privileges_removed: removed,
                        signature: Some("not checked (no jwks_url)".into()),
                        ..TokenSnapshot::default()
                    }
                    .into(),
                );
                self.counts.token_snapshots += 1;
            }
        }
        caused
    }

    /// 36 incidents, each posted, updated and resolved (or not), with failures of the vendor
    /// starting around them.
    fn incidents(&mut self) -> Vec<Episode> {
        let w = self.w;
        let mut caused = Vec::new();
        for i in 0..36usize {
            let v = i % 10;
            let started = self.rng.range(START, END - HOUR);
            let resolved = started + self.rng.range(20 * 60_000, 6 * HOUR);
            let components: &[&str] = match i % 5 {
                0 => &["API"],
                1 => &["Webhooks"],
                2 => &["API", "Webhooks"],
                3 => &["Actions"],
                _ => &[],
            };
            let id = format!("inc{:08x}", self.rng.u32());
            let updates = 2 + self.rng.below(2) as i64;
            for u in 0..updates {
                let last = u == updates - 1;
                let time = if last {
                    resolved
                } else {
                    started + u * 10 * 60_000
                };
                let mut head = w.header(v, time, self.rng.uid(), "statuspage");
                head.source_event_uid = Some(id.clone());
                self.emit(
                    Incident {
                        head,
                        name: Some(format!("Degraded performance of {}", VENDORS[v].0)),
                        status: Some(if last { "resolved" } else { "investigating" }.into()),
                        impact: Some("minor".into()),
                        components: components.iter().map(|c| c.to_string()).collect(),
                        started_dt: Some(started),
                        resolved_dt: last.then_some(resolved),
                        url: Some(format!("https://stspg.io/{id}")),
                    }
                    .into(),
                );
                self.counts.incidents += 1;
            }
            // A few of the vendor's integrations fail with it.
            for _ in 0..1 + self.rng.below(3) {
                let mut e = self.random_episode();
                e.start = (started + self.rng.range(-5 * 60_000, 10 * 60_000)).max(FAIL_START);
                e.chronic = false;
                caused.push(e);
            }
        }
        caused
    }

    /// Hourly 2xx counts per (service, operation, method) over the 8 days. Okta's come from
    /// its log, not a proxy's: none.
    fn request_counts(&mut self) {
        let w = self.w;
        let mut seen = std::collections::HashSet::new();
        for (t, tenant) in w.tenants.iter().enumerate() {
            if tenant.vendor == OKTA || !seen.insert(tenant.host.clone()) {
                continue;
            }
            for op in &w.ops[tenant.vendor] {
                for hour in 0..192i64 {
                    let time = START + hour * HOUR;
                    let (uid, count) = (self.rng.uid(), 1 + self.rng.below(200) as i64);
                    self.emit(
                        RequestCount {
                            head: w.header(t, time, uid, "http_log"),
                            hour_dt: Some(time),
                            api_service: Some(tenant.host.clone()),
                            api_operation: Some(op.template.clone()),
                            http_method: op.method.map(str::to_string),
                            status_class: Some("2xx".into()),
                            actor_app: None,
                            count: Some(count),
                        }
                        .into(),
                    );
                    self.counts.request_counts += 1;
                }
            }
        }
    }
}

/// What any correlator must at least do: a group key per failure, interned, with its time
/// and id; the changes kept; a sort by key and time; groups split at the gap.
#[derive(Default)]
struct Baseline {
    ids: HashMap<String, u32>,
    failures: Vec<(u32, i64, Uuid)>,
    changes: Vec<Change>,
}

impl Baseline {
    fn add(&mut self, record: &Record) {
        let h = record.head();
        let who = |app: &Option<String>| match (&h.credential, app) {
            (Some(c), _) => format!("credential:{c}"),
            (None, Some(a)) => format!("app:{a}"),
            (None, None) => String::new(),
        };
        let (key, time) = match record {
            Record::Denials(d) => {
                let class = if d.http_status == Some(403) || !d.required_scope.is_empty() {
                    "forbidden"
                } else {
                    "unauthorized"
                };
                let op = d.api_operation.as_ref().or(d.url_path.as_ref());
                (
                    format!(
                        "{class}|{}|{}|{}|{}|{} {}",
                        h.vendor,
                        h.tenant,
                        h.environment,
                        who(&d.actor_app),
                        d.http_method.as_deref().unwrap_or(""),
                        op.map_or("", String::as_str)
                    ),
                    h.time,
                )
            }
            Record::WebhookFailures(f) => (
                format!(
                    "webhook|{}|{}|{}|{}",
                    h.vendor,
                    h.tenant,
                    h.environment,
                    f.webhook_uid
                        .as_ref()
                        .or(f.url.as_ref())
                        .or(f.dst_hostname.as_ref())
                        .map_or("", String::as_str)
                ),
                h.time,
            ),
            Record::RateLimitBursts(b) => (
                format!(
                    "rate_limit|{}|{}|{}|{}|{}",
                    h.vendor,
                    h.tenant,
                    h.environment,
                    who(&b.actor_app),
                    b.api_operation.as_deref().unwrap_or("")
                ),
                b.start_time_dt.unwrap_or(h.time),
            ),
            Record::Changes(c) => {
                self.changes.push(c.clone());
                return;
            }
            _ => return,
        };
        let next = self.ids.len() as u32;
        let id = match self.ids.get(&key) {
            Some(&id) => id,
            None => {
                self.ids.insert(key, next);
                next
            }
        };
        self.failures.push((id, time, h.event_uid));
    }

    fn finish(mut self) -> u64 {
        self.failures.sort_unstable();
        let mut groups = 0;
        let mut prev: Option<(u32, i64)> = None;
        for &(key, time, _) in &self.failures {
            if prev.is_none_or(|(k, t)| k != key || time > t + GAP) {
                groups += 1;
            }
            prev = Some((key, time));
        }
        black_box(&self.changes);
        groups
    }
}

/// Peak resident set size of this process so far, KB (0 where /proc has no VmHWM).
fn vmhwm_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: correlate <correlate|baseline|generate> <failures> <changes>";
    let [mode, failures, changes] = args.as_slice() else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let (Ok(failures), Ok(changes)) = (failures.parse::<u64>(), changes.parse::<u64>()) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    if failures == 0 {
        eprintln!("failures must be at least 1");
        std::process::exit(2);
    }
    let world = World::new();
    let rng = Rng(0x5eed_2026_0301_0009);
    let mut types: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut fed_kb = 0;
    let t0 = Instant::now();
    let (findings, counts, seconds) = match mode.as_str() {
        "correlate" => {
            let mut correlator = Correlator::new(Settings::default());
            let mut sink = |r: &Record| correlator.add(r);
            let counts = Gen::feed(&world, rng, &mut sink, failures, changes);
            // A few microseconds: how much of the peak is the evidence, before finish.
            fed_kb = vmhwm_kb();
            let found = correlator.finish();
            let seconds = t0.elapsed().as_secs_f64();
            for f in &found {
                *types.entry(f.finding_type.as_str()).or_default() += 1;
            }
            (found.len() as u64, counts, seconds)
        }
        "baseline" => {
            let mut baseline = Baseline::default();
            let mut sink = |r: &Record| baseline.add(r);
            let counts = Gen::feed(&world, rng, &mut sink, failures, changes);
            let groups = baseline.finish();
            (groups, counts, t0.elapsed().as_secs_f64())
        }
        "generate" => {
            let mut sink = |r: &Record| {
                black_box(r);
            };
            let counts = Gen::feed(&world, rng, &mut sink, failures, changes);
            (0, counts, t0.elapsed().as_secs_f64())
        }
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    println!(
        "{}",
        serde_json::json!({
            "mode": mode,
            "failures": failures,
            "changes": changes,
            "findings": findings,
            "seconds": seconds,
            "types": types,
            "records": counts,
            "vmhwm_kb": vmhwm_kb(),
            "fed_vmhwm_kb": fed_kb,
        })
    );
}
