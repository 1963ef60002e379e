// Helpers for the checkout suites (orders.test.mjs, idempotency.test.mjs): they read like a
// shopper's actions (stock a product, put it in a cart, check out) and an auditor's checks
// (what D1 holds). Not a test file itself.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { ISSUER, devToken, sha256Parts } from './harness.mjs';

/** The user key the worker derives: SHA-256 over the length-prefixed iss and sub, hex. */
export function userKey(sub, iss = ISSUER) {
  return sha256Parts(iss, sub);
}

/** A fresh idempotency key. */
export const newKey = () => randomUUID();

/** Asserts a problem response and returns its body. */
export async function problem(res, status, type) {
  const text = await res.text();
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${text}`);
  assert.equal(res.headers.get('content-type'), 'application/problem+json', text);
  assert.equal(res.headers.get('cache-control'), 'no-store');
  const body = JSON.parse(text);
  assert.equal(body.status, status);
  assert.equal(body.type, type);
  return body;
}

/** A shop on a started worker: products, carts, checkouts and what D1 holds. */
export function shop(w) {
  const tokens = new Map();
  const db = () => w.mf.getD1Database('DB');

  const s = {
    async token(sub) {
      if (!tokens.has(sub)) tokens.set(sub, await devToken(w, { sub }));
      return tokens.get(sub);
    },
    async auth(sub) {
      return { authorization: `Bearer ${await s.token(sub)}` };
    },
    /**
     * Puts a product in the catalogue (or resets it), with a new revision and generation as a
     * merchant's write gives it, so cached pages of an earlier state are not served for it.
     */
    async stock(sku, { price = 1000, stock = 10, currency = 'EUR', name = `Name of ${sku}` } = {}) {
      const d = await db();
      await d.batch([
        d
          .prepare(
            `INSERT INTO products (sku, name, description, price_minor, currency, stock, version, updated_at, revision)
             VALUES (?1, ?2, '', ?3, ?4, ?5, 1, '2026-11-29T08:00:00Z', (SELECT generation + 1 FROM catalogue_meta WHERE id = 1))
             ON CONFLICT (sku) DO UPDATE SET name = ?2, price_minor = ?3, currency = ?4, stock = ?5, revision = excluded.revision`,
          )
          .bind(sku, name, price, currency, stock),
        d.prepare('UPDATE catalogue_meta SET generation = generation + 1 WHERE id = 1'),
      ]);
    },
    async stockOf(sku) {
      const row = await (await db()).prepare('SELECT stock FROM products WHERE sku = ?1').bind(sku).first();
      return row?.stock;
    },
    /** Sets a cart line through the cart API; returns the cart. */
    async add(sub, sku, quantity) {
      const res = await w.fetch(`/cart/items/${sku}`, {
        method: 'PUT',
        headers: { ...(await s.auth(sub)), 'content-type': 'application/json' },
        body: JSON.stringify({ quantity }),
      });
      assert.equal(res.status, 200, `cart write: ${res.status} ${await res.clone().text()}`);
      return res.json();
    },
    async cart(sub) {
      const res = await w.fetch('/cart', { headers: await s.auth(sub) });
      assert.equal(res.status, 200);
      return res.json();
    },
    /** POST /orders. `body` defaults to the cart's current version; `key: null` sends none. */
    async checkout(sub, { key = newKey(), body, headers = {} } = {}) {
      if (body === undefined) body = { cart_version: (await s.cart(sub)).version };
      const h = new Headers({ ...(await s.auth(sub)), 'content-type': 'application/json', ...headers });
      if (key !== null) h.set('idempotency-key', key);
      return w.fetch('/orders', {
        method: 'POST',
        headers: h,
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
    },
    async orders(sub) {
      const q = sub === undefined
        ? (await db()).prepare('SELECT * FROM orders ORDER BY created_at')
        : (await db()).prepare('SELECT * FROM orders WHERE user_key = ?1 ORDER BY created_at').bind(userKey(sub));
      return (await q.all()).results;
    },
    async orderCount(sub) {
      return (await s.orders(sub)).length;
    },
    async lines(orderId) {
      return (
        await (await db())
          .prepare('SELECT sku, quantity, unit_price_minor FROM order_lines WHERE order_id = ?1 ORDER BY position')
          .bind(orderId)
          .all()
      ).results;
    },
  };
  return s;
}

/** Reads a response fully: status, the headers that matter, the body text. */
export async function snapshot(res) {
  return {
    status: res.status,
    contentType: res.headers.get('content-type'),
    cacheControl: res.headers.get('cache-control'),
    location: res.headers.get('location'),
    replayed: res.headers.get('idempotent-replayed'),
    retryAfter: res.headers.get('retry-after'),
    body: await res.text(),
  };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
