//! Extracting the mapped fields of a JSON line in one pass, without building a tree: a
//! `DeserializeSeed` driven by a trie of the configured paths, so serde_json skips every value
//! nobody asked for and hands over the rest borrowed from the line.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

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

impl<'de> serde::Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(i64::try_from(v).map_or(Scalar::Float(v as f64), Scalar::Int))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Borrowed("")))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// The configured paths as a trie; a leaf holds the slot its value goes to.
#[derive(Debug, Default)]
pub struct Paths {
    slot: Option<usize>,
    children: Vec<(String, Paths)>,
}

impl Paths {
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
    fn child(&self, key: &str) -> Option<&Paths> {
        if let Some((_, n)) = self.children.iter().find(|(k, _)| k == key) {
            return Some(n);
        }
        if key.contains('.') {
            let mut node = self;
            for part in key.split('.') {
                node = node
                    .children
                    .iter()
                    .find(|(k, _)| k == part)
                    .map(|(_, n)| n)?;
            }
            return Some(node);
        }
        None
    }

    /// Parses one line, putting each mapped value in its slot.
    pub fn extract<'de>(
        &self,
        line: &'de str,
        out: &mut [Option<Scalar<'de>>],
    ) -> Result<(), serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(line);
        Seed { node: self, out }.deserialize(&mut de)?;
        de.end()
    }
}

struct Seed<'t, 'o, 'de> {
    node: &'t Paths,
    out: &'o mut [Option<Scalar<'de>>],
}

impl<'de> DeserializeSeed<'de> for Seed<'_, '_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_, '_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<(), A::Error> {
        while let Some(Key(key)) = m.next_key::<Key<'de>>()? {
            match self.node.child(&key) {
                Some(n) if n.children.is_empty() => {
                    let value: Scalar<'de> = m.next_value()?;
                    if let Some(slot) = n.slot {
                        self.out[slot] = Some(value);
                    }
                }
                Some(n) => m.next_value_seed(Seed {
                    node: n,
                    out: &mut *self.out,
                })?,
                None => {
                    m.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// A key, borrowed unless it has escapes (serde's `Cow<str>` would always allocate).
struct Key<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extract<'a>(paths: &[&str], line: &'a str) -> Vec<Option<Scalar<'a>>> {
        let mut trie = Paths::default();
        for (i, p) in paths.iter().enumerate() {
            trie.add(p, i);
        }
        let mut out = vec![None; paths.len()];
        trie.extract(line, &mut out).expect("valid JSON");
        out
    }

    #[test]
    fn nested_flat_and_escaped() {
        let line = r#"{"a":{"b":"x","skip":[1,{"c":2}]},"http.status":403,"e":"q\"uote","n":null,"o":{"k":1}}"#;
        let out = extract(&["a.b", "http.status", "e", "n", "o", "missing"], line);
        assert_eq!(out[0], Some(Scalar::Str(Cow::Borrowed("x"))));
        assert_eq!(out[1].as_ref().and_then(Scalar::as_int), Some(403));
        assert_eq!(out[2].as_ref().and_then(Scalar::as_str), Some("q\"uote"));
        assert_eq!(out[3].as_ref().and_then(Scalar::to_text), None);
        assert_eq!(out[4], Some(Scalar::Other));
        assert_eq!(out[5], None);
    }

    #[test]
    fn broken_lines_are_errors() {
        let mut trie = Paths::default();
        trie.add("a", 0);
        let mut out = vec![None];
        for bad in [r#"{"a":"unterminated"#, "[1,2]", r#"{"a":1} trailing"#, ""] {
            assert!(trie.extract(bad, &mut out).is_err(), "{bad}");
        }
    }
}
