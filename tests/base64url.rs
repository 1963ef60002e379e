//! The token segment decoder (`edgecart::auth::decode_segment`, the `base64` crate's
//! `URL_SAFE_NO_PAD` engine) accepts and produces exactly what `base64ct`'s strict unpadded
//! base64url does, on random bytes and on random text: two independent implementations that
//! must agree on what a canonical segment is.
#![allow(clippy::unwrap_used)]

use base64ct::{Base64UrlUnpadded, Encoding};
use edgecart::auth::decode_segment as decode;
use proptest::prelude::*;

#[test]
fn known_texts_decode_and_non_canonical_ones_do_not() {
    let cases: [(&str, Option<&[u8]>); 13] = [
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
        ("Zm9v\n", None), // no whitespace, not even at the end
    ];
    for (text, bytes) in cases {
        assert_eq!(decode(text).as_deref(), bytes, "{text:?}");
    }
}

proptest! {
    #[test]
    fn every_encoding_decodes_back(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let text = Base64UrlUnpadded::encode_string(&bytes);
        prop_assert_eq!(decode(&text), Some(bytes));
    }

    #[test]
    fn any_text_is_judged_as_base64ct_judges_it(text in "[A-Za-z0-9_=+/ -]{0,24}") {
        prop_assert_eq!(decode(&text), Base64UrlUnpadded::decode_vec(&text).ok());
    }

    #[test]
    fn near_misses_are_judged_as_base64ct_judges_them(
        bytes in proptest::collection::vec(any::<u8>(), 1..40),
        at in any::<prop::sample::Index>(),
        with in prop::sample::select(b"AQgw_-=+/.~ \xc3".to_vec()),
    ) {
        let mut text = Base64UrlUnpadded::encode_string(&bytes).into_bytes();
        let i = at.index(text.len());
        text[i] = with;
        let text = String::from_utf8_lossy(&text).into_owned();
        prop_assert_eq!(decode(&text), Base64UrlUnpadded::decode_vec(&text).ok());
    }
}
