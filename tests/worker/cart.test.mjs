// Carts at the runtime tier: the built worker in workerd with Miniflare's real KV and D1.
// Round trips, ETag / If-Match, every kind of bad input (with the stored cart checked
// unchanged in KV), isolation between users, the TTL and metadata of every write, and a cart
// that survives a restart.
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ISSUER, devToken, startWorker } from './harness.mjs';
import { userKey } from './checkout-helpers.mjs';

const TTL = 86400; // not the default, so the test proves the configured value is used

/** The KV key of a user's cart: `cart:` + SHA-256 over the length-prefixed iss and sub. */
function cartKey(sub, iss = ISSUER) {
  return `cart:${userKey(sub, iss)}`;
}

async function problem(res, status, type) {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${await res.clone().text()}`);
  assert.equal(res.headers.get('content-type'), 'application/problem+json');
  assert.equal(res.headers.get('cache-control'), 'no-store');
  const body = await res.json();
  assert.equal(body.status, status);
  assert.equal(body.type, type);
  return body;
}

/** Asserts a cart response and returns its body. */
async function cartOf(res, status = 200) {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${await res.clone().text()}`);
  assert.equal(res.headers.get('content-type'), 'application/json');
  assert.equal(res.headers.get('cache-control'), 'private, no-store');
  const body = await res.json();
  assert.equal(res.headers.get('etag'), `"${body.version}"`);
  assert.ok(Number.isInteger(body.version));
  return body;
}

describe('the cart', () => {
  let w;
  let kv;
  const tokens = {};

  const as = (sub) => ({ authorization: `Bearer ${tokens[sub]}` });
  const getCart = (sub, init = {}) => w.fetch('/cart', { ...init, headers: { ...as(sub), ...init.headers } });
  const setItem = (sub, sku, body, headers = {}) =>
    w.fetch(`/cart/items/${sku}`, {
      method: 'PUT',
      headers: { ...as(sub), 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  const removeItem = (sub, sku, headers = {}) =>
    w.fetch(`/cart/items/${sku}`, { method: 'DELETE', headers: { ...as(sub), ...headers } });
  const clearCart = (sub, headers = {}) => w.fetch('/cart', { method: 'DELETE', headers: { ...as(sub), ...headers } });
  const stored = (sub) => kv.get(cartKey(sub));

  async function putProduct(sku, price_minor, currency = 'EUR', name = `Name of ${sku}`) {
    const db = await w.mf.getD1Database('DB');
    await db
      .prepare(
        `INSERT INTO products (sku, name, description, price_minor, currency, stock, version, updated_at)
         VALUES (?1, ?2, '', ?3, ?4, 100, 1, '2026-11-29T08:00:00Z')
         ON CONFLICT (sku) DO UPDATE SET name = ?2, price_minor = ?3, currency = ?4`,
      )
      .bind(sku, name, price_minor, currency)
      .run();
  }

  async function deleteProduct(sku) {
    const db = await w.mf.getD1Database('DB');
    await db.prepare('DELETE FROM products WHERE sku = ?1').bind(sku).run();
  }

  before(async () => {
    w = await startWorker({ vars: { CART_TTL_SECONDS: String(TTL) } });
    kv = await w.mf.getKVNamespace('CARTS');
    for (const sub of ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'gina', 'hank', 'ivan', 'judy', 'kim', 'lee', 'mona', 'nora', 'olga']) {
      tokens[sub] = await devToken(w, { sub });
    }
    await putProduct('tea-sencha-100g', 1250, 'EUR', 'Sencha, 100 g');
    await putProduct('mug', 800);
    await putProduct('dollar-tea', 900, 'USD');
  });

  after(async () => {
    await w?.stop();
  });

  test('every cart route needs a bearer token', async () => {
    for (const [method, path] of [
      ['GET', '/cart'],
      ['DELETE', '/cart'],
      ['PUT', '/cart/items/mug'],
      ['DELETE', '/cart/items/mug'],
    ]) {
      const res = await w.fetch(path, { method, body: method === 'PUT' ? '{"quantity":1}' : undefined });
      await problem(res, 401, '/problems/missing-token');
      assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="edgecart"');
      const bad = await w.fetch(path, {
        method,
        headers: { authorization: 'Bearer not.a.token' },
        body: method === 'PUT' ? '{"quantity":1}' : undefined,
      });
      await problem(bad, 401, '/problems/invalid-token');
    }
  });

  test('a user who never wrote a cart has the empty cart at version 0', async () => {
    const body = await cartOf(await getCart('gina'));
    assert.deepEqual(body, { items: [], subtotal_minor: 0, currency: null, version: 0 });
    assert.equal(await stored('gina'), null, 'reading never writes');
  });

  test('HEAD /cart has the headers of GET and no body', async () => {
    const res = await getCart('gina', { method: 'HEAD' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('etag'), '"0"');
    assert.equal(res.headers.get('cache-control'), 'private, no-store');
    assert.equal(await res.text(), '');
  });

  test('setting, changing and removing lines round-trips with priced totals and versions', async () => {
    let body = await cartOf(await setItem('alice', 'tea-sencha-100g', { quantity: 2 }));
    assert.deepEqual(body, {
      items: [
        {
          sku: 'tea-sencha-100g',
          name: 'Sencha, 100 g',
          unit_price_minor: 1250,
          quantity: 2,
          line_total_minor: 2500,
          available: true,
        },
      ],
      subtotal_minor: 2500,
      currency: 'EUR',
      version: 1,
    });
    body = await cartOf(await setItem('alice', 'mug', { quantity: 3 }));
    assert.equal(body.subtotal_minor, 2500 + 2400);
    assert.equal(body.version, 2);
    assert.deepEqual(await cartOf(await getCart('alice')), body);

    body = await cartOf(await setItem('alice', 'mug', { quantity: 1 }));
    assert.equal(body.subtotal_minor, 3300);
    assert.equal(body.version, 3);

    body = await cartOf(await setItem('alice', 'mug', { quantity: 0 }));
    assert.deepEqual(body.items.map((i) => i.sku), ['tea-sencha-100g']);
    assert.equal(body.version, 4);

    body = await cartOf(await removeItem('alice', 'tea-sencha-100g'));
    assert.deepEqual(body, { items: [], subtotal_minor: 0, currency: null, version: 5 });
  });

  test('text from D1 and KV crosses into the worker unchanged, whatever its characters', async () => {
    // Product names reach the priced cart through D1 (the catalogue rows) and, once the
    // product is gone, from the cart stored in KV: both are read as JS strings and encoded
    // into wasm memory (src/platform/text.rs). Two-, three- and four-byte UTF-8 characters; and a
    // lone surrogate, which is U+FFFD by the time it is read back (SQLite stores UTF-8).
    const name = 'Thé vert « Gyokuro » 玉露, 100 g 🍵';
    await putProduct('tea-gyokuro-100g', 4200, 'EUR', name);
    await putProduct('tea-lone-surrogate', 100, 'EUR', 'half \uD83C pair');
    await cartOf(await setItem('olga', 'tea-gyokuro-100g', { quantity: 2 }));
    const body = await cartOf(await setItem('olga', 'tea-lone-surrogate', { quantity: 1 }));
    const again = await cartOf(await getCart('olga'));
    assert.deepEqual(again, body);
    const byName = Object.fromEntries(again.items.map((i) => [i.sku, i.name]));
    assert.equal(byName['tea-gyokuro-100g'], name);
    assert.equal(byName['tea-lone-surrogate'], 'half \uFFFD pair');
    assert.equal(again.subtotal_minor, 2 * 4200 + 100);
    assert.equal(JSON.parse(await stored('olga')).lines.length, 2);
    // The product vanishes: its line keeps the name stored in the KV cart.
    await deleteProduct('tea-gyokuro-100g');
    const gone = await cartOf(await getCart('olga'));
    const line = gone.items.find((i) => i.sku === 'tea-gyokuro-100g');
    assert.equal(line.available, false);
    assert.equal(line.name, name);
    assert.equal(gone.subtotal_minor, 100);
  });

  test('a write that changes nothing keeps the version and does not write', async () => {
    let body = await cartOf(await setItem('carol', 'mug', { quantity: 2 }));
    assert.equal(body.version, 1);
    const before = await kv.getWithMetadata(cartKey('carol'));
    body = await cartOf(await setItem('carol', 'mug', { quantity: 2 }));
    assert.equal(body.version, 1);
    body = await cartOf(await removeItem('carol', 'tea-sencha-100g'));
    assert.equal(body.version, 1);
    assert.deepEqual(await kv.getWithMetadata(cartKey('carol')), before);
  });

  test('DELETE /cart empties the cart and bumps the version', async () => {
    await cartOf(await setItem('dave', 'mug', { quantity: 1 }));
    await cartOf(await setItem('dave', 'tea-sencha-100g', { quantity: 1 }));
    const body = await cartOf(await clearCart('dave'));
    assert.deepEqual(body, { items: [], subtotal_minor: 0, currency: null, version: 3 });
    assert.deepEqual(await cartOf(await getCart('dave')), body);
    // The emptied cart stays stored: versions never go back to 0.
    assert.equal(JSON.parse(await stored('dave')).version, 3);
  });

  test('every write stores the version and updated_at as metadata and sets the TTL', async () => {
    const startedSeconds = Math.floor(Date.now() / 1000);
    await cartOf(await setItem('erin', 'mug', { quantity: 1 }));
    const { value, metadata } = await kv.getWithMetadata(cartKey('erin'));
    const doc = JSON.parse(value);
    assert.equal(doc.version, 1);
    assert.equal(metadata.version, 1);
    assert.match(metadata.updated_at, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
    assert.equal(metadata.updated_at, doc.updated_at);
    for (const write of [
      () => setItem('erin', 'mug', { quantity: 4 }),
      () => removeItem('erin', 'mug'),
      () => setItem('erin', 'mug', { quantity: 1 }),
      () => clearCart('erin'),
    ]) {
      await cartOf(await write());
      const { keys } = await kv.list({ prefix: cartKey('erin') });
      assert.equal(keys.length, 1);
      const [entry] = keys;
      assert.ok(
        entry.expiration >= startedSeconds + TTL - 5 && entry.expiration <= Math.floor(Date.now() / 1000) + TTL + 5,
        `expiration ${entry.expiration} should be about now + ${TTL}`,
      );
      assert.equal(entry.metadata.version, JSON.parse(await stored('erin')).version);
    }
  });

  test('If-Match with a stale version is refused with 412 and nothing changes', async () => {
    const first = await cartOf(await setItem('frank', 'mug', { quantity: 1 }));
    const second = await cartOf(await setItem('frank', 'mug', { quantity: 2 }, { 'if-match': `"${first.version}"` }));
    assert.equal(second.version, first.version + 1);
    const before = await stored('frank');
    for (const write of [
      () => setItem('frank', 'mug', { quantity: 5 }, { 'if-match': `"${first.version}"` }),
      () => setItem('frank', 'mug', { quantity: 5 }, { 'if-match': `W/"${second.version}"` }),
      () => removeItem('frank', 'mug', { 'if-match': '"0", "99"' }),
      () => clearCart('frank', { 'if-match': `"${first.version}"` }),
    ]) {
      await problem(await write(), 412, '/problems/precondition-failed');
      assert.equal(await stored('frank'), before);
    }
    for (const ifMatch of [`"${second.version}"`, `"0", "${second.version}"`, '*']) {
      const res = await setItem('frank', 'mug', { quantity: 2 }, { 'if-match': ifMatch });
      assert.equal((await cartOf(res)).version, second.version, ifMatch);
    }
    for (const bad of ['2', `"${second.version}`, 'W/', `"${second.version}" x`]) {
      await problem(await setItem('frank', 'mug', { quantity: 3 }, { 'if-match': bad }), 400, '/problems/bad-request');
      assert.equal(await stored('frank'), before);
    }
  });

  test('bad input is a problem and leaves the stored cart unchanged', async () => {
    await cartOf(await setItem('bob', 'mug', { quantity: 2 }));
    const before = await kv.getWithMetadata(cartKey('bob'));
    const cases = [
      ['malformed JSON', 'mug', '{"quantity": ', 400, '/problems/bad-request'],
      ['not JSON at all', 'mug', 'quantity=2', 400, '/problems/bad-request'],
      ['an empty body', 'mug', '', 400, '/problems/bad-request'],
      ['a missing quantity', 'mug', '{}', 422, '/problems/invalid-value'],
      ['an array body', 'mug', '[{"quantity":1}]', 422, '/problems/invalid-value'],
      ['a string quantity', 'mug', '{"quantity":"2"}', 422, '/problems/invalid-value'],
      ['a null quantity', 'mug', '{"quantity":null}', 422, '/problems/invalid-value'],
      ['a boolean quantity', 'mug', '{"quantity":true}', 422, '/problems/invalid-value'],
      ['a negative quantity', 'mug', '{"quantity":-1}', 422, '/problems/invalid-value'],
      ['a fractional quantity', 'mug', '{"quantity":1.5}', 422, '/problems/invalid-value'],
      ['a quantity of 100', 'mug', '{"quantity":100}', 422, '/problems/invalid-value'],
      ['a huge quantity', 'mug', '{"quantity":99999999999999999999999}', 422, '/problems/invalid-value'],
      ['an unknown sku', 'no-such-thing', '{"quantity":1}', 422, '/problems/invalid-value'],
      ['a second currency', 'dollar-tea', '{"quantity":1}', 422, '/problems/invalid-value'],
      ['an upper-case sku', 'MUG', '{"quantity":1}', 400, '/problems/bad-request'],
      ['an escaped sku', 'mug%20x', '{"quantity":1}', 400, '/problems/bad-request'],
      ['a sku with a dot', 'mug.x', '{"quantity":1}', 400, '/problems/bad-request'],
      ['a sku of 65 characters', 'a'.repeat(65), '{"quantity":1}', 400, '/problems/bad-request'],
      ['a body over 16 KiB', 'mug', JSON.stringify({ quantity: 1, pad: 'x'.repeat(17 * 1024) }), 413, '/problems/payload-too-large'],
    ];
    for (const [what, sku, body, status, type] of cases) {
      const res = await setItem('bob', sku, body);
      await problem(res, status, type).catch((e) => {
        throw new Error(`${what}: ${e.message}`);
      });
      assert.deepEqual(await kv.getWithMetadata(cartKey('bob')), before, what);
    }
    await problem(await removeItem('bob', 'Not_A_Sku'), 400, '/problems/bad-request');
    assert.deepEqual(await kv.getWithMetadata(cartKey('bob')), before);
  });

  test('a client that goes away in the middle of its upload leaves no cart written and nothing held', async () => {
    const inFlight = async () => (await w.fetch('/dev/runtime')).json();
    const sockets = [];
    for (let i = 0; i < 3; i++) {
      const socket = connect(w.port, '127.0.0.1');
      socket.on('error', () => {});
      await new Promise((r) => socket.on('connect', r));
      // Headers and 7 of the 100 body bytes announced, then nothing more.
      socket.write(
        `PUT /cart/items/mug HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${tokens.nora}\r\n` +
          'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"quant',
      );
      sockets.push(socket);
    }
    // The three requests are waiting on their bodies (and the probe is the fourth).
    let held;
    for (const t = Date.now(); Date.now() - t < 10_000; ) {
      held = await inFlight();
      if (held.requests === 4) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual(held, { requests: 4, promises: 3 });
    for (const socket of sockets) socket.destroy();
    // They are let go of when their unsettled promises are garbage-collected. That has come
    // within a second in every run so far; the deadline is for a loaded machine.
    for (const t = Date.now(); Date.now() - t < 10_000; ) {
      held = await inFlight();
      if (held.requests === 1) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual(held, { requests: 1, promises: 0 }, 'the abandoned uploads are let go of');
    assert.equal(await stored('nora'), null, 'nothing was written');
  });

  test('a cart holds at most 50 lines', async () => {
    const skus = Array.from({ length: 51 }, (_, i) => `bulk-${String(i).padStart(2, '0')}`);
    for (const sku of skus) await putProduct(sku, 1);
    let body;
    for (const sku of skus.slice(0, 50)) body = await cartOf(await setItem('hank', sku, { quantity: 1 }));
    assert.equal(body.items.length, 50);
    assert.equal(body.subtotal_minor, 50);
    const before = await stored('hank');
    await problem(await setItem('hank', skus[50], { quantity: 1 }), 422, '/problems/invalid-value');
    assert.equal(await stored('hank'), before);
    // An existing line can still change.
    body = await cartOf(await setItem('hank', skus[0], { quantity: 99 }));
    assert.equal(body.subtotal_minor, 49 + 99);
  });

  test('a line whose product vanished stays, unavailable and outside the subtotal', async () => {
    await putProduct('limited-edition', 5000, 'EUR', 'Limited edition');
    await cartOf(await setItem('ivan', 'limited-edition', { quantity: 1 }));
    await cartOf(await setItem('ivan', 'mug', { quantity: 1 }));
    await deleteProduct('limited-edition');
    const body = await cartOf(await getCart('ivan'));
    assert.deepEqual(body.items[0], {
      sku: 'limited-edition',
      name: 'Limited edition',
      unit_price_minor: null,
      quantity: 1,
      line_total_minor: null,
      available: false,
    });
    assert.equal(body.items[1].available, true);
    assert.equal(body.subtotal_minor, 800);
    assert.equal(body.currency, 'EUR');
    // It can be removed although the catalogue no longer knows it.
    const removed = await cartOf(await removeItem('ivan', 'limited-edition'));
    assert.deepEqual(removed.items.map((i) => i.sku), ['mug']);
  });

  test('prices come from the catalogue at read time', async () => {
    await putProduct('price-moves', 100);
    await cartOf(await setItem('judy', 'price-moves', { quantity: 3 }));
    await putProduct('price-moves', 150);
    const body = await cartOf(await getCart('judy'));
    assert.equal(body.items[0].unit_price_minor, 150);
    assert.equal(body.subtotal_minor, 450);
    const doc = JSON.parse(await stored('judy'));
    assert.deepEqual(Object.keys(doc.lines[0]).sort(), ['name', 'quantity', 'sku'], 'no price is stored in the cart');
  });

  test('one user can never read or change another user’s cart', async () => {
    await cartOf(await setItem('kim', 'mug', { quantity: 7 }));
    const kimBefore = await kv.getWithMetadata(cartKey('kim'));
    // Lee, whatever he sends, sees and changes only his own cart.
    const attempts = [
      () => getCart('lee'),
      () => getCart('lee', { headers: { 'x-user': 'kim', cookie: 'sub=kim' } }),
      () => w.fetch('/cart?sub=kim&user=kim', { headers: as('lee') }),
      () => removeItem('lee', 'mug'),
      () => clearCart('lee', { 'if-match': '*' }),
    ];
    for (const attempt of attempts) {
      const body = await cartOf(await attempt());
      assert.ok(!body.items.some((i) => i.quantity === 7), 'never Kim’s line');
    }
    // A body naming another user is not a cart line body at all (its only member is `quantity`).
    const named = await setItem('lee', 'mug', { quantity: 1, sub: 'kim', user_key: cartKey('kim') });
    assert.equal(named.status, 422);
    assert.equal((await named.json()).type, '/problems/invalid-value');
    // Lee's own write lands in Lee's cart only.
    const lee = await cartOf(await setItem('lee', 'mug', { quantity: 1 }));
    assert.equal(lee.items[0].quantity, 1);
    assert.deepEqual(await kv.getWithMetadata(cartKey('kim')), kimBefore);
    assert.equal((await cartOf(await getCart('kim'))).items[0].quantity, 7);
    const { keys } = await kv.list({ prefix: 'cart:' });
    for (const { name } of keys) {
      assert.match(name, /^cart:[0-9a-f]{64}$/, 'keys carry no sub');
    }
    assert.ok(keys.some((k) => k.name === cartKey('lee')));
  });

  test('a long non-ASCII sub still gets its own cart under a fixed-length key', async () => {
    const sub = 'ž'.repeat(255); // 510 bytes: with the issuer, too long for a raw KV key
    tokens[sub] = await devToken(w, { sub });
    await cartOf(await setItem(sub, 'mug', { quantity: 1 }));
    assert.ok(await stored(sub));
    assert.equal(cartKey(sub).length, 69);
  });

  test('a cart survives a restart of the runtime', async () => {
    const before = await cartOf(await setItem('mona', 'tea-sencha-100g', { quantity: 4 }));
    await w.restart();
    kv = await w.mf.getKVNamespace('CARTS');
    const afterRestart = await cartOf(await getCart('mona'));
    assert.deepEqual(afterRestart, before);
  });
});

describe('the cart when D1 fails', () => {
  // No migrations: the products table does not exist, so every catalogue query is refused by
  // D1. The refusal reaches the worker as a rejected promise (runtime::settled's error path).
  let w;
  before(async () => {
    w = await startWorker({ migrations: false });
  });
  after(async () => {
    await w?.stop();
  });

  test('a refused catalogue query is a 503 problem with Retry-After, logged, and no cart is written', async () => {
    const token = await devToken(w, { sub: 'dora' });
    const res = await w.fetch('/cart/items/tea-sencha', {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ quantity: 1 }),
    });
    const body = await problem(res, 503, '/problems/unavailable');
    assert.equal(res.headers.get('retry-after'), '1');
    assert.ok(!JSON.stringify(body).includes('no such table'), 'storage detail stays out of the body');
    const line = await w.logLine((l) => l.includes(res.headers.get('x-request-id')));
    assert.ok(line.includes('"status":503') && line.includes('d1'), w.logs.join('\n'));
    const kv = await w.mf.getKVNamespace('CARTS');
    assert.equal((await kv.list()).keys.length, 0);
    // The worker keeps answering: the next request is served normally.
    const cart = await w.fetch('/cart', { headers: { authorization: `Bearer ${token}` } });
    assert.equal(cart.status, 200);
  });
});
