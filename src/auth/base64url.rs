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
//! Each character is looked up in a 256-entry table (`INVALID` for anything outside the
//! alphabet): one load per character instead of a chain of range comparisons, which matters
//! in wasm code that V8 has not yet optimised.

/// The bytes `text` encodes, or `None` when it is not strict unpadded base64url.
#[must_use]
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let input = text.as_bytes();
    if input.len() % 4 == 1 {
        return None;
    }
    let groups = input.len() / 4;
    let rest = input.get(groups * 4..)?;
    // 2 trailing characters carry 1 byte and 4 spare bits; 3 carry 2 bytes and 2 spare bits.
    let (tail_bytes, spare) = match rest.len() {
        0 => (0, 0),
        2 => (1, 4),
        _ => (2, 2),
    };
    // The output is sized up front and written in place, three bytes per group: no length
    // check per byte as `push` has, and no `memory.copy` (a call into V8's runtime, which is
    // what `extend_from_slice` becomes in wasm) per group.
    let mut out = vec![0u8; groups * 3 + tail_bytes];
    let (body, tail) = out.split_at_mut_checked(groups * 3)?;
    for (chunk, dst) in input.chunks_exact(4).zip(body.chunks_exact_mut(3)) {
        let (&[w, x, y, z], [a, b, c]) = (chunk, dst) else {
            return None;
        };
        let (w, x, y, z) = (sextet(w), sextet(x), sextet(y), sextet(z));
        // Any INVALID has bit 7 set; valid sextets never do.
        if (w | x | y | z) & INVALID != 0 {
            return None;
        }
        let acc = u32::from(w) << 18 | u32::from(x) << 12 | u32::from(y) << 6 | u32::from(z);
        [_, *a, *b, *c] = acc.to_be_bytes();
    }
    if !rest.is_empty() {
        let mut acc: u32 = 0;
        for &byte in rest {
            let value = sextet(byte);
            if value & INVALID != 0 {
                return None;
            }
            acc = (acc << 6) | u32::from(value);
        }
        if acc & ((1 << spare) - 1) != 0 {
            return None;
        }
        let be = (acc >> spare).to_be_bytes();
        for (d, s) in tail.iter_mut().zip(be.get(4 - tail_bytes..)?) {
            *d = *s;
        }
    }
    Some(out)
}

/// Marks a byte outside the alphabet in [`SEXTETS`].
const INVALID: u8 = 0x80;

/// The value of each byte as a base64url digit, or [`INVALID`].
// Built at compile time: an index out of range fails the build, it cannot panic at run time.
#[allow(clippy::indexing_slicing)]
const SEXTETS: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < 26 {
        table[b'A' as usize + i] = i as u8;
        table[b'a' as usize + i] = 26 + i as u8;
        i += 1;
    }
    let mut d = 0;
    while d < 10 {
        table[b'0' as usize + d] = 52 + d as u8;
        d += 1;
    }
    table[b'-' as usize] = 62;
    table[b'_' as usize] = 63;
    table
};

fn sextet(byte: u8) -> u8 {
    SEXTETS.get(usize::from(byte)).copied().unwrap_or(INVALID)
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
