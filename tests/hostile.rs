//! Hostile strings in vendor fields: neutralized in free-text columns, never splitting a row,
//! typed and id columns untouched, and the files still valid against the schemas.

mod common;

use common::*;

#[test]
fn hostile_values_are_neutralized_and_rows_stay_whole() {
    let s = Setup::standard();
    let long = "x".repeat(100 * 1024);
    let lines = vec![
        serde_json::json!({"ts": "2026-03-05T10:00:00Z", "status": 403, "url": "https://api.example.com/v1/a",
            "message": "=cmd|' /C calc'!A0", "rid": "=HYPERLINK(\"http://evil\")", "client": "+1 555 0100", "agent": "@SUM(1)"})
        .to_string(),
        serde_json::json!({"ts": "2026-03-05T10:01:00Z", "status": 403, "url": "https://api.example.com/v1/b",
            "message": "line one\r\nline two\ttab\u{0}nul\u{2028}ls", "rid": "id\nwith-break", "method": "-DELETE"})
        .to_string(),
        serde_json::json!({"ts": "2026-03-05T10:02:00Z", "status": 401, "url": "https://api.example.com/v1/c",
            "message": long, "rid": "r3"})
        .to_string(),
    ];
    s.append("a.log", &lines);
    // Invalid UTF-8 inside a JSON string, as a broken logger writes it.
    let mut raw = br#"{"ts":"2026-03-05T10:03:00Z","status":403,"url":"https://api.example.com/v1/d","rid":"r4","message":"bad "#.to_vec();
    raw.extend_from_slice(&[0xff, 0xfe, b'!']);
    raw.extend_from_slice(b"\"}\n");
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(s.log("a.log"))
            .expect("log");
        f.write_all(&raw).expect("write");
    }
    s.run("2026-03-09T01:00:00Z").assert_code(0);

    let objects = objects(&s.out(), "denials");
    assert_eq!(objects.len(), 1);
    let path = objects.values().next().expect("one object");
    let text = gunzip(path);
    let physical_lines = text
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    assert_eq!(
        physical_lines, 5,
        "a header and four rows, none split by a line break"
    );
    assert!(
        !text.contains(&b'\r') && !text.contains(&0u8),
        "no CR or NUL anywhere"
    );

    let rows = read_csv(&text);
    assert_eq!(rows.len(), 4);
    let by_path = |p: &str| {
        rows.iter()
            .find(|r| r["url_path"] == p)
            .unwrap_or_else(|| panic!("row {p}"))
    };
    let a = by_path("/v1/a");
    assert_eq!(a["error_message"], "'=cmd|' /C calc'!A0");
    assert_eq!(a["actor_app"], "'+1 555 0100");
    assert_eq!(a["user_agent"], "'@SUM(1)");
    assert_eq!(
        a["request_id"], "=HYPERLINK(\"http://evil\")",
        "ids are never altered"
    );
    assert_eq!(a["http_status"], "403", "typed columns untouched");
    assert_eq!(a["time"], "1772704800000");
    let b = by_path("/v1/b");
    assert_eq!(b["error_message"], "line one  line two tab nul ls");
    // The one change an id gets: control characters percent-encoded, so no line-oriented
    // parser splits the row.
    assert_eq!(b["request_id"], "id%0Awith-break");
    assert_eq!(b["http_method"], "'-DELETE");
    let c = by_path("/v1/c");
    assert!(
        c["error_message"].len() <= 8192,
        "{}",
        c["error_message"].len()
    );
    assert!(c["error_message"].ends_with("…[truncated]"));
    let d = by_path("/v1/d");
    assert_eq!(d["error_message"], "bad \u{fffd}\u{fffd}!");

    if let Some(tool) = frictionless() {
        assert_valid_csv(&tool, path, "denials");
    }
}
