//! One pass over a JSON line's bytes for the mapped fields, without a tree and without
//! decoding what nobody asked for: keys are compared as bytes, skipped strings are jumped with
//! `memchr`, kept strings are borrowed from the line, and only strings with escapes are handed
//! to serde_json to decode. It checks the structure (braces, colons, commas, quotes, literals);
//! it does not check what it skips for invalid escapes, UTF-8 or the finer points of number
//! syntax, as a log line's skipped fields do not matter.

use std::borrow::Cow;

use super::json::{Paths, Scalar};

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
    let mut s = Scanner { b: line, i: 0 };
    s.ws();
    s.object(paths, out)?;
    s.ws();
    if s.i != s.b.len() {
        return Err(ScanError::Syntax("the end of the line", s.i));
    }
    Ok(())
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.i += 1;
        }
    }

    fn expect(&mut self, c: u8, what: &'static str) -> Result<(), ScanError> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(ScanError::Syntax(what, self.i))
        }
    }

    fn object(&mut self, node: &Paths, out: &mut [Option<Scalar<'a>>]) -> Result<(), ScanError> {
        self.expect(b'{', "{")?;
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.ws();
            let (key, escaped) = self.string()?;
            let child = if escaped {
                node.child(&decode(key)?)
            } else {
                node.child_bytes(key)
            };
            self.ws();
            self.expect(b':', ":")?;
            self.ws();
            match child {
                Some(n) if n.is_leaf() => {
                    let value = self.scalar()?;
                    if let Some(slot) = n.slot() {
                        out[slot] = Some(value);
                    }
                }
                Some(n) if self.peek() == Some(b'{') => self.object(n, out)?,
                _ => self.skip()?,
            }
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(ScanError::Syntax(", or }", self.i)),
            }
        }
    }

    /// A string's raw bytes (without quotes), and whether it has escapes.
    fn string(&mut self) -> Result<(&'a [u8], bool), ScanError> {
        self.expect(b'"', "\"")?;
        let start = self.i;
        let mut escaped = false;
        loop {
            match quote_or_backslash(&self.b[self.i..]) {
                Some(n) if self.b[self.i + n] == b'"' => {
                    let end = self.i + n;
                    self.i = end + 1;
                    return Ok((&self.b[start..end], escaped));
                }
                Some(n) => {
                    escaped = true;
                    self.i += n + 2;
                    if self.i > self.b.len() {
                        return Err(ScanError::Syntax("the end of a string", self.b.len()));
                    }
                }
                None => return Err(ScanError::Syntax("the end of a string", self.b.len())),
            }
        }
    }

    fn scalar(&mut self) -> Result<Scalar<'a>, ScanError> {
        match self.peek() {
            Some(b'"') => {
                let (raw, escaped) = self.string()?;
                Ok(Scalar::Str(if escaped {
                    decode(raw)?
                } else {
                    Cow::Borrowed(utf8(raw)?)
                }))
            }
            Some(b'{' | b'[') => {
                self.skip()?;
                Ok(Scalar::Other)
            }
            Some(b't') => self.literal(b"true", Scalar::Bool(true)),
            Some(b'f') => self.literal(b"false", Scalar::Bool(false)),
            Some(b'n') => self.literal(b"null", Scalar::Str(Cow::Borrowed(""))),
            _ => {
                let start = self.i;
                let (digits, simple) = self.number();
                // Most numbers in logs are short integers: summed here, not parsed as text.
                if simple && digits > 0 && digits <= 18 {
                    let text = &self.b[start..self.i];
                    let (negative, text) = match text.split_first() {
                        Some((b'-', rest)) => (true, rest),
                        _ => (false, text),
                    };
                    let n = text.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0'));
                    return Ok(Scalar::Int(if negative { -n } else { n }));
                }
                let text =
                    std::str::from_utf8(&self.b[start..self.i]).map_err(|_| ScanError::Utf8)?;
                if let Ok(n) = text.parse::<i64>() {
                    Ok(Scalar::Int(n))
                } else {
                    text.parse::<f64>()
                        .map(Scalar::Float)
                        .map_err(|_| ScanError::Syntax("a value", start))
                }
            }
        }
    }

    /// Moves past a number's characters: how many digits, and whether it is only an optional
    /// `-` and digits.
    fn number(&mut self) -> (usize, bool) {
        let start = self.i;
        let mut digits = 0;
        let mut simple = true;
        while let Some(c) = self.peek() {
            match c {
                b'0'..=b'9' => digits += 1,
                b'-' if self.i == start => {}
                b'-' | b'+' | b'.' | b'e' | b'E' => simple = false,
                _ => break,
            }
            self.i += 1;
        }
        (digits, simple)
    }

    fn literal(&mut self, word: &'static [u8], value: Scalar<'a>) -> Result<Scalar<'a>, ScanError> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(value)
        } else {
            Err(ScanError::Syntax("true, false or null", self.i))
        }
    }

    /// Skips one value of any kind.
    fn skip(&mut self) -> Result<(), ScanError> {
        match self.peek() {
            Some(b'"') => self.string().map(|_| ()),
            Some(b'{' | b'[') => {
                let mut depth = 0usize;
                loop {
                    match self.peek() {
                        Some(b'"') => {
                            self.string()?;
                            continue;
                        }
                        Some(b'{' | b'[') => depth += 1,
                        Some(b'}' | b']') => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                return Ok(());
                            }
                        }
                        Some(_) => {}
                        None => {
                            return Err(ScanError::Syntax("the end of an object or array", self.i));
                        }
                    }
                    self.i += 1;
                }
            }
            Some(b'-' | b'0'..=b'9') => match self.number() {
                (0, _) => Err(ScanError::Syntax("a value", self.i)),
                _ => Ok(()),
            },
            Some(_) => self.scalar().map(|_| ()),
            None => Err(ScanError::Syntax("a value", self.i)),
        }
    }
}

/// Where the first `"` or `\\` is, eight bytes at a time: strings in logs are mostly short,
/// where a SIMD search costs more to set up than it saves.
fn quote_or_backslash(b: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has = |word: u64, byte: u8| {
        let x = word ^ (ONES * u64::from(byte));
        x.wrapping_sub(ONES) & !x & HIGHS
    };
    let mut i = 0;
    while i + 8 <= b.len() {
        let word = u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or_default());
        let found = has(word, b'"') | has(word, b'\\');
        if found != 0 {
            return Some(i + (found.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    b[i..]
        .iter()
        .position(|c| matches!(c, b'"' | b'\\'))
        .map(|n| i + n)
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
mod tests {
    use super::*;

    fn paths(p: &[&str]) -> Paths {
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
        ];
        for line in lines {
            let mut out = vec![None; wanted.len()];
            extract(&trie, line.as_bytes(), &mut out).unwrap_or_else(|e| panic!("{line}: {e}"));
            for (i, path) in wanted.iter().enumerate() {
                assert_eq!(out[i], oracle(line, path), "{path} in {line}");
            }
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

    #[test]
    fn eight_at_a_time_finds_the_first_quote_or_backslash() {
        for text in [
            "",
            "a",
            "abcdefgh",
            "abcdefgh\"",
            "abc\\",
            "\"",
            "0123456789abcdef\"x",
            "é\"",
            "12345678\\\"",
        ] {
            let want = text.bytes().position(|c| c == b'"' || c == b'\\');
            assert_eq!(quote_or_backslash(text.as_bytes()), want, "{text:?}");
        }
        // A byte just above or below the searched ones is not mistaken for them.
        let near: Vec<u8> = (0u8..=255).filter(|b| *b != b'"' && *b != b'\\').collect();
        assert_eq!(quote_or_backslash(&near), None);
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
