//! The catalogue's D1 adapter: products and the catalogue generation.
//!
//! Role: the only code that speaks SQL about `products` and `catalogue_meta`. It turns rows
//! into [`Product`]s (parsed again on the way out, so a bad row is a logged 500, never a
//! panic) and every D1 failure into [`ApiError::Unavailable`] (503 + `Retry-After`).
//!
//! Consistency: D1 has one primary. Every statement here goes to it (no read replicas /
//! sessions), so a read after a write in any location sees the write. Each write is one
//! `batch()`, which D1 runs as a single transaction: the product change and the generation
//! bump land together or not at all.
//!
//! Used by the cart and checkout ([`find`], [`find_many`]) to price lines.

use serde::Deserialize;
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, Env};

use super::model::{Currency, Product, Sku};
use super::write::ProductInput;
use crate::http::{problem::ApiError, unavailable};
use crate::time::UnixMillis;

/// Columns in the order [`Row`] expects.
const COLUMNS: &str = "sku, name, description, price_minor, currency, stock, version, updated_at";

#[wasm_bindgen::prelude::wasm_bindgen(inline_js = "
export function d1_binding(env, name) {
  const binding = env[name];
  const type = binding?.constructor?.name;
  return type === 'D1Database' || type === 'BetaDatabase' ? binding : undefined;
}")]
extern "C" {
    /// The binding `name` when it is a D1 database, else `undefined`.
    fn d1_binding(env: &JsValue, name: &str) -> JsValue;
}

/// The `DB` binding, type-checked as `Env::d1` checks it (a binding of another type would
/// otherwise reach workers-rs's `prepare`, which panics on it), in one call into JS: `Env::d1`
/// brings the constructor's name into wasm as a `String` to compare it, on every request.
///
/// # Errors
/// 503 when the binding is missing or is not a D1 database.
pub fn database(env: &Env) -> Result<D1Database, ApiError> {
    use wasm_bindgen::JsCast;
    let binding = d1_binding(env, "DB");
    if binding.is_undefined() {
        return Err(ApiError::Unavailable {
            retry_after: 1,
            what: "d1 binding DB: missing, or not a D1 database".into(),
        });
    }
    Ok(binding.unchecked_into())
}

/// D1 binds at most 100 parameters per statement.
const MAX_PARAMS: usize = 100;

/// A row before parsing: a D1 row object (`RETURNING`), or one `[sku, name, …]` array of a
/// [`json_select`] text, in [`COLUMNS`] order (serde reads a struct from either form).
#[derive(Deserialize)]
struct Row {
    sku: String,
    name: String,
    description: String,
    price_minor: i64,
    currency: String,
    stock: i64,
    version: i64,
    updated_at: String,
}

impl Row {
    fn into_product(self) -> Result<Product, ApiError> {
        let sku = Sku::parse(&self.sku)
            .map_err(|e| ApiError::Internal(format!("stored sku is invalid ({e:?})")))?;
        let currency = Currency::parse(&self.currency)
            .map_err(|_| ApiError::Internal(format!("stored currency of {sku} is unknown")))?;
        Ok(Product {
            sku,
            name: self.name,
            description: self.description,
            price_minor: self.price_minor,
            currency,
            stock: self.stock,
            version: self.version,
            updated_at: self.updated_at,
        })
    }
}

fn rows(result: &crate::d1::Outcome) -> Result<Vec<Product>, ApiError> {
    let rows: Vec<Row> = result
        .results()
        .map_err(|e| ApiError::Internal(format!("decode product rows: {e}")))?;
    rows.into_iter().map(Row::into_product).collect()
}

/// `SELECT` of products whose rows come back as ONE JSON text, `[[sku, name, …], …]` in
/// [`COLUMNS`] order, built by SQLite's `json_group_array`. `filter` is the `WHERE` / `ORDER
/// BY` / `LIMIT` tail over `products`.
///
/// Why: D1 hands rows to JS as objects, and turning those into Rust values crosses the wasm
/// boundary once per column name and value (eight of each per product). One string crosses
/// once and `serde_json` reads it in wasm. Same statement, same rows, same single round trip.
///
/// Size: the text is one SQLite value, and D1 caps a value at 2 MB. The largest page
/// (`listing::MAX_LIMIT` = 100 products with a 200-character name and a 2,000-character
/// description, 4 bytes per character at worst) is about 0.9 MB; raising those limits must
/// keep this under 2 MB.
fn json_select(filter: &str) -> String {
    format!(
        "SELECT json_group_array(json_array({COLUMNS})) AS rows \
         FROM (SELECT {COLUMNS} FROM products {filter})"
    )
}

/// Runs a [`json_select`] statement: the products in sku order (sorted here, so the order
/// never depends on how SQLite feeds the aggregate; skus are lower-case ASCII, so this is the
/// byte order SQLite's `ORDER BY sku` and the listing cursors use).
async fn json_rows(stmt: D1PreparedStatement, what: &str) -> Result<Vec<Product>, ApiError> {
    let value = crate::d1::first_column(&stmt, "rows")
        .await
        .map_err(|e| unavailable(what, &e))?;
    // The aggregate always yields one row; `null` only if it ever did not.
    let text = crate::http::optional_text(&value, "d1 product rows")?;
    let mut found = decode_json_rows(text.as_deref().unwrap_or("[]"))?;
    found.sort_by(|a, b| a.sku.cmp(&b.sku));
    Ok(found)
}

/// Parses the JSON text of [`json_select`]; a row of another shape is a logged 500.
fn decode_json_rows(text: &str) -> Result<Vec<Product>, ApiError> {
    let rows: Vec<Row> = serde_json::from_str(text)
        .map_err(|e| ApiError::Internal(format!("decode product rows: {e}")))?;
    rows.into_iter().map(Row::into_product).collect()
}

fn bind(stmt: D1PreparedStatement, values: &[JsValue]) -> Result<D1PreparedStatement, ApiError> {
    stmt.bind(values).map_err(|e| unavailable("d1 bind", &e))
}

fn text(s: &str) -> JsValue {
    JsValue::from_str(s)
}

#[allow(clippy::cast_precision_loss)] // every value bound here is validated far below 2^53
fn int(n: i64) -> JsValue {
    JsValue::from_f64(n as f64)
}

/// One product, or `None` when the sku is not in the catalogue.
///
/// # Errors
/// 503 when D1 fails; 500 when a stored row does not parse.
pub async fn find(db: &D1Database, sku: &Sku) -> Result<Option<Product>, ApiError> {
    let stmt = bind(
        db.prepare(json_select("WHERE sku = ?1")),
        &[text(sku.as_str())],
    )?;
    Ok(json_rows(stmt, "d1 find product").await?.into_iter().next())
}

/// The products among `skus` that exist, ordered by sku; unknown skus are simply absent.
/// Duplicates are asked for once. One `IN (?1, ?2, …)` query per 100 distinct skus (one
/// query for any realistic cart). On the primary or in a session ([`crate::d1::read`]).
///
/// # Errors
/// 503 when D1 fails; 500 when a stored row does not parse.
pub async fn find_many(
    db: &impl crate::d1::Database,
    skus: &[Sku],
) -> Result<Vec<Product>, ApiError> {
    let mut wanted: Vec<&Sku> = skus.iter().collect();
    wanted.sort();
    wanted.dedup();
    let mut found = Vec::with_capacity(wanted.len());
    for chunk in wanted.chunks(MAX_PARAMS) {
        let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("?{i}")).collect();
        // No ORDER BY: without a LIMIT it would not bind the aggregate's order anyway;
        // `json_rows` sorts.
        let sql = json_select(&format!("WHERE sku IN ({})", placeholders.join(", ")));
        let values: Vec<JsValue> = chunk.iter().map(|s| text(s.as_str())).collect();
        let stmt = bind(db.prepare(&sql), &values)?;
        found.extend(json_rows(stmt, "d1 find products").await?);
    }
    Ok(found)
}

/// Up to `limit` products with a sku greater than `after`, in sku order (the listing's stable
/// order; keyset pagination, so pages never skip or repeat under concurrent writes).
///
/// # Errors
/// 503 when D1 fails; 500 when a stored row does not parse.
pub async fn page(
    db: &D1Database,
    after: Option<&Sku>,
    limit: u32,
) -> Result<Vec<Product>, ApiError> {
    let limit = int(i64::from(limit));
    let stmt = match after {
        Some(after) => bind(
            db.prepare(json_select("WHERE sku > ?1 ORDER BY sku LIMIT ?2")),
            &[text(after.as_str()), limit],
        )?,
        None => bind(db.prepare(json_select("ORDER BY sku LIMIT ?1")), &[limit])?,
    };
    json_rows(stmt, "d1 list products").await
}

#[derive(Deserialize)]
struct GenerationRow {
    generation: i64,
}

/// The catalogue generation: a counter every catalogue write bumps.
///
/// # Errors
/// 503 when D1 fails.
pub async fn generation(db: &D1Database) -> Result<u64, ApiError> {
    let statement = db.prepare("SELECT generation FROM catalogue_meta WHERE id = 1");
    let row: Option<GenerationRow> = crate::d1::first(&statement)
        .await
        .map_err(|e| unavailable("d1 read generation", &e))?;
    Ok(row
        .and_then(|r| u64::try_from(r.generation).ok())
        .unwrap_or(1))
}

/// A statement that bumps the catalogue generation, for callers that change products in
/// their own batch (e.g. checkout's stock decrement), so listings stop being served stale.
pub fn bump_generation_statement(db: &D1Database) -> D1PreparedStatement {
    db.prepare(
        "INSERT INTO catalogue_meta (id, generation) VALUES (1, 2) \
         ON CONFLICT(id) DO UPDATE SET generation = generation + 1 RETURNING generation",
    )
}

fn generation_of(result: &crate::d1::Outcome) -> Result<u64, ApiError> {
    let rows: Vec<GenerationRow> = result
        .results()
        .map_err(|e| ApiError::Internal(format!("decode generation: {e}")))?;
    rows.into_iter()
        .next()
        .and_then(|r| u64::try_from(r.generation).ok())
        .ok_or_else(|| ApiError::Internal("generation bump returned no row".into()))
}

/// Whether an upsert created the product or updated it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    Created,
    Updated,
}

/// A statement that bumps the generation only when the statement before it in the batch
/// changed a row, so a refused conditional write leaves D1 untouched.
fn bump_generation_if_changed(db: &D1Database) -> Result<D1PreparedStatement, ApiError> {
    bind(
        db.prepare(
            "UPDATE catalogue_meta SET generation = generation + 1 \
             WHERE id = 1 AND changes() > 0 RETURNING generation",
        ),
        &[],
    )
}

/// Creates or replaces a product (version 1, or the stored version + 1; `updated_at` = now)
/// and bumps the generation, in one transaction. Returns the stored product and the new
/// generation. With `expected_version` (from a matching `If-Match`), only a product still at
/// that version is replaced; `None` then means it changed or vanished meanwhile (412).
///
/// # Errors
/// 503 when D1 fails; 500 when the returned row does not parse.
pub async fn upsert(
    db: &D1Database,
    input: &ProductInput,
    now: UnixMillis,
    expected_version: Option<i64>,
) -> Result<Option<(Product, Upserted, u64)>, ApiError> {
    let values = [
        text(input.sku.as_str()),
        text(&input.name),
        text(&input.description),
        int(input.price_minor),
        text(input.currency.as_str()),
        int(input.stock),
        text(&now.to_rfc3339()),
    ];
    let statements = match expected_version {
        None => vec![
            bind(
                db.prepare(format!(
                    "INSERT INTO products ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7) \
                     ON CONFLICT(sku) DO UPDATE SET name = excluded.name, \
                     description = excluded.description, price_minor = excluded.price_minor, \
                     currency = excluded.currency, stock = excluded.stock, \
                     version = products.version + 1, updated_at = excluded.updated_at \
                     RETURNING {COLUMNS}"
                )),
                &values,
            )?,
            bump_generation_statement(db),
        ],
        Some(version) => {
            let mut conditional = values.to_vec();
            conditional.push(int(version));
            vec![
                bind(
                    db.prepare(format!(
                        "UPDATE products SET name = ?2, description = ?3, price_minor = ?4, \
                         currency = ?5, stock = ?6, version = version + 1, updated_at = ?7 \
                         WHERE sku = ?1 AND version = ?8 RETURNING {COLUMNS}"
                    )),
                    &conditional,
                )?,
                bump_generation_if_changed(db)?,
            ]
        }
    };
    let results = crate::d1::batch(db, statements)
        .await
        .map_err(|e| unavailable("d1 upsert product", &e))?;
    let mut results = results.into_iter();
    let product = match results.next() {
        Some(r) => rows(&r)?.into_iter().next(),
        None => None,
    };
    let Some(product) = product else {
        return match expected_version {
            Some(_) => Ok(None),
            None => Err(ApiError::Internal("upsert returned no row".into())),
        };
    };
    let generation = match results.next() {
        Some(r) => generation_of(&r)?,
        None => return Err(ApiError::Internal("generation bump missing".into())),
    };
    let outcome = if product.version == 1 {
        Upserted::Created
    } else {
        Upserted::Updated
    };
    Ok(Some((product, outcome, generation)))
}

/// Deletes a product (only at `expected_version`, when given) and bumps the generation in
/// one transaction. `None` when no such product was deleted (nothing changes then, not even
/// the generation).
///
/// # Errors
/// 503 when D1 fails.
pub async fn delete(
    db: &D1Database,
    sku: &Sku,
    expected_version: Option<i64>,
) -> Result<Option<u64>, ApiError> {
    // The bump only runs when the delete removed a row, so a 404 leaves D1 untouched.
    let delete = match expected_version {
        None => bind(
            db.prepare("DELETE FROM products WHERE sku = ?1 RETURNING sku"),
            &[text(sku.as_str())],
        )?,
        Some(version) => bind(
            db.prepare("DELETE FROM products WHERE sku = ?1 AND version = ?2 RETURNING sku"),
            &[text(sku.as_str()), int(version)],
        )?,
    };
    let bump = bump_generation_if_changed(db)?;
    let results = crate::d1::batch(db, vec![delete, bump])
        .await
        .map_err(|e| unavailable("d1 delete product", &e))?;
    let mut results = results.into_iter();
    let deleted = match results.next() {
        Some(r) => {
            let gone: Vec<serde_json::Value> = r
                .results()
                .map_err(|e| ApiError::Internal(format!("decode delete: {e}")))?;
            !gone.is_empty()
        }
        None => false,
    };
    if !deleted {
        return Ok(None);
    }
    match results.next() {
        Some(r) => generation_of(&r).map(Some),
        None => Err(ApiError::Internal("generation bump missing".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_rows_decode_in_column_order_and_refuse_other_shapes() {
        let text = r#"[["tea-sencha-100g","Sencha, 100 g","A green \"tea\".",1250,"EUR",42,3,"2026-11-29T08:00:00Z"]]"#;
        let found = decode_json_rows(text).unwrap_or_default();
        let summary: Vec<_> = found
            .iter()
            .map(|p| {
                (
                    p.sku.as_str(),
                    p.description.as_str(),
                    p.price_minor,
                    p.stock,
                    p.version,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [("tea-sencha-100g", "A green \"tea\".", 1250, 42, 3)]
        );
        assert!(decode_json_rows("[]").is_ok_and(|p| p.is_empty()));
        for bad in [
            "",
            "{}",
            r#"[["tea",1250]]"#,
            r#"[["BAD SKU","n","d",1,"EUR",1,1,"2026-11-29T08:00:00Z"]]"#,
            r#"[["tea","n","d",1,"XXX",1,1,"2026-11-29T08:00:00Z"]]"#,
            r#"[["tea","n","d",1.5,"EUR",1,1,"2026-11-29T08:00:00Z"]]"#,
        ] {
            assert!(
                matches!(decode_json_rows(bad), Err(ApiError::Internal(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn json_select_wraps_the_filter_in_one_aggregate() {
        let sql = json_select("WHERE sku = ?1");
        assert!(sql.starts_with("SELECT json_group_array(json_array(sku, name, description,"));
        assert!(sql.ends_with("FROM (SELECT sku, name, description, price_minor, currency, stock, version, updated_at FROM products WHERE sku = ?1)"));
    }
}
