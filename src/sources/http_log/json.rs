//! The configured JSON paths (a trie) and the values found at them (`scan.rs` does the
//! finding).

use std::borrow::Cow;

/// A field's value, borrowed from the line where JSON allows it.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar<'a> {
    Str(Cow<'a, str>),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// An object or array where a scalar was expected.
    Other,
}

impl Scalar<'_> {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Scalar::Str(s) if !s.is_empty() => Some(s),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Scalar::Int(n) => Some(*n),
            Scalar::Float(f) if f.fract() == 0.0 => Some(*f as i64),
            Scalar::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// Text for a column: strings as they are, numbers and booleans spelled out.
    pub fn to_text(&self) -> Option<String> {
        match self {
            Scalar::Str(s) if s.is_empty() => None,
            Scalar::Str(s) => Some(s.to_string()),
            Scalar::Int(n) => Some(n.to_string()),
            Scalar::Float(f) => Some(f.to_string()),
            Scalar::Bool(b) => Some(b.to_string()),
            Scalar::Other => None,
        }
    }
}

/// The configured paths as a trie; a leaf holds the slot its value goes to.
#[derive(Debug, Default)]
pub struct Paths {
    slot: Option<usize>,
    children: Vec<Child>,
    /// Keys known to lead nowhere here (see `skip_others`): probed like the children, so
    /// that their values are skipped without looking for the key's end first.
    skips: Vec<(usize, Probe)>,
}

#[derive(Debug)]
struct Child {
    key: String,
    /// `head(key)`: most keys are told apart by two word comparisons, without a `memcmp` call.
    head: Head,
    /// The key as a line writes it when it needs no escape, up to its closing quote.
    probe: Option<Probe>,
    node: Paths,
}

/// A key of up to 15 bytes and its closing quote, as two little-endian words and the masks of
/// their bytes that count: compared with the 16 bytes after a key's opening quote.
#[derive(Debug, Clone, Copy)]
struct Probe {
    words: Head,
    masks: Head,
}

impl Probe {
    /// Only keys that JSON writes as they are: no quote, backslash or control character.
    fn of(key: &str) -> Option<Probe> {
        let b = key.as_bytes();
        if b.len() > 15 || b.iter().any(|c| *c < 0x20 || matches!(c, b'"' | b'\\')) {
            return None;
        }
        let mut text = [0u8; 16];
        text[..b.len()].copy_from_slice(b);
        text[b.len()] = b'"';
        let mut mask = [0u8; 16];
        mask[..=b.len()].fill(0xff);
        Some(Probe {
            words: head(&text),
            masks: head(&mask),
        })
    }
}

/// A key's first 16 bytes as two little-endian words, zero past the key's end.
pub type Head = [u64; 2];

/// `Head` of a key given whole.
pub fn head(key: &[u8]) -> Head {
    let mut buf = [0u8; 16];
    for (d, s) in buf.iter_mut().zip(key) {
        *d = *s;
    }
    let (lo, hi) = buf.split_at(8);
    [
        u64::from_le_bytes(lo.try_into().unwrap_or_default()),
        u64::from_le_bytes(hi.try_into().unwrap_or_default()),
    ]
}

impl Paths {
    pub fn is_leaf(&self) -> bool {
        self.children.is_empty()
    }

    pub fn slot(&self) -> Option<usize> {
        self.slot
    }

    /// `path` is dotted: `response.headers.www-authenticate`.
    pub fn add(&mut self, path: &str, slot: usize) {
        let mut node = self;
        for part in path.split('.') {
            let i = match node.children.iter().position(|c| c.key == part) {
                Some(i) => i,
                None => {
                    node.children.push(Child {
                        key: part.to_string(),
                        head: head(part.as_bytes()),
                        probe: Probe::of(part),
                        node: Paths::default(),
                    });
                    node.children.len() - 1
                }
            };
            node = &mut node.children[i].node;
        }
        node.slot = Some(slot);
    }

    /// The key, unescaped and followed by its closing quote, that starts `line` (the 16 bytes
    /// after a key's opening quote) if it is a child's or a known skip: its length, and the
    /// child (`None` for a skip). A key with escapes or dots is not found here (`child` and
    /// `find` find it).
    #[inline]
    pub fn probe(&self, line: &[u8; 16]) -> Option<(usize, Option<&Paths>)> {
        let (lo, hi) = (line.first_chunk::<8>()?, line.last_chunk::<8>()?);
        let words = [u64::from_le_bytes(*lo), u64::from_le_bytes(*hi)];
        let fits =
            |p: &Probe| words[0] & p.masks[0] == p.words[0] && words[1] & p.masks[1] == p.words[1];
        self.children
            .iter()
            .find_map(|c| {
                c.probe
                    .as_ref()
                    .filter(|p| fits(p))
                    .map(|_| (c.key.len(), Some(&c.node)))
            })
            .or_else(|| {
                self.skips
                    .iter()
                    .find(|(_, p)| fits(p))
                    .map(|(len, _)| (*len, None))
            })
    }

    /// Learns, from `other` (a trie of more paths), the keys that lead nowhere here but are
    /// in the logged objects: the lines that `other` reads have them, so most lines do.
    pub fn skip_others(&mut self, other: &Paths) {
        for o in &other.children {
            match self.children.iter_mut().find(|c| c.key == o.key) {
                Some(mine) => mine.node.skip_others(&o.node),
                None => {
                    if let Some(p) = o.probe {
                        self.skips.push((o.key.len(), p));
                    }
                }
            }
        }
    }

    /// The child a key leads to; a key with dots (`"http.status"`) walks several levels, so
    /// flattened and nested logs answer the same path.
    pub fn child(&self, key: &str) -> Option<&Paths> {
        self.child_bytes(key.as_bytes())
    }

    /// Like `child`, on a key's raw bytes: a key that matches is the configured UTF-8.
    pub fn child_bytes(&self, key: &[u8]) -> Option<&Paths> {
        self.find(key, head(key))
    }

    /// Like `child_bytes`, with the key's `Head` already at hand (the scanner reads it from
    /// the line).
    #[inline]
    pub fn find(&self, key: &[u8], head: Head) -> Option<&Paths> {
        for c in &self.children {
            if c.head == head
                && c.key.len() == key.len()
                && (key.len() <= 16 || c.key.as_bytes().get(16..) == key.get(16..))
            {
                return Some(&c.node);
            }
        }
        // Most keys that match nothing are short and have no dot: told here, without a call.
        if key.len() <= 16 && dots(head) == 0 {
            return None;
        }
        self.dotted(key, head)
    }

    /// Configured keys have no dots (`add` splits on them), so a key with a dot matches none
    /// of them whole: `"http.status"` walks on from the child named before its first dot.
    #[inline(never)]
    fn dotted(&self, key: &[u8], head: Head) -> Option<&Paths> {
        let dot = first_dot(key, head)?;
        let (first, rest) = (key.get(..dot)?, key.get(dot + 1..)?);
        if first.is_empty() {
            return None;
        }
        self.children
            .iter()
            .find(|c| c.key.as_bytes() == first)?
            .node
            .child_bytes(rest)
    }
}

/// Where the first `.` of a key is.
fn first_dot(key: &[u8], head: Head) -> Option<usize> {
    if key.len() > 16 {
        return memchr::memchr(b'.', key);
    }
    // Zero padding is never a dot; the lowest flagged byte is the first dot.
    match dots(head) {
        0 => None,
        m => Some((m.trailing_zeros() / 8) as usize),
    }
}

/// The high bit of the bytes of a head that are dots, both words in one mask (the first in the
/// low half). Only the lowest bit set is exact (a borrow can flag a byte above a true match).
#[inline(always)]
fn dots(head: Head) -> u128 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has = |word: u64| {
        let x = word ^ (ONES * u64::from(b'.'));
        x.wrapping_sub(ONES) & !x & HIGHS
    };
    u128::from(has(head[0])) | (u128::from(has(head[1])) << 64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_keys_walk_several_levels() {
        let mut trie = Paths::default();
        trie.add("http.status", 0);
        trie.add("resp.headers.x", 1);
        assert_eq!(trie.child("http.status").and_then(Paths::slot), Some(0));
        assert_eq!(
            trie.child("http")
                .and_then(|n| n.child("status"))
                .and_then(Paths::slot),
            Some(0)
        );
        assert!(trie.child("resp").is_some_and(|n| !n.is_leaf()));
        assert!(trie.child("other").is_none());
    }

    #[test]
    fn probes_find_only_keys_written_as_they_are() {
        let mut trie = Paths::default();
        trie.add("ts", 0);
        trie.add("a\\b", 1);
        trie.add("fifteen_bytes_k", 2);
        trie.add("sixteen_bytes_ke", 3);
        let at = |s: &str| {
            let mut b = [b' '; 16];
            let n = s.len().min(16);
            b[..n].copy_from_slice(&s.as_bytes()[..n]);
            trie.probe(&b)
                .map(|(len, c)| (len, c.and_then(Paths::slot)))
        };
        assert_eq!(at("ts\":1"), Some((2, Some(0))));
        assert_eq!(at("ts.x\":1"), None, "dotted keys walk by `child`");
        assert_eq!(at("tsx\":1"), None);
        assert_eq!(at("t\":1"), None);
        assert_eq!(
            at("a\\b\":1"),
            None,
            "written with an escape: found by `child`"
        );
        assert_eq!(at("fifteen_bytes_k\""), Some((15, Some(2))));
        assert_eq!(at("sixteen_bytes_ke"), None, "too long to probe");
        // Keys of a larger trie are known to lead nowhere.
        let mut more = Paths::default();
        for (i, p) in ["ts", "id", "request.headers.agent", "a\\b"]
            .iter()
            .enumerate()
        {
            more.add(p, i);
        }
        let mut counted = Paths::default();
        counted.add("request.method", 0);
        counted.add("ts", 1);
        counted.skip_others(&more);
        let probe = |trie: &Paths, s: &str| {
            let mut b = [b' '; 16];
            b[..s.len()].copy_from_slice(s.as_bytes());
            trie.probe(&b).map(|(len, c)| (len, c.map(|c| c.is_leaf())))
        };
        assert_eq!(probe(&counted, "ts\""), Some((2, Some(true))));
        assert_eq!(probe(&counted, "id\""), Some((2, None)), "a skip");
        assert_eq!(probe(&counted, "idx\""), None);
        assert_eq!(probe(&counted, "a\\b\""), None, "not probed");
        let request = counted.child("request").expect("request");
        assert_eq!(probe(request, "headers\""), Some((7, None)), "nested skip");
        assert_eq!(probe(request, "method\""), Some((6, Some(true))));
        assert!(counted.child("id").is_none(), "skips are not children");
    }

    #[test]
    fn keys_of_every_length_around_the_head() {
        let names: Vec<String> = (0..=34).map(|n| "k".repeat(n)).collect();
        let mut trie = Paths::default();
        for (i, n) in names.iter().enumerate() {
            trie.add(&format!("{n}.x"), i);
        }
        for (i, n) in names.iter().enumerate() {
            // A key matches only itself, not a longer or shorter one that shares its head.
            let found = trie
                .child(n)
                .and_then(|c| c.child("x"))
                .and_then(Paths::slot);
            assert_eq!(found, Some(i), "{n:?}");
            if i > 0 {
                let dotted = format!("{n}.x");
                assert_eq!(trie.child(&dotted).and_then(Paths::slot), found, "{dotted}");
            }
            assert!(trie.child(&format!("{n}y")).is_none());
            assert!(
                trie.child(&format!("{n}\0")).is_none(),
                "a NUL is not padding"
            );
        }
        // The empty name is only reached by the empty key, never by a leading dot.
        assert!(trie.child(".x").is_none());
        // A dot past the head.
        let mut deep = Paths::default();
        deep.add("a_long_name_of_twenty.b", 0);
        assert_eq!(
            deep.child("a_long_name_of_twenty.b").and_then(Paths::slot),
            Some(0)
        );
        assert!(deep.child("a_long_name_of_twentyy.b").is_none());
    }
}
