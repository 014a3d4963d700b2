//! The report's charts, drawn as inline SVG (no script, no library): per vendor, one row per
//! failure series on the window's time axis with drifts, changes and incidents marked above,
//! and bars for the top failing operations and credentials. Every drawn point is an element
//! with `data-` attributes and a `<title>`, so a reader hovering sees the number and a test
//! can count them.

use maud::{Markup, html};

use super::gather::{Bar, Lane, MarkKind, Report, SERIES, Series};
use super::timeline::at_s;

const WIDTH: f64 = 960.0;
const LEFT: f64 = 150.0;
const RIGHT: f64 = 12.0;
const MARKS: f64 = 30.0;
const ROW: f64 = 46.0;
const AXIS: f64 = 22.0;

/// One vendor's chart: marks on top, a row per series, days along the bottom.
pub fn lane(report: &Report, lane: &Lane) -> Markup {
    let plot = WIDTH - LEFT - RIGHT;
    let span = (report.window.end_ms - report.window.start_ms).max(1) as f64;
    let x = |t: i64| LEFT + ((t - report.window.start_ms) as f64 / span).clamp(0.0, 1.0) * plot;
    let bar_w = (plot / report.buckets.max(1) as f64 - 0.6).max(1.0);
    let height = MARKS + ROW * SERIES.len() as f64 + AXIS;
    let bottom = MARKS + ROW * SERIES.len() as f64;
    let days = day_ticks(report.window.start_ms, report.window.end_ms);
    html! {
        svg class="lane" data-vendor=(lane.vendor) viewBox=(format!("0 0 {WIDTH} {height}"))
            role="img" aria-label=(format!("{}: failures over the window", lane.vendor)) {
            title { (lane.vendor) ": denials, webhook failures and 429s over the window" }
            // Incidents first, as spans behind everything.
            g data-marks="incident" {
                @for m in lane.marks.iter().filter(|m| m.kind == MarkKind::Incident) {
                    rect class="incident" x=(f(x(m.start_ms)))
                        y=(f(MARKS - 8.0)) width=(f((x(m.end_ms) - x(m.start_ms)).max(2.0)))
                        height=(f(bottom - MARKS + 8.0)) {
                        title { (m.label) }
                    }
                }
            }
            @for (t, label) in &days {
                line class="grid" x1=(f(x(*t))) x2=(f(x(*t))) y1=(f(MARKS - 8.0)) y2=(f(bottom)) {}
                text class="tick" x=(f(x(*t) + 3.0)) y=(f(bottom + 15.0)) { (label) }
            }
            text class="row-label" x="4" y=(f(MARKS - 12.0)) { "changes" }
            g data-marks="drift" {
                @for m in lane.marks.iter().filter(|m| m.kind == MarkKind::Drift) {
                    @let cx = x(m.start_ms);
                    polygon class="drift" points=(format!("{},{} {},{} {},{} {},{}",
                        f(cx), f(MARKS - 22.0), f(cx + 6.0), f(MARKS - 15.0),
                        f(cx), f(MARKS - 8.0), f(cx - 6.0), f(MARKS - 15.0))) {
                        title { (m.label) }
                    }
                }
            }
            g data-marks="change" {
                @for m in lane.marks.iter().filter(|m| m.kind == MarkKind::Change) {
                    circle class="change" cx=(f(x(m.start_ms))) cy=(f(MARKS - 15.0)) r="4" {
                        title { (m.label) }
                    }
                }
            }
            @for (i, series) in SERIES.iter().enumerate() {
                @let top = MARKS + ROW * i as f64;
                @let points = lane.series.get(series);
                @let max = points.and_then(|p| p.values().max().copied()).unwrap_or(0);
                line class="base" x1=(f(LEFT)) x2=(f(WIDTH - RIGHT)) y1=(f(top + ROW - 4.0)) y2=(f(top + ROW - 4.0)) {}
                text class="row-label" x="4" y=(f(top + ROW / 2.0)) { (series.label()) }
                text class="row-max" x="4" y=(f(top + ROW / 2.0 + 13.0)) {
                    @if max > 0 { "peak " (max) " per " (bucket_name(report.bucket_ms)) } @else { "none" }
                }
                g class=(format!("series {}", series_class(*series))) data-series=(series.name()) {
                    @if let Some(points) = points {
                        @for (bucket, count) in points {
                            @let h = ((*count as f64 / max.max(1) as f64) * (ROW - 10.0)).max(1.5);
                            @let t = report.window.start_ms + *bucket as i64 * report.bucket_ms;
                            rect x=(f(x(t))) y=(f(top + ROW - 4.0 - h)) width=(f(bar_w)) height=(f(h))
                                data-count=(count) {
                                title { (at_s(t)) " UTC: " (count) " " (series.name()) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A stacked horizontal bar, its length relative to the longest of its chart.
pub fn bar(bar: &Bar, longest: u64) -> Markup {
    let scale = 100.0 / longest.max(1) as f64;
    let mut at = 0.0;
    let mut parts = Vec::new();
    for series in SERIES {
        if let Some(&n) = bar.parts.get(&series).filter(|n| **n > 0) {
            let w = n as f64 * scale;
            parts.push((series, n, at, w));
            at += w;
        }
    }
    html! {
        svg class="bar" viewBox="0 0 100 10" preserveAspectRatio="none" role="img"
            aria-label=(format!("{} failures", bar.total())) {
            @for (series, n, x, w) in parts {
                rect class=(series_class(series)) x=(f(x)) y="0" width=(f(w)) height="10" data-series=(series.name()) {
                    title { (n) " " (series.name()) }
                }
            }
        }
    }
}

/// The colour key shared by every chart.
pub fn legend() -> Markup {
    html! {
        ul class="legend" {
            @for s in SERIES {
                li { svg viewBox="0 0 10 10" class="key" { rect class=(series_class(s)) width="10" height="10" {} } (s.label()) }
            }
            li { svg viewBox="0 0 12 12" class="key" { polygon class="drift" points="6,0 12,6 6,12 0,6" {} } "Snapshot drift" }
            li { svg viewBox="0 0 12 12" class="key" { circle class="change" cx="6" cy="6" r="5" {} } "Admin change" }
            li { svg viewBox="0 0 10 10" class="key" { rect class="incident" width="10" height="10" {} } "Vendor incident" }
        }
    }
}

fn series_class(s: Series) -> String {
    format!("s-{}", s.name())
}

/// Midnights (UTC) inside the window, labelled `Mon 02`; for long windows, fewer.
fn day_ticks(start: i64, end: i64) -> Vec<(i64, String)> {
    const DAY: i64 = 86_400_000;
    let days = (end - start) / DAY;
    let step = (days / 10 + 1).max(1);
    let first = start.div_euclid(DAY) * DAY + if start.rem_euclid(DAY) == 0 { 0 } else { DAY };
    (0..)
        .map(|i| first + i * DAY * step)
        .take_while(|t| *t < end)
        .map(|t| {
            let label = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(t)
                .map(|d| d.format("%a %d").to_string())
                .unwrap_or_default();
            (t, label)
        })
        .collect()
}

fn bucket_name(ms: i64) -> String {
    match ms / 3_600_000 {
        1 => "hour".into(),
        h => format!("{h} h"),
    }
}

/// Coordinates to one decimal: enough for a 960-wide drawing, and stable text.
fn f(v: f64) -> String {
    format!("{v:.1}")
}
