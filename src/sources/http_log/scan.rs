//! One pass over a JSON line's bytes for the mapped fields, without a tree and without
//! decoding what nobody asked for: strings are jumped eight bytes at a time, keys are compared
//! as words read from the line, kept strings are borrowed from the line, and only strings with
//! escapes are handed to serde_json to decode. It checks the structure (braces, colons,
//! commas, quotes, literals); it does not check what it skips for invalid escapes, UTF-8, the
//! finer points of number syntax or the pairing of brackets inside skipped objects and arrays
//! (`[1}` is skipped like `[1]`), as a log line's skipped fields do not matter.
//!
//! Positions are passed and returned rather than kept in the scanner, so that they stay in
//! registers.

use std::borrow::Cow;

use super::json::{Head, Paths, Scalar, head};

#[derive(Debug, PartialEq)]
pub enum ScanError {
    /// Not a JSON object: what was expected and where.
    Syntax(&'static str, usize),
    /// A kept string is not UTF-8 (the caller retries on a repaired copy).
    Utf8,
}

impl std::fmt::Display for ScanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScanError::Syntax(what, at) => write!(f, "not JSON: expected {what} at byte {at}"),
            ScanError::Utf8 => f.write_str("not UTF-8"),
        }
    }
}

pub fn extract<'a>(
    paths: &Paths,
    line: &'a [u8],
    out: &mut [Option<Scalar<'a>>],
) -> Result<(), ScanError> {
    Scanner::new(line).extract(paths, out)
}

/// `extract`, telling also where each kept value starts: (position, slot), in line order
/// (`shape.rs` learns a line's shape from it).
pub fn extract_recording<'a>(
    paths: &Paths,
    line: &'a [u8],
    out: &mut [Option<Scalar<'a>>],
    starts: &mut Vec<(usize, usize)>,
) -> Result<(), ScanError> {
    let mut s = Scanner::new(line);
    s.starts = Some(std::mem::take(starts));
    let result = s.extract(paths, out);
    *starts = s.starts.unwrap_or_default();
    result
}

pub struct Scanner<'a> {
    b: &'a [u8],
    /// The whole line as text, once a kept string asked for it (`Some(None)`: it is not all
    /// UTF-8). One check of the line costs less than one per kept string, and a slice of it
    /// between two quotes is text without a second look.
    text: Option<Option<&'a str>>,
    /// Where kept values start, when asked (`extract_recording`).
    starts: Option<Vec<(usize, usize)>>,
}

impl<'a> Scanner<'a> {
    pub fn new(line: &'a [u8]) -> Self {
        Scanner {
            b: line,
            text: None,
            starts: None,
        }
    }

    fn extract(&mut self, paths: &Paths, out: &mut [Option<Scalar<'a>>]) -> Result<(), ScanError> {
        let line = self.b;
        let (c, i) = token(line, 0);
        if c != b'{' {
            return Err(ScanError::Syntax("{", i));
        }
        let i = self.object(i, paths, out)?;
        let (_, i) = token(line, i);
        if i != line.len() {
            return Err(ScanError::Syntax("the end of the line", i));
        }
        Ok(())
    }

    /// The object at `i` (its `{`); where it ends.
    fn object(
        &mut self,
        i: usize,
        node: &Paths,
        out: &mut [Option<Scalar<'a>>],
    ) -> Result<usize, ScanError> {
        let b = self.b;
        let (mut c, mut i) = token(b, i + 1);
        if c == b'}' {
            return Ok(i + 1);
        }
        loop {
            if c != b'"' {
                return Err(ScanError::Syntax("\"", i));
            }
            // A configured key is mostly found as it is written, without looking for its end.
            let probed = b
                .get(i + 1..)
                .and_then(<[u8]>::first_chunk::<16>)
                .and_then(|w| node.probe(w));
            let (key_end, child) = match probed {
                Some((len, child)) => (i + 1 + len, child),
                None => {
                    let key = string(b, i)?;
                    let raw = b.get(key.start..key.end).unwrap_or_default();
                    let child = if key.escaped {
                        node.child(&decode(raw)?)
                    } else {
                        node.find(raw, key.head)
                    };
                    (key.end, child)
                }
            };
            let (colon, j) = token(b, key_end + 1);
            if colon != b':' {
                return Err(ScanError::Syntax(":", j));
            }
            let (v, j) = token(b, j + 1);
            i = match child {
                Some(n) if n.is_leaf() => {
                    let at = j;
                    let (value, j) = if v == b'"' {
                        let s = string(b, j)?;
                        (self.string_value(&s)?, s.end + 1)
                    } else {
                        self.scalar(j, v)?
                    };
                    if let Some(slot) = n.slot() {
                        out[slot] = Some(value);
                        if let Some(starts) = &mut self.starts {
                            starts.push((at, slot));
                        }
                    }
                    j
                }
                _ if v == b'"' => string(b, j)?.end + 1,
                Some(n) if v == b'{' => self.object(j, n, out)?,
                _ => self.skip(j, v)?,
            };
            let (next, j) = token(b, i);
            match next {
                b',' => (c, i) = token(b, j + 1),
                b'}' => return Ok(j + 1),
                _ => return Err(ScanError::Syntax(", or }", j)),
            }
        }
    }

    /// A kept string's value: borrowed from the line unless it has escapes.
    #[inline(always)]
    pub fn string_value(&mut self, s: &Str) -> Result<Scalar<'a>, ScanError> {
        let raw = self.b.get(s.start..s.end).unwrap_or_default();
        if s.escaped {
            return decode(raw).map(Scalar::Str);
        }
        let line = match self.text {
            Some(line) => line,
            // SIMD validation (simdutf8) takes half the instructions of std's on a log line.
            None => *self.text.insert(simdutf8::basic::from_utf8(self.b).ok()),
        };
        Ok(Scalar::Str(Cow::Borrowed(match line {
            // Quotes are ASCII, so the string's ends are char boundaries.
            Some(line) => line.get(s.start..s.end).ok_or(ScanError::Utf8)?,
            // Only the kept strings need to be text.
            None => utf8(raw)?,
        })))
    }

    /// The value at `i`, whose first byte is `c`; where it ends.
    #[inline(never)]
    fn scalar(&mut self, i: usize, c: u8) -> Result<(Scalar<'a>, usize), ScanError> {
        let b = self.b;
        match c {
            b'"' => {
                let s = string(b, i)?;
                Ok((self.string_value(&s)?, s.end + 1))
            }
            b'{' | b'[' => Ok((Scalar::Other, nested(b, i)?)),
            b't' => literal(b, i, b"true", Scalar::Bool(true)),
            b'f' => literal(b, i, b"false", Scalar::Bool(false)),
            b'n' => literal(b, i, b"null", Scalar::Str(Cow::Borrowed(""))),
            _ => number_value(b, i),
        }
    }

    /// Skips the value at `i`, whose first byte is `c`; where it ends.
    #[inline(never)]
    fn skip(&mut self, i: usize, c: u8) -> Result<usize, ScanError> {
        let b = self.b;
        match c {
            b'"' => Ok(string(b, i)?.end + 1),
            b'{' | b'[' => nested(b, i),
            b'-' | b'0'..=b'9' => match number(b, i) {
                (0, _, end) => Err(ScanError::Syntax("a value", end)),
                (_, _, end) => Ok(end),
            },
            _ => self.scalar(i, c).map(|(_, end)| end),
        }
    }
}

/// The byte at `i` or, past whitespace, after it, and where it is (0 past the end, never
/// valid where a token is looked for). Lines written by loggers have no whitespace between
/// tokens: one comparison in the common case.
#[inline(always)]
fn token(b: &[u8], i: usize) -> (u8, usize) {
    let c = b.get(i).copied().unwrap_or(0);
    if c > b' ' {
        return (c, i);
    }
    token_after_whitespace(b, i)
}

#[inline(never)]
fn token_after_whitespace(b: &[u8], mut i: usize) -> (u8, usize) {
    loop {
        match b.get(i).copied().unwrap_or(0) {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            c => return (c, i),
        }
    }
}

fn literal<'a>(
    b: &[u8],
    i: usize,
    word: &'static [u8],
    value: Scalar<'a>,
) -> Result<(Scalar<'a>, usize), ScanError> {
    if b.get(i..).unwrap_or_default().starts_with(word) {
        Ok((value, i + word.len()))
    } else {
        Err(ScanError::Syntax("true, false or null", i))
    }
}

/// The number at `i`, and where it ends.
pub fn number_value<'a>(b: &[u8], start: usize) -> Result<(Scalar<'a>, usize), ScanError> {
    let at = |i: usize| b.get(i).copied().unwrap_or(0);
    // Most numbers in logs are short integers: summed here, not parsed as text.
    let negative = at(start) == b'-';
    let mut i = start + usize::from(negative);
    let mut n: i64 = 0;
    loop {
        let d = at(i).wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        n = n.wrapping_mul(10).wrapping_add(i64::from(d));
        i += 1;
    }
    let digits = i - start - usize::from(negative);
    if (1..=18).contains(&digits) && !matches!(at(i), b'-' | b'+' | b'.' | b'e' | b'E') {
        return Ok((Scalar::Int(if negative { -n } else { n }), i));
    }
    let (_, _, end) = number(b, start);
    let text = std::str::from_utf8(&b[start..end]).map_err(|_| ScanError::Utf8)?;
    let value = if let Ok(n) = text.parse::<i64>() {
        Scalar::Int(n)
    } else {
        text.parse::<f64>()
            .map(Scalar::Float)
            .map_err(|_| ScanError::Syntax("a value", start))?
    };
    Ok((value, end))
}

/// Moves past a number's characters from `i`: how many digits, whether it is only an optional
/// `-` and digits, and where it ends.
pub fn number(b: &[u8], start: usize) -> (usize, bool, usize) {
    let mut i = start;
    let mut digits = 0;
    let mut simple = true;
    while let Some(c) = b.get(i).copied() {
        match c {
            b'0'..=b'9' => digits += 1,
            b'-' if i == start => {}
            b'-' | b'+' | b'.' | b'e' | b'E' => simple = false,
            _ => break,
        }
        i += 1;
    }
    (digits, simple, i)
}

/// Skips the object or array at `i`, following only its brackets and strings; where it ends.
#[inline(never)]
fn nested(b: &[u8], mut i: usize) -> Result<usize, ScanError> {
    let mut depth = 0usize;
    while let Some(&c) = b.get(i) {
        match c {
            b'"' => i = string(b, i)?.end,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Ok(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    Err(ScanError::Syntax("the end of an object or array", b.len()))
}

/// A string found in the line.
pub struct Str {
    /// Where its contents start and end (the closing quote).
    pub start: usize,
    pub end: usize,
    pub escaped: bool,
    /// Its `Head`, when it has no escapes (keys are looked up by it).
    head: Head,
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of the bytes of `word` that are a `"`, and of those that are a `"` or a `\`.
/// Only the lowest bit set is exact (a borrow can flag a byte above a true match), which is
/// all a search for the first needs.
#[inline(always)]
fn quotes_and_specials(word: u64) -> (u64, u64) {
    let has = |byte: u8| {
        let x = word ^ (ONES * u64::from(byte));
        x.wrapping_sub(ONES) & !x & HIGHS
    };
    let quotes = has(b'"');
    (quotes, quotes | has(b'\\'))
}

/// The string at `i` (its opening quote), eight bytes at a time: strings in logs are mostly
/// too short for a SIMD search to pay for its setup. The first two words read are the key's
/// head as well.
#[inline(always)]
pub fn string(b: &[u8], i: usize) -> Result<Str, ScanError> {
    let start = i + 1;
    let rest = b.get(start..).unwrap_or_default();
    let Some((w0, rest)) = rest.split_first_chunk::<8>() else {
        return last_string(b, start, rest.len());
    };
    let w0 = u64::from_le_bytes(*w0);
    if let Some(end) = quote_in(b, rest.len() + 8, w0) {
        return found(b, start, end, |below| [below, 0]);
    }
    let Some((w1, mut rest)) = rest.split_first_chunk::<8>() else {
        return last_string(b, start, rest.len());
    };
    let w1 = u64::from_le_bytes(*w1);
    if let Some(end) = quote_in(b, rest.len() + 8, w1) {
        return found(b, start, end, |below| [w0, below]);
    }
    while let Some((w, tail)) = rest.split_first_chunk::<8>() {
        if let Some(end) = quote_in(b, rest.len(), u64::from_le_bytes(*w)) {
            return found(b, start, end, |_| [w0, w1]);
        }
        rest = tail;
    }
    last_string(b, start, rest.len())
}

/// Where the first quote or backslash is in `w`, the word `left` bytes before the end of the
/// line: the position, and the bytes of `w` below it; `Err` with the position if it is a
/// backslash.
#[inline(always)]
fn quote_in(b: &[u8], left: usize, w: u64) -> Option<Result<(usize, u64), usize>> {
    let (quotes, specials) = quotes_and_specials(w);
    if specials == 0 {
        return None;
    }
    let first = specials & specials.wrapping_neg();
    let at = b.len() - left + (first.trailing_zeros() / 8) as usize;
    // The first special byte is a quote exactly when `quotes` flags it: a wrong flag in
    // `quotes` would sit above a true quote, itself a lower special byte.
    Some(if quotes & first != 0 {
        // `first` is the quote's high bit.
        Ok((at, w & ((first >> 7) - 1)))
    } else {
        Err(at)
    })
}

/// The string that starts at `start`, given what `quote_in` found; `head` makes the head from
/// the bytes of the last word below the quote.
#[inline(always)]
fn found(
    b: &[u8],
    start: usize,
    end: Result<(usize, u64), usize>,
    head: impl FnOnce(u64) -> Head,
) -> Result<Str, ScanError> {
    match end {
        Ok((end, below)) => Ok(Str {
            start,
            end,
            escaped: false,
            head: head(below),
        }),
        Err(backslash) => escaped_string(b, start, backslash),
    }
}

/// `string` on from the last `left` (fewer than eight) bytes of the line.
#[inline(never)]
fn last_string(b: &[u8], start: usize, left: usize) -> Result<Str, ScanError> {
    // The line's last word shifted down (zeros are neither), rather than a copy.
    let w = match b.last_chunk::<8>() {
        _ if left == 0 => return Err(unterminated(b)),
        Some(w) => u64::from_le_bytes(*w) >> (8 * (8 - left)),
        None => b[b.len() - left..]
            .iter()
            .rev()
            .fold(0, |w, c| (w << 8) | u64::from(*c)),
    };
    match quote_in(b, left, w) {
        None => Err(unterminated(b)),
        Some(Ok((end, _))) => Ok(Str {
            start,
            end,
            escaped: false,
            head: head(&b[start..end]),
        }),
        Some(Err(backslash)) => escaped_string(b, start, backslash),
    }
}

fn unterminated(b: &[u8]) -> ScanError {
    ScanError::Syntax("the end of a string", b.len())
}

/// The string that starts at `start`, on from the backslash at `i`.
#[inline(never)]
fn escaped_string(b: &[u8], start: usize, mut i: usize) -> Result<Str, ScanError> {
    loop {
        i += 2;
        let rest = b.get(i..).ok_or(unterminated(b))?;
        let at = i + memchr::memchr2(b'"', b'\\', rest).ok_or(unterminated(b))?;
        if b[at] == b'"' {
            return Ok(Str {
                start,
                end: at,
                escaped: true,
                head: [0; 2],
            });
        }
        i = at;
    }
}

fn utf8(raw: &[u8]) -> Result<&str, ScanError> {
    std::str::from_utf8(raw).map_err(|_| ScanError::Utf8)
}

/// A string with escapes, decoded by serde_json (`raw` is what was between the quotes).
fn decode<'a>(raw: &[u8]) -> Result<Cow<'a, str>, ScanError> {
    let mut quoted = Vec::with_capacity(raw.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(raw);
    quoted.push(b'"');
    match serde_json::from_slice::<String>(&quoted) {
        Ok(s) => Ok(Cow::Owned(s)),
        Err(e) if e.classify() == serde_json::error::Category::Syntax => Err(ScanError::Utf8),
        Err(_) => Err(ScanError::Syntax("a valid escape", 0)),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in super::super) fn paths(p: &[&str]) -> Paths {
        let mut trie = Paths::default();
        for (i, p) in p.iter().enumerate() {
            trie.add(p, i);
        }
        trie
    }

    /// The value serde_json finds at a dotted path, as a `Scalar` would hold it.
    fn oracle(line: &str, path: &str) -> Option<Scalar<'static>> {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        let mut cur = &v;
        for part in path.split('.') {
            cur = cur.get(part)?;
        }
        Some(match cur {
            serde_json::Value::String(s) => Scalar::Str(Cow::Owned(s.clone())),
            serde_json::Value::Number(n) => n
                .as_i64()
                .map_or(Scalar::Float(n.as_f64().unwrap_or(0.0)), Scalar::Int),
            serde_json::Value::Bool(b) => Scalar::Bool(*b),
            serde_json::Value::Null => Scalar::Str(Cow::Borrowed("")),
            _ => Scalar::Other,
        })
    }

    #[test]
    fn agrees_with_serde_json_on_valid_lines() {
        let wanted = [
            "ts",
            "a.b",
            "a.c.d",
            "n",
            "s",
            "t",
            "arr",
            "esc",
            "deep.x.y.z",
        ];
        let trie = paths(&wanted);
        let lines = [
            r#"{"ts":"2026-03-05T09:02:00Z","a":{"b":"x","c":{"d":42}},"n":-1.5e3,"s":null,"t":true}"#,
            r#" { "a" : { "c" : { "d" : "é\u00e9" } , "b" : "q\"uote\\" } , "skip" : [1,{"x":"}]"}] , "arr":[1,2] } "#,
            r#"{"esc":"line\nbreak\t\"","deep":{"x":{"y":{"z":0}}},"ts":1772701320}"#,
            r#"{"other":{"a":{"b":"not this"}},"a":{"b":"this"}}"#,
            r#"{}"#,
            r#"{"a":"not an object","ts":"x"}"#,
            // Short lines, strings that end in the line's last eight bytes.
            r#"{"ts":""}"#,
            r#"{"ts":"1"}"#,
            r#"{"t":1}"#,
            r#"{"a":{"b":"1234567"}}"#,
            r#"{"s":"x","ts":"\\"}"#,
        ];
        for line in lines {
            let mut out = vec![None; wanted.len()];
            extract(&trie, line.as_bytes(), &mut out).unwrap_or_else(|e| panic!("{line}: {e}"));
            for (i, path) in wanted.iter().enumerate() {
                assert_eq!(out[i], oracle(line, path), "{path} in {line}");
            }
        }
    }

    /// xorshift: deterministic test data.
    pub(in super::super) struct Rng(pub(in super::super) u64);

    impl Rng {
        pub(in super::super) fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    /// Keys of every length around the 8 and 16 bytes of a head, escaped or not.
    const KEYS: [&str; 14] = [
        "a",
        "b",
        "ts",
        "é",
        "seven77",
        "eight888",
        "nine99999",
        "fifteen15151515",
        "sixteen161616161",
        "seventeen17171717",
        "a_long_key_past_two_words",
        "k\u{1}",
        "",
        "skip",
    ];

    fn random_string(r: &mut Rng, out: &mut String) {
        out.push('"');
        for _ in 0..r.below(40) {
            out.push_str(match r.below(16) {
                0 => "\\\"",
                1 => "\\\\",
                2 => "\\n",
                3 => "\\u00e9",
                4 => "é",
                5 => " ",
                6 => "#",
                7 => "!",
                8 => "[",
                9 => "]",
                10 => "{",
                _ => "x",
            });
        }
        out.push('"');
    }

    pub(in super::super) fn random_ws(r: &mut Rng, out: &mut String) {
        if r.below(5) == 0 {
            out.push_str([" ", "\t", "\n ", "\r\n"][r.below(4)]);
        }
    }

    fn random_value(r: &mut Rng, out: &mut String, depth: usize) {
        match r.below(if depth > 3 { 5 } else { 8 }) {
            0 | 1 => random_string(r, out),
            2 => out.push_str(&(r.below(200_000) as i64 - 1000).to_string()),
            3 => out.push_str(
                [
                    "true",
                    "false",
                    "null",
                    "-7",
                    "1.5e3",
                    "12345678901234567890",
                    "-1.25",
                    "999999999999999999",
                    "-9223372036854775808",
                ][r.below(9)],
            ),
            4 => out.push_str(&serde_json::to_string(KEYS[r.below(KEYS.len())]).unwrap()),
            5 | 6 => random_object(r, out, depth + 1),
            _ => {
                out.push('[');
                for i in 0..r.below(4) {
                    if i > 0 {
                        out.push(',');
                    }
                    random_ws(r, out);
                    random_value(r, out, depth + 1);
                    random_ws(r, out);
                }
                out.push(']');
            }
        }
    }

    /// An object without duplicate keys (where serde_json keeps the last one whole, and the
    /// scanner what it finds in each).
    pub(in super::super) fn random_object(r: &mut Rng, out: &mut String, depth: usize) {
        out.push('{');
        random_ws(r, out);
        let mut keys: Vec<&str> = KEYS.to_vec();
        for i in 0..r.below(7) {
            let key = keys.swap_remove(r.below(keys.len()));
            if i > 0 {
                out.push(',');
                random_ws(r, out);
            }
            let quoted = serde_json::to_string(key).unwrap();
            if r.below(6) == 0 {
                out.push_str(&quoted.replace('e', "\\u0065"));
            } else {
                out.push_str(&quoted);
            }
            random_ws(r, out);
            out.push(':');
            random_ws(r, out);
            random_value(r, out, depth);
            random_ws(r, out);
        }
        out.push('}');
    }

    #[test]
    fn agrees_with_serde_json_on_random_lines() {
        // No path is the start of another (the scanner then only looks inside objects there).
        let wanted = [
            "ts",
            "nine99999",
            "a.b",
            "eight888.nine99999",
            "sixteen161616161",
            "seventeen17171717.a_long_key_past_two_words",
            "é",
            "k\u{1}",
            ".ts",
            "b.seven77.fifteen15151515",
        ];
        let trie = paths(&wanted);
        let mut r = Rng(0x2545_f491_4f6c_dd1d);
        for _ in 0..20_000 {
            let mut line = String::new();
            random_ws(&mut r, &mut line);
            random_object(&mut r, &mut line, 0);
            random_ws(&mut r, &mut line);
            let mut out = vec![None; wanted.len()];
            extract(&trie, line.as_bytes(), &mut out).unwrap_or_else(|e| panic!("{line}: {e}"));
            for (i, path) in wanted.iter().enumerate() {
                assert_eq!(out[i], oracle(&line, path), "{path} in {line}");
            }
            // Cut short or with a byte changed: an answer, never a panic.
            let bytes = line.as_bytes();
            let _ = extract(&trie, &bytes[..r.below(bytes.len())], &mut vec![None; 10]);
            let mut bad = bytes.to_vec();
            bad[r.below(bytes.len())] = b"{}[]\":,\\ x1-.e\xff\x80"[r.below(16)];
            let _ = extract(&trie, &bad, &mut vec![None; 10]);
        }
    }

    #[test]
    fn broken_lines_are_errors_and_never_panics() {
        let trie = paths(&["a", "b.c"]);
        for bad in [
            r#"{"a":"unterminated"#,
            "[1,2]",
            r#"{"a":1} trailing"#,
            "",
            "{",
            r#"{"a" 1}"#,
            r#"{"a":1,}"#,
            r#"{"a":tru}"#,
            r#"{"b":{"c":[1,2}"#,
            r#"{"a":"\"#,
            r#"{"a":-}"#,
        ] {
            let mut out = vec![None; 2];
            assert!(extract(&trie, bad.as_bytes(), &mut out).is_err(), "{bad}");
        }
        // Arbitrary bytes: an answer, never a panic.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            let len = (x % 40) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    b"{}[]\":,\\ ab1-.etrunfl\x80"[(x % 22) as usize]
                })
                .collect();
            let mut out = vec![None; 2];
            let _ = extract(&trie, &bytes, &mut out);
        }
    }

    /// `string` one byte at a time: where the string whose opening quote is at `i` ends,
    /// whether it has escapes, and its head when it has none.
    fn string_slowly(b: &[u8], i: usize) -> Option<(usize, bool, Head)> {
        let (start, mut i) = (i + 1, i + 1);
        let mut escaped = false;
        loop {
            match b.get(i)? {
                b'"' if escaped => return Some((i, true, [0; 2])),
                b'"' => return Some((i, false, head(&b[start..i]))),
                b'\\' => {
                    escaped = true;
                    i += 2;
                }
                _ => i += 1,
            }
        }
    }

    fn string_quickly(b: &[u8], i: usize) -> Option<(usize, bool, Head)> {
        string(b, i).ok().map(|s| (s.end, s.escaped, s.head))
    }

    #[test]
    fn eight_at_a_time_finds_the_end_of_a_string() {
        for text in [
            "",
            "a",
            "abcdefgh",
            "abcdefgh\"",
            "abc\\",
            "\"",
            "0123456789abcdef\"x",
            "0123456789abcdefg\"x",
            "0123456789abcde\"x",
            "01234567\"",
            "é\"",
            "12345678\\\"",
            "1234567\\\"\"",
            "12345678\\\\\"",
            "\\",
            "\\\"",
            "abcdefg\\",
            "abcdefgh\\\"12345678\"",
            "\"!#\"",
            "\"\\#",
        ] {
            for start in 0..text.len() {
                assert_eq!(
                    string_quickly(text.as_bytes(), start),
                    string_slowly(text.as_bytes(), start),
                    "{text:?} from {start}"
                );
            }
        }
        // A byte just above or below the searched ones is not mistaken for them.
        let near: Vec<u8> = (0u8..=255).filter(|b| *b != b'"' && *b != b'\\').collect();
        for start in 0..near.len() {
            assert!(string(&near, start).is_err());
        }
        let mut x: u64 = 0x1234_5678_9abc_def1;
        for _ in 0..50_000 {
            let len = (x % 45) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    b"ab\"\\\x80\x00!]#[\x7f\xdc\xa2"[(x % 13) as usize]
                })
                .collect();
            let start = (x >> 32) as usize % (len.max(1));
            assert_eq!(
                string_quickly(&bytes, start),
                string_slowly(&bytes, start),
                "{bytes:?} from {start}"
            );
        }
    }

    #[test]
    fn invalid_utf8_in_a_kept_string_asks_for_a_repaired_copy() {
        let trie = paths(&["a"]);
        let mut line = br#"{"skip":""#.to_vec();
        line.extend_from_slice(&[0xff, 0xfe]);
        line.extend_from_slice(br#"","a":"ok"}"#);
        let mut out = vec![None];
        assert_eq!(
            extract(&trie, &line, &mut out),
            Ok(()),
            "a skipped field does not matter"
        );
        let mut bad = br#"{"a":""#.to_vec();
        bad.extend_from_slice(&[0xff]);
        bad.extend_from_slice(br#""}"#);
        assert_eq!(extract(&trie, &bad, &mut out), Err(ScanError::Utf8));
    }
}
