//! Strict, unpadded base64url decoding (RFC 4648 §5) for the segments of bearer tokens.
//!
//! Pure. Accepts exactly what `base64ct::Base64UrlUnpadded` accepts (the property tests in
//! `tests/base64url.rs` compare the two on random input): only `A–Z a–z 0–9 - _`, no
//! padding, no length of the form 4k + 1, and zero bits after the last byte (one canonical
//! text per byte string). It is not constant-time: a token is presented by
//! its holder, so the time taken to decode it tells nobody anything they do not have. Key
//! material from the configuration keeps going through `base64ct`.
//!
//! Why not `base64ct` here too: its constant-time decoding showed up in profiles of every
//! authenticated request (three segments per token) at several times this cost.
//! It is table-free (a `match` per character) to stay within the crate's no-indexing lints.

/// The bytes `text` encodes, or `None` when it is not strict unpadded base64url.
#[must_use]
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let input = text.as_bytes();
    if input.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(input.len() / 4 * 3 + 2);
    let mut chunks = input.chunks_exact(4);
    for chunk in &mut chunks {
        let mut acc: u32 = 0;
        for &byte in chunk {
            acc = (acc << 6) | u32::from(sextet(byte)?);
        }
        let [_, a, b, c] = acc.to_be_bytes();
        out.extend_from_slice(&[a, b, c]);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut acc: u32 = 0;
        for &byte in rest {
            acc = (acc << 6) | u32::from(sextet(byte)?);
        }
        // 2 characters carry 1 byte and 4 spare bits; 3 carry 2 bytes and 2 spare bits.
        let (bytes, spare) = if rest.len() == 2 { (1, 4) } else { (2, 2) };
        if acc & ((1 << spare) - 1) != 0 {
            return None;
        }
        let value = acc >> spare;
        let be = value.to_be_bytes();
        out.extend_from_slice(be.get(4 - bytes..)?);
    }
    Some(out)
}

fn sextet(byte: u8) -> Option<u8> {
    match byte {
        b'A'..=b'Z' => Some(byte - b'A'),
        b'a'..=b'z' => Some(byte - b'a' + 26),
        b'0'..=b'9' => Some(byte - b'0' + 52),
        b'-' => Some(62),
        b'_' => Some(63),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn known_texts_decode_and_non_canonical_ones_do_not() {
        let cases: [(&str, Option<&[u8]>); 12] = [
            ("", Some(b"")),
            ("Zg", Some(b"f")),
            ("Zm8", Some(b"fo")),
            ("Zm9v", Some(b"foo")),
            ("Zm9vYg", Some(b"foob")),
            ("_-8", Some(&[0xff, 0xef])),
            ("Zh", None),     // spare bits set
            ("Zm9", None),    // spare bits set
            ("Z", None),      // 4k + 1
            ("Zg==", None),   // padding
            ("Zm9v+g", None), // standard alphabet
            ("Zm 9v", None),
        ];
        for (text, bytes) in cases {
            assert_eq!(decode(text).as_deref(), bytes, "{text:?}");
        }
    }
}
