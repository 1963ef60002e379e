//! The catalogue's D1 adapter: products, their revisions and the catalogue generation.
//!
//! Role: the only code that speaks SQL about `products` and `catalogue_meta` (checkout and
//! cancel change stock in their own batches, with the statements [`revise_if_visible`] and
//! [`bump_if_revised`] give them). It turns rows into [`Product`]s (parsed again on the way
//! out, so a bad row is a logged 500, never a panic) and every D1 failure into
//! [`ApiError::Unavailable`] (503 + `Retry-After`).
//!
//! Two counters say what a cached page shows. The catalogue generation (`catalogue_meta`,
//! also the listing generation) is bumped by every change a shopper can see of any product;
//! a product's `revision` takes the new generation's value when its own shopper-visible data
//! changes (price, text, version, its stock band or its count while low: see
//! [`crate::catalogue::model::visible_stock`]), so a revision is never reused. Each write is
//! one `batch()`, one transaction: the change, the revision and the bump land together.
//!
//! Consistency: writes run on the primary. The public catalogue's reads ([`find_stored`],
//! [`page_at`]) go through a D1 session, which may be answered by a replica: at least as new
//! as a bookmark when one is known, else any replica ("first-unconstrained"); a read that
//! fails there is tried once more on the primary. The cart, checkout and the merchant's
//! precondition read the primary ([`find`], [`find_many`]).

use serde::Deserialize;
use worker::{D1Database, D1DatabaseSession, D1PreparedStatement, Env};

use super::caching::Bookmark;
use super::model::{Currency, Product, Sku, LOW_STOCK_MAX};
use super::write::ProductInput;
use crate::d1::{Handle, Outcome, Param};
use crate::http::{problem::ApiError, unavailable};
use crate::time::UnixMillis;

/// Columns in the order [`Row`] expects.
const COLUMNS: &str =
    "sku, name, description, price_minor, currency, stock, version, updated_at, revision";

/// The `DB` binding, type-checked as `Env::d1` checks it ([`crate::platform::d1::database`]).
///
/// # Errors
/// 503 when the binding is missing or is not a D1 database.
pub fn database(env: &Env) -> Result<D1Database, ApiError> {
    crate::platform::d1::database(env, "DB").ok_or_else(|| ApiError::Unavailable {
        retry_after: 1,
        what: "d1 binding DB: missing, or not a D1 database".into(),
    })
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
    revision: i64,
}

/// A product as read, with its revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub product: Product,
    pub revision: u64,
}

impl Row {
    fn into_stored(self) -> Result<Stored, ApiError> {
        let revision = u64::try_from(self.revision).unwrap_or(0);
        Ok(Stored {
            product: self.into_product()?,
            revision,
        })
    }

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
async fn json_rows(stmt: D1PreparedStatement, what: &str) -> Result<Vec<Stored>, ApiError> {
    let value = crate::d1::first_column(&stmt, "rows")
        .await
        .map_err(|e| unavailable(what, &e))?;
    // The aggregate always yields one row; `null` only if it ever did not.
    let text = value.text("d1 product rows")?;
    decode_json_rows(text.as_deref().unwrap_or("[]"))
}

/// Parses the JSON text of [`json_select`], in sku order; a row of another shape is a logged
/// 500.
fn decode_json_rows(text: &str) -> Result<Vec<Stored>, ApiError> {
    let rows: Vec<Row> = serde_json::from_str(text)
        .map_err(|e| ApiError::Internal(format!("decode product rows: {e}")))?;
    let mut found = rows
        .into_iter()
        .map(Row::into_stored)
        .collect::<Result<Vec<_>, _>>()?;
    found.sort_by(|a, b| a.product.sku.cmp(&b.product.sku));
    Ok(found)
}

fn products(found: Vec<Stored>) -> Vec<Product> {
    found.into_iter().map(|s| s.product).collect()
}

fn bind(stmt: D1PreparedStatement, values: &[Param]) -> Result<D1PreparedStatement, ApiError> {
    crate::d1::bind(&stmt, values).map_err(|e| unavailable("d1 bind", &e))
}

fn text(s: &str) -> Param {
    Param::text(s)
}

#[allow(clippy::cast_precision_loss)] // every value bound here is validated far below 2^53
fn int(n: i64) -> Param {
    Param::number(n as f64)
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
    Ok(products(json_rows(stmt, "d1 find product").await?)
        .into_iter()
        .next())
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
        let values: Vec<Param> = chunk.iter().map(|s| text(s.as_str())).collect();
        let stmt = bind(db.prepare(&sql), &values)?;
        found.extend(products(json_rows(stmt, "d1 find products").await?));
    }
    Ok(found)
}

/// Where a public catalogue read goes: a D1 session, which may be answered by a replica.
pub struct Reads {
    session: D1DatabaseSession,
}

impl Reads {
    /// A session at least as new as `bookmark`; without one, "first-unconstrained" (any
    /// replica). A bookmark D1 refuses to start a session from is dropped: the session then
    /// starts at the primary.
    #[must_use]
    pub fn at(db: &D1Database, bookmark: Option<&Bookmark>) -> Option<Self> {
        let constraint = bookmark.map_or("first-unconstrained", Bookmark::as_str);
        db.with_session(Some(constraint))
            .or_else(|_| db.with_session(Some("first-primary")))
            .ok()
            .map(|session| Self { session })
    }

    /// A session whose first query goes to the primary.
    #[must_use]
    pub fn primary(db: &D1Database) -> Option<Self> {
        db.with_session(Some("first-primary"))
            .ok()
            .map(|session| Self { session })
    }

    fn prepare(&self, sql: &str) -> D1PreparedStatement {
        self.session.prepare(sql)
    }

    /// The latest bookmark this session saw, when it is one edgecart accepts.
    #[must_use]
    pub fn bookmark(&self) -> Option<Bookmark> {
        self.session
            .get_bookmark()
            .ok()
            .flatten()
            .and_then(|b| Bookmark::parse(&b))
    }
}

/// Where a public catalogue read starts.
#[derive(Debug, Clone, Copy)]
pub enum ReadFrom<'a> {
    /// A replica at least as new as the bookmark, or any replica without one.
    Replica(Option<&'a Bookmark>),
    /// The primary (a refill of a global cache right after a purge must not read a replica
    /// behind the write that purged it).
    Primary,
}

/// Runs `read` in a session from `from` (see [`Reads::at`]), and once more in a session at
/// the primary when a replica's answer fails (a replica that errors, or a bookmark it
/// refuses) or `fresh` says it is older than the caller needs. Returns the answer and the
/// bookmark of the session that gave it.
async fn read_fresh<T, F, Fut>(
    db: &D1Database,
    from: ReadFrom<'_>,
    fresh: impl Fn(&T) -> bool,
    read: F,
) -> Result<(T, Option<Bookmark>), ApiError>
where
    F: Fn(Reads) -> Fut,
    Fut: std::future::Future<Output = Result<(T, Reads), ApiError>>,
{
    let unavailable_session = || ApiError::Unavailable {
        retry_after: 1,
        what: "d1 session could not be started".into(),
    };
    if let ReadFrom::Replica(bookmark) = from {
        if let Some(reads) = Reads::at(db, bookmark) {
            if let Ok((found, reads)) = read(reads).await {
                if fresh(&found) {
                    return Ok((found, reads.bookmark()));
                }
            }
        }
    }
    let reads = Reads::primary(db).ok_or_else(unavailable_session)?;
    let (found, reads) = read(reads).await?;
    Ok((found, reads.bookmark()))
}

/// One product with its revision, read through a session from `from`, never older than
/// `at_least` (a revision a mirror named): a replica behind it is asked again at the primary.
/// `None` when the sku is not in the catalogue.
///
/// # Errors
/// 503 when D1 fails at the primary too; 500 when a stored row does not parse.
pub async fn find_stored(
    db: &D1Database,
    sku: &Sku,
    from: ReadFrom<'_>,
    at_least: u64,
) -> Result<(Option<Stored>, Option<Bookmark>), ApiError> {
    let fresh = |found: &Option<Stored>| {
        found
            .as_ref()
            .is_none_or(|s| super::caching::fresh_enough(s.revision, at_least))
    };
    read_fresh(db, from, fresh, |reads| async move {
        let stmt = bind(
            reads.prepare(&json_select("WHERE sku = ?1")),
            &[text(sku.as_str())],
        )?;
        let found = json_rows(stmt, "d1 find product").await?.into_iter().next();
        Ok((found, reads))
    })
    .await
}

#[derive(Deserialize)]
struct PageRow {
    rows: Option<String>,
    generation: i64,
}

/// A page of the listing as one session read it, with the catalogue generation it was read
/// at (the same statement, so the same snapshot).
pub struct Page {
    pub products: Vec<Product>,
    pub generation: u64,
}

/// Up to `limit` products with a sku greater than `after`, in sku order (the listing's stable
/// order; keyset pagination, so pages never skip or repeat under concurrent writes), read
/// through a session from `from` and never at a generation older than `at_least`.
///
/// # Errors
/// 503 when D1 fails at the primary too; 500 when a stored row does not parse.
pub async fn page_at(
    db: &D1Database,
    after: Option<&Sku>,
    limit: u32,
    from: ReadFrom<'_>,
    at_least: u64,
) -> Result<(Page, Option<Bookmark>), ApiError> {
    let fresh = |page: &Page| super::caching::fresh_enough(page.generation, at_least);
    read_fresh(db, from, fresh, |reads| async move {
        let limit = int(i64::from(limit));
        let (filter, values) = match after {
            Some(after) => (
                "WHERE sku > ?1 ORDER BY sku LIMIT ?2",
                vec![text(after.as_str()), limit],
            ),
            None => ("ORDER BY sku LIMIT ?1", vec![limit]),
        };
        let sql = format!(
            "SELECT ({}) AS rows, (SELECT generation FROM catalogue_meta WHERE id = 1) AS generation",
            json_select(filter)
        );
        let stmt = bind(reads.prepare(&sql), &values)?;
        let row: Option<PageRow> = crate::d1::first(&stmt)
            .await
            .map_err(|e| unavailable("d1 list products", &e))?;
        let row = row.ok_or_else(|| ApiError::Internal("listing returned no row".into()))?;
        let found = decode_json_rows(row.rows.as_deref().unwrap_or("[]"))?;
        let page = Page {
            products: products(found),
            generation: u64::try_from(row.generation).unwrap_or(0),
        };
        Ok((page, reads))
    })
    .await
}

/// Runs statements as one transaction in `session` (a session's `batch`, awaited as
/// `crate::d1` awaits the database's): one D1 result object per statement.
async fn batch_in(
    session: &D1DatabaseSession,
    statements: &[D1PreparedStatement],
) -> Result<Vec<Outcome>, worker::Error> {
    crate::platform::d1::batch(Handle::Session(session), statements).await
}

/// The rows one statement of [`batch_in`] returned, each decoded as `T`.
fn returned<T: serde::de::DeserializeOwned>(result: Option<&Outcome>) -> Result<Vec<T>, ApiError> {
    let Some(result) = result else {
        return Ok(Vec::new());
    };
    result
        .rows()
        .map_err(|e| ApiError::Internal(format!("decode d1 rows: {e}")))
}

#[derive(Deserialize)]
struct GenerationRow {
    generation: i64,
}

fn generation_of(rows: Vec<GenerationRow>) -> Result<u64, ApiError> {
    rows.into_iter()
        .next()
        .and_then(|r| u64::try_from(r.generation).ok())
        .ok_or_else(|| ApiError::Internal("generation bump returned no row".into()))
}

/// The value the next bump gives the generation: the revision of a product changed in the
/// same batch, before the bump statement runs.
const NEXT_GENERATION: &str = "(SELECT generation + 1 FROM catalogue_meta WHERE id = 1)";

/// A bump of the catalogue generation, for the merchant's writes.
fn bump_generation(db: &D1DatabaseSession) -> D1PreparedStatement {
    db.prepare(
        "INSERT INTO catalogue_meta (id, generation) VALUES (1, 2) \
         ON CONFLICT(id) DO UPDATE SET generation = generation + 1 RETURNING generation",
    )
}

/// A bump that runs only when the statement before it in the batch changed a row, so a
/// refused conditional write leaves D1 untouched.
fn bump_generation_if_changed(db: &D1DatabaseSession) -> D1PreparedStatement {
    db.prepare(
        "UPDATE catalogue_meta SET generation = generation + 1 \
         WHERE id = 1 AND changes() > 0 RETURNING generation",
    )
}

/// The SET clause, for a statement that changes `stock` to `new_stock` (an SQL expression
/// over the row's old values), that gives the product the next generation as its revision
/// exactly when a shopper sees the change: its band, or its count while low
/// ([`crate::catalogue::model::visible_stock`], in SQL; `stock` is never negative). Used by
/// checkout (stock down) and cancel (stock back), followed in the batch by
/// [`bump_if_revised`].
#[must_use]
pub fn revise_if_visible(new_stock: &str) -> String {
    let shown = LOW_STOCK_MAX + 1;
    format!(
        "revision = CASE WHEN min(stock, {shown}) <> min({new_stock}, {shown}) \
         THEN {NEXT_GENERATION} ELSE revision END"
    )
}

/// After stock statements using [`revise_if_visible`] on the products `skus_sql` selects (an
/// SQL subquery over the statement's `values`): bumps the generation when one of them took
/// the next generation as its revision, and returns the new generation and those products'
/// skus (a JSON array text). Nothing is returned when nothing visible changed.
///
/// # Errors
/// 503 when a value cannot be bound.
pub fn bump_if_revised(
    db: &D1Database,
    skus_sql: &str,
    values: &[Param],
) -> Result<D1PreparedStatement, ApiError> {
    bind(
        db.prepare(format!(
            "UPDATE catalogue_meta SET generation = generation + 1 \
             WHERE id = 1 AND EXISTS (SELECT 1 FROM products \
               WHERE sku IN ({skus_sql}) AND revision = catalogue_meta.generation + 1) \
             RETURNING generation, (SELECT json_group_array(sku) FROM products \
               WHERE sku IN ({skus_sql}) AND revision = catalogue_meta.generation) AS skus"
        )),
        values,
    )
}

/// What a checkout or cancel changed of what shoppers see: the products whose revision it
/// bumped and the new generation; empty when no band (or low count) moved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revised {
    pub generation: Option<u64>,
    pub skus: Vec<Sku>,
}

#[derive(Deserialize)]
struct RevisedRow {
    generation: i64,
    skus: Option<String>,
}

impl Revised {
    /// Reads the outcome of a [`bump_if_revised`] statement.
    ///
    /// # Errors
    /// 500 when its row does not parse.
    pub fn from_outcome(outcome: Option<&crate::d1::Outcome>) -> Result<Self, ApiError> {
        let rows: Vec<RevisedRow> = match outcome {
            Some(o) => o
                .results()
                .map_err(|e| ApiError::Internal(format!("decode revised products: {e}")))?,
            None => Vec::new(),
        };
        let Some(row) = rows.into_iter().next() else {
            return Ok(Self::default());
        };
        Self::decode(row.generation, row.skus.as_deref().unwrap_or("[]"))
    }

    fn decode(generation: i64, skus: &str) -> Result<Self, ApiError> {
        let skus: Vec<Sku> = serde_json::from_str(skus)
            .map_err(|e| ApiError::Internal(format!("decode revised skus: {e}")))?;
        Ok(Self {
            generation: u64::try_from(generation).ok(),
            skus,
        })
    }
}

/// Whether an upsert created the product or updated it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    Created,
    Updated,
}

/// A committed merchant write: the new generation, and the bookmark of the write (a read
/// from it sees the write, on any replica).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub generation: u64,
    pub bookmark: Option<Bookmark>,
}

fn write_session(db: &D1Database) -> Result<D1DatabaseSession, ApiError> {
    db.with_session(Some("first-primary"))
        .map_err(|e| unavailable("d1 write session", &e))
}

fn bookmark_of(session: &D1DatabaseSession) -> Option<Bookmark> {
    session
        .get_bookmark()
        .ok()
        .flatten()
        .and_then(|b| Bookmark::parse(&b))
}

/// Creates or replaces a product (version 1, or the stored version + 1; `updated_at` = now;
/// revision = the new generation) and bumps the generation, in one transaction. Returns the
/// stored product, and the generation and bookmark of the write. With `expected_version`
/// (from a matching `If-Match`), only a product still at that version is replaced; `None`
/// then means it changed or vanished meanwhile (412).
///
/// # Errors
/// 503 when D1 fails; 500 when the returned row does not parse.
pub async fn upsert(
    db: &D1Database,
    input: &ProductInput,
    now: UnixMillis,
    expected_version: Option<i64>,
) -> Result<Option<(Stored, Upserted, Written)>, ApiError> {
    let session = write_session(db)?;
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
                session.prepare(format!(
                    "INSERT INTO products ({COLUMNS}) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, {NEXT_GENERATION}) \
                     ON CONFLICT(sku) DO UPDATE SET name = excluded.name, \
                     description = excluded.description, price_minor = excluded.price_minor, \
                     currency = excluded.currency, stock = excluded.stock, \
                     version = products.version + 1, updated_at = excluded.updated_at, \
                     revision = excluded.revision \
                     RETURNING {COLUMNS}"
                )),
                &values,
            )?,
            bump_generation(&session),
        ],
        Some(version) => {
            let mut conditional = values.to_vec();
            conditional.push(int(version));
            vec![
                bind(
                    session.prepare(format!(
                        "UPDATE products SET name = ?2, description = ?3, price_minor = ?4, \
                         currency = ?5, stock = ?6, version = version + 1, updated_at = ?7, \
                         revision = {NEXT_GENERATION} \
                         WHERE sku = ?1 AND version = ?8 RETURNING {COLUMNS}"
                    )),
                    &conditional,
                )?,
                bump_generation_if_changed(&session),
            ]
        }
    };
    let results = batch_in(&session, &statements)
        .await
        .map_err(|e| unavailable("d1 upsert product", &e))?;
    let product = returned::<Row>(results.first())?
        .into_iter()
        .next()
        .map(Row::into_stored)
        .transpose()?;
    let Some(product) = product else {
        return match expected_version {
            Some(_) => Ok(None),
            None => Err(ApiError::Internal("upsert returned no row".into())),
        };
    };
    let generation = generation_of(returned(results.get(1))?)?;
    let outcome = if product.product.version == 1 {
        Upserted::Created
    } else {
        Upserted::Updated
    };
    let written = Written {
        generation,
        bookmark: bookmark_of(&session),
    };
    Ok(Some((product, outcome, written)))
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
) -> Result<Option<Written>, ApiError> {
    let session = write_session(db)?;
    // The bump only runs when the delete removed a row, so a 404 leaves D1 untouched.
    let delete = match expected_version {
        None => bind(
            session.prepare("DELETE FROM products WHERE sku = ?1 RETURNING sku"),
            &[text(sku.as_str())],
        )?,
        Some(version) => bind(
            session.prepare("DELETE FROM products WHERE sku = ?1 AND version = ?2 RETURNING sku"),
            &[text(sku.as_str()), int(version)],
        )?,
    };
    let bump = bump_generation_if_changed(&session);
    let results = batch_in(&session, &[delete, bump])
        .await
        .map_err(|e| unavailable("d1 delete product", &e))?;
    let gone: Vec<serde_json::Value> = returned(results.first())?;
    if gone.is_empty() {
        return Ok(None);
    }
    let generation = generation_of(returned(results.get(1))?)?;
    Ok(Some(Written {
        generation,
        bookmark: bookmark_of(&session),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_revision_follows_what_shoppers_see_of_the_stock() {
        let sql = revise_if_visible("stock - ?2");
        assert_eq!(
            sql,
            format!(
                "revision = CASE WHEN min(stock, {0}) <> min(stock - ?2, {0}) \
                 THEN (SELECT generation + 1 FROM catalogue_meta WHERE id = 1) ELSE revision END",
                LOW_STOCK_MAX + 1
            )
        );
    }

    #[test]
    fn revised_products_decode_from_the_bump_and_refuse_other_shapes() {
        let r = Revised::decode(12, r#"["tea-a","tea-b"]"#).unwrap_or_default();
        assert_eq!(r.generation, Some(12));
        assert_eq!(
            r.skus.iter().map(Sku::as_str).collect::<Vec<_>>(),
            ["tea-a", "tea-b"]
        );
        assert!(Revised::decode(12, r#"["BAD SKU"]"#).is_err());
        assert!(Revised::decode(12, "{}").is_err());
    }

    #[test]
    fn json_rows_decode_in_column_order_and_refuse_other_shapes() {
        let text = r#"[["tea-sencha-100g","Sencha, 100 g","A green \"tea\".",1250,"EUR",42,3,"2026-11-29T08:00:00Z",17]]"#;
        let found = decode_json_rows(text).unwrap_or_default();
        assert_eq!(found.first().map(|s| s.revision), Some(17));
        let summary: Vec<_> = found
            .iter()
            .map(|s| &s.product)
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
            r#"[["BAD SKU","n","d",1,"EUR",1,1,"2026-11-29T08:00:00Z",1]]"#,
            r#"[["tea","n","d",1,"XXX",1,1,"2026-11-29T08:00:00Z",1]]"#,
            r#"[["tea","n","d",1.5,"EUR",1,1,"2026-11-29T08:00:00Z",1]]"#,
            r#"[["tea","n","d",1,"EUR",1,1,"2026-11-29T08:00:00Z"]]"#,
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
        assert!(sql.ends_with("FROM (SELECT sku, name, description, price_minor, currency, stock, version, updated_at, revision FROM products WHERE sku = ?1)"));
    }
}
