//! The catalogue's vocabulary: [`Sku`], [`Currency`] and [`Product`] (pure).

use serde::{Deserialize, Serialize};
use std::fmt;

/// A product identifier: 1–64 characters of `a-z`, `0-9` and `-`. Stable and URL-safe, so it
/// appears in paths unescaped.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Sku(String);

/// Why a text is not a [`Sku`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkuError {
    Empty,
    TooLong,
    OutsideAlphabet,
}

impl Sku {
    /// Longest accepted sku.
    pub const MAX_LEN: usize = 64;

    /// # Errors
    /// When `text` is empty, longer than 64 bytes, or has a character outside `a-z0-9-`.
    pub fn parse(text: &str) -> Result<Self, SkuError> {
        if text.is_empty() {
            return Err(SkuError::Empty);
        }
        if text.len() > Self::MAX_LEN {
            return Err(SkuError::TooLong);
        }
        if !text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(SkuError::OutsideAlphabet);
        }
        Ok(Self(text.to_owned()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Sku {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Sku::parse(&text).map_err(|e| serde::de::Error::custom(format!("invalid sku ({e:?})")))
    }
}

/// An ISO 4217 currency code that edgecart accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Currency(&'static str);

/// Active ISO 4217 codes accepted for prices. All have two minor digits or none; amounts are
/// always integer minor units, so the exponent never enters arithmetic.
const CURRENCIES: [&str; 36] = [
    "AUD", "BRL", "CAD", "CHF", "CLP", "CNY", "CZK", "DKK", "EUR", "GBP", "HKD", "HUF", "IDR",
    "ILS", "INR", "ISK", "JPY", "KRW", "MXN", "MYR", "NOK", "NZD", "PHP", "PLN", "RON", "SEK",
    "SGD", "THB", "TRY", "TWD", "UAH", "USD", "VND", "ZAR", "AED", "SAR",
];

impl Currency {
    /// # Errors
    /// `None`-like error when `code` is not an accepted ISO 4217 code (case-sensitive).
    pub fn parse(code: &str) -> Result<Self, UnknownCurrency> {
        CURRENCIES
            .iter()
            .find(|c| **c == code)
            .map(|c| Self(c))
            .ok_or(UnknownCurrency)
    }

    #[must_use]
    pub fn as_str(self) -> &'static str {
        self.0
    }
}

/// A currency code outside the accepted list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownCurrency;

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Currency::parse(&text).map_err(|_| serde::de::Error::custom("unknown currency"))
    }
}

/// A product as stored and as `GET /products/{sku}` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub sku: Sku,
    pub name: String,
    pub description: String,
    /// Price in minor units of `currency` (cents for EUR).
    pub price_minor: i64,
    pub currency: Currency,
    pub stock: i64,
    pub version: i64,
    /// RFC 3339.
    pub updated_at: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skus_keep_to_their_alphabet() {
        assert!(Sku::parse("tea-sencha-100g").is_ok());
        assert_eq!(Sku::parse(""), Err(SkuError::Empty));
        assert_eq!(Sku::parse(&"a".repeat(65)), Err(SkuError::TooLong));
        assert!(Sku::parse(&"a".repeat(64)).is_ok());
        for bad in ["Tea", "tea_1", "tea 1", "tea/1", "../x", "t%20", "é"] {
            assert_eq!(Sku::parse(bad), Err(SkuError::OutsideAlphabet), "{bad}");
        }
    }

    #[test]
    fn currencies_are_known_codes_only() {
        assert_eq!(Currency::parse("EUR").map(Currency::as_str), Ok("EUR"));
        assert!(Currency::parse("eur").is_err());
        assert!(Currency::parse("XXX").is_err());
        assert!(Currency::parse("EURO").is_err());
    }
}
