//! The nine datasets of DESIGN §4: one struct each, whose field order is the CSV column order.
//! Within `v1` columns are only ever appended at the end.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::column::{
    Cell, CellValue, Column, Kind, ToCell, boolean, datetime, field, id, int, list, text,
};

/// The leading columns every dataset shares.
pub const HEADER_COLUMNS: &[Column] = &[
    Column::new(Kind::EpochMs, "Event time, epoch milliseconds.")
        .named("time")
        .ocsf("time")
        .ecs("@timestamp"),
    Column::new(Kind::DateTime, "Event time, RFC 3339 UTC.")
        .named("time_dt")
        .ocsf("time_dt"),
    Column::new(
        Kind::Uuid,
        "Deterministic UUIDv5 of the event: the dedup key downstream.",
    )
    .named("event_uid")
    .ocsf("metadata.uid")
    .ecs("event.id"),
    id("The API the event concerns (github, stripe, okta, oracle_fusion...).")
        .named("vendor")
        .ocsf("metadata.product.vendor_name")
        .ecs("event.provider"),
    id("The org, account or instance the event belongs to, from the configuration.")
        .named("tenant")
        .ocsf("metadata.tenant_uid")
        .ecs("organization.id"),
    id("prod, test... from the configuration.")
        .named("environment")
        .ecs("labels.environment"),
    id("What produced the row: a vendor source, http_log, or scopetrail.* itself.")
        .named("source")
        .ocsf("metadata.log_name")
        .ecs("event.dataset"),
    id("The vendor's own id of the event; empty for rows scopetrail derives.")
        .named("source_event_uid")
        .ocsf("metadata.original_event_uid"),
    id("The logical credential name from the bindings, when one claims the row.")
        .named("credential"),
];

/// The leading columns' values.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Header {
    /// Epoch milliseconds.
    pub time: i64,
    pub event_uid: Uuid,
    pub vendor: String,
    pub tenant: String,
    pub environment: String,
    pub source: String,
    pub source_event_uid: Option<String>,
    pub credential: Option<String>,
}

impl Header {
    fn push_cells<'a>(&'a self, out: &mut Vec<Cell<'a>>) {
        out.push(Cell::Int(self.time));
        out.push(Cell::Int(self.time));
        out.push(Cell::Uuid(&self.event_uid));
        out.push(Cell::Str(&self.vendor));
        out.push(Cell::Str(&self.tenant));
        out.push(Cell::Str(&self.environment));
        out.push(Cell::Str(&self.source));
        out.push(self.source_event_uid.to_cell());
        out.push(self.credential.to_cell());
    }

    /// `push_cells` in reverse; `time_dt` repeats `time` and is passed over.
    fn from_values(value: Values<'_>) -> Result<Header, (&'static Column, String)> {
        let c = HEADER_COLUMNS;
        let time = field(&c[0], value)?;
        value(&c[1]).map_err(|e| (&c[1], e))?;
        Ok(Header {
            time,
            event_uid: field(&c[2], value)?,
            vendor: field(&c[3], value)?,
            tenant: field(&c[4], value)?,
            environment: field(&c[5], value)?,
            source: field(&c[6], value)?,
            source_event_uid: field(&c[7], value)?,
            credential: field(&c[8], value)?,
        })
    }
}

/// Where a row read back gets its values: each column's, called in column order.
pub type Values<'a> = &'a mut dyn FnMut(&'static Column) -> Result<CellValue, String>;

macro_rules! datasets {
    (
        exported { $($exported:ident)* }
        internal { $($internal:ident)* }
        $(
            $(#[$meta:meta])*
            $variant:ident($ty:ident) = $name:literal, ocsf $ocsf:literal {
                $( $field:ident : $fty:ty = $col:expr ),* $(,)?
            }
        )*
    ) => {
        /// A dataset: one CSV table, one folder under `v1/`; or an internal one, staged as
        /// input to derived datasets and never exported.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Dataset { $($variant),* }

        impl Dataset {
            /// The exported datasets, in CSV-contract order.
            pub const ALL: &'static [Dataset] = &[$(Dataset::$exported),*];
            /// Staged only, as input to derived datasets.
            pub const INTERNAL: &'static [Dataset] = &[$(Dataset::$internal),*];

            pub fn name(self) -> &'static str {
                match self { $(Dataset::$variant => $name),* }
            }

            /// An exported dataset by name.
            pub fn from_name(name: &str) -> Option<Dataset> {
                Self::ALL.iter().copied().find(|d| d.name() == name)
            }

            pub fn is_exported(self) -> bool {
                Self::ALL.contains(&self)
            }

            /// The OCSF class, as a hint for SIEM mappings.
            pub fn ocsf_class(self) -> &'static str {
                match self { $(Dataset::$variant => $ocsf),* }
            }

            /// The dataset's own columns, after `HEADER_COLUMNS`.
            pub fn specific_columns(self) -> &'static [Column] {
                match self { $(Dataset::$variant => $ty::COLUMNS),* }
            }

            /// Every column in CSV order.
            pub fn columns(self) -> impl Iterator<Item = &'static Column> {
                HEADER_COLUMNS.iter().chain(self.specific_columns())
            }
        }

        $(
            $(#[$meta])*
            #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
            pub struct $ty {
                pub head: Header,
                $( #[serde(default)] pub $field: $fty, )*
            }

            impl $ty {
                pub const COLUMNS: &'static [Column] = &[$( ($col).named(stringify!($field)) ),*];

                fn push_cells<'a>(&'a self, out: &mut Vec<Cell<'a>>) {
                    $( out.push(ToCell::to_cell(&self.$field)); )*
                }

                fn text_field_mut(&mut self, column: &str) -> Option<&mut Option<String>> {
                    match column {
                        $( stringify!($field) => ToCell::as_text_mut(&mut self.$field), )*
                        _ => None,
                    }
                }

                fn from_values(head: Header, value: Values<'_>) -> Result<Self, (&'static Column, String)> {
                    let mut columns = Self::COLUMNS.iter();
                    let mut next = || columns.next().ok_or_else(|| {
                        (&HEADER_COLUMNS[0], "a field without a column".to_string())
                    });
                    Ok($ty { head, $( $field: field(next()?, value)?, )* })
                }
            }

            impl From<$ty> for Record {
                fn from(row: $ty) -> Record { Record::$variant(row) }
            }
        )*

        /// A row of any dataset, as the staging log holds it.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Record { $($variant($ty)),* }

        impl Record {
            pub fn dataset(&self) -> Dataset {
                match self { $(Record::$variant(_) => Dataset::$variant),* }
            }

            pub fn head(&self) -> &Header {
                match self { $(Record::$variant(r) => &r.head),* }
            }

            pub fn head_mut(&mut self) -> &mut Header {
                match self { $(Record::$variant(r) => &mut r.head),* }
            }

            /// The row's values in column order.
            pub fn cells(&self) -> Vec<Cell<'_>> {
                let mut out = Vec::with_capacity(HEADER_COLUMNS.len() + self.dataset().specific_columns().len());
                match self { $(Record::$variant(r) => { r.head.push_cells(&mut out); r.push_cells(&mut out); }),* }
                out
            }

            /// A row read back from CSV: `value` gives each column's value, in column order.
            /// An error names the column.
            pub fn from_values(dataset: Dataset, value: Values<'_>) -> Result<Record, (&'static Column, String)> {
                let head = Header::from_values(value)?;
                Ok(match dataset { $(Dataset::$variant => Record::$variant($ty::from_values(head, value)?)),* })
            }

            /// A dataset-specific optional string column, by name.
            pub fn text_field_mut(&mut self, column: &str) -> Option<&mut Option<String>> {
                match self { $(Record::$variant(r) => r.text_field_mut(column)),* }
            }
        }
    };
}

datasets! {
    exported {
        Denials WebhookFailures RateLimitBursts TokenSnapshots Changes Incidents Findings
        FindingEvents RequestCounts
    }
    internal { RateLimitEvents }

    /// HTTP 401/403 and their vendor equivalents.
    Denials(Denial) = "denials", ocsf "6003 API Activity / 3002 Authentication" {
        http_status: Option<i64> = int("HTTP status of the denied call.")
            .ocsf("http_response.code").ecs("http.response.status_code"),
        auth_error: Option<String> = text("Error from WWW-Authenticate: invalid_token, insufficient_scope...")
            .ocsf("status_detail").ecs("error.type"),
        error_code: Option<String> = text("The vendor's own error code, from the body: INSUFFICIENT_ACCESS, AccessDenied, E0000006...")
            .ocsf("api.response.error").ecs("error.code"),
        error_message: Option<String> = text("The vendor's error message.")
            .ocsf("api.response.error_message").ecs("error.message"),
        api_service: Option<String> = text("The API host or service.")
            .ocsf("api.service.name").ecs("service.name"),
        api_operation: Option<String> = text("The operation: a route template with ids removed, or the vendor's operation name.")
            .ocsf("api.operation").ecs("event.action"),
        http_method: Option<String> = text("HTTP method.")
            .ocsf("http_request.http_method").ecs("http.request.method"),
        url_path: Option<String> = text("Request path, query removed.")
            .ocsf("http_request.url.path").ecs("url.path"),
        actor_user: Option<String> = text("The user the call acted as, when known.")
            .ocsf("actor.user.uid").ecs("user.id").personal(),
        actor_app: Option<String> = text("OAuth client id or app.")
            .ocsf("actor.app_uid").ecs("client.id"),
        credential_uid: Option<String> = id("Join key of the credential (DESIGN §4): <issuer>#<client_id>, AWS access key id, base64 SHA-256 of a GitHub token.")
            .ocsf("actor.session.credential_uid"),
        required_scope: Vec<String> = list("Scopes the server said were required (WWW-Authenticate scope=).")
            .ocsf("unmapped.required_scope"),
        src_ip: Option<String> = text("Source IP of the call, when the vendor records it.")
            .ocsf("src_endpoint.ip").ecs("source.ip").personal(),
        user_agent: Option<String> = text("User agent of the call.")
            .ocsf("http_request.user_agent").ecs("user_agent.original"),
        request_id: Option<String> = id("The vendor's or the integration's request id, for support tickets.")
            .ocsf("http_request.uid").ecs("http.request.id"),
    }

    /// Webhook deliveries that failed or are still being retried.
    WebhookFailures(WebhookFailure) = "webhook_failures", ocsf "4002 HTTP Activity" {
        webhook_uid: Option<String> = id("The webhook (hook, endpoint) id."),
        delivery_uid: Option<String> = id("This delivery attempt's id.")
            .ocsf("http_request.uid").ecs("http.request.id"),
        delivery_group: Option<String> = id("Shared by redeliveries of one event (GitHub guid)."),
        webhook_event: Option<String> = text("The event delivered.")
            .ocsf("activity_name").ecs("event.action"),
        dst_hostname: Option<String> = text("Receiver host.")
            .ocsf("dst_endpoint.hostname").ecs("destination.domain"),
        url: Option<String> = text("Receiver URL, query removed.")
            .ocsf("http_request.url.url_string").ecs("url.full"),
        http_status: Option<i64> = int("Receiver's status; empty on timeout or connection failure.")
            .ocsf("http_response.code").ecs("http.response.status_code"),
        error_type: Option<String> = text("timeout, dns, tls, connect, http_4xx, http_5xx, or pending (the vendor still retries).")
            .ocsf("status_detail").ecs("error.type"),
        error_message: Option<String> = text("The vendor's description of the failure.")
            .ocsf("message").ecs("error.message"),
        attempt: Option<i64> = int("Attempt number, when the vendor gives it.")
            .ecs("event.sequence"),
        redelivery: Option<bool> = boolean("Whether this was a redelivery."),
        latency_ms: Option<i64> = int("Time the receiver took, in milliseconds.")
            .ocsf("http_response.latency"),
        request_id: Option<String> = id("The API request that caused the event (Stripe's request.id), for support tickets."),
        idempotency_key: Option<String> = text("That request's idempotency key (Stripe): chosen by the integration, so neutralized like any text."),
        pending_webhooks: Option<i64> = int("Endpoints that have not acknowledged the event (Stripe)."),
    }

    /// HTTP 429 bursts, derived from rate-limit events (revision rises as late data extends them).
    RateLimitBursts(RateLimitBurst) = "rate_limit_bursts", ocsf "6003 API Activity (aggregated)" {
        start_time_dt: Option<i64> = datetime("First 429 of the burst.").ocsf("start_time_dt").ecs("event.start"),
        end_time_dt: Option<i64> = datetime("Last 429 of the burst.").ocsf("end_time_dt").ecs("event.end"),
        count: Option<i64> = int("Number of 429s.").ocsf("count"),
        peak_per_minute: Option<i64> = int("Most 429s in one minute."),
        interleaved_503: Option<i64> = int("503s among the 429s: a per-second cap and load shedding."),
        api_service: Option<String> = text("The API host or service.").ocsf("api.service.name").ecs("service.name"),
        api_operation: Option<String> = text("Route template or vendor operation.").ocsf("api.operation").ecs("event.action"),
        actor_app: Option<String> = text("OAuth client id or app.").ocsf("actor.app_uid").ecs("client.id"),
        credential_uid: Option<String> = id("Join key of the credential.").ocsf("actor.session.credential_uid"),
        retry_after_max_s: Option<i64> = int("Largest Retry-After seen, seconds."),
        ratelimit_limit: Option<i64> = int("Advertised limit."),
        ratelimit_remaining_min: Option<i64> = int("Lowest remaining seen."),
        related_event_uids: Vec<String> = list("event_uid of the 429s, at most 100."),
        related_events_count: Option<i64> = int("All related events, including those past the first 100."),
        revision: Option<i64> = int("Keep the highest revision per event_uid."),
    }

    /// What a credential held when probed, and what changed since the previous successful probe.
    TokenSnapshots(TokenSnapshot) = "token_snapshots", ocsf "3003 Authorize Session" {
        probe: Option<String> = text("Probe that took the snapshot."),
        status: Option<String> = text("ok, or the error: invalid_client, invalid_scope, inactive, expired, unreachable..."),
        token_type: Option<String> = text("access_token, pat, api_key..."),
        issuer: Option<String> = text("Token issuer.").ocsf("session.issuer"),
        audience: Vec<String> = list("Token audience(s)."),
        subject: Option<String> = text("Token subject.").ocsf("user.uid").ecs("user.id").personal(),
        actor_app: Option<String> = text("OAuth client id or app.").ocsf("actor.app_uid").ecs("client.id"),
        privileges: Option<Vec<String>> = list("Sorted, prefixed by kind (scp:, role:, perm:); null when unknown.").ocsf("privileges"),
        privileges_requested: Option<Vec<String>> = list("What the probe asked for."),
        issued_at_dt: Option<i64> = datetime("iat.").ocsf("session.created_time_dt"),
        expires_at_dt: Option<i64> = datetime("exp.").ocsf("session.expiration_time_dt"),
        not_before_dt: Option<i64> = datetime("nbf."),
        server_skew_ms: Option<i64> = int("Server Date header minus the local clock."),
        identity: Option<String> = text("Caller identity: the STS ARN, the GitHub login.").personal(),
        credential_uid: Option<String> = id("Join key of the credential.").ocsf("session.credential_uid"),
        privileges_added: Vec<String> = list("Against the previous successful snapshot."),
        privileges_removed: Vec<String> = list("Against the previous successful snapshot."),
        signature: Option<String> = text("JWTs: verified, not checked (no jwks_url), invalid, none (alg none)."),
    }

    /// Admin and configuration changes, and scopetrail's own drift events.
    Changes(Change) = "changes", ocsf "3001 Account Change / 6003 API Activity" {
        action: Option<String> = text("What was done.").ocsf("activity_name").ecs("event.action"),
        actor_user: Option<String> = text("Who did it.").ocsf("actor.user.uid").ecs("user.id").personal(),
        target_type: Option<String> = text("Kind of thing changed."),
        target: Option<String> = text("The thing changed.").personal(),
        details: Option<String> = text("Further details."),
    }

    /// Vendor status-page incidents.
    Incidents(Incident) = "incidents", ocsf "2005 Incident Finding" {
        name: Option<String> = text("Incident title.").ocsf("finding_info.title"),
        status: Option<String> = text("investigating, identified, monitoring, resolved..."),
        impact: Option<String> = text("none, minor, major, critical."),
        components: Vec<String> = list("Affected components."),
        started_dt: Option<i64> = datetime("When the incident was created."),
        resolved_dt: Option<i64> = datetime("When it was resolved."),
        url: Option<String> = text("Status page URL.").ecs("event.reference"),
    }

    /// One explained cluster of failures, or a drift warning (revision rises as it grows).
    Findings(Finding) = "findings", ocsf "2004 Detection Finding" {
        finding_type: Option<String> = text("DESIGN §6: scope_drift, token_expired, rate_limited...").ocsf("finding_info.types").ecs("rule.category"),
        severity: Option<String> = text("failure (failures explained) or warning (drift before any failure).").ecs("event.severity"),
        title: Option<String> = text("One line.").ocsf("finding_info.title").ecs("rule.name"),
        explanation: Option<String> = text("The evidence, with times.").ocsf("finding_info.desc").ecs("event.reason"),
        confidence: Option<String> = text("high, medium or low.").ocsf("confidence"),
        first_seen_dt: Option<i64> = datetime("First failure.").ocsf("finding_info.first_seen_time_dt").ecs("event.start"),
        last_seen_dt: Option<i64> = datetime("Last failure.").ocsf("finding_info.last_seen_time_dt").ecs("event.end"),
        related_events_count: Option<i64> = int("All related events."),
        related_event_uids: Vec<String> = list("At most 100; finding_events has them all.").ocsf("finding_info.related_events"),
        cause_event_uid: Option<String> = id("event_uid of the cause (snapshot, change, incident)."),
        alternative_causes: Option<String> = text("Other candidate causes, ranked."),
        actor_app: Option<String> = text("OAuth client id or app.").ocsf("actor.app_uid"),
        credential_uid: Option<String> = id("Join key of the credential."),
        incident_url: Option<String> = text("The vendor incident, when one is the cause.").ocsf("finding_info.src_url").ecs("event.reference"),
        remediation: Option<String> = text("What to do, in order.").ocsf("remediation.desc"),
        revision: Option<i64> = int("Keep the highest revision per event_uid."),
    }

    /// The full link table from findings to their events.
    FindingEvents(FindingEvent) = "finding_events", ocsf "2004 Detection Finding (related events)" {
        finding_uid: Option<String> = id("event_uid of the finding."),
        related_event_uid: Option<String> = id("event_uid of a related event."),
        related_dataset: Option<String> = text("Dataset of the related event."),
    }

    /// Requests per hour, so correlation can tell "never worked" from "stopped working".
    /// Additive: a collection that sees more requests of an hour already exported adds a row
    /// rather than rewriting one, so totals are the sum of `count` over rows with the same key.
    RequestCounts(RequestCount) = "request_counts", ocsf "6003 API Activity (aggregated)" {
        hour_dt: Option<i64> = datetime("Start of the hour."),
        api_service: Option<String> = text("The API host or service.").ocsf("api.service.name").ecs("service.name"),
        api_operation: Option<String> = text("Route template; {other} past the per-service cap.").ocsf("api.operation"),
        http_method: Option<String> = text("HTTP method.").ecs("http.request.method"),
        status_class: Option<String> = text("2xx, 401, 403, 429, 4xx, 5xx."),
        actor_app: Option<String> = text("OAuth client id or app.").ocsf("actor.app_uid"),
        count: Option<i64> = int("Requests seen by one collection: sum over rows with the same key.").ocsf("count"),
    }

    /// One 429 or 503 answer, staged as input to `rate_limit_bursts`.
    RateLimitEvents(RateLimitEvent) = "rate_limit_events", ocsf "internal" {
        http_status: Option<i64> = int("429 or 503."),
        api_service: Option<String> = text("The API host or service."),
        api_operation: Option<String> = text("Route template or vendor operation."),
        http_method: Option<String> = text("HTTP method."),
        actor_app: Option<String> = text("OAuth client id or app."),
        credential_uid: Option<String> = id("Join key of the credential."),
        retry_after_s: Option<i64> = int("Retry-After, seconds."),
        ratelimit_limit: Option<i64> = int("Advertised limit."),
        ratelimit_remaining: Option<i64> = int("Remaining, as the response said."),
        request_id: Option<String> = id("Request id."),
    }
}
