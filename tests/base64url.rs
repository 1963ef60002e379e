//! The token segment decoder (`edgecart::auth::base64url`) accepts and produces exactly what
//! `base64ct`'s strict unpadded base64url does, on random bytes and on random text.
#![allow(clippy::unwrap_used)]

use base64ct::{Base64UrlUnpadded, Encoding};
use edgecart::auth::base64url::decode;
use proptest::prelude::*;

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
