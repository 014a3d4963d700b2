//! Line shapes: the lines of a log are written by a few loggers in a few layouts, and differ
//! in their values. A shape is one line's bytes with its values cut out (the literals between
//! them) and, per value, whether it is a string or a number and the slot it fills. A line with
//! the same literals around well-formed values reads like the line the shape came from, so it is
//! read by comparing its literals and finding its values' ends, without walking its keys. A
//! line that fits no shape is read by `scan.rs`, and now and then becomes a shape.
//!
//! A line that fits gives what `scan::extract` gives, because:
//! - a shape comes from a line the scanner read whole;
//! - a line fits only if every byte outside the holes is the one of that line, so the scanner
//!   would walk it through the same keys;
//! - each hole is read with the scanner's own functions: a string as the scanner finds its end
//!   and decodes it, a number as the scanner reads one that it keeps or skips.
//!
//! Anything else does not fit, and the scanner's answer (or error) stands.

use super::json::{Paths, Scalar};
use super::scan::{self, ScanError, Scanner};

/// Layouts kept per collection: a success, a denial with its challenge header, a 429 with its
/// rate-limit headers...
const MAX_SHAPES: usize = 4;
/// The first lines that fit no shape are learned from; after them, one in `RELEARN_EVERY`: a
/// log whose lines all differ, or whose kept values make no shape, pays for one learning in 64
/// lines, not for one per line, and a new layout is still learned within 64 lines.
const LEARN_FIRST: u32 = 16;
const RELEARN_EVERY: u32 = 64;
/// Shapes pay only when nearly every line fits one: a line that fits none has tried them all,
/// each up to the byte where it differs, before the scanner reads it. In a log of 16 layouts
/// used evenly, three lines in four fit none and reading a line took 7,300 instructions, where
/// the scanner alone takes 3,300 (callgrind, `gen_http_log 200000 16`). So the lines are
/// counted by windows of `WINDOW`; after a window where fewer than 7 in 8 fit, the next
/// `REST` lines go straight to the scanner, then shapes are tried again.
const WINDOW: u32 = 256;
const REST: u32 = 64 * WINDOW;

/// The shapes learned from one collection's lines, for one set of paths.
#[derive(Default)]
pub struct Shapes {
    /// The shape that fit last first.
    known: Vec<Shape>,
    misses: u32,
    /// Lines tried in the current window, and how many fit.
    tried: u32,
    fit: u32,
    /// Lines left to read without trying shapes.
    resting: u32,
    /// Where the kept values of the line being learned from start (reused).
    starts: Vec<(usize, usize)>,
}

struct Shape {
    pieces: Vec<Piece>,
    /// What follows the last value, to the end of the line.
    tail: Literal,
}

/// The literal bytes before a value, and the value.
struct Piece {
    literal: Literal,
    hole: Hole,
    /// Where the value goes, if it is kept.
    slot: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Hole {
    /// A string's contents: its quotes are in the literals around it.
    Str,
    Number,
}

/// Bytes that a line must have at a place.
struct Literal {
    bytes: Box<[u8]>,
}

impl Literal {
    fn new(bytes: &[u8]) -> Literal {
        Literal {
            bytes: bytes.into(),
        }
    }

    /// Where the literal ends if `line` has it at `at`.
    #[inline(always)]
    fn at(&self, line: &[u8], at: usize) -> Option<usize> {
        let end = at + self.bytes.len();
        same(line.get(at..end)?, &self.bytes).then_some(end)
    }
}

/// Whether two slices of the same length are equal. Literals are mostly 4 to 32 bytes: they
/// are compared as two to four overlapping words, inline; a call to `memcmp` per literal cost
/// a sixth of reading a line.
#[inline(always)]
fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    // Reads within the slices only: `routes::word`, which also reads past an end, is a call
    // here and took reading a line from 1,855 to 2,413 instructions.
    let word = |s: &[u8], i: usize| {
        s.get(i..)
            .and_then(<[u8]>::first_chunk::<8>)
            .map(|c| u64::from_le_bytes(*c))
    };
    let half = |s: &[u8], i: usize| {
        s.get(i..)
            .and_then(<[u8]>::first_chunk::<4>)
            .map(|c| u32::from_le_bytes(*c))
    };
    match n {
        4..=7 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        17..=32 => [0, 8, n - 16, n - 8]
            .iter()
            .all(|&i| word(a, i) == word(b, i)),
        _ => a == b,
    }
}

impl Shapes {
    /// `scan::extract`, by a known shape when the line fits one.
    pub fn extract<'a>(
        &mut self,
        paths: &Paths,
        line: &'a [u8],
        out: &mut [Option<Scalar<'a>>],
    ) -> Result<(), ScanError> {
        if self.resting > 0 {
            self.resting -= 1;
            return scan::extract(paths, line, out);
        }
        self.tried += 1;
        if self.tried == WINDOW {
            if self.fit < WINDOW / 8 * 7 {
                self.resting = REST;
            }
            (self.tried, self.fit) = (0, 0);
        }
        for k in 0..self.known.len() {
            if self.known[k].read(line, out) {
                self.known[..=k].rotate_right(1);
                self.fit += 1;
                return Ok(());
            }
        }
        // Wrapping: after 2^32 misses the first lines are learned from again.
        self.misses = self.misses.wrapping_add(1);
        if self.misses > LEARN_FIRST && !self.misses.is_multiple_of(RELEARN_EVERY) {
            return scan::extract(paths, line, out);
        }
        self.starts.clear();
        scan::extract_recording(paths, line, out, &mut self.starts)?;
        if let Some(shape) = Shape::of(line, &self.starts) {
            self.known.truncate(MAX_SHAPES - 1);
            self.known.insert(0, shape);
        }
        Ok(())
    }
}

impl Shape {
    /// The shape of a line the scanner read, given where its kept values start; `None` when a
    /// kept value is not a string or a number (a `true`, or an object where a value was
    /// expected).
    fn of(line: &[u8], starts: &[(usize, usize)]) -> Option<Shape> {
        let slot_at = |i: usize| starts.iter().find(|(at, _)| *at == i).map(|(_, s)| *s);
        let mut pieces = Vec::new();
        let (mut from, mut i) = (0, 0);
        while let Some(&c) = line.get(i) {
            match c {
                b'"' => {
                    let end = scan::string(line, i).ok()?.end;
                    let after = line.get(end + 1..)?;
                    let gap = after
                        .iter()
                        .take_while(|c| matches!(c, b' ' | b'\t' | b'\r' | b'\n'))
                        .count();
                    // A key is part of the literal: a line with another key does not fit.
                    if after.get(gap) != Some(&b':') {
                        pieces.push(Piece {
                            literal: Literal::new(line.get(from..=i)?),
                            hole: Hole::Str,
                            slot: slot_at(i),
                        });
                        from = end;
                    }
                    i = end + 1;
                }
                b'-' | b'0'..=b'9' => {
                    let (_, _, end) = scan::number(line, i);
                    pieces.push(Piece {
                        literal: Literal::new(line.get(from..i)?),
                        hole: Hole::Number,
                        slot: slot_at(i),
                    });
                    from = end;
                    i = end;
                }
                _ => i += 1,
            }
        }
        let holes = pieces.iter().filter(|p| p.slot.is_some()).count();
        (holes == starts.len()).then(|| Shape {
            pieces,
            tail: Literal::new(line.get(from..).unwrap_or_default()),
        })
    }

    /// Reads `line` into `out` if it fits; if not, `out` is left as it was.
    fn read<'a>(&self, line: &'a [u8], out: &mut [Option<Scalar<'a>>]) -> bool {
        let mut scanner = Scanner::new(line);
        let mut at = 0;
        for (k, p) in self.pieces.iter().enumerate() {
            let end = p
                .literal
                .at(line, at)
                .and_then(|start| value(&mut scanner, line, start, p, out));
            match end {
                Some(end) => at = end,
                None => {
                    for p in &self.pieces[..k] {
                        if let Some(slot) = p.slot {
                            out[slot] = None;
                        }
                    }
                    return false;
                }
            }
        }
        let fits = self.tail.at(line, at) == Some(line.len());
        if !fits {
            for slot in self.pieces.iter().filter_map(|p| p.slot) {
                out[slot] = None;
            }
        }
        fits
    }
}

/// Reads the value of `p` at `at` (into its slot, if kept): where it ends.
#[inline(always)]
fn value<'a>(
    scanner: &mut Scanner<'a>,
    line: &'a [u8],
    at: usize,
    p: &Piece,
    out: &mut [Option<Scalar<'a>>],
) -> Option<usize> {
    match (p.hole, p.slot) {
        (Hole::Str, slot) => {
            // The literal ended with the opening quote.
            let s = scan::string(line, at - 1).ok()?;
            if let Some(slot) = slot {
                out[slot] = Some(scanner.string_value(&s).ok()?);
            }
            Some(s.end)
        }
        (Hole::Number, Some(slot)) => {
            let (value, end) = scan::number_value(line, at).ok()?;
            out[slot] = Some(value);
            Some(end)
        }
        (Hole::Number, None) => match scan::number(line, at) {
            (0, _, _) => None,
            (_, _, end) => Some(end),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::scan::tests::{Rng, paths, random_object, random_ws};
    use super::*;

    const WANTED: [&str; 6] = ["ts", "a.b", "n", "s", "deep.x", "t"];

    fn general(trie: &Paths, line: &[u8]) -> (Result<(), ScanError>, Vec<Option<Scalar<'static>>>) {
        let mut out = vec![None; WANTED.len()];
        let result = scan::extract(trie, line, &mut out);
        (result, owned(out))
    }

    fn owned(out: Vec<Option<Scalar<'_>>>) -> Vec<Option<Scalar<'static>>> {
        out.into_iter()
            .map(|v| {
                v.map(|v| match v {
                    Scalar::Str(s) => Scalar::Str(s.into_owned().into()),
                    Scalar::Int(n) => Scalar::Int(n),
                    Scalar::Float(f) => Scalar::Float(f),
                    Scalar::Bool(b) => Scalar::Bool(b),
                    Scalar::Other => Scalar::Other,
                })
            })
            .collect()
    }

    /// `line` with each value of its shape replaced at random: strings with quotes,
    /// backslashes and bytes that are not UTF-8, numbers of every form, nothing at all.
    fn variant(r: &mut Rng, shape: &Shape) -> Vec<u8> {
        let mut out = Vec::new();
        for p in &shape.pieces {
            out.extend_from_slice(&p.literal.bytes);
            let choices: &[&[u8]] = match p.hole {
                Hole::Str => &[
                    b"x",
                    b"",
                    b"longer text past eight bytes",
                    b"a\\\"b",
                    b"q\"",
                    b"\\",
                    b"\xff\xfe",
                    b"\xc3\xa9",
                    b"12",
                ],
                Hole::Number => &[
                    b"7",
                    b"-1",
                    b"1.5e3",
                    b"-",
                    b"",
                    b"1e",
                    b"12345678901234567890",
                    b"0x1",
                    b"1-2",
                    b"\"s\"",
                    b"true",
                ],
            };
            out.extend_from_slice(choices[r.below(choices.len())]);
        }
        out.extend_from_slice(&shape.tail.bytes);
        if r.below(20) == 0 {
            out.push(b' ');
        }
        out
    }

    #[test]
    fn a_line_that_fits_reads_as_the_scanner_reads_it() {
        let trie = paths(&WANTED);
        let mut r = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut fits, mut tries) = (0, 0);
        for _ in 0..3_000 {
            let mut line = String::new();
            random_ws(&mut r, &mut line);
            random_object(&mut r, &mut line, 0);
            let line = line.trim_end().as_bytes();
            let mut shapes = Shapes::default();
            let mut out = vec![None; WANTED.len()];
            let learned = shapes.extract(&trie, line, &mut out);
            assert_eq!((learned, owned(out)), general(&trie, line));
            let Some(shape) = shapes.known.first() else {
                continue;
            };
            // The line it came from fits it.
            let mut out = vec![None; WANTED.len()];
            assert!(shape.read(line, &mut out));
            assert_eq!((Ok(()), owned(out)), general(&trie, line));
            for _ in 0..20 {
                let other = variant(&mut r, shape);
                let mut out = vec![None; WANTED.len()];
                tries += 1;
                if shape.read(&other, &mut out) {
                    fits += 1;
                    let other_text = String::from_utf8_lossy(&other);
                    assert_eq!(
                        (Ok(()), owned(out)),
                        general(&trie, &other),
                        "{other_text} by the shape of {}",
                        String::from_utf8_lossy(line)
                    );
                } else {
                    assert!(out.iter().all(Option::is_none), "left as it was");
                }
            }
        }
        // Most variants fit: the test reads lines by shapes, not only the scanner.
        assert!(fits * 4 > tries, "{fits} of {tries} fit");
    }

    #[test]
    fn a_log_line_is_read_by_its_shape_after_the_first() {
        let trie = paths(&["ts", "request.method", "request.url", "response.status"]);
        let line = |ts: &str, method: &str, status: u16| {
            format!(
                r#"{{"ts":"{ts}","request":{{"id":"r1","method":"{method}","url":"https://a.example/x","headers":{{"user-agent":"ua/1"}}}},"response":{{"status":{status},"duration_ms":12}}}}"#
            )
        };
        let mut shapes = Shapes::default();
        let first = line("2026-03-02T00:00:00Z", "GET", 200);
        let mut out = vec![None; 4];
        shapes
            .extract(&trie, first.as_bytes(), &mut out)
            .expect("read");
        assert_eq!(shapes.known.len(), 1);
        let second = line("2026-03-02T00:00:01.250Z", "POST", 401);
        let mut out = vec![None; 4];
        assert!(shapes.known[0].read(second.as_bytes(), &mut out));
        assert_eq!(out[1], Some(Scalar::Str("POST".into())));
        assert_eq!(out[3], Some(Scalar::Int(401)));
        // Another key in the same place is another layout.
        let other = second.replace("duration_ms", "latency_ms");
        assert!(!shapes.known[0].read(other.as_bytes(), &mut vec![None; 4]));
        // A kept value that is not a string or a number is not learned from.
        let mut shapes = Shapes::default();
        let odd = first.replace(r#""status":200"#, r#""status":null"#);
        shapes
            .extract(&trie, odd.as_bytes(), &mut vec![None; 4])
            .expect("read");
        assert!(shapes.known.is_empty());
    }

    #[test]
    fn literals_are_compared_word_by_word_as_bytes_would_be() {
        let line = b"0123456789abcdefghij0123456789abcdefghij";
        for from in 0..line.len() {
            for to in from..=line.len() {
                let literal = Literal::new(&line[from..to]);
                for at in 0..=line.len() + 1 {
                    let bytes = line.get(at..at + (to - from));
                    let want = (bytes == Some(&line[from..to])).then_some(at + (to - from));
                    assert_eq!(literal.at(line, at), want, "{from}..{to} at {at}");
                }
            }
        }
    }

    #[test]
    fn a_log_of_many_layouts_keeps_a_few_learns_seldom_then_rests() {
        let trie = paths(&["ts"]);
        let line = |i: u32| format!(r#"{{"ts":"t{i}","k{i}":1}}"#);
        let mut shapes = Shapes::default();
        let read = |shapes: &mut Shapes, i: u32| {
            let line = line(i);
            let mut out = vec![None];
            shapes
                .extract(&trie, line.as_bytes(), &mut out)
                .expect("read");
            assert_eq!(
                out[0],
                Some(Scalar::Str(format!("t{i}").into())),
                "line {i}"
            );
        };
        for i in 1..=WINDOW {
            read(&mut shapes, i);
        }
        assert_eq!(shapes.misses, WINDOW);
        // Past the first 16, only every 64th line was learned from: the last four of them are
        // kept, the latest first.
        for (shape, i) in shapes.known.iter().zip([256, 192, 128, 64]) {
            assert!(shape.read(line(i).as_bytes(), &mut [None]), "line {i}");
        }
        assert_eq!(shapes.known.len(), MAX_SHAPES);
        // No line of the window fit: the next lines go to the scanner, shapes untried, even one
        // that would fit.
        assert_eq!(shapes.resting, REST);
        read(&mut shapes, 192);
        read(&mut shapes, 5000);
        assert_eq!((shapes.resting, shapes.misses), (REST - 2, WINDOW));
        for i in 0..REST - 2 {
            read(&mut shapes, 10_000 + i);
        }
        // Rested: shapes are tried again.
        read(&mut shapes, 192);
        assert_eq!((shapes.resting, shapes.fit), (0, 1));
    }

    #[test]
    fn a_log_that_nearly_always_fits_keeps_trying_shapes() {
        let trie = paths(&["ts", "n"]);
        let mut shapes = Shapes::default();
        // One line in ten of another layout, each of them different: 9 in 10 fit.
        for i in 0..10 * WINDOW {
            let line = if i % 10 == 9 {
                format!(r#"{{"ts":"{i}","odd{i}":{i}}}"#)
            } else {
                format!(r#"{{"ts":"{i}","n":{i}}}"#)
            };
            let mut out = vec![None, None];
            shapes
                .extract(&trie, line.as_bytes(), &mut out)
                .expect("read");
            assert_eq!(out[0], Some(Scalar::Str(i.to_string().into())));
            assert_eq!(shapes.resting, 0, "line {i}");
        }
    }
}
