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
    children: Vec<(String, Paths)>,
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
            let i = match node.children.iter().position(|(k, _)| k == part) {
                Some(i) => i,
                None => {
                    node.children.push((part.to_string(), Paths::default()));
                    node.children.len() - 1
                }
            };
            node = &mut node.children[i].1;
        }
        node.slot = Some(slot);
    }

    /// The child a key leads to; a key with dots (`"http.status"`) walks several levels, so
    /// flattened and nested logs answer the same path.
    pub fn child(&self, key: &str) -> Option<&Paths> {
        self.child_bytes(key.as_bytes())
    }

    /// Like `child`, on a key's raw bytes: a key that matches is the configured UTF-8.
    pub fn child_bytes(&self, key: &[u8]) -> Option<&Paths> {
        let mut dotted = None;
        for (k, n) in &self.children {
            let k = k.as_bytes();
            if k.len() <= key.len() && k.first() == key.first() && key.starts_with(k) {
                match key.get(k.len()) {
                    None => return Some(n),
                    Some(b'.') => dotted = Some((k.len(), n)),
                    Some(_) => {}
                }
            }
        }
        // `"http.status"`: the rest of the key walks on from the child it starts with.
        let (len, n) = dotted?;
        n.child_bytes(&key[len + 1..])
    }
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
}
