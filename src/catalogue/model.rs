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

/// A product as stored. Shoppers see it through [`Product::shopper`] (availability, never the
/// exact stock far from zero); the merchant's write replies through [`Product::merchant`].
/// Not `Serialize` itself, so no response can send the exact stock by accident.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
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

/// The largest stock shown as an exact count ("only N left"); above it a product is
/// `in_stock` and its count is not shown.
pub const LOW_STOCK_MAX: i64 = 5;

/// How a shopper sees a product's stock: a band, so that a cached page changes only when the
/// band (or the count while low) changes, not on every order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    InStock,
    LowStock,
    OutOfStock,
}

impl Availability {
    /// The band of `stock`, and the exact count shown with it (only while low).
    #[must_use]
    pub fn of(stock: i64) -> (Self, Option<i64>) {
        if stock <= 0 {
            (Self::OutOfStock, None)
        } else if stock <= LOW_STOCK_MAX {
            (Self::LowStock, Some(stock))
        } else {
            (Self::InStock, None)
        }
    }
}

/// The part of a stock level a shopper sees, as one number: 0 when out, the count while low,
/// `LOW_STOCK_MAX + 1` for every level above. Two levels look the same to a shopper exactly
/// when this is equal; checkout and cancel compare it in SQL (`min(stock, LOW_STOCK_MAX + 1)`,
/// stock never being negative) to decide whether the product's cached pages change.
#[must_use]
pub fn visible_stock(stock: i64) -> i64 {
    stock.clamp(0, LOW_STOCK_MAX + 1)
}

/// A product as shoppers see it: `GET /products/{sku}` and the listing's items.
#[derive(Debug, Serialize)]
pub struct ShopperView<'a> {
    pub sku: &'a Sku,
    pub name: &'a str,
    pub description: &'a str,
    pub price_minor: i64,
    pub currency: Currency,
    pub availability: Availability,
    /// The exact count, only while `low_stock`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stock_left: Option<i64>,
    pub version: i64,
    pub updated_at: &'a str,
}

/// A product as the merchant's write reply shows it: the shopper's view and the exact stock.
#[derive(Debug, Serialize)]
pub struct MerchantView<'a> {
    #[serde(flatten)]
    pub shopper: ShopperView<'a>,
    pub stock: i64,
}

impl Product {
    #[must_use]
    pub fn shopper(&self) -> ShopperView<'_> {
        let (availability, stock_left) = Availability::of(self.stock);
        ShopperView {
            sku: &self.sku,
            name: &self.name,
            description: &self.description,
            price_minor: self.price_minor,
            currency: self.currency,
            availability,
            stock_left,
            version: self.version,
            updated_at: &self.updated_at,
        }
    }

    #[must_use]
    pub fn merchant(&self) -> MerchantView<'_> {
        MerchantView {
            shopper: self.shopper(),
            stock: self.stock,
        }
    }
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

    fn product(stock: i64) -> Product {
        Product {
            sku: Sku::parse("tea").unwrap(),
            name: "Tea".into(),
            description: String::new(),
            price_minor: 100,
            currency: Currency::parse("EUR").unwrap(),
            stock,
            version: 2,
            updated_at: "2026-11-29T08:00:00Z".into(),
        }
    }

    #[test]
    fn shoppers_see_a_band_and_the_count_only_while_low() {
        let shown = |stock| serde_json::to_value(product(stock).shopper()).unwrap();
        for (stock, band, left) in [
            (0, "out_of_stock", None),
            (1, "low_stock", Some(1)),
            (LOW_STOCK_MAX, "low_stock", Some(LOW_STOCK_MAX)),
            (LOW_STOCK_MAX + 1, "in_stock", None),
            (1_000_000, "in_stock", None),
        ] {
            let v = shown(stock);
            assert_eq!(v["availability"], band, "{stock}");
            assert_eq!(
                v.get("stock_left").and_then(serde_json::Value::as_i64),
                left
            );
            assert!(v.get("stock").is_none(), "{stock}");
        }
        let merchant = serde_json::to_value(product(42).merchant()).unwrap();
        assert_eq!(
            (
                merchant["stock"].as_i64(),
                merchant["availability"].as_str()
            ),
            (Some(42), Some("in_stock"))
        );
    }

    #[test]
    fn the_visible_stock_is_equal_exactly_when_the_shopper_sees_the_same() {
        for a in 0..=20 {
            for b in 0..=20 {
                let seen = |s| serde_json::to_value(product(s).shopper()).unwrap();
                assert_eq!(
                    visible_stock(a) == visible_stock(b),
                    seen(a) == seen(b),
                    "{a} {b}"
                );
            }
        }
    }
}
