//! Hashing and hex, for content ETags, storage keys and request fingerprints (pure).

use sha2::{Digest, Sha256};

/// Lower-case hex of bytes.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digit = |nibble: u8| DIGITS.get(usize::from(nibble)).copied().unwrap_or(b'0');
    // Bytes first, one UTF-8 check at the end: `String::push` encodes every char on its own.
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(digit(b >> 4));
        out.push(digit(b & 0x0f));
    }
    String::from_utf8(out).unwrap_or_default()
}

/// The bytes of lower-case hex ([`hex`]'s output and nothing else: no upper case, no odd
/// length), or `None`.
#[must_use]
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.as_bytes()
        .chunks_exact(2)
        .map(|pair| match pair {
            [hi, lo] => Some((digit(*hi)? << 4) | digit(*lo)?),
            _ => None,
        })
        .collect()
}

/// Whether `text` is exactly `digits` lower-case hex digits (the ids and keys edgecart makes
/// from [`hex`]).
#[must_use]
pub fn is_lower_hex(text: &str, digits: usize) -> bool {
    text.len() == digits && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// SHA-256 over length-prefixed parts, hex. Length prefixes make `("ab", "c")` and
/// `("a", "bc")` hash differently.
#[must_use]
pub fn sha256_parts(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for part in parts {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    hex(&h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_hex_is_exact_in_length_and_case() {
        assert!(is_lower_hex(&hex(&[0x00, 0xab, 0xff]), 6));
        for (text, digits) in [
            ("00abf", 6),
            ("00abff0", 6),
            ("00ABff", 6),
            ("00abfg", 6),
            ("", 1),
        ] {
            assert!(!is_lower_hex(text, digits), "{text}");
        }
        assert!(is_lower_hex("", 0));
    }

    #[test]
    fn hex_is_lower_case_and_complete() {
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
    }

    #[test]
    fn from_hex_reads_exactly_what_hex_writes() {
        assert_eq!(from_hex("00abff"), Some(vec![0x00, 0xab, 0xff]));
        assert_eq!(from_hex(""), Some(vec![]));
        for bad in ["0", "AB", "0g", "abc", " 00"] {
            assert_eq!(from_hex(bad), None, "{bad}");
        }
    }

    #[test]
    fn parts_are_length_prefixed() {
        assert_ne!(sha256_parts(&[b"ab", b"c"]), sha256_parts(&[b"a", b"bc"]));
        assert_eq!(sha256_parts(&[b"x"]).len(), 64);
    }
}
