//! The page. maud escapes every value put into it, so a vendor string (an error message, a
//! webhook URL, an app name) is text, never markup; the page carries no script at all, and its
//! Content-Security-Policy forbids loading anything, so even a string that slipped through
//! could neither run nor call out.

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::chart;
use super::gather::{FindingView, Report, SourceNote};
use super::timeline::{Kind, at_s};

/// Nothing from elsewhere: no scripts, fonts, images or connections; styles only inline.
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";

const STYLE: &str = include_str!("report.css");

pub fn render(r: &Report) -> String {
    let title = format!(
        "Integration failures {} .. {}{}",
        day(r.window.start_ms),
        day(r.window.end_ms),
        r.window
            .job
            .as_deref()
            .map(|j| format!(" (job {j})"))
            .unwrap_or_default()
    );
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="Content-Security-Policy" content=(CSP);
                meta name="referrer" content="no-referrer";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="generator" content=(concat!("scopetrail ", env!("CARGO_PKG_VERSION")));
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    h1 { (title) }
                    p.sub {
                        "From " (at_s(r.window.start_ms)) " to " (at_s(r.window.end_ms)) " UTC"
                        @if let Some(e) = &r.window.export {
                            " · export e" (format!("{:06}", e.export)) " · "
                            @if e.complete { "complete" } @else { strong.bad { "INCOMPLETE" } }
                        } @else {
                            " · a range no single export covers"
                        }
                    }
                    ul.totals {
                        li { (total(r.findings.len() as u64, "finding")) }
                        li { (total(r.warnings.len() as u64, "drift warning")) }
                        li { (total(r.totals.denials, "denial")) }
                        li { (total(r.totals.webhook_failures, "webhook failure")) }
                        li { (total(r.totals.rate_limited, "429")) " in " (crate::analysis::correlate::text::plural(r.totals.bursts, "burst", "bursts")) }
                        li class=(if r.sources.is_empty() { "" } else { "bad" }) {
                            (total(r.sources.len() as u64, "source problem"))
                        }
                    }
                    nav {
                        a href="#findings" { "Findings" } " · "
                        a href="#warnings" { "Warnings" } " · "
                        a href="#sources" { "Sources" } " · "
                        a href="#charts" { "Charts" } " · "
                        a href="#top" { "Top failing" }
                    }
                }
                main {
                    section #findings {
                        h2 { "Findings" }
                        @if r.findings.is_empty() {
                            p.none { "No failures in this window." }
                        }
                        (findings(&r.findings))
                    }
                    section #warnings {
                        h2 { "Drift warnings" }
                        p.hint { "Credentials that lost privileges with no failure seen yet: fix them before the integration needs them." }
                        @if r.warnings.is_empty() {
                            p.none { "None." }
                        }
                        (findings(&r.warnings))
                    }
                    section #sources {
                        h2 { "Sources" }
                        @if r.sources.is_empty() {
                            p.none {
                                @if r.window.export.is_some() {
                                    "Every source collected past the window's end; no run failed to collect and no input was malformed."
                                } @else {
                                    "No run failed to collect in this range."
                                }
                            }
                        } @else {
                            p.hint { "What the data above may be missing." }
                            ul.sources {
                                @for n in &r.sources { li { (source_note(n)) } }
                            }
                        }
                    }
                    section #charts {
                        h2 { "Failures over the window" }
                        (chart::legend())
                        @if r.lanes.is_empty() {
                            p.none { "Nothing to draw." }
                        }
                        @for lane in &r.lanes {
                            h3 { (lane.vendor) }
                            div.chart { (chart::lane(r, lane)) }
                        }
                    }
                    section #top {
                        h2 { "Top failing operations" }
                        (bars(&r.top_operations))
                        h2 { "Top failing credentials" }
                        (bars(&r.top_credentials))
                    }
                }
                footer {
                    p {
                        "Made by scopetrail " (env!("CARGO_PKG_VERSION")) " from the data exported to " code { (r.location) }
                        ". Rebuild it with " code { "scopetrail report --from " (r.location)
                            @if let Some(j) = &r.window.job { " --job " (j) }
                            " --window " (r.window.name()) }
                        "; times are UTC."
                    }
                }
            }
        }
    };
    page.into_string()
}

/// The first ones whole, the rest a line each.
fn findings(all: &[FindingView]) -> Markup {
    let rest: Vec<&FindingView> = all.iter().filter(|f| f.detail.is_none()).collect();
    html! {
        @for f in all.iter().filter(|f| f.detail.is_some()) { (finding(f)) }
        @if !rest.is_empty() {
            h3 { (rest.len()) " more, less important" }
            div.scroll {
                table.more {
                    tr { th { "confidence" } th { "type" } th { "finding" } th { "first failure" } th { "failures" } th { "id" } }
                    @for f in rest {
                        tr id=(format!("f-{}", f.id)) {
                            td { (f.confidence) }
                            td { code { (f.finding_type) } }
                            td { (f.title) }
                            td { time { (at_s(f.first_ms)) } }
                            td.count { (f.count) }
                            td { code { (f.id.get(..8).unwrap_or(&f.id)) } }
                        }
                    }
                }
            }
        }
    }
}

fn finding(f: &FindingView) -> Markup {
    let none = super::gather::Detail {
        said: Vec::new(),
        operations: Vec::new(),
        messages: Vec::new(),
        cause: None,
        timeline: Vec::new(),
    };
    let d = f.detail.as_ref().unwrap_or(&none);
    html! {
        article class=(format!(
                "finding {} {}",
                known(&f.severity, &["failure", "warning"]),
                known(&f.confidence, &["high", "medium", "low"])
            ))
            id=(format!("f-{}", f.id)) data-type=(f.finding_type) {
            h3 {
                span.badge { (f.confidence) }
                " "
                span.type { (f.finding_type) }
                " "
                (f.title)
            }
            p.meta {
                (f.vendor) " / " (f.tenant) " (" (f.environment) ")"
                @if let Some(w) = &f.who { " · " (w) }
                " · " (at_s(f.first_ms)) " to " (at_s(f.last_ms)) " UTC"
                " · " (f.count) " failures"
            }
            p.why { (f.explanation) }
            h4 { "Evidence" }
            ul.evidence {
                @if let Some(c) = &d.cause {
                    li { "Cause: " time { (at_s(c.time)) } " " code { (c.line()) } }
                }
                @if !d.said.is_empty() {
                    li { "The failures said: " (counted(&d.said)) }
                }
                @if !d.operations.is_empty() {
                    li { "Failing: " (counted(&d.operations)) }
                }
                @if !d.messages.is_empty() {
                    li { "The vendor's messages: " (counted(&d.messages)) }
                }
                @if let Some(u) = &f.incident_url {
                    li { "Incident: "
                        @if u.starts_with("https://") || u.starts_with("http://") {
                            a href=(u) rel="noopener noreferrer" { (u) }
                        } @else { (u) }
                    }
                }
            }
            h4 { "Fix" }
            ol.fix { @for s in &f.remediation { li { (s) } } }
            @if !f.alternatives.is_empty() {
                p.alt { "Also considered: " (f.alternatives.join("; ")) }
            }
            details open {
                summary { "Timeline" }
                div.scroll {
                    table.timeline {
                        @for row in &d.timeline {
                            tr class=(row.kind.as_str()) {
                                td {
                                    time { (at_s(row.from_ms)) }
                                    @if row.to_ms != row.from_ms { br; "to " time { (at_s(row.to_ms)) } }
                                }
                                td.mark { @if row.kind == Kind::Cause { "cause" } }
                                td {
                                    @if row.count > 1 { b { (row.count) " × " } }
                                    code { (row.text) }
                                    @if !row.ids.is_empty() {
                                        " " span.ids { "(" (row.ids.join(", ")) @if row.count > row.ids.len() as u64 { ", …" } ")" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            p.id { "id " code { (f.id) } " · revision " (f.revision) }
        }
    }
}

/// A value for a class name: one of `set`, else `other` (class names steer the style).
fn known<'a>(value: &'a str, set: &[&'static str]) -> &'a str {
    if set.contains(&value) { value } else { "other" }
}

fn counted(items: &[(String, u64)]) -> Markup {
    html! {
        @for (i, (what, n)) in items.iter().enumerate() {
            @if i > 0 { ", " }
            code { (what) } " ×" (n)
        }
    }
}

fn source_note(n: &SourceNote) -> Markup {
    html! {
        @match n {
            SourceNote::Late { source } => {
                b { (source) } " was late: it had not collected past the window's end when the window was exported, so its rows of the window's end are in a later export."
            }
            SourceNote::Malformed { source, count, examples } => {
                b { (source) } " skipped " (count) " malformed input" @if *count != 1 { "s" } ":"
                ul { @for e in examples { li { code { (e) } } } }
            }
            SourceNote::Failed { source, runs, last_ms, last_error } => {
                b { (source) } " failed to collect in " (runs) " run" @if *runs != 1 { "s" }
                "; the last at " (at_s(*last_ms)) " UTC: " code { (last_error) }
            }
        }
    }
}

fn bars(bars: &[super::gather::Bar]) -> Markup {
    let longest = bars.first().map_or(0, |b| b.total());
    html! {
        @if bars.is_empty() {
            p.none { "No failures." }
        } @else {
            table.bars {
                @for b in bars {
                    tr {
                        td.label { (b.label) }
                        td.count { (b.total()) }
                        td.barcell { (chart::bar(b, longest)) }
                    }
                }
            }
        }
    }
}

/// `<b>3</b> denials`.
fn total(n: u64, one: &str) -> Markup {
    html! { b { (n) } " " (if n == 1 { one.to_string() } else { format!("{one}s") }) }
}

fn day(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::gather::gather;
    use super::super::gather::tests::{record, window};
    use super::*;

    const T: i64 = 1_772_668_800_000 + 3_600_000;
    const EVIL: &str = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'&";

    #[test]
    fn every_vendor_string_is_text_and_nothing_loads_or_runs() {
        let records = vec![
            record(
                "findings",
                "f",
                T,
                json!({
                    "finding_type": EVIL, "severity": "failure", "confidence": EVIL,
                    "title": EVIL, "explanation": EVIL, "remediation": EVIL,
                    "alternative_causes": EVIL, "incident_url": "javascript:alert(3)",
                    "first_seen_dt": T, "last_seen_dt": T, "cause_event_uid": null,
                }),
            ),
            record(
                "denials",
                "d",
                T,
                json!({"http_status": 403, "error_message": EVIL, "api_operation": EVIL, "request_id": EVIL}),
            ),
            record(
                "changes",
                "c",
                T,
                json!({"action": EVIL, "actor_user": EVIL, "target": EVIL}),
            ),
            record(
                "incidents",
                "i",
                T,
                json!({"name": EVIL, "url": EVIL, "started_dt": T}),
            ),
        ];
        let page = render(&gather(window(7), EVIL.into(), &records, &[], 3_600_000));
        let lower = page.to_ascii_lowercase();
        // Every tag is one the renderer writes, and none has an event handler.
        let tag = regex::Regex::new(r"<([a-z][a-z0-9]*)\b[^>]*>").expect("regex");
        let allowed = [
            "html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3", "h4",
            "p", "strong", "ul", "li", "b", "nav", "a", "main", "section", "article", "span",
            "code", "time", "ol", "details", "summary", "div", "table", "tr", "td", "br", "svg",
            "g", "rect", "line", "text", "polygon", "circle", "footer", "th",
        ];
        // Attribute names only: values are quoted, and a quote in one is escaped.
        let value = regex::Regex::new(r#""[^"]*""#).expect("regex");
        let handler = regex::Regex::new(r"\son[a-z]+\s*=").expect("regex");
        for m in tag.captures_iter(&lower) {
            assert!(allowed.contains(&&m[1]), "a <{}> in the page", &m[1]);
            let names = value.replace_all(&m[0], "");
            assert!(!handler.is_match(&names), "an event handler: {}", &m[0]);
        }
        assert!(!page.contains("href=\"javascript:"), "only http(s) links");
        // A vendor's value never becomes a class name (they steer the style).
        assert!(page.contains("<article class=\"finding failure other\""));
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains(&format!("content=\"{CSP}\"")));
        // Nothing to fetch: no element that loads, no url() in the style, and no link but
        // the page's own anchors.
        for loads in ["<iframe", "<link", "<object", "<embed", "url("] {
            assert!(!lower.contains(loads), "{loads} in the page");
        }
        for href in page.split("href=\"").skip(1) {
            assert!(
                href.starts_with('#'),
                "a link out: {}",
                &href[..40.min(href.len())]
            );
        }
    }
}
