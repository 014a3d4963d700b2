//! CSV encoding per DESIGN §4: UTF-8, comma, quotes only where needed, LF, empty = null,
//! free text neutralized against formula injection and line splitting.

use std::fmt::Write as _;
use std::io::Write;

use anyhow::Result;

use crate::model::{Cell, Dataset, Kind, Record, push_rfc3339_ms};

/// Longest free-text cell, in bytes. Longer values are cut at a character boundary and end
/// with [`TRUNCATION_MARK`]: a 100 KB vendor error message would otherwise be one 100 KB line,
/// past what Splunk and Datadog take in one event.
pub const MAX_TEXT_BYTES: usize = 8192;
pub const TRUNCATION_MARK: &str = "…[truncated]";

/// Writes one dataset's rows, header first.
pub struct CsvEncoder<W: Write> {
    writer: csv::Writer<W>,
    dataset: Dataset,
    kinds: Vec<Kind>,
    text: String,
    ends: Vec<usize>,
    rows: u64,
}

impl<W: Write> CsvEncoder<W> {
    pub fn new(inner: W, dataset: Dataset) -> Result<Self> {
        let mut writer = csv::WriterBuilder::new()
            .quote_style(csv::QuoteStyle::Necessary)
            .terminator(csv::Terminator::Any(b'\n'))
            .has_headers(false)
            .from_writer(inner);
        writer.write_record(dataset.columns().map(|c| c.name))?;
        Ok(CsvEncoder {
            writer,
            dataset,
            kinds: dataset.columns().map(|c| c.kind).collect(),
            text: String::new(),
            ends: Vec::new(),
            rows: 0,
        })
    }

    pub fn write(&mut self, record: &Record) -> Result<()> {
        anyhow::ensure!(
            record.dataset() == self.dataset,
            "a {} row cannot go into a {} file",
            record.dataset().name(),
            self.dataset.name()
        );
        self.text.clear();
        self.ends.clear();
        for (cell, kind) in record.cells().into_iter().zip(&self.kinds) {
            render_cell(*kind, cell, &mut self.text);
            self.ends.push(self.text.len());
        }
        let text = &self.text;
        let mut start = 0;
        self.writer.write_record(self.ends.iter().map(|&end| {
            let field = &text[start..end];
            start = end;
            field
        }))?;
        self.rows += 1;
        Ok(())
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn finish(self) -> Result<W> {
        self.writer
            .into_inner()
            .map_err(|e| anyhow::anyhow!("flushing CSV: {}", e.error()))
    }
}

/// Appends the CSV text of one cell (before CSV quoting) to `out`.
pub fn render_cell(kind: Kind, cell: Cell<'_>, out: &mut String) {
    match (kind, cell) {
        (_, Cell::Null) => {}
        (Kind::DateTime, Cell::Int(ms)) => push_rfc3339_ms(ms, out),
        (_, Cell::Int(n)) => push_int(n, out),
        (_, Cell::Bool(b)) => out.push_str(if b { "true" } else { "false" }),
        (_, Cell::Uuid(u)) => out.push_str(
            u.hyphenated()
                .encode_lower(&mut uuid::Uuid::encode_buffer()),
        ),
        (Kind::Text | Kind::List, Cell::Str(s)) => neutralize(s, out),
        (_, Cell::Str(s)) => encode_id(s, out),
        (_, Cell::List(items)) => encode_list(items, out),
    }
}

/// `n` in decimal, as `Display` writes it.
fn push_int(n: i64, out: &mut String) {
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    let mut m = n.unsigned_abs();
    loop {
        at -= 1;
        buf[at] = b'0' + (m % 10) as u8;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    if n < 0 {
        out.push('-');
    }
    out.push_str(std::str::from_utf8(&buf[at..]).unwrap_or_default());
}

/// Only printable ASCII: nothing to replace or encode, copied as it is.
fn plain(s: &str) -> bool {
    s.bytes().all(|b| (b' '..=b'~').contains(&b))
}

fn is_line_breaking(c: char) -> bool {
    // U+2028/U+2029 split lines for JavaScript-based parsers.
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

fn starts_formula(s: &str) -> bool {
    matches!(s.as_bytes().first(), Some(b'=' | b'+' | b'-' | b'@'))
}

/// Control characters become spaces, a leading `= + - @` gets a `'`, and the result is cut
/// to [`MAX_TEXT_BYTES`].
fn neutralize(value: &str, out: &mut String) {
    let start = out.len();
    let formula = starts_formula(value);
    if formula {
        out.push('\'');
    }
    // Replacing controls never lengthens the text, so only values longer than the limit to
    // begin with can need the cut.
    let limit = if value.len() + usize::from(formula) > MAX_TEXT_BYTES {
        MAX_TEXT_BYTES - TRUNCATION_MARK.len()
    } else if plain(value) {
        out.push_str(value);
        return;
    } else {
        usize::MAX
    };
    for c in value.chars() {
        let c = if is_line_breaking(c) { ' ' } else { c };
        if out.len() - start + c.len_utf8() > limit {
            out.push_str(TRUNCATION_MARK);
            return;
        }
        out.push(c);
    }
}

fn encode_id(value: &str, out: &mut String) {
    if plain(value) {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        if is_line_breaking(c) {
            percent_encode_char(c, out);
        } else {
            out.push(c);
        }
    }
}

fn encode_list(items: &[String], out: &mut String) {
    let start = out.len();
    for item in items {
        let item_start = out.len();
        if item_start > start {
            out.push(' ');
        }
        for c in item.chars() {
            if c == ' ' || c == '%' || is_line_breaking(c) {
                percent_encode_char(c, out);
            } else {
                out.push(c);
            }
        }
        if out.len() - start > MAX_TEXT_BYTES - 1 {
            // Whole items only: half an item would be a different item.
            out.truncate(item_start);
            break;
        }
    }
    if starts_formula(&out[start..]) {
        out.insert(start, '\'');
    }
}

fn percent_encode_char(c: char, out: &mut String) {
    let mut buf = [0u8; 4];
    for b in c.encode_utf8(&mut buf).bytes() {
        let _ = write!(out, "%{b:02X}");
    }
}

/// Percent-decodes a list item; the inverse of the list encoding, for readers of our CSVs.
pub fn decode_list(cell: &str) -> Vec<String> {
    cell.split(' ')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> String {
        let mut out = String::new();
        render_cell(Kind::Text, Cell::Str(s), &mut out);
        out
    }

    #[test]
    fn fast_paths_agree_with_the_general_ones() {
        for n in [
            0,
            7,
            -7,
            10,
            99,
            -100,
            1_772_668_920_123,
            i64::MAX,
            i64::MIN,
        ] {
            let mut out = String::new();
            push_int(n, &mut out);
            assert_eq!(out, n.to_string());
        }
        let u = uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210);
        let mut out = String::new();
        render_cell(Kind::Uuid, Cell::Uuid(&u), &mut out);
        assert_eq!(out, u.to_string());
        for s in ["plain text", "tab\there", "é", "~ !", "\u{7f}", "-x", ""] {
            let mut slow = String::new();
            for c in s.chars() {
                if is_line_breaking(c) {
                    percent_encode_char(c, &mut slow);
                } else {
                    slow.push(c);
                }
            }
            let mut out = String::new();
            render_cell(Kind::Id, Cell::Str(s), &mut out);
            assert_eq!(out, slow, "{s:?}");
        }
    }

    #[test]
    fn formulas_get_a_quote() {
        assert_eq!(text("=cmd|' /C calc'!A0"), "'=cmd|' /C calc'!A0");
        assert_eq!(text("+1"), "'+1");
        assert_eq!(text("-2"), "'-2");
        assert_eq!(text("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(text("a=b"), "a=b");
    }

    #[test]
    fn control_characters_become_spaces() {
        assert_eq!(text("a\r\nb\tc\0d\u{7f}e\u{2028}f"), "a  b c d e f");
        // A tab or CR before the formula no longer hides it once replaced: it starts with a space.
        assert_eq!(text("\t=1"), " =1");
    }

    #[test]
    fn long_text_is_cut_within_the_limit_on_a_char_boundary() {
        let long = "é".repeat(60_000); // 120 KB
        let out = text(&long);
        assert!(out.len() <= MAX_TEXT_BYTES, "{}", out.len());
        assert!(out.ends_with(TRUNCATION_MARK));
        let exact = "x".repeat(MAX_TEXT_BYTES);
        assert_eq!(text(&exact), exact, "a value at the limit is kept whole");
        let formula = format!("={}", "x".repeat(MAX_TEXT_BYTES));
        assert!(text(&formula).len() <= MAX_TEXT_BYTES);
        assert!(text(&formula).starts_with("'="));
    }

    #[test]
    fn typed_and_id_columns_are_left_alone() {
        let mut out = String::new();
        render_cell(Kind::Integer, Cell::Int(-5), &mut out);
        assert_eq!(out, "-5");
        out.clear();
        render_cell(Kind::Id, Cell::Str("+abc/def=="), &mut out);
        assert_eq!(out, "+abc/def==", "base64 credential_uid must not change");
        out.clear();
        render_cell(Kind::Id, Cell::Str("id\nwith break"), &mut out);
        assert_eq!(out, "id%0Awith break");
        out.clear();
        render_cell(Kind::DateTime, Cell::Int(1_772_668_920_123), &mut out);
        assert_eq!(out, "2026-03-05T00:02:00.123Z");
    }

    #[test]
    fn lists_round_trip() {
        let items = vec![
            "role:Org Admin".to_string(),
            "scp:a%b".to_string(),
            "x\ny".into(),
        ];
        let mut out = String::new();
        render_cell(Kind::List, Cell::List(&items), &mut out);
        assert_eq!(out, "role:Org%20Admin scp:a%25b x%0Ay");
        assert_eq!(decode_list(&out), items);
        out.clear();
        render_cell(Kind::List, Cell::List(&["=x".to_string()]), &mut out);
        assert_eq!(out, "'=x");
    }

    #[test]
    fn csv_quotes_only_where_needed() -> Result<()> {
        let mut row = crate::model::Denial::default();
        row.head.time = 0;
        row.head.vendor = "github".into();
        row.error_message = Some("a, \"b\"".into());
        row.required_scope = vec!["repo".into(), "read:org".into()];
        let mut enc = CsvEncoder::new(Vec::new(), Dataset::Denials)?;
        enc.write(&row.into())?;
        let text = String::from_utf8(enc.finish()?)?;
        let mut lines = text.lines();
        assert!(
            lines
                .next()
                .is_some_and(|h| h.starts_with("time,time_dt,event_uid,vendor,"))
        );
        let line = lines.next().unwrap_or_default();
        assert!(line.contains(",\"a, \"\"b\"\"\","), "{line}");
        assert!(line.contains(",repo read:org,"), "{line}");
        assert!(text.ends_with('\n') && !text.contains('\r'));
        Ok(())
    }
}
