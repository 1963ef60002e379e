// The catalogue at the runtime tier: the built worker in workerd with Miniflare's real D1 and
// Cache API. Edge-cache misses and hits (`Cache-Status`), conditional requests (304), HEAD,
// invalidation by writes (item and listings), bearer-token reads sharing the public entry,
// pagination over the whole seed, and every kind of bad input with D1 checked unchanged.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { devToken, startWorker, steadyHit } from './harness.mjs';

const HIT = 'edgecart; hit';
const STORED = 'edgecart; fwd=uri-miss; stored';
const CACHE_CONTROL = 'public, max-age=60, s-maxage=300, stale-while-revalidate=60';

async function problem(res, status, type) {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${await res.clone().text()}`);
  assert.equal(res.headers.get('content-type'), 'application/problem+json');
  const body = await res.json();
  assert.equal(body.status, status);
  assert.equal(body.type, type);
  return body;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The shopper's view of a merchant's write reply: the same without the exact `stock`. */
const shopperView = ({ stock, ...shown }) => shown;

/**
 * Two `Date` headers of one cached entry. They are equal unless a later store of the same
 * representation (another miss's, through waitUntil) landed in between: Miniflare's cache
 * dates an entry at its store, so that one may be a second or two later.
 */
function sameEntryDate(a, b, what) {
  assert.ok(a?.endsWith(' GMT') && b?.endsWith(' GMT'), `${what}: ${a} / ${b}`);
  assert.ok(Math.abs(Date.parse(a) - Date.parse(b)) <= 5000, `${what}: ${a} / ${b}`);
}

describe('the catalogue', () => {
  let w;
  let db;
  let writer;
  let reader;

  async function snapshot() {
    const products = await db.prepare('SELECT * FROM products ORDER BY sku').all();
    const meta = await db.prepare('SELECT generation FROM catalogue_meta').first();
    return { rows: products.results, generation: meta.generation };
  }

  function put(sku, body, token = writer, extra = {}) {
    return w.fetch(`/products/${sku}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...extra },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  }

  before(async () => {
    w = await startWorker();
    db = await w.mf.getD1Database('DB');
    writer = await devToken(w, { sub: 'admin', scope: 'catalog:write' });
    reader = await devToken(w, { sub: 'alice' });
  });
  after(async () => {
    await w?.stop();
  });

  test('the seed holds about fifty valid products', async () => {
    const { rows } = await snapshot();
    assert.ok(rows.length >= 45 && rows.length <= 60, `${rows.length}`);
    for (const r of rows) {
      assert.match(r.sku, /^[a-z0-9-]{1,64}$/);
      assert.equal(r.currency, 'EUR');
      assert.ok(Number.isInteger(r.price_minor) && r.price_minor > 0);
    }
  });

  test('a product is a miss first, then a hit with the same body and headers', async () => {
    const first = await w.fetch('/products/tea-sencha-100g');
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('cache-status'), STORED);
    assert.equal(first.headers.get('content-type'), 'application/json');
    assert.equal(first.headers.get('cache-control'), CACHE_CONTROL);
    assert.match(first.headers.get('etag'), /^"[0-9a-f]{32}"$/);
    assert.ok(first.headers.get('last-modified').endsWith(' GMT'));
    assert.ok(first.headers.get('date').endsWith(' GMT'));
    assert.equal(first.headers.get('age'), null, 'a miss is generated for this request: no Age');
    const body = await first.json();
    // Shoppers see a band, never the exact stock (42 here, so no `stock_left` either).
    assert.deepEqual(Object.keys(body).sort(), [
      'availability', 'currency', 'description', 'name', 'price_minor', 'sku', 'updated_at', 'version',
    ]);
    assert.equal(body.availability, 'in_stock');
    assert.equal(body.sku, 'tea-sencha-100g');
    assert.equal(body.currency, 'EUR');
    assert.match(body.updated_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    // The hit replays one of the misses before it: the first one, or a later miss if the first
    // one's store (after its response, through waitUntil) had not landed yet. Stores of two
    // misses can land in either order, so the hit is compared with every miss seen. Its `Date`
    // is the stored one, which Miniflare's cache sets to the moment of the store: no earlier
    // than the first miss, no later than now.
    const NAMES = ['content-type', 'cache-control', 'etag', 'last-modified'];
    const seen = (res, b) => ({ headers: Object.fromEntries(NAMES.map((h) => [h, res.headers.get(h)])), body: b });
    const misses = [seen(first, body)];
    let hit;
    for (let i = 0; i < 50 && !hit; i++) {
      const res = await w.fetch('/products/tea-sencha-100g');
      if (res.headers.get('cache-status') === HIT) hit = res;
      else {
        misses.push(seen(res, await res.json()));
        await sleep(20);
      }
    }
    assert.ok(hit, 'never became a hit');
    assert.equal(hit.status, 200);
    const replayed = seen(hit, await hit.json());
    assert.ok(
      misses.some((m) => JSON.stringify(m) === JSON.stringify(replayed)),
      `the hit ${JSON.stringify(replayed.headers)} matches none of the ${misses.length} misses`,
    );
    for (const m of misses) assert.deepEqual(m.body, body);
    const date = Date.parse(hit.headers.get('date'));
    assert.ok(
      date >= Date.parse(first.headers.get('date')) && date <= Date.now(),
      `the hit's Date ${hit.headers.get('date')} is outside the misses' time`,
    );
    // A hit is a stored answer: its Age is the whole seconds since that Date (RFC 9111 §4).
    const age = hit.headers.get('age');
    assert.match(age ?? '', /^\d+$/);
    assert.ok(Number(age) <= Math.ceil((Date.now() - date) / 1000) + 1, `Age ${age} for Date ${hit.headers.get('date')}`);
  });

  test('a hit’s Age grows with the time since the stored Date', async () => {
    const path = '/products/tea-genmaicha-100g';
    await (await steadyHit(w, path)).arrayBuffer();
    // The entry was stored before the steady hit: 2.1 s later it is at least 2 s old. (At
    // least 1 is asserted: a late store of an earlier miss may re-date the entry a little.)
    await sleep(2100);
    const later = await w.fetch(path);
    assert.equal(later.headers.get('cache-status'), HIT);
    await later.arrayBuffer();
    const age = Number(later.headers.get('age'));
    const sinceDate = (Date.now() - Date.parse(later.headers.get('date'))) / 1000;
    assert.ok(age >= 1 && age <= Math.ceil(sinceDate), `Age ${age}, ${sinceDate} s since Date`);
  });

  test('a hit performs no D1 query', async () => {
    await steadyHit(w, '/products/tea-assam-tgfop-100g');
    // Change D1 behind the worker's back, without a generation bump: a hit cannot see it.
    await db.prepare("UPDATE products SET name = 'changed behind the cache' WHERE sku = 'tea-assam-tgfop-100g'").run();
    const res = await w.fetch('/products/tea-assam-tgfop-100g');
    assert.equal(res.headers.get('cache-status'), HIT);
    assert.notEqual((await res.json()).name, 'changed behind the cache');
    await db.prepare("UPDATE products SET name = 'Assam TGFOP, 100 g' WHERE sku = 'tea-assam-tgfop-100g'").run();
  });

  test('a matching If-None-Match gets 304 in every form, a stale one 200', async () => {
    const ok = await steadyHit(w, '/products/tea-earl-grey-100g');
    const etag = ok.headers.get('etag');
    await ok.arrayBuffer();
    for (const inm of [etag, `W/${etag}`, `"nope", ${etag}`, `W/"nope",W/${etag}`, '*']) {
      const res = await w.fetch('/products/tea-earl-grey-100g', { headers: { 'if-none-match': inm } });
      assert.equal(res.status, 304, inm);
      assert.equal(await res.text(), '');
      assert.equal(res.headers.get('etag'), etag);
      assert.equal(res.headers.get('cache-control'), CACHE_CONTROL);
      assert.equal(res.headers.get('last-modified'), null, 'a 304 with an ETag repeats no Last-Modified');
      sameEntryDate(res.headers.get('date'), ok.headers.get('date'), `304 for ${inm}`);
      assert.match(res.headers.get('age') ?? '', /^\d+$/, 'a 304 from storage says its age');
      assert.equal(res.headers.get('cache-status'), HIT);
    }
    const stale = await w.fetch('/products/tea-earl-grey-100g', { headers: { 'if-none-match': '"0000", W/"1111"' } });
    assert.equal(stale.status, 200);
    assert.equal((await stale.json()).sku, 'tea-earl-grey-100g');
  });

  test('If-Modified-Since answers 304 only without If-None-Match', async () => {
    const ok = await steadyHit(w, '/products/tea-keemun-100g');
    await ok.arrayBuffer();
    const lm = ok.headers.get('last-modified');
    const ims = await w.fetch('/products/tea-keemun-100g', { headers: { 'if-modified-since': lm } });
    assert.equal(ims.status, 304);
    const both = await w.fetch('/products/tea-keemun-100g', {
      headers: { 'if-modified-since': lm, 'if-none-match': '"other"' },
    });
    assert.equal(both.status, 200);
    const old = await w.fetch('/products/tea-keemun-100g', {
      headers: { 'if-modified-since': 'Sun, 06 Nov 1994 08:49:37 GMT' },
    });
    assert.equal(old.status, 200);
    const junk = await w.fetch('/products/tea-keemun-100g', { headers: { 'if-modified-since': 'yesterday' } });
    assert.equal(junk.status, 200);
  });

  test('a listing answers 304 to its own ETag', async () => {
    const ok = await steadyHit(w, '/products?limit=3');
    await ok.arrayBuffer();
    const res = await w.fetch('/products?limit=3', { headers: { 'if-none-match': ok.headers.get('etag') } });
    assert.equal(res.status, 304);
  });

  test('HEAD has no body and the headers of GET', async () => {
    for (const path of ['/products/tea-chamomile-50g', '/products?limit=5']) {
      const get = await steadyHit(w, path);
      const getBody = await get.arrayBuffer();
      assert.ok(getBody.byteLength > 0);
      const head = await w.fetch(path, { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal((await head.arrayBuffer()).byteLength, 0);
      for (const h of ['content-type', 'cache-control', 'etag', 'last-modified', 'cache-status']) {
        assert.equal(head.headers.get(h), get.headers.get(h), `${path} ${h}`);
      }
      sameEntryDate(head.headers.get('date'), get.headers.get('date'), `${path} HEAD`);
      const len = head.headers.get('content-length');
      if (len !== null) assert.equal(Number(len), getBody.byteLength);
    }
  });

  test('HEADs and 304s of a hit (their cached body cancelled, not read) leave the entry whole', async () => {
    const path = '/products/tea-lapsang-souchong-100g';
    const get = await steadyHit(w, path);
    const body = await get.text();
    const etag = get.headers.get('etag');
    for (let i = 0; i < 30; i++) {
      const head = await w.fetch(path, { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('cache-status'), HIT);
      assert.equal(await head.text(), '');
      const cond = await w.fetch(path, { headers: { 'if-none-match': etag } });
      assert.equal(cond.status, 304);
      assert.equal(cond.headers.get('cache-status'), HIT);
      assert.equal(await cond.text(), '');
    }
    const again = await w.fetch(path);
    assert.equal(again.headers.get('cache-status'), HIT);
    assert.equal(await again.text(), body);
  });

  test('a HEAD miss answers like a GET miss', async () => {
    const head = await w.fetch('/products/tea-peppermint-50g', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('cache-status'), STORED);
    assert.equal((await head.arrayBuffer()).byteLength, 0);
    const get = await steadyHit(w, '/products/tea-peppermint-50g');
    assert.equal(get.headers.get('etag'), head.headers.get('etag'));
  });

  test('bearer-token requests share the public entry', async () => {
    const anon = await steadyHit(w, '/products/coffee-kenya-aa-250g');
    const body = await anon.text();
    for (const authorization of [`Bearer ${reader}`, `Bearer ${writer}`, 'Bearer not-even-a-token']) {
      const res = await w.fetch('/products/coffee-kenya-aa-250g', { headers: { authorization } });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('cache-status'), HIT);
      assert.equal(res.headers.get('cache-control'), CACHE_CONTROL);
      assert.equal(res.headers.get('etag'), anon.headers.get('etag'));
      assert.equal(await res.text(), body);
    }
    const list = await steadyHit(w, '/products?limit=4');
    await list.arrayBuffer();
    const withToken = await w.fetch('/products?limit=4', { headers: { authorization: `Bearer ${reader}` } });
    assert.equal(withToken.headers.get('cache-status'), HIT);
  });

  test('equivalent listing queries share one entry', async () => {
    await (await steadyHit(w, '/products?limit=20')).arrayBuffer();
    for (const q of ['', '?utm_source=x', '?limit=020']) {
      const res = await w.fetch(`/products${q}`);
      assert.equal(res.headers.get('cache-status'), HIT, q);
      await res.arrayBuffer();
    }
  });

  test('pagination walks every product exactly once, in sku order', async () => {
    const { rows } = await snapshot();
    const seen = [];
    let cursor = null;
    for (let pages = 0; pages < 100; pages++) {
      const res = await w.fetch(`/products?limit=7${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(res.status, 200);
      const body = await res.json();
      assert.deepEqual(Object.keys(body).sort(), ['items', 'next_cursor']);
      assert.ok(body.items.length <= 7);
      seen.push(...body.items.map((p) => p.sku));
      cursor = body.next_cursor;
      if (cursor === null) break;
      assert.match(cursor, /^[A-Za-z0-9_-]+$/);
    }
    assert.deepEqual(seen, rows.map((r) => r.sku));
    const first = await (await w.fetch('/products')).json();
    assert.equal(first.items.length, 20);
    const all = await (await w.fetch('/products?limit=100')).json();
    assert.equal(all.items.length, rows.length);
    assert.equal(all.next_cursor, null);
  });

  test('an update makes the next read of the item and its listings a miss with new content', async () => {
    const sku = 'coffee-brazil-cerrado-250g';
    const warm = await steadyHit(w, `/products/${sku}`);
    const oldEtag = warm.headers.get('etag');
    const before = await warm.json();
    await (await steadyHit(w, '/products?limit=100')).arrayBuffer();
    await (await steadyHit(w, '/products?limit=5')).arrayBuffer();
    const res = await put(sku, { ...before, stock: 64, name: 'Brazil Cerrado, new crop, 250 g', price_minor: 1050 });
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(res.headers.get('content-type'), 'application/json');
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const updated = await res.json();
    assert.equal(updated.version, before.version + 1);
    assert.equal(updated.price_minor, 1050);
    assert.equal(updated.stock, 64, 'the merchant\'s reply has the exact stock');
    assert.notEqual(updated.updated_at, undefined);

    const item = await w.fetch(`/products/${sku}`);
    assert.equal(item.headers.get('cache-status'), STORED);
    assert.deepEqual(await item.json(), shopperView(updated));
    assert.equal(item.headers.get('etag'), res.headers.get('etag'));
    const list = await w.fetch('/products?limit=100');
    assert.equal(list.headers.get('cache-status'), STORED);
    const listed = (await list.json()).items.find((p) => p.sku === sku);
    assert.deepEqual(listed, shopperView(updated));
    const page = await w.fetch('/products?limit=5');
    assert.equal(page.headers.get('cache-status'), STORED);
    await page.arrayBuffer();
    // The client's old copy is stale now; the new one is current.
    const old = await w.fetch(`/products/${sku}`, { headers: { 'if-none-match': oldEtag } });
    assert.equal(old.status, 200);
    await old.arrayBuffer();
    const cond = await w.fetch(`/products/${sku}`, { headers: { 'if-none-match': item.headers.get('etag') } });
    assert.equal(cond.status, 304);
  });

  test('a write after the page was evicted here is still seen by the next read here', async () => {
    const sku = 'coffee-kenya-aa-250g';
    const warm = await (await steadyHit(w, `/products/${sku}`)).json();
    const caches = await w.mf.getCaches();
    assert.equal(await caches.default.delete(`${w.url}/.edgecart-cache/products/${sku}`), true);
    const res = await put(sku, { ...warm, stock: 27 });
    assert.equal(res.status, 200);
    const written = await res.json();
    await sleep(100); // let any deferred cache store finish
    const item = await w.fetch(`/products/${sku}`);
    assert.equal(item.headers.get('cache-status'), STORED);
    assert.deepEqual(await item.json(), shopperView(written));
  });

  test('a product is created, listed, deleted and gone', async () => {
    const sku = 'tea-new-harvest-50g';
    const miss = await w.fetch(`/products/${sku}`);
    await problem(miss, 404, '/problems/not-found');
    await (await steadyHit(w, '/products?limit=100')).arrayBuffer();
    const created = await put(sku, {
      sku, name: 'New harvest, 50 g', description: 'First flush.', price_minor: 990, currency: 'EUR', stock: 5,
      version: 77, updated_at: '1999-01-01T00:00:00Z',
    });
    assert.equal(created.status, 201, await created.clone().text());
    assert.equal(created.headers.get('location'), `/products/${sku}`);
    const product = await created.json();
    assert.equal(product.version, 1);
    assert.notEqual(product.updated_at, '1999-01-01T00:00:00Z');
    const listed = await w.fetch('/products?limit=100');
    assert.equal(listed.headers.get('cache-status'), STORED);
    assert.ok((await listed.json()).items.some((p) => p.sku === sku));
    const got = await steadyHit(w, `/products/${sku}`);
    assert.deepEqual(await got.json(), shopperView(product));

    const del = await w.fetch(`/products/${sku}`, { method: 'DELETE', headers: { authorization: `Bearer ${writer}` } });
    assert.equal(del.status, 204);
    assert.equal(await del.text(), '');
    await problem(await w.fetch(`/products/${sku}`), 404, '/problems/not-found');
    const after = await w.fetch('/products?limit=100');
    assert.equal(after.headers.get('cache-status'), STORED);
    assert.ok(!(await after.json()).items.some((p) => p.sku === sku));
    const row = await db.prepare('SELECT * FROM products WHERE sku = ?1').bind(sku).first();
    assert.equal(row, null);
  });

  test('a write with a stale If-Match is 412 and changes nothing; a current one succeeds', async () => {
    const sku = 'tea-if-match-25g';
    const body = { name: 'If-Match tea, 25 g', description: '', price_minor: 500, currency: 'EUR', stock: 3 };
    await problem(await put(sku, body, writer, { 'if-match': '*' }), 412, '/problems/precondition-failed');
    const created = await put(sku, body);
    assert.equal(created.status, 201);
    const etag = created.headers.get('etag');
    const read = await w.fetch(`/products/${sku}`);
    assert.equal(read.headers.get('etag'), etag, 'the write answers with the ETag a GET sends');
    await read.arrayBuffer();

    const before = await snapshot();
    for (const stale of ['"0000"', `W/${etag}`, '"a", "b"']) {
      await problem(await put(sku, { ...body, stock: 9 }, writer, { 'if-match': stale }), 412, '/problems/precondition-failed');
      const del = await w.fetch(`/products/${sku}`, { method: 'DELETE', headers: { authorization: `Bearer ${writer}`, 'if-match': stale } });
      await problem(del, 412, '/problems/precondition-failed');
    }
    await problem(await put(sku, body, writer, { 'if-match': 'not-a-tag' }), 400, '/problems/bad-request');
    assert.deepEqual(await snapshot(), before);

    const updated = await put(sku, { ...body, stock: 9 }, writer, { 'if-match': `"0000", ${etag}` });
    assert.equal(updated.status, 200);
    assert.equal((await updated.json()).version, 2);
    await problem(await put(sku, body, writer, { 'if-match': etag }), 412, '/problems/precondition-failed');
    const current = updated.headers.get('etag');
    const del = await w.fetch(`/products/${sku}`, { method: 'DELETE', headers: { authorization: `Bearer ${writer}`, 'if-match': current } });
    assert.equal(del.status, 204);
    await problem(await w.fetch(`/products/${sku}`, { method: 'DELETE', headers: { authorization: `Bearer ${writer}`, 'if-match': '*' } }), 412, '/problems/precondition-failed');
  });

  test('deleting an absent product is 404 and changes nothing', async () => {
    const before = await snapshot();
    const res = await w.fetch('/products/no-such-thing', { method: 'DELETE', headers: { authorization: `Bearer ${writer}` } });
    await problem(res, 404, '/problems/not-found');
    assert.deepEqual(await snapshot(), before);
  });

  test('each bad read is a problem', async () => {
    for (const q of ['limit=abc', 'limit=0', 'limit=1000', 'limit=', 'limit=-1', 'limit=2.5', 'limit=1&limit=2', 'cursor=!!!', 'cursor=', 'cursor=dGVh%3D', 'cursor=VGVhIFRpbWU']) {
      await problem(await w.fetch(`/products?${q}`), 400, '/problems/bad-request');
    }
    await problem(await w.fetch('/products/no-such-sku'), 404, '/problems/not-found');
    for (const sku of ['Tea', 'tea_1', 'tea%20x', 'x'.repeat(65), '%C3%A9']) {
      await problem(await w.fetch(`/products/${sku}`), 400, '/problems/bad-request');
    }
    await problem(
      await w.fetch('/products/tea-sencha-100g', { headers: { 'if-none-match': 'not-quoted' } }),
      400,
      '/problems/bad-request',
    );
    const post = await w.fetch('/products', { method: 'POST', body: '{}' });
    await problem(post, 405, '/problems/method-not-allowed');
  });

  test('each bad write is a problem and leaves D1 unchanged', async () => {
    const before = await snapshot();
    const sku = 'tea-sencha-100g';
    const good = { name: 'Sencha', description: '', price_minor: 100, currency: 'EUR', stock: 1 };

    await problem(
      await w.fetch(`/products/${sku}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(good) }),
      401,
      '/problems/missing-token',
    );
    const noScope = await put(sku, good, reader);
    await problem(noScope, 403, '/problems/insufficient-scope');
    assert.equal(
      noScope.headers.get('www-authenticate'),
      'Bearer realm="edgecart", error="insufficient_scope", scope="catalog:write"',
    );
    await problem(
      await w.fetch(`/products/${sku}`, { method: 'DELETE' }),
      401,
      '/problems/missing-token',
    );
    await problem(
      await w.fetch(`/products/${sku}`, { method: 'DELETE', headers: { authorization: `Bearer ${reader}` } }),
      403,
      '/problems/insufficient-scope',
    );
    await problem(await put(sku, good, 'garbage'), 401, '/problems/invalid-token');

    await problem(await put(sku, '{"name": '), 400, '/problems/bad-request');
    await problem(await put('Bad_Sku', good), 400, '/problems/bad-request');
    await problem(await put(sku, { ...good, description: 'x'.repeat(17 * 1024) }), 413, '/problems/payload-too-large');

    const invalid = [
      [],
      '"just a string"',
      '42',
      { ...good, price_minor: -1 },
      { ...good, price_minor: 12.5 },
      { ...good, price_minor: '100' },
      { ...good, price_minor: 100_000_001 },
      { ...good, stock: -3 },
      { ...good, stock: 1.5 },
      { ...good, stock: 1_000_001 },
      { ...good, currency: 'XXX' },
      { ...good, currency: 'eur' },
      { ...good, name: '' },
      { ...good, name: 'n'.repeat(201) },
      { ...good, description: 'd'.repeat(2001) },
      { ...good, sku: 'another-sku' },
      { ...good, colour: 'green' },
      { description: '', price_minor: 100, currency: 'EUR', stock: 1 },
    ];
    for (const body of invalid) {
      await problem(await put(sku, body), 422, '/problems/invalid-value');
    }
    assert.deepEqual(await snapshot(), before);
  });
});

describe('the catalogue with configured caching and CORS', () => {
  let w;
  const ORIGIN = 'https://shop.example';

  before(async () => {
    w = await startWorker({
      vars: { CATALOGUE_MAX_AGE: '10', CATALOGUE_S_MAXAGE: '120', CATALOGUE_SWR: '0', CORS_ALLOW_ORIGINS: ORIGIN },
    });
  });
  after(async () => {
    await w?.stop();
  });

  test('Cache-Control follows the configured lifetimes', async () => {
    const res = await w.fetch('/products/tea-hojicha-100g');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'public, max-age=10, s-maxage=120');
    await res.arrayBuffer();
  });

  test('CORS headers are added per request and never stored in the shared entry', async () => {
    const first = await w.fetch('/products/tea-gyokuro-50g', { headers: { origin: ORIGIN } });
    assert.equal(first.headers.get('cache-status'), STORED);
    assert.equal(first.headers.get('access-control-allow-origin'), ORIGIN);
    await first.arrayBuffer();
    const hit = await steadyHit(w, '/products/tea-gyokuro-50g');
    assert.equal(hit.headers.get('access-control-allow-origin'), null);
    await hit.arrayBuffer();
    const other = await w.fetch('/products/tea-gyokuro-50g', { headers: { origin: 'https://evil.example' } });
    assert.equal(other.headers.get('cache-status'), HIT);
    assert.equal(other.headers.get('access-control-allow-origin'), null);
    await other.arrayBuffer();
    const again = await w.fetch('/products/tea-gyokuro-50g', { headers: { origin: ORIGIN } });
    assert.equal(again.headers.get('cache-status'), HIT);
    assert.equal(again.headers.get('access-control-allow-origin'), ORIGIN);
    await again.arrayBuffer();
  });

  test('catalogue state survives a restart', async () => {
    const token = await devToken(w, { sub: 'admin', scope: 'catalog:write' });
    const res = await w.fetch('/products/acc-moka-pot-6-cup', {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Moka pot, 6 cups', price_minor: 3790, currency: 'EUR', stock: 4 }),
    });
    assert.equal(res.status, 200);
    const written = await res.json();
    await w.restart();
    const got = await w.fetch('/products/acc-moka-pot-6-cup');
    assert.equal(got.status, 200);
    assert.deepEqual(await got.json(), shopperView(written));
  });
});
