//! `api_operation` for a logged path: the route template with ids removed
//! (`/api/v1/items/8412` -> `/api/v1/items/{id}`), from templates configured per vendor first,
//! else by recognizing ids.

/// A configured template: `/repos/{owner}/{repo}/hooks/{id}`; `{...}` matches any one segment.
#[derive(Debug, Clone)]
pub struct Template {
    text: String,
    segments: Vec<Option<String>>,
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, String> {
        if !text.starts_with('/') {
            return Err(format!("route template {text:?} must start with /"));
        }
        let segments = text
            .split('/')
            .map(|s| (!(s.starts_with('{') && s.ends_with('}'))).then(|| s.to_string()))
            .collect();
        Ok(Template {
            text: text.to_string(),
            segments,
        })
    }

    fn matches(&self, path: &str) -> bool {
        let mut parts = path.split('/');
        for seg in &self.segments {
            match (seg, parts.next()) {
                (_, None) => return false,
                (Some(literal), Some(part)) if literal != part => return false,
                _ => {}
            }
        }
        parts.next().is_none()
    }
}

/// Writes the operation for `path` into `out`.
pub fn operation(templates: &[Template], path: &str, out: &mut String) {
    out.clear();
    if let Some(t) = templates.iter().find(|t| t.matches(path)) {
        out.push_str(&t.text);
        return;
    }
    // Eight bytes at a time: most segments have no digit, and are copied as they are
    // without a look at each of their bytes.
    let b = path.as_bytes();
    let mut copied = 0;
    // Where the current segment starts, and whether it has a digit so far.
    let (mut start, mut digit) = (0, false);
    let mut at = 0;
    while at < b.len() {
        let w = word(b, at);
        let (mut slashes, mut digits) = (bytes_equal(w, b'/'), digit_bytes(w));
        while slashes != 0 {
            // The high bit of the first slash's byte.
            let slash = slashes & slashes.wrapping_neg();
            let end = at + (slash.trailing_zeros() / 8) as usize;
            if digit || digits & (slash - 1) != 0 {
                id_or_not(path, start..end, &mut copied, out);
            }
            digits &= !(slash | (slash - 1));
            slashes ^= slash;
            (start, digit) = (end + 1, false);
        }
        digit |= digits != 0;
        at += 8;
    }
    if digit {
        id_or_not(path, start..b.len(), &mut copied, out);
    }
    out.push_str(path.get(copied..).unwrap_or_default());
}

/// Where the last `/` of `path` is, when the segment after it looks like an id: the
/// operation is then the operation of what comes before, followed by `/{id}` (without
/// templates, segments are told apart one by one).
pub fn trailing_id(path: &str) -> Option<usize> {
    let cut = memchr::memrchr(b'/', path.as_bytes())?;
    let last = path.as_bytes().get(cut + 1..).unwrap_or_default();
    let (any, all) = last.iter().fold((0, u8::MAX), |(any, all), c| {
        let class = CLASS[usize::from(*c)];
        (any | class, all & class)
    });
    looks_like_id(last.len(), any, all).then_some(cut)
}

/// A segment with a digit: written as `{id}` (after the text before it not yet `copied`)
/// if it looks like an id.
fn id_or_not(path: &str, segment: std::ops::Range<usize>, copied: &mut usize, out: &mut String) {
    let bytes = path.as_bytes().get(segment.clone()).unwrap_or_default();
    let (any, all) = bytes.iter().fold((0, u8::MAX), |(any, all), c| {
        let class = CLASS[usize::from(*c)];
        (any | class, all & class)
    });
    if looks_like_id(bytes.len(), any, all) {
        // Both ends are next to a `/` or an end of the path: char boundaries.
        out.push_str(path.get(*copied..segment.start).unwrap_or_default());
        out.push_str("{id}");
        *copied = segment.end;
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const LOWS: u64 = 0x7f7f_7f7f_7f7f_7f7f;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Eight bytes of `b` from `i` as a little-endian word, zero past the end (zero is neither a
/// slash nor a digit).
pub(super) fn word(b: &[u8], i: usize) -> u64 {
    match (
        b.get(i..).and_then(<[u8]>::first_chunk::<8>),
        b.last_chunk::<8>(),
    ) {
        (Some(w), _) => u64::from_le_bytes(*w),
        // The last word, shifted down: fewer than eight bytes are left.
        (None, Some(w)) => u64::from_le_bytes(*w) >> (8 * (8 - (b.len() - i))),
        (None, None) => b[i..].iter().rev().fold(0, |w, c| (w << 8) | u64::from(*c)),
    }
}

/// The high bit of every byte of `w` that is `c`, exactly (no borrow from byte to byte).
pub(super) fn bytes_equal(w: u64, c: u8) -> u64 {
    let x = w ^ (ONES * u64::from(c));
    !(((x & LOWS) + LOWS) | x) & HIGHS
}

/// The high bit of every byte of `w` that is an ASCII digit, exactly.
fn digit_bytes(w: u64) -> u64 {
    let low = w & LOWS;
    // A byte below 0x80 plus 0x50 reaches 0x80 from `0` on, plus 0x46 from past `9` on.
    (low + ONES * 0x50) & !(low + ONES * 0x46) & !w & HIGHS
}

const DIGIT: u8 = 1;
const HEX_OR_DASH: u8 = 2;
const TOKEN: u8 = 4;

/// Per byte, which of the characters of ids it is.
const CLASS: [u8; 256] = {
    let mut class = [0; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        if b.is_ascii_digit() {
            class[c] |= DIGIT;
        }
        if b.is_ascii_hexdigit() || b == b'-' {
            class[c] |= HEX_OR_DASH;
        }
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            class[c] |= TOKEN;
        }
        c += 1;
    }
    class
};

/// Numbers, UUIDs and hex ids, long tokens with digits: what varies per call. A segment is
/// given by its length and the classes any and all of its bytes have.
#[inline(always)]
fn looks_like_id(len: usize, any: u8, all: u8) -> bool {
    // Most segments are words: no digit, no id.
    any & DIGIT != 0
        && (all & DIGIT != 0
            || (len >= 8 && all & HEX_OR_DASH != 0)
            || (len >= 16 && all & TOKEN != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(templates: &[&str], path: &str) -> String {
        let t: Vec<Template> = templates
            .iter()
            .map(|t| Template::parse(t).unwrap_or_else(|e| panic!("{e}")))
            .collect();
        let mut out = String::new();
        operation(&t, path, &mut out);
        out
    }

    #[test]
    fn ids_are_recognized() {
        assert_eq!(op(&[], "/api/v1/items/8412"), "/api/v1/items/{id}");
        assert_eq!(
            op(
                &[],
                "/repos/acme/app/hooks/12345/deliveries/550e8400-e29b-41d4-a716-446655440000"
            ),
            "/repos/acme/app/hooks/{id}/deliveries/{id}"
        );
        assert_eq!(op(&[], "/v2/users/me"), "/v2/users/me");
        assert_eq!(
            op(&[], "/api/v1/oauth2"),
            "/api/v1/oauth2",
            "short words with digits stay"
        );
    }

    /// The segment-by-segment definition `operation` computes in one pass.
    fn operation_slowly(path: &str) -> String {
        let id = |s: &str| {
            let b = s.as_bytes();
            let digits = b.iter().filter(|b| b.is_ascii_digit()).count();
            digits > 0
                && (digits == b.len()
                    || (b.len() >= 8 && b.iter().all(|b| b.is_ascii_hexdigit() || *b == b'-'))
                    || (b.len() >= 16
                        && b.iter()
                            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')))
        };
        path.split('/')
            .map(|s| if id(s) { "{id}" } else { s })
            .collect::<Vec<_>>()
            .join("/")
    }

    #[test]
    fn bytes_are_told_eight_at_a_time() {
        for c in 0..=255u8 {
            for at in 0..8 {
                let w = u64::from(c) << (8 * at)
                    | u64::from_le_bytes(*b"ab/9-\x80Z0") & !(0xff << (8 * at));
                let bytes = w.to_le_bytes();
                let want = |f: &dyn Fn(u8) -> bool| {
                    bytes
                        .iter()
                        .enumerate()
                        .filter(|(_, b)| f(**b))
                        .fold(0, |m, (i, _)| m | 0x80 << (8 * i))
                };
                assert_eq!(bytes_equal(w, b'/'), want(&|b| b == b'/'), "{bytes:?}");
                assert_eq!(digit_bytes(w), want(&|b| b.is_ascii_digit()), "{bytes:?}");
            }
        }
    }

    #[test]
    fn one_pass_agrees_with_segments() {
        let mut x: u64 = 0x0123_4567_89ab_cdef;
        let alphabet = [
            "/", "/", "a", "f", "g", "1", "9", "-", "_", "é", "Z", ".", "0",
        ];
        for _ in 0..50_000 {
            let len = (x % 70) as usize;
            let path: String = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    alphabet[(x % alphabet.len() as u64) as usize]
                })
                .collect();
            assert_eq!(op(&[], &path), operation_slowly(&path), "{path}");
            if let Some(cut) = trailing_id(&path) {
                assert_eq!(
                    op(&[], &path),
                    format!("{}/{{id}}", op(&[], &path[..cut])),
                    "{path}"
                );
            } else {
                assert!(!operation_slowly(&path).ends_with("/{id}"), "{path}");
            }
        }
        for path in [
            "",
            "/",
            "//",
            "123",
            "/123/",
            "abc",
            "/a/0123456789abcdef0123/b",
        ] {
            assert_eq!(op(&[], path), operation_slowly(path), "{path}");
        }
    }

    #[test]
    fn configured_templates_win() {
        let t = [
            "/repos/{owner}/{repo}/releases/latest",
            "/repos/{owner}/{repo}",
        ];
        assert_eq!(
            op(&t, "/repos/acme/erp/releases/latest"),
            "/repos/{owner}/{repo}/releases/latest"
        );
        assert_eq!(op(&t, "/repos/acme/erp"), "/repos/{owner}/{repo}");
        assert_eq!(
            op(&t, "/repos/acme/erp/pulls/7"),
            "/repos/acme/erp/pulls/{id}",
            "no template: ids only"
        );
        assert!(Template::parse("repos/{x}").is_err());
    }
}
